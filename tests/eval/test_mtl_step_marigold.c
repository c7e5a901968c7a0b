/* test_mtl_step_marigold.c — the step of MARIGOLD (a method with MTGRAD_NEEDS_FEEDBACK): passes
 * per step of each estimator (counted); the estimates h against G d from k separate
 * backward_task passes: on a model whose losses are exactly quadratic along d (linear trunk and
 * heads, MSE) the central difference is exact to round-off and the forward difference's error is
 * exactly linear in mu (so 2 h(mu/2) - h(mu) = G d); on a smooth non-quadratic model (softmax
 * cross-entropy) the errors shrink as O(mu) and O(mu^2); probes reuse the step's dropout masks
 * and leave the dropout stream as a step without probes; the `step` estimator and reuse_next
 * against the loss changes computed here; resume bit for bit. */
#include "harness.h"
#include "eval/mtl_step_util.h"
#include "nn/mtl_step_internal.h" /* mtgradi_mtl_step_feedback: the h the step fed back */

#include <stdio.h>

static mtgrad_model *ce_model(int64_t k, uint64_t seed)
{
    mtgrad_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_c = IN, s.in_h = 1, s.in_w = 1;
    s.trunk = "linear:6";
    s.k = k;
    for (int64_t i = 0; i < k; i++) s.heads[i] = "linear:3", s.losses[i] = MTGRAD_LOSS_CE;
    s.max_batch = NB;
    mtgrad_model *m = NULL;
    CHECK(mtgrad_model_new(&m, &s, seed, NULL, 0) == MTGRAD_OK, "ce model");
    return m;
}

static float YC[MAXK * NB]; /* class indices for the CE model */

/* --------------------------------------------------------------- passes */

static void check_passes(const char *params, int64_t k, int64_t fw, int64_t trunk)
{
    mtgrad_model *m = tiny(k, 3);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.01);
    mtgrad_mtl_step *s = step_ex(m, "marigold", params, &oc, NULL, NULL, 0);
    for (int t = 0; t < 3; t++) {
        mtgrad_pass_counts c;
        CHECK(run_counted(s, m, &c) == MTGRAD_OK, "marigold %s: %s", params,
              mtgrad_mtl_step_error(s));
        CHECK(c.forwards == fw && c.trunk_backwards == trunk, "marigold %s: %lld forwards, %lld "
              "trunk backwards; want %lld + %lld", params, (long long)c.forwards,
              (long long)c.trunk_backwards, (long long)fw, (long long)trunk);
    }
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

/* --------------------------------------------------------------- h against G d */

/* One step from the initial parameters of model_of(trunk)/ce_model with `params`; returns the
 * relative error of h against G d (rows by hand on a twin model). */
static double h_error(int ce, const char *trunk, int64_t k, const char *params, double *h_out,
                      double *gd_out)
{
    mtgrad_model *a = ce ? ce_model(k, 41) : model_of(trunk, k, 41);
    mtgrad_model *b = ce ? ce_model(k, 41) : model_of(trunk, k, 41);
    const float *Yt = ce ? YC : Y[0];
    int64_t d = mtgrad_model_num_shared(a), P = mtgrad_model_num_params(a);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.01);
    mtgrad_mtl_step *s = step_ex(a, "marigold", params, &oc, NULL, NULL, 0);
    CHECK(mtgrad_mtl_step_run(s, X[0], Yt, NB, NULL, NULL) == MTGRAD_OK, "marigold %s: %s",
          params, mtgrad_mtl_step_error(s));
    float *G = calloc((size_t)(k * d), sizeof(float)), *heads = calloc((size_t)P, sizeof(float));
    double L[MAXK], gd[MAXK];
    CHECK(mtgrad_model_forward(b, X[0], Yt, NB, 1, L) == MTGRAD_OK, "forward");
    for (int64_t i = 0; i < k; i++)
        CHECK(mtgrad_model_backward_task(b, i, G + i * d, heads) == MTGRAD_OK, "backward_task");
    const float *dir = mtgrad_mtl_step_grad(s);
    for (int64_t i = 0; i < k; i++) {
        gd[i] = 0;
        for (int64_t j = 0; j < d; j++) gd[i] += (double)G[i * d + j] * (double)dir[j];
    }
    const double *h = mtgradi_mtl_step_feedback(s);
    double e = rel_err_d(h, gd, k);
    if (h_out) memcpy(h_out, h, (size_t)k * sizeof(double));
    if (gd_out) memcpy(gd_out, gd, (size_t)k * sizeof(double));
    free(G), free(heads);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
    return e;
}

