/* UPGrad and DualProj: the NNLS solver against the KKT conditions and against brute-force
 * enumeration of the support, the documented non-conflict bound, exact non-conflict with
 * reg_eps = 0, scaling/permutation properties, and degenerate inputs. */
#include "harness.h"
#include "internal.h"
#include "nnls.h"

#include <stdlib.h>
#include <string.h>

#define KMAX 8

static void random_G(mtgradi_rng *r, int64_t k, int64_t d, double *G)
{
    for (int64_t i = 0; i < k * d; i++) G[i] = mtgradi_rng_normal(r);
}

static void gram(const double *G, int64_t k, int64_t d, double *M)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) M[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
}

/* Solve A x = b (n x n, copied) by Gaussian elimination with partial pivoting; -1 if singular. */
static int gauss_solve(const double *A_in, const double *b_in, int n, double *x)
{
    double A[KMAX * KMAX], b[KMAX];
    if (n < 1 || n > KMAX) return -1; /* also tells the compiler the copies below are bounded */
    memcpy(A, A_in, sizeof(double) * (size_t)(n * n));
    memcpy(b, b_in, sizeof(double) * (size_t)n);
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int i = c + 1; i < n; i++)
            if (fabs(A[i * n + c]) > fabs(A[p * n + c])) p = i;
        if (A[p * n + c] == 0) return -1;
        for (int j = 0; j < n; j++) {
            double t = A[c * n + j];
            A[c * n + j] = A[p * n + j];
            A[p * n + j] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (int i = c + 1; i < n; i++) {
            double f = A[i * n + c] / A[c * n + c];
            for (int j = c; j < n; j++) A[i * n + j] -= f * A[c * n + j];
            b[i] -= f * b[c];
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (int j = i + 1; j < n; j++) s -= A[i * n + j] * x[j];
        x[i] = s / A[i * n + i];
    }
    return 0;
}

/* argmin vᵀQv s.t. v ≥ u by trying every support S (v_S > u_S free, v = u elsewhere) and
 * keeping the one that satisfies the KKT conditions. Returns 0 if one was found. */
static int brute_force_project(const double *Q, const double *u, int k, double *v)
{
    for (unsigned mask = 0; mask < (1u << k); mask++) {
        int idx[KMAX], n = 0;
        for (int i = 0; i < k; i++)
            if (mask & (1u << i)) idx[n++] = i;
        double A[KMAX * KMAX], b[KMAX], x[KMAX];
        for (int a = 0; a < n; a++) {
            b[a] = 0;
            for (int j = 0; j < k; j++) b[a] -= Q[idx[a] * k + j] * u[j];
            for (int c = 0; c < n; c++) A[a * n + c] = Q[idx[a] * k + idx[c]];
        }
        if (n && gauss_solve(A, b, n, x) != 0) continue;
        double cand[KMAX];
        memcpy(cand, u, sizeof(double) * (size_t)k);
        int ok = 1;
        for (int a = 0; a < n; a++) {
            if (x[a] < -1e-13) ok = 0;
            cand[idx[a]] += x[a];
        }
        for (int i = 0; i < k && ok; i++) {
            if (mask & (1u << i)) continue;
            double g = mtgradi_dot(Q + i * k, cand, k); /* gradient of the bound coordinate */
            if (g < -1e-13) ok = 0;
        }
        if (ok) {
            memcpy(v, cand, sizeof(double) * (size_t)k);
            return 0;
        }
    }
    return -1;
}

/* KKT of min ½vᵀQv s.t. v ≥ u: v ≥ u, Qv ≥ 0, (v − u) ⊙ Qv = 0. */
static void check_kkt(const double *Q, const double *u, int64_t k, const double *v)
{
    double g[KMAX], scale = 0;
    mtgradi_matvec(Q, k, v, g);
    for (int64_t i = 0; i < k; i++) scale = fmax(scale, fabs(v[i]));
    for (int64_t i = 0; i < k; i++) {
        CHECK(v[i] >= u[i] - 1e-15, "feasibility v[%lld] = %g < u = %g", (long long)i, v[i], u[i]);
        CHECK(g[i] >= -1e-14 * scale, "dual feasibility (Qv)[%lld] = %g", (long long)i, g[i]);
        CHECK(fabs((v[i] - u[i]) * g[i]) <= 1e-14 * scale * scale, "complementarity [%lld]: %g",
              (long long)i, (v[i] - u[i]) * g[i]);
    }
}

