/* test_splits.c: cross-validation splits (nnu_splits.h, nnunet-behaviour.md §1.4).
 *   - the doc's test vector (n = 20, fold 0 val [3, 8, 13, 16]) and hand cases;
 *   - numpy RandomState(seed).permutation(n) for n = 1…99 and large n, four seeds,
 *     and random_sample, bit-exact (tests/fixtures/splits/splits_ref.bin);
 *   - scikit-learn KFold(5, shuffle, 12345) train/val lists for n = 5…39 and
 *     larger n, and the 80:20 fallback for folds 5, 6, 9;
 *   - byte-order sorting of ids, n < 5 and bad folds rejected, fold "all". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnu_nprandom.h"
#include "nnu_splits.h"
#include "refio.h"

#define FIXTURE "tests/fixtures/splits/splits_ref.bin"
#define REGEN "/usr/bin/python3 tests/gen/gen_splits_ref.py"

static int same_list(const int64_t *got, int64_t n_got, const nnu_tensor *ref) {
    if (!ref) return 0;
    if (n_got != nnu_tensor_numel(ref)) return 0;
    const int64_t *r = nnu_tensor_data(ref);
    for (int64_t i = 0; i < n_got; i++)
        if (got[i] != r[i]) return 0;
    return 1;
}

static nnu_tensor *load(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static nnu_tensor *load(const char *fmt, ...) {
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return refio_load(FIXTURE, name, REGEN);
}

static void test_vector(void) {
    nnu_split s;
    CHECK_OK(nnu_splits_kfold(20, 5, 12345, 0, &s));
    int64_t want[4] = {3, 8, 13, 16};
    CHECK(s.n_val == 4 && memcmp(s.val, want, sizeof want) == 0, "n=20 fold 0 val");
    CHECK(s.n_train == 16, "n=20 fold 0 train size %lld", (long long)s.n_train);
    for (int64_t i = 1; i < s.n_train; i++) CHECK(s.train[i - 1] < s.train[i], "train ascending");
    nnu_split_free(&s);

    /* every index is in exactly one val set; fold sizes n//5 (+1 for the first n%5) */
    nnu_split all[5];
    CHECK_OK(nnu_splits_kfold_all(23, 5, 12345, all));
    int seen[23] = {0};
    for (int f = 0; f < 5; f++) {
        CHECK(all[f].n_val == (f < 3 ? 5 : 4), "n=23 fold %d size %lld", f, (long long)all[f].n_val);
        for (int64_t i = 0; i < all[f].n_val; i++) seen[all[f].val[i]]++;
        nnu_split_free(&all[f]);
    }
    for (int i = 0; i < 23; i++) CHECK(seen[i] == 1, "index %d in %d val sets", i, seen[i]);
}

/* permutation(n) of a fresh RandomState(seed) */
static void permutation_seeded(uint32_t seed, int64_t n, int64_t *out) {
    nnu_nprandom r;
    nnu_nprandom_seed(&r, seed);
    nnu_nprandom_permutation(&r, n, out);
}

static void test_numpy_permutation(void) {
    static const int extra[] = {260, 484, 631, 1000, 1251, 5000};
    int64_t *buf = malloc(5000 * sizeof *buf);
    for (int k = 0; k < 99 + 6; k++) {
        int n = k < 99 ? k + 1 : extra[k - 99];
        nnu_tensor *ref = load("perm_%d", n);
        permutation_seeded(12345, n, buf);
        CHECK(same_list(buf, n, ref), "RandomState(12345).permutation(%d)", n);
        nnu_tensor_release(ref);
    }
    static const uint32_t seeds[] = {0, 1, 1234, 4294967295u};
    for (int si = 0; si < 4; si++)
        for (int n = 10; n <= 1000; n *= 10) {
            nnu_tensor *ref = load("perm_s%u_%d", seeds[si], n);
            permutation_seeded(seeds[si], n, buf);
            CHECK(same_list(buf, n, ref), "RandomState(%u).permutation(%d)", seeds[si], n);
            nnu_tensor_release(ref);
        }
    free(buf);
    nnu_tensor *rs = load("random_sample_7");
    nnu_nprandom mt;
    nnu_nprandom_seed(&mt, 7);
    for (int i = 0; rs && i < 8; i++) {
        double got = nnu_nprandom_random_sample(&mt), want = ((const double *)nnu_tensor_data(rs))[i];
        CHECK(got == want, "random_sample[%d]: %.17g vs %.17g", i, got, want);
    }
    nnu_tensor_release(rs);
}

