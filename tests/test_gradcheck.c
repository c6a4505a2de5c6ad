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
 * Tensors have at most ~1e3 elements. Seed fixed and printed.
 * Plus the whole tiny ResidualEncoderUNet (gc_resenc_net): the net's backward against
 * finite differences of its own fp32 forward, sampled entries of every parameter. */
#include "nnu_net.h"
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

/* ---- add + leaky ReLU (the residual block's end): inputs a, b; backward = lrelu_bwd
 * on the output y ---- */
static double addl_fd(gc_model *m) {
    double s = 0;
    for (int64_t i = 0; i < m->nout; i++) {
        double v = m->din[0][i] + m->din[1][i];
        s += (v > 0 ? v : 0.01 * v) * m->r[i];
    }
    return s;
}
static double addl_ff(gc_model *m) {
    float *y = ref_falloc(m->nout);
    nnu_eltwise_params p = {m->nout, 0.01f};
    CHECK_OK(be->add_lrelu_fwd(be, m->in[0], m->in[1], y, &p));
    double s = dot_f(y, m->r, m->nout);
    free(y);
    return s;
}
static void addl_an(gc_model *m, float **g) {
    nnu_eltwise_params p = {m->nout, 0.01f};
    float *y = ref_falloc(m->nout);
    CHECK_OK(be->add_lrelu_fwd(be, m->in[0], m->in[1], y, &p));
    CHECK_OK(be->lrelu_bwd(be, y, m->rf, g[0], &p));   /* d/da = d/db = lrelu'(y) * r */
    memcpy(g[1], g[0], (size_t)m->nout * sizeof(float));
    free(y);
}

/* ---- average pooling (kernel = stride): input x ---- */
static double pool_fd(gc_model *m) {
    double *y = ref_dalloc(m->nout);
    ref_avgpool(m->p, m->din[0], y, NULL, NULL);
    double s = dot_d(y, m->r, m->nout);
    free(y);
    return s;
}
static double pool_ff(gc_model *m) {
    float *y = ref_falloc(m->nout);
    CHECK_OK(be->avgpool_fwd(be, m->in[0], y, m->p));
    double s = dot_f(y, m->r, m->nout);
    free(y);
    return s;
}
static void pool_an(gc_model *m, float **g) { CHECK_OK(be->avgpool_bwd(be, m->rf, g[0], m->p)); }
static void gc_pool(const char *name, int64_t N, int64_t C, const int64_t in[3], const int st[3]) {
    nnu_pool_params p;
    CHECK_OK(nnu_pool_params_init(&p, N, C, in, st, 1));
    gc_model m = {.name = name, .nin = 1, .in_name = {"x"}, .p = &p,
                  .f_double = pool_fd, .f_float = pool_ff, .analytic = pool_an};
    m.len[0] = N * C * ref_sp(p.in);
    m.in[0] = ref_falloc(m.len[0]);
    ref_fill(m.in[0], m.len[0], -1, 1);
    gc_objective(&m, N * C * ref_sp(p.out));
    gc_run(&m);
    gc_free(&m);
}

/* ---- a tiny ResidualEncoderUNet, end to end ----
 * 3-D, 3 stages (features 4 / 8 / 8: stage 1 strides and projects, stage 2 strides
 * without a channel change, so the skip is the pool alone), blocks 1 / 2 / 1, 2 -> 3
 * classes, batch 2, patch 4x4x8. Objective L = sum r * out0 (the full-resolution
 * head: nnu_net_backward propagates the heads of non-zero deep-supervision weight,
 * here out0 only). Leaky-ReLU slope 1: with 0.01 the stencils cross kinks of the
 * ~3e3 voxels' activations and the differences are noise at the percent level (the
 * masks are checked by the op cases above and by test_net_resenc.c against PyTorch).
 * Every parameter tensor is checked at up to 6 entries (the first,
 * the last and 4 spread between): the analytic gradient of nnu_net_backward against
 * the 4-point formula on the fp32 forward with step GC_NET_EPS (the float64 PyTorch
 * comparison of the same backward is test_net_resenc.c). Weights are random
 * (gamma in [0.5, 1.5], so conv2.norm is not the zero of the reference init, which
 * would cut every main path's gradient). Conv biases in front of an instance norm
 * have a zero gradient in exact arithmetic: they are checked in absolute terms. */
