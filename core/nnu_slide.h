/* nnu_slide: sliding-window inference without the network (nnunet-behaviour.md §9.2).
 *
 * defines: nnu_slide_num_steps / nnu_slide_steps      compute_steps_for_sliding_window
 *          nnu_slide_gaussian                           compute_gaussian(sigma 1/8, scale 10, f16)
 *          nnu_slide_pad                                pad_nd_image(constant 0, return_slicer)
 *          nnu_slide_predict                            predict_sliding_window_return_logits
 *
 * The network is a callback: it receives a batch of windows (B, C, *patch) in float32
 * and writes logits (B, K, *patch) in float32 into a caller-allocated tensor. The
 * aggregator does everything else the reference does: padding, window positions,
 * test-time mirroring (mean of logits over all mirror combinations), Gaussian
 * weighting, accumulation and the final division.
 *
 * Memory: one logit accumulator (K, padded image) and one weight map (padded image),
 * both float16 by default as in the reference (f32 optional), plus one batch of
 * windows (input, one mirrored copy, the network output and its running sum). A CT
 * of 300×512×512 voxels with 14 heads needs 14·78.6e6·2 B = 2.2 GB for the
 * accumulator; nothing else scales with the image except the (padded) f32 input.
 *
 * Axis order: image (C, D, H, W) = (c, z, y, x); patch (z, y, x) for 3-D
 * configurations, (y, x) for 2-D configurations, which run slice by slice along z. */
#ifndef NNU_SLIDE_H
#define NNU_SLIDE_H

#include <stdint.h>

#include "nnu_tensor.h"

/* ---- window positions ---- */

/* Number of windows along one axis: ceil((I − P)/(P·step)) + 1, at least 1
 * (the reference yields no window at all when I < P − P·step; callers pad first). */
int64_t nnu_slide_num_steps(int64_t image_size, int64_t patch, double step_size);
/* Start offsets (0-based) along one axis: round_half_even(k·(I − P)/(n − 1)),
 * k = 0 … n−1, or {0} for n = 1. out must hold nnu_slide_num_steps() entries.
 * Fails for step_size outside (0, 1] or sizes < 1. */
nnu_status nnu_slide_steps(int64_t image_size, int64_t patch, double step_size, int64_t *out);

/* ---- Gaussian importance map ---- */

/* out = new f16 tensor of shape patch[0..ndim): the reference's compute_gaussian
 * with sigma = P/8 per axis and maximum 10 (scipy's normalised 1-D kernels, their
 * product, divided by max/10, float64 → float32 → float16), float16 zeros replaced
 * by the smallest non-zero entry. ndim 1..3. n_replaced (optional) receives the
 * number of replaced zeros. */
nnu_status nnu_slide_gaussian(int ndim, const int64_t *patch, nnu_tensor **out, int64_t *n_replaced);

/* ---- padding an image smaller than the patch ---- */

/* The last `patch_ndim` axes of image are padded with 0 up to the patch size where
 * they are smaller: ⌊diff/2⌋ before, ⌈diff/2⌉ after. *out is a new contiguous
 * tensor of the image's dtype, or image itself (retained) if nothing is padded.
 * pad_before[image->ndim] receives the offsets of the original content, so the
 * reference's revert slicer is narrow(axis, pad_before[axis], image->shape[axis]). */
nnu_status nnu_slide_pad(nnu_tensor *image, int patch_ndim, const int64_t *patch,
                         nnu_tensor **out, int64_t *pad_before);

/* ---- the aggregator ---- */

/* The network. patch_batch: (B, C, pz, py, px) float32 contiguous (3-D patch) or
 * (B, C, py, px) (2-D patch); logits_out: (B, K, *patch) float32 contiguous, to be
 * overwritten completely. B ≤ params.batch_size (the last batch may be smaller).
 * Both tensors are borrowed for the duration of the call only. */
typedef nnu_status (*nnu_slide_predict_fn)(void *ctx, const nnu_tensor *patch_batch,
                                           nnu_tensor *logits_out);
/* Called after each batch of windows (done ≤ total windows, mirror passes not counted). */
typedef void (*nnu_slide_progress_fn)(void *ctx, int64_t done, int64_t total);

typedef struct nnu_slide_params {
    int       patch_ndim;      /* 3, or 2 for a 2-D configuration (slice-wise along z) */
    int64_t   patch[3];        /* patch size, (z, y, x) or (y, x) */
    double    step_size;       /* (0, 1]; reference default 0.5 */
    int       num_heads;       /* K, output channels of the network */
    int       n_mirror_axes;   /* 0: no test-time mirroring */
    int       mirror_axes[3];  /* 0-based patch axes, e.g. {0, 1, 2} (3-D) or {0, 1} (2-D) */
    int       batch_size;      /* windows per predict call, >= 1 (the reference uses 1) */
    nnu_dtype accum_dtype;     /* NNU_DTYPE_F16 (the reference, every device) or NNU_DTYPE_F32 */
    nnu_slide_progress_fn progress;   /* optional */
    void     *progress_ctx;
} nnu_slide_params;

/* patch_ndim 3, patch 0 (must be set), step 0.5, heads 0 (must be set), no mirroring,
 * batch 1, accumulation f16, no progress. */
void nnu_slide_params_default(nnu_slide_params *p);

/* image: (C, D, H, W), any float or integer dtype (converted to f32 windows).
 * *logits: owned (K, D, H, W) tensor of accum_dtype; it is a view of the padded
 * accumulator with the padding removed (not contiguous when padding occurred).
 * Window order, mirror order and every rounding step follow the reference:
 *   pred = net(x); pred += flip(net(flip(x, a)), a) for every non-empty subset a of
 *   the mirror axes in itertools.combinations order; pred /= passes          (f32)
 *   acc[window] = f16(acc + pred·g);  weight[window] = f16(weight + g)
 *   logits = f16(acc / weight)   (an inf anywhere is an error, as in the reference)
 * Polls nnu_interrupt_requested() between batches. */
nnu_status nnu_slide_predict(nnu_tensor *image, const nnu_slide_params *p,
                             nnu_slide_predict_fn predict, void *ctx, nnu_tensor **logits);

#endif
