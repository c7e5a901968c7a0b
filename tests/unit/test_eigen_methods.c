/* IMTL-G and Aligned-MTL against independent computations: Gaussian elimination, equal
 * projections, Denman–Beavers square roots, closed-form 2x2/3x3 eigenvalues, projector
 * identities for rank-deficient G; variant presets; degenerate inputs. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define KMAX 6

static void random_G(mtgradi_rng *r, int64_t k, int64_t d, double *G)
{
    for (int64_t i = 0; i < k * d; i++) G[i] = mtgradi_rng_normal(r);
}

static void gram(const double *G, int64_t k, int64_t d, double *M)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) M[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
}

/* Gauss–Jordan inverse with partial pivoting (n <= KMAX). */
static void invert(const double *A_in, int n, double *X)
{
    double A[KMAX * KMAX];
    memcpy(A, A_in, sizeof(double) * (size_t)(n * n));
    for (int i = 0; i < n * n; i++) X[i] = i % (n + 1) == 0;
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(A[i * n + c]) > fabs(A[p * n + c])) p = i;
        for (int j = 0; j < n; j++) {
            double t = A[c * n + j]; A[c * n + j] = A[p * n + j]; A[p * n + j] = t;
            t = X[c * n + j]; X[c * n + j] = X[p * n + j]; X[p * n + j] = t;
        }
        double piv = A[c * n + c];
        for (int j = 0; j < n; j++) A[c * n + j] /= piv, X[c * n + j] /= piv;
        for (int i = 0; i < n; i++) {
            if (i == c) continue;
            double f = A[i * n + c];
            for (int j = 0; j < n; j++) A[i * n + j] -= f * A[c * n + j], X[i * n + j] -= f * X[c * n + j];
        }
    }
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------ IMTL-G */

static void test_imtl_full_rank(mtgradi_rng *r)
{
    static const int64_t ks[] = {2, 3, 5};
    double G[5 * 9], M[25], Mi[25], n[5], ref[5], w[5], dir[9];
    for (int t = 0; t < 9; t++) {
        int64_t k = ks[t % 3], d = 9;
        random_G(r, k, d, G);
        if (t >= 6) /* norms spread over 1e-3..1e3 */
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < d; j++) G[i * d + j] *= pow(10.0, 3.0 * (double)(2 * i - k + 1) / (double)k);
        gram(G, k, d, M);
        mtgrad_aggregator *a;
        CHECK(mtgrad_aggregator_new(&a, "imtl_g", k, NULL, NULL, 0) == MTGRAD_OK, "new");
        CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w) == MTGRAD_OK, "aggregate");
        double sum = 0;
        for (int64_t i = 0; i < k; i++) sum += w[i];
        CHECK_CLOSE(sum, 1.0, 1e-12, 0);
        /* equal projections on the unit gradients */
        double p0 = mtgradi_dot(dir, G, d) / sqrt(M[0]);
        for (int64_t i = 1; i < k; i++)
            CHECK_CLOSE(mtgradi_dot(dir, G + i * d, d) / sqrt(M[i * k + i]), p0, 1e-9, 0);
        /* closed form M^{-1} n / 1ᵀM^{-1} n by Gauss–Jordan */
        invert(M, (int)k, Mi);
        for (int64_t i = 0; i < k; i++) n[i] = sqrt(M[i * k + i]);
        mtgradi_matvec(Mi, k, n, ref);
        double rs = 0;
        for (int64_t i = 0; i < k; i++) rs += ref[i];
        for (int64_t i = 0; i < k; i++) ref[i] /= rs;
        CHECK_ARRAY_CLOSE(w, ref, k, 1e-9, 1e-12);
        mtgrad_aggregator_free(a);
    }
}

