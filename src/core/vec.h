/*
 * vec.h — the one thin layer between the library and the CPU's vector units (style rule 16).
 *
 * Two things live here:
 *   1. Run-time ISA selection for the big kernels (Gram, combine): the library is compiled for
 *      plain x86-64 (no -mavx flags), and the AVX2+FMA / AVX-512 versions of those kernels are
 *      `target(...)` functions picked once per call with __builtin_cpu_supports. The kernels take
 *      the ISA as an argument, so tests can run every path on one machine and compare them.
 *   2. Small inline vector helpers (dot, axpy, scale) for the engine and the k x k code, each with
 *      a compile-time SIMD path (active when the translation unit is built with -mavx2 -mfma),
 *      a leftover loop and a scalar fallback.
 *
 * The canonical summation order of a float32 dot product with double accumulation (used by the
 * Gram kernel, whatever the ISA): MTGRADI_LANES = 8 partial sums, lane l adding the products of
 * the elements with index ≡ l (mod 8) in increasing order, then the tree
 *     ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
 * A float32 x float32 product is exact in double (24 + 24 bits ≤ 53), so FMA and multiply-then-add
 * give the same bits, and the scalar, AVX2 and AVX-512 paths agree bit for bit.
 */
#ifndef MTGRAD_VEC_H
#define MTGRAD_VEC_H

#include "internal.h"

#include <stdint.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* ------------------------------------------------------------------ ISA selection */

typedef enum mtgradi_isa {
    MTGRADI_ISA_SCALAR = 0, /* portable C (auto-vectorised to SSE2 at best) */
    MTGRADI_ISA_AVX2 = 1,   /* AVX2 + FMA */
    MTGRADI_ISA_AVX512 = 2  /* AVX-512F */
} mtgradi_isa;

/* The best ISA this CPU runs (and this compiler can target); no caching, no global state. */
static inline mtgradi_isa mtgradi_isa_best(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f")) return MTGRADI_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MTGRADI_ISA_AVX2;
#endif
    return MTGRADI_ISA_SCALAR;
}

/* Clamp a requested ISA to what the CPU supports (tests ask for every path). */
static inline mtgradi_isa mtgradi_isa_clamp(mtgradi_isa want)
{
    mtgradi_isa best = mtgradi_isa_best();
    return want > best ? best : want;
}

/* The Gram and combine kernels with an explicit ISA (gram.c, combine.c); mtgradi_gram and
 * mtgradi_combine call them with mtgradi_isa_best(). Every ISA gives the same bits. */
void mtgradi_gram_isa(const mtgradi_mat *G, double *M, double *partials, int threads,
                      mtgradi_isa isa);
int mtgradi_combine_isa(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int threads,
                        mtgradi_isa isa);

/* Below this many elements of G (1 MiB of float32, ~40 µs of streaming) a kernel stays on one
 * thread: waking a second one costs more than it saves. Results never depend on it. */
#define MTGRADI_PAR_MIN_ELEMS ((int64_t)1 << 18)

/* ------------------------------------------------------------------ canonical lane sums */

#define MTGRADI_LANES 8

/* The fixed reduction tree of the 8 lanes (the same as the SIMD paths' halving). */
static inline double mtgradi_lanes_sum(const double l[MTGRADI_LANES])
{
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* ------------------------------------------------------------------ inline helpers */

/* The canonical 8-lane dot of two double vectors (the f64 paths of the Gram kernels). */
static inline double mtgradi_dot_f64_lanes(const double *x, const double *y, int64_t n)
{
    double l[MTGRADI_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t c = 0;
    for (; c + MTGRADI_LANES <= n; c += MTGRADI_LANES)
        for (int j = 0; j < MTGRADI_LANES; j++) l[j] += x[c + j] * y[c + j];
    for (int j = 0; c + j < n; j++) l[j] += x[c + j] * y[c + j];
    return mtgradi_lanes_sum(l);
}

/* sum_i x_i y_i in the canonical 8-lane order with double accumulation (see the top). */
static inline double mtgrad_vec_dot_f32_f64acc(const float *x, const float *y, int64_t n)
{
    double l[MTGRADI_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t c = 0;
    for (; c + MTGRADI_LANES <= n; c += MTGRADI_LANES)
        for (int j = 0; j < MTGRADI_LANES; j++) l[j] += (double)x[c + j] * (double)y[c + j];
    for (int j = 0; c + j < n; j++) l[j] += (double)x[c + j] * (double)y[c + j]; /* leftover */
    return mtgradi_lanes_sum(l);
}

/* sum_i x_i y_i in float with 8 lanes (the SIMD path fuses multiply-adds, so the last bits
 * depend on how the translation unit was compiled; never on the thread count). */
static inline float mtgrad_vec_dot_f32(const float *x, const float *y, int64_t n)
{
    int64_t c = 0;
    float s = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 acc = _mm256_setzero_ps();
    for (; c + 8 <= n; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c), acc);
    float l[8];
    _mm256_storeu_ps(l, acc);
    s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
#else
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; c + 8 <= n; c += 8)
        for (int j = 0; j < 8; j++) l[j] += x[c + j] * y[c + j];
    s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
#endif
    for (; c < n; c++) s += x[c] * y[c]; /* leftover */
    return s;
}

/* y += a x */
static inline void mtgrad_vec_axpy_f32(int64_t n, float a, const float *x, float *y)
{
    int64_t c = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 va = _mm256_set1_ps(a);
    for (; c + 8 <= n; c += 8)
        _mm256_storeu_ps(y + c, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c)));
#endif
    for (; c < n; c++) y[c] += a * x[c];
}

/* x *= a */
static inline void mtgrad_vec_scale_f32(int64_t n, float a, float *x)
{
    int64_t c = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 va = _mm256_set1_ps(a);
    for (; c + 8 <= n; c += 8) _mm256_storeu_ps(x + c, _mm256_mul_ps(va, _mm256_loadu_ps(x + c)));
#endif
    for (; c < n; c++) x[c] *= a;
}

#endif /* MTGRAD_VEC_H */
