/* test_mtl_step_sampling.c — the step's options and the paths that change how many passes a
 * step makes: passes counted per step (ls, famo, mgda, mgda with representation gradients,
 * nash_mtl's update_weights_every, double sampling); task sampling os:N and fast:K backprop
 * exactly the drawn tasks, and their direction equals the method applied by hand to rows built
 * from separate backward_task passes; MGDA-UB's weights from the Gram of dL_i/dZ computed here;
 * double sampling on three identical batches equals the single-sampling step bit for bit, and on
 * different batches uses the cross Gram of batches 1 and 2; option errors and unsupported
 * combinations; resume (save/load of the step state) bit for bit. */
#include "harness.h"
#include "eval/mtl_step_util.h"

#include <stdio.h>

/* --------------------------------------------------------------- passes per step */

static void check_passes(const char *method, const char *params, const char *space, int64_t k,
                         int64_t fw, int64_t trunk, int64_t heads_each)
{
    mtgrad_model *m = tiny(k, 3);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.01);
    mtgrad_mtl_step *s = step_ex(m, method, params, &oc, NULL, space, 0);
    for (int t = 0; t < 2; t++) {
        mtgrad_pass_counts c;
        CHECK(run_counted(s, m, &c) == MTGRAD_OK, "%s step: %s", method, mtgrad_mtl_step_error(s));
        CHECK(c.forwards == fw && c.trunk_backwards == trunk, "%s%s%s: %lld forwards, %lld trunk "
              "backwards; want %lld, %lld", method, space ? " " : "", space ? space : "",
              (long long)c.forwards, (long long)c.trunk_backwards, (long long)fw, (long long)trunk);
        for (int64_t i = 0; i < k; i++)
            CHECK(c.head_backwards[i] == heads_each, "%s: head %lld passes %lld", method,
                  (long long)i, (long long)c.head_backwards[i]);
    }
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

/* --------------------------------------------------------------- os:N */

static void check_rows_direction(mtgrad_mtl_step *s, mtgrad_model *b, const char *method,
                                 const unsigned char *smp, int64_t k)
{
    int64_t d = mtgrad_model_num_shared(b), P = mtgrad_model_num_params(b);
    float *G = calloc((size_t)(k * d), sizeof(float)), *heads = calloc((size_t)P, sizeof(float));
    float *rows = calloc((size_t)(k * d), sizeof(float)), *dir = calloc((size_t)d, sizeof(float));
    double L[MAXK], w[MAXK];
    rows_by_hand(b, k, G, heads, L);
    int64_t r = 0;
    for (int64_t i = 0; i < k; i++)
        if (smp[i]) memcpy(rows + r++ * d, G + i * d, (size_t)d * sizeof(float));
    mtgrad_aggregator *ag = NULL;
    CHECK(mtgrad_aggregator_new(&ag, method, r, NULL, NULL, 0) == MTGRAD_OK, "aggregator %lld",
          (long long)r);
    CHECK(mtgrad_aggregate_f32(ag, rows, r, d, d, NULL, dir, w) == MTGRAD_OK, "aggregate");
    const float *g = mtgrad_mtl_step_grad(s);
    CHECK(memcmp(dir, g, (size_t)d * sizeof(float)) == 0,
          "os: the trunk gradient != %s on the drawn rows (%lld of %lld)", method, (long long)r,
          (long long)k);
    CHECK(memcmp(rows, mtgrad_mtl_step_jacobian(s), (size_t)(r * d) * sizeof(float)) == 0,
          "os: G's first rows are the drawn tasks' gradients");
    const double *sw = mtgrad_mtl_step_weights(s);
    int64_t q = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t off = mtgrad_model_head_offset(b, i), n = mtgrad_model_head_size(b, i);
        double wi = smp[i] ? w[q++] : 0.0;
        CHECK(sw[i] == wi, "os: task weight %lld: %g vs %g", (long long)i, sw[i], wi);
        for (int64_t j = 0; j < n; j++) /* mgda: heads w_i grad L_i; undrawn heads zero */
            CHECK(g[off + j] == (float)(wi * (double)heads[off + j]), "os: head %lld entry %lld",
                  (long long)i, (long long)j);
    }
    mtgrad_aggregator_free(ag);
    free(G), free(heads), free(rows), free(dir);
}

