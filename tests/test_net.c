/* test_net.c: the PlainConvUNet against PyTorch (STYLE R26 tier 2).
 *
 * Fixtures tests/fixtures/net_<name>.bin come from tests/gen/gen_net_ref.py
 * (float32 weights/input/target, reference values computed in float64 by
 * PyTorch): forward outputs (deep supervision), the Dice + CE loss, every
 * parameter gradient, the gradient norm and the parameters after one clipped
 * Nesterov SGD step. Plus: He initialisation statistics, the poly schedule and DS
 * weights against §7.1/§7.4 values, and a safetensors save/load round trip with
 * an architecture-mismatch error, a CRC mismatch and a file without CRC. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* memmem */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_net.h"
#include "ops_ref.h"
#include "tolerances.h"

#define REGEN "HINT: regenerate with /usr/bin/python3 tests/gen/gen_net_ref.py"

typedef struct fx_entry { char name[64]; int dtype, ndim; int64_t shape[5], numel; void *data; } fx_entry;
typedef struct fixture { int n; fx_entry e[32]; } fixture;

static int fx_load(const char *path, fixture *fx) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n" REGEN "\n", path); return 0; }
    char magic[8];
    uint32_t ver, cnt;
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "NNUREF01", 8) &&
             fread(&ver, 4, 1, f) == 1 && ver == 1 && fread(&cnt, 4, 1, f) == 1 && cnt <= 32;
    fx->n = 0;
    for (uint32_t i = 0; ok && i < cnt; i++) {
        fx_entry *e = &fx->e[fx->n++];
        uint32_t nl, dt, nd;
        ok = fread(&nl, 4, 1, f) == 1 && nl < sizeof e->name && fread(e->name, 1, nl, f) == nl &&
             fread(&dt, 4, 1, f) == 1 && fread(&nd, 4, 1, f) == 1 && nd <= 5 &&
             fread(e->shape, 8, nd, f) == nd;
        if (!ok) break;
        e->name[nl] = 0;
        e->dtype = (int)dt;
        e->ndim = (int)nd;
        e->numel = 1;
        for (uint32_t d = 0; d < nd; d++) e->numel *= e->shape[d];
        size_t es = dt == 2 ? 8 : 4;
        e->data = malloc((size_t)e->numel * es + 1);
        ok = e->data && fread(e->data, es, (size_t)e->numel, f) == (size_t)e->numel;
    }
    fclose(f);
    if (!ok) fprintf(stderr, "corrupt fixture %s\n" REGEN "\n", path);
    return ok;
}
static fx_entry *fx_get(fixture *fx, const char *name) {
    for (int i = 0; i < fx->n; i++)
        if (!strcmp(fx->e[i].name, name)) return &fx->e[i];
    fprintf(stderr, "fixture entry '%s' missing\n" REGEN "\n", name);
    return NULL;
}
static void fx_free(fixture *fx) { for (int i = 0; i < fx->n; i++) free(fx->e[i].data); }

