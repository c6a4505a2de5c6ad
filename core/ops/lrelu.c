/* lrelu.c: leaky ReLU, y = x > 0 ? x : slope * x (slope = alpha, 0.01 in nnU-Net).
 * Layout-agnostic (flat numel). The backward takes its mask from the forward input
 * x, as PyTorch does (x == 0 takes the slope branch). gx may alias gy, y may alias x.
 * add_lrelu: y = lrelu(a + b), the end of the residual block (out += residual, then
 * the in-place LeakyReLU); y may alias a or b. Its backward is lrelu_bwd with the
 * output y as x: for slope > 0, y > 0 exactly when a + b > 0 (PyTorch's in-place
 * LeakyReLU takes the mask from its result the same way). */
#include "ops_cpu.h"

nnu_status nnu_lrelu_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                             const nnu_eltwise_params *p) {
    (void)be;
    const float a = p->alpha;
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) y[i] = x[i] > 0.0f ? x[i] : a * x[i];
    return NNU_STATUS_OK;
}

nnu_status nnu_lrelu_bwd_cpu(const nnu_backend *be, const float *x, const float *gy, float *gx,
                             const nnu_eltwise_params *p) {
    (void)be;
    const float a = p->alpha;
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) gx[i] = x[i] > 0.0f ? gy[i] : a * gy[i];
    return NNU_STATUS_OK;
}

nnu_status nnu_add_lrelu_fwd_cpu(const nnu_backend *be, const float *a, const float *b, float *y,
                                 const nnu_eltwise_params *p) {
    (void)be;
    const float al = p->alpha;
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) {
        const float v = a[i] + b[i];
        y[i] = v > 0.0f ? v : al * v;
    }
    return NNU_STATUS_OK;
}
