/* nnu_resample: the reference's resampling (nnunet-behaviour.md §4.3-§4.5,
 * test vectors Appendix L.1), i.e. resample_data_or_seg_to_shape with
 * scikit-image resize(order, mode='edge', anti_aliasing=False, clip=True) =
 * scipy ndimage.zoom(grid_mode=True, mode='nearest') + clipping.
 *
 * Shapes: volumes are (C, D, H, W) = (C, z, y, x); spacings and shapes are in
 * the same (z, y, x) order. Arithmetic is float64 (as the reference, which
 * converts to float64), results are stored in the input dtype.
 *
 * Implementation: zoom with B-spline prefilter on a tensor grid is separable
 * (the edge padding, the IIR prefilter and the tap evaluation are each a 1-D
 * operator per axis), so an n-D resize is three 1-D passes; only the
 * summation order differs from scipy (float64 rounding, ~1e-16 relative). */
#ifndef NNU_RESAMPLE_H
#define NNU_RESAMPLE_H

#include <stdint.h>

#include "nnu_tensor.h"

#define NNU_RESAMPLE_ANISO_THRESHOLD 3.0   /* ANISO_THRESHOLD of the reference */

typedef struct nnu_resample_opts {
    int    is_seg;            /* 1: label map: per label value (ascending) resize the
                                 0/1 mask with `order` and set voxels >= 0.5 to it */
    int    order;             /* spline order 0..5 (data 3, seg 1, logits 1) */
    int    order_z;           /* order along the separate-z axis (reference: 0) */
    int    force_separate_z;  /* -1: decide (reference default None), 0: never, 1: always */
    double aniso_threshold;   /* <= 0: NNU_RESAMPLE_ANISO_THRESHOLD */
} nnu_resample_opts;

/* Reference kwargs: data {order 3, order_z 0}, seg {is_seg, order 1, order_z 0},
 * probabilities/logits at export {order 1, order_z 0}; all with force_separate_z None. */
nnu_resample_opts nnu_resample_opts_data(void);
nnu_resample_opts nnu_resample_opts_seg(void);
nnu_resample_opts nnu_resample_opts_probabilities(void);

/* determine_do_sep_z_and_axis: returns the separate-z axis (0..2) or -1.
 * force: -1 auto, 0 never, 1 always (axis from current spacing). Auto: if
 * max/min(current) > threshold the axes with spacing == max (max/s == 1) of
 * the current spacing, else the same test on the new spacing; two or three
 * such axes -> -1. */
int nnu_resample_sep_z_axis(const double current[3], const double target[3], int force,
                            double threshold);

/* compute_new_shape: round_half_even(old_spacing / new_spacing * old_shape). */
void nnu_resample_new_shape(const int64_t old_shape[3], const double old_spacing[3],
                            const double new_spacing[3], int64_t new_shape[3]);

/* resample_data_or_seg_to_shape: in (C,D,H,W) any dtype -> *out (C, new_shape)
 * of the same dtype. If new_shape equals the shape, *out is `in` itself with
 * one more reference (the reference returns the same array). Channels are
 * processed one after another; each pass is OpenMP-parallel unless called
 * inside an nnu_parallel_for worker. Polls the interrupt flag per channel. */
nnu_status nnu_resample_to_shape(const nnu_tensor *in, const int64_t new_shape[3],
                                 const double current_spacing[3], const double new_spacing[3],
                                 const nnu_resample_opts *opts, nnu_tensor **out);

/* ---- float64 kernels (nnu_resample_kernel.c) ---- */

/* skimage resize of one float64 volume in (D,H,W) -> out (D',H',W') with
 * `order` and mode 'edge'; clip != 0: clip to [min, max] of `in`. Axes whose
 * size does not change are skipped (an identity up to rounding). */
nnu_status nnu_resize_f64(const double *in, const int64_t in_shape[3], double *out,
                          const int64_t out_shape[3], int order, int clip, int parallel);

/* One axis of the above without clipping (scipy map_coordinates on the
 * pixel-centre grid along `axis`, identity on the other axes): in (D,H,W) ->
 * out with shape[axis] replaced by n_out. */
nnu_status nnu_resize_axis_f64(const double *in, const int64_t shape[3], int axis, int64_t n_out,
                               int order, double *out, int parallel);

#endif
