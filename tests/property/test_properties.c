/* Property battery: every registered method (mtgrad_method_count/at), default parameters, on a
 * fixed set of matrices from a seeded generator (random shapes, rank-deficient, zero rows,
 * identical and opposite rows, rows scaled 1e-10..1e10, k > d). Properties:
 *   (a) allowed status (table below for documented degenerate failures), finite outputs;
 *   (b) direction == sum_i w_i g_i, recomputed here (HAS_WEIGHTS);
 *   (c) Gram path == Jacobian path (weights_from_gram with a Gram computed here);
 *   (d) PROMISE_PERMUTATION: permuted rows permute the weights and keep the direction;
 *   (e) PROMISE_NONCONFLICT: <g_i, d> >= -tol ||g_i|| ||d||;
 *   (f) f32 entry == f64 entry to float tolerance;
 *   (g) same seed => same bits; threads=1 and threads=2 => same bits;
 *   (h) stateful / random methods: save after step 1, load into a fresh aggregator, identical
 *       step 2; reset gives the fresh step-1 result again.
 * Every failure prints the method and the case. */
#include "harness.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAXK 10
#define MAXD 100

typedef struct {
    const char *name;
    int64_t k, d;
    int degenerate; /* weights need not be unique: compare directions, not weights */
    double G[MAXK * MAXD], G2[MAXK * MAXD]; /* G2: the second step of stateful checks */
    double losses[MAXK], losses2[MAXK], after[MAXK];
} tcase;

/* Documented failures on degenerate input: method x case -> status, and why. Everything not
 * listed must return OK, MAXITER or NOPROGRESS. */
typedef struct {
    const char *method, *tcase;
    mtgrad_status status;
    const char *reason;
} allowed_status;

static const allowed_status allowed[] = {
    /* No method needs an exception today: every method returns finite output with OK (or
     * MAXITER/NOPROGRESS) on every case of the battery. Add {method, case, status, reason}
     * here only for a failure its method file documents. The entry below matches nothing. */
    {"", "", MTGRAD_OK, "sentinel (C has no empty arrays)"},
};

static int ok_like(mtgrad_status s)
{
    return s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS;
}

static int is_allowed(const char *method, const char *tc, mtgrad_status s)
{
    if (ok_like(s)) return 1;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strcmp(allowed[i].method, method) == 0 && strcmp(allowed[i].tcase, tc) == 0 &&
            allowed[i].status == s)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ the battery of matrices */

static void fill_losses(mtgradi_rng *r, tcase *c)
{
    for (int64_t i = 0; i < c->k; i++) {
        c->losses[i] = 0.5 + 2.0 * mtgradi_rng_uniform(r);
        c->losses2[i] = 0.8 * c->losses[i] + 0.1 * mtgradi_rng_uniform(r);
        c->after[i] = 0.95 * c->losses[i];
    }
}

static void fill_random(mtgradi_rng *r, double *G, int64_t n)
{
    for (int64_t i = 0; i < n; i++) G[i] = mtgradi_rng_normal(r);
}

/* rows = random combinations of two base rows (rank 2) */
static void fill_rankdef(mtgradi_rng *r, double *G, int64_t k, int64_t d)
{
    double b1[MAXD], b2[MAXD];
    fill_random(r, b1, d);
    fill_random(r, b2, d);
    for (int64_t i = 0; i < k; i++) {
        double x = mtgradi_rng_normal(r), y = mtgradi_rng_normal(r);
        for (int64_t j = 0; j < d; j++) G[i * d + j] = x * b1[j] + y * b2[j];
    }
}

enum { K_RANDOM, K_RANKDEF, K_ZERO, K_ZEROROW, K_IDENTICAL, K_OPPOSITE, K_SCALED };

