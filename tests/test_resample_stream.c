/* test_resample_stream.c: the plane-streaming paths of nnu_resample_to_shape (issue 5
 * item 4: bounded memory) give bit-identical results to the whole-volume float64
 * computation they replace, on random volumes chosen to hit every pass order:
 *   - data order 3 (and 0, 2, 4, 5) without separate-z against nnu_resize_f64 on a float64
 *     copy of the channel, clipped, then stored in the input dtype: axis 0 unchanged, the
 *     axis-0 pass first, in the middle and last (passes run shrinking axes first);
 *     strided (permuted) input; int16 input; two channels;
 *   - separate-z along each axis (order_z 0) against per-plane nnu_resize_f64 (each plane
 *     clipped to its own range) followed by nearest-neighbour plane selection
 *     (source index floor(((o + 0.5) n_in / n_out - 0.5) + 0.5), clamped);
 *   - labels with order 1 from float32, int8 and a permuted view agree with each other.
 * Equality is exact (bit for bit), no tolerance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_resample.h"

static uint32_t rng = 12345u;
static double urand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (double)(rng >> 8) / 16777216.0;
}

static nnu_tensor *random_volume(int64_t C, int64_t D, int64_t H, int64_t W, nnu_dtype dt) {
    nnu_tensor *t = NULL;
    CHECK_OK(nnu_tensor_new(dt, 4, (int64_t[]){C, D, H, W}, &t));
    int64_t n = C * D * H * W;
    for (int64_t i = 0; i < n; i++) {
        double v = dt == NNU_DTYPE_I16 || dt == NNU_DTYPE_I8 ? floor(urand() * 7) - 2 : urand() * 200 - 50;
        nnu_dtype_store(dt, (char *)nnu_tensor_data(t) + (size_t)i * nnu_dtype_size(dt), v);
    }
    return t;
}

/* whole-volume reference: per channel float64 copy -> nnu_resize_f64 -> input dtype */
static nnu_tensor *reference_full(nnu_tensor *in, const int64_t ns[3], int order) {
    nnu_tensor *out = NULL;
    CHECK_OK(nnu_tensor_new(in->dtype, 4, (int64_t[]){in->shape[0], ns[0], ns[1], ns[2]}, &out));
    int64_t nout = ns[0] * ns[1] * ns[2];
    double *buf = malloc((size_t)nout * sizeof *buf);
    for (int64_t c = 0; c < in->shape[0]; c++) {
        nnu_tensor *cv = NULL, *cd = NULL;
        CHECK_OK(nnu_tensor_view_select(in, 0, c, &cv));
        CHECK_OK(nnu_tensor_to_dtype(cv, NNU_DTYPE_F64, &cd));
        CHECK_OK(nnu_resize_f64(nnu_tensor_data(cd), in->shape + 1, buf, ns, order, 1, 1));
        char *dst = (char *)nnu_tensor_data(out) + (size_t)(c * nout) * nnu_dtype_size(in->dtype);
        for (int64_t i = 0; i < nout; i++) nnu_dtype_store(in->dtype, dst + (size_t)i * nnu_dtype_size(in->dtype), buf[i]);
        nnu_tensor_release(cv);
        nnu_tensor_release(cd);
    }
    free(buf);
    return out;
}

