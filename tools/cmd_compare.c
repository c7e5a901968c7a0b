/* cmd_compare.c — `mtgrad compare --bench B --methods ... --seeds N`: for every seed, the
 * single-task baselines (one network per task, same recipe and budget) and every entry of
 * --methods (a method, optionally with step options after '@': rep, os:N, fast:K, an
 * optimizer); then a markdown table (per-task metrics mean ± se, Δm% ± se against the STL run
 * of the same seed, mean rank within the table, time per epoch and relative to ls, passes per
 * step), DIR/compare.json and SVG plots (test-metric and training-loss curves per entry, Δm%
 * bars, Δm% against cumulative training time). The reporting format is benchmarks.md §8; the
 * JSON schema is in docs/report.md. */
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
    "  -m, --methods LIST      'all' (every method) or a comma list of METHOD[@OPT]... entries,\n"
    "                          OPT one of rep (representation gradients, MGDA-UB), os:N\n"
    "                          (SDMGrad-OS sampling), fast:K (CAGrad-fastK sampling) or an\n"
    "                          optimizer (sgd, adam, adamw, rmsprop, adagrad, adatask-adam,\n"
    "                          adatask-rmsprop, adatask-adagrad), e.g. mgda@rep,cagrad@fast:2,\n"
    "                          ls@adatask-adam; the entry is the row's label. Plain ls is always\n"
    "                          included (default: ls,mgda,pcgrad,cagrad,imgrad,nash_mtl,famo,\n"
    "                          sdmgrad)\n"
    "  -p, --params M:LIST     parameters of method M (every row of it), e.g. -p cagrad:c=0.4,\n"
    "                          or of one entry by its label, e.g. -p 'sdmgrad@os:1:lambda=0.5'\n"
    "                          (the label wins; repeatable)\n"
    "  -s, --seeds N           seeds 0..N-1 (added to --seed; default 3)\n"
    "      --seed S            first seed (default 0)\n"
    "      --quick             a small subset: the first 2000 train / 1000 test samples and at\n"
    "                          most 20 epochs of the recipe (unless --epochs is given)\n"
    "      --epochs N          epochs (default: the benchmark's recipe)\n"
    "      --batch N           batch size (default: the benchmark's recipe)\n"
    "      --bench-params LIST benchmark parameters\n"
    "      --data-seed S       seed of the data (default 0; the same data for every run)\n"
    "      --threads T         threads (default 1)\n"
    "  -o, --out DIR           write DIR/compare.json, DIR/curves.svg, DIR/delta_m.svg and\n"
    "                          DIR/delta_m_time.svg (Δm% against cumulative training time)\n"
    "      --stl-from FILE     reuse the single-task baselines of an earlier compare.json of the\n"
    "                          same benchmark, data, seeds, epochs and batch (no STL training;\n"
    "                          curves.svg then has no STL line)\n"
    "  -q, --quiet             no per-run lines on stderr\n"
    "  Exit status 0, 1 if a run failed or a file could not be written, 2 on a usage error.\n";

#define MAX_METHODS 64
#define MAX_PARAMS 64
#define MAX_LABEL 256
#define DEFAULT_METHODS "ls,mgda,pcgrad,cagrad,imgrad,nash_mtl,famo,sdmgrad"
/* --quick: the first QUICK_TRAIN / QUICK_TEST samples and at most QUICK_EPOCHS epochs of the
 * recipe. With the default 9 methods and 3 seeds on one thread: mmoe ~6 s (20 epochs),
 * multifashion ~4 min (10 epochs), fashion-k ~1 min (3 epochs). */
#define QUICK_TRAIN 2000
#define QUICK_TEST 1000
#define QUICK_EPOCHS 20

typedef struct cmp_opts {
    const char *bench, *bench_params, *methods, *out, *stl_from;
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
    double fwd, bwd;                    /* forward and trunk-backward passes per step */
    double dm;                          /* Δm% against the STL run of the same seed */
    int has_dm;
    double *curve_metric; /* epochs x k (test metric) */
    double *curve_loss;   /* epochs (training loss, mean over tasks) */
    double *curve_time;   /* epochs (step time of the epoch, s) */
    int64_t epochs;
    char err[512];
} run_rec;

