/* Small dense linear algebra (linalg.c) and the simplex projection (simplex.c), checked by
 * their defining identities: Cholesky solve residual, A V = V diag(lambda) with orthonormal V and
 * ascending lambda, the four Moore–Penrose conditions, and simplex projection optimality against a
 * brute-force search over supports. */
#include "harness.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 12

static double frob(const double *A, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n * n; i++) s += A[i] * A[i];
    return sqrt(s);
}

static void matmul(const double *A, const double *B, int64_t n, double *C)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < n; p++) s += A[i * n + p] * B[p * n + j];
            C[i * n + j] = s;
        }
}

/* A = B B^T with B n x r (rank r <= n), optionally + shift I */
static void random_psd(mtgradi_rng *r, int64_t n, int64_t rank, double shift, double *A)
{
    double B[N * N];
    for (int64_t i = 0; i < n * rank; i++) B[i] = mtgradi_rng_normal(r);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < rank; p++) s += B[i * rank + p] * B[j * rank + p];
            A[i * n + j] = s + (i == j ? shift : 0);
        }
}

static void random_sym(mtgradi_rng *r, int64_t n, double *A)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = mtgradi_rng_normal(r);
}

/* Q diag(vals) Q^T with Q a random orthogonal matrix (Gram–Schmidt of a Gaussian matrix). */
static void with_spectrum(mtgradi_rng *r, int64_t n, const double *vals, double *A)
{
    double Q[N * N];
    for (int64_t i = 0; i < n * n; i++) Q[i] = mtgradi_rng_normal(r);
    for (int64_t j = 0; j < n; j++) { /* columns */
        for (int64_t p = 0; p < j; p++) {
            double d = 0;
            for (int64_t i = 0; i < n; i++) d += Q[i * n + j] * Q[i * n + p];
            for (int64_t i = 0; i < n; i++) Q[i * n + j] -= d * Q[i * n + p];
        }
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += Q[i * n + j] * Q[i * n + j];
        for (int64_t i = 0; i < n; i++) Q[i * n + j] /= sqrt(s);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < n; p++) s += Q[i * n + p] * vals[p] * Q[j * n + p];
            A[i * n + j] = s;
        }
}

static void test_cholesky(mtgradi_rng *r)
{
    for (int64_t n = 1; n <= N; n++) {
        double A[N * N], L[N * N], b[N], x[N], Ax[N];
        random_psd(r, n, n, 0.1, A);
        memcpy(L, A, sizeof A);
        CHECK(mtgradi_cholesky(L, n) == 0, "cholesky of SPD n=%lld", (long long)n);
        for (int64_t i = 0; i < n; i++) b[i] = x[i] = mtgradi_rng_normal(r);
        mtgradi_cholesky_solve(L, n, x);
        mtgradi_matvec(A, n, x, Ax);
        double res = 0, bn = 0, xn = 0;
        for (int64_t i = 0; i < n; i++)
            res = fmax(res, fabs(Ax[i] - b[i])), bn = fmax(bn, fabs(b[i])), xn = fmax(xn, fabs(x[i]));
        CHECK(res <= 1e-12 * (bn + frob(A, n) * xn), "solve residual %g (n=%lld)", res, (long long)n);
        /* L L^T == A on the lower triangle */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j <= i; j++) {
                double s = 0;
                for (int64_t p = 0; p <= j; p++) s += L[i * n + p] * L[j * n + p];
                CHECK_CLOSE(s, A[i * n + j], 0, 1e-12 * frob(A, n));
            }
    }
    double S[4] = {1, 2, 2, 1}; /* indefinite */
    CHECK(mtgradi_cholesky(S, 2) == -1, "indefinite refused");
    double Z[4] = {1, 1, 1, 1}; /* singular PSD */
    CHECK(mtgradi_cholesky(Z, 2) == -1, "singular refused");
}

