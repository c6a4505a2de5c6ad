/* nnu_loader.c: see nnu_loader.h.
 *
 * Layout: cases[] (in-memory tensors or open stores, with their class locations),
 * a ring of R slots (each one batch: data, seg, per-sample info), and per-thread
 * work state (the crop buffers of the initial patch size and augmentation scratch),
 * all allocated once. Synchronisation: one mutex + one condition variable guard
 * next_b (the next batch a worker claims), consumed (batches handed out), the slot
 * states and the first error; the slow work (crop + augmentation) runs unlocked on
 * a slot that its worker owns exclusively (state FILLING). A worker may claim batch
 * b only when b < consumed + R, i.e. when batch b − R has left its slot. */
#include "nnu_loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_cascade.h"
#include "nnu_interrupt.h"

enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY };

typedef struct lcase {
    nnu_tensor *data;            /* (C, D, H, W) f32 contiguous, or NULL for a store */
    nnu_tensor *seg;             /* (1, D, H, W) i16 contiguous, or NULL */
    nnu_store  *store;
    nnu_tensor *prev;            /* cascade: previous stage's seg (1, D, H, W) i16 contiguous, or NULL */
    int64_t     shape[3];
    nnu_class_locations locs;
    int         annotated;       /* key with values[0] == -1 (ignore label), or -1 */
    int         n_eligible;      /* keys usable for forced foreground */
    int        *eligible;
} lcase;

typedef struct slot {
    nnu_tensor *data, *seg;
    nnu_loader_sample_info *info;
    int         state;
    int64_t     batch;
} slot;

typedef struct wstate {
    nnu_tensor *crop_data, *crop_seg;   /* (C, S), (1, S) */
    int16_t    *seg2_in, *seg2_out;     /* cascade: label + previous stage, (2, S) and (2, patch) */
    nnu_aug_ws  ws;
} wstate;

typedef struct warg { nnu_loader *ld; int id; } warg;

struct nnu_loader {
    nnu_loader_opts  opts;
    nnu_aug_pipeline pipe;
    int              has_pipe;
    int64_t          S[3];           /* crop size (initial patch) */
    int              C;              /* data channels (-1 until the first case) */
    lcase           *cases;
    int64_t          n_cases, cap_cases;
    slot            *slots;
    int              R;
    wstate          *ws;             /* n_workers + 1 (the last: synchronous use) */
    pthread_t       *threads;
    warg            *wargs;
    int              running;        /* threads exist */
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    int64_t          next_b, consumed;
    int              stop;
    nnu_status       err;
    char             errmsg[1024];
};

nnu_loader_opts nnu_loader_opts_default(void) {
    nnu_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch_size = 2;
    o.oversample = 0.33;
    o.seed = 12345;
    o.n_workers = 2;
    return o;
}

void nnu_loader_bbox_range(const int64_t shape[3], const int64_t patch[3], const int64_t initial[3], int64_t lb[3],
                           int64_t ub[3]) {
    for (int a = 0; a < 3; a++) {
        int64_t need = initial[a] - patch[a];
        if (need + shape[a] < initial[a]) need = initial[a] - shape[a];
        /* Python: lb = -need // 2 (floor division of the negated value) */
        lb[a] = -((need + 1) / 2);
        ub[a] = shape[a] + need / 2 + need % 2 - initial[a];
    }
}

/* ---- cases ---- */

static void case_free(lcase *c) {
    nnu_tensor_release(c->data);
    nnu_tensor_release(c->seg);
    nnu_tensor_release(c->prev);
    nnu_store_close(c->store);
    nnu_class_locations_free(&c->locs);
    free(c->eligible);
    memset(c, 0, sizeof *c);
}

/* annotated key and the eligible list (§7.3): keys with >= 1 voxel; the annotated
 * key is dropped from the list when other keys are eligible */
static nnu_status case_index_keys(lcase *c) {
    c->annotated = -1;
    int nk = c->locs.n_keys;
    c->eligible = malloc((size_t)(nk > 0 ? nk : 1) * sizeof(int));
    NNU_CHECK(c->eligible, NNU_STATUS_ERR_OOM, "loader: class keys");
    for (int k = 0; k < nk; k++) {
        const nnu_class_locs *key = &c->locs.keys[k];
        if (key->n_values > 0 && key->values[0] == -1) c->annotated = k;
        if (key->n > 0) c->eligible[c->n_eligible++] = k;
    }
    if (c->annotated >= 0 && c->n_eligible > 1) {
        int m = 0;
        for (int i = 0; i < c->n_eligible; i++)
            if (c->eligible[i] != c->annotated) c->eligible[m++] = c->eligible[i];
        c->n_eligible = m;
    }
    for (int k = 0; k < nk; k++) {
        const nnu_class_locs *key = &c->locs.keys[k];
        for (int64_t i = 0; i < key->n; i++)
            for (int a = 0; a < 3; a++)
                NNU_CHECK(key->coords[3 * i + a] >= 0 && key->coords[3 * i + a] < c->shape[a], NNU_STATUS_ERR_ARG,
                          "loader: class location %lld of key %d lies outside the case (axis %d: %d, size %lld)",
                          (long long)i, k, a, (int)key->coords[3 * i + a], (long long)c->shape[a]);
    }
    return NNU_STATUS_OK;
}

