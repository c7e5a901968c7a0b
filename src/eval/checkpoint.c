/*
 * checkpoint.c — the trainer's checkpoint file: everything a run needs to continue to the same
 * bits (parameters, optimizer, aggregator and MTL-step states, dropout generator, counters,
 * curves so far) behind a magic, a version, the configuration's text and a CRC32. Written to a
 * temporary file, fsync'd and renamed over the old one, so a crash leaves either the old or the
 * new checkpoint, never a torn one. The layout is in eval_internal.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "eval_internal.h"
#include "internal.h" /* mtgradi_malloc & co. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_MAGIC "MTGRDCKP"
#define CKPT_VERSION MTGRADI_CKPT_VERSION
#define CKPT_ENDIAN 0x01020304u

uint64_t mtgradi_ckpt_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* ---------------------------------------------------------------- serialisation */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const void *data, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *q = mtgradi_realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u32(buf *b, uint32_t v) { put(b, &v, sizeof v); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, sizeof v); }
static void put_i64(buf *b, int64_t v) { put(b, &v, sizeof v); }

static void serialise(buf *b, const mtgradi_ckpt *c)
{
    put(b, CKPT_MAGIC, 8);
    put_u32(b, CKPT_VERSION);
    put_u32(b, CKPT_ENDIAN);
    put_u64(b, mtgradi_ckpt_hash(c->config));
    size_t cl = strlen(c->config);
    put_u32(b, (uint32_t)cl);
    put(b, c->config, cl);
    int64_t hdr[6] = {c->epoch, c->k, c->n_params, c->steps, c->solver_warnings, c->curve_cols};
    for (int i = 0; i < 6; i++) put_i64(b, hdr[i]);
    for (int i = 0; i < 4; i++) put_u64(b, c->rng[i]);
    put_u64(b, (uint64_t)c->optim_len);
    put(b, c->optim, c->optim_len);
    put_u64(b, (uint64_t)c->agg_len);
    put(b, c->agg, c->agg_len);
    put_u64(b, (uint64_t)c->step_len);
    put(b, c->step, c->step_len);
    put(b, c->params, (size_t)c->n_params * sizeof(float));
    put(b, c->curves, (size_t)(c->epoch * c->curve_cols) * sizeof(double));
    if (b->oom) return;
    uint32_t crc = (uint32_t)crc32_z(0L, b->p, b->len);
    put_u32(b, crc);
}

/* Reads n bytes at *pos of a len-byte buffer; 0 if that runs past the end. */
static int get(const unsigned char *p, size_t len, size_t *pos, void *out, size_t n)
{
    if (n > len - *pos) return 0;
    memcpy(out, p + *pos, n);
    *pos += n;
    return 1;
}

/* An owned copy of n bytes at *pos (one more byte, zeroed, so text can be used as a string).
 * Sets *bad: 1 if the buffer is truncated, 2 if out of memory. */
static void *get_copy(const unsigned char *p, size_t len, size_t *pos, uint64_t n, int *bad)
{
    if (*bad) return NULL;
    if (n > len - *pos) {
        *bad = 1;
        return NULL;
    }
    unsigned char *q = mtgradi_malloc((size_t)n + 1);
    if (!q) {
        *bad = 2;
        return NULL;
    }
    memcpy(q, p + *pos, (size_t)n);
    q[n] = 0;
    *pos += (size_t)n;
    return q;
}

/* The fixed-size fields after the configuration text; 0 if truncated or implausible. */
static int parse_header(const unsigned char *p, size_t len, size_t *pos, mtgradi_ckpt *c)
{
    int64_t h[6];
    for (int i = 0; i < 6; i++)
        if (!get(p, len, pos, &h[i], 8)) return 0;
    for (int i = 0; i < 4; i++)
        if (!get(p, len, pos, &c->rng[i], 8)) return 0;
    /* bounded by the file size, so that the products below cannot overflow; checked before
     * they reach *c, whose epoch * curve_cols the caller computes even after a failure */
    int64_t epoch = h[0], k = h[1], n_params = h[2], steps = h[3], warnings = h[4], cols = h[5];
    if (epoch < 0 || k < 1 || n_params < 1 || cols < 0 || steps < 0 || warnings < 0 ||
        (uint64_t)n_params > len || (uint64_t)cols > len || (uint64_t)epoch > len)
        return 0;
    if (cols > 0 && (uint64_t)epoch > len / 8 / (uint64_t)cols) return 0;
    c->epoch = epoch, c->k = k, c->n_params = n_params, c->steps = steps;
    c->solver_warnings = warnings, c->curve_cols = cols;
    return 1;
}

