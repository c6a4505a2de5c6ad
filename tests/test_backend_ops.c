/* test_backend_ops.c: every op of the backend table against a naive double
 * reference (tests/ops_ref.h), on awkward sizes (not multiples of 8, D = 1 or 2 with
 * 3x3x3 kernels, stride 2 on odd sizes) and in both activation layouts.
 * The op list comes from core/nnu_ops.def: an op no test marks as covered fails
 * the run (STYLE R20). Seed fixed and printed. */
#include "ops_ref.h"

static const nnu_backend *be;
static int covered[NNU_OP_COUNT];
#define COVER(op) (covered[NNU_OP_##op] = 1)

/* ---- convolution and transposed convolution ---- */
static const nnu_backend *conv_be;     /* the table conv_case runs on */
static nnu_tol conv_tol, conv_tol_bww;

static void conv_case(const char *label, int transposed, int64_t N, int64_t Ci, int64_t Co,
                      int64_t d, int64_t h, int64_t w, const int k[3], const int s[3],
                      int cbi, int cbo) {
    const nnu_backend *be = conv_be;
    nnu_conv_params p;
    int64_t in[3] = {d, h, w};
    CHECK_OK(nnu_conv_params_init(&p, N, Ci, Co, in, k, s, transposed, cbi, cbo));
    const int64_t Si = ref_sp(p.in), So = ref_sp(p.out);
    const int64_t K = (int64_t)k[0] * k[1] * k[2], nx = N * Ci * Si, ny = N * Co * So;
    const int64_t nw = Ci * Co * K;
    float *x = ref_falloc(nx), *wt = ref_falloc(nw), *b = ref_falloc(Co), *gy = ref_falloc(ny);
    ref_fill(x, nx, -1, 1); ref_fill(wt, nw, -0.5, 0.5); ref_fill(b, Co, -1, 1);
    ref_fill(gy, ny, -1, 1);
    double *xd = ref_to_double(x, nx), *wd = ref_to_double(wt, nw), *bd = ref_to_double(b, Co);
    double *gyd = ref_to_double(gy, ny);
    double *yr = ref_dalloc(ny), *gxr = ref_dalloc(nx), *gwr = ref_dalloc(nw), *gbr = ref_dalloc(Co);
    ref_conv(&p, xd, wd, bd, yr, gyd, gxr, gwr, gbr);
    /* gradients accumulate (+=) into parameter gradients: start from 0.25 */
    for (int64_t i = 0; i < nw; i++) gwr[i] += 0.25;
    for (int64_t i = 0; i < Co; i++) gbr[i] += 0.25;

    float *xl = ref_falloc(nx), *gyl = ref_falloc(ny), *yl = ref_falloc(ny), *gxl = ref_falloc(nx);
    float *y = ref_falloc(ny), *gx = ref_falloc(nx), *gw = ref_falloc(nw), *gb = ref_falloc(Co);
    for (int64_t i = 0; i < nw; i++) gw[i] = 0.25f;
    for (int64_t i = 0; i < Co; i++) gb[i] = 0.25f;
    to_layout(x, xl, N, Ci, Si, cbi);
    to_layout(gy, gyl, N, Co, So, cbo);
    char what[160];
    nnu_conv_fwd_fn fwd = transposed ? be->convt_fwd : be->conv_fwd;
    nnu_conv_bwd_data_fn bwd = transposed ? be->convt_bwd_data : be->conv_bwd_data;
    nnu_conv_bwd_params_fn bww = transposed ? be->convt_bwd_params : be->conv_bwd_params;
    CHECK_OK(fwd(be, xl, yl, wt, b, &p));
    CHECK_OK(bwd(be, gyl, gxl, wt, &p));
    CHECK_OK(bww(be, xl, gyl, gw, gb, &p));
    from_layout(yl, y, N, Co, So, cbo);
    from_layout(gxl, gx, N, Ci, Si, cbi);
    snprintf(what, sizeof what, "%s %s fwd", be->name, label);
    ref_compare(what, y, yr, ny, conv_tol);
    snprintf(what, sizeof what, "%s %s bwd_data", be->name, label);
    ref_compare(what, gx, gxr, nx, conv_tol);
    snprintf(what, sizeof what, "%s %s bwd_weights", be->name, label);
    ref_compare(what, gw, gwr, nw, conv_tol_bww);
    snprintf(what, sizeof what, "%s %s bwd_bias", be->name, label);
    ref_compare(what, gb, gbr, Co, conv_tol_bww);
    free(x); free(wt); free(b); free(gy); free(xd); free(wd); free(bd); free(gyd);
    free(yr); free(gxr); free(gwr); free(gbr); free(xl); free(gyl); free(yl); free(gxl);
    free(y); free(gx); free(gw); free(gb);
}

/* bf16 convolutions (cpu:bf16) on the layouts the network uses; skipped without
 * avx512_bf16 (oneDNN then has no bf16 kernel and reports it) */
