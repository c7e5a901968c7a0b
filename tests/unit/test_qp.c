/* Simplex solvers (src/core/qp.c): the active-set QP against brute-force enumeration of
 * supports (random, singular, k > d, zero/identical rows, mixed scales, with and without a
 * linear term), its KKT residual, the SQP solver on problems with closed-form answers, and the
 * KKT residual function itself on hand-made points. */
#include "harness.h"
#include "internal.h"
#include "qp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KMAX 8

static double qp_obj(const double *H, const double *c, int64_t k, const double *w)
{
    return 0.5 * mtgradi_quad(H, k, w) + (c ? mtgradi_dot(c, w, k) : 0);
}

/* Solve A x = b (n x n, Gaussian elimination with partial pivoting); 0 if singular. */
static int gauss(double *A, double *b, int n, double tiny)
{
    for (int col = 0; col < n; col++) {
        int piv = col;
        for (int r = col + 1; r < n; r++)
            if (fabs(A[r * n + col]) > fabs(A[piv * n + col])) piv = r;
        if (!(fabs(A[piv * n + col]) > tiny)) return 0;
        if (piv != col) {
            for (int j = 0; j < n; j++) {
                double t = A[col * n + j];
                A[col * n + j] = A[piv * n + j], A[piv * n + j] = t;
            }
            double t = b[col];
            b[col] = b[piv], b[piv] = t;
        }
        for (int r = col + 1; r < n; r++) {
            double f = A[r * n + col] / A[col * n + col];
            for (int j = col; j < n; j++) A[r * n + j] -= f * A[col * n + j];
            b[r] -= f * b[col];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int j = r + 1; j < n; j++) s -= A[r * n + j] * b[j];
        b[r] = s / A[r * n + r];
    }
    return 1;
}

/* Brute force: on every support S with a nonsingular KKT matrix [H_SS 1; 1ᵀ 0], the
 * equality-constrained optimum; keep the feasible one with the lowest objective. (Some optimum
 * always has such a support: along a null direction of a singular KKT matrix the objective is
 * constant, so the support can be shrunk.) Returns the optimal value, best in wb. */
static double brute_force(const double *H, const double *c, int k, double *wb)
{
    double best = INFINITY, hmax = 0;
    for (int i = 0; i < k * k; i++) hmax = fmax(hmax, fabs(H[i]));
    for (unsigned mask = 1; mask < (1u << k); mask++) {
        int idx[KMAX], m = 0;
        for (int i = 0; i < k; i++)
            if (mask & (1u << i)) idx[m++] = i;
        double A[(KMAX + 1) * (KMAX + 1)], b[KMAX + 1];
        int n = m + 1;
        for (int a = 0; a < m; a++) {
            for (int bb = 0; bb < m; bb++) A[a * n + bb] = H[idx[a] * k + idx[bb]];
            A[a * n + m] = 1, A[m * n + a] = 1;
            b[a] = c ? -c[idx[a]] : 0;
        }
        A[m * n + m] = 0, b[m] = 1;
        if (!gauss(A, b, n, 1e-11 * fmax(hmax, 1e-300))) continue;
        double w[KMAX] = {0};
        int feasible = 1;
        for (int a = 0; a < m; a++) {
            if (b[a] < -1e-12) feasible = 0;
            w[idx[a]] = fmax(b[a], 0);
        }
        if (!feasible) continue;
        double f = qp_obj(H, c, k, w);
        if (f < best) best = f, memcpy(wb, w, (size_t)k * sizeof *w);
    }
    return best;
}

static double normal(mtgradi_rng *r) { return mtgradi_rng_normal(r); }

/* H = G Gᵀ for a k x d Gaussian G with rows scaled by scale[i] (NULL = 1). */
static void make_gram(mtgradi_rng *r, int k, int d, const double *scale, double *H, double *G)
{
    for (int i = 0; i < k; i++)
        for (int j = 0; j < d; j++) G[i * d + j] = normal(r) * (scale ? scale[i] : 1.0);
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) H[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
}

/* Compare the QP with brute force: objective equal to relative 1e-11, KKT residual <= 1e-10,
 * w on the simplex, and w itself equal when H is well conditioned (unique optimum). */