static void test_os(void)
{
    const int64_t k = 5;
    mtgrad_model *a = tiny(k, 8), *b = tiny(k, 8);
    int64_t P = mtgrad_model_num_params(a);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.05);
    mtgrad_mtl_step *s = step_ex(a, "mgda", NULL, &oc, "os:2", NULL, 77);
    int sizes[MAXK + 1] = {0}, differs = 0;
    unsigned char first[MAXK];
    for (int t = 0; t < 12; t++) {
        memcpy(mtgrad_model_params(b), mtgrad_model_params(a), (size_t)P * sizeof(float));
        mtgrad_pass_counts c;
        CHECK(run_counted(s, a, &c) == MTGRAD_OK, "os step: %s", mtgrad_mtl_step_error(s));
        const unsigned char *smp = mtgrad_mtl_step_sampled(s);
        int64_t cnt = 0;
        for (int64_t i = 0; i < k; i++) {
            CHECK(c.head_backwards[i] == smp[i], "os: head %lld backprops %lld, sampled %d",
                  (long long)i, (long long)c.head_backwards[i], smp[i]);
            cnt += smp[i];
        }
        CHECK(cnt >= 1 && c.trunk_backwards == cnt && c.forwards == 1,
              "os: %lld drawn, %lld trunk backwards", (long long)cnt, (long long)c.trunk_backwards);
        sizes[cnt]++;
        if (t == 0) memcpy(first, smp, (size_t)k);
        else differs |= memcmp(first, smp, (size_t)k) != 0;
        check_rows_direction(s, b, "mgda", smp, k);
    }
    CHECK(differs, "os: the draws change from step to step");
    CHECK(sizes[k] < 12, "os:2 of 5 does not keep every task every time");

    /* same seed, same draws; another seed, other draws */
    mtgrad_model *c2 = tiny(k, 8), *c3 = tiny(k, 8);
    mtgrad_mtl_step *s2 = step_ex(c2, "mgda", NULL, &oc, "os:2", NULL, 77);
    mtgrad_mtl_step *s3 = step_ex(c3, "mgda", NULL, &oc, "os:2", NULL, 78);
    int same = 1, other = 0;
    mtgrad_model *a2 = tiny(k, 8);
    mtgrad_mtl_step *s1 = step_ex(a2, "mgda", NULL, &oc, "os:2", NULL, 77);
    for (int t = 0; t < 6; t++) {
        mtgrad_pass_counts c;
        run_counted(s1, a2, &c);
        run_counted(s2, c2, &c);
        run_counted(s3, c3, &c);
        same &= memcmp(mtgrad_mtl_step_sampled(s1), mtgrad_mtl_step_sampled(s2), (size_t)k) == 0;
        other |= memcmp(mtgrad_mtl_step_sampled(s1), mtgrad_mtl_step_sampled(s3), (size_t)k) != 0;
    }
    CHECK(same, "os: the draws are a function of the seed and the step count");
    CHECK(other, "os: another seed draws other subsets");
    mtgrad_mtl_step_free(s1), mtgrad_mtl_step_free(s2), mtgrad_mtl_step_free(s3);
    mtgrad_model_free(a2), mtgrad_model_free(c2), mtgrad_model_free(c3);

    /* os:k keeps every task: the plain step */
    mtgrad_model *e = tiny(k, 8), *f = tiny(k, 8);
    mtgrad_mtl_step *se = step_ex(e, "mgda", NULL, &oc, "os:5", NULL, 1);
    mtgrad_mtl_step *sf = step_ex(f, "mgda", NULL, &oc, NULL, NULL, 1);
    for (int t = 0; t < 3; t++) {
        CHECK(mtgrad_mtl_step_run(se, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "os:5 step");
        CHECK(mtgrad_mtl_step_run(sf, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "plain step");
    }
    CHECK(memcmp(mtgrad_model_params(e), mtgrad_model_params(f), (size_t)P * sizeof(float)) == 0,
          "os:k == the step without sampling, bit for bit");
    mtgrad_mtl_step_free(se), mtgrad_mtl_step_free(sf);
    mtgrad_model_free(e), mtgrad_model_free(f);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- fast:K */

/* cagrad (c = 0.4) on rows: singles (ascending) then the mean of the others, g0 weights
 * (1/k, ..., 1/k, m/k); the direction in dir. */
static void fast_by_hand(const float *G, int64_t k, int64_t d, int64_t K, const int64_t *singles,
                         float *dir)
{
    float *rows = calloc((size_t)(K * d), sizeof(float));
    unsigned char is_single[MAXK] = {0};
    for (int64_t r = 0; r < K - 1; r++) {
        memcpy(rows + r * d, G + singles[r] * d, (size_t)d * sizeof(float));
        is_single[singles[r]] = 1;
    }
    int64_t m = k - K + 1;
    for (int64_t j = 0; j < d; j++) {
        double sum = 0;
        for (int64_t i = 0; i < k; i++)
            if (!is_single[i]) sum += (double)G[i * d + j];
        rows[(K - 1) * d + j] = (float)(sum / (double)m);
    }
    char params[256];
    int off = snprintf(params, sizeof params, "c=0.4,g0_weights=");
    for (int64_t r = 0; r < K; r++)
        off += snprintf(params + off, sizeof params - (size_t)off, "%s%.17g", r ? ":" : "",
                        r < K - 1 ? 1.0 / (double)k : (double)m / (double)k);
    mtgrad_aggregator *ag = NULL;
    char err[256] = "";
    CHECK(mtgrad_aggregator_new(&ag, "cagrad", K, params, err, sizeof err) == MTGRAD_OK,
          "cagrad with g0_weights: %s", err);
    CHECK(mtgrad_aggregate_f32(ag, rows, K, d, d, NULL, dir, NULL) == MTGRAD_OK, "aggregate");
    mtgrad_aggregator_free(ag);
    free(rows);
}

static void test_fast(void)
{
    const int64_t k = 5, K = 3;
    mtgrad_model *a = tiny(k, 12), *b = tiny(k, 12);
    int64_t P = mtgrad_model_num_params(a), d = mtgrad_model_num_shared(a);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.05);
    mtgrad_mtl_step *s = step_ex(a, "cagrad", "c=0.4", &oc, "fast:3", NULL, 4);
    float *G = calloc((size_t)(k * d), sizeof(float)), *heads = calloc((size_t)P, sizeof(float));
    float *dir = calloc((size_t)d, sizeof(float));
    double *want = calloc((size_t)d, sizeof(double)), L[MAXK];
    int pairs_seen[MAXK][MAXK] = {{0}};
    for (int t = 0; t < 8; t++) {
        memcpy(mtgrad_model_params(b), mtgrad_model_params(a), (size_t)P * sizeof(float));
        mtgrad_pass_counts c;
        CHECK(run_counted(s, a, &c) == MTGRAD_OK, "fast step: %s", mtgrad_mtl_step_error(s));
        CHECK(c.forwards == 1 && c.trunk_backwards == K, "fast:3: %lld trunk backwards",
              (long long)c.trunk_backwards);
        const unsigned char *smp = mtgrad_mtl_step_sampled(s);
        for (int64_t i = 0; i < k; i++)
            CHECK(smp[i] == 1 && c.head_backwards[i] == 1, "fast: every task's head once");
        rows_by_hand(b, k, G, heads, L);
        /* which pair of singles: the one whose by-hand direction matches */
        double best = 1e300;
        int64_t bi = -1, bj = -1;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = i + 1; j < k; j++) {
                int64_t sg[2] = {i, j};
                fast_by_hand(G, k, d, K, sg, dir);
                for (int64_t q = 0; q < d; q++) want[q] = (double)dir[q];
                double *got = calloc((size_t)d, sizeof(double));
                for (int64_t q = 0; q < d; q++) got[q] = (double)mtgrad_mtl_step_grad(s)[q];
                double e = rel_err_d(got, want, d);
                free(got);
                if (e < best) best = e, bi = i, bj = j;
            }
        CHECK(best < 1e-5, "fast: the direction matches cagrad on a by-hand subset (%.3g)", best);
        if (bi >= 0) pairs_seen[bi][bj]++;
        /* cagrad's heads get grad L_i unweighted, for singles and members alike */
        const float *g = mtgrad_mtl_step_grad(s);
        for (int64_t i = 0; i < k; i++) {
            int64_t off = mtgrad_model_head_offset(a, i), n = mtgrad_model_head_size(a, i);
            CHECK(memcmp(g + off, heads + off, (size_t)n * sizeof(float)) == 0,
                  "fast: head %lld == grad L_i", (long long)i);
        }
    }
    int distinct = 0;
    for (int i = 0; i < MAXK; i++)
        for (int j = 0; j < MAXK; j++) distinct += pairs_seen[i][j] > 0;
    CHECK(distinct >= 2, "fast: the singles change between steps (%d distinct pairs)", distinct);
    free(G), free(heads), free(dir), free(want);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- MGDA-UB */

static void test_rep(void)
{
    mtgrad_model *a = tiny(2, 14), *b = tiny(2, 14);
    int64_t P = mtgrad_model_num_params(a), d = mtgrad_model_num_shared(a);
    int64_t rs = mtgrad_model_rep_size(b), len = NB * rs;
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.05);
    mtgrad_mtl_step *s = step_ex(a, "mgda", NULL, &oc, NULL, "rep", 0);
    float *R = calloc((size_t)(2 * len), sizeof(float)), *G = calloc((size_t)(2 * d), sizeof(float));
    float *heads = calloc((size_t)P, sizeof(float));
    double L[2];
    CHECK(mtgrad_model_forward(b, X[0], Y[0], NB, 1, L) == MTGRAD_OK, "forward");
    for (int64_t i = 0; i < 2; i++)
        CHECK(mtgrad_model_backward_head(b, i, R + i * len, heads) == MTGRAD_OK, "backward_head");
    double z11 = 0, z22 = 0, z12 = 0;
    for (int64_t j = 0; j < len; j++) {
        double u = R[j], v = R[len + j];
        z11 += u * u, z22 += v * v, z12 += u * v;
    }
    double x = (z22 - z12) / (z11 + z22 - 2 * z12); /* MGDA for two tasks, closed form */
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    double w[2] = {x, 1 - x};
    rows_by_hand(b, 2, G, heads, L);
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "rep step: %s",
          mtgrad_mtl_step_error(s));
    const double *sw = mtgrad_mtl_step_weights(s);
    CHECK_CLOSE(sw[0], w[0], 1e-9, 1e-12);
    CHECK_CLOSE(sw[1], w[1], 1e-9, 1e-12);
    double *want = calloc((size_t)d, sizeof(double)), *got = calloc((size_t)d, sizeof(double));
    const float *g = mtgrad_mtl_step_grad(s);
    for (int64_t j = 0; j < d; j++) {
        want[j] = w[0] * G[j] + w[1] * G[d + j];
        got[j] = g[j];
    }
    CHECK(rel_err_d(got, want, d) < 1e-5, "rep: trunk gradient == sum_i w_i g_i (%.3g)",
          rel_err_d(got, want, d));
    for (int64_t i = 0; i < 2; i++) {
        int64_t off = mtgrad_model_head_offset(a, i), n = mtgrad_model_head_size(a, i);
        for (int64_t j = 0; j < n; j++)
            CHECK(g[off + j] == (float)(sw[i] * (double)heads[off + j]), "rep: head %lld = w_i "
                  "grad L_i", (long long)i);
    }
    CHECK(mtgrad_mtl_step_jacobian(s) == NULL, "rep builds no k x d G");
    free(R), free(G), free(heads), free(want), free(got);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- nash update_weights_every */

