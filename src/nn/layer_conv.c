/*
 * layer_conv.c — Conv2d forward and backward by im2col + sgemm, and the direct-loop reference.
 *
 * Why per sample: one sample's columns (c*k*k x oh*ow; 254 KB for LeNet's 9x9 first layer) stay
 * in L2 between im2col and the GEMM, and OpenBLAS runs these GEMMs at ~90 GFLOP/s, while one big
 * GEMM over the whole batch streams tens of MB of columns through DRAM and runs 3-5x slower
 * (measured here). Samples are split into MTGRADI_NN_GROUPS fixed groups: each group accumulates
 * its partial dW/db over its samples in order, and the partials are added in group order, so the
 * result is the same for any number of threads. OpenBLAS is single-threaded (nn_internal.h).
 */
#include "nn/nn_internal.h"

#include <cblas.h>
#include <string.h>

void mtgradi_conv2d_work_need(const mtgradi_conv_geom *g, size_t *cols_floats, size_t *pw_floats,
                              size_t *pb_doubles)
{
    *cols_floats = (size_t)(g->c * g->k * g->k * g->oh * g->ow);
    *pw_floats = (size_t)(g->oc * g->c * g->k * g->k);
    *pb_doubles = (size_t)g->oc;
}

/* A 1x1 stride-1 unpadded convolution's columns are the input itself. */
static int cols_are_input(const mtgradi_conv_geom *g)
{
    return g->k == 1 && g->stride == 1 && g->pad == 0;
}

/* Copy a short row: how to copy n floats fastest depends on n (measured on LeNet's 28- and
 * 10-float rows): memcpy for long rows, 4-float chunks (the last one overlapping) for short. */
static inline void copy4(float *dst, const float *src)
{
    /* all loads before the stores: the compiler may then use one vector move */
    float a = src[0], b = src[1], c = src[2], d = src[3];
    dst[0] = a, dst[1] = b, dst[2] = c, dst[3] = d;
}

static void copy_row(float *dst, const float *src, int64_t n)
{
    if (n >= 16) {
        memcpy(dst, src, (size_t)n * sizeof *dst);
    } else if (n >= 4) {
        int64_t j = 0;
        for (; j + 4 <= n; j += 4) copy4(dst + j, src + j);
        if (j < n) copy4(dst + n - 4, src + n - 4);
    } else {
        for (int64_t j = 0; j < n; j++) dst[j] = src[j];
    }
}

/* im2col of the common unpadded stride-1 case: every row is a plain shifted copy. */
static void im2col_s1p0(const mtgradi_conv_geom *g, const float *x, float *cols)
{
    const int64_t K = g->k, OH = g->oh, OW = g->ow;
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t kh = 0; kh < K; kh++)
            for (int64_t kw = 0; kw < K; kw++) {
                float *row = cols + ((c * K + kh) * K + kw) * OH * OW;
                const float *src = x + (c * g->h + kh) * g->w + kw;
                for (int64_t oh = 0; oh < OH; oh++) copy_row(row + oh * OW, src + oh * g->w, OW);
            }
}

/* One sample: cols (c*k*k x oh*ow) from x (c x h x w), zeros where the window leaves the input. */
static void im2col(const mtgradi_conv_geom *g, const float *x, float *cols)
{
    const int64_t K = g->k, S = g->stride, P = g->pad, OH = g->oh, OW = g->ow;
    if (S == 1 && P == 0) {
        im2col_s1p0(g, x, cols);
        return;
    }
    for (int64_t c = 0; c < g->c; c++) {
        for (int64_t kh = 0; kh < K; kh++) {
            for (int64_t kw = 0; kw < K; kw++) {
                float *row = cols + ((c * K + kh) * K + kw) * OH * OW;
                /* output columns whose input column iw = ow*S - P + kw lies inside [0, w) */
                int64_t ow0 = P - kw > 0 ? (P - kw + S - 1) / S : 0;
                int64_t ow1 = g->w + P - kw > 0 ? (g->w + P - kw + S - 1) / S : 0;
                if (ow1 > OW) ow1 = OW;
                if (ow0 > ow1) ow0 = ow1;
                for (int64_t oh = 0; oh < OH; oh++) {
                    float *dst = row + oh * OW;
                    int64_t ih = oh * S - P + kh;
                    if (ih < 0 || ih >= g->h) {
                        memset(dst, 0, (size_t)OW * sizeof *dst);
                        continue;
                    }
                    const float *src = x + (c * g->h + ih) * g->w;
                    for (int64_t ow = 0; ow < ow0; ow++) dst[ow] = 0;
                    if (S == 1) { /* rows are short (28 floats in LeNet): a loop beats memcpy */
                        const int64_t shift = kw - P;
                        MTGRADI_OMP(omp simd)
                        for (int64_t ow = ow0; ow < ow1; ow++) dst[ow] = src[ow + shift];
                    } else {
                        for (int64_t ow = ow0; ow < ow1; ow++) dst[ow] = src[ow * S - P + kw];
                    }
                    for (int64_t ow = ow1; ow < OW; ow++) dst[ow] = 0;
                }
            }
        }
    }
}

