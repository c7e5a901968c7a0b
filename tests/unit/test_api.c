/* Public API under bad input: every failure must return the documented status, leave a message
 * that names the offending argument, and leave the aggregator usable. Also: parameters (parsing,
 * ranges, round trips, defaults of every method), save/load, status strings, versions, and the
 * public simplex projection (checked against the projection's variational inequality). */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define K 3
#define D 5

static const double G64[K * D] = {1, 2, 3, 4, 5, -1, 0, 2, 1, -3, 0.5, 0.25, -2, 3, 1};
static const double LOSSES[K] = {1.5, 0.7, 2.25};

/* The status is the expected one and the message contains `needle` (case-sensitive). */
#define CHECK_FAIL(got, want, msg, needle, ...)                                                  \
    do {                                                                                         \
        mtgrad_status got_ = (got);                                                              \
        const char *msg_ = (msg);                                                                \
        CHECK(got_ == (want), "status %d (%s), want %d: ", (int)got_, mtgrad_status_str(got_),    \
              (int)(want));                                                                      \
        CHECK(msg_ && strstr(msg_, (needle)) != NULL, "message '%s' lacks '%s'", msg_ ? msg_ : "", \
              (needle));                                                                         \
        (void)0, __VA_ARGS__;                                                                    \
    } while (0)

/* Placeholder method files (being written) answer every call with "not implemented yet";
 * the per-method loops skip them with one note instead of a page of failures. */
static int placeholder(const mtgrad_method *m)
{
    mtgrad_aggregator *a = NULL;
    if (mtgrad_aggregator_new(&a, mtgrad_method_name(m), K, NULL, NULL, 0) != MTGRAD_OK) return 0;
    double dir[D];
    mtgrad_status s = mtgrad_aggregate_f64(a, G64, K, D, D, LOSSES, dir, NULL);
    int ph = s == MTGRAD_E_UNSUPPORTED && strstr(mtgrad_aggregator_error(a), "not implemented");
    mtgrad_aggregator_free(a);
    if (ph) printf("note: %s is not implemented yet; its API checks are skipped\n", mtgrad_method_name(m));
    return ph;
}

static mtgrad_aggregator *make(const char *method, int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&a, method, k, params, err, sizeof err);
    CHECK(s == MTGRAD_OK && a != NULL, "new(%s, k=%lld, '%s'): %s", method, (long long)k,
          params ? params : "(null)", err);
    return a;
}

/* a "mean" aggregator still works: the direction of G64 is the column mean */
static void check_usable(mtgrad_aggregator *a, const char *after)
{
    double dir[D], w[K];
    mtgrad_status s = mtgrad_aggregate_f64(a, G64, K, D, D, NULL, dir, w);
    CHECK(s == MTGRAD_OK, "valid call after '%s' failed: %s", after, mtgrad_aggregator_error(a));
    double m0 = (G64[0] + G64[5] + G64[10]) / 3;
    CHECK(s == MTGRAD_OK && fabs(dir[0] - m0) < 1e-15, "mean after '%s': %g vs %g", after, dir[0], m0);
}

/* ------------------------------------------------------------------ aggregate / gram entries */

static void test_aggregate_args(void)
{
    mtgrad_aggregator *a = make("mean", K, NULL);
    double dir[D], w[K];
    float Gf[K * D], dirf[D];
    for (int i = 0; i < K * D; i++) Gf[i] = (float)G64[i];

    CHECK(mtgrad_aggregate_f64(NULL, G64, K, D, D, NULL, dir, w) == MTGRAD_E_INVAL, "NULL agg");
    CHECK(mtgrad_aggregate_f32(NULL, Gf, K, D, D, NULL, dirf, w) == MTGRAD_E_INVAL, "NULL agg");
    CHECK_FAIL(mtgrad_aggregate_f64(a, NULL, K, D, D, NULL, dir, w), MTGRAD_E_INVAL,
               mtgrad_aggregator_error(a), "G", check_usable(a, "G NULL"));
    CHECK_FAIL(mtgrad_aggregate_f32(a, NULL, K, D, D, NULL, dirf, w), MTGRAD_E_INVAL,
               mtgrad_aggregator_error(a), "G", check_usable(a, "G NULL f32"));
    CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K, D, D, NULL, NULL, w), MTGRAD_E_INVAL,
               mtgrad_aggregator_error(a), "direction", check_usable(a, "direction NULL"));
    CHECK_FAIL(mtgrad_aggregate_f32(a, Gf, K, D, D, NULL, NULL, w), MTGRAD_E_INVAL,
               mtgrad_aggregator_error(a), "direction", check_usable(a, "direction NULL f32"));
    CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K - 1, D, D, NULL, dir, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "k =", check_usable(a, "k mismatch"));
    CHECK_FAIL(mtgrad_aggregate_f64(a, G64, 0, D, D, NULL, dir, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "k =", check_usable(a, "k = 0"));
    CHECK_FAIL(mtgrad_aggregate_f64(a, G64, -2, D, D, NULL, dir, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "k =", check_usable(a, "k < 0"));
    CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K, 0, D, NULL, dir, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "d =", check_usable(a, "d = 0"));
    CHECK_FAIL(mtgrad_aggregate_f32(a, Gf, K, -1, D, NULL, dirf, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "d =", check_usable(a, "d < 0"));
    CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K, D, D - 1, NULL, dir, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "ldg", check_usable(a, "ldg < d"));
    /* a strided G (ldg > d) is fine: rows of 2 out of 5 */
    CHECK(mtgrad_aggregate_f64(a, G64, K, 2, D, NULL, dir, w) == MTGRAD_OK, "ldg > d");
    CHECK(fabs(dir[1] - (G64[1] + G64[6] + G64[11]) / 3) < 1e-15, "strided mean %g", dir[1]);
    CHECK(strcmp(mtgrad_aggregator_error(a), "") == 0, "error cleared after success: '%s'",
          mtgrad_aggregator_error(a));
    mtgrad_aggregator_free(a);
}

