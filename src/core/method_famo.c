/*
 * method_famo.c — FAMO: fast adaptive multitask optimization, from the losses alone.
 *
 *   state: logits xi (k, init 0) with Adam moments, the losses L of the last aggregation
 *   aggregate(L):  z = softmax(xi);  D_i = L_i - L*_i + 1e-8;  c = sum_i z_i / D_i
 *                  w_i = z_i / (c D_i)        (gradient of sum_i (z_i/c) log D_i; sum w = 1)
 *   update(L'):    delta_i = log(L_i - L*_i + 1e-8) - log(L'_i - L*_i + 1e-8)
 *                  grad = J_softmax(xi)^T delta = z .* (delta - <z, delta>)
 *                  one torch Adam step on xi with L2 weight decay gamma (grad += gamma xi)
 * L' are the losses re-evaluated on the same batch after the optimizer step. L* = min_losses.
 * max_norm > 0 clips the direction to that norm (famo.py's clip_grad_norm_).
 *
 * Outputs: w (k) with d = G^T w; no Gram matrix (one backward of sum_i w_i L_i suffices).
 * State 4k + 2 doubles. Cost O(k) per call plus O(kd) for the combination.
 *
 * See Algorithm 1 of Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization",
 * NeurIPS 2023; reference code Cranial-XIX/FAMO famo.py (FAMO.get_weighted_loss, FAMO.update).
 */
#include "internal.h"

#include <math.h>

enum { P_GAMMA, P_WLR, P_MINL, P_MAXNORM, P_BETAS, P_EPS, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"gamma", MTGRAD_PARAM_REAL, 0.01, 0, 1e3, NULL, 0,
     "weight decay of the logits (famo.py 0.01; the NYUv2/QM9/CelebA runs and LibMTL use 0.001)"},
    {"w_lr", MTGRAD_PARAM_REAL, 0.025, 0, 1e3, NULL, MTGRAD_PARAM_LO_OPEN,
     "Adam learning rate of the logits"},
    {"min_losses", MTGRAD_PARAM_REALS, 0, -1e300, 1e300, "0", 0,
     "L*: lower bounds of the losses (one value for all tasks, or k values)"},
    {"max_norm", MTGRAD_PARAM_REAL, 0, 0, 1e300, NULL, 0,
     "clip the direction's norm to this (0 = off; famo.py uses 1.0)"},
    {"adam_betas", MTGRAD_PARAM_REALS, 0, 0, 1, "0.9:0.999", MTGRAD_PARAM_LO_OPEN | MTGRAD_PARAM_HI_OPEN,
     "Adam (beta1, beta2) of the logits"},
    {"adam_eps", MTGRAD_PARAM_REAL, 1e-8, 0, 1, NULL, MTGRAD_PARAM_LO_OPEN, "Adam epsilon"},
};

/* state layout */
#define XI(a) ((a)->state)
#define AM(a) ((a)->state + (a)->k)
#define AV(a) ((a)->state + 2 * (a)->k)
#define LAST(a) ((a)->state + 3 * (a)->k)
#define ADAM_T(a) ((a)->state[4 * (a)->k])   /* Adam steps taken */
#define HAS_LAST(a) ((a)->state[4 * (a)->k + 1]) /* 1 once an aggregation stored LAST */

static size_t famo_state_size(int64_t k) { return 4 * (size_t)k + 2; }
static size_t famo_work_size(int64_t k) { return 2 * (size_t)k; }

static mtgrad_status famo_check(mtgrad_aggregator *a)
{
    size_t n = a->plen[P_MINL];
    if (n != 1 && n != (size_t)a->k)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "famo: min_losses has %zu values; give 1 or k = %lld",
                            n, (long long)a->k);
    if (a->plen[P_BETAS] != 2)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "famo: adam_betas has %zu values; give 2 (beta1:beta2)",
                            a->plen[P_BETAS]);
    return MTGRAD_OK;
}

