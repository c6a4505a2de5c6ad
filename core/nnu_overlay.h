/* nnu_overlay: the PNG overlays of nnUNetv2_plot_overlay_pngs
 * (nnunetv2/utilities/overlay_plots.py; nnunet-behaviour.md §14): one slice of an
 * image with its segmentation painted over it, written as an RGB PNG (libpng).
 *
 * Slice choice (the reference's select_slice_to_plot2), on seg (Z, Y, X):
 *   classes = the distinct values > 0, ascending; fg[z][i] = voxels of class i in
 *   slice z, filled class after class, and column i is divided right after it is
 *   filled by the sum of the whole table at that moment (the earlier columns, already
 *   divided, plus column i: the reference's quirk, kept, so only the first class is a
 *   true fraction); the slice is the first argmax over z of the row means. Without
 *   foreground the slice is 0 (numpy's argmax of an all-NaN row mean).
 *
 * Rendering (generate_overlay), float32 as numpy on the reference's float32 image:
 *   img = (img - min) / max(img - min) * 255, three equal channels;
 *   the distinct values of the slice's segmentation, ascending (0 included), take
 *   the colours of color_cycle in that order (NNU_OVERLAY_COLORS; index modulo 15:
 *   the reference raises beyond 15 values), and every voxel of value v gets
 *   img += intensity * rgb(v) (computed in double, stored as float32);
 *   out = uint8(img / max(img) * 255) (truncation). Negative segmentation values
 *   (the -1 outside the nonzero mask of preprocessed data) count as 0. A constant
 *   image (max 0: NaN in the reference) gives a black picture.
 *
 * The PNG is 8-bit RGB, Y rows by X columns (plt.imsave of the (Y, X, 3) array),
 * written to a temporary name and renamed (core/nnu_png.c). */
#ifndef NNU_OVERLAY_H
#define NNU_OVERLAY_H

#include <stdint.h>

#include "nnu_status.h"
#include "nnu_tensor.h"

#define NNU_OVERLAY_N_COLORS 15
/* color_cycle of overlay_plots.py, as 0xRRGGBB */
extern const uint32_t NNU_OVERLAY_COLORS[NNU_OVERLAY_N_COLORS];

/* seg: (Z, Y, X), any integer or float dtype (values truncated to integers) ->
 * *slice in [0, Z). */
nnu_status nnu_overlay_select_slice(const nnu_tensor *seg, int64_t *slice);

/* image2d, seg2d: (Y, X), any dtypes (image converted to float32) -> *rgb a new
 * (Y, X, 3) u8 tensor (owned). */
nnu_status nnu_overlay_render(const nnu_tensor *image2d, const nnu_tensor *seg2d, double intensity, nnu_tensor **rgb);

/* select_slice + render on (Z, Y, X) volumes of equal shape; *slice receives the
 * chosen slice (may be NULL). */
nnu_status nnu_overlay_case(const nnu_tensor *image, const nnu_tensor *seg, double intensity, int64_t *slice,
                            nnu_tensor **rgb);

/* rgb: (H, W, 3) u8 -> path (8-bit RGB PNG). */
nnu_status nnu_png_write_rgb(const char *path, const nnu_tensor *rgb);
/* path -> *rgb a new (H, W, 3) u8 tensor (alpha dropped); for tests and tools. */
nnu_status nnu_png_read_rgb(const char *path, nnu_tensor **rgb);

/* One PNG of nnu_overlay_cases: from a raw image file and its label, or from a
 * preprocessed case file (CASE.nnu: its data and segmentation). */
typedef struct nnu_overlay_job {
    const char *image;      /* raw: the channel file (NULL: preprocessed) */
    const char *label;      /* raw: the segmentation file */
    const char *store;      /* preprocessed: the case file */
    int         channel;    /* the channel drawn: within the image file (raw) or the case file */
    const char *output;     /* the PNG */
} nnu_overlay_job;

/* Draws every job (nnu_overlay_case + nnu_png_write_rgb) on n_threads workers
 * (<= 0: all CPUs), one case in memory per worker; raw files are read with the reader
 * class `reader` (an nnu_image_reader; 0: by ending). Stops at the first failure,
 * whose message names the file. progress (may be NULL): +1 per case. */
struct nnu_progress;
nnu_status nnu_overlay_cases(const nnu_overlay_job *jobs, int64_t n, double intensity, int reader, int n_threads,
                             struct nnu_progress *progress);

#endif
