/* nnu_resample.c: resample_data_or_seg_to_shape of the reference (see nnu_resample.h).
 *
 * Per channel, in float64:
 *   data, no separate-z:  resize(order) of the whole volume, clipped to its range
 *   data, separate-z a:   each 2-D slice orthogonal to a resized with `order` and
 *                         clipped to the slice's own range; then, if the size
 *                         along a changes, 1-D map_coordinates(order_z) along a
 *   seg:                  per unique label value u (ascending; -1 first): resize
 *                         the 0/1 mask (== u) with `order` and set out = u where
 *                         >= 0.5 (later labels overwrite, unreached voxels stay 0);
 *                         separate-z: the same per 2-D slice, then along a order_z
 *                         0 = nearest on the label values, else per label
 *                         round(map_coordinates(mask)) > 0.5.
 * Slices are processed in (n_a, p, q) order after moving axis a to the front.
 *
 * Memory (issue 5 item 4): the common paths stream the channel plane by plane along
 * axis 0 (the slowest) and write each finished output plane straight into the result
 * tensor in its dtype, so no float64 copy of the channel and no float64 output volume
 * exist:
 *   data, order >= 2 (and 0), no separate-z   (data_slab)
 *       the 1-D passes run in the same order and with the same float64 arithmetic
 *       as nnu_resize_f64: in-plane passes that come before the axis-0 pass run per
 *       input plane into one float64 buffer M of (len_0, H1, W1) (len_0 = D + 24
 *       edge-padded planes for the spline); M is prefiltered along axis 0 in place
 *       (column blocks, the same recursion); each output plane is evaluated from M,
 *       gets the remaining in-plane passes, is clipped and stored. Peak extra memory:
 *       M (8 bytes x (D + 24) x H1 x W1, about two float32 copies of the channel at
 *       most) plus a few planes per thread.
 *   data or labels, separate-z with order_z 0 (the reference's default)  (sep_z_stream)
 *       each input plane orthogonal to the axis is resized once and stored at every
 *       output index that selects it (nearest along the axis); planes nobody selects
 *       are skipped. Extra memory: a few planes per thread.
 *   order 1 (labels; logits at export)  (linear_stream)
 *       scipy-order 8-tap sums read the channel where it lies (float32 contiguous) or
 *       from one float32 copy (float16 and small-integer inputs, exact), else a
 *       float64 copy; output planes stored directly.
 * The results are bit-identical to the whole-volume float64 computation (the same
 * operations on the same values in the same order). Other cases (order_z > 0,
 * labels with order 0 or >= 2) keep the whole-channel float64 path. */
#include "nnu_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_interrupt.h"
#include "nnu_parallel.h"
#include "nnu_resample_internal.h"

nnu_resample_opts nnu_resample_opts_data(void) {
    return (nnu_resample_opts){.is_seg = 0, .order = 3, .order_z = 0, .force_separate_z = -1,
                               .aniso_threshold = NNU_RESAMPLE_ANISO_THRESHOLD};
}
nnu_resample_opts nnu_resample_opts_seg(void) {
    return (nnu_resample_opts){.is_seg = 1, .order = 1, .order_z = 0, .force_separate_z = -1,
                               .aniso_threshold = NNU_RESAMPLE_ANISO_THRESHOLD};
}
nnu_resample_opts nnu_resample_opts_probabilities(void) {
    return (nnu_resample_opts){.is_seg = 0, .order = 1, .order_z = 0, .force_separate_z = -1,
                               .aniso_threshold = NNU_RESAMPLE_ANISO_THRESHOLD};
}

/* get_lowres_axis: the axes with max(s) / s == 1; returns their count, first in *axis */
static int lowres_axes(const double s[3], int *axis) {
    double mx = fmax(s[0], fmax(s[1], s[2]));
    int n = 0;
    for (int a = 2; a >= 0; a--)
        if (mx / s[a] == 1.0) { *axis = a; n++; }
    return n;
}

static int aniso(const double s[3], double thr) {
    double mx = fmax(s[0], fmax(s[1], s[2])), mn = fmin(s[0], fmin(s[1], s[2]));
    return mx / mn > thr;
}

int nnu_resample_sep_z_axis(const double current[3], const double target[3], int force,
                            double threshold) {
    if (threshold <= 0) threshold = NNU_RESAMPLE_ANISO_THRESHOLD;
    int axis = -1, n = 0;
    if (force == 0) return -1;
    if (force == 1) n = lowres_axes(current, &axis);
    else if (aniso(current, threshold)) n = lowres_axes(current, &axis);
    else if (aniso(target, threshold)) n = lowres_axes(target, &axis);
    return n == 1 ? axis : -1;     /* 2 or 3 candidate axes: no separate-z at all */
}

void nnu_resample_new_shape(const int64_t old_shape[3], const double old_spacing[3],
                            const double new_spacing[3], int64_t new_shape[3]) {
    for (int a = 0; a < 3; a++)
        new_shape[a] = (int64_t)nearbyint(old_spacing[a] / new_spacing[a] * (double)old_shape[a]);
}

/* float64 -> float16 rounded once (numpy's astype(float16) from float64); going
 * through float32 first could round twice. Picks the nearest of the float32
 * route's result and its two neighbours, ties to the even bit pattern. */
