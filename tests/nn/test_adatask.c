/* test_adatask.c — the AdaTask optimizers (mtgrad_optimizer_new_tasks / _step_tasks, optim.c):
 * - against PyTorch: tests/nn/data/adatask_torch.txt (ref/torch_adatask_ref.py: the official
 *   Adam_with_AdaTask step re-implemented with torch's tensor operations, and its RMSprop and
 *   Adagrad analogues; task-specific parameters by torch.optim with weight decay), k = 3, bit for
 *   bit, vector and plain loops, G with a row stride larger than d, grad's shared slice unread;
 * - against a double-precision implementation of methods.md 8 written here
 *   (dp = -lr sum_i mhat_i / (sqrt(vhat_i) + eps) and the analogues), with a learning-rate
 *   schedule;
 * - k = 1 equals the plain optimizer bit for bit (weight decay 0);
 * - separate moments: a task with 100x larger gradients does not shrink the others' steps
 *   (plain Adam on the summed gradient does);
 * - save/load round trip continues bit for bit; kind, n, k, d mismatches and corrupt states
 *   refused;
 * - NaN/Inf in G, in grad's task-specific part or in params: E_NONFINITE and nothing changed;
 * - 1 and 2 threads, vector and plain loops: the same bits;
 * - argument errors. */
#include "harness.h"
#include "torch_data.h"
#include "mtgrad_nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void mtgradi_optim_use_ref(int on);

static const mtgrad_optim_kind KINDS[3] = {MTGRAD_OPTIM_ADATASK_ADAM, MTGRAD_OPTIM_ADATASK_RMSPROP,
                                           MTGRAD_OPTIM_ADATASK_ADAGRAD};
static const mtgrad_optim_kind PLAIN[3] = {MTGRAD_OPTIM_ADAM, MTGRAD_OPTIM_RMSPROP, MTGRAD_OPTIM_ADAGRAD};

static mtgrad_optimizer *make(mtgrad_optim_config c, int64_t n, int64_t k, int64_t d)
{
    mtgrad_optimizer *o = NULL;
    char err[256] = "";
    mtgrad_status s = mtgrad_optimizer_new_tasks(&o, &c, n, k, d, err, sizeof err);
    CHECK(s == MTGRAD_OK && o, "new_tasks(%s, n %lld, k %lld, d %lld): %s", mtgrad_optim_kind_name(c.kind),
          (long long)n, (long long)k, (long long)d, err);
    return o;
}

/* Deterministic gradients: task i's row at step t, element j; task scale s_i. */
static float gval(int t, int64_t i, int64_t j, double scale)
{
    return (float)(scale * sin(0.37 * (double)j + 1.1 * (double)i + 0.6 * t + 0.2) * (1.0 + (double)(j % 5)));
}

/* ------------------------------------------------------------ PyTorch's numbers */

/* One case: steps through the records, G copied into rows of stride ldg, grad's shared slice
 * filled with NaN (it must not be read). */
static int run_torch_case(FILE *f, const char *name, mtgrad_optim_config c, int64_t n, int64_t d,
                          int64_t k, int steps, int64_t ldg, int use_ref)
{
    float *p = malloc(sizeof(float) * (size_t)(3 * n + k * d + k * ldg));
    float *grad = p + n, *want = grad + n, *G = want + n, *Gs = G + k * d;
    mtgrad_optimizer *o = make(c, n, k, d);
    int ok = o && read_floats(f, "p0", p, n);
    CHECK(ok, "case %s: setup", name);
    for (int t = 0; ok && t < steps; t++) {
        for (int64_t j = 0; j < d; j++) grad[j] = NAN;
        ok = read_floats(f, "G", G, k * d) && read_floats(f, "g", grad + d, n - d) &&
             read_floats(f, "p", want, n);
        CHECK(ok, "case %s: short record at step %d", name, t);
        if (!ok) break;
        for (int64_t i = 0; i < k * ldg; i++) Gs[i] = NAN; /* the padding must not be read */
        for (int64_t i = 0; i < k; i++) memcpy(Gs + i * ldg, G + i * d, sizeof(float) * (size_t)d);
        mtgrad_status s = mtgrad_optimizer_step_tasks(o, p, grad, Gs, ldg);
        CHECK(s == MTGRAD_OK, "case %s step %d: %d", name, t, (int)s);
        double got_d[64], want_d[64];
        for (int64_t i = 0; i < n && i < 64; i++) got_d[i] = p[i], want_d[i] = want[i];
        CHECK_ARRAY_CLOSE(got_d, want_d, n < 64 ? n : 64, 2e-6, 1e-9);
        CHECK(memcmp(p, want, sizeof(float) * (size_t)n) == 0,
              "case %s step %d (%s loops, ldg %lld): not bit-identical to torch", name, t,
              use_ref ? "plain" : "vector", (long long)ldg);
        memcpy(p, want, sizeof(float) * (size_t)n); /* no compounding */
    }
    mtgrad_optimizer_free(o);
    free(p);
    return ok;
}

