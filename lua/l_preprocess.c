/* l_preprocess.c: module "nnunet.preprocess", thin bindings of the preprocessing
 * numerics (core/nnu_crop.h, nnu_normalize.h, nnu_resample.h, nnu_fingerprint.h).
 *
 *   crop(image[, label]) -> image_c, label_c, bbox, shape_before
 *   uncrop(t, bbox, shape_before[, fill]) -> t_full
 *   normalize(channel, scheme[, {mask=label, mean=, std=, percentile_00_5=, percentile_99_5=,
 *             transpose_forward={0,1,2} (the plans' 0-based list; exact sums for transposed data)}]) -> channel
 *   scheme_for_channel(name) -> "ZScoreNormalization" | "CTNormalization" | ...
 *   new_shape(shape, old_spacing, new_spacing) -> shape
 *   separate_z_axis(current_spacing, new_spacing[, force]) -> axis (1-based) | nil
 *   resample(t, new_shape, current_spacing, new_spacing[, {order=3, order_z=0, is_seg=false,
 *            force_separate_z=nil|true|false}]) -> t' (t itself when the shape is unchanged)
 *   resample_seg(t, new_shape, current_spacing, new_spacing[, opts]) -> t' (order 1, per label)
 *   fingerprint(cases, num_channels[, {threads=, progress=true, num_samples=1e8, seed=1234,
 *               reader = "SimpleITKIO" (the plans' image_reader_writer; nil: by file ending)}])
 *       cases = { {images = {path, ...}, label = path}, ... }
 *       -> { spacings, shapes_after_crop, foreground_intensity_properties_per_channel = {["0"] = {...}},
 *            median_relative_size_after_cropping, num_samples_per_case, relative_sizes }
 *          | nil, message, status   (unreadable or inconsistent files)
 *   fingerprint_case(image, label[, num_samples, seed]) -> record, samples (C, num_samples)
 *   intensity_stats(samples_f32[, as_float64]) -> {mean, median, std, min, max, percentile_99_5, percentile_00_5}
 *
 * Conventions: tensors are (C, D, H, W); spacings and shapes (z, y, x). A bbox is
 * the reference's {{start, end}, ...} per axis: 0-based, half-open, exactly as
 * nnU-Net stores bbox_used_for_cropping (it is data for the properties file, not
 * a Lua index range). */
#include <stdlib.h>
#include <string.h>

#include "l_util.h"
#include "nnu_crop.h"
#include "nnu_fingerprint.h"
#include "nnu_normalize.h"
#include "nnu_resample.h"

static void check3(lua_State *L, int arg, int64_t *v) {
    int n = l_checkshape(L, arg, v);
    luaL_argcheck(L, n == 3, arg, "expected 3 values (z, y, x)");
}

