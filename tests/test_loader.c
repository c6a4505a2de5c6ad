/* test_loader.c: patch sampling and the batch ring (nnu_loader.h, §7.3).
 *   - crop box range: hand-computed lb/ub (enlarged patch, case smaller than patch);
 *   - oversampling: the last round(B·0.67) samples forced (B = 9 → 3), the random
 *     variant ≈ 0.33 over 3000 draws; forced patches contain foreground;
 *   - padding: every voxel of a crop equals the case or 0 / −1 outside it (exact);
 *   - the ignore-label "annotated" key centres non-forced crops;
 *   - determinism: the same batches for 0, 1 and 3 worker threads, make_batch(b) ==
 *     the b-th batch of next(), seek continues at any batch, other seeds differ;
 *   - a case read from a store file gives the same batches as the same case in memory;
 *   - errors: a worker's failure (an interrupt) reaches next(); seek recovers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "nnu_interrupt.h"
#include "nnu_loader.h"

/* case k: (2, D, H, W), data[c] = 1000c + linear index, seg: a 3×3×3 cube of label 1
 * and one voxel of label 2; class locations = all voxels of each label */
typedef struct tcase { nnu_tensor *data, *seg; nnu_class_locations locs; } tcase;

static void tcase_make(tcase *t, int64_t d, int64_t h, int64_t w, int64_t cz, int64_t cy, int64_t cx) {
    int64_t ds[4] = {2, d, h, w}, ss[4] = {1, d, h, w}, n = d * h * w;
    nnu_tensor_new(NNU_DTYPE_F32, 4, ds, &t->data);
    nnu_tensor_new(NNU_DTYPE_I8, 4, ss, &t->seg);
    float *x = nnu_tensor_data(t->data);
    int8_t *s = nnu_tensor_data(t->seg);
    for (int64_t i = 0; i < n; i++) { x[i] = (float)i + 1.0f; x[n + i] = 1000.0f + (float)i; }
    t->locs.n_keys = 2;
    t->locs.keys = calloc(2, sizeof *t->locs.keys);
    for (int k = 0; k < 2; k++) {
        t->locs.keys[k].n_values = 1;
        t->locs.keys[k].values = malloc(sizeof(int32_t));
        t->locs.keys[k].values[0] = k + 1;
        t->locs.keys[k].coords = malloc(27 * 3 * sizeof(int32_t));
    }
    for (int64_t z = cz; z < cz + 3; z++)
        for (int64_t y = cy; y < cy + 3; y++)
            for (int64_t xx = cx; xx < cx + 3; xx++) {
                s[(z * h + y) * w + xx] = 1;
                int32_t *c = t->locs.keys[0].coords + 3 * t->locs.keys[0].n++;
                c[0] = (int32_t)z; c[1] = (int32_t)y; c[2] = (int32_t)xx;
            }
    s[0] = 2;
    t->locs.keys[1].n = 1;
    memset(t->locs.keys[1].coords, 0, 3 * sizeof(int32_t));
}

static void tcase_free(tcase *t) {
    nnu_tensor_release(t->data);
    nnu_tensor_release(t->seg);
    nnu_class_locations_free(&t->locs);
}

#define NCASES 3
static tcase cases[NCASES];

static void make_cases(void) {
    tcase_make(&cases[0], 20, 24, 22, 8, 10, 12);
    tcase_make(&cases[1], 6, 30, 9, 2, 20, 3);       /* smaller than the patch on axes 0 and 2 */
    tcase_make(&cases[2], 16, 16, 16, 12, 1, 1);
}

static nnu_loader *new_loader(nnu_loader_opts *o) {
    nnu_loader *ld = NULL;
    CHECK_OK(nnu_loader_new(o, &ld));
    for (int k = 0; ld && k < NCASES; k++) CHECK_OK(nnu_loader_add_case(ld, cases[k].data, cases[k].seg, &cases[k].locs));
    return ld;
}

