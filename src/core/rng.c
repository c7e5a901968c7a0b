/* rng.c — xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64.
 * One generator per aggregator: no global state, reproducible from the `seed` parameter.
 * mtgradi_rng_jump skips n draws in O(256 log n) work, so that a kernel that draws one number
 * per column (GradDrop) can hand each thread the generator already at its first column and
 * still consume the exact stream of one thread. */
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

/* ------------------------------------------------------------------ jump ahead
 *
 * The state update s -> T s of xoshiro256 is linear over GF(2) (xors, shifts, a rotation; the
 * ** scrambler only touches the output). T's characteristic polynomial p(x) has degree 256, and
 * p(T) = 0 (Cayley–Hamilton), so with q(x) = x^n mod p(x) = sum_i c_i x^i, T^n s = sum_i c_i T^i s:
 * 256 steps of a copy of s, xor-accumulating the states whose c_i is 1 (the official jump()
 * applies its fixed q in the same way).
 *
 * p(x) = x^256 + sum_{i<256} (bit i of CHARPOLY, word 0 first, low bit first) x^i. Derived by
 * Berlekamp–Massey on 512 values of bit 0 of s[0] along the orbit of a nonzero state: the
 * generator has full period 2^256 - 1, so p is primitive, hence irreducible, and the minimal
 * polynomial of any nonzero linear output sequence (the connection polynomial BM returns, of
 * degree 256, here reversed into p) is p itself; 2·256 bits determine it. test_rng_jump.c
 * recomputes it the same way and checks x^(2^128) mod p against the official jump constants. */
const uint64_t mtgradi_rng_charpoly[4] = {0x9d116f2bb0f0f001ULL, 0x0280002bcefd1a5eULL,
                                          0x04b4edcf26259f85ULL, 0x0003c03c3f3ecb19ULL};

/* a <- a·x mod p: a shift, and p's low terms folded in when x^256 appears (branch-free). */
static void poly_mulx(uint64_t a[4])
{
    uint64_t top = 0 - (a[3] >> 63);
    a[3] = (a[3] << 1) | (a[2] >> 63);
    a[2] = (a[2] << 1) | (a[1] >> 63);
    a[1] = (a[1] << 1) | (a[0] >> 63);
    a[0] <<= 1;
    for (int i = 0; i < 4; i++) a[i] ^= mtgradi_rng_charpoly[i] & top;
}

/* The square of a 32-bit polynomial: coefficient i moves to 2i (squaring over GF(2) has no
 * cross terms). */
static uint64_t spread32(uint64_t v)
{
    v = (v | v << 16) & 0x0000ffff0000ffffULL;
    v = (v | v << 8) & 0x00ff00ff00ff00ffULL;
    v = (v | v << 4) & 0x0f0f0f0f0f0f0f0fULL;
    v = (v | v << 2) & 0x3333333333333333ULL;
    v = (v | v << 1) & 0x5555555555555555ULL;
    return v;
}

/* red[t] = t(x)·x^256 mod p for the 16 polynomials t of degree < 4: what the top 4 coefficients
 * of a product fold back to. Built once per jump (it depends on p only). */
static void reduction_table(uint64_t red[16][4])
{
    for (int w = 0; w < 4; w++) red[0][w] = 0, red[1][w] = mtgradi_rng_charpoly[w];
    for (int t = 2; t < 16; t *= 2) {
        for (int w = 0; w < 4; w++) red[t][w] = red[t / 2][w];
        poly_mulx(red[t]);
        for (int u = 1; u < t; u++)
            for (int w = 0; w < 4; w++) red[t + u][w] = red[t][w] ^ red[u][w];
    }
}

static void sqrmod(uint64_t a[4], uint64_t red[16][4])
{
    uint64_t sq[8];
    for (int w = 0; w < 4; w++) {
        sq[2 * w] = spread32(a[w] & 0xffffffffULL);
        sq[2 * w + 1] = spread32(a[w] >> 32);
    }
    /* hi(x)·x^256 mod p, 4 coefficients at a time from the top (as a table-driven CRC):
     * acc <- acc·x^4 + nibble·x^256, where the 4 bits shifted out of acc join the nibble and
     * red folds them back in */
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int nib = 63; nib >= 0; nib--) {
        unsigned t = (unsigned)((acc[3] >> 60) ^ (sq[4 + nib / 16] >> (nib % 16 * 4))) & 15u;
        acc[3] = (acc[3] << 4) | (acc[2] >> 60);
        acc[2] = (acc[2] << 4) | (acc[1] >> 60);
        acc[1] = (acc[1] << 4) | (acc[0] >> 60);
        acc[0] <<= 4;
        for (int w = 0; w < 4; w++) acc[w] ^= red[t][w];
    }
    for (int w = 0; w < 4; w++) a[w] = sq[w] ^ acc[w];
}

void mtgradi_rng_poly_sqrmod(uint64_t a[4])
{
    uint64_t red[16][4];
    reduction_table(red);
    sqrmod(a, red);
}

void mtgradi_rng_jump(mtgradi_rng *r, uint64_t n)
{
    /* q = x^n mod p, left to right over n's bits: square, then times x for a set bit */
    uint64_t q[4] = {1, 0, 0, 0}, red[16][4];
    reduction_table(red);
    int top = 63;
    while (top >= 0 && !((n >> top) & 1)) top--;
    for (int b = top; b >= 0; b--) {
        sqrmod(q, red);
        if ((n >> b) & 1) poly_mulx(q);
    }
    mtgradi_rng t = *r;
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int i = 0; i < 256; i++) {
        uint64_t m = 0 - ((q[i / 64] >> (i % 64)) & 1);
        for (int w = 0; w < 4; w++) acc[w] ^= t.s[w] & m;
        (void)mtgradi_rng_step(&t);
    }
    for (int w = 0; w < 4; w++) r->s[w] = acc[w];
}
