/* test_slide.c: sliding-window inference without the network (nnu_slide.h).
 *   - window positions: every row of nnunet-behaviour.md L.4 (exact);
 *   - padding: both L.4 examples (shape, content offsets, zeros around);
 *   - Gaussian: every L.5 row (min, max, corners, float64 sum, count of minima,
 *     zeros replaced) and the full (8,), (5,7) and (8,8,8) lines, plus whole maps
 *     against scipy (tests/fixtures/slide_ref.bin), all bit-exact;
 *   - aggregation of a tiny fixed "network" against the numpy re-implementation of
 *     the reference predictor in tests/gen/gen_slide_ref.py: 3-D with all mirror
 *     axes, an image smaller than the patch, 2-D slice-wise with padding, float32
 *     accumulation; every output value bit-exact (tier 2). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nnu_eval.h"
#include "nnu_slide.h"
#include "refio.h"

#define FIXTURE "tests/fixtures/slide_ref.bin"
#define REGEN "/usr/bin/python3 tests/gen/gen_slide_ref.py"

/* ------------------------------------------------------------------ L.4 steps */

static void test_steps(void) {
    static const struct { int64_t i, p; double s; int n; int64_t want[8]; } rows[] = {
        {110, 64, 0.5, 3, {0, 23, 46}},   {64, 64, 0.5, 1, {0}},
        {65, 64, 0.5, 2, {0, 1}},         {96, 64, 0.5, 2, {0, 32}},
        {97, 64, 0.5, 3, {0, 16, 33}},    {127, 64, 0.5, 3, {0, 32, 63}},
        {129, 64, 0.5, 4, {0, 22, 43, 65}}, {200, 128, 0.5, 3, {0, 36, 72}},
        {200, 128, 1.0, 2, {0, 72}},      {200, 128, 0.7, 2, {0, 72}},
        {200, 128, 0.25, 4, {0, 24, 48, 72}}, {300, 128, 0.5, 4, {0, 57, 115, 172}},
        {182, 112, 0.5, 3, {0, 35, 70}},  {100, 40, 0.5, 4, {0, 20, 40, 60}},
        {61, 40, 0.5, 3, {0, 10, 21}},    {9, 5, 0.5, 3, {0, 2, 4}},
        {10, 5, 0.5, 3, {0, 2, 5}},       {16, 6, 0.5, 5, {0, 2, 5, 8, 10}},
        {11, 4, 0.5, 5, {0, 2, 4, 5, 7}}, {23, 6, 0.5, 7, {0, 3, 6, 8, 11, 14, 17}},
        /* (482,512,512) / (128,128,128) and (20,320,319) / (20,320,256), per axis */
        {482, 128, 0.5, 7, {0, 59, 118, 177, 236, 295, 354}},
        {512, 128, 0.5, 7, {0, 64, 128, 192, 256, 320, 384}},
        {20, 20, 0.5, 1, {0}}, {320, 320, 0.5, 1, {0}}, {319, 256, 0.5, 2, {0, 63}},
        /* an image smaller than the patch (the caller pads first): one window */
        {3, 5, 0.5, 1, {0}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        int64_t n = nnu_slide_num_steps(rows[r].i, rows[r].p, rows[r].s), got[16] = {0};
        CHECK(n == rows[r].n, "steps(%lld, %lld, %g): %lld windows, want %d", (long long)rows[r].i,
              (long long)rows[r].p, rows[r].s, (long long)n, rows[r].n);
        if (n != rows[r].n) continue;
        CHECK_OK(nnu_slide_steps(rows[r].i, rows[r].p, rows[r].s, got));
        for (int k = 0; k < rows[r].n; k++)
            CHECK(got[k] == rows[r].want[k], "steps(%lld, %lld, %g)[%d] = %lld, want %lld",
                  (long long)rows[r].i, (long long)rows[r].p, rows[r].s, k, (long long)got[k],
                  (long long)rows[r].want[k]);
    }
    int64_t tmp[4];
    CHECK_FAILS(nnu_slide_steps(100, 40, 0.0, tmp), NNU_STATUS_ERR_ARG, "step_size");
    CHECK_FAILS(nnu_slide_steps(100, 40, 1.5, tmp), NNU_STATUS_ERR_ARG, "step_size");
}

/* ------------------------------------------------------------------ L.4 padding */

static void test_pad(void) {
    /* image (C=1) (3, 60, 7), patch (5, 64, 4) -> (1, 5, 64, 7), content at [1:4, 2:62, 0:7] */
    nnu_tensor *img = NULL, *out = NULL;
    int64_t pb[4];
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, (int64_t[]){1, 3, 60, 7}, &img));
    CHECK_OK(nnu_tensor_fill(img, 2.0));
    CHECK_OK(nnu_slide_pad(img, 3, (int64_t[]){5, 64, 4}, &out, pb));
    CHECK(out && out->shape[0] == 1 && out->shape[1] == 5 && out->shape[2] == 64 && out->shape[3] == 7,
          "padded shape (1,5,64,7)");
    CHECK(pb[0] == 0 && pb[1] == 1 && pb[2] == 2 && pb[3] == 0, "pad offsets %lld %lld %lld %lld",
          (long long)pb[0], (long long)pb[1], (long long)pb[2], (long long)pb[3]);
    double s, v;
    CHECK_OK(nnu_tensor_sum(out, &s));
    CHECK(s == 2.0 * 3 * 60 * 7, "padding is zero (sum %g)", s);
    CHECK_OK(nnu_tensor_get(out, (int64_t[]){0, 1, 2, 0}, &v));
    CHECK(v == 2.0, "content starts at [1, 2, 0]");
    CHECK_OK(nnu_tensor_get(out, (int64_t[]){0, 3, 61, 6}, &v));
    CHECK(v == 2.0, "content ends at [3, 61, 6]");
    CHECK_OK(nnu_tensor_get(out, (int64_t[]){0, 4, 62, 6}, &v));
    CHECK(v == 0.0, "after the content: 0");
    nnu_tensor_release(out);
    nnu_tensor_release(img);

    /* 2-D patch (40, 32) on (C=1) (10, 30, 25) -> (10, 40, 32), content at [0:10, 5:35, 3:28] */
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_I16, 4, (int64_t[]){1, 10, 30, 25}, &img));
    CHECK_OK(nnu_tensor_fill(img, 1.0));
    CHECK_OK(nnu_slide_pad(img, 2, (int64_t[]){40, 32}, &out, pb));
    CHECK(out->shape[1] == 10 && out->shape[2] == 40 && out->shape[3] == 32 && out->dtype == NNU_DTYPE_I16,
          "2-D padding: (1,10,40,32) i16");
    CHECK(pb[1] == 0 && pb[2] == 5 && pb[3] == 3, "2-D pad offsets %lld %lld", (long long)pb[2], (long long)pb[3]);
    CHECK_OK(nnu_tensor_sum(out, &s));
    CHECK(s == 10 * 30 * 25, "2-D padding sum %g", s);
    CHECK_OK(nnu_tensor_get(out, (int64_t[]){0, 9, 5, 3}, &v));
    CHECK(v == 1.0, "2-D content at [9, 5, 3]");
    CHECK_OK(nnu_tensor_get(out, (int64_t[]){0, 9, 35, 27}, &v));
    CHECK(v == 0.0, "2-D: [9, 35, 27] is padding");
    nnu_tensor_release(out);

    /* large enough: the image itself comes back */
    CHECK_OK(nnu_slide_pad(img, 2, (int64_t[]){30, 25}, &out, pb));
    CHECK(out == img && pb[2] == 0 && pb[3] == 0, "no padding: same tensor");
    nnu_tensor_release(out);
    nnu_tensor_release(img);
}

