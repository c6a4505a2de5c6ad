/* test_nifti.c: NIfTI reading and writing (core/nnu_nifti.h).
 *
 *  1. Real files against an independent reader: tests/fixtures/nifti/nibabel_reference.json
 *     (tests/gen/gen_nifti_fixtures.py, python3-nibabel) gives shape, dtype, exact
 *     byte checksums, sample voxels and SimpleITK-convention geometry. The demo
 *     files always run; the ../shared/data files run when that folder exists.
 *  2. Round trip of the same files (up to 1M voxels; the BraTS volumes are in
 *     test_nifti_shared.c): read, write, re-read -> identical bytes, dtype,
 *     geometry and raw qform/sform fields.
 *  3. Synthetic files: every dtype, NIfTI-2, scl_slope/inter, big-endian, 4-D,
 *     geometry rebuilt from spacing/origin/direction, qform-only and sform-only.
 *  4. Bad inputs: each gives ERR_FORMAT/ERR_IO/ERR_UNSUPPORTED with the file name
 *     and the problem (truncated gzip, wrong magic, vox_offset beyond the file,
 *     dims that disagree with the size, ...). */
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
#include "nnu_nifti.h"

/* the generator's exact byte checksums over the voxel buffer */
static void checksums(const nnu_tensor *t, uint64_t *c1, uint64_t *c2) {
    const unsigned char *b = nnu_tensor_data(t);
    uint64_t n = (uint64_t)nnu_tensor_numel(t) * nnu_dtype_size(t->dtype), s1 = 0, s2 = 0;
    uint64_t k1 = 0, k2 = 0;                  /* i % 251, i % 65521 without dividing */
    for (uint64_t i = 0; i < n; i++) {
        s1 += b[i] * (k1 + 1);
        s2 += b[i] * (k2 + 1);
        if (++k1 == 251) k1 = 0;
        if (++k2 == 65521) k2 = 0;
    }
    *c1 = s1;
    *c2 = s2;
}

static int file_exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

static int same_geometry(const nnu_image_info *a, const nnu_image_info *b) {
    return memcmp(a->spacing, b->spacing, sizeof a->spacing) == 0 &&
           memcmp(a->spacing_itk, b->spacing_itk, sizeof a->spacing_itk) == 0 &&
           memcmp(a->origin, b->origin, sizeof a->origin) == 0 &&
           memcmp(a->direction, b->direction, sizeof a->direction) == 0;
}

static int same_xforms(const nnu_nifti_header *a, const nnu_nifti_header *b) {
    return a->qform_code == b->qform_code && a->sform_code == b->sform_code &&
           a->quatern_b == b->quatern_b && a->quatern_c == b->quatern_c && a->quatern_d == b->quatern_d &&
           a->qoffset_x == b->qoffset_x && a->qoffset_y == b->qoffset_y && a->qoffset_z == b->qoffset_z &&
           memcmp(a->srow, b->srow, sizeof a->srow) == 0 && memcmp(a->pixdim, b->pixdim, sizeof a->pixdim) == 0 &&
           a->xyzt_units == b->xyzt_units && strcmp(a->descrip, b->descrip) == 0;
}

/* read -> write -> re-read; voxels, dtype, geometry and raw xforms identical */
static void roundtrip(const char *path, const nnu_tensor *t, const nnu_image_info *info, const char *out) {
    nnu_image_write_opts o = {.compression = 1};
    CHECK_OK(nnu_nifti_write(out, t, info, &o));
    nnu_image_info i2;
    nnu_tensor *t2 = NULL;
    CHECK_OK(nnu_nifti_read(out, &i2, &t2));
    if (!t2) return;
    CHECK(t2->dtype == t->dtype && nnu_tensor_same_shape(t, t2), "%s: round trip dtype/shape", path);
    CHECK(nnu_tensor_same_shape(t, t2) && t2->dtype == t->dtype &&
              memcmp(nnu_tensor_data(t), nnu_tensor_data(t2),
                     (size_t)nnu_tensor_numel(t) * nnu_dtype_size(t->dtype)) == 0,
          "%s: round-trip voxels differ", path);
    CHECK(same_geometry(info, &i2), "%s: round-trip geometry differs", path);
    CHECK(same_xforms(&info->hdr, &i2.hdr), "%s: round-trip qform/sform fields differ", path);
    nnu_tensor_release(t2);
    remove(out);
}

