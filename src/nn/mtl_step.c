/*
 * mtl_step.c — one multi-task training step (architecture.md §1): forward, the backward passes a
 * method needs, the balanced direction written into the shared parameters' gradient, the heads'
 * gradients (weighted or not, methods.md §0.3), the optimizer step, and FAMO's re-evaluation.
 * This file holds creation, the options, the loop every path shares and the two plain paths;
 * the paths that reshape the loop (issue 5) are in the files named by mtl_step_internal.h.
 *
 * The k x d matrix G is the only large buffer: each per-task backward writes its trunk gradient
 * straight into row i, and the aggregator writes the direction straight into the trunk slice of
 * the arena-sized gradient (the trunk is the arena's first d floats), so nothing is copied.
 * Loss-only methods never build G: their weights come from the losses alone and one backward of
 * sum_i w_i L_i gives both the trunk direction and the weighted heads.
 */
#define _POSIX_C_SOURCE 200809L
#include "nn/mtl_step_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mtgrad_status mtgradi_step_fail(mtgrad_mtl_step *s, mtgrad_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return st;
}

mtgrad_status mtgradi_step_solver(mtgrad_mtl_step *s, mtgrad_aggregator *a, mtgrad_status st,
                                  const char *what)
{
    if (st == MTGRAD_E_MAXITER || st == MTGRAD_E_NOPROGRESS) {
        s->warnings++;
        return MTGRAD_OK;
    }
    if (st != MTGRAD_OK) return mtgradi_step_fail(s, st, "%s: %s", what, mtgrad_aggregator_error(a));
    return MTGRAD_OK;
}

mtgrad_step_options mtgrad_step_options_default(void)
{
    mtgrad_step_options o;
    o.task_sample = NULL;
    o.grad_space = NULL;
    o.seed = 0;
    return o;
}

void mtgrad_mtl_step_free(mtgrad_mtl_step *s)
{
    if (!s) return;
    if (s->sub)
        for (int64_t r = 1; r < s->k; r++) mtgrad_aggregator_free(s->sub[r]); /* sub[k] = a */
    mtgrad_aggregator_free(s->a);
    mtgrad_optimizer_free(s->o);
    void *bufs[] = {s->G, s->grad, s->w, s->epoch_w, s->losses, s->losses_after, s->probe,
                    s->state, s->sampled, s->M, s->partials, s->method, s->params, s->sub, s->rows,
                    s->wrow, s->lrow, s->coef, s->R, s->zgrad, s->theta, s->h, s->prev_L, s->G1, s->G2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s);
}

/* ---------------------------------------------------------------- creation */

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

/* nash_mtl's update_weights_every = N > 1: the core would still need k backwards on the steps
 * that reuse its weights; the step reuses them itself with one backward (the aggregator's is
 * set to 1 and it is called on the updating steps only). */
static mtgrad_status take_over_every(mtgrad_mtl_step *s, char *err, size_t errlen)
{
    char buf[64];
    int n = mtgrad_aggregator_get_param(s->a, "update_weights_every", buf, sizeof buf);
    if (n < 0 || (size_t)n >= sizeof buf) return MTGRAD_OK;
    long long every = strtoll(buf, NULL, 10);
    if (every <= 1) return MTGRAD_OK;
    if (s->path == MTGRADI_PATH_SAMPLED)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: update_weights_every"
                              " = %lld cannot be combined with task sampling (the weights of one"
                              " subset do not apply to the next)", every);
    if (s->path != MTGRADI_PATH_JACOBIAN && s->path != MTGRADI_PATH_REP) return MTGRAD_OK;
    s->every = (int64_t)every;
    return mtgrad_aggregator_set_param(s->a, "update_weights_every", "1");
}

