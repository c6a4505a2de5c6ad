/* l_train.c: module "nnunet.train", the thin binding of the training helpers
 * (core/nnu_checkpoint.h, core/nnu_plot.h, core/nnu_pseudo_dice.h).
 *
 *   train.checkpoint_save(path, ck [, {no_fsync=, stop_before_rename=}]) -> true | nil, msg, code
 *   train.checkpoint_load(path [, layout]) -> ck | nil, msg, code
 *       ck = { trainer = s, identity = s, plans_hash = int, epoch = int,
 *              best_ema = number | nil, optim_steps = int, params = Tensor (f32, flat),
 *              layout = { {name = "encoder...weight", shape = {...}}, ... } (the tensors
 *              of params in order; save: optional, default one tensor "params"),
 *              optim = { {name = "momentum", tensor = Tensor}, ... },
 *              n_classes = int, logs = { train_losses = {...}, val_losses, mean_fg_dice,
 *              ema_fg_dice, lrs, epoch_start_timestamps, epoch_end_timestamps,
 *              dice_per_class_or_region = { {c1, c2, ...}, ... } },
 *              seed = int, train_batches = int, val_batches = int, meta = string (JSON) }
 *       The file is safetensors (core/nnu_checkpoint.h). With `layout` (a network's,
 *       e.g. Net:layout()) the file's must match it: else nil, message naming the
 *       first mismatching tensor, "ERR_SHAPE".
 *   train.check_layout(path, got, want) -> true | nil, msg, code   (the same comparison;
 *       path only names the file in the message)
 *   train.plot_available() -> bool
 *   train.plot_progress(path, logs [, width, height]) -> true | nil, msg, code
 *       logs: the same keys as ck.logs (epoch times = end - start)
 *   train.pseudo_dice(logits, target [, {regions = {...}, ignore_label = int}]) -> tp, fp, fn
 *   train.crc32(string [, crc]) -> int
 *   train.time() -> wall-clock seconds since 1970 (microsecond resolution)
 *   train.kfold(n, n_splits, seed) -> { {train = {i...}, val = {i...}}, ... }   0-based
 *       indices into the sorted case list (KFold(n_splits, shuffle, seed), §1.4)
 *   train.random_split(n, fold) -> {train = {...}, val = {...}}   the 80:20 fallback
 * Expected failures (I/O, a damaged checkpoint) return nil, message, status name (R15);
 * wrong arguments raise. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "l_util.h"
#include "nnu_checkpoint.h"
#include "nnu_plot.h"
#include "nnu_pseudo_dice.h"
#include "nnu_splits.h"

/* the checkpoint's log arrays under the reference logger's key names */
static const char *const LOG_KEYS[NNU_CKPT_NLOGS] = {
    "train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice", "lrs",
    "epoch_start_timestamps", "epoch_end_timestamps",
};
#define DICE_KEY "dice_per_class_or_region"

/* A GC-owned array of n doubles from the list at index idx (NaN for nil holes). */
static double *check_numbers(lua_State *L, int idx, int64_t n, const char *what) {
    double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
    for (int64_t i = 0; i < n; i++) {
        int t = lua_geti(L, idx, i + 1);
        if (t != LUA_TNUMBER && t != LUA_TNIL) luaL_error(L, "%s[%d] is not a number", what, (int)(i + 1));
        v[i] = t == LUA_TNIL ? NAN : lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return v;                                   /* the userdata stays on the stack */
}

static const char *opt_string_field(lua_State *L, int idx, const char *k, size_t *len) {
    lua_getfield(L, idx, k);
    const char *s = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, len);
    if (!s) luaL_error(L, "checkpoint field '%s' must be a string", k);
    if (lua_isnil(L, -1) && len) *len = 0;
    lua_pop(L, 1);                              /* the string stays alive: it is in the table */
    return s;
}

static lua_Integer int_field(lua_State *L, int idx, const char *k, lua_Integer def) {
    lua_getfield(L, idx, k);
    int ok;
    lua_Integer v = lua_isnil(L, -1) ? (ok = 1, def) : lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "checkpoint field '%s' must be an integer", k);
    lua_pop(L, 1);
    return v;
}

/* A layout list {{name=, shape={...}}, ...} at idx as a GC-owned array (left on the
 * stack); *n gets its length. */
