/* harness.h — the whole test harness. Each test program counts checks, prints the failures with
 * file:line, and ends with one line "N passed, N failed"; main returns non-zero on any failure. */
#ifndef MTGRAD_TEST_HARNESS_H
#define MTGRAD_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

static int harness_passed, harness_failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            harness_passed++;                                                              \
        } else {                                                                           \
            harness_failed++;                                                              \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

/* |a - b| <= atol + rtol*|b|, NaN never passes */
static inline int harness_close(double a, double b, double rtol, double atol)
{
    return fabs(a - b) <= atol + rtol * fabs(b);
}

#define CHECK_CLOSE(a, b, rtol, atol)                                                      \
    CHECK(harness_close((double)(a), (double)(b), rtol, atol), "%.17g vs %.17g", (double)(a), \
          (double)(b))

/* Arrays: prints the first failing index, max abs/rel error and up to 5 pairs. */
#define CHECK_ARRAY_CLOSE(a, b, n, rtol, atol)                                             \
    harness_check_array(__FILE__, __LINE__, #a, (a), (b), (long)(n), rtol, atol)

static inline void harness_check_array(const char *file, int line, const char *what,
                                       const double *a, const double *b, long n, double rtol,
                                       double atol)
{
    long first = -1;
    double max_abs = 0, max_rel = 0;
    for (long i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (!(e <= atol + rtol * fabs(b[i]))) {
            if (first < 0) first = i;
        }
        if (e > max_abs || e != e) max_abs = e;
        if (b[i] != 0 && e / fabs(b[i]) > max_rel) max_rel = e / fabs(b[i]);
    }
    if (first < 0) {
        harness_passed++;
        return;
    }
    harness_failed++;
    fprintf(stderr, "FAIL %s:%d: %s: first bad index %ld, max abs err %.3g, max rel err %.3g\n",
            file, line, what, first, max_abs, max_rel);
    for (long i = first; i < n && i < first + 5; i++)
        fprintf(stderr, "    [%ld] %.17g vs %.17g\n", i, a[i], b[i]);
}

static inline int harness_report(void)
{
    printf("%d passed, %d failed\n", harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}

#endif
