/* test_eval.c: confusion counts, Dice/IoU and the folder means of nnU-Net's
 * evaluation against every number of nnunet-behaviour.md L.7 (tier 1, exact: the
 * reference values are printed with 17 digits and must match bit for bit), plus
 * numpy's pairwise summation on sums where the order matters. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nnu_eval.h"

/* "0112/0112/0044 ; 0011/2200/0000" -> u8 tensor (2, 3, 4) */
static nnu_tensor *parse_map(const char *s, int64_t d, int64_t h, int64_t w, nnu_dtype dt) {
    nnu_tensor *t = NULL;
    if (nnu_tensor_new(dt, 3, (int64_t[]){d, h, w}, &t)) return NULL;
    int64_t i = 0;
    for (; *s; s++)
        if (*s >= '0' && *s <= '9') nnu_dtype_store(dt, (char *)nnu_tensor_data(t) + i++ * (int64_t)nnu_dtype_size(dt), *s - '0');
    CHECK(i == d * h * w, "parse_map: %lld values", (long long)i);
    return t;
}

typedef struct want { double dice, iou; int64_t fp, tp, fn, tn, n_pred, n_ref; } want;

static void check_case(const char *what, const nnu_confusion *c, const want *w) {
    double dice = nnu_eval_dice(c), iou = nnu_eval_iou(c);
    int same_dice = (isnan(w->dice) && isnan(dice)) || dice == w->dice;
    int same_iou = (isnan(w->iou) && isnan(iou)) || iou == w->iou;
    CHECK(same_dice && same_iou, "%s: Dice %.17g IoU %.17g, want %.17g %.17g", what, dice, iou, w->dice, w->iou);
    CHECK(c->fp == w->fp && c->tp == w->tp && c->fn == w->fn && c->tn == w->tn && c->n_pred == w->n_pred &&
              c->n_ref == w->n_ref,
          "%s: FP %lld TP %lld FN %lld TN %lld n_pred %lld n_ref %lld", what, (long long)c->fp, (long long)c->tp,
          (long long)c->fn, (long long)c->tn, (long long)c->n_pred, (long long)c->n_ref);
}

static nnu_eval_region lab(int64_t l) { nnu_eval_region r = {1, {l}}; return r; }

