/* cmd_bench_train.c — `mtgrad bench --train`: the cost of a training step against the number of
 * tasks k (issue 5 item 7; methods.md 7, 8, 9, 3.4, 4.2).
 *
 * The methods that reshape the training loop (MARIGOLD: one backward and a forward whatever k;
 * SDMGrad-OS and CAGrad-fastK: a sample of the tasks; MGDA-UB: one trunk backward; AdaTask:
 * k backwards and k moment sets) exist to change what a step costs as k grows, so the claim is
 * measured where it is made: on real models (fashion-k's LeNet for k <= 10, the synthetic mmoe
 * MLP for every k), one mtgrad_mtl_step per cell, with the engine's own pass counters saying
 * what a step did (forwards, trunk backwards, head backwards) next to the wall time, the phase
 * split and the ratio to LS of the same model and k timed in the same run (absolute times drift
 * between runs on shared cores; ratios less so).
 *
 * A row is NAME[:P=V[+P=V...]][@OPTION]: a registered method, its parameters ('+' for ',',
 * which separates rows), and one of the step's reshapings: os[:N] / fast[:K] (task sampling;
 * without a number N = max(1, k/4) and K = min(4, k)), rep (representation gradients), or an
 * optimizer name (e.g. adatask-adam). Every (model, k) group times LS first (the reference),
 * which also gives the estimate printed before the long part of the run. Built on the public
 * headers only (tools/ rule). */
#define _GNU_SOURCE /* getopt_long, clock_gettime */
#include "bench_train.h"
#include "cli.h"
#include "timing.h"
#include "mtgrad.h"
#include "mtgrad_nn.h"
#include "mtgrad_train.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char mtgrad_usage_bench_train[] =
    "usage: mtgrad bench --train [-k LIST] [--models LIST] [-m LIST] [--steps N] [--warmup N]\n"
    "                            [--batch N] [--ntrain N] [-t T] [--json FILE] [--quick]\n"
    "  Time per training step of every method (mtgrad_mtl_step on the benchmark's model) for\n"
    "  each k: the median of the timed steps after the warm-up ones, x LS (LS of the same model\n"
    "  and k in the same run), the passes per step (the model's counters: forwards, trunk\n"
    "  backwards, head backwards summed over the heads) and the phase split.\n"
    "  -k, --tasks LIST   task counts, 2..64 (default 2,4,10,40; fashion-k only up to 10)\n"
    "      --models LIST  fashion-k,mmoe (default both)\n"
    "  -m, --methods LIST rows (default 'all': the registry, then the variants below). A row is\n"
    "                     NAME[:P=V[+P=V...]][@OPTION]; OPTION: os[:N] | fast[:K] (task\n"
    "                     sampling; N = max(1, k/4), K = min(4, k) if not given), rep\n"
    "                     (representation gradients), or an optimizer name (adatask-adam ...).\n"
    "                     Variants: marigold:estimator=central, marigold:estimator=step,\n"
    "                     marigold:estimator=step+reuse_next=1, sdmgrad@os, cagrad@fast,\n"
    "                     mgda@rep, ls@adatask-adam, sdmgrad:sampling=double (3 batches a step).\n"
    "                     ls is always timed (the x LS reference).\n"
    "      --steps N      timed steps per cell, at least 5 (default 5)\n"
    "      --warmup N     untimed steps before them (default 2)\n"
    "      --batch N      batch size (default the benchmark's recipe: fashion-k 256, mmoe 128)\n"
    "      --ntrain N     training samples loaded, cycled through (default 2048)\n"
    "  -t, --threads T    engine and aggregator threads (default 1)\n"
    "      --json FILE    also write the results as JSON\n"
    "  -q, --quick        -k 2,4, a dozen rows, batch at most 64 (unless given)\n"
    "  Table: method, model, k, batch, ms/step, xLS, fwd, bwd (trunk), hbwd (heads), gram and\n"
    "  solve ms. A row that cannot run (e.g. E_UNSUPPORTED) shows its error.\n";

#define MAX_K_LIST 16
#define MAX_SPECS 128
#define SPEC_LEN 160
#define NBUF 6 /* distinct batches cycled through (3-batch steps see 3 different ones) */

static const char *const all_models[] = {"fashion-k", "mmoe"};
#define N_MODELS (sizeof all_models / sizeof all_models[0])

static const char *const variants[] = {
    "marigold:estimator=central", "marigold:estimator=step", "marigold:estimator=step+reuse_next=1",
    "sdmgrad@os", "cagrad@fast", "mgda@rep", "ls@adatask-adam", "sdmgrad:sampling=double"};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

