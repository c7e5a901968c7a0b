/* cmd_train.c — `mtgrad train --bench B --method M [...]`: one training run of a benchmark with
 * a balancing method (or a single-task model with --stl), with a progress display on stderr,
 * a checkpoint and a JSON report in --out DIR (docs/report.md), --resume, and a summary table
 * on stdout. `--bench toy` runs the CAGrad toy (not a dataset) from its published starts. */
#define _GNU_SOURCE /* getopt_long */
#include "cli.h"
#include "mtgrad_train.h"
#include "report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char mtgrad_usage_train[] =
    "usage: mtgrad train --bench B --method M [options]\n"
    "  -b, --bench B           benchmark: mmoe, multifashion, fashion-k, or toy (the CAGrad toy from\n"
    "                          its 5 starts; --bench-params setting=0|1,steps=N,lr=X)\n"
    "  -m, --method M          balancing method (see 'mtgrad methods')\n"
    "  -p, --params LIST       method parameters, e.g. -p c=0.4 (lists use ':')\n"
    "      --bench-params LIST benchmark parameters, e.g. --bench-params p=0.5,ntrain=2000\n"
    "      --epochs N          epochs (default: the benchmark's recipe)\n"
    "      --batch N           batch size (default: the benchmark's recipe)\n"
    "      --seed S            seed of the model, the data order, dropout and the method (default 0)\n"
    "      --data-seed S       seed of the data (default 0)\n"
    "      --threads T         threads (results do not depend on it; default 1)\n"
    "  -o, --out DIR           write DIR/checkpoint.bin after every epoch and DIR/report.json\n"
    "      --resume            continue from DIR/checkpoint.bin (same configuration) to the same\n"
    "                          result as an uninterrupted run\n"
    "      --stl TASK          train a single-task model of task TASK (index or name)\n"
    "      --limit-train N     use only the first N training samples\n"
    "      --limit-test N      use only the first N test samples\n"
    "      --optimizer NAME    sgd, adam, adamw, rmsprop, adagrad, adatask-adam, adatask-rmsprop\n"
    "                          or adatask-adagrad, with the recipe's lr, schedule and weight\n"
    "                          decay (default: the recipe's optimizer)\n"
    "      --task-sample S     os:N (SDMGrad-OS: each task kept with probability N/k) or fast:K\n"
    "                          (CAGrad-fastK: K-1 random tasks plus the mean of the others);\n"
    "                          Gram and Jacobian methods only\n"
    "      --grad-space G      param (default) or rep (MGDA-UB: the Gram matrix of the gradients\n"
    "                          at the shared representation; one trunk backward per step)\n"
    "  -q, --quiet             no progress display\n"
    "  Exit status 0, 1 if the run failed, 2 on a usage error.\n";

typedef struct train_opts {
    mtgrad_train_config c;
    const char *stl;
    int quiet;
} train_opts;

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "mtgrad train: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "",
            mtgrad_usage_train);
    return 2;
}

enum {
    OPT_BENCH_PARAMS = 256, OPT_EPOCHS, OPT_BATCH, OPT_SEED, OPT_DATA_SEED, OPT_THREADS,
    OPT_RESUME, OPT_STL, OPT_LIMIT_TRAIN, OPT_LIMIT_TEST, OPT_OPTIMIZER, OPT_TASK_SAMPLE,
    OPT_GRAD_SPACE
};

/* "os:N" or "fast:K" with N, K >= 1 (the upper bound, k, is checked once the benchmark is
 * loaded); 0 or -1. */
static int check_task_sample(const char *s, int64_t *n)
{
    const char *arg = strncmp(s, "os:", 3) == 0     ? s + 3
                      : strncmp(s, "fast:", 5) == 0 ? s + 5
                                                    : NULL;
    return arg ? mtgrad_parse_i64(arg, 1, MTGRAD_NN_MAX_TASKS, n) : -1;
}

