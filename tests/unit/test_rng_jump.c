/* test_rng_jump.c — mtgradi_rng_jump (rng.c) against plain stepping, and its polynomial against
 * two independent sources:
 *   - mtgradi_rng_step is checked against a second, literal transcription of Blackman & Vigna's
 *     reference xoshiro256starstar.c next(), so their published constants apply to it;
 *   - jump(n) == n single steps for small and odd n, from several states; jump(a) then jump(b)
 *     == jump(a + b) for large a, b that stepping cannot reach;
 *   - x^(2^128) mod p by 128 squarings with the library's polynomial code must be the official
 *     2^128 jump polynomial {0x180ec6d33cfd0aba, ...} of the reference jump(); x^(2^256) = x mod p
 *     (p irreducible of degree 256);
 *   - p itself recomputed here by Berlekamp–Massey from 512 bits of other state bits than the
 *     ones rng.c's comment names, and compared with the constant. */
#include "harness.h"
#include "internal.h"

#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ the reference generator */

static uint64_t rotl(const uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Blackman & Vigna, xoshiro256starstar.c, next(): written out again, not copied from internal.h. */
static uint64_t ref_next(uint64_t s[4])
{
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The reference jump(): 2^128 steps. */
static const uint64_t JUMP128[4] = {0x180ec6d33cfd0aba, 0xd5a61266f0c9392c, 0xa9582618e03fc9aa,
                                    0x39abdc4529b1661c};

static void ref_jump128(uint64_t s[4])
{
    uint64_t a[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 64; b++) {
            if (JUMP128[i] & (UINT64_C(1) << b))
                for (int w = 0; w < 4; w++) a[w] ^= s[w];
            ref_next(s);
        }
    memcpy(s, a, sizeof a);
}

static int same_state(const mtgradi_rng *a, const mtgradi_rng *b)
{
    return memcmp(a->s, b->s, sizeof a->s) == 0;
}

/* A few starting states: seeded ones and sparse hand-made ones (a single set bit, all ones). */
#define N_STATES 6
static void start_state(int which, mtgradi_rng *r)
{
    static const uint64_t seeds[] = {0, 1, 77, 0xdeadbeefcafef00dULL};
    if (which < 4) {
        mtgradi_rng_seed(r, seeds[which]);
    } else if (which == 4) {
        r->s[0] = 1, r->s[1] = 0, r->s[2] = 0, r->s[3] = 0;
    } else {
        for (int w = 0; w < 4; w++) r->s[w] = ~UINT64_C(0);
    }
}

static void test_step_is_reference(void)
{
    for (int st = 0; st < N_STATES; st++) {
        mtgradi_rng r;
        start_state(st, &r);
        uint64_t s[4];
        memcpy(s, r.s, sizeof s);
        int ok = 1;
        for (int n = 0; n < 5000; n++) ok &= mtgradi_rng_step(&r) == ref_next(s);
        ok &= memcmp(s, r.s, sizeof s) == 0;
        CHECK(ok, "mtgradi_rng_step is the reference xoshiro256** next() (state %d)", st);
    }
}

/* ------------------------------------------------------------------ jump vs stepping */

static void test_jump_vs_steps(void)
{
    static const uint64_t ns[] = {0, 1, 2, 3, 63, 64, 255, 256, 257, 1000, 65543, 1000003};
    for (int st = 0; st < N_STATES; st++)
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            mtgradi_rng a, b;
            start_state(st, &a);
            b = a;
            for (uint64_t i = 0; i < ns[t]; i++) (void)mtgradi_rng_step(&a);
            mtgradi_rng_jump(&b, ns[t]);
            CHECK(same_state(&a, &b), "jump(%llu) == %llu steps (state %d)",
                  (unsigned long long)ns[t], (unsigned long long)ns[t], st);
            /* and the draws after it are the same stream */
            CHECK(mtgradi_rng_uniform(&a) == mtgradi_rng_uniform(&b), "next draw (n %llu)",
                  (unsigned long long)ns[t]);
        }
}

static void test_jump_composes(void)
{
    static const uint64_t pairs[][2] = {
        {0, 5},
        {1, 1},
        {17, 1000003},
        {UINT64_C(1) << 40, (UINT64_C(1) << 40) + 12345},
        {UINT64_C(0x7fffffffffffffff), UINT64_C(0x7fffffffffffffff)},
        {UINT64_C(0xfffffffffffffffe), 1},
        {UINT64_C(0x123456789abcdef), UINT64_C(0xfedcba987654321)},
    };
    for (int st = 0; st < N_STATES; st++)
        for (size_t p = 0; p < sizeof pairs / sizeof *pairs; p++) {
            mtgradi_rng a, b;
            start_state(st, &a);
            b = a;
            mtgradi_rng_jump(&a, pairs[p][0]);
            mtgradi_rng_jump(&a, pairs[p][1]);
            mtgradi_rng_jump(&b, pairs[p][0] + pairs[p][1]);
            CHECK(same_state(&a, &b), "jump(%llx) jump(%llx) == jump(sum) (state %d)",
                  (unsigned long long)pairs[p][0], (unsigned long long)pairs[p][1], st);
        }
    /* 2^64 - 1 steps then one more vs the reference's 2^128 jump is out of reach; instead the
     * jumps must commute with stepping: jump(n) then a step == a step then jump(n) */
    mtgradi_rng a, b;
    start_state(2, &a);
    b = a;
    mtgradi_rng_jump(&a, UINT64_C(0xfedcba9876543210));
    (void)mtgradi_rng_step(&a);
    (void)mtgradi_rng_step(&b);
    mtgradi_rng_jump(&b, UINT64_C(0xfedcba9876543210));
    CHECK(same_state(&a, &b), "jump commutes with a step");
}

/* ------------------------------------------------------------------ the polynomial */

/* a·b mod p the slow way (Horner over a's coefficients, one x at a time), as a second
 * implementation for the library's squaring. */
static void slow_mulmod(const uint64_t a[4], const uint64_t b[4], uint64_t r[4])
{
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int i = 255; i >= 0; i--) {
        int top = (int)(acc[3] >> 63);
        for (int w = 3; w > 0; w--) acc[w] = (acc[w] << 1) | (acc[w - 1] >> 63);
        acc[0] <<= 1;
        if (top)
            for (int w = 0; w < 4; w++) acc[w] ^= mtgradi_rng_charpoly[w];
        if ((a[i / 64] >> (i % 64)) & 1)
            for (int w = 0; w < 4; w++) acc[w] ^= b[w];
    }
    memcpy(r, acc, sizeof acc);
}

