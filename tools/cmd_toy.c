/*
 * cmd_toy.c — `mtgrad toy`: every chosen method on the CAGrad 2-task toy from the published
 * starting points (benchmarks.md §3). Prints a markdown table (method x start: reached the
 * Pareto set or not, with the final θ), and writes DIR/toy_<setting>.svg (one panel per method:
 * the mean loss as a heat map with contours, the Pareto curve, one coloured trajectory per start)
 * and DIR/toy.json (the runs, with trajectories subsampled to about 100 points).
 * Runs are independent, so they are spread over threads; results do not depend on the count.
 */
#define _GNU_SOURCE /* getopt_long */
#include "cli.h"
#include "mtgrad.h"
#include "mtgrad_nn.h"
#include "report.h"
#include "svg.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

const char mtgrad_usage_toy[] =
    "usage: mtgrad toy [--methods a,b,...|all] [--setting cagrad|nash|both] [--steps N]\n"
    "                  [--lr LR] [--param METHOD:k=v,...]... [--out DIR] [--threads N] [--quiet]\n"
    "  Runs each method with Adam from the 5 published starts of the CAGrad toy and reports\n"
    "  whether it reached the Pareto set (θ1 in [-7.05, 7.05], θ2 within 0.05 of the Pareto\n"
    "  curve, which is θ2 = -8.3552 at θ1 = 0 and -8.4345 at θ1 = ±7).\n"
    "  --methods   comma-separated methods, each optionally NAME:k=v;k=v (default: all)\n"
    "  --setting   cagrad: L1, L2 and CAGrad's starts, 100000 steps; nash: 0.1 L1, L2 and\n"
    "              Nash-MTL's starts, 50000 steps; both (default: cagrad)\n"
    "  --steps N   Adam steps per run (default: the setting's)\n"
    "  --lr LR     Adam learning rate (default 0.001)\n"
    "  --param M:P parameters for every run of method M, e.g. --param cagrad:c=0.2 (repeatable)\n"
    "  --out DIR   where toy_<setting>.svg and toy.json go (default: the current directory;\n"
    "              created if missing)\n"
    "  --threads N runs in parallel (default: all cores; results do not depend on it)\n"
    "  --quiet     no progress on stderr\n"
    "  Exit status: 0 when every run completed (reached or not), 1 if a run failed, 2 usage.\n";

#define MAX_ENTRIES 128
#define N_STARTS 5
#define PLOT_POINTS 400 /* points per trajectory in the SVG */
#define JSON_POINTS 100 /* points per trajectory in the JSON */
#define LAND_N 81       /* landscape grid nodes per axis */
#define LIMIT 10.0      /* the plots show [-10, 10]^2 */

typedef struct entry {
    char name[64];
    char params[256]; /* "" = the method's defaults */
} entry;

typedef struct run_result {
    mtgrad_status status;
    char err[256];
    double final_theta[2];
    int reached;
    double *traj; /* 2 * traj_len doubles */
    double seconds;
} run_result;

typedef struct options {
    entry entries[MAX_ENTRIES];
    size_t n_entries;
    int settings[2];
    int n_settings;
    int64_t steps; /* 0 = the setting's default */
    double lr;
    const char *out;
    int threads;
    int quiet;
} options;

/* ---------------------------------------------------------------- options */

static int add_entry(options *o, const char *spec, size_t len)
{
    if (o->n_entries == MAX_ENTRIES) {
        fprintf(stderr, "mtgrad toy: too many methods (at most %d)\n", MAX_ENTRIES);
        return -1;
    }
    entry *e = &o->entries[o->n_entries];
    memset(e, 0, sizeof *e);
    const char *colon = memchr(spec, ':', len);
    size_t nlen = colon ? (size_t)(colon - spec) : len;
    if (nlen == 0 || nlen >= sizeof e->name) {
        fprintf(stderr, "mtgrad toy: bad method '%.*s'\n", (int)len, spec);
        return -1;
    }
    memcpy(e->name, spec, nlen);
    if (colon) {
        size_t plen = len - nlen - 1;
        if (plen >= sizeof e->params) {
            fprintf(stderr, "mtgrad toy: parameters of %s too long\n", e->name);
            return -1;
        }
        memcpy(e->params, colon + 1, plen);
        for (char *c = e->params; *c; c++) /* ';' separates pairs inside a --methods list */
            if (*c == ';') *c = ',';
    }
    if (!mtgrad_method_by_name(e->name)) {
        fprintf(stderr, "mtgrad toy: unknown method '%s' (see 'mtgrad methods')\n", e->name);
        return -1;
    }
    o->n_entries++;
    return 0;
}

