/* l_export.c: binds core/nnu_export.h and core/nnu_prefetch.h as the module
 * "nnunet.export" (STYLE R2, R15): the C side of `nnunet predict`.
 *
 *   export.prefetch(cfg, cases [, depth=1]) -> prefetcher   (a background thread starts
 *        reading + preprocessing the cases in order; cfg as nnunet.preproc_case's:
 *        { schemes, use_mask_for_norm, ct, transpose_forward, spacing, data_order,
 *          seg_order, order_z }; cases = { {images = {paths}}, ... })
 *       pf:next() -> index (1-based), data (C,D',H',W') f32, props, seconds | nil at the end
 *            | nil, msg, code for a case whose files cannot be read (then the worker has
 *            stopped); other failures raise ("interrupted!" on Ctrl-C)
 *       pf:close()  stops the worker and frees the cases not taken
 *   props (userdata "nnunet.CaseProps"): props:table() -> { spacing, shape_before_cropping,
 *        bbox_used_for_cropping (0-based half-open, as the reference), shape_after_cropping_
 *        and_before_resampling, shape_after_resampling, spacing_transposed, target_spacing,
 *        sitk_stuff = {spacing, origin, direction} }
 *   export.props(t [, ref_path [, {reader =, seg =}]]) -> props from such a table; the
 *        geometry for writing (and a NIfTI's raw header) is read from the image ref_path
 *        when given, with that reader class (nil: by ending; seg: ref_path is a label)
 *   export.case(logits, props, opts [, want_probs]) -> seg (z,y,x) u8|u16 [, probs (K,z,y,x) f32]
 *        opts = { transpose_forward = {0,1,2}, n_foreground_labels = 1,
 *                 regions_class_order = {..} | nil, order = 1, order_z = 0,
 *                 force_separate_z = nil|true|false }
 *   export.resample_logits(logits, props [, opts]) -> logits (K, cropped shape)
 *   export.write_seg(path, seg, props [, compression]) -> true | nil, msg, code
 *        (NIfTI with the case's geometry: the first channel file's header fields)
 *   export.accumulate(acc, x)   acc = f16(acc + x) in place (fold ensemble)
 *   export.divide(acc, n)       acc = f16(acc / n) in place
 *   export.pointwise_net(W, b) -> net   a 1x1x1 convolution as a sliding-window predictor
 *        (tests, debugging): logits[k] = ((b[k] + W[k][1] x[1]) + W[k][2] x[2]) + ...,
 *        float32 in this order; W = {{w11, w12, ...}, ...} (K rows of C), b = {b1, ..., bK};
 *        infer.sliding_window calls it in C (l_infer.h); net(batch) also works from Lua */
#include <math.h>
#include <string.h>

#include "l_infer.h"
#include "l_util.h"
#include "nnu_export.h"
#include "nnu_image.h"
#include "nnu_prefetch.h"

#define L_PREFETCH_MT "nnunet.Prefetch"
#define L_PROPS_MT "nnunet.CaseProps"
#define L_POINTWISE_MT "nnunet.PointwiseNet"

/* ---- table readers (the generic ones: l_util.h) ---- */

static void transpose_field(lua_State *L, int t, int out[3]) {
    double tf[3];
    int n = l_num_array_field(L, t, "transpose_forward", tf, 3, 0);
    if (n == 0) { out[0] = 0; out[1] = 1; out[2] = 2; return; }
    if (n != 3) luaL_error(L, "field 'transpose_forward' must have 3 entries");
    for (int a = 0; a < 3; a++) out[a] = (int)tf[a];
}

/* The preprocessing configuration (the same table as nnunet.preproc_case's cfg;
 * class-location keys are not needed for test cases). Arrays live in userdata
 * pushed on the stack until the caller returns; nnu_prefetch_start copies them. */