static void test_conv_bf16(void) {
    const nnu_backend *b16 = nnu_backend_cpu_bf16();
    nnu_conv_params p;
    int64_t in[3] = {2, 3, 4};
    const int k3[3] = {3, 3, 3}, s1[3] = {1, 1, 1}, s2[3] = {2, 2, 2};
    CHECK_OK(nnu_conv_params_init(&p, 1, 16, 16, in, k3, s1, 0, 16, 16));
    float x[16 * 24] = {0}, y[16 * 24], w[16 * 16 * 27] = {0}, b[16] = {0};
    if (b16->conv_fwd(b16, x, y, w, b, &p) != NNU_STATUS_OK) {
        fprintf(stderr, "  cpu:bf16 unavailable here (%s): bf16 cases skipped\n", nnu_last_error());
        return;
    }
    conv_be = b16;
    conv_tol = TOL_CONV_BF16;
    conv_tol_bww = TOL_CONV_BF16;
    conv_case("conv3d bf16 16->32 s2", 0, 2, 16, 32, 3, 5, 6, k3, s2, 16, 16);
    conv_case("conv3d bf16 plain 1->16", 0, 2, 1, 16, 4, 5, 3, k3, s1, 1, 16);
    conv_case("convt3d bf16 32->16", 1, 2, 32, 16, 2, 3, 3, s2, s2, 16, 16);
    conv_case("conv3d bf16 head 16->3", 0, 2, 16, 3, 2, 3, 5, (const int[]){1, 1, 1}, s1, 16, 1);
    conv_be = be;
    conv_tol = TOL_CONV;
    conv_tol_bww = TOL_CONV_BWW;
}

static void test_conv(void) {
    const int k3[3] = {3, 3, 3}, k1[3] = {1, 1, 1}, k133[3] = {1, 3, 3};
    const int s1[3] = {1, 1, 1}, s2[3] = {2, 2, 2}, s122[3] = {1, 2, 2};
    conv_case("conv3d k3 s1 D=1", 0, 2, 3, 5, 1, 5, 7, k3, s1, 1, 1);
    conv_case("conv3d k3 s1 D=2", 0, 1, 4, 3, 2, 6, 5, k3, s1, 1, 1);
    conv_case("conv3d k3 s2 odd", 0, 2, 3, 6, 3, 5, 7, k3, s2, 1, 1);
    conv_case("conv3d k133 s122", 0, 1, 2, 3, 3, 7, 6, k133, s122, 1, 1);
    conv_case("conv3d k1 (head)", 0, 2, 5, 3, 2, 3, 5, k1, s1, 1, 1);
    conv_case("conv2d k3 s1", 0, 2, 3, 4, 1, 7, 9, k133, s1, 1, 1);
    conv_case("conv2d k3 s2 odd", 0, 1, 3, 2, 1, 9, 7, k133, s122, 1, 1);
    conv_case("conv3d blocked 16->32 s2", 0, 2, 16, 32, 3, 5, 6, k3, s2, 16, 16);
    conv_case("conv3d plain 1->16 blocked", 0, 2, 1, 16, 4, 5, 3, k3, s1, 1, 16);
    conv_case("conv3d blocked 16 -> plain 3 (head)", 0, 2, 16, 3, 2, 3, 5, k1, s1, 16, 1);
    conv_case("conv2d blocked 16->16", 0, 1, 16, 16, 1, 6, 5, k133, s1, 16, 16);
    conv_case("convt3d s2", 1, 2, 3, 5, 2, 3, 5, (const int[]){2, 2, 2}, s2, 1, 1);
    conv_case("convt3d s122", 1, 1, 4, 3, 3, 2, 3, (const int[]){1, 2, 2}, s122, 1, 1);
    conv_case("convt2d s2", 1, 2, 3, 2, 1, 3, 4, (const int[]){1, 2, 2}, s122, 1, 1);
    conv_case("convt3d blocked 32->16", 1, 2, 32, 16, 2, 3, 3, (const int[]){2, 2, 2}, s2, 16, 16);
    COVER(conv_fwd); COVER(conv_bwd_data); COVER(conv_bwd_params);
    COVER(convt_fwd); COVER(convt_bwd_data); COVER(convt_bwd_params);

    /* unsupported geometry is an error naming the axis, not a crash */
    nnu_conv_params p;
    int64_t in[3] = {4, 4, 4};
    CHECK_FAILS(nnu_conv_params_init(&p, 1, 1, 1, in, (const int[]){5, 3, 3}, s1, 0, 1, 1),
                NNU_STATUS_ERR_UNSUPPORTED, "kernel 5");
    CHECK_FAILS(nnu_conv_params_init(&p, 1, 3, 16, in, k3, s1, 0, 16, 16), NNU_STATUS_ERR_SHAPE,
                "do not fit");
}

/* ---- instance norm (+ leaky ReLU) ---- */
static void norm_case(const char *label, int64_t N, int64_t C, int64_t S, int cblk, float slope) {
    nnu_norm_params p = {N, C, S, cblk, 1e-5f, slope};
    const int64_t n = N * C * S;
    float *x = ref_falloc(n), *g = ref_falloc(C), *b = ref_falloc(C), *gy = ref_falloc(n);
    ref_fill(x, n, -2, 3); ref_fill(g, C, 0.5, 1.5); ref_fill(b, C, -0.5, 0.5);
    ref_fill(gy, n, -1, 1);
    double *xd = ref_to_double(x, n), *gd = ref_to_double(g, C), *bd = ref_to_double(b, C);
    double *gyd = ref_to_double(gy, n);
    double *yr = ref_dalloc(n), *gxr = ref_dalloc(n), *ggr = ref_dalloc(C), *gbr = ref_dalloc(C);
    ref_instnorm_fwd(&p, xd, gd, bd, yr);
    ref_instnorm_bwd(&p, xd, gd, bd, gyd, gxr, ggr, gbr);
    float *xl = ref_falloc(n), *yl = ref_falloc(n), *gyl = ref_falloc(n), *y = ref_falloc(n);
    float *st = ref_falloc(N * C * 2), *gg = ref_falloc(C), *gb = ref_falloc(C);
    to_layout(x, xl, N, C, S, cblk);
    to_layout(gy, gyl, N, C, S, cblk);
    CHECK_OK(be->instnorm_fwd(be, xl, yl, g, b, st, &p));
    from_layout(yl, y, N, C, S, cblk);
    char what[128];
    snprintf(what, sizeof what, "%s fwd", label);
    ref_compare(what, y, yr, n, TOL_NORM);
    /* in place: gx overwrites gy */
    CHECK_OK(be->instnorm_bwd(be, xl, gyl, gyl, g, b, gg, gb, st, &p));
    from_layout(gyl, y, N, C, S, cblk);
    snprintf(what, sizeof what, "%s bwd gx", label);
    ref_compare(what, y, gxr, n, TOL_NORM_BWD);
    snprintf(what, sizeof what, "%s bwd ggamma", label);
    ref_compare(what, gg, ggr, C, TOL_NORM_BWD);
    snprintf(what, sizeof what, "%s bwd gbeta", label);
    ref_compare(what, gb, gbr, C, TOL_NORM_BWD);
    free(x); free(g); free(b); free(gy); free(xd); free(gd); free(bd); free(gyd); free(yr);
    free(gxr); free(ggr); free(gbr); free(xl); free(yl); free(gyl); free(y); free(st); free(gg);
    free(gb);
}