static void test_quadratic(void)
{
    const int64_t k = 3;
    double e = h_error(0, "linear:6", k, "estimator=central,mu=0.05", NULL, NULL);
    CHECK(e < 1e-4, "central on losses quadratic along d: h == G d to round-off (%.3g)", e);
    /* dropout masks held fixed: still quadratic, so still exact (new masks would not be) */
    e = h_error(0, "linear:6,dropout:0.5", k, "estimator=central,mu=0.05", NULL, NULL);
    CHECK(e < 1e-4, "central with dropout: the probes reuse the step's masks (%.3g)", e);
    double h1[MAXK], h2[MAXK], gd[MAXK], r[MAXK];
    double e1 = h_error(0, "linear:6", k, "estimator=forward,mu=0.1", h1, gd);
    double e2 = h_error(0, "linear:6", k, "estimator=forward,mu=0.05", h2, NULL);
    for (int64_t i = 0; i < k; i++) r[i] = 2 * h2[i] - h1[i];
    CHECK(rel_err_d(r, gd, k) < 1e-4, "forward: the error is exactly linear in mu (Richardson "
          "extrapolation gives G d: %.3g)", rel_err_d(r, gd, k));
    CHECK(e1 > 1e-3 && fabs(e1 / e2 - 2) < 0.01, "forward: error %.3g at mu, %.3g at mu/2", e1, e2);
}

static void test_rates(void)
{
    const int64_t k = 2;
    double f[3], c[3], mu[3] = {0.2, 0.1, 0.05};
    char p[64];
    for (int q = 0; q < 3; q++) {
        snprintf(p, sizeof p, "estimator=forward,mu=%g", mu[q]);
        f[q] = h_error(1, NULL, k, p, NULL, NULL);
        snprintf(p, sizeof p, "estimator=central,mu=%g", mu[q]);
        c[q] = h_error(1, NULL, k, p, NULL, NULL);
    }
    for (int q = 0; q < 2; q++) {
        CHECK(f[q] / f[q + 1] > 1.8 && f[q] / f[q + 1] < 2.2, "forward is O(mu): %.3g -> %.3g",
              f[q], f[q + 1]);
        CHECK(c[q] / c[q + 1] > 3.5 && c[q] / c[q + 1] < 4.5, "central is O(mu^2): %.3g -> %.3g",
              c[q], c[q + 1]);
    }
    CHECK(c[2] < f[2], "central beats forward");
}

