/* MGDA (exact, sener_minnorm, frank_wolfe), CAGrad, IMGrad and ConicGrad through the public API,
 * checked against independent computations: brute-force enumeration of supports for the
 * min-norm point, hand-derived iterations, dual optimality against random simplex points and a
 * reference solution, primal optimality conditions, and closed forms in parameter space. */
#include "harness.h"
#include "internal.h"
#include "qp.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KMAX 8
#define DMAX 64

static mtgrad_status run(const char *method, const char *params, const double *G, int64_t k,
                         int64_t d, double *dir, double *w)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&a, method, k, params, err, sizeof err);
    if (s != MTGRAD_OK) {
        fprintf(stderr, "aggregator_new(%s, %s): %s\n", method, params, err);
        return s;
    }
    s = mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w);
    mtgrad_aggregator_free(a);
    return s;
}

static void gram(const double *G, int k, int d, double *M)
{
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) M[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
}

static void combine(const double *G, int k, int d, const double *w, double *out)
{
    for (int j = 0; j < d; j++) {
        out[j] = 0;
        for (int i = 0; i < k; i++) out[j] += w[i] * G[i * d + j];
    }
}

static void random_G(mtgradi_rng *r, int k, int d, double *G)
{
    for (int i = 0; i < k * d; i++) G[i] = mtgradi_rng_normal(r);
}

/* Random point of the simplex (normalised exponentials, sometimes sparse). */
static void random_simplex(mtgradi_rng *r, int k, double *x)
{
    double s = 0;
    for (int i = 0; i < k; i++) {
        x[i] = -log(1 - mtgradi_rng_uniform(r));
        if (mtgradi_rng_uniform(r) < 0.2) x[i] = 0;
        s += x[i];
    }
    if (s == 0) x[0] = s = 1;
    for (int i = 0; i < k; i++) x[i] /= s;
}

/* min over the simplex of wᵀMw by enumeration of supports (Lagrange system on each support,
 * Gaussian elimination; singular supports skipped: some optimum has a nonsingular one). */
static double brute_min_norm(const double *M, int k)
{
    double best = INFINITY, mmax = 0;
    for (int i = 0; i < k * k; i++) mmax = fmax(mmax, fabs(M[i]));
    for (unsigned mask = 1; mask < (1u << k); mask++) {
        int idx[KMAX], m = 0, n;
        for (int i = 0; i < k; i++)
            if (mask & (1u << i)) idx[m++] = i;
        n = m + 1;
        double A[(KMAX + 1) * (KMAX + 1)], b[KMAX + 1];
        for (int a = 0; a < m; a++) {
            for (int c = 0; c < m; c++) A[a * n + c] = M[idx[a] * k + idx[c]];
            A[a * n + m] = A[m * n + a] = 1, b[a] = 0;
        }
        A[m * n + m] = 0, b[m] = 1;
        int ok = 1;
        for (int col = 0; col < n && ok; col++) {
            int piv = col;
            for (int rr = col + 1; rr < n; rr++)
                if (fabs(A[rr * n + col]) > fabs(A[piv * n + col])) piv = rr;
            if (!(fabs(A[piv * n + col]) > 1e-11 * fmax(mmax, 1e-300))) ok = 0;
            if (!ok) break;
            for (int j = 0; j < n; j++) {
                double t = A[col * n + j];
                A[col * n + j] = A[piv * n + j], A[piv * n + j] = t;
            }
            double t = b[col];
            b[col] = b[piv], b[piv] = t;
            for (int rr = col + 1; rr < n; rr++) {
                double f = A[rr * n + col] / A[col * n + col];
                for (int j = col; j < n; j++) A[rr * n + j] -= f * A[col * n + j];
                b[rr] -= f * b[col];
            }
        }
        if (!ok) continue;
        for (int rr = n - 1; rr >= 0; rr--) {
            double s = b[rr];
            for (int j = rr + 1; j < n; j++) s -= A[rr * n + j] * b[j];
            b[rr] = s / A[rr * n + rr];
        }
        double w[KMAX] = {0};
        int feas = 1;
        for (int a = 0; a < m; a++) {
            if (b[a] < -1e-12) feas = 0;
            w[idx[a]] = fmax(b[a], 0);
        }
        if (!feas) continue;
        best = fmin(best, mtgradi_quad(M, k, w));
    }
    return best;
}