static void run_fixture(const char *name, const nnu_backend *be) {
    char path[256], what[128];
    snprintf(path, sizeof path, "tests/fixtures/net_%s.bin", name);
    fixture fx;
    fprintf(stderr, "%s on backend '%s':\n", path, be->name);
    if (!fx_load(path, &fx)) { CHECK(0, "fixture %s", path); return; }
    const int32_t *cf = fx_get(&fx, "config")->data;
    nnu_net_config c = {0};
    int i = 0;
    c.dim = cf[i++]; c.n_stages = cf[i++]; c.in_channels = cf[i++]; c.num_classes = cf[i++];
    c.batch_dice = cf[i++];
    int64_t N = cf[i++], patch[3] = {1, 1, 1};
    for (int a = c.dim == 2 ? 1 : 0; a < 3; a++) patch[a] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) c.features[s] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) for (int a = 0; a < 3; a++) c.kernel[s][a] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) for (int a = 0; a < 3; a++) c.stride[s][a] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) c.n_conv_enc[s] = cf[i++];
    for (int s = 0; s < c.n_stages - 1; s++) c.n_conv_dec[s] = cf[i++];
    c.conv_bias = 1; c.norm_eps = 1e-5f; c.slope = 0.01f; c.deep_supervision = 1;
    c.ignore_label = -1;

    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(be, &c, 7, &net));
    if (!net) { fx_free(&fx); return; }
    fx_entry *pe = fx_get(&fx, "params");
    CHECK(pe->numel == nnu_net_num_params(net), "%s: %lld params, fixture %lld", name,
          (long long)nnu_net_num_params(net), (long long)pe->numel);
    /* names in PyTorch's named_parameters() order */
    fx_entry *ne = fx_get(&fx, "names");
    char *names = calloc((size_t)ne->numel + 1, 1);
    for (int64_t k = 0; k < ne->numel; k++) names[k] = (char)((int32_t *)ne->data)[k];
    char *tok = strtok(names, "\n");
    for (int t = 0; t < nnu_net_num_tensors(net); t++, tok = strtok(NULL, "\n"))
        CHECK(tok && !strcmp(tok, nnu_net_tensor(net, t)->name), "%s: tensor %d is '%s', torch '%s'",
              name, t, nnu_net_tensor(net, t)->name, tok ? tok : "(none)");
    free(names);
    if (pe->numel != nnu_net_num_params(net)) { nnu_net_free(net); fx_free(&fx); return; }
    memcpy(nnu_net_params(net), pe->data, (size_t)pe->numel * sizeof(float));

    const float *x = fx_get(&fx, "input")->data;
    fx_entry *te = fx_get(&fx, "target");
    nnu_tensor *target = NULL;
    CHECK_OK(nnu_tensor_wrap(te->data, NNU_DTYPE_I32, 5,
                             (const int64_t[]){te->shape[0], 1, c.dim == 2 ? 1 : te->shape[2],
                                               te->shape[te->ndim - 2], te->shape[te->ndim - 1]},
                             &target));
    nnu_net_zero_grad(net);
    CHECK_OK(nnu_net_forward(net, x, N, patch, 1));
    CHECK(nnu_net_num_outputs(net) == c.n_stages - 1, "outputs %d", nnu_net_num_outputs(net));
    for (int o = 0; o < nnu_net_num_outputs(net); o++) {
        char on[16];
        snprintf(on, sizeof on, "out%d", o);
        fx_entry *oe = fx_get(&fx, on);
        int64_t sh[5];
        const float *y = nnu_net_output(net, o, sh);
        CHECK(sh[0] * sh[1] * sh[2] * sh[3] * sh[4] == oe->numel, "%s size", on);
        snprintf(what, sizeof what, "%s %s", name, on);
        ref_compare(what, y, oe->data, oe->numel, TOL_NET_OUT);
    }
    double loss = 0, gnorm = 0;
    CHECK_OK(nnu_net_loss(net, target, &loss));
    float lf = (float)loss;
    snprintf(what, sizeof what, "%s loss", name);
    ref_compare(what, &lf, fx_get(&fx, "loss")->data, 1, TOL_NET_LOSS);
    CHECK_OK(nnu_net_backward(net));
    snprintf(what, sizeof what, "%s grads", name);
    ref_compare(what, nnu_net_grads(net), fx_get(&fx, "grads")->data, pe->numel, TOL_NET_GRAD);
    nnu_sgd_config sc;
    nnu_sgd_config_default(&sc);
    sc.clip_norm = (float)*(double *)fx_get(&fx, "clip")->data;
    CHECK_OK(nnu_net_sgd_step(net, &sc, &gnorm));
    CHECK_CLOSE(gnorm, *(double *)fx_get(&fx, "grad_norm")->data, 1e-5, 1e-4);
    snprintf(what, sizeof what, "%s params after SGD", name);
    ref_compare(what, nnu_net_params(net), fx_get(&fx, "params_after")->data, pe->numel, TOL_NET_STEP);

    /* Adam from the same gradients (the SGD step clipped them in place: recompute) */
    memcpy(nnu_net_params(net), pe->data, (size_t)pe->numel * sizeof(float));
    nnu_net_zero_grad(net);
    CHECK_OK(nnu_net_forward(net, x, N, patch, 1));
    CHECK_OK(nnu_net_loss(net, target, &loss));
    CHECK_OK(nnu_net_backward(net));
    nnu_sgd_config ac;
    nnu_adam_config_default(&ac);
    nnu_net_set_sgd_steps(net, 0);
    CHECK_OK(nnu_net_sgd_step(net, &ac, NULL));
    {
        /* noise-level gradients: widen their tolerance to 2*lr (tolerances.h) */
        const double *gref = fx_get(&fx, "grads")->data, *aref = fx_get(&fx, "params_after_adam")->data;
        const float *w0 = pe->data, *w1 = nnu_net_params(net);
        int64_t bad = 0, noisy = 0;
        double maxd = 0;
        for (int64_t k = 0; k < pe->numel; k++) {
            double d = fabs(w1[k] - aref[k]), dref = gref[k] + 3e-5 * w0[k];
            int noise = fabs(dref) < GC_ADAM_NOISE && gref[k] != 0.0;
            noisy += noise;
            double tol = noise ? 2 * ac.lr + 1e-6 : TOL_NET_STEP.atol + TOL_NET_STEP.rtol * fabs(aref[k]);
            if (d > tol) bad++;
            if (!noise && d > maxd) maxd = d;
        }
        CHECK(bad == 0, "%s params after Adam: %lld values outside tolerance", name, (long long)bad);
        fprintf(stderr, "  %-22s max |diff| %.3g (%lld noise-level gradients)\n", "params after Adam",
                maxd, (long long)noisy);
    }

    /* inference: only the full-resolution head, same values as output 0 at the
     * same weights (reload the fixture's weights) */
    memcpy(nnu_net_params(net), pe->data, (size_t)pe->numel * sizeof(float));
    CHECK_OK(nnu_net_forward(net, x, N, patch, 0));
    CHECK(nnu_net_num_outputs(net) == 1, "inference outputs %d", nnu_net_num_outputs(net));
    snprintf(what, sizeof what, "%s inference out0", name);
    ref_compare(what, nnu_net_output(net, 0, NULL), fx_get(&fx, "out0")->data,
            fx_get(&fx, "out0")->numel, TOL_NET_OUT);
    size_t train_arena = nnu_net_arena_bytes(net);
    /* the lean inference plan gives the same logits with a smaller arena */
    CHECK_OK(nnu_net_plan(net, N, patch, 0));
    CHECK_OK(nnu_net_forward(net, x, N, patch, 0));
    snprintf(what, sizeof what, "%s inference plan out0", name);
    ref_compare(what, nnu_net_output(net, 0, NULL), fx_get(&fx, "out0")->data,
            fx_get(&fx, "out0")->numel, TOL_NET_OUT);
    CHECK(nnu_net_arena_bytes(net) < train_arena * 3 / 4, "inference arena %zu vs training %zu",
          nnu_net_arena_bytes(net), train_arena);
    CHECK_FAILS(nnu_net_backward(net), NNU_STATUS_ERR_ARG, "training forward");
    /* a smaller batch reuses the arena: sample 0 alone gives sample 0's logits */
    size_t before = nnu_net_arena_bytes(net);
    CHECK_OK(nnu_net_forward(net, x, 1, patch, 0));
    CHECK(nnu_net_arena_bytes(net) == before, "smaller batch re-planned the arena");
    {
        int64_t sh[5];
        const float *y1 = nnu_net_output(net, 0, sh);
        snprintf(what, sizeof what, "%s batch-1 out0", name);
        ref_compare(what, y1, fx_get(&fx, "out0")->data, sh[1] * sh[2] * sh[3] * sh[4], TOL_NET_OUT);
    }
    nnu_backend_stats st;
    nnu_backend_cpu()->get_stats(nnu_backend_cpu(), &st);
    fprintf(stderr, "  arena %.1f MB; oneDNN primitives so far %lld, reorders %lld\n",
            nnu_net_arena_bytes(net) / 1048576.0, (long long)st.primitives, (long long)st.reorders);
    nnu_tensor_release(target);
    nnu_net_free(net);
    fx_free(&fx);
}

