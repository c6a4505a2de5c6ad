/* test_ensemble.c: core/nnu_ensemble.h on hand-computed cases (STYLE R26 tier 1):
 * the float32 mean of .npz files (exact binary fractions, and a float32 rounding
 * case), argmax ties and NaN as numpy, regions in order, u16 outputs, and the
 * errors for mismatched shapes and missing files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_ensemble.h"
#include "nnu_npz.h"

static nnu_tensor *make(int ndim, const int64_t *shape, const float *v) {
    nnu_tensor *t = NULL;
    if (nnu_tensor_new(NNU_DTYPE_F32, ndim, shape, &t)) return NULL;
    memcpy(nnu_tensor_data(t), v, sizeof(float) * (size_t)nnu_tensor_numel(t));
    return t;
}

static int save(const char *path, const nnu_tensor *t) {
    const char *key = "probabilities";
    return nnu_npz_save(path, 1, &key, &t) == NNU_STATUS_OK;
}

int main(void) {
    /* argmax over (3, 4): ties -> lowest channel, a NaN wins */
    {
        const int64_t sh[2] = {3, 4};
        const float v[12] = {0.5f, 0.2f, NAN, 0.1f,
                             0.5f, 0.7f, 0.9f, 0.1f,
                             0.0f, 0.1f, 1.0f, 0.8f};
        nnu_tensor *p = make(2, sh, v), *s = NULL;
        CHECK_OK(nnu_ensemble_argmax(p, &s));
        const uint8_t want[4] = {0, 1, 0, 2};
        CHECK(s && s->dtype == NNU_DTYPE_U8 && s->ndim == 1 && s->shape[0] == 4 &&
              memcmp(nnu_tensor_data(s), want, 4) == 0, "argmax (3,4)");
        nnu_tensor_release(s);
        nnu_tensor_release(p);
    }
    /* 300 channels -> u16 labels */
    {
        const int64_t sh[2] = {300, 1};
        float v[300] = {0};
        v[299] = 1.0f;
        nnu_tensor *p = make(2, sh, v), *s = NULL;
        CHECK_OK(nnu_ensemble_argmax(p, &s));
        CHECK(s && s->dtype == NNU_DTYPE_U16 && ((uint16_t *)nnu_tensor_data(s))[0] == 299, "argmax u16");
        nnu_tensor_release(s);
        nnu_tensor_release(p);
    }
    /* regions: zeros, then p_i > 0.5 painted in order */
    {
        const int64_t sh[2] = {2, 4};
        const float v[8] = {0.6f, 0.4f, 0.9f, 0.5f, 0.2f, 0.7f, 0.6f, 0.2f};
        const int32_t order[2] = {1, 2};
        nnu_tensor *p = make(2, sh, v), *s = NULL;
        CHECK_OK(nnu_ensemble_regions(p, order, 2, &s));
        const uint8_t want[4] = {1, 2, 2, 0};
        CHECK(s && memcmp(nnu_tensor_data(s), want, 4) == 0, "regions");
        nnu_tensor_release(s);
        CHECK_FAILS(nnu_ensemble_regions(p, order, 1, &s), NNU_STATUS_ERR_SHAPE, "1 regions");
        nnu_tensor_release(p);
    }
    /* mean of three files: ((a + b) + c) / 3 in float32 */
    {
        char dir[] = "/tmp/nnu_test_ensemble_XXXXXX";
        CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        char paths[4][96];
        const int64_t sh[2] = {2, 2};
        const float a[4] = {0.1f, 0.5f, 0.25f, 1.0f}, b[4] = {0.7f, 0.25f, 0.25f, 0.0f},
                    c[4] = {0.3f, 0.125f, 0.5f, 0.5f};
        const float *vals[3] = {a, b, c};
        for (int i = 0; i < 3; i++) {
            snprintf(paths[i], sizeof paths[i], "%s/m%d.npz", dir, i);
            nnu_tensor *t = make(2, sh, vals[i]);
            CHECK(t && save(paths[i], t), "write %s", paths[i]);
            nnu_tensor_release(t);
        }
        const char *p3[3] = {paths[0], paths[1], paths[2]};
        nnu_tensor *m = NULL;
        CHECK_OK(nnu_ensemble_mean_npz(p3, 3, "probabilities", &m));
        if (m) {
            const float *got = nnu_tensor_data(m);
            for (int i = 0; i < 4; i++) {
                volatile float s = a[i] + b[i];   /* volatile: one float32 rounding per step */
                s = s + c[i];
                s = s / 3.0f;
                CHECK(got[i] == s, "mean[%d] = %.9g, want %.9g", i, got[i], (double)s);
            }
            CHECK(got[1] == 0.875f / 3.0f && got[2] == 1.0f / 3.0f, "exact values");
        }
        nnu_tensor_release(m);
        /* a file of another shape: ERR_SHAPE naming both files */
        snprintf(paths[3], sizeof paths[3], "%s/bad.npz", dir);
        const int64_t sh3[2] = {2, 3};
        const float z[6] = {0};
        nnu_tensor *t = make(2, sh3, z);
        CHECK(t && save(paths[3], t), "write bad.npz");
        nnu_tensor_release(t);
        const char *pb[2] = {paths[0], paths[3]};
        CHECK_FAILS(nnu_ensemble_mean_npz(pb, 2, "probabilities", &m), NNU_STATUS_ERR_SHAPE, "bad.npz");
        CHECK(m == NULL, "no output on failure");
        const char *pm[2] = {paths[0], "/nonexistent/x.npz"};
        CHECK(nnu_ensemble_mean_npz(pm, 2, "probabilities", &m) != NNU_STATUS_OK && m == NULL, "missing file");
        for (int i = 0; i < 4; i++) unlink(paths[i]);
        rmdir(dir);
    }
    /* add: shape mismatch and non-f32 accumulator are argument errors */
    {
        const int64_t s2[1] = {2}, s3[1] = {3};
        nnu_tensor *acc = NULL, *x = NULL, *d = NULL;
        CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 1, s2, &acc));
        CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 1, s3, &x));
        CHECK_OK(nnu_tensor_new(NNU_DTYPE_F64, 1, s2, &d));
        CHECK_FAILS(nnu_ensemble_add(acc, x), NNU_STATUS_ERR_SHAPE, "shape mismatch");
        CHECK_FAILS(nnu_ensemble_add(d, acc), NNU_STATUS_ERR_ARG, "f32");
        CHECK_FAILS(nnu_ensemble_divide(acc, 0), NNU_STATUS_ERR_ARG, "n = 0");
        nnu_tensor_release(acc);
        nnu_tensor_release(x);
        nnu_tensor_release(d);
    }
    return check_report();
}
