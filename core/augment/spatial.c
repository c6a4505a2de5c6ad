/* spatial.c: the spatial transform (nnunet-behaviour.md §8.2 step 1, §8.1) in one
 * pass over the output voxels.
 *
 * For output voxel o (per transformed axis a):
 *   u_a = o_a − (p_a − 1)/2 + disp_a(o)        centred grid (+ elastic displacement)
 *   c   = A·u + (S_in − 1)/2                   source position in the input
 * A = Rz·Ry·Rx·S (3-D) or R·S (2-D, acting on (H, W) of every slice). The data are
 * sampled (bi/tri)linearly with taps outside the input counting as 0; the seg gets,
 * among the labels of the taps, the one with the largest interpolated one-hot
 * weight (the reference interpolates every label's mask ×1000 and compares in
 * float16; ties → lowest label), or border_seg when c leaves [0, S_in − 1].
 * Positions within 1e-9 of an integer are snapped to it, so that exact 90°
 * rotations and integer shifts reproduce the input values exactly.
 *
 * Elastic displacement (batchgenerators v1 elastic_deform_coordinates, used by the
 * 2018 nnU-Net): per transformed axis, U(−1, 1) white noise on the output grid,
 * scipy gaussian_filter(σ, truncate 4, mode 'constant'), times alpha (voxels).
 *
 * Parallelism: OpenMP over output slices when the thread allows it (see
 * nnu_aug_set_omp); no allocation except the elastic field in the scratch ws. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aug_internal.h"
#include "nnu_dtype.h"

#define SNAP_EPS 1e-9   /* |c − round(c)| below this: c = round(c) (float noise of cos(π/2)) */
#define EDGE_EPS 1e-5   /* c within this outside [0, S−1] still counts as inside */

void nnu_aug_spatial_params_init(nnu_aug_spatial_params *p) {
    memset(p, 0, sizeof *p);
    p->dim = 3;
    p->scale[0] = p->scale[1] = p->scale[2] = 1.0;
    p->border_seg = -1;
}

static void matmul3(const double *a, const double *b, double *out) {
    double t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    memcpy(out, t, sizeof t);
}

void nnu_aug_spatial_matrix(const nnu_aug_spatial_params *p, double A[9]) {
    if (p->dim == 2) {
        /* R·S on (H, W): [[c, −s], [s, c]]·diag(s1, s2), embedded at rows/cols 1..2 */
        double c = cos(p->angle[2]), s = sin(p->angle[2]);
        memset(A, 0, 9 * sizeof *A);
        A[4] = c * p->scale[1]; A[5] = -s * p->scale[2];
        A[7] = s * p->scale[1]; A[8] = c * p->scale[2];
        return;
    }
    double cx = cos(p->angle[0]), sx = sin(p->angle[0]), cy = cos(p->angle[1]), sy = sin(p->angle[1]);
    double cz = cos(p->angle[2]), sz = sin(p->angle[2]);
    double Rx[9] = {1, 0, 0, 0, cx, -sx, 0, sx, cx};
    double Ry[9] = {cy, 0, sy, 0, 1, 0, -sy, 0, cy};
    double Rz[9] = {cz, -sz, 0, sz, cz, 0, 0, 0, 1};
    double S[9] = {p->scale[0], 0, 0, 0, p->scale[1], 0, 0, 0, p->scale[2]};
    matmul3(Rz, Ry, A);
    matmul3(A, Rx, A);
    matmul3(A, S, A);
}

/* ---- get_patch_size ---- */