static mtgrad_status alloc_buffers(mtgrad_mtl_step *s)
{
    size_t k = (size_t)s->k;
    int needs_g = s->path == MTGRADI_PATH_JACOBIAN || s->path == MTGRADI_PATH_SAMPLED ||
                  s->path == MTGRADI_PATH_DOUBLE || s->path == MTGRADI_PATH_ADATASK;
    s->grad = mtgradi_calloc((size_t)s->P, sizeof *s->grad);
    s->w = mtgradi_calloc(k, sizeof *s->w);
    s->epoch_w = mtgradi_malloc(k * sizeof *s->epoch_w);
    s->losses = mtgradi_calloc(k, sizeof *s->losses);
    s->losses_after = mtgradi_calloc(k, sizeof *s->losses_after);
    s->probe = mtgradi_malloc(k * sizeof *s->probe);
    s->sampled = mtgradi_malloc(k);
    if (needs_g && s->d > 0) s->G = mtgradi_calloc(k * (size_t)s->d, sizeof *s->G);
    if (!s->grad || !s->w || !s->epoch_w || !s->losses || !s->losses_after || !s->probe ||
        !s->sampled || (needs_g && s->d > 0 && !s->G))
        return MTGRAD_E_NOMEM;
    for (size_t i = 0; i < k; i++) s->epoch_w[i] = s->probe[i] = 1.0; /* DWA's first epochs */
    memset(s->sampled, 1, k);
    if (s->per_epoch) {
        mtgrad_status st = mtgrad_aggregator_save(s->a, NULL, &s->state_len);
        if (st != MTGRAD_OK) return st;
        s->state = mtgradi_malloc(s->state_len);
        if (!s->state) return MTGRAD_E_NOMEM;
    }
    return MTGRAD_OK;
}

/* "os:N" / "fast:K" with 1 <= N, K <= k. */
static mtgrad_status parse_sample(const char *spec, int64_t k, int *kind, int64_t *n, char *err,
                                  size_t errlen)
{
    *kind = MTGRADI_SAMPLE_NONE;
    if (!spec || !*spec) return MTGRAD_OK;
    const char *num = NULL;
    if (strncmp(spec, "os:", 3) == 0) *kind = MTGRADI_SAMPLE_OS, num = spec + 3;
    else if (strncmp(spec, "fast:", 5) == 0) *kind = MTGRADI_SAMPLE_FAST, num = spec + 5;
    else
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "task sampling \"%s\": expected "
                              "os:N (SDMGrad-OS) or fast:K (CAGrad-fastK)", spec);
    char *end = NULL;
    long long v = strtoll(num, &end, 10);
    if (end == num || *end != '\0' || v < 1 || v > k)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "task sampling \"%s\": %s must be an "
                              "integer from 1 to k = %lld", spec,
                              *kind == MTGRADI_SAMPLE_OS ? "N" : "K", (long long)k);
    *n = (int64_t)v;
    return MTGRAD_OK;
}

static mtgrad_status parse_space(const char *space, int *rep, char *err, size_t errlen)
{
    *rep = 0;
    if (!space || !*space || strcmp(space, "param") == 0) return MTGRAD_OK;
    if (strcmp(space, "rep") == 0) {
        *rep = 1;
        return MTGRAD_OK;
    }
    return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "gradient space \"%s\": expected param "
                          "or rep", space);
}

/* E_UNSUPPORTED for the combinations the header lists, with a message; else the path. */
static mtgrad_status choose_path(mtgrad_mtl_step *s, int sample, int rep, int per_task,
                                 const char *method, char *err, size_t errlen)
{
    unsigned f = s->flags;
    int dbl = mtgradi_step_wants_double(s->a), feedback = (f & MTGRAD_NEEDS_FEEDBACK) != 0;
    if (sample && rep)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: task sampling and "
                              "representation gradients (grad_space rep) cannot be combined");
    if ((sample || rep) && (per_task || dbl || feedback))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: %s cannot be "
                              "combined with %s", sample ? "task sampling" : "grad_space rep",
                              per_task ? "an AdaTask optimizer" : dbl ? "sampling=double"
                                                                      : "a feedback method");
    if (sample && s->loss_only)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: task sampling needs "
                              "a method that works on G; %s takes its weights from the losses",
                              method);
    if (sample && (f & MTGRAD_NEEDS_LOSSES_AFTER))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: task sampling "
                              "cannot feed %s's update after the step", method);
    if (rep && !((f & MTGRAD_NEEDS_GRAM) && !(f & MTGRAD_NEEDS_JACOBIAN) &&
                 (f & MTGRAD_HAS_WEIGHTS)))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: grad_space rep "
                              "needs a Gram-only method with task weights; %s is not one", method);
    if (per_task && (dbl || feedback || !(f & MTGRAD_HAS_WEIGHTS)))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED, "mtl step: an AdaTask optimizer "
                              "needs task weights from the method (%s %s)", method,
                              dbl ? "with sampling=double draws three batches"
                                  : feedback ? "needs feedback along its direction"
                                             : "has no task weights");
    s->path = per_task ? MTGRADI_PATH_ADATASK
            : feedback ? MTGRADI_PATH_MARIGOLD
            : dbl      ? MTGRADI_PATH_DOUBLE
            : sample   ? MTGRADI_PATH_SAMPLED
            : rep      ? MTGRADI_PATH_REP
            : s->loss_only ? MTGRADI_PATH_LOSS_ONLY : MTGRADI_PATH_JACOBIAN;
    return MTGRAD_OK;
}

