/*
 * method_graddrop.c — GradDrop: per coordinate, keep only the gradients of one sign, chosen at
 * random with the probability of that sign's "purity".
 *
 *   per coordinate j:  P_j = 1/2 (1 + sum_i G_ij / sum_i |G_ij|)        (f = identity)
 *                      U_j ~ Uniform[0, 1)
 *   mask_ij = (P_j > U_j and G_ij > 0) or (P_j < U_j and G_ij < 0)
 *   d_j = sum_i G_ij (leak + (1 - leak) mask_ij)
 *
 * No epsilon in P (TorchJD): a zero column gives 0/0 = NaN, so no row passes and d_j = 0.
 * The mask is per coordinate, so the update is not G^T w: no task weights. Element-wise in G
 * (not Gram-only). Cost O(kd) time, one pass over G; d uniforms per call. The fast path below
 * gives the plain reference's bits (mtgradi_graddrop_ref, kept for the tests), on the
 * aggregator's `threads` (column segments, each with the generator jumped to its first column:
 * the same bits and the same end state of the generator for every thread count).
 *
 * Randomness: U = the d injected draws if pending (each in [0, 1]), else d uniforms from the
 * aggregator's RNG, one per coordinate in order (column j takes the stream's draw j, whichever
 * thread runs it).
 *
 * See Section 3 of Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient
 * Sign Dropout", NeurIPS 2020; reference code TorchJD/torchjd src/torchjd/aggregation/_graddrop.py
 * (leak 0 default); LibMTL LibMTL/weighting/GradDrop.py applies the same rule to the gradients
 * of a shared representation.
 */
#include "internal.h"
#include "vec.h"

#include <math.h>
#include <stdint.h>

enum { P_F, P_LEAK, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"f", MTGRAD_PARAM_CHOICE, 0, 0, 0, "identity", 0,
     "function applied to the column sums before the purity P (TorchJD default: identity)"},
    {"leak", MTGRAD_PARAM_REAL, 0, 0, 1, NULL, 0,
     "fraction of every gradient kept whatever the mask (0 = pure GradDrop, 1 = plain sum)"},
};

#define BLOCK 256 /* the reference's columns per block (its failure message depends on it) */

/* The reference's k*BLOCK + BLOCK doubles (the fast path keeps its chunks on the stack). */
static size_t graddrop_work_size(int64_t k) { return (size_t)(k + 1) * BLOCK; }

size_t mtgradi_graddrop_work_size(int64_t k) { return graddrop_work_size(k); }

/* ------------------------------------------------------------------ plain reference */

/* d_j for one column x (k values) with the uniform u. */
static double drop_column(const double *x, int64_t k, int64_t ld, double u, double leak)
{
    double s = 0, sa = 0;
    for (int64_t i = 0; i < k; i++) {
        s += x[i * ld];
        sa += fabs(x[i * ld]);
    }
    double p = 0.5 * (1 + s / sa); /* NaN for a zero column: both comparisons below are false */
    double out = 0;
    for (int64_t i = 0; i < k; i++) {
        double g = x[i * ld];
        /* bitwise, not short-circuit: the signs are random, so branches would mispredict */
        int keep = ((p > u) & (g > 0)) | ((p < u) & (g < 0));
        out += g * (leak + (1 - leak) * (keep ? 1.0 : 0.0));
    }
    return out;
}

int64_t mtgradi_graddrop_ref(const mtgradi_mat *G, const double *U, mtgradi_rng *rng, double leak,
                             const mtgradi_out *out, double *work)
{
    int64_t k = G->k, d = G->d;
    double *blk = work, *res = work + k * BLOCK;
    for (int64_t j0 = 0; j0 < d; j0 += BLOCK) {
        int64_t nb = d - j0 < BLOCK ? d - j0 : BLOCK;
        mtgradi_mat_block(G, j0, nb, blk);
        for (int64_t i = 0; i < k * nb; i++)
            if (!isfinite(blk[i])) return (i / nb) * d + j0 + i % nb;
        for (int64_t j = 0; j < nb; j++) {
            double u = U ? U[j0 + j] : mtgradi_rng_uniform(rng);
            res[j] = drop_column(blk + j, k, nb, u, leak);
        }
        mtgradi_out_block(out, j0, nb, res);
    }
    return -1;
}