static void test_bbox(void) {
    int64_t lb[3], ub[3];
    int64_t shape[3] = {40, 20, 100}, patch[3] = {40, 40, 40}, init[3] = {73, 40, 64};
    nnu_loader_bbox_range(shape, patch, init, lb, ub);
    /* axis 0: need 33 → lb −17, ub 40 + 16 + 1 − 73 = −16; axis 1: need 20 (case
     * smaller) → −10, 20 + 10 − 40 = −10; axis 2: need 24 → −12, 100 + 12 − 64 = 48 */
    CHECK(lb[0] == -17 && ub[0] == -16 && lb[1] == -10 && ub[1] == -10 && lb[2] == -12 && ub[2] == 48,
          "bbox range: (%lld %lld) (%lld %lld) (%lld %lld)", (long long)lb[0], (long long)ub[0], (long long)lb[1],
          (long long)ub[1], (long long)lb[2], (long long)ub[2]);
}

/* patch (8, 12, 10) without augmentation: crops are exact copies with padding */
static nnu_loader_opts plain_opts(int bs, int workers) {
    nnu_loader_opts o = nnu_loader_opts_default();
    o.batch_size = bs;
    o.patch[0] = 8; o.patch[1] = 12; o.patch[2] = 10;
    o.n_workers = workers;
    o.seed = 42;
    return o;
}

static void test_sampling(void) {
    nnu_loader_opts o = plain_opts(9, 2);
    nnu_loader *ld = new_loader(&o);
    if (!ld) return;
    nnu_loader_sample_info info[9];
    int forced_ok = 1, fg_ok = 1, pad_ok = 1, n_forced = 0, n_small_pad = 0;
    int64_t n = 8 * 12 * 10;
    for (int b = 0; b < 40; b++) {
        nnu_tensor *d = NULL, *s = NULL;
        CHECK_OK(nnu_loader_next(ld, &d, &s, info));
        if (!d) break;
        const float *x = nnu_tensor_data(d);
        const int16_t *y = nnu_tensor_data(s);
        for (int j = 0; j < 9; j++) {
            forced_ok &= info[j].forced == (j >= 6);
            n_forced += info[j].forced;
            const tcase *c = &cases[info[j].case_index];
            const int64_t *cs = c->data->shape;
            int64_t cn = cs[1] * cs[2] * cs[3];
            const float *cx = nnu_tensor_data(c->data);
            const int8_t *cy = nnu_tensor_data(c->seg);
            int has_fg = 0, padded = 0;
            for (int64_t z = 0; z < 8; z++)
                for (int64_t yy = 0; yy < 12; yy++)
                    for (int64_t xx = 0; xx < 10; xx++) {
                        int64_t p = (z * 12 + yy) * 10 + xx;
                        int64_t sz = info[j].lo[0] + z, sy = info[j].lo[1] + yy, sx = info[j].lo[2] + xx;
                        int in = sz >= 0 && sz < cs[1] && sy >= 0 && sy < cs[2] && sx >= 0 && sx < cs[3];
                        int64_t q = (sz * cs[2] + sy) * cs[3] + sx;
                        float w0 = in ? cx[q] : 0.0f, w1 = in ? cx[cn + q] : 0.0f;
                        int16_t ws = in ? cy[q] : -1;
                        pad_ok &= x[(j * 2) * n + p] == w0 && x[(j * 2 + 1) * n + p] == w1 && y[j * n + p] == ws;
                        has_fg |= y[j * n + p] > 0;
                        padded |= !in;
                    }
            if (info[j].forced) fg_ok &= has_fg;
            if (info[j].case_index == 1) n_small_pad += padded;
        }
        nnu_tensor_release(d);
        nnu_tensor_release(s);
    }
    CHECK(forced_ok && n_forced == 40 * 3, "B = 9: samples 6, 7, 8 forced (%d forced)", n_forced);
    CHECK(fg_ok, "forced samples contain foreground");
    CHECK(pad_ok, "crops equal the case, padded with 0 / -1 outside");
    CHECK(n_small_pad > 0, "the small case was padded");
    nnu_loader_free(ld);

    /* probabilistic variant */
    o = plain_opts(3, 0);
    o.oversample_random = 1;
    ld = new_loader(&o);
    int forced = 0, total = 0;
    nnu_loader_sample_info inf3[3];
    for (int b = 0; ld && b < 1000; b++) {
        nnu_tensor *d, *s;
        CHECK_OK(nnu_loader_next(ld, &d, &s, inf3));
        for (int j = 0; j < 3; j++) { forced += inf3[j].forced; total++; }
        nnu_tensor_release(d);
        nnu_tensor_release(s);
    }
    double frac = (double)forced / total;
    CHECK(fabs(frac - 0.33) < 0.03, "random oversampling fraction %.3f", frac);
    nnu_loader_free(ld);

    /* B = 2 → 1 forced; B = 3 → round(2.01) = 2 → 1 forced */
    o = plain_opts(2, 0);
    ld = new_loader(&o);
    nnu_tensor *d, *s;
    CHECK_OK(nnu_loader_next(ld, &d, &s, inf3));
    CHECK(!inf3[0].forced && inf3[1].forced, "B = 2: the second sample forced");
    nnu_tensor_release(d); nnu_tensor_release(s);
    nnu_loader_free(ld);
}