static double min_loss(const mtgrad_aggregator *a, int64_t i)
{
    return a->plen[P_MINL] == 1 ? a->plist[P_MINL][0] : a->plist[P_MINL][i];
}

/* Stable softmax of x into z. */
static void softmax(const double *x, int64_t k, double *z)
{
    double mx = x[0], s = 0;
    for (int64_t i = 1; i < k; i++) mx = fmax(mx, x[i]);
    for (int64_t i = 0; i < k; i++) s += z[i] = exp(x[i] - mx);
    for (int64_t i = 0; i < k; i++) z[i] /= s;
}

static mtgrad_status check_above_min(mtgrad_aggregator *a, const double *L, const char *what)
{
    for (int64_t i = 0; i < a->k; i++)
        if (!(L[i] > min_loss(a, i)))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "famo: %s[%lld] = %g must exceed min_losses = %g",
                                what, (long long)i, L[i], min_loss(a, i));
    return MTGRAD_OK;
}

static mtgrad_status famo_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                  double *w)
{
    (void)M;
    int64_t k = a->k;
    mtgrad_status s = check_above_min(a, losses, "losses");
    if (s != MTGRAD_OK) return s;
    double *z = a->work;
    softmax(XI(a), k, z);
    double c = 0;
    for (int64_t i = 0; i < k; i++) c += z[i] / (losses[i] - min_loss(a, i) + 1e-8);
    for (int64_t i = 0; i < k; i++) w[i] = z[i] / (c * (losses[i] - min_loss(a, i) + 1e-8));
    for (int64_t i = 0; i < k; i++) LAST(a)[i] = losses[i];
    HAS_LAST(a) = 1;
    a->clip_norm = a->pv[P_MAXNORM];
    return MTGRAD_OK;
}

static mtgrad_status famo_update(mtgrad_aggregator *a, const double *after)
{
    int64_t k = a->k;
    if (HAS_LAST(a) == 0)
        return mtgradi_fail(a, MTGRAD_E_STATE,
                            "famo: update needs the losses of a preceding aggregation (none since creation/reset/last update)");
    mtgrad_status s = check_above_min(a, after, "losses_after");
    if (s != MTGRAD_OK) return s;
    double *z = a->work, *delta = a->work + k;
    softmax(XI(a), k, z);
    double zd = 0;
    for (int64_t i = 0; i < k; i++) {
        double m = min_loss(a, i);
        delta[i] = log(LAST(a)[i] - m + 1e-8) - log(after[i] - m + 1e-8);
        zd += z[i] * delta[i];
    }
    double *g = delta; /* in place: delta[i] is read only for g[i] */
    for (int64_t i = 0; i < k; i++) g[i] = z[i] * (delta[i] - zd) + a->pv[P_GAMMA] * XI(a)[i];
    mtgradi_adam_step(XI(a), AM(a), AV(a), g, k, &ADAM_T(a), a->pv[P_WLR],
                      a->plist[P_BETAS][0], a->plist[P_BETAS][1], a->pv[P_EPS]);
    HAS_LAST(a) = 0; /* one update per aggregation */
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(XI(a)[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "famo: logit %lld overflowed in the update", (long long)i);
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_famo = {
    .name = "famo",
    .summary = "FAMO: loss-only weights that balance the tasks' log-loss decrease (Adam on logits)",
    .citation = "Liu et al., FAMO: Fast Adaptive Multitask Optimization, NeurIPS 2023 "
                "(Cranial-XIX/FAMO famo.py)",
    .flags = MTGRAD_NEEDS_LOSSES | MTGRAD_NEEDS_LOSSES_AFTER | MTGRAD_STATEFUL | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED,
    .params = params,
    .n_params = N_PARAMS,
    .check = famo_check,
    .state_size = famo_state_size,
    .work_size = famo_work_size,
    .weights = famo_weights,
    .update = famo_update,
};