static uint16_t f64_to_f16(double x) {
    uint16_t h = nnu_f32_to_f16((float)x);
    if (x != x || isinf(x) || (h & 0x7fffu) >= 0x7c00u) return h;
    uint16_t best = h;
    double bd = fabs((double)nnu_f16_to_f32(h) - x);
    for (int d = -1; d <= 1; d += 2) {
        int c = (int)(h & 0x7fffu) + d;
        if (c < 0 || c >= 0x7c00) continue;
        uint16_t hc = (uint16_t)((h & 0x8000u) | (uint16_t)c);
        double cd = fabs((double)nnu_f16_to_f32(hc) - x);
        if (cd < bd || (cd == bd && !(hc & 1u))) { best = hc; bd = cd; }
    }
    return best;
}

/* out[i0,i1,i2] = in[...] with out.shape[i] = shape[perm[i]] */
static void permute3(const double *in, const int64_t shape[3], const int perm[3], double *out) {
    int64_t st[3] = {shape[1] * shape[2], shape[2], 1};
    int64_t os[3] = {shape[perm[0]], shape[perm[1]], shape[perm[2]]};
    int64_t s0 = st[perm[0]], s1 = st[perm[1]], s2 = st[perm[2]];
    for (int64_t i = 0; i < os[0]; i++)
        for (int64_t j = 0; j < os[1]; j++) {
            const double *src = in + i * s0 + j * s1;
            double *dst = out + (i * os[1] + j) * os[2];
            for (int64_t k = 0; k < os[2]; k++) dst[k] = src[k * s2];
        }
}

/* sorted distinct values of x[0..n) into *vals (malloc'ed); returns the count or -1 (OOM) */
static int64_t unique_sorted(const double *x, int64_t n, double **vals) {
    int64_t cap = 16, k = 0;
    double *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -1;
    for (int64_t i = 0; i < n; i++) {
        double u = x[i];
        int64_t lo = 0, hi = k;                 /* binary search in the sorted set */
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (v[mid] < u) lo = mid + 1; else hi = mid;
        }
        if (lo < k && v[lo] == u) continue;
        if (k == cap) {
            double *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) { free(v); return -1; }
            v = nv;
        }
        memmove(v + lo + 1, v + lo, (size_t)(k - lo) * sizeof *v);
        v[lo] = u;
        k++;
    }
    *vals = v;
    return k;
}

/* Per-axis order-1 taps of the pixel-centre grid: i0 = floor(c), i1 = i0 + 1
 * (both clamped), w0 = 1 - t, w1 = 1 - w0 (scipy's weights). */
typedef struct { int64_t i[2]; double w[2]; } lin_tap;

static lin_tap *lin_taps(int64_t n_in, int64_t n_out) {
    lin_tap *t = malloc((size_t)n_out * sizeof *t);
    if (!t) return NULL;
    double zf = (double)n_in / (double)n_out;
    for (int64_t o = 0; o < n_out; o++) {
        double c = (((double)o + 0.5) * zf) - 0.5, f = floor(c);
        int64_t i0 = (int64_t)f;
        t[o].w[0] = 1.0 - (c - f);
        t[o].w[1] = 1.0 - t[o].w[0];
        for (int k = 0; k < 2; k++) {
            int64_t i = i0 + k;
            t[o].i[k] = i < 0 ? 0 : (i >= n_in ? n_in - 1 : i);
        }
    }
    return t;
}

/* resize_segmentation with order 1, reproducing scipy's arithmetic exactly: the
 * resized mask of label u at an output voxel is the sum, in scipy's tap order
 * (z outer, x inner), of (w_z * w_y) * w_x over the 8 taps that carry u; the
 * voxel gets the largest u whose sum is >= 0.5 (ascending labels overwrite).
 * Exactness matters here: masks hit 0.5 exactly and a tie decides the label. */
static nnu_status resize_seg_linear(const double *in, const int64_t in_shape[3], double *out,
                                    const int64_t out_shape[3], int parallel) {
    lin_tap *tz = lin_taps(in_shape[0], out_shape[0]);
    lin_tap *ty = lin_taps(in_shape[1], out_shape[1]);
    lin_tap *tx = lin_taps(in_shape[2], out_shape[2]);
    if (!tz || !ty || !tx) {
        free(tz); free(ty); free(tx);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "resample seg: out of memory");
    }
    const int64_t H = in_shape[1], W = in_shape[2];
    int par = parallel && !nnu_parallel_in_worker() && out_shape[0] > 1;
    #pragma omp parallel for schedule(static) if (par)
    for (int64_t z = 0; z < out_shape[0]; z++)
        for (int64_t y = 0; y < out_shape[1]; y++)
            for (int64_t x = 0; x < out_shape[2]; x++) {
                double lab[8], w[8];
                int k = 0;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++)
                        for (int c = 0; c < 2; c++, k++) {
                            lab[k] = in[(tz[z].i[a] * H + ty[y].i[b]) * W + tx[x].i[c]];
                            w[k] = (tz[z].w[a] * ty[y].w[b]) * tx[x].w[c];
                        }
                double best = 0.0;
                int found = 0;
                for (int k0 = 0; k0 < 8; k0++) {
                    int first = 1;                      /* each distinct label once */
                    for (int j = 0; j < k0; j++) first &= lab[j] != lab[k0];
                    if (!first) continue;
                    double t = 0.0;
                    for (int j = k0; j < 8; j++)
                        if (lab[j] == lab[k0]) t += w[j];
                    if (t >= 0.5 && (!found || lab[k0] > best)) { best = lab[k0]; found = 1; }
                }
                out[(z * out_shape[1] + y) * out_shape[2] + x] = found ? best : 0.0;
            }
    free(tz); free(ty); free(tx);
    return NNU_STATUS_OK;
}

