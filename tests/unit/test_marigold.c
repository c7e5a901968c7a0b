/* MARIGOLD (src/core/method_marigold.c, our design of methods.md §9): with the exact oracle
 * (weights_from_gram with M, h = M λ) λ converges to MGDA's weights, compared with the `mgda`
 * aggregator on the same Gram (k = 2, 3, 10, well and ill conditioned); the mirror and projected
 * updates against steps computed by hand; rho, clip and lr_decay; the feedback protocol
 * (E_STATE before a call and twice, E_NONFINITE, E_SHAPE, E_UNSUPPORTED for other methods, the
 * state unchanged on failure); save/load mid-protocol; permutation equivariance; the
 * Jacobian path returns λ and Gᵀλ. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAXK 10

static mtgrad_aggregator *make(const char *method, int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&a, method, k, params, err, sizeof err);
    CHECK(s == MTGRAD_OK, "new %s(%s): %s", method, params ? params : "", err);
    return a;
}

/* M = G Gᵀ of a random k x d G whose row i is scaled by cond^(i/(k-1)). */
static void random_gram(int64_t k, int64_t d, double cond, uint64_t seed, double *M)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, seed);
    double *G = malloc((size_t)(k * d) * sizeof *G);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < d; j++)
            G[i * d + j] = mtgradi_rng_normal(&r) * pow(cond, k > 1 ? (double)i / (double)(k - 1) : 0);
    mtgrad_gram_f64(G, k, d, d, M);
    free(G);
}

static double max_diff(const double *a, const double *b, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - b[i]));
    return e;
}

/* λ after `iters` oracle calls (the returned weights are the pre-update λ; one more call shows
 * the current one). */
static void oracle_run(const char *params, const double *M, int64_t k, int iters, double *lam)
{
    mtgrad_aggregator *a = make("marigold", k, params);
    if (!a) return;
    int bad = 0;
    for (int t = 0; t <= iters; t++) bad += mtgrad_weights_from_gram(a, M, k, NULL, lam) != MTGRAD_OK;
    CHECK(bad == 0, "%d oracle calls failed", bad);
    mtgrad_aggregator_free(a);
}

