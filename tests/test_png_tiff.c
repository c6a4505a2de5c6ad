/* test_png_tiff.c: PNG and TIFF reading and writing (core/nnu_png.c, core/nnu_tiff.c)
 * through nnu_image.h, as the reference's NaturalImage2DIO and Tiff3DIO see them.
 *
 *  1. Reference answers: tests/fixtures/png_tiff/expect.json (tests/gen/gen_png_tiff_fixtures.py,
 *     nnunetv2 2.8.1 with skimage/tifffile/Pillow) gives, per file and reader class,
 *     the array's shape, dtype, spacing, sum/min/max, a weighted checksum and sample
 *     values, or the failure we must report instead.
 *  2. Files made here with libtiff: the layouts the fixtures lack (tiled planar-separate
 *     RGB, 4-bit, float16, uint64, pages of different sizes, 2 samples per pixel).
 *  3. Round trips write -> read: u8/u16 gray and RGB PNG, 2-D TIFF, 3-D TIFF with its
 *     spacing sidecar (exact bytes as Python's json.dump(indent=4)), the segmentation
 *     dtype rule (u8 if max < 255 else u16), one-slice volumes, refused shapes.
 *  4. Bad files: every cut of several fixtures, flipped bytes, lying headers, wrong
 *     signatures; each fails with ERR_FORMAT naming the file (a cut that loses only
 *     unused trailing bytes reads the same pixels), and never crashes (run under ASan
 *     in `make test-asan`). Flipped bytes in TIFF pixel data or unused tags cannot be
 *     detected (TIFF has no checksums): those reads only have to survive. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tiffio.h>
#include <zlib.h>

#include "check.h"
#include "testfiles.h"
#include "nnu_image.h"
#include "nnu_json.h"

#define FIX "tests/fixtures/png_tiff/"
#define REGEN "/tmp/refenv/bin/python tests/gen/gen_png_tiff_fixtures.py"

static void spill(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static int file_exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

static int same_tensor(const nnu_tensor *a, const nnu_tensor *b) {
    return a && b && a->dtype == b->dtype && nnu_tensor_same_shape(a, b) &&
           memcmp(nnu_tensor_data(a), nnu_tensor_data(b), (size_t)nnu_tensor_numel(a) * nnu_dtype_size(a->dtype)) == 0;
}

static double at(const nnu_tensor *t, int64_t i) {
    return nnu_dtype_load(t->dtype, (const char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(t->dtype));
}

/* a contiguous tensor with values f(i) */
static nnu_tensor *make(nnu_dtype dt, int ndim, const int64_t *shape, double (*f)(int64_t)) {
    nnu_tensor *t = NULL;
    if (nnu_tensor_new(dt, ndim, shape, &t)) { fprintf(stderr, "%s\n", nnu_last_error()); exit(2); }
    for (int64_t i = 0, n = nnu_tensor_numel(t); i < n; i++)
        nnu_dtype_store(dt, (char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(dt), f(i));
    return t;
}

static double v_u8(int64_t i) { return (double)((i * 37 + 11) % 256); }
static double v_u16(int64_t i) { return (double)((i * 7919 + 123) % 65536); }
static double v_i16(int64_t i) { return (double)((i * 7919) % 65536) - 32768; }
static double v_f32(int64_t i) { return (double)(float)(sin((double)i) * 1000.0); }
static double v_f64(int64_t i) { return cos((double)i) * 1e10; }
static double v_i64(int64_t i) { return (double)(i * 1000003) - 5e8; }
static double v_lab3(int64_t i) { return (double)(i % 4); }
static double v_lab255(int64_t i) { return (double)(i % 256); }
static double v_lab300(int64_t i) { return (double)((i * 13) % 301); }

/* ---- 1. the reference's answers ---- */

static nnu_image_read_opts opts_of(const char *reader, int is_seg) {
    nnu_image_read_opts o = {NNU_IMAGE_READER_AUTO, is_seg};
    if (strcmp(reader, "auto") != 0) o.reader = nnu_image_reader_parse(reader);
    return o;
}

static double num(const nnu_json *c, const char *key) {
    const nnu_json *v = nnu_json_get(c, key);
    return v && v->type == NNU_JSON_NUMBER ? v->number : NAN;
}

static void check_case(const nnu_json *c) {
    const nnu_json *jf = nnu_json_get(c, "file"), *jr = nnu_json_get(c, "reader"), *js = nnu_json_get(c, "is_seg");
    const nnu_json *ours = nnu_json_get(c, "ours");
    if (!jf || !jr || !js) { CHECK(0, "expect.json: case without file/reader/is_seg"); return; }
    char path[512];
    snprintf(path, sizeof path, FIX "%s", jf->string);
    nnu_image_read_opts o = opts_of(jr->string, js->boolean);
    nnu_image_info info, hinfo;
    nnu_tensor *t = NULL;
    nnu_status st = nnu_image_read(path, &o, &info, &t);
    nnu_status hst = nnu_image_read_header(path, &o, &hinfo);
    const char *what = jr->string;
    if (ours) {
        /* the reference fails (or deviates, see "deviation"): we must fail as listed */
        CHECK(st != NNU_STATUS_OK && strcmp(nnu_status_name(st), ours->string) == 0,
              "%s [%s]: got %s, want %s (%s)", path, what, nnu_status_name(st), ours->string, nnu_last_error());
        CHECK(hst == st, "%s [%s]: header read gives %s, full read %s", path, what, nnu_status_name(hst),
              nnu_status_name(st));
        nnu_tensor_release(t);
        return;
    }
    CHECK(st == NNU_STATUS_OK, "%s [%s]: %s: %s", path, what, nnu_status_name(st), nnu_last_error());
    CHECK(hst == NNU_STATUS_OK, "%s [%s]: header: %s: %s", path, what, nnu_status_name(hst), nnu_last_error());
    if (st) return;
    const nnu_json *shape = nnu_json_get(c, "shape"), *sp = nnu_json_get(c, "spacing");
    int nd = shape->n;
    CHECK(t->ndim == nd, "%s [%s]: ndim %d, reference %d", path, what, t->ndim, nd);
    for (int i = 0; i < nd && i < t->ndim; i++) {
        CHECK(t->shape[i] == shape->items[i].integer, "%s [%s]: shape[%d] %lld, reference %lld", path, what, i,
              (long long)t->shape[i], (long long)shape->items[i].integer);
        CHECK(hinfo.shape[i] == shape->items[i].integer, "%s [%s]: header shape[%d]", path, what, i);
    }
    CHECK(strcmp(nnu_dtype_name(t->dtype), nnu_json_get(c, "dtype")->string) == 0, "%s [%s]: dtype %s, reference %s",
          path, what, nnu_dtype_name(t->dtype), nnu_json_get(c, "dtype")->string);
    for (int i = 0; i < 3; i++) {
        CHECK(info.spacing[i] == sp->items[i].number, "%s [%s]: spacing[%d] %g, reference %g", path, what, i,
              info.spacing[i], sp->items[i].number);
        CHECK(hinfo.spacing[i] == sp->items[i].number, "%s [%s]: header spacing[%d]", path, what, i);
    }
    double sum = 0, mn = INFINITY, mx = -INFINITY, ck = 0;
    for (int64_t i = 0, n = nnu_tensor_numel(t); i < n; i++) {
        double v = (double)(float)at(t, i);              /* the reference's float32 cast */
        sum += v;
        ck += v * (double)(i % 251 + 1);
        mn = fmin(mn, v);
        mx = fmax(mx, v);
    }
    CHECK_CLOSE(sum, num(c, "sum"), 1e-6, 1e-9);
    CHECK_CLOSE(ck, num(c, "checksum"), 1e-6, 1e-9);
    CHECK(mn == num(c, "min") && mx == num(c, "max"), "%s [%s]: min/max %g/%g, reference %g/%g", path, what, mn, mx,
          num(c, "min"), num(c, "max"));
    const nnu_json *s = nnu_json_get(c, "samples");
    for (int k = 0; s && k < s->n; k++) {
        int64_t i = s->items[k].items[0].integer;
        double want = s->items[k].items[1].number, got = (double)(float)at(t, i);
        CHECK(got == want, "%s [%s]: element %lld = %g, reference %g", path, what, (long long)i, got, want);
    }
    nnu_tensor_release(t);
}

static void test_reference_fixtures(void) {
    long ln = 0;
    char *text = (char *)slurp(FIX "expect.json", &ln);
    size_t n = text ? (size_t)ln : 0;
    CHECK(text, "cannot open " FIX "expect.json\nHINT: regenerate it with: " REGEN);
    if (!text) return;
    char err[128];
    nnu_json *doc = nnu_json_parse(text, n, err, sizeof err);
    CHECK(doc, FIX "expect.json: %s\nHINT: regenerate it with: " REGEN, err);
    const nnu_json *cases = doc ? nnu_json_get(doc, "cases") : NULL;
    int n_ok = 0, n_fail = 0;
    for (int i = 0; cases && i < cases->n; i++) {
        check_case(&cases->items[i]);
        nnu_json_get(&cases->items[i], "ours") ? n_fail++ : n_ok++;
    }
    CHECK(n_ok >= 40 && n_fail >= 10, "only %d/%d cases in the fixture", n_ok, n_fail);
    fprintf(stderr, "reference cases: %d read, %d refused\n", n_ok, n_fail);
    nnu_json_free(doc);
    free(text);
}

/* ---- 2. layouts made here with libtiff ---- */

typedef struct tspec {
    uint32_t w, h;
    uint16_t spp, bps, fmt, planar, compression;
    int      tiled;
} tspec;

/* Writes pages of raw sample bytes (already in the file's layout) with libtiff. */
static int write_tiff(const char *path, const tspec *pages, int n_pages, unsigned char *const *data,
                      const size_t *nbytes) {
    TIFF *tif = TIFFOpen(path, "w");
    if (!tif) return 0;
    for (int p = 0; p < n_pages; p++) {
        const tspec *s = &pages[p];
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, s->w);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, s->h);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, s->spp);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, s->bps);
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, s->fmt);
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, s->planar);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, s->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
        TIFFSetField(tif, TIFFTAG_COMPRESSION, s->compression);
        if (s->spp == 2 || s->spp == 4) {
            uint16_t ex = EXTRASAMPLE_UNASSALPHA;
            TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &ex);
        }
        if (s->tiled) {
            TIFFSetField(tif, TIFFTAG_TILEWIDTH, 16);
            TIFFSetField(tif, TIFFTAG_TILELENGTH, 16);
            tmsize_t ts = TIFFTileSize(tif);
            uint32_t ntiles = TIFFNumberOfTiles(tif);
            for (uint32_t k = 0; k < ntiles; k++)
                if (TIFFWriteEncodedTile(tif, k, data[p] + (size_t)k * (size_t)ts, ts) < 0) return 0;
        } else {
            TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, 3);
            uint32_t nstrips = TIFFNumberOfStrips(tif);
            tmsize_t ss = TIFFStripSize(tif);       /* full strips; the last one shorter */
            size_t off = 0;
            for (uint32_t k = 0; k < nstrips; k++) {
                size_t len = off + (size_t)ss <= nbytes[p] ? (size_t)ss : nbytes[p] - off;
                if (TIFFWriteEncodedStrip(tif, k, data[p] + off, (tmsize_t)len) < 0) return 0;
                off += len;
            }
        }
        TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
    return 1;
}

