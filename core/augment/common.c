/* common.c: scratch buffers, the per-thread OpenMP switch and the 1-D filter
 * shared by the elastic field (zero padding) and the Gaussian blur (reflect). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aug_internal.h"

static _Thread_local int tl_no_omp = 0;

void nnu_aug_set_omp(int on) { tl_no_omp = !on; }
int  nnu_aug_omp_allowed(void) { return !tl_no_omp; }

void nnu_aug_ws_free(nnu_aug_ws *ws) {
    if (!ws) return;
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}

nnu_status nnu_aug_ws_get(nnu_aug_ws *ws, size_t n, float **out) {
    NNU_CHECK(ws && out, NNU_STATUS_ERR_ARG, "augment: scratch is NULL");
    if (n > ws->cap) {
        float *b = realloc(ws->buf, n * sizeof *b);
        NNU_CHECK(b, NNU_STATUS_ERR_OOM, "augment: scratch of %zu floats", n);
        ws->buf = b;
        ws->cap = n;
    }
    *out = ws->buf;
    return NNU_STATUS_OK;
}

void aug_gauss_kernel(double sigma, int radius, double *w) {
    double s = 0.0;
    for (int k = -radius; k <= radius; k++) {
        w[k + radius] = exp(-0.5 * (double)k * k / (sigma * sigma));
        s += w[k + radius];
    }
    for (int k = 0; k <= 2 * radius; k++) w[k] /= s;
}

size_t aug_filter_scratch(int64_t n_max, int radius) {
    return (size_t)(n_max + 2 * radius) * AUG_FB + (size_t)n_max * AUG_FB;
}

void aug_filter_axis(float *x, const int64_t shape[3], int axis, const double *w, int radius, int pad,
                     double *scratch) {
    int64_t n = shape[axis];
    /* element stride along axis, and the (outer, inner) walk over all lines */
    int64_t inner = axis == 2 ? 1 : axis == 1 ? shape[2] : shape[1] * shape[2];
    int64_t outer = (shape[0] * shape[1] * shape[2]) / (n * inner);
    int taps = 2 * radius + 1;
    /* Lines are filtered AUG_FB at a time, laid out (position, line) so that the tap
     * loop runs over contiguous lines (vectorisable). Along the contiguous axis the
     * block is AUG_FB rows, transposed on the way in and out. Every output is
     * Σ_t w[t]·x[k + t − r] summed in ascending t, as a plain correlation would. */
    double *buf = scratch, *acc = scratch + (size_t)(n + 2 * radius) * AUG_FB;
    int64_t n_lines = outer * inner;
    for (int64_t l0 = 0; l0 < n_lines; l0 += AUG_FB) {
        int nb = (int)(n_lines - l0 < AUG_FB ? n_lines - l0 : AUG_FB);
        /* line l (global) = (o, i): element k at x[o·n·inner + k·inner + i] */
        for (int b = 0; b < nb; b++) {
            int64_t l = l0 + b, o = l / inner, i = l % inner;
            const float *p = x + o * n * inner + i;
            for (int64_t k = 0; k < n; k++) buf[(k + radius) * AUG_FB + b] = p[k * inner];
            for (int64_t k = 1; k <= radius; k++) {
                double lo = 0.0, hi = 0.0;
                if (pad == AUG_PAD_REFLECT) {
                    lo = p[aug_reflect(-k, n) * inner];
                    hi = p[aug_reflect(n - 1 + k, n) * inner];
                }
                buf[(radius - k) * AUG_FB + b] = lo;
                buf[(n - 1 + k + radius) * AUG_FB + b] = hi;
            }
        }
        for (int64_t k = 0; k < n; k++) {
            double *a = acc + k * AUG_FB;
            for (int b = 0; b < AUG_FB; b++) a[b] = 0.0;
            for (int t = 0; t < taps; t++) {
                const double *src = buf + (k + t) * AUG_FB;
                double wt = w[t];
                for (int b = 0; b < AUG_FB; b++) a[b] += wt * src[b];
            }
        }
        for (int b = 0; b < nb; b++) {
            int64_t l = l0 + b, o = l / inner, i = l % inner;
            float *p = x + o * n * inner + i;
            for (int64_t k = 0; k < n; k++) p[k * inner] = (float)acc[k * AUG_FB + b];
        }
    }
}
