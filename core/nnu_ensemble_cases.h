/* nnu_ensemble_cases: nnUNetv2_ensemble's per-case work for many cases at once on
 * a worker pool (-np): for each case the mean of its .npz probabilities
 * (nnu_ensemble_mean_npz), the segmentation (argmax or regions, nnu_ensemble.h) and
 * the NIfTI written with the case's geometry. The result of every case is the same
 * as the one-case-at-a-time path; only the order in which cases finish differs.
 *
 * Memory: each worker holds one case's mean probabilities (K x voxels float32) plus
 * the file being added, so peak memory grows with n_threads, as the reference's
 * process pool does. */
#ifndef NNU_ENSEMBLE_CASES_H
#define NNU_ENSEMBLE_CASES_H

#include "nnu_image.h"
#include "nnu_progress.h"
#include "nnu_tensor.h"

typedef struct nnu_ensemble_case {
    const char *const *paths;     /* the case's .npz files, in folder order */
    int                n_paths;
    const char        *output;    /* segmentation file (.nii.gz, .nii) */
    nnu_image_info     geometry;  /* header or spacing_itk/origin/direction (nnu_nifti_write) */
    const char        *probabilities;   /* NULL, or an .npz for the mean ('probabilities',
                                           float32: what --save_npz keeps) */
} nnu_ensemble_case;

typedef struct nnu_ensemble_cases_opts {
    const char    *key;           /* npz member; NULL: "probabilities" */
    int            channels;      /* K the dataset expects (labels incl. background, or regions) */
    const int32_t *class_order;   /* regions_class_order for region models; NULL: argmax */
    int            n_threads;     /* <= 0: all CPUs */
    nnu_progress  *progress;      /* optional, +1 per finished case */
} nnu_ensemble_cases_opts;

/* Merges every case; stops handing out cases after the first failure and returns
 * it (its message names the file). */
nnu_status nnu_ensemble_merge_cases(const nnu_ensemble_case *cases, int n_cases,
                                    const nnu_ensemble_cases_opts *opts);

#endif
