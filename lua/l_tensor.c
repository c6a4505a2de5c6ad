/* l_tensor.c: binds core/nnu_tensor.h as the userdata "nnunet.Tensor" (STYLE R2, R11).
 * Lua sees 1-based axes and indices; the conversion to the core's 0-based
 * convention happens only here. __gc and __close are the same idempotent release. */
#include <stdio.h>
#include <string.h>

#include "l_util.h"

/* ---- constructors ---- */

static int l_tensor_zeros(lua_State *L) {
    int64_t shape[NNU_MAX_DIMS];
    int nd = l_checkshape(L, 1, shape);
    nnu_dtype dt = l_optdtype(L, 2, NNU_DTYPE_F32);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(dt, nd, shape, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_full(lua_State *L) {
    int64_t shape[NNU_MAX_DIMS];
    int nd = l_checkshape(L, 1, shape);
    double v = luaL_checknumber(L, 2);
    nnu_dtype dt = l_optdtype(L, 3, NNU_DTYPE_F32);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(dt, nd, shape, box);
    if (st == NNU_STATUS_OK) st = nnu_tensor_fill(*box, v);
    return st ? l_raise(L, st) : 1;
}

/* from_table(values, shape, dtype): values in C order (last axis fastest) */
static int l_tensor_from_table(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[NNU_MAX_DIMS];
    int nd = l_checkshape(L, 2, shape);
    nnu_dtype dt = l_optdtype(L, 3, NNU_DTYPE_F32);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(dt, nd, shape, box);
    if (st) return l_raise(L, st);
    int64_t n = nnu_tensor_numel(*box);
    luaL_argcheck(L, (int64_t)luaL_len(L, 1) == n, 1, "number of values does not match the shape");
    char *p = nnu_tensor_data(*box);
    size_t es = nnu_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        nnu_dtype_store(dt, p + i * (int64_t)es, luaL_checknumber(L, -1));
        lua_pop(L, 1);
    }
    return 1;
}

/* ---- properties ---- */

static int l_tensor_shape(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    l_pushshape(L, t->ndim, t->shape);
    return 1;
}

static int l_tensor_dtype(lua_State *L) {
    lua_pushstring(L, nnu_dtype_name(l_tensor_check(L, 1)->dtype));
    return 1;
}

static int l_tensor_ndim(lua_State *L) {
    lua_pushinteger(L, l_tensor_check(L, 1)->ndim);
    return 1;
}

static int l_tensor_numel(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)nnu_tensor_numel(l_tensor_check(L, 1)));
    return 1;
}

static int l_tensor_is_contiguous(lua_State *L) {
    lua_pushboolean(L, nnu_tensor_is_contiguous(l_tensor_check(L, 1)));
    return 1;
}

/* ---- views ---- */

static int l_checkaxis(lua_State *L, int arg, const nnu_tensor *t) {
    lua_Integer a = luaL_checkinteger(L, arg);
    luaL_argcheck(L, a >= 1 && a <= t->ndim, arg, "axis out of range");
    return (int)a - 1;
}