/* resize_segmentation: per label u ascending, mask resized with `order`, >= 0.5 -> u.
 * in (in_shape) -> out (out_shape); order 0: resize of the values themselves. */
static nnu_status resize_seg(const double *in, const int64_t in_shape[3], double *out,
                             const int64_t out_shape[3], int order, int parallel) {
    int64_t n_in = in_shape[0] * in_shape[1] * in_shape[2];
    int64_t n_out = out_shape[0] * out_shape[1] * out_shape[2];
    if (order == 0) return nnu_resize_f64(in, in_shape, out, out_shape, 0, 1, parallel);
    if (order == 1) return resize_seg_linear(in, in_shape, out, out_shape, parallel);
    double *labels = NULL, *mask = malloc((size_t)n_in * sizeof *mask);
    double *res = malloc((size_t)n_out * sizeof *res);
    int64_t nl = unique_sorted(in, n_in, &labels);
    nnu_status st = NNU_STATUS_OK;
    if (!mask || !res || nl < 0) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "resample seg: out of memory");
    for (int64_t i = 0; i < n_out && !st; i++) out[i] = 0.0;
    for (int64_t l = 0; l < nl && !st; l++) {
        double u = labels[l];
        for (int64_t i = 0; i < n_in; i++) mask[i] = in[i] == u ? 1.0 : 0.0;
        st = nnu_resize_f64(mask, in_shape, res, out_shape, order, 1, parallel);
        for (int64_t i = 0; i < n_out && !st; i++)
            if (res[i] >= 0.5) out[i] = u;
    }
    free(labels);
    free(mask);
    free(res);
    return st;
}

/* 1-D along axis 0 of (n, p, q) for labels with order_z > 0:
 * per label, round(map_coordinates(mask, order_z)) > 0.5 -> label */
static nnu_status seg_along_z(const double *in, const int64_t shape[3], int64_t n_out, int order_z,
                              double *out) {
    int64_t n_in = shape[0] * shape[1] * shape[2], n_o = n_out * shape[1] * shape[2];
    double *labels = NULL, *mask = malloc((size_t)n_in * sizeof *mask);
    double *res = malloc((size_t)n_o * sizeof *res);
    int64_t nl = unique_sorted(in, n_in, &labels);
    nnu_status st = NNU_STATUS_OK;
    if (!mask || !res || nl < 0) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "resample seg: out of memory");
    for (int64_t i = 0; i < n_o && !st; i++) out[i] = 0.0;
    for (int64_t l = 0; l < nl && !st; l++) {
        for (int64_t i = 0; i < n_in; i++) mask[i] = in[i] == labels[l] ? 1.0 : 0.0;
        st = nnu_resize_axis_f64(mask, shape, 0, n_out, order_z, res, 1);
        for (int64_t i = 0; i < n_o && !st; i++)
            if (nearbyint(res[i]) > 0.5) out[i] = labels[l];
    }
    free(labels);
    free(mask);
    free(res);
    return st;
}

/* one channel, separate-z along axis `a`: vol (shape) -> out (new_shape) */
static nnu_status channel_sep_z(const double *vol, const int64_t shape[3], double *out,
                                const int64_t new_shape[3], int a, const nnu_resample_opts *o) {
    int perm[3] = {a, a == 0 ? 1 : 0, a == 2 ? 1 : 2};
    int64_t ps[3] = {shape[perm[0]], shape[perm[1]], shape[perm[2]]};
    int64_t pn[3] = {new_shape[perm[0]], new_shape[perm[1]], new_shape[perm[2]]};
    int64_t mid[3] = {ps[0], pn[1], pn[2]};          /* after the in-plane step */
    int64_t slice_in = ps[1] * ps[2], slice_out = pn[1] * pn[2];
    double *pv = malloc((size_t)(ps[0] * slice_in) * sizeof *pv);
    double *r1 = malloc((size_t)(mid[0] * slice_out) * sizeof *r1);
    double *r2 = malloc((size_t)(pn[0] * slice_out) * sizeof *r2);
    if (!pv || !r1 || !r2) {
        free(pv); free(r1); free(r2);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (separate-z)");
    }
    permute3(vol, shape, perm, pv);
    nnu_status st = NNU_STATUS_OK;
    int par = !nnu_parallel_in_worker() && ps[0] > 1;
    /* in-plane: each slice on its own (clipped to the slice's range) */
    #pragma omp parallel for schedule(dynamic, 1) if (par)
    for (int64_t k = 0; k < ps[0]; k++) {
        int64_t s_in[3] = {1, ps[1], ps[2]}, s_out[3] = {1, pn[1], pn[2]};
        nnu_status s = o->is_seg
            ? resize_seg(pv + k * slice_in, s_in, r1 + k * slice_out, s_out, o->order, 0)
            : nnu_resize_f64(pv + k * slice_in, s_in, r1 + k * slice_out, s_out, o->order, 1, 0);
        if (s) {
            #pragma omp critical
            st = s;
        }
    }
    if (!st && pn[0] != ps[0]) {
        if (o->is_seg && o->order_z != 0) st = seg_along_z(r1, mid, pn[0], o->order_z, r2);
        else st = nnu_resize_axis_f64(r1, mid, 0, pn[0], o->order_z, r2, 1);
    } else if (!st) {
        memcpy(r2, r1, (size_t)(pn[0] * slice_out) * sizeof *r2);
    }
    if (!st) {
        int inv[3];
        for (int i = 0; i < 3; i++) inv[perm[i]] = i;
        permute3(r2, pn, inv, out);
    }
    free(pv); free(r1); free(r2);
    return st;
}