/* One numeric option into the config; 2 (usage) if the value is not a number in range. */
static int numeric_opt(int ch, const char *arg, mtgrad_train_config *c)
{
    int64_t v = 0;
    int bad = 0;
    switch (ch) {
    case OPT_EPOCHS: bad = mtgrad_parse_i64(arg, 1, INT64_C(1) << 40, &c->epochs); break;
    case OPT_BATCH: bad = mtgrad_parse_i64(arg, 1, INT64_C(1) << 30, &c->batch); break;
    case OPT_SEED: bad = mtgrad_parse_u64(arg, &c->seed); break;
    case OPT_DATA_SEED: bad = mtgrad_parse_u64(arg, &c->data_seed); break;
    case OPT_THREADS:
        bad = mtgrad_parse_i64(arg, 1, 256, &v);
        c->threads = (int)v;
        break;
    case OPT_LIMIT_TRAIN: bad = mtgrad_parse_i64(arg, 1, INT64_C(1) << 40, &c->limit_train); break;
    case OPT_LIMIT_TEST: bad = mtgrad_parse_i64(arg, 1, INT64_C(1) << 40, &c->limit_test); break;
    default: bad = -1;
    }
    return bad ? 2 : 0;
}

static int parse_opts(int argc, char **argv, train_opts *o)
{
    static const struct option opts[] = {
        {"bench", required_argument, NULL, 'b'},
        {"method", required_argument, NULL, 'm'},
        {"params", required_argument, NULL, 'p'},
        {"bench-params", required_argument, NULL, OPT_BENCH_PARAMS},
        {"epochs", required_argument, NULL, OPT_EPOCHS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"seed", required_argument, NULL, OPT_SEED},
        {"data-seed", required_argument, NULL, OPT_DATA_SEED},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"out", required_argument, NULL, 'o'},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"stl", required_argument, NULL, OPT_STL},
        {"limit-train", required_argument, NULL, OPT_LIMIT_TRAIN},
        {"limit-test", required_argument, NULL, OPT_LIMIT_TEST},
        {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
        {"task-sample", required_argument, NULL, OPT_TASK_SAMPLE},
        {"grad-space", required_argument, NULL, OPT_GRAD_SPACE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->c = mtgrad_train_config_default();
    o->c.bench = o->c.method = NULL;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "b:m:p:o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': o->c.bench = optarg; break;
        case 'm': o->c.method = optarg; break;
        case 'p': o->c.method_params = optarg; break;
        case OPT_BENCH_PARAMS: o->c.bench_params = optarg; break;
        case 'o': o->c.out_dir = optarg; break;
        case OPT_RESUME: o->c.resume = 1; break;
        case OPT_STL: o->stl = optarg; break;
        case OPT_OPTIMIZER: o->c.optimizer = optarg; break;
        case OPT_TASK_SAMPLE: o->c.task_sample = optarg; break;
        case OPT_GRAD_SPACE: o->c.grad_space = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(mtgrad_usage_train, stdout); return 1;
        case '?': fputs(mtgrad_usage_train, stderr); return 2;
        default:
            if (numeric_opt(ch, optarg, &o->c)) return usage_error("bad number:", optarg);
        }
    }
    if (optind != argc) return usage_error("unexpected argument", argv[optind]);
    if (!o->c.bench) return usage_error("--bench B is required", NULL);
    if (!o->c.method) return usage_error("--method M is required", NULL);
    if (o->c.resume && !o->c.out_dir) return usage_error("--resume needs --out DIR", NULL);
    if (!mtgrad_method_by_name(o->c.method))
        return usage_error("unknown method (see 'mtgrad methods'):", o->c.method);
    mtgrad_optim_kind kind;
    int64_t n;
    if (o->c.optimizer && mtgrad_optim_kind_parse(o->c.optimizer, &kind) != MTGRAD_OK)
        return usage_error("--optimizer takes sgd, adam, adamw, rmsprop, adagrad, adatask-adam, "
                           "adatask-rmsprop or adatask-adagrad; got", o->c.optimizer);
    if (o->c.task_sample && check_task_sample(o->c.task_sample, &n) != 0)
        return usage_error("--task-sample takes os:N or fast:K (N, K >= 1); got",
                           o->c.task_sample);
    if (o->c.grad_space && strcmp(o->c.grad_space, "param") != 0 &&
        strcmp(o->c.grad_space, "rep") != 0)
        return usage_error("--grad-space takes param or rep; got", o->c.grad_space);
    return 0;
}

