/* test_alloc_fail.c — allocation-failure injection over the core library's public paths.
 *
 * For each path (mtgrad_aggregator_new for every registered method, set_param of list
 * parameters, set_draws, load, the public kernels) the test first counts the allocations a
 * successful call makes (mtgradi_alloc_count), then makes each of them fail in turn
 * (mtgradi_alloc_fail_after) and checks: the status is MTGRAD_E_NOMEM, a constructor leaves
 * *out NULL, and an existing object is unchanged, still usable and freeable. Leaks of the failed
 * calls are caught by LeakSanitizer in the sanitizer build. The hot path (aggregate, weights from
 * the Gram, update) must allocate nothing. Single-threaded: the injection counter is global. */
#include "harness.h"
#include "internal.h"
#include "alloc_sweep.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 3
#define D 7

static float G32[K * D];
static double G64[K * D], LOSSES[K] = {1.0, 0.5, 2.0}, AFTER[K] = {0.9, 0.45, 1.8};

/* ---------------------------------------------------------------- aggregators */

typedef struct agg_ctx {
    const char *method;
    const char *params;
    const char *pname, *pvalue; /* set_param */
    mtgrad_aggregator *a;
    unsigned char state[1 << 16];
    size_t state_len;
    char before[512];
} agg_ctx;

/* Parameter strings that give the methods' list (REALS) parameters a value, so that their
 * allocation is on the path. */
static const char *params_for(const char *method)
{
    if (strcmp(method, "famo") == 0) return "min_losses=0:0.1:0,adam_betas=0.8:0.99";
    if (strcmp(method, "ls") == 0 || strcmp(method, "si_ls") == 0) return "weights=1:2:3";
    return NULL;
}

/* A normal call works: the aggregator is usable. */
static void check_usable(mtgrad_aggregator *a, const char *what)
{
    const mtgrad_method *m = mtgrad_aggregator_method(a);
    float dir[D];
    double w[K];
    const double *L = mtgrad_method_flags(m) & MTGRAD_NEEDS_LOSSES ? LOSSES : NULL;
    double *wp = mtgrad_method_flags(m) & MTGRAD_HAS_WEIGHTS ? w : NULL;
    mtgrad_status s = mtgrad_aggregate_f32(a, G32, K, D, D, L, dir, wp);
    int ok = s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS;
    CHECK(ok, "%s %s: aggregate after a failed call: %s (%s)", mtgrad_method_name(m), what,
          mtgrad_status_str(s), mtgrad_aggregator_error(a));
}

static mtgrad_status agg_new_call(void *v)
{
    agg_ctx *c = v;
    char err[256];
    return mtgrad_aggregator_new(&c->a, c->method, K, c->params, err, sizeof err);
}

static void agg_new_done(void *v, mtgrad_status s)
{
    agg_ctx *c = v;
    if (s != MTGRAD_OK) CHECK(c->a == NULL, "%s: *out set by a failed aggregator_new", c->method);
    mtgrad_aggregator_free(c->a);
    c->a = NULL;
}

static void agg_prepare(void *v)
{
    agg_ctx *c = v;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&c->a, c->method, K, c->params, err, sizeof err);
    CHECK(s == MTGRAD_OK, "%s: aggregator_new: %s", c->method, err);
}

static mtgrad_status set_param_call(void *v)
{
    agg_ctx *c = v;
    if (c->a) mtgrad_aggregator_get_param(c->a, c->pname, c->before, sizeof c->before);
    return mtgrad_aggregator_set_param(c->a, c->pname, c->pvalue);
}

static void set_param_done(void *v, mtgrad_status s)
{
    agg_ctx *c = v;
    if (!c->a) return;
    if (s != MTGRAD_OK) {
        char now[512];
        mtgrad_aggregator_get_param(c->a, c->pname, now, sizeof now);
        CHECK(strcmp(now, c->before) == 0, "%s: %s changed by a failed set_param: '%s' -> '%s'",
              c->method, c->pname, c->before, now);
        check_usable(c->a, "set_param");
        CHECK(mtgrad_aggregator_set_param(c->a, c->pname, c->pvalue) == MTGRAD_OK,
              "%s: set_param after a failed one", c->method);
    }
    mtgrad_aggregator_free(c->a);
    c->a = NULL;
}

static mtgrad_status set_draws_call(void *v)
{
    agg_ctx *c = v;
    double draws[64];
    for (int i = 0; i < 64; i++) draws[i] = (i * 0.37) - (double)(int)(i * 0.37);
    return mtgrad_aggregator_set_draws(c->a, draws, 64);
}

static void usable_done(void *v, mtgrad_status s)
{
    agg_ctx *c = v;
    if (!c->a) return;
    if (s != MTGRAD_OK) check_usable(c->a, "after a failed call");
    mtgrad_aggregator_free(c->a);
    c->a = NULL;
}

static void load_prepare(void *v)
{
    agg_ctx *c = v;
    agg_prepare(v);
    if (!c->a) return;
    c->state_len = sizeof c->state;
    CHECK(mtgrad_aggregator_save(c->a, c->state, &c->state_len) == MTGRAD_OK, "%s: save",
          c->method);
}

static mtgrad_status load_call(void *v)
{
    agg_ctx *c = v;
    return mtgrad_aggregator_load(c->a, c->state, c->state_len);
}