static const char *const quick_rows[] = {
    "ls", "famo", "mgda", "cagrad", "marigold", "marigold:estimator=central",
    "marigold:estimator=step+reuse_next=1", "sdmgrad@os", "cagrad@fast", "mgda@rep",
    "ls@adatask-adam", "sdmgrad:sampling=double"};
#define N_QUICK (sizeof quick_rows / sizeof quick_rows[0])

/* A row as given: NAME[:P=V+...][@OPTION], split. */
typedef struct row_spec {
    char text[SPEC_LEN];
    char method[64];
    char params[SPEC_LEN]; /* ','-separated */
    char option[48];
} row_spec;

typedef struct bt_opts {
    int64_t ks[MAX_K_LIST];
    int nk;
    int models[N_MODELS]; /* selected */
    row_spec *specs;
    int ns, ls_index;
    int steps, warmup, threads;
    int64_t batch, batch_cap, ntrain; /* batch 0: the recipe's, at most batch_cap if > 0 */
    const char *json;
} bt_opts;

/* A row resolved for one k. */
typedef struct resolved {
    char label[SPEC_LEN + 32];
    char params[SPEC_LEN + 32];
    char sample[48];
    const char *space;
    int optim; /* -1: the recipe's optimizer */
} resolved;

typedef struct cell {
    char label[SPEC_LEN + 32];
    mtgrad_status status;
    char error[320];
    double ms, ref_ms, fwd, bwd, head_bwd, est_s; /* ref_ms: the LS steps paired with it */
    double phase_ms[MTGRAD_TIME_COUNT];
    int64_t warnings;
} cell;

/* One model and k: the loaded benchmark and the batches every cell of it reads. */
typedef struct group {
    const char *model;
    int64_t k, batch, ntrain, in;
    mtgrad_bench *b;
    mtgrad_status status;
    char error[320];
    float *x[NBUF], *y[NBUF];
} group;

/* ------------------------------------------------------------------ options */

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "mtgrad bench --train: %s%s\n%s", msg, arg, mtgrad_usage_bench_train);
    return 2;
}

/* A positive integer in [lo, hi] (1e3 notation allowed); -1 if not. */
static int64_t parse_int(const char *s, int64_t lo, int64_t hi)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !(x >= (double)lo) || x > (double)hi || x != floor(x)) return -1;
    return (int64_t)x;
}

static int parse_k_list(const char *s, bt_opts *o)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    o->nk = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int64_t k = parse_int(t, 2, MTGRAD_NN_MAX_TASKS);
        if (k < 0 || o->nk == MAX_K_LIST) return -1;
        o->ks[o->nk++] = k;
    }
    return o->nk > 0 ? 0 : -1;
}

static int parse_models(const char *s, bt_opts *o)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    memset(o->models, 0, sizeof o->models);
    int any = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < N_MODELS && strcmp(all_models[i], t) != 0) i++;
        if (i == N_MODELS) return -1;
        o->models[i] = any = 1;
    }
    return any ? 0 : -1;
}

/* Is the step option of a row one this tool knows? (Its value is checked by the library.) */
static int option_known(const char *opt)
{
    mtgrad_optim_kind kind;
    if (!*opt || strcmp(opt, "os") == 0 || strcmp(opt, "fast") == 0 || strcmp(opt, "rep") == 0 ||
        strcmp(opt, "param") == 0)
        return 1;
    if (strncmp(opt, "os:", 3) == 0) return parse_int(opt + 3, 1, MTGRAD_NN_MAX_TASKS) > 0;
    if (strncmp(opt, "fast:", 5) == 0) return parse_int(opt + 5, 1, MTGRAD_NN_MAX_TASKS) > 0;
    return mtgrad_optim_kind_parse(opt, &kind) == MTGRAD_OK;
}

/* Split "NAME[:P=V+P=V][@OPTION]"; 0 if the method is registered and the option known. */
static int split_spec(const char *text, row_spec *r)
{
    memset(r, 0, sizeof *r);
    if (strlen(text) >= sizeof r->text) return -1;
    strcpy(r->text, text);
    char buf[SPEC_LEN];
    strcpy(buf, text);
    char *at = strchr(buf, '@');
    if (at) {
        *at = '\0';
        if (strlen(at + 1) >= sizeof r->option || !at[1]) return -1;
        strcpy(r->option, at + 1);
    }
    char *colon = strchr(buf, ':');
    if (colon) {
        *colon = '\0';
        for (char *p = colon + 1; *p; p++)
            if (*p == '+') *p = ',';
        strcpy(r->params, colon + 1);
    }
    if (strlen(buf) >= sizeof r->method) return -1;
    strcpy(r->method, buf);
    return mtgrad_method_by_name(r->method) && option_known(r->option) ? 0 : -1;
}

