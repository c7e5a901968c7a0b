/*
 * method_fairgrad.c — FairGrad: α-fair utility maximisation among the tasks.
 *
 *   find w > 0 with  M w = w^(−1/α)   (element-wise power),   d = Gᵀw
 *   (optionally clipped: d ← d·min(1, max_norm/(||d|| + 1e-6)))
 *
 * The root is the unique minimiser of the strictly convex ½wᵀMw − Σ φ(w_i), φ'(t) = t^(−1/α),
 * solved exactly by damped Newton with positivity-keeping backtracking (nnls.c), started from
 * diag(M)^(-1/2) scaled optimally. α = 1 is Nash-MTL's equation (w ⊙ Mw = 1); larger α moves
 * towards max-min fairness. The reference solves the same equation with scipy least_squares
 * (TRF, start 1/k, tolerances 1e-8), then multiplies d by k and clips to 1.0 (official code), or
 * applies Σ w_i L_i without clipping (LibMTL). Here w is the root itself (no ×k); max_norm
 * defaults to 0 (LibMTL: no clipping; the official code clips to 1.0).
 * No positive root exists when 0 is in the convex hull of the g_i (zero row, opposite rows, a
 * Pareto-stationary point): then w = 1/k (the reference's starting point) and
 * MTGRAD_E_NOPROGRESS is returned. Permutation-equivariant (unique root). No state.
 *
 * Outputs: w (k), d = Gᵀw (clipped if max_norm > 0). Cost: O(k²d) Gram, O(k³) per Newton step
 * (O(kr²) by Woodbury when M has exact rank r <= k/4, k >= 16: nnls.c), O(kd) combine.
 * See Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024; reference code
 * OptMN-Lab/fairgrad methods/weight_methods.py (FairGrad); LibMTL LibMTL/weighting/FairGrad.py.
 */
#include "internal.h"
#include "nnls.h"

enum { P_ALPHA, P_MAX_NORM, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"alpha", MTGRAD_PARAM_REAL, 1.0, 0, 1e6, NULL, MTGRAD_PARAM_LO_OPEN,
     "fairness exponent (argparse default 1.0 = Nash-MTL's equation; the official run.sh uses 2.0)"},
    {"max_norm", MTGRAD_PARAM_REAL, 0.0, 0, 1e300, NULL, 0,
     "clip the direction to this norm (0 = off, LibMTL; the official code clips to 1.0)"},
};

static size_t fairgrad_work_size(int64_t k) { return mtgradi_bargain_work_size(k); }

static mtgrad_status fairgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                      double *w)
{
    (void)losses;
    int64_t k = a->k;
    a->clip_norm = a->pv[P_MAX_NORM];
    mtgradi_bargain_result r = mtgradi_bargain_solve(M, k, 1.0 / a->pv[P_ALPHA], NULL, w, a->work, NULL);
    if (r == MTGRADI_BARGAIN_OK) return MTGRAD_OK;
    for (int64_t i = 0; i < k; i++) w[i] = 1.0 / (double)k;
    if (r == MTGRADI_BARGAIN_NO_ROOT)
        return mtgradi_fail(a, MTGRAD_E_NOPROGRESS,
                            "fairgrad: no positive solution of M w = w^(-1/alpha) (a zero or "
                            "Pareto-stationary set of gradients); w = 1/k was used");
    return mtgradi_fail(a, MTGRAD_E_NOPROGRESS,
                        "fairgrad: Newton solver stalled (ill-conditioned M); w = 1/k was used");
}

const mtgrad_method mtgradi_fairgrad = {
    .name = "fairgrad",
    .summary = "FairGrad: alpha-fair weights, M w = w^(-1/alpha)",
    .citation = "Ban & Ji, Fair Resource Allocation in Multi-Task Learning, ICML 2024; "
                "OptMN-Lab/fairgrad methods/weight_methods.py",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .work_size = fairgrad_work_size,
    .weights = fairgrad_weights,
};