static void check3d(lua_State *L, int arg, double *v) {
    luaL_checktype(L, arg, LUA_TTABLE);
    luaL_argcheck(L, luaL_len(L, arg) == 3, arg, "expected 3 spacings (z, y, x)");
    for (int i = 0; i < 3; i++) {
        lua_geti(L, arg, i + 1);
        v[i] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
}

static void push3d(lua_State *L, const double *v) {
    lua_createtable(L, 3, 0);
    for (int i = 0; i < 3; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_bbox(lua_State *L, const int64_t bb[3][2]) {
    lua_createtable(L, 3, 0);
    for (int a = 0; a < 3; a++) {
        l_pushshape(L, 2, bb[a]);
        lua_rawseti(L, -2, a + 1);
    }
}

static void check_bbox(lua_State *L, int arg, int64_t bb[3][2]) {
    luaL_checktype(L, arg, LUA_TTABLE);
    luaL_argcheck(L, luaL_len(L, arg) == 3, arg, "bbox must have 3 axes");
    for (int a = 0; a < 3; a++) {
        lua_geti(L, arg, a + 1);
        int64_t v[NNU_MAX_DIMS];
        int n = l_checkshape(L, lua_gettop(L), v);
        luaL_argcheck(L, n == 2, arg, "bbox entries are {start, end}");
        bb[a][0] = v[0];
        bb[a][1] = v[1];
        lua_pop(L, 1);
    }
}

/* ---- crop ---- */

static int l_preprocess_crop(lua_State *L) {
    nnu_tensor *img = l_tensor_check(L, 1);
    nnu_tensor *lab = lua_isnoneornil(L, 2) ? NULL : l_tensor_check(L, 2);
    nnu_tensor **bi = l_tensor_newbox(L), **bl = l_tensor_newbox(L);
    int64_t bb[3][2], before[3];
    nnu_status st = nnu_crop_to_nonzero(img, lab, bi, bl, bb, before);
    if (st) return l_raise(L, st);
    push_bbox(L, bb);
    l_pushshape(L, 3, before);
    return 4;
}

static int l_preprocess_uncrop(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t bb[3][2], before[3];
    check_bbox(L, 2, bb);
    check3(L, 3, before);
    double fill = luaL_optnumber(L, 4, 0);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_crop_uncrop(t, bb, before, fill, box);
    return st ? l_raise(L, st) : 1;
}

/* ---- normalize ---- */

static double opt_field(lua_State *L, int t, const char *k, int *found) {
    lua_getfield(L, t, k);
    double v = 0;
    if (!lua_isnil(L, -1)) {
        v = luaL_checknumber(L, -1);
        if (found) (*found)++;
    }
    lua_pop(L, 1);
    return v;
}

static int l_preprocess_normalize(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    const char *name = luaL_checkstring(L, 2);
    nnu_norm_scheme s;
    if (nnu_normalize_scheme_from_name(name, &s)) return luaL_argerror(L, 2, nnu_last_error());
    nnu_tensor *mask = NULL;
    nnu_norm_ct_props ct = {0, 0, 0, 0};
    int nct = 0, tf[3], has_tf = 0;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "transpose_forward");      /* the plans' 0-based list */
        if (!lua_isnil(L, -1)) {
            int64_t v[NNU_MAX_DIMS];
            luaL_argcheck(L, l_checkshape(L, lua_gettop(L), v) == 3, 3, "transpose_forward needs 3 entries");
            for (int i = 0; i < 3; i++) tf[i] = (int)v[i];
            has_tf = 1;
        }
        lua_pop(L, 1);
        lua_getfield(L, 3, "mask");
        if (!lua_isnil(L, -1)) mask = l_tensor_check(L, -1);
        lua_pop(L, 1);
        ct.mean = opt_field(L, 3, "mean", &nct);
        ct.std = opt_field(L, 3, "std", &nct);
        ct.percentile_00_5 = opt_field(L, 3, "percentile_00_5", &nct);
        ct.percentile_99_5 = opt_field(L, 3, "percentile_99_5", &nct);
    }
    luaL_argcheck(L, s != NNU_NORM_CT || nct == 4, 3,
                  "CTNormalization needs mean, std, percentile_00_5 and percentile_99_5");
    nnu_status st = has_tf ? nnu_normalize_transposed(t, s, mask, s == NNU_NORM_CT ? &ct : NULL, tf)
                           : nnu_normalize(t, s, mask, s == NNU_NORM_CT ? &ct : NULL);
    if (st) return l_raise(L, st);
    lua_settop(L, 1);
    return 1;
}

static int l_preprocess_scheme_for_channel(lua_State *L) {
    lua_pushstring(L, nnu_normalize_scheme_name(nnu_normalize_scheme_for_channel(luaL_checkstring(L, 1))));
    return 1;
}

/* ---- resample ---- */

static int l_preprocess_new_shape(lua_State *L) {
    int64_t shape[NNU_MAX_DIMS], ns[3];
    double a[3], b[3];
    check3(L, 1, shape);
    check3d(L, 2, a);
    check3d(L, 3, b);
    nnu_resample_new_shape(shape, a, b, ns);
    l_pushshape(L, 3, ns);
    return 1;
}

static int l_preprocess_separate_z_axis(lua_State *L) {
    double a[3], b[3];
    check3d(L, 1, a);
    check3d(L, 2, b);
    int force = lua_isnoneornil(L, 3) ? -1 : lua_toboolean(L, 3);
    int ax = nnu_resample_sep_z_axis(a, b, force, luaL_optnumber(L, 4, NNU_RESAMPLE_ANISO_THRESHOLD));
    if (ax < 0) lua_pushnil(L);
    else lua_pushinteger(L, ax + 1);
    return 1;
}

static int resample_common(lua_State *L, nnu_resample_opts o) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t ns[NNU_MAX_DIMS];
    double a[3], b[3];
    check3(L, 2, ns);
    check3d(L, 3, a);
    check3d(L, 4, b);
    if (lua_istable(L, 5)) {
        lua_getfield(L, 5, "order");
        o.order = (int)luaL_optinteger(L, -1, o.order);
        lua_getfield(L, 5, "order_z");
        o.order_z = (int)luaL_optinteger(L, -1, o.order_z);
        lua_getfield(L, 5, "is_seg");
        if (!lua_isnil(L, -1)) o.is_seg = lua_toboolean(L, -1);
        lua_getfield(L, 5, "force_separate_z");
        if (!lua_isnil(L, -1)) o.force_separate_z = lua_toboolean(L, -1);
        lua_getfield(L, 5, "anisotropy_threshold");
        o.aniso_threshold = luaL_optnumber(L, -1, o.aniso_threshold);
        lua_pop(L, 5);
    }
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_resample_to_shape(t, ns, a, b, &o, box);
    return st ? l_raise(L, st) : 1;
}

