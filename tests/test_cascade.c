/* test_cascade.c: core/nnu_cascade (one-hot stacking, the cascade augmentations'
 * ball morphology and component removal) on hand-countable cases.
 * Ball of radius r = offsets d with |d|² <= r²: r 1 -> 7 voxels (centre + 6 faces),
 * r 1.5 -> 19 (+ 12 edges, |d|² = 2), r 1.8 -> 27 (+ 8 corners, |d|² = 3); in a
 * (1, H, W) patch the disk: r 1 -> 5, r 1.5 -> 9. */
#include <string.h>

#include "check.h"
#include "nnu_cascade.h"

static int64_t count(const uint8_t *m, int64_t n) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += m[i] != 0;
    return c;
}

static void box(uint8_t *m, const int64_t sh[3], int64_t lo, int64_t hi) {   /* [lo, hi) on every axis */
    memset(m, 0, (size_t)(sh[0] * sh[1] * sh[2]));
    for (int64_t z = lo; z < hi; z++)
        for (int64_t y = lo; y < hi; y++)
            for (int64_t x = lo; x < hi; x++) m[(z * sh[1] + y) * sh[2] + x] = 1;
}

static void test_morph(void) {
    nnu_aug_ws ws = {0};
    int64_t sh[3] = {7, 7, 7}, n = 343;
    uint8_t a[343], out[343];
    box(a, sh, 3, 4);   /* one voxel at the centre */
    const double radii[3] = {1.0, 1.5, 1.8};
    const int64_t want[3] = {7, 19, 27};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(nnu_cascade_morph(a, out, sh, 0, radii[i], &ws));
        CHECK(count(out, n) == want[i], "dilation r %g: %lld voxels, want %lld", radii[i], (long long)count(out, n),
              (long long)want[i]);
    }
    /* erosion of a 3^3 block inside the patch: only the centre survives (r 1) */
    box(a, sh, 2, 5);
    CHECK_OK(nnu_cascade_morph(a, out, sh, 1, 1.0, &ws));
    CHECK(count(out, n) == 1 && out[(3 * 7 + 3) * 7 + 3], "erosion of 3^3: %lld", (long long)count(out, n));
    /* opening of the 3^3 block, r 1: erosion (1 voxel) then dilation -> 7 */
    CHECK_OK(nnu_cascade_morph(a, out, sh, 3, 1.0, &ws));
    CHECK(count(out, n) == 7, "opening: %lld", (long long)count(out, n));
    /* closing of the 3^3 block, r 1: dilation (27 + 6*9 = 81) then erosion -> back to 27 */
    CHECK_OK(nnu_cascade_morph(a, out, sh, 2, 1.0, &ws));
    CHECK(count(out, n) == 27, "closing: %lld", (long long)count(out, n));
    /* the outside is background: eroding a full patch peels its border (5^3 -> 3^3) */
    int64_t s5[3] = {5, 5, 5};
    uint8_t f[125], o5[125];
    memset(f, 1, sizeof f);
    CHECK_OK(nnu_cascade_morph(f, o5, s5, 1, 1.0, &ws));
    CHECK(count(o5, 125) == 27, "full patch eroded to %lld", (long long)count(o5, 125));
    /* a 2-D patch (1, 7, 7): disk, no erosion along the size-1 axis */
    int64_t s2[3] = {1, 7, 7};
    uint8_t p2[49], q2[49];
    memset(p2, 0, sizeof p2);
    p2[3 * 7 + 3] = 1;
    CHECK_OK(nnu_cascade_morph(p2, q2, s2, 0, 1.0, &ws));
    CHECK(count(q2, 49) == 5, "disk r 1: %lld", (long long)count(q2, 49));
    CHECK_OK(nnu_cascade_morph(p2, q2, s2, 0, 1.5, &ws));
    CHECK(count(q2, 49) == 9, "disk r 1.5: %lld", (long long)count(q2, 49));
    memset(p2, 1, sizeof p2);
    CHECK_OK(nnu_cascade_morph(p2, q2, s2, 1, 1.0, &ws));
    CHECK(count(q2, 49) == 25, "2-D full patch eroded to %lld (5x5)", (long long)count(q2, 49));
    CHECK_FAILS(nnu_cascade_morph(a, out, sh, 4, 1.0, &ws), NNU_STATUS_ERR_ARG, "op 4");
    nnu_aug_ws_free(&ws);
}

