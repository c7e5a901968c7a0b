/*
 * internal.h — what method files, kernels and the aggregator share. Never installed.
 *
 * A method is one `const mtgrad_method` (struct below) in src/core/method_<name>.c. Its
 * parameters are a `static const mtgrad_param_desc[]` table; their values live in the aggregator
 * (a->pv[i] for the i-th entry; CHOICE as the index, BOOL as 0/1; REALS in a->plist[i] with
 * a->plen[i] entries). Methods of the Gram path implement `weights`; element-wise methods
 * implement `direction`.
 */
#ifndef MTGRAD_INTERNAL_H
#define MTGRAD_INTERNAL_H

#include "mtgrad.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MTGRADI_MAX_PARAMS 24 /* method parameters + common ones */
#define MTGRADI_ERRLEN 256
#define MTGRADI_GRAM_SPLITS 16 /* fixed column partition of the Gram: thread-count independent */

/* Common parameters, stored after the method's own: a->pv[a->m->n_params + MTGRADI_COMMON_*] */
enum { MTGRADI_COMMON_SEED = 0, MTGRADI_COMMON_THREADS = 1, MTGRADI_N_COMMON = 2 };

/* ------------------------------------------------------------------ RNG (xoshiro256**) */
typedef struct mtgradi_rng {
    uint64_t s[4];
} mtgradi_rng;

void mtgradi_rng_seed(mtgradi_rng *r, uint64_t seed);
/* One step of the generator, inline for the per-element loops that draw in their inner loop
 * (GradDrop: a call per draw cost more than the rest of a column); mtgradi_rng_next is this. */
