/* Loss-based weightings: FAMO (against a direct implementation of its formulas written here),
 * DWA, RLW, LS and SI-LS closed forms, and their error statuses. */
#include "harness.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static mtgrad_aggregator *make(const char *method, int64_t k, const char *params)
{
    mtgrad_aggregator *a = NULL;
    char err[256];
    mtgrad_status s = mtgrad_aggregator_new(&a, method, k, params, err, sizeof err);
    CHECK(s == MTGRAD_OK, "new %s(%s): %s", method, params ? params : "", err);
    return a;
}

/* ------------------------------------------------------------------ FAMO */

/* A direct transcription of the FAMO formulas (README "famo"), k <= 8. */
typedef struct {
    int k;
    double xi[8], m[8], v[8], prev[8], Lmin[8];
    int t;
    double gamma, lr, b1, b2, eps;
} famo_ref;

static void ref_softmax(const double *x, int k, double *z)
{
    double s = 0;
    for (int i = 0; i < k; i++) s += exp(x[i]);
    for (int i = 0; i < k; i++) z[i] = exp(x[i]) / s;
}

static void ref_weights(famo_ref *f, const double *L, double *w)
{
    double z[8], c = 0;
    ref_softmax(f->xi, f->k, z);
    for (int i = 0; i < f->k; i++) c += z[i] / (L[i] - f->Lmin[i] + 1e-8);
    for (int i = 0; i < f->k; i++) w[i] = z[i] / (L[i] - f->Lmin[i] + 1e-8) / c;
    memcpy(f->prev, L, (size_t)f->k * sizeof *L);
}

static void ref_update(famo_ref *f, const double *Lnew)
{
    double z[8], delta[8], g[8];
    ref_softmax(f->xi, f->k, z);
    for (int i = 0; i < f->k; i++)
        delta[i] = log(f->prev[i] - f->Lmin[i] + 1e-8) - log(Lnew[i] - f->Lmin[i] + 1e-8);
    /* J^T delta with J_ij = z_i (delta_ij - z_j) */
    for (int j = 0; j < f->k; j++) {
        g[j] = 0;
        for (int i = 0; i < f->k; i++) g[j] += delta[i] * z[i] * ((i == j) - z[j]);
        g[j] += f->gamma * f->xi[j];
    }
    f->t++;
    for (int i = 0; i < f->k; i++) {
        f->m[i] = f->b1 * f->m[i] + (1 - f->b1) * g[i];
        f->v[i] = f->b2 * f->v[i] + (1 - f->b2) * g[i] * g[i];
        double mh = f->m[i] / (1 - pow(f->b1, f->t)), vh = f->v[i] / (1 - pow(f->b2, f->t));
        f->xi[i] -= f->lr * mh / (sqrt(vh) + f->eps);
    }
}

static void test_famo_first_step(void)
{
    /* uniform z: w proportional to 1/L */
    double L[3] = {1, 2, 4}, w[3];
    mtgrad_aggregator *a = make("famo", 3, NULL);
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, L, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
    double expect[3] = {4.0 / 7, 2.0 / 7, 1.0 / 7};
    CHECK_ARRAY_CLOSE(w, expect, 3, 1e-7, 0);
    CHECK_CLOSE(w[0] + w[1] + w[2], 1.0, 0, 1e-15);
    mtgrad_aggregator_free(a);
}