static int parse_methods(options *o, const char *list)
{
    if (strcmp(list, "all") == 0) {
        for (size_t i = 0; i < mtgrad_method_count(); i++) {
            const char *n = mtgrad_method_name(mtgrad_method_at(i));
            if (add_entry(o, n, strlen(n)) != 0) return -1;
        }
        return 0;
    }
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len && add_entry(o, p, len) != 0) return -1;
        p += len + (comma != NULL);
    }
    return 0;
}

/* --param METHOD:k=v,...: given to every entry of METHOD that has no parameters of its own. */
static int apply_param(options *o, const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec) {
        fprintf(stderr, "mtgrad toy: --param wants METHOD:k=v,..., not '%s'\n", spec);
        return -1;
    }
    size_t nlen = (size_t)(colon - spec);
    int used = 0;
    for (size_t i = 0; i < o->n_entries; i++) {
        entry *e = &o->entries[i];
        if (strlen(e->name) != nlen || strncmp(e->name, spec, nlen) != 0 || e->params[0])
            continue;
        snprintf(e->params, sizeof e->params, "%s", colon + 1);
        used = 1;
    }
    if (!used) {
        fprintf(stderr, "mtgrad toy: --param %s: no such method among --methods\n", spec);
        return -1;
    }
    return 0;
}

