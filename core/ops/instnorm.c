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

/* Lanes: a unit is n = S*L contiguous floats, walked 16 at a time. Element i has
 * lane i % 16; with L = 16 the lane is the channel, with L = 1 every lane belongs to
 * the unit's single channel and the 16 partial sums are added at the end. Float
 * partial sums over blocks of FLUSH vectors go to double accumulators: the loops
 * vectorize (one AVX-512 register per lane set) and keep double-level accuracy. */
enum { LANES = 16, FLUSH = 256 };

/* per-lane parameters from per-channel ones */
static inline void lanes_of(const float *v, int L, float *out) {
    for (int j = 0; j < LANES; j++) out[j] = v[L == LANES ? j : 0];
}
/* per-channel sums from per-lane ones */
static inline void fold(const double *lane, int L, double *ch) {
    if (L == LANES) { for (int j = 0; j < LANES; j++) ch[j] = lane[j]; return; }
    ch[0] = 0;
    for (int j = 0; j < LANES; j++) ch[0] += lane[j];
}

NNU_SIMD_CLONES static void fwd_unit(const float *x, float *y, const float *gamma, const float *beta,
                     float *stats, int64_t S, float eps, float slope, int L) {
    const int64_t n = S * L, nv = n / LANES;
    double sum[LANES] = {0}, sq[LANES] = {0};
    for (int64_t v0 = 0; v0 < nv; v0 += FLUSH) {
        float ps[LANES] = {0}, pq[LANES] = {0};
        const int64_t v1 = v0 + FLUSH < nv ? v0 + FLUSH : nv;
        for (int64_t v = v0; v < v1; v++) {
#pragma omp simd
            for (int j = 0; j < LANES; j++) {
                float t = x[v * LANES + j];
                ps[j] += t;
                pq[j] += t * t;
            }
        }
        for (int j = 0; j < LANES; j++) { sum[j] += ps[j]; sq[j] += pq[j]; }
    }
    for (int64_t i = nv * LANES; i < n; i++) {   /* tail (plain layout only) */
        sum[i % LANES] += x[i];
        sq[i % LANES] += (double)x[i] * x[i];
    }
    double cs[LANES], cq[LANES];
    fold(sum, L, cs);
    fold(sq, L, cq);
    float sc[LANES], sh[LANES], g[LANES] = {0}, b[LANES] = {0};
    for (int l = 0; l < L; l++) {
        double mu = cs[l] / (double)S;
        double var = cq[l] / (double)S - mu * mu;
        if (var < 0.0) var = 0.0;
        double rstd = 1.0 / sqrt(var + (double)eps);
        stats[l * 2] = (float)mu;
        stats[l * 2 + 1] = (float)rstd;
        g[l] = (float)(gamma[l] * rstd);                    /* z = g * x + b */
        b[l] = (float)(beta[l] - gamma[l] * rstd * mu);
    }
    lanes_of(g, L, sc);
    lanes_of(b, L, sh);
    for (int64_t v = 0; v < nv; v++) {
#pragma omp simd
        for (int j = 0; j < LANES; j++) {
            float z = sc[j] * x[v * LANES + j] + sh[j];
            y[v * LANES + j] = z > 0.0f ? z : slope * z;
        }
    }
    for (int64_t i = nv * LANES; i < n; i++) {
        float z = sc[0] * x[i] + sh[0];
        y[i] = z > 0.0f ? z : slope * z;
    }
}

nnu_status nnu_instnorm_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                                const float *gamma, const float *beta, float *stats,
                                const nnu_norm_params *p) {
    (void)be;
    NNU_TRY(check(p));
    const int L = p->cblk;
    const int64_t S = p->s, CB = p->c / L;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (p->n * p->c * S > NNU_OMP_MIN)
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t cb = 0; cb < CB; cb++) {
            const int64_t off = (n * CB + cb) * S * L;
            /* stats of channel c = cb*L + l sit at (n*C + c)*2 */
            float st[32];
            fwd_unit(x + off, y + off, gamma + cb * L, beta + cb * L, st, S, p->eps, p->slope, L);
            for (int l = 0; l < L; l++) {
                stats[(n * p->c + cb * L + l) * 2] = st[l * 2];
                stats[(n * p->c + cb * L + l) * 2 + 1] = st[l * 2 + 1];
            }
        }
    return NNU_STATUS_OK;
}