/* A row of the table: an entry of --methods (or STL) over the seeds. */
typedef struct row {
    const char *name;   /* the label: the entry as given (the method's own name without '@') */
    const char *method; /* the method's registry name */
    const char *params;
    const char *optimizer, *task_sample, *grad_space; /* from the '@' options; NULL if none */
    char label[MAX_LABEL], opts[MAX_LABEL];           /* storage of name and the options */
    run_rec *runs; /* one per seed */
    int n_ok;
    double mean[MTGRAD_NN_MAX_TASKS], se[MTGRAD_NN_MAX_TASKS];
    double dm_mean, dm_se, mr, time, time_x_ls, fwd, bwd;
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
    char first_failure[700]; /* which run failed first, and why (the summary line; -q hides the
                                per-run lines) */
} cmp;

/* ---------------------------------------------------------------- options */

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "mtgrad compare: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "",
            mtgrad_usage_compare);
    return 2;
}

enum {
    OPT_SEED = 256, OPT_QUICK, OPT_EPOCHS, OPT_BATCH, OPT_BENCH_PARAMS, OPT_DATA_SEED, OPT_THREADS,
    OPT_STL_FROM
};

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
        {"stl-from", required_argument, NULL, OPT_STL_FROM},
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
                return usage_error("-p takes METHOD:LIST or LABEL:LIST, e.g. -p cagrad:c=0.4; got",
                                   optarg);
            o->params[o->n_params++] = optarg;
            break;
        case OPT_QUICK: o->quick = 1; break;
        case OPT_BENCH_PARAMS: o->bench_params = optarg; break;
        case OPT_STL_FROM: o->stl_from = optarg; break;
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

/* The parameters of a row: -p LABEL:LIST if given, else -p METHOD:LIST, else "" (the last
 * one of each kind wins). A label may itself contain ':' (sdmgrad@os:1), so a -p argument
 * is matched by prefix against the row rather than split at its first ':'. */
static const char *row_params(const cmp_opts *o, const char *label, const char *method)
{
    const char *by_label = NULL, *by_method = NULL;
    size_t nl = strlen(label), nm = strlen(method);
    for (int i = 0; i < o->n_params; i++) {
        const char *p = o->params[i];
        if (strncmp(p, label, nl) == 0 && p[nl] == ':') by_label = p + nl + 1;
        if (strncmp(p, method, nm) == 0 && p[nm] == ':') by_method = p + nm + 1;
    }
    return by_label ? by_label : by_method ? by_method : "";
}

/* One '@' option of an entry into the row; 0, or 2 after a usage message. */
static int entry_option(row *r, char *opt, const char *entry)
{
    const char **slot;
    mtgrad_optim_kind kind;
    int64_t n;
    if (strcmp(opt, "rep") == 0 || strcmp(opt, "param") == 0) {
        slot = &r->grad_space;
    } else if (strncmp(opt, "os:", 3) == 0 || strncmp(opt, "fast:", 5) == 0) {
        if (mtgrad_parse_i64(strchr(opt, ':') + 1, 1, MTGRAD_NN_MAX_TASKS, &n) != 0)
            return usage_error("os:N and fast:K take a number of tasks >= 1; entry", entry);
        slot = &r->task_sample;
    } else if (mtgrad_optim_kind_parse(opt, &kind) == MTGRAD_OK) {
        slot = &r->optimizer;
    } else {
        fprintf(stderr, "mtgrad compare: unknown option '%s' in '%s' (rep, os:N, fast:K or an "
                "optimizer name)\n", opt, entry);
        return usage_error("bad entry", entry);
    }
    if (*slot) return usage_error("two options of the same kind in", entry);
    *slot = opt;
    return 0;
}

/* An entry METHOD[@OPT]... into *r (label, method, options pointing into r->opts); 0, or 2
 * after a usage message. */
