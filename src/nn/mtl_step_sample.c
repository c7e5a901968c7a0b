/*
 * mtl_step_sample.c — the step paths that backpropagate fewer trunk passes than tasks:
 *
 *   task sampling (methods.md 7.4, 4.2): os:N keeps each task with probability N/k (redrawn
 *   until one is kept); fast:K keeps K-1 random tasks and folds the other k-K+1 into one
 *   pseudo-task, the mean of their losses, whose trunk gradient is one backward_trunk of the
 *   mean of their representation gradients. The method sees the |S| x d matrix of the rows.
 *   The draws come from a generator seeded from (seed, step count) alone, so a resumed run
 *   draws the same subsets without any saved generator state.
 *   One aggregator per number of rows: a k x k method cannot be called on |S| rows. They are
 *   created with the step (sub[k] is the step's own aggregator); a stateful
 *   method therefore keeps one state per subset size (e.g. sdmgrad's warm-started w of each
 *   size), all saved by mtgrad_mtl_step_save. Rows are in ascending task order (fast:K: the
 *   singles ascending, then the pseudo-task last, as the reference weights (1/k, ..., 1/k,
 *   (k-K+1)/k) of CAGrad-fastK expect).
 *
 *   representation gradients (MGDA-UB, methods.md 3.4): k head backwards give dL_i/dZ, the
 *   Gram of those (flattened over batch and features) gives the weights, and one trunk
 *   backward of sum_i w_i dL_i/dZ gives the direction.
 */
#define _POSIX_C_SOURCE 200809L
#include "nn/mtl_step_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- setup */

static char *dup_str(const char *x)
{
    if (!x) x = "";
    size_t n = strlen(x) + 1;
    char *c = mtgradi_malloc(n);
    if (c) memcpy(c, x, n);
    return c;
}

/* CAGrad-fastK's reference weights: 1/k for the K-1 singles, (k-K+1)/k for the pseudo-task. */
static mtgrad_status set_g0_weights(const mtgrad_mtl_step *s, mtgrad_aggregator *a)
{
    char buf[64 * (MTGRAD_NN_MAX_TASKS + 1)];
    size_t off = 0;
    int64_t K = s->sample_n;
    for (int64_t r = 0; r < K && off < sizeof buf; r++) {
        double v = r < K - 1 ? 1.0 / (double)s->k : (double)(s->k - K + 1) / (double)s->k;
        int w = snprintf(buf + off, sizeof buf - off, "%s%.17g", r ? ":" : "", v);
        if (w < 0) return MTGRAD_E_INVAL;
        off += (size_t)w;
    }
    if (off >= sizeof buf) return MTGRAD_E_INVAL;
    return mtgrad_aggregator_set_param(a, "g0_weights", buf);
}

static mtgrad_status alloc_rep(mtgrad_mtl_step *s, int64_t rows)
{
    int64_t rs = mtgrad_model_rep_size(s->m);
    if (rs < 1) return MTGRAD_E_SHAPE;
    s->rep_len = mtgrad_model_max_batch(s->m) * rs;
    s->R = mtgradi_malloc((size_t)rows * (size_t)s->rep_len * sizeof *s->R);
    s->zgrad = mtgradi_malloc((size_t)s->rep_len * sizeof *s->zgrad);
    return s->R && s->zgrad ? MTGRAD_OK : MTGRAD_E_NOMEM;
}

