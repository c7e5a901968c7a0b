/* test_train_options.c — the trainer's issue-5 options on a tiny MMoE: the optimizer chosen by
 * name (the recipe's lr kept, torch's constants of the new kind), task sampling and
 * representation gradients run and do the passes they promise (counted by the model: ls 1
 * forward + 1 backward per step, famo 2 + 1, mgda k backwards, mgda@rep 1, fast:K K, os:N
 * between 1 and k), evaluation forwards are not counted, the extra batches of double sampling
 * (distinct samples, uniform, a different draw every step, nothing remembered between draws),
 * runs with step state (double sampling, nash_mtl's reused weights, marigold's reused losses)
 * resume to the same bits, and a checkpoint of another optimizer, task sampling or gradient
 * space is refused with a message naming it. Old (version 1) checkpoints are refused. Every
 * allocation of a double-sampling run that checkpoints, and of its resume, fails cleanly. */
#define _POSIX_C_SOURCE 200809L
#include "eval/eval_internal.h"
#include "harness.h"
#include "train_util.h"
#include "internal.h" /* mtgradi_alloc_fail_after */
#include "alloc_sweep.h"
#include "mtgrad_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];

/* 64 training samples, batch 16: 4 steps per epoch. */
static mtgrad_train_config base(const char *method, const char *params)
{
    mtgrad_train_config c = mtgrad_train_config_default();
    c.bench = "mmoe";
    c.bench_params = "ntrain=64,ntest=40";
    c.data_seed = 1;
    c.method = method;
    c.method_params = params;
    c.seed = 7;
    c.batch = 16;
    c.epochs = 1;
    return c;
}

static mtgrad_train_result *train(const mtgrad_train_config *c, mtgrad_status want, char *err,
                                  size_t errlen)
{
    mtgrad_train_result *r = NULL;
    char local[1024] = "";
    if (!err) err = local, errlen = sizeof local;
    err[0] = '\0';
    mtgrad_status st = mtgrad_train_run(c, &r, err, errlen);
    CHECK(st == want, "train %s (optimizer %s, task_sample %s, grad_space %s): %s, want %s: %s",
          c->method, c->optimizer ? c->optimizer : "-", c->task_sample ? c->task_sample : "-",
          c->grad_space ? c->grad_space : "-", mtgrad_status_str(st), mtgrad_status_str(want),
          err);
    return r;
}

static double per_step(int64_t count, const mtgrad_train_result *r)
{
    return r && r->counted_steps ? (double)count / (double)r->counted_steps : -1;
}

/* --------------------------------------------------------------- passes */

/* One run's forwards and trunk backwards per step, checked against what the method promises. */
static void check_passes(mtgrad_train_config c, double fwd, double bwd, const char *what)
{
    mtgrad_train_result *r = train(&c, MTGRAD_OK, NULL, 0);
    if (!r) return;
    CHECK(r->counted_steps == 4 && r->steps == 4, "%s: %lld counted steps, want 4", what,
          (long long)r->counted_steps);
    CHECK(per_step(r->passes.forwards, r) == fwd, "%s: %g forwards per step, want %g", what,
          per_step(r->passes.forwards, r), fwd);
    CHECK(per_step(r->passes.trunk_backwards, r) == bwd, "%s: %g trunk backwards per step, want %g",
          what, per_step(r->passes.trunk_backwards, r), bwd);
    mtgrad_train_result_free(r);
}

static void test_passes(void)
{
    /* the test set (40 samples, several evaluation forwards) would show in these counts */
    check_passes(base("ls", NULL), 1, 1, "ls");
    check_passes(base("famo", NULL), 2, 1, "famo"); /* the re-evaluation after the update */
    check_passes(base("mgda", NULL), 1, 2, "mgda (k = 2 task backwards)");
    mtgrad_train_config c = base("mgda", NULL);
    c.grad_space = "rep";
    check_passes(c, 1, 1, "mgda@rep");
    c = base("cagrad", NULL);
    c.bench_params = "k=3,ntrain=64,ntest=40";
    check_passes(c, 1, 3, "cagrad, k = 3");
    c.task_sample = "fast:2"; /* 1 random task + the pseudo-task of the other two */
    check_passes(c, 1, 2, "cagrad@fast:2");
    c.task_sample = "fast:1"; /* the pseudo-task of all three alone */
    check_passes(c, 1, 1, "cagrad@fast:1");
    c = base("mgda", NULL);
    c.bench_params = "k=3,ntrain=64,ntest=40";
    c.task_sample = "os:3"; /* each task kept with probability 1 */
    check_passes(c, 1, 3, "mgda@os:3");

    /* os:1 on k = 3: |S| is 1..3, and all 3 at every one of 8 steps has probability 19^-8 */
    c.task_sample = "os:1";
    c.epochs = 2;
    mtgrad_train_result *r = train(&c, MTGRAD_OK, NULL, 0);
    if (r) {
        double b = per_step(r->passes.trunk_backwards, r);
        CHECK(r->counted_steps == 8 && b >= 1 && b < 3, "mgda@os:1: %g trunk backwards/step", b);
        CHECK(r->passes.forwards == 8, "mgda@os:1: one forward per step");
    }
    mtgrad_train_result_free(r);
}

