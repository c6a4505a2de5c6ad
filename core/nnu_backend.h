/* nnu_backend: one function table per device (STYLE R18-R22).
 *
 * Every op of the network, loss and optimizer is a slot of struct nnu_backend,
 * generated from nnu_ops.def. The CPU table (nnu_backend_cpu()) is filled by the
 * files of core/ops/, one op family each (oneDNN for convolutions, C + OpenMP for
 * the rest); the CUDA table (kernels/, later) fills the same slots with the same
 * signatures and the suffix _cuda. Dispatch happens in C; an op a backend lacks is
 * NULL in its table, and nnu_backend_require() turns that into ERR_UNSUPPORTED
 * naming the op and the backend (nothing silently falls back to the CPU).
 *
 * Argument order (THNN): backend, inputs, outputs, weights, bias, buffers, params.
 * Pointers are device pointers of the backend's memory (be->mem); on the CPU they
 * are plain host floats.
 *
 * Activation layouts. An activation (N, C, D, H, W) is stored either plain
 * (cblk = 1: NCDHW, W fastest) or channel-blocked (cblk = 16: N, C/16, D, H, W, 16,
 * oneDNN's nCdhw16c, which its AVX-512 kernels use natively). Element (n, c, s)
 * (s = flat spatial index) is at ((n*(C/cblk) + c/cblk)*S + s)*cblk + c%cblk, so
 * cblk = 1 is the plain formula. Blocked layouts need C % 16 == 0.
 *
 * Gradient conventions (R22), for every op:
 *   *_fwd         writes (=) its outputs;
 *   *_bwd_data    writes (=) the input gradient;
 *   *_bwd_params  accumulates (+=) into parameter gradients;
 *   instnorm_bwd  writes gx (=) and accumulates ggamma/gbeta (+=): the fused
 *                 backward shares its reductions, so it is one op.
 * Parameters (weights) are always plain, PyTorch layout, in the flat parameter
 * block of the network (R7): conv w [Cout, Cin, kd, kh, kw], transposed conv
 * w [Cin, Cout, kd, kh, kw] (PyTorch ConvTranspose), bias [Cout].
 *
 * Activation storage (be->act_bytes, be->act_dtype). A table stores activations
 * either as fp32 (act_bytes 0 or 4: the CPU and the fp32-storage CUDA tables) or
 * as 16-bit bf16/fp16 (act_bytes 2: the CUDA "-act16" tables). The op signatures
 * stay `float *`; with act_bytes 2 the arguments that are "activation storage"
 * point to act_bytes-sized elements of type act_dtype instead:
 *   conv/convt   x, y (fwd), gy, gx (bwd_data), x, gy (bwd_params) - except y/gy
 *                of a convolution with p->f32_out (the segmentation heads:
 *                fp32 logits and logit gradients);
 *   instnorm     x, y (fwd), x, gy, gx (bwd);   lrelu  x, y, gy, gx;
 *   add_lrelu    a, b, y;                       avgpool x, y, gy, gx;
 *   concat       a, b, y, gy, ga, gb;           axpy   x, y (used only on
 *                activation gradients: 16-bit storage, fp32 arithmetic).
 * Everything else is fp32 in every table: weights, biases, gamma/beta, their
 * gradients (accumulated in fp32), optimizer state, instance-norm stats, scale and
 * sumsq (used only on parameter gradients), softmax, the loss (logits, targets,
 * workspace, glogits). Ops on 16-bit storage compute in fp32 and round once on
 * store. A host fp32 input reaches 16-bit storage through be->upload_act. */
#ifndef NNU_BACKEND_H
#define NNU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_status.h"
#include "nnu_tensor.h"

typedef struct nnu_backend nnu_backend;

enum { NNU_LAYOUT_PLAIN = 1, NNU_LAYOUT_C16 = 16 };

/* element type of activation storage (nnu_backend.act_dtype) */
enum { NNU_ACT_F32 = 0, NNU_ACT_BF16 = 1, NNU_ACT_F16 = 2 };

/* flat offset of element (n, c, s) of an activation with C channels, S voxels */
static inline int64_t nnu_act_index(int64_t n, int64_t c, int64_t s, int64_t C, int64_t S,
                                    int cblk) {
    return ((n * (C / cblk) + c / cblk) * S + s) * cblk + c % cblk;
}

/* ---- parameter structs (R19: geometry in a typed struct) ---- */

/* Convolution (kernel 1 or 3 per axis, stride 1 or 2, zero "same" padding
 * (k-1)/2, dilation 1) and transposed convolution (kernel = stride, no padding).
 * 2-D: in[0] = 1 with kernel[0] = stride[0] = 1. Use nnu_conv_params_init. */