static int parse_entry(row *r, const char *entry)
{
    memset(r, 0, sizeof *r);
    if (strlen(entry) >= MAX_LABEL) return usage_error("entry too long:", entry);
    memcpy(r->opts, entry, strlen(entry) + 1);
    char *save = NULL, *t = strtok_r(r->opts, "@", &save);
    const mtgrad_method *m = t ? mtgrad_method_by_name(t) : NULL;
    if (!m) return usage_error("unknown method (see 'mtgrad methods'):", entry);
    r->method = mtgrad_method_name(m);
    const char *at = strchr(entry, '@');
    snprintf(r->label, sizeof r->label, "%s%s", r->method, at ? at : "");
    while ((t = strtok_r(NULL, "@", &save)) != NULL)
        if (entry_option(r, t, entry) != 0) return 2;
    if (at && !r->optimizer && !r->task_sample && !r->grad_space)
        return usage_error("'@' without an option in", entry);
    return 0;
}

/* A new row for an entry (an entry listed twice: once). */
static int add_row(cmp *C, const char *entry)
{
    if (C->n_rows == MAX_METHODS) return usage_error("too many methods", NULL);
    row *r = &C->rows[C->n_rows];
    if (parse_entry(r, entry) != 0) return 2;
    for (int i = 0; i < C->n_rows; i++)
        if (strcmp(C->rows[i].label, r->label) == 0) return 0;
    C->n_rows++;
    return 0;
}

/* The rows' names, parameters and option pointers once the array is final (moving a row
 * would leave its pointers in the old place, so they are set again from the label). */
static void fix_rows(cmp *C)
{
    for (int i = 0; i < C->n_rows; i++) {
        row *r = &C->rows[i];
        char entry[MAX_LABEL];
        memcpy(entry, r->label, sizeof entry);
        (void)parse_entry(r, entry); /* parsed once already: cannot fail */
        r->name = r->label;
        r->params = row_params(&C->o, r->label, r->method);
    }
}

/* The rows from --methods ('all' = the registry), plain ls first if it was not listed. */
static int parse_methods(cmp *C, char *list)
{
    if (strcmp(list, "all") == 0) {
        for (size_t i = 0; i < mtgrad_method_count(); i++)
            if (add_row(C, mtgrad_method_name(mtgrad_method_at(i)))) return 2;
    } else {
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (add_row(C, t)) return 2;
    }
    C->ls_row = -1;
    for (int i = 0; i < C->n_rows; i++)
        if (strcmp(C->rows[i].label, "ls") == 0) C->ls_row = i;
    if (C->ls_row < 0) { /* time ×LS needs plain ls in the same run */
        if (C->n_rows == MAX_METHODS) return usage_error("too many methods", NULL);
        memmove(C->rows + 1, C->rows, (size_t)C->n_rows * sizeof *C->rows);
        (void)parse_entry(&C->rows[0], "ls");
        C->n_rows++;
        C->ls_row = 0;
    }
    fix_rows(C);
    return 0;
}

/* ---------------------------------------------------------------- runs */

/* The run of row r (NULL: the STL baseline of task stl, plain ls with the recipe). */
static mtgrad_train_config run_config(const cmp *C, const row *r, uint64_t seed, int64_t stl)
{
    mtgrad_train_config c = mtgrad_train_config_default();
    c.bench = C->o.bench;
    c.bench_params = C->o.bench_params;
    c.data_seed = C->o.data_seed;
    c.method = r ? r->method : "ls";
    c.method_params = r ? r->params : "";
    if (r) {
        c.optimizer = r->optimizer;
        c.task_sample = r->task_sample;
        c.grad_space = r->grad_space;
    }
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
        rec->curve_time = calloc((size_t)E + 1, sizeof(double));
        if (!rec->curve_metric || !rec->curve_loss || !rec->curve_time) {
            /* all or none: the next STL task's run of this record allocates them again */
            free(rec->curve_metric), free(rec->curve_loss), free(rec->curve_time);
            rec->curve_metric = rec->curve_loss = rec->curve_time = NULL;
            return -1;
        }
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
    for (int64_t e = 0; e < E && e < rec->epochs; e++)
        rec->curve_time[e] += r->times[e * MTGRAD_TIME_COUNT + MTGRAD_TIME_TOTAL];
    rec->time_epoch += mtgrad_report_epoch_time(r, MTGRAD_TIME_TOTAL);
    /* STL: the sum over its k networks, like its time */
    double f, b;
    mtgrad_report_passes_per_step(r, &f, &b);
    rec->fwd += f;
    rec->bwd += b;
    return 0;
}