/* ------------------------------------------------------------------ MGDA */

static void test_mgda_exact(mtgradi_rng *r)
{
    double G[KMAX * DMAX], M[KMAX * KMAX], dir[DMAX], w[KMAX];
    for (int rep = 0; rep < 40; rep++) {
        int k = 2 + rep % 7, d = rep % 3 == 0 ? 2 : 3 + rep % 11; /* k > d included */
        random_G(r, k, d, G);
        if (rep % 5 == 1) memcpy(G + d, G, (size_t)d * sizeof *G);  /* identical rows */
        if (rep % 5 == 2) memset(G, 0, (size_t)d * sizeof *G);       /* zero row */
        gram(G, k, d, M);
        CHECK(run("mgda", "", G, k, d, dir, w) == MTGRAD_OK, "mgda exact status");
        double sum = 0, wmin = 0;
        for (int i = 0; i < k; i++) sum += w[i], wmin = fmin(wmin, w[i]);
        CHECK(fabs(sum - 1) < 1e-14 && wmin >= 0, "mgda: weights on the simplex (sum %.17g)", sum);
        double nd = mtgradi_dot(dir, dir, d), best = brute_min_norm(M, k), mmax = 0;
        for (int i = 0; i < k * k; i++) mmax = fmax(mmax, fabs(M[i]));
        CHECK(fabs(nd - best) <= 1e-11 * mmax, "mgda: ||d||^2 %.17g vs enumeration %.17g", nd, best);
        for (int i = 0; i < k; i++) /* <g_i, d> >= ||d||² (non-conflict) */
            CHECK(mtgradi_dot(G + i * d, dir, d) >= nd - 1e-11 * mmax, "mgda: task %d conflicts", i);
    }
    /* exactly opposite gradients: d = 0 */
    double Go[2 * 3] = {1, -2, 0.5, -1, 2, -0.5};
    CHECK(run("mgda", "", Go, 2, 3, dir, w) == MTGRAD_OK, "opposite");
    double zero[3] = {0, 0, 0};
    CHECK_ARRAY_CLOSE(dir, zero, 3, 0, 1e-15);
    /* k = 1: w = (1) for every variant */
    const char *variants[3] = {"variant=exact", "variant=sener_minnorm", "variant=frank_wolfe"};
    for (int v = 0; v < 3; v++) {
        CHECK(run("mgda", variants[v], Go, 1, 3, dir, w) == MTGRAD_OK, "k = 1");
        CHECK_CLOSE(w[0], 1, 0, 0);
    }
}

/* Independent high-accuracy min-norm point for rows of wildly different norms: enumeration of
 * supports in the equilibrated form (rows normalised, ĝ_i = g_i/|g_i|; v_i = w_i |g_i| / Dmin,
 * a_i = Dmin/|g_i|): on each support solve Ĥ_SS y = a_S by Gaussian elimination with partial
 * pivoting, v_S = y / aᵀy; keep the nonnegative solution whose off-support rows satisfy
 * <ĝ_j, d> >= |d|²/|g_j| best (all conditions in units of |d|). Writes the direction to dref;
 * returns 0 if no support qualified. */
