/*
 * layer_pool.c — MaxPool2d (no padding, floor output size) forward and backward.
 *
 * The forward records each window's winner so that the backward is a scatter; the winner is the
 * first maximum in window order (kh, then kw), and a NaN wins over numbers, as torch's CPU kernel
 * decides (`val > max || isnan(val)`, so the last NaN). The _one functions do one sample (the
 * model runs them inside its per-sample pipeline, data hot in cache); the batch versions split
 * samples over threads. Overlapping windows (stride < k) add into dx in a fixed order.
 */
#include "nn/nn_internal.h"

#include <math.h>
#include <string.h>

/* Index (within the plane) of window (oh, ow)'s winner. */
static int32_t window_argmax(const mtgradi_conv_geom *g, const float *plane, int64_t oh, int64_t ow)
{
    int64_t h0 = oh * g->stride, w0 = ow * g->stride;
    int64_t best = h0 * g->w + w0;
    float maxv = -INFINITY;
    for (int64_t kh = 0; kh < g->k; kh++)
        for (int64_t kw = 0; kw < g->k; kw++) {
            int64_t i = (h0 + kh) * g->w + w0 + kw;
            float v = plane[i];
            if (v > maxv || isnan(v)) {
                maxv = v;
                best = i;
            }
        }
    return (int32_t)best;
}

/* The same for the common 2x2 stride-2 window: branch-free selects (random data makes the
 * comparisons unpredictable), vectorised across the row. */
static void pool2_plane(const mtgradi_conv_geom *g, const float *xp, float *yp, int32_t *ap)
{
    for (int64_t oh = 0; oh < g->oh; oh++) {
        const float *p0 = xp + 2 * oh * g->w, *p1 = p0 + g->w;
        const int32_t i0 = (int32_t)(2 * oh * g->w), i1 = (int32_t)(i0 + g->w);
        float *yr = yp + oh * g->ow;
        int32_t *ar = ap + oh * g->ow;
        MTGRADI_OMP(omp simd)
        for (int32_t ow = 0; ow < (int32_t)g->ow; ow++) {
            const float a = p0[2 * ow], b = p0[2 * ow + 1], c = p1[2 * ow], d = p1[2 * ow + 1];
            float m = a;
            int32_t at = i0 + 2 * ow;
            int u = (b > m) | (b != b);
            m = u ? b : m;
            at = u ? i0 + 2 * ow + 1 : at;
            u = (c > m) | (c != c);
            m = u ? c : m;
            at = u ? i1 + 2 * ow : at;
            u = (d > m) | (d != d);
            m = u ? d : m;
            at = u ? i1 + 2 * ow + 1 : at;
            yr[ow] = m;
            ar[ow] = at;
        }
    }
}

void mtgradi_maxpool_forward_one(const mtgradi_conv_geom *g, const float *x, float *y,
                                 int32_t *argmax)
{
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    for (int64_t c = 0; c < g->c; c++) {
        const float *xp = x + c * in_plane;
        float *yp = y + c * out_plane;
        int32_t *ap = argmax + c * out_plane;
        if (g->k == 2 && g->stride == 2) {
            pool2_plane(g, xp, yp, ap);
            continue;
        }
        for (int64_t oh = 0; oh < g->oh; oh++)
            for (int64_t ow = 0; ow < g->ow; ow++) {
                int32_t i = window_argmax(g, xp, oh, ow);
                yp[oh * g->ow + ow] = xp[i];
                ap[oh * g->ow + ow] = i;
            }
    }
}

void mtgradi_maxpool_backward_one(const mtgradi_conv_geom *g, const int32_t *argmax,
                                  const float *dy, float *dx)
{
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    memset(dx, 0, (size_t)(g->c * in_plane) * sizeof *dx);
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t j = 0; j < out_plane; j++)
            dx[c * in_plane + argmax[c * out_plane + j]] += dy[c * out_plane + j];
}

void mtgradi_maxpool_forward(const mtgradi_conv_geom *g, int64_t n, const float *x, float *y,
                             int32_t *argmax)
{
    const int64_t in = g->c * g->h * g->w, out = g->c * g->oh * g->ow;
    MTGRADI_OMP(omp parallel for schedule(static) num_threads(mtgrad_nn_threads()))
    for (int64_t s = 0; s < n; s++)
        mtgradi_maxpool_forward_one(g, x + s * in, y + s * out, argmax + s * out);
}

void mtgradi_maxpool_backward(const mtgradi_conv_geom *g, int64_t n, const int32_t *argmax,
                              const float *dy, float *dx)
{
    const int64_t in = g->c * g->h * g->w, out = g->c * g->oh * g->ow;
    MTGRADI_OMP(omp parallel for schedule(static) num_threads(mtgrad_nn_threads()))
    for (int64_t s = 0; s < n; s++)
        mtgradi_maxpool_backward_one(g, argmax + s * out, dy + s * out, dx + s * in);
}

void mtgradi_maxpool_backward_ref(const mtgradi_conv_geom *g, int64_t n, const float *x,
                                  const float *dy, float *dx)
{
    const int64_t in_plane = g->h * g->w, out_plane = g->oh * g->ow;
    memset(dx, 0, (size_t)(n * g->c * in_plane) * sizeof *dx);
    for (int64_t p = 0; p < n * g->c; p++)
        for (int64_t oh = 0; oh < g->oh; oh++)
            for (int64_t ow = 0; ow < g->ow; ow++) {
                /* the winner, found again: the first strict maximum in (kh, kw) order, or the
                 * last NaN */
                int64_t best_h = oh * g->stride, best_w = ow * g->stride;
                for (int64_t kh = 0; kh < g->k; kh++)
                    for (int64_t kw = 0; kw < g->k; kw++) {
                        int64_t ih = oh * g->stride + kh, iw = ow * g->stride + kw;
                        float v = x[p * in_plane + ih * g->w + iw];
                        float b = x[p * in_plane + best_h * g->w + best_w];
                        int later = kh != 0 || kw != 0;
                        if (isnan(v) ? later : v > b) {
                            best_h = ih;
                            best_w = iw;
                        }
                    }
                dx[p * in_plane + best_h * g->w + best_w] += dy[p * out_plane + oh * g->ow + ow];
            }
}
