/* eltwise.c: element-wise helpers of the optimizers (CPU).
 *   axpy:  y[i] += alpha * x[i]                  (numel)
 *   scale: x[i] *= alpha                         (gradient clipping)
 *   sumsq: *out = sum x[i]^2, accumulated in double (gradient norm)
 * All loops are OpenMP-parallel over the flat index. */
#include "ops_cpu.h"

nnu_status nnu_axpy_cpu(const nnu_backend *be, const float *x, float *y,
                        const nnu_eltwise_params *p) {
    (void)be;
    const float a = p->alpha;
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) y[i] += a * x[i];
    return NNU_STATUS_OK;
}

nnu_status nnu_scale_cpu(const nnu_backend *be, float *x, const nnu_eltwise_params *p) {
    (void)be;
    const float a = p->alpha;
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) x[i] *= a;
    return NNU_STATUS_OK;
}

nnu_status nnu_sumsq_cpu(const nnu_backend *be, const float *x, double *out,
                         const nnu_eltwise_params *p) {
    (void)be;
    double s = 0.0;
#pragma omp parallel for simd reduction(+ : s) schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) s += (double)x[i] * (double)x[i];
    *out = s;
    return NNU_STATUS_OK;
}
