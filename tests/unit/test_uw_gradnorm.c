/* UW and GradNorm (src/core/method_uw.c, method_gradnorm.c, methods.md §13): the weights of each
 * call and the trained logits s against an independent model in this file — the gradient of the
 * stated loss by central finite differences, then torch's Adam step written out — over several
 * calls; GradNorm's warm-up (w = 1, L(0) = the mean of the warm-up losses, s untouched); NaN and
 * zero losses (refused, state unchanged); save/load. The logits are read from the saved state
 * (layout: aggregator.c, method files). */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define K 3
#define STATE_OFF 104 /* magic, version, name[32], k, step, rng[4], n_state */

static mtgrad_aggregator *make(const char *method, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    CHECK(mtgrad_aggregator_new(&a, method, K, params, err, sizeof err) == MTGRAD_OK, "new %s: %s",
          method, err);
    return a;
}

/* state[i] of the aggregator, through save. */
static double state_at(const mtgrad_aggregator *a, size_t i)
{
    unsigned char buf[1024];
    size_t len = sizeof buf;
    if (mtgrad_aggregator_save(a, buf, &len) != MTGRAD_OK) return NAN;
    uint64_t u = mtgradi_get_u64(buf + STATE_OFF + 8 * i);
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* torch.optim.Adam (lr, betas 0.9/0.999, eps 1e-8, no weight decay), step t (1-based). */
typedef struct {
    double m[K], v[K];
    int t;
} adam;

static void adam_step(adam *o, double lr, const double *g, double *p)
{
    o->t++;
    double bc1 = 1 - pow(0.9, o->t), bc2 = 1 - pow(0.999, o->t);
    for (int i = 0; i < K; i++) {
        o->m[i] = 0.9 * o->m[i] + 0.1 * g[i];
        o->v[i] = 0.999 * o->v[i] + 0.001 * g[i] * g[i];
        p[i] -= lr * (o->m[i] / bc1) / (sqrt(o->v[i] / bc2) + 1e-8);
    }
}

/* Central differences of f at s (K values). */
static void fd_grad(double (*f)(const double *, const void *), const void *ctx, const double *s,
                    double *g)
{
    const double h = 1e-6;
    for (int i = 0; i < K; i++) {
        double sp[K], sm[K];
        memcpy(sp, s, sizeof sp);
        memcpy(sm, s, sizeof sm);
        sp[i] += h;
        sm[i] -= h;
        g[i] = (f(sp, ctx) - f(sm, ctx)) / (2 * h);
    }
}

/* ------------------------------------------------------------------ UW */

/* Σ_i L_i / (2 e^{s_i}) + s_i / 2 */
static double uw_loss(const double *s, const void *ctx)
{
    const double *L = ctx;
    double f = 0;
    for (int i = 0; i < K; i++) f += L[i] / (2 * exp(s[i])) + s[i] / 2;
    return f;
}

static void test_uw(void)
{
    const double losses[5][K] = {{2.0, 0.5, 1.0}, {1.5, 0.6, 0.2}, {1.0, 0.7, 3.0},
                                 {0.8, 0.1, 2.0}, {0.5, 0.05, 1.0}};
    mtgrad_aggregator *a = make("uw", NULL);
    double s[K] = {-0.5, -0.5, -0.5}, w[K], g[K], wexp[K];
    adam o = {{0}, {0}, 0};
    for (int t = 0; t < 5; t++) {
        CHECK(mtgrad_weights_from_gram(a, NULL, K, losses[t], w) == MTGRAD_OK, "uw call %d", t);
        for (int i = 0; i < K; i++) wexp[i] = 0.5 / exp(s[i]);
        CHECK_ARRAY_CLOSE(w, wexp, K, 1e-9, 0); /* pre-update s */
        fd_grad(uw_loss, losses[t], s, g);
        adam_step(&o, 0.025, g, s);
        double got[K];
        for (int i = 0; i < K; i++) got[i] = state_at(a, (size_t)i);
        CHECK_ARRAY_CLOSE(got, s, K, 1e-8, 1e-10);
    }
    /* first call from init 0 (nash-mtl): weights 1/2 */
    mtgrad_aggregator *b = make("uw", "init=0,lr=0.1");
    const double half[K] = {0.5, 0.5, 0.5};
    mtgrad_weights_from_gram(b, NULL, K, losses[0], w);
    CHECK_ARRAY_CLOSE(w, half, K, 0, 0);
    /* zero losses are fine (s goes down: gradient 1/2); NaN is refused, state unchanged */
    const double zero[K] = {0, 0, 0}, nan_l[K] = {1, NAN, 1};
    double before = state_at(b, 0);
    CHECK(mtgrad_weights_from_gram(b, NULL, K, nan_l, w) == MTGRAD_E_NONFINITE, "uw NaN loss");
    CHECK(state_at(b, 0) == before, "uw state unchanged on failure");
    CHECK(mtgrad_weights_from_gram(b, NULL, K, zero, w) == MTGRAD_OK, "uw zero loss");
    CHECK(state_at(b, 0) < before, "s decreases on zero loss");
    CHECK(mtgrad_weights_from_gram(b, NULL, K, NULL, w) == MTGRAD_E_INVAL, "uw needs losses");
    /* save/load: the next call gives the same bits */
    unsigned char buf[1024];
    size_t len = sizeof buf;
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save");
    mtgrad_aggregator_free(b);
    b = make("uw", NULL);
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load: %s", mtgrad_aggregator_error(b));
    double wa[K], wb[K];
    mtgrad_weights_from_gram(a, NULL, K, losses[1], wa);
    mtgrad_weights_from_gram(b, NULL, K, losses[1], wb);
    CHECK(memcmp(wa, wb, sizeof wa) == 0 && state_at(a, 0) == state_at(b, 0), "uw after load");
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

/* ------------------------------------------------------------------ GradNorm */

typedef struct {
    const double *n, *T; /* gradient norms, targets (held constant) */
} gn_ctx;

static void k_softmax(const double *s, double *w)
{
    double z = 0;
    for (int i = 0; i < K; i++) z += exp(s[i]);
    for (int i = 0; i < K; i++) w[i] = K * exp(s[i]) / z;
}

/* L_grad = Σ_i |w_i(s) n_i − T_i|, w = k softmax(s) */
static double gn_loss(const double *s, const void *ctx)
{
    const gn_ctx *c = ctx;
    double w[K], f = 0;
    k_softmax(s, w);
    for (int i = 0; i < K; i++) f += fabs(w[i] * c->n[i] - c->T[i]);
    return f;
}

static void test_gradnorm(void)
{
    /* a Gram with diagonal (4, 1, 9): norms (2, 1, 3); off-diagonals are not used */
    const double M[K * K] = {4, 0.5, -1, 0.5, 1, 0.2, -1, 0.2, 9};
    const double n[K] = {2, 1, 3};
    const double losses[6][K] = {{2.0, 1.0, 4.0}, {1.0, 3.0, 2.0}, {1.2, 1.5, 2.5},
                                 {1.0, 1.9, 2.0}, {0.9, 1.0, 2.2}, {0.5, 1.1, 1.0}};
    mtgrad_aggregator *a = make("gradnorm", "warmup_steps=2");
    double w[K], s[K] = {1, 1, 1}, L0[K], g[K];
    const double ones[K] = {1, 1, 1};
    adam o = {{0}, {0}, 0};
    for (int t = 0; t < 2; t++) {
        CHECK(mtgrad_weights_from_gram(a, M, K, losses[t], w) == MTGRAD_OK, "warm-up call %d", t);
        CHECK_ARRAY_CLOSE(w, ones, K, 0, 0);
        for (int i = 0; i < K; i++) CHECK(state_at(a, (size_t)i) == 1.0, "s fixed in warm-up");
    }
    for (int i = 0; i < K; i++) L0[i] = (losses[0][i] + losses[1][i]) / 2;
    double got[K];
    for (int i = 0; i < K; i++) got[i] = state_at(a, (size_t)(3 * K + i));
    CHECK_ARRAY_CLOSE(got, L0, K, 1e-15, 0);
    for (int t = 2; t < 6; t++) {
        double wexp[K], T[K], G[K], gbar = 0, rbar = 0;
        k_softmax(s, wexp);
        for (int i = 0; i < K; i++) {
            G[i] = wexp[i] * n[i];
            gbar += G[i] / K;
            rbar += losses[t][i] / L0[i] / K;
        }
        for (int i = 0; i < K; i++) T[i] = gbar * pow(losses[t][i] / L0[i] / rbar, 1.5);
        CHECK(mtgrad_weights_from_gram(a, M, K, losses[t], w) == MTGRAD_OK, "call %d: %s", t,
              mtgrad_aggregator_error(a));
        CHECK_ARRAY_CLOSE(w, wexp, K, 1e-9, 0);
        gn_ctx c = {n, T};
        fd_grad(gn_loss, &c, s, g);
        adam_step(&o, 0.025, g, s);
        for (int i = 0; i < K; i++) got[i] = state_at(a, (size_t)i);
        CHECK_ARRAY_CLOSE(got, s, K, 1e-8, 1e-10);
    }
    double sum = 0;
    for (int i = 0; i < K; i++) sum += w[i];
    CHECK_CLOSE(sum, K, 1e-14, 0);
    /* zero and NaN losses are refused; the state (incl. the warm-up count) is unchanged */
    const double zero[K] = {1, 0, 1}, nan_l[K] = {1, NAN, 1};
    double before = state_at(a, 0);
    CHECK(mtgrad_weights_from_gram(a, M, K, zero, w) == MTGRAD_E_INVAL, "zero loss");
    CHECK(mtgrad_weights_from_gram(a, M, K, nan_l, w) == MTGRAD_E_NONFINITE, "NaN loss");
    CHECK(mtgrad_weights_from_gram(a, NULL, K, losses[0], w) == MTGRAD_E_INVAL, "needs M");
    CHECK(state_at(a, 0) == before, "state unchanged");
    mtgrad_aggregator *b = make("gradnorm", "warmup_steps=2");
    CHECK(mtgrad_weights_from_gram(b, M, K, zero, w) == MTGRAD_E_INVAL, "zero loss in warm-up");
    CHECK(state_at(b, (size_t)(4 * K + 1)) == 0, "a refused call does not count as warm-up");
    /* save/load */
    unsigned char buf[1024];
    size_t len = sizeof buf;
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save");
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load: %s", mtgrad_aggregator_error(b));
    double wa[K], wb[K];
    mtgrad_weights_from_gram(a, M, K, losses[3], wa);
    mtgrad_weights_from_gram(b, M, K, losses[3], wb);
    CHECK(memcmp(wa, wb, sizeof wa) == 0 && state_at(a, 1) == state_at(b, 1), "gradnorm after load");
    /* default warmup_steps = 1: the first call is w = 1, the second w = k softmax(1) = 1 too */
    mtgrad_aggregator *c = make("gradnorm", NULL);
    mtgrad_weights_from_gram(c, M, K, losses[0], w);
    CHECK_ARRAY_CLOSE(w, ones, K, 0, 0);
    mtgrad_weights_from_gram(c, M, K, losses[1], w);
    CHECK_ARRAY_CLOSE(w, ones, K, 1e-15, 0);
    CHECK(state_at(c, 0) != 1.0, "s moves from the second call on");
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
    mtgrad_aggregator_free(c);
}

int main(void)
{
    test_uw();
    test_gradnorm();
    return harness_report();
}
