/* lenet_step.c — times one training step of the MultiFashion LeNet (benchmarks.md §5.2) with the
 * engine's public API only, and prints the timings as one JSON object. bench/lenet_step.py runs it
 * beside PyTorch's step on the same model, batch and threads and prints the ratio.
 *
 * A step, mode "ls" (linear scalarization, one backward):
 *     forward(train) -> backward_weighted(ones) -> Adam step (lr 1e-3, wd 0.01)
 * mode "k2" (what gradient-balancing methods need: one backward per task through the trunk):
 *     forward(train) -> backward_task(0) -> backward_task(1) -> trunk rows summed -> Adam step
 * Inputs: uniform [0, 1) pixels and uniform labels, fixed seed (the time does not depend on them).
 *
 *   lenet_step [--threads T] [--batch B] [--reps R] [--warmup W] [--mode ls|k2]
 */
#define _POSIX_C_SOURCE 200809L
#include "mtgrad_nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K 2

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "%s:%d: out of memory (%zu bytes)\n", __FILE__, __LINE__, n);
        exit(1);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die_status(const char *what, mtgrad_status s, const char *err)
{
    fprintf(stderr, "lenet_step: %s: %s %s\n", what, mtgrad_status_str(s), err ? err : "");
    exit(1);
}

typedef struct options {
    int threads, batch, reps, warmup;
    int k2;
} options;

static options parse_args(int argc, char **argv)
{
    options o = {1, 256, 30, 5, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v) o.threads = atoi(v), i++;
        else if (!strcmp(a, "--batch") && v) o.batch = atoi(v), i++;
        else if (!strcmp(a, "--reps") && v) o.reps = atoi(v), i++;
        else if (!strcmp(a, "--warmup") && v) o.warmup = atoi(v), i++;
        else if (!strcmp(a, "--mode") && v) o.k2 = !strcmp(v, "k2"), i++;
        else {
            fprintf(stderr, "usage: lenet_step [--threads T] [--batch B] [--reps R] [--warmup W] [--mode ls|k2]\n");
            exit(2);
        }
    }
    if (o.threads < 1 || o.batch < 1 || o.reps < 1 || o.warmup < 0) {
        fprintf(stderr, "lenet_step: threads, batch, reps must be >= 1 and warmup >= 0\n");
        exit(2);
    }
    return o;
}

/* A tiny deterministic generator for the inputs (xorshift64*). */
static double uniform01(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

int main(int argc, char **argv)
{
    options opt = parse_args(argc, argv);
    mtgrad_nn_set_threads(opt.threads);

    mtgrad_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.in_c = 1;
    spec.in_h = 36;
    spec.in_w = 36;
    spec.trunk = "conv:10:9,relu,maxpool:2,conv:20:5,relu,maxpool:2,flatten,linear:50,relu";
    spec.k = K;
    spec.heads[0] = spec.heads[1] = "linear:10";
    spec.losses[0] = spec.losses[1] = MTGRAD_LOSS_CE;
    spec.max_batch = opt.batch;
    char err[256] = "";
    mtgrad_model *m = NULL;
    mtgrad_status s = mtgrad_model_new(&m, &spec, 1, err, sizeof err);
    if (s != MTGRAD_OK) die_status("model", s, err);

    const int64_t P = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m);
    mtgrad_optim_config oc = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    oc.weight_decay = 0.01;
    mtgrad_optimizer *o = NULL;
    s = mtgrad_optimizer_new(&o, &oc, P, err, sizeof err);
    if (s != MTGRAD_OK) die_status("optimizer", s, err);

    size_t nx = (size_t)opt.batch * 36 * 36;
    float *x = xmalloc(sizeof(float) * nx), *y = xmalloc(sizeof(float) * (size_t)opt.batch * K);
    float *grad = xmalloc(sizeof(float) * (size_t)P), *G = xmalloc(sizeof(float) * (size_t)d * K);
    uint64_t rs = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < nx; i++) x[i] = (float)uniform01(&rs);
    for (int i = 0; i < opt.batch * K; i++) y[i] = (float)(int)(10.0 * uniform01(&rs));

    const double ones[K] = {1.0, 1.0};
    double *t = xmalloc(sizeof(double) * (size_t)opt.reps);
    double loss_first = 0, loss_last = 0;
    for (int r = -opt.warmup; r < opt.reps; r++) {
        double losses[K];
        double t0 = now_s();
        if ((s = mtgrad_model_forward(m, x, y, opt.batch, 1, losses)) != MTGRAD_OK) die_status("forward", s, NULL);
        if (!opt.k2) {
            if ((s = mtgrad_model_backward_weighted(m, ones, grad)) != MTGRAD_OK) die_status("backward", s, NULL);
        } else {
            for (int task = 0; task < K; task++)
                if ((s = mtgrad_model_backward_task(m, task, G + (size_t)task * (size_t)d, grad)) != MTGRAD_OK)
                    die_status("backward_task", s, NULL);
            for (int64_t i = 0; i < d; i++) grad[i] = G[i] + G[d + i];
        }
        if ((s = mtgrad_optimizer_step(o, mtgrad_model_params(m), grad)) != MTGRAD_OK) die_status("step", s, NULL);
        double dt = now_s() - t0;
        if (r >= 0) t[r] = dt;
        if (r == -opt.warmup) loss_first = losses[0] + losses[1];
        loss_last = losses[0] + losses[1];
    }
    qsort(t, (size_t)opt.reps, sizeof *t, cmp_double);
    double median = opt.reps % 2 ? t[opt.reps / 2] : 0.5 * (t[opt.reps / 2 - 1] + t[opt.reps / 2]);
    printf("{\"impl\": \"mtgrad\", \"mode\": \"%s\", \"threads\": %d, \"batch\": %d, \"params\": %lld, "
           "\"reps\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
           "\"loss_first\": %.6f, \"loss_last\": %.6f}\n",
           opt.k2 ? "k2" : "ls", opt.threads, opt.batch, (long long)P, opt.reps, 1e3 * median, 1e3 * t[0],
           1e3 * t[opt.reps - 1], loss_first, loss_last);
    free(t);
    free(x);
    free(y);
    free(grad);
    free(G);
    mtgrad_optimizer_free(o);
    mtgrad_model_free(m);
    return 0;
}