static void fill_kind(mtgradi_rng *r, int kind, double *G, int64_t k, int64_t d)
{
    switch (kind) {
    case K_RANDOM: fill_random(r, G, k * d); break;
    case K_RANKDEF: fill_rankdef(r, G, k, d); break;
    case K_ZERO: memset(G, 0, (size_t)(k * d) * sizeof *G); break;
    case K_ZEROROW:
        fill_random(r, G, k * d);
        memset(G + d, 0, (size_t)d * sizeof *G); /* row 1 is zero */
        break;
    case K_IDENTICAL:
        fill_random(r, G, d);
        for (int64_t i = 1; i < k; i++) memcpy(G + i * d, G, (size_t)d * sizeof *G);
        break;
    case K_OPPOSITE:
        fill_random(r, G, d);
        for (int64_t j = 0; j < d; j++) G[d + j] = -G[j];
        break;
    case K_SCALED: /* one factor per row, 1e-10 ... 1e10 */
        fill_random(r, G, k * d);
        for (int64_t i = 0; i < k; i++) {
            double f = pow(10.0, -10.0 + 20.0 * (double)i / (double)(k - 1));
            for (int64_t j = 0; j < d; j++) G[i * d + j] *= f;
        }
        break;
    }
}

static int make_cases(tcase *cs)
{
    static const struct {
        const char *name;
        int kind;
        int64_t k, d;
    } spec[] = {
        {"random_1x5", K_RANDOM, 1, 5},       {"random_2x7", K_RANDOM, 2, 7},
        {"random_3x2", K_RANDOM, 3, 2},       {"random_3x100", K_RANDOM, 3, 100},
        {"random_5x100", K_RANDOM, 5, 100},   {"random_10x7", K_RANDOM, 10, 7},
        {"random_10x50", K_RANDOM, 10, 50},   {"rankdef_5x20", K_RANKDEF, 5, 20},
        {"all_zero_4x10", K_ZERO, 4, 10},     {"zero_row_4x10", K_ZEROROW, 4, 10},
        {"identical_3x10", K_IDENTICAL, 3, 10}, {"opposite_2x10", K_OPPOSITE, 2, 10},
        {"scaled_5x20", K_SCALED, 5, 20},     {"k_gt_d_8x3", K_RANDOM, 8, 3},
    };
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 20240607);
    int n = (int)(sizeof spec / sizeof spec[0]);
    for (int c = 0; c < n; c++) {
        tcase *t = &cs[c];
        t->name = spec[c].name;
        t->k = spec[c].k;
        t->d = spec[c].d;
        t->degenerate = spec[c].kind != K_RANDOM || spec[c].k > spec[c].d;
        fill_kind(&r, spec[c].kind, t->G, t->k, t->d);
        fill_kind(&r, spec[c].kind, t->G2, t->k, t->d);
        fill_losses(&r, t);
    }
    return n;
}

/* ------------------------------------------------------------------ helpers */

typedef struct {
    mtgrad_status s;
    double dir[MAXD], w[MAXK];
    char err[MTGRADI_ERRLEN];
} result;

static mtgrad_aggregator *fresh(const mtgrad_method *m, int64_t k, const char *params,
                                mtgrad_status *st)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    *st = mtgrad_aggregator_new(&a, mtgrad_method_name(m), k, params, err, sizeof err);
    return a;
}

static int has_w(const mtgrad_method *m) { return (mtgrad_method_flags(m) & MTGRAD_HAS_WEIGHTS) != 0; }

static const double *losses_for(const mtgrad_method *m, const double *l)
{
    return (mtgrad_method_flags(m) & MTGRAD_NEEDS_LOSSES) ? l : NULL;
}

static void run64(mtgrad_aggregator *a, const tcase *c, const double *G, const double *losses,
                  result *r)
{
    const mtgrad_method *m = mtgrad_aggregator_method(a);
    memset(r, 0, sizeof *r);
    r->s = mtgrad_aggregate_f64(a, G, c->k, c->d, c->d, losses_for(m, losses), r->dir,
                                has_w(m) ? r->w : NULL);
    snprintf(r->err, sizeof r->err, "%s", mtgrad_aggregator_error(a));
}

/* One fresh aggregator, one step. */
static void run_fresh(const mtgrad_method *m, const tcase *c, const char *params, const double *G,
                      const double *losses, result *r)
{
    mtgrad_status st;
    mtgrad_aggregator *a = fresh(m, c->k, params, &st);
    if (!a) {
        memset(r, 0, sizeof *r);
        r->s = st;
        snprintf(r->err, sizeof r->err, "aggregator_new failed");
        return;
    }
    run64(a, c, G, losses, r);
    mtgrad_aggregator_free(a);
}