static int run_one(cmp *C, run_rec *rec, const row *rw, uint64_t seed, int64_t stl, int index,
                   int total)
{
    mtgrad_train_config c = run_config(C, rw, seed, stl);
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
        fprintf(stderr, "[%d/%d] seed %llu %s%s", index, total, (unsigned long long)seed,
                rw ? rw->name : "ls", stl >= 0 ? " (stl " : "");
        if (stl >= 0) fprintf(stderr, "%s)", mtgrad_bench_task_name(C->b, stl));
        if (st == MTGRAD_OK)
            fprintf(stderr, ": %.2f s/epoch\n", mtgrad_report_epoch_time(r, MTGRAD_TIME_TOTAL));
        else fprintf(stderr, ": FAILED: %s\n", err);
    }
    mtgrad_train_result_free(r);
    if (st != MTGRAD_OK) {
        snprintf(rec->err, sizeof rec->err, "%s", err);
        rec->ok = 0;
        if (C->failures++ == 0)
            snprintf(C->first_failure, sizeof C->first_failure, "seed %llu %s%s%s%s: %s",
                     (unsigned long long)seed, rw ? rw->name : "ls", stl >= 0 ? " (stl " : "",
                     stl >= 0 ? mtgrad_bench_task_name(C->b, stl) : "", stl >= 0 ? ")" : "", err);
        return -1;
    }
    return 0;
}

static int alloc_runs(cmp *C)
{
    size_t n = (size_t)C->o.seeds;
    C->stl.name = "stl";
    C->stl.method = "ls";
    C->stl.params = "";
    C->stl.runs = calloc(n, sizeof(run_rec));
    if (!C->stl.runs) return -1;
    for (int i = 0; i < C->n_rows; i++)
        if (!(C->rows[i].runs = calloc(n, sizeof(run_rec)))) return -1;
    return 0;
}

static void run_all(cmp *C)
{
    int64_t stl_runs = C->o.stl_from ? 0 : C->k;
    int total = (int)(C->o.seeds * (stl_runs + C->n_rows)), index = 0;
    for (int64_t s = 0; s < C->o.seeds; s++) {
        uint64_t seed = C->o.seed0 + (uint64_t)s;
        run_rec *stl = &C->stl.runs[s];
        if (!C->o.stl_from) stl->ok = 1;
        for (int64_t t = 0; t < stl_runs; t++)
            /* a single-task model: plain training of its loss, whatever -p gave ls */
            if (run_one(C, stl, NULL, seed, t, ++index, total) != 0)
                stl->ok = 0;
        for (int i = 0; i < C->n_rows; i++) {
            run_rec *rec = &C->rows[i].runs[s];
            rec->ok = run_one(C, rec, &C->rows[i], seed, -1, ++index, total) == 0;
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
    r->fwd = r->bwd = n ? 0 : NAN;
    for (int64_t s = 0; s < C->o.seeds; s++)
        if (r->runs[s].ok) r->fwd += r->runs[s].fwd / n, r->bwd += r->runs[s].bwd / n;
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
    printf(" %.3f | %.2f | %.3g + %.3g |\n", r->time, r->time_x_ls, r->fwd, r->bwd);
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
    printf(" Δm%% ↓ | MR ↓ | time/epoch (s) | time ×LS | passes/step (fwd + bwd) |\n|---|");
    for (int64_t t = 0; t < C->k; t++) printf("---|");
    printf("---|---|---|---|---|\n");
    print_row(C, &C->stl, 1);
    for (int i = 0; i < C->n_rows; i++) print_row(C, &C->rows[i], 0);
    printf("\nSTL: one network per task (time: the sum of the %lld networks). Δm%% against the "
           "STL run of the same seed, mean ± standard error over seeds. Passes per step: "
           "forwards + backwards through the shared trunk (STL: summed over its networks).\n",
           (long long)C->k);
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
            mtgrad_json_add(o, "metrics", cJSON_CreateDoubleArray(rec->metric, (int)C->k));
            cJSON_AddNumberToObject(o, "time_per_epoch", rec->time_epoch);
            cJSON_AddNumberToObject(o, "forwards_per_step", rec->fwd);
            cJSON_AddNumberToObject(o, "backwards_per_step", rec->bwd);
            if (rec->has_dm) cJSON_AddNumberToObject(o, "delta_m", rec->dm);
        } else {
            cJSON_AddStringToObject(o, "error", rec->err);
        }
        mtgrad_json_push(a, o);
    }
    return a;
}