/* separate-z reference along `axis` (order_z 0) */
static nnu_tensor *reference_sepz(nnu_tensor *in, const int64_t ns[3], int axis, int order) {
    int p = axis == 0 ? 1 : 0, q = axis == 2 ? 1 : 2;
    const int64_t *s = in->shape + 1;
    nnu_tensor *out = NULL;
    CHECK_OK(nnu_tensor_new(in->dtype, 4, (int64_t[]){in->shape[0], ns[0], ns[1], ns[2]}, &out));
    double *a = malloc((size_t)(s[p] * s[q]) * sizeof *a), *b = malloc((size_t)(ns[p] * ns[q]) * sizeof *b);
    for (int64_t c = 0; c < in->shape[0]; c++)
        for (int64_t o = 0; o < ns[axis]; o++) {
            double cc = ((double)o + 0.5) * ((double)s[axis] / (double)ns[axis]) - 0.5;
            int64_t k = (int64_t)floor(cc + 0.5);
            k = k < 0 ? 0 : (k >= s[axis] ? s[axis] - 1 : k);
            for (int64_t i = 0; i < s[p]; i++)
                for (int64_t j = 0; j < s[q]; j++) {
                    int64_t ix[4] = {c, 0, 0, 0};
                    ix[1 + axis] = k; ix[1 + p] = i; ix[1 + q] = j;
                    nnu_tensor_get(in, ix, &a[i * s[q] + j]);
                }
            CHECK_OK(nnu_resize_f64(a, (int64_t[]){1, s[p], s[q]}, b, (int64_t[]){1, ns[p], ns[q]}, order, 1, 0));
            for (int64_t i = 0; i < ns[p]; i++)
                for (int64_t j = 0; j < ns[q]; j++) {
                    int64_t ix[4] = {c, 0, 0, 0};
                    ix[1 + axis] = o; ix[1 + p] = i; ix[1 + q] = j;
                    nnu_tensor_set(out, ix, b[i * ns[q] + j]);
                }
        }
    free(a);
    free(b);
    return out;
}

static int same_bits(const nnu_tensor *a, const nnu_tensor *b) {
    if (!a || !b || !nnu_tensor_same_shape(a, b) || a->dtype != b->dtype) return 0;
    return memcmp(nnu_tensor_data(a), nnu_tensor_data(b), (size_t)nnu_tensor_numel(a) * nnu_dtype_size(a->dtype)) == 0;
}

static void run_full(const char *name, nnu_tensor *in, const int64_t ns[3], int order) {
    nnu_resample_opts o = nnu_resample_opts_data();
    o.order = order;
    o.force_separate_z = 0;
    nnu_tensor *got = NULL;
    CHECK_OK(nnu_resample_to_shape(in, ns, (double[]){1, 1, 1}, (double[]){1, 1, 1}, &o, &got));
    nnu_tensor *want = reference_full(in, ns, order);
    CHECK(same_bits(got, want), "%s: streamed result differs from the whole-volume float64 one", name);
    nnu_tensor_release(got);
    nnu_tensor_release(want);
}

