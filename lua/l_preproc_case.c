/* l_preproc_case.c: binds core/nnu_preproc_case.h and core/nnu_store.h as the
 * module "nnunet.preproc_case" (STYLE R2, R15). Indices seen from Lua are 1-based
 * (patch corners, class-location coordinates); transposes are 0-based as in the plans.
 *
 *   pp.run_dataset(cfg, cases, opts)       -> true (raises on failure; "interrupted!" on Ctrl-C)
 *   pp.run_case(cfg, images, label|nil)    -> data, seg, props, class_locations
 *   pp.is_valid(path [, plans_id, hash])   -> true | false, reason
 *   pp.open(path [, plans_id, hash])       -> store | nil, msg, code
 *       store:info() -> {n_channels, shape, chunk, data_dtype, seg_dtype, plans_id, plans_hash, file_size}
 *       store:read_patch(lo, size [, seg_dtype]) -> data (C,sz...) f32, seg (1,sz...) (lo 1-based, may be <= 0)
 *       store:read_all() -> data, seg;  store:class_locations() -> { {values={...}, coords={{z,y,x},...}}, ... }
 *       store:verify() -> true | nil, msg;  store:close()
 *   pp.revert_seg(seg, props, transpose_forward [, cfg]) -> label map (z,y,x) i16
 *   pp.permutation(seed, n)                -> {0-based values} (numpy RandomState(seed).permutation(n))
 *   pp.zero_value(t, v)                    -> number of elements equal to v set to 0 (in place)
 *
 * cfg = { schemes = {"ZScoreNormalization", ...}, use_mask_for_norm = {false, ...},
 *         ct = { [c] = {mean, std, percentile_00_5, percentile_99_5} }, transpose_forward = {0,1,2},
 *         spacing = {z,y,x} or {y,x} (2d), keys = { {1}, {2}, {1,2} },
 *         data_order = 3, seg_order = 1, order_z = 0, seed = 1234, max_locations = 10000, min_coverage = 0.01,
 *         reader = "SimpleITKIO" (the plans' image_reader_writer; nil: by file ending) }
 * cases = { {id = "case", images = {paths}, label = path|nil}, ... }
 * opts = { out_dir, plans_id, plans_hash (integer), dtype = "f32"|"f16", codec = "deflate"|"raw",
 *          level = 1, patch = {...}, threads = N, progress = true, label = "3d_fullres", no_fsync = false }
 * props (run_case, revert_seg) = the properties JSON's fields as a table. */
#include <math.h>
#include <string.h>

#include "l_util.h"
#include "nnu_preproc_case.h"
#include "nnu_store.h"

#define L_STORE_MT "nnunet.Store"

/* ---- small table readers (raise on malformed input: programming errors; the
 * generic ones: l_util.h) ---- */

static void int_array_field(lua_State *L, int t, const char *k, int64_t *out, int n) {
    double v[8];
    if (l_num_array_field(L, t, k, v, 8, 1) != n) luaL_error(L, "field '%s' must have %d entries", k, n);
    for (int i = 0; i < n; i++) out[i] = (int64_t)v[i];
}