static void test_famo_sequence_vs_direct(void)
{
    famo_ref f = {.k = 3, .gamma = 0.001, .lr = 0.05, .b1 = 0.8, .b2 = 0.99, .eps = 1e-6};
    f.Lmin[0] = f.Lmin[1] = f.Lmin[2] = 0.1;
    mtgrad_aggregator *a = make("famo", 3, "gamma=0.001,w_lr=0.05,adam_betas=0.8:0.99,adam_eps=1e-6,min_losses=0.1");
    double L[3] = {2.0, 0.5, 10.0}, w[3], wr[3];
    mtgradi_rng r;
    mtgradi_rng_seed(&r, 1);
    for (int t = 0; t < 12; t++) {
        CHECK(mtgrad_weights_from_gram(a, NULL, 3, L, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
        ref_weights(&f, L, wr);
        /* Adam's 1/sqrt(v) amplifies rounding differences a little: 1e-12 relative */
        CHECK_ARRAY_CLOSE(w, wr, 3, 1e-11, 1e-13);
        CHECK_CLOSE(w[0] + w[1] + w[2], 1.0, 0, 1e-14);
        /* losses after the step: each task decreases at its own, noisy rate */
        double Lnew[3];
        for (int i = 0; i < 3; i++) Lnew[i] = 0.1 + (L[i] - 0.1) * (0.97 - 0.02 * (double)i + 0.01 * mtgradi_rng_normal(&r));
        CHECK(mtgrad_aggregator_update(a, Lnew, 3) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
        ref_update(&f, Lnew);
        memcpy(L, Lnew, sizeof L);
    }
    /* the logits moved: tasks are no longer weighted by 1/(L - L*) alone */
    double z[3];
    ref_softmax(f.xi, 3, z);
    CHECK(fabs(z[0] - 1.0 / 3) > 1e-3, "logits should have moved (z0 = %g)", z[0]);
    mtgrad_aggregator_free(a);
}

/* the direction is G^T w, and max_norm clips it */
static void test_famo_direction_and_clip(void)
{
    double G[2 * 3] = {3, 0, 4, 0, 6, 8}, L[2] = {1, 3}, d[3], w[2];
    mtgrad_aggregator *a = make("famo", 2, NULL);
    CHECK(mtgrad_aggregate_f64(a, G, 2, 3, 3, L, d, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
    /* w = (3/4, 1/4) up to the 1e-8 terms */
    CHECK_CLOSE(w[0], 0.75, 0, 1e-8);
    for (int j = 0; j < 3; j++) CHECK_CLOSE(d[j], w[0] * G[j] + w[1] * G[3 + j], 1e-15, 0);
    double norm = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]); /* ~ 4.8 */
    mtgrad_aggregator *b = make("famo", 2, "max_norm=1");
    CHECK(mtgrad_aggregate_f64(b, G, 2, 3, 3, L, d, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(b));
    double n2 = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    CHECK_CLOSE(n2, norm / (norm + 1e-6), 1e-12, 0); /* torch clip_grad_norm_ coefficient */
    for (int j = 0; j < 3; j++) CHECK_CLOSE(d[j], w[0] * G[j] + w[1] * G[3 + j], 1e-12, 0);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

static void test_famo_errors(void)
{
    double L[2] = {1, 2}, bad[2] = {1, 0}, w[2];
    mtgrad_aggregator *a = make("famo", 2, NULL);
    CHECK(mtgrad_aggregator_update(a, L, 2) == MTGRAD_E_STATE, "update before aggregation");
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, NULL, w) == MTGRAD_E_INVAL, "losses NULL");
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, bad, w) == MTGRAD_E_INVAL, "loss 0 = min_losses");
    CHECK(strstr(mtgrad_aggregator_error(a), "losses[1]") != NULL, "names the task: %s", mtgrad_aggregator_error(a));
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L, w) == MTGRAD_OK, "ok");
    CHECK(mtgrad_aggregator_update(a, bad, 2) == MTGRAD_E_INVAL, "losses_after 0");
    CHECK(mtgrad_aggregator_update(a, L, 3) == MTGRAD_E_SHAPE, "k mismatch");
    CHECK(mtgrad_aggregator_update(a, L, 2) == MTGRAD_OK, "update");
    CHECK(mtgrad_aggregator_update(a, L, 2) == MTGRAD_E_STATE, "second update without aggregation");
    CHECK(mtgrad_aggregator_set_param(a, "min_losses", "0:0:0") == MTGRAD_E_INVAL, "3 min_losses for k = 2");
    CHECK(mtgrad_aggregator_set_param(a, "min_losses", "0.5:0.2") == MTGRAD_OK, "k min_losses");
    double L2[2] = {0.6, 0.3};
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L2, w) == MTGRAD_OK, "above per-task minima");
    double L3[2] = {0.4, 0.3};
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L3, w) == MTGRAD_E_INVAL, "below min_losses[0]");
    CHECK(mtgrad_aggregator_set_param(a, "adam_betas", "0.9") == MTGRAD_E_INVAL, "1 beta");
    CHECK(mtgrad_aggregator_set_param(a, "adam_betas", "0.9 1") == MTGRAD_E_INVAL, "beta2 = 1");
    CHECK(mtgrad_aggregator_set_param(a, "adam_betas", "0.9 0.999") == MTGRAD_OK, "space separated");
    char buf[64];
    mtgrad_aggregator_get_param(a, "adam_betas", buf, sizeof buf);
    char *end;
    double b1 = strtod(buf, &end), b2 = strtod(end + 1, NULL);
    CHECK(b1 == 0.9 && b2 == 0.999 && *end == ':', "betas: %s", buf);
    mtgrad_aggregator_free(a);
}

