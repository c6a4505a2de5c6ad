/* l_ensemble.c: binds core/nnu_ensemble.h as the module "nnunet.ensemble_ops"
 * (STYLE R2; the Lua side is lua/nnunet/ensemble.lua).
 *
 *   ops.mean_npz(paths [, key="probabilities"]) -> f32 tensor (K, ...) | nil, msg, code
 *        mean of the arrays of the .npz files, in file order, float32 as numpy
 *        (unreadable files and shape mismatches are expected failures: nil, msg)
 *   ops.add(acc, x)                 acc += x (acc f32 contiguous)
 *   ops.divide(acc, n)              acc /= n
 *   ops.argmax(probs)               -> seg (...) u8/u16: argmax over axis 1
 *   ops.regions(probs, class_order) -> seg: seg[probs[i] > 0.5] = class_order[i], in order */
#include "l_util.h"
#include "nnu_ensemble.h"

static int l_ensemble_mean_npz(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *key = luaL_optstring(L, 2, "probabilities");
    int n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1, 1, "at least one file expected");
    /* the strings stay referenced by the argument table while the core reads them */
    const char **paths = lua_newuserdatauv(L, sizeof *paths * (size_t)n, 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        paths[i] = lua_tostring(L, -1);
        luaL_argcheck(L, paths[i] != NULL, 1, "file paths (strings) expected");
        lua_pop(L, 1);
    }
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_ensemble_mean_npz(paths, n, key, box);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_SHAPE) return l_fail(L, st);
    if (st) return l_raise(L, st);
    return 1;
}

static int l_ensemble_add(lua_State *L) {
    nnu_tensor *acc = l_tensor_check(L, 1), *x = l_tensor_check(L, 2);
    nnu_status st = nnu_ensemble_add(acc, x);
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_ensemble_divide(lua_State *L) {
    nnu_tensor *acc = l_tensor_check(L, 1);
    nnu_status st = nnu_ensemble_divide(acc, (int64_t)luaL_checkinteger(L, 2));
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_ensemble_argmax(lua_State *L) {
    nnu_tensor *p = l_tensor_check(L, 1);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_ensemble_argmax(p, box);
    return st ? l_raise(L, st) : 1;
}

static int l_ensemble_regions(lua_State *L) {
    nnu_tensor *p = l_tensor_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && n <= 4096, 2, "1 to 4096 regions expected");
    int32_t *order = lua_newuserdatauv(L, sizeof *order * (size_t)n, 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        int isnum;
        lua_Integer v = lua_tointegerx(L, -1, &isnum);
        luaL_argcheck(L, isnum, 2, "integer labels expected");
        order[i] = (int32_t)v;
        lua_pop(L, 1);
    }
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_ensemble_regions(p, order, n, box);
    return st ? l_raise(L, st) : 1;
}

static const luaL_Reg ensemble_functions[] = {
    {"mean_npz", l_ensemble_mean_npz}, {"add", l_ensemble_add},         {"divide", l_ensemble_divide},
    {"argmax", l_ensemble_argmax},     {"regions", l_ensemble_regions}, {NULL, NULL}};

int luaopen_nnunet_ensemble_ops(lua_State *L) {
    luaL_newlib(L, ensemble_functions);
    return 1;
}
