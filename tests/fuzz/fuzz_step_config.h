/*
 * fuzz_step_config.h — the MTL step configurations of fuzz_step_state.c, shared with
 * make_seeds.c so that the seeds of tests/fuzz/corpus/step_state/ are states of exactly the
 * steps the target builds. Byte 0 of an input picks one: the low 4 bits the configuration
 * (modulo STEP_CONFIGS), bit 4 the number of tasks (k = 2 or 3). Every configuration with step
 * state of its own is here (nash_mtl's reused weights, task sampling's per-size aggregators,
 * MARIGOLD's kept losses, double sampling's cross-Gram weights), plus paths without any (rep,
 * AdaTask, loss-only), whose states must still round-trip and be refused for other paths.
 * The model is the MTL step tests' tiny MLP (4 inputs, trunk linear:6,relu,dropout so that
 * MARIGOLD's probes replay dropout masks, k heads linear:1 with MSE); the batches are fixed.
 */
#ifndef MTGRAD_FUZZ_STEP_CONFIG_H
#define MTGRAD_FUZZ_STEP_CONFIG_H

#include "mtgrad_train.h"

#include <stdint.h>
#include <string.h>

#define STEP_IN 4
#define STEP_NB 6

typedef struct step_config {
    const char *method, *params, *sample, *space;
    mtgrad_optim_kind optim;
} step_config;

static const step_config step_configs[] = {
    {"nash_mtl", "update_weights_every=3", NULL, NULL, MTGRAD_OPTIM_SGD},
    {"sdmgrad", NULL, "os:1", NULL, MTGRAD_OPTIM_SGD},
    {"cagrad", NULL, "fast:2", NULL, MTGRAD_OPTIM_SGD},
    {"marigold", "estimator=step,reuse_next=1", NULL, NULL, MTGRAD_OPTIM_ADAM},
    {"sdmgrad", "sampling=double", NULL, NULL, MTGRAD_OPTIM_SGD},
    {"ls", NULL, NULL, NULL, MTGRAD_OPTIM_ADATASK_ADAM},
    {"mgda", NULL, NULL, "rep", MTGRAD_OPTIM_SGD},
    {"marigold", "estimator=forward", NULL, NULL, MTGRAD_OPTIM_SGD},
    {"mgda", NULL, "os:2", NULL, MTGRAD_OPTIM_SGD},
    {"mean", NULL, NULL, NULL, MTGRAD_OPTIM_SGD},
    {"marigold", "estimator=exact", NULL, NULL, MTGRAD_OPTIM_SGD},
    {"ls", NULL, NULL, NULL, MTGRAD_OPTIM_ADATASK_ADAGRAD},
    {"nash_mtl", "update_weights_every=2", NULL, "rep", MTGRAD_OPTIM_SGD},
};
#define STEP_CONFIGS (sizeof step_configs / sizeof step_configs[0])

static const step_config *step_config_of(uint8_t b, int64_t *k)
{
    *k = 2 + ((b >> 4) & 1);
    return &step_configs[(b & 15) % STEP_CONFIGS];
}

static mtgrad_model *step_model(int64_t k)
{
    mtgrad_model_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.in_c = STEP_IN, sp.in_h = 1, sp.in_w = 1;
    sp.trunk = "linear:6,relu,dropout:0.25";
    sp.k = k;
    for (int64_t i = 0; i < k; i++) sp.heads[i] = "linear:1", sp.losses[i] = MTGRAD_LOSS_MSE;
    sp.max_batch = STEP_NB;
    mtgrad_model *m = NULL;
    return mtgrad_model_new(&m, &sp, 7, NULL, 0) == MTGRAD_OK ? m : NULL;
}

/* NULL if the step cannot be made (a broken configuration: the callers treat it as a bug). */
static mtgrad_mtl_step *step_of(mtgrad_model *m, const step_config *c)
{
    mtgrad_optim_config oc = mtgrad_optim_config_default(c->optim);
    oc.lr = 0.05;
    mtgrad_step_options o = mtgrad_step_options_default();
    o.task_sample = c->sample;
    o.grad_space = c->space;
    o.seed = 9;
    mtgrad_mtl_step *s = NULL;
    return mtgrad_mtl_step_new_ex(&s, m, c->method, c->params, &oc, &o, NULL, 0) == MTGRAD_OK
               ? s
               : NULL;
}

/* Three fixed batches (targets task-major, up to 3 tasks), from a small LCG. */
static float step_x[3][STEP_NB * STEP_IN], step_y[3][3 * STEP_NB];

static void step_batches(void)
{
    uint64_t u = 0x9E3779B97F4A7C15ull;
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < STEP_NB * STEP_IN; i++) {
            u = u * 6364136223846793005ull + 1442695040888963407ull;
            step_x[b][i] = (float)((double)(u >> 11) / 9007199254740992.0 * 2 - 1);
        }
        for (int i = 0; i < 3 * STEP_NB; i++) {
            u = u * 6364136223846793005ull + 1442695040888963407ull;
            step_y[b][i] = (float)((double)(u >> 11) / 9007199254740992.0 - 0.5);
        }
    }
}

/* One step on the fixed batches (three of them for a step that reads three). */
static mtgrad_status step_once(mtgrad_mtl_step *s)
{
    const float *xs[3] = {step_x[0], step_x[1], step_x[2]};
    const float *ys[3] = {step_y[0], step_y[1], step_y[2]};
    return mtgrad_mtl_step_run_batches(s, xs, ys, mtgrad_mtl_step_batches(s), STEP_NB, NULL,
                                       NULL);
}

#endif