static void check_eigh(const double *A, int64_t n, const char *what)
{
    double lam[N], V[N * N], work[N * N], AV[N * N], VtV[N * N], Vt[N * N];
    CHECK(mtgradi_eigh(A, n, lam, V, work) == 0, "%s: eigh converged (n=%lld)", what, (long long)n);
    double scale = fmax(frob(A, n), 1e-300);
    matmul(A, V, n, AV);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            CHECK(fabs(AV[i * n + j] - V[i * n + j] * lam[j]) <= 1e-12 * scale,
                  "%s: (AV - V Lambda)[%lld][%lld] = %g", what, (long long)i, (long long)j,
                  AV[i * n + j] - V[i * n + j] * lam[j]);
            Vt[j * n + i] = V[i * n + j];
        }
    matmul(Vt, V, n, VtV);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            CHECK(fabs(VtV[i * n + j] - (i == j)) <= 1e-12, "%s: V^T V [%lld][%lld] = %g", what,
                  (long long)i, (long long)j, VtV[i * n + j]);
    for (int64_t i = 1; i < n; i++) CHECK(lam[i - 1] <= lam[i], "%s: ascending", what);
    double tr = 0, sl = 0; /* trace = sum of eigenvalues */
    for (int64_t i = 0; i < n; i++) tr += A[i * n + i], sl += lam[i];
    CHECK_CLOSE(sl, tr, 0, 1e-12 * scale * (double)n);
}

static void test_eigh(mtgradi_rng *r)
{
    double A[N * N];
    for (int64_t n = 1; n <= N; n++) {
        random_sym(r, n, A);
        check_eigh(A, n, "random symmetric");
        random_psd(r, n, n > 2 ? 2 : 1, 0, A);
        check_eigh(A, n, "PSD rank-deficient");
    }
    /* a known spectrum with repeated eigenvalues: the computed one matches */
    double vals[6] = {-1, 2, 2, 2, 5, 5}, lam[6], V[36], work[36];
    with_spectrum(r, 6, vals, A);
    check_eigh(A, 6, "repeated eigenvalues");
    mtgradi_eigh(A, 6, lam, V, work);
    CHECK_ARRAY_CLOSE(lam, vals, 6, 0, 1e-12);
    memset(A, 0, sizeof A);
    check_eigh(A, 4, "zero matrix");
    double D[9] = {3, 0, 0, 0, -1, 0, 0, 0, 2}, dl[3], exp_[3] = {-1, 2, 3};
    mtgradi_eigh(D, 3, dl, V, work);
    CHECK_ARRAY_CLOSE(dl, exp_, 3, 0, 0);
}

/* The rank-deficient PSD path of eigh (pivoted Cholesky + one-sided Jacobi) against the cyclic
 * Jacobi reference on Gram matrices G Gᵀ of n rows in r < n dimensions, with rows of equal or
 * graded norms (1e-4..1e4: eigenvalues over 16 decades). The nonzero eigenvalues must agree
 * relatively (both methods keep relative accuracy on such matrices), the n - r others are exactly
 * 0, V is orthonormal, and A V = V Λ. Larger n than N: heap buffers. */
static void lowrank_case(mtgradi_rng *r, int64_t n, int64_t rank, double spread)
{
    size_t nn = (size_t)(n * n);
    double *G = malloc((size_t)(n * rank) * sizeof *G), *A = malloc(nn * sizeof *A);
    double *V = malloc(nn * sizeof *V), *Vr = malloc(nn * sizeof *Vr), *W = malloc(nn * sizeof *W);
    double *lam = malloc((size_t)n * sizeof *lam), *lr = malloc((size_t)n * sizeof *lr);
    for (int64_t i = 0; i < n; i++) {
        double sc = pow(spread, 2.0 * (double)i / (double)(n - 1) - 1.0);
        for (int64_t p = 0; p < rank; p++) G[i * rank + p] = sc * mtgradi_rng_normal(r);
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < rank; p++) s += G[i * rank + p] * G[j * rank + p];
            A[i * n + j] = s;
        }
    CHECK(mtgradi_eigh_lowrank(A, n, lam, V, W) == 0, "lowrank n=%lld r=%lld: path taken",
          (long long)n, (long long)rank);
    CHECK(mtgradi_eigh_jacobi(A, n, lr, Vr, W) == 0, "jacobi n=%lld: converged", (long long)n);
    double lmax = lr[n - 1], an = 0;
    for (int64_t i = 0; i < n * n; i++) an += A[i] * A[i];
    an = sqrt(an);
    for (int64_t j = 0; j < n; j++) {
        if (j < n - rank) {
            CHECK(lam[j] == 0, "lowrank n=%lld: null eigenvalue %lld = %g", (long long)n,
                  (long long)j, lam[j]);
            CHECK(fabs(lr[j]) <= 1e-13 * lmax, "jacobi n=%lld: null eigenvalue %g", (long long)n,
                  lr[j]);
        } else {
            CHECK_CLOSE(lam[j], lr[j], 1e-10, 0);
        }
    }
    double worst_res = 0, worst_orth = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double av = 0, vv = 0;
            for (int64_t p = 0; p < n; p++)
                av += A[i * n + p] * V[p * n + j], vv += V[p * n + i] * V[p * n + j];
            worst_res = fmax(worst_res, fabs(av - V[i * n + j] * lam[j]));
            worst_orth = fmax(worst_orth, fabs(vv - (i == j)));
        }
    CHECK(worst_res <= 1e-13 * an, "lowrank n=%lld spread %g: |AV - VL| = %g |A|", (long long)n,
          spread, worst_res / an);
    CHECK(worst_orth <= 1e-13, "lowrank n=%lld: |VtV - I| = %g", (long long)n, worst_orth);
    free(G), free(A), free(V), free(Vr), free(W), free(lam), free(lr);
}

