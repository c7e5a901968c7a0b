/*
 * mtl_step.c — one multi-task training step (architecture.md §1): forward, the backward passes a
 * method needs, the balanced direction written into the shared parameters' gradient, the heads'
 * gradients (weighted or not, methods.md §0.3), the optimizer step, and FAMO's re-evaluation.
 *
 * The k x d matrix G is the only large buffer: each per-task backward writes its trunk gradient
 * straight into row i, and the aggregator writes the direction straight into the trunk slice of
 * the arena-sized gradient (the trunk is the arena's first d floats), so nothing is copied.
 * Loss-only methods never build G: their weights come from the losses alone and one backward of
 * sum_i w_i L_i gives both the trunk direction and the weighted heads.
 */
#define _POSIX_C_SOURCE 200809L
#include "mtgrad_train.h"
#include "internal.h" /* mtgradi_malloc & co. */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mtgrad_mtl_step {
    mtgrad_model *m; /* borrowed */
    mtgrad_aggregator *a;
    mtgrad_optimizer *o;
    unsigned flags;
    int64_t k, d, P;
    int loss_only;     /* neither NEEDS_GRAM nor NEEDS_JACOBIAN: no G */
    int per_epoch;     /* DWA: weights fixed within an epoch */
    double max_norm;   /* the method's clipping, taken over from the aggregator (0 = off) */
    float *G;          /* k x d, NULL when loss_only */
    float *grad;       /* P */
    double *w;         /* k: the last step's weights */
    double *epoch_w;   /* k: DWA's weights of the current epoch */
    double *losses, *losses_after, *probe; /* k each */
    unsigned char *state; /* DWA: the aggregator's state saved around a probe */
    size_t state_len;
    int64_t steps, warnings;
    char err[512];
};

