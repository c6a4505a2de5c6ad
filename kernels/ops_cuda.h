/* ops_cuda.h: the CUDA implementations of the slots of struct nnu_backend, twins
 * of core/ops/ops_cpu.h with the suffix _cuda and identical signatures (R19).
 * Shapes and gradient conventions: core/nnu_backend.h. Files:
 *   conv_cudnn.cu   conv_* and convt_* (cuDNN; 1x1 stride-1 heads with cuBLAS)
 *   instnorm.cu     instnorm_fwd/bwd (fused instance norm + leaky ReLU)
 *   eltwise.cu      lrelu, add_lrelu, concat, sgd_step, adam_step, axpy, scale, sumsq
 *   pool.cu         avgpool_fwd/bwd (kernel = stride; the residual encoder's skip)
 *   loss.cu         softmax_fwd/bwd, loss_dice_ce_fwd/bwd
 * cuda_backend.c builds the six precision tables from nnu_ops.def. In the -act16
 * tables the activation arguments are 16-bit storage (core/nnu_backend.h), so
 * their `float *` point to __nv_bfloat16 / __half elements there. */
#ifndef NNU_OPS_CUDA_H
#define NNU_OPS_CUDA_H

#include "nnu_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

nnu_status nnu_conv_fwd_cuda(const nnu_backend *be, const float *x, float *y, const float *w,
                            const float *b, const nnu_conv_params *p);
nnu_status nnu_conv_bwd_data_cuda(const nnu_backend *be, const float *gy, float *gx,
                                 const float *w, const nnu_conv_params *p);
nnu_status nnu_conv_bwd_params_cuda(const nnu_backend *be, const float *x, const float *gy,
                                   float *gw, float *gb, const nnu_conv_params *p);
nnu_status nnu_convt_fwd_cuda(const nnu_backend *be, const float *x, float *y, const float *w,
                             const float *b, const nnu_conv_params *p);
nnu_status nnu_convt_bwd_data_cuda(const nnu_backend *be, const float *gy, float *gx,
                                  const float *w, const nnu_conv_params *p);
nnu_status nnu_convt_bwd_params_cuda(const nnu_backend *be, const float *x, const float *gy,
                                    float *gw, float *gb, const nnu_conv_params *p);
nnu_status nnu_instnorm_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                                const float *gamma, const float *beta, float *stats,
                                const nnu_norm_params *p);
nnu_status nnu_instnorm_bwd_cuda(const nnu_backend *be, const float *x, const float *gy,
                                float *gx, const float *gamma, const float *beta,
                                float *ggamma, float *gbeta, const float *stats,
                                const nnu_norm_params *p);
nnu_status nnu_lrelu_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                             const nnu_eltwise_params *p);
nnu_status nnu_lrelu_bwd_cuda(const nnu_backend *be, const float *x, const float *gy, float *gx,
                             const nnu_eltwise_params *p);
nnu_status nnu_add_lrelu_fwd_cuda(const nnu_backend *be, const float *a, const float *b,
                                  float *y, const nnu_eltwise_params *p);
nnu_status nnu_avgpool_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                                const nnu_pool_params *p);
nnu_status nnu_avgpool_bwd_cuda(const nnu_backend *be, const float *gy, float *gx,
                                const nnu_pool_params *p);
nnu_status nnu_concat_fwd_cuda(const nnu_backend *be, const float *a, const float *b, float *y,
                              const nnu_concat_params *p);
nnu_status nnu_concat_bwd_cuda(const nnu_backend *be, const float *gy, float *ga, float *gb,
                              const nnu_concat_params *p);
nnu_status nnu_softmax_fwd_cuda(const nnu_backend *be, const float *x, float *y,
                               const nnu_softmax_params *p);
nnu_status nnu_softmax_bwd_cuda(const nnu_backend *be, const float *y, const float *gy,
                               float *gx, const nnu_softmax_params *p);
nnu_status nnu_loss_dice_ce_fwd_cuda(const nnu_backend *be, const float *logits,
                                    const int32_t *target, void *ws, double *loss,
                                    const nnu_loss_params *p);
nnu_status nnu_loss_dice_ce_bwd_cuda(const nnu_backend *be, const float *logits,
                                    const int32_t *target, const void *ws, float *glogits,
                                    const nnu_loss_params *p);
/* loss_bce.cu: Dice + BCE of region-based training, logits (N,R,S), target (N,S) labels */
nnu_status nnu_loss_dice_bce_fwd_cuda(const nnu_backend *be, const float *logits,
                                      const int32_t *target, void *ws, double *loss,
                                      const nnu_loss_region_params *p);
nnu_status nnu_loss_dice_bce_bwd_cuda(const nnu_backend *be, const float *logits,
                                      const int32_t *target, const void *ws, float *glogits,
                                      const nnu_loss_region_params *p);
nnu_status nnu_sgd_step_cuda(const nnu_backend *be, float *w, const float *g, float *buf,
                            const nnu_sgd_params *p);
nnu_status nnu_adam_step_cuda(const nnu_backend *be, float *w, const float *g, float *m,
                              float *v, float *vmax, const nnu_adam_params *p);
nnu_status nnu_axpy_cuda(const nnu_backend *be, const float *x, float *y,
                        const nnu_eltwise_params *p);
nnu_status nnu_scale_cuda(const nnu_backend *be, float *x, const nnu_eltwise_params *p);
nnu_status nnu_sumsq_cuda(const nnu_backend *be, const float *x, double *out,
                         const nnu_eltwise_params *p);

/* the upload_act slot of the -act16 tables (conv_cudnn.cu): n host floats ->
 * 16-bit activation storage dst (bf16/fp16 by the table), through an fp32
 * staging buffer on the device and one conversion kernel; synchronous like memcpy_ */
nnu_status nnu_cuda_upload_act(const nnu_backend *be, void *dst, const float *host, int64_t n);

/* backend plumbing (cuda_context.cu) */
nnu_status nnu_cuda_sync(const nnu_backend *be);
nnu_status nnu_cuda_memcpy(const nnu_backend *be, void *dst, const void *src, size_t nbytes);
/* the memset_ slot: stream-ordered byte fill (nnu_cuda_memset) */
nnu_status nnu_cuda_memset_slot(const nnu_backend *be, void *dst, int value, size_t nbytes);
void       nnu_cuda_get_stats(const nnu_backend *be, nnu_backend_stats *out);
nnu_status nnu_cuda_init(void);
extern const nnu_memory_ops nnu_cuda_memory_ops;

#ifdef __cplusplus
}
#endif

#endif