static void test_instnorm(void) {
    norm_case("instnorm+lrelu plain", 2, 3, 37, 1, 0.01f);
    norm_case("instnorm plain (slope 1)", 3, 2, 61, 1, 1.0f);
    norm_case("instnorm+lrelu blocked", 2, 32, 45, 16, 0.01f);
    COVER(instnorm_fwd); COVER(instnorm_bwd);
    /* exact tiny case: x = (1, 3) -> mean 2, var 1 -> xhat = (-1, 1)/sqrt(1+eps) */
    float x[2] = {1, 3}, y[2], g[1] = {1}, b[1] = {0}, st[2];
    nnu_norm_params p = {1, 1, 2, 1, 0.0f, 0.5f};
    CHECK_OK(be->instnorm_fwd(be, x, y, g, b, st, &p));
    CHECK(y[0] == -0.5f && y[1] == 1.0f && st[0] == 2.0f && st[1] == 1.0f,
          "instnorm exact: y = (%g, %g), stats (%g, %g)", y[0], y[1], st[0], st[1]);
}

/* ---- element-wise ops, concat, softmax ---- */
static void test_eltwise(void) {
    float x[7] = {-2, -0.5f, 0, 0.25f, 3, -1e-3f, 7}, y[7], g[7] = {1, 2, 3, 4, 5, 6, 7}, gx[7];
    nnu_eltwise_params p = {7, 0.01f};
    CHECK_OK(be->lrelu_fwd(be, x, y, &p));
    CHECK_OK(be->lrelu_bwd(be, x, g, gx, &p));
    for (int i = 0; i < 7; i++) {
        CHECK(y[i] == (x[i] > 0 ? x[i] : 0.01f * x[i]), "lrelu fwd [%d]", i);
        CHECK(gx[i] == (x[i] > 0 ? g[i] : 0.01f * g[i]), "lrelu bwd [%d]", i);
    }
    COVER(lrelu_fwd); COVER(lrelu_bwd);
    float a[5] = {1, 2, 3, 4, 5}, c[5] = {1, 1, 1, 1, 1};
    nnu_eltwise_params q = {5, 0.5f};
    CHECK_OK(be->axpy(be, a, c, &q));            /* c = 1 + a/2 */
    CHECK(c[0] == 1.5f && c[4] == 3.5f, "axpy: %g %g", c[0], c[4]);
    CHECK_OK(be->scale(be, c, &q));              /* c = 0.5 + a/4 */
    CHECK(c[0] == 0.75f && c[4] == 1.75f, "scale: %g %g", c[0], c[4]);
    double ss;
    CHECK_OK(be->sumsq(be, a, &ss, &q));
    CHECK(ss == 55.0, "sumsq: %g", ss);
    COVER(axpy); COVER(scale); COVER(sumsq);
}

/* ---- the residual block's ops: avgpool (kernel = stride), add + leaky ReLU ---- */
static void pool_case(const char *label, int64_t N, int64_t C, const int64_t in[3],
                      const int st[3], int cblk) {
    nnu_pool_params p;
    CHECK_OK(nnu_pool_params_init(&p, N, C, in, st, cblk));
    const int64_t Si = ref_sp(p.in), So = ref_sp(p.out), nx = N * C * Si, ny = N * C * So;
    float *x = ref_falloc(nx), *gy = ref_falloc(ny), *xl = ref_falloc(nx), *gyl = ref_falloc(ny);
    float *yl = ref_falloc(ny), *gxl = ref_falloc(nx), *y = ref_falloc(ny), *gx = ref_falloc(nx);
    ref_fill(x, nx, -2, 2); ref_fill(gy, ny, -1, 1);
    double *xd = ref_to_double(x, nx), *gyd = ref_to_double(gy, ny);
    double *yr = ref_dalloc(ny), *gxr = ref_dalloc(nx);
    ref_avgpool(&p, xd, yr, gyd, gxr);
    to_layout(x, xl, N, C, Si, cblk);
    to_layout(gy, gyl, N, C, So, cblk);
    CHECK_OK(be->avgpool_fwd(be, xl, yl, &p));
    CHECK_OK(be->avgpool_bwd(be, gyl, gxl, &p));
    from_layout(yl, y, N, C, So, cblk);
    from_layout(gxl, gx, N, C, Si, cblk);
    char what[128];
    /* a sum of <= 8 fp32 values and one division against the double mean */
    snprintf(what, sizeof what, "%s fwd", label);
    ref_compare(what, y, yr, ny, TOL_NORM);
    snprintf(what, sizeof what, "%s bwd", label);
    ref_compare(what, gx, gxr, nx, TOL_NORM);
    free(x); free(gy); free(xl); free(gyl); free(yl); free(gxl); free(y); free(gx);
    free(xd); free(gyd); free(yr); free(gxr);
}

