/* nnu_ensemble: the arithmetic of nnUNetv2_ensemble (nnunetv2/ensembling/ensemble.py,
 * nnunet-behaviour.md §11): the mean of several probabilities arrays and its
 * conversion to a segmentation by the label manager.
 *
 * Shapes: probabilities are (K, z, y, x) (or any (K, ...)): K = classes incl.
 * background (softmax models) or regions (sigmoid models), then the original
 * image's axes. Segmentations are the trailing axes (...).
 *
 * Arithmetic as the reference (numpy float32): avg = p1 (cast to float32), then
 * avg += p_i in file order, then avg /= n — every step one float32 rounding. */
#ifndef NNU_ENSEMBLE_H
#define NNU_ENSEMBLE_H

#include <stdint.h>

#include "nnu_tensor.h"

/* acc += x, elementwise in float32. acc: f32, contiguous; x: same shape, any
 * float or integer dtype, any strides (converted to float32 first). */
nnu_status nnu_ensemble_add(nnu_tensor *acc, const nnu_tensor *x);

/* acc /= (float)n in float32 (numpy's `avg /= len(files)` on a float32 array).
 * acc: f32, contiguous; n >= 1. */
nnu_status nnu_ensemble_divide(nnu_tensor *acc, int64_t n);

/* Mean of member `key` ("probabilities") of n .npz files, in file order:
 * *out = owned contiguous f32 (K, ...). Every file must hold the same shape; a
 * mismatch is ERR_SHAPE naming both files and shapes. Polls the interrupt flag
 * between files. */
nnu_status nnu_ensemble_mean_npz(const char *const *paths, int n, const char *key, nnu_tensor **out);

/* Label models (LabelManager.convert_probabilities_to_segmentation without
 * regions): *seg = argmax over axis 0 of probs (K, ...), the lowest index winning
 * ties, a NaN counting as the maximum (numpy's argmax). *seg is owned, (...),
 * u8 when K <= 256, else u16 (K <= 65536). probs: any float dtype, any strides. */
nnu_status nnu_ensemble_argmax(const nnu_tensor *probs, nnu_tensor **seg);

/* Region models: *seg = zeros (...), then for i = 0..n-1 in order:
 * seg[probs[i] > 0.5] = class_order[i] (later regions overwrite earlier ones).
 * probs (n, ...), any float dtype; class_order values in 0..65535; *seg owned,
 * u8 when every value is < 256, else u16. */
nnu_status nnu_ensemble_regions(const nnu_tensor *probs, const int32_t *class_order, int n,
                                nnu_tensor **seg);

#endif
