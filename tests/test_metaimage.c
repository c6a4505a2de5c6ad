/* test_metaimage.c: MetaImage reading and writing (core/nnu_metaimage.h).
 *
 *  1. Fixture files against SimpleITK: tests/fixtures/metaimage/expected.json
 *     (tests/gen/gen_metaimage_fixtures.py) gives, per file, what SimpleITK reports:
 *     shape, dtype, byte checksum, sum/min/max, sample voxels and the geometry,
 *     compared bit-exactly. Every dtype, compressed and raw, .mha and .mhd pairs,
 *     2-D, 4-D, big-endian, HeaderSize -1, ElementSize, aliases, negative spacing.
 *  2. Round trips of every fixture (.mha compressed, .mhd raw): voxels and geometry
 *     bit-exact; 2-D stays 2-D, 4-D stays 4-D.
 *  3. What we write is what SimpleITK writes: the raw fixture files byte for byte,
 *     the compressed ones' headers line for line (but CompressedDataSize).
 *  4. Segmentation dtypes (u8 / u16 by the reference rule), f16 stored as f32,
 *     nnu_image_read's SimpleITKIO 2-D spacing rule.
 *  5. Bad inputs: truncated at every offset, corrupt zlib, lying DimSize, missing
 *     keys, a missing .raw, vector pixels, ... each with the right status and a
 *     message naming the file. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "nnu_image.h"
#include "nnu_metaimage.h"

#define FIX "tests/fixtures/metaimage/"

static uint64_t checksum1(const nnu_tensor *t) {
    const unsigned char *b = nnu_tensor_data(t);
    uint64_t n = (uint64_t)nnu_tensor_numel(t) * nnu_dtype_size(t->dtype), s = 0, k = 0;
    for (uint64_t i = 0; i < n; i++) {
        s += b[i] * (k + 1);
        if (++k == 251) k = 0;
    }
    return s;
}

static void spit(const char *path, const void *b, long n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
}

static int same_geometry(const nnu_image_info *a, const nnu_image_info *b) {
    return memcmp(a->spacing, b->spacing, sizeof a->spacing) == 0 &&
           memcmp(a->spacing_itk, b->spacing_itk, sizeof a->spacing_itk) == 0 &&
           memcmp(a->origin, b->origin, sizeof a->origin) == 0 &&
           memcmp(a->direction, b->direction, sizeof a->direction) == 0 && a->spatial_dims == b->spatial_dims &&
           a->ndim == b->ndim && memcmp(a->shape, b->shape, sizeof a->shape) == 0 && a->dtype == b->dtype;
}

static int same_voxels(const nnu_tensor *a, const nnu_tensor *b) {
    return a->dtype == b->dtype && nnu_tensor_same_shape(a, b) &&
           memcmp(nnu_tensor_data(a), nnu_tensor_data(b), (size_t)nnu_tensor_numel(a) * nnu_dtype_size(a->dtype)) == 0;
}

/* the header text of a file (up to and including ElementDataFile's line) */
static char *header_of(const char *path) {
    long n;
    unsigned char *b = slurp(path, &n);
    if (!b) return NULL;
    char *e = strstr((char *)b, "ElementDataFile");
    if (e) {
        char *nl = strchr(e, '\n');
        if (nl) nl[1] = '\0';
    }
    return (char *)b;
}

/* removes the line starting with key (in place) */
static void drop_line(char *s, const char *key) {
    char *p = strstr(s, key);
    if (!p) return;
    char *nl = strchr(p, '\n');
    memmove(p, nl ? nl + 1 : p + strlen(p), strlen(nl ? nl + 1 : p + strlen(p)) + 1);
}

/* read -> write (.mha compressed, .mhd raw) -> re-read: identical */
static void roundtrip(const char *path, const nnu_tensor *t, const nnu_image_info *info) {
    const char *outs[2] = {tmp_path("rt.mha"), tmp_path("rt.mhd")};
    nnu_image_write_opts raw = {.compression = -1};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(nnu_metaimage_write(outs[k], t, info, k ? &raw : NULL));
        nnu_image_info i2;
        nnu_tensor *t2 = NULL;
        CHECK_OK(nnu_metaimage_read(outs[k], &i2, &t2));
        if (!t2) continue;
        CHECK(same_voxels(t, t2), "%s -> %s: round-trip voxels differ", path, outs[k]);
        CHECK(same_geometry(info, &i2), "%s -> %s: round-trip geometry differs", path, outs[k]);
        nnu_tensor_release(t2);
    }
    remove(outs[0]);
    remove(outs[1]);
    remove(tmp_path("rt.raw"));
}

