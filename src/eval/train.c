/*
 * train.c — the trainer: epochs of shuffled mini-batches through the MTL step, a test-set
 * evaluation after every epoch, a checkpoint after every epoch, and resume to the same bits.
 *
 * Determinism: the data order of epoch e is a Fisher-Yates shuffle drawn from a generator
 * seeded from (seed, e) alone, so the position of a run in its data is just its epoch; the
 * model, optimizer, aggregator, the step's own state and dropout generator are saved whole.
 * A step that reads three batches (SDMGrad's double sampling) gets the epoch's batch and two
 * more drawn by a generator seeded from (seed, epoch, step): no state either. A resumed run
 * therefore replays exactly what the uninterrupted run would have done (timings aside).
 */
#define _POSIX_C_SOURCE 200809L
#include "eval_internal.h"
#include "internal.h" /* mtgradi_malloc & co. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* per-epoch curve columns: train loss, test loss, test metric (k each), times, eval s, lr */
#define CURVE_COLS(k) (3 * (k) + MTGRAD_TIME_COUNT + 2)

typedef struct run {
    const mtgrad_bench *b;
    const mtgrad_train_config *c;
    const mtgrad_dataset *tr, *te;
    mtgrad_model *m;
    mtgrad_mtl_step *s;
    mtgrad_optim_config optim; /* the recipe's, or --optimizer's kind with the recipe's lr */
    int64_t k, task0, in, batch, epochs, ntrain, ntest, start_epoch;
    int nb;               /* batches per step: 1, or 3 for double sampling */
    float *xb, *yb;       /* nb batches, one after the other */
    int64_t *perm;
    int64_t *pool, *picks, *extra; /* the extra batches' draws (pool: identity between draws) */
    mtgrad_pass_counts passes; /* during training steps of this process */
    char config[4096];
    mtgrad_train_result *r;
    double t_start;
    int64_t steps_here; /* steps taken in this process (for the ETA) */
} run;

static double now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

mtgrad_train_config mtgrad_train_config_default(void)
{
    mtgrad_train_config c;
    memset(&c, 0, sizeof c);
    c.bench = "mmoe";
    c.method = "ls";
    c.threads = 1;
    c.stl_task = -1;
    return c;
}

void mtgrad_train_result_free(mtgrad_train_result *r)
{
    if (!r) return;
    free(r->train_loss);
    free(r->test_loss);
    free(r->test_metric);
    free(r->times);
    free(r->eval_seconds);
    free(r->lr);
    free(r->params);
    free(r);
}

/* ---------------------------------------------------------------- shuffling */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias (rejection of the top partial range). */
static uint64_t below(uint64_t *x, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound, r;
    do r = splitmix64(x);
    while (r >= limit);
    return r % bound;
}