static void test_imtl_degenerate(mtgradi_rng *r)
{
    double G[3 * 4], M[9], w[3], dir[4];
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "imtl_g", 3, NULL, NULL, 0) == MTGRAD_OK, "new");
    memset(G, 0, sizeof G); /* all zero: v = 0, |Σv| < 1e-12, w = 0 */
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "zero G");
    for (int i = 0; i < 3; i++) CHECK(w[i] == 0, "zero G: w[%d] = %g", i, w[i]);
    random_G(r, 1, 4, G); /* identical rows: pinv(c11ᵀ)·sqrt(c)1 ∝ 1, so w = 1/3 */
    memcpy(G + 4, G, 4 * sizeof *G);
    memcpy(G + 8, G, 4 * sizeof *G);
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "identical");
    for (int i = 0; i < 3; i++) CHECK_CLOSE(w[i], 1.0 / 3, 1e-10, 0);
    random_G(r, 3, 2, G); /* k > d, a zero row, rows 1e±8: finite */
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_OK, "k > d");
    CHECK(all_finite(w, 3) && all_finite(dir, 2), "k > d finite");
    random_G(r, 3, 4, G);
    memset(G, 0, 4 * sizeof *G);
    for (int j = 0; j < 4; j++) G[4 + j] *= 1e8, G[8 + j] *= 1e-8;
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "zero row + scaled");
    CHECK(all_finite(w, 3) && all_finite(dir, 4), "zero row finite");
    /* permutation: swap tasks 0 and 2 */
    random_G(r, 3, 4, G);
    gram(G, 3, 4, M);
    double Mp[9], wp[3];
    int perm[3] = {2, 1, 0};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) Mp[i * 3 + j] = M[perm[i] * 3 + perm[j]];
    CHECK(mtgrad_weights_from_gram(a, M, 3, NULL, w) == MTGRAD_OK, "w");
    CHECK(mtgrad_weights_from_gram(a, Mp, 3, NULL, wp) == MTGRAD_OK, "wp");
    for (int i = 0; i < 3; i++) CHECK_CLOSE(wp[i], w[perm[i]], 1e-12, 1e-15);
    mtgrad_aggregator_free(a);
}

/* ------------------------------------------------------------------ Aligned-MTL */

/* Eigenvalues of a symmetric 3x3 (trigonometric closed form), descending. */
static void eig3(const double *A, double *e)
{
    double q = (A[0] + A[4] + A[8]) / 3;
    double p1 = A[1] * A[1] + A[2] * A[2] + A[5] * A[5];
    double p2 = (A[0] - q) * (A[0] - q) + (A[4] - q) * (A[4] - q) + (A[8] - q) * (A[8] - q) + 2 * p1;
    double p = sqrt(p2 / 6), B[9];
    for (int i = 0; i < 9; i++) B[i] = (A[i] - (i % 4 == 0 ? q : 0)) / p;
    double det = B[0] * (B[4] * B[8] - B[5] * B[7]) - B[1] * (B[3] * B[8] - B[5] * B[6]) +
                 B[2] * (B[3] * B[7] - B[4] * B[6]);
    double rr = fmin(1, fmax(-1, det / 2)), phi = acos(rr) / 3;
    e[0] = q + 2 * p * cos(phi);
    e[2] = q + 2 * p * cos(phi + 2 * 3.14159265358979323846 / 3);
    e[1] = 3 * q - e[0] - e[2];
}

/* M^{-1/2} by the Denman–Beavers iteration (M SPD, n <= KMAX). */
static void inv_sqrt(const double *M, int n, double *Z)
{
    double Y[KMAX * KMAX], Yi[KMAX * KMAX], Zi[KMAX * KMAX];
    memcpy(Y, M, sizeof(double) * (size_t)(n * n));
    for (int i = 0; i < n * n; i++) Z[i] = i % (n + 1) == 0;
    for (int it = 0; it < 60; it++) {
        invert(Y, n, Yi);
        invert(Z, n, Zi);
        for (int i = 0; i < n * n; i++) {
            Y[i] = 0.5 * (Y[i] + Zi[i]);
            Z[i] = 0.5 * (Z[i] + Yi[i]);
        }
    }
}