static void test_fixture_files(void) {
    const char *fx = "tests/fixtures/nifti/nibabel_reference.json";
    FILE *f = fopen(fx, "r");
    CHECK(f != NULL, "cannot open %s (regenerate: /usr/bin/python3 tests/gen/gen_nifti_fixtures.py)", fx);
    if (!f) return;
    static char line[16384];
    int n_demo = 0, n_shared = 0, n_skipped = 0;
    while (fgets(line, sizeof line, f)) {
        char path[512], dt[16];
        if (strncmp(line, "{\"path\"", 7) != 0 || !jstr(line, "path", path, sizeof path)) continue;
        if (!file_exists(path)) { n_skipped++; continue; }
        int shared = strncmp(path, "../shared/", 10) == 0;
        nnu_image_info info;
        nnu_tensor *t = NULL;
        CHECK_OK(nnu_nifti_read(path, &info, &t));
        if (!t) continue;
        shared ? n_shared++ : n_demo++;
        double shape[4], v[64], sp[3], or[3], dir[9], spz[3];
        int nd = jnums(line, "shape", shape, 4);
        CHECK(nd == t->ndim, "%s: ndim %d vs nibabel %d", path, t->ndim, nd);
        for (int i = 0; i < nd && i < t->ndim; i++)
            CHECK(t->shape[i] == (int64_t)shape[i], "%s: shape[%d] %lld vs %g", path, i, (long long)t->shape[i],
                  shape[i]);
        jstr(line, "dtype", dt, sizeof dt);
        CHECK(strcmp(dt, nnu_dtype_name(t->dtype)) == 0, "%s: dtype %s vs nibabel %s", path,
              nnu_dtype_name(t->dtype), dt);
        uint64_t c1, c2;
        checksums(t, &c1, &c2);
        jnums(line, "checksum1", v, 1);
        CHECK((double)c1 == v[0], "%s: checksum1 %llu vs %.0f", path, (unsigned long long)c1, v[0]);
        jnums(line, "checksum2", v, 1);
        CHECK((double)c2 == v[0], "%s: checksum2 %llu vs %.0f", path, (unsigned long long)c2, v[0]);
        double sum, mn, mx;
        CHECK_OK(nnu_tensor_sum(t, &sum));
        CHECK_OK(nnu_tensor_min(t, &mn));
        CHECK_OK(nnu_tensor_max(t, &mx));
        jnums(line, "sum", v, 1);
        CHECK_CLOSE(sum, v[0], 1e-6, 1e-12);     /* summation order differs from math.fsum */
        jnums(line, "min", v, 1);
        CHECK(mn == v[0], "%s: min %g vs %g", path, mn, v[0]);
        jnums(line, "max", v, 1);
        CHECK(mx == v[0], "%s: max %g vs %g", path, mx, v[0]);
        int ns = jnums(line, "samples", v, 64);
        for (int k = 0; k + 1 < ns; k += 2) {
            double got = nnu_dtype_load(t->dtype, (char *)nnu_tensor_data(t) +
                                                      (int64_t)v[k] * (int64_t)nnu_dtype_size(t->dtype));
            CHECK(got == v[k + 1], "%s: voxel %g = %g vs nibabel %g", path, v[k], got, v[k + 1]);
        }
        jnums(line, "spacing_itk", sp, 3);
        jnums(line, "spacing", spz, 3);
        jnums(line, "origin", or, 3);
        jnums(line, "direction", dir, 9);
        for (int i = 0; i < 3; i++) {
            CHECK(info.spacing_itk[i] == sp[i], "%s: spacing_itk[%d] %.17g vs %.17g", path, i, info.spacing_itk[i], sp[i]);
            CHECK(info.spacing[i] == spz[i], "%s: spacing[%d] %.17g vs %.17g", path, i, info.spacing[i], spz[i]);
            CHECK(info.origin[i] == or[i], "%s: origin[%d] %.17g vs %.17g", path, i, info.origin[i], or[i]);
        }
        for (int i = 0; i < 9; i++)
            CHECK(info.direction[i] == dir[i], "%s: direction[%d] %.17g vs %.17g", path, i, info.direction[i], dir[i]);
        /* the large BraTS volumes round-trip in test_nifti_shared.c (keeps each test short) */
        if (nnu_tensor_numel(t) <= 1000000) roundtrip(path, t, &info, tmp_path("rt.nii.gz"));
        nnu_tensor_release(t);
    }
    fclose(f);
    CHECK(n_demo >= 8, "only %d demo files found in the fixture", n_demo);
    fprintf(stderr, "fixture files: %d demo, %d shared, %d skipped%s\n", n_demo, n_shared, n_skipped,
            n_skipped ? " (SKIPPED: ../shared/data is absent; the demo files still ran)" : "");
}