static inline uint64_t mtgradi_rng_step(mtgradi_rng *r)
{
    uint64_t *s = r->s, x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
/* [0, 1) from one step: the top 53 bits; mtgradi_rng_uniform is this. */
static inline double mtgradi_rng_step_uniform(mtgradi_rng *r)
{
    return (double)(mtgradi_rng_step(r) >> 11) * 0x1.0p-53;
}
uint64_t mtgradi_rng_next(mtgradi_rng *r);
double mtgradi_rng_uniform(mtgradi_rng *r);            /* [0, 1), 53 bits */
double mtgradi_rng_normal(mtgradi_rng *r);             /* N(0,1), Box–Muller, one per call */
int64_t mtgradi_rng_below(mtgradi_rng *r, int64_t n);  /* uniform in [0, n), unbiased */
/* Fisher–Yates shuffle of idx[0..n). */
void mtgradi_rng_shuffle(mtgradi_rng *r, int64_t *idx, int64_t n);
/* Advance r exactly as n calls of mtgradi_rng_step would, in O(256 log n) work (rng.c). The
 * polynomial arithmetic behind it, exposed for the tests: mtgradi_rng_charpoly holds the low 256
 * coefficients of the characteristic polynomial p(x) of the state map (x^256 implicit; bit i,
 * word 0 first, is the coefficient of x^i); _poly_sqrmod: a <- a² mod p. */
void mtgradi_rng_jump(mtgradi_rng *r, uint64_t n);
extern const uint64_t mtgradi_rng_charpoly[4];
void mtgradi_rng_poly_sqrmod(uint64_t a[4]);

/* ------------------------------------------------------------------ matrices */

/* A read-only view of G in either precision (exactly one of f32/f64 is non-NULL). */
typedef struct mtgradi_mat {
    const float *f32;
    const double *f64;
    int64_t k, d, ld;
} mtgradi_mat;

/* Where a direction goes (exactly one of f32/f64 is non-NULL). */
typedef struct mtgradi_out {
    float *f32;
    double *f64;
    int64_t d;
} mtgradi_out;

static inline double mtgradi_mat_at(const mtgradi_mat *G, int64_t i, int64_t j)
{
    return G->f32 ? (double)G->f32[i * G->ld + j] : G->f64[i * G->ld + j];
}

/* Copy columns [j0, j0+nb) of G into dst (k x nb, row-major, double). */
void mtgradi_mat_block(const mtgradi_mat *G, int64_t j0, int64_t nb, double *dst);
/* Write src[0..nb) to out[j0..j0+nb) (rounded to float for an f32 output). */
void mtgradi_out_block(const mtgradi_out *o, int64_t j0, int64_t nb, const double *src);

/* ------------------------------------------------------------------ kernels (gram.c, combine.c) */

/* Plain references: one dot product per pair, columns in order. M is full k x k. */
void mtgradi_gram_ref(const mtgradi_mat *G, double *M);
void mtgradi_combine_ref(const mtgradi_mat *G, const double *w, const mtgradi_out *out);

/* Fast versions. partials: MTGRADI_GRAM_SPLITS * k(k+1)/2 doubles of workspace. Results depend
 * on the fixed partition only, never on `threads`. combine returns 1 if every output is finite. */
size_t mtgradi_gram_work_size(int64_t k);
/* First column of range s of the fixed column partition (gram.c; the cross Gram uses the same):
 * 64·floor(floor(d/64)·s/MTGRADI_GRAM_SPLITS), and d for s = MTGRADI_GRAM_SPLITS. */
int64_t mtgradi_gram_range_start(int64_t d, int s);
void mtgradi_gram(const mtgradi_mat *G, double *M, double *partials, int threads);

/* Cross Gram C = A Bᵀ (k x k, C[i][j] = <a_i, b_j>, not symmetric) of two views with the same
 * k, d (cross_gram.c). The reference: one dot per pair, columns in order. The fast kernel: the
 * columns cut into MTGRADI_GRAM_SPLITS fixed ranges (as the Gram), blocks of a range in order,
 * each pair in the canonical 8-lane order of vec.h; partials (MTGRADI_GRAM_SPLITS·k² doubles)
 * added in range order, so the bits never depend on `threads` or the ISA. */
void mtgradi_cross_gram_ref(const mtgradi_mat *A, const mtgradi_mat *B, double *C);
size_t mtgradi_cross_gram_work_size(int64_t k);
void mtgradi_cross_gram(const mtgradi_mat *A, const mtgradi_mat *B, double *C, double *partials,
                        int threads);
int mtgradi_combine(const mtgradi_mat *G, const double *w, const mtgradi_out *out, int threads);

/* ------------------------------------------------------------------ small dense linear algebra */

/* Cholesky A = L L^T in place (lower triangle of row-major A; the upper is left as is).
 * Returns 0, or -1 if A is not numerically positive definite. */
int mtgradi_cholesky(double *A, int64_t n);
/* Solve L L^T x = b in place (b <- x) with the factor from mtgradi_cholesky. */
void mtgradi_cholesky_solve(const double *L, int64_t n, double *b);
/* Symmetric eigendecomposition A = V diag(lambda) V^T (Householder tridiagonalisation, then
 * implicit QL; when min|lambda| < 1e-4 max|lambda|, by cyclic Jacobi instead, for the relative
 * accuracy of the small eigenvalues; a PSD A of numerical rank r < n first tries
 * mtgradi_eigh_lowrank below, which keeps that accuracy in O(n r² + n² r)). lambda ascending; V row-major with eigenvectors in
 * columns (V[i*n + j] = component i of eigenvector j). work: n*n doubles. Returns 0, or -1 if it
 * did not converge (results still usable). */
int mtgradi_eigh(const double *A, int64_t n, double *lambda, double *V, double *work);
/* The same by cyclic Jacobi (the reference: slower, O(n³) per sweep with a large constant). */
int mtgradi_eigh_jacobi(const double *A, int64_t n, double *lambda, double *V, double *work);
/* The path mtgradi_eigh takes first for a positive semi-definite A of numerical rank r < n:
 * pivoted Cholesky A ≈ LLᵀ, one-sided Jacobi on L, an orthonormal complement for the n - r zero
 * eigenvalues (exactly 0). Returns 0, or 1 (nothing usable written) if A is not of that kind
 * (n < 2, full rank, indefinite, or ||A - LLᵀ||_F above rounding). Same arguments as eigh. */
int mtgradi_eigh_lowrank(const double *A, int64_t n, double *lambda, double *V, double *work);
/* The factor of that path: A ≈ LLᵀ with L n x r (row-major, row stride n: n*n doubles), rows in
 * A's order, by diagonally pivoted Cholesky with a row-relative rank decision. Returns r, or -1
 * when A is not PSD of rank r < n with ||A - LLᵀ||_F <= 16 sqrt(n) eps ||A||_F.
 * scratch: 2n doubles. */
int64_t mtgradi_lowrank_factor(const double *A, int64_t n, double *L, double *scratch);
/* Pseudo-inverse of symmetric A via eigh: eigenvalues with |lambda| <= cutoff are dropped,
 * cutoff = rtol * max|lambda| (torch.linalg.pinv's rule on a symmetric matrix).
 * P: n*n out; work: 2*n*n + n doubles. Returns 0 or -1 (as eigh). */
int mtgradi_pinv_sym(const double *A, int64_t n, double rtol, double *P, double *work);
/* Cholesky factor L Lᵀ of the principal submatrix (A + shift·11ᵀ)[idx, idx] of a symmetric A,
 * kept up to date while an active-set solver adds and removes indices (O(m²) each; linalg.c).
 * L: m x m lower triangle with leading dimension ld (capacity ld rows); idx: the indices in
 * factor order (as doubles). Initialise with m = 0. */
typedef struct mtgradi_subchol {
    double *L, *idx;
    int64_t m, ld;
} mtgradi_subchol;
/* Append index j (lda: A's leading dimension). Returns 0, or -1 (factor unchanged) when the new
 * pivot is not > tol: the enlarged submatrix is (numerically) not positive definite. */
int mtgradi_subchol_append(mtgradi_subchol *f, const double *A, int64_t lda, double shift,
                           int64_t j, double tol);
/* Remove the index at factor position r (x: m doubles of scratch). */
void mtgradi_subchol_delete(mtgradi_subchol *f, int64_t r, double *x);
/* Factor position of index j, or -1. */
int64_t mtgradi_subchol_find(const mtgradi_subchol *f, int64_t j);
/* b <- (L Lᵀ)⁻¹ b, b in factor order (m values). */
void mtgradi_subchol_solve(const mtgradi_subchol *f, double *b);
/* y = A x for an n x n row-major A. */
void mtgradi_matvec(const double *A, int64_t n, const double *x, double *y);
double mtgradi_dot(const double *x, const double *y, int64_t n);
/* x^T A x */
double mtgradi_quad(const double *A, int64_t n, const double *x);

/* One torch.optim.Adam step on n doubles (the logits of famo, uw, gradnorm): m, v the moments,
 * *t the steps taken (incremented); L2 weight decay, if any, is already in g (linalg.c). */
void mtgradi_adam_step(double *x, double *m, double *v, const double *g, int64_t n, double *t,
                       double lr, double b1, double b2, double eps);

/* ------------------------------------------------------------------ simplex (simplex.c) */

/* Sort-based Euclidean projection onto {w >= 0, sum w = 1}. work: k doubles. out may equal y. */
void mtgradi_simplex_project(const double *y, int64_t k, double *out, double *work);

/* ------------------------------------------------------------------ aggregator */

struct mtgrad_aggregator {
    const mtgrad_method *m;
    int64_t k;

    /* parameters: method ones then common ones */
    double pv[MTGRADI_MAX_PARAMS];
    unsigned char pset[MTGRADI_MAX_PARAMS]; /* 1 if given by the user (else default) */
    double *plist[MTGRADI_MAX_PARAMS];      /* REALS values (owned), NULL = default */
    size_t plen[MTGRADI_MAX_PARAMS];

    /* buffers allocated once at creation (sizes depend on k only) */
    double *M;        /* k*k Gram */
    double *w;        /* k weights */
    double *partials; /* Gram partial sums */
    double *work;     /* method workspace (m->work_size doubles) */
    size_t n_work;
    double *state;    /* method state (m->state_size doubles), saved/loaded */
    size_t n_state;
    int64_t step;     /* successful aggregations since creation/reset (saved) */

    mtgradi_rng rng;
    double *draws;    /* injected draws for the next call (owned) */
    size_t n_draws, cap_draws;
    int draws_pending;

    double times[3];  /* seconds of the last successful call: Gram, method, combine */
    double clip_scale; /* the factor (<= 1) the last call's clipping applied (1 = none) */
    double clip_norm; /* set by a method during a call: clip the direction to this norm (0 = no) */
    double *backup;   /* n_state doubles: state restored when a call fails */
    char err[MTGRADI_ERRLEN];
};

/* Saved-state fields (bytes.c): CRC-32 and little-endian u64. */
uint32_t mtgradi_crc32(const unsigned char *p, size_t n);
void mtgradi_put_u64(unsigned char *p, uint64_t v);
uint64_t mtgradi_get_u64(const unsigned char *p);
/* A double's bits as a u64 and back (saved states store doubles bit for bit). */
uint64_t mtgradi_f64_bits(double x);
double mtgradi_bits_f64(uint64_t u);

/* Write a message to err/errlen (snprintf semantics; err may be NULL) and return s. For code
 * that reports into a caller's buffer rather than an aggregator (the engine). */
mtgrad_status mtgradi_errmsg(char *err, size_t errlen, mtgrad_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The same without a status, for code that sets a message and returns elsewhere. */
void mtgradi_msg(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Seconds on a monotonic clock (clock.c). */
double mtgradi_now(void);

/* Every allocation of the library (core and engine) goes through these (alloc.c); free stays
 * free. Tests can make one allocation fail: mtgradi_alloc_fail_after(n) makes the allocation
 * after n more successful ones return NULL (n = 0: the next one; n < 0: never, the default);
 * the injection fires once. mtgradi_alloc_count counts allocations made so far. A plain static
 * counter: not thread-safe, for single-threaded tests only. */
void *mtgradi_malloc(size_t size);
void *mtgradi_calloc(size_t n, size_t size);
void *mtgradi_realloc(void *p, size_t size);
void mtgradi_alloc_fail_after(long n);
long mtgradi_alloc_count(void);

/* Record a message and return s. */
mtgrad_status mtgradi_fail(mtgrad_aggregator *a, mtgrad_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static inline int mtgradi_threads(const mtgrad_aggregator *a);

/* ------------------------------------------------------------------ method type object */

struct mtgrad_method {
    const char *name;
    const char *summary;
    const char *citation;
    unsigned flags;
    const mtgrad_param_desc *params;
    size_t n_params;

    /* All optional except one of weights/direction. */
    /* Cross-parameter validation; also called after every set_param. */
    mtgrad_status (*check)(mtgrad_aggregator *a);
    /* Doubles of persistent state / scratch; may depend on k only. */
    size_t (*state_size)(int64_t k);
    size_t (*work_size)(int64_t k);
    /* Initial state (state is zeroed before this is called). */
    void (*reset)(mtgrad_aggregator *a);
    /* Gram path: weights w (k) from M (k x k; NULL if the method lacks NEEDS_GRAM) and losses. */
    mtgrad_status (*weights)(mtgrad_aggregator *a, const double *M, const double *losses,
                             double *w);
    /* Element-wise path: write the direction; w (k) may be NULL. */
    mtgrad_status (*direction)(mtgrad_aggregator *a, const mtgradi_mat *G, const double *losses,
                               const mtgradi_out *out, double *w);
    /* Losses after the step (NEEDS_LOSSES_AFTER). */
    mtgrad_status (*update)(mtgrad_aggregator *a, const double *losses_after);
    /* Directional derivatives h (k, finite) of the losses along the last direction
     * (NEEDS_FEEDBACK). The method keeps its own "a call is waiting" flag in its state and
     * returns E_STATE without one; the aggregator restores the state on any failure. */
    mtgrad_status (*feedback)(mtgrad_aggregator *a, const double *h);
};

static inline int mtgradi_threads(const mtgrad_aggregator *a)
{
    return (int)a->pv[a->m->n_params + MTGRADI_COMMON_THREADS];
}

/* Consume injected draws: returns them (and marks them used) if pending with exactly n values,
 * NULL if none are pending; sets *bad = 1 when pending with the wrong count. */
const double *mtgradi_take_draws(mtgrad_aggregator *a, size_t n, int *bad);

/* Visiting orders of PCGrad-like methods (task_order.c). take: consume injected draws (k*k task
 * indices, each row a permutation; validated, scratch = k doubles) into *draws, or NULL if none.
 * order: task i's order — the injected row, 0..k-1, or (random) a fresh permutation in buf (k). */
mtgrad_status mtgradi_task_orders_take(mtgrad_aggregator *a, const double **draws, double *scratch);
const double *mtgradi_task_order(mtgrad_aggregator *a, const double *draws, int random, int64_t i,
                                 double *buf);

/* GradDrop's kernel (method_graddrop.c): out_j = the masked column sums of G, with the uniforms
 * U (d values) or, U NULL, d draws from rng in column order. work: mtgradi_graddrop_work_size(k)
 * doubles (used by _ref). Returns -1, or i·d + j of the first non-finite G_ij (row-major within
 * the first bad block of 256 columns); after a failure out and rng are unspecified. _ref is the
 * plain per-column reference; _fast (isa: an mtgradi_isa of vec.h, clamped to the CPU; threads:
 * the OpenMP threads it may use when k·d >= MTGRADI_PAR_MIN_ELEMS) gives the same bits, draws
 * and failures for every isa and thread count. */
size_t mtgradi_graddrop_work_size(int64_t k);
int64_t mtgradi_graddrop_ref(const mtgradi_mat *G, const double *U, mtgradi_rng *rng, double leak,
                             const mtgradi_out *out, double *work);
int64_t mtgradi_graddrop_fast(const mtgradi_mat *G, const double *U, mtgradi_rng *rng,
                              double leak, const mtgradi_out *out, double *work, int isa,
                              int threads);

/* torch.nn.utils.clip_grad_norm_ coefficient: min(1, max_norm / (norm + 1e-6)); 1 if max_norm<=0. */
double mtgradi_clip_coef(double max_norm, double norm);

/* ------------------------------------------------------------------ parameters (params.c) */

/* Every parameter to its default (REALS parsed from their default text). */
mtgrad_status mtgradi_params_defaults(mtgrad_aggregator *a);
/* Apply "name=value,name=value"; stops at the first error (message in a->err). */
mtgrad_status mtgradi_params_parse(mtgrad_aggregator *a, const char *s);

/* ------------------------------------------------------------------ registry */

extern const mtgrad_method mtgradi_mean, mtgradi_sum, mtgradi_ls, mtgradi_si_ls, mtgradi_rlw,
    mtgradi_mgda, mtgradi_cagrad, mtgradi_imgrad, mtgradi_conicgrad, mtgradi_sdmgrad,
    mtgradi_pcgrad, mtgradi_graddrop, mtgradi_gradvac, mtgradi_nash_mtl, mtgradi_upgrad,
    mtgradi_dualproj, mtgradi_imtl_g, mtgradi_aligned_mtl, mtgradi_famo, mtgradi_dwa,
    mtgradi_fairgrad, mtgradi_marigold, mtgradi_uw, mtgradi_gradnorm;

#endif /* MTGRAD_INTERNAL_H */