/* ------------------------------------------------------------------ fast path
 *
 * One pass over G by chunks of W columns; a chunk is finished while its k x W elements sit in
 * L1, its sums in registers, and the row loops vectorise across the columns. Every column keeps
 * the reference's operations in the reference's order (i = 0..k-1), so the bits are the same:
 *   - s and sa as in the reference;
 *   - leak = 0 (the default): the reference adds g·1 for a kept g and g·0 = ±0 otherwise, and
 *     adding ±0 never changes its running sum (which starts at +0 and can never become -0), so
 *     d_j is the ordered sum of the positive g (when P > U), of the negative g (P < U), or +0
 *     (neither, or P NaN). Both candidates are summed in the same pass as s and sa;
 *   - any other leak: a second pass over the chunk (from L1) adds g·f with the reference's
 *     factors leak + (1 - leak)·m for m = 1 and 0, evaluated once. A zero g takes the g < 0
 *     factor where the reference takes the m = 0 one: both are >= +0, so g·f is g (±0) anyway.
 * No FMA may fuse g·f into the sum: -std=c11 keeps GCC's contraction off, and clang (which
 * contracts within one expression by default) sees the product and the sum as two statements
 * (test_graddrop_fast.c compares every ISA with the reference bit for bit).
 *
 * The uniforms are drawn chunk by chunk, W at a time in column order: the same stream, and the
 * integer work of the generator overlaps the loads. A non-finite sa_j is how a bad element shows
 * (NaN and ±Inf reach sa); only then is G scanned for the reference's message (an overflow of
 * finite values also lands there, the scan finds nothing, and the result stands). A failing
 * call may have written to out and drawn from the generator (the aggregator restores it). */

#if defined(_OPENMP)
#define SIMD _Pragma("omp simd")
#else
#define SIMD
#endif

#define INLINE static inline __attribute__((always_inline))
#define W 16 /* columns per chunk: every running sum of the chunk in registers */

/* Software prefetch 256 elements ahead in every row (one line per 64 bytes of the chunk): with
 * k streams and short bursts per row the hardware prefetcher alone left DRAM idle (-10..20%). */
#define PF_LINES(T, N) ((N) == 1 ? 0 : (int)((N) * sizeof(T) / 64))
#define PF(T, N, x)                                                                                 \
    for (int l = 0; l < PF_LINES(T, N); l++)                                                       \
        __builtin_prefetch((x) + 256 + l * 64 / (int)sizeof(T), 0, 0);

/* The pass over the chunk's rows: the uniforms drawn on the way, s_c and sa_c summed in row order,
 * and EXTRA (more sums of v = x_c) in the same loop. */
#define ROW_SUMS(T, N, EXTRA)                                                                      \
    for (int64_t i = 0; i < k; i++) {                                                              \
        const T *restrict x = g + i * ld;                                                          \
        PF(T, N, x)                                                                                 \
        DRAW(N)                                                                                    \
        SIMD for (int c = 0; c < N; c++) {                                                         \
            double v = (double)x[c];                                                               \
            s[c] += v;                                                                             \
            sa[c] += fabs(v);                                                                      \
            EXTRA                                                                                  \
        }                                                                                          \
    }

/* Chunk bodies for T = float or double and N = W or 1 (the last d mod W columns): d_c into
 * res[0..N), z[c] += sa_c·0 (NaN when sa_c is not finite). u: N uniforms. */
#define CHUNK_LEAK0(T, N)                                                                          \
    double s[N], sa[N], pos[N], neg[N];                                                            \
    SIMD for (int c = 0; c < N; c++) s[c] = 0, sa[c] = 0, pos[c] = 0, neg[c] = 0;                  \
    ROW_SUMS(T, N, pos[c] += v > 0 ? v : 0.0; neg[c] += v < 0 ? v : 0.0;)                       \
    SIMD for (int c = 0; c < N; c++) {                                                             \
        double p = 0.5 * (1 + s[c] / sa[c]); /* NaN for a zero column: no sign is kept */          \
        res[c] = p > u[c] ? pos[c] : p < u[c] ? neg[c] : 0.0;                                      \
        z[c] += sa[c] * 0.0;                                                                       \
    }

