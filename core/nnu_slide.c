/* nnu_slide.c: window positions, Gaussian map, padding and the sliding-window
 * aggregator of nnu_slide.h (nnunet-behaviour.md §9.2, test vectors L.4/L.5).
 *
 * Internally a 2-D configuration is a 3-D one with a patch depth of 1 and one
 * window position per slice: the windows, the Gaussian (1, py, px), the mirror
 * axes (+1) and the accumulators are then handled by the same code; only the
 * tensors handed to the network drop the depth axis. */
#include "nnu_slide.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_eval.h"        /* nnu_eval_np_sum: numpy's pairwise summation */
#include "nnu_interrupt.h"

/* ---------------------------------------------------------------- positions */

int64_t nnu_slide_num_steps(int64_t image_size, int64_t patch, double step_size) {
    double target = (double)patch * step_size;            /* i * tile_step_size */
    double n = ceil((double)(image_size - patch) / target) + 1.0;
    return n < 1.0 ? 1 : (int64_t)n;
}

nnu_status nnu_slide_steps(int64_t image_size, int64_t patch, double step_size, int64_t *out) {
    NNU_CHECK(step_size > 0.0 && step_size <= 1.0, NNU_STATUS_ERR_ARG,
              "sliding window: step_size %g must be in (0, 1]", step_size);
    NNU_CHECK(image_size >= 1 && patch >= 1, NNU_STATUS_ERR_ARG,
              "sliding window: image size %lld and patch %lld must be >= 1",
              (long long)image_size, (long long)patch);
    int64_t n = nnu_slide_num_steps(image_size, patch, step_size);
    if (n == 1) { out[0] = 0; return NNU_STATUS_OK; }
    double actual = (double)(image_size - patch) / (double)(n - 1);
    /* int(np.round(actual * k)): round half to even of the double product */
    for (int64_t k = 0; k < n; k++) out[k] = (int64_t)nearbyint(actual * (double)k);
    return NNU_STATUS_OK;
}

/* ---------------------------------------------------------------- Gaussian */

/* scipy.ndimage._gaussian_kernel1d(sigma, 0, radius) evaluated at offsets
 * -radius..radius, normalised by its numpy (pairwise) sum. w has 2·radius+1 entries. */
static void gaussian_kernel1d(double sigma, int64_t radius, double *w) {
    double c = -0.5 / (sigma * sigma);
    for (int64_t x = -radius; x <= radius; x++) w[x + radius] = exp(c * (double)(x * x));
    double s = nnu_eval_np_sum(w, 2 * radius + 1);
    for (int64_t i = 0; i < 2 * radius + 1; i++) w[i] /= s;
}

nnu_status nnu_slide_gaussian(int ndim, const int64_t *patch, nnu_tensor **out, int64_t *n_replaced) {
    *out = NULL;
    if (n_replaced) *n_replaced = 0;
    NNU_CHECK(ndim >= 1 && ndim <= 3, NNU_STATUS_ERR_ARG, "gaussian: %d axes (1 to 3)", ndim);
    int64_t p[3] = {1, 1, 1};
    double *w[3] = {NULL, NULL, NULL}, one = 1.0;
    int64_t c[3] = {0, 0, 0}, r[3] = {0, 0, 0};
    for (int a = 0; a < ndim; a++) {
        NNU_CHECK(patch[a] >= 1 && patch[a] <= (1 << 20), NNU_STATUS_ERR_ARG,
                  "gaussian: patch size %lld on axis %d", (long long)patch[a], a);
        p[3 - ndim + a] = patch[a];
    }
    nnu_status st = nnu_tensor_new(NNU_DTYPE_F16, ndim, patch, out);
    if (st) return st;
    for (int a = 3 - ndim; a < 3; a++) {
        double sigma = (double)p[a] * (1.0 / 8.0);
        r[a] = (int64_t)(4.0 * sigma + 0.5);              /* truncate = 4 */
        c[a] = p[a] / 2;                                  /* the delta sits at P // 2 */
        w[a] = malloc(sizeof(double) * (size_t)(2 * r[a] + 1));
        if (!w[a]) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "gaussian: out of memory"); goto done; }
        gaussian_kernel1d(sigma, r[a], w[a]);
    }
    /* Filtering a delta axis by axis multiplies the kernels in axis order, one
     * rounding per product: v = (w0·w1)·w2; r ≥ P/2 covers every offset. Axes
     * absent in lower dimensions contribute the exact factor 1. */
    double k0 = ndim < 3 ? one : w[0][r[0]], k1 = ndim < 2 ? one : w[1][r[1]];
    double vmax = (k0 * k1) * w[2][r[2]];
    double div = vmax / 10.0;                             /* map / (max / value_scaling) */
    uint16_t *g = nnu_tensor_data(*out), gmin = 0x7c00;
    int64_t n = p[0] * p[1] * p[2], i = 0;
    for (int64_t z = 0; z < p[0]; z++)
        for (int64_t y = 0; y < p[1]; y++)
            for (int64_t x = 0; x < p[2]; x++, i++) {
                double a0 = ndim < 3 ? one : w[0][z - c[0] + r[0]];
                double a1 = ndim < 2 ? one : w[1][y - c[1] + r[1]];
                double v = (a0 * a1) * w[2][x - c[2] + r[2]] / div;
                g[i] = nnu_f32_to_f16((float)v);          /* float64 → float32 → float16 */
                if (g[i] != 0 && g[i] < gmin) gmin = g[i];   /* positive halves order as integers */
            }
    int64_t nrep = 0;
    for (i = 0; i < n; i++)
        if (g[i] == 0) { g[i] = gmin; nrep++; }
    if (n_replaced) *n_replaced = nrep;
