/* The model as a whole:
 * - the arena layout and tensor names/offsets/sizes of the LeNet of the spec (d = 30890);
 * - init: every tensor inside +-1/sqrt(fan_in), mean and variance of the uniform, seeds;
 * - forward against the reference kernels composed by hand;
 * - gradients: directional central differences of the losses (every layer kind, in the trunk and
 *   in heads, so that each layer's input gradient reaches trunk parameters; every loss; empty
 *   heads; dropout with its mask held fixed through the generator state) and per-element
 *   differences on a tiny model, through both backward_task and backward_weighted;
 * - sum_i w_i backward_task(i) == backward_weighted(w) (trunk), head slices == w_i x head grads,
 *   repeated backward calls give the same bits, grad == NULL and untouched slices;
 * - dropout/dropout2d in train and eval, scale, same seed same mask, get/set_rng;
 * - 1 thread vs 2 threads: bit-identical losses, outputs and gradients;
 * - every error path of new/forward/backward/accessors. */
#include "harness.h"
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

static mtgradi_rng rng;

typedef struct cfg {
    int64_t c, h, w;
    const char *trunk;
    int64_t k;
    const char *heads[4];
    mtgrad_loss_kind losses[4];
} cfg;

static mtgrad_model *make(const cfg *c, int64_t max_batch, uint64_t seed)
{
    mtgrad_model_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.in_c = c->c, sp.in_h = c->h, sp.in_w = c->w;
    sp.trunk = c->trunk;
    sp.k = c->k;
    for (int64_t i = 0; i < c->k; i++) sp.heads[i] = c->heads[i], sp.losses[i] = c->losses[i];
    sp.max_batch = max_batch;
    mtgrad_model *m = NULL;
    char err[256] = "";
    mtgrad_status s = mtgrad_model_new(&m, &sp, seed, err, sizeof err);
    CHECK(s == MTGRAD_OK && m, "model_new(%s): %s", c->trunk, err);
    return m;
}

static float *randf(int64_t n, double lo, double hi)
{
    float *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    for (int64_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * mtgradi_rng_uniform(&rng));
    return a;
}

/* Targets (k x n, task-major) that suit each head's loss. */
static float *targets(const mtgrad_model *m, int64_t n)
{
    int64_t k = mtgrad_model_k(m);
    float *y = malloc((size_t)(k * n) * sizeof *y);
    for (int64_t i = 0; i < k; i++)
        for (int64_t s = 0; s < n; s++) {
            mtgrad_loss_kind L = mtgrad_model_loss(m, i);
            y[i * n + s] = L == MTGRAD_LOSS_CE
                               ? (float)mtgradi_rng_below(&rng, mtgrad_model_output_width(m, i))
                           : L == MTGRAD_LOSS_BCE ? (float)mtgradi_rng_below(&rng, 2)
                                                  : (float)mtgradi_rng_normal(&rng);
        }
    return y;
}

/* ------------------------------------------------------------------ layout and init */

static const cfg LENET = {1, 36, 36,
                          "conv:10:9,relu,maxpool:2,conv:20:5,relu,maxpool:2,flatten,linear:50,relu",
                          2, {"linear:10", "linear:10"}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_CE}};

