/* test_crop.c: crop to nonzero against the reference's test vectors
 * (nnunet-behaviour.md Appendix L.2: values produced by running crop_to_nonzero),
 * plus uncrop round trips. Label volumes are compared with the appendix's string
 * notation: " ; " between axis-0 slices, "/" between rows, '-' = -1. */
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "nnu_crop.h"

static nnu_tensor *new4(nnu_dtype dt, int64_t c, int64_t d, int64_t h, int64_t w) {
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(dt, 4, (int64_t[]){c, d, h, w}, &t));
    return t;
}

static void set4(nnu_tensor *t, int64_t c, int64_t z, int64_t y, int64_t x, double v) {
    CHECK_OK(nnu_tensor_set(t, (int64_t[]){c, z, y, x}, v));
}

/* label t (1,d,h,w) as the appendix's string */
static void label_str(const nnu_tensor *t, char *buf, size_t len) {
    size_t k = 0;
    for (int64_t z = 0; z < t->shape[1]; z++) {
        if (z) { memcpy(buf + k, " ; ", 3); k += 3; }
        for (int64_t y = 0; y < t->shape[2]; y++) {
            if (y) buf[k++] = '/';
            for (int64_t x = 0; x < t->shape[3] && k + 4 < len; x++) {
                double v;
                nnu_tensor_get(t, (int64_t[]){0, z, y, x}, &v);
                buf[k++] = v < 0 ? '-' : (char)('0' + (int)v);
            }
        }
    }
    buf[k] = 0;
}

static void check_bbox(int64_t bb[3][2], const int64_t want[3][2], const char *what) {
    int ok = 1;
    for (int a = 0; a < 3; a++) ok &= bb[a][0] == want[a][0] && bb[a][1] == want[a][1];
    CHECK(ok, "%s: bbox [[%lld,%lld],[%lld,%lld],[%lld,%lld]]", what, (long long)bb[0][0],
          (long long)bb[0][1], (long long)bb[1][0], (long long)bb[1][1], (long long)bb[2][0],
          (long long)bb[2][1]);
}

static void count_labels(const nnu_tensor *t, int64_t counts[4]) {   /* -1, 0, 1, 2 */
    memset(counts, 0, 4 * sizeof *counts);
    int64_t n = nnu_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = nnu_dtype_load(t->dtype, (char *)nnu_tensor_data(t) + i * (int64_t)nnu_dtype_size(t->dtype));
        counts[(int)v + 1]++;
    }
}