/* NaN/Inf in G (first/last element, both precisions) for every method: E_NONFINITE, a message
 * naming G, no state change (the next clean call gives the fresh aggregator's bits). */
static void test_nonfinite_G(void)
{
    const double bad[2] = {NAN, INFINITY};
    for (size_t mi = 0; mi < mtgrad_method_count(); mi++) {
        const mtgrad_method *m = mtgrad_method_at(mi);
        const char *mn = mtgrad_method_name(m);
        unsigned fl = mtgrad_method_flags(m);
        const double *L = (fl & MTGRAD_NEEDS_LOSSES) ? LOSSES : NULL;
        if (placeholder(m)) continue;
        for (int b = 0; b < 2; b++)
            for (int pos = 0; pos < 2; pos++)
                for (int prec = 0; prec < 2; prec++) {
                    mtgrad_aggregator *a = make(mn, K, NULL);
                    if (!a) continue;
                    double G[K * D], dir[D];
                    float Gf[K * D], dirf[D];
                    memcpy(G, G64, sizeof G);
                    G[pos ? K * D - 1 : 0] = bad[b];
                    for (int i = 0; i < K * D; i++) Gf[i] = (float)G[i];
                    mtgrad_status s = prec ? mtgrad_aggregate_f32(a, Gf, K, D, D, L, dirf, NULL)
                                           : mtgrad_aggregate_f64(a, G, K, D, D, L, dir, NULL);
                    CHECK(s == MTGRAD_E_NONFINITE, "%s: %s at %s of G (%s): status %d (%s)", mn,
                          b ? "Inf" : "NaN", pos ? "last" : "first", prec ? "f32" : "f64", (int)s,
                          mtgrad_aggregator_error(a));
                    CHECK(strstr(mtgrad_aggregator_error(a), "G") != NULL,
                          "%s: message '%s' does not name G", mn, mtgrad_aggregator_error(a));
                    mtgrad_aggregator_free(a);
                }
    }
}

/* Loss methods: NULL losses -> E_INVAL naming losses; NaN/Inf loss -> E_NONFINITE. */
static void test_losses(void)
{
    for (size_t mi = 0; mi < mtgrad_method_count(); mi++) {
        const mtgrad_method *m = mtgrad_method_at(mi);
        if (!(mtgrad_method_flags(m) & MTGRAD_NEEDS_LOSSES)) continue;
        const char *mn = mtgrad_method_name(m);
        mtgrad_aggregator *a = make(mn, K, NULL);
        if (!a) continue;
        double dir[D], L[K];
        CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K, D, D, NULL, dir, NULL), MTGRAD_E_INVAL,
                   mtgrad_aggregator_error(a), "losses", (void)0);
        for (int pos = 0; pos < K; pos += K - 1) {
            memcpy(L, LOSSES, sizeof L);
            L[pos] = NAN;
            CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K, D, D, L, dir, NULL), MTGRAD_E_NONFINITE,
                       mtgrad_aggregator_error(a), "losses", (void)0);
            L[pos] = -INFINITY;
            CHECK_FAIL(mtgrad_aggregate_f64(a, G64, K, D, D, L, dir, NULL), MTGRAD_E_NONFINITE,
                       mtgrad_aggregator_error(a), "losses", (void)0);
        }
        double M[K * K], w[K];
        mtgradi_mat gm = {NULL, G64, K, D, D};
        mtgradi_gram_ref(&gm, M);
        if (!(mtgrad_method_flags(m) & MTGRAD_NEEDS_JACOBIAN))
            CHECK_FAIL(mtgrad_weights_from_gram(a, M, K, NULL, w), MTGRAD_E_INVAL,
                       mtgrad_aggregator_error(a), "losses", (void)0);
        mtgrad_aggregator_free(a);
    }
}

