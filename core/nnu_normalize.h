/* nnu_normalize: the reference's intensity normalization schemes
 * (nnunet-behaviour.md §3, test vectors Appendix L.3), bit-exact in float32.
 *
 * Every scheme computes in float32 like the reference's numpy code: means and
 * sums use numpy's float32 pairwise summation (nnu_np_sum_f32), (x - mu) and the
 * division are two rounded float32 operations. Results match numpy to the last
 * bit; for datasets with a non-identity transpose use nnu_normalize_transposed. */
#ifndef NNU_NORMALIZE_H
#define NNU_NORMALIZE_H

#include <stdint.h>

#include "nnu_tensor.h"

typedef enum nnu_norm_scheme {
    NNU_NORM_ZSCORE = 0,   /* "ZScoreNormalization": per case (x - mean) / max(std, 1e-8) */
    NNU_NORM_CT,           /* "CTNormalization": clip to dataset percentiles, dataset mean/std */
    NNU_NORM_NONE,         /* "NoNormalization": float32 cast only */
    NNU_NORM_RESCALE_01,   /* "RescaleTo01Normalization": (x - min) / max(max', 1e-8) */
    NNU_NORM_RGB_01,       /* "RGBTo01Normalization": x / 255, requires 0 <= x <= 255 */
    NNU_NORM_COUNT
} nnu_norm_scheme;

/* Dataset foreground statistics of one channel (fingerprint), used by CT. */
typedef struct nnu_norm_ct_props {
    double mean, std, percentile_00_5, percentile_99_5;
} nnu_norm_ct_props;

/* Scheme for a dataset.json channel name, compared case-insensitively, not trimmed:
 * "ct" -> CT, "nonorm" -> NONE, "rescale_to_0_1" -> RESCALE_01, "rgb_to_0_1" -> RGB_01,
 * anything else (incl. "zscore", "MRI", " CT") -> ZSCORE. */
nnu_norm_scheme nnu_normalize_scheme_for_channel(const char *channel_name);
/* Reference class name, as written in plans ("ZScoreNormalization", ...). */
const char *nnu_normalize_scheme_name(nnu_norm_scheme s);
/* Inverse of nnu_normalize_scheme_name (exact match); ERR_ARG if unknown. */
nnu_status nnu_normalize_scheme_from_name(const char *class_name, nnu_norm_scheme *out);

/* Normalizes one channel in place. x: contiguous f32, any shape. mask_label:
 * optional (NULL = no mask), any dtype, same number of elements as x, C order
 * matching x; only voxels with mask_label >= 0 are used and changed (ZSCORE only:
 * the reference applies use_mask_for_norm to z-score alone; other schemes ignore
 * it). ct: required for CT, ignored otherwise. */
nnu_status nnu_normalize(nnu_tensor *x, nnu_norm_scheme s, const nnu_tensor *mask_label,
                         const nnu_norm_ct_props *ct);

/* As nnu_normalize for a channel the caller transposed with transpose_forward
 * (a permutation of the 3 spatial axes: transposed axis i = original axis
 * tf[i]) before cropping. The reference normalizes a transposed, cropped *view*,
 * and numpy sums a view in memory order, i.e. in the C order of the
 * untransposed array: here the unmasked z-score's mean and std are taken in that
 * order (one temporary copy), so they are bit-exact. The masked z-score gathers
 * x[mask] in the view's (transposed) order, which nnu_normalize already does.
 * x: contiguous f32 whose last 3 axes are the transposed spatial axes. */
nnu_status nnu_normalize_transposed(nnu_tensor *x, nnu_norm_scheme s, const nnu_tensor *mask_label,
                                    const nnu_norm_ct_props *ct, const int transpose_forward[3]);

/* numpy's float32 np.sum of a contiguous array: consecutive blocks of 8192
 * elements, each summed pairwise (8 interleaved partial sums below 128
 * elements), block results added in order to a float32 accumulator. */
float nnu_np_sum_f32(const float *x, int64_t n);
/* numpy x.mean() and x.std() (ddof 0) of a contiguous float32 array, with numpy's
 * exact rounding steps: mean = f32(sum / n) in double; std: d = x - f32(sum) /
 * f32(n) in float32, var = f32(np.sum(d*d) / n), std = sqrtf(var). n == 0: NaN.
 * Needs no temporary array. */
void nnu_np_mean_std_f32(const float *x, int64_t n, float *mean, float *std);

#endif