static void test_nash_every(void)
{
    const int64_t k = 3;
    mtgrad_model *m = tiny(k, 6);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.01);
    mtgrad_mtl_step *s = step_ex(m, "nash_mtl", "update_weights_every=3", &oc, NULL, NULL, 0);
    char v[32];
    mtgrad_aggregator_get_param(mtgrad_mtl_step_aggregator(s), "update_weights_every", v, sizeof v);
    CHECK(strcmp(v, "1") == 0, "the aggregator's update_weights_every is taken over (%s)", v);
    double w_last[MAXK];
    for (int t = 0; t < 7; t++) {
        mtgrad_pass_counts c;
        CHECK(run_counted(s, m, &c) == MTGRAD_OK, "nash step %d: %s", t, mtgrad_mtl_step_error(s));
        int update = t % 3 == 0;
        CHECK(c.trunk_backwards == (update ? k : 1) && c.forwards == 1,
              "nash every 3, step %d: %lld trunk backwards", t, (long long)c.trunk_backwards);
        const double *w = mtgrad_mtl_step_weights(s);
        if (!update)
            CHECK(memcmp(w, w_last, (size_t)k * sizeof(double)) == 0, "step %d reuses the weights", t);
        memcpy(w_last, w, (size_t)k * sizeof(double));
    }
    /* between updates: exactly one backward of sum_i w_i L_i, clipped as the method's max_norm */
    mtgrad_model *b = tiny(k, 6);
    int64_t P = mtgrad_model_num_params(b), d = mtgrad_model_num_shared(b);
    memcpy(mtgrad_model_params(b), mtgrad_model_params(m), (size_t)P * sizeof(float));
    float *grad = calloc((size_t)P, sizeof(float));
    double L[MAXK];
    CHECK(mtgrad_model_forward(b, X[0], Y[0], NB, 1, L) == MTGRAD_OK, "forward");
    CHECK(mtgrad_model_backward_weighted(b, w_last, grad) == MTGRAD_OK, "backward_weighted");
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "step 7");
    const float *g = mtgrad_mtl_step_grad(s);
    double nrm = 0, dotp = 0, ng = 0;
    for (int64_t j = 0; j < d; j++) {
        nrm += (double)grad[j] * grad[j];
        ng += (double)g[j] * g[j];
        dotp += (double)grad[j] * g[j];
    }
    double coef = 1.0 / (sqrt(nrm) + 1e-6); /* max_norm 1 */
    CHECK_CLOSE(sqrt(ng), coef < 1 ? coef * sqrt(nrm) : sqrt(nrm), 1e-6, 0);
    CHECK_CLOSE(dotp / sqrt(ng * nrm), 1.0, 0, 1e-6);
    CHECK(memcmp(g + d, grad + d, (size_t)(P - d) * sizeof(float)) == 0,
          "reused weights: heads w_i grad L_i, unclipped");
    free(grad);
    mtgrad_model_free(b);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