static int brute_min_norm_scaled(const double *G, int k, int d, double *dref)
{
    double Gh[KMAX * DMAX], nr[KMAX], a[KMAX], Hh[KMAX * KMAX], dmin = INFINITY, bestv = INFINITY;
    for (int i = 0; i < k; i++) {
        nr[i] = sqrt(mtgradi_dot(G + i * d, G + i * d, d));
        dmin = fmin(dmin, nr[i]);
        for (int j = 0; j < d; j++) Gh[i * d + j] = G[i * d + j] / nr[i];
    }
    for (int i = 0; i < k; i++) a[i] = dmin / nr[i];
    gram(Gh, k, d, Hh);
    int found = 0;
    for (unsigned mask = 1; mask < (1u << k); mask++) {
        int idx[KMAX], m = 0;
        for (int i = 0; i < k; i++)
            if (mask & (1u << i)) idx[m++] = i;
        double A[KMAX * KMAX], y[KMAX];
        for (int r2 = 0; r2 < m; r2++) {
            for (int c = 0; c < m; c++) A[r2 * m + c] = Hh[idx[r2] * k + idx[c]];
            y[r2] = a[idx[r2]];
        }
        int ok = 1;
        for (int col = 0; col < m && ok; col++) {
            int piv = col;
            for (int rr = col + 1; rr < m; rr++)
                if (fabs(A[rr * m + col]) > fabs(A[piv * m + col])) piv = rr;
            if (!(fabs(A[piv * m + col]) > 1e-9)) { /* Ĥ has unit diagonal */
                ok = 0;
                break;
            }
            for (int j = 0; j < m; j++) {
                double t = A[col * m + j];
                A[col * m + j] = A[piv * m + j], A[piv * m + j] = t;
            }
            double t = y[col];
            y[col] = y[piv], y[piv] = t;
            for (int rr = col + 1; rr < m; rr++) {
                double f = A[rr * m + col] / A[col * m + col];
                for (int j = col; j < m; j++) A[rr * m + j] -= f * A[col * m + j];
                y[rr] -= f * y[col];
            }
        }
        if (!ok) continue;
        for (int rr = m - 1; rr >= 0; rr--) {
            double t = y[rr];
            for (int j = rr + 1; j < m; j++) t -= A[rr * m + j] * y[j];
            y[rr] = t / A[rr * m + rr];
        }
        double at = 0, ymax = 0;
        for (int r2 = 0; r2 < m; r2++) at += a[idx[r2]] * y[r2], ymax = fmax(ymax, fabs(y[r2]));
        int feas = at > 0;
        for (int r2 = 0; r2 < m; r2++) feas &= y[r2] >= -1e-12 * ymax;
        if (!feas) continue;
        double dd[DMAX] = {0}, lam = 0, viol = 0;
        for (int r2 = 0; r2 < m; r2++)
            for (int j = 0; j < d; j++) dd[j] += fmax(y[r2], 0) / at * Gh[idx[r2] * d + j];
        lam = mtgradi_dot(dd, dd, d);
        for (int i = 0; i < k; i++)
            if (!(mask & (1u << i))) viol = fmax(viol, lam * a[i] - mtgradi_dot(Gh + i * d, dd, d));
        viol /= sqrt(lam);
        if (viol < bestv) {
            bestv = viol, found = 1;
            for (int j = 0; j < d; j++) dref[j] = dd[j] * dmin; /* back to the units of G */
        }
    }
    return found && bestv <= 1e-9;
}

/* Rows scaled 1e-10 ... 1e10 (one factor per row): the exact variant must keep every row free of
 * conflict relative to its own norm, <g_i, d> >= -|g_i| (1e-8 |d| + rounding of d) (the property
 * battery's tolerance), and match the equilibrated enumeration. */
static void test_mgda_scaled(mtgradi_rng *r)
{
    double G[KMAX * DMAX], dir[DMAX], w[KMAX], dref[DMAX];
    int compared = 0;
    for (int rep = 0; rep < 60; rep++) {
        int k = 3 + rep % 6, d = 5 + (rep * 7) % 46;
        random_G(r, k, d, G);
        double nrm[KMAX];
        for (int i = 0; i < k; i++) {
            double f = pow(10.0, -10.0 + 20.0 * (double)((i + rep) % k) / (double)(k - 1));
            for (int j = 0; j < d; j++) G[i * d + j] *= f;
            nrm[i] = sqrt(mtgradi_dot(G + i * d, G + i * d, d));
        }
        CHECK(run("mgda", "", G, k, d, dir, w) == MTGRAD_OK, "mgda scaled k %d d %d: status", k, d);
        double nd = sqrt(mtgradi_dot(dir, dir, d)), wg = 0;
        for (int i = 0; i < k; i++) wg += fabs(w[i]) * nrm[i];
        double round = (double)(k + 2) * DBL_EPSILON * wg;
        for (int i = 0; i < k; i++) {
            double ip = mtgradi_dot(G + i * d, dir, d);
            CHECK(ip >= -nrm[i] * (1e-8 * nd + round),
                  "mgda scaled rep %d (k %d, d %d): <g_%d, d> = %.17g (|g| %g, |d| %g)", rep, k, d,
                  i, ip, nrm[i], nd);
        }
        if (k > d || !brute_min_norm_scaled(G, k, d, dref)) continue;
        compared++;
        double err = 0, nref = sqrt(mtgradi_dot(dref, dref, d));
        for (int j = 0; j < d; j++) err = fmax(err, fabs(dir[j] - dref[j]));
        CHECK(err <= 1e-9 * nref, "mgda scaled rep %d (k %d, d %d): |d - d_ref|_inf = %g, |d_ref| = %g",
              rep, k, d, err, nref);
    }
    CHECK(compared >= 50, "mgda scaled: only %d cases compared with the enumeration", compared);
}

