/* test_preproc_case.c: the per-case pipeline (core/nnu_preproc_case.h).
 * - numpy's RandomState(1234).permutation and the reference's class-location
 *   sampling, against tests/fixtures/preprocess/class_locations.txt
 *   (generator: tests/gen/gen_class_locations.py; same label formula here);
 * - run + revert on a synthetic case with a transpose and unchanged spacing
 *   restores the label map exactly (hand-checkable: crop box and shapes);
 * - a 2d configuration keeps the slice axis, an anisotropic one changes the shape
 *   by round(spacing / target * shape). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_preproc_case.h"

#define D 24
#define H 30
#define W 32

static nnu_tensor *formula_seg(void) {
    int64_t shape[4] = {1, D, H, W};
    nnu_tensor *t = NULL;
    nnu_tensor_new(NNU_DTYPE_I16, 4, shape, &t);
    int16_t *p = nnu_tensor_data(t);
    for (int z = 0; z < D; z++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int v = ((7 * z + 13 * y + 29 * x + (z * y * x) % 11) % 5) - 1;
                if (z >= 10 && z < 22 && v != -1) v = 1;
                p[(z * H + y) * W + x] = (int16_t)v;
            }
    return t;
}

static void test_class_locations(void) {
    FILE *f = fopen("tests/fixtures/preprocess/class_locations.txt", "r");
    CHECK(f != NULL, "fixture missing: run /usr/bin/python3 tests/gen/gen_class_locations.py");
    if (!f) return;
    int offsets[6] = {0, 1, 2, 3, 5, 10};
    int32_t values[10] = {1, 2, 3, 1, 2, -1, 0, 1, 2, 3};
    nnu_preproc_config cfg = nnu_preproc_config_default();
    cfg.n_keys = 5;
    cfg.key_offsets = offsets;
    cfg.key_values = values;
    nnu_tensor *seg = formula_seg();
    nnu_class_locations cl = {0, NULL};
    CHECK_OK(nnu_preproc_class_locations(&cfg, seg, &cl));
    char line[4096];
    int k = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (strncmp(line, "perm ", 5) == 0) {
            char *p = line + 5;
            long n = strtol(p, &p, 10);
            int64_t *perm = malloc((size_t)n * sizeof *perm);
            nnu_nprandom r;
            nnu_nprandom_seed(&r, 1234);
            nnu_nprandom_permutation(&r, n, perm);
            int bad = 0;
            for (long i = 0; i < n && i < 50; i++) bad += perm[i] != strtol(p, &p, 10);
            CHECK(bad == 0, "permutation(%ld): %d of the first values differ from numpy", n, bad);
            free(perm);
            continue;
        }
        if (k >= cl.n_keys) break;
        char *p = strchr(line, ' ');
        long long n = strtoll(p, &p, 10), kept = strtoll(p, &p, 10), sum = strtoll(p, &p, 10);
        const nnu_class_locs *l = &cl.keys[k];
        long long got_sum = 0;
        for (int64_t j = 0; j < l->n; j++) {
            long long flat = ((long long)l->coords[3 * j] * H + l->coords[3 * j + 1]) * W + l->coords[3 * j + 2];
            got_sum += (j + 1) * flat;
        }
        CHECK(l->n == kept && got_sum == sum, "key %d (n = %lld): kept %lld (want %lld), checksum %lld (want %lld)",
              k, n, (long long)l->n, kept, got_sum, sum);
        for (int j = 0; j < 8 && j < l->n; j++) {
            long long want = strtoll(p, &p, 10);
            long long flat = ((long long)l->coords[3 * j] * H + l->coords[3 * j + 1]) * W + l->coords[3 * j + 2];
            CHECK(flat == want, "key %d location %d: %lld, want %lld", k, j, flat, want);
        }
        k++;
    }
    CHECK(k == 5, "fixture has %d keys", k);
    fclose(f);
    nnu_class_locations_free(&cl);
    nnu_tensor_release(seg);
}

/* image (1, 6, 9, 10): nonzero box z 1..4, y 2..7, x 3..8 ; label inside */
static void make_case(nnu_tensor **img, nnu_tensor **lab) {
    int64_t s[4] = {1, 6, 9, 10};
    nnu_tensor_new(NNU_DTYPE_F32, 4, s, img);
    nnu_tensor_new(NNU_DTYPE_I16, 4, s, lab);
    float *ip = nnu_tensor_data(*img);
    int16_t *lp = nnu_tensor_data(*lab);
    for (int z = 1; z < 5; z++)
        for (int y = 2; y < 8; y++)
            for (int x = 3; x < 9; x++) {
                ip[(z * 9 + y) * 10 + x] = (float)(1 + z + 2 * y + 3 * x);
                lp[(z * 9 + y) * 10 + x] = (int16_t)((x + y + z) % 3);
            }
}