static void test_weights_from_gram(void)
{
    mtgrad_aggregator *a = make("mean", K, NULL);
    double M[K * K], w[K];
    mtgradi_mat gm = {NULL, G64, K, D, D};
    mtgradi_gram_ref(&gm, M);
    CHECK(mtgrad_weights_from_gram(NULL, M, K, NULL, w) == MTGRAD_E_INVAL, "NULL aggregator");
    CHECK_FAIL(mtgrad_weights_from_gram(a, M, K, NULL, NULL), MTGRAD_E_INVAL,
               mtgrad_aggregator_error(a), "weights", check_usable(a, "weights NULL"));
    CHECK_FAIL(mtgrad_weights_from_gram(a, M, K + 1, NULL, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "k =", check_usable(a, "gram k mismatch"));
    CHECK_FAIL(mtgrad_weights_from_gram(a, M, 0, NULL, w), MTGRAD_E_SHAPE,
               mtgrad_aggregator_error(a), "k =", check_usable(a, "gram k = 0"));
    double Mbad[K * K];
    memcpy(Mbad, M, sizeof M);
    Mbad[K * K - 1] = NAN;
    CHECK_FAIL(mtgrad_weights_from_gram(a, Mbad, K, NULL, w), MTGRAD_E_NONFINITE,
               mtgrad_aggregator_error(a), "M", check_usable(a, "NaN in M"));
    memcpy(Mbad, M, sizeof M);
    Mbad[4] = -1; /* M[1][1] < 0 cannot be a Gram matrix */
    CHECK_FAIL(mtgrad_weights_from_gram(a, Mbad, K, NULL, w), MTGRAD_E_INVAL,
               mtgrad_aggregator_error(a), "M", check_usable(a, "negative diagonal"));
    /* mean does not need M */
    CHECK(mtgrad_weights_from_gram(a, NULL, K, NULL, w) == MTGRAD_OK && fabs(w[2] - 1.0 / 3) < 1e-16,
          "mean from no M: %s", mtgrad_aggregator_error(a));
    mtgrad_aggregator_free(a);

    /* Gram methods need M; Jacobian methods cannot work from M; no-weight methods refuse w */
    for (size_t mi = 0; mi < mtgrad_method_count(); mi++) {
        const mtgrad_method *m = mtgrad_method_at(mi);
        unsigned fl = mtgrad_method_flags(m);
        const char *mn = mtgrad_method_name(m);
        mtgrad_aggregator *b = make(mn, K, NULL);
        if (!b) continue;
        const double *L = (fl & MTGRAD_NEEDS_LOSSES) ? LOSSES : NULL;
        if (fl & MTGRAD_NEEDS_JACOBIAN)
            CHECK_FAIL(mtgrad_weights_from_gram(b, M, K, L, w), MTGRAD_E_UNSUPPORTED,
                       mtgrad_aggregator_error(b), mn, (void)0);
        else if (fl & MTGRAD_NEEDS_GRAM)
            CHECK_FAIL(mtgrad_weights_from_gram(b, NULL, K, L, w), MTGRAD_E_INVAL,
                       mtgrad_aggregator_error(b), "M", (void)0);
        if (!(fl & MTGRAD_HAS_WEIGHTS)) {
            double dir[D];
            CHECK_FAIL(mtgrad_aggregate_f64(b, G64, K, D, D, L, dir, w), MTGRAD_E_UNSUPPORTED,
                       mtgrad_aggregator_error(b), "weights", (void)0);
        }
        if (!(fl & MTGRAD_NEEDS_LOSSES_AFTER))
            CHECK_FAIL(mtgrad_aggregator_update(b, LOSSES, K), MTGRAD_E_UNSUPPORTED,
                       mtgrad_aggregator_error(b), mn, (void)0);
        else {
            CHECK_FAIL(mtgrad_aggregator_update(b, NULL, K), MTGRAD_E_INVAL,
                       mtgrad_aggregator_error(b), "losses_after", (void)0);
            CHECK_FAIL(mtgrad_aggregator_update(b, LOSSES, K + 1), MTGRAD_E_SHAPE,
                       mtgrad_aggregator_error(b), "k =", (void)0);
        }
        if (!(fl & MTGRAD_NEEDS_RANDOM)) {
            double dr[1] = {0.5};
            CHECK_FAIL(mtgrad_aggregator_set_draws(b, dr, 1), MTGRAD_E_UNSUPPORTED,
                       mtgrad_aggregator_error(b), mn, (void)0);
        } else {
            CHECK_FAIL(mtgrad_aggregator_set_draws(b, NULL, 3), MTGRAD_E_INVAL,
                       mtgrad_aggregator_error(b), "draws", (void)0);
        }
        mtgrad_aggregator_free(b);
    }
    CHECK(mtgrad_aggregator_update(NULL, LOSSES, K) == MTGRAD_E_INVAL, "update NULL");
    CHECK(mtgrad_aggregator_set_draws(NULL, LOSSES, K) == MTGRAD_E_INVAL, "set_draws NULL");
    CHECK(mtgrad_aggregator_reset(NULL) == MTGRAD_E_INVAL, "reset NULL");
}

/* ------------------------------------------------------------------ creation and parameters */

static void expect_new_fails(const char *method, int64_t k, const char *params, mtgrad_status want,
                             const char *needle)
{
    mtgrad_aggregator *a = (mtgrad_aggregator *)&a; /* must be overwritten with NULL */
    char err[256] = "untouched";
    mtgrad_status s = mtgrad_aggregator_new(&a, method, k, params, err, sizeof err);
    CHECK(s == want, "new(%s, %lld, '%s'): status %d, want %d (%s)", method ? method : "(null)",
          (long long)k, params ? params : "(null)", (int)s, (int)want, err);
    CHECK(a == NULL, "new(%s, '%s') failed but *out is not NULL", method ? method : "(null)",
          params ? params : "(null)");
    CHECK(strstr(err, needle) != NULL, "new(%s, '%s'): message '%s' lacks '%s'",
          method ? method : "(null)", params ? params : "(null)", err, needle);
}

static void test_new(void)
{
    char err[128];
    CHECK(mtgrad_aggregator_new(NULL, "mean", K, NULL, err, sizeof err) == MTGRAD_E_INVAL, "out NULL");
    CHECK(strstr(err, "out") != NULL, "message '%s' lacks 'out'", err);
    expect_new_fails(NULL, K, NULL, MTGRAD_E_INVAL, "method");
    expect_new_fails("no_such_method", K, NULL, MTGRAD_E_INVAL, "no_such_method");
    expect_new_fails("mean", 0, NULL, MTGRAD_E_SHAPE, "k =");
    expect_new_fails("mean", -1, NULL, MTGRAD_E_SHAPE, "k =");
    expect_new_fails("mean", K, "nosuch=1", MTGRAD_E_INVAL, "nosuch");
    expect_new_fails("mean", K, "threads", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "threads=", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "=1", MTGRAD_E_INVAL, "unknown parameter");
    expect_new_fails("mean", K, "threads=abc", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "threads=1e999", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "threads=nan", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "threads=0", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "threads=1.5", MTGRAD_E_INVAL, "threads");
    expect_new_fails("mean", K, "seed=-1", MTGRAD_E_INVAL, "seed");
    expect_new_fails("mean", K, "seed=1,threads=x", MTGRAD_E_INVAL, "threads");
    /* err may be NULL; params may be NULL, "" or have blanks and empty items */
    mtgrad_aggregator *a = NULL;
    CHECK(mtgrad_aggregator_new(&a, "mean", K, "bad", NULL, 0) == MTGRAD_E_INVAL && !a, "err NULL");
    a = make("mean", K, "");
    mtgrad_aggregator_free(a);
    a = make("mean", K, " seed = 7 , , threads=2 ");
    char buf[64];
    CHECK(a && mtgrad_aggregator_get_param(a, "seed", buf, sizeof buf) > 0 && strcmp(buf, "7") == 0,
          "seed = '%s'", buf);
    CHECK(a && mtgrad_aggregator_get_param(a, "threads", buf, sizeof buf) > 0 && strcmp(buf, "2") == 0,
          "threads = '%s'", buf);
    CHECK(a && mtgrad_aggregator_k(a) == K, "k");
    CHECK(a && mtgrad_aggregator_method(a) == mtgrad_method_by_name("mean"), "method");
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(NULL); /* no-op */
    CHECK(mtgrad_aggregator_k(NULL) == 0 && mtgrad_aggregator_method(NULL) == NULL, "NULL getters");
    const char *e = mtgrad_aggregator_error(NULL);
    CHECK(e && e[0], "error(NULL) is a static non-empty message");
}

/* set_param failure: status E_INVAL, message naming the parameter, value unchanged. */
static void expect_set_fails(mtgrad_aggregator *a, const char *name, const char *value)
{
    char before[512], after[512];
    int nb = mtgrad_aggregator_get_param(a, name, before, sizeof before);
    mtgrad_status s = mtgrad_aggregator_set_param(a, name, value);
    const char *mn = mtgrad_method_name(mtgrad_aggregator_method(a));
    CHECK(s == MTGRAD_E_INVAL, "%s: set %s='%s': status %d", mn, name, value, (int)s);
    CHECK(strstr(mtgrad_aggregator_error(a), name) != NULL, "%s: set %s='%s': message '%s'", mn,
          name, value, mtgrad_aggregator_error(a));
    int na = mtgrad_aggregator_get_param(a, name, after, sizeof after);
    CHECK(nb == na && strcmp(before, after) == 0, "%s: %s changed from '%s' to '%s' by a failed set",
          mn, name, before, after);
}

static void fmt(char *buf, size_t len, double v) { snprintf(buf, len, "%.17g", v); }

/* Type-specific checks of one parameter of one method (aggregator with k = K). */
static void check_param(mtgrad_aggregator *a, const mtgrad_param_desc *p)
{
    const char *mn = mtgrad_method_name(mtgrad_aggregator_method(a));
    char v[128], got[512];
    /* the documented default parses back and reads back the same */
    int n = mtgrad_param_default_str(p, v, sizeof v);
    CHECK(n >= 0 && (size_t)n < sizeof v, "%s: default of %s does not fit", mn, p->name);
    CHECK(mtgrad_aggregator_set_param(a, p->name, v) == MTGRAD_OK, "%s: default '%s' of %s: %s",
          mn, v, p->name, mtgrad_aggregator_error(a));
    CHECK(p->doc && p->doc[0], "%s: %s has no doc", mn, p->name);
    if (p->type != MTGRAD_PARAM_REALS) expect_set_fails(a, p->name, ""); /* REALS: "" = empty list */
    switch (p->type) {
    case MTGRAD_PARAM_REAL:
    case MTGRAD_PARAM_INT:
        expect_set_fails(a, p->name, "abc");
        expect_set_fails(a, p->name, "nan");
        expect_set_fails(a, p->name, "inf");
        expect_set_fails(a, p->name, "1e999");
        expect_set_fails(a, p->name, "1x");
        if (p->lo > -1e300) {
            fmt(v, sizeof v, (p->flags & MTGRAD_PARAM_LO_OPEN) ? p->lo : p->lo - fmax(1, fabs(p->lo)));
            expect_set_fails(a, p->name, v);
        }
        if (p->hi < 1e300) {
            fmt(v, sizeof v, (p->flags & MTGRAD_PARAM_HI_OPEN) ? p->hi : p->hi + fmax(1, fabs(p->hi)));
            expect_set_fails(a, p->name, v);
        }
        if (p->type == MTGRAD_PARAM_INT && p->hi > p->lo) {
            fmt(v, sizeof v, p->lo + 0.5);
            expect_set_fails(a, p->name, v);
        }
        /* round trip: get returns text that set accepts and that reads back identically */
        CHECK(mtgrad_aggregator_get_param(a, p->name, got, sizeof got) > 0, "%s: get %s", mn, p->name);
        CHECK(mtgrad_aggregator_set_param(a, p->name, got) == MTGRAD_OK, "%s: set %s = get", mn, p->name);
        CHECK(mtgrad_aggregator_get_param(a, p->name, v, sizeof v) > 0 && strcmp(v, got) == 0,
              "%s: %s round trip '%s' -> '%s'", mn, p->name, got, v);
        break;
    case MTGRAD_PARAM_BOOL: {
        static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
        for (int i = 0; i < 4; i++) {
            CHECK(mtgrad_aggregator_set_param(a, p->name, yes[i]) == MTGRAD_OK, "%s: %s=%s", mn,
                  p->name, yes[i]);
            mtgrad_aggregator_get_param(a, p->name, got, sizeof got);
            CHECK(strcmp(got, "yes") == 0, "%s: %s=%s reads back '%s'", mn, p->name, yes[i], got);
            CHECK(mtgrad_aggregator_set_param(a, p->name, no[i]) == MTGRAD_OK, "%s: %s=%s", mn,
                  p->name, no[i]);
            mtgrad_aggregator_get_param(a, p->name, got, sizeof got);
            CHECK(strcmp(got, "no") == 0, "%s: %s=%s reads back '%s'", mn, p->name, no[i], got);
        }
        expect_set_fails(a, p->name, "maybe");
        expect_set_fails(a, p->name, "2");
        break;
    }
    case MTGRAD_PARAM_CHOICE: {
        expect_set_fails(a, p->name, "no_such_choice");
        const char *c = p->choices;
        while (c && *c) { /* every choice is accepted (unless a cross-check refuses it) */
            const char *bar = strchr(c, '|');
            size_t l = bar ? (size_t)(bar - c) : strlen(c);
            snprintf(v, sizeof v, "%.*s", (int)l, c);
            if (mtgrad_aggregator_set_param(a, p->name, v) == MTGRAD_OK) {
                mtgrad_aggregator_get_param(a, p->name, got, sizeof got);
                CHECK(strcmp(got, v) == 0, "%s: %s=%s reads back '%s'", mn, p->name, v, got);
            } else {
                CHECK(mtgrad_aggregator_error(a)[0] != '\0', "%s: %s=%s refused without message",
                      mn, p->name, v);
            }
            c = bar ? bar + 1 : NULL;
        }
        break;
    }
    case MTGRAD_PARAM_REALS: {
        expect_set_fails(a, p->name, "abc");
        expect_set_fails(a, p->name, "1:nan");
        expect_set_fails(a, p->name, "1:1e999");
        if (p->lo > -1e300) {
            /* one valid element, then one below the range */
            double ok = p->hi < 1e300 ? (p->lo + p->hi) / 2 : p->lo + 1;
            snprintf(v, sizeof v, "%.17g:%.17g", ok, p->lo - fmax(1, fabs(p->lo)));
            expect_set_fails(a, p->name, v);
        }
        /* the default re-read with ' ' as the separator, and get/set round trip */
        mtgrad_param_default_str(p, v, sizeof v);
        for (char *q = v; *q; q++)
            if (*q == ':') *q = ' ';
        CHECK(mtgrad_aggregator_set_param(a, p->name, v) == MTGRAD_OK, "%s: %s='%s'", mn, p->name, v);
        int nr = mtgrad_aggregator_get_param(a, p->name, got, sizeof got);
        CHECK(nr >= 0 && (size_t)nr < sizeof got, "%s: get %s", mn, p->name);
        CHECK(mtgrad_aggregator_set_param(a, p->name, got) == MTGRAD_OK, "%s: set %s = '%s'", mn,
              p->name, got);
        mtgrad_aggregator_get_param(a, p->name, v, sizeof v);
        CHECK(strcmp(v, got) == 0, "%s: %s round trip '%s' -> '%s'", mn, p->name, got, v);
        break;
    }
    }
    /* back to the default; the aggregator is still usable */
    mtgrad_param_default_str(p, v, sizeof v);
    CHECK(mtgrad_aggregator_set_param(a, p->name, v) == MTGRAD_OK, "%s: reset %s", mn, p->name);
}

static void test_params(void)
{
    /* the parameters of every method, and the params string with every default */
    for (size_t mi = 0; mi < mtgrad_method_count(); mi++) {
        const mtgrad_method *m = mtgrad_method_at(mi);
        const char *mn = mtgrad_method_name(m);
        CHECK(mtgrad_method_by_name(mn) == m, "by_name(%s)", mn);
        CHECK(mtgrad_method_summary(m) && mtgrad_method_citation(m), "%s: summary/citation", mn);
        size_t np = mtgrad_method_param_count(m);
        CHECK(np >= 2 && mtgrad_method_param_at(m, np) == NULL, "%s: %zu params", mn, np);
        mtgrad_aggregator *a = make(mn, K, NULL);
        if (!a) continue;
        char all[4096] = "", one[512];
        for (size_t i = 0; i < np; i++) {
            const mtgrad_param_desc *p = mtgrad_method_param_at(m, i);
            check_param(a, p);
            char v[256];
            mtgrad_param_default_str(p, v, sizeof v);
            snprintf(one, sizeof one, "%s%s=%s", i ? "," : "", p->name, v);
            strncat(all, one, sizeof all - strlen(all) - 1);
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(p->name, mtgrad_method_param_at(m, j)->name) != 0,
                      "%s: parameter %s twice", mn, p->name);
        }
        expect_set_fails(a, "seed", "x");
        CHECK_FAIL(mtgrad_aggregator_set_param(a, "no_such_param", "1"), MTGRAD_E_INVAL,
                   mtgrad_aggregator_error(a), "no_such_param", (void)0);
        CHECK(mtgrad_aggregator_set_param(a, NULL, "1") == MTGRAD_E_INVAL, "%s: NULL name", mn);
        CHECK(mtgrad_aggregator_set_param(a, "seed", NULL) == MTGRAD_E_INVAL, "%s: NULL value", mn);
        CHECK(mtgrad_aggregator_get_param(a, "no_such_param", one, sizeof one) == -1, "get unknown");
        CHECK(mtgrad_aggregator_get_param(a, NULL, one, sizeof one) == -1, "get NULL name");
        mtgrad_aggregator_free(a);
        a = make(mn, K, all); /* every default at once, through the params string */
        mtgrad_aggregator_free(a);
    }
    CHECK(mtgrad_aggregator_set_param(NULL, "seed", "1") == MTGRAD_E_INVAL, "set NULL agg");
    char b[8];
    CHECK(mtgrad_aggregator_get_param(NULL, "seed", b, sizeof b) == -1, "get NULL agg");
    CHECK(mtgrad_method_at(mtgrad_method_count()) == NULL, "method_at past the end");
    CHECK(mtgrad_method_by_name(NULL) == NULL && mtgrad_method_by_name("x") == NULL, "by_name");
    CHECK(mtgrad_method_param_count(NULL) == 0 && mtgrad_method_param_at(NULL, 0) == NULL, "NULL m");
    CHECK(mtgrad_param_default_str(NULL, b, sizeof b) == -1, "default_str NULL");
    /* snprintf semantics: the length needed is returned even when the buffer is too small */
    mtgrad_aggregator *a = make("mean", K, "seed=123456789");
    char small[4];
    CHECK(a && mtgrad_aggregator_get_param(a, "seed", small, sizeof small) == 9 && strcmp(small, "123") == 0,
          "truncated get_param '%s'", small);
    CHECK(a && mtgrad_aggregator_get_param(a, "seed", NULL, 0) == 9, "length query");
    mtgrad_aggregator_free(a);
}

