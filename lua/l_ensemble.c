/* l_ensemble.c: binds core/nnu_ensemble.h as the module "nnunet.ensemble_ops"
 * (STYLE R2; the Lua side is lua/nnunet/ensemble.lua).
 *
 *   ops.mean_npz(paths [, key="probabilities"]) -> f32 tensor (K, ...) | nil, msg, code
 *        mean of the arrays of the .npz files, in file order, float32 as numpy
 *        (unreadable files and shape mismatches are expected failures: nil, msg)
 *   ops.add(acc, x)                 acc += x (acc f32 contiguous)
 *   ops.divide(acc, n)              acc /= n
 *   ops.argmax(probs)               -> seg (...) u8/u16: argmax over axis 1
 *   ops.regions(probs, class_order) -> seg: seg[probs[i] > 0.5] = class_order[i], in order
 *   ops.merge_cases(cases, opts) -> true | nil, msg, code
 *        cases[i] = {files = {npz...}, output = path, geometry = nifti info table,
 *        probabilities = npz path | nil}; per case the mean, the segmentation and the
 *        NIfTI (and the mean as .npz), on opts.threads workers (0: all CPUs);
 *        opts = {channels = K, class_order = {...} (region models) | nil,
 *                label = progress-bar label | nil}. Unreadable or mismatching files are
 *        expected failures (nil, msg naming the file). */
#include "l_util.h"
#include "nnu_ensemble.h"
#include "nnu_ensemble_cases.h"

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

static int l_ensemble_merge_cases(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    const int n = (int)luaL_len(L, 1);
    nnu_ensemble_cases_opts o = {0};
    o.channels = (int)l_opt_int_field(L, 2, "channels", 0);
    luaL_argcheck(L, o.channels >= 1 && o.channels <= 65536, 2, "channels must be in 1..65536");
    o.n_threads = (int)l_opt_int_field(L, 2, "threads", 0);
    int32_t *order = NULL;
    if (lua_getfield(L, 2, "class_order") == LUA_TTABLE) {
        luaL_argcheck(L, luaL_len(L, -1) == o.channels, 2, "class_order must have `channels` entries");
        order = lua_newuserdatauv(L, sizeof *order * (size_t)o.channels, 0);   /* GC-owned, stays on the stack */
        for (int i = 0; i < o.channels; i++) {
            lua_geti(L, -2, i + 1);
            int isnum;
            lua_Integer v = lua_tointegerx(L, -1, &isnum);
            luaL_argcheck(L, isnum, 2, "class_order: integer labels expected");
            order[i] = (int32_t)v;
            lua_pop(L, 1);
        }
        o.class_order = order;
    }
    lua_getfield(L, 2, "label");
    const char *label = lua_tostring(L, -1);
    /* GC-owned scratch; the path strings stay anchored in the argument tables, each
     * case's path array in the anchor table (both stay on the stack until the return) */
    nnu_ensemble_case *cases = lua_newuserdatauv(L, sizeof *cases * (size_t)(n + 1), 0);
    lua_createtable(L, n, 0);
    const int anchor = lua_gettop(L);
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        const int c = lua_gettop(L);
        luaL_argcheck(L, lua_istable(L, c), 1, "cases must be tables");
        luaL_argcheck(L, lua_getfield(L, c, "files") == LUA_TTABLE, 1, "case without files");
        const int nf = (int)luaL_len(L, -1);
        luaL_argcheck(L, nf >= 1, 1, "case without files");
        const char **paths = lua_newuserdatauv(L, sizeof *paths * (size_t)nf, 0);
        for (int j = 0; j < nf; j++) {
            lua_geti(L, -2, j + 1);
            paths[j] = lua_tostring(L, -1);
            luaL_argcheck(L, paths[j] != NULL, 1, "file paths (strings) expected");
            lua_pop(L, 1);
        }
        lua_rawseti(L, anchor, i + 1);
        lua_pop(L, 1);                    /* files */
        cases[i].paths = paths;
        cases[i].n_paths = nf;
        lua_getfield(L, c, "output");
        cases[i].output = lua_tostring(L, -1);
        luaL_argcheck(L, cases[i].output != NULL, 1, "case without output path");
        lua_pop(L, 1);
        lua_getfield(L, c, "probabilities");
        cases[i].probabilities = lua_tostring(L, -1);   /* anchored in the case table */
        lua_pop(L, 1);
        luaL_argcheck(L, lua_getfield(L, c, "geometry") == LUA_TTABLE, 1, "case without geometry");
        l_image_check_info(L, -1, &cases[i].geometry);
        lua_pop(L, 2);
    }
    nnu_progress *bar = NULL;
    if (label && n > 0 && nnu_progress_new(label, n, &bar)) bar = NULL;   /* no bar is no error */
    o.progress = bar;
    nnu_status st = nnu_ensemble_merge_cases(cases, n, &o);
    if (bar) nnu_progress_finish(bar);
    nnu_progress_free(bar);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_SHAPE) return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg ensemble_functions[] = {
    {"mean_npz", l_ensemble_mean_npz}, {"add", l_ensemble_add},         {"divide", l_ensemble_divide},
    {"argmax", l_ensemble_argmax},     {"regions", l_ensemble_regions},
    {"merge_cases", l_ensemble_merge_cases}, {NULL, NULL}};

int luaopen_nnunet_ensemble_ops(lua_State *L) {
    luaL_newlib(L, ensemble_functions);
    return 1;
}
