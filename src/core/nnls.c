/* nnls.c — bound-constrained QP (Lawson–Hanson in Gram form) and the positive root of
 * M w = w^(−p) (damped Newton). See nnls.h for the problems and the guarantees. */
#include "nnls.h"

#include <float.h>
#include <math.h>

/* ------------------------------------------------------------------ Lawson–Hanson */

size_t mtgradi_nnls_work_size(int64_t k) { return (size_t)(k * k + 6 * k); }

/* z_P = −(Q_PP)^{-1} c_P, z = 0 off P. S: k*k scratch. Returns -1 if Q_PP is not PD. */
static int solve_passive(const double *Q, const double *c, int64_t k, const double *passive,
                         double *S, double *z)
{
    int64_t n = 0;
    for (int64_t i = 0; i < k; i++) {
        if (passive[i] == 0) continue;
        int64_t m = 0;
        for (int64_t j = 0; j < k; j++)
            if (passive[j] != 0) S[n * k + m++] = Q[i * k + j];
        z[n++] = -c[i];
    }
    /* S holds an n x n matrix with row stride k; compact it to stride n for the Cholesky */
    for (int64_t i = 1; i < n; i++)
        for (int64_t j = 0; j < n; j++) S[i * n + j] = S[i * k + j];
    if (mtgradi_cholesky(S, n) != 0) return -1;
    mtgradi_cholesky_solve(S, n, z);
    /* scatter back (from the end, so the compact values are not overwritten before use) */
    for (int64_t i = k - 1; i >= 0; i--) {
        if (passive[i] != 0) z[i] = z[--n];
        else z[i] = 0;
    }
    return 0;
}

/* z from the factor of Q_PP that follows P (fast path): same values as solve_passive. */
static void solve_factor(const mtgradi_subchol *f, const double *c, int64_t k, double *b, double *z)
{
    for (int64_t r = 0; r < f->m; r++) b[r] = -c[(int64_t)f->idx[r]];
    mtgradi_subchol_solve(f, b);
    for (int64_t i = 0; i < k; i++) z[i] = 0;
    for (int64_t r = 0; r < f->m; r++) z[(int64_t)f->idx[r]] = b[r];
}

/* Lawson–Hanson; fast = 1 keeps a Cholesky factor of Q_PP up to date as P changes (O(|P|²) per
 * change), fast = 0 (the reference) refactors Q_PP from scratch for every solve. */
static int nnls_run(const double *Q, const double *c, int64_t k, double *x, double *work, int fast)
{
    double *S = work, *z = work + k * k, *grad = z + k, *passive = grad + k, *fidx = passive + k;
    double *b = fidx + k, *nzl = b + k;
    mtgradi_subchol f = {S, fidx, 0, k};
    double cmax = 0;
    for (int64_t i = 0; i < k; i++) {
        x[i] = 0;
        passive[i] = 0;
        cmax = fmax(cmax, fabs(c[i]));
    }
    for (int64_t outer = 0; outer < 3 * k + 10; outer++) {
        /* gradient of the objective; a free index with a negative gradient enters P */
        double qx = 0;
        int64_t nz = 0;
        for (int64_t j = 0; j < k; j++) /* x is 0 off P: only its nonzeros contribute */
            if (x[j] != 0) nzl[nz++] = (double)j;
        for (int64_t i = 0; i < k; i++) {
            double s = c[i], a = 0;
            for (int64_t r = 0; r < nz; r++) {
                double t = Q[i * k + (int64_t)nzl[r]] * x[(int64_t)nzl[r]];
                s += t;
                a += fabs(t);
            }
            grad[i] = s;
            qx = fmax(qx, a);
        }
        /* rounding in grad is ~eps * (|c| + |Q||x|): below that the KKT test is met */
        double tol = 64 * DBL_EPSILON * (cmax + qx);
        int64_t t = -1;
        for (int64_t i = 0; i < k; i++)
            if (passive[i] == 0 && grad[i] < -tol && (t < 0 || grad[i] < grad[t])) t = i;
        if (t < 0) return 0;
        passive[t] = 1;
        /* the same test as mtgradi_cholesky: a pivot that is not > 0 */
        if (fast && mtgradi_subchol_append(&f, Q, k, 0.0, t, 0.0) != 0) return -1;
        for (int64_t inner = 0; inner <= k; inner++) {
            if (fast) solve_factor(&f, c, k, b, z);
            else if (solve_passive(Q, c, k, passive, S, z) != 0) return -1;
            int all_pos = 1;
            for (int64_t i = 0; i < k; i++)
                if (passive[i] != 0 && !(z[i] > 0)) all_pos = 0;
            if (all_pos) {
                for (int64_t i = 0; i < k; i++) x[i] = z[i];
                break;
            }
            /* move from x towards z until the first passive coordinate hits 0, drop it */
            double step = 1;
            int64_t hit = -1;
            for (int64_t i = 0; i < k; i++) {
                if (passive[i] == 0 || z[i] > 0) continue;
                double r = x[i] / (x[i] - z[i]);
                if (hit < 0 || r < step) step = r, hit = i;
            }
            for (int64_t i = 0; i < k; i++) {
                if (passive[i] == 0) continue;
                x[i] += step * (z[i] - x[i]);
                if (i == hit || !(x[i] > 0)) {
                    x[i] = 0;
                    passive[i] = 0;
                    if (fast) mtgradi_subchol_delete(&f, mtgradi_subchol_find(&f, i), b);
                }
            }
        }
    }
    return -2;
}

