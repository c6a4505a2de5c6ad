/* nnu_metaimage: MetaImage files (.mha/.mhd), read and written as SimpleITK / the reference's
 * reader classes see them. Callers use nnu_image.h, which dispatches here by the
 * file's ending and applies the reader class's rules on top.
 *
 * Reading (nnu_metaimage_read_header / _read): scalar images of 2 to 4 dimensions
 * (more with trailing size-1 dimensions), raw or zlib-compressed, little- or
 * big-endian, in one .mha file or a .mhd header with its data file. Returned:
 *   2-D   (1, y, x), spatial_dims 2, geometry's z: spacing 1, origin 0, direction [8] = 1
 *   3-D   (z, y, x)
 *   4-D   (c, z, y, x): DimSize[3] > 1 is the channel axis (like a 4-D NIfTI); the
 *         geometry is the upper-left 3-D part of ITK's 4-D geometry
 * dtype: MET_UCHAR u8, MET_CHAR i8, MET_SHORT i16, MET_USHORT u16, MET_INT and
 * MET_LONG (4 bytes in MetaIO) i32, MET_UINT / MET_ULONG i64 (widened),
 * MET_LONG_LONG i64, MET_ULONG_LONG i64 (ERR_UNSUPPORTED if a voxel does not fit),
 * MET_FLOAT f32, MET_DOUBLE f64. See nnu_metaimage.c for the header rules and what
 * is not read; docs/metaimage.md for a summary.
 *
 * Writing (nnu_metaimage_write): the header SimpleITK writes (same keys, order and
 * 17-digit numbers), little-endian; .mha holds the data (ElementDataFile = LOCAL),
 * .mhd names "<name>.zraw" (compressed) or "<name>.raw" next to it. Compressed
 * with zlib by default, as the reference writes segmentations
 * (sitk.WriteImage(..., useCompression=True)): opts->compression 1..9 is the
 * level, 0 (or opts NULL) MetaIO's default level 2, and a negative value writes
 * uncompressed data. A (c, z, y, x) tensor becomes a 4-D image; a ref with
 * spatial_dims 2 and a (1, y, x) tensor a 2-D one. */
#ifndef NNU_METAIMAGE_H
#define NNU_METAIMAGE_H

#include "nnu_image.h"

nnu_status nnu_metaimage_read_header(const char *path, nnu_image_info *info);
nnu_status nnu_metaimage_read(const char *path, nnu_image_info *info, nnu_tensor **out);
nnu_status nnu_metaimage_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts);

#endif