static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch)
{
    uint64_t e = (uint64_t)epoch ^ 0x5851F42D4C957F2Dull, x = seed;
    x = splitmix64(&x) ^ splitmix64(&e); /* a stream per (seed, epoch) */
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below(&x, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---------------------------------------------------------------- setup */

static mtgrad_status check_config(const mtgrad_train_config *c, char *err, size_t errlen)
{
    if (!c->bench || !c->method) {
        mtgradi_msg(err, errlen, "train: bench and method must be set");
        return MTGRAD_E_INVAL;
    }
    if (c->epochs < 0 || c->batch < 0 || c->limit_train < 0 || c->limit_test < 0 ||
        c->stl_task < -1) {
        mtgradi_msg(err, errlen, "train: epochs, batch and limits must be >= 0, stl_task >= -1");
        return MTGRAD_E_INVAL;
    }
    if (c->resume && !c->out_dir) {
        mtgradi_msg(err, errlen, "train: resume needs an output directory");
        return MTGRAD_E_INVAL;
    }
    return MTGRAD_OK;
}

/* The method's parameters as the aggregator reads them back (so "c=0.4" and "c=.40" agree),
 * without "threads", which does not change results. */
static mtgrad_status canonical_params(const char *method, int64_t k, const char *params,
                                      char *out, size_t len)
{
    mtgrad_aggregator *a = NULL;
    mtgrad_status st = mtgrad_aggregator_new(&a, method, k, params, NULL, 0);
    if (st != MTGRAD_OK) return st;
    const mtgrad_method *me = mtgrad_aggregator_method(a);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < mtgrad_method_param_count(me); i++) {
        const char *name = mtgrad_method_param_at(me, i)->name;
        if (strcmp(name, "threads") == 0) continue;
        char v[256];
        if (mtgrad_aggregator_get_param(a, name, v, sizeof v) < 0) continue;
        int w = snprintf(out + used, len - used, "%s%s=%s", used ? "," : "", name, v);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
    }
    mtgrad_aggregator_free(a);
    return MTGRAD_OK;
}

static mtgrad_status make_model(run *R, char *err, size_t errlen)
{
    mtgrad_model_spec spec = mtgrad_bench_model(R->b);
    int64_t bk = spec.k;
    if (R->c->stl_task >= bk) {
        mtgradi_msg(err, errlen, "train: stl_task %lld, but %s has %lld tasks",
                         (long long)R->c->stl_task, mtgrad_bench_loaded_name(R->b), (long long)bk);
        return MTGRAD_E_INVAL;
    }
    if (R->c->stl_task >= 0) { /* the trunk and head t alone */
        int64_t t = R->c->stl_task;
        spec.heads[0] = spec.heads[t];
        spec.losses[0] = spec.losses[t];
        spec.k = 1;
    }
    spec.max_batch = R->batch;
    mtgrad_status st = mtgrad_model_new(&R->m, &spec, R->c->seed, err, errlen);
    if (st != MTGRAD_OK) return st;
    R->k = spec.k;
    R->task0 = R->c->stl_task >= 0 ? R->c->stl_task : 0;
    R->in = mtgrad_model_input_size(R->m);
    int64_t want = R->tr->in_c * R->tr->in_h * R->tr->in_w;
    if (R->in != want || R->tr->k != bk || R->te->k != bk) {
        mtgradi_msg(err, errlen, "train: the model reads %lld inputs, the data has %lld",
                         (long long)R->in, (long long)want);
        return MTGRAD_E_SHAPE;
    }
    return MTGRAD_OK;
}

/* The recipe's optimizer, or config.optimizer's kind switched in by
 * mtgrad_optim_config_with_kind (the recipe's lr, schedule and weight decay). */
static mtgrad_status make_optim(run *R, char *err, size_t errlen)
{
    mtgrad_optim_config rec = mtgrad_bench_recipe(R->b).optim;
    R->optim = rec;
    const char *name = R->c->optimizer;
    if (!name || !*name) return MTGRAD_OK;
    mtgrad_optim_kind kind;
    if (mtgrad_optim_kind_parse(name, &kind) != MTGRAD_OK) {
        mtgradi_msg(err, errlen, "train: unknown optimizer '%s' (sgd, adam, adamw, rmsprop, "
                    "adagrad, adatask-adam, adatask-rmsprop, adatask-adagrad)", name);
        return MTGRAD_E_INVAL;
    }
    R->optim = mtgrad_optim_config_with_kind(&rec, kind);
    return MTGRAD_OK;
}

static mtgrad_status make_step(run *R, char *err, size_t errlen)
{
    const mtgrad_train_config *c = R->c;
    char params[2048];
    /* the run's seed seeds the method's draws unless the parameters name one */
    int w = snprintf(params, sizeof params, "seed=%" PRIu64 "%s%s",
                     c->seed & (((uint64_t)1 << 53) - 1), c->method_params && *c->method_params ? "," : "",
                     c->method_params ? c->method_params : "");
    if (w < 0 || (size_t)w >= sizeof params) {
        mtgradi_msg(err, errlen, "train: method parameters too long");
        return MTGRAD_E_INVAL;
    }
    mtgrad_status st = make_optim(R, err, errlen);
    if (st != MTGRAD_OK) return st;
    mtgrad_step_options so = mtgrad_step_options_default();
    so.task_sample = c->task_sample;
    so.grad_space = c->grad_space;
    so.seed = c->seed;
    st = mtgrad_mtl_step_new_ex(&R->s, R->m, c->method, params, &R->optim, &so, err, errlen);
    if (st != MTGRAD_OK) return st;
    R->nb = mtgrad_mtl_step_batches(R->s);
    if (R->nb != 1 && R->nb != 3) {
        mtgradi_msg(err, errlen, "train: a step of %d batches is not supported", R->nb);
        return MTGRAD_E_UNSUPPORTED;
    }
    char th[32];
    snprintf(th, sizeof th, "%d", c->threads < 1 ? 1 : c->threads);
    (void)mtgrad_aggregator_set_param(mtgrad_mtl_step_aggregator(R->s), "threads", th);
    char canon[1024];
    /* The step's own aggregator accepted these, so only memory can fail here; an empty text
     * would let a checkpoint of other parameters be resumed, so fail instead. */
    st = canonical_params(c->method, R->k, params, canon, sizeof canon);
    if (st != MTGRAD_OK) {
        mtgradi_msg(err, errlen, "train: cannot read back the method's parameters: %s",
                         mtgrad_status_str(st));
        return st;
    }
    snprintf(R->config, sizeof R->config,
             "bench=%s\nbench_params=%s\ndata_seed=%" PRIu64 "\nmethod=%s\nmethod_params=%s\n"
             "seed=%" PRIu64 "\nstl_task=%lld\nbatch=%lld\nntrain=%lld\nntest=%lld\n"
             "optimizer=%s\ntask_sample=%s\ngrad_space=%s\n",
             mtgrad_bench_loaded_name(R->b), c->bench_params ? c->bench_params : "", c->data_seed,
             mtgrad_method_name(mtgrad_aggregator_method(mtgrad_mtl_step_aggregator(R->s))),
             canon, c->seed, (long long)c->stl_task, (long long)R->batch, (long long)R->ntrain,
             (long long)R->ntest, mtgrad_optim_kind_name(R->optim.kind),
             c->task_sample ? c->task_sample : "",
             c->grad_space && *c->grad_space ? c->grad_space : "param");
    return MTGRAD_OK;
}

static mtgrad_status alloc_result(run *R, int64_t rows)
{
    mtgrad_train_result *r = mtgradi_calloc(1, sizeof *r);
    if (!r) return MTGRAD_E_NOMEM;
    R->r = r;
    size_t kk = (size_t)(rows * R->k), P = (size_t)mtgrad_model_num_params(R->m);
    r->train_loss = mtgradi_calloc(kk ? kk : 1, sizeof(double));
    r->test_loss = mtgradi_calloc(kk ? kk : 1, sizeof(double));
    r->test_metric = mtgradi_calloc(kk ? kk : 1, sizeof(double));
    r->times = mtgradi_calloc((size_t)(rows ? rows : 1) * MTGRAD_TIME_COUNT, sizeof(double));
    r->eval_seconds = mtgradi_calloc((size_t)(rows ? rows : 1), sizeof(double));
    r->lr = mtgradi_calloc((size_t)(rows ? rows : 1), sizeof(double));
    r->params = mtgradi_malloc(P * sizeof(float));
    R->xb = mtgradi_malloc((size_t)(R->nb * R->batch * R->in) * sizeof(float));
    R->yb = mtgradi_malloc((size_t)(R->nb * R->batch * R->k) * sizeof(float));
    R->perm = mtgradi_malloc((size_t)R->ntrain * sizeof(int64_t));
    if (R->nb > 1) {
        R->pool = mtgradi_malloc((size_t)R->ntrain * sizeof(int64_t));
        R->picks = mtgradi_malloc((size_t)R->batch * sizeof(int64_t));
        R->extra = mtgradi_malloc((size_t)(R->nb - 1) * (size_t)R->batch * sizeof(int64_t));
        if (!R->pool || !R->picks || !R->extra) return MTGRAD_E_NOMEM;
        for (int64_t i = 0; i < R->ntrain; i++) R->pool[i] = i;
    }
    if (!r->train_loss || !r->test_loss || !r->test_metric || !r->times || !r->eval_seconds ||
        !r->lr || !r->params || !R->xb || !R->yb || !R->perm)
        return MTGRAD_E_NOMEM;
    r->k = R->k;
    r->task0 = R->task0;
    r->bench_k = R->tr->k;
    r->batch = R->batch;
    r->ntrain = R->ntrain;
    r->ntest = R->ntest;
    r->steps_per_epoch = (R->ntrain + R->batch - 1) / R->batch;
    r->n_params = mtgrad_model_num_params(R->m);
    r->n_shared = mtgrad_model_num_shared(R->m);
    r->optim = R->optim;
    for (int64_t i = 0; i < R->k; i++) {
        r->metric[i] = mtgrad_bench_metric(R->b, R->task0 + i);
        const char *name = mtgrad_bench_task_name(R->b, R->task0 + i);
        snprintf(r->task_name[i], MTGRAD_TASK_NAME_MAX, "%s", name ? name : "task");
    }
    return MTGRAD_OK;
}

/* ---------------------------------------------------------------- checkpoints */

/* Curves of epoch e packed into one row of the checkpoint, and back. */
static void pack_row(const mtgrad_train_result *r, int64_t e, double *row)
{
    int64_t k = r->k;
    memcpy(row, r->train_loss + e * k, (size_t)k * sizeof *row);
    memcpy(row + k, r->test_loss + e * k, (size_t)k * sizeof *row);
    memcpy(row + 2 * k, r->test_metric + e * k, (size_t)k * sizeof *row);
    memcpy(row + 3 * k, r->times + e * MTGRAD_TIME_COUNT, MTGRAD_TIME_COUNT * sizeof *row);
    row[3 * k + MTGRAD_TIME_COUNT] = r->eval_seconds[e];
    row[3 * k + MTGRAD_TIME_COUNT + 1] = r->lr[e];
}

static void unpack_row(mtgrad_train_result *r, int64_t e, const double *row)
{
    int64_t k = r->k;
    memcpy(r->train_loss + e * k, row, (size_t)k * sizeof *row);
    memcpy(r->test_loss + e * k, row + k, (size_t)k * sizeof *row);
    memcpy(r->test_metric + e * k, row + 2 * k, (size_t)k * sizeof *row);
    memcpy(r->times + e * MTGRAD_TIME_COUNT, row + 3 * k, MTGRAD_TIME_COUNT * sizeof *row);
    r->eval_seconds[e] = row[3 * k + MTGRAD_TIME_COUNT];
    r->lr[e] = row[3 * k + MTGRAD_TIME_COUNT + 1];
}

static mtgrad_status save_checkpoint(run *R, int64_t epochs_done, char *err, size_t errlen)
{
    mtgradi_ckpt c;
    memset(&c, 0, sizeof c);
    c.config = R->config;
    c.epoch = epochs_done;
    c.k = R->k;
    c.n_params = mtgrad_model_num_params(R->m);
    c.steps = mtgrad_mtl_step_count(R->s);
    c.solver_warnings = mtgrad_mtl_step_solver_warnings(R->s);
    c.curve_cols = CURVE_COLS(R->k);
    mtgrad_model_get_rng(R->m, c.rng);
    c.params = mtgrad_model_params(R->m);
    mtgrad_optimizer *o = mtgrad_mtl_step_optimizer(R->s);
    mtgrad_aggregator *a = mtgrad_mtl_step_aggregator(R->s);
    mtgrad_status st = mtgrad_optimizer_save(o, NULL, &c.optim_len);
    if (st == MTGRAD_OK) st = mtgrad_aggregator_save(a, NULL, &c.agg_len);
    if (st == MTGRAD_OK) st = mtgrad_mtl_step_save(R->s, NULL, &c.step_len);
    c.optim = mtgradi_malloc(c.optim_len ? c.optim_len : 1);
    c.agg = mtgradi_malloc(c.agg_len ? c.agg_len : 1);
    c.step = mtgradi_malloc(c.step_len ? c.step_len : 1);
    c.curves = mtgradi_malloc((size_t)(epochs_done * c.curve_cols + 1) * sizeof(double));
    if (st == MTGRAD_OK && (!c.optim || !c.agg || !c.step || !c.curves)) st = MTGRAD_E_NOMEM;
    if (st == MTGRAD_OK) st = mtgrad_optimizer_save(o, c.optim, &c.optim_len);
    if (st == MTGRAD_OK) st = mtgrad_aggregator_save(a, c.agg, &c.agg_len);
    if (st == MTGRAD_OK) st = mtgrad_mtl_step_save(R->s, c.step, &c.step_len);
    if (st == MTGRAD_OK) {
        for (int64_t e = 0; e < epochs_done; e++) pack_row(R->r, e, c.curves + e * c.curve_cols);
        st = mtgradi_ckpt_write(R->c->out_dir, &c, err, errlen);
    } else {
        mtgradi_msg(err, errlen, "checkpoint: cannot save the optimizer, method or step state: %s",
                         mtgrad_status_str(st));
    }
    free(c.optim);
    free(c.agg);
    free(c.step);
    free(c.curves);
    return st;
}

/* The first line where two configuration texts differ, for the message. */
static void config_diff(const char *a, const char *b, char *out, size_t len)
{
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || strncmp(a, b, la) != 0) {
            snprintf(out, len, "the checkpoint has %.*s, this run has %.*s", (int)la, a, (int)lb, b);
            return;
        }
        a += la + (a[la] ? 1 : 0);
        b += lb + (b[lb] ? 1 : 0);
    }
    snprintf(out, len, "the configurations differ");
}

