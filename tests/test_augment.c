/* test_augment.c: the augmentation transforms (nnu_augment.h, §8).
 *   - initial patch size: every row of nnunet-behaviour.md L.8 (exact);
 *   - spatial: identity → centre crop (exact, with padding), identity matrix through
 *     the interpolation path = crop, a 90° rotation = the np.rot90 permutation,
 *     scaling ×2 = scipy map_coordinates(order 1), rotation+scaling 3-D and 2-D =
 *     torch grid_sample (data) and the per-label one-hot vote (seg), dummy-2D slices
 *     independent, elastic: alpha 0 = identity, the smoothing = scipy gaussian_filter,
 *     labels stay in the label set (tests/fixtures/augment/augment_ref.bin);
 *   - intensity: blur (scipy), low resolution (torch interpolate), gamma (three
 *     variants), contrast (numpy formulas), brightness and noise statistics;
 *   - mirror: exact flips, twice = identity; DS seg downsampling (torch nearest-exact);
 *   - pipeline: validation errors, determinism per seed, labels after the v2 steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "check.h"
#include "nnu_augment.h"
#include "refio.h"

#define FIXTURE "tests/fixtures/augment/augment_ref.bin"
#define REGEN "/usr/bin/python3 tests/gen/gen_augment_ref.py"

/* float32 interpolation against torch's float32 grid: a few ulps of O(1) values */
static const double TOL_INTERP = 2e-5;
/* double-accumulated statistics vs float64 numpy, stored as float32 */
static const double TOL_STAT = 1e-5;

static nnu_tensor *fx(const char *name) { return refio_load(FIXTURE, name, REGEN); }
static const float *F32(nnu_tensor *t) { return t ? (const float *)nnu_tensor_data(t) : NULL; }

static int64_t n3(const int64_t s[3]) { return s[0] * s[1] * s[2]; }

/* compares n floats; prints the first mismatches and the max difference */
static void check_array(const char *what, const float *got, const float *ref, int64_t n, double atol) {
    if (!ref) { CHECK(0, "%s: fixture missing", what); return; }
    double maxd = 0.0;
    int64_t bad = 0, at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= atol + 1e-6 * fabs(ref[i]))) {
            if (bad < 3) fprintf(stderr, "  %s[%lld]: got %.8g ref %.8g\n", what, (long long)i, got[i], ref[i]);
            bad++;
        }
        if (d > maxd) { maxd = d; at = i; }
    }
    if (getenv("AUG_VERBOSE")) fprintf(stderr, "%s: max %.3g\n", what, maxd);
    CHECK(bad == 0, "%s: %lld of %lld differ, max |d| %.3g at %lld", what, (long long)bad, (long long)n, maxd,
          (long long)at);
}

static void seg_from_f32(const float *f, int16_t *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) s[i] = (int16_t)f[i];
}

/* ------------------------------------------------------------------ L.8 */