/* ------------------------------------------------------------------ L.5 Gaussian */

static double h2d(uint16_t h) { return (double)nnu_f16_to_f32(h); }

static void test_gaussian(void) {
    static const struct {
        int nd; int64_t p[3]; double mn, mx, c0, c1, sum; int64_t nmin, nzero;
    } rows[] = {
        {1, {4}, 0.0033550262451171875, 10.0, 0.0033550262451171875, 1.353515625, 12.710386276245117, 1, 0},
        {1, {7}, 0.02801513671875, 10.0, 0.02801513671875, 0.02801513671875, 21.9300537109375, 2, 0},
        {1, {8}, 0.0033550262451171875, 10.0, 0.0033550262451171875, 0.111083984375, 25.065366744995117, 1, 0},
        {1, {64}, 0.0033550262451171875, 10.0, 0.0033550262451171875, 0.005489349365234375, 200.52853965759277, 1, 0},
        {2, {5, 7}, 0.00016736984252929688, 10.0, 0.00016736984252929688, 0.00016736984252929688, 34.390790939331055, 4, 0},
        {2, {56, 40}, 1.1324882507324219e-06, 10.0, 1.1324882507324219e-06, 4.291534423828125e-06, 2198.8477308154106, 1, 0},
        {3, {8, 8, 8}, 1.7881393432617188e-07, 10.0, 1.7881393432617188e-07, 1.3709068298339844e-05, 157.43941819667816, 13, 7},
        {3, {40, 56, 40}, 5.960464477539063e-08, 10.0, 5.960464477539063e-08, 5.960464477539063e-08, 27556.484158992767, 829, 411},
        {3, {128, 128, 128}, 5.960464477539063e-08, 10.0, 5.960464477539063e-08, 5.960464477539063e-08, 644986.1604437828, 18987, 8941},
        {3, {20, 320, 256}, 5.960464477539063e-08, 10.0, 5.960464477539063e-08, 5.960464477539063e-08, 503885.683762908, 15529, 7557},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        nnu_tensor *g = NULL;
        int64_t nrep = -1;
        CHECK_OK(nnu_slide_gaussian(rows[r].nd, rows[r].p, &g, &nrep));
        if (!g) continue;
        const uint16_t *d = nnu_tensor_data(g);
        int64_t n = nnu_tensor_numel(g), nmin = 0, ncentre = 0;
        double *v = malloc(sizeof(double) * (size_t)n), mn = INFINITY, mx = 0;
        for (int64_t i = 0; i < n; i++) {
            v[i] = h2d(d[i]);
            if (v[i] < mn) mn = v[i];
            if (v[i] > mx) mx = v[i];
        }
        for (int64_t i = 0; i < n; i++) nmin += v[i] == mn;
        int64_t ci = 0;                                  /* centre index ⌊P/2⌋ per axis */
        for (int a = 0; a < rows[r].nd; a++) ci = ci * rows[r].p[a] + rows[r].p[a] / 2;
        ncentre = v[ci] == 10.0;
        double sum = nnu_eval_np_sum(v, n);
        const char *what = "gaussian row";
        CHECK(mn == rows[r].mn && mx == rows[r].mx && ncentre, "%s %zu: min %.17g max %.17g", what, r, mn, mx);
        CHECK(v[0] == rows[r].c0 && v[n - 1] == rows[r].c1, "%s %zu: corners %.17g %.17g", what, r, v[0], v[n - 1]);
        CHECK(nmin == rows[r].nmin, "%s %zu: %lld entries equal to the minimum, want %lld", what, r,
              (long long)nmin, (long long)rows[r].nmin);
        CHECK_CLOSE(sum, rows[r].sum, 0, 1e-13);
        CHECK(nrep == rows[r].nzero, "%s %zu: %lld zeros replaced, want %lld", what, r, (long long)nrep,
              (long long)rows[r].nzero);
        free(v);
        nnu_tensor_release(g);
    }

    /* (8,8,8): 7 zeros replaced by 3·2^-24 (a float16 subnormal) */
    static const double line44[8] = {0.0033550262451171875, 0.111083984375, 1.353515625, 6.06640625, 10.0,
                                     6.06640625, 1.353515625, 0.111083984375};
    static const double line00[8] = {1.7881393432617188e-07, 1.7881393432617188e-07, 1.7881393432617188e-07,
                                     6.556510925292969e-07, 1.1324882507324219e-06, 6.556510925292969e-07,
                                     1.7881393432617188e-07, 1.7881393432617188e-07};
    static const double diag[8] = {1.7881393432617188e-07, 1.3709068298339844e-05, 0.0247802734375,
                                   2.23046875, 10.0, 2.23046875, 0.0247802734375, 1.3709068298339844e-05};
    nnu_tensor *g = NULL;
    CHECK_OK(nnu_slide_gaussian(3, (int64_t[]){8, 8, 8}, &g, NULL));
    const uint16_t *d = nnu_tensor_data(g);
    for (int i = 0; i < 8; i++) {
        CHECK(h2d(d[(4 * 8 + 4) * 8 + i]) == line44[i], "(8,8,8)[4,4,%d] = %.17g", i, h2d(d[(4 * 8 + 4) * 8 + i]));
        CHECK(h2d(d[i]) == line00[i], "(8,8,8)[0,0,%d] = %.17g", i, h2d(d[i]));
        CHECK(h2d(d[(i * 8 + i) * 8 + i]) == diag[i], "(8,8,8)[%d,%d,%d] = %.17g", i, i, i,
              h2d(d[(i * 8 + i) * 8 + i]));
    }
    /* the float16 cast alone gives 7 zeros, replaced by the minimum 3·2^-24 */
    int nsub = 0;
    for (int i = 0; i < 512; i++) nsub += d[i] == 3;
    CHECK(nsub == 13, "(8,8,8): 13 entries are 3·2^-24 (6 computed + 7 replaced zeros), got %d", nsub);
    nnu_tensor_release(g);

    /* (8,) and (5,7) in full */
    CHECK_OK(nnu_slide_gaussian(1, (int64_t[]){8}, &g, NULL));
    d = nnu_tensor_data(g);
    for (int i = 0; i < 8; i++) CHECK(h2d(d[i]) == line44[i], "(8,)[%d] = %.17g", i, h2d(d[i]));
    nnu_tensor_release(g);
    static const double r57[5][7] = {
        {0.00016736984252929688, 0.004383087158203125, 0.031097412109375, 0.05975341796875, 0.031097412109375, 0.004383087158203125, 0.00016736984252929688},
        {0.00778961181640625, 0.2039794921875, 1.447265625, 2.78125, 1.447265625, 0.2039794921875, 0.00778961181640625},
        {0.02801513671875, 0.73388671875, 5.203125, 10.0, 5.203125, 0.73388671875, 0.02801513671875},
        {0.00778961181640625, 0.2039794921875, 1.447265625, 2.78125, 1.447265625, 0.2039794921875, 0.00778961181640625},
        {0.00016736984252929688, 0.004383087158203125, 0.031097412109375, 0.05975341796875, 0.031097412109375, 0.004383087158203125, 0.00016736984252929688}};
    CHECK_OK(nnu_slide_gaussian(2, (int64_t[]){5, 7}, &g, NULL));
    d = nnu_tensor_data(g);
    for (int i = 0; i < 35; i++) CHECK(h2d(d[i]) == r57[i / 7][i % 7], "(5,7)[%d,%d] = %.17g", i / 7, i % 7, h2d(d[i]));
    nnu_tensor_release(g);

    /* whole maps against scipy (bit patterns) */
    static const struct { const char *name; int nd; int64_t p[3]; } maps[] = {
        {"gauss_5x7", 2, {5, 7}}, {"gauss_8x8x8", 3, {8, 8, 8}}, {"gauss_20x24x16", 3, {20, 24, 16}}};
    for (size_t m = 0; m < 3; m++) {
        nnu_tensor *ref = refio_load(FIXTURE, maps[m].name, REGEN);
        CHECK(ref != NULL, "fixture %s", maps[m].name);
        if (!ref) continue;
        CHECK_OK(nnu_slide_gaussian(maps[m].nd, maps[m].p, &g, NULL));
        int64_t n = nnu_tensor_numel(g), bad = 0;
        for (int64_t i = 0; i < n; i++) bad += ((uint16_t *)nnu_tensor_data(g))[i] != ((uint16_t *)nnu_tensor_data(ref))[i];
        CHECK(bad == 0 && nnu_tensor_same_shape(g, ref), "%s: %lld entries differ from scipy", maps[m].name, (long long)bad);
        nnu_tensor_release(g);
        nnu_tensor_release(ref);
    }
}

