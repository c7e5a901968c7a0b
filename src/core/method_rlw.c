/*
 * method_rlw.c — Random Loss Weighting.
 *
 *   z ~ N(0, I_k),   w = softmax(z),   d = G^T w
 *
 * A fresh draw every call; z = the k injected normals if pending, else k draws from the
 * aggregator's RNG. Needs neither M nor the losses (one backward of sum_i w_i L_i).
 * Outputs: w (k), sum w = 1. Cost O(k) plus O(kd) for the combination.
 *
 * See Section 3 of Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test for
 * Multi-Task Learning", TMLR 2022; reference code LibMTL LibMTL/weighting/RLW.py
 * (softmax of a standard normal draw).
 */
#include "internal.h"

#include <math.h>

static mtgrad_status rlw_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                 double *w)
{
    (void)M;
    (void)losses;
    int64_t k = a->k;
    int bad;
    const double *z = mtgradi_take_draws(a, (size_t)k, &bad);
    if (bad)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "rlw: injected draws: need k = %lld normals, got %zu",
                            (long long)k, a->n_draws);
    for (int64_t i = 0; i < k; i++) w[i] = z ? z[i] : mtgradi_rng_normal(&a->rng);
    double mx = w[0], s = 0;
    for (int64_t i = 1; i < k; i++) mx = fmax(mx, w[i]);
    for (int64_t i = 0; i < k; i++) s += w[i] = exp(w[i] - mx); /* stable: largest term 1 */
    for (int64_t i = 0; i < k; i++) w[i] /= s;
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_rlw = {
    .name = "rlw",
    .summary = "RLW: random weights softmax(z), z ~ N(0, I), drawn every call",
    .citation = "Lin et al., Reasonable Effectiveness of Random Weighting, TMLR 2022 "
                "(LibMTL LibMTL/weighting/RLW.py)",
    .flags = MTGRAD_NEEDS_RANDOM | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED,
    .weights = rlw_weights,
};
