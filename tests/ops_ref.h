/* ops_ref.h: naive double-precision reference implementations of the engine ops,
 * shared by test_backend_ops.c and test_gradcheck.c (header-only, static).
 * Everything here is written for clarity, not speed: one loop nest per formula,
 * plain (N, C, S) layouts only; the tests convert blocked layouts with to_blocked(). */
#ifndef NNU_OPS_REF_H
#define NNU_OPS_REF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_backend.h"
#include "tolerances.h"

/* ---- deterministic random numbers (seed printed by each test) ---- */
static uint64_t ref_rng_state = 0x9E3779B97F4A7C15ull;
static inline void ref_seed(uint64_t s) { ref_rng_state = s * 0x9E3779B97F4A7C15ull + 1; }
static inline double ref_uniform(void) {  /* [0, 1) */
    ref_rng_state ^= ref_rng_state << 13;
    ref_rng_state ^= ref_rng_state >> 7;
    ref_rng_state ^= ref_rng_state << 17;
    return (double)(ref_rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static inline void ref_fill(float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * ref_uniform());
}
static inline double *ref_to_double(const float *x, int64_t n) {
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static inline float *ref_falloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static inline double *ref_dalloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* plain (N, C, S) <-> layout cblk */
static inline void to_layout(const float *plain, float *out, int64_t N, int64_t C, int64_t S, int cblk) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++)
                out[nnu_act_index(n, c, s, C, S, cblk)] = plain[(n * C + c) * S + s];
}
static inline void from_layout(const float *lay, float *plain, int64_t N, int64_t C, int64_t S, int cblk) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++)
                plain[(n * C + c) * S + s] = lay[nnu_act_index(n, c, s, C, S, cblk)];
}

/* Compares n values; prints the first few failures, the max difference and its
 * index; records one CHECK. */
static inline int ref_compare(const char *what, const float *got, const double *ref, int64_t n,
                       nnu_tol tol) {
    double maxd = 0.0;
    int64_t maxi = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= tol.atol + tol.rtol * fabs(ref[i]))) {
            if (bad < 4)
                fprintf(stderr, "  %s[%lld]: got %.9g ref %.9g (diff %.3g)\n", what, (long long)i,
                        got[i], ref[i], d);
            bad++;
        }
        if (d > maxd || d != d) { maxd = d; maxi = i; }
    }
    CHECK(bad == 0, "%s: %lld of %lld values outside atol %g rtol %g (%s); max diff %.3g at %lld",
          what, (long long)bad, (long long)n, tol.atol, tol.rtol, tol.name, maxd, (long long)maxi);
    return bad == 0;
}

static inline int64_t ref_sp(const int64_t d[3]) { return d[0] * d[1] * d[2]; }

/* ---- convolution and transposed convolution (plain layouts, double) ----
 * Visits every (output voxel, input voxel, kernel tap) pair once and applies the
 * three directions: y += w*x, gx += w*gy, gw += x*gy (each optional). */
static inline void ref_conv(const nnu_conv_params *p, const double *x, const double *w, const double *b,
                     double *y, const double *gy, double *gx, double *gw, double *gb) {
    const int64_t Si = ref_sp(p->in), So = ref_sp(p->out);
    const int64_t K = (int64_t)p->kernel[0] * p->kernel[1] * p->kernel[2];
    if (y) for (int64_t i = 0; i < p->n * p->c_out * So; i++)
        y[i] = b ? b[(i / So) % p->c_out] : 0.0;
    if (gx) memset(gx, 0, sizeof(double) * (size_t)(p->n * p->c_in * Si));
    if (gb && gy)
        for (int64_t i = 0; i < p->n * p->c_out * So; i++) gb[(i / So) % p->c_out] += gy[i];
    const int64_t *ext = p->transposed ? p->in : p->out;   /* the loop runs over these voxels */
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t o = 0; o < p->c_out; o++)
            for (int64_t i = 0; i < p->c_in; i++)
                for (int64_t v0 = 0; v0 < ext[0]; v0++)
                    for (int64_t v1 = 0; v1 < ext[1]; v1++)
                        for (int64_t v2 = 0; v2 < ext[2]; v2++)
                            for (int64_t k = 0; k < K; k++) {
                                int64_t kk[3] = {k / (p->kernel[1] * p->kernel[2]),
                                                 (k / p->kernel[2]) % p->kernel[1],
                                                 k % p->kernel[2]};
                                int64_t v[3] = {v0, v1, v2}, pi[3], po[3];
                                int ok = 1;
                                for (int a = 0; a < 3; a++) {
                                    if (p->transposed) {
                                        pi[a] = v[a];
                                        po[a] = v[a] * p->stride[a] + kk[a];
                                    } else {
                                        po[a] = v[a];
                                        pi[a] = v[a] * p->stride[a] - p->pad[a] + kk[a];
                                        if (pi[a] < 0 || pi[a] >= p->in[a]) ok = 0;
                                    }
                                }
                                if (!ok) continue;
                                int64_t xi = (n * p->c_in + i) * Si +
                                             (pi[0] * p->in[1] + pi[1]) * p->in[2] + pi[2];
                                int64_t yi = (n * p->c_out + o) * So +
                                             (po[0] * p->out[1] + po[1]) * p->out[2] + po[2];
                                int64_t wi = p->transposed ? (i * p->c_out + o) * K + k
                                                           : (o * p->c_in + i) * K + k;
                                if (y) y[yi] += w[wi] * x[xi];
                                if (gx) gx[xi] += w[wi] * gy[yi];
                                if (gw) gw[wi] += x[xi] * gy[yi];
                            }
}

