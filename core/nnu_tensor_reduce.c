/* nnu_tensor_reduce.c: whole-tensor reductions (sum, mean, min, max, std,
 * percentile), computed in double. Percentiles follow numpy's "linear" method
 * bit for bit, since the planner's thresholds depend on the last bits. */
#include "nnu_tensor.h"

#include <math.h>
#include <stdlib.h>

typedef struct { nnu_dtype dt; double sum, min, max; int64_t n; int has_nan; } acc_ctx;

static void acc_one(void *e, void *ctx) {
    acc_ctx *a = ctx;
    double v = nnu_dtype_load(a->dt, e);
    if (isnan(v)) a->has_nan = 1;
    a->sum += v;
    if (a->n == 0 || v < a->min) a->min = v;
    if (a->n == 0 || v > a->max) a->max = v;
    a->n++;
}

static nnu_status accumulate(const nnu_tensor *t, const char *op, acc_ctx *a) {
    a->dt = t->dtype;
    a->sum = 0; a->n = 0; a->has_nan = 0; a->min = a->max = 0;
    NNU_CHECK(t->storage->mem == NULL || t->storage->mem->host_accessible, NNU_STATUS_ERR_UNSUPPORTED,
              "%s: tensor is not in host memory", op);
    nnu_tensor_foreach(t, acc_one, a);
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_sum(const nnu_tensor *t, double *out) {
    acc_ctx a;
    NNU_TRY(accumulate(t, "sum", &a));
    *out = a.sum;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_mean(const nnu_tensor *t, double *out) {
    acc_ctx a;
    NNU_TRY(accumulate(t, "mean", &a));
    NNU_CHECK(a.n > 0, NNU_STATUS_ERR_ARG, "mean: empty tensor");
    *out = a.sum / (double)a.n;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_min(const nnu_tensor *t, double *out) {
    acc_ctx a;
    NNU_TRY(accumulate(t, "min", &a));
    NNU_CHECK(a.n > 0, NNU_STATUS_ERR_ARG, "min: empty tensor");
    *out = a.has_nan ? NAN : a.min;
    return NNU_STATUS_OK;
}

nnu_status nnu_tensor_max(const nnu_tensor *t, double *out) {
    acc_ctx a;
    NNU_TRY(accumulate(t, "max", &a));
    NNU_CHECK(a.n > 0, NNU_STATUS_ERR_ARG, "max: empty tensor");
    *out = a.has_nan ? NAN : a.max;
    return NNU_STATUS_OK;
}

typedef struct { nnu_dtype dt; double mean, ss; } var_ctx;
static void var_one(void *e, void *ctx) {
    var_ctx *v = ctx;
    double d = nnu_dtype_load(v->dt, e) - v->mean;
    v->ss += d * d;
}

nnu_status nnu_tensor_std(const nnu_tensor *t, int ddof, double *out) {
    acc_ctx a;
    NNU_TRY(accumulate(t, "std", &a));
    NNU_CHECK(a.n > ddof, NNU_STATUS_ERR_ARG, "std: %lld elements with ddof %d", (long long)a.n, ddof);
    var_ctx v = {t->dtype, a.sum / (double)a.n, 0};   /* two-pass: numerically stable */
    nnu_tensor_foreach(t, var_one, &v);
    *out = sqrt(v.ss / (double)(a.n - ddof));
    return NNU_STATUS_OK;
}

double nnu_percentile_sorted(const double *x, int64_t n, double q) {
    if (n <= 0) return NAN;
    double pos = (double)(n - 1) * (q / 100.0);    /* numpy: (n-1) * (q/100), rounding included */
    double fl = floor(pos);
    int64_t i = (int64_t)fl;
    if (i < 0) i = 0;
    if (i > n - 1) i = n - 1;
    double g = pos - fl;
    double a = x[i], b = x[i + 1 < n ? i + 1 : n - 1];
    /* numpy's _lerp: one-sided formula from the nearer end */
    return g < 0.5 ? a + (b - a) * g : b - (b - a) * (1.0 - g);
}

typedef struct { nnu_dtype dt; double *v; int64_t n; int has_nan; } gather_ctx;
static void gather_one(void *e, void *ctx) {
    gather_ctx *g = ctx;
    double v = nnu_dtype_load(g->dt, e);
    if (isnan(v)) g->has_nan = 1;
    g->v[g->n++] = v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

nnu_status nnu_tensor_percentile(const nnu_tensor *t, const double *q, int n, double *out) {
    int64_t m = nnu_tensor_numel(t);
    NNU_CHECK(m > 0, NNU_STATUS_ERR_ARG, "percentile: empty tensor");
    for (int i = 0; i < n; i++)
        NNU_CHECK(q[i] >= 0 && q[i] <= 100, NNU_STATUS_ERR_ARG, "percentile: q=%g outside [0, 100]", q[i]);
    gather_ctx g = {t->dtype, malloc((size_t)m * sizeof(double)), 0, 0};
    NNU_CHECK(g.v, NNU_STATUS_ERR_OOM, "percentile: cannot allocate %lld doubles", (long long)m);
    nnu_tensor_foreach(t, gather_one, &g);
    if (!g.has_nan) qsort(g.v, (size_t)m, sizeof(double), cmp_double);
    for (int i = 0; i < n; i++) out[i] = g.has_nan ? NAN : nnu_percentile_sorted(g.v, m, q[i]);
    free(g.v);
    return NNU_STATUS_OK;
}
