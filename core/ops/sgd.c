/* sgd.c: one SGD step over the flat parameter block (STYLE R7), PyTorch semantics
 * as the reference trainer uses them (nnunet-behaviour.md §7.1):
 *   d   = g + wd * w
 *   buf = first_step ? d : momentum * buf + d
 *   w  -= lr * (nesterov ? d + momentum * buf : buf)
 * w, g, buf: numel floats each; g is not modified. */
#include "ops_cpu.h"

nnu_status nnu_sgd_step_cpu(const nnu_backend *be, float *w, const float *g, float *buf,
                            const nnu_sgd_params *p) {
    (void)be;
    const float lr = p->lr, m = p->momentum, wd = p->weight_decay;
    const int first = p->first_step, nest = p->nesterov;
#pragma omp parallel for simd schedule(static) if (p->numel > NNU_OMP_MIN)
    for (int64_t i = 0; i < p->numel; i++) {
        float d = g[i] + wd * w[i];
        float b = first ? d : m * buf[i] + d;
        buf[i] = b;
        w[i] -= lr * (nest ? d + m * b : b);
    }
    return NNU_STATUS_OK;
}
