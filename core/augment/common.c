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

void aug_filter_axis(float *x, const int64_t shape[3], int axis, const double *w, int radius, int pad,
                     double *line) {
    int64_t n = shape[axis];
    /* element stride along axis, and the (outer, inner) walk over all lines */
    int64_t stride = axis == 2 ? 1 : axis == 1 ? shape[2] : shape[1] * shape[2];
    int64_t inner = stride, outer = (shape[0] * shape[1] * shape[2]) / (n * inner);
    double *buf = line + radius;   /* buf[-r .. n + r) */
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            float *p = x + o * n * inner + i;
            for (int64_t k = 0; k < n; k++) buf[k] = p[k * stride];
            for (int64_t k = 1; k <= radius; k++) {
                buf[-k] = pad == AUG_PAD_REFLECT ? buf[aug_reflect(-k, n)] : 0.0;
                buf[n - 1 + k] = pad == AUG_PAD_REFLECT ? buf[aug_reflect(n - 1 + k, n)] : 0.0;
            }
            for (int64_t k = 0; k < n; k++) {
                double acc = 0.0;
                const double *src = buf + k - radius;
                for (int t = 0; t <= 2 * radius; t++) acc += w[t] * src[t];
                p[k * stride] = (float)acc;
            }
        }
}