static mtgrad_status restore(run *R, const mtgradi_ckpt *c, char *err, size_t errlen)
{
    if (strcmp(c->config, R->config) != 0) {
        char why[1024];
        config_diff(c->config, R->config, why, sizeof why);
        mtgradi_msg(err, errlen,
                         "cannot resume from %s/%s: it was written for another configuration (%s)",
                         R->c->out_dir, MTGRAD_CHECKPOINT_FILE, why);
        return MTGRAD_E_STATE;
    }
    if (c->k != R->k || c->n_params != mtgrad_model_num_params(R->m) ||
        c->curve_cols != CURVE_COLS(R->k)) {
        mtgradi_msg(err, errlen, "cannot resume: the checkpoint's model has other shapes");
        return MTGRAD_E_STATE;
    }
    mtgrad_status st = mtgrad_optimizer_load(mtgrad_mtl_step_optimizer(R->s), c->optim, c->optim_len);
    if (st == MTGRAD_OK)
        st = mtgrad_aggregator_load(mtgrad_mtl_step_aggregator(R->s), c->agg, c->agg_len);
    if (st == MTGRAD_OK) st = mtgrad_mtl_step_load(R->s, c->step, c->step_len);
    if (st != MTGRAD_OK) {
        mtgradi_msg(err, errlen, "cannot resume: the checkpoint's optimizer, method or step state "
                         "does not load (%s)", mtgrad_status_str(st));
        return st == MTGRAD_E_NOMEM ? st : MTGRAD_E_STATE; /* memory is not the file's fault */
    }
    memcpy(mtgrad_model_params(R->m), c->params, (size_t)c->n_params * sizeof(float));
    mtgrad_model_set_rng(R->m, c->rng);
    mtgrad_mtl_step_set_counters(R->s, c->steps, c->solver_warnings);
    for (int64_t e = 0; e < c->epoch; e++) unpack_row(R->r, e, c->curves + e * c->curve_cols);
    R->start_epoch = R->r->resumed_epoch = c->epoch;
    return MTGRAD_OK;
}