static void test_fixture_files(void) {
    const char *fx = FIX "expected.json";
    FILE *f = fopen(fx, "r");
    CHECK(f != NULL, "cannot open %s (regenerate: /tmp/refenv/bin/python tests/gen/gen_metaimage_fixtures.py)", fx);
    if (!f) return;
    static char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char path[512], dt[16];
        if (!jstr(line, "path", path, sizeof path)) continue;
        nnu_image_info info, hinfo;
        nnu_tensor *t = NULL;
        CHECK_OK(nnu_metaimage_read(path, &info, &t));
        CHECK_OK(nnu_metaimage_read_header(path, &hinfo));
        if (!t) continue;
        n++;
        CHECK(memcmp(&info, &hinfo, sizeof info) == 0, "%s: read_header and read disagree", path);
        CHECK(info.format == NNU_IMAGE_FORMAT_METAIMAGE && info.hdr.version == 0, "%s: format", path);
        double shape[4], v[64], sp[3], spz[3], org[3], dir[9], sd;
        int nd = jnums(line, "shape", shape, 4);
        CHECK(nd == t->ndim && nd == info.ndim, "%s: ndim %d vs SimpleITK %d", path, t->ndim, nd);
        for (int i = 0; i < nd && i < t->ndim; i++)
            CHECK(t->shape[i] == (int64_t)shape[i], "%s: shape[%d] %lld vs %g", path, i, (long long)t->shape[i],
                  shape[i]);
        jstr(line, "dtype", dt, sizeof dt);
        CHECK(strcmp(dt, nnu_dtype_name(t->dtype)) == 0, "%s: dtype %s vs %s", path, nnu_dtype_name(t->dtype), dt);
        jnums(line, "spatial_dims", &sd, 1);
        CHECK(info.spatial_dims == (int)sd, "%s: spatial_dims %d vs %g", path, info.spatial_dims, sd);
        jnums(line, "checksum1", v, 1);
        CHECK((double)checksum1(t) == v[0], "%s: checksum1 %llu vs %.0f", path, (unsigned long long)checksum1(t), v[0]);
        double sum, mn, mx;
        CHECK_OK(nnu_tensor_sum(t, &sum));
        CHECK_OK(nnu_tensor_min(t, &mn));
        CHECK_OK(nnu_tensor_max(t, &mx));
        jnums(line, "sum", v, 1);
        CHECK_CLOSE(sum, v[0], 1e-6, 1e-12);
        jnums(line, "min", v, 1);
        CHECK(mn == v[0], "%s: min %.17g vs %.17g", path, mn, v[0]);
        jnums(line, "max", v, 1);
        CHECK(mx == v[0], "%s: max %.17g vs %.17g", path, mx, v[0]);
        int ns = jnums(line, "samples", v, 64);
        for (int k = 0; k + 1 < ns; k += 2) {
            double got = nnu_dtype_load(t->dtype, (char *)nnu_tensor_data(t) +
                                                      (int64_t)v[k] * (int64_t)nnu_dtype_size(t->dtype));
            CHECK(got == v[k + 1], "%s: voxel %g = %.17g vs SimpleITK %.17g", path, v[k], got, v[k + 1]);
        }
        jnums(line, "spacing_itk", sp, 3);
        jnums(line, "spacing", spz, 3);
        jnums(line, "origin", org, 3);
        jnums(line, "direction", dir, 9);
        for (int i = 0; i < 3; i++) {
            CHECK(info.spacing_itk[i] == sp[i], "%s: spacing_itk[%d] %.17g vs %.17g", path, i, info.spacing_itk[i], sp[i]);
            CHECK(info.spacing[i] == spz[i], "%s: spacing[%d] %.17g vs %.17g", path, i, info.spacing[i], spz[i]);
            CHECK(info.origin[i] == org[i], "%s: origin[%d] %.17g vs %.17g", path, i, info.origin[i], org[i]);
        }
        for (int i = 0; i < 9; i++)
            CHECK(info.direction[i] == dir[i], "%s: direction[%d] %.17g vs %.17g", path, i, info.direction[i], dir[i]);
        roundtrip(path, t, &info);
        nnu_tensor_release(t);
    }
    fclose(f);
    CHECK(n >= 20, "only %d fixture files read", n);
}

