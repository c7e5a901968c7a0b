/* test_alloc_fail_nn.c — allocation-failure injection over the engine's public paths:
 * mtgrad_model_new (conv + linear + dropout), mtgrad_optimizer_new / _load, mtgrad_bench_load
 * (mmoe; multifashion when Fashion-MNIST is installed), mtgrad_mtl_step_new (Gram, Jacobian,
 * loss-only, per-epoch and list-parameter methods) and mtgrad_train_run (without and with a
 * checkpoint directory, and resuming). Each path's allocations are counted on a successful call,
 * then each is made to fail in turn: the status must be MTGRAD_E_NOMEM, *out NULL, an existing
 * object unchanged and usable. Leaks show under LeakSanitizer (sanitizer build). The training
 * step itself (mtgrad_mtl_step_run) must not allocate. Single-threaded (global counter). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "internal.h"
#include "alloc_sweep.h"
#include "mtgrad_train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- model */

#define NB 4

static mtgrad_model_spec conv_spec(void)
{
    mtgrad_model_spec s;
    memset(&s, 0, sizeof s);
    s.in_c = 1, s.in_h = 8, s.in_w = 8;
    s.trunk = "conv:3:3,relu,maxpool:2,dropout2d:0.2,flatten,linear:6,relu,dropout:0.3";
    s.k = 2;
    s.heads[0] = "linear:3", s.losses[0] = MTGRAD_LOSS_CE;
    s.heads[1] = "linear:1", s.losses[1] = MTGRAD_LOSS_MSE;
    s.max_batch = NB;
    return s;
}

typedef struct nn_ctx {
    mtgrad_model *m;
    mtgrad_optimizer *o;
    mtgrad_bench *b;
    mtgrad_mtl_step *s;
    mtgrad_train_result *r;
    const char *method, *params, *bench, *bench_params;
    mtgrad_optim_config oc;
    mtgrad_step_options so; /* task sampling / gradient space of the step paths */
    unsigned char state[4096];
    size_t state_len;
    mtgrad_train_config tc;
    char name[128];
} nn_ctx;

static float X[NB * 64], Y[2 * NB];

static mtgrad_status model_call(void *v)
{
    nn_ctx *c = v;
    mtgrad_model_spec s = conv_spec();
    char err[256];
    return mtgrad_model_new(&c->m, &s, 7, err, sizeof err);
}

static void model_done(void *v, mtgrad_status s)
{
    nn_ctx *c = v;
    if (s != MTGRAD_OK) CHECK(c->m == NULL, "model_new: *out set on failure");
    mtgrad_model_free(c->m);
    c->m = NULL;
}

/* ---------------------------------------------------------------- optimizer */

static mtgrad_status optim_call(void *v)
{
    nn_ctx *c = v;
    char err[256];
    return mtgrad_optimizer_new(&c->o, &c->oc, 100, err, sizeof err);
}

static void optim_done(void *v, mtgrad_status s)
{
    nn_ctx *c = v;
    if (s != MTGRAD_OK) CHECK(c->o == NULL, "optimizer_new: *out set on failure");
    mtgrad_optimizer_free(c->o);
    c->o = NULL;
}

static void optim_load_prepare(void *v)
{
    nn_ctx *c = v;
    char err[256];
    CHECK(mtgrad_optimizer_new(&c->o, &c->oc, 100, err, sizeof err) == MTGRAD_OK, "optimizer");
    c->state_len = sizeof c->state;
    CHECK(mtgrad_optimizer_save(c->o, c->state, &c->state_len) == MTGRAD_OK, "optimizer_save");
}

static mtgrad_status optim_load_call(void *v)
{
    nn_ctx *c = v;
    return mtgrad_optimizer_load(c->o, c->state, c->state_len);
}