static void test_aligned_full_rank(mtgradi_rng *r)
{
    static const char *modes[] = {"min", "median", "rmse"};
    static const char *prefs[] = {"mean", "ones"};
    double G[3 * 6], M[9], Z[9], e[3], pref[3], ref[3], w[3], dir[6];
    for (int t = 0; t < 4; t++) {
        random_G(r, 3, 6, G);
        gram(G, 3, 6, M);
        eig3(M, e);
        inv_sqrt(M, 3, Z);
        for (int m = 0; m < 3; m++)
            for (int p = 0; p < 2; p++) {
                char par[64];
                snprintf(par, sizeof par, "scale_mode=%s,pref_vector=%s", modes[m], prefs[p]);
                double s = m == 0 ? e[2] : m == 1 ? e[1] : (e[0] + e[1] + e[2]) / 3;
                for (int i = 0; i < 3; i++) pref[i] = p == 0 ? 1.0 / 3 : 1.0;
                mtgradi_matvec(Z, 3, pref, ref);
                for (int i = 0; i < 3; i++) ref[i] *= sqrt(s);
                mtgrad_aggregator *a;
                CHECK(mtgrad_aggregator_new(&a, "aligned_mtl", 3, par, NULL, 0) == MTGRAD_OK, "new %s", par);
                CHECK(mtgrad_aggregate_f64(a, G, 3, 6, 6, NULL, dir, w) == MTGRAD_OK, "aggregate");
                CHECK_ARRAY_CLOSE(w, ref, 3, 1e-10, 1e-14);
                /* aligned gradients orthonormal up to s: ||Gᵀw||² = wᵀMw = s ||pref||² */
                CHECK_CLOSE(mtgradi_dot(dir, dir, 6), s * mtgradi_dot(pref, pref, 3), 1e-10, 0);
                mtgrad_aggregator_free(a);
            }
    }
}

/* k = 4 rows in d = 2: rank 2. The kept eigenvalues are those of GᵀG (2x2); w lies in the
 * column space of G and wᵀMw = s ||P pref||² with P the projector on it. */
static void test_aligned_rank_deficient(mtgradi_rng *r)
{
    enum { K = 4, D = 2 };
    double G[K * D], w[K], dir[D], M[K * K];
    random_G(r, K, D, G);
    gram(G, K, D, M);
    double a11 = 0, a12 = 0, a22 = 0;
    for (int i = 0; i < K; i++) a11 += G[i * D] * G[i * D], a12 += G[i * D] * G[i * D + 1], a22 += G[i * D + 1] * G[i * D + 1];
    double mid = (a11 + a22) / 2, rad = sqrt((a11 - a22) * (a11 - a22) / 4 + a12 * a12);
    double lmin = mid - rad;
    /* orthonormal basis q1, q2 of the column space of G (Gram–Schmidt in R^K) */
    double q1[K], q2[K], pref[K], Pp[K];
    for (int i = 0; i < K; i++) q1[i] = G[i * D], q2[i] = G[i * D + 1], pref[i] = 0.25;
    double n1 = sqrt(mtgradi_dot(q1, q1, K));
    for (int i = 0; i < K; i++) q1[i] /= n1;
    double c = mtgradi_dot(q1, q2, K);
    for (int i = 0; i < K; i++) q2[i] -= c * q1[i];
    double n2 = sqrt(mtgradi_dot(q2, q2, K));
    for (int i = 0; i < K; i++) q2[i] /= n2;
    double c1 = mtgradi_dot(q1, pref, K), c2 = mtgradi_dot(q2, pref, K);
    for (int i = 0; i < K; i++) Pp[i] = c1 * q1[i] + c2 * q2[i];
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "aligned_mtl", K, NULL, NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(a, G, K, D, D, NULL, dir, w) == MTGRAD_OK, "aggregate");
    CHECK_CLOSE(mtgradi_quad(M, K, w), lmin * mtgradi_dot(Pp, Pp, K), 1e-10, 0);
    double pw[K], d1 = mtgradi_dot(q1, w, K), d2 = mtgradi_dot(q2, w, K);
    for (int i = 0; i < K; i++) pw[i] = d1 * q1[i] + d2 * q2[i];
    CHECK_ARRAY_CLOSE(pw, w, K, 1e-10, 1e-13);
    mtgrad_aggregator_free(a);
}

/* Nearly parallel rows (λ_min/λ_max ~ 1e-10): the torchjd threshold (k·1.19e-7) drops the small
 * eigenvalue, so w is an eigenvector of the top eigenvalue; the libmtl threshold keeps it. */
