/* nnu_resample_internal.h: pieces of the separable resize kernel
 * (nnu_resample_kernel.c) shared with the slab-streaming driver in
 * nnu_resample.c. Not a public API. */
#ifndef NNU_RESAMPLE_INTERNAL_H
#define NNU_RESAMPLE_INTERNAL_H

#include <stdint.h>

#include "nnu_status.h"

#define NNU_RS_NPAD 12    /* edge padding before the spline prefilter (order >= 2) */
#define NNU_RS_CHUNK 64   /* columns per prefilter work item */

/* One axis of a resize: n_in -> n_out with `order`; per output index o the
 * taps idx[o * ntaps + k] into the line of length len (edge-padded by npad on
 * both sides when order >= 2) and their weights w[...]. */
typedef struct nnu_rs_axis_plan {
    int      order, ntaps, npad, npoles;
    double   poles[2];
    int64_t  n_in, n_out, len;   /* len = n_in + 2 * npad */
    int64_t *idx;
    double  *w;
} nnu_rs_axis_plan;

nnu_status nnu_rs_plan_make(nnu_rs_axis_plan *p, int64_t n_in, int64_t n_out, int order);
void       nnu_rs_plan_free(nnu_rs_axis_plan *p);

/* B-spline prefilter of w interleaved lines of length n: c[k * w + j]. */
void nnu_rs_prefilter(double *c, int64_t n, int64_t w, const double *poles, int npoles);

#endif
