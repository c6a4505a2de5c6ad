/* test_tensor.c: tensor views, copies, conversions and reductions against
 * hand-computed values (tier 1, exact), and numpy's percentile quirks
 * (nnunet-behaviour.md, "Global numeric conventions"). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nnu_tensor.h"

static void test_views(void) {
    nnu_tensor *t = NULL, *n = NULL, *p = NULL, *c = NULL, *r = NULL, *s = NULL;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, shape, &t));
    float *d = nnu_tensor_data(t);
    for (int i = 0; i < 24; i++) d[i] = (float)i;            /* t[i,j,k] = 12i + 4j + k */

    CHECK_OK(nnu_tensor_view_narrow(t, 2, 1, 2, &n));         /* t[:, :, 1:3] */
    CHECK(n->shape[2] == 2 && !nnu_tensor_is_contiguous(n), "narrow shape/contiguity");
    double v, sum;
    CHECK_OK(nnu_tensor_get(n, (int64_t[]){1, 2, 1}, &v));
    CHECK(v == 12 + 8 + 2, "narrow element %g", v);
    CHECK_OK(nnu_tensor_sum(n, &sum));                        /* sum over k in {1,2} of 12i+4j+k */
    CHECK(sum == 138, "narrow sum %g", sum);   /* 12*1*3*2 + 4*3*2*2 + 3*2*3 = 72 + 48 + 18 */

    CHECK_OK(nnu_tensor_view_permute(t, (int[]){2, 0, 1}, &p)); /* p[k,i,j] = t[i,j,k] */
    CHECK(p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 3, "permute shape");
    CHECK_OK(nnu_tensor_get(p, (int64_t[]){3, 1, 2}, &v));
    CHECK(v == 12 + 8 + 3, "permute element %g", v);
    CHECK_OK(nnu_tensor_contiguous(p, &c));
    CHECK(nnu_tensor_is_contiguous(c) && c->storage != t->storage, "contiguous copies a permuted view");
    CHECK(((float *)nnu_tensor_data(c))[1] == 4.0f, "contiguous order: c[0,0,1] = t[0,1,0] = 4");

    CHECK_OK(nnu_tensor_view_reshape(t, 2, (int64_t[]){-1, 6}, &r));
    CHECK(r->shape[0] == 4 && r->shape[1] == 6 && r->storage == t->storage, "reshape infers -1, shares storage");
    CHECK_FAILS(nnu_tensor_view_reshape(p, 1, (int64_t[]){24}, &s), NNU_STATUS_ERR_ARG, "not contiguous");
    CHECK_FAILS(nnu_tensor_view_reshape(t, 1, (int64_t[]){25}, &s), NNU_STATUS_ERR_SHAPE, "[2,3,4]");
    CHECK_FAILS(nnu_tensor_view_narrow(t, 1, 2, 2, &s), NNU_STATUS_ERR_ARG, "out of range");

    CHECK_OK(nnu_tensor_view_select(t, 1, 2, &s));            /* t[:, 2, :] */
    CHECK(s->ndim == 2 && s->shape[0] == 2 && s->shape[1] == 4, "select shape");
    CHECK_OK(nnu_tensor_get(s, (int64_t[]){1, 3}, &v));
    CHECK(v == 12 + 8 + 3, "select element %g", v);

    /* writes through a view reach the base tensor */
    CHECK_OK(nnu_tensor_fill(n, -1));
    CHECK(d[1] == -1 && d[2] == -1 && d[0] == 0 && d[3] == 3, "fill through a narrow view");

    /* releasing the base first keeps the storage alive for the views */
    nnu_tensor_release(t);
    CHECK_OK(nnu_tensor_get(s, (int64_t[]){0, 0}, &v));
    CHECK(v == 8, "view outlives its base: %g", v);
    nnu_tensor_release(n); nnu_tensor_release(p); nnu_tensor_release(c);
    nnu_tensor_release(r); nnu_tensor_release(s);
}

