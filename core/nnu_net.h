/* nnu_net: the reference's PlainConvUNet (nnunet-behaviour.md §6) or
 * ResidualEncoderUNet (§5.8, the nnUNetPlannerResEncM/L/XL plans) on a backend, with
 * its Dice + CE deep-supervision loss (§7.4) and SGD (§7.1).
 *
 * Parameters (R7): all weights live in one flat float block, all gradients in a
 * second and the SGD momentum in a third, in PyTorch's named_parameters() order of
 * dynamic_network_architectures' network (names below, without the all_modules.* /
 * decoder.encoder.* aliases of its state_dict), each tensor in PyTorch's layout;
 * per-layer weights are offsets into the block.
 * PlainConvUNet (arch NNU_NET_PLAIN):
 *   encoder.stages.<s>.0.convs.<j>.conv.weight [F_s, Cin, k...]  .conv.bias [F_s]
 *   encoder.stages.<s>.0.convs.<j>.norm.weight [F_s]             .norm.bias [F_s]
 * ResidualEncoderUNet (arch NNU_NET_RESENC; BasicBlockD blocks, ResNet-D skips):
 *   encoder.stem.convs.0.{conv,norm}.{weight,bias}                 Cin -> F_0, stride 1
 *   encoder.stages.<s>.blocks.<b>.conv1.{conv,norm}.{weight,bias}  (stride_s on b = 0)
 *   encoder.stages.<s>.blocks.<b>.conv2.{conv,norm}.{weight,bias}
 *   encoder.stages.<s>.blocks.<b>.skip.<i>.conv.weight [F_s, Cin, 1...] (no bias)
 *   encoder.stages.<s>.blocks.<b>.skip.<i>.norm.{weight,bias}
 *     (the skip exists when the block strides or changes channels: skip.0 is the
 *     AvgPool(stride) when it strides, so the projection is skip.1 then, else skip.0;
 *     a strided block without a channel change has the pool only, no parameters)
 * both:
 *   decoder.stages.<t>.convs.<j>.{conv,norm}.{weight,bias}        (t = 0: lowest res)
 *   decoder.transpconvs.<t>.weight [F_{r+1}, F_r, s...]           .bias [F_r]
 *   decoder.seg_layers.<t>.weight [K, F_r, 1...]                   .bias [K]
 *
 * Activations (R8): an arena planned once per (batch, patch) by nnu_net_plan (the
 * forward calls it when the input's shape changes); a training step allocates
 * nothing. Inside the arena activations use the channel-blocked layout (cblk 16)
 * when every stage's feature count is a multiple of 16, plain otherwise; network
 * input and outputs are always plain (N, C, D, H, W). Activations and activation
 * gradients are stored in the backend's activation type (fp32, or bf16/fp16 in the
 * CUDA -act16 tables, be->act_bytes 2); the input is given as host floats and
 * uploaded, and outputs (logits) and output gradients are fp32 in every table, so
 * nnu_net_read/nnu_net_write/nnu_net_output work on floats everywhere.
 *
 * Outputs: in training mode (and with deep supervision) the n_stages-1 head
 * outputs from the highest resolution down; otherwise only the full-resolution one.
 * Logits, no softmax. */
#ifndef NNU_NET_H
#define NNU_NET_H

#include <stdint.h>

#include "nnu_backend.h"
#include "nnu_tensor.h"

#define NNU_NET_MAX_STAGES 10
#define NNU_NET_MAX_BLOCKS 12                   /* residual blocks per encoder stage */

/* nnu_net_config.arch */
enum { NNU_NET_PLAIN = 0, NNU_NET_RESENC = 1 };

