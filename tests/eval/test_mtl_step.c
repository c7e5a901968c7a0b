/* test_mtl_step.c — the MTL step against separate computations: ls equals a manual backward of
 * sum w_i L_i plus an optimizer step (bit for bit); for mgda and cagrad the rows of G equal
 * separate per-task backward passes and the trunk gradient equals the method's direction on
 * those rows, recomputed here (closed forms for k = 2, and a fresh aggregator); the head
 * convention (mgda: w_i grad L_i, cagrad: grad L_i); FAMO's state advancing through the update;
 * clipping taken over from max_norm; DWA's per-epoch weights; thread-count independence;
 * errors. */
#include "harness.h"
#include "mtgrad_train.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IN 4
#define NB 8

static float X[NB * IN], Y[3 * NB];

static uint64_t lcg = 12345;
static double urand(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(lcg >> 11) / 9007199254740992.0;
}

static void make_data(void)
{
    for (int i = 0; i < NB * IN; i++) X[i] = (float)(2 * urand() - 1);
    for (int i = 0; i < 3 * NB; i++) Y[i] = (float)(2 * urand() - 1);
}

static mtgrad_model *tiny(int64_t k, uint64_t seed)
{
    mtgrad_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_c = IN, s.in_h = 1, s.in_w = 1;
    s.trunk = "linear:6,relu";
    s.k = k;
    for (int64_t i = 0; i < k; i++) s.heads[i] = "linear:1", s.losses[i] = MTGRAD_LOSS_MSE;
    s.max_batch = NB;
    mtgrad_model *m = NULL;
    char err[256];
    mtgrad_status st = mtgrad_model_new(&m, &s, seed, err, sizeof err);
    CHECK(st == MTGRAD_OK, "model_new: %s", err);
    return m;
}

static mtgrad_optim_config sgd(double lr)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(MTGRAD_OPTIM_SGD);
    c.lr = lr;
    return c;
}

static mtgrad_mtl_step *new_step(mtgrad_model *m, const char *method, const char *params,
                                 const mtgrad_optim_config *o)
{
    mtgrad_mtl_step *s = NULL;
    char err[256] = "";
    mtgrad_status st = mtgrad_mtl_step_new(&s, m, method, params, o, err, sizeof err);
    CHECK(st == MTGRAD_OK, "mtl_step_new(%s): %s", method, err);
    return s;
}

