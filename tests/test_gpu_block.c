/* test_gpu_block.c: a few training steps of a tiny U-Net (one skip) on the GPU
 * match the same steps on the CPU (STYLE R26 tier 3, issue 9 "training steps").
 *
 * Network (plain layouts), x (2, 1, 6, 8, 4):
 *   conv3 1->8 + IN+lrelu = a1 -> conv3 s2 8->16 + IN+lrelu = a2 -> convt k2 16->8 = up
 *   -> [up, a1] (16) -> conv1 16->3 (head, cuBLAS on the GPU) -> Dice+CE loss
 * then the backward in the order nnu_net uses (bwd_params before bwd_data, skip
 * gradients accumulated with axpy, no input gradient for the first layer) and one
 * Nesterov SGD step over the flat parameter block (R7). The step function is
 * written once against the backend table: the same code runs on both devices.
 * nnu_net itself still touches its blocks with memset (host-only), so this test
 * drives the op sequence of one conv block directly.
 *
 * Tolerance: fp32 strict GPU vs CPU, after 3 steps: loss 1e-5 relative, parameters
 * 1e-5 * max|w| + 1e-4 * |w| (lr 0.01 shrinks gradient differences 100x, momentum
 * 0.99 carries them over steps); tf32: loss 2e-3, parameters 5e-4 * max|w|. */
#include "ops_ref.h"

#ifndef NNUNET_HAVE_CUDA
int main(void) {
    printf("SKIP: no GPU (built without the CUDA backend)\n");
    return 77;
}
#else
#include "nnu_cuda.h"

enum { N = 2, CI = 1, F1 = 8, F2 = 16, K = 3, STEPS = 3 };
static const int64_t SP1[3] = {6, 8, 4};

/* parameter offsets in the flat block */
enum {
    O_W1 = 0, O_B1 = O_W1 + F1 * CI * 27, O_G1 = O_B1 + F1, O_BE1 = O_G1 + F1,
    O_W2 = O_BE1 + F1, O_B2 = O_W2 + F2 * F1 * 27, O_G2 = O_B2 + F2, O_BE2 = O_G2 + F2,
    O_WT = O_BE2 + F2, O_BT = O_WT + F2 * F1 * 8, O_WH = O_BT + F1, O_BH = O_WH + K * 2 * F1,
    NPARAM = O_BH + K
};

typedef struct run {
    const nnu_backend *be;
    float *prm, *grd, *mom;
    float *x, *pre1, *a1, *st1, *pre2, *a2, *st2, *up, *cat, *logit, *glogit, *gcat, *gup,
        *gskip, *ga2, *ga1;
    int32_t *tgt;
    void *ws;
    float *zeros;              /* host zeros for clearing device memory portably */
    nnu_conv_params c1, c2, ct, ch;
    nnu_norm_params n1, n2;
    nnu_concat_params cc;
    nnu_loss_params lp;
} run;

static float *balloc(run *r, int64_t n) {
    float *p = r->be->mem->alloc((size_t)n * sizeof(float), r->be->mem->ctx);
    CHECK(p != NULL, "alloc on %s: %s", r->be->name, nnu_last_error());
    return p;
}