static void test_lenet_layout(void)
{
    mtgrad_model *m = make(&LENET, 8, 1);
    if (!m) return;
    CHECK(mtgrad_model_num_shared(m) == 820 + 5020 + 25050, "d = %lld", (long long)mtgrad_model_num_shared(m));
    CHECK(mtgrad_model_num_params(m) == 30890 + 2 * 510, "params %lld", (long long)mtgrad_model_num_params(m));
    CHECK(mtgrad_model_k(m) == 2 && mtgrad_model_max_batch(m) == 8, "k, max_batch");
    CHECK(mtgrad_model_input_size(m) == 1296, "input size");
    for (int i = 0; i < 2; i++) {
        CHECK(mtgrad_model_head_offset(m, i) == 30890 + 510 * i, "head %d offset", i);
        CHECK(mtgrad_model_head_size(m, i) == 510, "head %d size", i);
        CHECK(mtgrad_model_output_width(m, i) == 10, "head %d width", i);
        CHECK(mtgrad_model_loss(m, i) == MTGRAD_LOSS_CE, "head %d loss", i);
    }
    const struct { const char *name; int64_t off, numel; } want[] = {
        {"trunk.0.weight", 0, 810},        {"trunk.0.bias", 810, 10},
        {"trunk.3.weight", 820, 5000},     {"trunk.3.bias", 5820, 20},
        {"trunk.7.weight", 5840, 25000},   {"trunk.7.bias", 30840, 50},
        {"head0.0.weight", 30890, 500},    {"head0.0.bias", 31390, 10},
        {"head1.0.weight", 31400, 500},    {"head1.0.bias", 31900, 10},
    };
    CHECK(mtgrad_model_tensor_count(m) == 10, "tensor count %lld", (long long)mtgrad_model_tensor_count(m));
    for (int i = 0; i < 10; i++) {
        const char *name = NULL;
        int64_t off = -1, numel = -1;
        CHECK(mtgrad_model_tensor(m, i, &name, &off, &numel) == MTGRAD_OK, "tensor %d", i);
        CHECK(name && strcmp(name, want[i].name) == 0 && off == want[i].off && numel == want[i].numel,
              "tensor %d: %s @%lld x%lld, want %s @%lld x%lld", i, name ? name : "?",
              (long long)off, (long long)numel, want[i].name, (long long)want[i].off,
              (long long)want[i].numel);
    }
    /* init: inside +-1/sqrt(fan_in); fan_in 81, 81, 250, 250, 500, 500, 50, ... */
    const double fan[10] = {81, 81, 250, 250, 500, 500, 50, 50, 50, 50};
    const float *p = mtgrad_model_params(m);
    double s1 = 0, s2 = 0, s4 = 0, top = 0;
    int64_t total = 0;
    for (int i = 0; i < 10; i++) {
        double b = 1 / sqrt(fan[i]);
        int inside = 1;
        for (int64_t j = 0; j < want[i].numel; j++) {
            double u = p[want[i].off + j] / b; /* ~ U(-1, 1) */
            inside &= fabs(u) <= 1;
            s1 += u, s2 += u * u, s4 += u * u * u * u;
            top = fabs(u) > top ? fabs(u) : top;
            total++;
        }
        CHECK(inside, "%s outside +-1/sqrt(%g)", want[i].name, fan[i]);
    }
    double N = (double)total, mean = s1 / N, var = s2 / N - mean * mean;
    CHECK(fabs(mean) < 5 * sqrt(1.0 / 3 / N), "standardised init mean %g", mean);
    CHECK(fabs(var - 1.0 / 3) < 5 * sqrt(4.0 / 45 / N), "standardised init variance %g, want 1/3", var);
    CHECK(fabs(s4 / N - 0.2) < 0.01, "fourth moment %g, want 1/5 (uniform, not normal)", s4 / N);
    CHECK(top > 0.999, "the draws reach the bound (max %g)", top);
    /* same seed, same bits; another seed, other values */
    mtgrad_model *m2 = make(&LENET, 3, 1), *m3 = make(&LENET, 8, 2);
    if (m2 && m3) {
        size_t bytes = (size_t)mtgrad_model_num_params(m) * sizeof(float);
        CHECK(memcmp(p, mtgrad_model_params(m2), bytes) == 0, "same seed, same init");
        CHECK(memcmp(p, mtgrad_model_params(m3), bytes) != 0, "another seed, another init");
    }
    mtgrad_model_free(m2);
    mtgrad_model_free(m3);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ forward vs references */

static void test_forward_vs_reference(void)
{
    const cfg c = {2, 7, 7, "conv:3:3:1:1,relu,maxpool:2,flatten,linear:5,relu", 2,
                   {"linear:4", "dropout:0.5,linear:1"}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE}};
    mtgrad_model *m = make(&c, 6, 3);
    if (!m) return;
    const int64_t n = 4;
    float *x = randf(n * 98, -1, 1);
    CHECK(mtgrad_model_forward(m, x, NULL, n, 0, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    const float *P = mtgrad_model_params(m);
    /* by hand with the reference kernels */
    mtgradi_conv_geom g = {2, 7, 7, 3, 3, 1, 1, 7, 7};
    float conv[4 * 147], pool[4 * 27], fc[4 * 5], out0[4 * 4], out1[4];
    mtgradi_conv2d_forward_ref(&g, n, x, P, P + 54, conv);
    for (int i = 0; i < 4 * 147; i++) conv[i] = conv[i] > 0 ? conv[i] : 0;
    for (int s = 0; s < 4 * 3; s++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                float mx = -INFINITY;
                for (int u = 0; u < 2; u++)
                    for (int v = 0; v < 2; v++) {
                        float t = conv[s * 49 + (2 * a + u) * 7 + 2 * b + v];
                        mx = t > mx ? t : mx;
                    }
                pool[s * 9 + a * 3 + b] = mx;
            }
    mtgradi_linear_forward_ref(n, 27, 5, pool, P + 57, P + 57 + 135, fc);
    for (int i = 0; i < 20; i++) fc[i] = fc[i] > 0 ? fc[i] : 0;
    int64_t h0 = mtgrad_model_head_offset(m, 0), h1 = mtgrad_model_head_offset(m, 1);
    CHECK(h0 == 57 + 140 && h1 == h0 + 24, "head offsets %lld %lld", (long long)h0, (long long)h1);
    mtgradi_linear_forward_ref(n, 5, 4, fc, P + h0, P + h0 + 20, out0);
    mtgradi_linear_forward_ref(n, 5, 1, fc, P + h1, P + h1 + 5, out1); /* eval: no dropout */
    int64_t w0 = 0, w1 = 0;
    const float *o0 = mtgrad_model_output(m, 0, &w0), *o1 = mtgrad_model_output(m, 1, &w1);
    CHECK(w0 == 4 && w1 == 1 && o0 && o1, "output widths %lld %lld", (long long)w0, (long long)w1);
    if (o0 && o1) {
        double a[16], b[16];
        for (int i = 0; i < 16; i++) a[i] = o0[i], b[i] = out0[i];
        CHECK_ARRAY_CLOSE(a, b, 16, 1e-5, 1e-6);
        for (int i = 0; i < 4; i++) a[i] = o1[i], b[i] = out1[i];
        CHECK_ARRAY_CLOSE(a, b, 4, 1e-5, 1e-6);
    }
    /* the losses of that output, by their closed forms */
    float y[8] = {0, 3, 1, 2, 0.5f, -1, 2, 0};
    double L[2];
    CHECK(mtgrad_model_forward(m, x, y, n, 0, L) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double ce = 0, mse = 0;
    for (int s = 0; s < 4; s++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < 4; j++) mx = out0[s * 4 + j] > mx ? out0[s * 4 + j] : mx;
        for (int j = 0; j < 4; j++) sum += exp(out0[s * 4 + j] - mx);
        ce += mx + log(sum) - out0[s * 4 + (int)y[s]];
        mse += (out1[s] - y[4 + s]) * (out1[s] - y[4 + s]);
    }
    CHECK_CLOSE(L[0], ce / 4, 1e-5, 0);
    CHECK_CLOSE(L[1], mse / 4, 1e-5, 1e-7);
    /* no targets: losses are NaN */
    CHECK(mtgrad_model_forward(m, x, NULL, n, 0, L) == MTGRAD_OK && isnan(L[0]) && isnan(L[1]),
          "losses without targets");
    free(x);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ gradients */

/* sum_i w_i L_i at the current parameters, the dropout stream reset to st first. */
static double weighted_loss(mtgrad_model *m, const float *x, const float *y, int64_t n,
                            const uint64_t st[4], const double *w)
{
    double L[MTGRAD_NN_MAX_TASKS], f = 0;
    mtgrad_model_set_rng(m, st);
    mtgrad_status s = mtgrad_model_forward(m, x, y, n, 1, L);
    CHECK(s == MTGRAD_OK, "forward: %s", mtgrad_model_error(m));
    for (int64_t i = 0; i < mtgrad_model_k(m); i++) f += w[i] * L[i];
    return f;
}

/* Moves the whole arena to p+ = p + h d and p- = p - h d (rounded to float) and returns
 * (f(p+) - f(p-)) / 2h; *an gets g . (p+ - p-) / 2h, the analytic prediction for exactly the
 * perturbation that was applied (no float rounding of h d in the comparison). */
static double fd_dir(mtgrad_model *m, const float *x, const float *y, int64_t n,
                     const uint64_t st[4], const double *w, const float *d, double h,
                     const float *g, double *an)
{
    const int64_t np = mtgrad_model_num_params(m);
    float *p = mtgrad_model_params(m), *save = malloc((size_t)np * sizeof *save);
    memcpy(save, p, (size_t)np * sizeof *p);
    *an = 0;
    for (int64_t j = 0; j < np; j++) {
        float hi = (float)(save[j] + h * d[j]), lo = (float)(save[j] - h * d[j]);
        *an += (double)g[j] * ((double)hi - (double)lo) / (2 * h);
    }
    for (int64_t j = 0; j < np; j++) p[j] = (float)(save[j] + h * d[j]);
    double fp = weighted_loss(m, x, y, n, st, w);
    for (int64_t j = 0; j < np; j++) p[j] = (float)(save[j] - h * d[j]);
    double fm = weighted_loss(m, x, y, n, st, w);
    memcpy(p, save, (size_t)np * sizeof *p);
    free(save);
    return (fp - fm) / (2 * h);
}

/* Small enough that no ReLU or pooling winner flips in these seeded models (with h = 1e-3 the
 * small LeNet's difference quotient is 2.5% off and converges to the analytic value as h
 * shrinks: a kink, not a bug), large enough for float32 losses. */
#define H 1e-4

/* Directional checks of backward_weighted (all tasks, weights w) and of backward_task (each task
 * alone: trunk row + head slice). */
static void grad_check(const cfg *c, int64_t n, const char *what)
{
    mtgrad_model *m = make(c, n + 2, 11);
    if (!m) return;
    const int64_t np = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m), k = c->k;
    float *x = randf(n * c->c * c->h * c->w, -1, 1), *y = targets(m, n);
    float *dir = randf(np, -1, 1), *grad = randf(np, 0, 0), *row = randf(d, 0, 0);
    uint64_t st[4];
    mtgrad_model_get_rng(m, st);
    double w[4] = {0.7, -1.3, 2.1, 0.4};
    (void)weighted_loss(m, x, y, n, st, w);
    CHECK(mtgrad_model_backward_weighted(m, w, grad) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double an, fd = fd_dir(m, x, y, n, st, w, dir, H, grad, &an);
    CHECK(harness_close(an, fd, 1e-2, 1e-5), "%s weighted: analytic %.8g vs fd %.8g", what, an, fd);
    for (int64_t t = 0; t < k; t++) {
        double e[4] = {0, 0, 0, 0};
        e[t] = 1;
        (void)weighted_loss(m, x, y, n, st, e);
        memset(grad, 0, (size_t)np * sizeof *grad);
        CHECK(mtgrad_model_backward_task(m, t, row, grad) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        memcpy(grad, row, (size_t)d * sizeof *row); /* trunk part + head t's slice */
        fd = fd_dir(m, x, y, n, st, e, dir, H, grad, &an);
        CHECK(harness_close(an, fd, 1e-2, 1e-5), "%s task %lld: analytic %.8g vs fd %.8g", what,
              (long long)t, an, fd);
    }
    free(x), free(y), free(dir), free(grad), free(row);
    mtgrad_model_free(m);
}

static void test_gradients(void)
{
    const cfg lenet_small = {1, 12, 12, "conv:3:3,relu,maxpool:2,conv:4:3,relu,flatten,linear:8,relu", 3,
                             {"linear:4", "linear:1", "linear:1"},
                             {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE, MTGRAD_LOSS_BCE}};
    grad_check(&lenet_small, 5, "small LeNet");
    /* every layer kind in a head: its input gradient reaches the trunk's conv */
    const cfg heads = {2, 6, 6, "conv:2:3:1:1", 4,
                       {"relu,maxpool:2,flatten,linear:3", "conv:3:3:2:1,relu,dropout2d:0.3,flatten,linear:1",
                        "dropout:0.4,flatten,linear:1", "maxpool:3:1,relu,linear:2"},
                       {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE, MTGRAD_LOSS_BCE, MTGRAD_LOSS_CE}};
    grad_check(&heads, 4, "layers in heads");
    /* an MLP with dropout in the trunk, an empty head and a 1x1 conv on features */
    const cfg mlp = {4, 1, 1, "linear:6,relu,dropout:0.2,linear:3", 3, {"", "linear:1", "conv:2:1,flatten,linear:1"},
                     {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE, MTGRAD_LOSS_BCE}};
    grad_check(&mlp, 7, "mlp");
    /* a parameter-free first layer, strided padded conv, dropout2d in the trunk */
    const cfg odd = {3, 9, 8, "maxpool:2:1,conv:4:3:2:2,dropout2d:0.25,relu,flatten", 2,
                     {"linear:5", "relu,dropout:0.5,linear:1"}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_BCE}};
    grad_check(&odd, 3, "odd trunk");
}

/* Every parameter of a tiny model by central differences. */
static void test_gradients_per_element(void)
{
    const cfg c = {1, 5, 5, "conv:2:2,relu,maxpool:2,flatten,linear:3,relu", 2, {"linear:3", "linear:1"},
                   {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE}};
    mtgrad_model *m = make(&c, 4, 5);
    if (!m) return;
    const int64_t n = 3, np = mtgrad_model_num_params(m);
    float *x = randf(n * 25, -1, 1), *y = targets(m, n), *grad = randf(np, 0, 0);
    uint64_t st[4];
    mtgrad_model_get_rng(m, st);
    const double w[2] = {1, 0.5};
    (void)weighted_loss(m, x, y, n, st, w);
    CHECK(mtgrad_model_backward_weighted(m, w, grad) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double *an = malloc((size_t)np * sizeof *an), *fd = malloc((size_t)np * sizeof *fd);
    float *p = mtgrad_model_params(m);
    for (int64_t j = 0; j < np; j++) {
        float save = p[j];
        p[j] = save + 3e-3f;
        double fp = weighted_loss(m, x, y, n, st, w), hp = p[j];
        p[j] = save - 3e-3f;
        double fm = weighted_loss(m, x, y, n, st, w), hm = p[j];
        p[j] = save;
        fd[j] = (fp - fm) / (hp - hm);
        an[j] = grad[j];
    }
    CHECK_ARRAY_CLOSE(an, fd, np, 2e-2, 2e-4);
    free(x), free(y), free(grad), free(an), free(fd);
    mtgrad_model_free(m);
}

/* sum_i w_i G_i == weighted trunk gradient; head slices == w_i x per-task head gradients;
 * repeated calls give the same bits; grad == NULL; other slices untouched. */
static void test_weighted_vs_tasks(void)
{
    const cfg c = {1, 12, 12, "conv:3:3,relu,maxpool:2,dropout2d:0.2,conv:4:3,relu,flatten,linear:8,relu", 3,
                   {"linear:4", "relu,linear:1", ""}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE, MTGRAD_LOSS_CE}};
    mtgrad_model *m = make(&c, 9, 21);
    if (!m) return;
    const int64_t n = 9, np = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m), k = 3;
    float *x = randf(n * 144, -1, 1), *y = targets(m, n);
    float *G = randf(k * d, 0, 0), *hg = randf(np, 0, 0), *wg = randf(np, 0, 0), *again = randf(d, 0, 0);
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    for (int64_t i = 0; i < k; i++)
        CHECK(mtgrad_model_backward_task(m, i, G + i * d, hg) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    const double w[3] = {0.25, -2.0, 1.5};
    CHECK(mtgrad_model_backward_weighted(m, w, wg) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    double *sum = malloc((size_t)d * sizeof *sum), *got = malloc((size_t)d * sizeof *got);
    double scale = 0;
    for (int64_t j = 0; j < d; j++) {
        sum[j] = 0;
        for (int64_t i = 0; i < k; i++) sum[j] += w[i] * G[i * d + j];
        got[j] = wg[j];
        scale = fabs(sum[j]) > scale ? fabs(sum[j]) : scale;
    }
    CHECK_ARRAY_CLOSE(got, sum, d, 1e-4, 1e-6 * scale);
    for (int64_t i = 0; i < k; i++) {
        int64_t off = mtgrad_model_head_offset(m, i), len = mtgrad_model_head_size(m, i);
        double *a = malloc((size_t)(len + 1) * sizeof *a), *b = malloc((size_t)(len + 1) * sizeof *b);
        for (int64_t j = 0; j < len; j++) a[j] = wg[off + j], b[j] = w[i] * hg[off + j];
        CHECK_ARRAY_CLOSE(a, b, len, 1e-5, 1e-9);
        free(a), free(b);
    }
    /* backward does not disturb the forward: the same bits again, in any order */
    CHECK(mtgrad_model_backward_task(m, 0, again, NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    CHECK(memcmp(again, G, (size_t)d * sizeof *G) == 0, "task 0 again (after weighted, grad NULL)");
    float *wg2 = randf(np, 0, 0);
    CHECK(mtgrad_model_backward_weighted(m, w, wg2) == MTGRAD_OK && memcmp(wg, wg2, (size_t)np * sizeof *wg) == 0,
          "weighted again");
    /* backward_task leaves the trunk slice and other heads' slices of grad alone */
    for (int64_t j = 0; j < np; j++) wg2[j] = 42;
    CHECK(mtgrad_model_backward_task(m, 1, again, wg2) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    int64_t off1 = mtgrad_model_head_offset(m, 1), len1 = mtgrad_model_head_size(m, 1);
    int untouched = 1, same = 1;
    for (int64_t j = 0; j < np; j++) {
        if (j >= off1 && j < off1 + len1) same &= wg2[j] == hg[j];
        else untouched &= wg2[j] == 42;
    }
    CHECK(untouched, "backward_task wrote outside head 1's slice");
    CHECK(same && memcmp(again, G + d, (size_t)d * sizeof *G) == 0, "task 1 again");
    /* w = NULL means ones; a zero weight zeroes that head's slice */
    const double ones[3] = {1, 1, 1}, zero1[3] = {1, 0, 1};
    float *a1 = randf(np, 0, 0), *a2 = randf(np, 0, 0);
    CHECK(mtgrad_model_backward_weighted(m, NULL, a1) == MTGRAD_OK, "w NULL");
    CHECK(mtgrad_model_backward_weighted(m, ones, a2) == MTGRAD_OK, "w ones");
    CHECK(memcmp(a1, a2, (size_t)np * sizeof *a1) == 0, "w NULL == ones");
    for (int64_t j = 0; j < np; j++) a2[j] = 42;
    CHECK(mtgrad_model_backward_weighted(m, zero1, a2) == MTGRAD_OK, "zero weight");
    int zeroed = 1;
    for (int64_t j = off1; j < off1 + len1; j++) zeroed &= a2[j] == 0;
    CHECK(zeroed, "zero weight: head slice zeroed");
    for (int64_t j = 0; j < d; j++) got[j] = a2[j], sum[j] = (double)G[j] + G[2 * d + j];
    CHECK_ARRAY_CLOSE(got, sum, d, 1e-4, 1e-6 * scale);
    free(x), free(y), free(G), free(hg), free(wg), free(again), free(sum), free(got);
    free(wg2), free(a1), free(a2);
    mtgrad_model_free(m);
}

/* Whole passes with the reference kernels (mtgradi_nn_use_ref) agree with the fast ones. */
static void test_use_ref(void)
{
    const cfg c = {2, 11, 10, "conv:4:3:2:1,relu,maxpool:2,conv:6:2,dropout2d:0.3,relu,flatten,linear:7,relu", 2,
                   {"linear:3", "dropout:0.2,linear:1"}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE}};
    mtgrad_model *m = make(&c, 21, 4);
    if (!m) return;
    const int64_t n = 21, np = mtgrad_model_num_params(m), d = mtgrad_model_num_shared(m);
    float *x = randf(n * 220, -1, 1), *y = targets(m, n);
    float *g[2] = {randf(np, 0, 0), randf(np, 0, 0)}, *G[2] = {randf(d, 0, 0), randf(d, 0, 0)};
    float *out[2] = {randf(n * 3, 0, 0), randf(n * 3, 0, 0)};
    double L[2][2];
    uint64_t st[4];
    mtgrad_model_get_rng(m, st);
    const double w[2] = {0.8, 1.9};
    for (int r = 0; r < 2; r++) {
        mtgradi_nn_use_ref(r);
        mtgrad_model_set_rng(m, st);
        CHECK(mtgrad_model_forward(m, x, y, n, 1, L[r]) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        memcpy(out[r], mtgrad_model_output(m, 0, NULL), (size_t)(n * 3) * sizeof(float));
        CHECK(mtgrad_model_backward_weighted(m, w, g[r]) == MTGRAD_OK, "%s", mtgrad_model_error(m));
        CHECK(mtgrad_model_backward_task(m, 1, G[r], NULL) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    }
    mtgradi_nn_use_ref(0);
    CHECK_CLOSE(L[0][0], L[1][0], 1e-6, 0);
    CHECK_CLOSE(L[0][1], L[1][1], 1e-6, 0);
    double *a = malloc((size_t)np * sizeof *a), *b = malloc((size_t)np * sizeof *b);
    for (int64_t j = 0; j < n * 3; j++) a[j] = out[0][j], b[j] = out[1][j];
    CHECK_ARRAY_CLOSE(a, b, n * 3, 1e-5, 1e-6);
    double scale = 0;
    for (int64_t j = 0; j < np; j++) a[j] = g[0][j], b[j] = g[1][j], scale = fmax(scale, fabs(b[j]));
    CHECK_ARRAY_CLOSE(a, b, np, 1e-4, 1e-6 * scale);
    for (int64_t j = 0; j < d; j++) a[j] = G[0][j], b[j] = G[1][j];
    CHECK_ARRAY_CLOSE(a, b, d, 1e-4, 1e-6 * scale);
    free(a), free(b), free(x), free(y);
    for (int r = 0; r < 2; r++) free(g[r]), free(G[r]), free(out[r]);
    mtgrad_model_free(m);
}

/* ------------------------------------------------------------------ dropout */

static void test_dropout(void)
{
    const cfg c = {3, 4, 5, "dropout:0.5", 2, {"", "dropout2d:0.25"}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_CE}};
    const int64_t n = 50, len = 60;
    mtgrad_model *m = make(&c, n, 8), *m2 = make(&c, n, 8);
    if (!m || !m2) return;
    float *x = randf(n * len, 0.5, 1.5);
    /* eval: the identity */
    CHECK(mtgrad_model_forward(m, x, NULL, n, 0, NULL) == MTGRAD_OK, "eval");
    const float *o0 = mtgrad_model_output(m, 0, NULL), *o1 = mtgrad_model_output(m, 1, NULL);
    CHECK(memcmp(o0, x, (size_t)(n * len) * sizeof *x) == 0 && memcmp(o1, x, (size_t)(n * len) * sizeof *x) == 0,
          "eval mode is the identity");
    /* train: each element 0 or 2x; head 1 additionally drops whole channels (scale 4/3) */
    uint64_t st[4];
    mtgrad_model_get_rng(m, st);
    CHECK(mtgrad_model_forward(m, x, NULL, n, 1, NULL) == MTGRAD_OK, "train");
    int64_t kept = 0, bad = 0, chan_bad = 0, chan_kept = 0;
    float *first = malloc((size_t)(2 * n * len) * sizeof *first);
    memcpy(first, o0, (size_t)(n * len) * sizeof *o0);
    memcpy(first + n * len, o1, (size_t)(n * len) * sizeof *o1);
    for (int64_t j = 0; j < n * len; j++) {
        if (o0[j] != 0) kept++;
        if (o0[j] != 0 && o0[j] != x[j] * 2.0f) bad++;
    }
    for (int64_t ch = 0; ch < n * 3; ch++) { /* 20 elements per channel */
        int zero = 1, scaled = 1;
        for (int64_t j = 0; j < 20; j++) {
            float in = o0[ch * 20 + j], out = o1[ch * 20 + j];
            zero &= out == 0;
            scaled &= out == in * (float)(1 / 0.75);
        }
        chan_kept += !zero;
        chan_bad += !zero && !scaled;
    }
    double rate = (double)kept / (double)(n * len);
    CHECK(fabs(rate - 0.5) < 5 * sqrt(0.25 / (double)(n * len)), "dropout keep rate %g", rate);
    CHECK(bad == 0, "%lld kept elements not scaled by 2", (long long)bad);
    CHECK(chan_bad == 0, "%lld channels neither dropped nor scaled whole", (long long)chan_bad);
    CHECK(chan_kept > 75 && chan_kept < 150, "dropout2d kept %lld of 150 channels", (long long)chan_kept);
    /* another model with the same seed draws the same masks; set_rng replays them */
    CHECK(mtgrad_model_forward(m2, x, NULL, n, 1, NULL) == MTGRAD_OK, "train m2");
    CHECK(memcmp(mtgrad_model_output(m2, 0, NULL), first, (size_t)(n * len) * sizeof *x) == 0 &&
              memcmp(mtgrad_model_output(m2, 1, NULL), first + n * len, (size_t)(n * len) * sizeof *x) == 0,
          "same seed, same masks");
    CHECK(mtgrad_model_forward(m, x, NULL, n, 1, NULL) == MTGRAD_OK, "train again");
    CHECK(memcmp(mtgrad_model_output(m, 0, NULL), first, (size_t)(n * len) * sizeof *x) != 0,
          "the next forward draws a new mask");
    mtgrad_model_set_rng(m, st);
    CHECK(mtgrad_model_forward(m, x, NULL, n, 1, NULL) == MTGRAD_OK, "replay");
    CHECK(memcmp(mtgrad_model_output(m, 0, NULL), first, (size_t)(n * len) * sizeof *x) == 0 &&
              memcmp(mtgrad_model_output(m, 1, NULL), first + n * len, (size_t)(n * len) * sizeof *x) == 0,
          "set_rng replays the masks");
    /* an eval forward draws nothing */
    uint64_t a[4], b[4];
    mtgrad_model_get_rng(m, a);
    CHECK(mtgrad_model_forward(m, x, NULL, n, 0, NULL) == MTGRAD_OK, "eval");
    mtgrad_model_get_rng(m, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "eval forward leaves the dropout generator alone");
    /* the dropout stream does not depend on the init stream's use: different from the seed's */
    mtgradi_rng r0;
    mtgradi_rng_seed(&r0, 8);
    CHECK(memcmp(st, r0.s, sizeof st) != 0, "dropout generator is not the init generator");
    free(x), free(first);
    mtgrad_model_free(m);
    mtgrad_model_free(m2);
}

/* ------------------------------------------------------------------ threads */

typedef struct run_out {
    double L[2];
    float *out, *G, *wg;
} run_out;

static run_out run_lenet(int threads, const float *x, const float *y, int64_t n)
{
    static const cfg c = {1, 36, 36,
                          "conv:10:9,relu,maxpool:2,conv:20:5,dropout2d:0.3,relu,maxpool:2,flatten,"
                          "linear:50,relu,dropout:0.5",
                          2, {"linear:10", "linear:1"}, {MTGRAD_LOSS_CE, MTGRAD_LOSS_BCE}};
    mtgrad_nn_set_threads(threads);
    run_out r = {{0, 0}, NULL, NULL, NULL};
    mtgrad_model *m = make(&c, n, 77);
    if (!m) return r;
    const int64_t d = mtgrad_model_num_shared(m), np = mtgrad_model_num_params(m);
    r.out = malloc((size_t)(n * 10) * sizeof *r.out);
    r.G = malloc((size_t)(2 * d) * sizeof *r.G);
    r.wg = malloc((size_t)np * sizeof *r.wg);
    CHECK(mtgrad_model_forward(m, x, y, n, 1, r.L) == MTGRAD_OK, "%s", mtgrad_model_error(m));
    memcpy(r.out, mtgrad_model_output(m, 0, NULL), (size_t)(n * 10) * sizeof *r.out);
    CHECK(mtgrad_model_backward_task(m, 0, r.G, r.wg) == MTGRAD_OK, "task 0");
    CHECK(mtgrad_model_backward_task(m, 1, r.G + d, r.wg) == MTGRAD_OK, "task 1");
    const double w[2] = {0.6, 1.7};
    CHECK(mtgrad_model_backward_weighted(m, w, r.wg) == MTGRAD_OK, "weighted");
    mtgrad_model_free(m);
    return r;
}

static void test_threads(void)
{
    const int64_t n = 37, d = 820 + 5020 + 25050, np = d + 510 + 51;
    float *x = randf(n * 1296, 0, 1), *y = malloc((size_t)(2 * n) * sizeof *y);
    for (int64_t s = 0; s < n; s++) {
        y[s] = (float)mtgradi_rng_below(&rng, 10);
        y[n + s] = (float)mtgradi_rng_below(&rng, 2);
    }
    run_out a = run_lenet(1, x, y, n), b = run_lenet(2, x, y, n);
    mtgrad_nn_set_threads(1);
    if (a.out && b.out) {
        CHECK(memcmp(a.L, b.L, sizeof a.L) == 0, "losses differ: %.17g %.17g vs %.17g %.17g", a.L[0],
              a.L[1], b.L[0], b.L[1]);
        CHECK(memcmp(a.out, b.out, (size_t)(n * 10) * sizeof *a.out) == 0, "outputs differ");
        CHECK(memcmp(a.G, b.G, (size_t)(2 * d) * sizeof *a.G) == 0, "task gradients differ");
        CHECK(memcmp(a.wg, b.wg, (size_t)np * sizeof *a.wg) == 0, "weighted gradients differ");
    }
    free(a.out), free(a.G), free(a.wg), free(b.out), free(b.G), free(b.wg), free(x), free(y);
}

/* ------------------------------------------------------------------ errors */

#define CHECK_NEW(spec, want, needle)                                                              \
    do {                                                                                           \
        mtgrad_model *m_ = (mtgrad_model *)&rng; /* must be reset to NULL */                       \
        char err_[256] = "";                                                                       \
        mtgrad_status s_ = mtgrad_model_new(&m_, spec, 1, err_, sizeof err_);                      \
        CHECK(s_ == (want), "status %d, want %d (%s)", (int)s_, (int)(want), err_);                 \
        CHECK((s_ == MTGRAD_OK) == (m_ != NULL), "out %p after status %d", (void *)m_, (int)s_);     \
        CHECK(strstr(err_, needle) != NULL, "message '%s' lacks '%s'", err_, needle);              \
        if (s_ == MTGRAD_OK) mtgrad_model_free(m_);                                                \
    } while (0)

static mtgrad_model_spec base_spec(void)
{
    mtgrad_model_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.in_c = 1, sp.in_h = 8, sp.in_w = 8;
    sp.trunk = "conv:2:3,relu,flatten,linear:4";
    sp.k = 2;
    sp.heads[0] = "linear:3";
    sp.heads[1] = "linear:1";
    sp.losses[0] = MTGRAD_LOSS_CE;
    sp.losses[1] = MTGRAD_LOSS_MSE;
    sp.max_batch = 4;
    return sp;
}

static void test_new_errors(void)
{
    mtgrad_model_spec sp = base_spec();
    char err[64];
    CHECK(mtgrad_model_new(NULL, &sp, 1, err, sizeof err) == MTGRAD_E_INVAL, "out NULL");
    CHECK_NEW(NULL, MTGRAD_E_INVAL, "spec is NULL");
    struct { const char *trunk; const char *needle; } bad[] = {
        {"conv:0:3", "trunk layer 0 'conv:0:3': field 2 ('0') must be a positive"},
        {"linear:", "'linear:': field 2 ('') must be"},
        {"linear", "expected linear:OUT"},
        {"linear:5:3", "expected linear:OUT"},
        {"relu,foo", "trunk layer 1 'foo': unknown layer"},
        {"conv:3:9", "kernel 9 is larger than its input 8 x 8"},
        {"conv:3:4:1:-1", "field 5 ('-1') must be a non-negative"},
        {"conv:3:3:0", "field 4 ('0') must be a positive"},
        {"maxpool:0", "must be a positive"},
        {"maxpool:9", "kernel 9 is larger"},
        {"maxpool:2:x", "field 3 ('x')"},
        {"dropout:1.5", "P must be a number in [0, 1]"},
        {"dropout:abc", "P must be a number"},
        {"dropout:", "P must be a number"},
        {"dropout2d:-0.1", "P must be"},
        {"relu,,linear:3", "trunk layer 1 is empty"},
        {"relu,", "trunk layer 1 is empty"},
        {",relu", "trunk layer 0 is empty"},
        {" relu", "unknown layer"},
        {"linear:99999999999", "must be a positive integer no larger than"},
        {"linear:1073741824", "layer too large"},
        {"conv:1073741824:1", "layer too large"},
        {"conv:3:3:1:1073741824", "im2col columns too large"},
        {"conv:1024:1073741824:1:1073741824", "im2col columns too large"},
        {"conv:2:3:1:1:5", "expected conv:OUT:K[:STRIDE[:PAD]]"},
        {"reluuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu", "too long"},
        {"", "the trunk has no layers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mtgrad_model_spec s = base_spec();
        s.trunk = bad[i].trunk;
        CHECK_NEW(&s, MTGRAD_E_INVAL, bad[i].needle);
    }
    sp = base_spec(), sp.trunk = NULL;
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "trunk is NULL");
    sp = base_spec(), sp.heads[1] = NULL;
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "head 1's layer list is NULL");
    sp = base_spec(), sp.heads[1] = "linear:3,bogus";
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "head 1 layer 1 'bogus': unknown layer");
    sp = base_spec(), sp.heads[0] = "conv:1:2";
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "head 0 layer 0 'conv:1:2': kernel 2 is larger");
    sp = base_spec(), sp.heads[1] = "linear:2";
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "head 1 has 2 outputs; its MSE loss needs exactly 1");
    sp = base_spec(), sp.heads[1] = "", sp.losses[1] = MTGRAD_LOSS_BCE;
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "head 1 has 4 outputs; its BCE loss");
    sp = base_spec(), sp.losses[0] = (mtgrad_loss_kind)7;
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "head 0: unknown loss kind 7");
    sp = base_spec(), sp.k = 0;
    CHECK_NEW(&sp, MTGRAD_E_SHAPE, "k = 0 tasks");
    sp = base_spec(), sp.k = MTGRAD_NN_MAX_TASKS + 1;
    CHECK_NEW(&sp, MTGRAD_E_SHAPE, "must be in [1, 64]");
    sp = base_spec(), sp.max_batch = 0;
    CHECK_NEW(&sp, MTGRAD_E_SHAPE, "max_batch = 0");
    sp = base_spec(), sp.in_h = 0;
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "input shape 1 x 0 x 8");
    sp = base_spec(), sp.in_c = (int64_t)1 << 40, sp.in_h = (int64_t)1 << 40;
    CHECK_NEW(&sp, MTGRAD_E_INVAL, "is not valid");
    sp = base_spec(), sp.max_batch = (int64_t)1 << 31;
    CHECK_NEW(&sp, MTGRAD_E_SHAPE, "max_batch = 2147483648");
#ifndef __SANITIZE_ADDRESS__ /* ASan aborts on a failed huge allocation instead of returning NULL */
    /* a model too big for memory fails cleanly */
    sp = base_spec(), sp.trunk = "linear:1000000", sp.max_batch = (int64_t)1 << 30;
    sp.heads[0] = "linear:3", sp.heads[1] = "linear:1";
    CHECK_NEW(&sp, MTGRAD_E_NOMEM, "out of memory");
#endif
    /* valid edge cases build */
    sp = base_spec(), sp.trunk = "conv:2:8", sp.heads[0] = "flatten,linear:3", sp.heads[1] = "flatten,linear:1";
    CHECK_NEW(&sp, MTGRAD_OK, "");
    sp = base_spec(), sp.trunk = "conv:2:3:1:5,dropout:0,dropout:1,maxpool:3:3";
    sp.heads[0] = "";
    sp.losses[0] = MTGRAD_LOSS_CE;
    CHECK_NEW(&sp, MTGRAD_OK, "");
    mtgrad_model_free(NULL);
}

