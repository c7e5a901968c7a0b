/*
 * fuzz_matrix.c — libFuzzer target for the gradient-matrix readers (tools/matrix_io.c): text
 * and .npy, chosen by the magic bytes as the CLI does. A matrix that parses must be well formed
 * (finite, rows x cols within the caps) and must survive a round trip through both writers:
 * write as text (%.17g) and as .npy, parse again, same bits. The round trip catches a reader
 * that accepts something other than what it reports.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_common.h"
#include "matrix_io.h"

#include <math.h>

static void round_trip(const matrix *m, int npy)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    int w = npy ? matrix_write_npy(f, m) : matrix_write_text(f, m);
    fclose(f);
    if (w == 0) {
        matrix back;
        char err[MATRIX_ERRLEN];
        int rc = matrix_parse(buf, len, &back, err, sizeof err);
        if (rc != 0) fprintf(stderr, "round trip (%s) failed: %s\n", npy ? "npy" : "text", err);
        FUZZ_ASSERT(rc == 0);
        FUZZ_ASSERT(back.rows == m->rows && back.cols == m->cols);
        FUZZ_ASSERT(memcmp(back.data, m->data, (size_t)(m->rows * m->cols) * sizeof *m->data) == 0);
        matrix_free(&back);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    matrix m;
    char err[MATRIX_ERRLEN];
    if (matrix_parse(data, size, &m, err, sizeof err) != 0) {
        FUZZ_ASSERT(m.data == NULL && memchr(err, '\0', sizeof err) != NULL);
        return 0;
    }
    FUZZ_ASSERT(m.rows >= 1 && m.cols >= 1 && m.rows <= MATRIX_MAX_ROWS && m.cols <= MATRIX_MAX_COLS);
    for (int64_t i = 0; i < m.rows * m.cols; i++) FUZZ_ASSERT(isfinite(m.data[i]));
    /* the text form of a big matrix is large; the inputs the fuzzer makes are small anyway */
    if (m.rows * m.cols <= 4096) {
        round_trip(&m, 0);
        round_trip(&m, 1);
    }
    matrix_free(&m);
    return 0;
}
