/*
 * fuzz_params.c — libFuzzer target for the "name=value,..." parameter parser of the aggregators
 * (src/core/params.c through mtgrad_aggregator_new and mtgrad_aggregator_set_param).
 * Input: byte 0 picks the method, byte 1 the number of tasks k (1..6); the rest up to the first
 * newline is the params string of aggregator_new, and the rest after it is "name=value" for one
 * set_param call. Invariants checked:
 *   - every value get_param prints is accepted back by set_param and prints the same
 *     (the canonical text of a value reads back to the same value);
 *   - a set_param that fails leaves every parameter as it was (the documented contract);
 *   - one aggregation on a small fixed G with the accepted parameters gives a status the API
 *     documents and, when it succeeds, a finite direction.
 */
#include "fuzz_common.h"
#include "mtgrad.h"

#include <math.h>

#define MAXP 64
#define VLEN 512

/* All parameter values as text; 0 if there are too many to snapshot. */
static int snapshot(const mtgrad_aggregator *a, char vals[][VLEN], size_t *n)
{
    const mtgrad_method *m = mtgrad_aggregator_method(a);
    *n = mtgrad_method_param_count(m);
    if (*n > MAXP) return 0;
    for (size_t i = 0; i < *n; i++) {
        const char *name = mtgrad_method_param_at(m, i)->name;
        int w = mtgrad_aggregator_get_param(a, name, vals[i], VLEN);
        FUZZ_ASSERT(w >= 0);
        if (w >= VLEN) vals[i][0] = '\0'; /* a long list: compared as "" on both sides */
    }
    return 1;
}

static void check_round_trip(mtgrad_aggregator *a)
{
    const mtgrad_method *m = mtgrad_aggregator_method(a);
    size_t n = mtgrad_method_param_count(m);
    for (size_t i = 0; i < n; i++) {
        const char *name = mtgrad_method_param_at(m, i)->name;
        char v1[VLEN], v2[VLEN];
        int w = mtgrad_aggregator_get_param(a, name, v1, sizeof v1);
        if (w < 0 || w >= (int)sizeof v1) continue;
        mtgrad_status s = mtgrad_aggregator_set_param(a, name, v1);
        if (s != MTGRAD_OK)
            fprintf(stderr, "set_param(%s, '%s'): %s\n", name, v1, mtgrad_aggregator_error(a));
        FUZZ_ASSERT(s == MTGRAD_OK);
        FUZZ_ASSERT(mtgrad_aggregator_get_param(a, name, v2, sizeof v2) == w);
        FUZZ_ASSERT(strcmp(v1, v2) == 0);
    }
}

static void aggregate_once(mtgrad_aggregator *a, int64_t k)
{
    enum { D = 5 };
    double G[6 * D], losses[6], dir[D], w[6];
    for (int64_t i = 0; i < k; i++) {
        losses[i] = 0.5 + 0.25 * (double)i;
        for (int j = 0; j < D; j++) G[i * D + j] = sin(1.0 + 3.0 * (double)i + 0.7 * j);
    }
    unsigned flags = mtgrad_method_flags(mtgrad_aggregator_method(a));
    mtgrad_status s = mtgrad_aggregate_f64(a, G, k, D, D, losses, dir,
                                           (flags & MTGRAD_HAS_WEIGHTS) ? w : NULL);
    FUZZ_ASSERT(s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS ||
                s == MTGRAD_E_NONFINITE || s == MTGRAD_E_UNSUPPORTED || s == MTGRAD_E_INVAL);
    if (s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS)
        for (int j = 0; j < D; j++) FUZZ_ASSERT(isfinite(dir[j]));
    if (flags & MTGRAD_NEEDS_LOSSES_AFTER) (void)mtgrad_aggregator_update(a, losses, k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const mtgrad_method *m = mtgrad_method_at(data[0] % mtgrad_method_count());
    int64_t k = 1 + data[1] % 6;
    char *text = fuzz_strdup(data + 2, size - 2);
    if (!text) return 0;
    char *nl = strchr(text, '\n');
    char *setp = NULL;
    if (nl) {
        *nl = '\0';
        setp = nl + 1;
    }
    mtgrad_aggregator *a = NULL;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&a, mtgrad_method_name(m), k, text, err, sizeof err);
    if (s != MTGRAD_OK) {
        FUZZ_ASSERT(a == NULL && memchr(err, '\0', sizeof err) != NULL);
        free(text);
        return 0;
    }
    check_round_trip(a);
    if (setp) {
        static char before[MAXP][VLEN], after[MAXP][VLEN];
        size_t nb = 0, na = 0;
        int snap = snapshot(a, before, &nb);
        char *eq = strchr(setp, '=');
        const char *name = setp, *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        s = mtgrad_aggregator_set_param(a, name, value);
        if (s != MTGRAD_OK && snap) {
            FUZZ_ASSERT(snapshot(a, after, &na) && na == nb);
            for (size_t i = 0; i < nb; i++) FUZZ_ASSERT(strcmp(before[i], after[i]) == 0);
        }
        if (s == MTGRAD_OK) check_round_trip(a);
    }
    aggregate_once(a, k);
    mtgrad_aggregator_free(a);
    free(text);
    return 0;
}
