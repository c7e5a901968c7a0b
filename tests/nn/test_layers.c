/* The engine's layer kernels, one by one:
 * - fast vs reference (conv2d im2col+sgemm vs direct loops; linear sgemm vs loops; maxpool's
 *   recorded winners vs winners found again) on shapes with stride, padding, 1x1, kernel = input,
 *   and more samples than the fixed groups;
 * - directional central finite differences (f = sum r*y, analytic g.delta vs (f(+h)-f(-h))/2h)
 *   for parameters and inputs, plus per-element differences on tiny shapes;
 * - semantics: maxpool ties (first maximum wins) and NaN, ReLU's gradient 0 at 0 and NaN,
 *   dropout's keep rate, scale and p = 0 / p = 1. */
#include "harness.h"
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

static mtgradi_rng rng;

static void fill(float *a, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * mtgradi_rng_uniform(&rng));
}

static float *fresh(int64_t n, double lo, double hi)
{
    float *a = malloc((size_t)(n > 0 ? n : 1) * sizeof *a);
    fill(a, n, lo, hi);
    return a;
}

static double *to_double(const float *a, int64_t n)
{
    double *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

/* Compare float arrays through the harness's double comparison. */
static void check_floats(const char *what, const float *a, const float *b, int64_t n, double rtol,
                         double atol)
{
    double *da = to_double(a, n), *db = to_double(b, n);
    int before = harness_failed;
    CHECK_ARRAY_CLOSE(da, db, n, rtol, atol);
    if (harness_failed != before) fprintf(stderr, "    (%s)\n", what);
    free(da);
    free(db);
}

static double dotf(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double maxabs(const float *a, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* ------------------------------------------------------------------ convolution */

static mtgradi_conv_geom geom(int64_t c, int64_t h, int64_t w, int64_t oc, int64_t k, int64_t s,
                              int64_t p)
{
    mtgradi_conv_geom g = {c, h, w, oc, k, s, p, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1};
    return g;
}

typedef struct conv_case {
    mtgradi_conv_geom g;
    mtgradi_conv_work work;
    int64_t n, in, out, nw;
} conv_case;

static conv_case conv_setup(mtgradi_conv_geom g, int64_t n)
{
    conv_case cc = {g, {0}, n, g.c * g.h * g.w, g.oc * g.oh * g.ow, g.oc * g.c * g.k * g.k};
    mtgradi_conv2d_work_need(&g, &cc.work.cols_floats, &cc.work.pw_floats, &cc.work.pb_doubles);
    cc.work.cols = malloc(cc.work.cols_floats * MTGRADI_NN_GROUPS * sizeof(float));
    cc.work.pw = malloc(cc.work.pw_floats * MTGRADI_NN_GROUPS * sizeof(float));
    cc.work.pb = malloc(cc.work.pb_doubles * MTGRADI_NN_GROUPS * sizeof(double));
    return cc;
}

static void conv_teardown(conv_case *cc)
{
    free(cc->work.cols);
    free(cc->work.pw);
    free(cc->work.pb);
}

static void test_conv_fast_vs_ref(void)
{
    const struct { int64_t n, c, h, w, oc, k, s, p; } cases[] = {
        {3, 1, 9, 9, 4, 3, 1, 0},   {5, 3, 8, 7, 2, 3, 2, 1},  {17, 2, 6, 6, 3, 1, 1, 0},
        {2, 2, 5, 5, 3, 5, 1, 0},   {4, 2, 10, 9, 5, 4, 3, 2}, {2, 1, 36, 36, 10, 9, 1, 0},
        {19, 3, 7, 5, 2, 1, 2, 0},  {3, 2, 4, 4, 3, 3, 1, 2},  {33, 10, 14, 14, 20, 5, 1, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        conv_case cc = conv_setup(geom(cases[t].c, cases[t].h, cases[t].w, cases[t].oc,
                                       cases[t].k, cases[t].s, cases[t].p), cases[t].n);
        const int64_t n = cc.n;
        float *x = fresh(n * cc.in, -1, 1), *W = fresh(cc.nw, -0.5, 0.5);
        float *b = fresh(cc.g.oc, -0.5, 0.5), *dy = fresh(n * cc.out, -1, 1);
        float *y1 = fresh(n * cc.out, 0, 0), *y2 = fresh(n * cc.out, 0, 0);
        float *dW1 = fresh(cc.nw, 9, 9), *dW2 = fresh(cc.nw, 0, 0);
        float *db1 = fresh(cc.g.oc, 9, 9), *db2 = fresh(cc.g.oc, 0, 0);
        float *dx1 = fresh(n * cc.in, 9, 9), *dx2 = fresh(n * cc.in, 0, 0);
        char what[96];
        snprintf(what, sizeof what, "conv case %zu", t);
        mtgradi_conv2d_forward(&cc.g, n, x, W, b, y1, &cc.work);
        mtgradi_conv2d_forward_ref(&cc.g, n, x, W, b, y2);
        check_floats(what, y1, y2, n * cc.out, 1e-5, 1e-5 * (1 + maxabs(y2, n * cc.out)));
        mtgradi_conv2d_backward(&cc.g, n, x, W, dy, dW1, db1, dx1, &cc.work);
        mtgradi_conv2d_backward_ref(&cc.g, n, x, W, dy, dW2, db2, dx2);
        check_floats(what, dW1, dW2, cc.nw, 1e-5, 1e-5 * (1 + maxabs(dW2, cc.nw)));
        check_floats(what, db1, db2, cc.g.oc, 1e-5, 1e-5 * (1 + maxabs(db2, cc.g.oc)));
        check_floats(what, dx1, dx2, n * cc.in, 1e-5, 1e-5 * (1 + maxabs(dx2, n * cc.in)));
        /* only dx, only the parameters: the same values */
        float *dx3 = fresh(n * cc.in, 7, 7), *dW3 = fresh(cc.nw, 7, 7), *db3 = fresh(cc.g.oc, 7, 7);
        mtgradi_conv2d_backward(&cc.g, n, x, W, dy, NULL, NULL, dx3, &cc.work);
        mtgradi_conv2d_backward(&cc.g, n, x, W, dy, dW3, db3, NULL, &cc.work);
        CHECK(memcmp(dx3, dx1, (size_t)(n * cc.in) * sizeof *dx1) == 0, "%s: dx alone differs", what);
        CHECK(memcmp(dW3, dW1, (size_t)cc.nw * sizeof *dW1) == 0, "%s: dW alone differs", what);
        CHECK(memcmp(db3, db1, (size_t)cc.g.oc * sizeof *db1) == 0, "%s: db alone differs", what);
        free(x), free(W), free(b), free(dy), free(y1), free(y2), free(dW1), free(dW2);
        free(db1), free(db2), free(dx1), free(dx2), free(dx3), free(dW3), free(db3);
        conv_teardown(&cc);
    }
}

/* A hand-computed convolution: 1 channel 3x3 input, 2x2 kernel, stride 1, padding 1. */
static void test_conv_by_hand(void)
{
    conv_case cc = conv_setup(geom(1, 3, 3, 1, 2, 1, 1), 1);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, W[4] = {1, 10, 100, 1000}, b[1] = {0.5f};
    float y[16];
    /* y[i][j] = sum_{a,b} W[a][b] x[i-1+a][j-1+b] with zero padding */
    double want[16];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            double s = 0.5;
            for (int a = 0; a < 2; a++)
                for (int bb = 0; bb < 2; bb++) {
                    int r = i - 1 + a, c = j - 1 + bb;
                    if (r >= 0 && r < 3 && c >= 0 && c < 3) s += W[a * 2 + bb] * x[r * 3 + c];
                }
            want[i * 4 + j] = s;
        }
    CHECK(want[0] == 1000.5 && want[5] == 1 + 20 + 400 + 5000 + 0.5, "hand values");
    mtgradi_conv2d_forward(&cc.g, 1, x, W, b, y, &cc.work);
    double *dy = to_double(y, 16);
    CHECK_ARRAY_CLOSE(dy, want, 16, 1e-6, 0);
    free(dy);
    conv_teardown(&cc);
}

/* sum r*conv(x; W, b): directional and per-element central differences. */
static double conv_f(conv_case *cc, const float *x, const float *W, const float *b, const float *r,
                     float *y)
{
    mtgradi_conv2d_forward(&cc->g, cc->n, x, W, b, y, &cc->work);
    return dotf(r, y, cc->n * cc->out);
}

/* p (len) is one of the arguments of conv_f; returns (f(p + h d) - f(p - h d)) / 2h. */
static double conv_fd(conv_case *cc, float *x, float *W, float *b, const float *r, float *y,
                      float *p, const float *d, int64_t len, double h)
{
    float *save = malloc((size_t)len * sizeof *save);
    memcpy(save, p, (size_t)len * sizeof *p);
    for (int64_t i = 0; i < len; i++) p[i] = (float)(save[i] + h * d[i]);
    double fp = conv_f(cc, x, W, b, r, y);
    for (int64_t i = 0; i < len; i++) p[i] = (float)(save[i] - h * d[i]);
    double fm = conv_f(cc, x, W, b, r, y);
    memcpy(p, save, (size_t)len * sizeof *p);
    free(save);
    return (fp - fm) / (2 * h);
}

static void test_conv_finite_differences(void)
{
    const mtgradi_conv_geom gs[] = {geom(2, 6, 5, 3, 3, 2, 1), geom(1, 4, 4, 2, 3, 1, 1)};
    const int64_t ns[] = {3, 2};
    for (int t = 0; t < 2; t++) {
        conv_case cc = conv_setup(gs[t], ns[t]);
        const int64_t n = cc.n;
        float *x = fresh(n * cc.in, -1, 1), *W = fresh(cc.nw, -0.5, 0.5), *b = fresh(cc.g.oc, -1, 1);
        float *r = fresh(n * cc.out, -1, 1), *y = fresh(n * cc.out, 0, 0);
        float *dW = fresh(cc.nw, 0, 0), *db = fresh(cc.g.oc, 0, 0), *dx = fresh(n * cc.in, 0, 0);
        mtgradi_conv2d_backward(&cc.g, n, x, W, r, dW, db, dx, &cc.work);
        float *dirs[3] = {fresh(cc.nw, -1, 1), fresh(cc.g.oc, -1, 1), fresh(n * cc.in, -1, 1)};
        float *params[3] = {W, b, x}, *grads[3] = {dW, db, dx};
        const int64_t lens[3] = {cc.nw, cc.g.oc, n * cc.in};
        const char *names[3] = {"W", "b", "x"};
        for (int a = 0; a < 3; a++) {
            double fd = conv_fd(&cc, x, W, b, r, y, params[a], dirs[a], lens[a], 1e-2);
            double an = dotf(grads[a], dirs[a], lens[a]);
            CHECK(harness_close(an, fd, 1e-2, 1e-4), "conv %d d%s: analytic %g vs fd %g", t,
                  names[a], an, fd);
        }
        if (t == 1) { /* tiny: every element */
            for (int a = 0; a < 3; a++) {
                double *an = malloc((size_t)lens[a] * sizeof *an), *fd = malloc((size_t)lens[a] * sizeof *fd);
                float *e = fresh(lens[a], 0, 0);
                for (int64_t i = 0; i < lens[a]; i++) {
                    e[i] = 1;
                    fd[i] = conv_fd(&cc, x, W, b, r, y, params[a], e, lens[a], 1e-2);
                    e[i] = 0;
                    an[i] = grads[a][i];
                }
                CHECK_ARRAY_CLOSE(an, fd, lens[a], 1e-2, 1e-4);
                free(an), free(fd), free(e);
            }
        }
        for (int a = 0; a < 3; a++) free(dirs[a]);
        free(x), free(W), free(b), free(r), free(y), free(dW), free(db), free(dx);
        conv_teardown(&cc);
    }
}

/* ------------------------------------------------------------------ linear */

static void test_linear(void)
{
    const int64_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {33, 17, 10}, {256, 500, 50}, {2, 3, 64}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int64_t n = shapes[t][0], in = shapes[t][1], out = shapes[t][2];
        float *x = fresh(n * in, -1, 1), *W = fresh(out * in, -0.3, 0.3), *b = fresh(out, -1, 1);
        float *dy = fresh(n * out, -1, 1), *y1 = fresh(n * out, 0, 0), *y2 = fresh(n * out, 0, 0);
        float *dW1 = fresh(out * in, 0, 0), *dW2 = fresh(out * in, 0, 0);
        float *db1 = fresh(out, 0, 0), *db2 = fresh(out, 0, 0);
        float *dx1 = fresh(n * in, 0, 0), *dx2 = fresh(n * in, 0, 0);
        char what[64];
        snprintf(what, sizeof what, "linear %zu", t);
        mtgradi_linear_forward(n, in, out, x, W, b, y1);
        mtgradi_linear_forward_ref(n, in, out, x, W, b, y2);
        check_floats(what, y1, y2, n * out, 1e-5, 1e-5 * (1 + maxabs(y2, n * out)));
        mtgradi_linear_backward(n, in, out, x, W, dy, dW1, db1, dx1);
        mtgradi_linear_backward_ref(n, in, out, x, W, dy, dW2, db2, dx2);
        check_floats(what, dW1, dW2, out * in, 1e-5, 1e-5 * (1 + maxabs(dW2, out * in)));
        check_floats(what, db1, db2, out, 1e-5, 1e-5 * (1 + maxabs(db2, out)));
        check_floats(what, dx1, dx2, n * in, 1e-5, 1e-5 * (1 + maxabs(dx2, n * in)));
        if (n * in <= 64 && out * in <= 64) {
            /* per element, f = sum dy*y: df/dW[j] and df/dx[j] by central differences */
            float *ps[2] = {W, x}, *gs[2] = {dW1, dx1};
            const int64_t lens[2] = {out * in, n * in};
            for (int a = 0; a < 2; a++) {
                double *an = malloc((size_t)lens[a] * sizeof *an), *fd = malloc((size_t)lens[a] * sizeof *fd);
                for (int64_t i = 0; i < lens[a]; i++) {
                    float save = ps[a][i];
                    ps[a][i] = save + 1e-2f;
                    mtgradi_linear_forward(n, in, out, x, W, b, y1);
                    double fp = dotf(dy, y1, n * out);
                    ps[a][i] = save - 1e-2f;
                    mtgradi_linear_forward(n, in, out, x, W, b, y1);
                    double fm = dotf(dy, y1, n * out);
                    ps[a][i] = save;
                    fd[i] = (fp - fm) / ((double)(save + 1e-2f) - (double)(save - 1e-2f));
                    an[i] = gs[a][i];
                }
                CHECK_ARRAY_CLOSE(an, fd, lens[a], 1e-3, 1e-4);
                free(an), free(fd);
            }
            /* bias: df/db[o] = sum_s dy[s][o] */
            for (int64_t o = 0; o < out; o++) {
                double s = 0;
                for (int64_t j = 0; j < n; j++) s += dy[j * out + o];
                CHECK_CLOSE(db1[o], s, 1e-6, 1e-6);
            }
        }
        free(x), free(W), free(b), free(dy), free(y1), free(y2), free(dW1), free(dW2);
        free(db1), free(db2), free(dx1), free(dx2);
    }
}

/* ------------------------------------------------------------------ maxpool */

static void test_maxpool_semantics(void)
{
    mtgradi_conv_geom g = geom(1, 2, 4, 1, 2, 2, 0); /* two 2x2 windows side by side */
    /* window 0 all equal: the first wins; window 1: 2 appears twice, the first (row 0) wins */
    const float x[8] = {1, 1, 0, 2, 1, 1, 2, 1};
    float y[2], dx[8];
    int32_t am[2];
    const float dy[2] = {10, 20};
    mtgradi_maxpool_forward(&g, 1, x, y, am);
    CHECK(y[0] == 1 && y[1] == 2, "maxpool values %g %g", y[0], y[1]);
    CHECK(am[0] == 0 && am[1] == 3, "ties: first maximum wins (got %d %d)", am[0], am[1]);
    mtgradi_maxpool_backward(&g, 1, am, dy, dx);
    const float want[8] = {10, 0, 0, 20, 0, 0, 0, 0};
    CHECK(memcmp(dx, want, sizeof want) == 0, "maxpool gradient goes to the first maximum");
    float dx_ref[8];
    mtgradi_maxpool_backward_ref(&g, 1, x, dy, dx_ref);
    CHECK(memcmp(dx_ref, want, sizeof want) == 0, "reference agrees on ties");
    /* NaN wins (torch propagates it) */
    const float xn[8] = {1, NAN, 0, 2, 5, 1, -INFINITY, -INFINITY};
    mtgradi_maxpool_forward(&g, 1, xn, y, am);
    CHECK(isnan(y[0]) && am[0] == 1, "NaN propagates (y %g, argmax %d)", y[0], am[0]);
    CHECK(y[1] == 2 && am[1] == 3, "second window %g %d", y[1], am[1]);
    /* all -inf: the first element */
    const float xi[8] = {-INFINITY, -INFINITY, 0, 0, -INFINITY, -INFINITY, 0, 0};
    mtgradi_maxpool_forward(&g, 1, xi, y, am);
    CHECK(isinf(y[0]) && am[0] == 0, "all -inf window: first index (got %d)", am[0]);
}

static void test_maxpool_fast_vs_ref(void)
{
    const struct { int64_t n, c, h, w, k, s; } cases[] = {
        {3, 2, 8, 8, 2, 2}, {2, 3, 7, 9, 3, 2}, {4, 1, 6, 6, 3, 1}, {2, 2, 5, 5, 5, 5}, {20, 2, 4, 5, 2, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        mtgradi_conv_geom g = geom(cases[t].c, cases[t].h, cases[t].w, cases[t].c, cases[t].k,
                                   cases[t].s, 0);
        const int64_t n = cases[t].n, in = g.c * g.h * g.w, out = g.c * g.oh * g.ow;
        float *x = fresh(n * in, 0, 1), *y = fresh(n * out, 0, 0), *dy = fresh(n * out, -1, 1);
        float *dx1 = fresh(n * in, 0, 0), *dx2 = fresh(n * in, 0, 0);
        int32_t *am = malloc((size_t)(n * out) * sizeof *am);
        /* few distinct values: many ties */
        for (int64_t i = 0; i < n * in; i++) x[i] = (float)floor(x[i] * 3);
        mtgradi_maxpool_forward(&g, n, x, y, am);
        int ok = 1;
        for (int64_t p = 0; p < n * g.c; p++)
            for (int64_t oh = 0; oh < g.oh; oh++)
                for (int64_t ow = 0; ow < g.ow; ow++) {
                    float m = -INFINITY;
                    for (int64_t a = 0; a < g.k; a++)
                        for (int64_t b = 0; b < g.k; b++) {
                            float v = x[p * g.h * g.w + (oh * g.stride + a) * g.w + ow * g.stride + b];
                            m = v > m ? v : m;
                        }
                    ok &= y[(p * g.oh + oh) * g.ow + ow] == m;
                }
        CHECK(ok, "maxpool case %zu: forward is the window maximum", t);
        mtgradi_maxpool_backward(&g, n, am, dy, dx1);
        mtgradi_maxpool_backward_ref(&g, n, x, dy, dx2);
        check_floats("maxpool backward", dx1, dx2, n * in, 0, 1e-6);
        free(x), free(y), free(dy), free(dx1), free(dx2), free(am);
    }
}

static void test_maxpool_finite_differences(void)
{
    mtgradi_conv_geom g = geom(2, 5, 6, 2, 3, 2, 0);
    const int64_t n = 2, in = g.c * g.h * g.w, out = g.c * g.oh * g.ow;
    /* distinct values 0.1 apart (shuffled): no window has a tie within h */
    float *x = fresh(n * in, 0, 0), *y = fresh(n * out, 0, 0), *r = fresh(n * out, -1, 1);
    float *dx = fresh(n * in, 0, 0);
    int64_t *perm = malloc((size_t)(n * in) * sizeof *perm);
    for (int64_t i = 0; i < n * in; i++) perm[i] = i;
    mtgradi_rng_shuffle(&rng, perm, n * in);
    for (int64_t i = 0; i < n * in; i++) x[i] = 0.1f * (float)perm[i] - 3.0f;
    int32_t *am = malloc((size_t)(n * out) * sizeof *am);
    mtgradi_maxpool_forward(&g, n, x, y, am);
    mtgradi_maxpool_backward(&g, n, am, r, dx);
    double *an = malloc((size_t)(n * in) * sizeof *an), *fd = malloc((size_t)(n * in) * sizeof *fd);
    const double h = 1e-3;
    for (int64_t i = 0; i < n * in; i++) {
        float save = x[i];
        x[i] = (float)(save + h);
        mtgradi_maxpool_forward(&g, n, x, y, am);
        double fp = dotf(r, y, n * out);
        x[i] = (float)(save - h);
        mtgradi_maxpool_forward(&g, n, x, y, am);
        double fm = dotf(r, y, n * out);
        x[i] = save;
        fd[i] = (fp - fm) / (2 * h);
        an[i] = dx[i];
    }
    CHECK_ARRAY_CLOSE(an, fd, n * in, 1e-2, 1e-3);
    free(x), free(y), free(r), free(dx), free(perm), free(am), free(an), free(fd);
}

/* ------------------------------------------------------------------ relu, dropout */

static void test_relu(void)
{
    const float x[6] = {-2, -0.5f, 0, 0.5f, 3, NAN};
    float y[6], dx[6];
    const float dy[6] = {1, 2, 3, 4, 5, 6};
    mtgradi_relu_forward(6, x, y);
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 0.5f && y[4] == 3 && isnan(y[5]),
          "relu values");
    mtgradi_relu_backward(6, y, dy, dx);
    CHECK(dx[0] == 0 && dx[1] == 0 && dx[2] == 0 && dx[3] == 4 && dx[4] == 5 && dx[5] == 0,
          "relu gradient (0 at 0, like torch): %g %g %g %g %g %g", dx[0], dx[1], dx[2], dx[3],
          dx[4], dx[5]);
    /* in place */
    float z[6];
    memcpy(z, x, sizeof z);
    mtgradi_relu_forward(6, z, z);
    CHECK(memcmp(z, y, 5 * sizeof *z) == 0, "relu in place");
    /* finite differences away from the kink */
    const int64_t len = 200;
    float *a = fresh(len, 0.1, 1), *ya = fresh(len, 0, 0), *r = fresh(len, -1, 1), *g = fresh(len, 0, 0);
    for (int64_t i = 0; i < len; i += 2) a[i] = -a[i];
    mtgradi_relu_forward(len, a, ya);
    mtgradi_relu_backward(len, ya, r, g);
    double *an = malloc((size_t)len * sizeof *an), *fd = malloc((size_t)len * sizeof *fd);
    for (int64_t i = 0; i < len; i++) {
        float p = a[i] + 1e-3f, m = a[i] - 1e-3f;
        fd[i] = r[i] * ((p > 0 ? p : 0) - (m > 0 ? m : 0)) / ((double)p - m);
        an[i] = g[i];
    }
    CHECK_ARRAY_CLOSE(an, fd, len, 1e-5, 1e-7);
    free(a), free(ya), free(r), free(g), free(an), free(fd);
}

static void test_dropout(void)
{
    const int64_t n = 40, units = 2500;
    float *mask = fresh(n * units, 0, 0);
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 7);
    mtgradi_dropout_mask(&r, n, units, 0.3, mask);
    int64_t kept = 0, bad = 0;
    for (int64_t i = 0; i < n * units; i++) {
        if (mask[i] != 0) kept++;
        if (mask[i] != 0 && mask[i] != (float)(1 / 0.7)) bad++;
    }
    double rate = (double)kept / (double)(n * units), sd = sqrt(0.7 * 0.3 / (double)(n * units));
    CHECK(fabs(rate - 0.7) < 5 * sd, "keep rate %g, want 0.7 +- %g", rate, 5 * sd);
    CHECK(bad == 0, "%lld kept units not scaled by 1/(1-p)", (long long)bad);
    /* same seed, same mask; the stream advanced by exactly n*units draws */
    float *mask2 = fresh(n * units, 0, 0);
    mtgradi_rng r2;
    mtgradi_rng_seed(&r2, 7);
    mtgradi_dropout_mask(&r2, n, units, 0.3, mask2);
    CHECK(memcmp(mask, mask2, (size_t)(n * units) * sizeof *mask) == 0, "same seed, same mask");
    CHECK(memcmp(&r, &r2, sizeof r) == 0, "same stream position");
    mtgradi_dropout_mask(&r2, 1, 1, 0.0, mask2);
    CHECK(mask2[0] == 1.0f, "p = 0 keeps everything with scale 1");
    mtgradi_dropout_mask(&r2, 2, 3, 1.0, mask2);
    CHECK(maxabs(mask2, 6) == 0, "p = 1 drops everything");
    /* apply: per element and per channel (len 4); the backward is the same map */
    const float m2[2] = {0, 2};
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float y[8];
    mtgradi_dropout_apply(2, 4, m2, x, y);
    const float want[8] = {0, 0, 0, 0, 10, 12, 14, 16};
    CHECK(memcmp(y, want, sizeof want) == 0, "dropout2d-style apply");
    free(mask), free(mask2);
}

int main(void)
{
    mtgradi_rng_seed(&rng, 12345);
    test_conv_fast_vs_ref();
    test_conv_by_hand();
    test_conv_finite_differences();
    test_linear();
    test_maxpool_semantics();
    test_maxpool_fast_vs_ref();
    test_maxpool_finite_differences();
    test_relu();
    test_dropout();
    return harness_report();
}
