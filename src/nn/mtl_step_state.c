/*
 * mtl_step_state.c — the step's own state, for checkpoints (the aggregator and the optimizer
 * save theirs): the weights nash_mtl's update_weights_every reuses, MARIGOLD's losses kept for
 * reuse_next, and the states of task sampling's per-size aggregators (their step counters and
 * warm starts: without them a resumed run would not end with the same bits).
 *
 * Same conventions as mtgrad_aggregator_save: little-endian u64 fields, doubles as their bits,
 * a CRC-32 in the last u64 slot:
 *   magic "MTGRADSS" | version | k | path | have_w | pending | n_sub |
 *   w (k) | prev_L (k) | prev_dnorm | prev_move |
 *   n_sub x (rows | len | len bytes of that aggregator's state) | crc
 * Loading checks everything (into scratch aggregators) before it changes anything, and takes
 * only the canonical form the save writes, so that a loaded state saves back to the same bytes
 * (tests/fuzz/fuzz_step_state.c): one blob for each subset size the step has, in ascending
 * order, and zero prev_L for a step that keeps none. The blobs themselves are as canonical as
 * mtgrad_aggregator_load makes them (it ignores the name field past its NUL, which its save
 * zeroes).
 */
#define _POSIX_C_SOURCE 200809L
#include "nn/mtl_step_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char step_magic[8] = {'M', 'T', 'G', 'R', 'A', 'D', 'S', 'S'};
#define STEP_STATE_VERSION 1u
#define STEP_HEADER 56 /* magic + 6 u64 */

static int64_t n_subs(const mtgrad_mtl_step *s)
{
    int64_t n = 0;
    if (s->sub)
        for (int64_t r = 1; r < s->k; r++) n += s->sub[r] != NULL;
    return n;
}

