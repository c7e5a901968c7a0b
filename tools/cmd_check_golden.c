/* cmd_check_golden.c — `mtgrad check-golden PATH...`: runs golden cases (shared/golden/README.md)
 * through the public API and compares every expected number with the absolute tolerance of its
 * case. Prints one line per failing case and a final "N passed, N failed". */
#define _GNU_SOURCE /* getopt_long; opendir/readdir/stat are POSIX */
#include "cli.h"
#include "golden.h"
#include "mtgrad.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char mtgrad_usage_check_golden[] =
    "usage: mtgrad check-golden [-v] [--summary] PATH...\n"
    "  Runs every case of the golden files PATH (a file, or a directory: all its *.txt, sorted)\n"
    "  and checks |ours - expected| <= tol for every expected number.\n"
    "  -v, --verbose   also print a line for each passing case\n"
    "  --summary       print pass counts per method (and variant) before the final line\n"
    "  Exit status: 0 if every case passed, 1 otherwise, 2 on a usage error.\n";

/* ------------------------------------------------------------------ tallies */

typedef struct tally {
    char name[128];
    long passed, total;
} tally;

typedef struct run_ctx {
    int verbose, summary;
    long passed, failed;
    tally *methods, *groups;
    size_t n_methods, n_groups;
} run_ctx;

static void tally_add(tally **t, size_t *n, const char *name, int ok)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*t)[i].name, name) == 0) {
            (*t)[i].passed += ok;
            (*t)[i].total++;
            return;
        }
    }
    tally *p = realloc(*t, (*n + 1) * sizeof *p);
    if (!p) return; /* the summary is best-effort; the totals are exact */
    *t = p;
    snprintf(p[*n].name, sizeof p[*n].name, "%s", name);
    p[*n].passed = ok;
    p[*n].total = 1;
    (*n)++;
}

static void record(run_ctx *x, const char *method, const char *group, int ok)
{
    if (ok)
        x->passed++;
    else
        x->failed++;
    tally_add(&x->methods, &x->n_methods, method, ok);
    tally_add(&x->groups, &x->n_groups, group, ok);
}

static int cmp_tally(const void *a, const void *b)
{
    return strcmp(((const tally *)a)->name, ((const tally *)b)->name);
}

static void print_summary(run_ctx *x)
{
    qsort(x->methods, x->n_methods, sizeof *x->methods, cmp_tally);
    qsort(x->groups, x->n_groups, sizeof *x->groups, cmp_tally);
    for (size_t i = 0; i < x->n_methods; i++) {
        const tally *m = &x->methods[i];
        printf("%s: %ld/%ld\n", m->name, m->passed, m->total);
        size_t len = strlen(m->name);
        for (size_t j = 0; j < x->n_groups; j++) {
            const tally *g = &x->groups[j];
            /* a variant line for groups "<method>-<variant>" */
            if (strncmp(g->name, m->name, len) == 0 && g->name[len] == '-')
                printf("  %s: %ld/%ld\n", g->name, g->passed, g->total);
        }
    }
}

/* ------------------------------------------------------------------ one case */

/* Runner-level params: handled here, never passed to the library. Returns 1 if `p` is one
 * (and writes a message to msg if its value is not what this runner can do), 0 otherwise. */
static int runner_param(const golden_case *c, const golden_param *p, char *msg, size_t len)
{
    if (strcmp(p->name, "state") == 0) {
        if (strncmp(p->value, "fresh", 5) != 0)
            snprintf(msg, len, "param state '%s': only a fresh state is supported", p->value);
        return 1;
    }
    if (strcmp(p->name, "steps") == 0) {
        char *end;
        errno = 0;
        long long n = strtoll(p->value, &end, 10);
        if (errno || end == p->value || *end || n != (long long)c->n_steps)
            snprintf(msg, len, "param steps '%s' does not match the %zu steps of the case",
                     p->value, c->n_steps);
        return 1;
    }
    if (strcmp(p->name, "stochastic") == 0) {
        if (strcmp(p->value, "no") != 0)
            snprintf(msg, len, "param stochastic '%s': only 'no' is supported", p->value);
        return 1;
    }
    if (strcmp(p->name, "w0") == 0) {
        if (strcmp(p->value, "uniform") != 0)
            snprintf(msg, len, "param w0 '%s': only 'uniform' is supported", p->value);
        return 1;
    }
    return 0;
}