/* ------------------------------------------------------------------ aggregation */

/* The fixed network of gen_slide_ref.py (see there): per window, float32, sums in
 * the same order as numpy: ((b + W0·x0) + W1·x1 ...) + V·x0[x+1] + P. */
typedef struct tiny_net {
    int C, K, two_d;
    int64_t p[3];          /* (pz, py, px); pz = 1 for 2-D */
    int calls;
} tiny_net;

static float w_of(int k, int c) { return (float)(((k * 3 + c * 5) % 7 - 3) / 4.0); }
static float b_of(int k) { return (float)((k - 1) * 0.5); }
static float v_of(int k) { return (float)(((k % 3) - 1) * 0.75); }
static float p_of(int k, int64_t z, int64_t y, int64_t x) {
    return (float)((((k * 31 + z * 17 + y * 7 + x * 3) % 11) - 5) / 8.0);
}

static nnu_status tiny_predict(void *ctx, const nnu_tensor *xb, nnu_tensor *yb) {
    tiny_net *net = ctx;
    net->calls++;
    int64_t B = xb->shape[0], Z = net->p[0], Y = net->p[1], X = net->p[2], n = Z * Y * X;
    NNU_CHECK(xb->shape[1] == net->C && yb->shape[1] == net->K && yb->shape[0] == B, NNU_STATUS_ERR_SHAPE,
              "tiny net: bad batch");
    NNU_CHECK(xb->ndim == (net->two_d ? 4 : 5), NNU_STATUS_ERR_SHAPE, "tiny net: %d-D batch", xb->ndim);
    const float *x = nnu_tensor_data(xb);
    float *y = nnu_tensor_data(yb);
    for (int64_t b = 0; b < B; b++)
        for (int k = 0; k < net->K; k++)
            for (int64_t z = 0; z < Z; z++)
                for (int64_t yy = 0; yy < Y; yy++)
                    for (int64_t xx = 0; xx < X; xx++) {
                        int64_t s = (z * Y + yy) * X + xx;
                        float o = b_of(k);
                        for (int c = 0; c < net->C; c++) o = o + w_of(k, c) * x[(b * net->C + c) * n + s];
                        float sh = xx + 1 < X ? x[(b * net->C + 0) * n + s + 1] : 0.0f;
                        o = o + v_of(k) * sh;
                        o = o + p_of(k, z, yy, xx);
                        y[(b * net->K + k) * n + s] = o;
                    }
    return NNU_STATUS_OK;
}