/* Sener's solver: g_1 = 0 hits the 0.999 clamp (w = (0.999, 0.001), d = 0.001·g_2); a k = 3
 * case with a unique interior optimum must land within stop_crit-level of the exact point. */
static void test_mgda_sener(mtgradi_rng *r)
{
    double G[2 * 2] = {0, 0, 3, 4}, dir[DMAX], w[KMAX], e[2] = {0.999, 0.001}, de[2] = {0.003, 0.004};
    CHECK(run("mgda", "variant=sener_minnorm", G, 2, 2, dir, w) == MTGRAD_OK, "sener k=2");
    CHECK_ARRAY_CLOSE(w, e, 2, 0, 1e-15);
    CHECK_ARRAY_CLOSE(dir, de, 2, 0, 1e-15);
    double G3[3 * 6], wx[KMAX], dx[DMAX];
    random_G(r, 3, 6, G3);
    CHECK(run("mgda", "variant=sener_minnorm", G3, 3, 6, dir, w) == MTGRAD_OK, "sener k=3");
    CHECK(run("mgda", "", G3, 3, 6, dx, wx) == MTGRAD_OK, "exact k=3");
    CHECK_ARRAY_CLOSE(w, wx, 3, 0, 1e-3);
    /* enforce_max_iter=yes with max_iter=1 stops early with E_MAXITER and a simplex point */
    double G5[5 * 7];
    random_G(r, 5, 7, G5);
    mtgrad_status s = run("mgda", "variant=sener_minnorm,enforce_max_iter=yes,max_iter=1", G5, 5, 7,
                          dir, w);
    double sum = 0;
    for (int i = 0; i < 5; i++) sum += w[i];
    CHECK(s == MTGRAD_E_MAXITER && fabs(sum - 1) < 1e-12, "sener capped: status %d sum %g", (int)s, sum);
}

/* TorchJD Frank–Wolfe by hand on M = diag(1, 4) (G = diag(1, 2)): from (½, ½), t = 0,
 * a = ½, b = 5/4, c = 1, γ = (b - a)/(b + c - 2a) = 0.6 → (0.8, 0.2); then t = 0 (tie, first
 * index), a = b = 0.8 → γ = 0 < epsilon: stop at (0.8, 0.2). */
static void test_mgda_frank_wolfe(void)
{
    double G[4] = {1, 0, 0, 2}, dir[2], w[2], e[2] = {0.8, 0.2}, de[2] = {0.8, 0.4};
    CHECK(run("mgda", "variant=frank_wolfe", G, 2, 2, dir, w) == MTGRAD_OK, "fw");
    CHECK_ARRAY_CLOSE(w, e, 2, 0, 1e-15);
    CHECK_ARRAY_CLOSE(dir, de, 2, 0, 1e-15);
    /* max_iters = 1: one update only */
    double e1[2] = {0.8, 0.2};
    CHECK(run("mgda", "variant=frank_wolfe,max_iters=1", G, 2, 2, dir, w) == MTGRAD_OK, "fw 1");
    CHECK_ARRAY_CLOSE(w, e1, 2, 0, 1e-15);
}

/* ------------------------------------------------------------------ CAGrad / IMGrad */

/* The CAGrad-family dual at x, computed directly from the vectors (independent of M). */
static double dual_obj(const double *G, int k, int d, const double *x, double lin_coef, double beta,
                       double quad_coef)
{
    double gx[DMAX], g0[DMAX];
    double ones[KMAX];
    for (int i = 0; i < k; i++) ones[i] = 1.0 / k;
    combine(G, k, d, x, gx);
    combine(G, k, d, ones, g0);
    double n2 = mtgradi_dot(gx, gx, d);
    return lin_coef * mtgradi_dot(gx, g0, d) + beta * sqrt(n2 + 1e-8) + quad_coef * n2;
}

/* Recover the simplex solution x from w = (1/k + lam x)/div: sum x = 1 gives lam. */
static void recover_x(const double *w, int k, double div, double *x)
{
    double lam = -1;
    for (int i = 0; i < k; i++) lam += w[i] * div;
    for (int i = 0; i < k; i++) x[i] = (w[i] * div - 1.0 / k) / lam;
}

