/* l_augment.c: module "nnunet.augment", the thin binding of core/nnu_augment.h.
 *
 * Volumes are nnunet.Tensor: data f32 contiguous, seg i16 contiguous; the last three
 * axes are spatial (D, H, W) and any leading axes are channels (a 2-D tensor is one
 * (H, W) slice). Spatial axes are 1-based here (1 = D, 2 = H, 3 = W); angles in
 * radians; the intensity transforms work in place on every channel alike.
 *
 *   augment.initial_patch_size(patch, rot_max [, scale_min = 0.85, dummy_2d]) -> {..}
 *       rot_max: number or {x, y, z} (radians)                     get_patch_size §8.1
 *   augment.spatial(data, seg|nil, out_shape{D,H,W}, params) -> data, seg|nil
 *       params = {dim = 3|2, angles = {a1, a2, a3}, scale = s | {s1, s2, s3},
 *                 elastic = {alpha =, sigma =}, seg = "linear"|"nearest",
 *                 border_seg = -1, seed =, stream =}   (no angles/scale/elastic: crop)
 *   augment.noise(x, sigma, seed [, stream])      augment.blur(x, sigma | {sd, sh, sw})
 *   augment.brightness(x, f)   augment.contrast(x, f [, preserve_range = true])
 *   augment.lowres(x, zoom | {zd, zh, zw})   augment.gamma(x, g [, invert, retain_stats = true])
 *   augment.mirror(data, seg|nil, {axes...})   augment.remove_label(seg, from, to)
 *   augment.mask(data, seg, {channels...})     augment.downsample_seg(seg, {D, H, W}) -> seg
 *   augment.pipeline(desc) -> nnunet.AugPipeline (desc: see lua/nnunet/augment_pipeline.lua)
 *       pipe:run(data, seg, seed [, stream]) -> data, seg    one sample, (C, S_in) -> (C, patch)
 *       pipe:describe() -> desc (normalised)     pipe:patch() -> {D, H, W}
 * Programming errors (wrong types, shapes) raise; there are no expected failures. */
#include <math.h>
#include <string.h>

#include "l_util.h"
#include "nnu_augment.h"

#define PIPE_MT "nnunet.AugPipeline"

/* ---- argument helpers ---- */

/* A contiguous tensor of dtype dt viewed as (nch, D, H, W). */
static void *check_vol(lua_State *L, int arg, nnu_dtype dt, int64_t *nch, int64_t shape[3]) {
    nnu_tensor *t = l_tensor_check(L, arg);
    luaL_argcheck(L, t->dtype == dt, arg, dt == NNU_DTYPE_F32 ? "f32 tensor expected" : "i16 tensor expected");
    luaL_argcheck(L, nnu_tensor_is_contiguous(t), arg, "contiguous tensor expected");
    luaL_argcheck(L, t->ndim >= 2, arg, "at least 2 axes (H, W) expected");
    int nd = t->ndim, k = nd >= 3 ? 3 : 2;
    shape[0] = k == 3 ? t->shape[nd - 3] : 1;
    shape[1] = t->shape[nd - 2];
    shape[2] = t->shape[nd - 1];
    *nch = 1;
    for (int i = 0; i < nd - k; i++) *nch *= t->shape[i];
    return nnu_tensor_data(t);
}