/* ------------------------------------------------------------------ save / load */

static void test_state(void)
{
    mtgrad_aggregator *a = make("mean", K, "seed=5"), *b = make("mean", K, NULL);
    mtgrad_aggregator *other = make("sum", K, NULL), *otherk = make("mean", K + 1, NULL);
    if (!a || !b || !other || !otherk) return;
    size_t len = 0;
    CHECK(mtgrad_aggregator_save(a, NULL, &len) == MTGRAD_OK && len > 16, "size query %zu", len);
    CHECK(mtgrad_aggregator_save(NULL, NULL, &len) == MTGRAD_E_INVAL, "save NULL agg");
    CHECK(mtgrad_aggregator_save(a, NULL, NULL) == MTGRAD_E_INVAL, "save NULL len");
    unsigned char *buf = malloc(len + 8);
    size_t small = len - 1;
    CHECK(mtgrad_aggregator_save(a, buf, &small) == MTGRAD_E_IO && small == len, "too small: %zu", small);
    size_t got = len + 8;
    CHECK(mtgrad_aggregator_save(a, buf, &got) == MTGRAD_OK && got == len, "save: %zu", got);
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load: %s", mtgrad_aggregator_error(b));
    CHECK(mtgrad_aggregator_load(NULL, buf, len) == MTGRAD_E_INVAL, "load NULL agg");
    CHECK_FAIL(mtgrad_aggregator_load(b, NULL, len), MTGRAD_E_INVAL, mtgrad_aggregator_error(b),
               "buf", check_usable(b, "load NULL"));
    CHECK_FAIL(mtgrad_aggregator_load(b, buf, len - 1), MTGRAD_E_STATE, mtgrad_aggregator_error(b),
               "load", check_usable(b, "load short"));
    CHECK_FAIL(mtgrad_aggregator_load(b, buf, 3), MTGRAD_E_STATE, mtgrad_aggregator_error(b),
               "load", check_usable(b, "load 3 bytes"));
    buf[0] ^= 0x20;
    CHECK_FAIL(mtgrad_aggregator_load(b, buf, len), MTGRAD_E_STATE, mtgrad_aggregator_error(b),
               "magic", check_usable(b, "wrong magic"));
    buf[0] ^= 0x20;
    for (size_t pos = 8 + 8 + 32 + 8; pos < len; pos += 7) { /* step, rng, sizes, CRC itself */
        buf[pos] ^= 0x01;
        CHECK_FAIL(mtgrad_aggregator_load(b, buf, len), MTGRAD_E_STATE, mtgrad_aggregator_error(b),
                   "load", (void)0);
        buf[pos] ^= 0x01;
    }
    check_usable(b, "corrupt state");
    CHECK_FAIL(mtgrad_aggregator_load(other, buf, len), MTGRAD_E_STATE,
               mtgrad_aggregator_error(other), "mean", (void)0);
    CHECK_FAIL(mtgrad_aggregator_load(otherk, buf, len), MTGRAD_E_STATE,
               mtgrad_aggregator_error(otherk), "k =", check_usable(b, "other k"));
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "intact bytes still load");
    free(buf);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
    mtgrad_aggregator_free(other);
    mtgrad_aggregator_free(otherk);
}

