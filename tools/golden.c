/* golden.c — streaming, defensive reader of golden test-vector files (see golden.h). */
#include "golden.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536

struct golden_reader {
    FILE *f;                 /* stream source, or NULL */
    const char *mem;         /* memory source */
    size_t mem_len, mem_pos;
    char *chunk;             /* stream read-ahead */
    size_t chunk_len, chunk_pos;
    int at_eof;
    char *line;              /* current line, NUL-terminated, without "\n" / "\r\n" */
    size_t line_len, line_cap;
    long lineno;
    int failed;              /* sticky error */
    long err_line;
    char err[GOLDEN_ERRLEN];
    char **names;            /* hash set of case names seen (open addressing) */
    size_t names_cap, names_n;
};

/* ------------------------------------------------------------------ errors */

static int fail(golden_reader *r, long line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->failed = 1;
    r->err_line = line;
    return -1;
}

/* ------------------------------------------------------------------ reader lifetime */

static golden_reader *reader_new(void)
{
    golden_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->line_cap = 256;
    r->line = malloc(r->line_cap);
    if (!r->line) {
        free(r);
        return NULL;
    }
    return r;
}

golden_reader *golden_reader_from_file(FILE *f)
{
    if (!f) return NULL;
    golden_reader *r = reader_new();
    if (!r) return NULL;
    r->chunk = malloc(CHUNK);
    if (!r->chunk) {
        golden_reader_free(r);
        return NULL;
    }
    r->f = f;
    return r;
}

golden_reader *golden_reader_from_mem(const char *buf, size_t len)
{
    if (!buf && len) return NULL;
    golden_reader *r = reader_new();
    if (!r) return NULL;
    r->mem = buf ? buf : "";
    r->mem_len = len;
    return r;
}

void golden_reader_free(golden_reader *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->names_cap; i++) free(r->names[i]);
    free(r->names);
    free(r->chunk);
    free(r->line);
    free(r);
}

long golden_reader_lines(const golden_reader *r) { return r ? r->lineno : 0; }

/* ------------------------------------------------------------------ lines */

static int line_append(golden_reader *r, const char *s, size_t n)
{
    if (memchr(s, '\0', n)) return fail(r, r->lineno + 1, "NUL byte in line");
    if (n > GOLDEN_MAX_LINE - r->line_len)
        return fail(r, r->lineno + 1, "line longer than %u bytes", (unsigned)GOLDEN_MAX_LINE);
    if (r->line_len + n + 1 > r->line_cap) {
        size_t cap = r->line_cap;
        while (cap < r->line_len + n + 1) cap *= 2;
        char *p = realloc(r->line, cap);
        if (!p) return fail(r, r->lineno + 1, "out of memory reading a line");
        r->line = p;
        r->line_cap = cap;
    }
    memcpy(r->line + r->line_len, s, n);
    r->line_len += n;
    r->line[r->line_len] = '\0';
    return 0;
}

/* Next available bytes of the source: sets *p, *n (0 at end of input). -1 on a read error. */
static int source_bytes(golden_reader *r, const char **p, size_t *n)
{
    if (!r->f) {
        *p = r->mem + r->mem_pos;
        *n = r->mem_len - r->mem_pos;
        return 0;
    }
    if (r->chunk_pos == r->chunk_len && !r->at_eof) {
        r->chunk_len = fread(r->chunk, 1, CHUNK, r->f);
        r->chunk_pos = 0;
        if (r->chunk_len < CHUNK) {
            if (ferror(r->f)) return fail(r, r->lineno + 1, "read error");
            r->at_eof = 1;
        }
    }
    *p = r->chunk + r->chunk_pos;
    *n = r->chunk_len - r->chunk_pos;
    return 0;
}

static void source_consume(golden_reader *r, size_t n)
{
    if (r->f)
        r->chunk_pos += n;
    else
        r->mem_pos += n;
}