static mtgrad_status path_setup(mtgrad_mtl_step *s, const char *method, const char *params,
                               char *err, size_t errlen)
{
    switch (s->path) {
    case MTGRADI_PATH_SAMPLED: return mtgradi_step_sampling_setup(s, method, params, err, errlen);
    case MTGRADI_PATH_REP: return mtgradi_step_rep_setup(s, err, errlen);
    case MTGRADI_PATH_MARIGOLD: return mtgradi_step_marigold_setup(s, err, errlen);
    case MTGRADI_PATH_DOUBLE: return mtgradi_step_double_setup(s, err, errlen);
    case MTGRADI_PATH_ADATASK: return mtgradi_step_adatask_setup(s, err, errlen);
    default: return MTGRAD_OK;
    }
}

static mtgrad_status setup(mtgrad_mtl_step *s, const char *method, const char *params,
                           const mtgrad_optim_config *optim, const mtgrad_step_options *opts,
                           char *err, size_t errlen)
{
    int sample = MTGRADI_SAMPLE_NONE, rep = 0;
    mtgrad_status st = parse_sample(opts->task_sample, s->k, &sample, &s->sample_n, err, errlen);
    if (st == MTGRAD_OK) st = parse_space(opts->grad_space, &rep, err, errlen);
    if (st == MTGRAD_OK) st = mtgrad_aggregator_new(&s->a, method, s->k, params, err, errlen);
    if (st != MTGRAD_OK) return st;
    s->sample_kind = sample;
    s->seed = opts->seed;
    const mtgrad_method *me = mtgrad_aggregator_method(s->a);
    s->flags = mtgrad_method_flags(me);
    s->loss_only = !(s->flags & (MTGRAD_NEEDS_GRAM | MTGRAD_NEEDS_JACOBIAN));
    s->per_epoch = strcmp(mtgrad_method_name(me), "dwa") == 0;
    if (s->loss_only && !(s->flags & MTGRAD_HAS_WEIGHTS))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_UNSUPPORTED,
                              "mtl step: a method without G must have task weights");
    st = choose_path(s, sample != MTGRADI_SAMPLE_NONE, rep, mtgrad_optim_kind_per_task(optim->kind),
                     method, err, errlen);
    if (st != MTGRAD_OK) return st;
    if (s->path != MTGRADI_PATH_LOSS_ONLY && s->path != MTGRADI_PATH_MARIGOLD &&
        s->path != MTGRADI_PATH_ADATASK && s->d < 1)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "mtl step: %s needs the task "
                              "gradients on the shared parameters, and the model has none", method);
    if (take_over_clipping(s) != MTGRAD_OK)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                              "mtl step: cannot take over the method's max_norm");
    st = take_over_every(s, err, errlen);
    if (st != MTGRAD_OK) return st;
    st = mtgrad_optimizer_new_tasks(&s->o, optim, s->P, s->k, s->d, err, errlen);
    if (st != MTGRAD_OK) return st;
    st = alloc_buffers(s);
    if (st != MTGRAD_OK) return mtgradi_errmsg(err, errlen, st, "mtl step: out of memory");
    return path_setup(s, method, params, err, errlen);
}

mtgrad_status mtgrad_mtl_step_new_ex(mtgrad_mtl_step **out, mtgrad_model *model,
                                     const char *method, const char *params,
                                     const mtgrad_optim_config *optim,
                                     const mtgrad_step_options *opts, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!out || !model || !method || !optim)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                              "mtl step: out, model, method and optim must not be NULL");
    mtgrad_step_options def = mtgrad_step_options_default();
    mtgrad_mtl_step *s = mtgradi_calloc(1, sizeof *s);
    if (!s) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    s->m = model;
    s->k = mtgrad_model_k(model);
    s->d = mtgrad_model_num_shared(model);
    s->P = mtgrad_model_num_params(model);
    mtgrad_status st = setup(s, method, params, optim, opts ? opts : &def, err, errlen);
    if (st != MTGRAD_OK) {
        mtgrad_mtl_step_free(s);
        return st;
    }
    *out = s;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_new(mtgrad_mtl_step **out, mtgrad_model *model, const char *method,
                                  const char *params, const mtgrad_optim_config *optim,
                                  char *err, size_t errlen)
{
    return mtgrad_mtl_step_new_ex(out, model, method, params, optim, NULL, err, errlen);
}