/* 0: run; 1: --help was printed; -1: usage error (message printed). */
static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"methods", required_argument, NULL, 'm'}, {"setting", required_argument, NULL, 's'},
        {"steps", required_argument, NULL, 'n'},   {"lr", required_argument, NULL, 'l'},
        {"param", required_argument, NULL, 'p'},   {"out", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *methods = "all", *params[64];
    int n_params = 0;
    memset(o, 0, sizeof *o);
    o->settings[0] = 0;
    o->n_settings = 1;
    o->out = ".";
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "m:s:n:l:p:o:t:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': methods = optarg; break;
        case 's':
            if (strcmp(optarg, "cagrad") == 0) o->settings[0] = 0, o->n_settings = 1;
            else if (strcmp(optarg, "nash") == 0) o->settings[0] = 1, o->n_settings = 1;
            else if (strcmp(optarg, "both") == 0)
                o->settings[0] = 0, o->settings[1] = 1, o->n_settings = 2;
            else {
                fprintf(stderr, "mtgrad toy: --setting is cagrad, nash or both, not '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case 'n':
            errno = 0;
            o->steps = strtoll(optarg, &end, 10);
            if (errno || *end || o->steps < 1 || o->steps > 100000000) {
                fprintf(stderr, "mtgrad toy: --steps wants an integer in 1..1e8\n");
                return -1;
            }
            break;
        case 'l':
            o->lr = strtod(optarg, &end);
            if (*end || !(o->lr > 0) || !isfinite(o->lr)) {
                fprintf(stderr, "mtgrad toy: --lr wants a positive number\n");
                return -1;
            }
            break;
        case 'p':
            if (n_params == 64) return -1;
            params[n_params++] = optarg;
            break;
        case 'o': o->out = optarg; break;
        case 't':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || o->threads < 1 || o->threads > 1024) {
                fprintf(stderr, "mtgrad toy: --threads wants an integer >= 1\n");
                return -1;
            }
            break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(mtgrad_usage_toy, stdout); return 1;
        default:
            fprintf(stderr, "mtgrad toy: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mtgrad toy: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (parse_methods(o, methods) != 0) return -1;
    if (o->n_entries == 0) {
        fprintf(stderr, "mtgrad toy: no methods given\n");
        return -1;
    }
    for (int i = 0; i < n_params; i++)
        if (apply_param(o, params[i]) != 0) return -1;
    return 0;
}

/* ---------------------------------------------------------------- running */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t stride_for(int64_t steps, int points)
{
    int64_t s = steps / points;
    return s < 1 ? 1 : s;
}

/* All entries x starts of one setting; results[e * N_STARTS + (size_t)i]. Returns the failed
 * count, or -1 (nothing run) after a message. */
static int run_setting(const options *o, int setting, int64_t steps, double lr,
                       double starts[N_STARTS][2], run_result *results)
{
    int64_t stride = stride_for(steps, PLOT_POINTS), len = mtgrad_toy_traj_len(steps, stride);
    int n_runs = (int)o->n_entries * N_STARTS, failed = 0, done_methods = 0;
    int *left = calloc(o->n_entries, sizeof *left);
    if (!left) {
        fprintf(stderr, "mtgrad toy: out of memory\n");
        return -1;
    }
    double t0 = now();
    for (size_t e = 0; e < o->n_entries; e++) left[e] = N_STARTS;
#ifdef _OPENMP
    int nt = o->threads ? o->threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) reduction(+ : failed)
#endif
    for (int r = 0; r < n_runs; r++) {
        const entry *e = &o->entries[r / N_STARTS];
        run_result *res = &results[r];
        res->traj = malloc((size_t)(2 * len) * sizeof(double));
        double t = now();
        /* without its trajectory a run would be plotted and saved short: it fails instead */
        res->status = !res->traj ? MTGRAD_E_NOMEM
                                 : mtgrad_toy_run(e->name, e->params[0] ? e->params : NULL,
                                                  setting, starts[r % N_STARTS], steps, lr,
                                                  res->traj, stride, res->final_theta,
                                                  &res->reached, res->err, sizeof res->err);
        if (!res->traj) snprintf(res->err, sizeof res->err, "%s: out of memory", e->name);
        res->seconds = now() - t;
        if (res->status != MTGRAD_OK) failed++;
#ifdef _OPENMP
#pragma omp critical(toy_progress)
#endif
        {
            if (--left[r / N_STARTS] == 0) {
                done_methods++;
                if (!o->quiet) {
                    fprintf(stderr, "toy [%s] %d/%zu %s done (%.1f s elapsed)\n",
                            setting ? "nash" : "cagrad", done_methods, o->n_entries, e->name,
                            now() - t0);
                }
            }
        }
    }
    free(left);
    return failed;
}

/* ---------------------------------------------------------------- table */

static void label_of(const entry *e, char *buf, size_t len)
{
    if (e->params[0]) snprintf(buf, len, "%s (%s)", e->name, e->params);
    else snprintf(buf, len, "%s", e->name);
}

static void print_table(const options *o, int setting, int64_t steps, double lr,
                        double starts[N_STARTS][2], const run_result *results)
{
    printf("\n### CAGrad toy, %s setting (%s), %lld Adam steps, lr %g\n\n",
           setting ? "Nash-MTL" : "CAGrad", setting ? "0.1·L1, L2" : "L1, L2", (long long)steps,
           lr);
    printf("| method |");
    for (int i = 0; i < N_STARTS; i++) printf(" start (%g, %g) |", starts[i][0], starts[i][1]);
    printf(" reached |\n|---|");
    for (int i = 0; i < N_STARTS; i++) printf("---|");
    printf("---|\n");
    for (size_t e = 0; e < o->n_entries; e++) {
        char label[400];
        label_of(&o->entries[e], label, sizeof label);
        printf("| %s |", label);
        int reached = 0;
        for (int i = 0; i < N_STARTS; i++) {
            const run_result *r = &results[e * N_STARTS + (size_t)i];
            if (r->status != MTGRAD_OK) {
                printf(" error: %s |", mtgrad_status_str(r->status));
                continue;
            }
            reached += r->reached;
            printf(" %s (%.2f, %.2f) |", r->reached ? "✓" : "✗", r->final_theta[0],
                   r->final_theta[1]);
        }
        printf(" %d/%d |\n", reached, N_STARTS);
    }
    for (size_t e = 0; e < o->n_entries; e++)
        for (int i = 0; i < N_STARTS; i++)
            if (results[e * N_STARTS + (size_t)i].status != MTGRAD_OK)
                fprintf(stderr, "mtgrad toy: %s\n", results[e * N_STARTS + (size_t)i].err);
}

/* ---------------------------------------------------------------- SVG */

/* The mean loss (L1 + L2)/2 of the setting on the plot's grid. */
static void landscape(int setting, double *z, double *zmin, double *zmax)
{
    *zmin = INFINITY;
    *zmax = -INFINITY;
    for (int j = 0; j < LAND_N; j++) {
        for (int i = 0; i < LAND_N; i++) {
            double th[2] = {-LIMIT + 2 * LIMIT * i / (LAND_N - 1),
                            -LIMIT + 2 * LIMIT * j / (LAND_N - 1)};
            double L[2];
            mtgrad_toy_eval(th, setting, L, NULL);
            double v = 0.5 * (L[0] + L[1]);
            z[j * LAND_N + i] = v;
            if (v < *zmin) *zmin = v;
            if (v > *zmax) *zmax = v;
        }
    }
}

#define PANEL_W 250.0
#define PANEL_H 250.0
#define CELL_W 320.0
#define CELL_H 305.0
#define TOP 100.0

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Colours and contour levels by rank: the toy's loss spans -20 (the valley) to +8 with the
 * interesting log valleys of f1, f2 in a narrow band; a linear scale would paint the whole upper
 * half one colour. */
static void draw_landscape_def(svg *s, int setting)
{
    enum { N = LAND_N * LAND_N };
    static double z[N], sorted[N], rank[N];
    double zmin, zmax;
    landscape(setting, z, &zmin, &zmax);
    memcpy(sorted, z, sizeof z);
    qsort(sorted, N, sizeof *sorted, cmp_double);
    for (int i = 0; i < N; i++) {
        size_t lo = 0, hi = N; /* first index with sorted[idx] >= z[i] */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (sorted[mid] < z[i]) lo = mid + 1;
            else hi = mid;
        }
        rank[i] = (double)lo / (N - 1);
    }
    svg_grid g = {rank, LAND_N, LAND_N, -LIMIT, LIMIT, -LIMIT, LIMIT};
    svg_grid gz = {z, LAND_N, LAND_N, -LIMIT, LIMIT, -LIMIT, LIMIT};
    svg_viewport v = svg_viewport_make(0, 0, PANEL_W, PANEL_H, -LIMIT, LIMIT, -LIMIT, LIMIT);
    svg_def_begin(s, "landscape", 1);
    svg_heatmap(s, &v, &g, 0, 1);
    for (int l = 1; l < 14; l++) /* iso-lines at the 1/14 .. 13/14 quantiles */
        svg_contour(s, &v, &gz, sorted[(size_t)l * (N - 1) / 14], "#ffffff", 0.6);
    /* the Pareto set, drawn as a curve (it bends from -8.355 at the centre to -8.434 at ±7) */
    double px[57], py[57];
    for (int i = 0; i < 57; i++) {
        px[i] = -7 + 14.0 * i / 56;
        py[i] = mtgrad_toy_pareto_theta2(px[i]);
    }
    svg_polyline(s, &v, px, py, 57, "#000000", 3);
    svg_def_end(s);
}