int mtgradi_nnls_gram(const double *Q, const double *c, int64_t k, double *x, double *work)
{
    return nnls_run(Q, c, k, x, work, 1);
}

int mtgradi_nnls_gram_ref(const double *Q, const double *c, int64_t k, double *x, double *work)
{
    return nnls_run(Q, c, k, x, work, 0);
}

/* ------------------------------------------------------------------ dual cone (UPGrad, DualProj) */

void mtgradi_cone_gram(const double *M, int64_t k, double norm_eps, double reg_eps, double *Q)
{
    double tr = 0;
    for (int64_t i = 0; i < k; i++) tr += M[i * k + i];
    /* TorchJD normalises by the trace only above norm_eps; below, the gradients count as zero */
    double scale = tr >= norm_eps && tr > 0 ? 1 / tr : 0;
    for (int64_t i = 0; i < k * k; i++) Q[i] = M[i] * scale;
    for (int64_t i = 0; i < k; i++) Q[i * k + i] += reg_eps;
}

size_t mtgradi_cone_work_size(int64_t k) { return mtgradi_nnls_work_size(k) + (size_t)k; }

int mtgradi_cone_project(const double *Q, const double *u, int64_t k, double *v, double *work)
{
    double *c = work, *nw = work + k;
    mtgradi_matvec(Q, k, u, c); /* ½(u+x)ᵀQ(u+x) = ½xᵀQx + (Qu)ᵀx + const */
    int rc = mtgradi_nnls_gram(Q, c, k, v, nw);
    for (int64_t i = 0; i < k; i++) v[i] += u[i];
    return rc;
}

/* ------------------------------------------------------------------ low-rank dual (UPGrad, k > d)
 *
 * With Q = AAᵀ + ρI (A: k x r, r << k), min ½vᵀQv s.t. v ≥ u has the concave dual in r
 * variables  φ(λ) = Σ_i min_{v_i ≥ u_i} (½ρv_i² + (Aλ)_i v_i) − ½|λ|²,  maximised where
 * λ = Aᵀv(λ), v_i(λ) = max(u_i, −(Aλ)_i/ρ). Those are exactly the KKT conditions of the primal
 * (free coordinates: (Qv)_i = 0; the others v_i = u_i with (Qv)_i ≥ 0), so v(λ*) is the NNLS
 * solution. φ is piecewise quadratic: semismooth Newton, H = I + A_FᵀA_F/ρ on the free set F,
 * with Armijo backtracking, ends when |Aᵀv − λ| is at rounding level of its terms (once the step
 * stays on one piece it solves that piece's linear system exactly). No convergence within 100
 * steps (semismooth Newton can cycle between pieces) returns -2: the caller then takes the
 * Lawson–Hanson solver. O(kr²) per step instead of O(k·|P|) per active-set change
 * (|P| ~ k/2 for UPGrad's problems at k = 1000, d = 8).
 */

size_t mtgradi_cone_lowrank_work_size(int64_t r) { return (size_t)(r * r + 5 * r); }

