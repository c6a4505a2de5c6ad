/* unet_bench.c: training-iteration and inference time of nnU-Net's PlainConvUNet on
 * the CUDA backend (STYLE R29: it runs the shipped ops through the backend table;
 * their correctness is checked by tests/test_gpu_ops.c and test_gpu_block.c, which
 * tests/gpu/run_on_device.sh runs first). tests/gpu/bench_torch.py times the
 * identical network, loss and optimizer in PyTorch eager mode on the same card.
 *
 *   unet_bench PLAN PREC [ITERS]     PLAN: hippo | large   PREC: fp32 | tf32 | bf16 | fp16
 *   hippo: Dataset004 3d_fullres: 1 -> 3 classes, F 32..256, 4 stages, strides 1,2,2,2,
 *          patch 40x56x40, batch 9
 *   large: Dataset003 (Liver) 3d_fullres: 1 -> 3 classes, F 32..320, 6 stages,
 *          strides 1,2,2,2,2,2, patch 128^3, batch 2
 * One training iteration = zero_grad, forward with every deep-supervision head,
 * Dice+CE on the heads of non-zero weight, backward, global-norm clipping at 12,
 * Nesterov SGD (lr 1e-2, momentum 0.99, wd 3e-5); fp16 adds dynamic loss scaling
 * (GradScaler's defaults: 2^16, halve on inf/NaN and skip the step). Inference =
 * forward of the full-resolution head only, batch 1. Times are medians of ITERS
 * synchronised iterations after 3 warm-ups (the first one runs cudnnFind).
 * Output: one line "bench ours plan=.. prec=.. train_ms=.. infer_ms=.. peak_mib=..",
 * then "conv api NAME: ..." (NNU_CUDNN_API=legacy|graph picks the cuDNN API). With
 * NNU_CUDA_PROFILE=1 the per-op times of the timed iterations come first ("profile"
 * lines, training then inference); profiling adds host work per op, so time without it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnu_cuda.h"

#define MAXS 8
#define MAXC 2

typedef struct cfg {
    int stages, feat[MAXS], stride[MAXS], batch, classes, in_ch;
    int64_t patch[3];
} cfg;

typedef struct blk {                 /* conv + IN + lrelu */
    nnu_conv_params cp;
    nnu_norm_params np;
    int64_t ow, ob, og, obe;         /* parameter offsets */
    const float *in;
    float *gin;                      /* gradient of `in` (NULL: not needed) */
    float *pre, *act, *gact, *stats;
} blk;

typedef struct dec {
    nnu_conv_params tp, hp;
    nnu_concat_params cc;
    int64_t otw, otb, ohw, ohb;
    float *up, *cat, *gup, *gcat, *logit, *glogit, *ghtmp;
    int32_t *tgt;
    void *ws;
    nnu_loss_params lp;
    double w;                        /* deep-supervision weight */
    blk b[MAXC];
} dec;

typedef struct net {
    const nnu_backend *be;
    cfg c;
    int64_t batch, nparam;
    float *x, *gskip[MAXS];
    blk enc[MAXS][MAXC];
    dec d[MAXS];
} net;

static int fail(nnu_status st, const char *what) {
    fprintf(stderr, "unet_bench: %s: %s: %s\n", what, nnu_status_name(st), nnu_last_error());
    exit(1);
}
#define TRY(x) do { nnu_status s_ = (x); if (s_) fail(s_, #x); } while (0)

static float *dalloc(net *n, int64_t count) {
    float *p = n->be->mem->alloc((size_t)count * sizeof(float), n->be->mem->ctx);
    if (!p) fail(NNU_STATUS_ERR_OOM, "alloc");
    return p;
}

static int64_t sp(const int64_t a[3]) { return a[0] * a[1] * a[2]; }

