/* test_store.c: the preprocessed-case file format (core/nnu_store.h).
 * Exact tier: integer-valued data round-trips bit-exactly through every codec and
 * dtype; patches (inside, across chunk borders, partly and wholly outside the
 * case) equal the slice of the full array with 0 / -1 padding; class locations
 * round-trip; incomplete or foreign files (leftover .tmp, truncated, appended,
 * flipped header byte, other plans identifier or hash) are rejected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_store.h"

static char dir[256];

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

/* data[c,z,y,x] = a deterministic mix of smooth and noisy values */
static int quantized;   /* 1: few distinct values (palette chunks), 2: > 256 distinct per chunk */

static nnu_tensor *make_data(int C, int D, int H, int W) {
    int64_t shape[4] = {C, D, H, W};
    nnu_tensor *t = NULL;
    nnu_tensor_new(NNU_DTYPE_F32, 4, shape, &t);
    float *p = nnu_tensor_data(t);
    uint32_t r = 12345;
    for (int64_t i = 0; i < nnu_tensor_numel(t); i++) {
        r = r * 1664525u + 1013904223u;
        p[i] = (i % 7 == 0) ? 0.0f : (float)(i % 97) * 0.25f - 3.0f + (float)(r >> 20) * 1e-4f;
        if (quantized == 1) p[i] = (float)(r >> 29) * 0.37f - 1.0f;          /* 8 values */
        if (quantized == 2) p[i] = (float)(r >> 22) * 0.37f - 1.0f;          /* 1024 values */
    }
    return t;
}

static nnu_tensor *make_seg(int D, int H, int W, int maxlab) {
    int64_t shape[4] = {1, D, H, W};
    nnu_tensor *t = NULL;
    nnu_tensor_new(NNU_DTYPE_F32, 4, shape, &t);
    float *p = nnu_tensor_data(t);
    for (int64_t i = 0; i < nnu_tensor_numel(t); i++) p[i] = (float)((int)(i % (maxlab + 2)) - 1);
    return t;
}

static float data_at(const nnu_tensor *t, int64_t c, int64_t z, int64_t y, int64_t x) {
    const float *p = nnu_tensor_data(t);
    return p[((c * t->shape[1] + z) * t->shape[2] + y) * t->shape[3] + x];
}

/* checks a patch read against the full arrays */
static void check_patch(const nnu_store *s, const nnu_tensor *data, const nnu_tensor *seg,
                        const int64_t lo[3], const int64_t sz[3], nnu_dtype seg_dt, const char *what) {
    const nnu_store_info *in = nnu_store_get_info(s);
    int64_t ds[4] = {in->n_channels, sz[0], sz[1], sz[2]}, ss[4] = {1, sz[0], sz[1], sz[2]};
    nnu_tensor *pd = NULL, *ps = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, ds, &pd));
    CHECK_OK(nnu_tensor_new(seg_dt, 4, ss, &ps));
    CHECK_OK(nnu_store_read_patch(s, lo, sz, pd, ps));
    int64_t bad = 0;
    for (int64_t c = 0; c < in->n_channels; c++)
        for (int64_t z = 0; z < sz[0]; z++)
            for (int64_t y = 0; y < sz[1]; y++)
                for (int64_t x = 0; x < sz[2]; x++) {
                    int64_t Z = lo[0] + z, Y = lo[1] + y, X = lo[2] + x;
                    int inside = Z >= 0 && Y >= 0 && X >= 0 && Z < in->shape[0] && Y < in->shape[1] && X < in->shape[2];
                    float want = inside ? data_at(data, c, Z, Y, X) : 0.0f;
                    if (in->data_dtype == NNU_DTYPE_F16) want = nnu_f16_to_f32(nnu_f32_to_f16(want));
                    int64_t idx[4] = {c, z, y, x};
                    double got;
                    nnu_tensor_get(pd, idx, &got);
                    if ((float)got != want) bad++;
                    if (c == 0) {
                        double gs, ws = inside ? data_at(seg, 0, Z, Y, X) : -1.0;
                        int64_t sidx[4] = {0, z, y, x};
                        nnu_tensor_get(ps, sidx, &gs);
                        if (gs != ws) bad++;
                    }
                }
    CHECK(bad == 0, "%s: patch lo (%lld,%lld,%lld) size (%lld,%lld,%lld): %lld wrong voxels", what,
          (long long)lo[0], (long long)lo[1], (long long)lo[2], (long long)sz[0], (long long)sz[1],
          (long long)sz[2], (long long)bad);
    nnu_tensor_release(pd);
    nnu_tensor_release(ps);
}