mtgrad_status mtgradi_ckpt_parse(const unsigned char *p, size_t len, mtgradi_ckpt *c,
                                 const char *path, char *err, size_t errlen)
{
    size_t pos = 0;
    char magic[8];
    uint32_t version = 0, endian = 0, cl = 0, crc;
    uint64_t hash = 0, ol = 0, al = 0, sl = 0;
    if (len < 8 + 4 + 4 + 4 || !get(p, len, &pos, magic, 8) || memcmp(magic, CKPT_MAGIC, 8) != 0) {
        mtgradi_msg(err, errlen, "%s is not an mtgrad checkpoint (bad magic)", path);
        return MTGRAD_E_STATE;
    }
    if (!get(p, len, &pos, &version, 4) || !get(p, len, &pos, &endian, 4) ||
        endian != CKPT_ENDIAN) {
        mtgradi_msg(err, errlen,
                         "%s: checkpoint version or byte order not supported (this build "
                         "reads version %u, native byte order)", path, CKPT_VERSION);
        return MTGRAD_E_STATE;
    }
    if (version != CKPT_VERSION) { /* e.g. version 1: no step state; start the run afresh */
        mtgradi_msg(err, errlen,
                         "%s: checkpoint version %u not supported (this build reads version "
                         "%u; remove the file to start afresh)", path, version, CKPT_VERSION);
        return MTGRAD_E_STATE;
    }
    /* the CRC covers everything: check it before trusting any length field */
    memcpy(&crc, p + len - 4, 4);
    if ((uint32_t)crc32_z(0L, p, len - 4) != crc) {
        mtgradi_msg(err, errlen, "%s: checkpoint is corrupt (CRC32 mismatch)", path);
        return MTGRAD_E_STATE;
    }
    len -= 4;
    int bad = 0;
    if (!get(p, len, &pos, &hash, 8) || !get(p, len, &pos, &cl, 4)) bad = 1;
    c->config = get_copy(p, len, &pos, cl, &bad);
    if (!bad && (strlen(c->config) != cl || mtgradi_ckpt_hash(c->config) != hash)) bad = 1;
    if (!bad && !parse_header(p, len, &pos, c)) bad = 1;
    if (!bad && !get(p, len, &pos, &ol, 8)) bad = 1;
    c->optim = get_copy(p, len, &pos, ol, &bad);
    c->optim_len = (size_t)ol;
    if (!bad && !get(p, len, &pos, &al, 8)) bad = 1;
    c->agg = get_copy(p, len, &pos, al, &bad);
    c->agg_len = (size_t)al;
    if (!bad && !get(p, len, &pos, &sl, 8)) bad = 1;
    c->step = get_copy(p, len, &pos, sl, &bad);
    c->step_len = (size_t)sl;
    c->params = get_copy(p, len, &pos, (uint64_t)c->n_params * sizeof(float), &bad);
    c->curves = get_copy(p, len, &pos, (uint64_t)(c->epoch * c->curve_cols) * sizeof(double), &bad);
    if (!bad && pos != len) bad = 1;
    if (bad == 2) {
        mtgradi_msg(err, errlen, "%s: out of memory reading the checkpoint", path);
        return MTGRAD_E_NOMEM;
    }
    if (bad) {
        mtgradi_msg(err, errlen, "%s: checkpoint is inconsistent (bad lengths)", path);
        return MTGRAD_E_STATE;
    }
    return MTGRAD_OK;
}

void mtgradi_ckpt_free(mtgradi_ckpt *c)
{
    if (!c) return;
    free(c->config);
    free(c->optim);
    free(c->agg);
    free(c->params);
    free(c->curves);
    free(c->step);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- files */

static int join(char *out, size_t n, const char *dir, const char *name)
{
    int r = snprintf(out, n, "%s/%s", dir, name);
    return r > 0 && (size_t)r < n;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync of the directory makes the rename itself durable; failures here are not fatal
 * (some file systems refuse fsync on directories). */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

mtgrad_status mtgradi_ckpt_write(const char *dir, const mtgradi_ckpt *c, char *err, size_t errlen)
{
    char path[4096], tmp[4096];
    if (!join(path, sizeof path, dir, MTGRAD_CHECKPOINT_FILE) ||
        !join(tmp, sizeof tmp, dir, MTGRAD_CHECKPOINT_FILE ".tmp")) {
        mtgradi_msg(err, errlen, "checkpoint directory name too long");
        return MTGRAD_E_INVAL;
    }
    buf b = {0};
    serialise(&b, c);
    if (b.oom) {
        free(b.p);
        mtgradi_msg(err, errlen, "out of memory writing the checkpoint");
        return MTGRAD_E_NOMEM;
    }
    mtgrad_status st = MTGRAD_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write_all(fd, b.p, b.len) != 0 || fsync(fd) != 0) {
        mtgradi_msg(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        st = MTGRAD_E_IO;
    }
    if (fd >= 0 && close(fd) != 0 && st == MTGRAD_OK) {
        mtgradi_msg(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        st = MTGRAD_E_IO;
    }
    if (st == MTGRAD_OK && rename(tmp, path) != 0) {
        mtgradi_msg(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        st = MTGRAD_E_IO;
    }
    if (st != MTGRAD_OK) unlink(tmp);
    else sync_dir(dir);
    free(b.p);
    return st;
}

mtgrad_status mtgradi_ckpt_read(const char *dir, mtgradi_ckpt *c, int *missing, char *err,
                                size_t errlen)
{
    char path[4096];
    memset(c, 0, sizeof *c);
    *missing = 0;
    if (!join(path, sizeof path, dir, MTGRAD_CHECKPOINT_FILE)) {
        mtgradi_msg(err, errlen, "checkpoint directory name too long");
        return MTGRAD_E_INVAL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        mtgradi_msg(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return MTGRAD_E_IO;
    }
    unsigned char *p = NULL;
    size_t len = 0, cap = 0;
    mtgrad_status st = MTGRAD_OK;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *q = mtgradi_realloc(p, cap);
            if (!q) {
                st = MTGRAD_E_NOMEM;
                break;
            }
            p = q;
        }
        size_t r = fread(p + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    if (st == MTGRAD_OK && ferror(f)) {
        mtgradi_msg(err, errlen, "cannot read %s", path);
        st = MTGRAD_E_IO;
    } else if (st == MTGRAD_E_NOMEM) {
        mtgradi_msg(err, errlen, "out of memory reading %s", path);
    }
    fclose(f);
    if (st == MTGRAD_OK) st = mtgradi_ckpt_parse(p, len, c, path, err, errlen);
    if (st != MTGRAD_OK) mtgradi_ckpt_free(c);
    free(p);
    return st;
}