static int add_spec(bt_opts *o, const char *text)
{
    if (o->ns == MAX_SPECS) return usage_error("too many rows: ", text);
    if (split_spec(text, &o->specs[o->ns]) != 0)
        return usage_error("unknown method or option in row: ", text);
    o->ns++;
    return 0;
}

/* The rows: 'all', the quick set, or the list given; ls added first if missing. */
static int build_specs(bt_opts *o, const char *methods, int quick)
{
    o->specs = calloc(MAX_SPECS, sizeof *o->specs);
    if (!o->specs) return usage_error("out of memory", "");
    int rc = 0;
    if (!methods && quick) {
        for (size_t i = 0; i < N_QUICK && !rc; i++) rc = add_spec(o, quick_rows[i]);
    } else if (!methods || strcmp(methods, "all") == 0) {
        for (size_t i = 0; i < mtgrad_method_count() && !rc; i++)
            rc = add_spec(o, mtgrad_method_name(mtgrad_method_at(i)));
        for (size_t i = 0; i < N_VARIANTS && !rc; i++) {
            row_spec tmp; /* a variant of a method this build lacks is left out, not an error */
            if (split_spec(variants[i], &tmp) == 0) rc = add_spec(o, variants[i]);
        }
    } else {
        char *copy = malloc(strlen(methods) + 1), *save = NULL;
        if (!copy) return usage_error("out of memory", "");
        strcpy(copy, methods);
        for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save))
            rc = add_spec(o, t);
        free(copy);
        if (!rc && o->ns == 0) rc = usage_error("empty method list", "");
    }
    if (rc) return rc;
    o->ls_index = -1;
    for (int i = 0; i < o->ns; i++)
        if (strcmp(o->specs[i].text, "ls") == 0) o->ls_index = i;
    if (o->ls_index < 0) { /* the reference row goes first */
        if (o->ns == MAX_SPECS) return usage_error("too many rows", "");
        memmove(o->specs + 1, o->specs, (size_t)o->ns * sizeof *o->specs);
        split_spec("ls", &o->specs[0]);
        o->ns++;
        o->ls_index = 0;
    }
    return 0;
}

static int parse_opts(int argc, char **argv, bt_opts *o)
{
    enum { O_TRAIN = 256, O_MODELS, O_STEPS, O_WARMUP, O_BATCH, O_NTRAIN, O_JSON };
    static const struct option opts[] = {
        {"train", no_argument, NULL, O_TRAIN},       {"tasks", required_argument, NULL, 'k'},
        {"models", required_argument, NULL, O_MODELS}, {"methods", required_argument, NULL, 'm'},
        {"steps", required_argument, NULL, O_STEPS}, {"warmup", required_argument, NULL, O_WARMUP},
        {"batch", required_argument, NULL, O_BATCH}, {"ntrain", required_argument, NULL, O_NTRAIN},
        {"threads", required_argument, NULL, 't'},   {"json", required_argument, NULL, O_JSON},
        {"quick", no_argument, NULL, 'q'},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *methods = NULL;
    int quick = 0, ch;
    int64_t v;
    memset(o, 0, sizeof *o);
    o->steps = 5;
    o->warmup = 2;
    o->threads = 1;
    for (size_t i = 0; i < N_MODELS; i++) o->models[i] = 1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "k:m:t:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_TRAIN: break;
        case 'k':
            if (parse_k_list(optarg, o) != 0) return usage_error("bad -k list (2..64): ", optarg);
            break;
        case O_MODELS:
            if (parse_models(optarg, o) != 0)
                return usage_error("bad --models (fashion-k, mmoe): ", optarg);
            break;
        case 'm': methods = optarg; break;
        case O_STEPS:
            if ((v = parse_int(optarg, 5, 100000)) < 0)
                return usage_error("--steps needs at least 5: ", optarg);
            o->steps = (int)v;
            break;
        case O_WARMUP:
            if ((v = parse_int(optarg, 0, 100000)) < 0) return usage_error("bad --warmup: ", optarg);
            o->warmup = (int)v;
            break;
        case O_BATCH:
            if ((o->batch = parse_int(optarg, 1, 1 << 20)) < 0)
                return usage_error("bad --batch: ", optarg);
            break;
        case O_NTRAIN:
            if ((o->ntrain = parse_int(optarg, 1, 60000)) < 0)
                return usage_error("bad --ntrain (1..60000): ", optarg);
            break;
        case 't':
            if ((v = parse_int(optarg, 1, 256)) < 0) return usage_error("bad --threads: ", optarg);
            o->threads = (int)v;
            break;
        case O_JSON: o->json = optarg; break;
        case 'q': quick = 1; break;
        case 'h': fputs(mtgrad_usage_bench_train, stdout); return 1;
        default: fputs(mtgrad_usage_bench_train, stderr); return 2;
        }
    }
    if (optind != argc) return usage_error("unexpected argument: ", argv[optind]);
    if (!o->nk) {
        const int64_t def[4] = {2, 4, 10, 40};
        o->nk = quick ? 2 : 4;
        memcpy(o->ks, def, (size_t)o->nk * sizeof *o->ks);
    }
    if (quick && !o->batch) o->batch_cap = 64;
    if (!o->ntrain) o->ntrain = 2048; /* NBUF distinct batches of the recipes' sizes */
    return build_specs(o, methods, quick);
}