static int all_finite(const double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static double norm(const double *x, int64_t n) { return sqrt(mtgradi_dot(x, x, n)); }

/* |a_j - b_j| <= rtol * scale_j + atol for every j. Returns the first bad index or -1. */
static int64_t first_diff(const double *a, const double *b, const double *scale, int64_t n,
                          double rtol, double atol)
{
    for (int64_t j = 0; j < n; j++)
        if (!(fabs(a[j] - b[j]) <= rtol * scale[j] + atol)) return j;
    return -1;
}

/* sum_j |w_i g_ij| per column: the natural rounding scale of a combination */
static void comb_scale(const double *G, const double *w, int64_t k, int64_t d, double *scale)
{
    for (int64_t j = 0; j < d; j++) {
        double s = 0;
        for (int64_t i = 0; i < k; i++) s += fabs(w[i] * G[i * d + j]);
        scale[j] = s;
    }
}

static double max_abs(const double *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Gram in the plainest order (independent of the library's blocked kernel). */
static void gram_naive(const double *G, int64_t k, int64_t d, double *M)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t p = 0; p < d; p++) s += G[i * d + p] * G[j * d + p];
            M[i * k + j] = s;
        }
}

/* ------------------------------------------------------------------ properties */

/* (b) direction == sum_i w_i g_i */
static void prop_combination(const char *mn, const tcase *c, const result *r)
{
    double ref[MAXD], scale[MAXD];
    for (int64_t j = 0; j < c->d; j++) {
        double s = 0;
        for (int64_t i = 0; i < c->k; i++) s += r->w[i] * c->G[i * c->d + j];
        ref[j] = s;
    }
    comb_scale(c->G, r->w, c->k, c->d, scale);
    int64_t bad = first_diff(r->dir, ref, scale, c->d, 1e-12, 1e-300);
    CHECK(bad < 0, "%s %s: (b) direction[%lld] = %.17g but sum_i w_i g_i = %.17g", mn, c->name,
          (long long)bad, bad < 0 ? 0 : r->dir[bad], bad < 0 ? 0 : ref[bad]);
}

/* (c) weights from a Gram computed here == weights of the Jacobian path */
static void prop_gram_path(const mtgrad_method *m, const tcase *c, const result *r)
{
    const char *mn = mtgrad_method_name(m);
    double M[MAXK * MAXK], w[MAXK];
    gram_naive(c->G, c->k, c->d, M);
    mtgrad_status st;
    mtgrad_aggregator *a = fresh(m, c->k, NULL, &st);
    if (!a) return;
    mtgrad_status s = mtgrad_weights_from_gram(a, M, c->k, losses_for(m, c->losses), w);
    CHECK(s == r->s, "%s %s: (c) weights_from_gram status %d (%s), aggregate status %d", mn,
          c->name, (int)s, mtgrad_aggregator_error(a), (int)r->s);
    mtgrad_aggregator_free(a);
    if (!ok_like(s)) return;
    CHECK(all_finite(w, c->k), "%s %s: (c) non-finite weight from the Gram path", mn, c->name);
    /* the directions agree (weights may be non-unique on degenerate input) */
    double dg[MAXD], scale[MAXD];
    for (int64_t j = 0; j < c->d; j++) {
        double s2 = 0;
        for (int64_t i = 0; i < c->k; i++) s2 += w[i] * c->G[i * c->d + j];
        dg[j] = s2;
    }
    comb_scale(c->G, w, c->k, c->d, scale);
    double sc = max_abs(scale, c->d);
    for (int64_t j = 0; j < c->d; j++) scale[j] = sc;
    int64_t bad = first_diff(dg, r->dir, scale, c->d, 1e-7, 1e-300);
    CHECK(bad < 0, "%s %s: (c) Gram-path direction[%lld] = %.17g, Jacobian path %.17g", mn,
          c->name, (long long)bad, bad < 0 ? 0 : dg[bad], bad < 0 ? 0 : r->dir[bad]);
    if (!c->degenerate) {
        double wmax = fmax(max_abs(w, c->k), max_abs(r->w, c->k));
        double ws[MAXK];
        for (int64_t i = 0; i < c->k; i++) ws[i] = wmax;
        bad = first_diff(w, r->w, ws, c->k, 1e-7, 1e-300);
        CHECK(bad < 0, "%s %s: (c) Gram-path w[%lld] = %.17g, Jacobian path %.17g", mn, c->name,
              (long long)bad, bad < 0 ? 0 : w[bad], bad < 0 ? 0 : r->w[bad]);
    }
}

