/* test_bargain_lowrank.c — the low-rank (Woodbury) path of the M w = w^(−p) solver shared by
 * Nash-MTL and FairGrad, against the dense reference mtgradi_bargain_solve_ref:
 *   - random Gram matrices of k = 50 rows in r = 5 dimensions (the path is taken:
 *     mtgradi_bargain_rank = 5), rows in a half-space (a positive root exists), p = 1, 1/2, 2,
 *     norms equal or spread over 1e-3..1e3, with and without a warm start: both OK, the same root
 *     to ~1e-9 relative, and the root checked here against M formed from G (α ⊙ Mα = 1 style
 *     residual);
 *   - k > d inputs with no positive root (0 in the convex hull of the rows, forced by a last row
 *     equal to minus the sum of the others, and plain Gaussian rows): both paths return the same
 *     status (NO_ROOT);
 *   - inputs that must keep the dense path (k < 16, rank > k/4, full rank): rank 0 and the same
 *     bits as the reference;
 *   - the workspace bound: a canary after mtgradi_bargain_work_size(k) doubles stays intact;
 *   - Nash-MTL and FairGrad through the public API at k = 60, d = 4 (low-rank path): OK with
 *     the defining equation met, and NOPROGRESS where no root exists.
 */
#include "harness.h"
#include "internal.h"
#include "mtgrad.h"
#include "nnls.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* G: k x d rows, Gaussian, row i scaled by spread^(i/(k-1)); half = 1 puts every row's first
 * coordinate >= 0.5 (so e_0 has a positive inner product with all: a positive root exists). */
static void make_G(mtgradi_rng *r, int64_t k, int64_t d, double spread, int half, double *G)
{
    for (int64_t i = 0; i < k; i++) {
        double sc = pow(spread, (double)i / (double)(k - 1));
        for (int64_t j = 0; j < d; j++) G[i * d + j] = mtgradi_rng_normal(r);
        if (half) G[i * d] = fabs(G[i * d]) + 0.5;
        for (int64_t j = 0; j < d; j++) G[i * d + j] *= sc;
    }
}

static void gram(const double *G, int64_t k, int64_t d, double *M)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) M[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
}

/* max_i |<g_i, Gᵀw> − w_i^(−p)| / w_i^(−p), with Gᵀw formed from G (not from M or L) */
static double residual_from_G(const double *G, int64_t k, int64_t d, double p, const double *w,
                              double *dir)
{
    for (int64_t j = 0; j < d; j++) dir[j] = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < d; j++) dir[j] += w[i] * G[i * d + j];
    double worst = 0;
    for (int64_t i = 0; i < k; i++) {
        double rhs = pow(w[i], -p);
        worst = fmax(worst, fabs(mtgradi_dot(G + i * d, dir, d) - rhs) / rhs);
    }
    return worst;
}

static double *alloc_work(int64_t k)
{
    size_t n = mtgradi_bargain_work_size(k);
    double *w = malloc((n + 1) * sizeof *w);
    if (w) w[n] = 12345.5; /* canary */
    return w;
}

static int canary_ok(const double *work, int64_t k)
{
    return work[mtgradi_bargain_work_size(k)] == 12345.5;
}

/* (D + LLᵀ)x = b by Woodbury against a dense Cholesky of D + LLᵀ formed here, and the residual
 * |(D + LLᵀ)x − b| evaluated as Dx + L(Lᵀx); D spread over 1e-6..1e6 (Newton far out along a
 * null direction of M has tiny D entries). Invalid D (0, Inf) is refused. */