/* --------------------------------------------------------------- double sampling */

static void test_double(void)
{
    const int64_t k = 3;
    mtgrad_model *a = tiny(k, 17), *b = tiny(k, 17);
    int64_t P = mtgrad_model_num_params(a), d = mtgrad_model_num_shared(a);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.05);
    mtgrad_mtl_step *sd = step_ex(a, "sdmgrad", "sampling=double", &oc, NULL, NULL, 0);
    mtgrad_mtl_step *ss = step_ex(b, "sdmgrad", NULL, &oc, NULL, NULL, 0);
    CHECK(mtgrad_mtl_step_batches(sd) == 3 && mtgrad_mtl_step_batches(ss) == 1, "batches 3 / 1");
    const float *xs[3] = {X[0], X[0], X[0]}, *ys[3] = {Y[0], Y[0], Y[0]};
    for (int t = 0; t < 3; t++) {
        CHECK(mtgrad_mtl_step_run_batches(sd, xs, ys, 3, NB, NULL, NULL) == MTGRAD_OK,
              "double step: %s", mtgrad_mtl_step_error(sd));
        CHECK(mtgrad_mtl_step_run(ss, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "single step");
    }
    CHECK(memcmp(mtgrad_model_params(a), mtgrad_model_params(b), (size_t)P * sizeof(float)) == 0,
          "double sampling on three identical batches == single sampling, bit for bit");
    CHECK(mtgrad_mtl_step_run(sd, X[0], Y[0], NB, NULL, NULL) == MTGRAD_E_INVAL &&
          strstr(mtgrad_mtl_step_error(sd), "3") != NULL, "one batch for a 3-batch step: %s",
          mtgrad_mtl_step_error(sd));
    CHECK(mtgrad_mtl_step_run_batches(ss, xs, ys, 3, NB, NULL, NULL) == MTGRAD_E_INVAL,
          "three batches for a 1-batch step");

    /* different batches: weights from the cross Gram of batches 1, 2; direction on batch 0 */
    mtgrad_model *c = tiny(k, 17);
    mtgrad_mtl_step *sc = step_ex(c, "sdmgrad", "sampling=double", &oc, NULL, NULL, 0);
    float *G[3], *heads = calloc((size_t)P, sizeof(float));
    double L[3][MAXK], C[MAXK * MAXK], w[MAXK];
    for (int q = 0; q < 3; q++) {
        G[q] = calloc((size_t)(k * d), sizeof(float));
        CHECK(mtgrad_model_forward(b, X[q], Y[q], NB, 1, L[q]) == MTGRAD_OK, "forward");
        for (int64_t i = 0; i < k; i++)
            CHECK(mtgrad_model_backward_task(b, i, G[q] + i * d, heads) == MTGRAD_OK, "bt");
    }
    memcpy(mtgrad_model_params(c), mtgrad_model_params(b), (size_t)P * sizeof(float));
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double acc = 0;
            for (int64_t q = 0; q < d; q++) acc += (double)G[1][i * d + q] * G[2][j * d + q];
            C[i * k + j] = acc;
        }
    mtgrad_aggregator *ag = NULL;
    CHECK(mtgrad_aggregator_new(&ag, "sdmgrad", k, "sampling=double", NULL, 0) == MTGRAD_OK, "agg");
    CHECK(mtgrad_weights_from_cross_gram(ag, C, k, NULL, w) == MTGRAD_OK, "cross gram weights");
    mtgrad_pass_counts pc;
    CHECK(run_counted(sc, c, &pc) == MTGRAD_OK, "double step: %s", mtgrad_mtl_step_error(sc));
    CHECK(pc.forwards == 3 && pc.trunk_backwards == 3 * k, "double: 3 forwards, 3k backwards");
    const double *sw = mtgrad_mtl_step_weights(sc);
    for (int64_t i = 0; i < k; i++) CHECK_CLOSE(sw[i], w[i], 1e-9, 1e-12);
    double *want = calloc((size_t)d, sizeof(double)), *got = calloc((size_t)d, sizeof(double));
    for (int64_t q = 0; q < d; q++) {
        for (int64_t i = 0; i < k; i++) want[q] += w[i] * G[0][i * d + q];
        got[q] = mtgrad_mtl_step_grad(sc)[q];
    }
    CHECK(rel_err_d(got, want, d) < 1e-6, "double: direction G(batch 0)^T w (%.3g)",
          rel_err_d(got, want, d));
    CHECK(memcmp(mtgrad_mtl_step_jacobian(sc), G[0], (size_t)(k * d) * sizeof(float)) == 0,
          "double: G holds batch 0's rows");
    mtgrad_aggregator_free(ag);
    for (int q = 0; q < 3; q++) free(G[q]);
    free(heads), free(want), free(got);
    mtgrad_mtl_step_free(sc);
    mtgrad_model_free(c);
    mtgrad_mtl_step_free(sd);
    mtgrad_mtl_step_free(ss);
    mtgrad_model_free(a);
    mtgrad_model_free(b);
}