static void test_libtiff_layouts(void) {
    nnu_image_read_opts nat = {NNU_IMAGE_READER_NATURAL2D, 0};
    nnu_image_info info;
    nnu_tensor *t = NULL;

    /* tiled, planar-separate RGB 20x18: tiles of 16x16, per plane; sample = f(c, y, x) */
    {
        tspec s = {20, 18, 3, 8, SAMPLEFORMAT_UINT, PLANARCONFIG_SEPARATE, COMPRESSION_ADOBE_DEFLATE, 1};
        size_t ntx = 2, nty = 2, tile = 16 * 16, n = 3 * ntx * nty * tile;
        unsigned char *d = calloc(n, 1);
        for (size_t c = 0; c < 3; c++)
            for (size_t ty = 0; ty < nty; ty++)
                for (size_t tx = 0; tx < ntx; tx++)
                    for (size_t y = 0; y < 16; y++)
                        for (size_t x = 0; x < 16; x++) {
                            size_t gy = ty * 16 + y, gx = tx * 16 + x;
                            d[((c * nty + ty) * ntx + tx) * tile + y * 16 + x] =
                                (unsigned char)(gy < 18 && gx < 20 ? c * 80 + gy * 3 + gx : 255);
                        }
        const char *p = tmp_path("tiled_rgb.tif");
        CHECK(write_tiff(p, &s, 1, &d, &n), "libtiff could not write %s", p);
        CHECK_OK(nnu_image_read(p, &nat, &info, &t));
        if (t) {
            CHECK(t->ndim == 4 && t->shape[0] == 3 && t->shape[1] == 1 && t->shape[2] == 18 && t->shape[3] == 20,
                  "tiled RGB shape");
            int bad = 0;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 18; y++)
                    for (int x = 0; x < 20; x++) bad += at(t, (c * 18 + y) * 20 + x) != c * 80 + y * 3 + x;
            CHECK(bad == 0, "tiled planar-separate RGB: %d wrong samples", bad);
        }
        nnu_tensor_release(t); t = NULL;
        free(d);
    }
    /* 4-bit gray (packed, odd width): unpacked values 0..15, as tifffile */
    {
        tspec s = {7, 5, 1, 4, SAMPLEFORMAT_UINT, PLANARCONFIG_CONTIG, COMPRESSION_NONE, 0};
        size_t n = 4 * 5;                                /* 4 bytes per row */
        unsigned char d[20] = {0};
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++) d[y * 4 + x / 2] |= (unsigned char)(((x + 3 * y) % 16) << (x % 2 ? 0 : 4));
        unsigned char *dp = d;
        const char *p = tmp_path("bits4.tif");
        CHECK(write_tiff(p, &s, 1, &dp, &n), "libtiff could not write %s", p);
        CHECK_OK(nnu_image_read(p, &nat, &info, &t));
        int bad = 0;
        for (int i = 0; t && i < 35; i++) bad += at(t, i) != (i % 7 + 3 * (i / 7)) % 16;
        CHECK(t && t->dtype == NNU_DTYPE_U8 && bad == 0, "4-bit gray: %d wrong", bad);
        nnu_tensor_release(t); t = NULL;
    }
    /* float16 3-D (2 pages) -> f32; uint64 -> i64 */
    {
        tspec s[2] = {{3, 2, 1, 16, SAMPLEFORMAT_IEEEFP, PLANARCONFIG_CONTIG, COMPRESSION_LZW, 0},
                      {3, 2, 1, 16, SAMPLEFORMAT_IEEEFP, PLANARCONFIG_CONTIG, COMPRESSION_LZW, 0}};
        uint16_t h[2][6];
        for (int i = 0; i < 12; i++) h[i / 6][i % 6] = nnu_f32_to_f16((float)i * 0.5f - 2.0f);
        unsigned char *dp[2] = {(unsigned char *)h[0], (unsigned char *)h[1]};
        size_t n[2] = {12, 12};
        const char *p = tmp_path("half_0000.tif");
        CHECK(write_tiff(p, s, 2, dp, n), "libtiff could not write %s", p);
        nnu_image_read_opts o3 = {NNU_IMAGE_READER_TIFF3D, 0};
        CHECK_OK(nnu_image_read(p, &o3, &info, &t));
        int bad = 0;
        for (int i = 0; t && i < 12; i++) bad += at(t, i) != i * 0.5 - 2.0;
        CHECK(t && t->dtype == NNU_DTYPE_F32 && t->ndim == 3 && t->shape[0] == 2 && bad == 0, "float16 volume");
        nnu_tensor_release(t); t = NULL;

        tspec s64 = {2, 2, 1, 64, SAMPLEFORMAT_UINT, PLANARCONFIG_CONTIG, COMPRESSION_NONE, 0};
        uint64_t u[4] = {0, 1, UINT64_C(1) << 40, UINT64_C(1) << 62};
        unsigned char *up = (unsigned char *)u;
        size_t un = sizeof u;
        p = tmp_path("u64.tif");
        CHECK(write_tiff(p, &s64, 1, &up, &un), "libtiff could not write %s", p);
        CHECK_OK(nnu_image_read(p, &nat, &info, &t));
        CHECK(t && t->dtype == NNU_DTYPE_I64 && ((int64_t *)nnu_tensor_data(t))[3] == INT64_C(1) << 62, "uint64");
        nnu_tensor_release(t); t = NULL;
        u[3] = UINT64_MAX;                               /* does not fit int64 */
        CHECK(write_tiff(p, &s64, 1, &up, &un), "libtiff could not write %s", p);
        CHECK_FAILS(nnu_image_read(p, &nat, &info, &t), NNU_STATUS_ERR_UNSUPPORTED, "does not fit int64");
    }
    /* pages of different sizes; 2 samples per pixel: refused with reasons */
    {
        tspec s[2] = {{4, 3, 1, 8, SAMPLEFORMAT_UINT, PLANARCONFIG_CONTIG, COMPRESSION_NONE, 0},
                      {5, 3, 1, 8, SAMPLEFORMAT_UINT, PLANARCONFIG_CONTIG, COMPRESSION_NONE, 0}};
        unsigned char d[15] = {0};
        unsigned char *dp[2] = {d, d};
        size_t n[2] = {12, 15};
        const char *p = tmp_path("mixed_0000.tif");
        CHECK(write_tiff(p, s, 2, dp, n), "libtiff could not write %s", p);
        CHECK_FAILS(nnu_image_read(p, NULL, &info, &t), NNU_STATUS_ERR_UNSUPPORTED, "differs from page 0");
        tspec la = {4, 3, 2, 8, SAMPLEFORMAT_UINT, PLANARCONFIG_CONTIG, COMPRESSION_NONE, 0};
        size_t n2 = 24;
        unsigned char d2[24] = {0}, *dp2 = d2;
        p = tmp_path("la.tif");
        CHECK(write_tiff(p, &la, 1, &dp2, &n2), "libtiff could not write %s", p);
        CHECK_FAILS(nnu_image_read(p, NULL, &info, &t), NNU_STATUS_ERR_UNSUPPORTED, "2 samples per pixel");
    }
}

