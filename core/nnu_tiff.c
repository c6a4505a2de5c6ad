/* nnu_tiff.c: TIFF reading and writing with libtiff, as the reference's
 * NaturalImage2DIO (skimage.io.imread -> tifffile) and Tiff3DIO (tifffile) see
 * .tif/.tiff files.
 *
 * What tifffile.imread returns, and so what we return (S samples per pixel):
 *     one page, S = 1            (1, H, W)      spatial_dims 2
 *     one page, S = 3 or 4       (S, 1, H, W)   spatial_dims 2 (skimage: (H, W, S))
 *     Z pages, S = 1             (Z, H, W)      spatial_dims 3
 *     Z pages, S = 3 or 4        (S, Z, H, W)   spatial_dims 3 (Tiff3DIO rejects it)
 *     S = 2 or S > 4             refused        (NaturalImage2DIO's assertion)
 * tifffile's own files carry their array shape as JSON in page 0's
 * ImageDescription ({"shape": [Z, H, W]}); when it agrees with the pages it decides,
 * as in tifffile: {"shape": [1, H, W]} is a one-slice volume (spatial_dims 3), and a
 * shape covering fewer pages than the file has selects those first pages.
 * Samples are returned as stored (palette indices, MINISWHITE unchanged, no
 * Orientation applied), as tifffile does. Dtypes: uint 1/2/4-bit (unpacked, one
 * sample per pixel) and 8-bit -> u8, uint16 -> u16, uint32/uint64 -> i64, int
 * 8/16/32/64 -> i8/i16/i32/i64, float16 -> f32, float32/64 -> f32/f64. Strips and
 * tiles, planar configuration contiguous and separate, every compression this
 * libtiff decodes.
 *
 * Writing follows the reference's writers: a 2-D image is one page (uncompressed
 * unless a zlib level is given, as skimage.io.imsave writes it); a 3-D volume is one
 * page per z slice, zlib (Adobe deflate) compressed (Tiff3DIO: compression='zlib'),
 * and gets the spacing sidecar <name>.json of the reference image's spacing (none
 * without a reference), written as batchgenerators' save_json (json.dump, indent 4)
 * writes it. Both carry tifffile's {"shape": [...]}
 * description, so tifffile reads a one-slice volume back as 3-D.
 *
 * Errors: libtiff reports through handlers; per-file handlers (TIFFOpenOptions,
 * libtiff >= 4.5) put the first message of each step into a tiff_ctx, so nothing
 * reaches stderr and the status names the file and libtiff's reason. */
#include "nnu_tiff.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tiffio.h>

#include "nnu_json.h"

#define NNU_TIFF_MAX_BYTES (INT64_C(1) << 35)    /* decoded array limit (32 GiB) */
#define NNU_TIFF_MAX_PAGES (1 << 20)
#define NNU_TIFF_MAX_DESC  65536                  /* ImageDescription bytes parsed */

/* ---- libtiff messages ---- */

typedef struct tiff_ctx {
    const char *path;
    char        msg[320];       /* first libtiff error since the last reset */
    int         have_msg;
} tiff_ctx;

static int on_tiff_error(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    tiff_ctx *c = ud;
    if (!c->have_msg) {
        char m[256];
        vsnprintf(m, sizeof m, fmt, ap);
        snprintf(c->msg, sizeof c->msg, "%s%s%s", module ? module : "", module ? ": " : "", m);
        c->have_msg = 1;
    }
    return 1;                   /* handled: the global (stderr) handler stays silent */
}

static int on_tiff_warning(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap) {
    /* unknown tags and the like are ignored, as tifffile does; but a tag whose value
     * lies beyond the end of the file ("IO error during reading of ...; tag ignored")
     * means a truncated file */
    if (strstr(fmt, "IO error")) return on_tiff_error(tif, ud, module, fmt, ap);
    return 1;
}

static void ctx_reset(tiff_ctx *c) { c->have_msg = 0; c->msg[0] = '\0'; }

static TIFF *tiff_open(tiff_ctx *c, const char *name, const char *mode) {
    TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
    if (!o) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(o, on_tiff_error, c);
    TIFFOpenOptionsSetWarningHandlerExtR(o, on_tiff_warning, c);
    TIFFOpenOptionsSetMaxSingleMemAlloc(o, (tmsize_t)1 << 31);   /* libtiff's own buffers */
    TIFF *tif = TIFFOpenExt(name, mode, o);
    TIFFOpenOptionsFree(o);
    return tif;
}

/* "cannot read 'x.tif': <what>: <libtiff's message>" */
static nnu_status read_fail(const tiff_ctx *c, nnu_status s, const char *what) {
    if (c->have_msg) return NNU_FAIL(s, "cannot read '%s': %s (%s)", c->path, what, c->msg);
    return NNU_FAIL(s, "cannot read '%s': %s", c->path, what);
}

/* ---- reading: page directory scan ---- */

typedef struct tiff_page {
    uint32_t w, h;
    uint16_t spp, bps, fmt, planar, photometric, compression;
    int      tiled;
} tiff_page;

