/* test_gradcheck.c: finite-difference gradient checks of every differentiable op,
 * for its input and each parameter (STYLE R27; tolerances in tolerances.h).
 *
 * Objective: L = sum_i r_i * y_i with fixed random r (so the backward gets gy = r),
 * or the loss itself for the Dice + CE op.
 *  - double variant: the op's analytic fp32 backward against central differences
 *    (eps 1e-6) of the naive double reference forward (ops_ref.h), whose agreement
 *    with the op's forward test_backend_ops.c establishes; max-abs error < 1e-5;
 *  - float32 variant: the op's own fp32 forward, 4-point formula with eps 1e-2,
 *    mean |fd - analytic| / mean |analytic| < 1e-3.
 * Tensors have at most ~1e3 elements. Seed fixed and printed. */
#include "ops_ref.h"

static const nnu_backend *be;

enum { GC_MAX_IN = 3 };

typedef struct gc_model gc_model;
struct gc_model {
    const char *name;
    int nin;
    const char *in_name[GC_MAX_IN];
    float *in[GC_MAX_IN];          /* fp32 inputs of the op */
    double *din[GC_MAX_IN];        /* double copies for the reference */
    int64_t len[GC_MAX_IN];
    int64_t nout;
    double *r;                     /* objective weights, nout (NULL for the loss) */
    float *rf;
    double (*f_double)(gc_model *m);                 /* objective, double reference */
    double (*f_float)(gc_model *m);                  /* objective, fp32 op */
    void (*analytic)(gc_model *m, float **grad);     /* fp32 op backward */
    void *p;                                         /* op params */
    const int32_t *target;                           /* loss only */
};

static double dot_f(const float *y, const double *r, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)y[i] * r[i];
    return s;
}
static double dot_d(const double *y, const double *r, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += y[i] * r[i];
    return s;
}

static void gc_run(gc_model *m) {
    float *g[GC_MAX_IN];
    for (int j = 0; j < m->nin; j++) {
        g[j] = ref_falloc(m->len[j]);
        m->din[j] = ref_to_double(m->in[j], m->len[j]);
    }
    m->analytic(m, g);
    for (int j = 0; j < m->nin; j++) {
        /* double: central differences of the reference */
        double maxd = 0;
        int64_t maxi = 0;
        for (int64_t i = 0; i < m->len[j]; i++) {
            double keep = m->din[j][i];
            m->din[j][i] = keep + GC_EPS_DOUBLE;
            double lp = m->f_double(m);
            m->din[j][i] = keep - GC_EPS_DOUBLE;
            double lm = m->f_double(m);
            m->din[j][i] = keep;
            double d = fabs((lp - lm) / (2 * GC_EPS_DOUBLE) - g[j][i]);
            if (d > maxd || d != d) { maxd = d; maxi = i; }
        }
        CHECK(maxd < GC_ATOL_DOUBLE, "%s d/d%s (double): max |fd - analytic| = %.3g at %lld",
              m->name, m->in_name[j], maxd, (long long)maxi);
        /* float32: 4-point formula on the op itself */
        double num = 0, den = 0;
        for (int64_t i = 0; i < m->len[j]; i++) {
            float keep = m->in[j][i];
            double f[4];
            const double off[4] = {2, 1, -1, -2};
            for (int q = 0; q < 4; q++) {
                m->in[j][i] = (float)(keep + off[q] * GC_EPS_F32);
                f[q] = m->f_float(m);
            }
            m->in[j][i] = keep;
            double fd = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * GC_EPS_F32);
            num += fabs(fd - g[j][i]);
            den += fabs(g[j][i]);
        }
        double rel = num / (den > 0 ? den : 1);
        CHECK(rel < GC_RTOL_F32, "%s d/d%s (fp32): mean relative error %.3g", m->name,
              m->in_name[j], rel);
        fprintf(stderr, "  %-28s d/d%-6s double max-abs %.2e  fp32 mean-rel %.2e\n", m->name,
                m->in_name[j], maxd, rel);
    }
    for (int j = 0; j < m->nin; j++) { free(g[j]); free(m->din[j]); }
}

static void gc_objective(gc_model *m, int64_t nout) {
    m->nout = nout;
    m->rf = ref_falloc(nout);
    ref_fill(m->rf, nout, -1, 1);
    m->r = ref_to_double(m->rf, nout);
}
static void gc_free(gc_model *m) {
    for (int j = 0; j < m->nin; j++) free(m->in[j]);
    free(m->r);
    free(m->rf);
}

