/* test_export.c: nnu_export (resample back, argmax / regions, un-crop, transpose back,
 * float16 fold ensemble) and nnu_prefetch (order, ring, errors, early free) on
 * hand-computed cases. The voxel-exact comparison of the whole predict path with a
 * numpy replay of the reference is tests/lua/test_predict.lua. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_dtype.h"
#include "nnu_export.h"
#include "nnu_nifti.h"
#include "nnu_prefetch.h"

static nnu_tensor *from(nnu_dtype dt, int ndim, const int64_t *shape, const double *v) {
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(dt, ndim, shape, &t));
    int64_t n = nnu_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        nnu_dtype_store(dt, (char *)nnu_tensor_data(t) + (size_t)i * nnu_dtype_size(dt), v[i]);
    return t;
}

static int equals(const nnu_tensor *t, const double *want, int64_t n) {
    if (!t || nnu_tensor_numel(t) != n) return 0;
    for (int64_t i = 0; i < n; i++) {
        double v = nnu_dtype_load(t->dtype, (const char *)nnu_tensor_data(t) + (size_t)i * nnu_dtype_size(t->dtype));
        if (v != want[i]) {
            fprintf(stderr, "  element %lld: %g, want %g\n", (long long)i, v, want[i]);
            return 0;
        }
    }
    return 1;
}

/* f16 ensemble: (1 + 2^-10) + 1 is a float16 tie -> 2 (even); a strided accumulator */
static void test_fold_ensemble(void) {
    double a[4] = {1 + 1.0 / 1024, 9, 3, 9}, b[2] = {1, 4};
    nnu_tensor *acc = from(NNU_DTYPE_F16, 1, (int64_t[]){4}, a);
    nnu_tensor *x = from(NNU_DTYPE_F32, 1, (int64_t[]){2}, b);
    nnu_tensor *v = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_view_reshape(acc, 2, (int64_t[]){2, 2}, &r));
    CHECK_OK(nnu_tensor_view_select(r, 1, 0, &v));            /* elements 0 and 2: stride 2 */
    CHECK_OK(nnu_export_accumulate(v, x));
    CHECK_OK(nnu_export_divide(v, 2));
    CHECK(equals(acc, (double[]){1, 9, 3.5, 9}, 4), "f16 sum and division in place through a strided view");
    CHECK_FAILS(nnu_export_accumulate(acc, x), NNU_STATUS_ERR_SHAPE, "shapes differ");
    CHECK_FAILS(nnu_export_divide(acc, 0), NNU_STATUS_ERR_ARG, "n must be");
    nnu_tensor_release(v);
    nnu_tensor_release(r);
    nnu_tensor_release(acc);
    nnu_tensor_release(x);
}

/* logits (2, 1, 1, 4) at spacing (1,1,1) -> cropped shape (1, 1, 2) at spacing
 * (1, 1, 2): order 1 with the pixel-centre grid samples x = 0.5 and 2.5, i.e. pair
 * means: ch0 {0,1,2,3} -> {0.5, 2.5}, ch1 {3,2,1,0} -> {2.5, 0.5}: labels {1, 0};
 * un-cropped into (1, 2, 3) at y [1,2), x [1,3). */
