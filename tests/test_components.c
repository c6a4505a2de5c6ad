/* test_components.c: keep-largest-component postprocessing against every row of
 * nnunet-behaviour.md L.6 (tier 1, exact): corner-touching groups join under full
 * connectivity, ties keep all largest components, a label set and a region act as
 * one mask, the 2-D case gets 8-connectivity; plus component sizes, strided and
 * float inputs, and a larger random volume checked against a brute-force flood fill. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_components.h"

static const char *L6_INPUT =
    "110000/110000/000002/000002/000000/100000 ; 000000/000000/001100/001000/000001/000011 ; "
    "002200/000000/000000/000000/000011/000011";

static nnu_tensor *parse_map(const char *s, int nd, const int64_t *shape, nnu_dtype dt) {
    nnu_tensor *t = NULL;
    if (nnu_tensor_new(dt, nd, shape, &t)) return NULL;
    int64_t i = 0, n = nnu_tensor_numel(t);
    for (; *s; s++)
        if (*s >= '0' && *s <= '9' && i < n)
            nnu_dtype_store(dt, (char *)nnu_tensor_data(t) + i++ * (int64_t)nnu_dtype_size(dt), *s - '0');
    CHECK(i == n, "parse_map: %lld values for %lld voxels", (long long)i, (long long)n);
    return t;
}

static int same_map(const nnu_tensor *t, const char *want, const char *what) {
    int64_t n = nnu_tensor_numel(t), i = 0, bad = 0;
    nnu_tensor *c = NULL;
    if (nnu_tensor_contiguous((nnu_tensor *)t, &c)) return 0;
    for (const char *s = want; *s; s++)
        if (*s >= '0' && *s <= '9') {
            double v = nnu_dtype_load(c->dtype, (char *)nnu_tensor_data(c) + i * (int64_t)nnu_dtype_size(c->dtype));
            if (i >= n || v != *s - '0') bad++;
            i++;
        }
    nnu_tensor_release(c);
    CHECK(bad == 0 && i == n, "%s: %lld voxels differ from the reference", what, (long long)bad);
    return bad == 0;
}

static void test_l6(void) {
    const int64_t shape[3] = {3, 6, 6};
    static const struct { int n; int64_t labels[2]; const char *want; int64_t removed; } rows[] = {
        {1, {1}, "110000/110000/000002/000002/000000/000000 ; 000000/000000/001100/001000/000001/000011 ; "
                 "002200/000000/000000/000000/000011/000011", 1},
        {1, {2}, "110000/110000/000002/000002/000000/100000 ; 000000/000000/001100/001000/000001/000011 ; "
                 "002200/000000/000000/000000/000011/000011", 0},
        /* [1, 2] as a list and (1, 2) as a region: the same mask, the same result */
        {2, {1, 2}, "000000/000000/000002/000002/000000/000000 ; 000000/000000/000000/000000/000001/000011 ; "
                    "000000/000000/000000/000000/000011/000011", 10},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        nnu_tensor *t = parse_map(L6_INPUT, 3, shape, NNU_DTYPE_U8);
        int64_t removed = -1;
        CHECK_OK(nnu_components_keep_largest(t, rows[r].labels, rows[r].n, 0, &removed));
        char what[64];
        snprintf(what, sizeof what, "L.6 row %zu", r);
        same_map(t, rows[r].want, what);
        CHECK(removed == rows[r].removed, "%s: %lld voxels removed, want %lld", what, (long long)removed,
              (long long)rows[r].removed);
        CHECK(t->dtype == NNU_DTYPE_U8, "dtype kept");
        nnu_tensor_release(t);
    }

    /* component sizes: label 1 -> 7, 7, 1 (A∪B, C, D); labels {1,2} -> 9, 7, 2, 1 */
    nnu_tensor *t = parse_map(L6_INPUT, 3, shape, NNU_DTYPE_U8);
    int64_t sizes[8], n = 0;
    CHECK_OK(nnu_components_sizes(t, (int64_t[]){1}, 1, sizes, 8, &n));
    CHECK(n == 3 && sizes[0] == 7 && sizes[1] == 7 && sizes[2] == 1, "label 1 sizes: %lld comps", (long long)n);
    CHECK_OK(nnu_components_sizes(t, (int64_t[]){1, 2}, 2, sizes, 8, &n));
    CHECK(n == 4 && sizes[0] == 9 && sizes[1] == 7 && sizes[2] == 2 && sizes[3] == 1, "labels {1,2} sizes");
    CHECK_OK(nnu_components_sizes(t, (int64_t[]){3}, 1, sizes, 8, &n));
    CHECK(n == 0, "absent label: no components");
    /* an empty mask changes nothing */
    int64_t removed = -1;
    CHECK_OK(nnu_components_keep_largest(t, (int64_t[]){3}, 1, 0, &removed));
    CHECK(removed == 0, "empty mask");
    same_map(t, L6_INPUT, "empty mask leaves the map");
    nnu_tensor_release(t);

    /* the same volume as a 4-D (1, 3, 6, 6) float32 map viewed through a permutation
     * of the last two axes (the transposed volume has the same components) */
    nnu_tensor *t4 = parse_map(L6_INPUT, 4, (int64_t[]){1, 3, 6, 6}, NNU_DTYPE_F32), *v = NULL;
    CHECK_OK(nnu_tensor_view_permute(t4, (int[]){0, 1, 3, 2}, &v));
    CHECK_OK(nnu_components_keep_largest(v, (int64_t[]){1}, 1, 0, &removed));
    CHECK(removed == 1, "strided: D removed (%lld)", (long long)removed);
    same_map(t4, rows[0].want, "strided float input");
    nnu_tensor_release(v);
    nnu_tensor_release(t4);

    /* 2-D: 101/010/101 stored as (1, 3, 3) is one 8-connected component */
    nnu_tensor *t2 = parse_map("101/010/101", 3, (int64_t[]){1, 3, 3}, NNU_DTYPE_I16);
    CHECK_OK(nnu_components_keep_largest(t2, (int64_t[]){1}, 1, 0, &removed));
    CHECK(removed == 0, "2-D: unchanged");
    same_map(t2, "101/010/101", "2-D case");
    nnu_tensor_release(t2);
    nnu_tensor *t2d = parse_map("101/010/101", 2, (int64_t[]){3, 3}, NNU_DTYPE_U8);
    CHECK_OK(nnu_components_sizes(t2d, (int64_t[]){1}, 1, sizes, 8, &n));
    CHECK(n == 1 && sizes[0] == 5, "2-D (H, W) map: one component of 5");
    nnu_tensor_release(t2d);

    nnu_tensor *bad = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_U8, 4, (int64_t[]){2, 2, 2, 2}, &bad));
    CHECK_FAILS(nnu_components_keep_largest(bad, (int64_t[]){1}, 1, 0, NULL), NNU_STATUS_ERR_SHAPE, "size 1");
    nnu_tensor_release(bad);
}

