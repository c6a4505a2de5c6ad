/* test_fingerprint.c: the fingerprint core against numpy
 * (tests/fixtures/fingerprint/np_random.bin from tests/gen/gen_fingerprint_ref.py):
 * RandomState(1234) raw words and randint, the float32/float64 statistics
 * (mean, median, std, min, max, percentiles; exact), one synthetic case (crop,
 * relative size, foreground samples drawn as RandomState(1234).choice), and the
 * whole-dataset driver on in-memory cases. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "nnu_fingerprint.h"

#define REGEN "/usr/bin/python3 tests/gen/gen_fingerprint_ref.py"

static const double *arr(const fixture *fx, const char *name, int64_t *n) {
    nnu_tensor *t = fixture_get(fx, name);
    CHECK(t != NULL, "fixture array %s", name);
    if (n) *n = t ? nnu_tensor_numel(t) : 0;
    return t ? nnu_tensor_data(t) : NULL;
}

static void test_random(const fixture *fx) {
    nnu_nprandom r;
    nnu_nprandom_seed(&r, 1234);
    const double *raw = arr(fx, "raw32", NULL);
    int ok = 1;
    for (int i = 0; raw && i < 8; i++) ok &= nnu_nprandom_u32(&r) == (uint32_t)raw[i];
    CHECK(ok, "RandomState(1234) raw 32-bit words");
    for (int k = 0; k < 7; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "randint%d", k);
        int64_t n;
        const double *v = arr(fx, nm, &n);
        if (!v) continue;
        int64_t got[12];
        nnu_nprandom_seed(&r, 1234);
        nnu_nprandom_randint(&r, (int64_t)v[0], 12, got);
        ok = 1;
        for (int i = 0; i < 12; i++) ok &= got[i] == (int64_t)v[1 + i];
        CHECK(ok, "randint(0, %.0f): first %lld vs %.0f", v[0], (long long)got[0], v[1]);
    }
}

static void test_stats(const fixture *fx) {
    const char *names[] = {"s1", "s2", "s3", "s4", "s5"};
    const char *keys[] = {"mean", "median", "std", "min", "max", "p99.5", "p00.5"};
    for (int s = 0; s < 5; s++) {
        for (int as64 = 0; as64 < 2; as64++) {
            char nm[16];
            snprintf(nm, sizeof nm, "%s.x", names[s]);
            nnu_tensor *x = NULL;
            CHECK_OK(nnu_tensor_clone(fixture_get(fx, nm), &x));   /* stats reorder in place */
            snprintf(nm, sizeof nm, "%s.%s", names[s], as64 ? "f64" : "f32");
            const double *ref = arr(fx, nm, NULL);
            nnu_intensity_stats st;
            CHECK_OK(nnu_fingerprint_intensity_stats(nnu_tensor_data(x), nnu_tensor_numel(x), as64, &st));
            double got[7] = {st.mean, st.median, st.std, st.min, st.max, st.percentile_99_5, st.percentile_00_5};
            for (int k = 0; ref && k < 7; k++)
                CHECK(got[k] == ref[k], "%s %s (n=%lld, %s): %.17g, numpy %.17g", names[s], keys[k],
                      (long long)nnu_tensor_numel(x), as64 ? "float64" : "float32", got[k], ref[k]);
            nnu_tensor_release(x);
        }
    }
    float one = 1;
    nnu_intensity_stats st;
    CHECK_FAILS(nnu_fingerprint_intensity_stats(&one, 0, 0, &st), NNU_STATUS_ERR_ARG, "zero samples");
}

