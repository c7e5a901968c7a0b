/*
 * fuzz_golden.c — libFuzzer target for the golden-file reader (tools/golden.c).
 * The input is a golden file. It is read twice, from memory and as a stream (fmemopen), and
 * the two readers must agree case by case (same return codes, names, sizes, error line and
 * message): the stream reader has its own read-ahead buffer, so a disagreement is a bug even
 * when neither crashes. Every case read is also walked (params, group, steps) so ASan sees
 * every array the reader hands out.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_common.h"
#include "golden.h"

static void walk_case(const golden_case *c)
{
    char group[64];
    golden_case_group(c, group, sizeof group);
    for (size_t i = 0; i < c->n_params; i++)
        FUZZ_ASSERT(golden_case_param(c, c->params[i].name) != NULL);
    volatile double sink = c->tol;
    for (size_t s = 0; s < c->n_steps; s++) {
        const golden_step *st = &c->steps[s];
        FUZZ_ASSERT(st->G != NULL && st->expect_direction != NULL);
        sink += st->G[c->k * c->d - 1] + st->expect_direction[c->d - 1];
        if (st->losses) sink += st->losses[c->k - 1];
        if (st->uniform) sink += st->uniform[c->d - 1];
        if (st->expect_weights) sink += st->expect_weights[c->k - 1];
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    golden_reader *rm = golden_reader_from_mem((const char *)data, size);
    FILE *f = size ? fmemopen((void *)(uintptr_t)data, size, "r") : NULL;
    golden_reader *rf = f ? golden_reader_from_file(f) : NULL;
    if (!rm) goto out;
    for (int guard = 0; guard < 100000; guard++) {
        golden_case *cm = NULL, *cf = NULL;
        long lm = 0, lf = 0;
        char em[GOLDEN_ERRLEN] = "", ef[GOLDEN_ERRLEN] = "";
        int rcm = golden_next(rm, &cm, &lm, em, sizeof em);
        if (rf) {
            int rcf = golden_next(rf, &cf, &lf, ef, sizeof ef);
            FUZZ_ASSERT(rcm == rcf);
            if (rcm < 0) FUZZ_ASSERT(lm == lf && strcmp(em, ef) == 0);
            if (rcm > 0)
                FUZZ_ASSERT(strcmp(cm->name, cf->name) == 0 && cm->k == cf->k && cm->d == cf->d &&
                            cm->n_steps == cf->n_steps && cm->n_params == cf->n_params);
        }
        if (rcm > 0) {
            FUZZ_ASSERT(cm->k >= 1 && cm->d >= 1 && cm->method && cm->n_steps >= 1);
            walk_case(cm);
        }
        golden_case_free(cm);
        golden_case_free(cf);
        if (rcm <= 0) break;
    }
    FUZZ_ASSERT(golden_reader_lines(rm) >= 0);
out:
    golden_reader_free(rm);
    golden_reader_free(rf);
    if (f) fclose(f);
    return 0;
}