static void test_against_torch(int use_ref, int pad)
{
    mtgradi_optim_use_ref(use_ref);
    FILE *f = open_data("adatask_torch.txt");
    CHECK(f != NULL, "tests/nn/data/adatask_torch.txt missing (run from the repository root, or "
                     "regenerate with /usr/bin/python3 ref/torch_adatask_ref.py)");
    if (!f) return;
    int ch, cases = 0;
    while ((ch = fgetc(f)) != EOF) {
        if (ch == '#') {
            while ((ch = fgetc(f)) != EOF && ch != '\n') {}
            continue;
        }
        if (ch == '\n' || ch == ' ') continue;
        ungetc(ch, f);
        char tag[16], name[64];
        int kind, n, d, k, steps;
        double lr, wd, b1, b2, eps;
        if (fscanf(f, "%15s %63s %d %lf %lf %lf %lf %lf %d %d %d %d", tag, name, &kind, &lr, &wd, &b1, &b2,
                   &eps, &n, &d, &k, &steps) != 12 ||
            strcmp(tag, "case") != 0 || n < 1 || n > 64 || d < 0 || d > n || k < 1 || k > 8 || steps < 1 ||
            kind < MTGRAD_OPTIM_ADATASK_ADAM || kind > MTGRAD_OPTIM_ADATASK_ADAGRAD) {
            CHECK(0, "adatask_torch.txt: bad case line");
            break;
        }
        mtgrad_optim_config c = mtgrad_optim_config_default((mtgrad_optim_kind)kind);
        c.lr = lr, c.weight_decay = wd, c.beta1 = b1, c.beta2 = b2, c.eps = eps;
        if (!run_torch_case(f, name, c, n, d, k, steps, d + pad, use_ref)) break;
        cases++;
    }
    fclose(f);
    CHECK(cases == 6, "%d torch cases read", cases);
    mtgradi_optim_use_ref(0);
}

/* ------------------------------------------------------------ double-precision reference */

typedef struct dref {
    double p[40], m[8][40], v[8][40], hm[40], hv[40];
    int t;
} dref;

/* methods.md 8: the shared parameters move by -lr sum_i mhat_i/(sqrt(vhat_i) + eps) (Adam), or
 * -lr sum_i g_i/(sqrt(v_i) + eps) with v_i the task's RMSprop average or Adagrad sum; no weight
 * decay there. The others: the plain optimizer with L2 weight decay. In double, the order of the
 * per-task steps does not matter (no step reads p). */
static void dref_step(dref *r, mtgrad_optim_kind kind, const mtgrad_optim_config *c, double lr,
                      int64_t n, int64_t k, int64_t d, const float *G, const float *g)
{
    r->t++;
    const double bc1 = 1 - pow(c->beta1, r->t), bc2 = 1 - pow(c->beta2, r->t);
    for (int64_t j = 0; j < n; j++) {
        const int shared = j < d;
        double dp = 0;
        for (int64_t i = 0; i < (shared ? k : 1); i++) {
            double gi = shared ? G[i * d + j] : g[j] + c->weight_decay * r->p[j];
            double *m = shared ? &r->m[i][j] : &r->hm[j], *v = shared ? &r->v[i][j] : &r->hv[j];
            if (kind == MTGRAD_OPTIM_ADATASK_ADAM) {
                *m = c->beta1 * *m + (1 - c->beta1) * gi;
                *v = c->beta2 * *v + (1 - c->beta2) * gi * gi;
                dp -= lr * (*m / bc1) / (sqrt(*v / bc2) + c->eps);
            } else {
                *v = kind == MTGRAD_OPTIM_ADATASK_RMSPROP ? c->beta2 * *v + (1 - c->beta2) * gi * gi : *v + gi * gi;
                dp -= lr * gi / (sqrt(*v) + c->eps);
            }
        }
        r->p[j] += dp;
    }
}

