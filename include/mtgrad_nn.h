/*
 * mtgrad_nn.h — the small training engine: models (a shared trunk and k task heads), losses,
 * optimizers, datasets and benchmarks. The trainer (runs, checkpoints, reports) is declared in
 * mtgrad_train.h on top of this header.
 *
 * Legend used throughout: k tasks, d shared (trunk) parameters, n samples in a batch.
 * Every function returns a status (mtgrad.h) and never exits; messages go to err/errlen where
 * a function takes them (snprintf semantics, err may be NULL).
 */
#ifndef MTGRAD_NN_H
#define MTGRAD_NN_H

#include "mtgrad.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- threads */

/* Threads used by the engine (OpenMP regions and OpenBLAS). n < 1 means 1. Results do not
 * depend on it: every reduction has a fixed order. */
void mtgrad_nn_set_threads(int n);
int mtgrad_nn_threads(void);

/* ---------------------------------------------------------------- models */

/* Per-task losses, each the mean over the batch of:
 *   CE  softmax cross-entropy of the head's logits (width = classes) with the class index;
 *   MSE (output - target)^2 (head width 1);
 *   BCE binary cross-entropy with logits (head width 1, target 0 or 1), computed stably. */
typedef enum mtgrad_loss_kind {
    MTGRAD_LOSS_CE = 0,
    MTGRAD_LOSS_MSE = 1,
    MTGRAD_LOSS_BCE = 2
} mtgrad_loss_kind;

#define MTGRAD_NN_MAX_TASKS 64

/*
 * A model: input of shape (in_c, in_h, in_w) (a feature vector is (features, 1, 1)), a shared
 * trunk, and k heads that each read the trunk's output. Layer lists are comma-separated:
 *   linear:OUT              fully connected (flattens its input, as after torch's Flatten)
 *   conv:OUT:K[:STRIDE[:PAD]]  2-D convolution, square kernel K (stride 1, padding 0 by default)
 *   maxpool:K[:STRIDE]      max pooling (stride K by default)
 *   relu                    max(x, 0)
 *   dropout:P               element dropout (train mode only; scaled by 1/(1-P) like torch)
 *   dropout2d:P             channel dropout (a whole channel of a sample is kept or dropped)
 *   flatten                 (c, h, w) -> (c*h*w, 1, 1)
 * A head's list may be "" (the head is the identity: its output is the trunk's output).
 * e.g. trunk "conv:10:9,relu,maxpool:2,conv:20:5,relu,maxpool:2,flatten,linear:50,relu",
 *      heads "linear:10".
 */
typedef struct mtgrad_model_spec {
    int64_t in_c, in_h, in_w;
    const char *trunk;
    int64_t k;
    const char *heads[MTGRAD_NN_MAX_TASKS];        /* k layer lists */
    mtgrad_loss_kind losses[MTGRAD_NN_MAX_TASKS];  /* k loss kinds */
    int64_t max_batch;                             /* largest n forward() will be given */
} mtgrad_model_spec;

typedef struct mtgrad_model mtgrad_model; /* opaque */

/*
 * Build a model and initialise its parameters as PyTorch does by default (weights and biases of
 * Linear and Conv2d uniform in ±1/sqrt(fan_in)), drawing from a generator seeded with `seed`.
 * Dropout masks draw from the model's own generator (seeded from `seed` too).
 * Returns OK, E_INVAL (NULL, unparsable layer list, bad shape such as a kernel larger than its
 * input), E_SHAPE (k < 1 or k > MTGRAD_NN_MAX_TASKS, max_batch < 1), E_NOMEM.
 */
mtgrad_status mtgrad_model_new(mtgrad_model **out, const mtgrad_model_spec *spec, uint64_t seed,
                               char *err, size_t errlen);
void mtgrad_model_free(mtgrad_model *m); /* NULL is a no-op */

int64_t mtgrad_model_k(const mtgrad_model *m);
int64_t mtgrad_model_max_batch(const mtgrad_model *m);
int64_t mtgrad_model_input_size(const mtgrad_model *m);   /* in_c*in_h*in_w */
int64_t mtgrad_model_output_width(const mtgrad_model *m, int64_t task);
mtgrad_loss_kind mtgrad_model_loss(const mtgrad_model *m, int64_t task);

