/* nnu_normalize.c: see nnu_normalize.h.
 * The reference's classes (nnunetv2/preprocessing/normalization/
 * default_normalization_schemes.py) with numpy's float32 rounding reproduced:
 *   ZScore: mu = x.mean(); sd = x.std(); x -= mu; x /= max(sd, 1e-8)
 *           masked: m = label >= 0; x[m] = (x[m] - x[m].mean()) / max(x[m].std(), 1e-8)
 *   CT:     clip(x, f32(p00_5), f32(p99_5)); x -= f32(mean); x /= f32(max(std, 1e-8))
 *   RescaleTo01: x -= x.min(); x /= max(x.max(), 1e-8)     RGBTo01: x / 255 */
#include "nnu_normalize.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NP_BUFSIZE 8192      /* numpy's default ufunc buffer size: the reduction block */
#define NP_PW_BLOCKSIZE 128  /* numpy pairwise_sum: below this, 8-way unrolled loop */

static float pairwise_sum_f32(const float *a, int64_t n) {
    if (n < 8) {
        float res = 0.0f;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= NP_PW_BLOCKSIZE) {
        float r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum_f32(a, n2) + pairwise_sum_f32(a + n2, n - n2);
}

float nnu_np_sum_f32(const float *x, int64_t n) {
    float acc = 0.0f;   /* add.reduce starts from its identity 0 */
    for (int64_t s = 0; s < n; s += NP_BUFSIZE)
        acc += pairwise_sum_f32(x + s, n - s < NP_BUFSIZE ? n - s : NP_BUFSIZE);
    return acc;
}

void nnu_np_mean_std_f32(const float *x, int64_t n, float *mean, float *std) {
    if (n <= 0) {
        *mean = *std = NAN;
        return;
    }
    float sum = nnu_np_sum_f32(x, n);
    /* x.mean(): float32 scalar / Python int -> float64 division, cast back */
    *mean = (float)((double)sum / (double)n);
    /* x.std(): _var divides the keepdims float32 sum array by the count in float32,
     * then sums (x - mu)**2 with np.sum's blocks: the same blocks are formed here
     * from a block-sized buffer instead of a full temporary array */
    float mu = sum / (float)n, buf[NP_BUFSIZE], ss = 0.0f;
    for (int64_t s = 0; s < n; s += NP_BUFSIZE) {
        int64_t m = n - s < NP_BUFSIZE ? n - s : NP_BUFSIZE;
        for (int64_t i = 0; i < m; i++) {
            float t = x[s + i] - mu;
            buf[i] = t * t;
        }
        ss += pairwise_sum_f32(buf, m);
    }
    float var = (float)((double)ss / (double)n);
    *std = sqrtf(var);
}

nnu_norm_scheme nnu_normalize_scheme_for_channel(const char *name) {
    char low[64];
    size_t i = 0;
    for (; name && name[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = 0;
    if (strcmp(low, "ct") == 0) return NNU_NORM_CT;
    if (strcmp(low, "nonorm") == 0) return NNU_NORM_NONE;
    if (strcmp(low, "rescale_to_0_1") == 0) return NNU_NORM_RESCALE_01;
    if (strcmp(low, "rgb_to_0_1") == 0) return NNU_NORM_RGB_01;
    return NNU_NORM_ZSCORE;
}

static const char *const scheme_names[NNU_NORM_COUNT] = {
    "ZScoreNormalization", "CTNormalization", "NoNormalization", "RescaleTo01Normalization",
    "RGBTo01Normalization"};

const char *nnu_normalize_scheme_name(nnu_norm_scheme s) {
    return (unsigned)s < NNU_NORM_COUNT ? scheme_names[s] : "?";
}

nnu_status nnu_normalize_scheme_from_name(const char *class_name, nnu_norm_scheme *out) {
    for (int s = 0; s < NNU_NORM_COUNT; s++)
        if (class_name && strcmp(class_name, scheme_names[s]) == 0) {
            *out = (nnu_norm_scheme)s;
            return NNU_STATUS_OK;
        }
    return NNU_FAIL(NNU_STATUS_ERR_ARG, "unknown normalization scheme '%s'", class_name ? class_name : "(null)");
}

/* python max(std, 1e-8) used as a float32 divisor */
static float divisor_f32(float sd) { return (double)sd >= 1e-8 ? sd : (float)1e-8; }

static nnu_status zscore_masked(float *x, int64_t n, const nnu_tensor *lab) {
    char b1[64];
    NNU_CHECK(nnu_tensor_numel(lab) == n, NNU_STATUS_ERR_SHAPE,
              "normalize: mask %s has %lld elements, image %lld", nnu_tensor_shape_str(lab, b1, sizeof b1),
              (long long)nnu_tensor_numel(lab), (long long)n);
    nnu_tensor *lc = NULL;
    NNU_TRY(nnu_tensor_contiguous((nnu_tensor *)lab, &lc));
    const char *lp = nnu_tensor_data(lc);
    size_t es = nnu_dtype_size(lc->dtype);
    float *sel = malloc((size_t)(n > 0 ? n : 1) * sizeof *sel);   /* x[m] */
    if (!sel) {
        nnu_tensor_release(lc);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "normalize: out of memory");
    }
    uint8_t *m = (uint8_t *)malloc((size_t)(n > 0 ? n : 1));
    int64_t k = 0;
    if (m) {
        for (int64_t i = 0; i < n; i++) {
            m[i] = nnu_dtype_load(lc->dtype, lp + (size_t)i * es) >= 0.0;
            if (m[i]) sel[k++] = x[i];
        }
    }
    nnu_tensor_release(lc);
    if (!m) { free(sel); return NNU_FAIL(NNU_STATUS_ERR_OOM, "normalize: out of memory"); }
    if (k > 0) {   /* an empty mask changes nothing */
        float mu, sd;
        nnu_np_mean_std_f32(sel, k, &mu, &sd);
        float dv = divisor_f32(sd);
        for (int64_t i = 0; i < n; i++)
            if (m[i]) x[i] = (x[i] - mu) / dv;
    }
    free(m);
    free(sel);
    return NNU_STATUS_OK;
}

nnu_status nnu_normalize(nnu_tensor *t, nnu_norm_scheme s, const nnu_tensor *mask_label,
                         const nnu_norm_ct_props *ct) {
    char b[64];
    NNU_CHECK(t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t), NNU_STATUS_ERR_ARG,
              "normalize: need a contiguous f32 tensor, got %s %s", nnu_dtype_name(t->dtype),
              nnu_tensor_shape_str(t, b, sizeof b));
    NNU_CHECK((unsigned)s < NNU_NORM_COUNT, NNU_STATUS_ERR_ARG, "normalize: bad scheme %d", (int)s);
    float *x = nnu_tensor_data(t);
    int64_t n = nnu_tensor_numel(t);
    switch (s) {
    case NNU_NORM_NONE:
        return NNU_STATUS_OK;
    case NNU_NORM_ZSCORE: {
        if (mask_label) return zscore_masked(x, n, mask_label);
        if (n == 0) return NNU_STATUS_OK;
        float mu, sd;
        nnu_np_mean_std_f32(x, n, &mu, &sd);
        float dv = divisor_f32(sd);
        for (int64_t i = 0; i < n; i++) x[i] = (x[i] - mu) / dv;
        return NNU_STATUS_OK;
    }
    case NNU_NORM_CT: {
        NNU_CHECK(ct, NNU_STATUS_ERR_ARG, "normalize: CTNormalization needs the dataset's intensity properties");
        float lo = (float)ct->percentile_00_5, hi = (float)ct->percentile_99_5, mu = (float)ct->mean;
        float dv = (float)(ct->std >= 1e-8 ? ct->std : 1e-8);
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            v = v < lo ? lo : v;        /* np.clip: min(max(x, lo), hi) */
            v = v > hi ? hi : v;
            x[i] = (v - mu) / dv;
        }
        return NNU_STATUS_OK;
    }
    case NNU_NORM_RESCALE_01: {
        if (n == 0) return NNU_STATUS_OK;
        float mn = x[0];
        for (int64_t i = 1; i < n; i++) mn = x[i] < mn ? x[i] : mn;
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            x[i] -= mn;
            mx = x[i] > mx ? x[i] : mx;
        }
        float dv = (double)mx >= 1e-8 ? mx : (float)1e-8;   /* np.clip(max, 1e-8, None) */
        for (int64_t i = 0; i < n; i++) x[i] /= dv;
        return NNU_STATUS_OK;
    }
    case NNU_NORM_RGB_01:
        for (int64_t i = 0; i < n; i++)
            NNU_CHECK(x[i] >= 0.0f && x[i] <= 255.0f, NNU_STATUS_ERR_ARG,
                      "normalize: RGBTo01Normalization needs values in [0, 255], found %g", (double)x[i]);
        for (int64_t i = 0; i < n; i++) x[i] /= 255.0f;
        return NNU_STATUS_OK;
    default:
        break;
    }
    return NNU_FAIL(NNU_STATUS_ERR_ARG, "normalize: bad scheme %d", (int)s);
}

