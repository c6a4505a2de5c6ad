/* nnu_image.c: the format dispatch and the reader classes' rules (see nnu_image.h).
 *
 * Each format module (nnu_nifti.c, nnu_metaimage.c, nnu_nrrd.c, nnu_png.c,
 * nnu_tiff.c) reads a file as it is: its array in (z, y, x) / (c, z, y, x) order,
 * ITK geometry where the format has one, spatial_dims, and `spacing` as the 3-D rule
 * gives it (spacing_itk reversed, absolute). This file then applies what the
 * chosen reader class of the reference does on top (2-D spacing, Tiff3DIO's
 * sidecar spacing, which formats and dimensions a class accepts), so every caller
 * sees the arrays and spacings the reference's preprocessing sees. */
#include "nnu_image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "nnu_json.h"
#include "nnu_metaimage.h"
#include "nnu_nifti.h"
#include "nnu_nrrd.h"
#include "nnu_png.h"
#include "nnu_tiff.h"

/* ---- names ---- */

int nnu_image_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

nnu_image_format nnu_image_format_of(const char *path) {
    if (nnu_image_ends_with(path, ".nii") || nnu_image_ends_with(path, ".nii.gz")) return NNU_IMAGE_FORMAT_NIFTI;
    if (nnu_image_ends_with(path, ".mha") || nnu_image_ends_with(path, ".mhd")) return NNU_IMAGE_FORMAT_METAIMAGE;
    if (nnu_image_ends_with(path, ".nrrd") || nnu_image_ends_with(path, ".nhdr")) return NNU_IMAGE_FORMAT_NRRD;
    if (nnu_image_ends_with(path, ".png")) return NNU_IMAGE_FORMAT_PNG;
    if (nnu_image_ends_with(path, ".tif") || nnu_image_ends_with(path, ".tiff")) return NNU_IMAGE_FORMAT_TIFF;
    return NNU_IMAGE_FORMAT_UNKNOWN;
}

const char *nnu_image_format_name(nnu_image_format f) {
    switch (f) {
    case NNU_IMAGE_FORMAT_NIFTI: return "NIfTI";
    case NNU_IMAGE_FORMAT_METAIMAGE: return "MetaImage";
    case NNU_IMAGE_FORMAT_NRRD: return "NRRD";
    case NNU_IMAGE_FORMAT_PNG: return "PNG";
    case NNU_IMAGE_FORMAT_TIFF: return "TIFF";
    default: return "unknown";
    }
}

static const struct { nnu_image_reader r; const char *name; } READERS[] = {
    {NNU_IMAGE_READER_SITK, "SimpleITKIO"},
    {NNU_IMAGE_READER_NIBABEL, "NibabelIO"},
    {NNU_IMAGE_READER_NATURAL2D, "NaturalImage2DIO"},
    {NNU_IMAGE_READER_TIFF3D, "Tiff3DIO"},
};

const char *nnu_image_reader_name(nnu_image_reader r) {
    for (size_t i = 0; i < sizeof READERS / sizeof READERS[0]; i++)
        if (READERS[i].r == r) return READERS[i].name;
    return "auto";
}

nnu_image_reader nnu_image_reader_parse(const char *name) {
    if (!name) return NNU_IMAGE_READER_AUTO;
    for (size_t i = 0; i < sizeof READERS / sizeof READERS[0]; i++)
        if (strcmp(READERS[i].name, name) == 0) return READERS[i].r;
    return NNU_IMAGE_READER_AUTO;
}

int nnu_image_reader_supports(nnu_image_reader r, const char *path) {
    nnu_image_format f = nnu_image_format_of(path);
    switch (r) {
    case NNU_IMAGE_READER_SITK:
        return f == NNU_IMAGE_FORMAT_NIFTI || f == NNU_IMAGE_FORMAT_METAIMAGE || f == NNU_IMAGE_FORMAT_NRRD;
    case NNU_IMAGE_READER_NIBABEL: return f == NNU_IMAGE_FORMAT_NIFTI;
    case NNU_IMAGE_READER_NATURAL2D:   /* .tiff is Tiff3DIO's only, as in the reference */
        return f == NNU_IMAGE_FORMAT_PNG || nnu_image_ends_with(path, ".tif");
    case NNU_IMAGE_READER_TIFF3D: return f == NNU_IMAGE_FORMAT_TIFF;
    default: return f != NNU_IMAGE_FORMAT_UNKNOWN;
    }
}