/* relative L2 error of got against ref */
static double rel_l2(const float *got, const double *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += (got[i] - ref[i]) * (got[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* cpu:bf16 (bf16 convolutions, f32 everything else) on the blocked fixture: outputs,
 * loss and gradients within TOL_NET_BF16_REL of PyTorch's float64 values */
static void run_bf16(const char *name) {
    const nnu_backend *b16 = nnu_backend_cpu_bf16();
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/net_%s.bin", name);
    fixture fx;
    if (!fx_load(path, &fx)) { CHECK(0, "fixture %s", path); return; }
    const int32_t *cf = fx_get(&fx, "config")->data;
    nnu_net_config c = {0};
    int i = 0;
    c.dim = cf[i++]; c.n_stages = cf[i++]; c.in_channels = cf[i++]; c.num_classes = cf[i++];
    c.batch_dice = cf[i++];
    int64_t N = cf[i++], patch[3] = {1, 1, 1};
    for (int a = c.dim == 2 ? 1 : 0; a < 3; a++) patch[a] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) c.features[s] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) for (int a = 0; a < 3; a++) c.kernel[s][a] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) for (int a = 0; a < 3; a++) c.stride[s][a] = cf[i++];
    for (int s = 0; s < c.n_stages; s++) c.n_conv_enc[s] = cf[i++];
    for (int s = 0; s < c.n_stages - 1; s++) c.n_conv_dec[s] = cf[i++];
    c.conv_bias = 1; c.norm_eps = 1e-5f; c.slope = 0.01f; c.deep_supervision = 1;
    c.ignore_label = -1;
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(b16, &c, 7, &net));
    fx_entry *pe = fx_get(&fx, "params"), *te = fx_get(&fx, "target");
    nnu_tensor *target = NULL;
    CHECK_OK(nnu_tensor_wrap(te->data, NNU_DTYPE_I32, 5,
                             (const int64_t[]){te->shape[0], 1, c.dim == 2 ? 1 : te->shape[2],
                                               te->shape[te->ndim - 2], te->shape[te->ndim - 1]},
                             &target));
    if (!net || !target) { nnu_tensor_release(target); nnu_net_free(net); fx_free(&fx); return; }
    memcpy(nnu_net_params(net), pe->data, (size_t)pe->numel * sizeof(float));
    double loss = 0;
    nnu_status st = nnu_net_forward(net, fx_get(&fx, "input")->data, N, patch, 1);
    if (st != NNU_STATUS_OK) {   /* no avx512_bf16: oneDNN has no bf16 kernel */
        fprintf(stderr, "  cpu:bf16 unavailable (%s): skipped\n", nnu_last_error());
    } else {
        fx_entry *oe = fx_get(&fx, "out0");
        double eo = rel_l2(nnu_net_output(net, 0, NULL), oe->data, oe->numel);
        CHECK_OK(nnu_net_loss(net, target, &loss));
        CHECK_OK(nnu_net_backward(net));
        double ref = *(double *)fx_get(&fx, "loss")->data;
        double eg = rel_l2(nnu_net_grads(net), fx_get(&fx, "grads")->data, pe->numel);
        if (getenv("NNU_DEBUG_BF16"))
            for (int t = 0; t < nnu_net_num_tensors(net); t++) {
                const nnu_net_tensor_info *ti = nnu_net_tensor(net, t);
                fprintf(stderr, "    %-45s %.3e\n", ti->name,
                        rel_l2(nnu_net_grads(net) + ti->offset,
                               (const double *)fx_get(&fx, "grads")->data + ti->offset, ti->numel));
            }
        fprintf(stderr, "  %s on cpu:bf16: rel L2 out0 %.2e, grads %.2e; loss %.6f vs %.6f\n",
                name, eo, eg, loss, ref);
        CHECK(eo < TOL_NET_BF16_REL && eg < TOL_NET_BF16_GRAD, "%s bf16: out0 %.3g grads %.3g",
              name, eo, eg);
        CHECK_CLOSE(loss, ref, 0, TOL_NET_BF16_REL);
    }
    nnu_tensor_release(target);
    nnu_net_free(net);
    fx_free(&fx);
}

