/* adam.c: one Adam step over the flat parameter block (PyTorch 1.13 semantics, as the
 * 2018 / v1-orig nnU-Net trainer uses it: amsgrad, L2 weight decay added to the
 * gradient; nnunet-behaviour.md §7.9), or AdamW's (decoupled: torch.optim.AdamW's
 * w *= 1 - lr*wd before the step, the reference's nnUNetTrainerAdam). Formula in
 * nnu_backend.h. The bias corrections and AdamW's factor are computed in double once
 * per call; the element loop is fp32. */
#include <math.h>

#include "ops_cpu.h"

nnu_status nnu_adam_step_cpu(const nnu_backend *be, float *w, const float *g, float *m,
                             float *v, float *vmax, const nnu_adam_params *p) {
    (void)be;
    NNU_CHECK(p->step >= 1, NNU_STATUS_ERR_ARG, "adam: step %d (1-based)", p->step);
    NNU_CHECK(!p->amsgrad || vmax, NNU_STATUS_ERR_ARG, "adam: amsgrad needs the vmax buffer");
    const float b1 = p->beta1, b2 = p->beta2, wd = p->weight_decay, eps = p->eps;
    const float step_size = (float)(p->lr / (1.0 - pow(p->beta1, p->step)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(p->beta2, p->step));
    const int ams = p->amsgrad, dec = p->decoupled;
    const float wd_l2 = dec ? 0.0f : wd;                              /* Adam: into the gradient */
    const float shrink = dec ? (float)(1.0 - (double)p->lr * wd) : 1.0f;   /* AdamW: on w */
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) {
        if (dec) w[i] *= shrink;
        float d = g[i] + wd_l2 * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * d;
        float vi = b2 * v[i] + (1.0f - b2) * d * d;
        m[i] = mi;
        v[i] = vi;
        if (ams) {
            vi = fmaxf(vmax[i], vi);
            vmax[i] = vi;
        }
        w[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
    return NNU_STATUS_OK;
}
