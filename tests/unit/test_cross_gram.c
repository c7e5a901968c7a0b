/* The cross Gram C = A Bᵀ (src/core/cross_gram.c) and the aggregator entry point that takes it
 * (mtgrad_weights_from_cross_gram, SDMGrad's double sampling): the fast kernel against the plain
 * reference (f32/f64, strided, odd sizes, k = 1..7), thread-count independence bit for bit,
 * C(A, A) against the Gram, the public statuses; sdmgrad with the cross Gram of one batch with
 * itself equals the single-sampling weights bit for bit, an asymmetric C with a negative
 * diagonal gives finite weights whose inner iterate lies on the simplex; E_UNSUPPORTED for
 * methods without the flag; failures leave the state unchanged. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void fill(mtgradi_rng *r, double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = mtgradi_rng_normal(r);
}

/* |C - Cr| <= rtol * |a_i| |b_j| entry by entry (Cauchy–Schwarz scale). */
static void check_rel(const double *C, const double *Cr, const double *na, const double *nb,
                      int64_t k, double rtol, const char *what)
{
    double worst = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double sc = na[i] * nb[j];
            double e = fabs(C[i * k + j] - Cr[i * k + j]) / (sc > 0 ? sc : 1);
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst <= rtol, "%s: relative error %.3g (k=%lld)", what, worst, (long long)k);
}

static void test_kernel(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 5);
    const int64_t ks[] = {1, 2, 3, 7}, ds[] = {1, 7, 64, 1000, 5003};
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 5; b++) {
            int64_t k = ks[a], d = ds[b], ld = d + 3;
            double *A = malloc((size_t)(k * ld) * sizeof *A), *B = malloc((size_t)(k * ld) * sizeof *B);
            float *Af = malloc((size_t)(k * ld) * sizeof *Af), *Bf = malloc((size_t)(k * ld) * sizeof *Bf);
            fill(&r, A, k * ld);
            fill(&r, B, k * ld);
            for (int64_t i = 0; i < k * ld; i++) Af[i] = (float)A[i], Bf[i] = (float)B[i];
            double C[49], Cr[49], na[7], nb[7], part[16 * 49];
            for (int64_t i = 0; i < k; i++) {
                na[i] = nb[i] = 0;
                for (int64_t j = 0; j < d; j++) na[i] += A[i * ld + j] * A[i * ld + j], nb[i] += B[i * ld + j] * B[i * ld + j];
                na[i] = sqrt(na[i]), nb[i] = sqrt(nb[i]);
            }
            mtgradi_mat m64a = {NULL, A, k, d, ld}, m64b = {NULL, B, k, d, ld};
            mtgradi_mat m32a = {Af, NULL, k, d, ld}, m32b = {Bf, NULL, k, d, ld};
            mtgradi_cross_gram_ref(&m64a, &m64b, Cr);
            CHECK(mtgrad_cross_gram_f64(A, B, k, d, ld, C) == MTGRAD_OK, "f64 status");
            check_rel(C, Cr, na, nb, k, 1e-13, "f64");
            mtgradi_cross_gram_ref(&m32a, &m32b, Cr);
            CHECK(mtgrad_cross_gram_f32(Af, Bf, k, d, ld, C) == MTGRAD_OK, "f32 status");
            check_rel(C, Cr, na, nb, k, 1e-13, "f32 (products exact in double)");
            /* the reference itself against a direct double loop over the f32 data */
            double direct = 0;
            for (int64_t j = 0; j < d; j++) direct += (double)Af[(k - 1) * ld + j] * (double)Bf[j];
            CHECK(Cr[(k - 1) * k] == direct, "reference entry");
            mtgradi_cross_gram(&m32a, &m32b, C, part, 1);
            mtgradi_cross_gram(&m32a, &m32b, Cr, part, 3);
            CHECK(memcmp(C, Cr, (size_t)(k * k) * sizeof *C) == 0, "threads 1 vs 3 (small)");
            free(A), free(B), free(Af), free(Bf);
        }
    /* large enough for the threaded path: thread counts give the same bits */
    int64_t k = 4, d = 70001;
    float *A = malloc((size_t)(k * d) * sizeof *A), *B = malloc((size_t)(k * d) * sizeof *B);
    for (int64_t i = 0; i < k * d; i++) A[i] = (float)mtgradi_rng_normal(&r), B[i] = (float)mtgradi_rng_normal(&r);
    mtgradi_mat ma = {A, NULL, k, d, d}, mb = {B, NULL, k, d, d};
    double C1[16], C2[16], C3[16], part[16 * 16];
    mtgradi_cross_gram(&ma, &mb, C1, part, 1);
    mtgradi_cross_gram(&ma, &mb, C2, part, 2);
    mtgradi_cross_gram(&ma, &mb, C3, part, 3);
    CHECK(memcmp(C1, C2, sizeof C1) == 0 && memcmp(C1, C3, sizeof C1) == 0, "threads 1/2/3");
    /* C(A, A) is the Gram (same column partition; blocks differ, so to rounding) */
    double M[16];
    mtgradi_cross_gram(&ma, &ma, C1, part, 2);
    CHECK(mtgrad_gram_f32(A, k, d, d, M) == MTGRAD_OK, "gram");
    for (int64_t i = 0; i < 16; i++) CHECK_CLOSE(C1[i], M[i], 0, 1e-12 * sqrt(M[(i / 4) * 5] * M[(i % 4) * 5]));
    free(A), free(B);
}

