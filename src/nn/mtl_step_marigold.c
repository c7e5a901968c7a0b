/*
 * mtl_step_marigold.c — the step of a method that takes feedback (MARIGOLD, methods.md 9; this
 * project's design from the paper's abstract and outline, not its algorithm text).
 *
 * One backward of sum_i lambda_i L_i gives d = G^T lambda on the trunk (and lambda_i grad L_i on
 * the heads); the method's lower level needs h = G d, and h_i = <grad L_i, d> is the derivative
 * of L_i along d, which loss values give without any per-task backward:
 *   forward  one more forward at theta_s - mu d/||d||:  h_i = ||d|| (L_i - L_i^-) / mu;
 *   central  forwards at theta_s +- mu d/||d||:         h_i = ||d|| (L_i^+ - L_i^-) / (2 mu);
 *   step     the losses L' on the same batch after the optimizer moved the trunk by D:
 *            h_i = ||d|| (L_i - L'_i) / ||D||  (with reuse_next: the next step's losses on its
 *            own batch, kept across steps in the step's state; no extra forward);
 *   exact    k backward_task, M = G G^T; the method computes h = M lambda itself (the oracle).
 * The probes move only the shared parameters (theta_s, saved before the step) and run in train
 * mode with the dropout masks of the step's forward: the dropout generator is set back to its
 * state before that forward, and afterwards to the state that forward left, so the stream
 * advances exactly as in a step without probes. ||d|| = 0 gives h = 0 (no probe).
 * d is the direction before the step's max_norm clipping (the feedback is about the method's
 * own direction; clipping only rescales it).
 */
#define _POSIX_C_SOURCE 200809L
#include "nn/mtl_step_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- setup */

static int param_text(const mtgrad_aggregator *a, const char *name, char *buf, size_t len)
{
    int n = mtgrad_aggregator_get_param(a, name, buf, len);
    return n >= 0 && (size_t)n < len;
}

static mtgrad_status read_params(mtgrad_mtl_step *s, char *err, size_t errlen)
{
    char buf[64];
    s->estimator = MTGRADI_EST_FORWARD;
    s->mu = 1e-3;
    if (param_text(s->a, "estimator", buf, sizeof buf)) {
        static const char *const names[] = {"forward", "central", "step", "exact"};
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(buf, names[i]) == 0) found = i;
        if (found < 0)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: estimator \"%s\""
                                  " is not one the step knows (forward, central, step, exact)", buf);
        s->estimator = found;
    }
    if (param_text(s->a, "mu", buf, sizeof buf)) s->mu = strtod(buf, NULL);
    if (param_text(s->a, "reuse_next", buf, sizeof buf))
        s->reuse_next = strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0 ||
                        strcmp(buf, "yes") == 0 || strcmp(buf, "on") == 0;
    if (!(s->mu > 0) && (s->estimator == MTGRADI_EST_FORWARD || s->estimator == MTGRADI_EST_CENTRAL))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "mtl step: mu = %g must be > 0", s->mu);
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_marigold_setup(mtgrad_mtl_step *s, char *err, size_t errlen)
{
    mtgrad_status st = read_params(s, err, errlen);
    if (st != MTGRAD_OK) return st;
    size_t k = (size_t)s->k, d = (size_t)s->d;
    s->h = mtgradi_calloc(k, sizeof *s->h);
    s->prev_L = mtgradi_calloc(k, sizeof *s->prev_L);
    if (!s->h || !s->prev_L) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    if (s->estimator == MTGRADI_EST_EXACT) {
        if (d < 1)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "mtl step: estimator=exact needs "
                                  "the task gradients on the shared parameters, and the model has none");
        s->G = mtgradi_calloc(k * d, sizeof *s->G);
        s->M = mtgradi_step_alloc_gram(s);
        if (!s->G || !s->M) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    } else if (d > 0) {
        s->theta = mtgradi_malloc(d * sizeof *s->theta);
        if (!s->theta) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    }
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- the step */

void mtgradi_step_marigold_before(mtgrad_mtl_step *s)
{
    if (!s->theta) return;
    memcpy(s->theta, mtgrad_model_params(s->m), (size_t)s->d * sizeof *s->theta);
    mtgrad_model_get_rng(s->m, s->rng_before);
}

static mtgrad_status feedback(mtgrad_mtl_step *s)
{
    mtgrad_status st = mtgrad_aggregator_feedback(s->a, s->h, s->k);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "feedback: %s", mtgrad_aggregator_error(s->a));
    return MTGRAD_OK;
}

/* reuse_next: the previous step's h from its kept losses and this step's (other batch). */
static mtgrad_status reuse_feedback(mtgrad_mtl_step *s)
{
    for (int64_t i = 0; i < s->k; i++)
        s->h[i] = s->prev_move > 0 ? s->prev_dnorm * (s->prev_L[i] - s->losses[i]) / s->prev_move
                                   : 0.0;
    s->pending = 0;
    return feedback(s);
}

/* A forward at theta_s + sign mu d/||d|| with the step's dropout masks; theta_s and the dropout
 * stream are restored whatever happens. */
static mtgrad_status probe(mtgrad_mtl_step *s, const float *x, const float *targets, int64_t n,
                           double sign, double *L)
{
    float *p = mtgrad_model_params(s->m);
    double c = sign * s->mu / s->dnorm;
    for (int64_t j = 0; j < s->d; j++) p[j] = (float)((double)s->theta[j] + c * (double)s->grad[j]);
    mtgrad_model_set_rng(s->m, s->rng_before);
    mtgrad_status st = mtgradi_step_forward(s, x, targets, n, L, "probe forward");
    memcpy(p, s->theta, (size_t)s->d * sizeof *p);
    mtgrad_model_set_rng(s->m, s->rng_after);
    return st;
}