/* 0, or -1 if a trajectory could not be drawn (out of memory). */
static int draw_panel(svg *s, const entry *e, double x0, double y0, const run_result *res,
                      int64_t traj_len, double starts[N_STARTS][2])
{
    svg_viewport v = svg_viewport_make(x0, y0, PANEL_W, PANEL_H, -LIMIT, LIMIT, -LIMIT, LIMIT);
    svg_use(s, "landscape", x0, y0);
    svg_axes(s, &v, "θ1", "θ2");
    int reached = 0, rc = 0;
    for (int i = 0; i < N_STARTS; i++) {
        const run_result *r = &res[i];
        if (!r->traj) continue;
        double *xs = malloc((size_t)traj_len * sizeof *xs), *ys = malloc((size_t)traj_len * sizeof *ys);
        if (xs && ys) {
            for (int64_t p = 0; p < traj_len; p++) {
                xs[p] = r->traj[2 * p];
                ys[p] = r->traj[2 * p + 1];
            }
            svg_polyline(s, &v, xs, ys, (size_t)traj_len, svg_color((size_t)i), 2);
        } else {
            rc = -1;
        }
        free(xs);
        free(ys);
        svg_marker(s, &v, starts[i][0], starts[i][1], SVG_CIRCLE, 9, svg_color((size_t)i));
        if (r->status == MTGRAD_OK)
            svg_marker(s, &v, r->final_theta[0], r->final_theta[1],
                       r->reached ? SVG_STAR : SVG_CROSS, 12, r->reached ? svg_color((size_t)i) : "#000000");
        reached += r->status == MTGRAD_OK && r->reached;
    }
    char title[400], label[360];
    label_of(e, label, sizeof label);
    snprintf(title, sizeof title, "%s — %d/%d reached", label, reached, N_STARTS);
    svg_text(s, x0 + PANEL_W / 2, y0 - 8, title, 13, SVG_MIDDLE, NULL, 1);
    return rc;
}