static void test_against_double(void)
{
    enum { NN = 29, D = 17, K = 4, STEPS = 6 };
    const double scale[K] = {1.0, 100.0, 0.01, 3.0};
    for (int f = 0; f < 3; f++) {
        mtgrad_optim_config c = mtgrad_optim_config_default(KINDS[f]);
        c.lr = 0.01;
        c.weight_decay = 0.03;
        c.step_size = 2; /* StepLR: lr halves every 2 epochs; one epoch per step here */
        c.gamma = 0.5;
        mtgrad_optimizer *o = make(c, NN, K, D);
        if (!o) continue;
        float p[NN], p0[NN], grad[NN], G[K * D];
        dref *r = calloc(1, sizeof *r);
        for (int j = 0; j < NN; j++) p[j] = p0[j] = (float)(0.5 - 0.07 * j), r->p[j] = p[j];
        for (int t = 0; t < STEPS; t++) {
            mtgrad_optimizer_set_epoch(o, t);
            double lr = c.lr * pow(0.5, t / 2);
            for (int i = 0; i < K; i++)
                for (int j = 0; j < D; j++) G[i * D + j] = gval(t, i, j, scale[i]);
            for (int j = 0; j < NN; j++) grad[j] = j < D ? NAN : gval(t, 7, j, 2.0);
            CHECK(mtgrad_optimizer_step_tasks(o, p, grad, G, D) == MTGRAD_OK, "%s step %d",
                  mtgrad_optim_kind_name(KINDS[f]), t);
            dref_step(r, KINDS[f], &c, lr, NN, K, D, G, grad);
            double got[NN], want[NN];
            for (int j = 0; j < NN; j++) got[j] = (double)p[j] - p0[j], want[j] = r->p[j] - p0[j];
            /* float32 state and per-task float roundings: a few float ulps of |p| per step */
            CHECK_ARRAY_CLOSE(got, want, NN, 1e-4, 3e-6);
        }
        CHECK(mtgrad_optimizer_steps(o) == STEPS, "steps");
        free(r);
        mtgrad_optimizer_free(o);
    }
}

/* ------------------------------------------------------------ k = 1 is the plain optimizer */

static void test_k1_is_plain(void)
{
    enum { NN = 45, STEPS = 7 };
    const int64_t ds[3] = {NN, 19, 0};
    for (int f = 0; f < 3; f++)
        for (int di = 0; di < 3; di++) {
            const int64_t d = ds[di];
            mtgrad_optim_config c = mtgrad_optim_config_default(KINDS[f]), pc = mtgrad_optim_config_default(PLAIN[f]);
            c.lr = pc.lr = 0.02;
            mtgrad_optimizer *a = make(c, NN, 1, d), *b = NULL;
            CHECK(mtgrad_optimizer_new(&b, &pc, NN, NULL, 0) == MTGRAD_OK, "plain new");
            float pa[NN], pb[NN], g[NN];
            for (int j = 0; j < NN; j++) pa[j] = pb[j] = (float)cos(0.3 * j);
            for (int t = 0; a && b && t < STEPS; t++) {
                for (int j = 0; j < NN; j++) g[j] = gval(t, 0, j, j % 3 ? 1.0 : 1e-3);
                CHECK(mtgrad_optimizer_step_tasks(a, pa, g, g, d) == MTGRAD_OK, "adatask step");
                CHECK(mtgrad_optimizer_step(b, pb, g) == MTGRAD_OK, "plain step");
            }
            CHECK(memcmp(pa, pb, sizeof pa) == 0, "%s with k = 1, d = %lld differs from %s",
                  mtgrad_optim_kind_name(KINDS[f]), (long long)d, mtgrad_optim_kind_name(PLAIN[f]));
            mtgrad_optimizer_free(a);
            mtgrad_optimizer_free(b);
        }
}