static void test_statuses(void)
{
    double A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4];
    CHECK(mtgrad_cross_gram_f64(NULL, B, 2, 3, 3, C) == MTGRAD_E_INVAL, "NULL A");
    CHECK(mtgrad_cross_gram_f64(A, NULL, 2, 3, 3, C) == MTGRAD_E_INVAL, "NULL B");
    CHECK(mtgrad_cross_gram_f64(A, B, 2, 3, 3, NULL) == MTGRAD_E_INVAL, "NULL C");
    CHECK(mtgrad_cross_gram_f64(A, B, 0, 3, 3, C) == MTGRAD_E_SHAPE, "k = 0");
    CHECK(mtgrad_cross_gram_f64(A, B, 2, 0, 3, C) == MTGRAD_E_SHAPE, "d = 0");
    CHECK(mtgrad_cross_gram_f64(A, B, 2, 3, 2, C) == MTGRAD_E_SHAPE, "ld < d");
    CHECK(mtgrad_cross_gram_f64(A, B, 2, 3, 3, C) == MTGRAD_OK, "ok");
    const double want[4] = {1, 6, 4, 15}; /* <a0,b0>, <a0,b1>, <a1,b0>, <a1,b1> */
    CHECK_ARRAY_CLOSE(C, want, 4, 0, 0);
    B[4] = NAN;
    CHECK(mtgrad_cross_gram_f64(A, B, 2, 3, 3, C) == MTGRAD_E_NONFINITE, "NaN");
    float Af[2] = {3e38f, 1}, Bf[2] = {3e38f, 1};
    double C1;
    CHECK(mtgrad_cross_gram_f32(Af, Bf, 1, 2, 2, &C1) == MTGRAD_OK, "9e76 fits a double");
}

static mtgrad_aggregator *make(const char *method, int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    CHECK(mtgrad_aggregator_new(&a, method, k, params, err, sizeof err) == MTGRAD_OK, "new %s: %s", method, err);
    return a;
}

