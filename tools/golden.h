/*
 * golden.h — reader of golden test-vector files (format: shared/golden/README.md).
 *
 * A file is a sequence of cases. Each case is kept generically as a list of steps: a step has
 * the G block in effect (a G block applies to its step and the following ones until the next
 * G), optional losses, optional uniform draws, optional expected weights and the expected
 * direction; an `expect_direction` line closes a step. This one rule covers the single-shot,
 * famo/dwa (one G, many steps) and gradvac (one G per step) layouts.
 *
 * The reader is streaming (one case at a time) and defensive: any malformed input gives an error
 * "line N: reason" and never a crash; memory grows only with the input actually read and every
 * size is capped (GOLDEN_MAX_*). Numbers are parsed with strtod and must be finite.
 */
#ifndef MTGRAD_TOOLS_GOLDEN_H
#define MTGRAD_TOOLS_GOLDEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GOLDEN_MAX_K 4096              /* tasks */
#define GOLDEN_MAX_D 4000000           /* dimension */
#define GOLDEN_MAX_LINE (64u << 20)    /* bytes in one line */
#define GOLDEN_MAX_PARAMS 256          /* param lines per case */
#define GOLDEN_MAX_STEPS 1000000       /* steps per case */
#define GOLDEN_MAX_NAME 1024           /* bytes in a case / method name */
#define GOLDEN_ERRLEN 512

typedef struct golden_param {
    char *name;
    char *value; /* the rest of the line minus a trailing "(explanation)", trimmed; never empty */
} golden_param;

typedef struct golden_step {
    const double *G;         /* k x d row-major: the G block in effect (owned by the case) */
    double *losses;          /* k values or NULL */
    double *uniform;         /* d values or NULL */
    double *expect_weights;  /* k values or NULL */
    double *expect_direction;/* d values, never NULL */
    long line;               /* line of the expect_direction line */
} golden_step;

typedef struct golden_case {
    char *name;
    char *method;
    char *source;            /* free text, or NULL when the case has no source line */
    golden_param *params;
    size_t n_params;
    int64_t k, d;
    double **G_blocks;       /* every G block of the case (steps point into them) */
    size_t n_G;
    golden_step *steps;
    size_t n_steps;
    double tol;
    long line;               /* line of the `case` line */
    long end_line;           /* line of the `end` line */
} golden_case;

typedef struct golden_reader golden_reader;

/* A reader over an open stream (not closed by the reader) or over a memory buffer (borrowed
 * until golden_reader_free; may contain any bytes, need not be NUL-terminated). NULL on
 * allocation failure. */
golden_reader *golden_reader_from_file(FILE *f);
golden_reader *golden_reader_from_mem(const char *buf, size_t len);
void golden_reader_free(golden_reader *r); /* NULL is a no-op */

/*
 * The next case. Returns 1 and *out (free with golden_case_free) when a case was read, 0 at a
 * clean end of input, -1 on malformed input or a read/allocation failure: then err holds the
 * reason and *line the line it refers to (1-based; for a truncated file, the last line read).
 * After -1 the reader stays in error (every further call returns -1 with the same message).
 * Case names must be unique within the input read by one reader.
 */
int golden_next(golden_reader *r, golden_case **out, long *line, char *err, size_t errlen);

void golden_case_free(golden_case *c); /* NULL is a no-op */

/* How many lines the reader has read so far. */
long golden_reader_lines(const golden_reader *r);

/* The value of param `name` in case c, or NULL. */
const char *golden_case_param(const golden_case *c, const char *name);

/* The group of a case for summaries: its name without the "-k<k>-d<d>" suffix and without the
 * last "-<kind>" part (e.g. "mgda-fw-random-k3-d7" -> "mgda-fw"; "mean-random-k2-d2" -> "mean").
 * Writes at most len-1 bytes plus a NUL. */
void golden_case_group(const golden_case *c, char *buf, size_t len);

#endif
