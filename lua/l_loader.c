/* l_loader.c: module "nnunet.loader", the thin binding of core/nnu_loader.h (patch
 * sampling + augmentation in background threads).
 *
 *   loader.new{ batch_size =, patch = {D, H, W} | {H, W}, initial_patch = {...},
 *               oversample = 0.33, oversample_random = false, seed = 12345,
 *               workers = 2, ring = 0, pipeline = AugPipeline | nil, first_batch = 0,
 *               onehot_labels = {label, ...} | nil, cascade_aug = false }
 *       -> nnunet.Loader    (a 2-D patch {H, W} means (1, H, W): slices of 3-D cases)
 *       onehot_labels (cascade): every case needs ld:set_prev_seg; data gets one
 *       one-hot channel per label after the image channels (nnu_loader.h); cascade_aug:
 *       the cascade's morphology / component-removal augmentations on them
 *   ld:add_case(data (C,D,H,W) f32, seg (1,D,H,W) [, locs])
 *       locs = { {values = {label...}, coords = {{z, y, x}, ...}}, ... }  1-based voxels
 *   ld:add_store(path [, expect_id, expect_hash]) -> true | nil, msg, code
 *   ld:set_prev_seg(i, seg)   cascade: previous stage's seg (1,D,H,W) or (D,H,W) of case i (1-based)
 *   ld:next() -> data (B,C,D,H,W) f32, seg (B,1,D,H,W) i16, info
 *       info[j] = {case = 1-based case, lo = {1-based crop corner}, forced = bool, key = 1-based | nil}
 *   ld:batch(b) -> data, seg        batch b (0-based counter of the run); seeks if needed
 *   ld:make_batch(b) -> data, seg   synchronously, without touching the ring
 *   ld:num_cases(), ld:next_index() (0-based), ld:close()
 * Opening a store can fail for expected reasons (returns nil, msg, code); everything
 * else raises. __gc and __close stop the workers and free the loader. */
#include <string.h>

#include "l_util.h"
#include "nnu_loader.h"

#define LOADER_MT "nnunet.Loader"

const nnu_aug_pipeline *l_augment_check_pipeline(lua_State *L, int arg);   /* l_augment.c */

static nnu_loader *check_loader(lua_State *L, int arg) {
    nnu_loader **box = luaL_checkudata(L, arg, LOADER_MT);
    luaL_argcheck(L, *box != NULL, arg, "loader was closed");
    return *box;
}

static int l_loader_gc(lua_State *L) {
    nnu_loader **box = luaL_checkudata(L, 1, LOADER_MT);
    nnu_loader_free(*box);   /* never raises */
    *box = NULL;
    return 0;
}

/* {D, H, W} or {H, W} (→ {1, H, W}) from field k of the options table; 0 if absent */
static int patch_field(lua_State *L, const char *k, int64_t out[3]) {
    lua_getfield(L, 1, k);
    if (lua_isnil(L, -1)) { lua_pop(L, 1); return 0; }
    int64_t s[NNU_MAX_DIMS];
    int nd = l_checkshape(L, lua_gettop(L), s);
    if (nd != 2 && nd != 3) luaL_error(L, "loader.new: '%s' must have 2 or 3 entries", k);
    if (nd == 2) { out[0] = 1; out[1] = s[0]; out[2] = s[1]; }
    else memcpy(out, s, 3 * sizeof *out);
    lua_pop(L, 1);
    return 1;
}

