/* test_mtl_step_adatask.c — the step with an AdaTask optimizer: k = 1 equals the plain optimizer
 * bit for bit (Adam, RMSprop, Adagrad); with k tasks and ls preference weights (AdaTask's task
 * weights) the step equals k backward_task passes, rows and heads scaled by w_i, and
 * mtgrad_optimizer_step_tasks, done here by hand; a Gram method supplies its weights (mgda,
 * closed form for two tasks); passes counted; unsupported methods refused; resume bit for bit. */
#include "harness.h"
#include "eval/mtl_step_util.h"

static void test_k1(mtgrad_optim_kind per_task, mtgrad_optim_kind plain)
{
    mtgrad_model *a = tiny(1, 4), *b = tiny(1, 4);
    int64_t P = mtgrad_model_num_params(a);
    mtgrad_optim_config oa = optim_of(per_task, 0.01), ob = optim_of(plain, 0.01);
    mtgrad_mtl_step *sa = step_ex(a, "ls", NULL, &oa, NULL, NULL, 0);
    mtgrad_mtl_step *sb = step_ex(b, "ls", NULL, &ob, NULL, NULL, 0);
    CHECK(mtgrad_optimizer_per_task(mtgrad_mtl_step_optimizer(sa)) == 1, "per-task optimizer");
    for (int t = 0; t < 4; t++) {
        CHECK(run_step_t(sa, t) == MTGRAD_OK, "adatask step: %s", mtgrad_mtl_step_error(sa));
        CHECK(run_step_t(sb, t) == MTGRAD_OK, "plain step: %s", mtgrad_mtl_step_error(sb));
    }
    CHECK(memcmp(mtgrad_model_params(a), mtgrad_model_params(b), (size_t)P * sizeof(float)) == 0,
          "%s with k = 1 == %s, bit for bit", mtgrad_optim_kind_name(per_task),
          mtgrad_optim_kind_name(plain));
    mtgrad_mtl_step_free(sa), mtgrad_mtl_step_free(sb);
    mtgrad_model_free(a), mtgrad_model_free(b);
}

static void test_manual(void)
{
    const int64_t k = 3;
    const double w[3] = {0.5, 2, 1};
    mtgrad_model *a = tiny(k, 6), *b = tiny(k, 6);
    int64_t P = mtgrad_model_num_params(a), d = mtgrad_model_num_shared(a);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_ADATASK_ADAM, 0.01);
    mtgrad_mtl_step *s = step_ex(a, "ls", "weights=0.5:2:1", &oc, NULL, NULL, 0);
    mtgrad_optimizer *o = NULL;
    CHECK(mtgrad_optimizer_new_tasks(&o, &oc, P, k, d, NULL, 0) == MTGRAD_OK, "optimizer");
    float *G = calloc((size_t)(k * d), sizeof(float)), *grad = calloc((size_t)P, sizeof(float));
    double L[MAXK];
    for (int t = 0; t < 3; t++) {
        mtgrad_pass_counts c;
        CHECK(run_counted(s, a, &c) == MTGRAD_OK, "adatask step: %s", mtgrad_mtl_step_error(s));
        CHECK(c.forwards == 1 && c.trunk_backwards == k, "adatask: 1 forward, k backwards");
        rows_by_hand(b, k, G, grad, L);
        for (int64_t i = 0; i < k; i++) {
            for (int64_t j = 0; j < d; j++) G[i * d + j] = (float)(w[i] * (double)G[i * d + j]);
            int64_t off = mtgrad_model_head_offset(b, i), n = mtgrad_model_head_size(b, i);
            for (int64_t j = 0; j < n; j++) grad[off + j] = (float)(w[i] * (double)grad[off + j]);
        }
        CHECK(mtgrad_optimizer_step_tasks(o, mtgrad_model_params(b), grad, G, d) == MTGRAD_OK,
              "step_tasks");
    }
    CHECK(memcmp(mtgrad_model_params(a), mtgrad_model_params(b), (size_t)P * sizeof(float)) == 0,
          "adatask step == rows and heads scaled by w_i, then step_tasks (bit for bit)");
    CHECK(memcmp(mtgrad_mtl_step_jacobian(s), G, (size_t)(k * d) * sizeof(float)) == 0,
          "G holds the scaled rows the optimizer took");
    free(G), free(grad);
    mtgrad_optimizer_free(o);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a), mtgrad_model_free(b);
}

