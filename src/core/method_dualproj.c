/*
 * method_dualproj.c — DualProj: project the preference-weighted mean gradient onto the dual cone
 * of the task gradients.
 *
 *   Q = M/tr(M) + reg_eps·I          (Q = reg_eps·I when tr(M) < norm_eps)
 *   w = argmin_v vᵀQv  s.t.  v ≥ u,   u = pref·1,   d = Gᵀw
 *
 * Gᵀw is the projection of Gᵀu onto {x : Gx ≥ 0} (Proposition 1 of the UPGrad paper; exact for
 * reg_eps = 0). Solved exactly as NNLS in x = v − u ≥ 0 (Lawson–Hanson, nnls.c).
 * pref = 1/k (`mean`, TorchJD default) or 1 (`ones`).
 *
 * Non-conflict: KKT gives <g_j, d> ≥ −reg_eps·tr(M)·w_j, and nothing when tr(M) < norm_eps
 * (w = u then), so MTGRAD_PROMISE_NONCONFLICT is NOT claimed (see method_upgrad.c).
 * Permutation-equivariant (unique solution of a strictly convex QP).
 *
 * Outputs: w (k), d = Gᵀw. Cost: O(k²d) Gram, one QP (O(k³) per active-set step), O(kd) combine.
 * See Quinton & Rey, "Jacobian Descent For Multi-Objective Optimization" (arXiv 2406.16232,
 * 2024); reference code TorchJD/torchjd src/torchjd/aggregation/_dualproj.py.
 */
#include "internal.h"
#include "nnls.h"

enum { P_PREF = MTGRADI_CONE_PREF, P_NORM_EPS = MTGRADI_CONE_NORM_EPS, P_REG_EPS = MTGRADI_CONE_REG_EPS };

static size_t dualproj_work_size(int64_t k)
{
    return (size_t)(k * k + k) + mtgradi_cone_work_size(k);
}

static mtgrad_status dualproj_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                      double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *Q = a->work, *u = Q + k * k, *cw = u + k;
    double pref = a->pv[P_PREF] == 0 ? 1.0 / (double)k : 1.0;
    mtgradi_cone_gram(M, k, a->pv[P_NORM_EPS], a->pv[P_REG_EPS], Q);
    for (int64_t i = 0; i < k; i++) u[i] = pref;
    int rc = mtgradi_cone_project(Q, u, k, w, cw);
    return mtgradi_cone_status(a, rc);
}

const mtgrad_method mtgradi_dualproj = {
    .name = "dualproj",
    .summary = "DualProj: the mean gradient projected onto the dual cone of the task gradients",
    .citation = "Quinton & Rey, Jacobian Descent For Multi-Objective Optimization, arXiv 2406.16232, "
                "2024; TorchJD/torchjd src/torchjd/aggregation/_dualproj.py",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_PROMISE_PERMUTATION,
    .params = mtgradi_cone_params,
    .n_params = MTGRADI_CONE_N_PARAMS,
    .work_size = dualproj_work_size,
    .weights = dualproj_weights,
};
