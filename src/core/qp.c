/* qp.c — simplex-constrained solvers: exact active-set QP, SQP for smooth convex functions, and
 * the KKT residual both use as their stopping rule. API and guarantees: qp.h. */
#include "qp.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ KKT residual */

double mtgradi_qp_kkt_residual(const double *w, const double *q, int64_t k, double scale)
{
    double nu = INFINITY, qmax = 0;
    for (int64_t i = 0; i < k; i++) {
        if (w[i] > 0 && q[i] < nu) nu = q[i];
        qmax = fmax(qmax, fabs(q[i]));
    }
    if (!(scale > 0)) scale = qmax > 0 ? qmax : 1.0;
    if (nu == INFINITY) return INFINITY; /* no support: w is not a point of the simplex */
    double viol = 0;
    for (int64_t i = 0; i < k; i++)
        viol = fmax(viol, w[i] > 0 ? q[i] - nu : nu - q[i]);
    return viol / scale;
}

/* ------------------------------------------------------------------ exact QP (active set) */

static double max_abs(const double *x, int64_t n)
{
    double m = 0;
    if (!x) return 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Workspace of the QP, carved from the caller's doubles. L, fidx, fu, fv: the Cholesky factor of
 * the fast path (see "support factor" below). */
typedef struct {
    double *g, *p, *in, *fl, *tabu, *R, *V, *lam, *ew, *r, *y, *yray;
    double *L, *fidx, *fu, *fv, *nz;
} qp_ws;

size_t mtgradi_qp_simplex_work_size(int64_t k)
{
    return (size_t)(4 * k * k + 13 * k + 8);
}

static qp_ws qp_carve(double *work, int64_t k)
{
    qp_ws s;
    double *p = work;
    s.g = p, p += k;
    s.p = p, p += k;
    s.in = p, p += k;
    s.fl = p, p += k;
    s.tabu = p, p += k;
    s.lam = p, p += k;
    s.r = p, p += k;
    s.y = p, p += k;
    s.yray = p, p += k;
    s.fidx = p, p += k;
    s.fu = p, p += k;
    s.fv = p, p += k;
    s.nz = p, p += k;
    s.R = p, p += k * k;
    s.V = p, p += k * k;
    s.L = p, p += k * k;
    s.ew = p;
    return s;
}

enum { STEP_NONE = 0, STEP_NEWTON = 1, STEP_RAY = 2 };

/*
 * Step p (zero off the support F = fl[0..m)) of the subproblem min ½pᵀHp + gᵀp, sum p = 0.
 * Null-space coordinates: p_{f_a} = y_a (a < m-1), p_piv = -sum y with piv = f_{m-1}, so the
 * reduced Hessian is R = Zᵀ H_FF Z (PSD) and the reduced gradient r = Zᵀ g_F. R = V Λ Vᵀ:
 * components with curvature above `cut` take the Newton step; a component with no curvature but
 * a gradient above rounding level (`gtol`) is a descent ray, followed to the boundary instead.
 */
static int reduced_step(const double *H, int64_t k, double hmax, double gtol, int64_t m,
                        qp_ws *s)
{
    for (int64_t i = 0; i < k; i++) s->p[i] = 0;
    if (m < 2) return STEP_NONE;
    int64_t n = m - 1, piv = (int64_t)s->fl[m - 1];
    for (int64_t a = 0; a < n; a++) {
        int64_t fa = (int64_t)s->fl[a];
        s->r[a] = s->g[fa] - s->g[piv];
        for (int64_t b = 0; b < n; b++) {
            int64_t fb = (int64_t)s->fl[b];
            s->R[a * n + b] = H[fa * k + fb] - H[fa * k + piv] - H[piv * k + fb] + H[piv * k + piv];
        }
    }
    (void)mtgradi_eigh(s->R, n, s->lam, s->V, s->ew); /* unconverged Jacobi is still usable */
    double lmax = 0;
    for (int64_t j = 0; j < n; j++) lmax = fmax(lmax, fabs(s->lam[j]));
    /* R carries absolute rounding ~eps*hmax from its 4-term sums, and relative rounding from eigh */
    double cut = fmax(1e-12 * lmax, 64 * DBL_EPSILON * hmax * (double)m);
    int ray = 0;
    for (int64_t a = 0; a < n; a++) s->y[a] = s->yray[a] = 0;
    for (int64_t j = 0; j < n; j++) {
        double coef = 0;
        for (int64_t a = 0; a < n; a++) coef += s->V[a * n + j] * s->r[a];
        if (s->lam[j] > cut) {
            for (int64_t a = 0; a < n; a++) s->y[a] -= coef / s->lam[j] * s->V[a * n + j];
        } else if (fabs(coef) > gtol) {
            ray = 1;
            for (int64_t a = 0; a < n; a++) s->yray[a] -= coef * s->V[a * n + j];
        }
    }
    const double *y = ray ? s->yray : s->y;
    double sum = 0;
    int nonzero = 0;
    for (int64_t a = 0; a < n; a++) {
        s->p[(int64_t)s->fl[a]] = y[a];
        sum += y[a];
        nonzero |= y[a] != 0;
    }
    s->p[piv] = -sum;
    if (!nonzero) return STEP_NONE;
    return ray ? STEP_RAY : STEP_NEWTON;
}

/* g = (Hw + c)·inv_s over the nonzeros of w (listed first in nz, k doubles of scratch: a
 * branch per term would mispredict on an irregular support). */
static void grad_scaled(const double *H, const double *c, int64_t k, double inv_s, const double *w,
                        double *g, double *nz)
{
    int64_t n = 0;
    for (int64_t j = 0; j < k; j++)
        if (w[j] != 0) nz[n++] = (double)j;
    for (int64_t i = 0; i < k; i++) {
        double t = 0;
        for (int64_t a = 0; a < n; a++) t += H[i * k + (int64_t)nz[a]] * w[(int64_t)nz[a]];
        g[i] = (t + (c ? c[i] : 0)) * inv_s;
    }
}

static int64_t support_list(qp_ws *s, int64_t k)
{
    int64_t m = 0;
    for (int64_t i = 0; i < k; i++)
        if (s->in[i] != 0) s->fl[m++] = (double)i;
    return m;
}

/* Clip rounding negatives and restore sum w = 1 (the steps keep it up to rounding). */
static void renormalise(double *w, int64_t k)
{
    double sum = 0;
    for (int64_t i = 0; i < k; i++) {
        if (w[i] < 0) w[i] = 0;
        sum += w[i];
    }
    if (sum > 0)
        for (int64_t i = 0; i < k; i++) w[i] /= sum;
}

/* ------------------------------------------------------------------ min-norm polishing
 *
 * For c = NULL (min wᵀHw, the min-norm point of the hull of rows g_i with H = Gram) the
 * tolerances above are relative to max|H|, which says nothing about rows whose norms are far
 * below the largest (rows scaled 1e-10..1e10: the small rows' stationarity is not resolved).
 * Equilibrated form: D = diag(sqrt(H_ii)), v = D w / Dmin, Ĥ = D⁻¹HD⁻¹ (unit diagonal),
 * a_i = Dmin/D_i in (0, 1]:  min vᵀĤv  s.t.  aᵀv = 1, v >= 0.  (Ĥv)_i = <g_i/|g_i|, d>/Dmin and
 * the KKT conditions (Ĥv)_i >= λ a_i (equality on the support, λ = vᵀĤv) are non-conflict
 * conditions measured relative to |g_i|, so every row is resolved to rounding of its own terms.
 * A primal active-set loop (Nocedal & Wright §16.5) on this form, started from the QP's support,
 * solves the equality problem on the support exactly (Cholesky of Ĥ_SS: y = Ĥ_SS⁻¹ a_S,
 * v_S = y / aᵀy), steps to the boundary when some v_i would turn negative, and adds the most
 * violating index in scaled terms. The result is kept only if its scaled residual is no worse.
 */

/* Scaled KKT residual of a point w of Δ:  max_i of the support spread / sign violation of
 * <g_i/|g_i|, d> - |d|²/|g_i| relative to |d|, plus its rounding (terms of (Ĥv)_i).
 * Hh = Ĥ, D = sqrt(diag H); v, q: k doubles of scratch. Returns 0 when d = 0. */
static double minnorm_scaled_residual(const double *Hh, const double *D, int64_t k,
                                      const double *w, double *v, double *q)
{
    for (int64_t i = 0; i < k; i++) v[i] = D[i] * w[i];
    double nu = 0;
    for (int64_t i = 0; i < k; i++) {
        q[i] = 0;
        for (int64_t j = 0; j < k; j++)
            if (v[j] != 0) q[i] += Hh[i * k + j] * v[j];
        nu += v[i] * q[i];
    }
    if (!(nu > 0)) return 0;
    double nd = sqrt(nu), res = 0;
    for (int64_t i = 0; i < k; i++) {
        double t = q[i] - nu / D[i]; /* = (<g_i, d> - |d|²)/|g_i| */
        res = fmax(res, w[i] > 0 ? fabs(t) : -t);
    }
    return res / nd;
}

/* Equality-constrained optimum on the support idx[0..m): z (k values, 0 off the support),
 * z_S = y / aᵀy with Ĥ_SS y = a_S. L: m*m scratch, y: m scratch. Returns 0, or -1 when Ĥ_SS is
 * not numerically positive definite (affinely dependent rows: the QP's answer is kept). */
static int minnorm_support_solve(const double *Hh, const double *a, int64_t k, const double *idx,
                                 int64_t m, double *L, double *y, double *z)
{
    for (int64_t r = 0; r < m; r++) {
        int64_t ir = (int64_t)idx[r];
        for (int64_t c2 = 0; c2 < m; c2++) L[r * m + c2] = Hh[ir * k + (int64_t)idx[c2]];
        y[r] = a[ir];
    }
    if (mtgradi_cholesky(L, m) != 0) return -1;
    mtgradi_cholesky_solve(L, m, y);
    double t = 0;
    for (int64_t r = 0; r < m; r++) t += a[(int64_t)idx[r]] * y[r];
    if (!(t > 0) || !isfinite(t)) return -1;
    for (int64_t i = 0; i < k; i++) z[i] = 0;
    for (int64_t r = 0; r < m; r++) z[(int64_t)idx[r]] = y[r] / t;
    for (int64_t r = 0; r < m; r++)
        if (!isfinite(z[(int64_t)idx[r]])) return -1;
    return 0;
}

/* Primal active-set loop on the equilibrated problem from the feasible v (aᵀv = 1, v >= 0).
 * Returns 0 with v optimal to rounding, -1 when a support system was singular or the cap was
 * hit (v is then still feasible, and no worse than on entry). */
static int minnorm_active_set(const double *Hh, const double *a, int64_t k, double *v, qp_ws *s,
                              double *idx, double *z, double *y)
{
    int64_t maxit = 50 * k + 100, last_added = -1;
    for (int64_t it = 0; it < maxit; it++) {
        int64_t m = 0;
        for (int64_t i = 0; i < k; i++)
            if (v[i] > 0 || i == last_added) idx[m++] = (double)i;
        if (minnorm_support_solve(Hh, a, k, idx, m, s->R, y, z) != 0) return -1;
        double alpha = 1;
        int64_t blk = -1;
        for (int64_t r = 0; r < m; r++) {
            int64_t i = (int64_t)idx[r];
            if (z[i] <= 0 && v[i] / (v[i] - z[i]) < alpha) alpha = v[i] / (v[i] - z[i]), blk = i;
        }
        if (blk >= 0 && blk == last_added && alpha == 0)
            return 0; /* the index just added wants to stay at 0: its violation was rounding */
        last_added = -1;
        if (blk >= 0) { /* step to the boundary, drop the blocking index */
            for (int64_t r = 0; r < m; r++) {
                int64_t i = (int64_t)idx[r];
                v[i] = i == blk ? 0 : fmax(v[i] + alpha * (z[i] - v[i]), 0);
            }
            continue;
        }
        for (int64_t i = 0; i < k; i++) v[i] = z[i];
        /* price the rest: (Ĥv)_j - λ a_j < 0 is a conflict of row j with d, in units of |g_j| */
        double lam = 0;
        for (int64_t r = 0; r < m; r++) {
            int64_t i = (int64_t)idx[r];
            lam += v[i] * mtgradi_dot(Hh + i * k, v, k);
        }
        int64_t jmin = -1;
        double vmin = 0;
        for (int64_t j = 0; j < k; j++) {
            if (v[j] > 0) continue;
            double q = 0, qa = 0;
            for (int64_t l = 0; l < k; l++) q += Hh[j * k + l] * v[l], qa += fabs(Hh[j * k + l] * v[l]);
            double viol = q - lam * a[j], tol = 32 * (double)k * DBL_EPSILON * (qa + lam * a[j]);
            if (viol < -tol && viol < vmin) vmin = viol, jmin = j;
        }
        if (jmin < 0) return 0;
        last_added = jmin;
    }
    return -1;
}

/* Polish the QP's min-norm point w (H = Gram, c = 0) in the equilibrated form; see above.
 * Uses the QP's workspace (free after its loop). */
static void minnorm_polish(const double *H, int64_t k, double *w, qp_ws *s)
{
    double *D = s->lam, *a = s->tabu, *v = s->y, *z = s->yray, *q = s->g, *idx = s->fl;
    double *y = s->r, *cand = s->p, *Hh = s->V;
    double dmin = INFINITY;
    for (int64_t i = 0; i < k; i++) {
        D[i] = sqrt(H[i * k + i]);
        if (!(D[i] > 0) || !isfinite(D[i])) return; /* a zero row: d = 0 is reachable exactly */
        dmin = fmin(dmin, D[i]);
    }
    for (int64_t i = 0; i < k; i++) {
        a[i] = dmin / D[i];
        for (int64_t j = 0; j < k; j++) Hh[i * k + j] = H[i * k + j] / D[i] / D[j];
    }
    double res0 = minnorm_scaled_residual(Hh, D, k, w, v, q);
    if (res0 == 0) return;
    double sv = 0; /* the QP's point in the equilibrated coordinates, aᵀv = 1 */
    for (int64_t i = 0; i < k; i++) v[i] = D[i] * w[i] / dmin, sv += a[i] * v[i];
    for (int64_t i = 0; i < k; i++) v[i] /= sv;
    if (minnorm_active_set(Hh, a, k, v, s, idx, z, y) != 0) {
        /* the QP's support was singular (affinely dependent rows, k > d): restart from the
         * shortest row; a support with linearly independent rows exists whenever d != 0 */
        int64_t j0 = 0;
        for (int64_t i = 1; i < k; i++)
            if (D[i] < D[j0]) j0 = i;
        for (int64_t i = 0; i < k; i++) v[i] = i == j0 ? 1 / a[i] : 0;
        if (minnorm_active_set(Hh, a, k, v, s, idx, z, y) != 0) return;
    }
    double sw = 0;
    for (int64_t i = 0; i < k; i++) cand[i] = a[i] * v[i], sw += cand[i];
    if (!(sw > 0)) return;
    for (int64_t i = 0; i < k; i++) cand[i] /= sw;
    if (minnorm_scaled_residual(Hh, D, k, cand, v, q) <= res0)
        for (int64_t i = 0; i < k; i++) w[i] = cand[i];
}

/* ------------------------------------------------------------------ support factor (fast path)
 *
 * The step of the active-set loop minimises ½pᵀHp + gᵀp over p with support F and sum p = 0.
 * On that hyperplane pᵀHp = pᵀAp for A = H_FF + ρ·11ᵀ (ρ = max|H|), and A is positive definite
 * exactly when the reduced Hessian is, so with A = LLᵀ the step is p = ν·A⁻¹1 − A⁻¹g_F,
 * ν = 1ᵀA⁻¹g_F / 1ᵀA⁻¹1 — the same Newton step the eigendecomposition gives, for O(m²) per
 * solve.
 * L follows the support: a row is appended when an index enters (O(m²)), and a row/column is
 * deleted by a rank-one update of the trailing block (O(m²)). A pivot below tol (relative to
 * max|H|, well above the eigen step's zero-curvature cut) means a (nearly) flat direction: the
 * iteration then falls back to the eigen step, which follows such directions as rays, and the
 * factor is rebuilt once the support changes again.
 */
enum { FAC_VALID = 0, FAC_REBUILD = 1, FAC_FAILED = 2 };

typedef struct {
    mtgradi_subchol f; /* of H + rho·11ᵀ on the support */
    int state;
    double rho, tol;
} qp_fac;

/* Factor A_FF for the support list fl[0..m) from scratch. */
static void fac_build(qp_fac *f, const qp_ws *s, const double *H, int64_t k, int64_t m)
{
    f->f.m = 0;
    f->state = FAC_VALID;
    for (int64_t a = 0; a < m; a++)
        if (mtgradi_subchol_append(&f->f, H, k, f->rho, (int64_t)s->fl[a], f->tol) != 0) {
            f->state = FAC_FAILED;
            return;
        }
}

/* The support changed: index j entered. */
static void fac_on_add(qp_fac *f, const double *H, int64_t k, int64_t j)
{
    if (f->state != FAC_VALID || mtgradi_subchol_append(&f->f, H, k, f->rho, j, f->tol) != 0)
        f->state = FAC_REBUILD;
}

/* The support changed: index j left. */
static void fac_on_drop(qp_fac *f, qp_ws *s, int64_t j)
{
    int64_t r = f->state == FAC_VALID ? mtgradi_subchol_find(&f->f, j) : -1;
    if (r < 0) f->state = FAC_REBUILD;
    else mtgradi_subchol_delete(&f->f, r, s->fv);
}

/* The Newton step on the support from the factor (STEP_NEWTON, or STEP_NONE if p = 0), or -1
 * when the factor cannot be used (the caller then takes the eigen step). */
static int fac_step(qp_fac *f, qp_ws *s, const double *H, int64_t k, int64_t m)
{
    if (f->state == FAC_REBUILD) fac_build(f, s, H, k, m);
    if (f->state != FAC_VALID || f->f.m != m) return -1;
    double su = 0, sv = 0;
    for (int64_t r = 0; r < m; r++) s->fu[r] = 1, s->fv[r] = s->g[(int64_t)s->fidx[r]];
    mtgradi_subchol_solve(&f->f, s->fu);
    mtgradi_subchol_solve(&f->f, s->fv);
    for (int64_t r = 0; r < m; r++) su += s->fu[r], sv += s->fv[r];
    if (!(su > 0)) return -1;
    double nu = sv / su;
    int nonzero = 0;
    for (int64_t i = 0; i < k; i++) s->p[i] = 0;
    for (int64_t r = 0; r < m; r++) {
        double pr = nu * s->fu[r] - s->fv[r];
        s->p[(int64_t)s->fidx[r]] = pr;
        nonzero |= pr != 0;
    }
    return nonzero ? STEP_NEWTON : STEP_NONE;
}

/* ------------------------------------------------------------------ the active-set loop */

/* The start for no warm start: the best vertex, argmin ½H_jj + c_j. */
static void best_vertex(const double *H, const double *c, int64_t k, double *w, qp_ws *s)
{
    int64_t j0 = 0;
    for (int64_t j = 1; j < k; j++)
        if (0.5 * H[j * k + j] + (c ? c[j] : 0) < 0.5 * H[j0 * k + j0] + (c ? c[j0] : 0)) j0 = j;
    for (int64_t i = 0; i < k; i++) w[i] = 0, s->in[i] = 0;
    w[j0] = 1, s->in[j0] = 1;
}

/* The loop shared by the fast solver and the reference: `fast` selects the factor step (with
 * the eigen step as fallback) or the eigen step only; `start` (NULL: the best vertex) is a point
 * of Δ whose support is the initial working set. */
static mtgrad_status active_set(const double *H, const double *c, int64_t k, const double *start,
                                double *w, int *iters, double *work, int fast)
{
    if (iters) *iters = 0;
    double hmax = max_abs(H, k * k), cmax = max_abs(c, k), sc = fmax(hmax, cmax);
    if (k == 1 || sc == 0) { /* constant objective (or a single point): the uniform weights */
        for (int64_t i = 0; i < k; i++) w[i] = 1.0 / (double)k;
        return MTGRAD_OK;
    }
    qp_ws s = qp_carve(work, k);
    double inv_s = 1 / sc;
    /* All tolerances are relative to sc (hmax, cmax <= sc), which makes the iteration invariant
     * under H, c -> t·H, t·c: rounding in g = Hw + c is ~eps·(hmax + cmax), in R ~eps·hmax. */
    double gscale = (hmax + cmax) * inv_s; /* of the scaled problem, for the final residual */
    double gtol = 1e-13 * (hmax + cmax);
    double addtol = fmax(1e-14, 4 * (double)k * DBL_EPSILON) * (hmax + cmax);
    qp_fac fac = {{s.L, s.fidx, 0, k}, FAC_REBUILD, hmax, 1e-8 * hmax};
    int restart_ok = fast && start; /* see the warm-start restart in the loop */
    if (!fast || hmax == 0) fac.state = FAC_FAILED, fast = 0;

    for (int64_t i = 0; i < k; i++) s.tabu[i] = 0;
    if (!start) best_vertex(H, c, k, w, &s);
    else
        for (int64_t i = 0; i < k; i++) w[i] = start[i], s.in[i] = start[i] > 0;

    int64_t maxit = 50 * k + 100, last_added = -1;
    int nfull = 0;
    mtgrad_status st = MTGRAD_E_MAXITER;
    int64_t it;
    for (it = 0; it < maxit; it++) {
        grad_scaled(H, c, k, 1.0, w, s.g, s.nz);
        int64_t m = support_list(&s, k);
        int kind = STEP_NONE;
        if (nfull < 2 && m >= 2) {
            kind = fast ? fac_step(&fac, &s, H, k, m) : -1;
            if (kind < 0 && restart_ok && it == 0) {
                /* The warm start's support has (nearly) flat directions — the uniform start of
                 * the SQP when k > d, where H has rank <= d + 1, or H = 0 (a linear model): ray
                 * steps would leave it one index per iteration, each an eigendecomposition of
                 * the reduced Hessian (O(k) iterations of O(k² r) at k = 1000). Growing the
                 * support from the best vertex reaches the same optimal value in about rank + 1
                 * factor steps (the reference keeps the start). */
                best_vertex(H, c, k, w, &s);
                fac.state = FAC_REBUILD;
                continue;
            }
            if (kind < 0) kind = reduced_step(H, k, hmax, gtol, m, &s);
        }
        if (kind != STEP_NONE) {
            double alpha = INFINITY;
            int64_t blk = -1;
            for (int64_t a = 0; a < m; a++) {
                int64_t i = (int64_t)s.fl[a];
                if (s.p[i] < 0 && w[i] / -s.p[i] < alpha) alpha = w[i] / -s.p[i], blk = i;
            }
            if (kind == STEP_NEWTON && alpha >= 1) alpha = 1, blk = -1;
            if (blk < 0 && kind == STEP_RAY) { /* rounding: no decreasing coordinate */
                nfull = 2;
                continue;
            }
            if (blk >= 0 && blk == last_added && alpha == 0) {
                /* the index just released wants to stay at 0: its violation was rounding */
                s.in[blk] = 0, s.tabu[blk] = 1, last_added = -1, nfull = 2;
                if (fast) fac_on_drop(&fac, &s, blk);
                continue;
            }
            for (int64_t a = 0; a < m; a++) {
                int64_t i = (int64_t)s.fl[a];
                w[i] += alpha * s.p[i];
                if (w[i] < 0) w[i] = 0;
            }
            if (alpha > 0)
                for (int64_t i = 0; i < k; i++) s.tabu[i] = 0;
            last_added = -1;
            if (blk >= 0) {
                w[blk] = 0, s.in[blk] = 0, nfull = 0;
                if (fast) fac_on_drop(&fac, &s, blk);
            } else {
                nfull++;
            }
            continue;
        }
        /* subproblem solved on the support: price the coordinates outside it */
        double nu = 0;
        for (int64_t a = 0; a < m; a++) nu += s.g[(int64_t)s.fl[a]];
        nu /= (double)m;
        int64_t jmin = -1;
        double vmin = -addtol;
        for (int64_t j = 0; j < k; j++)
            if (s.in[j] == 0 && s.tabu[j] == 0 && s.g[j] - nu < vmin) vmin = s.g[j] - nu, jmin = j;
        if (jmin < 0) {
            st = MTGRAD_OK;
            break;
        }
        s.in[jmin] = 1, last_added = jmin, nfull = 0;
        if (fast) fac_on_add(&fac, H, k, jmin);
    }
    if (iters) *iters = (int)it;
    renormalise(w, k);
    if (!c) minnorm_polish(H, k, w, &s);
    if (st == MTGRAD_OK) {
        grad_scaled(H, c, k, inv_s, w, s.g, s.nz);
        double res = mtgradi_qp_kkt_residual(w, s.g, k, gscale);
        if (!(res <= 1e-9)) st = MTGRAD_E_NOPROGRESS;
    }
    return st;
}

mtgrad_status mtgradi_qp_simplex(const double *H, const double *c, int64_t k, double *w,
                                 int *iters, double *work)
{
    return active_set(H, c, k, NULL, w, iters, work, 1);
}

mtgrad_status mtgradi_qp_simplex_from(const double *H, const double *c, int64_t k,
                                      const double *start, double *w, int *iters, double *work)
{
    return active_set(H, c, k, start, w, iters, work, 1);
}

mtgrad_status mtgradi_qp_simplex_ref(const double *H, const double *c, int64_t k, double *w,
                                     int *iters, double *work)
{
    return active_set(H, c, k, NULL, w, iters, work, 0);
}

/* ------------------------------------------------------------------ smooth convex f (SQP) */

size_t mtgradi_smooth_simplex_work_size(int64_t k)
{
    return (size_t)(k * k + 6 * k) + mtgradi_qp_simplex_work_size(k);
}

/* Where f can no longer resolve a descent (slope or decrease below rounding), take the full
 * model step v anyway if it lowers the KKT residual: Newton's local convergence is measured by
 * the residual, not by f. g is scratch here. Returns 1 if w moved. */
static int newton_by_residual(const mtgradi_simplex_fn *f, int64_t k, double *w, const double *v,
                              double res, double *g)
{
    double gs = 0;
    (void)f->eval(f->ctx, v, g, NULL, &gs);
    if (!(mtgradi_qp_kkt_residual(v, g, k, gs) < res)) return 0;
    memcpy(w, v, (size_t)k * sizeof *w);
    renormalise(w, k);
    return 1;
}

mtgrad_status mtgradi_smooth_simplex(const mtgradi_simplex_fn *f, int64_t k, double *w, double tol,
                                     int max_iter, int *iters, double *work)
{
    double *g = work, *c = g + k, *v = c + k, *wt = v + k, *best = wt + k, *tmp = best + k;
    double *Hs = tmp + k, *qpw = Hs + k * k;
    if (tol <= 0) tol = MTGRADI_QP_TOL;
    if (max_iter <= 0) max_iter = 200;
    if (iters) *iters = 0;
    mtgradi_simplex_project(w, k, w, tmp);
    double best_res = INFINITY, gs = 0;
    int stalls = 0, decreased = 1, it;
    mtgrad_status st = MTGRAD_E_MAXITER;
    for (it = 0; it < max_iter; it++) {
        double fw = f->eval(f->ctx, w, g, Hs, &gs);
        double res = mtgradi_qp_kkt_residual(w, g, k, gs);
        /* Near the optimum f changes below its rounding (f - f* ~ residual²), so the Armijo
         * test accepts steps through the slack; progress is then judged by the residual. */
        if (res < best_res) {
            best_res = res, stalls = 0;
            memcpy(best, w, (size_t)k * sizeof *w);
        } else if (decreased) {
            stalls = 0; /* the residual is not monotone far from the optimum; f is */
        } else if (++stalls >= 3) {
            st = best_res <= fmax(tol, 1e-8) ? MTGRAD_OK : MTGRAD_E_NOPROGRESS;
            break;
        }
        if (res <= tol) {
            st = MTGRAD_OK;
            break;
        }
        /* quadratic model: min_v ½vᵀHv + (g - H w)ᵀv over the simplex */
        for (int64_t i = 0; i < k; i++) c[i] = g[i] - mtgradi_dot(Hs + i * k, w, k);
        /* warm start from w: near the optimum the support is already right, so the QP takes a
         * few steps instead of growing the support from a vertex (the model is strictly convex
         * on the simplex in practice, so its solution does not depend on the start) */
        /* (the best iterate is fine as a direction: the status is not needed) */
        (void)mtgradi_qp_simplex_from(Hs, c, k, w, v, NULL, qpw);
        /* sum(v - w) = 0 up to rounding, so shift g by nu = wᵀg (= the multiplier on the
         * support at the optimum): g·(v - w) would otherwise carry |g|·rounding, which swamps
         * the true slope (~ -residual²) near the optimum */
        double nu = mtgradi_dot(w, g, k), slope = 0;
        for (int64_t i = 0; i < k; i++) slope += (g[i] - nu) * (v[i] - w[i]);
        if (!(slope < 0)) {
            if (newton_by_residual(f, k, w, v, res, g)) continue;
            st = best_res <= fmax(tol, 1e-8) ? MTGRAD_OK : MTGRAD_E_NOPROGRESS;
            break;
        }
        double t = 1, slack = 4 * DBL_EPSILON * (fabs(fw) + gs), ft = 0;
        int accepted = 0;
        for (int ls = 0; ls < 60; ls++, t *= 0.5) {
            /* t = 1 takes v itself so that the coordinates the QP zeroed are exactly 0 */
            for (int64_t i = 0; i < k; i++) wt[i] = t == 1 ? v[i] : w[i] + t * (v[i] - w[i]);
            ft = f->eval(f->ctx, wt, NULL, NULL, NULL);
            if (ft <= fw + 1e-4 * t * slope + slack) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) {
            if (newton_by_residual(f, k, w, v, res, g)) continue;
            st = best_res <= fmax(tol, 1e-8) ? MTGRAD_OK : MTGRAD_E_NOPROGRESS;
            break;
        }
        decreased = ft < fw;
        memcpy(w, wt, (size_t)k * sizeof *w);
        renormalise(w, k);
    }
    if (it == max_iter) { /* the last step was never evaluated: it may be the best */
        (void)f->eval(f->ctx, w, g, NULL, &gs);
        double res = mtgradi_qp_kkt_residual(w, g, k, gs);
        if (res < best_res) best_res = res, memcpy(best, w, (size_t)k * sizeof *w);
        if (res <= tol) st = MTGRAD_OK;
    }
    if (iters) *iters = it;
    memcpy(w, best, (size_t)k * sizeof *w);
    return st;
}

/* ------------------------------------------------------------------ CAGrad-family objective */

double mtgradi_normlin_eval(void *ctx, const double *w, double *grad, double *hess, double *gscale)
{
    const mtgradi_normlin *o = ctx;
    int64_t k = o->k;
    mtgradi_matvec(o->M, k, w, o->Mw);
    double q = fmax(mtgradi_dot(w, o->Mw, k), 0.0), s = sqrt(q + o->eps);
    double f = mtgradi_dot(w, o->lin, k) + o->beta * s + 0.5 * o->gamma * q;
    double coef = o->beta / s + o->gamma; /* d f / d(Mw) */
    if (grad)
        for (int64_t i = 0; i < k; i++) grad[i] = o->lin[i] + coef * o->Mw[i];
    if (hess) {
        /* beta·(M/s - (Mw)(Mw)ᵀ/s³) + gamma·M: PSD since (Mw)ᵀ M⁺ (Mw) = wᵀMw < s² */
        double s3 = s * s * s;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++)
                hess[i * k + j] = coef * o->M[i * k + j] - o->beta * o->Mw[i] * o->Mw[j] / s3;
    }
    if (gscale) *gscale = max_abs(o->lin, k) + coef * max_abs(o->Mw, k);
    return f;
}

void mtgradi_cagrad_recover(const double *M, int64_t k, double phi, double c, int rescale, double *w)
{
    double lam = phi / (sqrt(fmax(mtgradi_quad(M, k, w), 0.0)) + 1e-8);
    double div = rescale == 0 ? 1.0 : rescale == 1 ? 1.0 + c * c : 1.0 + c;
    for (int64_t i = 0; i < k; i++) w[i] = (1.0 / (double)k + lam * w[i]) / div;
}