static void test_initial_patch(void) {
    static const struct { int nd; int64_t p[3]; int dummy; double deg; int64_t want[3]; } rows[] = {
        {3, {40, 56, 40}, 0, 30, {73, 80, 64}},      {3, {128, 128, 128}, 0, 30, {205, 205, 205}},
        {3, {64, 192, 160}, 0, 30, {178, 289, 200}}, {3, {80, 192, 160}, 0, 30, {194, 289, 210}},
        {3, {96, 160, 160}, 0, 30, {191, 257, 219}}, {3, {24, 72, 72}, 0, 30, {66, 115, 87}},
        {3, {20, 320, 256}, 1, 180, {20, 376, 376}}, {3, {28, 256, 256}, 1, 180, {28, 301, 301}},
        {3, {16, 320, 320}, 1, 180, {16, 376, 376}}, {3, {12, 48, 48}, 1, 180, {12, 56, 56}},
        {2, {56, 40}, 0, 180, {65, 65}},             {2, {320, 256}, 0, 180, {376, 376}},
        {2, {512, 512}, 0, 180, {602, 602}},         {2, {192, 160}, 0, 180, {225, 225}},
        {2, {384, 160}, 0, 15, {485, 188}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double r = rows[i].deg / 360.0 * 2.0 * M_PI, rot[3] = {r, r, r};
        int64_t out[3] = {0, 0, 0};
        nnu_aug_initial_patch_size(rows[i].nd, rows[i].p, rot, 0.85, rows[i].dummy, out);
        int ok = 1;
        for (int a = 0; a < rows[i].nd; a++) ok &= out[a] == rows[i].want[a];
        CHECK(ok, "L.8 row %zu: got (%lld, %lld, %lld)", i, (long long)out[0], (long long)out[1], (long long)out[2]);
    }
}

/* ------------------------------------------------------------------ spatial */

typedef struct sample { float *data; int16_t *seg; nnu_aug_buf b; } sample;

static void sample_new(sample *s, int c, int cs, int64_t d, int64_t h, int64_t w) {
    int64_t n = d * h * w;
    s->data = calloc((size_t)(n * c), sizeof(float));
    s->seg = cs ? calloc((size_t)(n * cs), sizeof(int16_t)) : NULL;
    s->b = (nnu_aug_buf){s->data, c, s->seg, cs, {d, h, w}};
}
static void sample_free(sample *s) { free(s->data); free(s->seg); }

static void test_crop(void) {
    /* in (2 ch, 5, 6, 7) with value = index; out (3, 8, 4): axis 1 padded */
    sample in, out, out2;
    sample_new(&in, 2, 1, 5, 6, 7);
    sample_new(&out, 2, 1, 3, 8, 4);
    sample_new(&out2, 2, 1, 3, 8, 4);
    int64_t n = n3(in.b.shape);
    for (int64_t i = 0; i < 2 * n; i++) in.data[i] = (float)i + 1.0f;
    for (int64_t i = 0; i < n; i++) in.seg[i] = (int16_t)(i % 3);
    nnu_aug_spatial_params p;
    nnu_aug_spatial_params_init(&p);
    CHECK_OK(nnu_aug_spatial(&in.b, &out.b, &p, NULL, NULL));
    /* start = S//2 − p//2 = (1, −1, 1) */
    int ok = 1;
    for (int c = 0; c < 2; c++)
        for (int64_t d = 0; d < 3; d++)
            for (int64_t h = 0; h < 8; h++)
                for (int64_t w = 0; w < 4; w++) {
                    int64_t sd = d + 1, sh = h - 1, sw = w + 1, o = ((c * 3 + d) * 8 + h) * 4 + w;
                    int in_img = sh >= 0 && sh < 6;
                    float want = in_img ? in.data[c * n + (sd * 6 + sh) * 7 + sw] : 0.0f;
                    ok &= out.data[o] == want;
                    if (c == 0) ok &= out.seg[o] == (in_img ? in.seg[(sd * 6 + sh) * 7 + sw] : -1);
                }
    CHECK(ok, "identity = centre crop with zero / -1 padding");

    /* identity matrix through the interpolation path, even size differences: same crop */
    sample big, o1, o2;
    sample_new(&big, 1, 1, 6, 8, 10);
    sample_new(&o1, 1, 1, 4, 4, 6);
    sample_new(&o2, 1, 1, 4, 4, 6);
    for (int64_t i = 0; i < n3(big.b.shape); i++) { big.data[i] = (float)(i * 7 % 13); big.seg[i] = (int16_t)(i % 4); }
    nnu_aug_spatial_params q;
    nnu_aug_spatial_params_init(&q);
    CHECK_OK(nnu_aug_spatial(&big.b, &o1.b, &q, NULL, NULL));
    q.affine = 1;
    CHECK_OK(nnu_aug_spatial(&big.b, &o2.b, &q, NULL, NULL));
    CHECK(memcmp(o1.data, o2.data, 96 * sizeof(float)) == 0 && memcmp(o1.seg, o2.seg, 96 * sizeof(int16_t)) == 0,
          "identity affine = crop (exact)");
    sample_free(&in); sample_free(&out); sample_free(&out2);
    sample_free(&big); sample_free(&o1); sample_free(&o2);
}

static void test_rot90(void) {
    /* Rx(π/2) rotates the (H, W) plane: c_h = −u_w, c_w = u_h, so
     * out[d, h, w] = in[d, W−1−w, h] = np.rot90(in, k=-1, axes=(1, 2)) */
    sample in, out;
    sample_new(&in, 1, 1, 4, 6, 6);
    sample_new(&out, 1, 1, 4, 6, 6);
    for (int64_t i = 0; i < 144; i++) { in.data[i] = (float)(i * 37 % 101) / 10.0f; in.seg[i] = (int16_t)(i * 5 % 3); }
    nnu_aug_spatial_params p;
    nnu_aug_spatial_params_init(&p);
    p.affine = 1;
    p.angle[0] = M_PI / 2;
    CHECK_OK(nnu_aug_spatial(&in.b, &out.b, &p, NULL, NULL));
    int ok_d = 1, ok_s = 1;
    for (int64_t d = 0; d < 4; d++)
        for (int64_t h = 0; h < 6; h++)
            for (int64_t w = 0; w < 6; w++) {
                int64_t o = (d * 6 + h) * 6 + w, s = (d * 6 + (5 - w)) * 6 + h;
                ok_d &= out.data[o] == in.data[s];
                ok_s &= out.seg[o] == in.seg[s];
            }
    CHECK(ok_d, "90 degree rotation: data is the rot90 permutation (exact)");
    CHECK(ok_s, "90 degree rotation: seg is the rot90 permutation");
    p.seg_nearest = 1;
    CHECK_OK(nnu_aug_spatial(&in.b, &out.b, &p, NULL, NULL));
    ok_s = 1;
    for (int64_t d = 0; d < 4; d++)
        for (int64_t h = 0; h < 6; h++)
            for (int64_t w = 0; w < 6; w++) ok_s &= out.seg[(d * 6 + h) * 6 + w] == in.seg[(d * 6 + (5 - w)) * 6 + h];
    CHECK(ok_s, "90 degree rotation, nearest seg: the same permutation");
    /* Rz(π/2) on a (6, 6, 4) volume: plane (0, 1) */
    sample in2, out2;
    sample_new(&in2, 1, 0, 6, 6, 4);
    sample_new(&out2, 1, 0, 6, 6, 4);
    memcpy(in2.data, in.data, 144 * sizeof(float));
    nnu_aug_spatial_params_init(&p);
    p.affine = 1;
    p.angle[2] = M_PI / 2;
    CHECK_OK(nnu_aug_spatial(&in2.b, &out2.b, &p, NULL, NULL));
    ok_d = 1;
    for (int64_t d = 0; d < 6; d++)   /* c_d = −u_h, c_h = u_d: out[d, h, w] = in[5−h, d, w] */
        for (int64_t h = 0; h < 6; h++)
            for (int64_t w = 0; w < 4; w++) ok_d &= out2.data[(d * 6 + h) * 4 + w] == in2.data[((5 - h) * 6 + d) * 4 + w];
    CHECK(ok_d, "Rz 90 degrees permutes axes 0 and 1");
    sample_free(&in); sample_free(&out); sample_free(&in2); sample_free(&out2);
}

static void test_spatial_reference(void) {
    nnu_tensor *x = fx("sp3_in"), *sg = fx("sp3_seg"), *ro = fx("sp3_out"), *rs = fx("sp3_segout"), *sc = fx("sc2_out");
    if (!x || !sg || !ro || !rs || !sc) { CHECK(0, "spatial fixtures"); return; }
    sample in, out;
    sample_new(&in, 1, 1, 9, 10, 11);
    memcpy(in.data, F32(x), 990 * sizeof(float));
    seg_from_f32(F32(sg), in.seg, 990);
    sample_new(&out, 1, 1, 7, 8, 6);
    nnu_aug_spatial_params p;
    nnu_aug_spatial_params_init(&p);
    p.affine = 1;
    p.angle[0] = 0.3; p.angle[1] = -0.2; p.angle[2] = 0.5;
    p.scale[0] = p.scale[1] = p.scale[2] = 0.9;
    CHECK_OK(nnu_aug_spatial(&in.b, &out.b, &p, NULL, NULL));
    check_array("rot+scale 3-D data vs grid_sample", out.data, F32(rs) ? F32(ro) : NULL, 336, TOL_INTERP);
    float segf[336];
    for (int i = 0; i < 336; i++) segf[i] = out.seg[i];
    check_array("rot+scale 3-D seg vs one-hot vote", segf, F32(rs), 336, 0.0);

    /* scaling by 2 against scipy map_coordinates on the same grid */
    sample o2;
    sample_new(&o2, 1, 1, 5, 6, 7);
    nnu_aug_spatial_params_init(&p);
    p.affine = 1;
    p.scale[0] = p.scale[1] = p.scale[2] = 2.0;
    CHECK_OK(nnu_aug_spatial(&in.b, &o2.b, &p, NULL, NULL));
    check_array("scale x2 vs map_coordinates", o2.data, F32(sc), 210, TOL_INTERP);
    sample_free(&in); sample_free(&out); sample_free(&o2);
    nnu_tensor_release(x); nnu_tensor_release(sg); nnu_tensor_release(ro); nnu_tensor_release(rs);
    nnu_tensor_release(sc);

    /* 2-D (slice-wise) */
    x = fx("sp2_in"); sg = fx("sp2_seg"); ro = fx("sp2_out"); rs = fx("sp2_segout");
    if (!x || !sg || !ro || !rs) { CHECK(0, "2-D fixtures"); return; }
    sample_new(&in, 1, 1, 3, 12, 13);
    memcpy(in.data, F32(x), 468 * sizeof(float));
    seg_from_f32(F32(sg), in.seg, 468);
    sample_new(&out, 1, 1, 3, 8, 9);
    nnu_aug_spatial_params_init(&p);
    p.dim = 2;
    p.affine = 1;
    p.angle[2] = 0.4;
    p.scale[1] = p.scale[2] = 1.1;
    CHECK_OK(nnu_aug_spatial(&in.b, &out.b, &p, NULL, NULL));
    check_array("2-D data vs grid_sample", out.data, F32(ro), 216, TOL_INTERP);
    float s2[216];
    for (int i = 0; i < 216; i++) s2[i] = out.seg[i];
    check_array("2-D seg vote", s2, F32(rs), 216, 0.0);

    /* dummy-2D: each output slice depends on its own input slice only */
    sample one_in, one_out;
    sample_new(&one_in, 1, 1, 1, 12, 13);
    sample_new(&one_out, 1, 1, 1, 8, 9);
    int ok = 1;
    for (int d = 0; d < 3; d++) {
        memcpy(one_in.data, in.data + d * 156, 156 * sizeof(float));
        memcpy(one_in.seg, in.seg + d * 156, 156 * sizeof(int16_t));
        CHECK_OK(nnu_aug_spatial(&one_in.b, &one_out.b, &p, NULL, NULL));
        ok &= memcmp(one_out.data, out.data + d * 72, 72 * sizeof(float)) == 0;
        ok &= memcmp(one_out.seg, out.seg + d * 72, 72 * sizeof(int16_t)) == 0;
    }
    CHECK(ok, "dummy-2D: slices transformed independently, axis 0 untouched");
    sample_free(&in); sample_free(&out); sample_free(&one_in); sample_free(&one_out);
    nnu_tensor_release(x); nnu_tensor_release(sg); nnu_tensor_release(ro); nnu_tensor_release(rs);

    /* mismatching slice counts in 2-D mode are rejected */
    sample a, b;
    sample_new(&a, 1, 0, 3, 5, 5);
    sample_new(&b, 1, 0, 2, 5, 5);
    CHECK_FAILS(nnu_aug_spatial(&a.b, &b.b, &p, NULL, NULL), NNU_STATUS_ERR_SHAPE, "2-D mode keeps axis 0");
    sample_free(&a); sample_free(&b);
}

static void test_elastic(void) {
    /* the smoothing against scipy gaussian_filter(σ 2.5, mode constant) */
    nnu_tensor *ei = fx("el_in"), *eo = fx("el_out");
    if (ei && eo) {
        float v[720];
        memcpy(v, F32(ei), sizeof v);
        int64_t sh[3] = {8, 9, 10};
        int r = (int)(4.0 * 2.5 + 0.5);
        double w[64], line[2 * 30 * AUG_FB];
        aug_gauss_kernel(2.5, r, w);
        for (int a = 0; a < 3; a++) aug_filter_axis(v, sh, a, w, r, AUG_PAD_ZERO, line);
        check_array("elastic smoothing vs gaussian_filter", v, F32(eo), 720, 1e-6);
    }
    nnu_tensor_release(ei);
    nnu_tensor_release(eo);

    sample in, o1, o2, o3;
    sample_new(&in, 1, 1, 12, 14, 16);
    for (int64_t i = 0; i < n3(in.b.shape); i++) {
        int64_t d = i / 224, h = i / 16 % 14, w = i % 16;
        in.data[i] = (float)(d + h + w);
        in.seg[i] = (int16_t)(((d - 6) * (d - 6) + (h - 7) * (h - 7) + (w - 8) * (w - 8) < 16) ? 2 : (h < 4));
    }
    sample_new(&o1, 1, 1, 8, 10, 12);
    sample_new(&o2, 1, 1, 8, 10, 12);
    sample_new(&o3, 1, 1, 8, 10, 12);
    nnu_aug_spatial_params p;
    nnu_aug_spatial_params_init(&p);
    CHECK_OK(nnu_aug_spatial(&in.b, &o1.b, &p, NULL, NULL));
    nnu_aug_ws ws = {0};
    nnu_rng rng;
    nnu_rng_seed(&rng, 1, 0);
    p.elastic = 1; p.alpha = 0.0; p.sigma = 3.0;
    CHECK_OK(nnu_aug_spatial(&in.b, &o2.b, &p, &rng, &ws));
    CHECK(memcmp(o1.data, o2.data, 960 * sizeof(float)) == 0 && memcmp(o1.seg, o2.seg, 960 * sizeof(int16_t)) == 0,
          "elastic with alpha 0 = identity");
    /* strong deformation: deterministic per seed, labels in {-1, 0, 1, 2}, data moved */
    p.alpha = 400.0; p.sigma = 3.0;
    nnu_rng_seed(&rng, 7, 3);
    CHECK_OK(nnu_aug_spatial(&in.b, &o2.b, &p, &rng, &ws));
    nnu_rng_seed(&rng, 7, 3);
    CHECK_OK(nnu_aug_spatial(&in.b, &o3.b, &p, &rng, &ws));
    CHECK(memcmp(o2.data, o3.data, 960 * sizeof(float)) == 0, "elastic deterministic per seed");
    int labels_ok = 1;
    double moved = 0.0;
    for (int i = 0; i < 960; i++) {
        labels_ok &= o2.seg[i] >= -1 && o2.seg[i] <= 2;
        moved += fabs(o2.data[i] - o1.data[i]);
    }
    CHECK(labels_ok, "elastic: labels stay in the label set");
    CHECK(moved / 960 > 0.05, "elastic moved the data (mean |d| %.3g)", moved / 960);
    nnu_aug_ws_free(&ws);
    sample_free(&in); sample_free(&o1); sample_free(&o2); sample_free(&o3);
}

/* ------------------------------------------------------------------ intensity */

static void test_intensity(void) {
    nnu_aug_ws ws = {0};
    double w[16];
    CHECK(nnu_aug_blur_kernel(0.5, w, 16) == 3 && fabs(w[0] - 0.106507) < 1e-6 && fabs(w[1] - 0.786986) < 1e-6,
          "blur kernel sigma 0.5");
    CHECK(nnu_aug_blur_kernel(7.0 / 12.0, w, 16) == 5 && nnu_aug_blur_kernel(0.9, w, 16) == 5 &&
              nnu_aug_blur_kernel(11.0 / 12.0, w, 16) == 7,
          "blur kernel sizes at 7/12 and 11/12");
    CHECK(nnu_aug_blur_kernel(1.0, w, 16) == 7 && fabs(w[0] - 0.004433) < 1e-6 && fabs(w[3] - 0.399050) < 1e-6,
          "blur kernel sigma 1");

    nnu_tensor *bi = fx("blur_in"), *bo = fx("blur_out");
    if (bi && bo) {
        float v[378];
        memcpy(v, F32(bi), sizeof v);
        int64_t sh[3] = {6, 7, 9};
        double sig[3] = {0.55, 0.8, 1.0};
        CHECK_OK(nnu_aug_blur(v, sh, sig, &ws));
        check_array("blur vs scipy correlate1d mirror", v, F32(bo), 378, 1e-6);
    }
    nnu_tensor_release(bi); nnu_tensor_release(bo);

    nnu_tensor *li = fx("lowres_in"), *la = fx("lowres_a"), *lb = fx("lowres_b");
    if (li && la && lb) {
        float v[540];
        int64_t sh[3] = {6, 10, 9};
        double za[3] = {0.6, 0.6, 0.6}, zb[3] = {1.0, 0.7, 0.7};
        memcpy(v, F32(li), sizeof v);
        CHECK_OK(nnu_aug_lowres(v, sh, za, &ws));
        check_array("lowres 0.6 vs torch interpolate", v, F32(la), 540, 1e-6);
        memcpy(v, F32(li), sizeof v);
        CHECK_OK(nnu_aug_lowres(v, sh, zb, &ws));
        check_array("lowres (1, 0.7, 0.7) vs torch interpolate", v, F32(lb), 540, 1e-6);
    }
    nnu_tensor_release(li); nnu_tensor_release(la); nnu_tensor_release(lb);

    static const struct { const char *ref; double g; int inv, keep; } gam[] = {
        {"gamma_a", 0.7, 1, 1}, {"gamma_b", 1.3, 0, 1}, {"gamma_c", 1.5, 0, 0}};
    nnu_tensor *gi = fx("gamma_in");
    for (int k = 0; k < 3 && gi; k++) {
        nnu_tensor *r = fx(gam[k].ref);
        float v[120];
        memcpy(v, F32(gi), sizeof v);
        nnu_aug_gamma(v, 120, gam[k].g, gam[k].inv, gam[k].keep);
        check_array(gam[k].ref, v, F32(r), 120, TOL_STAT);
        nnu_tensor_release(r);
    }
    nnu_tensor *cr = fx("contrast_12");
    if (gi && cr) {
        float v[120];
        memcpy(v, F32(gi), sizeof v);
        nnu_aug_contrast(v, 120, 1.2, 1);
        check_array("contrast 1.2 preserve range", v, F32(cr), 120, TOL_STAT);
    }
    nnu_tensor_release(cr);
    nnu_tensor_release(gi);

    float b[4] = {1.0f, -2.0f, 0.5f, 0.0f};
    nnu_aug_brightness(b, 4, 1.25);
    CHECK(b[0] == 1.25f && b[1] == -2.5f && b[2] == 0.625f && b[3] == 0.0f, "brightness exact");

    /* noise: mean ~0, std ~sigma over 200k draws (5 standard errors) */
    int64_t n = 200000;
    float *z = calloc((size_t)n, sizeof *z);
    nnu_rng rng;
    nnu_rng_seed(&rng, 11, 0);
    nnu_aug_noise(z, n, 0.1, &rng);
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; i++) { s += z[i]; s2 += (double)z[i] * z[i]; }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    CHECK(fabs(mean) < 5 * 0.1 / sqrt((double)n) && fabs(sd - 0.1) < 5 * 0.1 / sqrt(2.0 * n),
          "noise N(0, 0.01): mean %.3g std %.5f", mean, sd);
    free(z);
    nnu_aug_ws_free(&ws);
}

