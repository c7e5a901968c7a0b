/* Gradient-surgery methods: PCGrad and GradVac (Gram-tracked coefficients) against explicit
 * vector algorithms written here on G, k = 2 closed forms, order handling and injected draws,
 * state handling; GradDrop against a hand-computed mask and an explicit per-column loop. */
#include "harness.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

static mtgrad_aggregator *make(const char *method, int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&a, method, k, params, err, sizeof err);
    CHECK(s == MTGRAD_OK, "new %s(%s): %s", method, params ? params : "", err);
    return a;
}

static double vdot(const double *x, const double *y, int64_t d)
{
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += x[j] * y[j];
    return s;
}

static void fill_normal(mtgradi_rng *r, double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = mtgradi_rng_normal(r);
}

/* k*k draws: row i a random permutation of 0..k-1 (the test's own shuffle). */
static void random_orders(mtgradi_rng *r, int64_t k, double *orders)
{
    for (int64_t i = 0; i < k; i++) {
        double *row = orders + i * k;
        for (int64_t j = 0; j < k; j++) row[j] = (double)j;
        for (int64_t j = k - 1; j > 0; j--) {
            int64_t s = (int64_t)(mtgradi_rng_uniform(r) * (double)(j + 1));
            double t = row[j];
            row[j] = row[s];
            row[s] = t;
        }
    }
}

static void ascending_orders(int64_t k, double *orders)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) orders[i * k + j] = (double)j;
}

/* ------------------------------------------------------------------ PCGrad, explicit on vectors */

static void pcgrad_vectors(const double *G, int64_t k, int64_t d, const double *orders, int self,
                           double eps, double *dir)
{
    double *v = malloc((size_t)d * sizeof *v);
    for (int64_t j = 0; j < d; j++) dir[j] = 0;
    for (int64_t i = 0; i < k; i++) {
        memcpy(v, G + i * d, (size_t)d * sizeof *v);
        for (int64_t t = 0; t < k; t++) {
            int64_t j = (int64_t)orders[i * k + t];
            if (j == i && !self) continue;
            const double *gj = G + j * d;
            double dot = vdot(v, gj, d), nn = vdot(gj, gj, d);
            if (dot < 0)
                for (int64_t c = 0; c < d; c++) v[c] -= dot / (nn + eps) * gj[c];
        }
        for (int64_t c = 0; c < d; c++) dir[c] += v[c];
    }
    free(v);
}

static void test_pcgrad_vs_vectors(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 11);
    const int64_t ks[] = {2, 3, 5, 8}, ds[] = {2, 7, 50};
    for (int v = 0; v < 2; v++)
        for (size_t a_ = 0; a_ < 4; a_++)
            for (size_t b_ = 0; b_ < 3; b_++) {
                int64_t k = ks[a_], d = ds[b_];
                double *G = malloc((size_t)(k * d) * sizeof *G), *orders = malloc((size_t)(k * k) * sizeof *orders);
                double *dir = malloc((size_t)d * sizeof *dir), *ref = malloc((size_t)d * sizeof *ref);
                double *w = malloc((size_t)k * sizeof *w), *gw = malloc((size_t)d * sizeof *gw);
                fill_normal(&r, G, k * d);
                random_orders(&r, k, orders);
                mtgrad_aggregator *a = make("pcgrad", k, v ? "variant=libmtl" : "variant=torchjd");
                CHECK(mtgrad_aggregator_set_draws(a, orders, (size_t)(k * k)) == MTGRAD_OK, "draws");
                CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
                pcgrad_vectors(G, k, d, orders, v, v ? 1e-8 : 0.0, ref);
                CHECK_ARRAY_CLOSE(dir, ref, d, 1e-9, 1e-9);
                /* the weights reproduce the direction */
                CHECK(mtgrad_combine_f64(G, k, d, d, w, gw) == MTGRAD_OK, "combine");
                CHECK_ARRAY_CLOSE(gw, dir, d, 1e-12, 1e-12);
                mtgrad_aggregator_free(a);
                free(G), free(orders), free(dir), free(ref), free(w), free(gw);
            }
}

