/* nnu_crop: crop to the nonzero region, as the reference's crop_to_nonzero
 * (nnunet-behaviour.md §2, test vectors Appendix L.2), and its inverse.
 *
 * Shapes: image (C, D, H, W) any dtype; label (1, D, H, W) or NULL; mask (D, H, W) u8.
 * Bounding boxes are half-open [start, end) per spatial axis, in (z, y, x) order:
 * bbox[a][0] = start, bbox[a][1] = end. */
#ifndef NNU_CROP_H
#define NNU_CROP_H

#include <stdint.h>

#include "nnu_tensor.h"

/* mask[z,y,x] = 1 iff any channel of image (C,D,H,W) is != 0 (NaN counts as nonzero). */
nnu_status nnu_crop_nonzero_mask(const nnu_tensor *image, nnu_tensor **mask_out);

/* In place on a contiguous u8 (D,H,W) mask of 0/1: scipy binary_fill_holes with
 * face connectivity. A 0 voxel stays 0 iff a chain of face-adjacent 0 voxels
 * links it to the array border (outside counts as background); every other 0
 * becomes 1. A cavity touching the open background only by an edge or a corner
 * is filled; with D == 1 (2-D data as (1,H,W)) nothing is ever filled. Uses a
 * scanline flood fill (its stack holds runs, not voxels). */
nnu_status nnu_crop_fill_holes(nnu_tensor *mask);

/* Tight half-open bbox of mask != 0; an empty mask gives the full array. */
nnu_status nnu_crop_bbox(const nnu_tensor *mask, int64_t bbox[3][2]);

/* The reference's crop_to_nonzero:
 *   mask = fill_holes(nonzero_mask(image)); bbox = bbox(mask);
 *   image_out = image[:, bbox] (contiguous copy, same dtype);
 *   label_out = label[:, bbox] (same dtype) with label_out = -1 where the cropped
 *   mask is 0 and the label is 0 (non-zero labels outside the mask are kept);
 *   without a label (label == NULL): int8 (1,d,h,w) with 0 inside the mask, -1 outside.
 * The label dtype must be able to hold -1 (float or signed integer).
 * shape_before (optional, may be NULL) receives image's spatial shape. */
nnu_status nnu_crop_to_nonzero(const nnu_tensor *image, const nnu_tensor *label,
                               nnu_tensor **image_out, nnu_tensor **label_out,
                               int64_t bbox[3][2], int64_t shape_before[3]);

/* Inverse of the crop for any (C, d, h, w) tensor: out (C, shape_before) of the
 * same dtype, filled with `fill`, with `cropped` written at the bbox. The bbox
 * extent must equal cropped's spatial shape. */
nnu_status nnu_crop_uncrop(const nnu_tensor *cropped, const int64_t bbox[3][2],
                           const int64_t shape_before[3], double fill, nnu_tensor **out);

#endif
