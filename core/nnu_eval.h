/* nnu_eval: confusion counts and overlap metrics of nnU-Net's evaluation
 * (nnunet-behaviour.md §12, test vectors L.7), plus numpy-exact means for the
 * folder summary.
 *
 * A "region" is a set of labels evaluated as one mask (mask = value ∈ set); a plain
 * label is a region with one element. Voxels whose reference value equals the
 * ignore label are excluded from every count. Label maps may have any integer or
 * float dtype (float values are rounded to the nearest integer); ref and pred
 * must have the same shape (any strides). */
#ifndef NNU_EVAL_H
#define NNU_EVAL_H

#include <stdint.h>

#include "nnu_tensor.h"

#define NNU_EVAL_MAX_REGION_LABELS 16

typedef struct nnu_eval_region {
    int     n;                                   /* 1 .. NNU_EVAL_MAX_REGION_LABELS */
    int64_t labels[NNU_EVAL_MAX_REGION_LABELS];  /* >= 0 */
} nnu_eval_region;

typedef struct nnu_confusion {
    int64_t tp, fp, fn, tn;                      /* voxel counts */
    int64_t n_ref, n_pred;                       /* tp + fn, tp + fp */
} nnu_confusion;

/* Counts for each of n regions in one pass over the voxels (a joint histogram of
 * (reference, prediction) values). has_ignore: whether ignore_label applies. */
nnu_status nnu_eval_confusion(const nnu_tensor *ref, const nnu_tensor *pred,
                              const nnu_eval_region *regions, int n, int has_ignore,
                              int64_t ignore_label, nnu_confusion *out);

/* 2TP / (2TP + FP + FN) and TP / (TP + FP + FN); NaN when TP + FP + FN = 0. */
double nnu_eval_dice(const nnu_confusion *c);
double nnu_eval_iou(const nnu_confusion *c);

/* numpy's float64 sum (np.add.reduce: 0.0 + pairwise summation with 8-way
 * unrolled blocks of ≤ 128), so means print exactly as the reference's. */
double nnu_eval_np_sum(const double *x, int64_t n);
/* np.mean (sum / n; NaN for n = 0) and np.nanmean (NaN entries count as 0 in
 * the sum and are left out of the count; NaN if all are NaN). */
double nnu_eval_np_mean(const double *x, int64_t n);
double nnu_eval_np_nanmean(const double *x, int64_t n);

#endif
