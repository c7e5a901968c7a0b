/* test_graddrop_fast.c — GradDrop's fast kernel against its plain per-column reference, bit for
 * bit: every ISA path (scalar, AVX2, AVX-512, clamped to the CPU), f32 and f64 G and outputs,
 * odd d (chunk tails), ld > d, zero and ±0 columns, columns whose purity P lands exactly on
 * the injected uniform, leak 0 / 0.3 / 1, injected draws and generator draws (the generator must
 * end in the same state: the same stream was consumed). Failures (NaN, ±Inf) must name the same
 * element as the reference; an overflow of finite values must not fail. Then the same with 2 and
 * 3 threads on shapes with k·d >= 2^18 (MTGRADI_PAR_MIN_ELEMS: the kernel splits the columns
 * into segments, each with the generator jumped ahead), odd d: direction, end state of the
 * generator and failures equal to the one-pass reference. Last, the public API (which runs the
 * fast kernel on the aggregator's threads) against the reference with the aggregator's seed. */
#include "harness.h"
#include "internal.h"
#include "mtgrad.h"
#include "vec.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const mtgradi_isa isas[] = {MTGRADI_ISA_SCALAR, MTGRADI_ISA_AVX2, MTGRADI_ISA_AVX512};

typedef struct {
    int64_t k, d, ld;
} shape;

static const shape shapes[] = {
    {1, 1, 1},    {1, 37, 40},   {2, 17, 17},     {3, 255, 260},   {4, 16, 16},
    {5, 257, 257}, {7, 513, 600}, {10, 1001, 1003}, {11, 33, 35},   {40, 301, 301},
};

/* A mix that reaches every branch: signed values over many binades, exact zeros of both signs,
 * all-zero columns (P = 0/0), and columns that cancel exactly (P = 1/2). */
static void fill(double *G, const shape *sh, mtgradi_rng *r)
{
    for (int64_t i = 0; i < sh->k; i++)
        for (int64_t j = 0; j < sh->ld; j++) {
            double u = mtgradi_rng_uniform(r), v = mtgradi_rng_normal(r);
            double x = ldexp(v, (int)(mtgradi_rng_below(r, 40)) - 20);
            if (u < 0.08) x = 0.0;
            else if (u < 0.14) x = -0.0;
            else if (u < 0.2) x = (double)(mtgradi_rng_below(r, 5) - 2); /* small integers */
            G[i * sh->ld + j] = (double)(float)x; /* exactly representable in f32 too */
        }
    for (int64_t j = 0; j < sh->d; j += 7) /* every 7th column zero, some with -0 */
        for (int64_t i = 0; i < sh->k; i++) G[i * sh->ld + j] = (i + j) % 2 ? -0.0 : 0.0;
    if (sh->k >= 2)
        for (int64_t j = 3; j < sh->d; j += 11) { /* +a, -a, 0...: sum 0, P = 0.5 */
            G[j] = 1.5;
            G[sh->ld + j] = -1.5;
            for (int64_t i = 2; i < sh->k; i++) G[i * sh->ld + j] = 0.0;
        }
}

/* Uniforms in [0, 1] with exact 0, 1 and 0.5 (= P of the cancelling columns) mixed in. */
static void fill_draws(double *U, int64_t d, mtgradi_rng *r)
{
    for (int64_t j = 0; j < d; j++) {
        double u = mtgradi_rng_uniform(r);
        U[j] = j % 11 == 3 ? 0.5 : j % 13 == 5 ? 0.0 : j % 17 == 6 ? 1.0 : u;
    }
}