/* k = 2: each gradient is projected once off the other when they conflict. */
static void test_pcgrad_k2_closed_form(void)
{
    double G[6] = {1, 2, 0, -3, -1, 1}; /* <g1,g2> = -3 - 2 + 0 = -5, |g1|^2 = 5, |g2|^2 = 11 */
    double w[2], dir[3];
    mtgrad_aggregator *a = make("pcgrad", 2, "variant=torchjd");
    CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, NULL, dir, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
    /* pc1 = g1 + 5/11 g2, pc2 = g2 + 5/5 g1: w = (1 + 1, 1 + 5/11) */
    double expect_w[2] = {2.0, 1.0 + 5.0 / 11.0};
    CHECK_ARRAY_CLOSE(w, expect_w, 2, 1e-14, 1e-14);
    /* no conflict: plain sum */
    double H[4] = {1, 0, 1, 1};
    CHECK(mtgrad_aggregate_f64(a, H, 2, 2, 2, NULL, dir, w) == MTGRAD_OK, "no conflict");
    double ones[2] = {1, 1};
    CHECK_ARRAY_CLOSE(w, ones, 2, 0, 0);
    /* exactly opposite: both projected to 0 */
    double O[4] = {1, 2, -1, -2};
    CHECK(mtgrad_aggregate_f64(a, O, 2, 2, 2, NULL, dir, w) == MTGRAD_OK, "opposite");
    CHECK_CLOSE(dir[0], 0.0, 0, 1e-15);
    CHECK_CLOSE(dir[1], 0.0, 0, 1e-15);
    /* k = 2 does not depend on the order: random vs ascending */
    mtgrad_aggregator *b = make("pcgrad", 2, "order=ascending");
    double w2[2];
    for (int rep = 0; rep < 5; rep++) {
        CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, NULL, dir, w) == MTGRAD_OK, "random");
        CHECK(mtgrad_aggregate_f64(b, G, 2, 3, 3, NULL, dir, w2) == MTGRAD_OK, "ascending");
        CHECK_ARRAY_CLOSE(w, w2, 2, 0, 0);
    }
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

/* k = 3 in the plane: the order matters; ascending == injected ascending; seeds reproduce. */
static void test_pcgrad_order(void)
{
    double G[6] = {1, 0, -0.6, 1, -0.7, -1};
    double asc[9], desc[9], w_asc[3], w_inj[3], w_desc[3], dir[2];
    ascending_orders(3, asc);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) desc[i * 3 + j] = (double)(2 - j);
    mtgrad_aggregator *a = make("pcgrad", 3, "order=ascending");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w_asc) == MTGRAD_OK, "ascending");
    mtgrad_aggregator *b = make("pcgrad", 3, NULL); /* order random by default */
    CHECK(mtgrad_aggregator_set_draws(b, asc, 9) == MTGRAD_OK, "draws");
    CHECK(mtgrad_aggregate_f64(b, G, 3, 2, 2, NULL, dir, w_inj) == MTGRAD_OK, "injected");
    CHECK_ARRAY_CLOSE(w_inj, w_asc, 3, 0, 0);
    CHECK(mtgrad_aggregator_set_draws(b, desc, 9) == MTGRAD_OK, "draws");
    double ddir[2], rdir[2];
    CHECK(mtgrad_aggregate_f64(b, G, 3, 2, 2, NULL, ddir, w_desc) == MTGRAD_OK, "descending");
    pcgrad_vectors(G, 3, 2, desc, 0, 0.0, rdir);
    CHECK_ARRAY_CLOSE(ddir, rdir, 2, 1e-12, 1e-12);
    double diff = 0;
    for (int i = 0; i < 3; i++) diff = fmax(diff, fabs(w_desc[i] - w_asc[i]));
    CHECK(diff > 1e-3, "k = 3 conflicting rows: ascending and descending orders should differ (%g)", diff);
    /* same seed, same random orders; reset replays them */
    mtgrad_aggregator *c = make("pcgrad", 3, "seed=5"), *e = make("pcgrad", 3, "seed=5");
    double w1[3], w2[3];
    CHECK(mtgrad_aggregate_f64(c, G, 3, 2, 2, NULL, dir, w1) == MTGRAD_OK, "c");
    CHECK(mtgrad_aggregate_f64(e, G, 3, 2, 2, NULL, dir, w2) == MTGRAD_OK, "e");
    CHECK_ARRAY_CLOSE(w1, w2, 3, 0, 0);
    mtgrad_aggregator_reset(c);
    CHECK(mtgrad_aggregate_f64(c, G, 3, 2, 2, NULL, dir, w2) == MTGRAD_OK, "c after reset");
    CHECK_ARRAY_CLOSE(w1, w2, 3, 0, 0);
    /* over many random calls, more than one distinct result shows up (the orders are random) */
    int distinct = 0;
    for (int rep = 0; rep < 40; rep++) {
        CHECK(mtgrad_aggregate_f64(c, G, 3, 2, 2, NULL, dir, w2) == MTGRAD_OK, "rep");
        double dd = 0;
        for (int i = 0; i < 3; i++) dd = fmax(dd, fabs(w2[i] - w1[i]));
        if (dd > 1e-9) distinct = 1;
    }
    CHECK(distinct, "random order never changed the k = 3 result in 40 calls");
    mtgrad_aggregator_free(a), mtgrad_aggregator_free(b), mtgrad_aggregator_free(c), mtgrad_aggregator_free(e);
}

