/* softmax.c: softmax over channels of plain (N, C, S) logits (inference and tests).
 *   fwd: y[n,c,s] = exp(x[n,c,s] - max_c x) / sum_c exp(...)
 *   bwd: gx = y * (gy - sum_c y*gy)
 * Channel count is small (the number of classes), so the channel loop is inner
 * and strided; the voxel loop is parallel. */
#include <math.h>

#include "ops_cpu.h"

nnu_status nnu_softmax_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                               const nnu_softmax_params *p) {
    (void)be;
    const int64_t C = p->c, S = p->s;
#pragma omp parallel for collapse(2) schedule(static) if (p->n * C * S > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t s = 0; s < S; s++) {
            const float *xs = x + n * C * S + s;
            float *ys = y + n * C * S + s;
            float m = xs[0];
            for (int64_t c = 1; c < C; c++) m = fmaxf(m, xs[c * S]);
            double sum = 0.0;
            for (int64_t c = 0; c < C; c++) {
                float e = expf(xs[c * S] - m);
                ys[c * S] = e;
                sum += e;
            }
            const float inv = (float)(1.0 / sum);
            for (int64_t c = 0; c < C; c++) ys[c * S] *= inv;
        }
    return NNU_STATUS_OK;
}

nnu_status nnu_softmax_bwd_cpu(const nnu_backend *be, const float *y, const float *gy,
                               float *gx, const nnu_softmax_params *p) {
    (void)be;
    const int64_t C = p->c, S = p->s;
#pragma omp parallel for collapse(2) schedule(static) if (p->n * C * S > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t s = 0; s < S; s++) {
            const int64_t o = n * C * S + s;
            double dot = 0.0;
            for (int64_t c = 0; c < C; c++) dot += (double)y[o + c * S] * gy[o + c * S];
            for (int64_t c = 0; c < C; c++)
                gx[o + c * S] = y[o + c * S] * (float)(gy[o + c * S] - dot);
        }
    return NNU_STATUS_OK;
}