void nnu_aug_initial_patch_size(int ndim, const int64_t *patch, const double rot_max[3], double scale_min,
                                int dummy_2d, int64_t *out) {
    const double lim = 90.0 / 360.0 * 2.0 * M_PI;
    double r[3], v[3], best[3];
    for (int i = 0; i < 3; i++) r[i] = fmin(lim, fabs(rot_max[i]));
    for (int i = 0; i < ndim; i++) v[i] = best[i] = (double)patch[i];
    if (ndim == 3) {
        for (int k = 0; k < 3; k++) {
            double c = cos(r[k]), s = sin(r[k]), R[9];
            if (k == 0) { double m[9] = {1, 0, 0, 0, c, -s, 0, s, c}; memcpy(R, m, sizeof m); }
            else if (k == 1) { double m[9] = {c, 0, s, 0, 1, 0, -s, 0, c}; memcpy(R, m, sizeof m); }
            else { double m[9] = {c, -s, 0, s, c, 0, 0, 0, 1}; memcpy(R, m, sizeof m); }
            for (int j = 0; j < 3; j++) {   /* row vector v times R */
                double x = fabs(v[0] * R[j] + v[1] * R[3 + j] + v[2] * R[6 + j]);
                if (x > best[j]) best[j] = x;
            }
        }
    } else {
        double c = cos(r[0]), s = sin(r[0]);
        double x0 = fabs(v[0] * c + v[1] * s), x1 = fabs(-v[0] * s + v[1] * c);
        if (x0 > best[0]) best[0] = x0;
        if (x1 > best[1]) best[1] = x1;
    }
    for (int i = 0; i < ndim; i++) out[i] = (int64_t)(best[i] / scale_min);
    if (dummy_2d && ndim == 3) out[0] = patch[0];
}

/* ---- plain centre crop ---- */

static void centre_crop(const nnu_aug_buf *in, nnu_aug_buf *out, int border_seg) {
    const int64_t *si = in->shape, *so = out->shape;
    int64_t start[3], nin = si[0] * si[1] * si[2], nout = so[0] * so[1] * so[2];
    for (int a = 0; a < 3; a++) start[a] = si[a] / 2 - so[a] / 2;
    /* valid output w range: 0 <= start2 + w < si2 */
    int64_t w0 = start[2] < 0 ? -start[2] : 0, w1 = si[2] - start[2];
    if (w1 > so[2]) w1 = so[2];
    for (int64_t d = 0; d < so[0]; d++)
        for (int64_t h = 0; h < so[1]; h++) {
            int64_t sd = start[0] + d, sh = start[1] + h;
            int inside = sd >= 0 && sd < si[0] && sh >= 0 && sh < si[1] && w1 > w0;
            int64_t orow = (d * so[1] + h) * so[2], irow = (sd * si[1] + sh) * si[2] + start[2];
            for (int c = 0; c < in->c; c++) {
                float *o = out->data + c * nout + orow;
                if (!inside) { memset(o, 0, (size_t)so[2] * sizeof *o); continue; }
                for (int64_t w = 0; w < w0; w++) o[w] = 0.0f;
                memcpy(o + w0, in->data + c * nin + irow + w0, (size_t)(w1 - w0) * sizeof *o);
                for (int64_t w = w1; w < so[2]; w++) o[w] = 0.0f;
            }
            for (int c = 0; c < in->cs; c++) {
                int16_t *o = out->seg + c * nout + orow;
                for (int64_t w = 0; w < so[2]; w++)
                    o[w] = (inside && w >= w0 && w < w1) ? in->seg[c * nin + irow + w] : (int16_t)border_seg;
            }
        }
}

/* ---- elastic field ---- */

/* field[a][...] for the nd transformed axes on grid shape g (3 entries, D = 1 in
 * 2-D): alpha · gaussian_filter(U(−1, 1), sigma, mode 'constant'). */
static nnu_status elastic_field(int nd, const int64_t g[3], double alpha, double sigma, nnu_rng *rng,
                                nnu_aug_ws *ws, float **field_out) {
    int64_t n = g[0] * g[1] * g[2], gmax = g[0] > g[1] ? g[0] : g[1];
    if (g[2] > gmax) gmax = g[2];
    int radius = (int)(4.0 * sigma + 0.5);   /* scipy: int(truncate * sd + 0.5) */
    size_t need = (size_t)(nd * n) + 2 * (size_t)(2 * radius + 1) + 2 * aug_filter_scratch(gmax, radius) + 8;
    float *buf;
    NNU_TRY(nnu_aug_ws_get(ws, need, &buf));
    float *field = buf;
    double *w = (double *)(void *)(((uintptr_t)(buf + nd * n) + 7) & ~(uintptr_t)7);
    double *line = w + 2 * radius + 1;
    aug_gauss_kernel(sigma, radius, w);
    for (int a = 0; a < nd; a++) {
        float *f = field + a * n;
        for (int64_t i = 0; i < n; i++) f[i] = (float)(nnu_rng_uniform(rng) * 2.0 - 1.0);
        for (int ax = 0; ax < 3; ax++)
            if (g[ax] > 1) aug_filter_axis(f, g, ax, w, radius, AUG_PAD_ZERO, line);
        for (int64_t i = 0; i < n; i++) f[i] = (float)(f[i] * alpha);
    }
    *field_out = field;
    return NNU_STATUS_OK;
}