static int l_preprocess_resample(lua_State *L) { return resample_common(L, nnu_resample_opts_data()); }
static int l_preprocess_resample_seg(lua_State *L) { return resample_common(L, nnu_resample_opts_seg()); }

/* ---- fingerprint ---- */

static void push_stats(lua_State *L, const nnu_intensity_stats *s) {
    lua_createtable(L, 0, 7);
    lua_pushnumber(L, s->max); lua_setfield(L, -2, "max");
    lua_pushnumber(L, s->mean); lua_setfield(L, -2, "mean");
    lua_pushnumber(L, s->median); lua_setfield(L, -2, "median");
    lua_pushnumber(L, s->min); lua_setfield(L, -2, "min");
    lua_pushnumber(L, s->percentile_00_5); lua_setfield(L, -2, "percentile_00_5");
    lua_pushnumber(L, s->percentile_99_5); lua_setfield(L, -2, "percentile_99_5");
    lua_pushnumber(L, s->std); lua_setfield(L, -2, "std");
}

static void push_case(lua_State *L, const nnu_fingerprint_case *c) {
    lua_createtable(L, 0, 6);
    l_pushshape(L, 3, c->shape_after_crop); lua_setfield(L, -2, "shape_after_crop");
    l_pushshape(L, 3, c->shape_before); lua_setfield(L, -2, "shape_before_cropping");
    push3d(L, c->spacing); lua_setfield(L, -2, "spacing");
    push_bbox(L, c->bbox); lua_setfield(L, -2, "bbox");
    lua_pushnumber(L, c->relative_size_after_cropping); lua_setfield(L, -2, "relative_size_after_cropping");
    lua_pushinteger(L, (lua_Integer)c->n_foreground); lua_setfield(L, -2, "n_foreground");
}