/* A resumed run counts only the steps it ran itself. */
static void test_passes_after_resume(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/passes", tmpdir);
    mkdir(dir, 0755);
    mtgrad_train_config c = base("ls", NULL);
    c.out_dir = dir;
    mtgrad_train_result *r = train(&c, MTGRAD_OK, NULL, 0);
    mtgrad_train_result_free(r);
    c.epochs = 3;
    c.resume = 1;
    r = train(&c, MTGRAD_OK, NULL, 0);
    CHECK(r && r->resumed_epoch == 1 && r->steps == 12 && r->counted_steps == 8 &&
              r->passes.forwards == 8 && r->passes.trunk_backwards == 8,
          "resumed: %lld counted steps, %lld forwards", r ? (long long)r->counted_steps : -1,
          r ? (long long)r->passes.forwards : -1);
    mtgrad_train_result_free(r);
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, MTGRAD_CHECKPOINT_FILE);
    remove(p);
    rmdir(dir);
}

/* --------------------------------------------------------------- optimizers */

static void test_optimizers(void)
{
    mtgrad_train_config c = base("ls", NULL);
    mtgrad_train_result *plain = train(&c, MTGRAD_OK, NULL, 0);
    if (!plain) return;
    /* torch.optim's constants (rmsprop: alpha 0.99, eps 1e-8; adagrad: eps 1e-10), whatever
     * Adam's were; the learning rate is the recipe's */
    static const struct {
        const char *name;
        mtgrad_optim_kind kind;
        double eps, beta2;
    } want[] = {{"rmsprop", MTGRAD_OPTIM_RMSPROP, 1e-8, 0.99},
                {"adagrad", MTGRAD_OPTIM_ADAGRAD, 1e-10, -1},
                {"adatask-adam", MTGRAD_OPTIM_ADATASK_ADAM, 1e-8, 0.999},
                {"adatask-rmsprop", MTGRAD_OPTIM_ADATASK_RMSPROP, 1e-8, 0.99},
                {"adatask-adagrad", MTGRAD_OPTIM_ADATASK_ADAGRAD, 1e-10, -1},
                {"adam", MTGRAD_OPTIM_ADAM, 1e-8, 0.999}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        c.optimizer = want[i].name;
        mtgrad_train_result *r = train(&c, MTGRAD_OK, NULL, 0);
        if (!r) continue;
        CHECK(r->optim.kind == want[i].kind && r->optim.lr == plain->optim.lr &&
                  r->optim.eps == want[i].eps &&
                  (want[i].beta2 < 0 || r->optim.beta2 == want[i].beta2),
              "%s: kind %d, lr %g (recipe %g), eps %g", want[i].name, (int)r->optim.kind,
              r->optim.lr, plain->optim.lr, r->optim.eps);
        int same = memcmp(r->params, plain->params, (size_t)r->n_params * sizeof(float)) == 0;
        /* Adam by name is the recipe itself: the same run */
        CHECK(want[i].kind == MTGRAD_OPTIM_ADAM ? same : !same, "%s: %s parameters as Adam",
              want[i].name, same ? "the same" : "other");
        if (mtgrad_optim_kind_per_task(want[i].kind))
            CHECK(r->passes.trunk_backwards == 2 * r->counted_steps,
                  "%s: one backward per task", want[i].name);
        mtgrad_train_result_free(r);
    }
    c.optimizer = "lbfgs";
    char err[512];
    mtgrad_train_result *r = train(&c, MTGRAD_E_INVAL, err, sizeof err);
    CHECK(!r && strstr(err, "lbfgs"), "unknown optimizer named: '%s'", err);
    mtgrad_train_result_free(plain);
}

