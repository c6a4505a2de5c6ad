/* nnu_preproc_case: preprocessing of training cases as the reference's
 * DefaultPreprocessor.run_case (nnunet-behaviour.md Appendix C, §2-§4, §7.3),
 * the parallel driver that writes a whole configuration, and the revert
 * (resample back + un-crop + transpose back) of a preprocessed label map.
 *
 * Per case, in this order:
 *   1. read the channel files (f32, (C, z, y, x)) and the label (int16, (1, z, y, x))
 *   2. transpose data and label by [0, 1+tf0, 1+tf1, 1+tf2]; spacing likewise
 *   3. crop to the nonzero region (nnu_crop: label -1 outside the filled mask)
 *   4. target spacing = configuration spacing (2d: [original axis-0 spacing, s...]);
 *      new shape = round(spacing / target * shape)
 *   5. normalize every channel with its scheme (mask = label >= 0 when use_mask_for_norm)
 *   6. resample data (order 3) and label (per-label order 1) to the new shape,
 *      separate-z by the reference's rule (nnu_resample)
 *   7. class locations on the resampled label (see below)
 *   8. label stored as int8 (int16 if max > 127) by nnu_store
 *
 * Class locations (§7.3): per key (a foreground label, a region's label set, or
 * the ignore label's "annotated" set) the flat C-order list of voxels whose label
 * is in the key, n of them; k = max(min(10000, n), ceil(0.01 n)) of them are kept,
 * chosen exactly as numpy's RandomState(1234).choice(n, k, replace=False), i.e.
 * permutation(n)[:k]: arange(n) shuffled by Fisher-Yates from the end, swap
 * position i with j = random_interval(i) (MT19937 32-bit draws masked to the
 * smallest 2^b - 1 >= i, rejected while > i). One generator per case, shared
 * by the keys in order, so the selected voxels equal the reference's
 * (generator: core/nnu_nprandom.h).
 *
 * Memory per worker (V = voxels of the case as read, C channels, V' after
 * resampling): the channel files are read one at a time into the f32 image
 * (4CV bytes, plus the file's own dtype for one channel during conversion); the
 * crop holds the input and the cropped copy (<= 8CV) and the input is released
 * at once; normalization is in place; resampling holds the f32 input and output
 * (4CV + 4CV') plus float64 buffers for one channel (8V + 8V' and the spline
 * passes); class locations need 8 bytes per voxel of the largest class. Peak ~
 * 8CV + 4CV' + 24 max(V, V') bytes, i.e. a few copies of the case. */
#ifndef NNU_PREPROC_CASE_H
#define NNU_PREPROC_CASE_H

#include <stdint.h>

#include "nnu_image.h"
#include "nnu_normalize.h"
#include "nnu_nprandom.h"
#include "nnu_resample.h"
#include "nnu_store.h"
#include "nnu_tensor.h"

/* What a configuration of the plans asks for (built from nnUNetPlans.json by the recipe). */
typedef struct nnu_preproc_config {
    int                      n_channels;
    nnu_image_reader         reader;             /* the plans' image_reader_writer (AUTO: by ending) */
    const nnu_norm_scheme   *schemes;            /* n_channels */
    const int               *use_mask_for_norm;  /* n_channels (0/1) */
    const nnu_norm_ct_props *ct;                 /* n_channels; read for CT channels only */
    int                      transpose_forward[3];
    int                      spacing_ndim;       /* 3, or 2 for a 2d configuration */
    double                   spacing[3];         /* configuration spacing (transposed order) */
    nnu_resample_opts        data_opts, seg_opts;
    /* class-location keys: key k holds key_values[key_offsets[k] .. key_offsets[k+1]) */
    int                      n_keys;
    const int               *key_offsets;        /* n_keys + 1 */
    const int32_t           *key_values;
    uint32_t                 seed;               /* 1234 */
    int64_t                  max_locations;      /* 10000 */
    double                   min_coverage;       /* 0.01 */
} nnu_preproc_config;

/* Default resampling options, seed, 10000 and 0.01; the caller fills the rest. */
nnu_preproc_config nnu_preproc_config_default(void);

/* What is needed to revert (the reference's properties pickle, §2). Shapes and the
 * bbox are in transposed order; `spacing` is as read. */
typedef struct nnu_preproc_props {
    double         spacing[3];               /* original, reader order (z, y, x) */
    double         spacing_transposed[3];
    double         target_spacing[3];        /* transposed; 2d: [original axis 0, config...] */
    int64_t        shape_before_cropping[3];
    int64_t        bbox[3][2];               /* half-open, used for cropping */
    int64_t        shape_after_cropping[3];  /* = shape_after_cropping_and_before_resampling */
    int64_t        shape_after_resampling[3];
    int            has_nifti;
    nnu_image_info nifti;                    /* geometry and raw header of the first channel file */
} nnu_preproc_props;