/* ---- synthetic files ---- */

static void test_dtypes(void) {
    const nnu_dtype dts[] = {NNU_DTYPE_U8, NNU_DTYPE_I8, NNU_DTYPE_I16, NNU_DTYPE_U16,
                             NNU_DTYPE_I32, NNU_DTYPE_I64, NNU_DTYPE_F32, NNU_DTYPE_F64};
    int64_t shape[3] = {3, 4, 5};          /* (z, y, x): file dim = (5, 4, 3) */
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        for (int gz = 0; gz < 2; gz++) {
            nnu_tensor *t = NULL, *r = NULL;
            CHECK_OK(nnu_tensor_new(dts[k], 3, shape, &t));
            for (int64_t i = 0; i < 60; i++)
                nnu_dtype_store(t->dtype, (char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(t->dtype),
                                (double)(i * 3 % 61) - (nnu_dtype_is_float(dts[k]) ? 7.25 : 0));
            const char *p = tmp_path(gz ? "dt.nii.gz" : "dt.nii");
            CHECK_OK(nnu_nifti_write(p, t, NULL, NULL));
            nnu_image_info info;
            CHECK_OK(nnu_nifti_read(p, &info, &r));
            if (r) {
                CHECK(r->dtype == dts[k], "dtype %s came back as %s", nnu_dtype_name(dts[k]), nnu_dtype_name(r->dtype));
                CHECK(memcmp(nnu_tensor_data(t), nnu_tensor_data(r), 60 * nnu_dtype_size(dts[k])) == 0,
                      "%s voxels differ", nnu_dtype_name(dts[k]));
                CHECK(info.hdr.dim[0] == 3 && info.hdr.dim[1] == 5 && info.hdr.dim[2] == 4 && info.hdr.dim[3] == 3,
                      "file dims are (x, y, z) = (5, 4, 3)");
                /* default geometry: ITK identity -> RAS diag(-1,-1,1) in the file */
                CHECK(info.direction[0] == 1 && info.direction[4] == 1 && info.direction[8] == 1,
                      "identity direction");
                CHECK(info.hdr.srow[0][0] == -1 && info.hdr.srow[1][1] == -1 && info.hdr.srow[2][2] == 1,
                      "LPS identity is RAS diag(-1,-1,1)");
            }
            nnu_tensor_release(t);
            nnu_tensor_release(r);
        }
    }
    /* f16 is stored as f32 */
    nnu_tensor *h = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F16, 3, shape, &h));
    CHECK_OK(nnu_tensor_fill(h, 1.5));
    CHECK_OK(nnu_nifti_write(tmp_path("h.nii"), h, NULL, NULL));
    CHECK_OK(nnu_nifti_read(tmp_path("h.nii"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_F32 && ((float *)nnu_tensor_data(r))[59] == 1.5f, "f16 stored as f32");
    nnu_tensor_release(h);
    nnu_tensor_release(r);
}

/* segmentation rule: uint8 if max < 255 else uint16 */
static void test_segmentation_dtype(void) {
    int64_t shape[3] = {2, 2, 2};
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, shape, &t));
    nnu_image_write_opts o = {.segmentation = 1};
    ((float *)nnu_tensor_data(t))[3] = 254;
    CHECK_OK(nnu_nifti_write(tmp_path("seg.nii.gz"), t, NULL, &o));
    CHECK_OK(nnu_nifti_read(tmp_path("seg.nii.gz"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_U8 && ((uint8_t *)nnu_tensor_data(r))[3] == 254, "max 254 -> u8");
    nnu_tensor_release(r);
    r = NULL;
    ((float *)nnu_tensor_data(t))[3] = 255;
    CHECK_OK(nnu_nifti_write(tmp_path("seg.nii.gz"), t, NULL, &o));
    CHECK_OK(nnu_nifti_read(tmp_path("seg.nii.gz"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_U16 && ((uint16_t *)nnu_tensor_data(r))[3] == 255, "max 255 -> u16");
    nnu_tensor_release(r);
    ((float *)nnu_tensor_data(t))[3] = -1;
    CHECK_FAILS(nnu_nifti_write(tmp_path("seg.nii.gz"), t, NULL, &o), NNU_STATUS_ERR_ARG, "0..65535");
    nnu_tensor_release(t);
}

/* A rotated geometry given as ITK spacing/origin/direction survives write + read. */
static void test_geometry_from_itk(void) {
    nnu_image_info g;
    memset(&g, 0, sizeof g);
    double c = cos(0.3), s = sin(0.3);
    double dir[9] = {c, -s, 0, s, c, 0, 0, 0, 1};      /* rotation about z, columns = axes */
    memcpy(g.direction, dir, sizeof dir);
    g.spacing_itk[0] = 0.75; g.spacing_itk[1] = 0.8; g.spacing_itk[2] = 3.0;
    g.origin[0] = -12.5; g.origin[1] = 30.25; g.origin[2] = 7;
    int64_t shape[3] = {4, 3, 2};
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_I16, 3, shape, &t));
    CHECK_OK(nnu_nifti_write(tmp_path("rot.nii.gz"), t, &g, NULL));
    nnu_image_info i2;
    CHECK_OK(nnu_nifti_read(tmp_path("rot.nii.gz"), &i2, &r));
    CHECK(i2.hdr.qform_code == 1 && i2.hdr.sform_code == 1, "ITK writes qform and sform codes 1");
    CHECK(i2.hdr.xyzt_units == 10, "units mm + s");
    for (int i = 0; i < 3; i++) {
        CHECK_CLOSE(i2.spacing_itk[i], g.spacing_itk[i], 1e-6, 0);
        CHECK_CLOSE(i2.origin[i], g.origin[i], 1e-5, 0);
    }
    CHECK(i2.spacing[0] == i2.spacing_itk[2] && i2.spacing[2] == i2.spacing_itk[0], "spacing is (z, y, x)");
    for (int i = 0; i < 9; i++) CHECK_CLOSE(i2.direction[i], dir[i], 1e-6, 0);
    CHECK(i2.used_sform == 1, "sform (code 1, orthonormal) is preferred");
    nnu_tensor_release(t);
    nnu_tensor_release(r);
}

/* ---- files patched byte by byte ---- */

static void spit(const char *path, const void *b, long n, int gz) {
    if (gz) {
        gzFile g = gzopen(path, "wb6");
        gzwrite(g, b, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(b, 1, (size_t)n, f);
        fclose(f);
    }
}

/* A valid uncompressed 40x40x40 int16 file's bytes (352 + 128000). */
static unsigned char *valid_nii(long *n) {
    int64_t shape[3] = {40, 40, 40};
    nnu_tensor *t = NULL;
    if (nnu_tensor_new(NNU_DTYPE_I16, 3, shape, &t) != NNU_STATUS_OK) return NULL;
    int16_t *d = nnu_tensor_data(t);
    for (int i = 0; i < 64000; i++) d[i] = (int16_t)(i % 1000 - 500);
    nnu_status st = nnu_nifti_write(tmp_path("valid.nii"), t, NULL, NULL);
    nnu_tensor_release(t);
    return st == NNU_STATUS_OK ? slurp(tmp_path("valid.nii"), n) : NULL;
}

static void put_f32(unsigned char *b, int off, float v) { memcpy(b + off, &v, 4); }
static void put_i16(unsigned char *b, int off, int16_t v) { memcpy(b + off, &v, 2); }

/* the read must fail with status st and a message naming the file and the problem */
static void expect_fail(const char *path, nnu_status st, const char *problem) {
    nnu_tensor *t = NULL;
    nnu_image_info info;
    nnu_status got = nnu_nifti_read(path, &info, &t);
    CHECK_FAILS(got, st, problem);
    const char *base = strrchr(path, '/');
    CHECK(strstr(nnu_last_error(), base ? base + 1 : path) != NULL, "message names the file: %s", nnu_last_error());
    CHECK(t == NULL, "no tensor on failure");
    nnu_tensor_release(t);
}

static void test_bad_inputs(void) {
    long n;
    unsigned char *v = valid_nii(&n);
    CHECK(v && n == 352 + 128000, "valid file size %ld", n);
    if (!v) return;
    unsigned char *b = malloc((size_t)n);

    expect_fail(tmp_path("does_not_exist.nii.gz"), NNU_STATUS_ERR_IO, "No such file");
    spit(tmp_path("empty.nii"), v, 0, 0);
    expect_fail(tmp_path("empty.nii"), NNU_STATUS_ERR_FORMAT, "too short");

    /* wrong magic */
    memcpy(b, v, (size_t)n);
    memcpy(b + 344, "xyz\0", 4);
    spit(tmp_path("magic.nii"), b, n, 0);
    expect_fail(tmp_path("magic.nii"), NNU_STATUS_ERR_FORMAT, "bad magic 'xyz'");
    spit(tmp_path("magic.nii.gz"), b, n, 1);
    expect_fail(tmp_path("magic.nii.gz"), NNU_STATUS_ERR_FORMAT, "bad magic");
    memcpy(b + 344, "ni1\0", 4);
    spit(tmp_path("twofile.nii"), b, n, 0);
    expect_fail(tmp_path("twofile.nii"), NNU_STATUS_ERR_UNSUPPORTED, "two-file");

    /* bad sizeof_hdr (not a NIfTI file at all) */
    memcpy(b, v, (size_t)n);
    memcpy(b, "GIF8", 4);
    spit(tmp_path("gif.nii"), b, n, 0);
    expect_fail(tmp_path("gif.nii"), NNU_STATUS_ERR_FORMAT, "bad sizeof_hdr");

    /* vox_offset beyond the file: 1500-byte file claiming data at 2000 */
    memcpy(b, v, (size_t)n);
    put_f32(b, 108, 2000);
    spit(tmp_path("voxoff.nii"), b, 1500, 0);
    expect_fail(tmp_path("voxoff.nii"), NNU_STATUS_ERR_FORMAT, "vox_offset 2000 beyond end of file (1500 bytes)");
    spit(tmp_path("voxoff.nii.gz"), b, 1500, 1);
    expect_fail(tmp_path("voxoff.nii.gz"), NNU_STATUS_ERR_FORMAT, "vox_offset 2000 beyond end of data");

    /* dimensions that disagree with the file size: 40x40x40 int16 but 1000 data bytes */
    spit(tmp_path("short.nii"), v, 352 + 1000, 0);
    expect_fail(tmp_path("short.nii"), NNU_STATUS_ERR_FORMAT,
                "header says 40x40x40 INT16 = 128000 bytes but only 1000 bytes of data");
    spit(tmp_path("short.nii.gz"), v, 352 + 1000, 1);
    expect_fail(tmp_path("short.nii.gz"), NNU_STATUS_ERR_FORMAT,
                "header says 40x40x40 INT16 = 128000 bytes but only 1000 bytes of data");
    /* a huge lie in a small gzip file fails before allocating */
    memcpy(b, v, (size_t)n);
    put_i16(b, 42, 30000); put_i16(b, 44, 30000); put_i16(b, 46, 1000);
    spit(tmp_path("huge.nii.gz"), b, n, 1);
    expect_fail(tmp_path("huge.nii.gz"), NNU_STATUS_ERR_FORMAT, "more than a");

    /* bad dims and datatype */
    memcpy(b, v, (size_t)n);
    put_i16(b, 40, 0);
    spit(tmp_path("dim0.nii"), b, n, 0);
    expect_fail(tmp_path("dim0.nii"), NNU_STATUS_ERR_FORMAT, "bad dim[0] = 0");
    memcpy(b, v, (size_t)n);
    put_i16(b, 44, -4);
    spit(tmp_path("dimneg.nii"), b, n, 0);
    expect_fail(tmp_path("dimneg.nii"), NNU_STATUS_ERR_FORMAT, "bad dim[2] = -4");
    memcpy(b, v, (size_t)n);
    put_i16(b, 70, 32);       /* COMPLEX64 */
    spit(tmp_path("complex.nii"), b, n, 0);
    expect_fail(tmp_path("complex.nii"), NNU_STATUS_ERR_UNSUPPORTED, "datatype COMPLEX64 (32) is not supported");

    /* truncated gzip stream: the compressed file cut in half, and cut inside its trailer */
    spit(tmp_path("full.nii.gz"), v, n, 1);
    long gn;
    unsigned char *g = slurp(tmp_path("full.nii.gz"), &gn);
    if (g) {
        spit(tmp_path("trunc.nii.gz"), g, gn / 2, 0);
        expect_fail(tmp_path("trunc.nii.gz"), NNU_STATUS_ERR_FORMAT, "truncated gzip stream");
        spit(tmp_path("trunc_tail.nii.gz"), g, gn - 3, 0);
        expect_fail(tmp_path("trunc_tail.nii.gz"), NNU_STATUS_ERR_FORMAT, "truncated gzip stream");
        spit(tmp_path("trunc_hdr.nii.gz"), g, 30, 0);
        expect_fail(tmp_path("trunc_hdr.nii.gz"), NNU_STATUS_ERR_FORMAT, "trunc_hdr.nii.gz");
        /* corrupt deflate data in the middle */
        for (long i = gn / 2; i < gn / 2 + 64 && i < gn; i++) g[i] ^= 0x5a;
        spit(tmp_path("corrupt.nii.gz"), g, gn, 0);
        expect_fail(tmp_path("corrupt.nii.gz"), NNU_STATUS_ERR_FORMAT, "gzip");
        free(g);
    }
    /* compression is recognised by content, not by name */
    spit(tmp_path("gz_named.nii"), v, n, 1);
    spit(tmp_path("plain_named.nii.gz"), v, n, 0);
    nnu_tensor *m1 = NULL, *m2 = NULL;
    CHECK_OK(nnu_nifti_read(tmp_path("gz_named.nii"), NULL, &m1));
    CHECK_OK(nnu_nifti_read(tmp_path("plain_named.nii.gz"), NULL, &m2));
    nnu_tensor_release(m1);
    nnu_tensor_release(m2);
    spit(tmp_path("short_plain_named.nii.gz"), v, 352 + 1000, 0);
    expect_fail(tmp_path("short_plain_named.nii.gz"), NNU_STATUS_ERR_FORMAT, "but only 1000 bytes of data");
    /* the valid file itself still reads */
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_nifti_read(tmp_path("full.nii.gz"), NULL, &t));
    if (t) CHECK(((int16_t *)nnu_tensor_data(t))[1999] == 1999 % 1000 - 500, "valid gz data");
    nnu_tensor_release(t);
    free(b);
    free(v);
}

/* scl_slope/scl_inter: int16 * 2 + 1 -> f32, as ITK (nibabel agrees) */
static void test_scaling_and_endianness(void) {
    long n;
    unsigned char *v = valid_nii(&n);
    if (!v) { CHECK(0, "valid file"); return; }
    put_f32(v, 112, 2.0f);
    put_f32(v, 116, 1.0f);
    spit(tmp_path("scaled.nii.gz"), v, n, 1);
    nnu_tensor *t = NULL;
    nnu_image_info info;
    CHECK_OK(nnu_nifti_read(tmp_path("scaled.nii.gz"), &info, &t));
    if (t) {
        CHECK(t->dtype == NNU_DTYPE_F32 && info.scaled, "scaled int16 -> f32");
        CHECK(((float *)nnu_tensor_data(t))[7] == (float)((7 - 500) * 2 + 1), "scaled value %g",
              ((float *)nnu_tensor_data(t))[7]);
    }
    nnu_tensor_release(t);
    t = NULL;
    /* slope 0 means "no scaling" (ITK and nifticlib) */
    put_f32(v, 112, 0.0f);
    put_f32(v, 116, 0.0f);
    spit(tmp_path("slope0.nii"), v, n, 0);
    CHECK_OK(nnu_nifti_read(tmp_path("slope0.nii"), &info, &t));
    if (t) CHECK(t->dtype == NNU_DTYPE_I16 && !info.scaled, "slope 0: raw int16");
    nnu_tensor_release(t);
    t = NULL;

    /* big-endian copy of the same file: swap every header field and the voxels */
    unsigned char *b = malloc((size_t)n);
    memcpy(b, v, (size_t)n);
    static const struct { int off, size, count; } fields[] = {
        {0, 4, 1}, {32, 4, 1}, {36, 2, 1}, {40, 2, 8}, {56, 4, 3}, {68, 2, 1}, {70, 2, 1}, {72, 2, 1},
        {74, 2, 1}, {76, 4, 8}, {108, 4, 1}, {112, 4, 1}, {116, 4, 1}, {120, 2, 1}, {124, 4, 1},
        {128, 4, 1}, {132, 4, 1}, {136, 4, 1}, {140, 4, 1}, {144, 4, 1}, {252, 2, 1}, {254, 2, 1},
        {256, 4, 6}, {280, 4, 12}};
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        for (int c = 0; c < fields[k].count; c++) {
            unsigned char *p = b + fields[k].off + c * fields[k].size;
            for (int i = 0; i < fields[k].size / 2; i++) {
                unsigned char x = p[i]; p[i] = p[fields[k].size - 1 - i]; p[fields[k].size - 1 - i] = x;
            }
        }
    for (long i = 352; i + 1 < n; i += 2) { unsigned char x = b[i]; b[i] = b[i + 1]; b[i + 1] = x; }
    spit(tmp_path("bigendian.nii"), b, n, 0);
    nnu_image_info bi;
    CHECK_OK(nnu_nifti_read(tmp_path("bigendian.nii"), &bi, &t));
    if (t) {
        CHECK(t->dtype == NNU_DTYPE_I16 && ((int16_t *)nnu_tensor_data(t))[1234] == 1234 % 1000 - 500,
              "big-endian voxels");
        CHECK(bi.hdr.srow[0][0] == -1 && bi.direction[0] == 1, "big-endian header fields");
    }
    nnu_tensor_release(t);
    free(b);
    free(v);
}

/* NIfTI-2 written (reference header version 2) and read back; 4-D (c, z, y, x) */
static void test_nifti2_and_4d(void) {
    int64_t shape[4] = {3, 2, 4, 5};          /* (c, z, y, x) */
    nnu_tensor *t = NULL, *r = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, shape, &t));
    float *d = nnu_tensor_data(t);
    for (int i = 0; i < 120; i++) d[i] = (float)i * 0.5f;
    nnu_image_info g;
    memset(&g, 0, sizeof g);
    for (int i = 0; i < 3; i++) g.spacing_itk[i] = 1.0 + i;
    for (int i = 0; i < 9; i++) g.direction[i] = (i % 4 == 0);
    g.origin[0] = 5;
    CHECK_OK(nnu_nifti_header_from_geometry(&g));
    g.hdr.version = 2;
    CHECK_OK(nnu_nifti_write(tmp_path("four.nii.gz"), t, &g, NULL));
    nnu_image_info i2;
    CHECK_OK(nnu_nifti_read(tmp_path("four.nii.gz"), &i2, &r));
    if (r) {
        CHECK(i2.hdr.version == 2, "NIfTI-2 written and read");
        CHECK(r->ndim == 4 && r->shape[0] == 3 && r->shape[1] == 2 && r->shape[3] == 5, "4-D is (c, z, y, x)");
        CHECK(i2.hdr.dim[0] == 4 && i2.hdr.dim[4] == 3 && i2.hdr.dim[1] == 5, "file dims (x, y, z, t)");
        CHECK(memcmp(d, nnu_tensor_data(r), 120 * 4) == 0, "4-D voxels");
        CHECK(i2.origin[0] == 5 && i2.spacing_itk[2] == 3 && i2.spacing[0] == 3, "4-D geometry");
    }
    nnu_tensor_release(r);
    r = NULL;
    nnu_image_info h;
    CHECK_OK(nnu_nifti_read_header(tmp_path("four.nii.gz"), &h));
    CHECK(h.ndim == 4 && h.shape[0] == 3 && h.dtype == NNU_DTYPE_F32, "read_header shape/dtype");
    /* one channel of it, written with the 4-D file's geometry, is a 3-D file */
    nnu_tensor *c1 = NULL;
    CHECK_OK(nnu_tensor_view_select(t, 0, 1, &c1));
    CHECK_OK(nnu_nifti_write(tmp_path("chan1.nii.gz"), c1, &i2, NULL));
    nnu_image_info i3;
    CHECK_OK(nnu_nifti_read(tmp_path("chan1.nii.gz"), &i3, &r));
    if (r) {
        CHECK(r->ndim == 3 && i3.hdr.dim[0] == 3 && ((float *)nnu_tensor_data(r))[0] == 20.0f, "channel 1 (3-D)");
        CHECK(same_geometry(&i2, &i3), "channel keeps the 3-D geometry");
    }
    /* read_f32 converts */
    nnu_tensor *f = NULL;
    nnu_tensor_release(r);
    r = NULL;
    CHECK_OK(nnu_tensor_to_dtype(c1, NNU_DTYPE_U8, &f));
    CHECK_OK(nnu_nifti_write(tmp_path("u8.nii"), f, &i3, NULL));
    CHECK_OK(nnu_nifti_read_f32(tmp_path("u8.nii"), NULL, &r));
    if (r) CHECK(r->dtype == NNU_DTYPE_F32 && ((float *)nnu_tensor_data(r))[3] == 21.0f, "read_f32");
    nnu_tensor_release(f);
    nnu_tensor_release(r);
    nnu_tensor_release(c1);
    nnu_tensor_release(t);
}

