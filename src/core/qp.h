/*
 * qp.h — accurate solvers on the probability simplex  Δ = { w in R^k : w >= 0, sum w = 1 }.
 * Internal (never installed); used by MGDA, CAGrad, IMGrad, ConicGrad and any other method whose
 * weights solve a small convex problem over Δ.
 *
 * Conventions shared by every function here:
 *   - k >= 1 is the dimension (the number of tasks); matrices are k x k, row-major, full storage
 *     (both triangles), symmetric.
 *   - Everything is double. Nothing allocates: the caller passes `work`, at least
 *     `..._work_size(k)` doubles, which are clobbered.
 *   - Returns MTGRAD_OK, or MTGRAD_E_MAXITER / MTGRAD_E_NOPROGRESS with the best iterate found
 *     still written to w (always a point of Δ, always finite when the inputs are finite).
 *     Inputs must be finite (callers check; the aggregator does for Gram matrices).
 *   - Exact zeros: coordinates the solvers consider inactive are exactly 0.0, so the support of
 *     the returned w is meaningful (mtgradi_qp_kkt_residual relies on it).
 */
#ifndef MTGRAD_QP_H
#define MTGRAD_QP_H

#include "internal.h"

/* Default KKT tolerance of the solvers below (relative, see mtgradi_qp_kkt_residual). */
#define MTGRADI_QP_TOL 1e-12

/*
 * KKT residual of  min f(w) over Δ  at a point w of Δ, given q = grad f(w).
 * Optimality (f convex): there is nu with q_i = nu on the support S = {i : w_i > 0} and
 * q_i >= nu off it. With nu = min_{i in S} q_i this returns
 *     max( max_{i in S} (q_i - nu),  max_{i not in S} (nu - q_i)_+ ) / scale,
 * i.e. the spread of the gradient on the support plus the worst sign violation off it, relative
 * to `scale` (> 0; pass the magnitude of the terms that make up q, e.g. max|H| + max|c| for a QP;
 * scale <= 0 means max_i |q_i|, or 1 if q = 0). Returns 0 for k = 1.
 */
double mtgradi_qp_kkt_residual(const double *w, const double *q, int64_t k, double scale);

/*
 * Exact convex QP on the simplex:   w = argmin_{w in Δ}  ½ wᵀ H w + cᵀ w.
 *   H: k x k symmetric positive semi-definite, possibly singular (Gram matrix of rank-deficient
 *      or k > d gradients, identical or zero rows, mixed scales).  c: k values or NULL (= 0).
 *   w: k outputs (no warm start: the solver starts from the best vertex).
 *   iters: if non-NULL, receives the number of active-set iterations.
 * Method: primal active-set method on the support (Nocedal & Wright, Numerical Optimization,
 * 2nd ed., §16.5, with the bound constraints w_i >= 0 as the working set). The equality-
 * constrained subproblem on the support is a Newton step from a Cholesky factor of
 * H_FF + max|H|·11ᵀ updated as indices enter and leave (see mtgradi_qp_simplex_ref below); when
 * that factor meets a (nearly) flat direction, the step is taken in the null space of the sum
 * constraint via a symmetric eigendecomposition of the reduced Hessian: directions of
 * (numerically) zero curvature along which the objective still decreases are followed to the
 * boundary (the problem is bounded because Δ is), the rest is a pseudo-inverse Newton step.
 * Each Newton step is followed by one refinement solve. Finite
 * termination in exact arithmetic; on well-conditioned input the result satisfies
 * mtgradi_qp_kkt_residual(w, H w + c, k, max|H| + max|c|) <= ~1e-13. All tolerances are
 * relative to max|H| + max|c|, so the result does not depend on a common scaling of H and c.
 * c = NULL (the min-norm point of the hull of rows g_i, H = Gram): the result is then polished
 * in the equilibrated form (rows normalised, v_i = w_i sqrt(H_ii)) by a primal active-set loop
 * with Cholesky solves on the support, so that every row's KKT condition
 * <g_i, d> >= |d|² (equality on the support) holds to rounding relative to |g_i| |d| even when
 * the row norms span 1e-10..1e10 (the max|H|-relative rule above cannot resolve small rows).
 * The polished point is kept only if its scaled residual is no worse; when H has no zero
 * diagonal entry and d != 0.
 * Returns OK, E_MAXITER (cap 50k + 100 iterations) or E_NOPROGRESS (a cycle at rounding level
 * with a residual above 1e-9); w holds the current (best: the method is monotone) iterate.
 */
size_t mtgradi_qp_simplex_work_size(int64_t k);
mtgrad_status mtgradi_qp_simplex(const double *H, const double *c, int64_t k, double *w,
                                 int *iters, double *work);