typedef struct tiff_file {
    tiff_ctx   c;
    TIFF      *tif;
    int64_t    file_size;
    tiff_page *pages;           /* every page in the IFD chain */
    int        n_pages, cap_pages;
    char      *desc;            /* page 0's ImageDescription (may be NULL) */
    int        n_use;           /* pages that form the array */
    nnu_dtype  dtype;
    int        kind;            /* how a sample converts, see KIND_* */
} tiff_file;

enum { KIND_COPY, KIND_BITS, KIND_U32, KIND_U64, KIND_F16 };

static const char *compression_name(int c) {
    switch (c) {
    case COMPRESSION_NONE: return "none";
    case COMPRESSION_LZW: return "LZW";
    case COMPRESSION_ADOBE_DEFLATE: case COMPRESSION_DEFLATE: return "deflate";
    case COMPRESSION_PACKBITS: return "PackBits";
    case COMPRESSION_JPEG: return "JPEG";
    case COMPRESSION_OJPEG: return "old-style JPEG";
    case COMPRESSION_LZMA: return "LZMA";
    case COMPRESSION_ZSTD: return "Zstandard";
    case COMPRESSION_WEBP: return "WebP";
    }
    return "other";
}

/* Largest credible decoded/encoded ratio of a codec: a header that promises more
 * pixel bytes than this times the file size is lying. */
static int64_t max_ratio(int compression) {
    switch (compression) {
    case COMPRESSION_NONE: return 1;
    case COMPRESSION_PACKBITS: return 64;          /* 2 bytes -> 128 */
    case COMPRESSION_ADOBE_DEFLATE: case COMPRESSION_DEFLATE: return 1100;
    case COMPRESSION_LZW: return 4096;             /* one 12-bit code -> up to 4096 bytes */
    }
    return INT64_C(1) << 16;
}

static nnu_status scan_page(tiff_file *f) {
    TIFF *tif = f->tif;
    if (f->n_pages == f->cap_pages) {
        int cap = f->cap_pages ? 2 * f->cap_pages : 16;
        tiff_page *p = realloc(f->pages, sizeof *p * (size_t)cap);
        NNU_CHECK(p, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", f->c.path);
        f->pages = p;
        f->cap_pages = cap;
    }
    tiff_page *p = &f->pages[f->n_pages];
    memset(p, 0, sizeof *p);
    uint16_t v16;
    NNU_CHECK(TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &p->w) && TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &p->h),
              NNU_STATUS_ERR_FORMAT, "cannot read '%s': page %d has no image size", f->c.path, f->n_pages);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &v16); p->spp = v16;
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &v16); p->bps = v16;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &v16); p->fmt = v16;
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &v16); p->planar = v16;
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &v16); p->compression = v16;
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &v16)) v16 = PHOTOMETRIC_MINISBLACK;
    p->photometric = v16;
    p->tiled = TIFFIsTiled(tif);
    if (f->n_pages == 0) {
        const char *d = NULL;
        if (TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &d) && d) {
            size_t n = strnlen(d, NNU_TIFF_MAX_DESC);
            f->desc = malloc(n + 1);
            NNU_CHECK(f->desc, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", f->c.path);
            memcpy(f->desc, d, n);
            f->desc[n] = '\0';
        }
    }
    f->n_pages++;
    return NNU_STATUS_OK;
}

/* libtiff takes a next-IFD pointer cut off by the end of the file for 0, the end
 * of the chain, so a truncated file would silently lose its last pages: the last
 * IFD must be complete up to and including its next pointer. */
static nnu_status check_last_ifd(tiff_file *f) {
    uint64_t off = TIFFCurrentDirOffset(f->tif);
    int big = TIFFIsBigTIFF(f->tif), swab = TIFFIsByteSwapped(f->tif);
    unsigned char b[8] = {0};
    FILE *fp = fopen(f->c.path, "rb");
    NNU_CHECK(fp, NNU_STATUS_ERR_IO, "cannot read '%s': %s", f->c.path, strerror(errno));
    int ok = fseeko(fp, (off_t)off, SEEK_SET) == 0 && fread(b, 1, big ? 8 : 2, fp) == (size_t)(big ? 8 : 2);
    fclose(fp);
    uint64_t n = 0;
    int nb = big ? 8 : 2;
    int host_le = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, file_le = swab ? !host_le : host_le;
    for (int i = 0; i < nb; i++) n = n << 8 | b[file_le ? nb - 1 - i : i];
    uint64_t end = big ? off + 8 + n * 20 + 8 : off + 2 + n * 12 + 4;
    NNU_CHECK(ok && n < (UINT64_C(1) << 32) && end <= (uint64_t)f->file_size, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': the directory (IFD) of page %d at byte %llu is cut off by the end of the "
              "file (%lld bytes): truncated", f->c.path, f->n_pages - 1, (unsigned long long)off,
              (long long)f->file_size);
    return NNU_STATUS_OK;
}