/* Loads DIR/checkpoint.bin if resuming; a missing one means a fresh start. Sizes the result
 * for the larger of the planned epochs and those already in the checkpoint. */
static mtgrad_status resume_or_start(run *R, char *err, size_t errlen)
{
    mtgradi_ckpt c;
    memset(&c, 0, sizeof c);
    int have = 0;
    if (R->c->resume) {
        int missing = 0;
        mtgrad_status st = mtgradi_ckpt_read(R->c->out_dir, &c, &missing, err, errlen);
        if (st != MTGRAD_OK && !missing) return st;
        have = st == MTGRAD_OK;
    }
    int64_t rows = have && c.epoch > R->epochs ? c.epoch : R->epochs;
    mtgrad_status st = alloc_result(R, rows);
    if (st != MTGRAD_OK) mtgradi_msg(err, errlen, "train: out of memory");
    if (st == MTGRAD_OK && have) st = restore(R, &c, err, errlen);
    mtgradi_ckpt_free(&c);
    return st;
}

/* ---------------------------------------------------------------- epochs */

/* Samples idx[0..n) of the training set into batch b of xb/yb (targets task-major). */
static void gather(run *R, const int64_t *idx, int64_t n, int b)
{
    const mtgrad_dataset *d = R->tr;
    float *xb = R->xb + (int64_t)b * R->batch * R->in, *yb = R->yb + (int64_t)b * R->batch * R->k;
    for (int64_t j = 0; j < n; j++) {
        int64_t src = idx[j];
        memcpy(xb + j * R->in, d->x + src * R->in, (size_t)R->in * sizeof(float));
        for (int64_t i = 0; i < R->k; i++) yb[i * n + j] = d->y[(R->task0 + i) * d->n + src];
    }
}

