/* cmd_compare.c — `mtgrad compare --bench B --methods ... --seeds N`: for every seed, the
 * single-task baselines (one network per task, same recipe and budget) and every method; then a
 * markdown table (per-task metrics mean ± se, Δm% ± se against the STL run of the same seed,
 * mean rank within the table, time per epoch and relative to ls), DIR/compare.json and SVG
 * plots (test-metric and training-loss curves per method, Δm% bars). The reporting format is
 * benchmarks.md §8; the JSON schema is in docs/report.md. */
#define _GNU_SOURCE /* getopt_long */
#include "cli.h"
#include "mtgrad_train.h"
#include "report.h"
#include "svg.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

const char mtgrad_usage_compare[] =
    "usage: mtgrad compare --bench B [--methods all|M1,M2,...] [options]\n"
    "  -b, --bench B           benchmark: mmoe, multifashion, fashion-k\n"
    "  -m, --methods LIST      'all' (every method) or a comma list; ls is always included\n"
    "                          (default: ls,mgda,pcgrad,cagrad,imgrad,nash_mtl,famo,sdmgrad)\n"
    "  -p, --params M:LIST     parameters of method M, e.g. -p cagrad:c=0.4 (repeatable)\n"
    "  -s, --seeds N           seeds 0..N-1 (added to --seed; default 3)\n"
    "      --seed S            first seed (default 0)\n"
    "      --quick             a small subset: the first 2000 train / 1000 test samples and at\n"
    "                          most 20 epochs of the recipe (unless --epochs is given)\n"
    "      --epochs N          epochs (default: the benchmark's recipe)\n"
    "      --batch N           batch size (default: the benchmark's recipe)\n"
    "      --bench-params LIST benchmark parameters\n"
    "      --data-seed S       seed of the data (default 0; the same data for every run)\n"
    "      --threads T         threads (default 1)\n"
    "  -o, --out DIR           write DIR/compare.json, DIR/curves.svg, DIR/delta_m.svg\n"
    "  -q, --quiet             no per-run lines on stderr\n"
    "  Exit status 0, 1 if a run failed or a file could not be written, 2 on a usage error.\n";

#define MAX_METHODS 64
#define MAX_PARAMS 64
#define DEFAULT_METHODS "ls,mgda,pcgrad,cagrad,imgrad,nash_mtl,famo,sdmgrad"
/* --quick: the first QUICK_TRAIN / QUICK_TEST samples and at most QUICK_EPOCHS epochs of the
 * recipe. With the default 9 methods and 3 seeds on one thread: mmoe ~6 s (20 epochs),
 * multifashion ~4 min (10 epochs), fashion-k ~1 min (3 epochs). */
#define QUICK_TRAIN 2000
#define QUICK_TEST 1000
#define QUICK_EPOCHS 20

typedef struct cmp_opts {
    const char *bench, *bench_params, *methods, *out;
    const char *params[MAX_PARAMS]; /* "method:list" */
    int n_params;
    int64_t seeds, epochs, batch;
    uint64_t seed0, data_seed;
    int threads, quick, quiet;
} cmp_opts;

/* One training run's outcome. */
typedef struct run_rec {
    int ok;
    double metric[MTGRAD_NN_MAX_TASKS]; /* final test metric per bench task */
    double time_epoch;                  /* mean step time per epoch (s) */
    double dm;                          /* Δm% against the STL run of the same seed */
    int has_dm;
    double *curve_metric; /* epochs x k (test metric) */
    double *curve_loss;   /* epochs (training loss, mean over tasks) */
    int64_t epochs;
    char err[512];
} run_rec;

/* A row of the table: a method (or STL) over the seeds. */
typedef struct row {
    const char *name;
    const char *params;
    run_rec *runs; /* one per seed */
    int n_ok;
    double mean[MTGRAD_NN_MAX_TASKS], se[MTGRAD_NN_MAX_TASKS];
    double dm_mean, dm_se, mr, time, time_x_ls;
    int n_dm;
} row;

typedef struct cmp {
    cmp_opts o;
    const mtgrad_bench *b;
    int64_t k;
    int higher[MTGRAD_NN_MAX_TASKS];
    row stl;
    row rows[MAX_METHODS];
    int n_rows;
    int ls_row;
    int64_t ntrain, ntest, epochs, batch;
    int failures;
} cmp;

