/* l_infer.c: binds nnu_slide.h, nnu_eval.h, nnu_components.h and nnu_npz.h as
 * the module "nnunet.infer" (STYLE R2). Lua sees 1-based axes; window positions
 * and padding amounts are offsets/counts and keep the reference's values.
 *
 *   infer.steps(image_size, patch [, step=0.5])  -> {{offsets axis 1}, ...}  (0-based
 *        offsets exactly as compute_steps_for_sliding_window; numbers -> one list)
 *   infer.gaussian(patch)                 -> f16 tensor, n_zeros_replaced
 *   infer.pad(image, patch)               -> padded, pad_before   (pad_before[a] voxels
 *        added before axis a; undo with t:narrow(a, pad_before[a] + 1, old_size[a]))
 *   infer.sliding_window(image, opts, predict) -> logits (K, D, H, W) of opts.accum
 *        image (C, D, H, W); opts = { patch = {..}, num_heads = K, step_size = 0.5,
 *        mirror_axes = {1, 2, 3} (1-based patch axes; {} or nil = no mirroring),
 *        batch_size = 1, accum = "f16" | "f32", progress = function(done, total) }
 *        predict: a Lua function(batch) -> logits tensor (B, K, *patch), any float
 *        dtype (the batch is a view of a reused buffer: do not keep it), or a
 *        userdata whose metatable field "__nnu_slide_predict" is a light userdata
 *        pointing to an l_infer_predictor (l_infer.h: a C network plugs in without
 *        a Lua call per window).
 *   infer.confusion(ref, pred, regions [, ignore_label]) -> { {TP, FP, FN, TN, n_ref,
 *        n_pred, Dice, IoU}, ... } one table per region; a region is a label or a
 *        list of labels
 *   infer.confusion_files(pairs, regions [, ignore_label [, n_threads [, reader]]]) -> { per-case
 *        list as confusion's } | nil, msg: pairs = {{ref_path, pred_path}, ...} read
 *        (any image format, with the reader class `reader`, nil: by ending) and counted by n_threads workers (nnu_parallel; default: all CPUs);
 *        the first unreadable file or shape mismatch stops it and is the message
 *   infer.keep_largest(seg, labels [, background=0]) -> n_removed (in place; labels:
 *        a label, a list of labels, or a list of regions — the union is one mask)
 *   infer.keep_largest_files(pairs, steps [, n_threads [, reader]]) -> true | nil, msg: pairs =
 *        {{in_path, out_path}, ...}; each segmentation is read, steps = {{labels = {...},
 *        background = 0}, ...} applied in order (keep_largest), and written to out_path
 *        with the input's geometry (u8/u16 as the reference's write_seg) by n_threads
 *        workers (default: all CPUs); the first failure stops it and names the file
 *   infer.component_sizes(seg, labels)     -> {sizes, largest first}
 *   infer.np_mean(list), infer.np_nanmean(list) -> numpy-exact means (NaN allowed)
 *   infer.save_npz(path, key, t) | infer.save_npz(path, {{key, t}, ...}) -> true | nil, msg
 *   infer.load_npz(path, key)              -> tensor | nil, msg  (also .npy: key nil) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_infer.h"
#include "l_util.h"
#include "nnu_components.h"
#include "nnu_eval.h"
#include "nnu_image.h"
#include "nnu_npz.h"
#include "nnu_parallel.h"
#include "nnu_slide.h"

/* ---- small helpers ---- */

static int64_t check_int_field(lua_State *L, int t, int i, int arg) {
    lua_geti(L, t, i);
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    luaL_argcheck(L, isnum, arg, "integers expected");
    lua_pop(L, 1);
    return (int64_t)v;
}

