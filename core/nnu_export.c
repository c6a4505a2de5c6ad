/* nnu_export.c: resample back, argmax / regions, un-crop, transpose back; fold
 * ensemble in float16 (see nnu_export.h). */
#include "nnu_export.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_dtype.h"
#include "nnu_interrupt.h"
#include "nnu_parallel.h"

nnu_export_opts nnu_export_opts_default(void) {
    nnu_export_opts o;
    memset(&o, 0, sizeof o);
    o.resample = nnu_resample_opts_probabilities();
    for (int a = 0; a < 3; a++) o.transpose_forward[a] = a;
    o.n_foreground_labels = 1;
    return o;
}

/* ---- float loads with strides ---- */

static inline float load_f(nnu_dtype dt, const char *p) {
    if (dt == NNU_DTYPE_F16) return nnu_f16_to_f32(*(const uint16_t *)p);
    if (dt == NNU_DTYPE_F32) return *(const float *)p;
    return (float)nnu_dtype_load(dt, p);
}

/* Calls fn(elem_a, elem_b, ctx) for every element of two same-shape tensors
 * (strided, ndim <= NNU_MAX_DIMS), in C order. */
typedef void (*pair_fn)(char *a, const char *b, void *ctx);
static void foreach_pair(nnu_tensor *a, const nnu_tensor *b, pair_fn fn, void *ctx) {
    int nd = a->ndim;
    int64_t idx[NNU_MAX_DIMS] = {0};
    size_t ea = nnu_dtype_size(a->dtype), eb = b ? nnu_dtype_size(b->dtype) : 0;
    char *pa = nnu_tensor_data(a);
    const char *pb = b ? nnu_tensor_data(b) : NULL;
    int64_t n = nnu_tensor_numel(a);
    if (n == 0) return;
    int64_t inner = nd > 0 ? a->shape[nd - 1] : 1;
    int64_t sa = nd > 0 ? a->stride[nd - 1] : 0, sb = (b && nd > 0) ? b->stride[nd - 1] : 0;
    for (int64_t done = 0; done < n; done += inner) {
        int64_t oa = 0, ob = 0;
        for (int d = 0; d < nd - 1; d++) {
            oa += idx[d] * a->stride[d];
            if (b) ob += idx[d] * b->stride[d];
        }
        for (int64_t i = 0; i < inner; i++)
            fn(pa + (size_t)(oa + i * sa) * ea, pb ? pb + (size_t)(ob + i * sb) * eb : NULL, ctx);
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < a->shape[d]) break;
            idx[d] = 0;
        }
    }
}

typedef struct { nnu_dtype da, db; float div; } arith_ctx;

static void add_fn(char *a, const char *b, void *vctx) {
    arith_ctx *c = vctx;
    float v = load_f(c->da, a) + load_f(c->db, b);      /* exact in f32 for two f16 values */
    if (c->da == NNU_DTYPE_F16) *(uint16_t *)a = nnu_f32_to_f16(v);
    else *(float *)a = v;
}

static void div_fn(char *a, const char *b, void *vctx) {
    (void)b;
    arith_ctx *c = vctx;
    float v = load_f(c->da, a) / c->div;
    if (c->da == NNU_DTYPE_F16) *(uint16_t *)a = nnu_f32_to_f16(v);
    else *(float *)a = v;
}

nnu_status nnu_export_accumulate(nnu_tensor *acc, const nnu_tensor *x) {
    char b1[64], b2[64];
    NNU_CHECK(acc && x, NNU_STATUS_ERR_ARG, "export accumulate: NULL argument");
    NNU_CHECK(acc->dtype == NNU_DTYPE_F16 || acc->dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_SHAPE,
              "export accumulate: accumulator must be f16 or f32, got %s", nnu_dtype_name(acc->dtype));
    NNU_CHECK(nnu_dtype_is_float(x->dtype), NNU_STATUS_ERR_SHAPE,
              "export accumulate: logits must be a float tensor, got %s", nnu_dtype_name(x->dtype));
    NNU_CHECK(nnu_tensor_same_shape(acc, x), NNU_STATUS_ERR_SHAPE,
              "export accumulate: shapes differ: %s vs %s", nnu_tensor_shape_str(acc, b1, sizeof b1),
              nnu_tensor_shape_str(x, b2, sizeof b2));
    arith_ctx c = {acc->dtype, x->dtype, 1.0f};
    foreach_pair(acc, x, add_fn, &c);
    return NNU_STATUS_OK;
}

