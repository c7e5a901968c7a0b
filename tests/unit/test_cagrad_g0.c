/* CAGrad's reference weights (g0_weights = r, g0 = Gᵀr; CAGrad-fastK, methods.md 4.2): the
 * default equals an explicit r = 1/k bit for bit; with another r the dual solution is checked
 * independently — by brute force over the segment for k = 2, by the KKT conditions of
 *     F(x) = xᵀMr + φ sqrt(xᵀMx + 1e-8),  φ = c sqrt(rᵀMr + 1e-8) + 1e-8
 * for k = 4 — and the weights are r + λx with λ = φ/(sqrt(xᵀMx) + 1e-8) (rescale=0); bad r are
 * refused. */
#include "harness.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

static mtgrad_aggregator *make(int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    CHECK(mtgrad_aggregator_new(&a, "cagrad", k, params, err, sizeof err) == MTGRAD_OK, "new: %s", err);
    return a;
}

static void random_gram(int64_t k, int64_t d, uint64_t seed, double *M)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, seed);
    double G[4 * 16];
    for (int64_t i = 0; i < k * d; i++) G[i] = mtgradi_rng_normal(&r) + (i % d == 0 ? 1.0 : 0.0);
    mtgrad_gram_f64(G, k, d, d, M);
}

static void test_default_bits(void)
{
    for (int64_t k = 2; k <= 4; k++) {
        double M[16], w1[4], w2[4];
        random_gram(k, 6, (uint64_t)k, M);
        char p[256] = "g0_weights=";
        for (int64_t i = 0; i < k; i++)
            snprintf(p + strlen(p), sizeof p - strlen(p), "%s%.17g", i ? ":" : "", 1.0 / (double)k);
        mtgrad_aggregator *a = make(k, NULL), *b = make(k, p);
        CHECK(mtgrad_weights_from_gram(a, M, k, NULL, w1) == MTGRAD_OK, "default");
        CHECK(mtgrad_weights_from_gram(b, M, k, NULL, w2) == MTGRAD_OK, "explicit");
        CHECK(memcmp(w1, w2, (size_t)k * sizeof *w1) == 0, "k=%lld: explicit 1/k = default", (long long)k);
        mtgrad_aggregator_free(a);
        mtgrad_aggregator_free(b);
    }
}

static double F(const double *M, const double *r, const double *x, int64_t k, double phi)
{
    double Mr[4];
    mtgradi_matvec(M, k, r, Mr);
    return mtgradi_dot(x, Mr, k) + phi * sqrt(mtgradi_quad(M, k, x) + 1e-8);
}

/* x from the weights of rescale=0: w = r + λx with Σx = 1, so λ = Σw − Σr. */
static void recover(const double *w, const double *r, int64_t k, double *x, double *lam)
{
    double sw = 0, sr = 0;
    for (int64_t i = 0; i < k; i++) sw += w[i], sr += r[i];
    *lam = sw - sr;
    for (int64_t i = 0; i < k; i++) x[i] = (w[i] - r[i]) / *lam;
}

static void test_k2_brute_force(void)
{
    const double r[2] = {0.25, 0.75}, c = 0.5;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        double M[4], w[2], x[2], lam;
        random_gram(2, 5, seed, M);
        mtgrad_aggregator *a = make(2, "g0_weights=0.25:0.75,rescale=0");
        CHECK(mtgrad_weights_from_gram(a, M, 2, NULL, w) == MTGRAD_OK, "k=2");
        mtgrad_aggregator_free(a);
        recover(w, r, 2, x, &lam);
        double phi = c * sqrt(mtgradi_quad(M, 2, r) + 1e-8) + 1e-8;
        /* grid, then golden section on the best cell */
        double best = 0, fb = INFINITY;
        for (int i = 0; i <= 100000; i++) {
            double t = i / 100000.0, y[2] = {t, 1 - t}, f = F(M, r, y, 2, phi);
            if (f < fb) fb = f, best = t;
        }
        double lo = fmax(best - 1e-5, 0), hi = fmin(best + 1e-5, 1);
        const double g = (sqrt(5.0) - 1) / 2;
        for (int it = 0; it < 200; it++) {
            double t1 = hi - g * (hi - lo), t2 = lo + g * (hi - lo);
            double y1[2] = {t1, 1 - t1}, y2[2] = {t2, 1 - t2};
            if (F(M, r, y1, 2, phi) < F(M, r, y2, 2, phi)) hi = t2;
            else lo = t1;
        }
        CHECK_CLOSE(x[0], (lo + hi) / 2, 0, 1e-7);
        CHECK_CLOSE(lam, phi / (sqrt(mtgradi_quad(M, 2, x)) + 1e-8), 1e-9, 0);
    }
}

static void test_k4_kkt(void)
{
    /* CAGrad-fastK with k = 6 tasks and K = 4: three single tasks (1/6 each) and the average of
     * the other three as the fourth pseudo-task, weight (6 - 4 + 1)/6 = 1/2 */
    const double r[4] = {1.0 / 6, 1.0 / 6, 1.0 / 6, 0.5}, c = 0.4;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        double M[16], w[4], x[4], lam, Mr[4], Mx[4], q[4];
        random_gram(4, 7, 10 + seed, M);
        mtgrad_aggregator *a = make(4, "g0_weights=0.16666666666666666:0.16666666666666666:"
                                       "0.16666666666666666:0.5,rescale=0,c=0.4");
        CHECK(mtgrad_weights_from_gram(a, M, 4, NULL, w) == MTGRAD_OK, "k=4");
        mtgrad_aggregator_free(a);
        recover(w, r, 4, x, &lam);
        double phi = c * sqrt(mtgradi_quad(M, 4, r) + 1e-8) + 1e-8;
        mtgradi_matvec(M, 4, r, Mr);
        mtgradi_matvec(M, 4, x, Mx);
        double nx = sqrt(mtgradi_quad(M, 4, x) + 1e-8), nu = INFINITY, scale = 0;
        for (int i = 0; i < 4; i++) {
            q[i] = Mr[i] + phi * Mx[i] / nx;
            scale = fmax(scale, fabs(Mr[i]) + fabs(phi * Mx[i] / nx));
            CHECK(x[i] >= -1e-12, "x[%d] = %g", i, x[i]);
            if (x[i] > 1e-9) nu = fmin(nu, q[i]);
        }
        for (int i = 0; i < 4; i++) {
            if (x[i] > 1e-9) CHECK(q[i] - nu <= 1e-8 * scale, "support gradient spread %g", q[i] - nu);
            else CHECK(q[i] - nu >= -1e-8 * scale, "off-support gradient %g below %g", q[i], nu);
        }
        CHECK_CLOSE(lam, phi / (sqrt(mtgradi_quad(M, 4, x)) + 1e-8), 1e-9, 0);
    }
}

static void test_refused(void)
{
    mtgrad_aggregator *a = NULL;
    CHECK(mtgrad_aggregator_new(&a, "cagrad", 3, "g0_weights=0.5:0.5", NULL, 0) == MTGRAD_E_INVAL, "count");
    CHECK(mtgrad_aggregator_new(&a, "cagrad", 3, "g0_weights=0:0:0", NULL, 0) == MTGRAD_E_INVAL, "sum 0");
    CHECK(mtgrad_aggregator_new(&a, "cagrad", 3, "g0_weights=-1:1:1", NULL, 0) == MTGRAD_E_INVAL, "negative");
    CHECK(a == NULL, "nothing created");
}

int main(void)
{
    test_default_bits();
    test_k2_brute_force();
    test_k4_kkt();
    test_refused();
    return harness_report();
}
