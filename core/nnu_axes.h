/* nnu_axes.h: the one axis convention of the project (STYLE R10).
 *
 * Tensors are (N, C, D, H, W) = (batch, channel, z, y, x) with W (x) fastest,
 * i.e. numpy's order for a SimpleITK image. Spacing, patch size, strides and
 * bounding boxes are always given in the same (z, y, x) order. The NIfTI reader
 * (nnu_nifti.c) is the only place that converts from NIfTI's i-fastest (x, y, z). */
#ifndef NNU_AXES_H
#define NNU_AXES_H

enum { NNU_AX_N = 0, NNU_AX_C = 1, NNU_AX_D = 2, NNU_AX_H = 3, NNU_AX_W = 4 };

/* For a 3-D spatial array (no N, C): */
enum { NNU_SP_Z = 0, NNU_SP_Y = 1, NNU_SP_X = 2 };

#endif