/* ------------------------------------------------------------------ rows */

/* The row for k: task-sample counts filled in, label as printed. 0, or -1 if too long. */
static int resolve(const row_spec *s, int64_t k, resolved *r)
{
    memset(r, 0, sizeof *r);
    r->optim = -1;
    const char *opt = s->option;
    char shown[48] = "";
    if (strcmp(opt, "os") == 0) {
        snprintf(r->sample, sizeof r->sample, "os:%lld", (long long)(k / 4 > 1 ? k / 4 : 1));
    } else if (strcmp(opt, "fast") == 0) {
        snprintf(r->sample, sizeof r->sample, "fast:%lld", (long long)(k < 4 ? k : 4));
    } else if (strncmp(opt, "os:", 3) == 0 || strncmp(opt, "fast:", 5) == 0) {
        snprintf(r->sample, sizeof r->sample, "%s", opt);
    } else if (strcmp(opt, "rep") == 0 || strcmp(opt, "param") == 0) {
        r->space = strcmp(opt, "rep") == 0 ? "rep" : "param";
    } else if (*opt) {
        mtgrad_optim_kind kind;
        if (mtgrad_optim_kind_parse(opt, &kind) != MTGRAD_OK) return -1;
        r->optim = (int)kind;
    }
    snprintf(shown, sizeof shown, "%s", r->sample[0] ? r->sample : opt);
    char pshown[SPEC_LEN];
    snprintf(pshown, sizeof pshown, "%s", s->params);
    for (char *p = pshown; *p; p++)
        if (*p == ',') *p = '+';
    int w = snprintf(r->label, sizeof r->label, "%s%s%s%s%s", s->method, *pshown ? ":" : "",
                     pshown, *shown ? "@" : "", shown);
    if (w < 0 || (size_t)w >= sizeof r->label) return -1;
    return 0;
}

/* Expected passes per step from the row's shape, for the estimate only (the table shows the
 * counted ones). */
static void expected_passes(const row_spec *s, const resolved *r, int64_t k, double *fwd,
                            double *bwd)
{
    unsigned f = mtgrad_method_flags(mtgrad_method_by_name(s->method));
    int jac = (f & (MTGRAD_NEEDS_GRAM | MTGRAD_NEEDS_JACOBIAN)) != 0;
    int dbl = strstr(s->params, "sampling=double") != NULL;
    *fwd = 1 + ((f & MTGRAD_NEEDS_LOSSES_AFTER) ? 1 : 0);
    *bwd = jac ? (double)k : 1;
    if (f & MTGRAD_NEEDS_FEEDBACK) {
        *bwd = 1;
        *fwd += strstr(s->params, "reuse_next=1") ? 0 : strstr(s->params, "central") ? 2 : 1;
    }
    if (r->sample[0]) { /* a count outside 1..k is refused by the step: estimate k */
        int64_t n = parse_int(strchr(r->sample, ':') + 1, 1, k);
        *bwd = (double)(n > 0 ? n : k);
    }
    if (r->space && strcmp(r->space, "rep") == 0) *bwd = 1;
    if (r->optim >= 0 && mtgrad_optim_kind_per_task((mtgrad_optim_kind)r->optim)) *bwd = (double)k;
    if (dbl) *fwd *= 3, *bwd *= 3;
}