static void progress_count(void *ctx, int64_t done, int64_t total) {
    int64_t *last = ctx;
    if (done <= total) last[0] = done, last[1] = total;
}

static void run_case(const char *name, const int64_t *shape, int pnd, const int64_t *patch, int K,
                     int nmir, const int *mir, nnu_dtype acc, int batch) {
    nnu_tensor *img = NULL, *out = NULL, *ref = refio_load(FIXTURE, name, REGEN);
    CHECK(ref != NULL, "fixture %s", name);
    if (!ref) return;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, shape, &img));
    float *d = nnu_tensor_data(img);
    int64_t i = 0;
    for (int64_t c = 0; c < shape[0]; c++)
        for (int64_t z = 0; z < shape[1]; z++)
            for (int64_t y = 0; y < shape[2]; y++)
                for (int64_t x = 0; x < shape[3]; x++)
                    d[i++] = (float)(((c * 131 + z * 71 + y * 37 + x * 13) % 29 - 14) / 7.0);
    tiny_net net = {(int)shape[0], K, pnd == 2, {1, 1, 1}, 0};
    for (int a = 0; a < pnd; a++) net.p[3 - pnd + a] = patch[a];
    nnu_slide_params p;
    nnu_slide_params_default(&p);
    p.patch_ndim = pnd;
    memcpy(p.patch, patch, sizeof(int64_t) * (size_t)pnd);
    p.num_heads = K;
    p.n_mirror_axes = nmir;
    memcpy(p.mirror_axes, mir, sizeof(int) * (size_t)nmir);
    p.accum_dtype = acc;
    p.batch_size = batch;
    int64_t prog[2] = {0, 0};
    p.progress = progress_count;
    p.progress_ctx = prog;
    CHECK_OK(nnu_slide_predict(img, &p, tiny_predict, &net, &out));
    if (out) {
        CHECK(out->ndim == 4 && out->shape[0] == K && out->shape[1] == shape[1] && out->shape[2] == shape[2] &&
              out->shape[3] == shape[3] && out->dtype == acc && nnu_tensor_same_shape(out, ref),
              "%s: output shape/dtype", name);
        CHECK(prog[0] == prog[1] && prog[1] > 0, "%s: progress reached %lld of %lld", name, (long long)prog[0],
              (long long)prog[1]);
        CHECK(net.calls == (int)(((prog[1] + batch - 1) / batch) << nmir), "%s: %d network calls", name, net.calls);
        nnu_tensor *c = NULL;
        CHECK_OK(nnu_tensor_contiguous(out, &c));
        int64_t n = nnu_tensor_numel(c), bad = 0, first = -1;
        size_t es = nnu_dtype_size(acc);
        for (int64_t j = 0; j < n; j++)
            if (memcmp((char *)nnu_tensor_data(c) + j * (int64_t)es, (char *)nnu_tensor_data(ref) + j * (int64_t)es, es)) {
                if (first < 0) first = j;
                bad++;
            }
        if (bad) {
            double a = nnu_dtype_load(acc, (char *)nnu_tensor_data(c) + first * (int64_t)es);
            double b = nnu_dtype_load(acc, (char *)nnu_tensor_data(ref) + first * (int64_t)es);
            fprintf(stderr, "%s: first difference at flat index %lld: %.9g vs numpy %.9g\n", name,
                    (long long)first, a, b);
        }
        CHECK(bad == 0, "%s: %lld of %lld logits differ from the numpy reference", name, (long long)bad, (long long)n);
        nnu_tensor_release(c);
    }
    nnu_tensor_release(out);
    nnu_tensor_release(img);
    nnu_tensor_release(ref);
}