static int l_tensor_narrow(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int axis = l_checkaxis(L, 2, t);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_view_narrow(t, axis, start - 1, len, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_select(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int axis = l_checkaxis(L, 2, t);
    lua_Integer index = luaL_checkinteger(L, 3);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_view_select(t, axis, index - 1, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_permute(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t p64[NNU_MAX_DIMS];
    int n = l_checkshape(L, 2, p64);
    luaL_argcheck(L, n == t->ndim, 2, "permutation length differs from ndim");
    int perm[NNU_MAX_DIMS];
    for (int i = 0; i < n; i++) perm[i] = (int)p64[i] - 1;
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_view_permute(t, perm, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_reshape(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n <= NNU_MAX_DIMS, 2, "at most 5 dimensions");
    int64_t shape[NNU_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        shape[i] = (int64_t)luaL_checkinteger(L, -1);   /* -1 allowed: inferred */
        lua_pop(L, 1);
    }
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_view_reshape(t, n, shape, box);
    return st ? l_raise(L, st) : 1;
}

/* ---- copies ---- */

static int l_tensor_contiguous(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_contiguous(t, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_clone(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_clone(t, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_astype(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    nnu_dtype dt = l_optdtype(L, 2, t->dtype);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_to_dtype(t, dt, box);
    return st ? l_raise(L, st) : 1;
}

static int l_tensor_copy_from(lua_State *L) {
    nnu_tensor *dst = l_tensor_check(L, 1), *src = l_tensor_check(L, 2);
    nnu_status st = nnu_tensor_copy(dst, src);
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_tensor_fill(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    nnu_status st = nnu_tensor_fill(t, luaL_checknumber(L, 2));
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

/* ---- element access ---- */

static void l_checkindex(lua_State *L, int first, const nnu_tensor *t, int64_t *index) {
    for (int i = 0; i < t->ndim; i++) index[i] = (int64_t)luaL_checkinteger(L, first + i) - 1;
}

static int l_tensor_get(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t index[NNU_MAX_DIMS];
    l_checkindex(L, 2, t, index);
    double v;
    nnu_status st = nnu_tensor_get(t, index, &v);
    if (st) return l_raise(L, st);
    if (nnu_dtype_is_float(t->dtype)) lua_pushnumber(L, v);
    else lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

static int l_tensor_set(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t index[NNU_MAX_DIMS];
    l_checkindex(L, 2, t, index);
    nnu_status st = nnu_tensor_set(t, index, luaL_checknumber(L, 2 + t->ndim));
    return st ? l_raise(L, st) : 0;
}

/* flat array of all elements in C order (for tests and small tensors) */
static int l_tensor_totable(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    nnu_tensor *c = NULL;
    nnu_status st = nnu_tensor_contiguous(t, &c);
    if (st) return l_raise(L, st);
    int64_t n = nnu_tensor_numel(c);
    size_t es = nnu_dtype_size(c->dtype);
    const char *p = nnu_tensor_data(c);
    int isf = nnu_dtype_is_float(c->dtype);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        double v = nnu_dtype_load(c->dtype, p + i * (int64_t)es);
        if (isf) lua_pushnumber(L, v);
        else lua_pushinteger(L, (lua_Integer)v);
        lua_rawseti(L, -2, i + 1);
    }
    nnu_tensor_release(c);
    return 1;
}

/* ---- reductions ---- */

#define REDUCTION(name, call)                                   \
    static int l_tensor_##name(lua_State *L) {                  \
        nnu_tensor *t = l_tensor_check(L, 1);                   \
        double v;                                               \
        nnu_status st = call;                                   \
        if (st) return l_raise(L, st);                          \
        lua_pushnumber(L, v);                                   \
        return 1;                                               \
    }
REDUCTION(sum, nnu_tensor_sum(t, &v))
REDUCTION(mean, nnu_tensor_mean(t, &v))
REDUCTION(min, nnu_tensor_min(t, &v))
REDUCTION(max, nnu_tensor_max(t, &v))
REDUCTION(std, nnu_tensor_std(t, (int)luaL_optinteger(L, 2, 0), &v))

/* t:percentile(q) -> number; t:percentile({q1, q2}) -> {p1, p2} */
static int l_tensor_percentile(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    if (lua_isnumber(L, 2)) {
        double q = lua_tonumber(L, 2), v;
        nnu_status st = nnu_tensor_percentile(t, &q, 1, &v);
        if (st) return l_raise(L, st);
        lua_pushnumber(L, v);
        return 1;
    }
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && n <= 64, 2, "1 to 64 percentiles");
    double q[64], v[64];
    for (int i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        q[i] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    nnu_status st = nnu_tensor_percentile(t, q, n, v);
    if (st) return l_raise(L, st);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) { lua_pushnumber(L, v[i]); lua_rawseti(L, -2, i + 1); }
    return 1;
}

/* ---- metamethods ---- */

static int l_tensor_gc(lua_State *L) {
    nnu_tensor **box = (nnu_tensor **)luaL_checkudata(L, 1, L_TENSOR_MT);
    nnu_tensor_release(*box);   /* never raises (R11) */
    *box = NULL;
    return 0;
}

static int l_tensor_tostring(lua_State *L) {
    nnu_tensor **box = (nnu_tensor **)luaL_checkudata(L, 1, L_TENSOR_MT);
    if (!*box) { lua_pushliteral(L, "nnunet.Tensor(released)"); return 1; }
    char s[128];
    lua_pushfstring(L, "nnunet.Tensor(%s, %s, %s)", nnu_dtype_name((*box)->dtype),
                    (*box)->storage->mem ? (*box)->storage->mem->name : "cpu",
                    nnu_tensor_shape_str(*box, s, sizeof s));
    return 1;
}

static int l_tensor_len(lua_State *L) { return l_tensor_numel(L); }

static const luaL_Reg tensor_methods[] = {
    {"shape", l_tensor_shape},       {"dtype", l_tensor_dtype},
    {"ndim", l_tensor_ndim},         {"numel", l_tensor_numel},
    {"is_contiguous", l_tensor_is_contiguous},
    {"narrow", l_tensor_narrow},     {"select", l_tensor_select},
    {"permute", l_tensor_permute},   {"reshape", l_tensor_reshape},
    {"contiguous", l_tensor_contiguous}, {"clone", l_tensor_clone},
    {"astype", l_tensor_astype},     {"copy_from", l_tensor_copy_from},
    {"fill", l_tensor_fill},         {"get", l_tensor_get},
    {"set", l_tensor_set},           {"totable", l_tensor_totable},
    {"sum", l_tensor_sum},           {"mean", l_tensor_mean},
    {"min", l_tensor_min},           {"max", l_tensor_max},
    {"std", l_tensor_std},           {"percentile", l_tensor_percentile},
    {"release", l_tensor_gc},
    {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", l_tensor_gc}, {"__close", l_tensor_gc}, {"__tostring", l_tensor_tostring},
    {"__len", l_tensor_len}, {"__index", NULL}, {NULL, NULL}};

static const luaL_Reg tensor_functions[] = {
    {"zeros", l_tensor_zeros}, {"full", l_tensor_full}, {"from_table", l_tensor_from_table},
    {NULL, NULL}};

int luaopen_nnunet_tensor(lua_State *L) {
    if (luaL_newmetatable(L, L_TENSOR_MT)) {       /* sets __name for type errors (R13) */
        luaL_setfuncs(L, tensor_meta, 0);
        luaL_newlib(L, tensor_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, tensor_functions);
    return 1;
}
