/* l_cascade.c: binds core/nnu_cascade.h as the module "nnunet.cascade_ops" (the
 * C side of lua/nnunet/cascade.lua).
 *
 *   ops.stack_onehot(data (C,D,H,W) f32, seg (1,D,H,W) | (D,H,W), labels = {1, 2, ...})
 *       -> (C + #labels, D, H, W) f32: the image channels, then seg == labels[k] as 0/1 */
#include "l_util.h"
#include "nnu_cascade.h"

static int l_cascade_stack_onehot(lua_State *L) {
    nnu_tensor *data = l_tensor_check(L, 1), *seg = l_tensor_check(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    int n = (int)luaL_len(L, 3);
    luaL_argcheck(L, n <= NNU_CASCADE_MAX_LABELS, 3, "too many labels");
    int32_t labels[NNU_CASCADE_MAX_LABELS];
    for (int i = 0; i < n; i++) {
        lua_geti(L, 3, i + 1);
        labels[i] = (int32_t)luaL_checkinteger(L, -1);
        lua_pop(L, 1);
    }
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_cascade_stack_onehot(data, seg, n, labels, box);
    return st ? l_raise(L, st) : 1;
}

static const luaL_Reg cascade_functions[] = {{"stack_onehot", l_cascade_stack_onehot}, {NULL, NULL}};

int luaopen_nnunet_cascade_ops(lua_State *L) {
    luaL_newlib(L, cascade_functions);
    return 1;
}
