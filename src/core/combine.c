/* combine.c — out = sum_i w_i g_i in one streaming pass over G.
 *
 * Every output element is computed the same way on every path (reference, scalar, AVX2,
 * AVX-512, any thread count): s = 0; for i = 0..k-1 in order: s = s + w_i·g_i[c] in double
 * (multiply, then add: no FMA, so the vector paths round exactly like the reference), then one
 * rounding to the output's type. Columns are independent, so any partition over threads gives
 * the same bits.
 *
 * The fast path walks tiles of TILE columns; within a tile, the rows are taken in groups of up
 * to GROUP rows whose running sums stay in registers (a double buffer of the tile carries them
 * between groups), so each row is streamed once and only GROUP rows are in flight at a time.
 * A long output is written with streaming stores (no read-for-ownership of lines about to be
 * overwritten). (Walking the tiles backwards, to reuse the end of G that the Gram pass leaves in
 * L3, was tried: it defeats the hardware prefetcher and costs more than it saves.)
 */
#include "internal.h"
#include "vec.h"

#include <math.h>
#include <stdint.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
#define COMBINE_X86 1
#endif

/* Columns per tile: the double carry buffer is 64 KiB (L2). Each row is read in runs of TILE
 * floats, 32 KiB: with 1024-column tiles (4 KiB runs, carry in L1) k = 40 took 86 ms at d = 1e7
 * on one thread against 65-67 ms, and k = 2 with 2 threads 2.9 ms against 2.5; in a contended
 * phase of the shared machine (when DRAM rewards long runs per stream) k = 10 took 31 ms, and 28
 * with 16384-column tiles. At k = 10 in a quiet phase tile sizes are within noise. */
#define TILE 8192
#define GROUP 8   /* rows summed in registers before the carry buffer is touched */

void mtgradi_mat_block(const mtgradi_mat *G, int64_t j0, int64_t nb, double *dst)
{
    for (int64_t i = 0; i < G->k; i++)
        for (int64_t c = 0; c < nb; c++) dst[i * nb + c] = mtgradi_mat_at(G, i, j0 + c);
}

void mtgradi_out_block(const mtgradi_out *o, int64_t j0, int64_t nb, const double *src)
{
    for (int64_t c = 0; c < nb; c++) {
        if (o->f32) o->f32[j0 + c] = (float)src[c];
        else o->f64[j0 + c] = src[c];
    }
}

void mtgradi_combine_ref(const mtgradi_mat *G, const double *w, const mtgradi_out *out)
{
    for (int64_t c = 0; c < G->d; c++) {
        double s = 0;
        for (int64_t i = 0; i < G->k; i++) s += w[i] * mtgradi_mat_at(G, i, c);
        mtgradi_out_block(out, c, 1, &s);
    }
}

/* ------------------------------------------------------------------ portable tile */

/* Columns [t, t+n) of the output; returns 1 if all written values are finite. */
static int tile_scalar(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int64_t t,
                       int64_t n)
{
    double acc[TILE];
    for (int64_t c = 0; c < n; c++) acc[c] = 0;
    for (int64_t i = 0; i < G->k; i++) {
        double wi = w[i];
        if (G->f32) {
            const float *g = G->f32 + i * G->ld + t;
            for (int64_t c = 0; c < n; c++) acc[c] += wi * (double)g[c];
        } else {
            const double *g = G->f64 + i * G->ld + t;
            for (int64_t c = 0; c < n; c++) acc[c] += wi * g[c];
        }
    }
    double z = 0; /* v·0 is 0 for finite v, NaN otherwise */
    for (int64_t c = 0; c < n; c++) {
        if (out->f32) {
            float v = (float)acc[c];
            out->f32[t + c] = v;
            z += (double)v * 0.0;
        } else {
            out->f64[t + c] = acc[c];
            z += acc[c] * 0.0;
        }
    }
    return z == 0;
}

#ifdef COMBINE_X86
/* ------------------------------------------------------------------ AVX-512 (f32 G, f32 out) */

/* acc (8 columns at p) + w·g: the reference's multiply, then add. */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) __m512d
madd512(__m512d acc, __m512d w, const float *p)
{
    return _mm512_add_pd(acc, _mm512_mul_pd(w, _mm512_cvtps_pd(_mm256_loadu_ps(p))));
}

