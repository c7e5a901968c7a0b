/*
 * fuzz_step_state.c — libFuzzer target for the MTL step's state loader (mtgrad_mtl_step_load,
 * src/nn/mtl_step_state.c). Input: byte 0 picks the step (fuzz_step_config.h: method, options,
 * optimizer, k = 2 or 3), the rest is the state, whose CRC slot (last 8 bytes) is recomputed
 * first so that the fields behind it get fuzzed (the nested aggregator states keep their own
 * CRCs: seeds carry valid ones, and a mutated blob mostly tests its refusal).
 * Invariants:
 *   - a failed load is E_STATE and leaves the step unchanged (same save bytes);
 *   - a successful one saves back to the bytes loaded, up to the one normalisation of the
 *     format: a nested aggregator state's name field past its NUL, which the aggregator's load
 *     ignores and its save zeroes (so that blob's CRC and the outer CRC change with it);
 *   - the save loads into a fresh step of the same configuration;
 *   - the loaded step runs two steps on fixed batches with OK or a clean error with a message,
 *     no UB, no leak: E_NONFINITE (a state may hold finite weights whose products overflow) or
 *     E_STATE (MARIGOLD's reuse_next: a step state with a pending feedback next to the fresh
 *     aggregator here, which waits for none; a checkpoint saves the two together).
 */
#include "fuzz_common.h"
#include "fuzz_step_config.h"

#define AGG_NAME_END 48 /* an aggregator state: magic, version, then a 32-byte name field */

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static unsigned char *save_all(const mtgrad_mtl_step *s, size_t *len)
{
    *len = 0;
    if (mtgrad_mtl_step_save(s, NULL, len) != MTGRAD_OK) return NULL;
    unsigned char *b = malloc(*len);
    if (b && mtgrad_mtl_step_save(s, b, len) != MTGRAD_OK) {
        free(b);
        return NULL;
    }
    return b;
}

/* st as the save writes it, given that it loaded: each nested aggregator state's name field
 * zeroed past its NUL and its CRC redone, then the outer CRC. */
static void normalise(unsigned char *st, size_t len, int64_t k)
{
    size_t off = 56 + 8 * (2 * (size_t)k + 2);
    uint64_t count = get_u64(st + 48);
    for (uint64_t c = 0; c < count; c++) {
        size_t l = (size_t)get_u64(st + off + 8);
        unsigned char *a = st + off + 16;
        FUZZ_ASSERT(l >= AGG_NAME_END + 8 && off + 16 + l <= len - 8);
        unsigned char *nul = memchr(a + 16, 0, AGG_NAME_END - 16);
        if (nul) memset(nul, 0, (size_t)(a + AGG_NAME_END - nul));
        fuzz_fix_crc(a, l, 8);
        off += 16 + l;
    }
    FUZZ_ASSERT(off == len - 8);
    fuzz_fix_crc(st, len, 8);
}

static void run_twice(mtgrad_mtl_step *s)
{
    FUZZ_ASSERT(mtgrad_mtl_step_begin_epoch(s, 0) == MTGRAD_OK);
    for (int t = 0; t < 2; t++) {
        mtgrad_status r = step_once(s);
        if (r != MTGRAD_OK && r != MTGRAD_E_NONFINITE && r != MTGRAD_E_STATE)
            fprintf(stderr, "step %d: %s: %s\n", t, mtgrad_status_str(r), mtgrad_mtl_step_error(s));
        FUZZ_ASSERT(r == MTGRAD_OK || r == MTGRAD_E_NONFINITE || r == MTGRAD_E_STATE);
        if (r != MTGRAD_OK) {
            FUZZ_ASSERT(mtgrad_mtl_step_error(s)[0] != '\0');
            break;
        }
        size_t l = 0; /* and the state after a step still saves */
        FUZZ_ASSERT(mtgrad_mtl_step_save(s, NULL, &l) == MTGRAD_OK && l > 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static int ready;
    if (!ready) step_batches(), ready = 1;
    int64_t k;
    const step_config *c = step_config_of(data[0], &k);
    size_t len = size - 1;
    unsigned char *st = malloc(len ? len : 1);
    if (!st) return 0;
    if (len) memcpy(st, data + 1, len);
    fuzz_fix_crc(st, len, 8);

    mtgrad_model *m = step_model(k);
    FUZZ_ASSERT(m);
    mtgrad_mtl_step *s = step_of(m, c);
    FUZZ_ASSERT(s);
    size_t l0, l1;
    unsigned char *before = save_all(s, &l0);
    mtgrad_status r = mtgrad_mtl_step_load(s, st, len);
    FUZZ_ASSERT(r == MTGRAD_OK || r == MTGRAD_E_STATE);
    unsigned char *after = save_all(s, &l1);
    FUZZ_ASSERT(before && after);
    if (r != MTGRAD_OK) {
        FUZZ_ASSERT(l0 == l1 && memcmp(before, after, l0) == 0);
    } else {
        normalise(st, len, k);
        FUZZ_ASSERT(l1 == len && memcmp(after, st, len) == 0);
        mtgrad_model *m2 = step_model(k);
        mtgrad_mtl_step *s2 = m2 ? step_of(m2, c) : NULL;
        FUZZ_ASSERT(s2 && mtgrad_mtl_step_load(s2, after, l1) == MTGRAD_OK);
        mtgrad_mtl_step_free(s2);
        mtgrad_model_free(m2);
        run_twice(s);
    }
    free(before);
    free(after);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
    free(st);
    return 0;
}
