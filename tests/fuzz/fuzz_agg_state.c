/*
 * fuzz_agg_state.c — libFuzzer target for the aggregator state loader (mtgrad_aggregator_load,
 * src/core/aggregator.c). Input: byte 0 picks the method, byte 1 the number of tasks k (1..4),
 * the rest is the state. Its CRC slot (the last 8 bytes) is recomputed first so that the
 * fields behind the CRC get fuzzed too (the CRC-mismatch branch is a unit test's job).
 * Invariants: a load that fails leaves the aggregator unchanged (same save bytes before and
 * after); a load that succeeds gives an aggregator whose save loads again and which then
 * aggregates (twice: the step counter and the state loaded are used) without UB.
 */
#include "fuzz_common.h"
#include "mtgrad.h"

#include <math.h>

static unsigned char *save_all(const mtgrad_aggregator *a, size_t *len)
{
    *len = 0;
    if (mtgrad_aggregator_save(a, NULL, len) != MTGRAD_OK) return NULL;
    unsigned char *b = malloc(*len);
    if (b && mtgrad_aggregator_save(a, b, len) != MTGRAD_OK) {
        free(b);
        return NULL;
    }
    return b;
}

static void aggregate_twice(mtgrad_aggregator *a, int64_t k)
{
    enum { D = 4 };
    double G[4 * D], losses[4], dir[D], w[4];
    for (int64_t i = 0; i < k; i++) {
        losses[i] = 1.0 + 0.5 * (double)i;
        for (int j = 0; j < D; j++) G[i * D + j] = cos(0.3 + 2.0 * (double)i + 1.1 * j);
    }
    unsigned flags = mtgrad_method_flags(mtgrad_aggregator_method(a));
    for (int rep = 0; rep < 2; rep++) {
        mtgrad_status s = mtgrad_aggregate_f64(a, G, k, D, D, losses, dir,
                                               (flags & MTGRAD_HAS_WEIGHTS) ? w : NULL);
        FUZZ_ASSERT(s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS ||
                    s == MTGRAD_E_NONFINITE);
        if (s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS)
            for (int j = 0; j < D; j++) FUZZ_ASSERT(isfinite(dir[j]));
        if (flags & MTGRAD_NEEDS_LOSSES_AFTER) {
            for (int64_t i = 0; i < k; i++) losses[i] *= 0.9;
            (void)mtgrad_aggregator_update(a, losses, k);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const mtgrad_method *m = mtgrad_method_at(data[0] % mtgrad_method_count());
    int64_t k = 1 + data[1] % 4;
    size_t n = size - 2;
    unsigned char *st = malloc(n ? n : 1);
    if (!st) return 0;
    if (n) memcpy(st, data + 2, n);
    fuzz_fix_crc(st, n, 8);

    mtgrad_aggregator *a = NULL;
    if (mtgrad_aggregator_new(&a, mtgrad_method_name(m), k, "seed=3", NULL, 0) != MTGRAD_OK) {
        free(st);
        return 0;
    }
    size_t l0, l1;
    unsigned char *before = save_all(a, &l0);
    mtgrad_status s = mtgrad_aggregator_load(a, st, n);
    FUZZ_ASSERT(s == MTGRAD_OK || s == MTGRAD_E_STATE);
    unsigned char *after = save_all(a, &l1);
    FUZZ_ASSERT(before && after && l0 == l1);
    if (s != MTGRAD_OK) {
        FUZZ_ASSERT(memcmp(before, after, l0) == 0);
        FUZZ_ASSERT(mtgrad_aggregator_error(a)[0] != '\0');
    } else {
        /* the same bytes, except the name field past its NUL (zeroed by save) and so the CRC */
        FUZZ_ASSERT(l1 == n && memcmp(after + 48, st + 48, n - 56) == 0);
        mtgrad_aggregator *b = NULL;
        FUZZ_ASSERT(mtgrad_aggregator_new(&b, mtgrad_method_name(m), k, NULL, NULL, 0) == MTGRAD_OK);
        FUZZ_ASSERT(mtgrad_aggregator_load(b, after, l1) == MTGRAD_OK);
        mtgrad_aggregator_free(b);
        aggregate_twice(a, k);
    }
    free(before);
    free(after);
    mtgrad_aggregator_free(a);
    free(st);
    return 0;
}