static void test_qp_kkt_and_enumeration(mtgradi_rng *r)
{
    double G[KMAX * 20], M[KMAX * KMAX], Q[KMAX * KMAX], u[KMAX], v[KMAX], vb[KMAX];
    double *work = malloc(mtgradi_cone_work_size(KMAX) * sizeof *work);
    static const int64_t ks[] = {2, 3, 4, 6, 8}, ds[] = {1, 2, 3, 5, 20};
    for (int trial = 0; trial < 40; trial++) {
        int64_t k = ks[trial % 5], d = ds[(trial / 5) % 5];
        random_G(r, k, d, G);
        gram(G, k, d, M);
        mtgradi_cone_gram(M, k, 1e-4, 1e-4, Q);
        for (int64_t i = 0; i < k; i++) {
            for (int64_t j = 0; j < k; j++) u[j] = j == i ? 1.0 / (double)k : 0;
            CHECK(mtgradi_cone_project(Q, u, k, v, work) == 0, "cone_project status");
            check_kkt(Q, u, k, v);
            CHECK(brute_force_project(Q, u, (int)k, vb) == 0, "brute force found no KKT point");
            CHECK_ARRAY_CLOSE(v, vb, k, 1e-10, 1e-12);
        }
        for (int64_t j = 0; j < k; j++) u[j] = 1.0 / (double)k; /* DualProj's problem */
        CHECK(mtgradi_cone_project(Q, u, k, v, work) == 0, "cone_project status");
        check_kkt(Q, u, k, v);
        CHECK(brute_force_project(Q, u, (int)k, vb) == 0, "brute force found no KKT point");
        CHECK_ARRAY_CLOSE(v, vb, k, 1e-10, 1e-12);
    }
    free(work);
}

/* The public weights equal the sum (UPGrad) / the single solution (DualProj) of the
 * brute-force QPs on the normalised Gram matrix. */
static void test_weights_vs_enumeration(mtgradi_rng *r)
{
    double G[5 * 3], M[25], Q[25], u[5], v[5], ref[5], w[5];
    int64_t k = 5, d = 3; /* k > d: the dual cone is narrow, many constraints active */
    random_G(r, k, d, G);
    gram(G, k, d, M);
    double tr = 0;
    for (int i = 0; i < 5; i++) tr += M[i * 5 + i];
    for (int i = 0; i < 25; i++) Q[i] = M[i] / tr + (i % 6 == 0 ? 1e-4 : 0);
    memset(ref, 0, sizeof ref);
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 5; j++) u[j] = j == i ? 0.2 : 0;
        CHECK(brute_force_project(Q, u, 5, v) == 0, "brute force");
        for (int j = 0; j < 5; j++) ref[j] += v[j];
    }
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "upgrad", k, NULL, NULL, 0) == MTGRAD_OK, "new upgrad");
    CHECK(mtgrad_weights_from_gram(a, M, k, NULL, w) == MTGRAD_OK, "upgrad weights");
    CHECK_ARRAY_CLOSE(w, ref, k, 1e-10, 1e-13);
    mtgrad_aggregator_free(a);

    for (int j = 0; j < 5; j++) u[j] = 0.2;
    CHECK(brute_force_project(Q, u, 5, ref) == 0, "brute force");
    CHECK(mtgrad_aggregator_new(&a, "dualproj", k, NULL, NULL, 0) == MTGRAD_OK, "new dualproj");
    CHECK(mtgrad_weights_from_gram(a, M, k, NULL, w) == MTGRAD_OK, "dualproj weights");
    CHECK_ARRAY_CLOSE(w, ref, k, 1e-10, 1e-13);
    mtgrad_aggregator_free(a);
}

/* <g_j, d> >= −reg_eps·tr(M)·w_j (the documented bound) for the defaults, and >= 0 up to
 * rounding with reg_eps = 0 on a non-singular M. */
static void test_nonconflict(mtgradi_rng *r)
{
    static const char *methods[] = {"upgrad", "dualproj"};
    double G[6 * 10], M[36], w[6], dir[10], gd[6];
    for (int mi = 0; mi < 2; mi++)
        for (int trial = 0; trial < 20; trial++) {
            int64_t k = 2 + trial % 5, d = trial < 10 ? 10 : 2 + trial % 3;
            random_G(r, k, d, G);
            gram(G, k, d, M);
            double tr = 0, gmax = 0;
            for (int64_t i = 0; i < k; i++) tr += M[i * k + i], gmax = fmax(gmax, sqrt(M[i * k + i]));
            mtgrad_aggregator *a;
            CHECK(mtgrad_aggregator_new(&a, methods[mi], k, NULL, NULL, 0) == MTGRAD_OK, "new");
            CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w) == MTGRAD_OK, "aggregate");
            for (int64_t i = 0; i < k; i++) gd[i] = mtgradi_dot(G + i * d, dir, d);
            for (int64_t i = 0; i < k; i++)
                CHECK(gd[i] >= -1e-4 * tr * w[i] - 1e-12 * tr, "%s: <g_%lld, d> = %g below the bound %g",
                      methods[mi], (long long)i, gd[i], -1e-4 * tr * w[i]);
            if (k <= d) { /* full row rank: the exact projection is conflict-free */
                CHECK(mtgrad_aggregator_set_param(a, "reg_eps", "0") == MTGRAD_OK, "reg_eps=0");
                CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w) == MTGRAD_OK, "aggregate");
                double dn = sqrt(mtgradi_dot(dir, dir, d));
                for (int64_t i = 0; i < k; i++)
                    CHECK(mtgradi_dot(G + i * d, dir, d) >= -1e-12 * gmax * dn,
                          "%s reg_eps=0: <g_%lld, d> = %g", methods[mi], (long long)i,
                          mtgradi_dot(G + i * d, dir, d));
            }
            mtgrad_aggregator_free(a);
        }
}

