/* SDMGrad: a hand-computed step, convergence to the k = 2 closed-form minimiser of
 * ||G^T w + lambda g0||^2 over the simplex, the warm start (save/load, reset), the lambda -> large
 * limit (the mean), and degenerate inputs. */
#include "harness.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static mtgrad_aggregator *make(int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    CHECK(mtgrad_aggregator_new(&a, "sdmgrad", k, params, err, sizeof err) == MTGRAD_OK, "new: %s", err);
    return a;
}

/* M = diag(1, 0), one step with lr 10 from w = (1/2, 1/2):
 * s = (sqrt(1.0001) + 0.01)/2, grad = (2*0.5 + 2*0.3*0.5)/s^2 e_1 = 1.3/s^2 e_1,
 * w - 10 grad = (0.5 - 13/s^2, 0.5) with 13/s^2 ~ 50, projected: (0, 1).
 * Weights (w + lambda/k)/(1 + lambda) = (0.15, 1.15)/1.3. */
static void test_one_step_by_hand(void)
{
    double M[4] = {1, 0, 0, 0}, w[2];
    mtgrad_aggregator *a = make(2, "niter=1");
    CHECK(mtgrad_weights_from_gram(a, M, 2, NULL, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
    double expect[2] = {0.15 / 1.3, 1.15 / 1.3};
    CHECK_ARRAY_CLOSE(w, expect, 2, 1e-15, 1e-15);
    /* the inner w (state) is the projected point (0, 1) */
    CHECK_CLOSE(a->state[0], 0.0, 0, 0);
    CHECK_CLOSE(a->state[1], 1.0, 0, 0);
    mtgrad_aggregator_free(a);
}

/* k = 2: minimise ||gamma (g1 - g2) + g2 + lambda g0||^2 over gamma in [0, 1]:
 * gamma* = clamp(-<g2 + lambda g0, g1 - g2> / ||g1 - g2||^2, 0, 1). With a small step and many
 * iterations the projected SGD reaches it. */
static void test_converges_to_closed_form(void)
{
    const double lambdas[] = {0, 0.3, 2};
    double G[2][3] = {{1, 2, -1}, {-2, 0.5, 1}};
    double M[4];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) M[i * 2 + j] = G[i][0] * G[j][0] + G[i][1] * G[j][1] + G[i][2] * G[j][2];
    for (int t = 0; t < 3; t++) {
        double lam = lambdas[t];
        double diff[3], h[3];
        for (int c = 0; c < 3; c++) {
            diff[c] = G[0][c] - G[1][c];
            h[c] = G[1][c] + lam * 0.5 * (G[0][c] + G[1][c]);
        }
        double gamma = -(h[0] * diff[0] + h[1] * diff[1] + h[2] * diff[2]) /
                       (diff[0] * diff[0] + diff[1] * diff[1] + diff[2] * diff[2]);
        gamma = fmin(fmax(gamma, 0), 1);
        char p[96];
        snprintf(p, sizeof p, "lambda=%g,lr=0.05,momentum=0,niter=20000", lam);
        mtgrad_aggregator *a = make(2, p);
        double w[2];
        CHECK(mtgrad_weights_from_gram(a, M, 2, NULL, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
        CHECK_CLOSE(a->state[0], gamma, 0, 1e-9);
        CHECK_CLOSE(w[0], (gamma + lam / 2) / (1 + lam), 0, 1e-9);
        CHECK_CLOSE(w[0] + w[1], 1.0, 0, 1e-14);
        mtgrad_aggregator_free(a);
    }
}

/* The inner w persists: call 2 starts from call 1's w. */
static void test_warm_start(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 4);
    double G1[4 * 6], G2[4 * 6], d[6], w1[4], w2[4], w2b[4];
    for (int i = 0; i < 24; i++) G1[i] = mtgradi_rng_normal(&r), G2[i] = mtgradi_rng_normal(&r);
    mtgrad_aggregator *a = make(4, "niter=3"), *b = make(4, "niter=3");
    CHECK(mtgrad_aggregate_f64(a, G1, 4, 6, 6, NULL, d, w1) == MTGRAD_OK, "call 1");
    size_t len = 0;
    mtgrad_aggregator_save(a, NULL, &len);
    unsigned char *buf = malloc(len);
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save");
    CHECK(mtgrad_aggregate_f64(a, G2, 4, 6, 6, NULL, d, w2) == MTGRAD_OK, "call 2");
    /* from a fresh start G2 gives something else (few iterations: the start matters) */
    CHECK(mtgrad_aggregate_f64(b, G2, 4, 6, 6, NULL, d, w2b) == MTGRAD_OK, "fresh G2");
    double diff = 0;
    for (int i = 0; i < 4; i++) diff = fmax(diff, fabs(w2b[i] - w2[i]));
    CHECK(diff > 1e-6, "warm start should matter with niter = 3 (%g)", diff);
    /* loading call 1's state reproduces call 2 exactly */
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load");
    CHECK(mtgrad_aggregate_f64(b, G2, 4, 6, 6, NULL, d, w2b) == MTGRAD_OK, "G2 after load");
    CHECK_ARRAY_CLOSE(w2b, w2, 4, 0, 0);
    /* reset goes back to w = 1/k: G1 again gives call 1's weights */
    mtgrad_aggregator_reset(a);
    CHECK(mtgrad_aggregate_f64(a, G1, 4, 6, 6, NULL, d, w2b) == MTGRAD_OK, "G1 after reset");
    CHECK_ARRAY_CLOSE(w2b, w1, 4, 0, 0);
    /* the state is on the simplex */
    double s = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(a->state[i] >= 0, "w[%d] >= 0", i);
        s += a->state[i];
    }
    CHECK_CLOSE(s, 1.0, 0, 1e-12);
    /* a wrong-method state is refused */
    mtgrad_aggregator *m = NULL;
    CHECK(mtgrad_aggregator_new(&m, "mean", 4, NULL, NULL, 0) == MTGRAD_OK, "mean");
    size_t lm = 0;
    mtgrad_aggregator_save(m, NULL, &lm);
    unsigned char *bm = malloc(lm);
    mtgrad_aggregator_save(m, bm, &lm);
    CHECK(mtgrad_aggregator_load(a, bm, lm) == MTGRAD_E_STATE, "mean state into sdmgrad");
    free(bm), free(buf);
    mtgrad_aggregator_free(m), mtgrad_aggregator_free(a), mtgrad_aggregator_free(b);
}

/* lambda -> large: the weights tend to 1/k (the mean); with lambda = 0 they sum to 1 too. */
static void test_large_lambda_is_mean(void)
{
    double M[9] = {4, -1, 0.5, -1, 1, 0.2, 0.5, 0.2, 9}, w[3];
    mtgrad_aggregator *a = make(3, "lambda=1e6");
    CHECK(mtgrad_weights_from_gram(a, M, 3, NULL, w) == MTGRAD_OK, "lambda 1e6");
    for (int i = 0; i < 3; i++) CHECK_CLOSE(w[i], 1.0 / 3, 0, 1e-6);
    mtgrad_aggregator_free(a);
}

static void test_degenerate(void)
{
    /* all-zero G: s = 1e-2, no gradient, w stays 1/k */
    double Z[3 * 4] = {0}, d[4], w[3];
    mtgrad_aggregator *a = make(3, NULL);
    CHECK(mtgrad_aggregate_f64(a, Z, 3, 4, 4, NULL, d, w) == MTGRAD_OK, "zero G");
    for (int i = 0; i < 3; i++) CHECK_CLOSE(w[i], 1.0 / 3, 0, 1e-15);
    /* scaled rows, identical rows, k > d: finite, on the simplex */
    double G[3 * 2] = {1e10, -2e10, 1e-10, 3e-10, 1e10, -2e10};
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, d, w) == MTGRAD_OK, "scaled");
    double s = 0;
    for (int i = 0; i < 3; i++) {
        CHECK(isfinite(w[i]) && w[i] >= 0, "w[%d] = %g", i, w[i]);
        s += w[i];
    }
    CHECK_CLOSE(s, 1.0, 0, 1e-12);
    mtgrad_aggregator_free(a);
    /* k = 1 */
    mtgrad_aggregator *one = make(1, NULL);
    double g[2] = {3, -1}, d1[2], w1[1];
    CHECK(mtgrad_aggregate_f64(one, g, 1, 2, 2, NULL, d1, w1) == MTGRAD_OK, "k = 1");
    CHECK_CLOSE(w1[0], 1.0, 0, 1e-15);
    mtgrad_aggregator_free(one);
    /* parameter ranges */
    mtgrad_aggregator *b = make(2, NULL);
    CHECK(mtgrad_aggregator_set_param(b, "lr", "0") == MTGRAD_E_INVAL, "lr 0");
    CHECK(mtgrad_aggregator_set_param(b, "momentum", "1") == MTGRAD_E_INVAL, "momentum 1");
    CHECK(mtgrad_aggregator_set_param(b, "niter", "2.5") == MTGRAD_E_INVAL, "niter 2.5");
    CHECK(mtgrad_aggregator_set_param(b, "lambda", "-1") == MTGRAD_E_INVAL, "lambda < 0");
    mtgrad_aggregator_free(b);
}

int main(void)
{
    test_one_step_by_hand();
    test_converges_to_closed_form();
    test_warm_start();
    test_large_lambda_is_mean();
    test_degenerate();
    return harness_report();
}
