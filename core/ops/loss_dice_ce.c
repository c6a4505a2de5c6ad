/* loss_dice_ce.c: the reference's DC_and_CE_loss, label case (nnunet-behaviour.md §7.4).
 *
 *   logits z (N, K, S) plain, target t (N, S) int32 in [0, K) or = ignore_label.
 *   p = softmax_K(z); m(v) = (t(v) != ignore_label); y_c(v) = [t(v) == c]
 *   CE   = -(1/M) sum_{v: m} log p_{t(v)}(v),  M = sum m  (CE = 0 when M = 0)
 *   per group g = (n, c) (or c alone when batch_dice, summing over n), c >= 1 unless do_bg:
 *     I = sum m p_c y_c,  Sp = sum m p_c,  Sy = sum m y_c
 *     dc = (2I + smooth) / max(Sp + Sy + smooth, 1e-8)
 *   Dice = -mean_g dc;  loss = CE + Dice
 *   p->terms keeps one term: NNU_LOSS_CE_ONLY loss = CE (RobustCrossEntropyLoss of
 *   nnUNetTrainerCELoss), NNU_LOSS_DICE_ONLY loss = Dice (MemoryEfficientSoftDiceLoss of
 *   nnUNetTrainerDiceLoss, do_bg as given); the other term's gradient part is left out.
 *
 * Gradient (bwd, scaled by p->weight), per valid voxel:
 *   dCE/dz_k   = (p_k - y_k) / M
 *   dDice/dp_c = m * (a_c * y_c + b_c) with a_c = -(2/G)/den, b_c = (1/G) num/den^2
 *                (b_c = 0 where the 1e-8 clip is active; bg: 0 unless do_bg)
 *   through the softmax: dz_k = p_k * (g_k - sum_j p_j g_j)
 *   (CE only: a_c = b_c = 0; Dice only: the 1/M term is 0)
 *
 * Workspace (nnu_loss_ws_size): probabilities p (N*K*S floats), then doubles
 * I, Sp, Sy per (n, k) and M. */
#include <math.h>
#include <string.h>

#include "ops_cpu.h"

static size_t prob_bytes(const nnu_loss_params *p) {
    size_t b = (size_t)(p->n * p->k * p->s) * sizeof(float);
    return (b + 63) & ~(size_t)63;
}

size_t nnu_loss_ws_size(const nnu_loss_params *p) {
    return prob_bytes(p) + (size_t)(p->n * p->k * 3 + 1) * sizeof(double);
}

static nnu_status check(const nnu_loss_params *p) {
    NNU_CHECK(p->n > 0 && p->k >= 2 && p->s > 0, NNU_STATUS_ERR_SHAPE,
              "loss_dice_ce: bad sizes n=%lld k=%lld s=%lld", (long long)p->n,
              (long long)p->k, (long long)p->s);
    NNU_CHECK(p->k <= 64, NNU_STATUS_ERR_UNSUPPORTED, "loss_dice_ce: %lld classes (max 64)",
              (long long)p->k);
    return nnu_loss_terms_check(p, "loss_dice_ce");
}

