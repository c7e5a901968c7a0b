/*
 * bench.c — the benchmark registry (mtgrad_bench_*), the "name=value,..." parser the benchmarks
 * share, and the parts of a loaded benchmark that do not depend on which one it is.
 * Each benchmark lives in its own file (bench_mmoe.c, bench_multifashion.c, bench_fashion_k.c)
 * as a const mtgradi_bench_type: parameters described once in a table, a help text, a loader.
 */
#include "data_internal.h"
#include "internal.h" /* mtgradi_malloc & co. */

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mtgradi_bench_type *const registry[] = {
    &mtgradi_bench_mmoe,
    &mtgradi_bench_multifashion,
    &mtgradi_bench_fashion_k,
};
#define N_BENCH (sizeof registry / sizeof registry[0])

size_t mtgrad_bench_count(void) { return N_BENCH; }

const char *mtgrad_bench_name(size_t i) { return i < N_BENCH ? registry[i]->name : NULL; }

const char *mtgrad_bench_summary(size_t i) { return i < N_BENCH ? registry[i]->summary : NULL; }

const char *mtgrad_bench_help(size_t i) { return i < N_BENCH ? registry[i]->help : NULL; }

/* ------------------------------------------------------------------ parameters */

static int choice_index(const char *choices, const char *v, size_t len)
{
    int idx = 0;
    for (const char *p = choices; p && *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, v, len) == 0) return idx;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

/* Parses one value (text of length len) for parameter p into *out. */
static mtgrad_status parse_value(const char *bench, const mtgradi_bparam *p, const char *text,
                                 size_t len, double *out, char *err, size_t errlen)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) {
        mtgradi_msg(err, errlen, "%s: parameter %s: missing or too long value", bench, p->name);
        return MTGRAD_E_INVAL;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (p->type == MTGRADI_BP_CHOICE) {
        int idx = choice_index(p->choices, buf, len);
        if (idx < 0) {
            mtgradi_msg(err, errlen, "%s: parameter %s: '%s' is not one of %s", bench, p->name, buf,
                    p->choices);
            return MTGRAD_E_INVAL;
        }
        *out = idx;
        return MTGRAD_OK;
    }
    char *end;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0' || !isfinite(v)) {
        mtgradi_msg(err, errlen, "%s: parameter %s: '%s' is not a number", bench, p->name, buf);
        return MTGRAD_E_INVAL;
    }
    if (p->type == MTGRADI_BP_INT && v != floor(v)) {
        mtgradi_msg(err, errlen, "%s: parameter %s: '%s' is not an integer", bench, p->name, buf);
        return MTGRAD_E_INVAL;
    }
    if (v < p->lo || v > p->hi) {
        mtgradi_msg(err, errlen, "%s: parameter %s = %s is outside [%g, %g]", bench, p->name, buf,
                p->lo, p->hi);
        return MTGRAD_E_INVAL;
    }
    *out = v;
    return MTGRAD_OK;
}

mtgrad_status mtgradi_bparams_parse(const char *bench, const mtgradi_bparam *table, size_t n,
                                    const char *params, double *v, char *err, size_t errlen)
{
    int given[MTGRADI_BENCH_MAX_PARAMS] = {0};
    if (n > MTGRADI_BENCH_MAX_PARAMS) return MTGRAD_E_INVAL;
    for (size_t i = 0; i < n; i++) v[i] = table[i].def;
    const char *p = params ? params : "";
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *item_end = strchr(p, ',');
        if (!item_end) item_end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (!eq) {
            mtgradi_msg(err, errlen, "%s: '%.*s' is not name=value", bench, (int)(item_end - p), p);
            return MTGRAD_E_INVAL;
        }
        size_t nlen = (size_t)(eq - p);
        while (nlen && p[nlen - 1] == ' ') nlen--;
        size_t i = 0;
        while (i < n && !(strlen(table[i].name) == nlen && strncmp(table[i].name, p, nlen) == 0))
            i++;
        if (i == n) {
            mtgradi_msg(err, errlen, "%s: unknown parameter '%.*s' (see its help)", bench, (int)nlen,
                    p);
            return MTGRAD_E_INVAL;
        }
        if (given[i]) {
            mtgradi_msg(err, errlen, "%s: parameter %s given twice", bench, table[i].name);
            return MTGRAD_E_INVAL;
        }
        given[i] = 1;
        const char *val = eq + 1;
        while (val < item_end && *val == ' ') val++;
        size_t vlen = (size_t)(item_end - val);
        while (vlen && val[vlen - 1] == ' ') vlen--;
        mtgrad_status s = parse_value(bench, &table[i], val, vlen, &v[i], err, errlen);
        if (s != MTGRAD_OK) return s;
        p = item_end;
    }
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ the bench object */

