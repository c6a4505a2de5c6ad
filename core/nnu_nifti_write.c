/* nnu_nifti_write.c: writing .nii / .nii.gz.
 *
 * File layout written: header (348 bytes NIfTI-1, or 540 NIfTI-2), a 4-byte
 * zero extender (no extensions), voxels from vox_offset = 352 (544), x fastest,
 * native byte order. A (z, y, x) contiguous tensor already has that order, so the
 * buffer is written as is. Compression is zlib's gzip ("wbN"); uncompressed files
 * use zlib's transparent mode ("wbT") so both share one code path.
 *
 * Geometry comes from a reference nnu_image_info: its raw header fields (qform,
 * sform, pixdim, units, intent, descrip) are copied unchanged, so a file read and
 * written back keeps qform and sform bit-exactly. Without a raw header the fields
 * are rebuilt from spacing/origin/direction like ITK's
 * NiftiImageIO::SetNIfTIOrientationFromImageIO. */
#include "nnu_nifti.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nifti2_io.h>
#include <zlib.h>

static int nifti_datatype_of(nnu_dtype dt, int *nbyper) {
    switch (dt) {
    case NNU_DTYPE_U8:  *nbyper = 1; return DT_UINT8;
    case NNU_DTYPE_I8:  *nbyper = 1; return DT_INT8;
    case NNU_DTYPE_I16: *nbyper = 2; return DT_INT16;
    case NNU_DTYPE_U16: *nbyper = 2; return DT_UINT16;
    case NNU_DTYPE_I32: *nbyper = 4; return DT_INT32;
    case NNU_DTYPE_I64: *nbyper = 8; return DT_INT64;
    case NNU_DTYPE_F32: *nbyper = 4; return DT_FLOAT32;
    case NNU_DTYPE_F64: *nbyper = 8; return DT_FLOAT64;
    default: break;
    }
    *nbyper = 0;
    return 0;
}

nnu_status nnu_nifti_header_from_geometry(nnu_image_info *info) {
    nnu_nifti_header *h = &info->hdr;
    memset(h, 0, sizeof *h);
    const double *D = info->direction;     /* row-major; column j = direction of axis j (LPS) */
    /* RAS rows of ITK's dirx/diry/dirz: LPS -> RAS negates the first two components */
    nifti_dmat44 m = nifti_make_orthog_dmat44(-D[0], -D[3], D[6],    /* axis x */
                                              -D[1], -D[4], D[7],    /* axis y */
                                              -D[2], -D[5], D[8]);   /* axis z */
    nifti_dmat44 r;                         /* transpose: columns are the axis directions */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) r.m[i][j] = m.m[j][i];
    r.m[0][3] = -info->origin[0];
    r.m[1][3] = -info->origin[1];
    r.m[2][3] = info->origin[2];
    r.m[3][0] = r.m[3][1] = r.m[3][2] = 0;
    r.m[3][3] = 1;
    double qb, qc, qd, qx, qy, qz, qfac;
    nifti_dmat44_to_quatern(r, &qb, &qc, &qd, &qx, &qy, &qz, NULL, NULL, NULL, &qfac);
    h->version = 1;
    h->quatern_b = qb; h->quatern_c = qc; h->quatern_d = qd;
    h->qoffset_x = qx; h->qoffset_y = qy; h->qoffset_z = qz;
    h->pixdim[0] = qfac;
    for (int i = 0; i < 3; i++) h->pixdim[i + 1] = info->spacing_itk[i];
    for (int i = 4; i < 8; i++) h->pixdim[i] = 1.0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) h->srow[i][j] = r.m[i][j] * info->spacing_itk[j];
        h->srow[i][3] = r.m[i][3];
    }
    h->qform_code = h->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    h->xyzt_units = NIFTI_UNITS_MM | NIFTI_UNITS_SEC;
    h->scl_slope = 1.0;
    return NNU_STATUS_OK;
}

