/*
 * report.c — the JSON report of a training run (docs/report.md), JSON/directory helpers, strict
 * number parsing and the progress display shared by `mtgrad train` and `mtgrad compare`.
 * Everything printed or written by the CLI about a run goes through here so that the two
 * commands describe runs the same way.
 */
#define _POSIX_C_SOURCE 200809L
#include "report.h"
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- small helpers */

static int json_alloc_failed; /* a cJSON allocation has failed in this process (cli.h) */

static void *json_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p) json_alloc_failed = 1;
    return p;
}

/* The items that could not be added to their parent (cli.h); a bare array: linking allocates
 * nothing. */
static cJSON json_orphans = {.type = cJSON_Array};

static void json_free_orphans(void)
{
    cJSON_Delete(json_orphans.child); /* deletes the item and its siblings */
    json_orphans.child = NULL;
}

void mtgrad_json_track_alloc(void)
{
    cJSON_Hooks h = {json_malloc, free};
    cJSON_InitHooks(&h);
    atexit(json_free_orphans); /* glibc has static room for the first 32: no allocation */
}

static int json_adopt(cJSON *item)
{
    if (item) {
        json_alloc_failed = 1; /* the document lacks the item, whatever the cause */
        cJSON_AddItemToArray(&json_orphans, item);
    }
    return 0;
}

int mtgrad_json_add(cJSON *o, const char *key, cJSON *item)
{
    return cJSON_AddItemToObject(o, key, item) ? 1 : json_adopt(item);
}

int mtgrad_json_push(cJSON *array, cJSON *item)
{
    return cJSON_AddItemToArray(array, item) ? 1 : json_adopt(item);
}

char *mtgrad_json_print(const cJSON *o)
{
    if (json_alloc_failed) return NULL; /* the document may lack items: print nothing */
    return cJSON_Print(o);              /* NULL if its own allocations fail */
}

int mtgrad_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = (int64_t)v;
    return 0;
}

int mtgrad_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

int mtgrad_report_path(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

int mtgrad_report_mkdir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        snprintf(err, errlen, "bad output directory name '%s'", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    /* each prefix ending at a '/', then the whole path */
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
            return -1;
        }
        path[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", dir);
        return -1;
    }
    return 0;
}

int mtgrad_report_write_json(const char *path, const cJSON *o, char *err, size_t errlen)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    char *s = mtgrad_json_print(o);
    if (!s) {
        snprintf(err, errlen, "out of memory formatting %s", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    int bad = !f || fputs(s, f) == EOF || fputc('\n', f) == EOF;
    if (f && fclose(f) != 0) bad = 1;
    cJSON_free(s);
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

double mtgrad_report_epoch_time(const mtgrad_train_result *r, int phase)
{
    /* epochs loaded from a checkpoint carry the times of the process that ran them */
    if (!r || r->epochs < 1) return 0.0;
    double s = 0;
    for (int64_t e = 0; e < r->epochs; e++) s += r->times[e * MTGRAD_TIME_COUNT + phase];
    return s / (double)r->epochs;
}

/* ---------------------------------------------------------------- the JSON report */

cJSON *mtgrad_report_optim(const mtgrad_optim_config *o)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    const char *kind = mtgrad_optim_kind_name(o->kind);
    cJSON_AddStringToObject(j, "kind", kind ? kind : "unknown");
    cJSON_AddBoolToObject(j, "per_task", mtgrad_optim_kind_per_task(o->kind));
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "weight_decay", o->weight_decay);
    /* only the constants the kind reads: RMSprop's alpha is beta2, Adagrad has eps alone */
    switch (o->kind) {
    case MTGRAD_OPTIM_SGD: cJSON_AddNumberToObject(j, "momentum", o->momentum); break;
    case MTGRAD_OPTIM_RMSPROP:
    case MTGRAD_OPTIM_ADATASK_RMSPROP:
        cJSON_AddNumberToObject(j, "alpha", o->beta2);
        cJSON_AddNumberToObject(j, "eps", o->eps);
        break;
    case MTGRAD_OPTIM_ADAGRAD:
    case MTGRAD_OPTIM_ADATASK_ADAGRAD: cJSON_AddNumberToObject(j, "eps", o->eps); break;
    default:
        cJSON_AddNumberToObject(j, "beta1", o->beta1);
        cJSON_AddNumberToObject(j, "beta2", o->beta2);
        cJSON_AddNumberToObject(j, "eps", o->eps);
    }
    cJSON_AddNumberToObject(j, "step_size", (double)o->step_size);
    cJSON *ms = cJSON_AddArrayToObject(j, "milestones");
    for (int64_t i = 0; ms && i < o->n_milestones; i++)
        mtgrad_json_push(ms, cJSON_CreateNumber((double)o->milestones[i]));
    cJSON_AddNumberToObject(j, "gamma", o->gamma);
    return j;
}