typedef struct nnu_net_config {
    int     dim;                                /* 2 or 3 (2: D = 1, kernel/stride[0] = 1) */
    int     arch;                               /* NNU_NET_PLAIN (0) | NNU_NET_RESENC */
    int     n_stages;
    int     features[NNU_NET_MAX_STAGES];
    int     kernel[NNU_NET_MAX_STAGES][3];      /* (D, H, W) order */
    int     stride[NNU_NET_MAX_STAGES][3];      /* stage 0: all ones */
    int     n_conv_enc[NNU_NET_MAX_STAGES];     /* PLAIN: convs per encoder stage */
    int     n_blocks_enc[NNU_NET_MAX_STAGES];   /* RESENC: BasicBlockD per encoder stage */
    int     n_conv_dec[NNU_NET_MAX_STAGES];     /* n_stages - 1 entries, lowest res first */
    int     in_channels, num_classes;
    int     conv_bias;                          /* 1 in the v2 plans */
    float   norm_eps;                           /* 1e-5 */
    float   slope;                              /* 0.01 */
    int     deep_supervision;                   /* 1 */
    /* loss */
    int     batch_dice;
    int     ignore_label;                       /* -1: none */
    int     loss_terms;                         /* NNU_LOSS_DICE_AND_CE (0) | NNU_LOSS_CE_ONLY
                                                   | NNU_LOSS_DICE_ONLY (nnu_loss_params.terms;
                                                   regions: BCE for CE) */
    int     loss_smooth_set;                    /* 0: the soft Dice's smooth is 1e-5 */
    float   loss_smooth;                        /* the smooth when loss_smooth_set (>= 0) */
    /* region-based training (§7.4, Appendix B): n_regions > 0 makes num_classes ==
     * n_regions sigmoid heads trained with Dice + BCE; label_regions[l] has bit r set
     * when label l (0 .. n_labels-1) belongs to region r. 0: softmax labels, Dice + CE. */
    int     n_regions;
    int     n_labels;
    uint32_t label_regions[NNU_LOSS_MAX_LABELS];
} nnu_net_config;

/* One parameter tensor of the flat block. */
typedef struct nnu_net_tensor_info {
    char    name[80];
    int     ndim;
    int64_t shape[5];
    int64_t offset, numel;                      /* in floats, into the blocks */
} nnu_net_tensor_info;

/* The optimizer step: SGD (nnU-Net v2, §7.1) or Adam (2018 / v1-orig, §7.9), each
 * after optional clipping of the global gradient norm. The caller applies the
 * learning-rate schedule (poly for SGD, plateau for Adam) by setting lr. */
enum { NNU_OPTIM_SGD = 0, NNU_OPTIM_ADAM = 1 };

typedef struct nnu_sgd_config {
    int   optimizer;       /* NNU_OPTIM_SGD | NNU_OPTIM_ADAM */
    float lr;              /* for this step */
    float momentum;        /* SGD: 0.99 */
    float weight_decay;    /* 3e-5 (both) */
    int   nesterov;        /* SGD: 1 */
    float clip_norm;       /* SGD: 12; Adam: 0; <= 0: no clipping */
    float beta1, beta2, eps;   /* Adam: 0.9, 0.999, 1e-8 */
    int   amsgrad;         /* Adam: 1 */
    int   decoupled;       /* Adam: 1 = AdamW's decoupled weight decay (default 0) */
} nnu_sgd_config;

/* the reference v2 SGD settings (lr 1e-2) */
void  nnu_sgd_config_default(nnu_sgd_config *c);
/* the 2018 trainer's Adam settings (lr 3e-4, wd 3e-5, amsgrad, no clipping) */
void  nnu_adam_config_default(nnu_sgd_config *c);
/* lr_e = initial * (1 - epoch/max_epochs)^0.9 */
float nnu_poly_lr(float initial, int epoch, int max_epochs);

typedef struct nnu_net nnu_net;

/* Validates cfg, allocates the parameter blocks and initialises them as the
 * reference (He normal a = 0.01, zero bias, gamma 1, beta 0; ResidualEncoderUNet also
 * init_last_bn_before_add_to_0: gamma = beta = 0 in every block's conv2.norm) from seed. */
nnu_status nnu_net_create(const nnu_backend *be, const nnu_net_config *cfg, uint64_t seed,
                          nnu_net **out);
void nnu_net_free(nnu_net *net);                       /* NULL-safe */
const nnu_net_config *nnu_net_get_config(const nnu_net *net);
const nnu_backend    *nnu_net_backend(const nnu_net *net);