/* The header bytes for voxels of datatype dt and file dims (x, y, z[, t]) with ref's geometry. */
static void fill_n1(nifti_1_header *o, const nnu_nifti_header *h, int dt, int nbyper, const int64_t *dim) {
    memset(o, 0, sizeof *o);
    o->sizeof_hdr = 348;
    memcpy(o->magic, "n+1\0", 4);
    o->datatype = (short)dt;
    o->bitpix = (short)(8 * nbyper);
    for (int i = 0; i < 8; i++) { o->dim[i] = (short)dim[i]; o->pixdim[i] = (float)h->pixdim[i]; }
    o->vox_offset = 352;
    o->scl_slope = 1.0f;
    o->scl_inter = 0.0f;
    o->qform_code = (short)h->qform_code;
    o->sform_code = (short)h->sform_code;
    o->quatern_b = (float)h->quatern_b; o->quatern_c = (float)h->quatern_c; o->quatern_d = (float)h->quatern_d;
    o->qoffset_x = (float)h->qoffset_x; o->qoffset_y = (float)h->qoffset_y; o->qoffset_z = (float)h->qoffset_z;
    for (int j = 0; j < 4; j++) {
        o->srow_x[j] = (float)h->srow[0][j]; o->srow_y[j] = (float)h->srow[1][j]; o->srow_z[j] = (float)h->srow[2][j];
    }
    o->xyzt_units = (char)h->xyzt_units;
    o->intent_code = (short)h->intent_code;
    o->intent_p1 = (float)h->intent_p1; o->intent_p2 = (float)h->intent_p2; o->intent_p3 = (float)h->intent_p3;
    memcpy(o->intent_name, h->intent_name, 16);
    memcpy(o->descrip, h->descrip, 80);
    memcpy(o->aux_file, h->aux_file, 24);
}

static void fill_n2(nifti_2_header *o, const nnu_nifti_header *h, int dt, int nbyper, const int64_t *dim) {
    memset(o, 0, sizeof *o);
    o->sizeof_hdr = 540;
    memcpy(o->magic, "n+2\0\r\n\032\n", 8);
    o->datatype = (int16_t)dt;
    o->bitpix = (int16_t)(8 * nbyper);
    for (int i = 0; i < 8; i++) { o->dim[i] = dim[i]; o->pixdim[i] = h->pixdim[i]; }
    o->vox_offset = 544;
    o->scl_slope = 1.0;
    o->scl_inter = 0.0;
    o->qform_code = h->qform_code;
    o->sform_code = h->sform_code;
    o->quatern_b = h->quatern_b; o->quatern_c = h->quatern_c; o->quatern_d = h->quatern_d;
    o->qoffset_x = h->qoffset_x; o->qoffset_y = h->qoffset_y; o->qoffset_z = h->qoffset_z;
    for (int j = 0; j < 4; j++) {
        o->srow_x[j] = h->srow[0][j]; o->srow_y[j] = h->srow[1][j]; o->srow_z[j] = h->srow[2][j];
    }
    o->xyzt_units = h->xyzt_units;
    o->intent_code = h->intent_code;
    o->intent_p1 = h->intent_p1; o->intent_p2 = h->intent_p2; o->intent_p3 = h->intent_p3;
    memcpy(o->intent_name, h->intent_name, 16);
    memcpy(o->descrip, h->descrip, 80);
    memcpy(o->aux_file, h->aux_file, 24);
}

