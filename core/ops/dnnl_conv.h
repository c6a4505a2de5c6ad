/* dnnl_conv.h: the oneDNN machinery shared by conv.c and conv_transpose.c (CPU only).
 *
 * One cache entry per (geometry, direction): the primitive, the weights layout it
 * prefers, the reorder between that layout and the plain PyTorch layout of the
 * parameter block, and the buffers for reordered weights. Entries are created on
 * first use (the network's planning pass runs every shape once) and live for the
 * process, so a training step allocates nothing. Activations are passed in the
 * layouts named by the params (plain or nCdhw16c), never reordered here. */
#ifndef NNU_DNNL_CONV_H
#define NNU_DNNL_CONV_H

#include "nnu_backend.h"

enum { NNU_DNNL_FWD = 0, NNU_DNNL_BWD_DATA = 1, NNU_DNNL_BWD_WEIGHTS = 2 };

/* Runs direction dir of the (transposed, if p->transposed) convolution, in f32 or
 * with bf16 inputs and weights (bf16 = 1; outputs and accumulation f32).
 *   FWD:          a = x, b = NULL, out = y,  w = weights, bias = b (may be NULL)
 *   BWD_DATA:     a = gy, out = gx, w = weights
 *   BWD_WEIGHTS:  a = x, b = gy, w = gw (+=), bias = gb (+=, may be NULL) */
nnu_status nnu_dnnl_conv_run(int dir, const nnu_conv_params *p, int bf16, const float *a,
                             const float *b, float *out, float *w, float *bias);

#endif
