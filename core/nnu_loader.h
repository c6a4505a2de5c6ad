/* nnu_loader: training patch sampling (nnunet-behaviour.md §7.3, Appendix H) with
 * per-sample augmentation, produced by background threads into a ring of batches.
 *
 * Sample j of batch b (0-based, counted from the loader's creation):
 *   1. case = uniform with replacement over the loader's cases (the fold's training
 *      cases, in the order they were added: sorted ids in the reference);
 *   2. forced foreground iff j >= round(B·(1 − oversample)) (the reference's "last
 *      33 %"), or with probability `oversample` in the probabilistic variant;
 *   3. crop box of the initial (enlarged) patch S: need = S − patch, raised to
 *      S − shape where shape + need < S; lb = −⌈need/2⌉ (Python −need//2),
 *      ub = shape + ⌊need/2⌋ + need%2 − S;
 *      forced: a uniformly chosen eligible class key, one of its stored voxels v,
 *      lo = max(lb, v − S//2) (no upper clamp); else lo uniform in [lb, ub];
 *      with an ignore label ("annotated" key, values[0] == −1) non-forced samples
 *      are centred on an annotated voxel the same way;
 *   4. crop with padding (data 0, seg −1) and run the augmentation pipeline
 *      (nnu_augment.h) from the crop to the patch.
 * Every random decision of (b, j) comes from nnu_rng stream (seed, b, j), so batch
 * b is identical whatever the number of worker threads and whichever thread made it.
 *
 * Threads: n_workers threads each produce whole batches into ring slots; next()
 * hands batches out in order b = 0, 1, 2, ... and blocks only when batch b is not
 * ready. A failure in a worker stops the loader; next() then returns that status
 * with the worker's message. n_workers = 0 produces batches synchronously inside
 * next(). Workers poll nnu_interrupt_requested() between samples.
 *
 * Output: data (B, C, D, H, W) float32, seg (B, 1, D, H, W) int16 (2-D
 * configurations: D = 1).
 *
 * Cascade (n_onehot > 0, nnunet-behaviour.md §7.7, §8.2 step 13): every case also
 * carries the previous stage's segmentation (nnu_loader_set_prev_seg). It is
 * cropped with the same box (padding −1), goes through the pipeline as a second
 * seg channel (same spatial transform, mirroring, RemoveLabel as the label), and
 * is then turned into n_onehot one-hot channels (onehot_labels, in order) that are
 * appended after the image channels: data (B, C + n_onehot, D, H, W). The
 * intensity steps never see them (they are made after the pipeline), as the
 * reference's MoveSegAsOneHotToData at the end of the pipeline; with cascade_aug
 * the cascade-only augmentations (nnu_cascade_augment) follow. The tensors are owned references given to the caller;
 * the loader reuses a slot's memory only after the caller released them. */
#ifndef NNU_LOADER_H
#define NNU_LOADER_H

#include <stdint.h>

#include "nnu_augment.h"
#include "nnu_store.h"
#include "nnu_tensor.h"

#define NNU_LOADER_MAX_ONEHOT 64

typedef struct nnu_loader_opts {
    int               batch_size;
    int64_t           patch[3];          /* final patch (D, H, W); 2-D: D = 1 */
    int64_t           initial_patch[3];  /* crop size; zeros: = patch */
    double            oversample;        /* foreground fraction, 0.33 in nnU-Net */
    int               oversample_random; /* 1: each sample forced with p = oversample */
    uint64_t          seed;
    int               n_workers;         /* background threads; 0: synchronous */
    int               ring;              /* prepared batches; <= 0: 2 · max(1, n_workers) */
    const nnu_aug_pipeline *pipeline;    /* copied; NULL: crop at the patch size only */
    int64_t           first_batch;       /* index of the first batch next() returns */
    int               n_onehot;          /* cascade: one-hot channels of the previous stage, 0: none */
    int32_t           onehot_labels[NNU_LOADER_MAX_ONEHOT];   /* their labels (foreground labels) */
    int               cascade_aug;       /* 1: the cascade's binary-operator / component-removal
                                            augmentations on the one-hot channels (nnu_cascade.h,
                                            default parameters; training loaders only) */
} nnu_loader_opts;

