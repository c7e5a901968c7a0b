/*
 * mtgrad_train.h — multi-task training on top of mtgrad_nn.h: the MTL step (per-task backward
 * passes, balancing, optimizer step), the trainer (epochs, evaluation, checkpoints, resume) and
 * the evaluation protocol (Δm% against single-task baselines, mean ± standard error, mean rank).
 *
 * Legend: k tasks, d shared (trunk) parameters, n samples in a batch, P = all parameters.
 * Every function returns a status (mtgrad.h) and never exits or prints; messages go to
 * err/errlen where a function takes them (snprintf semantics, err may be NULL).
 */
#ifndef MTGRAD_TRAIN_H
#define MTGRAD_TRAIN_H

#include "mtgrad_nn.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- per-step timings */

/* Seconds spent by phase in one step (or summed over an epoch):
 *   FORWARD   forward passes (the step's, and FAMO's re-evaluation after the update);
 *   BACKWARD  backward passes (k per-task passes, or one weighted pass);
 *   GRAM      the Gram matrix M = G G^T (mtgrad_aggregator_times t[0]);
 *   SOLVE     the method's own work (the k x k solve, or an element-wise pass);
 *   COMBINE   the combination G^T w, clipping, scaling the heads;
 *   OPTIM     the optimizer step (and FAMO's logit update);
 *   TOTAL     the whole step. */
enum {
    MTGRAD_TIME_FORWARD = 0,
    MTGRAD_TIME_BACKWARD = 1,
    MTGRAD_TIME_GRAM = 2,
    MTGRAD_TIME_SOLVE = 3,
    MTGRAD_TIME_COMBINE = 4,
    MTGRAD_TIME_OPTIM = 5,
    MTGRAD_TIME_TOTAL = 6,
    MTGRAD_TIME_COUNT = 7
};

/* "forward", "backward", "gram", "solve", "combine", "optim", "total"; NULL out of range. */
const char *mtgrad_time_name(int phase);

/* ---------------------------------------------------------------- the MTL step */

typedef struct mtgrad_mtl_step mtgrad_mtl_step; /* opaque */

/*
 * One training step of a multi-task model (architecture.md §1):
 *   - loss-only methods (neither MTGRAD_NEEDS_GRAM nor MTGRAD_NEEDS_JACOBIAN: mean, sum, ls,
 *     si_ls, rlw, dwa, famo): w from mtgrad_weights_from_gram(M = NULL, losses), then one
 *     backward of sum_i w_i L_i (the heads get w_i grad L_i);
 *   - the other methods: k per-task backward passes whose trunk gradients are the rows of G
 *     (k x d, written in place), mtgrad_aggregate_f32 writes the direction into the trunk slice
 *     of the gradient; head i gets w_i grad L_i if the method has MTGRAD_HEADS_WEIGHTED and
 *     weights, else the unweighted grad L_i (methods.md §0.3);
 *   - then the optimizer step on all P parameters; for MTGRAD_NEEDS_LOSSES_AFTER (FAMO) one
 *     more train-mode forward on the same batch and mtgrad_aggregator_update.
 * Clipping: a method's `max_norm` parameter (famo, nash_mtl, fairgrad) is taken over by the
 * step: the aggregator's is set to 0 and the step scales the trunk gradient by
 * min(1, max_norm / (||trunk grad|| + 1e-6)) like torch's clip_grad_norm_ on the shared
 * parameters, after the direction is formed. The heads keep their unclipped gradients, as in
 * the references (which clip the shared parameters only).
 * DWA's weights are defined per epoch (from the last two epochs' mean losses): the step keeps
 * them fixed within an epoch; see mtgrad_mtl_step_begin_epoch / _end_epoch.
 *
 * The model is borrowed and must outlive the step (the step keeps a pointer to it; nothing else
 * is retained). The step owns its aggregator, optimizer, G and the gradient buffer.
 * method/params as for mtgrad_aggregator_new; optim as for mtgrad_optimizer_new.
 * Returns OK, E_INVAL (NULL, unknown method or parameter, bad optimizer config), E_SHAPE (a
 * method that needs G on a model without shared parameters), E_UNSUPPORTED, E_NOMEM.
 */
mtgrad_status mtgrad_mtl_step_new(mtgrad_mtl_step **out, mtgrad_model *model, const char *method,
                                  const char *params, const mtgrad_optim_config *optim,
                                  char *err, size_t errlen);