/* our files are SimpleITK's: raw ones byte for byte, compressed ones but the data */
static void test_same_bytes_as_sitk(void) {
    static const char *raw[] = {"rot3d_f32.mha"};
    for (size_t k = 0; k < sizeof raw / sizeof raw[0]; k++) {
        char src[256];
        snprintf(src, sizeof src, FIX "%s", raw[k]);
        nnu_image_info info;
        nnu_tensor *t = NULL;
        CHECK_OK(nnu_metaimage_read(src, &info, &t));
        if (!t) continue;
        nnu_image_write_opts o = {.compression = -1};
        CHECK_OK(nnu_metaimage_write(tmp_path("same.mha"), t, &info, &o));
        long na, nb;
        unsigned char *a = slurp(src, &na), *b = slurp(tmp_path("same.mha"), &nb);
        CHECK(a && b && na == nb && memcmp(a, b, (size_t)na) == 0, "%s: our file differs from SimpleITK's", src);
        free(a);
        free(b);
        nnu_tensor_release(t);
    }
    /* headers of compressed files, 2-D and 4-D; the .mhd pair with its data file */
    static const char *hdrs[] = {"rot3d_f32_z.mha", "twod_u8.mha", "four_d_f32.mha", "pair_i16.mhd", "pair_i16_z.mhd",
                                 "dtype_u16.mha", "dtype_i8.mha"};
    for (size_t k = 0; k < sizeof hdrs / sizeof hdrs[0]; k++) {
        char src[256];
        snprintf(src, sizeof src, FIX "%s", hdrs[k]);
        int mhd = strstr(hdrs[k], ".mhd") != NULL, z = strstr(hdrs[k], "_z") || !mhd;
        int raw_mha = strstr(hdrs[k], "dtype_i8") != NULL;
        nnu_image_info info;
        nnu_tensor *t = NULL;
        CHECK_OK(nnu_metaimage_read(src, &info, &t));
        if (!t) continue;
        nnu_image_write_opts o = {.compression = (z && !raw_mha) ? 0 : -1};
        const char *out = tmp_path(mhd ? "same.mhd" : "same.mha");
        CHECK_OK(nnu_metaimage_write(out, t, &info, &o));
        char *ha = header_of(src), *hb = header_of(out);
        if (ha && hb) {
            drop_line(ha, "CompressedDataSize");
            drop_line(hb, "CompressedDataSize");
            drop_line(ha, "ElementDataFile");
            drop_line(hb, "ElementDataFile");
            if (strstr(hdrs[k], "four_d")) {   /* nnu_image_info has no 4th-axis spacing/origin */
                drop_line(ha, "Offset");
                drop_line(hb, "Offset");
                drop_line(ha, "ElementSpacing");
                drop_line(hb, "ElementSpacing");
            }
            CHECK(strcmp(ha, hb) == 0, "%s: header differs from SimpleITK's:\n--- sitk\n%s--- ours\n%s", src, ha, hb);
        }
        if (mhd) {
            char *e = header_of(out);
            CHECK(e && strstr(e, z ? "ElementDataFile = same.zraw\n" : "ElementDataFile = same.raw\n"),
                  "%s: data file name", out);
            free(e);
            if (!z) {
                long na, nb;
                char ra[256];
                snprintf(ra, sizeof ra, FIX "%s", "pair_i16.raw");
                unsigned char *a = slurp(ra, &na), *b = slurp(tmp_path("same.raw"), &nb);
                CHECK(a && b && na == nb && memcmp(a, b, (size_t)na) == 0, "%s: .raw differs from SimpleITK's", src);
                free(a);
                free(b);
            }
        }
        free(ha);
        free(hb);
        nnu_tensor_release(t);
    }
}

