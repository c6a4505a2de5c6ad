/* nnu_nprandom: numpy's legacy RandomState, bit-exact, for the places where the
 * reference draws with it: the fingerprint's intensity samples
 * (RandomState(1234).choice(fg, n, replace=True)), the class locations of
 * preprocessing (RandomState(1234).choice(n, k, replace=False)) and the
 * cross-validation splits (KFold / RandomState(12345 + fold).permutation).
 *
 * Generator: MT19937 with init_genrand seeding (RandomState(seed) for an
 * integer seed), standard tempering. Integer draws follow numpy's legacy
 * paths exactly: random_interval(max) (= randint's masked rejection) draws
 * 32-bit words masked to the next power of two minus one while max < 2^32,
 * else 64-bit words (high word first); max = 0 consumes no word.
 * Not thread-safe per generator: one generator per case / thread. */
#ifndef NNU_NPRANDOM_H
#define NNU_NPRANDOM_H

#include <stdint.h>

typedef struct nnu_nprandom {
    uint32_t key[624];
    int      pos;          /* next word to temper; 624 = regenerate first */
} nnu_nprandom;

/* RandomState(seed) for an integer seed (init_genrand). */
void     nnu_nprandom_seed(nnu_nprandom *r, uint32_t seed);
/* next 32-bit word (the raw MT19937 output). */
uint32_t nnu_nprandom_u32(nnu_nprandom *r);
/* next 64-bit word: high word drawn first (numpy's mt19937_next64). */
uint64_t nnu_nprandom_u64(nnu_nprandom *r);
/* random_sample(): 53-bit double in [0, 1) from two words (a >> 5, b >> 6). */
double   nnu_nprandom_random_sample(nnu_nprandom *r);
/* random_interval(max): uniform integer in [0, max] (masked rejection). */
uint64_t nnu_nprandom_interval(nnu_nprandom *r, uint64_t max);
/* the same with the mask precomputed by nnu_nprandom_mask(max) (many draws, one max) */
uint64_t nnu_nprandom_mask(uint64_t max);
uint64_t nnu_nprandom_interval_masked(nnu_nprandom *r, uint64_t max, uint64_t mask);
/* randint(0, high, n) with the default int64 dtype (high >= 1) into out[n];
 * also choice(high, n, replace=True). */
void     nnu_nprandom_randint(nnu_nprandom *r, int64_t high, int64_t n, int64_t *out);
/* legacy shuffle of a[0..n): for i = n-1 .. 1: swap(a[i], a[interval(i)]). */
void     nnu_nprandom_shuffle(nnu_nprandom *r, int64_t *a, int64_t n);
/* permutation(n) into out[0..n): arange(n) shuffled; its first k entries are
 * choice(n, k, replace=False). */
void     nnu_nprandom_permutation(nnu_nprandom *r, int64_t n, int64_t *out);

#endif
