/* gram.c — M = G G^T with products and sums in double.
 *
 * mtgradi_gram_ref: one dot product per pair (i <= j), columns in order — the reference.
 * mtgradi_gram: the columns are cut into MTGRADI_GRAM_SPLITS fixed ranges (independent of the
 * thread count); each range accumulates its own partial upper triangle, tile by tile, and the
 * partials are added in range order. So the result depends on d only, never on `threads`.
 * (float32 x float32 products are exact in double; only the summation order rounds.)
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define TILE 256 /* columns per tile: k rows of a tile stay in L1/L2 while all pairs use them */

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

size_t mtgradi_gram_work_size(int64_t k)
{
    return (size_t)MTGRADI_GRAM_SPLITS * (size_t)(k * (k + 1) / 2);
}

static double dot_f32(const float *x, const float *y, int64_t n)
{
    /* four independent accumulators: fixed order, lets the compiler pipeline the FMAs */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        s0 += (double)x[c] * (double)y[c];
        s1 += (double)x[c + 1] * (double)y[c + 1];
        s2 += (double)x[c + 2] * (double)y[c + 2];
        s3 += (double)x[c + 3] * (double)y[c + 3];
    }
    for (; c < n; c++) s0 += (double)x[c] * (double)y[c];
    return (s0 + s1) + (s2 + s3);
}

static double dot_f64(const double *x, const double *y, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t c = 0;
    for (; c + 4 <= n; c += 4) {
        s0 += x[c] * y[c];
        s1 += x[c + 1] * y[c + 1];
        s2 += x[c + 2] * y[c + 2];
        s3 += x[c + 3] * y[c + 3];
    }
    for (; c < n; c++) s0 += x[c] * y[c];
    return (s0 + s1) + (s2 + s3);
}

/* Upper triangle (packed row by row) of the columns [c0, c1) of G, added to P. */
static void gram_range(const mtgradi_mat *G, int64_t c0, int64_t c1, double *P)
{
    int64_t k = G->k;
    for (int64_t t = c0; t < c1; t += TILE) {
        int64_t n = c1 - t < TILE ? c1 - t : TILE;
        size_t p = 0;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = i; j < k; j++, p++) {
                if (G->f32)
                    P[p] += dot_f32(G->f32 + i * G->ld + t, G->f32 + j * G->ld + t, n);
                else
                    P[p] += dot_f64(G->f64 + i * G->ld + t, G->f64 + j * G->ld + t, n);
            }
    }
}

void mtgradi_gram(const mtgradi_mat *G, double *M, double *partials, int threads)
{
    int64_t k = G->k, d = G->d;
    size_t tri = (size_t)(k * (k + 1) / 2);
    memset(partials, 0, MTGRADI_GRAM_SPLITS * tri * sizeof *partials);
    (void)threads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1)
#endif
    for (int s = 0; s < MTGRADI_GRAM_SPLITS; s++) {
        int64_t c0 = d * s / MTGRADI_GRAM_SPLITS, c1 = d * (s + 1) / MTGRADI_GRAM_SPLITS;
        gram_range(G, c0, c1, partials + (size_t)s * tri);
    }
    size_t p = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i; j < k; j++, p++) {
            double s = 0;
            for (int r = 0; r < MTGRADI_GRAM_SPLITS; r++) s += partials[(size_t)r * tri + p];
            M[i * k + j] = s;
            M[j * k + i] = s;
        }
}

/* ------------------------------------------------------------------ public wrappers */

static mtgrad_status gram_public(const mtgradi_mat *G, double *M)
{
    if ((!G->f32 && !G->f64) || !M) return MTGRAD_E_INVAL;
    if (G->k < 1 || G->d < 1 || G->ld < G->d) return MTGRAD_E_SHAPE;
    double *partials = malloc(mtgradi_gram_work_size(G->k) * sizeof *partials);
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