/* Reads labels at arg: an integer, a list of integers, or a list of lists (flattened). */
static int check_labels(lua_State *L, int arg, int64_t *out, int cap) {
    if (lua_isinteger(L, arg)) { out[0] = (int64_t)lua_tointeger(L, arg); return 1; }
    luaL_checktype(L, arg, LUA_TTABLE);
    int n = 0, len = (int)luaL_len(L, arg);
    for (int i = 1; i <= len; i++) {
        lua_geti(L, arg, i);
        if (lua_istable(L, -1)) {
            int m = (int)luaL_len(L, -1);
            for (int j = 1; j <= m; j++) {
                luaL_argcheck(L, n < cap, arg, "too many labels");
                out[n++] = check_int_field(L, lua_gettop(L), j, arg);
            }
        } else {
            int isnum;
            lua_Integer v = lua_tointegerx(L, -1, &isnum);
            luaL_argcheck(L, isnum && n < cap, arg, "labels must be integers (at most 256)");
            out[n++] = (int64_t)v;
        }
        lua_pop(L, 1);
    }
    luaL_argcheck(L, n >= 1, arg, "no labels given");
    return n;
}

/* ---- positions, Gaussian, padding ---- */

static int l_infer_steps(lua_State *L) {
    double step = luaL_optnumber(L, 3, 0.5);
    if (lua_isinteger(L, 1)) {
        int64_t i = (int64_t)lua_tointeger(L, 1), p = (int64_t)luaL_checkinteger(L, 2);
        luaL_argcheck(L, i >= 1 && p >= 1, 1, "sizes must be >= 1");
        int64_t n = nnu_slide_num_steps(i, p, step);
        int64_t *v = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)n, 0);
        nnu_status st = nnu_slide_steps(i, p, step, v);
        if (st) return l_raise(L, st);
        lua_createtable(L, (int)n, 0);
        for (int64_t k = 0; k < n; k++) { lua_pushinteger(L, (lua_Integer)v[k]); lua_rawseti(L, -2, k + 1); }
        return 1;
    }
    int64_t isz[NNU_MAX_DIMS], psz[NNU_MAX_DIMS];
    int ni = l_checkshape(L, 1, isz), np = l_checkshape(L, 2, psz);
    luaL_argcheck(L, ni == np, 2, "patch and image size need the same number of axes");
    lua_createtable(L, ni, 0);
    for (int a = 0; a < ni; a++) {
        luaL_argcheck(L, isz[a] >= 1 && psz[a] >= 1, 1, "sizes must be >= 1");
        int64_t n = nnu_slide_num_steps(isz[a], psz[a], step);
        int64_t *v = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)n, 0);
        nnu_status st = nnu_slide_steps(isz[a], psz[a], step, v);
        if (st) return l_raise(L, st);
        lua_createtable(L, (int)n, 0);
        for (int64_t k = 0; k < n; k++) { lua_pushinteger(L, (lua_Integer)v[k]); lua_rawseti(L, -2, k + 1); }
        lua_rawseti(L, -3, a + 1);
        lua_pop(L, 1);                            /* the scratch userdata */
    }
    return 1;
}

static int l_infer_gaussian(lua_State *L) {
    int64_t p[NNU_MAX_DIMS], nrep = 0;
    int nd = l_checkshape(L, 1, p);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_slide_gaussian(nd, p, box, &nrep);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)nrep);
    return 2;
}

static int l_infer_pad(lua_State *L) {
    nnu_tensor *t = l_tensor_check(L, 1);
    int64_t p[NNU_MAX_DIMS], before[NNU_MAX_DIMS];
    int nd = l_checkshape(L, 2, p);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = nnu_slide_pad(t, nd, p, box, before);
    if (st) return l_raise(L, st);
    l_pushshape(L, t->ndim, before);
    return 2;
}

/* ---- sliding window ---- */

typedef struct lua_pred {
    lua_State *L;
    int fn_idx, progress_idx;    /* stack slots; progress_idx 0 when absent */
    int progress_failed;
} lua_pred;

/* Calls the Lua predict function; copies its result into logits_out. Lua errors are
 * caught here (the core must not be longjmp'd through) and become a status. */
