/* nnu_png.c: PNG reading and writing with libpng, as the reference's
 * NaturalImage2DIO sees PNG files (skimage.io.imread -> imageio v3 -> Pillow).
 *
 * What Pillow returns, and so what we return (H rows, W columns):
 *     gray 1-bit           (1, H, W) u8 0/1        Pillow mode "1" (bool arrays)
 *     gray 2/4-bit         (1, H, W) u8 v*85, v*17 Pillow scales to 8 bits
 *     gray 8/16-bit        (1, H, W) u8 / u16      16-bit is big-endian in the file
 *     gray+alpha 8-bit     refused                 (H, W, 2): NaturalImage2DIO asserts
 *     gray+alpha 16-bit    (4, 1, H, W) u8         Pillow converts LA;16 to RGBA, high bytes
 *     RGB, RGBA 8-bit      (3|4, 1, H, W) u8
 *     RGB, RGBA 16-bit     (3|4, 1, H, W) u8       Pillow keeps the high byte only
 *     palette 1..8-bit     (3, 1, H, W) u8         expanded to RGB; tRNS is ignored (Pillow
 *                                                  converts P to the palette's mode, RGB)
 * tRNS on gray/RGB, gAMA, sBIT and every other ancillary chunk are ignored, as
 * imageio does by default. Interlaced (Adam7) files are de-interlaced.
 *
 * Errors: libpng reports errors by longjmp. png_run() is the one function that
 * calls libpng while reading and png_encode() while writing; each sets the jump
 * point, and every resource they use lives in a caller-owned job struct, so the
 * jump leaks nothing and the message (libpng's own) becomes the status. A file
 * cut anywhere fails: the read goes on to IEND (png_read_end), as a CRC-checking
 * reader should. */
#include "nnu_png.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>

/* zlib cannot expand data by more than ~1032:1; a header that promises more
 * pixel bytes than this times the file size is lying (Adam7 adds filter bytes,
 * hence the factor 2 for interlaced files). */
#define NNU_PNG_MAX_RATIO 1100
#define NNU_PNG_MAX_BYTES (INT64_C(1) << 34)
#define NNU_PNG_LITTLE_ENDIAN (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

/* Everything the libpng-calling functions touch, kept outside their stack frames
 * so that longjmp cannot lose it (C11 7.13.2.1). */
typedef struct png_job {
    const char  *path;
    FILE        *fp;
    int64_t      file_size;
    png_structp  png;
    png_infop    pinfo;
    char         msg[256];      /* libpng's error message */
    int          io_errno;      /* nonzero: the OS failed a read or write */
    int          truncated;     /* the read callback hit the end of the file */
    /* reading */
    int          want_pixels;
    nnu_image_info *info;
    nnu_tensor  *t;             /* the result (owned until handed out) */
    unsigned char *buf;         /* interleaved rows (H, W, S) before splitting */
    png_bytep   *rows;
    int          channels;      /* samples per pixel we return (Pillow's) */
    int          stride;        /* samples per pixel libpng delivers (channels, or 4 for palette + tRNS) */
    int          unpack_scale;  /* 1, 85 or 17: gray 1/2/4-bit values to Pillow's */
    /* writing */
    const nnu_tensor *w;        /* contiguous u8/u16, (c, H, W) */
    int          color_type, bit_depth, level;
} png_job;

static void on_error(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png; (void)msg;       /* benign (a bad ancillary chunk): Pillow ignores them too */
}

static void read_cb(png_structp png, png_bytep data, size_t n) {
    png_job *j = png_get_io_ptr(png);
    size_t got = fread(data, 1, n, j->fp);
    if (got == n) return;
    if (ferror(j->fp)) {
        j->io_errno = errno ? errno : EIO;
        png_error(png, "read error");
    }
    j->truncated = 1;
    png_error(png, "the file ends early (truncated)");
}