/* ITK's choice between qform and sform */
static void test_qform_sform_choice(void) {
    long n;
    unsigned char *v = valid_nii(&n);
    if (!v) { CHECK(0, "valid file"); return; }
    nnu_image_info info;
    /* sform code 0: the qform decides (the writer's quaternion: LPS identity) */
    put_i16(v, 254, 0);
    put_f32(v, 280, 5.0f);                 /* srow_x[0] garbage, ignored */
    spit(tmp_path("qonly.nii"), v, n, 0);
    CHECK_OK(nnu_nifti_read_header(tmp_path("qonly.nii"), &info));
    CHECK(!info.used_sform && info.direction[0] == 1 && info.spacing_itk[0] == 1, "qform only");
    /* qform code 0, sform code 2 with a 2x scale on x: the sform decides (BraTS images) */
    put_i16(v, 252, 0);
    put_i16(v, 254, 2);
    put_f32(v, 280, -2.0f);
    put_f32(v, 76 + 4, 2.0f);              /* pixdim[1] = 2 */
    put_f32(v, 292, 7.0f);                 /* srow_x[3] */
    spit(tmp_path("sonly.nii"), v, n, 0);
    CHECK_OK(nnu_nifti_read_header(tmp_path("sonly.nii"), &info));
    CHECK(info.used_sform && info.origin[0] == -7 && info.direction[0] == 1 && info.spacing_itk[0] == 2,
          "sform only: origin %g dir %g spacing %g", info.origin[0], info.direction[0], info.spacing_itk[0]);
    /* neither: origin 0, identity */
    put_i16(v, 254, 0);
    spit(tmp_path("none.nii"), v, n, 0);
    CHECK_OK(nnu_nifti_read_header(tmp_path("none.nii"), &info));
    CHECK(info.origin[0] == 0 && info.direction[0] == 1 && info.direction[4] == 1, "no xform");
    /* sform with skew and no qform: ITK refuses */
    put_i16(v, 254, 2);
    put_f32(v, 284, 1.5f);                 /* srow_x[1]: skew */
    spit(tmp_path("skew.nii"), v, n, 0);
    nnu_status st = nnu_nifti_read_header(tmp_path("skew.nii"), &info);
    CHECK_FAILS(st, NNU_STATUS_ERR_UNSUPPORTED, "orthonormal");
    free(v);
}