static nnu_status lua_predict(void *ctx, const nnu_tensor *batch, nnu_tensor *logits_out) {
    lua_pred *lp = ctx;
    lua_State *L = lp->L;
    nnu_tensor **box = l_tensor_newbox(L);        /* stays below the call: [box, fn, box] */
    nnu_tensor_retain((nnu_tensor *)batch);       /* the box owns one reference */
    *box = (nnu_tensor *)batch;
    lua_pushvalue(L, lp->fn_idx);
    lua_pushvalue(L, -2);
    nnu_status st = NNU_STATUS_OK;
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        nnu_status code = (msg && strstr(msg, "interrupted!")) ? NNU_STATUS_ERR_INTERRUPTED : NNU_STATUS_ERR_ARG;
        st = NNU_FAIL(code, "predict function: %s", msg ? msg : "(error object is not a string)");
    } else {
        nnu_tensor **res = luaL_testudata(L, -1, L_TENSOR_MT);
        char a[96], b[96];
        if (!res || !*res)
            st = NNU_FAIL(NNU_STATUS_ERR_ARG, "predict function must return a tensor, got %s", luaL_typename(L, -1));
        else if (!nnu_tensor_same_shape(*res, logits_out))
            st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "predict function returned %s, expected %s",
                          nnu_tensor_shape_str(*res, a, sizeof a), nnu_tensor_shape_str(logits_out, b, sizeof b));
        else
            st = nnu_tensor_copy(logits_out, *res);
    }
    /* The batch buffer is reused for the next windows: a Lua reference kept to it
     * now sees a released tensor instead of silently changing data. */
    nnu_tensor_release(*box);
    *box = NULL;
    lua_pop(L, 2);
    /* Lua's collector does not see the tensors' memory (a box is 8 bytes): collect
     * after every large result so that per-window logits do not pile up. */
    if ((size_t)nnu_tensor_numel(logits_out) * 4 >= ((size_t)8 << 20)) lua_gc(L, LUA_GCCOLLECT, 0);
    return st;
}

static void lua_progress(void *ctx, int64_t done, int64_t total) {
    lua_pred *lp = ctx;
    if (!lp->progress_idx || lp->progress_failed) return;
    lua_State *L = lp->L;
    lua_pushvalue(L, lp->progress_idx);
    lua_pushinteger(L, (lua_Integer)done);
    lua_pushinteger(L, (lua_Integer)total);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        lp->progress_failed = 1;              /* the message stays on the stack for the binding */
        lua_replace(L, lp->progress_idx);
    }
}

static int l_infer_sliding_window(lua_State *L) {
    nnu_tensor *img = l_tensor_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    nnu_slide_params p;
    nnu_slide_params_default(&p);
    int64_t patch[NNU_MAX_DIMS];
    lua_getfield(L, 2, "patch");
    int nd = l_checkshape(L, lua_gettop(L), patch);
    lua_pop(L, 1);
    luaL_argcheck(L, nd == 2 || nd == 3, 2, "opts.patch must have 2 or 3 entries");
    p.patch_ndim = nd;
    memcpy(p.patch, patch, sizeof(int64_t) * (size_t)nd);
    lua_getfield(L, 2, "num_heads");
    p.num_heads = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "step_size");
    p.step_size = luaL_optnumber(L, -1, 0.5);
    lua_pop(L, 1);
    lua_getfield(L, 2, "batch_size");
    p.batch_size = (int)luaL_optinteger(L, -1, 1);
    lua_pop(L, 1);
    lua_getfield(L, 2, "accum");
    p.accum_dtype = l_optdtype(L, lua_gettop(L), NNU_DTYPE_F16);
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "mirror_axes") == LUA_TTABLE) {
        int n = (int)luaL_len(L, -1);
        luaL_argcheck(L, n <= nd, 2, "opts.mirror_axes: more axes than the patch has");
        p.n_mirror_axes = n;
        for (int i = 0; i < n; i++) p.mirror_axes[i] = (int)check_int_field(L, lua_gettop(L), i + 1, 2) - 1;
    }
    lua_pop(L, 1);

    lua_pred lp = {L, 0, 0, 0};
    lua_settop(L, 3);
    lua_getfield(L, 2, "progress");               /* slot 4: progress function or nil */
    if (lua_isfunction(L, 4)) {
        lp.progress_idx = 4;
        p.progress = lua_progress;
        p.progress_ctx = &lp;
    }
    nnu_slide_predict_fn fn = lua_predict;
    void *ctx = &lp;
    if (lua_isfunction(L, 3)) {
        lp.fn_idx = 3;
    } else {
        const l_infer_predictor *cp = NULL;
        if (lua_type(L, 3) == LUA_TUSERDATA && luaL_getmetafield(L, 3, "__nnu_slide_predict") != LUA_TNIL) {
            cp = lua_touserdata(L, -1);
            lua_pop(L, 1);
        }
        luaL_argcheck(L, cp && cp->fn, 3, "a function or a predictor userdata expected");
        fn = cp->fn;
        ctx = cp->ctx_of ? cp->ctx_of(lua_touserdata(L, 3)) : lua_touserdata(L, 3);
    }
    nnu_tensor **box = l_tensor_newbox(L);        /* slot 5 */
    nnu_status st = nnu_slide_predict(img, &p, fn, ctx, box);
    if (st) return l_raise(L, st);
    if (lp.progress_failed) return luaL_error(L, "progress function: %s", lua_tostring(L, 4));
    return 1;
}