nnu_loader_opts nnu_loader_opts_default(void);   /* B 2, oversample 0.33, seed 12345, 2 workers */

/* Per-sample record of a batch (optional output of nnu_loader_next). */
typedef struct nnu_loader_sample_info {
    int64_t case_index;   /* into the loader's cases */
    int64_t lo[3];        /* crop lower corner in the case (may be negative) */
    int     forced;       /* foreground was requested */
    int     key;          /* class-locations key used (-1: random crop) */
} nnu_loader_sample_info;

typedef struct nnu_loader nnu_loader;

nnu_status nnu_loader_new(const nnu_loader_opts *opts, nnu_loader **out);
/* Stops the workers (they finish their current sample) and frees everything. NULL-safe. */
void       nnu_loader_free(nnu_loader *ld);

/* Adds an in-memory case: data (C, D, H, W) f32 and seg (1, D, H, W) of any integer
 * or float dtype (both retained, any strides), locs copied (NULL: none). All cases
 * must have the same C. Only before the first nnu_loader_next. */
nnu_status nnu_loader_add_case(nnu_loader *ld, nnu_tensor *data, nnu_tensor *seg, const nnu_class_locations *locs);
/* Adds a preprocessed case file (nnu_store.h), opened with the given identifier
 * check; its class locations are read now, its voxels on demand. */
nnu_status nnu_loader_add_store(nnu_loader *ld, const char *path, const char *expect_id, uint64_t expect_hash);
/* Cascade: the previous stage's segmentation of case `case_index` (0-based, in the
 * order the cases were added): (1, D, H, W) or (D, H, W) of the case's spatial
 * shape, any dtype holding integers (copied as int16). Needed for every case when
 * n_onehot > 0; only before the first nnu_loader_next. */
nnu_status nnu_loader_set_prev_seg(nnu_loader *ld, int64_t case_index, const nnu_tensor *seg);
int64_t    nnu_loader_num_cases(const nnu_loader *ld);
int        nnu_loader_batch_size(const nnu_loader *ld);
/* New zeroed batch tensors of the loader's shapes (needs at least one case);
 * data has C + n_onehot channels. */
nnu_status nnu_loader_new_batch(const nnu_loader *ld, nnu_tensor **data, nnu_tensor **seg);

/* Next batch (starts the workers on the first call). *data, *seg: owned. info:
 * optional, batch_size entries. */
nnu_status nnu_loader_next(nnu_loader *ld, nnu_tensor **data, nnu_tensor **seg, nnu_loader_sample_info *info);

/* Index of the batch the next call to nnu_loader_next returns. */
int64_t    nnu_loader_next_index(const nnu_loader *ld);
/* Makes nnu_loader_next continue at batch b (a resumed run): workers are stopped,
 * prepared batches dropped, a recorded worker failure (e.g. ERR_INTERRUPTED) is
 * cleared, and production restarts at b on the next call. A no-op when b is
 * already next and nothing failed. */
nnu_status nnu_loader_seek(nnu_loader *ld, int64_t b);

/* Produces batch b synchronously into caller tensors (data (B, C, patch) f32, seg
 * (B, 1, patch) i16, contiguous); the same bytes next() returns for batch b. Does
 * not touch the ring; safe to call while workers run. */
nnu_status nnu_loader_make_batch(nnu_loader *ld, int64_t b, nnu_tensor *data, nnu_tensor *seg,
                                 nnu_loader_sample_info *info);

/* The crop box rule alone (step 3 above), for tests and tools: lb/ub per axis. */
void nnu_loader_bbox_range(const int64_t shape[3], const int64_t patch[3], const int64_t initial[3], int64_t lb[3],
                           int64_t ub[3]);

#endif
