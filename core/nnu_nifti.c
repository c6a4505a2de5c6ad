/* nnu_nifti.c: NIfTI-1/-2 reading: header validation, SimpleITK geometry, voxels.
 *
 * Layout of a single-file NIfTI (.nii, or the same bytes gzip-compressed):
 *     [0, 348) NIfTI-1 header  | [0, 540) NIfTI-2 header
 *     4-byte extender + optional extensions up to vox_offset
 *     [vox_offset, vox_offset + nvox * bytes_per_voxel) voxels, x fastest
 * Everything goes through zlib's gzread, which also reads uncompressed files.
 *
 * Why the header is validated here and not by nifticlib: nifticlib prints to
 * stderr and returns NULL, loses the reason, and trusts dims/vox_offset when it
 * allocates. So: parse and check the raw header (sizeof_hdr, magic, dim,
 * datatype, vox_offset, the data size against the file), then let nifticlib's
 * nifti_convert_n?hdr2nim build qto_xyz/sto_xyz from the validated header, and
 * read the voxels ourselves so that a short or corrupt stream gets a precise
 * message. Writing lives in nnu_nifti_write.c. */
#include "nnu_nifti.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nifti2_io.h>
#include <zlib.h>

_Static_assert(sizeof(nifti_1_header) == 348, "nifti_1_header must be 348 bytes");
_Static_assert(sizeof(nifti_2_header) == 540, "nifti_2_header must be 540 bytes");

/* The deflate format cannot expand data by more than ~1032:1, so a header that
 * promises more bytes than this times the compressed size is lying. */
#define NNU_GZ_MAX_RATIO 1100

const char *nnu_nifti_datatype_name(int dt) {
    switch (dt) {
    case DT_UINT8: return "UINT8";       case DT_INT8: return "INT8";
    case DT_INT16: return "INT16";       case DT_UINT16: return "UINT16";
    case DT_INT32: return "INT32";       case DT_UINT32: return "UINT32";
    case DT_INT64: return "INT64";       case DT_UINT64: return "UINT64";
    case DT_FLOAT32: return "FLOAT32";   case DT_FLOAT64: return "FLOAT64";
    case DT_BINARY: return "BINARY";     case DT_COMPLEX64: return "COMPLEX64";
    case DT_COMPLEX128: return "COMPLEX128"; case DT_COMPLEX256: return "COMPLEX256";
    case DT_RGB24: return "RGB24";       case DT_RGBA32: return "RGBA32";
    case DT_FLOAT128: return "FLOAT128";
    }
    return "unknown";
}

/* Bytes per voxel of a supported scalar datatype and the tensor dtype it is read
 * into (before scaling); 0 for unsupported types. */
static int disk_type(int dt, nnu_dtype *out) {
    switch (dt) {
    case DT_UINT8:   *out = NNU_DTYPE_U8;  return 1;
    case DT_INT8:    *out = NNU_DTYPE_I8;  return 1;
    case DT_INT16:   *out = NNU_DTYPE_I16; return 2;
    case DT_UINT16:  *out = NNU_DTYPE_U16; return 2;
    case DT_INT32:   *out = NNU_DTYPE_I32; return 4;
    case DT_UINT32:  *out = NNU_DTYPE_I64; return 4;   /* widened: no u32 tensors */
    case DT_INT64:   *out = NNU_DTYPE_I64; return 8;
    case DT_UINT64:  *out = NNU_DTYPE_I64; return 8;   /* widened, range-checked */
    case DT_FLOAT32: *out = NNU_DTYPE_F32; return 4;
    case DT_FLOAT64: *out = NNU_DTYPE_F64; return 8;
    }
    return 0;
}

/* ---- the open file: a gzFile plus what we know about its size ---- */

typedef struct nifti_file {
    const char *path;
    gzFile      gz;
    int         compressed;     /* gzip content (set after the first read) */
    int64_t     file_size;      /* bytes on disk */
} nifti_file;