nnu_status nnu_export_divide(nnu_tensor *acc, int n) {
    NNU_CHECK(acc, NNU_STATUS_ERR_ARG, "export divide: NULL argument");
    NNU_CHECK(acc->dtype == NNU_DTYPE_F16 || acc->dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_SHAPE,
              "export divide: accumulator must be f16 or f32, got %s", nnu_dtype_name(acc->dtype));
    NNU_CHECK(n >= 1, NNU_STATUS_ERR_ARG, "export divide: n must be >= 1, got %d", n);
    if (n == 1) return NNU_STATUS_OK;
    arith_ctx c = {acc->dtype, acc->dtype, (float)n};
    foreach_pair(acc, NULL, div_fn, &c);
    return NNU_STATUS_OK;
}

/* ---- step 1 ---- */

static nnu_status check_props(const nnu_preproc_props *p) {
    for (int a = 0; a < 3; a++) {
        NNU_CHECK(p->shape_after_cropping[a] > 0 && p->shape_before_cropping[a] > 0, NNU_STATUS_ERR_SHAPE,
                  "export: properties hold an empty shape on axis %d", a);
        NNU_CHECK(p->bbox[a][0] >= 0 && p->bbox[a][1] <= p->shape_before_cropping[a] &&
                      p->bbox[a][1] - p->bbox[a][0] == p->shape_after_cropping[a],
                  NNU_STATUS_ERR_SHAPE,
                  "export: crop box [%lld, %lld) on axis %d does not fit shape %lld / cropped shape %lld",
                  (long long)p->bbox[a][0], (long long)p->bbox[a][1], a, (long long)p->shape_before_cropping[a],
                  (long long)p->shape_after_cropping[a]);
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_export_resample_logits(const nnu_tensor *logits, const nnu_preproc_props *props,
                                      const nnu_resample_opts *opts, nnu_tensor **out) {
    char b[64];
    NNU_CHECK(logits && props && out, NNU_STATUS_ERR_ARG, "export: NULL argument");
    NNU_CHECK(logits->ndim == 4, NNU_STATUS_ERR_SHAPE, "export: logits must be (K, z, y, x), got %s",
              nnu_tensor_shape_str(logits, b, sizeof b));
    NNU_TRY(check_props(props));
    nnu_resample_opts o = opts ? *opts : nnu_resample_opts_probabilities();
    o.is_seg = 0;
    /* current = configuration spacing, new = original spacing (both transposed): §9.3 step 1 */
    return nnu_resample_to_shape(logits, props->shape_after_cropping, props->target_spacing,
                                 props->spacing_transposed, &o, out);
}

/* ---- steps 2-4 ---- */

static int is_permutation(const int t[3]) {
    int seen[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        if (t[a] < 0 || t[a] > 2 || seen[t[a]]) return 0;
        seen[t[a]] = 1;
    }
    return 1;
}

/* Transposes a contiguous tensor whose last three axes are in transposed order
 * back to the original order; steals t, returns a contiguous tensor. */
static nnu_status transpose_back(nnu_tensor *t, const int tf[3], nnu_tensor **out) {
    *out = NULL;
    int back[3];
    for (int a = 0; a < 3; a++) back[tf[a]] = a;                  /* argsort(transpose_forward) */
    if (back[0] == 0 && back[1] == 1 && back[2] == 2) { *out = t; return NNU_STATUS_OK; }
    int lead = t->ndim - 3, perm[NNU_MAX_DIMS];
    for (int a = 0; a < lead; a++) perm[a] = a;
    for (int a = 0; a < 3; a++) perm[lead + a] = lead + back[a];
    nnu_tensor *v = NULL;
    nnu_status st = nnu_tensor_view_permute(t, perm, &v);
    if (!st) st = nnu_tensor_clone(v, out);
    nnu_tensor_release(v);
    nnu_tensor_release(t);
    return st;
}

/* probabilities (K, Vc) f32 from logits; softmax over K (max-subtracted, as
 * torch) or sigmoid per channel */
static void nonlin(const nnu_tensor *lg, int regions, float *p, int64_t K, int64_t V) {
    const char *base = nnu_tensor_data(lg);
    size_t es = nnu_dtype_size(lg->dtype);
    #pragma omp parallel for schedule(static) if(!nnu_parallel_in_worker())
    for (int64_t v = 0; v < V; v++) {
        if (regions) {
            for (int64_t k = 0; k < K; k++) {
                float x = load_f(lg->dtype, base + (size_t)(k * V + v) * es);
                p[k * V + v] = 1.0f / (1.0f + expf(-x));
            }
            continue;
        }
        float m = -INFINITY;
        for (int64_t k = 0; k < K; k++) {
            float x = load_f(lg->dtype, base + (size_t)(k * V + v) * es);
            if (x > m) m = x;
        }
        float s = 0.0f;
        for (int64_t k = 0; k < K; k++) {
            float e = expf(load_f(lg->dtype, base + (size_t)(k * V + v) * es) - m);
            p[k * V + v] = e;
            s += e;
        }
        for (int64_t k = 0; k < K; k++) p[k * V + v] /= s;
    }
}

nnu_status nnu_export_segmentation(const nnu_tensor *logits, const nnu_preproc_props *props,
                                   const nnu_export_opts *opts, nnu_tensor **seg, nnu_tensor **probs) {
    char b[64];
    NNU_CHECK(logits && props && opts && seg, NNU_STATUS_ERR_ARG, "export: NULL argument");
    *seg = NULL;
    if (probs) *probs = NULL;
    NNU_CHECK(is_permutation(opts->transpose_forward), NNU_STATUS_ERR_ARG,
              "export: transpose_forward [%d, %d, %d] is not a permutation of 0, 1, 2",
              opts->transpose_forward[0], opts->transpose_forward[1], opts->transpose_forward[2]);
    NNU_TRY(check_props(props));
    const int64_t *cs = props->shape_after_cropping, *os = props->shape_before_cropping;
    NNU_CHECK(logits->ndim == 4 && logits->shape[1] == cs[0] && logits->shape[2] == cs[1] &&
                  logits->shape[3] == cs[2],
              NNU_STATUS_ERR_SHAPE, "export: logits %s do not have the cropped shape [K, %lld, %lld, %lld]",
              nnu_tensor_shape_str(logits, b, sizeof b), (long long)cs[0], (long long)cs[1], (long long)cs[2]);
    NNU_CHECK(logits->dtype == NNU_DTYPE_F16 || logits->dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_SHAPE,
              "export: logits must be f16 or f32, got %s", nnu_dtype_name(logits->dtype));
    int64_t K = logits->shape[0];
    int regions = opts->n_regions > 0;
    NNU_CHECK(!regions || (opts->n_regions == K && opts->n_regions <= NNU_EXPORT_MAX_REGIONS),
              NNU_STATUS_ERR_SHAPE, "export: %d regions in regions_class_order but %lld logit channels",
              opts->n_regions, (long long)K);
    NNU_CHECK(K >= 1, NNU_STATUS_ERR_SHAPE, "export: no logit channels");
    int64_t Vc = cs[0] * cs[1] * cs[2];
    nnu_dtype sdt = opts->n_foreground_labels >= 255 ? NNU_DTYPE_U16 : NNU_DTYPE_U8;

    nnu_tensor *lg = NULL, *p = NULL, *full = NULL, *pfull = NULL;
    nnu_status st = nnu_tensor_contiguous((nnu_tensor *)logits, &lg);
    if (st) return st;
    int need_p = probs != NULL || regions;
    if (need_p) {
        int64_t ps[4] = {K, cs[0], cs[1], cs[2]};
        st = nnu_tensor_new(NNU_DTYPE_F32, 4, ps, &p);
        if (!st) nonlin(lg, regions, nnu_tensor_data(p), K, Vc);
    }
    if (!st) st = nnu_tensor_new(sdt, 3, os, &full);              /* zeros = background */
    if (!st) {
        /* argmax / regions straight into the un-cropped map */
        const char *lb = nnu_tensor_data(lg);
        size_t es = nnu_dtype_size(lg->dtype);
        const float *pp = p ? nnu_tensor_data(p) : NULL;
        uint8_t *s8 = sdt == NNU_DTYPE_U8 ? nnu_tensor_data(full) : NULL;
        uint16_t *s16 = sdt == NNU_DTYPE_U16 ? nnu_tensor_data(full) : NULL;
        const int64_t z0 = props->bbox[0][0], y0 = props->bbox[1][0], x0 = props->bbox[2][0];
        #pragma omp parallel for schedule(static) if(!nnu_parallel_in_worker())
        for (int64_t z = 0; z < cs[0]; z++) {
            for (int64_t y = 0; y < cs[1]; y++) {
                int64_t src = (z * cs[1] + y) * cs[2];
                int64_t dst = ((z + z0) * os[1] + (y + y0)) * os[2] + x0;
                for (int64_t x = 0; x < cs[2]; x++) {
                    int64_t v = src + x, lab = 0;
                    if (regions) {
                        for (int64_t k = 0; k < K; k++)
                            if (pp[k * Vc + v] > 0.5f) lab = opts->regions_class_order[k];
                    } else if (pp) {
                        float best = pp[v];
                        for (int64_t k = 1; k < K; k++)
                            if (pp[k * Vc + v] > best) { best = pp[k * Vc + v]; lab = k; }
                    } else {
                        float best = load_f(lg->dtype, lb + (size_t)v * es);
                        for (int64_t k = 1; k < K; k++) {
                            float q = load_f(lg->dtype, lb + (size_t)(k * Vc + v) * es);
                            if (q > best) { best = q; lab = k; }
                        }
                    }
                    if (s8) s8[dst + x] = (uint8_t)lab;
                    else s16[dst + x] = (uint16_t)lab;
                }
            }
        }
    }
    nnu_tensor_release(lg);
    lg = NULL;
    if (!st && nnu_interrupt_requested()) st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "export: interrupted");
    if (!st && probs) {
        int64_t fs[4] = {K, os[0], os[1], os[2]};
        st = nnu_tensor_new(NNU_DTYPE_F32, 4, fs, &pfull);
        if (!st) {
            float *d = nnu_tensor_data(pfull);
            const float *s = nnu_tensor_data(p);
            int64_t V = os[0] * os[1] * os[2];
            if (!regions)                                          /* background 1 outside the box */
                for (int64_t v = 0; v < V; v++) d[v] = 1.0f;
            for (int64_t k = 0; k < K; k++)
                for (int64_t z = 0; z < cs[0]; z++)
                    for (int64_t y = 0; y < cs[1]; y++) {
                        memcpy(d + k * V + ((z + props->bbox[0][0]) * os[1] + y + props->bbox[1][0]) * os[2] +
                                   props->bbox[2][0],
                               s + k * Vc + (z * cs[1] + y) * cs[2], (size_t)cs[2] * sizeof(float));
                    }
        }
    }
    nnu_tensor_release(p);
    p = NULL;
    nnu_tensor *segb = NULL, *probb = NULL;
    if (!st) { st = transpose_back(full, opts->transpose_forward, &segb); full = NULL; }
    if (!st && pfull) { st = transpose_back(pfull, opts->transpose_forward, &probb); pfull = NULL; }
    nnu_tensor_release(full);
    nnu_tensor_release(pfull);
    if (st) {
        nnu_tensor_release(segb);
        nnu_tensor_release(probb);
        return st;
    }
    *seg = segb;
    if (probs) *probs = probb;
    return NNU_STATUS_OK;
}

/* lab: contiguous (1, shape_after_cropping) int32 labels -> *seg (z, y, x) u8/u16
 * un-cropped into zeros of shape_before_cropping and transposed back. */
static nnu_status uncrop_labels(const nnu_tensor *lab, const nnu_preproc_props *props,
                                const nnu_export_opts *opts, nnu_tensor **seg) {
    const int64_t *cs = props->shape_after_cropping, *os = props->shape_before_cropping;
    nnu_dtype sdt = opts->n_foreground_labels >= 255 ? NNU_DTYPE_U16 : NNU_DTYPE_U8;
    nnu_tensor *full = NULL;
    NNU_TRY(nnu_tensor_new(sdt, 3, os, &full));
    const int32_t *l = nnu_tensor_data(lab);
    uint8_t *s8 = sdt == NNU_DTYPE_U8 ? nnu_tensor_data(full) : NULL;
    uint16_t *s16 = sdt == NNU_DTYPE_U16 ? nnu_tensor_data(full) : NULL;
    for (int64_t z = 0; z < cs[0]; z++)
        for (int64_t y = 0; y < cs[1]; y++) {
            int64_t src = (z * cs[1] + y) * cs[2];
            int64_t dst = ((z + props->bbox[0][0]) * os[1] + y + props->bbox[1][0]) * os[2] + props->bbox[2][0];
            for (int64_t x = 0; x < cs[2]; x++) {
                if (s8) s8[dst + x] = (uint8_t)l[src + x];
                else s16[dst + x] = (uint16_t)l[src + x];
            }
        }
    return transpose_back(full, opts->transpose_forward, seg);     /* steals full */
}

/* Segmentation without probabilities, one logit channel at a time: channel k is
 * resampled (the same per-channel computation as nnu_resample_to_shape on all
 * channels) and folded into a running argmax (strict >, so the lowest channel
 * wins ties) or painted as region k (sigmoid > 0.5, later regions overwrite).
 * Memory besides the logits: one resampled channel (2 B/voxel for f16), the
 * running maximum (4 B) and the label map of the cropped box (1-2 B). */
static nnu_status export_streaming(const nnu_tensor *logits, const nnu_preproc_props *props,
                                   const nnu_export_opts *opts, nnu_tensor **seg) {
    const int64_t *cs = props->shape_after_cropping;
    int64_t K = logits->shape[0], Vc = cs[0] * cs[1] * cs[2];
    int regions = opts->n_regions > 0;
    NNU_CHECK(!regions || (opts->n_regions == K && opts->n_regions <= NNU_EXPORT_MAX_REGIONS),
              NNU_STATUS_ERR_SHAPE, "export: %d regions in regions_class_order but %lld logit channels",
              opts->n_regions, (long long)K);
    NNU_CHECK(logits->dtype == NNU_DTYPE_F16 || logits->dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_SHAPE,
              "export: logits must be f16 or f32, got %s", nnu_dtype_name(logits->dtype));
    float *best = malloc((size_t)Vc * sizeof *best);
    int32_t *lab = calloc((size_t)Vc, sizeof *lab);
    nnu_status st = best && lab ? NNU_STATUS_OK : NNU_FAIL(NNU_STATUS_ERR_OOM, "export: out of memory");
    nnu_resample_opts ro = opts->resample;
    ro.is_seg = 0;
    for (int64_t k = 0; k < K && !st; k++) {
        nnu_tensor *ch = NULL, *r = NULL, *rc = NULL;
        st = nnu_tensor_view_narrow((nnu_tensor *)logits, 0, k, 1, &ch);
        if (!st) st = nnu_resample_to_shape(ch, cs, props->target_spacing, props->spacing_transposed, &ro, &r);
        if (!st) st = nnu_tensor_contiguous(r, &rc);
        if (!st) {
            const char *d = nnu_tensor_data(rc);
            size_t es = nnu_dtype_size(rc->dtype);
            nnu_dtype dt = rc->dtype;
            #pragma omp parallel for schedule(static) if(!nnu_parallel_in_worker())
            for (int64_t v = 0; v < Vc; v++) {
                float x = load_f(dt, d + (size_t)v * es);
                if (regions) {
                    if (1.0f / (1.0f + expf(-x)) > 0.5f) lab[v] = opts->regions_class_order[k];
                } else if (k == 0 || x > best[v]) {
                    best[v] = x;
                    lab[v] = (int32_t)k;
                }
            }
        }
        nnu_tensor_release(ch);
        nnu_tensor_release(r);
        nnu_tensor_release(rc);
        if (!st && nnu_interrupt_requested()) st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "export: interrupted");
    }
    free(best);
    if (st) { free(lab); return st; }
    /* the label map of the box as int32 logits-shaped data -> reuse the un-crop path */
    nnu_tensor *wrap = NULL;
    int64_t ls[4] = {1, cs[0], cs[1], cs[2]};
    st = nnu_tensor_wrap(lab, NNU_DTYPE_I32, 4, ls, &wrap);
    if (!st) st = uncrop_labels(wrap, props, opts, seg);
    nnu_tensor_release(wrap);
    free(lab);
    return st;
}

nnu_status nnu_export_case(const nnu_tensor *logits, const nnu_preproc_props *props,
                           const nnu_export_opts *opts, nnu_tensor **seg, nnu_tensor **probs) {
    char b[64];
    NNU_CHECK(logits && props && opts && seg, NNU_STATUS_ERR_ARG, "export: NULL argument");
    NNU_CHECK(logits->ndim == 4 && logits->shape[0] >= 1, NNU_STATUS_ERR_SHAPE,
              "export: logits must be (K, z, y, x), got %s", nnu_tensor_shape_str(logits, b, sizeof b));
    NNU_CHECK(is_permutation(opts->transpose_forward), NNU_STATUS_ERR_ARG,
              "export: transpose_forward [%d, %d, %d] is not a permutation of 0, 1, 2",
              opts->transpose_forward[0], opts->transpose_forward[1], opts->transpose_forward[2]);
    NNU_TRY(check_props(props));
    if (!probs) return export_streaming(logits, props, opts, seg);
    nnu_tensor *r = NULL;
    NNU_TRY(nnu_export_resample_logits(logits, props, &opts->resample, &r));
    nnu_status st = nnu_export_segmentation(r, props, opts, seg, probs);
    nnu_tensor_release(r);
    return st;
}
