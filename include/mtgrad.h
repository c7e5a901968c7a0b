/*
 * mtgrad.h — multi-task gradient balancing (public API of libmtgrad).
 *
 * A multi-task model has k task losses L_i; each gives a gradient g_i on the d shared
 * parameters. G is the k x d matrix of those gradients (row-major, leading dimension ldg >= d),
 * M = G G^T its k x k Gram matrix. A balancing method turns (G or M, losses, state) into one
 * update direction; most methods give task weights w with direction = sum_i w_i g_i = G^T w.
 *
 * Shape letters, project-wide: k tasks, d shared parameters, ldg leading dimension of G.
 *
 * Conventions (apply to every function below unless its comment says otherwise):
 *   - Pointers are borrowed for the duration of the call only; nothing is retained.
 *   - Inputs and outputs never alias.
 *   - Dimensions and strides are int64_t; byte sizes are size_t.
 *   - Gradients come in as float32 (or float64 through the _f64 entry points); everything inside
 *     (Gram matrix, weights, solvers) is double.
 *   - Functions return MTGRAD_OK or a negative status; they never exit or abort. On failure the
 *     aggregator's message (mtgrad_aggregator_error) names the offending argument.
 *   - An aggregator is not thread-safe: one thread at a time per aggregator. Different
 *     aggregators may be used concurrently. There is no process-global mutable state.
 *   - Results are bit-identical for any thread count (fixed block partition, fixed reduction order).
 */
#ifndef MTGRAD_H
#define MTGRAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define MTGRAD_VERSION_MAJOR 0
#define MTGRAD_VERSION_MINOR 1
#define MTGRAD_VERSION_PATCH 0
#define MTGRAD_VERSION_NUMBER \
    (MTGRAD_VERSION_MAJOR * 10000 + MTGRAD_VERSION_MINOR * 100 + MTGRAD_VERSION_PATCH)
#define MTGRAD_VERSION_STRING "0.1.0"

/* The library's MTGRAD_VERSION_NUMBER; bindings compare it with the header they were built on. */
int mtgrad_version_number(void);
const char *mtgrad_version_string(void);

/* ---------------------------------------------------------------- status */

/* Append-only; values are never reused. */
typedef enum mtgrad_status {
    MTGRAD_OK = 0,
    MTGRAD_E_NOMEM = -1,       /* an allocation failed */
    MTGRAD_E_INVAL = -2,       /* bad argument: NULL, unknown name, value out of range */
    MTGRAD_E_SHAPE = -3,       /* k, d or ldg inconsistent or <= 0 */
    MTGRAD_E_NONFINITE = -4,   /* NaN/Inf in an input, or an overflow on the way */
    MTGRAD_E_MAXITER = -5,     /* a solver hit its iteration cap; the best iterate is returned */
    MTGRAD_E_NOPROGRESS = -6,  /* a solver stalled; the best iterate is returned */
    MTGRAD_E_UNSUPPORTED = -7, /* the method cannot do what was asked (e.g. no task weights) */
    MTGRAD_E_IO = -8,          /* read/write failure (files, buffers too small) */
    MTGRAD_E_STATE = -9        /* saved state does not fit this aggregator, or is corrupt */
} mtgrad_status;

/* A static string for a status ("invalid argument", ...); never NULL. */
const char *mtgrad_status_str(mtgrad_status s);

/* ---------------------------------------------------------------- methods */

typedef struct mtgrad_method mtgrad_method; /* opaque, const type objects */