/* ------------------------------------------------------------------ groups */

static void group_free(group *g)
{
    mtgrad_bench_free(g->b);
    for (int i = 0; i < NBUF; i++) free(g->x[i]), free(g->y[i]);
    memset(g, 0, sizeof *g);
}

/* Load the benchmark of (model, k) and cut NBUF batches from its training set (consecutive
 * samples, wrapping around: batches repeat when ntrain is small, which costs the same). */
static void group_load(group *g, const bt_opts *o, const char *model, int64_t k)
{
    memset(g, 0, sizeof *g);
    g->model = model;
    g->k = k;
    char params[128];
    snprintf(params, sizeof params, "k=%lld,ntrain=%lld,ntest=1", (long long)k,
             (long long)o->ntrain);
    g->status = mtgrad_bench_load(&g->b, model, params, 0, g->error, sizeof g->error);
    if (g->status != MTGRAD_OK) return;
    int64_t rb = mtgrad_bench_recipe(g->b).batch;
    g->batch = o->batch ? o->batch : o->batch_cap > 0 && rb > o->batch_cap ? o->batch_cap : rb;
    const mtgrad_dataset *tr = mtgrad_bench_train(g->b);
    g->ntrain = tr->n;
    g->in = tr->in_c * tr->in_h * tr->in_w;
    for (int j = 0; j < NBUF; j++) {
        g->x[j] = malloc((size_t)(g->batch * g->in) * sizeof(float));
        g->y[j] = malloc((size_t)(g->batch * k) * sizeof(float));
        if (!g->x[j] || !g->y[j]) {
            g->status = MTGRAD_E_NOMEM;
            snprintf(g->error, sizeof g->error, "out of memory for the batches");
            return;
        }
        for (int64_t i = 0; i < g->batch; i++) {
            int64_t src = ((int64_t)j * g->batch + i) % g->ntrain;
            memcpy(g->x[j] + i * g->in, tr->x + src * g->in, (size_t)g->in * sizeof(float));
            for (int64_t t = 0; t < k; t++) g->y[j][t * g->batch + i] = tr->y[t * tr->n + src];
        }
    }
}

/* ------------------------------------------------------------------ one cell */

static void cell_fail(cell *c, mtgrad_status st, const char *msg)
{
    c->status = st;
    snprintf(c->error, sizeof c->error, "%s", msg && *msg ? msg : mtgrad_status_str(st));
}

static mtgrad_optim_config optim_for(const group *g, const resolved *r)
{
    mtgrad_optim_config rec = mtgrad_bench_recipe(g->b).optim;
    if (r->optim < 0) return rec;
    /* another optimizer with the recipe's lr, schedule and weight decay, as the trainer does */
    return mtgrad_optim_config_with_kind(&rec, (mtgrad_optim_kind)r->optim);
}

/* A model and its step, built for one row. */
typedef struct runner {
    mtgrad_model *m;
    mtgrad_mtl_step *s;
    int nb; /* batches per step */
} runner;

static void runner_free(runner *r)
{
    mtgrad_mtl_step_free(r->s);
    mtgrad_model_free(r->m);
    memset(r, 0, sizeof *r);
}

/* Build the row's model (seed 0, the group's batch) and step; on failure the cell says why. */
static int runner_new(runner *rn, const bt_opts *o, const group *g, const row_spec *rs,
                      const resolved *r, cell *c)
{
    memset(rn, 0, sizeof *rn);
    mtgrad_model_spec spec = mtgrad_bench_model(g->b);
    spec.max_batch = g->batch;
    char err[320] = "";
    mtgrad_status st = mtgrad_model_new(&rn->m, &spec, 0, err, sizeof err);
    if (st != MTGRAD_OK) {
        cell_fail(c, st, err);
        return -1;
    }
    char params[SPEC_LEN + 64];
    snprintf(params, sizeof params, "threads=%d%s%s", o->threads, *rs->params ? "," : "",
             rs->params);
    mtgrad_optim_config oc = optim_for(g, r);
    mtgrad_step_options so = mtgrad_step_options_default();
    so.task_sample = r->sample[0] ? r->sample : NULL;
    so.grad_space = r->space;
    st = mtgrad_mtl_step_new_ex(&rn->s, rn->m, rs->method, params, &oc, &so, err, sizeof err);
    if (st == MTGRAD_OK) st = mtgrad_mtl_step_begin_epoch(rn->s, 0);
    if (st == MTGRAD_OK) {
        rn->nb = mtgrad_mtl_step_batches(rn->s);
        if (rn->nb < 1 || rn->nb > 3) {
            st = MTGRAD_E_UNSUPPORTED;
            snprintf(err, sizeof err, "the step reads %d batches", rn->nb);
        }
    }
    if (st != MTGRAD_OK) {
        cell_fail(c, st, rn->s && *mtgrad_mtl_step_error(rn->s) ? mtgrad_mtl_step_error(rn->s)
                                                                 : err);
        runner_free(rn);
        return -1;
    }
    return 0;
}

