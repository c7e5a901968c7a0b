/* test_golden_parser.c — the golden-file reader (tools/golden.c): valid layouts (single-shot,
 * famo/dwa sequences, gradvac sequences, graddrop draws), param values, and malformed inputs,
 * each of which must give an error on the right line (never a crash). Expected values are the
 * numbers written in the fixtures themselves. */
#include "golden.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Reads every case of text; returns the reader's last status (0 clean end, -1 error) and the
 * number of cases read before it. */
static int parse_all(const char *text, size_t len, size_t *ncases, long *line, char *err,
                     size_t errlen)
{
    golden_reader *r = golden_reader_from_mem(text, len);
    *ncases = 0;
    *line = 0;
    err[0] = '\0';
    int rc;
    golden_case *c;
    while ((rc = golden_next(r, &c, line, err, errlen)) == 1) {
        (*ncases)++;
        golden_case_free(c);
    }
    golden_reader_free(r);
    return rc;
}

static golden_case *parse_first(const char *text)
{
    golden_reader *r = golden_reader_from_mem(text, strlen(text));
    golden_case *c = NULL;
    long line;
    char err[GOLDEN_ERRLEN];
    if (golden_next(r, &c, &line, err, sizeof err) != 1) {
        fprintf(stderr, "unexpected parse error at line %ld: %s\n", line, err);
        c = NULL;
    }
    golden_reader_free(r);
    return c;
}

/* Checks that text fails on `want_line` with a message containing `want`. */
static void expect_error(const char *text, long want_line, const char *want, const char *label)
{
    size_t n;
    long line;
    char err[GOLDEN_ERRLEN];
    int rc = parse_all(text, strlen(text), &n, &line, err, sizeof err);
    CHECK(rc == -1, "%s: expected an error, got rc %d", label, rc);
    CHECK(line == want_line, "%s: error on line %ld, want %ld (%s)", label, line, want_line, err);
    CHECK(strstr(err, want) != NULL, "%s: message '%s' lacks '%s'", label, err, want);
}

static const char single[] =
    "# a comment\n"                                         /* 1 */
    "\n"                                                    /* 2 */
    "case mean-random-k2-d3\n"                              /* 3 */
    "method mean\n"                                         /* 4 */
    "source TorchJD/torchjd src/x.py (Mean)\n"              /* 5 */
    "param pref_vector mean\n"                              /* 6 */
    "param max_norm 0 (not applied)\n"                      /* 7 */
    "param state fresh: rho_T = 0\n"                        /* 8 */
    "param note 1 (a (nested) remark)\n"                    /* 9 */
    "param f foo(bar)\n"                                    /* 10 */
    "k 2 d 3\n"                                             /* 11 */
    "G\n"                                                   /* 12 */
    "1 2 3\n"                                               /* 13 */
    "# comment inside\n"                                    /* 14 */
    "-4.5 0 1e-3\n"                                         /* 15 */
    "expect_weights 0.5 0.5\n"                              /* 16 */
    "expect_direction -1.75 1 1.5005\n"                     /* 17 */
    "tol 2e-10\n"                                           /* 18 */
    "end\n";                                                /* 19 */