/* --------------------------------------------------------------- errors */

static void expect_fail(mtgrad_status want, const char *method, const char *params,
                        mtgrad_optim_kind kind, const char *sample, const char *space,
                        const char *in_msg)
{
    mtgrad_model *m = tiny(5, 1);
    mtgrad_optim_config oc = optim_of(kind, 0.01);
    mtgrad_step_options o = mtgrad_step_options_default();
    o.task_sample = sample;
    o.grad_space = space;
    mtgrad_mtl_step *s = (mtgrad_mtl_step *)&o; /* must be reset to NULL */
    char err[256] = "";
    mtgrad_status st = mtgrad_mtl_step_new_ex(&s, m, method, params, &oc, &o, err, sizeof err);
    CHECK(st == want && s == NULL, "%s %s %s %s: status %d (%s), want %d", method,
          params ? params : "", sample ? sample : "", space ? space : "", (int)st, err, (int)want);
    CHECK(strstr(err, in_msg) != NULL, "message \"%s\" mentions \"%s\"", err, in_msg);
    mtgrad_model_free(m);
}

static void test_errors(void)
{
    mtgrad_step_options o = mtgrad_step_options_default();
    CHECK(o.task_sample == NULL && o.grad_space == NULL && o.seed == 0, "default options");
    const mtgrad_optim_kind SGD = MTGRAD_OPTIM_SGD;
    expect_fail(MTGRAD_E_INVAL, "mgda", NULL, SGD, "os:0", NULL, "os:0");
    expect_fail(MTGRAD_E_INVAL, "mgda", NULL, SGD, "os:6", NULL, "k = 5");
    expect_fail(MTGRAD_E_INVAL, "mgda", NULL, SGD, "fast:x", NULL, "fast:x");
    expect_fail(MTGRAD_E_INVAL, "mgda", NULL, SGD, "os:2x", NULL, "os:2x");
    expect_fail(MTGRAD_E_INVAL, "mgda", NULL, SGD, "half:2", NULL, "os:N");
    expect_fail(MTGRAD_E_INVAL, "mgda", NULL, SGD, NULL, "params", "param or rep");
    expect_fail(MTGRAD_E_UNSUPPORTED, "mgda", NULL, SGD, "os:2", "rep", "cannot be combined");
    expect_fail(MTGRAD_E_UNSUPPORTED, "ls", NULL, SGD, "os:2", NULL, "losses");
    expect_fail(MTGRAD_E_UNSUPPORTED, "famo", NULL, SGD, "fast:2", NULL, "losses");
    expect_fail(MTGRAD_E_UNSUPPORTED, "graddrop", NULL, SGD, NULL, "rep", "Gram-only");
    expect_fail(MTGRAD_E_UNSUPPORTED, "ls", NULL, SGD, NULL, "rep", "Gram-only");
    expect_fail(MTGRAD_E_UNSUPPORTED, "mgda", NULL, MTGRAD_OPTIM_ADATASK_ADAM, "os:2", NULL,
                "AdaTask");
    expect_fail(MTGRAD_E_UNSUPPORTED, "mgda", NULL, MTGRAD_OPTIM_ADATASK_ADAM, NULL, "rep",
                "AdaTask");
    expect_fail(MTGRAD_E_UNSUPPORTED, "sdmgrad", "sampling=double", SGD, "os:2", NULL,
                "sampling=double");
    expect_fail(MTGRAD_E_UNSUPPORTED, "sdmgrad", "sampling=double", SGD, NULL, "rep",
                "sampling=double");
    expect_fail(MTGRAD_E_UNSUPPORTED, "nash_mtl", "update_weights_every=2", SGD, "os:2", NULL,
                "update_weights_every");
    /* accepted: "param" and "" spell the default */
    mtgrad_model *m = tiny(3, 1);
    mtgrad_optim_config oc = optim_of(SGD, 0.01);
    mtgrad_mtl_step *s = step_ex(m, "mgda", NULL, &oc, "", "param", 0);
    CHECK(mtgrad_mtl_step_batches(s) == 1 && mtgrad_mtl_step_sampled(s)[2] == 1, "defaults");
    CHECK(mtgrad_mtl_step_sampled(NULL) == NULL && mtgrad_mtl_step_batches(NULL) == 1, "NULL step");
    mtgrad_mtl_step_free(s);
    s = step_ex(m, "mgda", NULL, &oc, "fast:3", NULL, 0); /* fast:k: every task a single */
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "fast:k step");
    const float *xs[1] = {X[0]};
    CHECK(mtgrad_mtl_step_run_batches(s, xs, NULL, 1, NB, NULL, NULL) == MTGRAD_E_INVAL,
          "NULL targets");
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