static int same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* One comparison: ref and fast on the same inputs, from the same generator state. */
static void compare(const shape *sh, const double *G64, const float *G32, int in32, int out32,
                    const double *U, double leak, mtgradi_isa isa, double *work)
{
    mtgradi_mat G = {in32 ? G32 : NULL, in32 ? NULL : G64, sh->k, sh->d, sh->ld};
    size_t esz = out32 ? sizeof(float) : sizeof(double), n = (size_t)sh->d;
    void *o1 = calloc(n, esz), *o2 = calloc(n, esz);
    mtgradi_out a = {out32 ? o1 : NULL, out32 ? NULL : o1, sh->d};
    mtgradi_out b = {out32 ? o2 : NULL, out32 ? NULL : o2, sh->d};
    mtgradi_rng r1, r2;
    mtgradi_rng_seed(&r1, (uint64_t)(sh->d * 31 + sh->k));
    r2 = r1;
    int64_t e1 = mtgradi_graddrop_ref(&G, U, &r1, leak, &a, work);
    int64_t e2 = mtgradi_graddrop_fast(&G, U, &r2, leak, &b, work, (int)isa, 1);
    CHECK(e1 == -1 && e2 == -1, "finite G passes (ref %lld fast %lld)", (long long)e1,
          (long long)e2);
    CHECK(same_bits(o1, o2, n * esz),
          "fast == ref bit for bit: k=%lld d=%lld ld=%lld in%s out%s leak %g %s isa %d",
          (long long)sh->k, (long long)sh->d, (long long)sh->ld, in32 ? "32" : "64",
          out32 ? "32" : "64", leak, U ? "injected" : "rng", (int)isa);
    CHECK(same_bits(r1.s, r2.s, sizeof r1.s), "the same number of draws (d=%lld isa %d)",
          (long long)sh->d, (int)isa);
    free(o1), free(o2);
}

/* One case: a shape's G in both precisions, output precision, draws (NULL: the generator), leak. */
typedef void (*case_fn)(const shape *sh, const double *G64, const float *G32, int in32, int out32,
                        const double *U, double leak, double *work);

/* Every shape of shs with random G and draws from `seed`, for leaks 0 / 0.3 / 1, f32 and f64 in
 * and out, injected and generated draws. */
static void sweep(const shape *shs, size_t nsh, uint64_t seed, case_fn f)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, seed);
    const double leaks[] = {0.0, 0.3, 1.0};
    for (size_t s = 0; s < nsh; s++) {
        const shape *sh = &shs[s];
        size_t n = (size_t)(sh->k * sh->ld);
        double *G64 = malloc(n * sizeof *G64), *U = malloc((size_t)sh->d * sizeof *U);
        float *G32 = malloc(n * sizeof *G32);
        double *work = malloc(mtgradi_graddrop_work_size(sh->k) * sizeof *work);
        fill(G64, sh, &r);
        for (size_t i = 0; i < n; i++) G32[i] = (float)G64[i];
        fill_draws(U, sh->d, &r);
        for (size_t l = 0; l < 3; l++)
            for (int in32 = 0; in32 < 2; in32++)
                for (int out32 = 0; out32 < 2; out32++) {
                    f(sh, G64, G32, in32, out32, U, leaks[l], work);
                    f(sh, G64, G32, in32, out32, NULL, leaks[l], work);
                }
        free(G64), free(G32), free(U), free(work);
    }
}

static void compare_every_isa(const shape *sh, const double *G64, const float *G32, int in32,
                              int out32, const double *U, double leak, double *work)
{
    for (size_t t = 0; t < 3; t++) compare(sh, G64, G32, in32, out32, U, leak, isas[t], work);
}

static void test_bits(void) { sweep(shapes, sizeof shapes / sizeof *shapes, 2024, compare_every_isa); }

/* The expected failure, computed independently: the first block of 256 columns with a bad
 * element, and in it the first bad element row by row. */
static int64_t expected_bad(const double *G, int64_t k, int64_t d, int64_t ld)
{
    for (int64_t j0 = 0; j0 < d; j0 += 256)
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = j0; j < j0 + 256 && j < d; j++)
                if (!isfinite(G[i * ld + j])) return i * d + j;
    return -1;
}