static lua_Number opt_num(lua_State *L, const char *k, lua_Number def) {
    lua_getfield(L, 1, k);
    lua_Number v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int l_loader_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    nnu_loader_opts o = nnu_loader_opts_default();
    o.batch_size = (int)opt_num(L, "batch_size", o.batch_size);
    if (!patch_field(L, "patch", o.patch)) luaL_argerror(L, 1, "'patch' is required");
    patch_field(L, "initial_patch", o.initial_patch);
    o.oversample = opt_num(L, "oversample", o.oversample);
    lua_getfield(L, 1, "oversample_random");
    o.oversample_random = lua_toboolean(L, -1);
    lua_pop(L, 1);
    o.seed = (uint64_t)opt_num(L, "seed", (lua_Number)o.seed);
    o.n_workers = (int)opt_num(L, "workers", o.n_workers);
    o.ring = (int)opt_num(L, "ring", 0);
    o.first_batch = (int64_t)opt_num(L, "first_batch", 0);
    lua_getfield(L, 1, "onehot_labels");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        int n = (int)luaL_len(L, -1);
        luaL_argcheck(L, n <= NNU_LOADER_MAX_ONEHOT, 1, "too many onehot_labels");
        for (int i = 0; i < n; i++) {
            lua_geti(L, -1, i + 1);
            o.onehot_labels[i] = (int32_t)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
        o.n_onehot = n;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "cascade_aug");
    o.cascade_aug = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "pipeline");
    if (!lua_isnil(L, -1)) o.pipeline = l_augment_check_pipeline(L, lua_gettop(L));
    nnu_loader **box = lua_newuserdatauv(L, sizeof *box, 0);   /* box first (R12) */
    *box = NULL;
    luaL_setmetatable(L, LOADER_MT);
    nnu_status st = nnu_loader_new(&o, box);   /* copies the pipeline */
    return st ? l_raise(L, st) : 1;
}

/* locs table at arg → class locations (coords converted to 0-based). The arrays are
 * userdata kept alive in an anchor table pushed on the stack (the loader copies them
 * during the call). */
static void check_locs(lua_State *L, int arg, nnu_class_locations *cl) {
    luaL_checktype(L, arg, LUA_TTABLE);
    int nk = (int)luaL_len(L, arg), na = 0;
    lua_newtable(L);
    int anchor = lua_gettop(L);
    cl->n_keys = nk;
    cl->keys = lua_newuserdatauv(L, sizeof *cl->keys * (size_t)(nk ? nk : 1), 0);
    lua_rawseti(L, anchor, ++na);
    for (int k = 0; k < nk; k++) {
        lua_geti(L, arg, k + 1);
        int t = lua_gettop(L);
        luaL_checktype(L, t, LUA_TTABLE);
        lua_getfield(L, t, "values");
        luaL_checktype(L, -1, LUA_TTABLE);
        int nv = (int)luaL_len(L, -1);
        int32_t *v = lua_newuserdatauv(L, sizeof *v * (size_t)(nv ? nv : 1), 0);
        lua_rawseti(L, anchor, ++na);
        for (int i = 0; i < nv; i++) { lua_geti(L, -1, i + 1); v[i] = (int32_t)luaL_checkinteger(L, -1); lua_pop(L, 1); }
        lua_pop(L, 1);
        lua_getfield(L, t, "coords");
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_Integer n = luaL_len(L, -1);
        int32_t *c = lua_newuserdatauv(L, sizeof *c * (size_t)(n ? 3 * n : 1), 0);
        lua_rawseti(L, anchor, ++na);
        for (lua_Integer i = 0; i < n; i++) {
            lua_geti(L, -1, i + 1);
            luaL_checktype(L, -1, LUA_TTABLE);
            for (int ax = 0; ax < 3; ax++) {
                lua_geti(L, -1, ax + 1);
                c[3 * i + ax] = (int32_t)(luaL_checkinteger(L, -1) - 1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 2);   /* coords, key table */
        cl->keys[k] = (nnu_class_locs){nv, v, (int64_t)n, c};
    }
}

static int l_loader_add_case(lua_State *L) {
    nnu_loader *ld = check_loader(L, 1);
    nnu_tensor *data = l_tensor_check(L, 2), *seg = l_tensor_check(L, 3);
    nnu_class_locations cl = {0, NULL};
    if (!lua_isnoneornil(L, 4)) {
        lua_settop(L, 4);
        check_locs(L, 4, &cl);
    }
    nnu_status st = nnu_loader_add_case(ld, data, seg, cl.n_keys ? &cl : NULL);
    return st ? l_raise(L, st) : 0;
}

static int l_loader_add_store(lua_State *L) {
    nnu_loader *ld = check_loader(L, 1);
    const char *path = luaL_checkstring(L, 2);
    const char *id = luaL_optstring(L, 3, NULL);
    uint64_t hash = (uint64_t)luaL_optinteger(L, 4, 0);
    nnu_status st = nnu_loader_add_store(ld, path, id, hash);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT) return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_loader_set_prev_seg(lua_State *L) {
    nnu_loader *ld = check_loader(L, 1);
    lua_Integer i = luaL_checkinteger(L, 2);
    nnu_tensor *seg = l_tensor_check(L, 3);
    nnu_status st = nnu_loader_set_prev_seg(ld, (int64_t)i - 1, seg);
    return st ? l_raise(L, st) : 0;
}

static void push_info(lua_State *L, const nnu_loader_sample_info *info, int n) {
    lua_createtable(L, n, 0);
    for (int j = 0; j < n; j++) {
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, info[j].case_index + 1); lua_setfield(L, -2, "case");
        int64_t lo[3] = {info[j].lo[0] + 1, info[j].lo[1] + 1, info[j].lo[2] + 1};
        l_pushshape(L, 3, lo);   /* may hold values <= 0: padded corners */
        lua_setfield(L, -2, "lo");
        lua_pushboolean(L, info[j].forced); lua_setfield(L, -2, "forced");
        if (info[j].key >= 0) { lua_pushinteger(L, info[j].key + 1); lua_setfield(L, -2, "key"); }
        lua_rawseti(L, -2, j + 1);
    }
}

static int l_loader_next(lua_State *L) {
    nnu_loader *ld = check_loader(L, 1);
    int bs = nnu_loader_batch_size(ld);
    nnu_loader_sample_info *info = lua_newuserdatauv(L, sizeof *info * (size_t)bs, 0);
    nnu_tensor **d = l_tensor_newbox(L), **s = l_tensor_newbox(L);
    nnu_status st = nnu_loader_next(ld, d, s, info);
    if (st) return l_raise(L, st);
    push_info(L, info, bs);
    return 3;
}

static int l_loader_batch(lua_State *L) {
    nnu_loader *ld = check_loader(L, 1);
    lua_Integer b = luaL_checkinteger(L, 2);
    luaL_argcheck(L, b >= 0, 2, "batch index must be >= 0");
    nnu_tensor **d = l_tensor_newbox(L), **s = l_tensor_newbox(L);
    nnu_status st = nnu_loader_seek(ld, (int64_t)b);
    if (st == NNU_STATUS_OK) st = nnu_loader_next(ld, d, s, NULL);
    return st ? l_raise(L, st) : 2;
}

static int l_loader_make_batch(lua_State *L) {
    nnu_loader *ld = check_loader(L, 1);
    lua_Integer b = luaL_checkinteger(L, 2);
    luaL_argcheck(L, b >= 0, 2, "batch index must be >= 0");
    nnu_tensor **d = l_tensor_newbox(L), **s = l_tensor_newbox(L);
    nnu_status st = nnu_loader_new_batch(ld, d, s);
    if (st == NNU_STATUS_OK) st = nnu_loader_make_batch(ld, (int64_t)b, *d, *s, NULL);
    return st ? l_raise(L, st) : 2;
}

static int l_loader_num_cases(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)nnu_loader_num_cases(check_loader(L, 1)));
    return 1;
}