#define CHUNK_LEAK(T, N)                                                                           \
    double s[N], sa[N], fp[N], fn[N], acc[N];                                                      \
    SIMD for (int c = 0; c < N; c++) s[c] = 0, sa[c] = 0, acc[c] = 0;                              \
    ROW_SUMS(T, N, (void)0;)                                                                   \
    SIMD for (int c = 0; c < N; c++) {                                                             \
        double p = 0.5 * (1 + s[c] / sa[c]);                                                       \
        fp[c] = p > u[c] ? f1 : f0;                                                                \
        fn[c] = p < u[c] ? f1 : f0;                                                                \
        z[c] += sa[c] * 0.0;                                                                       \
    }                                                                                              \
    for (int64_t i = 0; i < k; i++) {                                                              \
        const T *restrict x = g + i * ld;                                                          \
        SIMD for (int c = 0; c < N; c++) {                                                         \
            double v = (double)x[c];                                                               \
            double t = v * (v > 0 ? fp[c] : fn[c]); /* own statement: never contracted */          \
            acc[c] += t;                                                                           \
        }                                                                                          \
    }                                                                                              \
    SIMD for (int c = 0; c < N; c++) res[c] = acc[c];

/* The chunk's uniforms, drawn a few per row (the last ones after row k-1) so that the
 * generator's integer work runs between the vector instructions instead of before them. */
#define DRAW(N)                                                                                    \
    if (!U)                                                                                        \
        for (int64_t c1 = (i + 1) * (N) / k; nd < c1; nd++) ub[nd] = mtgradi_rng_step_uniform(rng);

#define CHUNK_FN(NAME, BODY, T, N)                                                                 \
    INLINE void NAME(const T *g, int64_t ld, int64_t k, const double *U, mtgradi_rng *rng,         \
                     double f1, double f0, double *restrict res, double *restrict z)               \
    {                                                                                              \
        double ub[N];                                                                              \
        const double *restrict u = U ? U : ub;                                                     \
        int64_t nd = 0;                                                                            \
        (void)f1, (void)f0;                                                                        \
        BODY(T, N)                                                                                 \
    }

CHUNK_FN(leak0_f32, CHUNK_LEAK0, float, W)
CHUNK_FN(leak0_f64, CHUNK_LEAK0, double, W)
CHUNK_FN(leak_f32, CHUNK_LEAK, float, W)
CHUNK_FN(leak_f64, CHUNK_LEAK, double, W)
CHUNK_FN(leak0_f32_1, CHUNK_LEAK0, float, 1)
CHUNK_FN(leak0_f64_1, CHUNK_LEAK0, double, 1)
CHUNK_FN(leak_f32_1, CHUNK_LEAK, float, 1)
CHUNK_FN(leak_f64_1, CHUNK_LEAK, double, 1)

/* Columns [j, j + n) (n = W, or 1): d into out, z updated. */
INLINE void columns(const mtgradi_mat *G, const double *U, mtgradi_rng *rng, int leak0, double f1,
                    double f0, const mtgradi_out *out, int64_t j, int64_t n, double *z)
{
    double res[W];
    const double *u = U ? U + j : NULL;
    int64_t ld = G->ld, k = G->k;
    if (n == W) {
        if (G->f32 && leak0) leak0_f32(G->f32 + j, ld, k, u, rng, f1, f0, res, z);
        else if (G->f32) leak_f32(G->f32 + j, ld, k, u, rng, f1, f0, res, z);
        else if (leak0) leak0_f64(G->f64 + j, ld, k, u, rng, f1, f0, res, z);
        else leak_f64(G->f64 + j, ld, k, u, rng, f1, f0, res, z);
    } else {
        if (G->f32 && leak0) leak0_f32_1(G->f32 + j, ld, k, u, rng, f1, f0, res, z);
        else if (G->f32) leak_f32_1(G->f32 + j, ld, k, u, rng, f1, f0, res, z);
        else if (leak0) leak0_f64_1(G->f64 + j, ld, k, u, rng, f1, f0, res, z);
        else leak_f64_1(G->f64 + j, ld, k, u, rng, f1, f0, res, z);
    }
    if (out->f32) {
        SIMD for (int64_t c = 0; c < n; c++) out->f32[j + c] = (float)res[c];
    } else {
        SIMD for (int64_t c = 0; c < n; c++) out->f64[j + c] = res[c];
    }
}