static void check_case(const char *what, const double *H, const double *c, int k, int unique)
{
    double *work = malloc(mtgradi_qp_simplex_work_size(k) * sizeof *work);
    double w[KMAX], wb[KMAX], g[KMAX];
    mtgrad_status s = mtgradi_qp_simplex(H, c, k, w, NULL, work);
    CHECK(s == MTGRAD_OK, "%s: status %d", what, (int)s);
    double sum = 0, wmin = 0;
    for (int i = 0; i < k; i++) sum += w[i], wmin = fmin(wmin, w[i]);
    CHECK(fabs(sum - 1) <= 1e-14 && wmin >= 0, "%s: w not on the simplex (sum %.17g, min %g)", what,
          sum, wmin);
    double fb = brute_force(H, c, k, wb), f = qp_obj(H, c, k, w);
    double hmax = 0, cmax = 0;
    for (int i = 0; i < k * k; i++) hmax = fmax(hmax, fabs(H[i]));
    for (int i = 0; c && i < k; i++) cmax = fmax(cmax, fabs(c[i]));
    double sc = fmax(hmax + cmax, 1e-300);
    CHECK(fabs(f - fb) <= 1e-11 * sc, "%s: objective %.17g, brute force %.17g", what, f, fb);
    mtgradi_matvec(H, k, w, g);
    for (int i = 0; c && i < k; i++) g[i] += c[i];
    double res = mtgradi_qp_kkt_residual(w, g, k, sc);
    CHECK(res <= 1e-10, "%s: KKT residual %.3g", what, res);
    if (unique) CHECK_ARRAY_CLOSE(w, wb, k, 0, 1e-8);
    free(work);
}

static void test_qp_random(mtgradi_rng *r)
{
    double H[KMAX * KMAX], G[KMAX * 64], c[KMAX];
    char what[96];
    for (int rep = 0; rep < 30; rep++) {
        int k = 2 + rep % 7, d = k + 3;
        make_gram(r, k, d, NULL, H, G);
        snprintf(what, sizeof what, "random min-norm k=%d d=%d", k, d);
        check_case(what, H, NULL, k, 1);
        for (int i = 0; i < k; i++) c[i] = normal(r) * 3;
        snprintf(what, sizeof what, "random with linear term k=%d d=%d", k, d);
        check_case(what, H, c, k, 1);
    }
}

static void test_qp_singular(mtgradi_rng *r)
{
    double H[KMAX * KMAX], G[KMAX * 64], c[KMAX], sc[KMAX];
    char what[96];
    for (int rep = 0; rep < 20; rep++) { /* k > d: rank-deficient Gram */
        int k = 3 + rep % 6, d = 1 + rep % 2;
        make_gram(r, k, d, NULL, H, G);
        snprintf(what, sizeof what, "k > d min-norm k=%d d=%d", k, d);
        check_case(what, H, NULL, k, 0);
        for (int i = 0; i < k; i++) c[i] = normal(r);
        snprintf(what, sizeof what, "k > d with linear term k=%d d=%d", k, d);
        check_case(what, H, c, k, 0);
    }
    for (int rep = 0; rep < 8; rep++) { /* identical rows, a zero row */
        int k = 3 + rep % 4, d = 5;
        make_gram(r, k, d, NULL, H, G);
        for (int j = 0; j < d; j++) G[1 * d + j] = G[0 * d + j], G[2 * d + j] = 0;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) H[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
        check_case("identical and zero rows", H, NULL, k, 0);
        for (int i = 0; i < k; i++) c[i] = normal(r);
        check_case("identical and zero rows, linear term", H, c, k, 0);
    }
    for (int rep = 0; rep < 8; rep++) { /* rows scaled 1e-4 .. 1e4 */
        int k = 4 + rep % 3, d = 9;
        for (int i = 0; i < k; i++) sc[i] = pow(10.0, -4 + 8.0 * i / (k - 1));
        make_gram(r, k, d, sc, H, G);
        check_case("mixed scales 1e-4..1e4", H, NULL, k, 0);
    }
    /* a linear objective (H = 0): the best vertex; and all zero: any point (uniform) */
    double Z[9] = {0}, cl[3] = {1, -2, 0.5}, w[3];
    double *work = malloc(mtgradi_qp_simplex_work_size(3) * sizeof *work);
    CHECK(mtgradi_qp_simplex(Z, cl, 3, w, NULL, work) == MTGRAD_OK, "H = 0");
    double e1[3] = {0, 1, 0};
    CHECK_ARRAY_CLOSE(w, e1, 3, 0, 0);
    CHECK(mtgradi_qp_simplex(Z, NULL, 3, w, NULL, work) == MTGRAD_OK, "H = 0, c = 0");
    CHECK(fabs(w[0] + w[1] + w[2] - 1) < 1e-15, "zero problem gives a simplex point");
    free(work);
}

/* Two exactly opposite gradients: the min-norm point is 0 with w = (1/2, 1/2). */
static void test_qp_opposite(void)
{
    double H[4] = {4, -4, -4, 4}, w[2], half[2] = {0.5, 0.5};
    double *work = malloc(mtgradi_qp_simplex_work_size(2) * sizeof *work);
    CHECK(mtgradi_qp_simplex(H, NULL, 2, w, NULL, work) == MTGRAD_OK, "opposite");
    CHECK_ARRAY_CLOSE(w, half, 2, 0, 1e-15);
    free(work);
}