/* v(λ) and φ(λ); t: Aλ (k scratch). */
static double dual_eval(const double *A, int64_t k, int64_t r, double rho, const double *u,
                        const double *lam, double *v, double *t)
{
    double phi = -0.5 * mtgradi_dot(lam, lam, r);
    for (int64_t i = 0; i < k; i++) {
        t[i] = mtgradi_dot(A + i * r, lam, r);
        v[i] = fmax(u[i], -t[i] / rho);
        phi += 0.5 * rho * v[i] * v[i] + t[i] * v[i];
    }
    return phi;
}

/* g = Aᵀv − λ (the ascent direction's right-hand side), H = I + A_FᵀA_F/ρ; returns whether
 * |g| is at rounding level of its terms (λ is then the maximiser). */
static int dual_newton_system(const double *A, int64_t k, int64_t r, double rho, const double *u,
                              const double *lam, const double *v, double *g, double *gs,
                              double *H)
{
    for (int64_t a = 0; a < r; a++) g[a] = -lam[a], gs[a] = fabs(lam[a]);
    for (int64_t a = 0; a < r * r; a++) H[a] = 0;
    for (int64_t i = 0; i < k; i++) {
        const double *ai = A + i * r;
        for (int64_t a = 0; a < r; a++) g[a] += ai[a] * v[i], gs[a] += fabs(ai[a] * v[i]);
        if (v[i] > u[i]) /* free */
            for (int64_t a = 0; a < r; a++)
                for (int64_t b = 0; b < r; b++) H[a * r + b] += ai[a] * ai[b] / rho;
    }
    for (int64_t a = 0; a < r; a++) H[a * r + a] += 1;
    int small = 1;
    for (int64_t a = 0; a < r; a++)
        if (!(fabs(g[a]) <= 16 * DBL_EPSILON * sqrt((double)k) * gs[a])) small = 0;
    return small;
}

int mtgradi_cone_project_lowrank(const double *A, int64_t k, int64_t r, double rho,
                                 const double *u, double *v, double *t, double *work)
{
    double *H = work, *lam = H + r * r, *g = lam + r, *step = g + r, *trial = step + r;
    double *gs = trial + r;
    if (!(rho > 0)) return -1;
    for (int64_t a = 0; a < r; a++) lam[a] = 0;
    double phi = dual_eval(A, k, r, rho, u, lam, v, t);
    for (int it = 0; it < 100; it++) {
        if (dual_newton_system(A, k, r, rho, u, lam, v, g, gs, H)) return 0;
        for (int64_t a = 0; a < r; a++) step[a] = g[a];
        if (mtgradi_cholesky(H, r) != 0) return -1;
        mtgradi_cholesky_solve(H, r, step);
        double slope = mtgradi_dot(g, step, r), alpha = 1, phit = phi;
        if (!(slope > 0)) return -2; /* no ascent left above rounding, yet g is not small */
        for (int bt = 0; bt < 60; bt++, alpha *= 0.5) {
            for (int64_t a = 0; a < r; a++) trial[a] = lam[a] + alpha * step[a];
            phit = dual_eval(A, k, r, rho, u, trial, v, t);
            /* rounding slack: near the maximiser φ changes below its own rounding */
            if (phit >= phi + 1e-4 * alpha * slope - 64 * DBL_EPSILON * fabs(phi)) break;
        }
        for (int64_t a = 0; a < r; a++) lam[a] = trial[a];
        phi = phit;
    }
    return -2;
}

/* ------------------------------------------------------------------ M w = w^(-p)
 *
 * Each Newton step solves (D + M) s = −g with D = diag(p w^(−p−1)) > 0. Dense, that is one k x k
 * Cholesky per step: O(k³), ~0.2 s at k = 1000, and at k > d (no positive root) the iterates run
 * ~25 steps out along a null direction before the growth test stops them. When M is a Gram
 * matrix of rank r << k and its pivoted Cholesky factor M = LLᵀ (L: k x r) is exact to rounding
 * (mtgradi_lowrank_factor: the same test as the eigensolver's low-rank path), the step comes from
 * Woodbury instead,
 *     s = D⁻¹b − D⁻¹L C⁻¹ LᵀD⁻¹b,   C = I_r + LᵀD⁻¹L   (SPD, >= I),   b = −g,
 * and Mw = L(Lᵀw), wᵀMw = |Lᵀw|²: O(kr²) per step. The start point and the final verdict
 * (rel_residual) use M itself on both paths, so both accept exactly the same roots. Small k and
 * full-rank M keep the dense path (and its bits); mtgradi_bargain_solve_ref always takes it.
 */

