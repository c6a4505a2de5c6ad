/* nnu_fingerprint.c: see nnu_fingerprint.h.
 * Layout of the sample store: one float block per channel, cases in order,
 * num_samples per case: samples[c][i * ns + k]. That is the reference's
 * np.concatenate order, which matters for its float32 pairwise sums. */
#include "nnu_fingerprint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_crop.h"
#include "nnu_nifti.h"
#include "nnu_normalize.h"
#include "nnu_parallel.h"
#include "nnu_progress.h"

/* ---------------- one case ---------------- */

nnu_status nnu_fingerprint_case_tensors(const nnu_tensor *image, const nnu_tensor *label,
                                        const double spacing[3], int64_t num_samples, uint32_t seed,
                                        float *samples, int64_t sample_stride,
                                        nnu_fingerprint_case *out) {
    memset(out, 0, sizeof *out);
    if (spacing) memcpy(out->spacing, spacing, sizeof out->spacing);
    nnu_tensor *img = NULL, *ci = NULL, *cl = NULL, *lab64 = NULL;
    nnu_status st;
    if (image->dtype == NNU_DTYPE_F32 && nnu_tensor_is_contiguous(image)) {
        nnu_tensor_retain((nnu_tensor *)image);
        img = (nnu_tensor *)image;
        st = NNU_STATUS_OK;
    } else {
        st = nnu_tensor_to_dtype(image, NNU_DTYPE_F32, &img);
    }
    if (!st) st = nnu_crop_to_nonzero(img, label, &ci, &cl, out->bbox, out->shape_before);
    if (!st) st = nnu_tensor_to_dtype(cl, NNU_DTYPE_F64, &lab64);
    float *vals = NULL;
    if (!st) {
        int64_t before = 1, after = 1;
        for (int a = 0; a < 3; a++) {
            out->shape_after_crop[a] = ci->shape[1 + a];
            before *= out->shape_before[a];
            after *= out->shape_after_crop[a];
        }
        out->relative_size_after_cropping = (double)after / (double)before;
        const double *l = nnu_tensor_data(lab64);
        int64_t nv = after;
        for (int64_t i = 0; i < nv; i++) out->n_foreground += l[i] > 0;
        if (out->n_foreground > 0 && samples && num_samples > 0) {
            vals = malloc((size_t)out->n_foreground * sizeof *vals);
            if (!vals) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "fingerprint: out of memory");
            nnu_nprandom rs;
            nnu_nprandom_seed(&rs, seed);                   /* one generator per case */
            uint64_t rng = (uint64_t)(out->n_foreground - 1), mask = nnu_nprandom_mask(rng);
            for (int64_t c = 0; c < ci->shape[0] && !st; c++) {
                const float *x = (const float *)nnu_tensor_data(ci) + c * nv;
                int64_t k = 0;
                for (int64_t i = 0; i < nv; i++)
                    if (l[i] > 0) vals[k++] = x[i];          /* images[c][mask], C order */
                float *dst = samples + c * sample_stride;
                for (int64_t s = 0; s < num_samples; s++) dst[s] = vals[nnu_nprandom_interval_masked(&rs, rng, mask)];
            }
        }
    }
    free(vals);
    nnu_tensor_release(img); nnu_tensor_release(ci); nnu_tensor_release(cl); nnu_tensor_release(lab64);
    return st;
}

/* ---------------- statistics ---------------- */

/* Order statistics by a two-pass radix select on the float's sortable key (no
 * reordering, no sort): pass 1 histograms the top 16 bits, pass 2 the low 16
 * bits of the elements in the bins that hold the wanted ranks. Exact for any
 * non-NaN input (the reference asserts there are no NaNs). */