/* Fills cfg from the table at idx; arrays live in GC-owned userdata pushed on the stack. */
static void check_config(lua_State *L, int idx, nnu_preproc_config *cfg) {
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    *cfg = nnu_preproc_config_default();
    l_check_preproc_channels(L, idx, cfg);     /* pushes the schemes table + 3 userdata */
    double tf[3] = {0, 1, 2};
    if (l_num_array_field(L, idx, "transpose_forward", tf, 3, 0) == 0) { tf[0] = 0; tf[1] = 1; tf[2] = 2; }
    for (int a = 0; a < 3; a++) cfg->transpose_forward[a] = (int)tf[a];
    cfg->spacing_ndim = l_num_array_field(L, idx, "spacing", cfg->spacing, 3, 1);
    cfg->data_opts.order = (int)l_opt_int_field(L, idx, "data_order", 3);
    cfg->seg_opts.order = (int)l_opt_int_field(L, idx, "seg_order", 1);
    cfg->data_opts.order_z = cfg->seg_opts.order_z = (int)l_opt_int_field(L, idx, "order_z", 0);
    cfg->seed = (uint32_t)l_opt_int_field(L, idx, "seed", 1234);
    cfg->max_locations = (int64_t)l_opt_int_field(L, idx, "max_locations", 10000);
    cfg->min_coverage = l_opt_num_field(L, idx, "min_coverage", 0.01);
    lua_getfield(L, idx, "reader");
    cfg->reader = (nnu_image_reader)l_check_image_reader(L, -1);
    lua_pop(L, 1);
    /* class-location keys */
    int nk = 0, nv = 0;
    if (lua_getfield(L, idx, "keys") == LUA_TTABLE) {
        nk = (int)luaL_len(L, -1);
        for (int k = 0; k < nk; k++) { lua_geti(L, -1, k + 1); nv += (int)luaL_len(L, -1); lua_pop(L, 1); }
    }
    int *offsets = lua_newuserdatauv(L, (size_t)(nk + 1) * sizeof *offsets, 0);
    int32_t *values = lua_newuserdatauv(L, (size_t)(nv > 0 ? nv : 1) * sizeof *values, 0);
    offsets[0] = 0;
    for (int k = 0; k < nk; k++) {
        lua_geti(L, -3, k + 1);
        int n = (int)luaL_len(L, -1);
        for (int i = 0; i < n; i++) {
            lua_geti(L, -1, i + 1);
            values[offsets[k] + i] = (int32_t)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
        offsets[k + 1] = offsets[k] + n;
        lua_pop(L, 1);
    }
    cfg->n_keys = nk;
    cfg->key_offsets = offsets;
    cfg->key_values = values;
    /* stack: schemes tbl, 3 userdata, keys tbl, 2 userdata: all stay until the call returns */
}

/* ---- props and class locations as tables ---- */

static void check_props(lua_State *L, int idx, nnu_preproc_props *p) {
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    memset(p, 0, sizeof *p);
    if (l_num_array_field(L, idx, "spacing_transposed", p->spacing_transposed, 3, 1) != 3 ||
        l_num_array_field(L, idx, "target_spacing", p->target_spacing, 3, 1) != 3)
        luaL_error(L, "props: spacing_transposed and target_spacing need 3 entries");
    l_num_array_field(L, idx, "spacing", p->spacing, 3, 0);
    int_array_field(L, idx, "shape_before_cropping", p->shape_before_cropping, 3);
    int_array_field(L, idx, "shape_after_cropping_and_before_resampling", p->shape_after_cropping, 3);
    if (lua_getfield(L, idx, "bbox_used_for_cropping") != LUA_TTABLE) luaL_error(L, "props: bbox_used_for_cropping missing");
    for (int a = 0; a < 3; a++) {
        lua_geti(L, -1, a + 1);
        for (int k = 0; k < 2; k++) {
            lua_geti(L, -1, k + 1);
            p->bbox[a][k] = (int64_t)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void push_locations(lua_State *L, const nnu_class_locations *cl) {
    lua_createtable(L, cl->n_keys, 0);
    for (int k = 0; k < cl->n_keys; k++) {
        const nnu_class_locs *l = &cl->keys[k];
        lua_createtable(L, 0, 2);
        lua_createtable(L, l->n_values, 0);
        for (int i = 0; i < l->n_values; i++) { lua_pushinteger(L, l->values[i]); lua_rawseti(L, -2, i + 1); }
        lua_setfield(L, -2, "values");
        lua_createtable(L, (int)l->n, 0);
        for (int64_t j = 0; j < l->n; j++) {
            lua_createtable(L, 3, 0);
            for (int a = 0; a < 3; a++) { lua_pushinteger(L, l->coords[3 * j + a] + 1); lua_rawseti(L, -2, a + 1); }
            lua_rawseti(L, -2, (lua_Integer)j + 1);
        }
        lua_setfield(L, -2, "coords");
        lua_rawseti(L, -2, k + 1);
    }
}

/* ---- run ---- */

static int l_pp_run_dataset(lua_State *L) {
    nnu_preproc_config cfg;
    check_config(L, 1, &cfg);                  /* pushes its arrays (kept until return) */
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    int64_t n = (int64_t)luaL_len(L, 2), total = 0;
    for (int64_t i = 0; i < n; i++) {          /* pass 1: count the image paths */
        if (lua_geti(L, 2, i + 1) != LUA_TTABLE) luaL_error(L, "cases[%d] must be a table", (int)i + 1);
        if (lua_getfield(L, -1, "images") != LUA_TTABLE) luaL_error(L, "cases[%d].images must be an array", (int)i + 1);
        total += (int64_t)luaL_len(L, -1);
        lua_pop(L, 2);
    }
    nnu_preproc_case_spec *cases = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *cases, 0);
    const char **paths = lua_newuserdatauv(L, (size_t)(total > 0 ? total : 1) * sizeof *paths, 0);
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {          /* pass 2: pointers into strings held by `cases` */
        lua_geti(L, 2, i + 1);
        int t = lua_absindex(L, -1);
        lua_getfield(L, t, "id");
        cases[i].id = luaL_checkstring(L, -1);
        lua_getfield(L, t, "images");
        int ni = (int)luaL_len(L, -1);
        cases[i].images = paths + used;
        cases[i].n_images = ni;
        for (int k = 0; k < ni; k++) {
            lua_geti(L, -1, k + 1);
            paths[used++] = luaL_checkstring(L, -1);
            lua_pop(L, 1);
        }
        lua_getfield(L, t, "label");
        cases[i].label = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
        lua_pop(L, 4);
    }
    nnu_preproc_run_opts o;
    memset(&o, 0, sizeof o);
    o.store = nnu_store_write_opts_default();
    lua_getfield(L, 3, "out_dir");
    o.out_dir = luaL_checkstring(L, -1);
    lua_getfield(L, 3, "plans_id");
    o.store.plans_id = luaL_optstring(L, -1, "");
    lua_getfield(L, 3, "label");
    o.label = luaL_optstring(L, -1, "preprocess");
    lua_getfield(L, 3, "dtype");
    o.store.data_dtype = l_optdtype(L, -1, NNU_DTYPE_F32);
    lua_getfield(L, 3, "codec");
    const char *codec = luaL_optstring(L, -1, "deflate");
    if (strcmp(codec, "deflate") == 0) o.store.codec = NNU_STORE_DEFLATE;
    else if (strcmp(codec, "raw") == 0) o.store.codec = NNU_STORE_RAW;
    else luaL_error(L, "opts.codec must be 'deflate' or 'raw', got '%s'", codec);
    lua_getfield(L, 3, "progress");
    o.progress = lua_toboolean(L, -1);
    lua_getfield(L, 3, "no_fsync");
    o.store.no_fsync = lua_toboolean(L, -1);
    lua_pop(L, 7);                             /* the strings stay referenced by opts */
    o.store.plans_hash = (uint64_t)l_opt_int_field(L, 3, "plans_hash", 0);
    o.store.level = (int)l_opt_int_field(L, 3, "level", 1);
    o.n_threads = (int)l_opt_int_field(L, 3, "threads", 1);
    double patch[3];
    o.patch_ndim = l_num_array_field(L, 3, "patch", patch, 3, 0);
    for (int a = 0; a < o.patch_ndim; a++) o.patch[a] = (int64_t)patch[a];
    nnu_status st = nnu_preproc_dataset(&cfg, cases, n, &o);
    if (st) return l_raise_interruptible(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_pp_run_case(lua_State *L) {
    nnu_preproc_config cfg;
    check_config(L, 1, &cfg);
    luaL_checktype(L, 2, LUA_TTABLE);
    int ni = (int)luaL_len(L, 2);
    const char **paths = lua_newuserdatauv(L, (size_t)(ni > 0 ? ni : 1) * sizeof *paths, 0);
    for (int k = 0; k < ni; k++) {
        lua_geti(L, 2, k + 1);
        paths[k] = luaL_checkstring(L, -1);
        lua_pop(L, 1);
    }
    const char *label = luaL_optstring(L, 3, NULL);
    nnu_tensor **dbox = l_tensor_newbox(L);
    nnu_tensor **sbox = l_tensor_newbox(L);
    nnu_tensor *image = NULL, *lab = NULL;
    nnu_preproc_props props;
    memset(&props, 0, sizeof props);
    nnu_status st = nnu_preproc_case_load(paths, ni, label, cfg.reader, &image, label ? &lab : NULL, &props.nifti);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_SHAPE ||
        st == NNU_STATUS_ERR_UNSUPPORTED)
        return l_fail(L, st);
    if (st) return l_raise_interruptible(L, st);
    nnu_class_locations cl = {0, NULL};
    double spacing[3] = {props.nifti.spacing[0], props.nifti.spacing[1], props.nifti.spacing[2]};
    st = nnu_preproc_case_run(&cfg, image, lab, spacing, dbox, sbox, &cl, &props);   /* steals */
    if (st) return l_raise_interruptible(L, st);
    l_push_preproc_props(L, &props);
    push_locations(L, &cl);
    nnu_class_locations_free(&cl);
    return 4;
}

/* ---- store userdata ---- */

static nnu_store **store_check(lua_State *L) {
    nnu_store **box = (nnu_store **)luaL_checkudata(L, 1, L_STORE_MT);
    luaL_argcheck(L, *box != NULL, 1, "store is closed");
    return box;
}

static int l_store_gc(lua_State *L) {
    nnu_store **box = (nnu_store **)luaL_checkudata(L, 1, L_STORE_MT);
    nnu_store_close(*box);                     /* never raises (R11) */
    *box = NULL;
    return 0;
}

static int l_pp_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *id = luaL_optstring(L, 2, NULL);
    uint64_t hash = (uint64_t)luaL_optinteger(L, 3, 0);
    nnu_store **box = (nnu_store **)lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, L_STORE_MT);
    nnu_status st = nnu_store_open(path, id, hash, box);
    if (st) return l_fail(L, st);
    return 1;
}

static int l_pp_is_valid(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *id = luaL_optstring(L, 2, NULL);
    uint64_t hash = (uint64_t)luaL_optinteger(L, 3, 0);
    int ok = nnu_store_is_valid(path, id, hash);
    lua_pushboolean(L, ok);
    if (ok) return 1;
    lua_pushstring(L, nnu_last_error());
    return 2;
}

static int l_store_info(lua_State *L) {
    const nnu_store_info *in = nnu_store_get_info(*store_check(L));
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, in->n_channels);
    lua_setfield(L, -2, "n_channels");
    l_set_ints_field(L, "shape", in->shape, 3);
    l_set_ints_field(L, "chunk", in->chunk, 3);
    lua_pushstring(L, nnu_dtype_name(in->data_dtype));
    lua_setfield(L, -2, "data_dtype");
    lua_pushstring(L, nnu_dtype_name(in->seg_dtype));
    lua_setfield(L, -2, "seg_dtype");
    lua_pushstring(L, in->plans_id);
    lua_setfield(L, -2, "plans_id");
    lua_pushinteger(L, (lua_Integer)in->plans_hash);
    lua_setfield(L, -2, "plans_hash");
    lua_pushinteger(L, (lua_Integer)in->file_size);
    lua_setfield(L, -2, "file_size");
    lua_pushinteger(L, in->version);
    lua_setfield(L, -2, "version");
    return 1;
}

static int l_store_read_patch(lua_State *L) {
    nnu_store *s = *store_check(L);
    int64_t lo[NNU_MAX_DIMS], size[NNU_MAX_DIMS];
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_argcheck(L, luaL_len(L, 2) == 3, 2, "lo must have 3 entries");
    for (int a = 0; a < 3; a++) {
        lua_geti(L, 2, a + 1);
        lo[a] = (int64_t)luaL_checkinteger(L, -1) - 1;          /* 1-based -> 0-based */
        lua_pop(L, 1);
    }
    luaL_argcheck(L, l_checkshape(L, 3, size) == 3, 3, "size must have 3 entries");
    for (int a = 0; a < 3; a++) luaL_argcheck(L, size[a] > 0, 3, "size entries must be > 0");
    nnu_dtype sdt = l_optdtype(L, 4, NNU_DTYPE_I16);
    const nnu_store_info *in = nnu_store_get_info(s);
    int64_t ds[4] = {in->n_channels, size[0], size[1], size[2]}, ss[4] = {1, size[0], size[1], size[2]};
    nnu_tensor **d = l_tensor_newbox(L), **g = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(NNU_DTYPE_F32, 4, ds, d);
    if (!st) st = nnu_tensor_new(sdt, 4, ss, g);
    if (!st) st = nnu_store_read_patch(s, lo, size, *d, *g);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT) return l_fail(L, st);
    if (st) return l_raise(L, st);
    return 2;
}

