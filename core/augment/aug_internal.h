/* aug_internal.h: helpers shared by the files of core/augment/ (not a public header).
 *   aug_filter_axis   1-D correlation of a (D, H, W) volume along one axis with a
 *                     symmetric kernel, zero or torch-'reflect' padding
 *   aug_reflect       torch 'reflect' index (mirror without repeating the edge)
 *   aug_gauss_kernel  normalised exp(-x²/2σ²) taps for a given radius */
#ifndef AUG_INTERNAL_H
#define AUG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nnu_augment.h"

enum { AUG_PAD_ZERO = 0, AUG_PAD_REFLECT = 1 };

static inline int64_t aug_reflect(int64_t i, int64_t n) {
    if (n == 1) return 0;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

/* w[0 .. 2r]: exp(-x²/2σ²) at x = -r .. r, normalised to sum 1 (scipy/torch). */
void aug_gauss_kernel(double sigma, int radius, double *w);

#define AUG_FB 32   /* lines filtered together */

/* Doubles of scratch aug_filter_axis needs for axes up to n_max long. */
size_t aug_filter_scratch(int64_t n_max, int radius);

/* x (shape[0], shape[1], shape[2]) contiguous, in place: along `axis`,
 * y[i] = Σ_k w[k] · x[i + k − r] with out-of-range taps 0 (AUG_PAD_ZERO) or
 * reflected (AUG_PAD_REFLECT). scratch: aug_filter_scratch(shape[axis], r) doubles. */
void aug_filter_axis(float *x, const int64_t shape[3], int axis, const double *w, int radius, int pad,
                     double *scratch);

#endif