static void test_augment(void) {
    nnu_aug_ws ws = {0};
    int64_t sh[3] = {10, 10, 10}, n = 1000;
    static float oh[2000];
    nnu_cascade_aug_params p;
    nnu_cascade_aug_params_default(&p);
    CHECK(p.p_binary_op == 0.4 && p.strel_lo == 1.0 && p.strel_hi == 8.0 && p.p_remove_component == 0.2 &&
              p.max_component_fraction == 0.15, "defaults");
    /* binary operators on two touching blobs: the channels stay one-hot (sum <= 1) */
    p.p_binary_op = 1.0;
    p.p_binary_per_label = 1.0;
    p.p_remove_component = 0.0;
    int bad = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        memset(oh, 0, sizeof oh);
        for (int64_t i = 0; i < n; i++) {
            int64_t z = i / 100, y = (i / 10) % 10, x = i % 10;
            if (z >= 2 && z < 6 && y >= 2 && y < 8 && x >= 2 && x < 5) oh[i] = 1.0f;            /* label 1 */
            if (z >= 3 && z < 7 && y >= 3 && y < 7 && x >= 5 && x < 8) oh[n + i] = 1.0f;        /* label 2 */
        }
        nnu_rng r;
        nnu_rng_seed(&r, seed, 0);
        CHECK_OK(nnu_cascade_augment(oh, 2, sh, &p, &r, &ws));
        for (int64_t i = 0; i < n; i++) {
            float a = oh[i], b = oh[n + i];
            if (!((a == 0.0f || a == 1.0f) && (b == 0.0f || b == 1.0f) && a + b <= 1.0f)) bad++;
        }
    }
    CHECK(bad == 0, "one-hot property broken at %d voxels", bad);
    /* component removal: blobs of 1 and 8 voxels (< 15 % of 1000) and one of 216 (>= 150):
     * exactly one small blob goes, the large one stays */
    p.p_binary_op = 0.0;
    p.p_remove_component = 1.0;
    p.p_remove_per_label = 1.0;
    int seen1 = 0, seen8 = 0;
    for (uint64_t seed = 1; seed <= 16; seed++) {
        memset(oh, 0, sizeof oh);
        oh[0] = 1.0f;                                                   /* size 1 at (0,0,0) */
        for (int64_t z = 0; z < 2; z++) for (int64_t y = 0; y < 2; y++) for (int64_t x = 0; x < 2; x++)
            oh[(z * 10 + y + 8) * 10 + x + 8 - 0] = 1.0f;            /* size 8 at (0..1, 8..9, 8..9) */
        for (int64_t z = 4; z < 10; z++) for (int64_t y = 0; y < 6; y++) for (int64_t x = 2; x < 8; x++)
            oh[(z * 10 + y) * 10 + x] = 1.0f;                           /* size 216 */
        nnu_rng r;
        nnu_rng_seed(&r, seed, 0);
        CHECK_OK(nnu_cascade_augment(oh, 1, sh, &p, &r, &ws));
        float s = 0;
        for (int64_t i = 0; i < n; i++) s += oh[i];
        int small1 = oh[0] == 1.0f, small8 = oh[(0 * 10 + 8) * 10 + 8] == 1.0f;
        CHECK(oh[(5 * 10 + 3) * 10 + 4] == 1.0f, "large component kept (seed %llu)", (unsigned long long)seed);
        CHECK((s == 224.0f && !small1 && small8) || (s == 217.0f && small1 && !small8), "seed %llu: %g voxels left",
              (unsigned long long)seed, (double)s);
        seen1 += !small1;
        seen8 += !small8;
    }
    CHECK(seen1 > 0 && seen8 > 0, "both small components get chosen (%d, %d)", seen1, seen8);
    nnu_aug_ws_free(&ws);
}

static void test_stack(void) {
    int64_t ds[4] = {1, 1, 1, 4}, ss[4] = {1, 1, 1, 4};
    nnu_tensor *d = NULL, *s = NULL, *o = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_F32, 4, ds, &d));
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_I16, 4, ss, &s));
    int16_t *sv = nnu_tensor_data(s);
    sv[0] = 3; sv[1] = -1; sv[2] = 1; sv[3] = 3;
    int32_t labels[2] = {3, 1};
    CHECK_OK(nnu_cascade_stack_onehot(d, s, 2, labels, &o));
    if (o) {
        const float *ov = nnu_tensor_data(o);
        const float want[12] = {0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0};
        CHECK(o->shape[0] == 3 && memcmp(ov, want, sizeof want) == 0, "stack: labels in the given order");
    }
    nnu_tensor_release(o);
    int64_t bad[4] = {1, 1, 2, 4};
    nnu_tensor *s2 = NULL;
    CHECK_OK(nnu_tensor_new(NNU_DTYPE_I16, 4, bad, &s2));
    CHECK_FAILS(nnu_cascade_stack_onehot(d, s2, 2, labels, &o), NNU_STATUS_ERR_SHAPE, "do not fit");
    nnu_tensor_release(s2);
    nnu_tensor_release(d);
    nnu_tensor_release(s);
}

int main(void) {
    test_stack();
    test_morph();
    test_augment();
    return check_report();
}
