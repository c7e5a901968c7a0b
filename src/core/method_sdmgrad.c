/*
 * method_sdmgrad.c — SDMGrad: MGDA pulled towards the mean gradient (direction-oriented MGDA).
 *
 *   w* = argmin_{w in simplex} 1/2 ||G^T w + lambda g0||^2,   g0 = G^T 1/k
 *   d  = (G^T w* + lambda g0) / (1 + lambda) = G^T (w* + lambda/k) / (1 + lambda)
 *
 * Solved as in the official supervised code (no double sampling, same G everywhere):
 *   s = mean_i sqrt(M_ii + 1e-4);  Q = M / s^2;  q = Q 1/k
 *   w: persistent across calls (warm start; 1/k after creation/reset)
 *   per call a fresh SGD(lr, momentum) on w^T Q w + 2 lambda w^T q: niter times
 *       grad = 2 Q w + 2 lambda q;  buf = grad (first step) or momentum*buf + grad;
 *       w <- w - lr buf;  w <- Duchi projection of w on the simplex
 *   The momentum buffer keeps the unprojected history (torch.optim.SGD semantics).
 * lambda = 0 gives MGDA's iterate; lambda -> infinity gives the mean.
 *
 * Double sampling (sampling=double, methods.md 7.1/7.3; mtgrad_weights_from_cross_gram): the
 * weights come from the cross Gram C = G(a) G(b)ᵀ of two independent batches — an unbiased
 * estimate of M, not symmetric, with a diagonal that can be negative — and the training step
 * takes the direction from a third batch c: G(c)ᵀ weights. The routine is the same with M := C
 * after clamping C's diagonal at >= 0 (LibMTL clamps it too): the inner gradient 2 C̃ w + 2λ Gg
 * with Gg = row mean of C̃ is then the double-sampled estimate of the true one. For a symmetric
 * Gram the clamp changes nothing, so a cross Gram of one batch with itself gives the
 * single-sampling weights bit for bit. The core does not read `sampling`; the training step
 * does (it draws the three batches).
 * LibMTL's version takes half this gradient (C̃w + λGg, s = mean sqrt(C_ii), C̃ = C/(s² + 1e-8))
 * with lr 5: 4x smaller steps than the official lr 10 on the full gradient; lr=2.5 here takes
 * LibMTL's step size (the normalisation constants 1e-4 vs 1e-8 still differ).
 *
 * Outputs: weights (w + lambda/k)/(1 + lambda) (direction = G^T weights; the official code
 * writes k times this into .grad, LibMTL 1 times); state: w (k doubles).
 * Cost O(niter k^2 + k log k) per call plus O(k^2 d) for M and O(kd) for the combination.
 *
 * See Algorithm 1 of Xiao, Ban & Ji, "Direction-oriented Multi-objective Learning: Simple and
 * Provable Stochastic Algorithms", NeurIPS 2023; reference code ml-opt-lab/sdmgrad
 * nyuv2/utils.py (functions sdmgrad, euclidean_proj_simplex).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { P_LAMBDA, P_NITER, P_LR, P_MOMENTUM, P_SAMPLING, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"lambda", MTGRAD_PARAM_REAL, 0.3, 0, 1e6, NULL, 0,
     "pull towards the mean gradient (0 = MGDA); 0.3 nyuv2/cityscapes, 0.6 MT10/MT50"},
    {"niter", MTGRAD_PARAM_INT, 20, 0, 100000, NULL, 0, "projected SGD steps per call"},
    {"lr", MTGRAD_PARAM_REAL, 10, 0, 1e6, NULL, MTGRAD_PARAM_LO_OPEN,
     "inner SGD learning rate (official nyuv2: 10; LibMTL's half gradient with 5 differs)"},
    {"momentum", MTGRAD_PARAM_REAL, 0.5, 0, 1, NULL, MTGRAD_PARAM_HI_OPEN,
     "inner SGD momentum (torch semantics, buffer reset every call)"},
    {"sampling", MTGRAD_PARAM_CHOICE, 0, 0, 0, "single|double", 0,
     "single: one batch; double: weights from the cross Gram of two independent batches, "
     "mtgrad_weights_from_cross_gram; the training step draws the batches"},
};

static size_t sdmgrad_state_size(int64_t k) { return (size_t)k; }
/* work: q (k), momentum buffer (k), gradient (k), projection scratch (k) */
static size_t sdmgrad_work_size(int64_t k) { return 4 * (size_t)k; }