/* ---- evaluation and postprocessing ---- */

static void set_int(lua_State *L, const char *k, int64_t v) { lua_pushinteger(L, (lua_Integer)v); lua_setfield(L, -2, k); }
static void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }

/* the regions argument (index arg): n regions into a new userdata array (on the stack) */
static nnu_eval_region *check_regions(lua_State *L, int arg, int *n_out) {
    luaL_checktype(L, arg, LUA_TTABLE);
    const int n = (int)luaL_len(L, arg);
    nnu_eval_region *reg = lua_newuserdatauv(L, sizeof *reg * (size_t)(n ? n : 1), 0);
    for (int r = 0; r < n; r++) {
        lua_geti(L, arg, r + 1);
        int top = lua_gettop(L);
        if (lua_istable(L, top)) {
            int m = (int)luaL_len(L, top);
            luaL_argcheck(L, m >= 1 && m <= NNU_EVAL_MAX_REGION_LABELS, arg,
                          "a region needs 1 to 16 labels");
            reg[r].n = m;
            for (int j = 0; j < m; j++) reg[r].labels[j] = check_int_field(L, top, j + 1, arg);
        } else {
            reg[r].n = 1;
            int isnum;
            reg[r].labels[0] = (int64_t)lua_tointegerx(L, top, &isnum);
            luaL_argcheck(L, isnum, arg, "regions must be labels (integers) or lists of labels");
        }
        lua_pop(L, 1);
    }
    *n_out = n;
    return reg;
}

/* pushes the per-region metric tables of one case */
static void push_confusion(lua_State *L, const nnu_confusion *c, int n) {
    lua_createtable(L, n, 0);
    for (int r = 0; r < n; r++) {
        lua_createtable(L, 0, 8);
        set_int(L, "TP", c[r].tp); set_int(L, "FP", c[r].fp); set_int(L, "FN", c[r].fn);
        set_int(L, "TN", c[r].tn); set_int(L, "n_ref", c[r].n_ref); set_int(L, "n_pred", c[r].n_pred);
        set_num(L, "Dice", nnu_eval_dice(&c[r]));
        set_num(L, "IoU", nnu_eval_iou(&c[r]));
        lua_rawseti(L, -2, r + 1);
    }
}

static int l_infer_confusion(lua_State *L) {
    nnu_tensor *ref = l_tensor_check(L, 1), *pred = l_tensor_check(L, 2);
    int n, has_ignore = !lua_isnoneornil(L, 4);
    int64_t ignore = has_ignore ? (int64_t)luaL_checkinteger(L, 4) : 0;
    nnu_eval_region *reg = check_regions(L, 3, &n);
    nnu_confusion *c = lua_newuserdatauv(L, sizeof *c * (size_t)(n ? n : 1), 0);
    nnu_status st = nnu_eval_confusion(ref, pred, reg, n, has_ignore, ignore, c);
    if (st) return l_raise(L, st);
    push_confusion(L, c, n);
    return 1;
}

