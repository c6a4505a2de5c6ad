/* test_nrrd.c: NRRD reading and writing (core/nnu_nrrd.h).
 *
 *  1. Fixture files against SimpleITK: tests/fixtures/nrrd/sitk_reference.json
 *     (tests/gen/gen_nrrd_fixtures.py) gives size, spacing, origin, direction,
 *     pixel type, sample voxels and the sum of each file as SimpleITK reads it; the
 *     files it refuses must fail here too. SimpleITK-written files (gzip, raw,
 *     .nhdr pairs, 2-D) and hand-written ones (big-endian, RAS/LAS/scanner-xyz,
 *     old-style spacings and axis mins, ASCII, line/byte skip, uint32).
 *  2. Round trip write -> read: voxels bit-exact; geometry bit-exact where the
 *     direction is axis-aligned (a rotated direction is stored as spacing * column
 *     and comes back as |v| and v * (1/|v|), as in ITK: within an ulp or two).
 *     3-D, 2-D and .nhdr; every dtype; the segmentation dtype rule.
 *  3. Bad inputs: truncated at every offset, corrupt gzip, lying sizes, missing
 *     fields, a missing data file, unsupported encodings/kinds/dimensions, random
 *     header corruption: each a precise status and a message naming the file.
 *  4. nnu_image_read with SimpleITKIO: a 2-D .nrrd gets spacing[0] = 999 * max. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "check.h"
#include "testfiles.h"
#include "nnu_json.h"
#include "nnu_nrrd.h"

static void spit(const char *path, const void *b, long n) {
    FILE *f = fopen(path, "wb");
    if (!f) { CHECK(0, "cannot write %s", path); return; }
    if (n) fwrite(b, 1, (size_t)n, f);
    fclose(f);
}

/* header text + binary data into tmpdir/name; returns the path */
static const char *make_file(const char *name, const char *header, const void *data, long n) {
    const char *p = tmp_path(name);
    size_t h = strlen(header);
    unsigned char *b = malloc(h + (size_t)n + 1);
    memcpy(b, header, h);
    if (n) memcpy(b + h, data, (size_t)n);
    spit(p, b, (long)(h + (size_t)n));
    free(b);
    return p;
}

static int file_exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

static double num_at(const nnu_json *a, int i) {
    return a && a->type == NNU_JSON_ARRAY && i < a->n && a->items[i].type == NNU_JSON_NUMBER ? a->items[i].number
                                                                                               : NAN;
}