static void check_config(lua_State *L, int idx, nnu_preproc_config *cfg) {
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    *cfg = nnu_preproc_config_default();
    l_check_preproc_channels(L, idx, cfg);     /* pushes the schemes table + 3 userdata */
    transpose_field(L, idx, cfg->transpose_forward);
    cfg->spacing_ndim = l_num_array_field(L, idx, "spacing", cfg->spacing, 3, 1);
    if (cfg->spacing_ndim < 2) luaL_error(L, "cfg.spacing must have 2 or 3 entries");
    cfg->data_opts.order = (int)l_opt_int_field(L, idx, "data_order", 3);
    cfg->seg_opts.order = (int)l_opt_int_field(L, idx, "seg_order", 1);
    cfg->data_opts.order_z = cfg->seg_opts.order_z = (int)l_opt_int_field(L, idx, "order_z", 0);
    cfg->n_keys = 0;
}

/* ---- props userdata ---- */

static nnu_preproc_props *props_push(lua_State *L) {
    nnu_preproc_props *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, L_PROPS_MT);
    return p;
}

static nnu_preproc_props *props_check(lua_State *L, int arg) {
    return (nnu_preproc_props *)luaL_checkudata(L, arg, L_PROPS_MT);
}

static int l_props_table(lua_State *L) {
    const nnu_preproc_props *p = props_check(L, 1);
    l_push_preproc_props(L, p);
    /* as SimpleITK reports it: 2 entries (4 for the direction) for a 2-D image */
    const nnu_image_info *g = &p->nifti;
    int two = g->spatial_dims == 2;
    double dir2[4] = {g->direction[0], g->direction[1], g->direction[3], g->direction[4]};
    lua_createtable(L, 0, 3);
    l_set_nums_field(L, "spacing", g->spacing_itk, two ? 2 : 3);
    l_set_nums_field(L, "origin", g->origin, two ? 2 : 3);
    l_set_nums_field(L, "direction", two ? dir2 : g->direction, two ? 4 : 9);
    lua_setfield(L, -2, "sitk_stuff");
    return 1;
}

static void int3_field(lua_State *L, int t, const char *k, int64_t out[3]) {
    double v[3];
    if (l_num_array_field(L, t, k, v, 3, 1) != 3) luaL_error(L, "field '%s' must have 3 entries", k);
    for (int a = 0; a < 3; a++) out[a] = (int64_t)v[a];
}

static int l_export_props(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *ref = luaL_optstring(L, 2, NULL);
    nnu_preproc_props *p = props_push(L);
    if (l_num_array_field(L, 1, "spacing_transposed", p->spacing_transposed, 3, 1) != 3 ||
        l_num_array_field(L, 1, "target_spacing", p->target_spacing, 3, 1) != 3)
        luaL_error(L, "props: spacing_transposed and target_spacing need 3 entries");
    l_num_array_field(L, 1, "spacing", p->spacing, 3, 0);
    int3_field(L, 1, "shape_before_cropping", p->shape_before_cropping);
    int3_field(L, 1, "shape_after_cropping_and_before_resampling", p->shape_after_cropping);
    if (lua_getfield(L, 1, "shape_after_resampling") == LUA_TTABLE) {
        lua_pop(L, 1);
        int3_field(L, 1, "shape_after_resampling", p->shape_after_resampling);
    } else {
        lua_pop(L, 1);
    }
    if (lua_getfield(L, 1, "bbox_used_for_cropping") != LUA_TTABLE) luaL_error(L, "props: bbox_used_for_cropping missing");
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
    if (ref) {
        nnu_image_read_opts ro;
        l_check_image_read_opts(L, 3, &ro);
        nnu_status st = nnu_image_read_header(ref, &ro, &p->nifti);
        if (st) return l_fail(L, st);
        p->has_nifti = 1;
    }
    return 1;
}

/* ---- prefetcher ---- */

static nnu_prefetch **prefetch_check(lua_State *L) {
    nnu_prefetch **box = (nnu_prefetch **)luaL_checkudata(L, 1, L_PREFETCH_MT);
    luaL_argcheck(L, *box != NULL, 1, "prefetcher is closed");
    return box;
}

