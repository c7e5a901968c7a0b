/*
 * method_upgrad.c — UPGrad: project every task gradient onto the dual cone of the gradients and
 * combine with the preference weights.
 *
 *   Q = M/tr(M) + reg_eps·I          (Q = reg_eps·I when tr(M) < norm_eps)
 *   for each task i:  v_i = argmin_v vᵀQv  s.t.  v ≥ u_i,   u_i = pref_i e_i
 *   w = Σ_i v_i,  d = Gᵀw
 *
 * By Proposition 1 of the paper, Gᵀv_i is the projection of pref_i·g_i onto the dual cone
 * {x : Gx ≥ 0} (for Q = M; reg_eps slightly perturbs it). Each QP is solved exactly: with
 * v = u + x, x ≥ 0 it is the NNLS problem min ½xᵀQx + (Qu)ᵀx (Lawson–Hanson, nnls.c), whose
 * KKT point matches quadprog to ~1e-12. pref = 1/k (TorchJD default, `mean`) or 1 (`ones`).
 *
 * Non-conflict: the KKT conditions give Qv ≥ 0, i.e. <g_j, d> ≥ −reg_eps·tr(M)·w_j — not ≥ 0 up
 * to rounding, and no guarantee at all when tr(M) < norm_eps (then w = pref, the plain mean). So
 * MTGRAD_PROMISE_NONCONFLICT is NOT claimed; set reg_eps = 0 for an exact projection when M is
 * non-singular. Permutation-equivariant (the QPs are strictly convex, so the answer is unique).
 *
 * Outputs: w (k), d = Gᵀw. Cost: O(k²d) Gram, k QPs of O(k³) per active-set step, O(kd) combine.
 * See Section 2 and Proposition 1 of Quinton & Rey, "Jacobian Descent For Multi-Objective
 * Optimization" (arXiv 2406.16232, 2024); reference code TorchJD/torchjd
 * src/torchjd/aggregation/_upgrad.py and _utils/dual_cone.py (quadprog); LibMTL
 * LibMTL/weighting/UPGrad.py is a copy.
 */
#include "internal.h"
#include "nnls.h"

enum { P_PREF = MTGRADI_CONE_PREF, P_NORM_EPS = MTGRADI_CONE_NORM_EPS, P_REG_EPS = MTGRADI_CONE_REG_EPS };

static size_t upgrad_work_size(int64_t k)
{
    return (size_t)(k * k + 2 * k) + mtgradi_cone_work_size(k);
}

static mtgrad_status upgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                    double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *Q = a->work, *u = Q + k * k, *v = u + k, *cw = v + k;
    double pref = a->pv[P_PREF] == 0 ? 1.0 / (double)k : 1.0;
    mtgradi_cone_gram(M, k, a->pv[P_NORM_EPS], a->pv[P_REG_EPS], Q);
    int worst = 0;
    for (int64_t i = 0; i < k; i++) w[i] = 0;
    for (int64_t i = 0; i < k; i++) {
        for (int64_t j = 0; j < k; j++) u[j] = j == i ? pref : 0;
        int rc = mtgradi_cone_project(Q, u, k, v, cw);
        if (rc < worst) worst = rc;
        for (int64_t j = 0; j < k; j++) w[j] += v[j];
    }
    return mtgradi_cone_status(a, worst);
}

const mtgrad_method mtgradi_upgrad = {
    .name = "upgrad",
    .summary = "UPGrad: sum of the task gradients projected onto the dual cone (TorchJD)",
    .citation = "Quinton & Rey, Jacobian Descent For Multi-Objective Optimization, arXiv 2406.16232, "
                "2024; TorchJD/torchjd src/torchjd/aggregation/_upgrad.py",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_PROMISE_PERMUTATION,
    .params = mtgradi_cone_params,
    .n_params = MTGRADI_CONE_N_PARAMS,
    .work_size = upgrad_work_size,
    .weights = upgrad_weights,
};
