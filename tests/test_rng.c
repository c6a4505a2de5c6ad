/* test_rng.c: the augmentation generator (nnu_rng.h).
 *   - xoshiro256** reference outputs for a hand-set state (the published algorithm);
 *   - the same (seed, stream) gives the same sequence, other streams/seeds differ;
 *   - uniform in [0, 1), ranges, integers within bounds and all values hit, Bernoulli
 *     edge cases, normal mean / variance within 5 standard errors (seeds printed). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nnu_rng.h"

int main(void) {
    /* xoshiro256** from state {1, 2, 3, 4}: first outputs 11520, 0, 1509978240, 1215971899390074240
     * (the update rule of prng.di.unimi.it/xoshiro256starstar.c, recomputed with Python integers) */
    nnu_rng r;
    memset(&r, 0, sizeof r);
    r.s[0] = 1; r.s[1] = 2; r.s[2] = 3; r.s[3] = 4;
    uint64_t want[4] = {11520ull, 0ull, 1509978240ull, 1215971899390074240ull};
    for (int i = 0; i < 4; i++) {
        uint64_t v = nnu_rng_u64(&r);
        CHECK(v == want[i], "xoshiro256** output %d: %llu vs %llu", i, (unsigned long long)v,
              (unsigned long long)want[i]);
    }

    nnu_rng a, b, c, d;
    nnu_rng_seed(&a, 12345, 7);
    nnu_rng_seed(&b, 12345, 7);
    nnu_rng_seed(&c, 12345, 8);
    nnu_rng_seed(&d, 12346, 7);
    int same = 1, diff_stream = 0, diff_seed = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = nnu_rng_u64(&a);
        same &= x == nnu_rng_u64(&b);
        diff_stream += x != nnu_rng_u64(&c);
        diff_seed += x != nnu_rng_u64(&d);
    }
    CHECK(same && diff_stream == 100 && diff_seed == 100, "streams: same %d, differing %d / %d", same, diff_stream,
          diff_seed);

    printf("seed 99, stream 0\n");
    nnu_rng_seed(&r, 99, 0);
    int ok = 1, hit[7] = {0};
    double s = 0.0, s2 = 0.0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = nnu_rng_uniform(&r);
        ok &= u >= 0.0 && u < 1.0;
        double v = nnu_rng_range(&r, -2.0, 3.0);
        ok &= v >= -2.0 && v < 3.0;
        int64_t k = nnu_rng_int(&r, -3, 3);
        ok &= k >= -3 && k <= 3;
        if (k >= -3 && k <= 3) hit[k + 3]++;
        double z = nnu_rng_normal(&r);
        s += z;
        s2 += z * z;
    }
    CHECK(ok, "uniform, range and int stay within bounds");
    for (int k = 0; k < 7; k++) CHECK(fabs(hit[k] - n / 7.0) < 5 * sqrt(n / 7.0), "int value %d hit %d times", k - 3, hit[k]);
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(fabs(mean) < 5 / sqrt((double)n) && fabs(var - 1.0) < 5 * sqrt(2.0 / n), "normal: mean %.4f var %.4f", mean,
          var);
    CHECK(nnu_rng_int(&r, 5, 5) == 5 && nnu_rng_int(&r, 5, 4) == 5, "degenerate int ranges");
    CHECK(!nnu_rng_bernoulli(&r, 0.0) && nnu_rng_bernoulli(&r, 1.0), "bernoulli 0 and 1");
    CHECK(nnu_rng_range(&r, 2.0, 2.0) == 2.0, "empty range");
    return check_report();
}