/* --------------------------------------------------------------- extra batches */

static int is_identity(const int64_t *pool, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (pool[i] != i) return 0;
    return 1;
}

static void test_extra_batches(void)
{
    enum { NT = 10, N = 3 };
    int64_t pool[NT], picks[NT], a[2 * N], b[2 * N];
    for (int64_t i = 0; i < NT; i++) pool[i] = i;
    int distinct = 1, in_range = 1, identity = 1, same_again = 1, differ_step = 0,
        differ_batch = 0, differ_epoch = 0, differ_seed = 0;
    long count[2][NT] = {{0}};
    const int64_t steps = 6000;
    for (int64_t s = 0; s < steps; s++) {
        mtgradi_eval_extra_batches(3, 0, s, NT, N, 2, pool, picks, a);
        identity &= is_identity(pool, NT);
        for (int q = 0; q < 2; q++)
            for (int j = 0; j < N; j++) {
                int64_t v = a[q * N + j];
                in_range &= v >= 0 && v < NT;
                if (v >= 0 && v < NT) count[q][v]++;
                for (int l = 0; l < j; l++) distinct &= a[q * N + l] != v;
            }
        differ_batch += memcmp(a, a + N, sizeof(int64_t) * N) != 0;
        mtgradi_eval_extra_batches(3, 0, s, NT, N, 2, pool, picks, b);
        same_again &= memcmp(a, b, sizeof a) == 0;
        mtgradi_eval_extra_batches(3, 0, s + 1, NT, N, 2, pool, picks, b);
        differ_step += memcmp(a, b, sizeof a) != 0;
        mtgradi_eval_extra_batches(3, 1, s, NT, N, 2, pool, picks, b);
        differ_epoch += memcmp(a, b, sizeof a) != 0;
        mtgradi_eval_extra_batches(4, 0, s, NT, N, 2, pool, picks, b);
        differ_seed += memcmp(a, b, sizeof a) != 0;
    }
    CHECK(distinct && in_range, "a batch is n distinct indices of the training set");
    CHECK(identity, "the pool is the identity again after every draw");
    CHECK(same_again, "the same (seed, epoch, step): the same batches");
    /* two random 3-subsets of 10 (ordered) agree with probability 1/720: a few in 6000 */
    CHECK(differ_step > steps - 40 && differ_epoch > steps - 40 && differ_seed > steps - 40 &&
              differ_batch > steps - 40,
          "different draws: %d by step, %d by epoch, %d by seed, %d between the two batches",
          differ_step, differ_epoch, differ_seed, differ_batch);
    /* uniform: each index is in a batch with probability 3/10, 1800 times expected with sd
     * sqrt(6000 * 0.3 * 0.7) = 35.5; 6 sd */
    int uniform = 1;
    for (int q = 0; q < 2; q++)
        for (int i = 0; i < NT; i++) uniform &= fabs((double)count[q][i] - 1800.0) < 213.0;
    CHECK(uniform, "every sample equally likely (batch 1, index 0: %ld of 6000 draws)",
          count[0][0]);
    /* n == ntrain: a permutation */
    int64_t all[NT];
    mtgradi_eval_extra_batches(9, 2, 5, NT, NT, 1, pool, picks, all);
    long seen = 0;
    for (int i = 0; i < NT; i++) seen |= 1L << all[i];
    CHECK(seen == (1L << NT) - 1 && is_identity(pool, NT), "n = ntrain draws a permutation");
}

/* --------------------------------------------------------------- resume with step state */

static void rm_ckpt(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, MTGRAD_CHECKPOINT_FILE);
    remove(p);
    rmdir(dir);
}

/* 2 epochs straight == 1 epoch + resume for 1 (each in its own process state). */
static void test_resume(const char *method, const char *params, const char *task_sample)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/resume", tmpdir);
    mkdir(dir, 0755);
    mtgrad_train_config c = base(method, params);
    c.task_sample = task_sample;
    c.epochs = 2;
    mtgrad_train_result *full = train(&c, MTGRAD_OK, NULL, 0);
    c.epochs = 1;
    c.out_dir = dir;
    mtgrad_train_result *one = train(&c, MTGRAD_OK, NULL, 0);
    c.epochs = 2;
    c.resume = 1;
    mtgrad_train_result *rest = train(&c, MTGRAD_OK, NULL, 0);
    CHECK(same_train_result(full, rest) && rest->resumed_epoch == 1,
          "%s %s: 1 epoch + resume for 1 != 2 epochs", method, params ? params : "");
    /* and the other seed changes the run (the draws depend on it) */
    c = base(method, params);
    c.task_sample = task_sample;
    c.epochs = 2;
    c.seed = 8;
    mtgrad_train_result *other = train(&c, MTGRAD_OK, NULL, 0);
    CHECK(other && full && !same_train_result(full, other), "%s: another seed, another run", method);
    mtgrad_train_result_free(full);
    mtgrad_train_result_free(one);
    mtgrad_train_result_free(rest);
    mtgrad_train_result_free(other);
    rm_ckpt(dir);
}

