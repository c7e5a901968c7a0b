/*
 * mtl_step_internal.h — the MTL step's struct and the phases its files share (never installed).
 *
 * The step is one struct driven by one loop (mtl_step.c); what a method or an option changes
 * lives in its own file: task sampling and representation gradients (mtl_step_sample.c),
 * MARIGOLD's loss-value feedback (mtl_step_marigold.c), SDMGrad's double sampling
 * (mtl_step_double.c), the AdaTask optimizers (mtl_step_adatask.c), and the step's own state
 * (mtl_step_state.c). Every buffer a path needs, the aggregators of task sampling included, is
 * allocated at creation: a step never allocates.
 */
#ifndef MTGRAD_MTL_STEP_INTERNAL_H
#define MTGRAD_MTL_STEP_INTERNAL_H

#include "mtgrad_train.h"
#include "internal.h" /* mtgradi_malloc, mtgradi_now, mtgradi_rng & co. */

#include <stddef.h>
#include <stdint.h>

/* How the step turns a batch into a gradient. */
typedef enum {
    MTGRADI_PATH_LOSS_ONLY = 0, /* weights from the losses, one backward of sum w_i L_i */
    MTGRADI_PATH_JACOBIAN,      /* k backward_task rows of G, the aggregator's direction */
    MTGRADI_PATH_SAMPLED,       /* os:N / fast:K: only the drawn tasks (rows) backpropagate */
    MTGRADI_PATH_REP,           /* MGDA-UB: Gram of dL_i/dZ, one trunk backward */
    MTGRADI_PATH_MARIGOLD,      /* one backward of sum lambda_i L_i, h from loss values */
    MTGRADI_PATH_DOUBLE,        /* sdmgrad sampling=double: three batches, cross Gram */
    MTGRADI_PATH_ADATASK        /* k rows scaled by w_i, per-task optimizer moments */
} mtgradi_step_path;

enum { MTGRADI_SAMPLE_NONE = 0, MTGRADI_SAMPLE_OS = 1, MTGRADI_SAMPLE_FAST = 2 };
enum { MTGRADI_EST_FORWARD = 0, MTGRADI_EST_CENTRAL, MTGRADI_EST_STEP, MTGRADI_EST_EXACT };

struct mtgrad_mtl_step {
    mtgrad_model *m; /* borrowed */
    mtgrad_aggregator *a;
    mtgrad_optimizer *o;
    unsigned flags;
    mtgradi_step_path path;
    int64_t k, d, P;
    int loss_only;     /* no G is built by the method (its weights come from the losses) */
    int per_epoch;     /* DWA: weights fixed within an epoch */
    double max_norm;   /* the method's clipping, taken over from the aggregator (0 = off) */
    float *G;          /* k x d (rows of the tasks or of the drawn rows), NULL when unused */
    float *grad;       /* P */
    double *w;         /* k: the last step's task weights */
    double *epoch_w;   /* k: DWA's weights of the current epoch */
    double *losses, *losses_after, *probe; /* k each */
    unsigned char *state; /* DWA: the aggregator's state saved around a probe */
    size_t state_len;
    unsigned char *sampled; /* k: tasks backpropagated through the trunk by the last step */
    double *M;         /* k x k Gram (rep, AdaTask, marigold exact, double sampling) */
    double *partials;  /* the Gram kernels' workspace (whenever M is allocated) */

    /* nash_mtl update_weights_every, taken over by the step (0 = not taken over) */
    int64_t every;
    int have_w;        /* w holds weights computed by an earlier step (reusable) */

    /* task sampling (mtl_step_sample.c) */
    int sample_kind;
    int64_t sample_n;  /* N of os:N, K of fast:K */
    uint64_t seed;
    char *method, *params;      /* to create the aggregators of other subset sizes */
    mtgrad_aggregator **sub;    /* k + 1: sub[r] for r drawn rows (sub[k] = a), lazily */
    int64_t *rows;     /* k: the task of each drawn row (fast: the singles, then -1) */
    int64_t n_rows;
    double *wrow, *lrow; /* k: weights and losses of the rows */
    double *coef;      /* k: 1/m for the members of fast:K's pseudo-task */
    int has_g0;        /* the method has a g0_weights parameter (cagrad) */

    /* representation gradients (rep; fast:K's pseudo-task) */
    int64_t rep_len;   /* max_batch x rep_size */
    float *R;          /* rep_rows x rep_len */
    float *zgrad;      /* rep_len */

    /* MARIGOLD (mtl_step_marigold.c) */
    int estimator;
    double mu;
    int reuse_next;
    float *theta;      /* d: the trunk before the step */
    uint64_t rng_before[4], rng_after[4]; /* dropout generator around the step's forward */
    double *h;         /* k: the last feedback (or M w for exact) */
    double dnorm;      /* ||d|| of the last step (before clipping) */
    int pending;       /* reuse_next: prev_L, prev_dnorm, prev_move wait for the next losses */
    double *prev_L;
    double prev_dnorm, prev_move;

    /* double sampling (mtl_step_double.c) */
    float *G1, *G2;    /* k x d each */

    int64_t steps, warnings;
    char err[512];
};

