/* l_util.c: see l_util.h. */
#include "l_util.h"

#include <math.h>
#include <string.h>

#include "nnu_preproc_case.h"

int l_raise(lua_State *L, nnu_status st) {
    return luaL_error(L, "%s: %s", nnu_status_name(st), nnu_last_error());
}

int l_fail(lua_State *L, nnu_status st) {
    lua_pushnil(L);
    lua_pushstring(L, nnu_last_error());
    lua_pushstring(L, nnu_status_name(st));
    return 3;
}

nnu_tensor **l_tensor_newbox(lua_State *L) {
    nnu_tensor **box = (nnu_tensor **)lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, L_TENSOR_MT);
    return box;
}

nnu_tensor *l_tensor_check(lua_State *L, int arg) {
    nnu_tensor **box = (nnu_tensor **)luaL_checkudata(L, arg, L_TENSOR_MT);
    luaL_argcheck(L, *box != NULL, arg, "tensor was released");
    return *box;
}

void l_tensor_push(lua_State *L, nnu_tensor *t) {
    /* Only a Lua memory error can raise here, and then t leaks: bindings that
     * allocate large tensors create the box first (l_tensor_newbox). */
    *l_tensor_newbox(L) = t;
}

int l_checkshape(lua_State *L, int arg, int64_t *shape) {
    luaL_checktype(L, arg, LUA_TTABLE);
    int n = (int)luaL_len(L, arg);
    luaL_argcheck(L, n <= NNU_MAX_DIMS, arg, "at most 5 dimensions");
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        int isnum;
        lua_Integer v = lua_tointegerx(L, -1, &isnum);
        luaL_argcheck(L, isnum && v >= 0, arg, "shape entries must be non-negative integers");
        shape[i] = (int64_t)v;
        lua_pop(L, 1);
    }
    return n;
}

void l_pushshape(lua_State *L, int ndim, const int64_t *shape) {
    lua_createtable(L, ndim, 0);
    for (int i = 0; i < ndim; i++) {
        lua_pushinteger(L, (lua_Integer)shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

nnu_dtype l_optdtype(lua_State *L, int arg, nnu_dtype def) {
    if (lua_isnoneornil(L, arg)) return def;
    const char *name = luaL_checkstring(L, arg);
    nnu_dtype dt;
    if (!nnu_dtype_from_name(name, &dt))
        luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (f32 f64 f16 u8 i8 i16 u16 i32 i64)", name));
    return dt;
}

int l_raise_interruptible(lua_State *L, nnu_status st) {
    if (st == NNU_STATUS_ERR_INTERRUPTED) return luaL_error(L, "interrupted! (%s)", nnu_last_error());
    return l_raise(L, st);
}

double l_opt_num_field(lua_State *L, int t, const char *k, double def) {
    lua_getfield(L, t, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

lua_Integer l_opt_int_field(lua_State *L, int t, const char *k, lua_Integer def) {
    lua_getfield(L, t, k);
    lua_Integer v = lua_isnil(L, -1) ? def : luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

int l_num_array_field(lua_State *L, int t, const char *k, double *out, int max, int required) {
    int ty = lua_getfield(L, t, k);
    if (ty == LUA_TNIL && !required) { lua_pop(L, 1); return 0; }
    if (ty != LUA_TTABLE) luaL_error(L, "field '%s' must be an array of numbers", k);
    int n = (int)luaL_len(L, -1);
    if (n > max) luaL_error(L, "field '%s' has %d entries, at most %d", k, n, max);
    for (int i = 0; i < n; i++) {
        lua_geti(L, -1, i + 1);
        int ok;
        out[i] = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_error(L, "field '%s'[%d] is not a number", k, i + 1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return n;
}

void l_set_nums_field(lua_State *L, const char *k, const double *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { lua_pushnumber(L, v[i]); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, k);
}

void l_set_ints_field(lua_State *L, const char *k, const int64_t *v, int n) {
    l_pushshape(L, n, v);
    lua_setfield(L, -2, k);
}

void l_check_preproc_channels(lua_State *L, int idx, nnu_preproc_config *cfg) {
    idx = lua_absindex(L, idx);
    if (lua_getfield(L, idx, "schemes") != LUA_TTABLE) luaL_error(L, "cfg.schemes must be an array of class names");
    int C = (int)luaL_len(L, -1);
    if (C <= 0 || C > 1024) luaL_error(L, "cfg.schemes must have 1..1024 entries");
    int sch = lua_absindex(L, -1);
    nnu_norm_scheme *schemes = lua_newuserdatauv(L, (size_t)C * sizeof *schemes, 0);
    int *mask = lua_newuserdatauv(L, (size_t)C * sizeof *mask, 0);
    nnu_norm_ct_props *ct = lua_newuserdatauv(L, (size_t)C * sizeof *ct, 0);
    memset(mask, 0, (size_t)C * sizeof *mask);
    memset(ct, 0, (size_t)C * sizeof *ct);
    for (int c = 0; c < C; c++) {
        lua_geti(L, sch, c + 1);
        const char *name = luaL_checkstring(L, -1);
        if (nnu_normalize_scheme_from_name(name, &schemes[c]) != NNU_STATUS_OK)
            luaL_error(L, "cfg.schemes[%d]: unknown normalization '%s'", c + 1, name);
        lua_pop(L, 1);
    }
    if (lua_getfield(L, idx, "use_mask_for_norm") == LUA_TTABLE)
        for (int c = 0; c < C; c++) { lua_geti(L, -1, c + 1); mask[c] = lua_toboolean(L, -1); lua_pop(L, 1); }
    lua_pop(L, 1);
    if (lua_getfield(L, idx, "ct") == LUA_TTABLE)
        for (int c = 0; c < C; c++) {
            if (lua_geti(L, -1, c + 1) == LUA_TTABLE) {
                int t = lua_absindex(L, -1);
                ct[c].mean = l_opt_num_field(L, t, "mean", 0);
                ct[c].std = l_opt_num_field(L, t, "std", 1);
                ct[c].percentile_00_5 = l_opt_num_field(L, t, "percentile_00_5", -HUGE_VAL);
                ct[c].percentile_99_5 = l_opt_num_field(L, t, "percentile_99_5", HUGE_VAL);
            } else if (schemes[c] == NNU_NORM_CT) {
                luaL_error(L, "cfg.ct[%d] is needed for CTNormalization", c + 1);
            }
            lua_pop(L, 1);
        }
    lua_pop(L, 1);
    cfg->n_channels = C;
    cfg->schemes = schemes;
    cfg->use_mask_for_norm = mask;
    cfg->ct = ct;
}

void l_push_preproc_props(lua_State *L, const nnu_preproc_props *p) {
    lua_createtable(L, 0, 10);
    l_set_nums_field(L, "spacing", p->spacing, 3);
    l_set_nums_field(L, "spacing_transposed", p->spacing_transposed, 3);
    l_set_nums_field(L, "target_spacing", p->target_spacing, 3);
    l_set_ints_field(L, "shape_before_cropping", p->shape_before_cropping, 3);
    lua_createtable(L, 3, 0);
    for (int a = 0; a < 3; a++) { l_pushshape(L, 2, p->bbox[a]); lua_rawseti(L, -2, a + 1); }
    lua_setfield(L, -2, "bbox_used_for_cropping");
    l_set_ints_field(L, "shape_after_cropping_and_before_resampling", p->shape_after_cropping, 3);
    l_set_ints_field(L, "shape_after_resampling", p->shape_after_resampling, 3);
}
