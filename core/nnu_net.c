/* nnu_net.c: PlainConvUNet / ResidualEncoderUNet construction, arena planning,
 * forward, loss, backward and the SGD step (see nnu_net.h for the layout of
 * parameters and outputs).
 *
 * Data flow (F_r features at resolution r, L = activation layout block):
 *   encoder stage r: blocks conv(stride_r on the first) -> instnorm+lrelu; its last
 *                    output E_r is the skip of resolution r
 *   (ResEnc: a stem block conv -> instnorm+lrelu at full resolution, then per stage
 *    residual blocks (rblock): y = lrelu(norm2(conv2(a1)) + res), a1 = the block c1
 *    (conv stride_r on the first block -> instnorm+lrelu), res = the input x, or
 *    avgpool(x) when the block strides, then norm_s(conv1x1(.)) when it changes
 *    channels (instnorm with slope 1 = plain norm); E_r = the last block's y)
 *   decoder stage t (r = n-2-t): up = convt(below); cat = [up, E_r];
 *                    blocks conv -> instnorm+lrelu; head = conv1x1 -> logits_t
 * Every block keeps pre (conv output, N*F*S) and act (its activation, N*F*S) and
 * stats (N*F*2); the backward recomputes the normalised values from pre + stats.
 * Gradient buffers: ga/gb ping-pong (largest activation), gt scratch (head and
 * upsampling gradients), gskip_r per encoder stage (filled by the decoder).
 * Storage: activations and their gradients (input, pre, act, cat, up, ga/gb/gt,
 * gskip) take the backend's activation size (4 bytes, or 2 in the CUDA -act16
 * tables: nnu_backend.h); stats, logits, glogits, targets and the loss workspace
 * are fp32 in every table, so outputs read back as floats. The heads are the only
 * convolutions with an fp32 output (hp.f32_out). The input is uploaded through
 * be->upload_act when the backend has it. */
#include "nnu_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_interrupt.h"

typedef struct block {
    nnu_conv_params cp;
    nnu_norm_params np;
    int64_t w, b, g, bt;            /* parameter offsets: conv weight/bias, norm gamma/beta */
    const float *in;                /* input activation (arena or the user input) */
    float *pre, *act, *stats;
} block;

/* BasicBlockD of the residual encoder. c2.act is the block output y: the norm of
 * conv2 is written there and the residual added in place (add_lrelu). */
typedef struct rblock {
    block c1;                       /* conv1 (+ the stage stride) -> instnorm + lrelu */
    block c2;                       /* conv2 -> instnorm (slope 1) -> y */
    block cs;                       /* skip: 1x1 conv (no bias) -> instnorm (slope 1) */
    int pool, proj;                 /* skip = [avgpool] [cs]; the identity when neither */
    nnu_pool_params pp;
    float *pooled;                  /* avgpool output (input of cs, or the residual) */
    const float *res;               /* the residual: x, pooled or cs.act */
    nnu_eltwise_params ap;          /* add_lrelu / lrelu_bwd over y (slope) */
    int64_t nin;                    /* elements of the block input x */
} rblock;

typedef struct dstage {
    int r;                          /* resolution of this stage */
    int64_t tw, tb, hw, hb;         /* transposed conv and head parameter offsets */
    nnu_conv_params tp, hp;
    nnu_concat_params catp;
    const float *below;             /* input of the transposed conv */
    float *cat;                     /* [up, skip] */
    float *logits, *glogits;        /* head output (plain) and its gradient */
    int32_t *target;                /* labels at this resolution (loss) */
    void *loss_ws;
    nnu_loss_params lp;
} dstage;

struct nnu_net {
    const nnu_backend *be;
    nnu_net_config cfg;
    int cblk;
    /* parameters */
    int64_t nparams;
    float *params, *grads, *mom;
    float *adam[3];                 /* exp_avg, exp_avg_sq, max_exp_avg_sq (lazy) */
    int ntensors;
    /* PlainConvUNet needs <= 32 per stage; a residual block has up to 11 */
    nnu_net_tensor_info tensors[NNU_NET_MAX_STAGES * (NNU_NET_MAX_BLOCKS * 11 + 32)];
    int sgd_steps;
    nnu_loss_scaler scaler;         /* dynamic loss scaling (off unless set) */
    int last_skipped;               /* the last optimizer step was skipped */
    /* layer descriptors: encoder blocks first, then decoder blocks */
    int nblocks;
    block blocks[NNU_NET_MAX_STAGES * 16];
    int enc_first[NNU_NET_MAX_STAGES], enc_n[NNU_NET_MAX_STAGES];
    int dec_first[NNU_NET_MAX_STAGES], dec_n[NNU_NET_MAX_STAGES];
    dstage dec[NNU_NET_MAX_STAGES];
    /* ResEnc: the stem is blocks[0]; the encoder stages are rblocks */
    rblock rblocks[NNU_NET_MAX_STAGES * NNU_NET_MAX_BLOCKS];
    int res_first[NNU_NET_MAX_STAGES], res_n[NNU_NET_MAX_STAGES];
    float *rtmp;                    /* training: the skip norm's output (shared) */
    /* plan */
    int64_t batch, patch[3];
    int64_t sp[NNU_NET_MAX_STAGES][3];   /* spatial size per resolution */
    char *arena;
    size_t arena_bytes;
    float *ga, *gb, *gt, *up;
    float *gskip[NNU_NET_MAX_STAGES];
    float *input;                   /* copy of the input (arena) */
    int32_t *host_target;           /* host staging of the labels (non-host backends) */
    int last_train;                 /* outputs of the last forward (-1: none yet) */
    int plan_train;                 /* the arena is planned for training (1) or inference */
    int64_t arena_batch;            /* the batch the arena was sized for (>= batch) */
};

/* ---- configuration and parameters ---- */

void nnu_sgd_config_default(nnu_sgd_config *c) {
    memset(c, 0, sizeof *c);
    c->optimizer = NNU_OPTIM_SGD;
    c->lr = 1e-2f;
    c->momentum = 0.99f;
    c->weight_decay = 3e-5f;
    c->nesterov = 1;
    c->clip_norm = 12.0f;
}

void nnu_adam_config_default(nnu_sgd_config *c) {
    memset(c, 0, sizeof *c);
    c->optimizer = NNU_OPTIM_ADAM;
    c->lr = 3e-4f;
    c->weight_decay = 3e-5f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->amsgrad = 1;
    c->clip_norm = 0.0f;
}

float nnu_poly_lr(float initial, int epoch, int max_epochs) {
    return (float)(initial * pow(1.0 - (double)epoch / max_epochs, 0.9));
}