/*
 * Parameters live in one arena of mtgrad_model_num_params() floats:
 *   [ trunk (d floats) | head 0 | head 1 | ... | head k-1 ]
 * Within the trunk and within each head, layers in order, each layer's weight then bias, in
 * PyTorch's layouts (Linear weight out x in, Conv2d weight out x in x K x K): the arena is the
 * concatenation of the tensors of torch's state_dict() in the same order.
 */
int64_t mtgrad_model_num_params(const mtgrad_model *m);
int64_t mtgrad_model_num_shared(const mtgrad_model *m);                /* d */
int64_t mtgrad_model_head_offset(const mtgrad_model *m, int64_t task); /* into the arena */
int64_t mtgrad_model_head_size(const mtgrad_model *m, int64_t task);
float *mtgrad_model_params(mtgrad_model *m);

/* The parameter tensors (trunk first, then heads), for loading weights from elsewhere:
 * name is like "trunk.0.weight" or "head1.2.bias" (the index is the layer's position in its
 * list). Returns OK or E_INVAL (index out of range, NULL outputs). */
int64_t mtgrad_model_tensor_count(const mtgrad_model *m);
mtgrad_status mtgrad_model_tensor(const mtgrad_model *m, int64_t index, const char **name,
                                  int64_t *offset, int64_t *numel);

/* The dropout generator's state (4 words), for checkpoints. */
void mtgrad_model_get_rng(const mtgrad_model *m, uint64_t state[4]);
void mtgrad_model_set_rng(mtgrad_model *m, const uint64_t state[4]);

/*
 * Forward pass on n samples (x: n x input_size, row-major). train != 0 applies dropout and keeps
 * every activation needed by the backward functions below; train == 0 is inference.
 * targets: k x n (task-major: targets[i*n + j] is sample j's target for task i; class index as
 * a float for CE, 0/1 for BCE, the value for MSE), or NULL to skip the losses.
 * losses: k outputs (mean loss per task), or NULL. Parameters are read from the arena.
 * Returns OK, E_INVAL (NULL x, bad class index), E_SHAPE (n < 1 or n > max_batch),
 * E_NONFINITE (a loss or output is NaN/Inf).
 */
mtgrad_status mtgrad_model_forward(mtgrad_model *m, const float *x, const float *targets,
                                   int64_t n, int train, double *losses);

/* The head outputs of the last forward pass: n x width (row-major); NULL if task is invalid. */
const float *mtgrad_model_output(const mtgrad_model *m, int64_t task, int64_t *width);

/* The message of the last failed forward or backward call on m (never NULL). */
const char *mtgrad_model_error(const mtgrad_model *m);

/*
 * Backward of task `task`'s loss alone, after a train-mode forward:
 *   trunk_grad: d floats, overwritten with dL_task/d(trunk) (may be row `task` of G);
 *   grad: the full arena-sized gradient buffer; head `task`'s slice is overwritten with
 *         dL_task/d(head) (other slices untouched). May be NULL to skip the head.
 * Returns OK, E_INVAL (no train forward since the last parameter change is not checked; NULL
 * trunk_grad, bad task), E_STATE (no train-mode forward before).
 */
mtgrad_status mtgrad_model_backward_task(mtgrad_model *m, int64_t task, float *trunk_grad,
                                         float *grad);

/*
 * Backward of sum_i w[i] * L_i (one pass through the trunk), after a train-mode forward:
 * grad (arena-sized) is overwritten: trunk slice with the trunk gradient, head i's slice with
 * w[i] * dL_i/d(head i). w: k weights (NULL = all ones). Returns OK, E_INVAL, E_STATE.
 */
mtgrad_status mtgrad_model_backward_weighted(mtgrad_model *m, const double *w, float *grad);