static void test_single(void)
{
    golden_case *c = parse_first(single);
    CHECK(c != NULL, "single case parses");
    if (!c) return;
    CHECK(strcmp(c->name, "mean-random-k2-d3") == 0, "name %s", c->name);
    CHECK(strcmp(c->method, "mean") == 0, "method %s", c->method);
    CHECK(c->source && strcmp(c->source, "TorchJD/torchjd src/x.py (Mean)") == 0, "source");
    CHECK(c->k == 2 && c->d == 3, "k %lld d %lld", (long long)c->k, (long long)c->d);
    CHECK(c->n_params == 5, "%zu params", c->n_params);
    const char *v = golden_case_param(c, "max_norm");
    CHECK(v && strcmp(v, "0") == 0, "explanation removed: '%s'", v ? v : "(null)");
    v = golden_case_param(c, "state");
    CHECK(v && strcmp(v, "fresh: rho_T = 0") == 0, "value with spaces: '%s'", v ? v : "(null)");
    v = golden_case_param(c, "note");
    CHECK(v && strcmp(v, "1") == 0, "nested explanation removed: '%s'", v ? v : "(null)");
    v = golden_case_param(c, "f");
    CHECK(v && strcmp(v, "foo(bar)") == 0, "parentheses inside the first token kept: '%s'",
          v ? v : "(null)");
    CHECK(golden_case_param(c, "absent") == NULL, "absent param");
    CHECK(c->n_steps == 1 && c->n_G == 1, "%zu steps, %zu G", c->n_steps, c->n_G);
    const double G[6] = {1, 2, 3, -4.5, 0, 1e-3}, w[2] = {0.5, 0.5}, dir[3] = {-1.75, 1, 1.5005};
    CHECK_ARRAY_CLOSE(c->steps[0].G, G, 6, 0, 0);
    CHECK(c->steps[0].expect_weights != NULL, "weights present");
    if (c->steps[0].expect_weights) CHECK_ARRAY_CLOSE(c->steps[0].expect_weights, w, 2, 0, 0);
    CHECK_ARRAY_CLOSE(c->steps[0].expect_direction, dir, 3, 0, 0);
    CHECK(c->steps[0].losses == NULL && c->steps[0].uniform == NULL, "no losses/uniform");
    CHECK(c->tol == 2e-10, "tol %g", c->tol);
    CHECK(c->line == 3 && c->steps[0].line == 17 && c->end_line == 19, "lines %ld %ld %ld",
          c->line, c->steps[0].line, c->end_line);
    char group[64];
    golden_case_group(c, group, sizeof group);
    CHECK(strcmp(group, "mean") == 0, "group %s", group);
    golden_case_free(c);
}

static void test_sequences(void)
{
    /* famo/dwa layout: one G, then losses / weights / direction per step */
    const char *famo = "case famo-x-k2-d2\nmethod famo\nk 2 d 2\nG\n1 0\n0 1\n"
                       "losses 1 2\nexpect_weights 0.6 0.4\nexpect_direction 0.6 0.4\n"
                       "losses 3 4\nexpect_weights 0.7 0.3\nexpect_direction 0.7 0.3\n"
                       "losses 5 6\nexpect_weights 0.8 0.2\nexpect_direction 0.8 0.2\n"
                       "tol 1e-9\nend\n";
    golden_case *c = parse_first(famo);
    CHECK(c != NULL, "famo layout parses");
    if (c) {
        CHECK(c->n_steps == 3 && c->n_G == 1, "%zu steps %zu G", c->n_steps, c->n_G);
        for (size_t t = 0; t < c->n_steps && t < 3; t++) {
            double L[2] = {1 + 2.0 * (double)t, 2 + 2.0 * (double)t};
            CHECK(c->steps[t].G == c->G_blocks[0], "step %zu uses the one G", t);
            CHECK(c->steps[t].losses != NULL, "step %zu has losses", t);
            if (c->steps[t].losses) CHECK_ARRAY_CLOSE(c->steps[t].losses, L, 2, 0, 0);
            CHECK(c->steps[t].expect_weights && c->steps[t].expect_weights[0] == 0.6 + 0.1 * (double)t,
                  "step %zu weights", t);
        }
        golden_case_free(c);
    }
    /* gradvac layout: a new G per step */
    const char *gv = "case gradvac-r-k2-d1\nmethod gradvac\nparam steps 2\nk 2 d 1\n"
                     "G\n1\n2\nexpect_direction 3\nG\n4\n5\nexpect_direction 9\ntol 3e-9\nend\n";
    c = parse_first(gv);
    CHECK(c != NULL, "gradvac layout parses");
    if (c) {
        CHECK(c->n_steps == 2 && c->n_G == 2, "%zu steps %zu G", c->n_steps, c->n_G);
        if (c->n_steps == 2) {
            CHECK(c->steps[0].G[0] == 1 && c->steps[0].G[1] == 2, "G of step 0");
            CHECK(c->steps[1].G[0] == 4 && c->steps[1].G[1] == 5, "G of step 1");
            CHECK(c->steps[1].expect_direction[0] == 9, "direction of step 1");
            CHECK(c->steps[0].expect_weights == NULL, "no weights");
        }
        golden_case_free(c);
    }
    /* graddrop: uniform draws, CRLF line ends, blank lines, tabs */
    const char *gd = "case graddrop-r-k2-d2\r\nmethod graddrop\r\n\r\nk 2 d 2\r\nG\r\n1\t-1\r\n"
                     "2 2\r\nuniform 0.25 0.75\r\nexpect_direction 3 2\r\ntol 1e-10\r\nend";
    c = parse_first(gd);
    CHECK(c != NULL, "graddrop layout with CRLF and no final newline parses");
    if (c) {
        CHECK(c->steps[0].uniform && c->steps[0].uniform[1] == 0.75, "uniform parsed");
        CHECK(c->steps[0].G[1] == -1, "tab separated");
        golden_case_free(c);
    }
}