static nnu_status copy_locs(const nnu_class_locations *src, nnu_class_locations *dst) {
    memset(dst, 0, sizeof *dst);
    if (!src || src->n_keys == 0) return NNU_STATUS_OK;
    dst->keys = calloc((size_t)src->n_keys, sizeof *dst->keys);
    NNU_CHECK(dst->keys, NNU_STATUS_ERR_OOM, "loader: class locations");
    dst->n_keys = src->n_keys;
    for (int k = 0; k < src->n_keys; k++) {
        const nnu_class_locs *s = &src->keys[k];
        nnu_class_locs *d = &dst->keys[k];
        d->values = malloc((size_t)(s->n_values > 0 ? s->n_values : 1) * sizeof(int32_t));
        d->coords = malloc((size_t)(s->n > 0 ? s->n * 3 : 1) * sizeof(int32_t));
        if (!d->values || !d->coords) {
            nnu_class_locations_free(dst);
            return NNU_FAIL(NNU_STATUS_ERR_OOM, "loader: class locations of key %d", k);
        }
        d->n_values = s->n_values;
        d->n = s->n;
        if (s->n_values) memcpy(d->values, s->values, (size_t)s->n_values * sizeof(int32_t));
        if (s->n) memcpy(d->coords, s->coords, (size_t)s->n * 3 * sizeof(int32_t));
    }
    return NNU_STATUS_OK;
}

static nnu_status push_case(nnu_loader *ld, lcase *c) {
    NNU_CHECK(!ld->running && ld->consumed == ld->opts.first_batch, NNU_STATUS_ERR_ARG,
              "loader: cases must be added before the first batch");
    if (ld->n_cases == ld->cap_cases) {
        int64_t cap = ld->cap_cases ? 2 * ld->cap_cases : 16;
        lcase *n = realloc(ld->cases, (size_t)cap * sizeof *n);
        NNU_CHECK(n, NNU_STATUS_ERR_OOM, "loader: %lld cases", (long long)cap);
        ld->cases = n;
        ld->cap_cases = cap;
    }
    ld->cases[ld->n_cases++] = *c;
    return NNU_STATUS_OK;
}

nnu_status nnu_loader_add_case(nnu_loader *ld, nnu_tensor *data, nnu_tensor *seg, const nnu_class_locations *locs) {
    NNU_CHECK(ld && data && seg, NNU_STATUS_ERR_ARG, "loader_add_case: NULL argument");
    char b1[64], b2[64];
    NNU_CHECK(data->ndim == 4 && data->dtype == NNU_DTYPE_F32 && seg->ndim == 4 && seg->shape[0] == 1 &&
                  seg->shape[1] == data->shape[1] && seg->shape[2] == data->shape[2] && seg->shape[3] == data->shape[3],
              NNU_STATUS_ERR_SHAPE, "loader_add_case: data %s (f32 (C,D,H,W)) and seg %s ((1,D,H,W)) do not fit",
              nnu_tensor_shape_str(data, b1, sizeof b1), nnu_tensor_shape_str(seg, b2, sizeof b2));
    NNU_CHECK(ld->C < 0 || ld->C == data->shape[0], NNU_STATUS_ERR_SHAPE,
              "loader_add_case: %lld channels, earlier cases have %d", (long long)data->shape[0], ld->C);
    lcase c;
    memset(&c, 0, sizeof c);
    for (int a = 0; a < 3; a++) c.shape[a] = data->shape[a + 1];
    nnu_status st = nnu_tensor_contiguous(data, &c.data);
    if (st == NNU_STATUS_OK) st = nnu_tensor_to_dtype(seg, NNU_DTYPE_I16, &c.seg);
    if (st == NNU_STATUS_OK) st = copy_locs(locs, &c.locs);
    if (st == NNU_STATUS_OK) st = case_index_keys(&c);
    if (st == NNU_STATUS_OK) st = push_case(ld, &c);
    if (st != NNU_STATUS_OK) { case_free(&c); return st; }
    ld->C = (int)data->shape[0];
    return NNU_STATUS_OK;
}