static void test_woodbury(mtgradi_rng *r)
{
    enum { K = 50, R = 5 };
    double L[K * R], dd[K], b[K], x[K], xd[K], H[K * K], C[R * R], c[R], t[R];
    for (int trial = 0; trial < 6; trial++) {
        double spread = trial % 2 ? 1e6 : 1;
        for (int64_t i = 0; i < K * R; i++) L[i] = mtgradi_rng_normal(r);
        for (int64_t i = 0; i < K; i++) {
            dd[i] = pow(spread, 2 * mtgradi_rng_uniform(r) - 1);
            b[i] = x[i] = xd[i] = mtgradi_rng_normal(r);
        }
        for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < K; j++)
                H[i * K + j] = mtgradi_dot(L + i * R, L + j * R, R) + (i == j ? dd[i] : 0);
        CHECK(mtgradi_woodbury_solve(L, K, R, dd, x, C, c) == 0, "trial %d: refused", trial);
        CHECK(mtgradi_cholesky(H, K) == 0, "trial %d: dense Cholesky", trial);
        mtgradi_cholesky_solve(H, K, xd);
        /* both to ~cond·eps: cond(D + LLᵀ) <= ~1e12 for the spread case */
        double xn = 0, err = 0, res = 0, bn = 0;
        for (int64_t i = 0; i < K; i++) xn = fmax(xn, fabs(xd[i])), err = fmax(err, fabs(x[i] - xd[i]));
        CHECK(err <= (spread > 1 ? 1e-8 : 1e-12) * xn, "trial %d: |x - x_dense| %.3g of %.3g", trial,
              err, xn);
        for (int64_t a = 0; a < R; a++) t[a] = 0;
        for (int64_t i = 0; i < K; i++)
            for (int64_t a = 0; a < R; a++) t[a] += L[i * R + a] * x[i];
        for (int64_t i = 0; i < K; i++) {
            double s = dd[i] * x[i] + mtgradi_dot(L + i * R, t, R) - b[i];
            res = fmax(res, fabs(s)), bn = fmax(bn, fabs(b[i]));
        }
        CHECK(res <= (spread > 1 ? 1e-7 : 1e-12) * bn, "trial %d: residual %.3g", trial, res);
    }
    dd[3] = 0;
    CHECK(mtgradi_woodbury_solve(L, K, R, dd, x, C, c) == -1, "dd = 0 accepted");
    dd[3] = INFINITY;
    CHECK(mtgradi_woodbury_solve(L, K, R, dd, x, C, c) == -1, "dd = inf accepted");
}

static void test_root_agrees(mtgradi_rng *r)
{
    enum { K = 50, D = 5 };
    static const double ps[] = {1.0, 0.5, 2.0};
    double G[K * D], M[K * K], w[K], wr[K], w0[K], dir[D];
    double *work = alloc_work(K);
    for (int t = 0; t < 12; t++) {
        double p = ps[t % 3], spread = t % 2 ? 1e6 : 1;
        make_G(r, K, D, spread, 1, G);
        if (spread > 1) /* norms 1e-3..1e3 */
            for (int64_t i = 0; i < K * D; i++) G[i] *= 1e-3;
        gram(G, K, D, M);
        CHECK(mtgradi_bargain_rank(M, K, work) == D, "t=%d: rank %lld", t,
              (long long)mtgradi_bargain_rank(M, K, work));
        const double *start = NULL;
        if (t >= 6) { /* a warm start, as Nash-MTL's previous alpha */
            for (int64_t i = 0; i < K; i++) w0[i] = 0.5 + mtgradi_rng_uniform(r);
            start = w0;
        }
        int it = -1, itr = -1;
        mtgradi_bargain_result res = mtgradi_bargain_solve(M, K, p, start, w, work, &it);
        CHECK(canary_ok(work, K), "t=%d: workspace overrun", t);
        mtgradi_bargain_result rref = mtgradi_bargain_solve_ref(M, K, p, start, wr, work, &itr);
        CHECK(res == MTGRADI_BARGAIN_OK && rref == MTGRADI_BARGAIN_OK, "t=%d p=%g: %d / ref %d",
              t, p, (int)res, (int)rref);
        CHECK(it > 0 && it < 200, "t=%d: %d iterations", t, it);
        /* both take exact Newton steps: the same path up to rounding near the stopping test */
        CHECK(abs(it - itr) <= 2, "t=%d: %d vs %d iterations", t, it, itr);
        CHECK_ARRAY_CLOSE(w, wr, K, 1e-9, 0);
        CHECK(residual_from_G(G, K, D, p, w, dir) <= 1e-8, "t=%d p=%g: residual %.3g", t, p,
              residual_from_G(G, K, D, p, w, dir));
        /* deterministic: the same call gives the same bits */
        double w2[K];
        mtgradi_bargain_solve(M, K, p, start, w2, work, NULL);
        CHECK(memcmp(w, w2, sizeof w) == 0, "t=%d: not deterministic", t);
    }
    free(work);
}

