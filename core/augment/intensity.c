/* intensity.c: the per-channel intensity transforms of §8.2 (steps 3-9) with
 * explicit parameters; the pipeline (pipeline.c) draws the parameters.
 * Statistics (mean, std, min, max) are accumulated in double; the reference
 * uses float32 torch reductions, so results agree to float32 rounding. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aug_internal.h"

void nnu_aug_noise(float *x, int64_t n, double sigma, nnu_rng *rng) {
    if (sigma <= 0.0) return;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] + sigma * nnu_rng_normal(rng));
}

int nnu_aug_blur_kernel(double sigma, double *w, int max) {
    /* torch-style kernel size: int(6σ + 0.5), made odd upward (batchgeneratorsv2) */
    int k = (int)(6.0 * sigma + 0.5);
    if (k % 2 == 0) k++;
    if (k > max) return 0;
    aug_gauss_kernel(sigma, (k - 1) / 2, w);
    return k;
}

#define MAX_TAPS 257

nnu_status nnu_aug_blur(float *x, const int64_t shape[3], const double sigma[3], nnu_aug_ws *ws) {
    int64_t nmax = shape[0] > shape[1] ? shape[0] : shape[1];
    if (shape[2] > nmax) nmax = shape[2];
    double w[MAX_TAPS];
    for (int a = 0; a < 3; a++) {
        if (!(sigma[a] > 0.0) || shape[a] < 2) continue;
        int k = nnu_aug_blur_kernel(sigma[a], w, MAX_TAPS);
        NNU_CHECK(k > 0, NNU_STATUS_ERR_ARG, "blur: sigma %g needs more than %d taps", sigma[a], MAX_TAPS);
        float *buf;
        NNU_TRY(nnu_aug_ws_get(ws, 2 * aug_filter_scratch(nmax, (k - 1) / 2) + 2, &buf));
        aug_filter_axis(x, shape, a, w, (k - 1) / 2, AUG_PAD_REFLECT, (double *)(void *)buf);
    }
    return NNU_STATUS_OK;
}

void nnu_aug_brightness(float *x, int64_t n, double factor) {
    float f = (float)factor;
    for (int64_t i = 0; i < n; i++) x[i] *= f;
}

static void stats(const float *x, int64_t n, double *mean, double *mn, double *mx) {
    double s = 0.0, lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        s += x[i];
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    *mean = n ? s / (double)n : 0.0;
    *mn = lo;
    *mx = hi;
}

static double stddev(const float *x, int64_t n, double mean) {   /* ddof 1 (torch .std()) */
    if (n < 2) return NAN;
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += ((double)x[i] - mean) * ((double)x[i] - mean);
    return sqrt(s / (double)(n - 1));
}

void nnu_aug_contrast(float *x, int64_t n, double factor, int preserve_range) {
    double m, lo, hi;
    stats(x, n, &m, &lo, &hi);
    float fm = (float)m, ff = (float)factor, flo = (float)lo, fhi = (float)hi;
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - fm) * ff + fm;
        if (preserve_range) v = v < flo ? flo : v > fhi ? fhi : v;
        x[i] = v;
    }
}

void nnu_aug_gamma(float *x, int64_t n, double gamma, int invert, int retain_stats) {
    if (n == 0) return;
    if (invert)
        for (int64_t i = 0; i < n; i++) x[i] = -x[i];
    double m0, lo, hi, s0 = 0.0;
    stats(x, n, &m0, &lo, &hi);
    if (retain_stats) s0 = stddev(x, n, m0);
    double rng = hi - lo, den = rng > 1e-7 ? rng : 1e-7;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(pow(((double)x[i] - lo) / den, gamma) * rng + lo);
    if (retain_stats) {
        double m1, a, b;
        stats(x, n, &m1, &a, &b);
        double s1 = stddev(x, n, m1), k = s0 / (s1 > 1e-7 ? s1 : 1e-7);
        for (int64_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - m1) * k + m0);
    }
    if (invert)
        for (int64_t i = 0; i < n; i++) x[i] = -x[i];
}

/* ---- low resolution ---- */

/* nearest-exact source index (torch): min(floor((o + 0.5)·in/out), in − 1) in float */
static inline int64_t nearest_exact(int64_t o, int64_t in, int64_t out) {
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf(((float)o + 0.5f) * scale);
    return s < in - 1 ? s : in - 1;
}

nnu_status nnu_aug_lowres(float *x, const int64_t shape[3], const double zoom[3], nnu_aug_ws *ws) {
    int64_t small[3], n = shape[0] * shape[1] * shape[2];
    int any = 0;
    for (int a = 0; a < 3; a++) {
        small[a] = zoom[a] == 1.0 ? shape[a] : (int64_t)nearbyint((double)shape[a] * zoom[a]);  /* Python round */
        if (small[a] < 1) small[a] = 1;
        any |= small[a] != shape[a];
    }
    if (!any) return NNU_STATUS_OK;
    int64_t ns = small[0] * small[1] * small[2];
    float *buf;
    NNU_TRY(nnu_aug_ws_get(ws, (size_t)(2 * n + ns), &buf));
    float *lo = buf, *t1 = buf + ns, *t2 = t1 + n;
    /* downsample: nearest-exact per axis */
    for (int64_t d = 0; d < small[0]; d++) {
        int64_t sd = nearest_exact(d, shape[0], small[0]);
        for (int64_t h = 0; h < small[1]; h++) {
            int64_t sh = nearest_exact(h, shape[1], small[1]);
            const float *row = x + (sd * shape[1] + sh) * shape[2];
            float *o = lo + (d * small[1] + h) * small[2];
            for (int64_t w = 0; w < small[2]; w++) o[w] = row[nearest_exact(w, shape[2], small[2])];
        }
    }
    /* upsample: separable linear, align_corners False (src = (o+0.5)·in/out − 0.5,
     * clamped at 0; upper tap clamped to in − 1), W then H then D */
    int64_t cur[3] = {small[0], small[1], small[2]};
    float *src = lo, *dst = t1;
    for (int a = 2; a >= 0; a--) {
        int64_t nin = cur[a], nout = shape[a];
        int64_t nxt[3] = {cur[0], cur[1], cur[2]};
        nxt[a] = nout;
        int64_t inner = a == 2 ? 1 : a == 1 ? nxt[2] : nxt[1] * nxt[2];
        int64_t outer = nxt[0] * nxt[1] * nxt[2] / (nout * inner);
        float scale = (float)nin / (float)nout;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < nout; k++) {
                float s = ((float)k + 0.5f) * scale - 0.5f;
                if (s < 0.0f) s = 0.0f;
                int64_t i0 = (int64_t)s, i1 = i0 + 1 < nin ? i0 + 1 : nin - 1;
                float l1 = s - (float)i0, l0 = 1.0f - l1;
                const float *p0 = src + (o * nin + i0) * inner, *p1 = src + (o * nin + i1) * inner;
                float *q = dst + (o * nout + k) * inner;
                for (int64_t i = 0; i < inner; i++) q[i] = l0 * p0[i] + l1 * p1[i];
            }
        cur[a] = nout;
        src = dst;
        dst = dst == t1 ? t2 : t1;
    }
    memcpy(x, src, (size_t)n * sizeof *x);
    return NNU_STATUS_OK;
}