/* Double sampling: its result is not that of single sampling, and the extra batches of a step
 * are drawn afresh each step (a 1-sample-per-batch run would otherwise repeat itself). */
static void test_double_sampling(void)
{
    mtgrad_train_config c = base("sdmgrad", "sampling=double");
    mtgrad_train_result *d = train(&c, MTGRAD_OK, NULL, 0);
    c.method_params = "sampling=single";
    mtgrad_train_result *s = train(&c, MTGRAD_OK, NULL, 0);
    CHECK(d && s && !same_train_result(d, s), "double sampling changes the run");
    CHECK(d && d->passes.forwards >= 3 * d->counted_steps,
          "double sampling: a forward per batch (%lld forwards in %lld steps)",
          d ? (long long)d->passes.forwards : -1, d ? (long long)d->counted_steps : -1);
    mtgrad_train_result_free(d);
    mtgrad_train_result_free(s);
}

/* --------------------------------------------------------------- fingerprint */

static void test_fingerprint(void)
{
    char dir[512], err[1024];
    snprintf(dir, sizeof dir, "%s/fp", tmpdir);
    mkdir(dir, 0755);
    mtgrad_train_config c = base("mgda", NULL);
    c.out_dir = dir;
    mtgrad_train_result *r = train(&c, MTGRAD_OK, NULL, 0);
    mtgrad_train_result_free(r);
    c.resume = 1;
    c.epochs = 2;
    static const struct {
        const char *optimizer, *task_sample, *grad_space, *named;
    } other[] = {{"rmsprop", NULL, NULL, "optimizer=adam"},
                 {"adatask-adam", NULL, NULL, "optimizer=adam"},
                 {NULL, "os:1", NULL, "task_sample="},
                 {NULL, NULL, "rep", "grad_space=param"}};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        c.optimizer = other[i].optimizer;
        c.task_sample = other[i].task_sample;
        c.grad_space = other[i].grad_space;
        r = train(&c, MTGRAD_E_STATE, err, sizeof err);
        CHECK(!r && strstr(err, "another configuration") && strstr(err, other[i].named),
              "refused, naming %s: '%s'", other[i].named, err);
        mtgrad_train_result_free(r);
    }
    /* the recipe's own optimizer by name and "param" by name are the same configuration */
    c.optimizer = "adam";
    c.task_sample = NULL;
    c.grad_space = "param";
    r = train(&c, MTGRAD_OK, err, sizeof err);
    CHECK(r && r->resumed_epoch == 1, "adam/param by name resume the default run: %s", err);
    mtgrad_train_result_free(r);

    /* a checkpoint of layout version 1 (before the step state) is refused cleanly */
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, MTGRAD_CHECKPOINT_FILE);
    FILE *f = fopen(p, "r+b");
    long size = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    unsigned char *buf = size > 100 ? malloc((size_t)size) : NULL;
    size_t len = 0;
    if (f && buf) {
        rewind(f);
        len = fread(buf, 1, (size_t)size, f);
        uint32_t v1 = 1;
        memcpy(buf + 8, &v1, 4);
        uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
        memcpy(buf + len - 4, &crc, 4);
        rewind(f);
        fwrite(buf, 1, len, f);
    }
    if (f) fclose(f);
    free(buf);
    CHECK(size > 100 && len == (size_t)size, "checkpoint read (%zu bytes)", len);
    c.grad_space = NULL;
    r = train(&c, MTGRAD_E_STATE, err, sizeof err);
    CHECK(!r && strstr(err, "version 1"), "version 1 refused: '%s'", err);
    mtgrad_train_result_free(r);
    rm_ckpt(dir);
}