/* Step `it` of a runner (batches it*nb .. it*nb+nb-1 of the group's ring): wall seconds and
 * the step's phase times. */
static mtgrad_status runner_step(runner *rn, const group *g, int it, double *wall, double *times)
{
    const float *xs[3], *ys[3];
    for (int b = 0; b < rn->nb; b++) {
        int j = (it * rn->nb + b) % NBUF;
        xs[b] = g->x[j];
        ys[b] = g->y[j];
    }
    double t0 = mtgrad_tool_now();
    mtgrad_status st = rn->nb == 1
                           ? mtgrad_mtl_step_run(rn->s, xs[0], ys[0], g->batch, NULL, times)
                           : mtgrad_mtl_step_run_batches(rn->s, xs, ys, rn->nb, g->batch, NULL,
                                                         times);
    *wall = mtgrad_tool_now() - t0;
    return st;
}

/* The timed steps of a row, each right after one LS step when ref is given, so that the ratio
 * compares steps taken under the same load (the cores are shared: load drifts within a run).
 * Fills the medians and the passes of the row's own model. */
static void time_steps(const bt_opts *o, const group *g, runner *rn, runner *ref, cell *c)
{
    int n = o->steps;
    double *wall = malloc((size_t)(2 * n) * sizeof *wall);
    double *ph = malloc((size_t)(n * MTGRAD_TIME_COUNT) * sizeof *ph);
    if (!wall || !ph) {
        cell_fail(c, MTGRAD_E_NOMEM, "out of memory");
        free(wall), free(ph);
        return;
    }
    for (int it = 0; it < o->warmup + n && c->status == MTGRAD_OK; it++) {
        int j = it - o->warmup; /* timed index when >= 0 */
        if (j == 0) mtgrad_model_reset_passes(rn->m);
        double times[MTGRAD_TIME_COUNT] = {0}, tw, rw;
        if (ref) {
            mtgrad_status rs = runner_step(ref, g, it, &rw, times);
            if (rs != MTGRAD_OK) {
                cell_fail(c, rs, mtgrad_mtl_step_error(ref->s)); /* LS failed: say so */
                break;
            }
            if (j >= 0) wall[n + j] = rw;
        }
        mtgrad_status st = runner_step(rn, g, it, &tw, times);
        if (st != MTGRAD_OK) {
            cell_fail(c, st, mtgrad_mtl_step_error(rn->s));
            break;
        }
        if (j < 0) continue;
        wall[j] = tw;
        for (int p = 0; p < MTGRAD_TIME_COUNT; p++) ph[p * n + j] = times[p];
    }
    if (c->status == MTGRAD_OK) {
        mtgrad_pass_counts pc;
        mtgrad_model_passes(rn->m, &pc);
        int64_t heads = 0;
        for (int64_t i = 0; i < g->k; i++) heads += pc.head_backwards[i];
        c->ms = 1e3 * mtgrad_tool_median(wall, n);
        c->ref_ms = ref ? 1e3 * mtgrad_tool_median(wall + n, n) : c->ms;
        for (int p = 0; p < MTGRAD_TIME_COUNT; p++) c->phase_ms[p] = 1e3 * mtgrad_tool_median(ph + p * n, n);
        c->fwd = (double)pc.forwards / n;
        c->bwd = (double)pc.trunk_backwards / n;
        c->head_bwd = (double)heads / n;
        c->warnings = mtgrad_mtl_step_solver_warnings(rn->s);
    }
    free(wall);
    free(ph);
}