static void setup(run *r, const nnu_backend *be, const float *params, const float *x,
                  const int32_t *tgt) {
    memset(r, 0, sizeof *r);
    r->be = be;
    const int k3[3] = {3, 3, 3}, k1[3] = {1, 1, 1}, k2[3] = {2, 2, 2};
    const int s1[3] = {1, 1, 1}, s2[3] = {2, 2, 2};
    CHECK_OK(nnu_conv_params_init(&r->c1, N, CI, F1, SP1, k3, s1, 0, 1, 1));
    CHECK_OK(nnu_conv_params_init(&r->c2, N, F1, F2, SP1, k3, s2, 0, 1, 1));
    CHECK_OK(nnu_conv_params_init(&r->ct, N, F2, F1, r->c2.out, k2, s2, 1, 1, 1));
    CHECK_OK(nnu_conv_params_init(&r->ch, N, 2 * F1, K, SP1, k1, s1, 0, 1, 1));
    const int64_t S1 = ref_sp(SP1), S2 = ref_sp(r->c2.out);
    r->n1 = (nnu_norm_params){N, F1, S1, 1, 1e-5f, 0.01f};
    r->n2 = (nnu_norm_params){N, F2, S2, 1, 1e-5f, 0.01f};
    r->cc = (nnu_concat_params){N, F1, F1, S1, 1};
    r->lp = (nnu_loss_params){N, K, S1, 0, 0, -1, 1e-5f, 1.0f, NNU_LOSS_DICE_AND_CE};
    r->prm = balloc(r, NPARAM); r->grd = balloc(r, NPARAM); r->mom = balloc(r, NPARAM);
    r->x = balloc(r, N * CI * S1);
    r->pre1 = balloc(r, N * F1 * S1); r->a1 = balloc(r, N * F1 * S1); r->st1 = balloc(r, N * F1 * 2);
    r->pre2 = balloc(r, N * F2 * S2); r->a2 = balloc(r, N * F2 * S2); r->st2 = balloc(r, N * F2 * 2);
    r->up = balloc(r, N * F1 * S1); r->cat = balloc(r, N * 2 * F1 * S1);
    r->logit = balloc(r, N * K * S1); r->glogit = balloc(r, N * K * S1);
    r->gcat = balloc(r, N * 2 * F1 * S1); r->gup = balloc(r, N * F1 * S1);
    r->gskip = balloc(r, N * F1 * S1); r->ga2 = balloc(r, N * F2 * S2);
    r->ga1 = balloc(r, N * F1 * S1);
    r->tgt = r->be->mem->alloc((size_t)(N * S1) * sizeof(int32_t), r->be->mem->ctx);
    r->ws = r->be->mem->alloc(nnu_loss_ws_size(&r->lp), r->be->mem->ctx);
    r->zeros = ref_falloc(NPARAM);
    CHECK_OK(be->memcpy_(be, r->prm, params, NPARAM * sizeof(float)));
    CHECK_OK(be->memcpy_(be, r->x, x, (size_t)(N * CI * S1) * sizeof(float)));
    CHECK_OK(be->memcpy_(be, r->tgt, tgt, (size_t)(N * S1) * sizeof(int32_t)));
}

static nnu_status step(run *r, int first, double *loss) {
    const nnu_backend *be = r->be;
    float *P = r->prm, *G = r->grd;
    NNU_TRY(be->memcpy_(be, G, r->zeros, NPARAM * sizeof(float)));        /* zero_grad */
    /* forward */
    NNU_TRY(be->conv_fwd(be, r->x, r->pre1, P + O_W1, P + O_B1, &r->c1));
    NNU_TRY(be->instnorm_fwd(be, r->pre1, r->a1, P + O_G1, P + O_BE1, r->st1, &r->n1));
    NNU_TRY(be->conv_fwd(be, r->a1, r->pre2, P + O_W2, P + O_B2, &r->c2));
    NNU_TRY(be->instnorm_fwd(be, r->pre2, r->a2, P + O_G2, P + O_BE2, r->st2, &r->n2));
    NNU_TRY(be->convt_fwd(be, r->a2, r->up, P + O_WT, P + O_BT, &r->ct));
    NNU_TRY(be->concat_fwd(be, r->up, r->a1, r->cat, &r->cc));
    NNU_TRY(be->conv_fwd(be, r->cat, r->logit, P + O_WH, P + O_BH, &r->ch));
    NNU_TRY(be->loss_dice_ce_fwd(be, r->logit, r->tgt, r->ws, loss, &r->lp));
    NNU_TRY(be->loss_dice_ce_bwd(be, r->logit, r->tgt, r->ws, r->glogit, &r->lp));
    /* backward */
    NNU_TRY(be->conv_bwd_params(be, r->cat, r->glogit, G + O_WH, G + O_BH, &r->ch));
    NNU_TRY(be->conv_bwd_data(be, r->glogit, r->gcat, P + O_WH, &r->ch));
    NNU_TRY(be->concat_bwd(be, r->gcat, r->gup, r->gskip, &r->cc));
    NNU_TRY(be->convt_bwd_params(be, r->a2, r->gup, G + O_WT, G + O_BT, &r->ct));
    NNU_TRY(be->convt_bwd_data(be, r->gup, r->ga2, P + O_WT, &r->ct));
    NNU_TRY(be->instnorm_bwd(be, r->pre2, r->ga2, r->ga2, P + O_G2, P + O_BE2, G + O_G2,
                             G + O_BE2, r->st2, &r->n2));
    NNU_TRY(be->conv_bwd_params(be, r->a1, r->ga2, G + O_W2, G + O_B2, &r->c2));
    NNU_TRY(be->conv_bwd_data(be, r->ga2, r->ga1, P + O_W2, &r->c2));
    nnu_eltwise_params ap = {N * F1 * ref_sp(SP1), 1.0f};
    NNU_TRY(be->axpy(be, r->gskip, r->ga1, &ap));
    NNU_TRY(be->instnorm_bwd(be, r->pre1, r->ga1, r->ga1, P + O_G1, P + O_BE1, G + O_G1,
                             G + O_BE1, r->st1, &r->n1));
    NNU_TRY(be->conv_bwd_params(be, r->x, r->ga1, G + O_W1, G + O_B1, &r->c1));
    nnu_sgd_params sp = {NPARAM, 0.01f, 0.99f, 3e-5f, 1, first};
    NNU_TRY(be->sgd_step(be, P, G, r->mom, &sp));
    return be->sync(be);
}

