/* nnu_pseudo_dice: the counts behind the reference trainer's online "pseudo Dice"
 * (nnunet-behaviour.md §7.5; nnUNetTrainer.validation_step).
 *
 * For one validation batch: logits (N, K, D, H, W) of the highest-resolution
 * output and the label map target (N, 1, D, H, W). Labels: the prediction is the
 * one-hot of argmax over K (first maximum wins, as torch.argmax), and tp/fp/fn
 * are summed over batch and space for every class 1 .. K-1 (background left
 * out). Regions: region r is predicted where sigmoid(logit_r) > 0.5, i.e.
 * logit_r > 0, and present in the target where the label is one of its labels;
 * every region is counted. With an ignore label, voxels whose target equals it
 * are left out of every count (the reference's mask).
 *
 * The counts of one batch are exact integers (returned as doubles); the trainer
 * sums them over the validation iterations and computes 2tp / (2tp + fp + fn). */
#ifndef NNU_PSEUDO_DICE_H
#define NNU_PSEUDO_DICE_H

#include <stdint.h>

#include "nnu_eval.h"
#include "nnu_tensor.h"

/* Label mode: out arrays have K - 1 entries (classes 1 .. K-1).
 * has_ignore / ignore_label: the dataset's ignore label. */
nnu_status nnu_pseudo_dice_labels(const nnu_tensor *logits, const nnu_tensor *target, int has_ignore,
                                  int64_t ignore_label, double *tp, double *fp, double *fn);

/* Region mode: K = n_regions logit channels; out arrays have n_regions entries. */
nnu_status nnu_pseudo_dice_regions(const nnu_tensor *logits, const nnu_tensor *target,
                                   const nnu_eval_region *regions, int n_regions, int has_ignore,
                                   int64_t ignore_label, double *tp, double *fp, double *fn);

#endif