typedef struct nnu_conv_params {
    int64_t n, c_in, c_out;
    int64_t in[3];          /* input spatial (D, H, W) */
    int64_t out[3];         /* output spatial, computed by nnu_conv_params_init */
    int     kernel[3], stride[3], pad[3];
    int     transposed;     /* 1: transposed convolution (set by init) */
    int     cblk_in, cblk_out;  /* activation layouts of x and y */
    int     has_bias;
    int     f32_out;        /* 1: y and gy are fp32 whatever the table's activation
                             * storage (a segmentation head's logits); 0 by init */
} nnu_conv_params;

/* Fills out[] and pad[]; checks the supported geometry. transposed = 1 requires
 * kernel == stride and gives out = in * stride. */
nnu_status nnu_conv_params_init(nnu_conv_params *p, int64_t n, int64_t c_in, int64_t c_out,
                                const int64_t in[3], const int kernel[3], const int stride[3],
                                int transposed, int cblk_in, int cblk_out);

/* Instance norm (per sample and channel over S voxels, biased variance, affine)
 * fused with leaky ReLU of slope `slope` (slope = 1: plain instance norm). */
typedef struct nnu_norm_params {
    int64_t n, c, s;        /* s = D*H*W */
    int     cblk;
    float   eps;            /* 1e-5 */
    float   slope;          /* 0.01 */
} nnu_norm_params;

typedef struct nnu_eltwise_params {
    int64_t numel;
    float   alpha;          /* lrelu: slope; axpy/scale: the factor */
} nnu_eltwise_params;

typedef struct nnu_concat_params {
    int64_t n, c_a, c_b, s; /* out has c_a + c_b channels: [a, b] */
    int     cblk;           /* same layout for a, b and out */
} nnu_concat_params;

typedef struct nnu_softmax_params {
    int64_t n, c, s;        /* plain layout (N, C, S), softmax over C */
} nnu_softmax_params;

/* Average pooling with kernel = stride (the residual encoder's skip, AvgPool(stride,
 * stride) of BasicBlockD): out = in / stride on every axis (in must be divisible: nnU-Net
 * patches are), y[o] = (sum of the K = prod(stride) inputs of window o) / K, summed in
 * (kd, kh, kw) order as PyTorch. Same layout cblk for x and y. Use nnu_pool_params_init. */
typedef struct nnu_pool_params {
    int64_t n, c;
    int64_t in[3];          /* input spatial (D, H, W) */
    int64_t out[3];         /* in / stride */
    int     stride[3];      /* = kernel, 1 or 2 per axis */
    int     cblk;
} nnu_pool_params;

/* Fills out[]; ERR_SHAPE when an axis is not divisible by its stride, ERR_ARG on a
 * stride outside 1..2 or a layout block that does not divide c. */
nnu_status nnu_pool_params_init(nnu_pool_params *p, int64_t n, int64_t c, const int64_t in[3],
                                const int stride[3], int cblk);

/* Dice + CE loss (reference §7.4, label case): loss = CE + soft Dice, Dice over
 * classes >= 1 (do_bg = 0), smooth 1e-5, denominator clipped at 1e-8; batch_dice
 * sums the statistics over the batch. Voxels whose target equals ignore_label
 * (>= 0; -1 = none) are excluded from both terms. `terms` keeps one of the two
 * (the reference's nnUNetTrainerCELoss / nnUNetTrainerDiceLoss): the value and the
 * gradient are those of the kept term alone, computed exactly as in the sum. */
enum {
    NNU_LOSS_DICE_AND_CE = 0,   /* CE (BCE for regions) + soft Dice: nnUNetTrainer */
    NNU_LOSS_CE_ONLY     = 1,   /* the CE (BCE) term alone */
    NNU_LOSS_DICE_ONLY   = 2    /* the soft-Dice term alone */
};
typedef struct nnu_loss_params {
    int64_t n, k, s;        /* logits plain (N, K, S); target (N, S) int32 labels */
    int     batch_dice;
    int     do_bg;          /* 0 in the reference */
    int     ignore_label;   /* -1: none */
    float   smooth;         /* 1e-5 (nnUNetTrainerDiceCELoss_noSmooth: 0) */
    float   weight;         /* bwd: gradient is scaled by this (deep-supervision weight) */
    int     terms;          /* NNU_LOSS_DICE_AND_CE (0: positional initialisers of the
                               fields above keep the sum) | _CE_ONLY | _DICE_ONLY */
} nnu_loss_params;

/* bytes of the loss workspace (probabilities and per-(sample,class) sums) */
size_t nnu_loss_ws_size(const nnu_loss_params *p);

