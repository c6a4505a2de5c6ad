/* test_net_resenc.c: the ResidualEncoderUNet (nnu_net arch NNU_NET_RESENC) against
 * PyTorch (STYLE R26 tier 2), plus its initialisation, layouts and plans.
 *
 * Fixtures tests/fixtures/resenc{3d,2d}.safetensors come from
 * tests/gen/make_resenc_fixture.py (nnunetv2 2.8.1's get_network_from_plans builds the
 * network from ResEnc arch_kwargs; random float32 weights; float64 reference values):
 * the weights under the reference's parameter names, loaded with nnu_net_load (so a
 * PyTorch state dict of the same architecture loads by name), the parameter order
 * (metadata named_parameters), the eval-mode logits, the training-mode deep-supervision
 * outputs, and dL/dw of L = sum(r * out0) for a few parameters. Checked on the lean
 * inference plan, the training plan, and inference on the training plan.
 * Also: reference init (He normal, conv2.norm gamma = beta = 0), the blocked layout
 * (cblk 16) against the plain one on the same weights, save/load by name, and the
 * configuration errors. Tolerances: tests/tolerances.h (TOL_NET_*). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_net.h"
#include "nnu_safetensors.h"
#include "ops_ref.h"
#include "tolerances.h"

#define REGEN "HINT: regenerate with /tmp/refenv/bin/python tests/gen/make_resenc_fixture.py"

/* the configurations of make_resenc_fixture.py's CASES */
static void config_3d(nnu_net_config *c) {
    memset(c, 0, sizeof *c);
    c->dim = 3;
    c->arch = NNU_NET_RESENC;
    c->n_stages = 3;
    const int F[3] = {4, 8, 16}, nb[3] = {1, 2, 2};
    for (int s = 0; s < 3; s++) {
        c->features[s] = F[s];
        c->n_blocks_enc[s] = nb[s];
        for (int a = 0; a < 3; a++) {
            c->kernel[s][a] = 3;
            c->stride[s][a] = s ? 2 : 1;
        }
    }
    c->n_conv_dec[0] = c->n_conv_dec[1] = 1;
    c->in_channels = 2;
    c->num_classes = 3;
    c->conv_bias = 1;
    c->norm_eps = 1e-5f;
    c->slope = 0.01f;
    c->deep_supervision = 1;
    c->ignore_label = -1;
}

static void config_2d(nnu_net_config *c) {
    config_3d(c);
    c->dim = 2;
    const int F[3] = {4, 8, 8}, nb[3] = {1, 1, 2};
    const int st[3][3] = {{1, 1, 1}, {1, 2, 2}, {1, 2, 1}};
    for (int s = 0; s < 3; s++) {
        c->features[s] = F[s];
        c->n_blocks_enc[s] = nb[s];
        c->kernel[s][0] = 1;
        for (int a = 0; a < 3; a++) c->stride[s][a] = st[s][a];
    }
    c->in_channels = 1;
    c->num_classes = 2;
}

/* n values of tensor `name` of f as doubles (F32 or F64); NULL (and a failed check)
 * when absent or of another size */
static double *read_ref(nnu_st_file *f, const char *name, int64_t n) {
    const nnu_st_tensor *t = nnu_st_find(f, name);
    CHECK(t != NULL, "fixture %s lacks '%s'\n" REGEN, f->path, name);
    if (!t) return NULL;
    int64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
    const int f64 = !strcmp(t->dtype, "F64");
    CHECK(numel == n && (f64 || !strcmp(t->dtype, "F32")), "fixture '%s': %s with %lld values, "
          "want %lld", name, t->dtype, (long long)numel, (long long)n);
    if (numel != n) return NULL;
    double *out = malloc((size_t)n * sizeof *out);
    void *raw = malloc((size_t)n * (f64 ? 8 : 4));
    CHECK_OK(nnu_st_read(f, t, raw));
    for (int64_t i = 0; i < n; i++) out[i] = f64 ? ((double *)raw)[i] : ((float *)raw)[i];
    free(raw);
    return out;
}

/* a missing fixture tensor (ref NULL) is already a failed CHECK of read_ref */
static void compare(const char *what, const float *got, const double *ref, int64_t n, nnu_tol tol) {
    if (ref) ref_compare(what, got, ref, n, tol);
}

static int64_t numel5(const int64_t sh[5]) { return sh[0] * sh[1] * sh[2] * sh[3] * sh[4]; }