/* A state may carry any step count: INT64_MAX loads and the next aggregation saturates instead
 * of overflowing (UB; the fuzz target fuzz_agg_state loads then aggregates), a count with the
 * sign bit set is refused as corrupt. The CRC is recomputed here (a second, bitwise CRC-32) so
 * that the loader looks at the field itself. */
static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++) c = (c & 1u) ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return ~c;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void test_state_step_count(void)
{
    mtgrad_aggregator *a = make("mean", K, NULL);
    if (!a) return;
    unsigned char buf[1024];
    size_t len = sizeof buf;
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK && len > 64, "save");
    const size_t step_at = 8 + 8 + 32 + 8; /* magic, version, name, k */
    put_le64(buf + step_at, (uint64_t)INT64_MAX);
    put_le64(buf + len - 8, crc32_ref(buf, len - 8));
    CHECK(mtgrad_aggregator_load(a, buf, len) == MTGRAD_OK, "load step INT64_MAX: %s",
          mtgrad_aggregator_error(a));
    double G[K * 3], dir[3];
    for (int i = 0; i < K * 3; i++) G[i] = 0.5 * i - 1;
    CHECK(mtgrad_aggregate_f64(a, G, K, 3, 3, NULL, dir, NULL) == MTGRAD_OK, "aggregate: %s",
          mtgrad_aggregator_error(a));
    unsigned char back[1024];
    size_t blen = sizeof back;
    CHECK(mtgrad_aggregator_save(a, back, &blen) == MTGRAD_OK && blen == len &&
          get_le64(back + step_at) == (uint64_t)INT64_MAX, "step count saturates");
    put_le64(buf + step_at, (uint64_t)INT64_MAX + 1);
    put_le64(buf + len - 8, crc32_ref(buf, len - 8));
    CHECK_FAIL(mtgrad_aggregator_load(a, buf, len), MTGRAD_E_STATE, mtgrad_aggregator_error(a),
               "negative step", check_usable(a, "negative step"));
    mtgrad_aggregator_free(a);

    /* An all-zero generator state (found by fuzzing: pcgrad then drew task orders forever). */
    a = make("pcgrad", K, NULL);
    if (!a) return;
    len = sizeof buf;
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save pcgrad");
    memset(buf + step_at + 8, 0, 32);
    put_le64(buf + len - 8, crc32_ref(buf, len - 8));
    CHECK(mtgrad_aggregator_load(a, buf, len) == MTGRAD_E_STATE &&
              strstr(mtgrad_aggregator_error(a), "all-zero random generator") != NULL,
          "zero RNG state refused: %s", mtgrad_aggregator_error(a));
    double G2[K * 3], dir2[3];
    for (int i = 0; i < K * 3; i++) G2[i] = 0.25 * i - 1;
    CHECK(mtgrad_aggregate_f64(a, G2, K, 3, 3, NULL, dir2, NULL) == MTGRAD_OK, "pcgrad usable");
    mtgrad_aggregator_free(a);
}

