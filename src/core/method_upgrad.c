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
 * When M has numerical rank r <= k/4 (k >= 16, k > d: the k = 1000, d = 8 edge took minutes), M is
 * factored once (pivoted Cholesky, linalg.c) and each QP is solved through its r-dimensional dual
 * (nnls.c, O(kr²) per Newton step), with the NNLS above as the fallback if the dual does not
 * converge; the two agree to ~cond(Q)·eps (tests/unit/test_lowrank.c).
 * See Section 2 and Proposition 1 of Quinton & Rey, "Jacobian Descent For Multi-Objective
 * Optimization" (arXiv 2406.16232, 2024); reference code TorchJD/torchjd
 * src/torchjd/aggregation/_upgrad.py and _utils/dual_cone.py (quadprog); LibMTL
 * LibMTL/weighting/UPGrad.py is a copy.
 */
#include "internal.h"
#include "nnls.h"

#include <math.h>

enum { P_PREF = MTGRADI_CONE_PREF, P_NORM_EPS = MTGRADI_CONE_NORM_EPS, P_REG_EPS = MTGRADI_CONE_REG_EPS };

/* Q, u, v, the NNLS workspace, then L (k x k) and 2k for the low-rank factor of M */
static size_t upgrad_work_size(int64_t k)
{
    return (size_t)(2 * k * k + 4 * k) + mtgradi_cone_work_size(k);
}

/* A with AAᵀ ≈ M/tr(M) (k x r, row-major, in L's storage) when M is of low numerical rank
 * (r <= k/4, k >= 16) and the cone Gram is regularised: the k projections then go through the
 * r-dimensional dual (O(k²r) in all instead of O(k³) per projection). Returns r, or 0 for the
 * plain path. Small k keeps the plain path (and its bits). */
static int64_t upgrad_lowrank(const mtgrad_aggregator *a, const double *M, double *L, double *scratch)
{
    int64_t k = a->k;
    double tr = 0;
    for (int64_t i = 0; i < k; i++) tr += M[i * k + i];
    if (k < 16 || !(a->pv[P_REG_EPS] > 0) || !(tr >= a->pv[P_NORM_EPS] && tr > 0)) return 0;
    int64_t r = mtgradi_lowrank_factor(M, k, L, scratch);
    if (r < 1 || r > k / 4) return 0;
    double sc = sqrt(1 / tr);
    for (int64_t i = 0; i < k; i++) /* compact to stride r (forward: i*r + c <= i*k + c) */
        for (int64_t c = 0; c < r; c++) L[i * r + c] = L[i * k + c] * sc;
    return r;
}

static mtgrad_status upgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                    double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *Q = a->work, *u = Q + k * k, *v = u + k, *cw = v + k;
    double *L = cw + mtgradi_cone_work_size(k), *fs = L + k * k;
    double pref = a->pv[P_PREF] == 0 ? 1.0 / (double)k : 1.0;
    mtgradi_cone_gram(M, k, a->pv[P_NORM_EPS], a->pv[P_REG_EPS], Q);
    int64_t r = upgrad_lowrank(a, M, L, fs);
    int worst = 0;
    for (int64_t i = 0; i < k; i++) w[i] = 0;
    for (int64_t i = 0; i < k; i++) {
        for (int64_t j = 0; j < k; j++) u[j] = j == i ? pref : 0;
        int rc = r > 0 ? mtgradi_cone_project_lowrank(L, k, r, a->pv[P_REG_EPS], u, v, cw, cw + k)
                       : 1;
        if (rc != 0) rc = mtgradi_cone_project(Q, u, k, v, cw); /* the exact fallback */
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
