/*
 * method_uw.c — Uncertainty weighting: each task's loss divided by a learned variance.
 *
 *   training loss  Σ_i [ L_i / (2 e^{s_i}) + s_i / 2 ],   s_i = log σ_i² trained jointly
 *   call(L):  w_i = 1 / (2 e^{s_i})            (the pre-update s: the weights of this step)
 *             ∂/∂s_i = −L_i / (2 e^{s_i}) + 1/2
 *             one torch Adam step on s (lr, betas 0.9/0.999, eps 1e-8, no weight decay)
 * s starts at `init` (−0.5: lorenmt/mtan and LibMTL; 0: nash-mtl, whose 0.5(e^{-s}L + s) is the
 * same loss). The references train s with an optimizer of their own (nash-mtl: lr 0.025 =
 * --method-params-lr) or with the model's; here s has its own Adam so the core can own it.
 *
 * Outputs: w (k), direction Σ w_i g_i (one backward of Σ w_i L_i in a training loop).
 * State: s, Adam moments, step count (3k + 1). Cost O(k); no Gram matrix.
 *
 * See Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
 * Geometry and Semantics", CVPR 2018; reference code lorenmt/mtan im2im_pred/utils.py,
 * LibMTL LibMTL/weighting/UW.py, AvivNavon/nash-mtl methods/weight_methods.py (Uncertainty).
 */
#include "internal.h"

#include <math.h>

enum { P_LR, P_INIT, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"lr", MTGRAD_PARAM_REAL, 0.025, 0, 1e3, NULL, MTGRAD_PARAM_LO_OPEN,
     "Adam learning rate of the log-variances s (nash-mtl's method lr 0.025)"},
    {"init", MTGRAD_PARAM_REAL, -0.5, -100, 100, NULL, 0,
     "initial s (-0.5: mtan/LibMTL; 0: nash-mtl)"},
};

#define S(a) ((a)->state)
#define AM(a) ((a)->state + (a)->k)
#define AV(a) ((a)->state + 2 * (a)->k)
#define ADAM_T(a) ((a)->state[3 * (a)->k])

static size_t uw_state_size(int64_t k) { return 3 * (size_t)k + 1; }
static size_t uw_work_size(int64_t k) { return (size_t)k; }

static void uw_reset(mtgrad_aggregator *a)
{
    for (int64_t i = 0; i < a->k; i++) S(a)[i] = a->pv[P_INIT];
}

static mtgrad_status uw_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                double *w)
{
    (void)M;
    int64_t k = a->k;
    double *g = a->work;
    for (int64_t i = 0; i < k; i++) {
        w[i] = 1.0 / (2.0 * exp(S(a)[i]));
        g[i] = -losses[i] * w[i] + 0.5; /* d/ds_i of L_i / (2 e^s_i) + s_i / 2 */
    }
    mtgradi_adam_step(S(a), AM(a), AV(a), g, k, &ADAM_T(a), a->pv[P_LR], 0.9, 0.999, 1e-8);
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(S(a)[i]) || !isfinite(AV(a)[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "uw: log-variance %lld overflowed (loss %g)",
                                (long long)i, losses[i]);
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_uw = {
    .name = "uw",
    .summary = "Uncertainty weighting: w_i = 1/(2 exp(s_i)), log-variances s trained by Adam on the losses",
    .citation = "Kendall, Gal & Cipolla, Multi-Task Learning Using Uncertainty to Weigh Losses, "
                "CVPR 2018 (lorenmt/mtan im2im_pred/utils.py; LibMTL LibMTL/weighting/UW.py)",
    .flags = MTGRAD_NEEDS_LOSSES | MTGRAD_STATEFUL | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED |
             MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .state_size = uw_state_size,
    .work_size = uw_work_size,
    .reset = uw_reset,
    .weights = uw_weights,
};
