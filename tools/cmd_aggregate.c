/* cmd_aggregate.c — `mtgrad aggregate -m NAME [-p k=v,...] [--losses a,b,...] [--seed S] [--json]
 * FILE`: the update direction (and the task weights, for methods that have them) of one
 * gradient matrix read from a text or .npy file. */
#define _GNU_SOURCE /* getopt_long */
#include "cli.h"
#include "matrix_io.h"
#include "mtgrad.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char mtgrad_usage_aggregate[] =
    "usage: mtgrad aggregate -m NAME [-p NAME=VALUE,...] [--losses L1,L2,...] [--seed S] [--json] FILE\n"
    "  FILE is a k x d gradient matrix: text (one row per task, numbers separated by blanks or\n"
    "  commas, '#' comments) or NumPy .npy ('<f4'/'<f8', C order, shape (k, d) or (d,)); '-' is stdin.\n"
    "  -m, --method NAME    the method (see 'mtgrad methods')\n"
    "  -p, --params LIST    method parameters, e.g. -p c=0.4,rescale=1 (lists use ':', 0.9:0.999)\n"
    "  -l, --losses LIST    the k task losses, comma separated (methods that need losses)\n"
    "  -s, --seed S         seed of the method's random generator\n"
    "  -j, --json           print a JSON object instead of text\n"
    "  Prints 'direction: ...' and 'weights: ...' (%.17g). Exit status 0, 1 on error, 2 on usage.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fputs("mtgrad: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fputs(mtgrad_usage_aggregate, stderr);
    return 2;
}

/* Comma-separated finite numbers; exactly `want` of them. -1 with a message on stderr. */
static int parse_losses(const char *s, double *out, int64_t want)
{
    int64_t n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || !isfinite(x)) {
            fprintf(stderr, "mtgrad: --losses: '%s' is not a list of finite numbers\n", s);
            return -1;
        }
        if (n < want) out[n] = x;
        n++;
        while (*end == ' ') end++;
        if (*end == '\0') break;
        if (*end != ',') {
            fprintf(stderr, "mtgrad: --losses: '%s' is not a comma-separated list\n", s);
            return -1;
        }
        p = end + 1;
    }
    if (n != want) {
        fprintf(stderr, "mtgrad: --losses has %lld values, the matrix has %lld tasks\n",
                (long long)n, (long long)want);
        return -1;
    }
    return 0;
}

static void print_text(const char *label, const double *v, int64_t n)
{
    printf("%s:", label);
    for (int64_t i = 0; i < n; i++) printf(" %.17g", v[i]);
    putchar('\n');
}

/* 0, or -1 when out of memory. */
static int print_json(const mtgrad_aggregator *a, mtgrad_status st, const double *dir, int64_t d,
                      const double *w, int64_t k)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return -1;
    cJSON_AddStringToObject(o, "method", mtgrad_method_name(mtgrad_aggregator_method(a)));
    cJSON_AddNumberToObject(o, "k", (double)k);
    cJSON_AddNumberToObject(o, "d", (double)d);
    cJSON_AddStringToObject(o, "status", mtgrad_status_str(st));
    /* cJSON counts in int: a direction longer than INT_MAX cannot be printed this way */
    mtgrad_json_add(o, "direction", cJSON_CreateDoubleArray(dir, (int)d));
    if (w) mtgrad_json_add(o, "weights", cJSON_CreateDoubleArray(w, (int)k));
    char *s = mtgrad_json_print(o);
    cJSON_Delete(o);
    if (!s) return -1;
    puts(s);
    cJSON_free(s);
    return 0;
}

typedef struct agg_opts {
    const char *method, *params, *losses, *seed, *file;
    int json;
} agg_opts;

static int parse_opts(int argc, char **argv, agg_opts *o)
{
    static const struct option opts[] = {{"method", required_argument, NULL, 'm'},
                                         {"params", required_argument, NULL, 'p'},
                                         {"losses", required_argument, NULL, 'l'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "m:p:l:s:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': o->method = optarg; break;
        case 'p': o->params = optarg; break;
        case 'l': o->losses = optarg; break;
        case 's': o->seed = optarg; break;
        case 'j': o->json = 1; break;
        case 'h': fputs(mtgrad_usage_aggregate, stdout); return 1;
        default: fputs(mtgrad_usage_aggregate, stderr); return 2;
        }
    }
    if (!o->method) return usage_error("aggregate: -m NAME is required%s", "");
    if (optind != argc - 1) return usage_error("aggregate: exactly one FILE is needed%s", "");
    o->file = argv[optind];
    return 0;
}

int mtgrad_cmd_aggregate(int argc, char **argv)
{
    agg_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (!mtgrad_method_by_name(o.method)) {
        fprintf(stderr, "mtgrad: unknown method '%s' (see 'mtgrad methods')\n", o.method);
        return 1;
    }
    matrix G;
    char err[512];
    if (matrix_read_file(o.file, &G, err, sizeof err) < 0) {
        fprintf(stderr, "mtgrad: %s\n", err);
        return 1;
    }
    mtgrad_aggregator *a = NULL;
    double *dir = malloc((size_t)G.cols * sizeof *dir);
    double *w = malloc((size_t)G.rows * sizeof *w);
    double *losses = o.losses ? malloc((size_t)G.rows * sizeof *losses) : NULL;
    rc = 1;
    if (!dir || !w || (o.losses && !losses)) {
        fprintf(stderr, "mtgrad: out of memory\n");
    } else if (losses && parse_losses(o.losses, losses, G.rows) < 0) {
        /* message printed */
    } else if (mtgrad_aggregator_new(&a, o.method, G.rows, o.params, err, sizeof err) !=
               MTGRAD_OK) {
        fprintf(stderr, "mtgrad: %s\n", err);
    } else if (o.seed && mtgrad_aggregator_set_param(a, "seed", o.seed) != MTGRAD_OK) {
        fprintf(stderr, "mtgrad: --seed: %s\n", mtgrad_aggregator_error(a));
    } else {
        unsigned flags = mtgrad_method_flags(mtgrad_aggregator_method(a));
        double *wout = (flags & MTGRAD_HAS_WEIGHTS) ? w : NULL;
        if ((flags & MTGRAD_NEEDS_LOSSES) && !losses) {
            fprintf(stderr, "mtgrad: method %s needs the task losses (--losses)\n", o.method);
        } else {
            mtgrad_status st =
                mtgrad_aggregate_f64(a, G.data, G.rows, G.cols, G.cols, losses, dir, wout);
            if (st == MTGRAD_OK || st == MTGRAD_E_MAXITER || st == MTGRAD_E_NOPROGRESS) {
                if (st != MTGRAD_OK) /* outputs are the solver's best iterate: say so */
                    fprintf(stderr, "mtgrad: warning: %s\n", mtgrad_aggregator_error(a));
                if (o.json) {
                    rc = print_json(a, st, dir, G.cols, wout, G.rows) == 0 ? 0 : 1;
                    if (rc) fprintf(stderr, "mtgrad: out of memory\n");
                } else {
                    print_text("direction", dir, G.cols);
                    if (wout) print_text("weights", wout, G.rows);
                    rc = 0;
                }
            } else {
                fprintf(stderr, "mtgrad: %s\n", mtgrad_aggregator_error(a));
            }
        }
    }
    mtgrad_aggregator_free(a);
    free(losses);
    free(w);
    free(dir);
    matrix_free(&G);
    return rc;
}