static void test_failures(void)
{
    const int64_t k = 5, d = 700, ld = 705;
    double *G = calloc((size_t)(k * ld), sizeof *G), *out = malloc((size_t)d * sizeof *out);
    float *G32 = malloc((size_t)(k * ld) * sizeof *G32);
    double *work = malloc(mtgradi_graddrop_work_size(k) * sizeof *work);
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 9);
    /* (row, column) pairs: the second is later in column blocks but earlier in rows */
    const int64_t bad[][4] = {{3, 10, 0, 300}, {4, 699, 4, 699}, {0, 0, 2, 0}, {2, 256, 0, 511}};
    const double vals[] = {NAN, INFINITY, -INFINITY};
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++)
        for (size_t v = 0; v < 3; v++) {
            for (int64_t i = 0; i < k * ld; i++) G[i] = mtgradi_rng_normal(&r);
            G[bad[c][0] * ld + bad[c][1]] = vals[v];
            G[bad[c][2] * ld + bad[c][3]] = vals[(v + 1) % 3];
            for (int64_t i = 0; i < k * ld; i++) G32[i] = (float)G[i];
            int64_t want = expected_bad(G, k, d, ld);
            for (int in32 = 0; in32 < 2; in32++) {
                mtgradi_mat m = {in32 ? G32 : NULL, in32 ? NULL : G, k, d, ld};
                mtgradi_out o = {NULL, out, d};
                mtgradi_rng r1 = r;
                CHECK(mtgradi_graddrop_ref(&m, NULL, &r1, 0.0, &o, work) == want,
                      "reference fails at the expected element");
                for (size_t t = 0; t < 3; t++) {
                    r1 = r;
                    int64_t got = mtgradi_graddrop_fast(&m, NULL, &r1, 0.0, &o, work, (int)isas[t], 1);
                    CHECK(got == want, "fast fails at %lld, want %lld (case %zu, isa %d)",
                          (long long)got, (long long)want, c, (int)isas[t]);
                }
            }
        }
    /* finite values whose |sum| overflows: no failure, same bits as the reference */
    for (int64_t i = 0; i < k * ld; i++) G[i] = mtgradi_rng_normal(&r);
    for (int64_t i = 0; i < k; i++) G[i * ld + 40] = 1.5e308, G[i * ld + 41] = i % 2 ? 1.5e308 : -1e308;
    double *ref = malloc((size_t)d * sizeof *ref);
    for (size_t t = 0; t < 3; t++) {
        mtgradi_mat m = {NULL, G, k, d, ld};
        mtgradi_out o1 = {NULL, ref, d}, o2 = {NULL, out, d};
        mtgradi_rng r1 = r, r2 = r;
        CHECK(mtgradi_graddrop_ref(&m, NULL, &r1, 0.3, &o1, work) == -1, "overflow: ref passes");
        CHECK(mtgradi_graddrop_fast(&m, NULL, &r2, 0.3, &o2, work, (int)isas[t], 1) == -1,
              "overflow: fast passes (isa %d)", (int)isas[t]);
        CHECK(same_bits(ref, out, (size_t)d * sizeof *out), "overflow: same bits (isa %d)",
              (int)isas[t]);
    }
    free(G), free(G32), free(out), free(work), free(ref);
}

/* Shapes that take the parallel path (k·d >= 2^18), odd d, ld > d for some; the last one has
 * fewer than two chunks of columns, so it must stay in one segment. */
static const shape big_shapes[] = {
    {10, 26227, 26240}, {5, 300001, 300007}, {3, 87389, 87389}, {2, 131101, 131110}, {20000, 17, 17},
};