static void test_call_errors(void)
{
    mtgrad_model_spec sp = base_spec();
    mtgrad_model *m = NULL;
    CHECK(mtgrad_model_new(&m, &sp, 3, NULL, 0) == MTGRAD_OK, "new");
    if (!m) return;
    const int64_t n = 3, d = mtgrad_model_num_shared(m), np = mtgrad_model_num_params(m);
    float *x = randf(4 * 64, -1, 1), *G = randf(d, 0, 0), *g = randf(np, 0, 0);
    float y[8] = {0, 2, 1, 0.5f, 0.5f, 0.5f, 0, 0};
    CHECK(mtgrad_model_backward_task(m, 0, G, g) == MTGRAD_E_STATE, "backward before forward");
    CHECK(strstr(mtgrad_model_error(m), "train-mode forward") != NULL, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_weighted(m, NULL, g) == MTGRAD_E_STATE, "weighted before forward");
    CHECK(mtgrad_model_forward(NULL, x, y, n, 1, NULL) == MTGRAD_E_INVAL, "forward NULL model");
    CHECK(mtgrad_model_forward(m, NULL, y, n, 1, NULL) == MTGRAD_E_INVAL, "forward NULL x");
    CHECK(strstr(mtgrad_model_error(m), "x is NULL") != NULL, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_forward(m, x, y, 0, 1, NULL) == MTGRAD_E_SHAPE, "n = 0");
    CHECK(mtgrad_model_forward(m, x, y, 5, 1, NULL) == MTGRAD_E_SHAPE, "n > max_batch");
    CHECK(strstr(mtgrad_model_error(m), "n = 5 samples") != NULL, "%s", mtgrad_model_error(m));
    /* bad class index (task 0 is CE over 3 classes; y row 0 = {0, 2, 1}) */
    float ybad[6] = {0, 3, 1, 0, 0, 0};
    CHECK(mtgrad_model_forward(m, x, ybad, n, 1, NULL) == MTGRAD_E_INVAL, "class 3 of 3");
    CHECK(strstr(mtgrad_model_error(m), "task 0, sample 1: class index 3") != NULL, "%s", mtgrad_model_error(m));
    ybad[1] = 0.5f;
    CHECK(mtgrad_model_forward(m, x, ybad, n, 1, NULL) == MTGRAD_E_INVAL, "class 0.5");
    CHECK(mtgrad_model_backward_task(m, 0, G, g) == MTGRAD_E_STATE, "a failed forward is no forward");
    /* NaN input: the outputs are NaN */
    float *xn = randf(4 * 64, -1, 1);
    xn[64 + 10] = NAN;
    double L[2];
    CHECK(mtgrad_model_forward(m, xn, y, n, 1, L) == MTGRAD_E_NONFINITE, "NaN input");
    CHECK(strstr(mtgrad_model_error(m), "nan") != NULL, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_forward(m, xn, NULL, n, 0, NULL) == MTGRAD_E_NONFINITE, "NaN input, no targets");
    CHECK(strstr(mtgrad_model_error(m), "head 0: output 0 of sample 1 is nan") != NULL, "%s",
          mtgrad_model_error(m));
    /* Inf weights: non-finite outputs */
    float *p = mtgrad_model_params(m), save = p[0];
    p[0] = INFINITY;
    CHECK(mtgrad_model_forward(m, x, y, n, 0, NULL) == MTGRAD_E_NONFINITE, "Inf parameter");
    p[0] = save;
    /* eval forward or a forward without targets allows no backward */
    CHECK(mtgrad_model_forward(m, x, y, n, 0, NULL) == MTGRAD_OK, "eval forward");
    CHECK(mtgrad_model_backward_task(m, 0, G, g) == MTGRAD_E_STATE, "backward after eval");
    CHECK(mtgrad_model_forward(m, x, NULL, n, 1, NULL) == MTGRAD_OK, "train forward without targets");
    CHECK(mtgrad_model_backward_weighted(m, NULL, g) == MTGRAD_E_STATE, "backward without targets");
    CHECK(mtgrad_model_forward(m, x, y, n, 1, NULL) == MTGRAD_OK, "train forward");
    CHECK(mtgrad_model_backward_task(NULL, 0, G, g) == MTGRAD_E_INVAL, "NULL model");
    CHECK(mtgrad_model_backward_task(m, 2, G, g) == MTGRAD_E_INVAL, "task k");
    CHECK(strstr(mtgrad_model_error(m), "task 2 is not in [0, 2)") != NULL, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_task(m, -1, G, g) == MTGRAD_E_INVAL, "task -1");
    CHECK(mtgrad_model_backward_task(m, 0, NULL, g) == MTGRAD_E_INVAL, "trunk_grad NULL");
    CHECK(mtgrad_model_backward_weighted(NULL, NULL, g) == MTGRAD_E_INVAL, "weighted NULL model");
    CHECK(mtgrad_model_backward_weighted(m, NULL, NULL) == MTGRAD_E_INVAL, "weighted NULL grad");
    const double wn[2] = {1, NAN};
    CHECK(mtgrad_model_backward_weighted(m, wn, g) == MTGRAD_E_INVAL, "NaN weight");
    CHECK(strstr(mtgrad_model_error(m), "weight 1 is nan") != NULL, "%s", mtgrad_model_error(m));
    CHECK(mtgrad_model_backward_task(m, 1, G, g) == MTGRAD_OK, "still usable: %s", mtgrad_model_error(m));
    /* accessors */
    const char *name;
    int64_t off, numel;
    CHECK(mtgrad_model_tensor(m, 8, &name, &off, &numel) == MTGRAD_E_INVAL, "tensor index");
    CHECK(mtgrad_model_tensor(m, -1, &name, &off, &numel) == MTGRAD_E_INVAL, "tensor -1");
    CHECK(mtgrad_model_tensor(m, 0, NULL, &off, &numel) == MTGRAD_E_INVAL, "NULL name");
    CHECK(mtgrad_model_tensor(NULL, 0, &name, &off, &numel) == MTGRAD_E_INVAL, "NULL model");
    CHECK(mtgrad_model_output(m, 2, NULL) == NULL && mtgrad_model_output(NULL, 0, NULL) == NULL, "output(bad)");
    CHECK(mtgrad_model_head_offset(m, 2) == -1 && mtgrad_model_head_size(m, -1) == 0, "head(bad)");
    CHECK(mtgrad_model_output_width(m, 5) == 0 && mtgrad_model_k(NULL) == 0, "width(bad)");
    CHECK(mtgrad_model_num_params(NULL) == 0 && mtgrad_model_params(NULL) == NULL, "NULL accessors");
    mtgrad_model_get_rng(NULL, NULL);
    mtgrad_model_set_rng(NULL, NULL);
    free(x), free(xn), free(G), free(g);
    mtgrad_model_free(m);
}

int main(void)
{
    mtgradi_rng_seed(&rng, 2024);
    mtgrad_nn_set_threads(1);
    test_lenet_layout();
    test_forward_vs_reference();
    test_gradients();
    test_gradients_per_element();
    test_weighted_vs_tasks();
    test_use_ref();
    test_dropout();
    test_threads();
    test_new_errors();
    test_call_errors();
    return harness_report();
}
