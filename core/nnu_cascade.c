/* nnu_cascade.c: see nnu_cascade.h. */
#include "nnu_cascade.h"

#include <string.h>

#include "nnu_dtype.h"

void nnu_cascade_onehot_i16(const int16_t *seg, int64_t n, int n_labels, const int32_t *labels, float *out) {
    for (int k = 0; k < n_labels; k++) {
        float *o = out + (int64_t)k * n;
        int32_t l = labels[k];
        for (int64_t i = 0; i < n; i++) o[i] = seg[i] == l ? 1.0f : 0.0f;
    }
}

nnu_status nnu_cascade_stack_onehot(const nnu_tensor *data, const nnu_tensor *seg, int n_labels,
                                    const int32_t *labels, nnu_tensor **out) {
    NNU_CHECK(data && seg && out && (labels || n_labels == 0), NNU_STATUS_ERR_ARG, "cascade_stack_onehot: NULL argument");
    *out = NULL;
    char b1[64], b2[64];
    int sd = seg->ndim == 4 ? 1 : 0;   /* first spatial axis of seg */
    int ok = data->ndim == 4 && data->dtype == NNU_DTYPE_F32 && (seg->ndim == 3 || (seg->ndim == 4 && seg->shape[0] == 1));
    for (int a = 0; ok && a < 3; a++) ok = seg->shape[sd + a] == data->shape[1 + a];
    NNU_CHECK(ok, NNU_STATUS_ERR_SHAPE, "cascade_stack_onehot: data %s (f32 (C,D,H,W)) and seg %s ((1,D,H,W) or "
              "(D,H,W)) do not fit", nnu_tensor_shape_str(data, b1, sizeof b1), nnu_tensor_shape_str(seg, b2, sizeof b2));
    NNU_CHECK(n_labels >= 0 && n_labels <= NNU_CASCADE_MAX_LABELS, NNU_STATUS_ERR_ARG,
              "cascade_stack_onehot: %d labels (at most %d)", n_labels, NNU_CASCADE_MAX_LABELS);
    int64_t C = data->shape[0], n = data->shape[1] * data->shape[2] * data->shape[3];
    int64_t os[4] = {C + n_labels, data->shape[1], data->shape[2], data->shape[3]};
    nnu_tensor *o = NULL, *s16 = NULL, *dv = NULL;
    NNU_TRY(nnu_tensor_new(NNU_DTYPE_F32, 4, os, &o));
    /* image channels: copy through a view of the first C channels (handles any strides) */
    nnu_status st = nnu_tensor_view_narrow(o, 0, 0, C, &dv);
    if (st == NNU_STATUS_OK) st = nnu_tensor_copy(dv, data);
    nnu_tensor_release(dv);
    /* seg as contiguous int16 (labels fit: the stores keep seg in [-1, 32767]) */
    if (st == NNU_STATUS_OK) st = nnu_tensor_to_dtype(seg, NNU_DTYPE_I16, &s16);
    if (st == NNU_STATUS_OK)
        nnu_cascade_onehot_i16(nnu_tensor_data(s16), n, n_labels, labels, (float *)nnu_tensor_data(o) + C * n);
    nnu_tensor_release(s16);
    if (st != NNU_STATUS_OK) { nnu_tensor_release(o); return st; }
    *out = o;
    return NNU_STATUS_OK;
}

/* ---- cascade augmentations ---- */

void nnu_cascade_aug_params_default(nnu_cascade_aug_params *p) {
    p->p_binary_op = 0.4;
    p->p_binary_per_label = 0.5;
    p->strel_lo = 1.0;
    p->strel_hi = 8.0;
    p->p_remove_component = 0.2;
    p->p_remove_per_label = 0.5;
    p->max_component_fraction = 0.15;
}

#define EDT_INF 1e20

/* 1-D squared distance transform (Felzenszwalb-Huttenlocher): d[q] = min_p (q − p)² + f[p]
 * over p in [0, n); border: two more sites with f = 0 at p = −1 and p = n (the outside
 * of the patch counts as a feature). v (n + 2 ints), z (n + 3), fe (n + 2) are scratch. */