static void test_main_vector(void) {
    /* image (2,5,6,7): channel 0 = 1 on [1:4,1:5,1:6] minus the cavity [2,2:4,2:5]
     * and the corner (1,1,1); channel 1 = 2.5 at (4,0,6) */
    nnu_tensor *img = new4(NNU_DTYPE_F32, 2, 5, 6, 7), *lab = new4(NNU_DTYPE_F32, 1, 5, 6, 7);
    for (int z = 1; z < 4; z++)
        for (int y = 1; y < 5; y++)
            for (int x = 1; x < 6; x++) set4(img, 0, z, y, x, 1);
    for (int y = 2; y < 4; y++)
        for (int x = 2; x < 5; x++) set4(img, 0, 2, y, x, 0);
    set4(img, 0, 1, 1, 1, 0);
    set4(img, 1, 4, 0, 6, 2.5);
    set4(lab, 0, 2, 2, 2, 1); set4(lab, 0, 3, 3, 3, 1);
    set4(lab, 0, 0, 0, 0, 2); set4(lab, 0, 4, 4, 6, 2);

    nnu_tensor *m = NULL;
    CHECK_OK(nnu_crop_nonzero_mask(img, &m));
    double s;
    CHECK_OK(nnu_tensor_sum(m, &s));
    CHECK(s == 54, "raw nonzero voxels %g, want 54", s);
    CHECK_OK(nnu_crop_fill_holes(m));
    CHECK_OK(nnu_tensor_sum(m, &s));
    CHECK(s == 60, "after hole filling %g, want 60", s);
    nnu_tensor_release(m);

    nnu_tensor *ci = NULL, *cl = NULL;
    int64_t bb[3][2], before[3];
    CHECK_OK(nnu_crop_to_nonzero(img, lab, &ci, &cl, bb, before));
    check_bbox(bb, (const int64_t[3][2]){{1, 5}, {0, 5}, {1, 7}}, "L.2");
    CHECK(before[0] == 5 && before[1] == 6 && before[2] == 7, "shape before");
    CHECK(ci->shape[0] == 2 && ci->shape[1] == 4 && ci->shape[2] == 5 && ci->shape[3] == 6, "image shape");
    CHECK_OK(nnu_tensor_sum(ci, &s));
    CHECK(s == 55.5, "cropped image sum %g, want 55.5", s);
    CHECK(cl->dtype == NNU_DTYPE_F32, "label keeps float32");
    char buf[512];
    label_str(cl, buf, sizeof buf);
    const char *want = "------/-0000-/00000-/00000-/00000- ; ------/00000-/01000-/00000-/00000- ; "
                       "------/00000-/00000-/00100-/00000- ; -----0/------/------/------/-----2";
    CHECK(strcmp(buf, want) == 0, "cropped label\n got %s\nwant %s", buf, want);
    int64_t cnt[4];
    count_labels(cl, cnt);
    CHECK(cnt[0] == 59 && cnt[1] == 58 && cnt[2] == 2 && cnt[3] == 1, "counts %lld %lld %lld %lld",
          (long long)cnt[0], (long long)cnt[1], (long long)cnt[2], (long long)cnt[3]);

    /* uncrop puts the crop back where it came from */
    nnu_tensor *un = NULL;
    CHECK_OK(nnu_crop_uncrop(ci, bb, before, 0, &un));
    double d1, d2;
    CHECK_OK(nnu_tensor_sum(un, &d1));
    CHECK_OK(nnu_tensor_sum(img, &d2));
    int same = 1;
    for (int64_t i = 0; i < nnu_tensor_numel(img); i++)
        same &= ((float *)nnu_tensor_data(un))[i] == ((float *)nnu_tensor_data(img))[i];
    CHECK(same && d1 == d2, "uncrop restores the image");
    CHECK_FAILS(nnu_crop_uncrop(ci, (const int64_t[3][2]){{0, 4}, {0, 5}, {0, 5}}, before, 0, &un),
                NNU_STATUS_ERR_SHAPE, "does not fit");
    nnu_tensor_release(un);
    nnu_tensor_release(ci); nnu_tensor_release(cl);

    /* without a label: int8, 60 zeros and 60 -1 */
    CHECK_OK(nnu_crop_to_nonzero(img, NULL, &ci, &cl, bb, NULL));
    CHECK(cl->dtype == NNU_DTYPE_I8, "synthesised label is int8");
    check_bbox(bb, (const int64_t[3][2]){{1, 5}, {0, 5}, {1, 7}}, "no label");
    count_labels(cl, cnt);
    CHECK(cnt[0] == 60 && cnt[1] == 60, "synthesised counts %lld/%lld", (long long)cnt[0], (long long)cnt[1]);
    nnu_tensor_release(ci); nnu_tensor_release(cl);
    nnu_tensor_release(img); nnu_tensor_release(lab);
}

