/*
 * method_ls.c — linear scalarization with fixed preference weights.
 *
 *   w_i = p_i (default p = 1: the sum of the losses),   d = G^T p
 *
 * LibMTL `EW` (weights 1) and AvivNavon/nash-mtl `LinearScalarization` (default ones). One
 * backward of sum_i p_i L_i; no Gram matrix, no state. Cost O(k) plus O(kd).
 *
 * See Section 2 of the spec (linear scalarization baseline); reference code LibMTL
 * LibMTL/weighting/EW.py, AvivNavon/nash-mtl methods/weight_methods.py (LinearScalarization).
 */
#include "internal.h"

enum { P_WEIGHTS, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"weights", MTGRAD_PARAM_REALS, 0, 0, 1e300, "", 0,
     "preference weights p (k values; empty = all ones, LibMTL EW / nash-mtl ls)"},
};

static mtgrad_status ls_check(mtgrad_aggregator *a)
{
    size_t n = a->plen[P_WEIGHTS];
    if (n != 0 && n != (size_t)a->k)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "ls: weights has %zu values; give k = %lld (or none for all ones)",
                            n, (long long)a->k);
    return MTGRAD_OK;
}

static mtgrad_status ls_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                double *w)
{
    (void)M;
    (void)losses;
    for (int64_t i = 0; i < a->k; i++) w[i] = a->plen[P_WEIGHTS] ? a->plist[P_WEIGHTS][i] : 1.0;
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_ls = {
    .name = "ls",
    .summary = "linear scalarization: fixed preference weights (default 1 = sum of the losses)",
    .citation = "LibMTL LibMTL/weighting/EW.py; AvivNavon/nash-mtl methods/weight_methods.py "
                "(LinearScalarization)",
    .flags = MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED,
    .params = params,
    .n_params = N_PARAMS,
    .check = ls_check,
    .weights = ls_weights,
};