/* ---- average pooling, kernel = stride (plain layouts, double) ----
 * y[n,c,o] = mean of the window; gx[n,c,i] = gy[n,c,window(i)] / K. */
static inline void ref_avgpool(const nnu_pool_params *p, const double *x, double *y,
                               const double *gy, double *gx) {
    const int64_t Si = ref_sp(p->in), So = ref_sp(p->out);
    const double K = (double)p->stride[0] * p->stride[1] * p->stride[2];
    for (int64_t nc = 0; nc < p->n * p->c; nc++)
        for (int64_t d = 0; d < p->in[0]; d++)
            for (int64_t h = 0; h < p->in[1]; h++)
                for (int64_t w = 0; w < p->in[2]; w++) {
                    int64_t i = nc * Si + (d * p->in[1] + h) * p->in[2] + w;
                    int64_t o = nc * So + ((d / p->stride[0]) * p->out[1] + h / p->stride[1]) *
                                p->out[2] + w / p->stride[2];
                    if (y) y[o] += x[i] / K;   /* y must start at 0 */
                    if (gx) gx[i] = gy[o] / K;
                }
}

/* ---- instance norm + leaky ReLU (plain layout, double) ---- */
static inline void ref_instnorm_fwd(const nnu_norm_params *p, const double *x, const double *g,
                             const double *b, double *y) {
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t c = 0; c < p->c; c++) {
            const double *xs = x + (n * p->c + c) * p->s;
            double mu = 0, var = 0;
            for (int64_t s = 0; s < p->s; s++) mu += xs[s];
            mu /= (double)p->s;
            for (int64_t s = 0; s < p->s; s++) var += (xs[s] - mu) * (xs[s] - mu);
            var /= (double)p->s;
            double r = 1.0 / sqrt(var + p->eps);
            for (int64_t s = 0; s < p->s; s++) {
                double z = g[c] * (xs[s] - mu) * r + b[c];
                y[(n * p->c + c) * p->s + s] = z > 0 ? z : p->slope * z;
            }
        }
}
/* analytic backward of the above (the formula of instnorm.c, in double) */
static inline void ref_instnorm_bwd(const nnu_norm_params *p, const double *x, const double *g,
                             const double *b, const double *gy, double *gx, double *gg,
                             double *gb) {
    const int64_t S = p->s;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t c = 0; c < p->c; c++) {
            const double *xs = x + (n * p->c + c) * S;
            const double *gs = gy + (n * p->c + c) * S;
            double mu = 0, var = 0, A = 0, B = 0;
            for (int64_t s = 0; s < S; s++) mu += xs[s];
            mu /= (double)S;
            for (int64_t s = 0; s < S; s++) var += (xs[s] - mu) * (xs[s] - mu);
            var /= (double)S;
            double r = 1.0 / sqrt(var + p->eps);
            for (int64_t s = 0; s < S; s++) {
                double xh = (xs[s] - mu) * r, z = g[c] * xh + b[c];
                double gz = z > 0 ? gs[s] : p->slope * gs[s];
                A += gz;
                B += gz * xh;
            }
            gg[c] += B;
            gb[c] += A;
            for (int64_t s = 0; s < S; s++) {
                double xh = (xs[s] - mu) * r, z = g[c] * xh + b[c];
                double gz = z > 0 ? gs[s] : p->slope * gs[s];
                gx[(n * p->c + c) * S + s] = r * g[c] * (gz - A / S - xh * B / S);
            }
        }
}

/* ---- softmax over channels and Dice + CE loss (plain, double) ---- */
static inline void ref_softmax(int64_t N, int64_t C, int64_t S, const double *x, double *y) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++) {
            double m = -INFINITY, sum = 0;
            for (int64_t c = 0; c < C; c++) m = fmax(m, x[(n * C + c) * S + s]);
            for (int64_t c = 0; c < C; c++) sum += exp(x[(n * C + c) * S + s] - m);
            for (int64_t c = 0; c < C; c++)
                y[(n * C + c) * S + s] = exp(x[(n * C + c) * S + s] - m) / sum;
        }
}