static void test_converges_to_mgda(void)
{
    static const struct {
        int64_t k, d;
        double cond;
        uint64_t seed;
        const char *params;
        int iters;
        double tol;
    } cases[] = {
        {2, 5, 1, 3, NULL, 4000, 1e-12},
        {2, 1, 1, 3, NULL, 4000, 1e-12},    /* d = 1: collinear rows, a vertex solution */
        {3, 5, 1, 2, NULL, 4000, 1e-12},
        {3, 2, 1, 7, NULL, 4000, 1e-12},    /* one weight is 0 at the optimum */
        {10, 20, 1, 3, NULL, 4000, 1e-12},
        {10, 8, 1, 6, NULL, 20000, 1e-10},   /* k > d: singular Gram (directions compared) */
        {10, 20, 1000, 5, NULL, 40000, 1e-9}, /* rows over 3 decades: slow, but it gets there */
        /* rows over 2 decades, k = 3: the constant step ends in a cycle ~1.6e-5 wide around the
         * optimum (docs/marigold.md); a decaying step converges */
        {3, 5, 100, 4, "lr_decay=0.5", 40000, 1e-7},
        {3, 5, 1, 2, "lr_decay=0.5", 40000, 1e-7},
        {10, 20, 1, 3, "lr_decay=0.5", 128000, 1e-8},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t k = cases[c].k;
        double M[MAXK * MAXK], wm[MAXK], lam[MAXK];
        random_gram(k, cases[c].d, cases[c].cond, cases[c].seed, M);
        mtgrad_aggregator *m = make("mgda", k, NULL);
        CHECK(m && mtgrad_weights_from_gram(m, M, k, NULL, wm) == MTGRAD_OK, "mgda weights");
        mtgrad_aggregator_free(m);
        oracle_run(cases[c].params, M, k, cases[c].iters, lam);
        /* k > d: M is singular and the optimal weights need not be unique; the min-norm
         * direction is, so compare ||Gᵀ(lambda - w)|| = sqrt((lambda - w)ᵀM(lambda - w)) */
        double dl[MAXK];
        for (int64_t i = 0; i < k; i++) dl[i] = lam[i] - wm[i];
        double e = cases[c].d >= k ? max_diff(lam, wm, k)
                                   : sqrt(fmax(mtgradi_quad(M, k, dl), 0) / mtgradi_quad(M, k, wm));
        CHECK(e <= cases[c].tol, "case %zu (k=%lld cond=%g %s): lambda vs w_mgda: %.3g > %.1g",
              c, (long long)k, cases[c].cond, cases[c].params ? cases[c].params : "default", e,
              cases[c].tol);
    }
    /* the ill-conditioned k = 3 case with the constant step: a neighbourhood, not the point */
    double M[9], wm[3], lam[3];
    random_gram(3, 5, 100, 4, M);
    mtgrad_aggregator *m = make("mgda", 3, NULL);
    mtgrad_weights_from_gram(m, M, 3, NULL, wm);
    mtgrad_aggregator_free(m);
    oracle_run(NULL, M, 3, 20000, lam);
    CHECK(max_diff(lam, wm, 3) <= 1e-4, "cond 100, constant step: %.3g", max_diff(lam, wm, 3));

    /* projected steps are not normalised: they converge when beta is small against 1/max|M|
     * (the Gram scaled so that max M_ii = 1) */
    for (int64_t k = 2; k <= MAXK; k += 4) {
        double Mk[MAXK * MAXK], w[MAXK], l[MAXK], mx = 0;
        random_gram(k, 2 * k, 1, (uint64_t)(40 + k), Mk);
        for (int64_t i = 0; i < k; i++) mx = fmax(mx, Mk[i * k + i]);
        for (int64_t i = 0; i < k * k; i++) Mk[i] /= mx;
        mtgrad_aggregator *mg = make("mgda", k, NULL);
        mtgrad_weights_from_gram(mg, Mk, k, NULL, w);
        mtgrad_aggregator_free(mg);
        oracle_run("update=projected,lr_lambda=0.5", Mk, k, 20000, l);
        CHECK(max_diff(l, w, k) <= 1e-9, "projected k=%lld: %.3g", (long long)k, max_diff(l, w, k));
    }
}

/* One call + feedback on a fresh aggregator; returns the λ after it. */
static mtgrad_status one_feedback(const char *params, int64_t k, const double *h, double *lam)
{
    mtgrad_aggregator *a = make("marigold", k, params);
    if (!a) return MTGRAD_E_INVAL;
    double w[MAXK];
    CHECK(mtgrad_weights_from_gram(a, NULL, k, NULL, w) == MTGRAD_OK, "call");
    mtgrad_status s = mtgrad_aggregator_feedback(a, h, k);
    CHECK(mtgrad_weights_from_gram(a, NULL, k, NULL, lam) == MTGRAD_OK, "call after feedback");
    mtgrad_aggregator_free(a);
    return s;
}

