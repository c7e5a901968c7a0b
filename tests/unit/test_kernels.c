/* Kernels against their plain references: Gram and combine (f32/f64, strided, odd sizes),
 * thread-count independence, and the public wrappers' statuses. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static float *random_f32(mtgradi_rng *r, int64_t n)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)mtgradi_rng_normal(r);
    return x;
}

static void test_gram_vs_ref(mtgradi_rng *r, int64_t k, int64_t d, int64_t ld)
{
    float *G = random_f32(r, k * ld);
    double *Gd = malloc((size_t)(k * ld) * sizeof *Gd);
    for (int64_t i = 0; i < k * ld; i++) Gd[i] = (double)G[i] * 1.5;
    double *M = malloc((size_t)(k * k) * sizeof *M), *Mr = malloc((size_t)(k * k) * sizeof *Mr);
    double *part = malloc(mtgradi_gram_work_size(k) * sizeof *part);
    mtgradi_mat m32 = {G, NULL, k, d, ld}, m64 = {NULL, Gd, k, d, ld};
    mtgradi_gram(&m32, M, part, 1);
    mtgradi_gram_ref(&m32, Mr);
    CHECK_ARRAY_CLOSE(M, Mr, k * k, 1e-12, 1e-12 * (double)d);
    double *M2 = malloc((size_t)(k * k) * sizeof *M2);
    mtgradi_gram(&m32, M2, part, 2);
    CHECK(memcmp(M, M2, (size_t)(k * k) * sizeof *M) == 0, "gram differs between 1 and 2 threads (k=%lld d=%lld)",
          (long long)k, (long long)d);
    mtgradi_gram(&m64, M, part, 1);
    mtgradi_gram_ref(&m64, Mr);
    CHECK_ARRAY_CLOSE(M, Mr, k * k, 1e-12, 1e-12 * (double)d);
    CHECK(mtgrad_gram_f32(G, k, d, ld, M2) == MTGRAD_OK, "public gram");
    mtgradi_gram_ref(&m32, Mr);
    CHECK_ARRAY_CLOSE(M2, Mr, k * k, 1e-12, 1e-12 * (double)d);
    free(G), free(Gd), free(M), free(Mr), free(M2), free(part);
}

static void test_combine_vs_ref(mtgradi_rng *r, int64_t k, int64_t d, int64_t ld)
{
    float *G = random_f32(r, k * ld);
    double *w = malloc((size_t)k * sizeof *w);
    for (int64_t i = 0; i < k; i++) w[i] = mtgradi_rng_normal(r);
    float *o1 = malloc((size_t)d * sizeof *o1), *o2 = malloc((size_t)d * sizeof *o2);
    mtgradi_mat m = {G, NULL, k, d, ld};
    mtgradi_out a = {o1, NULL, d}, b = {o2, NULL, d};
    CHECK(mtgradi_combine(&m, w, &a, 2) == 1, "finite");
    mtgradi_combine_ref(&m, w, &b);
    CHECK(memcmp(o1, o2, (size_t)d * sizeof *o1) == 0, "combine == ref bit for bit (k=%lld d=%lld)",
          (long long)k, (long long)d);
    G[0] = NAN;
    CHECK(mtgradi_combine(&m, w, &a, 1) == 0, "NaN detected");
    free(G), free(w), free(o1), free(o2);
}

static void test_public_statuses(void)
{
    float G[6] = {1, 2, 3, 4, 5, 6};
    double M[4], w[2] = {1, 1};
    float out[3];
    CHECK(mtgrad_gram_f32(NULL, 2, 3, 3, M) == MTGRAD_E_INVAL, "NULL G");
    CHECK(mtgrad_gram_f32(G, 2, 3, 3, NULL) == MTGRAD_E_INVAL, "NULL M");
    CHECK(mtgrad_gram_f32(G, 0, 3, 3, M) == MTGRAD_E_SHAPE, "k=0");
    CHECK(mtgrad_gram_f32(G, 2, 0, 3, M) == MTGRAD_E_SHAPE, "d=0");
    CHECK(mtgrad_gram_f32(G, 2, 3, 2, M) == MTGRAD_E_SHAPE, "ldg<d");
    CHECK(mtgrad_gram_f32(G, 2, 3, 3, M) == MTGRAD_OK, "ok");
    CHECK(M[0] == 14 && M[1] == 32 && M[2] == 32 && M[3] == 77, "values %g %g %g", M[0], M[1], M[3]);
    G[4] = INFINITY;
    CHECK(mtgrad_gram_f32(G, 2, 3, 3, M) == MTGRAD_E_NONFINITE, "Inf");
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, w, out) == MTGRAD_E_NONFINITE, "Inf in combine");
    G[4] = 5;
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, w, out) == MTGRAD_OK, "combine ok");
    CHECK(out[0] == 5 && out[1] == 7 && out[2] == 9, "combine values");
    w[1] = NAN;
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, w, out) == MTGRAD_E_NONFINITE, "NaN weight");
    CHECK(mtgrad_combine_f32(G, 2, 3, 3, NULL, out) == MTGRAD_E_INVAL, "NULL w");
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 42);
    int64_t shapes[][3] = {{1, 1, 1}, {2, 7, 9}, {3, 100, 100}, {5, 1000, 1003},
                           {10, 4099, 4099}, {17, 300, 301}, {40, 2000, 2000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        test_gram_vs_ref(&r, shapes[s][0], shapes[s][1], shapes[s][2]);
        test_combine_vs_ref(&r, shapes[s][0], shapes[s][1], shapes[s][2]);
    }
    test_public_statuses();
    return harness_report();
}