static nnu_net_config small_config(int f0) {
    nnu_net_config c = {0};
    c.dim = 3; c.n_stages = 4; c.in_channels = 1; c.num_classes = 3;
    for (int s = 0; s < 4; s++) {
        c.features[s] = f0 << s;
        for (int a = 0; a < 3; a++) { c.kernel[s][a] = 3; c.stride[s][a] = s ? 2 : 1; }
        c.n_conv_enc[s] = 2;
        c.n_conv_dec[s] = 2;
    }
    c.conv_bias = 1; c.norm_eps = 1e-5f; c.slope = 0.01f; c.deep_supervision = 1;
    c.ignore_label = -1;
    return c;
}

/* the file carries the whole-file CRC-32 (nnu_safetensors.h): a flipped data bit is
 * refused and leaves the net as it was; a file without the key (written before it
 * existed: here the key renamed in place) loads unchecked. */
static void test_crc(nnu_net *net, const nnu_net_config *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { CHECK(0, "reopen %s", path); return; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    unsigned char *img = malloc((size_t)size);
    rewind(f);
    CHECK(fread(img, 1, (size_t)size, f) == (size_t)size, "read back");
    fclose(f);
    char meta[4096];
    CHECK_OK(nnu_net_read_metadata(path, meta, sizeof meta));
    CHECK(strstr(meta, "\"nnunet_crc32\":\"") && strstr(meta, "\"sgd_steps\":\""), "metadata: %s", meta);
    nnu_net *b = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), c, 99, &b));
    const float before = nnu_net_params(b)[0];
    const char *copy = "build/test_net_crc.safetensors";
    img[size - 3] ^= 0x10;                          /* a bit of the last tensor's data */
    f = fopen(copy, "wb");
    fwrite(img, 1, (size_t)size, f);
    fclose(f);
    CHECK_FAILS(nnu_net_load(b, copy), NNU_STATUS_ERR_FORMAT, "CRC mismatch");
    CHECK(nnu_net_params(b)[0] == before, "a refused file leaves the net untouched");
    img[size - 3] ^= 0x10;
    char *key = memmem(img, (size_t)size, "nnunet_crc32", 12);
    CHECK(key != NULL, "nnunet_crc32 in the header");
    if (key) key[11] = 'x';                          /* "nnunet_crc3x": no CRC any more */
    f = fopen(copy, "wb");
    fwrite(img, 1, (size_t)size, f);
    fclose(f);
    CHECK_OK(nnu_net_load(b, copy));
    CHECK(!memcmp(nnu_net_params(b), nnu_net_params(net), (size_t)nnu_net_num_params(net) * 4),
          "a file without CRC loads");
    nnu_net_free(b);
    free(img);
    remove(copy);
}