static void test_hand_steps(void)
{
    const double h[3] = {1, 2, -4};
    double lam[3];
    /* projected: 1/3 - 0.1 h = (0.2333.., 0.1333.., 0.7333..), sum 1.1, all above tau = 0.1/3 */
    CHECK(one_feedback("update=projected", 3, h, lam) == MTGRAD_OK, "projected");
    const double proj[3] = {0.2, 0.1, 0.7};
    CHECK_ARRAY_CLOSE(lam, proj, 3, 0, 1e-15);
    /* mirror: lambda_i ∝ exp(-0.1 h_i / 4) from uniform */
    CHECK(one_feedback(NULL, 3, h, lam) == MTGRAD_OK, "mirror");
    double e[3] = {exp(-0.025), exp(-0.05), exp(0.1)}, z = e[0] + e[1] + e[2];
    for (int i = 0; i < 3; i++) e[i] /= z;
    CHECK_ARRAY_CLOSE(lam, e, 3, 1e-12, 0);
    /* the projection clips: -0.1 * (10, 0, 0) takes task 0 to the boundary */
    const double h2[3] = {10, 0, 0}, proj2[3] = {0, 0.5, 0.5};
    one_feedback("update=projected", 3, h2, lam);
    CHECK_ARRAY_CLOSE(lam, proj2, 3, 0, 1e-15);
    /* h = 0: no change */
    const double h0[3] = {0, 0, 0}, uni[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    one_feedback(NULL, 3, h0, lam);
    CHECK_ARRAY_CLOSE(lam, uni, 3, 0, 0);
    /* clip = 1: h -> (1, 1, -1); projected: 1/3 - 0.1 (1, 1, -1), sum 0.9, tau = -0.1/3 */
    one_feedback("update=projected,clip=1", 3, h, lam);
    const double pc[3] = {1.0 / 3 - 0.1 + 0.1 / 3, 1.0 / 3 - 0.1 + 0.1 / 3, 1.0 / 3 + 0.1 + 0.1 / 3};
    CHECK_ARRAY_CLOSE(lam, pc, 3, 0, 1e-15);
    /* rho: the gradient is h + rho (lambda - 1/k); from uniform it is h itself, so step twice:
     * the second gradient from the hand-computed first lambda */
    {
        mtgrad_aggregator *a = make("marigold", 3, "update=projected,rho=2,lr_lambda=0.05");
        double w[3];
        mtgrad_weights_from_gram(a, NULL, 3, NULL, w);
        mtgrad_aggregator_feedback(a, h, 3);
        double l1[3], y[3], s = 0, l2[3];
        for (int i = 0; i < 3; i++) s += y[i] = 1.0 / 3 - 0.05 * h[i];
        for (int i = 0; i < 3; i++) l1[i] = y[i] - (s - 1) / 3; /* all stay positive */
        mtgrad_weights_from_gram(a, NULL, 3, NULL, w);
        CHECK_ARRAY_CLOSE(w, l1, 3, 0, 1e-15);
        mtgrad_aggregator_feedback(a, h, 3);
        s = 0;
        for (int i = 0; i < 3; i++) s += y[i] = l1[i] - 0.05 * (h[i] + 2 * (l1[i] - 1.0 / 3));
        for (int i = 0; i < 3; i++) l2[i] = y[i] - (s - 1) / 3;
        mtgrad_weights_from_gram(a, NULL, 3, NULL, w);
        CHECK_ARRAY_CLOSE(w, l2, 3, 0, 1e-15);
        mtgrad_aggregator_free(a);
    }
    /* lr_decay = 1: the second step uses beta / 2 */
    {
        mtgrad_aggregator *a = make("marigold", 3, "update=projected,lr_decay=1");
        double w[3], y[3], s = 0, l1[3] = {0.2, 0.1, 0.7}, l2[3];
        const double hh[3] = {0.5, -0.5, 0};
        mtgrad_weights_from_gram(a, NULL, 3, NULL, w);
        mtgrad_aggregator_feedback(a, h, 3);
        mtgrad_weights_from_gram(a, NULL, 3, NULL, w);
        mtgrad_aggregator_feedback(a, hh, 3);
        for (int i = 0; i < 3; i++) s += y[i] = l1[i] - 0.05 * hh[i];
        for (int i = 0; i < 3; i++) l2[i] = y[i] - (s - 1) / 3;
        mtgrad_weights_from_gram(a, NULL, 3, NULL, w);
        CHECK_ARRAY_CLOSE(w, l2, 3, 0, 1e-15);
        mtgrad_aggregator_free(a);
    }
}

static size_t save(const mtgrad_aggregator *a, unsigned char *buf, size_t cap)
{
    size_t len = cap;
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save");
    return len;
}

static void test_protocol(void)
{
    mtgrad_aggregator *a = make("marigold", 3, NULL);
    const double h[3] = {1, 2, 3}, bad[3] = {1, NAN, 3};
    double w[3];
    unsigned char b0[512], b1[512];
    size_t n0 = save(a, b0, sizeof b0);
    CHECK(mtgrad_aggregator_feedback(a, h, 3) == MTGRAD_E_STATE, "feedback before any call");
    CHECK(strstr(mtgrad_aggregator_error(a), "feedback") != NULL, "message: %s", mtgrad_aggregator_error(a));
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, NULL, w) == MTGRAD_OK, "call");
    n0 = save(a, b0, sizeof b0);
    CHECK(mtgrad_aggregator_feedback(a, bad, 3) == MTGRAD_E_NONFINITE, "NaN in h");
    CHECK(mtgrad_aggregator_feedback(a, h, 2) == MTGRAD_E_SHAPE, "k mismatch");
    CHECK(mtgrad_aggregator_feedback(a, NULL, 3) == MTGRAD_E_INVAL, "NULL h");
    CHECK(mtgrad_aggregator_feedback(NULL, h, 3) == MTGRAD_E_INVAL, "NULL aggregator");
    size_t n1 = save(a, b1, sizeof b1);
    CHECK(n0 == n1 && memcmp(b0, b1, n0) == 0, "state unchanged by failed feedback");
    CHECK(mtgrad_aggregator_feedback(a, h, 3) == MTGRAD_OK, "feedback: %s", mtgrad_aggregator_error(a));
    n0 = save(a, b0, sizeof b0);
    CHECK(mtgrad_aggregator_feedback(a, h, 3) == MTGRAD_E_STATE, "second feedback for one call");
    n1 = save(a, b1, sizeof b1);
    CHECK(n0 == n1 && memcmp(b0, b1, n0) == 0, "state unchanged by a second feedback");
    /* a call given M updates at once: no feedback expected after it */
    double M[9] = {1, 0, 0, 0, 2, 0, 0, 0, 3};
    CHECK(mtgrad_weights_from_gram(a, M, 3, NULL, w) == MTGRAD_OK, "oracle call");
    CHECK(mtgrad_aggregator_feedback(a, h, 3) == MTGRAD_E_STATE, "feedback after an oracle call");
    /* reset: nothing pending, lambda uniform */
    CHECK(mtgrad_aggregator_reset(a) == MTGRAD_OK, "reset");
    CHECK(mtgrad_aggregator_feedback(a, h, 3) == MTGRAD_E_STATE, "feedback after reset");
    mtgrad_aggregator_free(a);

    /* other methods */
    mtgrad_aggregator *m = make("mgda", 3, NULL);
    CHECK(mtgrad_aggregator_feedback(m, h, 3) == MTGRAD_E_UNSUPPORTED, "mgda feedback");
    mtgrad_aggregator_free(m);

    /* parameters */
    mtgrad_aggregator *x = NULL;
    CHECK(mtgrad_aggregator_new(&x, "marigold", 3, "mu=0", NULL, 0) == MTGRAD_E_INVAL, "mu = 0");
    CHECK(mtgrad_aggregator_new(&x, "marigold", 3, "estimator=backward", NULL, 0) == MTGRAD_E_INVAL,
          "unknown estimator");
    CHECK(mtgrad_aggregator_new(&x, "marigold", 3, "rho=-1", NULL, 0) == MTGRAD_E_INVAL, "rho < 0");
    CHECK(mtgrad_aggregator_new(&x, "marigold", 3, "estimator=step,reuse_next=1,mu=0.01,clip=2",
                                NULL, 0) == MTGRAD_OK, "all parameters");
    char buf[32];
    mtgrad_aggregator_get_param(x, "estimator", buf, sizeof buf);
    CHECK(strcmp(buf, "step") == 0, "estimator read back: %s", buf);
    mtgrad_aggregator_free(x);
    const mtgrad_method *mm = mtgrad_method_by_name("marigold");
    unsigned f = mtgrad_method_flags(mm);
    CHECK((f & MTGRAD_NEEDS_FEEDBACK) && (f & MTGRAD_HAS_WEIGHTS) && (f & MTGRAD_STATEFUL) &&
          (f & MTGRAD_HEADS_WEIGHTED) && !(f & MTGRAD_NEEDS_GRAM), "flags %#x", f);
}