/* Every parameter of the method as the aggregator reads it back (defaults included, seed and
 * threads left out): the hyper-parameters actually used. If the aggregator cannot be made
 * (check_rows made one, so: out of memory) its message goes to err and the object stays empty:
 * the caller must not write the document. */
static cJSON *effective_params(const cmp *C, const row *r, char *err, size_t errlen)
{
    cJSON *o = cJSON_CreateObject();
    mtgrad_aggregator *a = NULL;
    char aerr[256] = "";
    if (!o) return NULL;
    if (mtgrad_aggregator_new(&a, r->method, C->k, r->params, aerr, sizeof aerr) != MTGRAD_OK) {
        snprintf(err, errlen, "%s: %s", r->name, aerr);
        return o;
    }
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

static cJSON *row_json(const cmp *C, const row *r, char *err, size_t errlen)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "method", r->method);
    cJSON_AddStringToObject(o, "params", r->params);
    const char *recipe = mtgrad_optim_kind_name(mtgrad_bench_recipe(C->b).optim.kind);
    cJSON_AddStringToObject(o, "optimizer", r->optimizer ? r->optimizer : recipe ? recipe : "");
    cJSON_AddStringToObject(o, "task_sample", r->task_sample ? r->task_sample : "");
    cJSON_AddStringToObject(o, "grad_space", r->grad_space ? r->grad_space : "param");
    cJSON *ps = cJSON_AddObjectToObject(o, "passes_per_step");
    if (ps) {
        cJSON_AddNumberToObject(ps, "forward", r->fwd);
        cJSON_AddNumberToObject(ps, "backward", r->bwd);
    }
    if (r != &C->stl) mtgrad_json_add(o, "params_used", effective_params(C, r, err, errlen));
    cJSON_AddNumberToObject(o, "seeds_ok", r->n_ok);
    mtgrad_json_add(o, "metric_mean", cJSON_CreateDoubleArray(r->mean, (int)C->k));
    mtgrad_json_add(o, "metric_se", cJSON_CreateDoubleArray(r->se, (int)C->k));
    cJSON_AddNumberToObject(o, "delta_m_mean", r->dm_mean);
    cJSON_AddNumberToObject(o, "delta_m_se", r->dm_se);
    if (r != &C->stl) cJSON_AddNumberToObject(o, "mean_rank", r->mr);
    cJSON_AddNumberToObject(o, "time_per_epoch", r->time);
    cJSON_AddNumberToObject(o, "time_x_ls", r->time_x_ls);
    mtgrad_json_add(o, "runs", runs_json(C, r));
    return o;
}

/* Peak resident memory of this process (all runs of the comparison). */
static double peak_rss_mb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

/* The document; err is set (not emptied) when a part of it could not be made. */
static cJSON *compare_json(const cmp *C, char *err, size_t errlen)
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
        cJSON_AddStringToObject(c, "stl_from", C->o.stl_from ? C->o.stl_from : "");
        mtgrad_recipe rec = mtgrad_bench_recipe(C->b);
        mtgrad_json_add(c, "optimizer", mtgrad_report_optim(&rec.optim));
    }
    cJSON *t = cJSON_AddArrayToObject(j, "tasks");
    for (int64_t i = 0; t && i < C->k; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", mtgrad_bench_task_name(C->b, i));
        cJSON_AddStringToObject(o, "metric", mtgrad_metric_name(mtgrad_bench_metric(C->b, i)));
        cJSON_AddBoolToObject(o, "higher_is_better", C->higher[i]);
        mtgrad_json_push(t, o);
    }
    cJSON_AddNumberToObject(j, "peak_rss_mb", peak_rss_mb());
    mtgrad_json_add(j, "stl", row_json(C, &C->stl, err, errlen));
    cJSON *m = cJSON_AddArrayToObject(j, "methods");
    for (int i = 0; m && i < C->n_rows; i++)
        mtgrad_json_push(m, row_json(C, &C->rows[i], err, errlen));
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