static double phi_of(const double *M, int k, double c)
{
    double s = 0;
    for (int i = 0; i < k * k; i++) s += M[i];
    return c * sqrt(s / ((double)k * k) + 1e-8) + 1e-8;
}

static void test_cagrad(mtgradi_rng *r)
{
    double G[KMAX * DMAX], M[KMAX * KMAX], dir[DMAX], w[KMAX], x[KMAX], y[KMAX];
    for (int rep = 0; rep < 20; rep++) {
        int k = 2 + rep % 6, d = 3 + rep % 9;
        random_G(r, k, d, G);
        gram(G, k, d, M);
        double c = 0.4 + 0.1 * (rep % 3);
        char params[64];
        snprintf(params, sizeof params, "c=%g", c);
        CHECK(run("cagrad", params, G, k, d, dir, w) == MTGRAD_OK, "cagrad status");
        recover_x(w, k, 1 + c * c, x);
        double phi = phi_of(M, k, c), f = dual_obj(G, k, d, x, 1, phi, 0);
        int worse = 0;
        for (int t = 0; t < 2000; t++) {
            random_simplex(r, k, y);
            if (dual_obj(G, k, d, y, 1, phi, 0) < f - 1e-12) worse++;
        }
        CHECK(worse == 0, "cagrad: %d random simplex points beat our dual solution", worse);
        /* direction = (g0 + lam g_x)/(1 + c²) with lam = phi/||g_x|| */
        double gx[DMAX], g0[DMAX], ones[KMAX], expect[DMAX];
        for (int i = 0; i < k; i++) ones[i] = 1.0 / k;
        combine(G, k, d, x, gx);
        combine(G, k, d, ones, g0);
        double lam = phi / (sqrt(mtgradi_dot(gx, gx, d)) + 1e-8);
        for (int j = 0; j < d; j++) expect[j] = (g0[j] + lam * gx[j]) / (1 + c * c);
        CHECK_ARRAY_CLOSE(dir, expect, d, 1e-9, 1e-12);
    }
    /* a golden case (cagrad-c0.4-random-k3-d7) with the SLSQP solution from its comment:
     * our dual value must not be above the reference's */
    static const double Gg[3 * 7] = {
        1.27466573, 0.585929641, 0.772675438, 0.427997259, 0.604464932, 0.183723342, 0.903896925,
        1.67429002, 0.775336477, 0.776092066, -0.0404658658, -0.0855214566, 0.744782739, -0.832307995,
        0.750380591, 1.11036833, 0.371054338, -0.481070693, -0.920437902, -1.09422404, 1.51723801};
    double xr[3] = {0.26377225916973102, 0.48596535650157791, 0.25026238432869113};
    gram(Gg, 3, 7, M);
    CHECK(run("cagrad", "c=0.4", Gg, 3, 7, dir, w) == MTGRAD_OK, "cagrad golden-like");
    recover_x(w, 3, 1.16, x);
    double phi = phi_of(M, 3, 0.4);
    CHECK(dual_obj(Gg, 3, 7, x, 1, phi, 0) <= dual_obj(Gg, 3, 7, xr, 1, phi, 0) + 1e-15,
          "cagrad: the reference's SLSQP point has a lower dual value");
    /* c = 0: the mean (up to the 1e-8 smoothing), for every rescale */
    random_G(r, 4, 5, G);
    CHECK(run("cagrad", "c=0,rescale=0", G, 4, 5, dir, w) == MTGRAD_OK, "cagrad c=0");
    double q[4] = {0.25, 0.25, 0.25, 0.25};
    CHECK_ARRAY_CLOSE(w, q, 4, 0, 1e-7);
}