static void test_save_load_and_permutation(void)
{
    const int64_t k = 4;
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 11);
    mtgrad_aggregator *a = make("marigold", k, NULL), *b = make("marigold", k, NULL);
    mtgrad_aggregator *p = make("marigold", k, NULL);
    const int64_t perm[4] = {2, 0, 3, 1};
    double w[4], wb[4], wp[4], h[4], hp[4];
    for (int t = 0; t < 5; t++) {
        for (int64_t i = 0; i < k; i++) h[i] = mtgradi_rng_normal(&r);
        for (int64_t i = 0; i < k; i++) hp[i] = h[perm[i]];
        mtgrad_weights_from_gram(a, NULL, k, NULL, w);
        mtgrad_weights_from_gram(p, NULL, k, NULL, wp);
        mtgrad_aggregator_feedback(a, h, k);
        mtgrad_aggregator_feedback(p, hp, k);
    }
    mtgrad_weights_from_gram(a, NULL, k, NULL, w);
    mtgrad_weights_from_gram(p, NULL, k, NULL, wp);
    double wexp[4];
    for (int64_t i = 0; i < k; i++) wexp[i] = w[perm[i]];
    CHECK_ARRAY_CLOSE(wp, wexp, k, 1e-14, 0);
    /* a is waiting for feedback: save now, load into b, both continue the same */
    unsigned char buf[512];
    size_t len = save(a, buf, sizeof buf);
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load: %s", mtgrad_aggregator_error(b));
    for (int64_t i = 0; i < k; i++) h[i] = mtgradi_rng_normal(&r);
    CHECK(mtgrad_aggregator_feedback(b, h, k) == MTGRAD_OK, "the loaded state waits for feedback");
    CHECK(mtgrad_aggregator_feedback(a, h, k) == MTGRAD_OK, "feedback a");
    mtgrad_weights_from_gram(a, NULL, k, NULL, w);
    mtgrad_weights_from_gram(b, NULL, k, NULL, wb);
    CHECK(memcmp(w, wb, sizeof w) == 0, "same bits after load");
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += w[i];
    CHECK_CLOSE(s, 1.0, 1e-14, 0);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
    mtgrad_aggregator_free(p);
}

