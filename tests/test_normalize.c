/* test_normalize.c: normalization schemes against the reference's test vectors
 * (nnunet-behaviour.md Appendix L.3, produced by running the reference classes).
 * The values are printed there with 9 significant digits, which identify a
 * float32 uniquely, so the comparison is exact: (float)reference == result. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "nnu_normalize.h"

#define N 24

static nnu_tensor *input_x(void) {   /* x[i,j,k] = ((12i + 4j + k)*7 mod 17) - 5, shape (2,3,4) */
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, &t));
    float *x = nnu_tensor_data(t);
    for (int f = 0; f < N; f++) x[f] = (float)(((f * 7) % 17) - 5);
    return t;
}

static void check_exact(const nnu_tensor *t, const double *want, const char *what) {
    const float *x = nnu_tensor_data(t);
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (x[i] != (float)want[i]) {
            if (bad++ < 4)
                fprintf(stderr, "  %s[%d] = %.9g, reference %.9g\n", what, i, (double)x[i], want[i]);
        }
    CHECK(bad == 0, "%s: %d of %d voxels differ from the reference", what, bad, N);
}

/* numpy float32 np.sum / mean / std and the z-score on larger arrays
 * (tests/fixtures/normalize/np_stats.bin from tests/gen/gen_resample_ref.py): exact */
static void test_numpy_fixture(void) {
    fixture fx;
    if (!fixture_load("tests/fixtures/normalize/np_stats.bin", "/usr/bin/python3 tests/gen/gen_resample_ref.py",
                      &fx)) {
        CHECK(0, "fixture missing");
        return;
    }
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "%s.x", names[i]);
        nnu_tensor *x = fixture_get(&fx, nm);
        snprintf(nm, sizeof nm, "%s.r", names[i]);
        nnu_tensor *r = fixture_get(&fx, nm);
        snprintf(nm, sizeof nm, "%s.z", names[i]);
        nnu_tensor *z = fixture_get(&fx, nm);
        if (!x || !r || !z) { CHECK(0, "fixture arrays %s", names[i]); continue; }
        const double *rv = nnu_tensor_data(r);
        int64_t n = nnu_tensor_numel(x);
        float s = nnu_np_sum_f32(nnu_tensor_data(x), n), mu, sd;
        nnu_np_mean_std_f32(nnu_tensor_data(x), n, &mu, &sd);
        CHECK(s == (float)rv[0] && mu == (float)rv[1] && sd == (float)rv[2],
              "%s (n=%lld): sum %.9g/%.9g mean %.9g/%.9g std %.9g/%.9g", names[i], (long long)n, (double)s,
              rv[0], (double)mu, rv[1], (double)sd, rv[2]);
        CHECK_OK(nnu_normalize(x, NNU_NORM_ZSCORE, NULL, NULL));
        int64_t bad = 0;
        for (int64_t k = 0; k < n; k++) bad += ((float *)nnu_tensor_data(x))[k] != ((float *)nnu_tensor_data(z))[k];
        CHECK(bad == 0, "%s: z-score differs from numpy at %lld voxels", names[i], (long long)bad);
    }
    /* transposed, cropped views: numpy sums them in the untransposed order */
    const int tf[3] = {2, 0, 1};
    for (int i = 0; i < 4; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "t%d.x", i);
        nnu_tensor *x = fixture_get(&fx, nm), *x2 = NULL;
        snprintf(nm, sizeof nm, "t%d.z", i);
        nnu_tensor *z = fixture_get(&fx, nm);
        if (!x || !z) { CHECK(0, "fixture arrays t%d", i); continue; }
        CHECK_OK(nnu_tensor_clone(x, &x2));
        CHECK_OK(nnu_normalize_transposed(x2, NNU_NORM_ZSCORE, NULL, NULL, tf));
        int64_t n = nnu_tensor_numel(x), bad = 0;
        for (int64_t k = 0; k < n; k++) bad += ((float *)nnu_tensor_data(x2))[k] != ((float *)nnu_tensor_data(z))[k];
        CHECK(bad == 0, "transposed view %d: %lld of %lld voxels differ from numpy", i, (long long)bad, (long long)n);
        nnu_tensor_release(x2);
    }
    CHECK_FAILS(nnu_normalize_transposed(fixture_get(&fx, "t0.x"), NNU_NORM_ZSCORE, NULL, NULL, (int[]){0, 0, 1}),
                NNU_STATUS_ERR_ARG, "not a permutation");
    fixture_free(&fx);
}