static void test_no_root(mtgradi_rng *r)
{
    enum { K = 50, D = 5 };
    static const double ps[] = {1.0, 0.5, 2.0};
    double G[K * D], M[K * K], w[K], wr[K];
    double *work = alloc_work(K);
    for (int t = 0; t < 6; t++) {
        double p = ps[t % 3];
        make_G(r, K, D, 1, 0, G);
        if (t < 3) /* the last row cancels the others: ones is a non-negative null vector */
            for (int64_t j = 0; j < D; j++) {
                double s = 0;
                for (int64_t i = 0; i < K - 1; i++) s += G[i * D + j];
                G[(K - 1) * D + j] = -s;
            }
        gram(G, K, D, M);
        CHECK(mtgradi_bargain_rank(M, K, work) == D, "t=%d: rank", t);
        mtgradi_bargain_result res = mtgradi_bargain_solve(M, K, p, NULL, w, work, NULL);
        CHECK(canary_ok(work, K), "t=%d: workspace overrun", t);
        mtgradi_bargain_result rref = mtgradi_bargain_solve_ref(M, K, p, NULL, wr, work, NULL);
        CHECK(res == rref, "t=%d p=%g: %d vs ref %d", t, p, (int)res, (int)rref);
        CHECK(res == MTGRADI_BARGAIN_NO_ROOT, "t=%d p=%g: %d, want NO_ROOT", t, p, (int)res);
    }
    free(work);
}

/* k < 16, rank > k/4 and full rank: no factor, the reference's bits (feasible and not). */
static void test_dense_kept(mtgradi_rng *r)
{
    static const int64_t ks[] = {10, 20, 20}, ds[] = {3, 8, 30};
    double G[20 * 30], M[400], w[20], wr[20];
    for (int c = 0; c < 3; c++)
        for (int half = 0; half < 2; half++) {
            int64_t k = ks[c], d = ds[c];
            double *work = alloc_work(k);
            make_G(r, k, d, 10, half, G);
            gram(G, k, d, M);
            CHECK(mtgradi_bargain_rank(M, k, work) == 0, "k=%lld d=%lld: rank %lld", (long long)k,
                  (long long)d, (long long)mtgradi_bargain_rank(M, k, work));
            int it, itr;
            mtgradi_bargain_result res = mtgradi_bargain_solve(M, k, 1.0, NULL, w, work, &it);
            mtgradi_bargain_result rref = mtgradi_bargain_solve_ref(M, k, 1.0, NULL, wr, work, &itr);
            CHECK(res == rref && it == itr, "k=%lld d=%lld: %d/%d vs %d/%d", (long long)k,
                  (long long)d, (int)res, it, (int)rref, itr);
            CHECK(memcmp(w, wr, (size_t)k * sizeof *w) == 0, "k=%lld d=%lld: bits differ",
                  (long long)k, (long long)d);
            CHECK(canary_ok(work, k), "workspace overrun");
            free(work);
        }
}

/* The methods at k = 60, d = 4: the low-rank path end to end. */
static void test_methods(mtgradi_rng *r)
{
    enum { K = 60, D = 4 };
    static const char *const names[] = {"nash_mtl", "fairgrad"};
    static const char *const params[] = {"max_norm=0", "alpha=2"};
    double G[K * D], w[K], dir[D], d2[D];
    for (int half = 1; half >= 0; half--)
        for (int m = 0; m < 2; m++) {
            make_G(r, K, D, 1, half, G);
            mtgrad_aggregator *a = NULL;
            char err[256] = "";
            CHECK(mtgrad_aggregator_new(&a, names[m], K, params[m], err, sizeof err) == MTGRAD_OK,
                  "%s: %s", names[m], err);
            if (!a) continue;
            mtgrad_status s = mtgrad_aggregate_f64(a, G, K, D, D, NULL, dir, w);
            if (half) {
                double p = m == 0 ? 1.0 : 0.5;
                CHECK(s == MTGRAD_OK, "%s: %s", names[m], mtgrad_aggregator_error(a));
                CHECK(residual_from_G(G, K, D, p, w, d2) <= 1e-8, "%s: residual %.3g", names[m],
                      residual_from_G(G, K, D, p, w, d2));
                CHECK_ARRAY_CLOSE(dir, d2, D, 1e-12, 1e-12);
            } else {
                CHECK(s == MTGRAD_E_NOPROGRESS, "%s: status %d", names[m], (int)s);
                int finite = 1;
                for (int64_t i = 0; i < K; i++) finite &= isfinite(w[i]) != 0;
                CHECK(finite, "%s: non-finite weights", names[m]);
            }
            mtgrad_aggregator_free(a);
        }
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 6006);
    test_woodbury(&r);
    test_root_agrees(&r);
    test_no_root(&r);
    test_dense_kept(&r);
    test_methods(&r);
    return harness_report();
}
