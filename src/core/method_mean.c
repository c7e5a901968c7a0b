/*
 * method_mean.c — the mean of the task gradients.
 *
 *   w_i = 1/k,   d = G^T w = (1/k) sum_i g_i
 *
 * The plain baseline: TorchJD `Mean` (src/torchjd/aggregation/_mean.py). Losses-only in a
 * training loop (one backward of mean_i L_i). O(kd) for the combination, O(k) for the weights.
 */
#include "internal.h"

static mtgrad_status mean_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                  double *w)
{
    (void)M;
    (void)losses;
    for (int64_t i = 0; i < a->k; i++) w[i] = 1.0 / (double)a->k;
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_mean = {
    .name = "mean",
    .summary = "mean of the task gradients (w_i = 1/k)",
    .citation = "TorchJD Mean (TorchJD/torchjd src/torchjd/aggregation/_mean.py)",
    .flags = MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED | MTGRAD_PROMISE_PERMUTATION,
    .weights = mean_weights,
};