static double voxel(const nnu_tensor *t, int64_t i) {
    return nnu_dtype_load(t->dtype, (const char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(t->dtype));
}

static int axis_aligned(const double *d) {
    for (int i = 0; i < 9; i++)
        if (d[i] != 0 && d[i] != 1 && d[i] != -1) return 0;
    return 1;
}

/* geometry equal: exactly, or within tol * max(1, |x|) */
static int geometry_close(const nnu_image_info *a, const nnu_image_info *b, double tol) {
    for (int i = 0; i < 3; i++) {
        if (fabs(a->spacing_itk[i] - b->spacing_itk[i]) > tol * fmax(1, fabs(a->spacing_itk[i]))) return 0;
        if (fabs(a->spacing[i] - b->spacing[i]) > tol * fmax(1, fabs(a->spacing[i]))) return 0;
        if (fabs(a->origin[i] - b->origin[i]) > tol * fmax(1, fabs(a->origin[i]))) return 0;
    }
    for (int i = 0; i < 9; i++)
        if (fabs(a->direction[i] - b->direction[i]) > tol) return 0;
    return a->spatial_dims == b->spatial_dims;
}

/* write -> read: voxels and dtype identical, geometry exact when axis-aligned */
static void roundtrip(const char *what, const nnu_tensor *t, const nnu_image_info *info, const char *out) {
    CHECK_OK(nnu_nrrd_write(out, t, info, NULL));
    nnu_image_info i2;
    nnu_tensor *t2 = NULL;
    CHECK_OK(nnu_nrrd_read(out, &i2, &t2));
    if (!t2) return;
    CHECK(t2->dtype == t->dtype && nnu_tensor_same_shape(t, t2) &&
              memcmp(nnu_tensor_data(t), nnu_tensor_data(t2),
                     (size_t)nnu_tensor_numel(t) * nnu_dtype_size(t->dtype)) == 0,
          "%s: round-trip voxels/dtype/shape differ", what);
    double tol = axis_aligned(info->direction) ? 0 : 4e-16;
    CHECK(geometry_close(info, &i2, tol), "%s: round-trip geometry differs (tolerance %g)", what, tol);
    nnu_tensor_release(t2);
    remove(out);
}

/* ---- 1. fixtures against SimpleITK ---- */

static void test_fixture_files(void) {
    const char *fx = "tests/fixtures/nrrd/sitk_reference.json";
    long n;
    char *text = (char *)slurp(fx, &n);
    CHECK(text != NULL, "cannot open %s (regenerate: /tmp/refenv/bin/python tests/gen/gen_nrrd_fixtures.py)", fx);
    if (!text) return;
    char err[160];
    nnu_json *doc = nnu_json_parse(text, (size_t)n, err, sizeof err);
    CHECK(doc != NULL, "%s: %s", fx, err);
    free(text);
    if (!doc) return;
    const nnu_json *files = nnu_json_get(doc, "files");
    int n_files = 0;
    for (int k = 0; files && k < files->n; k++) {
        const nnu_json *e = &files->items[k];
        const char *path = nnu_json_get(e, "file")->string;
        int dim = (int)nnu_json_get(e, "dimension")->number;
        const nnu_json *size = nnu_json_get(e, "size"), *sp = nnu_json_get(e, "spacing"),
                       *org = nnu_json_get(e, "origin"), *dir = nnu_json_get(e, "direction");
        nnu_image_info info, hinfo;
        nnu_tensor *t = NULL;
        CHECK_OK(nnu_nrrd_read(path, &info, &t));
        CHECK_OK(nnu_nrrd_read_header(path, &hinfo));
        if (!t) continue;
        n_files++;
        CHECK(memcmp(&info, &hinfo, sizeof info) == 0, "%s: read_header and read disagree", path);
        CHECK(info.format == NNU_IMAGE_FORMAT_NRRD && info.ndim == 3 && info.spatial_dims == dim, "%s: format/dims",
              path);
        int64_t want_shape[3] = {dim == 3 ? (int64_t)num_at(size, 2) : 1, (int64_t)num_at(size, 1),
                                 (int64_t)num_at(size, 0)};
        for (int i = 0; i < 3; i++)
            CHECK(t->shape[i] == want_shape[i] && info.shape[i] == want_shape[i], "%s: shape[%d] %lld vs %lld", path,
                  i, (long long)t->shape[i], (long long)want_shape[i]);
        const char *dt = nnu_json_get(e, "dtype")->string;
        CHECK(strcmp(dt, nnu_dtype_name(t->dtype)) == 0 && info.dtype == t->dtype, "%s: dtype %s vs %s (%s)", path,
              nnu_dtype_name(t->dtype), dt, nnu_json_get(e, "pixel")->string);
        /* SimpleITK's geometry, bit for bit; 2-D: the 2x2 upper left, z spacing 1, origin 0 */
        double want_sp[3] = {1, 1, 1}, want_or[3] = {0, 0, 0}, want_dir[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        for (int i = 0; i < dim; i++) {
            want_sp[i] = num_at(sp, i);
            want_or[i] = num_at(org, i);
            for (int j = 0; j < dim; j++) want_dir[3 * i + j] = num_at(dir, dim * i + j);
        }
        for (int i = 0; i < 3; i++) {
            CHECK(info.spacing_itk[i] == want_sp[i], "%s: spacing_itk[%d] %.17g vs SimpleITK %.17g", path, i,
                  info.spacing_itk[i], want_sp[i]);
            CHECK(info.spacing[2 - i] == fabs(want_sp[i]), "%s: spacing[%d] %.17g", path, 2 - i, info.spacing[2 - i]);
            CHECK(info.origin[i] == want_or[i], "%s: origin[%d] %.17g vs SimpleITK %.17g", path, i, info.origin[i],
                  want_or[i]);
        }
        for (int i = 0; i < 9; i++)
            CHECK(info.direction[i] == want_dir[i], "%s: direction[%d] %.17g vs SimpleITK %.17g", path, i,
                  info.direction[i], want_dir[i]);
        const nnu_json *samples = nnu_json_get(e, "samples");
        for (int s = 0; samples && s < samples->n; s++) {
            int64_t idx = (int64_t)num_at(&samples->items[s], 0);
            double want = num_at(&samples->items[s], 1), got = voxel(t, idx);
            CHECK(got == want || (t->dtype == NNU_DTYPE_F32 && (float)want == (float)got), "%s: voxel %lld = %.17g vs "
                  "SimpleITK %.17g", path, (long long)idx, got, want);
        }
        double sum;
        CHECK_OK(nnu_tensor_sum(t, &sum));
        CHECK_CLOSE(sum, nnu_json_get(e, "sum")->number, 1e-9, 1e-12);
        roundtrip(path, t, &info, tmp_path("rt.nrrd"));
        roundtrip(path, t, &info, tmp_path("rt.nhdr"));
        nnu_tensor_release(t);
    }
    CHECK(n_files >= 18, "only %d fixture files read", n_files);

    /* what SimpleITK refuses, we refuse */
    const nnu_json *rej = nnu_json_get(doc, "rejected");
    for (int k = 0; rej && k < rej->n; k++) {
        const char *path = nnu_json_get(&rej->items[k], "file")->string;
        nnu_tensor *t = NULL;
        nnu_status st = nnu_nrrd_read(path, NULL, &t);
        CHECK(st == NNU_STATUS_ERR_FORMAT || st == NNU_STATUS_ERR_UNSUPPORTED, "%s: SimpleITK refuses it (%s) but we "
              "got %s", path, nnu_json_get(&rej->items[k], "sitk_error")->string, nnu_status_name(st));
        CHECK(t == NULL && strstr(nnu_last_error(), path), "%s: message names the file: %s", path, nnu_last_error());
    }
    CHECK(rej && rej->n == 2, "two rejected fixtures");
    nnu_json_free(doc);
    fprintf(stderr, "fixture files: %d read as SimpleITK reads them\n", n_files);
}

/* ---- 2. writing ---- */

static nnu_image_info geometry(double sx, double sy, double sz, int flip) {
    nnu_image_info g;
    memset(&g, 0, sizeof g);
    g.spatial_dims = 3;
    g.spacing_itk[0] = sx; g.spacing_itk[1] = sy; g.spacing_itk[2] = sz;
    g.spacing[0] = sz; g.spacing[1] = sy; g.spacing[2] = sx;
    g.origin[0] = -12.345678901234567; g.origin[1] = 0.1; g.origin[2] = 1e5 / 3;
    for (int i = 0; i < 9; i++) g.direction[i] = (i % 4 == 0);
    if (flip) { g.direction[0] = -1; g.direction[4] = 0; g.direction[5] = 1; g.direction[7] = -1; g.direction[8] = 0; }
    return g;
}

static void test_write_dtypes(void) {
    const nnu_dtype dts[] = {NNU_DTYPE_U8, NNU_DTYPE_I8, NNU_DTYPE_I16, NNU_DTYPE_U16,
                             NNU_DTYPE_I32, NNU_DTYPE_I64, NNU_DTYPE_F32, NNU_DTYPE_F64};
    int64_t shape[3] = {3, 4, 5};
    nnu_image_info g = geometry(0.1, 0.7, 3.3, 1);
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        nnu_tensor *t = NULL;
        CHECK_OK(nnu_tensor_new(dts[k], 3, shape, &t));
        if (!t) continue;
        for (int64_t i = 0; i < 60; i++)
            nnu_dtype_store(t->dtype, (char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(t->dtype),
                            (double)(i * 7 % 61) - (dts[k] == NNU_DTYPE_U8 || dts[k] == NNU_DTYPE_U16 ? 0 : 30.5));
        roundtrip(nnu_dtype_name(dts[k]), t, &g, tmp_path("dt.nrrd"));
        roundtrip(nnu_dtype_name(dts[k]), t, &g, tmp_path("dt.nhdr"));
        nnu_tensor_release(t);
    }
    /* f16 is stored as f32; NULL ref: spacing 1, origin 0, identity */
    nnu_tensor *h = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F16, 3, shape, &h));
    CHECK_OK(nnu_tensor_fill(h, 1.5));
    CHECK_OK(nnu_nrrd_write(tmp_path("h.nrrd"), h, NULL, NULL));
    nnu_image_info info;
    CHECK_OK(nnu_nrrd_read(tmp_path("h.nrrd"), &info, &r));
    if (r) {
        CHECK(r->dtype == NNU_DTYPE_F32 && ((float *)nnu_tensor_data(r))[59] == 1.5f, "f16 stored as f32");
        CHECK(info.spacing_itk[0] == 1 && info.origin[2] == 0 && info.direction[4] == 1 && info.spatial_dims == 3,
              "default geometry");
    }
    nnu_tensor_release(h);
    nnu_tensor_release(r);
}