int mtgrad_mtl_step_batches(const mtgrad_mtl_step *s)
{
    return s && s->path == MTGRADI_PATH_DOUBLE ? 3 : 1;
}

const unsigned char *mtgrad_mtl_step_sampled(const mtgrad_mtl_step *s)
{
    return s ? s->sampled : NULL;
}

/* ---------------------------------------------------------------- shared phases */

double *mtgradi_step_alloc_gram(mtgrad_mtl_step *s)
{
    if (s->M) return s->M;
    size_t n = mtgradi_gram_work_size(s->k), nc = mtgradi_cross_gram_work_size(s->k);
    s->partials = mtgradi_malloc((n > nc ? n : nc) * sizeof *s->partials);
    if (!s->partials) return NULL;
    s->M = mtgradi_malloc((size_t)(s->k * s->k) * sizeof *s->M);
    return s->M;
}

static mtgrad_status gram_finite(mtgrad_mtl_step *s, const double *M, int64_t rows, const char *what)
{
    for (int64_t i = 0; i < rows * rows; i++)
        if (!isfinite(M[i]))
            return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "the Gram matrix of %s is not finite "
                                     "(NaN in the gradients, or an overflow)", what);
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_gram(mtgrad_mtl_step *s, const float *G, int64_t rows, int64_t len,
                                int64_t ld, double *M, const char *what)
{
    mtgradi_mat g = {G, NULL, rows, len, ld};
    mtgradi_gram(&g, M, s->partials, mtgrad_nn_threads());
    return gram_finite(s, M, rows, what);
}

mtgrad_status mtgradi_step_cross_gram(mtgrad_mtl_step *s, const float *A, const float *B,
                                      int64_t rows, int64_t len, int64_t ld, double *C,
                                      const char *what)
{
    mtgradi_mat a = {A, NULL, rows, len, ld}, b = {B, NULL, rows, len, ld};
    mtgradi_cross_gram(&a, &b, C, s->partials, mtgrad_nn_threads());
    return gram_finite(s, C, rows, what);
}

double mtgradi_step_norm(const float *x, int64_t n)
{
    double ss = 0;
    for (int64_t j = 0; j < n; j++) ss += (double)x[j] * (double)x[j];
    return sqrt(ss);
}

void mtgradi_step_clip(mtgrad_mtl_step *s)
{
    if (!(s->max_norm > 0)) return;
    double coef = s->max_norm / (mtgradi_step_norm(s->grad, s->d) + 1e-6);
    if (coef >= 1.0) return;
    for (int64_t j = 0; j < s->d; j++) s->grad[j] = (float)((double)s->grad[j] * coef);
}

void mtgradi_step_weight_heads(mtgrad_mtl_step *s, const double *w)
{
    for (int64_t i = 0; i < s->k; i++) {
        float *h = s->grad + mtgrad_model_head_offset(s->m, i);
        int64_t n = mtgrad_model_head_size(s->m, i);
        for (int64_t j = 0; j < n; j++) h[j] = (float)(w[i] * (double)h[j]);
    }
}

const double *mtgradi_step_method_losses(const mtgrad_mtl_step *s, const double *L)
{
    return s->flags & MTGRAD_NEEDS_LOSSES ? L : NULL;
}

static mtgrad_status loss_only_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = mtgradi_now();
    if (s->per_epoch) {
        memcpy(s->w, s->epoch_w, (size_t)s->k * sizeof *s->w);
    } else {
        mtgrad_status st = mtgrad_weights_from_gram(s->a, NULL, s->k,
                                                    mtgradi_step_method_losses(s, s->losses), s->w);
        st = mtgradi_step_solver(s, s->a, st, "weights");
        if (st != MTGRAD_OK) return st;
    }
    double t1 = mtgradi_now();
    mtgrad_status st = mtgrad_model_backward_weighted(s->m, s->w, s->grad);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "backward of sum_i w_i L_i: %s", mtgrad_status_str(st));
    double t2 = mtgradi_now();
    mtgradi_step_clip(s);
    t[MTGRAD_TIME_SOLVE] += t1 - t0;
    t[MTGRAD_TIME_BACKWARD] += t2 - t1;
    t[MTGRAD_TIME_COMBINE] += mtgradi_now() - t2;
    return MTGRAD_OK;
}