static void sdmgrad_reset(mtgrad_aggregator *a)
{
    for (int64_t i = 0; i < a->k; i++) a->state[i] = 1.0 / (double)a->k;
}

static int desc_cmp(const void *x, const void *y)
{
    double u = *(const double *)x, v = *(const double *)y;
    return (u < v) - (u > v);
}

/* Duchi et al. (ICML 2008) projection on the simplex as the reference writes it: y is returned
 * unchanged when it already sums to exactly 1 with y >= 0; otherwise the last rho (0-based) with
 * u_rho (rho+1) > cumsum_rho - 1 gives theta = (cumsum_rho - 1)/(rho + 1). u: k scratch. */
static void duchi_project(double *y, int64_t k, double *u)
{
    double sum = 0;
    int nonneg = 1;
    for (int64_t i = 0; i < k; i++) {
        sum += y[i];
        if (!(y[i] >= 0)) nonneg = 0;
    }
    if (sum == 1.0 && nonneg) return;
    memcpy(u, y, (size_t)k * sizeof *u);
    qsort(u, (size_t)k, sizeof *u, desc_cmp);
    double cum = 0, theta = 0;
    for (int64_t j = 0; j < k; j++) {
        cum += u[j];
        if (u[j] * (double)(j + 1) > cum - 1) theta = (cum - 1) / (double)(j + 1);
    }
    for (int64_t i = 0; i < k; i++) y[i] = fmax(y[i] - theta, 0.0);
}

/* Entry (i, j) of M with the diagonal clamped at >= 0 (a cross Gram's diagonal can be < 0). */
static double entry(const double *M, int64_t k, int64_t i, int64_t j)
{
    double v = M[i * k + j];
    return i == j ? fmax(v, 0.0) : v;
}

static mtgrad_status sdmgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                     double *out)
{
    (void)losses;
    int64_t k = a->k;
    double lambda = a->pv[P_LAMBDA], lr = a->pv[P_LR], mu = a->pv[P_MOMENTUM];
    int64_t niter = (int64_t)a->pv[P_NITER];
    double *w = a->state, *q = a->work, *buf = a->work + k, *g = a->work + 2 * k, *u = a->work + 3 * k;

    /* the 1e-4 keeps s >= 1e-2, so an all-zero G gives Q = 0 rather than 0/0 */
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += sqrt(fmax(M[i * k + i], 0.0) + 1e-4);
    s /= (double)k;
    double s2 = s * s;
    for (int64_t i = 0; i < k; i++) {
        double r = 0;
        for (int64_t j = 0; j < k; j++) r += entry(M, k, i, j) / s2;
        q[i] = r / (double)k;
    }
    for (int64_t t = 0; t < niter; t++) {
        for (int64_t i = 0; i < k; i++) {
            double r = 0;
            for (int64_t j = 0; j < k; j++) r += entry(M, k, i, j) / s2 * w[j];
            g[i] = 2 * r + 2 * lambda * q[i];
        }
        for (int64_t i = 0; i < k; i++) {
            buf[i] = t == 0 ? g[i] : mu * buf[i] + g[i];
            w[i] -= lr * buf[i];
        }
        duchi_project(w, k, u);
    }
    for (int64_t i = 0; i < k; i++) {
        if (!isfinite(w[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "sdmgrad: inner iterate w[%lld] is not finite", (long long)i);
        out[i] = (w[i] + lambda / (double)k) / (1 + lambda);
    }
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_sdmgrad = {
    .name = "sdmgrad",
    .summary = "SDMGrad: MGDA regularised towards the mean gradient, warm-started projected SGD",
    .citation = "Xiao, Ban & Ji, Direction-oriented Multi-objective Learning, NeurIPS 2023 "
                "(ml-opt-lab/sdmgrad nyuv2/utils.py)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_STATEFUL | MTGRAD_CROSS_GRAM,
    .params = params,
    .n_params = N_PARAMS,
    .state_size = sdmgrad_state_size,
    .work_size = sdmgrad_work_size,
    .reset = sdmgrad_reset,
    .weights = sdmgrad_weights,
};
