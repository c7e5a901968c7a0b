/*
 * method_graddrop.c — GradDrop: per coordinate, keep only the gradients of one sign, chosen at
 * random with the probability of that sign's "purity".
 *
 *   per coordinate j:  P_j = 1/2 (1 + sum_i G_ij / sum_i |G_ij|)        (f = identity)
 *                      U_j ~ Uniform[0, 1)
 *   mask_ij = (P_j > U_j and G_ij > 0) or (P_j < U_j and G_ij < 0)
 *   d_j = sum_i G_ij (leak + (1 - leak) mask_ij)
 *
 * No epsilon in P (TorchJD): a zero column gives 0/0 = NaN, so no row passes and d_j = 0.
 * The mask is per coordinate, so the update is not G^T w: no task weights. Element-wise in G
 * (not Gram-only). Cost O(kd) time, O(k * block) scratch; d uniforms per call.
 *
 * Randomness: U = the d injected draws if pending (each in [0, 1]), else d uniforms from the
 * aggregator's RNG, one per coordinate in order.
 *
 * See Section 3 of Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient
 * Sign Dropout", NeurIPS 2020; reference code TorchJD/torchjd src/torchjd/aggregation/_graddrop.py
 * (leak 0 default); LibMTL LibMTL/weighting/GradDrop.py applies the same rule to the gradients
 * of a shared representation.
 */
#include "internal.h"

#include <math.h>

enum { P_F, P_LEAK, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"f", MTGRAD_PARAM_CHOICE, 0, 0, 0, "identity", 0,
     "function applied to the column sums before the purity P (TorchJD default: identity)"},
    {"leak", MTGRAD_PARAM_REAL, 0, 0, 1, NULL, 0,
     "fraction of every gradient kept whatever the mask (0 = pure GradDrop, 1 = plain sum)"},
};

#define BLOCK 256 /* columns per block: k*BLOCK + BLOCK doubles of scratch */

static size_t graddrop_work_size(int64_t k) { return (size_t)(k + 1) * BLOCK; }

/* d_j for one column x (k values) with the uniform u. */
static double drop_column(const double *x, int64_t k, int64_t ld, double u, double leak)
{
    double s = 0, sa = 0;
    for (int64_t i = 0; i < k; i++) {
        s += x[i * ld];
        sa += fabs(x[i * ld]);
    }
    double p = 0.5 * (1 + s / sa); /* NaN for a zero column: both comparisons below are false */
    double out = 0;
    for (int64_t i = 0; i < k; i++) {
        double g = x[i * ld];
        /* bitwise, not short-circuit: the signs are random, so branches would mispredict */
        int keep = ((p > u) & (g > 0)) | ((p < u) & (g < 0));
        out += g * (leak + (1 - leak) * (keep ? 1.0 : 0.0));
    }
    return out;
}

static mtgrad_status graddrop_direction(mtgrad_aggregator *a, const mtgradi_mat *G,
                                        const double *losses, const mtgradi_out *out, double *w)
{
    (void)losses;
    (void)w;
    int64_t k = a->k, d = G->d;
    int bad;
    const double *U = mtgradi_take_draws(a, (size_t)d, &bad);
    if (bad)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "graddrop: injected draws: need d = %lld uniforms, got %zu",
                            (long long)d, a->n_draws);
    if (U)
        for (int64_t j = 0; j < d; j++)
            if (!(U[j] >= 0 && U[j] <= 1))
                return mtgradi_fail(a, MTGRAD_E_INVAL, "graddrop: injected draw %lld = %g is outside [0, 1]",
                                    (long long)j, U[j]);
    double leak = a->pv[P_LEAK];
    double *blk = a->work, *res = a->work + k * BLOCK;
    for (int64_t j0 = 0; j0 < d; j0 += BLOCK) {
        int64_t nb = d - j0 < BLOCK ? d - j0 : BLOCK;
        mtgradi_mat_block(G, j0, nb, blk);
        for (int64_t i = 0; i < k * nb; i++)
            if (!isfinite(blk[i]))
                return mtgradi_fail(a, MTGRAD_E_NONFINITE, "graddrop: G[%lld][%lld] is not finite",
                                    (long long)(i / nb), (long long)(j0 + i % nb));
        for (int64_t j = 0; j < nb; j++) {
            double u = U ? U[j0 + j] : mtgradi_rng_uniform(&a->rng);
            res[j] = drop_column(blk + j, k, nb, u, leak);
        }
        mtgradi_out_block(out, j0, nb, res);
    }
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_graddrop = {
    .name = "graddrop",
    .summary = "GradDrop: per coordinate keep the gradients of one sign, drawn by sign purity",
    .citation = "Chen et al., Just Pick a Sign (GradDrop), NeurIPS 2020 (TorchJD "
                "src/torchjd/aggregation/_graddrop.py; LibMTL LibMTL/weighting/GradDrop.py)",
    .flags = MTGRAD_NEEDS_JACOBIAN | MTGRAD_NEEDS_RANDOM | MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .work_size = graddrop_work_size,
    .direction = graddrop_direction,
};