static double now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static mtgrad_status fail(mtgrad_mtl_step *s, mtgrad_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static mtgrad_status fail(mtgrad_mtl_step *s, mtgrad_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return st;
}

static void msg(char *err, size_t errlen, const char *text)
{
    if (err && errlen) snprintf(err, errlen, "%s", text);
}

void mtgrad_mtl_step_free(mtgrad_mtl_step *s)
{
    if (!s) return;
    mtgrad_aggregator_free(s->a);
    mtgrad_optimizer_free(s->o);
    free(s->G);
    free(s->grad);
    free(s->w);
    free(s->epoch_w);
    free(s->losses);
    free(s->losses_after);
    free(s->probe);
    free(s->state);
    free(s);
}

/* The step applies the method's max_norm itself (see the header): the aggregator's is set to 0
 * so that the weights it returns are the unclipped ones the heads need. */
static mtgrad_status take_over_clipping(mtgrad_mtl_step *s)
{
    char buf[64];
    int n = mtgrad_aggregator_get_param(s->a, "max_norm", buf, sizeof buf);
    if (n < 0) return MTGRAD_OK; /* the method has no max_norm */
    if ((size_t)n >= sizeof buf) return MTGRAD_E_INVAL;
    s->max_norm = strtod(buf, NULL);
    return mtgrad_aggregator_set_param(s->a, "max_norm", "0");
}

static mtgrad_status alloc_buffers(mtgrad_mtl_step *s)
{
    size_t k = (size_t)s->k;
    s->grad = mtgradi_calloc((size_t)s->P, sizeof *s->grad);
    s->w = mtgradi_calloc(k, sizeof *s->w);
    s->epoch_w = mtgradi_malloc(k * sizeof *s->epoch_w);
    s->losses = mtgradi_calloc(k, sizeof *s->losses);
    s->losses_after = mtgradi_calloc(k, sizeof *s->losses_after);
    s->probe = mtgradi_malloc(k * sizeof *s->probe);
    if (!s->loss_only) s->G = mtgradi_calloc(k * (size_t)s->d, sizeof *s->G);
    if (!s->grad || !s->w || !s->epoch_w || !s->losses || !s->losses_after || !s->probe ||
        (!s->loss_only && !s->G))
        return MTGRAD_E_NOMEM;
    for (size_t i = 0; i < k; i++) s->epoch_w[i] = s->probe[i] = 1.0; /* DWA's first epochs */
    if (s->per_epoch) {
        mtgrad_status st = mtgrad_aggregator_save(s->a, NULL, &s->state_len);
        if (st != MTGRAD_OK) return st;
        s->state = mtgradi_malloc(s->state_len);
        if (!s->state) return MTGRAD_E_NOMEM;
    }
    return MTGRAD_OK;
}

static mtgrad_status setup(mtgrad_mtl_step *s, const char *method, const char *params,
                           const mtgrad_optim_config *optim, char *err, size_t errlen)
{
    mtgrad_status st = mtgrad_aggregator_new(&s->a, method, s->k, params, err, errlen);
    if (st != MTGRAD_OK) return st;
    const mtgrad_method *me = mtgrad_aggregator_method(s->a);
    s->flags = mtgrad_method_flags(me);
    s->loss_only = !(s->flags & (MTGRAD_NEEDS_GRAM | MTGRAD_NEEDS_JACOBIAN));
    s->per_epoch = strcmp(mtgrad_method_name(me), "dwa") == 0;
    if (s->loss_only && !(s->flags & MTGRAD_HAS_WEIGHTS)) {
        msg(err, errlen, "mtl step: a method without G must have task weights");
        return MTGRAD_E_UNSUPPORTED;
    }
    if (!s->loss_only && s->d < 1) {
        if (err && errlen)
            snprintf(err, errlen, "mtl step: %s needs the task gradients on the shared "
                     "parameters, and the model has none", method);
        return MTGRAD_E_SHAPE;
    }
    if (take_over_clipping(s) != MTGRAD_OK) {
        msg(err, errlen, "mtl step: cannot take over the method's max_norm");
        return MTGRAD_E_INVAL;
    }
    st = mtgrad_optimizer_new(&s->o, optim, s->P, err, errlen);
    if (st != MTGRAD_OK) return st;
    st = alloc_buffers(s);
    if (st != MTGRAD_OK) msg(err, errlen, "mtl step: out of memory");
    return st;
}

mtgrad_status mtgrad_mtl_step_new(mtgrad_mtl_step **out, mtgrad_model *model, const char *method,
                                  const char *params, const mtgrad_optim_config *optim,
                                  char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!out || !model || !method || !optim) {
        msg(err, errlen, "mtl step: out, model, method and optim must not be NULL");
        return MTGRAD_E_INVAL;
    }
    mtgrad_mtl_step *s = mtgradi_calloc(1, sizeof *s);
    if (!s) {
        msg(err, errlen, "mtl step: out of memory");
        return MTGRAD_E_NOMEM;
    }
    s->m = model;
    s->k = mtgrad_model_k(model);
    s->d = mtgrad_model_num_shared(model);
    s->P = mtgrad_model_num_params(model);
    mtgrad_status st = setup(s, method, params, optim, err, errlen);
    if (st != MTGRAD_OK) {
        mtgrad_mtl_step_free(s);
        return st;
    }
    *out = s;
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- the step's phases */

/* Scales the trunk gradient like torch.nn.utils.clip_grad_norm_(shared, max_norm). */
static void clip_trunk(mtgrad_mtl_step *s)
{
    if (!(s->max_norm > 0)) return;
    double ss = 0;
    for (int64_t j = 0; j < s->d; j++) ss += (double)s->grad[j] * (double)s->grad[j];
    double coef = s->max_norm / (sqrt(ss) + 1e-6);
    if (coef >= 1.0) return;
    for (int64_t j = 0; j < s->d; j++) s->grad[j] = (float)((double)s->grad[j] * coef);
}

static mtgrad_status loss_only_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = now();
    if (s->per_epoch) {
        memcpy(s->w, s->epoch_w, (size_t)s->k * sizeof *s->w);
    } else {
        const double *L = s->flags & MTGRAD_NEEDS_LOSSES ? s->losses : NULL;
        mtgrad_status st = mtgrad_weights_from_gram(s->a, NULL, s->k, L, s->w);
        if (st == MTGRAD_E_MAXITER || st == MTGRAD_E_NOPROGRESS) s->warnings++;
        else if (st != MTGRAD_OK)
            return fail(s, st, "weights: %s", mtgrad_aggregator_error(s->a));
    }
    double t1 = now();
    mtgrad_status st = mtgrad_model_backward_weighted(s->m, s->w, s->grad);
    if (st != MTGRAD_OK) return fail(s, st, "backward of sum_i w_i L_i: %s", mtgrad_status_str(st));
    double t2 = now();
    clip_trunk(s);
    t[MTGRAD_TIME_SOLVE] += t1 - t0;
    t[MTGRAD_TIME_BACKWARD] += t2 - t1;
    t[MTGRAD_TIME_COMBINE] += now() - t2;
    return MTGRAD_OK;
}

/* Head i's slice of the gradient times w_i (the heads of a backward of sum_i w_i L_i). */
static void weight_heads(mtgrad_mtl_step *s)
{
    for (int64_t i = 0; i < s->k; i++) {
        float *h = s->grad + mtgrad_model_head_offset(s->m, i);
        int64_t n = mtgrad_model_head_size(s->m, i);
        for (int64_t j = 0; j < n; j++) h[j] = (float)(s->w[i] * (double)h[j]);
    }
}