/* Columns [j0, j1) of G: chunks of W from j0 (a multiple of W), then one by one the tail that
 * only j1 = d leaves; rng at column j0's draw. Returns 0 if some sa_j is not finite. */
INLINE int run(const mtgradi_mat *G, const double *U, mtgradi_rng *rng, double leak,
               const mtgradi_out *out, int64_t j0, int64_t j1)
{
    double m1 = (1 - leak) * 1.0, m0 = (1 - leak) * 0.0, z[W] = {0}; /* (no FMA: see above) */
    double f1 = leak + m1, f0 = leak + m0;
    int leak0 = leak == 0;
    int64_t full = j0 + (j1 - j0) / W * W;
    for (int64_t j = j0; j < full; j += W) columns(G, U, rng, leak0, f1, f0, out, j, W, z);
    for (int64_t j = full; j < j1; j++) columns(G, U, rng, leak0, f1, f0, out, j, 1, z);
    double t = 0;
    for (int c = 0; c < W; c++) t += z[c];
    return t == 0;
}

/* One copy per ISA: the same C, compiled for each vector width. */
typedef int (*run_fn)(const mtgradi_mat *G, const double *U, mtgradi_rng *rng, double leak,
                      const mtgradi_out *out, int64_t j0, int64_t j1);
#define RUN_CLONE(SUFFIX, ATTR)                                                                    \
    ATTR static int run_##SUFFIX(const mtgradi_mat *G, const double *U, mtgradi_rng *rng,          \
                                 double leak, const mtgradi_out *out, int64_t j0, int64_t j1)      \
    {                                                                                              \
        return run(G, U, rng, leak, out, j0, j1);                                                  \
    }

RUN_CLONE(scalar, )
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define GRADDROP_X86 1
RUN_CLONE(avx2, __attribute__((target("avx2,fma"))))
RUN_CLONE(avx512, __attribute__((target("avx512f"))))
#endif

/* ------------------------------------------------------------------ threads
 *
 * Columns are independent and each draws its own uniform, so G splits into column segments
 * that threads run apart: a segment starts at a multiple of W (its chunks are the one-thread
 * path's chunks; the last segment also takes the d mod W tail), with its own copy of the
 * generator jumped ahead to the draw of its first column (mtgradi_rng_jump, O(256 log d)) and
 * its own z. Every column then sees the one-thread path's operations and uniform, so the bits
 * are the same for any thread or segment count, and the last segment's generator ends where
 * the one-thread path's does (d draws on). Up to 4 segments per thread, taken dynamically (a
 * thread that lost its core on a shared machine does not hold the others up), none under
 * SEG_MIN_ELEMS elements of G, so that the jumps (~10-20 us each) stay small next to the pass. */
#define SEG_PER_THREAD 4
#define SEG_MIN_ELEMS ((int64_t)1 << 16)

static int64_t n_segments(const mtgradi_mat *G, int threads)
{
    int64_t kd = G->k * G->d, n = (int64_t)threads * SEG_PER_THREAD;
    if (threads <= 1 || kd < MTGRADI_PAR_MIN_ELEMS) return 1;
    if (n > kd / SEG_MIN_ELEMS) n = kd / SEG_MIN_ELEMS;
    if (n > G->d / W) n = G->d / W; /* at least one chunk each */
    return n < 1 ? 1 : n;
}

