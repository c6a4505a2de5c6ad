/* nnu_checkpoint.c: the training checkpoint <-> a safetensors file (contents in
 * nnu_checkpoint.h). The container (atomic write, CRC, validation of the format) is
 * nnu_safetensors.c; this file maps the fields onto tensors and metadata strings and
 * checks them on the way back. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* open_memstream */
#endif
#include "nnu_checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_json.h"

static const char *const LOG_NAMES[NNU_CKPT_NLOGS] = {
    "train_losses", "val_losses", "mean_fg_dice", "ema_fg_dice",
    "lrs", "epoch_start_timestamps", "epoch_end_timestamps",
};
#define DICE_NAME "dice_per_class_or_region"
#define OPT_PREFIX "optimizer."

const char *nnu_checkpoint_log_name(int i) {
    return (i >= 0 && i < NNU_CKPT_NLOGS) ? LOG_NAMES[i] : "?";
}

static int64_t layout_numel(const nnu_checkpoint_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

nnu_status nnu_checkpoint_check_layout(const char *path, const nnu_checkpoint_tensor *got, int ngot,
                                       const nnu_checkpoint_tensor *want, int nwant) {
    static const char *const why = "the checkpoint does not match the plan's architecture";
    for (int i = 0; i < ngot && i < nwant; i++) {
        if (strcmp(got[i].name, want[i].name))
            return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "checkpoint '%s': tensor %d is '%s', the network's is '%s' (%s)",
                            path, i, got[i].name, want[i].name, why);
        int same = got[i].ndim == want[i].ndim;
        for (int d = 0; same && d < got[i].ndim; d++) same = got[i].shape[d] == want[i].shape[d];
        if (!same) {
            char a[160], b[160];
            nnu_shape_str(got[i].ndim, got[i].shape, a, sizeof a);
            nnu_shape_str(want[i].ndim, want[i].shape, b, sizeof b);
            return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "checkpoint '%s': tensor '%s' is %s, the network's is %s (%s)", path,
                            got[i].name, a, b, why);
        }
    }
    if (ngot < nwant)
        return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "checkpoint '%s': the network's tensor '%s' is missing (%s)", path,
                        want[ngot].name, why);
    if (ngot > nwant)
        return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "checkpoint '%s': tensor '%s' is not in the network (%s)", path,
                        got[nwant].name, why);
    return NNU_STATUS_OK;
}

/* ------------------------------------------------------------------ saving */

static nnu_status check_f32(const nnu_tensor *t, int64_t n, const char *what) {
    NNU_CHECK(t != NULL, NNU_STATUS_ERR_ARG, "checkpoint: %s is missing", what);
    NNU_CHECK(t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t), NNU_STATUS_ERR_ARG,
              "checkpoint: %s must be a contiguous f32 tensor", what);
    NNU_CHECK(t->storage->mem == NULL || t->storage->mem->host_accessible, NNU_STATUS_ERR_ARG,
              "checkpoint: %s must be in host memory", what);
    NNU_CHECK(n < 0 || nnu_tensor_numel(t) == n, NNU_STATUS_ERR_SHAPE,
              "checkpoint: %s has %lld elements, the parameters %lld", what,
              (long long)nnu_tensor_numel(t), (long long)n);
    return NNU_STATUS_OK;
}

/* a double as JSON: 17 significant digits (exact round trip), NaN -> null,
 * +-inf -> +-1e999 (reads back as +-inf in Python, Lua and strtod) */
static void put_number(FILE *f, double v) {
    if (isnan(v)) fputs("null", f);
    else if (isinf(v)) fputs(v > 0 ? "1e999" : "-1e999", f);
    else fprintf(f, "%.17g", v);
}

static void put_list(FILE *f, const double *v, int64_t n) {
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        if (i) fputc(',', f);
        put_number(f, v[i]);
    }
    fputc(']', f);
}

/* the logs object as JSON text (malloc'd) */
static char *logs_json(const nnu_checkpoint *ck) {
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) return NULL;
    fputc('{', f);
    for (int i = 0; i < NNU_CKPT_NLOGS; i++) {
        fprintf(f, "%s\"%s\":", i ? "," : "", LOG_NAMES[i]);
        put_list(f, ck->logs[i], ck->n_logged);
    }
    fprintf(f, ",\"" DICE_NAME "\":[");
    for (int64_t e = 0; e < ck->n_logged; e++) {
        if (e) fputc(',', f);
        put_list(f, ck->dice_per_class + e * ck->n_classes, ck->n_classes);
    }
    fputs("]}", f);
    if (fclose(f) != 0) { free(s); return NULL; }
    return s;
}