static uint32_t fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static float fkey_inv(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* out[i] = value of rank ranks[i] (0-based) among v[0..n) */
static nnu_status radix_select(const float *v, int64_t n, const int64_t *ranks, int nr, float *out) {
    enum { B = 65536 };
    int64_t *h1 = calloc(B, sizeof *h1), *h2 = calloc((size_t)nr * B, sizeof *h2);
    NNU_CHECK(h1 && h2, NNU_STATUS_ERR_OOM, "percentiles: out of memory");
    for (int64_t i = 0; i < n; i++) h1[fkey(v[i]) >> 16]++;
    uint32_t bin[6];
    int64_t below[6];                 /* elements in bins before bin[i] */
    for (int r = 0; r < nr; r++) {
        int64_t acc = 0;
        uint32_t b = 0;
        while (acc + h1[b] <= ranks[r]) acc += h1[b++];
        bin[r] = b;
        below[r] = acc;
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t k = fkey(v[i]);
        for (int r = 0; r < nr; r++)
            if ((k >> 16) == bin[r]) h2[(int64_t)r * B + (k & 0xffffu)]++;
    }
    for (int r = 0; r < nr; r++) {
        const int64_t *h = h2 + (int64_t)r * B;
        int64_t acc = below[r];
        uint32_t lo = 0;
        while (acc + h[lo] <= ranks[r]) acc += h[lo++];
        out[r] = fkey_inv(bin[r] << 16 | lo);
    }
    free(h1);
    free(h2);
    return NNU_STATUS_OK;
}

/* numpy's DOUBLE_pairwise_sum */
static double pairwise_f64(const double *a, int64_t n) {
    if (n < 8) {
        double r = 0.0;
        for (int64_t i = 0; i < n; i++) r += a[i];
        return r;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_f64(a, n2) + pairwise_f64(a + n2, n - n2);
}

#define NP_BLOCK 8192

/* np.sum of the float64 array holding x (centered: of (x - mu)**2), in np.sum's blocks */
static double np_sum_f64(const float *x, int64_t n, double mu, int centered) {
    double acc = 0.0, buf[NP_BLOCK];
    for (int64_t s = 0; s < n; s += NP_BLOCK) {
        int64_t m = n - s < NP_BLOCK ? n - s : NP_BLOCK;
        for (int64_t i = 0; i < m; i++) {
            double d = centered ? (double)x[s + i] - mu : (double)x[s + i];
            buf[i] = centered ? d * d : d;
        }
        acc += pairwise_f64(buf, m);
    }
    return acc;
}

/* numpy 1.24 linear percentile from the two neighbouring order statistics:
 * float32 arrays subtract b - a in float32, then interpolate in float64 */
static double lerp_np(double a, double b, double g, int as_float64) {
    double d = as_float64 ? b - a : (double)((float)b - (float)a);
    return g < 0.5 ? a + d * g : b - d * (1.0 - g);
}

nnu_status nnu_fingerprint_intensity_stats(float *v, int64_t n, int as_float64,
                                           nnu_intensity_stats *out) {
    NNU_CHECK(n > 0, NNU_STATUS_ERR_ARG,
              "intensity statistics of zero samples (no foreground voxel in any case)");
    float mn = v[0], mx = v[0];
    for (int64_t i = 1; i < n; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    out->min = mn;
    out->max = mx;
    if (as_float64) {
        double sum = np_sum_f64(v, n, 0, 0);
        out->mean = sum / (double)n;
        out->std = sqrt(np_sum_f64(v, n, sum / (double)n, 1) / (double)n);
    } else {
        float mu, sd;
        nnu_np_mean_std_f32(v, n, &mu, &sd);
        out->mean = mu;
        out->std = sd;
    }
    /* np.percentile(x, (0.5, 50, 99.5)): virtual index (n - 1) * (p / 100) */
    static const double ps[3] = {0.5, 50.0, 99.5};
    double virt[3], gam[3];
    int64_t lo[3], hi[3], ranks[6];
    int nr = 0;
    for (int q = 0; q < 3; q++) {
        virt[q] = (double)(n - 1) * (ps[q] / 100.0);
        double f = floor(virt[q]);
        lo[q] = (int64_t)f;
        hi[q] = lo[q] + 1;
        if (virt[q] >= (double)(n - 1)) lo[q] = hi[q] = n - 1, f = -1;   /* numpy: index -1 */
        gam[q] = virt[q] - f;
        int64_t cand[2] = {lo[q], hi[q]};
        for (int c = 0; c < 2; c++) {
            int dup = 0;
            for (int r = 0; r < nr; r++) dup |= ranks[r] == cand[c];
            if (!dup) ranks[nr++] = cand[c];
        }
    }
    float val[6];
    NNU_TRY(radix_select(v, n, ranks, nr, val));
    double res[3];
    for (int q = 0; q < 3; q++) {
        double a = 0, b = 0;
        for (int r = 0; r < nr; r++) {
            if (ranks[r] == lo[q]) a = val[r];
            if (ranks[r] == hi[q]) b = val[r];
        }
        res[q] = lerp_np(a, b, gam[q], as_float64);
    }
    out->percentile_00_5 = res[0];
    out->median = res[1];
    out->percentile_99_5 = res[2];
    return NNU_STATUS_OK;
}

/* ---------------- whole dataset ---------------- */

nnu_fingerprint_opts nnu_fingerprint_opts_default(void) {
    return (nnu_fingerprint_opts){.num_samples_total = 1e8, .seed = 1234, .n_threads = 0, .progress = 1};
}

nnu_status nnu_fingerprint_load_case(int64_t i, void *vctx, nnu_tensor **image, nnu_tensor **label,
                                     double spacing[3]) {
    const nnu_fingerprint_files *f = vctx;
    nnu_image_info info;
    NNU_TRY(nnu_image_read_case(f->images + i * f->n_images, f->n_images, f->labels[i], f->reader, image, label,
                                &info));
    if ((*image)->shape[0] != f->n_channels) {
        char b[64];
        nnu_status st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s'%s: %lld channels (image %s), dataset.json names %d",
                                 f->images[i * f->n_images], f->n_images > 1 ? " and its other channel files" : "",
                                 (long long)(*image)->shape[0], nnu_tensor_shape_str(*image, b, sizeof b),
                                 f->n_channels);
        nnu_tensor_release(*image);
        nnu_tensor_release(*label);
        *image = *label = NULL;
        return st;
    }
    memcpy(spacing, info.spacing, 3 * sizeof(double));
    return NNU_STATUS_OK;
}

typedef struct extract_ctx {
    nnu_fingerprint_load_fn load;
    void                   *ctx;
    nnu_fingerprint        *fp;
    float                  *samples;       /* n_channels x (n_cases x ns) */
    uint32_t                seed;
} extract_ctx;

static nnu_status extract_one(int64_t i, int worker, void *vctx) {
    extract_ctx *e = vctx;
    nnu_fingerprint *fp = e->fp;
    nnu_tensor *img = NULL, *lab = NULL;
    double sp[3] = {0, 0, 0};
    nnu_status st = e->load(i, e->ctx, &img, &lab, sp);
    if (!st && (img->ndim != 4 || img->shape[0] != fp->n_channels))
        st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "case %lld: %lld channels, expected %d", (long long)i,
                      (long long)(img->ndim == 4 ? img->shape[0] : -1), fp->n_channels);
    int64_t ns = fp->num_samples_per_case;
    if (!st)
        st = nnu_fingerprint_case_tensors(img, lab, sp, ns, e->seed, e->samples + i * ns, fp->n_cases * ns,
                                          &fp->cases[i]);
    nnu_tensor_release(img);
    nnu_tensor_release(lab);
    return st;
}

/* Python's float floor division a // b for positive a, b (as int(1e8 // n)) */
static int64_t py_floordiv(double a, double b) {
    double mod = fmod(a, b), div = (a - mod) / b, fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return (int64_t)fl;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

nnu_status nnu_fingerprint_extract(int64_t n_cases, int n_channels, nnu_fingerprint_load_fn load,
                                   void *ctx, const nnu_fingerprint_opts *opts, nnu_fingerprint *fp) {
    memset(fp, 0, sizeof *fp);
    NNU_CHECK(n_cases > 0 && n_channels > 0 && load, NNU_STATUS_ERR_ARG,
              "fingerprint: %lld cases, %d channels", (long long)n_cases, n_channels);
    nnu_fingerprint_opts o = opts ? *opts : nnu_fingerprint_opts_default();
    fp->n_cases = n_cases;
    fp->n_channels = n_channels;
    fp->num_samples_per_case = py_floordiv(o.num_samples_total, (double)n_cases);
    fp->cases = calloc((size_t)n_cases, sizeof *fp->cases);
    fp->channels = calloc((size_t)n_channels, sizeof *fp->channels);
    int64_t ns = fp->num_samples_per_case, per_channel = n_cases * ns;
    float *samples = malloc((size_t)(per_channel * n_channels > 0 ? per_channel * n_channels : 1) * sizeof(float));
    double *rel = malloc((size_t)n_cases * sizeof *rel);
    if (!fp->cases || !fp->channels || !samples || !rel) {
        free(samples); free(rel);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "fingerprint: out of memory for %lld samples x %d channels",
                        (long long)per_channel, n_channels);
    }
    nnu_progress *bar = NULL;
    if (o.progress) nnu_progress_new("fingerprint", n_cases, &bar);
    extract_ctx e = {load, ctx, fp, samples, o.seed};
    nnu_parallel_opts po = {.n_threads = o.n_threads, .progress = bar};
    nnu_status st = nnu_parallel_for_opts(n_cases, extract_one, &e, &po);
    if (!st) nnu_progress_finish(bar);
    nnu_progress_free(bar);
    /* dataset level: per channel statistics of the concatenated samples */
    int64_t nonempty = 0;
    for (int64_t i = 0; i < n_cases; i++) nonempty += fp->cases[i].n_foreground > 0;
    for (int c = 0; c < n_channels && !st; c++) {
        float *v = samples + c * per_channel;
        int64_t k = 0;
        for (int64_t i = 0; i < n_cases; i++)           /* drop the cases without foreground */
            if (fp->cases[i].n_foreground > 0) {
                if (k != i) memmove(v + k * ns, v + i * ns, (size_t)ns * sizeof *v);
                k++;
            }
        st = nnu_fingerprint_intensity_stats(v, nonempty * ns, nonempty < n_cases, &fp->channels[c]);
    }
    if (!st) {
        for (int64_t i = 0; i < n_cases; i++) rel[i] = fp->cases[i].relative_size_after_cropping;
        qsort(rel, (size_t)n_cases, sizeof *rel, cmp_double);
        fp->median_relative_size_after_cropping =
            n_cases % 2 ? rel[n_cases / 2] : (rel[n_cases / 2 - 1] + rel[n_cases / 2]) / 2.0;
    }
    free(samples);
    free(rel);
    return st;
}

void nnu_fingerprint_free(nnu_fingerprint *fp) {
    if (!fp) return;
    free(fp->cases);
    free(fp->channels);
    memset(fp, 0, sizeof *fp);
}
