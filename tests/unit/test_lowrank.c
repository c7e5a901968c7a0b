/* test_lowrank.c — the paths for Gram matrices of k > d gradients (issue 8.4, k = 1000 at d = 8):
 *   - mtgradi_lowrank_factor: A ≈ LLᵀ with the rank of the generating matrix, declined for full
 *     rank and for indefinite input;
 *   - mtgradi_cone_project_lowrank (UPGrad's dual in r variables) against the Lawson–Hanson
 *     reference mtgradi_cone_project on the same Q = AAᵀ + ρI, and against the KKT conditions
 *     of min ½vᵀQv s.t. v ≥ u computed here with Q formed explicitly (A scaled as UPGrad's, so
 *     that cond Q <= 1 + 1/ρ and the two solutions agree to ~cond·eps);
 *   - the active-set QP warm-started from the uniform point (full support on a rank-deficient
 *     H: the fast solver restarts from the best vertex) against the reference from a vertex:
 *     the same optimal value;
 *   - UPGrad through the public API at k = 200, d = 5 (low-rank path) against the same matrix
 *     with reg_eps handled by the plain NNLS (computed here with mtgradi_cone_project).
 */
#include "harness.h"
#include "internal.h"
#include "mtgrad.h"
#include "nnls.h"
#include "qp.h"

#include <math.h>
#include <stdlib.h>

static double *gram_of_random(mtgradi_rng *r, int64_t k, int64_t d, double spread)
{
    double *G = malloc((size_t)(k * d) * sizeof *G), *M = malloc((size_t)(k * k) * sizeof *M);
    for (int64_t i = 0; i < k; i++) {
        double sc = pow(spread, (double)i / (double)(k - 1));
        for (int64_t j = 0; j < d; j++) G[i * d + j] = sc * mtgradi_rng_normal(r);
    }
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) M[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
    free(G);
    return M;
}

static void test_factor(mtgradi_rng *r)
{
    const int64_t k = 80;
    double *L = malloc((size_t)(k * k) * sizeof *L), sc[2 * 80];
    for (int64_t d = 1; d <= 12; d += 5) {
        double *M = gram_of_random(r, k, d, 10);
        int64_t rank = mtgradi_lowrank_factor(M, k, L, sc);
        CHECK(rank == d, "factor k=%lld d=%lld: rank %lld", (long long)k, (long long)d,
              (long long)rank);
        double worst = 0, mmax = 0;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) {
                double s = 0;
                for (int64_t p = 0; p < rank; p++) s += L[i * k + p] * L[j * k + p];
                worst = fmax(worst, fabs(s - M[i * k + j]));
                mmax = fmax(mmax, fabs(M[i * k + j]));
            }
        CHECK(worst <= 1e-13 * mmax, "factor d=%lld: |LLt - M| = %g max|M|", (long long)d,
              worst / mmax);
        free(M);
    }
    double *M = gram_of_random(r, k, k + 3, 1); /* full rank */
    CHECK(mtgradi_lowrank_factor(M, k, L, sc) == -1, "factor: full rank declined");
    M[3 * k + 3] = -1; /* a negative diagonal: not PSD */
    CHECK(mtgradi_lowrank_factor(M, k, L, sc) == -1, "factor: indefinite declined");
    free(M), free(L);
}

/* KKT of min ½vᵀQv, v ≥ u: Qv ≥ 0, (Qv)_i = 0 where v_i > u_i; residual relative to |Q||v|. */
static double kkt_residual(const double *Q, int64_t k, const double *u, const double *v)
{
    double worst = 0;
    for (int64_t i = 0; i < k; i++) {
        double q = 0, qa = 0;
        for (int64_t j = 0; j < k; j++) q += Q[i * k + j] * v[j], qa += fabs(Q[i * k + j] * v[j]);
        if (!(v[i] >= u[i])) return INFINITY;
        double viol = v[i] > u[i] ? fabs(q) : fmax(-q, 0.0);
        worst = fmax(worst, viol / fmax(qa, 1e-300));
    }
    return worst;
}

static void test_cone_lowrank(mtgradi_rng *r)
{
    const int64_t ks[] = {20, 60, 150}, ds[] = {1, 3, 8};
    for (size_t a = 0; a < 3; a++) {
        int64_t k = ks[a], d = ds[a];
        double rho = a == 1 ? 1e-2 : 1e-4;
        double *M = gram_of_random(r, k, d, a == 2 ? 100 : 1);
        double *L = malloc((size_t)(k * k) * sizeof *L), *sc = malloc((size_t)(2 * k) * sizeof *sc);
        double *Q = malloc((size_t)(k * k) * sizeof *Q), *u = malloc((size_t)k * sizeof *u);
        double *v = malloc((size_t)k * sizeof *v), *vr = malloc((size_t)k * sizeof *vr);
        double *t = malloc((size_t)k * sizeof *t);
        double *work = malloc(mtgradi_cone_work_size(k) * sizeof *work);
        int64_t rank = mtgradi_lowrank_factor(M, k, L, sc);
        CHECK(rank == d, "cone k=%lld: rank %lld", (long long)k, (long long)rank);
        if (rank != d) goto done;
        double tr = 0; /* A = L/sqrt(tr M), compacted (UPGrad's scaling: cond Q <= 1 + 1/ρ) */
        for (int64_t i = 0; i < k; i++) tr += M[i * k + i];
        for (int64_t i = 0; i < k; i++)
            for (int64_t c = 0; c < rank; c++) L[i * rank + c] = L[i * k + c] / sqrt(tr);
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++)
                Q[i * k + j] = mtgradi_dot(L + i * rank, L + j * rank, rank) + (i == j ? rho : 0);
        double *lw = malloc(mtgradi_cone_lowrank_work_size(rank) * sizeof *lw);
        for (int64_t e = 0; e < k; e += 7) {
            for (int64_t i = 0; i < k; i++) /* UPGrad's u = e_e/k, and a random u */
                u[i] = e % 2 == 0 ? (i == e ? 1.0 / (double)k : 0) : mtgradi_rng_normal(r);
            int rc = mtgradi_cone_project_lowrank(L, k, rank, rho, u, v, t, lw);
            int rcr = mtgradi_cone_project(Q, u, k, vr, work);
            CHECK(rc == 0 && rcr == 0, "cone k=%lld e=%lld: rc %d, reference %d", (long long)k,
                  (long long)e, rc, rcr);
            double vmax = 0;
            for (int64_t i = 0; i < k; i++) vmax = fmax(vmax, fabs(vr[i]));
            CHECK_ARRAY_CLOSE(v, vr, k, 0, 1e-9 * vmax);
            double res = kkt_residual(Q, k, u, v);
            CHECK(res <= 1e-9, "cone k=%lld e=%lld: KKT residual %g", (long long)k, (long long)e,
                  res);
        }
        CHECK(mtgradi_cone_project_lowrank(L, k, rank, 0, u, v, t, lw) == -1, "rho = 0 refused");
        free(lw);
    done:
        free(M), free(L), free(sc), free(Q), free(u), free(v), free(vr), free(t), free(work);
    }
}

