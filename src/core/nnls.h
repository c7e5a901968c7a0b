/*
 * nnls.h — two small k-dimensional solvers shared by the dual-cone and bargaining methods.
 *
 * 1. mtgradi_nnls_gram: the bound-constrained convex QP
 *        min_x  ½ xᵀQx + cᵀx   s.t.  x ≥ 0          (Q symmetric positive definite)
 *    by the Lawson–Hanson active-set method written on Q (the Gram form of NNLS: with Q = RᵀR it
 *    is min ||Rx − b||², x ≥ 0, Rᵀb = −c). Exact up to rounding: at exit x is the unique KKT
 *    point (x ≥ 0, Qx + c ≥ 0, x ⊙ (Qx + c) = 0). Used by UPGrad and DualProj.
 *
 * 2. mtgradi_bargain_solve: the positive root of   M w = w^(−p)   (element-wise power, w > 0),
 *    p = 1/alpha > 0, as the unique minimiser of the strictly convex
 *        F(w) = ½ wᵀMw − Σ_i φ(w_i),   φ'(t) = t^(−p)   (φ = log for p = 1),
 *    by damped Newton with a positivity-keeping Armijo backtracking. p = 1 is Nash-MTL's
 *    α ⊙ Mα = 1, general p is FairGrad. A root exists iff no v ≥ 0, v ≠ 0 has Mv = 0 (i.e. 0 is
 *    not in the convex hull of the task gradients); otherwise F is unbounded below along v.
 *
 * Lawson–Hanson keeps one Cholesky factor of Q_PP up to date as indices enter and leave P
 * (O(k²) per change; mtgradi_nnls_gram_ref refactors from scratch, the reference); Newton costs
 * O(k³) per iteration, or O(kr²) when M is exactly (to rounding) of rank r <= k/4, k >= 16
 * (Woodbury on the pivoted Cholesky factor M = LLᵀ; mtgradi_bargain_solve_ref is the dense
 * reference). k ≤ a few hundred in practice, k = 1000 at d = 8 in the edge tests.
 */
#ifndef MTGRAD_NNLS_H
#define MTGRAD_NNLS_H

#include "internal.h"

/* Doubles of workspace for mtgradi_nnls_gram. */
size_t mtgradi_nnls_work_size(int64_t k);
/* Q: k x k row-major SPD (read only); c: k; x: k outputs. work: mtgradi_nnls_work_size(k).
 * Returns 0, -1 if a principal submatrix of Q was not numerically positive definite (x then
 * holds the last feasible iterate), -2 if the iteration cap (3k + 10 outer steps) was hit. */
int mtgradi_nnls_gram(const double *Q, const double *c, int64_t k, double *x, double *work);
/* The reference: the same iterates with Q_PP refactored from scratch for every solve
 * (mtgradi_nnls_gram updates one Cholesky factor as P changes). Same workspace and returns. */
int mtgradi_nnls_gram_ref(const double *Q, const double *c, int64_t k, double *x, double *work);

/* The regularised, normalised Gram matrix of UPGrad/DualProj (TorchJD):
 * Q = M/tr(M) + reg_eps·I, or reg_eps·I when tr(M) < norm_eps (absolute threshold). */
void mtgradi_cone_gram(const double *M, int64_t k, double norm_eps, double reg_eps, double *Q);
/* Doubles of workspace for mtgradi_cone_project. */
size_t mtgradi_cone_work_size(int64_t k);
/* v = argmin_v vᵀQv s.t. v ≥ u (Q SPD): v = u + x with x the NNLS solution for c = Qu.
 * Returns what mtgradi_nnls_gram returns (v holds the last iterate on failure). */
int mtgradi_cone_project(const double *Q, const double *u, int64_t k, double *v, double *work);