/* ---- conv / transposed conv: inputs x, w, b ---- */
static double conv_fd(gc_model *m) {
    double *y = ref_dalloc(m->nout);
    ref_conv(m->p, m->din[0], m->din[1], m->din[2], y, NULL, NULL, NULL, NULL);
    double s = dot_d(y, m->r, m->nout);
    free(y);
    return s;
}
static double conv_ff(gc_model *m) {
    const nnu_conv_params *p = m->p;
    float *y = ref_falloc(m->nout);
    CHECK_OK((p->transposed ? be->convt_fwd : be->conv_fwd)(be, m->in[0], y, m->in[1], m->in[2], p));
    double s = dot_f(y, m->r, m->nout);
    free(y);
    return s;
}
static void conv_an(gc_model *m, float **g) {
    const nnu_conv_params *p = m->p;
    CHECK_OK((p->transposed ? be->convt_bwd_data : be->conv_bwd_data)(be, m->rf, g[0], m->in[1], p));
    CHECK_OK((p->transposed ? be->convt_bwd_params : be->conv_bwd_params)(be, m->in[0], m->rf,
                                                                            g[1], g[2], p));
}
static void gc_conv(const char *name, int transposed, int64_t N, int64_t Ci, int64_t Co,
                    const int64_t in[3], const int k[3], const int s[3]) {
    nnu_conv_params p;
    CHECK_OK(nnu_conv_params_init(&p, N, Ci, Co, in, k, s, transposed, 1, 1));
    gc_model m = {.name = name, .nin = 3, .in_name = {"x", "w", "b"}, .p = &p,
                  .f_double = conv_fd, .f_float = conv_ff, .analytic = conv_an};
    m.len[0] = N * Ci * ref_sp(p.in);
    m.len[1] = Ci * Co * k[0] * k[1] * k[2];
    m.len[2] = Co;
    for (int j = 0; j < 3; j++) { m.in[j] = ref_falloc(m.len[j]); ref_fill(m.in[j], m.len[j], -1, 1); }
    gc_objective(&m, N * Co * ref_sp(p.out));
    gc_run(&m);
    gc_free(&m);
}

/* ---- instance norm (+ leaky ReLU): inputs x, gamma, beta ---- */
static double norm_fd(gc_model *m) {
    double *y = ref_dalloc(m->nout);
    ref_instnorm_fwd(m->p, m->din[0], m->din[1], m->din[2], y);
    double s = dot_d(y, m->r, m->nout);
    free(y);
    return s;
}
static double norm_ff(gc_model *m) {
    const nnu_norm_params *p = m->p;
    float *y = ref_falloc(m->nout), *st = ref_falloc(p->n * p->c * 2);
    CHECK_OK(be->instnorm_fwd(be, m->in[0], y, m->in[1], m->in[2], st, p));
    double s = dot_f(y, m->r, m->nout);
    free(y); free(st);
    return s;
}
static void norm_an(gc_model *m, float **g) {
    const nnu_norm_params *p = m->p;
    float *y = ref_falloc(m->nout), *st = ref_falloc(p->n * p->c * 2);
    CHECK_OK(be->instnorm_fwd(be, m->in[0], y, m->in[1], m->in[2], st, p));
    CHECK_OK(be->instnorm_bwd(be, m->in[0], m->rf, g[0], m->in[1], m->in[2], g[1], g[2], st, p));
    free(y); free(st);
}
static void gc_norm(const char *name, int64_t N, int64_t C, int64_t S, float slope) {
    nnu_norm_params p = {N, C, S, 1, 1e-5f, slope};
    gc_model m = {.name = name, .nin = 3, .in_name = {"x", "gamma", "beta"}, .p = &p,
                  .f_double = norm_fd, .f_float = norm_ff, .analytic = norm_an};
    m.len[0] = N * C * S; m.len[1] = C; m.len[2] = C;
    for (int j = 0; j < 3; j++) m.in[j] = ref_falloc(m.len[j]);
    ref_fill(m.in[0], m.len[0], -2, 2);
    ref_fill(m.in[1], C, 0.5, 1.5);
    ref_fill(m.in[2], C, -0.3, 0.3);
    gc_objective(&m, m.len[0]);
    gc_run(&m);
    gc_free(&m);
}

/* ---- leaky ReLU ---- */
static double lrelu_fd(gc_model *m) {
    double s = 0;
    for (int64_t i = 0; i < m->nout; i++) {
        double x = m->din[0][i];
        s += (x > 0 ? x : 0.01 * x) * m->r[i];
    }
    return s;
}
static double lrelu_ff(gc_model *m) {
    float *y = ref_falloc(m->nout);
    nnu_eltwise_params p = {m->nout, 0.01f};
    CHECK_OK(be->lrelu_fwd(be, m->in[0], y, &p));
    double s = dot_f(y, m->r, m->nout);
    free(y);
    return s;
}
static void lrelu_an(gc_model *m, float **g) {
    nnu_eltwise_params p = {m->nout, 0.01f};
    CHECK_OK(be->lrelu_bwd(be, m->in[0], m->rf, g[0], &p));
}