/* The same solver started from `start` (a point of Δ; its support is the initial working set)
 * instead of the best vertex: a warm start when a nearby problem was just solved (the SQP below).
 * start may equal w. If the factor step fails on the start's support (flat directions there, as
 * for the uniform start with a rank-deficient H, k > d), the solver starts from the best vertex
 * instead. Same result whenever the optimum is unique (else the same optimal value). */
mtgrad_status mtgradi_qp_simplex_from(const double *H, const double *c, int64_t k,
                                      const double *start, double *w, int *iters, double *work);
/* The reference: the same active-set iteration with every step taken by the eigendecomposition
 * of the reduced Hessian. mtgradi_qp_simplex takes the Newton steps from a Cholesky factor of
 * H_FF + max|H|·11ᵀ kept up to date as indices enter and leave the support (O(m²) per step
 * instead of O(m³) with a large constant), and falls back to the eigen step whenever the factor
 * meets a (nearly) flat direction; the tests compare the two. Same workspace. */
mtgrad_status mtgradi_qp_simplex_ref(const double *H, const double *c, int64_t k, double *w,
                                     int *iters, double *work);

/*
 * A smooth convex function on Δ for mtgradi_smooth_simplex.
 * eval(ctx, w, grad, hess, gscale) returns f(w) and, when the pointers are non-NULL, writes
 * grad f(w) (k values), the Hessian (k x k, symmetric positive semi-definite) and gscale: the
 * magnitude of the terms that make up the gradient (used as the scale of the KKT residual; it
 * should not shrink when terms cancel). w is always a point of Δ.
 */
typedef struct mtgradi_simplex_fn {
    double (*eval)(void *ctx, const double *w, double *grad, double *hess, double *gscale);
    void *ctx;
} mtgradi_simplex_fn;

/*
 * w = argmin_{w in Δ} f(w) for a smooth convex f (sequential quadratic programming).
 *   w: on entry the starting point (projected onto Δ first), on exit the best iterate.
 *   tol: relative KKT tolerance (<= 0: MTGRADI_QP_TOL); max_iter: outer iterations (<= 0: 200).
 *   iters: if non-NULL, receives the number of outer iterations.
 * Each iteration solves the quadratic model  min_{v in Δ} gᵀ(v - w) + ½ (v - w)ᵀ Hess (v - w)
 * exactly with mtgradi_qp_simplex_from, warm-started at w (a projected Newton step that also
 * identifies the active set; near the optimum the support is already right, so it takes a few
 * factor solves instead of growing the support from a vertex) and backtracks (Armijo, factor
 * ½) along v - w. With exact Hessians this is locally quadratically convergent once the support is identified; the line search makes it globally
 * convergent (every step is a descent step for a convex f on a compact set). The Armijo test
 * allows a rounding-level slack of 4 eps·(|f| + gscale); once f stops resolving progress, the
 * KKT residual decides (three such steps without a new best residual end the run).
 * Returns OK (residual <= tol), E_MAXITER, or E_NOPROGRESS (no descent possible any more with
 * residual > max(tol, 1e-8); a stall with residual <= 1e-8 counts as OK).
 */
size_t mtgradi_smooth_simplex_work_size(int64_t k);
mtgrad_status mtgradi_smooth_simplex(const mtgradi_simplex_fn *f, int64_t k, double *w, double tol,
                                     int max_iter, int *iters, double *work);

/*
 * The CAGrad-family dual objective (CAGrad, IMGrad, ...), for mtgradi_smooth_simplex:
 *     f(w) = wᵀ lin + beta·sqrt(wᵀMw + eps) + ½·gamma·wᵀMw,
 * convex for beta, gamma >= 0 (M PSD). Fill the fields, pass the struct as ctx and
 * mtgradi_normlin_eval as eval. Mw: k doubles of scratch. gscale (the KKT scale) is
 * max|lin| + (beta/sqrt(wᵀMw + eps) + gamma)·max|Mw|, which does not vanish when the terms
 * cancel at the optimum. eps > 0 keeps f smooth where Gᵀw = 0 (CAGrad uses 1e-8).
 */
typedef struct mtgradi_normlin {
    const double *M, *lin;
    double beta, gamma, eps;
    int64_t k;
    double *Mw;
} mtgradi_normlin;
double mtgradi_normlin_eval(void *ctx, const double *w, double *grad, double *hess, double *gscale);

/* CAGrad's recovery from the dual solution x (in place): lambda = phi/(sqrt(xᵀMx) + 1e-8),
 * w = (1/k + lambda·x)/div with div = 1 (rescale 0), 1 + c² (rescale 1), 1 + c (rescale 2), so
 * that Gᵀw = (g0 + lambda·g_x)/div. Shared by CAGrad and IMGrad (same constants). */
void mtgradi_cagrad_recover(const double *M, int64_t k, double phi, double c, int rescale, double *w);

#endif /* MTGRAD_QP_H */