/* ---- interpolation ---- */

typedef struct geom {
    double A[9];
    double ci[3], co[3];     /* (S_in − 1)/2, (p − 1)/2 */
    int64_t si[3], so[3];
    int    nd;               /* transformed axes: 3, or 2 (H, W) */
    const float *field;      /* nd × (grid) or NULL; 2-D grid = (Ho, Wo) */
    int    seg_nearest, border_seg;
} geom;

/* floor without a libm call (the baseline x86-64 target has no roundsd) */
static inline int64_t ifloor(double v) {
    int64_t i = (int64_t)v;
    return i - (v < (double)i);
}

static inline double snap(double c) {
    double r = (double)ifloor(c + 0.5);
    return fabs(c - r) < SNAP_EPS ? r : c;
}

/* Picks the label with the largest summed weight among n taps (ties → lowest),
 * comparing weight·1000 in float16 as the reference does. */
static inline int16_t seg_vote(const int16_t *lab, const float *w, int n) {
    int all_same = 1;
    for (int k = 1; k < n; k++) all_same &= lab[k] == lab[0];
    if (all_same) return lab[0];
    int16_t ul[8];
    float uw[8];
    int nu = 0;
    for (int k = 0; k < n; k++) {
        int j = 0;
        while (j < nu && ul[j] != lab[k]) j++;
        if (j == nu) { ul[nu] = lab[k]; uw[nu] = 0.0f; nu++; }
        uw[j] += w[k];
    }
    int16_t best = 0;
    uint16_t bw = 0;
    int have = 0;
    for (int j = 0; j < nu; j++) {
        uint16_t h = nnu_f32_to_f16(uw[j] * 1000.0f);   /* non-negative: bits order as values */
        if (!have || h > bw || (h == bw && ul[j] < best)) { best = ul[j]; bw = h; have = 1; }
    }
    return best;
}

/* Trilinear weights of tap k = (d, h, w) bits (k>>2, k>>1, k) & 1. */
static inline void tap_weights(const float f[3], float w[8]) {
    float a0 = 1.0f - f[0], a1 = f[0], b0 = 1.0f - f[1], b1 = f[1], c0 = 1.0f - f[2], c1 = f[2];
    w[0] = a0 * b0 * c0; w[1] = a0 * b0 * c1; w[2] = a0 * b1 * c0; w[3] = a0 * b1 * c1;
    w[4] = a1 * b0 * c0; w[5] = a1 * b0 * c1; w[6] = a1 * b1 * c0; w[7] = a1 * b1 * c1;
}

/* Interior voxel (all 8 taps inside; the common case): nested lerps for the data,
 * the seg vote only where the taps disagree. base = offset of tap 0. */