static void test_annotated(void) {
    /* a case with an ignore label: key (-1, 1, 2) holds every annotated voxel */
    tcase t;
    tcase_make(&t, 10, 10, 10, 3, 3, 3);
    nnu_class_locations l;
    l.n_keys = 3;
    l.keys = calloc(3, sizeof *l.keys);
    l.keys[0] = t.locs.keys[0];
    l.keys[1] = t.locs.keys[1];
    int32_t vals[3] = {-1, 1, 2}, coords[3] = {9, 9, 9};
    l.keys[2] = (nnu_class_locs){3, vals, 1, coords};
    nnu_loader_opts o = plain_opts(3, 0);
    nnu_loader *ld = NULL;
    CHECK_OK(nnu_loader_new(&o, &ld));
    CHECK_OK(nnu_loader_add_case(ld, t.data, t.seg, &l));
    nnu_loader_sample_info inf[3];
    nnu_tensor *d, *s;
    CHECK_OK(nnu_loader_next(ld, &d, &s, inf));
    CHECK(inf[0].key == 2 && inf[1].key == 2 && inf[0].lo[0] == 9 - 4 && inf[0].lo[1] == 9 - 6,
          "non-forced samples centred on an annotated voxel (key %d, lo %lld)", inf[0].key, (long long)inf[0].lo[0]);
    CHECK(inf[2].forced && (inf[2].key == 0 || inf[2].key == 1), "forced: a label key, not the annotated one");
    nnu_tensor_release(d); nnu_tensor_release(s);
    nnu_loader_free(ld);
    free(l.keys);
    tcase_free(&t);
}

static void v2_like(nnu_aug_pipeline *p, const int64_t patch[3]) {
    memset(p, 0, sizeof *p);
    p->dim = 3;
    memcpy(p->patch, patch, 3 * sizeof(int64_t));
    nnu_aug_step *s = p->step;
    nnu_aug_step_init(s, NNU_AUG_SPATIAL);
    s->p_rotation = 0.5; s->p_scaling = 0.5; s->scaling = (nnu_aug_range){0.7, 1.4, 0};
    for (int a = 0; a < 3; a++) { s->rotation[a][0] = -0.5; s->rotation[a][1] = 0.5; }
    s->p_elastic = 0.2; s->alpha = (nnu_aug_range){0, 200, 0}; s->sigma = (nnu_aug_range){3, 4, 0};
    nnu_aug_step_init(++s, NNU_AUG_NOISE); s->p = 0.5; s->range = (nnu_aug_range){0, 0.1, 0}; s->sync_channels = 1;
    nnu_aug_step_init(++s, NNU_AUG_BLUR); s->p = 0.5; s->p_per_channel = 0.5; s->range = (nnu_aug_range){0.5, 1, 0};
    nnu_aug_step_init(++s, NNU_AUG_LOWRES); s->p = 0.5; s->p_per_channel = 0.5; s->range = (nnu_aug_range){0.5, 1, 0};
    nnu_aug_step_init(++s, NNU_AUG_GAMMA); s->p = 0.3; s->range = (nnu_aug_range){0.7, 1.5, 1};
    nnu_aug_step_init(++s, NNU_AUG_MIRROR); s->axes = 7;
    nnu_aug_step_init(++s, NNU_AUG_REMOVE_LABEL);
    p->n_steps = (int)(s - p->step) + 1;
}

#define NB 8