/* The Jacobian path: weights = lambda, direction = Gᵀlambda (no Gram: it stays pending). */
static void test_aggregate_path(void)
{
    const int64_t k = 3, d = 5;
    double G[15], dir[5], w[3], expect[5];
    for (int i = 0; i < 15; i++) G[i] = (double)(i % 7) - 2.5;
    mtgrad_aggregator *a = make("marigold", k, NULL);
    const double h[3] = {3, -1, 0.5};
    CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w) == MTGRAD_OK, "aggregate");
    CHECK(mtgrad_aggregator_feedback(a, h, k) == MTGRAD_OK, "feedback after aggregate");
    CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w) == MTGRAD_OK, "aggregate 2");
    for (int64_t j = 0; j < d; j++) {
        expect[j] = 0;
        for (int64_t i = 0; i < k; i++) expect[j] += w[i] * G[i * d + j];
    }
    CHECK_ARRAY_CLOSE(dir, expect, d, 1e-14, 1e-14);
    CHECK(w[0] < w[1] && w[2] < w[1], "the task with the largest h loses weight most");
    mtgrad_aggregator_free(a);
}

int main(void)
{
    test_converges_to_mgda();
    test_hand_steps();
    test_protocol();
    test_save_load_and_permutation();
    test_aggregate_path();
    return harness_report();
}