/* segmentation rule: uint8 if max < 255 else uint16; f16 -> f32; 4-D and 2-D from tensors */
static void test_write_rules(void) {
    int64_t shape[3] = {2, 3, 4};
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, shape, &t));
    CHECK_OK(nnu_tensor_fill(t, 0));
    nnu_image_write_opts o = {.segmentation = 1};
    ((float *)nnu_tensor_data(t))[3] = 254;
    CHECK_OK(nnu_metaimage_write(tmp_path("seg.mha"), t, NULL, &o));
    char *h = header_of(tmp_path("seg.mha"));
    CHECK(h && strstr(h, "ElementType = MET_UCHAR\n") && strstr(h, "CompressedData = True\n"),
          "segmentation max 254: compressed MET_UCHAR:\n%s", h ? h : "");
    free(h);
    CHECK_OK(nnu_metaimage_read(tmp_path("seg.mha"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_U8 && ((uint8_t *)nnu_tensor_data(r))[3] == 254, "max 254 -> u8");
    nnu_tensor_release(r);
    r = NULL;
    ((float *)nnu_tensor_data(t))[3] = 255;
    CHECK_OK(nnu_metaimage_write(tmp_path("seg.mhd"), t, NULL, &o));
    CHECK_OK(nnu_metaimage_read(tmp_path("seg.mhd"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_U16 && ((uint16_t *)nnu_tensor_data(r))[3] == 255, "max 255 -> u16");
    struct stat sb;
    CHECK(stat(tmp_path("seg.zraw"), &sb) == 0, "compressed .mhd writes <name>.zraw");
    nnu_tensor_release(r);
    r = NULL;
    ((float *)nnu_tensor_data(t))[3] = -1;
    CHECK_FAILS(nnu_metaimage_write(tmp_path("seg.mha"), t, NULL, &o), NNU_STATUS_ERR_ARG, "0..65535");
    CHECK_FAILS(nnu_metaimage_write(tmp_path("seg.nrrd"), t, NULL, NULL), NNU_STATUS_ERR_ARG, ".mha or .mhd");
    nnu_tensor_release(t);

    /* f16 stored as f32; default geometry is ITK's default */
    nnu_tensor *hf = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F16, 3, shape, &hf));
    CHECK_OK(nnu_tensor_fill(hf, 1.5));
    CHECK_OK(nnu_metaimage_write(tmp_path("h.mha"), hf, NULL, NULL));
    nnu_image_info hi;
    CHECK_OK(nnu_metaimage_read(tmp_path("h.mha"), &hi, &r));
    if (r) {
        CHECK(r->dtype == NNU_DTYPE_F32 && ((float *)nnu_tensor_data(r))[23] == 1.5f, "f16 stored as f32");
        CHECK(hi.spacing_itk[0] == 1 && hi.spacing_itk[2] == 1 && hi.origin[1] == 0 && hi.direction[0] == 1 &&
                  hi.direction[4] == 1 && hi.direction[8] == 1 && hi.direction[1] == 0,
              "default geometry");
    }
    nnu_tensor_release(hf);
    nnu_tensor_release(r);
    r = NULL;

    /* (c, z, y, x) -> NDims 4 and back; (1, y, x) with a 2-D ref -> NDims 2 */
    int64_t s4[4] = {3, 2, 4, 5};
    nnu_tensor *t4 = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_I16, 4, s4, &t4));
    for (int i = 0; i < 120; i++) ((int16_t *)nnu_tensor_data(t4))[i] = (int16_t)(i * 7 - 300);
    nnu_image_info g;
    memset(&g, 0, sizeof g);
    double c = cos(0.4), s = sin(0.4);
    double dir[9] = {c, 0, s, 0, 1, 0, -s, 0, c};
    memcpy(g.direction, dir, sizeof dir);
    g.spacing_itk[0] = 0.3; g.spacing_itk[1] = 0.7; g.spacing_itk[2] = 1.9;
    g.origin[0] = -1.25; g.origin[1] = 1e-7; g.origin[2] = 123.456;
    g.spatial_dims = 3;
    CHECK_OK(nnu_metaimage_write(tmp_path("four.mha"), t4, &g, NULL));
    h = header_of(tmp_path("four.mha"));
    CHECK(h && strstr(h, "NDims = 4\n") && strstr(h, "DimSize = 5 4 2 3\n"), "4-D header:\n%s", h ? h : "");
    free(h);
    nnu_image_info i4;
    CHECK_OK(nnu_metaimage_read(tmp_path("four.mha"), &i4, &r));
    if (r) {
        CHECK(same_voxels(t4, r), "4-D voxels");
        CHECK(i4.ndim == 4 && i4.shape[0] == 3 && i4.shape[3] == 5, "4-D shape");
        CHECK(memcmp(i4.direction, dir, sizeof dir) == 0 && memcmp(i4.origin, g.origin, sizeof g.origin) == 0 &&
                  memcmp(i4.spacing_itk, g.spacing_itk, sizeof g.spacing_itk) == 0,
              "4-D geometry bit-exact");
    }
    nnu_tensor_release(r);
    r = NULL;
    nnu_tensor_release(t4);

    int64_t s2[3] = {1, 3, 4};
    nnu_tensor *t2 = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_U8, 3, s2, &t2));
    for (int i = 0; i < 12; i++) ((uint8_t *)nnu_tensor_data(t2))[i] = (uint8_t)(i * 20);
    g.spatial_dims = 2;
    double d2[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1};
    memcpy(g.direction, d2, sizeof d2);
    g.spacing_itk[2] = 1;
    g.origin[2] = 0;
    CHECK_OK(nnu_image_write(tmp_path("two.mha"), t2, &g, NULL));    /* through the dispatcher */
    h = header_of(tmp_path("two.mha"));
    CHECK(h && strstr(h, "NDims = 2\n") && strstr(h, "TransformMatrix = 0 1 -1 0\n"), "2-D header:\n%s", h ? h : "");
    free(h);
    /* SimpleITKIO's 2-D rule applied by nnu_image_read: spacing (999 * max, sy, sx) */
    nnu_image_read_opts ro = {.reader = NNU_IMAGE_READER_SITK};
    nnu_image_info i2;
    CHECK_OK(nnu_image_read(tmp_path("two.mha"), &ro, &i2, &r));
    if (r) {
        CHECK(same_voxels(t2, r), "2-D voxels");
        CHECK(i2.spatial_dims == 2 && i2.ndim == 3 && i2.shape[0] == 1, "2-D shape");
        CHECK(i2.spacing[0] == 999.0 * 0.7 && i2.spacing[1] == 0.7 && i2.spacing[2] == 0.3,
              "SimpleITKIO 2-D spacing: %g %g %g", i2.spacing[0], i2.spacing[1], i2.spacing[2]);
        CHECK(memcmp(i2.direction, d2, sizeof d2) == 0, "2-D direction");
    }
    nnu_tensor_release(r);
    r = NULL;
    nnu_image_info fi;
    CHECK_OK(nnu_image_read(FIX "twod_u8.mha", &ro, &fi, &r));
    if (r) CHECK(fi.spacing[0] == 999.0 * 0.5 && fi.spacing[1] == 0.25 && fi.spacing[2] == 0.5,
                 "fixture 2-D spacing %g %g %g", fi.spacing[0], fi.spacing[1], fi.spacing[2]);
    nnu_tensor_release(r);
    nnu_tensor_release(t2);
}