static void blk_init(net *n, blk *b, const int64_t in[3], int ci, int co, int stride,
                     int64_t *off) {
    const int k3[3] = {3, 3, 3}, s[3] = {stride, stride, stride};
    TRY(nnu_conv_params_init(&b->cp, n->batch, ci, co, in, k3, s, 0, 1, 1));
    const int64_t S = sp(b->cp.out);
    b->np = (nnu_norm_params){n->batch, co, S, 1, 1e-5f, 0.01f};
    b->ow = *off; *off += (int64_t)co * ci * 27;
    b->ob = *off; *off += co;
    b->og = *off; *off += co;
    b->obe = *off; *off += co;
    b->pre = dalloc(n, n->batch * co * S);
    b->act = dalloc(n, n->batch * co * S);
    b->gact = dalloc(n, n->batch * co * S);
    b->stats = dalloc(n, n->batch * co * 2);
}

/* builds the layers for batch `batch`; parameter offsets are the same for every batch */
static void net_build(net *n, const nnu_backend *be, const cfg *c, int64_t batch, int train) {
    memset(n, 0, sizeof *n);
    n->be = be; n->c = *c; n->batch = batch;
    int64_t off = 0, shape[MAXS][3];
    const int S = c->stages;
    n->x = dalloc(n, batch * c->in_ch * sp(c->patch));
    int64_t cur[3] = {c->patch[0], c->patch[1], c->patch[2]};
    const float *in = n->x;
    float *gin = NULL;
    int ci = c->in_ch;
    for (int s = 0; s < S; s++) {
        for (int j = 0; j < 2; j++) {
            blk *b = &n->enc[s][j];
            blk_init(n, b, cur, ci, c->feat[s], j == 0 ? c->stride[s] : 1, &off);
            b->in = in; b->gin = gin;
            memcpy(cur, b->cp.out, sizeof cur);
            in = b->act; gin = b->gact; ci = c->feat[s];
        }
        memcpy(shape[s], cur, sizeof cur);
        if (s < S - 1) n->gskip[s] = dalloc(n, batch * c->feat[s] * sp(cur));
    }
    /* decoder t = 0 (lowest) .. S-2; target resolution r = S-2-t */
    double wsum = 0.0;
    for (int t = 0; t < S - 1; t++) {
        const int r = S - 2 - t;
        n->d[t].w = r == S - 2 ? 0.0 : 1.0 / (double)(1 << r);
        wsum += n->d[t].w;
    }
    for (int t = 0; t < S - 1; t++) {
        dec *d = &n->d[t];
        const int r = S - 2 - t, fr = c->feat[r], fb = c->feat[r + 1];
        d->w /= wsum;
        const int k[3] = {c->stride[r + 1], c->stride[r + 1], c->stride[r + 1]};
        TRY(nnu_conv_params_init(&d->tp, batch, fb, fr, shape[r + 1], k, k, 1, 1, 1));
        d->otw = off; off += (int64_t)fb * fr * k[0] * k[1] * k[2];
        d->otb = off; off += fr;
        const int64_t Sr = sp(shape[r]);
        d->up = dalloc(n, batch * fr * Sr);
        d->gup = dalloc(n, batch * fr * Sr);
        d->cat = dalloc(n, batch * 2 * fr * Sr);
        d->gcat = dalloc(n, batch * 2 * fr * Sr);
        d->cc = (nnu_concat_params){batch, fr, fr, Sr, 1};
        const float *bin = d->cat;
        float *bgin = d->gcat;
        int bci = 2 * fr;
        for (int j = 0; j < 2; j++) {
            blk *b = &d->b[j];
            blk_init(n, b, shape[r], bci, fr, 1, &off);
            b->in = bin; b->gin = bgin;
            bin = b->act; bgin = b->gact; bci = fr;
        }
        const int k1[3] = {1, 1, 1};
        TRY(nnu_conv_params_init(&d->hp, batch, fr, c->classes, shape[r], k1, k1, 0, 1, 1));
        d->ohw = off; off += (int64_t)c->classes * fr;
        d->ohb = off; off += c->classes;
        if (train || r == 0) d->logit = dalloc(n, batch * c->classes * Sr);
        if (train && d->w > 0) {
            d->glogit = dalloc(n, batch * c->classes * Sr);
            d->ghtmp = dalloc(n, batch * fr * Sr);
            d->lp = (nnu_loss_params){batch, c->classes, Sr, 0, 0, -1, 1e-5f, (float)d->w,
                                      NNU_LOSS_DICE_AND_CE};
            d->ws = be->mem->alloc(nnu_loss_ws_size(&d->lp), be->mem->ctx);
            d->tgt = be->mem->alloc((size_t)(batch * Sr) * sizeof(int32_t), be->mem->ctx);
            int32_t *h = malloc((size_t)(batch * Sr) * sizeof *h);
            for (int64_t i = 0; i < batch * Sr; i++) h[i] = (int32_t)((((uint64_t)i * 2654435761u) >> 7) % 3);
            TRY(be->memcpy_(be, d->tgt, h, (size_t)(batch * Sr) * sizeof *h));
            free(h);
        }
    }
    n->nparam = off;
}