static void run_fixture(const char *name, const nnu_net_config *c, int64_t N, const int64_t patch[3]) {
    char path[256], what[160];
    snprintf(path, sizeof path, "tests/fixtures/%s.safetensors", name);
    fprintf(stderr, "%s:\n", path);
    nnu_st_file f;
    if (nnu_st_open(path, "fixture", NULL, &f) != NNU_STATUS_OK) {
        CHECK(0, "cannot open %s: %s\n" REGEN, path, nnu_last_error());
        return;
    }
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), c, 7, &net));
    if (!net) { nnu_st_close(&f); return; }
    /* the parameter order of named_parameters() */
    const char *order = nnu_st_meta(&f, "named_parameters");
    CHECK(order != NULL, "%s: no named_parameters metadata\n" REGEN, path);
    int t = 0;
    for (const char *p = order; p && *p && t <= nnu_net_num_tensors(net); t++) {
        size_t len = strcspn(p, "\n");
        const char *mine = t < nnu_net_num_tensors(net) ? nnu_net_tensor(net, t)->name : "(none)";
        CHECK(strlen(mine) == len && !strncmp(p, mine, len), "%s: tensor %d is '%s', torch '%.*s'",
              name, t, mine, (int)len, p);
        p += len + (p[len] == '\n');
    }
    CHECK(t == nnu_net_num_tensors(net), "%s: torch has %d parameter tensors, the net %d", name, t,
          nnu_net_num_tensors(net));
    /* the weights, by name */
    CHECK_OK(nnu_net_load(net, path));
    const int64_t nin = N * c->in_channels * patch[0] * patch[1] * patch[2];
    double *xd = read_ref(&f, "ref.input", nin);
    double *logits = NULL, *ds1 = NULL, *r = NULL;
    float *x = malloc((size_t)nin * sizeof *x);
    for (int64_t i = 0; xd && i < nin; i++) x[i] = (float)xd[i];
    int64_t sh[5];
    /* 1. the lean inference plan */
    CHECK_OK(nnu_net_forward(net, x, N, patch, 0));
    const float *y = nnu_net_output(net, 0, sh);
    logits = read_ref(&f, "ref.logits", numel5(sh));
    snprintf(what, sizeof what, "%s eval logits (inference plan)", name);
    compare(what, y, logits, numel5(sh), TOL_NET_OUT);
    /* 2. training: deep-supervision outputs, backward of L = sum(r * out0) */
    CHECK_OK(nnu_net_zero_grad(net));
    CHECK_OK(nnu_net_forward(net, x, N, patch, 1));
    CHECK(nnu_net_num_outputs(net) == c->n_stages - 1, "%s: %d outputs", name,
          nnu_net_num_outputs(net));
    y = nnu_net_output(net, 0, sh);
    snprintf(what, sizeof what, "%s train out0", name);
    compare(what, y, logits, numel5(sh), TOL_NET_OUT);
    const int64_t n0 = numel5(sh);
    y = nnu_net_output(net, 1, sh);
    ds1 = read_ref(&f, "ref.ds.1", numel5(sh));
    snprintf(what, sizeof what, "%s train out1", name);
    compare(what, y, ds1, numel5(sh), TOL_NET_OUT);
    r = read_ref(&f, "ref.r", n0);
    float *gy = nnu_net_output_grad(net, 0);
    for (int64_t i = 0; r && i < n0; i++) gy[i] = (float)r[i];
    if (nnu_net_num_outputs(net) > 1)   /* weight 0: not propagated, as in the reference */
        memset(nnu_net_output_grad(net, 1), 0, (size_t)numel5(sh) * sizeof(float));
    CHECK_OK(nnu_net_backward(net));
    int ngrads = 0;
    for (int i = 0; i < f.n; i++) {
        if (strncmp(f.t[i].name, "ref.grad.", 9)) continue;
        const char *pname = f.t[i].name + 9;
        int ti = nnu_net_find_tensor(net, pname);
        CHECK(ti >= 0, "%s: the net has no tensor '%s'", name, pname);
        if (ti < 0) continue;
        const nnu_net_tensor_info *inf = nnu_net_tensor(net, ti);
        double *gr = read_ref(&f, f.t[i].name, inf->numel);
        snprintf(what, sizeof what, "%s grad %s", name, pname);
        compare(what, nnu_net_grads(net) + inf->offset, gr, inf->numel, TOL_NET_GRAD);
        free(gr);
        ngrads++;
    }
    CHECK(ngrads >= 5, "%s: only %d reference gradients", name, ngrads);
    /* 3. inference on the training plan (validation inside a training loop) */
    CHECK_OK(nnu_net_forward(net, x, N, patch, 0));
    y = nnu_net_output(net, 0, sh);
    snprintf(what, sizeof what, "%s eval logits (training plan)", name);
    compare(what, y, logits, numel5(sh), TOL_NET_OUT);
    /* 4. a smaller batch re-carves the inference arena: sample 0 alone */
    nnu_net *lean = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), c, 7, &lean));
    CHECK_OK(nnu_net_load(lean, path));
    CHECK_OK(nnu_net_plan(lean, N, patch, 0));
    CHECK_OK(nnu_net_forward(lean, x, 1, patch, 0));
    y = nnu_net_output(lean, 0, sh);
    snprintf(what, sizeof what, "%s eval logits, batch 1 in a batch-%lld arena", name, (long long)N);
    compare(what, y, logits, numel5(sh), TOL_NET_OUT);
    nnu_net_free(lean);
    free(x); free(xd); free(logits); free(ds1); free(r);
    nnu_net_free(net);
    nnu_st_close(&f);
}