/* ------------------------------------------------------------ separate moments */

/* Task 0's gradient a (size ~1) and task 1's 100 b with b of the opposite sign on every element,
 * constant over the steps. Adam's step on a constant gradient is lr per step whatever its size,
 * so with per-task moments task 0 still moves each element by ~lr per step (its steps plus task
 * 1's are AdaTask's, up to float rounding), while plain Adam on a + 100 b barely notices a. */
static void adam_displacement(mtgrad_optim_kind kind, int64_t k, const float *rows, float *disp,
                              int64_t d, int steps)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(kind);
    c.lr = 1e-3;
    mtgrad_optimizer *o = kind == MTGRAD_OPTIM_ADAM ? NULL : make(c, d, k, d);
    if (kind == MTGRAD_OPTIM_ADAM) CHECK(mtgrad_optimizer_new(&o, &c, d, NULL, 0) == MTGRAD_OK, "new");
    float *p = calloc((size_t)d, sizeof *p);
    for (int t = 0; o && t < steps; t++)
        CHECK((kind == MTGRAD_OPTIM_ADAM ? mtgrad_optimizer_step(o, p, rows)
                                         : mtgrad_optimizer_step_tasks(o, p, NULL, rows, d)) == MTGRAD_OK,
              "step");
    memcpy(disp, p, sizeof(float) * (size_t)d);
    free(p);
    mtgrad_optimizer_free(o);
}

static void test_separate_moments(void)
{
    enum { D = 24, T = 10 };
    float both[2 * D], a[D], big[D], sum[D];
    float d_at[D], d_a[D], d_big[D], d_sum[D], d_plain_big[D];
    for (int j = 0; j < D; j++) {
        a[j] = (float)(0.5 + 0.05 * j);
        big[j] = (float)(-100.0 * (0.3 + 0.04 * j));
        both[j] = a[j], both[D + j] = big[j];
        sum[j] = a[j] + big[j];
    }
    adam_displacement(MTGRAD_OPTIM_ADATASK_ADAM, 2, both, d_at, D, T);
    adam_displacement(MTGRAD_OPTIM_ADATASK_ADAM, 1, a, d_a, D, T);
    adam_displacement(MTGRAD_OPTIM_ADATASK_ADAM, 1, big, d_big, D, T);
    adam_displacement(MTGRAD_OPTIM_ADAM, 1, sum, d_sum, D, T);
    adam_displacement(MTGRAD_OPTIM_ADAM, 1, big, d_plain_big, D, T);
    double worst_task0 = 1e300, worst_add = 0, plain_task0 = 0;
    for (int j = 0; j < D; j++) {
        /* task 0's share of AdaTask's step, and of plain Adam's */
        double at0 = (double)d_at[j] - d_big[j], pl0 = (double)d_sum[j] - d_plain_big[j];
        worst_task0 = fmin(worst_task0, -at0); /* a > 0: moves down */
        worst_add = fmax(worst_add, fabs((double)d_at[j] - ((double)d_a[j] + d_big[j])));
        plain_task0 = fmax(plain_task0, fabs(pl0));
    }
    /* T steps of ~lr each: 1e-2 */
    CHECK(worst_task0 > 0.99 * T * 1e-3, "AdaTask: task 0 moved only %g (want ~%g)", worst_task0, T * 1e-3);
    CHECK(worst_add < 1e-6, "AdaTask's step is not the sum of the tasks' own steps (%g)", worst_add);
    CHECK(plain_task0 < 0.05 * T * 1e-3, "plain Adam: task 0 moved %g (expected it swamped)", plain_task0);
}

/* ------------------------------------------------------------ save / load */

