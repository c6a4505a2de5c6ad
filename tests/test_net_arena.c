/* test_net_arena.c: nnu_net's arena carving with 16-bit activation storage,
 * checked on the CPU (R26 tier 1: exact, hand-computed sizes). A fake backend is
 * the CPU table with act_bytes = 2 (as the CUDA -act16 tables); only
 * nnu_net_plan + nnu_net_arena_bytes run on it (the CPU ops cannot read 16-bit
 * storage), plus the forward's refusal to copy fp32 input into 16-bit storage
 * without an upload_act slot. The same plans on the real CPU table (act_bytes 0:
 * 4 bytes) check the formula's fp32 half.
 *
 * The network: 3-D, 2 stages, features 4 / 8, kernel 3, strides 1 / 2, one conv
 * per stage, 1 -> 2 classes, deep supervision; batch N = 2, patch 4x4x4, so
 * S0 = 64 voxels, S1 = 8. Every piece is rounded up to 64 bytes; with A = 2 or 4
 * bytes per activation all activation pieces below are multiples of 64 already.
 *
 * Training plan, in carving order (elements; A = activation bytes):
 *   enc 0   pre, act      2 x N*4*64  = 2 x 512  (A)   stats N*4*2 = 16 floats
 *   enc 1   pre, act      2 x N*8*8   = 2 x 128  (A)   stats N*8*2 = 32 floats
 *   dec 0   cat N*8*64 = 1024 (A); pre, act 2 x 512 (A); stats 16 floats;
 *           logits, glogits 2 x N*2*64 = 2 x 256 floats; target N*64 = 128 int32;
 *           loss workspace nnu_loss_ws_size bytes (rounded to 4, then 64)
 *   up      maxfs = N*4*64 = 512 (A; the largest F_s-channel activation)
 *           input N*1*64 = 128 (A)
 *   ga, gb  2 x maxact = 2 x N*2*4*64 = 2 x 1024 (A; they hold concat gradients)
 *   gt      maxfs = 512 (A)                 gskip 0: N*4*64 = 512 (A)
 *   activations: 1024+256+1024+1024+512+128+2048+512+512 = 7040 elements
 *   fp32: stats 64+128+64 B, logits+glogits 2048 B, target 512 B = 2816 B + ws
 * Inference plan: scratch, 2 ping-pong = 3 x maxfs = 3 x 512 (A), concat maxact = 1024
 *   (A); shared stats N*8*2 = 32 floats; skips enc 0 / enc 1 = 512 + 128 (A);
 *   full-resolution logits 256 floats; up 512 (A); input 128 (A):
 *   activations 3840 elements, fp32 128 + 1024 = 1152 B.
 *
 * The same network as a ResidualEncoderUNet (arch NNU_NET_RESENC, one block per
 * stage: stage 0 has the identity skip, stage 1 strides and projects 4 -> 8):
 * Training plan:
 *   rtmp    maxfs = 512 (A; the skip norm's output, shared)
 *   stem    pre, act 2 x 512 (A)                       stats 16 floats
 *   s0 b0   c1 pre, act, c2 pre, y 4 x 512 (A)          stats 2 x 16 floats
 *   s1 b0   c1 pre, act, c2 pre, y 4 x N*8*8 = 4 x 128 (A); pooled N*4*8 = 64 (A);
 *           skip conv pre 128 (A)                       stats 3 x 32 floats
 *   dec 0, up, input, ga, gb, gt, gskip 0: as above
 *   activations: 512+1024+2048+(512+64+128)+2048+512+128+2048+512+512 = 10048
 *   fp32: stats 64+128+384+64 B, logits+glogits 2048 B, target 512 B = 3200 B + ws
 * Inference plan: scratch, 2 ping-pong 3 x 512 (A), concat 1024 (A), rbuf 512 (A;
 *   pooled input / skip norm), shared stats 32 floats; the stage outputs 512 + 128 (A);
 *   logits 256 floats; up 512 (A); input 128 (A): activations 4352, fp32 1152 B. */
#include <string.h>

#include "check.h"
#include "nnu_net.h"