/* (d) permuting the rows permutes the weights and keeps the direction */
static void prop_permutation(const mtgrad_method *m, const tcase *c, const result *r)
{
    const char *mn = mtgrad_method_name(m);
    if (c->k < 2) return;
    int64_t perm[MAXK];
    for (int64_t i = 0; i < c->k; i++) perm[i] = (i + 1) % c->k; /* rotation ... */
    if (c->k > 2) { /* ... then swap the first two: not a cyclic structure */
        int64_t t = perm[0];
        perm[0] = perm[1];
        perm[1] = t;
    }
    tcase p = *c;
    for (int64_t i = 0; i < c->k; i++) {
        memcpy(p.G + i * c->d, c->G + perm[i] * c->d, (size_t)c->d * sizeof *c->G);
        p.losses[i] = c->losses[perm[i]];
    }
    result rp;
    run_fresh(m, &p, NULL, p.G, p.losses, &rp);
    CHECK(rp.s == r->s, "%s %s: (d) status %d on permuted rows, %d on the original", mn, c->name,
          (int)rp.s, (int)r->s);
    if (!ok_like(rp.s)) return;
    double scale[MAXD], ones[MAXK];
    for (int64_t i = 0; i < c->k; i++) ones[i] = 1;
    /* rounding scale: sum_i |w_i g_ij|, or sum_i |g_ij| for methods without weights */
    comb_scale(c->G, has_w(m) ? r->w : ones, c->k, c->d, scale);
    double sc = max_abs(scale, c->d);
    for (int64_t j = 0; j < c->d; j++) scale[j] = sc;
    int64_t bad = first_diff(rp.dir, r->dir, scale, c->d, 1e-9, 1e-300);
    CHECK(bad < 0, "%s %s: (d) direction[%lld] = %.17g on permuted rows, %.17g on the original",
          mn, c->name, (long long)bad, bad < 0 ? 0 : rp.dir[bad], bad < 0 ? 0 : r->dir[bad]);
    if (has_w(m) && !c->degenerate) {
        double wexp[MAXK], ws[MAXK], wmax = max_abs(r->w, c->k);
        for (int64_t i = 0; i < c->k; i++) wexp[i] = r->w[perm[i]], ws[i] = wmax;
        bad = first_diff(rp.w, wexp, ws, c->k, 1e-9, 1e-300);
        CHECK(bad < 0, "%s %s: (d) permuted w[%lld] = %.17g, expected w[perm] = %.17g", mn,
              c->name, (long long)bad, bad < 0 ? 0 : rp.w[bad], bad < 0 ? 0 : wexp[bad]);
    }
}

/* (e) <g_i, d> >= -tol ||g_i|| ||d||, plus the rounding of d itself: d = sum_j w_j g_j carries
 * an error of about (k + 2) eps sum_j |w_j| ||g_j||, which matters when d is ~0 (Pareto
 * stationary input). */
static void prop_nonconflict(const char *mn, const tcase *c, const result *r, int weights)
{
    double nd = norm(r->dir, c->d), wg = 0;
    for (int64_t j = 0; weights && j < c->k; j++) wg += fabs(r->w[j]) * norm(c->G + j * c->d, c->d);
    double round = (double)(c->k + 2) * 2.220446049250313e-16 * wg;
    for (int64_t i = 0; i < c->k; i++) {
        const double *g = c->G + i * c->d;
        double ip = mtgradi_dot(g, r->dir, c->d), ng = norm(g, c->d);
        CHECK(ip >= -ng * (1e-8 * nd + round),
              "%s %s: (e) <g_%lld, d> = %.17g < 0 (|g| = %g, |d| = %g, rounding of d %g)", mn,
              c->name, (long long)i, ip, ng, nd, round);
    }
}