/* save/load mid-sequence carries the logits, the Adam moments and the pending losses. */
static void test_famo_state(void)
{
    double L1[2] = {1, 2}, L2[2] = {0.8, 1.9}, L3[2] = {0.6, 1.8}, w[2], wb[2];
    mtgrad_aggregator *a = make("famo", 2, NULL), *b = make("famo", 2, NULL);
    mtgrad_weights_from_gram(a, NULL, 2, L1, w);
    mtgrad_aggregator_update(a, L2, 2);
    mtgrad_weights_from_gram(a, NULL, 2, L2, w);
    size_t len = 0;
    mtgrad_aggregator_save(a, NULL, &len);
    unsigned char *buf = malloc(len);
    CHECK(mtgrad_aggregator_save(a, buf, &len) == MTGRAD_OK, "save");
    CHECK(mtgrad_aggregator_load(b, buf, len) == MTGRAD_OK, "load");
    CHECK(mtgrad_aggregator_update(a, L3, 2) == MTGRAD_OK, "a update");
    CHECK(mtgrad_aggregator_update(b, L3, 2) == MTGRAD_OK, "b update (pending losses restored)");
    mtgrad_weights_from_gram(a, NULL, 2, L3, w);
    mtgrad_weights_from_gram(b, NULL, 2, L3, wb);
    CHECK_ARRAY_CLOSE(wb, w, 2, 0, 0);
    mtgrad_aggregator_reset(b);
    CHECK(mtgrad_aggregator_update(b, L3, 2) == MTGRAD_E_STATE, "reset forgets the losses");
    free(buf);
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

/* ------------------------------------------------------------------ DWA */

static void test_dwa(void)
{
    double L0[2] = {1, 1}, L1[2] = {0.5, 1}, L2[2] = {0.4, 0.9}, w[2];
    mtgrad_aggregator *a = make("dwa", 2, NULL);
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L0, w) == MTGRAD_OK, "epoch 0");
    CHECK(w[0] == 1 && w[1] == 1, "ones at epoch 0");
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L1, w) == MTGRAD_OK, "epoch 1");
    CHECK(w[0] == 1 && w[1] == 1, "ones at epoch 1");
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L2, w) == MTGRAD_OK, "epoch 2");
    /* r = L1/L0 = (0.5, 1); w = 2 softmax(r/2) */
    double e0 = exp(0.25), e1 = exp(0.5);
    double expect[2] = {2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)};
    CHECK_ARRAY_CLOSE(w, expect, 2, 1e-15, 0);
    /* epoch 3 uses L2/L1 = (0.8, 0.9) */
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L2, w) == MTGRAD_OK, "epoch 3");
    e0 = exp(0.4), e1 = exp(0.45);
    double expect3[2] = {2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)};
    CHECK_ARRAY_CLOSE(w, expect3, 2, 1e-15, 0);
    /* a failed call (loss <= 0) does not advance the history */
    double bad[2] = {0.3, -1};
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, bad, w) == MTGRAD_E_INVAL, "negative loss");
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, NULL, w) == MTGRAD_E_INVAL, "losses NULL");
    CHECK(mtgrad_weights_from_gram(a, NULL, 2, L2, w) == MTGRAD_OK, "epoch 4");
    /* L2/L2 = 1: equal weights */
    CHECK_CLOSE(w[0], 1.0, 0, 1e-15);
    /* temperature; huge ratios stay finite */
    mtgrad_aggregator *b = make("dwa", 3, "T=0.5");
    double h0[3] = {1e-300, 1, 1}, h1[3] = {1e300, 1, 2}, wb[3];
    mtgrad_weights_from_gram(b, NULL, 3, h0, wb);
    mtgrad_weights_from_gram(b, NULL, 3, h1, wb);
    CHECK(mtgrad_weights_from_gram(b, NULL, 3, h1, wb) == MTGRAD_OK, "%s", mtgrad_aggregator_error(b));
    CHECK_CLOSE(wb[0], 3.0, 0, 1e-12);
    CHECK(mtgrad_aggregator_set_param(b, "T", "0") == MTGRAD_E_INVAL, "T = 0");
    mtgrad_aggregator_free(a);
    mtgrad_aggregator_free(b);
}

/* ------------------------------------------------------------------ RLW, LS, SI-LS */