/* ---- softmax ---- */
static double softmax_fd(gc_model *m) {
    const nnu_softmax_params *p = m->p;
    double *y = ref_dalloc(m->nout);
    ref_softmax(p->n, p->c, p->s, m->din[0], y);
    double s = dot_d(y, m->r, m->nout);
    free(y);
    return s;
}
static double softmax_ff(gc_model *m) {
    float *y = ref_falloc(m->nout);
    CHECK_OK(be->softmax_fwd(be, m->in[0], y, m->p));
    double s = dot_f(y, m->r, m->nout);
    free(y);
    return s;
}
static void softmax_an(gc_model *m, float **g) {
    float *y = ref_falloc(m->nout);
    CHECK_OK(be->softmax_fwd(be, m->in[0], y, m->p));
    CHECK_OK(be->softmax_bwd(be, y, m->rf, g[0], m->p));
    free(y);
}

/* ---- concat: inputs a, b ---- */
static double concat_fd(gc_model *m) {
    const nnu_concat_params *p = m->p;
    double s = 0;
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t c = 0; c < p->c_a + p->c_b; c++)
            for (int64_t v = 0; v < p->s; v++) {
                double x = c < p->c_a ? m->din[0][(n * p->c_a + c) * p->s + v]
                                      : m->din[1][(n * p->c_b + c - p->c_a) * p->s + v];
                s += x * m->r[(n * (p->c_a + p->c_b) + c) * p->s + v];
            }
    return s;
}
static double concat_ff(gc_model *m) {
    float *y = ref_falloc(m->nout);
    CHECK_OK(be->concat_fwd(be, m->in[0], m->in[1], y, m->p));
    double s = dot_f(y, m->r, m->nout);
    free(y);
    return s;
}
static void concat_an(gc_model *m, float **g) {
    CHECK_OK(be->concat_bwd(be, m->rf, g[0], g[1], m->p));
}

/* ---- Dice + CE loss (objective = the loss) ---- */
static double loss_fd(gc_model *m) { return ref_loss(m->p, m->din[0], m->target); }
static double loss_ff(gc_model *m) {
    const nnu_loss_params *p = m->p;
    void *ws = malloc(nnu_loss_ws_size(p));
    double l = 0;
    CHECK_OK(be->loss_dice_ce_fwd(be, m->in[0], m->target, ws, &l, p));
    free(ws);
    return l;
}
static void loss_an(gc_model *m, float **g) {
    const nnu_loss_params *p = m->p;
    void *ws = malloc(nnu_loss_ws_size(p));
    double l;
    CHECK_OK(be->loss_dice_ce_fwd(be, m->in[0], m->target, ws, &l, p));
    CHECK_OK(be->loss_dice_ce_bwd(be, m->in[0], m->target, ws, g[0], p));
    free(ws);
}
static void gc_loss(const char *name, int batch_dice, int ignore) {
    nnu_loss_params p = {2, 3, 15, batch_dice, 0, ignore, 1e-5f, 1.0f};
    int32_t t[30];
    for (int i = 0; i < 30; i++) t[i] = (int32_t)(ref_uniform() * (ignore >= 0 ? 4 : 3));
    gc_model m = {.name = name, .nin = 1, .in_name = {"logits"}, .p = &p, .target = t,
                  .f_double = loss_fd, .f_float = loss_ff, .analytic = loss_an};
    m.len[0] = 2 * 3 * 15;
    m.in[0] = ref_falloc(m.len[0]);
    ref_fill(m.in[0], m.len[0], -2, 2);
    gc_run(&m);
    free(m.in[0]);
}

/* ---- Dice + BCE loss, regions (objective = the loss) ---- */
static double lossb_fd(gc_model *m) { return ref_loss_bce(m->p, m->din[0], m->target); }
static double lossb_ff(gc_model *m) {
    const nnu_loss_region_params *p = m->p;
    void *ws = malloc(nnu_loss_ws_size(&p->base));
    double l = 0;
    CHECK_OK(be->loss_dice_bce_fwd(be, m->in[0], m->target, ws, &l, p));
    free(ws);
    return l;
}
static void lossb_an(gc_model *m, float **g) {
    const nnu_loss_region_params *p = m->p;
    void *ws = malloc(nnu_loss_ws_size(&p->base));
    double l;
    CHECK_OK(be->loss_dice_bce_fwd(be, m->in[0], m->target, ws, &l, p));
    CHECK_OK(be->loss_dice_bce_bwd(be, m->in[0], m->target, ws, g[0], p));
    free(ws);
}
/* overlapping regions {1,2}, {2} of labels 0..2 (+ ignore 3) */
static void gc_loss_bce(const char *name, int batch_dice, int ignore) {
    nnu_loss_region_params p = {{2, 2, 15, batch_dice, 1, ignore, 1e-5f, 1.0f}, 4, {0}};
    p.label_regions[1] = 1u;
    p.label_regions[2] = 3u;
    int32_t t[30];
    for (int i = 0; i < 30; i++) t[i] = (int32_t)(ref_uniform() * (ignore >= 0 ? 4 : 3));
    gc_model m = {.name = name, .nin = 1, .in_name = {"logits"}, .p = &p, .target = t,
                  .f_double = lossb_fd, .f_float = lossb_ff, .analytic = lossb_an};
    m.len[0] = 2 * 2 * 15;
    m.in[0] = ref_falloc(m.len[0]);
    ref_fill(m.in[0], m.len[0], -2, 2);
    gc_run(&m);
    free(m.in[0]);
}

