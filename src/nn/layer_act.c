/*
 * layer_act.c — the parameter-free element-wise layers: ReLU, Dropout and Dropout2d (flatten is
 * only a change of shape and has no code). The loops are serial: the model calls them per sample
 * inside its parallel per-sample pipeline (`omp simd` vectorises them where -O2 alone does not).
 * Dropout masks are drawn serially from the model's generator, in sample-major order, so a seed
 * gives the same mask for any number of threads.
 */
#include "nn/nn_internal.h"

void mtgradi_relu_forward(int64_t len, const float *x, float *y)
{
    MTGRADI_OMP(omp simd)
    for (int64_t i = 0; i < len; i++) {
        const float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v; /* NaN stays NaN */
    }
}

void mtgradi_relu_backward(int64_t len, const float *y, const float *dy, float *dx)
{
    MTGRADI_OMP(omp simd)
    for (int64_t i = 0; i < len; i++) {
        const float g = dy[i]; /* loaded unconditionally, so the select vectorises */
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

void mtgradi_dropout_mask(mtgradi_rng *r, int64_t n, int64_t units, double p, float *mask)
{
    const double keep = 1.0 - p;
    const float scale = keep > 0 ? (float)(1.0 / keep) : 0.0f;
    for (int64_t i = 0; i < n * units; i++) mask[i] = mtgradi_rng_uniform(r) < keep ? scale : 0.0f;
}

void mtgradi_dropout_apply(int64_t n_units, int64_t len, const float *mask, const float *x,
                           float *y)
{
    if (len == 1) {
        MTGRADI_OMP(omp simd)
        for (int64_t u = 0; u < n_units; u++) y[u] = x[u] * mask[u];
        return;
    }
    for (int64_t u = 0; u < n_units; u++) {
        const float m = mask[u];
        MTGRADI_OMP(omp simd)
        for (int64_t j = 0; j < len; j++) y[u * len + j] = x[u * len + j] * m;
    }
}