/* The same projection for Q = AAᵀ + rho·I given A (k x r, row-major, r << k), rho > 0: through
 * the concave dual in r variables (semismooth Newton, see nnls.c), O(k r²) per Newton step.
 * v: k outputs; t: k doubles of scratch; work: mtgradi_cone_lowrank_work_size(r). Returns 0,
 * -1 (rho <= 0 or a singular Newton system) or -2 (100 Newton steps without convergence); on a
 * failure the caller uses mtgradi_cone_project. */
size_t mtgradi_cone_lowrank_work_size(int64_t r);
int mtgradi_cone_project_lowrank(const double *A, int64_t k, int64_t r, double rho,
                                 const double *u, double *v, double *t, double *work);

/* The parameters UPGrad and DualProj share (TorchJD): pref_vector, norm_eps, reg_eps, in this
 * order (index enum below); the methods' `params` point here. */
enum { MTGRADI_CONE_PREF, MTGRADI_CONE_NORM_EPS, MTGRADI_CONE_REG_EPS, MTGRADI_CONE_N_PARAMS };
extern const mtgrad_param_desc mtgradi_cone_params[MTGRADI_CONE_N_PARAMS];
/* The status and message for the worst return code rc of mtgradi_cone_project. */
mtgrad_status mtgradi_cone_status(mtgrad_aggregator *a, int rc);

/* Outcome of mtgradi_bargain_solve. */
typedef enum {
    MTGRADI_BARGAIN_OK = 0,         /* w is the root: (Mw)_i > 0, |(Mw)_i − w_i^(−p)| <= 1e-8 w_i^(−p) */
    MTGRADI_BARGAIN_NO_ROOT = 1,    /* zero row, or the iterates diverge: no positive root */
    MTGRADI_BARGAIN_STALLED = 2     /* cap or line search failed before the residual was met */
} mtgradi_bargain_result;

/* Doubles of workspace for mtgradi_bargain_solve (both paths). */
size_t mtgradi_bargain_work_size(int64_t k);
/* M: k x k Gram matrix; p > 0; w0: an optional positive starting direction (NULL: none). The
 * solver starts from the better (lower F) of w0 and diag(M)^(-1/2), each scaled optimally along
 * its ray. w: k outputs (the final iterate; meaningful only for MTGRADI_BARGAIN_OK).
 * *iters (may be NULL) receives the Newton iteration count. Each Newton system goes through the
 * low-rank factor when mtgradi_bargain_rank(M) > 0, else through a dense Cholesky. */
mtgradi_bargain_result mtgradi_bargain_solve(const double *M, int64_t k, double p, const double *w0,
                                             double *w, double *work, int *iters);
/* The reference: the same iteration with a dense k x k Cholesky for every Newton system. The
 * same arguments; agrees with mtgradi_bargain_solve bit for bit when mtgradi_bargain_rank is 0,
 * to rounding (and with the same result) otherwise. */
mtgradi_bargain_result mtgradi_bargain_solve_ref(const double *M, int64_t k, double p,
                                                 const double *w0, double *w, double *work,
                                                 int *iters);
/* Solve (D + LLᵀ) x = b in place (b <- x) by Woodbury, D = diag(dd) > 0, L: k x r row-major:
 * x = D⁻¹(b − L C⁻¹ LᵀD⁻¹b), C = I_r + LᵀD⁻¹L. C: r*r, c: r doubles of scratch. O(kr²).
 * Returns 0, or -1 (b unchanged) if some dd_i is not finite and > 0 or C is not
 * numerically positive definite. The Newton systems of the low-rank path. */
int mtgradi_woodbury_solve(const double *L, int64_t k, int64_t r, const double *dd, double *b,
                           double *C, double *c);
/* The rank r of the factor mtgradi_bargain_solve would use for M (0: the dense path). work:
 * mtgradi_bargain_work_size(k) doubles, overwritten. */
int64_t mtgradi_bargain_rank(const double *M, int64_t k, double *work);

#endif /* MTGRAD_NNLS_H */