/* TASK as an index or a task name of the benchmark; -1 if neither. */
static int64_t resolve_task(const mtgrad_bench *b, const char *s)
{
    int64_t k = mtgrad_bench_model(b).k, t;
    if (mtgrad_parse_i64(s, 0, k - 1, &t) == 0) return t;
    for (t = 0; t < k; t++) {
        const char *name = mtgrad_bench_task_name(b, t);
        if (name && strcmp(name, s) == 0) return t;
    }
    return -1;
}

/* The toy's options from --bench-params: setting=0|1, steps=N, lr=X. -1 on a bad one. */
static int toy_params(const char *s, int *setting, int64_t *steps, double *lr)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s ? s : "");
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) return -1;
        *eq = '\0';
        int64_t v;
        char *end;
        if (strcmp(t, "setting") == 0 && mtgrad_parse_i64(eq + 1, 0, 1, &v) == 0) *setting = (int)v;
        else if (strcmp(t, "steps") == 0 && mtgrad_parse_i64(eq + 1, 1, INT64_C(1) << 32, &v) == 0)
            *steps = v;
        else if (strcmp(t, "lr") == 0 && (*lr = strtod(eq + 1, &end)) > 0 && *end == '\0') continue;
        else return -1;
    }
    return 0;
}

/* `--bench toy`: the CAGrad toy (mtgrad_toy_run) from each published start of the setting;
 * prints where each run ends and whether it reached the Pareto set (JSON in DIR/report.json). */
static int run_toy(const train_opts *o)
{
    int setting = 0;
    int64_t steps = 0;
    double lr = 1e-3, starts[5][2];
    if (o->c.optimizer || o->c.task_sample || o->c.grad_space)
        return usage_error("--optimizer, --task-sample and --grad-space are not for the toy",
                           NULL);
    if (toy_params(o->c.bench_params, &setting, &steps, &lr) != 0)
        return usage_error("toy parameters are setting=0|1, steps=N, lr=X; got",
                           o->c.bench_params);
    char params[1024], err[512];
    snprintf(params, sizeof params, "seed=%llu%s%s",
             (unsigned long long)(o->c.seed & ((UINT64_C(1) << 53) - 1)),
             o->c.method_params ? "," : "", o->c.method_params ? o->c.method_params : "");
    int n = mtgrad_toy_starts(setting, starts), reached_all = 0;
    cJSON *j = cJSON_CreateObject(), *runs = cJSON_CreateArray();
    printf("toy setting %d, %s, %lld steps of Adam (lr %g)\n\n| start | final θ1 | final θ2 | "
           "Pareto set |\n|---|---|---|---|\n", setting, o->c.method,
           (long long)(steps > 0 ? steps : mtgrad_toy_default_steps(setting)), lr);
    for (int i = 0; i < n; i++) {
        double fin[2];
        int reached = 0;
        mtgrad_status st = mtgrad_toy_run(o->c.method, params, setting, starts[i], steps, lr, NULL,
                                          1, fin, &reached, err, sizeof err);
        if (st != MTGRAD_OK) {
            fprintf(stderr, "mtgrad train: toy from (%g, %g): %s\n", starts[i][0], starts[i][1], err);
            cJSON_Delete(j);
            cJSON_Delete(runs);
            return st == MTGRAD_E_INVAL ? 2 : 1;
        }
        reached_all += reached;
        printf("| (%g, %g) | %.4f | %.4f | %s |\n", starts[i][0], starts[i][1], fin[0], fin[1],
               reached ? "reached" : "not reached");
        cJSON *r = cJSON_CreateObject();
        mtgrad_json_add(r, "start", cJSON_CreateDoubleArray(starts[i], 2));
        mtgrad_json_add(r, "final", cJSON_CreateDoubleArray(fin, 2));
        cJSON_AddBoolToObject(r, "reached", reached);
        mtgrad_json_push(runs, r);
    }
    printf("\nreached the Pareto set from %d of %d starts\n", reached_all, n);
    cJSON_AddStringToObject(j, "schema", "mtgrad.train-toy/1");
    cJSON_AddStringToObject(j, "method", o->c.method);
    cJSON_AddStringToObject(j, "method_params", o->c.method_params ? o->c.method_params : "");
    cJSON_AddNumberToObject(j, "setting", setting);
    cJSON_AddNumberToObject(j, "steps", (double)(steps > 0 ? steps : mtgrad_toy_default_steps(setting)));
    cJSON_AddNumberToObject(j, "lr", lr);
    mtgrad_json_add(j, "runs", runs);
    int rc = 0;
    char path[4096];
    if (o->c.out_dir && (mtgrad_report_mkdir(o->c.out_dir, err, sizeof err) != 0 ||
                         mtgrad_report_path(path, sizeof path, o->c.out_dir, "report.json") != 0 ||
                         mtgrad_report_write_json(path, j, err, sizeof err) != 0)) {
        fprintf(stderr, "mtgrad train: %s\n", err);
        rc = 1;
    }
    cJSON_Delete(j);
    return rc;
}