static void test_eigh_lowrank(mtgradi_rng *r)
{
    lowrank_case(r, 2, 1, 1);
    lowrank_case(r, 9, 3, 1);
    lowrank_case(r, 30, 8, 1);
    lowrank_case(r, 30, 5, 1e4);
    lowrank_case(r, 120, 8, 1);
    /* not of that kind: n = 1, full rank, indefinite */
    double A[N * N], V[N * N], W[N * N], lam[N];
    random_psd(r, 1, 1, 0, A);
    CHECK(mtgradi_eigh_lowrank(A, 1, lam, V, W) == 1, "lowrank: n = 1 declined");
    random_psd(r, 6, 6, 0.5, A);
    CHECK(mtgradi_eigh_lowrank(A, 6, lam, V, W) == 1, "lowrank: full rank declined");
    double vals[5] = {-1, 0, 0, 2, 3};
    with_spectrum(r, 5, vals, A);
    CHECK(mtgradi_eigh_lowrank(A, 5, lam, V, W) == 1, "lowrank: indefinite declined");
    /* larger than N: 200 rows in R^6, graded (the k > d Gram of the methods) */
    lowrank_case(r, 200, 6, 10);
}

/* the four Moore–Penrose conditions: A P A = A, P A P = P, (AP)^T = AP, (PA)^T = PA */
static void check_pinv(const double *A, int64_t n, const char *what)
{
    double P[N * N], work[2 * N * N + N], AP[N * N], PA[N * N], APA[N * N], PAP[N * N];
    CHECK(mtgradi_pinv_sym(A, n, 1e-12, P, work) == 0, "%s: pinv", what);
    matmul(A, P, n, AP);
    matmul(P, A, n, PA);
    matmul(AP, A, n, APA);
    matmul(PA, P, n, PAP);
    double sa = fmax(frob(A, n), 1e-300), sp = fmax(frob(P, n), 1e-300);
    for (int64_t i = 0; i < n * n; i++) {
        int64_t r = i / n, c = i % n;
        CHECK(fabs(APA[i] - A[i]) <= 1e-10 * sa, "%s: APA != A at %lld", what, (long long)i);
        CHECK(fabs(PAP[i] - P[i]) <= 1e-10 * sp, "%s: PAP != P at %lld", what, (long long)i);
        CHECK(fabs(AP[i] - AP[c * n + r]) <= 1e-10, "%s: AP not symmetric", what);
        CHECK(fabs(PA[i] - PA[c * n + r]) <= 1e-10, "%s: PA not symmetric", what);
    }
}

