/*
 * method_marigold.c — MARIGOLD: task weights balanced by a single-loop bi-level scheme that
 * needs one backward pass per step and the loss values along the update direction.
 *
 * THIS IS OUR DESIGN, built on the abstract and outline of Chen et al., "Feed m Birds with One
 * Scone: Accelerating Multi-task Gradient Balancing via Bi-level Optimization" (arXiv 2603.07389,
 * 2026): bi-level, zeroth order, compared with FAMO. Their algorithm text was not available; see
 * methods.md §9 and docs/marigold.md for what comes from the paper and what is ours.
 *
 *   upper level: θ descends Σ_i λ_i L_i   → the direction d = Gᵀλ is ONE backward pass;
 *   lower level: λ ∈ Δ minimises g(λ) = ½‖Gᵀλ‖² + (ρ/2)‖λ − 1/k‖²  (MGDA's min-norm problem),
 *                ∇g = G d + ρ(λ − 1/k), and (G d)_i = <∇L_i, d> is the derivative of task loss i
 *                along d — a loss-value quantity the training step estimates (estimator param).
 *
 *   call:      w = λ (the current one). With M given (the exact oracle, weights_from_gram):
 *              h = M λ and λ is updated at once; otherwise the call waits for the feedback.
 *   feedback:  h (k) → ĥ = clip(h) + ρ(λ − 1/k); β_t = β/(1 + t)^p (t: updates so far);
 *              mirror:    λ_i ∝ λ_i exp(−β_t ĥ_i / (max_j |ĥ_j| + 1e-12))   (ĥ = 0: no change)
 *              projected: λ ← Π_Δ(λ − β_t ĥ)
 * The normalised mirror step moves log λ by at most β_t per step whatever the scale of the
 * losses. A fixed point of either rule is an optimum of the lower level (ĥ equal on the support,
 * larger off it), i.e. MGDA's weights for ρ = 0.
 *
 * Outputs: w = λ (sums to 1), direction Gᵀλ. State: λ (k), pending flag, update count. Cost O(k)
 * per call and feedback (O(k²) with the oracle); no Gram matrix.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

enum { P_EST, P_MU, P_LR, P_UPDATE, P_RHO, P_CLIP, P_REUSE, P_DECAY, N_PARAMS };
enum { UPD_MIRROR = 0, UPD_PROJECTED = 1 };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"estimator", MTGRAD_PARAM_CHOICE, 0, 0, 0, "forward|central|step|exact", 0,
     "how the training step estimates h = G d: forward / central difference, step (loss change "
     "across the optimizer step), exact (per-task gradients; test oracle). Read by the step"},
    {"mu", MTGRAD_PARAM_REAL, 1e-3, 0, 1e6, NULL, MTGRAD_PARAM_LO_OPEN,
     "probe distance of the forward/central estimators, in parameter units (read by the step)"},
    {"lr_lambda", MTGRAD_PARAM_REAL, 0.1, 0, 1e6, NULL, MTGRAD_PARAM_LO_OPEN,
     "beta: step size of the lambda update (mirror: max change of log lambda per step)"},
    {"update", MTGRAD_PARAM_CHOICE, 0, 0, 0, "mirror|projected", 0,
     "lambda update: normalised mirror (multiplicative) step or projected gradient step"},
    {"rho", MTGRAD_PARAM_REAL, 0, 0, 1e6, NULL, 0,
     "pull of lambda towards uniform: + rho (lambda - 1/k) in the lower-level gradient"},
    {"clip", MTGRAD_PARAM_REAL, 0, 0, 1e300, NULL, 0,
     "clip each h_i to [-clip, clip] before the update (0 = off)"},
    {"reuse_next", MTGRAD_PARAM_BOOL, 0, 0, 1, NULL, 0,
     "estimator=step only: take the loss change from the next batch's losses (no extra forward); "
     "ignored by the other estimators"},
    {"lr_decay", MTGRAD_PARAM_REAL, 0, 0, 10, NULL, 0,
     "p: beta_t = beta / (1 + t)^p with t the lambda updates so far (0 = constant)"},
};

/* state: lambda (k), pending (1 while a call waits for its feedback), updates so far */
#define LAMBDA(a) ((a)->state)
#define PENDING(a) ((a)->state[(a)->k])
#define UPDATES(a) ((a)->state[(a)->k + 1])

