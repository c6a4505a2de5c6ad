/* test_npz.c: the .npz writer against files written by numpy.savez_compressed
 * (tests/fixtures/npz, from tests/gen/gen_npz_ref.py): byte-for-byte equality of
 * whole archives (zip headers, zip64 extras, .npy headers, deflate stream), the
 * reader on numpy's files, .npy header formatting for 0-d/1-d shapes, a round trip
 * of a poorly compressible array larger than the writer's 1 MB output chunk, a
 * strided input, and the failure paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "testfiles.h"
#include "nnu_npz.h"

#define REGEN "/usr/bin/python3 tests/gen/gen_npz_ref.py"

static void same_file(const char *got, const char *want) {
    long ng = 0, nw = 0;
    unsigned char *g = slurp(got, &ng), *w = slurp(want, &nw);
    if (!w) fprintf(stderr, "missing fixture %s\nHINT: regenerate with: %s\n", want, REGEN);
    CHECK(g && w, "read %s and %s", got, want);
    if (g && w) {
        long first = -1;
        for (long i = 0; i < (ng < nw ? ng : nw); i++)
            if (g[i] != w[i]) { first = i; break; }
        CHECK(ng == nw && first < 0, "%s: %ld bytes vs numpy's %ld, first difference at byte %ld", got, ng, nw, first);
    }
    free(g);
    free(w);
}

static nnu_tensor *probs_tensor(void) {
    nnu_tensor *t = NULL;
    if (nnu_tensor_new(NNU_DTYPE_F32, 4, (int64_t[]){3, 4, 5, 6}, &t)) return NULL;
    float *d = nnu_tensor_data(t);
    int i = 0;
    for (int c = 0; c < 3; c++)
        for (int z = 0; z < 4; z++)
            for (int y = 0; y < 5; y++)
                for (int x = 0; x < 6; x++) d[i++] = (float)(((7 * c + 5 * z + 3 * y + x) % 13) / 13.0);
    return t;
}

static void multi_tensors(nnu_tensor **a, nnu_tensor **b, nnu_tensor **s, nnu_tensor **seg) {
    nnu_tensor_new(NNU_DTYPE_F16, 1, (int64_t[]){7}, a);
    for (int i = 0; i < 7; i++) nnu_dtype_store(NNU_DTYPE_F16, (uint16_t *)nnu_tensor_data(*a) + i, i / 4.0 - 1);
    nnu_tensor_new(NNU_DTYPE_U8, 2, (int64_t[]){2, 3}, b);
    for (int i = 0; i < 6; i++) ((uint8_t *)nnu_tensor_data(*b))[i] = (uint8_t)(10 * (i / 3) + i % 3);
    nnu_tensor_new(NNU_DTYPE_I64, 0, NULL, s);
    *(int64_t *)nnu_tensor_data(*s) = -5;
    nnu_tensor_new(NNU_DTYPE_I16, 3, (int64_t[]){2, 2, 2}, seg);
    for (int i = 0; i < 8; i++) ((int16_t *)nnu_tensor_data(*seg))[i] = (int16_t)(i - 3);
}

static int same_values(const nnu_tensor *a, const nnu_tensor *b) {
    if (!a || !b || a->dtype != b->dtype || !nnu_tensor_same_shape(a, b)) return 0;
    return memcmp(nnu_tensor_data(a), nnu_tensor_data(b), (size_t)nnu_tensor_numel(a) * nnu_dtype_size(a->dtype)) == 0;
}

static void test_npy_header(void) {
    char buf[256];
    nnu_tensor *t = probs_tensor(), *a, *b, *s, *seg;
    int n = nnu_npy_header(t, buf, sizeof buf);
    static const char want[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 5, 6), }";
    CHECK(n == 128 && memcmp(buf, "\x93NUMPY\x01\x00\x76\x00", 10) == 0 && memcmp(buf + 10, want, sizeof want - 1) == 0 &&
              buf[127] == '\n',
          "npy header of (3,4,5,6) f32 (%d bytes)", n);
    multi_tensors(&a, &b, &s, &seg);
    n = nnu_npy_header(a, buf, sizeof buf);
    CHECK(n == 128 && strstr(buf + 10, "'shape': (7,), }"), "1-d shape written as (7,)");
    n = nnu_npy_header(s, buf, sizeof buf);
    CHECK(n == 128 && strstr(buf + 10, "'descr': '<i8', 'fortran_order': False, 'shape': (), }"), "0-d shape ()");
    n = nnu_npy_header(b, buf, sizeof buf);
    CHECK(n > 0 && strstr(buf + 10, "'descr': '|u1'"), "u8 descr |u1");
    nnu_tensor_release(t); nnu_tensor_release(a); nnu_tensor_release(b); nnu_tensor_release(s); nnu_tensor_release(seg);
}

static void test_against_numpy(const char *dir) {
    char path[512];
    nnu_tensor *t = probs_tensor(), *a, *b, *s, *seg, *back = NULL;
    snprintf(path, sizeof path, "%s/probs.npz", dir);
    const char *key = "probabilities";
    CHECK_OK(nnu_npz_save(path, 1, &key, (const nnu_tensor *const *)&t));
    same_file(path, "tests/fixtures/npz/probs.npz");
    CHECK_OK(nnu_npz_load("tests/fixtures/npz/probs.npz", "probabilities", &back));
    CHECK(same_values(back, t), "numpy's probs.npz reads back the same values");
    nnu_tensor_release(back);

    multi_tensors(&a, &b, &s, &seg);
    const char *keys[4] = {"a", "b", "s", "seg"};
    const nnu_tensor *arr[4] = {a, b, s, seg};
    snprintf(path, sizeof path, "%s/multi.npz", dir);
    CHECK_OK(nnu_npz_save(path, 4, keys, arr));
    same_file(path, "tests/fixtures/npz/multi.npz");
    for (int i = 0; i < 4; i++) {
        back = NULL;
        CHECK_OK(nnu_npz_load("tests/fixtures/npz/multi.npz", keys[i], &back));
        CHECK(same_values(back, arr[i]), "numpy's multi.npz member '%s'", keys[i]);
        nnu_tensor_release(back);
    }
    CHECK_FAILS(nnu_npz_load("tests/fixtures/npz/multi.npz", "nope", &back), NNU_STATUS_ERR_ARG, "no member 'nope.npy'");
    CHECK_FAILS(nnu_npz_load("tests/fixtures/npz/absent.npz", "a", &back), NNU_STATUS_ERR_IO, "cannot open");
    CHECK_FAILS(nnu_npz_load("tests/check.h", "a", &back), NNU_STATUS_ERR_FORMAT, "not a zip file");
    nnu_tensor_release(t); nnu_tensor_release(a); nnu_tensor_release(b); nnu_tensor_release(s); nnu_tensor_release(seg);
}

static void test_large_and_strided(const char *dir) {
    /* 3·2^18 f32 values from an LCG (3 MB, barely compressible): several 1 MB output chunks */
    int64_t n = 3 << 18;
    nnu_tensor *t = NULL, *back = NULL, *v = NULL, *c = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 2, (int64_t[]){n / 512, 512}, &t));
    uint32_t s = 2024;
    float *d = nnu_tensor_data(t);
    for (int64_t i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; d[i] = (float)(s >> 8) / 16777216.0f; }
    char path[512];
    snprintf(path, sizeof path, "%s/large.npz", dir);
    const char *key = "probabilities";
    CHECK_OK(nnu_npz_save(path, 1, &key, (const nnu_tensor *const *)&t));
    CHECK_OK(nnu_npz_load(path, "probabilities", &back));
    CHECK(same_values(back, t), "large array round trip");
    nnu_tensor_release(back);

    /* a strided view is written in C order */
    CHECK_OK(nnu_tensor_view_permute(t, (int[]){1, 0}, &v));
    CHECK_OK(nnu_tensor_contiguous(v, &c));
    snprintf(path, sizeof path, "%s/strided.npz", dir);
    CHECK_OK(nnu_npz_save(path, 1, &key, (const nnu_tensor *const *)&v));
    back = NULL;
    CHECK_OK(nnu_npz_load(path, "probabilities", &back));
    CHECK(same_values(back, c) && back->shape[0] == 512, "strided input written in C order");
    nnu_tensor_release(back); nnu_tensor_release(v); nnu_tensor_release(c); nnu_tensor_release(t);

    nnu_npz_writer *w = NULL;
    CHECK_FAILS(nnu_npz_create("/nonexistent-dir/x.npz", -1, &w), NNU_STATUS_ERR_IO, "cannot create");
}

int main(void) {
    char dir[] = "/tmp/nnu_npz_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_npy_header();
    test_against_numpy(dir);
    test_large_and_strided(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