/*
 * What reshapes the step beyond the method (issue 5; methods.md 3.4, 4.2, 7.4, 8, 9):
 *   task_sample  NULL/"": every task backpropagates.
 *                "os:N" (SDMGrad-OS, 1 <= N <= k): each task is kept with probability N/k,
 *                  redrawn until at least one is; only the kept tasks backpropagate through
 *                  the trunk, and the method sees the |S| x d matrix of their gradients (one
 *                  aggregator per subset size, created on first use); the heads of the other
 *                  tasks get a zero gradient.
 *                "fast:K" (CAGrad-fastK, 1 <= K <= k): K-1 tasks drawn at random plus one
 *                  pseudo-task, the mean of the other k-K+1 tasks' losses (one trunk backward);
 *                  the method sees K rows. If the method has a `g0_weights` parameter (cagrad)
 *                  it is set to (1/k, ..., 1/k, (k-K+1)/k) so that g0 is the mean of all k tasks.
 *                Draws come from a generator seeded from (seed, step count): no extra state.
 *                Only for methods with MTGRAD_NEEDS_GRAM or MTGRAD_NEEDS_JACOBIAN.
 *   grad_space   NULL/""/"param": G is taken on the shared parameters.
 *                "rep" (MGDA-UB): the Gram matrix comes from the per-task gradients with respect
 *                  to the trunk's output Z (k head backwards, flattened over batch and features);
 *                  the method's weights w then give one trunk backward of sum_i w_i dL_i/dZ; the
 *                  heads get w_i grad L_i. Only for Gram-only methods with weights (NEEDS_GRAM,
 *                  not NEEDS_JACOBIAN, HAS_WEIGHTS).
 *   seed         the sampling draws.
 * Other reshaping comes from the method and the optimizer:
 *   - MTGRAD_NEEDS_FEEDBACK (marigold): one backward of sum_i lambda_i L_i, then h = G d estimated
 *     from loss values by the method's `estimator` parameter: forward (one forward at
 *     theta_s - mu d/||d||, the shared parameters moved, same dropout masks), central (two),
 *     step (the losses after the optimizer step on the same batch, or with reuse_next=1 the
 *     next step's losses: no extra forward), exact (k backwards: the oracle) — and
 *     mtgrad_aggregator_feedback;
 *   - sdmgrad with sampling=double: three batches per step (mtgrad_mtl_step_batches = 3): the
 *     cross Gram of the gradients on batches 2 and 3 gives the weights, batch 1 the direction;
 *   - nash_mtl's update_weights_every = N: every N-th step computes the weights (k backwards);
 *     the steps between reuse them with one backward of sum_i w_i L_i;
 *   - an AdaTask optimizer (mtgrad_optim_kind_per_task): k backwards, row i of G scaled by the
 *     method's weight w_i (ls: its preference weights = AdaTask's task weights omega), heads
 *     w_i grad L_i, and mtgrad_optimizer_step_tasks. The method must have weights.
 * Combinations that do not make sense (rep with sampling, either with an AdaTask optimizer or
 * with double sampling) are E_UNSUPPORTED with a message.
 */
typedef struct mtgrad_step_options {
    const char *task_sample;
    const char *grad_space;
    uint64_t seed;
} mtgrad_step_options;

/* task_sample NULL, grad_space NULL, seed 0. */
mtgrad_step_options mtgrad_step_options_default(void);

/* mtgrad_mtl_step_new with options (NULL = the defaults). The optimizer is created with
 * mtgrad_optimizer_new_tasks(k, d). Returns as mtgrad_mtl_step_new; E_INVAL for an option that
 * does not parse, E_UNSUPPORTED for one the method cannot take. */
mtgrad_status mtgrad_mtl_step_new_ex(mtgrad_mtl_step **out, mtgrad_model *model,
                                     const char *method, const char *params,
                                     const mtgrad_optim_config *optim,
                                     const mtgrad_step_options *opts, char *err, size_t errlen);

/* Independent batches one step reads: 3 for sdmgrad with sampling=double, else 1. */
int mtgrad_mtl_step_batches(const mtgrad_mtl_step *s);

/* The k tasks whose loss was backpropagated through the trunk by the last step (1/0 each; for
 * fast:K the pseudo-task's members count). NULL if s is NULL. */