static void test_l7(void) {
    nnu_tensor *ra = parse_map("0112/0112/0044 ; 0011/2200/0000", 2, 3, 4, NNU_DTYPE_U8);
    nnu_tensor *pa = parse_map("0111/0010/0011 ; 0111/0000/0000", 2, 3, 4, NNU_DTYPE_U8);
    nnu_tensor *rb = parse_map("1100/0000/0000 ; 0000/0000/0000", 2, 3, 4, NNU_DTYPE_I16);
    nnu_tensor *pb = parse_map("1100/0020/0000 ; 0000/0000/0000", 2, 3, 4, NNU_DTYPE_F32);
    nnu_eval_region labels[3] = {lab(1), lab(2), lab(3)};
    nnu_confusion ca[3], cai[3], cb[3], creg[2];

    CHECK_OK(nnu_eval_confusion(ra, pa, labels, 3, 0, 0, ca));
    const want a[3] = {{0.6666666666666666, 0.5, 4, 5, 1, 14, 9, 6},
                       {0.0, 0.0, 0, 0, 4, 20, 0, 4},
                       {NAN, NAN, 0, 0, 0, 24, 0, 0}};
    for (int i = 0; i < 3; i++) check_case("case a", &ca[i], &a[i]);

    CHECK_OK(nnu_eval_confusion(ra, pa, labels, 3, 1, 4, cai));
    const want ai[3] = {{0.7692307692307693, 0.625, 2, 5, 1, 14, 7, 6},
                        {0.0, 0.0, 0, 0, 4, 18, 0, 4},
                        {NAN, NAN, 0, 0, 0, 22, 0, 0}};
    for (int i = 0; i < 3; i++) check_case("case a, ignore 4", &cai[i], &ai[i]);

    nnu_eval_region regions[2] = {{2, {1, 2}}, {1, {2}}};
    CHECK_OK(nnu_eval_confusion(ra, pa, regions, 2, 0, 0, creg));
    const want ar[2] = {{0.631578947368421, 0.46153846153846156, 3, 6, 4, 11, 9, 10},
                        {0.0, 0.0, 0, 0, 4, 20, 0, 4}};
    for (int i = 0; i < 2; i++) check_case("case a, regions", &creg[i], &ar[i]);

    /* mixed dtypes (i16 reference, f32 prediction) */
    CHECK_OK(nnu_eval_confusion(rb, pb, labels, 3, 0, 0, cb));
    const want b[3] = {{1.0, 1.0, 0, 2, 0, 22, 2, 2},
                       {0.0, 0.0, 1, 0, 0, 23, 1, 0},
                       {NAN, NAN, 0, 0, 0, 24, 0, 0}};
    for (int i = 0; i < 3; i++) check_case("case b", &cb[i], &b[i]);

    /* folder summary over a and b: mean = nanmean over cases, foreground_mean = mean
     * over classes (NaN if any class mean is NaN) */
    static const struct { double dice, fn, fp, iou, tn, tp, n_pred, n_ref; } mean[3] = {
        {0.8333333333333333, 0.5, 2.0, 0.75, 18.0, 3.5, 5.5, 4.0},
        {0.0, 2.0, 0.5, 0.0, 21.5, 0.0, 0.5, 2.0},
        {NAN, 0.0, 0.0, NAN, 24.0, 0.0, 0.0, 0.0}};
    double m[3][8];
    for (int l = 0; l < 3; l++) {
        const nnu_confusion *cs[2] = {&ca[l], &cb[l]};
        double v[8][2];
        for (int k = 0; k < 2; k++) {
            v[0][k] = nnu_eval_dice(cs[k]); v[1][k] = (double)cs[k]->fn; v[2][k] = (double)cs[k]->fp;
            v[3][k] = nnu_eval_iou(cs[k]);  v[4][k] = (double)cs[k]->tn; v[5][k] = (double)cs[k]->tp;
            v[6][k] = (double)cs[k]->n_pred; v[7][k] = (double)cs[k]->n_ref;
        }
        for (int j = 0; j < 8; j++) m[l][j] = nnu_eval_np_nanmean(v[j], 2);
        const double *w = &mean[l].dice;
        for (int j = 0; j < 8; j++)
            CHECK((isnan(w[j]) && isnan(m[l][j])) || m[l][j] == w[j], "mean[%d][%d] = %.17g, want %.17g", l + 1, j,
                  m[l][j], w[j]);
    }
    static const double fg[8] = {NAN, 0.8333333333333334, 0.8333333333333334, NAN, 21.166666666666668,
                                 1.1666666666666667, 2.0, 2.0};
    for (int j = 0; j < 8; j++) {
        double col[3] = {m[0][j], m[1][j], m[2][j]}, f = nnu_eval_np_mean(col, 3);
        CHECK((isnan(fg[j]) && isnan(f)) || f == fg[j], "foreground_mean[%d] = %.17g, want %.17g", j, f, fg[j]);
    }
    /* labels [1, 2] only: foreground_mean Dice 0.41666666666666663, IoU 0.375 */
    double d12[2] = {m[0][0], m[1][0]}, i12[2] = {m[0][3], m[1][3]};
    CHECK(nnu_eval_np_mean(d12, 2) == 0.41666666666666663, "foreground Dice [1,2] %.17g", nnu_eval_np_mean(d12, 2));
    CHECK(nnu_eval_np_mean(i12, 2) == 0.375, "foreground IoU [1,2] %.17g", nnu_eval_np_mean(i12, 2));

    /* strided input gives the same counts: the reference viewed through a permutation */
    nnu_tensor *rp = NULL, *pp = NULL;
    nnu_confusion cp[3];
    CHECK_OK(nnu_tensor_view_permute(ra, (int[]){2, 1, 0}, &rp));
    CHECK_OK(nnu_tensor_view_permute(pa, (int[]){2, 1, 0}, &pp));
    CHECK_OK(nnu_eval_confusion(rp, pp, labels, 3, 0, 0, cp));
    for (int i = 0; i < 3; i++) check_case("case a, permuted", &cp[i], &a[i]);
    CHECK_FAILS(nnu_eval_confusion(ra, rp, labels, 3, 0, 0, cp), NNU_STATUS_ERR_SHAPE, "[2,3,4]");
    nnu_eval_region bad = {1, {-1}};
    CHECK_FAILS(nnu_eval_confusion(ra, pa, &bad, 1, 0, 0, cp), NNU_STATUS_ERR_ARG, "label -1");

    nnu_tensor_release(rp); nnu_tensor_release(pp);
    nnu_tensor_release(ra); nnu_tensor_release(pa); nnu_tensor_release(rb); nnu_tensor_release(pb);
}

/* numpy's pairwise sum: values whose float sum depends on the order */
static void test_np_sum(void) {
    double x[300], xn[300];
    for (int i = 0; i < 300; i++) {
        x[i] = (double)((i * 7919) % 1000) / 997.0 + 1.0 / (double)(i + 3);
        xn[i] = i % 5 == 0 ? NAN : x[i];
    }
    /* reference values printed by numpy 1.24: np.sum(x[:n]), np.nanmean(xn[:n]); the
     * sequential sums differ in the last bit for n = 100 (…256) and n = 300 (…27) */
    static const struct { int n; double sum, nanmean; } ref[] = {
        {7, 5.640904061390519, 0.9171560713887693},
        {100, 52.90467520764226, 0.5239518257756861},
        {300, 155.39110281396262, 0.516762718872375}};
    for (int k = 0; k < 3; k++) {
        double s = nnu_eval_np_sum(x, ref[k].n), m = nnu_eval_np_nanmean(xn, ref[k].n);
        CHECK(s == ref[k].sum, "np.sum of %d = %.17g, want %.17g", ref[k].n, s, ref[k].sum);
        CHECK(m == ref[k].nanmean, "np.nanmean of %d = %.17g, want %.17g", ref[k].n, m, ref[k].nanmean);
    }
    double y[4] = {NAN, 1.0, NAN, 2.0}, z[2] = {NAN, NAN};
    CHECK(nnu_eval_np_nanmean(y, 4) == 1.5, "nanmean skips NaN");
    CHECK(isnan(nnu_eval_np_nanmean(z, 2)), "nanmean of all-NaN is NaN");
    CHECK(isnan(nnu_eval_np_mean(y, 4)), "mean propagates NaN");
    /* 0.1 × 10 is 0.9999999999999999 sequentially but 1.0 with the pairwise blocks */
    double t[10];
    for (int i = 0; i < 10; i++) t[i] = 0.1;
    CHECK(nnu_eval_np_sum(t, 10) == 1.0, "np.sum([0.1]*10) = %.17g", nnu_eval_np_sum(t, 10));
}

int main(void) {
    test_l7();
    test_np_sum();
    return check_report();
}