nnu_status nnu_loader_add_store(nnu_loader *ld, const char *path, const char *expect_id, uint64_t expect_hash) {
    NNU_CHECK(ld && path, NNU_STATUS_ERR_ARG, "loader_add_store: NULL argument");
    lcase c;
    memset(&c, 0, sizeof c);
    NNU_TRY(nnu_store_open(path, expect_id, expect_hash, &c.store));
    const nnu_store_info *inf = nnu_store_get_info(c.store);
    for (int a = 0; a < 3; a++) c.shape[a] = inf->shape[a];
    nnu_status st = NNU_STATUS_OK;
    if (ld->C >= 0 && ld->C != inf->n_channels)
        st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "loader_add_store: '%s' has %d channels, earlier cases %d", path,
                      inf->n_channels, ld->C);
    if (st == NNU_STATUS_OK) st = nnu_store_read_class_locations(c.store, &c.locs);
    if (st == NNU_STATUS_OK) st = case_index_keys(&c);
    if (st == NNU_STATUS_OK) st = push_case(ld, &c);
    if (st != NNU_STATUS_OK) { case_free(&c); return st; }
    ld->C = inf->n_channels;
    return NNU_STATUS_OK;
}

nnu_status nnu_loader_set_prev_seg(nnu_loader *ld, int64_t case_index, const nnu_tensor *seg) {
    NNU_CHECK(ld && seg, NNU_STATUS_ERR_ARG, "loader_set_prev_seg: NULL argument");
    NNU_CHECK(case_index >= 0 && case_index < ld->n_cases, NNU_STATUS_ERR_ARG,
              "loader_set_prev_seg: case %lld of %lld", (long long)case_index, (long long)ld->n_cases);
    NNU_CHECK(!ld->running && ld->consumed == ld->opts.first_batch, NNU_STATUS_ERR_ARG,
              "loader_set_prev_seg: only before the first batch");
    lcase *c = &ld->cases[case_index];
    int sd = seg->ndim == 4 ? 1 : 0, ok = seg->ndim == 3 || (seg->ndim == 4 && seg->shape[0] == 1);
    for (int a = 0; ok && a < 3; a++) ok = seg->shape[sd + a] == c->shape[a];
    char b1[64];
    NNU_CHECK(ok, NNU_STATUS_ERR_SHAPE, "loader_set_prev_seg: seg %s does not fit case %lld of shape [%lld,%lld,%lld]",
              nnu_tensor_shape_str(seg, b1, sizeof b1), (long long)case_index, (long long)c->shape[0],
              (long long)c->shape[1], (long long)c->shape[2]);
    int64_t s4[4] = {1, c->shape[0], c->shape[1], c->shape[2]};
    nnu_tensor *t = NULL, *v = NULL;
    NNU_TRY(nnu_tensor_new(NNU_DTYPE_I16, 4, s4, &t));
    nnu_status st = nnu_tensor_view_reshape((nnu_tensor *)seg, 4, s4, &v);   /* a view: seg is not modified */
    if (st == NNU_STATUS_OK) st = nnu_tensor_copy(t, v);
    nnu_tensor_release(v);
    if (st != NNU_STATUS_OK) { nnu_tensor_release(t); return st; }
    nnu_tensor_release(c->prev);
    c->prev = t;
    return NNU_STATUS_OK;
}

int64_t nnu_loader_num_cases(const nnu_loader *ld) { return ld ? ld->n_cases : 0; }

/* data channels of a batch: image channels, then the cascade's one-hot channels */
static int out_channels(const nnu_loader *ld) { return ld->C + ld->opts.n_onehot; }
int     nnu_loader_batch_size(const nnu_loader *ld) { return ld ? ld->opts.batch_size : 0; }

/* ---- one sample ---- */

/* crop box [lo, lo + S) of a memory case into (C, S) / (1, S), padding 0 / -1 */
static void crop_memory(const lcase *c, const int64_t lo[3], const int64_t S[3], int C, float *data, int16_t *seg) {
    const int64_t *sh = c->shape;
    int64_t nin = sh[0] * sh[1] * sh[2], nout = S[0] * S[1] * S[2];
    const float *src = nnu_tensor_data(c->data);
    const int16_t *ssrc = nnu_tensor_data(c->seg);
    int64_t w0 = lo[2] < 0 ? -lo[2] : 0, w1 = sh[2] - lo[2];
    if (w1 > S[2]) w1 = S[2];
    for (int64_t d = 0; d < S[0]; d++)
        for (int64_t h = 0; h < S[1]; h++) {
            int64_t sd = lo[0] + d, shh = lo[1] + h, orow = (d * S[1] + h) * S[2];
            int inside = sd >= 0 && sd < sh[0] && shh >= 0 && shh < sh[1] && w1 > w0;
            int64_t irow = (sd * sh[1] + shh) * sh[2] + lo[2];
            for (int ch = 0; ch < C; ch++) {
                float *o = data + ch * nout + orow;
                if (!inside) { memset(o, 0, (size_t)S[2] * sizeof *o); continue; }
                for (int64_t w = 0; w < w0; w++) o[w] = 0.0f;
                memcpy(o + w0, src + ch * nin + irow + w0, (size_t)(w1 - w0) * sizeof *o);
                for (int64_t w = w1; w < S[2]; w++) o[w] = 0.0f;
            }
            int16_t *o = seg + orow;
            for (int64_t w = 0; w < S[2]; w++) o[w] = (inside && w >= w0 && w < w1) ? ssrc[irow + w] : -1;
        }
}