static void test_residual_ops(void) {
    const int s2[3] = {2, 2, 2}, s122[3] = {1, 2, 2}, s212[3] = {2, 1, 2}, s1[3] = {1, 1, 1};
    pool_case("avgpool s2 3-D", 2, 3, (const int64_t[]){4, 6, 10}, s2, 1);
    pool_case("avgpool s122 (2-D and anisotropic)", 1, 5, (const int64_t[]){3, 8, 6}, s122, 1);
    pool_case("avgpool s212", 2, 2, (const int64_t[]){2, 5, 4}, s212, 1);
    pool_case("avgpool s1 (copy)", 1, 2, (const int64_t[]){1, 3, 5}, s1, 1);
    pool_case("avgpool blocked 32 s2", 2, 32, (const int64_t[]){2, 4, 6}, s2, 16);
    COVER(avgpool_fwd); COVER(avgpool_bwd);
    /* exact: the mean of (1, 2, 3, 4) over a 1x2x2 window is 2.5; gx = gy/4 */
    float x[4] = {1, 2, 3, 4}, y[1], gy[1] = {2}, gx[4];
    nnu_pool_params p;
    CHECK_OK(nnu_pool_params_init(&p, 1, 1, (const int64_t[]){1, 2, 2}, s122, 1));
    CHECK_OK(be->avgpool_fwd(be, x, y, &p));
    CHECK_OK(be->avgpool_bwd(be, gy, gx, &p));
    CHECK(y[0] == 2.5f && gx[0] == 0.5f && gx[3] == 0.5f, "avgpool exact: y %g, gx %g %g", y[0],
          gx[0], gx[3]);
    CHECK_FAILS(nnu_pool_params_init(&p, 1, 1, (const int64_t[]){1, 3, 2}, s122, 1),
                NNU_STATUS_ERR_SHAPE, "not divisible");

    /* add_lrelu: y = lrelu(a + b), exact in fp32 (one add, one multiply); in place */
    float a[6] = {-2, -0.5f, 0, 0.25f, 3, -1e-3f}, b[6] = {1, 0.5f, 0, -1, -4, 2e-3f}, o[6];
    float ai[6];
    memcpy(ai, a, sizeof a);
    nnu_eltwise_params ep = {6, 0.01f};
    CHECK_OK(be->add_lrelu_fwd(be, a, b, o, &ep));
    CHECK_OK(be->add_lrelu_fwd(be, ai, b, ai, &ep));   /* y aliasing a */
    for (int i = 0; i < 6; i++) {
        float v = a[i] + b[i], want = v > 0 ? v : 0.01f * v;
        CHECK(o[i] == want && ai[i] == want, "add_lrelu [%d]: %g (in place %g), want %g", i, o[i],
              ai[i], want);
    }
    COVER(add_lrelu_fwd);
}

static void test_concat(void) {
    for (int cblk = 1; cblk <= 16; cblk += 15) {
        const int64_t N = 2, Ca = cblk == 16 ? 16 : 3, Cb = cblk == 16 ? 32 : 2, S = 11;
        float *a = ref_falloc(N * Ca * S), *b = ref_falloc(N * Cb * S);
        float *y = ref_falloc(N * (Ca + Cb) * S), *ga = ref_falloc(N * Ca * S), *gb = ref_falloc(N * Cb * S);
        ref_fill(a, N * Ca * S, -1, 1); ref_fill(b, N * Cb * S, -1, 1);
        float *al = ref_falloc(N * Ca * S), *bl = ref_falloc(N * Cb * S);
        to_layout(a, al, N, Ca, S, cblk); to_layout(b, bl, N, Cb, S, cblk);
        nnu_concat_params p = {N, Ca, Cb, S, cblk};
        CHECK_OK(be->concat_fwd(be, al, bl, y, &p));
        int bad = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < Ca + Cb; c++)
                for (int64_t s = 0; s < S; s++) {
                    float got = y[nnu_act_index(n, c, s, Ca + Cb, S, cblk)];
                    float want = c < Ca ? a[(n * Ca + c) * S + s] : b[(n * Cb + c - Ca) * S + s];
                    bad += got != want;
                }
        CHECK(bad == 0, "concat fwd cblk %d: %d wrong", cblk, bad);
        CHECK_OK(be->concat_bwd(be, y, ga, gb, &p));
        CHECK(!memcmp(ga, al, sizeof(float) * (size_t)(N * Ca * S)) &&
              !memcmp(gb, bl, sizeof(float) * (size_t)(N * Cb * S)), "concat bwd cblk %d", cblk);
        free(a); free(b); free(y); free(ga); free(gb); free(al); free(bl);
    }
    COVER(concat_fwd); COVER(concat_bwd);
}