/* One row of a group; ls_spec (the LS row) is the paired reference, NULL for LS itself. */
static void run_cell(const bt_opts *o, const group *g, const row_spec *rs, const row_spec *ls_spec,
                     cell *c)
{
    resolved r, rl;
    memset(c, 0, sizeof *c);
    c->ms = c->ref_ms = NAN;
    if (resolve(rs, g->k, &r) != 0) {
        snprintf(c->label, sizeof c->label, "%.*s", (int)(sizeof c->label - 1), rs->text);
        cell_fail(c, MTGRAD_E_INVAL, "row too long");
        return;
    }
    memcpy(c->label, r.label, sizeof c->label);
    if (g->status != MTGRAD_OK) {
        cell_fail(c, g->status, g->error);
        return;
    }
    runner rn, ref;
    if (runner_new(&rn, o, g, rs, &r, c) != 0) return;
    if (ls_spec) {
        resolve(ls_spec, g->k, &rl);
        if (runner_new(&ref, o, g, ls_spec, &rl, c) != 0) {
            runner_free(&rn);
            return;
        }
    }
    time_steps(o, g, &rn, ls_spec ? &ref : NULL, c);
    runner_free(&rn);
    if (ls_spec) runner_free(&ref);
}

/* ------------------------------------------------------------------ output */

static void print_table(const bt_opts *o, const group *gs, int ng, const cell *cs)
{
    printf("%-38s %-9s %3s %5s %9s %7s %5s %5s %5s %8s %8s\n", "method", "model", "k", "batch",
           "ms/step", "xLS", "fwd", "bwd", "hbwd", "gram_ms", "solve_ms");
    for (int gi = 0; gi < ng; gi++) {
        const group *g = &gs[gi];
        for (int si = 0; si < o->ns; si++) {
            const cell *c = &cs[gi * o->ns + si];
            printf("%-38s %-9s %3lld %5lld ", c->label, g->model, (long long)g->k,
                   (long long)g->batch);
            if (c->status != MTGRAD_OK) {
                printf("error: %s: %s\n", mtgrad_status_str(c->status), c->error);
                continue;
            }
            printf("%9.3f %7.2f %5.2f %5.2f %5.2f %8.3f %8.3f\n", c->ms, c->ms / c->ref_ms, c->fwd, c->bwd,
                   c->head_bwd, c->phase_ms[MTGRAD_TIME_GRAM], c->phase_ms[MTGRAD_TIME_SOLVE]);
        }
    }
    printf("median of %d timed steps after %d warm-up, %d thread(s). xLS = ms / the median of\n"
           "LS steps (same model and k) taken one before each of the row's steps, so that both\n"
           "see the same load. fwd, bwd (trunk), hbwd (heads, summed): passes per step, counted\n"
           "by the model.\n",
           o->steps, o->warmup, o->threads);
}

static cJSON *cell_json(const group *g, const cell *c)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "method", c->label);
    cJSON_AddStringToObject(r, "model", g->model);
    cJSON_AddNumberToObject(r, "k", (double)g->k);
    cJSON_AddNumberToObject(r, "batch", (double)g->batch);
    cJSON_AddStringToObject(r, "status", mtgrad_status_str(c->status));
    if (c->status != MTGRAD_OK) {
        cJSON_AddStringToObject(r, "error", c->error);
        return r;
    }
    cJSON_AddNumberToObject(r, "ms_per_step", c->ms);
    cJSON_AddNumberToObject(r, "x_ls", c->ms / c->ref_ms);
    cJSON_AddNumberToObject(r, "ls_ms_paired", c->ref_ms);
    cJSON_AddNumberToObject(r, "forwards_per_step", c->fwd);
    cJSON_AddNumberToObject(r, "trunk_backwards_per_step", c->bwd);
    cJSON_AddNumberToObject(r, "head_backwards_per_step", c->head_bwd);
    cJSON *ph = cJSON_AddObjectToObject(r, "phases_ms");
    for (int p = 0; p < MTGRAD_TIME_COUNT; p++)
        cJSON_AddNumberToObject(ph, mtgrad_time_name(p), c->phase_ms[p]);
    cJSON_AddNumberToObject(r, "solver_warnings", (double)c->warnings);
    return r;
}

static int write_json(const bt_opts *o, const group *gs, int ng, const cell *cs)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", mtgrad_version_string());
    cJSON_AddNumberToObject(root, "steps", o->steps);
    cJSON_AddNumberToObject(root, "warmup", o->warmup);
    cJSON_AddNumberToObject(root, "threads", o->threads);
    cJSON *rows = cJSON_AddArrayToObject(root, "rows");
    for (int gi = 0; gi < ng; gi++)
        for (int si = 0; si < o->ns; si++)
            mtgrad_json_push(rows, cell_json(&gs[gi], &cs[gi * o->ns + si]));
    char *s = mtgrad_json_print(root);
    cJSON_Delete(root);
    FILE *f = s ? fopen(o->json, "w") : NULL;
    int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    cJSON_free(s);
    if (!ok) fprintf(stderr, "mtgrad bench --train: cannot write %s\n", o->json);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ main */