/* self projection: a case where pc_i ends up conflicting with its own g_i. */
static void test_pcgrad_self_projection(void)
{
    /* g0 = (1, 0.1); g1 = (-1, 0.5), g2 = (-1, -0.8): projecting g0 off g1 then g2 can turn it
     * against g0; the explicit algorithm decides, both ways must agree with it. */
    double G[6] = {1, 0.1, -1, 0.5, -1, -0.8}, asc[9], dir[2], ref[2], w[3];
    ascending_orders(3, asc);
    for (int self = 0; self < 2; self++) {
        mtgrad_aggregator *a = make("pcgrad", 3, self ? "order=ascending,self_projection=yes" : "order=ascending");
        CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_OK, "self %d", self);
        pcgrad_vectors(G, 3, 2, asc, self, 0.0, ref);
        CHECK_ARRAY_CLOSE(dir, ref, 2, 1e-12, 1e-14);
        mtgrad_aggregator_free(a);
    }
}

static void test_pcgrad_params_and_errors(void)
{
    char buf[64];
    mtgrad_aggregator *a = make("pcgrad", 3, NULL);
    mtgrad_aggregator_get_param(a, "self_projection", buf, sizeof buf);
    CHECK(strcmp(buf, "no") == 0, "torchjd default self_projection: %s", buf);
    CHECK(mtgrad_aggregator_set_param(a, "variant", "libmtl") == MTGRAD_OK, "variant");
    mtgrad_aggregator_get_param(a, "self_projection", buf, sizeof buf);
    CHECK(strcmp(buf, "yes") == 0, "libmtl preset self_projection: %s", buf);
    mtgrad_aggregator_get_param(a, "eps", buf, sizeof buf);
    CHECK(atof(buf) == 1e-8, "libmtl preset eps: %s", buf);
    /* a user-set parameter survives a variant change */
    CHECK(mtgrad_aggregator_set_param(a, "self_projection", "no") == MTGRAD_OK, "set self");
    CHECK(mtgrad_aggregator_set_param(a, "variant", "torchjd") == MTGRAD_OK, "variant");
    CHECK(mtgrad_aggregator_set_param(a, "variant", "libmtl") == MTGRAD_OK, "variant");
    mtgrad_aggregator_get_param(a, "self_projection", buf, sizeof buf);
    CHECK(strcmp(buf, "no") == 0, "user value kept: %s", buf);
    CHECK(mtgrad_aggregator_set_param(a, "order", "sideways") == MTGRAD_E_INVAL, "bad order");

    double G[6] = {1, 0, -0.6, 1, -0.7, -1}, dir[2], w[3], dir2[2];
    double short_draws[4] = {0, 1, 2, 0};
    CHECK(mtgrad_aggregator_set_draws(a, short_draws, 4) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_E_INVAL, "wrong draws count");
    CHECK(strstr(mtgrad_aggregator_error(a), "k*k") != NULL, "message: %s", mtgrad_aggregator_error(a));
    double bad[9] = {0, 1, 2, 0, 0, 2, 0, 1, 2}; /* row 1 repeats 0 */
    CHECK(mtgrad_aggregator_set_draws(a, bad, 9) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_E_INVAL, "not a permutation");
    double frac[9] = {0, 1, 2, 0.5, 1, 2, 0, 1, 2};
    CHECK(mtgrad_aggregator_set_draws(a, frac, 9) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_E_INVAL, "fractional index");
    /* draws are consumed only by a successful call: the bad ones stay until replaced */
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_E_INVAL, "still pending");
    /* the failed calls left the RNG where it was: the next random call equals a fresh one's */
    mtgrad_aggregator *b = make("pcgrad", 3, "variant=libmtl,self_projection=no");
    double asc[9];
    ascending_orders(3, asc);
    CHECK(mtgrad_aggregator_set_draws(a, asc, 9) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregator_set_draws(b, asc, 9) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_OK, "valid draws");
    CHECK(mtgrad_aggregate_f64(b, G, 3, 2, 2, NULL, dir2, w) == MTGRAD_OK, "valid draws");
    CHECK_ARRAY_CLOSE(dir, dir2, 2, 0, 0);
    CHECK(mtgrad_aggregate_f64(a, G, 3, 2, 2, NULL, dir, w) == MTGRAD_OK, "random after failures");
    CHECK(mtgrad_aggregate_f64(b, G, 3, 2, 2, NULL, dir2, w) == MTGRAD_OK, "random, fresh");
    CHECK_ARRAY_CLOSE(dir, dir2, 2, 0, 0);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