static int run_segments(run_fn f, const mtgradi_mat *G, const double *U, mtgradi_rng *rng,
                        double leak, const mtgradi_out *out, int64_t nseg, int threads)
{
    const mtgradi_rng start = *rng;
    mtgradi_rng end = start; /* injected draws: the generator is not touched */
    int64_t nch = G->d / W;
    int finite = 1;
    (void)threads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) reduction(&& : finite) num_threads(threads)
#endif
    for (int64_t s = 0; s < nseg; s++) {
        int64_t j0 = s * nch / nseg * W, j1 = s + 1 == nseg ? G->d : (s + 1) * nch / nseg * W;
        mtgradi_rng r = start;
        if (!U) mtgradi_rng_jump(&r, (uint64_t)j0);
        finite = f(G, U, &r, leak, out, j0, j1) && finite;
        if (s + 1 == nseg && !U) end = r; /* one iteration writes it; read after the barrier */
    }
    *rng = end;
    return finite;
}

/* The reference's failure: the first block of BLOCK columns holding a non-finite element, and
 * in it the first such element in row-major order, as i·d + j; -1 if G is finite. */
static int64_t first_bad(const mtgradi_mat *G)
{
    for (int64_t j0 = 0; j0 < G->d; j0 += BLOCK) {
        int64_t j1 = G->d - j0 < BLOCK ? G->d : j0 + BLOCK;
        for (int64_t i = 0; i < G->k; i++)
            for (int64_t j = j0; j < j1; j++)
                if (!isfinite(mtgradi_mat_at(G, i, j))) return i * G->d + j;
    }
    return -1;
}

int64_t mtgradi_graddrop_fast(const mtgradi_mat *G, const double *U, mtgradi_rng *rng,
                              double leak, const mtgradi_out *out, double *work, int isa,
                              int threads)
{
    (void)work;
    mtgradi_isa use = mtgradi_isa_clamp((mtgradi_isa)isa);
    run_fn f = run_scalar;
#ifdef GRADDROP_X86
    if (use == MTGRADI_ISA_AVX512) f = run_avx512;
    else if (use == MTGRADI_ISA_AVX2) f = run_avx2;
#else
    (void)use;
#endif
    int64_t nseg = n_segments(G, threads);
    int finite = nseg > 1 ? run_segments(f, G, U, rng, leak, out, nseg, threads)
                          : f(G, U, rng, leak, out, 0, G->d);
    return finite ? -1 : first_bad(G);
}

/* ------------------------------------------------------------------ the method */

static mtgrad_status graddrop_direction(mtgrad_aggregator *a, const mtgradi_mat *G,
                                        const double *losses, const mtgradi_out *out, double *w)
{
    (void)losses;
    (void)w;
    int64_t d = G->d;
    int bad;
    const double *U = mtgradi_take_draws(a, (size_t)d, &bad);
    if (bad)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "graddrop: injected draws: need d = %lld uniforms, got %zu",
                            (long long)d, a->n_draws);
    if (U)
        for (int64_t j = 0; j < d; j++)
            if (!(U[j] >= 0 && U[j] <= 1))
                return mtgradi_fail(a, MTGRAD_E_INVAL, "graddrop: injected draw %lld = %g is outside [0, 1]",
                                    (long long)j, U[j]);
    int64_t at = mtgradi_graddrop_fast(G, U, &a->rng, a->pv[P_LEAK], out, a->work,
                                       (int)mtgradi_isa_best(), mtgradi_threads(a));
    if (at >= 0)
        return mtgradi_fail(a, MTGRAD_E_NONFINITE, "graddrop: G[%lld][%lld] is not finite",
                            (long long)(at / d), (long long)(at % d));
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_graddrop = {
    .name = "graddrop",
    .summary = "GradDrop: per coordinate keep the gradients of one sign, drawn by sign purity",
    .citation = "Chen et al., Just Pick a Sign (GradDrop), NeurIPS 2020 (TorchJD "
                "src/torchjd/aggregation/_graddrop.py; LibMTL LibMTL/weighting/GradDrop.py)",
    .flags = MTGRAD_NEEDS_JACOBIAN | MTGRAD_NEEDS_RANDOM | MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .work_size = graddrop_work_size,
    .direction = graddrop_direction,
};