static int l_prefetch_close(lua_State *L) {
    nnu_prefetch **box = (nnu_prefetch **)luaL_checkudata(L, 1, L_PREFETCH_MT);
    nnu_prefetch_free(*box);                   /* never raises (R11) */
    *box = NULL;
    return 0;
}

static int l_export_prefetch(lua_State *L) {
    nnu_preproc_config cfg;
    check_config(L, 1, &cfg);                  /* pushes its arrays */
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer depth = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, depth >= 1 && depth <= 64, 3, "depth must be 1..64");
    int64_t n = (int64_t)luaL_len(L, 2), total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (lua_geti(L, 2, i + 1) != LUA_TTABLE) luaL_error(L, "cases[%d] must be a table", (int)i + 1);
        if (lua_getfield(L, -1, "images") != LUA_TTABLE) luaL_error(L, "cases[%d].images must be an array", (int)i + 1);
        total += (int64_t)luaL_len(L, -1);
        lua_pop(L, 2);
    }
    nnu_preproc_case_spec *cases = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *cases, 0);
    const char **paths = lua_newuserdatauv(L, (size_t)(total > 0 ? total : 1) * sizeof *paths, 0);
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {          /* pointers into strings held by `cases` until return */
        lua_geti(L, 2, i + 1);
        lua_getfield(L, -1, "images");
        int ni = (int)luaL_len(L, -1);
        luaL_argcheck(L, ni >= 1, 2, "every case needs at least one image");
        cases[i].id = NULL;
        cases[i].label = NULL;
        cases[i].images = paths + used;
        cases[i].n_images = ni;
        for (int k = 0; k < ni; k++) {
            lua_geti(L, -1, k + 1);
            paths[used++] = luaL_checkstring(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    nnu_prefetch **box = (nnu_prefetch **)lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, L_PREFETCH_MT);
    nnu_status st = nnu_prefetch_start(&cfg, cases, n, (int)depth, box);
    if (st) return l_raise(L, st);
    return 1;
}

static int l_prefetch_next(lua_State *L) {
    nnu_prefetch *p = *prefetch_check(L);
    nnu_tensor **dbox = l_tensor_newbox(L);
    nnu_preproc_props *props = props_push(L);
    int64_t index;
    double secs;
    nnu_status st = nnu_prefetch_next(p, &index, dbox, props, &secs);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT) return l_fail(L, st);   /* unreadable case */
    if (st) return l_raise_interruptible(L, st);
    if (index < 0) { lua_pushnil(L); return 1; }
    props->has_nifti = 1;
    lua_pushinteger(L, (lua_Integer)index + 1);
    lua_insert(L, -3);                          /* index, data, props */
    lua_pushnumber(L, secs);
    return 4;
}

/* ---- export ---- */

static void check_export_opts(lua_State *L, int idx, nnu_export_opts *o) {
    *o = nnu_export_opts_default();
    if (lua_isnoneornil(L, idx)) return;
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    transpose_field(L, idx, o->transpose_forward);
    o->n_foreground_labels = (int)l_opt_int_field(L, idx, "n_foreground_labels", 1);
    o->resample.order = (int)l_opt_int_field(L, idx, "order", 1);
    o->resample.order_z = (int)l_opt_int_field(L, idx, "order_z", 0);
    lua_getfield(L, idx, "force_separate_z");
    o->resample.force_separate_z = lua_isnil(L, -1) ? -1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "regions_class_order") == LUA_TTABLE) {
        int n = (int)luaL_len(L, -1);
        if (n > NNU_EXPORT_MAX_REGIONS) luaL_error(L, "at most %d regions", NNU_EXPORT_MAX_REGIONS);
        for (int i = 0; i < n; i++) {
            lua_geti(L, -1, i + 1);
            o->regions_class_order[i] = (int32_t)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
        o->n_regions = n;
    }
    lua_pop(L, 1);
}