static cJSON *config_json(const mtgrad_train_config *c, const char *bench_name,
                          const mtgrad_train_result *r)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "bench", bench_name);
    cJSON_AddStringToObject(j, "bench_params", c->bench_params ? c->bench_params : "");
    cJSON_AddNumberToObject(j, "data_seed", (double)c->data_seed);
    cJSON_AddStringToObject(j, "method", c->method);
    cJSON_AddStringToObject(j, "method_params", c->method_params ? c->method_params : "");
    cJSON_AddNumberToObject(j, "seed", (double)c->seed);
    cJSON_AddNumberToObject(j, "epochs", (double)r->epochs);
    cJSON_AddNumberToObject(j, "batch", (double)r->batch);
    cJSON_AddNumberToObject(j, "threads", c->threads < 1 ? 1 : c->threads);
    cJSON_AddNumberToObject(j, "stl_task", (double)c->stl_task);
    cJSON_AddNumberToObject(j, "ntrain", (double)r->ntrain);
    cJSON_AddNumberToObject(j, "ntest", (double)r->ntest);
    mtgrad_json_add(j, "optimizer", mtgrad_report_optim(&r->optim));
    cJSON_AddStringToObject(j, "task_sample", c->task_sample ? c->task_sample : "");
    cJSON_AddStringToObject(j, "grad_space",
                            c->grad_space && *c->grad_space ? c->grad_space : "param");
    return j;
}

void mtgrad_report_passes_per_step(const mtgrad_train_result *r, double *fwd, double *bwd)
{
    double n = r && r->counted_steps > 0 ? (double)r->counted_steps : NAN;
    *fwd = r ? (double)r->passes.forwards / n : NAN;
    *bwd = r ? (double)r->passes.trunk_backwards / n : NAN;
}

/* What the steps of this process did (epochs resumed from a checkpoint are not counted). */
static cJSON *passes_json(const mtgrad_train_result *r)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    double f, b;
    mtgrad_report_passes_per_step(r, &f, &b);
    cJSON_AddNumberToObject(j, "steps", (double)r->counted_steps);
    cJSON_AddNumberToObject(j, "forwards", (double)r->passes.forwards);
    cJSON_AddNumberToObject(j, "trunk_backwards", (double)r->passes.trunk_backwards);
    double h[MTGRAD_NN_MAX_TASKS];
    for (int64_t i = 0; i < r->k && i < MTGRAD_NN_MAX_TASKS; i++)
        h[i] = (double)r->passes.head_backwards[i];
    mtgrad_json_add(j, "head_backwards", cJSON_CreateDoubleArray(h, (int)r->k));
    cJSON_AddNumberToObject(j, "forwards_per_step", f);
    cJSON_AddNumberToObject(j, "trunk_backwards_per_step", b);
    return j;
}

/* epochs x k rows as an array of arrays */
static cJSON *matrix_json(const double *v, int64_t rows, int64_t cols)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t e = 0; a && e < rows; e++)
        mtgrad_json_push(a, cJSON_CreateDoubleArray(v + e * cols, (int)cols));
    return a;
}

static cJSON *tasks_json(const mtgrad_train_result *r)
{
    cJSON *a = cJSON_CreateArray();
    int64_t last = r->epochs - 1;
    for (int64_t i = 0; a && i < r->k; i++) {
        cJSON *t = cJSON_CreateObject();
        if (!t) break;
        double best = NAN;
        int hb = mtgrad_metric_higher_better(r->metric[i]);
        for (int64_t e = 0; e <= last; e++) {
            double v = r->test_metric[e * r->k + i];
            if (isnan(best) || (hb ? v > best : v < best)) best = v;
        }
        cJSON_AddStringToObject(t, "name", r->task_name[i]);
        cJSON_AddNumberToObject(t, "bench_task", (double)(r->task0 + i));
        cJSON_AddStringToObject(t, "metric", mtgrad_metric_name(r->metric[i]));
        cJSON_AddBoolToObject(t, "higher_is_better", hb);
        if (last >= 0) {
            cJSON_AddNumberToObject(t, "final", r->test_metric[last * r->k + i]);
            cJSON_AddNumberToObject(t, "best", best);
            cJSON_AddNumberToObject(t, "final_test_loss", r->test_loss[last * r->k + i]);
            cJSON_AddNumberToObject(t, "final_train_loss", r->train_loss[last * r->k + i]);
        }
        mtgrad_json_push(a, t);
    }
    return a;
}