static void test_sklearn_kfold(void) {
    static const int extra[] = {52, 100, 260, 484, 1251};
    for (int k = 0; k < 35 + 5; k++) {
        int n = k < 35 ? k + 5 : extra[k - 35];
        for (int f = 0; f < 5; f++) {
            nnu_split s;
            CHECK_OK(nnu_splits_kfold(n, 5, 12345, f, &s));
            nnu_tensor *tr = load("kf_%d_%d_train", n, f), *va = load("kf_%d_%d_val", n, f);
            CHECK(same_list(s.train, s.n_train, tr), "KFold n=%d fold %d train", n, f);
            CHECK(same_list(s.val, s.n_val, va), "KFold n=%d fold %d val", n, f);
            nnu_tensor_release(tr);
            nnu_tensor_release(va);
            nnu_split_free(&s);
        }
    }
}

static void test_random_fallback(void) {
    static const int ns[] = {1, 2, 5, 7, 20, 33, 260}, folds[] = {5, 6, 9};
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 3; j++) {
            nnu_split s;
            CHECK_OK(nnu_splits_random(ns[i], folds[j], &s));
            nnu_tensor *tr = load("rnd_%d_%d_train", ns[i], folds[j]), *va = load("rnd_%d_%d_val", ns[i], folds[j]);
            CHECK(same_list(s.train, s.n_train, tr), "80:20 n=%d fold %d train (shuffled order)", ns[i], folds[j]);
            CHECK(same_list(s.val, s.n_val, va), "80:20 n=%d fold %d val", ns[i], folds[j]);
            nnu_tensor_release(tr);
            nnu_tensor_release(va);
            nnu_split_free(&s);
        }
}

static void test_ids_and_errors(void) {
    /* byte order: upper case before lower case, '_' (0x5f) between them, and a
     * UTF-8 multi-byte id (0xc3...) after every ASCII id */
    const char *ids[] = {"hippocampus_10", "Hippocampus_2", "hippocampus_1", "\xc3\xa9t\xc3\xa9", "hippocampus_"};
    int64_t order[5], want[5] = {1, 4, 2, 0, 3};
    CHECK_OK(nnu_splits_sort_ids(ids, 5, order));
    CHECK(memcmp(order, want, sizeof want) == 0, "sort order %lld %lld %lld %lld %lld", (long long)order[0],
          (long long)order[1], (long long)order[2], (long long)order[3], (long long)order[4]);

    nnu_split s;
    CHECK_FAILS(nnu_splits_kfold(4, 5, 12345, 0, &s), NNU_STATUS_ERR_ARG, "greater than the number of samples");
    CHECK_FAILS(nnu_splits_kfold(10, 5, 12345, 5, &s), NNU_STATUS_ERR_ARG, "fold 5");
    CHECK_OK(nnu_splits_all(3, &s));
    CHECK(s.n_train == 3 && s.n_val == 3 && s.train[2] == 2 && s.val[0] == 0, "fold all");
    nnu_split_free(&s);
    nnu_split_free(&s);   /* idempotent */

    /* 32-bit and 64-bit random_interval paths stay within [0, max] */
    nnu_nprandom mt;
    nnu_nprandom_seed(&mt, 99);
    int ok = 1;
    for (int i = 0; i < 1000; i++) {
        if (nnu_nprandom_interval(&mt, 6) > 6) ok = 0;
        if (nnu_nprandom_interval(&mt, 0x1ffffffffull) > 0x1ffffffffull) ok = 0;
    }
    CHECK(ok, "random_interval range");
}

int main(void) {
    test_vector();
    test_numpy_permutation();
    test_sklearn_kfold();
    test_random_fallback();
    test_ids_and_errors();
    return check_report();
}