static void write_cb(png_structp png, png_bytep data, size_t n) {
    png_job *j = png_get_io_ptr(png);
    if (fwrite(data, 1, n, j->fp) != n) {
        j->io_errno = errno ? errno : EIO;
        png_error(png, "write error");
    }
}

static void flush_cb(png_structp png) { (void)png; }

/* The status for a longjmp out of libpng. */
static nnu_status job_failure(const png_job *j, const char *verb) {
    if (j->io_errno)
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot %s '%s': %s", verb, j->path, strerror(j->io_errno));
    if (strstr(j->msg, "ut of memory") || strstr(j->msg, "nsufficient memory"))
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot %s '%s': %s", verb, j->path, j->msg);
    if (*verb == 'w') return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", j->path, j->msg);
    return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': %s", j->path, j->msg);
}

/* ---- reading ---- */

static const char *color_type_name(int ct) {
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    }
    return "unknown";
}

/* From IHDR: the array Pillow gives and the libpng transforms that produce it.
 * Returns a status without jumping (no libpng call here may fail). */
static nnu_status plan_transforms(png_job *j, png_uint_32 width, png_uint_32 height, int bit_depth,
                                  int ct, int interlace) {
    nnu_image_info *info = j->info;
    memset(info, 0, sizeof *info);
    info->format = NNU_IMAGE_FORMAT_PNG;
    info->spatial_dims = 2;
    info->spacing[0] = 999.0;           /* NaturalImage2DIO's; nnu_image.c sets it again */
    info->spacing[1] = info->spacing[2] = 1.0;
    for (int i = 0; i < 3; i++) info->spacing_itk[i] = 1.0;
    for (int i = 0; i < 9; i++) info->direction[i] = (i % 4 == 0);

    NNU_CHECK(!(ct == PNG_COLOR_TYPE_GRAY_ALPHA && bit_depth == 8), NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': 8-bit gray+alpha PNG: the reference reads it as an (H, W, 2) array, which "
              "NaturalImage2DIO rejects (only gray, RGB and RGBA are supported); save it as gray or RGBA",
              j->path);
    int channels = 1, depth8 = 1;
    j->unpack_scale = 1;
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY:
        channels = 1;
        depth8 = bit_depth <= 8;
        if (bit_depth < 8) {
            png_set_packing(j->png);                     /* one byte per pixel, values unscaled */
            j->unpack_scale = bit_depth == 1 ? 1 : bit_depth == 2 ? 85 : 17;
        }
        if (bit_depth == 16 && NNU_PNG_LITTLE_ENDIAN) png_set_swap(j->png);   /* file is big-endian */
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:                       /* 16-bit: Pillow's LA;16 -> RGBA */
        channels = 4;
        png_set_strip_16(j->png);                        /* high byte, as Pillow */
        png_set_gray_to_rgb(j->png);
        break;
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA:
        channels = ct == PNG_COLOR_TYPE_RGB ? 3 : 4;
        if (bit_depth == 16) png_set_strip_16(j->png);
        break;
    case PNG_COLOR_TYPE_PALETTE:
        channels = 3;                                    /* Pillow converts to the palette's mode, RGB */
        png_set_palette_to_rgb(j->png);                  /* no png_set_tRNS_to_alpha: tRNS ignored */
        break;
    default:
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad PNG color type %d", j->path, ct);
    }
    if (interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(j->png);
    j->channels = channels;

    int64_t bps = depth8 ? 1 : 2;
    int64_t npix = (int64_t)width * (int64_t)height;
    int64_t nbytes = npix * channels * bps;
    NNU_CHECK(width > 0 && height > 0 && nbytes <= NNU_PNG_MAX_BYTES, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': header says %ux%u %s pixels (%lld bytes): too large", j->path,
              (unsigned)width, (unsigned)height, color_type_name(ct), (long long)nbytes);
    int64_t file_channels = ct == PNG_COLOR_TYPE_PALETTE || ct == PNG_COLOR_TYPE_GRAY ? 1
                            : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ct == PNG_COLOR_TYPE_RGB ? 3 : 4;
    int64_t raw = (int64_t)height * (((int64_t)width * file_channels * bit_depth + 7) / 8 + 1);
    if (interlace != PNG_INTERLACE_NONE) raw /= 2;
    NNU_CHECK(raw / NNU_PNG_MAX_RATIO <= j->file_size, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': header says %ux%u %d-bit %s = %lld bytes, more than a %lld-byte PNG can hold",
              j->path, (unsigned)width, (unsigned)height, bit_depth, color_type_name(ct), (long long)raw,
              (long long)j->file_size);

    info->dtype = depth8 ? NNU_DTYPE_U8 : NNU_DTYPE_U16;
    if (channels == 1) {
        info->ndim = 3;
        info->shape[0] = 1; info->shape[1] = height; info->shape[2] = width;
    } else {
        info->ndim = 4;
        info->shape[0] = channels; info->shape[1] = 1; info->shape[2] = height; info->shape[3] = width;
    }
    return NNU_STATUS_OK;
}