static cJSON *times_json(const mtgrad_train_result *r)
{
    cJSON *j = cJSON_CreateObject(), *per = cJSON_CreateObject(), *mean = cJSON_CreateObject();
    if (!j || !per || !mean) {
        cJSON_Delete(j);
        cJSON_Delete(per);
        cJSON_Delete(mean);
        return NULL;
    }
    for (int p = 0; p < MTGRAD_TIME_COUNT; p++) {
        cJSON *a = cJSON_CreateArray();
        for (int64_t e = 0; a && e < r->epochs; e++)
            mtgrad_json_push(a, cJSON_CreateNumber(r->times[e * MTGRAD_TIME_COUNT + p]));
        mtgrad_json_add(per, mtgrad_time_name(p), a);
        cJSON_AddNumberToObject(mean, mtgrad_time_name(p), mtgrad_report_epoch_time(r, p));
    }
    mtgrad_json_add(j, "per_epoch", per);
    mtgrad_json_add(j, "mean_per_epoch", mean);
    mtgrad_json_add(j, "eval_seconds", cJSON_CreateDoubleArray(r->eval_seconds, (int)r->epochs));
    return j;
}

cJSON *mtgrad_report_train(const mtgrad_train_config *c, const char *bench_name,
                           const mtgrad_train_result *r)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "schema", MTGRAD_REPORT_SCHEMA);
    cJSON_AddStringToObject(j, "mtgrad_version", MTGRAD_VERSION_STRING);
    mtgrad_json_add(j, "config", config_json(c, bench_name, r));
    cJSON *m = cJSON_AddObjectToObject(j, "model");
    if (m) {
        cJSON_AddNumberToObject(m, "k", (double)r->k);
        cJSON_AddNumberToObject(m, "bench_k", (double)r->bench_k);
        cJSON_AddNumberToObject(m, "n_params", (double)r->n_params);
        cJSON_AddNumberToObject(m, "n_shared", (double)r->n_shared);
    }
    mtgrad_json_add(j, "tasks", tasks_json(r));
    cJSON *cu = cJSON_AddObjectToObject(j, "curves");
    if (cu) {
        mtgrad_json_add(cu, "train_loss", matrix_json(r->train_loss, r->epochs, r->k));
        mtgrad_json_add(cu, "test_loss", matrix_json(r->test_loss, r->epochs, r->k));
        mtgrad_json_add(cu, "test_metric", matrix_json(r->test_metric, r->epochs, r->k));
        mtgrad_json_add(cu, "lr", cJSON_CreateDoubleArray(r->lr, (int)r->epochs));
    }
    mtgrad_json_add(j, "time", times_json(r));
    cJSON_AddNumberToObject(j, "epochs", (double)r->epochs);
    cJSON_AddNumberToObject(j, "resumed_epoch", (double)r->resumed_epoch);
    cJSON_AddNumberToObject(j, "steps", (double)r->steps);
    cJSON_AddNumberToObject(j, "steps_per_epoch", (double)r->steps_per_epoch);
    cJSON_AddNumberToObject(j, "solver_warnings", (double)r->solver_warnings);
    mtgrad_json_add(j, "passes", passes_json(r));
    cJSON_AddNumberToObject(j, "peak_rss_mb", r->peak_rss_mb);
    return j;
}

/* ---------------------------------------------------------------- summary */