static void test_edge_cases(void) {
    nnu_tensor *ci = NULL, *cl = NULL, *m = NULL;
    int64_t bb[3][2], cnt[4];
    char buf[256];
    double s;
    /* all-zero image (1,3,4,5) */
    nnu_tensor *z = new4(NNU_DTYPE_F32, 1, 3, 4, 5);
    nnu_tensor *zl = new4(NNU_DTYPE_F32, 1, 3, 4, 5);
    CHECK_OK(nnu_crop_to_nonzero(z, zl, &ci, &cl, bb, NULL));
    check_bbox(bb, (const int64_t[3][2]){{0, 3}, {0, 4}, {0, 5}}, "all zero");
    count_labels(cl, cnt);
    CHECK(cnt[0] == 60, "all -1: %lld", (long long)cnt[0]);
    nnu_tensor_release(ci); nnu_tensor_release(cl); nnu_tensor_release(z); nnu_tensor_release(zl);

    /* 2-D ring as (1,1,5,5): the centre is not filled */
    nnu_tensor *r = new4(NNU_DTYPE_F32, 1, 1, 5, 5);
    for (int y = 1; y < 4; y++)
        for (int x = 1; x < 4; x++) set4(r, 0, 0, y, x, 1);
    set4(r, 0, 0, 2, 2, 0);
    CHECK_OK(nnu_crop_to_nonzero(r, NULL, &ci, &cl, bb, NULL));
    check_bbox(bb, (const int64_t[3][2]){{0, 1}, {1, 4}, {1, 4}}, "2-D ring");
    label_str(cl, buf, sizeof buf);
    CHECK(strcmp(buf, "000/0-0/000") == 0, "2-D ring label %s", buf);
    nnu_tensor_release(ci); nnu_tensor_release(cl); nnu_tensor_release(r);

    /* closed 3-D cavity (1,5,5,5): filled; with the corner (1,1,1) open still filled (26 voxels) */
    nnu_tensor *c = new4(NNU_DTYPE_F32, 1, 5, 5, 5);
    for (int zz = 1; zz < 4; zz++)
        for (int y = 1; y < 4; y++)
            for (int x = 1; x < 4; x++) set4(c, 0, zz, y, x, 1);
    set4(c, 0, 2, 2, 2, 0);
    CHECK_OK(nnu_crop_to_nonzero(c, NULL, &ci, &cl, bb, NULL));
    check_bbox(bb, (const int64_t[3][2]){{1, 4}, {1, 4}, {1, 4}}, "3-D cavity");
    count_labels(cl, cnt);
    CHECK(cnt[1] == 27 && cnt[0] == 0, "3-D cavity filled: %lld zeros", (long long)cnt[1]);
    nnu_tensor_release(ci); nnu_tensor_release(cl);
    set4(c, 0, 1, 1, 1, 0);
    CHECK_OK(nnu_crop_nonzero_mask(c, &m));
    CHECK_OK(nnu_crop_fill_holes(m));
    CHECK_OK(nnu_tensor_sum(m, &s));
    CHECK(s == 26, "corner notch: filled mask %g, want 26", s);
    nnu_tensor_release(m); nnu_tensor_release(c);

    /* a U-shaped channel open to the border through a winding path is not filled,
     * a larger closed shell with a big cavity is (scanline fill over several rows) */
    nnu_tensor *sh = new4(NNU_DTYPE_I16, 1, 9, 10, 11);
    for (int zz = 1; zz < 8; zz++)
        for (int y = 1; y < 9; y++)
            for (int x = 1; x < 10; x++)
                if (zz == 1 || zz == 7 || y == 1 || y == 8 || x == 1 || x == 9) set4(sh, 0, zz, y, x, 3);
    CHECK_OK(nnu_crop_nonzero_mask(sh, &m));
    CHECK_OK(nnu_crop_fill_holes(m));
    CHECK_OK(nnu_tensor_sum(m, &s));
    CHECK(s == 7 * 8 * 9, "closed shell filled: %g", s);
    nnu_tensor_release(m);
    set4(sh, 0, 4, 1, 5, 0);            /* a hole in the wall: the inside is open background */
    CHECK_OK(nnu_crop_nonzero_mask(sh, &m));
    CHECK_OK(nnu_crop_fill_holes(m));
    CHECK_OK(nnu_tensor_sum(m, &s));
    CHECK(s == 7 * 8 * 9 - 5 * 6 * 7 - 1, "opened shell not filled: %g", s);
    nnu_tensor_release(m); nnu_tensor_release(sh);

    /* errors */
    nnu_tensor *u8l = new4(NNU_DTYPE_U8, 1, 3, 4, 5), *im = new4(NNU_DTYPE_F32, 1, 3, 4, 5);
    CHECK_FAILS(nnu_crop_to_nonzero(im, u8l, &ci, &cl, bb, NULL), NNU_STATUS_ERR_ARG, "cannot hold -1");
    nnu_tensor *bad = new4(NNU_DTYPE_F32, 1, 3, 4, 6);
    CHECK_FAILS(nnu_crop_to_nonzero(im, bad, &ci, &cl, bb, NULL), NNU_STATUS_ERR_SHAPE, "does not fit");
    nnu_tensor_release(u8l); nnu_tensor_release(im); nnu_tensor_release(bad);
}

/* random masks with many cavities against scipy binary_fill_holes
 * (tests/fixtures/crop/fill_holes.bin from tests/gen/gen_resample_ref.py) */
static void test_scipy_masks(void) {
    fixture fx;
    if (!fixture_load("tests/fixtures/crop/fill_holes.bin", "/usr/bin/python3 tests/gen/gen_resample_ref.py", &fx)) {
        CHECK(0, "fixture missing");
        return;
    }
    for (int i = 0; i < 4; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "m%d", i);
        nnu_tensor *m = fixture_get(&fx, nm), *u8 = NULL;
        snprintf(nm, sizeof nm, "f%d", i);
        nnu_tensor *f = fixture_get(&fx, nm);
        if (!m || !f) { CHECK(0, "arrays %d", i); continue; }
        CHECK_OK(nnu_tensor_to_dtype(m, NNU_DTYPE_U8, &u8));
        CHECK_OK(nnu_crop_fill_holes(u8));
        int64_t n = nnu_tensor_numel(f), bad = 0, filled = 0;
        for (int64_t k = 0; k < n; k++) {
            bad += ((uint8_t *)nnu_tensor_data(u8))[k] != (uint8_t)((float *)nnu_tensor_data(f))[k];
            filled += ((float *)nnu_tensor_data(f))[k] != ((float *)nnu_tensor_data(m))[k];
        }
        CHECK(bad == 0, "mask %d: %lld voxels differ from scipy (%lld holes filled there)", i, (long long)bad,
              (long long)filled);
        nnu_tensor_release(u8);
    }
    fixture_free(&fx);
}

int main(void) {
    test_scipy_masks();
    test_main_vector();
    test_edge_cases();
    return check_report();
}
