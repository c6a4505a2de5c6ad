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

#include "nnu_status.h"
#include "nnu_tensor.h"

#define NNU_CASCADE_MAX_LABELS 64

/* out[k·n + i] = (seg[i] == labels[k]) ? 1 : 0 for k < n_labels, i < n. */
void nnu_cascade_onehot_i16(const int16_t *seg, int64_t n, int n_labels, const int32_t *labels, float *out);

/* *out = new contiguous (C + n_labels, D, H, W) f32: data's channels, then the
 * one-hot channels of seg for labels[0..n_labels). data and seg: any strides. */
nnu_status nnu_cascade_stack_onehot(const nnu_tensor *data, const nnu_tensor *seg, int n_labels,
                                    const int32_t *labels, nnu_tensor **out);

#endif