static void test_imgrad(mtgradi_rng *r)
{
    double G[KMAX * DMAX], M[KMAX * KMAX], dir[DMAX], w[KMAX], x[KMAX], wm[KMAX], dm[DMAX];
    for (int rep = 0; rep < 16; rep++) {
        int k = 2 + rep % 6, d = 3 + rep % 9, paper = rep % 2;
        random_G(r, k, d, G);
        gram(G, k, d, M);
        double c = 0.8;
        CHECK(run("imgrad", paper ? "form=paper" : "", G, k, d, dir, w) == MTGRAD_OK, "imgrad status");
        /* rho from the exact MGDA direction (checked above against enumeration) */
        CHECK(run("mgda", "", G, k, d, dm, wm) == MTGRAD_OK, "mgda");
        double g0[DMAX], ones[KMAX];
        for (int i = 0; i < k; i++) ones[i] = 1.0 / k;
        combine(G, k, d, ones, g0);
        double rho = mtgradi_dot(g0, dm, d) /
                     fmax(sqrt(mtgradi_dot(g0, g0, d) * mtgradi_dot(dm, dm, d)), 1e-8);
        rho = fmin(fmax(rho, 0), 1);
        recover_x(w, k, 1 + c * c, x);
        double phi = phi_of(M, k, c);
        double lc = paper ? 1 - rho : 1.5 - rho, be = paper ? (1 - rho) * phi : rho * phi;
        double qc = paper ? rho : 0;
        /* KKT of the dual at x: gradient lc·M1/k + (be/s + 2qc)·Mx */
        double Mx[KMAX], grad[KMAX], mx = 0, ml = 0;
        mtgradi_matvec(M, k, x, Mx);
        double s = sqrt(fmax(mtgradi_quad(M, k, x), 0) + 1e-8);
        for (int i = 0; i < k; i++) {
            double row = 0;
            for (int j = 0; j < k; j++) row += M[i * k + j];
            grad[i] = lc * row / k + (be / s + 2 * qc) * Mx[i];
            mx = fmax(mx, fabs((be / s + 2 * qc) * Mx[i])), ml = fmax(ml, fabs(lc * row / k));
            x[i] = fabs(x[i]) < 1e-14 ? 0 : x[i]; /* recovered zeros carry rounding */
        }
        double res = mtgradi_qp_kkt_residual(x, grad, k, mx + ml);
        CHECK(res <= 1e-9, "imgrad (%s): dual KKT residual %.3g", paper ? "paper" : "code", res);
        double y[KMAX], f = dual_obj(G, k, d, x, lc, be, qc);
        int worse = 0;
        for (int t = 0; t < 1000; t++) {
            random_simplex(r, k, y);
            if (dual_obj(G, k, d, y, lc, be, qc) < f - 1e-12) worse++;
        }
        CHECK(worse == 0, "imgrad: %d random points beat the dual solution", worse);
    }
}

/* ------------------------------------------------------------------ ConicGrad */

/* Euclidean projection of x onto the cone {<d,g0> >= c||d|| ||g0||}, in parameter space. */
static void cone_project(const double *x, const double *g0, int d, double c, double *out)
{
    double n0 = sqrt(mtgradi_dot(g0, g0, d)), p = mtgradi_dot(x, g0, d) / n0;
    double nx = sqrt(mtgradi_dot(x, x, d)), s = sqrt(1 - c * c), v[DMAX];
    for (int j = 0; j < d; j++) v[j] = x[j] - p * g0[j] / n0;
    double q = sqrt(mtgradi_dot(v, v, d));
    if (p >= c * nx) {
        memcpy(out, x, (size_t)d * sizeof *x);
    } else if (c * p + s * q <= 0) {
        memset(out, 0, (size_t)d * sizeof *out);
    } else {
        for (int j = 0; j < d; j++) out[j] = (c * p + s * q) * (c * g0[j] / n0 + s * v[j] / q);
    }
}

/* The SMW form d(λ) = (g_w + λ<g0,g_w>/(a - λ||g0||²)·g0)/a, a = 1 + λc²||g0||², with λ found
 * by bisection so that the cone constraint is tight; equals the projection (boundary case with
 * <g0, g_w> > 0, where the tight λ lies before the pole of a - λ||g0||²). */
static void smw_form(const double *x, const double *g0, int d, double c, double *out)
{
    double n02 = mtgradi_dot(g0, g0, d), gx0 = mtgradi_dot(x, g0, d);
    double lo = 0, hi = 1 / (n02 * (1 - c * c)); /* a - λ||g0||² > 0 on [0, hi) */
    for (int it = 0; it < 200; it++) {
        double lam = 0.5 * (lo + hi), a = 1 + lam * c * c * n02;
        for (int j = 0; j < d; j++) out[j] = (x[j] + lam * gx0 / (a - lam * n02) * g0[j]) / a;
        double gap = mtgradi_dot(out, g0, d) - c * sqrt(mtgradi_dot(out, out, d) * n02);
        if (gap < 0) lo = lam;
        else hi = lam;
    }
}