/* Record a message in s->err and return st. */
mtgrad_status mtgradi_step_fail(mtgrad_mtl_step *s, mtgrad_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* A solver's status: MAXITER/NOPROGRESS count as warnings and pass (OK returned); other
 * failures get the aggregator's message prefixed by `what`. */
mtgrad_status mtgradi_step_solver(mtgrad_mtl_step *s, mtgrad_aggregator *a, mtgrad_status st,
                                  const char *what);

/* Train-mode forward with the step's messages (non-finite losses name the task). */
mtgrad_status mtgradi_step_forward(mtgrad_mtl_step *s, const float *x, const float *targets,
                                   int64_t n, double *L, const char *what);

/* The trunk slice of s->grad scaled as torch's clip_grad_norm_ with s->max_norm. */
void mtgradi_step_clip(mtgrad_mtl_step *s);
/* Head i's slice of s->grad times w[i]. */
void mtgradi_step_weight_heads(mtgrad_mtl_step *s, const double *w);
/* The losses the method reads (NULL unless it has MTGRAD_NEEDS_LOSSES). */
const double *mtgradi_step_method_losses(const mtgrad_mtl_step *s, const double *L);
/* Allocates s->M (k x k) and the kernels' workspace once; returns s->M, NULL when out of
 * memory. */
double *mtgradi_step_alloc_gram(mtgrad_mtl_step *s);
/* M = G G^T (rows x rows) and C = A B^T with the step's workspace (the public kernels allocate
 * theirs); E_NONFINITE with a message naming `what` when a product overflows or G has NaN. */
mtgrad_status mtgradi_step_gram(mtgrad_mtl_step *s, const float *G, int64_t rows, int64_t len,
                                int64_t ld, double *M, const char *what);
mtgrad_status mtgradi_step_cross_gram(mtgrad_mtl_step *s, const float *A, const float *B,
                                      int64_t rows, int64_t len, int64_t ld, double *C,
                                      const char *what);
/* The k per-task backward passes of the last forward: row i of G (ld = d) = task i's trunk
 * gradient, head i's slice of `grad` (NULL: skip) = its unweighted gradient. `what` names the
 * batch in messages ("" for the step's own). */
mtgrad_status mtgradi_step_task_rows(mtgrad_mtl_step *s, float *G, float *grad, const char *what);
/* Weights s->w from the Gram of `rows` rows of length len (leading dimension ld): M, then
 * mtgrad_weights_from_gram with the step's losses; Gram and solve seconds into t. */
mtgrad_status mtgradi_step_gram_weights(mtgrad_mtl_step *s, const float *G, int64_t len,
                                        int64_t ld, const char *what, double *t);
/* ||x|| of n floats, in double. */
double mtgradi_step_norm(const float *x, int64_t n);

/* Paths (each after the step's forward on batch 0, unless it says otherwise). t: the phase
 * timings (MTGRAD_TIME_*), accumulated. */
mtgrad_status mtgradi_step_sampling_setup(mtgrad_mtl_step *s, const char *method,
                                          const char *params, char *err, size_t errlen);
mtgrad_status mtgradi_step_rep_setup(mtgrad_mtl_step *s, char *err, size_t errlen);
/* The aggregator of task sampling for `rows` drawn rows (created with the step; a saved state
 * holds every one of them). */
mtgrad_status mtgradi_step_sub_aggregator(mtgrad_mtl_step *s, int64_t rows,
                                          mtgrad_aggregator **out);
/* A new aggregator for `rows` rows with the step's method, parameters and take-overs. */
mtgrad_status mtgradi_step_new_sub(const mtgrad_mtl_step *s, int64_t rows, mtgrad_aggregator **out,
                                   char *err, size_t errlen);
mtgrad_status mtgradi_step_sampled_grad(mtgrad_mtl_step *s, int64_t n, double *t);
mtgrad_status mtgradi_step_rep_grad(mtgrad_mtl_step *s, int64_t n, double *t);

mtgrad_status mtgradi_step_marigold_setup(mtgrad_mtl_step *s, char *err, size_t errlen);
/* Before the forward: keeps the trunk and the dropout generator for the probes. */
void mtgradi_step_marigold_before(mtgrad_mtl_step *s);
mtgrad_status mtgradi_step_marigold_grad(mtgrad_mtl_step *s, const float *x,
                                         const float *targets, int64_t n, double *t);
/* After the optimizer step: the `step` estimator's forward (or reuse_next's bookkeeping). */
mtgrad_status mtgradi_step_marigold_after(mtgrad_mtl_step *s, const float *x,
                                          const float *targets, int64_t n, double *t);

mtgrad_status mtgradi_step_double_setup(mtgrad_mtl_step *s, char *err, size_t errlen);
/* Does its own forwards: batches 1 and 2 first, batch 0 last (its losses in s->losses). */
mtgrad_status mtgradi_step_double_grad(mtgrad_mtl_step *s, const float *const *x,
                                       const float *const *targets, int64_t n, double *t);

mtgrad_status mtgradi_step_adatask_setup(mtgrad_mtl_step *s, char *err, size_t errlen);
mtgrad_status mtgradi_step_adatask_grad(mtgrad_mtl_step *s, double *t);

/* 1 if the method of s takes sampling=double. */
int mtgradi_step_wants_double(const mtgrad_aggregator *a);

/* The h the last step fed back to the method (k values; for estimator=exact, M w): for
 * white-box tests of the estimators. NULL unless the method takes feedback. */
const double *mtgradi_mtl_step_feedback(const mtgrad_mtl_step *s);

#endif /* MTGRAD_MTL_STEP_INTERNAL_H */