/* crop box [lo, lo + S) of a (1, D, H, W) i16 seg into out (S), padding -1 */
static void crop_seg_memory(const nnu_tensor *seg, const int64_t shape[3], const int64_t lo[3], const int64_t S[3],
                            int16_t *out) {
    const int16_t *src = nnu_tensor_data(seg);
    for (int64_t d = 0; d < S[0]; d++)
        for (int64_t h = 0; h < S[1]; h++) {
            int64_t sd = lo[0] + d, sh = lo[1] + h;
            int16_t *o = out + (d * S[1] + h) * S[2];
            int inside = sd >= 0 && sd < shape[0] && sh >= 0 && sh < shape[1];
            for (int64_t w = 0; w < S[2]; w++) {
                int64_t sw = lo[2] + w;
                o[w] = (inside && sw >= 0 && sw < shape[2]) ? src[(sd * shape[1] + sh) * shape[2] + sw] : -1;
            }
        }
}

/* cascade (see the header): label + previous stage as two seg channels through the
 * pipeline, then the previous stage as one-hot data channels after the C image channels */
static nnu_status make_sample_cascade(nnu_loader *ld, const lcase *c, const int64_t lo[3], wstate *w, nnu_rng *r,
                                      float *out_data, int16_t *out_seg) {
    const nnu_loader_opts *o = &ld->opts;
    NNU_CHECK(c->prev, NNU_STATUS_ERR_ARG, "loader: a case has no previous-stage segmentation (cascade, n_onehot %d)",
              o->n_onehot);
    int64_t ns = ld->S[0] * ld->S[1] * ld->S[2], n = o->patch[0] * o->patch[1] * o->patch[2];
    memcpy(w->seg2_in, nnu_tensor_data(w->crop_seg), (size_t)ns * sizeof(int16_t));
    crop_seg_memory(c->prev, c->shape, lo, ld->S, w->seg2_in + ns);
    nnu_aug_buf in = {nnu_tensor_data(w->crop_data), ld->C, w->seg2_in, 2, {ld->S[0], ld->S[1], ld->S[2]}};
    nnu_aug_buf out = {out_data, ld->C, w->seg2_out, 2, {o->patch[0], o->patch[1], o->patch[2]}};
    if (ld->has_pipe) NNU_TRY(nnu_aug_pipeline_run(&ld->pipe, &in, &out, r, &w->ws));
    else {   /* S == patch without a pipeline */
        memcpy(out_data, in.data, (size_t)(n * ld->C) * sizeof(float));
        memcpy(w->seg2_out, w->seg2_in, (size_t)(2 * n) * sizeof(int16_t));
    }
    memcpy(out_seg, w->seg2_out, (size_t)n * sizeof(int16_t));
    float *oh = out_data + (int64_t)ld->C * n;
    nnu_cascade_onehot_i16(w->seg2_out + n, n, o->n_onehot, o->onehot_labels, oh);
    if (o->cascade_aug) {
        nnu_cascade_aug_params cp;
        nnu_cascade_aug_params_default(&cp);
        NNU_TRY(nnu_cascade_augment(oh, o->n_onehot, o->patch, &cp, r, &w->ws));
    }
    return NNU_STATUS_OK;
}

