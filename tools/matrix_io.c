/* matrix_io.c — text and NumPy .npy gradient matrices (see matrix_io.h). */
#include "matrix_io.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void matrix_free(matrix *m)
{
    if (!m) return;
    free(m->data);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ text */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* Append x to a growing array. */
static int push(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        double *p = realloc(*v, c * sizeof *p);
        if (!p) return -1;
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return 0;
}

/* Parses one line [s, e) (comment already cut off), appending its numbers. Returns how many
 * numbers it had, or -1 with err set. */
static long parse_row(const char *s, const char *e, long lineno, double **v, size_t *n,
                      size_t *cap, char *err, size_t errlen)
{
    long count = 0;
    char tok[128];
    const char *p = s;
    for (;;) {
        while (p < e && is_blank(*p)) p++;
        if (p == e) break;
        if (count > 0 && *p == ',') { /* one comma between numbers */
            p++;
            while (p < e && is_blank(*p)) p++;
            if (p == e || *p == ',')
                return fail(err, errlen, "line %ld: empty field after a comma", lineno);
        } else if (*p == ',') {
            return fail(err, errlen, "line %ld: a row cannot start with a comma", lineno);
        }
        const char *t = p;
        while (p < e && !is_blank(*p) && *p != ',') p++;
        size_t len = (size_t)(p - t);
        if (len >= sizeof tok)
            return fail(err, errlen, "line %ld: token too long: '%.20s...'", lineno, t);
        memcpy(tok, t, len);
        tok[len] = '\0';
        char *end;
        errno = 0;
        double x = strtod(tok, &end);
        if (end == tok || *end)
            return fail(err, errlen, "line %ld: '%s' is not a number", lineno, tok);
        if (!isfinite(x))
            return fail(err, errlen, "line %ld: '%s' is not a finite number", lineno, tok);
        if (push(v, n, cap, x) < 0) return fail(err, errlen, "out of memory");
        count++;
    }
    return count;
}

int matrix_parse_text(const char *buf, size_t len, matrix *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    double *v = NULL;
    size_t n = 0, cap = 0;
    int64_t rows = 0, cols = 0;
    long lineno = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        if (memchr(p, '\0', (size_t)(le - p))) {
            free(v);
            return fail(err, errlen, "line %ld: NUL byte (binary file?)", lineno);
        }
        const char *hash = memchr(p, '#', (size_t)(le - p));
        long c = parse_row(p, hash ? hash : le, lineno, &v, &n, &cap, err, errlen);
        if (c < 0) {
            free(v);
            return -1;
        }
        if (c > 0) {
            if (rows == 0) cols = c;
            if (c != cols) {
                free(v);
                return fail(err, errlen, "line %ld: %ld numbers, but the first row has %lld",
                            lineno, c, (long long)cols);
            }
            if (++rows > MATRIX_MAX_ROWS) {
                free(v);
                return fail(err, errlen, "more than %lld rows", (long long)MATRIX_MAX_ROWS);
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (rows == 0) {
        free(v);
        return fail(err, errlen, "no numbers in the matrix file");
    }
    m->data = v;
    m->rows = rows;
    m->cols = cols;
    return 0;
}

/* ------------------------------------------------------------------ .npy */

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* A tiny reader of the Python-literal header dict: {'descr': '<f8', 'fortran_order': False,
 * 'shape': (3, 4), } with ' or " quotes and arbitrary blanks. */
typedef struct hdr {
    const char *p, *e;
} hdr;

static void hdr_blank(hdr *h)
{
    while (h->p < h->e && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int hdr_char(hdr *h, char c)
{
    hdr_blank(h);
    if (h->p < h->e && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

static int hdr_string(hdr *h, char *out, size_t outlen)
{
    hdr_blank(h);
    if (h->p >= h->e || (*h->p != '\'' && *h->p != '"')) return 0;
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->e && *h->p != q) {
        if (n + 1 >= outlen) return 0;
        out[n++] = *h->p++;
    }
    if (h->p >= h->e) return 0;
    h->p++;
    out[n] = '\0';
    return 1;
}

static int hdr_word(hdr *h, const char *w)
{
    hdr_blank(h);
    size_t n = strlen(w);
    if ((size_t)(h->e - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return 1;
    }
    return 0;
}

/* (a, b, ...) of non-negative integers; at most 8 entries. */
static int hdr_shape(hdr *h, int64_t *dims, int *ndim)
{
    *ndim = 0;
    if (!hdr_char(h, '(')) return 0;
    for (;;) {
        if (hdr_char(h, ')')) return 1;
        hdr_blank(h);
        int64_t v = 0;
        int digits = 0;
        while (h->p < h->e && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return 0;
            v = v * 10 + (*h->p++ - '0');
            digits++;
        }
        if (h->p < h->e && *h->p == 'L') h->p++; /* Python 2 longs */
        if (!digits || *ndim == 8) return 0;
        dims[(*ndim)++] = v;
        if (!hdr_char(h, ',')) return hdr_char(h, ')');
    }
}

static int npy_header(const char *s, size_t n, char *descr, size_t dlen, int *fortran,
                      int64_t *dims, int *ndim, char *err, size_t errlen)
{
    hdr h = {s, s + n};
    int got_descr = 0, got_fortran = 0, got_shape = 0;
    if (!hdr_char(&h, '{')) return fail(err, errlen, ".npy: header is not a dict");
    for (;;) {
        if (hdr_char(&h, '}')) break;
        char key[32];
        if (!hdr_string(&h, key, sizeof key) || !hdr_char(&h, ':'))
            return fail(err, errlen, ".npy: malformed header dict");
        if (strcmp(key, "descr") == 0) {
            if (!hdr_string(&h, descr, dlen))
                return fail(err, errlen, ".npy: 'descr' is not a simple dtype string "
                                         "(structured arrays are not supported)");
            got_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (hdr_word(&h, "False")) *fortran = 0;
            else if (hdr_word(&h, "True")) *fortran = 1;
            else return fail(err, errlen, ".npy: 'fortran_order' is not True/False");
            got_fortran = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!hdr_shape(&h, dims, ndim)) return fail(err, errlen, ".npy: malformed 'shape'");
            got_shape = 1;
        } else {
            return fail(err, errlen, ".npy: unknown header key '%s'", key);
        }
        if (!hdr_char(&h, ',')) {
            if (!hdr_char(&h, '}')) return fail(err, errlen, ".npy: malformed header dict");
            break;
        }
    }
    hdr_blank(&h);
    if (h.p != h.e) return fail(err, errlen, ".npy: trailing bytes after the header dict");
    if (!got_descr || !got_fortran || !got_shape)
        return fail(err, errlen, ".npy: header lacks 'descr', 'fortran_order' or 'shape'");
    return 0;
}

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const unsigned char *b)
{
    return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

int matrix_parse_npy(const void *buf, size_t len, matrix *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    const unsigned char *b = buf;
    if (len < 10 || memcmp(b, npy_magic, 6) != 0) return fail(err, errlen, ".npy: bad magic");
    unsigned major = b[6], minor = b[7];
    size_t hlen, off;
    if (major == 1 && minor == 0) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12) return fail(err, errlen, ".npy: truncated header");
        hlen = le32(b + 8);
        off = 12;
    } else {
        return fail(err, errlen, ".npy: unsupported format version %u.%u", major, minor);
    }
    if (hlen > len - off) return fail(err, errlen, ".npy: truncated header");
    char descr[32];
    int fortran = 0, ndim = 0;
    int64_t dims[8];
    if (npy_header((const char *)b + off, hlen, descr, sizeof descr, &fortran, dims, &ndim, err,
                   errlen) < 0)
        return -1;
    size_t esize;
    if (strcmp(descr, "<f8") == 0) esize = 8;
    else if (strcmp(descr, "<f4") == 0) esize = 4;
    else return fail(err, errlen, ".npy: dtype '%s' not supported (use '<f4' or '<f8')", descr);
    if (fortran) return fail(err, errlen, ".npy: fortran_order True is not supported");
    int64_t rows, cols;
    if (ndim == 2) rows = dims[0], cols = dims[1];
    else if (ndim == 1) rows = 1, cols = dims[0];
    else return fail(err, errlen, ".npy: %d-D array; need 2-D (k, d) or 1-D (d,)", ndim);
    if (rows < 1 || cols < 1) return fail(err, errlen, ".npy: empty array");
    if (rows > MATRIX_MAX_ROWS || cols > MATRIX_MAX_COLS || (uint64_t)rows * (uint64_t)cols >
                                                               (uint64_t)MATRIX_MAX_BYTES / esize)
        return fail(err, errlen, ".npy: array too large (%lld x %lld)", (long long)rows,
                    (long long)cols);
    size_t count = (size_t)rows * (size_t)cols, data = off + hlen;
    if (len - data != count * esize)
        return fail(err, errlen, ".npy: %zu data bytes for a %lld x %lld array of '%s' (want %zu)",
                    len - data, (long long)rows, (long long)cols, descr, count * esize);
    double *v = malloc(count * sizeof *v);
    if (!v) return fail(err, errlen, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const unsigned char *q = b + data + i * esize;
        if (esize == 8) {
            uint64_t u = le64(q);
            memcpy(&v[i], &u, 8);
        } else {
            uint32_t u = le32(q);
            float f;
            memcpy(&f, &u, 4);
            v[i] = (double)f;
        }
        if (!isfinite(v[i])) {
            free(v);
            return fail(err, errlen, ".npy: element [%lld, %lld] is not finite",
                        (long long)(i / (size_t)cols), (long long)(i % (size_t)cols));
        }
    }
    m->data = v;
    m->rows = rows;
    m->cols = cols;
    return 0;
}

/* ------------------------------------------------------------------ files */

int matrix_parse(const void *buf, size_t len, matrix *m, char *err, size_t errlen)
{
    if (len >= 6 && memcmp(buf, npy_magic, 6) == 0)
        return matrix_parse_npy(buf, len, m, err, errlen);
    return matrix_parse_text(buf, len, m, err, errlen);
}

int matrix_read_file(const char *path, matrix *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= MATRIX_MAX_BYTES) {
                rc = fail(err, errlen, "%s: larger than %zu bytes", path, MATRIX_MAX_BYTES);
                break;
            }
            size_t c = cap ? 2 * cap : 65536;
            char *p = realloc(buf, c);
            if (!p) {
                rc = fail(err, errlen, "%s: out of memory", path);
                break;
            }
            buf = p;
            cap = c;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) rc = fail(err, errlen, "%s: read error", path);
            break;
        }
    }
    if (!is_stdin) fclose(f);
    if (rc == 0) {
        char inner[MATRIX_ERRLEN];
        rc = matrix_parse(buf, n, m, inner, sizeof inner);
        if (rc < 0) fail(err, errlen, "%s: %s", path, inner);
    }
    free(buf);
    return rc;
}

int matrix_write_text(FILE *f, const matrix *m)
{
    for (int64_t i = 0; i < m->rows; i++) {
        for (int64_t j = 0; j < m->cols; j++)
            if (fprintf(f, j ? " %.17g" : "%.17g", m->data[i * m->cols + j]) < 0) return -1;
        if (fputc('\n', f) == EOF) return -1;
    }
    return fflush(f) == 0 ? 0 : -1;
}

int matrix_write_npy(FILE *f, const matrix *m)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)m->rows, (long long)m->cols);
    /* pad so the data starts at a multiple of 64 bytes, header ending with '\n' */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    if (fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)n, f) != (size_t)n) return -1;
    for (size_t i = 0; i < pad; i++)
        if (fputc(' ', f) == EOF) return -1;
    if (fputc('\n', f) == EOF) return -1;
    size_t count = (size_t)(m->rows * m->cols);
    for (size_t i = 0; i < count; i++) {
        uint64_t u;
        memcpy(&u, &m->data[i], 8);
        unsigned char b[8];
        for (int j = 0; j < 8; j++) b[j] = (unsigned char)(u >> (8 * j));
        if (fwrite(b, 1, 8, f) != 8) return -1;
    }
    return fflush(f) == 0 ? 0 : -1;
}
