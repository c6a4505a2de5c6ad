/* tolerances.h: the one tolerance table of the engine tests (STYLE R28).
 * A value passes when |got - ref| <= atol + rtol * |ref|. Each entry says why. */
#ifndef NNU_TOLERANCES_H
#define NNU_TOLERANCES_H

typedef struct nnu_tol { const char *name; double atol, rtol; } nnu_tol;

/* float32 ops against naive double references on O(1) random data */
static const nnu_tol TOL_CONV     = {"conv",     2e-5, 1e-4}; /* <= 27*C fp32 products summed in a different order (oneDNN blocking) */
static const nnu_tol TOL_CONV_BWW = {"conv_bww", 1e-4, 1e-4}; /* weight gradient sums N*S products: more terms than the forward */
static const nnu_tol TOL_NORM     = {"instnorm", 2e-5, 1e-4}; /* fp32 normalisation after double statistics */
static const nnu_tol TOL_NORM_BWD = {"instnorm_bwd", 1e-4, 1e-4}; /* fp32 reductions over S feed gx; gamma grads sum N*S terms */
static const nnu_tol TOL_ELT      = {"eltwise",  0.0,  0.0};  /* lrelu/concat/axpy are exact in fp32 (one rounding, same as the reference) */
static const nnu_tol TOL_SOFTMAX  = {"softmax",  1e-6, 1e-5}; /* expf vs exp and one fp32 division */
static const nnu_tol TOL_LOSS     = {"loss",     1e-6, 1e-5}; /* loss sums are in double; fp32 probabilities */
static const nnu_tol TOL_LOSS_GRAD= {"loss_grad",1e-7, 1e-4}; /* gradients are O(1/S); fp32 softmax products */
static const nnu_tol TOL_SGD      = {"sgd",      1e-7, 1e-6}; /* a few fp32 multiply-adds per element */

/* the cpu:bf16 backend: convolution inputs/weights rounded to bf16 (8-bit mantissa,
 * relative 2^-9 per value), sums of up to 27*C products accumulated in fp32 */
static const nnu_tol TOL_CONV_BF16 = {"conv_bf16", 4e-2, 2e-2};
/* the whole small U-Net with bf16 convolutions against float64 PyTorch: relative
 * L2 error of the outputs and the loss (bf16 rounding compounds over ~10 layers) */
static const double TOL_NET_BF16_REL = 3e-2;
/* ... and of the parameter gradients: the instance-norm backward subtracts the mean
 * and the xhat-projection of the incoming gradient, and the weight gradient sums the
 * rest against the input, so per-value bf16 errors of 2^-9 grow to ~15 % on this
 * 768-voxel test net (observed 0.12; it shrinks with more voxels). A smoke test that
 * bf16 training follows the right direction (cosine > 0.97), not an accuracy claim. */
static const double TOL_NET_BF16_GRAD = 0.25;

/* finite-difference gradient checks (R27) */
static const double GC_EPS_DOUBLE = 1e-6;   /* central differences of the double reference forward */
static const double GC_ATOL_DOUBLE = 1e-5;  /* max-abs: the fp32 analytic gradient vs the double FD of the same math */
static const double GC_EPS_F32 = 1e-2;      /* 4-point formula on the fp32 op itself: truncation O(eps^4) */
static const double GC_RTOL_F32 = 1e-3;     /* mean |fd - an| / mean |an|: fp32 rounding of sums of ~1e3 terms, divided by eps */

/* the tiny ResEnc net's gradient check (test_gradcheck.c gc_resenc_net): the 4-point
 * formula on the whole fp32 forward, leaky-ReLU slope 1 (smooth). The step must be
 * large against the fp32 rounding of the objective (a sum of ~3e3 outputs after ~20
 * layers: ~4e-5 absolute, /12h) and small against instance norm's curvature: at 1e-3
 * the rounding gives mean-rel 9e-4, at 1e-2 9e-5 (observed) */
static const double GC_NET_EPS = 1e-2;
static const double GC_NET_RTOL = 1e-3;       /* mean |fd - an| / mean |an| over the sampled entries */
static const double GC_NET_ATOL_REL = 1e-2;   /* only prints entries off by 10x this (diagnostics) */
static const double GC_NET_BIAS_ATOL = 1e-3;  /* conv biases before a norm (0 exactly): |fd|, |an| vs max |grad| */

/* the small U-Net against PyTorch (tests/gen/gen_net_ref.py) */
static const nnu_tol TOL_NET_OUT  = {"net_out",  1e-4, 1e-3}; /* ~10 conv/norm layers of fp32 in different summation orders */
static const nnu_tol TOL_NET_LOSS = {"net_loss", 1e-5, 1e-4}; /* one scalar from double sums of the logits above */
static const nnu_tol TOL_NET_GRAD = {"net_grad", 1e-4, 2e-3}; /* backward through the whole net: errors of the forward times the Jacobians */
static const nnu_tol TOL_NET_STEP = {"net_step", 1e-5, 1e-4}; /* w - lr*(...): lr 1e-2 shrinks gradient errors 100x */
/* Adam's first step is lr*d/(|d| + 1e-8) ~ lr*sign(d): where |d| is at the fp32 noise
 * level (conv biases before instance norm have a zero gradient in exact arithmetic)
 * the sign is noise, so those elements (|d_ref| < GC_ADAM_NOISE) may differ by 2*lr. */
static const double GC_ADAM_NOISE = 1e-6;

#endif