static void test_save_load(void)
{
    enum { NN = 23, K = 3, D = 13 };
    for (int f = 0; f < 3; f++) {
        mtgrad_optim_config c = mtgrad_optim_config_default(KINDS[f]);
        c.weight_decay = 0.01;
        c.step_size = 2;
        mtgrad_optimizer *a = make(c, NN, K, D), *b = make(c, NN, K, D);
        if (!a || !b) continue;
        float pa[NN], pb[NN], g[NN], G[K * D];
        for (int j = 0; j < NN; j++) pa[j] = (float)(0.1 * j - 1);
        mtgrad_optimizer_set_epoch(a, 3);
        for (int t = 0; t < 8; t++) {
            for (int i = 0; i < K; i++)
                for (int j = 0; j < D; j++) G[i * D + j] = gval(t, i, j, i == 1 ? 50.0 : 1.0);
            for (int j = 0; j < NN; j++) g[j] = gval(t, 5, j, 0.7);
            if (t == 3) {
                size_t len = 0;
                CHECK(mtgrad_optimizer_save(a, NULL, &len) == MTGRAD_OK, "size");
                /* header 64 + k, d 16 + arrays of k*d + n - d floats + crc 8 */
                size_t arrays = f == 0 ? 2 : 1;
                CHECK(len == 64 + 16 + arrays * 4 * (K * D + NN - D) + 8, "state size %zu", len);
                unsigned char *buf = malloc(len);
                CHECK(mtgrad_optimizer_save(a, buf, &len) == MTGRAD_OK, "save");
                CHECK(mtgrad_optimizer_load(b, buf, len) == MTGRAD_OK, "load");
                CHECK(mtgrad_optimizer_steps(b) == 3 && mtgrad_optimizer_lr(b) == mtgrad_optimizer_lr(a),
                      "steps/lr after load");
                memcpy(pb, pa, sizeof pa);
                /* every corrupted byte refused, and nothing changed by a refused load */
                mtgrad_optimizer *z = make(c, NN, K, D);
                int refused = 0;
                for (size_t i = 0; z && i < len; i++) {
                    buf[i] ^= 0x24;
                    refused += mtgrad_optimizer_load(z, buf, len) == MTGRAD_E_STATE;
                    buf[i] ^= 0x24;
                }
                CHECK(refused == (int)len, "%d of %zu corruptions refused", refused, len);
                CHECK(mtgrad_optimizer_steps(z) == 0, "refused loads changed z");
                mtgrad_optimizer_free(z);
                /* another kind, n, k or d */
                mtgrad_optim_config other = mtgrad_optim_config_default(KINDS[(f + 1) % 3]);
                mtgrad_optim_config plain = mtgrad_optim_config_default(PLAIN[f]);
                mtgrad_optimizer *w[5] = {make(other, NN, K, D), make(c, NN + 1, K, D), make(c, NN, K + 1, D),
                                          make(c, NN, K, D - 1), NULL};
                CHECK(mtgrad_optimizer_new(&w[4], &plain, NN, NULL, 0) == MTGRAD_OK, "plain");
                for (int i = 0; i < 5; i++) {
                    CHECK(w[i] && mtgrad_optimizer_load(w[i], buf, len) == MTGRAD_E_STATE,
                          "%s: mismatch %d accepted", mtgrad_optim_kind_name(KINDS[f]), i);
                    mtgrad_optimizer_free(w[i]);
                }
                /* and a plain state into AdaTask */
                mtgrad_optimizer *pl = NULL;
                CHECK(mtgrad_optimizer_new(&pl, &plain, NN, NULL, 0) == MTGRAD_OK, "plain");
                size_t plen = 0;
                mtgrad_optimizer_save(pl, NULL, &plen);
                unsigned char *pbuf = malloc(plen);
                CHECK(mtgrad_optimizer_save(pl, pbuf, &plen) == MTGRAD_OK, "plain save");
                CHECK(mtgrad_optimizer_load(a, pbuf, plen) == MTGRAD_E_STATE, "plain state into adatask");
                free(pbuf);
                mtgrad_optimizer_free(pl);
                free(buf);
            }
            CHECK(mtgrad_optimizer_step_tasks(a, pa, g, G, D) == MTGRAD_OK, "a step");
            if (t >= 3) CHECK(mtgrad_optimizer_step_tasks(b, pb, g, G, D) == MTGRAD_OK, "b step");
        }
        CHECK(memcmp(pa, pb, sizeof pa) == 0, "%s: continuation after load differs",
              mtgrad_optim_kind_name(KINDS[f]));
        mtgrad_optimizer_free(a);
        mtgrad_optimizer_free(b);
    }
}