static nnu_status scan_pages(tiff_file *f) {
    char what[64];
    for (;;) {
        /* libtiff skips tags it cannot read with an error and goes on: a corrupt file */
        if (f->c.have_msg) {
            snprintf(what, sizeof what, "corrupt directory (IFD) of page %d", f->n_pages);
            return read_fail(&f->c, NNU_STATUS_ERR_FORMAT, what);
        }
        NNU_TRY(scan_page(f));
        if (TIFFLastDirectory(f->tif)) return check_last_ifd(f);
        NNU_CHECK(f->n_pages < NNU_TIFF_MAX_PAGES, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': more than %d pages", f->c.path, NNU_TIFF_MAX_PAGES);
        ctx_reset(&f->c);
        if (!TIFFReadDirectory(f->tif)) {
            snprintf(what, sizeof what, "bad directory (IFD) of page %d", f->n_pages);
            return read_fail(&f->c, NNU_STATUS_ERR_FORMAT, what);
        }
    }
}

/* ---- reading: what array the pages form ---- */

/* tifffile's {"shape": [...]} description: the shape if it is one, else 0 entries. */
static int shaped_description(const char *desc, int64_t *shape, int max) {
    if (!desc || desc[0] != '{') return 0;
    char err[64];
    nnu_json *doc = nnu_json_parse(desc, strlen(desc), err, sizeof err);
    if (!doc) return 0;
    const nnu_json *s = nnu_json_get(doc, "shape");
    int n = 0;
    if (s && s->type == NNU_JSON_ARRAY && s->n >= 1 && s->n <= max) {
        n = s->n;
        for (int i = 0; i < s->n; i++) {
            const nnu_json *v = &s->items[i];
            if (v->type != NNU_JSON_NUMBER || !v->is_int || v->integer < 1 || v->integer > (INT64_C(1) << 32))
                n = 0;
            else
                shape[i] = v->integer;
        }
    }
    nnu_json_free(doc);
    return n;
}

/* ImageJ's "key=value" description lines: value of key, or 0. */
static long imagej_value(const char *desc, const char *key) {
    size_t k = strlen(key);
    for (const char *p = desc; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, k) == 0 && p[k] == '=') return strtol(p + k + 1, NULL, 10);
    return 0;
}

static nnu_status pick_dtype(tiff_file *f, const tiff_page *p) {
    const char *path = f->c.path;
    int bps = p->bps, fmt = p->fmt == SAMPLEFORMAT_VOID ? SAMPLEFORMAT_UINT : p->fmt;
    f->kind = KIND_COPY;
    if (fmt == SAMPLEFORMAT_UINT) {
        if (bps == 1 || bps == 2 || bps == 4) {
            NNU_CHECK(p->spp == 1, NNU_STATUS_ERR_UNSUPPORTED,
                      "cannot read '%s': %d-bit samples with %d samples per pixel are not supported", path, bps,
                      p->spp);
            f->dtype = NNU_DTYPE_U8;
            f->kind = KIND_BITS;
            return NNU_STATUS_OK;
        }
        switch (bps) {
        case 8: f->dtype = NNU_DTYPE_U8; return NNU_STATUS_OK;
        case 16: f->dtype = NNU_DTYPE_U16; return NNU_STATUS_OK;
        case 32: f->dtype = NNU_DTYPE_I64; f->kind = KIND_U32; return NNU_STATUS_OK;   /* no u32 tensors */
        case 64: f->dtype = NNU_DTYPE_I64; f->kind = KIND_U64; return NNU_STATUS_OK;   /* range-checked */
        }
    } else if (fmt == SAMPLEFORMAT_INT) {
        switch (bps) {
        case 8: f->dtype = NNU_DTYPE_I8; return NNU_STATUS_OK;
        case 16: f->dtype = NNU_DTYPE_I16; return NNU_STATUS_OK;
        case 32: f->dtype = NNU_DTYPE_I32; return NNU_STATUS_OK;
        case 64: f->dtype = NNU_DTYPE_I64; return NNU_STATUS_OK;
        }
    } else if (fmt == SAMPLEFORMAT_IEEEFP) {
        switch (bps) {
        case 16: f->dtype = NNU_DTYPE_F32; f->kind = KIND_F16; return NNU_STATUS_OK;
        case 32: f->dtype = NNU_DTYPE_F32; return NNU_STATUS_OK;
        case 64: f->dtype = NNU_DTYPE_F64; return NNU_STATUS_OK;
        }
    }
    static const char *fmts[] = {"?", "uint", "int", "float", "void", "complex int", "complex float"};
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': %d-bit %s samples are not supported", path, bps,
                    p->fmt <= 6 ? fmts[p->fmt] : "unknown");
}

/* Decides info's shape from the pages (and tifffile's description), checks that
 * the used pages agree and that the file can hold what the header promises. */