nnu_status nnu_checkpoint_save(const char *path, const nnu_checkpoint *ck,
                               const nnu_checkpoint_save_opts *opts) {
    NNU_CHECK(path && ck, NNU_STATUS_ERR_ARG, "checkpoint save: NULL argument");
    NNU_TRY(check_f32(ck->params, -1, "params"));
    const int64_t n = nnu_tensor_numel(ck->params);
    NNU_CHECK(ck->n_optim >= 0 && ck->n_optim <= NNU_CKPT_MAX_OPTIM, NNU_STATUS_ERR_ARG,
              "checkpoint: %d optimizer buffers (at most %d)", ck->n_optim, NNU_CKPT_MAX_OPTIM);
    for (int i = 0; i < ck->n_optim; i++) {
        NNU_CHECK(ck->optim_name[i][0] && memchr(ck->optim_name[i], 0, NNU_CKPT_NAME_LEN) &&
                  !strchr(ck->optim_name[i], '.'), NNU_STATUS_ERR_ARG,
                  "checkpoint: optimizer buffer %d has no name or a name with a dot", i);
        NNU_TRY(check_f32(ck->optim[i], n, ck->optim_name[i]));
    }
    NNU_CHECK(ck->n_logged >= 0 && ck->n_classes >= 0, NNU_STATUS_ERR_ARG, "checkpoint: negative log sizes");
    for (int i = 0; i < NNU_CKPT_NLOGS; i++)
        NNU_CHECK(ck->n_logged == 0 || ck->logs[i], NNU_STATUS_ERR_ARG, "checkpoint: log array %s is missing",
                  LOG_NAMES[i]);
    NNU_CHECK(ck->n_logged * ck->n_classes == 0 || ck->dice_per_class, NNU_STATUS_ERR_ARG,
              "checkpoint: log array " DICE_NAME " is missing");

    /* the layout: the caller's, or one tensor "params" */
    nnu_checkpoint_tensor whole = {.name = "params", .ndim = 1, .shape = {n}};
    const nnu_checkpoint_tensor *lay = ck->n_tensors > 0 ? ck->tensors : &whole;
    const int nl = ck->n_tensors > 0 ? ck->n_tensors : 1;
    int64_t total = 0;
    for (int i = 0; i < nl; i++) {
        NNU_CHECK(lay[i].name[0] && memchr(lay[i].name, 0, NNU_CKPT_TENSOR_NAME) &&
                  strncmp(lay[i].name, OPT_PREFIX, strlen(OPT_PREFIX)) && lay[i].ndim >= 0 &&
                  lay[i].ndim <= NNU_ST_MAX_DIMS, NNU_STATUS_ERR_ARG,
                  "checkpoint: layout entry %d has a bad name or rank", i);
        total += layout_numel(&lay[i]);
    }
    NNU_CHECK(total == n, NNU_STATUS_ERR_SHAPE, "checkpoint: the layout has %lld elements, the parameters %lld",
              (long long)total, (long long)n);

    const int nt = nl * (1 + ck->n_optim);
    nnu_st_tensor *t = calloc((size_t)nt, sizeof *t);
    char (*names)[NNU_CKPT_TENSOR_NAME + 48] = calloc((size_t)nt, sizeof *names);
    char *logs = logs_json(ck);
    nnu_status st = NNU_STATUS_OK;
    if (!t || !names || !logs) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "checkpoint save: out of memory"); goto done; }
    for (int b = 0; b <= ck->n_optim; b++) {
        const float *base = nnu_tensor_data(b == 0 ? ck->params : ck->optim[b - 1]);
        int64_t off = 0;
        for (int i = 0; i < nl; i++) {
            int k = b * nl + i;
            if (b == 0) snprintf(names[k], sizeof names[k], "%s", lay[i].name);
            else snprintf(names[k], sizeof names[k], OPT_PREFIX "%s.%s", ck->optim_name[b - 1], lay[i].name);
            t[k].name = names[k];
            strcpy(t[k].dtype, "F32");
            t[k].ndim = lay[i].ndim;
            memcpy(t[k].shape, lay[i].shape, sizeof t[k].shape);
            t[k].data = base + off;
            off += layout_numel(&lay[i]);
        }
    }
    char num[11][32];
    snprintf(num[0], 32, "%d", NNU_CKPT_VERSION);
    snprintf(num[1], 32, "%" PRIu64, ck->plans_hash);
    snprintf(num[2], 32, "%" PRId64, ck->epoch);
    if (isnan(ck->best_ema)) snprintf(num[3], 32, "null");
    else snprintf(num[3], 32, "%.17g", ck->best_ema);
    snprintf(num[4], 32, "%" PRId64, ck->optim_steps);
    snprintf(num[5], 32, "%d", ck->n_classes);
    snprintf(num[6], 32, "%" PRId64, ck->seed);
    snprintf(num[7], 32, "%" PRId64, ck->train_batches);
    snprintf(num[8], 32, "%" PRId64, ck->val_batches);
    char trainer[sizeof ck->trainer + 1], identity[sizeof ck->identity + 1];
    snprintf(trainer, sizeof trainer, "%.*s", (int)sizeof ck->trainer, ck->trainer);
    snprintf(identity, sizeof identity, "%.*s", (int)sizeof ck->identity, ck->identity);
    char *meta = malloc(ck->meta_len + 1);
    if (!meta) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "checkpoint save: out of memory"); goto done; }
    if (ck->meta_len) memcpy(meta, ck->meta, ck->meta_len);
    meta[ck->meta_len] = 0;
    if (strlen(meta) != ck->meta_len) {
        free(meta);
        st = NNU_FAIL(NNU_STATUS_ERR_ARG, "checkpoint: the trainer state text contains a NUL byte");
        goto done;
    }
    const char *keys[] = {"format", "format_version", "trainer", "identity", "plans_hash", "epoch", "best_ema",
                          "sgd_steps", "n_classes", "seed", "train_batches", "val_batches", "trainer_state", "logs"};
    const char *vals[] = {NNU_CKPT_FORMAT, num[0], trainer, identity, num[1], num[2], num[3],
                          num[4], num[5], num[6], num[7], num[8], meta, logs};
    nnu_st_save_opts o = {0};
    if (opts) o = *opts;
    o.crc_key = NNU_CKPT_CRC_KEY;
    st = nnu_st_save(path, t, nt, keys, vals, (int)(sizeof keys / sizeof keys[0]), &o);
    free(meta);