/* the terms p->terms keeps, from the CE (BCE) value and the Dice value (-mean dc):
 * DC_and_CE_loss / DC_and_BCE_loss add both, nnUNetTrainerCELoss's RobustCrossEntropyLoss
 * is the CE alone, nnUNetTrainerDiceLoss's MemoryEfficientSoftDiceLoss the Dice alone */
static inline double ref_loss_select(const nnu_loss_params *p, double ce, double dice) {
    if (p->terms == NNU_LOSS_CE_ONLY) return ce;
    if (p->terms == NNU_LOSS_DICE_ONLY) return dice;
    return ce + dice;
}

/* the reference DC_and_CE_loss written out literally (nnunet-behaviour.md §7.4); with
 * p->terms the CE or the Dice alone (ref_loss_select), p->smooth as given (0: noSmooth) */
static inline double ref_loss(const nnu_loss_params *p, const double *z, const int32_t *t) {
    const int64_t N = p->n, K = p->k, S = p->s;
    double *pr = ref_dalloc(N * K * S);
    ref_softmax(N, K, S, z, pr);
    double ce = 0, M = 0;
    double *I = ref_dalloc(N * K), *Sp = ref_dalloc(N * K), *Sy = ref_dalloc(N * K);
    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++) {
            int32_t tv = t[n * S + s];
            if (p->ignore_label >= 0 && tv == p->ignore_label) continue;
            M += 1;
            ce -= log(pr[(n * K + tv) * S + s]);
            for (int64_t k = 0; k < K; k++) {
                Sp[n * K + k] += pr[(n * K + k) * S + s];
                if (k == tv) { I[n * K + k] += pr[(n * K + k) * S + s]; Sy[n * K + k] += 1; }
            }
        }
    ce = M > 0 ? ce / M : 0.0;
    double dsum = 0;
    int64_t G = 0;
    for (int64_t k = p->do_bg ? 0 : 1; k < K; k++) {
        if (p->batch_dice) {
            double i_ = 0, a = 0, c = 0;
            for (int64_t n = 0; n < N; n++) { i_ += I[n * K + k]; a += Sp[n * K + k]; c += Sy[n * K + k]; }
            dsum += (2 * i_ + p->smooth) / fmax(a + c + p->smooth, 1e-8);
            G++;
        } else {
            for (int64_t n = 0; n < N; n++) {
                dsum += (2 * I[n * K + k] + p->smooth) /
                        fmax(Sp[n * K + k] + Sy[n * K + k] + p->smooth, 1e-8);
                G++;
            }
        }
    }
    free(pr); free(I); free(Sp); free(Sy);
    return ref_loss_select(p, ce, -dsum / (double)G);
}

/* the reference DC_and_BCE_loss (region case, §7.4) written out literally: region
 * targets y_r = [label in region r], p = 1/(1 + e^-z), BCE = -(y log p + (1-y) log(1-p)),
 * mean over all elements, or sum(BCE * mask) / max(sum mask, 1e-8) with an ignore label
 * (mask per voxel); soft Dice over every region with the mask */
static inline double ref_loss_bce(const nnu_loss_region_params *rp, const double *z,
                                  const int32_t *t) {
    const nnu_loss_params *p = &rp->base;
    const int64_t N = p->n, R = p->k, S = p->s;
    double bce = 0, M = 0;
    double *I = ref_dalloc(N * R), *Sp = ref_dalloc(N * R), *Sy = ref_dalloc(N * R);
    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++) {
            int32_t tv = t[n * S + s];
            if (p->ignore_label >= 0 && tv == p->ignore_label) continue;
            M += 1;
            for (int64_t r = 0; r < R; r++) {
                double pr = 1.0 / (1.0 + exp(-z[(n * R + r) * S + s]));
                double y = (rp->label_regions[tv] >> r) & 1 ? 1.0 : 0.0;
                bce -= y * log(pr) + (1 - y) * log(1 - pr);
                I[n * R + r] += pr * y;
                Sp[n * R + r] += pr;
                Sy[n * R + r] += y;
            }
        }
    bce = p->ignore_label >= 0 ? bce / fmax(M, 1e-8) : bce / (double)(N * R * S);
    double dsum = 0;
    int64_t G = 0;
    for (int64_t r = 0; r < R; r++) {
        if (p->batch_dice) {
            double i_ = 0, a = 0, c = 0;
            for (int64_t n = 0; n < N; n++) { i_ += I[n * R + r]; a += Sp[n * R + r]; c += Sy[n * R + r]; }
            dsum += (2 * i_ + p->smooth) / fmax(a + c + p->smooth, 1e-8);
            G++;
        } else {
            for (int64_t n = 0; n < N; n++) {
                dsum += (2 * I[n * R + r] + p->smooth) /
                        fmax(Sp[n * R + r] + Sy[n * R + r] + p->smooth, 1e-8);
                G++;
            }
        }
    }
    free(I); free(Sp); free(Sy);
    return ref_loss_select(p, bce, -dsum / (double)G);
}

#endif
