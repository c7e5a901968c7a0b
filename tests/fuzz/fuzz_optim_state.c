/*
 * fuzz_optim_state.c — libFuzzer target for the optimizer state loader (mtgrad_optimizer_load,
 * src/nn/optim.c). Input: byte 0 picks the optimizer configuration (kind, momentum, weight
 * decay, lr schedule), byte 1 the number of parameters n (1..16) and, for the AdaTask kinds,
 * the tasks k (1..3; the first n/2 parameters are shared), the rest is the state, whose
 * CRC slot (last 8 bytes) is recomputed first so that the fields behind it get fuzzed.
 * Invariants: a failed load leaves the optimizer unchanged (same save bytes); a successful one
 * saves back to exactly the bytes loaded (every field is checked or copied bit for bit), and
 * the loaded optimizer can set an epoch and take steps without UB, hangs or non-finite lr.
 */
#include "fuzz_common.h"
#include "mtgrad_nn.h"

#include <math.h>

static mtgrad_optim_config config_of(uint8_t b)
{
    mtgrad_optim_config c = mtgrad_optim_config_default((mtgrad_optim_kind)(b % 8));
    if (c.kind == MTGRAD_OPTIM_SGD && (b & 4)) c.momentum = 0.9;
    if (b & 8) c.weight_decay = 1e-2;
    switch ((b >> 4) % 3) {
    case 1:
        c.step_size = 1 + (b >> 6);
        c.gamma = 0.5;
        break;
    case 2:
        c.n_milestones = 2;
        c.milestones[0] = 3;
        c.milestones[1] = 7;
        c.gamma = 0.1;
        break;
    default:
        break;
    }
    return c;
}

static unsigned char *save_all(const mtgrad_optimizer *o, size_t *len)
{
    *len = 0;
    if (mtgrad_optimizer_save(o, NULL, len) != MTGRAD_OK) return NULL;
    unsigned char *b = malloc(*len);
    if (b && mtgrad_optimizer_save(o, b, len) != MTGRAD_OK) {
        free(b);
        return NULL;
    }
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    mtgrad_optim_config c = config_of(data[0]);
    int64_t n = 1 + data[1] % 16, k = 1 + (data[1] >> 4) % 3, d = n / 2;
    size_t len = size - 2;
    unsigned char *st = malloc(len ? len : 1);
    if (!st) return 0;
    if (len) memcpy(st, data + 2, len);
    fuzz_fix_crc(st, len, 8);

    mtgrad_optimizer *o = NULL;
    FUZZ_ASSERT(mtgrad_optimizer_new_tasks(&o, &c, n, k, d, NULL, 0) == MTGRAD_OK);
    int per_task = mtgrad_optimizer_per_task(o);
    size_t l0, l1;
    unsigned char *before = save_all(o, &l0);
    mtgrad_status s = mtgrad_optimizer_load(o, st, len);
    FUZZ_ASSERT(s == MTGRAD_OK || s == MTGRAD_E_STATE);
    unsigned char *after = save_all(o, &l1);
    FUZZ_ASSERT(before && after);
    if (s != MTGRAD_OK) {
        FUZZ_ASSERT(l0 == l1 && memcmp(before, after, l0) == 0);
    } else {
        FUZZ_ASSERT(l1 == len && memcmp(after, st, len) == 0);
        FUZZ_ASSERT(isfinite(mtgrad_optimizer_lr(o)) && mtgrad_optimizer_lr(o) >= 0);
        float p[16], g[16], G[3 * 16];
        for (int64_t i = 0; i < n; i++) {
            p[i] = 0.25f * (float)i - 1.0f;
            g[i] = 0.5f - 0.125f * (float)i;
        }
        for (int64_t i = 0; i < 3 * 16; i++) G[i] = 0.0625f * (float)(i % 7) - 0.2f;
        for (int rep = 0; rep < 2; rep++) {
            mtgrad_status t = per_task ? mtgrad_optimizer_step_tasks(o, p, g, G, 16)
                                       : mtgrad_optimizer_step(o, p, g);
            FUZZ_ASSERT(t == MTGRAD_OK || t == MTGRAD_E_NONFINITE);
            if (t != MTGRAD_OK) break;
        }
        FUZZ_ASSERT(mtgrad_optimizer_steps(o) >= 0);
        /* the trainer moves to the next epoch after the one loaded */
        int64_t e = (int64_t)(st[40] | (uint64_t)st[41] << 8 | (uint64_t)st[42] << 16 |
                              (uint64_t)st[43] << 24 | (uint64_t)st[44] << 32 |
                              (uint64_t)st[45] << 40 | (uint64_t)st[46] << 48 |
                              (uint64_t)(st[47] & 0x7f) << 56);
        mtgrad_optimizer_set_epoch(o, e < INT64_MAX ? e + 1 : e);
        FUZZ_ASSERT(isfinite(mtgrad_optimizer_lr(o)) && mtgrad_optimizer_lr(o) >= 0);
    }
    free(before);
    free(after);
    mtgrad_optimizer_free(o);
    free(st);
    return 0;
}