done:
    for (int a = 0; a < 3; a++) free(w[a]);
    if (st) { nnu_tensor_release(*out); *out = NULL; }
    return st;
}

/* ---------------------------------------------------------------- padding */

nnu_status nnu_slide_pad(nnu_tensor *image, int patch_ndim, const int64_t *patch,
                         nnu_tensor **out, int64_t *pad_before) {
    *out = NULL;
    int nd = image->ndim, first = nd - patch_ndim;
    NNU_CHECK(patch_ndim >= 1 && patch_ndim <= nd, NNU_STATUS_ERR_SHAPE,
              "pad: %d-D patch on a %d-D image", patch_ndim, nd);
    int64_t shape[NNU_MAX_DIMS];
    int any = 0;
    for (int a = 0; a < nd; a++) {
        shape[a] = image->shape[a];
        pad_before[a] = 0;
        if (a < first) continue;
        int64_t want = patch[a - first];
        NNU_CHECK(want >= 1, NNU_STATUS_ERR_ARG, "pad: patch size %lld", (long long)want);
        if (want > shape[a]) {
            pad_before[a] = (want - shape[a]) / 2;        /* ⌊diff/2⌋ below, the rest above */
            shape[a] = want;
            any = 1;
        }
    }
    if (!any) { nnu_tensor_retain(image); *out = image; return NNU_STATUS_OK; }
    nnu_tensor *padded = NULL, *view = NULL, *tmp = NULL;
    NNU_TRY(nnu_tensor_new(image->dtype, nd, shape, &padded));     /* zero-filled */
    nnu_status st = NNU_STATUS_OK;
    view = padded;
    nnu_tensor_retain(view);
    for (int a = first; a < nd && !st; a++) {
        st = nnu_tensor_view_narrow(view, a, pad_before[a], image->shape[a], &tmp);
        nnu_tensor_release(view);
        view = tmp;
        tmp = NULL;
    }
    if (!st) st = nnu_tensor_copy(view, image);
    nnu_tensor_release(view);
    if (st) { nnu_tensor_release(padded); return st; }
    *out = padded;
    return NNU_STATUS_OK;
}

/* ---------------------------------------------------------------- aggregator */

void nnu_slide_params_default(nnu_slide_params *p) {
    memset(p, 0, sizeof *p);
    p->patch_ndim = 3;
    p->step_size = 0.5;
    p->batch_size = 1;
    p->accum_dtype = NNU_DTYPE_F16;
}

/* Mirror subsets as bit masks over the internal (z, y, x) axes, in the order of
 * itertools.combinations(axes, 1), (axes, 2), ...; masks[0] = 0 (no flip). */