__attribute__((target("avx512f"))) static int tile512(const mtgradi_mat *G, const double *w,
                                                       float *out, int64_t t, int64_t n, int nt)
{
    double carry[TILE];
    int64_t k = G->k, full = n / 32 * 32;
    __m256 z = _mm256_setzero_ps();
    for (int64_t i0 = 0; i0 < k; i0 += GROUP) {
        int64_t i1 = k - i0 < GROUP ? k : i0 + GROUP;
        for (int64_t c = 0; c < full; c += 32) {
            /* four independent chains: each row adds once per chain, so the add latency hides */
            __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
            if (i0) {
                a0 = _mm512_loadu_pd(carry + c), a1 = _mm512_loadu_pd(carry + c + 8);
                a2 = _mm512_loadu_pd(carry + c + 16), a3 = _mm512_loadu_pd(carry + c + 24);
            }
            for (int64_t i = i0; i < i1; i++) {
                const float *g = G->f32 + i * G->ld + t + c;
                __m512d wi = _mm512_set1_pd(w[i]);
                a0 = madd512(a0, wi, g), a1 = madd512(a1, wi, g + 8);
                a2 = madd512(a2, wi, g + 16), a3 = madd512(a3, wi, g + 24);
            }
            if (i1 < k) {
                _mm512_storeu_pd(carry + c, a0), _mm512_storeu_pd(carry + c + 8, a1);
                _mm512_storeu_pd(carry + c + 16, a2), _mm512_storeu_pd(carry + c + 24, a3);
                continue;
            }
            __m256 f0 = _mm512_cvtpd_ps(a0), f1 = _mm512_cvtpd_ps(a1);
            __m256 f2 = _mm512_cvtpd_ps(a2), f3 = _mm512_cvtpd_ps(a3);
            if (nt) { /* out + t is 32-byte aligned when nt (see mtgradi_combine_isa) */
                _mm256_stream_ps(out + t + c, f0), _mm256_stream_ps(out + t + c + 8, f1);
                _mm256_stream_ps(out + t + c + 16, f2), _mm256_stream_ps(out + t + c + 24, f3);
            } else {
                _mm256_storeu_ps(out + t + c, f0), _mm256_storeu_ps(out + t + c + 8, f1);
                _mm256_storeu_ps(out + t + c + 16, f2), _mm256_storeu_ps(out + t + c + 24, f3);
            }
            __m256 zero = _mm256_setzero_ps(); /* v·0 is NaN exactly when v is not finite */
            __m256 z01 = _mm256_add_ps(_mm256_mul_ps(f0, zero), _mm256_mul_ps(f1, zero));
            __m256 z23 = _mm256_add_ps(_mm256_mul_ps(f2, zero), _mm256_mul_ps(f3, zero));
            z = _mm256_add_ps(z, _mm256_add_ps(z01, z23));
        }
    }
    if (nt) _mm_sfence(); /* streaming stores are weakly ordered: publish them */
    float zs[8];
    _mm256_storeu_ps(zs, z);
    int finite = zs[0] + zs[1] + zs[2] + zs[3] + zs[4] + zs[5] + zs[6] + zs[7] == 0;
    if (full < n) { /* leftover columns: the portable code does the same arithmetic */
        mtgradi_out o = {out, NULL, 0};
        finite &= tile_scalar(G, w, &o, t + full, n - full);
    }
    return finite;
}

/* ------------------------------------------------------------------ AVX2 (f32 G, f32 out) */

__attribute__((target("avx2"))) static inline __m256d
rows256(const mtgradi_mat *G, const double *w, int64_t i0, int64_t i1, int64_t c, __m256d acc)
{
    for (int64_t i = i0; i < i1; i++) {
        __m256d g = _mm256_cvtps_pd(_mm_loadu_ps(G->f32 + i * G->ld + c));
        acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_set1_pd(w[i]), g));
    }
    return acc;
}

__attribute__((target("avx2"))) static int tile256(const mtgradi_mat *G, const double *w,
                                                    float *out, int64_t t, int64_t n, int nt)
{
    double carry[TILE];
    int64_t k = G->k, full = n / 8 * 8;
    __m128 z = _mm_setzero_ps();
    for (int64_t i0 = 0; i0 < k; i0 += GROUP) {
        int64_t i1 = k - i0 < GROUP ? k : i0 + GROUP;
        for (int64_t c = 0; c < full; c += 8) {
            __m256d a0 = i0 ? _mm256_loadu_pd(carry + c) : _mm256_setzero_pd();
            __m256d a1 = i0 ? _mm256_loadu_pd(carry + c + 4) : _mm256_setzero_pd();
            a0 = rows256(G, w, i0, i1, t + c, a0);
            a1 = rows256(G, w, i0, i1, t + c + 4, a1);
            if (i1 < k) {
                _mm256_storeu_pd(carry + c, a0);
                _mm256_storeu_pd(carry + c + 4, a1);
            } else {
                __m128 f0 = _mm256_cvtpd_ps(a0), f1 = _mm256_cvtpd_ps(a1);
                if (nt) {
                    _mm_stream_ps(out + t + c, f0);
                    _mm_stream_ps(out + t + c + 4, f1);
                } else {
                    _mm_storeu_ps(out + t + c, f0);
                    _mm_storeu_ps(out + t + c + 4, f1);
                }
                z = _mm_add_ps(z, _mm_add_ps(_mm_mul_ps(f0, _mm_setzero_ps()),
                                             _mm_mul_ps(f1, _mm_setzero_ps())));
            }
        }
    }
    if (nt) _mm_sfence();
    float zs[4];
    _mm_storeu_ps(zs, z);
    int finite = zs[0] + zs[1] + zs[2] + zs[3] == 0;
    if (full < n) {
        mtgradi_out o = {out, NULL, 0};
        finite &= tile_scalar(G, w, &o, t + full, n - full);
    }
    return finite;
}
#endif /* COMBINE_X86 */