/* ---- whole folders: every case's files read and counted by a worker pool ---- */

typedef struct files_job {
    const char **ref, **pred;       /* per case (strings anchored in the pairs table) */
    const nnu_eval_region *reg;
    int n_regions, has_ignore;
    int64_t ignore;
    nnu_confusion *out;             /* [case][region] */
    nnu_image_read_opts ro;         /* the reader class; segmentations */
} files_job;

static void shape_text(const nnu_tensor *t, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = 0;
    for (int a = 0; a < t->ndim && k < len; a++)
        k += (size_t)snprintf(buf + k, len - k, a ? ", %lld" : "%lld", (long long)t->shape[a]);
}

static nnu_status confusion_case(int64_t i, int worker, void *ctx) {
    (void)worker;
    const files_job *j = ctx;
    nnu_tensor *ref = NULL, *pred = NULL;
    char why[512];   /* the reader's message, copied: nnu_fail writes the same buffer */
    nnu_status st = nnu_image_read(j->ref[i], &j->ro, NULL, &ref);
    if (st) {
        snprintf(why, sizeof why, "%s", nnu_last_error());
        return NNU_FAIL(st, "cannot read '%s': %s", j->ref[i], why);
    }
    st = nnu_image_read(j->pred[i], &j->ro, NULL, &pred);
    if (st) {
        snprintf(why, sizeof why, "%s", nnu_last_error());
        nnu_tensor_release(ref);
        return NNU_FAIL(st, "cannot read '%s': %s", j->pred[i], why);
    }
    int same = ref->ndim == pred->ndim;
    for (int a = 0; same && a < ref->ndim; a++) same = ref->shape[a] == pred->shape[a];
    if (!same) {
        char a[128], b[128];
        shape_text(ref, a, sizeof a);
        shape_text(pred, b, sizeof b);
        nnu_tensor_release(ref);
        nnu_tensor_release(pred);
        return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "shape mismatch: '%s' is (%s), '%s' is (%s)", j->ref[i], a,
                 j->pred[i], b);
    }
    st = nnu_eval_confusion(ref, pred, j->reg, j->n_regions, j->has_ignore, j->ignore,
                            j->out + i * j->n_regions);
    nnu_tensor_release(ref);
    nnu_tensor_release(pred);
    return st;
}

/* The pairs table at arg ({{a, b}, ...}, `what` names them in the error) -> a GC-owned
 * array: the n first paths, then the n second ones (the strings stay anchored in the
 * table at arg). Pushes the array onto the stack. */
