/* instnorm.c: instance normalization fused with leaky ReLU (CPU).
 *
 *   x (N, C, S) in layout cblk (1 or 16), per (n, c):
 *     mu = mean_s x, var = mean_s (x - mu)^2 (biased), rstd = 1/sqrt(var + eps)
 *     xhat = (x - mu) * rstd;  z = gamma[c] * xhat + beta[c];  y = z > 0 ? z : slope*z
 *   stats[(n*C + c)*2 + {0,1}] = (mu, rstd), kept for the backward.
 *   slope = 1 gives plain instance norm.
 *
 * Backward (gx may alias gy), with gz = gy * (z > 0 ? 1 : slope):
 *     A = sum_s gz, B = sum_s gz * xhat
 *     gx = rstd * gamma * (gz - A/S - xhat * B/S);  ggamma[c] += B;  gbeta[c] += A
 * z is recomputed from x and stats, so the forward output need not be kept.
 *
 * Work unit: one (n, channel block) = S*cblk contiguous floats, with cblk lanes
 * (channels) interleaved; sums are accumulated in double per lane. The unit is
 * handled by one thread for all its passes, so it stays warm in cache where it fits.
 * Statistics are one pass of sum and sum of squares in double: conv outputs have
 * |mean| of the order of their spread, so the cancellation is harmless. */
#include <math.h>

#include "ops_cpu.h"

static nnu_status check(const nnu_norm_params *p) {
    NNU_CHECK(p->cblk == 1 || p->cblk == 16, NNU_STATUS_ERR_ARG, "instnorm: layout block %d",
              p->cblk);
    NNU_CHECK(p->c % p->cblk == 0, NNU_STATUS_ERR_SHAPE,
              "instnorm: %lld channels do not fit layout block %d", (long long)p->c, p->cblk);
    NNU_CHECK(p->s > 0 && p->n > 0, NNU_STATUS_ERR_SHAPE, "instnorm: empty input");
    return NNU_STATUS_OK;
}

/* One unit of L lanes (L is a constant after inlining: 1 or 16). */
static inline void fwd_unit(const float *x, float *y, const float *gamma, const float *beta,
                            float *stats, int64_t S, float eps, float slope, int L) {
    double sum[16] = {0}, sq[16] = {0};
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            double v = x[s * L + l];
            sum[l] += v;
            sq[l] += v * v;
        }
    float sc[16], sh[16];
    for (int l = 0; l < L; l++) {
        double mu = sum[l] / (double)S;
        double var = sq[l] / (double)S - mu * mu;
        if (var < 0.0) var = 0.0;
        double rstd = 1.0 / sqrt(var + (double)eps);
        stats[l * 2] = (float)mu;
        stats[l * 2 + 1] = (float)rstd;
        sc[l] = (float)(gamma[l] * rstd);           /* z = sc * x + sh */
        sh[l] = (float)(beta[l] - gamma[l] * rstd * mu);
    }
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            float z = sc[l] * x[s * L + l] + sh[l];
            y[s * L + l] = z > 0.0f ? z : slope * z;
        }
}

nnu_status nnu_instnorm_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                                const float *gamma, const float *beta, float *stats,
                                const nnu_norm_params *p) {
    (void)be;
    NNU_TRY(check(p));
    const int L = p->cblk;
    const int64_t S = p->s, CB = p->c / L;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t cb = 0; cb < CB; cb++) {
            const int64_t off = (n * CB + cb) * S * L;
            /* stats of channel c = cb*L + l sit at (n*C + c)*2 */
            float st[32];
            if (L == 16)
                fwd_unit(x + off, y + off, gamma + cb * 16, beta + cb * 16, st, S, p->eps,
                         p->slope, 16);
            else
                fwd_unit(x + off, y + off, gamma + cb, beta + cb, st, S, p->eps, p->slope, 1);
            for (int l = 0; l < L; l++) {
                stats[(n * p->c + cb * L + l) * 2] = st[l * 2];
                stats[(n * p->c + cb * L + l) * 2 + 1] = st[l * 2 + 1];
            }
        }
    return NNU_STATUS_OK;
}

static inline void bwd_unit(const float *x, const float *gy, float *gx, const float *gamma,
                            const float *beta, const float *st, double *A, double *B, int64_t S,
                            float slope, int L) {
    float mu[16], rs[16], sc[16], sh[16];
    double a[16] = {0}, b[16] = {0};
    for (int l = 0; l < L; l++) {
        mu[l] = st[l * 2];
        rs[l] = st[l * 2 + 1];
        sc[l] = gamma[l] * rs[l];
        sh[l] = beta[l] - gamma[l] * rs[l] * mu[l];
    }
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            float xv = x[s * L + l];
            float z = sc[l] * xv + sh[l];
            float gz = z > 0.0f ? gy[s * L + l] : slope * gy[s * L + l];
            a[l] += gz;
            b[l] += (double)gz * ((xv - mu[l]) * rs[l]);
        }
    float ka[16], kb[16], kg[16];
    for (int l = 0; l < L; l++) {
        A[l] = a[l];
        B[l] = b[l];
        kg[l] = gamma[l] * rs[l];               /* gx = kg * (gz - ka - xhat * kb) */
        ka[l] = (float)(a[l] / (double)S);
        kb[l] = (float)(b[l] / (double)S);
    }
    for (int64_t s = 0; s < S; s++)
        for (int l = 0; l < L; l++) {
            float xv = x[s * L + l];
            float z = sc[l] * xv + sh[l];
            float gz = z > 0.0f ? gy[s * L + l] : slope * gy[s * L + l];
            float xh = (xv - mu[l]) * rs[l];
            gx[s * L + l] = kg[l] * (gz - ka[l] - xh * kb[l]);
        }
}

nnu_status nnu_instnorm_bwd_cpu(const nnu_backend *be, const float *x, const float *gy,
                                float *gx, const float *gamma, const float *beta,
                                float *ggamma, float *gbeta, const float *stats,
                                const nnu_norm_params *p) {
    (void)be;
    NNU_TRY(check(p));
    const int L = p->cblk;
    const int64_t S = p->s, CB = p->c / L;
    /* Parallel over channel blocks only, samples in order inside: the parameter
     * gradients then sum in a fixed order (deterministic training, no atomics). */
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t cb = 0; cb < CB; cb++)
        for (int64_t n = 0; n < p->n; n++) {
            const int64_t off = (n * CB + cb) * S * L;
            const int64_t c0 = cb * L;
            float st[32];
            double A[16], B[16];
            for (int l = 0; l < L; l++) {
                st[l * 2] = stats[(n * p->c + c0 + l) * 2];
                st[l * 2 + 1] = stats[(n * p->c + c0 + l) * 2 + 1];
            }
            if (L == 16)
                bwd_unit(x + off, gy + off, gx + off, gamma + c0, beta + c0, st, A, B, S,
                         p->slope, 16);
            else
                bwd_unit(x + off, gy + off, gx + off, gamma + c0, beta + c0, st, A, B, S,
                         p->slope, 1);
            for (int l = 0; l < L; l++) {
                if (ggamma) ggamma[c0 + l] += (float)B[l];
                if (gbeta) gbeta[c0 + l] += (float)A[l];
            }
        }
    return NNU_STATUS_OK;
}