/* ---- 3. round trips ---- */

static void roundtrip(const char *name, const nnu_tensor *t, const nnu_image_info *ref, nnu_image_read_opts *ro,
                      int want_dims) {
    const char *p = tmp_path(name);
    nnu_image_write_opts wo = {0};
    CHECK_OK(nnu_image_write(p, t, ref, &wo));
    nnu_image_info info;
    nnu_tensor *back = NULL;
    CHECK_OK(nnu_image_read(p, ro, &info, &back));
    CHECK(same_tensor(t, back), "%s: round trip changed the pixels, dtype or shape", name);
    CHECK(back && info.spatial_dims == want_dims, "%s: spatial_dims %d, want %d", name, info.spatial_dims, want_dims);
    nnu_tensor_release(back);
    char tmp[600];
    nnu_image_temp_path(p, tmp, sizeof tmp);
    CHECK(!file_exists(tmp), "%s: temporary file left behind", name);
}

static void check_sidecar(const char *tif, const char *want) {
    char side[600];
    nnu_image_sidecar_path(tif, 1, side, sizeof side);
    long n = 0;
    char *got = (char *)slurp(side, &n);
    CHECK(got && strcmp(got, want) == 0, "%s: sidecar\n%s\nwant\n%s", side, got ? got : "(missing)", want);
    free(got);
}