/* The operator of one solve: M (L == NULL) or its exact factor L (k x r, row-major, stride r).
 * t, c: r doubles of scratch each; C: r x r. */
typedef struct {
    const double *M, *L;
    int64_t k, r;
    double *t, *c, *C;
} bargain_op;

/* H (k x k) for the dense path; on the low-rank path the same storage holds L (k x k while it is
 * factored, then k x r) followed by C and the two r-vectors (r <= k/4: they fit). g, s, trial,
 * wstart, dd: k each (s and trial double as the factor's 2k of scratch before the loop). */
size_t mtgradi_bargain_work_size(int64_t k) { return (size_t)(k * k + 5 * k); }

/* t = Lᵀw (rows in order: a fixed summation order) */
static void lowrank_apply_t(const bargain_op *op, const double *w)
{
    for (int64_t a = 0; a < op->r; a++) op->t[a] = 0;
    for (int64_t i = 0; i < op->k; i++)
        for (int64_t a = 0; a < op->r; a++) op->t[a] += op->L[i * op->r + a] * w[i];
}

static void op_matvec(const bargain_op *op, const double *w, double *y)
{
    if (!op->L) {
        mtgradi_matvec(op->M, op->k, w, y);
        return;
    }
    lowrank_apply_t(op, w);
    for (int64_t i = 0; i < op->k; i++) y[i] = mtgradi_dot(op->L + i * op->r, op->t, op->r);
}

static double op_quad(const bargain_op *op, const double *w)
{
    if (!op->L) return mtgradi_quad(op->M, op->k, w);
    lowrank_apply_t(op, w);
    return mtgradi_dot(op->t, op->t, op->r);
}

int mtgradi_woodbury_solve(const double *L, int64_t k, int64_t r, const double *dd, double *b,
                           double *C, double *c)
{
    for (int64_t a = 0; a < r * r; a++) C[a] = 0;
    for (int64_t a = 0; a < r; a++) C[a * r + a] = 1, c[a] = 0;
    for (int64_t i = 0; i < k; i++) {
        const double *li = L + i * r;
        if (!(dd[i] > 0) || !isfinite(dd[i])) return -1; /* D underflowed or overflowed */
        double inv = 1 / dd[i];
        for (int64_t a = 0; a < r; a++) {
            c[a] += li[a] * (b[i] * inv);
            for (int64_t q = 0; q <= a; q++) C[a * r + q] += li[a] * li[q] * inv;
        }
    }
    if (mtgradi_cholesky(C, r) != 0) return -1; /* reads the lower triangle only */
    mtgradi_cholesky_solve(C, r, c);
    for (int64_t i = 0; i < k; i++) b[i] = (b[i] - mtgradi_dot(L + i * r, c, r)) / dd[i];
    return 0;
}

/* s <- (D + M)⁻¹ s, D = diag(dd). H: k x k scratch (dense path). Returns -1 if the system is not
 * numerically positive definite. */
static int op_newton_solve(const bargain_op *op, const double *dd, double *s, double *H)
{
    int64_t k = op->k;
    if (op->L) return mtgradi_woodbury_solve(op->L, k, op->r, dd, s, op->C, op->c);
    for (int64_t i = 0; i < k; i++) {
        for (int64_t j = 0; j < k; j++) H[i * k + j] = op->M[i * k + j];
        H[i * k + i] += dd[i];
    }
    if (mtgradi_cholesky(H, k) != 0) return -1;
    mtgradi_cholesky_solve(H, k, s);
    return 0;
}

/* φ with φ'(t) = t^(−p) */
static double phi(double t, double p)
{
    return p == 1 ? log(t) : pow(t, 1 - p) / (1 - p);
}

static double objective(const bargain_op *op, double p, const double *w)
{
    double s = 0.5 * op_quad(op, w);
    for (int64_t i = 0; i < op->k; i++) s -= phi(w[i], p);
    return s;
}

/* Scale u > 0 to the minimiser of F along its ray: t^(1+p) = Σ u_i^(1−p) / uᵀMu.
 * Returns 0, or -1 if uᵀMu <= 0 (u is then a non-negative null direction of M). */
static int ray_scale(const double *M, int64_t k, double p, double *u)
{
    double q = mtgradi_quad(M, k, u), s = 0;
    if (!(q > 0)) return -1;
    for (int64_t i = 0; i < k; i++) s += pow(u[i], 1 - p);
    double t = pow(s / q, 1 / (1 + p));
    for (int64_t i = 0; i < k; i++) u[i] *= t;
    return 0;
}