static void test_case(const fixture *fx) {
    nnu_tensor *img = fixture_get(fx, "case.img"), *seg = fixture_get(fx, "case.seg");
    const double *res = arr(fx, "case.res", NULL);
    nnu_tensor *smp = fixture_get(fx, "case.samples");
    if (!img || !seg || !res || !smp) return;
    float samples[2 * 50];
    nnu_fingerprint_case c;
    CHECK_OK(nnu_fingerprint_case_tensors(img, seg, (double[]){2, 1, 1}, 50, 1234, samples, 50, &c));
    CHECK(c.shape_after_crop[0] == (int64_t)res[0] && c.shape_after_crop[1] == (int64_t)res[1] &&
          c.shape_after_crop[2] == (int64_t)res[2], "shape after crop");
    CHECK(c.relative_size_after_cropping == res[3], "relative size %.17g vs %.17g",
          c.relative_size_after_cropping, res[3]);
    for (int a = 0; a < 3; a++)
        CHECK(c.bbox[a][0] == (int64_t)res[4 + 2 * a] && c.bbox[a][1] == (int64_t)res[5 + 2 * a], "bbox axis %d", a);
    CHECK(c.spacing[0] == 2 && c.n_foreground > 0, "spacing and foreground");
    int same = 1;
    for (int i = 0; i < 100; i++) same &= samples[i] == ((float *)nnu_tensor_data(smp))[i];
    CHECK(same, "foreground samples = RandomState(1234).choice per channel");
}

/* in-memory dataset: case i = the fixture case, case 2 without foreground */
typedef struct { nnu_tensor *img, *seg; } mem_ctx;

static nnu_status mem_load(int64_t i, void *vctx, nnu_tensor **image, nnu_tensor **label, double sp[3]) {
    mem_ctx *m = vctx;
    sp[0] = 1 + (double)i; sp[1] = sp[2] = 0.5;
    nnu_tensor_retain(m->img);
    *image = m->img;
    if (i == 2) return nnu_tensor_new(NNU_DTYPE_F32, 4, m->seg->shape, label);
    nnu_tensor_retain(m->seg);
    *label = m->seg;
    return NNU_STATUS_OK;
}

static void test_extract(const fixture *fx) {
    mem_ctx m = {fixture_get(fx, "case.img"), fixture_get(fx, "case.seg")};
    if (!m.img) return;
    nnu_fingerprint fp;
    nnu_fingerprint_opts o = nnu_fingerprint_opts_default();
    o.num_samples_total = 300;       /* 100 per case */
    o.progress = 0;
    o.n_threads = 2;
    CHECK_OK(nnu_fingerprint_extract(3, 2, mem_load, &m, &o, &fp));
    CHECK(fp.num_samples_per_case == 100, "samples per case %lld", (long long)fp.num_samples_per_case);
    CHECK(fp.cases[2].n_foreground == 0 && fp.cases[1].spacing[0] == 2, "per-case records");
    /* cases 0 and 1 draw the same samples; case 2 has none -> float64 statistics of 2 x 100 */
    float s2[2 * 200];
    nnu_fingerprint_case c;
    CHECK_OK(nnu_fingerprint_case_tensors(m.img, m.seg, NULL, 100, 1234, s2, 200, &c));
    memcpy(s2 + 100, s2, 100 * sizeof(float));
    memcpy(s2 + 300, s2 + 200, 100 * sizeof(float));
    nnu_intensity_stats ref;
    CHECK_OK(nnu_fingerprint_intensity_stats(s2, 200, 1, &ref));
    CHECK(fp.channels[0].mean == ref.mean && fp.channels[0].percentile_99_5 == ref.percentile_99_5,
          "dataset statistics of channel 0");
    CHECK(fp.median_relative_size_after_cropping == c.relative_size_after_cropping, "median relative size");
    nnu_fingerprint_free(&fp);
    CHECK_FAILS(nnu_fingerprint_extract(0, 1, mem_load, &m, &o, &fp), NNU_STATUS_ERR_ARG, "0 cases");
    nnu_fingerprint_free(&fp);
}

int main(void) {
    fixture fx;
    if (!fixture_load("tests/fixtures/fingerprint/np_random.bin", REGEN, &fx)) {
        CHECK(0, "fixture missing");
        return check_report();
    }
    test_random(&fx);
    test_stats(&fx);
    test_case(&fx);
    test_extract(&fx);
    fixture_free(&fx);
    return check_report();
}