int64_t nnu_net_num_params(const nnu_net *net);
float  *nnu_net_params(nnu_net *net);                  /* flat weights (device memory) */
float  *nnu_net_grads(nnu_net *net);                   /* flat gradients */
float  *nnu_net_momentum(nnu_net *net);                /* SGD buffer */
int     nnu_net_num_tensors(const nnu_net *net);
const nnu_net_tensor_info *nnu_net_tensor(const nnu_net *net, int i);
/* index of the tensor called name, or -1 */
int     nnu_net_find_tensor(const nnu_net *net, const char *name);

/* Plans the arena for input (batch, in_channels, patch); no-op if unchanged.
 * train = 1 keeps every activation for the backward; train = 0 plans the lean
 * inference arena (skips plus a few shared buffers). A smaller batch with the same
 * patch and mode reuses the arena without allocating. Every spatial size must be
 * divisible by the total stride of its axis. */
nnu_status nnu_net_plan(nnu_net *net, int64_t batch, const int64_t patch[3], int train);
/* bytes held by the arena (for the benchmark) */
size_t nnu_net_arena_bytes(const nnu_net *net);

/* input: plain (N, Cin, D, H, W) floats in host memory, copied into the arena (the
 * caller's buffer need not outlive the call); the arena is (re)planned when N or the
 * patch change, or for training after an inference plan (an existing training plan
 * also serves inference). train = 1 keeps what the backward needs and computes
 * every head; train = 0 computes only the full-resolution head. */
nnu_status nnu_net_forward(nnu_net *net, const float *input, int64_t n, const int64_t patch[3],
                           int train);
/* Copies n floats from device memory of the net's backend to the host, or back
 * (the blocks, outputs and output gradients below live in device memory; on the CPU
 * these are plain copies). */
nnu_status nnu_net_read(const nnu_net *net, const float *dev, float *host, int64_t n);
nnu_status nnu_net_write(nnu_net *net, float *dev, const float *host, int64_t n);

/* after a forward: number of outputs and output i (plain logits, shape written) */
int          nnu_net_num_outputs(const nnu_net *net);
const float *nnu_net_output(const nnu_net *net, int i, int64_t shape[5]);
/* gradient buffer of output i (plain, same shape): fill it, then nnu_net_backward */
float       *nnu_net_output_grad(nnu_net *net, int i);

/* Deep-supervision Dice + CE on the outputs of the last training forward.
 * target: full-resolution labels (N, 1, D, H, W) of any dtype (integers or
 * integral floats) in host memory; it is downsampled with nearest-exact to every
 * output size (on the host, then copied for device backends).
 * Writes the loss gradients into the output-gradient buffers. */
nnu_status nnu_net_loss(nnu_net *net, const nnu_tensor *target, double *loss);
/* the normalised deep-supervision weight of output i (§7.4) */
double nnu_net_ds_weight(const nnu_net *net, int i);

/* Backpropagates the output-gradient buffers; accumulates (+=) into the gradient block. */
nnu_status nnu_net_backward(nnu_net *net);
nnu_status nnu_net_zero_grad(nnu_net *net);
/* Clips the global gradient norm, then one optimizer step (c->optimizer); *grad_norm
 * gets the norm before clipping (may be NULL). Adam's state (m, v, vmax) is
 * allocated at its first step. */
nnu_status nnu_net_sgd_step(nnu_net *net, const nnu_sgd_config *c, double *grad_norm);
/* Adam state blocks (NULL before the first Adam step): 0 = exp_avg, 1 = exp_avg_sq,
 * 2 = max_exp_avg_sq */
float *nnu_net_adam_state(nnu_net *net, int which);
/* allocates the Adam state (zeros) if absent, e.g. before restoring a checkpoint */
nnu_status nnu_net_adam_alloc(nnu_net *net);
/* zero_grad, forward(train), loss, backward, clip + optimizer step: one iteration. */
nnu_status nnu_net_train_step(nnu_net *net, const float *input, int64_t n,
                              const int64_t patch[3], const nnu_tensor *target,
                              const nnu_sgd_config *c, double *loss);

