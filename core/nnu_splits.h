/* nnu_splits: cross-validation splits exactly as the reference creates
 * splits_final.json (nnunet-behaviour.md §1.4), on numpy's RandomState
 * (core/nnu_nprandom.h).
 *
 * defines: nnu_splits_sort_ids the reference's np.sort of case ids (byte order)
 *          nnu_splits_kfold    KFold(n_splits, shuffle=True, random_state=seed)
 *          nnu_splits_random   the 80:20 fallback for fold >= n_splits
 *          nnu_splits_all      fold "all": train = val = every case
 *
 * Splits work on indices into the sorted id list (0 .. n-1); the caller maps them
 * back to identifiers. Train and val lists are owned by the nnu_split and freed
 * with nnu_split_free. */
#ifndef NNU_SPLITS_H
#define NNU_SPLITS_H

#include <stdint.h>

#include "nnu_status.h"

/* ---- splits ---- */

typedef struct nnu_split {
    int64_t *train;   int64_t n_train;   /* indices into the sorted id list */
    int64_t *val;     int64_t n_val;
} nnu_split;

void nnu_split_free(nnu_split *s);       /* frees the lists; NULL-safe; zeroes *s */

/* order[n] receives the permutation that sorts ids by byte-wise comparison
 * (strcmp, i.e. Unicode code-point order of UTF-8: np.sort of Python strings).
 * Ties (duplicate ids) keep their input order. */
nnu_status nnu_splits_sort_ids(const char *const *ids, int64_t n, int64_t *order);

/* Fold `fold` (0 .. n_splits-1) of scikit-learn's KFold(n_splits, shuffle=True,
 * random_state=seed) on n samples: train and val both ascending. Fails (ERR_ARG)
 * for n < n_splits, as scikit-learn does. */
nnu_status nnu_splits_kfold(int64_t n, int n_splits, uint32_t seed, int fold, nnu_split *out);
/* All n_splits folds at once: out[n_splits]. */
nnu_status nnu_splits_kfold_all(int64_t n, int n_splits, uint32_t seed, nnu_split *out);

/* The reference's fallback for a requested fold >= the number of folds in
 * splits_final: RandomState(12345 + fold) permutation, train = its first
 * int(n * 0.8) entries in shuffled order, val = the rest ascending. */
nnu_status nnu_splits_random(int64_t n, int fold, nnu_split *out);

/* Fold "all": train = val = 0 .. n-1. */
nnu_status nnu_splits_all(int64_t n, nnu_split *out);

#endif