static void test_run_and_revert(void) {
    nnu_tensor *img = NULL, *lab = NULL, *data = NULL, *seg = NULL, *back = NULL;
    make_case(&img, &lab);
    nnu_tensor *orig = NULL;
    CHECK_OK(nnu_tensor_clone(lab, &orig));
    nnu_norm_scheme sch[1] = {NNU_NORM_ZSCORE};
    int mask[1] = {1};
    nnu_preproc_config cfg = nnu_preproc_config_default();
    cfg.n_channels = 1;
    cfg.schemes = sch;
    cfg.use_mask_for_norm = mask;
    cfg.transpose_forward[0] = 2; cfg.transpose_forward[1] = 0; cfg.transpose_forward[2] = 1;
    cfg.spacing[0] = 3.0; cfg.spacing[1] = 1.0; cfg.spacing[2] = 2.0;    /* transposed: (x, z, y) */
    double spacing[3] = {1.0, 2.0, 3.0};                                  /* as read (z, y, x) */
    nnu_preproc_props p;
    memset(&p, 0, sizeof p);
    CHECK_OK(nnu_preproc_case_run(&cfg, img, lab, spacing, &data, &seg, NULL, &p));   /* steals img, lab */
    CHECK(p.shape_before_cropping[0] == 10 && p.shape_before_cropping[1] == 6 && p.shape_before_cropping[2] == 9,
          "shape before cropping (transposed) %lld %lld %lld", (long long)p.shape_before_cropping[0],
          (long long)p.shape_before_cropping[1], (long long)p.shape_before_cropping[2]);
    CHECK(p.bbox[0][0] == 3 && p.bbox[0][1] == 9 && p.bbox[1][0] == 1 && p.bbox[1][1] == 5 &&
          p.bbox[2][0] == 2 && p.bbox[2][1] == 8, "bbox (x, z, y) = [3,9) [1,5) [2,8)");
    CHECK(p.spacing_transposed[0] == 3.0 && p.spacing_transposed[1] == 1.0 && p.spacing_transposed[2] == 2.0,
          "spacing transposed");
    CHECK(data && data->shape[1] == 6 && data->shape[2] == 4 && data->shape[3] == 6, "unchanged spacing keeps the shape");
    if (data) {
        double mean, sd;
        nnu_tensor_mean(data, &mean);
        nnu_tensor_std(data, 0, &sd);
        CHECK(fabs(mean) < 1e-6 && fabs(sd - 1.0) < 1e-5, "z-scored: mean %g std %g", mean, sd);
    }
    CHECK_OK(nnu_preproc_revert_seg(seg, &p, cfg.transpose_forward, NULL, &back));
    if (back) {
        CHECK(back->ndim == 3 && back->shape[0] == 6 && back->shape[1] == 9 && back->shape[2] == 10, "reverted shape");
        const int16_t *a = nnu_tensor_data(back), *b = nnu_tensor_data(orig);
        int bad = 0;
        for (int64_t i = 0; i < nnu_tensor_numel(back); i++) bad += a[i] != b[i];
        CHECK(bad == 0, "revert restores the label map: %d voxels differ", bad);
    }
    nnu_tensor_release(data); nnu_tensor_release(seg); nnu_tensor_release(back); nnu_tensor_release(orig);

    /* anisotropic target with 2d and 3d configurations */
    make_case(&img, &lab);
    cfg.transpose_forward[0] = 0; cfg.transpose_forward[1] = 1; cfg.transpose_forward[2] = 2;
    double aniso[3] = {5.0, 0.8, 0.8};
    cfg.spacing[0] = 5.0; cfg.spacing[1] = 1.2; cfg.spacing[2] = 1.2;
    CHECK_OK(nnu_preproc_case_run(&cfg, img, lab, aniso, &data, &seg, NULL, &p));
    /* cropped (4, 6, 6): round(0.8/1.2*6) = 4 */
    CHECK(data && data->shape[1] == 4 && data->shape[2] == 4 && data->shape[3] == 4, "3d anisotropic shape");
    nnu_tensor_release(data); nnu_tensor_release(seg);
    make_case(&img, &lab);
    cfg.spacing_ndim = 2;
    cfg.spacing[0] = 0.4; cfg.spacing[1] = 0.4;
    CHECK_OK(nnu_preproc_case_run(&cfg, img, lab, aniso, &data, &seg, NULL, &p));
    CHECK(data && data->shape[1] == 4 && data->shape[2] == 12 && data->shape[3] == 12, "2d keeps the slices");
    CHECK(p.target_spacing[0] == 5.0 && p.target_spacing[1] == 0.4, "2d target spacing");
    nnu_tensor_release(data); nnu_tensor_release(seg);
}

int main(void) {
    test_class_locations();
    test_run_and_revert();
    return check_report();
}