/* Reads the next line into r->line. 1: a line; 0: end of input; -1: error. */
static int read_line(golden_reader *r)
{
    r->line_len = 0;
    r->line[0] = '\0';
    int got = 0;
    for (;;) {
        const char *p = NULL;
        size_t n = 0;
        if (source_bytes(r, &p, &n) < 0) return -1;
        if (n == 0) break;
        got = 1;
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (line_append(r, p, take) < 0) return -1;
        source_consume(r, nl ? take + 1 : take);
        if (nl) break;
    }
    if (!got) return 0;
    r->lineno++;
    if (r->line_len && r->line[r->line_len - 1] == '\r') r->line[--r->line_len] = '\0';
    return 1;
}

/* ------------------------------------------------------------------ tokens */

static int is_space(char c) { return c == ' ' || c == '\t'; }

static const char *skip_space(const char *p)
{
    while (is_space(*p)) p++;
    return p;
}

/* Token at p (after skipping blanks): its start and length; returns the position after it. */
static const char *token(const char *p, const char **start, size_t *len)
{
    p = skip_space(p);
    *start = p;
    while (*p && !is_space(*p)) p++;
    *len = (size_t)(p - *start);
    return p;
}

static int tok_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

static size_t count_tokens(const char *p)
{
    size_t n = 0;
    for (;;) {
        p = skip_space(p);
        if (!*p) return n;
        n++;
        while (*p && !is_space(*p)) p++;
    }
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Parses exactly n finite numbers from p into a new array (*out). */
static int parse_numbers(golden_reader *r, const char *p, int64_t n, const char *what,
                         double **out)
{
    *out = NULL;
    size_t have = count_tokens(p);
    if ((int64_t)have != n)
        return fail(r, r->lineno, "%s: expected %lld numbers, found %zu", what, (long long)n, have);
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) return fail(r, r->lineno, "%s: out of memory", what);
    for (int64_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        const char *next = token(p, &s, &len);
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end != s + len || len == 0) {
            free(v);
            return fail(r, r->lineno, "%s: number %lld is not a number: '%.*s'", what,
                        (long long)i + 1, (int)(len > 40 ? 40 : len), s);
        }
        if (!isfinite(x)) {
            free(v);
            return fail(r, r->lineno, "%s: number %lld is not finite: '%.*s'", what,
                        (long long)i + 1, (int)(len > 40 ? 40 : len), s);
        }
        v[i] = x;
        p = next;
    }
    *out = v;
    return 0;
}