/* ---- bad inputs ---- */

static void expect_fail(const char *path, nnu_status st, const char *problem) {
    nnu_tensor *t = NULL;
    nnu_image_info info;
    nnu_status got = nnu_metaimage_read(path, &info, &t);
    CHECK_FAILS(got, st, problem);
    const char *base = strrchr(path, '/');
    CHECK(strstr(nnu_last_error(), base ? base + 1 : path) != NULL, "message names the file: %s", nnu_last_error());
    CHECK(t == NULL, "no tensor on failure");
    nnu_tensor_release(t);
}

/* a hand-written .mha: header text then n data bytes */
static const char *mha(const char *name, const char *header, const void *data, long n) {
    const char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    if (!f) return p;
    fputs(header, f);
    if (n) fwrite(data, 1, (size_t)n, f);
    fclose(f);
    return p;
}

static void test_truncated(void) {
    static const char *files[] = {FIX "rot3d_f32.mha", FIX "rot3d_f32_z.mha", FIX "bigendian_f64_z.mha"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        long n;
        unsigned char *b = slurp(files[k], &n);
        CHECK(b != NULL, "read %s", files[k]);
        if (!b) continue;
        int bad = 0;
        for (long cut = 0; cut < n; cut++) {
            const char *p = tmp_path("cut.mha");
            spit(p, b, cut);
            nnu_tensor *t = NULL;
            nnu_status st = nnu_metaimage_read(p, NULL, &t);
            if (st != NNU_STATUS_ERR_FORMAT || !strstr(nnu_last_error(), "cut.mha") || t) {
                if (bad++ < 3)
                    CHECK(0, "%s cut at %ld: %s: %s", files[k], cut, nnu_status_name(st), nnu_last_error());
            }
            nnu_tensor_release(t);
        }
        CHECK(bad == 0, "%s: %d cuts did not fail with ERR_FORMAT", files[k], bad);
        free(b);
    }
}

