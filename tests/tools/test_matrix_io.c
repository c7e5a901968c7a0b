/* test_matrix_io.c — text and .npy gradient matrices (tools/matrix_io.c): round trips through
 * the writers, .npy files assembled byte by byte here (independent of the writer), and every
 * malformed variant giving a clear error. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include "harness.h"
#include "matrix_io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reads the whole content of f (rewound) into a new buffer. */
static char *slurp(FILE *f, size_t *len)
{
    rewind(f);
    *len = 0;
    size_t cap = 1024, n = 0;
    char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *p = realloc(b, cap *= 2);
            if (!p) {
                free(b);
                return NULL;
            }
            b = p;
        }
    }
    *len = n;
    return b;
}

static const double vals[6] = {1.0, -0.1, 1e-300, 3.141592653589793, -2.5e300, 0.0};

static void test_round_trips(void)
{
    matrix m = {(double *)vals, 2, 3}, back;
    char err[MATRIX_ERRLEN];
    for (int npy = 0; npy < 2; npy++) {
        FILE *f = tmpfile();
        CHECK(f != NULL, "tmpfile");
        if (!f) return;
        CHECK((npy ? matrix_write_npy(f, &m) : matrix_write_text(f, &m)) == 0, "write");
        size_t len = 0;
        char *buf = slurp(f, &len);
        fclose(f);
        if (!buf) return;
        int rc = matrix_parse(buf, len, &back, err, sizeof err);
        CHECK(rc == 0, "%s round trip parses: %s", npy ? "npy" : "text", rc ? err : "");
        if (rc == 0) {
            CHECK(back.rows == 2 && back.cols == 3, "shape %lld x %lld", (long long)back.rows,
                  (long long)back.cols);
            CHECK(memcmp(back.data, vals, sizeof vals) == 0, "%s values bit-identical",
                  npy ? "npy" : "text");
            matrix_free(&back);
        }
        if (npy && len > 10) { /* NumPy's layout rule: data aligned to 64 bytes, header ends \n */
            size_t hlen = (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
            CHECK((10 + hlen) % 64 == 0 && buf[10 + hlen - 1] == '\n', "npy header alignment");
            CHECK(len == 10 + hlen + 6 * 8, "npy size %zu", len);
        }
        free(buf);
    }
}

/* An .npy image: magic, version, header length (2 or 4 bytes), header text, data bytes. */
static size_t make_npy(unsigned char *out, int major, const char *header, const void *data,
                       size_t dlen)
{
    size_t n = 0, h = strlen(header);
    memcpy(out, "\x93NUMPY", 6);
    n = 6;
    out[n++] = (unsigned char)major;
    out[n++] = 0;
    if (major == 1) {
        out[n++] = (unsigned char)(h & 0xff);
        out[n++] = (unsigned char)(h >> 8);
    } else {
        for (int i = 0; i < 4; i++) out[n++] = (unsigned char)(h >> (8 * i));
    }
    memcpy(out + n, header, h);
    n += h;
    memcpy(out + n, data, dlen);
    return n + dlen;
}

/* little-endian bytes of doubles / floats (the test machine's order is checked below) */
static void le_doubles(const double *v, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &v[i], 8);
        for (int j = 0; j < 8; j++) out[8 * i + (size_t)j] = (unsigned char)(u >> (8 * j));
    }
}

static void le_floats(const float *v, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int j = 0; j < 4; j++) out[4 * i + (size_t)j] = (unsigned char)(u >> (8 * j));
    }
}

