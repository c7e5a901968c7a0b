/* linalg.c — small dense k x k linear algebra in double (k is the number of tasks: O(k^3) on
 * small matrices). Accuracy first, then speed where the solvers' time budget needs it (k = 40 in
 * well under 2 ms): the eigensolver is Householder + implicit QL with cyclic Jacobi kept as the
 * reference and as the path for ill-conditioned spectra, a rank-deficient PSD matrix (the Gram
 * of k > d gradients, k up to 1000) goes through a low-rank factor first, and active-set solvers
 * keep one Cholesky factor of their support up to date (mtgradi_subchol_*) instead of
 * refactoring. */
#include "internal.h"

#include <float.h>
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

/* Sort eigenvalues ascending (selection sort: n is small), permuting V's columns along. */
static void sort_eigen(double *lambda, double *V, int64_t n)
{
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
}

int mtgradi_eigh_jacobi(const double *A, int64_t n, double *lambda, double *V, double *work)
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
    sort_eigen(lambda, V, n);
    return converged ? 0 : -1;
}

/* Householder reduction to tridiagonal form: on return T = Qᵀ A Q has diagonal d and
 * sub-diagonal e[0..n-1) (e[i] couples i and i+1; e[n-1] = 0), Q in V (row-major, columns =
 * basis). B: the n x n working copy, overwritten; e may be B itself (it is written last, over
 * B's first row). p: n doubles of scratch (may be d: d is written last too).
 * Step j reflects rows/columns j+1.. with H = I - 2uuᵀ chosen so that column j below the
 * sub-diagonal vanishes: the trailing block becomes S - 2(uwᵀ + wuᵀ) with w = Su - (uᵀSu)u, and
 * V <- V H. u lives in column j of B (rows j+1..), which the trailing update does not touch. */
static void tridiagonalize(double *B, int64_t n, double *d, double *e, double *V, double *p)
{
    for (int64_t i = 0; i < n * n; i++) V[i] = 0;
    for (int64_t i = 0; i < n; i++) V[i * n + i] = 1;
    for (int64_t j = 0; j + 2 < n; j++) {
        int64_t m = n - j - 1; /* rows j+1..n-1 */
        double *u = B + (j + 1) * n + j; /* u[a * n]: column j, row j+1+a */
        double scale = 0, norm = 0;
        for (int64_t a = 0; a < m; a++) scale = fmax(scale, fabs(u[a * n]));
        if (scale == 0) continue; /* already reduced */
        for (int64_t a = 0; a < m; a++) {
            u[a * n] /= scale; /* scaled: no overflow in the norm */
            norm += u[a * n] * u[a * n];
        }
        norm = sqrt(norm);
        double alpha = u[0] > 0 ? -norm : norm; /* the sign that avoids cancellation in u0 */
        u[0] -= alpha;
        double un = 0;
        for (int64_t a = 0; a < m; a++) un += u[a * n] * u[a * n];
        un = sqrt(un);
        for (int64_t a = 0; a < m; a++) u[a * n] /= un;
        double *S = B + (j + 1) * n + (j + 1), K = 0;
        for (int64_t a = 0; a < m; a++) {
            double t = 0;
            for (int64_t b = 0; b < m; b++) t += S[a * n + b] * u[b * n];
            p[a] = t;
            K += u[a * n] * t;
        }
        for (int64_t a = 0; a < m; a++) p[a] -= K * u[a * n];
        for (int64_t a = 0; a < m; a++)
            for (int64_t b = 0; b < m; b++) S[a * n + b] -= 2 * (u[a * n] * p[b] + p[a] * u[b * n]);
        for (int64_t r = 0; r < n; r++) { /* V <- V H on columns j+1.. */
            double t = 0;
            for (int64_t a = 0; a < m; a++) t += V[r * n + j + 1 + a] * u[a * n];
            for (int64_t a = 0; a < m; a++) V[r * n + j + 1 + a] -= 2 * t * u[a * n];
        }
        B[j * n + j + 1] = alpha * scale; /* the new coupling, kept in the upper triangle */
    }
    for (int64_t i = 0; i < n; i++) d[i] = B[i * n + i];
    for (int64_t i = 0; i + 1 < n; i++) {
        /* rows reduced above keep the coupling in the upper triangle; the last one (and any
         * column skipped as already reduced) in both */
        double c = B[i * n + i + 1];
        e[i] = c; /* e may alias B's first row: entries i of row 0 are read before written */
    }
    e[n - 1] = 0;
}