/*
 * Representation gradients (MGDA-UB, methods.md 3.4; one trunk backward for k tasks). After a
 * train-mode forward with targets:
 *   mtgrad_model_rep_size: floats per sample of the trunk's output Z (the heads' input);
 *   backward_head: head `task` alone: rep_grad (n x rep_size, overwritten) = dL_task/dZ, and head
 *     `task`'s slice of grad (arena-sized; NULL to skip) = dL_task/d(head). The trunk is not
 *     touched;
 *   backward_trunk: backpropagate a gradient at Z (n x rep_size, read only; e.g. a weighted sum
 *     of backward_head outputs) through the trunk: trunk_grad (d floats) is overwritten.
 * backward_task(i) = backward_head(i) then backward_trunk, bit for bit.
 * Returns OK, E_INVAL (NULL, bad task), E_STATE (no train-mode forward before).
 */
int64_t mtgrad_model_rep_size(const mtgrad_model *m);
mtgrad_status mtgrad_model_backward_head(mtgrad_model *m, int64_t task, float *rep_grad,
                                         float *grad);
mtgrad_status mtgrad_model_backward_trunk(mtgrad_model *m, const float *rep_grad,
                                          float *trunk_grad);

/*
 * Pass counters (what a training step really did; tests and `mtgrad bench --train` read them):
 *   forwards          successful mtgrad_model_forward calls (train or inference);
 *   trunk_backwards   passes through the trunk (backward_task, backward_weighted, backward_trunk);
 *   head_backwards[i] passes through head i (backward_task(i), backward_head(i), and
 *                     backward_weighted with w_i != 0).
 * Counted since mtgrad_model_new or the last reset.
 */
typedef struct mtgrad_pass_counts {
    int64_t forwards;
    int64_t trunk_backwards;
    int64_t head_backwards[MTGRAD_NN_MAX_TASKS];
} mtgrad_pass_counts;
void mtgrad_model_passes(const mtgrad_model *m, mtgrad_pass_counts *c); /* zeros if m is NULL */
void mtgrad_model_reset_passes(mtgrad_model *m);

/* ---------------------------------------------------------------- optimizers */

typedef enum mtgrad_optim_kind {
    MTGRAD_OPTIM_SGD = 0,   /* torch.optim.SGD: momentum, dampening 0, L2 weight decay */
    MTGRAD_OPTIM_ADAM = 1,  /* torch.optim.Adam: L2 weight decay added to the gradient */
    MTGRAD_OPTIM_ADAMW = 2, /* torch.optim.AdamW: decoupled weight decay p -= lr*wd*p */
    MTGRAD_OPTIM_RMSPROP = 3, /* torch.optim.RMSprop: v = alpha v + (1-alpha) g^2 (alpha = beta2),
                                 p -= lr g / (sqrt(v) + eps); L2 weight decay; no momentum */
    MTGRAD_OPTIM_ADAGRAD = 4, /* torch.optim.Adagrad: s += g^2, p -= lr g / (sqrt(s) + eps);
                                 L2 weight decay; lr_decay 0, initial accumulator 0 */
    /* AdaTask (Yang et al., AAAI 2023; methods.md 8): the shared parameters keep separate
     * moments per task (2k x d floats for Adam, k x d for RMSProp and AdaGrad) and take the
     * per-task steps one after the other (EnnengYang/AdaTask adatask.py); the task-specific
     * parameters use the plain optimizer of the same family on the summed gradient. Created
     * with mtgrad_optimizer_new_tasks, stepped with mtgrad_optimizer_step_tasks. Weight decay
     * is ignored on the shared parameters, as in the reference, and applied to the others. */
    MTGRAD_OPTIM_ADATASK_ADAM = 5,
    MTGRAD_OPTIM_ADATASK_RMSPROP = 6,
    MTGRAD_OPTIM_ADATASK_ADAGRAD = 7
} mtgrad_optim_kind;

/* "sgd", "adam", "adamw", "rmsprop", "adagrad", "adatask-adam", "adatask-rmsprop",
 * "adatask-adagrad"; NULL for an unknown kind. */
const char *mtgrad_optim_kind_name(mtgrad_optim_kind kind);
/* The kind of a name above. Returns OK or E_INVAL (unknown name, NULL). */
mtgrad_status mtgrad_optim_kind_parse(const char *name, mtgrad_optim_kind *kind);
/* 1 for the AdaTask kinds (per-task moments on the shared parameters), else 0. */
int mtgrad_optim_kind_per_task(mtgrad_optim_kind kind);