static void roundtrip(int codec, nnu_dtype dt, int maxlab, const char *what) {
    char path[512];
    path_of(path, sizeof path, "case.nnu");
    nnu_tensor *data = make_data(2, 13, 21, 18), *seg = make_seg(13, 21, 18, maxlab);
    nnu_store_write_opts o = nnu_store_write_opts_default();
    o.codec = codec;
    o.data_dtype = dt;
    o.chunk[0] = 4; o.chunk[1] = 8; o.chunk[2] = 5;       /* edge chunks of every size */
    if (quantized == 2) { o.chunk[0] = 13; o.chunk[1] = 21; o.chunk[2] = 18; }   /* one chunk, 4914 voxels */
    o.plans_id = "nnUNetPlans_3d_fullres";
    o.plans_hash = 0x1234abcdULL;
    o.no_fsync = 1;
    CHECK_OK(nnu_store_write(path, data, seg, NULL, &o));
    nnu_store *s = NULL;
    CHECK_OK(nnu_store_open(path, "nnUNetPlans_3d_fullres", 0x1234abcdULL, &s));
    if (!s) return;
    const nnu_store_info *in = nnu_store_get_info(s);
    CHECK(in->n_channels == 2 && in->shape[0] == 13 && in->shape[1] == 21 && in->shape[2] == 18,
          "%s: info shape", what);
    CHECK(in->seg_dtype == (maxlab > 127 ? NNU_DTYPE_I16 : NNU_DTYPE_I8), "%s: seg dtype %s", what,
          nnu_dtype_name(in->seg_dtype));
    CHECK_OK(nnu_store_verify(s));
    if (quantized)
        CHECK(in->chunks_by_codec[NNU_STORE_PALETTE] > 0, "%s: palette chunks used (%lld raw, %lld deflate, %lld palette)",
              what, (long long)in->chunks_by_codec[0], (long long)in->chunks_by_codec[1], (long long)in->chunks_by_codec[2]);
    if (codec == NNU_STORE_RAW)
        CHECK(in->chunks_by_codec[NNU_STORE_RAW] == (int64_t)(3 * 4 * 3 * 4), "%s: all chunks raw", what);
    int64_t lo_in[3] = {2, 3, 4}, sz_in[3] = {5, 9, 7};
    check_patch(s, data, seg, lo_in, sz_in, NNU_DTYPE_I16, what);
    int64_t lo_edge[3] = {-3, 15, -2}, sz_edge[3] = {8, 10, 25};
    check_patch(s, data, seg, lo_edge, sz_edge, NNU_DTYPE_F32, what);
    int64_t lo_out[3] = {20, 0, 0}, sz_out[3] = {2, 3, 4};
    check_patch(s, data, seg, lo_out, sz_out, NNU_DTYPE_I16, what);
    int64_t lo_all[3] = {0, 0, 0};
    check_patch(s, data, seg, lo_all, in->shape, maxlab > 127 ? NNU_DTYPE_I16 : NNU_DTYPE_I8, what);
    nnu_store_close(s);
    nnu_tensor_release(data);
    nnu_tensor_release(seg);
}

static void test_roundtrips(void) {
    roundtrip(NNU_STORE_DEFLATE, NNU_DTYPE_F32, 3, "deflate f32");
    roundtrip(NNU_STORE_RAW, NNU_DTYPE_F32, 3, "raw f32");
    roundtrip(NNU_STORE_DEFLATE, NNU_DTYPE_F16, 3, "deflate f16");
    roundtrip(NNU_STORE_DEFLATE, NNU_DTYPE_F32, 200, "deflate f32, int16 labels");
    quantized = 1;
    roundtrip(NNU_STORE_DEFLATE, NNU_DTYPE_F32, 3, "palette u8 f32");
    roundtrip(NNU_STORE_DEFLATE, NNU_DTYPE_F16, 3, "palette u8 f16");
    quantized = 2;
    roundtrip(NNU_STORE_DEFLATE, NNU_DTYPE_F32, 3, "palette u16 f32");
    quantized = 0;
}

