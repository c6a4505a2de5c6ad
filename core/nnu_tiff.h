/* nnu_tiff: TIFF files (.tif/.tiff), read and written with libtiff as the reference's
 * NaturalImage2DIO (one page: (1, y, x) or RGB(A) (3|4, 1, y, x)) and Tiff3DIO (a
 * stack of pages: (z, y, x), spacing sidecar <name>.json written with 3-D files) see
 * them through tifffile; details and deviations in nnu_tiff.c and docs/png_tiff.md.
 * Callers use nnu_image.h, which dispatches here by the file's ending and applies
 * the reader class's rules on top. */
#ifndef NNU_TIFF_H
#define NNU_TIFF_H

#include "nnu_image.h"

nnu_status nnu_tiff_read_header(const char *path, nnu_image_info *info);
nnu_status nnu_tiff_read(const char *path, nnu_image_info *info, nnu_tensor **out);
nnu_status nnu_tiff_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts);

#endif