/* The generator of the extra batches of step `step` of epoch e: a stream per (seed, e, step),
 * apart from the shuffle's stream per (seed, e). */
static uint64_t extra_stream(uint64_t seed, int64_t e, int64_t step)
{
    uint64_t x = seed ^ 0xD1B54A32D192ED03ull, h = splitmix64(&x);
    x = h ^ ((uint64_t)e * 0x8CB92BA72F3D8DD7ull);
    h = splitmix64(&x);
    x = h ^ ((uint64_t)step * 0xA0761D6478BD642Full);
    return splitmix64(&x);
}

/* Each batch a partial Fisher-Yates on the identity pool, undone afterwards so that no draw
 * depends on an earlier one (and the pool needs no initialisation per step). */
void mtgradi_eval_extra_batches(uint64_t seed, int64_t epoch, int64_t step, int64_t ntrain,
                                int64_t n, int count, int64_t *pool, int64_t *picks,
                                int64_t *idx)
{
    uint64_t x = extra_stream(seed, epoch, step);
    for (int b = 0; b < count; b++) {
        for (int64_t j = 0; j < n; j++) {
            int64_t p = j + (int64_t)below(&x, (uint64_t)(ntrain - j)), t = pool[j];
            picks[j] = p;
            pool[j] = pool[p];
            pool[p] = t;
        }
        memcpy(idx + (int64_t)b * n, pool, (size_t)n * sizeof *idx);
        for (int64_t j = n - 1; j >= 0; j--) {
            int64_t p = picks[j], t = pool[j];
            pool[j] = pool[p];
            pool[p] = t;
        }
    }
}