/* Dice + BCE loss (reference §7.4, region case, DC_and_BCE_loss): logits (N, R, S), one
 * sigmoid channel per region; region r holds the voxels whose label l has bit r of
 * label_regions[l] set (the labels listed for it in dataset.json). base.k = R (<= 32),
 * do_bg is 1 (every region channel counts), ignore_label as above (it must not be in any
 * region). Labels must be in [0, n_labels). The workspace is nnu_loss_ws_size(&base). */
enum { NNU_LOSS_MAX_LABELS = 64 };
typedef struct nnu_loss_region_params {
    nnu_loss_params base;
    int      n_labels;                           /* label values 0 .. n_labels-1 */
    uint32_t label_regions[NNU_LOSS_MAX_LABELS]; /* bit r: label l belongs to region r */
} nnu_loss_region_params;

/* SGD (PyTorch semantics, reference §7.1): d = g + wd*w; buf = m*buf + d
 * (buf = d on the first step); w -= lr * (nesterov ? d + m*buf : buf). */
typedef struct nnu_sgd_params {
    int64_t numel;
    float   lr, momentum, weight_decay;
    int     nesterov;
    int     first_step;     /* 1: buf is initialised to d */
} nnu_sgd_params;

/* Adam (PyTorch semantics; the 2018 / v1-orig trainer, nnunet-behaviour.md §7.9:
 * lr 3e-4, weight decay 3e-5, amsgrad):
 *   d = g + wd*w;  m = b1*m + (1-b1)*d;  v = b2*v + (1-b2)*d^2;  vmax = max(vmax, v)
 *   w -= lr/(1 - b1^t) * m / (sqrt(amsgrad ? vmax : v)/sqrt(1 - b2^t) + eps)
 * t = step, 1-based. vmax may be NULL when amsgrad = 0. */
typedef struct nnu_adam_params {
    int64_t numel;
    float   lr, beta1, beta2, eps, weight_decay;
    int     amsgrad;
    int     step;
    int     decoupled;   /* 1: AdamW (torch.optim.AdamW): w *= 1 - lr*wd first, the moments see
                            g alone; 0: torch.optim.Adam, the decay added to the gradient */
} nnu_adam_params;

/* ---- op signatures ---- */
/* conv: x (N,Cin,in) -> y (N,Cout,out); w plain [Cout,Cin,k]; b [Cout] or NULL */
typedef nnu_status (*nnu_conv_fwd_fn)(const nnu_backend *be, const float *x, float *y,
                                      const float *w, const float *b, const nnu_conv_params *p);
/* gy (N,Cout,out) -> gx (N,Cin,in) */
typedef nnu_status (*nnu_conv_bwd_data_fn)(const nnu_backend *be, const float *gy, float *gx,
                                           const float *w, const nnu_conv_params *p);
/* gw += dL/dw, gb += dL/db (gb may be NULL) */
typedef nnu_status (*nnu_conv_bwd_params_fn)(const nnu_backend *be, const float *x,
                                             const float *gy, float *gw, float *gb,
                                             const nnu_conv_params *p);
typedef nnu_conv_fwd_fn        nnu_convt_fwd_fn;
typedef nnu_conv_bwd_data_fn   nnu_convt_bwd_data_fn;
typedef nnu_conv_bwd_params_fn nnu_convt_bwd_params_fn;

/* x (N,C,S) -> y; stats [N*C*2] = (mean, rstd) per (n, c), written for the bwd */
typedef nnu_status (*nnu_instnorm_fwd_fn)(const nnu_backend *be, const float *x, float *y,
                                          const float *gamma, const float *beta, float *stats,
                                          const nnu_norm_params *p);
/* gy -> gx (gx may equal gy); ggamma/gbeta [C] +=. Recomputes the pre-activation
 * from x and stats, so y need not be kept. */
typedef nnu_status (*nnu_instnorm_bwd_fn)(const nnu_backend *be, const float *x, const float *gy,
                                          float *gx, const float *gamma, const float *beta,
                                          float *ggamma, float *gbeta, const float *stats,
                                          const nnu_norm_params *p);
typedef nnu_status (*nnu_lrelu_fwd_fn)(const nnu_backend *be, const float *x, float *y,
                                       const nnu_eltwise_params *p);
/* mask from x (the forward input); gx may equal gy */
typedef nnu_status (*nnu_lrelu_bwd_fn)(const nnu_backend *be, const float *x, const float *gy,
                                       float *gx, const nnu_eltwise_params *p);
