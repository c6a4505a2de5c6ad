/* nnu_pseudo_dice.c: see nnu_pseudo_dice.h. One pass over the voxels of every
 * sample; logits are read through a contiguous copy when they are strided.
 * Shapes: logits (N, K, S...) and target (N, 1, S...) with the same N and S. */
#include "nnu_pseudo_dice.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* logits (N, K, spatial...) and target (N, 1, spatial...) with the same N and the same
 * number of voxels; the spatial ranks may differ by singleton axes (a 2-D network's
 * (N, K, H, W) logits against the loader's (N, 1, 1, H, W) target). */
static nnu_status check_shapes(const nnu_tensor *logits, const nnu_tensor *target, int k_min) {
    char a[96], b[96];
    NNU_CHECK(logits && target, NNU_STATUS_ERR_ARG, "pseudo_dice: NULL tensor");
    NNU_CHECK(logits->dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_ARG, "pseudo_dice: logits must be f32");
    int ok = logits->ndim >= 3 && target->ndim >= 3 && target->shape[1] == 1 && logits->shape[1] >= k_min &&
             logits->shape[0] == target->shape[0];
    if (ok) {
        int64_t sl = nnu_tensor_numel(logits) / (logits->shape[0] * logits->shape[1]);
        int64_t st = nnu_tensor_numel(target) / target->shape[0];
        ok = sl == st;
    }
    NNU_CHECK(ok, NNU_STATUS_ERR_SHAPE, "pseudo_dice: logits %s vs target %s (want (N, K, ...) and (N, 1, ...) "
              "with the same N and voxels)", nnu_tensor_shape_str(logits, a, sizeof a),
              nnu_tensor_shape_str(target, b, sizeof b));
    return NNU_STATUS_OK;
}

/* contiguous views (retained or copied) of both; target as f64 for simple reads */
static nnu_status prepare(const nnu_tensor *logits, const nnu_tensor *target, nnu_tensor **lc,
                          nnu_tensor **tc) {
    *lc = *tc = NULL;
    NNU_TRY(nnu_tensor_contiguous((nnu_tensor *)logits, lc));
    nnu_status st = nnu_tensor_to_dtype(target, NNU_DTYPE_I64, tc);
    if (st) { nnu_tensor_release(*lc); *lc = NULL; }
    return st;
}

nnu_status nnu_pseudo_dice_labels(const nnu_tensor *logits, const nnu_tensor *target, int has_ignore,
                                  int64_t ignore_label, double *tp, double *fp, double *fn) {
    NNU_TRY(check_shapes(logits, target, 2));
    nnu_tensor *lc, *tc;
    NNU_TRY(prepare(logits, target, &lc, &tc));
    const int64_t n = logits->shape[0], k = logits->shape[1];
    const int64_t s = nnu_tensor_numel(logits) / (n * k);
    const float *x = nnu_tensor_data(lc);
    const int64_t *y = nnu_tensor_data(tc);
    int64_t *cnt = calloc((size_t)(3 * k), sizeof *cnt);      /* tp, fp, fn per class */
    if (!cnt) {
        nnu_tensor_release(lc);
        nnu_tensor_release(tc);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "pseudo_dice: out of memory");
    }
    for (int64_t b = 0; b < n; b++) {
        const float *xb = x + b * k * s;
        const int64_t *yb = y + b * s;
        for (int64_t v = 0; v < s; v++) {
            int64_t t = yb[v];
            if (has_ignore && t == ignore_label) continue;
            int64_t p = 0;
            float best = xb[v];
            for (int64_t c = 1; c < k; c++)
                if (xb[c * s + v] > best) { best = xb[c * s + v]; p = c; }
            if (p == t) cnt[3 * p]++;                          /* tp */
            else {
                cnt[3 * p + 1]++;                              /* fp of the predicted class */
                if (t >= 0 && t < k) cnt[3 * t + 2]++;         /* fn of the true class */
            }
        }
    }
    for (int64_t c = 1; c < k; c++) {
        tp[c - 1] = (double)cnt[3 * c];
        fp[c - 1] = (double)cnt[3 * c + 1];
        fn[c - 1] = (double)cnt[3 * c + 2];
    }
    free(cnt);
    nnu_tensor_release(lc);
    nnu_tensor_release(tc);
    return NNU_STATUS_OK;
}

static int in_region(const nnu_eval_region *r, int64_t t) {
    for (int i = 0; i < r->n; i++) if (r->labels[i] == t) return 1;
    return 0;
}

nnu_status nnu_pseudo_dice_regions(const nnu_tensor *logits, const nnu_tensor *target,
                                   const nnu_eval_region *regions, int n_regions, int has_ignore,
                                   int64_t ignore_label, double *tp, double *fp, double *fn) {
    NNU_TRY(check_shapes(logits, target, 1));
    NNU_CHECK(n_regions == logits->shape[1], NNU_STATUS_ERR_SHAPE,
              "pseudo_dice: %d regions but %lld logit channels", n_regions, (long long)logits->shape[1]);
    nnu_tensor *lc, *tc;
    NNU_TRY(prepare(logits, target, &lc, &tc));
    const int64_t n = logits->shape[0], k = n_regions;
    const int64_t s = nnu_tensor_numel(logits) / (n * k);
    const float *x = nnu_tensor_data(lc);
    const int64_t *y = nnu_tensor_data(tc);
    for (int r = 0; r < n_regions; r++) {
        int64_t ctp = 0, cfp = 0, cfn = 0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t v = 0; v < s; v++) {
                int64_t t = y[b * s + v];
                if (has_ignore && t == ignore_label) continue;
                int pr = x[(b * k + r) * s + v] > 0.0f, gt = in_region(&regions[r], t);
                ctp += pr && gt;
                cfp += pr && !gt;
                cfn += !pr && gt;
            }
        tp[r] = (double)ctp;
        fp[r] = (double)cfp;
        fn[r] = (double)cfn;
    }
    nnu_tensor_release(lc);
    nnu_tensor_release(tc);
    return NNU_STATUS_OK;
}