static nnu_status plan_array(tiff_file *f, nnu_image_info *info) {
    const char *path = f->c.path;
    const tiff_page *p0 = &f->pages[0];
    int64_t H = p0->h, W = p0->w, S = p0->spp;
    NNU_CHECK(H >= 1 && W >= 1 && S >= 1, NNU_STATUS_ERR_FORMAT, "cannot read '%s': bad image size %lldx%lldx%lld",
              path, (long long)W, (long long)H, (long long)S);
    NNU_CHECK(S <= 4 && S != 2, NNU_STATUS_ERR_UNSUPPORTED,
              "cannot read '%s': %lld samples per pixel; the reference reads gray (1), RGB (3) or RGBA (4) only",
              path, (long long)S);

    /* tifffile decides the array shape first from its own description */
    int64_t shape[8];
    int nd = shaped_description(f->desc, shape, 8), shaped = 0;
    f->n_use = f->n_pages;
    if (nd >= 2 && S == 1 && shape[nd - 2] == H && shape[nd - 1] == W) {
        int64_t prod = 1;
        for (int i = 0; i < nd - 2; i++) prod *= shape[i];
        NNU_CHECK(prod <= f->n_pages, NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': tifffile's description says %lld pages, the file has %d: truncated?", path,
                  (long long)prod, f->n_pages);
        f->n_use = (int)prod;
        shaped = 1;
    }
    if (!shaped && f->desc && strncmp(f->desc, "ImageJ=", 7) == 0) {
        long channels = imagej_value(f->desc, "channels"), frames = imagej_value(f->desc, "frames");
        long images = imagej_value(f->desc, "images");
        NNU_CHECK(channels <= 1 && frames <= 1, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': ImageJ hyperstack (%ld channels, %ld frames) is not supported", path,
                  channels, frames);
        NNU_CHECK(images <= f->n_pages, NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': ImageJ stack of %ld images stored in %d pages is not supported", path, images,
                  f->n_pages);
    }
    for (int i = 1; i < f->n_use; i++) {
        const tiff_page *q = &f->pages[i];
        NNU_CHECK(q->w == p0->w && q->h == p0->h && q->spp == p0->spp && q->bps == p0->bps && q->fmt == p0->fmt,
                  NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': page %d (%ux%u, %u x %u-bit samples) differs from page 0 (%ux%u, %u x %u-bit); "
                  "only stacks of equal pages are supported", path, i, (unsigned)q->w, (unsigned)q->h,
                  (unsigned)q->spp, (unsigned)q->bps, (unsigned)p0->w, (unsigned)p0->h, (unsigned)p0->spp,
                  (unsigned)p0->bps);
    }
    NNU_TRY(pick_dtype(f, p0));

    int64_t Z = f->n_use, bytes = 0, es = (int64_t)nnu_dtype_size(f->dtype);
    NNU_CHECK(H <= INT32_MAX && W <= INT32_MAX && H * W <= NNU_TIFF_MAX_BYTES / (S * Z * es), NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': %d pages of %lldx%lld pixels: too large", path, f->n_use, (long long)W,
              (long long)H);
    for (int i = 0; i < f->n_use; i++) {
        const tiff_page *q = &f->pages[i];
        NNU_CHECK(TIFFIsCODECConfigured(q->compression), NNU_STATUS_ERR_UNSUPPORTED,
                  "cannot read '%s': page %d uses compression %u (%s), which this libtiff cannot decode", path, i,
                  (unsigned)q->compression, compression_name(q->compression));
        NNU_CHECK(q->photometric != PHOTOMETRIC_YCBCR && q->photometric != PHOTOMETRIC_LOGL &&
                      q->photometric != PHOTOMETRIC_LOGLUV,
                  NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': photometric interpretation %u is not supported",
                  path, (unsigned)q->photometric);
        bytes += (H * W * S * q->bps + 7) / 8 / max_ratio(q->compression);
    }
    NNU_CHECK(bytes <= f->file_size, NNU_STATUS_ERR_FORMAT,
              "cannot read '%s': the headers promise %d pages of %lldx%lld x %lld samples, more than the %lld-byte "
              "file can hold", path, f->n_use, (long long)W, (long long)H, (long long)S, (long long)f->file_size);

    memset(info, 0, sizeof *info);
    info->format = NNU_IMAGE_FORMAT_TIFF;
    info->dtype = f->dtype;
    if (S == 1 && shaped && nd > 4)
        return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot read '%s': %d-D array (tifffile shape) is not supported",
                        path, nd);
    if (S == 1 && shaped && nd == 4) {
        info->ndim = 4;
        memcpy(info->shape, shape, 4 * sizeof *shape);
        info->spatial_dims = 3;
    } else if (S == 1) {
        int three_d = shaped ? nd == 3 : Z > 1;
        info->ndim = 3;
        info->shape[0] = Z; info->shape[1] = H; info->shape[2] = W;
        info->spatial_dims = three_d ? 3 : 2;
    } else {
        info->ndim = 4;
        info->shape[0] = S; info->shape[1] = Z; info->shape[2] = H; info->shape[3] = W;
        info->spatial_dims = Z > 1 ? 3 : 2;
    }
    for (int i = 0; i < 3; i++) { info->spacing[i] = 1.0; info->spacing_itk[i] = 1.0; }
    for (int i = 0; i < 9; i++) info->direction[i] = (i % 4 == 0);
    return NNU_STATUS_OK;
}