/* a fresh net: He normal weights (std sqrt(2/(1+a^2)/fan_in)), zero biases, gamma 1,
 * beta 0, and init_last_bn_before_add_to_0 (conv2.norm gamma = beta = 0) */
static void test_init(void) {
    nnu_net_config c;
    config_3d(&c);
    c.features[0] = 16; c.features[1] = 32; c.features[2] = 64;
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c, 99, &net));
    if (!net) return;
    const float *w = nnu_net_params(net);
    int zero_gamma = 0;
    for (int t = 0; t < nnu_net_num_tensors(net); t++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, t);
        const float *p = w + ti->offset;
        if (strstr(ti->name, ".conv2.norm.")) {
            int nz = 0;
            for (int64_t i = 0; i < ti->numel; i++) nz += p[i] != 0.0f;
            CHECK(nz == 0, "%s: %d non-zero values (init_last_bn_before_add_to_0)", ti->name, nz);
            zero_gamma += strstr(ti->name, "weight") != NULL;
        } else if (strstr(ti->name, ".norm.weight")) {
            int bad = 0;
            for (int64_t i = 0; i < ti->numel; i++) bad += p[i] != 1.0f;
            CHECK(bad == 0, "%s: gamma not 1", ti->name);
        } else if (ti->ndim >= 3 && ti->numel >= 4000) {
            double s2 = 0;
            for (int64_t i = 0; i < ti->numel; i++) s2 += (double)p[i] * p[i];
            const double sd = sqrt(s2 / ti->numel);
            const double want = sqrt(2.0 / (1.0 + 1e-4) / ((double)ti->numel / ti->shape[0]));
            CHECK(fabs(sd / want - 1) < 0.06, "%s: std %.4g, He %.4g", ti->name, sd, want);
        }
    }
    CHECK(zero_gamma == 5, "conv2 norms zeroed: %d (5 blocks)", zero_gamma);
    /* the skip projections exist exactly where the block strides or changes channels */
    CHECK(nnu_net_find_tensor(net, "encoder.stages.0.blocks.0.skip.0.conv.weight") < 0 &&
          nnu_net_find_tensor(net, "encoder.stages.1.blocks.0.skip.1.conv.weight") >= 0 &&
          nnu_net_find_tensor(net, "encoder.stages.1.blocks.0.skip.1.conv.bias") < 0 &&
          nnu_net_find_tensor(net, "encoder.stages.1.blocks.1.skip.1.conv.weight") < 0,
          "skip projections in the wrong blocks");
    nnu_net_free(net);
}

/* The blocked layout (cblk 16: every feature count a multiple of 16) against the
 * plain layout on the same weights and input, training forward + backward: the same
 * ops in another layout, so fp32 differences of summation order only. Also
 * save -> load by name into a second net. */