static void test_softmax(void) {
    const int64_t N = 2, C = 5, S = 13, n = N * C * S;
    float *x = ref_falloc(n), *y = ref_falloc(n), *gy = ref_falloc(n), *gx = ref_falloc(n);
    ref_fill(x, n, -4, 4); ref_fill(gy, n, -1, 1);
    double *xd = ref_to_double(x, n), *yr = ref_dalloc(n), *gxr = ref_dalloc(n);
    ref_softmax(N, C, S, xd, yr);
    for (int64_t b = 0; b < N; b++)
        for (int64_t s = 0; s < S; s++) {
            double dot = 0;
            for (int64_t c = 0; c < C; c++) dot += yr[(b * C + c) * S + s] * gy[(b * C + c) * S + s];
            for (int64_t c = 0; c < C; c++)
                gxr[(b * C + c) * S + s] = yr[(b * C + c) * S + s] * (gy[(b * C + c) * S + s] - dot);
        }
    nnu_softmax_params p = {N, C, S};
    CHECK_OK(be->softmax_fwd(be, x, y, &p));
    ref_compare("softmax fwd", y, yr, n, TOL_SOFTMAX);
    CHECK_OK(be->softmax_bwd(be, y, gy, gx, &p));
    ref_compare("softmax bwd", gx, gxr, n, TOL_SOFTMAX);
    COVER(softmax_fwd); COVER(softmax_bwd);
    free(x); free(y); free(gy); free(gx); free(xd); free(yr); free(gxr);
}

/* ---- loss: forward against the literal reference; gradient by central
 * differences of the double reference (h = 1e-6). terms / smooth: the trainer variants'
 * settings (CE alone, Dice alone, smooth 0); void_first: every voxel of sample 0 is the
 * ignore label (its per-sample Dice groups are empty: with smooth 0 the 1e-8 clip acts) ---- */
static void loss_case(const char *label, int batch_dice, int ignore, int terms, float smooth,
                      int void_first) {
    const int64_t N = 2, K = 3, S = 19, n = N * K * S;
    nnu_loss_params p = {N, K, S, batch_dice, 0, ignore, smooth, 0.75f, terms};
    float *z = ref_falloc(n), *g = ref_falloc(n);
    int32_t t[2 * 19];
    ref_fill(z, n, -3, 3);
    for (int64_t i = 0; i < N * S; i++) t[i] = (int32_t)(ref_uniform() * (ignore >= 0 ? 4 : 3));
    for (int64_t i = 0; void_first && i < S; i++) t[i] = ignore;
    void *ws = malloc(nnu_loss_ws_size(&p));
    double loss;
    CHECK_OK(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p));
    double *zd = ref_to_double(z, n), *gr = ref_dalloc(n);
    double want = ref_loss(&p, zd, t);
    char what[128];
    snprintf(what, sizeof what, "%s loss", label);
    float lf = (float)loss;
    ref_compare(what, &lf, &want, 1, TOL_LOSS);
    CHECK_OK(be->loss_dice_ce_bwd(be, z, t, ws, g, &p));
    for (int64_t i = 0; i < n; i++) {
        double keep = zd[i];
        zd[i] = keep + 1e-6; double lp = ref_loss(&p, zd, t);
        zd[i] = keep - 1e-6; double lm = ref_loss(&p, zd, t);
        zd[i] = keep;
        gr[i] = p.weight * (lp - lm) / 2e-6;
    }
    snprintf(what, sizeof what, "%s grad", label);
    ref_compare(what, g, gr, n, TOL_LOSS_GRAD);
    free(z); free(g); free(ws); free(zd); free(gr);
}

static void test_loss(void) {
    const float s5 = 1e-5f;
    loss_case("dice+ce", 0, -1, NNU_LOSS_DICE_AND_CE, s5, 0);
    loss_case("dice+ce batch_dice", 1, -1, NNU_LOSS_DICE_AND_CE, s5, 0);
    loss_case("dice+ce ignore=3", 0, 3, NNU_LOSS_DICE_AND_CE, s5, 0);
    loss_case("ce only", 0, -1, NNU_LOSS_CE_ONLY, s5, 0);
    loss_case("ce only ignore=3", 0, 3, NNU_LOSS_CE_ONLY, s5, 0);
    loss_case("dice only", 0, -1, NNU_LOSS_DICE_ONLY, s5, 0);
    loss_case("dice only batch_dice ignore=3", 1, 3, NNU_LOSS_DICE_ONLY, s5, 0);
    loss_case("dice+ce smooth 0", 0, -1, NNU_LOSS_DICE_AND_CE, 0.0f, 0);
    loss_case("dice+ce smooth 0 ignore=3", 0, 3, NNU_LOSS_DICE_AND_CE, 0.0f, 0);
    loss_case("dice+ce smooth 0 ignore=3, sample 0 all ignored", 0, 3, NNU_LOSS_DICE_AND_CE, 0.0f, 1);
    loss_case("dice only smooth 0 batch_dice ignore=3", 1, 3, NNU_LOSS_DICE_ONLY, 0.0f, 0);
    COVER(loss_dice_ce_fwd); COVER(loss_dice_ce_bwd);
    /* exact: 2 classes, logits equal -> p = 1/2; targets (1, 0):
     * CE = log 2; I = 1/2, Sp = 1, Sy = 1 -> dc = (1 + s)/(2 + s) */
    float z[4] = {0, 0, 0, 0}, g[4];
    int32_t t[2] = {1, 0};
    nnu_loss_params p = {1, 2, 2, 0, 0, -1, 1e-5f, 1.0f, NNU_LOSS_DICE_AND_CE};
    char ws[512];
    double loss;
    CHECK_OK(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p));
    CHECK_CLOSE(loss, log(2.0) - (1 + 1e-5) / (2 + 1e-5), 1e-7, 0);
    /* the terms alone: CE = log 2, Dice = -(1 + s)/(2 + s); smooth 0: Dice = -1/2 */
    p.terms = NNU_LOSS_CE_ONLY;
    CHECK_OK(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p));
    CHECK_CLOSE(loss, log(2.0), 1e-7, 0);
    /* dCE/dz_k = (p_k - y_k)/M, M = 2 (layout [k][s]): v0 (t=1) (1/4, -1/4), v1 (t=0) (-1/4, 1/4) */
    CHECK_OK(be->loss_dice_ce_bwd(be, z, t, ws, g, &p));
    CHECK(g[0] == 0.25f && g[2] == -0.25f && g[1] == -0.25f && g[3] == 0.25f,
          "ce only grad (%g %g %g %g), want (0.25 -0.25 -0.25 0.25)", g[0], g[1], g[2], g[3]);
    p.terms = NNU_LOSS_DICE_ONLY;
    CHECK_OK(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p));
    CHECK_CLOSE(loss, -(1 + 1e-5) / (2 + 1e-5), 1e-7, 0);
    /* smooth 0, Dice of class 1 alone: den = 2, num = 1 -> dDice/dp_1 = -y + 1/4;
     * v0 (y = 1): g = (0, -3/4), <p, g> = -3/8 -> dz = (3/16, -3/16);
     * v1 (y = 0): g = (0, 1/4), <p, g> = 1/8 -> dz = (-1/16, 1/16) */
    p.smooth = 0.0f;
    CHECK_OK(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p));
    CHECK_CLOSE(loss, -0.5, 1e-12, 0);
    CHECK_OK(be->loss_dice_ce_bwd(be, z, t, ws, g, &p));
    CHECK(g[0] == 0.1875f && g[2] == -0.1875f && g[1] == -0.0625f && g[3] == 0.0625f,
          "dice only smooth 0 grad (%g %g %g %g), want (3/16 -1/16 -3/16 1/16)", g[0], g[1], g[2],
          g[3]);
    p.terms = NNU_LOSS_DICE_AND_CE;
    CHECK_OK(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p));
    CHECK_CLOSE(loss, log(2.0) - 0.5, 1e-12, 0);
    p.smooth = 1e-5f;
    int32_t bad[2] = {1, 5};
    CHECK_FAILS(be->loss_dice_ce_fwd(be, z, bad, ws, &loss, &p), NNU_STATUS_ERR_ARG, "label 5");
    p.terms = 3;
    CHECK_FAILS(be->loss_dice_ce_fwd(be, z, t, ws, &loss, &p), NNU_STATUS_ERR_ARG, "terms 3");
}

