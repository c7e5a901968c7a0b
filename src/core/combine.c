/* combine.c — out = sum_i w_i g_i, accumulated in double, tasks in ascending order for every
 * column (so the result never depends on the thread count). */
#include "internal.h"

#include <math.h>

#define TILE 512

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

/* One tile: acc[c] = sum_i w_i G[i][t+c]; returns 1 if all finite. */
static int combine_tile(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int64_t t,
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
    int finite = 1;
    for (int64_t c = 0; c < n; c++) {
        if (out->f32) {
            float v = (float)acc[c];
            out->f32[t + c] = v;
            finite &= isfinite(v) != 0;
        } else {
            out->f64[t + c] = acc[c];
            finite &= isfinite(acc[c]) != 0;
        }
    }
    return finite;
}

int mtgradi_combine(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int threads)
{
    int64_t ntiles = (G->d + TILE - 1) / TILE;
    int finite = 1;
    (void)threads;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) reduction(&& : finite) num_threads(threads > 0 ? threads : 1)
#endif
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t * TILE;
        int64_t n = G->d - c0 < TILE ? G->d - c0 : TILE;
        finite = combine_tile(G, w, out, c0, n) && finite;
    }
    return finite;
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