static const char **check_path_pairs(lua_State *L, int arg, int64_t n, const char *what) {
    const char **paths = lua_newuserdatauv(L, sizeof(char *) * (size_t)(2 * n + 1), 0);
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        luaL_argcheck(L, lua_istable(L, -1), arg, what);
        for (int k = 0; k < 2; k++) {
            lua_geti(L, -1, k + 1);
            luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, arg, "paths must be strings");
            paths[k * n + i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return paths;
}

static int l_infer_confusion_files(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    const int64_t ncase = (int64_t)luaL_len(L, 1);
    int n, has_ignore = !lua_isnoneornil(L, 3);
    int64_t ignore = has_ignore ? (int64_t)luaL_checkinteger(L, 3) : 0;
    int threads = (int)luaL_optinteger(L, 4, 0);
    nnu_image_read_opts ro = {(nnu_image_reader)l_check_image_reader(L, 5), 1};
    nnu_eval_region *reg = check_regions(L, 2, &n);
    const char **paths = check_path_pairs(L, 1, ncase, "pairs must be {{ref_path, pred_path}, ...}");
    nnu_confusion *out = lua_newuserdatauv(L, sizeof *out * (size_t)(ncase * n + 1), 0);
    files_job job = {paths, paths + ncase, reg, n, has_ignore, ignore, out, ro};
    nnu_status st = nnu_parallel_for(ncase, threads, confusion_case, &job);
    if (st) return l_fail(L, st);
    lua_createtable(L, (int)ncase, 0);
    for (int64_t i = 0; i < ncase; i++) {
        push_confusion(L, out + i * n, n);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_infer_keep_largest(lua_State *L) {
    nnu_tensor *seg = l_tensor_check(L, 1);
    int64_t labels[256], removed = 0;
    int n = check_labels(L, 2, labels, 256);
    int64_t bg = (int64_t)luaL_optinteger(L, 3, 0);
    nnu_status st = nnu_components_keep_largest(seg, labels, n, bg, &removed);
    if (st) return l_raise(L, st);
    lua_pushinteger(L, (lua_Integer)removed);
    return 1;
}

/* ---- keep_largest over whole folders, one file per pool item ---- */

enum { PP_MAX_STEPS = 64, PP_MAX_LABELS = 256 };

typedef struct pp_step {
    int64_t labels[PP_MAX_LABELS];
    int n_labels;
    int64_t background;
} pp_step;

typedef struct pp_job {
    const char **in, **out;         /* per file (strings anchored in the pairs table) */
    const pp_step *steps;
    int n_steps;
    nnu_image_read_opts ro;         /* the reader class; segmentations */
} pp_job;

static nnu_status pp_file(int64_t i, int worker, void *ctx) {
    (void)worker;
    const pp_job *j = ctx;
    nnu_image_info info;
    nnu_tensor *seg = NULL;
    char why[512];   /* the reader's message, copied: nnu_fail writes the same buffer */
    nnu_status st = nnu_image_read(j->in[i], &j->ro, &info, &seg);
    if (st) {
        snprintf(why, sizeof why, "%s", nnu_last_error());
        return NNU_FAIL(st, "cannot read '%s': %s", j->in[i], why);
    }
    for (int k = 0; k < j->n_steps && st == NNU_STATUS_OK; k++)
        st = nnu_components_keep_largest(seg, j->steps[k].labels, j->steps[k].n_labels,
                                         j->steps[k].background, NULL);
    if (st == NNU_STATUS_OK) {
        nnu_image_write_opts w = {.segmentation = 1};
        st = nnu_image_write(j->out[i], seg, &info, &w);
    }
    nnu_tensor_release(seg);
    return st;
}

static int l_infer_keep_largest_files(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    const int64_t nfile = (int64_t)luaL_len(L, 1);
    const int nstep = (int)luaL_len(L, 2);
    luaL_argcheck(L, nstep <= PP_MAX_STEPS, 2, "at most 64 steps");
    const int threads = (int)luaL_optinteger(L, 3, 0);
    nnu_image_read_opts ro = {(nnu_image_reader)l_check_image_reader(L, 4), 1};
    pp_step *steps = lua_newuserdatauv(L, sizeof *steps * (size_t)(nstep + 1), 0);
    for (int k = 0; k < nstep; k++) {
        lua_geti(L, 2, k + 1);
        luaL_argcheck(L, lua_istable(L, -1), 2, "steps must be {{labels = {...}, background = 0}, ...}");
        const int t = lua_gettop(L);
        lua_getfield(L, t, "labels");
        steps[k].n_labels = check_labels(L, lua_gettop(L), steps[k].labels, PP_MAX_LABELS);
        lua_pop(L, 1);
        steps[k].background = (int64_t)l_opt_int_field(L, t, "background", 0);
        lua_pop(L, 1);
    }
    const char **paths = check_path_pairs(L, 1, nfile, "pairs must be {{in_path, out_path}, ...}");
    pp_job job = {paths, paths + nfile, steps, nstep, ro};
    nnu_status st = nnu_parallel_for(nfile, threads, pp_file, &job);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_UNSUPPORTED)
        return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_infer_component_sizes(lua_State *L) {
    nnu_tensor *seg = l_tensor_check(L, 1);
    int64_t labels[256], n = 0;
    int nl = check_labels(L, 2, labels, 256);
    nnu_status st = nnu_components_sizes(seg, labels, nl, NULL, 0, &n);
    if (st) return l_raise(L, st);
    int64_t *sizes = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(n ? n : 1), 0);
    st = nnu_components_sizes(seg, labels, nl, sizes, n, &n);
    if (st) return l_raise(L, st);
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) { lua_pushinteger(L, (lua_Integer)sizes[i]); lua_rawseti(L, -2, i + 1); }
    return 1;
}

static double *check_numbers(lua_State *L, int arg, int64_t *n) {
    luaL_checktype(L, arg, LUA_TTABLE);
    *n = (int64_t)luaL_len(L, arg);
    double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)(*n ? *n : 1), 0);
    for (int64_t i = 0; i < *n; i++) {
        lua_geti(L, arg, i + 1);
        v[i] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
    }
    return v;
}

