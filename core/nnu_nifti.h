/* nnu_nifti: NIfTI-1/-2 reading and writing (.nii, .nii.gz) with SimpleITK's geometry.
 * Callers use nnu_image.h, which dispatches here by the file's ending.
 *
 * Axis order (STYLE R10). NIfTI stores voxels with i (x) fastest, then j (y),
 * k (z), t. That memory layout *is* the project's (z, y, x) C-order layout with
 * x fastest, so the reader returns the same buffer with the shape reversed and
 * never transposes:
 *     3-D file dim = (nx, ny, nz)      -> tensor (z, y, x)
 *     4-D file dim = (nx, ny, nz, nt)  -> tensor (c, z, y, x), c = t (MSD channels)
 * Files with dim[0] < 3 are read as 3-D with the missing sizes 1; trailing
 * dimensions of size 1 beyond the 3rd are dropped (as ITK does); a 5-D..7-D
 * file with a non-trivial 5th+ dimension is ERR_UNSUPPORTED.
 *
 * Geometry is what SimpleITK reports for the file (the reference nnU-Net reads
 * with SimpleITK), derived from qform/sform by the rules of ITK's
 * NiftiImageIO::SetImageIOOrientationFromNIfTI (see nnu_nifti.c):
 *     spacing_itk = (dx, dy, dz) * unit scale (metres -> mm, microns -> mm)
 *     origin      = (-m[0][3], -m[1][3], m[2][3])     (RAS -> LPS)
 *     direction   = column-normalised m[0..2][0..2] with rows 0 and 1 negated
 * where m is the chosen sform or qform matrix, rounded to float first as ITK's
 * float mat44 holds it (for NIfTI-2 files too). `spacing` is spacing_itk reversed
 * to array order (z, y, x) with absolute values, like nnU-Net's SimpleITKIO.
 *
 * Errors: every failure names the file and the problem; corrupt, truncated or
 * lying files are ERR_FORMAT (ERR_IO when the OS refuses), never a crash. The
 * header is parsed and validated here before nifticlib sees any of it, and the
 * voxel bytes are read with zlib by this module (nifticlib only converts the
 * validated header into its nifti_image to compute qto_xyz/sto_xyz). */
#ifndef NNU_NIFTI_H
#define NNU_NIFTI_H

#include <stdint.h>

#include "nnu_image.h"

/* Header and geometry only (reads the first 348/540 bytes). */
nnu_status nnu_nifti_read_header(const char *path, nnu_image_info *info);

/* Voxels in the file's own dtype (uint32/uint64 widen to i64; scaled integer
 * files become f32 and scaled f64 files stay f64, as ITK does). out is an owned,
 * contiguous tensor of shape info->shape. info may be NULL. */
nnu_status nnu_nifti_read(const char *path, nnu_image_info *info, nnu_tensor **out);

/* As nnu_nifti_read, then converted to f32 (what nnU-Net's reader returns). */
nnu_status nnu_nifti_read_f32(const char *path, nnu_image_info *info, nnu_tensor **out);

/* Writes t ((z, y, x) or (c, z, y, x)) to path (.nii or .nii.gz, chosen by the
 * name) with the geometry of ref. When ref->hdr.version is 0 (no raw header, e.g.
 * geometry restored from saved properties) the header is built from
 * spacing_itk/origin/direction the way ITK's writer does (qform and sform codes
 * 1, quaternion from the direction); otherwise qform, sform, pixdim, xyzt_units,
 * intent and descrip are copied from ref->hdr unchanged. f16 is stored as f32.
 * The file is written to a temporary name and renamed into place. opts may be NULL. */
nnu_status nnu_nifti_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                           const nnu_image_write_opts *opts);

/* Fills info->hdr from info->spacing_itk/origin/direction as ITK's writer would
 * (used by nnu_nifti_write when ref->hdr.version == 0). */
nnu_status nnu_nifti_header_from_geometry(nnu_image_info *info);

/* The NIfTI datatype's name ("UINT8", "FLOAT32", ...) or "unknown". */
const char *nnu_nifti_datatype_name(int datatype);

#endif
