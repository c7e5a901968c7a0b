/*
 * idx.c — reader of the IDX files MNIST-style data sets ship in (gzip'd, read through zlib) and
 * the Fashion-MNIST loader on top of it.
 *
 * IDX: a 4-byte magic 0x00 0x00 <type> <ndims> (type 0x08 = unsigned byte; 2051 = 3-D, 2049 =
 * 1-D), then ndims big-endian 32-bit sizes, then the bytes in row-major order. The reader trusts
 * nothing in a file: every size is bounded before allocating and a short read is an error, so a
 * corrupt or truncated download gives a clear E_IO instead of a crash or silent zeros.
 */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"
#include "internal.h" /* mtgradi_malloc & co. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FASHION_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FASHION_HINT \
    "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) " \
    "or set MTGRAD_FASHION_DIR to a directory holding the four *-ubyte.gz files"
#define IDX_MAX_SIDE 65536
#define IDX_CHUNK (1u << 20)

const char *mtgradi_fashion_dir(void)
{
    const char *d = getenv("MTGRAD_FASHION_DIR");
    return (d && d[0]) ? d : FASHION_DEFAULT_DIR;
}

/* Read exactly len bytes; 0 on success, -1 with a message on a short read or a zlib error. */
static int read_exact(gzFile f, void *buf, size_t len, const char *path, const char *what,
                      char *err, size_t errlen)
{
    unsigned char *p = buf;
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < IDX_CHUNK ? len - done : IDX_CHUNK;
        int got = gzread(f, p + done, (unsigned)want);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            mtgradi_msg(err, errlen, "%s: corrupt file while reading the %s: %s", path, what,
                    zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (got == 0) {
            mtgradi_msg(err, errlen, "%s: truncated file: the %s stops after %zu of %zu bytes", path,
                    what, done, len);
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads and checks the magic and the sizes; fills dims (ndims of them). */
static mtgrad_status read_header(gzFile f, const char *path, int magic, int ndims, int64_t *dims,
                                 char *err, size_t errlen)
{
    unsigned char h[16];
    if (read_exact(f, h, 4, path, "header", err, errlen) != 0) return MTGRAD_E_IO;
    uint32_t m = be32(h);
    if (m != (uint32_t)magic) {
        mtgradi_msg(err, errlen, "%s: not an IDX %s file (magic %u, expected %d)", path,
                magic == MTGRADI_IDX_IMAGES ? "image" : "label", (unsigned)m, magic);
        return MTGRAD_E_IO;
    }
    if (read_exact(f, h, (size_t)ndims * 4, path, "header", err, errlen) != 0) return MTGRAD_E_IO;
    for (int i = 0; i < ndims; i++) {
        dims[i] = (int64_t)be32(h + 4 * i);
        int64_t cap = i == 0 ? MTGRADI_IDX_MAX_ITEMS : IDX_MAX_SIDE;
        if (dims[i] < 1 || dims[i] > cap) {
            mtgradi_msg(err, errlen, "%s: implausible size %lld in dimension %d of the header", path,
                    (long long)dims[i], i);
            return MTGRAD_E_IO;
        }
    }
    return MTGRAD_OK;
}

mtgrad_status mtgradi_idx_read(const char *path, int magic, int64_t max_items, int64_t *dims,
                               uint8_t **data, char *err, size_t errlen)
{
    if (!path || !dims || !data || (magic != MTGRADI_IDX_IMAGES && magic != MTGRADI_IDX_LABELS)) {
        mtgradi_msg(err, errlen, "idx: bad arguments");
        return MTGRAD_E_INVAL;
    }
    *data = NULL;
    int ndims = magic == MTGRADI_IDX_IMAGES ? 3 : 1;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        mtgradi_msg(err, errlen, "cannot open %s: %s", path,
                errno ? strerror(errno) : "out of memory");
        return errno ? MTGRAD_E_IO : MTGRAD_E_NOMEM;
    }
    mtgrad_status s = read_header(f, path, magic, ndims, dims, err, errlen);
    if (s == MTGRAD_OK) {
        if (max_items > 0 && max_items < dims[0]) dims[0] = max_items;
        size_t bytes = (size_t)dims[0];
        for (int i = 1; i < ndims; i++) bytes *= (size_t)dims[i]; /* bounded: < 2^63 */
        *data = mtgradi_malloc(bytes ? bytes : 1);
        if (!*data) {
            mtgradi_msg(err, errlen, "%s: out of memory for %zu bytes", path, bytes);
            s = MTGRAD_E_NOMEM;
        } else if (read_exact(f, *data, bytes, path, "data", err, errlen) != 0) {
            s = MTGRAD_E_IO;
        }
    }
    gzclose(f);
    if (s != MTGRAD_OK) {
        free(*data);
        *data = NULL;
    }
    return s;
}

void mtgradi_fashion_free(mtgradi_fashion *f)
{
    if (!f) return;
    free(f->images);
    free(f->labels);
    f->images = f->labels = NULL;
    f->n = 0;
}

/* Path of one of the four files; E_IO with the install hint if it cannot be opened. */
static mtgrad_status fashion_path(char *path, size_t len, int train, const char *kind, char *err,
                                  size_t errlen)
{
    int w = snprintf(path, len, "%s/%s-%s-ubyte.gz", mtgradi_fashion_dir(),
                     train ? "train" : "t10k", kind);
    if (w < 0 || (size_t)w >= len) {
        mtgradi_msg(err, errlen, "fashion-mnist: directory name too long: %s", mtgradi_fashion_dir());
        return MTGRAD_E_IO;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        mtgradi_msg(err, errlen, "Fashion-MNIST not found: cannot open %s (%s); %s", path,
                strerror(errno), FASHION_HINT);
        return MTGRAD_E_IO;
    }
    fclose(f);
    return MTGRAD_OK;
}

mtgrad_status mtgradi_fashion_load(mtgradi_fashion *out, int train, int64_t max_items, char *err,
                                   size_t errlen)
{
    if (!out) return MTGRAD_E_INVAL;
    memset(out, 0, sizeof *out);
    char ipath[4096], lpath[4096];
    mtgrad_status s = fashion_path(ipath, sizeof ipath, train, "images-idx3", err, errlen);
    if (s == MTGRAD_OK) s = fashion_path(lpath, sizeof lpath, train, "labels-idx1", err, errlen);
    if (s != MTGRAD_OK) return s;

    int64_t idims[3], ldims[1];
    s = mtgradi_idx_read(ipath, MTGRADI_IDX_IMAGES, max_items, idims, &out->images, err, errlen);
    if (s == MTGRAD_OK && (idims[1] != MTGRADI_FASHION_SIDE || idims[2] != MTGRADI_FASHION_SIDE)) {
        mtgradi_msg(err, errlen, "%s: images are %lld x %lld, expected 28 x 28", ipath,
                (long long)idims[1], (long long)idims[2]);
        s = MTGRAD_E_IO;
    }
    if (s == MTGRAD_OK)
        s = mtgradi_idx_read(lpath, MTGRADI_IDX_LABELS, max_items, ldims, &out->labels, err,
                             errlen);
    if (s == MTGRAD_OK && ldims[0] != idims[0]) {
        mtgradi_msg(err, errlen, "%s has %lld labels for %lld images", lpath, (long long)ldims[0],
                (long long)idims[0]);
        s = MTGRAD_E_IO;
    }
    for (int64_t i = 0; s == MTGRAD_OK && i < ldims[0]; i++) {
        if (out->labels[i] > 9) {
            mtgradi_msg(err, errlen, "%s: label %d of item %lld is not a class 0..9", lpath,
                    out->labels[i], (long long)i);
            s = MTGRAD_E_IO;
        }
    }
    if (s != MTGRAD_OK) {
        mtgradi_fashion_free(out);
        return s;
    }
    out->n = idims[0];
    return MTGRAD_OK;
}