/* ------------------------------------------------------------------ mirror, DS */

static void test_mirror_ds(void) {
    sample a;
    sample_new(&a, 2, 1, 3, 4, 5);
    for (int i = 0; i < 120; i++) a.data[i] = (float)i;
    for (int i = 0; i < 60; i++) a.seg[i] = (int16_t)i;
    nnu_aug_mirror(&a.b, 1 | 4);   /* flip D and W */
    int ok = 1;
    for (int c = 0; c < 2; c++)
        for (int d = 0; d < 3; d++)
            for (int h = 0; h < 4; h++)
                for (int w = 0; w < 5; w++) {
                    int o = ((c * 3 + d) * 4 + h) * 5 + w, s = ((c * 3 + 2 - d) * 4 + h) * 5 + 4 - w;
                    ok &= a.data[o] == (float)s;
                    if (c == 0) ok &= a.seg[o] == s;
                }
    CHECK(ok, "mirror axes 0 and 2 exact");
    for (int m = 1; m < 8; m++) {
        nnu_aug_mirror(&a.b, m);
        nnu_aug_mirror(&a.b, m);
    }
    nnu_aug_mirror(&a.b, 1 | 4);
    ok = 1;
    for (int i = 0; i < 120; i++) ok &= a.data[i] == (float)i;
    for (int i = 0; i < 60; i++) ok &= a.seg[i] == i;
    CHECK(ok, "mirroring twice is the identity (every axis combination)");
    nnu_aug_remove_label(a.seg, 60, 5, 0);
    CHECK(a.seg[5] == 0 && a.seg[6] == 6, "remove label");
    a.seg[7] = -1;
    nnu_aug_mask(&a.b, 2u);
    CHECK(a.data[60 + 7] == 0.0f && a.data[7] == 7.0f, "mask only the flagged channel");
    sample_free(&a);

    nnu_tensor *di = fx("ds_in"), *dout = fx("ds_out");
    if (di && dout) {
        int16_t in[630], out[100];
        seg_from_f32(F32(di), in, 630);
        int64_t si[3] = {7, 10, 9}, so[3] = {4, 5, 5};
        nnu_aug_downsample_seg(in, si, out, so);
        float of[100];
        for (int i = 0; i < 100; i++) of[i] = out[i];
        check_array("DS seg vs torch nearest-exact", of, F32(dout), 100, 0.0);
    }
    nnu_tensor_release(di); nnu_tensor_release(dout);
}