/* One sample: dx (c x h x w) = the sum of dcols over the windows covering each input pixel. */
static void col2im(const mtgradi_conv_geom *g, const float *cols, float *dx)
{
    const int64_t K = g->k, S = g->stride, P = g->pad, OH = g->oh, OW = g->ow;
    memset(dx, 0, (size_t)(g->c * g->h * g->w) * sizeof *dx);
    if (S == 1 && P == 0) { /* plain shifted adds */
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t kh = 0; kh < K; kh++)
                for (int64_t kw = 0; kw < K; kw++) {
                    const float *row = cols + ((c * K + kh) * K + kw) * OH * OW;
                    float *dst = dx + (c * g->h + kh) * g->w + kw;
                    for (int64_t oh = 0; oh < OH; oh++) {
                        const float *sp = row + oh * OW;
                        float *dp = dst + oh * g->w;
                        MTGRADI_OMP(omp simd)
                        for (int64_t ow = 0; ow < OW; ow++) dp[ow] += sp[ow];
                    }
                }
        return;
    }
    for (int64_t c = 0; c < g->c; c++) {
        for (int64_t kh = 0; kh < K; kh++) {
            for (int64_t kw = 0; kw < K; kw++) {
                const float *row = cols + ((c * K + kh) * K + kw) * OH * OW;
                int64_t ow0 = P - kw > 0 ? (P - kw + S - 1) / S : 0;
                int64_t ow1 = g->w + P - kw > 0 ? (g->w + P - kw + S - 1) / S : 0;
                if (ow1 > OW) ow1 = OW;
                for (int64_t oh = 0; oh < OH; oh++) {
                    int64_t ih = oh * S - P + kh;
                    if (ih < 0 || ih >= g->h) continue;
                    const float *src = row + oh * OW;
                    float *dst = dx + (c * g->h + ih) * g->w;
                    if (S == 1) {
                        const int64_t shift = kw - P;
                        MTGRADI_OMP(omp simd)
                        for (int64_t ow = ow0; ow < ow1; ow++) dst[ow + shift] += src[ow];
                    } else {
                        for (int64_t ow = ow0; ow < ow1; ow++) dst[ow * S - P + kw] += src[ow];
                    }
                }
            }
        }
    }
}

/* sum of a[0..len) in double: four interleaved partial sums (a fixed order, but not one long
 * chain of dependent additions), then added pairwise. */