static void edt_1d(const double *f, int64_t n, double *d, int border, int64_t *v, double *z, double *fe) {
    int64_t m = n + (border ? 2 : 0), off = border ? 1 : 0;   /* site i sits at position i − off */
    if (border) { fe[0] = 0.0; fe[m - 1] = 0.0; }
    for (int64_t i = 0; i < n; i++) fe[i + off] = f[i];
    int64_t k = 0;
    v[0] = 0;
    z[0] = -EDT_INF;
    z[1] = EDT_INF;
    for (int64_t q = 1; q < m; q++) {
        /* intersection of the parabolas of q and v[k]; z[0] = -INF ends the loop at k = 0
         * (the "infinite" f = 1e20 keeps every s finite) */
        double s = ((fe[q] + (double)q * q) - (fe[v[k]] + (double)v[k] * v[k])) / (2.0 * (double)(q - v[k]));
        while (s <= z[k]) {
            k--;
            s = ((fe[q] + (double)q * q) - (fe[v[k]] + (double)v[k] * v[k])) / (2.0 * (double)(q - v[k]));
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = EDT_INF;
    }
    k = 0;
    for (int64_t q = off; q < n + off; q++) {
        while (z[k + 1] < (double)q) k++;
        double dq = (double)(q - v[k]);
        d[q - off] = dq * dq + fe[v[k]];
    }
}

typedef struct edt_scratch { double *line, *out, *z, *fe; int64_t *v; } edt_scratch;

/* d2 (n doubles): squared distance of every voxel to the nearest voxel with
 * feature[i] != 0 (and, with border, to the outside of the box), over the axes of
 * size > 1. */
static void edt_3d(const uint8_t *feature, int invert, const int64_t sh[3], int border, double *d2, edt_scratch *s) {
    int64_t n = sh[0] * sh[1] * sh[2];
    for (int64_t i = 0; i < n; i++) d2[i] = ((feature[i] != 0) != (invert != 0)) ? 0.0 : EDT_INF;
    int64_t stride[3] = {sh[1] * sh[2], sh[2], 1};
    for (int a = 2; a >= 0; a--) {
        if (sh[a] <= 1) continue;   /* a 2-D patch (1, H, W): disk in-plane */
        int b = a == 0 ? 1 : 0, c = a == 2 ? 1 : 2;   /* the two other axes */
        for (int64_t i = 0; i < sh[b]; i++)
            for (int64_t j = 0; j < sh[c]; j++) {
                int64_t base = i * stride[b] + j * stride[c];
                for (int64_t t = 0; t < sh[a]; t++) s->line[t] = d2[base + t * stride[a]];
                edt_1d(s->line, sh[a], s->out, border, s->v, s->z, s->fe);
                for (int64_t t = 0; t < sh[a]; t++) d2[base + t * stride[a]] = s->out[t];
            }
    }
}

/* scratch layout in ws (floats): d2 (2n floats = n doubles), three byte masks, the
 * 1-D buffers of edt_1d (line, out, z, fe doubles and v int64, L + 3 each) */
static nnu_status morph_scratch(nnu_aug_ws *ws, const int64_t sh[3], double **d2, uint8_t *m[3], edt_scratch *s) {
    int64_t n = sh[0] * sh[1] * sh[2], L = sh[0];
    if (sh[1] > L) L = sh[1];
    if (sh[2] > L) L = sh[2];
    int64_t mb = (n + 7) / 8 * 2;                       /* one byte mask, in floats (8-byte multiple) */
    int64_t need = 2 * n + 3 * mb + 10 * (L + 3);
    float *buf;
    NNU_TRY(nnu_aug_ws_get(ws, (size_t)need, &buf));
    *d2 = (double *)buf;
    for (int k = 0; k < 3; k++) m[k] = (uint8_t *)(buf + 2 * n + k * mb);
    double *q = (double *)(buf + 2 * n + 3 * mb);
    s->line = q;
    s->out = q + (L + 3);
    s->z = q + 2 * (L + 3);
    s->fe = q + 3 * (L + 3);
    s->v = (int64_t *)(q + 4 * (L + 3));
    return NNU_STATUS_OK;
}

static void dilate(const uint8_t *a, uint8_t *out, const int64_t sh[3], double r2, double *d2, edt_scratch *s) {
    int64_t n = sh[0] * sh[1] * sh[2];
    edt_3d(a, 0, sh, 0, d2, s);                       /* distance to the mask */
    for (int64_t i = 0; i < n; i++) out[i] = d2[i] <= r2;
}

static void erode(const uint8_t *a, uint8_t *out, const int64_t sh[3], double r2, double *d2, edt_scratch *s) {
    int64_t n = sh[0] * sh[1] * sh[2];
    edt_3d(a, 1, sh, 1, d2, s);                       /* distance to background or outside */
    for (int64_t i = 0; i < n; i++) out[i] = d2[i] > r2;
}

static nnu_status morph_into(const uint8_t *mask, uint8_t *out, const int64_t sh[3], int op, double r, double *d2,
                             uint8_t *tmp, edt_scratch *s) {
    NNU_CHECK(op >= 0 && op <= 3 && r >= 0.0, NNU_STATUS_ERR_ARG, "cascade_morph: op %d, radius %g", op, r);
    double r2 = r * r;
    switch (op) {
    case 0: dilate(mask, out, sh, r2, d2, s); break;
    case 1: erode(mask, out, sh, r2, d2, s); break;
    case 2: dilate(mask, tmp, sh, r2, d2, s); erode(tmp, out, sh, r2, d2, s); break;
    default: erode(mask, tmp, sh, r2, d2, s); dilate(tmp, out, sh, r2, d2, s); break;
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_cascade_morph(const uint8_t *mask, uint8_t *out, const int64_t shape[3], int op, double r,
                             nnu_aug_ws *ws) {
    NNU_CHECK(mask && out && shape && ws, NNU_STATUS_ERR_ARG, "cascade_morph: NULL argument");
    double *d2;
    uint8_t *m[3];
    edt_scratch s;
    NNU_TRY(morph_scratch(ws, shape, &d2, m, &s));
    return morph_into(mask, out, shape, op, r, d2, m[0], &s);
}

/* Removes one random component (size < max_vox, 26-connectivity) of mask m (0/1
 * bytes), chosen uniformly among those, writing 0 into ch where it was. lab, queue:
 * n int32 each. The ids of the small components are kept at the end of queue: a
 * BFS uses at most its component's size, so the two parts never meet. */
static void remove_component(float *ch, const uint8_t *m, const int64_t sh[3], double max_vox, int32_t *lab,
                             int32_t *queue, nnu_rng *rng) {
    int64_t n = sh[0] * sh[1] * sh[2];
    for (int64_t i = 0; i < n; i++) lab[i] = m[i] ? -1 : 0;   /* -1: unlabelled foreground */
    int32_t ncomp = 0, n_small = 0;
    for (int64_t i = 0; i < n; i++) {
        if (lab[i] != -1) continue;
        ncomp++;
        int64_t head = 0, tail = 0;
        queue[tail++] = (int32_t)i;
        lab[i] = ncomp;
        while (head < tail) {
            int64_t v = queue[head++];
            int64_t z = v / (sh[1] * sh[2]), y = (v / sh[2]) % sh[1], x = v % sh[2];
            for (int dz = -1; dz <= 1; dz++)
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int64_t zz = z + dz, yy = y + dy, xx = x + dx;
                        if (zz < 0 || zz >= sh[0] || yy < 0 || yy >= sh[1] || xx < 0 || xx >= sh[2]) continue;
                        int64_t u = (zz * sh[1] + yy) * sh[2] + xx;
                        if (lab[u] == -1) { lab[u] = ncomp; queue[tail++] = (int32_t)u; }
                    }
        }
        if ((double)tail < max_vox) {   /* tail = the component's size */
            queue[n - 1 - n_small] = ncomp;
            n_small++;
        }
    }
    if (n_small == 0) return;
    int32_t pick = queue[n - 1 - nnu_rng_int(rng, 0, n_small - 1)];
    for (int64_t i = 0; i < n; i++)
        if (lab[i] == pick) ch[i] = 0.0f;
}

nnu_status nnu_cascade_augment(float *onehot, int K, const int64_t shape[3], const nnu_cascade_aug_params *p,
                               nnu_rng *rng, nnu_aug_ws *ws) {
    NNU_CHECK(onehot && shape && p && rng && ws && K >= 0 && K <= NNU_CASCADE_MAX_LABELS, NNU_STATUS_ERR_ARG,
              "cascade_augment: bad argument (K %d)", K);
    if (K == 0) return NNU_STATUS_OK;
    int64_t n = shape[0] * shape[1] * shape[2];
    NNU_CHECK(n < INT32_MAX, NNU_STATUS_ERR_ARG, "cascade_augment: patch of %lld voxels", (long long)n);
    double *d2;
    uint8_t *m[3];   /* work (the channel), res (the operation's result), tmp (closing/opening) */
    edt_scratch s;
    NNU_TRY(morph_scratch(ws, shape, &d2, m, &s));
    uint8_t *work = m[0], *res = m[1];
    if (nnu_rng_bernoulli(rng, p->p_binary_op)) {
        int order[NNU_CASCADE_MAX_LABELS];   /* channels in random order (Fisher-Yates) */
        for (int k = 0; k < K; k++) order[k] = k;
        for (int k = K - 1; k > 0; k--) {
            int j = (int)nnu_rng_int(rng, 0, k), t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        for (int oi = 0; oi < K; oi++) {
            if (!nnu_rng_bernoulli(rng, p->p_binary_per_label)) continue;
            int c = order[oi];
            int op = (int)nnu_rng_int(rng, 0, 3);
            double r = nnu_rng_range(rng, p->strel_lo, p->strel_hi);
            float *ch = onehot + (int64_t)c * n;
            for (int64_t i = 0; i < n; i++) work[i] = ch[i] > 0.5f;
            NNU_TRY(morph_into(work, res, shape, op, r, d2, m[2], &s));
            for (int64_t i = 0; i < n; i++) {
                if (res[i] && !work[i])   /* newly added to c: removed from the others */
                    for (int k = 0; k < K; k++)
                        if (k != c) onehot[(int64_t)k * n + i] = 0.0f;
                ch[i] = res[i] ? 1.0f : 0.0f;
            }
        }
    }
    if (nnu_rng_bernoulli(rng, p->p_remove_component)) {
        int32_t *lab = (int32_t *)d2, *queue = lab + n;     /* d2's 2n floats hold both */
        double max_vox = p->max_component_fraction * (double)n;
        for (int c = 0; c < K; c++) {
            if (!nnu_rng_bernoulli(rng, p->p_remove_per_label)) continue;
            float *ch = onehot + (int64_t)c * n;
            int any = 0;
            for (int64_t i = 0; i < n; i++) { work[i] = ch[i] > 0.5f; any |= work[i]; }
            if (any) remove_component(ch, work, shape, max_vox, lab, queue, rng);
        }
    }
    return NNU_STATUS_OK;
}