static nnu_status check_config(const nnu_net_config *c) {
    NNU_CHECK(c->dim == 2 || c->dim == 3, NNU_STATUS_ERR_ARG, "net: dim %d (2 or 3)", c->dim);
    NNU_CHECK(c->n_stages >= 2 && c->n_stages <= NNU_NET_MAX_STAGES, NNU_STATUS_ERR_ARG,
              "net: n_stages %d (2..%d)", c->n_stages, NNU_NET_MAX_STAGES);
    NNU_CHECK(c->in_channels > 0 && c->num_classes >= (c->n_regions ? 1 : 2), NNU_STATUS_ERR_ARG,
              "net: in_channels %d, num_classes %d", c->in_channels, c->num_classes);
    NNU_CHECK(c->n_regions == 0 || (c->n_regions == c->num_classes && c->n_regions <= 32 &&
              c->n_labels >= 2 && c->n_labels <= NNU_LOSS_MAX_LABELS), NNU_STATUS_ERR_ARG,
              "net: %d regions over %d labels with %d heads (regions = heads <= 32, 2..%d labels)",
              c->n_regions, c->n_labels, c->num_classes, NNU_LOSS_MAX_LABELS);
    NNU_CHECK(c->loss_terms == NNU_LOSS_DICE_AND_CE || c->loss_terms == NNU_LOSS_CE_ONLY ||
              c->loss_terms == NNU_LOSS_DICE_ONLY, NNU_STATUS_ERR_ARG,
              "net: loss_terms %d (dice+ce %d, ce %d, dice %d)", c->loss_terms,
              NNU_LOSS_DICE_AND_CE, NNU_LOSS_CE_ONLY, NNU_LOSS_DICE_ONLY);
    NNU_CHECK(!c->loss_smooth_set || (c->loss_smooth >= 0.0f && isfinite(c->loss_smooth)),
              NNU_STATUS_ERR_ARG, "net: loss_smooth %g (a finite value >= 0)",
              (double)c->loss_smooth);
    NNU_CHECK(c->arch == NNU_NET_PLAIN || c->arch == NNU_NET_RESENC, NNU_STATUS_ERR_ARG,
              "net: arch %d (PlainConvUNet %d or ResidualEncoderUNet %d)", c->arch,
              NNU_NET_PLAIN, NNU_NET_RESENC);
    for (int s = 0; s < c->n_stages; s++) {
        NNU_CHECK(c->features[s] > 0, NNU_STATUS_ERR_ARG, "net: features[%d] = %d", s,
                  c->features[s]);
        if (c->arch == NNU_NET_RESENC)
            NNU_CHECK(c->n_blocks_enc[s] >= 1 && c->n_blocks_enc[s] <= NNU_NET_MAX_BLOCKS,
                      NNU_STATUS_ERR_ARG, "net: n_blocks_per_stage[%d] = %d (1..%d)", s,
                      c->n_blocks_enc[s], NNU_NET_MAX_BLOCKS);
        else
            NNU_CHECK(c->n_conv_enc[s] >= 1 && c->n_conv_enc[s] <= 8, NNU_STATUS_ERR_ARG,
                      "net: n_conv_per_stage[%d] = %d", s, c->n_conv_enc[s]);
        if (s < c->n_stages - 1)
            NNU_CHECK(c->n_conv_dec[s] >= 1 && c->n_conv_dec[s] <= 8, NNU_STATUS_ERR_ARG,
                      "net: n_conv_per_stage_decoder[%d] = %d", s, c->n_conv_dec[s]);
        for (int a = 0; a < 3; a++) {
            NNU_CHECK(c->kernel[s][a] == 1 || c->kernel[s][a] == 3, NNU_STATUS_ERR_UNSUPPORTED,
                      "net: kernel %d on axis %d of stage %d (1 or 3)", c->kernel[s][a], a, s);
            NNU_CHECK(c->stride[s][a] == 1 || c->stride[s][a] == 2, NNU_STATUS_ERR_UNSUPPORTED,
                      "net: stride %d on axis %d of stage %d (1 or 2)", c->stride[s][a], a, s);
        }
        if (c->dim == 2)
            NNU_CHECK(c->kernel[s][0] == 1 && c->stride[s][0] == 1, NNU_STATUS_ERR_ARG,
                      "net: 2-D stage %d needs kernel/stride 1 on the D axis", s);
    }
    return NNU_STATUS_OK;
}

static int add_tensor(nnu_net *net, const char *name, int ndim, const int64_t *shape) {
    nnu_net_tensor_info *t = &net->tensors[net->ntensors];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; t->numel *= shape[i]; }
    t->offset = net->nparams;
    net->nparams += t->numel;
    return net->ntensors++;
}

/* weight shape [a, b, k...] with the spatial kernel dims of the net's dim */
static int add_weight(nnu_net *net, const char *name, int64_t a, int64_t b, const int k[3]) {
    int64_t sh[5] = {a, b};
    int nd = 2;
    for (int i = net->cfg.dim == 2 ? 1 : 0; i < 3; i++) sh[nd++] = k[i];
    return add_tensor(net, name, nd, sh);
}

/* registers the parameters of ConvDropoutNormReLU `prefix` (conv, optional bias, norm
 * gamma and beta, in named_parameters() order) into bl */
static void add_block_at(nnu_net *net, block *bl, const char *prefix, int64_t cin, int64_t cout,
                         const int k[3], int bias) {
    char nm[96];
    int64_t c = cout;
    snprintf(nm, sizeof nm, "%s.conv.weight", prefix);
    bl->w = net->tensors[add_weight(net, nm, cout, cin, k)].offset;
    bl->b = -1;
    if (bias) {
        snprintf(nm, sizeof nm, "%s.conv.bias", prefix);
        bl->b = net->tensors[add_tensor(net, nm, 1, &c)].offset;
    }
    snprintf(nm, sizeof nm, "%s.norm.weight", prefix);
    bl->g = net->tensors[add_tensor(net, nm, 1, &c)].offset;
    snprintf(nm, sizeof nm, "%s.norm.bias", prefix);
    bl->bt = net->tensors[add_tensor(net, nm, 1, &c)].offset;
}

static void add_block(nnu_net *net, const char *prefix, int64_t cin, int64_t cout,
                      const int k[3]) {
    add_block_at(net, &net->blocks[net->nblocks++], prefix, cin, cout, k, net->cfg.conv_bias);
}

/* the ResidualEncoder's parameters: stem, then per stage its BasicBlockD blocks
 * (conv1, conv2, skip: the order their modules are registered in) */
static void add_resenc(nnu_net *net) {
    const nnu_net_config *c = &net->cfg;
    const int one[3] = {1, 1, 1};
    char nm[96];
    net->enc_first[0] = net->nblocks;           /* the stem: blocks[0] */
    net->enc_n[0] = 1;
    add_block(net, "encoder.stem.convs.0", c->in_channels, c->features[0], c->kernel[0]);
    int64_t cin = c->features[0];
    int nrb = 0;
    for (int s = 0; s < c->n_stages; s++) {
        net->res_first[s] = nrb;
        net->res_n[s] = c->n_blocks_enc[s];
        for (int b = 0; b < c->n_blocks_enc[s]; b++) {
            rblock *rb = &net->rblocks[nrb++];
            const int64_t F = c->features[s];
            rb->pool = 0;
            for (int a = 0; b == 0 && a < 3; a++) rb->pool |= c->stride[s][a] != 1;
            rb->proj = cin != F;
            snprintf(nm, sizeof nm, "encoder.stages.%d.blocks.%d.conv1", s, b);
            add_block_at(net, &rb->c1, nm, cin, F, c->kernel[s], c->conv_bias);
            snprintf(nm, sizeof nm, "encoder.stages.%d.blocks.%d.conv2", s, b);
            add_block_at(net, &rb->c2, nm, F, F, c->kernel[s], c->conv_bias);
            if (rb->proj) {   /* skip = Sequential([AvgPool,] ConvDropoutNormReLU(bias False)) */
                snprintf(nm, sizeof nm, "encoder.stages.%d.blocks.%d.skip.%d", s, b, rb->pool);
                add_block_at(net, &rb->cs, nm, cin, F, one, 0);
            }
            cin = F;
        }
    }
}