/* zero rows, identical rows, k = 1, k > d, huge/tiny scales: finite and as the vector version. */
static void test_pcgrad_degenerate(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 3);
    double G[5 * 2], orders[25], dir[2], ref[2], w[5];
    fill_normal(&r, G, 10);
    G[0] = G[1] = 0;                       /* zero row */
    G[4] = G[2], G[5] = G[3];              /* identical rows 1 and 2 */
    G[6] *= 1e10, G[7] *= 1e10;            /* huge */
    G[8] *= 1e-10, G[9] *= 1e-10;          /* tiny */
    ascending_orders(5, orders);
    for (int v = 0; v < 2; v++) {
        mtgrad_aggregator *a = make("pcgrad", 5, v ? "order=ascending,variant=libmtl" : "order=ascending");
        CHECK(mtgrad_aggregate_f64(a, G, 5, 2, 2, NULL, dir, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
        pcgrad_vectors(G, 5, 2, orders, v, v ? 1e-8 : 0.0, ref);
        for (int i = 0; i < 5; i++) CHECK(isfinite(w[i]), "weight %d finite", i);
        CHECK_ARRAY_CLOSE(dir, ref, 2, 1e-8, 1e-8 * 1e10);
        mtgrad_aggregator_free(a);
    }
    mtgrad_aggregator *one = make("pcgrad", 1, NULL);
    double g[3] = {1, -2, 3}, d1[3], w1[1];
    CHECK(mtgrad_aggregate_f64(one, g, 1, 3, 3, NULL, d1, w1) == MTGRAD_OK, "k = 1");
    CHECK_CLOSE(w1[0], 1.0, 0, 0);
    mtgrad_aggregator_free(one);
}

/* ------------------------------------------------------------------ GradVac, explicit on vectors */

static void gradvac_vectors(const double *G, int64_t k, int64_t d, const double *orders,
                            double beta, double *rho, double *dir)
{
    double *v = malloc((size_t)d * sizeof *v);
    for (int64_t j = 0; j < d; j++) dir[j] = 0;
    for (int64_t i = 0; i < k; i++) {
        memcpy(v, G + i * d, (size_t)d * sizeof *v);
        for (int64_t t = 0; t < k; t++) {
            int64_t j = (int64_t)orders[i * k + t];
            if (j == i) continue;
            const double *gj = G + j * d;
            double vn = sqrt(vdot(v, v, d)), gn = sqrt(vdot(gj, gj, d));
            double rr = vdot(v, gj, d) / (vn * gn + 1e-8), tg = rho[i * k + j];
            if (rr < tg) {
                double coef = vn * (tg * sqrt(1 - rr * rr) - rr * sqrt(1 - tg * tg)) / (gn * sqrt(1 - tg * tg) + 1e-8);
                for (int64_t c = 0; c < d; c++) v[c] += coef * gj[c];
            }
            rho[i * k + j] = (1 - beta) * tg + beta * rr;
        }
        for (int64_t c = 0; c < d; c++) dir[c] += v[c];
    }
    free(v);
}

static void test_gradvac_sequence_vs_vectors(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 21);
    const int64_t ks[] = {2, 3, 6}, ds[] = {3, 40};
    const double betas[] = {0.5, 0.2};
    for (size_t a_ = 0; a_ < 3; a_++)
        for (size_t b_ = 0; b_ < 2; b_++)
            for (size_t c_ = 0; c_ < 2; c_++) {
                int64_t k = ks[a_], d = ds[b_];
                char p[64];
                snprintf(p, sizeof p, "beta=%g", betas[c_]);
                mtgrad_aggregator *a = make("gradvac", k, p);
                double *G = malloc((size_t)(k * d) * sizeof *G), *orders = malloc((size_t)(k * k) * sizeof *orders);
                double *rho = calloc((size_t)(k * k), sizeof *rho);
                double *dir = malloc((size_t)d * sizeof *dir), *ref = malloc((size_t)d * sizeof *ref);
                double *base = malloc((size_t)(k * d) * sizeof *base);
                fill_normal(&r, base, k * d);
                for (int step = 0; step < 5; step++) {
                    /* drifting gradients: the EMA targets become non-zero and matter */
                    for (int64_t i = 0; i < k * d; i++) G[i] = base[i] + 0.5 * mtgradi_rng_normal(&r);
                    random_orders(&r, k, orders);
                    CHECK(mtgrad_aggregator_set_draws(a, orders, (size_t)(k * k)) == MTGRAD_OK, "draws");
                    CHECK(mtgrad_aggregate_f64(a, G, k, d, d, NULL, dir, NULL) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
                    gradvac_vectors(G, k, d, orders, betas[c_], rho, ref);
                    CHECK_ARRAY_CLOSE(dir, ref, d, 1e-9, 1e-9);
                    CHECK_ARRAY_CLOSE(a->state, rho, k * k, 1e-9, 1e-9);
                }
                mtgrad_aggregator_free(a);
                free(G), free(orders), free(rho), free(dir), free(ref), free(base);
            }
}

/* rho = 0 on the first step: the correction is PCGrad's projection (up to the 1e-8 terms). */
static void test_gradvac_first_step_is_pcgrad(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 8);
    double G[4 * 9], wv[4], wp[4], dir[9];
    fill_normal(&r, G, 36);
    mtgrad_aggregator *v = make("gradvac", 4, "order=ascending"), *p = make("pcgrad", 4, "order=ascending");
    CHECK(mtgrad_aggregate_f64(v, G, 4, 9, 9, NULL, dir, wv) == MTGRAD_OK, "gradvac");
    CHECK(mtgrad_aggregate_f64(p, G, 4, 9, 9, NULL, dir, wp) == MTGRAD_OK, "pcgrad");
    CHECK_ARRAY_CLOSE(wv, wp, 4, 1e-6, 1e-7);
    mtgrad_aggregator_free(v);
    mtgrad_aggregator_free(p);
}