int main(void) {
    const uint64_t seed = 4321;
    fprintf(stderr, "test_gradcheck: seed %llu\n", (unsigned long long)seed);
    ref_seed(seed);
    be = nnu_backend_cpu();
    /* thousands of tiny forward calls: one thread avoids paying a parallel region
     * (and, on a busy machine, a scheduler slice) per call; threading is covered by
     * test_backend_ops and test_net */
    nnu_backend_cpu_set_threads(1);
    const int k3[3] = {3, 3, 3}, k133[3] = {1, 3, 3}, s1[3] = {1, 1, 1}, s2[3] = {2, 2, 2};
    const int s122[3] = {1, 2, 2};
    gc_conv("conv3d k3 s2", 0, 1, 2, 3, (const int64_t[]){3, 4, 5}, k3, s2);
    gc_conv("conv3d k3 s1 D=2", 0, 1, 2, 2, (const int64_t[]){2, 3, 4}, k3, s1);
    gc_conv("conv2d k3 s1", 0, 2, 2, 3, (const int64_t[]){1, 5, 4}, k133, s1);
    gc_conv("conv3d k1", 0, 2, 3, 2, (const int64_t[]){2, 3, 3}, (const int[]){1, 1, 1}, s1);
    gc_conv("convt3d s2", 1, 1, 3, 2, (const int64_t[]){2, 2, 3}, s2, s2);
    gc_conv("convt2d s122", 1, 2, 2, 3, (const int64_t[]){1, 3, 2}, s122, s122);
    gc_norm("instnorm+lrelu", 2, 3, 20, 0.01f);
    gc_norm("instnorm (slope 1)", 2, 2, 17, 1.0f);
    {
        gc_model m = {.name = "lrelu", .nin = 1, .in_name = {"x"},
                      .f_double = lrelu_fd, .f_float = lrelu_ff, .analytic = lrelu_an};
        m.len[0] = 60;
        m.in[0] = ref_falloc(60);
        /* keep |x| > 2*eps_f32 so the 4-point stencil never straddles the kink */
        for (int i = 0; i < 60; i++) {
            float v = (float)(0.05 + ref_uniform());
            m.in[0][i] = i % 2 ? v : -v;
        }
        gc_objective(&m, 60);
        gc_run(&m);
        gc_free(&m);
    }
    {
        nnu_softmax_params p = {2, 4, 10};
        gc_model m = {.name = "softmax", .nin = 1, .in_name = {"x"}, .p = &p,
                      .f_double = softmax_fd, .f_float = softmax_ff, .analytic = softmax_an};
        m.len[0] = 80;
        m.in[0] = ref_falloc(80);
        ref_fill(m.in[0], 80, -2, 2);
        gc_objective(&m, 80);
        gc_run(&m);
        gc_free(&m);
    }
    {
        nnu_concat_params p = {2, 3, 2, 7, 1};
        gc_model m = {.name = "concat", .nin = 2, .in_name = {"a", "b"}, .p = &p,
                      .f_double = concat_fd, .f_float = concat_ff, .analytic = concat_an};
        m.len[0] = 2 * 3 * 7; m.len[1] = 2 * 2 * 7;
        for (int j = 0; j < 2; j++) { m.in[j] = ref_falloc(m.len[j]); ref_fill(m.in[j], m.len[j], -1, 1); }
        gc_objective(&m, 2 * 5 * 7);
        gc_run(&m);
        gc_free(&m);
    }
    gc_loss("dice+ce", 0, -1);
    gc_loss("dice+ce batch_dice", 1, -1);
    gc_loss("dice+ce ignore=3", 0, 3);
    gc_loss_bce("dice+bce regions", 0, -1);
    gc_loss_bce("dice+bce regions batch_dice", 1, -1);
    gc_loss_bce("dice+bce regions ignore=3", 0, 3);
    return check_report();
}