/* Bytes needed; E_IO-free: aggregator sizes come from mtgrad_aggregator_save(NULL). */
static mtgrad_status state_size(const mtgrad_mtl_step *s, size_t *need)
{
    size_t n = STEP_HEADER + 8 * (2 * (size_t)s->k + 2);
    if (s->sub)
        for (int64_t r = 1; r < s->k; r++) {
            if (!s->sub[r]) continue;
            size_t len = 0;
            mtgrad_status st = mtgrad_aggregator_save(s->sub[r], NULL, &len);
            if (st != MTGRAD_OK) return st;
            n += 16 + len;
        }
    *need = n + 8;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_save(const mtgrad_mtl_step *s, void *buf, size_t *len)
{
    if (!s || !len) return MTGRAD_E_INVAL;
    size_t need = 0;
    mtgrad_status st = state_size(s, &need);
    if (st != MTGRAD_OK) return st;
    if (!buf || *len < need) {
        *len = need;
        return buf ? MTGRAD_E_IO : MTGRAD_OK;
    }
    unsigned char *p = buf;
    memcpy(p, step_magic, 8);
    uint64_t head[6] = {STEP_STATE_VERSION, (uint64_t)s->k, (uint64_t)s->path,
                        (uint64_t)s->have_w, (uint64_t)s->pending, (uint64_t)n_subs(s)};
    for (int i = 0; i < 6; i++) mtgradi_put_u64(p + 8 + 8 * i, head[i]);
    size_t off = STEP_HEADER;
    for (int64_t i = 0; i < s->k; i++, off += 8) mtgradi_put_u64(p + off, mtgradi_f64_bits(s->w[i]));
    for (int64_t i = 0; i < s->k; i++, off += 8)
        mtgradi_put_u64(p + off, mtgradi_f64_bits(s->prev_L ? s->prev_L[i] : 0.0));
    mtgradi_put_u64(p + off, mtgradi_f64_bits(s->prev_dnorm)), off += 8;
    mtgradi_put_u64(p + off, mtgradi_f64_bits(s->prev_move)), off += 8;
    for (int64_t r = 1; s->sub && r < s->k; r++) {
        if (!s->sub[r]) continue;
        size_t l = need - off;
        st = mtgrad_aggregator_save(s->sub[r], p + off + 16, &l);
        if (st != MTGRAD_OK) return st;
        mtgradi_put_u64(p + off, (uint64_t)r);
        mtgradi_put_u64(p + off + 8, (uint64_t)l);
        off += 16 + l;
    }
    mtgradi_put_u64(p + off, mtgradi_crc32(p, off));
    *len = off + 8;
    return MTGRAD_OK;
}

/* The per-size aggregators of a state, loaded into new ones (tmp[r]); E_STATE if one does not
 * fit. off: where the blobs start; end: where the CRC starts. Sizes the step does not have
 * (fast:K has only K) and sizes out of order are refused: the save never writes them. */
static mtgrad_status load_subs(const mtgrad_mtl_step *s, const unsigned char *p, size_t off,
                               size_t end, uint64_t count, mtgrad_aggregator **tmp)
{
    if (count != (uint64_t)n_subs(s)) return MTGRAD_E_STATE;
    uint64_t last = 0;
    for (uint64_t c = 0; c < count; c++) {
        if (end - off < 16) return MTGRAD_E_STATE;
        uint64_t r = mtgradi_get_u64(p + off), l = mtgradi_get_u64(p + off + 8);
        if (r <= last || r >= (uint64_t)s->k || !s->sub[r] || l > end - off - 16)
            return MTGRAD_E_STATE;
        last = r;
        mtgrad_status st = mtgradi_step_new_sub(s, (int64_t)r, &tmp[r], NULL, 0);
        if (st != MTGRAD_OK) return st == MTGRAD_E_NOMEM ? st : MTGRAD_E_STATE;
        if (mtgrad_aggregator_load(tmp[r], p + off + 16, (size_t)l) != MTGRAD_OK)
            return MTGRAD_E_STATE;
        off += 16 + (size_t)l;
    }
    return off == end ? MTGRAD_OK : MTGRAD_E_STATE;
}

static mtgrad_status check_header(const mtgrad_mtl_step *s, const unsigned char *p, size_t len)
{
    size_t fixed = STEP_HEADER + 8 * (2 * (size_t)s->k + 2) + 8;
    if (len < fixed || memcmp(p, step_magic, 8) != 0) return MTGRAD_E_STATE;
    if (mtgradi_get_u64(p + 8) != STEP_STATE_VERSION || mtgradi_get_u64(p + 16) != (uint64_t)s->k ||
        mtgradi_get_u64(p + 24) != (uint64_t)s->path)
        return MTGRAD_E_STATE;
    if (mtgradi_get_u64(p + 32) > 1 || mtgradi_get_u64(p + 40) > 1) return MTGRAD_E_STATE;
    if (mtgradi_crc32(p, len - 8) != mtgradi_get_u64(p + len - 8)) return MTGRAD_E_STATE;
    for (size_t off = STEP_HEADER; off < fixed - 8; off += 8)
        if (!isfinite(mtgradi_bits_f64(mtgradi_get_u64(p + off)))) return MTGRAD_E_STATE;
    /* a step without prev_L saves zeros there; anything else would not save back the same */
    size_t prev = STEP_HEADER + 8 * (size_t)s->k;
    for (int64_t i = 0; !s->prev_L && i < s->k; i++)
        if (mtgradi_get_u64(p + prev + 8 * (size_t)i) != 0) return MTGRAD_E_STATE;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_mtl_step_load(mtgrad_mtl_step *s, const void *buf, size_t len)
{
    if (!s || !buf) return MTGRAD_E_INVAL;
    const unsigned char *p = buf;
    mtgrad_status st = check_header(s, p, len);
    if (st != MTGRAD_OK) return st;
    uint64_t pending = mtgradi_get_u64(p + 40);
    if (pending && !s->prev_L) return MTGRAD_E_STATE;
    mtgrad_aggregator **tmp = mtgradi_calloc((size_t)s->k + 1, sizeof *tmp);
    if (!tmp) return MTGRAD_E_NOMEM;
    size_t blobs = STEP_HEADER + 8 * (2 * (size_t)s->k + 2);
    st = load_subs(s, p, blobs, len - 8, mtgradi_get_u64(p + 48), tmp);
    if (st == MTGRAD_OK) {
        s->have_w = (int)mtgradi_get_u64(p + 32);
        s->pending = (int)pending;
        size_t off = STEP_HEADER;
        for (int64_t i = 0; i < s->k; i++, off += 8) s->w[i] = mtgradi_bits_f64(mtgradi_get_u64(p + off));
        for (int64_t i = 0; i < s->k; i++, off += 8)
            if (s->prev_L) s->prev_L[i] = mtgradi_bits_f64(mtgradi_get_u64(p + off));
        s->prev_dnorm = mtgradi_bits_f64(mtgradi_get_u64(p + off));
        s->prev_move = mtgradi_bits_f64(mtgradi_get_u64(p + off + 8));
        for (int64_t r = 1; s->sub && r < s->k; r++) {
            mtgrad_aggregator_free(s->sub[r]);
            s->sub[r] = tmp[r];
            tmp[r] = NULL;
        }
    }
    for (int64_t r = 0; r <= s->k; r++) mtgrad_aggregator_free(tmp[r]);
    free(tmp);
    return st;
}
