/*
 * layer_linear.c — Linear (torch.nn.Linear: y = x W^T + b) forward and backward, as one sgemm
 * over the whole batch each (OpenBLAS single-threaded, so the bits never depend on the thread
 * count), and the plain reference.
 */
#include "nn/nn_internal.h"

#include <cblas.h>

void mtgradi_linear_forward(int64_t n, int64_t in, int64_t out, const float *x, const float *W,
                            const float *b, float *y)
{
    mtgradi_blas_single_thread();
    for (int64_t s = 0; s < n; s++)
        for (int64_t o = 0; o < out; o++) y[s * out + o] = b[o];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out, (int)in, 1.0f, x,
                (int)in, W, (int)in, 1.0f, y, (int)out);
}

void mtgradi_linear_backward(int64_t n, int64_t in, int64_t out, const float *x, const float *W,
                             const float *dy, float *dW, float *db, float *dx)
{
    mtgradi_blas_single_thread();
    if (dW && db) {
        /* dW (out x in) = dy^T (out x n) x (n x in) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)n, 1.0f, dy,
                    (int)out, x, (int)in, 0.0f, dW, (int)in);
        /* column sums in sample order, each in double */
        for (int64_t o = 0; o < out; o++) {
            double acc = 0;
            for (int64_t s = 0; s < n; s++) acc += dy[s * out + o];
            db[o] = (float)acc;
        }
    }
    if (dx) {
        /* dx (n x in) = dy (n x out) W (out x in) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)in, (int)out, 1.0f, dy,
                    (int)out, W, (int)in, 0.0f, dx, (int)in);
    }
}

void mtgradi_linear_forward_ref(int64_t n, int64_t in, int64_t out, const float *x,
                                const float *W, const float *b, float *y)
{
    for (int64_t s = 0; s < n; s++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b[o];
            for (int64_t i = 0; i < in; i++) acc += (double)x[s * in + i] * W[o * in + i];
            y[s * out + o] = (float)acc;
        }
}

void mtgradi_linear_backward_ref(int64_t n, int64_t in, int64_t out, const float *x,
                                 const float *W, const float *dy, float *dW, float *db, float *dx)
{
    for (int64_t o = 0; o < out; o++) {
        if (db) {
            double acc = 0;
            for (int64_t s = 0; s < n; s++) acc += dy[s * out + o];
            db[o] = (float)acc;
        }
        if (dW)
            for (int64_t i = 0; i < in; i++) {
                double acc = 0;
                for (int64_t s = 0; s < n; s++) acc += (double)dy[s * out + o] * x[s * in + i];
                dW[o * in + i] = (float)acc;
            }
    }
    if (dx)
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < in; i++) {
                double acc = 0;
                for (int64_t o = 0; o < out; o++) acc += (double)dy[s * out + o] * W[o * in + i];
                dx[s * in + i] = (float)acc;
            }
}