/* A run that must fail before training: no result, a message. */
static void refused(const mtgrad_train_config *c, const char *what)
{
    mtgrad_train_result *r = NULL;
    char err[1024] = "";
    mtgrad_status st = mtgrad_train_run(c, &r, err, sizeof err);
    CHECK(st != MTGRAD_OK && !r && err[0], "%s: %s, '%s'", what, mtgrad_status_str(st), err);
    mtgrad_train_result_free(r);
}

/* Options the step cannot take fail before training, with the step's status and message. */
static void test_bad_options(void)
{
    char err[1024];
    mtgrad_train_config c = base("ls", NULL);
    c.task_sample = "os:1"; /* ls is neither a Gram nor a Jacobian method */
    mtgrad_train_result *r = train(&c, MTGRAD_E_UNSUPPORTED, err, sizeof err);
    CHECK(!r && err[0], "ls with os:1 refused with a message");
    c = base("mgda", NULL);
    c.task_sample = "os:5"; /* k = 2 */
    refused(&c, "os:5 on 2 tasks");
    c.task_sample = "sometimes";
    refused(&c, "task_sample 'sometimes'");
    c = base("mgda", NULL);
    c.grad_space = "weights";
    refused(&c, "grad_space 'weights'");
    c = base("ls", NULL);
    c.grad_space = "rep"; /* ls has no Gram matrix to take from the representation */
    refused(&c, "ls with rep");
}

/* --------------------------------------------------------------- allocation failures */

typedef struct sweep_ctx {
    mtgrad_train_config c;
    mtgrad_train_result *r;
    unsigned char *ck; /* the one-epoch checkpoint the resumed run starts from */
    size_t ck_len;
    char path[600];
} sweep_ctx;

static void sweep_prepare(void *v)
{
    sweep_ctx *x = v;
    if (!x->c.resume) {
        remove(x->path);
        return;
    }
    FILE *f = fopen(x->path, "wb");
    CHECK(f && fwrite(x->ck, 1, x->ck_len, f) == x->ck_len, "restore the checkpoint");
    if (f) fclose(f);
}

static mtgrad_status sweep_call(void *v)
{
    sweep_ctx *x = v;
    char err[1024] = "";
    return mtgrad_train_run(&x->c, &x->r, err, sizeof err);
}

static void sweep_done(void *v, mtgrad_status s)
{
    sweep_ctx *x = v;
    if (s != MTGRAD_OK) CHECK(x->r == NULL, "train_run: *out set on failure");
    mtgrad_train_result_free(x->r);
    x->r = NULL;
}

static void test_alloc_failures(void)
{
    static sweep_ctx x;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sweep", tmpdir);
    mkdir(dir, 0755);
    snprintf(x.path, sizeof x.path, "%s/%s", dir, MTGRAD_CHECKPOINT_FILE);
    x.c = base("sdmgrad", "sampling=double");
    x.c.out_dir = dir;
    path p = {"train sdmgrad double + checkpoint", sweep_prepare, sweep_call, sweep_done};
    sweep(&p, &x);
    /* the one-epoch checkpoint, for the resumed run (which reads and restores it) */
    sweep_prepare(&x);
    sweep_done(&x, sweep_call(&x));
    FILE *f = fopen(x.path, "rb");
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    x.ck = n > 0 ? malloc((size_t)n) : NULL;
    if (f && x.ck) {
        rewind(f);
        x.ck_len = fread(x.ck, 1, (size_t)n, f);
    }
    if (f) fclose(f);
    CHECK(x.ck && x.ck_len == (size_t)n, "checkpoint kept for the resume sweep");
    x.c.resume = 1;
    x.c.epochs = 2;
    path q = {"resume sdmgrad double", sweep_prepare, sweep_call, sweep_done};
    if (x.ck) sweep(&q, &x);
    free(x.ck);
    remove(x.path);
    rmdir(dir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/mtgrad_train_opt.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return harness_report();
    }
    test_extra_batches();
    test_passes();
    test_passes_after_resume();
    test_optimizers();
    test_double_sampling();
    test_resume("sdmgrad", "sampling=double", NULL);
    test_resume("nash_mtl", "update_weights_every=3", NULL); /* 4 steps: a cycle spans epochs */
    test_resume("marigold", "estimator=step,reuse_next=1", NULL);
    test_resume("cagrad", NULL, "fast:1");
    test_fingerprint();
    test_bad_options();
    test_alloc_failures();
    rmdir(tmpdir);
    return harness_report();
}
