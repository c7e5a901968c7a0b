/*
 * fuzz_bench_params.c — libFuzzer target for the benchmarks' "name=value,..." parser
 * (mtgradi_bparams_parse in src/data/bench.c) and mtgrad_bench_load's handling of its result.
 * Input: byte 0 picks the benchmark, the rest is the params string. The parse runs against that
 * benchmark's table; every value it returns must lie in the table's range (an integer for INT, a
 * valid index for CHOICE). Loading a real benchmark reads Fashion-MNIST or draws large data
 * sets, far too slow per input, so mtgrad_bench_load itself runs only where it is cheap: when the
 * parse fails (it must fail the same way, before loading anything) and for mmoe with tiny sizes
 * (its loader's own cross-checks, k vs d vs p, then run on the parsed values).
 */
#include "data_internal.h"
#include "fuzz_common.h"

#include <math.h>

static const mtgradi_bench_type *const types[] = {&mtgradi_bench_mmoe, &mtgradi_bench_multifashion,
                                                  &mtgradi_bench_fashion_k};

static double value_of(const mtgradi_bench_type *t, const double *v, const char *name)
{
    for (size_t i = 0; i < t->n_params; i++)
        if (strcmp(t->params[i].name, name) == 0) return v[i];
    return -1;
}

static int mmoe_is_cheap(const mtgradi_bench_type *t, const double *v)
{
    if (t != &mtgradi_bench_mmoe) return 0;
    double k = value_of(t, v, "k"), d = value_of(t, v, "d"), m = value_of(t, v, "m");
    double ntr = value_of(t, v, "ntrain"), nte = value_of(t, v, "ntest");
    return d * (k + 1) * (k + 1) <= 20000 && (ntr + nte) * d * (k * (m + 1) + 1) <= 200000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const mtgradi_bench_type *t = types[data[0] % (sizeof types / sizeof types[0])];
    char *params = fuzz_strdup(data + 1, size - 1);
    if (!params) return 0;
    double v[MTGRADI_BENCH_MAX_PARAMS];
    char err[256] = "", err2[256] = "";
    mtgrad_status s = mtgradi_bparams_parse(t->name, t->params, t->n_params, params, v, err, sizeof err);
    FUZZ_ASSERT(s == MTGRAD_OK || s == MTGRAD_E_INVAL);
    if (s == MTGRAD_OK) {
        for (size_t i = 0; i < t->n_params; i++) {
            const mtgradi_bparam *p = &t->params[i];
            FUZZ_ASSERT(isfinite(v[i]));
            if (p->type == MTGRADI_BP_CHOICE) {
                size_t n_choices = 1;
                for (const char *c = p->choices; *c; c++) n_choices += *c == '|';
                FUZZ_ASSERT(v[i] >= 0 && v[i] < (double)n_choices && v[i] == floor(v[i]));
            } else {
                FUZZ_ASSERT(v[i] >= p->lo && v[i] <= p->hi);
                if (p->type == MTGRADI_BP_INT) FUZZ_ASSERT(v[i] == floor(v[i]));
            }
        }
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    if (s != MTGRAD_OK || mmoe_is_cheap(t, v)) {
        mtgrad_bench *b = NULL;
        mtgrad_status s2 = mtgrad_bench_load(&b, t->name, params, 7, err2, sizeof err2);
        if (s != MTGRAD_OK) {
            FUZZ_ASSERT(s2 == s && b == NULL && strcmp(err, err2) == 0);
        } else if (s2 == MTGRAD_OK) {
            const mtgrad_dataset *tr = mtgrad_bench_train(b), *te = mtgrad_bench_test(b);
            FUZZ_ASSERT(tr->n == (int64_t)value_of(t, v, "ntrain"));
            FUZZ_ASSERT(te->n == (int64_t)value_of(t, v, "ntest"));
            FUZZ_ASSERT(tr->k == (int64_t)value_of(t, v, "k"));
            for (int64_t i = 0; i < tr->n * tr->k; i++) FUZZ_ASSERT(isfinite(tr->y[i]));
        } else {
            FUZZ_ASSERT(s2 == MTGRAD_E_INVAL && b == NULL && err2[0] != '\0');
        }
        mtgrad_bench_free(b);
    }
    free(params);
    return 0;
}