/* The QP is homogeneous in u: pref ones = k × pref mean; and permuting the tasks permutes w. */
static void test_pref_and_permutation(mtgradi_rng *r)
{
    static const char *methods[] = {"upgrad", "dualproj"};
    int64_t k = 4, d = 3;
    double G[12], M[16], Mp[16], w1[4], w2[4], wp[4];
    int perm[4] = {2, 0, 3, 1};
    random_G(r, k, d, G);
    gram(G, k, d, M);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) Mp[i * 4 + j] = M[perm[i] * 4 + perm[j]];
    for (int mi = 0; mi < 2; mi++) {
        mtgrad_aggregator *a, *b;
        CHECK(mtgrad_aggregator_new(&a, methods[mi], k, NULL, NULL, 0) == MTGRAD_OK, "new");
        CHECK(mtgrad_aggregator_new(&b, methods[mi], k, "pref_vector=ones", NULL, 0) == MTGRAD_OK, "new");
        CHECK(mtgrad_weights_from_gram(a, M, k, NULL, w1) == MTGRAD_OK, "w mean");
        CHECK(mtgrad_weights_from_gram(b, M, k, NULL, w2) == MTGRAD_OK, "w ones");
        for (int i = 0; i < 4; i++) w1[i] *= 4;
        CHECK_ARRAY_CLOSE(w2, w1, k, 1e-12, 1e-14);
        CHECK(mtgrad_weights_from_gram(b, Mp, k, NULL, wp) == MTGRAD_OK, "w permuted");
        for (int i = 0; i < 4; i++) w1[i] = w2[perm[i]];
        CHECK_ARRAY_CLOSE(wp, w1, k, 1e-12, 1e-14);
        mtgrad_aggregator_free(a);
        mtgrad_aggregator_free(b);
    }
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Zero, identical, opposite, k > d and wildly scaled rows: finite, status OK. Tiny gradients
 * (tr(M) < norm_eps) give the plain mean, as in TorchJD. */
static void test_degenerate(mtgradi_rng *r)
{
    static const char *methods[] = {"upgrad", "dualproj"};
    enum { K = 4, D = 3 };
    double G[K * D], w[K], dir[D];
    for (int mi = 0; mi < 2; mi++) {
        for (int kind = 0; kind < 6; kind++) {
            random_G(r, K, D, G);
            if (kind == 0) memset(G, 0, sizeof G);
            if (kind == 1) for (int i = 1; i < K; i++) memcpy(G + i * D, G, D * sizeof *G);
            if (kind == 2) for (int j = 0; j < D; j++) G[D + j] = -G[j];
            if (kind == 3) memset(G, 0, D * sizeof *G); /* one zero row */
            if (kind == 4) for (int i = 0; i < K; i++) for (int j = 0; j < D; j++) G[i * D + j] *= pow(1e10, i - 1.5);
            if (kind == 5) for (int i = 0; i < K * D; i++) G[i] *= 1e-4; /* tr(M) < norm_eps */
            mtgrad_aggregator *a;
            CHECK(mtgrad_aggregator_new(&a, methods[mi], K, NULL, NULL, 0) == MTGRAD_OK, "new");
            mtgrad_status s = mtgrad_aggregate_f64(a, G, K, D, D, NULL, dir, w);
            CHECK(s == MTGRAD_OK, "%s kind %d: status %d (%s)", methods[mi], kind, (int)s,
                  mtgrad_aggregator_error(a));
            CHECK(all_finite(w, K) && all_finite(dir, D), "%s kind %d: non-finite output", methods[mi], kind);
            if (kind == 0 || kind == 5)
                for (int i = 0; i < K; i++) CHECK_CLOSE(w[i], 0.25, 1e-15, 0); /* Q = reg_eps I: v = u */
            if (kind == 1) /* identical rows: nothing conflicts, w = pref summed */
                for (int i = 0; i < K; i++) CHECK_CLOSE(w[i], 0.25, 1e-12, 0);
            mtgrad_aggregator_free(a);
        }
    }
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 12345);
    test_qp_kkt_and_enumeration(&r);
    test_weights_vs_enumeration(&r);
    test_nonconflict(&r);
    test_pref_and_permutation(&r);
    test_degenerate(&r);
    return harness_report();
}