uint64_t mtgradi_data_stream_seed(uint64_t seed, uint64_t stream)
{
    /* splitmix64 of (seed, stream): distinct streams for distinct purposes */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

mtgrad_status mtgradi_dataset_alloc(mtgrad_dataset *d, int64_t n, int64_t k, int64_t c,
                                    int64_t h, int64_t w)
{
    memset(d, 0, sizeof *d);
    size_t feat = (size_t)(c * h * w);
    d->x = mtgradi_malloc((size_t)n * feat * sizeof(float));
    d->y = mtgradi_malloc((size_t)n * (size_t)k * sizeof(float));
    if (!d->x || !d->y) {
        free(d->x);
        free(d->y);
        d->x = d->y = NULL;
        return MTGRAD_E_NOMEM;
    }
    d->n = n;
    d->k = k;
    d->in_c = c;
    d->in_h = h;
    d->in_w = w;
    return MTGRAD_OK;
}

void mtgradi_bench_set_model(mtgrad_bench *b, int64_t in_c, int64_t in_h, int64_t in_w,
                             const char *trunk, const char *head, mtgrad_loss_kind loss)
{
    snprintf(b->trunk, sizeof b->trunk, "%s", trunk);
    snprintf(b->heads, sizeof b->heads, "%s", head);
    memset(&b->model, 0, sizeof b->model);
    b->model.in_c = in_c;
    b->model.in_h = in_h;
    b->model.in_w = in_w;
    b->model.trunk = b->trunk;
    b->model.k = b->k;
    for (int64_t i = 0; i < b->k; i++) {
        b->model.heads[i] = b->heads;
        b->model.losses[i] = loss;
    }
    b->model.max_batch = b->recipe.batch;
}

mtgrad_status mtgrad_bench_load(mtgrad_bench **out, const char *name, const char *params,
                                uint64_t seed, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out || !name) {
        mtgradi_msg(err, errlen, "bench: out and name must not be NULL");
        return MTGRAD_E_INVAL;
    }
    *out = NULL;
    const mtgradi_bench_type *t = NULL;
    for (size_t i = 0; i < N_BENCH; i++)
        if (strcmp(registry[i]->name, name) == 0) t = registry[i];
    if (!t) {
        mtgradi_msg(err, errlen, "unknown benchmark '%s' (known: mmoe, multifashion, fashion-k)",
                name);
        return MTGRAD_E_INVAL;
    }
    double v[MTGRADI_BENCH_MAX_PARAMS];
    mtgrad_status s = mtgradi_bparams_parse(t->name, t->params, t->n_params, params, v, err,
                                            errlen);
    if (s != MTGRAD_OK) return s;
    mtgrad_bench *b = mtgradi_calloc(1, sizeof *b);
    if (!b) {
        mtgradi_msg(err, errlen, "%s: out of memory", t->name);
        return MTGRAD_E_NOMEM;
    }
    b->name = t->name;
    s = t->load(b, v, seed, err, errlen);
    if (s != MTGRAD_OK) {
        mtgrad_bench_free(b);
        return s;
    }
    *out = b;
    return MTGRAD_OK;
}

void mtgrad_bench_free(mtgrad_bench *b)
{
    if (!b) return;
    free(b->train.x);
    free(b->train.y);
    free(b->test.x);
    free(b->test.y);
    free(b);
}

const char *mtgrad_bench_loaded_name(const mtgrad_bench *b) { return b ? b->name : NULL; }

const mtgrad_dataset *mtgrad_bench_train(const mtgrad_bench *b) { return b ? &b->train : NULL; }

const mtgrad_dataset *mtgrad_bench_test(const mtgrad_bench *b) { return b ? &b->test : NULL; }

mtgrad_model_spec mtgrad_bench_model(const mtgrad_bench *b)
{
    mtgrad_model_spec m;
    if (b) return b->model;
    memset(&m, 0, sizeof m);
    return m;
}

mtgrad_recipe mtgrad_bench_recipe(const mtgrad_bench *b)
{
    mtgrad_recipe r;
    if (b) return b->recipe;
    memset(&r, 0, sizeof r);
    return r;
}

const char *mtgrad_bench_task_name(const mtgrad_bench *b, int64_t task)
{
    if (!b || task < 0 || task >= b->k) return NULL;
    return b->task_names[task];
}

mtgrad_metric_kind mtgrad_bench_metric(const mtgrad_bench *b, int64_t task)
{
    if (!b || task < 0 || task >= b->k) return MTGRAD_METRIC_ACCURACY;
    return b->metrics[task];
}