#define MTGRAD_OPTIM_MAX_MILESTONES 16

/* Learning-rate schedule by epoch: lr(e) = lr * gamma^(number of milestones <= e) when
 * milestones are given (MultiStepLR), else lr * gamma^floor(e / step_size) when step_size > 0
 * (StepLR), else constant. */
typedef struct mtgrad_optim_config {
    mtgrad_optim_kind kind;
    double lr;
    double momentum;        /* SGD */
    double weight_decay;
    double beta1, beta2, eps; /* Adam, AdamW */
    int64_t step_size;
    int64_t n_milestones;
    int64_t milestones[MTGRAD_OPTIM_MAX_MILESTONES];
    double gamma;
} mtgrad_optim_config;

/* torch's defaults for `kind` (Adam: lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 0; AdamW: wd 1e-2;
 * SGD: lr 1e-2 — torch has no SGD default lr —, momentum 0; RMSprop: lr 1e-2, beta2 = alpha
 * 0.99, eps 1e-8; Adagrad: lr 1e-2, eps 1e-10; the AdaTask kinds: those of their family), no
 * schedule, gamma 0.1. */
mtgrad_optim_config mtgrad_optim_config_default(mtgrad_optim_kind kind);

/* A recipe's configuration c switched to another kind (`--optimizer`): c's learning rate,
 * schedule and weight decay; c's betas, eps and momentum when `kind` uses the same constants
 * (Adam, AdamW, AdaTask-Adam; RMSprop, AdaTask-RMSprop; Adagrad, AdaTask-Adagrad), else torch's
 * defaults for `kind` (RMSprop and Adagrad must not inherit Adam's eps). kind == c->kind: *c. */
mtgrad_optim_config mtgrad_optim_config_with_kind(const mtgrad_optim_config *c,
                                                  mtgrad_optim_kind kind);

typedef struct mtgrad_optimizer mtgrad_optimizer; /* opaque: moments for n parameters */

/* Returns OK, E_INVAL (NULL, lr <= 0, bad betas/eps/momentum, unsorted milestones), E_SHAPE
 * (n < 1), E_NOMEM. */
mtgrad_status mtgrad_optimizer_new(mtgrad_optimizer **out, const mtgrad_optim_config *c,
                                   int64_t n, char *err, size_t errlen);
void mtgrad_optimizer_free(mtgrad_optimizer *o);

/* An optimizer of n parameters whose first d are shared by k tasks: the AdaTask kinds need it
 * (per-task moments on those d); the other kinds accept it and ignore k and d.
 * Returns as mtgrad_optimizer_new, and E_SHAPE (k < 1, k > MTGRAD_NN_MAX_TASKS, d < 0, d > n).
 * mtgrad_optimizer_new with an AdaTask kind is E_INVAL (it needs k and d). */
mtgrad_status mtgrad_optimizer_new_tasks(mtgrad_optimizer **out, const mtgrad_optim_config *c,
                                         int64_t n, int64_t k, int64_t d, char *err,
                                         size_t errlen);
/* 1 if the optimizer keeps per-task moments (an AdaTask kind), else 0. */
int mtgrad_optimizer_per_task(const mtgrad_optimizer *o);

/* Sets the learning rate of epoch `epoch` (0-based) from the schedule. */
void mtgrad_optimizer_set_epoch(mtgrad_optimizer *o, int64_t epoch);
double mtgrad_optimizer_lr(const mtgrad_optimizer *o);
int64_t mtgrad_optimizer_steps(const mtgrad_optimizer *o);

/* One step on the n parameters with gradient grad (exactly torch's update, in float32 like
 * torch on CPU). Returns OK, E_INVAL (NULL), E_NONFINITE (a NaN/Inf gradient: nothing changed). */
mtgrad_status mtgrad_optimizer_step(mtgrad_optimizer *o, float *params, const float *grad);

