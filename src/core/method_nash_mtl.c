/*
 * method_nash_mtl.c — Nash-MTL: the Nash bargaining solution among the tasks.
 *
 *   d* = argmax_{||d|| <= ε} Σ_i log <g_i, d>   ⇒   d = Gᵀα,  α > 0,  α_i (Mα)_i = 1 for all i
 *   then d is clipped to max_norm: d ← d·min(1, max_norm/(||d|| + 1e-6))  (clip_grad_norm_)
 *
 * α is solved exactly (nnls.c: damped Newton on the strictly convex ½αᵀMα − Σ log α_i), started
 * from the better of the previous α and diag(M)^(-1/2), each scaled optimally along its ray.
 * At the root ||Gᵀα||² = αᵀMα = k, so with max_norm = 1 the clip is always active.
 * The reference instead runs ≤ optim_niter (20) convex-concave steps with cvxpy/ECOS and returns
 * an approximate iterate; `optim_niter` is accepted for configuration compatibility only (the
 * exact solver does not use it: it iterates to the root, ≤ 200 Newton steps).
 *
 * Outputs: w = α·clip coefficient (the aggregator applies the clip via a->clip_norm), d = Gᵀw.
 * State: the last α (k doubles; fresh = ones, as the reference). α is recomputed when the call
 * counter (a->step) is a multiple of update_weights_every and reused in between.
 * No positive root exists when 0 is in the convex hull of the g_i (a zero row, opposite rows,
 * k > d cases, a Pareto-stationary point): then the previous α is reused, as the reference does
 * when its solver fails, and MTGRAD_E_NOPROGRESS is returned (outputs finite, state unchanged).
 * Cost: O(k²d) Gram, O(k³) per Newton step (typically 5–30 steps), O(kd) combine; when M has
 * exact rank r <= k/4 (k >= 16, k > d) each step is O(kr²) by Woodbury on M = LLᵀ (nnls.c).
 * See Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022; reference code
 * AvivNavon/nash-mtl methods/weight_methods.py (NashMTL); LibMTL LibMTL/weighting/Nash_MTL.py.
 */
#include "internal.h"
#include "nnls.h"

enum { P_MAX_NORM, P_OPTIM_NITER, P_EVERY, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"max_norm", MTGRAD_PARAM_REAL, 1.0, 0, 1e300, NULL, 0,
     "clip the direction to this norm as clip_grad_norm_ (0 = no clipping)"},
    {"optim_niter", MTGRAD_PARAM_INT, 20, 1, 1e6, NULL, 0,
     "the reference's CCP iteration count; accepted for compatibility, unused (exact solver)"},
    {"update_weights_every", MTGRAD_PARAM_INT, 1, 1, 1e9, NULL, 0,
     "recompute alpha every N calls; reuse the previous alpha in between"},
};

static size_t nash_state_size(int64_t k) { return (size_t)k; }
static size_t nash_work_size(int64_t k) { return mtgradi_bargain_work_size(k); }

static void nash_reset(mtgrad_aggregator *a)
{
    for (int64_t i = 0; i < a->k; i++) a->state[i] = 1.0;
}

static mtgrad_status nash_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                  double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *prev = a->state;
    a->clip_norm = a->pv[P_MAX_NORM];
    int64_t every = (int64_t)a->pv[P_EVERY];
    if (a->step % every != 0) {
        for (int64_t i = 0; i < k; i++) w[i] = prev[i];
        return MTGRAD_OK;
    }
    mtgradi_bargain_result r = mtgradi_bargain_solve(M, k, 1.0, prev, w, a->work, NULL);
    if (r == MTGRADI_BARGAIN_OK) {
        for (int64_t i = 0; i < k; i++) prev[i] = w[i];
        return MTGRAD_OK;
    }
    for (int64_t i = 0; i < k; i++) w[i] = prev[i];
    if (r == MTGRADI_BARGAIN_NO_ROOT)
        return mtgradi_fail(a, MTGRAD_E_NOPROGRESS,
                            "nash_mtl: no positive solution of alpha*(M alpha) = 1 (a zero or "
                            "Pareto-stationary set of gradients); the previous alpha was reused");
    return mtgradi_fail(a, MTGRAD_E_NOPROGRESS,
                        "nash_mtl: Newton solver stalled (ill-conditioned M); the previous alpha was reused");
}

const mtgrad_method mtgradi_nash_mtl = {
    .name = "nash_mtl",
    .summary = "Nash-MTL: Nash bargaining weights alpha*(M alpha) = 1, clipped to max_norm",
    .citation = "Navon et al., Multi-Task Learning as a Bargaining Game, ICML 2022; "
                "AvivNavon/nash-mtl methods/weight_methods.py",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED | MTGRAD_STATEFUL | MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .state_size = nash_state_size,
    .work_size = nash_work_size,
    .reset = nash_reset,
    .weights = nash_weights,
};