/* non-contiguous input (a permuted view) is stored in its logical order */
static void test_strided_input(void) {
    char path[512];
    path_of(path, sizeof path, "strided.nnu");
    nnu_tensor *data = make_data(1, 6, 7, 8), *seg = make_seg(6, 7, 8, 2), *dv = NULL, *sv = NULL;
    int perm[4] = {0, 3, 2, 1};
    CHECK_OK(nnu_tensor_view_permute(data, perm, &dv));
    CHECK_OK(nnu_tensor_view_permute(seg, perm, &sv));
    nnu_store_write_opts o = nnu_store_write_opts_default();
    o.no_fsync = 1;
    CHECK_OK(nnu_store_write(path, dv, sv, NULL, &o));
    nnu_store *s = NULL;
    nnu_tensor *rd = NULL, *rs = NULL;
    CHECK_OK(nnu_store_open(path, NULL, 0, &s));
    CHECK_OK(nnu_store_read_all(s, &rd, &rs));
    int64_t bad = 0;
    for (int64_t z = 0; z < 8; z++)
        for (int64_t y = 0; y < 7; y++)
            for (int64_t x = 0; x < 6; x++) {
                int64_t i[4] = {0, z, y, x}, j[4] = {0, x, y, z};
                double a, b, c, d;
                nnu_tensor_get(rd, i, &a); nnu_tensor_get(data, j, &b);
                nnu_tensor_get(rs, i, &c); nnu_tensor_get(seg, j, &d);
                bad += (a != b) + (c != d);
            }
    CHECK(bad == 0, "permuted input: %lld mismatches", (long long)bad);
    nnu_tensor_release(rd); nnu_tensor_release(rs); nnu_tensor_release(dv); nnu_tensor_release(sv);
    nnu_tensor_release(data); nnu_tensor_release(seg);
    nnu_store_close(s);
}

static void test_class_locations(void) {
    char path[512];
    path_of(path, sizeof path, "locs.nnu");
    nnu_tensor *data = make_data(1, 4, 5, 6), *seg = make_seg(4, 5, 6, 2);
    int32_t v1[1] = {1}, v2[3] = {-1, 0, 1}, c1[6] = {0, 1, 2, 3, 4, 5};
    nnu_class_locs keys[3] = {{1, v1, 2, c1}, {3, v2, 0, NULL}, {1, v1, 1, c1 + 3}};
    nnu_class_locations cl = {3, keys}, got = {0, NULL};
    nnu_store_write_opts o = nnu_store_write_opts_default();
    o.no_fsync = 1;
    CHECK_OK(nnu_store_write(path, data, seg, &cl, &o));
    nnu_store *s = NULL;
    CHECK_OK(nnu_store_open(path, NULL, 0, &s));
    CHECK_OK(nnu_store_read_class_locations(s, &got));
    CHECK(got.n_keys == 3, "class location keys: %d", got.n_keys);
    for (int k = 0; k < got.n_keys && k < 3; k++) {
        CHECK(got.keys[k].n_values == keys[k].n_values && got.keys[k].n == keys[k].n, "key %d sizes", k);
        CHECK(memcmp(got.keys[k].values, keys[k].values, (size_t)keys[k].n_values * 4) == 0, "key %d values", k);
        CHECK(keys[k].n == 0 || memcmp(got.keys[k].coords, keys[k].coords, (size_t)keys[k].n * 12) == 0,
              "key %d coords", k);
    }
    nnu_class_locations_free(&got);
    CHECK(got.n_keys == 0 && got.keys == NULL, "free resets");
    nnu_store_close(s);
    nnu_tensor_release(data);
    nnu_tensor_release(seg);
}