/* ------------------------------------------------------------ non-finite input, arguments */

static void test_nonfinite_and_args(void)
{
    enum { NN = 11, K = 3, D = 6, LDG = 8 };
    for (int f = 0; f < 3; f++) {
        mtgrad_optim_config c = mtgrad_optim_config_default(KINDS[f]);
        mtgrad_optimizer *a = make(c, NN, K, D), *b = make(c, NN, K, D);
        if (!a || !b) continue;
        float pa[NN], pb[NN], g[NN], G[K * LDG], before[NN];
        for (int j = 0; j < NN; j++) pa[j] = pb[j] = (float)j;
        for (int j = 0; j < K * LDG; j++) G[j] = gval(0, j / LDG, j % LDG, 1.0);
        for (int j = 0; j < NN; j++) g[j] = gval(0, 4, j, 1.0);
        CHECK(mtgrad_optimizer_step_tasks(a, pa, g, G, LDG) == MTGRAD_OK, "first step");
        CHECK(mtgrad_optimizer_step_tasks(b, pb, g, G, LDG) == MTGRAD_OK, "first step");
        memcpy(before, pa, sizeof pa);
        const float poison[3] = {NAN, INFINITY, -INFINITY};
        /* each row of G (the last row too), and grad's task-specific part */
        const int where[5] = {0 * LDG + 2, 1 * LDG + 5, 2 * LDG + 0, -(D + 1), -(NN - 1)};
        for (int w = 0; w < 5; w++) {
            float *at = where[w] >= 0 ? &G[where[w]] : &g[-where[w]];
            float save = *at;
            *at = poison[w % 3];
            CHECK(mtgrad_optimizer_step_tasks(a, pa, g, G, LDG) == MTGRAD_E_NONFINITE, "poison %d", w);
            CHECK(memcmp(pa, before, sizeof pa) == 0, "params changed by a refused step");
            *at = save;
        }
        pa[NN - 1] = NAN;
        CHECK(mtgrad_optimizer_step_tasks(a, pa, g, G, LDG) == MTGRAD_E_NONFINITE, "NaN param");
        pa[NN - 1] = before[NN - 1];
        CHECK(mtgrad_optimizer_steps(a) == 1, "refused steps counted");
        /* what is not read may be anything: G's padding and grad's shared part */
        G[D] = NAN, G[LDG + D + 1] = INFINITY, g[0] = NAN, g[D - 1] = -INFINITY;
        CHECK(mtgrad_optimizer_step_tasks(a, pa, g, G, LDG) == MTGRAD_OK, "unread NaN refused");
        CHECK(mtgrad_optimizer_step_tasks(b, pb, g, G, LDG) == MTGRAD_OK, "twin");
        CHECK(memcmp(pa, pb, sizeof pa) == 0, "refused steps changed the moments");

        CHECK(mtgrad_optimizer_step_tasks(NULL, pa, g, G, LDG) == MTGRAD_E_INVAL, "NULL o");
        CHECK(mtgrad_optimizer_step_tasks(a, NULL, g, G, LDG) == MTGRAD_E_INVAL, "NULL params");
        CHECK(mtgrad_optimizer_step_tasks(a, pa, NULL, G, LDG) == MTGRAD_E_INVAL, "NULL grad");
        CHECK(mtgrad_optimizer_step_tasks(a, pa, g, NULL, LDG) == MTGRAD_E_INVAL, "NULL G");
        CHECK(mtgrad_optimizer_step_tasks(a, pa, g, G, D - 1) == MTGRAD_E_INVAL, "ldg < d");
        CHECK(mtgrad_optimizer_step_tasks(a, pa, pa, G, LDG) == MTGRAD_E_INVAL, "grad aliasing params");
        CHECK(mtgrad_optimizer_step(a, pa, g) == MTGRAD_E_UNSUPPORTED, "plain step");
        CHECK(mtgrad_optimizer_steps(a) == 2 && memcmp(pa, pb, sizeof pa) == 0, "refused calls changed a");
        mtgrad_optimizer_free(a);
        mtgrad_optimizer_free(b);

        /* d = 0: G is not read (NULL is fine); d = n: grad is not read */
        for (int j = 0; j < NN; j++) g[j] = gval(1, 4, j, 1.0);
        a = make(c, NN, K, 0);
        CHECK(a && mtgrad_optimizer_step_tasks(a, pa, g, NULL, 0) == MTGRAD_OK, "d = 0, G NULL");
        mtgrad_optimizer_free(a);
        a = make(c, D, K, D);
        CHECK(a && mtgrad_optimizer_step_tasks(a, pa, NULL, G, LDG) == MTGRAD_OK, "d = n, grad NULL");
        mtgrad_optimizer_free(a);

        /* bad k and d */
        mtgrad_optimizer *o = NULL;
        CHECK(mtgrad_optimizer_new_tasks(&o, &c, NN, 0, D, NULL, 0) == MTGRAD_E_SHAPE, "k 0");
        CHECK(mtgrad_optimizer_new_tasks(&o, &c, NN, MTGRAD_NN_MAX_TASKS + 1, D, NULL, 0) == MTGRAD_E_SHAPE, "k big");
        CHECK(mtgrad_optimizer_new_tasks(&o, &c, NN, K, -1, NULL, 0) == MTGRAD_E_SHAPE, "d < 0");
        CHECK(mtgrad_optimizer_new_tasks(&o, &c, NN, K, NN + 1, NULL, 0) == MTGRAD_E_SHAPE, "d > n");
        CHECK(o == NULL, "out set on failure");
        char err[256] = "";
        CHECK(mtgrad_optimizer_new(&o, &c, NN, err, sizeof err) == MTGRAD_E_INVAL &&
                  strstr(err, "mtgrad_optimizer_new_tasks") != NULL,
              "new with an AdaTask kind: %s", err);
    }
}