static int write_svg(const options *o, const char *path, int setting, int64_t steps,
                     double starts[N_STARTS][2], const run_result *results)
{
    int64_t traj_len = mtgrad_toy_traj_len(steps, stride_for(steps, PLOT_POINTS));
    size_t ncol = o->n_entries < 4 ? o->n_entries : 4;
    size_t nrow = (o->n_entries + ncol - 1) / ncol;
    double width = 70 + CELL_W * (double)ncol, height = TOP + 60 + CELL_H * (double)nrow;
    char err[512];
    svg *s = svg_open(path, width, height, err, sizeof err);
    if (!s) {
        fprintf(stderr, "mtgrad toy: %s\n", err);
        return -1;
    }
    char title[200];
    snprintf(title, sizeof title,
             "CAGrad toy, %s setting: trajectories over the mean loss (%lld Adam steps)",
             setting ? "Nash-MTL" : "CAGrad", (long long)steps);
    svg_text(s, 20, 24, title, 15, SVG_START, NULL, 1);
    svg_text(s, 20, 42,
             "black curve: Pareto set · circle: start · star: reached · cross: did not reach",
             11, SVG_START, "#444444", 0);
    const char *labels[N_STARTS], *colors[N_STARTS];
    char lbuf[N_STARTS][40];
    for (int i = 0; i < N_STARTS; i++) {
        snprintf(lbuf[i], sizeof lbuf[i], "start (%g, %g)", starts[i][0], starts[i][1]);
        labels[i] = lbuf[i];
        colors[i] = svg_color((size_t)i);
    }
    svg_legend(s, width - 160, 8, labels, colors, NULL, N_STARTS);
    draw_landscape_def(s, setting);
    int drawn = 0;
    for (size_t e = 0; e < o->n_entries; e++) {
        double x0 = 60 + CELL_W * (double)(e % ncol), y0 = TOP + 35 + CELL_H * (double)(e / ncol);
        drawn |= draw_panel(s, &o->entries[e], x0, y0, results + e * N_STARTS, traj_len, starts);
    }
    if (svg_close(s, err, sizeof err) != 0 || drawn != 0) {
        fprintf(stderr, "mtgrad toy: %s: %s\n", path, drawn ? "out of memory" : err);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- JSON */

static cJSON *pair(double a, double b)
{
    double v[2] = {a, b};
    return cJSON_CreateDoubleArray(v, 2);
}

static cJSON *setting_json(const options *o, int setting, int64_t steps, double lr,
                           double starts[N_STARTS][2], const run_result *results)
{
    int64_t stride = stride_for(steps, PLOT_POINTS), len = mtgrad_toy_traj_len(steps, stride);
    int64_t every = len / JSON_POINTS < 1 ? 1 : len / JSON_POINTS;
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "setting", setting ? "nash" : "cagrad");
    cJSON_AddStringToObject(js, "losses", setting ? "0.1*L1, L2" : "L1, L2");
    cJSON_AddNumberToObject(js, "steps", (double)steps);
    cJSON_AddNumberToObject(js, "lr", lr);
    cJSON_AddNumberToObject(js, "trajectory_stride", (double)(stride * every));
    cJSON *st = cJSON_AddArrayToObject(js, "starts");
    for (int i = 0; i < N_STARTS; i++) mtgrad_json_push(st, pair(starts[i][0], starts[i][1]));
    cJSON *ms = cJSON_AddArrayToObject(js, "methods");
    for (size_t e = 0; e < o->n_entries; e++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "method", o->entries[e].name);
        cJSON_AddStringToObject(m, "params", o->entries[e].params);
        cJSON *runs = cJSON_AddArrayToObject(m, "runs");
        int reached = 0;
        for (int i = 0; i < N_STARTS; i++) {
            const run_result *r = &results[e * N_STARTS + (size_t)i];
            cJSON *rj = cJSON_CreateObject();
            mtgrad_json_add(rj, "start", pair(starts[i][0], starts[i][1]));
            cJSON_AddStringToObject(rj, "status", r->status == MTGRAD_OK ? "ok" : r->err);
            if (r->status == MTGRAD_OK)
                mtgrad_json_add(rj, "final", pair(r->final_theta[0], r->final_theta[1]));
            cJSON_AddBoolToObject(rj, "reached", r->status == MTGRAD_OK && r->reached);
            cJSON_AddNumberToObject(rj, "seconds", r->seconds);
            cJSON *tr = cJSON_AddArrayToObject(rj, "trajectory");
            for (int64_t p = 0; r->traj && p < len; p++) {
                /* every `every`-th recorded point, and always the last one */
                if ((p % every != 0 && p != len - 1) || !isfinite(r->traj[2 * p])) continue;
                mtgrad_json_push(tr, pair(r->traj[2 * p], r->traj[2 * p + 1]));
            }
            mtgrad_json_push(runs, rj);
            reached += r->status == MTGRAD_OK && r->reached;
        }
        cJSON_AddNumberToObject(m, "reached", reached);
        mtgrad_json_push(ms, m);
    }
    return js;
}