mtgrad_status mtgradi_step_sampling_setup(mtgrad_mtl_step *s, const char *method,
                                          const char *params, char *err, size_t errlen)
{
    size_t k = (size_t)s->k;
    s->method = dup_str(method);
    s->params = dup_str(params);
    s->sub = mtgradi_calloc(k + 1, sizeof *s->sub);
    s->rows = mtgradi_malloc(k * sizeof *s->rows);
    s->wrow = mtgradi_calloc(k, sizeof *s->wrow);
    s->lrow = mtgradi_calloc(k, sizeof *s->lrow);
    s->coef = mtgradi_malloc(k * sizeof *s->coef);
    if (!s->method || !s->params || !s->sub || !s->rows || !s->wrow || !s->lrow || !s->coef)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    s->sub[k] = s->a;
    char buf[8];
    s->has_g0 = mtgrad_aggregator_get_param(s->a, "g0_weights", buf, sizeof buf) >= 0;
    mtgrad_status st = MTGRAD_OK;
    if (s->sample_kind == MTGRADI_SAMPLE_FAST) {
        st = alloc_rep(s, s->k - s->sample_n + 1);
        if (st != MTGRAD_OK)
            return mtgradi_errmsg(err, errlen, st, "mtl step: %s", st == MTGRAD_E_NOMEM
                                  ? "out of memory" : "fast:K needs the trunk's output size");
        if (s->has_g0 && s->sample_n == s->k) st = set_g0_weights(s, s->a);
        if (st != MTGRAD_OK)
            return mtgradi_errmsg(err, errlen, st, "mtl step: cannot set g0_weights: %s",
                                  mtgrad_status_str(st));
    }
    /* Every subset size's aggregator now, so that a step never allocates (or fails to). */
    for (int64_t r = 1; r < s->k; r++) {
        if (s->sample_kind == MTGRADI_SAMPLE_FAST && r != s->sample_n) continue;
        st = mtgradi_step_new_sub(s, r, &s->sub[r], err, errlen);
        if (st != MTGRAD_OK) return st;
    }
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_rep_setup(mtgrad_mtl_step *s, char *err, size_t errlen)
{
    s->M = mtgradi_step_alloc_gram(s);
    mtgrad_status st = s->M ? alloc_rep(s, s->k) : MTGRAD_E_NOMEM;
    if (st != MTGRAD_OK)
        return mtgradi_errmsg(err, errlen, st, "mtl step: %s", st == MTGRAD_E_NOMEM
                              ? "out of memory" : "grad_space rep needs the trunk's output size");
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- draws */

/* A generator for step `step`: splitmix-mixed step count xor'ed into the seed, so that each
 * step's draws are a function of (seed, step) alone. */
static void step_rng(const mtgrad_mtl_step *s, mtgradi_rng *r)
{
    uint64_t z = (uint64_t)s->steps * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    mtgradi_rng_seed(r, s->seed ^ z ^ (z >> 31));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* os:N: Bernoulli(N/k) per task, redrawn until non-empty. */
static void draw_os(mtgrad_mtl_step *s, mtgradi_rng *r)
{
    double p = (double)s->sample_n / (double)s->k;
    for (;;) {
        s->n_rows = 0;
        for (int64_t i = 0; i < s->k; i++) {
            s->sampled[i] = mtgradi_rng_uniform(r) < p;
            if (s->sampled[i]) s->rows[s->n_rows++] = i;
        }
        if (s->n_rows > 0) return;
    }
}

/* fast:K: rows[0, K-1) the singles, rows[K-1, k) the pseudo-task's members, each ascending. */
static void draw_fast(mtgrad_mtl_step *s, mtgradi_rng *r)
{
    int64_t K = s->sample_n;
    for (int64_t i = 0; i < s->k; i++) s->rows[i] = i;
    mtgradi_rng_shuffle(r, s->rows, s->k);
    qsort(s->rows, (size_t)(K - 1), sizeof *s->rows, cmp_i64);
    qsort(s->rows + K - 1, (size_t)(s->k - K + 1), sizeof *s->rows, cmp_i64);
    memset(s->sampled, 1, (size_t)s->k);
    s->n_rows = K;
}

mtgrad_status mtgradi_step_new_sub(const mtgrad_mtl_step *s, int64_t rows, mtgrad_aggregator **out,
                                   char *err, size_t errlen)
{
    mtgrad_aggregator *a = NULL;
    mtgrad_status st = mtgrad_aggregator_new(&a, s->method, rows, s->params, err, errlen);
    char buf[8];
    if (st == MTGRAD_OK && mtgrad_aggregator_get_param(a, "max_norm", buf, sizeof buf) >= 0)
        st = mtgrad_aggregator_set_param(a, "max_norm", "0");
    if (st == MTGRAD_OK && s->sample_kind == MTGRADI_SAMPLE_FAST && s->has_g0 &&
        rows == s->sample_n)
        st = set_g0_weights(s, a);
    if (st != MTGRAD_OK) {
        mtgrad_aggregator_free(a);
        a = NULL;
    }
    *out = a;
    return st;
}

mtgrad_status mtgradi_step_sub_aggregator(mtgrad_mtl_step *s, int64_t rows,
                                          mtgrad_aggregator **out)
{
    if (!s->sub[rows]) {
        char err[256] = "";
        mtgrad_status st = mtgradi_step_new_sub(s, rows, &s->sub[rows], err, sizeof err);
        if (st != MTGRAD_OK)
            return mtgradi_step_fail(s, st, "task sampling: the aggregator for %lld tasks: %s",
                                     (long long)rows, err[0] ? err : mtgrad_status_str(st));
    }
    *out = s->sub[rows];
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- gradients */

static mtgrad_status head_backward(mtgrad_mtl_step *s, int64_t task, float *rep)
{
    mtgrad_status st = mtgrad_model_backward_head(s->m, task, rep, s->grad);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "backward of head %lld: %s", (long long)task,
                                 mtgrad_status_str(st));
    return MTGRAD_OK;
}

static mtgrad_status trunk_backward(mtgrad_mtl_step *s, float *trunk_grad)
{
    mtgrad_status st = mtgrad_model_backward_trunk(s->m, s->zgrad, trunk_grad);
    if (st != MTGRAD_OK)
        return mtgradi_step_fail(s, st, "backward of the trunk: %s", mtgrad_status_str(st));
    return MTGRAD_OK;
}

/* fast:K's last row: the members' dL_j/dZ averaged, one trunk backward; its loss the mean. */
static mtgrad_status pseudo_task(mtgrad_mtl_step *s, int64_t n)
{
    int64_t K = s->sample_n, m = s->k - K + 1, len = n * mtgrad_model_rep_size(s->m);
    double Lsum = 0;
    for (int64_t q = 0; q < m; q++) {
        int64_t task = s->rows[K - 1 + q];
        mtgrad_status st = head_backward(s, task, s->R + q * s->rep_len);
        if (st != MTGRAD_OK) return st;
        s->coef[q] = 1.0 / (double)m;
        Lsum += s->losses[task];
    }
    s->lrow[K - 1] = Lsum / (double)m;
    if (mtgrad_combine_f32(s->R, m, len, s->rep_len, s->coef, s->zgrad) != MTGRAD_OK)
        return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "fast:K: the mean representation "
                                 "gradient is not finite");
    return trunk_backward(s, s->G + (K - 1) * s->d);
}

/* The drawn rows' trunk gradients into G (and their heads into grad; the others zero). */
static mtgrad_status sampled_rows(mtgrad_mtl_step *s, int64_t n)
{
    int64_t singles = s->sample_kind == MTGRADI_SAMPLE_FAST ? s->sample_n - 1 : s->n_rows;
    for (int64_t r = 0; r < singles; r++) {
        mtgrad_status st = mtgrad_model_backward_task(s->m, s->rows[r], s->G + r * s->d, s->grad);
        if (st != MTGRAD_OK)
            return mtgradi_step_fail(s, st, "backward of task %lld: %s", (long long)s->rows[r],
                                     mtgrad_status_str(st));
        s->lrow[r] = s->losses[s->rows[r]];
    }
    for (int64_t i = 0; i < s->k; i++)
        if (!s->sampled[i])
            memset(s->grad + mtgrad_model_head_offset(s->m, i), 0,
                   (size_t)mtgrad_model_head_size(s->m, i) * sizeof *s->grad);
    return s->sample_kind == MTGRADI_SAMPLE_FAST ? pseudo_task(s, n) : MTGRAD_OK;
}

/* Row weights back to task weights: a member of the pseudo-task carries w_pseudo / m. */
static void task_weights(mtgrad_mtl_step *s)
{
    memset(s->w, 0, (size_t)s->k * sizeof *s->w);
    int64_t singles = s->sample_kind == MTGRADI_SAMPLE_FAST ? s->sample_n - 1 : s->n_rows;
    for (int64_t r = 0; r < singles; r++) s->w[s->rows[r]] = s->wrow[r];
    if (s->sample_kind != MTGRADI_SAMPLE_FAST) return;
    int64_t m = s->k - s->sample_n + 1;
    for (int64_t q = 0; q < m; q++) s->w[s->rows[s->sample_n - 1 + q]] = s->wrow[singles] / (double)m;
}

mtgrad_status mtgradi_step_sampled_grad(mtgrad_mtl_step *s, int64_t n, double *t)
{
    double t0 = mtgradi_now();
    mtgradi_rng r;
    step_rng(s, &r);
    if (s->sample_kind == MTGRADI_SAMPLE_OS) draw_os(s, &r);
    else draw_fast(s, &r);
    mtgrad_status st = sampled_rows(s, n);
    if (st != MTGRAD_OK) return st;
    double t1 = mtgradi_now();
    mtgrad_aggregator *a = NULL;
    st = mtgradi_step_sub_aggregator(s, s->n_rows, &a);
    if (st != MTGRAD_OK) return st;
    int weighted = (s->flags & MTGRAD_HAS_WEIGHTS) != 0;
    st = mtgrad_aggregate_f32(a, s->G, s->n_rows, s->d, s->d,
                              mtgradi_step_method_losses(s, s->lrow), s->grad,
                              weighted ? s->wrow : NULL);
    st = mtgradi_step_solver(s, a, st, "aggregation of the sampled tasks");
    if (st != MTGRAD_OK) return st;
    double ta[3];
    mtgrad_aggregator_times(a, ta);
    double t2 = mtgradi_now();
    mtgradi_step_clip(s);
    if (weighted) task_weights(s);
    if (weighted && (s->flags & MTGRAD_HEADS_WEIGHTED)) mtgradi_step_weight_heads(s, s->w);
    t[MTGRAD_TIME_BACKWARD] += t1 - t0;
    t[MTGRAD_TIME_GRAM] += ta[0];
    t[MTGRAD_TIME_SOLVE] += ta[1];
    t[MTGRAD_TIME_COMBINE] += ta[2] + (mtgradi_now() - t2);
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_rep_grad(mtgrad_mtl_step *s, int64_t n, double *t)
{
    double t0 = mtgradi_now();
    int64_t len = n * mtgrad_model_rep_size(s->m);
    for (int64_t i = 0; i < s->k; i++) {
        mtgrad_status st = head_backward(s, i, s->R + i * s->rep_len);
        if (st != MTGRAD_OK) return st;
    }
    double t1 = mtgradi_now();
    mtgrad_status st = mtgradi_step_gram_weights(s, s->R, len, s->rep_len,
                                                 "the representation gradients", t);
    if (st != MTGRAD_OK) return st;
    double t3 = mtgradi_now();
    if (mtgrad_combine_f32(s->R, s->k, len, s->rep_len, s->w, s->zgrad) != MTGRAD_OK)
        return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "sum_i w_i dL_i/dZ is not finite");
    double t4 = mtgradi_now();
    st = trunk_backward(s, s->grad);
    if (st != MTGRAD_OK) return st;
    double t5 = mtgradi_now();
    mtgradi_step_clip(s);
    mtgradi_step_weight_heads(s, s->w);
    s->have_w = 1;
    t[MTGRAD_TIME_BACKWARD] += (t1 - t0) + (t5 - t4);
    t[MTGRAD_TIME_COMBINE] += (t4 - t3) + (mtgradi_now() - t5);
    return MTGRAD_OK;
}