static void test_blocked_and_io(void) {
    nnu_net_config c;
    config_3d(&c);
    c.features[0] = 16; c.features[1] = 32; c.features[2] = 32;   /* stage 2: pool-only skip */
    c.n_blocks_enc[2] = 1;
    nnu_backend plain = *nnu_backend_cpu();
    plain.name = "cpu:plain";
    plain.act_block = 1;
    nnu_net *a = NULL, *b = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c, 5, &a));
    CHECK_OK(nnu_net_create(&plain, &c, 6, &b));
    if (!a || !b) { nnu_net_free(a); nnu_net_free(b); return; }
    /* gamma != 0 everywhere, so every path carries a gradient */
    float *w = nnu_net_params(a);
    for (int t = 0; t < nnu_net_num_tensors(a); t++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(a, t);
        if (strstr(ti->name, ".conv2.norm.weight"))
            for (int64_t i = 0; i < ti->numel; i++) w[ti->offset + i] = 0.5f + 0.01f * (float)i;
    }
    char tmp[128];
    snprintf(tmp, sizeof tmp, "/tmp/nnunet_test_net_resenc_%d.safetensors", (int)getpid());
    CHECK_OK(nnu_net_save(a, tmp));
    CHECK_OK(nnu_net_load(b, tmp));
    remove(tmp);
    CHECK(!memcmp(nnu_net_params(a), nnu_net_params(b), (size_t)nnu_net_num_params(a) * 4),
          "save/load by name changed the weights");
    const int64_t N = 2, patch[3] = {4, 8, 8}, nin = N * 2 * 4 * 8 * 8;
    float *x = malloc((size_t)nin * sizeof *x);
    for (int64_t i = 0; i < nin; i++) x[i] = (float)sin(0.37 * (double)i) + 0.1f;
    double *ref = NULL;
    for (int k = 0; k < 2; k++) {
        nnu_net *n = k ? b : a;
        CHECK_OK(nnu_net_zero_grad(n));
        CHECK_OK(nnu_net_forward(n, x, N, patch, 1));
        int64_t sh[5];
        const float *y = nnu_net_output(n, 0, sh);
        float *gy = nnu_net_output_grad(n, 0);
        for (int64_t i = 0; i < numel5(sh); i++) gy[i] = (float)cos(0.11 * (double)i);
        CHECK_OK(nnu_net_backward(n));
        if (!k) {
            ref = malloc((size_t)(numel5(sh) + nnu_net_num_params(a)) * sizeof *ref);
            for (int64_t i = 0; i < numel5(sh); i++) ref[i] = y[i];
            for (int64_t i = 0; i < nnu_net_num_params(a); i++)
                ref[numel5(sh) + i] = nnu_net_grads(a)[i];
        } else {
            compare("blocked vs plain: out0", y, ref, numel5(sh), TOL_NET_OUT);
            compare("blocked vs plain: gradients", nnu_net_grads(b), ref + numel5(sh),
                    nnu_net_num_params(b), TOL_NET_GRAD);
        }
    }
    free(ref);
    free(x);
    nnu_net_free(a);
    nnu_net_free(b);
}

static void test_errors(void) {
    nnu_net_config c;
    config_3d(&c);
    nnu_net *net = NULL;
    c.n_blocks_enc[1] = 0;
    CHECK_FAILS(nnu_net_create(nnu_backend_cpu(), &c, 1, &net), NNU_STATUS_ERR_ARG,
                "n_blocks_per_stage[1]");
    config_3d(&c);
    c.arch = 7;
    CHECK_FAILS(nnu_net_create(nnu_backend_cpu(), &c, 1, &net), NNU_STATUS_ERR_ARG, "arch 7");
    /* a PlainConvUNet checkpoint does not load into a ResEnc net: the error names a tensor */
    nnu_net_config pc;
    config_3d(&pc);
    pc.arch = NNU_NET_PLAIN;
    for (int s = 0; s < 3; s++) pc.n_conv_enc[s] = 2;
    nnu_net *plain = NULL, *res = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &pc, 1, &plain));
    config_3d(&c);
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c, 1, &res));
    char tmp[128];
    snprintf(tmp, sizeof tmp, "/tmp/nnunet_test_net_resenc_plain_%d.safetensors", (int)getpid());
    if (plain && res) {
        CHECK_OK(nnu_net_save(plain, tmp));
        CHECK_FAILS(nnu_net_load(res, tmp), NNU_STATUS_ERR_FORMAT, "encoder.stem.convs.0.conv.weight");
        remove(tmp);
    }
    nnu_net_free(plain);
    nnu_net_free(res);
}

int main(void) {
    nnu_backend_cpu_set_threads(2);
    nnu_net_config c;
    config_3d(&c);
    run_fixture("resenc3d", &c, 2, (const int64_t[]){8, 8, 8});
    config_2d(&c);
    run_fixture("resenc2d", &c, 2, (const int64_t[]){1, 16, 12});
    test_init();
    test_blocked_and_io();
    test_errors();
    return check_report();
}