/* ---------------------------------------------------------------- options */

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "mtgrad compare: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "",
            mtgrad_usage_compare);
    return 2;
}

enum { OPT_SEED = 256, OPT_QUICK, OPT_EPOCHS, OPT_BATCH, OPT_BENCH_PARAMS, OPT_DATA_SEED, OPT_THREADS };

static int numeric_opt(int ch, const char *arg, cmp_opts *o)
{
    int64_t v = 0;
    switch (ch) {
    case 's': return mtgrad_parse_i64(arg, 1, 1000, &o->seeds);
    case OPT_SEED: return mtgrad_parse_u64(arg, &o->seed0);
    case OPT_EPOCHS: return mtgrad_parse_i64(arg, 1, INT64_C(1) << 40, &o->epochs);
    case OPT_BATCH: return mtgrad_parse_i64(arg, 1, INT64_C(1) << 30, &o->batch);
    case OPT_DATA_SEED: return mtgrad_parse_u64(arg, &o->data_seed);
    case OPT_THREADS:
        if (mtgrad_parse_i64(arg, 1, 256, &v) != 0) return -1;
        o->threads = (int)v;
        return 0;
    default: return -1;
    }
}

static int parse_opts(int argc, char **argv, cmp_opts *o)
{
    static const struct option opts[] = {
        {"bench", required_argument, NULL, 'b'},  {"methods", required_argument, NULL, 'm'},
        {"params", required_argument, NULL, 'p'}, {"seeds", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, OPT_SEED}, {"quick", no_argument, NULL, OPT_QUICK},
        {"epochs", required_argument, NULL, OPT_EPOCHS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"bench-params", required_argument, NULL, OPT_BENCH_PARAMS},
        {"data-seed", required_argument, NULL, OPT_DATA_SEED},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"out", required_argument, NULL, 'o'},    {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->seeds = 3;
    o->threads = 1;
    o->methods = DEFAULT_METHODS;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "b:m:p:s:o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': o->bench = optarg; break;
        case 'm': o->methods = optarg; break;
        case 'p':
            if (o->n_params == MAX_PARAMS || !strchr(optarg, ':'))
                return usage_error("-p takes METHOD:LIST, e.g. -p cagrad:c=0.4; got", optarg);
            o->params[o->n_params++] = optarg;
            break;
        case OPT_QUICK: o->quick = 1; break;
        case OPT_BENCH_PARAMS: o->bench_params = optarg; break;
        case 'o': o->out = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(mtgrad_usage_compare, stdout); return 1;
        case '?': fputs(mtgrad_usage_compare, stderr); return 2;
        default:
            if (numeric_opt(ch, optarg, o) != 0) return usage_error("bad number:", optarg);
        }
    }
    if (optind != argc) return usage_error("unexpected argument", argv[optind]);
    if (!o->bench) return usage_error("--bench B is required", NULL);
    return 0;
}

/* The parameters given for method `name` with -p name:LIST ("" if none; the last one wins). */
static const char *method_params(const cmp_opts *o, const char *name)
{
    const char *p = "";
    size_t n = strlen(name);
    for (int i = 0; i < o->n_params; i++)
        if (strncmp(o->params[i], name, n) == 0 && o->params[i][n] == ':') p = o->params[i] + n + 1;
    return p;
}

static int add_row(cmp *C, const char *name)
{
    for (int i = 0; i < C->n_rows; i++)
        if (strcmp(C->rows[i].name, name) == 0) return 0; /* listed twice: once is enough */
    if (C->n_rows == MAX_METHODS) return usage_error("too many methods", NULL);
    C->rows[C->n_rows].name = name;
    C->rows[C->n_rows++].params = method_params(&C->o, name);
    return 0;
}

