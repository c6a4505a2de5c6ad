/* l_util.h: helpers shared by the Lua bindings (STYLE R12, R13, R15). */
#ifndef L_UTIL_H
#define L_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "nnu_status.h"
#include "nnu_tensor.h"

#define L_TENSOR_MT "nnunet.Tensor"

/* Raises "ERR_SHAPE: <message>" from the thread-local core error (R15). */
int l_raise(lua_State *L, nnu_status st);
/* Pushes nil, message, status name and returns 3: for expected failures (I/O). */
int l_fail(lua_State *L, nnu_status st);

/* Pushes a new, empty tensor box (R12); fill *box with an owned tensor. */
nnu_tensor **l_tensor_newbox(lua_State *L);
/* The tensor at arg (raises if not a live tensor). */
nnu_tensor *l_tensor_check(lua_State *L, int arg);
/* Pushes t as a new box; steals the reference. */
void l_tensor_push(lua_State *L, nnu_tensor *t);

/* Reads a shape table {d1, d2, ...} at arg; returns ndim. */
int l_checkshape(lua_State *L, int arg, int64_t *shape);
/* Pushes {d1, d2, ...}. */
void l_pushshape(lua_State *L, int ndim, const int64_t *shape);
/* Reads a dtype name at arg (default def when absent). */
nnu_dtype l_optdtype(lua_State *L, int arg, nnu_dtype def);

#endif