static void test_multi_and_empty(void)
{
    size_t n;
    long line;
    char err[GOLDEN_ERRLEN];
    char two[2 * sizeof single + 64];
    snprintf(two, sizeof two, "%s\n%s", single, single);
    /* same name twice is an error on the second case line (19 + 1 blank + 3) */
    int rc = parse_all(two, strlen(two), &n, &line, err, sizeof err);
    CHECK(rc == -1 && n == 1 && line == 23 && strstr(err, "duplicate case name"),
          "duplicate case name: rc %d n %zu line %ld %s", rc, n, line, err);
    char *p = strstr(two + sizeof single, "mean-random-k2-d3");
    if (p) p[0] = 'M'; /* rename the second case */
    rc = parse_all(two, strlen(two), &n, &line, err, sizeof err);
    CHECK(rc == 0 && n == 2, "two cases: rc %d n %zu (%s)", rc, n, err);
    rc = parse_all("", 0, &n, &line, err, sizeof err);
    CHECK(rc == 0 && n == 0, "empty input: no case, no error (the runner rejects it)");
    rc = parse_all("# only\n\n#comments\n", 18, &n, &line, err, sizeof err);
    CHECK(rc == 0 && n == 0, "comment-only input: no case");
}

static void test_errors(void)
{
    const char *head = "case c-k2-d2\nmethod m\nk 2 d 2\n"; /* lines 1-3 */
    char buf[1024];
#define WITH_HEAD(body) (snprintf(buf, sizeof buf, "%s%s", head, body), buf)
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol 1\n"), 8, "no 'end'",
                 "missing end");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol 1\ncase d\n"), 9,
                 "missing 'end'", "case inside case");
    expect_error(WITH_HEAD("G\n1 2\nexpect_direction 1 2\ntol 1\nend\n"), 6, "G row 2 of 2",
                 "too few G rows");
    expect_error(WITH_HEAD("G\n1 2\n3 4 5\nexpect_direction 1 2\ntol 1\nend\n"), 6,
                 "expected 2 numbers, found 3", "long G row");
    expect_error(WITH_HEAD("G\n1 2\n3\nexpect_direction 1 2\ntol 1\nend\n"), 6,
                 "expected 2 numbers, found 1", "short G row");
    expect_error(WITH_HEAD("G\n1 2\n3 x4\nexpect_direction 1 2\ntol 1\nend\n"), 6,
                 "not a number", "non-numeric G");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2abc\ntol 1\nend\n"), 7,
                 "not a number", "trailing garbage in a number");
    expect_error(WITH_HEAD("G\n1 2\n3 nan\nexpect_direction 1 2\ntol 1\nend\n"), 6,
                 "not finite", "nan");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1e999 2\ntol 1\nend\n"), 7,
                 "not finite", "overflow");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol x\nend\n"), 8,
                 "not a number", "bad tol");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol -1\nend\n"), 8, "tol must",
                 "negative tol");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\nend\n"), 8, "without a 'tol'",
                 "missing tol");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol 1\ntol 1\nend\n"), 9,
                 "after 'tol'", "duplicate tol");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_weights 1 2 3\nexpect_direction 1 2\ntol 1\nend\n"),
                 7, "expected 2 numbers, found 3", "weights count != k");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nlosses 1\nexpect_direction 1 2\ntol 1\nend\n"), 7,
                 "expected 2 numbers, found 1", "losses count != k");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_weights 1 2\nexpect_weights 1 2\n"
                           "expect_direction 1 2\ntol 1\nend\n"),
                 8, "'expect_weights' after 'expect_weights'", "duplicate weights in a step");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_weights 1 2\nlosses 1 2\n"
                           "expect_direction 1 2\ntol 1\nend\n"),
                 8, "'losses' after 'expect_weights'", "losses after weights");
    expect_error(WITH_HEAD("losses 1 2\nG\n1 2\n3 4\nexpect_direction 1 2\ntol 1\nend\n"), 4,
                 "before any G", "losses before G");
    expect_error(WITH_HEAD("expect_direction 1 2\ntol 1\nend\n"), 4, "before any G",
                 "direction before G");
    expect_error(WITH_HEAD("G\n1 2\n3 4\ntol 1\nend\n"), 7, "unfinished step",
                 "G without direction");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nlosses 1 2\ntol 1\nend\n"), 8, "unfinished step",
                 "losses without direction");
    expect_error(WITH_HEAD("tol 1\nend\n"), 4, "before any expect_direction", "no step");
    expect_error(WITH_HEAD("G extra\n1 2\n3 4\nexpect_direction 1 2\ntol 1\nend\n"), 4,
                 "stand alone", "G with tokens");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol 1\nend now\n"), 9,
                 "stand alone", "end with tokens");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_dir 1 2\ntol 1\nend\n"), 7, "unknown keyword",
                 "unknown keyword");
    expect_error(WITH_HEAD("param x 1\nG\n1 2\n3 4\nexpect_direction 1 2\ntol 1\nend\n"), 4,
                 "unknown keyword 'param'", "param after k");
    expect_error(WITH_HEAD("G\n1 2\n3 4\nexpect_direction 1 2\ntol 1\nend\n junk\n"), 10,
                 "expected 'case", "garbage after a case");