/* ---- reading: pixels ---- */

/* One row segment of a strip/tile into the planes of the current page.
 * src: the decoded row (n pixels of all samples if contiguous, of sample `plane`
 * if separate); dst index y * W + x0 .. + n. */
typedef struct row_job {
    const tiff_file *f;
    unsigned char  **planes;    /* S planes of this page, H * W elements each */
    int64_t          W;
    int              S, contig, bps;
    size_t           es;        /* output element size */
} row_job;

static nnu_status put_row(const row_job *r, const unsigned char *src, int64_t y, int64_t x0, int64_t n,
                          int plane) {
    int ns = r->contig ? r->S : 1;              /* samples per pixel in src */
    int p_first = r->contig ? 0 : plane;
    for (int s = 0; s < ns; s++) {
        unsigned char *dst = r->planes[p_first + s] + (size_t)(y * r->W + x0) * r->es;
        switch (r->f->kind) {
        case KIND_COPY:
            if (ns == 1) { memcpy(dst, src, (size_t)n * r->es); break; }
            for (int64_t i = 0; i < n; i++) memcpy(dst + i * r->es, src + (i * ns + s) * r->es, r->es);
            break;
        case KIND_BITS: {                       /* one sample per pixel, MSB first */
            int bps = r->bps, mask = (1 << bps) - 1;
            for (int64_t i = 0; i < n; i++) {
                int64_t bit = i * bps;
                dst[i] = (unsigned char)((src[bit >> 3] >> (8 - bps - (bit & 7))) & mask);
            }
            break;
        }
        case KIND_U32:
            for (int64_t i = 0; i < n; i++) {
                uint32_t v;
                memcpy(&v, src + (i * ns + s) * 4, 4);
                int64_t w = v;
                memcpy(dst + i * 8, &w, 8);
            }
            break;
        case KIND_U64:
            for (int64_t i = 0; i < n; i++) {
                uint64_t v;
                memcpy(&v, src + (i * ns + s) * 8, 8);
                NNU_CHECK(v <= (uint64_t)INT64_MAX, NNU_STATUS_ERR_UNSUPPORTED,
                          "cannot read '%s': uint64 sample %llu does not fit int64", r->f->c.path,
                          (unsigned long long)v);
                int64_t w = (int64_t)v;
                memcpy(dst + i * 8, &w, 8);
            }
            break;
        case KIND_F16:
            for (int64_t i = 0; i < n; i++) {
                uint16_t h;
                memcpy(&h, src + (i * ns + s) * 2, 2);
                float v = nnu_f16_to_f32(h);
                memcpy(dst + i * 4, &v, 4);
            }
            break;
        }
    }
    return NNU_STATUS_OK;
}

static nnu_status decode_page(tiff_file *f, int z, const row_job *r, int64_t H, unsigned char **buf,
                              tmsize_t *buf_size) {
    TIFF *tif = f->tif;
    const tiff_page *p = &f->pages[z];
    int nplanes = r->contig ? 1 : r->S;
    char what[96];
    ctx_reset(&f->c);
    if (p->tiled) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        tmsize_t size = TIFFTileSize(tif), rowsize = TIFFTileRowSize(tif);
        /* a tile may overhang the image, but not by more than a lying header would */
        int64_t page = H * r->W * r->S * (int64_t)r->es;
        NNU_CHECK(tw > 0 && th > 0 && size > 0 && rowsize > 0 && size <= (page > (1 << 22) ? 16 * page : 1 << 26),
                  NNU_STATUS_ERR_FORMAT,
                  "cannot read '%s': page %d: bad tile size %ux%u", f->c.path, z, (unsigned)tw, (unsigned)th);
        if (size > *buf_size) {
            unsigned char *b = realloc(*buf, (size_t)size);
            NNU_CHECK(b, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", f->c.path);
            *buf = b;
            *buf_size = size;
        }
        for (int pl = 0; pl < nplanes; pl++)
            for (int64_t ty = 0; ty < H; ty += th)
                for (int64_t tx = 0; tx < r->W; tx += tw) {
                    uint32_t tile = TIFFComputeTile(tif, (uint32_t)tx, (uint32_t)ty, 0, (uint16_t)pl);
                    if (TIFFReadEncodedTile(tif, tile, *buf, size) < 0) {
                        snprintf(what, sizeof what, "page %d: cannot decode tile %u", z, (unsigned)tile);
                        return read_fail(&f->c, NNU_STATUS_ERR_FORMAT, what);
                    }
                    int64_t nr = H - ty < th ? H - ty : th, nc = r->W - tx < tw ? r->W - tx : tw;
                    for (int64_t k = 0; k < nr; k++)
                        NNU_TRY(put_row(r, *buf + k * rowsize, ty + k, tx, nc, pl));
                }
        return NNU_STATUS_OK;
    }
    uint32_t rps = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
    if (rps == 0 || rps > H) rps = (uint32_t)H;
    tmsize_t line = TIFFScanlineSize(tif);
    NNU_CHECK(line > 0, NNU_STATUS_ERR_FORMAT, "cannot read '%s': page %d: bad scanline size", f->c.path, z);
    tmsize_t size = line * (tmsize_t)rps;
    if (size > *buf_size) {
        unsigned char *b = realloc(*buf, (size_t)size);
        NNU_CHECK(b, NNU_STATUS_ERR_OOM, "cannot read '%s': out of memory", f->c.path);
        *buf = b;
        *buf_size = size;
    }
    for (int pl = 0; pl < nplanes; pl++)
        for (int64_t y0 = 0; y0 < H; y0 += rps) {
            int64_t nr = H - y0 < rps ? H - y0 : rps;
            uint32_t strip = TIFFComputeStrip(tif, (uint32_t)y0, (uint16_t)pl);
            tmsize_t want = line * (tmsize_t)nr, got = TIFFReadEncodedStrip(tif, strip, *buf, want);
            if (got < want) {
                snprintf(what, sizeof what, "page %d: cannot decode strip %u%s", z, (unsigned)strip,
                         got >= 0 ? " (short)" : "");
                return read_fail(&f->c, NNU_STATUS_ERR_FORMAT, what);
            }
            for (int64_t k = 0; k < nr; k++) NNU_TRY(put_row(r, *buf + k * line, y0 + k, 0, r->W, pl));
        }
    return NNU_STATUS_OK;
}