/* number or {a, b, c} → v[3] */
static void opt_triple(lua_State *L, int arg, double def, double v[3]) {
    v[0] = v[1] = v[2] = def;
    if (lua_isnoneornil(L, arg)) return;
    if (lua_isnumber(L, arg)) {
        v[0] = v[1] = v[2] = lua_tonumber(L, arg);
        return;
    }
    luaL_checktype(L, arg, LUA_TTABLE);
    luaL_argcheck(L, luaL_len(L, arg) == 3, arg, "3 values expected");
    for (int i = 0; i < 3; i++) {
        lua_geti(L, arg, i + 1);
        v[i] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
}

/* field k of the table at idx as number (def if absent) */
static double num_field(lua_State *L, int idx, const char *k, double def) {
    lua_getfield(L, idx, k);
    double v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int bool_field(lua_State *L, int idx, const char *k, int def) {
    lua_getfield(L, idx, k);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* bits of 1-based spatial axes {1, 3} → 0b101 */
static int axes_bits(lua_State *L, int arg, int max) {
    luaL_checktype(L, arg, LUA_TTABLE);
    int bits = 0;
    for (lua_Integer i = 1; i <= luaL_len(L, arg); i++) {
        lua_geti(L, arg, i);
        lua_Integer a = luaL_checkinteger(L, -1);
        luaL_argcheck(L, a >= 1 && a <= max, arg, "axis/channel index out of range");
        bits |= (int)(1u << (a - 1));
        lua_pop(L, 1);
    }
    return bits;
}

/* new tensor box like t (dtype dt) with the spatial axes replaced by shape */
static nnu_tensor **new_like(lua_State *L, const nnu_tensor *t, nnu_dtype dt, const int64_t shape[3]) {
    int64_t s[NNU_MAX_DIMS];
    int nd = t->ndim, k = nd >= 3 ? 3 : 2;
    for (int i = 0; i < nd - k; i++) s[i] = t->shape[i];
    for (int i = 0; i < k; i++) s[nd - k + i] = shape[3 - k + i];
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_tensor_new(dt, nd, s, box);
    if (st) l_raise(L, st);
    return box;
}

/* ---- functions ---- */

static int l_aug_initial_patch_size(lua_State *L) {
    int64_t patch[3], out[3];
    int nd = l_checkshape(L, 1, patch);
    luaL_argcheck(L, nd == 2 || nd == 3, 1, "2 or 3 entries expected");
    double rot[3];
    opt_triple(L, 2, 0.0, rot);
    double smin = luaL_optnumber(L, 3, 0.85);
    luaL_argcheck(L, smin > 0.0, 3, "scale_min must be > 0");
    nnu_aug_initial_patch_size(nd, patch, rot, smin, lua_toboolean(L, 4), out);
    l_pushshape(L, nd, out);
    return 1;
}

static int l_aug_spatial(lua_State *L) {
    int64_t nch, shape[3], segc = 0, sshape[3], oshape[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, shape);
    int16_t *s = NULL;
    if (!lua_isnoneornil(L, 2)) {
        s = check_vol(L, 2, NNU_DTYPE_I16, &segc, sshape);
        luaL_argcheck(L, !memcmp(shape, sshape, sizeof shape), 2, "seg's spatial shape differs from data's");
    }
    luaL_argcheck(L, l_checkshape(L, 3, oshape) == 3, 3, "{D, H, W} expected");
    luaL_checktype(L, 4, LUA_TTABLE);
    nnu_aug_spatial_params p;
    nnu_aug_spatial_params_init(&p);
    p.dim = (int)num_field(L, 4, "dim", 3);
    lua_getfield(L, 4, "angles");
    if (!lua_isnil(L, -1)) { opt_triple(L, lua_gettop(L), 0.0, p.angle); p.affine = 1; }
    lua_pop(L, 1);
    lua_getfield(L, 4, "scale");
    if (!lua_isnil(L, -1)) { opt_triple(L, lua_gettop(L), 1.0, p.scale); p.affine = 1; }
    lua_pop(L, 1);
    lua_getfield(L, 4, "elastic");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        p.elastic = 1;
        p.alpha = num_field(L, lua_gettop(L), "alpha", 0.0);
        p.sigma = num_field(L, lua_gettop(L), "sigma", 0.0);
    }
    lua_pop(L, 1);
    lua_getfield(L, 4, "seg");
    if (!lua_isnil(L, -1)) {
        const char *m = luaL_checkstring(L, -1);
        luaL_argcheck(L, !strcmp(m, "linear") || !strcmp(m, "nearest"), 4, "seg must be 'linear' or 'nearest'");
        p.seg_nearest = !strcmp(m, "nearest");
    }
    lua_pop(L, 1);
    p.border_seg = (int)num_field(L, 4, "border_seg", -1);
    nnu_rng rng;
    nnu_rng_seed(&rng, (uint64_t)num_field(L, 4, "seed", 0), (uint64_t)num_field(L, 4, "stream", 0));
    nnu_tensor *tx = l_tensor_check(L, 1);
    nnu_tensor **ox = new_like(L, tx, NNU_DTYPE_F32, oshape);
    nnu_tensor **os = s ? new_like(L, l_tensor_check(L, 2), NNU_DTYPE_I16, oshape) : NULL;
    nnu_aug_buf in = {x, (int)nch, s, (int)segc, {shape[0], shape[1], shape[2]}};
    nnu_aug_buf out = {nnu_tensor_data(*ox), (int)nch, os ? nnu_tensor_data(*os) : NULL, (int)segc,
                       {oshape[0], oshape[1], oshape[2]}};
    nnu_aug_ws ws = {0};
    nnu_status st = nnu_aug_spatial(&in, &out, &p, &rng, &ws);
    nnu_aug_ws_free(&ws);
    if (st) return l_raise(L, st);
    if (!s) lua_pushnil(L);
    return 2;
}

static int l_aug_noise(lua_State *L) {
    int64_t nch, sh[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    double sigma = luaL_checknumber(L, 2);
    nnu_rng rng;
    nnu_rng_seed(&rng, (uint64_t)luaL_checkinteger(L, 3), (uint64_t)luaL_optinteger(L, 4, 0));
    nnu_aug_noise(x, nch * sh[0] * sh[1] * sh[2], sigma, &rng);
    return 0;
}

static int l_aug_blur(lua_State *L) {
    int64_t nch, sh[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    double sig[3];
    opt_triple(L, 2, 0.0, sig);
    if (sh[0] == 1) sig[0] = 0.0;
    nnu_aug_ws ws = {0};
    nnu_status st = NNU_STATUS_OK;
    for (int64_t c = 0; c < nch && st == NNU_STATUS_OK; c++) st = nnu_aug_blur(x + c * sh[0] * sh[1] * sh[2], sh, sig, &ws);
    nnu_aug_ws_free(&ws);
    return st ? l_raise(L, st) : 0;
}

static int l_aug_brightness(lua_State *L) {
    int64_t nch, sh[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    nnu_aug_brightness(x, nch * sh[0] * sh[1] * sh[2], luaL_checknumber(L, 2));
    return 0;
}

static int l_aug_contrast(lua_State *L) {
    int64_t nch, sh[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    double f = luaL_checknumber(L, 2);
    int keep = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
    int64_t n = sh[0] * sh[1] * sh[2];
    for (int64_t c = 0; c < nch; c++) nnu_aug_contrast(x + c * n, n, f, keep);
    return 0;
}

static int l_aug_lowres(lua_State *L) {
    int64_t nch, sh[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    double z[3];
    opt_triple(L, 2, 1.0, z);
    for (int a = 0; a < 3; a++) luaL_argcheck(L, z[a] > 0.0 && z[a] <= 1.0, 2, "zoom must be in (0, 1]");
    if (sh[0] == 1) z[0] = 1.0;
    nnu_aug_ws ws = {0};
    nnu_status st = NNU_STATUS_OK;
    for (int64_t c = 0; c < nch && st == NNU_STATUS_OK; c++) st = nnu_aug_lowres(x + c * sh[0] * sh[1] * sh[2], sh, z, &ws);
    nnu_aug_ws_free(&ws);
    return st ? l_raise(L, st) : 0;
}

static int l_aug_gamma(lua_State *L) {
    int64_t nch, sh[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    double g = luaL_checknumber(L, 2);
    luaL_argcheck(L, g > 0.0, 2, "gamma must be > 0");
    int inv = lua_toboolean(L, 3), keep = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
    int64_t n = sh[0] * sh[1] * sh[2];
    for (int64_t c = 0; c < nch; c++) nnu_aug_gamma(x + c * n, n, g, inv, keep);
    return 0;
}

static int l_aug_mirror(lua_State *L) {
    int64_t nch, sh[3], segc = 0, ss[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    int16_t *s = NULL;
    if (!lua_isnoneornil(L, 2)) {
        s = check_vol(L, 2, NNU_DTYPE_I16, &segc, ss);
        luaL_argcheck(L, !memcmp(sh, ss, sizeof sh), 2, "seg's spatial shape differs from data's");
    }
    int bits = axes_bits(L, 3, 3);
    nnu_aug_buf b = {x, (int)nch, s, (int)segc, {sh[0], sh[1], sh[2]}};
    nnu_aug_mirror(&b, bits);
    return 0;
}

static int l_aug_remove_label(lua_State *L) {
    int64_t nch, sh[3];
    int16_t *s = check_vol(L, 1, NNU_DTYPE_I16, &nch, sh);
    nnu_aug_remove_label(s, nch * sh[0] * sh[1] * sh[2], (int16_t)luaL_checkinteger(L, 2),
                         (int16_t)luaL_checkinteger(L, 3));
    return 0;
}

static int l_aug_mask(lua_State *L) {
    int64_t nch, sh[3], segc, ss[3];
    float *x = check_vol(L, 1, NNU_DTYPE_F32, &nch, sh);
    int16_t *s = check_vol(L, 2, NNU_DTYPE_I16, &segc, ss);
    luaL_argcheck(L, !memcmp(sh, ss, sizeof sh) && segc >= 1, 2, "seg's spatial shape differs from data's");
    nnu_aug_buf b = {x, (int)nch, s, (int)segc, {sh[0], sh[1], sh[2]}};
    nnu_aug_mask(&b, (unsigned)axes_bits(L, 3, 32));
    return 0;
}

static int l_aug_downsample_seg(lua_State *L) {
    int64_t nch, sh[3], os[3];
    int16_t *s = check_vol(L, 1, NNU_DTYPE_I16, &nch, sh);
    luaL_argcheck(L, l_checkshape(L, 2, os) == 3 && os[0] >= 1 && os[1] >= 1 && os[2] >= 1, 2,
                  "{D, H, W} of positive sizes expected");
    nnu_tensor **o = new_like(L, l_tensor_check(L, 1), NNU_DTYPE_I16, os);
    int16_t *d = nnu_tensor_data(*o);
    for (int64_t c = 0; c < nch; c++)
        nnu_aug_downsample_seg(s + c * sh[0] * sh[1] * sh[2], sh, d + c * os[0] * os[1] * os[2], os);
    return 1;
}

/* ---- pipeline description <-> C table ---- */

static nnu_aug_range read_range(lua_State *L, int idx, const char *k, nnu_aug_range def) {
    lua_getfield(L, idx, k);
    nnu_aug_range r = def;
    if (!lua_isnil(L, -1)) {
        int t = lua_gettop(L);
        if (lua_isnumber(L, t)) {
            r.lo = r.hi = lua_tonumber(L, t);
        } else {
            if (!lua_istable(L, t)) luaL_error(L, "pipeline: '%s' must be a number or {lo, hi [, bg = bool]}", k);
            lua_geti(L, t, 1); r.lo = luaL_checknumber(L, -1); lua_pop(L, 1);
            lua_geti(L, t, 2); r.hi = luaL_checknumber(L, -1); lua_pop(L, 1);
            r.bg = bool_field(L, t, "bg", 0);
        }
    }
    lua_pop(L, 1);
    return r;
}

static void push_range(lua_State *L, nnu_aug_range r) {
    lua_createtable(L, 2, 1);
    lua_pushnumber(L, r.lo); lua_rawseti(L, -2, 1);
    lua_pushnumber(L, r.hi); lua_rawseti(L, -2, 2);
    lua_pushboolean(L, r.bg); lua_setfield(L, -2, "bg");
}

static void read_step(lua_State *L, int idx, int i, nnu_aug_step *s) {
    lua_getfield(L, idx, "kind");
    const char *kn = lua_tostring(L, -1);
    int k = kn ? nnu_aug_kind_from_name(kn) : -1;
    if (k < 0) luaL_error(L, "pipeline step %d: unknown kind '%s'", i, kn ? kn : "(none)");
    lua_pop(L, 1);
    nnu_aug_step_init(s, (nnu_aug_kind)k);
    s->p = num_field(L, idx, "p", s->p);
    s->p_per_channel = num_field(L, idx, "p_per_channel", s->p_per_channel);
    s->p_per_axis = num_field(L, idx, "p_per_axis", s->p_per_axis);
    s->sync_channels = bool_field(L, idx, "sync_channels", s->sync_channels);
    s->sync_axes = bool_field(L, idx, "sync_axes", s->sync_axes);
    s->range = read_range(L, idx, "range", s->range);
    s->p_invert = num_field(L, idx, "p_invert", s->p_invert);
    s->p_retain_stats = num_field(L, idx, "p_retain_stats", s->p_retain_stats);
    s->preserve_range = bool_field(L, idx, "preserve_range", s->preserve_range);
    s->from_label = (int16_t)num_field(L, idx, "from", s->from_label);
    s->to_label = (int16_t)num_field(L, idx, "to", s->to_label);
    lua_getfield(L, idx, "axes");
    if (!lua_isnil(L, -1)) s->axes = axes_bits(L, lua_gettop(L), k == NNU_AUG_MASK ? 32 : 3);
    lua_pop(L, 1);
    if (k != NNU_AUG_SPATIAL) return;
    s->p_rotation = num_field(L, idx, "p_rotation", 0.0);
    lua_getfield(L, idx, "rotation");
    if (!lua_isnil(L, -1)) {
        int t = lua_gettop(L);
        luaL_checktype(L, t, LUA_TTABLE);
        for (int a = 0; a < 3; a++) {
            lua_geti(L, t, a + 1);
            if (!lua_istable(L, -1)) luaL_error(L, "pipeline: rotation must be {{lo, hi}, {lo, hi}, {lo, hi}}");
            lua_geti(L, -1, 1); s->rotation[a][0] = luaL_checknumber(L, -1); lua_pop(L, 1);
            lua_geti(L, -1, 2); s->rotation[a][1] = luaL_checknumber(L, -1); lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    s->p_scaling = num_field(L, idx, "p_scaling", 0.0);
    s->scaling = read_range(L, idx, "scaling", s->scaling);
    s->p_elastic = num_field(L, idx, "p_elastic", 0.0);
    s->alpha = read_range(L, idx, "alpha", s->alpha);
    s->sigma = read_range(L, idx, "sigma", s->sigma);
    lua_getfield(L, idx, "seg");
    s->seg_nearest = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "nearest") == 0;
    lua_pop(L, 1);
    s->border_seg = (int)num_field(L, idx, "border_seg", -1);
}

static nnu_aug_pipeline *check_pipe(lua_State *L, int arg) {
    return (nnu_aug_pipeline *)luaL_checkudata(L, arg, PIPE_MT);
}

/* The pipeline is a plain C struct (no resources), so the userdata holds it directly. */
static int l_aug_pipeline(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    nnu_aug_pipeline *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    luaL_setmetatable(L, PIPE_MT);
    p->dim = (int)num_field(L, 1, "dim", 3);
    p->dummy_2d = bool_field(L, 1, "dummy_2d", 0);
    lua_getfield(L, 1, "patch");
    int64_t patch[3];
    int nd = l_checkshape(L, lua_gettop(L), patch);
    lua_pop(L, 1);
    luaL_argcheck(L, nd == p->dim, 1, "patch must have `dim` entries");
    if (nd == 2) { p->patch[0] = 1; p->patch[1] = patch[0]; p->patch[2] = patch[1]; }
    else memcpy(p->patch, patch, sizeof patch);
    lua_getfield(L, 1, "steps");
    luaL_checktype(L, -1, LUA_TTABLE);
    int ts = lua_gettop(L), n = (int)luaL_len(L, ts);
    luaL_argcheck(L, n <= NNU_AUG_MAX_STEPS, 1, "too many steps");
    for (int i = 0; i < n; i++) {
        lua_geti(L, ts, i + 1);
        luaL_checktype(L, -1, LUA_TTABLE);
        read_step(L, lua_gettop(L), i + 1, &p->step[i]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    p->n_steps = n;
    nnu_status st = nnu_aug_pipeline_check(p);
    return st ? l_raise(L, st) : 1;
}

static int l_pipe_describe(lua_State *L) {
    nnu_aug_pipeline *p = check_pipe(L, 1);
    lua_newtable(L);
    lua_pushinteger(L, p->dim); lua_setfield(L, -2, "dim");
    lua_pushboolean(L, p->dummy_2d); lua_setfield(L, -2, "dummy_2d");
    if (p->dim == 2) l_pushshape(L, 2, p->patch + 1);
    else l_pushshape(L, 3, p->patch);
    lua_setfield(L, -2, "patch");
    lua_createtable(L, p->n_steps, 0);
    for (int i = 0; i < p->n_steps; i++) {
        const nnu_aug_step *s = &p->step[i];
        lua_newtable(L);
        lua_pushstring(L, nnu_aug_kind_name(s->kind)); lua_setfield(L, -2, "kind");
        lua_pushnumber(L, s->p); lua_setfield(L, -2, "p");
        lua_pushnumber(L, s->p_per_channel); lua_setfield(L, -2, "p_per_channel");
        lua_pushnumber(L, s->p_per_axis); lua_setfield(L, -2, "p_per_axis");
        lua_pushboolean(L, s->sync_channels); lua_setfield(L, -2, "sync_channels");
        lua_pushboolean(L, s->sync_axes); lua_setfield(L, -2, "sync_axes");
        push_range(L, s->range); lua_setfield(L, -2, "range");
        lua_pushnumber(L, s->p_invert); lua_setfield(L, -2, "p_invert");
        lua_pushnumber(L, s->p_retain_stats); lua_setfield(L, -2, "p_retain_stats");
        lua_pushboolean(L, s->preserve_range); lua_setfield(L, -2, "preserve_range");
        lua_pushinteger(L, s->from_label); lua_setfield(L, -2, "from");
        lua_pushinteger(L, s->to_label); lua_setfield(L, -2, "to");
        lua_newtable(L);
        for (int a = 0, j = 1; a < 32; a++)
            if ((unsigned)s->axes & (1u << a)) { lua_pushinteger(L, a + 1); lua_rawseti(L, -2, j++); }
        lua_setfield(L, -2, "axes");
        if (s->kind == NNU_AUG_SPATIAL) {
            lua_pushnumber(L, s->p_rotation); lua_setfield(L, -2, "p_rotation");
            lua_createtable(L, 3, 0);
            for (int a = 0; a < 3; a++) {
                push_range(L, (nnu_aug_range){s->rotation[a][0], s->rotation[a][1], 0});
                lua_rawseti(L, -2, a + 1);
            }
            lua_setfield(L, -2, "rotation");
            lua_pushnumber(L, s->p_scaling); lua_setfield(L, -2, "p_scaling");
            push_range(L, s->scaling); lua_setfield(L, -2, "scaling");
            lua_pushnumber(L, s->p_elastic); lua_setfield(L, -2, "p_elastic");
            push_range(L, s->alpha); lua_setfield(L, -2, "alpha");
            push_range(L, s->sigma); lua_setfield(L, -2, "sigma");
            lua_pushstring(L, s->seg_nearest ? "nearest" : "linear"); lua_setfield(L, -2, "seg");
            lua_pushinteger(L, s->border_seg); lua_setfield(L, -2, "border_seg");
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "steps");
    return 1;
}

static int l_pipe_patch(lua_State *L) {
    nnu_aug_pipeline *p = check_pipe(L, 1);
    if (p->dim == 2) l_pushshape(L, 2, p->patch + 1);
    else l_pushshape(L, 3, p->patch);
    return 1;
}

/* pipe:run(data (C, S_in), seg (1, S_in) i16, seed [, stream]) -> data, seg (patch) */
static int l_pipe_run(lua_State *L) {
    nnu_aug_pipeline *p = check_pipe(L, 1);
    int64_t nch, sh[3], segc, ss[3];
    float *x = check_vol(L, 2, NNU_DTYPE_F32, &nch, sh);
    int16_t *s = check_vol(L, 3, NNU_DTYPE_I16, &segc, ss);
    luaL_argcheck(L, !memcmp(sh, ss, sizeof sh), 3, "seg's spatial shape differs from data's");
    nnu_rng rng;
    nnu_rng_seed(&rng, (uint64_t)luaL_checkinteger(L, 4), (uint64_t)luaL_optinteger(L, 5, 0));
    nnu_tensor **ox = new_like(L, l_tensor_check(L, 2), NNU_DTYPE_F32, p->patch);
    nnu_tensor **os = new_like(L, l_tensor_check(L, 3), NNU_DTYPE_I16, p->patch);
    nnu_aug_buf in = {x, (int)nch, s, (int)segc, {sh[0], sh[1], sh[2]}};
    nnu_aug_buf out = {nnu_tensor_data(*ox), (int)nch, nnu_tensor_data(*os), (int)segc,
                       {p->patch[0], p->patch[1], p->patch[2]}};
    nnu_aug_ws ws = {0};
    nnu_status st = nnu_aug_pipeline_run(p, &in, &out, &rng, &ws);
    nnu_aug_ws_free(&ws);
    return st ? l_raise(L, st) : 2;
}

static int l_pipe_tostring(lua_State *L) {
    nnu_aug_pipeline *p = check_pipe(L, 1);
    lua_pushfstring(L, "nnunet.AugPipeline(%d steps, %dd%s, patch [%d,%d,%d])", p->n_steps, p->dim,
                    p->dummy_2d ? " dummy-2D" : "", (int)p->patch[0], (int)p->patch[1], (int)p->patch[2]);
    return 1;
}

static const luaL_Reg pipe_methods[] = {
    {"describe", l_pipe_describe}, {"patch", l_pipe_patch}, {"run", l_pipe_run}, {NULL, NULL}};

static const luaL_Reg aug_functions[] = {
    {"initial_patch_size", l_aug_initial_patch_size}, {"spatial", l_aug_spatial},
    {"noise", l_aug_noise},             {"blur", l_aug_blur},
    {"brightness", l_aug_brightness},   {"contrast", l_aug_contrast},
    {"lowres", l_aug_lowres},           {"gamma", l_aug_gamma},
    {"mirror", l_aug_mirror},           {"remove_label", l_aug_remove_label},
    {"mask", l_aug_mask},               {"downsample_seg", l_aug_downsample_seg},
    {"pipeline", l_aug_pipeline},       {NULL, NULL}};

int luaopen_nnunet_augment(lua_State *L) {
    if (luaL_newmetatable(L, PIPE_MT)) {
        lua_pushcfunction(L, l_pipe_tostring);
        lua_setfield(L, -2, "__tostring");
        luaL_newlib(L, pipe_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, aug_functions);
    return 1;
}

/* For l_loader.c: the pipeline at arg (raises if not one). */
const nnu_aug_pipeline *l_augment_check_pipeline(lua_State *L, int arg) { return check_pipe(L, arg); }
