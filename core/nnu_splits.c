/* nnu_splits.c: see nnu_splits.h. */
#include "nnu_splits.h"

#include <stdlib.h>
#include <string.h>

#include "nnu_nprandom.h"

/* permutation(n) of a fresh RandomState(seed) */
static void permutation_seeded(uint32_t seed, int64_t n, int64_t *out) {
    nnu_nprandom r;
    nnu_nprandom_seed(&r, seed);
    nnu_nprandom_permutation(&r, n, out);
}

/* ---- splits ---- */

void nnu_split_free(nnu_split *s) {
    if (!s) return;
    free(s->train);
    free(s->val);
    memset(s, 0, sizeof *s);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct id_key { const char *s; int64_t i; } id_key;

static int cmp_id(const void *a, const void *b) {
    const id_key *x = a, *y = b;
    int c = strcmp(x->s, y->s);   /* strcmp compares as unsigned char: byte order */
    if (c) return c;
    return (x->i > y->i) - (x->i < y->i);
}

nnu_status nnu_splits_sort_ids(const char *const *ids, int64_t n, int64_t *order) {
    NNU_CHECK(n >= 0 && (n == 0 || (ids && order)), NNU_STATUS_ERR_ARG, "sort_ids: bad arguments (n %lld)",
              (long long)n);
    if (n == 0) return NNU_STATUS_OK;
    id_key *k = malloc((size_t)n * sizeof *k);
    NNU_CHECK(k, NNU_STATUS_ERR_OOM, "sort_ids: %lld ids", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (!ids[i]) { free(k); return NNU_FAIL(NNU_STATUS_ERR_ARG, "sort_ids: id %lld is NULL", (long long)i); }
        k[i].s = ids[i];
        k[i].i = i;
    }
    qsort(k, (size_t)n, sizeof *k, cmp_id);
    for (int64_t i = 0; i < n; i++) order[i] = k[i].i;
    free(k);
    return NNU_STATUS_OK;
}

static nnu_status split_alloc(nnu_split *s, int64_t n_train, int64_t n_val) {
    memset(s, 0, sizeof *s);
    s->train = malloc((size_t)(n_train > 0 ? n_train : 1) * sizeof(int64_t));
    s->val = malloc((size_t)(n_val > 0 ? n_val : 1) * sizeof(int64_t));
    if (!s->train || !s->val) {
        nnu_split_free(s);
        return NNU_FAIL(NNU_STATUS_ERR_OOM, "split: %lld + %lld indices", (long long)n_train, (long long)n_val);
    }
    s->n_train = n_train;
    s->n_val = n_val;
    return NNU_STATUS_OK;
}

/* One fold from the shuffled index array perm[n]: val = positions [start, start+size). */
static nnu_status kfold_one(const int64_t *perm, int64_t n, int n_splits, int fold, nnu_split *out) {
    /* fold sizes: n // k each, the first n % k folds one more (scikit-learn KFold) */
    int64_t base = n / n_splits, extra = n % n_splits, start = 0;
    for (int f = 0; f < fold; f++) start += base + (f < extra ? 1 : 0);
    int64_t size = base + (fold < extra ? 1 : 0);
    NNU_TRY(split_alloc(out, n - size, size));
    int64_t nt = 0;
    for (int64_t p = 0; p < n; p++) {
        if (p >= start && p < start + size) out->val[p - start] = perm[p];
        else out->train[nt++] = perm[p];
    }
    qsort(out->val, (size_t)size, sizeof(int64_t), cmp_i64);
    qsort(out->train, (size_t)nt, sizeof(int64_t), cmp_i64);
    return NNU_STATUS_OK;
}

static nnu_status kfold_check(int64_t n, int n_splits) {
    NNU_CHECK(n_splits >= 2, NNU_STATUS_ERR_ARG, "kfold: n_splits %d < 2", n_splits);
    NNU_CHECK(n >= n_splits, NNU_STATUS_ERR_ARG,
              "kfold: cannot have n_splits=%d greater than the number of samples n=%lld", n_splits, (long long)n);
    return NNU_STATUS_OK;
}

nnu_status nnu_splits_kfold(int64_t n, int n_splits, uint32_t seed, int fold, nnu_split *out) {
    NNU_CHECK(out, NNU_STATUS_ERR_ARG, "kfold: out is NULL");
    memset(out, 0, sizeof *out);
    NNU_TRY(kfold_check(n, n_splits));
    NNU_CHECK(fold >= 0 && fold < n_splits, NNU_STATUS_ERR_ARG, "kfold: fold %d outside [0, %d)", fold, n_splits);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    NNU_CHECK(perm, NNU_STATUS_ERR_OOM, "kfold: %lld indices", (long long)n);
    permutation_seeded(seed, n, perm);
    nnu_status st = kfold_one(perm, n, n_splits, fold, out);
    free(perm);
    return st;
}

nnu_status nnu_splits_kfold_all(int64_t n, int n_splits, uint32_t seed, nnu_split *out) {
    NNU_CHECK(out, NNU_STATUS_ERR_ARG, "kfold_all: out is NULL");
    NNU_TRY(kfold_check(n, n_splits));
    memset(out, 0, (size_t)n_splits * sizeof *out);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    NNU_CHECK(perm, NNU_STATUS_ERR_OOM, "kfold_all: %lld indices", (long long)n);
    permutation_seeded(seed, n, perm);
    nnu_status st = NNU_STATUS_OK;
    for (int f = 0; f < n_splits && st == NNU_STATUS_OK; f++) st = kfold_one(perm, n, n_splits, f, &out[f]);
    free(perm);
    if (st != NNU_STATUS_OK)
        for (int f = 0; f < n_splits; f++) nnu_split_free(&out[f]);
    return st;
}

nnu_status nnu_splits_random(int64_t n, int fold, nnu_split *out) {
    NNU_CHECK(out, NNU_STATUS_ERR_ARG, "random split: out is NULL");
    memset(out, 0, sizeof *out);
    NNU_CHECK(n >= 1 && fold >= 0, NNU_STATUS_ERR_ARG, "random split: n %lld, fold %d", (long long)n, fold);
    /* int(n * 0.8): the float product truncated, as Python's int() */
    int64_t n_train = (int64_t)((double)n * 0.8);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    NNU_CHECK(perm, NNU_STATUS_ERR_OOM, "random split: %lld indices", (long long)n);
    permutation_seeded(12345u + (uint32_t)fold, n, perm);
    nnu_status st = split_alloc(out, n_train, n - n_train);
    if (st == NNU_STATUS_OK) {
        memcpy(out->train, perm, (size_t)n_train * sizeof *perm);  /* shuffled order, as the reference */
        memcpy(out->val, perm + n_train, (size_t)(n - n_train) * sizeof *perm);
        qsort(out->val, (size_t)(n - n_train), sizeof(int64_t), cmp_i64);
    }
    free(perm);
    return st;
}

nnu_status nnu_splits_all(int64_t n, nnu_split *out) {
    NNU_CHECK(out, NNU_STATUS_ERR_ARG, "split all: out is NULL");
    NNU_CHECK(n >= 1, NNU_STATUS_ERR_ARG, "split all: n %lld < 1", (long long)n);
    NNU_TRY(split_alloc(out, n, n));
    for (int64_t i = 0; i < n; i++) out->train[i] = out->val[i] = i;
    return NNU_STATUS_OK;
}