/* nash_mtl between updates: the last weights, one backward of sum_i w_i L_i (heads weighted). */
static mtgrad_status reuse_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = mtgradi_now();
    mtgrad_status st = mtgrad_model_backward_weighted(s->m, s->w, s->grad);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "backward of sum_i w_i L_i (reused weights): %s",
                                 mtgrad_status_str(st));
    double t1 = mtgradi_now();
    mtgradi_step_clip(s);
    t[MTGRAD_TIME_BACKWARD] += t1 - t0;
    t[MTGRAD_TIME_COMBINE] += mtgradi_now() - t1;
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_task_rows(mtgrad_mtl_step *s, float *G, float *grad, const char *what)
{
    for (int64_t i = 0; i < s->k; i++) {
        mtgrad_status st = mtgrad_model_backward_task(s->m, i, G + i * s->d, grad);
        if (st != MTGRAD_OK)
            return mtgradi_step_fail(s, st, "backward of task %lld%s: %s", (long long)i, what,
                                     mtgrad_status_str(st));
    }
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_gram_weights(mtgrad_mtl_step *s, const float *G, int64_t len,
                                        int64_t ld, const char *what, double *t)
{
    double t0 = mtgradi_now();
    mtgrad_status st = mtgradi_step_gram(s, G, s->k, len, ld, s->M, what);
    if (st != MTGRAD_OK) return st;
    double t1 = mtgradi_now();
    st = mtgrad_weights_from_gram(s->a, s->M, s->k, mtgradi_step_method_losses(s, s->losses), s->w);
    t[MTGRAD_TIME_GRAM] += t1 - t0;
    t[MTGRAD_TIME_SOLVE] += mtgradi_now() - t1;
    return mtgradi_step_solver(s, s->a, st, "weights");
}

static mtgrad_status jacobian_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = mtgradi_now();
    mtgrad_status st0 = mtgradi_step_task_rows(s, s->G, s->grad, "");
    if (st0 != MTGRAD_OK) return st0;
    double t1 = mtgradi_now();
    int weighted = (s->flags & MTGRAD_HAS_WEIGHTS) != 0;
    mtgrad_status st = mtgrad_aggregate_f32(s->a, s->G, s->k, s->d, s->d,
                                            mtgradi_step_method_losses(s, s->losses), s->grad,
                                            weighted ? s->w : NULL);
    st = mtgradi_step_solver(s, s->a, st, "aggregation");
    if (st != MTGRAD_OK) return st;
    double ta[3];
    mtgrad_aggregator_times(s->a, ta);
    double t2 = mtgradi_now();
    mtgradi_step_clip(s);
    if (weighted && (s->flags & MTGRAD_HEADS_WEIGHTED)) mtgradi_step_weight_heads(s, s->w);
    s->have_w = weighted;
    t[MTGRAD_TIME_BACKWARD] += t1 - t0;
    t[MTGRAD_TIME_GRAM] += ta[0];
    t[MTGRAD_TIME_SOLVE] += ta[1];
    t[MTGRAD_TIME_COMBINE] += ta[2] + (mtgradi_now() - t2);
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
                return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "%s: the target of task %lld, "
                                         "sample %lld is not finite", what, (long long)i,
                                         (long long)j);
    int64_t in = mtgrad_model_input_size(s->m);
    for (int64_t j = 0; j < n * in; j++)
        if (!isfinite(x[j]))
            return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "%s: input of sample %lld is not "
                                     "finite", what, (long long)(j / in));
    return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "%s: the network's output or loss overflowed "
                             "(diverged?)", what);
}

mtgrad_status mtgradi_step_forward(mtgrad_mtl_step *s, const float *x, const float *targets,
                                   int64_t n, double *L, const char *what)
{
    mtgrad_status st = mtgrad_model_forward(s->m, x, targets, n, 1, L);
    if (st == MTGRAD_OK && nonfinite_task(L, s->k) >= 0)
        return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "%s: the loss of task %lld is not finite",
                                 what, (long long)nonfinite_task(L, s->k));
    if (st == MTGRAD_E_NONFINITE) return nonfinite_input(s, x, targets, n, what);
    if (st != MTGRAD_OK) return mtgradi_step_fail(s, st, "%s: %s", what, mtgrad_status_str(st));
    return MTGRAD_OK;
}