static mtgrad_status jacobian_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = now();
    for (int64_t i = 0; i < s->k; i++) {
        mtgrad_status st = mtgrad_model_backward_task(s->m, i, s->G + i * s->d, s->grad);
        if (st != MTGRAD_OK)
            return fail(s, st, "backward of task %lld: %s", (long long)i, mtgrad_status_str(st));
    }
    double t1 = now();
    int weighted = (s->flags & MTGRAD_HAS_WEIGHTS) != 0;
    mtgrad_status st = mtgrad_aggregate_f32(s->a, s->G, s->k, s->d, s->d,
                                            s->flags & MTGRAD_NEEDS_LOSSES ? s->losses : NULL,
                                            s->grad, weighted ? s->w : NULL);
    if (st == MTGRAD_E_MAXITER || st == MTGRAD_E_NOPROGRESS) s->warnings++;
    else if (st != MTGRAD_OK) return fail(s, st, "aggregation: %s", mtgrad_aggregator_error(s->a));
    double ta[3];
    mtgrad_aggregator_times(s->a, ta);
    double t2 = now();
    clip_trunk(s);
    if (weighted && (s->flags & MTGRAD_HEADS_WEIGHTED)) weight_heads(s);
    t[MTGRAD_TIME_BACKWARD] += t1 - t0;
    t[MTGRAD_TIME_GRAM] += ta[0];
    t[MTGRAD_TIME_SOLVE] += ta[1];
    t[MTGRAD_TIME_COMBINE] += ta[2] + (now() - t2);
    return MTGRAD_OK;
}

/* The task whose loss is not finite, for the message; -1 if all are. */
static int64_t nonfinite_task(const double *L, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(L[i])) return i;
    return -1;
}

/* After a non-finite forward: the first NaN/Inf target or input, for the message (the scan is
 * on the failure path only). */
static mtgrad_status nonfinite_input(mtgrad_mtl_step *s, const float *x, const float *targets,
                                     int64_t n, const char *what)
{
    for (int64_t i = 0; i < s->k; i++)
        for (int64_t j = 0; j < n; j++)
            if (!isfinite(targets[i * n + j]))
                return fail(s, MTGRAD_E_NONFINITE, "%s: the target of task %lld, sample %lld is "
                            "not finite", what, (long long)i, (long long)j);
    int64_t in = mtgrad_model_input_size(s->m);
    for (int64_t j = 0; j < n * in; j++)
        if (!isfinite(x[j]))
            return fail(s, MTGRAD_E_NONFINITE, "%s: input of sample %lld is not finite", what,
                        (long long)(j / in));
    return fail(s, MTGRAD_E_NONFINITE, "%s: the network's output or loss overflowed (diverged?)",
                what);
}

static mtgrad_status forward(mtgrad_mtl_step *s, const float *x, const float *targets, int64_t n,
                             double *L, const char *what)
{
    mtgrad_status st = mtgrad_model_forward(s->m, x, targets, n, 1, L);
    if (st == MTGRAD_OK && nonfinite_task(L, s->k) >= 0)
        return fail(s, MTGRAD_E_NONFINITE, "%s: the loss of task %lld is not finite", what,
                    (long long)nonfinite_task(L, s->k));
    if (st == MTGRAD_E_NONFINITE) return nonfinite_input(s, x, targets, n, what);
    if (st != MTGRAD_OK) return fail(s, st, "%s: %s", what, mtgrad_status_str(st));
    return MTGRAD_OK;
}