static mtgrad_status run_step(run *R, int64_t e, int64_t step, int64_t n, double *L, double *t)
{
    if (R->nb == 1) return mtgrad_mtl_step_run(R->s, R->xb, R->yb, n, L, t);
    mtgradi_eval_extra_batches(R->c->seed, e, step, R->ntrain, n, R->nb - 1, R->pool, R->picks,
                               R->extra);
    for (int b = 1; b < R->nb; b++) gather(R, R->extra + (b - 1) * n, n, b);
    const float *xs[3], *ys[3];
    for (int b = 0; b < 3; b++) {
        xs[b] = R->xb + (int64_t)b * R->batch * R->in;
        ys[b] = R->yb + (int64_t)b * R->batch * R->k;
    }
    return mtgrad_mtl_step_run_batches(R->s, xs, ys, 3, n, L, t);
}

static void report_progress(run *R, int64_t e, int64_t step, const double *lsum, int64_t seen,
                            int epoch_done)
{
    if (!R->c->progress) return;
    double mean[MTGRAD_NN_MAX_TASKS];
    for (int64_t i = 0; i < R->k; i++) mean[i] = seen ? lsum[i] / (double)seen : 0.0;
    mtgrad_train_progress p;
    memset(&p, 0, sizeof p);
    p.epoch = e;
    p.epochs = R->epochs;
    p.step = step;
    p.steps_per_epoch = R->r->steps_per_epoch;
    p.k = R->k;
    p.losses = mean;
    p.elapsed = now() - R->t_start;
    int64_t left = (R->epochs - e) * p.steps_per_epoch - step;
    p.eta = R->steps_here > 0 ? p.elapsed / (double)R->steps_here * (double)left : 0.0;
    if (epoch_done) {
        p.epoch_done = 1;
        p.test_loss = R->r->test_loss + e * R->k;
        p.test_metric = R->r->test_metric + e * R->k;
    }
    R->c->progress(&p, R->c->progress_user);
}

