/* nnu_tiff: TIFF files (.tif/.tiff), read and written as SimpleITK / the reference's
 * reader classes see them. Callers use nnu_image.h, which dispatches here by the
 * file's ending and applies the reader class's rules on top. */
#ifndef NNU_TIFF_H
#define NNU_TIFF_H

#include "nnu_image.h"

nnu_status nnu_tiff_read_header(const char *path, nnu_image_info *info);
nnu_status nnu_tiff_read(const char *path, nnu_image_info *info, nnu_tensor **out);
nnu_status nnu_tiff_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts);

#endif