done:
    free(t);
    free(names);
    free(logs);
    return st;
}

/* ------------------------------------------------------------------ loading */

void nnu_checkpoint_free(nnu_checkpoint *ck) {
    if (!ck) return;
    nnu_tensor_release(ck->params);
    for (int i = 0; i < NNU_CKPT_MAX_OPTIM; i++) nnu_tensor_release(ck->optim[i]);
    for (int i = 0; i < NNU_CKPT_NLOGS; i++) free(ck->logs[i]);
    free(ck->dice_per_class);
    free(ck->tensors);
    free(ck->meta);
    memset(ck, 0, sizeof *ck);
}

#define BAD(...) do { st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, __VA_ARGS__); goto fail; } while (0)

static int parse_i64(const char *s, int64_t *v) {
    if (!s || !*s) return 0;
    char *e;
    errno = 0;
    long long x = strtoll(s, &e, 10);
    if (*e || errno) return 0;
    *v = (int64_t)x;
    return 1;
}

static int parse_u64(const char *s, uint64_t *v) {
    if (!s || *s < '0' || *s > '9') return 0;
    char *e;
    errno = 0;
    unsigned long long x = strtoull(s, &e, 10);
    if (*e || errno) return 0;
    *v = (uint64_t)x;
    return 1;
}

/* a JSON list of numbers / nulls of exactly n entries into a fresh array */
static double *json_numbers(const nnu_json *a, int64_t n) {
    if (!a || a->type != NNU_JSON_ARRAY || a->n != n) return NULL;
    double *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const nnu_json *x = &a->items[i];
        if (x->type == NNU_JSON_NULL) v[i] = NAN;
        else if (x->type == NNU_JSON_NUMBER) v[i] = x->number;
        else { free(v); return NULL; }
    }
    return v;
}

static nnu_status load_logs(const char *path, const char *text, nnu_checkpoint *ck) {
    char err[200];
    nnu_json *j = text ? nnu_json_parse(text, strlen(text), err, sizeof err) : NULL;
    if (!j) return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "checkpoint '%s': metadata 'logs' is %s%s", path,
                            text ? "not valid JSON: " : "missing", text ? err : "");
    nnu_status st = NNU_STATUS_OK;
    const nnu_json *first = nnu_json_get(j, LOG_NAMES[0]);
    ck->n_logged = first && first->type == NNU_JSON_ARRAY ? first->n : 0;
    for (int i = 0; i < NNU_CKPT_NLOGS; i++) {
        ck->logs[i] = json_numbers(nnu_json_get(j, LOG_NAMES[i]), ck->n_logged);
        if (!ck->logs[i])
            BAD("checkpoint '%s': logs.%s is missing or not a list of %lld numbers", path, LOG_NAMES[i],
                (long long)ck->n_logged);
    }
    const nnu_json *d = nnu_json_get(j, DICE_NAME);
    if (!d || d->type != NNU_JSON_ARRAY || d->n != ck->n_logged)
        BAD("checkpoint '%s': logs." DICE_NAME " is missing or not a list of %lld lists", path,
            (long long)ck->n_logged);
    ck->dice_per_class = malloc(sizeof(double) * (size_t)(ck->n_logged * ck->n_classes + 1));
    if (!ck->dice_per_class) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
    for (int64_t e = 0; e < ck->n_logged; e++) {
        double *v = json_numbers(&d->items[e], ck->n_classes);
        if (!v)
            BAD("checkpoint '%s': logs." DICE_NAME "[%lld] is not a list of %d numbers", path, (long long)e,
                ck->n_classes);
        memcpy(ck->dice_per_class + e * ck->n_classes, v, sizeof(double) * (size_t)ck->n_classes);
        free(v);
    }