static void test_conicgrad(mtgradi_rng *r)
{
    double G[KMAX * DMAX], dir[DMAX], w[KMAX], g0[DMAX], ones[KMAX];
    int boundary_cases = 0;
    for (int rep = 0; rep < 30; rep++) {
        int k = 2 + rep % 6, d = 3 + rep % 9;
        double c = 0.3 + 0.2 * (rep % 4);
        random_G(r, k, d, G);
        for (int i = 0; i < k; i++) ones[i] = 1.0 / k;
        combine(G, k, d, ones, g0);
        char params[64];
        snprintf(params, sizeof params, "c=%g,scale=none", c);
        CHECK(run("conicgrad", params, G, k, d, dir, w) == MTGRAD_OK, "conicgrad status");
        double n0 = sqrt(mtgradi_dot(g0, g0, d)), nd = sqrt(mtgradi_dot(dir, dir, d));
        CHECK(mtgradi_dot(dir, g0, d) >= c * nd * n0 - 1e-10 * (1 + nd * n0), "conicgrad: d outside the cone");
        /* primal optimality: min_i <g_i, d*> = ||d*||² (strong duality, d* != 0) */
        double mn = INFINITY;
        for (int i = 0; i < k; i++) mn = fmin(mn, mtgradi_dot(G + i * d, dir, d));
        if (nd > 1e-8) CHECK_CLOSE(mn, nd * nd, 1e-8, 1e-12);
        /* dual optimality: ||Π_C(g_y)|| >= ||d*|| at random simplex points */
        double y[KMAX], gy[DMAX], py[DMAX];
        int worse = 0;
        for (int t = 0; t < 500; t++) {
            random_simplex(r, k, y);
            combine(G, k, d, y, gy);
            cone_project(gy, g0, d, c, py);
            if (mtgradi_dot(py, py, d) < nd * nd - 1e-12) worse++;
        }
        CHECK(worse == 0, "conicgrad: %d random points beat the dual solution", worse);
        /* SMW = projection on the boundary case, at random g_w */
        combine(G, k, d, y, gy);
        cone_project(gy, g0, d, c, py);
        double p = mtgradi_dot(gy, g0, d) / n0, ny = sqrt(mtgradi_dot(gy, gy, d));
        if (p > 0 && p < c * ny) { /* λ in [0, 1/(||g0||²(1-c²))) needs <g0, g_w> > 0 */
            double sm[DMAX];
            smw_form(gy, g0, d, c, sm);
            CHECK_ARRAY_CLOSE(sm, py, d, 1e-9, 1e-12);
            boundary_cases++;
        }
        /* scale = g0norm: same direction, norm ||g0|| */
        double d2[DMAX], w2[KMAX];
        snprintf(params, sizeof params, "c=%g", c);
        CHECK(run("conicgrad", params, G, k, d, d2, w2) == MTGRAD_OK, "conicgrad g0norm");
        if (nd > 1e-8) {
            CHECK_CLOSE(sqrt(mtgradi_dot(d2, d2, d)), n0, 1e-10, 0);
            CHECK_CLOSE(mtgradi_dot(d2, dir, d), n0 * nd, 1e-9, 0);
        }
    }
    CHECK(boundary_cases > 3, "too few boundary cases for the SMW check (%d)", boundary_cases);
    /* c -> 1: d ∝ g0 */
    random_G(r, 4, 6, G);
    for (int i = 0; i < 4; i++) ones[i] = 0.25;
    combine(G, 4, 6, ones, g0);
    CHECK(run("conicgrad", "c=0.9999999", G, 4, 6, dir, w) == MTGRAD_OK, "c -> 1");
    double cosv = mtgradi_dot(dir, g0, 6) / sqrt(mtgradi_dot(dir, dir, 6) * mtgradi_dot(g0, g0, 6));
    CHECK(cosv >= 0.9999999 - 1e-9, "c -> 1: cos(d, g0) = %.17g", cosv);
    /* MGDA direction inside the cone: two gradients 20 degrees apart, c = 0.5 (60 degrees) */
    double G2[2 * 2] = {1, 0, cos(0.35), sin(0.35)}, dm[2], wm[2];
    CHECK(run("conicgrad", "c=0.5,scale=none", G2, 2, 2, dir, w) == MTGRAD_OK, "in-cone");
    CHECK(run("mgda", "", G2, 2, 2, dm, wm) == MTGRAD_OK, "mgda in-cone");
    CHECK_ARRAY_CLOSE(dir, dm, 2, 1e-10, 1e-12);
    /* g0 = 0: MGDA fallback (opposite gradients: d = 0) */
    double Go[2 * 3] = {1, 2, 3, -1, -2, -3};
    CHECK(run("conicgrad", "", Go, 2, 3, dir, w) == MTGRAD_OK, "g0 = 0");
    double zero[3] = {0, 0, 0};
    CHECK_ARRAY_CLOSE(dir, zero, 3, 0, 1e-15);
}