static mtgrad_status train_epoch(run *R, int64_t e, char *err, size_t errlen)
{
    mtgrad_status st = mtgrad_mtl_step_begin_epoch(R->s, e);
    if (st != MTGRAD_OK) {
        mtgradi_msg(err, errlen, "epoch %lld: %s", (long long)e, mtgrad_mtl_step_error(R->s));
        return st;
    }
    shuffle(R->perm, R->ntrain, R->c->seed, e);
    double lsum[MTGRAD_NN_MAX_TASKS] = {0}, *times = R->r->times + e * MTGRAD_TIME_COUNT;
    int64_t step = 0;
    for (int64_t first = 0; first < R->ntrain; first += R->batch, step++) {
        int64_t n = R->ntrain - first < R->batch ? R->ntrain - first : R->batch;
        gather(R, R->perm + first, n, 0);
        double L[MTGRAD_NN_MAX_TASKS], t[MTGRAD_TIME_COUNT];
        st = run_step(R, e, step, n, L, t);
        if (st != MTGRAD_OK) {
            mtgradi_msg(err, errlen, "epoch %lld, step %lld: %s", (long long)e,
                             (long long)step, mtgrad_mtl_step_error(R->s));
            return st;
        }
        for (int64_t i = 0; i < R->k; i++) lsum[i] += L[i] * (double)n;
        for (int p = 0; p < MTGRAD_TIME_COUNT; p++) times[p] += t[p];
        R->steps_here++;
        report_progress(R, e, step + 1, lsum, first + n, 0);
    }
    double *mean = R->r->train_loss + e * R->k;
    for (int64_t i = 0; i < R->k; i++) mean[i] = lsum[i] / (double)R->ntrain;
    st = mtgrad_mtl_step_end_epoch(R->s, mean);
    if (st != MTGRAD_OK)
        mtgradi_msg(err, errlen, "epoch %lld: %s", (long long)e, mtgrad_mtl_step_error(R->s));
    R->r->lr[e] = mtgrad_optimizer_lr(mtgrad_mtl_step_optimizer(R->s));
    return st;
}

static mtgrad_status run_epochs(run *R, char *err, size_t errlen)
{
    for (int64_t e = R->start_epoch; e < R->epochs; e++) {
        /* counted around the steps only: evaluation forwards are not the method's cost */
        mtgrad_pass_counts p0, p1;
        mtgrad_model_passes(R->m, &p0);
        mtgrad_status st = train_epoch(R, e, err, errlen);
        if (st != MTGRAD_OK) return st;
        mtgrad_model_passes(R->m, &p1);
        R->passes.forwards += p1.forwards - p0.forwards;
        R->passes.trunk_backwards += p1.trunk_backwards - p0.trunk_backwards;
        for (int i = 0; i < MTGRAD_NN_MAX_TASKS; i++)
            R->passes.head_backwards[i] += p1.head_backwards[i] - p0.head_backwards[i];
        double t0 = now();
        st = mtgradi_eval_evaluate(R->m, R->te, R->task0, R->ntest, R->xb, R->yb,
                                   R->r->test_loss + e * R->k, R->r->test_metric + e * R->k, err,
                                   errlen);
        if (st != MTGRAD_OK) return st;
        R->r->eval_seconds[e] = now() - t0;
        R->r->epochs = e + 1;
        if (R->c->out_dir) {
            st = save_checkpoint(R, e + 1, err, errlen);
            if (st != MTGRAD_OK) return st;
        }
        report_progress(R, e, R->r->steps_per_epoch, R->r->train_loss + e * R->k, 1, 1);
    }
    return MTGRAD_OK;
}

