/* gram.c — M = G G^T (k x k) with products and sums in double, in one pass over G.
 *
 * mtgradi_gram_ref: one dot product per pair (i <= j), columns in order — the reference.
 *
 * mtgradi_gram / mtgradi_gram_isa: the fast kernel. G is read once, in column blocks that stay in
 * L2 while every pair uses them; pairs are computed in register tiles (5 x 5 rows with AVX-512,
 * 2 x 2 with AVX2), so a tile's partial sums never leave the registers inside a block. While a
 * block is being worked on, the next one is prefetched a few lines per chunk of work, so
 * DRAM keeps streaming during the tiles that only re-read L2 (at k = 10 one thread went from ~25
 * to ~38 GFLOP/s). 5 x 5 tiles rather than 4 x 4: at k = 10 three tiles instead of six, so each
 * row of a chunk is loaded and converted 2 times instead of 3 (L2-resident: 45 -> 53 GFLOP/s,
 * k = 40: 44 -> 50; the f64 FMA peak of one core is ~58).
 *
 * The summation order is fixed and depends on (k, d) only — never on the thread count or the
 * ISA — so every thread count and every path gives the same bits:
 *   1. the columns are cut into MTGRADI_GRAM_SPLITS ranges; range s starts at column
 *      64·floor(floor(d/64)·s/SPLITS) (the last one ends at d);
 *   2. a range is walked in blocks of block_cols(k) columns (a multiple of 64) from its start;
 *   3. within a block, each pair is summed in the canonical 8-lane order of vec.h
 *      (lane l: columns ≡ l mod 8, in order; then the fixed tree), with f32 x f32 products exact
 *      in double (so FMA = multiply-then-add);
 *   4. block sums are added to the range's partial in block order; the partials are added in
 *      range order. Threads take whole ranges (any thread, any order: each has its own partial).
 * For f64 input the same order is used with rounded products (scalar code, no FMA contraction
 * under -std=c11), so that path is thread-count independent too.
 */
#include "internal.h"
#include "vec.h"

#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define GRAM_X86 1
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

void mtgradi_gram_ref(const mtgradi_mat *G, double *M)
{
    int64_t k = G->k;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++) {
            double s = 0;
            for (int64_t c = 0; c < G->d; c++) s += mtgradi_mat_at(G, i, c) * mtgradi_mat_at(G, j, c);
            M[i * k + j] = s;
            M[j * k + i] = s;
        }
}

static size_t tri_size(int64_t k) { return (size_t)(k * (k + 1) / 2); }

size_t mtgradi_gram_work_size(int64_t k) { return (size_t)MTGRADI_GRAM_SPLITS * tri_size(k); }

/* Index of pair (i, j), i <= j, in the packed upper triangle (row by row). */
static int64_t tri_index(int64_t k, int64_t i, int64_t j) { return i * k - i * (i - 1) / 2 + (j - i); }

/* Columns per block: the k rows of a block (f32) take about 256 KiB, so they stay in L2 while
 * every tile walks them. A function of k only (part of the summation order). */
static int64_t block_cols(int64_t k)
{
    int64_t b = (int64_t)65536 / k / 64 * 64;
    return b < 256 ? 256 : b > 16384 ? 16384 : b;
}

int64_t mtgradi_gram_range_start(int64_t d, int s)
{
    if (s >= MTGRADI_GRAM_SPLITS) return d;
    return (d / 64) * s / MTGRADI_GRAM_SPLITS * 64;
}

/* ------------------------------------------------------------------ scalar paths */

/* Block [c0, c0+n) of an f32 G: every pair's canonical 8-lane sum, added to P. */
static void block_f32_scalar(const mtgradi_mat *G, int64_t c0, int64_t n, double *P)
{
    int64_t k = G->k;
    size_t p = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++, p++)
            P[p] += mtgrad_vec_dot_f32_f64acc(G->f32 + i * G->ld + c0, G->f32 + j * G->ld + c0, n);
}