/* y = lrelu(a + b) with slope p->alpha, flat numel (any layout, the same for all
 * three); y may alias a or b. The residual block's "out += residual; nonlin2(out)".
 * Its backward is lrelu_bwd with x = y: for slope > 0, y > 0 exactly when a + b > 0. */
typedef nnu_status (*nnu_add_lrelu_fwd_fn)(const nnu_backend *be, const float *a, const float *b,
                                           float *y, const nnu_eltwise_params *p);
/* avgpool: x (N,C,in) -> y (N,C,out) */
typedef nnu_status (*nnu_avgpool_fwd_fn)(const nnu_backend *be, const float *x, float *y,
                                         const nnu_pool_params *p);
/* gy (N,C,out) -> gx (N,C,in) = gy of the window / K (=) */
typedef nnu_status (*nnu_avgpool_bwd_fn)(const nnu_backend *be, const float *gy, float *gx,
                                         const nnu_pool_params *p);
typedef nnu_status (*nnu_concat_fwd_fn)(const nnu_backend *be, const float *a, const float *b,
                                        float *y, const nnu_concat_params *p);
typedef nnu_status (*nnu_concat_bwd_fn)(const nnu_backend *be, const float *gy, float *ga,
                                        float *gb, const nnu_concat_params *p);
typedef nnu_status (*nnu_softmax_fwd_fn)(const nnu_backend *be, const float *x, float *y,
                                         const nnu_softmax_params *p);
typedef nnu_status (*nnu_softmax_bwd_fn)(const nnu_backend *be, const float *y, const float *gy,
                                         float *gx, const nnu_softmax_params *p);
/* logits (N,K,S), target (N,S) -> *loss; ws (nnu_loss_ws_size bytes) keeps the
 * probabilities and sums for the bwd */
typedef nnu_status (*nnu_loss_dice_ce_fwd_fn)(const nnu_backend *be, const float *logits,
                                              const int32_t *target, void *ws, double *loss,
                                              const nnu_loss_params *p);
/* glogits = weight * dloss/dlogits (=), after fwd with the same ws */
typedef nnu_status (*nnu_loss_dice_ce_bwd_fn)(const nnu_backend *be, const float *logits,
                                              const int32_t *target, const void *ws,
                                              float *glogits, const nnu_loss_params *p);
/* Shared by the loss twins (core/ops/loss_terms.c). The mean soft-Dice coefficient over
 * stats[(n*K + k)*3 + {I, Sp, Sy}] for classes k0 <= k < K: dc = (2I + smooth) /
 * max(Sp + Sy + smooth, 1e-8) per (n, k), or per k with the sums over n when batch_dice
 * (k outer, n inner: every twin sums in this order). And loss_dice_bce's checks. */
double     nnu_loss_dice_mean(const double *stats, int64_t N, int64_t K, int64_t k0,
                              int batch_dice, double smooth);
/* The Dice gradient dDice/dp = a*y + b of group (n, c) over G groups, times w:
 * a = -(2/G)/den, b = (1/G) num/den^2 (0 where the 1e-8 clip is active), with the
 * sums of stats as nnu_loss_dice_mean takes them (the CPU backwards; the CUDA ones
 * compute the same on the device). */
void       nnu_loss_dice_coef(const double *stats, int64_t N, int64_t K, int64_t n, int64_t c,
                              int batch_dice, double smooth, double G, double w, float *a,
                              float *b);
nnu_status nnu_loss_region_check(const nnu_loss_region_params *p);
/* ERR_ARG unless p->terms is one of NNU_LOSS_DICE_AND_CE, _CE_ONLY, _DICE_ONLY (op names
 * the op in the message); the checks of both label twins and of nnu_loss_region_check */
nnu_status nnu_loss_terms_check(const nnu_loss_params *p, const char *op);
/* the CE (BCE) and the Dice term's factor in the sum: 1 when p->terms keeps it, else 0 */
static inline double nnu_loss_ce_factor(const nnu_loss_params *p) {
    return p->terms == NNU_LOSS_DICE_ONLY ? 0.0 : 1.0;
}
static inline double nnu_loss_dice_factor(const nnu_loss_params *p) {
    return p->terms == NNU_LOSS_CE_ONLY ? 0.0 : 1.0;
}

/* the region twins: logits (N,R,S), target (N,S) labels mapped through label_regions */
typedef nnu_status (*nnu_loss_dice_bce_fwd_fn)(const nnu_backend *be, const float *logits,
                                               const int32_t *target, void *ws, double *loss,
                                               const nnu_loss_region_params *p);
typedef nnu_status (*nnu_loss_dice_bce_bwd_fn)(const nnu_backend *be, const float *logits,
                                               const int32_t *target, const void *ws,
                                               float *glogits, const nnu_loss_region_params *p);
