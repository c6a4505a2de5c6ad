/* test_net_loss_scale.c: dynamic loss scaling of nnu_net (PyTorch's GradScaler, nnu_net.h)
 * on the CPU backend, where it is exact:
 *   - scaling by a power of two commutes with every fp32 rounding of the backward, so a
 *     scaled training (scale 2^16, growing every 2 steps, clipping active) must give
 *     parameters, momentum and losses bit-identical to the unscaled one;
 *   - a non-finite gradient skips the update (parameters, momentum, step count untouched),
 *     halves the scale and resets the growth tracker; without scaling it stays an error;
 *   - a non-finite loss (NaN input) skips the whole step when scaling, errors otherwise;
 *   - a scale beyond fp32's range skips and backs off; bad settings are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_net.h"

enum { N = 2, D = 8, H = 8, W = 8, S = D * H * W };

static nnu_net_config tiny_config(void) {
    nnu_net_config c = {0};
    c.dim = 3; c.n_stages = 3; c.in_channels = 1; c.num_classes = 3;
    for (int s = 0; s < 3; s++) {
        c.features[s] = 4 << s;   /* 4/8/16: not all multiples of 16, so plain layout */
        for (int a = 0; a < 3; a++) { c.kernel[s][a] = 3; c.stride[s][a] = s ? 2 : 1; }
        c.n_conv_enc[s] = 2;
        c.n_conv_dec[s] = 1;
    }
    c.conv_bias = 1; c.norm_eps = 1e-5f; c.slope = 0.01f; c.deep_supervision = 1;
    c.ignore_label = -1;
    return c;
}

/* deterministic input and labels (a bright cube is class 1, a corner class 2) */
static void make_batch(float *x, int32_t *lab, int variant) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < S; i++) {
            int z = i / (H * W), y = i / W % H, xx = i % W;
            int cube = z >= 2 && z < 6 && y >= 2 && y < 6 && xx >= 1 + variant && xx < 5 + variant;
            int corner = z < 2 && y < 2;
            lab[n * S + i] = cube ? 1 : corner ? 2 : 0;
            x[n * S + i] = (float)(cube - 0.5 * corner) + 0.1f * (float)(((i + 7 * n) * 37) % 11 - 5);
        }
}

static int64_t patch[3] = {D, H, W};

static nnu_status step(nnu_net *net, const float *x, const int32_t *lab,
                       const nnu_sgd_config *c, double *loss) {
    nnu_tensor *t = NULL;
    nnu_status st = nnu_tensor_wrap((void *)lab, NNU_DTYPE_I32, 5,
                                    (const int64_t[]){N, 1, D, H, W}, &t);
    if (st) return st;
    st = nnu_net_train_step(net, x, N, patch, t, c, loss);
    nnu_tensor_release(t);
    return st;
}

static int same(const float *a, const float *b, int64_t n) {
    return !memcmp(a, b, (size_t)n * sizeof(float));
}

static void test_scaled_equals_unscaled(void) {
    nnu_net_config cfg = tiny_config();
    nnu_net *plain = NULL, *scaled = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &cfg, 5, &plain));
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &cfg, 5, &scaled));
    nnu_loss_scaler ls;
    nnu_loss_scaler_default(&ls);
    CHECK(ls.enabled && ls.scale == 65536.0 && ls.growth == 2.0 && ls.backoff == 0.5 &&
          ls.growth_interval == 2000, "GradScaler defaults");
    ls.growth_interval = 2;
    CHECK_OK(nnu_net_set_loss_scaler(scaled, &ls));
    nnu_sgd_config c;
    nnu_sgd_config_default(&c);
    c.clip_norm = 0.05f;   /* clipping active: unscale and clip share one pass */
    float x[N * S];
    int32_t lab[N * S];
    const int64_t np = nnu_net_num_params(plain);
    for (int it = 0; it < 5; it++) {
        make_batch(x, lab, it % 2);
        double l0 = 0, l1 = 0;
        CHECK_OK(step(plain, x, lab, &c, &l0));
        CHECK_OK(step(scaled, x, lab, &c, &l1));
        CHECK(l0 == l1, "step %d: loss %.17g scaled vs %.17g", it, l1, l0);
        CHECK(!nnu_net_last_step_skipped(scaled), "step %d skipped", it);
    }
    CHECK(same(nnu_net_params(plain), nnu_net_params(scaled), np),
          "parameters after 5 scaled steps differ from the unscaled ones");
    CHECK(same(nnu_net_momentum(plain), nnu_net_momentum(scaled), np), "momentum differs");
    CHECK(same(nnu_net_grads(plain), nnu_net_grads(scaled), np),
          "unscaled + clipped gradients differ");
    const nnu_loss_scaler *now = nnu_net_loss_scaler(scaled);
    CHECK(now->scale == 65536.0 * 4 && now->growth_tracker == 1 && now->skipped == 0,
          "after 5 finite steps with interval 2: scale %g (want 262144), tracker %d (want 1)",
          now->scale, now->growth_tracker);
    nnu_net_free(plain);
    nnu_net_free(scaled);
}