static void block_f64(const mtgradi_mat *G, int64_t c0, int64_t n, double *P)
{
    int64_t k = G->k;
    size_t p = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++, p++)
            P[p] += mtgradi_dot_f64_lanes(G->f64 + i * G->ld + c0, G->f64 + j * G->ld + c0,
                                          n);
}

#ifdef GRAM_X86
/* ------------------------------------------------------------------ AVX-512 path
 *
 * A tile is RI rows (x) by RJ rows (y) — or, on the diagonal, the upper triangle of RI rows with
 * themselves. Each pair has one 8-lane accumulator (one zmm). The x rows of a chunk of 8 columns
 * sit in registers; each y row is loaded once per chunk. RI, RJ <= 5: 25 accumulators + 6 rows
 * = 31 of the 32 zmm registers. The last chunk of a block (n not a multiple of 8) is read from
 * zero-padded copies; adding a +0 product leaves a lane unchanged (a lane sum is never -0). */

#define T512 5

/* Software prefetch of the next block, `per` cache lines per chunk of work (enough to fetch the
 * whole block before the current one ends): the tiles that only re-read the current block from
 * L2 would otherwise leave DRAM idle (the hardware prefetcher follows the streams being read, not
 * the block that comes next). */
typedef struct pf_cursor {
    const float *base; /* first column of the next block (row 0), or NULL */
    int64_t ld, k, n;  /* its rows and columns */
    int64_t row, off;  /* the next line to fetch */
    int per;           /* lines per chunk of work */
} pf_cursor;

static inline void pf_step(pf_cursor *p)
{
    for (int i = 0; i < p->per; i++) {
        if (p->row >= p->k) return;
        __builtin_prefetch(p->base + p->row * p->ld + p->off, 0, 2);
        p->off += 16; /* floats per 64-byte line */
        if (p->off >= p->n) p->off = 0, p->row++;
    }
}

__attribute__((target("avx512f"))) static ALWAYS_INLINE __m512d load8_512(const float *p)
{
    return _mm512_cvtps_pd(_mm256_loadu_ps(p));
}

/* The canonical tree of vec.h: ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)). */
__attribute__((target("avx512f"))) static ALWAYS_INLINE double reduce8_512(__m512d v)
{
    __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
}

/* acc[a][b] += x_a * y_b over the 8 columns at xp[a] + c, yp[b] + c. */
__attribute__((target("avx512f"))) static ALWAYS_INLINE void
chunk512(__m512d acc[T512][T512], const float *const *xp, const float *const *yp, int64_t c,
         int RI, int RJ, int diag)
{
    __m512d x[T512];
#pragma GCC unroll 5
    for (int a = 0; a < RI; a++) x[a] = load8_512(xp[a] + c);
#pragma GCC unroll 5
    for (int b = 0; b < RJ; b++) {
        __m512d y = diag ? x[b] : load8_512(yp[b] + c);
#pragma GCC unroll 5
        for (int a = 0; a < RI; a++)
            if (!diag || a <= b) acc[a][b] = _mm512_fmadd_pd(x[a], y, acc[a][b]);
    }
}

