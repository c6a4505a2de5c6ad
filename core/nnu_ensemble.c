/* nnu_ensemble.c: mean of probabilities arrays and their conversion to a label map
 * (nnu_ensemble.h). Layout: every array is made a contiguous float32 (K, V) block
 * first (V = voxels of one channel), then the loops run over flat memory:
 * channel-major for the sums, voxel-major with a K-stride for argmax/regions. */
#include <math.h>
#include <stdio.h>

#include "nnu_ensemble.h"
#include "nnu_interrupt.h"
#include "nnu_npz.h"

/* *out = t as a contiguous float32 tensor: t itself (retained) when it already is
 * one, else a converted copy. Owned by the caller. */
static nnu_status as_f32_contiguous(const nnu_tensor *t, nnu_tensor **out) {
    if (t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t)) {
        nnu_tensor_retain((nnu_tensor *)t);   /* refcount only; the data stay read-only */
        *out = (nnu_tensor *)t;
        return NNU_STATUS_OK;
    }
    return nnu_tensor_to_dtype(t, NNU_DTYPE_F32, out);
}

nnu_status nnu_ensemble_add(nnu_tensor *acc, const nnu_tensor *x) {
    NNU_CHECK(acc && x, NNU_STATUS_ERR_ARG, "ensemble add: NULL tensor");
    char sa[96], sx[96];
    NNU_CHECK(acc->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(acc), NNU_STATUS_ERR_ARG,
              "ensemble add: the accumulator must be a contiguous f32 tensor (got %s %s)",
              nnu_dtype_name(acc->dtype), nnu_tensor_shape_str(acc, sa, sizeof sa));
    NNU_CHECK(nnu_tensor_same_shape(acc, x), NNU_STATUS_ERR_SHAPE,
              "ensemble add: accumulator %s vs probabilities %s (shape mismatch)",
              nnu_tensor_shape_str(acc, sa, sizeof sa), nnu_tensor_shape_str(x, sx, sizeof sx));
    nnu_tensor *xc = NULL;
    NNU_TRY(as_f32_contiguous(x, &xc));
    float *a = nnu_tensor_data(acc);
    const float *b = nnu_tensor_data(xc);
    int64_t n = nnu_tensor_numel(acc);
    for (int64_t i = 0; i < n; i++) a[i] = a[i] + b[i];     /* one float32 rounding, as numpy's += */
    nnu_tensor_release(xc);
    return NNU_STATUS_OK;
}

nnu_status nnu_ensemble_divide(nnu_tensor *acc, int64_t n) {
    NNU_CHECK(acc && acc->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(acc), NNU_STATUS_ERR_ARG,
              "ensemble divide: the accumulator must be a contiguous f32 tensor");
    NNU_CHECK(n >= 1, NNU_STATUS_ERR_ARG, "ensemble divide: n = %lld (must be >= 1)", (long long)n);
    float d = (float)n, *a = nnu_tensor_data(acc);
    int64_t m = nnu_tensor_numel(acc);
    for (int64_t i = 0; i < m; i++) a[i] = a[i] / d;          /* float32 / float32 */
    return NNU_STATUS_OK;
}

nnu_status nnu_ensemble_mean_npz(const char *const *paths, int n, const char *key, nnu_tensor **out) {
    NNU_CHECK(paths && n >= 1 && key && out, NNU_STATUS_ERR_ARG, "ensemble mean: no files given");
    *out = NULL;
    nnu_tensor *first = NULL, *acc = NULL, *x = NULL;
    NNU_TRY(nnu_npz_load(paths[0], key, &first));
    /* the first array becomes the accumulator (a float32 copy unless it already is one) */
    nnu_status st = as_f32_contiguous(first, &acc);
    nnu_tensor_release(first);
    if (st) return st;
    if (acc->ndim < 1) {
        nnu_tensor_release(acc);
        return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s': '%s' is a scalar, expected (K, ...) probabilities",
                        paths[0], key);
    }
    for (int i = 1; i < n; i++) {
        if (nnu_interrupt_requested()) {
            st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "ensemble mean interrupted");
            break;
        }
        st = nnu_npz_load(paths[i], key, &x);
        if (st) break;
        if (!nnu_tensor_same_shape(acc, x)) {
            char sa[96], sx[96];
            st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s' holds %s %s but '%s' holds %s (shape mismatch)",
                          paths[i], key, nnu_tensor_shape_str(x, sx, sizeof sx), paths[0],
                          nnu_tensor_shape_str(acc, sa, sizeof sa));
            break;
        }
        st = nnu_ensemble_add(acc, x);
        nnu_tensor_release(x);
        x = NULL;
        if (st) break;
    }
    nnu_tensor_release(x);
    if (st == NNU_STATUS_OK) st = nnu_ensemble_divide(acc, n);
    if (st) { nnu_tensor_release(acc); return st; }
    *out = acc;
    return NNU_STATUS_OK;
}