/* What a method needs and what it promises (mtgrad_method_flags). */
enum {
    MTGRAD_NEEDS_GRAM = 1u << 0,         /* weights are a function of M = G G^T */
    MTGRAD_NEEDS_JACOBIAN = 1u << 1,     /* needs G element-wise (not Gram-only) */
    MTGRAD_NEEDS_LOSSES = 1u << 2,       /* needs the k task losses of the current step */
    MTGRAD_NEEDS_RANDOM = 1u << 3,       /* draws from the aggregator's seeded RNG */
    MTGRAD_STATEFUL = 1u << 4,           /* keeps state across calls (reset/save/load) */
    MTGRAD_NEEDS_LOSSES_AFTER = 1u << 5, /* wants mtgrad_aggregator_update() after each step */
    MTGRAD_HAS_WEIGHTS = 1u << 6,        /* direction = G^T w for the weights it returns */
    MTGRAD_PROMISE_NONCONFLICT = 1u << 7,/* G d >= 0 (up to rounding) for every input */
    MTGRAD_PROMISE_PERMUTATION = 1u << 8,/* permuting the tasks permutes the weights the same way
                                            and leaves the direction unchanged */
    MTGRAD_HEADS_WEIGHTED = 1u << 9,     /* the reference trains by a backward of sum_i w_i L_i, so
                                            task-specific (head) parameters get w_i grad L_i; without
                                            it heads get the unweighted grad L_i (methods.md 0.3) */
    MTGRAD_NEEDS_FEEDBACK = 1u << 10,    /* wants mtgrad_aggregator_feedback() after each call: the
                                            directional derivatives h_i = <g_i, d> of the task
                                            losses along the direction it returned (MARIGOLD
                                            estimates them from loss values, methods.md 9) */
    MTGRAD_CROSS_GRAM = 1u << 11         /* accepts a cross Gram C = G(a) G(b)^T of two independent
                                            batches (mtgrad_weights_from_cross_gram; SDMGrad's
                                            double sampling, methods.md 7.1/7.3) */
};

size_t mtgrad_method_count(void);
const mtgrad_method *mtgrad_method_at(size_t i);           /* NULL if i >= count */
const mtgrad_method *mtgrad_method_by_name(const char *name); /* NULL if unknown or name NULL */
const char *mtgrad_method_name(const mtgrad_method *m);
const char *mtgrad_method_summary(const mtgrad_method *m);   /* one line */
const char *mtgrad_method_citation(const mtgrad_method *m);  /* paper and reference code */
unsigned mtgrad_method_flags(const mtgrad_method *m);

/* ---------------------------------------------------------------- parameters */

/* Every method parameter is described once, here in C; the CLI and the Python binding read
 * these descriptions and never repeat names, defaults or ranges. */
typedef enum mtgrad_param_type {
    MTGRAD_PARAM_REAL = 0,   /* a finite double in [lo, hi] */
    MTGRAD_PARAM_INT = 1,    /* an integer in [lo, hi] */
    MTGRAD_PARAM_BOOL = 2,   /* 1/0, true/false, yes/no, on/off */
    MTGRAD_PARAM_CHOICE = 3, /* one of the names in `choices` ("a|b|c") */
    MTGRAD_PARAM_REALS = 4   /* a list of finite doubles in [lo, hi], ':' or ' ' separated;
                                an empty value is the empty list (the method's documented default) */
} mtgrad_param_type;

/* flags of a parameter description */
enum {
    MTGRAD_PARAM_LO_OPEN = 1u << 0, /* the range excludes lo */
    MTGRAD_PARAM_HI_OPEN = 1u << 1, /* the range excludes hi */
    MTGRAD_PARAM_COMMON = 1u << 2   /* accepted by every method (seed, threads) */
};

typedef struct mtgrad_param_desc {
    const char *name;
    mtgrad_param_type type;
    double def;          /* REAL/INT/BOOL: default value; CHOICE: index into choices */
    double lo, hi;       /* range (inclusive unless LO_OPEN/HI_OPEN) for REAL, INT, REALS */
    const char *choices; /* CHOICE: "a|b|c"; REALS: the default as text ("" = see doc) */
    unsigned flags;
    const char *doc;     /* one line */
} mtgrad_param_desc;

/* The method's own parameters first, then the common ones (seed, threads). */
size_t mtgrad_method_param_count(const mtgrad_method *m);
const mtgrad_param_desc *mtgrad_method_param_at(const mtgrad_method *m, size_t i);
/* The default of a parameter as text, as it would be written in "name=value" (e.g. "0.5",
 * "ascending", "0.9:0.999"). Returns the length it needed (snprintf semantics). */
int mtgrad_param_default_str(const mtgrad_param_desc *p, char *buf, size_t len);

/* ---------------------------------------------------------------- aggregators */

typedef struct mtgrad_aggregator mtgrad_aggregator; /* opaque; owns its state and workspace */

/*
 * Create an aggregator for `method` with k tasks. `params` is NULL, "" or "name=value,..." (see
 * mtgrad_method_param_at; REALS values use ':' between numbers). All memory the aggregator will
 * ever need for any d is allocated here (the hot path does not allocate).
 * On failure *out is NULL and, if err != NULL, a message of at most errlen-1 chars is written.
 * Returns OK, E_INVAL (NULL out/method, unknown method or parameter, bad value), E_SHAPE (k < 1 or
 * k > 65536), E_UNSUPPORTED (a valid value this method cannot honour, e.g. gradvac group_type=1),
 * E_NOMEM.
 */