/* ---- Dice + BCE (regions): the literal reference, central differences, exact values ---- */
/* BraTS-like: labels 0..3 (+ ignore 4), regions {1,2,3}, {2,3}, {3} */
static nnu_loss_region_params brats_regions(int64_t N, int64_t S, int batch_dice, int ignore,
                                            float weight) {
    nnu_loss_region_params rp = {{N, 3, S, batch_dice, 1, ignore, 1e-5f, weight,
                                  NNU_LOSS_DICE_AND_CE}, 5, {0}};
    rp.label_regions[1] = 1u;                 /* whole tumour */
    rp.label_regions[2] = 1u | 2u;            /* + tumour core */
    rp.label_regions[3] = 1u | 2u | 4u;       /* + enhancing */
    return rp;
}

static void loss_bce_case(const char *label, int batch_dice, int ignore, int terms, float smooth,
                          int void_first) {
    const int64_t N = 2, R = 3, S = 19, n = N * R * S;
    nnu_loss_region_params rp = brats_regions(N, S, batch_dice, ignore, 0.75f);
    rp.base.terms = terms;
    rp.base.smooth = smooth;
    float *z = ref_falloc(n), *g = ref_falloc(n);
    int32_t t[2 * 19];
    ref_fill(z, n, -3, 3);
    for (int64_t i = 0; i < N * S; i++) t[i] = (int32_t)(ref_uniform() * (ignore >= 0 ? 5 : 4));
    for (int64_t i = 0; void_first && i < S; i++) t[i] = ignore;
    void *ws = malloc(nnu_loss_ws_size(&rp.base));
    double loss;
    CHECK_OK(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp));
    double *zd = ref_to_double(z, n), *gr = ref_dalloc(n);
    double want = ref_loss_bce(&rp, zd, t);
    char what[128];
    snprintf(what, sizeof what, "%s loss", label);
    float lf = (float)loss;
    ref_compare(what, &lf, &want, 1, TOL_LOSS);
    CHECK_OK(be->loss_dice_bce_bwd(be, z, t, ws, g, &rp));
    for (int64_t i = 0; i < n; i++) {
        double keep = zd[i];
        zd[i] = keep + 1e-6; double lp = ref_loss_bce(&rp, zd, t);
        zd[i] = keep - 1e-6; double lm = ref_loss_bce(&rp, zd, t);
        zd[i] = keep;
        gr[i] = rp.base.weight * (lp - lm) / 2e-6;
    }
    snprintf(what, sizeof what, "%s grad", label);
    ref_compare(what, g, gr, n, TOL_LOSS_GRAD);
    free(z); free(g); free(ws); free(zd); free(gr);
}

