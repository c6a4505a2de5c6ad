/* nnu_png: PNG files (.png), read and written with libpng as the reference's
 * NaturalImage2DIO sees them (skimage.io.imread -> imageio -> Pillow): gray
 * (1, y, x) u8/u16, RGB(A) and palette (3|4, 1, y, x) u8; details and deviations in
 * nnu_png.c and docs/png_tiff.md. Callers use nnu_image.h, which dispatches here by
 * the file's ending and applies the reader class's rules on top. */
#ifndef NNU_PNG_H
#define NNU_PNG_H

#include "nnu_image.h"

nnu_status nnu_png_read_header(const char *path, nnu_image_info *info);
nnu_status nnu_png_read(const char *path, nnu_image_info *info, nnu_tensor **out);
nnu_status nnu_png_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts);

#endif
