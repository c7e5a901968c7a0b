/*
 * method_gradnorm.c — GradNorm: task weights that equalise the tasks' weighted gradient norms,
 * scaled by how far each task's loss still is from its start (LibMTL form).
 *
 *   weights   w = k·softmax(s)            (s starts at 1.0 for every task → w = 1)
 *   warm-up   the first warmup_steps calls return w = 1 and record L(0) = the mean of their
 *             losses (LibMTL: the epoch-0 average, i.e. warmup_steps = steps per epoch); s fixed
 *   then      n_i = sqrt(M_ii) = ‖g_i‖,  G_i = w_i n_i,  Ḡ = mean G
 *             r_i = (L_i/L_i(0)) / mean_j (L_j/L_j(0)),  T_i = Ḡ · r_i^α  (held constant)
 *             L_grad = Σ_i |G_i − T_i|
 *             ∂L_grad/∂s_j = σ_j n_j w_j − p_j Σ_i σ_i n_i w_i,  σ_i = sign(G_i − T_i) (0 at 0),
 *             p = softmax(s)   (the chain rule through w = k softmax(s))
 *             one torch Adam step on s (lr; betas 0.9/0.999, eps 1e-8); the call returns the
 *             pre-update w.
 * LibMTL trains s with the model's optimizer (and its weight decay); here s has its own Adam
 * (`lr`) so the core owns it. Losses must be positive (ratios of losses).
 *
 * Outputs: w (k, sums to k), direction Σ w_i g_i. Needs diag M only. State: s, Adam moments, L(0),
 * Adam step count, calls recorded (4k + 2). Cost O(k).
 *
 * See Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss
 * Balancing in Deep Multitask Networks", ICML 2018; reference code (no official one)
 * median-research-group/LibMTL LibMTL/weighting/GradNorm.py.
 */
#include "internal.h"

#include <math.h>

enum { P_ALPHA, P_LR, P_WARMUP, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"alpha", MTGRAD_PARAM_REAL, 1.5, 0, 100, NULL, 0,
     "strength of the pull towards the loss-ratio targets (paper and LibMTL 1.5)"},
    {"lr", MTGRAD_PARAM_REAL, 0.025, 0, 1e3, NULL, MTGRAD_PARAM_LO_OPEN,
     "Adam learning rate of the weight logits s (LibMTL uses the model's optimizer)"},
    {"warmup_steps", MTGRAD_PARAM_INT, 1, 1, 1e15, NULL, 0,
     "calls with w = 1 whose mean losses are L(0) (LibMTL: one epoch of steps)"},
};

#define S(a) ((a)->state)
#define AM(a) ((a)->state + (a)->k)
#define AV(a) ((a)->state + 2 * (a)->k)
#define L0(a) ((a)->state + 3 * (a)->k)
#define ADAM_T(a) ((a)->state[4 * (a)->k])
#define CALLS(a) ((a)->state[4 * (a)->k + 1])

static size_t gradnorm_state_size(int64_t k) { return 4 * (size_t)k + 2; }
/* work: p = softmax(s) (k), G (k), sign (k) */
static size_t gradnorm_work_size(int64_t k) { return 3 * (size_t)k; }

static void gradnorm_reset(mtgrad_aggregator *a)
{
    for (int64_t i = 0; i < a->k; i++) S(a)[i] = 1.0;
}

static void softmax(const double *x, int64_t k, double *z)
{
    double mx = x[0], s = 0;
    for (int64_t i = 1; i < k; i++) mx = fmax(mx, x[i]);
    for (int64_t i = 0; i < k; i++) s += z[i] = exp(x[i] - mx);
    for (int64_t i = 0; i < k; i++) z[i] /= s;
}

/* Warm-up: w = 1, accumulate L(0); the last warm-up call turns the sum into the mean. */
static void warmup_call(mtgrad_aggregator *a, const double *losses, double *w)
{
    double n = a->pv[P_WARMUP];
    for (int64_t i = 0; i < a->k; i++) {
        w[i] = 1.0;
        L0(a)[i] += losses[i];
    }
    CALLS(a) += 1;
    if (CALLS(a) >= n)
        for (int64_t i = 0; i < a->k; i++) L0(a)[i] /= n;
}

static void adam_step(mtgrad_aggregator *a, const double *grad)
{
    mtgradi_adam_step(S(a), AM(a), AV(a), grad, a->k, &ADAM_T(a), a->pv[P_LR], 0.9, 0.999, 1e-8);
}

static mtgrad_status gradnorm_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                      double *w)
{
    int64_t k = a->k;
    double kk = (double)k, *p = a->work, *G = a->work + k, *grad = a->work + 2 * k;
    for (int64_t i = 0; i < k; i++)
        if (!(losses[i] > 0))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "gradnorm: losses[%lld] = %g; GradNorm needs "
                                "positive losses (it uses loss ratios)", (long long)i, losses[i]);
    if (CALLS(a) < a->pv[P_WARMUP]) {
        warmup_call(a, losses, w);
        return MTGRAD_OK;
    }
    softmax(S(a), k, p);
    double gbar = 0, rbar = 0;
    for (int64_t i = 0; i < k; i++) {
        w[i] = kk * p[i];
        G[i] = w[i] * sqrt(fmax(M[i * k + i], 0.0));
        gbar += G[i];
        rbar += losses[i] / L0(a)[i];
    }
    gbar /= kk;
    rbar /= kk;
    double dot = 0;
    for (int64_t i = 0; i < k; i++) {
        double target = gbar * pow(losses[i] / L0(a)[i] / rbar, a->pv[P_ALPHA]);
        double diff = G[i] - target;
        double sg = diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0; /* d|x|/dx, 0 at 0 as in torch */
        grad[i] = sg * G[i];                                 /* σ_i n_i w_i */
        dot += grad[i];
    }
    for (int64_t i = 0; i < k; i++) grad[i] -= p[i] * dot;
    adam_step(a, grad);
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(S(a)[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "gradnorm: logit %lld is not finite after "
                                "the update", (long long)i);
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_gradnorm = {
    .name = "gradnorm",
    .summary = "GradNorm: weights k softmax(s), s trained to equalise w_i ||g_i|| towards loss-ratio "
               "targets (alpha 1.5)",
    .citation = "Chen et al., GradNorm: Gradient Normalization for Adaptive Loss Balancing, ICML "
                "2018 (median-research-group/LibMTL LibMTL/weighting/GradNorm.py)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_NEEDS_LOSSES | MTGRAD_STATEFUL | MTGRAD_HAS_WEIGHTS |
             MTGRAD_HEADS_WEIGHTED | MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .state_size = gradnorm_state_size,
    .work_size = gradnorm_work_size,
    .reset = gradnorm_reset,
    .weights = gradnorm_weights,
};