/* The probes leave the dropout stream where a step without probes would. */
static void test_dropout_stream(void)
{
    mtgrad_model *a = model_of("linear:6,dropout:0.3", 2, 5), *b = model_of("linear:6,dropout:0.3", 2, 5);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.01);
    mtgrad_mtl_step *sa = step_ex(a, "marigold", "estimator=central", &oc, NULL, NULL, 0);
    mtgrad_mtl_step *sb = step_ex(b, "ls", NULL, &oc, NULL, NULL, 0);
    for (int t = 0; t < 3; t++) {
        CHECK(mtgrad_mtl_step_run(sa, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "marigold");
        CHECK(mtgrad_mtl_step_run(sb, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "ls");
    }
    uint64_t ra[4], rb[4];
    mtgrad_model_get_rng(a, ra);
    mtgrad_model_get_rng(b, rb);
    CHECK(memcmp(ra, rb, sizeof ra) == 0, "dropout generator as after three one-forward steps");
    mtgrad_mtl_step_free(sa), mtgrad_mtl_step_free(sb);
    mtgrad_model_free(a), mtgrad_model_free(b);
}

/* --------------------------------------------------------------- step / reuse_next */

static void test_step_estimator(void)
{
    const int64_t k = 3;
    mtgrad_model *m = tiny(k, 9);
    int64_t d = mtgrad_model_num_shared(m);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_ADAM, 0.01);
    mtgrad_mtl_step *s = step_ex(m, "marigold", "estimator=step", &oc, NULL, NULL, 0);
    float *before = malloc((size_t)d * sizeof(float));
    memcpy(before, mtgrad_model_params(m), (size_t)d * sizeof(float));
    double L[MAXK], La[MAXK];
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, L, NULL) == MTGRAD_OK, "step estimator");
    double dn = 0, mv = 0;
    const float *g = mtgrad_mtl_step_grad(s), *p = mtgrad_model_params(m);
    for (int64_t j = 0; j < d; j++) {
        dn += (double)g[j] * g[j];
        mv += ((double)p[j] - before[j]) * ((double)p[j] - before[j]);
    }
    CHECK(mtgrad_model_forward(m, X[0], Y[0], NB, 1, La) == MTGRAD_OK, "forward after");
    const double *h = mtgradi_mtl_step_feedback(s);
    for (int64_t i = 0; i < k; i++)
        CHECK_CLOSE(h[i], sqrt(dn) * (L[i] - La[i]) / sqrt(mv), 1e-9, 1e-15);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);

    /* reuse_next: no feedback after step 0; step 1's losses (batch 1) give step 0's h */
    m = tiny(k, 9);
    s = step_ex(m, "marigold", "estimator=step,reuse_next=1", &oc, NULL, NULL, 0);
    memcpy(before, mtgrad_model_params(m), (size_t)d * sizeof(float));
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, L, NULL) == MTGRAD_OK, "reuse step 0");
    h = mtgradi_mtl_step_feedback(s);
    CHECK(h[0] == 0 && h[1] == 0 && h[2] == 0, "no feedback yet");
    dn = mv = 0;
    g = mtgrad_mtl_step_grad(s), p = mtgrad_model_params(m);
    for (int64_t j = 0; j < d; j++) {
        dn += (double)g[j] * g[j];
        mv += ((double)p[j] - before[j]) * ((double)p[j] - before[j]);
    }
    double w0[MAXK];
    memcpy(w0, mtgrad_mtl_step_weights(s), (size_t)k * sizeof(double));
    CHECK(mtgrad_mtl_step_run(s, X[1], Y[1], NB, La, NULL) == MTGRAD_OK, "reuse step 1");
    for (int64_t i = 0; i < k; i++)
        CHECK_CLOSE(h[i], sqrt(dn) * (L[i] - La[i]) / sqrt(mv), 1e-9, 1e-15);
    const double *w1 = mtgrad_mtl_step_weights(s);
    CHECK(memcmp(w0, w1, (size_t)k * sizeof(double)) != 0, "lambda moved with the feedback");
    free(before);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

/* exact: h = M lambda from the k rows; forward with a small mu agrees with it. */
static void test_exact(void)
{
    double he[MAXK], gd[MAXK];
    double e = h_error(0, "linear:6", 3, "estimator=exact", he, gd);
    CHECK(e < 1e-6, "exact: h = G d (%.3g)", e);
    double hc[MAXK];
    e = h_error(0, "linear:6", 3, "estimator=central,mu=0.05", hc, NULL);
    CHECK(rel_err_d(hc, he, 3) < 1e-4, "central == exact on a quadratic (%.3g)", rel_err_d(hc, he, 3));
}

int main(void)
{
    make_data();
    for (int i = 0; i < MAXK * NB; i++) YC[i] = (float)(int)(3 * urand());
    check_passes("estimator=forward", 3, 2, 1);
    check_passes("estimator=central", 3, 3, 1);
    check_passes("estimator=step", 3, 2, 1);
    check_passes("estimator=step,reuse_next=1", 3, 1, 1);
    check_passes("estimator=exact", 3, 1, 3);
    test_quadratic();
    test_rates();
    test_dropout_stream();
    test_step_estimator();
    test_exact();
    mtgrad_optim_config adam = optim_of(MTGRAD_OPTIM_ADAM, 0.01);
    check_resume("marigold step reuse_next", 3, "marigold", "estimator=step,reuse_next=1", &adam,
                 NULL, 6);
    check_resume("marigold forward", 3, "marigold", "estimator=forward,mu=0.01", &adam, NULL, 6);
    return harness_report();
}
