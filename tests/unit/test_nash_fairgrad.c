/* Nash-MTL and FairGrad: the defining equations (α ⊙ Mα = 1, Mw = w^(−1/α)), ||Gᵀα||² = k,
 * closed forms (orthogonal rows, k = 1), clipping, state (warm start, update_weights_every,
 * fallback), α = 1 equivalence, and inputs without a positive root. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void random_G(mtgradi_rng *r, int64_t k, int64_t d, double *G)
{
    for (int64_t i = 0; i < k * d; i++) G[i] = mtgradi_rng_normal(r);
}

static void gram(const double *G, int64_t k, int64_t d, double *M)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) M[i * k + j] = mtgradi_dot(G + i * d, G + j * d, d);
}

/* Rows that all have a positive inner product with e_0 (so a positive root exists). */
static void feasible_G(mtgradi_rng *r, int64_t k, int64_t d, double *G)
{
    random_G(r, k, d, G);
    for (int64_t i = 0; i < k; i++) G[i * d] = fabs(G[i * d]) + 0.5;
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* max_i |x_i (Mx)_i^{α} ... |: the FairGrad residual |(Mw)_i − w_i^(−1/α)| / w_i^(−1/α) */
static double fair_residual(const double *M, int64_t k, const double *w, double alpha)
{
    double worst = 0;
    for (int64_t i = 0; i < k; i++) {
        double r = pow(w[i], -1 / alpha);
        worst = fmax(worst, fabs(mtgradi_dot(M + i * k, w, k) - r) / r);
    }
    return worst;
}

static void test_nash_equation(mtgradi_rng *r)
{
    static const int64_t ks[] = {1, 2, 3, 5, 8};
    double G[8 * 20], M[64], w[8], dir[20];
    for (int t = 0; t < 15; t++) {
        int64_t k = ks[t % 5], d = t < 10 ? 20 : 3; /* the last five include k > d */
        feasible_G(r, k, d, G);
        if (t % 3 == 2) /* norms spread 1e-6..1e6 */
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < d; j++) G[i * d + j] *= pow(10.0, (double)((i * 5) % 13) - 6);
        gram(G, k, d, M);
        mtgrad_aggregator *a;
        CHECK(mtgrad_aggregator_new(&a, "nash_mtl", k, "max_norm=0", NULL, 0) == MTGRAD_OK, "new");
        mtgrad_status s = mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w);
        CHECK(s == MTGRAD_OK, "k=%lld d=%lld: status %d %s", (long long)k, (long long)d, (int)s,
              mtgrad_aggregator_error(a));
        for (int64_t i = 0; i < k; i++) {
            CHECK(w[i] > 0, "alpha[%lld] = %g not positive", (long long)i, w[i]);
            CHECK_CLOSE(w[i] * mtgradi_dot(M + i * k, w, k), 1.0, 1e-10, 0);
        }
        CHECK_CLOSE(mtgradi_dot(dir, dir, d), (double)k, 1e-10, 0); /* ||Gᵀα||² = k */
        mtgrad_aggregator_free(a);
    }
}

/* Orthogonal rows: α_i = 1/||g_i||; then the default clip gives w = α/(sqrt(k) + 1e-6). */
static void test_nash_closed_form_and_clip(void)
{
    double G[3 * 4] = {2, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 1e3}, w[3], dir[4];
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "nash_mtl", 3, NULL, NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, w) == MTGRAD_OK, "aggregate");
    double coef = 1 / (sqrt(3.0) + 1e-6), want[3] = {0.5 * coef, 2 * coef, 1e-3 * coef};
    CHECK_ARRAY_CLOSE(w, want, 3, 1e-12, 0);
    CHECK_CLOSE(sqrt(mtgradi_dot(dir, dir, 4)), sqrt(3.0) * coef, 1e-12, 0);
    mtgrad_aggregator_free(a);
}

/* update_weights_every = 2: the second call reuses α from the first; the third recomputes.
 * Warm start: a stateful aggregator and a fresh one find the same root. */