static inline void sample_interior(const nnu_aug_buf *in, nnu_aug_buf *out, const geom *g, int64_t base,
                                   const float f[3], int64_t oo, int64_t nin, int64_t nout) {
    const int64_t sh = g->si[2], sd = g->si[1] * g->si[2];
    for (int ch = 0; ch < in->c; ch++) {
        const float *s = in->data + ch * nin + base;
        float a = s[0] + f[2] * (s[1] - s[0]), b = s[sh] + f[2] * (s[sh + 1] - s[sh]);
        float c = s[sd] + f[2] * (s[sd + 1] - s[sd]), e = s[sd + sh] + f[2] * (s[sd + sh + 1] - s[sd + sh]);
        float ab = a + f[1] * (b - a), ce = c + f[1] * (e - c);
        out->data[ch * nout + oo] = ab + f[0] * (ce - ab);
    }
    for (int ch = 0; ch < in->cs; ch++) {
        const int16_t *s = in->seg + ch * nin + base;
        int16_t l[8] = {s[0], s[1], s[sh], s[sh + 1], s[sd], s[sd + 1], s[sd + sh], s[sd + sh + 1]};
        int16_t lab;
        if (g->seg_nearest) {
            lab = l[(f[0] >= 0.5f) << 2 | (f[1] >= 0.5f) << 1 | (f[2] >= 0.5f)];
        } else if (l[0] == l[1] && l[0] == l[2] && l[0] == l[3] && l[0] == l[4] && l[0] == l[5] && l[0] == l[6] &&
                   l[0] == l[7]) {
            lab = l[0];
        } else {
            float w[8], tw[8];
            int16_t tl[8];
            int nt = 0;
            tap_weights(f, w);
            for (int k = 0; k < 8; k++)
                if (w[k] > 0.0f) { tl[nt] = l[k]; tw[nt] = w[k]; nt++; }
            lab = seg_vote(tl, tw, nt);
        }
        out->seg[ch * nout + oo] = lab;
    }
}

/* Interior voxel of the slice-wise 2-D mode: bilinear in (H, W) of slice d. */
static inline void sample_interior2(const nnu_aug_buf *in, nnu_aug_buf *out, const geom *g, int64_t base,
                                    const float f[3], int64_t oo, int64_t nin, int64_t nout) {
    const int64_t sh = g->si[2];
    for (int ch = 0; ch < in->c; ch++) {
        const float *s = in->data + ch * nin + base;
        float a = s[0] + f[2] * (s[1] - s[0]), b = s[sh] + f[2] * (s[sh + 1] - s[sh]);
        out->data[ch * nout + oo] = a + f[1] * (b - a);
    }
    for (int ch = 0; ch < in->cs; ch++) {
        const int16_t *s = in->seg + ch * nin + base;
        int16_t l[4] = {s[0], s[1], s[sh], s[sh + 1]};
        int16_t lab;
        if (g->seg_nearest) {
            lab = l[(f[1] >= 0.5f) << 1 | (f[2] >= 0.5f)];
        } else if (l[0] == l[1] && l[0] == l[2] && l[0] == l[3]) {
            lab = l[0];
        } else {
            float w[4] = {(1.0f - f[1]) * (1.0f - f[2]), (1.0f - f[1]) * f[2], f[1] * (1.0f - f[2]), f[1] * f[2]};
            float tw[4];
            int16_t tl[4];
            int nt = 0;
            for (int k = 0; k < 4; k++)
                if (w[k] > 0.0f) { tl[nt] = l[k]; tw[nt] = w[k]; nt++; }
            lab = seg_vote(tl, tw, nt);
        }
        out->seg[ch * nout + oo] = lab;
    }
}

/* Border voxel: taps outside the input count as 0 (data) and are skipped (seg);
 * the seg is border_seg when the position lies outside [0, S−1]. */
static void sample_border(const nnu_aug_buf *in, nnu_aug_buf *out, const geom *g, const int64_t i0[3],
                          const float f[3], int inside, int64_t oo, int64_t nin, int64_t nout) {
    const int64_t sh = g->si[2], sd = g->si[1] * g->si[2];
    float w[8];
    int64_t off[8];
    int valid[8];
    tap_weights(f, w);
    for (int k = 0; k < 8; k++) {
        int64_t d = i0[0] + ((k >> 2) & 1), h = i0[1] + ((k >> 1) & 1), x = i0[2] + (k & 1);
        valid[k] = d >= 0 && d < g->si[0] && h >= 0 && h < g->si[1] && x >= 0 && x < g->si[2];
        off[k] = valid[k] ? d * sd + h * sh + x : 0;
    }
    for (int ch = 0; ch < in->c; ch++) {
        const float *src = in->data + ch * nin;
        float v = 0.0f;
        for (int k = 0; k < 8; k++)
            if (valid[k]) v += w[k] * src[off[k]];
        out->data[ch * nout + oo] = v;
    }
    for (int ch = 0; ch < in->cs; ch++) {
        const int16_t *src = in->seg + ch * nin;
        int16_t lab;
        if (!inside) {
            lab = (int16_t)g->border_seg;
        } else if (g->seg_nearest) {
            int64_t d = i0[0] + (f[0] >= 0.5f), h = i0[1] + (f[1] >= 0.5f), x = i0[2] + (f[2] >= 0.5f);
            lab = src[d * sd + h * sh + x];
        } else {
            int16_t tl[8];
            float tw[8];
            int nt = 0;
            for (int k = 0; k < 8; k++)
                if (valid[k] && w[k] > 0.0f) { tl[nt] = src[off[k]]; tw[nt] = w[k]; nt++; }
            lab = seg_vote(tl, tw, nt);
        }
        out->seg[ch * nout + oo] = lab;
    }
}

