/* nnu_rng: the fast seeded random generator of augmentation and patch sampling.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64 from (seed, stream).
 * A generator is a plain struct owned by one thread; there is no global state.
 * Determinism rule of the loader: every random decision of batch b, sample j is
 * drawn from the stream nnu_rng_stream(b, j) of the user's seed, so the output
 * depends only on (seed, b, j) and never on which worker thread produced it.
 *
 * The augmentation randomness of the reference (torch + numpy global RNGs) is not
 * reproduced (nnunet-behaviour.md §8.2 says a port need not); the splits use the
 * numpy-exact generator of nnu_splits.h instead. */
#ifndef NNU_RNG_H
#define NNU_RNG_H

#include <stdint.h>

typedef struct nnu_rng {
    uint64_t s[4];
    int      has_normal;     /* Box-Muller produces pairs: the spare one */
    double   normal_spare;
} nnu_rng;

/* Independent, reproducible generator for (seed, stream). */
void nnu_rng_seed(nnu_rng *r, uint64_t seed, uint64_t stream);
/* A stream id for sample j of batch b (any 64-bit mix would do; this one is fixed). */
static inline uint64_t nnu_rng_stream(uint64_t batch, uint64_t sample) {
    return (batch << 16) ^ sample ^ 0x5bd1e995u;
}

uint64_t nnu_rng_u64(nnu_rng *r);
/* uniform double in [0, 1) (53 bits) */
double   nnu_rng_uniform(nnu_rng *r);
/* uniform double in [lo, hi) (lo when hi == lo) */
double   nnu_rng_range(nnu_rng *r, double lo, double hi);
/* uniform integer in [lo, hi] (inclusive, unbiased; lo when hi <= lo) */
int64_t  nnu_rng_int(nnu_rng *r, int64_t lo, int64_t hi);
/* 1 with probability p (p <= 0: never, p >= 1: always) */
int      nnu_rng_bernoulli(nnu_rng *r, double p);
/* standard normal N(0, 1) (Box-Muller) */
double   nnu_rng_normal(nnu_rng *r);

#endif