mtgrad_status mtgrad_aggregator_new(mtgrad_aggregator **out, const char *method, int64_t k,
                                    const char *params, char *err, size_t errlen);
void mtgrad_aggregator_free(mtgrad_aggregator *a); /* NULL is a no-op */

/* Set one parameter from its text value (what follows "name=" in the params string).
 * Takes effect from the next call; it does not reset state. Returns OK, E_INVAL or E_UNSUPPORTED;
 * on failure the previous value is kept. */
mtgrad_status mtgrad_aggregator_set_param(mtgrad_aggregator *a, const char *name,
                                          const char *value);
/* The current value of a parameter as text (snprintf semantics for buf/len; returns the length
 * needed, or -1 if a or name is invalid). */
int mtgrad_aggregator_get_param(const mtgrad_aggregator *a, const char *name, char *buf,
                                size_t len);

const mtgrad_method *mtgrad_aggregator_method(const mtgrad_aggregator *a);
int64_t mtgrad_aggregator_k(const mtgrad_aggregator *a);
/* The message of the last failed call on this aggregator ("" if none); owned by the aggregator,
 * valid until its next call. Never NULL (a NULL aggregator gives a static message). */
const char *mtgrad_aggregator_error(const mtgrad_aggregator *a);

/*
 * The update direction for the k x d matrix G (row i at G + i*ldg).
 *   losses: k task losses of this step, or NULL for methods without MTGRAD_NEEDS_LOSSES.
 *   direction: d outputs.  weights: k outputs, or NULL. A method without MTGRAD_HAS_WEIGHTS
 *   returns E_UNSUPPORTED when weights != NULL.
 * Returns OK; E_INVAL (NULL where not allowed, losses missing or invalid for this method);
 * E_SHAPE (k != the aggregator's k, d < 1, ldg < d); E_NONFINITE (NaN/Inf in G or losses, or an
 * overflow: nothing non-finite is ever written without this status); E_MAXITER/E_NOPROGRESS
 * (the solver's best iterate was used and the outputs are finite and valid).
 * Stateful methods advance their state only when the call succeeds (OK, MAXITER, NOPROGRESS).
 */
mtgrad_status mtgrad_aggregate_f32(mtgrad_aggregator *a, const float *G, int64_t k, int64_t d,
                                   int64_t ldg, const double *losses, float *direction,
                                   double *weights);
mtgrad_status mtgrad_aggregate_f64(mtgrad_aggregator *a, const double *G, int64_t k, int64_t d,
                                   int64_t ldg, const double *losses, double *direction,
                                   double *weights);

/*
 * Task weights from a k x k Gram matrix M (row-major, symmetric) for methods with
 * MTGRAD_HAS_WEIGHTS that do not need the Jacobian. M may be NULL for methods without
 * MTGRAD_NEEDS_GRAM; when given to such a method it is passed on (most ignore it; marigold takes
 * it as its exact oracle h = M w, methods.md 9). Same statuses as mtgrad_aggregate_*;
 * E_UNSUPPORTED for Jacobian methods.
 */
mtgrad_status mtgrad_weights_from_gram(mtgrad_aggregator *a, const double *M, int64_t k,
                                       const double *losses, double *weights);

/* Methods with MTGRAD_NEEDS_LOSSES_AFTER (FAMO): the k losses re-evaluated on the same batch
 * after the optimizer step. Other methods: E_UNSUPPORTED. */
mtgrad_status mtgrad_aggregator_update(mtgrad_aggregator *a, const double *losses_after,
                                       int64_t k);

/*
 * Task weights from a cross Gram C = G(a) G(b)^T (k x k, row-major, not symmetric; its diagonal
 * may be negative) of the task gradients on two independent batches a, b: an unbiased estimate
 * of M for methods with MTGRAD_CROSS_GRAM (sdmgrad). The direction is then G(c)^T w for a third
 * batch c. Returns as mtgrad_weights_from_gram; E_UNSUPPORTED for other methods.
 */
mtgrad_status mtgrad_weights_from_cross_gram(mtgrad_aggregator *a, const double *C, int64_t k,
                                             const double *losses, double *weights);