/* One output voxel at source position c[3] (input indices). */
static inline void sample_voxel(const nnu_aug_buf *in, nnu_aug_buf *out, const geom *g, double c0, double c1,
                                double c2, int64_t oo, int64_t nin, int64_t nout) {
    c0 = snap(c0);
    c1 = snap(c1);
    c2 = snap(c2);
    int64_t i0[3] = {ifloor(c0), ifloor(c1), ifloor(c2)};
    float f[3] = {(float)(c0 - (double)i0[0]), (float)(c1 - (double)i0[1]), (float)(c2 - (double)i0[2])};
    if (i0[1] >= 0 && i0[1] + 1 < g->si[1] && i0[2] >= 0 && i0[2] + 1 < g->si[2]) {
        int64_t base = (i0[0] * g->si[1] + i0[1]) * g->si[2] + i0[2];
        if (g->nd == 2) {   /* c0 is the output slice itself */
            sample_interior2(in, out, g, base, f, oo, nin, nout);
            return;
        }
        if (i0[0] >= 0 && i0[0] + 1 < g->si[0]) {
            sample_interior(in, out, g, base, f, oo, nin, nout);
            return;
        }
    }
    /* within EDGE_EPS outside the border: on the border */
    double c[3] = {c0, c1, c2};
    int inside = 1;
    for (int a = 0; a < 3; a++) {
        double v = c[a], hi = (double)(g->si[a] - 1);
        if (v < 0.0 && v > -EDGE_EPS) v = 0.0;
        if (v > hi && v < hi + EDGE_EPS) v = hi;
        if (v < 0.0 || v > hi) inside = 0;
        i0[a] = ifloor(v);
        f[a] = (float)(v - (double)i0[a]);
    }
    sample_border(in, out, g, i0, f, inside, oo, nin, nout);
}

/* Output tiles of TD × TH × TW voxels keep the input footprint of a tile in cache
 * (a rotated row otherwise strides through whole input planes). */
#define TD 8
#define TH 8
#define TW 32

static void resample(const nnu_aug_buf *in, nnu_aug_buf *out, const geom *g) {
    const int64_t *so = g->so;
    int64_t nin = g->si[0] * g->si[1] * g->si[2], nout = so[0] * so[1] * so[2];
    int64_t ngrid = g->nd == 3 ? nout : so[1] * so[2];
    int64_t nd_t = (so[0] + TD - 1) / TD, nh_t = (so[1] + TH - 1) / TH, nw_t = (so[2] + TW - 1) / TW;
    const double *A = g->A;
    int omp = nnu_aug_omp_allowed() && nout > 32768;
#pragma omp parallel for schedule(dynamic, 1) if (omp)
    for (int64_t t = 0; t < nd_t * nh_t * nw_t; t++) {
        int64_t d0 = t / (nh_t * nw_t) * TD, h0 = t / nw_t % nh_t * TH, x0 = t % nw_t * TW;
        int64_t d1 = d0 + TD < so[0] ? d0 + TD : so[0], h1 = h0 + TH < so[1] ? h0 + TH : so[1];
        int64_t x1 = x0 + TW < so[2] ? x0 + TW : so[2];
        for (int64_t d = d0; d < d1; d++)
            for (int64_t h = h0; h < h1; h++) {
                /* c(x) = A·(d − co0, h − co1, x − co2 [+ field]) + ci */
                double u0 = (double)d - g->co[0], u1 = (double)h - g->co[1];
                int64_t row = (d * so[1] + h) * so[2];
                const float *f0 = NULL, *f1 = NULL, *f2 = NULL;
                if (g->field && g->nd == 3) {
                    f0 = g->field + row; f1 = f0 + ngrid; f2 = f1 + ngrid;
                } else if (g->field) {
                    f1 = g->field + h * so[2]; f2 = f1 + ngrid;
                }
                for (int64_t x = x0; x < x1; x++) {
                    double v0 = u0, v1 = u1, v2 = (double)x - g->co[2];
                    if (f1) {
                        if (f0) v0 += f0[x];
                        v1 += f1[x];
                        v2 += f2[x];
                    }
                    if (g->nd == 3)
                        sample_voxel(in, out, g, A[0] * v0 + A[1] * v1 + A[2] * v2 + g->ci[0],
                                     A[3] * v0 + A[4] * v1 + A[5] * v2 + g->ci[1],
                                     A[6] * v0 + A[7] * v1 + A[8] * v2 + g->ci[2], row + x, nin, nout);
                    else   /* the slice passes through (D_in == D_out) */
                        sample_voxel(in, out, g, (double)d, A[4] * v1 + A[5] * v2 + g->ci[1],
                                     A[7] * v1 + A[8] * v2 + g->ci[2], row + x, nin, nout);
                }
            }
    }
}

