/* l_sys.c: process-level facts for recipes: install root (home), version,
 * monotonic clock, CPU count, the Ctrl-C flag, and whether a CUDA backend was
 * compiled in. The host sets sys.home before any recipe runs. */
#include <sys/types.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "nnu_interrupt.h"

#ifndef NNUNET_VERSION
#define NNUNET_VERSION "0.0.0"
#endif

static int l_sys_clock(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static int l_sys_ncpu(lua_State *L) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static int l_sys_interrupted(lua_State *L) {
    lua_pushboolean(L, nnu_interrupt_requested());
    return 1;
}

static int l_sys_isatty(lua_State *L) {
    lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 2)));
    return 1;
}

/* absolute path of the running program (for tests that start it again) */
static int l_sys_exe(lua_State *L) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return 0;
    lua_pushlstring(L, buf, (size_t)n);
    return 1;
}

/* setenv(name, value): for recipes that run other steps in a private workspace
 * (the demo points nnUNet_raw/preprocessed/results at its own folder) */
static int l_sys_setenv(lua_State *L) {
    const char *name = luaL_checkstring(L, 1), *value = luaL_checkstring(L, 2);
    if (setenv(name, value, 1) != 0) return luaL_error(L, "setenv %s failed", name);
    return 0;
}

static const luaL_Reg sys_functions[] = {
    {"setenv", l_sys_setenv},
    {"exe", l_sys_exe},
    {"clock", l_sys_clock}, {"ncpu", l_sys_ncpu}, {"interrupted", l_sys_interrupted},
    {"isatty", l_sys_isatty}, {NULL, NULL}};

int luaopen_nnunet_sys(lua_State *L) {
    luaL_newlib(L, sys_functions);
    lua_pushliteral(L, NNUNET_VERSION);
    lua_setfield(L, -2, "version");
#ifdef NNUNET_HAVE_CUDA
    lua_pushboolean(L, 1);
#else
    lua_pushboolean(L, 0);
#endif
    lua_setfield(L, -2, "cuda_compiled");
    return 1;
}