/* The calls of a training step must not allocate. */
static void hot_path(const char *method, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    if (mtgrad_aggregator_new(&a, method, K, params, err, sizeof err) != MTGRAD_OK) return;
    unsigned flags = mtgrad_method_flags(mtgrad_aggregator_method(a));
    const double *L = flags & MTGRAD_NEEDS_LOSSES ? LOSSES : NULL;
    float dir[D];
    double dir64[D], wbuf[K], M[K * K];
    double *w = flags & MTGRAD_HAS_WEIGHTS ? wbuf : NULL;
    long a0 = mtgradi_alloc_count();
    for (int rep = 0; rep < 2; rep++) {
        (void)mtgrad_aggregate_f32(a, G32, K, D, D, L, dir, w);
        (void)mtgrad_aggregate_f64(a, G64, K, D, D, L, dir64, w);
        if (!(flags & MTGRAD_NEEDS_JACOBIAN)) {
            (void)mtgrad_gram_f64(G64, K, D, D, M); /* counted apart below */
        }
        if (flags & MTGRAD_NEEDS_LOSSES_AFTER) (void)mtgrad_aggregator_update(a, AFTER, K);
    }
    long gram_allocs = flags & MTGRAD_NEEDS_JACOBIAN ? 0 : 2;
    long b0 = mtgradi_alloc_count();
    if (!(flags & MTGRAD_NEEDS_JACOBIAN)) (void)mtgrad_weights_from_gram(a, M, K, L, wbuf);
    CHECK(b0 - a0 - gram_allocs == 0 && mtgradi_alloc_count() == b0,
          "%s: the aggregation calls allocate (%ld, %ld)", method, b0 - a0 - gram_allocs,
          mtgradi_alloc_count() - b0);
    mtgrad_aggregator_free(a);
}

static void aggregator_paths(void)
{
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        const mtgrad_method *m = mtgrad_method_at(i);
        agg_ctx *c = calloc(1, sizeof *c);
        c->method = mtgrad_method_name(m);
        c->params = params_for(c->method);
        char name[96];
        snprintf(name, sizeof name, "aggregator_new %s", c->method);
        path pn = {name, NULL, agg_new_call, agg_new_done};
        sweep(&pn, c);

        for (size_t j = 0; j < mtgrad_method_param_count(m); j++) {
            const mtgrad_param_desc *d = mtgrad_method_param_at(m, j);
            if (d->type != MTGRAD_PARAM_REALS) continue;
            c->pname = d->name;
            c->pvalue = strcmp(d->name, "adam_betas") == 0 ? "0.85:0.995" : "0.5:0.25:1";
            snprintf(name, sizeof name, "set_param %s %s", c->method, d->name);
            path ps = {name, agg_prepare, set_param_call, set_param_done};
            sweep(&ps, c);
        }
        if (mtgrad_method_flags(m) & MTGRAD_NEEDS_RANDOM) {
            snprintf(name, sizeof name, "set_draws %s", c->method);
            path pd = {name, agg_prepare, set_draws_call, usable_done};
            sweep(&pd, c);
        }
        snprintf(name, sizeof name, "aggregator_load %s", c->method);
        path pl = {name, load_prepare, load_call, usable_done};
        sweep(&pl, c);
        hot_path(c->method, c->params);
        free(c);
    }
}

/* ---------------------------------------------------------------- public kernels */

static mtgrad_status simplex_call(void *v)
{
    (void)v;
    double y[K] = {0.3, -0.2, 1.4}, out[K];
    return mtgrad_simplex_project(y, K, out);
}

static mtgrad_status gram32_call(void *v)
{
    (void)v;
    double M[K * K];
    return mtgrad_gram_f32(G32, K, D, D, M);
}

static mtgrad_status gram64_call(void *v)
{
    (void)v;
    double M[K * K];
    return mtgrad_gram_f64(G64, K, D, D, M);
}

static mtgrad_status combine_call(void *v)
{
    (void)v;
    double w[K] = {0.2, 0.3, 0.5}, out[D];
    return mtgrad_combine_f64(G64, K, D, D, w, out);
}

static void nothing_done(void *v, mtgrad_status s)
{
    (void)v;
    (void)s;
}

static void kernel_paths(void)
{
    path ps[] = {{"simplex_project", NULL, simplex_call, nothing_done},
                 {"gram_f32", NULL, gram32_call, nothing_done},
                 {"gram_f64", NULL, gram64_call, nothing_done},
                 {"combine_f64", NULL, combine_call, nothing_done}};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) sweep(&ps[i], NULL);
}

/* ---------------------------------------------------------------- the injection itself */

static void injection(void)
{
    long a0 = mtgradi_alloc_count();
    mtgradi_alloc_fail_after(1);
    void *p = mtgradi_malloc(8), *q = mtgradi_calloc(2, 8), *r = mtgradi_malloc(8);
    CHECK(p && !q && r, "fail_after(1): the second allocation fails, once");
    mtgradi_alloc_fail_after(0);
    void *p2 = mtgradi_realloc(p, 64);
    CHECK(p2 == NULL, "fail_after(0): the next realloc fails and keeps the block");
    free(p);
    free(r);
    CHECK(mtgradi_alloc_count() - a0 == 4, "every attempt counts: %ld",
          mtgradi_alloc_count() - a0);
}

int main(void)
{
    for (int i = 0; i < K * D; i++) {
        G64[i] = (double)((i * 7919) % 13) / 6.0 - 1.0 + (i % D == i / D ? 1.0 : 0.0);
        G32[i] = (float)G64[i];
    }
    injection();
    kernel_paths();
    aggregator_paths();
    printf("core: %ld allocation sites swept in all\n", total_swept);
    CHECK(total_swept > 0, "something was swept");
    return harness_report();
}