static void test_roundtrips(void) {
    nnu_image_read_opts nat = {NNU_IMAGE_READER_NATURAL2D, 0}, t3 = {NNU_IMAGE_READER_TIFF3D, 1};
    int64_t s2[3] = {1, 13, 17}, rgb[4] = {3, 1, 9, 11}, rgba[4] = {4, 1, 9, 11}, s3[3] = {4, 6, 5};
    nnu_tensor *a;

    a = make(NNU_DTYPE_U8, 3, s2, v_u8);
    roundtrip("u8.png", a, NULL, &nat, 2);
    roundtrip("u8.tif", a, NULL, &nat, 2);
    CHECK(!file_exists(tmp_path("u8.json")), "a 2-D TIFF must not get a spacing sidecar");
    nnu_tensor_release(a);
    a = make(NNU_DTYPE_U16, 3, s2, v_u16);
    roundtrip("u16.png", a, NULL, &nat, 2);
    roundtrip("u16.tif", a, NULL, &nat, 2);
    nnu_tensor_release(a);
    a = make(NNU_DTYPE_U8, 4, rgb, v_u8);
    roundtrip("rgb.png", a, NULL, &nat, 2);
    roundtrip("rgb.tif", a, NULL, &nat, 2);
    nnu_tensor_release(a);
    a = make(NNU_DTYPE_U8, 4, rgba, v_u8);
    roundtrip("rgba.png", a, NULL, &nat, 2);
    roundtrip("rgba.tif", a, NULL, &nat, 2);
    nnu_tensor_release(a);
    a = make(NNU_DTYPE_F32, 3, s2, v_f32);
    roundtrip("f32.tif", a, NULL, &nat, 2);
    CHECK_FAILS(nnu_image_write(tmp_path("f32.png"), a, NULL, NULL), NNU_STATUS_ERR_UNSUPPORTED, "f32.png");
    nnu_tensor_release(a);

    /* 3-D TIFF: every dtype, with the sidecar of the reference image's spacing */
    nnu_image_info ref;
    memset(&ref, 0, sizeof ref);
    ref.spatial_dims = 3;
    ref.spacing[0] = 2.5; ref.spacing[1] = 0.8; ref.spacing[2] = 1.2;
    struct { nnu_dtype dt; double (*f)(int64_t); } vols[] = {
        {NNU_DTYPE_U8, v_u8}, {NNU_DTYPE_U16, v_u16}, {NNU_DTYPE_I16, v_i16}, {NNU_DTYPE_I8, v_lab3},
        {NNU_DTYPE_I32, v_i64}, {NNU_DTYPE_I64, v_i64}, {NNU_DTYPE_F32, v_f32}, {NNU_DTYPE_F64, v_f64}};
    for (size_t k = 0; k < sizeof vols / sizeof vols[0]; k++) {
        a = make(vols[k].dt, 3, s3, vols[k].f);
        char name[64];
        snprintf(name, sizeof name, "vol_%s.tif", nnu_dtype_name(vols[k].dt));
        roundtrip(name, a, &ref, &t3, 3);
        nnu_image_info info;
        nnu_tensor *b = NULL;
        CHECK_OK(nnu_image_read(tmp_path(name), &t3, &info, &b));
        CHECK(info.spacing[0] == 2.5 && info.spacing[1] == 0.8 && info.spacing[2] == 1.2,
              "%s: sidecar spacing %g %g %g", name, info.spacing[0], info.spacing[1], info.spacing[2]);
        nnu_tensor_release(b);
        nnu_tensor_release(a);
    }
    check_sidecar(tmp_path("vol_u8.tif"), "{\n    \"spacing\": [\n        2.5,\n        0.8,\n        1.2\n    ]\n}");

    /* Python's repr of floats in the sidecar */
    int64_t one[3] = {1, 2, 3};
    nnu_tensor *a2;
    a = make(NNU_DTYPE_U8, 3, one, v_lab3);
    double sp[][3] = {{1e-05, 0.0001, 1e16}, {1.0 / 3.0, 123456.789, 2.0}, {1e22, 1.5e-7, 999.0}};
    const char *want[] = {"1e-05,\n        0.0001,\n        1e+16", "0.3333333333333333,\n        123456.789,\n        2.0",
                          "1e+22,\n        1.5e-07,\n        999.0"};
    for (int k = 0; k < 3; k++) {
        memcpy(ref.spacing, sp[k], sizeof sp[k]);
        CHECK_OK(nnu_image_write(tmp_path("repr.tif"), a, &ref, NULL));
        char full[256];
        snprintf(full, sizeof full, "{\n    \"spacing\": [\n        %s\n    ]\n}", want[k]);
        check_sidecar(tmp_path("repr.tif"), full);
    }
    /* no reference: 3-D (z > 1), but no spacing to record */
    a2 = make(NNU_DTYPE_U8, 3, s3, v_u8);
    CHECK_OK(nnu_image_write(tmp_path("noref.tif"), a2, NULL, NULL));
    CHECK(!file_exists(tmp_path("noref.json")), "a write without reference must not invent a sidecar");
    nnu_tensor_release(a2);
    /* a one-slice volume stays 3-D (tifffile's shape description) */
    ref.spacing[0] = 4; ref.spacing[1] = ref.spacing[2] = 1;
    roundtrip("vol1.tif", a, &ref, &t3, 3);
    nnu_tensor_release(a);

    /* the segmentation dtype rule: u8 if max < 255 else u16, for PNG and TIFF */
    struct { double (*f)(int64_t); nnu_dtype want; } segs[] = {
        {v_lab3, NNU_DTYPE_U8}, {v_lab255, NNU_DTYPE_U16}, {v_lab300, NNU_DTYPE_U16}};
    int64_t big[3] = {1, 20, 30};
    for (size_t k = 0; k < 3; k++) {
        a = make(NNU_DTYPE_F32, 3, big, segs[k].f);
        nnu_image_write_opts so = {.segmentation = 1};
        const char *names[] = {"seg.png", "seg.tif"};
        for (int m = 0; m < 2; m++) {
            const char *p = tmp_path(names[m]);
            CHECK_OK(nnu_image_write(p, a, NULL, &so));
            nnu_tensor *b = NULL, *af = NULL;
            CHECK_OK(nnu_image_read(p, &nat, NULL, &b));
            CHECK(b && b->dtype == segs[k].want, "%s: segmentation stored as %s", p, b ? nnu_dtype_name(b->dtype) : "-");
            CHECK_OK(nnu_tensor_to_dtype(b, NNU_DTYPE_F32, &af));
            CHECK(same_tensor(a, af), "%s: segmentation values changed", p);
            nnu_tensor_release(af);
            nnu_tensor_release(b);
        }
        nnu_tensor_release(a);
    }

    /* refused shapes */
    a = make(NNU_DTYPE_U8, 3, s3, v_u8);
    CHECK_FAILS(nnu_image_write(tmp_path("vol.png"), a, NULL, NULL), NNU_STATUS_ERR_SHAPE, "4 slices");
    CHECK(!file_exists(tmp_path("vol.png")), "a refused write left a file");
    nnu_image_info r2;
    memset(&r2, 0, sizeof r2);
    r2.spatial_dims = 2;
    CHECK_FAILS(nnu_image_write(tmp_path("vol2d.tif"), a, &r2, NULL), NNU_STATUS_ERR_SHAPE, "2-D");
    nnu_tensor_release(a);
    int64_t two[4] = {2, 1, 4, 4};
    a = make(NNU_DTYPE_U8, 4, two, v_u8);
    CHECK_FAILS(nnu_image_write(tmp_path("two.png"), a, NULL, NULL), NNU_STATUS_ERR_SHAPE, "2 channels");
    nnu_tensor_release(a);
}