static nnu_status read_pixels(tiff_file *f, nnu_tensor *t) {
    const tiff_page *p0 = &f->pages[0];
    int64_t H = p0->h, W = p0->w, S = p0->spp, Z = f->n_use;
    row_job r = {f, NULL, W, (int)S, 1, p0->bps, nnu_dtype_size(t->dtype)};
    unsigned char *planes[4];
    r.planes = planes;
    unsigned char *base = nnu_tensor_data(t), *buf = NULL;
    tmsize_t buf_size = 0;
    nnu_status st = NNU_STATUS_OK;
    ctx_reset(&f->c);
    if (!TIFFSetDirectory(f->tif, 0)) st = read_fail(&f->c, NNU_STATUS_ERR_FORMAT, "cannot re-read page 0");
    for (int64_t z = 0; z < Z && st == NNU_STATUS_OK; z++) {
        if (z > 0) {
            ctx_reset(&f->c);
            if (!TIFFReadDirectory(f->tif)) {
                st = read_fail(&f->c, NNU_STATUS_ERR_FORMAT, "cannot re-read a page");
                break;
            }
        }
        /* array (S, Z, H, W) or (Z, H, W): plane s of page z */
        for (int64_t s = 0; s < S; s++) planes[s] = base + (size_t)((s * Z + z) * H * W) * r.es;
        r.contig = f->pages[z].planar != PLANARCONFIG_SEPARATE || S == 1;
        st = decode_page(f, (int)z, &r, H, &buf, &buf_size);
    }
    free(buf);
    return st;
}

static nnu_status tiff_read_any(const char *path, nnu_image_info *info_out, nnu_tensor **out) {
    nnu_image_info local, *info = info_out ? info_out : &local;
    memset(info, 0, sizeof *info);
    struct stat sb;
    if (stat(path, &sb) != 0) return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    NNU_CHECK(S_ISREG(sb.st_mode), NNU_STATUS_ERR_IO, "cannot read '%s': not a regular file", path);
    tiff_file f;
    memset(&f, 0, sizeof f);
    f.c.path = path;
    f.file_size = (int64_t)sb.st_size;
    f.tif = tiff_open(&f.c, path, "rm");                 /* m: no mmap (a file cut meanwhile cannot SIGBUS) */
    if (!f.tif) return read_fail(&f.c, NNU_STATUS_ERR_FORMAT, "not a readable TIFF file");
    nnu_status st = scan_pages(&f);
    if (st == NNU_STATUS_OK) st = plan_array(&f, info);
    nnu_tensor *t = NULL;
    if (st == NNU_STATUS_OK && out) {
        st = nnu_tensor_new(info->dtype, info->ndim, info->shape, &t);
        if (st == NNU_STATUS_OK) st = read_pixels(&f, t);
    }
    TIFFClose(f.tif);
    free(f.pages);
    free(f.desc);
    if (st != NNU_STATUS_OK) {
        nnu_tensor_release(t);
        return st;
    }
    if (out) *out = t;
    return NNU_STATUS_OK;
}

nnu_status nnu_tiff_read_header(const char *path, nnu_image_info *info) {
    return tiff_read_any(path, info, NULL);
}

nnu_status nnu_tiff_read(const char *path, nnu_image_info *info, nnu_tensor **out) {
    *out = NULL;
    return tiff_read_any(path, info, out);
}

/* ---- writing ---- */

/* repr(float) of Python: the shortest digits that read back to v, fixed notation
 * for 1e-4 <= |v| < 1e16 (with ".0" when integral), else d.ddde+XX. */