nnu_status nnu_normalize_transposed(nnu_tensor *t, nnu_norm_scheme s, const nnu_tensor *mask_label,
                                    const nnu_norm_ct_props *ct, const int tf[3]) {
    char b[64];
    if (s != NNU_NORM_ZSCORE || mask_label || !tf) return nnu_normalize(t, s, mask_label, ct);
    NNU_CHECK(t->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(t) && t->ndim >= 3, NNU_STATUS_ERR_ARG,
              "normalize: need a contiguous f32 tensor with 3 spatial axes, got %s %s",
              nnu_dtype_name(t->dtype), nnu_tensor_shape_str(t, b, sizeof b));
    int seen = 0;
    for (int i = 0; i < 3; i++) seen |= (tf[i] >= 0 && tf[i] < 3) ? 1 << tf[i] : 8;
    NNU_CHECK(seen == 7, NNU_STATUS_ERR_ARG, "normalize: transpose_forward [%d,%d,%d] is not a permutation",
              tf[0], tf[1], tf[2]);
    /* a view in the original axis order: its axis lead + tf[i] is transposed axis lead + i */
    int perm[NNU_MAX_DIMS], lead = t->ndim - 3;
    for (int i = 0; i < lead; i++) perm[i] = i;
    for (int i = 0; i < 3; i++) perm[lead + tf[i]] = lead + i;
    nnu_tensor *v = NULL, *c = NULL;
    NNU_TRY(nnu_tensor_view_permute(t, perm, &v));
    nnu_status st = nnu_tensor_contiguous(v, &c);          /* the reference's storage order */
    nnu_tensor_release(v);
    if (st) return st;
    int64_t n = nnu_tensor_numel(t);
    float mu, sd, *x = nnu_tensor_data(t);
    nnu_np_mean_std_f32(nnu_tensor_data(c), n, &mu, &sd);
    nnu_tensor_release(c);
    if (n == 0) return NNU_STATUS_OK;
    float dv = divisor_f32(sd);
    for (int64_t i = 0; i < n; i++) x[i] = (x[i] - mu) / dv;
    return NNU_STATUS_OK;
}
