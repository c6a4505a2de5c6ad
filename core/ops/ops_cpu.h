/* ops_cpu.h: the CPU implementations of the slots of struct nnu_backend
 * (signatures: the nnu_<op>_fn typedefs in nnu_backend.h; shapes documented there).
 * Each family lives in its own file: conv.c, conv_transpose.c (oneDNN),
 * instnorm.c, lrelu.c (with add_lrelu), pool.c, concat.c, softmax.c, loss_dice_ce.c,
 * loss_dice_bce.c, sgd.c, adam.c, eltwise.c.
 * nnu_backend.c builds the CPU table from this list. */
#ifndef NNU_OPS_CPU_H
#define NNU_OPS_CPU_H

#include "nnu_backend.h"

nnu_status nnu_conv_fwd_cpu(const nnu_backend *be, const float *x, float *y, const float *w,
                            const float *b, const nnu_conv_params *p);
nnu_status nnu_conv_bwd_data_cpu(const nnu_backend *be, const float *gy, float *gx,
                                 const float *w, const nnu_conv_params *p);
nnu_status nnu_conv_bwd_params_cpu(const nnu_backend *be, const float *x, const float *gy,
                                   float *gw, float *gb, const nnu_conv_params *p);
nnu_status nnu_convt_fwd_cpu(const nnu_backend *be, const float *x, float *y, const float *w,
                             const float *b, const nnu_conv_params *p);
nnu_status nnu_convt_bwd_data_cpu(const nnu_backend *be, const float *gy, float *gx,
                                  const float *w, const nnu_conv_params *p);
nnu_status nnu_convt_bwd_params_cpu(const nnu_backend *be, const float *x, const float *gy,
                                    float *gw, float *gb, const nnu_conv_params *p);
nnu_status nnu_instnorm_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                                const float *gamma, const float *beta, float *stats,
                                const nnu_norm_params *p);
nnu_status nnu_instnorm_bwd_cpu(const nnu_backend *be, const float *x, const float *gy,
                                float *gx, const float *gamma, const float *beta,
                                float *ggamma, float *gbeta, const float *stats,
                                const nnu_norm_params *p);
nnu_status nnu_lrelu_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                             const nnu_eltwise_params *p);
nnu_status nnu_lrelu_bwd_cpu(const nnu_backend *be, const float *x, const float *gy, float *gx,
                             const nnu_eltwise_params *p);
/* y = lrelu(a + b) (lrelu.c); avgpool with kernel = stride (pool.c) */
nnu_status nnu_add_lrelu_fwd_cpu(const nnu_backend *be, const float *a, const float *b, float *y,
                                 const nnu_eltwise_params *p);
nnu_status nnu_avgpool_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                               const nnu_pool_params *p);
nnu_status nnu_avgpool_bwd_cpu(const nnu_backend *be, const float *gy, float *gx,
                               const nnu_pool_params *p);
nnu_status nnu_concat_fwd_cpu(const nnu_backend *be, const float *a, const float *b, float *y,
                              const nnu_concat_params *p);
nnu_status nnu_concat_bwd_cpu(const nnu_backend *be, const float *gy, float *ga, float *gb,
                              const nnu_concat_params *p);
nnu_status nnu_softmax_fwd_cpu(const nnu_backend *be, const float *x, float *y,
                               const nnu_softmax_params *p);
nnu_status nnu_softmax_bwd_cpu(const nnu_backend *be, const float *y, const float *gy,
                               float *gx, const nnu_softmax_params *p);
nnu_status nnu_loss_dice_ce_fwd_cpu(const nnu_backend *be, const float *logits,
                                    const int32_t *target, void *ws, double *loss,
                                    const nnu_loss_params *p);
nnu_status nnu_loss_dice_ce_bwd_cpu(const nnu_backend *be, const float *logits,
                                    const int32_t *target, const void *ws, float *glogits,
                                    const nnu_loss_params *p);
/* regions: logits (N,R,S) sigmoid channels, target (N,S) labels -> *loss (loss_dice_bce.c) */
nnu_status nnu_loss_dice_bce_fwd_cpu(const nnu_backend *be, const float *logits,
                                     const int32_t *target, void *ws, double *loss,
                                     const nnu_loss_region_params *p);
nnu_status nnu_loss_dice_bce_bwd_cpu(const nnu_backend *be, const float *logits,
                                     const int32_t *target, const void *ws, float *glogits,
                                     const nnu_loss_region_params *p);
nnu_status nnu_sgd_step_cpu(const nnu_backend *be, float *w, const float *g, float *buf,
                            const nnu_sgd_params *p);
nnu_status nnu_adam_step_cpu(const nnu_backend *be, float *w, const float *g, float *m,
                             float *v, float *vmax, const nnu_adam_params *p);
nnu_status nnu_axpy_cpu(const nnu_backend *be, const float *x, float *y,
                        const nnu_eltwise_params *p);
nnu_status nnu_scale_cpu(const nnu_backend *be, float *x, const nnu_eltwise_params *p);
nnu_status nnu_sumsq_cpu(const nnu_backend *be, const float *x, double *out,
                         const nnu_eltwise_params *p);

/* Hot loops are compiled for AVX-512, AVX2+FMA and the baseline and picked at
 * run time (GCC function multi-versioning), so one binary is fast on this machine
 * and still runs anywhere. Put it on the (non-inline) function holding the loop:
 * OpenMP-outlined bodies do not inherit it. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NNU_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NNU_SIMD_CLONES
#endif

/* Below this many elements an op runs on one thread: a parallel region costs a few
 * microseconds, and far more when other processes hold the cores (the waiting
 * threads spin), which small tensors (tests, low-resolution stages) cannot repay. */
#define NNU_OMP_MIN 32768

/* CPU backend internals shared by the ops (nnu_backend.c) */
int  nnu_backend_is_bf16(const nnu_backend *be);   /* called through the cpu:bf16 table */
void nnu_cpu_count_reorder(void);
void nnu_cpu_count_primitive(void);

#endif
