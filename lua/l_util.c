/* l_util.c: see l_util.h. */
#include "l_util.h"

#include <string.h>

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