static void test_gradvac_state(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 9);
    double G1[3 * 5], G2[3 * 5], d1[5], d2[5], d2b[5], w[3];
    fill_normal(&r, G1, 15);
    fill_normal(&r, G2, 15);
    mtgrad_aggregator *a = make("gradvac", 3, "order=ascending"), *b = make("gradvac", 3, "order=ascending");
    CHECK(mtgrad_aggregate_f64(a, G1, 3, 5, 5, NULL, d1, w) == MTGRAD_OK, "step 1");
    size_t len = 0;
    mtgrad_aggregator_save(a, NULL, &len);
    unsigned char *buf = malloc(len);
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save");
    CHECK(mtgrad_aggregate_f64(a, G2, 3, 5, 5, NULL, d2, w) == MTGRAD_OK, "step 2");
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load");
    CHECK(mtgrad_aggregate_f64(b, G2, 3, 5, 5, NULL, d2b, w) == MTGRAD_OK, "step 2 after load");
    CHECK_ARRAY_CLOSE(d2b, d2, 5, 0, 0);
    /* the state matters: G2 from a fresh state differs */
    mtgrad_aggregator_reset(b);
    CHECK(mtgrad_aggregate_f64(b, G2, 3, 5, 5, NULL, d2b, w) == MTGRAD_OK, "G2 fresh");
    double diff = 0;
    for (int j = 0; j < 5; j++) diff = fmax(diff, fabs(d2b[j] - d2[j]));
    CHECK(diff > 1e-6, "rho after step 1 should change step 2 (%g)", diff);
    /* a failed call (bad draws) leaves rho unchanged */
    double bad[2] = {0, 1};
    mtgrad_aggregator_load(b, buf, len);
    CHECK(mtgrad_aggregator_set_draws(b, bad, 2) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(b, G2, 3, 5, 5, NULL, d2b, w) == MTGRAD_E_INVAL, "bad draws");
    double asc[9];
    ascending_orders(3, asc);
    CHECK(mtgrad_aggregator_set_draws(b, asc, 9) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(b, G2, 3, 5, 5, NULL, d2b, w) == MTGRAD_OK, "retry");
    CHECK_ARRAY_CLOSE(d2b, d2, 5, 0, 0);
    /* group_type other than 0 is refused at set time and the value stays 0 */
    CHECK(mtgrad_aggregator_set_param(a, "group_type", "1") == MTGRAD_E_UNSUPPORTED, "group_type 1");
    char v[16];
    mtgrad_aggregator_get_param(a, "group_type", v, sizeof v);
    CHECK(strcmp(v, "0") == 0, "group_type kept: %s", v);
    mtgrad_aggregator *c = NULL;
    CHECK(mtgrad_aggregator_new(&c, "gradvac", 3, "group_type=2", NULL, 0) == MTGRAD_E_UNSUPPORTED, "new");
    CHECK(c == NULL, "no aggregator");
    free(buf);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