fail:
    nnu_json_free(j);
    return st;
}

/* Tensor groups of the file: the parameters (names without the optimizer prefix) and
 * one group per optimizer buffer, each in the file's order. */
nnu_status nnu_checkpoint_load(const char *path, nnu_checkpoint *ck) {
    NNU_CHECK(path && ck, NNU_STATUS_ERR_ARG, "checkpoint load: NULL argument");
    memset(ck, 0, sizeof *ck);
    nnu_st_file f;
    NNU_TRY(nnu_st_open(path, "checkpoint", NNU_CKPT_CRC_KEY, &f));
    nnu_status st = NNU_STATUS_OK;
    const nnu_st_tensor **grp = NULL;      /* per tensor of the file: its slot, group-major */

    const char *fmt = nnu_st_meta(&f, "format");
    if (!fmt || strcmp(fmt, NNU_CKPT_FORMAT))
        BAD("checkpoint '%s': not an nnunet training checkpoint (metadata format '%s', expected '%s')", path,
            fmt ? fmt : "(none)", NNU_CKPT_FORMAT);
    int64_t ver = 0;
    if (!parse_i64(nnu_st_meta(&f, "format_version"), &ver) || ver != NNU_CKPT_VERSION)
        BAD("checkpoint '%s': format version '%s', this build reads version %d", path,
            nnu_st_meta(&f, "format_version") ? nnu_st_meta(&f, "format_version") : "(none)", NNU_CKPT_VERSION);

    /* scalars */
    const char *tr = nnu_st_meta(&f, "trainer"), *id = nnu_st_meta(&f, "identity");
    if (!tr || strlen(tr) >= sizeof ck->trainer) BAD("checkpoint '%s': metadata 'trainer' missing or too long", path);
    if (!id || strlen(id) >= sizeof ck->identity) BAD("checkpoint '%s': metadata 'identity' missing or too long", path);
    strcpy(ck->trainer, tr);
    strcpy(ck->identity, id);
    static const char *const ikeys[] = {"plans_hash", "epoch", "sgd_steps", "n_classes", "seed", "train_batches",
                                        "val_batches"};
    int64_t iv[7];
    for (int i = 0; i < 7; i++) {
        const char *s = nnu_st_meta(&f, ikeys[i]);
        int ok = i == 0 ? parse_u64(s, (uint64_t *)&iv[0]) : parse_i64(s, &iv[i]);
        if (!ok || (i > 0 && iv[i] < 0)) BAD("checkpoint '%s': metadata '%s' is missing or not a valid integer", path, ikeys[i]);
    }
    ck->plans_hash = (uint64_t)iv[0];
    ck->epoch = iv[1];
    ck->optim_steps = iv[2];
    if (iv[3] > 100000) BAD("checkpoint '%s': bad class count %lld", path, (long long)iv[3]);
    ck->n_classes = (int)iv[3];
    ck->seed = iv[4];
    ck->train_batches = iv[5];
    ck->val_batches = iv[6];
    const char *be = nnu_st_meta(&f, "best_ema");
    char *end = NULL;
    if (be && !strcmp(be, "null")) ck->best_ema = NAN;
    else if (!be || !*be || (ck->best_ema = strtod(be, &end), *end))
        BAD("checkpoint '%s': metadata 'best_ema' is missing or not a number", path);
    const char *meta = nnu_st_meta(&f, "trainer_state");
    if (!meta) BAD("checkpoint '%s': metadata 'trainer_state' is missing", path);
    ck->meta_len = strlen(meta);
    ck->meta = strdup(meta);
    if (!ck->meta) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
    if ((st = load_logs(path, nnu_st_meta(&f, "logs"), ck))) goto fail;

    /* tensors: the parameters first, then the optimizer buffers in order of appearance */
    grp = calloc((size_t)(f.n ? f.n : 1), sizeof *grp);
    ck->tensors = calloc((size_t)(f.n ? f.n : 1), sizeof *ck->tensors);
    if (!grp || !ck->tensors) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "out of memory"); goto fail; }
    int np = 0;
    int64_t n = 0;
    for (int i = 0; i < f.n; i++) {
        const nnu_st_tensor *t = &f.t[i];
        if (!strncmp(t->name, OPT_PREFIX, strlen(OPT_PREFIX))) continue;
        if (strcmp(t->dtype, "F32")) BAD("checkpoint '%s': tensor '%s' is %s, not F32", path, t->name, t->dtype);
        if (strlen(t->name) >= NNU_CKPT_TENSOR_NAME) BAD("checkpoint '%s': tensor name '%s' too long", path, t->name);
        nnu_checkpoint_tensor *L = &ck->tensors[np];
        strcpy(L->name, t->name);
        L->ndim = t->ndim;
        memcpy(L->shape, t->shape, sizeof L->shape);
        grp[np++] = t;
        n += layout_numel(L);
    }
    if (np == 0) BAD("checkpoint '%s': no parameter tensors", path);
    ck->n_tensors = np;
    int used = np;
    for (int i = 0; i < f.n; i++) {
        const nnu_st_tensor *t = &f.t[i];
        if (strncmp(t->name, OPT_PREFIX, strlen(OPT_PREFIX))) continue;
        const char *bn = t->name + strlen(OPT_PREFIX), *dot = strchr(bn, '.');
        if (!dot || dot == bn || dot - bn >= NNU_CKPT_NAME_LEN)
            BAD("checkpoint '%s': bad optimizer tensor name '%s'", path, t->name);
        int b = 0;
        while (b < ck->n_optim && (strncmp(ck->optim_name[b], bn, (size_t)(dot - bn)) ||
                                   ck->optim_name[b][dot - bn]))
            b++;
        if (b == ck->n_optim) {
            if (b == NNU_CKPT_MAX_OPTIM) BAD("checkpoint '%s': more than %d optimizer buffers", path, NNU_CKPT_MAX_OPTIM);
            memcpy(ck->optim_name[b], bn, (size_t)(dot - bn));
            ck->optim_name[b][dot - bn] = 0;
            ck->n_optim++;
        }
        /* position of this tensor within its buffer: the parameter of the same name */
        int k = 0;
        while (k < np && strcmp(ck->tensors[k].name, dot + 1)) k++;
        if (k == np) BAD("checkpoint '%s': optimizer tensor '%s' has no parameter '%s'", path, t->name, dot + 1);
        int same = t->ndim == ck->tensors[k].ndim && !strcmp(t->dtype, "F32");
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == ck->tensors[k].shape[d];
        if (!same) BAD("checkpoint '%s': optimizer tensor '%s' differs from its parameter in dtype or shape", path, t->name);
        used++;
    }
    /* every buffer complete: (1 + n_optim) * np tensors in all, no duplicates (the
     * container has unique names) */
    if (used != f.n || f.n != (1 + ck->n_optim) * np)
        BAD("checkpoint '%s': the optimizer buffers do not all cover the %d parameter tensors", path, np);

    /* the data: each group read into its flat tensor at the layout's offsets */
    int64_t shape1[1] = {n};
    if ((st = nnu_tensor_new(NNU_DTYPE_F32, 1, shape1, &ck->params))) goto fail;
    for (int b = 0; b < ck->n_optim; b++)
        if ((st = nnu_tensor_new(NNU_DTYPE_F32, 1, shape1, &ck->optim[b]))) goto fail;
    for (int b = 0; b <= ck->n_optim; b++) {
        float *dst = nnu_tensor_data(b == 0 ? ck->params : ck->optim[b - 1]);
        int64_t off = 0;
        for (int k = 0; k < np; k++) {
            const nnu_st_tensor *t = grp[k];
            if (b > 0) {
                char name[NNU_CKPT_TENSOR_NAME + 48];
                snprintf(name, sizeof name, OPT_PREFIX "%s.%s", ck->optim_name[b - 1], ck->tensors[k].name);
                t = nnu_st_find(&f, name);
            }
            if ((st = nnu_st_read(&f, t, dst + off))) goto fail;
            off += layout_numel(&ck->tensors[k]);
        }
    }
    free(grp);
    nnu_st_close(&f);
    return NNU_STATUS_OK;
fail:
    free(grp);
    nnu_st_close(&f);
    nnu_checkpoint_free(ck);
    return st;
}
