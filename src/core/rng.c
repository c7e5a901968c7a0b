/* rng.c — xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64.
 * One generator per aggregator: no global state, reproducible from the `seed` parameter. */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mtgradi_rng_seed(mtgradi_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

uint64_t mtgradi_rng_next(mtgradi_rng *r) { return mtgradi_rng_step(r); }

double mtgradi_rng_uniform(mtgradi_rng *r) { return mtgradi_rng_step_uniform(r); }

double mtgradi_rng_normal(mtgradi_rng *r)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    double u1 = 1.0 - mtgradi_rng_uniform(r);
    double u2 = mtgradi_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

int64_t mtgradi_rng_below(mtgradi_rng *r, int64_t n)
{
    /* Lemire's rejection keeps the draw unbiased. */
    uint64_t bound = (uint64_t)n;
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = mtgradi_rng_next(r);
        if (x >= threshold) return (int64_t)(x % bound);
    }
}

void mtgradi_rng_shuffle(mtgradi_rng *r, int64_t *idx, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = mtgradi_rng_below(r, i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
