/* test_nprandom.c: numpy's legacy RandomState (core/nnu_nprandom.h).
 * Reference values are numpy 1.24 outputs (Debian python3-numpy), written here as
 * literals; the first three also are the canonical MT19937 test vector
 * (init_genrand(5489): 3499211612, 581869302, 3890346734).
 *   RandomState(5489).randint(0, 2**32, dtype=uint64) x3  (raw 32-bit words)
 *   RandomState(0).random_sample(3) = 0.5488135039273248, 0.7151893663724195, 0.6027633760716439
 *   RandomState(42).randint(0, 10, size=8)   = 6 3 7 4 6 9 2 6        (32-bit masked path)
 *   RandomState(7).randint(0, 2**33, size=4) = 5271381188 5664942582 8496402643 6251689575
 *                                              (64-bit path, high word first)
 *   RandomState(1234).permutation(10)        = 7 2 9 1 0 8 4 5 6 3
 *   RandomState(1234).choice(7, 12)          = 3 6 5 4 4 0 1 1 1 2 6 3
 *   RandomState(12345).permutation(6)        = 5 3 4 0 1 2
 *   a = arange(9); RandomState(3).shuffle(a) = 6 2 7 4 5 0 3 1 8
 * The fingerprint, preprocessing and splits tests check the same generator against
 * their numpy fixtures (test_fingerprint, test_preproc_case, test_splits). */
#include <string.h>

#include "check.h"
#include "nnu_nprandom.h"

static int same(const int64_t *a, const int64_t *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

int main(void) {
    nnu_nprandom r;

    nnu_nprandom_seed(&r, 5489);
    uint32_t w0 = nnu_nprandom_u32(&r), w1 = nnu_nprandom_u32(&r), w2 = nnu_nprandom_u32(&r);
    CHECK(w0 == 3499211612u && w1 == 581869302u && w2 == 3890346734u, "MT19937(5489) words: %u %u %u", w0, w1, w2);
    nnu_nprandom_seed(&r, 5489);
    uint64_t d = nnu_nprandom_u64(&r);
    CHECK(d == ((uint64_t)3499211612u << 32 | 581869302u), "u64: high word first");

    nnu_nprandom_seed(&r, 0);
    double s0 = nnu_nprandom_random_sample(&r), s1 = nnu_nprandom_random_sample(&r),
           s2 = nnu_nprandom_random_sample(&r);
    CHECK(s0 == 0.5488135039273248 && s1 == 0.7151893663724195 && s2 == 0.6027633760716439,
          "random_sample: %.17g %.17g %.17g", s0, s1, s2);

    int64_t got[16];
    nnu_nprandom_seed(&r, 42);
    nnu_nprandom_randint(&r, 10, 8, got);
    CHECK(same(got, (int64_t[]){6, 3, 7, 4, 6, 9, 2, 6}, 8), "randint(0, 10) (32-bit path)");
    nnu_nprandom_seed(&r, 7);
    nnu_nprandom_randint(&r, (int64_t)1 << 33, 4, got);
    CHECK(same(got, (int64_t[]){5271381188LL, 5664942582LL, 8496402643LL, 6251689575LL}, 4),
          "randint(0, 2**33) (64-bit path)");
    nnu_nprandom_seed(&r, 1234);
    nnu_nprandom_randint(&r, 7, 12, got);
    CHECK(same(got, (int64_t[]){3, 6, 5, 4, 4, 0, 1, 1, 1, 2, 6, 3}, 12), "choice(7, 12, replace=True)");

    nnu_nprandom_seed(&r, 1234);
    nnu_nprandom_permutation(&r, 10, got);
    CHECK(same(got, (int64_t[]){7, 2, 9, 1, 0, 8, 4, 5, 6, 3}, 10), "permutation(10), seed 1234");
    nnu_nprandom_seed(&r, 12345);
    nnu_nprandom_permutation(&r, 6, got);
    CHECK(same(got, (int64_t[]){5, 3, 4, 0, 1, 2}, 6), "permutation(6), seed 12345");
    int64_t a[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    nnu_nprandom_seed(&r, 3);
    nnu_nprandom_shuffle(&r, a, 9);
    CHECK(same(a, (int64_t[]){6, 2, 7, 4, 5, 0, 3, 1, 8}, 9), "shuffle(arange(9)), seed 3");

    /* interval(0) consumes no word; the masked form equals the plain one */
    nnu_nprandom q;
    nnu_nprandom_seed(&r, 99);
    nnu_nprandom_seed(&q, 99);
    CHECK(nnu_nprandom_interval(&r, 0) == 0, "interval(0) = 0");
    CHECK(nnu_nprandom_u32(&r) == nnu_nprandom_u32(&q), "interval(0) draws nothing");
    int ok = 1;
    uint64_t m6 = nnu_nprandom_mask(6), mb = nnu_nprandom_mask(0x1ffffffffull);
    CHECK(m6 == 7 && mb == 0x1ffffffffull && nnu_nprandom_mask(8) == 15, "masks");
    for (int i = 0; i < 2000; i++) {
        uint64_t x = nnu_nprandom_interval(&r, 6), y = nnu_nprandom_interval_masked(&q, 6, m6);
        ok &= x == y && x <= 6;
        x = nnu_nprandom_interval(&r, 0x1ffffffffull);
        y = nnu_nprandom_interval_masked(&q, 0x1ffffffffull, mb);
        ok &= x == y && x <= 0x1ffffffffull;
    }
    CHECK(ok, "interval: masked form identical, values within [0, max]");
    /* the generator state survives a regeneration (624 words) consistently */
    nnu_nprandom_seed(&r, 5489);
    for (int i = 0; i < 624; i++) nnu_nprandom_u32(&r);
    uint32_t w624 = nnu_nprandom_u32(&r), w625 = nnu_nprandom_u32(&r);
    nnu_nprandom_seed(&q, 5489);
    for (int i = 0; i < 312; i++) nnu_nprandom_u64(&q);
    CHECK(nnu_nprandom_u64(&q) == ((uint64_t)w624 << 32 | w625), "words 624/625 across the regeneration");
    return check_report();
}
