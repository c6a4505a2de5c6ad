/* nnu_rng.c: see nnu_rng.h. Reference algorithms: xoshiro256** 1.0 and
 * splitmix64 (https://prng.di.unimi.it/), Box-Muller for normals. */
#include "nnu_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void nnu_rng_seed(nnu_rng *r, uint64_t seed, uint64_t stream) {
    /* mix seed and stream first so that (seed, stream) and (seed', stream') with
     * seed ^ stream equal still start far apart */
    uint64_t x = seed;
    uint64_t a = splitmix64(&x);
    x = a ^ (stream * 0xd1342543de82ef95ull + 0x2545f4914f6cdd1dull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_normal = 0;
    r->normal_spare = 0.0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nnu_rng_u64(nnu_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double nnu_rng_uniform(nnu_rng *r) { return (double)(nnu_rng_u64(r) >> 11) * 0x1.0p-53; }

double nnu_rng_range(nnu_rng *r, double lo, double hi) {
    return hi <= lo ? lo : lo + (hi - lo) * nnu_rng_uniform(r);
}

int64_t nnu_rng_int(nnu_rng *r, int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1u;   /* 0 means the full 2^64 range */
    if (span == 0) return (int64_t)nnu_rng_u64(r);
    /* rejection of the top partial block: unbiased */
    uint64_t limit = UINT64_MAX - UINT64_MAX % span, v;
    do { v = nnu_rng_u64(r); } while (v >= limit);
    return lo + (int64_t)(v % span);
}

int nnu_rng_bernoulli(nnu_rng *r, double p) {
    if (p <= 0.0) return 0;
    if (p >= 1.0) return 1;
    return nnu_rng_uniform(r) < p;
}

double nnu_rng_normal(nnu_rng *r) {
    if (r->has_normal) { r->has_normal = 0; return r->normal_spare; }
    double u1, u2 = nnu_rng_uniform(r);
    do { u1 = nnu_rng_uniform(r); } while (u1 <= 0.0);   /* log(0) guard */
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->normal_spare = rad * sin(th);
    r->has_normal = 1;
    return rad * cos(th);
}