static int mirror_masks(const int *axes, int n, int *masks) {
    int count = 0;
    masks[count++] = 0;
    /* k-subsets of the axis list in lexicographic index order, k = 1 … n */
    for (int size = 1; size <= n; size++) {
        int idx[3];
        for (int i = 0; i < size; i++) idx[i] = i;
        for (;;) {
            int m = 0;
            for (int i = 0; i < size; i++) m |= 1 << axes[idx[i]];
            masks[count++] = m;
            int i = size - 1;
            while (i >= 0 && idx[i] == n - size + i) i--;
            if (i < 0) break;
            idx[i]++;
            for (int j = i + 1; j < size; j++) idx[j] = idx[j - 1] + 1;
        }
    }
    return count;
}

/* dst[o, z, y, x] (+)= src[o, z', y', x'] with z' = Z−1−z where bit 0 of mask is set,
 * likewise y (bit 1) and x (bit 2); blocks (Z, Y, X) contiguous, n_outer of them. */
static void flip_block(float *dst, const float *src, int64_t n_outer, const int64_t *b,
                       int mask, int add) {
    int64_t Z = b[0], Y = b[1], X = b[2], blk = Z * Y * X;
    int fz = mask & 1, fy = mask & 2, fx = mask & 4;
#pragma omp parallel for collapse(2) schedule(static) if (n_outer * blk > 65536)
    for (int64_t o = 0; o < n_outer; o++)
        for (int64_t z = 0; z < Z; z++)
            for (int64_t y = 0; y < Y; y++) {
                float *d = dst + o * blk + (z * Y + y) * X;
                const float *s = src + o * blk + ((fz ? Z - 1 - z : z) * Y + (fy ? Y - 1 - y : y)) * X;
                if (fx) {
                    if (add) for (int64_t x = 0; x < X; x++) d[x] += s[X - 1 - x];
                    else     for (int64_t x = 0; x < X; x++) d[x] = s[X - 1 - x];
                } else {
                    if (add) for (int64_t x = 0; x < X; x++) d[x] += s[x];
                    else     memcpy(d, s, sizeof(float) * (size_t)X);
                }
            }
}

/* ---- row kernels of the accumulation (f16 or f32 accumulators) ----
 * Each f16 update is: load half -> f32, one f32 operation, round to half (RNE),
 * exactly what PyTorch does for a half tensor on the CPU. The products are
 * rounded to f32 before the addition (no FMA: the build keeps ISO C's
 * -ffp-contract=off, and the intrinsics below use separate mul and add). On x86
 * with F16C the conversions run 8 at a time; the scalar path is the fallback and
 * gives identical bits. */

/* acc[x] = acc[x] + src[x]·g[x] */
static void row_acc_scalar(void *acc, int f16, const float *src, const float *g, int64_t n) {
    if (f16) {
        uint16_t *a = acc;
        for (int64_t x = 0; x < n; x++) {
            float v = src[x] * g[x];
            a[x] = nnu_f32_to_f16(nnu_f16_to_f32(a[x]) + v);
        }
    } else {
        float *a = acc;
        for (int64_t x = 0; x < n; x++) {
            float v = src[x] * g[x];
            a[x] = a[x] + v;
        }
    }
}

/* w[x] = w[x] + g[x] */
static void row_add_scalar(void *w, int f16, const float *g, int64_t n) {
    if (f16) {
        uint16_t *a = w;
        for (int64_t x = 0; x < n; x++) a[x] = nnu_f32_to_f16(nnu_f16_to_f32(a[x]) + g[x]);
    } else {
        float *a = w;
        for (int64_t x = 0; x < n; x++) a[x] = a[x] + g[x];
    }
}