static void test_pinv(mtgradi_rng *r)
{
    double A[N * N];
    for (int64_t n = 1; n <= 8; n++) {
        random_psd(r, n, n, 0.5, A);
        check_pinv(A, n, "SPD");
        random_psd(r, n, (n + 1) / 2, 0, A);
        check_pinv(A, n, "PSD singular");
    }
    memset(A, 0, sizeof A);
    check_pinv(A, 3, "zero");
    /* rank-1 closed form: pinv(v v^T) = v v^T / |v|^4 */
    double v[3] = {1, -2, 2}, P[9], work[2 * 9 + 3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) A[i * 3 + j] = v[i] * v[j];
    mtgradi_pinv_sym(A, 3, 1e-12, P, work);
    for (int i = 0; i < 9; i++) CHECK_CLOSE(P[i], A[i] / 81.0, 0, 1e-14);
    /* the cutoff drops eigenvalues <= rtol * max|lambda| */
    double Dg[4] = {1, 0, 0, 1e-9}, Pd[4];
    mtgradi_pinv_sym(Dg, 2, 1e-6, Pd, work);
    CHECK(Pd[0] == 1 && Pd[3] == 0, "cutoff: %g %g", Pd[0], Pd[3]);
    mtgradi_pinv_sym(Dg, 2, 1e-12, Pd, work);
    CHECK_CLOSE(Pd[3], 1e9, 1e-12, 0);
}

/* Brute force: the projection is y - tau on some support S (the rest 0) with
 * tau = (sum_S y - 1)/|S|; among all supports whose candidate is feasible (all >= 0), the
 * projection is the nearest to y. Enumerates all 2^k - 1 supports. */
static void brute_project(const double *y, int64_t k, double *best)
{
    double bestd = INFINITY, x[N];
    for (uint32_t mask = 1; mask < (1u << k); mask++) {
        double s = 0;
        int64_t c = 0;
        for (int64_t i = 0; i < k; i++)
            if (mask >> i & 1u) s += y[i], c++;
        double tau = (s - 1) / (double)c, dist = 0;
        int ok = 1;
        for (int64_t i = 0; i < k; i++) {
            x[i] = (mask >> i & 1u) ? y[i] - tau : 0;
            if (x[i] < 0) ok = 0;
            dist += (x[i] - y[i]) * (x[i] - y[i]);
        }
        if (ok && dist < bestd) {
            bestd = dist;
            memcpy(best, x, (size_t)k * sizeof *x);
        }
    }
}

static void test_simplex(mtgradi_rng *r)
{
    double y[N], x[N], ref[N], work[N];
    for (int t = 0; t < 300; t++) {
        int64_t k = 1 + mtgradi_rng_below(r, 10);
        double s = t % 3 == 0 ? 0.1 : (t % 3 == 1 ? 1 : 100);
        for (int64_t i = 0; i < k; i++) y[i] = s * mtgradi_rng_normal(r);
        if (t % 7 == 0 && k > 1) y[k - 1] = y[0]; /* a tie */
        mtgradi_simplex_project(y, k, x, work);
        brute_project(y, k, ref);
        CHECK_ARRAY_CLOSE(x, ref, k, 0, 1e-12 * fmax(1, s));
        /* in place (out may equal y) */
        memcpy(ref, y, sizeof y);
        mtgradi_simplex_project(ref, k, ref, work);
        CHECK(memcmp(ref, x, (size_t)k * sizeof *x) == 0, "in place differs");
    }
    double e[1] = {-5}, o[1];
    mtgradi_simplex_project(e, 1, o, work);
    CHECK(o[0] == 1, "k = 1 gives 1, got %g", o[0]);
}

static void test_small(void)
{
    double A[9] = {1, 2, 3, 4, 5, 6, 7, 8, 10}, x[3] = {1, -1, 2}, y[3];
    mtgradi_matvec(A, 3, x, y);
    CHECK(y[0] == 5 && y[1] == 11 && y[2] == 19, "matvec %g %g %g", y[0], y[1], y[2]);
    CHECK(mtgradi_dot(x, x, 3) == 6, "dot");
    CHECK(mtgradi_quad(A, 3, x) == 1 * 5 - 11 + 2 * 19, "quad %g", mtgradi_quad(A, 3, x));
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 7);
    test_cholesky(&r);
    test_eigh(&r);
    test_eigh_lowrank(&r);
    test_pinv(&r);
    test_simplex(&r);
    test_small();
    return harness_report();
}
