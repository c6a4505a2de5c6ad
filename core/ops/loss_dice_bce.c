/* loss_dice_bce.c: the reference's DC_and_BCE_loss, region case (nnunet-behaviour.md §7.4,
 * Appendix B): one sigmoid output per region, regions may overlap.
 *
 *   logits z (N, R, S) plain, target t (N, S) int32 labels in [0, n_labels) or = ignore.
 *   m(v) = (t(v) != ignore_label);  y_r(v) = bit r of label_regions[t(v)];  p_r = sigmoid(z_r)
 *   BCE(z, y) = max(z, 0) - z y + log(1 + exp(-|z|))                   (BCEWithLogitsLoss)
 *   CE   = sum_{v, r} BCE / (N R S)                without an ignore label (mean over all)
 *        = sum_{v: m, r} BCE / max(M, 1e-8)        with one, M = sum m (voxels, not times R:
 *                                                  the reference divides by mask.sum())
 *   per group g = (n, r) (or r alone when batch_dice), every region (do_bg = True):
 *     I = sum m p_r y_r,  Sp = sum m p_r,  Sy = sum m y_r
 *     dc = (2I + smooth) / max(Sp + Sy + smooth, 1e-8);   Dice = -mean_g dc
 *   loss = CE + Dice
 *   base.terms keeps one term: NNU_LOSS_CE_ONLY loss = CE (the BCE above alone),
 *   NNU_LOSS_DICE_ONLY loss = Dice (nnUNetTrainerDiceLoss: sigmoid, do_bg = True).
 *
 * Gradient (bwd, scaled by base.weight), per valid voxel and region:
 *   dCE/dz_r   = (p_r - y_r) / D     (D the CE denominator above)
 *   dDice/dp_r = a_r y_r + b_r with a_r = -(2/G)/den, b_r = (1/G) num/den^2 (b_r = 0 where
 *                the 1e-8 clip is active), and dp/dz = p (1 - p); ignored voxels get 0.
 *   (CE only: a_r = b_r = 0; Dice only: the 1/D term is 0)
 *
 * Workspace: nnu_loss_ws_size(&p->base) with base.k = R: the sigmoids p (N*R*S floats), then
 * doubles I, Sp, Sy per (n, r) and the CE denominator. */
#include <math.h>
#include <string.h>

#include "ops_cpu.h"

enum { MAX_REGIONS = 32 };   /* label_regions holds 32 bits */

static size_t prob_bytes(const nnu_loss_params *p) {
    size_t b = (size_t)(p->n * p->k * p->s) * sizeof(float);
    return (b + 63) & ~(size_t)63;
}

/* the region bits of the label at one voxel: -1 for an ignored voxel, -2 out of range */
static inline int64_t voxel_bits(const nnu_loss_region_params *rp, int32_t t) {
    if (rp->base.ignore_label >= 0 && t == rp->base.ignore_label) return -1;
    if (t < 0 || t >= rp->n_labels) return -2;
    return rp->label_regions[t];
}