/* ---- plane I/O: the (p, q) plane at index k of `axis` of channel c, p < q the other axes ---- */

static void plane_axes(int axis, int *p, int *q) {
    *p = axis == 0 ? 1 : 0;
    *q = axis == 2 ? 1 : 2;
}

/* in (C,D,H,W), any dtype and strides -> dst float64 (contiguous (n_p, n_q)) */
static void load_plane(const nnu_tensor *t, int64_t c, int axis, int64_t k, double *dst) {
    int p, q;
    plane_axes(axis, &p, &q);
    const int64_t np = t->shape[1 + p], nq = t->shape[1 + q];
    const int64_t sp = t->stride[1 + p], sq = t->stride[1 + q];
    const int64_t base = t->offset + c * t->stride[0] + k * t->stride[1 + axis];
    if (t->dtype == NNU_DTYPE_F32) {
        const float *f = (const float *)t->storage->data + base;
        for (int64_t i = 0; i < np; i++)
            for (int64_t j = 0; j < nq; j++) dst[i * nq + j] = f[i * sp + j * sq];
        return;
    }
    const size_t es = nnu_dtype_size(t->dtype);
    const char *b = (const char *)t->storage->data;
    for (int64_t i = 0; i < np; i++)
        for (int64_t j = 0; j < nq; j++)
            dst[i * nq + j] = nnu_dtype_load(t->dtype, b + (size_t)(base + i * sp + j * sq) * es);
}

/* src float64 (n_p, n_q) -> plane k of `axis` of channel c of the contiguous result,
 * converted like nnu_tensor_copy (float16 rounded once from float64) */
static void store_plane(nnu_tensor *t, int64_t c, int axis, int64_t k, const double *src) {
    int p, q;
    plane_axes(axis, &p, &q);
    const int64_t np = t->shape[1 + p], nq = t->shape[1 + q];
    const int64_t sp = t->stride[1 + p], sq = t->stride[1 + q];
    const int64_t base = t->offset + c * t->stride[0] + k * t->stride[1 + axis];
    if (t->dtype == NNU_DTYPE_F32) {
        float *f = (float *)t->storage->data + base;
        for (int64_t i = 0; i < np; i++)
            for (int64_t j = 0; j < nq; j++) f[i * sp + j * sq] = (float)src[i * nq + j];
        return;
    }
    if (t->dtype == NNU_DTYPE_F16) {
        uint16_t *h = (uint16_t *)t->storage->data + base;
        for (int64_t i = 0; i < np; i++)
            for (int64_t j = 0; j < nq; j++) h[i * sp + j * sq] = f64_to_f16(src[i * nq + j]);
        return;
    }
    const size_t es = nnu_dtype_size(t->dtype);
    char *b = (char *)t->storage->data;
    for (int64_t i = 0; i < np; i++)
        for (int64_t j = 0; j < nq; j++)
            nnu_dtype_store(t->dtype, b + (size_t)(base + i * sp + j * sq) * es, src[i * nq + j]);
}