static void test_npy_by_hand(void)
{
    unsigned char img[1024], data[64];
    char err[MATRIX_ERRLEN];
    matrix m;
    /* 1.0, float32, 2 x 3 */
    const float f[6] = {0.5f, -1.25f, 2.0f, 1e-3f, 0.0f, -7.0f};
    le_floats(f, 6, data);
    size_t n = make_npy(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  \n",
                        data, 24);
    int rc = matrix_parse(img, n, &m, err, sizeof err);
    CHECK(rc == 0, "v1.0 <f4: %s", rc ? err : "");
    if (rc == 0) {
        int ok = m.rows == 2 && m.cols == 3;
        for (int i = 0; ok && i < 6; i++) ok = m.data[i] == (double)f[i];
        CHECK(ok, "v1.0 <f4 values (float -> double exact)");
        matrix_free(&m);
    }
    /* 2.0, float64, 1-D: one task */
    const double d3[3] = {1.5, -2.0, 1e10};
    le_doubles(d3, 3, data);
    n = make_npy(img, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", data, 24);
    rc = matrix_parse(img, n, &m, err, sizeof err);
    CHECK(rc == 0 && m.rows == 1 && m.cols == 3 && m.data[2] == 1e10, "v2.0 1-D <f8: %s",
          rc ? err : "");
    if (rc == 0) matrix_free(&m);
    /* 3.0, double quotes, other key order, no trailing comma */
    n = make_npy(img, 3, "{\"shape\": (1, 3), \"fortran_order\": False, \"descr\": \"<f8\"}\n",
                 data, 24);
    rc = matrix_parse(img, n, &m, err, sizeof err);
    CHECK(rc == 0 && m.rows == 1 && m.cols == 3 && m.data[0] == 1.5, "v3.0: %s", rc ? err : "");
    if (rc == 0) matrix_free(&m);

    /* malformed */
    static const struct {
        int major;
        const char *header;
        size_t dlen;
        const char *want;
    } bad[] = {
        {4, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24, "version"},
        {1, "{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", 24, "dtype '>f8'"},
        {1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 24, "dtype '<i8'"},
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", 3, "dtype '|u1'"},
        {1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,), }", 24, "descr"},
        {1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3,), }", 24, "fortran_order"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 3), }", 24, "3-D"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", 8, "0-D"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }", 0, "empty"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", 24, "data bytes"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 24, "data bytes"},
        {1, "{'descr': '<f8', 'fortran_order': False, }", 24, "lacks"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", 24, "unknown"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), } junk", 24, "trailing"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,x), }", 24, "shape"},
        {1, "['descr']", 24, "not a dict"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = make_npy(img, bad[i].major, bad[i].header, data, bad[i].dlen);
        rc = matrix_parse(img, n, &m, err, sizeof err);
        CHECK(rc == -1 && strstr(err, bad[i].want), "bad npy %zu: rc %d, '%s' lacks '%s'", i,
              rc, err, bad[i].want);
        if (rc == 0) matrix_free(&m);
    }
    /* a header length pointing past the end, a NaN element, bad magic */
    n = make_npy(img, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", data, 0);
    rc = matrix_parse(img, 20, &m, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "truncated header"), "truncated header: %s", err);
    const double withnan[2] = {1.0, NAN};
    le_doubles(withnan, 2, data);
    n = make_npy(img, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", data, 16);
    rc = matrix_parse(img, n, &m, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "[0, 1] is not finite"), "NaN element: %s", err);
    rc = matrix_parse_npy("\x93NUMPX\x01\x00\x00\x00", 10, &m, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "magic"), "bad magic: %s", err);
}

static void test_text(void)
{
    char err[MATRIX_ERRLEN];
    matrix m;
    const char *ok = "# header\r\n1, 2,3\r\n\n  4 5\t6 # trailing comment\n-1e-3 ,7, 8\n";
    int rc = matrix_parse_text(ok, strlen(ok), &m, err, sizeof err);
    CHECK(rc == 0, "text with commas, comments, CRLF: %s", rc ? err : "");
    if (rc == 0) {
        const double want[9] = {1, 2, 3, 4, 5, 6, -1e-3, 7, 8};
        CHECK(m.rows == 3 && m.cols == 3, "shape");
        if (m.rows == 3 && m.cols == 3) CHECK_ARRAY_CLOSE(m.data, want, 9, 0, 0);
        matrix_free(&m);
    }
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"1 2 3\n4 5\n", "line 2: 2 numbers, but the first row has 3"},
        {"1 2\n# c\n3 4 5\n", "line 3: 3 numbers"},
        {"1 2\n3 abc\n", "line 2: 'abc' is not a number"},
        {"1 2\n3 inf\n", "line 2: 'inf' is not a finite"},
        {"1 2\nnan 3\n", "line 2: 'nan' is not a finite"},
        {"1,,2\n", "line 1: empty field"},
        {"1, 2,\n", "line 1: empty field"},
        {", 1\n", "line 1: a row cannot start with a comma"},
        {"", "no numbers"},
        {"# nothing\n\n", "no numbers"},
        {"1 2\n3 1e999\n", "not a finite"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = matrix_parse_text(bad[i].text, strlen(bad[i].text), &m, err, sizeof err);
        CHECK(rc == -1 && strstr(err, bad[i].want), "bad text %zu: rc %d '%s' lacks '%s'", i, rc,
              err, bad[i].want);
        if (rc == 0) matrix_free(&m);
    }
    const char nul[] = "1 2\n3\0 4\n";
    rc = matrix_parse_text(nul, sizeof nul - 1, &m, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "line 2: NUL"), "NUL byte: %s", err);
}

static void test_files(void)
{
    char err[MATRIX_ERRLEN];
    matrix m;
    int rc = matrix_read_file("/nonexistent/dir/g.txt", &m, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "/nonexistent/dir/g.txt"), "missing file names the path: %s",
          err);
    char path[] = "/tmp/mtgrad_test_matrix_io_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(f != NULL, "create %s", path);
    if (!f) return;
    fputs("1 2\n3 x\n", f);
    fclose(f);
    rc = matrix_read_file(path, &m, err, sizeof err);
    CHECK(rc == -1 && strstr(err, path) && strstr(err, "line 2"), "file error has path and line: %s",
          err);
    f = fopen(path, "w");
    if (f) {
        fputs("0.25 0.5\n", f);
        fclose(f);
    }
    rc = matrix_read_file(path, &m, err, sizeof err);
    CHECK(rc == 0 && m.rows == 1 && m.cols == 2 && m.data[1] == 0.5, "file read: %s",
          rc ? err : "");
    if (rc == 0) matrix_free(&m);
    remove(path);
    matrix_free(NULL);
}

int main(void)
{
    test_round_trips();
    test_npy_by_hand();
    test_text();
    test_files();
    return harness_report();
}