static void test_gradvac_degenerate(void)
{
    /* zero row, identical rows, scaled rows, k > d: finite output */
    double G[4 * 2] = {0, 0, 1, 2, 1, 2, -3e9, 1e9}, dir[2], w[4];
    mtgrad_aggregator *a = make("gradvac", 4, NULL);
    for (int step = 0; step < 4; step++) {
        CHECK(mtgrad_aggregate_f64(a, G, 4, 2, 2, NULL, dir, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
        CHECK(isfinite(dir[0]) && isfinite(dir[1]), "finite direction");
        for (int i = 0; i < 16; i++) CHECK(isfinite(a->state[i]) && fabs(a->state[i]) <= 1 + 1e-12, "rho in [-1, 1]");
    }
    mtgrad_aggregator_free(a);
}

/* ------------------------------------------------------------------ GradDrop */

static void test_graddrop_hand(void)
{
    /* columns: sums 2, -2, 0, 0; abs sums 4, 4, 0, 6 → P = 0.75, 0.25, NaN, 0.5 */
    double G[12] = {1, -2, 0, 3, 2, 1, 0, -1, -1, -1, 0, -2};
    double U[4] = {0.5, 0.1, 0.3, 0.7}, dir[4];
    /* P > U keeps positives (cols 0, 1), NaN keeps nothing, P < U keeps negatives (col 3) */
    double expect[4] = {3, 1, 0, -3};
    mtgrad_aggregator *a = make("graddrop", 3, NULL);
    CHECK(mtgrad_aggregator_set_draws(a, U, 4) == MTGRAD_OK, "draws");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, NULL) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
    CHECK_ARRAY_CLOSE(dir, expect, 4, 0, 1e-15);
    /* leak 0.5: 0.5 * column sum + 0.5 * kept part */
    double expect_leak[4] = {2.5, -0.5, 0, -1.5};
    CHECK(mtgrad_aggregator_set_param(a, "leak", "0.5") == MTGRAD_OK, "leak");
    CHECK(mtgrad_aggregator_set_draws(a, U, 4) == MTGRAD_OK, "draws");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, NULL) == MTGRAD_OK, "leak 0.5");
    CHECK_ARRAY_CLOSE(dir, expect_leak, 4, 0, 1e-15);
    /* U below every P keeps the positives; above, the negatives */
    double U0[4] = {0, 0, 0, 0}, U1[4] = {1, 1, 1, 1};
    double pos[4] = {3, 1, 0, 3}, neg[4] = {-1, -3, 0, -3};
    CHECK(mtgrad_aggregator_set_param(a, "leak", "0") == MTGRAD_OK, "leak 0");
    CHECK(mtgrad_aggregator_set_draws(a, U0, 4) == MTGRAD_OK, "draws");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, NULL) == MTGRAD_OK, "U = 0");
    CHECK_ARRAY_CLOSE(dir, pos, 4, 0, 1e-15);
    CHECK(mtgrad_aggregator_set_draws(a, U1, 4) == MTGRAD_OK, "draws");
    CHECK(mtgrad_aggregate_f64(a, G, 3, 4, 4, NULL, dir, NULL) == MTGRAD_OK, "U = 1");
    CHECK_ARRAY_CLOSE(dir, neg, 4, 0, 1e-15);
    mtgrad_aggregator_free(a);
}

