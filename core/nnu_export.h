/* nnu_export: from the sliding-window logits of a preprocessed case to the
 * segmentation (and probabilities) of the original image, as the reference's
 * convert_predicted_logits_to_segmentation_with_correct_shape
 * (nnunet-behaviour.md §9.2 step 7, §9.3), plus the float16 fold ensemble.
 *
 * Shapes: logits (K, D', H', W') in the transposed, cropped, resampled space of
 * the configuration; props (nnu_preproc_case.h) holds the crop box and the
 * shapes in transposed order. Steps of nnu_export_case:
 *   1. resample every logit channel to shape_after_cropping with the
 *      probability resampler (order 1, order_z 0, separate-z rule of §4.4),
 *      current spacing = props->target_spacing, new = props->spacing_transposed;
 *      float16 in, float16 out (each channel interpolated in float64, one
 *      rounding); an unchanged shape passes the logits through untouched
 *   2. labels: argmax over channels, the lowest channel winning ties; over the
 *      float16 logits, or, when probabilities are requested, over the softmax
 *      probabilities (float32) as the reference does on that path.
 *      regions: sigmoid (float32), then regions_class_order[i] is painted where
 *      p_i > 0.5, in order (later regions overwrite earlier ones)
 *   3. un-crop into zeros of shape_before_cropping (u8, or u16 when there are
 *      >= 255 foreground labels) at the crop box
 *   4. transpose back (transpose_backward = inverse of transpose_forward)
 *   probabilities (optional): softmax (sigmoid) of the resampled logits in
 *   float32, un-cropped with background 1 / others 0 outside the box (regions:
 *   all 0), transposed back to (K, original axes).
 *
 * Memory (V' = resampled voxels, Vc = cropped voxels, V = original voxels, K
 * heads), besides the logits themselves:
 *   without probabilities (nnu_export_case with probs == NULL) the channels are
 *   resampled one at a time into a running argmax / region painting: one f16
 *   channel (2·Vc), the float64 buffers of the resampler (8·(V' + Vc)), the
 *   running maximum and labels (8·Vc) and the label map (1-2 bytes·V, twice
 *   while it is transposed back). Same labels as the full path, bit for bit.
 *   with probabilities: 2·K·Vc for the resampled logits, 4·K·Vc + 4·K·V for the
 *   probabilities (+ 4·K·V when the transpose is not the identity). */
#ifndef NNU_EXPORT_H
#define NNU_EXPORT_H

#include <stdint.h>

#include "nnu_preproc_case.h"
#include "nnu_resample.h"
#include "nnu_tensor.h"

#define NNU_EXPORT_MAX_REGIONS 64

typedef struct nnu_export_opts {
    nnu_resample_opts resample;          /* plans' resampling_fn_probabilities kwargs */
    int     transpose_forward[3];        /* plans' transpose_forward */
    int     n_foreground_labels;         /* labels other than background (dtype rule) */
    int     n_regions;                   /* 0: label model (softmax / argmax) */
    int32_t regions_class_order[NNU_EXPORT_MAX_REGIONS];
} nnu_export_opts;

/* Probability resampling, identity transpose, one foreground label, no regions. */
nnu_export_opts nnu_export_opts_default(void);

/* Step 1 alone: logits (K, D', H', W') (f16 or f32, any strides) -> *out
 * (K, shape_after_cropping) of the same dtype (logits itself, retained, when the
 * shape is unchanged). */
nnu_status nnu_export_resample_logits(const nnu_tensor *logits, const nnu_preproc_props *props,
                                      const nnu_resample_opts *opts, nnu_tensor **out);

/* Steps 2-4 on resampled logits (K, shape_after_cropping), f16 or f32.
 * *seg: owned (z, y, x) u8/u16 in the original image's axis order.
 * probs: NULL, or receives owned (K, z, y, x) f32 probabilities. */
nnu_status nnu_export_segmentation(const nnu_tensor *logits, const nnu_preproc_props *props,
                                   const nnu_export_opts *opts, nnu_tensor **seg, nnu_tensor **probs);

/* nnu_export_resample_logits followed by nnu_export_segmentation; the resampled
 * logits are released before the function returns. probs == NULL takes the
 * channel-streaming path (see the memory note above). */
nnu_status nnu_export_case(const nnu_tensor *logits, const nnu_preproc_props *props,
                           const nnu_export_opts *opts, nnu_tensor **seg, nnu_tensor **probs);

/* Fold ensemble in the reference's float16 arithmetic: acc = f16(acc + x)
 * (computed in float32, exact for two float16 values, one rounding). acc and x:
 * same shape, acc f16 or f32, x any float dtype, any strides. */
nnu_status nnu_export_accumulate(nnu_tensor *acc, const nnu_tensor *x);
/* acc = f16(f32(acc) / n) (float32 division, then rounded; f32 acc: no rounding). */
nnu_status nnu_export_divide(nnu_tensor *acc, int n);

#endif
