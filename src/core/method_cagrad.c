/*
 * method_cagrad.c — CAGrad: conflict-averse gradient descent (LibMTL semantics).
 *
 * Primal: max_d min_i <g_i, d>  s.t. ||d - g0|| <= c·||g0||,  g0 = mean_i g_i. Its dual over the
 * simplex, with the reference's smoothing constants:
 *
 *   phi = c·sqrt(mean(M) + 1e-8) + 1e-8                 (mean over all k² entries = ||g0||²)
 *   x   = argmin_{x in Δ}  xᵀM(1/k) + phi·sqrt(xᵀMx + 1e-8)
 *   lam = phi / (sqrt(xᵀMx) + 1e-8)                     (||g_x|| computed from M)
 *   d   = (g0 + lam·g_x) / r,   r = 1 (rescale 0), 1 + c² (rescale 1), 1 + c (rescale 2)
 *
 * Reference weights (g0_weights = r, methods.md 4.2): g0 = Gᵀr instead of the mean, so that
 * ||g0||² = rᵀMr, <g_x, g0> = xᵀMr and w = (r + lam·x)/div. CAGrad-fastK (the MTRL
 * cagrad_fastN) runs on K pseudo-tasks — K−1 sampled tasks and the average of the rest — with
 * r = (1/k, …, 1/k, (k−K+1)/k). Empty r (the default) is 1/k each, computed exactly as before;
 * an explicit r equal to 1/k (same doubles) takes that same path, so it gives the same bits.
 *
 * Outputs: weights w = (1/k + lam·x)/r, direction d = Gᵀw. The references solve the dual with
 * scipy SLSQP (defaults, finite differences) which stops early; here it is solved to KKT
 * accuracy ~1e-12 with the SQP solver of qp.h (exact Hessian; the objective is convex), which is
 * what the golden tolerances are built for. c = 0 gives the mean (up to the 1e-8 smoothing).
 * No ×k: the CAGrad repository (and the nash-mtl/FAMO copies) multiply d by k; LibMTL does not.
 * Cost: O(k²) per objective evaluation, O(k³) per SQP iteration, a handful of iterations.
 *
 * See §3 (Eq. 3–5) of Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning",
 * NeurIPS 2021; reference code median-research-group/LibMTL LibMTL/weighting/CAGrad.py
 * (Cranial-XIX/CAGrad nyuv2/utils.py for the ×k original).
 */
#include "internal.h"
#include "qp.h"

#include <math.h>

enum { P_C, P_RESCALE, P_G0W, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"c", MTGRAD_PARAM_REAL, 0.5, 0, 1e6, NULL, 0,
     "radius of the ball around g0, relative to ||g0|| (LibMTL calpha 0.5; papers 0.4)"},
    {"rescale", MTGRAD_PARAM_INT, 1, 0, 2, NULL, 0,
     "divide the direction by 1 (0), 1 + c^2 (1, the references' choice) or 1 + c (2)"},
    {"g0_weights", MTGRAD_PARAM_REALS, 0, 0, 1e300, "", 0,
     "reference weights r of g0 = G^T r (k values >= 0, sum > 0; empty = 1/k each); "
     "CAGrad-fastK: (1/k,...,1/k,(k-K+1)/k)"},
};

static mtgrad_status cagrad_check(mtgrad_aggregator *a)
{
    size_t n = a->plen[P_G0W];
    if (n == 0) return MTGRAD_OK;
    if (n != (size_t)a->k)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "cagrad: g0_weights has %zu values; give k = %lld "
                            "(or none for 1/k each)", n, (long long)a->k);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += a->plist[P_G0W][i];
    if (!(sum > 0) || !isfinite(sum))
        return mtgradi_fail(a, MTGRAD_E_INVAL, "cagrad: g0_weights sum to %g; need a finite sum > 0", sum);
    return MTGRAD_OK;
}

/* The reference weights r, or NULL when they are 1/k each (the default path, exact as before). */
static const double *g0_weights(const mtgrad_aggregator *a)
{
    if (a->plen[P_G0W] == 0) return NULL;
    for (int64_t i = 0; i < a->k; i++)
        if (a->plist[P_G0W][i] != 1.0 / (double)a->k) return a->plist[P_G0W];
    return NULL;
}

/* lin (k), Mw (k), then the SQP's scratch */
static size_t cagrad_work_size(int64_t k)
{
    return (size_t)(2 * k) + mtgradi_smooth_simplex_work_size(k);
}

static mtgrad_status cagrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                    double *w)
{
    (void)losses;
    int64_t k = a->k;
    double c = a->pv[P_C], kk = (double)k, sum = 0;
    double *lin = a->work, *Mw = lin + k, *sw = Mw + k;
    for (int64_t i = 0; i < k * k; i++) sum += M[i];
    const double *ref = g0_weights(a);
    if (ref) mtgradi_matvec(M, k, ref, lin); /* <g_x, g0> = xᵀ(Mr) */
    double g0sq = ref ? fmax(mtgradi_dot(ref, lin, k), 0.0) : sum / (kk * kk); /* ||g0||² */
    double phi = c * sqrt(g0sq + 1e-8) + 1e-8;
    for (int64_t i = 0; i < k; i++) {
        if (!ref) {
            double r = 0;
            for (int64_t j = 0; j < k; j++) r += M[i * k + j];
            lin[i] = r / kk;
        }
        w[i] = 1.0 / kk; /* the references' starting point */
    }
    mtgradi_normlin obj = {M, lin, phi, 0.0, 1e-8, k, Mw};
    mtgradi_simplex_fn fn = {mtgradi_normlin_eval, &obj};
    mtgrad_status s = mtgradi_smooth_simplex(&fn, k, w, 0, 0, NULL, sw);
    if (ref) {
        int rescale = (int)a->pv[P_RESCALE];
        double lam = phi / (sqrt(fmax(mtgradi_quad(M, k, w), 0.0)) + 1e-8);
        double div = rescale == 0 ? 1.0 : rescale == 1 ? 1.0 + c * c : 1.0 + c;
        for (int64_t i = 0; i < k; i++) w[i] = (ref[i] + lam * w[i]) / div;
    } else {
        mtgradi_cagrad_recover(M, k, phi, c, (int)a->pv[P_RESCALE], w);
    }
    if (s != MTGRAD_OK)
        return mtgradi_fail(a, s, "cagrad: the dual solver stopped before KKT accuracy (the best "
                            "iterate is used)");
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_cagrad = {
    .name = "cagrad",
    .summary = "CAGrad: best worst-task improvement in a ball around the mean gradient",
    .citation = "Liu et al., Conflict-Averse Gradient Descent for Multi-task Learning, NeurIPS 2021 "
                "(median-research-group/LibMTL LibMTL/weighting/CAGrad.py; Cranial-XIX/CAGrad)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS,
    .params = params,
    .n_params = N_PARAMS,
    .check = cagrad_check,
    .work_size = cagrad_work_size,
    .weights = cagrad_weights,
};