/*
 * One AdaTask step: params[0, d) from the k per-task gradients G (row i at G + i*ldg, d floats:
 * the gradient of w_i L_i on the shared parameters), params[d, n) from grad[d, n) with the
 * plain optimizer (grad may be the arena-sized buffer; its first d floats are not read).
 * With k = 1 the result equals mtgrad_optimizer_step of the plain kind bit for bit (weight decay
 * 0). Returns OK, E_INVAL (NULL, ldg < d), E_UNSUPPORTED (not an AdaTask optimizer),
 * E_NONFINITE (NaN/Inf in G or grad: nothing changed). mtgrad_optimizer_step on an AdaTask
 * optimizer is E_UNSUPPORTED.
 */
mtgrad_status mtgrad_optimizer_step_tasks(mtgrad_optimizer *o, float *params, const float *grad,
                                          const float *G, int64_t ldg);

/* Moments, step count and current epoch as bytes (same conventions as mtgrad_aggregator_save:
 * buf NULL -> *len = size needed; E_IO if too small; load: E_STATE if not a state of an
 * optimizer of this kind and size, or corrupt). */
mtgrad_status mtgrad_optimizer_save(const mtgrad_optimizer *o, void *buf, size_t *len);
mtgrad_status mtgrad_optimizer_load(mtgrad_optimizer *o, const void *buf, size_t len);

/* ---------------------------------------------------------------- datasets and benchmarks */

/* A dataset in memory: x is n x (in_c*in_h*in_w), y is k x n task-major (as forward() takes). */
typedef struct mtgrad_dataset {
    int64_t n, k;
    int64_t in_c, in_h, in_w;
    float *x;
    float *y;
} mtgrad_dataset;

/* Per-task evaluation metric. Accuracy: higher is better; MSE: lower is better. */
typedef enum mtgrad_metric_kind {
    MTGRAD_METRIC_ACCURACY = 0,
    MTGRAD_METRIC_MSE = 1
} mtgrad_metric_kind;

/* The training recipe a benchmark comes with (what its paper used, scaled to this machine). */
typedef struct mtgrad_recipe {
    int64_t epochs;
    int64_t batch;
    mtgrad_optim_config optim;
} mtgrad_recipe;

typedef struct mtgrad_bench mtgrad_bench; /* opaque: a loaded benchmark */

/* The benchmarks by name: "mmoe", "multifashion", "fashion-k" ("toy" is not a dataset: see
 * mtgrad_toy_* below). help: the parameters a benchmark accepts, one per line. */
size_t mtgrad_bench_count(void);
const char *mtgrad_bench_name(size_t i);    /* NULL if i >= count */
const char *mtgrad_bench_summary(size_t i);
const char *mtgrad_bench_help(size_t i);

/*
 * Load (or generate) a benchmark. params: NULL, "" or "name=value,..." (see help), e.g. mmoe
 * "p=0.5,k=2,ntrain=10000,ntest=5000", fashion-k "k=5,grouping=ovr", multifashion
 * "ntrain=120000,ntest=20000". Data generation is deterministic in `seed` (the data seed, kept
 * separate from the model's seed so that every method sees the same data).
 * Returns OK, E_INVAL (unknown benchmark or parameter), E_IO (data files missing or corrupt:
 * the message names the Debian package to install), E_NOMEM.
 */
mtgrad_status mtgrad_bench_load(mtgrad_bench **out, const char *name, const char *params,
                                uint64_t seed, char *err, size_t errlen);
void mtgrad_bench_free(mtgrad_bench *b);

const char *mtgrad_bench_loaded_name(const mtgrad_bench *b);
const mtgrad_dataset *mtgrad_bench_train(const mtgrad_bench *b);
const mtgrad_dataset *mtgrad_bench_test(const mtgrad_bench *b);
/* The model (max_batch set to the recipe's batch; its layer-list strings belong to b and live
 * until mtgrad_bench_free), the recipe, task names and metrics. */
mtgrad_model_spec mtgrad_bench_model(const mtgrad_bench *b);
mtgrad_recipe mtgrad_bench_recipe(const mtgrad_bench *b);
const char *mtgrad_bench_task_name(const mtgrad_bench *b, int64_t task);
mtgrad_metric_kind mtgrad_bench_metric(const mtgrad_bench *b, int64_t task);