static int combine_tile(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int64_t t,
                        int64_t n, mtgradi_isa isa, int nt)
{
#ifdef COMBINE_X86
    if (G->f32 && out->f32 && isa == MTGRADI_ISA_AVX512) return tile512(G, w, out->f32, t, n, nt);
    if (G->f32 && out->f32 && isa == MTGRADI_ISA_AVX2) return tile256(G, w, out->f32, t, n, nt);
#endif
    (void)isa;
    (void)nt;
    return tile_scalar(G, w, out, t, n);
}

/* Output at least this long (floats, 8 MiB) is written with streaming stores: it cannot stay in
 * cache anyway, and a normal store would first read every line (10% more traffic at k = 10,
 * 50% at k = 2). */
#define NT_MIN_D ((int64_t)1 << 21)

int mtgradi_combine_isa(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int threads,
                        mtgradi_isa isa)
{
    isa = mtgradi_isa_clamp(isa);
    /* tiles start where the output is 32-byte aligned (a short tile [0, head) first), so the
     * vector stores of every tile are aligned; columns are independent, so the result is the same */
    int64_t head = 0;
    if (out->f32) head = (int64_t)((32 - (uintptr_t)out->f32 % 32) % 32 / sizeof(float));
    if (head > G->d || (uintptr_t)out->f32 % sizeof(float)) head = 0;
    int nt = out->f32 && G->f32 && isa != MTGRADI_ISA_SCALAR && G->d >= NT_MIN_D &&
             ((uintptr_t)(out->f32 + head) % 32) == 0;
    int64_t first = head > 0 ? 1 : 0, ntiles = first + (G->d - head + TILE - 1) / TILE;
    int finite = 1;
    (void)threads;
#if defined(_OPENMP)
    /* dynamic, one tile at a time: a descheduled thread on a shared machine does not stall the
     * rest; columns are independent, so the split never changes the result */
#pragma omp parallel for schedule(dynamic, 1) reduction(&& : finite) \
    num_threads(threads > 0 ? threads : 1) if (threads > 1 && G->k * G->d >= MTGRADI_PAR_MIN_ELEMS)
#endif
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t < first ? 0 : head + (t - first) * TILE;
        int64_t c1 = t < first ? head : (c0 + TILE < G->d ? c0 + TILE : G->d);
        finite = combine_tile(G, w, out, c0, c1 - c0, isa, nt && t >= first) && finite;
    }
    return finite;
}

int mtgradi_combine(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int threads)
{
    return mtgradi_combine_isa(G, w, out, threads, mtgradi_isa_best());
}

static mtgrad_status combine_public(const mtgradi_mat *G, const double *w, const mtgradi_out *o)
{
    if ((!G->f32 && !G->f64) || !w || (!o->f32 && !o->f64)) return MTGRAD_E_INVAL;
    if (G->k < 1 || G->d < 1 || G->ld < G->d) return MTGRAD_E_SHAPE;
    for (int64_t i = 0; i < G->k; i++)
        if (!isfinite(w[i])) return MTGRAD_E_NONFINITE;
    return mtgradi_combine(G, w, o, 1) ? MTGRAD_OK : MTGRAD_E_NONFINITE;
}

mtgrad_status mtgrad_combine_f32(const float *G, int64_t k, int64_t d, int64_t ldg,
                                 const double *w, float *out)
{
    mtgradi_mat m = {G, NULL, k, d, ldg};
    mtgradi_out o = {out, NULL, d};
    return combine_public(&m, w, &o);
}

mtgrad_status mtgrad_combine_f64(const double *G, int64_t k, int64_t d, int64_t ldg,
                                 const double *w, double *out)
{
    mtgradi_mat m = {NULL, G, k, d, ldg};
    mtgradi_out o = {NULL, out, d};
    return combine_public(&m, w, &o);
}
