/*
 * method_si_ls.c — scale-invariant linear scalarization.
 *
 *   minimise sum_i p_i log L_i   =>   w_i = p_i / L_i,   d = G^T w
 *
 * Every task's loss is measured in log scale, so multiplying a loss by a constant does not
 * change its share of the update. p = `weights` (default all ones). Needs L_i > 0; no Gram
 * matrix, no state. Cost O(k) plus O(kd).
 *
 * See Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022 (the scale-invariant
 * baseline); reference code AvivNavon/nash-mtl methods/weight_methods.py
 * (ScaleInvariantLinearScalarization, "scaleinvls").
 */
#include "internal.h"

enum { P_WEIGHTS, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"weights", MTGRAD_PARAM_REALS, 0, 0, 1e300, "", 0,
     "preference weights p (k values; empty = all ones)"},
};

static mtgrad_status si_ls_check(mtgrad_aggregator *a)
{
    size_t n = a->plen[P_WEIGHTS];
    if (n != 0 && n != (size_t)a->k)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "si_ls: weights has %zu values; give k = %lld (or none for all ones)",
                            n, (long long)a->k);
    return MTGRAD_OK;
}

static mtgrad_status si_ls_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                   double *w)
{
    (void)M;
    for (int64_t i = 0; i < a->k; i++) {
        if (!(losses[i] > 0))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "si_ls: losses[%lld] = %g; log-scale weighting needs positive losses",
                                (long long)i, losses[i]);
        w[i] = (a->plen[P_WEIGHTS] ? a->plist[P_WEIGHTS][i] : 1.0) / losses[i];
    }
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_si_ls = {
    .name = "si_ls",
    .summary = "scale-invariant linear scalarization: w_i = p_i / L_i (sum of log-losses)",
    .citation = "Navon et al., Multi-Task Learning as a Bargaining Game, ICML 2022 "
                "(AvivNavon/nash-mtl methods/weight_methods.py, scaleinvls)",
    .flags = MTGRAD_NEEDS_LOSSES | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED,
    .params = params,
    .n_params = N_PARAMS,
    .check = si_ls_check,
    .weights = si_ls_weights,
};