static int l_infer_np_mean(lua_State *L) {
    int64_t n;
    double *v = check_numbers(L, 1, &n);
    lua_pushnumber(L, nnu_eval_np_mean(v, n));
    return 1;
}

static int l_infer_np_nanmean(lua_State *L) {
    int64_t n;
    double *v = check_numbers(L, 1, &n);
    lua_pushnumber(L, nnu_eval_np_nanmean(v, n));
    return 1;
}

/* ---- npz ---- */

static int l_infer_save_npz(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int n;
    if (lua_type(L, 2) == LUA_TSTRING) {
        l_tensor_check(L, 3);
        n = 1;
    } else {
        luaL_checktype(L, 2, LUA_TTABLE);
        n = (int)luaL_len(L, 2);
        luaL_argcheck(L, n >= 1, 2, "no arrays to save");
    }
    nnu_npz_writer *w = NULL;
    nnu_status st = nnu_npz_create(path, -1, &w);
    if (st) return l_fail(L, st);
    for (int i = 0; i < n && !st; i++) {
        const char *key;
        nnu_tensor **t;
        if (lua_type(L, 2) == LUA_TSTRING) {
            key = lua_tostring(L, 2);
            t = luaL_testudata(L, 3, L_TENSOR_MT);
        } else {
            lua_geti(L, 2, i + 1);
            int e = lua_gettop(L);
            if (!lua_istable(L, e)) { nnu_npz_close(w); return luaL_argerror(L, 2, "entries must be {key, tensor}"); }
            lua_geti(L, e, 1);
            lua_geti(L, e, 2);
            key = lua_tostring(L, -2);
            t = luaL_testudata(L, -1, L_TENSOR_MT);
            lua_pop(L, 3);                        /* key and tensor stay referenced by the table */
        }
        if (!key || !t || !*t) { nnu_npz_close(w); return luaL_argerror(L, 2, "entries must be {key, tensor}"); }
        st = nnu_npz_add(w, key, *t);
    }
    nnu_status st2 = nnu_npz_close(w);
    if (st || st2) return l_fail(L, st ? st : st2);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_infer_load_npz(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    const char *key = luaL_optstring(L, 2, NULL);
    nnu_tensor **box = l_tensor_newbox(L);
    nnu_status st = key ? nnu_npz_load(path, key, box) : nnu_npy_load(path, box);
    if (st) return l_fail(L, st);
    return 1;
}

static const luaL_Reg infer_functions[] = {
    {"steps", l_infer_steps},
    {"gaussian", l_infer_gaussian},
    {"pad", l_infer_pad},
    {"sliding_window", l_infer_sliding_window},
    {"confusion", l_infer_confusion},
    {"confusion_files", l_infer_confusion_files},
    {"keep_largest", l_infer_keep_largest},
    {"keep_largest_files", l_infer_keep_largest_files},
    {"component_sizes", l_infer_component_sizes},
    {"np_mean", l_infer_np_mean},
    {"np_nanmean", l_infer_np_nanmean},
    {"save_npz", l_infer_save_npz},
    {"load_npz", l_infer_load_npz},
    {NULL, NULL}};

int luaopen_nnunet_infer(lua_State *L) {
    luaL_newlib(L, infer_functions);
    return 1;
}