static nnu_status gz_write_all(gzFile gz, const void *buf, int64_t n, const char *path) {
    const char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1 << 30) ? 1u << 30 : (unsigned)n;
        int w = gzwrite(gz, p, chunk);
        if (w <= 0) {
            int errnum = 0;
            const char *msg = gzerror(gz, &errnum);
            return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path,
                            errnum == Z_ERRNO ? strerror(errno) : msg);
        }
        p += w;
        n -= w;
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_nifti_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                           const nnu_image_write_opts *opts) {
    NNU_TRY(nnu_image_check_writable(path, t));
    NNU_CHECK(t->ndim == 3 || t->ndim == 4, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': tensor must be (z, y, x) or (c, z, y, x), got %d dimensions", path, t->ndim);
    NNU_CHECK(nnu_image_ends_with(path, ".nii") || nnu_image_ends_with(path, ".nii.gz"), NNU_STATUS_ERR_ARG,
              "cannot write '%s': the name must end in .nii or .nii.gz", path);

    /* geometry source */
    nnu_image_info geo;
    if (ref && ref->hdr.version) geo = *ref;
    else {
        memset(&geo, 0, sizeof geo);
        if (ref) {
            memcpy(geo.spacing_itk, ref->spacing_itk, sizeof geo.spacing_itk);
            memcpy(geo.origin, ref->origin, sizeof geo.origin);
            memcpy(geo.direction, ref->direction, sizeof geo.direction);
        } else {
            for (int i = 0; i < 3; i++) geo.spacing_itk[i] = 1.0;
            for (int i = 0; i < 9; i++) geo.direction[i] = (i % 4 == 0);
        }
        NNU_TRY(nnu_nifti_header_from_geometry(&geo));
    }

    nnu_tensor *w;
    NNU_TRY(nnu_image_storage_tensor(path, t, opts, &w));
    int nbyper, dt = nifti_datatype_of(w->dtype, &nbyper);
    if (!dt) {
        nnu_tensor_release(w);
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot write '%s': dtype %s", path, nnu_dtype_name(t->dtype));
    }
    int64_t dim[8] = {t->ndim, 1, 1, 1, 1, 1, 1, 1};
    int sp = t->ndim - 3;                                  /* first spatial axis of the tensor */
    for (int i = 0; i < 3; i++) dim[1 + i] = t->shape[sp + 2 - i];   /* (z,y,x) -> nx, ny, nz */
    if (t->ndim == 4) dim[4] = t->shape[0];
    /* a 2-D reference is written back as a 2-D image (SimpleITKIO.write_seg) */
    if (ref && ref->spatial_dims == 2 && t->ndim == 3 && t->shape[0] == 1) dim[0] = 2;
    int version = geo.hdr.version == 2 ? 2 : 1;
    for (int i = 1; i <= 4; i++) if (dim[i] > 32767) version = 2;

    union { nifti_1_header n1; nifti_2_header n2; } hdr;
    int64_t hsize;
    if (version == 1) { fill_n1(&hdr.n1, &geo.hdr, dt, nbyper, dim); hsize = 348; }
    else { fill_n2(&hdr.n2, &geo.hdr, dt, nbyper, dim); hsize = 540; }

    char tmp[4096];
    nnu_status tst = nnu_image_temp_path(path, tmp, sizeof tmp);
    if (tst) {
        nnu_tensor_release(w);
        return tst;
    }
    int level = opts && opts->compression > 0 && opts->compression <= 9 ? opts->compression : 6;
    char mode[8];
    if (nnu_image_ends_with(path, ".gz")) snprintf(mode, sizeof mode, "wb%d", level);
    else snprintf(mode, sizeof mode, "wbT");
    gzFile gz = gzopen(tmp, mode);
    if (!gz) {
        nnu_tensor_release(w);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, errno ? strerror(errno) : "gzopen failed");
    }
    gzbuffer(gz, 1 << 17);
    static const char extender[4] = {0, 0, 0, 0};
    nnu_status st = gz_write_all(gz, &hdr, hsize, path);
    if (st == NNU_STATUS_OK) st = gz_write_all(gz, extender, 4, path);
    if (st == NNU_STATUS_OK)
        st = gz_write_all(gz, nnu_tensor_data(w), nnu_tensor_numel(w) * (int64_t)nbyper, path);
    int rc = gzclose(gz);
    if (st == NNU_STATUS_OK && rc != Z_OK)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path,
                      rc == Z_ERRNO ? strerror(errno) : "zlib error on close");
    nnu_tensor_release(w);
    if (st == NNU_STATUS_OK && rename(tmp, path) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (st != NNU_STATUS_OK) remove(tmp);
    return st;
}