static int write_report(const train_opts *o, const mtgrad_bench *b, const mtgrad_train_result *r)
{
    char path[4096], err[512];
    if (mtgrad_report_path(path, sizeof path, o->c.out_dir, "report.json") != 0) {
        fprintf(stderr, "mtgrad train: output directory name too long\n");
        return 1;
    }
    cJSON *j = mtgrad_report_train(&o->c, mtgrad_bench_loaded_name(b), r);
    int bad = !j || mtgrad_report_write_json(path, j, err, sizeof err) != 0;
    cJSON_Delete(j);
    if (bad) {
        fprintf(stderr, "mtgrad train: %s\n", j ? err : "out of memory");
        return 1;
    }
    return 0;
}

static int train_loaded(train_opts *o, const mtgrad_bench *b)
{
    if (o->stl) {
        o->c.stl_task = resolve_task(b, o->stl);
        if (o->c.stl_task < 0) {
            fprintf(stderr, "mtgrad train: --stl %s: no such task in %s\n", o->stl,
                    mtgrad_bench_loaded_name(b));
            return 2;
        }
    }
    int64_t n, k = o->c.stl_task >= 0 ? 1 : mtgrad_bench_model(b).k;
    if (o->c.task_sample && check_task_sample(o->c.task_sample, &n) == 0 && n > k) {
        fprintf(stderr, "mtgrad train: --task-sample %s: %s has %lld tasks\n",
                o->c.task_sample, mtgrad_bench_loaded_name(b), (long long)k);
        return 2;
    }
    mtgrad_progress_state ps;
    mtgrad_progress_init(&ps, stderr, "");
    if (!o->quiet) {
        o->c.progress = mtgrad_progress_cb;
        o->c.progress_user = &ps;
    }
    mtgrad_train_result *r = NULL;
    char err[1024] = "";
    mtgrad_status st = mtgrad_train_run_bench(b, &o->c, &r, err, sizeof err);
    mtgrad_progress_done(&ps);
    if (st != MTGRAD_OK) {
        fprintf(stderr, "mtgrad train: %s (%s)\n", err, mtgrad_status_str(st));
        /* a method that cannot take the options asked for is the command line's fault */
        return st == MTGRAD_E_UNSUPPORTED ? 2 : 1;
    }
    int rc = o->c.out_dir ? write_report(o, b, r) : 0;
    mtgrad_report_print_summary(stdout, o->c.method, r);
    mtgrad_train_result_free(r);
    return rc;
}

int mtgrad_cmd_train(int argc, char **argv)
{
    train_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (strcmp(o.c.bench, "toy") == 0) return run_toy(&o);
    char err[1024];
    if (o.c.out_dir && mtgrad_report_mkdir(o.c.out_dir, err, sizeof err) != 0) {
        fprintf(stderr, "mtgrad train: %s\n", err);
        return 1;
    }
    mtgrad_bench *b = NULL;
    mtgrad_status st = mtgrad_bench_load(&b, o.c.bench, o.c.bench_params, o.c.data_seed, err,
                                         sizeof err);
    if (st != MTGRAD_OK) {
        fprintf(stderr, "mtgrad train: %s\n", err);
        return st == MTGRAD_E_INVAL ? 2 : 1;
    }
    rc = train_loaded(&o, b);
    mtgrad_bench_free(b);
    return rc;
}