/* acc[x] = acc[x] / w[x]; returns 1 if a result is ±inf */
static int row_div_scalar(void *acc, const void *w, int f16, int64_t n) {
    int inf = 0;
    if (f16) {
        uint16_t *a = acc;
        const uint16_t *d = w;
        for (int64_t x = 0; x < n; x++) {
            a[x] = nnu_f32_to_f16(nnu_f16_to_f32(a[x]) / nnu_f16_to_f32(d[x]));
            inf |= (a[x] & 0x7fff) == 0x7c00;
        }
    } else {
        float *a = acc;
        const float *d = w;
        for (int64_t x = 0; x < n; x++) {
            a[x] = a[x] / d[x];
            inf |= isinf(a[x]);
        }
    }
    return inf;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NNU_HAVE_F16C_PATH 1
__attribute__((target("avx,f16c"))) static void row_acc_f16c(uint16_t *a, const float *src, const float *g,
                                                              int64_t n) {
    int64_t x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 acc = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + x)));
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src + x), _mm256_loadu_ps(g + x));
        acc = _mm256_add_ps(acc, v);
        _mm_storeu_si128((__m128i *)(a + x), _mm256_cvtps_ph(acc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    row_acc_scalar(a + x, 1, src + x, g + x, n - x);
}
__attribute__((target("avx,f16c"))) static void row_add_f16c(uint16_t *a, const float *g, int64_t n) {
    int64_t x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256 acc = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + x)));
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(g + x));
        _mm_storeu_si128((__m128i *)(a + x), _mm256_cvtps_ph(acc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    row_add_scalar(a + x, 1, g + x, n - x);
}
__attribute__((target("avx,f16c"))) static int row_div_f16c(uint16_t *a, const uint16_t *w, int64_t n) {
    int64_t x = 0;
    __m128i inf = _mm_setzero_si128();
    const __m128i mask = _mm_set1_epi16(0x7fff), pinf = _mm_set1_epi16(0x7c00);
    for (; x + 8 <= n; x += 8) {
        __m256 num = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + x)));
        __m256 den = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + x)));
        __m128i h = _mm256_cvtps_ph(_mm256_div_ps(num, den), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        inf = _mm_or_si128(inf, _mm_cmpeq_epi16(_mm_and_si128(h, mask), pinf));
        _mm_storeu_si128((__m128i *)(a + x), h);
    }
    int tail = row_div_scalar(a + x, w + x, 1, n - x);
    return !_mm_testz_si128(inf, inf) || tail;
}
static int have_f16c(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    return cached;
}
#endif

static void row_acc(void *acc, int f16, int simd, const float *src, const float *g, int64_t n) {
#ifdef NNU_HAVE_F16C_PATH
    if (f16 && simd) { row_acc_f16c(acc, src, g, n); return; }
#endif
    (void)simd;
    row_acc_scalar(acc, f16, src, g, n);
}
static void row_add(void *w, int f16, int simd, const float *g, int64_t n) {
#ifdef NNU_HAVE_F16C_PATH
    if (f16 && simd) { row_add_f16c(w, g, n); return; }
#endif
    (void)simd;
    row_add_scalar(w, f16, g, n);
}
static int row_div(void *acc, const void *w, int f16, int simd, int64_t n) {
#ifdef NNU_HAVE_F16C_PATH
    if (f16 && simd) return row_div_f16c(acc, w, n);
#endif
    (void)simd;
    return row_div_scalar(acc, w, f16, n);
}

/* The F16C path unless the CPU lacks it or NNUNET_NO_F16C is set (tests run both). */
static int use_simd(void) {
#ifdef NNU_HAVE_F16C_PATH
    const char *e = getenv("NNUNET_NO_F16C");
    return have_f16c() && !(e && *e && strcmp(e, "0") != 0);
#else
    return 0;
#endif
}

typedef struct slide_state {
    const nnu_slide_params *p;
    int64_t C, K, D, H, W;          /* padded image */
    int64_t pb[3];                  /* internal patch (pz, py, px) */
    int64_t pn;                     /* pz·py·px */
    const float *img;               /* (C, D, H, W) contiguous f32 */
    void *acc, *wsum;               /* (K, D, H, W), (D, H, W) of accum dtype */
    int f16, simd;                  /* f16 accumulators; F16C row kernels */
    float *g;                       /* Gaussian (pz, py, px) as f32 (exact f16 values) */
} slide_state;

/* Accumulates one window: sum (K, pz, py, px) = mean of the mirror passes. */
static void accumulate(const slide_state *s, const float *sum, const int64_t *o) {
    int64_t K = s->K, H = s->H, W = s->W, D = s->D;
    const int64_t *b = s->pb;
    int f16 = s->f16;
    int64_t es = f16 ? 2 : 4;
#pragma omp parallel for collapse(2) schedule(static) if (K * s->pn > 65536)
    for (int64_t k = 0; k < K; k++)
        for (int64_t z = 0; z < b[0]; z++)
            for (int64_t y = 0; y < b[1]; y++) {
                const float *src = sum + ((k * b[0] + z) * b[1] + y) * b[2];
                const float *g = s->g + (z * b[1] + y) * b[2];
                int64_t base = ((k * D + o[0] + z) * H + o[1] + y) * W + o[2];
                row_acc((char *)s->acc + base * es, f16, s->simd, src, g, b[2]);   /* acc += pred·g */
            }
    for (int64_t z = 0; z < b[0]; z++)
        for (int64_t y = 0; y < b[1]; y++) {
            int64_t base = ((o[0] + z) * H + o[1] + y) * W + o[2];
            row_add((char *)s->wsum + base * es, f16, s->simd, s->g + (z * b[1] + y) * b[2], b[2]);
        }
}

