/* loss_terms.c: the pieces the loss twins share (CPU core/ops/loss_dice_ce.c,
 * loss_dice_bce.c; CUDA kernels/loss.cu, loss_bce.cu assemble their scalar on the host):
 * the soft-Dice mean over per-(sample, class) sums, the Dice gradient coefficients of
 * the CPU backwards, the term selection's and the region loss's parameter checks. One
 * definition, so the implementations cannot drift apart. */
#include <math.h>

#include "nnu_backend.h"

double nnu_loss_dice_mean(const double *stats, int64_t N, int64_t K, int64_t k0, int batch_dice,
                          double smooth) {
    double dsum = 0.0;
    int64_t groups = 0;
    for (int64_t c = k0; c < K; c++) {
        if (batch_dice) {
            double I = 0, Sp = 0, Sy = 0;
            for (int64_t n = 0; n < N; n++) {
                I += stats[(n * K + c) * 3];
                Sp += stats[(n * K + c) * 3 + 1];
                Sy += stats[(n * K + c) * 3 + 2];
            }
            dsum += (2.0 * I + smooth) / fmax(Sp + Sy + smooth, 1e-8);
            groups++;
        } else {
            for (int64_t n = 0; n < N; n++) {
                const double *st = stats + (n * K + c) * 3;
                dsum += (2.0 * st[0] + smooth) / fmax(st[1] + st[2] + smooth, 1e-8);
                groups++;
            }
        }
    }
    return groups ? dsum / (double)groups : 0.0;
}

void nnu_loss_dice_coef(const double *stats, int64_t N, int64_t K, int64_t n, int64_t c,
                        int batch_dice, double smooth, double G, double w, float *a, float *b) {
    double I = 0, Sp = 0, Sy = 0;
    for (int64_t m = batch_dice ? 0 : n; m < (batch_dice ? N : n + 1); m++) {
        I += stats[(m * K + c) * 3];
        Sp += stats[(m * K + c) * 3 + 1];
        Sy += stats[(m * K + c) * 3 + 2];
    }
    const double raw = Sp + Sy + smooth, den = fmax(raw, 1e-8), num = 2.0 * I + smooth;
    *a = (float)(w * -2.0 / (G * den));
    *b = raw > 1e-8 ? (float)(w * num / (G * den * den)) : 0.0f;
}

nnu_status nnu_loss_terms_check(const nnu_loss_params *p, const char *op) {
    NNU_CHECK(p->terms == NNU_LOSS_DICE_AND_CE || p->terms == NNU_LOSS_CE_ONLY ||
              p->terms == NNU_LOSS_DICE_ONLY, NNU_STATUS_ERR_ARG,
              "%s: terms %d (NNU_LOSS_DICE_AND_CE %d, _CE_ONLY %d or _DICE_ONLY %d)", op,
              p->terms, NNU_LOSS_DICE_AND_CE, NNU_LOSS_CE_ONLY, NNU_LOSS_DICE_ONLY);
    return NNU_STATUS_OK;
}

nnu_status nnu_loss_region_check(const nnu_loss_region_params *rp) {
    const nnu_loss_params *p = &rp->base;
    NNU_TRY(nnu_loss_terms_check(p, "loss_dice_bce"));
    NNU_CHECK(p->n > 0 && p->k >= 1 && p->s > 0, NNU_STATUS_ERR_SHAPE,
              "loss_dice_bce: bad sizes n=%lld regions=%lld s=%lld", (long long)p->n,
              (long long)p->k, (long long)p->s);
    NNU_CHECK(p->k <= 32, NNU_STATUS_ERR_UNSUPPORTED,
              "loss_dice_bce: %lld regions (max 32: label_regions holds 32 bits)", (long long)p->k);
    NNU_CHECK(rp->n_labels >= 1 && rp->n_labels <= NNU_LOSS_MAX_LABELS, NNU_STATUS_ERR_ARG,
              "loss_dice_bce: %d labels (1..%d)", rp->n_labels, NNU_LOSS_MAX_LABELS);
    NNU_CHECK(p->ignore_label < 0 || p->ignore_label >= rp->n_labels ||
              rp->label_regions[p->ignore_label] == 0, NNU_STATUS_ERR_ARG,
              "loss_dice_bce: the ignore label %d belongs to a region", p->ignore_label);
    return NNU_STATUS_OK;
}