static void test_nash_state(mtgradi_rng *r)
{
    enum { K = 3, D = 6 };
    double G1[K * D], G2[K * D], M1[K * K], w1[K], w2[K], w3[K], wf[K], dir[D];
    feasible_G(r, K, D, G1);
    feasible_G(r, K, D, G2);
    gram(G1, K, D, M1);
    mtgrad_aggregator *a, *f;
    CHECK(mtgrad_aggregator_new(&a, "nash_mtl", K, "max_norm=0,update_weights_every=2", NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(a, G1, K, D, D, NULL, dir, w1) == MTGRAD_OK, "step 0");
    CHECK(mtgrad_aggregate_f64(a, G2, K, D, D, NULL, dir, w2) == MTGRAD_OK, "step 1");
    CHECK_ARRAY_CLOSE(w2, w1, K, 0, 0);
    CHECK(mtgrad_aggregate_f64(a, G2, K, D, D, NULL, dir, w3) == MTGRAD_OK, "step 2");
    CHECK(mtgrad_aggregator_new(&f, "nash_mtl", K, "max_norm=0", NULL, 0) == MTGRAD_OK, "new fresh");
    CHECK(mtgrad_aggregate_f64(f, G2, K, D, D, NULL, dir, wf) == MTGRAD_OK, "fresh");
    CHECK_ARRAY_CLOSE(w3, wf, K, 1e-12, 0);
    CHECK(fabs(w3[0] - w1[0]) > 1e-6, "step 2 must recompute alpha for the new G");
    mtgrad_aggregator_free(a);

    /* a call without a positive root reuses the previous α, returns NOPROGRESS, keeps state */
    double Z[K * D];
    memcpy(Z, G1, sizeof Z);
    for (int j = 0; j < D; j++) Z[D + j] = -Z[j]; /* opposite rows */
    CHECK(mtgrad_aggregate_f64(f, Z, K, D, D, NULL, dir, w1) == MTGRAD_E_NOPROGRESS, "opposite");
    CHECK_ARRAY_CLOSE(w1, wf, K, 0, 0);
    CHECK(all_finite(dir, D), "opposite: finite direction");
    CHECK(strstr(mtgrad_aggregator_error(f), "previous alpha") != NULL, "message: %s", mtgrad_aggregator_error(f));
    mtgrad_aggregator_free(f);
}

/* No positive root: zero row, opposite rows, k > d with 0 in the hull, all zero. Fresh state:
 * α = ones, clipped. */
static void test_nash_no_root(mtgradi_rng *r)
{
    enum { K = 3, D = 4 };
    double G[K * D], w[K], dir[D];
    for (int kind = 0; kind < 4; kind++) {
        random_G(r, K, D, G);
        if (kind == 0) memset(G, 0, D * sizeof *G);
        if (kind == 1) for (int j = 0; j < D; j++) G[D + j] = -G[j];
        if (kind == 2) { /* three rows in a plane around the origin: (1,0), (−½, ±√3/2) */
            memset(G, 0, sizeof G);
            G[0] = 1, G[D] = -0.5, G[D + 1] = sqrt(0.75), G[2 * D] = -0.5, G[2 * D + 1] = -sqrt(0.75);
        }
        if (kind == 3) memset(G, 0, sizeof G);
        mtgrad_aggregator *a;
        CHECK(mtgrad_aggregator_new(&a, "nash_mtl", K, NULL, NULL, 0) == MTGRAD_OK, "new");
        mtgrad_status s = mtgrad_aggregate_f64(a, G, K, D, D, NULL, dir, w);
        CHECK(s == MTGRAD_E_NOPROGRESS, "kind %d: status %d", kind, (int)s);
        CHECK(all_finite(w, K) && all_finite(dir, D), "kind %d: finite", kind);
        double norm = sqrt(mtgradi_dot(dir, dir, D));
        CHECK(norm <= 1 + 1e-12, "kind %d: clipped norm %g", kind, norm);
        CHECK(w[0] == w[1] && w[1] == w[2] && w[0] > 0, "kind %d: ones (scaled)", kind);
        mtgrad_aggregator_free(a);
    }
}

static void test_fairgrad(mtgradi_rng *r)
{
    static const double alphas[] = {0.25, 0.5, 1, 2, 5};
    static const char *alpha_txt[] = {"0.25", "0.5", "1", "2", "5"};
    enum { K = 5, D = 12 };
    double G[K * D], M[K * K], w[K], dir[D];
    for (int t = 0; t < 10; t++) {
        int ai = t % 5;
        feasible_G(r, K, D, G);
        if (t >= 5)
            for (int64_t i = 0; i < K; i++)
                for (int64_t j = 0; j < D; j++) G[i * D + j] *= pow(10.0, (double)(2 * i) - 4);
        gram(G, K, D, M);
        char par[32];
        snprintf(par, sizeof par, "alpha=%s", alpha_txt[ai]);
        mtgrad_aggregator *a;
        CHECK(mtgrad_aggregator_new(&a, "fairgrad", K, par, NULL, 0) == MTGRAD_OK, "new");
        mtgrad_status s = mtgrad_aggregate_f64(a, G, K, D, D, NULL, dir, w);
        CHECK(s == MTGRAD_OK, "%s: status %d %s", par, (int)s, mtgrad_aggregator_error(a));
        CHECK(fair_residual(M, K, w, alphas[ai]) <= 1e-10, "%s: residual %g", par,
              fair_residual(M, K, w, alphas[ai]));
        mtgrad_aggregator_free(a);
    }
    /* k = 1: m w^(1 + 1/α) = 1 */
    double g[3] = {3, 0, 4}, w1, d1[3];
    mtgrad_aggregator *a;
    CHECK(mtgrad_aggregator_new(&a, "fairgrad", 1, "alpha=2", NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(a, g, 1, 3, 3, NULL, d1, &w1) == MTGRAD_OK, "k=1");
    CHECK_CLOSE(w1, pow(25.0, -2.0 / 3.0), 1e-13, 0);
    mtgrad_aggregator_free(a);
}

/* α = 1 is Nash-MTL's equation: same weights as nash_mtl without clipping. max_norm clips. */
static void test_fairgrad_vs_nash(mtgradi_rng *r)
{
    enum { K = 4, D = 7 };
    double G[K * D], wf[K], wn[K], dir[D];
    feasible_G(r, K, D, G);
    mtgrad_aggregator *f, *n;
    CHECK(mtgrad_aggregator_new(&f, "fairgrad", K, "alpha=1", NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregator_new(&n, "nash_mtl", K, "max_norm=0", NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(f, G, K, D, D, NULL, dir, wf) == MTGRAD_OK, "fairgrad");
    CHECK(mtgrad_aggregate_f64(n, G, K, D, D, NULL, dir, wn) == MTGRAD_OK, "nash");
    CHECK_ARRAY_CLOSE(wf, wn, K, 1e-12, 0);
    CHECK(mtgrad_aggregator_set_param(f, "max_norm", "1") == MTGRAD_OK, "max_norm");
    CHECK(mtgrad_aggregate_f64(f, G, K, D, D, NULL, dir, wf) == MTGRAD_OK, "fairgrad clipped");
    for (int i = 0; i < K; i++) wn[i] /= 2 + 1e-6; /* ||Gᵀα|| = sqrt(4) = 2 */
    CHECK_ARRAY_CLOSE(wf, wn, K, 1e-12, 0);
    mtgrad_aggregator_free(f);
    mtgrad_aggregator_free(n);

    /* no root: zero row → w = 1/k, NOPROGRESS */
    memset(G, 0, D * sizeof *G);
    CHECK(mtgrad_aggregator_new(&f, "fairgrad", K, "alpha=2", NULL, 0) == MTGRAD_OK, "new");
    CHECK(mtgrad_aggregate_f64(f, G, K, D, D, NULL, dir, wf) == MTGRAD_E_NOPROGRESS, "zero row");
    for (int i = 0; i < K; i++) CHECK(wf[i] == 0.25, "zero row: w[%d] = %g", i, wf[i]);
    mtgrad_aggregator_free(f);
}

int main(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 777);
    test_nash_equation(&r);
    test_nash_closed_form_and_clip();
    test_nash_state(&r);
    test_nash_no_root(&r);
    test_fairgrad(&r);
    test_fairgrad_vs_nash(&r);
    return harness_report();
}