static int l_store_read_all(lua_State *L) {
    nnu_store *s = *store_check(L);
    nnu_tensor **d = l_tensor_newbox(L), **g = l_tensor_newbox(L);
    nnu_status st = nnu_store_read_all(s, d, g);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT) return l_fail(L, st);
    if (st) return l_raise(L, st);
    return 2;
}

static int l_store_class_locations(lua_State *L) {
    nnu_store *s = *store_check(L);
    nnu_class_locations cl = {0, NULL};
    nnu_status st = nnu_store_read_class_locations(s, &cl);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT) return l_fail(L, st);
    if (st) return l_raise(L, st);
    push_locations(L, &cl);                    /* a Lua memory error here would leak cl: tolerable */
    nnu_class_locations_free(&cl);
    return 1;
}

static int l_store_verify(lua_State *L) {
    nnu_status st = nnu_store_verify(*store_check(L));
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- revert, permutation ---- */

static int l_pp_revert_seg(lua_State *L) {
    nnu_tensor *seg = l_tensor_check(L, 1);
    nnu_preproc_props p;
    check_props(L, 2, &p);
    luaL_checktype(L, 3, LUA_TTABLE);
    int t[3];
    for (int a = 0; a < 3; a++) {
        lua_geti(L, 3, a + 1);
        t[a] = (int)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
        luaL_argcheck(L, t[a] >= 0 && t[a] < 3, 3, "transpose_forward entries must be 0..2");
    }
    nnu_resample_opts o = nnu_resample_opts_seg();
    if (lua_istable(L, 4)) {
        o.order = (int)l_opt_int_field(L, 4, "seg_order", 1);
        o.order_z = (int)l_opt_int_field(L, 4, "order_z", 0);
    }
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_preproc_revert_seg(seg, &p, t, &o, box);
    if (st) return l_raise_interruptible(L, st);
    return 1;
}

static int l_pp_zero_value(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t n = 0;
    nnu_status st = nnu_preproc_zero_value(t, luaL_checknumber(L, 2), &n);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

static int l_pp_permutation(lua_State *L) {
    lua_Integer seed = luaL_checkinteger(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 100000000, 2, "n must be in 0..1e8");
    int64_t *v = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *v, 0);
    nnu_nprandom r;
    nnu_nprandom_seed(&r, (uint32_t)seed);
    nnu_nprandom_permutation(&r, (int64_t)n, v);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) { lua_pushinteger(L, v[i]); lua_rawseti(L, -2, i + 1); }
    return 1;
}

static const luaL_Reg store_methods[] = {
    {"info", l_store_info}, {"read_patch", l_store_read_patch}, {"read_all", l_store_read_all},
    {"class_locations", l_store_class_locations}, {"verify", l_store_verify}, {"close", l_store_gc},
    {NULL, NULL}};

static const luaL_Reg pp_functions[] = {
    {"run_dataset", l_pp_run_dataset}, {"run_case", l_pp_run_case}, {"open", l_pp_open},
    {"is_valid", l_pp_is_valid}, {"revert_seg", l_pp_revert_seg}, {"permutation", l_pp_permutation},
    {"zero_value", l_pp_zero_value},
    {NULL, NULL}};

int luaopen_nnunet_preproc_case(lua_State *L) {
    if (luaL_newmetatable(L, L_STORE_MT)) {
        lua_pushcfunction(L, l_store_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_store_gc);
        lua_setfield(L, -2, "__close");
        luaL_newlib(L, store_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, pp_functions);
    return 1;
}