/* the path strings live in a Lua table (kept on the stack) while C holds pointers */
static int l_preprocess_fingerprint(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    int nch = (int)luaL_checkinteger(L, 2);
    luaL_argcheck(L, nch >= 1, 2, "need at least one channel");
    lua_Integer n = luaL_len(L, 1);
    luaL_argcheck(L, n >= 1, 1, "no cases");
    nnu_fingerprint_opts o = nnu_fingerprint_opts_default();
    nnu_image_reader reader = NNU_IMAGE_READER_AUTO;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "threads");
        o.n_threads = (int)luaL_optinteger(L, -1, 0);
        lua_getfield(L, 3, "progress");
        if (!lua_isnil(L, -1)) o.progress = lua_toboolean(L, -1);
        lua_getfield(L, 3, "num_samples");
        o.num_samples_total = luaL_optnumber(L, -1, o.num_samples_total);
        lua_getfield(L, 3, "seed");
        o.seed = (uint32_t)luaL_optinteger(L, -1, o.seed);
        lua_getfield(L, 3, "reader");
        reader = l_check_image_reader(L, -1);
        lua_pop(L, 5);
    }
    /* files per case: fewer than channels when a file holds several (4-D NIfTI, RGB PNG) */
    lua_geti(L, 1, 1);
    luaL_argcheck(L, lua_istable(L, -1), 1, "each case must be {images = {...}, label = path}");
    lua_getfield(L, -1, "images");
    luaL_argcheck(L, lua_istable(L, -1), 1, "each case must be {images = {...}, label = path}");
    const int nfiles = (int)luaL_len(L, -1);
    lua_pop(L, 2);
    luaL_argcheck(L, nfiles >= 1 && nfiles <= nch, 1, "a case must have 1..channels image files");
    /* path arrays as userdata so a Lua error cannot leak them */
    const char **images = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n * nfiles), 0);
    const char **labels = lua_newuserdatauv(L, sizeof(char *) * (size_t)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        luaL_argcheck(L, lua_istable(L, -1), 1, "each case must be {images = {...}, label = path}");
        lua_getfield(L, -1, "images");
        luaL_argcheck(L, lua_istable(L, -1) && luaL_len(L, -1) == nfiles, 1,
                      "every case must have as many image files as the first");
        for (int c = 0; c < nfiles; c++) {
            lua_geti(L, -1, c + 1);
            images[i * nfiles + c] = luaL_checkstring(L, -1);   /* kept alive by the cases table */
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_getfield(L, -1, "label");
        labels[i] = luaL_checkstring(L, -1);
        lua_pop(L, 2);
    }
    nnu_fingerprint_files files = {nch, nfiles, images, labels, reader};
    nnu_fingerprint fp;
    nnu_status st = nnu_fingerprint_extract(n, nch, nnu_fingerprint_load_case, &files, &o, &fp);
    if (st) {
        nnu_fingerprint_free(&fp);
        if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_SHAPE)
            return l_fail(L, st);
        return l_raise(L, st);
    }
    lua_createtable(L, 0, 6);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) { push3d(L, fp.cases[i].spacing); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "spacings");
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        l_pushshape(L, 3, fp.cases[i].shape_after_crop);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "shapes_after_crop");
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushnumber(L, fp.cases[i].relative_size_after_cropping);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "relative_sizes");
    lua_createtable(L, 0, nch);
    for (int c = 0; c < nch; c++) {
        push_stats(L, &fp.channels[c]);
        char key[16];
        snprintf(key, sizeof key, "%d", c);
        lua_setfield(L, -2, key);
    }
    lua_setfield(L, -2, "foreground_intensity_properties_per_channel");
    lua_pushnumber(L, fp.median_relative_size_after_cropping);
    lua_setfield(L, -2, "median_relative_size_after_cropping");
    lua_pushinteger(L, (lua_Integer)fp.num_samples_per_case);
    lua_setfield(L, -2, "num_samples_per_case");
    nnu_fingerprint_free(&fp);
    return 1;
}

static int l_preprocess_fingerprint_case(lua_State *L) {
    nnu_tensor *img = l_tensor_check(L, 1), *lab = l_tensor_check(L, 2);
    lua_Integer ns = luaL_optinteger(L, 3, 10000);
    lua_Integer seed = luaL_optinteger(L, 4, 1234);
    luaL_argcheck(L, ns >= 0, 3, "num_samples must be >= 0");
    luaL_argcheck(L, img->ndim == 4, 1, "image must be (C,D,H,W)");
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(NNU_DTYPE_F32, 2, (int64_t[]){img->shape[0], ns}, box);
    if (st) return l_raise(L, st);
    nnu_fingerprint_case c;
    st = nnu_fingerprint_case_tensors(img, lab, NULL, ns, (uint32_t)seed, nnu_tensor_data(*box), ns, &c);
    if (st) return l_raise(L, st);
    push_case(L, &c);
    lua_insert(L, -2);                 /* record, samples */
    return 2;
}

static int l_preprocess_intensity_stats(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int as64 = lua_toboolean(L, 2);
    nnu_tensor **box = l_tensor_newbox(L);          /* work on a float32 copy: reordered */
    nnu_status st = nnu_tensor_to_dtype(t, NNU_DTYPE_F32, box);
    if (st) return l_raise(L, st);
    nnu_intensity_stats s;
    st = nnu_fingerprint_intensity_stats(nnu_tensor_data(*box), nnu_tensor_numel(*box), as64, &s);
    if (st) return l_raise(L, st);
    push_stats(L, &s);
    return 1;
}

static const luaL_Reg preprocess_functions[] = {
    {"crop", l_preprocess_crop},
    {"uncrop", l_preprocess_uncrop},
    {"normalize", l_preprocess_normalize},
    {"scheme_for_channel", l_preprocess_scheme_for_channel},
    {"new_shape", l_preprocess_new_shape},
    {"separate_z_axis", l_preprocess_separate_z_axis},
    {"resample", l_preprocess_resample},
    {"resample_seg", l_preprocess_resample_seg},
    {"fingerprint", l_preprocess_fingerprint},
    {"fingerprint_case", l_preprocess_fingerprint_case},
    {"intensity_stats", l_preprocess_intensity_stats},
    {NULL, NULL}};

int luaopen_nnunet_preprocess(lua_State *L) {
    luaL_newlib(L, preprocess_functions);
    return 1;
}
