/* linalg.c — small dense k x k linear algebra in double (k is the number of tasks, so these are
 * O(k^3) on tiny matrices; clarity and accuracy over speed). */
#include "internal.h"

#include <math.h>
#include <string.h>

double mtgradi_dot(const double *x, const double *y, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
    return s;
}

void mtgradi_matvec(const double *A, int64_t n, const double *x, double *y)
{
    for (int64_t i = 0; i < n; i++) y[i] = mtgradi_dot(A + i * n, x, n);
}

double mtgradi_quad(const double *A, int64_t n, const double *x)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] * mtgradi_dot(A + i * n, x, n);
    return s;
}

int mtgradi_cholesky(double *A, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int64_t p = 0; p < j; p++) s -= A[j * n + p] * A[j * n + p];
        if (!(s > 0)) return -1;
        double l = sqrt(s);
        A[j * n + j] = l;
        for (int64_t i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int64_t p = 0; p < j; p++) t -= A[i * n + p] * A[j * n + p];
            A[i * n + j] = t / l;
        }
    }
    return 0;
}

void mtgradi_cholesky_solve(const double *L, int64_t n, double *b)
{
    for (int64_t i = 0; i < n; i++) { /* L y = b */
        double s = b[i];
        for (int64_t p = 0; p < i; p++) s -= L[i * n + p] * b[p];
        b[i] = s / L[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; i--) { /* L^T x = y */
        double s = b[i];
        for (int64_t p = i + 1; p < n; p++) s -= L[p * n + i] * b[p];
        b[i] = s / L[i * n + i];
    }
}

/* One Jacobi rotation zeroing A[p][q] (A symmetric, full storage), accumulated into V. */
static void jacobi_rotate(double *A, double *V, int64_t n, int64_t p, int64_t q)
{
    double apq = A[p * n + q];
    double theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
    /* t = tan of the rotation angle, the smaller root for stability */
    double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
    double c = 1 / sqrt(t * t + 1), s = t * c;
    for (int64_t r = 0; r < n; r++) { /* columns p, q */
        double arp = A[r * n + p], arq = A[r * n + q];
        A[r * n + p] = c * arp - s * arq;
        A[r * n + q] = s * arp + c * arq;
    }
    for (int64_t r = 0; r < n; r++) { /* rows p, q */
        double apr = A[p * n + r], aqr = A[q * n + r];
        A[p * n + r] = c * apr - s * aqr;
        A[q * n + r] = s * apr + c * aqr;
    }
    A[p * n + q] = A[q * n + p] = 0;
    for (int64_t r = 0; r < n; r++) {
        double vrp = V[r * n + p], vrq = V[r * n + q];
        V[r * n + p] = c * vrp - s * vrq;
        V[r * n + q] = s * vrp + c * vrq;
    }
}

int mtgradi_eigh(const double *A, int64_t n, double *lambda, double *V, double *work)
{
    double *B = work;
    memcpy(B, A, (size_t)(n * n) * sizeof *B);
    for (int64_t i = 0; i < n * n; i++) V[i] = 0;
    for (int64_t i = 0; i < n; i++) V[i * n + i] = 1;
    double total = 0;
    for (int64_t i = 0; i < n * n; i++) total += B[i] * B[i];
    int converged = 0;
    for (int sweep = 0; sweep < 100 && !converged; sweep++) {
        double off = 0;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++) off += B[p * n + q] * B[p * n + q];
        /* cyclic Jacobi converges quadratically; stop when the off-diagonal is at rounding level */
        if (off <= 1e-34 * total || off == 0) {
            converged = 1;
            break;
        }
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++)
                if (B[p * n + q] != 0) jacobi_rotate(B, V, n, p, q);
    }
    for (int64_t i = 0; i < n; i++) lambda[i] = B[i * n + i];
    /* sort ascending (selection sort: n is small), permuting V's columns along */
    for (int64_t i = 0; i < n; i++) {
        int64_t m = i;
        for (int64_t j = i + 1; j < n; j++)
            if (lambda[j] < lambda[m]) m = j;
        if (m != i) {
            double t = lambda[i];
            lambda[i] = lambda[m];
            lambda[m] = t;
            for (int64_t r = 0; r < n; r++) {
                double v = V[r * n + i];
                V[r * n + i] = V[r * n + m];
                V[r * n + m] = v;
            }
        }
    }
    return converged ? 0 : -1;
}

int mtgradi_pinv_sym(const double *A, int64_t n, double rtol, double *P, double *work)
{
    double *V = work, *lambda = work + n * n, *w2 = work + n * n + n;
    (void)w2;
    int rc = mtgradi_eigh(A, n, lambda, V, work + n * n + n);
    double amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmax(amax, fabs(lambda[i]));
    double cutoff = rtol * amax;
    for (int64_t i = 0; i < n * n; i++) P[i] = 0;
    for (int64_t e = 0; e < n; e++) {
        if (!(fabs(lambda[e]) > cutoff)) continue;
        double inv = 1 / lambda[e];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < n; j++) P[i * n + j] += V[i * n + e] * inv * V[j * n + e];
    }
    return rc;
}