static double row_sum(const float *a, int64_t len)
{
    double s[4] = {0, 0, 0, 0};
    int64_t p = 0;
    for (; p + 4 <= len; p += 4)
        for (int t = 0; t < 4; t++) s[t] += a[p + t];
    for (; p < len; p++) s[0] += a[p];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

void mtgradi_conv2d_forward_one(const mtgradi_conv_geom *g, const float *x, const float *W,
                                const float *b, float *y, float *cols)
{
    const int64_t ohw = g->oh * g->ow, ckk = g->c * g->k * g->k;
    const float *B = x;
    if (!cols_are_input(g)) {
        im2col(g, x, cols);
        B = cols;
    }
    for (int64_t o = 0; o < g->oc; o++) {
        const float bo = b[o];
        MTGRADI_OMP(omp simd)
        for (int64_t p = 0; p < ohw; p++) y[o * ohw + p] = bo;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g->oc, (int)ohw, (int)ckk, 1.0f, W,
                (int)ckk, B, (int)ohw, 1.0f, y, (int)ohw);
}

void mtgradi_conv2d_backward_one(const mtgradi_conv_geom *g, const float *x, const float *W,
                                 const float *dy, float *pw, double *pb, int accumulate,
                                 float *dx, float *cols)
{
    const int64_t ohw = g->oh * g->ow, ckk = g->c * g->k * g->k;
    if (pw) {
        const float *B = x;
        if (!cols_are_input(g)) {
            im2col(g, x, cols);
            B = cols;
        }
        /* pw (oc x ckk) (+)= dy (oc x ohw) cols^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->oc, (int)ckk, (int)ohw, 1.0f,
                    dy, (int)ohw, B, (int)ohw, accumulate ? 1.0f : 0.0f, pw, (int)ckk);
        for (int64_t o = 0; o < g->oc; o++) {
            double acc = row_sum(dy + o * ohw, ohw);
            pb[o] = accumulate ? pb[o] + acc : acc;
        }
    }
    if (dx) {
        /* dcols (ckk x ohw) = W^T dy; the columns are no longer needed */
        float *dst = cols_are_input(g) ? dx : cols;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, (int)ohw, (int)g->oc, 1.0f,
                    W, (int)ckk, dy, (int)ohw, 0.0f, dst, (int)ohw);
        if (!cols_are_input(g)) col2im(g, cols, dx);
    }
}

void mtgradi_conv2d_reduce(const mtgradi_conv_geom *g, int64_t ng, const float *pw,
                           size_t pw_stride, const double *pb, size_t pb_stride, float *dW,
                           float *db)
{
    const int64_t n_w = g->oc * g->c * g->k * g->k;
    for (int64_t j = 0; j < n_w; j++) {
        double acc = 0;
        for (int64_t gi = 0; gi < ng; gi++) acc += pw[(size_t)gi * pw_stride + (size_t)j];
        dW[j] = (float)acc;
    }
    for (int64_t o = 0; o < g->oc; o++) {
        double acc = 0;
        for (int64_t gi = 0; gi < ng; gi++) acc += pb[(size_t)gi * pb_stride + (size_t)o];
        db[o] = (float)acc;
    }
}

void mtgradi_conv2d_forward(const mtgradi_conv_geom *g, int64_t n, const float *x, const float *W,
                            const float *b, float *y, const mtgradi_conv_work *work)
{
    const int64_t in_size = g->c * g->h * g->w, out_size = g->oc * g->oh * g->ow;
    const int64_t ng = mtgradi_nn_groups(n);
    mtgradi_blas_single_thread();
    MTGRADI_OMP(omp parallel for schedule(static) num_threads(mtgrad_nn_threads()))
    for (int64_t gi = 0; gi < ng; gi++) {
        int64_t s0, s1;
        mtgradi_nn_group_range(n, gi, &s0, &s1);
        for (int64_t s = s0; s < s1; s++)
            mtgradi_conv2d_forward_one(g, x + s * in_size, W, b, y + s * out_size,
                                       work->cols + (size_t)gi * work->cols_floats);
    }
}

void mtgradi_conv2d_backward(const mtgradi_conv_geom *g, int64_t n, const float *x, const float *W,
                             const float *dy, float *dW, float *db, float *dx,
                             const mtgradi_conv_work *work)
{
    const int64_t in_size = g->c * g->h * g->w, out_size = g->oc * g->oh * g->ow;
    const int params = dW != NULL && db != NULL;
    const int64_t ng = mtgradi_nn_groups(n);
    if (!params && !dx) return;
    mtgradi_blas_single_thread();
    MTGRADI_OMP(omp parallel for schedule(static) num_threads(mtgrad_nn_threads()))
    for (int64_t gi = 0; gi < ng; gi++) {
        int64_t s0, s1;
        mtgradi_nn_group_range(n, gi, &s0, &s1);
        for (int64_t s = s0; s < s1; s++)
            mtgradi_conv2d_backward_one(g, x + s * in_size, W, dy + s * out_size,
                                        params ? work->pw + (size_t)gi * work->pw_floats : NULL,
                                        work->pb + (size_t)gi * work->pb_doubles, s > s0,
                                        dx ? dx + s * in_size : NULL,
                                        work->cols + (size_t)gi * work->cols_floats);
    }
    if (params)
        mtgradi_conv2d_reduce(g, ng, work->pw, work->pw_floats, work->pb,
                              work->pb_doubles, dW, db);
}