static long file_size(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void copy_prefix(const char *src, const char *dst, long n, int flip_at) {
    FILE *f = fopen(src, "rb"), *g = fopen(dst, "wb");
    for (long i = 0; f && g && i < n; i++) {
        int ch = fgetc(f);
        if (ch == EOF) ch = 0;                 /* n beyond the end: append zeros */
        if (i == flip_at) ch ^= 0x01;
        fputc(ch, g);
    }
    if (f) fclose(f);
    if (g) fclose(g);
}

static void test_invalid_files(void) {
    char path[512], bad[512];
    path_of(path, sizeof path, "good.nnu");
    path_of(bad, sizeof bad, "bad.nnu");
    nnu_tensor *data = make_data(1, 8, 9, 10), *seg = make_seg(8, 9, 10, 2);
    nnu_store_write_opts o = nnu_store_write_opts_default();
    o.plans_id = "nnUNetPlans_2d";
    o.plans_hash = 77;
    CHECK_OK(nnu_store_write(path, data, seg, NULL, &o));    /* with fsync */
    char tmp[520];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0, "no .tmp left behind");
    CHECK(nnu_store_is_valid(path, "nnUNetPlans_2d", 77), "valid file: %s", nnu_last_error());
    CHECK(nnu_store_is_valid(path, "nnUNetPlans_2d", 0), "hash 0 = any hash");
    CHECK(!nnu_store_is_valid(path, "nnUNetPlans_3d_fullres", 77), "other identifier rejected");
    CHECK(strstr(nnu_last_error(), "plans identifier") != NULL, "message: %s", nnu_last_error());
    CHECK(!nnu_store_is_valid(path, "nnUNetPlans_2d", 78), "other hash rejected");
    long n = file_size(path);
    /* a leftover .tmp alone is not a case */
    copy_prefix(path, tmp, n / 2, -1);
    CHECK(!nnu_store_is_valid(bad, NULL, 0), "absent file is not valid");
    /* truncated at several places, and with bytes appended */
    long cuts[4] = {0, 100, n / 2, n - 1};
    for (int i = 0; i < 4; i++) {
        copy_prefix(path, bad, cuts[i], -1);
        CHECK(!nnu_store_is_valid(bad, NULL, 0), "truncated to %ld bytes of %ld is rejected", cuts[i], n);
    }
    copy_prefix(path, bad, n + 10, -1);
    CHECK(!nnu_store_is_valid(bad, NULL, 0), "appended bytes rejected");
    CHECK(strstr(nnu_last_error(), "truncated") != NULL, "message: %s", nnu_last_error());
    copy_prefix(path, bad, n, 40);            /* a shape byte */
    CHECK(!nnu_store_is_valid(bad, NULL, 0), "flipped header byte rejected");
    CHECK(strstr(nnu_last_error(), "checksum") != NULL, "message: %s", nnu_last_error());
    copy_prefix(path, bad, n, (int)(n - 20));  /* a data byte: opens, fails verify */
    nnu_store *s = NULL;
    CHECK_OK(nnu_store_open(bad, NULL, 0, &s));
    if (s) {
        CHECK(nnu_store_verify(s) != NNU_STATUS_OK, "corrupt chunk detected by verify");
        nnu_store_close(s);
    }
    unlink(tmp);
    nnu_tensor_release(data);
    nnu_tensor_release(seg);
}

static void test_default_chunk(void) {
    int64_t shape[3] = {36, 50, 35}, c[3];
    int64_t p3[3] = {40, 56, 40};
    nnu_store_default_chunk(shape, p3, 3, c);
    CHECK(c[0] == 16 && c[1] == 16 && c[2] == 16, "3d chunk (%lld,%lld,%lld)", (long long)c[0], (long long)c[1], (long long)c[2]);
    int64_t p2[2] = {56, 40};
    nnu_store_default_chunk(shape, p2, 2, c);
    CHECK(c[0] == 1 && c[1] == 50 && c[2] == 35, "2d chunk (%lld,%lld,%lld)", (long long)c[0], (long long)c[1], (long long)c[2]);
    int64_t big[3] = {20, 320, 256}, shape2[3] = {100, 400, 400};
    nnu_store_default_chunk(shape2, big, 3, c);
    CHECK(c[0] == 8 && c[1] == 32 && c[2] == 32, "aniso chunk (%lld,%lld,%lld)", (long long)c[0], (long long)c[1], (long long)c[2]);
    int64_t tiny[3] = {3, 2, 1};
    nnu_store_default_chunk(tiny, NULL, 0, c);
    CHECK(c[0] == 3 && c[1] == 2 && c[2] == 1, "clamped to the shape");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nnu_test_store_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_roundtrips();
    test_strided_input();
    test_class_locations();
    test_invalid_files();
    test_default_chunk();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