static double rel_err(const float *a, const double *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t j = 0; j < n; j++) {
        num += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
        den += b[j] * b[j];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* --------------------------------------------------------------- ls == manual */

static void test_ls_manual(const char *params, const double *w)
{
    mtgrad_model *a = tiny(3, 7), *b = tiny(3, 7);
    mtgrad_optim_config oc = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    mtgrad_mtl_step *s = new_step(a, "ls", params, &oc);
    int64_t P = mtgrad_model_num_params(b);
    float *grad = calloc((size_t)P, sizeof *grad);
    mtgrad_optimizer *o = NULL;
    CHECK(mtgrad_optimizer_new(&o, &oc, P, NULL, 0) == MTGRAD_OK, "optimizer_new");
    double L[3], Lb[3];
    for (int it = 0; it < 3; it++) {
        CHECK(mtgrad_mtl_step_run(s, X, Y, NB, L, NULL) == MTGRAD_OK, "ls step: %s",
              mtgrad_mtl_step_error(s));
        CHECK(mtgrad_model_forward(b, X, Y, NB, 1, Lb) == MTGRAD_OK, "forward");
        CHECK(mtgrad_model_backward_weighted(b, w, grad) == MTGRAD_OK, "backward_weighted");
        CHECK(mtgrad_optimizer_step(o, mtgrad_model_params(b), grad) == MTGRAD_OK, "step");
        CHECK(memcmp(L, Lb, sizeof L) == 0, "losses differ at step %d", it);
    }
    CHECK(memcmp(mtgrad_model_params(a), mtgrad_model_params(b), (size_t)P * sizeof(float)) == 0,
          "ls (%s) step != manual backward + Adam", params);
    CHECK(mtgrad_mtl_step_jacobian(s) == NULL && mtgrad_mtl_step_loss_only(s), "ls builds no G");
    CHECK(mtgrad_mtl_step_count(s) == 3, "3 steps counted");
    free(grad);
    mtgrad_optimizer_free(o);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- G rows, directions, heads */

typedef struct manual {
    int64_t d, P;
    float *G;      /* k x d from separate backward_task passes */
    float *heads;  /* P: head slices of the same passes */
    double L[3];
} manual;

static void manual_grads(mtgrad_model *b, int64_t k, manual *mg)
{
    mg->d = mtgrad_model_num_shared(b);
    mg->P = mtgrad_model_num_params(b);
    mg->G = calloc((size_t)(k * mg->d), sizeof(float));
    mg->heads = calloc((size_t)mg->P, sizeof(float));
    CHECK(mtgrad_model_forward(b, X, Y, NB, 1, mg->L) == MTGRAD_OK, "forward");
    for (int64_t i = 0; i < k; i++)
        CHECK(mtgrad_model_backward_task(b, i, mg->G + i * mg->d, mg->heads) == MTGRAD_OK,
              "backward_task %lld", (long long)i);
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += (double)a[j] * (double)b[j];
    return s;
}

/* MGDA for k = 2 in closed form: x = (g22 - g12) / (g11 + g22 - 2 g12) clipped to [0, 1]. */
static void mgda2(const manual *mg, double w[2])
{
    const float *g1 = mg->G, *g2 = mg->G + mg->d;
    double g11 = dot(g1, g1, mg->d), g22 = dot(g2, g2, mg->d), g12 = dot(g1, g2, mg->d);
    double x = (g22 - g12) / (g11 + g22 - 2 * g12);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    w[0] = x, w[1] = 1 - x;
}

/* CAGrad for k = 2 (LibMTL form, rescale 1): the 1-D convex dual over x in [0, 1] solved by
 * golden-section search; w = (1/2 + lam (x, 1-x)) / (1 + c^2). */
static double cagrad_f(double x, double g11, double g22, double g12, double phi)
{
    double a = x, b = 1 - x;
    double q = a * a * g11 + b * b * g22 + 2 * a * b * g12;
    double lin = 0.5 * (a * (g11 + g12) + b * (g12 + g22));
    return lin + phi * sqrt(q + 1e-8);
}

static void cagrad2(const manual *mg, double c, double w[2])
{
    const float *g1 = mg->G, *g2 = mg->G + mg->d;
    double g11 = dot(g1, g1, mg->d), g22 = dot(g2, g2, mg->d), g12 = dot(g1, g2, mg->d);
    double phi = c * sqrt((g11 + g22 + 2 * g12) / 4 + 1e-8) + 1e-8;
    double lo = 0, hi = 1, gr = (sqrt(5.0) - 1) / 2;
    for (int it = 0; it < 200; it++) {
        double m1 = hi - gr * (hi - lo), m2 = lo + gr * (hi - lo);
        if (cagrad_f(m1, g11, g22, g12, phi) < cagrad_f(m2, g11, g22, g12, phi)) hi = m2;
        else lo = m1;
    }
    double x = (lo + hi) / 2;
    double q = x * x * g11 + (1 - x) * (1 - x) * g22 + 2 * x * (1 - x) * g12;
    double lam = phi / (sqrt(q) + 1e-8);
    w[0] = (0.5 + lam * x) / (1 + c * c);
    w[1] = (0.5 + lam * (1 - x)) / (1 + c * c);
}

/* The step's gradient: trunk == G^T w_expected, head i == scale_i * grad L_i. */
static void check_grad(mtgrad_mtl_step *s, mtgrad_model *a, const manual *mg, int64_t k,
                       const double *w, int heads_weighted, const char *what)
{
    const float *g = mtgrad_mtl_step_grad(s);
    double *dir = calloc((size_t)mg->d, sizeof(double));
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < mg->d; j++) dir[j] += w[i] * (double)mg->G[i * mg->d + j];
    double e = rel_err(g, dir, mg->d);
    CHECK(e < 1e-5, "%s: trunk gradient vs G^T w: relative error %.3g", what, e);
    for (int64_t i = 0; i < k; i++) {
        int64_t off = mtgrad_model_head_offset(a, i), n = mtgrad_model_head_size(a, i);
        double *want = calloc((size_t)n, sizeof(double));
        for (int64_t j = 0; j < n; j++)
            want[j] = (heads_weighted ? w[i] : 1.0) * (double)mg->heads[off + j];
        e = rel_err(g + off, want, n);
        CHECK(e < 1e-6, "%s: head %lld %s: relative error %.3g", what, (long long)i,
              heads_weighted ? "w_i grad L_i" : "grad L_i", e);
        free(want);
    }
    free(dir);
}

static void test_jacobian_method(const char *method, const char *params, int heads_weighted)
{
    mtgrad_model *a = tiny(2, 11), *b = tiny(2, 11);
    mtgrad_optim_config oc = sgd(0.05);
    mtgrad_mtl_step *s = new_step(a, method, params, &oc);
    int64_t P = mtgrad_model_num_params(a);
    float *before = malloc((size_t)P * sizeof(float));
    memcpy(before, mtgrad_model_params(a), (size_t)P * sizeof(float));
    manual mg;
    manual_grads(b, 2, &mg);
    double L[2];
    CHECK(mtgrad_mtl_step_run(s, X, Y, NB, L, NULL) == MTGRAD_OK, "%s step: %s", method,
          mtgrad_mtl_step_error(s));
    CHECK(memcmp(mtgrad_mtl_step_jacobian(s), mg.G, (size_t)(2 * mg.d) * sizeof(float)) == 0,
          "%s: rows of G != separate backward_task passes", method);
    CHECK(L[0] == mg.L[0] && L[1] == mg.L[1], "%s: losses", method);

    double w[2];
    if (strcmp(method, "mgda") == 0) mgda2(&mg, w);
    else cagrad2(&mg, 0.4, w);
    check_grad(s, a, &mg, 2, w, heads_weighted, method);
    const double *sw = mtgrad_mtl_step_weights(s);
    CHECK(sw && fabs(sw[0] - w[0]) < 1e-6 && fabs(sw[1] - w[1]) < 1e-6,
          "%s weights %g %g vs closed form %g %g", method, sw ? sw[0] : NAN, sw ? sw[1] : NAN,
          w[0], w[1]);

    /* a fresh aggregator on the separately computed rows gives the same direction */
    mtgrad_aggregator *ag = NULL;
    CHECK(mtgrad_aggregator_new(&ag, method, 2, params, NULL, 0) == MTGRAD_OK, "aggregator");
    float *dir = malloc((size_t)mg.d * sizeof(float));
    CHECK(mtgrad_aggregate_f32(ag, mg.G, 2, mg.d, mg.d, mg.L, dir, NULL) == MTGRAD_OK, "aggregate");
    CHECK(memcmp(dir, mtgrad_mtl_step_grad(s), (size_t)mg.d * sizeof(float)) == 0,
          "%s: trunk gradient != the aggregator's direction on the same rows", method);

    /* SGD: p_after = p_before - lr * grad, every parameter */
    const float *g = mtgrad_mtl_step_grad(s), *after = mtgrad_model_params(a);
    int64_t bad = -1;
    for (int64_t j = 0; j < P && bad < 0; j++)
        if (fabs((double)after[j] - ((double)before[j] - 0.05 * (double)g[j])) > 1e-6) bad = j;
    CHECK(bad < 0, "%s: SGD update of parameter %lld", method, (long long)bad);
    mtgrad_aggregator_free(ag);
    free(dir);
    free(before);
    free(mg.G);
    free(mg.heads);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- graddrop: no weights */

static void test_no_weights(void)
{
    mtgrad_model *a = tiny(2, 5), *b = tiny(2, 5);
    mtgrad_optim_config oc = sgd(0.05);
    mtgrad_mtl_step *s = new_step(a, "graddrop", NULL, &oc);
    manual mg;
    manual_grads(b, 2, &mg);
    CHECK(mtgrad_mtl_step_run(s, X, Y, NB, NULL, NULL) == MTGRAD_OK, "graddrop step: %s",
          mtgrad_mtl_step_error(s));
    CHECK(mtgrad_mtl_step_weights(s) == NULL, "graddrop has no weights");
    double one[2] = {1, 1};
    const float *g = mtgrad_mtl_step_grad(s);
    for (int64_t i = 0; i < 2; i++) {
        int64_t off = mtgrad_model_head_offset(a, i), n = mtgrad_model_head_size(a, i);
        CHECK(memcmp(g + off, mg.heads + off, (size_t)n * sizeof(float)) == 0,
              "graddrop head %lld: unweighted grad L_i", (long long)i);
    }
    (void)one;
    free(mg.G);
    free(mg.heads);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- FAMO */

static void test_famo(void)
{
    mtgrad_model *a = tiny(2, 3), *b = tiny(2, 3);
    mtgrad_optim_config oc = sgd(0.05);
    const char *params = "gamma=0.01,w_lr=0.5";
    mtgrad_mtl_step *s = new_step(a, "famo", params, &oc);
    mtgrad_aggregator *ref = NULL;
    CHECK(mtgrad_aggregator_new(&ref, "famo", 2, params, NULL, 0) == MTGRAD_OK, "famo aggregator");
    int64_t P = mtgrad_model_num_params(b);
    float *grad = calloc((size_t)P, sizeof(float));
    mtgrad_optimizer *o = NULL;
    CHECK(mtgrad_optimizer_new(&o, &oc, P, NULL, 0) == MTGRAD_OK, "optimizer");
    for (int it = 0; it < 4; it++) {
        /* the reference loop: weights from the losses, backward, step, losses again, update */
        double L[2], La[2], w[2];
        CHECK(mtgrad_model_forward(b, X, Y, NB, 1, L) == MTGRAD_OK, "forward");
        CHECK(mtgrad_weights_from_gram(ref, NULL, 2, L, w) == MTGRAD_OK, "famo weights");
        CHECK(mtgrad_model_backward_weighted(b, w, grad) == MTGRAD_OK, "backward");
        CHECK(mtgrad_optimizer_step(o, mtgrad_model_params(b), grad) == MTGRAD_OK, "opt");
        CHECK(mtgrad_model_forward(b, X, Y, NB, 1, La) == MTGRAD_OK, "forward after");
        CHECK(mtgrad_aggregator_update(ref, La, 2) == MTGRAD_OK, "update");
        CHECK(mtgrad_mtl_step_run(s, X, Y, NB, NULL, NULL) == MTGRAD_OK, "famo step: %s",
              mtgrad_mtl_step_error(s));
        const double *sw = mtgrad_mtl_step_weights(s);
        CHECK(sw[0] == w[0] && sw[1] == w[1], "famo weights at step %d", it);
        if (it > 0) CHECK(fabs(w[0] - 0.5) > 1e-9, "famo weights moved away from uniform");
    }
    size_t la = 0, lb = 0;
    mtgrad_aggregator_save(mtgrad_mtl_step_aggregator(s), NULL, &la);
    mtgrad_aggregator_save(ref, NULL, &lb);
    unsigned char *sa = malloc(la), *sb = malloc(lb);
    mtgrad_aggregator_save(mtgrad_mtl_step_aggregator(s), sa, &la);
    mtgrad_aggregator_save(ref, sb, &lb);
    CHECK(la == lb && memcmp(sa, sb, la) == 0, "famo state after 4 steps == the reference loop's");
    CHECK(memcmp(mtgrad_model_params(a), mtgrad_model_params(b), (size_t)P * sizeof(float)) == 0,
          "famo parameters == the reference loop's");
    free(sa);
    free(sb);
    free(grad);
    mtgrad_optimizer_free(o);
    mtgrad_aggregator_free(ref);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* max_norm: the trunk gradient is clipped to the norm, the heads keep w_i grad L_i. */
static void test_clip(void)
{
    mtgrad_model *a = tiny(2, 3), *b = tiny(2, 3);
    mtgrad_optim_config oc = sgd(0.05);
    mtgrad_mtl_step *s = new_step(a, "famo", "max_norm=0.001", &oc);
    char v[32];
    mtgrad_aggregator_get_param(mtgrad_mtl_step_aggregator(s), "max_norm", v, sizeof v);
    CHECK(strtod(v, NULL) == 0, "the aggregator's max_norm is taken over (%s)", v);
    int64_t P = mtgrad_model_num_params(b), d = mtgrad_model_num_shared(b);
    float *grad = calloc((size_t)P, sizeof(float));
    double L[2], w[2];
    mtgrad_aggregator *ref = NULL;
    CHECK(mtgrad_aggregator_new(&ref, "famo", 2, NULL, NULL, 0) == MTGRAD_OK, "famo");
    CHECK(mtgrad_model_forward(b, X, Y, NB, 1, L) == MTGRAD_OK, "forward");
    CHECK(mtgrad_weights_from_gram(ref, NULL, 2, L, w) == MTGRAD_OK, "famo weights");
    mtgrad_aggregator_free(ref);
    CHECK(mtgrad_model_backward_weighted(b, w, grad) == MTGRAD_OK, "backward");
    CHECK(mtgrad_mtl_step_run(s, X, Y, NB, NULL, NULL) == MTGRAD_OK, "step");
    const float *g = mtgrad_mtl_step_grad(s);
    double n0 = sqrt(dot(grad, grad, d)), n1 = sqrt(dot(g, g, d));
    CHECK(n0 > 0.01, "the unclipped trunk gradient is larger than max_norm (%g)", n0);
    CHECK_CLOSE(n1, 0.001, 1e-4, 0);
    double cosang = dot(g, grad, d) / (n0 * n1);
    CHECK_CLOSE(cosang, 1.0, 0, 1e-6);
    CHECK(memcmp(g + d, grad + d, (size_t)(P - d) * sizeof(float)) == 0, "heads not clipped");
    free(grad);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- DWA per epoch */

static void test_dwa(void)
{
    mtgrad_model *a = tiny(3, 9);
    mtgrad_optim_config oc = sgd(0.01);
    mtgrad_mtl_step *s = new_step(a, "dwa", "T=2", &oc);
    double ep[3][3] = {{1.0, 2.0, 0.5}, {0.8, 1.9, 0.25}, {0.7, 1.0, 0.2}};
    for (int e = 0; e < 3; e++) {
        CHECK(mtgrad_mtl_step_begin_epoch(s, e) == MTGRAD_OK, "begin_epoch: %s",
              mtgrad_mtl_step_error(s));
        CHECK(mtgrad_mtl_step_run(s, X, Y, NB, NULL, NULL) == MTGRAD_OK, "dwa step");
        const double *w = mtgrad_mtl_step_weights(s);
        double want[3] = {1, 1, 1};
        if (e == 2) { /* mtan: w_i = k softmax_i(L_{e-1,i} / L_{e-2,i} / T) */
            double z = 0;
            for (int i = 0; i < 3; i++) z += exp(ep[1][i] / ep[0][i] / 2);
            for (int i = 0; i < 3; i++) want[i] = 3 * exp(ep[1][i] / ep[0][i] / 2) / z;
        }
        for (int i = 0; i < 3; i++) CHECK_CLOSE(w[i], want[i], 1e-12, 1e-12);
        CHECK(mtgrad_mtl_step_end_epoch(s, ep[e]) == MTGRAD_OK, "end_epoch");
    }
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
}

/* --------------------------------------------------------------- threads */

static void run_threads(int threads, float *out, int64_t P, const char *method)
{
    mtgrad_nn_set_threads(threads);
    mtgrad_model *a = tiny(3, 21);
    mtgrad_optim_config oc = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    mtgrad_mtl_step *s = new_step(a, method, NULL, &oc);
    char t[8];
    snprintf(t, sizeof t, "%d", threads);
    mtgrad_aggregator_set_param(mtgrad_mtl_step_aggregator(s), "threads", t);
    for (int it = 0; it < 6; it++)
        CHECK(mtgrad_mtl_step_run(s, X, Y, NB, NULL, NULL) == MTGRAD_OK, "step");
    memcpy(out, mtgrad_model_params(a), (size_t)P * sizeof(float));
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_nn_set_threads(1);
}

static void test_threads(const char *method)
{
    mtgrad_model *m = tiny(3, 21);
    int64_t P = mtgrad_model_num_params(m);
    mtgrad_model_free(m);
    float *p1 = malloc((size_t)P * sizeof(float)), *p2 = malloc((size_t)P * sizeof(float));
    run_threads(1, p1, P, method);
    run_threads(2, p2, P, method);
    CHECK(memcmp(p1, p2, (size_t)P * sizeof(float)) == 0, "%s: 1 vs 2 threads differ", method);
    free(p1);
    free(p2);
}

/* --------------------------------------------------------------- errors */

static void test_errors(void)
{
    mtgrad_model *a = tiny(3, 1);
    mtgrad_optim_config oc = sgd(0.1);
    mtgrad_mtl_step *s = NULL;
    char err[256] = "";
    CHECK(mtgrad_mtl_step_new(&s, NULL, "ls", NULL, &oc, err, sizeof err) == MTGRAD_E_INVAL && !s,
          "NULL model");
    CHECK(mtgrad_mtl_step_new(&s, a, "nope", NULL, &oc, err, sizeof err) == MTGRAD_E_INVAL &&
          strstr(err, "nope"), "unknown method: %s", err);
    CHECK(mtgrad_mtl_step_new(&s, a, "cagrad", "c=-1", &oc, err, sizeof err) == MTGRAD_E_INVAL,
          "bad parameter");
    mtgrad_optim_config bad = sgd(0.1);
    bad.lr = -1;
    CHECK(mtgrad_mtl_step_new(&s, a, "ls", NULL, &bad, err, sizeof err) == MTGRAD_E_INVAL,
          "bad optimizer");
    s = new_step(a, "mgda", NULL, &oc);
    int64_t P = mtgrad_model_num_params(a);
    float *before = malloc((size_t)P * sizeof(float));
    memcpy(before, mtgrad_model_params(a), (size_t)P * sizeof(float));
    float Yn[3 * NB];
    memcpy(Yn, Y, sizeof Yn);
    Yn[NB + 2] = NAN;
    CHECK(mtgrad_mtl_step_run(s, X, Yn, NB, NULL, NULL) == MTGRAD_E_NONFINITE, "NaN target");
    CHECK(strstr(mtgrad_mtl_step_error(s), "task 1") != NULL, "message names the task: %s",
          mtgrad_mtl_step_error(s));
    CHECK(mtgrad_mtl_step_run(s, NULL, Y, NB, NULL, NULL) == MTGRAD_E_INVAL, "NULL x");
    CHECK(mtgrad_mtl_step_run(s, X, Y, NB + 1, NULL, NULL) == MTGRAD_E_SHAPE, "n > max_batch");
    CHECK(mtgrad_mtl_step_run(s, X, Y, 0, NULL, NULL) == MTGRAD_E_SHAPE, "n = 0");
    CHECK(mtgrad_mtl_step_run(NULL, X, Y, NB, NULL, NULL) == MTGRAD_E_INVAL, "NULL step");
    CHECK(memcmp(before, mtgrad_model_params(a), (size_t)P * sizeof(float)) == 0,
          "failed steps leave the parameters unchanged");
    CHECK(mtgrad_mtl_step_begin_epoch(s, -1) == MTGRAD_E_INVAL, "negative epoch");
    CHECK(mtgrad_mtl_step_end_epoch(s, NULL) == MTGRAD_E_INVAL, "NULL losses");
    double t[MTGRAD_TIME_COUNT];
    CHECK(mtgrad_mtl_step_run(s, X, Y, NB, NULL, t) == MTGRAD_OK, "good step after errors");
    double parts = 0;
    for (int p = 0; p < MTGRAD_TIME_TOTAL; p++) {
        CHECK(t[p] >= 0, "time %s >= 0", mtgrad_time_name(p));
        parts += t[p];
    }
    CHECK(parts <= t[MTGRAD_TIME_TOTAL] * 1.0001 + 1e-6, "phases add up to at most the total");
    CHECK(mtgrad_time_name(MTGRAD_TIME_COUNT) == NULL, "time name out of range");
    mtgrad_mtl_step_free(s);
    mtgrad_mtl_step_free(NULL);
    free(before);
    mtgrad_model_free(a);
}

int main(void)
{
    make_data();
    double ones[3] = {1, 1, 1}, pw[3] = {0.5, 2, 1};
    test_ls_manual("", ones);
    test_ls_manual("weights=0.5:2:1", pw);
    test_jacobian_method("mgda", NULL, 1);
    test_jacobian_method("cagrad", "c=0.4", 0);
    test_no_weights();
    test_famo();
    test_clip();
    test_dwa();
    test_threads("mgda");
    test_threads("pcgrad");
    test_errors();
    return harness_report();
}
