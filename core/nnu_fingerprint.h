/* nnu_fingerprint: the dataset fingerprint of nnU-Net v2 (nnunet-behaviour.md §2,
 * DatasetFingerprintExtractor): per training case crop to nonzero, shape after
 * crop, spacing, relative size after cropping and foreground intensity samples;
 * per channel statistics of all samples.
 *
 * Exactness: the samples are drawn exactly as the reference does,
 * numpy.random.RandomState(1234).choice(fg, num_samples, replace=True) per case,
 * i.e. MT19937 with numpy's legacy seeding and randint's masked rejection
 * sampling (core/nnu_nprandom.h); the statistics use numpy's float32 arithmetic
 * (pairwise sums, float32 mean/std, linear percentiles with a float32 b - a).
 * If some case has no foreground the reference's concatenation becomes float64
 * (np.concatenate with an empty list); that is reproduced as well.
 *
 * Memory: the samples of all cases are kept (C x ~1e8 floats = 400 MB per
 * channel, as the reference keeps them). Cases are read and cropped in
 * parallel with nnu_parallel_for; a progress bar shows on stderr. */
#ifndef NNU_FINGERPRINT_H
#define NNU_FINGERPRINT_H

#include <stdint.h>

#include "nnu_image.h"
#include "nnu_nprandom.h"
#include "nnu_tensor.h"

/* ---- per case ---- */
typedef struct nnu_fingerprint_case {
    int64_t shape_before[3];          /* spatial shape as read (z, y, x) */
    int64_t shape_after_crop[3];
    int64_t bbox[3][2];               /* half-open crop box */
    double  spacing[3];               /* (z, y, x) as read */
    double  relative_size_after_cropping;   /* prod(after) / prod(before) */
    int64_t n_foreground;             /* cropped label > 0 voxels */
} nnu_fingerprint_case;

/* One case from tensors: image (C,D,H,W) any dtype (converted to f32), label
 * (1,D,H,W) any dtype. spacing may be NULL (then zeros). If the case has
 * foreground and samples != NULL, writes for each channel c num_samples draws
 * to samples + c * sample_stride (RandomState(seed).choice over the foreground
 * voxels in C order, one generator per case shared by its channels in order). */
nnu_status nnu_fingerprint_case_tensors(const nnu_tensor *image, const nnu_tensor *label,
                                        const double spacing[3], int64_t num_samples, uint32_t seed,
                                        float *samples, int64_t sample_stride,
                                        nnu_fingerprint_case *out);

/* ---- statistics ---- */
typedef struct nnu_intensity_stats {
    double mean, median, std, min, max, percentile_99_5, percentile_00_5;
} nnu_intensity_stats;

/* The reference's dataset-level statistics of one channel's concatenated
 * samples: float(np.mean), np.percentile(x, (0.5, 50, 99.5)), float(np.std),
 * min, max, on a float32 array (as_float64 = 0) or a float64 array holding the
 * same values (as_float64 = 1). values is not modified.
 * n == 0: ERR_ARG (numpy raises on empty percentiles too). */
nnu_status nnu_fingerprint_intensity_stats(float *values, int64_t n, int as_float64,
                                           nnu_intensity_stats *out);

/* ---- whole dataset ---- */

/* Loads case i: *image (C,D,H,W) and *label (1,D,H,W) owned by the caller, spacing (z,y,x). */
typedef nnu_status (*nnu_fingerprint_load_fn)(int64_t i, void *ctx, nnu_tensor **image,
                                               nnu_tensor **label, double spacing[3]);

/* NIfTI loader context for nnu_fingerprint_load_nifti: paths of case i are
 * images[i * n_channels + c] and labels[i]. */
typedef struct nnu_fingerprint_files {
    int                n_channels;   /* channels per case (dataset.json channel_names) */
    int                n_images;     /* channel files per case (fewer when a file holds several) */
    const char *const *images;       /* n_images per case, case-major */
    const char *const *labels;
    nnu_image_reader   reader;       /* the reader class (AUTO: by ending) */
} nnu_fingerprint_files;

/* Reads a case with nnu_image_read_case (float32 image and label); spacing from the
 * first channel file; the channel count must be n_channels. */
nnu_status nnu_fingerprint_load_case(int64_t i, void *ctx, nnu_tensor **image, nnu_tensor **label,
                                     double spacing[3]);

typedef struct nnu_fingerprint_opts {
    double   num_samples_total;  /* 1e8: per case int(total // n_cases) */
    uint32_t seed;               /* 1234 */
    int      n_threads;          /* <= 0: number of CPUs */
    int      progress;           /* 1: progress bar on stderr */
} nnu_fingerprint_opts;

nnu_fingerprint_opts nnu_fingerprint_opts_default(void);

typedef struct nnu_fingerprint {
    int64_t               n_cases;
    int                   n_channels;
    int64_t               num_samples_per_case;
    nnu_fingerprint_case *cases;       /* n_cases */
    nnu_intensity_stats  *channels;    /* n_channels */
    double                median_relative_size_after_cropping;   /* np.median */
} nnu_fingerprint;

/* Runs the whole extraction; out is filled and owns its arrays (free with
 * nnu_fingerprint_free, also after a failure). */
nnu_status nnu_fingerprint_extract(int64_t n_cases, int n_channels, nnu_fingerprint_load_fn load,
                                   void *ctx, const nnu_fingerprint_opts *opts, nnu_fingerprint *out);
void nnu_fingerprint_free(nnu_fingerprint *fp);

#endif
