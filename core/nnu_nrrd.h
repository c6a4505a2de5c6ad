/* nnu_nrrd: NRRD files (.nrrd/.nhdr), read and written as SimpleITK / the reference's
 * reader classes see them. Callers use nnu_image.h, which dispatches here by the
 * file's ending and applies the reader class's rules on top.
 *
 * Read: scalar 2-D and 3-D images, every NrrdIO type name, raw/gzip/ascii encodings,
 * attached or detached (`data file`) data, ITK's geometry (RAS/LAS converted to
 * LPS; old-style spacings and axis mins). Multi-component kinds, 4-D, bzip2/hex and
 * multi-file data are ERR_UNSUPPORTED. Written: as SimpleITK with compression
 * (NRRD0004, LPS, gzip; .nhdr + <base>.raw.gz). Details in docs/nrrd.md. */
#ifndef NNU_NRRD_H
#define NNU_NRRD_H

#include "nnu_image.h"

nnu_status nnu_nrrd_read_header(const char *path, nnu_image_info *info);
nnu_status nnu_nrrd_read(const char *path, nnu_image_info *info, nnu_tensor **out);
nnu_status nnu_nrrd_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts);

#endif