/* ------------------------------------------------------------------ small things */

static void test_status_version(void)
{
    const mtgrad_status all[] = {MTGRAD_OK,           MTGRAD_E_NOMEM,  MTGRAD_E_INVAL,
                                 MTGRAD_E_SHAPE,      MTGRAD_E_NONFINITE, MTGRAD_E_MAXITER,
                                 MTGRAD_E_NOPROGRESS, MTGRAD_E_UNSUPPORTED, MTGRAD_E_IO,
                                 MTGRAD_E_STATE};
    const size_t n = sizeof all / sizeof all[0];
    const char *unknown = mtgrad_status_str((mtgrad_status)-100);
    CHECK(unknown && unknown[0], "unknown status has a string");
    for (size_t i = 0; i < n; i++) {
        const char *s = mtgrad_status_str(all[i]);
        CHECK(s && s[0] && strcmp(s, unknown) != 0, "status %d: '%s'", (int)all[i], s ? s : "");
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(s, mtgrad_status_str(all[j])) != 0, "statuses %d and %d share '%s'",
                  (int)all[i], (int)all[j], s);
    }
    CHECK(mtgrad_version_number() == MTGRAD_VERSION_NUMBER, "version number %d", mtgrad_version_number());
    CHECK(strcmp(mtgrad_version_string(), MTGRAD_VERSION_STRING) == 0, "version string");
    int ma = -1, mi = -1, pa = -1;
    CHECK(sscanf(mtgrad_version_string(), "%d.%d.%d", &ma, &mi, &pa) == 3 &&
              ma == MTGRAD_VERSION_MAJOR && mi == MTGRAD_VERSION_MINOR && pa == MTGRAD_VERSION_PATCH,
          "version '%s'", mtgrad_version_string());
}