/* The one function that calls libpng to read. Resources go into j; the caller frees them. */
static nnu_status png_run(png_job *j) {
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, on_error, on_warning);
    NNU_CHECK(j->png, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory (libpng)", j->path);
    j->pinfo = png_create_info_struct(j->png);
    NNU_CHECK(j->pinfo, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory (libpng)", j->path);
    if (setjmp(png_jmpbuf(j->png))) return job_failure(j, "read");

    png_set_read_fn(j->png, j, read_cb);
    png_set_sig_bytes(j->png, 8);
    png_read_info(j->png, j->pinfo);
    png_uint_32 width, height;
    int bit_depth, ct, interlace;
    png_get_IHDR(j->png, j->pinfo, &width, &height, &bit_depth, &ct, &interlace, NULL, NULL);
    NNU_TRY(plan_transforms(j, width, height, bit_depth, ct, interlace));
    if (!j->want_pixels) return NNU_STATUS_OK;

    png_read_update_info(j->png, j->pinfo);
    size_t rowbytes = png_get_rowbytes(j->png, j->pinfo);
    size_t es = nnu_dtype_size(j->info->dtype);
    /* a palette with tRNS comes out as RGBA (png_set_expand); the alpha is dropped below */
    j->stride = png_get_channels(j->png, j->pinfo);
    NNU_CHECK((j->stride == j->channels || (ct == PNG_COLOR_TYPE_PALETTE && j->stride == 4)) &&
                  rowbytes == (size_t)width * (size_t)j->stride * es,
              NNU_STATUS_ERR_FORMAT, "cannot read '%s': unexpected row size %zu after libpng's transforms", j->path,
              rowbytes);
    NNU_TRY(nnu_tensor_new(j->info->dtype, j->info->ndim, j->info->shape, &j->t));
    /* gray lands in the tensor directly; colour is read interleaved and split below */
    unsigned char *dst = nnu_tensor_data(j->t);
    if (j->stride > 1) {
        j->buf = malloc(rowbytes * height);
        NNU_CHECK(j->buf, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory (%zu bytes)", j->path,
                  rowbytes * height);
        dst = j->buf;
    }
    j->rows = malloc(sizeof *j->rows * height);
    NNU_CHECK(j->rows, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", j->path);
    for (png_uint_32 y = 0; y < height; y++) j->rows[y] = dst + (size_t)y * rowbytes;
    png_read_image(j->png, j->rows);
    png_read_end(j->png, NULL);                          /* the rest up to IEND, CRCs checked */
    return NNU_STATUS_OK;
}

/* (H, W, S) interleaved u8 -> (S, 1, H, W) planes; gray sub-byte values scaled. */
static void finish_pixels(png_job *j) {
    unsigned char *t = nnu_tensor_data(j->t);
    int64_t npix = j->info->shape[j->info->ndim - 1] * j->info->shape[j->info->ndim - 2];
    if (j->channels == 1) {
        if (j->unpack_scale != 1)
            for (int64_t i = 0; i < npix; i++) t[i] = (unsigned char)(t[i] * j->unpack_scale);
        return;
    }
    int s = j->stride;
    for (int c = 0; c < j->channels; c++) {
        unsigned char *plane = t + c * npix;
        const unsigned char *src = j->buf + c;
        for (int64_t i = 0; i < npix; i++) plane[i] = src[i * s];
    }
}

static nnu_status open_input(png_job *j) {
    struct stat st;
    if (stat(j->path, &st) != 0)
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", j->path, strerror(errno));
    NNU_CHECK(S_ISREG(st.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': not a regular file", j->path);
    j->file_size = (int64_t)st.st_size;
    j->fp = fopen(j->path, "rb");
    if (!j->fp) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", j->path, strerror(errno));
    unsigned char sig[8];
    size_t n = fread(sig, 1, 8, j->fp);
    NNU_CHECK(n == 8 && png_sig_cmp(sig, 0, 8) == 0, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': not a PNG file (bad signature)", j->path);
    return NNU_STATUS_OK;
}

static nnu_status png_read_any(const char *path, nnu_image_info *info, nnu_tensor **out) {
    nnu_image_info local;
    png_job j;
    memset(&j, 0, sizeof j);
    j.path = path;
    j.info = info ? info : &local;
    j.want_pixels = out != NULL;
    memset(j.info, 0, sizeof *j.info);
    nnu_status st = open_input(&j);
    if (st == NNU_STATUS_OK) st = png_run(&j);
    if (st == NNU_STATUS_OK && out) {
        finish_pixels(&j);
        *out = j.t;
        j.t = NULL;
    }
    if (j.png) png_destroy_read_struct(&j.png, j.pinfo ? &j.pinfo : NULL, NULL);
    if (j.fp) fclose(j.fp);
    free(j.rows);
    free(j.buf);
    nnu_tensor_release(j.t);
    return st;
}

nnu_status nnu_png_read_header(const char *path, nnu_image_info *info) {
    return png_read_any(path, info, NULL);
}

nnu_status nnu_png_read(const char *path, nnu_image_info *info, nnu_tensor **out) {
    *out = NULL;
    return png_read_any(path, info, out);
}

/* ---- writing ---- */

/* The one function that calls libpng to write. */
static nnu_status png_encode(png_job *j, int64_t height, int64_t width) {
    j->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, j, on_error, on_warning);
    NNU_CHECK(j->png, NNU_STATUS_ERR_OOM, "cannot write '%s': out of memory (libpng)", j->path);
    j->pinfo = png_create_info_struct(j->png);
    NNU_CHECK(j->pinfo, NNU_STATUS_ERR_OOM, "cannot write '%s': out of memory (libpng)", j->path);
    if (setjmp(png_jmpbuf(j->png))) return job_failure(j, "write");

    png_set_write_fn(j->png, j, write_cb, flush_cb);
    if (j->level > 0) png_set_compression_level(j->png, j->level);
    png_set_IHDR(j->png, j->pinfo, (png_uint_32)width, (png_uint_32)height, j->bit_depth, j->color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(j->png, j->pinfo);
    if (j->bit_depth == 16 && NNU_PNG_LITTLE_ENDIAN) png_set_swap(j->png);   /* PNG is big-endian */
    png_write_image(j->png, j->rows);
    png_write_end(j->png, NULL);
    return NNU_STATUS_OK;
}

nnu_status nnu_png_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                         const nnu_image_write_opts *opts) {
    (void)ref;                                           /* PNG has no geometry */
    NNU_TRY(nnu_image_check_writable(path, t));
    char shp[96];
    nnu_tensor_shape_str(t, shp, sizeof shp);
    /* (H, W), (1, H, W) or (c, 1, H, W) with c = 1 (gray), 3 (RGB), 4 (RGBA) */
    int64_t c = 1, z = 1, h, w;
    if (t->ndim == 2) { h = t->shape[0]; w = t->shape[1]; }
    else if (t->ndim == 3) { z = t->shape[0]; h = t->shape[1]; w = t->shape[2]; }
    else if (t->ndim == 4) { c = t->shape[0]; z = t->shape[1]; h = t->shape[2]; w = t->shape[3]; }
    else
        return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "cannot write '%s': a PNG holds (1, y, x) or (c, 1, y, x), got %s",
                        path, shp);
    NNU_CHECK(z == 1, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': a PNG holds one 2-D image, but the tensor %s has %lld slices "
              "(write 3-D data as .tif/.tiff or .nii.gz)", path, shp, (long long)z);
    NNU_CHECK(c == 1 || c == 3 || c == 4, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': %lld channels (%s); PNG writes gray, RGB or RGBA", path, (long long)c, shp);
    NNU_CHECK(h >= 1 && w >= 1 && h <= 0x7fffffff && w <= 0x7fffffff, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': bad image size %s", path, shp);

    nnu_tensor *s;
    NNU_TRY(nnu_image_storage_tensor(path, t, opts, &s));
    nnu_status st = NNU_STATUS_OK;
    if (s->dtype != NNU_DTYPE_U8 && !(s->dtype == NNU_DTYPE_U16 && c == 1))
        st = NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED,
                      "cannot write '%s': PNG stores u8 (gray, RGB, RGBA) or u16 (gray), not %s%s "
                      "(convert it, or write it as a segmentation)", path, nnu_dtype_name(s->dtype),
                      c > 1 ? " colour" : "");
    png_job j;
    memset(&j, 0, sizeof j);
    j.path = path;
    j.w = s;
    j.bit_depth = s->dtype == NNU_DTYPE_U16 ? 16 : 8;
    j.color_type = c == 1 ? PNG_COLOR_TYPE_GRAY : c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA;
    j.level = opts && opts->compression >= 1 && opts->compression <= 9 ? opts->compression : 0;

    /* rows: gray straight from the tensor; colour interleaved from its (c, H, W) planes */
    size_t es = nnu_dtype_size(s->dtype), rowbytes = (size_t)w * (size_t)c * es;
    if (st == NNU_STATUS_OK) {
        j.rows = malloc(sizeof *j.rows * (size_t)h);
        if (c > 1) j.buf = malloc(rowbytes * (size_t)h);
        if (!j.rows || (c > 1 && !j.buf))
            st = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot write '%s': out of memory", path);
    }
    if (st == NNU_STATUS_OK) {
        unsigned char *base = nnu_tensor_data(s);
        if (c > 1) {
            int64_t npix = h * w;
            for (int64_t k = 0; k < c; k++)
                for (int64_t i = 0; i < npix; i++) j.buf[i * c + k] = base[k * npix + i];
            base = j.buf;
        }
        for (int64_t y = 0; y < h; y++) j.rows[y] = base + (size_t)y * rowbytes;
    }
    char tmp[4096];
    if (st == NNU_STATUS_OK) st = nnu_image_temp_path(path, tmp, sizeof tmp);
    if (st == NNU_STATUS_OK) {
        j.fp = fopen(tmp, "wb");
        if (!j.fp) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    if (st == NNU_STATUS_OK) st = png_encode(&j, h, w);
    if (j.png) png_destroy_write_struct(&j.png, j.pinfo ? &j.pinfo : NULL);
    if (j.fp) {
        int rc = fclose(j.fp);
        if (st == NNU_STATUS_OK && rc != 0)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        if (st == NNU_STATUS_OK && rename(tmp, path) != 0)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        if (st != NNU_STATUS_OK) remove(tmp);
    }
    free(j.rows);
    free(j.buf);
    nnu_tensor_release(s);
    return st;
}