/* all NB batches of a loader into bufs (data then seg bytes) */
static size_t collect(nnu_loader *ld, unsigned char **buf) {
    size_t total = 0, cap = 0;
    *buf = NULL;
    for (int b = 0; ld && b < NB; b++) {
        nnu_tensor *d = NULL, *s = NULL;
        CHECK_OK(nnu_loader_next(ld, &d, &s, NULL));
        if (!d) break;
        size_t nd = (size_t)nnu_tensor_numel(d) * 4, ns = (size_t)nnu_tensor_numel(s) * 2;
        if (total + nd + ns > cap) { cap = 2 * (total + nd + ns); *buf = realloc(*buf, cap); }
        memcpy(*buf + total, nnu_tensor_data(d), nd);
        memcpy(*buf + total + nd, nnu_tensor_data(s), ns);
        total += nd + ns;
        nnu_tensor_release(d);
        nnu_tensor_release(s);
    }
    return total;
}

static void test_determinism(void) {
    int64_t patch[3] = {8, 12, 10};
    nnu_aug_pipeline pipe;
    v2_like(&pipe, patch);
    unsigned char *ref = NULL;
    size_t nref = 0;
    static const int workers[] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        nnu_loader_opts o = plain_opts(4, workers[k]);
        o.pipeline = &pipe;
        o.initial_patch[0] = 14; o.initial_patch[1] = 18; o.initial_patch[2] = 16;
        nnu_loader *ld = new_loader(&o);
        unsigned char *buf;
        size_t n = collect(ld, &buf);
        if (k == 0) { ref = buf; nref = n; }
        else {
            CHECK(n == nref && n > 0 && memcmp(buf, ref, n) == 0, "batches identical with %d workers", workers[k]);
            free(buf);
        }
        nnu_loader_free(ld);
    }
    /* make_batch(b) and seek */
    nnu_loader_opts o = plain_opts(4, 2);
    o.pipeline = &pipe;
    o.initial_patch[0] = 14; o.initial_patch[1] = 18; o.initial_patch[2] = 16;
    nnu_loader *ld = new_loader(&o);
    int64_t ds[5] = {4, 2, 8, 12, 10}, ss[5] = {4, 1, 8, 12, 10};
    nnu_tensor *d, *s;
    nnu_tensor_new(NNU_DTYPE_F32, 5, ds, &d);
    nnu_tensor_new(NNU_DTYPE_I16, 5, ss, &s);
    size_t nd = 4 * 2 * 960 * 4, ns = 4 * 960 * 2, per = nd + ns;
    CHECK_OK(nnu_loader_make_batch(ld, 5, d, s, NULL));
    CHECK(memcmp(ref + 5 * per, nnu_tensor_data(d), nd) == 0 && memcmp(ref + 5 * per + nd, nnu_tensor_data(s), ns) == 0,
          "make_batch(5) == the sixth batch of next()");
    nnu_tensor *d2, *s2;
    CHECK_OK(nnu_loader_next(ld, &d2, &s2, NULL));        /* starts the workers at 0 */
    nnu_tensor_release(d2); nnu_tensor_release(s2);
    CHECK_OK(nnu_loader_seek(ld, 6));
    CHECK(nnu_loader_next_index(ld) == 6, "seek sets the next index");
    CHECK_OK(nnu_loader_next(ld, &d2, &s2, NULL));
    CHECK(memcmp(ref + 6 * per, nnu_tensor_data(d2), nd) == 0, "after seek(6) the seventh batch");
    /* keep d2 alive across several next() calls: its memory must not be reused */
    unsigned char *keep = malloc(nd);
    memcpy(keep, nnu_tensor_data(d2), nd);
    for (int i = 0; i < 5; i++) {
        nnu_tensor *a, *b;
        CHECK_OK(nnu_loader_next(ld, &a, &b, NULL));
        nnu_tensor_release(a); nnu_tensor_release(b);
    }
    CHECK(memcmp(keep, nnu_tensor_data(d2), nd) == 0, "a batch held by the caller is never overwritten");
    free(keep);
    nnu_tensor_release(d2); nnu_tensor_release(s2);
    nnu_loader_free(ld);

    o.seed = 43;
    ld = new_loader(&o);
    unsigned char *other;
    size_t n2 = collect(ld, &other);
    CHECK(n2 == nref && memcmp(other, ref, n2) != 0, "another seed gives other batches");
    free(other);
    nnu_loader_free(ld);
    free(ref);

    /* labels of augmented batches stay in {0, 1, 2} after RemoveLabel */
    o.seed = 42;
    ld = new_loader(&o);
    int ok = 1;
    for (int b = 0; b < 10; b++) {
        nnu_tensor *a, *bb;
        CHECK_OK(nnu_loader_next(ld, &a, &bb, NULL));
        const int16_t *y = nnu_tensor_data(bb);
        for (int64_t i = 0; i < nnu_tensor_numel(bb); i++) ok &= y[i] >= 0 && y[i] <= 2;
        nnu_tensor_release(a); nnu_tensor_release(bb);
    }
    CHECK(ok, "augmented labels within {0, 1, 2}");
    nnu_loader_free(ld);
    nnu_tensor_release(d); nnu_tensor_release(s);
}