/* Copies window o (z0, y0, x0) of the image into dst (C, pz, py, px). */
static void extract(const slide_state *s, float *dst, const int64_t *o) {
    const int64_t *b = s->pb;
    for (int64_t c = 0; c < s->C; c++)
        for (int64_t z = 0; z < b[0]; z++)
            for (int64_t y = 0; y < b[1]; y++)
                memcpy(dst + ((c * b[0] + z) * b[1] + y) * b[2],
                       s->img + ((c * s->D + o[0] + z) * s->H + o[1] + y) * s->W + o[2],
                       sizeof(float) * (size_t)b[2]);
}

static nnu_status check_params(const nnu_tensor *image, const nnu_slide_params *p) {
    NNU_CHECK(image->ndim == 4, NNU_STATUS_ERR_SHAPE,
              "sliding window: image must be (C, D, H, W), got %d axes", image->ndim);
    NNU_CHECK(p->patch_ndim == 2 || p->patch_ndim == 3, NNU_STATUS_ERR_ARG,
              "sliding window: patch_ndim %d (2 or 3)", p->patch_ndim);
    for (int a = 0; a < p->patch_ndim; a++)
        NNU_CHECK(p->patch[a] >= 1, NNU_STATUS_ERR_ARG, "sliding window: patch size %lld on axis %d",
                  (long long)p->patch[a], a);
    NNU_CHECK(p->step_size > 0.0 && p->step_size <= 1.0, NNU_STATUS_ERR_ARG,
              "sliding window: step_size %g must be in (0, 1]", p->step_size);
    NNU_CHECK(p->num_heads >= 1, NNU_STATUS_ERR_ARG, "sliding window: num_heads %d", p->num_heads);
    NNU_CHECK(p->batch_size >= 1, NNU_STATUS_ERR_ARG, "sliding window: batch_size %d", p->batch_size);
    NNU_CHECK(p->accum_dtype == NNU_DTYPE_F16 || p->accum_dtype == NNU_DTYPE_F32, NNU_STATUS_ERR_ARG,
              "sliding window: accumulation dtype %s (f16 or f32)", nnu_dtype_name(p->accum_dtype));
    NNU_CHECK(p->n_mirror_axes >= 0 && p->n_mirror_axes <= p->patch_ndim, NNU_STATUS_ERR_ARG,
              "sliding window: %d mirror axes for a %d-D patch", p->n_mirror_axes, p->patch_ndim);
    int seen = 0;
    for (int i = 0; i < p->n_mirror_axes; i++) {
        int a = p->mirror_axes[i];
        NNU_CHECK(a >= 0 && a < p->patch_ndim && !(seen & (1 << a)), NNU_STATUS_ERR_ARG,
                  "sliding window: mirror axis %d invalid or repeated (patch has %d axes)", a,
                  p->patch_ndim);
        seen |= 1 << a;
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_slide_predict(nnu_tensor *image, const nnu_slide_params *p,
                             nnu_slide_predict_fn predict, void *ctx, nnu_tensor **logits) {
    *logits = NULL;
    NNU_TRY(check_params(image, p));
    slide_state s;
    memset(&s, 0, sizeof s);
    s.p = p;
    s.f16 = p->accum_dtype == NNU_DTYPE_F16;
    s.simd = use_simd();
    int two_d = p->patch_ndim == 2, off = two_d ? 1 : 0;
    s.pb[0] = two_d ? 1 : p->patch[0];
    s.pb[1] = p->patch[1 - off];
    s.pb[2] = p->patch[2 - off];
    s.pn = s.pb[0] * s.pb[1] * s.pb[2];
    s.K = p->num_heads;

    nnu_tensor *padded = NULL, *img32 = NULL, *acc = NULL, *wsum = NULL, *gauss = NULL;
    nnu_tensor *xin = NULL, *xflip = NULL, *yout = NULL, *ysum = NULL, *gt = NULL;
    float *g32 = NULL;
    int64_t *steps[3] = {NULL, NULL, NULL}, nsteps[3], pad_before[4];
    int masks[8], npass = 1;
    nnu_status st;

    /* 1. pad to the patch (2-D: only y and x), then f32 contiguous for windowing */
    st = nnu_slide_pad(image, p->patch_ndim, p->patch, &padded, pad_before);
    if (st) goto done;
    if (padded->dtype == NNU_DTYPE_F32) st = nnu_tensor_contiguous(padded, &img32);
    else st = nnu_tensor_to_dtype(padded, NNU_DTYPE_F32, &img32);
    if (st) goto done;
    nnu_tensor_release(padded);
    padded = NULL;
    s.C = img32->shape[0]; s.D = img32->shape[1]; s.H = img32->shape[2]; s.W = img32->shape[3];
    s.img = nnu_tensor_data(img32);

    /* 2. window positions; 2-D: every slice index along z */
    int64_t isz[3] = {s.D, s.H, s.W};
    for (int a = 0; a < 3; a++) {
        nsteps[a] = (two_d && a == 0) ? s.D : nnu_slide_num_steps(isz[a], s.pb[a], p->step_size);
        steps[a] = malloc(sizeof(int64_t) * (size_t)nsteps[a]);
        if (!steps[a]) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "sliding window: out of memory"); goto done; }
        if (two_d && a == 0) for (int64_t i = 0; i < s.D; i++) steps[0][i] = i;
        else if ((st = nnu_slide_steps(isz[a], s.pb[a], p->step_size, steps[a]))) goto done;
    }

    /* 3. Gaussian (f16 values, used as f32 in the products) */
    if ((st = nnu_slide_gaussian(p->patch_ndim, p->patch, &gauss, NULL))) goto done;
    if ((st = nnu_tensor_to_dtype(gauss, NNU_DTYPE_F32, &gt))) goto done;
    g32 = nnu_tensor_data(gt);

    /* 4. accumulators for the padded image, allocated once (zero-filled) */
    int64_t ashape[4] = {s.K, s.D, s.H, s.W};
    if ((st = nnu_tensor_new(p->accum_dtype, 4, ashape, &acc))) goto done;
    if ((st = nnu_tensor_new(p->accum_dtype, 3, ashape + 1, &wsum))) goto done;
    s.acc = nnu_tensor_data(acc);
    s.wsum = nnu_tensor_data(wsum);
    s.g = g32;

    /* 5. one batch of windows: input, mirrored input, network output, running sum */
    int mirror_int[3];
    for (int i = 0; i < p->n_mirror_axes; i++) mirror_int[i] = p->mirror_axes[i] + off;
    npass = mirror_masks(mirror_int, p->n_mirror_axes, masks);
    int64_t B = p->batch_size;
    int64_t xs[5] = {B, s.C, s.pb[0], s.pb[1], s.pb[2]}, ys[5] = {B, s.K, s.pb[0], s.pb[1], s.pb[2]};
    if (two_d) { xs[2] = s.pb[1]; xs[3] = s.pb[2]; ys[2] = s.pb[1]; ys[3] = s.pb[2]; }
    int bnd = two_d ? 4 : 5;
    if ((st = nnu_tensor_new(NNU_DTYPE_F32, bnd, xs, &xin))) goto done;
    if (npass > 1 && (st = nnu_tensor_new(NNU_DTYPE_F32, bnd, xs, &xflip))) goto done;
    if (npass > 1 && (st = nnu_tensor_new(NNU_DTYPE_F32, bnd, ys, &yout))) goto done;
    if ((st = nnu_tensor_new(NNU_DTYPE_F32, bnd, ys, &ysum))) goto done;

    int64_t total = nsteps[0] * nsteps[1] * nsteps[2], done_w = 0;
    int64_t (*pos)[3] = malloc(sizeof(int64_t[3]) * (size_t)B);
    if (!pos) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "sliding window: out of memory"); goto done; }
    float *xbuf = nnu_tensor_data(xin), *ybuf = yout ? nnu_tensor_data(yout) : NULL, *sbuf = nnu_tensor_data(ysum);
    float *fbuf = xflip ? nnu_tensor_data(xflip) : NULL;
    int64_t xwin = s.C * s.pn, ywin = s.K * s.pn;
    while (done_w < total && !st) {
        if (nnu_interrupt_requested()) {
            st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "sliding window: interrupted");
            break;
        }
        int64_t nb = total - done_w < B ? total - done_w : B;
        for (int64_t b = 0; b < nb; b++) {              /* window order: z, then y, then x */
            int64_t w = done_w + b;
            pos[b][2] = steps[2][w % nsteps[2]];
            pos[b][1] = steps[1][(w / nsteps[2]) % nsteps[1]];
            pos[b][0] = steps[0][w / (nsteps[2] * nsteps[1])];
            extract(&s, xbuf + b * xwin, pos[b]);
        }
        nnu_tensor *xv = NULL, *yv = NULL, *sv = NULL, *fv = NULL;
        st = nnu_tensor_view_narrow(xin, 0, 0, nb, &xv);
        if (!st && yout) st = nnu_tensor_view_narrow(yout, 0, 0, nb, &yv);
        if (!st) st = nnu_tensor_view_narrow(ysum, 0, 0, nb, &sv);
        if (!st && xflip) st = nnu_tensor_view_narrow(xflip, 0, 0, nb, &fv);
        /* pred = net(x) (straight into the sum); pred += flip(net(flip(x, a)), a) for
         * each mirror combination a, in itertools order */
        if (!st) st = predict(ctx, xv, sv);
        for (int m = 1; m < npass && !st; m++) {
            flip_block(fbuf, xbuf, nb * s.C, s.pb, masks[m], 0);
            st = predict(ctx, fv, yv);
            if (!st) flip_block(sbuf, ybuf, nb * s.K, s.pb, masks[m], 1);
        }
        nnu_tensor_release(xv);
        nnu_tensor_release(yv);
        nnu_tensor_release(sv);
        nnu_tensor_release(fv);
        if (st) break;
        if (npass > 1) {
            float fn = (float)npass;
            int64_t n = nb * ywin;
            for (int64_t i = 0; i < n; i++) sbuf[i] /= fn;
        }
        for (int64_t b = 0; b < nb; b++) accumulate(&s, sbuf + b * ywin, pos[b]);
        done_w += nb;
        if (p->progress) p->progress(p->progress_ctx, done_w, total);
    }
    free(pos);
    if (st) goto done;

    /* 6. logits = acc / weight (f32 division, rounded to the accumulator dtype) */
    {
        int64_t sp = s.D * s.H * s.W, es = s.f16 ? 2 : 4, rows = s.K * s.D * s.H;
        int inf_found = 0;
        /* row by row: acc (K, D, H, W) against the weight row (D, H, W) it belongs to */
#pragma omp parallel for schedule(static) reduction(| : inf_found)
        for (int64_t r = 0; r < rows; r++)
            inf_found |= row_div((char *)s.acc + r * s.W * es, (const char *)s.wsum + ((r * s.W) % sp) * es,
                                 s.f16, s.simd, s.W);
        if (inf_found) {
            st = NNU_FAIL(NNU_STATUS_ERR_ARG, "sliding window: encountered inf in the predicted "
                          "logits (the reference aborts here too; use f32 accumulation)");
            goto done;
        }
    }

    /* 7. remove the padding (a view of the accumulator) */
    {
        nnu_tensor *v = acc, *t = NULL;
        nnu_tensor_retain(v);
        for (int a = 1; a < 4 && !st; a++) {
            st = nnu_tensor_view_narrow(v, a, pad_before[a], image->shape[a], &t);
            nnu_tensor_release(v);
            v = t;
            t = NULL;
        }
        if (!st) *logits = v;
    }
done:
    for (int a = 0; a < 3; a++) free(steps[a]);
    nnu_tensor_release(padded);
    nnu_tensor_release(img32);
    nnu_tensor_release(acc);
    nnu_tensor_release(wsum);
    nnu_tensor_release(gauss);
    nnu_tensor_release(gt);
    nnu_tensor_release(xin);
    nnu_tensor_release(xflip);
    nnu_tensor_release(yout);
    nnu_tensor_release(ysum);
    return st;
}