static nnu_status make_sample(nnu_loader *ld, int64_t b, int j, wstate *w, float *out_data, int16_t *out_seg,
                              nnu_loader_sample_info *info) {
    const nnu_loader_opts *o = &ld->opts;
    nnu_rng r;
    nnu_rng_seed(&r, o->seed, nnu_rng_stream((uint64_t)b, (uint64_t)j));
    int64_t ci = nnu_rng_int(&r, 0, ld->n_cases - 1);
    lcase *c = &ld->cases[ci];
    int forced = o->oversample_random ? nnu_rng_bernoulli(&r, o->oversample)
                                      : j >= (int)nearbyint(o->batch_size * (1.0 - o->oversample));
    int64_t lb[3], ub[3], lo[3];
    nnu_loader_bbox_range(c->shape, o->patch, ld->S, lb, ub);
    int key = -1;
    if (forced && c->n_eligible > 0) key = c->eligible[nnu_rng_int(&r, 0, c->n_eligible - 1)];
    else if (!forced && c->annotated >= 0 && c->locs.keys[c->annotated].n > 0) key = c->annotated;
    if (key >= 0) {
        const nnu_class_locs *k = &c->locs.keys[key];
        const int32_t *v = k->coords + 3 * nnu_rng_int(&r, 0, k->n - 1);
        for (int a = 0; a < 3; a++) {
            int64_t x = v[a] - ld->S[a] / 2;   /* no upper clamp: the patch may extend past the case */
            lo[a] = x > lb[a] ? x : lb[a];
        }
    } else {
        for (int a = 0; a < 3; a++) lo[a] = nnu_rng_int(&r, lb[a], ub[a]);
    }
    if (info) {
        info->case_index = ci;
        info->forced = forced;
        info->key = key;
        memcpy(info->lo, lo, sizeof lo);
    }
    float *cd = nnu_tensor_data(w->crop_data);
    int16_t *cs = nnu_tensor_data(w->crop_seg);
    if (c->store) NNU_TRY(nnu_store_read_patch(c->store, lo, ld->S, w->crop_data, w->crop_seg));
    else crop_memory(c, lo, ld->S, ld->C, cd, cs);
    if (o->n_onehot > 0) return make_sample_cascade(ld, c, lo, w, &r, out_data, out_seg);
    nnu_aug_buf in = {cd, ld->C, cs, 1, {ld->S[0], ld->S[1], ld->S[2]}};
    nnu_aug_buf out = {out_data, ld->C, out_seg, 1, {o->patch[0], o->patch[1], o->patch[2]}};
    if (ld->has_pipe) return nnu_aug_pipeline_run(&ld->pipe, &in, &out, &r, &w->ws);
    int64_t n = ld->S[0] * ld->S[1] * ld->S[2];   /* S == patch without a pipeline */
    memcpy(out_data, cd, (size_t)(n * ld->C) * sizeof(float));
    memcpy(out_seg, cs, (size_t)n * sizeof(int16_t));
    return NNU_STATUS_OK;
}

static nnu_status produce(nnu_loader *ld, int64_t b, nnu_tensor *data, nnu_tensor *seg, nnu_loader_sample_info *info,
                          wstate *w) {
    const int64_t *p = ld->opts.patch;
    int64_t n = p[0] * p[1] * p[2];
    float *d = nnu_tensor_data(data);
    int16_t *s = nnu_tensor_data(seg);
    for (int j = 0; j < ld->opts.batch_size; j++) {
        if (nnu_interrupt_requested()) return NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "loader: interrupted");
        NNU_TRY(make_sample(ld, b, j, w, d + (int64_t)j * out_channels(ld) * n, s + (int64_t)j * n,
                            info ? info + j : NULL));
    }
    return NNU_STATUS_OK;
}

static nnu_status batch_tensors_ok(const nnu_loader *ld, const nnu_tensor *data, const nnu_tensor *seg) {
    const int64_t *p = ld->opts.patch;
    int ok = data && seg && data->ndim == 5 && seg->ndim == 5 && data->dtype == NNU_DTYPE_F32 &&
             seg->dtype == NNU_DTYPE_I16 && nnu_tensor_is_contiguous(data) && nnu_tensor_is_contiguous(seg) &&
             data->shape[0] == ld->opts.batch_size && data->shape[1] == out_channels(ld) &&
             seg->shape[0] == ld->opts.batch_size &&
             seg->shape[1] == 1;
    for (int a = 0; ok && a < 3; a++) ok = data->shape[a + 2] == p[a] && seg->shape[a + 2] == p[a];
    NNU_CHECK(ok, NNU_STATUS_ERR_SHAPE, "loader: batch tensors must be contiguous f32 (%d,%d,%lld,%lld,%lld) and i16 "
              "(%d,1,...)", ld->opts.batch_size, out_channels(ld), (long long)p[0], (long long)p[1], (long long)p[2],
              ld->opts.batch_size);
    return NNU_STATUS_OK;
}

static nnu_status batch_new(const nnu_loader *ld, nnu_tensor **data, nnu_tensor **seg) {
    const int64_t *p = ld->opts.patch;
    int64_t ds[5] = {ld->opts.batch_size, out_channels(ld), p[0], p[1], p[2]}, ss[5] = {ld->opts.batch_size, 1, p[0], p[1], p[2]};
    *data = *seg = NULL;
    nnu_status st = nnu_tensor_new(NNU_DTYPE_F32, 5, ds, data);
    if (st == NNU_STATUS_OK) st = nnu_tensor_new(NNU_DTYPE_I16, 5, ss, seg);
    if (st != NNU_STATUS_OK) { nnu_tensor_release(*data); *data = NULL; }
    return st;
}