static void teardown(run *r) {
    void *bufs[] = {r->prm, r->grd, r->mom, r->x, r->pre1, r->a1, r->st1, r->pre2, r->a2,
                    r->st2, r->up, r->cat, r->logit, r->glogit, r->gcat, r->gup, r->gskip,
                    r->ga2, r->ga1, r->tgt, r->ws};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) r->be->mem->free(bufs[i], r->be->mem->ctx);
    free(r->zeros);
}

int main(void) {
    if (nnu_cuda_device_count() == 0) {
        printf("SKIP: no GPU\n");
        return 77;
    }
    const uint64_t seed = 4242;
    printf("seed %llu\n", (unsigned long long)seed);
    ref_seed(seed);
    const int64_t S1 = ref_sp(SP1);
    float *params = ref_falloc(NPARAM), *x = ref_falloc(N * CI * S1);
    int32_t *tgt = malloc((size_t)(N * S1) * sizeof *tgt);
    ref_fill(params, NPARAM, -0.3, 0.3);
    for (int c = 0; c < F1; c++) { params[O_G1 + c] = 1.0f; params[O_BE1 + c] = 0.0f; }
    for (int c = 0; c < F2; c++) { params[O_G2 + c] = 1.0f; params[O_BE2 + c] = 0.0f; }
    ref_fill(x, N * CI * S1, -1, 2);
    for (int64_t i = 0; i < N * S1; i++) tgt[i] = (int32_t)(ref_uniform() * K);

    run rc;
    double lc[STEPS];
    setup(&rc, nnu_backend_cpu(), params, x, tgt);
    for (int s = 0; s < STEPS; s++) CHECK_OK(step(&rc, s == 0, &lc[s]));

    const nnu_cuda_precision precs[2] = {NNU_CUDA_FP32, NNU_CUDA_TF32};
    const double tol_loss[2] = {1e-5, 2e-3}, tol_w[2] = {1e-5, 5e-4}, tol_wr[2] = {1e-4, 1e-3};
    for (int pi = 0; pi < 2; pi++) {
        const nnu_backend *gpu;
        CHECK_OK(nnu_backend_cuda(precs[pi], &gpu));
        if (!gpu) break;
        run rg;
        setup(&rg, gpu, params, x, tgt);
        int before = check_failures;
        for (int s = 0; s < STEPS; s++) {
            double lg = 0;
            CHECK_OK(step(&rg, s == 0, &lg));
            printf("%s step %d: loss gpu %.9f cpu %.9f\n", gpu->name, s, lg, lc[s]);
            CHECK(fabs(lg - lc[s]) <= tol_loss[pi] * fabs(lc[s]), "%s step %d loss %.9g vs %.9g",
                  gpu->name, s, lg, lc[s]);
        }
        float *wg = ref_falloc(NPARAM);
        CHECK_OK(gpu->memcpy_(gpu, wg, rg.prm, NPARAM * sizeof(float)));
        double mx = 0, maxd = 0;
        int64_t bad = 0;
        for (int64_t i = 0; i < NPARAM; i++) mx = fmax(mx, fabs(rc.prm[i]));
        for (int64_t i = 0; i < NPARAM; i++) {
            double d = fabs((double)wg[i] - rc.prm[i]);
            maxd = fmax(maxd, d);
            if (!(d <= tol_w[pi] * mx + tol_wr[pi] * fabs(rc.prm[i]))) bad++;
        }
        CHECK(bad == 0, "%s: %lld of %d parameters differ after %d steps (max diff %.3g, max|w| "
              "%.3g)", gpu->name, (long long)bad, NPARAM, STEPS, maxd, mx);
        printf("%s %s: %d steps, max parameter diff %.3g\n",
               check_failures == before ? "PASS" : "FAIL", gpu->name, STEPS, maxd);
        free(wg);
        teardown(&rg);
    }
    teardown(&rc);
    free(params); free(x); free(tgt);
    return check_report();
}
#endif
