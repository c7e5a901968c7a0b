/* mtl_step_util.h — what the MTL step tests share: a small data set, a tiny MLP, creating a step
 * with options, counting a step's passes, and the resume check (n steps in one go against
 * n/2 steps, everything saved and loaded into fresh objects, n/2 more: same bits).
 * Include after harness.h. */
#ifndef MTGRAD_TEST_MTL_STEP_UTIL_H
#define MTGRAD_TEST_MTL_STEP_UTIL_H

#include "mtgrad_train.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define IN 4
#define NB 8
#define MAXK 6

static float X[3][NB * IN], Y[3][MAXK * NB]; /* three independent batches */

static uint64_t util_lcg = 12345;
static double urand(void)
{
    util_lcg = util_lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(util_lcg >> 11) / 9007199254740992.0;
}

static void make_data(void)
{
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < NB * IN; i++) X[b][i] = (float)(2 * urand() - 1);
        for (int i = 0; i < MAXK * NB; i++) Y[b][i] = (float)(2 * urand() - 1);
    }
}

/* trunk "linear:6,relu" (or `trunk`), k heads "linear:1" with MSE. */
static mtgrad_model *model_of(const char *trunk, int64_t k, uint64_t seed)
{
    mtgrad_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_c = IN, s.in_h = 1, s.in_w = 1;
    s.trunk = trunk ? trunk : "linear:6,relu";
    s.k = k;
    for (int64_t i = 0; i < k; i++) s.heads[i] = "linear:1", s.losses[i] = MTGRAD_LOSS_MSE;
    s.max_batch = NB;
    mtgrad_model *m = NULL;
    char err[256];
    mtgrad_status st = mtgrad_model_new(&m, &s, seed, err, sizeof err);
    CHECK(st == MTGRAD_OK, "model_new: %s", err);
    return m;
}

static inline mtgrad_model *tiny(int64_t k, uint64_t seed) { return model_of(NULL, k, seed); }

static mtgrad_optim_config optim_of(mtgrad_optim_kind kind, double lr)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(kind);
    c.lr = lr;
    return c;
}

static mtgrad_mtl_step *step_ex(mtgrad_model *m, const char *method, const char *params,
                                const mtgrad_optim_config *o, const char *sample,
                                const char *space, uint64_t seed)
{
    mtgrad_step_options opt = mtgrad_step_options_default();
    opt.task_sample = sample;
    opt.grad_space = space;
    opt.seed = seed;
    mtgrad_mtl_step *s = NULL;
    char err[256] = "";
    mtgrad_status st = mtgrad_mtl_step_new_ex(&s, m, method, params, o, &opt, err, sizeof err);
    CHECK(st == MTGRAD_OK, "mtl_step_new_ex(%s, %s, %s, %s): %s", method, params ? params : "",
          sample ? sample : "", space ? space : "", err);
    return s;
}

/* One step on batch 0 (or batches 0, 1, 2 for a step that reads three), its passes in *c. */
static mtgrad_status run_counted(mtgrad_mtl_step *s, mtgrad_model *m, mtgrad_pass_counts *c)
{
    const float *xs[3] = {X[0], X[1], X[2]}, *ys[3] = {Y[0], Y[1], Y[2]};
    mtgrad_model_reset_passes(m);
    mtgrad_status st = mtgrad_mtl_step_run_batches(s, xs, ys, mtgrad_mtl_step_batches(s), NB,
                                                   NULL, NULL);
    mtgrad_model_passes(m, c);
    return st;
}

/* Batch b of step t: the three batches in turn, so that resumed runs see varying data. */
static mtgrad_status run_step_t(mtgrad_mtl_step *s, int t)
{
    int b = t % 3;
    const float *xs[3] = {X[b], X[(b + 1) % 3], X[(b + 2) % 3]};
    const float *ys[3] = {Y[b], Y[(b + 1) % 3], Y[(b + 2) % 3]};
    return mtgrad_mtl_step_run_batches(s, xs, ys, mtgrad_mtl_step_batches(s), NB, NULL, NULL);
}

typedef struct saved {
    unsigned char *agg, *opt, *step;
    size_t la, lo, ls;
    uint64_t rng[4];
    float *params;
    int64_t steps, warnings;
} saved;

static unsigned char *save_bytes(mtgrad_status (*f)(const void *, void *, size_t *),
                                 const void *obj, size_t *len)
{
    *len = 0;
    CHECK(f(obj, NULL, len) == MTGRAD_OK, "size of a state");
    unsigned char *b = malloc(*len ? *len : 1);
    CHECK(f(obj, b, len) == MTGRAD_OK, "save a state");
    return b;
}