__attribute__((target("avx512f"))) static ALWAYS_INLINE void
tile512(const float *const *xr, const float *const *yr, int RI, int RJ, int diag, int64_t n,
        double *sums, pf_cursor *pfc)
{
    pf_cursor pf = *pfc;
    __m512d acc[T512][T512];
#pragma GCC unroll 5
    for (int a = 0; a < T512; a++)
#pragma GCC unroll 5
        for (int b = 0; b < T512; b++) acc[a][b] = _mm512_setzero_pd();
    int64_t full = n / 8 * 8;
    for (int64_t c = 0; c < full; c += 8) {
        chunk512(acc, xr, yr, c, RI, RJ, diag);
        pf_step(&pf);
    }
    *pfc = pf;
    if (full < n) { /* the leftover columns, zero-padded to one chunk */
        float pad[2 * T512][8];
        const float *xp[T512], *yp[T512];
        memset(pad, 0, sizeof pad);
        for (int a = 0; a < RI; a++) {
            memcpy(pad[a], xr[a] + full, (size_t)(n - full) * sizeof(float));
            xp[a] = pad[a];
        }
        for (int b = 0; b < RJ; b++) {
            memcpy(pad[T512 + b], yr[b] + full, (size_t)(n - full) * sizeof(float));
            yp[b] = pad[T512 + b];
        }
        chunk512(acc, xp, yp, 0, RI, RJ, diag);
    }
#pragma GCC unroll 5
    for (int a = 0; a < RI; a++)
#pragma GCC unroll 5
        for (int b = 0; b < RJ; b++)
            if (!diag || a <= b) sums[a * T512 + b] = reduce8_512(acc[a][b]);
}

/* One instantiation per tile shape (RI, RJ, diag constant once inlined). */
__attribute__((target("avx512f"))) static void
tile512_dispatch(const float *const *xr, const float *const *yr, int ri, int rj, int diag,
                 int64_t n, double *sums, pf_cursor *pf)
{
    if (diag) {
        switch (ri) {
        case 1: tile512(xr, xr, 1, 1, 1, n, sums, pf); return;
        case 2: tile512(xr, xr, 2, 2, 1, n, sums, pf); return;
        case 3: tile512(xr, xr, 3, 3, 1, n, sums, pf); return;
        case 4: tile512(xr, xr, 4, 4, 1, n, sums, pf); return;
        default: tile512(xr, xr, 5, 5, 1, n, sums, pf); return;
        }
    }
    switch (rj) { /* off the diagonal the x side is always a full group of 4 */
    case 1: tile512(xr, yr, 5, 1, 0, n, sums, pf); return;
    case 2: tile512(xr, yr, 5, 2, 0, n, sums, pf); return;
    case 3: tile512(xr, yr, 5, 3, 0, n, sums, pf); return;
    case 4: tile512(xr, yr, 5, 4, 0, n, sums, pf); return;
    default: tile512(xr, yr, 5, 5, 0, n, sums, pf); return;
    }
}

/* ------------------------------------------------------------------ AVX2 + FMA path
 * Same scheme with 16 ymm registers: the 8 lanes of a pair are two ymm (lanes 0-3, 4-7), tiles
 * are at most 2 x 2 rows (8 accumulators + 4 x halves + 2 y halves). */

#define T256 2

__attribute__((target("avx2,fma"))) static ALWAYS_INLINE double reduce8_256(__m256d lo, __m256d hi)
{
    __m256d t = _mm256_add_pd(lo, hi);
    __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
}