static void blk_fwd(net *n, blk *b, const float *P) {
    const nnu_backend *be = n->be;
    TRY(be->conv_fwd(be, b->in, b->pre, P + b->ow, P + b->ob, &b->cp));
    TRY(be->instnorm_fwd(be, b->pre, b->act, P + b->og, P + b->obe, b->stats, &b->np));
}

/* gact holds dL/dact; leaves dL/din in b->gin (=) */
static void blk_bwd(net *n, blk *b, const float *P, float *G) {
    const nnu_backend *be = n->be;
    TRY(be->instnorm_bwd(be, b->pre, b->gact, b->gact, P + b->og, P + b->obe, G + b->og,
                         G + b->obe, b->stats, &b->np));
    TRY(be->conv_bwd_params(be, b->in, b->gact, G + b->ow, G + b->ob, &b->cp));
    if (b->gin) TRY(be->conv_bwd_data(be, b->gact, b->gin, P + b->ow, &b->cp));
}

static void forward(net *n, const float *P, int train) {
    const nnu_backend *be = n->be;
    const int S = n->c.stages;
    for (int s = 0; s < S; s++)
        for (int j = 0; j < 2; j++) blk_fwd(n, &n->enc[s][j], P);
    for (int t = 0; t < S - 1; t++) {
        dec *d = &n->d[t];
        const int r = S - 2 - t;
        const float *below = t == 0 ? n->enc[S - 1][1].act : n->d[t - 1].b[1].act;
        TRY(be->convt_fwd(be, below, d->up, P + d->otw, P + d->otb, &d->tp));
        TRY(be->concat_fwd(be, d->up, n->enc[r][1].act, d->cat, &d->cc));
        for (int j = 0; j < 2; j++) blk_fwd(n, &d->b[j], P);
        if (train || r == 0)
            TRY(be->conv_fwd(be, d->b[1].act, d->logit, P + d->ohw, P + d->ohb, &d->hp));
    }
}