/* Expected seconds of a cell, from the LS cell of its group (1 forward, 1 backward). */
static double estimate(const bt_opts *o, const group *g, const row_spec *rs, const cell *ls)
{
    resolved r;
    if (g->status != MTGRAD_OK || ls->status != MTGRAD_OK || resolve(rs, g->k, &r) != 0)
        return 0;
    double fwd, bwd, tf = ls->phase_ms[MTGRAD_TIME_FORWARD], tb = ls->phase_ms[MTGRAD_TIME_BACKWARD];
    expected_passes(rs, &r, g->k, &fwd, &bwd);
    double rest = fmax(0, ls->ms - tf - tb);
    return 1e-3 * (o->warmup + o->steps) * (fwd * tf + bwd * tb + rest + ls->ms); /* + paired LS */
}

int mtgrad_cmd_bench_train(int argc, char **argv)
{
    bt_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) {
        free(o.specs);
        return rc == 1 ? 0 : rc;
    }
    mtgrad_nn_set_threads(o.threads);
    group *gs = calloc(N_MODELS * (size_t)o.nk, sizeof *gs);
    int ng = 0;
    for (size_t mi = 0; mi < N_MODELS; mi++)
        for (int ki = 0; ki < o.nk && gs; ki++) {
            if (!o.models[mi]) continue;
            if (strcmp(all_models[mi], "fashion-k") == 0 && o.ks[ki] > 10) {
                fprintf(stderr, "mtgrad bench --train: fashion-k has k <= 10: k=%lld on mmoe only\n",
                        (long long)o.ks[ki]);
                continue;
            }
            group_load(&gs[ng++], &o, all_models[mi], o.ks[ki]);
        }
    cell *cs = gs ? calloc((size_t)(ng * o.ns), sizeof *cs) : NULL;
    if (!cs) {
        fprintf(stderr, "mtgrad bench --train: out of memory\n");
        free(gs), free(o.specs);
        return 1;
    }
    /* LS of every group first: the reference, and the basis of the estimate */
    double total_est = 0, t_start = mtgrad_tool_now();
    for (int gi = 0; gi < ng; gi++) {
        cell *ls = &cs[gi * o.ns + o.ls_index];
        run_cell(&o, &gs[gi], &o.specs[o.ls_index], NULL, ls);
        if (gs[gi].status != MTGRAD_OK)
            fprintf(stderr, "mtgrad bench --train: %s k=%lld: %s\n", gs[gi].model,
                    (long long)gs[gi].k, gs[gi].error);
        for (int si = 0; si < o.ns; si++)
            if (si != o.ls_index)
                total_est += cs[gi * o.ns + si].est_s = estimate(&o, &gs[gi], &o.specs[si], ls);
    }
    int todo = ng * (o.ns - 1), done = 0;
    fprintf(stderr, "mtgrad bench --train: %d groups x %d rows; estimated %.0f s more\n", ng, o.ns,
            total_est);
    double est_done = 0, t_rest = mtgrad_tool_now();
    for (int gi = 0; gi < ng; gi++)
        for (int si = 0; si < o.ns; si++) {
            if (si == o.ls_index) continue;
            cell *c = &cs[gi * o.ns + si];
            double est = c->est_s;
            run_cell(&o, &gs[gi], &o.specs[si], &o.specs[o.ls_index], c);
            est_done += est;
            done++;
            double spent = mtgrad_tool_now() - t_rest;
            double eta = est_done > 0 ? (total_est - est_done) * spent / est_done : 0;
            if (c->status == MTGRAD_OK)
                fprintf(stderr, "[%d/%d] %s k=%lld %s: %.3f ms/step (eta %.0f s)\n", done, todo,
                        gs[gi].model, (long long)gs[gi].k, c->label, c->ms, eta);
            else
                fprintf(stderr, "[%d/%d] %s k=%lld %s: %s (eta %.0f s)\n", done, todo,
                        gs[gi].model, (long long)gs[gi].k, c->label,
                        mtgrad_status_str(c->status), eta);
        }
    fprintf(stderr, "mtgrad bench --train: %.1f s\n", mtgrad_tool_now() - t_start);
    print_table(&o, gs, ng, cs);
    rc = o.json ? write_json(&o, gs, ng, cs) : 0;
    for (int gi = 0; gi < ng; gi++) group_free(&gs[gi]);
    free(gs);
    free(cs);
    free(o.specs);
    return rc;
}