static size_t marigold_state_size(int64_t k) { return (size_t)k + 2; }
/* work: h with the oracle (k), the projection's scratch (k) */
static size_t marigold_work_size(int64_t k) { return 2 * (size_t)k; }

static void marigold_reset(mtgrad_aggregator *a)
{
    for (int64_t i = 0; i < a->k; i++) LAMBDA(a)[i] = 1.0 / (double)a->k;
}

/* One lower-level step on λ from h (not modified); g: k doubles of scratch (may alias h). */
static mtgrad_status lambda_step(mtgrad_aggregator *a, const double *h, double *g)
{
    int64_t k = a->k;
    double *lam = LAMBDA(a), clip = a->pv[P_CLIP], rho = a->pv[P_RHO];
    double beta = a->pv[P_LR] / pow(1.0 + UPDATES(a), a->pv[P_DECAY]);
    double gmax = 0;
    for (int64_t i = 0; i < k; i++) {
        double hi = clip > 0 ? fmin(fmax(h[i], -clip), clip) : h[i];
        g[i] = hi + rho * (lam[i] - 1.0 / (double)k);
        gmax = fmax(gmax, fabs(g[i]));
    }
    if (!isfinite(gmax))
        return mtgradi_fail(a, MTGRAD_E_NONFINITE, "marigold: the lower-level gradient overflows");
    if (a->pv[P_UPDATE] == UPD_MIRROR) {
        if (gmax > 0) {
            double sum = 0;
            for (int64_t i = 0; i < k; i++) sum += lam[i] *= exp(-beta * g[i] / (gmax + 1e-12));
            /* sum > 0: every factor is >= exp(-beta) and λ had mass 1 */
            for (int64_t i = 0; i < k; i++) lam[i] /= sum;
        }
    } else {
        for (int64_t i = 0; i < k; i++) g[i] = lam[i] - beta * g[i];
        mtgradi_simplex_project(g, k, lam, a->work + k);
    }
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(lam[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "marigold: lambda[%lld] is not finite after "
                                "the update (step too large for this scale?)", (long long)i);
    if (UPDATES(a) < 9007199254740992.0) UPDATES(a) += 1;
    return MTGRAD_OK;
}

static mtgrad_status marigold_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                      double *w)
{
    (void)losses;
    int64_t k = a->k;
    memcpy(w, LAMBDA(a), (size_t)k * sizeof *w);
    if (!M) {
        PENDING(a) = 1;
        return MTGRAD_OK;
    }
    /* the exact oracle: h = G d = M λ with d = Gᵀλ; no feedback follows */
    double *h = a->work;
    mtgradi_matvec(M, k, LAMBDA(a), h);
    PENDING(a) = 0;
    return lambda_step(a, h, h);
}

static mtgrad_status marigold_feedback(mtgrad_aggregator *a, const double *h)
{
    if (PENDING(a) == 0)
        return mtgradi_fail(a, MTGRAD_E_STATE,
                            "marigold: feedback without a call waiting for it (one feedback per "
                            "call, none after reset or after a call given the Gram matrix)");
    PENDING(a) = 0;
    return lambda_step(a, h, a->work);
}

const mtgrad_method mtgradi_marigold = {
    .name = "marigold",
    .summary = "MARIGOLD (our design on the paper's abstract): one backward of sum lambda_i L_i; "
               "lambda follows MGDA's min-norm problem from loss values along d",
    .citation = "Chen et al., Feed m Birds with One Scone: Accelerating Multi-task Gradient "
                "Balancing via Bi-level Optimization, arXiv 2603.07389 (2026); design: "
                "methods.md 9, docs/marigold.md",
    .flags = MTGRAD_STATEFUL | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED | MTGRAD_NEEDS_FEEDBACK |
             MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .state_size = marigold_state_size,
    .work_size = marigold_work_size,
    .reset = marigold_reset,
    .weights = marigold_weights,
    .feedback = marigold_feedback,
};