/* Largest |ours - expected| over n numbers (NaN if any is NaN); *at gets its index. */
static double max_err(const double *ours, const double *want, int64_t n, int64_t *at)
{
    double e = 0;
    *at = 0;
    for (int64_t i = 0; i < n; i++) {
        double ei = fabs(ours[i] - want[i]);
        if (!(ei <= e)) { /* also catches NaN, which then sticks */
            e = ei;
            *at = i;
            if (isnan(ei)) break;
        }
    }
    return e;
}

static int status_ok(mtgrad_status s)
{
    return s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS;
}

/* Runs the steps of c on a (fresh, params set). 0: ran (err/where filled); -1: msg written. */
static int run_steps(const golden_case *c, mtgrad_aggregator *a, double *dir, double *w,
                     double *worst, char *where, size_t wlen, char *msg, size_t len)
{
    unsigned flags = mtgrad_method_flags(mtgrad_aggregator_method(a));
    *worst = 0;
    for (size_t t = 0; t < c->n_steps; t++) {
        const golden_step *s = &c->steps[t];
        if ((flags & MTGRAD_NEEDS_LOSSES_AFTER) && t >= 1) {
            /* the losses of step t are the "losses after" step t-1 (FAMO) */
            if (!s->losses) {
                snprintf(msg, len, "step %zu: no losses line to pass as the losses after step %zu",
                         t, t - 1);
                return -1;
            }
            mtgrad_status st = mtgrad_aggregator_update(a, s->losses, c->k);
            if (st != MTGRAD_OK) {
                snprintf(msg, len, "step %zu: mtgrad_aggregator_update: %s", t,
                         mtgrad_aggregator_error(a));
                return -1;
            }
        }
        if (s->uniform) {
            mtgrad_status st = mtgrad_aggregator_set_draws(a, s->uniform, (size_t)c->d);
            if (st != MTGRAD_OK) {
                snprintf(msg, len, "step %zu: mtgrad_aggregator_set_draws: %s", t,
                         mtgrad_aggregator_error(a));
                return -1;
            }
        }
        mtgrad_status st = mtgrad_aggregate_f64(a, s->G, c->k, c->d, c->d, s->losses, dir,
                                                (flags & MTGRAD_HAS_WEIGHTS) ? w : NULL);
        if (!status_ok(st)) {
            snprintf(msg, len, "step %zu: %s (%s)", t, mtgrad_aggregator_error(a),
                     mtgrad_status_str(st));
            return -1;
        }
        int64_t at;
        double e = max_err(dir, s->expect_direction, c->d, &at);
        if (!isnan(*worst) && !(e <= *worst)) { /* a NaN error sticks */
            *worst = e;
            snprintf(where, wlen, "step %zu direction[%lld]", t, (long long)at);
        }
        if (s->expect_weights) {
            e = max_err(w, s->expect_weights, c->k, &at);
            if (!isnan(*worst) && !(e <= *worst)) { /* a NaN error sticks */
                *worst = e;
                snprintf(where, wlen, "step %zu weights[%lld]", t, (long long)at);
            }
        }
    }
    return 0;
}

/* Runs one case. 1 if it passed; 0 with msg (a reason) or *worst/where (numbers) if not. */
static int run_case(const golden_case *c, double *worst, char *where, size_t wlen, char *msg,
                    size_t len)
{
    msg[0] = '\0';
    where[0] = '\0';
    *worst = 0;
    mtgrad_aggregator *a = NULL;
    char err[512];
    if (mtgrad_aggregator_new(&a, c->method, c->k, NULL, err, sizeof err) != MTGRAD_OK) {
        snprintf(msg, len, "%s", err);
        return 0;
    }
    for (size_t i = 0; i < c->n_params && !msg[0]; i++) {
        const golden_param *p = &c->params[i];
        if (runner_param(c, p, msg, len)) continue;
        if (mtgrad_aggregator_set_param(a, p->name, p->value) != MTGRAD_OK)
            snprintf(msg, len, "param %s '%s': %s", p->name, p->value, mtgrad_aggregator_error(a));
    }
    int expects_w = 0;
    for (size_t t = 0; t < c->n_steps; t++) expects_w |= c->steps[t].expect_weights != NULL;
    if (!msg[0] && expects_w &&
        !(mtgrad_method_flags(mtgrad_aggregator_method(a)) & MTGRAD_HAS_WEIGHTS))
        snprintf(msg, len, "the case expects weights but method %s has none", c->method);
    int ok = 0;
    if (!msg[0]) {
        double *dir = malloc((size_t)c->d * sizeof *dir);
        double *w = malloc((size_t)c->k * sizeof *w);
        if (!dir || !w)
            snprintf(msg, len, "out of memory");
        else if (run_steps(c, a, dir, w, worst, where, wlen, msg, len) == 0)
            ok = *worst <= c->tol;
        free(dir);
        free(w);
    }
    mtgrad_aggregator_free(a);
    return ok;
}