nnu_status nnu_loader_new_batch(const nnu_loader *ld, nnu_tensor **data, nnu_tensor **seg) {
    NNU_CHECK(ld && data && seg, NNU_STATUS_ERR_ARG, "loader_new_batch: NULL argument");
    NNU_CHECK(ld->n_cases > 0, NNU_STATUS_ERR_ARG, "loader_new_batch: the loader has no cases (channels unknown)");
    return batch_new(ld, data, seg);
}

static nnu_status wstate_init(nnu_loader *ld, wstate *w) {
    if (!w->crop_data) {
        int64_t ds[4] = {ld->C, ld->S[0], ld->S[1], ld->S[2]}, ss[4] = {1, ld->S[0], ld->S[1], ld->S[2]};
        NNU_TRY(nnu_tensor_new(NNU_DTYPE_F32, 4, ds, &w->crop_data));
        NNU_TRY(nnu_tensor_new(NNU_DTYPE_I16, 4, ss, &w->crop_seg));
    }
    if (ld->opts.n_onehot > 0 && !(w->seg2_in && w->seg2_out)) {
        const int64_t *p = ld->opts.patch;
        if (!w->seg2_in) w->seg2_in = malloc((size_t)(2 * ld->S[0] * ld->S[1] * ld->S[2]) * sizeof(int16_t));
        if (!w->seg2_out) w->seg2_out = malloc((size_t)(2 * p[0] * p[1] * p[2]) * sizeof(int16_t));
        NNU_CHECK(w->seg2_in && w->seg2_out, NNU_STATUS_ERR_OOM, "loader: cascade seg buffers");
    }
    return NNU_STATUS_OK;
}

static void wstate_free(wstate *w) {
    nnu_tensor_release(w->crop_data);
    nnu_tensor_release(w->crop_seg);
    free(w->seg2_in);
    free(w->seg2_out);
    nnu_aug_ws_free(&w->ws);
    memset(w, 0, sizeof *w);
}

nnu_status nnu_loader_make_batch(nnu_loader *ld, int64_t b, nnu_tensor *data, nnu_tensor *seg,
                                 nnu_loader_sample_info *info) {
    NNU_CHECK(ld && ld->n_cases > 0, NNU_STATUS_ERR_ARG, "loader: no cases");
    NNU_TRY(batch_tensors_ok(ld, data, seg));
    wstate w;
    memset(&w, 0, sizeof w);
    nnu_status st = wstate_init(ld, &w);
    if (st == NNU_STATUS_OK) st = produce(ld, b, data, seg, info, &w);
    wstate_free(&w);
    return st;
}

/* ---- ring and threads ---- */

/* the caller's references to a slot's tensors are gone: memory can be reused */
static int sole_owner(const nnu_tensor *t) {
    return t && __atomic_load_n(&t->refcount, __ATOMIC_ACQUIRE) == 1 &&
           __atomic_load_n(&t->storage->refcount, __ATOMIC_ACQUIRE) == 1;
}

static nnu_status slot_prepare(nnu_loader *ld, slot *s) {
    if (!(sole_owner(s->data) && sole_owner(s->seg))) {
        nnu_tensor_release(s->data);
        nnu_tensor_release(s->seg);
        s->data = s->seg = NULL;
        NNU_TRY(batch_new(ld, &s->data, &s->seg));
    }
    return NNU_STATUS_OK;
}

static void record_error(nnu_loader *ld, nnu_status st) {
    /* called with mu held */
    if (ld->err == NNU_STATUS_OK) {
        ld->err = st;
        snprintf(ld->errmsg, sizeof ld->errmsg, "%s", nnu_last_error());
    }
    ld->stop = 1;
    pthread_cond_broadcast(&ld->cv);
}

static void *worker_main(void *arg) {
    warg *wa = arg;
    nnu_loader *ld = wa->ld;
    wstate *w = &ld->ws[wa->id];
    nnu_aug_set_omp(0);   /* parallelism comes from the workers */
    for (;;) {
        pthread_mutex_lock(&ld->mu);
        while (!ld->stop && ld->next_b >= ld->consumed + ld->R) pthread_cond_wait(&ld->cv, &ld->mu);
        if (ld->stop) { pthread_mutex_unlock(&ld->mu); break; }
        int64_t b = ld->next_b++;
        slot *s = &ld->slots[b % ld->R];
        s->state = SLOT_FILLING;
        pthread_mutex_unlock(&ld->mu);

        nnu_status st = wstate_init(ld, w);
        if (st == NNU_STATUS_OK) st = slot_prepare(ld, s);
        if (st == NNU_STATUS_OK) st = produce(ld, b, s->data, s->seg, s->info, w);

        pthread_mutex_lock(&ld->mu);
        if (st != NNU_STATUS_OK) {
            s->state = SLOT_FREE;
            record_error(ld, st);
        } else {
            s->state = SLOT_READY;
            s->batch = b;
            pthread_cond_broadcast(&ld->cv);
        }
        pthread_mutex_unlock(&ld->mu);
        if (st != NNU_STATUS_OK) break;
    }
    return NULL;
}