NNU_SIMD_CLONES static void bwd_unit(const float *x, const float *gy, float *gx, const float *gamma,
                     const float *beta, const float *st, double *A, double *B, int64_t S,
                     float slope, int L) {
    const int64_t n = S * L, nv = n / LANES;
    float mu[LANES], rs[LANES], sc[LANES], sh[LANES], t[LANES] = {0};
    for (int l = 0; l < L; l++) t[l] = st[l * 2];
    lanes_of(t, L, mu);
    for (int l = 0; l < L; l++) t[l] = st[l * 2 + 1];
    lanes_of(t, L, rs);
    for (int j = 0; j < LANES; j++) {
        int l = L == LANES ? j : 0;
        sc[j] = gamma[l] * rs[j];                 /* z = sc * x + sh */
        sh[j] = beta[l] - gamma[l] * rs[j] * mu[j];
    }
    /* pass 1: a = sum gz, b = sum gz * xhat per lane */
    double a[LANES] = {0}, b[LANES] = {0};
    for (int64_t v0 = 0; v0 < nv; v0 += FLUSH) {
        float pa[LANES] = {0}, pb[LANES] = {0};
        const int64_t v1 = v0 + FLUSH < nv ? v0 + FLUSH : nv;
        for (int64_t v = v0; v < v1; v++) {
#pragma omp simd
            for (int j = 0; j < LANES; j++) {
                float xv = x[v * LANES + j], g = gy[v * LANES + j];
                float gz = sc[j] * xv + sh[j] > 0.0f ? g : slope * g;
                pa[j] += gz;
                pb[j] += gz * ((xv - mu[j]) * rs[j]);
            }
        }
        for (int j = 0; j < LANES; j++) { a[j] += pa[j]; b[j] += pb[j]; }
    }
    for (int64_t i = nv * LANES; i < n; i++) {
        float xv = x[i], g = gy[i];
        float gz = sc[0] * xv + sh[0] > 0.0f ? g : slope * g;
        a[i % LANES] += gz;
        b[i % LANES] += (double)gz * ((xv - mu[0]) * rs[0]);
    }
    fold(a, L, A);
    fold(b, L, B);
    /* pass 2: gx = gamma * rstd * (gz - A/S - xhat * B/S) */
    float kg[LANES], ka[LANES], kb[LANES];
    for (int j = 0; j < LANES; j++) {
        int l = L == LANES ? j : 0;
        kg[j] = gamma[l] * rs[j];
        ka[j] = (float)(A[l] / (double)S);
        kb[j] = (float)(B[l] / (double)S);
    }
    for (int64_t v = 0; v < nv; v++) {
#pragma omp simd
        for (int j = 0; j < LANES; j++) {
            float xv = x[v * LANES + j], g = gy[v * LANES + j];
            float gz = sc[j] * xv + sh[j] > 0.0f ? g : slope * g;
            gx[v * LANES + j] = kg[j] * (gz - ka[j] - (xv - mu[j]) * rs[j] * kb[j]);
        }
    }
    for (int64_t i = nv * LANES; i < n; i++) {
        float xv = x[i], g = gy[i];
        float gz = sc[0] * xv + sh[0] > 0.0f ? g : slope * g;
        gx[i] = kg[0] * (gz - ka[0] - (xv - mu[0]) * rs[0] * kb[0]);
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
#pragma omp parallel for schedule(dynamic, 1) if (p->n * p->c * S > NNU_OMP_MIN)
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
            bwd_unit(x + off, gy + off, gx + off, gamma + c0, beta + c0, st, A, B, S, p->slope, L);
            for (int l = 0; l < L; l++) {
                if (ggamma) ggamma[c0 + l] += (float)B[l];
                if (gbeta) gbeta[c0 + l] += (float)A[l];
            }
        }
    return NNU_STATUS_OK;
}