/* Degenerate inputs: finite outputs and an OK-family status for every method and variant. */
static void test_degenerate(mtgradi_rng *r)
{
    const char *cfg[][2] = {{"mgda", ""}, {"mgda", "variant=sener_minnorm"},
                            {"mgda", "variant=frank_wolfe"}, {"cagrad", ""}, {"cagrad", "rescale=2"},
                            {"imgrad", ""}, {"imgrad", "form=paper"}, {"conicgrad", ""},
                            {"conicgrad", "scale=cagrad"}};
    double G[KMAX * DMAX], dir[DMAX], w[KMAX];
    for (size_t m = 0; m < sizeof cfg / sizeof cfg[0]; m++) {
        for (int kind = 0; kind < 6; kind++) {
            int k = 5, d = kind == 2 ? 2 : 7;
            random_G(r, k, d, G);
            if (kind == 0) memset(G, 0, sizeof(double) * (size_t)(k * d));       /* all zero */
            if (kind == 1)
                for (int i = 1; i < k; i++) memcpy(G + i * d, G, (size_t)d * sizeof *G); /* identical */
            if (kind == 3) memset(G, 0, (size_t)d * sizeof *G);                  /* a zero row */
            if (kind == 4)
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < d; j++) G[i * d + j] *= pow(10.0, -10 + 5.0 * i);
            if (kind == 5)
                for (int j = 0; j < d; j++) G[d + j] = -G[j];                    /* opposite */
            mtgrad_status s = run(cfg[m][0], cfg[m][1], G, k, d, dir, w);
            int finite = 1;
            for (int j = 0; j < d; j++) finite &= isfinite(dir[j]) != 0;
            for (int i = 0; i < k; i++) finite &= isfinite(w[i]) != 0;
            CHECK((s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS) && finite,
                  "%s %s, degenerate kind %d: status %d, finite %d", cfg[m][0], cfg[m][1], kind,
                  (int)s, finite);
        }
    }
}

/* Many random instances (its own seed): the solver must reach the optimum every time, also where
 * the dual changes region (inside / boundary / polar cone), where a Newton solver can stall.
 * Optimality is checked by strong duality: min_i <g_i, d*> = ||d*||^2 for d* != 0. */
static void test_conicgrad_many(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 77);
    double G[KMAX * DMAX], dir[DMAX], w[KMAX];
    int bad_status = 0, not_optimal = 0;
    for (int rep = 0; rep < 600; rep++) {
        int k = 2 + rep % 7, d = 2 + rep % 11;
        double c = 0.1 + 0.8 * mtgradi_rng_uniform(&r);
        random_G(&r, k, d, G);
        char params[64];
        snprintf(params, sizeof params, "c=%.17g,scale=none", c);
        if (run("conicgrad", params, G, k, d, dir, w) != MTGRAD_OK) bad_status++;
        double nd2 = mtgradi_dot(dir, dir, d), mn = INFINITY;
        for (int i = 0; i < k; i++) mn = fmin(mn, mtgradi_dot(G + i * d, dir, d));
        if (nd2 > 1e-16 && !harness_close(mn, nd2, 1e-7, 1e-12)) not_optimal++;
    }
    CHECK(bad_status == 0, "conicgrad: %d of 600 instances without OK status", bad_status);
    CHECK(not_optimal == 0, "conicgrad: %d of 600 instances not optimal", not_optimal);
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 2024);
    test_mgda_exact(&r);
    test_mgda_sener(&r);
    test_mgda_frank_wolfe();
    test_cagrad(&r);
    test_imgrad(&r);
    test_conicgrad(&r);
    test_degenerate(&r);
    test_mgda_scaled(&r); /* last: the other tests keep their random streams */
    test_conicgrad_many();
    return harness_report();
}