const unsigned char *mtgrad_mtl_step_sampled(const mtgrad_mtl_step *s);

/* The step's own state (beyond the aggregator and optimizer, which have their own save/load):
 * weights reused between nash_mtl updates, marigold's losses kept for reuse_next. Same byte
 * conventions as mtgrad_aggregator_save / _load (E_STATE for a state of another step). */
mtgrad_status mtgrad_mtl_step_save(const mtgrad_mtl_step *s, void *buf, size_t *len);
mtgrad_status mtgrad_mtl_step_load(mtgrad_mtl_step *s, const void *buf, size_t len);
void mtgrad_mtl_step_free(mtgrad_mtl_step *s); /* NULL is a no-op */

/*
 * One step on a batch: x is n x input_size, targets k x n task-major (as mtgrad_model_forward).
 * losses_out: k outputs, the task losses before the update (may be NULL).
 * times_out: MTGRAD_TIME_COUNT outputs in seconds (may be NULL).
 * Returns OK; E_INVAL / E_SHAPE / E_NONFINITE / E_STATE / E_UNSUPPORTED from the stage that
 * failed, with that stage's message in mtgrad_mtl_step_error. A solver that stops at its
 * iteration cap or stalls (E_MAXITER / E_NOPROGRESS) is not an error: its best iterate is used,
 * the step returns OK and mtgrad_mtl_step_solver_warnings counts it. When the step fails before
 * the optimizer update the parameters are unchanged.
 */
mtgrad_status mtgrad_mtl_step_run(mtgrad_mtl_step *s, const float *x, const float *targets,
                                  int64_t n, double *losses_out, double *times_out);

/* The same with nb independent batches of n samples each (x[b], targets[b]); nb must equal
 * mtgrad_mtl_step_batches (E_INVAL otherwise, with a message). losses_out: batch 0's losses. */
mtgrad_status mtgrad_mtl_step_run_batches(mtgrad_mtl_step *s, const float *const *x,
                                          const float *const *targets, int nb, int64_t n,
                                          double *losses_out, double *times_out);

/* Start epoch `epoch` (0-based): sets the optimizer's learning rate from its schedule and, for
 * DWA, the epoch's weights from the mean losses recorded by _end_epoch. Returns OK, E_INVAL, or
 * the aggregator's status. */
mtgrad_status mtgrad_mtl_step_begin_epoch(mtgrad_mtl_step *s, int64_t epoch);
/* End of an epoch: mean_losses (k) are the epoch's mean training losses; DWA records them,
 * other methods ignore them. Returns OK, E_INVAL, or the aggregator's status. */
mtgrad_status mtgrad_mtl_step_end_epoch(mtgrad_mtl_step *s, const double *mean_losses);

/* The message of the last failed call ("" if none); owned by the step. Never NULL. */
const char *mtgrad_mtl_step_error(const mtgrad_mtl_step *s);

/* Borrowed views, valid while the step lives (NULL if s is NULL). */
mtgrad_aggregator *mtgrad_mtl_step_aggregator(mtgrad_mtl_step *s);
mtgrad_optimizer *mtgrad_mtl_step_optimizer(mtgrad_mtl_step *s);
/* The gradient the last step gave the optimizer (P floats, arena layout). */
const float *mtgrad_mtl_step_grad(const mtgrad_mtl_step *s);
/* G of the last step (k x d, row i = task i's trunk gradient); NULL for loss-only methods. */
const float *mtgrad_mtl_step_jacobian(const mtgrad_mtl_step *s);
/* The task weights of the last step (k); NULL for methods without weights. */
const double *mtgrad_mtl_step_weights(const mtgrad_mtl_step *s);
/* 1 if the method takes the loss-only path (no G), else 0. */
int mtgrad_mtl_step_loss_only(const mtgrad_mtl_step *s);
/* Steps whose solver returned E_MAXITER or E_NOPROGRESS, and steps taken, since creation (or
 * as set by _set_counters, for checkpoints). */
int64_t mtgrad_mtl_step_solver_warnings(const mtgrad_mtl_step *s);
int64_t mtgrad_mtl_step_count(const mtgrad_mtl_step *s);
void mtgrad_mtl_step_set_counters(mtgrad_mtl_step *s, int64_t steps, int64_t solver_warnings);

/* ---------------------------------------------------------------- the trainer */

