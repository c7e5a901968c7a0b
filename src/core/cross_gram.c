/* cross_gram.c — the cross Gram C = A Bᵀ of two k x d gradient matrices (C[i][j] = <a_i, b_j>),
 * with products and sums in double.
 *
 * Why it exists: SDMGrad's double sampling (methods.md 7.1/7.3) needs an unbiased estimate of
 * M = G Gᵀ, which the Gram of one batch is not (E[g gᵀ] = ḡḡᵀ + Cov). The product of the
 * gradients of two independent batches a, b is: E[G(a) G(b)ᵀ] = ḠḠᵀ. C is not symmetric, and
 * its diagonal can be negative.
 *
 * mtgradi_cross_gram_ref: one dot product per pair, columns in order — the reference.
 * mtgradi_cross_gram: the fast kernel. Columns are cut into the same MTGRADI_GRAM_SPLITS fixed
 * ranges as the Gram (gram.c); a range is walked in blocks whose 2k rows (A's and B's) fit in
 * L2, so A and B are each streamed from memory once instead of k times; each pair of a block is
 * summed in the canonical 8-lane order of vec.h (an AVX2 path where the CPU has it: f32 x f32
 * products are exact in double, so FMA = multiply-then-add and both paths give the same bits);
 * block sums go into the range's partial in block order, partials are added in range order.
 * Threads take whole ranges, so the result never depends on the thread count.
 */
#include "internal.h"
#include "vec.h"

#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define CROSS_X86 1
#endif

void mtgradi_cross_gram_ref(const mtgradi_mat *A, const mtgradi_mat *B, double *C)
{
    int64_t k = A->k;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t c = 0; c < A->d; c++) s += mtgradi_mat_at(A, i, c) * mtgradi_mat_at(B, j, c);
            C[i * k + j] = s;
        }
}

size_t mtgradi_cross_gram_work_size(int64_t k)
{
    return (size_t)MTGRADI_GRAM_SPLITS * (size_t)k * (size_t)k;
}

/* Columns per block: the 2k rows of a block (f32) take about 256 KiB. A function of k only. */
static int64_t block_cols(int64_t k)
{
    int64_t b = (int64_t)32768 / k / 64 * 64;
    return b < 256 ? 256 : b > 16384 ? 16384 : b;
}

#ifdef CROSS_X86
/* The canonical 8-lane dot with lanes 0-3 and 4-7 in two ymm accumulators. */
__attribute__((target("avx2,fma"))) static double dot_f32_avx2(const float *x, const float *y,
                                                                int64_t n)
{
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 vx = _mm256_loadu_ps(x + c), vy = _mm256_loadu_ps(y + c);
        lo = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(vx)),
                             _mm256_cvtps_pd(_mm256_castps256_ps128(vy)), lo);
        hi = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(vx, 1)),
                             _mm256_cvtps_pd(_mm256_extractf128_ps(vy, 1)), hi);
    }
    double l[MTGRADI_LANES];
    _mm256_storeu_pd(l, lo);
    _mm256_storeu_pd(l + 4, hi);
    for (int j = 0; c + j < n; j++) l[j] += (double)x[c + j] * (double)y[c + j];
    return mtgradi_lanes_sum(l);
}
#endif

/* Range s of the columns, accumulated into P (k x k, zeroed here). */
static void cross_range(const mtgradi_mat *A, const mtgradi_mat *B, int s, double *P, int avx2)
{
    int64_t k = A->k, bc = block_cols(k);
    int64_t c0 = mtgradi_gram_range_start(A->d, s), c1 = mtgradi_gram_range_start(A->d, s + 1);
    memset(P, 0, (size_t)(k * k) * sizeof *P);
    (void)avx2;
    for (int64_t c = c0; c < c1; c += bc) {
        int64_t n = c1 - c < bc ? c1 - c : bc;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) {
                double v;
                if (A->f64) {
                    v = mtgradi_dot_f64_lanes(A->f64 + i * A->ld + c, B->f64 + j * B->ld + c, n);
                } else {
                    const float *x = A->f32 + i * A->ld + c, *y = B->f32 + j * B->ld + c;
#ifdef CROSS_X86
                    if (avx2) v = dot_f32_avx2(x, y, n);
                    else
#endif
                        v = mtgrad_vec_dot_f32_f64acc(x, y, n);
                }
                P[i * k + j] += v;
            }
    }
}

void mtgradi_cross_gram(const mtgradi_mat *A, const mtgradi_mat *B, double *C, double *partials,
                        int threads)
{
    int64_t k = A->k;
    size_t kk = (size_t)(k * k);
    int avx2 = mtgradi_isa_best() >= MTGRADI_ISA_AVX2;
    (void)threads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads > 0 ? threads : 1) \
    if (threads > 1 && A->k * A->d >= MTGRADI_PAR_MIN_ELEMS)
#endif
    for (int s = 0; s < MTGRADI_GRAM_SPLITS; s++) cross_range(A, B, s, partials + (size_t)s * kk, avx2);
    for (size_t p = 0; p < kk; p++) {
        double v = 0;
        for (int r = 0; r < MTGRADI_GRAM_SPLITS; r++) v += partials[(size_t)r * kk + p];
        C[p] = v;
    }
}

/* ------------------------------------------------------------------ public wrappers */

static mtgrad_status cross_public(const mtgradi_mat *A, const mtgradi_mat *B, double *C)
{
    if ((!A->f32 && !A->f64) || (!B->f32 && !B->f64) || !C) return MTGRAD_E_INVAL;
    if (A->k < 1 || A->d < 1 || A->ld < A->d) return MTGRAD_E_SHAPE;
    double *partials = mtgradi_malloc(mtgradi_cross_gram_work_size(A->k) * sizeof *partials);
    if (!partials) return MTGRAD_E_NOMEM;
    mtgradi_cross_gram(A, B, C, partials, 1);
    free(partials);
    for (int64_t i = 0; i < A->k * A->k; i++)
        if (!(C[i] - C[i] == 0)) return MTGRAD_E_NONFINITE;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_cross_gram_f32(const float *A, const float *B, int64_t k, int64_t d,
                                    int64_t ld, double *C)
{
    mtgradi_mat a = {A, NULL, k, d, ld}, b = {B, NULL, k, d, ld};
    return cross_public(&a, &b, C);
}

mtgrad_status mtgrad_cross_gram_f64(const double *A, const double *B, int64_t k, int64_t d,
                                    int64_t ld, double *C)
{
    mtgradi_mat a = {NULL, A, k, d, ld}, b = {NULL, B, k, d, ld};
    return cross_public(&a, &b, C);
}