static mtgrad_status probe_feedback(mtgrad_mtl_step *s, const float *x, const float *targets,
                                    int64_t n, double *t)
{
    double t0 = mtgradi_now();
    double *Lm = s->losses_after, *Lp = s->probe;
    mtgrad_status st = MTGRAD_OK;
    if (s->dnorm > 0) {
        st = probe(s, x, targets, n, -1.0, Lm);
        if (st == MTGRAD_OK && s->estimator == MTGRADI_EST_CENTRAL)
            st = probe(s, x, targets, n, 1.0, Lp);
    }
    t[MTGRAD_TIME_FORWARD] += mtgradi_now() - t0;
    if (st != MTGRAD_OK) return st;
    for (int64_t i = 0; i < s->k; i++)
        s->h[i] = !(s->dnorm > 0) ? 0.0
                : s->estimator == MTGRADI_EST_CENTRAL ? s->dnorm * (Lp[i] - Lm[i]) / (2 * s->mu)
                                                      : s->dnorm * (s->losses[i] - Lm[i]) / s->mu;
    return feedback(s);
}

/* estimator=exact: G from k backwards, lambda from M (the method updates itself with M lambda). */
static mtgrad_status exact_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = mtgradi_now();
    mtgrad_status st = mtgradi_step_task_rows(s, s->G, s->grad, "");
    if (st != MTGRAD_OK) return st;
    double t1 = mtgradi_now();
    st = mtgradi_step_gram_weights(s, s->G, s->d, s->d, "G", t);
    if (st != MTGRAD_OK) return st;
    double t3 = mtgradi_now();
    if (mtgrad_combine_f32(s->G, s->k, s->d, s->d, s->w, s->grad) != MTGRAD_OK)
        return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "the direction G^T w is not finite");
    for (int64_t i = 0; i < s->k; i++) {
        double hi = 0;
        for (int64_t j = 0; j < s->k; j++) hi += s->M[i * s->k + j] * s->w[j];
        s->h[i] = hi;
    }
    s->dnorm = mtgradi_step_norm(s->grad, s->d);
    mtgradi_step_clip(s);
    mtgradi_step_weight_heads(s, s->w);
    t[MTGRAD_TIME_BACKWARD] += t1 - t0;
    t[MTGRAD_TIME_COMBINE] += mtgradi_now() - t3;
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_marigold_grad(mtgrad_mtl_step *s, const float *x,
                                         const float *targets, int64_t n, double *t)
{
    mtgrad_model_get_rng(s->m, s->rng_after);
    if (s->pending) {
        mtgrad_status st = reuse_feedback(s);
        if (st != MTGRAD_OK) return st;
    }
    if (s->estimator == MTGRADI_EST_EXACT) return exact_grad(s, t);
    double t0 = mtgradi_now();
    mtgrad_status st = mtgrad_weights_from_gram(s->a, NULL, s->k,
                                                mtgradi_step_method_losses(s, s->losses), s->w);
    st = mtgradi_step_solver(s, s->a, st, "weights");
    if (st != MTGRAD_OK) return st;
    double t1 = mtgradi_now();
    st = mtgrad_model_backward_weighted(s->m, s->w, s->grad);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "backward of sum_i lambda_i L_i: %s", mtgrad_status_str(st));
    double t2 = mtgradi_now();
    s->dnorm = mtgradi_step_norm(s->grad, s->d);
    t[MTGRAD_TIME_SOLVE] += t1 - t0;
    t[MTGRAD_TIME_BACKWARD] += t2 - t1;
    if (s->estimator == MTGRADI_EST_FORWARD || s->estimator == MTGRADI_EST_CENTRAL) {
        st = probe_feedback(s, x, targets, n, t);
        if (st != MTGRAD_OK) return st;
    }
    double t3 = mtgradi_now();
    mtgradi_step_clip(s);
    t[MTGRAD_TIME_COMBINE] += mtgradi_now() - t3;
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_marigold_after(mtgrad_mtl_step *s, const float *x,
                                          const float *targets, int64_t n, double *t)
{
    if (s->estimator != MTGRADI_EST_STEP) return MTGRAD_OK;
    const float *p = mtgrad_model_params(s->m);
    double ss = 0;
    for (int64_t j = 0; j < s->d; j++) {
        double dj = (double)p[j] - (double)s->theta[j];
        ss += dj * dj;
    }
    double move = sqrt(ss);
    if (s->reuse_next) {
        memcpy(s->prev_L, s->losses, (size_t)s->k * sizeof *s->prev_L);
        s->prev_dnorm = s->dnorm;
        s->prev_move = move;
        s->pending = 1;
        return MTGRAD_OK;
    }
    double t0 = mtgradi_now();
    mtgrad_status st = mtgradi_step_forward(s, x, targets, n, s->losses_after,
                                            "forward after the step");
    t[MTGRAD_TIME_FORWARD] += mtgradi_now() - t0;
    if (st != MTGRAD_OK) return st;
    for (int64_t i = 0; i < s->k; i++)
        s->h[i] = move > 0 ? s->dnorm * (s->losses[i] - s->losses_after[i]) / move : 0.0;
    return feedback(s);
}