/* Large d (several blocks), RNG draws one per column in order, f32 and f64, strided G. */
static void test_graddrop_blocks_and_rng(void)
{
    const int64_t k = 4, d = 1001, ld = 1003;
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 77);
    double *G = malloc((size_t)(k * ld) * sizeof *G), *dir = malloc((size_t)d * sizeof *dir);
    double *ref = malloc((size_t)d * sizeof *ref), *sum = malloc((size_t)d * sizeof *sum);
    float *Gf = malloc((size_t)(k * ld) * sizeof *Gf), *dirf = malloc((size_t)d * sizeof *dirf);
    for (int64_t i = 0; i < k * ld; i++) {
        Gf[i] = (float)mtgradi_rng_normal(&r);
        G[i] = (double)Gf[i];
    }
    mtgradi_rng u;
    mtgradi_rng_seed(&u, 42); /* the aggregator's generator with seed=42 */
    for (int64_t j = 0; j < d; j++) {
        double s = 0, sa = 0, uj = mtgradi_rng_uniform(&u);
        for (int64_t i = 0; i < k; i++) s += G[i * ld + j], sa += fabs(G[i * ld + j]);
        double p = 0.5 * (1 + s / sa);
        ref[j] = 0;
        for (int64_t i = 0; i < k; i++) {
            double g = G[i * ld + j];
            if ((p > uj && g > 0) || (p < uj && g < 0)) ref[j] += g;
        }
        sum[j] = s;
    }
    mtgrad_aggregator *a = make("graddrop", k, "seed=42");
    CHECK(mtgrad_aggregate_f64(a, G, k, d, ld, NULL, dir, NULL) == MTGRAD_OK, "f64");
    CHECK_ARRAY_CLOSE(dir, ref, d, 1e-14, 1e-14);
    mtgrad_aggregator_reset(a);
    CHECK(mtgrad_aggregate_f32(a, Gf, k, d, ld, NULL, dirf, NULL) == MTGRAD_OK, "f32");
    for (int64_t j = 0; j < d; j++) dir[j] = (double)dirf[j];
    CHECK_ARRAY_CLOSE(dir, ref, d, 1e-6, 1e-6);
    /* leak = 1 gives the plain sum whatever U */
    CHECK(mtgrad_aggregator_set_param(a, "leak", "1") == MTGRAD_OK, "leak 1");
    CHECK(mtgrad_aggregate_f64(a, G, k, d, ld, NULL, dir, NULL) == MTGRAD_OK, "leak 1");
    CHECK_ARRAY_CLOSE(dir, sum, d, 1e-14, 1e-14);
    mtgrad_aggregator_free(a);
    free(G), free(dir), free(ref), free(sum), free(Gf), free(dirf);
}