/* ------------------------------------------------------------------ reference */

/* x value at (c, ih, iw) of one sample, 0 outside (the zero padding). */
static double at(const mtgradi_conv_geom *g, const float *xs, int64_t c, int64_t ih, int64_t iw)
{
    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) return 0.0;
    return xs[(c * g->h + ih) * g->w + iw];
}

void mtgradi_conv2d_forward_ref(const mtgradi_conv_geom *g, int64_t n, const float *x,
                                const float *W, const float *b, float *y)
{
    const int64_t K = g->k, in_size = g->c * g->h * g->w;
    for (int64_t s = 0; s < n; s++) {
        const float *xs = x + s * in_size;
        for (int64_t o = 0; o < g->oc; o++)
            for (int64_t oh = 0; oh < g->oh; oh++)
                for (int64_t ow = 0; ow < g->ow; ow++) {
                    double acc = b[o];
                    for (int64_t c = 0; c < g->c; c++)
                        for (int64_t kh = 0; kh < K; kh++)
                            for (int64_t kw = 0; kw < K; kw++)
                                acc += W[((o * g->c + c) * K + kh) * K + kw] *
                                       at(g, xs, c, oh * g->stride - g->pad + kh,
                                          ow * g->stride - g->pad + kw);
                    y[((s * g->oc + o) * g->oh + oh) * g->ow + ow] = (float)acc;
                }
    }
}

void mtgradi_conv2d_backward_ref(const mtgradi_conv_geom *g, int64_t n, const float *x,
                                 const float *W, const float *dy, float *dW, float *db, float *dx)
{
    const int64_t K = g->k, in_size = g->c * g->h * g->w;
    for (int64_t o = 0; o < g->oc; o++) {
        double acc_b = 0;
        for (int64_t s = 0; s < n; s++)
            for (int64_t p = 0; p < g->oh * g->ow; p++) acc_b += dy[(s * g->oc + o) * g->oh * g->ow + p];
        if (db) db[o] = (float)acc_b;
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t kh = 0; kh < K; kh++)
                for (int64_t kw = 0; kw < K; kw++) {
                    double acc = 0;
                    for (int64_t s = 0; s < n; s++)
                        for (int64_t oh = 0; oh < g->oh; oh++)
                            for (int64_t ow = 0; ow < g->ow; ow++)
                                acc += dy[((s * g->oc + o) * g->oh + oh) * g->ow + ow] *
                                       at(g, x + s * in_size, c, oh * g->stride - g->pad + kh,
                                          ow * g->stride - g->pad + kw);
                    if (dW) dW[((o * g->c + c) * K + kh) * K + kw] = (float)acc;
                }
    }
    if (!dx) return;
    /* dx(c, ih, iw) = sum over (o, kh, kw) whose window position lands on an output pixel */
    for (int64_t s = 0; s < n; s++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t ih = 0; ih < g->h; ih++)
                for (int64_t iw = 0; iw < g->w; iw++) {
                    double acc = 0;
                    for (int64_t o = 0; o < g->oc; o++)
                        for (int64_t kh = 0; kh < K; kh++)
                            for (int64_t kw = 0; kw < K; kw++) {
                                int64_t th = ih + g->pad - kh, tw = iw + g->pad - kw;
                                if (th < 0 || tw < 0 || th % g->stride || tw % g->stride) continue;
                                int64_t oh = th / g->stride, ow = tw / g->stride;
                                if (oh >= g->oh || ow >= g->ow) continue;
                                acc += W[((o * g->c + c) * K + kh) * K + kw] *
                                       dy[((s * g->oc + o) * g->oh + oh) * g->ow + ow];
                            }
                    dx[s * in_size + (c * g->h + ih) * g->w + iw] = (float)acc;
                }
}