/* The (...) label map of probs (K, ...): shape = probs' trailing axes. */
static nnu_status new_seg(const nnu_tensor *probs, nnu_dtype dt, nnu_tensor **seg) {
    int64_t shape[NNU_MAX_DIMS];
    for (int a = 1; a < probs->ndim; a++) shape[a - 1] = probs->shape[a];
    return nnu_tensor_new(dt, probs->ndim - 1, shape, seg);
}

nnu_status nnu_ensemble_argmax(const nnu_tensor *probs, nnu_tensor **seg) {
    NNU_CHECK(probs && seg, NNU_STATUS_ERR_ARG, "ensemble argmax: NULL argument");
    *seg = NULL;
    char s[96];
    NNU_CHECK(probs->ndim >= 2 && probs->shape[0] >= 1, NNU_STATUS_ERR_SHAPE,
              "ensemble argmax: probabilities %s must be (K, ...) with K >= 1",
              nnu_tensor_shape_str(probs, s, sizeof s));
    int64_t k = probs->shape[0];
    NNU_CHECK(k <= 65536, NNU_STATUS_ERR_SHAPE, "ensemble argmax: %lld channels (at most 65536)", (long long)k);
    nnu_tensor *pc = NULL;
    NNU_TRY(as_f32_contiguous(probs, &pc));
    nnu_status st = new_seg(probs, k <= 256 ? NNU_DTYPE_U8 : NNU_DTYPE_U16, seg);
    if (st) { nnu_tensor_release(pc); return st; }
    const float *p = nnu_tensor_data(pc);
    int64_t v = nnu_tensor_numel(*seg);
    uint8_t *o8 = k <= 256 ? nnu_tensor_data(*seg) : NULL;
    uint16_t *o16 = k <= 256 ? NULL : nnu_tensor_data(*seg);
    for (int64_t i = 0; i < v; i++) {
        /* numpy: the first maximum wins; the first NaN wins over everything */
        int64_t best = 0;
        float bv = p[i];
        if (!isnan(bv)) {
            for (int64_t c = 1; c < k; c++) {
                float x = p[c * v + i];
                if (isnan(x)) { best = c; break; }
                if (x > bv) { bv = x; best = c; }
            }
        }
        if (o8) o8[i] = (uint8_t)best; else o16[i] = (uint16_t)best;
    }
    nnu_tensor_release(pc);
    return NNU_STATUS_OK;
}

nnu_status nnu_ensemble_regions(const nnu_tensor *probs, const int32_t *class_order, int n,
                                nnu_tensor **seg) {
    NNU_CHECK(probs && class_order && seg, NNU_STATUS_ERR_ARG, "ensemble regions: NULL argument");
    *seg = NULL;
    char s[96];
    NNU_CHECK(probs->ndim >= 2 && probs->shape[0] == n, NNU_STATUS_ERR_SHAPE,
              "ensemble regions: probabilities %s but %d regions in regions_class_order",
              nnu_tensor_shape_str(probs, s, sizeof s), n);
    int32_t maxv = 0;
    for (int i = 0; i < n; i++) {
        NNU_CHECK(class_order[i] >= 0 && class_order[i] <= 65535, NNU_STATUS_ERR_ARG,
                  "ensemble regions: regions_class_order[%d] = %d (must be 0..65535)", i, class_order[i]);
        if (class_order[i] > maxv) maxv = class_order[i];
    }
    nnu_tensor *pc = NULL;
    NNU_TRY(as_f32_contiguous(probs, &pc));
    int small = maxv < 256;
    nnu_status st = new_seg(probs, small ? NNU_DTYPE_U8 : NNU_DTYPE_U16, seg);
    if (st) { nnu_tensor_release(pc); return st; }
    const float *p = nnu_tensor_data(pc);
    int64_t v = nnu_tensor_numel(*seg);
    uint8_t *o8 = small ? nnu_tensor_data(*seg) : NULL;
    uint16_t *o16 = small ? NULL : nnu_tensor_data(*seg);
    for (int r = 0; r < n; r++) {                 /* region order: later ones overwrite */
        const float *pr = p + (int64_t)r * v;
        for (int64_t i = 0; i < v; i++) {
            if (pr[i] > 0.5f) {
                if (o8) o8[i] = (uint8_t)class_order[r]; else o16[i] = (uint16_t)class_order[r];
            }
        }
    }
    nnu_tensor_release(pc);
    return NNU_STATUS_OK;
}