/* Δm% of row r after epoch e (against the final metrics of the STL run of the same seed) and
 * the training time up to then (sum of the epochs' step times), means over the seeds that
 * have both; NaN if none. */
static void dm_at(const cmp *C, const row *r, int64_t e, double *dm, double *t)
{
    double sd = 0, st = 0;
    int n = 0;
    for (int64_t q = 0; q < C->o.seeds; q++) {
        const run_rec *rec = &r->runs[q];
        double v;
        if (!rec->ok || !C->stl.runs[q].ok || e >= rec->epochs ||
            mtgrad_delta_m(rec->curve_metric + e * C->k, C->stl.runs[q].metric, C->higher, C->k,
                           &v) != MTGRAD_OK)
            continue;
        double cum = 0;
        for (int64_t i = 0; i <= e; i++) cum += rec->curve_time[i];
        sd += v, st += cum, n++;
    }
    *dm = n ? sd / n : NAN;
    *t = n ? st / n : NAN;
}

/* Δm% against cumulative training wall-clock time, one line per row (the view of FAMO's and
 * MARIGOLD's Figure 3: what a method buys per second of training). */
static int plot_delta_m_time(const cmp *C, const char *path, char *err, size_t errlen)
{
    enum { MAXE = 4096 };
    static double x[MAX_METHODS][MAXE], y[MAX_METHODS][MAXE];
    int64_t E = C->epochs < MAXE ? C->epochs : MAXE;
    double xmax = 0, lo = 0, hi = 0; /* 0: the STL level, always in view */
    for (int i = 0; i < C->n_rows; i++)
        for (int64_t e = 0; e < E; e++) {
            dm_at(C, &C->rows[i], e, &y[i][e], &x[i][e]);
            if (!isfinite(y[i][e]) || !isfinite(x[i][e])) continue;
            xmax = fmax(xmax, x[i][e]);
            lo = fmin(lo, y[i][e]), hi = fmax(hi, y[i][e]);
        }
    if (lo == hi) hi = lo + 1;
    if (!(xmax > 0)) xmax = 1;
    double pad = 0.05 * (hi - lo);
    size_t longest = 0; /* the legend (16 px a row, 6.5 px a character) must fit */
    for (int i = 0; i < C->n_rows; i++)
        if (strlen(C->rows[i].name) > longest) longest = strlen(C->rows[i].name);
    double W = fmax(640, 500 + 6.5 * (double)longest), H = fmax(400, 60 + 16.0 * C->n_rows);
    svg *S = svg_open(path, W, H, err, errlen);
    if (!S) return -1;
    svg_viewport v = svg_viewport_make(70, 40, 380, 300, 0, xmax * 1.02, lo - pad, hi + pad);
    svg_axes(S, &v, "cumulative training time (s, mean over seeds)",
             "Δm% vs STL (lower is better)");
    svg_line(S, &v, 0, 0, xmax * 1.02, 0, "#000000", 1, 4);
    const char *labels[MAX_METHODS], *colors[MAX_METHODS];
    for (int i = 0; i < C->n_rows; i++) {
        const char *col = svg_color((size_t)i);
        svg_polyline(S, &v, x[i], y[i], (size_t)E, col, 1.5);
        for (int64_t e = 0; e < E; e++)
            if (isfinite(x[i][e]) && isfinite(y[i][e]))
                svg_marker(S, &v, x[i][e], y[i][e], SVG_CIRCLE, 4, col);
        labels[i] = C->rows[i].name, colors[i] = col;
    }
    svg_legend(S, 470, 40, labels, colors, NULL, (size_t)C->n_rows);
    svg_text(S, 260, 24, "Δm% after each epoch against training time", 14, SVG_MIDDLE, NULL, 1);
    return svg_close(S, err, errlen);
}

