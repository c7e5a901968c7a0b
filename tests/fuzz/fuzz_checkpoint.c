/*
 * fuzz_checkpoint.c — libFuzzer target for the trainer's checkpoint parser (mtgradi_ckpt_parse,
 * the part of mtgradi_ckpt_read in src/eval/checkpoint.c after the file is read). The input is
 * the file's bytes; its trailing CRC32 is recomputed first (unless the input is too short to
 * have one) so that the length fields behind it get fuzzed, not just the CRC check.
 * Invariants on success: the header fields are in the ranges the trainer relies on and every
 * buffer has the length the header announces (touched end to end, so ASan checks the sizes);
 * on failure: a message, and nothing leaked once freed.
 */
#include "eval_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *p = malloc(size ? size : 1);
    if (!p) return 0;
    if (size) memcpy(p, data, size);
    fuzz_fix_crc(p, size, 4);
    mtgradi_ckpt c;
    memset(&c, 0, sizeof c);
    char err[256] = "";
    mtgrad_status s = mtgradi_ckpt_parse(p, size, &c, "fuzz", err, sizeof err);
    FUZZ_ASSERT(s == MTGRAD_OK || s == MTGRAD_E_STATE || s == MTGRAD_E_NOMEM);
    if (s == MTGRAD_OK) {
        FUZZ_ASSERT(c.config && c.params && c.optim && c.agg && c.curves);
        FUZZ_ASSERT(c.epoch >= 0 && c.k >= 1 && c.n_params >= 1 && c.curve_cols >= 0 &&
                    c.steps >= 0 && c.solver_warnings >= 0);
        FUZZ_ASSERT(mtgradi_ckpt_hash(c.config) == mtgradi_ckpt_hash(c.config));
        volatile unsigned char sink = 0;
        for (size_t i = 0; i < c.optim_len; i++) sink ^= c.optim[i];
        for (size_t i = 0; i < c.agg_len; i++) sink ^= c.agg[i];
        const unsigned char *pp = (const unsigned char *)c.params;
        for (size_t i = 0; i < (size_t)c.n_params * sizeof(float); i++) sink ^= pp[i];
        const unsigned char *cc = (const unsigned char *)c.curves;
        for (size_t i = 0; i < (size_t)(c.epoch * c.curve_cols) * sizeof(double); i++) sink ^= cc[i];
        (void)sink;
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    mtgradi_ckpt_free(&c);
    free(p);
    return 0;
}