/* The method rows from --methods ('all' = the registry), ls first if it was not listed. */
static int parse_methods(cmp *C, char *list)
{
    if (strcmp(list, "all") == 0) {
        for (size_t i = 0; i < mtgrad_method_count(); i++)
            if (add_row(C, mtgrad_method_name(mtgrad_method_at(i)))) return 2;
    } else {
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            const mtgrad_method *m = mtgrad_method_by_name(t);
            if (!m) return usage_error("unknown method (see 'mtgrad methods'):", t);
            if (add_row(C, mtgrad_method_name(m))) return 2;
        }
    }
    C->ls_row = -1;
    for (int i = 0; i < C->n_rows; i++)
        if (strcmp(C->rows[i].name, "ls") == 0) C->ls_row = i;
    if (C->ls_row < 0) { /* time ×LS needs ls in the same run */
        if (C->n_rows == MAX_METHODS) return usage_error("too many methods", NULL);
        memmove(C->rows + 1, C->rows, (size_t)C->n_rows * sizeof *C->rows);
        C->rows[0] = (row){.name = "ls", .params = method_params(&C->o, "ls")};
        C->n_rows++;
        C->ls_row = 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- runs */

static mtgrad_train_config run_config(const cmp *C, const char *method, const char *params,
                                      uint64_t seed, int64_t stl)
{
    mtgrad_train_config c = mtgrad_train_config_default();
    c.bench = C->o.bench;
    c.bench_params = C->o.bench_params;
    c.data_seed = C->o.data_seed;
    c.method = method;
    c.method_params = params;
    c.seed = seed;
    int64_t recipe = mtgrad_bench_recipe(C->b).epochs;
    c.epochs = C->o.epochs ? C->o.epochs : C->o.quick ? (recipe < QUICK_EPOCHS ? recipe : QUICK_EPOCHS) : 0;
    c.batch = C->o.batch;
    c.threads = C->o.threads;
    c.stl_task = stl;
    if (C->o.quick) {
        c.limit_train = QUICK_TRAIN;
        c.limit_test = QUICK_TEST;
    }
    return c;
}

/* Copies what the table and the plots need out of a result; model task i is bench task
 * task0 + i. */
static int keep_result(const cmp *C, run_rec *rec, const mtgrad_train_result *r)
{
    int64_t E = r->epochs, k = C->k;
    if (!rec->curve_metric) {
        rec->curve_metric = calloc((size_t)(E * k + 1), sizeof(double));
        rec->curve_loss = calloc((size_t)E + 1, sizeof(double));
        if (!rec->curve_metric || !rec->curve_loss) return -1;
        for (int64_t i = 0; i < E * k; i++) rec->curve_metric[i] = NAN;
        rec->epochs = E;
    }
    for (int64_t i = 0; i < r->k; i++) {
        int64_t t = r->task0 + i;
        rec->metric[t] = r->test_metric[(E - 1) * r->k + i];
        for (int64_t e = 0; e < E && e < rec->epochs; e++) {
            rec->curve_metric[e * k + t] = r->test_metric[e * r->k + i];
            rec->curve_loss[e] += r->train_loss[e * r->k + i] / (double)k;
        }
    }
    rec->time_epoch += mtgrad_report_epoch_time(r, MTGRAD_TIME_TOTAL);
    return 0;
}

static int run_one(cmp *C, run_rec *rec, const char *method, const char *params, uint64_t seed,
                   int64_t stl, int index, int total)
{
    mtgrad_train_config c = run_config(C, method, params, seed, stl);
    mtgrad_train_result *r = NULL;
    char err[512] = "";
    mtgrad_status st = mtgrad_train_run_bench(C->b, &c, &r, err, sizeof err);
    if (st == MTGRAD_OK && r->epochs > 0) {
        C->ntrain = r->ntrain, C->ntest = r->ntest, C->epochs = r->epochs, C->batch = r->batch;
        if (keep_result(C, rec, r) != 0) st = MTGRAD_E_NOMEM, snprintf(err, sizeof err, "out of memory");
    } else if (st == MTGRAD_OK) {
        st = MTGRAD_E_INVAL, snprintf(err, sizeof err, "no epoch was run");
    }
    if (!C->o.quiet) {
        fprintf(stderr, "[%d/%d] seed %llu %s%s", index, total, (unsigned long long)seed, method,
                stl >= 0 ? " (stl " : "");
        if (stl >= 0) fprintf(stderr, "%s)", mtgrad_bench_task_name(C->b, stl));
        if (st == MTGRAD_OK)
            fprintf(stderr, ": %.2f s/epoch\n", mtgrad_report_epoch_time(r, MTGRAD_TIME_TOTAL));
        else fprintf(stderr, ": FAILED: %s\n", err);
    }
    mtgrad_train_result_free(r);
    if (st != MTGRAD_OK) {
        snprintf(rec->err, sizeof rec->err, "%s", err);
        rec->ok = 0;
        C->failures++;
        return -1;
    }
    return 0;
}

static int alloc_runs(cmp *C)
{
    size_t n = (size_t)C->o.seeds;
    C->stl.name = "stl";
    C->stl.params = "";
    C->stl.runs = calloc(n, sizeof(run_rec));
    if (!C->stl.runs) return -1;
    for (int i = 0; i < C->n_rows; i++)
        if (!(C->rows[i].runs = calloc(n, sizeof(run_rec)))) return -1;
    return 0;
}

static void run_all(cmp *C)
{
    int total = (int)(C->o.seeds * (C->k + C->n_rows)), index = 0;
    for (int64_t s = 0; s < C->o.seeds; s++) {
        uint64_t seed = C->o.seed0 + (uint64_t)s;
        run_rec *stl = &C->stl.runs[s];
        stl->ok = 1;
        for (int64_t t = 0; t < C->k; t++)
            /* a single-task model: plain training of its loss, whatever -p gave ls */
            if (run_one(C, stl, "ls", "", seed, t, ++index, total) != 0)
                stl->ok = 0;
        for (int i = 0; i < C->n_rows; i++) {
            run_rec *rec = &C->rows[i].runs[s];
            rec->ok = run_one(C, rec, C->rows[i].name, C->rows[i].params, seed, -1, ++index,
                              total) == 0;
        }
    }
}

/* ---------------------------------------------------------------- statistics */

static void summarise(cmp *C, row *r)
{
    double x[1000];
    r->n_ok = 0;
    for (int64_t s = 0; s < C->o.seeds; s++) r->n_ok += r->runs[s].ok;
    for (int64_t t = 0; t < C->k; t++) {
        int n = 0;
        for (int64_t s = 0; s < C->o.seeds; s++)
            if (r->runs[s].ok) x[n++] = r->runs[s].metric[t];
        if (n == 0 || mtgrad_mean_se(x, n, &r->mean[t], &r->se[t]) != MTGRAD_OK)
            r->mean[t] = r->se[t] = NAN;
    }
    int n = 0;
    for (int64_t s = 0; s < C->o.seeds; s++)
        if (r->runs[s].ok) x[n++] = r->runs[s].time_epoch;
    r->time = n ? 0 : NAN;
    for (int i = 0; i < n; i++) r->time += x[i] / n;
    n = 0;
    for (int64_t s = 0; s < C->o.seeds; s++) {
        run_rec *rec = &r->runs[s];
        rec->has_dm = rec->ok && C->stl.runs[s].ok &&
                      mtgrad_delta_m(rec->metric, C->stl.runs[s].metric, C->higher, C->k,
                                     &rec->dm) == MTGRAD_OK;
        if (rec->has_dm) x[n++] = rec->dm;
    }
    r->n_dm = n;
    if (n == 0 || mtgrad_mean_se(x, n, &r->dm_mean, &r->dm_se) != MTGRAD_OK)
        r->dm_mean = r->dm_se = NAN;
}

/* Ranks over the methods with a result (STL is the reference, not ranked). */
static void mean_ranks(cmp *C)
{
    double vals[MAX_METHODS * MTGRAD_NN_MAX_TASKS], mr[MAX_METHODS];
    int idx[MAX_METHODS], n = 0;
    for (int i = 0; i < C->n_rows; i++) {
        C->rows[i].mr = NAN;
        if (C->rows[i].n_ok == 0) continue;
        memcpy(vals + n * C->k, C->rows[i].mean, (size_t)C->k * sizeof(double));
        idx[n++] = i;
    }
    if (n > 0 && mtgrad_mean_rank(vals, n, C->k, C->higher, mr) == MTGRAD_OK)
        for (int j = 0; j < n; j++) C->rows[idx[j]].mr = mr[j];
}

static void statistics(cmp *C)
{
    summarise(C, &C->stl);
    C->stl.dm_mean = 0, C->stl.dm_se = 0;
    for (int i = 0; i < C->n_rows; i++) summarise(C, &C->rows[i]);
    double ls = C->rows[C->ls_row].time;
    for (int i = 0; i < C->n_rows; i++) C->rows[i].time_x_ls = C->rows[i].time / ls;
    C->stl.time_x_ls = C->stl.time / ls;
    mean_ranks(C);
}

/* ---------------------------------------------------------------- table */

static void print_pm(double m, double se, int accuracy)
{
    if (isnan(m)) printf(" failed |");
    else if (accuracy) printf(" %.4f ± %.4f |", m, se);
    else printf(" %.4g ± %.2g |", m, se);
}

static void print_row(const cmp *C, const row *r, int is_stl)
{
    printf("| %s |", r->name);
    for (int64_t t = 0; t < C->k; t++) print_pm(r->mean[t], r->se[t], C->higher[t]);
    if (is_stl) printf(" 0 | — |");
    else if (isnan(r->dm_mean)) printf(" — | — |");
    else printf(" %+.2f ± %.2f | %.2f |", r->dm_mean, r->dm_se, r->mr);
    printf(" %.3f | %.2f |\n", r->time, r->time_x_ls);
}

static void print_table(const cmp *C)
{
    printf("\n%s: %lld seeds, %lld epochs, batch %lld, %lld train / %lld test samples\n\n",
           mtgrad_bench_loaded_name(C->b), (long long)C->o.seeds, (long long)C->epochs,
           (long long)C->batch, (long long)C->ntrain, (long long)C->ntest);
    printf("| method |");
    for (int64_t t = 0; t < C->k; t++)
        printf(" %s %s %s |", mtgrad_bench_task_name(C->b, t),
               C->higher[t] ? "acc" : "mse", C->higher[t] ? "↑" : "↓");
    printf(" Δm%% ↓ | MR ↓ | time/epoch (s) | time ×LS |\n|---|");
    for (int64_t t = 0; t < C->k; t++) printf("---|");
    printf("---|---|---|---|\n");
    print_row(C, &C->stl, 1);
    for (int i = 0; i < C->n_rows; i++) print_row(C, &C->rows[i], 0);
    printf("\nSTL: one network per task (time: the sum of the %lld networks). Δm%% against the "
           "STL run of the same seed, mean ± standard error over seeds.\n", (long long)C->k);
    for (int i = 0; i < C->n_rows; i++)
        if (C->rows[i].params[0]) printf("%s parameters: %s\n", C->rows[i].name, C->rows[i].params);
}

/* ---------------------------------------------------------------- JSON */

static cJSON *runs_json(const cmp *C, const row *r)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t s = 0; a && s < C->o.seeds; s++) {
        const run_rec *rec = &r->runs[s];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddNumberToObject(o, "seed", (double)(C->o.seed0 + (uint64_t)s));
        cJSON_AddBoolToObject(o, "ok", rec->ok);
        if (rec->ok) {
            cJSON_AddItemToObject(o, "metrics", cJSON_CreateDoubleArray(rec->metric, (int)C->k));
            cJSON_AddNumberToObject(o, "time_per_epoch", rec->time_epoch);
            if (rec->has_dm) cJSON_AddNumberToObject(o, "delta_m", rec->dm);
        } else {
            cJSON_AddStringToObject(o, "error", rec->err);
        }
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* Every parameter of the method as the aggregator reads it back (defaults included, seed and
 * threads left out): the hyper-parameters actually used. */
static cJSON *effective_params(const cmp *C, const row *r)
{
    cJSON *o = cJSON_CreateObject();
    mtgrad_aggregator *a = NULL;
    if (!o || mtgrad_aggregator_new(&a, r->name, C->k, r->params, NULL, 0) != MTGRAD_OK) return o;
    const mtgrad_method *m = mtgrad_aggregator_method(a);
    for (size_t i = 0; i < mtgrad_method_param_count(m); i++) {
        const mtgrad_param_desc *p = mtgrad_method_param_at(m, i);
        char v[256];
        if ((p->flags & MTGRAD_PARAM_COMMON) || mtgrad_aggregator_get_param(a, p->name, v, sizeof v) < 0)
            continue;
        cJSON_AddStringToObject(o, p->name, v);
    }
    mtgrad_aggregator_free(a);
    return o;
}

static cJSON *row_json(const cmp *C, const row *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "params", r->params);
    if (r != &C->stl) cJSON_AddItemToObject(o, "params_used", effective_params(C, r));
    cJSON_AddNumberToObject(o, "seeds_ok", r->n_ok);
    cJSON_AddItemToObject(o, "metric_mean", cJSON_CreateDoubleArray(r->mean, (int)C->k));
    cJSON_AddItemToObject(o, "metric_se", cJSON_CreateDoubleArray(r->se, (int)C->k));
    cJSON_AddNumberToObject(o, "delta_m_mean", r->dm_mean);
    cJSON_AddNumberToObject(o, "delta_m_se", r->dm_se);
    if (r != &C->stl) cJSON_AddNumberToObject(o, "mean_rank", r->mr);
    cJSON_AddNumberToObject(o, "time_per_epoch", r->time);
    cJSON_AddNumberToObject(o, "time_x_ls", r->time_x_ls);
    cJSON_AddItemToObject(o, "runs", runs_json(C, r));
    return o;
}