/* ---- 4. bad files ---- */

/* Every prefix of a fixture (and flipped bytes): ERR_FORMAT naming the file, or,
 * for cuts that lose nothing the reader needs, the same pixels. */
static void corrupt_one(const char *fixture, const char *tmpname, nnu_image_reader r, int is_seg) {
    long ln = 0;
    unsigned char *orig = slurp(fixture, &ln);
    size_t n = orig ? (size_t)ln : 0;
    CHECK(orig, "cannot read %s", fixture);
    if (!orig) return;
    nnu_image_read_opts o = {r, is_seg};
    nnu_tensor *want = NULL, *t = NULL;
    CHECK_OK(nnu_image_read(fixture, &o, NULL, &want));
    const char *p = tmp_path(tmpname);
    int n_same = 0, n_bad = 0, n_flip_fail = 0, n_flip = 0;
    size_t first_same = n;
    for (size_t cut = 0; cut < n; cut++) {
        spill(p, orig, cut);
        nnu_status st = nnu_image_read(p, &o, NULL, &t);
        if (st == NNU_STATUS_OK) {
            if (same_tensor(want, t) && first_same == n) first_same = cut;
            n_same += same_tensor(want, t);
            n_bad += !same_tensor(want, t);
        } else if (st != NNU_STATUS_ERR_FORMAT || !strstr(nnu_last_error(), p)) {
            n_bad++;
            if (n_bad < 4) fprintf(stderr, "%s cut at %zu: %s: %s\n", fixture, cut, nnu_status_name(st), nnu_last_error());
        }
        nnu_tensor_release(t); t = NULL;
    }
    CHECK(n_bad == 0, "%s: %d cuts read wrong pixels or failed without ERR_FORMAT + file name", fixture, n_bad);
    /* only bytes no reader needs may go: from the first cut that reads, every longer one reads
     * (tifffile leaves 16 unused bytes after its last IFD) */
    CHECK(n_same == 0 || (size_t)n_same == n - first_same, "%s: %d cuts read, not only those past byte %zu",
          fixture, n_same, first_same);
    unsigned char *buf = malloc(n);
    for (size_t i = 0; i < n; i += (n > 600 ? 3 : 1)) {
        memcpy(buf, orig, n);
        buf[i] ^= 0xA5;
        spill(p, buf, n);
        nnu_status st = nnu_image_read(p, &o, NULL, &t);
        n_flip++;
        if (st != NNU_STATUS_OK) {
            n_flip_fail++;
            CHECK((st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_UNSUPPORTED) && strstr(nnu_last_error(), p),
                  "%s byte %zu flipped: %s: %s", fixture, i, nnu_status_name(st), nnu_last_error());
        }
        nnu_tensor_release(t); t = NULL;
    }
    fprintf(stderr, "%-40s %5zu cuts fail (%d read the same), %4d/%d flips fail\n", fixture, n - (size_t)n_same,
            n_same, n_flip_fail, n_flip);
    free(buf);
    free(orig);
    nnu_tensor_release(want);
    remove(p);
}