/* x = P(y) iff x is on the simplex and <y - x, e_j - x> <= 0 for every vertex e_j. */
static void check_projection(const double *y, const double *x, int64_t k)
{
    double sum = 0, scale = 1;
    for (int64_t i = 0; i < k; i++) {
        CHECK(x[i] >= 0, "x[%lld] = %g < 0", (long long)i, x[i]);
        sum += x[i];
        scale = fmax(scale, fabs(y[i]));
    }
    CHECK_CLOSE(sum, 1.0, 0, 1e-12 * (double)k);
    double yx = 0, xx = 0;
    for (int64_t i = 0; i < k; i++) yx += (y[i] - x[i]) * x[i], xx += x[i];
    for (int64_t j = 0; j < k; j++) {
        double vi = (y[j] - x[j]) - yx; /* <y - x, e_j - x> */
        CHECK(vi <= 1e-12 * scale * (double)k, "vertex %lld: <y-x, e_j-x> = %g > 0", (long long)j, vi);
    }
    (void)xx;
}

static void test_simplex(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 99);
    double y[40], x[40];
    for (int t = 0; t < 200; t++) {
        int64_t k = 1 + mtgradi_rng_below(&r, 40);
        double s = pow(10.0, -3 + 6 * mtgradi_rng_uniform(&r));
        for (int64_t i = 0; i < k; i++) y[i] = s * mtgradi_rng_normal(&r);
        if (t % 5 == 0 && k > 2) y[1] = y[0]; /* ties */
        CHECK(mtgrad_simplex_project(y, k, x) == MTGRAD_OK, "project");
        check_projection(y, x, k);
    }
    double p[3] = {0.2, 0.3, 0.5}, q[3];
    CHECK(mtgrad_simplex_project(p, 3, q) == MTGRAD_OK, "on simplex");
    CHECK_ARRAY_CLOSE(q, p, 3, 0, 1e-16); /* already on the simplex: unchanged */
    CHECK(mtgrad_simplex_project(NULL, 3, q) == MTGRAD_E_INVAL, "NULL y");
    CHECK(mtgrad_simplex_project(p, 3, NULL) == MTGRAD_E_INVAL, "NULL out");
    CHECK(mtgrad_simplex_project(p, 0, q) == MTGRAD_E_SHAPE, "k = 0");
    p[2] = NAN;
    CHECK(mtgrad_simplex_project(p, 3, q) == MTGRAD_E_NONFINITE, "NaN");
}

/* The public gram/combine wrappers refuse NULL, bad shapes, non-finite input. */
static void test_kernel_entries(void)
{
    double M[K * K], out[D], w[K] = {1, 1, 1};
    CHECK(mtgrad_gram_f64(NULL, K, D, D, M) == MTGRAD_E_INVAL, "gram NULL G");
    CHECK(mtgrad_gram_f64(G64, K, D, D, NULL) == MTGRAD_E_INVAL, "gram NULL M");
    CHECK(mtgrad_gram_f64(G64, 0, D, D, M) == MTGRAD_E_SHAPE, "gram k = 0");
    CHECK(mtgrad_gram_f64(G64, K, 0, D, M) == MTGRAD_E_SHAPE, "gram d = 0");
    CHECK(mtgrad_gram_f64(G64, K, D, D - 1, M) == MTGRAD_E_SHAPE, "gram ldg < d");
    CHECK(mtgrad_gram_f64(G64, K, D, D, M) == MTGRAD_OK && M[1] == 1 * -1 + 2 * 0 + 3 * 2 + 4 * 1 + 5 * -3,
          "gram value %g", M[1]);
    CHECK(mtgrad_combine_f64(G64, K, D, D, NULL, out) == MTGRAD_E_INVAL, "combine NULL w");
    CHECK(mtgrad_combine_f64(G64, K, D, D, w, NULL) == MTGRAD_E_INVAL, "combine NULL out");
    CHECK(mtgrad_combine_f64(G64, K, D, D - 1, w, out) == MTGRAD_E_SHAPE, "combine ldg < d");
    CHECK(mtgrad_combine_f64(G64, K, D, D, w, out) == MTGRAD_OK && out[4] == 5 - 3 + 1, "combine");
}