/* ------------------------------------------------------------------ pipeline */

static void v2_pipeline(nnu_aug_pipeline *p, int64_t d, int64_t h, int64_t w) {
    memset(p, 0, sizeof *p);
    p->dim = 3;
    p->patch[0] = d; p->patch[1] = h; p->patch[2] = w;
    nnu_aug_step *s = p->step;
    double r = 30.0 / 180.0 * M_PI;
    nnu_aug_step_init(s, NNU_AUG_SPATIAL);
    s->p_rotation = 0.2; s->p_scaling = 0.2; s->scaling = (nnu_aug_range){0.7, 1.4, 0};
    for (int a = 0; a < 3; a++) { s->rotation[a][0] = -r; s->rotation[a][1] = r; }
    nnu_aug_step_init(++s, NNU_AUG_NOISE); s->p = 0.1; s->range = (nnu_aug_range){0, 0.1, 0}; s->sync_channels = 1;
    nnu_aug_step_init(++s, NNU_AUG_BLUR); s->p = 0.2; s->p_per_channel = 0.5; s->range = (nnu_aug_range){0.5, 1, 0};
    nnu_aug_step_init(++s, NNU_AUG_BRIGHTNESS); s->p = 0.15; s->range = (nnu_aug_range){0.75, 1.25, 1};
    nnu_aug_step_init(++s, NNU_AUG_CONTRAST); s->p = 0.15; s->range = (nnu_aug_range){0.75, 1.25, 1};
    nnu_aug_step_init(++s, NNU_AUG_LOWRES); s->p = 0.25; s->p_per_channel = 0.5; s->range = (nnu_aug_range){0.5, 1, 0};
    nnu_aug_step_init(++s, NNU_AUG_GAMMA); s->p = 0.1; s->p_invert = 1; s->range = (nnu_aug_range){0.7, 1.5, 1};
    nnu_aug_step_init(++s, NNU_AUG_GAMMA); s->p = 0.3; s->range = (nnu_aug_range){0.7, 1.5, 1};
    nnu_aug_step_init(++s, NNU_AUG_MIRROR); s->axes = 7;
    nnu_aug_step_init(++s, NNU_AUG_REMOVE_LABEL);
    p->n_steps = (int)(s - p->step) + 1;
}