static void tiny_config(nnu_net_config *c) {
    memset(c, 0, sizeof *c);
    c->dim = 3;
    c->n_stages = 2;
    c->features[0] = 4;
    c->features[1] = 8;
    for (int s = 0; s < 2; s++)
        for (int a = 0; a < 3; a++) {
            c->kernel[s][a] = 3;
            c->stride[s][a] = s ? 2 : 1;
        }
    c->n_conv_enc[0] = c->n_conv_enc[1] = 1;
    c->n_conv_dec[0] = 1;
    c->in_channels = 1;
    c->num_classes = 2;
    c->conv_bias = 1;
    c->norm_eps = 1e-5f;
    c->slope = 1e-2f;
    c->deep_supervision = 1;
    c->ignore_label = -1;
}

static size_t r64(size_t b) { return (b + 63) & ~(size_t)63; }

/* the sizes of the header comment for A bytes per activation element (resenc: the
 * ResidualEncoderUNet variant) */
static size_t want_train(size_t A, int resenc) {
    nnu_loss_params lp = {2, 2, 64, 0, 0, -1, 1e-5f, 1.0f, NNU_LOSS_DICE_AND_CE};
    size_t ws = nnu_loss_ws_size(&lp);
    if (resenc) return 10048 * A + 3200 + r64((ws + 3) / 4 * 4);
    return 7040 * A + 2816 + r64((ws + 3) / 4 * 4);
}
static size_t want_infer(size_t A, int resenc) { return (resenc ? 4352 : 3840) * A + 1152; }

static void check_plans(const char *what, const nnu_backend *be, size_t A, int resenc) {
    nnu_net_config c;
    tiny_config(&c);
    if (resenc) {
        c.arch = NNU_NET_RESENC;
        c.n_blocks_enc[0] = c.n_blocks_enc[1] = 1;
    }
    nnu_net *net = NULL;
    CHECK_OK(nnu_net_create(be, &c, 7, &net));
    if (!net) return;
    const int64_t patch[3] = {4, 4, 4};
    CHECK_OK(nnu_net_plan(net, 2, patch, 1));
    size_t got = nnu_net_arena_bytes(net), want = want_train(A, resenc);
    CHECK(got == want, "%s training arena: %zu bytes, want %zu", what, got, want);
    printf("%s: training arena %zu bytes (want %zu)\n", what, got, want);
    CHECK_OK(nnu_net_plan(net, 2, patch, 0));
    got = nnu_net_arena_bytes(net);
    want = want_infer(A, resenc);
    CHECK(got == want, "%s inference arena: %zu bytes, want %zu", what, got, want);
    printf("%s: inference arena %zu bytes (want %zu)\n", what, got, want);
    /* a smaller batch re-carves inside the arena: same bytes, no reallocation */
    CHECK_OK(nnu_net_plan(net, 1, patch, 0));
    CHECK(nnu_net_arena_bytes(net) == want, "%s: batch 1 re-carve changed the arena to %zu",
          what, nnu_net_arena_bytes(net));
    if (A == 2) {
        /* fp32 host input into 16-bit storage needs the upload slot: refused by name */
        float x[2 * 64] = {0};
        CHECK_FAILS(nnu_net_forward(net, x, 2, patch, 0), NNU_STATUS_ERR_UNSUPPORTED,
                    "upload_act");
    }
    nnu_net_free(net);
}

int main(void) {
    nnu_backend_cpu_set_threads(1);
    check_plans("cpu (fp32 storage)", nnu_backend_cpu(), 4, 0);
    check_plans("cpu (fp32 storage) resenc", nnu_backend_cpu(), 4, 1);
    nnu_backend fake = *nnu_backend_cpu();   /* the CPU table with 16-bit storage */
    fake.name = "cpu:fake-act16";
    fake.act_bytes = 2;
    fake.act_dtype = NNU_ACT_BF16;
    fake.upload_act = NULL;
    check_plans("fake act16 table", &fake, 2, 0);
    check_plans("fake act16 table resenc", &fake, 2, 1);
    /* the training arena shrinks to a bit over half: all but the fp32 pieces halve */
    double ratio = (double)want_train(2, 0) / (double)want_train(4, 0);
    printf("training arena act16 / fp32 = %.3f\n", ratio);
    CHECK(ratio > 0.5 && ratio < 0.6, "act16 / fp32 training arena ratio %.3f", ratio);
    return check_report();
}