/* FAMO: the losses on the same batch after the update feed the method's state. */
static mtgrad_status losses_after(mtgrad_mtl_step *s, const float *x, const float *targets,
                                  int64_t n)
{
    mtgrad_status st = mtgradi_step_forward(s, x, targets, n, s->losses_after,
                                            "forward after the step");
    if (st != MTGRAD_OK) return st;
    st = mtgrad_aggregator_update(s->a, s->losses_after, s->k);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "update: %s", mtgrad_aggregator_error(s->a));
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- the loop */

static int reuses_weights(const mtgrad_mtl_step *s)
{
    return s->every > 1 && s->have_w && s->steps % s->every != 0;
}

/* The gradient of a path that reads one batch, after its forward. */
static mtgrad_status grad_phase(mtgrad_mtl_step *s, const float *x, const float *targets,
                                int64_t n, double *t)
{
    switch (s->path) {
    case MTGRADI_PATH_LOSS_ONLY: return loss_only_grad(s, t);
    case MTGRADI_PATH_JACOBIAN: return reuses_weights(s) ? reuse_grad(s, t) : jacobian_grad(s, t);
    case MTGRADI_PATH_SAMPLED: return mtgradi_step_sampled_grad(s, n, t);
    case MTGRADI_PATH_REP:
        return reuses_weights(s) ? reuse_grad(s, t) : mtgradi_step_rep_grad(s, n, t);
    case MTGRADI_PATH_MARIGOLD: return mtgradi_step_marigold_grad(s, x, targets, n, t);
    case MTGRADI_PATH_ADATASK: return mtgradi_step_adatask_grad(s, t);
    default: return mtgradi_step_fail(s, MTGRAD_E_STATE, "step: unknown path");
    }
}

static mtgrad_status optimizer_phase(mtgrad_mtl_step *s, double *t)
{
    double t0 = mtgradi_now();
    float *p = mtgrad_model_params(s->m);
    mtgrad_status st = s->path == MTGRADI_PATH_ADATASK
                           ? mtgrad_optimizer_step_tasks(s->o, p, s->grad, s->G, s->d)
                           : mtgrad_optimizer_step(s->o, p, s->grad);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "optimizer step: %s (the gradient is not finite)",
                                 mtgrad_status_str(st));
    t[MTGRAD_TIME_OPTIM] += mtgradi_now() - t0;
    return MTGRAD_OK;
}

static mtgrad_status after_phase(mtgrad_mtl_step *s, const float *x, const float *targets,
                                 int64_t n, double *t)
{
    double t0 = mtgradi_now();
    mtgrad_status st = MTGRAD_OK;
    if (s->flags & MTGRAD_NEEDS_LOSSES_AFTER) {
        st = losses_after(s, x, targets, n);
        t[MTGRAD_TIME_FORWARD] += mtgradi_now() - t0;
    }
    if (st == MTGRAD_OK && s->path == MTGRADI_PATH_MARIGOLD)
        st = mtgradi_step_marigold_after(s, x, targets, n, t);
    return st;
}

