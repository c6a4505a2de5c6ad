/* l_http.c: module "nnunet.http", the thin binding of core/nnu_http.h.
 *
 *   http.download(url, dest [, progress=true]) -> true | nil, msg, code
 *       the file at url (https, http, ftp, file) written to dest through dest.part
 *       (renamed when complete); a failure (unreachable host, HTTP >= 400, full disk)
 *       returns nil, message naming the URL; Ctrl-C raises (the recipe stops). */
#include "l_util.h"
#include "nnu_http.h"

static int l_http_download(lua_State *L) {
    const char *url = luaL_checkstring(L, 1), *dest = luaL_checkstring(L, 2);
    int progress = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
    nnu_status st = nnu_http_download(url, dest, progress);
    if (st == NNU_STATUS_ERR_IO) return l_fail(L, st);
    if (st) return l_raise_interruptible(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg http_functions[] = {{"download", l_http_download}, {NULL, NULL}};

int luaopen_nnunet_http(lua_State *L) {
    luaL_newlib(L, http_functions);
    return 1;
}