/* Implicit QL with Wilkinson-type shifts on the tridiagonal (d, e), rotations accumulated into
 * V's columns (Golub & Van Loan §8.3; the QL ordering deflates from the top). Returns 0, or -1
 * if some eigenvalue needed more than 60 sweeps (the values are then still usable). */
static int tridiagonal_ql(double *d, double *e, int64_t n, double *V)
{
    int rc = 0;
    for (int64_t l = 0; l < n; l++) {
        for (int iter = 0;; iter++) {
            int64_t m = l; /* the first negligible coupling at or after l splits the matrix */
            for (; m + 1 < n; m++)
                if (fabs(e[m]) <= DBL_EPSILON * (fabs(d[m]) + fabs(d[m + 1]))) break;
            if (m == l) break;
            if (iter == 60) {
                rc = -1;
                break;
            }
            /* shift: the eigenvalue of the leading 2x2 block nearer d[l] */
            double g = (d[l + 1] - d[l]) / (2 * e[l]), r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
            double s = 1, c = 1, p = 0;
            int64_t i;
            for (i = m - 1; i >= l; i--) { /* chase the bulge up from m to l with rotations */
                double f = s * e[i], b = c * e[i];
                r = hypot(f, g);
                e[i + 1] = r;
                if (r == 0) { /* underflow: the matrix split at i+1 */
                    d[i + 1] -= p;
                    e[m] = 0;
                    break;
                }
                s = f / r, c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                for (int64_t k = 0; k < n; k++) {
                    double vk1 = V[k * n + i + 1], vk = V[k * n + i];
                    V[k * n + i + 1] = s * vk + c * vk1;
                    V[k * n + i] = c * vk - s * vk1;
                }
            }
            if (r == 0 && i >= l) continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ rank-deficient PSD path
 *
 * A Gram matrix of k rows in d < k dimensions has k - d zero eigenvalues, which send the
 * QL result to cyclic Jacobi (O(n³) per sweep with a large constant: ~50 s at n = 1000). For a
 * positive semi-definite A of numerical rank r < n the eigenpairs that carry information are
 * those of a rank-r factor: a diagonally pivoted Cholesky A ≈ LLᵀ (L: n x r) followed by
 * one-sided Jacobi on L's columns (Demmel & Veselić, "Jacobi's method is more accurate than
 * QR", SIMAX 1992: this pair keeps the relative accuracy of the small eigenvalues of a graded
 * matrix, which is why Jacobi was used here). Cost O(n r² + n² r) instead of O(n³).
 * A row leaves the pivot race when its Schur complement diagonal is at rounding level relative
 * to its own diagonal (a row-relative test: a tiny but independent row keeps its pivot, so
 * graded spectra stay resolved); the dropped remainder S = A - LLᵀ is then formed explicitly and
 * the path is taken only if ||S||_F is at rounding level of ||A||_F (the eigenpairs of LLᵀ are
 * those of A up to ||S||, like QL's backward error). Otherwise (full rank, indefinite, or a
 * remainder above rounding) the caller takes the general path. */

/* Row-relative rounding threshold of a Schur complement diagonal after `steps` eliminations. */
static double lowrank_row_tol(double a_ii, int64_t steps)
{
    return 8.0 * (double)(steps + 1) * DBL_EPSILON * a_ii;
}

/* Pivoted Cholesky: L (stride n, columns 0..r) with A ≈ LLᵀ, rows in A's order. d: the Schur
 * complement diagonal (n), piv: 1 for rows chosen as pivots (n, scratch). Returns r, or -1 if A
 * is not numerically PSD. */
static int64_t lowrank_factor(const double *A, int64_t n, double *L, double *d, double *piv)
{
    for (int64_t i = 0; i < n; i++) {
        d[i] = A[i * n + i];
        piv[i] = 0;
        if (!(d[i] >= 0)) return -1;
    }
    int64_t r = 0;
    for (; r < n; r++) {
        int64_t p = -1;
        for (int64_t i = 0; i < n; i++) {
            if (piv[i] != 0) continue;
            double tol = lowrank_row_tol(A[i * n + i], r);
            if (d[i] < -tol) return -1; /* a negative curvature above rounding */
            if (d[i] > tol && (p < 0 || d[i] > d[p])) p = i;
        }
        if (p < 0) break;
        double lpp = sqrt(d[p]);
        piv[p] = 1;
        for (int64_t i = 0; i < n; i++) {
            if (i == p) L[i * n + r] = lpp;
            else if (piv[i] != 0) L[i * n + r] = 0; /* an earlier pivot row: already exact */
            else {
                double t = A[i * n + p] - mtgradi_dot(L + i * n, L + p * n, r);
                L[i * n + r] = t / lpp;
                d[i] -= L[i * n + r] * L[i * n + r];
            }
        }
        d[p] = 0;
    }
    return r;
}

/* ||A - LLᵀ||_F² (L: n x r, stride n) and ||A||_F² in *a2. */
static double lowrank_remainder2(const double *A, int64_t n, const double *L, int64_t r, double *a2)
{
    double s2 = 0, t2 = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = A[i * n + j] - mtgradi_dot(L + i * n, L + j * n, r);
            s2 += s * s;
            t2 += A[i * n + j] * A[i * n + j];
        }
    *a2 = t2;
    return s2;
}

/* One-sided (Hestenes) Jacobi: rotate the r columns of U (n rows, stride ld) until they are
 * mutually orthogonal to rounding. Returns 0, or -1 if 60 sweeps did not suffice. */
static int onesided_jacobi(double *U, int64_t n, int64_t ld, int64_t r)
{
    for (int sweep = 0; sweep < 60; sweep++) {
        int rotated = 0;
        for (int64_t p = 0; p < r; p++)
            for (int64_t q = p + 1; q < r; q++) {
                double a = 0, b = 0, g = 0;
                for (int64_t i = 0; i < n; i++) {
                    double up = U[i * ld + p], uq = U[i * ld + q];
                    a += up * up, b += uq * uq, g += up * uq;
                }
                if (!(fabs(g) > DBL_EPSILON * sqrt(a * b))) continue; /* orthogonal to rounding */
                rotated = 1;
                double zeta = (b - a) / (2 * g);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                double c = 1 / sqrt(1 + t * t), s = c * t;
                for (int64_t i = 0; i < n; i++) {
                    double up = U[i * ld + p], uq = U[i * ld + q];
                    U[i * ld + p] = c * up - s * uq;
                    U[i * ld + q] = s * up + c * uq;
                }
            }
        if (!rotated) return 0;
    }
    return -1;
}

/* V's first n - r columns <- an orthonormal basis of the complement of U's r orthonormal
 * columns (stride n, overwritten by Householder vectors): the last n - r columns of the Q of
 * U = QR, Q = H_0 ... H_{r-1}, H_j = I - 2 v_j v_jᵀ. */
static void lowrank_complement(double *U, int64_t n, int64_t r, double *V)
{
    for (int64_t j = 0; j < r; j++) {
        double *v = U + j * n + j; /* v[a * n]: column j, rows j.. */
        double norm = 0;
        for (int64_t a = 0; a < n - j; a++) norm += v[a * n] * v[a * n];
        norm = sqrt(norm);
        double alpha = v[0] > 0 ? -norm : norm;
        v[0] -= alpha;
        double vn = 0;
        for (int64_t a = 0; a < n - j; a++) vn += v[a * n] * v[a * n];
        vn = sqrt(vn);
        for (int64_t a = 0; a < n - j; a++) v[a * n] = vn > 0 ? v[a * n] / vn : 0;
        for (int64_t c = j + 1; c < r; c++) { /* apply H_j to the remaining columns */
            double t = 0;
            for (int64_t a = 0; a < n - j; a++) t += v[a * n] * U[(j + a) * n + c];
            for (int64_t a = 0; a < n - j; a++) U[(j + a) * n + c] -= 2 * t * v[a * n];
        }
    }
    for (int64_t c = r; c < n; c++) { /* column c - r of V = H_0 ... H_{r-1} e_c */
        double *x = V + (c - r);
        for (int64_t i = 0; i < n; i++) x[i * n] = i == c;
        for (int64_t j = r - 1; j >= 0; j--) {
            const double *v = U + j * n + j;
            double t = 0;
            for (int64_t a = 0; a < n - j; a++) t += v[a * n] * x[(j + a) * n];
            for (int64_t a = 0; a < n - j; a++) x[(j + a) * n] -= 2 * t * v[a * n];
        }
    }
}

int64_t mtgradi_lowrank_factor(const double *A, int64_t n, double *L, double *scratch)
{
    int64_t r = lowrank_factor(A, n, L, scratch, scratch + n);
    if (r < 0 || r == n) return -1;
    double a2, s2 = lowrank_remainder2(A, n, L, r, &a2);
    /* the remainder at the level of a backward-stable eigensolver's error on A */
    if (!(s2 <= (16 * DBL_EPSILON) * (16 * DBL_EPSILON) * (double)n * a2)) return -1;
    return r;
}

int mtgradi_eigh_lowrank(const double *A, int64_t n, double *lambda, double *V, double *work)
{
    if (n < 2) return 1;
    double *L = work;
    int64_t r = mtgradi_lowrank_factor(A, n, L, V); /* V: 2n doubles of scratch (n >= 2) */
    if (r < 0) return 1;
    if (onesided_jacobi(L, n, n, r) != 0) return 1;
    /* eigenpairs of LLᵀ: (|l_j|², l_j/|l_j|); a column that vanished joins the null space */
    int64_t rr = 0;
    for (int64_t j = 0; j < r; j++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += L[i * n + j] * L[i * n + j];
        if (!(s > 0)) continue;
        double inv = 1 / sqrt(s);
        for (int64_t i = 0; i < n; i++) L[i * n + rr] = L[i * n + j] * inv;
        lambda[rr++] = s;
    }
    /* ascending: the rr kept pairs sorted, placed after the n - rr zeros */
    for (int64_t a = 1; a < rr; a++)
        for (int64_t b = a; b > 0 && lambda[b] < lambda[b - 1]; b--) {
            double t = lambda[b];
            lambda[b] = lambda[b - 1], lambda[b - 1] = t;
            for (int64_t i = 0; i < n; i++) {
                double u = L[i * n + b];
                L[i * n + b] = L[i * n + b - 1], L[i * n + b - 1] = u;
            }
        }
    for (int64_t j = rr - 1; j >= 0; j--) lambda[n - rr + j] = lambda[j];
    for (int64_t j = 0; j < n - rr; j++) lambda[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < rr; j++) V[i * n + n - rr + j] = L[i * n + j];
    lowrank_complement(L, n, rr, V);
    return 0;
}

/* Below this ratio min|λ| / max|λ| the QL result is replaced by Jacobi's (see mtgradi_eigh). */
#define EIGH_QL_MIN_RATIO 1e-4

int mtgradi_eigh(const double *A, int64_t n, double *lambda, double *V, double *work)
{
    /* a rank-deficient PSD matrix (k > d Gram): the factor path, O(n r²) instead of Jacobi */
    if (mtgradi_eigh_lowrank(A, n, lambda, V, work) == 0) return 0;
    /* work (n*n): the reduced copy of A; afterwards its first n entries hold the sub-diagonal */
    memcpy(work, A, (size_t)(n * n) * sizeof *work);
    tridiagonalize(work, n, lambda, work, V, lambda);
    int rc = tridiagonal_ql(lambda, work, n, V);
    double lmin = INFINITY, lmax = 0;
    for (int64_t i = 0; i < n; i++) lmin = fmin(lmin, fabs(lambda[i])), lmax = fmax(lmax, fabs(lambda[i]));
    /* QL's eigenvalues carry absolute errors ~n·eps·max|λ|: a small eigenvalue loses relative
     * accuracy (pinv, rank decisions and the QP's zero-curvature test depend on exactly those).
     * Cyclic Jacobi keeps high relative accuracy there, so an ill-conditioned (or unconverged)
     * spectrum is recomputed by it; well-conditioned ones — the common case — keep the fast
     * result. */
    if (rc != 0 || lmin < EIGH_QL_MIN_RATIO * lmax) return mtgradi_eigh_jacobi(A, n, lambda, V, work);
    sort_eigen(lambda, V, n);
    return rc;
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

/* ------------------------------------------------------------------ Cholesky of a principal
 * submatrix that follows an index set (active-set solvers: QP on the simplex, NNLS). */

int mtgradi_subchol_append(mtgradi_subchol *f, const double *A, int64_t lda, double shift,
                           int64_t j, double tol)
{
    int64_t m = f->m, ld = f->ld;
    double *L = f->L, piv = A[j * lda + j] + shift;
    for (int64_t r = 0; r < m; r++) {
        double t = A[(int64_t)f->idx[r] * lda + j] + shift;
        for (int64_t q = 0; q < r; q++) t -= L[r * ld + q] * L[m * ld + q];
        t /= L[r * ld + r];
        L[m * ld + r] = t;
        piv -= t * t;
    }
    if (!(piv > tol)) return -1;
    L[m * ld + m] = sqrt(piv);
    f->idx[m] = (double)j;
    f->m = m + 1;
    return 0;
}

/* Rows below r move up; their trailing block T becomes chol(TTᵀ + xxᵀ) with x the deleted
 * column: a rank-one update (rotations, no cancellation), which keeps the factor accurate. */
void mtgradi_subchol_delete(mtgradi_subchol *f, int64_t r, double *x)
{
    int64_t m = f->m, ld = f->ld;
    double *L = f->L;
    for (int64_t i = r + 1; i < m; i++) x[i] = L[i * ld + r];
    for (int64_t i = r + 1; i < m; i++) {
        for (int64_t q = 0; q < r; q++) L[(i - 1) * ld + q] = L[i * ld + q];
        for (int64_t q = r + 1; q <= i; q++) L[(i - 1) * ld + q - 1] = L[i * ld + q];
        f->idx[i - 1] = f->idx[i];
    }
    for (int64_t j = r; j < m - 1; j++) {
        double ljj = L[j * ld + j], xj = x[j + 1];
        double rr = hypot(ljj, xj), c = rr / ljj, sn = xj / ljj;
        L[j * ld + j] = rr;
        for (int64_t i = j + 1; i < m - 1; i++) {
            L[i * ld + j] = (L[i * ld + j] + sn * x[i + 1]) / c;
            x[i + 1] = c * x[i + 1] - sn * L[i * ld + j];
        }
    }
    f->m = m - 1;
}

int64_t mtgradi_subchol_find(const mtgradi_subchol *f, int64_t j)
{
    for (int64_t r = 0; r < f->m; r++)
        if ((int64_t)f->idx[r] == j) return r;
    return -1;
}

void mtgradi_subchol_solve(const mtgradi_subchol *f, double *b)
{
    int64_t m = f->m, ld = f->ld;
    const double *L = f->L;
    for (int64_t i = 0; i < m; i++) {
        double t = b[i];
        for (int64_t q = 0; q < i; q++) t -= L[i * ld + q] * b[q];
        b[i] = t / L[i * ld + i];
    }
    for (int64_t i = m - 1; i >= 0; i--) {
        double t = b[i];
        for (int64_t q = i + 1; q < m; q++) t -= L[q * ld + i] * b[q];
        b[i] = t / L[i * ld + i];
    }
}

void mtgradi_adam_step(double *x, double *m, double *v, const double *g, int64_t n, double *t,
                       double lr, double b1, double b2, double eps)
{
    double step = *t + 1, bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
    for (int64_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        x[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
    *t = step;
}