static void test_bad_inputs(void) {
    const char *H = "ObjectType = Image\nNDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n";
    unsigned char data[48];
    for (int i = 0; i < 48; i++) data[i] = (unsigned char)i;
    char hdr[1024];

    expect_fail(tmp_path("does_not_exist.mha"), NNU_STATUS_ERR_IO, "No such file");
    expect_fail(tmpdir, NNU_STATUS_ERR_IO, "not a regular file");
    expect_fail(mha("empty.mha", "", NULL, 0), NNU_STATUS_ERR_FORMAT, "required key NDims is missing");
    /* not a MetaImage at all: a NIfTI-like binary blob */
    unsigned char junk[400];
    for (int i = 0; i < 400; i++) junk[i] = (unsigned char)(i * 37 + 11);
    expect_fail(mha("junk.mha", "", junk, 400), NNU_STATUS_ERR_FORMAT, "junk.mha");

    /* missing keys */
    expect_fail(mha("nodims.mha", "NDims = 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", data, 48),
                NNU_STATUS_ERR_FORMAT, "required key DimSize is missing");
    expect_fail(mha("notype.mha", "NDims = 3\nDimSize = 4 3 2\nElementDataFile = LOCAL\n", data, 48),
                NNU_STATUS_ERR_FORMAT, "required key ElementType is missing");
    expect_fail(mha("nondims.mha", "DimSize = 4 3 2\nElementType = MET_SHORT\nElementDataFile = LOCAL\n", data, 48),
                NNU_STATUS_ERR_FORMAT, "required key NDims is missing");
    expect_fail(mha("lowercase.mha", "ndims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\nElementDataFile = LOCAL\n",
                    data, 48), NNU_STATUS_ERR_FORMAT, "required key NDims is missing");
    expect_fail(mha("nodatafile.mha", H, NULL, 0), NNU_STATUS_ERR_FORMAT, "required key ElementDataFile is missing");

    /* the control case reads */
    snprintf(hdr, sizeof hdr, "%sElementDataFile = LOCAL\n", H);
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_metaimage_read(mha("ok.mha", hdr, data, 48), NULL, &t));
    if (t) CHECK(((int16_t *)nnu_tensor_data(t))[1] == (3 << 8 | 2), "control voxels");
    nnu_tensor_release(t);
    t = NULL;
    /* NDims 4 with DimSize[3] = 1 is a 3-D image */
    nnu_image_info i4;
    CHECK_OK(nnu_metaimage_read(mha("t1.mha", "NDims = 4\nDimSize = 4 3 2 1\nElementType = MET_SHORT\n"
                                              "ElementDataFile = LOCAL\n", data, 48), &i4, &t));
    if (t) CHECK(t->ndim == 3 && i4.ndim == 3 && i4.shape[0] == 2 && i4.spatial_dims == 3, "trailing 1 dropped");
    nnu_tensor_release(t);
    t = NULL;

    /* DimSize lying about the data */
    expect_fail(mha("short.mha", "NDims = 3\nDimSize = 4 3 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n",
                    data, 48), NNU_STATUS_ERR_FORMAT, "header says DimSize 4 3 3 MET_SHORT = 72 bytes but only 48 bytes");
    expect_fail(mha("huge.mha", "NDims = 3\nDimSize = 4000 4000 40\nElementType = MET_SHORT\n"
                                "ElementDataFile = LOCAL\n", data, 48), NNU_STATUS_ERR_FORMAT, "but only 48 bytes");
    expect_fail(mha("bigdim.mha", "NDims = 3\nDimSize = 4000000 4000000 4000000\nElementType = MET_SHORT\n"
                                  "ElementDataFile = LOCAL\n", data, 48), NNU_STATUS_ERR_FORMAT, "DimSize too large");
    expect_fail(mha("zerodim.mha", "NDims = 3\nDimSize = 4 0 2\nElementType = MET_SHORT\nElementDataFile = LOCAL\n",
                    data, 48), NNU_STATUS_ERR_FORMAT, "bad DimSize[1] = 0");
    expect_fail(mha("fewdims.mha", "NDims = 3\nDimSize = 4 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n",
                    data, 48), NNU_STATUS_ERR_FORMAT, "DimSize needs 3 numbers (NDims = 3), found 2");
    expect_fail(mha("hsize.mha", "NDims = 3\nHeaderSize = 5000\nDimSize = 4 3 2\nElementType = MET_SHORT\n"
                                 "ElementDataFile = LOCAL\n", data, 48), NNU_STATUS_ERR_FORMAT, "HeaderSize 5000");

    /* compressed: corrupt stream, a stream too long or too short for DimSize, a huge lie */
    long zn;
    unsigned char *z = slurp(FIX "rot3d_f32_z.mha", &zn);
    if (z) {
        char *e = strstr((char *)z, "LOCAL\n");
        long off = e ? (long)(e + 6 - (char *)z) : 0;
        unsigned char *c = malloc((size_t)zn);
        memcpy(c, z, (size_t)zn);
        for (long i = off + (zn - off) / 3; i < off + (zn - off) / 3 + 40 && i < zn; i++) c[i] ^= 0x5a;
        spit(tmp_path("corrupt_z.mha"), c, zn);
        expect_fail(tmp_path("corrupt_z.mha"), NNU_STATUS_ERR_FORMAT, "zlib stream");
        memcpy(c, z, (size_t)zn);
        c[off] ^= 0xff;                               /* zlib header */
        spit(tmp_path("badzhdr.mha"), c, zn);
        expect_fail(tmp_path("badzhdr.mha"), NNU_STATUS_ERR_FORMAT, "corrupt zlib stream");
        free(c);
        /* DimSize 7 6 5 -> 7 6 4 (stream holds more) and 7 6 6 (stream holds less) */
        char *d = strstr((char *)z, "DimSize = 7 6 5");
        if (d) {
            d[14] = '4';
            spit(tmp_path("zmore.mha"), z, zn);
            expect_fail(tmp_path("zmore.mha"), NNU_STATUS_ERR_FORMAT, "holds more than the header's DimSize 7 6 4");
            d[14] = '6';
            spit(tmp_path("zless.mha"), z, zn);
            expect_fail(tmp_path("zless.mha"), NNU_STATUS_ERR_FORMAT, "zless.mha");
        }
        free(z);
    }
    expect_fail(mha("zhuge.mha", "NDims = 3\nCompressedData = True\nDimSize = 4000 4000 4000\n"
                                 "ElementType = MET_SHORT\nElementDataFile = LOCAL\n", data, 48),
                NNU_STATUS_ERR_FORMAT, "more than 48 bytes of zlib data can hold");
    expect_fail(mha("zsize.mha", "NDims = 3\nCompressedData = True\nCompressedDataSize = 4800\nDimSize = 4 3 2\n"
                                 "ElementType = MET_SHORT\nElementDataFile = LOCAL\n", data, 48),
                NNU_STATUS_ERR_FORMAT, "CompressedDataSize 4800 but only 48 bytes");

    /* valid files we do not read */
    expect_fail(mha("rgb.mha", "NDims = 3\nDimSize = 2 2 2\nElementNumberOfChannels = 3\nElementType = MET_UCHAR\n"
                               "ElementDataFile = LOCAL\n", data, 24), NNU_STATUS_ERR_UNSUPPORTED,
                "ElementNumberOfChannels = 3: vector/RGB MetaImages are not supported");
    expect_fail(mha("ascii.mha", "NDims = 3\nBinaryData = False\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                                 "ElementDataFile = LOCAL\n", "1 2 3 4 5 6 7 8", 15), NNU_STATUS_ERR_UNSUPPORTED,
                "ASCII");
    expect_fail(mha("list.mhd", "NDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\nElementDataFile = LIST 2D\n"
                                "a.raw\nb.raw\n", NULL, 0), NNU_STATUS_ERR_UNSUPPORTED, "file lists and patterns");
    expect_fail(mha("pattern.mhd", "NDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
                                   "ElementDataFile = slice%03d.raw 1 2 1\n", NULL, 0), NNU_STATUS_ERR_UNSUPPORTED,
                "file lists and patterns");
    expect_fail(mha("oned.mha", "NDims = 1\nDimSize = 8\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n", data, 8),
                NNU_STATUS_ERR_UNSUPPORTED, "1-D images are not supported");
    expect_fail(mha("fived.mha", "NDims = 5\nDimSize = 2 2 1 1 2\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n",
                    data, 16), NNU_STATUS_ERR_UNSUPPORTED, "5-D images are not supported");
    expect_fail(mha("string.mha", "NDims = 3\nDimSize = 2 2 2\nElementType = MET_STRING\nElementDataFile = LOCAL\n",
                    data, 8), NNU_STATUS_ERR_UNSUPPORTED, "ElementType MET_STRING is not supported");
    expect_fail(mha("badtype.mha", "NDims = 3\nDimSize = 2 2 2\nElementType = float\nElementDataFile = LOCAL\n",
                    data, 32), NNU_STATUS_ERR_FORMAT, "unknown ElementType 'float'");
    expect_fail(mha("singular.mha", "NDims = 3\nTransformMatrix = 0 0 0 0 0 0 0 0 0\nDimSize = 2 2 2\n"
                                    "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n", data, 8),
                NNU_STATUS_ERR_FORMAT, "TransformMatrix is singular");
    expect_fail(mha("shorttm.mha", "NDims = 3\nTransformMatrix = 0 1 1 0\nDimSize = 2 2 2\n"
                                   "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n", data, 8),
                NNU_STATUS_ERR_FORMAT, "TransformMatrix needs 9 numbers");
    expect_fail(mha("nanspacing.mha", "NDims = 3\nElementSpacing = 1 nan 1\nDimSize = 2 2 2\n"
                                      "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n", data, 8),
                NNU_STATUS_ERR_FORMAT, "ElementSpacing: value 2 is not finite");
    uint64_t big[8] = {1, 2, 3, UINT64_MAX, 5, 6, 7, 8};
    expect_fail(mha("u64.mha", "NDims = 3\nDimSize = 2 2 2\nElementType = MET_ULONG_LONG\nElementDataFile = LOCAL\n",
                    big, 64), NNU_STATUS_ERR_UNSUPPORTED, "does not fit int64");

    /* .mhd: a missing data file, a data file that is too short */
    expect_fail(mha("noraw.mhd", "NDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\nElementDataFile = noraw.raw\n",
                    NULL, 0), NNU_STATUS_ERR_IO, "its data file");
    CHECK(strstr(nnu_last_error(), "noraw.raw") != NULL, "names the data file: %s", nnu_last_error());
    spit(tmp_path("shortraw.raw"), data, 20);
    expect_fail(mha("shortraw.mhd", "NDims = 3\nDimSize = 4 3 2\nElementType = MET_SHORT\n"
                                    "ElementDataFile = shortraw.raw\n", NULL, 0),
                NNU_STATUS_ERR_FORMAT, "but only 20 bytes of data");
    /* a .mhd pair from the fixtures, read through a header elsewhere (absolute data path) */
    char abs_hdr[1024], cwd[512];
    if (getcwd(cwd, sizeof cwd)) {
        snprintf(abs_hdr, sizeof abs_hdr, "NDims = 3\nDimSize = 6 5 4\nElementType = MET_SHORT\n"
                                          "ElementDataFile = %s/" FIX "pair_i16.raw\n", cwd);
        CHECK_OK(nnu_metaimage_read(mha("abs.mhd", abs_hdr, NULL, 0), NULL, &t));
        nnu_tensor_release(t);
        t = NULL;
    }
}

int main(void) {
    tmpdir_make("metaimage");
    test_fixture_files();
    test_same_bytes_as_sitk();
    test_write_rules();
    test_truncated();
    test_bad_inputs();
    tmpdir_remove();
    return check_report();
}