/* The reference once, then every ISA with 2 and 3 threads against it. */
static void compare_threads(const shape *sh, const double *G64, const float *G32, int in32,
                            int out32, const double *U, double leak, double *work)
{
    mtgradi_mat G = {in32 ? G32 : NULL, in32 ? NULL : G64, sh->k, sh->d, sh->ld};
    size_t esz = out32 ? sizeof(float) : sizeof(double), n = (size_t)sh->d;
    void *o1 = calloc(n, esz), *o2 = malloc(n * esz);
    mtgradi_out a = {out32 ? o1 : NULL, out32 ? NULL : o1, sh->d};
    mtgradi_out b = {out32 ? o2 : NULL, out32 ? NULL : o2, sh->d};
    mtgradi_rng r0, r1;
    mtgradi_rng_seed(&r0, (uint64_t)(sh->d * 7 + sh->k));
    r1 = r0;
    CHECK(mtgradi_graddrop_ref(&G, U, &r1, leak, &a, work) == -1, "ref passes");
    for (size_t t = 0; t < 3; t++)
        for (int threads = 2; threads <= 3; threads++) {
            mtgradi_rng r2 = r0;
            memset(o2, 0xff, n * esz); /* NaN everywhere: a column left unwritten shows */
            int64_t e = mtgradi_graddrop_fast(&G, U, &r2, leak, &b, work, (int)isas[t], threads);
            CHECK(e == -1, "finite G passes (threads %d: %lld)", threads, (long long)e);
            CHECK(same_bits(o1, o2, n * esz),
                  "threads %d == ref bit for bit: k=%lld d=%lld ld=%lld in%s out%s leak %g %s isa %d",
                  threads, (long long)sh->k, (long long)sh->d, (long long)sh->ld, in32 ? "32" : "64",
                  out32 ? "32" : "64", leak, U ? "injected" : "rng", (int)isas[t]);
            CHECK(same_bits(r1.s, r2.s, sizeof r1.s), "threads %d: generator ends in the ref's state "
                  "(d=%lld %s isa %d)", threads, (long long)sh->d, U ? "injected" : "rng", (int)isas[t]);
        }
    free(o1), free(o2);
}

static void test_threads_bits(void)
{
    sweep(big_shapes, sizeof big_shapes / sizeof *big_shapes, 31337, compare_threads);
}

/* Failures on the parallel path: bad elements in various segments (the first, a middle one, the
 * last one's d mod 16 tail), the reference's element named whatever segment finds it first. */
static void test_threads_failures(void)
{
    const int64_t k = 5, d = 100003, ld = 100010;
    double *G = malloc((size_t)(k * ld) * sizeof *G), *out = malloc((size_t)d * sizeof *out);
    float *G32 = malloc((size_t)(k * ld) * sizeof *G32);
    double *work = malloc(mtgradi_graddrop_work_size(k) * sizeof *work);
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 10);
    for (int64_t i = 0; i < k * ld; i++) G[i] = mtgradi_rng_normal(&r);
    /* (row, column) pairs; a column of -1 means only one bad element */
    const int64_t bad[][4] = {{4, 99999, 0, 60000}, {3, 12345, 1, 12346}, {2, 100002, 0, -1},
                              {0, 3, 4, 99000},     {4, 50001, 2, 50100}, {1, 100000, 3, 100001}};
    const double vals[] = {NAN, INFINITY, -INFINITY};
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        double *p1 = &G[bad[c][0] * ld + bad[c][1]], *p2 = bad[c][3] >= 0 ? &G[bad[c][2] * ld + bad[c][3]] : NULL;
        double v1 = *p1, v2 = p2 ? *p2 : 0;
        *p1 = vals[c % 3];
        if (p2) *p2 = vals[(c + 1) % 3];
        for (int64_t i = 0; i < k * ld; i++) G32[i] = (float)G[i];
        int64_t want = expected_bad(G, k, d, ld);
        CHECK(want >= 0, "a bad element is there");
        for (int in32 = 0; in32 < 2; in32++) {
            mtgradi_mat m = {in32 ? G32 : NULL, in32 ? NULL : G, k, d, ld};
            mtgradi_out o = {NULL, out, d};
            for (size_t t = 0; t < 3; t++)
                for (int threads = 2; threads <= 3; threads++) {
                    mtgradi_rng r1 = r;
                    int64_t got = mtgradi_graddrop_fast(&m, NULL, &r1, 0.0, &o, work, (int)isas[t], threads);
                    CHECK(got == want, "threads %d: fails at %lld, want %lld (case %zu, isa %d)",
                          threads, (long long)got, (long long)want, c, (int)isas[t]);
                }
        }
        *p1 = v1;
        if (p2) *p2 = v2;
    }
    free(G), free(G32), free(out), free(work);
}