static void test_aggregation(void) {
    run_case("a3d_mirror", (int64_t[]){2, 9, 13, 11}, 3, (int64_t[]){4, 8, 6}, 3, 3, (int[]){0, 1, 2},
             NNU_DTYPE_F16, 2);
    run_case("b3d_small", (int64_t[]){1, 3, 10, 5}, 3, (int64_t[]){4, 8, 6}, 2, 2, (int[]){1, 2},
             NNU_DTYPE_F16, 3);
    run_case("c2d_slices", (int64_t[]){2, 3, 4, 7}, 2, (int64_t[]){5, 4}, 3, 2, (int[]){0, 1},
             NNU_DTYPE_F16, 4);
    run_case("d3d_f32", (int64_t[]){1, 6, 10, 9}, 3, (int64_t[]){4, 4, 4}, 2, 0, (int[]){0},
             NNU_DTYPE_F32, 1);
    /* batching must not change anything: the same case with one window per call */
    run_case("a3d_mirror", (int64_t[]){2, 9, 13, 11}, 3, (int64_t[]){4, 8, 6}, 3, 3, (int[]){0, 1, 2},
             NNU_DTYPE_F16, 1);

    /* argument errors */
    nnu_tensor *img = NULL, *out = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, (int64_t[]){1, 4, 4, 4}, &img));
    nnu_slide_params p;
    nnu_slide_params_default(&p);
    p.patch[0] = p.patch[1] = p.patch[2] = 4;
    tiny_net net = {1, 1, 0, {4, 4, 4}, 0};
    CHECK_FAILS(nnu_slide_predict(img, &p, tiny_predict, &net, &out), NNU_STATUS_ERR_ARG, "num_heads");
    p.num_heads = 1;
    p.n_mirror_axes = 2;
    p.mirror_axes[0] = p.mirror_axes[1] = 1;
    CHECK_FAILS(nnu_slide_predict(img, &p, tiny_predict, &net, &out), NNU_STATUS_ERR_ARG, "repeated");
    nnu_tensor_release(img);
}

int main(void) {
    test_steps();
    test_pad();
    test_gaussian();
    test_aggregation();
    return check_report();
}