/* (f) the f32 entry agrees with the f64 entry on the same (float-representable) matrix */
static void prop_f32(const mtgrad_method *m, const tcase *c)
{
    const char *mn = mtgrad_method_name(m);
    float Gf[MAXK * MAXD], df[MAXD];
    double Gd[MAXK * MAXD], wf[MAXK], dff[MAXD];
    for (int64_t i = 0; i < c->k * c->d; i++) Gf[i] = (float)c->G[i], Gd[i] = (double)Gf[i];
    result r64;
    run_fresh(m, c, NULL, Gd, c->losses, &r64);
    mtgrad_status st;
    mtgrad_aggregator *a = fresh(m, c->k, NULL, &st);
    if (!a) return;
    mtgrad_status s = mtgrad_aggregate_f32(a, Gf, c->k, c->d, c->d, losses_for(m, c->losses), df,
                                           has_w(m) ? wf : NULL);
    CHECK(s == r64.s, "%s %s: (f) f32 status %d (%s), f64 status %d", mn, c->name, (int)s,
          mtgrad_aggregator_error(a), (int)r64.s);
    mtgrad_aggregator_free(a);
    if (!ok_like(s) || s != r64.s) return;
    for (int64_t j = 0; j < c->d; j++) dff[j] = (double)df[j];
    CHECK(all_finite(dff, c->d), "%s %s: (f) non-finite f32 direction", mn, c->name);
    double scale[MAXD];
    if (has_w(m)) {
        comb_scale(Gd, r64.w, c->k, c->d, scale);
    } else {
        for (int64_t j = 0; j < c->d; j++) scale[j] = fabs(r64.dir[j]);
    }
    int64_t bad = first_diff(dff, r64.dir, scale, c->d, 1e-6, 1e-300);
    CHECK(bad < 0, "%s %s: (f) f32 direction[%lld] = %.9g, f64 %.17g", mn, c->name,
          (long long)bad, bad < 0 ? 0 : dff[bad], bad < 0 ? 0 : r64.dir[bad]);
    if (has_w(m)) {
        double ws[MAXK], wmax = max_abs(r64.w, c->k);
        for (int64_t i = 0; i < c->k; i++) ws[i] = wmax;
        bad = first_diff(wf, r64.w, ws, c->k, 1e-9, 1e-300);
        CHECK(bad < 0, "%s %s: (f) f32 w[%lld] = %.17g, f64 %.17g", mn, c->name, (long long)bad,
              bad < 0 ? 0 : wf[bad], bad < 0 ? 0 : r64.w[bad]);
    }
}

static int same_bits(const result *x, const result *y, int64_t k, int64_t d)
{
    return x->s == y->s && memcmp(x->dir, y->dir, (size_t)d * sizeof(double)) == 0 &&
           memcmp(x->w, y->w, (size_t)k * sizeof(double)) == 0;
}

/* (g) same seed => same bits; threads do not matter */
static void prop_determinism(const mtgrad_method *m, const tcase *c, const result *r)
{
    const char *mn = mtgrad_method_name(m);
    result r2, rt;
    run_fresh(m, c, NULL, c->G, c->losses, &r2);
    CHECK(same_bits(r, &r2, c->k, c->d), "%s %s: (g) two fresh aggregators differ", mn, c->name);
    run_fresh(m, c, "threads=2", c->G, c->losses, &rt);
    CHECK(same_bits(r, &rt, c->k, c->d), "%s %s: (g) threads=2 differs from threads=1", mn,
          c->name);
}

/* One step on a live aggregator (+ update for NEEDS_LOSSES_AFTER, + feedback h = G d for
 * NEEDS_FEEDBACK, so that the state moves between the steps of (h)). */
static void step(mtgrad_aggregator *a, const tcase *c, const double *G, const double *losses,
                 result *r)
{
    run64(a, c, G, losses, r);
    unsigned f = mtgrad_method_flags(mtgrad_aggregator_method(a));
    if (ok_like(r->s) && (f & MTGRAD_NEEDS_LOSSES_AFTER)) {
        mtgrad_status u = mtgrad_aggregator_update(a, c->after, c->k);
        if (u != MTGRAD_OK) r->s = u;
    }
    if (ok_like(r->s) && (f & MTGRAD_NEEDS_FEEDBACK)) {
        double h[MAXK];
        for (int64_t i = 0; i < c->k; i++) {
            h[i] = 0;
            for (int64_t j = 0; j < c->d; j++) h[i] += G[i * c->d + j] * r->dir[j];
        }
        mtgrad_status u = mtgrad_aggregator_feedback(a, h, c->k);
        if (u != MTGRAD_OK && u != MTGRAD_E_NONFINITE) r->s = u; /* huge inputs overflow h */
    }
}