/* FAMO: the losses on the same batch after the update feed the method's state. */
static mtgrad_status losses_after(mtgrad_mtl_step *s, const float *x, const float *targets,
                                  int64_t n)
{
    mtgrad_status st = forward(s, x, targets, n, s->losses_after, "forward after the step");
    if (st != MTGRAD_OK) return st;
    st = mtgrad_aggregator_update(s->a, s->losses_after, s->k);
    if (st != MTGRAD_OK) return fail(s, st, "update: %s", mtgrad_aggregator_error(s->a));
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_run(mtgrad_mtl_step *s, const float *x, const float *targets,
                                  int64_t n, double *losses_out, double *times_out)
{
    if (!s) return MTGRAD_E_INVAL;
    s->err[0] = '\0';
    if (!x || !targets) return fail(s, MTGRAD_E_INVAL, "step: x and targets must not be NULL");
    double t[MTGRAD_TIME_COUNT] = {0};
    double t0 = now();
    mtgrad_status st = forward(s, x, targets, n, s->losses, "forward");
    if (st != MTGRAD_OK) return st;
    double t1 = now();
    t[MTGRAD_TIME_FORWARD] = t1 - t0;
    st = s->loss_only ? loss_only_grad(s, t) : jacobian_grad(s, t);
    if (st != MTGRAD_OK) return st;
    double t2 = now();
    st = mtgrad_optimizer_step(s->o, mtgrad_model_params(s->m), s->grad);
    if (st != MTGRAD_OK)
        return fail(s, st, "optimizer step: %s (the gradient is not finite)", mtgrad_status_str(st));
    double t3 = now();
    t[MTGRAD_TIME_OPTIM] = t3 - t2;
    if (s->flags & MTGRAD_NEEDS_LOSSES_AFTER) {
        st = losses_after(s, x, targets, n);
        if (st != MTGRAD_OK) return st;
        t[MTGRAD_TIME_FORWARD] += now() - t3;
    }
    s->steps++;
    t[MTGRAD_TIME_TOTAL] = now() - t0;
    if (losses_out) memcpy(losses_out, s->losses, (size_t)s->k * sizeof *losses_out);
    if (times_out) memcpy(times_out, t, sizeof t);
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- epochs (DWA) */

/* DWA's aggregator records the losses it is given and returns weights from the ones recorded
 * before: the weights of the coming epoch are what the next call would return. The probe
 * makes that call and restores the state, so only _end_epoch's real losses are recorded. */
static mtgrad_status dwa_probe(mtgrad_mtl_step *s)
{
    size_t len = s->state_len;
    mtgrad_status st = mtgrad_aggregator_save(s->a, s->state, &len);
    if (st != MTGRAD_OK) return fail(s, st, "dwa: saving the state: %s", mtgrad_aggregator_error(s->a));
    st = mtgrad_weights_from_gram(s->a, NULL, s->k, s->probe, s->epoch_w);
    mtgrad_status st2 = mtgrad_aggregator_load(s->a, s->state, len);
    if (st != MTGRAD_OK) return fail(s, st, "dwa: epoch weights: %s", mtgrad_aggregator_error(s->a));
    if (st2 != MTGRAD_OK) return fail(s, st2, "dwa: restoring the state: %s", mtgrad_aggregator_error(s->a));
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_begin_epoch(mtgrad_mtl_step *s, int64_t epoch)
{
    if (!s) return MTGRAD_E_INVAL;
    s->err[0] = '\0';
    if (epoch < 0) return fail(s, MTGRAD_E_INVAL, "begin_epoch: epoch = %lld < 0", (long long)epoch);
    mtgrad_optimizer_set_epoch(s->o, epoch);
    return s->per_epoch ? dwa_probe(s) : MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_end_epoch(mtgrad_mtl_step *s, const double *mean_losses)
{
    if (!s) return MTGRAD_E_INVAL;
    s->err[0] = '\0';
    if (!mean_losses) return fail(s, MTGRAD_E_INVAL, "end_epoch: mean_losses is NULL");
    if (!s->per_epoch) return MTGRAD_OK;
    mtgrad_status st = mtgrad_weights_from_gram(s->a, NULL, s->k, mean_losses, s->probe);
    for (int64_t i = 0; i < s->k; i++) s->probe[i] = 1.0;
    if (st != MTGRAD_OK) return fail(s, st, "dwa: %s", mtgrad_aggregator_error(s->a));
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- accessors */

const char *mtgrad_mtl_step_error(const mtgrad_mtl_step *s)
{
    return s ? s->err : "mtl step is NULL";
}

mtgrad_aggregator *mtgrad_mtl_step_aggregator(mtgrad_mtl_step *s) { return s ? s->a : NULL; }
mtgrad_optimizer *mtgrad_mtl_step_optimizer(mtgrad_mtl_step *s) { return s ? s->o : NULL; }
const float *mtgrad_mtl_step_grad(const mtgrad_mtl_step *s) { return s ? s->grad : NULL; }
const float *mtgrad_mtl_step_jacobian(const mtgrad_mtl_step *s) { return s ? s->G : NULL; }
int mtgrad_mtl_step_loss_only(const mtgrad_mtl_step *s) { return s ? s->loss_only : 0; }
int64_t mtgrad_mtl_step_solver_warnings(const mtgrad_mtl_step *s) { return s ? s->warnings : 0; }
int64_t mtgrad_mtl_step_count(const mtgrad_mtl_step *s) { return s ? s->steps : 0; }

const double *mtgrad_mtl_step_weights(const mtgrad_mtl_step *s)
{
    return s && (s->flags & MTGRAD_HAS_WEIGHTS) ? s->w : NULL;
}

void mtgrad_mtl_step_set_counters(mtgrad_mtl_step *s, int64_t steps, int64_t solver_warnings)
{
    if (!s) return;
    s->steps = steps;
    s->warnings = solver_warnings;
}