static void test_loss_bce(void) {
    const float s5 = 1e-5f;
    loss_bce_case("dice+bce", 0, -1, NNU_LOSS_DICE_AND_CE, s5, 0);
    loss_bce_case("dice+bce batch_dice", 1, -1, NNU_LOSS_DICE_AND_CE, s5, 0);
    loss_bce_case("dice+bce ignore=4", 0, 4, NNU_LOSS_DICE_AND_CE, s5, 0);
    loss_bce_case("bce only", 0, -1, NNU_LOSS_CE_ONLY, s5, 0);
    loss_bce_case("bce only ignore=4", 0, 4, NNU_LOSS_CE_ONLY, s5, 0);
    loss_bce_case("dice only (sigmoid, do_bg)", 0, -1, NNU_LOSS_DICE_ONLY, s5, 0);
    loss_bce_case("dice only batch_dice ignore=4", 1, 4, NNU_LOSS_DICE_ONLY, s5, 0);
    loss_bce_case("dice+bce smooth 0", 0, -1, NNU_LOSS_DICE_AND_CE, 0.0f, 0);
    loss_bce_case("dice+bce smooth 0 ignore=4", 0, 4, NNU_LOSS_DICE_AND_CE, 0.0f, 0);
    loss_bce_case("dice+bce smooth 0 ignore=4, sample 0 all ignored", 0, 4, NNU_LOSS_DICE_AND_CE,
                  0.0f, 1);
    COVER(loss_dice_bce_fwd); COVER(loss_dice_bce_bwd);
    /* exact: logits 0 -> p = 1/2, BCE = log 2 everywhere; labels (3, 0) over S = 2:
     * every region has y = (1, 0): I = 1/2, Sp = 1, Sy = 1 -> dc = (1 + s)/(2 + s) */
    float z[6] = {0}, g[6];
    int32_t t[2] = {3, 0};
    nnu_loss_region_params rp = brats_regions(1, 2, 0, -1, 1.0f);
    char ws[512];
    double loss;
    CHECK_OK(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp));
    CHECK_CLOSE(loss, log(2.0) - (1 + 1e-5) / (2 + 1e-5), 1e-7, 0);
    /* the terms alone: BCE = log 2, its gradient (p - y)/(N R S) = (-1/12, 1/12) for
     * y = (1, 0) in every region; Dice = -(1 + s)/(2 + s); smooth 0: Dice = -1/2 and
     * dDice/dp_r = (-2y/den + num/den^2)/G with den 2, num 1, G = 3 groups = (-y + 1/4)/3,
     * times p (1 - p) = 1/4: (-1/16, 1/48) */
    rp.base.terms = NNU_LOSS_CE_ONLY;
    CHECK_OK(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp));
    CHECK_CLOSE(loss, log(2.0), 1e-7, 0);
    CHECK_OK(be->loss_dice_bce_bwd(be, z, t, ws, g, &rp));
    for (int r = 0; r < 3; r++)
        CHECK(fabsf(g[r * 2] + 1.0f / 12) < 1e-7f && fabsf(g[r * 2 + 1] - 1.0f / 12) < 1e-7f,
              "bce only grad region %d (%g %g), want (-1/12 1/12)", r, g[r * 2], g[r * 2 + 1]);
    rp.base.terms = NNU_LOSS_DICE_ONLY;
    CHECK_OK(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp));
    CHECK_CLOSE(loss, -(1 + 1e-5) / (2 + 1e-5), 1e-7, 0);
    rp.base.smooth = 0.0f;
    CHECK_OK(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp));
    CHECK_CLOSE(loss, -0.5, 1e-12, 0);
    CHECK_OK(be->loss_dice_bce_bwd(be, z, t, ws, g, &rp));
    for (int r = 0; r < 3; r++)
        CHECK(fabsf(g[r * 2] + 0.0625f) < 1e-7f && fabsf(g[r * 2 + 1] - 1.0f / 48) < 1e-7f,
              "dice only smooth 0 grad region %d (%g %g), want (-1/16 1/48)", r, g[r * 2],
              g[r * 2 + 1]);
    rp.base.terms = NNU_LOSS_DICE_AND_CE;
    CHECK_OK(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp));
    CHECK_CLOSE(loss, log(2.0) - 0.5, 1e-12, 0);
    rp.base.smooth = 1e-5f;
    /* with ignore label 4 on the second voxel: BCE = 3 log 2 / 1 voxel (the reference
     * divides the channel sum by the voxel count); Dice I = 1/2, Sp = 1/2, Sy = 1 */
    int32_t ti[2] = {3, 4};
    rp = brats_regions(1, 2, 0, 4, 1.0f);
    CHECK_OK(be->loss_dice_bce_fwd(be, z, ti, ws, &loss, &rp));
    CHECK_CLOSE(loss, 3 * log(2.0) - (1 + 1e-5) / (1.5 + 1e-5), 1e-7, 0);
    int32_t bad[2] = {1, 7};
    CHECK_FAILS(be->loss_dice_bce_fwd(be, z, bad, ws, &loss, &rp), NNU_STATUS_ERR_ARG,
                "label 7 at flat index 1 outside [0, 5)");
    rp.label_regions[4] = 1u;
    CHECK_FAILS(be->loss_dice_bce_fwd(be, z, t, ws, &loss, &rp), NNU_STATUS_ERR_ARG,
                "ignore label 4 belongs to a region");
}

/* ---- SGD against hand-computed values (§7.1) ---- */
static void test_sgd(void) {
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f}, buf[2] = {0, 0};
    nnu_sgd_params p = {2, 0.1f, 0.9f, 0.01f, 1, 1};
    CHECK_OK(be->sgd_step(be, w, g, buf, &p));
    /* d = g + 0.01 w = (0.51, 0.23); buf = d; w -= 0.1 (d + 0.9 d) = 0.19 d */
    CHECK_CLOSE(buf[0], 0.51, 1e-7, 1e-6); CHECK_CLOSE(buf[1], 0.23, 1e-7, 1e-6);
    CHECK_CLOSE(w[0], 1.0 - 0.19 * 0.51, 1e-7, 1e-6);
    CHECK_CLOSE(w[1], -2.0 - 0.19 * 0.23, 1e-7, 1e-6);
    /* second step: d = g + 0.01 w; buf = 0.9 buf + d; w -= 0.1 (d + 0.9 buf) */
    double w0 = w[0], d = 0.5 + 0.01 * w0, b = 0.9 * 0.51 + d;
    p.first_step = 0;
    CHECK_OK(be->sgd_step(be, w, g, buf, &p));
    CHECK_CLOSE(buf[0], b, TOL_SGD.atol, TOL_SGD.rtol);
    CHECK_CLOSE(w[0], w0 - 0.1 * (d + 0.9 * b), TOL_SGD.atol, TOL_SGD.rtol);
    COVER(sgd_step);
}