static void test_store(void) {
    char path[] = "/tmp/nnu_test_loader_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { CHECK(0, "mkstemp"); return; }
    close(fd);
    nnu_store_write_opts wo = nnu_store_write_opts_default();
    wo.no_fsync = 1;
    wo.plans_id = "test";
    wo.chunk[0] = 4; wo.chunk[1] = 8; wo.chunk[2] = 8;   /* crops cross chunk borders */
    CHECK_OK(nnu_store_write(path, cases[0].data, cases[0].seg, &cases[0].locs, &wo));
    nnu_loader_opts o = plain_opts(3, 1);
    nnu_loader *a = NULL, *b = NULL;
    CHECK_OK(nnu_loader_new(&o, &a));
    CHECK_OK(nnu_loader_new(&o, &b));
    if (a && b) {
        CHECK_OK(nnu_loader_add_case(a, cases[0].data, cases[0].seg, &cases[0].locs));
        CHECK_OK(nnu_loader_add_store(b, path, "test", 0));
        unsigned char *x, *y;
        size_t nx = collect(a, &x), ny = collect(b, &y);
        CHECK(nx == ny && nx > 0 && memcmp(x, y, nx) == 0, "store-backed case = in-memory case");
        free(x);
        free(y);
    }
    nnu_loader_free(a);
    nnu_loader_free(b);
    /* a store whose file disappears mid-way still reports, never crashes */
    CHECK_FAILS(nnu_loader_add_store(NULL, path, NULL, 0), NNU_STATUS_ERR_ARG, "NULL");
    unlink(path);
}

static void test_errors(void) {
    nnu_loader_opts o = plain_opts(2, 1);
    o.initial_patch[0] = 10;
    nnu_loader *ld = NULL;
    CHECK_FAILS(nnu_loader_new(&o, &ld), NNU_STATUS_ERR_ARG, "initial patch must equal");
    o = plain_opts(2, 1);
    CHECK_OK(nnu_loader_new(&o, &ld));
    nnu_tensor *d, *s;
    CHECK_FAILS(nnu_loader_next(ld, &d, &s, NULL), NNU_STATUS_ERR_ARG, "no cases");
    /* a class location outside its case is rejected when added */
    tcase t;
    tcase_make(&t, 6, 6, 6, 1, 1, 1);
    t.locs.keys[0].coords[0] = 6;
    CHECK_FAILS(nnu_loader_add_case(ld, t.data, t.seg, &t.locs), NNU_STATUS_ERR_ARG, "outside the case");
    tcase_free(&t);
    nnu_loader_free(ld);

    /* Ctrl-C: next() reports ERR_INTERRUPTED; after clearing, seek resumes */
    for (int workers = 0; workers <= 2; workers += 2) {
        o = plain_opts(2, workers);
        ld = new_loader(&o);
        nnu_interrupt_request();
        CHECK_FAILS(nnu_loader_next(ld, &d, &s, NULL), NNU_STATUS_ERR_INTERRUPTED, "interrupted");
        nnu_interrupt_clear();
        CHECK_OK(nnu_loader_seek(ld, nnu_loader_next_index(ld)));
        CHECK_OK(nnu_loader_next(ld, &d, &s, NULL));
        nnu_tensor_release(d);
        nnu_tensor_release(s);
        nnu_loader_free(ld);
    }
}

int main(void) {
    make_cases();
    test_bbox();
    test_sampling();
    test_annotated();
    test_determinism();
    test_store();
    test_errors();
    for (int k = 0; k < NCASES; k++) tcase_free(&cases[k]);
    return check_report();
}