__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
load8_256(const float *p, __m256d *lo, __m256d *hi)
{
    __m256 v = _mm256_loadu_ps(p);
    *lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    *hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
chunk256(__m256d lo[T256][T256], __m256d hi[T256][T256], const float *const *xp,
         const float *const *yp, int64_t c, int RI, int RJ, int diag)
{
    __m256d xl[T256], xh[T256];
#pragma GCC unroll 2
    for (int a = 0; a < RI; a++) load8_256(xp[a] + c, &xl[a], &xh[a]);
#pragma GCC unroll 2
    for (int b = 0; b < RJ; b++) {
        __m256d yl, yh;
        if (diag) yl = xl[b], yh = xh[b];
        else load8_256(yp[b] + c, &yl, &yh);
#pragma GCC unroll 2
        for (int a = 0; a < RI; a++)
            if (!diag || a <= b) {
                lo[a][b] = _mm256_fmadd_pd(xl[a], yl, lo[a][b]);
                hi[a][b] = _mm256_fmadd_pd(xh[a], yh, hi[a][b]);
            }
    }
}

__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
tile256(const float *const *xr, const float *const *yr, int RI, int RJ, int diag, int64_t n,
        double *sums, pf_cursor *pfc)
{
    pf_cursor pf = *pfc;
    __m256d lo[T256][T256], hi[T256][T256];
#pragma GCC unroll 2
    for (int a = 0; a < T256; a++)
#pragma GCC unroll 2
        for (int b = 0; b < T256; b++) lo[a][b] = hi[a][b] = _mm256_setzero_pd();
    int64_t full = n / 8 * 8;
    for (int64_t c = 0; c < full; c += 8) {
        chunk256(lo, hi, xr, yr, c, RI, RJ, diag);
        pf_step(&pf);
    }
    *pfc = pf;
    if (full < n) {
        float pad[2 * T256][8];
        const float *xp[T256], *yp[T256];
        memset(pad, 0, sizeof pad);
        for (int a = 0; a < RI; a++) {
            memcpy(pad[a], xr[a] + full, (size_t)(n - full) * sizeof(float));
            xp[a] = pad[a];
        }
        for (int b = 0; b < RJ; b++) {
            memcpy(pad[T256 + b], yr[b] + full, (size_t)(n - full) * sizeof(float));
            yp[b] = pad[T256 + b];
        }
        chunk256(lo, hi, xp, yp, 0, RI, RJ, diag);
    }
#pragma GCC unroll 2
    for (int a = 0; a < RI; a++)
#pragma GCC unroll 2
        for (int b = 0; b < RJ; b++)
            if (!diag || a <= b) sums[a * T256 + b] = reduce8_256(lo[a][b], hi[a][b]);
}

__attribute__((target("avx2,fma"))) static void
tile256_dispatch(const float *const *xr, const float *const *yr, int ri, int rj, int diag,
                 int64_t n, double *sums, pf_cursor *pf)
{
    if (diag) {
        if (ri == 1) tile256(xr, xr, 1, 1, 1, n, sums, pf);
        else tile256(xr, xr, 2, 2, 1, n, sums, pf);
    } else {
        if (rj == 1) tile256(xr, yr, 2, 1, 0, n, sums, pf);
        else tile256(xr, yr, 2, 2, 0, n, sums, pf);
    }
}

/* Prefetch rate for a block of n columns followed by next_n: the k rows of the next block have
 * k·next_n/16 lines, and the tiles of t rows take (#tiles)·n/8 chunk steps; ceil of the ratio. */
static int pf_lines_per_chunk(int64_t k, int64_t t, int64_t n, int64_t next_n)
{
    int64_t groups = (k + t - 1) / t, steps = groups * (groups + 1) / 2 * (n / 8);
    int64_t lines = k * ((next_n + 15) / 16);
    int64_t per = steps > 0 ? (lines + steps - 1) / steps : 1;
    return per < 1 ? 1 : (int)per;
}

/* Block [c0, c0+n) of an f32 G with register tiles of t rows (t = 5: AVX-512, 2: AVX2). */
static void block_f32_tiled(const mtgradi_mat *G, int64_t c0, int64_t n, int64_t next_n, double *P,
                            mtgradi_isa isa)
{
    int64_t k = G->k, t = isa == MTGRADI_ISA_AVX512 ? T512 : T256;
    pf_cursor pf = {G->f32 + c0 + n, G->ld, next_n > 0 ? k : 0, next_n, 0, 0,
                    pf_lines_per_chunk(k, t, n, next_n)};
    const float *xr[T512], *yr[T512];
    double sums[T512 * T512];
    for (int64_t i0 = 0; i0 < k; i0 += t) {
        int ri = (int)(k - i0 < t ? k - i0 : t);
        for (int a = 0; a < ri; a++) xr[a] = G->f32 + (i0 + a) * G->ld + c0;
        for (int64_t j0 = i0; j0 < k; j0 += t) {
            int rj = (int)(k - j0 < t ? k - j0 : t), diag = j0 == i0;
            for (int b = 0; b < rj; b++) yr[b] = G->f32 + (j0 + b) * G->ld + c0;
            if (isa == MTGRADI_ISA_AVX512) tile512_dispatch(xr, yr, ri, rj, diag, n, sums, &pf);
            else tile256_dispatch(xr, yr, ri, rj, diag, n, sums, &pf);
            for (int a = 0; a < ri; a++)
                for (int b = diag ? a : 0; b < rj; b++)
                    P[tri_index(k, i0 + a, j0 + b)] += sums[a * t + b];
        }
    }
}
#endif /* GRAM_X86 */

/* ------------------------------------------------------------------ driver */

/* Range s: its blocks in order, accumulated into P (zeroed here). */
static void gram_range(const mtgradi_mat *G, int s, double *P, mtgradi_isa isa)
{
    int64_t c0 = mtgradi_gram_range_start(G->d, s), c1 = mtgradi_gram_range_start(G->d, s + 1);
    int64_t bc = block_cols(G->k);
    memset(P, 0, tri_size(G->k) * sizeof *P);
    for (int64_t c = c0; c < c1; c += bc) {
        int64_t n = c1 - c < bc ? c1 - c : bc;
        if (G->f64) {
            block_f64(G, c, n, P);
            continue;
        }
#ifdef GRAM_X86
        if (isa != MTGRADI_ISA_SCALAR) {
            int64_t next = c1 - (c + n) < bc ? c1 - (c + n) : bc; /* the block after this one */
            block_f32_tiled(G, c, n, next, P, isa);
            continue;
        }
#endif
        block_f32_scalar(G, c, n, P);
    }
}

void mtgradi_gram_isa(const mtgradi_mat *G, double *M, double *partials, int threads, mtgradi_isa isa)
{
    int64_t k = G->k;
    size_t tri = tri_size(k);
    isa = mtgradi_isa_clamp(isa);
    (void)threads;
#if defined(_OPENMP)
    /* small G stays on one thread (MTGRADI_PAR_MIN_ELEMS); dynamic: a thread that
     * lost its core on a shared machine does not hold the others up (each range writes its own
     * partial, so which thread takes it never changes the result) */
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads > 0 ? threads : 1) \
    if (threads > 1 && G->k * G->d >= MTGRADI_PAR_MIN_ELEMS)
#endif
    for (int s = 0; s < MTGRADI_GRAM_SPLITS; s++) gram_range(G, s, partials + (size_t)s * tri, isa);
    size_t p = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++, p++) {
            double s = 0;
            for (int r = 0; r < MTGRADI_GRAM_SPLITS; r++) s += partials[(size_t)r * tri + p];
            M[i * k + j] = s;
            M[j * k + i] = s;
        }
}