static void test_polynomial(void)
{
    /* the squaring against the slow product, on dense random polynomials and a few sparse ones */
    mtgradi_rng g;
    mtgradi_rng_seed(&g, 4242);
    int ok = 1;
    for (int t = 0; t < 200; t++) {
        uint64_t a[4], want[4];
        for (int w = 0; w < 4; w++) a[w] = t < 4 ? (t == w ? UINT64_C(1) << 63 : 0) : mtgradi_rng_next(&g);
        slow_mulmod(a, a, want);
        mtgradi_rng_poly_sqrmod(a);
        ok &= memcmp(a, want, sizeof a) == 0;
    }
    CHECK(ok, "poly_sqrmod == the slow a·a mod p");

    /* x^(2^128) mod p by 128 squarings == the reference's 2^128 jump polynomial */
    uint64_t q[4] = {2, 0, 0, 0}; /* x */
    for (int i = 0; i < 128; i++) mtgradi_rng_poly_sqrmod(q);
    CHECK(memcmp(q, JUMP128, sizeof q) == 0,
          "x^(2^128) mod p == official jump constants (got %016llx %016llx %016llx %016llx)",
          (unsigned long long)q[0], (unsigned long long)q[1], (unsigned long long)q[2],
          (unsigned long long)q[3]);
    /* 128 more: x^(2^256) == x mod p, as for any irreducible p of degree 256 */
    for (int i = 0; i < 128; i++) mtgradi_rng_poly_sqrmod(q);
    CHECK(q[0] == 2 && q[1] == 0 && q[2] == 0 && q[3] == 0, "x^(2^256) == x mod p");

    /* and the reference jump() agrees with jumping by its polynomial done by hand: applying
     * JUMP128 twice (x^(2^129)) == squaring once more */
    uint64_t q2[4];
    memcpy(q2, JUMP128, sizeof q2);
    mtgradi_rng_poly_sqrmod(q2);
    mtgradi_rng r;
    start_state(3, &r);
    uint64_t s[4];
    memcpy(s, r.s, sizeof s);
    ref_jump128(s);
    ref_jump128(s);
    uint64_t t[4], acc[4] = {0, 0, 0, 0};
    memcpy(t, r.s, sizeof t);
    for (int i = 0; i < 256; i++) {
        if ((q2[i / 64] >> (i % 64)) & 1)
            for (int w = 0; w < 4; w++) acc[w] ^= t[w];
        ref_next(t);
    }
    CHECK(memcmp(acc, s, sizeof s) == 0, "two reference jumps == x^(2^129) mod p applied");
}

