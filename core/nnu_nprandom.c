/* nnu_nprandom.c: see nnu_nprandom.h. MT19937 constants and tempering as in
 * Matsumoto & Nishimura (2002) and numpy's mt19937.c; the integer paths as
 * numpy's legacy random_interval / random_bounded_uint64_fill (masked). */
#include "nnu_nprandom.h"

#define MT_N 624
#define MT_M 397

void nnu_nprandom_seed(nnu_nprandom *r, uint32_t seed) {
    /* init_genrand: key[i] = 1812433253 * (key[i-1] ^ (key[i-1] >> 30)) + i (mod 2^32) */
    r->key[0] = seed;
    for (int i = 1; i < MT_N; i++)
        r->key[i] = 1812433253u * (r->key[i - 1] ^ (r->key[i - 1] >> 30)) + (uint32_t)i;
    r->pos = MT_N;
}

static void regenerate(nnu_nprandom *r) {
    uint32_t *k = r->key;
    int i;
    for (i = 0; i < MT_N - MT_M; i++) {
        uint32_t y = (k[i] & 0x80000000u) | (k[i + 1] & 0x7fffffffu);
        k[i] = k[i + MT_M] ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
    }
    for (; i < MT_N - 1; i++) {
        uint32_t y = (k[i] & 0x80000000u) | (k[i + 1] & 0x7fffffffu);
        k[i] = k[i + (MT_M - MT_N)] ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
    }
    uint32_t y = (k[MT_N - 1] & 0x80000000u) | (k[0] & 0x7fffffffu);
    k[MT_N - 1] = k[MT_M - 1] ^ (y >> 1) ^ (-(y & 1u) & 0x9908b0dfu);
    r->pos = 0;
}

uint32_t nnu_nprandom_u32(nnu_nprandom *r) {
    if (r->pos >= MT_N) regenerate(r);
    uint32_t y = r->key[r->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t nnu_nprandom_u64(nnu_nprandom *r) {
    uint64_t hi = nnu_nprandom_u32(r);
    return (hi << 32) | nnu_nprandom_u32(r);
}

double nnu_nprandom_random_sample(nnu_nprandom *r) {
    uint32_t a = nnu_nprandom_u32(r) >> 5, b = nnu_nprandom_u32(r) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

uint64_t nnu_nprandom_mask(uint64_t max) {
    uint64_t m = max;
    m |= m >> 1; m |= m >> 2; m |= m >> 4; m |= m >> 8; m |= m >> 16; m |= m >> 32;
    return m;
}

uint64_t nnu_nprandom_interval_masked(nnu_nprandom *r, uint64_t max, uint64_t mask) {
    uint64_t v;
    if (max == 0) return 0;                                 /* no draw at all */
    if (max <= 0xffffffffu) {
        while ((v = (nnu_nprandom_u32(r) & mask)) > max) {}
    } else {
        while ((v = (nnu_nprandom_u64(r) & mask)) > max) {}
    }
    return v;
}

uint64_t nnu_nprandom_interval(nnu_nprandom *r, uint64_t max) {
    return nnu_nprandom_interval_masked(r, max, nnu_nprandom_mask(max));
}

void nnu_nprandom_randint(nnu_nprandom *r, int64_t high, int64_t n, int64_t *out) {
    uint64_t max = (uint64_t)(high - 1), mask = nnu_nprandom_mask(max);
    for (int64_t i = 0; i < n; i++) out[i] = (int64_t)nnu_nprandom_interval_masked(r, max, mask);
}

void nnu_nprandom_shuffle(nnu_nprandom *r, int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)nnu_nprandom_interval(r, (uint64_t)i);
        int64_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

void nnu_nprandom_permutation(nnu_nprandom *r, int64_t n, int64_t *out) {
    for (int64_t i = 0; i < n; i++) out[i] = i;
    nnu_nprandom_shuffle(r, out, n);
}