static void stop_workers(nnu_loader *ld) {
    if (!ld->running) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->opts.n_workers; i++) pthread_join(ld->threads[i], NULL);
    ld->running = 0;
}

static nnu_status start_workers(nnu_loader *ld) {
    ld->stop = 0;
    ld->next_b = ld->consumed;
    for (int i = 0; i < ld->R; i++) ld->slots[i].state = SLOT_FREE;
    for (int i = 0; i < ld->opts.n_workers; i++) {
        ld->wargs[i] = (warg){ld, i};
        if (pthread_create(&ld->threads[i], NULL, worker_main, &ld->wargs[i]) != 0) {
            ld->opts.n_workers = i;   /* join the ones that started */
            ld->running = i > 0;
            stop_workers(ld);
            return NNU_FAIL(NNU_STATUS_ERR_OOM, "loader: cannot start worker thread %d", i);
        }
    }
    ld->running = ld->opts.n_workers > 0;
    return NNU_STATUS_OK;
}

nnu_status nnu_loader_new(const nnu_loader_opts *opts, nnu_loader **out) {
    NNU_CHECK(opts && out, NNU_STATUS_ERR_ARG, "loader_new: NULL argument");
    *out = NULL;
    NNU_CHECK(opts->batch_size >= 1 && opts->oversample >= 0.0 && opts->oversample <= 1.0 && opts->n_workers >= 0 &&
                  opts->n_workers <= 256 && opts->first_batch >= 0 && opts->n_onehot >= 0 &&
              opts->n_onehot <= NNU_LOADER_MAX_ONEHOT,
              NNU_STATUS_ERR_ARG, "loader_new: batch_size %d, oversample %g, n_workers %d, first_batch %lld, n_onehot %d",
              opts->batch_size, opts->oversample, opts->n_workers, (long long)opts->first_batch, opts->n_onehot);
    for (int a = 0; a < 3; a++)
        NNU_CHECK(opts->patch[a] >= 1 && opts->initial_patch[a] >= 0, NNU_STATUS_ERR_ARG,
                  "loader_new: patch axis %d is %lld (initial %lld)", a, (long long)opts->patch[a],
                  (long long)opts->initial_patch[a]);
    nnu_loader *ld = calloc(1, sizeof *ld);
    NNU_CHECK(ld, NNU_STATUS_ERR_OOM, "loader_new");
    ld->opts = *opts;
    ld->C = -1;
    for (int a = 0; a < 3; a++) ld->S[a] = opts->initial_patch[a] > 0 ? opts->initial_patch[a] : opts->patch[a];
    nnu_status st = NNU_STATUS_OK;
    if (opts->pipeline) {
        ld->pipe = *opts->pipeline;
        ld->has_pipe = 1;
        st = nnu_aug_pipeline_check(&ld->pipe);
        for (int a = 0; st == NNU_STATUS_OK && a < 3; a++)
            if (ld->pipe.patch[a] != opts->patch[a])
                st = NNU_FAIL(NNU_STATUS_ERR_ARG, "loader_new: pipeline patch axis %d is %lld, loader patch %lld", a,
                              (long long)ld->pipe.patch[a], (long long)opts->patch[a]);
        int spatial = ld->pipe.n_steps > 0 && ld->pipe.step[0].kind == NNU_AUG_SPATIAL;
        for (int a = 0; st == NNU_STATUS_OK && !spatial && a < 3; a++)
            if (ld->S[a] != opts->patch[a])
                st = NNU_FAIL(NNU_STATUS_ERR_ARG, "loader_new: an initial patch larger than the patch needs a "
                              "spatial step first in the pipeline");
    } else {
        for (int a = 0; st == NNU_STATUS_OK && a < 3; a++)
            if (ld->S[a] != opts->patch[a])
                st = NNU_FAIL(NNU_STATUS_ERR_ARG, "loader_new: without a pipeline the initial patch must equal the patch");
    }
    ld->R = opts->ring > 0 ? opts->ring : 2 * (opts->n_workers > 0 ? opts->n_workers : 1);
    if (ld->R < opts->n_workers) ld->R = opts->n_workers;
    ld->consumed = ld->next_b = opts->first_batch;
    if (st == NNU_STATUS_OK) {
        ld->slots = calloc((size_t)ld->R, sizeof *ld->slots);
        ld->ws = calloc((size_t)opts->n_workers + 1, sizeof *ld->ws);
        ld->threads = calloc((size_t)opts->n_workers + 1, sizeof *ld->threads);
        ld->wargs = calloc((size_t)opts->n_workers + 1, sizeof *ld->wargs);
        if (!ld->slots || !ld->ws || !ld->threads || !ld->wargs) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "loader_new: ring");
        for (int i = 0; st == NNU_STATUS_OK && i < ld->R; i++) {
            ld->slots[i].info = calloc((size_t)opts->batch_size, sizeof *ld->slots[i].info);
            if (!ld->slots[i].info) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "loader_new: ring");
        }
    }
    if (st != NNU_STATUS_OK) {
        if (ld->slots)
            for (int i = 0; i < ld->R; i++) free(ld->slots[i].info);
        free(ld->slots); free(ld->ws); free(ld->threads); free(ld->wargs); free(ld);
        return st;
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv, NULL);
    *out = ld;
    return NNU_STATUS_OK;
}

