/* concat.c: channel concatenation for the U-Net skips, y = [a, b] along C.
 *   a (N, Ca, S), b (N, Cb, S) -> y (N, Ca + Cb, S), all in the same layout.
 * In both layouts (plain, and nCdhw16c with Ca, Cb multiples of 16) the channels of
 * one sample are one contiguous run, so each sample is two memcpy's. */
#include <string.h>

#include "ops_cpu.h"

static nnu_status check(const nnu_concat_params *p) {
    NNU_CHECK(p->c_a % p->cblk == 0 && p->c_b % p->cblk == 0, NNU_STATUS_ERR_SHAPE,
              "concat: channels %lld + %lld do not fit layout block %d", (long long)p->c_a,
              (long long)p->c_b, p->cblk);
    return NNU_STATUS_OK;
}

nnu_status nnu_concat_fwd_cpu(const nnu_backend *be, const float *a, const float *b, float *y,
                              const nnu_concat_params *p) {
    (void)be;
    NNU_TRY(check(p));
    const int64_t na = p->c_a * p->s, nb = p->c_b * p->s;
#pragma omp parallel for schedule(static) if (p->n * (na + nb) > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++) {
        memcpy(y + n * (na + nb), a + n * na, (size_t)na * sizeof *y);
        memcpy(y + n * (na + nb) + na, b + n * nb, (size_t)nb * sizeof *y);
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_concat_bwd_cpu(const nnu_backend *be, const float *gy, float *ga, float *gb,
                              const nnu_concat_params *p) {
    (void)be;
    NNU_TRY(check(p));
    const int64_t na = p->c_a * p->s, nb = p->c_b * p->s;
#pragma omp parallel for schedule(static) if (p->n * (na + nb) > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++) {
        if (ga) memcpy(ga + n * na, gy + n * (na + nb), (size_t)na * sizeof *gy);
        if (gb) memcpy(gb + n * nb, gy + n * (na + nb) + na, (size_t)nb * sizeof *gy);
    }
    return NNU_STATUS_OK;
}