static mtgrad_status agg_save(const void *o, void *b, size_t *l) { return mtgrad_aggregator_save(o, b, l); }
static mtgrad_status opt_save(const void *o, void *b, size_t *l) { return mtgrad_optimizer_save(o, b, l); }
static mtgrad_status stp_save(const void *o, void *b, size_t *l) { return mtgrad_mtl_step_save(o, b, l); }

/* n steps straight vs n/2, save, fresh model + step, load, n - n/2: the same parameters. */
static void check_resume(const char *what, int64_t k, const char *method, const char *params,
                         const mtgrad_optim_config *oc, const char *sample, int n)
{
    mtgrad_model *a = tiny(k, 31);
    mtgrad_mtl_step *sa = step_ex(a, method, params, oc, sample, NULL, 5);
    for (int t = 0; t < n; t++)
        CHECK(run_step_t(sa, t) == MTGRAD_OK, "%s straight step %d: %s", what, t,
              mtgrad_mtl_step_error(sa));

    mtgrad_model *b = tiny(k, 31);
    mtgrad_mtl_step *sb = step_ex(b, method, params, oc, sample, NULL, 5);
    for (int t = 0; t < n / 2; t++) CHECK(run_step_t(sb, t) == MTGRAD_OK, "%s step %d", what, t);
    saved sv;
    sv.agg = save_bytes(agg_save, mtgrad_mtl_step_aggregator(sb), &sv.la);
    sv.opt = save_bytes(opt_save, mtgrad_mtl_step_optimizer(sb), &sv.lo);
    sv.step = save_bytes(stp_save, sb, &sv.ls);
    mtgrad_model_get_rng(b, sv.rng);
    int64_t P = mtgrad_model_num_params(b);
    sv.params = malloc((size_t)P * sizeof(float));
    memcpy(sv.params, mtgrad_model_params(b), (size_t)P * sizeof(float));
    sv.steps = mtgrad_mtl_step_count(sb);
    sv.warnings = mtgrad_mtl_step_solver_warnings(sb);
    mtgrad_mtl_step_free(sb);
    mtgrad_model_free(b);

    mtgrad_model *c = tiny(k, 99); /* other initial parameters: everything comes from the save */
    mtgrad_mtl_step *sc = step_ex(c, method, params, oc, sample, NULL, 5);
    memcpy(mtgrad_model_params(c), sv.params, (size_t)P * sizeof(float));
    mtgrad_model_set_rng(c, sv.rng);
    CHECK(mtgrad_aggregator_load(mtgrad_mtl_step_aggregator(sc), sv.agg, sv.la) == MTGRAD_OK,
          "%s: aggregator load", what);
    CHECK(mtgrad_optimizer_load(mtgrad_mtl_step_optimizer(sc), sv.opt, sv.lo) == MTGRAD_OK,
          "%s: optimizer load", what);
    CHECK(mtgrad_mtl_step_load(sc, sv.step, sv.ls) == MTGRAD_OK, "%s: step load", what);
    mtgrad_mtl_step_set_counters(sc, sv.steps, sv.warnings);
    for (int t = n / 2; t < n; t++)
        CHECK(run_step_t(sc, t) == MTGRAD_OK, "%s resumed step %d: %s", what, t,
              mtgrad_mtl_step_error(sc));
    CHECK(memcmp(mtgrad_model_params(a), mtgrad_model_params(c), (size_t)P * sizeof(float)) == 0,
          "%s: %d steps != %d + save/load + %d", what, n, n / 2, n - n / 2);
    free(sv.agg);
    free(sv.opt);
    free(sv.step);
    free(sv.params);
    mtgrad_mtl_step_free(sa);
    mtgrad_mtl_step_free(sc);
    mtgrad_model_free(a);
    mtgrad_model_free(c);
}

static inline double rel_err_d(const double *a, const double *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t j = 0; j < n; j++) {
        num += (a[j] - b[j]) * (a[j] - b[j]);
        den += b[j] * b[j];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Per-task trunk rows and head gradients of model m (params as they are) on batch 0. */
static inline void rows_by_hand(mtgrad_model *m, int64_t k, float *G, float *heads, double *L)
{
    int64_t d = mtgrad_model_num_shared(m);
    CHECK(mtgrad_model_forward(m, X[0], Y[0], NB, 1, L) == MTGRAD_OK, "forward by hand");
    for (int64_t i = 0; i < k; i++)
        CHECK(mtgrad_model_backward_task(m, i, G + i * d, heads) == MTGRAD_OK, "backward_task");
}

#endif
