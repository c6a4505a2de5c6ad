/* nnu_cascade: the previous-stage segmentation as extra input channels of a
 * cascade stage (3d_cascade_fullres; nnunet-behaviour.md §7.7, §9.1, Appendix I).
 *
 * The low-resolution stage's prediction, brought to the full-resolution
 * preprocessed grid, is one-hot encoded for every foreground label and appended
 * after the image channels (the reference's MoveSegAsOneHotToData in training,
 * convert_labelmap_to_one_hot at validation and inference). Values that are no
 * foreground label (background 0, the −1 of cropped-away voxels) give all zeros.
 *
 * Shapes: data (C, D, H, W) float32; seg (1, D, H, W) or (D, H, W) of any dtype
 * holding integers; out (C + K, D, H, W) float32, K = number of labels. */
#ifndef NNU_CASCADE_H
#define NNU_CASCADE_H

#include <stdint.h>

#include "nnu_augment.h"
#include "nnu_rng.h"
#include "nnu_status.h"
#include "nnu_tensor.h"

#define NNU_CASCADE_MAX_LABELS 64

/* out[k·n + i] = (seg[i] == labels[k]) ? 1 : 0 for k < n_labels, i < n. */
void nnu_cascade_onehot_i16(const int16_t *seg, int64_t n, int n_labels, const int32_t *labels, float *out);

/* *out = new contiguous (C + n_labels, D, H, W) f32: data's channels, then the
 * one-hot channels of seg for labels[0..n_labels). data and seg: any strides. */
nnu_status nnu_cascade_stack_onehot(const nnu_tensor *data, const nnu_tensor *seg, int n_labels,
                                    const int32_t *labels, nnu_tensor **out);

/* ---- cascade-only training augmentations (§8.2 step 13, after the one-hot) ----
 * On the K one-hot channels (K, D, H, W) of one sample (0/1 floats):
 *   1. with probability p_binary_op: the channels in random order, each with
 *      probability p_binary_per_label: one of binary dilation / erosion / closing /
 *      opening (uniform choice) with a ball of radius r ~ uniform(strel_lo, strel_hi)
 *      (the offsets d with |d|² <= r²; axes of size 1 are left out, so a 2-D patch
 *      (1, H, W) gets a disk); voxels the operation adds to a channel are removed from
 *      every other channel (the one-hot property is kept). Border as scipy's: outside
 *      the patch counts as background (erosion eats in from the border).
 *   2. with probability p_remove_component: each channel with probability
 *      p_remove_per_label: one of its connected components (26-connectivity; 8 in a
 *      2-D patch) smaller than max_component_fraction of the patch voxels, chosen
 *      uniformly, is set to 0 (fill_with_other_class_p = 0).
 * Computed exactly with squared Euclidean distance transforms (Felzenszwalb-
 * Huttenlocher), so the cost does not grow with the radius. Scratch from ws. */
typedef struct nnu_cascade_aug_params {
    double p_binary_op;             /* 0.4 */
    double p_binary_per_label;      /* 0.5 */
    double strel_lo, strel_hi;      /* 1, 8 (radius in voxels) */
    double p_remove_component;      /* 0.2 */
    double p_remove_per_label;      /* 0.5 */
    double max_component_fraction;  /* 0.15 */
} nnu_cascade_aug_params;

void nnu_cascade_aug_params_default(nnu_cascade_aug_params *p);

/* Binary morphology of one mask (n = D·H·W bytes, 0/1) into out (may not alias):
 * op 0 dilation, 1 erosion, 2 closing, 3 opening; ball radius r (see above). */
nnu_status nnu_cascade_morph(const uint8_t *mask, uint8_t *out, const int64_t shape[3], int op, double r,
                             nnu_aug_ws *ws);

/* The two augmentations above, in place on onehot (K, shape). */
nnu_status nnu_cascade_augment(float *onehot, int K, const int64_t shape[3], const nnu_cascade_aug_params *p,
                               nnu_rng *rng, nnu_aug_ws *ws);

#endif