static int l_loader_next_index(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)nnu_loader_next_index(check_loader(L, 1)));
    return 1;
}

static int l_loader_tostring(lua_State *L) {
    nnu_loader **box = luaL_checkudata(L, 1, LOADER_MT);
    if (!*box) lua_pushstring(L, "nnunet.Loader(closed)");
    else lua_pushfstring(L, "nnunet.Loader(%d cases, next batch %d)", (int)nnu_loader_num_cases(*box),
                         (int)nnu_loader_next_index(*box));
    return 1;
}

static const luaL_Reg loader_methods[] = {
    {"add_case", l_loader_add_case}, {"add_store", l_loader_add_store}, {"set_prev_seg", l_loader_set_prev_seg},
    {"next", l_loader_next},
    {"batch", l_loader_batch},       {"make_batch", l_loader_make_batch},
    {"num_cases", l_loader_num_cases}, {"next_index", l_loader_next_index}, {"close", l_loader_gc},
    {NULL, NULL}};

static const luaL_Reg loader_meta[] = {
    {"__gc", l_loader_gc}, {"__close", l_loader_gc}, {"__tostring", l_loader_tostring}, {NULL, NULL}};

static const luaL_Reg loader_functions[] = {{"new", l_loader_new}, {NULL, NULL}};

int luaopen_nnunet_loader(lua_State *L) {
    if (luaL_newmetatable(L, LOADER_MT)) {
        luaL_setfuncs(L, loader_meta, 0);
        luaL_newlib(L, loader_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, loader_functions);
    return 1;
}