/* --------------------------------------------------------------- state */

static void test_state_bytes(void)
{
    mtgrad_model *m = tiny(3, 2);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_SGD, 0.01);
    mtgrad_mtl_step *s = step_ex(m, "nash_mtl", "update_weights_every=2", &oc, NULL, NULL, 0);
    mtgrad_mtl_step *o = step_ex(m, "sdmgrad", NULL, &oc, "os:1", NULL, 0);
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "step");
    CHECK(mtgrad_mtl_step_run(o, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "step");
    size_t len = 0, small = 4;
    CHECK(mtgrad_mtl_step_save(s, NULL, &len) == MTGRAD_OK && len > 0, "size");
    unsigned char *buf = malloc(len), tiny_buf[4];
    CHECK(mtgrad_mtl_step_save(s, tiny_buf, &small) == MTGRAD_E_IO && small == len, "too small");
    CHECK(mtgrad_mtl_step_save(s, buf, &len) == MTGRAD_OK, "save");
    CHECK(mtgrad_mtl_step_load(s, buf, len) == MTGRAD_OK, "load own state");
    CHECK(mtgrad_mtl_step_load(o, buf, len) == MTGRAD_E_STATE, "another step's state refused");
    buf[len / 2] ^= 1;
    CHECK(mtgrad_mtl_step_load(s, buf, len) == MTGRAD_E_STATE, "corrupt state refused");
    CHECK(mtgrad_mtl_step_load(s, buf, len - 1) == MTGRAD_E_STATE, "short state refused");
    CHECK(mtgrad_mtl_step_save(NULL, buf, &len) == MTGRAD_E_INVAL, "NULL step");
    CHECK(mtgrad_mtl_step_load(s, NULL, len) == MTGRAD_E_INVAL, "NULL buffer");
    free(buf);
    mtgrad_mtl_step_free(s);
    mtgrad_mtl_step_free(o);
    mtgrad_model_free(m);
}

int main(void)
{
    make_data();
    check_passes("ls", NULL, NULL, 3, 1, 1, 1);
    check_passes("famo", NULL, NULL, 3, 2, 1, 1);
    check_passes("mgda", NULL, NULL, 3, 1, 3, 1);
    check_passes("mgda", NULL, "rep", 3, 1, 1, 1);
    check_passes("nash_mtl", NULL, "rep", 3, 1, 1, 1);
    test_os();
    test_fast();
    test_rep();
    test_nash_every();
    test_double();
    test_errors();
    test_state_bytes();
    mtgrad_optim_config adam = optim_of(MTGRAD_OPTIM_ADAM, 0.01);
    check_resume("nash every 3", 3, "nash_mtl", "update_weights_every=3", &adam, NULL, 8);
    check_resume("sdmgrad os:2", 5, "sdmgrad", NULL, &adam, "os:2", 10);
    check_resume("cagrad fast:2", 4, "cagrad", NULL, &adam, "fast:2", 6);
    check_resume("sdmgrad double", 3, "sdmgrad", "sampling=double", &adam, NULL, 6);
    return harness_report();
}