void mtgradi_gram(const mtgradi_mat *G, double *M, double *partials, int threads)
{
    mtgradi_gram_isa(G, M, partials, threads, mtgradi_isa_best());
}

/* ------------------------------------------------------------------ public wrappers */

static mtgrad_status gram_public(const mtgradi_mat *G, double *M)
{
    if ((!G->f32 && !G->f64) || !M) return MTGRAD_E_INVAL;
    if (G->k < 1 || G->d < 1 || G->ld < G->d) return MTGRAD_E_SHAPE;
    double *partials = mtgradi_malloc(mtgradi_gram_work_size(G->k) * sizeof *partials);
    if (!partials) return MTGRAD_E_NOMEM;
    mtgradi_gram(G, M, partials, 1);
    free(partials);
    for (int64_t i = 0; i < G->k * G->k; i++)
        if (!(M[i] - M[i] == 0)) return MTGRAD_E_NONFINITE;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_gram_f32(const float *G, int64_t k, int64_t d, int64_t ldg, double *M)
{
    mtgradi_mat m = {G, NULL, k, d, ldg};
    return gram_public(&m, M);
}

mtgrad_status mtgrad_gram_f64(const double *G, int64_t k, int64_t d, int64_t ldg, double *M)
{
    mtgradi_mat m = {NULL, G, k, d, ldg};
    return gram_public(&m, M);
}