nnu_status nnu_loss_dice_bce_fwd_cpu(const nnu_backend *be, const float *logits,
                                     const int32_t *target, void *ws, double *loss,
                                     const nnu_loss_region_params *rp) {
    (void)be;
    NNU_TRY(nnu_loss_region_check(rp));
    const nnu_loss_params *p = &rp->base;
    const int64_t N = p->n, R = p->k, S = p->s;
    float *prob = ws;
    double *stats = (double *)((char *)ws + prob_bytes(p));   /* [N][R][3] then the CE denominator */
    double bce_sum = 0.0, m_sum = 0.0;
    int64_t bad = -1;
    for (int64_t n = 0; n < N; n++) {
        double I[MAX_REGIONS] = {0}, Sp[MAX_REGIONS] = {0}, Sy[MAX_REGIONS] = {0};
#pragma omp parallel if (R * S > NNU_OMP_MIN)
        {
            double li[MAX_REGIONS] = {0}, lp[MAX_REGIONS] = {0}, ly[MAX_REGIONS] = {0};
            double lbce = 0.0, lm = 0.0;
            int64_t lbad = -1;
#pragma omp for schedule(static) nowait
            for (int64_t s = 0; s < S; s++) {
                int64_t bits = voxel_bits(rp, target[n * S + s]);
                if (bits == -2) lbad = n * S + s;
                for (int64_t r = 0; r < R; r++) {
                    float z = logits[(n * R + r) * S + s];
                    float pr = 1.0f / (1.0f + expf(-z));
                    prob[(n * R + r) * S + s] = pr;
                    if (bits < 0) continue;
                    double y = (double)((bits >> r) & 1);
                    lbce += fmax((double)z, 0.0) - (double)z * y + log1p(exp(-fabs((double)z)));
                    lp[r] += pr;
                    li[r] += pr * y;
                    ly[r] += y;
                }
                if (bits >= 0) lm += 1.0;
            }
#pragma omp critical
            {
                for (int64_t r = 0; r < R; r++) { I[r] += li[r]; Sp[r] += lp[r]; Sy[r] += ly[r]; }
                bce_sum += lbce;
                m_sum += lm;
                if (lbad >= 0) bad = lbad;
            }
        }
        for (int64_t r = 0; r < R; r++) {
            stats[(n * R + r) * 3 + 0] = I[r];
            stats[(n * R + r) * 3 + 1] = Sp[r];
            stats[(n * R + r) * 3 + 2] = Sy[r];
        }
    }
    NNU_CHECK(bad < 0, NNU_STATUS_ERR_ARG,
              "loss_dice_bce: target label %d at flat index %lld outside [0, %d)",
              (int)target[bad], (long long)bad, rp->n_labels);
    const double denom = p->ignore_label >= 0 ? fmax(m_sum, 1e-8) : m_sum * (double)R;
    stats[N * R * 3] = denom;
    const double dice = nnu_loss_dice_factor(p) > 0.0
        ? nnu_loss_dice_mean(stats, N, R, 0, p->batch_dice, p->smooth) : 0.0;
    *loss = (nnu_loss_ce_factor(p) > 0.0 ? bce_sum / denom : 0.0) - dice;
    return NNU_STATUS_OK;
}

nnu_status nnu_loss_dice_bce_bwd_cpu(const nnu_backend *be, const float *logits,
                                     const int32_t *target, const void *ws, float *glogits,
                                     const nnu_loss_region_params *rp) {
    (void)be;
    (void)logits;
    NNU_TRY(nnu_loss_region_check(rp));
    const nnu_loss_params *p = &rp->base;
    const int64_t N = p->n, R = p->k, S = p->s;
    const float *prob = ws;
    const double *stats = (const double *)((const char *)ws + prob_bytes(p));
    const double G = (double)(R * (p->batch_dice ? 1 : N));
    const double w = p->weight;
    /* the BCE part of the gradient; the Dice part is a[], b[] (both 0 without that term) */
    const float cw = nnu_loss_ce_factor(p) > 0.0 ? (float)(w / stats[N * R * 3]) : 0.0f;
    const int dice = nnu_loss_dice_factor(p) > 0.0;
    for (int64_t n = 0; n < N; n++) {
        float a[MAX_REGIONS] = {0}, b[MAX_REGIONS] = {0};   /* dDice/dp coefficients, times weight */
        for (int64_t r = 0; dice && r < R; r++)
            nnu_loss_dice_coef(stats, N, R, n, r, p->batch_dice, p->smooth, G, w, &a[r], &b[r]);
#pragma omp parallel for schedule(static) if (R * S > NNU_OMP_MIN)
        for (int64_t s = 0; s < S; s++) {
            int64_t bits = voxel_bits(rp, target[n * S + s]);
            for (int64_t r = 0; r < R; r++) {
                float *g = glogits + (n * R + r) * S + s;
                if (bits < 0) { *g = 0.0f; continue; }
                float pr = prob[(n * R + r) * S + s];
                float y = (float)((bits >> r) & 1);
                *g = pr * (1.0f - pr) * (a[r] * y + b[r]) + cw * (pr - y);
            }
        }
    }
    return NNU_STATUS_OK;
}