/* Random header corruption (fixed seed): every read returns OK or a failure with a
 * message naming the file, never a crash (run under ASan/UBSan by make test-asan). */
static void test_header_fuzz(void) {
    long n;
    unsigned char *v = valid_nii(&n);
    if (!v) { CHECK(0, "valid file"); return; }
    unsigned char *b = malloc((size_t)n);
    uint32_t seed = 12345;
    int n_ok = 0, n_fail = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(b, v, (size_t)n);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1664525u + 1013904223u;
            int off = (int)((seed >> 8) % 352);
            seed = seed * 1664525u + 1013904223u;
            b[off] = (unsigned char)(seed >> 24);
        }
        long len = n;
        if (it % 5 == 4) len = 352 + (long)(seed % 128000);        /* and sometimes cut the data */
        const char *p = tmp_path(it % 2 ? "fuzz.nii.gz" : "fuzz.nii");
        spit(p, b, len, it % 2);
        nnu_tensor *t = NULL;
        nnu_image_info info;
        nnu_status st = nnu_nifti_read(p, &info, &t);
        if (st == NNU_STATUS_OK) {
            n_ok++;
            CHECK(t && nnu_tensor_numel(t) == info.shape[0] * info.shape[1] * info.shape[2] *
                                                 (info.ndim == 4 ? info.shape[3] : 1),
                  "fuzz %d: tensor matches info", it);
        } else {
            n_fail++;
            CHECK(t == NULL && strstr(nnu_last_error(), "fuzz.nii"), "fuzz %d: %s", it, nnu_last_error());
        }
        nnu_tensor_release(t);
    }
    CHECK(n_ok > 0 && n_fail > 0, "fuzz: %d read, %d rejected", n_ok, n_fail);
    free(b);
    free(v);
}

static void test_scan(void) {
    int64_t shape[3] = {1, 2, 3};
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 3, shape, &t));
    float *d = nnu_tensor_data(t);
    d[0] = 2; d[1] = 0; d[2] = NAN; d[3] = 2; d[4] = 1; d[5] = INFINITY;
    double vals[4];
    nnu_image_scan_result r;
    CHECK_OK(nnu_image_scan(t, vals, 4, &r));
    CHECK(r.n_nan == 1 && r.n_inf == 1 && r.min == 0 && r.max == 2, "scan nan/inf/min/max");
    CHECK(r.n_values == 3 && vals[0] == 0 && vals[1] == 1 && vals[2] == 2, "scan distinct sorted values");
    CHECK_OK(nnu_image_scan(t, vals, 2, &r));
    CHECK(r.n_values == -1, "scan: more values than room");
    nnu_tensor_release(t);
}

int main(void) {
    tmpdir_make("nifti");
    test_fixture_files();
    test_dtypes();
    test_segmentation_dtype();
    test_geometry_from_itk();
    test_bad_inputs();
    test_scaling_and_endianness();
    test_nifti2_and_4d();
    test_qform_sform_choice();
    test_header_fuzz();
    test_scan();
    tmpdir_remove();
    return check_report();
}