static void py_float_repr(double v, char *out, size_t n) {
    char buf[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    const char *s = buf;
    int neg = *s == '-';
    if (neg) s++;
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    int e = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    size_t k = 0;
    k += (size_t)snprintf(out + k, n - k, "%s", neg ? "-" : "");
    if (e >= -4 && e < 16) {
        if (e < 0) {
            k += (size_t)snprintf(out + k, n - k, "0.%.*s%s", -e - 1, "0000", digits);
        } else if (nd <= e + 1) {
            k += (size_t)snprintf(out + k, n - k, "%s%.*s.0", digits, e + 1 - nd, "0000000000000000");
        } else {
            k += (size_t)snprintf(out + k, n - k, "%.*s.%s", e + 1, digits, digits + e + 1);
        }
    } else {
        k += (size_t)snprintf(out + k, n - k, "%c%s%s", digits[0], nd > 1 ? "." : "", digits + 1);
        snprintf(out + k, n - k, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

/* Tiff3DIO.write_seg's sidecar: save_json({'spacing': [...]}, indent=4), through a temporary name. */
static nnu_status write_sidecar(const char *tif_path, const double spacing[3]) {
    char side[4096];
    NNU_TRY(nnu_image_sidecar_path(tif_path, 1, side, sizeof side));
    char text[512], num[3][40];
    for (int i = 0; i < 3; i++) {
        NNU_CHECK(isfinite(spacing[i]) && spacing[i] > 0, NNU_STATUS_ERR_ARG,
                  "cannot write '%s': spacing[%d] = %g must be a number > 0", side, i, spacing[i]);
        py_float_repr(spacing[i], num[i], sizeof num[i]);
    }
    int len = snprintf(text, sizeof text, "{\n    \"spacing\": [\n        %s,\n        %s,\n        %s\n    ]\n}",
                       num[0], num[1], num[2]);
    return nnu_image_write_file(side, text, (size_t)len, NULL, 0);
}

static int tiff_format_of(nnu_dtype dt, uint16_t *bps, uint16_t *fmt) {
    switch (dt) {
    case NNU_DTYPE_U8: *bps = 8; *fmt = SAMPLEFORMAT_UINT; return 1;
    case NNU_DTYPE_U16: *bps = 16; *fmt = SAMPLEFORMAT_UINT; return 1;
    case NNU_DTYPE_I8: *bps = 8; *fmt = SAMPLEFORMAT_INT; return 1;
    case NNU_DTYPE_I16: *bps = 16; *fmt = SAMPLEFORMAT_INT; return 1;
    case NNU_DTYPE_I32: *bps = 32; *fmt = SAMPLEFORMAT_INT; return 1;
    case NNU_DTYPE_I64: *bps = 64; *fmt = SAMPLEFORMAT_INT; return 1;
    case NNU_DTYPE_F32: *bps = 32; *fmt = SAMPLEFORMAT_IEEEFP; return 1;
    case NNU_DTYPE_F64: *bps = 64; *fmt = SAMPLEFORMAT_IEEEFP; return 1;
    default: return 0;
    }
}

typedef struct tiff_out {
    int64_t  c, z, h, w;        /* (c, z, h, w); c > 1 only for a one-page RGB(A) image */
    uint16_t bps, fmt;
    int      deflate, level;
    char     desc[128];         /* tifffile's {"shape": [...]} */
} tiff_out;

/* One page: tags, then the strips. data: (h, w, c) interleaved samples. */
static nnu_status write_page(tiff_ctx *c, TIFF *tif, const tiff_out *o, const unsigned char *data, int first) {
    size_t es = o->bps / 8, line = (size_t)(o->w * o->c) * es;
    uint32_t rps = (uint32_t)(262144 / line > 0 ? 262144 / line : 1);      /* ~256 KiB strips */
    if (rps > o->h) rps = (uint32_t)o->h;
    int ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)o->w) &&
             TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)o->h) &&
             TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, o->bps) &&
             TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)o->c) &&
             TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, o->fmt) &&
             TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
             TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, o->c >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK) &&
             TIFFSetField(tif, TIFFTAG_COMPRESSION, o->deflate ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE) &&
             TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
    if (ok && o->c == 4) {
        uint16_t extra = EXTRASAMPLE_UNASSALPHA;
        ok = TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    if (ok && o->deflate && o->level > 0) ok = TIFFSetField(tif, TIFFTAG_ZIPQUALITY, o->level);
    if (ok && first) ok = TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, o->desc);
    NNU_CHECK(ok, NNU_STATUS_ERR_IO, "cannot write '%s': libtiff refused a tag (%s)", c->path,
              c->have_msg ? c->msg : "no message");
    for (int64_t y = 0, k = 0; y < o->h; y += rps, k++) {
        int64_t nr = o->h - y < rps ? o->h - y : rps;
        if (TIFFWriteEncodedStrip(tif, (uint32_t)k, (void *)(data + (size_t)y * line), (tmsize_t)(nr * (int64_t)line)) < 0)
            return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", c->path,
                            c->have_msg ? c->msg : "libtiff write error");
    }
    NNU_CHECK(TIFFWriteDirectory(tif), NNU_STATUS_ERR_IO, "cannot write '%s': %s", c->path,
              c->have_msg ? c->msg : "libtiff cannot write the directory");
    return NNU_STATUS_OK;
}

