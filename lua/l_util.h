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

/* l_raise, except NNU_STATUS_ERR_INTERRUPTED raises "interrupted! (<message>)" (Ctrl-C). */
int l_raise_interruptible(lua_State *L, nnu_status st);

/* ---- option-table readers (raise on malformed input: programming errors) ---- */

/* Field k of the table at t as a number / integer; def when nil. */
double l_opt_num_field(lua_State *L, int t, const char *k, double def);
lua_Integer l_opt_int_field(lua_State *L, int t, const char *k, lua_Integer def);
/* Numeric array field k of the table at t into out (at most max entries); returns
 * its length. Absent: 0 when !required, else an error like any non-table value. */
int l_num_array_field(lua_State *L, int t, const char *k, double *out, int max, int required);
/* t[k] = {v[0], ..., v[n-1]} (numbers / integers) on the table at the stack top. */
void l_set_nums_field(lua_State *L, const char *k, const double *v, int n);
void l_set_ints_field(lua_State *L, const char *k, const int64_t *v, int n);

/* ---- nnunet.preproc_case / nnunet.export: the preprocessing cfg and case props ---- */

struct nnu_preproc_config;
struct nnu_preproc_props;
/* Reads cfg.schemes, cfg.use_mask_for_norm and cfg.ct of the cfg table at idx into
 * cfg->n_channels, schemes, use_mask_for_norm, ct (the other fields untouched). The
 * arrays live in 3 userdata pushed above the schemes table, which also stays on the
 * stack (4 slots): keep them there until the core call returns. */
void l_check_preproc_channels(lua_State *L, int idx, struct nnu_preproc_config *cfg);
/* Pushes a new table with the props fields spacing, spacing_transposed, target_spacing,
 * shape_before_cropping, bbox_used_for_cropping (0-based half-open), shape_after_
 * cropping_and_before_resampling, shape_after_resampling. */
void l_push_preproc_props(lua_State *L, const struct nnu_preproc_props *p);

struct nnu_image_info;
/* An image geometry table (what image.read returns as its info, or {spacing_itk, origin,
 * direction[, spatial_dims]}) at idx -> struct, for writing with that geometry (l_image.c).
 * Raises a Lua error naming the bad field. */
void l_image_check_info(lua_State *L, int idx, struct nnu_image_info *info);

/* A reader class name at idx ("SimpleITKIO", "NaturalImage2DIO", ...; nil or none:
 * NNU_IMAGE_READER_AUTO, by file ending) as an nnu_image_reader; raises on an unknown
 * name (l_image.c). */
int l_check_image_reader(lua_State *L, int idx);

struct nnu_image_read_opts;
/* {reader =, seg =} at idx (a table; nil or none: by ending, an image) into *o (l_image.c) */
void l_check_image_read_opts(lua_State *L, int idx, struct nnu_image_read_opts *o);

#endif
