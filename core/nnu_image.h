/* nnu_image: medical and natural image files, read and written as the reference
 * nnU-Net's reader/writer classes do (nnunetv2.imageio).
 *
 * One entry point for every format; the file's ending picks the format:
 *     .nii .nii.gz     NIfTI-1/-2           nnu_nifti.c
 *     .mha .mhd        MetaImage            nnu_metaimage.c
 *     .nrrd .nhdr      NRRD                 nnu_nrrd.c
 *     .png             PNG                  nnu_png.c
 *     .tif .tiff       TIFF (2-D or 3-D)    nnu_tiff.c
 * and the *reader class* (what the plans call `image_reader_writer`) decides how
 * the file's pixels and geometry become an nnU-Net array and spacing:
 *     SimpleITKIO       ITK images (NIfTI, MetaImage, NRRD). A 3-D image becomes
 *                       (z, y, x) with spacing reversed to (sz, sy, sx); a 2-D image
 *                       becomes (1, y, x) with spacing (999 * max(sx, sy), sy, sx).
 *     NibabelIO         NIfTI; the same arrays and spacing as SimpleITKIO.
 *     NaturalImage2DIO  2-D .png/.tif: gray (1, y, x), RGB(A) (3|4, 1, y, x);
 *                       spacing (999, 1, 1); no geometry.
 *     Tiff3DIO          3-D .tif/.tiff (z, y, x); spacing from a sidecar JSON
 *                       {"spacing": [s0, s1, s2]} in array order: <case>.json next to
 *                       the channel files <case>_XXXX.tif (images) or next to the
 *                       label <case>.tif (segmentations); (1, 1, 1) without one.
 *
 * Axis order (STYLE R10): every reader returns C-order (z, y, x) or (c, z, y, x)
 * tensors with x fastest, which is how all these formats store voxels, so no
 * reader transposes. Geometry is SimpleITK's (spacing_itk, origin, direction in
 * ITK's x, y, z order, LPS); formats without geometry report spacing_itk 1,
 * origin 0 and the identity direction.
 *
 * Errors: every failure names the file and the problem (ERR_FORMAT for corrupt,
 * truncated or lying files, ERR_UNSUPPORTED for valid files this program does not
 * read, ERR_IO when the OS refuses), never a crash. Writers write to a temporary
 * name and rename it into place, so an interrupted write never leaves a partial
 * file under the final name. */
#ifndef NNU_IMAGE_H
#define NNU_IMAGE_H

#include <stdint.h>

#include "nnu_status.h"
#include "nnu_tensor.h"

typedef enum nnu_image_format {
    NNU_IMAGE_FORMAT_UNKNOWN = 0,
    NNU_IMAGE_FORMAT_NIFTI,
    NNU_IMAGE_FORMAT_METAIMAGE,
    NNU_IMAGE_FORMAT_NRRD,
    NNU_IMAGE_FORMAT_PNG,
    NNU_IMAGE_FORMAT_TIFF
} nnu_image_format;

/* The reference's reader/writer classes (the plans' `image_reader_writer`). */
typedef enum nnu_image_reader {
    NNU_IMAGE_READER_AUTO = 0,      /* by the file's ending (see nnu_image_reader_for_ending) */
    NNU_IMAGE_READER_SITK,          /* SimpleITKIO */
    NNU_IMAGE_READER_NIBABEL,       /* NibabelIO */
    NNU_IMAGE_READER_NATURAL2D,     /* NaturalImage2DIO */
    NNU_IMAGE_READER_TIFF3D         /* Tiff3DIO */
} nnu_image_reader;

/* The raw NIfTI header fields that define geometry and meaning, in native byte
 * order, widened to double/int64 (NIfTI-1 floats convert exactly). Writing a NIfTI
 * "with the geometry of a reference" read from a NIfTI copies these, so qform and
 * sform survive bit-exactly. version is 0 when the reference was not a NIfTI file. */