static int l_export_case(lua_State *L) {
    nnu_tensor *logits = l_tensor_check(L, 1);
    const nnu_preproc_props *p = props_check(L, 2);
    nnu_export_opts o;
    check_export_opts(L, 3, &o);
    int want = lua_toboolean(L, 4);
    nnu_tensor **sbox = l_tensor_newbox(L);
    nnu_tensor **pbox = want ? l_tensor_newbox(L) : NULL;
    nnu_status st = nnu_export_case(logits, p, &o, sbox, pbox);
    if (st) return l_raise_interruptible(L, st);
    return want ? 2 : 1;
}

static int l_export_resample_logits(lua_State *L) {
    nnu_tensor *logits = l_tensor_check(L, 1);
    const nnu_preproc_props *p = props_check(L, 2);
    nnu_export_opts o;
    check_export_opts(L, 3, &o);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_export_resample_logits(logits, p, &o.resample, box);
    if (st) return l_raise_interruptible(L, st);
    return 1;
}

static int l_export_write_seg(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_tensor *seg = l_tensor_check(L, 2);
    const nnu_preproc_props *p = props_check(L, 3);
    luaL_argcheck(L, p->has_nifti, 3, "these properties carry no NIfTI header");
    nnu_image_write_opts o;
    memset(&o, 0, sizeof o);
    o.compression = (int)luaL_optinteger(L, 4, 0);
    nnu_status st = nnu_image_write(path, seg, &p->nifti, &o);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_UNSUPPORTED)
        return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_export_accumulate(lua_State *L) {
    nnu_status st = nnu_export_accumulate(l_tensor_check(L, 1), l_tensor_check(L, 2));
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_export_divide(lua_State *L) {
    nnu_tensor *acc = l_tensor_check(L, 1);
    nnu_status st = nnu_export_divide(acc, (int)luaL_checkinteger(L, 2));
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

/* ---- pointwise test network ---- */

typedef struct pointwise_net {
    int   K, C;
    float w[];          /* K*C weights, then K biases */
} pointwise_net;

static nnu_status pointwise_predict(void *ctx, const nnu_tensor *batch, nnu_tensor *out) {
    const pointwise_net *n = ctx;
    char b1[64], b2[64];
    NNU_CHECK(batch->dtype == NNU_DTYPE_F32 && out->dtype == NNU_DTYPE_F32 && batch->ndim == out->ndim &&
                  batch->ndim >= 3 && batch->shape[0] == out->shape[0] && batch->shape[1] == n->C &&
                  out->shape[1] == n->K && nnu_tensor_is_contiguous(batch) && nnu_tensor_is_contiguous(out),
              NNU_STATUS_ERR_SHAPE, "pointwise net (C=%d, K=%d): batch %s, output %s", n->C, n->K,
              nnu_tensor_shape_str(batch, b1, sizeof b1), nnu_tensor_shape_str(out, b2, sizeof b2));
    int64_t S = 1;
    for (int a = 2; a < batch->ndim; a++) S *= batch->shape[a];
    const float *x = nnu_tensor_data(batch);
    float *y = nnu_tensor_data(out);
    const float *bias = n->w + n->K * n->C;
    for (int64_t i = 0; i < batch->shape[0]; i++)
        for (int k = 0; k < n->K; k++)
            for (int64_t s = 0; s < S; s++) {
                float o = bias[k];
                for (int c = 0; c < n->C; c++) o = o + n->w[k * n->C + c] * x[(i * n->C + c) * S + s];
                y[(i * n->K + k) * S + s] = o;
            }
    return NNU_STATUS_OK;
}

static const l_infer_predictor pointwise_predictor = {pointwise_predict, NULL};

static int l_export_pointwise_net(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    int K = (int)luaL_len(L, 1);
    luaL_argcheck(L, K >= 1 && K <= 1024 && luaL_len(L, 2) == K, 2, "K rows of weights and K biases expected");
    lua_geti(L, 1, 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    int C = (int)luaL_len(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, C >= 1 && C <= 1024, 1, "1..1024 input channels expected");
    pointwise_net *n = lua_newuserdatauv(L, sizeof *n + (size_t)(K * C + K) * sizeof(float), 0);
    n->K = K;
    n->C = C;
    for (int k = 0; k < K; k++) {
        lua_geti(L, 1, k + 1);
        luaL_argcheck(L, lua_istable(L, -1) && luaL_len(L, -1) == C, 1, "every row needs C weights");
        for (int c = 0; c < C; c++) {
            lua_geti(L, -1, c + 1);
            n->w[k * C + c] = (float)luaL_checknumber(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_geti(L, 2, k + 1);
        n->w[K * C + k] = (float)luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    luaL_setmetatable(L, L_POINTWISE_MT);
    return 1;
}

/* net(batch) -> logits, for calls from Lua */
static int l_pointwise_call(lua_State *L) {
    pointwise_net *n = luaL_checkudata(L, 1, L_POINTWISE_MT);
    nnu_tensor *x = l_tensor_check(L, 2);
    luaL_argcheck(L, x->ndim >= 3 && x->ndim <= 5 && x->shape[1] == n->C, 2, "(B, C, spatial...) expected");
    int64_t shape[NNU_MAX_DIMS];
    for (int a = 0; a < x->ndim; a++) shape[a] = x->shape[a];
    shape[1] = n->K;
    nnu_tensor **out = l_tensor_newbox(L);
    nnu_tensor *xc = NULL;
    nnu_status st = nnu_tensor_to_dtype(x, NNU_DTYPE_F32, &xc);
    if (!st) st = nnu_tensor_new(NNU_DTYPE_F32, x->ndim, shape, out);
    if (!st) st = pointwise_predict(n, xc, *out);
    nnu_tensor_release(xc);
    if (st) return l_raise(L, st);
    return 1;
}

static int l_prefetch_tostring(lua_State *L) {
    nnu_prefetch **box = (nnu_prefetch **)luaL_checkudata(L, 1, L_PREFETCH_MT);
    lua_pushstring(L, *box ? "nnunet.Prefetch(running)" : "nnunet.Prefetch(closed)");
    return 1;
}

static int l_props_tostring(lua_State *L) {
    const nnu_preproc_props *p = props_check(L, 1);
    lua_pushfstring(L, "nnunet.CaseProps(shape [%d,%d,%d], cropped [%d,%d,%d])", (int)p->shape_before_cropping[0],
                    (int)p->shape_before_cropping[1], (int)p->shape_before_cropping[2],
                    (int)p->shape_after_cropping[0], (int)p->shape_after_cropping[1], (int)p->shape_after_cropping[2]);
    return 1;
}

static int l_pointwise_tostring(lua_State *L) {
    const pointwise_net *n = luaL_checkudata(L, 1, L_POINTWISE_MT);
    lua_pushfstring(L, "nnunet.PointwiseNet(C=%d, K=%d)", n->C, n->K);
    return 1;
}

static const luaL_Reg prefetch_methods[] = {{"next", l_prefetch_next}, {"close", l_prefetch_close}, {NULL, NULL}};
static const luaL_Reg props_methods[] = {{"table", l_props_table}, {NULL, NULL}};
static const luaL_Reg export_functions[] = {
    {"prefetch", l_export_prefetch}, {"props", l_export_props}, {"case", l_export_case},
    {"resample_logits", l_export_resample_logits}, {"write_seg", l_export_write_seg},
    {"accumulate", l_export_accumulate}, {"divide", l_export_divide},
    {"pointwise_net", l_export_pointwise_net}, {NULL, NULL}};

int luaopen_nnunet_export(lua_State *L) {
    if (luaL_newmetatable(L, L_PREFETCH_MT)) {
        lua_pushcfunction(L, l_prefetch_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_prefetch_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, l_prefetch_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, prefetch_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, L_PROPS_MT)) {
        lua_pushcfunction(L, l_props_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, props_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, L_POINTWISE_MT)) {
        lua_pushlightuserdata(L, (void *)&pointwise_predictor);
        lua_setfield(L, -2, "__nnu_slide_predict");
        lua_pushcfunction(L, l_pointwise_call);
        lua_setfield(L, -2, "__call");
        lua_pushcfunction(L, l_pointwise_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    luaL_newlib(L, export_functions);
    return 1;
}