/* ---------------------------------------------------------------- the CAGrad toy */

/*
 * The 2-task toy of CAGrad (benchmarks.md §3), with gradients through max/abs as autograd takes
 * them. setting 0: the CAGrad paper (L1, L2); setting 1: Nash-MTL/FAMO (0.1*L1, L2).
 * Writes the two losses and, if grad != NULL, their gradients (grad[0..1] = dL1/dθ,
 * grad[2..3] = dL2/dθ, i.e. the 2 x 2 matrix G).
 */
void mtgrad_toy_eval(const double theta[2], int setting, double losses[2], double grad[4]);

/* The published starting points of a setting (5 each); returns how many were written. */
int mtgrad_toy_starts(int setting, double starts[5][2]);

/*
 * The Pareto set of the toy (the same for both settings: scaling a task keeps it) is the curve
 * θ2 = p(θ1), θ1 ∈ [-7, 7], where the two gradients are opposite: p(0) = -8.3551 (the minimum
 * of the mean loss), p(±7) = -8.4345 (the single-task minima). The papers draw it as the segment
 * θ2 ≈ -8.3552. mtgrad_toy_pareto_theta2 returns p(θ1) (θ1 clamped to [-7, 7]; NaN if θ1 is NaN).
 * mtgrad_toy_reached: 1 if θ1 ∈ [-7.05, 7.05] and |θ2 - p(θ1)| <= 0.05, else 0.
 */
double mtgrad_toy_pareto_theta2(double theta1);
int mtgrad_toy_reached(const double theta[2]);

/* Default number of steps of a toy run: setting 0 (CAGrad) 100000, as CAGrad's toy.py (CAGrad
 * c = 0.5 needs more than 50000 from (-8.5, 7.5) and (9, 9)); setting 1 (Nash-MTL) 50000, the
 * Nash-MTL and FAMO code default (the Nash-MTL paper's 35000 leaves plain Adam on the mean
 * still travelling from (-8.5, 7.5)). Adam at lr 1e-3. -1 for an unknown setting. */
int64_t mtgrad_toy_default_steps(int setting);

/* Number of points a trajectory of `steps` steps recorded every `stride` steps holds: the start,
 * the points after steps stride, 2*stride, ..., and the final point. 0 if steps < 0 or
 * stride < 1. */
int64_t mtgrad_toy_traj_len(int64_t steps, int64_t stride);

/*
 * One toy run: θ starts at `start` and takes `steps` Adam steps (torch's formula in double,
 * betas 0.9/0.999, eps 1e-8, learning rate lr; steps <= 0 means mtgrad_toy_default_steps,
 * lr <= 0 means 1e-3) along the direction the core method `method` (with `params`, as for
 * mtgrad_aggregator_new) computes from the 2 x 2 matrix G of the task gradients.
 * Methods that read losses (si_ls, dwa, famo) get L_i - L*_i with L* = (-21 s1, -21 s2), s the
 * setting's task scales: the toy's losses are negative (down to -20) and these methods need
 * them positive; -21 is the lower bound the FAMO code uses on the toy. Methods with
 * MTGRAD_NEEDS_LOSSES_AFTER get mtgrad_aggregator_update with the losses after each step.
 *   traj: 2 * mtgrad_toy_traj_len(steps, stride) doubles (θ1, θ2 pairs), or NULL;
 *   final_theta: 2 outputs, or NULL; reached: mtgrad_toy_reached(final), or NULL.
 * Returns OK; E_INVAL (NULL method/start, unknown setting, non-finite start or lr, stride < 1
 * with traj given, bad method or params: the aggregator's message), E_NONFINITE or the
 * method's own error (a failed step: θ so far is in final_theta), E_NOMEM.
 * Deterministic: same arguments, same bits.
 */
mtgrad_status mtgrad_toy_run(const char *method, const char *params, int setting,
                             const double start[2], int64_t steps, double lr, double *traj,
                             int64_t stride, double final_theta[2], int *reached, char *err,
                             size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* MTGRAD_NN_H */