/* ---- Adam (amsgrad) against hand-computed values (§7.9, PyTorch semantics) ---- */
static void test_adam(void) {
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.25f}, m[2] = {0}, v[2] = {0}, vm[2] = {0};
    nnu_adam_params p = {2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 1, 0};
    CHECK_OK(be->adam_step(be, w, g, m, v, vm, &p));
    /* step 1: m/(1-b1) = d and sqrt(v/(1-b2)) = |d|, so w -= lr * sign(d) */
    CHECK_CLOSE(w[0], 0.9, 1e-6, 0);
    CHECK_CLOSE(w[1], -1.9, 1e-6, 0);
    /* step 2 in double, the gradient now smaller: vmax keeps step 1's v */
    double wd[2] = {w[0], w[1]}, md[2] = {m[0], m[1]}, vd[2] = {v[0], v[1]}, vmd[2] = {vm[0], vm[1]};
    float g2[2] = {0.1f, 0.05f};
    p.step = 2;
    CHECK_OK(be->adam_step(be, w, g2, m, v, vm, &p));
    for (int i = 0; i < 2; i++) {
        double d = g2[i] + 0.01 * wd[i];
        md[i] = 0.9 * md[i] + 0.1 * d;
        vd[i] = 0.999 * vd[i] + 0.001 * d * d;
        vmd[i] = fmax(vmd[i], vd[i]);
        double want = wd[i] - 0.1 / (1 - 0.81) * md[i] / (sqrt(vmd[i]) / sqrt(1 - 0.998001) + 1e-8);
        CHECK_CLOSE(w[i], want, TOL_SGD.atol, TOL_SGD.rtol);
        CHECK_CLOSE(vm[i], vmd[i], 1e-12, 1e-5);
    }
    p.step = 0;
    CHECK_FAILS(be->adam_step(be, w, g2, m, v, vm, &p), NNU_STATUS_ERR_ARG, "1-based");

    /* AdamW (torch.optim.AdamW, amsgrad: the reference's nnUNetTrainerAdam): w *= 1 - lr*wd,
     * then the Adam step on g alone; two steps against the formula in double */
    float aw[2] = {1.0f, -2.0f}, am[2] = {0}, av[2] = {0}, avm[2] = {0};
    double ew[2] = {1.0, -2.0}, em[2] = {0}, ev[2] = {0}, evm[2] = {0};
    const float *ag[2] = {g, g2};
    nnu_adam_params q = {2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1, 1, 1};
    for (int step = 1; step <= 2; step++) {
        q.step = step;
        CHECK_OK(be->adam_step(be, aw, ag[step - 1], am, av, avm, &q));
        for (int i = 0; i < 2; i++) {
            double gi = ag[step - 1][i];
            ew[i] *= 1.0 - (double)0.1f * (double)0.01f;
            em[i] = 0.9 * em[i] + 0.1 * gi;
            ev[i] = 0.999 * ev[i] + 0.001 * gi * gi;
            evm[i] = fmax(evm[i], ev[i]);
            ew[i] -= (double)0.1f / (1 - pow(0.9, step)) * em[i] / (sqrt(evm[i]) / sqrt(1 - pow(0.999, step)) + 1e-8);
            CHECK_CLOSE(aw[i], ew[i], TOL_SGD.atol, TOL_SGD.rtol);
            CHECK_CLOSE(am[i], em[i], 1e-7, 1e-5);
        }
    }
    /* the decay shrinks w but is not in the moments: with g = 0 the moments stay 0 */
    float zw[1] = {2.0f}, zg[1] = {0.0f}, zm[1] = {0}, zv[1] = {0}, zvm[1] = {0};
    nnu_adam_params z = {1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 1, 1, 1};
    CHECK_OK(be->adam_step(be, zw, zg, zm, zv, zvm, &z));
    CHECK(zm[0] == 0.0f && zv[0] == 0.0f, "AdamW: moments of a zero gradient stay 0 (%g, %g)", zm[0], zv[0]);
    CHECK_CLOSE(zw[0], 2.0 * (1.0 - 0.1 * 0.5), 1e-6, 0);
    COVER(adam_step);
}

int main(void) {
    const uint64_t seed = 1234;
    fprintf(stderr, "test_backend_ops: seed %llu\n", (unsigned long long)seed);
    ref_seed(seed);
    be = nnu_backend_cpu();
    conv_be = be;
    conv_tol = TOL_CONV;
    conv_tol_bww = TOL_CONV_BWW;
    CHECK(!strcmp(be->name, "cpu"), "backend name %s", be->name);
    test_conv();
    test_conv_bf16();
    test_instnorm();
    test_eltwise();
    test_residual_ops();
    test_concat();
    test_softmax();
    test_loss();
    test_loss_bce();
    test_sgd();
    test_adam();
    for (int op = 0; op < NNU_OP_COUNT; op++) {
        CHECK(covered[op], "op '%s' has no test in test_backend_ops.c", nnu_op_name((nnu_op)op));
        CHECK(nnu_backend_supports(be, (nnu_op)op), "cpu backend lacks '%s'",
              nnu_op_name((nnu_op)op));
    }
    nnu_backend_stats st;
    be->get_stats(be, &st);
    fprintf(stderr, "oneDNN primitives created %lld, reorders %lld\n", (long long)st.primitives,
            (long long)st.reorders);
    return check_report();
}