/* ------------------------------------------------------------ threads and loops */

static void test_paths_agree(void)
{
    enum { BIG = 100003, K = 2, RUNS = 3 };
    const int64_t n = BIG + 37;
    float *G = malloc(sizeof(float) * (size_t)(K * BIG)), *g = malloc(sizeof(float) * (size_t)n);
    float *p = malloc(sizeof(float) * (size_t)n * RUNS);
    for (int64_t j = 0; j < K * BIG; j++) G[j] = (float)cos(0.0137 * (double)j) * (float)(1 + j % 7);
    for (int64_t j = 0; j < n; j++) g[j] = (float)sin(0.01 * (double)j);
    for (int f = 0; f < 3; f++) {
        const int threads[RUNS] = {1, 2, 1}, use_ref[RUNS] = {0, 0, 1};
        for (int r = 0; r < RUNS; r++) {
            mtgrad_nn_set_threads(threads[r]);
            mtgradi_optim_use_ref(use_ref[r]);
            mtgrad_optim_config c = mtgrad_optim_config_default(KINDS[f]);
            c.weight_decay = 0.01;
            mtgrad_optimizer *o = make(c, n, K, BIG);
            float *pr = p + (size_t)n * (size_t)r;
            for (int64_t j = 0; j < n; j++) pr[j] = (float)sin(0.001 * (double)j);
            for (int t = 0; t < 2 && o; t++)
                CHECK(mtgrad_optimizer_step_tasks(o, pr, g, G, BIG) == MTGRAD_OK, "step");
            mtgrad_optimizer_free(o);
        }
        mtgrad_nn_set_threads(1);
        mtgradi_optim_use_ref(0);
        CHECK(memcmp(p, p + n, sizeof(float) * (size_t)n) == 0, "%s: 2 threads differ",
              mtgrad_optim_kind_name(KINDS[f]));
        CHECK(memcmp(p, p + 2 * n, sizeof(float) * (size_t)n) == 0, "%s: plain loops differ",
              mtgrad_optim_kind_name(KINDS[f]));
    }
    free(G), free(g), free(p);
}

int main(void)
{
    test_against_torch(0, 0);
    test_against_torch(1, 0);
    test_against_torch(0, 5);
    test_against_double();
    test_k1_is_plain();
    test_separate_moments();
    test_save_load();
    test_nonfinite_and_args();
    test_paths_agree();
    return harness_report();
}
