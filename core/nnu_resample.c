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
 * Slices are processed in (n_a, p, q) order after moving axis a to the front. */
#include "nnu_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_interrupt.h"
#include "nnu_parallel.h"

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
    int64_t nout = new_shape[0] * new_shape[1] * new_shape[2];
    double *obuf = malloc((size_t)nout * sizeof *obuf);
    nnu_status st = obuf ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory");
    for (int64_t c = 0; c < in->shape[0] && !st; c++) {
        nnu_tensor *cv = NULL, *cd = NULL, *ov = NULL, *wrap = NULL;
        st = nnu_tensor_view_select((nnu_tensor *)in, 0, c, &cv);
        if (!st) st = nnu_tensor_to_dtype(cv, NNU_DTYPE_F64, &cd);     /* contiguous float64 */
        if (!st) {
            const double *vol = nnu_tensor_data(cd);
            if (axis >= 0) st = channel_sep_z(vol, shape, obuf, new_shape, axis, &o);
            else if (o.is_seg) st = resize_seg(vol, shape, obuf, new_shape, o.order, 1);
            else st = nnu_resize_f64(vol, shape, obuf, new_shape, o.order, 1, 1);
        }
        if (!st) st = nnu_tensor_view_select(res, 0, c, &ov);
        if (!st) st = nnu_tensor_wrap(obuf, NNU_DTYPE_F64, 3, new_shape, &wrap);
        if (!st && res->dtype == NNU_DTYPE_F16) {                        /* logits at export */
            uint16_t *h = nnu_tensor_data(ov);
            for (int64_t i = 0; i < nout; i++) h[i] = f64_to_f16(obuf[i]);
        } else if (!st) {
            st = nnu_tensor_copy(ov, wrap);                              /* to the input dtype */
        }
        nnu_tensor_release(cv); nnu_tensor_release(cd);
        nnu_tensor_release(ov); nnu_tensor_release(wrap);
        if (!st && nnu_interrupt_requested())
            st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "resample: interrupted");
    }
    free(obuf);
    if (st) { nnu_tensor_release(res); return st; }
    *out = res;
    return NNU_STATUS_OK;
}