/* Berlekamp–Massey over GF(2): the shortest recurrence of a[0..n); returns its length L and
 * the connection polynomial c[0..L] (c[0] = 1): a[m] = sum_{i=1..L} c[i] a[m-i]. */
static int berlekamp_massey(const unsigned char *a, int n, unsigned char *c)
{
    unsigned char b[513] = {0}, t[513];
    memset(c, 0, (size_t)n + 1);
    c[0] = b[0] = 1;
    int L = 0, m = 1;
    for (int k = 0; k < n; k++) {
        unsigned char dsc = a[k];
        for (int i = 1; i <= L; i++) dsc ^= (unsigned char)(c[i] & a[k - i]);
        if (!dsc) {
            m++;
            continue;
        }
        memcpy(t, c, (size_t)n + 1);
        for (int i = 0; i + m <= n; i++) c[i + m] ^= b[i];
        if (2 * L <= k) {
            L = k + 1 - L;
            memcpy(b, t, (size_t)n + 1);
            m = 1;
        } else {
            m++;
        }
    }
    return L;
}

static void test_berlekamp_massey(void)
{
    /* (state, word, bit) of the observed bit: not the bit rng.c derived p from */
    static const int obs[][3] = {{1, 2, 37}, {3, 0, 63}, {2, 3, 5}};
    for (size_t o = 0; o < sizeof obs / sizeof *obs; o++) {
        mtgradi_rng r;
        start_state(obs[o][0], &r);
        unsigned char a[512], c[513];
        for (int n = 0; n < 512; n++) {
            a[n] = (unsigned char)((r.s[obs[o][1]] >> obs[o][2]) & 1);
            (void)mtgradi_rng_step(&r);
        }
        int L = berlekamp_massey(a, 512, c);
        CHECK(L == 256, "linear complexity 256, got %d", L);
        /* characteristic polynomial = reversed connection polynomial: coefficient of x^i is c[L-i] */
        uint64_t p[4] = {0, 0, 0, 0};
        for (int i = 0; i < 256 && L == 256; i++)
            if (c[L - i]) p[i / 64] |= UINT64_C(1) << (i % 64);
        CHECK(memcmp(p, mtgradi_rng_charpoly, sizeof p) == 0,
              "Berlekamp–Massey (word %d bit %d) == mtgradi_rng_charpoly", obs[o][1], obs[o][2]);
    }
}

int main(void)
{
    test_step_is_reference();
    test_jump_vs_steps();
    test_jump_composes();
    test_polynomial();
    test_berlekamp_massey();
    return harness_report();
}
