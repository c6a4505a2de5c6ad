/* nnu_resample_kernel.c: float64 separable B-spline resize (see nnu_resample.h).
 *
 * One axis pass maps a volume viewed as (outer, n_in, inner) to (outer, n_out,
 * inner), inner = product of the faster axes. Per output index o along the axis
 * (scipy zoom, grid_mode=True, mode='nearest'; nnunet-behaviour.md §4.5):
 *   c = ((o + 0.5) * (n_in / n_out)) - 0.5          pixel-centre grid
 *   order <= 1: no prefilter
 *   order >= 2: the line is edge-padded by NPAD = 12 on both sides, converted to
 *               B-spline coefficients (gain, then per pole a causal and an
 *               anti-causal recursion; boundary init as scipy's for mode
 *               'nearest', i.e. its half-sample "reflect" formulas), and
 *               evaluated at u = c + 12
 *   taps: start = floor(u) - order/2 (odd) or floor(u + 0.5) - order/2 (even),
 *         order + 1 taps clamped to the (padded) line, weights as scipy's
 *         get_spline_interpolation_weights (the last = 1 - sum of the others).
 * Columns of `inner` are processed in chunks of up to CHUNK so that the
 * recursions run over rows of contiguous doubles (vectorisable, cache friendly). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_parallel.h"
#include "nnu_resample.h"
#include "nnu_resample_internal.h"

#define NPAD NNU_RS_NPAD  /* scipy _prepad_for_spline_filter for mode 'nearest' */
#define CHUNK NNU_RS_CHUNK
#define MAX_ORDER 5

typedef nnu_rs_axis_plan axis_plan;