static void test_pipeline(void) {
    nnu_aug_pipeline p;
    v2_pipeline(&p, 8, 10, 12);
    CHECK_OK(nnu_aug_pipeline_check(&p));
    int64_t ip[3];
    double rot[3] = {30.0 / 180 * M_PI, 30.0 / 180 * M_PI, 30.0 / 180 * M_PI};
    nnu_aug_initial_patch_size(3, p.patch, rot, 0.85, 0, ip);
    sample in, keep, o1, o2;
    sample_new(&in, 2, 1, ip[0], ip[1], ip[2]);
    sample_new(&keep, 2, 1, ip[0], ip[1], ip[2]);
    int64_t n = n3(in.b.shape);
    for (int64_t i = 0; i < n; i++) {
        in.data[i] = (float)sin(0.1 * (double)i);
        in.data[n + i] = (float)(i % 17);
        in.seg[i] = (int16_t)(i % 11 == 0 ? 2 : i % 5 == 0 ? 1 : 0);
    }
    memcpy(keep.data, in.data, (size_t)(2 * n) * sizeof(float));
    memcpy(keep.seg, in.seg, (size_t)n * sizeof(int16_t));
    sample_new(&o1, 2, 1, 8, 10, 12);
    sample_new(&o2, 2, 1, 8, 10, 12);
    nnu_aug_ws ws = {0};
    nnu_rng r;
    int labels_ok = 1, differ = 0, fires = 0;
    for (int k = 0; k < 40; k++) {
        nnu_rng_seed(&r, 5, (uint64_t)k);
        CHECK_OK(nnu_aug_pipeline_run(&p, &in.b, &o1.b, &r, &ws));
        nnu_rng_seed(&r, 5, (uint64_t)k);
        CHECK_OK(nnu_aug_pipeline_run(&p, &keep.b, &o2.b, &r, &ws));
        CHECK(memcmp(o1.data, o2.data, 1920 * sizeof(float)) == 0 && memcmp(o1.seg, o2.seg, 960 * 2) == 0,
              "pipeline deterministic per (seed, stream) %d", k);
        for (int i = 0; i < 960; i++) labels_ok &= o1.seg[i] >= 0 && o1.seg[i] <= 2;
        if (k > 0) differ += memcmp(o1.data, o2.data, 1920 * sizeof(float)) != 0;
        fires += 1;
    }
    CHECK(labels_ok, "after RemoveLabel the seg holds only {0, 1, 2}");
    (void)differ; (void)fires;

    /* a pipeline without a spatial step (validation): copy, then -1 -> 0 */
    nnu_aug_pipeline val;
    memset(&val, 0, sizeof val);
    val.dim = 3;
    val.patch[0] = 8; val.patch[1] = 10; val.patch[2] = 12;
    nnu_aug_step_init(&val.step[0], NNU_AUG_REMOVE_LABEL);
    val.n_steps = 1;
    CHECK_OK(nnu_aug_pipeline_check(&val));
    sample vi;
    sample_new(&vi, 2, 1, 8, 10, 12);
    for (int i = 0; i < 1920; i++) vi.data[i] = (float)i;
    for (int i = 0; i < 960; i++) vi.seg[i] = (int16_t)(i % 4 - 1);
    CHECK_OK(nnu_aug_pipeline_run(&val, &vi.b, &o1.b, &r, &ws));
    int vok = memcmp(vi.data, o1.data, 1920 * sizeof(float)) == 0;
    for (int i = 0; i < 960; i++) vok &= o1.seg[i] == (i % 4 == 0 ? 0 : i % 4 - 1);
    CHECK(vok, "validation pipeline: data copied, -1 -> 0");
    CHECK_FAILS(nnu_aug_pipeline_run(&val, &in.b, &o1.b, &r, &ws), NNU_STATUS_ERR_SHAPE, "without a spatial step");
    sample_free(&vi);

    /* validation failures */
    nnu_aug_pipeline bad = p;
    bad.step[0].p_rotation = 1.5;
    CHECK_FAILS(nnu_aug_pipeline_check(&bad), NNU_STATUS_ERR_ARG, "p_rotation");
    bad = p;
    nnu_aug_step tmp = bad.step[0];
    bad.step[0] = bad.step[1];
    bad.step[1] = tmp;
    CHECK_FAILS(nnu_aug_pipeline_check(&bad), NNU_STATUS_ERR_ARG, "must be the first");
    bad = p;
    bad.step[5].range.lo = 0.0;
    CHECK_FAILS(nnu_aug_pipeline_check(&bad), NNU_STATUS_ERR_ARG, "zoom range");
    bad = p;
    bad.dim = 2;
    CHECK_FAILS(nnu_aug_pipeline_check(&bad), NNU_STATUS_ERR_ARG, "2-D configuration");
    CHECK(nnu_aug_kind_from_name("gamma") == NNU_AUG_GAMMA && nnu_aug_kind_from_name("nope") == -1, "kind names");

    /* BGContrast sampling: half below 1, half above, within range */
    nnu_aug_range bg = {0.75, 1.25, 1};
    int below = 0, in_range = 1;
    for (int i = 0; i < 10000; i++) {
        double v = nnu_aug_sample(&r, &bg);
        below += v < 1.0;
        in_range &= v >= 0.75 && v <= 1.25;
    }
    CHECK(in_range && below > 4700 && below < 5300, "BGContrast: %d of 10000 below 1", below);
    nnu_aug_ws_free(&ws);
    sample_free(&in); sample_free(&keep); sample_free(&o1); sample_free(&o2);
}

int main(void) {
    test_initial_patch();
    test_crop();
    test_rot90();
    test_spatial_reference();
    test_elastic();
    test_intensity();
    test_mirror_ds();
    test_pipeline();
    return check_report();
}