nnu_status nnu_loss_dice_ce_fwd_cpu(const nnu_backend *be, const float *logits,
                                    const int32_t *target, void *ws, double *loss,
                                    const nnu_loss_params *p) {
    (void)be;
    NNU_TRY(check(p));
    const int64_t N = p->n, K = p->k, S = p->s;
    float *prob = ws;
    double *stats = (double *)((char *)ws + prob_bytes(p));   /* [N][K][3] then M */
    double ce_sum = 0.0, m_sum = 0.0;
    int64_t bad = -1;
    for (int64_t n = 0; n < N; n++) {
        double I[64] = {0}, Sp[64] = {0}, Sy[64] = {0};
#pragma omp parallel if (K * S > NNU_OMP_MIN)
        {
            double li[64] = {0}, lp[64] = {0}, ly[64] = {0}, lce = 0.0, lm = 0.0;
            int64_t lbad = -1;
#pragma omp for schedule(static) nowait
            for (int64_t s = 0; s < S; s++) {
                const float *zs = logits + n * K * S + s;
                float *ps = prob + n * K * S + s;
                int32_t t = target[n * S + s];
                int valid = !(p->ignore_label >= 0 && t == p->ignore_label);
                if (valid && (t < 0 || t >= K)) { lbad = n * S + s; valid = 0; }
                float mx = zs[0];
                for (int64_t k = 1; k < K; k++) mx = fmaxf(mx, zs[k * S]);
                double se = 0.0;
                for (int64_t k = 0; k < K; k++) {
                    float e = expf(zs[k * S] - mx);
                    ps[k * S] = e;
                    se += e;
                }
                float inv = (float)(1.0 / se);
                for (int64_t k = 0; k < K; k++) ps[k * S] *= inv;
                if (!valid) continue;
                lce += -((double)zs[t * S] - mx - log(se));   /* -log_softmax */
                lm += 1.0;
                for (int64_t k = 0; k < K; k++) lp[k] += ps[k * S];
                li[t] += ps[t * S];
                ly[t] += 1.0;
            }
#pragma omp critical
            {
                for (int64_t k = 0; k < K; k++) { I[k] += li[k]; Sp[k] += lp[k]; Sy[k] += ly[k]; }
                ce_sum += lce;
                m_sum += lm;
                if (lbad >= 0) bad = lbad;
            }
        }
        for (int64_t k = 0; k < K; k++) {
            stats[(n * K + k) * 3 + 0] = I[k];
            stats[(n * K + k) * 3 + 1] = Sp[k];
            stats[(n * K + k) * 3 + 2] = Sy[k];
        }
    }
    NNU_CHECK(bad < 0, NNU_STATUS_ERR_ARG,
              "loss_dice_ce: target label %d at flat index %lld outside [0, %lld)",
              (int)target[bad], (long long)bad, (long long)K);
    stats[N * K * 3] = m_sum;
    double ce = m_sum > 0.0 ? ce_sum / m_sum : 0.0;

    const double dice = nnu_loss_dice_factor(p) > 0.0
        ? nnu_loss_dice_mean(stats, N, K, p->do_bg ? 0 : 1, p->batch_dice, p->smooth) : 0.0;
    *loss = (nnu_loss_ce_factor(p) > 0.0 ? ce : 0.0) - dice;
    return NNU_STATUS_OK;
}

nnu_status nnu_loss_dice_ce_bwd_cpu(const nnu_backend *be, const float *logits,
                                    const int32_t *target, const void *ws, float *glogits,
                                    const nnu_loss_params *p) {
    (void)be;
    (void)logits;
    NNU_TRY(check(p));
    const int64_t N = p->n, K = p->k, S = p->s;
    const float *prob = ws;
    const double *stats = (const double *)((const char *)ws + prob_bytes(p));
    const double M = stats[N * K * 3];
    const int64_t c0 = p->do_bg ? 0 : 1;
    const double G = (double)((K - c0) * (p->batch_dice ? 1 : N));
    const double w = p->weight;
    /* the CE part of the gradient; the Dice part is a[], b[] (both 0 without that term) */
    const float inv_m = M > 0.0 && nnu_loss_ce_factor(p) > 0.0 ? (float)(w / M) : 0.0f;
    const int dice = nnu_loss_dice_factor(p) > 0.0;
    for (int64_t n = 0; n < N; n++) {
        /* per-class coefficients of dDice/dp for this sample (already times weight) */
        float a[64] = {0}, b[64] = {0};
        for (int64_t c = c0; dice && c < K; c++)
            nnu_loss_dice_coef(stats, N, K, n, c, p->batch_dice, p->smooth, G, w, &a[c], &b[c]);
#pragma omp parallel for schedule(static) if (K * S > NNU_OMP_MIN)
        for (int64_t s = 0; s < S; s++) {
            const float *ps = prob + n * K * S + s;
            float *gs = glogits + n * K * S + s;
            int32_t t = target[n * S + s];
            if ((p->ignore_label >= 0 && t == p->ignore_label) || t < 0 || t >= K) {
                for (int64_t k = 0; k < K; k++) gs[k * S] = 0.0f;
                continue;
            }
            float g[64];
            float dot = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                g[k] = b[k] + (k == t ? a[k] : 0.0f);
                dot += ps[k * S] * g[k];
            }
            for (int64_t k = 0; k < K; k++) {
                float pk = ps[k * S];
                gs[k * S] = pk * (g[k] - dot) + inv_m * (pk - (k == t ? 1.0f : 0.0f));
            }
        }
    }
    return NNU_STATUS_OK;
}