static void optim_load_done(void *v, mtgrad_status s)
{
    nn_ctx *c = v;
    if (s != MTGRAD_OK && c->o) {
        float p[100] = {0}, g[100];
        for (int i = 0; i < 100; i++) g[i] = 0.01f * (float)i;
        CHECK(mtgrad_optimizer_step(c->o, p, g) == MTGRAD_OK, "optimizer usable after a failed load");
        CHECK(mtgrad_optimizer_load(c->o, c->state, c->state_len) == MTGRAD_OK, "load again");
    }
    mtgrad_optimizer_free(c->o);
    c->o = NULL;
}

/* ---------------------------------------------------------------- benchmarks */

static mtgrad_status bench_call(void *v)
{
    nn_ctx *c = v;
    char err[512];
    return mtgrad_bench_load(&c->b, c->bench, c->bench_params, 3, err, sizeof err);
}

static void bench_done(void *v, mtgrad_status s)
{
    nn_ctx *c = v;
    if (s != MTGRAD_OK) CHECK(c->b == NULL, "bench_load: *out set on failure");
    mtgrad_bench_free(c->b);
    c->b = NULL;
}

/* ---------------------------------------------------------------- the MTL step */

static void step_prepare(void *v)
{
    nn_ctx *c = v;
    if (c->m) return;
    mtgrad_model_spec s = conv_spec();
    char err[256];
    CHECK(mtgrad_model_new(&c->m, &s, 7, err, sizeof err) == MTGRAD_OK, "model: %s", err);
}

static mtgrad_status step_call(void *v)
{
    nn_ctx *c = v;
    char err[256];
    return mtgrad_mtl_step_new_ex(&c->s, c->m, c->method, c->params, &c->oc, &c->so, err,
                                  sizeof err);
}

static void step_done(void *v, mtgrad_status s)
{
    nn_ctx *c = v;
    if (s != MTGRAD_OK) {
        CHECK(c->s == NULL, "mtl_step_new %s: *out set on failure", c->method);
        double L[2];
        CHECK(mtgrad_model_forward(c->m, X, Y, NB, 1, L) == MTGRAD_OK,
              "the model is usable after a failed mtl_step_new");
    }
    mtgrad_mtl_step_free(c->s);
    c->s = NULL;
}

/* Steps (and epoch boundaries) allocate nothing. */
static void step_hot_path(nn_ctx *c)
{
    step_prepare(c);
    char err[256];
    mtgrad_mtl_step *s = NULL;
    if (mtgrad_mtl_step_new_ex(&s, c->m, c->method, c->params, &c->oc, &c->so, err, sizeof err) !=
        MTGRAD_OK)
        return;
    const float *xs[3] = {X, X, X}, *ys[3] = {Y, Y, Y};
    int nb = mtgrad_mtl_step_batches(s);
    double L[2], mean[2] = {1.0, 0.5};
    CHECK(mtgrad_mtl_step_begin_epoch(s, 0) == MTGRAD_OK, "begin_epoch"); /* warm-up */
    long a0 = mtgradi_alloc_count();
    for (int e = 0; e < 3; e++) {
        (void)mtgrad_mtl_step_begin_epoch(s, e);
        for (int i = 0; i < 2; i++)
            CHECK(mtgrad_mtl_step_run_batches(s, xs, ys, nb, NB, L, NULL) == MTGRAD_OK,
                  "%s step: %s", c->name, mtgrad_mtl_step_error(s));
        (void)mtgrad_mtl_step_end_epoch(s, mean);
    }
    long n = mtgradi_alloc_count() - a0;
    CHECK(n == 0, "%s allocates: %ld allocations in 6 steps", c->name, n);
    printf("%-40s %3ld allocations in 6 steps\n", c->name, n);
    mtgrad_mtl_step_free(s);
}

/* ---------------------------------------------------------------- training runs */

static char tmpdir[256];
static char ck_path[512];          /* the one-epoch checkpoint a resumed run starts from */
static unsigned char ck[1 << 20];
static size_t ck_len;

static void restore_checkpoint(void *ctx)
{
    (void)ctx;
    FILE *f = fopen(ck_path, "wb");
    CHECK(f && fwrite(ck, 1, ck_len, f) == ck_len, "restore the checkpoint");
    if (f) fclose(f);
}