/* Methods with MTGRAD_NEEDS_FEEDBACK (marigold): after a call that returned weights w and
 * direction d = G^T w, h[i] is (an estimate of) <g_i, d>, the derivative of task i's loss along
 * d. At most one feedback per call (E_STATE otherwise, or before any call). Other methods:
 * E_UNSUPPORTED. E_NONFINITE for NaN/Inf in h; the state is unchanged on failure. */
mtgrad_status mtgrad_aggregator_feedback(mtgrad_aggregator *a, const double *h, int64_t k);

/* Replace the next call's random draws by `draws` (copied). Layout per method: graddrop, d
 * uniforms U in [0,1); pcgrad/gradvac, k*k task indices (row i = the order in which task i
 * visits the others); rlw, k standard normals. Consumed by the next successful aggregation.
 * Returns OK, E_INVAL, E_NOMEM, E_UNSUPPORTED (method draws nothing). */
mtgrad_status mtgrad_aggregator_set_draws(mtgrad_aggregator *a, const double *draws, size_t n);

/* Wall-clock seconds of the last aggregation call, by phase: t[0] the Gram matrix, t[1]
 * the method's own work (the k x k solve, or the whole element-wise pass of a Jacobian method),
 * t[2] the combination G^T w and clipping. Zeros before the first call. Returns OK or E_INVAL. */
mtgrad_status mtgrad_aggregator_times(const mtgrad_aggregator *a, double t[3]);

/* The factor (0 < scale <= 1) by which the last call clipped the direction and the weights it
 * returned (max_norm of nash_mtl, famo, fairgrad); 1 when it did not clip. A reference that
 * clips only the shared gradient gives task-specific parameters the unclipped weights,
 * weights[i] / scale. Returns OK or E_INVAL. */
mtgrad_status mtgrad_aggregator_clip_scale(const mtgrad_aggregator *a, double *scale);

/* Back to the state right after creation (RNG re-seeded from the `seed` parameter). */
mtgrad_status mtgrad_aggregator_reset(mtgrad_aggregator *a);

/*
 * State as a self-describing byte string (magic, version, method, k, step counter, RNG, state,
 * CRC32). save: if buf is NULL or *len is too small, *len is set to the size needed and
 * E_IO (buf given) or OK (buf NULL) is returned. load: E_STATE if the bytes are not a state of
 * this method with this k, or are corrupt; the aggregator is unchanged then.
 */
mtgrad_status mtgrad_aggregator_save(const mtgrad_aggregator *a, void *buf, size_t *len);
mtgrad_status mtgrad_aggregator_load(mtgrad_aggregator *a, const void *buf, size_t len);

/* ---------------------------------------------------------------- kernels */

/* M = G G^T (k x k, full symmetric, row-major), products and sums in double.
 * Returns OK, E_INVAL (NULL), E_SHAPE, E_NONFINITE (NaN/Inf in G or overflow; M is written). */
mtgrad_status mtgrad_gram_f32(const float *G, int64_t k, int64_t d, int64_t ldg, double *M);
mtgrad_status mtgrad_gram_f64(const double *G, int64_t k, int64_t d, int64_t ldg, double *M);

/* C = A B^T (k x k, row-major, C[i][j] = <a_i, b_j>, not symmetric) for two k x d matrices
 * with the same leading dimension, in double. A plain reference stays beside the fast kernel.
 * Returns OK, E_INVAL (NULL), E_SHAPE, E_NONFINITE (C is written). */
mtgrad_status mtgrad_cross_gram_f32(const float *A, const float *B, int64_t k, int64_t d,
                                    int64_t ld, double *C);
mtgrad_status mtgrad_cross_gram_f64(const double *A, const double *B, int64_t k, int64_t d,
                                    int64_t ld, double *C);

/* out = sum_i w[i] * G[i] (d outputs), accumulated in double. Same statuses. */
mtgrad_status mtgrad_combine_f32(const float *G, int64_t k, int64_t d, int64_t ldg,
                                 const double *w, float *out);
mtgrad_status mtgrad_combine_f64(const double *G, int64_t k, int64_t d, int64_t ldg,
                                 const double *w, double *out);

/* Euclidean projection of y (k values) onto the probability simplex. E_INVAL, E_NONFINITE. */
mtgrad_status mtgrad_simplex_project(const double *y, int64_t k, double *out);

#ifdef __cplusplus
}
#endif
#endif /* MTGRAD_H */