/* Peak resident memory of this process (all runs of the comparison). */
static double peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

static cJSON *compare_json(const cmp *C)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "schema", MTGRAD_COMPARE_SCHEMA);
    cJSON_AddStringToObject(j, "mtgrad_version", MTGRAD_VERSION_STRING);
    cJSON *c = cJSON_AddObjectToObject(j, "config");
    if (c) {
        cJSON_AddStringToObject(c, "bench", mtgrad_bench_loaded_name(C->b));
        cJSON_AddStringToObject(c, "bench_params", C->o.bench_params ? C->o.bench_params : "");
        cJSON_AddNumberToObject(c, "data_seed", (double)C->o.data_seed);
        cJSON_AddNumberToObject(c, "seed0", (double)C->o.seed0);
        cJSON_AddNumberToObject(c, "seeds", (double)C->o.seeds);
        cJSON_AddNumberToObject(c, "epochs", (double)C->epochs);
        cJSON_AddNumberToObject(c, "batch", (double)C->batch);
        cJSON_AddNumberToObject(c, "ntrain", (double)C->ntrain);
        cJSON_AddNumberToObject(c, "ntest", (double)C->ntest);
        cJSON_AddBoolToObject(c, "quick", C->o.quick);
        cJSON_AddNumberToObject(c, "threads", C->o.threads);
        mtgrad_recipe rec = mtgrad_bench_recipe(C->b);
        cJSON_AddItemToObject(c, "optimizer", mtgrad_report_optim(&rec.optim));
    }
    cJSON *t = cJSON_AddArrayToObject(j, "tasks");
    for (int64_t i = 0; t && i < C->k; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", mtgrad_bench_task_name(C->b, i));
        cJSON_AddStringToObject(o, "metric", mtgrad_metric_name(mtgrad_bench_metric(C->b, i)));
        cJSON_AddBoolToObject(o, "higher_is_better", C->higher[i]);
        cJSON_AddItemToArray(t, o);
    }
    cJSON_AddNumberToObject(j, "peak_rss_mb", peak_rss_mb());
    cJSON_AddItemToObject(j, "stl", row_json(C, &C->stl));
    cJSON *m = cJSON_AddArrayToObject(j, "methods");
    for (int i = 0; m && i < C->n_rows; i++) cJSON_AddItemToArray(m, row_json(C, &C->rows[i]));
    return j;
}