static void clear_dir(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, MTGRAD_CHECKPOINT_FILE);
    remove(p);
    snprintf(p, sizeof p, "%s/%s.tmp", tmpdir, MTGRAD_CHECKPOINT_FILE);
    remove(p);
}

static void train_prepare(void *v)
{
    nn_ctx *c = v;
    if (c->tc.out_dir && !c->tc.resume) clear_dir();
}

static mtgrad_status train_call(void *v)
{
    nn_ctx *c = v;
    char err[1024] = "";
    mtgrad_status s = mtgrad_train_run(&c->tc, &c->r, err, sizeof err);
    if (s != MTGRAD_OK && s != MTGRAD_E_NOMEM) fprintf(stderr, "train_run: %s\n", err);
    return s;
}

static void train_done(void *v, mtgrad_status s)
{
    nn_ctx *c = v;
    if (s != MTGRAD_OK) CHECK(c->r == NULL, "train_run: *out set on failure");
    mtgrad_train_result_free(c->r);
    c->r = NULL;
}

static void train_paths(nn_ctx *c)
{
    c->tc = mtgrad_train_config_default();
    c->tc.bench = "mmoe";
    c->tc.bench_params = "ntrain=64,ntest=32";
    c->tc.method = "famo";
    c->tc.method_params = "adam_betas=0.8:0.99";
    c->tc.epochs = 1;
    c->tc.batch = 32;
    path p = {"train_run mmoe famo", NULL, train_call, train_done};
    sweep(&p, c);
    c->tc.method = "mgda";
    c->tc.method_params = NULL;
    path p2 = {"train_run mmoe mgda", NULL, train_call, train_done};
    sweep(&p2, c);

    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp %s", tmpdir);
        return;
    }
    c->tc.out_dir = tmpdir;
    path p3 = {"train_run mmoe mgda, checkpoints", train_prepare, train_call, train_done};
    sweep(&p3, c);
    /* resume: one epoch written, two asked for (the failed runs never overwrite it: they fail
     * before the first checkpoint is written or while writing it, to a temporary file) */
    clear_dir();
    CHECK(train_call(c) == MTGRAD_OK, "first epoch");
    train_done(c, MTGRAD_OK);
    c->tc.resume = 1;
    c->tc.epochs = 2;
    snprintf(ck_path, sizeof ck_path, "%s/%s", tmpdir, MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(ck_path, "rb");
    ck_len = f ? fread(ck, 1, sizeof ck, f) : 0;
    if (f) fclose(f);
    CHECK(ck_len > 0 && ck_len < sizeof ck, "read the checkpoint back");
    c->tc.resume = 1;
    restore_checkpoint(c);
    mtgrad_status s = train_call(c);
    CHECK(s == MTGRAD_OK && c->r && c->r->resumed_epoch == 1, "resumed run");
    train_done(c, s);
    /* each resumed run rewrites the checkpoint: put the one-epoch file back before each */
    path p4 = {"train_run mmoe mgda, resume", restore_checkpoint, train_call, train_done};
    sweep(&p4, c);
    clear_dir();
    rmdir(tmpdir);
}