static mtgrad_status check_batches(mtgrad_mtl_step *s, const float *const *x,
                                   const float *const *targets, int nb)
{
    if (!x || !targets)
        return mtgradi_step_fail(s, MTGRAD_E_INVAL, "step: x and targets must not be NULL");
    if (nb != mtgrad_mtl_step_batches(s))
        return mtgradi_step_fail(s, MTGRAD_E_INVAL, "step: %d batches given, this step reads %d",
                                 nb, mtgrad_mtl_step_batches(s));
    for (int b = 0; b < nb; b++)
        if (!x[b] || !targets[b])
            return mtgradi_step_fail(s, MTGRAD_E_INVAL, "step: x and targets must not be NULL "
                                     "(batch %d)", b);
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_run_batches(mtgrad_mtl_step *s, const float *const *x,
                                          const float *const *targets, int nb, int64_t n,
                                          double *losses_out, double *times_out)
{
    if (!s) return MTGRAD_E_INVAL;
    s->err[0] = '\0';
    mtgrad_status st = check_batches(s, x, targets, nb);
    if (st != MTGRAD_OK) return st;
    double t[MTGRAD_TIME_COUNT] = {0};
    double t0 = mtgradi_now();
    if (s->path == MTGRADI_PATH_DOUBLE) {
        st = mtgradi_step_double_grad(s, x, targets, n, t);
    } else {
        if (s->path == MTGRADI_PATH_MARIGOLD) mtgradi_step_marigold_before(s);
        st = mtgradi_step_forward(s, x[0], targets[0], n, s->losses, "forward");
        t[MTGRAD_TIME_FORWARD] += mtgradi_now() - t0;
        if (st == MTGRAD_OK) st = grad_phase(s, x[0], targets[0], n, t);
    }
    if (st == MTGRAD_OK) st = optimizer_phase(s, t);
    if (st == MTGRAD_OK) st = after_phase(s, x[0], targets[0], n, t);
    if (st != MTGRAD_OK) return st;
    s->steps++;
    t[MTGRAD_TIME_TOTAL] = mtgradi_now() - t0;
    if (losses_out) memcpy(losses_out, s->losses, (size_t)s->k * sizeof *losses_out);
    if (times_out) memcpy(times_out, t, sizeof t);
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_run(mtgrad_mtl_step *s, const float *x, const float *targets,
                                  int64_t n, double *losses_out, double *times_out)
{
    const float *xs[1] = {x}, *ts[1] = {targets};
    if (s && (!x || !targets)) {
        s->err[0] = '\0';
        return mtgradi_step_fail(s, MTGRAD_E_INVAL, "step: x and targets must not be NULL");
    }
    return mtgrad_mtl_step_run_batches(s, xs, ts, 1, n, losses_out, times_out);
}

/* ---------------------------------------------------------------- epochs (DWA) */

/* DWA's aggregator records the losses it is given and returns weights from the ones recorded
 * before: the weights of the coming epoch are what the next call would return. The probe
 * makes that call and restores the state, so only _end_epoch's real losses are recorded. */
static mtgrad_status dwa_probe(mtgrad_mtl_step *s)
{
    size_t len = s->state_len;
    mtgrad_status st = mtgrad_aggregator_save(s->a, s->state, &len);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "dwa: saving the state: %s", mtgrad_aggregator_error(s->a));
    st = mtgrad_weights_from_gram(s->a, NULL, s->k, s->probe, s->epoch_w);
    mtgrad_status st2 = mtgrad_aggregator_load(s->a, s->state, len);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "dwa: epoch weights: %s", mtgrad_aggregator_error(s->a));
    if (st2 != MTGRAD_OK)
        return mtgradi_step_fail(s, st2, "dwa: restoring the state: %s",
                                 mtgrad_aggregator_error(s->a));
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_begin_epoch(mtgrad_mtl_step *s, int64_t epoch)
{
    if (!s) return MTGRAD_E_INVAL;
    s->err[0] = '\0';
    if (epoch < 0)
        return mtgradi_step_fail(s, MTGRAD_E_INVAL, "begin_epoch: epoch = %lld < 0", (long long)epoch);
    mtgrad_optimizer_set_epoch(s->o, epoch);
    return s->per_epoch ? dwa_probe(s) : MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_end_epoch(mtgrad_mtl_step *s, const double *mean_losses)
{
    if (!s) return MTGRAD_E_INVAL;
    s->err[0] = '\0';
    if (!mean_losses) return mtgradi_step_fail(s, MTGRAD_E_INVAL, "end_epoch: mean_losses is NULL");
    if (!s->per_epoch) return MTGRAD_OK;
    mtgrad_status st = mtgrad_weights_from_gram(s->a, NULL, s->k, mean_losses, s->probe);
    for (int64_t i = 0; i < s->k; i++) s->probe[i] = 1.0;
    if (st != MTGRAD_OK) return mtgradi_step_fail(s, st, "dwa: %s", mtgrad_aggregator_error(s->a));
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

const double *mtgradi_mtl_step_feedback(const mtgrad_mtl_step *s)
{
    return s ? s->h : NULL;
}

void mtgrad_mtl_step_set_counters(mtgrad_mtl_step *s, int64_t steps, int64_t solver_warnings)
{
    if (!s) return;
    s->steps = steps;
    s->warnings = solver_warnings;
}
