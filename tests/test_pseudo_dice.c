/* test_pseudo_dice: the online pseudo-Dice counts (core/nnu_pseudo_dice.h) on hand-made
 * logits: argmax (first maximum wins), background left out, ignore label masked,
 * regions by logit > 0 — every count computed by hand below. */
#include <string.h>

#include "check.h"
#include "nnu_pseudo_dice.h"

static nnu_tensor *make(nnu_dtype dt, int nd, const int64_t *shape, const double *v) {
    nnu_tensor *t;
    nnu_tensor_new(dt, nd, shape, &t);
    int64_t n = nnu_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) nnu_dtype_store(dt, (char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(dt), v[i]);
    return t;
}

int main(void) {
    /* N = 2 samples, K = 3 classes, 1 x 1 x 3 voxels each.
     * sample 0 logits per voxel (c0, c1, c2): v0 (0, 5, 1) -> 1; v1 (2, 2, 0) -> 0 (tie, first);
     *                                           v2 (0, 1, 3) -> 2
     * sample 1: v0 (1, 0, 0) -> 0; v1 (0, 0, 4) -> 2; v2 (0, 3, 3) -> 1 (tie, first)
     * targets: sample 0 (1, 1, 2); sample 1 (2, 2, 0) */
    const int64_t ls[5] = {2, 3, 1, 1, 3}, ts[5] = {2, 1, 1, 1, 3};
    const double lv[18] = {0, 2, 0,  5, 2, 1,  1, 0, 3,      /* sample 0: c0 | c1 | c2 over v0..v2 */
                           1, 0, 0,  0, 0, 3,  0, 4, 3};     /* sample 1 */
    const double tv[6] = {1, 1, 2, 2, 2, 0};
    nnu_tensor *logits = make(NNU_DTYPE_F32, 5, ls, lv), *target = make(NNU_DTYPE_I16, 5, ts, tv);
    /* predictions: s0 (1, 0, 2), s1 (0, 2, 1); targets s0 (1, 1, 2), s1 (2, 2, 0)
     * class 1: tp = s0v0; fp = s1v2; fn = s0v1          -> 1, 1, 1
     * class 2: tp = s0v2, s1v1; fp = -; fn = s1v0        -> 2, 0, 1 */
    double tp[2], fp[2], fn[2];
    CHECK_OK(nnu_pseudo_dice_labels(logits, target, 0, 0, tp, fp, fn));
    CHECK(tp[0] == 1 && fp[0] == 1 && fn[0] == 1, "class 1: %g %g %g", tp[0], fp[0], fn[0]);
    CHECK(tp[1] == 2 && fp[1] == 0 && fn[1] == 1, "class 2: %g %g %g", tp[1], fp[1], fn[1]);
    /* ignore label 2: voxels with target 2 (s0v2, s1v0, s1v1) leave every count:
     * class 1: tp s0v0, fp s1v2, fn s0v1 -> 1, 1, 1; class 2: nothing left -> 0, 0, 0 */
    CHECK_OK(nnu_pseudo_dice_labels(logits, target, 1, 2, tp, fp, fn));
    CHECK(tp[0] == 1 && fp[0] == 1 && fn[0] == 1, "ignore, class 1: %g %g %g", tp[0], fp[0], fn[0]);
    CHECK(tp[1] == 0 && fp[1] == 0 && fn[1] == 0, "ignore, class 2: %g %g %g", tp[1], fp[1], fn[1]);

    /* regions on the same logits read as 3 sigmoid channels: region r predicted where
     * logit > 0. regions {1,2} (ch 0), {2} (ch 1), {1} (ch 2)
     * ch0 > 0: s0v1, s1v0; gt {1,2}: s0v0, s0v1, s0v2, s1v0, s1v1
     *   -> tp 2 (s0v1, s1v0), fp 0, fn 3 (s0v0, s0v2, s1v1) */
    nnu_eval_region reg[3] = {{2, {1, 2}}, {1, {2}}, {1, {1}}};
    double rt[3], rp[3], rn[3];
    CHECK_OK(nnu_pseudo_dice_regions(logits, target, reg, 3, 0, 0, rt, rp, rn));
    CHECK(rt[0] == 2 && rp[0] == 0 && rn[0] == 3, "region {1,2}: %g %g %g", rt[0], rp[0], rn[0]);
    /* ch1 > 0: s0v0, s0v1, s0v2, s1v2 (values 5, 2, 1 | 3); gt {2}: s0v2, s1v0, s1v1
     * tp s0v2; fp s0v0, s0v1, s1v2; fn s1v0, s1v1 */
    CHECK(rt[1] == 1 && rp[1] == 3 && rn[1] == 2, "region {2}: %g %g %g", rt[1], rp[1], rn[1]);
    /* ch2 > 0: s0v0 (1), s0v2 (3), s1v1 (4), s1v2 (3); gt {1}: s0v0, s0v1
     *   -> tp 1 (s0v0), fp 3, fn 1 (s0v1) */
    CHECK(rt[2] == 1 && rp[2] == 3 && rn[2] == 1, "region {1}: %g %g %g", rt[2], rp[2], rn[2]);

    const int64_t bad[5] = {2, 1, 1, 1, 4};
    nnu_tensor *tb;
    nnu_tensor_new(NNU_DTYPE_I16, 5, bad, &tb);
    CHECK_FAILS(nnu_pseudo_dice_labels(logits, tb, 0, 0, tp, fp, fn), NNU_STATUS_ERR_SHAPE, "[2,1,1,1,4]");
    nnu_tensor_release(tb);
    nnu_tensor_release(logits);
    nnu_tensor_release(target);
    return check_report();
}