/* (h) save after step 1 / load into a fresh aggregator / identical step 2; reset */
static void prop_state(const mtgrad_method *m, const tcase *c, const result *r)
{
    const char *mn = mtgrad_method_name(m);
    mtgrad_status st;
    mtgrad_aggregator *a = fresh(m, c->k, NULL, &st), *b = fresh(m, c->k, NULL, &st);
    if (!a || !b) {
        mtgrad_aggregator_free(a);
        mtgrad_aggregator_free(b);
        return;
    }
    result s1, s2a, s2b, again;
    step(a, c, c->G, c->losses, &s1);
    CHECK(same_bits(&s1, r, c->k, c->d), "%s %s: (h) step 1 differs from the fresh result", mn,
          c->name);
    size_t len = 0;
    CHECK(mtgrad_aggregator_save(a, NULL, &len) == MTGRAD_OK && len > 0, "%s %s: (h) size query",
          mn, c->name);
    unsigned char *buf = malloc(len);
    CHECK(buf && mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "%s %s: (h) save", mn, c->name);
    mtgrad_status ls = buf ? mtgrad_aggregator_load(b, buf, len) : MTGRAD_E_NOMEM;
    CHECK(ls == MTGRAD_OK, "%s %s: (h) load: %s", mn, c->name, mtgrad_aggregator_error(b));
    step(a, c, c->G2, c->losses2, &s2a);
    step(b, c, c->G2, c->losses2, &s2b);
    CHECK(same_bits(&s2a, &s2b, c->k, c->d), "%s %s: (h) step 2 after load differs (status %d/%d)",
          mn, c->name, (int)s2a.s, (int)s2b.s);
    CHECK(mtgrad_aggregator_reset(a) == MTGRAD_OK, "%s %s: (h) reset", mn, c->name);
    run64(a, c, c->G, c->losses, &again);
    CHECK(same_bits(&again, r, c->k, c->d), "%s %s: (h) result after reset differs from fresh", mn,
          c->name);
    free(buf);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

/* ------------------------------------------------------------------ driver */

static int method_failures;

static void run_case(const mtgrad_method *m, const tcase *c)
{
    const char *mn = mtgrad_method_name(m);
    unsigned f = mtgrad_method_flags(m);
    result r;
    run_fresh(m, c, NULL, c->G, c->losses, &r);
    /* (a) */
    CHECK(is_allowed(mn, c->name, r.s), "%s %s: (a) status %d (%s): %s", mn, c->name, (int)r.s,
          mtgrad_status_str(r.s), r.err);
    if (!ok_like(r.s)) {
        CHECK(r.err[0] != '\0', "%s %s: (a) failure without a message", mn, c->name);
        return;
    }
    CHECK(all_finite(r.dir, c->d), "%s %s: (a) non-finite direction", mn, c->name);
    if (f & MTGRAD_HAS_WEIGHTS) {
        CHECK(all_finite(r.w, c->k), "%s %s: (a) non-finite weights", mn, c->name);
        prop_combination(mn, c, &r);
        if (!(f & MTGRAD_NEEDS_JACOBIAN)) prop_gram_path(m, c, &r);
    }
    if (f & MTGRAD_PROMISE_PERMUTATION) prop_permutation(m, c, &r); /* random ones too: the flag is
                                                                   only claimed where it holds */
    if (f & MTGRAD_PROMISE_NONCONFLICT) prop_nonconflict(mn, c, &r, (f & MTGRAD_HAS_WEIGHTS) != 0);
    prop_f32(m, c);
    prop_determinism(m, c, &r);
    if (f & (MTGRAD_STATEFUL | MTGRAD_NEEDS_RANDOM)) prop_state(m, c, &r);
}

int main(void)
{
    static tcase cases[32];
    int n = make_cases(cases);
    for (size_t i = 0; i < mtgrad_method_count(); i++) {
        const mtgrad_method *m = mtgrad_method_at(i);
        int before = harness_failed;
        for (int c = 0; c < n; c++) run_case(m, &cases[c]);
        if (harness_failed > before) {
            method_failures++;
            fprintf(stderr, "method %s: %d failed checks\n", mtgrad_method_name(m),
                    harness_failed - before);
        }
    }
    if (method_failures) fprintf(stderr, "%d methods fail the property battery\n", method_failures);
    return harness_report();
}