/* the header and the detached data file as ITK writes them */
static void test_write_layout(void) {
    int64_t shape[3] = {2, 3, 4};
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_I16, 3, shape, &t));
    for (int i = 0; i < 24; i++) ((int16_t *)nnu_tensor_data(t))[i] = (int16_t)(i * 100 - 1000);
    nnu_image_info g = geometry(0.5, 0.25, 2, 0);
    CHECK_OK(nnu_nrrd_write(tmp_path("lay.nrrd"), t, &g, NULL));
    long n;
    char *b = (char *)slurp(tmp_path("lay.nrrd"), &n);
    if (b) {
        CHECK(strncmp(b, "NRRD0004\n", 9) == 0, "magic NRRD0004");
        CHECK(strstr(b, "\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 3 2\n"
                        "space directions: (0.5,0,0) (0,0.25,0) (0,0,2)\nkinds: domain domain domain\n"
                        "endian: little\nencoding: gzip\nspace origin: (-12.345678901234567,0.10000000000000001,"
                        "33333.333333333336)\n\n\x1f\x8b") != NULL,
              "header as ITK writes it, then the gzip stream:\n%.400s", b);
    }
    free(b);
    /* .nhdr: header + <base>.raw.gz, named without its folder */
    CHECK_OK(nnu_nrrd_write(tmp_path("pair.nhdr"), t, &g, NULL));
    b = (char *)slurp(tmp_path("pair.nhdr"), &n);
    if (b) CHECK(strstr(b, "encoding: gzip\n") && strstr(b, "\ndata file: pair.raw.gz\n") && b[n - 1] == '\n' &&
                     b[n - 2] != '\n', "detached header names pair.raw.gz:\n%s", b);
    free(b);
    CHECK(file_exists(tmp_path("pair.raw.gz")), "pair.raw.gz written");
    CHECK_OK(nnu_nrrd_read(tmp_path("pair.nhdr"), NULL, &r));
    if (r) CHECK(memcmp(nnu_tensor_data(r), nnu_tensor_data(t), 48) == 0, "pair voxels");
    nnu_tensor_release(r);
    r = NULL;
    /* no temporary files left behind */
    char part[600];
    snprintf(part, sizeof part, "%s.part%ld", tmp_path("pair.nhdr"), (long)getpid());
    CHECK(!file_exists(part), "no .part file left");
    /* a 4-D tensor is not written (not read either) */
    int64_t s4[4] = {2, 1, 2, 2};
    nnu_tensor *t4 = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, s4, &t4));
    CHECK_FAILS(nnu_nrrd_write(tmp_path("four.nrrd"), t4, NULL, NULL), NNU_STATUS_ERR_UNSUPPORTED, "four.nrrd");
    CHECK(!file_exists(tmp_path("four.nrrd")), "nothing written for 4-D");
    nnu_tensor_release(t4);
    CHECK_FAILS(nnu_nrrd_write(tmp_path("x.nii"), t, NULL, NULL), NNU_STATUS_ERR_ARG, "x.nii");
    CHECK_FAILS(nnu_nrrd_write("/nonexistent-dir/x.nrrd", t, NULL, NULL), NNU_STATUS_ERR_IO, "x.nrrd");
    nnu_tensor_release(t);
}