/* Dynamic loss scaling, PyTorch's GradScaler (the reference trains with fp16 autocast +
 * GradScaler on CUDA): nnu_net_loss multiplies the loss gradient by `scale`, so every
 * gradient of the backward is scaled (fp16 convolutions keep small gradients above
 * fp16's underflow); nnu_net_sgd_step takes the norm of the scaled gradients, and
 *   - if it is not finite (an fp16 overflow): skips the update (parameters, momentum,
 *     Adam state and the step count unchanged), scale *= backoff, tracker = 0;
 *   - else: divides by scale and clips in one pass (the unscaled norm is reported and
 *     clipped, as unscale_ + clip_grad_norm_), updates, and after growth_interval
 *     finite steps in a row scale *= growth.
 * nnu_net_train_step also skips (backoff, no backward) when the loss itself is not
 * finite. With scale a power of two, scaling is exact in fp32: a scaled fp32 training
 * is bit-identical to an unscaled one (tests/test_net_loss_scale.c). */
typedef struct nnu_loss_scaler {
    int     enabled;
    double  scale;                 /* 65536 (2^16) */
    double  growth, backoff;       /* 2, 0.5 */
    int     growth_interval;       /* 2000 */
    int     growth_tracker;        /* finite steps since the scale last changed */
    int64_t skipped;               /* steps skipped since creation (for the log) */
} nnu_loss_scaler;

/* enabled, with GradScaler's defaults */
void nnu_loss_scaler_default(nnu_loss_scaler *s);
/* copies s into the net (enabled = 0 turns scaling off); ERR_ARG on a scale that is
 * not finite and positive, growth < 1, backoff outside (0, 1) or interval < 1 */
nnu_status nnu_net_set_loss_scaler(nnu_net *net, const nnu_loss_scaler *s);
const nnu_loss_scaler *nnu_net_loss_scaler(const nnu_net *net);
/* 1 when the last nnu_net_sgd_step / nnu_net_train_step skipped its update */
int nnu_net_last_step_skipped(const nnu_net *net);

/* optimizer steps taken (SGD: 0 means the next step initialises the momentum
 * buffer, as PyTorch; Adam: the bias-correction step count) */
int  nnu_net_get_sgd_steps(const nnu_net *net);
void nnu_net_set_sgd_steps(nnu_net *net, int steps);

/* Parameters as safetensors (F32, PyTorch names and shapes) through nnu_safetensors.h:
 * written atomically (tmp + fsync + rename) with the whole-file CRC-32 in metadata
 * "nnunet_crc32". Loading validates the file, checks the CRC when present (older files
 * have none), checks names and shapes and names the first mismatching tensor. */
nnu_status nnu_net_save(const nnu_net *net, const char *path);
/* the same with string metadata (epoch, plan identity, ...) in __metadata__;
 * "format", "sgd_steps" and "nnunet_crc32" are reserved */
nnu_status nnu_net_save_meta(const nnu_net *net, const char *path, int nmeta,
                             const char *const *keys, const char *const *values);
/* the __metadata__ object of a safetensors file as JSON text ("{}" when absent),
 * after the same checks as loading */
nnu_status nnu_net_read_metadata(const char *path, char *buf, size_t len);
/* Loads every tensor of path into net (names and shapes checked, the first mismatch
 * named); path is one of our safetensors files or a PyTorch checkpoint (a torch.save
 * zip, told apart by its magic: nnu_torch_ckpt.h). */
nnu_status nnu_net_load(nnu_net *net, const char *path);

/* The reference's load_pretrained_weights (fine-tuning, `train -pretrained_weights`):
 * every tensor of net whose name does not contain `skip` (".seg_layers."; NULL or ""
 * skips nothing) must be in path (ours or PyTorch's) with the same shape and is copied;
 * the others keep their values; the file's other tensors are ignored. The optimizer
 * state is left alone. *n_loaded (may be NULL) = tensors copied. Nothing changes on
 * failure (nnu_net_pretrained.c). */
nnu_status nnu_net_load_pretrained(nnu_net *net, const char *path, const char *skip, int *n_loaded);

#endif
