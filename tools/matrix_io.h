/*
 * matrix_io.h — reading (and writing) a k x d gradient matrix for the CLI.
 *
 * Two formats, told apart by the NumPy magic bytes:
 *   text: one row per line, numbers separated by blanks or single commas; '#' starts a comment
 *         (to the end of the line); blank lines are skipped; every row has the same length.
 *   .npy: NumPy format versions 1.0, 2.0, 3.0; dtype '<f4' or '<f8'; fortran_order False;
 *         shape (k, d) or (d,) (a 1-D array is one task). Anything else is a clear error.
 * Every number must be finite. Sizes are capped (MATRIX_MAX_*); errors say what is wrong and,
 * for text, on which line.
 */
#ifndef MTGRAD_TOOLS_MATRIX_IO_H
#define MTGRAD_TOOLS_MATRIX_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MATRIX_MAX_BYTES ((size_t)1 << 31) /* file size */
#define MATRIX_MAX_ROWS ((int64_t)1 << 20)
#define MATRIX_MAX_COLS ((int64_t)1 << 31)
#define MATRIX_ERRLEN 256

typedef struct matrix {
    double *data; /* rows x cols, row-major (malloc'ed) */
    int64_t rows, cols;
} matrix;

/* Parse a buffer (text or .npy). 0 on success (*m filled; free with matrix_free), -1 with a
 * message in err. The buffer need not be NUL-terminated. */
int matrix_parse(const void *buf, size_t len, matrix *m, char *err, size_t errlen);
int matrix_parse_text(const char *buf, size_t len, matrix *m, char *err, size_t errlen);
int matrix_parse_npy(const void *buf, size_t len, matrix *m, char *err, size_t errlen);

/* Read a whole file (path "-" is stdin) and parse it. */
int matrix_read_file(const char *path, matrix *m, char *err, size_t errlen);

/* Write m as text (%.17g, blank-separated) or as .npy version 1.0 '<f8'. 0 or -1 (I/O error). */
int matrix_write_text(FILE *f, const matrix *m);
int matrix_write_npy(FILE *f, const matrix *m);

void matrix_free(matrix *m); /* frees data, zeroes the struct; NULL is a no-op */

#endif