static int write_outputs(const cmp *C)
{
    char err[512] = "", path[4096];
    if (mtgrad_report_mkdir(C->o.out, err, sizeof err) != 0) goto fail;
    cJSON *j = compare_json(C, err, sizeof err);
    if (!j || err[0]) {
        if (!j) snprintf(err, sizeof err, "out of memory");
        cJSON_Delete(j);
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
    if (mtgrad_report_path(path, sizeof path, C->o.out, "delta_m_time.svg") != 0 ||
        plot_delta_m_time(C, path, err, sizeof err) != 0)
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
        free(r->runs[s].curve_time);
    }
    free(r->runs);
}

/* Every row's method, parameters and options on the benchmark's model, before hours of
 * training find a bad one: the step refuses what it cannot do (os:N with N > k, rep for a
 * method without weights, ...) with a message. 0, or 2 after the message. */
static int check_rows(const cmp *C)
{
    mtgrad_model_spec spec = mtgrad_bench_model(C->b);
    mtgrad_model *m = NULL;
    char err[512] = "";
    if (mtgrad_model_new(&m, &spec, 0, err, sizeof err) != MTGRAD_OK) {
        fprintf(stderr, "mtgrad compare: %s\n", err);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < C->n_rows && rc == 0; i++) {
        const row *r = &C->rows[i];
        int64_t n = 0;
        if (r->task_sample &&
            mtgrad_parse_i64(strchr(r->task_sample, ':') + 1, 1, C->k, &n) != 0) {
            fprintf(stderr, "mtgrad compare: %s: %s has %lld tasks\n", r->name,
                    mtgrad_bench_loaded_name(C->b), (long long)C->k);
            rc = 2;
            break;
        }
        mtgrad_optim_config oc = mtgrad_bench_recipe(C->b).optim;
        mtgrad_optim_kind kind;
        if (r->optimizer && mtgrad_optim_kind_parse(r->optimizer, &kind) == MTGRAD_OK)
            oc = mtgrad_optim_config_default(kind);
        mtgrad_step_options so = mtgrad_step_options_default();
        so.task_sample = r->task_sample;
        so.grad_space = r->grad_space;
        mtgrad_mtl_step *s = NULL;
        mtgrad_status st = mtgrad_mtl_step_new_ex(&s, m, r->method, r->params, &oc, &so, err,
                                                  sizeof err);
        mtgrad_mtl_step_free(s);
        if (st == MTGRAD_E_INVAL || st == MTGRAD_E_UNSUPPORTED) {
            fprintf(stderr, "mtgrad compare: %s: %s\n", r->name, err);
            rc = 2;
        } else if (st != MTGRAD_OK) {
            fprintf(stderr, "mtgrad compare: %s: %s\n", r->name, err);
            rc = 1;
        }
    }
    mtgrad_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- --stl-from */

/* The epochs, batch and sample counts every run of this comparison will have (as run_config
 * and the trainer resolve them). */
static void planned(const cmp *C, int64_t *epochs, int64_t *batch, int64_t *ntrain,
                    int64_t *ntest)
{
    mtgrad_train_config c = run_config(C, NULL, 0, 0);
    mtgrad_recipe rec = mtgrad_bench_recipe(C->b);
    int64_t tr = mtgrad_bench_train(C->b)->n, te = mtgrad_bench_test(C->b)->n;
    *epochs = c.epochs ? c.epochs : rec.epochs;
    *batch = c.batch ? c.batch : rec.batch;
    *ntrain = c.limit_train > 0 && c.limit_train < tr ? c.limit_train : tr;
    *ntest = c.limit_test > 0 && c.limit_test < te ? c.limit_test : te;
}

/* A number field of o; NAN if absent. */
static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Why the file's configuration is not this one's (NULL if it is). */
static const char *stl_mismatch(const cmp *C, const cJSON *cfg)
{
    int64_t e, b, ntr, nte;
    planned(C, &e, &b, &ntr, &nte);
    const cJSON *bench = cJSON_GetObjectItemCaseSensitive(cfg, "bench");
    const cJSON *bp = cJSON_GetObjectItemCaseSensitive(cfg, "bench_params");
    if (!cJSON_IsString(bench) || strcmp(bench->valuestring, mtgrad_bench_loaded_name(C->b)))
        return "another benchmark";
    if (!cJSON_IsString(bp) || strcmp(bp->valuestring, C->o.bench_params ? C->o.bench_params : ""))
        return "other benchmark parameters";
    if (num(cfg, "data_seed") != (double)C->o.data_seed) return "another data seed";
    if (num(cfg, "epochs") != (double)e) return "another number of epochs";
    if (num(cfg, "batch") != (double)b) return "another batch size";
    if (num(cfg, "ntrain") != (double)ntr || num(cfg, "ntest") != (double)nte)
        return "other sample counts";
    return NULL;
}

/* The STL run of `seed` in the file's "stl" row into rec; -1 if it is not there or failed. */
static int stl_seed(const cmp *C, const cJSON *runs, uint64_t seed, run_rec *rec)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, runs)
    {
        if (num(r, "seed") != (double)seed || !cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")))
            continue;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "metrics");
        if (cJSON_GetArraySize(m) != (int)C->k) return -1;
        for (int64_t t = 0; t < C->k; t++) {
            const cJSON *v = cJSON_GetArrayItem(m, (int)t);
            rec->metric[t] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (!isfinite(rec->metric[t])) return -1;
        }
        rec->time_epoch = num(r, "time_per_epoch");
        rec->fwd = num(r, "forwards_per_step");
        rec->bwd = num(r, "backwards_per_step");
        rec->ok = 1;
        return 0;
    }
    return -1;
}