static double net_objective(nnu_net *net, const float *x, int64_t N, const int64_t patch[3],
                            const double *r) {
    CHECK_OK(nnu_net_forward(net, x, N, patch, 1));
    int64_t sh[5];
    const float *y = nnu_net_output(net, 0, sh);
    double s = 0;
    for (int64_t i = 0; i < sh[0] * sh[1] * sh[2] * sh[3] * sh[4]; i++) s += (double)y[i] * r[i];
    return s;
}

static void gc_resenc_net(void) {
    nnu_net_config c;
    memset(&c, 0, sizeof c);
    c.dim = 3;
    c.arch = NNU_NET_RESENC;
    c.n_stages = 3;
    const int F[3] = {4, 8, 8}, nb[3] = {1, 2, 1};
    for (int s = 0; s < 3; s++) {
        c.features[s] = F[s];
        c.n_blocks_enc[s] = nb[s];
        for (int a = 0; a < 3; a++) {
            c.kernel[s][a] = 3;
            c.stride[s][a] = s == 0 || (s == 2 && a == 0) ? 1 : 2;   /* stage 2: (1, 2, 2) */
        }
    }
    c.n_conv_dec[0] = c.n_conv_dec[1] = 1;
    c.in_channels = 2;
    c.num_classes = 3;
    c.conv_bias = 1;
    c.norm_eps = 1e-5f;
    c.slope = 1.0f;   /* smooth: finite differences across leaky-ReLU kinks are noise */
    c.deep_supervision = 1;
    c.ignore_label = -1;
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(be, &c, 11, &net));
    if (!net) return;
    const int64_t N = 2, patch[3] = {4, 8, 8}, nx = N * 2 * 4 * 8 * 8;
    float *w = nnu_net_params(net);
    for (int t = 0; t < nnu_net_num_tensors(net); t++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, t);
        if (strstr(ti->name, "norm.weight")) ref_fill(w + ti->offset, ti->numel, 0.5, 1.5);
        else if (ti->ndim == 1) ref_fill(w + ti->offset, ti->numel, -0.2, 0.2);
        else ref_fill(w + ti->offset, ti->numel, -0.4, 0.4);
    }
    float *x = ref_falloc(nx);
    ref_fill(x, nx, -1, 1);
    const int64_t ny = N * 3 * 4 * 8 * 8;
    float *rf = ref_falloc(ny);
    ref_fill(rf, ny, -1, 1);
    double *r = ref_to_double(rf, ny);
    CHECK_OK(nnu_net_zero_grad(net));
    net_objective(net, x, N, patch, r);
    CHECK(nnu_net_num_outputs(net) == 2, "resenc gradcheck: %d outputs", nnu_net_num_outputs(net));
    memcpy(nnu_net_output_grad(net, 0), rf, (size_t)ny * sizeof(float));
    CHECK_OK(nnu_net_backward(net));
    const float *g = nnu_net_grads(net);
    double num = 0, den = 0, gmax = 0, bias_max = 0;
    int checked = 0;
    for (int t = 0; t < nnu_net_num_tensors(net); t++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, t);
        const int before_norm = strstr(ti->name, ".conv.bias") != NULL;
        const int64_t pick[6] = {0, ti->numel / 5, 2 * ti->numel / 5, 3 * ti->numel / 5,
                                 4 * ti->numel / 5, ti->numel - 1};
        for (int k = 0; k < 6; k++) {
            if (k && pick[k] == pick[k - 1]) continue;
            float *pw = w + ti->offset + pick[k];
            const float keep = *pw;
            double f[4];
            const double off[4] = {2, 1, -1, -2};
            for (int q = 0; q < 4; q++) {
                *pw = (float)(keep + off[q] * GC_NET_EPS);
                f[q] = net_objective(net, x, N, patch, r);
            }
            *pw = keep;
            const double fd = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * GC_NET_EPS);
            const double an = g[ti->offset + pick[k]];
            checked++;
            if (before_norm) {   /* zero in exact arithmetic */
                bias_max = fmax(bias_max, fmax(fabs(fd), fabs(an)));
                continue;
            }
            num += fabs(fd - an);
            den += fabs(an);
            gmax = fmax(gmax, fabs(an));
            if (fabs(fd - an) > GC_NET_ATOL_REL * fmax(fabs(an), 0.1) * 10)
                fprintf(stderr, "  resenc %s[%lld]: fd %.6g analytic %.6g\n", ti->name,
                        (long long)pick[k], fd, an);
        }
    }
    const double rel = num / (den > 0 ? den : 1);
    CHECK(rel < GC_NET_RTOL, "resenc net: mean relative error %.3g over %d entries", rel, checked);
    CHECK(bias_max < GC_NET_BIAS_ATOL * gmax, "resenc net: biases before a norm: |grad| %.3g "
          "(max |grad| %.3g)", bias_max, gmax);
    fprintf(stderr, "  %-28s %d entries of %d tensors: fp32 mean-rel %.2e, biases before a norm "
            "%.2e (max |grad| %.2e)\n", "resenc net", checked, nnu_net_num_tensors(net), rel,
            bias_max, gmax);
    free(x); free(rf); free(r);
    nnu_net_free(net);
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
/* terms / smooth: the loss variants (CE alone, Dice alone, smooth 0) */
static void gc_loss(const char *name, int batch_dice, int ignore, int terms, float smooth) {
    nnu_loss_params p = {2, 3, 15, batch_dice, 0, ignore, smooth, 1.0f, terms};
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
static void gc_loss_bce(const char *name, int batch_dice, int ignore, int terms, float smooth) {
    nnu_loss_region_params p = {{2, 2, 15, batch_dice, 1, ignore, smooth, 1.0f, terms}, 4, {0}};
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
    {
        gc_model m = {.name = "add_lrelu", .nin = 2, .in_name = {"a", "b"},
                      .f_double = addl_fd, .f_float = addl_ff, .analytic = addl_an};
        m.len[0] = m.len[1] = 60;
        m.in[0] = ref_falloc(60);
        m.in[1] = ref_falloc(60);
        /* keep |a + b| > 0.05 (> 2 * 2 eps_f32) so no stencil straddles the kink */
        for (int i = 0; i < 60; i++) {
            float a = (float)(2 * ref_uniform() - 1), v = (float)(0.05 + ref_uniform());
            m.in[0][i] = a;
            m.in[1][i] = (i % 2 ? v : -v) - a;
        }
        gc_objective(&m, 60);
        gc_run(&m);
        gc_free(&m);
    }
    gc_pool("avgpool s2", 2, 2, (const int64_t[]){2, 4, 6}, s2);
    gc_pool("avgpool s122", 1, 3, (const int64_t[]){3, 4, 2}, s122);
    gc_resenc_net();
    const int DC = NNU_LOSS_DICE_AND_CE, CE = NNU_LOSS_CE_ONLY, DO = NNU_LOSS_DICE_ONLY;
    gc_loss("dice+ce", 0, -1, DC, 1e-5f);
    gc_loss("dice+ce batch_dice", 1, -1, DC, 1e-5f);
    gc_loss("dice+ce ignore=3", 0, 3, DC, 1e-5f);
    gc_loss("ce only ignore=3", 0, 3, CE, 1e-5f);
    gc_loss("dice only ignore=3", 0, 3, DO, 1e-5f);
    gc_loss("dice only batch_dice", 1, -1, DO, 1e-5f);
    gc_loss("dice+ce smooth 0 ignore=3", 0, 3, DC, 0.0f);
    gc_loss_bce("dice+bce regions", 0, -1, DC, 1e-5f);
    gc_loss_bce("dice+bce regions batch_dice", 1, -1, DC, 1e-5f);
    gc_loss_bce("dice+bce regions ignore=3", 0, 3, DC, 1e-5f);
    gc_loss_bce("bce only regions ignore=3", 0, 3, CE, 1e-5f);
    gc_loss_bce("dice only regions ignore=3", 0, 3, DO, 1e-5f);
    gc_loss_bce("dice+bce regions smooth 0 ignore=3", 0, 3, DC, 0.0f);
    return check_report();
}