nnu_status nnu_tiff_write(const char *path, const nnu_tensor *t, const nnu_image_info *ref,
                          const nnu_image_write_opts *opts) {
    NNU_TRY(nnu_image_check_writable(path, t));
    char shp[96];
    nnu_tensor_shape_str(t, shp, sizeof shp);
    tiff_out o;
    memset(&o, 0, sizeof o);
    o.c = 1; o.z = 1;
    if (t->ndim == 2) { o.h = t->shape[0]; o.w = t->shape[1]; }
    else if (t->ndim == 3) { o.z = t->shape[0]; o.h = t->shape[1]; o.w = t->shape[2]; }
    else if (t->ndim == 4) { o.c = t->shape[0]; o.z = t->shape[1]; o.h = t->shape[2]; o.w = t->shape[3]; }
    else
        return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "cannot write '%s': a TIFF holds (z, y, x) or (c, 1, y, x), got %s",
                        path, shp);
    NNU_CHECK(o.z >= 1 && o.h >= 1 && o.w >= 1 && o.h <= UINT32_MAX && o.w <= UINT32_MAX, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': bad image size %s", path, shp);
    /* 2-D (NaturalImage2DIO) or 3-D (Tiff3DIO): the reference image decides, else z */
    int three_d = ref && ref->spatial_dims == 3 ? 1 : ref && ref->spatial_dims == 2 ? 0 : o.z > 1;
    NNU_CHECK(three_d || o.z == 1, NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': the reference image is 2-D but the tensor %s has %lld slices", path, shp,
              (long long)o.z);
    NNU_CHECK(o.c == 1 || ((o.c == 3 || o.c == 4) && o.z == 1 && !three_d), NNU_STATUS_ERR_SHAPE,
              "cannot write '%s': %s: TIFF writes one channel, or RGB(A) (3|4, 1, y, x) 2-D images", path, shp);

    nnu_tensor *s;
    NNU_TRY(nnu_image_storage_tensor(path, t, opts, &s));
    nnu_status st = NNU_STATUS_OK;
    if (!tiff_format_of(s->dtype, &o.bps, &o.fmt))
        st = NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "cannot write '%s': dtype %s", path, nnu_dtype_name(s->dtype));
    o.level = opts && opts->compression >= 1 && opts->compression <= 9 ? opts->compression : 0;
    o.deflate = three_d || o.level > 0;
    if (three_d)
        snprintf(o.desc, sizeof o.desc, "{\"shape\": [%lld, %lld, %lld]}", (long long)o.z, (long long)o.h,
                 (long long)o.w);
    else if (o.c == 1)
        snprintf(o.desc, sizeof o.desc, "{\"shape\": [%lld, %lld]}", (long long)o.h, (long long)o.w);
    else
        snprintf(o.desc, sizeof o.desc, "{\"shape\": [%lld, %lld, %lld]}", (long long)o.h, (long long)o.w,
                 (long long)o.c);

    /* RGB(A): planes (c, h, w) -> interleaved (h, w, c) */
    unsigned char *inter = NULL;
    const unsigned char *data = nnu_tensor_data(s);
    size_t es = nnu_dtype_size(s->dtype);
    if (st == NNU_STATUS_OK && o.c > 1) {
        int64_t npix = o.h * o.w;
        inter = malloc((size_t)(npix * o.c) * es);
        if (!inter) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "cannot write '%s': out of memory", path);
        for (int64_t k = 0; inter && k < o.c; k++)
            for (int64_t i = 0; i < npix; i++)
                memcpy(inter + (size_t)(i * o.c + k) * es, data + (size_t)(k * npix + i) * es, es);
        data = inter;
    }
    char tmp[4096];
    if (st == NNU_STATUS_OK) st = nnu_image_temp_path(path, tmp, sizeof tmp);
    tiff_ctx c = {path, "", 0};
    TIFF *tif = NULL;
    if (st == NNU_STATUS_OK) {
        int64_t total = nnu_tensor_numel(s) * (int64_t)es;
        tif = tiff_open(&c, tmp, total > (INT64_C(1) << 31) ? "w8" : "w");   /* BigTIFF past 2 GiB */
        if (!tif)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, c.have_msg ? c.msg : strerror(errno));
    }
    size_t page = (size_t)(o.h * o.w * o.c) * es;
    for (int64_t z = 0; z < o.z && st == NNU_STATUS_OK; z++)
        st = write_page(&c, tif, &o, data + (size_t)z * page, z == 0);
    if (tif) {
        TIFFClose(tif);
        if (st == NNU_STATUS_OK && c.have_msg) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, c.msg);
        if (st == NNU_STATUS_OK && rename(tmp, path) != 0)
            st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
        if (st != NNU_STATUS_OK) remove(tmp);
    }
    free(inter);
    nnu_tensor_release(s);
    /* without a reference there is no spacing to record: an existing sidecar is left alone */
    if (st == NNU_STATUS_OK && three_d && ref) st = write_sidecar(path, ref->spacing);
    return st;
}