static void test_dtypes(void) {
    nnu_tensor *f = NULL, *u = NULL, *h = NULL, *back = NULL;
    int64_t shape[1] = {6};
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F64, 1, shape, &f));
    double vals[6] = {-1.7, 0.5, 2.9, 255.0, 65504.0, 1e-7};
    memcpy(nnu_tensor_data(f), vals, sizeof vals);
    CHECK_OK(nnu_tensor_to_dtype(f, NNU_DTYPE_I16, &u));
    const int16_t *iv = nnu_tensor_data(u);
    CHECK(iv[0] == -1 && iv[1] == 0 && iv[2] == 2 && iv[3] == 255, "float to int truncates toward zero");
    CHECK_OK(nnu_tensor_to_dtype(f, NNU_DTYPE_F16, &h));
    CHECK_OK(nnu_tensor_to_dtype(h, NNU_DTYPE_F32, &back));
    const float *bv = nnu_tensor_data(back);
    CHECK(bv[1] == 0.5f && bv[3] == 255.0f && bv[4] == 65504.0f, "f16 round trip of exact values");
    CHECK_CLOSE(bv[0], -1.7, 1e-3, 0);
    CHECK_CLOSE(bv[5], 1.1920928955078125e-07, 0, 0);         /* nearest half subnormal: 2 * 2^-24 */
    CHECK(nnu_f32_to_f16(65520.0f) == 0x7c00, "65520 overflows to inf in f16");
    CHECK(nnu_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "tie rounds to even (down)");
    CHECK(nnu_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "tie rounds to even (up)");
    nnu_tensor_release(f); nnu_tensor_release(u); nnu_tensor_release(h); nnu_tensor_release(back);
}

static void test_reductions(void) {
    nnu_tensor *t = NULL;
    int64_t shape[2] = {2, 2};
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 2, shape, &t));
    float *d = nnu_tensor_data(t);
    d[0] = 1; d[1] = 2; d[2] = 3; d[3] = 6;
    double v;
    CHECK_OK(nnu_tensor_sum(t, &v)); CHECK(v == 12, "sum %g", v);
    CHECK_OK(nnu_tensor_mean(t, &v)); CHECK(v == 3, "mean %g", v);
    CHECK_OK(nnu_tensor_min(t, &v)); CHECK(v == 1, "min %g", v);
    CHECK_OK(nnu_tensor_max(t, &v)); CHECK(v == 6, "max %g", v);
    CHECK_OK(nnu_tensor_std(t, 0, &v)); CHECK(v == sqrt(14.0 / 4), "std %g", v);  /* (4+1+0+9)/4 */
    CHECK_OK(nnu_tensor_std(t, 1, &v)); CHECK(v == sqrt(14.0 / 3), "std ddof=1 %g", v);
    double q[3] = {0, 50, 100}, p[3];
    CHECK_OK(nnu_tensor_percentile(t, q, 3, p));
    CHECK(p[0] == 1 && p[1] == 2.5 && p[2] == 6, "percentiles %g %g %g", p[0], p[1], p[2]);
    d[2] = NAN;
    CHECK_OK(nnu_tensor_max(t, &v)); CHECK(isnan(v), "NaN propagates through max");
    nnu_tensor_release(t);

    /* numpy's _lerp switches to the upper end for gamma >= 0.5 */
    double x[2] = {0.7, 3.3};
    CHECK(nnu_percentile_sorted(x, 2, 50) == 2.0, "numpy percentile([0.7, 3.3], 50) == 2.0 exactly");
    double y[4] = {1, 2, 3, 4};                                /* q = 3 * 0.1 = 0.30000000000000004 */
    CHECK(nnu_percentile_sorted(y, 4, 10) == 1.0 + (2.0 - 1.0) * (3 * 0.1), "percentile rounding of q");
    CHECK(nnu_percentile_sorted(y, 4, 0.5) == 1.015, "percentile 0.5 of 1..4");
}

int main(void) {
    test_views();
    test_dtypes();
    test_reductions();
    return check_report();
}
