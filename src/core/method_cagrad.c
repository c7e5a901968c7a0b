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

enum { P_C, P_RESCALE, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"c", MTGRAD_PARAM_REAL, 0.5, 0, 1e6, NULL, 0,
     "radius of the ball around g0, relative to ||g0|| (LibMTL calpha 0.5; papers 0.4)"},
    {"rescale", MTGRAD_PARAM_INT, 1, 0, 2, NULL, 0,
     "divide the direction by 1 (0), 1 + c^2 (1, the references' choice) or 1 + c (2)"},
};

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
    double phi = c * sqrt(sum / (kk * kk) + 1e-8) + 1e-8;
    for (int64_t i = 0; i < k; i++) {
        double r = 0;
        for (int64_t j = 0; j < k; j++) r += M[i * k + j];
        lin[i] = r / kk;
        w[i] = 1.0 / kk; /* the references' starting point */
    }
    mtgradi_normlin obj = {M, lin, phi, 0.0, 1e-8, k, Mw};
    mtgradi_simplex_fn fn = {mtgradi_normlin_eval, &obj};
    mtgrad_status s = mtgradi_smooth_simplex(&fn, k, w, 0, 0, NULL, sw);
    mtgradi_cagrad_recover(M, k, phi, c, (int)a->pv[P_RESCALE], w);
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
    .work_size = cagrad_work_size,
    .weights = cagrad_weights,
};