/* N(0,1) by Box-Muller on a xorshift64* stream */
static double randn(uint64_t *s) {
    double u[2];
    for (int i = 0; i < 2; i++) {
        *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
        u[i] = ((double)((*s * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* He normal, a = 0.01 (InitWeights_He): std = sqrt(2/(1+a^2)) / sqrt(fan_in), with
 * PyTorch's fan_in = size(1) * prod(kernel) (for ConvTranspose that is Cout * k). */
static void init_params(nnu_net *net, uint64_t seed, float *params) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    const double gain = sqrt(2.0 / (1.0 + 1e-4));
    for (int i = 0; i < net->ntensors; i++) {
        const nnu_net_tensor_info *t = &net->tensors[i];
        float *p = params + t->offset;
        /* ResEnc's init_last_bn_before_add_to_0: every BasicBlockD's conv2.norm
         * starts at gamma = beta = 0, so each block starts as lrelu(residual) */
        int is_norm_w = strstr(t->name, ".norm.weight") != NULL &&
                        strstr(t->name, ".conv2.norm.weight") == NULL;
        if (t->ndim >= 3) {
            double fan_in = (double)t->numel / (double)t->shape[0];
            double sd = gain / sqrt(fan_in);
            for (int64_t j = 0; j < t->numel; j++) p[j] = (float)(sd * randn(&s));
        } else {
            float v = is_norm_w ? 1.0f : 0.0f;   /* gamma 1; conv/norm biases 0 */
            for (int64_t j = 0; j < t->numel; j++) p[j] = v;
        }
    }
}

nnu_status nnu_net_create(const nnu_backend *be, const nnu_net_config *cfg, uint64_t seed,
                          nnu_net **out) {
    *out = NULL;
    NNU_TRY(check_config(cfg));
    for (int op = 0; op < NNU_OP_COUNT; op++)   /* Adam is checked when it is used */
        if (op != NNU_OP_adam_step) NNU_TRY(nnu_backend_require(be, (nnu_op)op));
    nnu_net *net = calloc(1, sizeof *net);
    NNU_CHECK(net, NNU_STATUS_ERR_OOM, "net: out of memory");
    net->be = be;
    net->cfg = *cfg;
    const nnu_net_config *c = &net->cfg;
    const int n = c->n_stages;
    net->cblk = be->act_block == 16 ? 16 : 1;   /* the backend's preferred layout */
    for (int s = 0; s < n; s++)
        if (c->features[s] % 16) net->cblk = 1;
    char nm[96];
    for (int s = 0; c->arch == NNU_NET_PLAIN && s < n; s++) {
        net->enc_first[s] = net->nblocks;
        net->enc_n[s] = c->n_conv_enc[s];
        for (int j = 0; j < c->n_conv_enc[s]; j++) {
            snprintf(nm, sizeof nm, "encoder.stages.%d.0.convs.%d", s, j);
            int64_t cin = j ? c->features[s] : (s ? c->features[s - 1] : c->in_channels);
            add_block(net, nm, cin, c->features[s], c->kernel[s]);
        }
    }
    if (c->arch == NNU_NET_RESENC) add_resenc(net);
    for (int t = 0; t < n - 1; t++) {
        int r = n - 2 - t;
        net->dec[t].r = r;
        net->dec_first[t] = net->nblocks;
        net->dec_n[t] = c->n_conv_dec[t];
        for (int j = 0; j < c->n_conv_dec[t]; j++) {
            snprintf(nm, sizeof nm, "decoder.stages.%d.convs.%d", t, j);
            add_block(net, nm, j ? c->features[r] : 2 * c->features[r], c->features[r],
                      c->kernel[r]);
        }
    }
    for (int t = 0; t < n - 1; t++) {
        int r = n - 2 - t;
        int64_t cr = c->features[r];
        snprintf(nm, sizeof nm, "decoder.transpconvs.%d.weight", t);
        net->dec[t].tw = net->tensors[add_weight(net, nm, c->features[r + 1], cr,
                                                 c->stride[r + 1])].offset;
        net->dec[t].tb = -1;
        if (c->conv_bias) {
            snprintf(nm, sizeof nm, "decoder.transpconvs.%d.bias", t);
            net->dec[t].tb = net->tensors[add_tensor(net, nm, 1, &cr)].offset;
        }
    }
    for (int t = 0; t < n - 1; t++) {
        int r = n - 2 - t;
        int64_t k = c->num_classes;
        const int one[3] = {1, 1, 1};
        snprintf(nm, sizeof nm, "decoder.seg_layers.%d.weight", t);
        net->dec[t].hw = net->tensors[add_weight(net, nm, k, c->features[r], one)].offset;
        snprintf(nm, sizeof nm, "decoder.seg_layers.%d.bias", t);
        net->dec[t].hb = net->tensors[add_tensor(net, nm, 1, &k)].offset;
    }
    size_t bytes = (size_t)net->nparams * sizeof(float);
    net->params = be->mem->alloc(bytes, be->mem->ctx);
    net->grads = be->mem->alloc(bytes, be->mem->ctx);
    net->mom = be->mem->alloc(bytes, be->mem->ctx);
    if (!net->params || !net->grads || !net->mom) {
        nnu_net_free(net);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "net: %zu bytes of parameters", 3 * bytes);
    }
    /* initialisation runs on the host, then one copy to the device (CPU: in place) */
    nnu_status st = NNU_STATUS_OK;
    if (be->mem->host_accessible) {
        init_params(net, seed, net->params);
    } else {
        float *host = malloc(bytes);
        st = host ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "net: host staging");
        if (st == NNU_STATUS_OK) {
            init_params(net, seed, host);
            st = be->memcpy_(be, net->params, host, bytes);
        }
        free(host);
    }
    if (st == NNU_STATUS_OK) st = nnu_backend_memset(be, net->grads, 0, bytes);
    if (st == NNU_STATUS_OK) st = nnu_backend_memset(be, net->mom, 0, bytes);
    if (st != NNU_STATUS_OK) {
        nnu_net_free(net);
        return st;
    }
    *out = net;
    return NNU_STATUS_OK;
}

void nnu_net_free(nnu_net *net) {
    if (!net) return;
    const nnu_memory_ops *m = net->be->mem;
    if (net->params) m->free(net->params, m->ctx);
    if (net->grads) m->free(net->grads, m->ctx);
    if (net->mom) m->free(net->mom, m->ctx);
    for (int i = 0; i < 3; i++)
        if (net->adam[i]) m->free(net->adam[i], m->ctx);
    if (net->arena) m->free(net->arena, m->ctx);
    free(net->host_target);
    free(net);
}

const nnu_net_config *nnu_net_get_config(const nnu_net *net) { return &net->cfg; }
const nnu_backend *nnu_net_backend(const nnu_net *net) { return net->be; }
int64_t nnu_net_num_params(const nnu_net *net) { return net->nparams; }
float *nnu_net_params(nnu_net *net) { return net->params; }
float *nnu_net_grads(nnu_net *net) { return net->grads; }
float *nnu_net_momentum(nnu_net *net) { return net->mom; }
int nnu_net_num_tensors(const nnu_net *net) { return net->ntensors; }
const nnu_net_tensor_info *nnu_net_tensor(const nnu_net *net, int i) {
    return i >= 0 && i < net->ntensors ? &net->tensors[i] : NULL;
}
int nnu_net_find_tensor(const nnu_net *net, const char *name) {
    for (int i = 0; i < net->ntensors; i++)
        if (!strcmp(net->tensors[i].name, name)) return i;
    return -1;
}
size_t nnu_net_arena_bytes(const nnu_net *net) { return net->arena_bytes; }
int nnu_net_get_sgd_steps(const nnu_net *net) { return net->sgd_steps; }
void nnu_net_set_sgd_steps(nnu_net *net, int steps) { net->sgd_steps = steps; }

void nnu_loss_scaler_default(nnu_loss_scaler *s) {
    *s = (nnu_loss_scaler){.enabled = 1, .scale = 65536.0, .growth = 2.0, .backoff = 0.5,
                           .growth_interval = 2000};
}

nnu_status nnu_net_set_loss_scaler(nnu_net *net, const nnu_loss_scaler *s) {
    if (s->enabled) {
        NNU_CHECK(isfinite(s->scale) && s->scale > 0, NNU_STATUS_ERR_ARG,
                  "loss scaler: scale %g must be finite and positive", s->scale);
        NNU_CHECK(s->growth >= 1 && s->backoff > 0 && s->backoff < 1 && s->growth_interval >= 1,
                  NNU_STATUS_ERR_ARG, "loss scaler: growth %g (>= 1), backoff %g (in (0, 1)), "
                  "interval %d (>= 1)", s->growth, s->backoff, s->growth_interval);
    }
    net->scaler = *s;
    return NNU_STATUS_OK;
}

const nnu_loss_scaler *nnu_net_loss_scaler(const nnu_net *net) { return &net->scaler; }
int nnu_net_last_step_skipped(const nnu_net *net) { return net->last_skipped; }

/* a non-finite gradient or loss: no update, the scale backs off (GradScaler.update) */
static void scaler_skip(nnu_net *net) {
    net->scaler.scale *= net->scaler.backoff;
    net->scaler.growth_tracker = 0;
    net->scaler.skipped++;
    net->last_skipped = 1;
}

/* a finite step: growth after growth_interval of them in a row */
static void scaler_grow(nnu_net *net) {
    if (++net->scaler.growth_tracker < net->scaler.growth_interval) return;
    double grown = net->scaler.scale * net->scaler.growth;
    if (isfinite(grown)) net->scaler.scale = grown;
    net->scaler.growth_tracker = 0;
}

/* ---- planning ---- */

static int64_t spn(const int64_t s[3]) { return s[0] * s[1] * s[2]; }

/* arena carving: pass 1 (base NULL) measures, pass 2 assigns; every piece starts
 * on a 64-byte boundary */
typedef struct carver { char *base; size_t off; } carver;
static void *carve_bytes(carver *cv, size_t nbytes) {
    size_t b = (nbytes + 63) & ~(size_t)63;
    void *p = cv->base ? cv->base + cv->off : NULL;
    cv->off += b;
    return p;
}
/* fp32 pieces: stats, logits and their gradients, targets, loss workspace */
static void *carve(carver *cv, int64_t nfloats) {
    return carve_bytes(cv, (size_t)nfloats * sizeof(float));
}
/* activation storage (nnu_backend.h): n elements of the backend's activation size,
 * 4 bytes or 2 (the 16-bit tables). The pointers stay `float *` and are only passed
 * to ops, never indexed here. */
static void *carve_act(const nnu_net *net, carver *cv, int64_t n) {
    return carve_bytes(cv, (size_t)n * nnu_backend_act_size(net->be));
}

/* The residual encoder's layers (stem + rblocks), carved like the plain encoder in
 * plan_layers. Training keeps, per block: c1 pre/act/stats, c2 pre/stats and y
 * (c2.act: the block output, whose sign is lrelu_bwd's mask), the pooled input when
 * a projection reads it, the skip norm's pre/stats; the skip norm's output is needed
 * only until the add (rtmp, shared). Inference: c1 pre, c2 pre and the skip conv go
 * to scratch, a1 to the ping-pong buffer that is not the block input, y to the same
 * buffer (a1 is consumed by conv2 before norm2 writes y) or, for the last block of a
 * stage, to its own skip buffer; the pooled input and the skip norm share rbuf (the
 * projection's conv has read pooled before its norm writes). *prev gets the
 * bottleneck output. */
static nnu_status plan_resenc(nnu_net *net, carver *cv, int train, float *scratch, float *pp[2],
                              float *rbuf, float *stats, const float **prev_out) {
    const nnu_net_config *c = &net->cfg;
    const int L = net->cblk;
    const int64_t N = net->batch;
    const int one[3] = {1, 1, 1};
    block *st = &net->blocks[0];
    const int64_t F0 = c->features[0], S0 = spn(net->patch);
    NNU_TRY(nnu_conv_params_init(&st->cp, N, c->in_channels, F0, net->patch, c->kernel[0], one, 0,
                                 1, L));
    st->cp.has_bias = c->conv_bias;
    st->np = (nnu_norm_params){N, F0, S0, L, c->norm_eps, c->slope};
    st->in = NULL;   /* the user input, set at forward time */
    st->pre = train ? carve_act(net, cv, N * F0 * S0) : scratch;
    st->act = train ? carve_act(net, cv, N * F0 * S0) : pp[0];
    st->stats = train ? carve(cv, N * F0 * 2) : stats;
    const float *prev = st->act;
    int64_t cin = F0;
    for (int s = 0; s < c->n_stages; s++) {
        const int64_t F = c->features[s], S = spn(net->sp[s]);
        for (int b = 0; b < net->res_n[s]; b++) {
            rblock *rb = &net->rblocks[net->res_first[s] + b];
            const int64_t *in = b ? net->sp[s] : (s ? net->sp[s - 1] : net->patch);
            const int *stride = b ? one : c->stride[s];
            NNU_TRY(nnu_conv_params_init(&rb->c1.cp, N, cin, F, in, c->kernel[s], stride, 0, L, L));
            rb->c1.cp.has_bias = c->conv_bias;
            rb->c1.np = (nnu_norm_params){N, F, S, L, c->norm_eps, c->slope};
            NNU_TRY(nnu_conv_params_init(&rb->c2.cp, N, F, F, net->sp[s], c->kernel[s], one, 0, L,
                                         L));
            rb->c2.cp.has_bias = c->conv_bias;
            rb->c2.np = (nnu_norm_params){N, F, S, L, c->norm_eps, 1.0f};
            if (rb->pool) NNU_TRY(nnu_pool_params_init(&rb->pp, N, cin, in, stride, L));
            if (rb->proj) {
                NNU_TRY(nnu_conv_params_init(&rb->cs.cp, N, cin, F, net->sp[s], one, one, 0, L, L));
                rb->cs.cp.has_bias = 0;
                rb->cs.np = (nnu_norm_params){N, F, S, L, c->norm_eps, 1.0f};
            }
            rb->ap = (nnu_eltwise_params){N * F * S, c->slope};
            rb->nin = N * cin * spn(in);
            const int64_t sz = N * F * S;
            rb->c1.in = prev;
            if (train) {
                rb->c1.pre = carve_act(net, cv, sz);
                rb->c1.act = carve_act(net, cv, sz);
                rb->c1.stats = carve(cv, N * F * 2);
                rb->c2.pre = carve_act(net, cv, sz);
                rb->c2.act = carve_act(net, cv, sz);
                rb->c2.stats = carve(cv, N * F * 2);
                rb->pooled = rb->pool ? carve_act(net, cv, N * cin * S) : NULL;
                if (rb->proj) {
                    rb->cs.pre = carve_act(net, cv, sz);
                    rb->cs.act = net->rtmp;
                    rb->cs.stats = carve(cv, N * F * 2);
                }
            } else {
                float *a1 = pp[0] == prev ? pp[1] : pp[0];
                const int last = b == net->res_n[s] - 1;   /* its output is a kept skip */
                rb->c1.pre = scratch;
                rb->c1.act = a1;
                rb->c1.stats = stats;
                rb->c2.pre = scratch;
                rb->c2.act = last ? carve_act(net, cv, sz) : a1;
                rb->c2.stats = stats;
                rb->pooled = rb->pool ? rbuf : NULL;
                if (rb->proj) {
                    rb->cs.pre = scratch;
                    rb->cs.act = rbuf;
                    rb->cs.stats = stats;
                }
            }
            rb->c2.in = rb->c1.act;
            rb->cs.in = rb->pool ? rb->pooled : prev;
            rb->res = rb->proj ? rb->cs.act : rb->pool ? rb->pooled : prev;
            prev = rb->c2.act;
            cin = F;
        }
    }
    *prev_out = prev;
    return NNU_STATUS_OK;
}

/* Training plan: every block keeps pre, act and stats for the backward, plus the
 * gradient buffers. Inference plan (train = 0): only the skips E_r are kept; conv
 * outputs go to one scratch buffer, activations alternate between two buffers, the
 * concatenations share one, stats are shared, and there is nothing for the backward,
 * so peak memory is a few activations instead of all of them. */
static nnu_status plan_layers(nnu_net *net, carver *cv, int train) {
    const nnu_net_config *c = &net->cfg;
    const int n = c->n_stages, L = net->cblk;
    const int64_t N = net->batch;
    /* maxact: the largest activation of any kind (a concatenation [up, skip] has 2 F_s
     * channels); maxfs: the largest block output (F_s channels), which is all that the
     * conv outputs, the activations, the transposed-conv output and its gradient hold */
    int64_t maxact = 0, maxfs = 0, maxf = 0;
    for (int s = 0; s < n; s++) {
        int64_t S = spn(net->sp[s]);
        int64_t cat = s < n - 1 ? 2 * (int64_t)c->features[s] : c->features[s];
        if (N * cat * S > maxact) maxact = N * cat * S;
        if (N * c->features[s] * S > maxfs) maxfs = N * c->features[s] * S;
        if (c->features[s] > maxf) maxf = c->features[s];
    }
    /* inference: shared buffers (pre scratch, two activations, concat, stats) */
    float *scratch = NULL, *pp[2] = {NULL, NULL}, *catbuf = NULL, *stats = NULL;
    if (!train) {
        scratch = carve_act(net, cv, maxfs);
        pp[0] = carve_act(net, cv, maxfs);
        pp[1] = carve_act(net, cv, maxfs);
        catbuf = carve_act(net, cv, maxact);
        stats = carve(cv, N * maxf * 2);
    }
    int flip = 0;
    const float *prev = NULL;   /* the user input, set at forward time */
    if (c->arch == NNU_NET_RESENC) {
        /* inference: rbuf for the pooled input / skip norm; training: rtmp for the
         * skip norm's output (both hold at most one F_s-channel activation) */
        float *rbuf = train ? NULL : carve_act(net, cv, maxfs);
        net->rtmp = train ? carve_act(net, cv, maxfs) : NULL;
        NNU_TRY(plan_resenc(net, cv, train, scratch, pp, rbuf, stats, &prev));
    }
    for (int s = 0; c->arch == NNU_NET_PLAIN && s < n; s++) {
        for (int j = 0; j < net->enc_n[s]; j++) {
            block *bl = &net->blocks[net->enc_first[s] + j];
            int64_t cin = j ? c->features[s] : (s ? c->features[s - 1] : c->in_channels);
            const int64_t *in = j ? net->sp[s] : (s ? net->sp[s - 1] : net->patch);
            const int one[3] = {1, 1, 1};
            NNU_TRY(nnu_conv_params_init(&bl->cp, N, cin, c->features[s], in, c->kernel[s],
                                         j ? one : c->stride[s], 0, (s || j) ? L : 1, L));
            bl->cp.has_bias = c->conv_bias;
            bl->np = (nnu_norm_params){N, c->features[s], spn(net->sp[s]), L, c->norm_eps,
                                       c->slope};
            int64_t sz = N * c->features[s] * spn(net->sp[s]);
            bl->in = prev;
            if (train) {
                bl->pre = carve_act(net, cv, sz);
                bl->act = carve_act(net, cv, sz);
                bl->stats = carve(cv, N * c->features[s] * 2);
            } else {
                int skip = j == net->enc_n[s] - 1;      /* the stage output is kept */
                bl->pre = scratch;
                bl->act = skip ? carve_act(net, cv, sz) : pp[flip ^= 1];
                bl->stats = stats;
            }
            prev = bl->act;
        }
    }
    for (int t = 0; t < n - 1; t++) {
        dstage *d = &net->dec[t];
        const int r = d->r;
        const int64_t F = c->features[r], S = spn(net->sp[r]);
        NNU_TRY(nnu_conv_params_init(&d->tp, N, c->features[r + 1], F, net->sp[r + 1],
                                     c->stride[r + 1], c->stride[r + 1], 1, L, L));
        d->tp.has_bias = c->conv_bias;
        d->catp = (nnu_concat_params){N, F, F, S, L};
        d->below = prev;
        d->cat = train ? carve_act(net, cv, N * 2 * F * S) : catbuf;
        for (int j = 0; j < net->dec_n[t]; j++) {
            block *bl = &net->blocks[net->dec_first[t] + j];
            const int one[3] = {1, 1, 1};
            NNU_TRY(nnu_conv_params_init(&bl->cp, N, j ? F : 2 * F, F, net->sp[r], c->kernel[r],
                                         one, 0, L, L));
            bl->cp.has_bias = c->conv_bias;
            bl->np = (nnu_norm_params){N, F, S, L, c->norm_eps, c->slope};
            bl->in = j ? prev : d->cat;
            bl->pre = train ? carve_act(net, cv, N * F * S) : scratch;
            bl->act = train ? carve_act(net, cv, N * F * S) : pp[flip ^= 1];
            bl->stats = train ? carve(cv, N * F * 2) : stats;
            prev = bl->act;
        }
        const int one[3] = {1, 1, 1};
        NNU_TRY(nnu_conv_params_init(&d->hp, N, F, c->num_classes, net->sp[r], one, one, 0, L, 1));
        d->hp.f32_out = 1;      /* the head writes fp32 logits in every activation storage */
        d->lp = (nnu_loss_params){N, c->num_classes, S, c->batch_dice, 0, c->ignore_label,
                                  c->loss_smooth_set ? c->loss_smooth : 1e-5f, 1.0f,
                                  c->loss_terms};
        if (!train) {   /* only the full-resolution head runs */
            d->logits = t == n - 2 ? carve(cv, N * c->num_classes * S) : NULL;
            d->glogits = NULL;
            d->target = NULL;
            d->loss_ws = NULL;
            continue;
        }
        d->logits = carve(cv, N * c->num_classes * S);
        d->glogits = carve(cv, N * c->num_classes * S);
        d->target = carve(cv, N * S);          /* int32 is float-sized */
        size_t ws = nnu_loss_ws_size(&d->lp);
        d->loss_ws = carve(cv, (int64_t)((ws + 3) / 4));
    }
    net->up = carve_act(net, cv, maxfs);
    /* the input is copied in: the backward of the first layer reads it, and the
     * caller's buffer need not outlive the forward (nor be device memory) */
    net->input = carve_act(net, cv, N * c->in_channels * spn(net->patch));
    /* activation gradients share the activations' storage type */
    net->ga = train ? carve_act(net, cv, maxact) : NULL;
    net->gb = train ? carve_act(net, cv, maxact) : NULL;
    net->gt = train ? carve_act(net, cv, maxfs) : NULL;    /* gradient of up or of a head input */
    for (int s = 0; s < n - 1; s++)
        net->gskip[s] = train ? carve_act(net, cv, N * c->features[s] * spn(net->sp[s])) : NULL;
    return NNU_STATUS_OK;
}

nnu_status nnu_net_plan(nnu_net *net, int64_t batch, const int64_t patch[3], int train) {
    train = train ? 1 : 0;
    if (net->arena && batch == net->batch && !memcmp(patch, net->patch, sizeof net->patch) &&
        train == net->plan_train)
        return NNU_STATUS_OK;
    /* a smaller batch of the same patch and mode fits in the arena as it is (the
     * last, partial batch of a sliding window): re-carve without allocating */
    if (net->arena && batch > 0 && batch <= net->arena_batch &&
        !memcmp(patch, net->patch, sizeof net->patch) && train == net->plan_train) {
        net->batch = batch;
        net->last_train = -1;
        carver cv = {net->arena, 0};
        return plan_layers(net, &cv, train);
    }
    const nnu_net_config *c = &net->cfg;
    NNU_CHECK(batch > 0, NNU_STATUS_ERR_ARG, "net: batch %lld", (long long)batch);
    NNU_CHECK(c->dim == 3 || patch[0] == 1, NNU_STATUS_ERR_SHAPE,
              "net: 2-D network needs D = 1 (got %lld)", (long long)patch[0]);
    int64_t cur[3] = {patch[0], patch[1], patch[2]};
    for (int s = 0; s < c->n_stages; s++) {
        for (int a = 0; a < 3; a++) {
            NNU_CHECK(cur[a] % c->stride[s][a] == 0, NNU_STATUS_ERR_SHAPE,
                      "net: patch [%lld,%lld,%lld] axis %d is not divisible by the total stride "
                      "(stage %d)", (long long)patch[0], (long long)patch[1],
                      (long long)patch[2], a, s);
            cur[a] /= c->stride[s][a];
            NNU_CHECK(cur[a] >= 1, NNU_STATUS_ERR_SHAPE, "net: patch too small");
            net->sp[s][a] = cur[a];
        }
    }
    if (net->arena) net->be->mem->free(net->arena, net->be->mem->ctx);
    net->arena = NULL;
    net->arena_bytes = 0;
    net->last_train = -1;      /* no outputs until the next forward */
    net->batch = batch;
    net->arena_batch = batch;
    net->plan_train = train;
    memcpy(net->patch, patch, sizeof net->patch);
    carver cv = {NULL, 0};
    NNU_TRY(plan_layers(net, &cv, train));
    net->arena = net->be->mem->alloc(cv.off, net->be->mem->ctx);
    NNU_CHECK(net->arena, NNU_STATUS_ERR_OOM, "net: arena of %zu MB", cv.off >> 20);
    net->arena_bytes = cv.off;
    cv = (carver){net->arena, 0};
    NNU_TRY(plan_layers(net, &cv, train));
    free(net->host_target);
    net->host_target = NULL;
    if (!net->be->mem->host_accessible && train) {
        net->host_target = malloc((size_t)(batch * spn(patch)) * sizeof(int32_t));
        NNU_CHECK(net->host_target, NNU_STATUS_ERR_OOM, "net: label staging");
    }
    return NNU_STATUS_OK;
}

/* ---- forward ---- */

static float *P(nnu_net *net, int64_t off) { return off >= 0 ? net->params + off : NULL; }
static float *G(nnu_net *net, int64_t off) { return off >= 0 ? net->grads + off : NULL; }

static nnu_status block_fwd(nnu_net *net, block *bl) {
    const nnu_backend *be = net->be;
    NNU_TRY(be->conv_fwd(be, bl->in, bl->pre, P(net, bl->w), P(net, bl->b), &bl->cp));
    return be->instnorm_fwd(be, bl->pre, bl->act, P(net, bl->g), P(net, bl->bt), bl->stats,
                            &bl->np);
}

/* BasicBlockD.forward: residual = skip(x); out = conv2(conv1(x)); lrelu(out + residual) */
static nnu_status rblock_fwd(nnu_net *net, rblock *rb) {
    const nnu_backend *be = net->be;
    NNU_TRY(block_fwd(net, &rb->c1));
    NNU_TRY(block_fwd(net, &rb->c2));
    if (rb->pool) NNU_TRY(be->avgpool_fwd(be, rb->c1.in, rb->pooled, &rb->pp));
    if (rb->proj) NNU_TRY(block_fwd(net, &rb->cs));
    return be->add_lrelu_fwd(be, rb->c2.act, rb->res, rb->c2.act, &rb->ap);
}

/* the block whose act is the output of encoder stage s (the skip of resolution s) */
static block *enc_out(nnu_net *net, int s) {
    if (net->cfg.arch == NNU_NET_RESENC)
        return &net->rblocks[net->res_first[s] + net->res_n[s] - 1].c2;
    return &net->blocks[net->enc_first[s] + net->enc_n[s] - 1];
}

nnu_status nnu_net_forward(nnu_net *net, const float *input, int64_t n, const int64_t patch[3],
                           int train) {
    /* a training plan serves inference too (no re-plan when a training loop
     * validates); an inference plan is re-planned for training */
    NNU_TRY(nnu_net_plan(net, n, patch, train || (net->arena && net->plan_train &&
                                                  n == net->batch &&
                                                  !memcmp(patch, net->patch, sizeof net->patch))));
    NNU_CHECK(!nnu_interrupt_requested(), NNU_STATUS_ERR_INTERRUPTED, "net: interrupted");
    const nnu_backend *be = net->be;
    const int ns = net->cfg.n_stages;
    const int64_t nin = n * net->cfg.in_channels * spn(patch);
    if (be->upload_act) {          /* fp32 host values -> the backend's activation storage */
        NNU_TRY(be->upload_act(be, net->input, input, nin));
    } else {
        NNU_CHECK(nnu_backend_act_size(be) == sizeof(float), NNU_STATUS_ERR_UNSUPPORTED,
                  "net: backend '%s' stores 16-bit activations but has no upload_act", be->name);
        NNU_TRY(be->memcpy_(be, net->input, input, (size_t)nin * sizeof(float)));
    }
    net->blocks[0].in = net->input;   /* the first conv (ResEnc: the stem) */
    if (net->cfg.arch == NNU_NET_RESENC) {
        NNU_TRY(block_fwd(net, &net->blocks[0]));
        for (int b = 0; b < net->res_first[ns - 1] + net->res_n[ns - 1]; b++)
            NNU_TRY(rblock_fwd(net, &net->rblocks[b]));
    } else {
        for (int b = 0; b < net->enc_first[ns - 1] + net->enc_n[ns - 1]; b++)
            NNU_TRY(block_fwd(net, &net->blocks[b]));
    }
    for (int t = 0; t < ns - 1; t++) {
        dstage *d = &net->dec[t];
        const float *skip = enc_out(net, d->r)->act;
        NNU_TRY(be->convt_fwd(be, d->below, net->up, P(net, d->tw), P(net, d->tb), &d->tp));
        NNU_TRY(be->concat_fwd(be, net->up, skip, d->cat, &d->catp));
        for (int j = 0; j < net->dec_n[t]; j++)
            NNU_TRY(block_fwd(net, &net->blocks[net->dec_first[t] + j]));
        int want = (train && net->cfg.deep_supervision) || t == ns - 2;
        if (want) {
            const float *x = net->blocks[net->dec_first[t] + net->dec_n[t] - 1].act;
            NNU_TRY(be->conv_fwd(be, x, d->logits, P(net, d->hw), P(net, d->hb), &d->hp));
        }
    }
    net->last_train = train;
    return NNU_STATUS_OK;
}

int nnu_net_num_outputs(const nnu_net *net) {
    if (net->last_train < 0) return 0;
    return net->last_train && net->cfg.deep_supervision ? net->cfg.n_stages - 1 : 1;
}

/* output i is decoder stage n-2-i (highest resolution first) */
const float *nnu_net_output(const nnu_net *net, int i, int64_t shape[5]) {
    if (i < 0 || i >= nnu_net_num_outputs(net) || !net->arena) return NULL;
    const dstage *d = &net->dec[net->cfg.n_stages - 2 - i];
    if (shape) {
        shape[0] = net->batch;
        shape[1] = net->cfg.num_classes;
        for (int a = 0; a < 3; a++) shape[2 + a] = net->sp[d->r][a];
    }
    return d->logits;
}

float *nnu_net_output_grad(nnu_net *net, int i) {
    if (i < 0 || i >= nnu_net_num_outputs(net) || !net->arena) return NULL;
    return net->dec[net->cfg.n_stages - 2 - i].glogits;
}

nnu_status nnu_net_read(const nnu_net *net, const float *dev, float *host, int64_t n) {
    return net->be->memcpy_(net->be, host, dev, (size_t)n * sizeof(float));
}

nnu_status nnu_net_write(nnu_net *net, float *dev, const float *host, int64_t n) {
    return net->be->memcpy_(net->be, dev, host, (size_t)n * sizeof(float));
}

/* ---- loss ---- */

double nnu_net_ds_weight(const nnu_net *net, int i) {
    int k = nnu_net_num_outputs(net);
    if (k == 1) return i == 0 ? 1.0 : 0.0;
    double sum = 0;
    for (int j = 0; j < k - 1; j++) sum += ldexp(1.0, -j);   /* the lowest has weight 0 */
    return i < k - 1 ? ldexp(1.0, -i) / sum : 0.0;
}

/* target (N, 1, D, H, W) -> int32 labels of resolution r by nearest-exact
 * (source index floor((o + 0.5) * in / out), nnunet-behaviour.md §8) */
static nnu_status ds_target(nnu_net *net, const nnu_tensor *t, int r, int32_t *out) {
    const int64_t N = net->batch, *P0 = net->patch, *Pr = net->sp[r];
    const char *base = nnu_tensor_data(t);
    const size_t es = nnu_dtype_size(t->dtype);
    int bad = 0;
#pragma omp parallel for collapse(2) schedule(static) reduction(| : bad)
    for (int64_t n = 0; n < N; n++)
        for (int64_t z = 0; z < Pr[0]; z++) {
            int64_t iz = (int64_t)floor((z + 0.5) * (double)P0[0] / (double)Pr[0]);
            for (int64_t y = 0; y < Pr[1]; y++) {
                int64_t iy = (int64_t)floor((y + 0.5) * (double)P0[1] / (double)Pr[1]);
                for (int64_t x = 0; x < Pr[2]; x++) {
                    int64_t ix = (int64_t)floor((x + 0.5) * (double)P0[2] / (double)Pr[2]);
                    int64_t off = n * t->stride[0] + iz * t->stride[2] + iy * t->stride[3] +
                                  ix * t->stride[4];
                    double v = nnu_dtype_load(t->dtype, base + off * (int64_t)es);
                    int32_t lab = (int32_t)v;
                    bad |= (double)lab != v;
                    out[((n * Pr[0] + z) * Pr[1] + y) * Pr[2] + x] = lab;
                }
            }
        }
    NNU_CHECK(!bad, NNU_STATUS_ERR_ARG, "net loss: target holds non-integer labels");
    return NNU_STATUS_OK;
}

nnu_status nnu_net_loss(nnu_net *net, const nnu_tensor *target, double *loss) {
    NNU_CHECK(net->arena && net->last_train == 1, NNU_STATUS_ERR_ARG,
              "net loss: needs a training forward first");
    NNU_CHECK(target->ndim == 5 && target->shape[0] == net->batch && target->shape[1] == 1 &&
              target->shape[2] == net->patch[0] && target->shape[3] == net->patch[1] &&
              target->shape[4] == net->patch[2], NNU_STATUS_ERR_SHAPE,
              "net loss: target [%lld,%lld,%lld,%lld,%lld] vs input batch %lld patch "
              "[%lld,%lld,%lld] (want N,1,D,H,W)", (long long)target->shape[0],
              (long long)target->shape[1], (long long)target->shape[2],
              (long long)target->shape[3], (long long)target->shape[4], (long long)net->batch,
              (long long)net->patch[0], (long long)net->patch[1], (long long)net->patch[2]);
    NNU_CHECK(target->storage->mem == NULL || target->storage->mem->host_accessible,
              NNU_STATUS_ERR_ARG, "net loss: target must be in host memory");
    const nnu_backend *be = net->be;
    double total = 0;
    for (int i = 0; i < nnu_net_num_outputs(net); i++) {
        dstage *d = &net->dec[net->cfg.n_stages - 2 - i];
        double w = nnu_net_ds_weight(net, i), l;
        int64_t sz = d->lp.n * d->lp.k * d->lp.s;
        if (w == 0.0) {              /* skipped term: zero gradient, nothing to compute */
            NNU_TRY(nnu_backend_memset(be, d->glogits, 0, (size_t)sz * sizeof(float)));
            continue;
        }
        if (net->host_target) {   /* device backend: labels staged on the host */
            NNU_TRY(ds_target(net, target, d->r, net->host_target));
            NNU_TRY(be->memcpy_(be, d->target, net->host_target,
                                (size_t)(d->lp.n * d->lp.s) * sizeof(int32_t)));
        } else {
            NNU_TRY(ds_target(net, target, d->r, d->target));
        }
        /* the loss scale enters here only: every gradient downstream is scaled */
        d->lp.weight = (float)(net->scaler.enabled ? w * net->scaler.scale : w);
        if (net->cfg.n_regions) {   /* sigmoid heads: Dice + BCE over every region */
            nnu_loss_region_params rp = {d->lp, net->cfg.n_labels, {0}};
            rp.base.do_bg = 1;
            memcpy(rp.label_regions, net->cfg.label_regions, sizeof rp.label_regions);
            NNU_TRY(be->loss_dice_bce_fwd(be, d->logits, d->target, d->loss_ws, &l, &rp));
            NNU_TRY(be->loss_dice_bce_bwd(be, d->logits, d->target, d->loss_ws, d->glogits, &rp));
        } else {
            NNU_TRY(be->loss_dice_ce_fwd(be, d->logits, d->target, d->loss_ws, &l, &d->lp));
            NNU_TRY(be->loss_dice_ce_bwd(be, d->logits, d->target, d->loss_ws, d->glogits,
                                         &d->lp));
        }
        total += w * l;
    }
    *loss = total;
    return NNU_STATUS_OK;
}

/* ---- backward ---- */

/* gy: gradient of bl->act (overwritten). Writes the gradient of bl->in into gx
 * unless gx is NULL (first layer: the input needs no gradient). */
static nnu_status block_bwd(nnu_net *net, block *bl, float *gy, float *gx) {
    const nnu_backend *be = net->be;
    NNU_TRY(be->instnorm_bwd(be, bl->pre, gy, gy, P(net, bl->g), P(net, bl->bt), G(net, bl->g),
                             G(net, bl->bt), bl->stats, &bl->np));
    NNU_TRY(be->conv_bwd_params(be, bl->in, gy, G(net, bl->w), G(net, bl->b), &bl->cp));
    if (gx) NNU_TRY(be->conv_bwd_data(be, gy, gx, P(net, bl->w), &bl->cp));
    return NNU_STATUS_OK;
}

/* BasicBlockD backward. g: gradient of the block output y (overwritten), h: a free
 * buffer of the same capacity (ga/gb), net->gt: scratch. *gin gets the buffer holding
 * the gradient of the block input x, g or h, so the caller's ping-pong continues.
 *   gsum = lrelu'(y) * g                                       (in place, g)
 *   main: t = norm2'(gsum); a1 grad -> h; c1 backward h -> t   (t = main path's dx)
 *   skip: identity: dx = t + gsum; projection: norm_s' in place on g, conv_s' -> h;
 *         avgpool': the pooled gradient spread back into the other of g/h; += t */
static nnu_status rblock_bwd(nnu_net *net, rblock *rb, float *g, float *h, float **gin) {
    const nnu_backend *be = net->be;
    float *t = net->gt;
    block *c2 = &rb->c2;
    NNU_TRY(be->lrelu_bwd(be, c2->act, g, g, &rb->ap));
    /* main path, leaving gsum in g for the skip */
    NNU_TRY(be->instnorm_bwd(be, c2->pre, g, t, P(net, c2->g), P(net, c2->bt), G(net, c2->g),
                             G(net, c2->bt), c2->stats, &c2->np));
    NNU_TRY(be->conv_bwd_params(be, c2->in, t, G(net, c2->w), G(net, c2->b), &c2->cp));
    NNU_TRY(be->conv_bwd_data(be, t, h, P(net, c2->w), &c2->cp));
    NNU_TRY(block_bwd(net, &rb->c1, h, t));
    float *r = g;                           /* where the skip's dx ends up */
    if (rb->proj) {
        NNU_TRY(block_bwd(net, &rb->cs, g, h));
        r = h;
    }
    if (rb->pool) {
        float *o = r == g ? h : g;
        NNU_TRY(be->avgpool_bwd(be, r, o, &rb->pp));
        r = o;
    }
    nnu_eltwise_params ap = {rb->nin, 1.0f};
    NNU_TRY(be->axpy(be, t, r, &ap));       /* dx = skip + main */
    *gin = r;
    return NNU_STATUS_OK;
}

nnu_status nnu_net_backward(nnu_net *net) {
    NNU_CHECK(net->arena && net->last_train == 1, NNU_STATUS_ERR_ARG,
              "net backward: needs a training forward first");
    NNU_CHECK(!nnu_interrupt_requested(), NNU_STATUS_ERR_INTERRUPTED, "net: interrupted");
    const nnu_backend *be = net->be;
    const int ns = net->cfg.n_stages, nout = nnu_net_num_outputs(net);
    float *g = net->ga, *h = net->gb;       /* g: gradient of the current activation */
    int have = 0;                           /* g holds a value */
    for (int t = ns - 2; t >= 0; t--) {
        dstage *d = &net->dec[t];
        int i = ns - 2 - t;                 /* output index of this head */
        const block *last = &net->blocks[net->dec_first[t] + net->dec_n[t] - 1];
        int64_t act = last->np.n * last->np.c * last->np.s;
        if (i < nout && nnu_net_ds_weight(net, i) != 0.0) {
            const float *x = last->act;
            NNU_TRY(be->conv_bwd_params(be, x, d->glogits, G(net, d->hw), G(net, d->hb), &d->hp));
            if (have) {
                NNU_TRY(be->conv_bwd_data(be, d->glogits, net->gt, P(net, d->hw), &d->hp));
                nnu_eltwise_params ap = {act, 1.0f};
                NNU_TRY(be->axpy(be, net->gt, g, &ap));
            } else {
                NNU_TRY(be->conv_bwd_data(be, d->glogits, g, P(net, d->hw), &d->hp));
                have = 1;
            }
        }
        if (!have) {   /* no gradient reaches this stage (e.g. only the lowest head) */
            NNU_TRY(nnu_backend_memset(be, g, 0, (size_t)act * nnu_backend_act_size(be)));
            have = 1;
        }
        for (int j = net->dec_n[t] - 1; j >= 0; j--) {
            block *bl = &net->blocks[net->dec_first[t] + j];
            NNU_TRY(block_bwd(net, bl, g, h));
            float *tmp = g; g = h; h = tmp;
        }
        /* g: gradient of cat = [up, skip] */
        NNU_TRY(be->concat_bwd(be, g, net->gt, net->gskip[d->r], &d->catp));
        NNU_TRY(be->convt_bwd_params(be, d->below, net->gt, G(net, d->tw), G(net, d->tb), &d->tp));
        NNU_TRY(be->convt_bwd_data(be, net->gt, g, P(net, d->tw), &d->tp));
    }
    /* g: gradient of the bottleneck output; encoder from the bottom up */
    for (int s = ns - 1; s >= 0; s--) {
        if (s < ns - 1) {
            block *lb = enc_out(net, s);
            nnu_eltwise_params ap = {lb->np.n * lb->np.c * lb->np.s, 1.0f};
            NNU_TRY(be->axpy(be, net->gskip[s], g, &ap));
        }
        if (net->cfg.arch == NNU_NET_RESENC) {
            for (int b = net->res_n[s] - 1; b >= 0; b--) {
                float *r;
                NNU_TRY(rblock_bwd(net, &net->rblocks[net->res_first[s] + b], g, h, &r));
                if (r != g) { h = g; g = r; }
            }
            if (s == 0) NNU_TRY(block_bwd(net, &net->blocks[0], g, NULL));   /* the stem */
            continue;
        }
        for (int j = net->enc_n[s] - 1; j >= 0; j--) {
            block *bl = &net->blocks[net->enc_first[s] + j];
            int first = s == 0 && j == 0;
            NNU_TRY(block_bwd(net, bl, g, first ? NULL : h));
            float *tmp = g; g = h; h = tmp;
        }
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_net_zero_grad(nnu_net *net) {
    /* one memset on the flat block (R22) */
    return nnu_backend_memset(net->be, net->grads, 0, (size_t)net->nparams * sizeof(float));
}

float *nnu_net_adam_state(nnu_net *net, int which) {
    return which >= 0 && which < 3 ? net->adam[which] : NULL;
}

nnu_status nnu_net_adam_alloc(nnu_net *net) {
    const nnu_memory_ops *m = net->be->mem;
    size_t bytes = (size_t)net->nparams * sizeof(float);
    for (int i = 0; i < 3; i++) {
        if (net->adam[i]) continue;
        net->adam[i] = m->alloc(bytes, m->ctx);
        NNU_CHECK(net->adam[i], NNU_STATUS_ERR_OOM, "net: Adam state (%zu bytes)", bytes);
        NNU_TRY(nnu_backend_memset(net->be, net->adam[i], 0, bytes));
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_net_sgd_step(nnu_net *net, const nnu_sgd_config *c, double *grad_norm) {
    const nnu_backend *be = net->be;
    NNU_CHECK(c->optimizer == NNU_OPTIM_SGD || c->optimizer == NNU_OPTIM_ADAM,
              NNU_STATUS_ERR_ARG, "net: optimizer %d", c->optimizer);
    if (c->optimizer == NNU_OPTIM_ADAM) {
        NNU_TRY(nnu_backend_require(be, NNU_OP_adam_step));
        NNU_TRY(nnu_net_adam_alloc(net));
    }
    nnu_eltwise_params ep = {net->nparams, 1.0f};
    double ss;
    net->last_skipped = 0;
    NNU_TRY(be->sumsq(be, net->grads, &ss, &ep));
    /* the gradients hold scale * g: sumsq is exact in double for a power-of-two scale */
    const double inv = net->scaler.enabled ? 1.0 / net->scaler.scale : 1.0;
    double norm = sqrt(ss) * inv;
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm) && net->scaler.enabled) {   /* GradScaler: skip the step */
        scaler_skip(net);
        return NNU_STATUS_OK;
    }
    NNU_CHECK(isfinite(norm), NNU_STATUS_ERR_ARG, "net: gradient norm is %g", norm);
    /* unscale (1/scale) and torch.nn.utils.clip_grad_norm_ (max_norm / (norm + 1e-6)
     * when < 1) in one pass: both factors are exact powers of two or one rounding,
     * as PyTorch's two multiplications */
    double coef = inv;
    if (c->clip_norm > 0 && c->clip_norm / (norm + 1e-6) < 1.0)
        coef = (double)(float)(c->clip_norm / (norm + 1e-6)) * inv;
    if (coef != 1.0) {
        ep.alpha = (float)coef;
        NNU_TRY(be->scale(be, net->grads, &ep));
    }
    /* Heads whose loss weight is 0 get no gradient in the reference (grad None), and
     * PyTorch's SGD skips such parameters entirely (no weight decay, no momentum):
     * update the contiguous runs of the block between them. */
    int64_t run = 0;
    for (int i = 0; i <= net->ntensors; i++) {
        int frozen = 0;
        if (i < net->ntensors) {
            int t = -1;
            if (sscanf(net->tensors[i].name, "decoder.seg_layers.%d.", &t) == 1) {
                int out = net->cfg.n_stages - 2 - t;       /* output index of head t */
                frozen = out >= nnu_net_num_outputs(net) || nnu_net_ds_weight(net, out) == 0.0;
            }
        }
        int64_t at = i < net->ntensors ? net->tensors[i].offset : net->nparams;
        if ((frozen || i == net->ntensors) && at > run) {
            if (c->optimizer == NNU_OPTIM_ADAM) {
                nnu_adam_params ap = {at - run, c->lr, c->beta1, c->beta2, c->eps,
                                      c->weight_decay, c->amsgrad, net->sgd_steps + 1, c->decoupled};
                NNU_TRY(be->adam_step(be, net->params + run, net->grads + run,
                                      net->adam[0] + run, net->adam[1] + run,
                                      net->adam[2] + run, &ap));
            } else {
                nnu_sgd_params sp = {at - run, c->lr, c->momentum, c->weight_decay,
                                     c->nesterov, net->sgd_steps == 0};
                NNU_TRY(be->sgd_step(be, net->params + run, net->grads + run, net->mom + run,
                                     &sp));
            }
        }
        if (frozen) run = at + net->tensors[i].numel;
    }
    net->sgd_steps++;
    if (net->scaler.enabled) scaler_grow(net);
    return NNU_STATUS_OK;
}

nnu_status nnu_net_train_step(nnu_net *net, const float *input, int64_t n,
                              const int64_t patch[3], const nnu_tensor *target,
                              const nnu_sgd_config *c, double *loss) {
    NNU_TRY(nnu_net_zero_grad(net));
    NNU_TRY(nnu_net_forward(net, input, n, patch, 1));
    NNU_TRY(nnu_net_loss(net, target, loss));
    if (!isfinite(*loss) && net->scaler.enabled) {   /* an fp16 overflow in the forward */
        scaler_skip(net);
        return NNU_STATUS_OK;
    }
    NNU_CHECK(isfinite(*loss), NNU_STATUS_ERR_ARG, "net: loss is %g", *loss);
    NNU_TRY(nnu_net_backward(net));
    return nnu_net_sgd_step(net, c, NULL);
}
