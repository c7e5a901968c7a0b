/* The per-task losses: values against closed forms (uniform logits, huge logits where a naive
 * formula overflows, BCE at 0 and +-100), per-element central differences of the mean loss
 * against the returned gradient, and every target check (E_INVAL) and non-finite (E_NONFINITE)
 * path with its message. */
#include "harness.h"
#include "nn/nn_internal.h"

#include <string.h>

static mtgrad_status loss(mtgrad_loss_kind kind, int64_t n, int64_t width, const float *out,
                          const float *t, double *L, float *g, char *err)
{
    return mtgradi_loss(kind, 3, n, width, out, t, L, g, err, 256);
}

static void test_closed_forms(void)
{
    char err[256];
    double L;
    float g[8];
    /* CE with equal logits: log(width); gradient 1/width - onehot, over n */
    const float z4[8] = {0.5f, 0.5f, 0.5f, 0.5f, 2, 2, 2, 2};
    const float y2[2] = {1, 3};
    CHECK(loss(MTGRAD_LOSS_CE, 2, 4, z4, y2, &L, g, err) == MTGRAD_OK, "%s", err);
    CHECK_CLOSE(L, log(4.0), 1e-12, 0);
    CHECK_CLOSE(g[0], 0.125, 1e-7, 0);
    CHECK_CLOSE(g[1], (0.25 - 1) / 2, 1e-7, 0);
    CHECK_CLOSE(g[7], (0.25 - 1) / 2, 1e-7, 0);
    /* CE with huge logits stays finite: lse(1000, 0) = 1000 + log1p(e^-1000) */
    const float zb[2] = {1000, 0};
    const float y0[1] = {0}, y1[1] = {1};
    CHECK(loss(MTGRAD_LOSS_CE, 1, 2, zb, y0, &L, g, err) == MTGRAD_OK && L == 0, "CE(1000,0|0) = %g", L);
    CHECK(loss(MTGRAD_LOSS_CE, 1, 2, zb, y1, &L, g, err) == MTGRAD_OK, "%s", err);
    CHECK_CLOSE(L, 1000, 1e-12, 0);
    CHECK(g[0] == 1 && g[1] == -1, "CE gradient at saturation %g %g", g[0], g[1]);
    /* MSE: mean (z - y)^2, gradient 2 (z - y) / n */
    const float zm[3] = {1, -2, 0.5f}, ym[3] = {0, 1, 0.5f};
    CHECK(loss(MTGRAD_LOSS_MSE, 3, 1, zm, ym, &L, g, err) == MTGRAD_OK, "%s", err);
    CHECK_CLOSE(L, (1.0 + 9.0 + 0.0) / 3, 1e-12, 0);
    CHECK_CLOSE(g[1], 2.0 * -3 / 3, 1e-7, 0);
    /* BCE: log 2 at z = 0; |z| at +-100 against the wrong label (the naive form overflows) */
    const float zc[4] = {0, 100, -100, 100}, yc[4] = {1, 0, 1, 1};
    CHECK(loss(MTGRAD_LOSS_BCE, 4, 1, zc, yc, &L, g, err) == MTGRAD_OK, "%s", err);
    double want = (log(2.0) + 100 + 100 + log1p(exp(-100.0))) / 4;
    CHECK_CLOSE(L, want, 1e-12, 0);
    CHECK_CLOSE(g[0], -0.5 / 4, 1e-7, 0);
    CHECK_CLOSE(g[1], 1.0 / 4, 1e-7, 0);
    CHECK_CLOSE(g[2], -1.0 / 4, 1e-7, 0);
    CHECK(fabs(g[3]) < 1e-40, "BCE gradient at z = 100, y = 1: %g", g[3]);
    /* soft BCE label 0.25 at z = 0: log 2, gradient (0.5 - 0.25) */
    const float z0[1] = {0}, yq[1] = {0.25f};
    CHECK(loss(MTGRAD_LOSS_BCE, 1, 1, z0, yq, &L, g, err) == MTGRAD_OK, "%s", err);
    CHECK_CLOSE(L, log(2.0), 1e-12, 0);
    CHECK_CLOSE(g[0], 0.25, 1e-7, 0);
}