static double qp_value(const double *H, const double *c, int64_t k, const double *w)
{
    double f = 0.5 * mtgradi_quad(H, k, w);
    for (int64_t i = 0; i < k && c; i++) f += c[i] * w[i];
    return f;
}

static void test_qp_uniform_start(mtgradi_rng *r)
{
    const int64_t k = 120, d = 4;
    double *H = gram_of_random(r, k, d, 1);
    double *c = malloc((size_t)k * sizeof *c), *w = malloc((size_t)k * sizeof *w);
    double *wr = malloc((size_t)k * sizeof *wr), *w0 = malloc((size_t)k * sizeof *w0);
    double *work = malloc(mtgradi_qp_simplex_work_size(k) * sizeof *work);
    for (int lin = 0; lin < 2; lin++) {
        for (int64_t i = 0; i < k; i++) c[i] = lin ? mtgradi_rng_normal(r) : 0, w0[i] = 1.0 / (double)k;
        const double *cc = lin ? c : NULL;
        mtgrad_status s = mtgradi_qp_simplex_from(H, cc, k, w0, w, NULL, work);
        mtgrad_status sr = mtgradi_qp_simplex_ref(H, cc, k, wr, NULL, work);
        CHECK(s == MTGRAD_OK && sr == MTGRAD_OK, "qp uniform start: %d, reference %d", (int)s,
              (int)sr);
        double hmax = 0, cmax = 0;
        for (int64_t i = 0; i < k * k; i++) hmax = fmax(hmax, fabs(H[i]));
        for (int64_t i = 0; i < k && cc; i++) cmax = fmax(cmax, fabs(c[i]));
        CHECK(fabs(qp_value(H, cc, k, w) - qp_value(H, cc, k, wr)) <= 1e-12 * (hmax + cmax),
              "qp uniform start (linear %d): value %.17g, reference %.17g", lin,
              qp_value(H, cc, k, w), qp_value(H, cc, k, wr));
    }
    free(H), free(c), free(w), free(wr), free(w0), free(work);
}

/* UPGrad's low-rank path (k = 200 > d = 5) against its definition: w = Σ_i v_i with v_i the
 * reference projections on Q = M/tr(M) + reg_eps·I. */
static void test_upgrad(mtgradi_rng *r)
{
    const int64_t k = 200, d = 5;
    double *M = gram_of_random(r, k, d, 3);
    double *Q = malloc((size_t)(k * k) * sizeof *Q), *u = malloc((size_t)k * sizeof *u);
    double *v = malloc((size_t)k * sizeof *v), *want = calloc((size_t)k, sizeof *want);
    double *w = malloc((size_t)k * sizeof *w);
    double *work = malloc(mtgradi_cone_work_size(k) * sizeof *work);
    mtgradi_cone_gram(M, k, 1e-4, 1e-4, Q);
    for (int64_t i = 0; i < k; i++) {
        for (int64_t j = 0; j < k; j++) u[j] = j == i ? 1.0 / (double)k : 0;
        CHECK(mtgradi_cone_project(Q, u, k, v, work) == 0, "reference projection %lld",
              (long long)i);
        for (int64_t j = 0; j < k; j++) want[j] += v[j];
    }
    mtgrad_aggregator *a = NULL;
    CHECK(mtgrad_aggregator_new(&a, "upgrad", k, NULL, NULL, 0) == MTGRAD_OK, "upgrad: new");
    if (a) {
        CHECK(mtgrad_weights_from_gram(a, M, k, NULL, w) == MTGRAD_OK, "upgrad: %s",
              mtgrad_aggregator_error(a));
        double wmax = 0;
        for (int64_t j = 0; j < k; j++) wmax = fmax(wmax, fabs(want[j]));
        CHECK_ARRAY_CLOSE(w, want, k, 0, 1e-9 * wmax);
    }
    mtgrad_aggregator_free(a);
    free(M), free(Q), free(u), free(v), free(want), free(w), free(work);
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 8004);
    test_factor(&r);
    test_cone_lowrank(&r);
    test_qp_uniform_start(&r);
    test_upgrad(&r);
    return harness_report();
}