void mtgrad_report_print_summary(FILE *f, const char *method, const mtgrad_train_result *r)
{
    int64_t last = r->epochs - 1;
    if (last < 0) {
        fprintf(f, "%s: no epoch completed\n", method);
        return;
    }
    fprintf(f, "\n%s: %lld epochs, %lld steps, %lld parameters (%lld shared)\n\n", method,
            (long long)r->epochs, (long long)r->steps, (long long)r->n_params,
            (long long)r->n_shared);
    fprintf(f, "| task | metric | final | best | test loss | train loss |\n");
    fprintf(f, "|---|---|---|---|---|---|\n");
    for (int64_t i = 0; i < r->k; i++) {
        int hb = mtgrad_metric_higher_better(r->metric[i]);
        double best = r->test_metric[i];
        for (int64_t e = 1; e <= last; e++) {
            double v = r->test_metric[e * r->k + i];
            if (hb ? v > best : v < best) best = v;
        }
        fprintf(f, "| %s | %s %s | %.4f | %.4f | %.4g | %.4g |\n", r->task_name[i],
                mtgrad_metric_name(r->metric[i]), hb ? "↑" : "↓",
                r->test_metric[last * r->k + i], best, r->test_loss[last * r->k + i],
                r->train_loss[last * r->k + i]);
    }
    fprintf(f, "\ntime per epoch: %.3f s (", mtgrad_report_epoch_time(r, MTGRAD_TIME_TOTAL));
    for (int p = 0; p < MTGRAD_TIME_TOTAL; p++)
        fprintf(f, "%s%s %.3f", p ? ", " : "", mtgrad_time_name(p), mtgrad_report_epoch_time(r, p));
    fprintf(f, "); peak memory %.1f MB", r->peak_rss_mb);
    if (r->counted_steps > 0) {
        double fw, bw;
        mtgrad_report_passes_per_step(r, &fw, &bw);
        fprintf(f, "; passes per step: %.3g forward, %.3g trunk backward", fw, bw);
    }
    if (r->solver_warnings) fprintf(f, "; %lld solver warnings", (long long)r->solver_warnings);
    if (r->resumed_epoch) fprintf(f, "; resumed after epoch %lld", (long long)r->resumed_epoch);
    fputc('\n', f);
}

/* ---------------------------------------------------------------- progress */

static double wall(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, len, "%lds", t);
}

void mtgrad_progress_init(mtgrad_progress_state *p, FILE *f, const char *prefix)
{
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->period = p->tty ? 0.1 : 30.0;
    p->prefix = prefix ? prefix : "";
    p->last = wall();
}

static void print_losses(FILE *f, const double *v, int64_t k)
{
    int64_t shown = k < 6 ? k : 6;
    for (int64_t i = 0; i < shown; i++) fprintf(f, " %.4g", v[i]);
    if (k > shown) fprintf(f, " …");
}

static void draw_bar(mtgrad_progress_state *p, const mtgrad_train_progress *pr)
{
    char eta[32];
    fmt_duration(pr->eta, eta, sizeof eta);
    int width = 20, fill = pr->steps_per_epoch ? (int)(width * pr->step / pr->steps_per_epoch) : 0;
    fprintf(p->f, "\r%sepoch %lld/%lld [", p->prefix, (long long)pr->epoch + 1,
            (long long)pr->epochs);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', p->f);
    fprintf(p->f, "] %lld/%lld loss", (long long)pr->step, (long long)pr->steps_per_epoch);
    print_losses(p->f, pr->losses, pr->k);
    fprintf(p->f, " ETA %s\033[K", eta);
    fflush(p->f);
    p->drawn = 1;
}

void mtgrad_progress_cb(const mtgrad_train_progress *pr, void *user)
{
    mtgrad_progress_state *p = user;
    double t = wall();
    if (pr->epoch_done) {
        if (p->drawn) fputc('\r', p->f);
        fprintf(p->f, "%sepoch %lld/%lld: train loss", p->prefix, (long long)pr->epoch + 1,
                (long long)pr->epochs);
        print_losses(p->f, pr->losses, pr->k);
        fprintf(p->f, " | test loss");
        print_losses(p->f, pr->test_loss, pr->k);
        fprintf(p->f, " | test metric");
        print_losses(p->f, pr->test_metric, pr->k);
        fprintf(p->f, " | %.1f s%s\n", pr->elapsed, p->tty ? "\033[K" : "");
        fflush(p->f);
        p->drawn = 0;
        p->last = t;
        return;
    }
    if (t - p->last < p->period) return;
    p->last = t;
    if (p->tty) {
        draw_bar(p, pr);
        return;
    }
    char eta[32];
    fmt_duration(pr->eta, eta, sizeof eta);
    fprintf(p->f, "%sepoch %lld/%lld step %lld/%lld loss", p->prefix, (long long)pr->epoch + 1,
            (long long)pr->epochs, (long long)pr->step, (long long)pr->steps_per_epoch);
    print_losses(p->f, pr->losses, pr->k);
    fprintf(p->f, " ETA %s\n", eta);
    fflush(p->f);
}

void mtgrad_progress_done(mtgrad_progress_state *p)
{
    if (p->drawn) fputc('\n', p->f);
    p->drawn = 0;
}