/* ---- helpers for the format modules ---- */

nnu_status nnu_image_check_writable(const char *path, const nnu_tensor *t) {
    NNU_CHECK(t->storage && t->storage->mem && t->storage->mem->host_accessible, NNU_STATUS_ERR_ARG,
              "cannot write '%s': tensor is not in host memory", path);
    NNU_CHECK(t->ndim >= 2 && t->ndim <= 4, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': an image tensor has 2 to 4 dimensions, got %d", path, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        NNU_CHECK(t->shape[i] >= 1, NNU_STATUS_ERR_SHAPE, "cannot write '%s': empty axis %d", path, i);
    return NNU_STATUS_OK;
}

void nnu_image_swap_bytes(void *buf, int64_t n, int size) {
    unsigned char *b = buf;
    for (int64_t i = 0; i < n; i++, b += size)
        for (int k = 0; k < size / 2; k++) {
            unsigned char x = b[k];
            b[k] = b[size - 1 - k];
            b[size - 1 - k] = x;
        }
}

nnu_status nnu_image_temp_path(const char *path, char *buf, size_t n) {
    int k = snprintf(buf, n, "%s.part%ld", path, (long)getpid());
    NNU_CHECK(k >= 0 && (size_t)k < n, NNU_STATUS_ERR_ARG, "cannot write '%s': path too long", path);
    return NNU_STATUS_OK;
}

nnu_status nnu_image_write_file(const char *path, const void *a, size_t na, const void *b, int64_t nb) {
    char tmp[4200];
    NNU_TRY(nnu_image_temp_path(path, tmp, sizeof tmp));
    FILE *f = fopen(tmp, "wb");
    if (!f) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    int ok = na == 0 || fwrite(a, 1, na, f) == na;
    const char *p = b;
    while (ok && nb > 0) {                     /* in pieces of at most 1 GiB */
        size_t c = nb > (1 << 30) ? (size_t)1 << 30 : (size_t)nb;
        ok = fwrite(p, 1, c, f) == c;
        p += c;
        nb -= (int64_t)c;
    }
    int err = errno;
    if (fclose(f) != 0 && ok) { ok = 0; err = errno; }
    if (ok && rename(tmp, path) != 0) { ok = 0; err = errno; }
    if (!ok) {
        remove(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(err));
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_image_storage_tensor(const char *path, const nnu_tensor *t, const nnu_image_write_opts *o,
                                    nnu_tensor **out) {
    nnu_dtype dt = t->dtype;
    if (o && o->segmentation) {
        double mn = 0, mx = 0;
        if (nnu_tensor_numel(t) > 0) {
            NNU_TRY(nnu_tensor_min(t, &mn));
            NNU_TRY(nnu_tensor_max(t, &mx));
        }
        NNU_CHECK(mn >= 0 && mx <= 65535, NNU_STATUS_ERR_ARG,
                  "cannot write '%s': segmentation values must lie in 0..65535 (found %g..%g)", path, mn, mx);
        dt = mx < 255 ? NNU_DTYPE_U8 : NNU_DTYPE_U16;   /* reference: uint8 if max < 255 else uint16 */
    } else if (o && o->has_dtype) {
        dt = o->dtype;
    }
    if (dt == NNU_DTYPE_F16) dt = NNU_DTYPE_F32;         /* no image format here stores half floats */
    if (dt == t->dtype) return nnu_tensor_contiguous((nnu_tensor *)t, out);
    return nnu_tensor_to_dtype(t, dt, out);              /* to_dtype returns a contiguous copy */
}

nnu_status nnu_image_sidecar_path(const char *path, int is_seg, char *buf, size_t n) {
    size_t len = strlen(path);
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    NNU_CHECK(dot && (!slash || dot > slash), NNU_STATUS_ERR_ARG, "'%s': no file ending", path);
    size_t cut = len - strlen(dot);                      /* the reference strips the last ".ext" */
    if (!is_seg) {
        /* channel files are <case>_XXXX<ending>: the sidecar is <case>.json. Like the
         * reference, the 5 characters are cut whatever they are (a file not named so
         * then has no sidecar and gets spacing 1 with a warning). */
        NNU_CHECK(cut >= 5, NNU_STATUS_ERR_ARG, "'%s': an image channel file must be named <case>_XXXX%s", path,
                  dot);
        cut -= 5;
    }
    int k = snprintf(buf, n, "%.*s.json", (int)cut, path);
    NNU_CHECK(k >= 0 && (size_t)k < n, NNU_STATUS_ERR_ARG, "'%s': path too long", path);
    return NNU_STATUS_OK;
}

/* ---- reader classes ---- */

static nnu_image_reader reader_of(const nnu_image_read_opts *o, const char *path) {
    if (o && o->reader != NNU_IMAGE_READER_AUTO) return o->reader;
    /* the reference's auto-detection order, for files whose ending names one class */
    switch (nnu_image_format_of(path)) {
    case NNU_IMAGE_FORMAT_PNG: return NNU_IMAGE_READER_NATURAL2D;
    case NNU_IMAGE_FORMAT_TIFF:   /* .tif: 2-D or 3-D, decided by the file; .tiff: Tiff3DIO only */
        return nnu_image_reader_supports(NNU_IMAGE_READER_NATURAL2D, path) ? NNU_IMAGE_READER_AUTO
                                                                          : NNU_IMAGE_READER_TIFF3D;
    default: return NNU_IMAGE_READER_SITK;
    }
}

/* Tiff3DIO: {"spacing": [s0, s1, s2]} in array order, all > 0; (1, 1, 1) without a file. */
static nnu_status sidecar_spacing(const char *path, int is_seg, double spacing[3]) {
    char side[4096];
    NNU_TRY(nnu_image_sidecar_path(path, is_seg, side, sizeof side));
    spacing[0] = spacing[1] = spacing[2] = 1.0;
    FILE *f = fopen(side, "rb");
    if (!f) {
        NNU_CHECK(errno == ENOENT, NNU_STATUS_ERR_IO, "cannot read '%s': %s", side, strerror(errno));
        fprintf(stderr, "WARNING: no spacing file '%s' for '%s': assuming spacing (1, 1, 1)\n", side, path);
        return NNU_STATUS_OK;
    }
    char text[65536];
    size_t n = fread(text, 1, sizeof text, f);
    int too_long = n == sizeof text, bad = ferror(f);
    fclose(f);
    NNU_CHECK(!bad, NNU_STATUS_ERR_IO, "cannot read '%s'", side);
    NNU_CHECK(!too_long, NNU_STATUS_ERR_FORMAT, "'%s': too long for a spacing file", side);
    char err[160];
    nnu_json *doc = nnu_json_parse(text, n, err, sizeof err);
    NNU_CHECK(doc, NNU_STATUS_ERR_FORMAT, "'%s': not valid JSON: %s", side, err);
    const nnu_json *sp = nnu_json_get(doc, "spacing");
    nnu_status st = NNU_STATUS_OK;
    if (!sp || sp->type != NNU_JSON_ARRAY || sp->n != 3) {
        st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': \"spacing\" must be a list of 3 numbers", side);
    } else {
        for (int i = 0; i < 3 && !st; i++) {
            const nnu_json *v = &sp->items[i];
            if (v->type != NNU_JSON_NUMBER || !(v->number > 0) || !isfinite(v->number))
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': spacing[%d] must be a number > 0", side, i);
            else
                spacing[i] = v->number;
        }
    }
    nnu_json_free(doc);
    return st;
}

/* The class's view of what the format module read. */
static nnu_status apply_reader(const char *path, nnu_image_reader r, int is_seg, nnu_image_info *info) {
    nnu_image_format f = info->format;
    switch (r) {
    case NNU_IMAGE_READER_SITK:
    case NNU_IMAGE_READER_NIBABEL:
        NNU_CHECK(f == NNU_IMAGE_FORMAT_NIFTI || f == NNU_IMAGE_FORMAT_METAIMAGE || f == NNU_IMAGE_FORMAT_NRRD,
                  NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': %s reads NIfTI, MetaImage and NRRD files, not %s",
                  path, nnu_image_reader_name(r), nnu_image_format_name(f));
        if (info->spatial_dims == 2) {
            /* SimpleITKIO: (999 * max(spacing), sy, sx), so the planner sees a 2-D dataset */
            double m = fmax(info->spacing_itk[0], info->spacing_itk[1]);
            info->spacing[0] = 999.0 * m;
        }
        return NNU_STATUS_OK;
    case NNU_IMAGE_READER_NATURAL2D:
        NNU_CHECK(f == NNU_IMAGE_FORMAT_PNG || f == NNU_IMAGE_FORMAT_TIFF, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': NaturalImage2DIO reads .png and .tif files, not %s", path,
                  nnu_image_format_name(f));
        NNU_CHECK(info->spatial_dims == 2, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': NaturalImage2DIO reads 2-D images (gray, RGB or RGBA); this one is 3-D "
                  "(a 3-D .tif needs Tiff3DIO)", path);
        info->spacing[0] = 999.0;
        info->spacing[1] = info->spacing[2] = 1.0;
        return NNU_STATUS_OK;
    case NNU_IMAGE_READER_TIFF3D:
        NNU_CHECK(f == NNU_IMAGE_FORMAT_TIFF, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': Tiff3DIO reads .tif/.tiff files, not %s", path, nnu_image_format_name(f));
        NNU_CHECK(info->spatial_dims == 3 && info->ndim == 3, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': Tiff3DIO reads single-channel 3-D images only", path);
        return sidecar_spacing(path, is_seg, info->spacing);
    default:
        return NNU_FAIL(NNU_STATUS_ERR_ARG, "cannot read '%s': no reader class", path);
    }
}

static nnu_status read_format(const char *path, nnu_image_info *info, nnu_tensor **out) {
    switch (nnu_image_format_of(path)) {
    case NNU_IMAGE_FORMAT_NIFTI:
        return out ? nnu_nifti_read(path, info, out) : nnu_nifti_read_header(path, info);
    case NNU_IMAGE_FORMAT_METAIMAGE:
        return out ? nnu_metaimage_read(path, info, out) : nnu_metaimage_read_header(path, info);
    case NNU_IMAGE_FORMAT_NRRD:
        return out ? nnu_nrrd_read(path, info, out) : nnu_nrrd_read_header(path, info);
    case NNU_IMAGE_FORMAT_PNG:
        return out ? nnu_png_read(path, info, out) : nnu_png_read_header(path, info);
    case NNU_IMAGE_FORMAT_TIFF:
        return out ? nnu_tiff_read(path, info, out) : nnu_tiff_read_header(path, info);
    default:
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED,
                        "cannot read '%s': unknown file type (this program reads .nii, .nii.gz, .mha, .mhd, .nrrd, "
                        ".nhdr, .png, .tif and .tiff)", path);
    }
}

static nnu_status read_any(const char *path, const nnu_image_read_opts *o, nnu_image_info *info,
                           nnu_tensor **out) {
    nnu_image_info local;
    if (!info) info = &local;
    nnu_status st = read_format(path, info, out);
    if (st) return st;
    nnu_image_reader r = reader_of(o, path);
    if (r == NNU_IMAGE_READER_AUTO)     /* TIFF: NaturalImage2DIO first, as the reference tries it first */
        r = info->spatial_dims == 2 ? NNU_IMAGE_READER_NATURAL2D : NNU_IMAGE_READER_TIFF3D;
    st = apply_reader(path, r, o ? o->is_seg : 0, info);
    if (st && out) {
        nnu_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

nnu_status nnu_image_read_header(const char *path, const nnu_image_read_opts *opts, nnu_image_info *info) {
    return read_any(path, opts, info, NULL);
}

nnu_status nnu_image_read(const char *path, const nnu_image_read_opts *opts, nnu_image_info *info,
                          nnu_tensor **out) {
    *out = NULL;
    return read_any(path, opts, info, out);
}

nnu_status nnu_image_read_f32(const char *path, const nnu_image_read_opts *opts, nnu_image_info *info,
                              nnu_tensor **out) {
    nnu_tensor *raw = NULL;
    NNU_TRY(nnu_image_read(path, opts, info, &raw));
    if (raw->dtype == NNU_DTYPE_F32) { *out = raw; return NNU_STATUS_OK; }
    nnu_status st = nnu_tensor_to_dtype(raw, NNU_DTYPE_F32, out);
    nnu_tensor_release(raw);
    if (st == NNU_STATUS_OK && info) info->dtype = NNU_DTYPE_F32;
    return st;
}

nnu_status nnu_image_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                           const nnu_image_write_opts *opts) {
    switch (nnu_image_format_of(path)) {
    case NNU_IMAGE_FORMAT_NIFTI: return nnu_nifti_write(path, t, ref, opts);
    case NNU_IMAGE_FORMAT_METAIMAGE: return nnu_metaimage_write(path, t, ref, opts);
    case NNU_IMAGE_FORMAT_NRRD: return nnu_nrrd_write(path, t, ref, opts);
    case NNU_IMAGE_FORMAT_PNG: return nnu_png_write(path, t, ref, opts);
    case NNU_IMAGE_FORMAT_TIFF: return nnu_tiff_write(path, t, ref, opts);
    default:
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED,
                        "cannot write '%s': unknown file type (this program writes .nii, .nii.gz, .mha, .mhd, "
                        ".nrrd, .nhdr, .png, .tif and .tiff)", path);
    }
}

/* ---- value scan ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct scan_ctx {
    nnu_dtype dt;
    nnu_image_scan_result *res;
    double *values;
    int max_values;
    double last;                /* one-entry cache: labels come in runs */
    int have_last;
} scan_ctx;

static void scan_one(void *elem, void *vctx) {
    scan_ctx *c = vctx;
    double v = nnu_dtype_load(c->dt, elem);
    if (isnan(v)) { c->res->n_nan++; return; }
    if (isinf(v)) { c->res->n_inf++; return; }
    if (!(v >= c->res->min)) c->res->min = v;           /* NaN-initialised */
    if (!(v <= c->res->max)) c->res->max = v;
    if (c->res->n_values < 0 || (c->have_last && v == c->last)) return;
    c->last = v;
    c->have_last = 1;
    int n = c->res->n_values;
    for (int i = 0; i < n; i++) if (c->values[i] == v) return;
    if (n >= c->max_values) { c->res->n_values = -1; return; }
    c->values[n] = v;
    c->res->n_values = n + 1;
}

nnu_status nnu_image_scan(const nnu_tensor *t, double *values, int max_values, nnu_image_scan_result *res) {
    NNU_CHECK(max_values >= 0 && (values || max_values == 0), NNU_STATUS_ERR_ARG, "image scan: bad value buffer");
    NNU_CHECK(t->storage && t->storage->mem && t->storage->mem->host_accessible, NNU_STATUS_ERR_ARG,
              "image scan: tensor is not in host memory");
    memset(res, 0, sizeof *res);
    res->min = res->max = NAN;
    scan_ctx c = {t->dtype, res, values, max_values, 0, 0};
    nnu_tensor_foreach(t, scan_one, &c);
    if (res->n_values > 0) qsort(values, (size_t)res->n_values, sizeof *values, cmp_double);
    return NNU_STATUS_OK;
}
