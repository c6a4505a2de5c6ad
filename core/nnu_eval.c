/* nnu_eval.c: see nnu_eval.h. The counts come from a joint histogram
 * hist[r][p] over the label values that occur (bin L = "any other value"), so a
 * case with many classes is read once; every region's TP/FP/FN is then a sum of
 * histogram cells: TP = Σ_{r∈R, p∈R}, FP = Σ_{r∉R, p∈R}, FN = Σ_{r∈R, p∉R}. */
#include "nnu_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BINS 1024   /* labels 0..1022 get their own bin; hist is at most 8 MB */

/* Element (flat C-order index i) of a tensor as an integer label. */
typedef struct walker {
    const char *base;
    nnu_dtype dt;
    size_t es;
    int nd;
    int64_t shape[NNU_MAX_DIMS], stride[NNU_MAX_DIMS];
} walker;

static void walker_init(walker *w, const nnu_tensor *t) {
    w->base = nnu_tensor_data(t);
    w->dt = t->dtype;
    w->es = nnu_dtype_size(t->dtype);
    w->nd = t->ndim;
    for (int a = 0; a < t->ndim; a++) { w->shape[a] = t->shape[a]; w->stride[a] = t->stride[a]; }
}

static inline int64_t load_label(nnu_dtype dt, const void *p) {
    switch (dt) {
    case NNU_DTYPE_U8:  return *(const uint8_t *)p;
    case NNU_DTYPE_I8:  return *(const int8_t *)p;
    case NNU_DTYPE_I16: return *(const int16_t *)p;
    case NNU_DTYPE_U16: return *(const uint16_t *)p;
    case NNU_DTYPE_I32: return *(const int32_t *)p;
    case NNU_DTYPE_I64: return *(const int64_t *)p;
    default: {
        double v = nnu_dtype_load(dt, p);
        return isfinite(v) ? (int64_t)nearbyint(v) : INT64_MIN;
    }
    }
}

/* Offset (in elements) of flat index i. */
static inline int64_t walker_offset(const walker *w, int64_t i) {
    int64_t off = 0;
    for (int a = w->nd - 1; a >= 0; a--) {
        off += (i % w->shape[a]) * w->stride[a];
        i /= w->shape[a];
    }
    return off;
}

static inline int bin_of(int64_t v, int L) { return v >= 0 && v < L ? (int)v : L; }