static void clip_plane(double *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

/* [min, max] of channel c (NaN ignored, as the whole-volume path) */
static void channel_range(const nnu_tensor *t, int64_t c, double *lo, double *hi) {
    double l = INFINITY, h = -INFINITY;
    const int64_t P = t->shape[2] * t->shape[3];
    double *buf = malloc((size_t)P * sizeof *buf);
    if (buf) {
        for (int64_t z = 0; z < t->shape[1]; z++) {
            load_plane(t, c, 0, z, buf);
            for (int64_t i = 0; i < P; i++) {
                l = buf[i] < l ? buf[i] : l;
                h = buf[i] > h ? buf[i] : h;
            }
        }
        free(buf);
    }
    *lo = l;
    *hi = h;
}

#define FAIL_SHARED(stp, s)        \
    do {                           \
        if (s) {                   \
            _Pragma("omp critical") \
            if (!*(stp)) *(stp) = (s); \
        }                          \
    } while (0)

/* in-plane 1-D passes of one (h, w) plane: `axes` (1 = rows, 2 = columns) in order,
 * ping-ponging between a and b; returns the buffer holding the result */
static nnu_status plane_passes(double *a, double *b, int64_t *h, int64_t *w, const int *axes, int n,
                               const int64_t target[3], int order, double **res) {
    double *src = a, *dst = b;
    for (int i = 0; i < n; i++) {
        int64_t sh[3] = {1, *h, *w};
        NNU_TRY(nnu_resize_axis_f64(src, sh, axes[i], target[axes[i]], order, dst, 0));
        if (axes[i] == 1) *h = target[1]; else *w = target[2];
        double *t = src; src = dst; dst = t;
    }
    *res = src;
    return NNU_STATUS_OK;
}

/* data_slab's pass over the input planes of channel c (parallel over z when par): each
 * plane loaded, the in-plane passes `pre` applied, then either stored as output plane z
 * of res, clipped to [lo, hi] when clip (M == NULL: axis 0 unchanged), or copied into
 * M's slot z + npad (S1 values; step 1 of the axis-0 path). maxS: the largest plane. */
static nnu_status input_plane_passes(const nnu_tensor *in, int64_t c, const int *pre, int npre,
                                     const int64_t ns[3], int order, int64_t maxS, int par, int clip,
                                     double lo, double hi, nnu_tensor *res, double *M, int64_t npad,
                                     int64_t S1) {
    const int64_t *shape = in->shape + 1;
    nnu_status st = NNU_STATUS_OK;
    #pragma omp parallel if (par && shape[0] > 1)
    {
        double *a = malloc((size_t)maxS * sizeof *a), *b = malloc((size_t)maxS * sizeof *b);
        if (!a || !b) FAIL_SHARED(&st, NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (planes)"));
        #pragma omp for schedule(dynamic, 1)
        for (int64_t z = 0; z < shape[0]; z++) {
            if (!a || !b || st) continue;
            int64_t h = shape[1], w = shape[2];
            double *r = NULL;
            load_plane(in, c, 0, z, a);
            nnu_status s = plane_passes(a, b, &h, &w, pre, npre, ns, order, &r);
            if (!s && M) {
                memcpy(M + (z + npad) * S1, r, (size_t)S1 * sizeof *M);
            } else if (!s) {
                if (clip) clip_plane(r, h * w, lo, hi);
                store_plane(res, c, 0, z, r);
            }
            FAIL_SHARED(&st, s);
        }
        free(a);
        free(b);
    }
    return st;
}

/* data, order != 1, no separate-z: see the header comment (data_slab) */
static nnu_status data_slab(const nnu_tensor *in, int64_t c, const int64_t ns[3], int order,
                            nnu_tensor *res) {
    const int64_t *shape = in->shape + 1;
    double lo = 0, hi = 0;
    int clip = order > 0;
    if (clip) channel_range(in, c, &lo, &hi);
    /* the pass order of nnu_resize_f64: changing axes, shrinking ones first */
    int axes[3], na = 0;
    for (int a = 0; a < 3; a++)
        if (shape[a] != ns[a]) axes[na++] = a;
    for (int i = 0; i < na; i++)
        for (int k = i + 1; k < na; k++) {
            double ri = (double)ns[axes[i]] / (double)shape[axes[i]];
            double rk = (double)ns[axes[k]] / (double)shape[axes[k]];
            if (rk < ri) { int t = axes[i]; axes[i] = axes[k]; axes[k] = t; }
        }
    int k0 = -1, pre[3], npre = 0, post[3], npost = 0;
    for (int i = 0; i < na; i++)
        if (axes[i] == 0) k0 = i;
    for (int i = 0; i < na; i++) {
        if (axes[i] == 0) continue;
        if (k0 < 0 || i < k0) pre[npre++] = axes[i];
        else post[npost++] = axes[i];
    }
    int64_t h1 = shape[1], w1 = shape[2];
    for (int i = 0; i < npre; i++) {
        if (pre[i] == 1) h1 = ns[1]; else w1 = ns[2];
    }
    const int64_t S1 = h1 * w1;
    int64_t maxS = shape[1] * shape[2];
    int64_t cand[3] = {ns[1] * shape[2], shape[1] * ns[2], ns[1] * ns[2]};
    for (int i = 0; i < 3; i++) maxS = cand[i] > maxS ? cand[i] : maxS;
    const int par = !nnu_parallel_in_worker();
    nnu_status st = NNU_STATUS_OK;

    if (k0 < 0)                                     /* axis 0 unchanged: plane by plane */
        return input_plane_passes(in, c, pre, npre, ns, order, maxS, par, clip, lo, hi, res, NULL, 0, 0);

    nnu_rs_axis_plan pz;
    NNU_TRY(nnu_rs_plan_make(&pz, shape[0], ns[0], order));
    const int64_t len = pz.len, npad = pz.npad;
    double *M = malloc((size_t)(len * S1) * sizeof *M);
    if (!M) {
        nnu_rs_plan_free(&pz);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (%lld x %lld planes)", (long long)len,
                        (long long)S1);
    }
    /* 1. in-plane passes before the axis-0 pass, per input plane, into M (edge-padded) */
    st = input_plane_passes(in, c, pre, npre, ns, order, maxS, par, 0, 0, 0, NULL, M, npad, S1);
    for (int64_t k = 0; k < npad && !st; k++) {
        memcpy(M + k * S1, M + npad * S1, (size_t)S1 * sizeof *M);
        memcpy(M + (npad + shape[0] + k) * S1, M + (npad + shape[0] - 1) * S1, (size_t)S1 * sizeof *M);
    }
    /* 2. B-spline prefilter along axis 0, in blocks of NNU_RS_CHUNK columns */
    if (!st && order > 1) {
        const int64_t chunks = (S1 + NNU_RS_CHUNK - 1) / NNU_RS_CHUNK;
        #pragma omp parallel if (par && chunks > 1)
        {
            double *buf = malloc((size_t)(len * NNU_RS_CHUNK) * sizeof *buf);
            if (!buf) FAIL_SHARED(&st, NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (prefilter)"));
            #pragma omp for schedule(dynamic, 1)
            for (int64_t ch = 0; ch < chunks; ch++) {
                if (!buf) continue;
                int64_t j0 = ch * NNU_RS_CHUNK, w = S1 - j0 < NNU_RS_CHUNK ? S1 - j0 : NNU_RS_CHUNK;
                for (int64_t k = 0; k < len; k++) memcpy(buf + k * w, M + k * S1 + j0, (size_t)w * sizeof *buf);
                nnu_rs_prefilter(buf, len, w, pz.poles, pz.npoles);
                for (int64_t k = 0; k < len; k++) memcpy(M + k * S1 + j0, buf + k * w, (size_t)w * sizeof *buf);
            }
            free(buf);
        }
    }
    /* 3. each output plane: taps along axis 0, then the remaining in-plane passes */
    if (!st) {
        #pragma omp parallel if (par && ns[0] > 1)
        {
            double *a = malloc((size_t)maxS * sizeof *a), *b = malloc((size_t)maxS * sizeof *b);
            if (!a || !b) FAIL_SHARED(&st, NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (planes)"));
            #pragma omp for schedule(dynamic, 1)
            for (int64_t o = 0; o < ns[0]; o++) {
                if (!a || !b || st) continue;
                const int64_t *ix = pz.idx + o * pz.ntaps;
                const double *wt = pz.w + o * pz.ntaps;
                const double *r0 = M + ix[0] * S1;
                for (int64_t j = 0; j < S1; j++) a[j] = r0[j] * wt[0];
                for (int k = 1; k < pz.ntaps; k++) {
                    const double *r = M + ix[k] * S1;
                    const double wk = wt[k];
                    for (int64_t j = 0; j < S1; j++) a[j] += r[j] * wk;
                }
                int64_t h = h1, w = w1;
                double *r = NULL;
                nnu_status s = plane_passes(a, b, &h, &w, post, npost, ns, order, &r);
                if (!s) {
                    if (clip) clip_plane(r, h * w, lo, hi);
                    store_plane(res, c, 0, o, r);
                }
                FAIL_SHARED(&st, s);
            }
            free(a);
            free(b);
        }
    }
    free(M);
    nnu_rs_plan_free(&pz);
    return st;
}

/* separate-z along `axis` with order_z 0: each selected input plane resized once (data:
 * with `order`, clipped to the plane's range; labels: per label) and stored at every
 * output index whose nearest source it is */
static nnu_status sep_z_stream(const nnu_tensor *in, int64_t c, int axis, const int64_t ns[3],
                               const nnu_resample_opts *o, nnu_tensor *res) {
    int p, q;
    plane_axes(axis, &p, &q);
    const int64_t *shape = in->shape + 1;
    const int64_t s_in[3] = {1, shape[p], shape[q]}, s_out[3] = {1, ns[p], ns[q]};
    const int64_t P_in = shape[p] * shape[q], P_out = ns[p] * ns[q];
    nnu_rs_axis_plan pa;
    NNU_TRY(nnu_rs_plan_make(&pa, shape[axis], ns[axis], 0));
    /* runs of consecutive output indices with the same source plane (idx is monotone) */
    int64_t *run0 = malloc((size_t)(ns[axis] + 1) * sizeof *run0), nruns = 0;
    if (!run0) {
        nnu_rs_plan_free(&pa);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (separate-z)");
    }
    for (int64_t i = 0; i < ns[axis]; i++)
        if (i == 0 || pa.idx[i] != pa.idx[i - 1]) run0[nruns++] = i;
    run0[nruns] = ns[axis];
    nnu_status st = NNU_STATUS_OK;
    const int par = !nnu_parallel_in_worker() && nruns > 1;
    #pragma omp parallel if (par)
    {
        double *a = malloc((size_t)P_in * sizeof *a), *b = malloc((size_t)P_out * sizeof *b);
        if (!a || !b) FAIL_SHARED(&st, NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (planes)"));
        #pragma omp for schedule(dynamic, 1)
        for (int64_t r = 0; r < nruns; r++) {
            if (!a || !b || st) continue;
            load_plane(in, c, axis, pa.idx[run0[r]], a);
            nnu_status s = o->is_seg ? resize_seg(a, s_in, b, s_out, o->order, 0)
                                     : nnu_resize_f64(a, s_in, b, s_out, o->order, 1, 0);
            if (!s)
                for (int64_t i = run0[r]; i < run0[r + 1]; i++) store_plane(res, c, axis, i, b);
            FAIL_SHARED(&st, s);
        }
        free(a);
        free(b);
    }
    free(run0);
    nnu_rs_plan_free(&pa);
    return st;
}

/* order 1 over a contiguous channel read as float or double: each output plane z is
 * evaluated in scipy's tap order (see resize_linear_exact / resize_seg_linear) */
typedef struct lin_src {
    const float  *f;      /* float32 view of the channel, or */
    const double *d;      /* float64 copy */
    nnu_tensor   *hold;   /* tensor owning the memory */
} lin_src;

static int exact_in_f32(nnu_dtype dt) {
    return dt == NNU_DTYPE_F32 || dt == NNU_DTYPE_F16 || dt == NNU_DTYPE_U8 || dt == NNU_DTYPE_I8 ||
           dt == NNU_DTYPE_I16 || dt == NNU_DTYPE_U16;
}

static nnu_status lin_source(const nnu_tensor *in, int64_t c, lin_src *s) {
    nnu_tensor *cv = NULL;
    memset(s, 0, sizeof *s);
    NNU_TRY(nnu_tensor_view_select((nnu_tensor *)in, 0, c, &cv));
    nnu_status st = NNU_STATUS_OK;
    if (cv->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(cv)) {
        s->hold = cv;
        s->f = nnu_tensor_data(cv);
        return NNU_STATUS_OK;
    }
    if (exact_in_f32(cv->dtype)) {
        st = nnu_tensor_to_dtype(cv, NNU_DTYPE_F32, &s->hold);
        if (!st) s->f = nnu_tensor_data(s->hold);
    } else {
        st = nnu_tensor_to_dtype(cv, NNU_DTYPE_F64, &s->hold);
        if (!st) s->d = nnu_tensor_data(s->hold);
    }
    nnu_tensor_release(cv);
    return st;
}

#define LIN_VAL(s, i) ((s)->f ? (double)(s)->f[i] : (s)->d[i])

/* data order 1, plane z of the output: t = sum over the 8 taps of ((v w_z) w_y) w_x */
static void lin_plane(const lin_src *s, const int64_t H, const int64_t W, const lin_tap *tz, const lin_tap *ty,
                      const lin_tap *tx, int64_t z, int64_t OH, int64_t OW, double *dst) {
    for (int64_t y = 0; y < OH; y++)
        for (int64_t x = 0; x < OW; x++) {
            double t = 0.0;
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++) {
                    const int64_t row = (tz[z].i[a] * H + ty[y].i[b]) * W;
                    for (int cc = 0; cc < 2; cc++)
                        t += ((LIN_VAL(s, row + tx[x].i[cc]) * tz[z].w[a]) * ty[y].w[b]) * tx[x].w[cc];
                }
            dst[y * OW + x] = t;
        }
}

/* labels order 1, plane z: the largest label whose (w_z w_y) w_x sum is >= 0.5, else 0 */
static void seg_lin_plane(const lin_src *s, const int64_t H, const int64_t W, const lin_tap *tz,
                          const lin_tap *ty, const lin_tap *tx, int64_t z, int64_t OH, int64_t OW, double *dst) {
    for (int64_t y = 0; y < OH; y++)
        for (int64_t x = 0; x < OW; x++) {
            double lab[8], w[8];
            int k = 0;
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++)
                    for (int cc = 0; cc < 2; cc++, k++) {
                        lab[k] = LIN_VAL(s, (tz[z].i[a] * H + ty[y].i[b]) * W + tx[x].i[cc]);
                        w[k] = (tz[z].w[a] * ty[y].w[b]) * tx[x].w[cc];
                    }
            double best = 0.0;
            int found = 0;
            for (int k0 = 0; k0 < 8; k0++) {
                int first = 1;
                for (int j = 0; j < k0; j++) first &= lab[j] != lab[k0];
                if (!first) continue;
                double t = 0.0;
                for (int j = k0; j < 8; j++)
                    if (lab[j] == lab[k0]) t += w[j];
                if (t >= 0.5 && (!found || lab[k0] > best)) { best = lab[k0]; found = 1; }
            }
            dst[y * OW + x] = found ? best : 0.0;
        }
}

static nnu_status linear_stream(const nnu_tensor *in, int64_t c, const int64_t ns[3], int is_seg,
                                nnu_tensor *res) {
    const int64_t *shape = in->shape + 1;
    lin_src s;
    NNU_TRY(lin_source(in, c, &s));
    lin_tap *tz = lin_taps(shape[0], ns[0]), *ty = lin_taps(shape[1], ns[1]), *tx = lin_taps(shape[2], ns[2]);
    nnu_status st = NNU_STATUS_OK;
    if (!tz || !ty || !tx) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (taps)");
    double lo = INFINITY, hi = -INFINITY;
    if (!st && !is_seg) {
        const int64_t n = shape[0] * shape[1] * shape[2];
        for (int64_t i = 0; i < n; i++) {
            double v = LIN_VAL(&s, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    const int par = !nnu_parallel_in_worker() && ns[0] > 1;
    if (!st) {
        #pragma omp parallel if (par)
        {
            double *buf = malloc((size_t)(ns[1] * ns[2]) * sizeof *buf);
            if (!buf) FAIL_SHARED(&st, NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory (planes)"));
            #pragma omp for schedule(static)
            for (int64_t z = 0; z < ns[0]; z++) {
                if (!buf) continue;
                if (is_seg) {
                    seg_lin_plane(&s, shape[1], shape[2], tz, ty, tx, z, ns[1], ns[2], buf);
                } else {
                    lin_plane(&s, shape[1], shape[2], tz, ty, tx, z, ns[1], ns[2], buf);
                    clip_plane(buf, ns[1] * ns[2], lo, hi);
                }
                store_plane(res, c, 0, z, buf);
            }
            free(buf);
        }
    }
    free(tz); free(ty); free(tx);
    nnu_tensor_release(s.hold);
    return st;
}

/* the whole-channel float64 path (order_z > 0; labels with order 0 or >= 2) */
static nnu_status channel_full(const nnu_tensor *in, int64_t c, int axis, const int64_t new_shape[3],
                               const nnu_resample_opts *o, nnu_tensor *res) {
    const int64_t *shape = in->shape + 1;
    const int64_t nout = new_shape[0] * new_shape[1] * new_shape[2];
    double *obuf = malloc((size_t)nout * sizeof *obuf);
    nnu_tensor *cv = NULL, *cd = NULL;
    nnu_status st = obuf ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory");
    if (!st) st = nnu_tensor_view_select((nnu_tensor *)in, 0, c, &cv);
    if (!st) st = nnu_tensor_to_dtype(cv, NNU_DTYPE_F64, &cd);     /* contiguous float64 */
    if (!st) {
        const double *vol = nnu_tensor_data(cd);
        if (axis >= 0) st = channel_sep_z(vol, shape, obuf, new_shape, axis, o);
        else if (o->is_seg) st = resize_seg(vol, shape, obuf, new_shape, o->order, 1);
        else st = nnu_resize_f64(vol, shape, obuf, new_shape, o->order, 1, 1);
    }
    for (int64_t z = 0; z < new_shape[0] && !st; z++)
        store_plane(res, c, 0, z, obuf + z * new_shape[1] * new_shape[2]);
    nnu_tensor_release(cv);
    nnu_tensor_release(cd);
    free(obuf);
    return st;
}

nnu_status nnu_resample_to_shape(const nnu_tensor *in, const int64_t new_shape[3],
                                 const double current_spacing[3], const double new_spacing[3],
                                 const nnu_resample_opts *opts, nnu_tensor **out) {
    char b[64];
    NNU_CHECK(in && out && new_shape && current_spacing && new_spacing, NNU_STATUS_ERR_ARG,
              "resample: NULL argument");
    NNU_CHECK(in->ndim == 4, NNU_STATUS_ERR_SHAPE, "resample: input must be (C,D,H,W), got %s",
              nnu_tensor_shape_str(in, b, sizeof b));
    for (int a = 0; a < 3; a++) {
        NNU_CHECK(new_shape[a] > 0 && in->shape[1 + a] > 0, NNU_STATUS_ERR_SHAPE,
                  "resample: %s -> new shape [%lld,%lld,%lld]", nnu_tensor_shape_str(in, b, sizeof b),
                  (long long)new_shape[0], (long long)new_shape[1], (long long)new_shape[2]);
        NNU_CHECK(current_spacing[a] > 0 && new_spacing[a] > 0, NNU_STATUS_ERR_ARG,
                  "resample: spacing must be > 0 (axis %d: %g -> %g)", a, current_spacing[a], new_spacing[a]);
    }
    nnu_resample_opts o = opts ? *opts : nnu_resample_opts_data();
    NNU_CHECK(o.order >= 0 && o.order <= 5 && o.order_z >= 0 && o.order_z <= 5, NNU_STATUS_ERR_UNSUPPORTED,
              "resample: spline orders %d / %d not supported (0..5)", o.order, o.order_z);
    NNU_CHECK(in->storage && (!in->storage->mem || in->storage->mem->host_accessible), NNU_STATUS_ERR_ARG,
              "resample: the input must be in host memory");
    *out = NULL;
    const int64_t *shape = in->shape + 1;
    if (shape[0] == new_shape[0] && shape[1] == new_shape[1] && shape[2] == new_shape[2]) {
        nnu_tensor_retain((nnu_tensor *)in);        /* untouched, as the reference */
        *out = (nnu_tensor *)in;
        return NNU_STATUS_OK;
    }
    int axis = nnu_resample_sep_z_axis(current_spacing, new_spacing, o.force_separate_z,
                                       o.aniso_threshold);
    nnu_tensor *res = NULL;
    int64_t oshape[4] = {in->shape[0], new_shape[0], new_shape[1], new_shape[2]};
    NNU_TRY(nnu_tensor_new(in->dtype, 4, oshape, &res));
    nnu_status st = NNU_STATUS_OK;
    for (int64_t c = 0; c < in->shape[0] && !st; c++) {
        if (axis >= 0 && o.order_z == 0) st = sep_z_stream(in, c, axis, new_shape, &o, res);
        else if (axis >= 0) st = channel_full(in, c, axis, new_shape, &o, res);
        else if (o.order == 1) st = linear_stream(in, c, new_shape, o.is_seg, res);
        else if (o.is_seg) st = channel_full(in, c, -1, new_shape, &o, res);
        else st = data_slab(in, c, new_shape, o.order, res);
        if (!st && nnu_interrupt_requested())
            st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "resample: interrupted");
    }
    if (st) { nnu_tensor_release(res); return st; }
    *out = res;
    return NNU_STATUS_OK;
}
