/* main.c: the nnunet host program, lua.c trimmed (STYLE R3).
 *
 * luaL_newstate -> lua_pcall(pmain) with a traceback message handler -> report
 * -> exit status. pmain registers the C modules in package.preload (no globals),
 * points package.path at the installed Lua library, then hands argv to the
 * Lua module nnunet.host, which finds and runs the recipe.
 *
 * Ctrl-C: the handler sets the core's interrupt flag (C loops poll it) and
 * installs a hook that raises "interrupted!" at the next Lua instruction, so a
 * recipe can catch it and save a checkpoint. A second Ctrl-C kills the process. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "nnu_interrupt.h"

#define NNU_LUA_MODULE(name, fn) int fn(lua_State *L);
#include "modules.def"
#undef NNU_LUA_MODULE

static lua_State *globalL = NULL;

static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void laction(int sig) {
    signal(sig, SIG_DFL);               /* a second Ctrl-C terminates the process */
    nnu_interrupt_request();
    lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

/* The folder holding lua/, rules/ and recipes/: NNUNET_HOME, else the source
 * tree above the build folder, else <prefix>/share/nnunet after an install,
 * else the source tree this binary was built from. */
static void find_home(char *home, size_t len) {
    const char *env = getenv("NNUNET_HOME");
    if (env && *env) { snprintf(home, len, "%s", env); return; }
    char exe[PATH_MAX], probe[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) { snprintf(home, len, "."); return; }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(probe, sizeof probe, "%s/../lua/nnunet/host.lua", exe);
    if (file_exists(probe)) snprintf(home, len, "%s/..", exe);
    else {
        snprintf(probe, sizeof probe, "%s/../share/nnunet/lua/nnunet/host.lua", exe);
        if (file_exists(probe)) snprintf(home, len, "%s/../share/nnunet", exe);
        else snprintf(home, len, "%s", NNUNET_SOURCE_DIR);   /* a build folder outside the tree */
    }
    char real[PATH_MAX];
    if (realpath(home, real)) snprintf(home, len, "%s", real);
}

static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    luaL_openlibs(L);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#define NNU_LUA_MODULE(name, fn) lua_pushcfunction(L, fn); lua_setfield(L, -2, name);
#include "modules.def"
#undef NNU_LUA_MODULE
    lua_pop(L, 1);

    char home[PATH_MAX];
    find_home(home, sizeof home);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", home, home);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");              /* every C module is linked in: no cpath search */
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    /* the tensor metatable must exist before any binding returns a tensor */
    luaL_requiref(L, "nnunet.tensor", luaopen_nnunet_tensor, 0);
    lua_pop(L, 1);
    luaL_requiref(L, "nnunet.sys", luaopen_nnunet_sys, 0);
    lua_pushstring(L, home);
    lua_setfield(L, -2, "home");
    lua_pop(L, 1);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "nnunet.host");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);                   /* host.main(args) -> exit status */
    return 1;
}

int main(int argc, char **argv) {
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "nnunet: cannot create Lua state: not enough memory\n");
        return EXIT_FAILURE;
    }
    globalL = L;
    lua_gc(L, LUA_GCGEN, 0, 0);
    signal(SIGINT, laction);
    lua_pushcfunction(L, msghandler);
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 1);
    int code = EXIT_SUCCESS;
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "nnunet: %s\n", msg ? msg : "(error object is not a string)");
        code = EXIT_FAILURE;
    } else if (lua_isinteger(L, -1)) {
        code = (int)lua_tointeger(L, -1);
    }
    signal(SIGINT, SIG_DFL);
    lua_close(L);                        /* runs __gc of every tensor: no leak at exit */
    return code;
}