/* max_i |(Mw)_i − w_i^(−p)| / w_i^(−p), the residual relative to the right-hand side. Sets
 * *nonpos when some (Mw)_i <= 0 (no root can be near). Strict on purpose: where (Mw)_i is a
 * cancellation of terms ~1e8 times larger, rounding alone fails the test, and so it should —
 * such an iterate is an artefact of rounding in M (an almost-null direction), not a root. */
static double rel_residual(const double *M, int64_t k, double p, const double *w, int *nonpos)
{
    double worst = 0;
    *nonpos = 0;
    for (int64_t i = 0; i < k; i++) {
        double s = mtgradi_dot(M + i * k, w, k), r = pow(w[i], -p);
        if (!(s > 0)) *nonpos = 1;
        worst = fmax(worst, fabs(s - r) / r);
    }
    return worst;
}

static int all_positive(const double *v, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        if (!(v[i] > 0) || !isfinite(v[i])) return 0;
    return 1;
}

/* Starting point: the better of diag(M)^(-1/2) and w0 (each ray-scaled). Returns -1 if none. */
static int start_point(const bargain_op *op, double p, const double *w0, double *w, double *u)
{
    const double *M = op->M;
    int64_t k = op->k;
    for (int64_t i = 0; i < k; i++) {
        if (!(M[i * k + i] > 0)) return -1; /* a zero row: e_i is a null direction */
        w[i] = 1 / sqrt(M[i * k + i]);
    }
    if (ray_scale(M, k, p, w) != 0) return -1; /* the unit gradients sum to zero */
    if (w0 && all_positive(w0, k)) {
        for (int64_t i = 0; i < k; i++) u[i] = w0[i];
        if (ray_scale(M, k, p, u) == 0 && objective(op, p, u) < objective(op, p, w))
            for (int64_t i = 0; i < k; i++) w[i] = u[i];
    }
    return 0;
}

/* The rank r of the exact factor M = LLᵀ the solver uses (L written to the first k*r doubles of
 * L, stride r), or 0 for the dense path: k < 16, r > k/4 (Woodbury no longer pays), or M not
 * of low rank to rounding. scratch: 2k doubles. */
static int64_t bargain_lowrank(const double *M, int64_t k, double *L, double *scratch)
{
    if (k < 16) return 0;
    int64_t r = mtgradi_lowrank_factor(M, k, L, scratch);
    if (r < 1 || r > k / 4) return 0;
    for (int64_t i = 0; i < k; i++) /* compact to stride r (forward: i*r + c <= i*k + c) */
        for (int64_t c = 0; c < r; c++) L[i * r + c] = L[i * k + c];
    return r;
}

int64_t mtgradi_bargain_rank(const double *M, int64_t k, double *work)
{
    return bargain_lowrank(M, k, work, work + k * k + k);
}