static int write_json(const char *path, cJSON *root)
{
    char err[4400];
    if (mtgrad_report_write_json(path, root, err, sizeof err) == 0) return 0;
    fprintf(stderr, "mtgrad toy: %s\n", err); /* says whether memory or the file failed */
    return -1;
}

/* ---------------------------------------------------------------- main */

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "mtgrad toy: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
}

int mtgrad_cmd_toy(int argc, char **argv)
{
    options *o = malloc(sizeof *o);
    if (!o) {
        fprintf(stderr, "mtgrad toy: out of memory\n");
        return 1;
    }
    int parsed = parse_options(argc, argv, o);
    if (parsed != 0) {
        if (parsed < 0) fputs(mtgrad_usage_toy, stderr);
        free(o);
        return parsed < 0 ? 2 : 0;
    }
    int status = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *sets = cJSON_AddArrayToObject(root, "settings");
    if (make_dir(o->out) != 0) {
        cJSON_Delete(root);
        free(o);
        return 1;
    }
    for (int si = 0; si < o->n_settings; si++) {
        int setting = o->settings[si];
        int64_t steps = o->steps ? o->steps : mtgrad_toy_default_steps(setting);
        double lr = o->lr > 0 ? o->lr : 1e-3, starts[N_STARTS][2];
        mtgrad_toy_starts(setting, starts);
        run_result *results = calloc(o->n_entries * N_STARTS, sizeof *results);
        int failed = results ? run_setting(o, setting, steps, lr, starts, results) : -1;
        if (failed < 0) {
            if (!results) fprintf(stderr, "mtgrad toy: out of memory\n");
            free(results);
            status = 1;
            break;
        }
        if (failed > 0) status = 1;
        print_table(o, setting, steps, lr, starts, results);
        char path[4096];
        snprintf(path, sizeof path, "%s/toy_%s.svg", o->out, setting ? "nash" : "cagrad");
        if (write_svg(o, path, setting, steps, starts, results) != 0) status = 1;
        else if (!o->quiet) fprintf(stderr, "toy: wrote %s\n", path);
        mtgrad_json_push(sets, setting_json(o, setting, steps, lr, starts, results));
        for (size_t r = 0; r < o->n_entries * N_STARTS; r++) free(results[r].traj);
        free(results);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/toy.json", o->out);
    if (write_json(path, root) != 0) status = 1;
    else if (!o->quiet) fprintf(stderr, "toy: wrote %s\n", path);
    cJSON_Delete(root);
    free(o);
    return status;
}