static void test_export_case(void) {
    nnu_preproc_props p;
    memset(&p, 0, sizeof p);
    for (int a = 0; a < 3; a++) p.target_spacing[a] = 1;
    p.spacing_transposed[0] = p.spacing_transposed[1] = 1;
    p.spacing_transposed[2] = 2;
    int64_t before[3] = {1, 2, 3}, after[3] = {1, 1, 2}, bbox[3][2] = {{0, 1}, {1, 2}, {1, 3}};
    memcpy(p.shape_before_cropping, before, sizeof before);
    memcpy(p.shape_after_cropping, after, sizeof after);
    memcpy(p.bbox, bbox, sizeof bbox);
    double lv[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    nnu_tensor *logits = from(NNU_DTYPE_F16, 4, (int64_t[]){2, 1, 1, 4}, lv);
    nnu_export_opts o = nnu_export_opts_default();
    nnu_tensor *r = NULL, *seg = NULL, *seg2 = NULL, *probs = NULL;
    CHECK_OK(nnu_export_resample_logits(logits, &p, &o.resample, &r));
    CHECK(r && r->dtype == NNU_DTYPE_F16 && equals(r, (double[]){0.5, 2.5, 2.5, 0.5}, 4), "order-1 resample back");
    const double want[6] = {0, 0, 0, 0, 1, 0};
    CHECK_OK(nnu_export_case(logits, &p, &o, &seg, NULL));        /* channel-streaming path */
    CHECK(seg && seg->dtype == NNU_DTYPE_U8 && seg->ndim == 3 && equals(seg, want, 6), "streaming argmax + un-crop");
    CHECK_OK(nnu_export_case(logits, &p, &o, &seg2, &probs));     /* full path */
    CHECK(equals(seg2, want, 6), "full path argmax + un-crop");
    /* probabilities (2, 1, 2, 3): background 1 outside the box */
    CHECK(probs && probs->shape[0] == 2 && nnu_tensor_numel(probs) == 12, "probabilities shape");
    if (probs) {
        const float *pp = nnu_tensor_data(probs);
        CHECK(pp[0] == 1 && pp[6] == 0 && pp[3 + 2] + pp[6 + 3 + 2] > 0.999f, "probabilities outside/inside the box");
        CHECK_CLOSE(pp[6 + 4], 1.0 / (1.0 + exp(-2.0)), 1e-6, 0);
    }
    nnu_tensor_release(seg);
    nnu_tensor_release(seg2);
    nnu_tensor_release(probs);
    seg = NULL;
    /* regions: sigmoid > 0.5 painted in order; both positive at x=1 (ch0 2.5, ch1 0.5) -> 7 */
    o.n_regions = 2;
    o.regions_class_order[0] = 5;
    o.regions_class_order[1] = 7;
    CHECK_OK(nnu_export_case(logits, &p, &o, &seg, NULL));
    CHECK(equals(seg, (double[]){0, 0, 0, 0, 7, 7}, 6), "regions painted in order");
    nnu_tensor_release(seg);
    o.n_regions = 3;
    CHECK_FAILS(nnu_export_case(logits, &p, &o, &seg, NULL), NNU_STATUS_ERR_SHAPE, "regions");
    o = nnu_export_opts_default();
    p.bbox[2][1] = 3 + 1;                                           /* box does not fit */
    CHECK_FAILS(nnu_export_case(logits, &p, &o, &seg, NULL), NNU_STATUS_ERR_SHAPE, "crop box");
    nnu_tensor_release(r);
    nnu_tensor_release(logits);
}

static void test_prefetch(void) {
    char dir[] = "/tmp/nnu_test_export_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[3][256];
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/c%d_0000.nii.gz", dir, i);
        double v[24];
        for (int k = 0; k < 24; k++) v[k] = (k % 5) + i;          /* case i: values offset by i */
        nnu_tensor *t = from(NNU_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, v);
        nnu_image_info ref;
        memset(&ref, 0, sizeof ref);
        for (int a = 0; a < 3; a++) { ref.spacing_itk[a] = 1; ref.direction[4 * a] = 1; }
        CHECK_OK(nnu_nifti_write(path[i], t, &ref, NULL));
        nnu_tensor_release(t);
    }
    nnu_norm_scheme sch = NNU_NORM_NONE;
    int mask = 0;
    nnu_norm_ct_props ct;
    memset(&ct, 0, sizeof ct);
    nnu_preproc_config cfg = nnu_preproc_config_default();
    cfg.n_channels = 1;
    cfg.schemes = &sch;
    cfg.use_mask_for_norm = &mask;
    cfg.ct = &ct;
    for (int a = 0; a < 3; a++) { cfg.transpose_forward[a] = a; cfg.spacing[a] = 1; }
    cfg.spacing_ndim = 3;
    const char *imgs[4] = {path[0], path[1], path[2], "/nonexistent/x_0000.nii.gz"};
    nnu_preproc_case_spec cases[4];
    for (int i = 0; i < 4; i++) { memset(&cases[i], 0, sizeof cases[i]); cases[i].images = &imgs[i]; cases[i].n_images = 1; }
    /* in order, ring of 2, then the unreadable case fails in its turn */
    nnu_prefetch *pf = NULL;
    CHECK_OK(nnu_prefetch_start(&cfg, cases, 4, 2, &pf));
    for (int i = 0; i < 3 && pf; i++) {
        int64_t idx = -2;
        nnu_tensor *data = NULL;
        nnu_preproc_props props;
        CHECK_OK(nnu_prefetch_next(pf, &idx, &data, &props, NULL));
        CHECK(idx == i && data && data->shape[0] == 1 && nnu_tensor_numel(data) == 24, "case %d in order", i);
        double mn = 0;
        if (data) nnu_tensor_min(data, &mn);
        CHECK(mn == i, "case %d holds its own values (min %g)", i, mn);
        CHECK(props.shape_before_cropping[2] == 4 && props.nifti.ndim == 3, "case %d properties", i);
        nnu_tensor_release(data);
    }
    if (pf) {
        int64_t idx = 0;
        nnu_tensor *data = NULL;
        nnu_preproc_props props;
        CHECK_FAILS(nnu_prefetch_next(pf, &idx, &data, &props, NULL), NNU_STATUS_ERR_IO, "nonexistent");
    }
    nnu_prefetch_free(pf);
    /* freed while the worker waits on a full ring; and an empty list */
    pf = NULL;
    CHECK_OK(nnu_prefetch_start(&cfg, cases, 3, 1, &pf));
    nnu_prefetch_free(pf);
    pf = NULL;
    CHECK_OK(nnu_prefetch_start(&cfg, cases, 0, 1, &pf));
    if (pf) {
        int64_t idx = 0;
        nnu_tensor *data = NULL;
        nnu_preproc_props props;
        CHECK_OK(nnu_prefetch_next(pf, &idx, &data, &props, NULL));
        CHECK(idx == -1 && data == NULL, "empty list: end at once");
    }
    nnu_prefetch_free(pf);
    for (int i = 0; i < 3; i++) unlink(path[i]);
    rmdir(dir);
}

int main(void) {
    test_fold_ensemble();
    test_export_case();
    test_prefetch();
    return check_report();
}