/* ------------------------------------------------------------------ files */

static void check_case(run_ctx *x, const char *file, const golden_case *c)
{
    double worst;
    char where[128], msg[1024], group[128];
    int ok = run_case(c, &worst, where, sizeof where, msg, sizeof msg);
    if (!ok && msg[0])
        printf("FAIL %s (%s:%ld): %s\n", c->name, file, c->line, msg);
    else if (!ok)
        printf("FAIL %s (%s:%ld): max abs error %.3g > tol %.3g (at %s)\n", c->name, file,
               c->line, worst, c->tol, where);
    else if (x->verbose)
        printf("ok %s (max abs error %.3g, tol %.3g)\n", c->name, worst, c->tol);
    golden_case_group(c, group, sizeof group);
    record(x, c->method, group, ok);
}

static void check_file(run_ctx *x, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL %s: cannot open: %s\n", path, strerror(errno));
        record(x, "(unreadable files)", "(unreadable files)", 0);
        return;
    }
    golden_reader *r = golden_reader_from_file(f);
    if (!r) {
        printf("FAIL %s: out of memory\n", path);
        record(x, "(unreadable files)", "(unreadable files)", 0);
        fclose(f);
        return;
    }
    for (long n = 0;; n++) {
        golden_case *c;
        long line;
        char err[GOLDEN_ERRLEN];
        int rc = golden_next(r, &c, &line, err, sizeof err);
        if (rc == 0 && n == 0) { /* an empty file is a broken file, not a passing one */
            line = golden_reader_lines(r);
            printf("%s:%ld: no case in this file\n", path, line > 0 ? line : 1);
            record(x, "(malformed files)", "(malformed files)", 0);
        }
        if (rc == 0) break;
        if (rc < 0) {
            printf("%s:%ld: %s\n", path, line, err);
            record(x, "(malformed files)", "(malformed files)", 0);
            break;
        }
        check_case(x, path, c);
        golden_case_free(c);
    }
    golden_reader_free(r);
    fclose(f);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_golden_name(const char *n)
{
    size_t len = strlen(n);
    return len > 4 && strcmp(n + len - 4, ".txt") == 0 && n[0] != '.';
}

static void check_dir(run_ctx *x, const char *path)
{
    DIR *dir = opendir(path);
    if (!dir) {
        printf("FAIL %s: cannot open directory: %s\n", path, strerror(errno));
        record(x, "(unreadable files)", "(unreadable files)", 0);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!is_golden_name(e->d_name)) continue; /* README.md and the rest */
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 32;
            char **p = realloc(names, nc * sizeof *p);
            if (!p) break;
            names = p;
            cap = nc;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (!names[n]) break;
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(dir);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        check_file(x, names[i]);
        free(names[i]);
    }
    free(names);
}

int mtgrad_cmd_check_golden(int argc, char **argv)
{
    static const struct option opts[] = {{"verbose", no_argument, NULL, 'v'},
                                         {"summary", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    run_ctx x;
    memset(&x, 0, sizeof x);
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        if (ch == 'v') x.verbose = 1;
        else if (ch == 's') x.summary = 1;
        else if (ch == 'h') {
            fputs(mtgrad_usage_check_golden, stdout);
            return 0;
        } else {
            fputs(mtgrad_usage_check_golden, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(mtgrad_usage_check_golden, stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            check_dir(&x, argv[i]);
        else
            check_file(&x, argv[i]);
    }
    if (x.passed + x.failed == 0) {
        printf("FAIL: no golden cases found\n");
        x.failed = 1;
    }
    if (x.summary) print_summary(&x);
    printf("%ld passed, %ld failed\n", x.passed, x.failed);
    free(x.methods);
    free(x.groups);
    return x.failed ? 1 : 0;
}