/* The head convention (methods.md §0.3): weight-based references (a backward of Σ w_i L_i) get
 * MTGRAD_HEADS_WEIGHTED, gradient-surgery references do not; only methods with weights can. */
static void test_heads_flag(void)
{
    const char *weighted[] = {"mean", "sum", "ls", "si_ls", "rlw", "dwa", "famo", "mgda", "nash_mtl", "imtl_g"};
    const char *surgery[] = {"cagrad", "imgrad", "sdmgrad", "pcgrad", "graddrop", "upgrad", "fairgrad"};
    for (size_t i = 0; i < sizeof weighted / sizeof *weighted; i++)
        CHECK(mtgrad_method_flags(mtgrad_method_by_name(weighted[i])) & MTGRAD_HEADS_WEIGHTED,
              "%s: heads weighted", weighted[i]);
    for (size_t i = 0; i < sizeof surgery / sizeof *surgery; i++)
        CHECK(!(mtgrad_method_flags(mtgrad_method_by_name(surgery[i])) & MTGRAD_HEADS_WEIGHTED),
              "%s: heads unweighted", surgery[i]);
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        unsigned f = mtgrad_method_flags(mtgrad_method_at(i));
        CHECK(!(f & MTGRAD_HEADS_WEIGHTED) || (f & MTGRAD_HAS_WEIGHTS), "%s: heads-weighted without weights",
              mtgrad_method_name(mtgrad_method_at(i)));
    }
}

/* Phase times: zero before the first call, non-negative after; the Gram phase is zero for a
 * method that does not use M, and NULL arguments are refused. */
static void test_times(void)
{
    double t[3] = {-1, -1, -1}, dir[D];
    mtgrad_aggregator *a = make("mgda", K, NULL);
    CHECK(mtgrad_aggregator_times(a, t) == MTGRAD_OK && t[0] == 0 && t[1] == 0 && t[2] == 0, "times before a call");
    CHECK(mtgrad_aggregate_f64(a, G64, K, D, D, NULL, dir, NULL) == MTGRAD_OK, "mgda call");
    CHECK(mtgrad_aggregator_times(a, t) == MTGRAD_OK && t[0] >= 0 && t[1] >= 0 && t[2] >= 0, "times after");
    CHECK(mtgrad_aggregator_times(NULL, t) == MTGRAD_E_INVAL, "times NULL aggregator");
    CHECK(mtgrad_aggregator_times(a, NULL) == MTGRAD_E_INVAL, "times NULL output");
    mtgrad_aggregator_free(a);
    a = make("mean", K, NULL);
    CHECK(mtgrad_aggregate_f64(a, G64, K, D, D, NULL, dir, NULL) == MTGRAD_OK, "mean call");
    CHECK(mtgrad_aggregator_times(a, t) == MTGRAD_OK && t[0] == 0, "mean computes no Gram: %g", t[0]);
    mtgrad_aggregator_free(a);
}

/* Clip scale: nash_mtl with a tiny max_norm clips, and then direction = scale × the unclipped
 * one; with a huge max_norm nothing is clipped (scale exactly 1). */
static void test_clip_scale(void)
{
    double big[D], small[D], wb[K], ws[K], scale = 0;
    mtgrad_aggregator *a = make("nash_mtl", K, "max_norm=1e9");
    CHECK(mtgrad_aggregate_f64(a, G64, K, D, D, NULL, big, wb) == MTGRAD_OK, "nash unclipped");
    CHECK(mtgrad_aggregator_clip_scale(a, &scale) == MTGRAD_OK && scale == 1.0, "no clip: %g", scale);
    mtgrad_aggregator_free(a);
    a = make("nash_mtl", K, "max_norm=1e-3");
    CHECK(mtgrad_aggregate_f64(a, G64, K, D, D, NULL, small, ws) == MTGRAD_OK, "nash clipped");
    CHECK(mtgrad_aggregator_clip_scale(a, &scale) == MTGRAD_OK && scale > 0 && scale < 1, "clip: %g", scale);
    double norm = 0;
    for (int j = 0; j < D; j++) norm += small[j] * small[j];
    CHECK_CLOSE(sqrt(norm), 1e-3, 1e-6, 0);
    for (int i = 0; i < K; i++) CHECK_CLOSE(ws[i] / scale, wb[i], 1e-9, 0);
    CHECK(mtgrad_aggregator_clip_scale(NULL, &scale) == MTGRAD_E_INVAL, "clip_scale NULL");
    mtgrad_aggregator_free(a);
}

/* Finite G whose float32 combination overflows: the message says so instead of blaming G. */
static void test_direction_overflow(void)
{
    float G[5 * 16], dir[16];
    for (int i = 0; i < 5 * 16; i++) G[i] = (i % 2 ? -1.7e38f : 1.7e38f);
    for (int j = 0; j < 16; j++) G[j] = G[16 + j] = 1.7e38f; /* rows 0 and 1 add up past FLT_MAX */
    mtgrad_aggregator *a = make("sum", 5, NULL);
    mtgrad_status s = mtgrad_aggregate_f32(a, G, 5, 16, 16, NULL, dir, NULL);
    CHECK_FAIL(s, MTGRAD_E_NONFINITE, mtgrad_aggregator_error(a), "overflows float32", (void)0);
    G[37] = NAN;
    s = mtgrad_aggregate_f32(a, G, 5, 16, 16, NULL, dir, NULL);
    CHECK_FAIL(s, MTGRAD_E_NONFINITE, mtgrad_aggregator_error(a), "G[2][5] is NaN", (void)0);
    mtgrad_aggregator_free(a);
}

int main(void)
{
    test_direction_overflow();
    test_clip_scale();
    test_heads_flag();
    test_times();
    test_aggregate_args();
    test_nonfinite_G();
    test_losses();
    test_weights_from_gram();
    test_new();
    test_params();
    test_state();
    test_state_step_count();
    test_status_version();
    test_simplex();
    test_kernel_entries();
    return harness_report();
}