/* a 2-D reference writes a 2-D image; read back as (1, y, x), spatial_dims 2 */
static void test_2d(void) {
    int64_t shape[3] = {1, 3, 4};
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, shape, &t));
    for (int i = 0; i < 12; i++) ((float *)nnu_tensor_data(t))[i] = (float)i * 1.25f;
    nnu_image_info g;
    memset(&g, 0, sizeof g);
    g.spatial_dims = 2;
    g.spacing_itk[0] = 0.3; g.spacing_itk[1] = 0.6; g.spacing_itk[2] = 1;
    g.spacing[0] = 1; g.spacing[1] = 0.6; g.spacing[2] = 0.3;
    g.origin[0] = 5; g.origin[1] = -7.5;
    g.direction[1] = 1; g.direction[3] = -1; g.direction[8] = 1;     /* 90 degrees, exact */
    CHECK_OK(nnu_nrrd_write(tmp_path("two.nrrd"), t, &g, NULL));
    long n;
    char *b = (char *)slurp(tmp_path("two.nrrd"), &n);
    if (b) CHECK(strstr(b, "\ndimension: 2\nspace dimension: 2\nsizes: 4 3\nspace directions: (0,-0.29999999999999999) "
                           "(0.59999999999999998,0)\nkinds: domain domain\n") &&
                     strstr(b, "space origin: (5,-7.5)\n"), "2-D header:\n%.400s", b);
    free(b);
    roundtrip("2-D", t, &g, tmp_path("two_rt.nrrd"));
    roundtrip("2-D", t, &g, tmp_path("two_rt.nhdr"));
    /* 2-D through nnu_image with SimpleITKIO: spacing (999 * max(sx, sy), sy, sx) */
    nnu_image_read_opts ro = {NNU_IMAGE_READER_SITK, 0};
    nnu_image_info info;
    CHECK_OK(nnu_image_read(tmp_path("two.nrrd"), &ro, &info, &r));
    if (r) {
        CHECK(r->ndim == 3 && r->shape[0] == 1 && r->shape[1] == 3 && r->shape[2] == 4, "2-D is (1, y, x)");
        CHECK(info.spatial_dims == 2 && info.spacing[0] == 999 * 0.6 && info.spacing[1] == 0.6 &&
                  info.spacing[2] == 0.3, "SimpleITKIO 2-D spacing (%g, %g, %g)", info.spacing[0], info.spacing[1],
              info.spacing[2]);
    }
    nnu_tensor_release(r);
    r = NULL;
    /* the 2-D fixture through the same path */
    CHECK_OK(nnu_image_read("tests/fixtures/nrrd/u8_2d.nrrd", &ro, &info, &r));
    if (r) CHECK(info.spacing[0] == 999 * 1.7 && info.spacing[2] == info.spacing_itk[0], "u8_2d SimpleITKIO spacing %g",
                 info.spacing[0]);
    nnu_tensor_release(r);
    r = NULL;
    /* nnu_image_write dispatches here; a 2-D ref needs z = 1 */
    CHECK_OK(nnu_image_write(tmp_path("disp.nrrd"), t, NULL, NULL));
    CHECK_OK(nnu_image_read_header(tmp_path("disp.nrrd"), NULL, &info));
    CHECK(info.format == NNU_IMAGE_FORMAT_NRRD && info.spatial_dims == 3, "dispatch by ending");
    int64_t s3[3] = {2, 3, 4};
    nnu_tensor *t3 = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, s3, &t3));
    CHECK_FAILS(nnu_nrrd_write(tmp_path("bad2d.nrrd"), t3, &g, NULL), NNU_STATUS_ERR_SHAPE, "bad2d.nrrd");
    nnu_tensor_release(t3);
    nnu_tensor_release(t);
}