/* What the progress callback sees. After every step (epoch_done = 0) and after every epoch's
 * evaluation (epoch_done = 1, test_loss/test_metric set). Pointers are valid during the call. */
typedef struct mtgrad_train_progress {
    int64_t epoch;            /* 0-based epoch in progress */
    int64_t epochs;           /* epochs of the whole run */
    int64_t step;             /* steps done in this epoch */
    int64_t steps_per_epoch;
    int64_t k;
    const double *losses;     /* k: mean training loss of this epoch so far */
    const double *test_loss;  /* k, only when epoch_done */
    const double *test_metric;/* k, only when epoch_done */
    double elapsed;           /* seconds since this process started (or resumed) the run */
    double eta;               /* estimated seconds to the end (0 when unknown) */
    int epoch_done;
} mtgrad_train_progress;

typedef void (*mtgrad_train_progress_fn)(const mtgrad_train_progress *p, void *user);

/* A training run. Strings are borrowed for the call. Fill with mtgrad_train_config_default. */
typedef struct mtgrad_train_config {
    const char *bench;         /* benchmark name (mtgrad_bench_load) */
    const char *bench_params;  /* NULL or "name=value,..." */
    uint64_t data_seed;        /* the data's seed (same data for every method) */
    const char *method;        /* balancing method ("ls" for a single-task run) */
    const char *method_params; /* NULL or "name=value,..."; seed defaults to `seed` */
    uint64_t seed;             /* model init, shuffling, dropout, the method's draws */
    int64_t epochs;            /* 0 = the benchmark's recipe */
    int64_t batch;             /* 0 = the benchmark's recipe */
    int threads;               /* engine threads (results do not depend on it); < 1 = 1 */
    const char *out_dir;       /* NULL = no checkpoint; else DIR/checkpoint.bin each epoch */
    int resume;                /* continue from DIR/checkpoint.bin if it exists */
    int64_t stl_task;          /* -1: multi-task; t >= 0: single-task model of task t */
    int64_t limit_train;       /* use the first N training samples (0 = all) */
    int64_t limit_test;        /* use the first N test samples (0 = all) */
    const char *optimizer;     /* NULL = the recipe's; else a kind name (mtgrad_optim_kind_parse)
                                  with the recipe's lr, schedule and weight decay */
    const char *task_sample;   /* mtgrad_step_options: NULL, "os:N", "fast:K" */
    const char *grad_space;    /* mtgrad_step_options: NULL, "param", "rep" */
    mtgrad_train_progress_fn progress; /* NULL = silent */
    void *progress_user;
} mtgrad_train_config;

/* bench "mmoe", method "ls", seeds 0, recipe epochs and batch, 1 thread, no out_dir, no resume,
 * stl_task -1, no limits, no progress callback, the recipe's optimizer, no task sampling,
 * parameter-space gradients. */
mtgrad_train_config mtgrad_train_config_default(void);

#define MTGRAD_TASK_NAME_MAX 48

/* The outcome of a run. Per-epoch arrays have `epochs` rows (row e = epoch e), row-major. */
typedef struct mtgrad_train_result {
    int64_t k;               /* tasks of the trained model (1 for a single-task run) */
    int64_t task0;           /* the benchmark task of model task 0 (stl_task, or 0) */
    int64_t bench_k;         /* tasks of the benchmark */
    int64_t epochs;          /* epochs completed */
    int64_t resumed_epoch;   /* epochs loaded from a checkpoint (0 if none) */
    int64_t steps;           /* optimizer steps in total */
    int64_t steps_per_epoch, batch, ntrain, ntest;
    int64_t n_params, n_shared;
    int64_t solver_warnings; /* steps whose solver hit its cap or stalled */
    mtgrad_optim_config optim;
    mtgrad_metric_kind metric[MTGRAD_NN_MAX_TASKS];
    char task_name[MTGRAD_NN_MAX_TASKS][MTGRAD_TASK_NAME_MAX];
    double *train_loss;   /* epochs x k: mean training loss of the epoch (sample-weighted) */
    double *test_loss;    /* epochs x k: mean test loss after the epoch */
    double *test_metric;  /* epochs x k: accuracy (CE: argmax, BCE: logit > 0) or MSE */
    double *times;        /* epochs x MTGRAD_TIME_COUNT: step phases summed over the epoch */
    double *eval_seconds; /* epochs: evaluation time */
    double *lr;           /* epochs: the learning rate of the epoch */
    float *params;        /* n_params: the final parameters */
    double peak_rss_mb;   /* peak resident memory of the process (getrusage) */
    mtgrad_pass_counts passes; /* the model's passes during training steps (not evaluation),
                                  over the epochs this process ran (not those resumed) */
    int64_t counted_steps;     /* the steps those passes belong to */
} mtgrad_train_result;