/* --stl-from FILE: the STL records of every seed from an earlier comparison of the same
 * configuration. 0, or 1 after a message. */
static int load_stl(cmp *C)
{
    const char *path = C->o.stl_from;
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && (text = malloc((size_t)n + 1)) != NULL) {
        rewind(f);
        text[fread(text, 1, (size_t)n, f)] = '\0';
    }
    if (f) fclose(f);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(j, "schema");
    const char *why = !j ? "cannot read it as JSON"
                      : !cJSON_IsString(schema) || strcmp(schema->valuestring, MTGRAD_COMPARE_SCHEMA)
                          ? "not a " MTGRAD_COMPARE_SCHEMA " file"
                          : stl_mismatch(C, cJSON_GetObjectItemCaseSensitive(j, "config"));
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "stl"), "runs");
    for (int64_t s = 0; !why && s < C->o.seeds; s++)
        if (stl_seed(C, runs, C->o.seed0 + (uint64_t)s, &C->stl.runs[s]) != 0)
            why = "no successful STL run of one of the seeds";
    cJSON_Delete(j);
    if (why) fprintf(stderr, "mtgrad compare: --stl-from %s: %s\n", path, why);
    return why ? 1 : 0;
}

static int compare(cmp *C)
{
    C->k = mtgrad_bench_model(C->b).k;
    int rc0 = check_rows(C);
    if (rc0) return rc0;
    for (int64_t t = 0; t < C->k; t++)
        C->higher[t] = mtgrad_metric_higher_better(mtgrad_bench_metric(C->b, t));
    if (alloc_runs(C) != 0) {
        fprintf(stderr, "mtgrad compare: out of memory\n");
        return 1;
    }
    if (C->o.stl_from && load_stl(C) != 0) return 1;
    run_all(C);
    statistics(C);
    print_table(C);
    int rc = C->o.out ? write_outputs(C) : 0;
    if (C->failures) {
        fprintf(stderr, "mtgrad compare: %d run(s) failed, the first: %s\n", C->failures,
                C->first_failure);
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
    if (!list) {
        fprintf(stderr, "mtgrad compare: out of memory\n");
        return 1;
    }
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
