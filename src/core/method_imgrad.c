/*
 * method_imgrad.c — IMGrad: CAGrad whose dual is re-weighted by the MGDA/mean alignment.
 *
 *   a   = argmin_{a in Δ} aᵀMa                 (exact MGDA min-norm weights; g_m = Gᵀa)
 *   rho = cos(g0, g_m) = (aᵀM1/k) / max(||g0||·||g_m||, 1e-8),  clamped to [0, 1]
 *   phi = c·sqrt(mean(M) + 1e-8) + 1e-8        (as CAGrad; c is the code's `alpha`)
 *   form = code (default, what zzpustc/IMGrad nyuv2/utils.py computes):
 *       x = argmin_{x in Δ} (1.5 - rho)·xᵀM1/k + rho·phi·sqrt(xᵀMx + 1e-8)
 *   form = paper (the paper's unsimplified dual with mu = cos θ = rho):
 *       x = argmin_{x in Δ} (1 - rho)·xᵀM1/k + rho·xᵀMx + (1 - rho)·phi·sqrt(xᵀMx + 1e-8)
 *   lam = phi/(sqrt(xᵀMx) + 1e-8),  d = (g0 + lam·Gᵀx)/r,  r = 1, 1 + c², 1 + c (rescale 0, 1, 2)
 *
 * Outputs: weights w = (1/k + lam·x)/r, direction d = Gᵀw. Both duals are convex for
 * rho in [0, 1] (rho >= 0 holds exactly at the MGDA optimum, since <g_i, g_m> >= ||g_m||²; the
 * clamp only removes rounding) and are solved to KKT accuracy with the SQP solver of qp.h (the
 * reference runs scipy SLSQP with its defaults, which stops early).
 * Differences from the official code, on purpose: (1) g_m is the exact min-norm point, while
 * the code's MinNormSolver copy (MAX_ITER 20, never enforced; 0.999/0.001 clamps) stops early;
 * (2) no ×k: the official code multiplies d by k ("to match the sum loss"); like cagrad we
 * follow LibMTL's convention (d at the mean's scale); multiply the weights by k to get the
 * official update. phi uses the CAGrad constants in both forms (the paper's sqrt(φ) = c·||g0||).
 * Cost: O(k³) per active-set / SQP iteration, a handful of iterations.
 *
 * See §3 of Zhou, Liu, Zhao & Gong, "Injecting Imbalance Sensitivity for Multi-Task Learning",
 * IJCAI 2025 (arXiv 2503.08006); reference code zzpustc/IMGrad nyuv2/utils.py (imgrad).
 */
#include "internal.h"
#include "qp.h"

#include <math.h>

enum { P_C, P_RESCALE, P_FORM, N_PARAMS };
enum { FORM_CODE = 0, FORM_PAPER = 1 };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"c", MTGRAD_PARAM_REAL, 0.8, 0, 1e6, NULL, 0,
     "the code's alpha: ball radius relative to ||g0|| (0.8 in both official run.sh files)"},
    {"rescale", MTGRAD_PARAM_INT, 1, 0, 2, NULL, 0,
     "divide the direction by 1 (0), 1 + c^2 (1, the reference's choice) or 1 + c (2)"},
    {"form", MTGRAD_PARAM_CHOICE, FORM_CODE, 0, 0, "code|paper", 0,
     "dual objective: the official code's, or the paper's unsimplified one (mu = cos theta)"},
};

/* MGDA weights (k), lin (k), Mw (k), then the SQP's scratch (also used by the MGDA QP) */
static size_t imgrad_work_size(int64_t k)
{
    return (size_t)(3 * k) + mtgradi_smooth_simplex_work_size(k);
}

/* cos(g0, g_m) from the Gram matrix, torch.cosine_similarity's eps, clamped to [0, 1]. */
static double mgda_alignment(const double *M, int64_t k, const double *alpha, const double *lin)
{
    double g0g0 = 0, g0gm = mtgradi_dot(alpha, lin, k); /* lin = M1/k here */
    for (int64_t i = 0; i < k; i++) g0g0 += lin[i];
    g0g0 /= (double)k;
    double gmgm = mtgradi_quad(M, k, alpha);
    double rho = g0gm / fmax(sqrt(fmax(g0g0, 0.0) * fmax(gmgm, 0.0)), 1e-8);
    return fmin(fmax(rho, 0.0), 1.0);
}

static mtgrad_status imgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                    double *w)
{
    (void)losses;
    int64_t k = a->k;
    double c = a->pv[P_C], kk = (double)k, sum = 0;
    double *alpha = a->work, *lin = alpha + k, *Mw = lin + k, *sw = Mw + k;
    for (int64_t i = 0; i < k; i++) {
        double r = 0;
        for (int64_t j = 0; j < k; j++) r += M[i * k + j];
        lin[i] = r / kk;
        sum += r;
    }
    mtgrad_status sm = mtgradi_qp_simplex(M, NULL, k, alpha, NULL, sw);
    double rho = mgda_alignment(M, k, alpha, lin);
    double phi = c * sqrt(sum / (kk * kk) + 1e-8) + 1e-8;
    mtgradi_normlin obj = {M, lin, rho * phi, 0.0, 1e-8, k, Mw};
    double lin_coef = 1.5 - rho;
    if ((int)a->pv[P_FORM] == FORM_PAPER) {
        lin_coef = 1 - rho;
        obj.beta = (1 - rho) * phi;
        obj.gamma = 2 * rho; /* rho·xᵀMx = ½·(2 rho)·xᵀMx */
    }
    for (int64_t i = 0; i < k; i++) {
        lin[i] *= lin_coef;
        w[i] = 1.0 / kk;
    }
    mtgradi_simplex_fn fn = {mtgradi_normlin_eval, &obj};
    mtgrad_status s = mtgradi_smooth_simplex(&fn, k, w, 0, 0, NULL, sw);
    mtgradi_cagrad_recover(M, k, phi, c, (int)a->pv[P_RESCALE], w);
    if (sm != MTGRAD_OK)
        return mtgradi_fail(a, sm, "imgrad: the MGDA min-norm QP did not converge (its best "
                            "iterate is used)");
    if (s != MTGRAD_OK)
        return mtgradi_fail(a, s, "imgrad: the dual solver stopped before KKT accuracy (the best "
                            "iterate is used)");
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_imgrad = {
    .name = "imgrad",
    .summary = "IMGrad: CAGrad dual re-weighted by the cosine between the mean and MGDA directions",
    .citation = "Zhou, Liu, Zhao & Gong, Injecting Imbalance Sensitivity for Multi-Task Learning, "
                "IJCAI 2025 (zzpustc/IMGrad nyuv2/utils.py)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS,
    .params = params,
    .n_params = N_PARAMS,
    .work_size = imgrad_work_size,
    .weights = imgrad_weights,
};