static void test_rlw(void)
{
    double z[3] = {0.5, -1, 2}, w[3];
    mtgrad_aggregator *a = make("rlw", 3, NULL);
    CHECK(mtgrad_aggregator_set_draws(a, z, 3) == MTGRAD_OK, "draws");
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, NULL, w) == MTGRAD_OK, "%s", mtgrad_aggregator_error(a));
    double s = exp(0.5) + exp(-1.0) + exp(2.0);
    double expect[3] = {exp(0.5) / s, exp(-1.0) / s, exp(2.0) / s};
    CHECK_ARRAY_CLOSE(w, expect, 3, 1e-15, 0);
    CHECK(mtgrad_aggregator_set_draws(a, z, 2) == MTGRAD_OK, "set");
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, NULL, w) == MTGRAD_E_INVAL, "wrong count");
    /* seeded: reproducible, on the simplex, different between calls */
    mtgrad_aggregator *b = make("rlw", 3, "seed=9"), *c = make("rlw", 3, "seed=9");
    double w1[3], w2[3];
    CHECK(mtgrad_weights_from_gram(b, NULL, 3, NULL, w1) == MTGRAD_OK, "b");
    CHECK(mtgrad_weights_from_gram(c, NULL, 3, NULL, w2) == MTGRAD_OK, "c");
    CHECK_ARRAY_CLOSE(w1, w2, 3, 0, 0);
    CHECK_CLOSE(w1[0] + w1[1] + w1[2], 1.0, 0, 1e-15);
    CHECK(mtgrad_weights_from_gram(b, NULL, 3, NULL, w2) == MTGRAD_OK, "b again");
    CHECK(fabs(w2[0] - w1[0]) > 1e-12, "a fresh draw every call");
    /* extreme normals do not overflow */
    double big[3] = {800, -800, 0};
    CHECK(mtgrad_aggregator_set_draws(b, big, 3) == MTGRAD_OK, "set");
    CHECK(mtgrad_weights_from_gram(b, NULL, 3, NULL, w) == MTGRAD_OK, "big");
    CHECK_CLOSE(w[0], 1.0, 0, 1e-15);
    mtgrad_aggregator_free(a), mtgrad_aggregator_free(b), mtgrad_aggregator_free(c);
}

static void test_ls_and_si_ls(void)
{
    double w[3], L[3] = {2, 0.5, 4};
    mtgrad_aggregator *a = make("ls", 3, NULL);
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, NULL, w) == MTGRAD_OK, "ls default");
    CHECK(w[0] == 1 && w[1] == 1 && w[2] == 1, "ones");
    CHECK(mtgrad_aggregator_set_param(a, "weights", "1:2:3") == MTGRAD_OK, "weights");
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, NULL, w) == MTGRAD_OK, "ls p");
    double p[3] = {1, 2, 3};
    CHECK_ARRAY_CLOSE(w, p, 3, 0, 0);
    CHECK(mtgrad_aggregator_set_param(a, "weights", "1:2") == MTGRAD_E_INVAL, "length 2 for k = 3");
    CHECK(mtgrad_weights_from_gram(a, NULL, 3, NULL, w) == MTGRAD_OK, "kept");
    CHECK_ARRAY_CLOSE(w, p, 3, 0, 0);
    mtgrad_aggregator *bad = NULL;
    CHECK(mtgrad_aggregator_new(&bad, "ls", 2, "weights=1:2:3", NULL, 0) == MTGRAD_E_INVAL, "new, bad length");
    mtgrad_aggregator_free(a);

    mtgrad_aggregator *s = make("si_ls", 3, NULL);
    CHECK(mtgrad_weights_from_gram(s, NULL, 3, L, w) == MTGRAD_OK, "si_ls");
    double inv[3] = {0.5, 2, 0.25};
    CHECK_ARRAY_CLOSE(w, inv, 3, 1e-15, 0);
    CHECK(mtgrad_aggregator_set_param(s, "weights", "2:1:4") == MTGRAD_OK, "weights");
    CHECK(mtgrad_weights_from_gram(s, NULL, 3, L, w) == MTGRAD_OK, "si_ls p");
    double pl[3] = {1, 2, 1};
    CHECK_ARRAY_CLOSE(w, pl, 3, 1e-15, 0);
    double L0[3] = {2, 0, 4};
    CHECK(mtgrad_weights_from_gram(s, NULL, 3, L0, w) == MTGRAD_E_INVAL, "zero loss");
    CHECK(strstr(mtgrad_aggregator_error(s), "losses[1]") != NULL, "names the task");
    CHECK(mtgrad_weights_from_gram(s, NULL, 3, NULL, w) == MTGRAD_E_INVAL, "losses NULL");
    CHECK(mtgrad_aggregator_set_param(s, "weights", "1:2:3:4") == MTGRAD_E_INVAL, "length 4 for k = 3");
    /* through the aggregate path: direction = sum_i w_i g_i */
    double G[3 * 2] = {1, 0, 0, 1, 1, 1}, d[2];
    CHECK(mtgrad_aggregate_f64(s, G, 3, 2, 2, L, d, w) == MTGRAD_OK, "aggregate");
    CHECK_CLOSE(d[0], 1.0 + 1.0, 1e-15, 0);
    CHECK_CLOSE(d[1], 2.0 + 1.0, 1e-15, 0);
    mtgrad_aggregator_free(s);
}

int main(void)
{
    test_famo_first_step();
    test_famo_sequence_vs_direct();
    test_famo_direction_and_clip();
    test_famo_errors();
    test_famo_state();
    test_dwa();
    test_rlw();
    test_ls_and_si_ls();
    return harness_report();
}