int main(void)
{
    mtgrad_nn_set_threads(1);
    for (int i = 0; i < NB * 64; i++) X[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
    for (int i = 0; i < NB; i++) Y[i] = (float)(i % 3), Y[NB + i] = 0.25f * (float)i;
    nn_ctx *c = calloc(1, sizeof *c);

    path pm = {"model_new conv+linear+dropout", NULL, model_call, model_done};
    sweep(&pm, c);

    mtgrad_optim_kind kinds[] = {MTGRAD_OPTIM_SGD, MTGRAD_OPTIM_ADAM};
    for (int i = 0; i < 2; i++) {
        c->oc = mtgrad_optim_config_default(kinds[i]);
        if (kinds[i] == MTGRAD_OPTIM_SGD) c->oc.momentum = 0.9;
        snprintf(c->name, sizeof c->name, "optimizer_new %s", i ? "adam" : "sgd+momentum");
        path po = {c->name, NULL, optim_call, optim_done};
        sweep(&po, c);
        snprintf(c->name, sizeof c->name, "optimizer_load %s", i ? "adam" : "sgd+momentum");
        path pl = {c->name, optim_load_prepare, optim_load_call, optim_load_done};
        sweep(&pl, c);
    }

    c->bench = "mmoe";
    c->bench_params = "ntrain=64,ntest=32";
    path pb = {"bench_load mmoe", NULL, bench_call, bench_done};
    sweep(&pb, c);
    c->bench = "multifashion";
    {
        char err[512];
        mtgrad_status s = mtgrad_bench_load(&c->b, c->bench, c->bench_params, 3, err, sizeof err);
        mtgrad_bench_free(c->b);
        c->b = NULL;
        if (s == MTGRAD_OK) {
            path pf = {"bench_load multifashion", NULL, bench_call, bench_done};
            sweep(&pf, c);
        } else {
            printf("bench_load multifashion: skipped (%s)\n", err);
        }
    }

    /* method, params, task_sample, grad_space, optimizer */
    const char *methods[][5] = {
        {"mgda", NULL, NULL, NULL, NULL},         {"cagrad", NULL, NULL, NULL, NULL},
        {"pcgrad", NULL, NULL, NULL, NULL},       {"ls", "weights=1:2", NULL, NULL, NULL},
        {"dwa", NULL, NULL, NULL, NULL},          {"famo", "min_losses=0:0", NULL, NULL, NULL},
        {"nash_mtl", NULL, NULL, NULL, NULL},     {"nash_mtl", "update_weights_every=2", NULL, NULL, NULL},
        {"uw", NULL, NULL, NULL, NULL},           {"gradnorm", NULL, NULL, NULL, NULL},
        {"marigold", NULL, NULL, NULL, NULL},     {"marigold", "estimator=central", NULL, NULL, NULL},
        {"marigold", "estimator=step,reuse_next=1", NULL, NULL, NULL},
        {"marigold", "estimator=exact", NULL, NULL, NULL},
        {"mgda", NULL, NULL, "rep", NULL},        {"sdmgrad", NULL, "os:1", NULL, NULL},
        {"cagrad", NULL, "fast:2", NULL, NULL},   {"sdmgrad", "sampling=double", NULL, NULL, NULL},
        {"ls", NULL, NULL, NULL, "adatask-adam"}, {"nash_mtl", NULL, NULL, NULL, "adatask-rmsprop"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        const char *const *e = methods[i];
        c->method = e[0];
        c->params = e[1];
        c->so = mtgrad_step_options_default();
        c->so.task_sample = e[2];
        c->so.grad_space = e[3];
        mtgrad_optim_kind kind = MTGRAD_OPTIM_ADAM;
        CHECK(!e[4] || mtgrad_optim_kind_parse(e[4], &kind) == MTGRAD_OK, "optimizer %s", e[4]);
        c->oc = mtgrad_optim_config_default(kind);
        char label[96];
        snprintf(label, sizeof label, "%s%s%s%s%s%s%s%s%s", e[0], e[1] ? "[" : "", e[1] ? e[1] : "",
                 e[1] ? "]" : "", e[2] ? "@" : "", e[2] ? e[2] : "", e[3] ? "@" : "",
                 e[3] ? e[3] : "", e[4] ? "@adatask" : "");
        snprintf(c->name, sizeof c->name, "mtl_step_new %s", label);
        path ps = {c->name, step_prepare, step_call, step_done};
        sweep(&ps, c);
        snprintf(c->name, sizeof c->name, "mtl_step_run %s", label);
        step_hot_path(c);
    }
    c->so = mtgrad_step_options_default();
    c->oc = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    mtgrad_model_free(c->m);
    c->m = NULL;

    snprintf(tmpdir, sizeof tmpdir, "%s/mtgrad_alloc_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    train_paths(c);
    free(c);
    printf("engine: %ld allocation sites swept in all\n", total_swept);
    return harness_report();
}