#undef WITH_HEAD
    /* header errors */
    expect_error("x\n", 1, "expected 'case", "not a case");
    expect_error("case\n", 1, "expected 'case <name>'", "case without name");
    expect_error("case a b\n", 1, "expected 'case <name>'", "case with two names");
    expect_error("case a\nmethod m\nmethod m\n", 3, "duplicate 'method'", "duplicate method");
    expect_error("case a\nmethod m n\n", 2, "expected 'method <name>'", "method two names");
    expect_error("case a\nsource x\nsource y\n", 3, "duplicate 'source'", "duplicate source");
    expect_error("case a\nmethod m\nparam x 1\nparam x 2\n", 4, "duplicate param",
                 "duplicate param");
    expect_error("case a\nmethod m\nparam x\n", 3, "has no value", "param no value");
    expect_error("case a\nmethod m\nparam x   \n", 3, "has no value", "param blank value");
    expect_error("case a\nmethod m\nparam\n", 3, "expected 'param", "param no name");
    expect_error("case a\nk 2 d 2\n", 2, "before the 'method'", "k before method");
    expect_error("case a\nmethod m\nk 0 d 2\n", 3, "k must be", "k = 0");
    expect_error("case a\nmethod m\nk -1 d 2\n", 3, "k must be", "k < 0");
    expect_error("case a\nmethod m\nk 99999999999999999999 d 2\n", 3, "k must be", "huge k");
    expect_error("case a\nmethod m\nk 5000 d 2\n", 3, "k must be", "k above the cap");
    expect_error("case a\nmethod m\nk 2 d 4000001\n", 3, "d must be", "d above the cap");
    expect_error("case a\nmethod m\nk 2.5 d 2\n", 3, "k must be", "fractional k");
    expect_error("case a\nmethod m\nk 2 x 2\n", 3, "expected 'k <k> d <d>'", "no d keyword");
    expect_error("case a\nmethod m\nk 2 d\n", 3, "expected 'k <k> d <d>'", "d missing");
    expect_error("case a\nmethod m\nk 2 d 2\nk 2 d 2\n", 4, "unknown keyword", "k twice");
    expect_error("case a\nmethod m\nG\n", 3, "before the 'k", "G before k");
    expect_error("case a\nmethod m\nk 2 d 2\nG\n1 2\n", 5, "end of file inside the G block",
                 "truncated G block");
    expect_error("case a\nmethod m\nk 2 d 2\nG\n1 2\n 3 4\n", 6, "end of file inside case",
                 "indented row is fine, then EOF");
    expect_error("case a\n  method m\n", 2, "starts with a blank", "indented keyword");
    /* a NUL byte */
    const char nul[] = "case a\nmethod m\0x\n";
    size_t n;
    long line;
    char err[GOLDEN_ERRLEN];
    int rc = parse_all(nul, sizeof nul - 1, &n, &line, err, sizeof err);
    CHECK(rc == -1 && line == 2 && strstr(err, "NUL"), "NUL byte: rc %d line %ld %s", rc, line,
          err);
}