static nnu_checkpoint_tensor *check_layout_arg(lua_State *L, int idx, int *n) {
    luaL_checktype(L, idx, LUA_TTABLE);
    idx = lua_absindex(L, idx);
    *n = (int)luaL_len(L, idx);
    nnu_checkpoint_tensor *t = lua_newuserdatauv(L, sizeof *t * (size_t)(*n ? *n : 1), 0);
    memset(t, 0, sizeof *t * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) {
        if (lua_geti(L, idx, i + 1) != LUA_TTABLE) luaL_error(L, "layout[%d] must be {name = s, shape = {...}}", i + 1);
        lua_getfield(L, -1, "name");
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (!s || len == 0 || len >= NNU_CKPT_TENSOR_NAME) luaL_error(L, "layout[%d].name missing or too long", i + 1);
        memcpy(t[i].name, s, len);
        lua_pop(L, 1);
        if (lua_getfield(L, -1, "shape") != LUA_TTABLE) luaL_error(L, "layout[%d].shape must be a list", i + 1);
        t[i].ndim = (int)luaL_len(L, -1);
        if (t[i].ndim > NNU_ST_MAX_DIMS) luaL_error(L, "layout[%d] has more than %d dimensions", i + 1, NNU_ST_MAX_DIMS);
        for (int d = 0; d < t[i].ndim; d++) {
            lua_geti(L, -1, d + 1);
            int ok;
            t[i].shape[d] = (int64_t)lua_tointegerx(L, -1, &ok);
            if (!ok || t[i].shape[d] < 0) luaL_error(L, "layout[%d].shape[%d] must be a non-negative integer", i + 1, d + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    }
    return t;
}

static void push_layout(lua_State *L, const nnu_checkpoint_tensor *t, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, t[i].name);
        lua_setfield(L, -2, "name");
        lua_createtable(L, t[i].ndim, 0);
        for (int d = 0; d < t[i].ndim; d++) {
            lua_pushinteger(L, (lua_Integer)t[i].shape[d]);
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "shape");
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_train_checkpoint_save(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    nnu_checkpoint_save_opts o = {0};
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "no_fsync"); o.no_fsync = lua_toboolean(L, -1); lua_pop(L, 1);
        lua_getfield(L, 3, "stop_before_rename"); o.stop_before_rename = lua_toboolean(L, -1); lua_pop(L, 1);
    }
    nnu_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    size_t len;
    const char *s = opt_string_field(L, 2, "trainer", &len);
    luaL_argcheck(L, len < sizeof ck.trainer, 2, "trainer name too long");
    memcpy(ck.trainer, s, len);
    s = opt_string_field(L, 2, "identity", &len);
    luaL_argcheck(L, len < sizeof ck.identity, 2, "identity too long");
    memcpy(ck.identity, s, len);
    ck.plans_hash = (uint64_t)int_field(L, 2, "plans_hash", 0);
    ck.epoch = (int64_t)int_field(L, 2, "epoch", 0);
    ck.optim_steps = (int64_t)int_field(L, 2, "optim_steps", 0);
    ck.n_classes = (int)int_field(L, 2, "n_classes", 0);
    ck.seed = (int64_t)int_field(L, 2, "seed", 0);
    ck.train_batches = (int64_t)int_field(L, 2, "train_batches", 0);
    ck.val_batches = (int64_t)int_field(L, 2, "val_batches", 0);
    if (lua_getfield(L, 2, "layout") != LUA_TNIL)
        ck.tensors = check_layout_arg(L, -1, &ck.n_tensors);   /* the array stays on the stack */
    else
        lua_pop(L, 1);
    lua_getfield(L, 2, "best_ema");
    ck.best_ema = lua_isnil(L, -1) ? NAN : luaL_checknumber(L, -1);
    lua_pop(L, 1);

    lua_getfield(L, 2, "params");
    ck.params = l_tensor_check(L, lua_gettop(L));   /* stays referenced by the table */
    lua_pop(L, 1);
    lua_getfield(L, 2, "optim");
    if (lua_istable(L, -1)) {
        int t = lua_gettop(L);
        ck.n_optim = (int)luaL_len(L, t);
        luaL_argcheck(L, ck.n_optim <= NNU_CKPT_MAX_OPTIM, 2, "too many optimizer buffers");
        for (int i = 0; i < ck.n_optim; i++) {
            lua_geti(L, t, i + 1);
            int e = lua_gettop(L);
            luaL_argcheck(L, lua_istable(L, e), 2, "optim entries are {name = s, tensor = T}");
            s = opt_string_field(L, e, "name", &len);
            luaL_argcheck(L, len > 0 && len < NNU_CKPT_NAME_LEN, 2, "optimizer buffer name empty or too long");
            memcpy(ck.optim_name[i], s, len);
            lua_getfield(L, e, "tensor");
            ck.optim[i] = l_tensor_check(L, lua_gettop(L));
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);

    s = opt_string_field(L, 2, "meta", &len);
    ck.meta = (char *)s; ck.meta_len = len;

    lua_getfield(L, 2, "logs");
    int lt = lua_gettop(L);
    if (lua_istable(L, lt)) {
        lua_getfield(L, lt, LOG_KEYS[0]);
        ck.n_logged = lua_istable(L, -1) ? (int64_t)luaL_len(L, -1) : 0;
        lua_pop(L, 1);
        for (int i = 0; i < NNU_CKPT_NLOGS; i++) {
            lua_getfield(L, lt, LOG_KEYS[i]);
            if (ck.n_logged && (!lua_istable(L, -1) || (int64_t)luaL_len(L, -1) != ck.n_logged))
                return luaL_error(L, "logs.%s must have %d entries like logs.%s", LOG_KEYS[i],
                                  (int)ck.n_logged, LOG_KEYS[0]);
            ck.logs[i] = check_numbers(L, lua_gettop(L), lua_istable(L, -1) ? ck.n_logged : 0, LOG_KEYS[i]);
            lua_remove(L, -2);                     /* keep the array userdata, drop the list */
        }
        lua_getfield(L, lt, DICE_KEY);
        int dt = lua_gettop(L);
        double *d = lua_newuserdatauv(L, sizeof(double) * (size_t)(ck.n_logged * ck.n_classes + 1), 0);
        for (int64_t e = 0; e < ck.n_logged && ck.n_classes > 0; e++) {
            if (!lua_istable(L, dt) || lua_geti(L, dt, e + 1) != LUA_TTABLE)
                return luaL_error(L, "logs.%s[%d] must be a list of %d values", DICE_KEY, (int)(e + 1), ck.n_classes);
            for (int c = 0; c < ck.n_classes; c++) {
                int t = lua_geti(L, -1, c + 1);
                d[e * ck.n_classes + c] = t == LUA_TNIL ? NAN : lua_tonumber(L, -1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        ck.dice_per_class = d;
    }
    nnu_status st = nnu_checkpoint_save(path, &ck, &o);
    if (st == NNU_STATUS_ERR_IO) return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static void push_numbers(lua_State *L, const double *v, int64_t n, int64_t stride) {
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushnumber(L, v[i * stride]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_train_checkpoint_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int nw = 0;
    const nnu_checkpoint_tensor *want = lua_isnoneornil(L, 2) ? NULL : check_layout_arg(L, 2, &nw);
    /* box the checkpoint so a Lua memory error cannot leak it (R12) */
    nnu_checkpoint *ck = lua_newuserdatauv(L, sizeof *ck, 0);
    memset(ck, 0, sizeof *ck);
    int box = lua_gettop(L);
    nnu_status st = nnu_checkpoint_load(path, ck);
    if (st) return l_fail(L, st);
    if (want && (st = nnu_checkpoint_check_layout(path, ck->tensors, ck->n_tensors, want, nw))) {
        nnu_checkpoint_free(ck);
        return l_fail(L, st);
    }
    lua_createtable(L, 0, 14);
    lua_pushstring(L, ck->trainer); lua_setfield(L, -2, "trainer");
    lua_pushstring(L, ck->identity); lua_setfield(L, -2, "identity");
    lua_pushinteger(L, (lua_Integer)ck->plans_hash); lua_setfield(L, -2, "plans_hash");
    lua_pushinteger(L, ck->epoch); lua_setfield(L, -2, "epoch");
    lua_pushinteger(L, ck->optim_steps); lua_setfield(L, -2, "optim_steps");
    lua_pushinteger(L, ck->n_classes); lua_setfield(L, -2, "n_classes");
    if (!isnan(ck->best_ema)) { lua_pushnumber(L, ck->best_ema); lua_setfield(L, -2, "best_ema"); }
    lua_pushinteger(L, ck->seed); lua_setfield(L, -2, "seed");
    lua_pushinteger(L, ck->train_batches); lua_setfield(L, -2, "train_batches");
    lua_pushinteger(L, ck->val_batches); lua_setfield(L, -2, "val_batches");
    push_layout(L, ck->tensors, ck->n_tensors); lua_setfield(L, -2, "layout");
    lua_pushlstring(L, ck->meta ? ck->meta : "", ck->meta_len); lua_setfield(L, -2, "meta");
    /* tensors: move ownership into Lua boxes (the box owns, ck forgets) */
    *l_tensor_newbox(L) = ck->params;
    ck->params = NULL;
    lua_setfield(L, -2, "params");
    lua_createtable(L, ck->n_optim, 0);
    for (int i = 0; i < ck->n_optim; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, ck->optim_name[i]); lua_setfield(L, -2, "name");
        *l_tensor_newbox(L) = ck->optim[i];
        ck->optim[i] = NULL;
        lua_setfield(L, -2, "tensor");
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "optim");
    lua_createtable(L, 0, NNU_CKPT_NLOGS + 1);
    for (int i = 0; i < NNU_CKPT_NLOGS; i++) {
        push_numbers(L, ck->logs[i], ck->n_logged, 1);
        lua_setfield(L, -2, LOG_KEYS[i]);
    }
    lua_createtable(L, (int)ck->n_logged, 0);
    for (int64_t e = 0; e < ck->n_logged; e++) {
        push_numbers(L, ck->dice_per_class + e * ck->n_classes, ck->n_classes, 1);
        lua_rawseti(L, -2, e + 1);
    }
    lua_setfield(L, -2, DICE_KEY);
    lua_setfield(L, -2, "logs");
    nnu_checkpoint_free(ck);
    lua_remove(L, box);
    return 1;
}

static int l_train_check_layout(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int ng, nw;
    const nnu_checkpoint_tensor *got = check_layout_arg(L, 2, &ng), *want = check_layout_arg(L, 3, &nw);
    nnu_status st = nnu_checkpoint_check_layout(path, got, ng, want, nw);
    if (st) return l_fail(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_train_plot_available(lua_State *L) {
    lua_pushboolean(L, nnu_plot_available());
    return 1;
}

static int l_train_plot_progress(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    int w = (int)luaL_optinteger(L, 3, 0), h = (int)luaL_optinteger(L, 4, 0);
    lua_getfield(L, 2, "train_losses");
    int64_t n = lua_istable(L, -1) ? (int64_t)luaL_len(L, -1) : 0;
    lua_pop(L, 1);
    const double *v[NNU_CKPT_NLOGS];
    for (int i = 0; i < NNU_CKPT_NLOGS; i++) {
        lua_getfield(L, 2, LOG_KEYS[i]);
        if (!lua_istable(L, -1) || (int64_t)luaL_len(L, -1) < n)
            return luaL_error(L, "logs.%s must have at least %d entries", LOG_KEYS[i], (int)n);
        v[i] = check_numbers(L, lua_gettop(L), n, LOG_KEYS[i]);
    }
    double *t = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
    for (int64_t e = 0; e < n; e++)
        t[e] = v[NNU_CKPT_LOG_EPOCH_END][e] - v[NNU_CKPT_LOG_EPOCH_START][e];
    nnu_progress_logs logs = {n, v[NNU_CKPT_LOG_TRAIN_LOSS], v[NNU_CKPT_LOG_VAL_LOSS],
                              v[NNU_CKPT_LOG_MEAN_FG_DICE], v[NNU_CKPT_LOG_EMA_FG_DICE], t,
                              v[NNU_CKPT_LOG_LR]};
    nnu_status st = nnu_plot_progress(path, &logs, w, h);
    if (st == NNU_STATUS_ERR_IO || st == NNU_STATUS_ERR_UNSUPPORTED) return l_fail(L, st);
    if (st) return l_raise(L, st);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_train_pseudo_dice(lua_State *L) {
    nnu_tensor *logits = l_tensor_check(L, 1), *target = l_tensor_check(L, 2);
    int has_ignore = 0, n_regions = 0;
    int64_t ignore = 0;
    nnu_eval_region *reg = NULL;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "ignore_label");
        if (!lua_isnil(L, -1)) { has_ignore = 1; ignore = (int64_t)luaL_checkinteger(L, -1); }
        lua_pop(L, 1);
        lua_getfield(L, 3, "regions");
        if (lua_istable(L, -1)) {
            int rt = lua_gettop(L);
            n_regions = (int)luaL_len(L, rt);
            luaL_argcheck(L, n_regions > 0, 3, "regions must not be empty");
            reg = lua_newuserdatauv(L, sizeof *reg * (size_t)n_regions, 0);
            for (int r = 0; r < n_regions; r++) {
                lua_geti(L, rt, r + 1);
                int e = lua_gettop(L);
                if (lua_istable(L, e)) {
                    reg[r].n = (int)luaL_len(L, e);
                    luaL_argcheck(L, reg[r].n >= 1 && reg[r].n <= NNU_EVAL_MAX_REGION_LABELS, 3,
                                  "a region needs 1 to 16 labels");
                    for (int j = 0; j < reg[r].n; j++) {
                        lua_geti(L, e, j + 1);
                        reg[r].labels[j] = (int64_t)luaL_checkinteger(L, -1);
                        lua_pop(L, 1);
                    }
                } else {
                    reg[r].n = 1;
                    reg[r].labels[0] = (int64_t)luaL_checkinteger(L, e);
                }
                lua_pop(L, 1);
            }
        }
    }
    int64_t k = logits->ndim >= 2 ? logits->shape[1] : 0;
    int64_t m = reg ? n_regions : (k > 1 ? k - 1 : 1);
    double *c = lua_newuserdatauv(L, sizeof(double) * 3 * (size_t)m, 0);
    nnu_status st = reg ? nnu_pseudo_dice_regions(logits, target, reg, n_regions, has_ignore, ignore, c,
                                                  c + m, c + 2 * m)
                        : nnu_pseudo_dice_labels(logits, target, has_ignore, ignore, c, c + m, c + 2 * m);
    if (st) return l_raise(L, st);
    for (int j = 0; j < 3; j++) push_numbers(L, c + j * m, m, 1);
    return 3;
}

static int l_train_crc32(lua_State *L) {
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    uint32_t crc = (uint32_t)luaL_optinteger(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)nnu_crc32(crc, s, n));
    return 1;
}

/* time() -> seconds since 1970 with microseconds (Python's time.time(), for the
 * log's timestamps; sys.clock is monotonic and has no calendar origin) */
static int l_train_time(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) * 1e-6);
    return 1;
}

static void push_split(lua_State *L, const nnu_split *sp) {
    lua_createtable(L, 0, 2);
    lua_createtable(L, (int)sp->n_train, 0);
    for (int64_t i = 0; i < sp->n_train; i++) { lua_pushinteger(L, sp->train[i]); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "train");
    lua_createtable(L, (int)sp->n_val, 0);
    for (int64_t i = 0; i < sp->n_val; i++) { lua_pushinteger(L, sp->val[i]); lua_rawseti(L, -2, i + 1); }
    lua_setfield(L, -2, "val");
}

static int l_train_kfold(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1), k = luaL_checkinteger(L, 2);
    lua_Integer seed = luaL_optinteger(L, 3, 12345);
    luaL_argcheck(L, k >= 2 && k <= 1000, 2, "n_splits must be in 2 .. 1000");
    lua_createtable(L, (int)k, 0);
    for (int f = 0; f < (int)k; f++) {
        nnu_split sp = {0};
        nnu_status st = nnu_splits_kfold((int64_t)n, (int)k, (uint32_t)seed, f, &sp);
        if (st) return l_raise(L, st);
        push_split(L, &sp);
        nnu_split_free(&sp);
        lua_rawseti(L, -2, f + 1);
    }
    return 1;
}

static int l_train_random_split(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1), fold = luaL_checkinteger(L, 2);
    nnu_split sp = {0};
    nnu_status st = nnu_splits_random((int64_t)n, (int)fold, &sp);
    if (st) return l_raise(L, st);
    push_split(L, &sp);
    nnu_split_free(&sp);
    return 1;
}

static const luaL_Reg train_functions[] = {
    {"kfold", l_train_kfold},
    {"random_split", l_train_random_split},
    {"time", l_train_time},
    {"checkpoint_save", l_train_checkpoint_save},
    {"checkpoint_load", l_train_checkpoint_load},
    {"check_layout", l_train_check_layout},
    {"plot_available", l_train_plot_available},
    {"plot_progress", l_train_plot_progress},
    {"pseudo_dice", l_train_pseudo_dice},
    {"crc32", l_train_crc32},
    {NULL, NULL}};

int luaopen_nnunet_train(lua_State *L) {
    luaL_newlib(L, train_functions);
    return 1;
}