/* Reads a case with the reader class `reader` (nnu_image_read_case): the channel
 * files into *image (C, z, y, x) f32, and the label (may be NULL) into *label
 * (1, z, y, x) i16. Shapes must agree. info (may be NULL) gets the first file's header. */
nnu_status nnu_preproc_case_load(const char *const *images, int n_images, const char *label,
                                 nnu_image_reader reader, nnu_tensor **image, nnu_tensor **label_out,
                                 nnu_image_info *info);

/* Steps 2-7 on tensors. STEALS image ((C,z,y,x) f32) and label ((1,z,y,x) i16 or
 * f32, or NULL = test case: a label is synthesised, no class locations), so that
 * they can be freed as early as possible. spacing: as read (z,y,x). Outputs:
 * *data (C, D', H', W') f32, *seg (1, D', H', W') i16, locs (may be NULL) and
 * props (its nifti fields are left untouched). */
nnu_status nnu_preproc_case_run(const nnu_preproc_config *cfg, nnu_tensor *image, nnu_tensor *label,
                                const double spacing[3], nnu_tensor **data, nnu_tensor **seg,
                                nnu_class_locations *locs, nnu_preproc_props *props);

/* Step 7 alone: class locations of seg (1, D, H, W) any integer-valued dtype. */
nnu_status nnu_preproc_class_locations(const nnu_preproc_config *cfg, const nnu_tensor *seg,
                                       nnu_class_locations *out);

/* The properties file (JSON) of a case, written to path.tmp and renamed:
 * case id, plans identifier, the fields of nnu_preproc_props with the reference's
 * key names (spacing, shape_before_cropping, bbox_used_for_cropping,
 * shape_after_cropping_and_before_resampling, sitk_stuff {spacing, origin,
 * direction}) plus shape_after_resampling, target_spacing, the class-location
 * counts per key and "nifti" (the raw header, in nnunet.nifti's info layout, so
 * that nifti.write can reuse it to export predictions). */
nnu_status nnu_preproc_write_properties(const char *path, const char *case_id, const char *plans_id,
                                        const nnu_preproc_props *props, const nnu_class_locations *locs);

/* ---- whole configuration ---- */

typedef struct nnu_preproc_case_spec {
    const char         *id;          /* output files <out_dir>/<id>.nnu and <id>.json */
    const char *const  *images;      /* n_images channel files */
    int                 n_images;
    const char         *label;       /* NULL: no label (not a training case) */
} nnu_preproc_case_spec;

typedef struct nnu_preproc_run_opts {
    const char          *out_dir;
    nnu_store_write_opts store;       /* plans_id, plans_hash, dtype, codec, level */
    int64_t              patch[3];    /* configuration patch size, for the chunk shape */
    int                  patch_ndim;  /* 0 (unknown), 2 or 3 */
    int                  n_threads;   /* <= 0: CPUs */
    int                  progress;    /* 1: progress bar with ETA on stderr */
    const char          *label;       /* progress label, e.g. "3d_fullres" */
    nnu_status          *case_status; /* optional, n_cases entries */
} nnu_preproc_run_opts;

/* Runs every case (load, preprocess, write <id>.json then <id>.nnu, both atomic)
 * with n_threads workers (nnu_parallel_for). Stops at the first failure or at
 * Ctrl-C (cases being written finish; the others are left absent). */
nnu_status nnu_preproc_dataset(const nnu_preproc_config *cfg, const nnu_preproc_case_spec *cases,
                               int64_t n_cases, const nnu_preproc_run_opts *opts);

/* Sets every element equal to `value` to 0, in place (any dtype, any strides).
 * For datasets whose background is a constant other than 0 (e.g. images that were
 * z-scored before distribution): crop-to-nonzero and use_mask_for_norm then see the
 * body or brain as the reference expects. Returns the number of changed elements in *n. */
nnu_status nnu_preproc_zero_value(nnu_tensor *t, double value, int64_t *n);

/* ---- revert ---- */

/* Preprocessed label map seg (1, D', H', W') -> label map of the original image
 * (z, y, x) as read, dtype i16: resample to shape_after_cropping with the seg
 * options (current = target spacing, new = transposed original spacing), -1 -> 0,
 * un-crop into shape_before_cropping filled with 0, transpose back. */
nnu_status nnu_preproc_revert_seg(const nnu_tensor *seg, const nnu_preproc_props *props,
                                  const int transpose_forward[3], const nnu_resample_opts *seg_opts,
                                  nnu_tensor **out);

#endif