/* segmentation rule: uint8 if max < 255 else uint16 */
static void test_segmentation_dtype(void) {
    int64_t shape[3] = {2, 2, 2};
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, shape, &t));
    float *d = nnu_tensor_data(t);
    for (int i = 0; i < 8; i++) d[i] = (float)(i % 3);
    nnu_image_write_opts o = {.segmentation = 1};
    CHECK_OK(nnu_nrrd_write(tmp_path("seg.nrrd"), t, NULL, &o));
    CHECK_OK(nnu_nrrd_read(tmp_path("seg.nrrd"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_U8 && ((uint8_t *)nnu_tensor_data(r))[5] == 2, "seg max 2 -> u8");
    long n;
    char *b = (char *)slurp(tmp_path("seg.nrrd"), &n);
    if (b) CHECK(strstr(b, "type: unsigned char\n") && !strstr(b, "endian"), "u8: no endian field (as ITK)");
    free(b);
    nnu_tensor_release(r);
    r = NULL;
    d[7] = 300;
    CHECK_OK(nnu_nrrd_write(tmp_path("seg.nhdr"), t, NULL, &o));
    CHECK_OK(nnu_nrrd_read(tmp_path("seg.nhdr"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_U16 && ((uint16_t *)nnu_tensor_data(r))[7] == 300, "seg max 300 -> u16");
    nnu_tensor_release(r);
    d[0] = -1;
    CHECK_FAILS(nnu_nrrd_write(tmp_path("seg_neg.nrrd"), t, NULL, &o), NNU_STATUS_ERR_ARG, "seg_neg.nrrd");
    nnu_tensor_release(t);
}

/* ---- 3. bad inputs ---- */

static const char HDR[] = "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: raw\n";

static void expect_fail(const char *name, const char *header, const void *data, long n, nnu_status want,
                        const char *text) {
    const char *p = make_file(name, header, data, n);
    nnu_tensor *t = NULL;
    nnu_status st = nnu_nrrd_read(p, NULL, &t);
    CHECK_FAILS(st, want, name);
    if (text) CHECK_FAILS(st, want, text);
    CHECK(t == NULL, "%s: no tensor on failure", name);
    nnu_tensor_release(t);
}

/* header with one line removed (the line starting with `field`) */
static void without(char *out, size_t len, const char *header, const char *field) {
    const char *p = strstr(header, field);
    size_t a = (size_t)(p - header), e = strchr(p, '\n') - header + 1;
    snprintf(out, len, "%.*s%s", (int)a, header, header + e);
}

static void test_bad_inputs(void) {
    int16_t v[24];
    for (int i = 0; i < 24; i++) v[i] = (int16_t)(i * 3);
    char h[1024];

    /* a valid baseline first */
    const char *ok = make_file("ok.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\n"
                                          "encoding: raw\n\n", v, 48);
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_nrrd_read(ok, NULL, &t));
    nnu_tensor_release(t);

    /* missing required fields */
    static const char *const req[] = {"type:", "dimension:", "sizes:", "encoding:", "endian:"};
    for (size_t k = 0; k < sizeof req / sizeof req[0]; k++) {
        without(h, sizeof h, HDR, req[k]);
        strcat(h, "\n");
        char name[64];
        snprintf(name, sizeof name, "no_%.*s.nrrd", (int)strlen(req[k]) - 1, req[k]);
        expect_fail(name, h, v, 48, NNU_STATUS_ERR_FORMAT, k == 4 ? "\"endian\"" : NULL);
        if (k < 4) {
            char field[32];
            snprintf(field, sizeof field, "\"%.*s\"", (int)strlen(req[k]) - 1, req[k]);
            CHECK(strstr(nnu_last_error(), field), "missing %s named: %s", field, nnu_last_error());
        }
    }
    /* lying sizes: raw data shorter than the header says; gzip data that cannot hold it; absurd sizes */
    expect_fail("lie_raw.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 400 300 200\nendian: little\n"
                                "encoding: raw\n\n", v, 48, NNU_STATUS_ERR_FORMAT, "only 48 bytes");
    unsigned char gz[256];
    uLongf glen = sizeof gz;
    compress2(gz, &glen, (const Bytef *)v, 48, 6);      /* zlib, not gzip: also a "not gzip" case below */
    expect_fail("lie_gz.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4000 3000 2000\nendian: little\n"
                               "encoding: gzip\n\n", gz, (long)glen, NNU_STATUS_ERR_FORMAT, "gzip data can hold");
    expect_fail("huge.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 400000 300000 200000\nendian: little\n"
                             "encoding: raw\n\n", v, 48, NNU_STATUS_ERR_FORMAT, "too large");
    expect_fail("neg.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 -3 2\nendian: little\nencoding: raw\n\n",
                v, 48, NNU_STATUS_ERR_FORMAT, "size");
    expect_fail("count.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3\nendian: little\nencoding: raw\n\n",
                v, 48, NNU_STATUS_ERR_FORMAT, "expected 3");
    expect_fail("notgz.nrrd", "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nendian: little\n"
                              "encoding: gzip\n\n", v, 48, NNU_STATUS_ERR_FORMAT, "not gzip");
    /* not NRRD / wrong versions / unknown or repeated fields */
    expect_fail("empty.nrrd", "", NULL, 0, NNU_STATUS_ERR_FORMAT, "not a NRRD file");
    expect_fail("magic.nrrd", "NIFTI\n", NULL, 0, NNU_STATUS_ERR_FORMAT, "not a NRRD file");
    expect_fail("v6.nrrd", "NRRD0006\ntype: short\n\n", NULL, 0, NNU_STATUS_ERR_UNSUPPORTED, "NRRD0006");
    snprintf(h, sizeof h, "%sfoo: bar\n\n", HDR);
    expect_fail("unknown_field.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "\"foo\"");
    snprintf(h, sizeof h, "%ssizes: 4 3 2\n\n", HDR);
    expect_fail("twice.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "twice");
    expect_fail("char.nrrd", "NRRD0004\ntype: char\ndimension: 3\nsizes: 4 3 2\nencoding: raw\n\n", v, 24, NNU_STATUS_ERR_FORMAT, "\"char\"");    /* NrrdIO: "signed char" only */
    /* unsupported: encodings, block type, vector kinds, 4-D, several data files, 2 axes in a 3-D space */
    snprintf(h, sizeof h, "%s\n", HDR);
    char *enc = strstr(h, "encoding: raw");
    memcpy(enc, "encoding: bz2", 13);
    expect_fail("bzip2.nrrd", h, v, 48, NNU_STATUS_ERR_UNSUPPORTED, "bz2");
    memcpy(enc, "encoding: hex", 13);
    expect_fail("hex.nrrd", h, v, 48, NNU_STATUS_ERR_UNSUPPORTED, "hex");
    memcpy(enc, "encoding: zip", 13);
    expect_fail("zip.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "encoding");
    expect_fail("block.nrrd", "NRRD0004\ntype: block\nblock size: 2\ndimension: 3\nsizes: 4 3 2\nencoding: raw\n\n",
                v, 48, NNU_STATUS_ERR_UNSUPPORTED, "block");
    snprintf(h, sizeof h, "%skinds: RGB-color domain domain\n\n", HDR);
    expect_fail("rgb.nrrd", h, v, 48, NNU_STATUS_ERR_UNSUPPORTED, "multi-component");
    snprintf(h, sizeof h, "%skinds: domain domain dom\n\n", HDR);
    expect_fail("badkind.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "kind");
    expect_fail("four_d.nrrd", "NRRD0004\ntype: short\ndimension: 4\nsizes: 2 2 3 2\nendian: little\n"
                               "encoding: raw\n\n", v, 48, NNU_STATUS_ERR_UNSUPPORTED, "4-D");
    expect_fail("one_d.nrrd", "NRRD0004\ntype: short\ndimension: 1\nsizes: 24\nendian: little\nencoding: raw\n\n", v,
                48, NNU_STATUS_ERR_UNSUPPORTED, "1-D");
    snprintf(h, sizeof h, "%sdata file: LIST\na.raw\nb.raw\n", HDR);
    expect_fail("list.nhdr", h, NULL, 0, NNU_STATUS_ERR_UNSUPPORTED, "LIST");
    snprintf(h, sizeof h, "%sdata file: slice%%03d.raw 1 2 1\n", HDR);
    expect_fail("pattern.nhdr", h, NULL, 0, NNU_STATUS_ERR_UNSUPPORTED, "several data files");
    snprintf(h, sizeof h, "%sspace: LPS\nspace directions: (1,0,0) (0,1,0)\n\n", HDR);
    expect_fail("vec_count.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "entries");
    /* geometry ITK refuses */
    snprintf(h, sizeof h, "%sspace dimension: 3\nspace directions: (1,0,0) (2,0,0) (0,0,1)\n\n", HDR);
    expect_fail("parallel.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "linearly dependent");
    snprintf(h, sizeof h, "%sspace dimension: 3\nspace directions: (1,0,0) (0,0,0) (0,0,1)\n\n", HDR);
    expect_fail("zerodir.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "zero");
    snprintf(h, sizeof h, "%sspace dimension: 3\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nspacings: 1 1 1\n\n", HDR);
    expect_fail("dir_and_spacings.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "spacings");
    snprintf(h, sizeof h, "%sspace directions: (1,0,0) (0,1,0) (0,0,1)\n\n", HDR);
    expect_fail("dir_no_space.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "without");
    snprintf(h, sizeof h, "%sspace: LPS\nspace directions: (1,0) (0,1,0) (0,0,1)\n\n", HDR);
    expect_fail("short_vec.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "space direction");
    snprintf(h, sizeof h, "%sspace: LPS\nspace origin: (1,nan,0)\n\n", HDR);
    expect_fail("nan_origin.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "space origin");
    snprintf(h, sizeof h, "%sspacings: 1 0 1\n\n", HDR);
    expect_fail("zero_spacing.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "spacing");
    snprintf(h, sizeof h, "%sspace: LPS\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nspace: RAS\n\n", HDR);
    expect_fail("two_spaces.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "twice");
    /* skips beyond the data */
    snprintf(h, sizeof h, "%sbyte skip: 10\n\n", HDR);
    expect_fail("byteskip.nrrd", h, v, 48, NNU_STATUS_ERR_FORMAT, "only 38 bytes");
    snprintf(h, sizeof h, "%sline skip: 5\n\n", HDR);
    expect_fail("lineskip.nrrd", h, "a\nb\n", 4, NNU_STATUS_ERR_FORMAT, "line skip");
    /* uint64 above INT64_MAX */
    uint64_t big[24];
    for (int i = 0; i < 24; i++) big[i] = i == 5 ? UINT64_MAX : (uint64_t)i;
    expect_fail("u64.nrrd", "NRRD0004\ntype: uint64\ndimension: 3\nsizes: 4 3 2\nendian: little\nencoding: raw\n\n",
                big, sizeof big, NNU_STATUS_ERR_UNSUPPORTED, "does not fit");
    big[5] = 5;
    const char *p = make_file("u64ok.nrrd", "NRRD0004\ntype: unsigned long long int\ndimension: 3\nsizes: 4 3 2\n"
                                            "endian: little\nencoding: raw\n\n", big, sizeof big);
    t = NULL;
    CHECK_OK(nnu_nrrd_read(p, NULL, &t));
    if (t) CHECK(t->dtype == NNU_DTYPE_I64 && ((int64_t *)nnu_tensor_data(t))[23] == 23, "uint64 -> i64");
    nnu_tensor_release(t);
    /* ASCII: too few values, a value out of range */
    expect_fail("ascii_short.nrrd", "NRRD0004\ntype: uchar\ndimension: 2\nsizes: 3 2\nencoding: ascii\n\n",
                "1 2 3 4 5", 9, NNU_STATUS_ERR_FORMAT, "5 of 6");
    expect_fail("ascii_range.nrrd", "NRRD0004\ntype: uchar\ndimension: 2\nsizes: 3 2\nencoding: ascii\n\n",
                "1 2 3 4 5 256", 13, NNU_STATUS_ERR_FORMAT, "256");
    /* a missing file, a missing data file (named with the header) */
    CHECK_FAILS(nnu_nrrd_read(tmp_path("absent.nrrd"), NULL, &t), NNU_STATUS_ERR_IO, "absent.nrrd");
    snprintf(h, sizeof h, "%sdata file: gone.raw\n", HDR);
    p = make_file("gone.nhdr", h, NULL, 0);
    nnu_status st = nnu_nrrd_read(p, NULL, &t);
    CHECK_FAILS(st, NNU_STATUS_ERR_IO, "gone.nhdr");
    CHECK_FAILS(st, NNU_STATUS_ERR_IO, "gone.raw");
    /* the header alone reads (no data needed) */
    nnu_image_info info;
    CHECK_OK(nnu_nrrd_read_header(p, &info));
    /* a detached header in another folder: the data file is relative to the header */
    spit(tmp_path("gone.raw"), v, 48);
    t = NULL;
    CHECK_OK(nnu_nrrd_read(p, NULL, &t));
    if (t) CHECK(((int16_t *)nnu_tensor_data(t))[23] == 69, "detached data");
    nnu_tensor_release(t);
}

/* cut the file at every offset: each a failure naming the file (ERR_FORMAT) */
static void test_truncation(void) {
    static const char *const src[] = {"tests/fixtures/nrrd/f32_rot_gz.nrrd", "tests/fixtures/nrrd/f32_rot_raw.nrrd",
                                      "tests/fixtures/nrrd/i16_pair.raw.gz"};
    for (int s = 0; s < 3; s++) {
        long n;
        unsigned char *b = slurp(src[s], &n);
        CHECK(b != NULL, "%s", src[s]);
        if (!b) continue;
        int n_checked = 0, n_bad = 0;
        const char *p = tmp_path(s == 2 ? "cut.raw.gz" : "cut.nrrd");
        const char *rp = s == 2 ? tmp_path("cut.nhdr") : p;
        if (s == 2) {       /* the detached header of the fixture, pointing at the cut data file */
            long hn;
            char *hb = (char *)slurp("tests/fixtures/nrrd/i16_pair.nhdr", &hn);
            char *df = hb ? strstr(hb, "data file: ") : NULL;
            if (df) {
                snprintf(df, (size_t)(hn - (df - hb)) + 1, "data file: cut.raw.gz\n");
                spit(rp, hb, (long)strlen(hb));
            }
            free(hb);
        }
        for (long cut = 0; cut < n; cut++) {
            spit(p, b, cut);
            nnu_tensor *t = NULL;
            nnu_status st = nnu_nrrd_read(rp, NULL, &t);
            n_checked++;
            if (st != NNU_STATUS_ERR_FORMAT || !strstr(nnu_last_error(), "cut.") || t) {
                if (n_bad++ < 5)
                    CHECK(0, "%s cut at %ld: %s: %s", src[s], cut, nnu_status_name(st), nnu_last_error());
            }
            nnu_tensor_release(t);
        }
        CHECK(n_bad == 0, "%s: %d of %d cuts not rejected as ERR_FORMAT", src[s], n_bad, n_checked);
        /* corrupt gzip: flip bytes inside the deflate data (the fixture's gzip member) */
        if (s != 1) {
            long start = 0;
            for (long i = 0; i + 1 < n; i++)
                if (b[i] == 0x1f && b[i + 1] == 0x8b) { start = i; break; }
            int n_caught = 0;
            for (long off = start + 20; off < n - 8; off += 37) {
                b[off] ^= 0x5a;
                spit(p, b, n);
                nnu_tensor *t = NULL;
                nnu_status st = nnu_nrrd_read(rp, NULL, &t);
                b[off] ^= 0x5a;
                CHECK(st == NNU_STATUS_ERR_FORMAT && strstr(nnu_last_error(), "gzip") && !t,
                      "%s: flipped byte %ld: %s: %s", src[s], off, nnu_status_name(st), nnu_last_error());
                n_caught += st == NNU_STATUS_ERR_FORMAT;
                nnu_tensor_release(t);
            }
            CHECK(n_caught > 3, "corrupt gzip cases ran");
        }
        free(b);
    }
}

/* random header corruption (fixed seed): never a crash, a failure names the file */
static void test_header_fuzz(void) {
    long n;
    unsigned char *v = slurp("tests/fixtures/nrrd/f32_rot_gz.nrrd", &n);
    if (!v) { CHECK(0, "fixture"); return; }
    long hlen = (long)(strstr((char *)v, "\n\n") - (char *)v) + 2;
    unsigned char *b = malloc((size_t)n);
    uint32_t seed = 4242;
    int n_ok = 0, n_fail = 0;
    static const char repl[] = " \n:=()#,-0123456789.eE";
    for (int it = 0; it < 600; it++) {
        memcpy(b, v, (size_t)n);
        for (int k = 0; k < 1 + it % 3; k++) {
            seed = seed * 1664525u + 1013904223u;
            long off = (long)((seed >> 8) % (uint32_t)hlen);
            seed = seed * 1664525u + 1013904223u;
            b[off] = it % 2 ? (unsigned char)(seed >> 24) : (unsigned char)repl[(seed >> 24) % (sizeof repl - 1)];
        }
        const char *p = tmp_path("fuzz.nrrd");
        spit(p, b, n);
        nnu_tensor *t = NULL;
        nnu_image_info info;
        nnu_status st = nnu_nrrd_read(p, &info, &t);
        if (st == NNU_STATUS_OK) {
            n_ok++;
            CHECK(t && nnu_tensor_numel(t) == info.shape[0] * info.shape[1] * info.shape[2], "fuzz %d: tensor matches",
                  it);
        } else {
            n_fail++;
            CHECK(t == NULL && strstr(nnu_last_error(), "fuzz.nrrd"), "fuzz %d: %s", it, nnu_last_error());
        }
        nnu_tensor_release(t);
    }
    CHECK(n_ok > 0 && n_fail > 0, "fuzz: %d read, %d rejected", n_ok, n_fail);
    free(b);
    free(v);
}

int main(void) {
    tmpdir_make("nrrd");
    test_fixture_files();
    test_write_dtypes();
    test_write_layout();
    test_2d();
    test_segmentation_dtype();
    test_bad_inputs();
    test_truncation();
    test_header_fuzz();
    tmpdir_remove();
    return check_report();
}