/* ---------------------------------------------------------------- plots */

/* Mean over the successful seeds of a row's curve value at epoch e (column col of a
 * width-wide curve; width 0 = the loss curve). */
static double curve_mean(const cmp *C, const row *r, int64_t e, int64_t col, int metric)
{
    double s = 0;
    int n = 0;
    for (int64_t q = 0; q < C->o.seeds; q++) {
        const run_rec *rec = &r->runs[q];
        if (!rec->ok || e >= rec->epochs) continue;
        s += metric ? rec->curve_metric[e * C->k + col] : rec->curve_loss[e];
        n++;
    }
    return n ? s / n : NAN;
}

/* One panel: a curve per row (STL last) against the epoch. */
static void panel(svg *S, const cmp *C, double px, const char *title, int64_t col, int metric)
{
    double lo = INFINITY, hi = -INFINITY, x[4096], y[4096];
    int64_t E = C->epochs < 4096 ? C->epochs : 4096;
    for (int i = 0; i <= C->n_rows; i++) {
        const row *r = i < C->n_rows ? &C->rows[i] : &C->stl;
        for (int64_t e = 0; e < E; e++) {
            double v = curve_mean(C, r, e, col, metric);
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    }
    if (!(lo <= hi)) lo = 0, hi = 1;
    /* losses and MSEs fall by orders of magnitude: a log axis shows the late epochs too */
    int log_y = (!metric || !C->higher[col]) && lo > 0;
    svg_viewport v = svg_viewport_make(px + 60, 40, 280, 250, 1, (double)(E > 1 ? E : 2), lo, hi);
    v.log_y = log_y;
    svg_axes(S, &v, "epoch", metric ? (C->higher[col] ? "test accuracy" : "test MSE") : "train loss");
    svg_text(S, px + 200, 28, title, 14, SVG_MIDDLE, NULL, 1);
    for (int i = 0; i <= C->n_rows; i++) {
        const row *r = i < C->n_rows ? &C->rows[i] : &C->stl;
        if (!metric && r == &C->stl) continue; /* STL's loss is of k separate networks */
        for (int64_t e = 0; e < E; e++) x[e] = (double)(e + 1), y[e] = curve_mean(C, r, e, col, metric);
        svg_polyline(S, &v, x, y, (size_t)E, r == &C->stl ? "#000000" : svg_color((size_t)i),
                     r == &C->stl ? 2.5 : 1.5);
    }
}

static int plot_curves(const cmp *C, const char *path, char *err, size_t errlen)
{
    int64_t panels = C->k + 1;
    svg *S = svg_open(path, 360.0 * (double)panels + 160, 340, err, errlen);
    if (!S) return -1;
    panel(S, C, 0, "training loss (mean over tasks)", 0, 0);
    for (int64_t t = 0; t < C->k; t++)
        panel(S, C, 360.0 * (double)(t + 1), mtgrad_bench_task_name(C->b, t), t, 1);
    const char *labels[MAX_METHODS + 1], *colors[MAX_METHODS + 1];
    for (int i = 0; i < C->n_rows; i++) labels[i] = C->rows[i].name, colors[i] = svg_color((size_t)i);
    labels[C->n_rows] = "stl", colors[C->n_rows] = "#000000";
    svg_legend(S, 360.0 * (double)panels + 10, 40, labels, colors, NULL, (size_t)C->n_rows + 1);
    return svg_close(S, err, errlen);
}

/* Frame, y ticks with labels and grid lines (svg_axes would also label x, which a bar chart
 * of methods has no use for). */
static void y_axis(svg *S, const svg_viewport *v, const char *label)
{
    double ticks[16];
    size_t n = svg_ticks(v->y0, v->y1, 0, ticks, 16);
    for (size_t i = 0; i < n; i++) {
        char t[32];
        snprintf(t, sizeof t, "%g", ticks[i]);
        svg_line(S, v, v->x0, ticks[i], v->x1, ticks[i], "#e6e6e6", 1, 0);
        svg_text(S, v->px - 6, svg_py(v, ticks[i]) + 4, t, 11, SVG_END, NULL, 0);
    }
    svg_rect_px(S, v->px, v->py, v->pw, v->ph, "none", "#333333", 1);
    svg_text_vertical(S, v->px - 45, v->py + v->ph / 2, label, 12, NULL);
}

static int plot_delta_m(const cmp *C, const char *path, char *err, size_t errlen)
{
    double lo = 0, hi = 0;
    for (int i = 0; i < C->n_rows; i++) {
        const row *r = &C->rows[i];
        if (!isfinite(r->dm_mean)) continue;
        lo = fmin(lo, r->dm_mean - r->dm_se), hi = fmax(hi, r->dm_mean + r->dm_se);
    }
    if (lo == hi) hi = lo + 1;
    double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
    double W = 80 + 50.0 * C->n_rows + 40;
    svg *S = svg_open(path, W, 380, err, errlen);
    if (!S) return -1;
    svg_viewport v = svg_viewport_make(70, 40, W - 100, 260, 0, C->n_rows, lo, hi);
    y_axis(S, &v, "Δm% vs STL (lower is better)");
    svg_line(S, &v, 0, 0, C->n_rows, 0, "#000000", 1, 0);
    for (int i = 0; i < C->n_rows; i++) {
        const row *r = &C->rows[i];
        double x0 = i + 0.15, x1 = i + 0.85, xm = i + 0.5;
        svg_text(S, svg_px(&v, xm), 318, r->name, 11, SVG_MIDDLE, NULL, 0);
        if (!isfinite(r->dm_mean)) continue;
        svg_rect(S, &v, x0, 0, x1, r->dm_mean, svg_color((size_t)i), "#333333");
        svg_line(S, &v, xm, r->dm_mean - r->dm_se, xm, r->dm_mean + r->dm_se, "#000000", 1.5, 0);
    }
    svg_text(S, W / 2, 24, "Δm% (mean ± standard error over seeds)", 14, SVG_MIDDLE, NULL, 1);
    return svg_close(S, err, errlen);
}

static int write_outputs(const cmp *C)
{
    char err[512], path[4096];
    if (mtgrad_report_mkdir(C->o.out, err, sizeof err) != 0) goto fail;
    cJSON *j = compare_json(C);
    if (!j) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    int bad = mtgrad_report_path(path, sizeof path, C->o.out, "compare.json") != 0 ||
              mtgrad_report_write_json(path, j, err, sizeof err) != 0;
    cJSON_Delete(j);
    if (bad) goto fail;
    if (mtgrad_report_path(path, sizeof path, C->o.out, "curves.svg") != 0 ||
        plot_curves(C, path, err, sizeof err) != 0)
        goto fail;
    if (mtgrad_report_path(path, sizeof path, C->o.out, "delta_m.svg") != 0 ||
        plot_delta_m(C, path, err, sizeof err) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "mtgrad compare: %s\n", err);
    return 1;
}

/* ---------------------------------------------------------------- main */

static void free_row(row *r, int64_t seeds)
{
    for (int64_t s = 0; r->runs && s < seeds; s++) {
        free(r->runs[s].curve_metric);
        free(r->runs[s].curve_loss);
    }
    free(r->runs);
}

static int compare(cmp *C)
{
    C->k = mtgrad_bench_model(C->b).k;
    for (int64_t t = 0; t < C->k; t++)
        C->higher[t] = mtgrad_metric_higher_better(mtgrad_bench_metric(C->b, t));
    if (alloc_runs(C) != 0) {
        fprintf(stderr, "mtgrad compare: out of memory\n");
        return 1;
    }
    run_all(C);
    statistics(C);
    print_table(C);
    int rc = C->o.out ? write_outputs(C) : 0;
    if (C->failures) {
        fprintf(stderr, "mtgrad compare: %d run(s) failed (see above)\n", C->failures);
        rc = 1;
    }
    return rc;
}

int mtgrad_cmd_compare(int argc, char **argv)
{
    static cmp C; /* large (per-seed records of every method); one compare per process */
    memset(&C, 0, sizeof C);
    int rc = parse_opts(argc, argv, &C.o);
    if (rc) return rc == 1 ? 0 : rc;
    char *list = strdup(C.o.methods);
    if (!list) return 1;
    rc = parse_methods(&C, list);
    if (rc) {
        free(list);
        return rc;
    }
    char err[1024];
    mtgrad_bench *b = NULL;
    mtgrad_status st = mtgrad_bench_load(&b, C.o.bench, C.o.bench_params, C.o.data_seed, err,
                                         sizeof err);
    if (st != MTGRAD_OK) {
        fprintf(stderr, "mtgrad compare: %s\n", err);
        free(list);
        return st == MTGRAD_E_INVAL ? 2 : 1;
    }
    C.b = b;
    rc = compare(&C);
    free_row(&C.stl, C.o.seeds);
    for (int i = 0; i < C.n_rows; i++) free_row(&C.rows[i], C.o.seeds);
    mtgrad_bench_free(b);
    free(list);
    return rc;
}