nnu_status nnu_aug_spatial(const nnu_aug_buf *in, nnu_aug_buf *out, const nnu_aug_spatial_params *p,
                           nnu_rng *rng, nnu_aug_ws *ws) {
    NNU_CHECK(in && out && p && in->data && out->data, NNU_STATUS_ERR_ARG, "spatial: NULL buffer or params");
    NNU_CHECK(p->dim == 2 || p->dim == 3, NNU_STATUS_ERR_ARG, "spatial: dim %d (2 or 3)", p->dim);
    NNU_CHECK(in->c == out->c && in->cs == out->cs && (in->cs == 0 || (in->seg && out->seg)),
              NNU_STATUS_ERR_SHAPE, "spatial: channels in (%d data, %d seg) vs out (%d, %d)", in->c, in->cs,
              out->c, out->cs);
    for (int a = 0; a < 3; a++)
        NNU_CHECK(in->shape[a] >= 1 && out->shape[a] >= 1, NNU_STATUS_ERR_SHAPE,
                  "spatial: empty axis %d (in %lld, out %lld)", a, (long long)in->shape[a], (long long)out->shape[a]);
    NNU_CHECK(p->dim == 3 || in->shape[0] == out->shape[0], NNU_STATUS_ERR_SHAPE,
              "spatial: 2-D mode keeps axis 0, but in has %lld slices and out %lld", (long long)in->shape[0],
              (long long)out->shape[0]);
    if (!p->affine && !p->elastic) {
        centre_crop(in, out, p->border_seg);
        return NNU_STATUS_OK;
    }
    NNU_CHECK(!p->elastic || (rng && ws && p->sigma > 0.0), NNU_STATUS_ERR_ARG,
              "spatial: elastic deformation needs an rng, scratch and sigma > 0 (sigma %g)", p->sigma);
    geom g;
    memset(&g, 0, sizeof g);
    g.nd = p->dim;
    g.seg_nearest = p->seg_nearest;
    g.border_seg = p->border_seg;
    if (p->affine) {
        nnu_aug_spatial_matrix(p, g.A);
    } else {
        double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
        memcpy(g.A, I, sizeof I);
    }
    for (int a = 0; a < 3; a++) {
        g.si[a] = in->shape[a];
        g.so[a] = out->shape[a];
        g.ci[a] = (double)(in->shape[a] - 1) / 2.0;
        g.co[a] = (double)(out->shape[a] - 1) / 2.0;
    }
    if (p->elastic) {
        int64_t grid[3] = {p->dim == 3 ? out->shape[0] : 1, out->shape[1], out->shape[2]};
        float *field;
        NNU_TRY(elastic_field(p->dim, grid, p->alpha, p->sigma, rng, ws, &field));
        g.field = field;
    }
    resample(in, out, &g);
    return NNU_STATUS_OK;
}