/* scipy get_spline_interpolation_weights(x, order) */
static void spline_weights(double x, int order, double *w) {
    x -= floor((order & 1) ? x : x + 0.5);
    double y = x, z = 1.0 - x, t;
    switch (order) {
    case 0: break;
    case 1: w[0] = 1.0 - x; break;
    case 2:
        w[1] = 0.75 - x * x;
        y = 0.5 - x;
        w[0] = 0.5 * y * y;
        break;
    case 3:
        w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
        w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
        w[0] = z * z * z / 6.0;
        break;
    case 4:
        t = x * x;
        w[2] = t * (t * 0.25 - 0.625) + 115.0 / 192.0;
        y = 1.0 + x;
        w[1] = y * (y * (y * (5.0 - y) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
        w[3] = z * (z * (z * (5.0 - z) / 6.0 - 1.25) + 5.0 / 24.0) + 55.0 / 96.0;
        y = 0.5 - x;
        t = y * y;
        w[0] = t * t / 24.0;
        break;
    case 5:
        t = y * y;
        w[2] = t * (t * (0.25 - y / 12.0) - 0.5) + 0.55;
        t = z * z;
        w[3] = t * (t * (0.25 - z / 12.0) - 0.5) + 0.55;
        y += 1.0;
        w[1] = y * (y * (y * (y * (y / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
        z += 1.0;
        w[4] = z * (z * (z * (z * (z / 24.0 - 0.375) + 1.25) - 1.75) + 0.625) + 0.425;
        y = 1.0 - x;
        t = y * y;
        w[0] = y * t * t / 120.0;
        break;
    }
    w[order] = 1.0;
    for (int i = 0; i < order; i++) w[order] -= w[i];
}

static int filter_poles(int order, double *p) {
    switch (order) {
    case 2: p[0] = -0.171572875253809902396622551580603843; return 1;
    case 3: p[0] = -0.267949192431122706472553658494127633; return 1;
    case 4:
        p[0] = -0.361341225900220177092212841325675255;
        p[1] = -0.013725429297339121360331226939128204;
        return 2;
    case 5:
        p[0] = -0.430575347099973791851434783493520110;
        p[1] = -0.043096288203264653822712376822550182;
        return 2;
    }
    return 0;
}

void nnu_rs_plan_free(axis_plan *p) {
    free(p->idx);
    free(p->w);
}

nnu_status nnu_rs_plan_make(axis_plan *p, int64_t n_in, int64_t n_out, int order) {
    memset(p, 0, sizeof *p);
    NNU_CHECK(order >= 0 && order <= MAX_ORDER, NNU_STATUS_ERR_UNSUPPORTED,
              "resample: spline order %d not supported (0..5)", order);
    NNU_CHECK(n_in > 0 && n_out > 0, NNU_STATUS_ERR_SHAPE, "resample: axis %lld -> %lld",
              (long long)n_in, (long long)n_out);
    p->order = order;
    p->ntaps = order + 1;
    p->npad = order > 1 ? NPAD : 0;
    p->npoles = filter_poles(order, p->poles);
    p->n_in = n_in;
    p->n_out = n_out;
    p->len = n_in + 2 * p->npad;
    p->idx = malloc((size_t)(n_out * p->ntaps) * sizeof *p->idx);
    p->w = malloc((size_t)(n_out * p->ntaps) * sizeof *p->w);
    if (!p->idx || !p->w) {
        nnu_rs_plan_free(p);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "resample: out of memory for an axis plan");
    }
    double zf = (double)n_in / (double)n_out;
    for (int64_t o = 0; o < n_out; o++) {
        double c = (((double)o + 0.5) * zf) - 0.5;
        c += (double)p->npad;        /* no coordinate clamp: the taps are clamped below */
        int64_t start = (order & 1) ? (int64_t)floor(c) - order / 2 : (int64_t)floor(c + 0.5) - order / 2;
        double w[MAX_ORDER + 1];
        if (order == 0) w[0] = 1.0;
        else spline_weights(c, order, w);
        for (int k = 0; k < p->ntaps; k++) {
            int64_t i = start + k;
            i = i < 0 ? 0 : (i >= p->len ? p->len - 1 : i);
            p->idx[o * p->ntaps + k] = i;
            p->w[o * p->ntaps + k] = w[k];
        }
    }
    return NNU_STATUS_OK;
}

/* B-spline prefilter of `w` interleaved lines: c[k * w + j] for k < n, j < w
 * (scipy apply_filter with the 'reflect' initialisations it uses for 'nearest'). */
void nnu_rs_prefilter(double *c, int64_t n, int64_t w, const double *poles, int npoles) {
    double gain = 1.0;
    for (int q = 0; q < npoles; q++) gain *= (1.0 - poles[q]) * (1.0 - 1.0 / poles[q]);
    for (int64_t i = 0; i < n * w; i++) c[i] *= gain;
    if (n < 2) return;
    for (int q = 0; q < npoles; q++) {
        const double z = poles[q], zn = pow(z, (double)n);
        for (int64_t j = 0; j < w; j++) {          /* causal init (reflect) */
            double c0 = c[j], acc = c[j] + zn * c[(n - 1) * w + j], zi = z;
            for (int64_t i = 1; i < n; i++) {
                acc += zi * (c[i * w + j] + zn * c[(n - 1 - i) * w + j]);
                zi *= z;
            }
            c[j] = acc * (z / (1 - zn * zn)) + c0;
        }
        for (int64_t i = 1; i < n; i++) {
            double *r = c + i * w;
            const double *rp = r - w;
            for (int64_t j = 0; j < w; j++) r[j] += z * rp[j];
        }
        double *last = c + (n - 1) * w;                 /* anti-causal init (reflect) */
        for (int64_t j = 0; j < w; j++) last[j] *= z / (z - 1);
        for (int64_t i = n - 2; i >= 0; i--) {
            double *r = c + i * w;
            const double *rn = r + w;
            for (int64_t j = 0; j < w; j++) r[j] = z * (rn[j] - r[j]);
        }
    }
}

/* (outer, n_in, inner) -> (outer, n_out, inner) along the middle axis */
static nnu_status axis_pass(const double *in, double *out, int64_t outer, int64_t inner,
                            const axis_plan *p, int parallel) {
    int64_t chunks = (inner + CHUNK - 1) / CHUNK, tasks = outer * chunks;
    int64_t cw = inner < CHUNK ? inner : CHUNK;
    int oom = 0;
    int par = parallel && !nnu_parallel_in_worker() && tasks > 1 &&
              outer * inner * (p->n_in + p->n_out) > 32768;
    #pragma omp parallel if (par)
    {
        double *buf = p->order > 1 ? malloc((size_t)(p->len * cw) * sizeof *buf) : NULL;
        if (p->order > 1 && !buf) {
            #pragma omp atomic write
            oom = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            if (p->order > 1 && !buf) continue;
            int64_t ob = task / chunks, j0 = (task % chunks) * CHUNK;
            int64_t w = inner - j0 < CHUNK ? inner - j0 : CHUNK;
            const double *src = in + ob * p->n_in * inner + j0;
            double *dst = out + ob * p->n_out * inner + j0;
            const double *lines;        /* rows of the (padded) line block, stride `ls` */
            int64_t ls;
            if (p->order > 1) {
                for (int64_t k = 0; k < p->len; k++) {          /* edge padding */
                    int64_t s = k - p->npad;
                    s = s < 0 ? 0 : (s >= p->n_in ? p->n_in - 1 : s);
                    memcpy(buf + k * w, src + s * inner, (size_t)w * sizeof *buf);
                }
                nnu_rs_prefilter(buf, p->len, w, p->poles, p->npoles);
                lines = buf;
                ls = w;
            } else {
                lines = src;
                ls = inner;
            }
            for (int64_t o = 0; o < p->n_out; o++) {
                const int64_t *ix = p->idx + o * p->ntaps;
                const double *wt = p->w + o * p->ntaps;
                double *d = dst + o * inner;
                const double *r0 = lines + ix[0] * ls;
                for (int64_t j = 0; j < w; j++) d[j] = r0[j] * wt[0];
                for (int k = 1; k < p->ntaps; k++) {
                    const double *r = lines + ix[k] * ls;
                    const double wk = wt[k];
                    for (int64_t j = 0; j < w; j++) d[j] += r[j] * wk;
                }
            }
        }
        free(buf);
    }
    NNU_CHECK(!oom, NNU_STATUS_ERR_OOM, "resample: out of memory for line buffers");
    return NNU_STATUS_OK;
}

nnu_status nnu_resize_axis_f64(const double *in, const int64_t shape[3], int axis, int64_t n_out,
                               int order, double *out, int parallel) {
    NNU_CHECK(axis >= 0 && axis < 3, NNU_STATUS_ERR_ARG, "resize_axis: axis %d", axis);
    axis_plan p;
    NNU_TRY(nnu_rs_plan_make(&p, shape[axis], n_out, order));
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++) outer *= shape[a];
    for (int a = axis + 1; a < 3; a++) inner *= shape[a];
    nnu_status st = axis_pass(in, out, outer, inner, &p, parallel);
    nnu_rs_plan_free(&p);
    return st;
}

/* Order 1 evaluated like scipy's NI_ZoomShift, term by term: for each output
 * voxel t = sum over the 8 taps (z outer, x inner) of ((v * w_z) * w_y) * w_x.
 * The separable passes round differently (~1e-16), which can flip a float16
 * result that sits on a rounding tie (the logits at export are float16). */
static nnu_status resize_linear_exact(const double *in, const int64_t in_shape[3], double *out,
                                      const int64_t out_shape[3], int parallel) {
    axis_plan p[3];
    int made = 0;
    nnu_status st = NNU_STATUS_OK;
    for (; made < 3 && !st; made++) st = nnu_rs_plan_make(&p[made], in_shape[made], out_shape[made], 1);
    if (st) {
        for (int a = 0; a < made - 1; a++) nnu_rs_plan_free(&p[a]);
        return st;
    }
    const int64_t H = in_shape[1], W = in_shape[2], OH = out_shape[1], OW = out_shape[2];
    int par = parallel && !nnu_parallel_in_worker() && out_shape[0] > 1;
    #pragma omp parallel for schedule(static) if (par)
    for (int64_t z = 0; z < out_shape[0]; z++)
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x = 0; x < OW; x++) {
                double t = 0.0;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        const double *row = in + (p[0].idx[2 * z + a] * H + p[1].idx[2 * y + b]) * W;
                        for (int c = 0; c < 2; c++)
                            t += ((row[p[2].idx[2 * x + c]] * p[0].w[2 * z + a]) * p[1].w[2 * y + b]) *
                                 p[2].w[2 * x + c];
                    }
                out[(z * OH + y) * OW + x] = t;
            }
    for (int a = 0; a < 3; a++) nnu_rs_plan_free(&p[a]);
    return NNU_STATUS_OK;
}

nnu_status nnu_resize_f64(const double *in, const int64_t in_shape[3], double *out,
                          const int64_t out_shape[3], int order, int clip, int parallel) {
    int64_t n_in = in_shape[0] * in_shape[1] * in_shape[2];
    int64_t n_out = out_shape[0] * out_shape[1] * out_shape[2];
    NNU_CHECK(n_in > 0 && n_out > 0, NNU_STATUS_ERR_SHAPE, "resize: empty volume");
    double lo = INFINITY, hi = -INFINITY;
    if (clip)
        for (int64_t i = 0; i < n_in; i++) {
            lo = in[i] < lo ? in[i] : lo;
            hi = in[i] > hi ? in[i] : hi;
        }
    if (order == 1) {
        NNU_TRY(resize_linear_exact(in, in_shape, out, out_shape, parallel));
        if (clip)
            for (int64_t i = 0; i < n_out; i++) out[i] = out[i] < lo ? lo : (out[i] > hi ? hi : out[i]);
        return NNU_STATUS_OK;
    }
    /* axes that change, shrinking ones first (less work for the later passes) */
    int axes[3], na = 0;
    for (int a = 0; a < 3; a++)
        if (in_shape[a] != out_shape[a]) axes[na++] = a;
    for (int i = 0; i < na; i++)
        for (int k = i + 1; k < na; k++) {
            double ri = (double)out_shape[axes[i]] / (double)in_shape[axes[i]];
            double rk = (double)out_shape[axes[k]] / (double)in_shape[axes[k]];
            if (rk < ri) { int t = axes[i]; axes[i] = axes[k]; axes[k] = t; }
        }
    if (na == 0) {
        memcpy(out, in, (size_t)n_in * sizeof *out);
        return NNU_STATUS_OK;
    }
    int64_t cur[3] = {in_shape[0], in_shape[1], in_shape[2]};
    const double *src = in;
    double *tmp[2] = {NULL, NULL};
    nnu_status st = NNU_STATUS_OK;
    for (int i = 0; i < na && !st; i++) {
        int a = axes[i];
        int64_t nxt[3] = {cur[0], cur[1], cur[2]};
        nxt[a] = out_shape[a];
        double *dst = out;
        if (i < na - 1) {
            dst = tmp[i & 1] = malloc((size_t)(nxt[0] * nxt[1] * nxt[2]) * sizeof *dst);
            if (!dst) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "resize: out of memory"); break; }
        }
        st = nnu_resize_axis_f64(src, cur, a, out_shape[a], order, dst, parallel);
        if (i > 0) { free(tmp[(i - 1) & 1]); tmp[(i - 1) & 1] = NULL; }
        src = dst;
        memcpy(cur, nxt, sizeof cur);
    }
    free(tmp[0]);
    free(tmp[1]);
    if (st) return st;
    if (clip && order > 0)
        for (int64_t i = 0; i < n_out; i++) out[i] = out[i] < lo ? lo : (out[i] > hi ? hi : out[i]);
    return NNU_STATUS_OK;
}