/* The public path (fast kernel, best ISA, the aggregator's threads) against the reference with
 * the aggregator's seed, over two calls (the generator carries on), and the message of a
 * failing call. */
static void test_api(shape sh, int threads)
{
    size_t n = (size_t)(sh.k * sh.ld);
    double *G64 = malloc(n * sizeof *G64), *work = malloc(mtgradi_graddrop_work_size(sh.k) * sizeof *work);
    float *G32 = malloc(n * sizeof *G32), *dir = malloc((size_t)sh.d * sizeof *dir);
    float *ref = malloc((size_t)sh.d * sizeof *ref);
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 5);
    fill(G64, &sh, &r);
    for (size_t i = 0; i < n; i++) G32[i] = (float)G64[i];
    mtgrad_aggregator *a = NULL;
    char err[256];
    char params[64];
    snprintf(params, sizeof params, "seed=77,threads=%d", threads);
    CHECK(mtgrad_aggregator_new(&a, "graddrop", sh.k, params, err, sizeof err) == MTGRAD_OK, "%s", err);
    mtgradi_rng gen;
    mtgradi_rng_seed(&gen, 77); /* the aggregator's generator with seed=77 */
    mtgradi_mat m = {G32, NULL, sh.k, sh.d, sh.ld};
    mtgradi_out o = {ref, NULL, sh.d};
    for (int call = 0; call < 2; call++) {
        CHECK(mtgrad_aggregate_f32(a, G32, sh.k, sh.d, sh.ld, NULL, dir, NULL) == MTGRAD_OK, "%s",
              mtgrad_aggregator_error(a));
        CHECK(mtgradi_graddrop_ref(&m, NULL, &gen, 0.0, &o, work) == -1, "ref");
        CHECK(same_bits(dir, ref, (size_t)sh.d * sizeof *dir), "API call %d == reference (threads %d)",
              call, threads);
    }
    G32[7 * sh.ld + 300] = NAN;
    CHECK(mtgrad_aggregate_f32(a, G32, sh.k, sh.d, sh.ld, NULL, dir, NULL) == MTGRAD_E_NONFINITE, "NaN");
    CHECK(strstr(mtgrad_aggregator_error(a), "G[7][300]") != NULL, "message names G[7][300]: %s",
          mtgrad_aggregator_error(a));
    /* the failed call drew nothing: the next one continues the reference's stream */
    G32[7 * sh.ld + 300] = 0.25f;
    CHECK(mtgrad_aggregate_f32(a, G32, sh.k, sh.d, sh.ld, NULL, dir, NULL) == MTGRAD_OK, "after");
    CHECK(mtgradi_graddrop_ref(&m, NULL, &gen, 0.0, &o, work) == -1, "ref");
    CHECK(same_bits(dir, ref, (size_t)sh.d * sizeof *dir), "after a failure == reference (threads %d)",
          threads);
    mtgrad_aggregator_free(a);
    free(G64), free(G32), free(dir), free(ref), free(work);
}

int main(void)
{
    test_bits();
    test_failures();
    test_threads_bits();
    test_threads_failures();
    const shape small = {10, 4099, 4101}, big = {10, 26227, 26240}; /* below / above 2^18 */
    test_api(small, 1);
    test_api(big, 1);
    test_api(big, 2);
    test_api(big, 3);
    return harness_report();
}