nnu_status nnu_eval_confusion(const nnu_tensor *ref, const nnu_tensor *pred,
                              const nnu_eval_region *regions, int n, int has_ignore,
                              int64_t ignore_label, nnu_confusion *out) {
    char a[96], b[96];
    NNU_CHECK(nnu_tensor_same_shape(ref, pred), NNU_STATUS_ERR_SHAPE,
              "evaluation: reference %s and prediction %s differ in shape",
              nnu_tensor_shape_str(ref, a, sizeof a), nnu_tensor_shape_str(pred, b, sizeof b));
    NNU_CHECK(n >= 0, NNU_STATUS_ERR_ARG, "evaluation: %d regions", n);
    /* Bins 0..L-1 hold the labels up to the largest one any region names; every
     * other value (larger labels, negatives, the -1 of unannotated voxels) shares
     * bin L, which belongs to no region: it can only count as FP/FN/TN. */
    int L = 0;
    for (int r = 0; r < n; r++) {
        NNU_CHECK(regions[r].n >= 1 && regions[r].n <= NNU_EVAL_MAX_REGION_LABELS, NNU_STATUS_ERR_ARG,
                  "evaluation: region %d has %d labels (1 to %d)", r, regions[r].n,
                  NNU_EVAL_MAX_REGION_LABELS);
        for (int j = 0; j < regions[r].n; j++) {
            int64_t l = regions[r].labels[j];
            NNU_CHECK(l >= 0 && l < MAX_BINS - 1, NNU_STATUS_ERR_ARG,
                      "evaluation: label %lld outside 0..%d", (long long)l, MAX_BINS - 2);
            if (l + 1 > L) L = (int)l + 1;
        }
    }
    int64_t nb = L + 1;
    /* hist[r * nb + p]: voxels with reference bin r and prediction bin p */
    int64_t *hist = calloc((size_t)(nb * nb), sizeof *hist);
    NNU_CHECK(hist, NNU_STATUS_ERR_OOM, "evaluation: out of memory");

    walker wr, wp;
    walker_init(&wr, ref);
    walker_init(&wp, pred);
    int64_t numel = nnu_tensor_numel(ref), counted = 0;
    int contig = nnu_tensor_is_contiguous(ref) && nnu_tensor_is_contiguous(pred);
    /* one pass over the voxels; strided inputs pay a div/mod per axis per voxel */
    for (int64_t i = 0; i < numel; i++) {
        int64_t oref = contig ? i : walker_offset(&wr, i), opred = contig ? i : walker_offset(&wp, i);
        int64_t vr = load_label(wr.dt, wr.base + oref * (int64_t)wr.es);
        if (has_ignore && vr == ignore_label) continue;
        int64_t vp = load_label(wp.dt, wp.base + opred * (int64_t)wp.es);
        hist[bin_of(vr, L) * nb + bin_of(vp, L)]++;
        counted++;
    }

    char *in = malloc((size_t)nb);
    if (!in) { free(hist); return NNU_FAIL(NNU_STATUS_ERR_OOM, "evaluation: out of memory"); }
    for (int r = 0; r < n; r++) {
        memset(in, 0, (size_t)nb);                 /* in[bin] = bin's label ∈ region */
        for (int j = 0; j < regions[r].n; j++) in[regions[r].labels[j]] = 1;
        nnu_confusion c = {0, 0, 0, 0, 0, 0};
        for (int64_t x = 0; x < nb; x++)
            for (int64_t y = 0; y < nb; y++) {
                int64_t h = hist[x * nb + y];
                if (in[x] && in[y]) c.tp += h;
                else if (!in[x] && in[y]) c.fp += h;
                else if (in[x] && !in[y]) c.fn += h;
            }
        c.tn = counted - c.tp - c.fp - c.fn;     /* ignored voxels are not in `counted` */
        c.n_ref = c.tp + c.fn;
        c.n_pred = c.tp + c.fp;
        out[r] = c;
    }
    free(in);
    free(hist);
    return NNU_STATUS_OK;
}

/* The reference divides numpy int64 counts, i.e. in double: same rounding here. */
double nnu_eval_dice(const nnu_confusion *c) {
    if (c->tp + c->fp + c->fn == 0) return NAN;
    return 2.0 * (double)c->tp / (double)(2 * c->tp + c->fp + c->fn);
}

double nnu_eval_iou(const nnu_confusion *c) {
    if (c->tp + c->fp + c->fn == 0) return NAN;
    return (double)c->tp / (double)(c->tp + c->fp + c->fn);
}

/* numpy/core/src/umath/loops_utils.h pairwise_sum_DOUBLE (PW_BLOCKSIZE 128) */
static double pairwise(const double *a, int64_t n) {
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        int64_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

/* np.add.reduce starts from the identity 0.0 and adds the pairwise sum of all n
 * elements (numpy >= 1.23's get_reduction_initial; contiguous float64 needs no
 * buffering, so the whole array is one pairwise call). */
double nnu_eval_np_sum(const double *x, int64_t n) { return 0.0 + pairwise(x, n); }

double nnu_eval_np_mean(const double *x, int64_t n) {
    return n > 0 ? nnu_eval_np_sum(x, n) / (double)n : NAN;
}

/* np.nanmean: NaNs replaced by 0 in a copy (so the pairwise blocks see the same
 * positions as numpy), summed, divided by the count of non-NaN entries. */
double nnu_eval_np_nanmean(const double *x, int64_t n) {
    double *y = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int64_t cnt = 0;
    double s;
    if (y) {
        for (int64_t i = 0; i < n; i++) {
            y[i] = isnan(x[i]) ? 0.0 : x[i];
            cnt += !isnan(x[i]);
        }
        s = nnu_eval_np_sum(y, n);
        free(y);
    } else {                                       /* no memory: plain order, same count */
        s = 0.0;
        for (int64_t i = 0; i < n; i++)
            if (!isnan(x[i])) { s += x[i]; cnt++; }
    }
    return cnt > 0 ? s / (double)cnt : NAN;
}
