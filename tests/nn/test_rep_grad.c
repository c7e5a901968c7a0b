/* Representation gradients and pass counters (MGDA-UB's one-trunk-pass backward):
 * - backward_head(i) then backward_trunk == backward_task(i), bit for bit (trunk row and head
 *   slice), for heads with layers, with dropout, and empty;
 * - backward_head's dL_i/dZ against central differences of L_i with respect to Z, computed on a
 *   second model whose trunk is the identity ("flatten") and whose heads are copies of the first
 *   model's heads, fed Z (read from the first model's trunk output) as its input;
 * - backward_trunk(R) against central differences of sum(R . Z(theta)) along a random direction
 *   of the trunk parameters, R arbitrary;
 * - backward_trunk(sum_i w_i dL_i/dZ) == backward_weighted(w)'s trunk slice (float rounding);
 * - 1 and 2 threads give the same bits;
 * - the pass counters after each kind of call, reset, failed calls count nothing;
 * - errors: NULL, bad task, no (train, with targets) forward. */
#include "harness.h"
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

static mtgradi_rng rng;

static float *randf(int64_t n, double lo, double hi)
{
    float *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    for (int64_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * mtgradi_rng_uniform(&rng));
    return a;
}

static float *zeros(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* A 3-task model: a conv trunk ending in a linear layer of 6 features, a head with layers, a head
 * with a ReLU and dropout, an empty head (CE over the 6 features). */
#define REP 6
static const char *HEADS[3] = {"linear:4", "relu,dropout:0.3,linear:1", ""};
static const mtgrad_loss_kind LOSSES[3] = {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE, MTGRAD_LOSS_CE};

static mtgrad_model *make(const char *trunk, int64_t c, int64_t h, int64_t w, int64_t nb,
                          uint64_t seed)
{
    mtgrad_model_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.in_c = c, sp.in_h = h, sp.in_w = w;
    sp.trunk = trunk;
    sp.k = 3;
    for (int i = 0; i < 3; i++) sp.heads[i] = HEADS[i], sp.losses[i] = LOSSES[i];
    sp.max_batch = nb;
    mtgrad_model *m = NULL;
    char err[256] = "";
    CHECK(mtgrad_model_new(&m, &sp, seed, err, sizeof err) == MTGRAD_OK && m, "new: %s", err);
    return m;
}

static const char *TRUNK = "conv:2:3,relu,maxpool:2,flatten,linear:6,relu,linear:6";

static mtgrad_model *make_main(int64_t nb) { return make(TRUNK, 1, 8, 8, nb, 3); }

/* CE targets in [0, width), MSE targets normal. */
static float *targets(const mtgrad_model *m, int64_t n)
{
    float *y = malloc((size_t)(3 * n) * sizeof *y);
    for (int64_t i = 0; i < 3; i++)
        for (int64_t s = 0; s < n; s++)
            y[i * n + s] = LOSSES[i] == MTGRAD_LOSS_CE
                               ? (float)mtgradi_rng_below(&rng, mtgrad_model_output_width(m, i))
                               : (float)mtgradi_rng_normal(&rng);
    return y;
}

static int same_bits(const float *a, const float *b, int64_t n)
{
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* ------------------------------------------------------------------ head + trunk == task */

static void test_split_equals_task(void)
{
    const int64_t n = 7;
    mtgrad_model *m = make_main(n);
    if (!m) return;
    const int64_t np = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m);
    CHECK(mtgrad_model_rep_size(m) == REP, "rep_size %lld", (long long)mtgrad_model_rep_size(m));
    float *x = randf(n * 64, -1, 1), *y = targets(m, n);
    float *g1 = zeros(np), *g2 = zeros(np), *row1 = zeros(d), *row2 = zeros(d);
    float *rep = zeros(n * REP);
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    for (int64_t t = 0; t < 3; t++) {
        memset(g1, 0, (size_t)np * sizeof *g1);
        memset(g2, 0, (size_t)np * sizeof *g2);
        CHECK(mtgrad_model_backward_task(m, t, row1, g1) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        CHECK(mtgrad_model_backward_head(m, t, rep, g2) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        CHECK(mtgrad_model_backward_trunk(m, rep, row2) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        CHECK(same_bits(row1, row2, d), "task %lld: trunk rows differ", (long long)t);
        CHECK(same_bits(g1, g2, np), "task %lld: head slices differ", (long long)t);
        /* the trunk slice of grad is not touched by backward_head */
        int untouched = 1;
        for (int64_t j = 0; j < d; j++) untouched &= g2[j] == 0;
        CHECK(untouched, "backward_head wrote the trunk slice of grad");
        /* grad NULL skips the head but gives the same rep gradient */
        float *rep2 = zeros(n * REP);
        CHECK(mtgrad_model_backward_head(m, t, rep2, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        CHECK(same_bits(rep, rep2, n * REP), "grad NULL changed rep_grad");
        free(rep2);
    }
    /* the empty head: dL/dZ is the CE gradient at Z itself, (softmax(Z) - onehot) / n */
    const float *z = m->stack[0].y;
    CHECK(mtgrad_model_backward_head(m, 2, rep, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double err = 0;
    for (int64_t s = 0; s < n; s++) {
        double mx = z[s * REP], sum = 0;
        for (int j = 1; j < REP; j++) mx = z[s * REP + j] > mx ? z[s * REP + j] : mx;
        for (int j = 0; j < REP; j++) sum += exp(z[s * REP + j] - mx);
        for (int j = 0; j < REP; j++) {
            double p = exp(z[s * REP + j] - mx) / sum - (j == (int)y[2 * n + s]);
            double e = fabs(p / (double)n - rep[s * REP + j]);
            err = e > err ? e : err;
        }
    }
    CHECK(err < 1e-6, "empty head: CE gradient off by %g", err);
    free(x), free(y), free(g1), free(g2), free(row1), free(row2), free(rep);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ dL/dZ by differences */

/* Copy every head tensor of `from` into `to` (same head lists, same head input size). */
static void copy_heads(const mtgrad_model *from, mtgrad_model *to)
{
    const float *src = mtgrad_model_params((mtgrad_model *)from);
    float *dst = mtgrad_model_params(to);
    for (int64_t t = 0; t < 3; t++) {
        CHECK(mtgrad_model_head_size(from, t) == mtgrad_model_head_size(to, t), "head sizes");
        memcpy(dst + mtgrad_model_head_offset(to, t), src + mtgrad_model_head_offset(from, t),
               (size_t)mtgrad_model_head_size(from, t) * sizeof *dst);
    }
}

/* Loss of task t of model b (trunk = identity) at input z, the dropout stream reset to st. */
static double loss_at(mtgrad_model *b, const float *z, const float *y, int64_t n, int64_t t,
                      const uint64_t st[4])
{
    double L[3];
    mtgrad_model_set_rng(b, st);
    CHECK(mtgrad_model_forward(b, z, y, n, 1, L) == MTGRAD_OK, "%s", mtgrad_model_error(b));
    return L[t];
}

static void test_rep_grad_fd(void)
{
    const int64_t n = 5;
    mtgrad_model *a = make_main(n);
    mtgrad_model *b = make("flatten", REP, 1, 1, n, 99);
    if (!a || !b) goto out;
    CHECK(mtgrad_model_num_shared(b) == 0, "identity trunk has parameters");
    copy_heads(a, b);
    float *x = randf(n * 64, -1, 1), *y = targets(a, n), *rep = zeros(n * REP);
    float *z = zeros(n * REP);
    uint64_t st[4];
    mtgrad_model_get_rng(a, st);
    mtgrad_model_set_rng(b, st); /* same dropout masks in a's and b's heads */
    CHECK(mtgrad_model_forward(a, x, y, n, 1, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(a));
    memcpy(z, a->stack[0].y, (size_t)(n * REP) * sizeof *z);
    for (int64_t t = 0; t < 3; t++) {
        CHECK(mtgrad_model_backward_head(a, t, rep, NULL) == MTGRAD_OK, "%s",
              mtgrad_model_error(a));
        double an[5 * REP], fd[5 * REP];
        for (int64_t j = 0; j < n * REP; j++) {
            float save = z[j];
            z[j] = save + 3e-3f;
            double hp = z[j], fp = loss_at(b, z, y, n, t, st);
            z[j] = save - 3e-3f;
            double hm = z[j], fm = loss_at(b, z, y, n, t, st);
            z[j] = save;
            fd[j] = (fp - fm) / (hp - hm);
            an[j] = rep[j];
        }
        CHECK_ARRAY_CLOSE(an, fd, n * REP, 2e-2, 1e-4);
    }
    free(x), free(y), free(rep), free(z);
out:
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* ------------------------------------------------------------------ backward_trunk by differences */

/* sum(R . Z) at the current parameters (no dropout in the trunk: no generator to reset). */
static double rz(mtgrad_model *m, const float *x, const float *y, int64_t n, const float *R)
{
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double f = 0;
    for (int64_t j = 0; j < n * REP; j++) f += (double)R[j] * m->stack[0].y[j];
    return f;
}

static void test_trunk_fd(void)
{
    const int64_t n = 6;
    mtgrad_model *m = make_main(n);
    if (!m) return;
    const int64_t d = mtgrad_model_num_shared(m);
    float *x = randf(n * 64, -1, 1), *y = targets(m, n), *R = randf(n * REP, -1, 1);
    float *dir = randf(d, -1, 1), *g = zeros(d), *p = mtgrad_model_params(m);
    float *save = malloc((size_t)d * sizeof *save);
    (void)rz(m, x, y, n, R);
    CHECK(mtgrad_model_backward_trunk(m, R, g) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    const double h = 1e-3;
    memcpy(save, p, (size_t)d * sizeof *p);
    double an = 0;
    for (int64_t j = 0; j < d; j++) {
        float hi = (float)(save[j] + h * dir[j]), lo = (float)(save[j] - h * dir[j]);
        an += (double)g[j] * ((double)hi - (double)lo) / (2 * h);
    }
    for (int64_t j = 0; j < d; j++) p[j] = (float)(save[j] + h * dir[j]);
    double fp = rz(m, x, y, n, R);
    for (int64_t j = 0; j < d; j++) p[j] = (float)(save[j] - h * dir[j]);
    double fm = rz(m, x, y, n, R);
    memcpy(p, save, (size_t)d * sizeof *p);
    double fd = (fp - fm) / (2 * h);
    CHECK(harness_close(an, fd, 1e-2, 1e-5), "backward_trunk: analytic %.8g vs fd %.8g", an, fd);
    free(x), free(y), free(R), free(dir), free(g), free(save);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ weighted through Z */

static void test_weighted_through_rep(void)
{
    const int64_t n = 8;
    mtgrad_model *m = make_main(n);
    if (!m) return;
    const int64_t np = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m);
    float *x = randf(n * 64, -1, 1), *y = targets(m, n), *rep = zeros(n * REP);
    float *sum = zeros(n * REP), *row = zeros(d), *gw = zeros(np), *gh = zeros(np);
    const double w[3] = {0.6, -1.7, 2.5};
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    for (int64_t t = 0; t < 3; t++) {
        CHECK(mtgrad_model_backward_head(m, t, rep, gh) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        for (int64_t j = 0; j < n * REP; j++) sum[j] += (float)(w[t] * rep[j]);
    }
    CHECK(mtgrad_model_backward_trunk(m, sum, row) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_weighted(m, w, gw) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double *a = malloc((size_t)np * sizeof *a), *b = malloc((size_t)np * sizeof *b);
    double scale = 0;
    for (int64_t j = 0; j < d; j++) scale = fabs(gw[j]) > scale ? fabs(gw[j]) : scale;
    for (int64_t j = 0; j < d; j++) a[j] = row[j], b[j] = gw[j];
    CHECK_ARRAY_CLOSE(a, b, d, 1e-5, 1e-6 * scale);
    /* head slices: w_i times the head's own gradient */
    for (int64_t t = 0; t < 2; t++) {
        int64_t off = mtgrad_model_head_offset(m, t), hs = mtgrad_model_head_size(m, t);
        for (int64_t j = 0; j < hs; j++) a[j] = gw[off + j], b[j] = w[t] * gh[off + j];
        CHECK_ARRAY_CLOSE(a, b, hs, 1e-6, 1e-9);
    }
    free(a), free(b), free(x), free(y), free(rep), free(sum), free(row), free(gw), free(gh);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ threads */

static void run_threads(int threads, const float *x, const float *y, int64_t n, float *rep,
                        float *row)
{
    mtgrad_nn_set_threads(threads);
    mtgrad_model *m = make("conv:4:3,relu,maxpool:2,conv:6:3,relu,flatten,linear:6", 1, 10, 10, n, 8);
    if (!m) return;
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_head(m, 1, rep, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_trunk(m, rep, row) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    mtgrad_model_free(m);
}

static void test_threads(void)
{
    const int64_t n = 19, d = 4 * 9 + 4 + 6 * 4 * 9 + 6 + 6 * 6 * 2 * 2 + 6;
    float *x = randf(n * 100, -1, 1), *y = malloc((size_t)(3 * n) * sizeof *y);
    for (int64_t s = 0; s < n; s++) {
        y[s] = (float)mtgradi_rng_below(&rng, 4);
        y[n + s] = (float)mtgradi_rng_normal(&rng);
        y[2 * n + s] = (float)mtgradi_rng_below(&rng, REP);
    }
    float *r1 = zeros(n * REP), *r2 = zeros(n * REP), *t1 = zeros(d), *t2 = zeros(d);
    const int saved = mtgrad_nn_threads();
    run_threads(1, x, y, n, r1, t1);
    run_threads(2, x, y, n, r2, t2);
    mtgrad_nn_set_threads(saved);
    CHECK(same_bits(r1, r2, n * REP), "rep_grad depends on the thread count");
    CHECK(same_bits(t1, t2, d), "backward_trunk depends on the thread count");
    free(x), free(y), free(r1), free(r2), free(t1), free(t2);
}

/* ------------------------------------------------------------------ counters */

static int counts_are(const mtgrad_model *m, int64_t fw, int64_t tb, int64_t h0, int64_t h1,
                      int64_t h2)
{
    mtgrad_pass_counts c;
    memset(&c, 0x55, sizeof c);
    mtgrad_model_passes(m, &c);
    int ok = c.forwards == fw && c.trunk_backwards == tb && c.head_backwards[0] == h0 &&
             c.head_backwards[1] == h1 && c.head_backwards[2] == h2;
    for (int i = 3; i < MTGRAD_NN_MAX_TASKS; i++) ok &= c.head_backwards[i] == 0;
    if (!ok)
        fprintf(stderr, "  counts: fw %lld tb %lld heads %lld %lld %lld\n", (long long)c.forwards,
                (long long)c.trunk_backwards, (long long)c.head_backwards[0],
                (long long)c.head_backwards[1], (long long)c.head_backwards[2]);
    return ok;
}

static void test_counters(void)
{
    const int64_t n = 4;
    mtgrad_model *m = make_main(n);
    if (!m) return;
    const int64_t np = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m);
    float *x = randf(n * 64, -1, 1), *y = targets(m, n), *g = zeros(np), *rep = zeros(n * REP);
    CHECK(counts_are(m, 0, 0, 0, 0, 0), "fresh model");
    CHECK(mtgrad_model_forward(m, x, NULL, n, 0, NULL) == MTGRAD_OK, "inference forward");
    CHECK(counts_are(m, 1, 0, 0, 0, 0), "after an inference forward");
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "train forward");
    CHECK(counts_are(m, 2, 0, 0, 0, 0), "after a train forward");
    CHECK(mtgrad_model_backward_task(m, 1, g, g) == MTGRAD_OK, "task");
    CHECK(counts_are(m, 2, 1, 0, 1, 0), "after backward_task(1)");
    CHECK(mtgrad_model_backward_task(m, 2, g, g) == MTGRAD_OK, "task");
    CHECK(counts_are(m, 2, 2, 0, 1, 1), "after backward_task(2) (empty head counts)");
    CHECK(mtgrad_model_backward_head(m, 0, rep, NULL) == MTGRAD_OK, "head");
    CHECK(counts_are(m, 2, 2, 1, 1, 1), "after backward_head(0)");
    CHECK(mtgrad_model_backward_trunk(m, rep, g) == MTGRAD_OK, "trunk");
    CHECK(counts_are(m, 2, 3, 1, 1, 1), "after backward_trunk");
    const double w[3] = {1, 0, 2};
    CHECK(mtgrad_model_backward_weighted(m, w, g) == MTGRAD_OK, "weighted");
    CHECK(counts_are(m, 2, 4, 2, 1, 2), "after backward_weighted with w_1 = 0");
    CHECK(mtgrad_model_backward_weighted(m, NULL, g) == MTGRAD_OK, "weighted");
    CHECK(counts_are(m, 2, 5, 3, 2, 3), "after backward_weighted(NULL)");
    /* failed calls count nothing */
    CHECK(mtgrad_model_backward_head(m, 3, rep, NULL) == MTGRAD_E_INVAL, "bad task");
    CHECK(mtgrad_model_backward_trunk(m, NULL, g) == MTGRAD_E_INVAL, "NULL rep");
    CHECK(mtgrad_model_forward(m, x, y, n + 1, 1, NULL) == MTGRAD_E_SHAPE, "n > max_batch");
    CHECK(counts_are(m, 2, 5, 3, 2, 3), "failed calls counted");
    mtgrad_model_reset_passes(m);
    CHECK(counts_are(m, 0, 0, 0, 0, 0), "after reset");
    mtgrad_model_reset_passes(NULL);
    mtgrad_pass_counts c;
    memset(&c, 0x55, sizeof c);
    mtgrad_model_passes(NULL, &c);
    int zero = c.forwards == 0 && c.trunk_backwards == 0;
    for (int i = 0; i < MTGRAD_NN_MAX_TASKS; i++) zero &= c.head_backwards[i] == 0;
    CHECK(zero, "passes(NULL) is not all zeros");
    mtgrad_model_passes(m, NULL); /* no crash */
    (void)d;
    free(x), free(y), free(g), free(rep);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ errors */

static void test_errors(void)
{
    const int64_t n = 3;
    mtgrad_model *m = make_main(n);
    if (!m) return;
    const int64_t np = mtgrad_model_num_params(m);
    float *x = randf(n * 64, -1, 1), *y = targets(m, n), *g = zeros(np), *rep = zeros(n * REP);
    CHECK(mtgrad_model_rep_size(NULL) == 0, "rep_size(NULL)");
    CHECK(mtgrad_model_backward_head(NULL, 0, rep, g) == MTGRAD_E_INVAL, "NULL model");
    CHECK(mtgrad_model_backward_trunk(NULL, rep, g) == MTGRAD_E_INVAL, "NULL model");
    /* no forward yet */
    CHECK(mtgrad_model_backward_head(m, 0, rep, g) == MTGRAD_E_STATE, "no forward");
    CHECK(strstr(mtgrad_model_error(m), "forward") != NULL, "message: %s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_trunk(m, rep, g) == MTGRAD_E_STATE, "no forward");
    /* inference forward, or a train forward without targets: still no backward */
    CHECK(mtgrad_model_forward(m, x, y, n, 0, NULL) == MTGRAD_OK, "eval forward");
    CHECK(mtgrad_model_backward_head(m, 0, rep, g) == MTGRAD_E_STATE, "after eval forward");
    CHECK(mtgrad_model_backward_trunk(m, rep, g) == MTGRAD_E_STATE, "after eval forward");
    CHECK(mtgrad_model_forward(m, x, NULL, n, 1, NULL) == MTGRAD_OK, "train, no targets");
    CHECK(mtgrad_model_backward_head(m, 0, rep, g) == MTGRAD_E_STATE, "no targets");
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "train forward");
    CHECK(mtgrad_model_backward_head(m, -1, rep, g) == MTGRAD_E_INVAL, "task -1");
    CHECK(mtgrad_model_backward_head(m, 3, rep, g) == MTGRAD_E_INVAL, "task k");
    CHECK(strstr(mtgrad_model_error(m), "task 3") != NULL, "message: %s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_head(m, 0, NULL, g) == MTGRAD_E_INVAL, "NULL rep_grad");
    CHECK(mtgrad_model_backward_trunk(m, NULL, g) == MTGRAD_E_INVAL, "NULL rep_grad");
    CHECK(mtgrad_model_backward_trunk(m, rep, NULL) == MTGRAD_E_INVAL, "NULL trunk_grad");
    CHECK(mtgrad_model_backward_head(m, 0, rep, g) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_trunk(m, rep, g) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    /* a failed forward forgets the previous one */
    CHECK(mtgrad_model_forward(m, x, y, 0, 1, NULL) == MTGRAD_E_SHAPE, "n = 0");
    CHECK(mtgrad_model_backward_trunk(m, rep, g) == MTGRAD_E_STATE, "after a failed forward");
    free(x), free(y), free(g), free(rep);
    mtgrad_model_free(m);
}

int main(void)
{
    mtgradi_rng_seed(&rng, 2024);
    test_split_equals_task();
    test_rep_grad_fd();
    test_trunk_fd();
    test_weighted_through_rep();
    test_threads();
    test_counters();
    test_errors();
    return harness_report();
}