static void test_aligned_rank_threshold(mtgradi_rng *r)
{
    double G[2 * 5], M[4], w[2], dir[5], Mw[2];
    random_G(r, 1, 5, G);
    for (int j = 0; j < 5; j++) G[5 + j] = G[j] + 1e-5 * mtgradi_rng_normal(r);
    gram(G, 2, 5, M);
    double mid = (M[0] + M[3]) / 2, rad = sqrt((M[0] - M[3]) * (M[0] - M[3]) / 4 + M[1] * M[1]);
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "aligned_mtl", 2, "variant=torchjd", NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(a, G, 2, 5, 5, NULL, dir, w) == MTGRAD_OK, "aggregate");
    mtgradi_matvec(M, 2, w, Mw);
    CHECK_CLOSE(Mw[0], (mid + rad) * w[0], 1e-8, 0);
    CHECK_CLOSE(Mw[1], (mid + rad) * w[1], 1e-8, 0);
    CHECK(mtgrad_aggregator_set_param(a, "variant", "libmtl") == MTGRAD_OK, "libmtl");
    CHECK(mtgrad_aggregate_f64(a, G, 2, 5, 5, NULL, dir, w) == MTGRAD_OK, "aggregate");
    /* full rank kept: ||Gᵀw||² = λ_min ||1||² = 2 λ_min (relative to λ_min ~ 1e-10 λ_max) */
    CHECK_CLOSE(mtgradi_quad(M, 2, w), 2 * (mid - rad), 1e-4, 0);
    mtgrad_aggregator_free(a);
}

/* The parameter's value as text equals `want`: same choice name, or the same number. */
static void check_param(mtgrad_aggregator *a, const char *name, const char *want)
{
    char buf[64], *end_b, *end_w;
    mtgrad_aggregator_get_param(a, name, buf, sizeof buf);
    double b = strtod(buf, &end_b), w = strtod(want, &end_w);
    int numeric = end_b != buf && *end_b == '\0' && end_w != want && *end_w == '\0';
    CHECK(numeric ? b == w : strcmp(buf, want) == 0, "%s = %s, want %s", name, buf, want);
}

static void test_aligned_presets_and_degenerate(mtgradi_rng *r)
{
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "aligned_mtl", 3, NULL, NULL, 0) == MTGRAD_OK, "new");
    check_param(a, "pref_vector", "mean");
    check_param(a, "rank_eps", "1.1920929000000001e-07");
    CHECK(mtgrad_aggregator_set_param(a, "variant", "libmtl") == MTGRAD_OK, "set variant");
    check_param(a, "pref_vector", "ones");
    check_param(a, "rank_eps", "2.2204460492503131e-16");
    mtgrad_aggregator_free(a);
    CHECK(mtgrad_aggregator_new(&a, "aligned_mtl", 3, "pref_vector=mean,variant=libmtl", NULL, 0) == MTGRAD_OK, "new");
    check_param(a, "pref_vector", "mean"); /* user-set values win over the preset */
    check_param(a, "rank_eps", "2.2204460492503131e-16");

    double G[3 * 4], w[3], dir[4];
    memset(G, 0, sizeof G); /* rank 0: B = I, w = pref */
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "zero");
    for (int i = 0; i < 3; i++) CHECK(w[i] == 1.0 / 3, "zero G: w[%d] = %g", i, w[i]);
    random_G(r, 1, 4, G); /* identical rows: rank 1, B = vvᵀ with v ∝ 1, w = pref */
    memcpy(G + 4, G, 4 * sizeof *G);
    memcpy(G + 8, G, 4 * sizeof *G);
    CHECK(mtgrad_aggregator_set_param(a, "variant", "torchjd") == MTGRAD_OK, "torchjd");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "identical");
    for (int i = 0; i < 3; i++) CHECK_CLOSE(w[i], 1.0 / 3, 1e-10, 0);
    random_G(r, 3, 4, G); /* a zero row and rows scaled 1e±10 */
    memset(G, 0, 4 * sizeof *G);
    for (int j = 0; j < 4; j++) G[4 + j] *= 1e10, G[8 + j] *= 1e-10;
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "scaled");
    CHECK(all_finite(w, 3) && all_finite(dir, 4), "scaled: finite");
    mtgrad_aggregator_free(a);
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 2024);
    test_imtl_full_rank(&r);
    test_imtl_degenerate(&r);
    test_aligned_full_rank(&r);
    test_aligned_rank_deficient(&r);
    test_aligned_rank_threshold(&r);
    test_aligned_presets_and_degenerate(&r);
    return harness_report();
}