static nnu_status file_open(const char *path, nifti_file *f) {
    memset(f, 0, sizeof *f);
    f->path = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    NNU_CHECK(S_ISREG(st.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': not a regular file", path);
    f->file_size = (int64_t)st.st_size;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(f->gz, 1 << 17);
    return NNU_STATUS_OK;
}

static void file_close(nifti_file *f) {
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Reads up to n bytes; *got is what arrived. A stream error (corrupt or
 * truncated gzip) is reported here; a clean end of data is left to the caller,
 * which knows what the bytes were for. */
static nnu_status file_read(nifti_file *f, void *buf, int64_t n, int64_t *got) {
    *got = 0;
    char *p = buf;
    while (*got < n) {
        int64_t chunk = n - *got;
        if (chunk > (1 << 30)) chunk = 1 << 30;
        int r = gzread(f->gz, p + *got, (unsigned)chunk);
        if (r > 0) { *got += r; continue; }
        int errnum = 0;
        const char *msg = gzerror(f->gz, &errnum);
        if (r == 0 && errnum == Z_OK) return NNU_STATUS_OK;          /* clean end of data */
        if (errnum == Z_BUF_ERROR || (msg && strstr(msg, "unexpected end")))
            return NNU_FAIL(NNU_STATUS_ERR_FORMAT,
                            "cannot read '%s': truncated gzip stream (the %lld-byte file ends early)",
                            f->path, (long long)f->file_size);
        if (errnum == Z_ERRNO)
            return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", f->path, strerror(errno));
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': corrupt gzip stream (%s)", f->path,
                        msg ? msg : "unknown zlib error");
    }
    return NNU_STATUS_OK;
}

/* ---- header parsing ---- */

static void copy_str(char *dst, const char *src, size_t n) {
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Raw fields of a native-order NIfTI-1 header into h. */
static void hdr_from_n1(const nifti_1_header *n, nnu_nifti_header *h) {
    h->version = 1;
    h->datatype = n->datatype;
    for (int i = 0; i < 8; i++) { h->dim[i] = n->dim[i]; h->pixdim[i] = n->pixdim[i]; }
    h->vox_offset = n->vox_offset;
    h->scl_slope = n->scl_slope; h->scl_inter = n->scl_inter;
    h->cal_min = n->cal_min; h->cal_max = n->cal_max;
    h->qform_code = n->qform_code; h->sform_code = n->sform_code;
    h->quatern_b = n->quatern_b; h->quatern_c = n->quatern_c; h->quatern_d = n->quatern_d;
    h->qoffset_x = n->qoffset_x; h->qoffset_y = n->qoffset_y; h->qoffset_z = n->qoffset_z;
    for (int j = 0; j < 4; j++) {
        h->srow[0][j] = n->srow_x[j]; h->srow[1][j] = n->srow_y[j]; h->srow[2][j] = n->srow_z[j];
    }
    h->xyzt_units = (unsigned char)n->xyzt_units;
    h->intent_code = n->intent_code;
    h->intent_p1 = n->intent_p1; h->intent_p2 = n->intent_p2; h->intent_p3 = n->intent_p3;
    copy_str(h->intent_name, n->intent_name, 16);
    copy_str(h->descrip, n->descrip, 80);
    copy_str(h->aux_file, n->aux_file, 24);
}

static void hdr_from_n2(const nifti_2_header *n, nnu_nifti_header *h) {
    h->version = 2;
    h->datatype = n->datatype;
    for (int i = 0; i < 8; i++) { h->dim[i] = n->dim[i]; h->pixdim[i] = n->pixdim[i]; }
    h->vox_offset = (double)n->vox_offset;
    h->scl_slope = n->scl_slope; h->scl_inter = n->scl_inter;
    h->cal_min = n->cal_min; h->cal_max = n->cal_max;
    h->qform_code = n->qform_code; h->sform_code = n->sform_code;
    h->quatern_b = n->quatern_b; h->quatern_c = n->quatern_c; h->quatern_d = n->quatern_d;
    h->qoffset_x = n->qoffset_x; h->qoffset_y = n->qoffset_y; h->qoffset_z = n->qoffset_z;
    for (int j = 0; j < 4; j++) {
        h->srow[0][j] = n->srow_x[j]; h->srow[1][j] = n->srow_y[j]; h->srow[2][j] = n->srow_z[j];
    }
    h->xyzt_units = n->xyzt_units;
    h->intent_code = n->intent_code;
    h->intent_p1 = n->intent_p1; h->intent_p2 = n->intent_p2; h->intent_p3 = n->intent_p3;
    copy_str(h->intent_name, n->intent_name, 16);
    copy_str(h->descrip, n->descrip, 80);
    copy_str(h->aux_file, n->aux_file, 24);
}

static void magic_str(const char *m, int n, char *out) {  /* printable copy for messages */
    int k = 0;
    for (int i = 0; i < n && m[i]; i++) out[k++] = (m[i] >= 32 && m[i] < 127) ? m[i] : '?';
    out[k] = '\0';
}

/* What the reader needs besides nnu_image_info. */
typedef struct parsed {
    nifti_image *nim;           /* from nifticlib: qto_xyz, sto_xyz, dx.. (owned) */
    int          swapped;       /* file byte order differs from ours */
    int          nbyper;        /* bytes per voxel on disk */
    nnu_dtype    raw_dtype;     /* tensor dtype of the unscaled voxels */
    int64_t      nvox;
    int64_t      data_offset;   /* where the voxels start */
    double       slope, inter;  /* effective scaling (1, 0 when none) */
} parsed;

/* "40x40x40 INT16" */
static void describe_dims(const nnu_nifti_header *h, char *buf, size_t len) {
    size_t k = 0;
    for (int i = 1; i <= h->dim[0] && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i > 1 ? "x" : "", (long long)h->dim[i]);
    if (k < len) snprintf(buf + k, len - k, " %s", nnu_nifti_datatype_name(h->datatype));
}

static nnu_status check_header(nifti_file *f, const unsigned char *raw, int64_t nraw,
                               nnu_image_info *info, parsed *p) {
    const char *path = f->path;
    NNU_CHECK(nraw >= 348, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': file too short for a NIfTI header (%lld bytes)", path, (long long)nraw);
    int32_t sz;
    memcpy(&sz, raw, 4);
    int version = 0;
    p->swapped = 0;
    if (sz == 348) version = 1;
    else if (sz == 540) version = 2;
    else {
        int32_t s2 = sz;
        nifti_swap_4bytes(1, &s2);
        if (s2 == 348) version = 1;
        else if (s2 == 540) version = 2;
        p->swapped = version != 0;
        NNU_CHECK(version, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': bad sizeof_hdr %d (expected 348 or 540: not a NIfTI file)", path, sz);
    }
    nnu_nifti_header *h = &info->hdr;
    char magic[9];
    if (version == 1) {
        nifti_1_header n1;
        memcpy(&n1, raw, sizeof n1);
        if (p->swapped) swap_nifti_header(&n1, 1);
        magic_str(n1.magic, 4, magic);
        NNU_CHECK(strcmp(magic, "ni1") != 0, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': two-file NIfTI (.hdr/.img) is not supported", path);
        NNU_CHECK(memcmp(n1.magic, "n+1\0", 4) == 0, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': bad magic '%s' (expected \"n+1\"; Analyze 7.5 is not supported)",
                  path, magic);
        hdr_from_n1(&n1, h);
    } else {
        NNU_CHECK(nraw >= 540, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': file too short for a NIfTI-2 header (%lld bytes)", path, (long long)nraw);
        nifti_2_header n2;
        memcpy(&n2, raw, sizeof n2);
        if (p->swapped) swap_nifti_header(&n2, 2);
        magic_str(n2.magic, 4, magic);
        NNU_CHECK(strcmp(magic, "ni2") != 0, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': two-file NIfTI-2 (.hdr/.img) is not supported", path);
        NNU_CHECK(memcmp(n2.magic, "n+2\0", 4) == 0, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': bad magic '%s' (expected \"n+2\")", path, magic);
        hdr_from_n2(&n2, h);
    }

    /* dimensions */
    int nd = (int)h->dim[0];
    NNU_CHECK(h->dim[0] >= 1 && h->dim[0] <= 7, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': bad dim[0] = %lld (must be 1..7)", path, (long long)h->dim[0]);
    int64_t nvox = 1;
    for (int i = 1; i <= nd; i++) {
        NNU_CHECK(h->dim[i] >= 1, NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad dim[%d] = %lld", path, i,
                  (long long)h->dim[i]);
        NNU_CHECK(h->dim[i] <= (INT64_C(1) << 40) / nvox, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': dimensions too large", path);
        nvox *= h->dim[i];
    }
    for (int i = 5; i <= nd; i++)
        NNU_CHECK(h->dim[i] == 1, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': %d-D images are not supported (dim[%d] = %lld)", path, nd, i,
                  (long long)h->dim[i]);

    /* datatype */
    p->nbyper = disk_type(h->datatype, &p->raw_dtype);
    NNU_CHECK(p->nbyper > 0, NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': datatype %s (%d) is not supported",
              path, nnu_nifti_datatype_name(h->datatype), h->datatype);
    p->nvox = nvox;

    /* vox_offset: nifticlib uses max(vox_offset, sizeof header) for one-file NIfTI */
    int64_t hsize = version == 1 ? 348 : 540;
    NNU_CHECK(isfinite(h->vox_offset) && h->vox_offset >= 0 && h->vox_offset < 9e15, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': bad vox_offset %g", path, h->vox_offset);
    p->data_offset = (int64_t)h->vox_offset;
    if (p->data_offset < hsize) p->data_offset = hsize;

    int64_t nbytes = nvox * p->nbyper;
    char dims[128];
    describe_dims(h, dims, sizeof dims);
    if (!f->compressed) {
        NNU_CHECK(p->data_offset <= f->file_size, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': vox_offset %lld beyond end of file (%lld bytes)", path,
                  (long long)p->data_offset, (long long)f->file_size);
        NNU_CHECK(nbytes <= f->file_size - p->data_offset, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': header says %s = %lld bytes but only %lld bytes of data", path, dims,
                  (long long)nbytes, (long long)(f->file_size - p->data_offset));
    } else {
        NNU_CHECK(nbytes / NNU_GZ_MAX_RATIO <= f->file_size, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': header says %s = %lld bytes, more than a %lld-byte gzip file can hold",
                  path, dims, (long long)nbytes, (long long)f->file_size);
    }

    /* scaling, ITK's rule: slope ~0 (or not finite) means 1; rescale when slope != 1 or inter != 0 */
    p->slope = isfinite(h->scl_slope) && fabs(h->scl_slope) >= DBL_EPSILON ? h->scl_slope : 1.0;
    p->inter = isfinite(h->scl_inter) ? h->scl_inter : 0.0;
    info->scaled = fabs(p->slope - 1.0) > DBL_EPSILON || fabs(p->inter) > DBL_EPSILON;
    info->dtype = p->raw_dtype;
    if (info->scaled && !nnu_dtype_is_float(p->raw_dtype)) info->dtype = NNU_DTYPE_F32;

    info->format = NNU_IMAGE_FORMAT_NIFTI;
    info->spatial_dims = nd >= 3 ? 3 : 2;     /* ITK reads a dim[0] = 2 file as a 2-D image */

    /* array shape: (z, y, x) or (c, z, y, x); trailing size-1 dims beyond 3 dropped */
    int64_t nx = h->dim[1], ny = nd >= 2 ? h->dim[2] : 1, nz = nd >= 3 ? h->dim[3] : 1;
    int64_t nt = nd >= 4 ? h->dim[4] : 1;
    if (nt > 1) {
        info->ndim = 4;
        info->shape[0] = nt; info->shape[1] = nz; info->shape[2] = ny; info->shape[3] = nx;
    } else {
        info->ndim = 3;
        info->shape[0] = nz; info->shape[1] = ny; info->shape[2] = nx; info->shape[3] = 0;
    }

    /* nifticlib computes qto_xyz (quaternion) and sto_xyz from the raw header; it
     * swaps its own copy and sets pixdim 0 -> 1 as ITK sees it */
    if (version == 1) {
        nifti_1_header n1;
        memcpy(&n1, raw, sizeof n1);
        p->nim = nifti_convert_n1hdr2nim(n1, NULL);
    } else {
        nifti_2_header n2;
        memcpy(&n2, raw, sizeof n2);
        p->nim = nifti_convert_n2hdr2nim(n2, NULL);
    }
    NNU_CHECK(p->nim, NNU_STATUS_ERR_FORMAT, "cannot read '%s': nifticlib rejected the header", path);
    return NNU_STATUS_OK;
}

/* ---- geometry as ITK's NiftiImageIO derives it ---- */

typedef struct m44 { double m[4][4]; } m44;

static m44 to_m44(nifti_dmat44 a, int round_to_float) {
    m44 r;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            r.m[i][j] = round_to_float ? (double)(float)a.m[i][j] : a.m[i][j];
    return r;
}

static double det3(const double a[3][3]) {
    return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
           a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
           a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
}

/* IsAffine: bottom row (0,0,0,1) and an invertible 3x3 (then the inverse is consistent). */
static int is_affine(const m44 *s) {
    double err = fabs(s->m[3][3] - 1.0) + fabs(s->m[3][0]) + fabs(s->m[3][1]) + fabs(s->m[3][2]);
    if (err > FLT_EPSILON) return 0;
    double a[3][3], norm = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) { a[i][j] = s->m[i][j]; norm = fmax(norm, fabs(a[i][j])); }
    return norm > 0 && fabs(det3(a)) > DBL_EPSILON * norm * norm * norm;
}

/* sform 3x3 with columns normalised is orthonormal within 1e-4 (ITK's "decomposable without skew") */
static int sform_orthonormal(const m44 *s) {
    if (!is_affine(s)) return 0;
    double r[3][3];
    for (int j = 0; j < 3; j++) {
        double n = sqrt(s->m[0][j] * s->m[0][j] + s->m[1][j] * s->m[1][j] + s->m[2][j] * s->m[2][j]);
        if (n == 0) return 0;
        for (int i = 0; i < 3; i++) r[i][j] = s->m[i][j] / n;
    }
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++) {
            double d = r[i][0] * r[k][0] + r[i][1] * r[k][1] + r[i][2] * r[k][2];
            if (fabs(d - (i == k)) > 1e-4) return 0;
        }
    return 1;
}

/* ITK's first test: 3x3 elementwise within 1e-5, translation and bottom row within 1e-7 (L1). */
static int forms_similar(const m44 *s, const m44 *q) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (fabs(s->m[i][j] - q->m[i][j]) > 1e-5) return 0;
    double t = 0, b = 0;
    for (int i = 0; i < 4; i++) { t += fabs(s->m[i][3] - q->m[i][3]); b += fabs(s->m[3][i] - q->m[3][i]); }
    return t <= 1e-7 && b <= 1e-7;
}

/* ITK compares the SVDs of the two 3x3s (U_s * U_q^-1 ~ I, singular values,
 * offsets within 1e-4). For an orthonormal-with-scales sform and the (always
 * orthonormal) qform this amounts to: equal column norms, equal normalised
 * columns and equal offsets, each within 1e-4. */
static int forms_very_similar(const m44 *s, const m44 *q) {
    for (int j = 0; j < 3; j++) {
        double ns = 0, nq = 0;
        for (int i = 0; i < 3; i++) { ns += s->m[i][j] * s->m[i][j]; nq += q->m[i][j] * q->m[i][j]; }
        ns = sqrt(ns); nq = sqrt(nq);
        if (fabs(ns - nq) > 1e-4 || ns == 0 || nq == 0) return 0;
        for (int i = 0; i < 3; i++)
            if (fabs(s->m[i][j] / ns - q->m[i][j] / nq) > 1e-4) return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (fabs(s->m[i][3] - q->m[i][3]) > 1e-4) return 0;
        if (fabs(s->m[3][i] - q->m[3][i]) > 1e-4) return 0;
    }
    return 1;
}

static nnu_status compute_geometry(const char *path, const nifti_image *nim, int version,
                                   nnu_image_info *info) {
    /* ITK's NiftiImageIO holds the header in nifticlib's NIfTI-1 nifti_image, whose
     * dx.. and mat44 are float: round even NIfTI-2 (double) values to float. */
    int rf = 1;
    (void)version;
    double scale = 1.0;         /* ITK: spacing in mm */
    switch (XYZT_TO_SPACE(info->hdr.xyzt_units)) {
    case NIFTI_UNITS_METER: scale = 1e3; break;
    case NIFTI_UNITS_MICRON: scale = 1e-3; break;
    default: break;
    }
    double d[3] = {nim->dx, nim->dy, nim->dz};
    for (int i = 0; i < 3; i++) {
        if (rf) d[i] = (double)(float)d[i];
        if (d[i] == 0 || !isfinite(d[i])) d[i] = 1.0;   /* dims beyond dim[0] carry no spacing */
        info->spacing_itk[i] = d[i] * scale;
        info->spacing[2 - i] = fabs(info->spacing_itk[i]);
    }
    info->used_sform = 0;
    if (nim->qform_code == NIFTI_XFORM_UNKNOWN && nim->sform_code == NIFTI_XFORM_UNKNOWN) {
        for (int i = 0; i < 3; i++) info->origin[i] = 0;
        for (int i = 0; i < 9; i++) info->direction[i] = (i % 4 == 0);
        return NNU_STATUS_OK;
    }
    m44 s = to_m44(nim->sto_xyz, rf), q = to_m44(nim->qto_xyz, rf);
    if (nim->sform_code == NIFTI_XFORM_UNKNOWN) memset(&s, 0, sizeof s);  /* as nifticlib leaves it */
    int prefer_s = forms_similar(&s, &q);
    if (!prefer_s || nim->sform_code != NIFTI_XFORM_UNKNOWN) {
        if (sform_orthonormal(&s)) {
            if (nim->qform_code == NIFTI_XFORM_UNKNOWN && nim->sform_code != NIFTI_XFORM_UNKNOWN)
                prefer_s = 1;
            else if (nim->sform_code == NIFTI_XFORM_SCANNER_ANAT)
                prefer_s = 1;
            else if (nim->qform_code != NIFTI_XFORM_UNKNOWN && nim->sform_code != NIFTI_XFORM_UNKNOWN)
                prefer_s = forms_very_similar(&s, &q);
        }
    }
    const m44 *m;
    if (prefer_s) m = &s;
    else if (nim->qform_code != NIFTI_XFORM_UNKNOWN) m = &q;
    else
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED,
                        "cannot read '%s': sform is not orthonormal and there is no qform "
                        "(ITK only supports orthonormal direction cosines)", path);
    info->used_sform = prefer_s;
    info->origin[0] = -m->m[0][3];
    info->origin[1] = -m->m[1][3];
    info->origin[2] = m->m[2][3];
    for (int j = 0; j < 3; j++) {       /* column j = direction of array axis i/j/k */
        double c[3] = {-m->m[0][j], -m->m[1][j], m->m[2][j]};
        double n = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
        if (n == 0) n = 1;              /* ITK's Normalize leaves a zero vector alone */
        for (int i = 0; i < 3; i++) info->direction[3 * i + j] = c[i] / n;
    }
    return NNU_STATUS_OK;
}

/* Reads and validates the header of an open file; p->nim is set on success. */
static nnu_status read_header_open(nifti_file *f, nnu_image_info *info, parsed *p) {
    memset(info, 0, sizeof *info);
    memset(p, 0, sizeof *p);
    unsigned char raw[540];
    int64_t got;
    NNU_TRY(file_read(f, raw, 348, &got));
    /* compressed or not is decided by the content, not the name (gzip magic 1f 8b) */
    f->compressed = !gzdirect(f->gz);
    if (got == 348) {
        int32_t sz;
        memcpy(&sz, raw, 4);
        if (sz == 540 || sz == 469893120) {          /* NIfTI-2, native or swapped */
            int64_t more;
            NNU_TRY(file_read(f, raw + 348, 540 - 348, &more));
            got += more;
        }
    }
    NNU_TRY(check_header(f, raw, got, info, p));
    nnu_status st = compute_geometry(f->path, p->nim, info->hdr.version, info);
    if (st != NNU_STATUS_OK) { nifti_image_free(p->nim); p->nim = NULL; }
    return st;
}

nnu_status nnu_nifti_read_header(const char *path, nnu_image_info *info) {
    nifti_set_debug_level(0);
    nifti_file f;
    NNU_TRY(file_open(path, &f));
    parsed p;
    nnu_status st = read_header_open(&f, info, &p);
    nifti_image_free(p.nim);
    file_close(&f);
    return st;
}

/* ---- voxels ---- */

/* Reads the nbytes voxel bytes into dst after skipping to the data offset. */
static nnu_status read_voxels(nifti_file *f, const nnu_image_info *info, const parsed *p, int64_t pos,
                              void *dst) {
    int64_t nbytes = p->nvox * p->nbyper, got;
    char dims[128];
    describe_dims(&info->hdr, dims, sizeof dims);
    char skip[4096];
    while (pos < p->data_offset) {     /* extensions: skip by reading (gzseek would hide errors) */
        int64_t n = p->data_offset - pos;
        if (n > (int64_t)sizeof skip) n = sizeof skip;
        NNU_TRY(file_read(f, skip, n, &got));
        pos += got;
        NNU_CHECK(got == n, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': vox_offset %lld beyond end of data (%lld bytes uncompressed)", f->path,
                  (long long)p->data_offset, (long long)pos);
    }
    NNU_TRY(file_read(f, dst, nbytes, &got));
    NNU_CHECK(got == nbytes, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': header says %s = %lld bytes but only %lld bytes of data", f->path, dims,
              (long long)nbytes, (long long)got);
    /* One more byte makes zlib reach the end of the stream and verify its CRC and
     * length, so a gzip file cut inside its trailer is caught too. */
    char extra;
    NNU_TRY(file_read(f, &extra, 1, &got));
    return NNU_STATUS_OK;
}

/* In-place widening of n unsigned 32/64-bit values to int64 (buffer holds n*8 bytes). */
static nnu_status widen_unsigned(const char *path, int datatype, void *buf, int64_t n) {
    int64_t *out = buf;
    if (datatype == DT_UINT32) {
        const uint32_t *in = buf;
        for (int64_t i = n - 1; i >= 0; i--) out[i] = (int64_t)in[i];   /* backwards: in place */
    } else {
        const uint64_t *in = buf;
        for (int64_t i = 0; i < n; i++) {
            NNU_CHECK(in[i] <= (uint64_t)INT64_MAX, NNU_STATUS_ERR_UNSUPPORTED,
                      "cannot read '%s': UINT64 voxel %llu does not fit int64", path,
                      (unsigned long long)in[i]);
            out[i] = (int64_t)in[i];
        }
    }
    return NNU_STATUS_OK;
}

/* out = raw * slope + inter, computed in double and stored in out's dtype (ITK's RescaleFunction). */
static void apply_scaling(const void *raw, nnu_dtype raw_dt, nnu_tensor *out, double slope, double inter) {
    int64_t n = nnu_tensor_numel(out);
    size_t es = nnu_dtype_size(raw_dt);
    const char *src = raw;
    if (out->dtype == NNU_DTYPE_F32) {
        float *dst = nnu_tensor_data(out);
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(nnu_dtype_load(raw_dt, src + i * (int64_t)es) * slope + inter);
    } else {
        double *dst = nnu_tensor_data(out);
        for (int64_t i = 0; i < n; i++) dst[i] = nnu_dtype_load(raw_dt, src + i * (int64_t)es) * slope + inter;
    }
}

nnu_status nnu_nifti_read(const char *path, nnu_image_info *info_out, nnu_tensor **out) {
    *out = NULL;
    nifti_set_debug_level(0);
    nnu_image_info local, *info = info_out ? info_out : &local;
    nifti_file f;
    NNU_TRY(file_open(path, &f));
    parsed p;
    nnu_status st = read_header_open(&f, info, &p);
    if (st != NNU_STATUS_OK) { file_close(&f); return st; }
    int version = info->hdr.version;
    int64_t pos = version == 1 ? 348 : 540;

    /* Voxels land directly in the result unless they need widening or scaling. */
    int direct = !info->scaled && (int)nnu_dtype_size(p.raw_dtype) == p.nbyper;
    nnu_tensor *t = NULL;
    void *raw = NULL;
    st = nnu_tensor_new(info->dtype, info->ndim, info->shape, &t);
    if (st == NNU_STATUS_OK && !direct) {
        /* room for the widened values too (u32 -> i64 in place) */
        size_t rb = (size_t)p.nvox * (nnu_dtype_size(p.raw_dtype) > (size_t)p.nbyper
                                          ? nnu_dtype_size(p.raw_dtype) : (size_t)p.nbyper);
        raw = malloc(rb ? rb : 1);
        if (!raw) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory (%zu bytes)", path, rb);
    }
    if (st == NNU_STATUS_OK) st = read_voxels(&f, info, &p, pos, direct ? nnu_tensor_data(t) : raw);
    file_close(&f);
    if (st == NNU_STATUS_OK) {
        void *buf = direct ? nnu_tensor_data(t) : raw;
        if (p.swapped && p.nbyper > 1) nifti_swap_Nbytes(p.nvox, p.nbyper, buf);
        if (info->hdr.datatype == DT_UINT32 || info->hdr.datatype == DT_UINT64)
            st = widen_unsigned(path, info->hdr.datatype, buf, p.nvox);
        if (st == NNU_STATUS_OK && !direct) {
            if (info->scaled) apply_scaling(buf, p.raw_dtype, t, p.slope, p.inter);
            else memcpy(nnu_tensor_data(t), buf, (size_t)p.nvox * nnu_dtype_size(p.raw_dtype));
        }
    }
    free(raw);
    nifti_image_free(p.nim);
    if (st != NNU_STATUS_OK) { nnu_tensor_release(t); return st; }
    *out = t;
    return NNU_STATUS_OK;
}

nnu_status nnu_nifti_read_f32(const char *path, nnu_image_info *info, nnu_tensor **out) {
    *out = NULL;
    nnu_tensor *t;
    NNU_TRY(nnu_nifti_read(path, info, &t));
    if (t->dtype == NNU_DTYPE_F32) { *out = t; return NNU_STATUS_OK; }
    nnu_status st = nnu_tensor_to_dtype(t, NNU_DTYPE_F32, out);
    nnu_tensor_release(t);
    return st;
}