int main(void) {
    /* data without separate-z: every position of the axis-0 pass among the passes */
    struct { const char *name; int64_t in[3], out[3]; int order; } cases[] = {
        {"axis 0 unchanged", {6, 9, 11}, {6, 13, 7}, 3},
        {"axis 0 first (shrinks most)", {12, 7, 8}, {5, 9, 9}, 3},
        {"axis 0 in the middle", {9, 12, 6}, {8, 5, 11}, 3},
        {"axis 0 last (grows most)", {5, 10, 12}, {9, 6, 7}, 3},
        {"only axis 0", {7, 6, 5}, {11, 6, 5}, 3},
        {"order 0", {7, 6, 5}, {9, 4, 6}, 0},
        {"order 2", {7, 6, 5}, {9, 4, 6}, 2},
        {"order 4", {7, 6, 5}, {9, 4, 6}, 4},
        {"order 5", {7, 6, 5}, {3, 8, 6}, 5},
        {"single plane", {1, 6, 5}, {2, 9, 4}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nnu_tensor *t = random_volume(2, cases[i].in[0], cases[i].in[1], cases[i].in[2], NNU_DTYPE_F32);
        run_full(cases[i].name, t, cases[i].out, cases[i].order);
        nnu_tensor_release(t);
    }
    /* strided input: a permuted view (C, W, H, D) of a (C, D, H, W) volume */
    {
        nnu_tensor *t = random_volume(1, 8, 7, 9, NNU_DTYPE_F32), *v = NULL;
        CHECK_OK(nnu_tensor_view_permute(t, (int[]){0, 3, 2, 1}, &v));
        run_full("permuted view", v, (int64_t[]){6, 10, 5}, 3);
        nnu_tensor_release(v);
        nnu_tensor_release(t);
    }
    /* int16 input (stored back with truncation, like nnu_tensor_copy) */
    {
        nnu_tensor *t = random_volume(1, 6, 7, 8, NNU_DTYPE_I16);
        run_full("int16", t, (int64_t[]){9, 5, 8}, 3);
        nnu_tensor_release(t);
    }

    /* separate-z along each axis, order 3 in-plane, order_z 0 */
    struct { int axis; int64_t in[3], out[3]; double cur[3], nw[3]; } sz[] = {
        {0, {5, 9, 8}, {11, 6, 10}, {5, 1, 1}, {2.2, 1.5, 0.8}},
        {0, {9, 9, 8}, {4, 12, 8}, {5, 1, 1}, {11, 0.75, 1}},
        {1, {8, 5, 9}, {6, 9, 9}, {1, 4, 1}, {1.3, 2.2, 1}},
        {2, {7, 8, 4}, {9, 8, 2}, {1, 1, 4}, {0.8, 1, 8}},
    };
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        nnu_tensor *t = random_volume(2, sz[i].in[0], sz[i].in[1], sz[i].in[2], NNU_DTYPE_F32), *got = NULL;
        CHECK(nnu_resample_sep_z_axis(sz[i].cur, sz[i].nw, -1, 3) == sz[i].axis, "sep-z case %zu: axis", i);
        nnu_resample_opts o = nnu_resample_opts_data();
        CHECK_OK(nnu_resample_to_shape(t, sz[i].out, sz[i].cur, sz[i].nw, &o, &got));
        nnu_tensor *want = reference_sepz(t, sz[i].out, sz[i].axis, 3);
        CHECK(same_bits(got, want), "separate-z along axis %d (case %zu): streamed result differs", sz[i].axis, i);
        nnu_tensor_release(got);
        nnu_tensor_release(want);
        nnu_tensor_release(t);
    }

    /* labels, order 1: float32, int8 and a permuted float32 view give the same map */
    {
        nnu_tensor *l8 = random_volume(1, 7, 9, 6, NNU_DTYPE_I8), *l32 = NULL, *lp = NULL, *lpc = NULL;
        CHECK_OK(nnu_tensor_to_dtype(l8, NNU_DTYPE_F32, &l32));
        CHECK_OK(nnu_tensor_view_permute(l32, (int[]){0, 1, 3, 2}, &lp));      /* (1, 7, 6, 9) view */
        CHECK_OK(nnu_tensor_clone(lp, &lpc));
        nnu_resample_opts o = nnu_resample_opts_seg();
        int64_t ns[3] = {10, 5, 8}, nsp[3] = {10, 8, 5};
        nnu_tensor *r8 = NULL, *r32 = NULL, *rp = NULL, *rpc = NULL, *r8f = NULL;
        double one[3] = {1, 1, 1};
        CHECK_OK(nnu_resample_to_shape(l8, ns, one, one, &o, &r8));
        CHECK_OK(nnu_resample_to_shape(l32, ns, one, one, &o, &r32));
        CHECK_OK(nnu_resample_to_shape(lp, nsp, one, one, &o, &rp));
        CHECK_OK(nnu_resample_to_shape(lpc, nsp, one, one, &o, &rpc));
        CHECK(r8 && r8->dtype == NNU_DTYPE_I8, "int8 labels stay int8");
        if (r8) CHECK_OK(nnu_tensor_to_dtype(r8, NNU_DTYPE_F32, &r8f));
        CHECK(same_bits(r8f, r32), "labels: int8 and float32 inputs give the same map");
        CHECK(same_bits(rp, rpc), "labels: a permuted view and its contiguous copy give the same map");
        nnu_tensor *ts[] = {l8, l32, lp, lpc, r8, r32, rp, rpc, r8f};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) nnu_tensor_release(ts[i]);
    }
    return check_report();
}