/* Every prefix of a valid one-case file that cuts before the end of its `end` keyword is an
 * error (the case is unfinished); none crashes. */
static void test_truncation(void)
{
    size_t full = strlen(single), end_at = full - 1; /* after "end", before the final \n */
    int bad = 0;
    for (size_t len = 0; len < full; len++) {
        size_t n;
        long line;
        char err[GOLDEN_ERRLEN];
        int rc = parse_all(single, len, &n, &line, err, sizeof err);
        int want_error = len < end_at && len > 13; /* up to "# a comment\n\n" nothing started */
        if (want_error != (rc == -1) || (want_error && (line < 1 || line > 19))) bad++;
        if (!want_error && len >= end_at && n != 1) bad++;
    }
    CHECK(bad == 0, "%d prefixes misbehaved", bad);
}

/* The same parse from a FILE* (lines longer than the reader's 64 KiB chunk). */
static void test_file_long_lines(void)
{
    const int d = 20000;
    size_t cap = (size_t)d * 24 + 1024, n = 0;
    char *text = malloc(cap);
    if (!text) return;
    n += (size_t)snprintf(text + n, cap - n, "case long\nmethod mean\nk 1 d %d\nG\n", d);
    for (int j = 0; j < d; j++) n += (size_t)snprintf(text + n, cap - n, "%d.25 ", j);
    n += (size_t)snprintf(text + n, cap - n, "\nexpect_direction");
    for (int j = 0; j < d; j++) n += (size_t)snprintf(text + n, cap - n, " %d.5", j);
    n += (size_t)snprintf(text + n, cap - n, "\ntol 1\nend\n");
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (!f) {
        free(text);
        return;
    }
    fwrite(text, 1, n, f);
    rewind(f);
    golden_reader *r = golden_reader_from_file(f);
    golden_case *c = NULL;
    long line;
    char err[GOLDEN_ERRLEN];
    int rc = golden_next(r, &c, &line, err, sizeof err);
    CHECK(rc == 1, "long lines from a FILE*: rc %d %s", rc, rc < 0 ? err : "");
    if (c) {
        int ok = 1;
        for (int j = 0; j < d; j++)
            ok &= c->steps[0].G[j] == j + 0.25 && c->steps[0].expect_direction[j] == j + 0.5;
        CHECK(ok, "every number of the long rows read back");
        CHECK(c->steps[0].line == 6, "direction line %ld", c->steps[0].line);
        golden_case_free(c);
    }
    CHECK(golden_next(r, &c, &line, err, sizeof err) == 0, "then a clean end");
    golden_reader_free(r);
    fclose(f);
    free(text);
}

static void test_sticky_error(void)
{
    golden_reader *r = golden_reader_from_mem("bogus\n", 6);
    golden_case *c;
    long line = 0;
    char err[GOLDEN_ERRLEN];
    CHECK(golden_next(r, &c, &line, err, sizeof err) == -1, "first call fails");
    line = 0;
    CHECK(golden_next(r, &c, &line, err, sizeof err) == -1 && line == 1 && c == NULL,
          "the reader stays in error");
    golden_reader_free(r);
    golden_reader_free(NULL);
    golden_case_free(NULL);
}

int main(void)
{
    test_single();
    test_sequences();
    test_multi_and_empty();
    test_errors();
    test_truncation();
    test_file_long_lines();
    test_sticky_error();
    return harness_report();
}