typedef struct nnu_nifti_header {
    int     version;            /* 1 or 2 (NIfTI-1 / NIfTI-2); 0: none */
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

/* What a reader reports about a file: the array it returns and the geometry. */
typedef struct nnu_image_info {
    nnu_image_format format;    /* the file's format */
    int       ndim;             /* 3: (z, y, x); 4: (c, z, y, x) */
    int64_t   shape[4];         /* array order, ndim entries */
    nnu_dtype dtype;            /* dtype the reader returns (after any intensity scaling) */
    int       scaled;           /* 1 when the file's intensity scaling was applied (NIfTI scl_*) */
    int       spatial_dims;     /* 2 or 3: the image's dimension as ITK sees it (2-D files
                                   are returned as (1, y, x) and written back as 2-D) */
    double    spacing[3];       /* (z, y, x), absolute values: nnU-Net's "spacing" as the
                                   reader class defines it (2-D: 999 * ... along z) */
    double    spacing_itk[3];   /* (x, y, z) as SimpleITK's GetSpacing() (2-D: z = 1) */
    double    origin[3];        /* (x, y, z) LPS, as SimpleITK's GetOrigin() (2-D: z = 0) */
    double    direction[9];     /* 3x3 row-major, as SimpleITK's GetDirection() (2-D:
                                   the 2x2 matrix in the upper left, 1 at [8]) */
    int       used_sform;       /* NIfTI: 1 geometry from sform, 0 from qform (or none) */
    nnu_nifti_header hdr;       /* NIfTI: the raw fields, for writing back; else version 0 */
} nnu_image_info;

/* Reader options; NULL means { NNU_IMAGE_READER_AUTO, image }. */
typedef struct nnu_image_read_opts {
    nnu_image_reader reader;
    int              is_seg;    /* 1: a segmentation (Tiff3DIO's sidecar is named after
                                   the file, not after the case) */
} nnu_image_read_opts;

/* Writer options; zero-initialise, then set what you need. */
typedef struct nnu_image_write_opts {
    int       compression;      /* zlib level where the format compresses: 1..9, 0 = the
                                   format's default, < 0 = uncompressed where the format
                                   allows (MetaImage, NRRD, TIFF) */
    int       segmentation;     /* 1: store as u8 if max < 255 else u16 (reference rule) */
    int       has_dtype;        /* 1: convert to `dtype` before writing */
    nnu_dtype dtype;
} nnu_image_write_opts;

/* Header and geometry only, as far as the format allows without decoding voxels. */
nnu_status nnu_image_read_header(const char *path, const nnu_image_read_opts *opts, nnu_image_info *info);

/* Voxels in the file's own dtype (see each format for widening rules). out is an
 * owned, contiguous tensor of shape info->shape. info may be NULL. */
nnu_status nnu_image_read(const char *path, const nnu_image_read_opts *opts, nnu_image_info *info,
                          nnu_tensor **out);

/* As nnu_image_read, then converted to f32 (what nnU-Net's readers return). */
nnu_status nnu_image_read_f32(const char *path, const nnu_image_read_opts *opts, nnu_image_info *info,
                              nnu_tensor **out);

/* One case as the reference's read_images + read_seg: the channel files stacked
 * into *image (C, z, y, x) f32, where a file may hold several channels (a 4-D
 * NIfTI, an RGB(A) PNG) and C is the total; the label (may be NULL) as *label
 * (1, z, y, x) f32. Every file must have the first file's spatial shape. info (may
 * be NULL) gets the first channel file's info (its spacing is the case's). */
nnu_status nnu_image_read_case(const char *const *images, int n_images, const char *label,
                               nnu_image_reader reader, nnu_tensor **image, nnu_tensor **label_out,
                               nnu_image_info *info);

/* Writes t ((z, y, x) or (c, z, y, x)) to path in the format its ending names, with
 * the geometry of ref (NULL: spacing 1, origin 0, identity). A ref with
 * spatial_dims 2 writes a 2-D image (t must then have z = 1), as the reference's
 * SimpleITKIO does. Formats without geometry ignore ref, except that a 3-D TIFF
 * written with a ref also gets Tiff3DIO's sidecar <name>.json holding ref->spacing.
 * PNG, TIFF and NRRD take (z, y, x) tensors only. opts may be NULL. */
nnu_status nnu_image_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                           const nnu_image_write_opts *opts);

/* The format a file name's ending names (case-insensitive), or UNKNOWN. */
nnu_image_format nnu_image_format_of(const char *path);
const char *nnu_image_format_name(nnu_image_format f);     /* "NIfTI", "MetaImage", ... */

/* Reader classes by the reference's names ("SimpleITKIO", ...); parse returns
 * AUTO for an unknown name (and for NULL). */
const char *nnu_image_reader_name(nnu_image_reader r);
nnu_image_reader nnu_image_reader_parse(const char *name);

/* 1 when the reader class reads files with this ending (its supported list in the
 * reference, plus the ITK siblings .nii .mhd .nhdr for SimpleITKIO). */
int nnu_image_reader_supports(nnu_image_reader r, const char *path);

/* Tiff3DIO's spacing sidecar for path: "<case>.json" for an image channel file
 * "<case>_XXXX.tif", "<name>.json" for a segmentation "<name>.tif". 0 or ERR_ARG. */
nnu_status nnu_image_sidecar_path(const char *path, int is_seg, char *buf, size_t n);

/* The tensor as a writer stores it: converted per opts (segmentation -> u8/u16 by
 * the reference's rule, checked to lie in 0..65535), contiguous, owned. */
nnu_status nnu_image_storage_tensor(const char *path, const nnu_tensor *t, const nnu_image_write_opts *o,
                                    nnu_tensor **out);

/* What every writer requires of t: host memory, 2..4 dimensions, no empty axis
 * (each format then checks the shapes it can store). ERR_ARG / ERR_SHAPE naming path. */
nnu_status nnu_image_check_writable(const char *path, const nnu_tensor *t);

/* Reverses the bytes of each of the n elements of `size` bytes in buf (big-endian data). */
void nnu_image_swap_bytes(void *buf, int64_t n, int size);

/* "<path>.part<pid>": the temporary name writers write to before rename(2). */
nnu_status nnu_image_temp_path(const char *path, char *buf, size_t n);

/* a (na bytes) then b (nb bytes; either may be empty) into path through its temporary
 * name and rename(2): a reader never sees a partial file. ERR_IO naming path. */
nnu_status nnu_image_write_file(const char *path, const void *a, size_t na, const void *b, int64_t nb);

/* 1 when the name ends with suffix, ignoring case (as the endings are matched) */
int nnu_image_ends_with(const char *name, const char *suffix);

/* Value scan for dataset checks: NaN/Inf presence, min/max over finite values
 * and the sorted distinct values (at most max_values; *n_values = -1 when there
 * are more). values may be NULL when max_values is 0. */
typedef struct nnu_image_scan_result {
    int64_t n_nan, n_inf;
    double  min, max;           /* over finite values; NaN when there are none */
    int     n_values;           /* number of distinct values, -1 if > max_values */
} nnu_image_scan_result;

nnu_status nnu_image_scan(const nnu_tensor *t, double *values, int max_values, nnu_image_scan_result *res);

#endif