static void test_skip_on_nonfinite(void) {
    nnu_net_config cfg = tiny_config();
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &cfg, 9, &net));
    nnu_loss_scaler ls;
    nnu_loss_scaler_default(&ls);
    ls.growth_interval = 3;
    CHECK_OK(nnu_net_set_loss_scaler(net, &ls));
    nnu_sgd_config c;
    nnu_sgd_config_default(&c);
    float x[N * S];
    int32_t lab[N * S];
    make_batch(x, lab, 0);
    double loss;
    CHECK_OK(step(net, x, lab, &c, &loss));   /* one good step: tracker 1 */
    const int64_t np = nnu_net_num_params(net);
    float *w0 = malloc((size_t)np * 4), *m0 = malloc((size_t)np * 4);
    memcpy(w0, nnu_net_params(net), (size_t)np * 4);
    memcpy(m0, nnu_net_momentum(net), (size_t)np * 4);

    /* an overflowed gradient: one +inf in the block */
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_wrap(lab, NNU_DTYPE_I32, 5, (const int64_t[]){N, 1, D, H, W}, &t));
    CHECK_OK(nnu_net_zero_grad(net));
    CHECK_OK(nnu_net_forward(net, x, N, patch, 1));
    CHECK_OK(nnu_net_loss(net, t, &loss));
    CHECK_OK(nnu_net_backward(net));
    nnu_net_grads(net)[np / 2] = INFINITY;
    double norm = 0;
    CHECK_OK(nnu_net_sgd_step(net, &c, &norm));
    CHECK(!isfinite(norm) && nnu_net_last_step_skipped(net), "skip reported (norm %g)", norm);
    CHECK(same(w0, nnu_net_params(net), np) && same(m0, nnu_net_momentum(net), np),
          "a skipped step changed the parameters or the momentum");
    CHECK(nnu_net_get_sgd_steps(net) == 1, "step count %d after a skip (want 1)",
          nnu_net_get_sgd_steps(net));
    const nnu_loss_scaler *now = nnu_net_loss_scaler(net);
    CHECK(now->scale == 32768.0 && now->growth_tracker == 0 && now->skipped == 1,
          "after a skip: scale %g (want 32768), tracker %d, skipped %lld", now->scale,
          now->growth_tracker, (long long)now->skipped);

    /* a NaN input: the loss is NaN, the whole step is skipped */
    float xn[N * S];
    memcpy(xn, x, sizeof xn);
    xn[17] = NAN;
    CHECK_OK(step(net, xn, lab, &c, &loss));
    CHECK(isnan(loss) && nnu_net_last_step_skipped(net) && now->scale == 16384.0 &&
          now->skipped == 2, "NaN loss: loss %g, scale %g, skipped %lld", loss, now->scale,
          (long long)now->skipped);
    CHECK(same(w0, nnu_net_params(net), np), "a NaN loss changed the parameters");

    /* three finite steps grow the scale again (interval 3) */
    for (int i = 0; i < 3; i++) CHECK_OK(step(net, x, lab, &c, &loss));
    CHECK(now->scale == 32768.0 && now->growth_tracker == 0 && nnu_net_get_sgd_steps(net) == 4,
          "growth after 3 finite steps: scale %g, tracker %d, steps %d", now->scale,
          now->growth_tracker, nnu_net_get_sgd_steps(net));

    /* without scaling, the same conditions stay errors naming the value */
    ls.enabled = 0;
    CHECK_OK(nnu_net_set_loss_scaler(net, &ls));
    CHECK_FAILS(step(net, xn, lab, &c, &loss), NNU_STATUS_ERR_ARG, "net: loss is");   /* nan or -nan */
    CHECK_OK(nnu_net_zero_grad(net));
    CHECK_OK(nnu_net_forward(net, x, N, patch, 1));
    CHECK_OK(nnu_net_loss(net, t, &loss));
    CHECK_OK(nnu_net_backward(net));
    nnu_net_grads(net)[3] = NAN;
    CHECK_FAILS(nnu_net_sgd_step(net, &c, &norm), NNU_STATUS_ERR_ARG, "gradient norm is");
    nnu_tensor_release(t);
    free(w0);
    free(m0);
    nnu_net_free(net);
}

static void test_settings(void) {
    nnu_net_config cfg = tiny_config();
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(nnu_backend_cpu(), &cfg, 1, &net));
    CHECK(!nnu_net_loss_scaler(net)->enabled, "scaling is off by default");
    nnu_loss_scaler ls;
    nnu_loss_scaler_default(&ls);
    ls.scale = 0;
    CHECK_FAILS(nnu_net_set_loss_scaler(net, &ls), NNU_STATUS_ERR_ARG, "finite and positive");
    nnu_loss_scaler_default(&ls);
    ls.backoff = 1.0;
    CHECK_FAILS(nnu_net_set_loss_scaler(net, &ls), NNU_STATUS_ERR_ARG, "backoff");
    /* a scale beyond fp32's range: the loss gradient overflows, the step is skipped */
    nnu_loss_scaler_default(&ls);
    ls.scale = ldexp(1.0, 1023);
    ls.growth_interval = 1;
    CHECK_OK(nnu_net_set_loss_scaler(net, &ls));
    nnu_sgd_config c;
    nnu_sgd_config_default(&c);
    float x[N * S];
    int32_t lab[N * S];
    make_batch(x, lab, 1);
    double loss;
    /* the gradient scale 2^1023 overflows fp32: skipped, backed off to 2^1022 */
    CHECK_OK(step(net, x, lab, &c, &loss));
    CHECK(nnu_net_last_step_skipped(net) && nnu_net_loss_scaler(net)->scale == ldexp(1.0, 1022),
          "overflowing scale: skipped %d, scale %g", nnu_net_last_step_skipped(net),
          nnu_net_loss_scaler(net)->scale);
    nnu_net_free(net);
}

int main(void) {
    test_scaled_equals_unscaled();
    test_skip_on_nonfinite();
    test_settings();
    return check_report();
}