void nnu_loader_free(nnu_loader *ld) {
    if (!ld) return;
    stop_workers(ld);
    for (int i = 0; i < ld->R; i++) {
        nnu_tensor_release(ld->slots[i].data);
        nnu_tensor_release(ld->slots[i].seg);
        free(ld->slots[i].info);
    }
    for (int i = 0; i <= ld->opts.n_workers; i++) wstate_free(&ld->ws[i]);
    for (int64_t i = 0; i < ld->n_cases; i++) case_free(&ld->cases[i]);
    free(ld->cases); free(ld->slots); free(ld->ws); free(ld->threads); free(ld->wargs);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv);
    free(ld);
}

int64_t nnu_loader_next_index(const nnu_loader *ld) { return ld ? ld->consumed : 0; }

nnu_status nnu_loader_seek(nnu_loader *ld, int64_t b) {
    NNU_CHECK(ld && b >= 0, NNU_STATUS_ERR_ARG, "loader_seek: batch %lld", (long long)b);
    if (b == ld->consumed && ld->err == NNU_STATUS_OK) return NNU_STATUS_OK;
    stop_workers(ld);   /* also the way out after a failure (e.g. an interrupt) */
    ld->consumed = ld->next_b = b;
    for (int i = 0; i < ld->R; i++) ld->slots[i].state = SLOT_FREE;
    ld->err = NNU_STATUS_OK;
    ld->stop = 0;
    return NNU_STATUS_OK;
}

nnu_status nnu_loader_next(nnu_loader *ld, nnu_tensor **data, nnu_tensor **seg, nnu_loader_sample_info *info) {
    NNU_CHECK(ld && data && seg, NNU_STATUS_ERR_ARG, "loader_next: NULL argument");
    *data = *seg = NULL;
    NNU_CHECK(ld->n_cases > 0, NNU_STATUS_ERR_ARG, "loader_next: the loader has no cases");
    if (ld->opts.n_workers == 0) {
        /* synchronous: slot 0 is produced right here (OpenMP inside allowed) */
        slot *s = &ld->slots[0];
        wstate *w = &ld->ws[0];
        NNU_TRY(wstate_init(ld, w));
        NNU_TRY(slot_prepare(ld, s));
        NNU_TRY(produce(ld, ld->consumed, s->data, s->seg, s->info, w));
        ld->consumed++;
        if (info) memcpy(info, s->info, (size_t)ld->opts.batch_size * sizeof *info);
        nnu_tensor_retain(s->data);
        nnu_tensor_retain(s->seg);
        *data = s->data;
        *seg = s->seg;
        return NNU_STATUS_OK;
    }
    if (!ld->running) {
        NNU_CHECK(ld->err == NNU_STATUS_OK, ld->err, "loader: %s", ld->errmsg);
        NNU_TRY(start_workers(ld));
    }
    pthread_mutex_lock(&ld->mu);
    int64_t c = ld->consumed;
    slot *s = &ld->slots[c % ld->R];
    while (!(s->state == SLOT_READY && s->batch == c) && ld->err == NNU_STATUS_OK)
        pthread_cond_wait(&ld->cv, &ld->mu);
    if (ld->err != NNU_STATUS_OK) {
        nnu_status e = ld->err;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ld->errmsg);
        pthread_mutex_unlock(&ld->mu);
        return NNU_FAIL(e, "loader worker: %s", msg);
    }
    nnu_tensor_retain(s->data);
    nnu_tensor_retain(s->seg);
    *data = s->data;
    *seg = s->seg;
    if (info) memcpy(info, s->info, (size_t)ld->opts.batch_size * sizeof *info);
    s->state = SLOT_FREE;
    ld->consumed++;
    pthread_cond_broadcast(&ld->cv);
    pthread_mutex_unlock(&ld->mu);
    return NNU_STATUS_OK;
}