static void finish(run *R)
{
    mtgrad_train_result *r = R->r;
    if (r->epochs < R->start_epoch) r->epochs = R->start_epoch;
    r->steps = mtgrad_mtl_step_count(R->s);
    r->solver_warnings = mtgrad_mtl_step_solver_warnings(R->s);
    r->passes = R->passes;
    r->counted_steps = R->steps_here;
    memcpy(r->params, mtgrad_model_params(R->m), (size_t)r->n_params * sizeof(float));
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) r->peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
}

mtgrad_status mtgrad_train_run_bench(const mtgrad_bench *b, const mtgrad_train_config *c,
                                     mtgrad_train_result **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!b || !c || !out) {
        mtgradi_msg(err, errlen, "train: bench, config and out must not be NULL");
        return MTGRAD_E_INVAL;
    }
    mtgrad_status st = check_config(c, err, errlen);
    if (st != MTGRAD_OK) return st;
    run R;
    memset(&R, 0, sizeof R);
    R.b = b;
    R.c = c;
    R.t_start = now();
    R.tr = mtgrad_bench_train(b);
    R.te = mtgrad_bench_test(b);
    mtgrad_recipe rec = mtgrad_bench_recipe(b);
    R.epochs = c->epochs ? c->epochs : rec.epochs;
    R.batch = c->batch ? c->batch : rec.batch;
    R.ntrain = c->limit_train > 0 && c->limit_train < R.tr->n ? c->limit_train : R.tr->n;
    R.ntest = c->limit_test > 0 && c->limit_test < R.te->n ? c->limit_test : R.te->n;
    if (R.batch < 1 || R.ntrain < 1 || R.ntest < 1) {
        mtgradi_msg(err, errlen, "train: batch, training and test sets must be non-empty");
        return MTGRAD_E_INVAL;
    }
    mtgrad_nn_set_threads(c->threads);
    st = make_model(&R, err, errlen);
    if (st == MTGRAD_OK) st = make_step(&R, err, errlen);
    if (st == MTGRAD_OK) st = resume_or_start(&R, err, errlen);
    if (R.m) mtgrad_model_reset_passes(R.m); /* this process's training only */
    if (st == MTGRAD_OK) st = run_epochs(&R, err, errlen);
    if (st == MTGRAD_OK) {
        finish(&R);
        *out = R.r;
        R.r = NULL;
    }
    mtgrad_train_result_free(R.r);
    free(R.xb);
    free(R.yb);
    free(R.perm);
    free(R.pool);
    free(R.picks);
    free(R.extra);
    mtgrad_mtl_step_free(R.s);
    mtgrad_model_free(R.m);
    return st;
}

mtgrad_status mtgrad_train_run(const mtgrad_train_config *c, mtgrad_train_result **out,
                               char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!c || !out) {
        mtgradi_msg(err, errlen, "train: config and out must not be NULL");
        return MTGRAD_E_INVAL;
    }
    mtgrad_status st = check_config(c, err, errlen);
    if (st != MTGRAD_OK) return st;
    mtgrad_bench *b = NULL;
    st = mtgrad_bench_load(&b, c->bench, c->bench_params, c->data_seed, err, errlen);
    if (st != MTGRAD_OK) return st;
    st = mtgrad_train_run_bench(b, c, out, err, errlen);
    mtgrad_bench_free(b);
    return st;
}