/* Per-element central differences of the mean loss w.r.t. each output. */
static void test_gradients(void)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 99);
    const mtgrad_loss_kind kinds[3] = {MTGRAD_LOSS_CE, MTGRAD_LOSS_MSE, MTGRAD_LOSS_BCE};
    for (int t = 0; t < 3; t++) {
        const int64_t n = 5, width = kinds[t] == MTGRAD_LOSS_CE ? 4 : 1;
        float z[20], y[5], g[20];
        double an[20], fd[20], L;
        char err[256];
        for (int64_t i = 0; i < n * width; i++) z[i] = (float)(4 * mtgradi_rng_uniform(&r) - 2);
        for (int64_t i = 0; i < n; i++)
            y[i] = kinds[t] == MTGRAD_LOSS_CE    ? (float)mtgradi_rng_below(&r, width)
                   : kinds[t] == MTGRAD_LOSS_BCE ? (float)mtgradi_rng_below(&r, 2)
                                                 : (float)mtgradi_rng_normal(&r);
        CHECK(loss(kinds[t], n, width, z, y, &L, g, err) == MTGRAD_OK, "%s", err);
        double dot = 0, fdd = 0;
        for (int64_t i = 0; i < n * width; i++) {
            const double h = 1e-3;
            double lp, lm;
            float save = z[i];
            z[i] = (float)(save + h);
            loss(kinds[t], n, width, z, y, &lp, NULL, err);
            double zp = z[i];
            z[i] = (float)(save - h);
            loss(kinds[t], n, width, z, y, &lm, NULL, err);
            double zm = z[i];
            z[i] = save;
            fd[i] = (lp - lm) / (zp - zm);
            an[i] = g[i];
            /* a directional check along (1, -1, 1, ...) too */
            dot += (i % 2 ? -1 : 1) * an[i];
            fdd += (i % 2 ? -1 : 1) * fd[i];
        }
        CHECK_ARRAY_CLOSE(an, fd, n * width, 1e-4, 1e-6);
        CHECK_CLOSE(dot, fdd, 1e-4, 1e-6);
        if (kinds[t] == MTGRAD_LOSS_CE)
            for (int64_t s = 0; s < n; s++) {
                double sum = 0;
                for (int64_t j = 0; j < width; j++) sum += g[s * width + j];
                CHECK(fabs(sum) < 1e-7, "CE gradient row %lld sums to %g", (long long)s, sum);
            }
    }
}

#define CHECK_STATUS(call, want, needle)                                                           \
    do {                                                                                           \
        char err_[256] = "";                                                                       \
        double L_;                                                                                 \
        mtgrad_status s_ = (call);                                                                 \
        CHECK(s_ == (want), "status %d, want %d (%s)", (int)s_, (int)(want), err_);                 \
        CHECK(strstr(err_, needle) != NULL, "message '%s' lacks '%s'", err_, needle);              \
    } while (0)

static void test_errors(void)
{
    const float z[6] = {0, 1, 2, 0, 1, 2};
    const float frac[2] = {1.5f, 0}, neg[2] = {0, -1}, big[2] = {3, 0}, nan2[2] = {0, NAN};
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_CE, 1, 2, 3, z, frac, &L_, NULL, err_, 256), MTGRAD_E_INVAL,
                 "task 1, sample 0: class index 1.5");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_CE, 1, 2, 3, z, neg, &L_, NULL, err_, 256), MTGRAD_E_INVAL,
                 "sample 1: class index -1");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_CE, 1, 2, 3, z, big, &L_, NULL, err_, 256), MTGRAD_E_INVAL,
                 "[0, 3)");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_CE, 1, 2, 3, z, nan2, &L_, NULL, err_, 256), MTGRAD_E_INVAL,
                 "class index nan");
    const float bce_bad[2] = {0, 2};
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_BCE, 0, 2, 1, z, bce_bad, &L_, NULL, err_, 256),
                 MTGRAD_E_INVAL, "BCE target 2");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_BCE, 0, 2, 1, z, nan2, &L_, NULL, err_, 256),
                 MTGRAD_E_INVAL, "BCE target nan");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_MSE, 2, 2, 1, z, nan2, &L_, NULL, err_, 256),
                 MTGRAD_E_NONFINITE, "task 2: the loss is");
    const float zn[2] = {NAN, 0}, ok2[2] = {0, 1};
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_BCE, 0, 2, 1, zn, ok2, &L_, NULL, err_, 256),
                 MTGRAD_E_NONFINITE, "loss is nan");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_CE, 0, 1, 2, zn, ok2, &L_, NULL, err_, 256),
                 MTGRAD_E_NONFINITE, "loss is nan");
    const float zi[2] = {INFINITY, 0};
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_CE, 0, 1, 2, zi, ok2, &L_, NULL, err_, 256),
                 MTGRAD_E_NONFINITE, "loss is");
    CHECK_STATUS(mtgradi_loss(MTGRAD_LOSS_MSE, 0, 1, 1, zi, ok2, &L_, NULL, err_, 256),
                 MTGRAD_E_NONFINITE, "loss is inf");
}

int main(void)
{
    test_closed_forms();
    test_gradients();
    test_errors();
    return harness_report();
}