typedef nnu_status (*nnu_sgd_step_fn)(const nnu_backend *be, float *w, const float *g,
                                      float *buf, const nnu_sgd_params *p);
typedef nnu_status (*nnu_adam_step_fn)(const nnu_backend *be, float *w, const float *g,
                                       float *m, float *v, float *vmax,
                                       const nnu_adam_params *p);
typedef nnu_status (*nnu_axpy_fn)(const nnu_backend *be, const float *x, float *y,
                                  const nnu_eltwise_params *p);
typedef nnu_status (*nnu_scale_fn)(const nnu_backend *be, float *x, const nnu_eltwise_params *p);
/* *out = sum x^2 in double (host value) */
typedef nnu_status (*nnu_sumsq_fn)(const nnu_backend *be, const float *x, double *out,
                                   const nnu_eltwise_params *p);

/* ---- the op enum and the table (NNU_OP_NEW ops included: see nnu_ops.def) ---- */
#define NNU_OP_NEW(name, ptype) NNU_OP(name, ptype)
typedef enum nnu_op {
#define NNU_OP(name, ptype) NNU_OP_##name,
#include "nnu_ops.def"
#undef NNU_OP
    NNU_OP_COUNT
} nnu_op;

/* counters for tests and the benchmark (reorders are layout conversions) */
typedef struct nnu_backend_stats {
    int64_t reorders;       /* oneDNN reorders executed (weights and activations) */
    int64_t primitives;     /* oneDNN primitives created */
} nnu_backend_stats;

struct nnu_backend {
    const char           *name;   /* "cpu", "cuda:0" */
    const nnu_memory_ops *mem;    /* alloc/free of this device's memory */
    nnu_status (*sync)(const nnu_backend *be);
    /* any direction between host and this device's memory (cudaMemcpyDefault) */
    nnu_status (*memcpy_)(const nnu_backend *be, void *dst, const void *src, size_t nbytes);
    void       (*get_stats)(const nnu_backend *be, nnu_backend_stats *out);
    /* byte fill of device memory; NULL: nnu_backend_memset falls back (see there) */
    nnu_status (*memset_)(const nnu_backend *be, void *dst, int value, size_t nbytes);
    /* preferred activation layout block: 16 (oneDNN's nCdhw16c) or 0/1 (plain);
     * the network uses it when every feature count is a multiple of it */
    int         act_block;
    /* activation storage (header comment): act_bytes 0 or 4 = fp32, 2 = 16-bit of
     * type act_dtype (NNU_ACT_BF16 | NNU_ACT_F16); 0/0 in the CPU tables */
    int         act_bytes;
    int         act_dtype;
    /* copies n host floats into activation storage dst (converting to act_dtype);
     * NULL: fp32 storage, callers use memcpy_ */
    nnu_status (*upload_act)(const nnu_backend *be, void *dst, const float *host, int64_t n);
#define NNU_OP(name, ptype) nnu_##name##_fn name;
#include "nnu_ops.def"
#undef NNU_OP
};
#undef NNU_OP_NEW

/* bytes per stored activation element of be: 4 or 2 */
static inline size_t nnu_backend_act_size(const nnu_backend *be) {
    return be->act_bytes == 2 ? 2 : 4;
}

const char *nnu_op_name(nnu_op op);                 /* "conv_fwd" */
/* 1 if be fills the slot of op */
int nnu_backend_supports(const nnu_backend *be, nnu_op op);
/* OK, or ERR_UNSUPPORTED naming the op and the backend */
nnu_status nnu_backend_require(const nnu_backend *be, nnu_op op);

/* be->memset_ when the backend has it, memset for host-accessible memory, else
 * copies from a zeroed host block through be->memcpy_ (value 0 only). */
nnu_status nnu_backend_memset(const nnu_backend *be, void *dst, int value, size_t nbytes);

/* The CPU backend (process-wide; oneDNN engine and primitive cache created lazily). */
const nnu_backend *nnu_backend_cpu(void);
/* The CPU backend with bf16 convolutions ("cpu:bf16"): convolution inputs and
 * weights are rounded to bf16 (AVX512-BF16 kernels, about twice the f32 speed),
 * outputs, accumulation and every other op stay f32 — CPU mixed precision, as
 * autocast would do. Needs a CPU with avx512_bf16 (oneDNN fails otherwise). */
const nnu_backend *nnu_backend_cpu_bf16(void);
/* Number of threads the CPU ops use (OpenMP); n <= 0 keeps the default. */
void nnu_backend_cpu_set_threads(int n);

#endif