/* The residual function on hand-made points. */
static void test_kkt_residual(void)
{
    double w1[3] = {0.5, 0.5, 0}, q1[3] = {1, 1, 2};
    CHECK_CLOSE(mtgradi_qp_kkt_residual(w1, q1, 3, 1), 0, 0, 0);
    double q2[3] = {1, 1.25, 2}; /* spread 0.25 on the support */
    CHECK_CLOSE(mtgradi_qp_kkt_residual(w1, q2, 3, 2), 0.125, 0, 1e-16);
    double q3[3] = {1, 1, 0.5}; /* coordinate 2 off the support would decrease f by 0.5 */
    CHECK_CLOSE(mtgradi_qp_kkt_residual(w1, q3, 3, 1), 0.5, 0, 1e-16);
    double q4[3] = {-4, 1, 2}; /* scale <= 0: max|q| */
    CHECK_CLOSE(mtgradi_qp_kkt_residual(w1, q4, 3, 0), 5.0 / 4.0, 0, 1e-16);
}

/* Smooth test functions with closed-form minimisers. */
typedef struct {
    int64_t k;
    const double *a, *y;
} sfun;

/* ½||w - y||²: the minimiser is the Euclidean projection of y. */
static double dist_eval(void *ctx, const double *w, double *grad, double *hess, double *gs)
{
    const sfun *f = ctx;
    double v = 0, m = 0;
    for (int64_t i = 0; i < f->k; i++) {
        v += 0.5 * (w[i] - f->y[i]) * (w[i] - f->y[i]);
        if (grad) grad[i] = w[i] - f->y[i];
        m = fmax(m, fabs(w[i]) + fabs(f->y[i]));
        for (int64_t j = 0; hess && j < f->k; j++) hess[i * f->k + j] = i == j;
    }
    if (gs) *gs = m;
    return v;
}

/* Σ exp(a_i w_i)/a_i (a_i > 0): stationarity exp(a_i w_i) = ν on an interior optimum gives
 * w_i = (1/a_i) / Σ_j (1/a_j). */
static double exp_eval(void *ctx, const double *w, double *grad, double *hess, double *gs)
{
    const sfun *f = ctx;
    double v = 0, m = 0;
    for (int64_t i = 0; i < f->k; i++) {
        double e = exp(f->a[i] * w[i]);
        v += e / f->a[i];
        if (grad) grad[i] = e;
        m = fmax(m, e);
        for (int64_t j = 0; hess && j < f->k; j++) hess[i * f->k + j] = i == j ? f->a[i] * e : 0;
    }
    if (gs) *gs = m;
    return v;
}

static void test_smooth(mtgradi_rng *r)
{
    double *work = malloc(mtgradi_smooth_simplex_work_size(KMAX) * sizeof *work);
    double *pw = malloc(KMAX * sizeof *pw);
    for (int rep = 0; rep < 20; rep++) {
        int64_t k = 2 + rep % 7;
        double y[KMAX], a[KMAX], w[KMAX], ref[KMAX];
        for (int64_t i = 0; i < k; i++) y[i] = normal(r), a[i] = 0.5 + 3 * mtgradi_rng_uniform(r);
        sfun f = {k, a, y};
        mtgradi_simplex_fn fn = {dist_eval, &f};
        for (int64_t i = 0; i < k; i++) w[i] = 1.0 / (double)k;
        CHECK(mtgradi_smooth_simplex(&fn, k, w, 0, 0, NULL, work) == MTGRAD_OK, "projection status");
        mtgradi_simplex_project(y, k, ref, pw);
        CHECK_ARRAY_CLOSE(w, ref, k, 0, 1e-12);
        mtgradi_simplex_fn fe = {exp_eval, &f};
        for (int64_t i = 0; i < k; i++) w[i] = i == 0; /* start at a vertex */
        int iters = 0;
        CHECK(mtgradi_smooth_simplex(&fe, k, w, 0, 0, &iters, work) == MTGRAD_OK, "exp status");
        double s = 0;
        for (int64_t i = 0; i < k; i++) s += 1 / a[i];
        for (int64_t i = 0; i < k; i++) ref[i] = (1 / a[i]) / s;
        CHECK_ARRAY_CLOSE(w, ref, k, 0, 1e-12);
        CHECK(iters < 50, "exp: %d iterations", iters);
    }
    free(work);
    free(pw);
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 12345);
    test_kkt_residual();
    test_qp_opposite();
    test_qp_random(&r);
    test_qp_singular(&r);
    test_smooth(&r);
    return harness_report();
}