/*
 * Train as configured: load the benchmark, build the model (the benchmark's, or its trunk and
 * head stl_task alone), and for each epoch shuffle the training set with a generator seeded
 * from (seed, epoch), run the steps (a step that reads 3 batches gets the epoch's batch and two
 * more of the same size drawn uniformly without replacement by a generator seeded from (seed,
 * epoch, step): no extra state, so resume stays bit-exact), evaluate on the test set, and
 * (out_dir set) write DIR/checkpoint.bin atomically (temp file, fsync, rename). With resume set
 * and a checkpoint present the run continues from it and ends with the same bits as an
 * uninterrupted run; a checkpoint written for another configuration (benchmark, its
 * parameters, data seed, method, its parameters, seed, stl_task, batch, limits, optimizer,
 * task_sample, grad_space) is refused with E_STATE and a message naming the difference; a
 * corrupt one with E_STATE. Without a checkpoint, resume starts afresh.
 * The epoch count is not part of the configuration: a run can be resumed with more epochs.
 * *out (owned by the caller, free with mtgrad_train_result_free) is set on OK only.
 * Threads: calls mtgrad_nn_set_threads(c->threads), the engine's process-wide setting; results
 * do not depend on it, but concurrent runs in one process share it.
 * Returns OK, E_INVAL (bad config), E_IO (data, checkpoint write), E_STATE, E_NOMEM, or a
 * step's status (E_NONFINITE when training diverges, with the epoch and step in err).
 */
mtgrad_status mtgrad_train_run(const mtgrad_train_config *c, mtgrad_train_result **out,
                               char *err, size_t errlen);
/* The same on a benchmark already loaded (borrowed; c->bench, bench_params and data_seed must
 * describe it: they enter the checkpoint's fingerprint). Used to train many models on one
 * dataset without reloading it. */
mtgrad_status mtgrad_train_run_bench(const mtgrad_bench *b, const mtgrad_train_config *c,
                                     mtgrad_train_result **out, char *err, size_t errlen);
void mtgrad_train_result_free(mtgrad_train_result *r); /* NULL is a no-op */

/* The checkpoint's file name inside out_dir. */
#define MTGRAD_CHECKPOINT_FILE "checkpoint.bin"

/* ---------------------------------------------------------------- evaluation protocol */

/* 1 if a larger value of the metric is better (accuracy), 0 if smaller is (MSE). */
int mtgrad_metric_higher_better(mtgrad_metric_kind m);
const char *mtgrad_metric_name(mtgrad_metric_kind m); /* "accuracy", "mse" */

/*
 * Δm% (Maninis et al. 2019; benchmarks.md §1) of K metrics m against a baseline b:
 *   (1/K) sum_j (-1)^{hb_j} (m_j - b_j) / b_j * 100,   hb_j = 1 if higher is better.
 * Negative = better than the baseline. Returns OK, E_INVAL (NULL, a baseline of 0),
 * E_SHAPE (K < 1), E_NONFINITE (NaN/Inf in the inputs).
 */
mtgrad_status mtgrad_delta_m(const double *m, const double *b, const int *higher_better,
                             int64_t K, double *out);

/* Mean and standard error sd/sqrt(n) with the n-1 sample deviation; se = 0 when n = 1.
 * Returns OK, E_INVAL (NULL), E_SHAPE (n < 1), E_NONFINITE. */
mtgrad_status mtgrad_mean_se(const double *x, int64_t n, double *mean, double *se);

/*
 * Mean rank (MR): values is n_methods x K (row = a method's K metrics); for each metric the
 * methods are ranked 1 (best) .. n_methods, ties sharing the average of their ranks; mr[i] =
 * method i's mean rank over the K metrics. Returns OK, E_INVAL, E_SHAPE, E_NONFINITE.
 */
mtgrad_status mtgrad_mean_rank(const double *values, int64_t n_methods, int64_t K,
                               const int *higher_better, double *mr);

#ifdef __cplusplus
}
#endif

#endif /* MTGRAD_TRAIN_H */
