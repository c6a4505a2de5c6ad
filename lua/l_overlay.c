/* l_overlay.c: binds core/nnu_overlay.h as the module "nnunet.overlay" (the PNGs of
 * plot_overlay_pngs). Slices seen from Lua are 1-based.
 *
 *   overlay.case(image, seg [, intensity]) -> rgb (Y, X, 3) u8, slice (1-based)
 *                                             image, seg: (Z, Y, X) tensors of equal shape
 *   overlay.select_slice(seg)              -> slice (1-based)
 *   overlay.render(image2d, seg2d [, intensity]) -> rgb
 *   overlay.write_png(path, rgb)           -> true | nil, msg, code
 *   overlay.read_png(path)                 -> rgb | nil, msg, code */
#include "l_util.h"
#include "nnu_overlay.h"

static int l_overlay_case(lua_State *L) {
    nnu_tensor *image = l_tensor_check(L, 1), *seg = l_tensor_check(L, 2);
    double intensity = luaL_optnumber(L, 3, 0.6);
    nnu_tensor **box = l_tensor_newbox(L);
    int64_t slice = 0;
    nnu_status st = nnu_overlay_case(image, seg, intensity, &slice, box);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)slice + 1);
    return 2;
}

static int l_overlay_select_slice(lua_State *L) {
    int64_t slice = 0;
    nnu_status st = nnu_overlay_select_slice(l_tensor_check(L, 1), &slice);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)slice + 1);
    return 1;
}

static int l_overlay_render(lua_State *L) {
    nnu_tensor *image = l_tensor_check(L, 1), *seg = l_tensor_check(L, 2);
    double intensity = luaL_optnumber(L, 3, 0.6);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_overlay_render(image, seg, intensity, box);
    if (st) return l_raise(L, st);
    return 1;
}

static int l_overlay_write_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_status st = nnu_png_write_rgb(path, l_tensor_check(L, 2));
    if (st == NNU_STATUS_ERR_SHAPE || st == NNU_STATUS_ERR_ARG) return l_raise(L, st);
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_overlay_read_png(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_png_read_rgb(path, box);
    if (st) return l_fail(L, st);
    return 1;
}

static const luaL_Reg overlay_functions[] = {
    {"case", l_overlay_case},         {"select_slice", l_overlay_select_slice},
    {"render", l_overlay_render},       {"write_png", l_overlay_write_png}, {"read_png", l_overlay_read_png},
    {NULL, NULL}};

int luaopen_nnunet_overlay(lua_State *L) {
    luaL_newlib(L, overlay_functions);
    return 1;
}