static void test_gram_weights(void)
{
    mtgrad_model *a = tiny(2, 8), *b = tiny(2, 8);
    int64_t P = mtgrad_model_num_params(a), d = mtgrad_model_num_shared(a);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_ADATASK_RMSPROP, 0.01);
    mtgrad_mtl_step *s = step_ex(a, "mgda", NULL, &oc, NULL, NULL, 0);
    float *G = calloc((size_t)(2 * d), sizeof(float)), *heads = calloc((size_t)P, sizeof(float));
    double L[2];
    rows_by_hand(b, 2, G, heads, L);
    double g11 = 0, g22 = 0, g12 = 0;
    for (int64_t j = 0; j < d; j++) {
        g11 += (double)G[j] * G[j], g22 += (double)G[d + j] * G[d + j];
        g12 += (double)G[j] * G[d + j];
    }
    double x = (g22 - g12) / (g11 + g22 - 2 * g12);
    x = x < 0 ? 0 : x > 1 ? 1 : x;
    CHECK(mtgrad_mtl_step_run(s, X[0], Y[0], NB, NULL, NULL) == MTGRAD_OK, "mgda adatask: %s",
          mtgrad_mtl_step_error(s));
    const double *w = mtgrad_mtl_step_weights(s);
    CHECK_CLOSE(w[0], x, 1e-9, 1e-12);
    CHECK_CLOSE(w[1], 1 - x, 1e-9, 1e-12);
    free(G), free(heads);
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(a), mtgrad_model_free(b);
}

static void test_refused(void)
{
    mtgrad_model *m = tiny(3, 1);
    mtgrad_optim_config oc = optim_of(MTGRAD_OPTIM_ADATASK_ADAM, 0.01);
    const char *methods[3][2] = {{"graddrop", NULL}, {"marigold", NULL},
                                 {"sdmgrad", "sampling=double"}};
    for (int q = 0; q < 3; q++) {
        mtgrad_mtl_step *s = NULL;
        char err[256] = "";
        mtgrad_status st = mtgrad_mtl_step_new(&s, m, methods[q][0], methods[q][1], &oc, err,
                                               sizeof err);
        CHECK(st == MTGRAD_E_UNSUPPORTED && !s && strstr(err, "AdaTask"),
              "adatask with %s: %d (%s)", methods[q][0], (int)st, err);
    }
    /* famo keeps its re-evaluation after the step */
    mtgrad_mtl_step *s = step_ex(m, "famo", NULL, &oc, NULL, NULL, 0);
    mtgrad_pass_counts c;
    CHECK(run_counted(s, m, &c) == MTGRAD_OK, "famo adatask: %s", mtgrad_mtl_step_error(s));
    CHECK(c.forwards == 2 && c.trunk_backwards == 3, "famo adatask: 2 forwards, k backwards");
    mtgrad_mtl_step_free(s);
    mtgrad_model_free(m);
}

int main(void)
{
    make_data();
    test_k1(MTGRAD_OPTIM_ADATASK_ADAM, MTGRAD_OPTIM_ADAM);
    test_k1(MTGRAD_OPTIM_ADATASK_RMSPROP, MTGRAD_OPTIM_RMSPROP);
    test_k1(MTGRAD_OPTIM_ADATASK_ADAGRAD, MTGRAD_OPTIM_ADAGRAD);
    test_manual();
    test_gram_weights();
    test_refused();
    mtgrad_optim_config at = optim_of(MTGRAD_OPTIM_ADATASK_ADAM, 0.01);
    check_resume("adatask ls", 3, "ls", "weights=0.5:2:1", &at, NULL, 6);
    check_resume("adatask nash", 3, "nash_mtl", NULL, &at, NULL, 4);
    return harness_report();
}
