/*
 * method_sum.c — the sum of the task gradients.
 *
 *   w_i = 1,   d = G^T 1 = sum_i g_i
 *
 * TorchJD `Sum`; LibMTL `EW` (sum of the losses despite its docstring's 1/T). O(kd).
 */
#include "internal.h"

static mtgrad_status sum_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                 double *w)
{
    (void)M;
    (void)losses;
    for (int64_t i = 0; i < a->k; i++) w[i] = 1.0;
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_sum = {
    .name = "sum",
    .summary = "sum of the task gradients (w_i = 1; LibMTL EW)",
    .citation = "TorchJD Sum; LibMTL LibMTL/weighting/EW.py",
    .flags = MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED | MTGRAD_PROMISE_PERMUTATION,
    .weights = sum_weights,
};