/* The damped Newton iteration from w (a start point) on op. */
static mtgradi_bargain_result newton(const bargain_op *op, double p, double *w, double *work,
                                     int *iters)
{
    int64_t k = op->k;
    double *H = work, *g = H + k * k, *s = g + k, *trial = s + k, *wstart = trial + k;
    double *dd = wstart + k;
    for (int64_t i = 0; i < k; i++) wstart[i] = w[i];
    int converged = 0, it;
    for (it = 0; it < 200 && !converged; it++) {
        /* gradient Mw − w^(−p), Hessian M + diag(p w^(−p−1)), Newton step s = −H⁻¹g */
        double fscale = 0;
        op_matvec(op, w, g);
        for (int64_t i = 0; i < k; i++) {
            double r = pow(w[i], -p);
            g[i] -= r;
            s[i] = -g[i];
            fscale += r * w[i];
            dd[i] = p * r / w[i];
        }
        if (op_newton_solve(op, dd, s, H) != 0) break;
        double dec2 = -mtgradi_dot(g, s, k); /* Newton decrement²: ≈ 2(F − F*) */
        if (!(dec2 >= 0) || !isfinite(dec2)) break;
        /* relative to Σ w_i^(1−p) (the natural size of F's terms); rounding floor ~1e-32 */
        if (dec2 <= 1e-24 * fscale) converged = 1;
        /* near the root F differences drown in rounding: take the full step there */
        int full = dec2 <= 1e-8 * fscale;
        double t = 1;
        for (int64_t i = 0; i < k; i++)
            if (s[i] < 0) t = fmin(t, 0.99 * w[i] / -s[i]); /* stay positive */
        double f0 = full ? 0 : objective(op, p, w);
        int accepted = 0;
        for (int bt = 0; bt < 60; bt++, t *= 0.5) {
            for (int64_t i = 0; i < k; i++) trial[i] = w[i] + t * s[i];
            if (!all_positive(trial, k)) continue;
            if (full || objective(op, p, trial) <= f0 - 0.25 * t * dec2) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) break;
        for (int64_t i = 0; i < k; i++) w[i] = trial[i];
        /* geometric growth along a non-negative null direction: F is unbounded below */
        for (int64_t i = 0; i < k; i++)
            if (w[i] > 1e15 * wstart[i]) {
                if (iters) *iters = it + 1;
                return MTGRADI_BARGAIN_NO_ROOT;
            }
    }
    if (iters) *iters = it;
    int nonpos, grown = 0;
    double res = rel_residual(op->M, k, p, w, &nonpos);
    if (all_positive(w, k) && !nonpos && res <= 1e-8) return MTGRADI_BARGAIN_OK;
    /* a rounding-level "root" far out along an (almost) null direction of M, or one with
     * <g_i, d> <= 0, means there is no positive root */
    for (int64_t i = 0; i < k; i++)
        if (w[i] > 1e6 * wstart[i]) grown = 1;
    return nonpos || grown ? MTGRADI_BARGAIN_NO_ROOT : MTGRADI_BARGAIN_STALLED;
}

/* lowrank = 0: always the dense path (the reference). */
static mtgradi_bargain_result bargain_run(const double *M, int64_t k, double p, const double *w0,
                                          double *w, double *work, int *iters, int lowrank)
{
    bargain_op op = {M, NULL, k, 0, NULL, NULL, NULL};
    double *g = work + k * k, *s = g + k, *trial = s + k;
    if (iters) *iters = 0;
    if (start_point(&op, p, w0, w, trial) != 0) return MTGRADI_BARGAIN_NO_ROOT;
    int64_t r = lowrank ? bargain_lowrank(M, k, work, s) : 0; /* s, trial: 2k of scratch */
    if (r > 0) {
        op.L = work, op.r = r;
        op.C = work + k * r, op.t = op.C + r * r, op.c = op.t + r;
    }
    return newton(&op, p, w, work, iters);
}

mtgradi_bargain_result mtgradi_bargain_solve(const double *M, int64_t k, double p, const double *w0,
                                             double *w, double *work, int *iters)
{
    return bargain_run(M, k, p, w0, w, work, iters, 1);
}

mtgradi_bargain_result mtgradi_bargain_solve_ref(const double *M, int64_t k, double p,
                                                 const double *w0, double *w, double *work,
                                                 int *iters)
{
    return bargain_run(M, k, p, w0, w, work, iters, 0);
}

const mtgrad_param_desc mtgradi_cone_params[MTGRADI_CONE_N_PARAMS] = {
    {"pref_vector", MTGRAD_PARAM_CHOICE, 0, 0, 0, "mean|ones", 0,
     "preference weights: mean = 1/k each (TorchJD default), ones = 1 each"},
    {"norm_eps", MTGRAD_PARAM_REAL, 1e-4, 0, 1e300, NULL, 0,
     "M is divided by tr(M) only if tr(M) >= norm_eps (absolute); else M counts as zero"},
    {"reg_eps", MTGRAD_PARAM_REAL, 1e-4, 0, 1, NULL, 0,
     "added to the diagonal of M/tr(M) so every QP is strictly convex (0: exact, needs M non-singular)"},
};

mtgrad_status mtgradi_cone_status(mtgrad_aggregator *a, int rc)
{
    if (rc == -1)
        return mtgradi_fail(a, MTGRAD_E_NOPROGRESS,
                            "%s: M/tr(M) + reg_eps*I is numerically singular (reg_eps = %g); "
                            "the last feasible iterate was used", a->m->name, a->pv[MTGRADI_CONE_REG_EPS]);
    if (rc == -2) return mtgradi_fail(a, MTGRAD_E_MAXITER, "%s: active-set QP hit its iteration cap", a->m->name);
    return MTGRAD_OK;
}