/* A positive decimal integer token (digits only) no larger than max. */
static int parse_count(const char *s, size_t len, int64_t max, int64_t *out)
{
    if (len == 0 || len > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > max) return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------ name set */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* 1 if name was already present, 0 if added, -1 on allocation failure. */
static int names_add(golden_reader *r, const char *name)
{
    if (2 * (r->names_n + 1) > r->names_cap) {
        size_t cap = r->names_cap ? 2 * r->names_cap : 64;
        char **t = calloc(cap, sizeof *t);
        if (!t) return -1;
        for (size_t i = 0; i < r->names_cap; i++) {
            if (!r->names[i]) continue;
            size_t j = (size_t)hash_str(r->names[i]) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = r->names[i];
        }
        free(r->names);
        r->names = t;
        r->names_cap = cap;
    }
    size_t j = (size_t)hash_str(name) & (r->names_cap - 1);
    for (; r->names[j]; j = (j + 1) & (r->names_cap - 1))
        if (strcmp(r->names[j], name) == 0) return 1;
    r->names[j] = dup_n(name, strlen(name));
    if (!r->names[j]) return -1;
    r->names_n++;
    return 0;
}

/* ------------------------------------------------------------------ cases */

void golden_case_free(golden_case *c)
{
    if (!c) return;
    free(c->name);
    free(c->method);
    free(c->source);
    for (size_t i = 0; i < c->n_params; i++) {
        free(c->params[i].name);
        free(c->params[i].value);
    }
    free(c->params);
    for (size_t i = 0; i < c->n_G; i++) free(c->G_blocks[i]);
    free(c->G_blocks);
    for (size_t i = 0; i < c->n_steps; i++) {
        free(c->steps[i].losses);
        free(c->steps[i].uniform);
        free(c->steps[i].expect_weights);
        free(c->steps[i].expect_direction);
    }
    free(c->steps);
    free(c);
}

const char *golden_case_param(const golden_case *c, const char *name)
{
    if (!c || !name) return NULL;
    for (size_t i = 0; i < c->n_params; i++)
        if (strcmp(c->params[i].name, name) == 0) return c->params[i].value;
    return NULL;
}

static int ends_with_kd(const char *s, size_t n)
{
    /* "-k<digits>-d<digits>" at the end; returns its length or 0 */
    size_t i = n;
    while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') i--;
    if (i == n || i < 2 || s[i - 1] != 'd' || s[i - 2] != '-') return 0;
    i -= 2;
    size_t j = i;
    while (j > 0 && s[j - 1] >= '0' && s[j - 1] <= '9') j--;
    if (j == i || j < 2 || s[j - 1] != 'k' || s[j - 2] != '-') return 0;
    return (int)(n - (j - 2));
}

void golden_case_group(const golden_case *c, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    buf[0] = '\0';
    if (!c || !c->name) return;
    const char *s = c->name;
    size_t n = strlen(s);
    size_t kd = (size_t)ends_with_kd(s, n);
    if (kd) {
        n -= kd;
        /* drop the kind: the last "-..." part, unless that would leave nothing */
        size_t i = n;
        while (i > 0 && s[i - 1] != '-') i--;
        if (i > 1) n = i - 1;
    }
    if (n >= len) n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* The value of a param line: rest minus a trailing "(...)" explanation, trimmed. */
static char *param_value(const char *rest)
{
    const char *s = skip_space(rest);
    size_t n = strlen(s);
    while (n && is_space(s[n - 1])) n--;
    if (n && s[n - 1] == ')') {
        int depth = 0;
        size_t i = n;
        while (i > 0) {
            i--;
            if (s[i] == ')') depth++;
            else if (s[i] == '(' && --depth == 0) break;
        }
        if (depth == 0 && s[i] == '(' && i > 0 && is_space(s[i - 1])) {
            n = i;
            while (n && is_space(s[n - 1])) n--;
        }
    }
    return dup_n(s, n);
}

/* The step being built (its arrays move into the case when expect_direction closes it). */
typedef struct step_acc {
    double *losses, *uniform, *weights;
    int rank; /* last body item seen in this step: 0 none, 1 G, 2 losses, 3 uniform, 4 weights */
} step_acc;

static void step_acc_free(step_acc *s)
{
    free(s->losses);
    free(s->uniform);
    free(s->weights);
    memset(s, 0, sizeof *s);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t max)
{
    if (need <= *cap) return 0;
    if (need > max) return -1;
    size_t c = *cap ? *cap : 4;
    while (c < need) c *= 2;
    if (c > max) c = max;
    void *p = realloc(*arr, c * elem);
    if (!p) return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* Reads the next significant line (skips blank and comment lines). 1, 0 at EOF, -1 error. */
static int next_significant(golden_reader *r)
{
    for (;;) {
        int rc = read_line(r);
        if (rc <= 0) return rc;
        if (r->line[0] == '#') continue;
        if (*skip_space(r->line) == '\0') continue;
        return 1;
    }
}

/* Reads the k rows of a G block into a new k x d array. */
static int read_G(golden_reader *r, const golden_case *c, double **out)
{
    *out = NULL;
    double *G = NULL;
    size_t cap_rows = 0;
    long g_line = r->lineno;
    for (int64_t i = 0; i < c->k; i++) {
        int rc = next_significant(r);
        if (rc < 0) {
            free(G);
            return -1;
        }
        if (rc == 0) {
            free(G);
            return fail(r, r->lineno, "end of file inside the G block of line %ld: %lld of %lld rows",
                        g_line, (long long)i, (long long)c->k);
        }
        char what[64];
        snprintf(what, sizeof what, "G row %lld of %lld", (long long)i + 1, (long long)c->k);
        double *row;
        if (parse_numbers(r, r->line, c->d, what, &row) < 0) {
            free(G);
            return -1;
        }
        /* grow by rows so memory follows the input actually read */
        if ((size_t)i + 1 > cap_rows) {
            size_t nc = cap_rows ? 2 * cap_rows : 1;
            if (nc > (size_t)c->k) nc = (size_t)c->k;
            double *p = realloc(G, nc * (size_t)c->d * sizeof *G);
            if (!p) {
                free(row);
                free(G);
                return fail(r, r->lineno, "out of memory for the G block");
            }
            G = p;
            cap_rows = nc;
        }
        memcpy(G + i * c->d, row, (size_t)c->d * sizeof *row);
        free(row);
    }
    *out = G;
    return 0;
}

/* Header line "k <k> d <d>". */
static int parse_kd(golden_reader *r, const char *rest, golden_case *c)
{
    const char *s[3];
    size_t n[3];
    const char *p = rest;
    for (int i = 0; i < 3; i++) p = token(p, &s[i], &n[i]);
    if (count_tokens(rest) != 3 || !tok_is(s[1], n[1], "d"))
        return fail(r, r->lineno, "expected 'k <k> d <d>'");
    if (parse_count(s[0], n[0], GOLDEN_MAX_K, &c->k) < 0)
        return fail(r, r->lineno, "k must be an integer in [1, %d], got '%.*s'", GOLDEN_MAX_K,
                    (int)(n[0] > 40 ? 40 : n[0]), s[0]);
    if (parse_count(s[2], n[2], GOLDEN_MAX_D, &c->d) < 0)
        return fail(r, r->lineno, "d must be an integer in [1, %d], got '%.*s'", GOLDEN_MAX_D,
                    (int)(n[2] > 40 ? 40 : n[2]), s[2]);
    return 0;
}

typedef struct case_build {
    golden_case *c;
    size_t cap_params, cap_G, cap_steps;
    int have_kd, have_tol;
    const double *G_cur; /* G in effect */
    step_acc acc;
} case_build;

static int header_line(golden_reader *r, case_build *b, const char *kw, size_t kwlen,
                       const char *rest)
{
    golden_case *c = b->c;
    if (tok_is(kw, kwlen, "method")) {
        const char *s;
        size_t n;
        token(rest, &s, &n);
        if (c->method) return fail(r, r->lineno, "duplicate 'method' line");
        if (count_tokens(rest) != 1 || n > GOLDEN_MAX_NAME)
            return fail(r, r->lineno, "expected 'method <name>'");
        if (!(c->method = dup_n(s, n))) return fail(r, r->lineno, "out of memory");
        return 0;
    }
    if (tok_is(kw, kwlen, "source")) {
        if (c->source) return fail(r, r->lineno, "duplicate 'source' line");
        const char *s = skip_space(rest);
        if (!*s) return fail(r, r->lineno, "empty 'source' line");
        if (!(c->source = dup_n(s, strlen(s)))) return fail(r, r->lineno, "out of memory");
        return 0;
    }
    if (tok_is(kw, kwlen, "param")) {
        const char *s;
        size_t n;
        const char *after = token(rest, &s, &n);
        if (n == 0) return fail(r, r->lineno, "expected 'param <name> <value>'");
        if (n > GOLDEN_MAX_NAME) return fail(r, r->lineno, "param name too long");
        for (size_t i = 0; i < c->n_params; i++)
            if (tok_is(s, n, c->params[i].name))
                return fail(r, r->lineno, "duplicate param '%.*s'", (int)n, s);
        if (grow((void **)&c->params, &b->cap_params, c->n_params + 1, sizeof *c->params,
                 GOLDEN_MAX_PARAMS) < 0)
            return fail(r, r->lineno, "more than %d params (or out of memory)", GOLDEN_MAX_PARAMS);
        golden_param *p = &c->params[c->n_params];
        p->name = dup_n(s, n);
        p->value = param_value(after);
        if (!p->name || !p->value) {
            free(p->name);
            free(p->value);
            return fail(r, r->lineno, "out of memory");
        }
        c->n_params++;
        if (!*p->value) return fail(r, r->lineno, "param '%s' has no value", p->name);
        return 0;
    }
    if (tok_is(kw, kwlen, "k")) {
        if (!c->method) return fail(r, r->lineno, "'k' line before the 'method' line");
        if (parse_kd(r, rest, c) < 0) return -1;
        b->have_kd = 1;
        return 0;
    }
    return fail(r, r->lineno, "unexpected '%.*s' before the 'k <k> d <d>' line",
                (int)(kwlen > 40 ? 40 : kwlen), kw);
}

/* rank of a body keyword inside a step (the order the README prescribes), 0 if none */
static int body_rank(const char *kw, size_t n)
{
    if (tok_is(kw, n, "G")) return 1;
    if (tok_is(kw, n, "losses")) return 2;
    if (tok_is(kw, n, "uniform")) return 3;
    if (tok_is(kw, n, "expect_weights")) return 4;
    if (tok_is(kw, n, "expect_direction")) return 5;
    return 0;
}

static const char *rank_name(int rank)
{
    static const char *names[] = {"", "G", "losses", "uniform", "expect_weights",
                                  "expect_direction"};
    return names[rank];
}

static int close_step(golden_reader *r, case_build *b, double *dir)
{
    golden_case *c = b->c;
    if (grow((void **)&c->steps, &b->cap_steps, c->n_steps + 1, sizeof *c->steps,
             GOLDEN_MAX_STEPS) < 0) {
        free(dir);
        return fail(r, r->lineno, "more than %d steps (or out of memory)", GOLDEN_MAX_STEPS);
    }
    golden_step *s = &c->steps[c->n_steps++];
    s->G = b->G_cur;
    s->losses = b->acc.losses;
    s->uniform = b->acc.uniform;
    s->expect_weights = b->acc.weights;
    s->expect_direction = dir;
    s->line = r->lineno;
    memset(&b->acc, 0, sizeof b->acc);
    return 0;
}

static int body_line(golden_reader *r, case_build *b, const char *kw, size_t kwlen,
                     const char *rest)
{
    golden_case *c = b->c;
    int rank = body_rank(kw, kwlen);
    if (tok_is(kw, kwlen, "tol")) {
        if (b->acc.rank) return fail(r, r->lineno, "'tol' inside an unfinished step (no expect_direction after its %s line)", rank_name(b->acc.rank));
        if (c->n_steps == 0) return fail(r, r->lineno, "'tol' before any expect_direction line");
        double *t;
        if (parse_numbers(r, rest, 1, "tol", &t) < 0) return -1;
        c->tol = t[0];
        free(t);
        if (c->tol < 0) return fail(r, r->lineno, "tol must be >= 0");
        b->have_tol = 1;
        return 0;
    }
    if (!rank)
        return fail(r, r->lineno, "unknown keyword '%.*s' in the body of a case",
                    (int)(kwlen > 40 ? 40 : kwlen), kw);
    if (rank <= b->acc.rank)
        return fail(r, r->lineno, "'%s' after '%s' in the same step (order: G, losses, uniform, expect_weights, expect_direction)",
                    rank_name(rank), rank_name(b->acc.rank));
    if (rank == 1) {
        if (count_tokens(rest) != 0) return fail(r, r->lineno, "'G' line must stand alone");
        if (grow((void **)&c->G_blocks, &b->cap_G, c->n_G + 1, sizeof *c->G_blocks,
                 (size_t)GOLDEN_MAX_STEPS + 1) < 0)
            return fail(r, r->lineno, "too many G blocks (or out of memory)");
        double *G;
        b->acc.rank = 1; /* before read_G so an error inside leaves the state consistent */
        if (read_G(r, c, &G) < 0) return -1;
        c->G_blocks[c->n_G++] = G;
        b->G_cur = G;
        return 0;
    }
    if (!b->G_cur) return fail(r, r->lineno, "'%s' before any G block", rank_name(rank));
    int64_t n = (rank == 2 || rank == 4) ? c->k : c->d;
    double *v;
    if (parse_numbers(r, rest, n, rank_name(rank), &v) < 0) return -1;
    b->acc.rank = rank;
    if (rank == 2) b->acc.losses = v;
    if (rank == 3) b->acc.uniform = v;
    if (rank == 4) b->acc.weights = v;
    if (rank == 5) return close_step(r, b, v);
    return 0;
}

/* Reads the lines of one case after its `case` line, up to and including `end`. */
static int read_case_body(golden_reader *r, case_build *b)
{
    golden_case *c = b->c;
    for (;;) {
        int rc = next_significant(r);
        if (rc < 0) return -1;
        if (rc == 0)
            return fail(r, r->lineno, "end of file inside case '%s' (line %ld): no 'end' line",
                        c->name, c->line);
        const char *kw;
        size_t kwlen;
        const char *rest = token(r->line, &kw, &kwlen);
        if (kw != r->line)
            return fail(r, r->lineno, "line starts with a blank");
        if (tok_is(kw, kwlen, "case"))
            return fail(r, r->lineno, "'case' line inside case '%s' (line %ld): missing 'end'",
                        c->name, c->line);
        if (tok_is(kw, kwlen, "end")) {
            if (count_tokens(rest) != 0) return fail(r, r->lineno, "'end' line must stand alone");
            if (!b->have_kd) return fail(r, r->lineno, "'end' before the 'k <k> d <d>' line");
            if (!b->have_tol) return fail(r, r->lineno, "'end' without a 'tol' line");
            c->end_line = r->lineno;
            return 0;
        }
        if (b->have_tol)
            return fail(r, r->lineno, "'%.*s' after 'tol' (only 'end' may follow)",
                        (int)(kwlen > 40 ? 40 : kwlen), kw);
        if (b->have_kd) {
            if (body_line(r, b, kw, kwlen, rest) < 0) return -1;
        } else if (header_line(r, b, kw, kwlen, rest) < 0) {
            return -1;
        }
    }
}

int golden_next(golden_reader *r, golden_case **out, long *line, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!r || !out) return -1;
    int rc = r->failed ? -1 : next_significant(r);
    if (rc == 0) return 0;
    case_build b;
    memset(&b, 0, sizeof b);
    if (rc > 0) {
        const char *kw, *name;
        size_t kwlen, namelen;
        const char *rest = token(r->line, &kw, &kwlen);
        token(rest, &name, &namelen);
        if (kw != r->line || !tok_is(kw, kwlen, "case"))
            rc = fail(r, r->lineno, "expected 'case <name>', got '%.*s'",
                      (int)(kwlen > 40 ? 40 : kwlen), kw);
        else if (count_tokens(rest) != 1 || namelen > GOLDEN_MAX_NAME)
            rc = fail(r, r->lineno, "expected 'case <name>' (one name of at most %d bytes)",
                      GOLDEN_MAX_NAME);
        else if (!(b.c = calloc(1, sizeof *b.c)) || !(b.c->name = dup_n(name, namelen)))
            rc = fail(r, r->lineno, "out of memory");
        else {
            b.c->line = r->lineno;
            int dup = names_add(r, b.c->name);
            if (dup < 0) rc = fail(r, r->lineno, "out of memory");
            else if (dup > 0) rc = fail(r, r->lineno, "duplicate case name '%s'", b.c->name);
            else rc = read_case_body(r, &b);
        }
    }
    if (rc < 0) {
        step_acc_free(&b.acc);
        golden_case_free(b.c);
        if (line) *line = r->err_line;
        if (err && errlen) snprintf(err, errlen, "%s", r->err);
        return -1;
    }
    *out = b.c;
    return 1;
}