static void test_graddrop_errors_and_permutation(void)
{
    double G[6] = {1, -2, 3, -1, 0.5, -4}, G_swapped[6] = {-1, 0.5, -4, 1, -2, 3};
    double U[3] = {0.2, 0.6, 0.9}, dir[3], dir2[3], w[2];
    mtgrad_aggregator *a = make("graddrop", 2, NULL);
    CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, NULL, dir, w) == MTGRAD_E_UNSUPPORTED, "no weights");
    CHECK(mtgrad_aggregator_set_draws(a, U, 2) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, NULL, dir, NULL) == MTGRAD_E_INVAL, "wrong draws count");
    double out_of_range[3] = {0.2, 1.5, 0.1};
    CHECK(mtgrad_aggregator_set_draws(a, out_of_range, 3) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, NULL, dir, NULL) == MTGRAD_E_INVAL, "draw > 1");
    double Gn[6] = {1, NAN, 3, -1, 0.5, -4};
    CHECK(mtgrad_aggregator_set_draws(a, U, 3) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, Gn, 2, 3, 3, NULL, dir, NULL) == MTGRAD_E_NONFINITE, "NaN in G");
    /* swapping the tasks leaves the direction unchanged for the same U */
    CHECK(mtgrad_aggregator_set_draws(a, U, 3) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, NULL, dir, NULL) == MTGRAD_OK, "G");
    CHECK(mtgrad_aggregator_set_draws(a, U, 3) == MTGRAD_OK, "set");
    CHECK(mtgrad_aggregate_f64(a, G_swapped, 2, 3, 3, NULL, dir2, NULL) == MTGRAD_OK, "swapped");
    CHECK_ARRAY_CLOSE(dir2, dir, 3, 0, 0);
    CHECK(mtgrad_aggregator_set_param(a, "leak", "1.5") == MTGRAD_E_INVAL, "leak > 1");
    CHECK(mtgrad_aggregator_set_param(a, "f", "tanh") == MTGRAD_E_INVAL, "only identity");
    double Z[6] = {0}, z3[3];
    CHECK(mtgrad_aggregate_f64(a, Z, 2, 3, 3, NULL, z3, NULL) == MTGRAD_OK, "zero G");
    for (int j = 0; j < 3; j++) CHECK(z3[j] == 0, "zero column gives 0, not NaN");
    mtgrad_aggregator_free(a);
}

int main(void)
{
    test_pcgrad_vs_vectors();
    test_pcgrad_k2_closed_form();
    test_pcgrad_order();
    test_pcgrad_self_projection();
    test_pcgrad_params_and_errors();
    test_pcgrad_degenerate();
    test_gradvac_sequence_vs_vectors();
    test_gradvac_first_step_is_pcgrad();
    test_gradvac_state();
    test_gradvac_degenerate();
    test_graddrop_hand();
    test_graddrop_blocks_and_rng();
    test_graddrop_errors_and_permutation();
    return harness_report();
}