static void test_sdmgrad(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 9);
    const int64_t k = 4, d = 50;
    double G[200], G2[200], M[16], C[16], w1[4], w2[4];
    fill(&r, G, k * d);
    fill(&r, G2, k * d);
    /* one batch with itself: the same bits as single sampling, over several warm-started calls */
    mtgrad_aggregator *a = make("sdmgrad", k, NULL), *b = make("sdmgrad", k, "sampling=double");
    CHECK(mtgrad_gram_f64(G, k, d, d, M) == MTGRAD_OK && mtgrad_cross_gram_f64(G, G, k, d, d, C) == MTGRAD_OK, "grams");
    for (int t = 0; t < 3; t++) {
        CHECK(mtgrad_weights_from_gram(a, M, k, NULL, w1) == MTGRAD_OK, "single");
        CHECK(mtgrad_weights_from_cross_gram(b, M, k, NULL, w2) == MTGRAD_OK, "cross: %s", mtgrad_aggregator_error(b));
        CHECK(memcmp(w1, w2, sizeof w1) == 0, "call %d: cross Gram = Gram gives the same bits", t);
    }
    /* two batches: C not symmetric, negative diagonal entries allowed */
    CHECK(mtgrad_cross_gram_f64(G, G2, k, d, d, C) == MTGRAD_OK, "cross");
    C[0] = -fabs(C[0]) - 1; /* force a negative diagonal */
    int asym = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) asym |= C[i * k + j] != C[j * k + i];
    CHECK(asym, "C is not symmetric");
    double lambda = 0.3;
    for (int t = 0; t < 3; t++) {
        CHECK(mtgrad_weights_from_cross_gram(b, C, k, NULL, w2) == MTGRAD_OK, "asymmetric C");
        double s = 0;
        for (int64_t i = 0; i < k; i++) {
            double inner = w2[i] * (1 + lambda) - lambda / (double)k; /* the simplex iterate */
            CHECK(isfinite(w2[i]) && inner >= -1e-15, "w[%lld] = %g", (long long)i, w2[i]);
            s += inner;
        }
        CHECK_CLOSE(s, 1.0, 1e-14, 0);
    }
    /* failures: the state is kept */
    unsigned char s0[512], s1[512];
    size_t n0 = sizeof s0, n1 = sizeof s1;
    mtgrad_aggregator_save(b, s0, &n0);
    C[5] = NAN;
    CHECK(mtgrad_weights_from_cross_gram(b, C, k, NULL, w2) == MTGRAD_E_NONFINITE, "NaN in C");
    CHECK(mtgrad_weights_from_cross_gram(b, NULL, k, NULL, w2) == MTGRAD_E_INVAL, "NULL C");
    CHECK(mtgrad_weights_from_cross_gram(b, M, 3, NULL, w2) == MTGRAD_E_SHAPE, "k mismatch");
    CHECK(mtgrad_weights_from_cross_gram(b, M, k, NULL, NULL) == MTGRAD_E_INVAL, "NULL weights");
    CHECK(mtgrad_weights_from_cross_gram(NULL, M, k, NULL, w2) == MTGRAD_E_INVAL, "NULL aggregator");
    mtgrad_aggregator_save(b, s1, &n1);
    CHECK(n0 == n1 && memcmp(s0, s1, n0) == 0, "state unchanged by failures");
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
    /* only methods with the flag take a cross Gram */
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        const mtgrad_method *m = mtgrad_method_at(i);
        mtgrad_aggregator *x = make(mtgrad_method_name(m), k, NULL);
        double L[4] = {1, 2, 3, 4};
        mtgrad_status st = mtgrad_weights_from_cross_gram(x, M, k, L, w1);
        if (mtgrad_method_flags(m) & MTGRAD_CROSS_GRAM)
            CHECK(st == MTGRAD_OK, "%s: %d", mtgrad_method_name(m), (int)st);
        else
            CHECK(st == MTGRAD_E_UNSUPPORTED, "%s: %d (%s)", mtgrad_method_name(m), (int)st,
                  mtgrad_aggregator_error(x));
        mtgrad_aggregator_free(x);
    }
}

int main(void)
{
    test_kernel();
    test_statuses();
    test_sdmgrad();
    return harness_report();
}