static void test_init_and_schedule(void) {
    nnu_net_config c = small_config(16);
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c, 42, &net));
    if (!net) return;
    /* He normal a = 0.01: std = sqrt(2/(1+1e-4)) / sqrt(fan_in) */
    int t = nnu_net_find_tensor(net, "encoder.stages.1.0.convs.1.conv.weight");
    CHECK(t >= 0, "tensor lookup");
    const nnu_net_tensor_info *ti = nnu_net_tensor(net, t);
    const float *w = nnu_net_params(net) + ti->offset;
    double s2 = 0, m = 0;
    for (int64_t i = 0; i < ti->numel; i++) { m += w[i]; s2 += (double)w[i] * w[i]; }
    m /= (double)ti->numel;
    double sd = sqrt(s2 / (double)ti->numel - m * m), want = sqrt(2.0 / 1.0001) / sqrt(32.0 * 27);
    CHECK(fabs(sd / want - 1) < 0.03 && fabs(m) < 0.1 * want, "He init: std %g (want %g), mean %g",
          sd, want, m);
    /* transposed conv: PyTorch's fan_in = size(1) * k = Cout * 8 */
    ti = nnu_net_tensor(net, nnu_net_find_tensor(net, "decoder.transpconvs.0.weight"));
    w = nnu_net_params(net) + ti->offset;
    s2 = 0;
    for (int64_t i = 0; i < ti->numel; i++) s2 += (double)w[i] * w[i];
    sd = sqrt(s2 / (double)ti->numel);
    want = sqrt(2.0 / 1.0001) / sqrt(64.0 * 8);   /* [128, 64, 2, 2, 2] */
    CHECK(fabs(sd / want - 1) < 0.03, "ConvTranspose init: std %g (want %g)", sd, want);
    ti = nnu_net_tensor(net, nnu_net_find_tensor(net, "encoder.stages.0.0.convs.0.norm.weight"));
    CHECK(nnu_net_params(net)[ti->offset] == 1.0f, "gamma init 1");
    ti = nnu_net_tensor(net, nnu_net_find_tensor(net, "decoder.seg_layers.1.bias"));
    CHECK(nnu_net_params(net)[ti->offset] == 0.0f, "bias init 0");

    /* §7.1: lr_0 = 1e-2, lr_999 ~ 1.995e-5 */
    CHECK_CLOSE(nnu_poly_lr(1e-2f, 0, 1000), 1e-2, 1e-9, 0);
    CHECK_CLOSE(nnu_poly_lr(1e-2f, 999, 1000), 1.995e-5, 1e-8, 0);
    /* §7.4: K = 3 outputs (4 stages) -> (2/3, 1/3, 0); after a training forward */
    int64_t patch[3] = {8, 8, 8};
    float *x = calloc(2 * 512, sizeof *x);
    for (int i = 0; i < 2 * 512; i++) x[i] = (float)((i * 37) % 11) - 5.0f;
    CHECK_OK(nnu_net_forward(net, x, 2, patch, 1));
    CHECK_CLOSE(nnu_net_ds_weight(net, 0), 2.0 / 3.0, 1e-12, 0);
    CHECK_CLOSE(nnu_net_ds_weight(net, 1), 1.0 / 3.0, 1e-12, 0);
    CHECK(nnu_net_ds_weight(net, 2) == 0.0 && nnu_net_num_outputs(net) == 3, "lowest weight 0");
    /* bad patch: not divisible by the total stride */
    CHECK_FAILS(nnu_net_forward(net, x, 2, (const int64_t[]){8, 8, 6}, 1), NNU_STATUS_ERR_SHAPE,
                "divisible");

    /* safetensors round trip and architecture mismatch */
    const char *path = "build/test_net_ckpt.safetensors";
    CHECK_OK(nnu_net_save(net, path));
    nnu_net *b = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c, 99, &b));
    CHECK_OK(nnu_net_load(b, path));
    CHECK(!memcmp(nnu_net_params(b), nnu_net_params(net), (size_t)nnu_net_num_params(net) * 4),
          "round trip: parameters differ");
    nnu_net_free(b);
    nnu_net_config c2 = small_config(8);
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &c2, 1, &b));
    CHECK_FAILS(nnu_net_load(b, path), NNU_STATUS_ERR_SHAPE,
                "'encoder.stages.0.0.convs.0.conv.weight' is F32 [16,1,3,3,3]");
    nnu_net_free(b);
    test_crc(net, &c, path);
    remove(path);
    free(x);
    nnu_net_free(net);
}

/* A stand-in for a device backend: the CPU ops, but memory flagged as not
 * host-accessible, no memset_ and plain activations (as the CUDA table). The net
 * must then go through memcpy_ for initialisation, inputs, labels and the
 * optimizer state; the memory is still host memory, so the test may peek. */
static nnu_memory_ops fake_mem;
static nnu_backend fake_be;

int main(void) {
    run_fixture("plain3d", nnu_backend_cpu());
    run_fixture("blocked3d", nnu_backend_cpu());
    run_fixture("plain2d", nnu_backend_cpu());
    fake_mem = nnu_memory_cpu;
    fake_mem.name = "fake-device";
    fake_mem.host_accessible = 0;
    fake_be = *nnu_backend_cpu();
    fake_be.name = "fake-device";
    fake_be.mem = &fake_mem;
    fake_be.memset_ = NULL;
    fake_be.act_block = 1;
    run_fixture("blocked3d", &fake_be);
    run_bf16("blocked3d");
    test_init_and_schedule();
    return check_report();
}