/* loss (scaled by loss_scale) and backward; returns the unscaled loss */
static double loss_backward(net *n, const float *P, float *G, float loss_scale) {
    const nnu_backend *be = n->be;
    const int S = n->c.stages;
    double total = 0.0;
    for (int t = S - 2; t >= 0; t--) {
        dec *d = &n->d[t];
        const int r = S - 2 - t;
        float *glast = d->b[1].gact;
        if (d->w > 0) {
            double l;
            nnu_loss_params lp = d->lp;
            lp.weight = (float)(d->w * loss_scale);
            TRY(be->loss_dice_ce_fwd(be, d->logit, d->tgt, d->ws, &l, &lp));
            total += d->w * l;
            TRY(be->loss_dice_ce_bwd(be, d->logit, d->tgt, d->ws, d->glogit, &lp));
            TRY(be->conv_bwd_params(be, d->b[1].act, d->glogit, G + d->ohw, G + d->ohb, &d->hp));
            if (t == S - 2) {
                TRY(be->conv_bwd_data(be, d->glogit, glast, P + d->ohw, &d->hp));
            } else {
                TRY(be->conv_bwd_data(be, d->glogit, d->ghtmp, P + d->ohw, &d->hp));
                nnu_eltwise_params ap = {n->batch * n->c.feat[r] * d->cc.s, 1.0f};
                TRY(be->axpy(be, d->ghtmp, glast, &ap));
            }
        }
        blk_bwd(n, &d->b[1], P, G);
        blk_bwd(n, &d->b[0], P, G);
        TRY(be->concat_bwd(be, d->gcat, d->gup, n->gskip[r], &d->cc));
        const float *below = t == 0 ? n->enc[S - 1][1].act : n->d[t - 1].b[1].act;
        float *gbelow = t == 0 ? n->enc[S - 1][1].gact : n->d[t - 1].b[1].gact;
        TRY(be->convt_bwd_params(be, below, d->gup, G + d->otw, G + d->otb, &d->tp));
        TRY(be->convt_bwd_data(be, d->gup, gbelow, P + d->otw, &d->tp));
    }
    for (int s = S - 1; s >= 0; s--) {
        if (s < S - 1) {
            nnu_eltwise_params ap = {n->enc[s][1].np.n * n->enc[s][1].np.c * n->enc[s][1].np.s,
                                     1.0f};
            TRY(be->axpy(be, n->gskip[s], n->enc[s][1].gact, &ap));
        }
        blk_bwd(n, &n->enc[s][1], P, G);
        blk_bwd(n, &n->enc[s][0], P, G);
    }
    return total;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: unet_bench hippo|large fp32|tf32|bf16|fp16 [iters]\n");
        return 2;
    }
    const int iters = argc > 3 ? atoi(argv[3]) : 20;
    cfg c;
    memset(&c, 0, sizeof c);
    c.in_ch = 1; c.classes = 3;
    if (!strcmp(argv[1], "hippo")) {
        c.stages = 4; c.batch = 9;
        int f[4] = {32, 64, 128, 256}, s[4] = {1, 2, 2, 2};
        memcpy(c.feat, f, sizeof f); memcpy(c.stride, s, sizeof s);
        c.patch[0] = 40; c.patch[1] = 56; c.patch[2] = 40;
    } else {
        c.stages = 6; c.batch = 2;
        int f[6] = {32, 64, 128, 256, 320, 320}, s[6] = {1, 2, 2, 2, 2, 2};
        memcpy(c.feat, f, sizeof f); memcpy(c.stride, s, sizeof s);
        c.patch[0] = c.patch[1] = c.patch[2] = 128;
    }
    nnu_cuda_precision prec;
    if (!nnu_cuda_precision_from_name(argv[2], &prec)) return fprintf(stderr, "bad precision\n"), 2;
    /* this bench allocates its activations as floats: fp32-storage tables only (the
     * -act16 modes are timed through nnu_net: test_gpu_net --bench PREC) */
    if (nnu_cuda_precision_act16(prec))
        return fprintf(stderr, "unet_bench: %s stores 16-bit activations; use test_gpu_net "
                               "--bench %s\n", argv[2], argv[2]), 2;
    const nnu_backend *be;
    TRY(nnu_backend_cuda(prec, &be));
    net tr, inf;
    net_build(&tr, be, &c, c.batch, 1);
    net_build(&inf, be, &c, 1, 0);
    const int64_t np = tr.nparam;
    float *P = dalloc(&tr, np), *G = dalloc(&tr, np), *M = dalloc(&tr, np);
    {   /* He-normal-like init on the host (timing does not depend on the values) */
        float *h = malloc((size_t)np * sizeof *h);
        uint64_t st = 12345;
        for (int64_t i = 0; i < np; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            h[i] = (float)(((st >> 40) / 16777216.0) - 0.5) * 0.1f;
        }
        TRY(be->memcpy_(be, P, h, (size_t)np * sizeof *h));
        const int64_t nx = c.batch * c.in_ch * sp(c.patch);
        float *x = malloc((size_t)nx * sizeof *x);
        for (int64_t i = 0; i < nx; i++) x[i] = (float)sin((double)i * 0.37);
        TRY(be->memcpy_(be, tr.x, x, (size_t)nx * sizeof *x));
        TRY(be->memcpy_(be, inf.x, x, (size_t)(c.in_ch * sp(c.patch)) * sizeof *x));
        free(x);
        free(h);
    }
    double *tt = malloc((size_t)(iters + 3) * sizeof *tt);
    float scale = prec == NNU_CUDA_FP16 ? 65536.0f : 1.0f;
    int steps = 0, skipped = 0;
    double loss = 0;
    for (int it = 0; it < iters + 3; it++) {
        TRY(be->sync(be));
        if (it == 3 && nnu_cuda_profile_enabled()) TRY(nnu_cuda_profile_reset());
        double t0 = now_ms();
        TRY(nnu_cuda_memset(G, 0, (size_t)np * sizeof(float)));
        forward(&tr, P, 1);
        loss = loss_backward(&tr, P, G, scale);
        double ss;
        nnu_eltwise_params ep = {np, 1.0f};
        TRY(be->sumsq(be, G, &ss, &ep));
        if (!isfinite(ss)) {                /* fp16 overflow: skip, halve the scale */
            scale *= 0.5f;
            skipped++;
        } else {
            double norm = sqrt(ss) / scale;
            double f = (1.0 / scale) * (norm > 12.0 ? 12.0 / norm : 1.0);
            if (f != 1.0) {
                ep.alpha = (float)f;
                TRY(be->scale(be, G, &ep));
            }
            nnu_sgd_params sgd = {np, 0.01f, 0.99f, 3e-5f, 1, steps == 0};
            TRY(be->sgd_step(be, P, G, M, &sgd));
            steps++;
        }
        TRY(be->sync(be));
        tt[it] = now_ms() - t0;
    }
    qsort(tt + 3, (size_t)iters, sizeof *tt, cmp_d);
    const double train_ms = tt[3 + iters / 2];
    if (nnu_cuda_profile_enabled()) {
        printf("profile phase train (%s)\n", be->name);
        TRY(nnu_cuda_profile_report(stdout));
    }
    for (int it = 0; it < iters + 3; it++) {
        TRY(be->sync(be));
        if (it == 3 && nnu_cuda_profile_enabled()) TRY(nnu_cuda_profile_reset());
        double t0 = now_ms();
        forward(&inf, P, 0);
        TRY(be->sync(be));
        tt[it] = now_ms() - t0;
    }
    qsort(tt + 3, (size_t)iters, sizeof *tt, cmp_d);
    const double infer_ms = tt[3 + iters / 2];
    if (nnu_cuda_profile_enabled()) {
        printf("profile phase inference (%s)\n", be->name);
        TRY(nnu_cuda_profile_report(stdout));
    }
    nnu_cuda_mem_stats ms;
    nnu_cuda_get_mem_stats(&ms);
    printf("bench ours plan=%s prec=%s batch=%d train_ms=%.2f infer_ms=%.2f peak_mib=%.0f "
           "loss=%.4f skipped=%d params=%lld\n", argv[1], argv[2], c.batch, train_ms, infer_ms,
           (double)ms.peak_in_use / (1 << 20), loss, skipped, (long long)np);
    printf("conv api %s: %d graph plans, %d legacy fallbacks\n", nnu_cuda_conv_api(),
           nnu_cuda_conv_graph_plans(), nnu_cuda_conv_graph_fallbacks());
    free(tt);
    return 0;
}