/* brute-force 26-connected flood fill on a random volume as an oracle */
static void test_random(void) {
    enum { D = 9, H = 11, W = 13, N = D * H * W };
    uint8_t vol[N];
    uint32_t s = 12345;                                 /* fixed seed (LCG) */
    for (int i = 0; i < N; i++) { s = s * 1103515245u + 12345u; vol[i] = (s >> 16) % 4 == 0; }
    int comp[N], stack[N], nc = 0, sizes[N];
    memset(comp, -1, sizeof comp);
    for (int i = 0; i < N; i++) {
        if (!vol[i] || comp[i] >= 0) continue;
        int sp = 0, sz = 0;
        stack[sp++] = i;
        comp[i] = nc;
        while (sp) {
            int j = stack[--sp], z = j / (H * W), y = (j / W) % H, x = j % W;
            sz++;
            for (int dz = -1; dz <= 1; dz++)
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int zz = z + dz, yy = y + dy, xx = x + dx;
                        if (zz < 0 || zz >= D || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                        int k = (zz * H + yy) * W + xx;
                        if (vol[k] && comp[k] < 0) { comp[k] = nc; stack[sp++] = k; }
                    }
        }
        sizes[nc++] = sz;
    }
    int maxs = 0;
    for (int c = 0; c < nc; c++) if (sizes[c] > maxs) maxs = sizes[c];
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_U8, 3, (int64_t[]){D, H, W}, &t));
    memcpy(nnu_tensor_data(t), vol, N);
    int64_t got[N], n = 0;
    CHECK_OK(nnu_components_sizes(t, (int64_t[]){1}, 1, got, N, &n));
    CHECK(n == nc && got[0] == maxs, "random: %lld components (flood fill %d), largest %lld (%d)", (long long)n, nc,
          (long long)got[0], maxs);
    int64_t removed = 0;
    CHECK_OK(nnu_components_keep_largest(t, (int64_t[]){1}, 1, 0, &removed));
    const uint8_t *d = nnu_tensor_data(t);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += d[i] != (vol[i] && sizes[comp[i]] == maxs);
    CHECK(bad == 0, "random: %d voxels differ from the flood fill", bad);
    nnu_tensor_release(t);
}

int main(void) {
    test_l6();
    test_random();
    return check_report();
}