/* the bytes of a PNG chunk with its CRC */
static size_t png_chunk(unsigned char *out, const char *type, const unsigned char *data, uint32_t len) {
    unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                           (unsigned char)len};
    memcpy(out, be, 4);
    memcpy(out + 4, type, 4);
    if (len) memcpy(out + 8, data, len);
    uLong crc = crc32(0L, out + 4, len + 4);
    for (int i = 0; i < 4; i++) out[8 + len + i] = (unsigned char)(crc >> (24 - 8 * i));
    return len + 12;
}

static void test_bad_files(void) {
    nnu_image_read_opts nat = {NNU_IMAGE_READER_NATURAL2D, 0}, t3 = {NNU_IMAGE_READER_TIFF3D, 0};
    spill(tmp_path("cut.json"), "{\"spacing\": [1, 1, 1]}", 22);     /* quiet Tiff3DIO's warning */
    corrupt_one(FIX "gray8.png", "cut.png", NNU_IMAGE_READER_NATURAL2D, 0);
    corrupt_one(FIX "palette.png", "cut.png", NNU_IMAGE_READER_NATURAL2D, 0);
    corrupt_one(FIX "interlaced.png", "cut.png", NNU_IMAGE_READER_NATURAL2D, 0);
    corrupt_one(FIX "gray16.png", "cut.png", NNU_IMAGE_READER_NATURAL2D, 0);
    corrupt_one(FIX "gray_u8.tif", "cut.tif", NNU_IMAGE_READER_NATURAL2D, 0);
    corrupt_one(FIX "rgb_planar.tif", "cut.tif", NNU_IMAGE_READER_NATURAL2D, 0);
    corrupt_one(FIX "vol_u16_zlib_0000.tif", "cut_0000.tif", NNU_IMAGE_READER_TIFF3D, 0);
    corrupt_one(FIX "vol_f32_0000.tif", "cut_0000.tif", NNU_IMAGE_READER_TIFF3D, 0);
    corrupt_one(FIX "vol_i16_lzw_0000.tif", "cut_0000.tif", NNU_IMAGE_READER_TIFF3D, 0);
    corrupt_one(FIX "tiled_u16_0000.tif", "cut_0000.tif", NNU_IMAGE_READER_TIFF3D, 0);
    corrupt_one(FIX "seg_u8_packbits.tif", "cut.tif", NNU_IMAGE_READER_TIFF3D, 1);

    nnu_tensor *t = NULL;
    nnu_image_info info;
    const char *p = tmp_path("text.png");
    spill(p, "hello, not an image\n", 20);
    CHECK_FAILS(nnu_image_read(p, &nat, &info, &t), NNU_STATUS_ERR_FORMAT, "not a PNG file");
    p = tmp_path("text.tif");
    spill(p, "hello, not an image\n", 20);
    CHECK_FAILS(nnu_image_read(p, &nat, &info, &t), NNU_STATUS_ERR_FORMAT, "text.tif");
    p = tmp_path("empty_0000.tif");
    spill(p, "", 0);
    CHECK_FAILS(nnu_image_read(p, &t3, &info, &t), NNU_STATUS_ERR_FORMAT, "empty_0000.tif");
    CHECK_FAILS(nnu_image_read(tmp_path("missing.png"), &nat, &info, &t), NNU_STATUS_ERR_IO, "missing.png");
    CHECK_FAILS(nnu_image_read(tmp_path("missing.tif"), &nat, &info, &t), NNU_STATUS_ERR_IO, "missing.tif");

    /* a PNG header promising 60000 x 60000 pixels in a tiny file */
    unsigned char png[256];
    size_t k = 0;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    k = 8;
    unsigned char ihdr[13] = {0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 0, 0, 0, 0};
    k += png_chunk(png + k, "IHDR", ihdr, 13);
    unsigned char idat[16];
    uLongf zl = sizeof idat;
    unsigned char row[2] = {0, 0};
    compress(idat, &zl, row, 2);
    k += png_chunk(png + k, "IDAT", idat, (uint32_t)zl);
    k += png_chunk(png + k, "IEND", NULL, 0);
    p = tmp_path("huge.png");
    spill(p, png, k);
    CHECK_FAILS(nnu_image_read(p, &nat, &info, &t), NNU_STATUS_ERR_FORMAT, "can hold");

    /* a TIFF header promising 100000 x 100000 uncompressed pixels */
    unsigned char tif[8 + 2 + 9 * 12 + 4] = {'I', 'I', 42, 0, 8, 0, 0, 0, 9, 0};
    const uint16_t tags[9][2] = {{256, 4}, {257, 4}, {258, 3}, {259, 3}, {262, 3},
                                 {273, 4}, {277, 3}, {278, 4}, {279, 4}};
    const uint32_t vals[9] = {100000, 100000, 8, 1, 1, 8, 1, 100000, 10000000};
    for (int i = 0; i < 9; i++) {
        unsigned char *e = tif + 10 + 12 * i;
        e[0] = (unsigned char)tags[i][0]; e[1] = (unsigned char)(tags[i][0] >> 8);
        e[2] = (unsigned char)tags[i][1];
        e[4] = 1;
        for (int b = 0; b < 4; b++) e[8 + b] = (unsigned char)(vals[i] >> (8 * b));
    }
    p = tmp_path("huge.tif");
    spill(p, tif, sizeof tif);
    CHECK_FAILS(nnu_image_read(p, &nat, &info, &t), NNU_STATUS_ERR_FORMAT, "can hold");
    CHECK(t == NULL, "failed reads must leave *out NULL");
}

int main(void) {
    tmpdir_make("png_tiff");
    if (!file_exists(FIX "expect.json")) {
        fprintf(stderr, "SKIP: " FIX "expect.json missing\nHINT: regenerate it with: " REGEN "\n");
        return 77;
    }
    test_reference_fixtures();
    test_libtiff_layouts();
    test_roundtrips();
    test_bad_files();
    tmpdir_remove();
    return check_report();
}
