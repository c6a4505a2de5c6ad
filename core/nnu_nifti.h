/* nnu_nifti: NIfTI-1/-2 reading and writing (.nii, .nii.gz) with SimpleITK's geometry.
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

#include "nnu_status.h"
#include "nnu_tensor.h"

/* The raw header fields that define geometry and meaning, in native byte order,
 * widened to double/int64 (NIfTI-1 floats convert exactly). Writing "with the
 * geometry of a reference" copies these, so qform and sform survive bit-exactly. */
typedef struct nnu_nifti_header {
    int     version;            /* 1 or 2 (NIfTI-1 / NIfTI-2) */
    int     datatype;           /* NIfTI DT_* code on disk */
    int64_t dim[8];             /* dim[0] = number of dimensions */
    double  pixdim[8];          /* pixdim[0] = qfac (sign), [1..3] = dx, dy, dz */
    double  vox_offset;
    double  scl_slope, scl_inter;
    double  cal_min, cal_max;
    int     qform_code, sform_code;
    double  quatern_b, quatern_c, quatern_d;
    double  qoffset_x, qoffset_y, qoffset_z;
    double  srow[3][4];         /* srow_x, srow_y, srow_z */
    int     xyzt_units;
    int     intent_code;
    double  intent_p1, intent_p2, intent_p3;
    char    intent_name[17];    /* NUL-terminated copies */
    char    descrip[81];
    char    aux_file[25];
} nnu_nifti_header;

typedef struct nnu_nifti_info {
    int       ndim;             /* 3: (z, y, x); 4: (c, z, y, x) */
    int64_t   shape[4];         /* array order, ndim entries */
    nnu_dtype dtype;            /* dtype nnu_nifti_read returns (after scl_* scaling) */
    int       scaled;           /* 1 when scl_slope/scl_inter were applied */
    double    spacing[3];       /* (z, y, x), absolute values: nnU-Net's "spacing" */
    double    spacing_itk[3];   /* (x, y, z) as SimpleITK's GetSpacing() */
    double    origin[3];        /* (x, y, z) LPS, as SimpleITK's GetOrigin() */
    double    direction[9];     /* 3x3 row-major, as SimpleITK's GetDirection() */
    int       used_sform;       /* 1: geometry from sform, 0: from qform (or none) */
    nnu_nifti_header hdr;       /* raw fields, for writing back */
} nnu_nifti_info;

/* Header and geometry only (reads the first 348/540 bytes). */
nnu_status nnu_nifti_read_header(const char *path, nnu_nifti_info *info);

/* Voxels in the file's own dtype (uint32/uint64 widen to i64; scaled integer
 * files become f32 and scaled f64 files stay f64, as ITK does). out is an owned,
 * contiguous tensor of shape info->shape. info may be NULL. */
nnu_status nnu_nifti_read(const char *path, nnu_nifti_info *info, nnu_tensor **out);

/* As nnu_nifti_read, then converted to f32 (what nnU-Net's reader returns). */
nnu_status nnu_nifti_read_f32(const char *path, nnu_nifti_info *info, nnu_tensor **out);

/* Writer options; zero-initialise, then set what you need. */
typedef struct nnu_nifti_write_opts {
    int       compression;      /* zlib level for .nii.gz: 1..9, 0 = default (6) */
    int       segmentation;     /* 1: store as u8 if max < 255 else u16 (reference rule) */
    int       has_dtype;        /* 1: convert to `dtype` before writing */
    nnu_dtype dtype;
} nnu_nifti_write_opts;

/* Writes t ((z, y, x) or (c, z, y, x)) to path (.nii or .nii.gz, chosen by the
 * name) with the geometry of ref. When ref->hdr.version is 0 (no raw header, e.g.
 * geometry restored from saved properties) the header is built from
 * spacing_itk/origin/direction the way ITK's writer does (qform and sform codes
 * 1, quaternion from the direction); otherwise qform, sform, pixdim, xyzt_units,
 * intent and descrip are copied from ref->hdr unchanged. f16 is stored as f32.
 * The file is written to a temporary name and renamed into place. opts may be NULL. */
nnu_status nnu_nifti_write(const char *path, const nnu_tensor *t, const nnu_nifti_info *ref,
                           const nnu_nifti_write_opts *opts);

/* Fills info->hdr from info->spacing_itk/origin/direction as ITK's writer would
 * (used by nnu_nifti_write when ref->hdr.version == 0). */
nnu_status nnu_nifti_header_from_geometry(nnu_nifti_info *info);

/* Value scan for dataset checks: NaN/Inf presence, min/max over finite values
 * and the sorted distinct values (at most max_values; *n_values = -1 when there
 * are more). values may be NULL when max_values is 0. */
typedef struct nnu_nifti_scan_result {
    int64_t n_nan, n_inf;
    double  min, max;           /* over finite values; NaN when there are none */
    int     n_values;           /* number of distinct values, -1 if > max_values */
} nnu_nifti_scan_result;

nnu_status nnu_nifti_scan(const nnu_tensor *t, double *values, int max_values,
                          nnu_nifti_scan_result *res);

/* The NIfTI datatype's name ("UINT8", "FLOAT32", ...) or "unknown". */
const char *nnu_nifti_datatype_name(int datatype);

#endif