int main(void) {
    test_numpy_fixture();
    static const double zs[N] = {-1.53682601, -0.110379778, 1.31606638, -0.721713841, 0.704732299,
        -1.33304799, 0.0933982432, 1.51984441, -0.517935812, 0.908510327, -1.12926996, 0.297176272,
        1.72362244, -0.314157814, 1.11228836, -0.925491929, 0.50095427, -1.53682601, -0.110379778,
        1.31606638, -0.721713841, 0.704732299, -1.33304799, 0.0933982432};
    static const double zsm[N] = {-5, 2, 9, -1, 0.64886272, -1.37218511, 0.0425483584, 1.45728183,
        -0.563766003, 0.850967526, -1.1700803, 0.244653136, 1.65938663, -0.361661196, 1.05307233,
        -0.967975497, 0.446757913, -1.5742898, -0.159556419, 1.25517714, -0.76587075, 0.64886272,
        -1.37218511, 3};
    static const double ct1[N] = {-1.41176474, -0.352941185, 1.29411769, -1.05882359, 0.588235319,
        -1.41176474, -0.117647059, 1.35294116, -0.823529422, 0.823529422, -1.41176474, 0.117647059,
        1.35294116, -0.588235319, 1.05882359, -1.29411769, 0.352941185, -1.41176474, -0.352941185,
        1.29411769, -1.05882359, 0.588235319, -1.41176474, -0.117647059};
    static const double ct2[N] = {-0.939674735, -0.904878974, -0.818646014, -0.939674735, -0.844364643,
        -0.939674735, -0.889750421, -0.818646014, -0.935136199, -0.829236031, -0.939674735, -0.874621809,
        -0.818646014, -0.920007586, -0.818646014, -0.939674735, -0.859493196, -0.939674735, -0.904878974,
        -0.818646014, -0.939674735, -0.844364643, -0.939674735, -0.889750421};
    static const double r01[N] = {0, 0.4375, 0.875, 0.25, 0.6875, 0.0625, 0.5, 0.9375, 0.3125, 0.75,
        0.125, 0.5625, 1, 0.375, 0.8125, 0.1875, 0.625, 0, 0.4375, 0.875, 0.25, 0.6875, 0.0625, 0.5};
    static const double rgb[N] = {0, 0.0431372561, 0.0862745121, 0.129411772, 0.172549024,
        0.215686277, 0.258823544, 0.301960796, 0.345098048, 0.388235301, 0.431372553, 0.474509805,
        0.517647088, 0.56078434, 0.603921592, 0.647058845, 0.690196097, 0.733333349, 0.776470602,
        0.819607854, 0.862745106, 0.905882359, 0.949019611, 0.992156863};

    /* statistics: mu = 2.54166675, sigma = 4.90730047 */
    nnu_tensor *x = input_x();
    float mu, sd;
    nnu_np_mean_std_f32(nnu_tensor_data(x), N, &mu, &sd);
    CHECK(mu == 2.54166675f && sd == 4.90730047f, "mu %.9g sd %.9g", (double)mu, (double)sd);
    CHECK_OK(nnu_normalize(x, NNU_NORM_ZSCORE, NULL, NULL));
    check_exact(x, zs, "zscore");
    nnu_tensor_release(x);

    /* masked: label -1 at [0,0,:] and [1,2,3], 2 at [1,1,1] */
    x = input_x();
    nnu_tensor *lab = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, (int64_t[]){1, 2, 3, 4}, &lab));
    float *l = nnu_tensor_data(lab);
    for (int k = 0; k < 4; k++) l[k] = -1;
    l[23] = -1;
    l[12 + 4 + 1] = 2;
    CHECK_OK(nnu_normalize(x, NNU_NORM_ZSCORE, lab, NULL));
    check_exact(x, zsm, "zscore masked");
    nnu_tensor_release(x);
    /* an empty mask changes nothing */
    x = input_x();
    for (int i = 0; i < N; i++) l[i] = -1;
    CHECK_OK(nnu_normalize(x, NNU_NORM_ZSCORE, lab, NULL));
    CHECK(((float *)nnu_tensor_data(x))[0] == -5.0f, "empty mask leaves the image");
    nnu_tensor_release(x);
    nnu_tensor_release(lab);

    x = input_x();
    CHECK_OK(nnu_normalize(x, NNU_NORM_CT, NULL, &(nnu_norm_ct_props){3.5, 4.25, -2.5, 9.25}));
    check_exact(x, ct1, "CT 1");
    nnu_tensor_release(x);
    x = input_x();
    CHECK_OK(nnu_normalize(x, NNU_NORM_CT, NULL, &(nnu_norm_ct_props){61.8125, 66.1, -0.3, 7.7}));
    check_exact(x, ct2, "CT 2");
    CHECK_FAILS(nnu_normalize(x, NNU_NORM_CT, NULL, NULL), NNU_STATUS_ERR_ARG, "intensity properties");
    nnu_tensor_release(x);

    x = input_x();
    CHECK_OK(nnu_normalize(x, NNU_NORM_RESCALE_01, NULL, NULL));
    check_exact(x, r01, "rescale 0..1");
    nnu_tensor_release(x);

    x = input_x();
    for (int i = 0; i < N; i++) ((float *)nnu_tensor_data(x))[i] = (float)(11 * i);
    CHECK_OK(nnu_normalize(x, NNU_NORM_RGB_01, NULL, NULL));
    check_exact(x, rgb, "rgb 0..1");
    ((float *)nnu_tensor_data(x))[3] = 256;
    CHECK_FAILS(nnu_normalize(x, NNU_NORM_RGB_01, NULL, NULL), NNU_STATUS_ERR_ARG, "[0, 255]");
    nnu_tensor_release(x);

    /* constant image 5.0 (2x2x2): z-score and rescale give zeros */
    for (int s = 0; s < 2; s++) {
        nnu_tensor *c = NULL;
        CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, (int64_t[]){2, 2, 2}, &c));
        CHECK_OK(nnu_tensor_fill(c, 5.0));
        CHECK_OK(nnu_normalize(c, s ? NNU_NORM_RESCALE_01 : NNU_NORM_ZSCORE, NULL, NULL));
        double mx, mn;
        CHECK_OK(nnu_tensor_max(c, &mx));
        CHECK_OK(nnu_tensor_min(c, &mn));
        CHECK(mx == 0 && mn == 0, "constant image -> zeros (scheme %d)", s);
        nnu_tensor_release(c);
    }

    /* scheme mapping (§3.1, verified by running get_normalization_scheme) */
    struct { const char *name; nnu_norm_scheme s; } map[] = {
        {"CT", NNU_NORM_CT}, {"ct", NNU_NORM_CT}, {" CT", NNU_NORM_ZSCORE}, {"CT2", NNU_NORM_ZSCORE},
        {"ctnormalization", NNU_NORM_ZSCORE}, {"MRI", NNU_NORM_ZSCORE}, {"T2", NNU_NORM_ZSCORE},
        {"zscore", NNU_NORM_ZSCORE}, {"noNorm", NNU_NORM_NONE}, {"NONORM", NNU_NORM_NONE},
        {"RGB_to_0_1", NNU_NORM_RGB_01}, {"rescale_to_0_1", NNU_NORM_RESCALE_01}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        CHECK(nnu_normalize_scheme_for_channel(map[i].name) == map[i].s, "scheme of '%s'", map[i].name);
    nnu_norm_scheme s;
    CHECK_OK(nnu_normalize_scheme_from_name("CTNormalization", &s));
    CHECK(s == NNU_NORM_CT, "from name");
    CHECK_FAILS(nnu_normalize_scheme_from_name("Foo", &s), NNU_STATUS_ERR_ARG, "unknown");
    return check_report();
}
