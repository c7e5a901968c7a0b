/* test_optim.c — the optimizers (src/nn/optim.c) against an independent double-precision
 * re-implementation of torch's formulas written here, against numbers PyTorch itself produced
 * (tests/nn/data/optim_torch.txt, written by ref/torch_optim_ref.py; SGD, Adam, AdamW, RMSprop,
 * Adagrad), kind names and new_tasks' checks, the learning-rate
 * schedules, save/load round trips (bit-identical continuation), corrupt states, non-finite
 * gradients and bad configurations. */
#include "harness.h"
#include "torch_data.h"
#include "mtgrad_nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Internal switch of optim.c: 1 forces the plain scalar loops (the reference of the vector ones). */
void mtgradi_optim_use_ref(int on);

#define N 7
#define STEPS 8

/* Gradients of very different sizes, with sign changes, and one coordinate that is always 0
 * (Adam then divides 0 by eps alone). */
static float grad_at(int step, int i)
{
    static const double scale[N] = {1.0, 1e-3, 10.0, 0.3, 0.0, 2.5, 0.05};
    return (float)(scale[i] * sin(1.3 * i + 0.7 * step + 0.4));
}

static void init_params(float *p)
{
    for (int i = 0; i < N; i++) p[i] = (float)(0.8 - 0.35 * i);
}

/* ------------------------------------------------------------ double-precision references */

typedef struct ref_state {
    double p[N], m[N], v[N];
    int t, has_buf;
} ref_state;

static void ref_init(ref_state *r, const float *p)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < N; i++) r->p[i] = p[i];
}

/* torch.optim.SGD: d = g + wd*p; buf = d on the first step, else mu*buf + d; p -= lr*buf. */
static void ref_sgd(ref_state *r, const mtgrad_optim_config *c, double lr, const float *g)
{
    for (int i = 0; i < N; i++) {
        double d = g[i] + c->weight_decay * r->p[i];
        if (c->momentum != 0.0) {
            r->m[i] = r->has_buf ? c->momentum * r->m[i] + d : d;
            d = r->m[i];
        }
        r->p[i] -= lr * d;
    }
    r->has_buf = 1;
    r->t++;
}

/* Adam (L2) and AdamW (decoupled): the textbook bias-corrected form, written independently of
 * the float32 operation order in optim.c. */
static void ref_adam(ref_state *r, const mtgrad_optim_config *c, double lr, const float *g)
{
    r->t++;
    double bc1 = 1.0 - pow(c->beta1, r->t), bc2 = 1.0 - pow(c->beta2, r->t);
    for (int i = 0; i < N; i++) {
        double gi = g[i];
        if (c->kind == MTGRAD_OPTIM_ADAMW) r->p[i] *= 1.0 - lr * c->weight_decay;
        else gi += c->weight_decay * r->p[i];
        r->m[i] = c->beta1 * r->m[i] + (1.0 - c->beta1) * gi;
        r->v[i] = c->beta2 * r->v[i] + (1.0 - c->beta2) * gi * gi;
        double mhat = r->m[i] / bc1, vhat = r->v[i] / bc2;
        r->p[i] -= lr * mhat / (sqrt(vhat) + c->eps);
    }
}

/* RMSprop (alpha = beta2): v = a v + (1-a) g^2; Adagrad: v += g^2; p -= lr g / (sqrt(v) + eps),
 * g with L2 weight decay. */
static void ref_rms(ref_state *r, const mtgrad_optim_config *c, double lr, const float *g)
{
    r->t++;
    for (int i = 0; i < N; i++) {
        double gi = g[i] + c->weight_decay * r->p[i];
        if (c->kind == MTGRAD_OPTIM_RMSPROP) r->v[i] = c->beta2 * r->v[i] + (1.0 - c->beta2) * gi * gi;
        else r->v[i] += gi * gi;
        r->p[i] -= lr * gi / (sqrt(r->v[i]) + c->eps);
    }
}

/* ------------------------------------------------------------ comparisons */

/* Runs STEPS steps of the optimizer and of the reference side by side; compares the parameters'
 * displacement from the start (the part the optimizer computes) at every step. */
static void run_against_ref(const char *what, mtgrad_optim_config c)
{
    mtgrad_optimizer *o = NULL;
    char err[256];
    mtgrad_status s = mtgrad_optimizer_new(&o, &c, N, err, sizeof err);
    CHECK(s == MTGRAD_OK, "%s: new failed: %s", what, err);
    if (s != MTGRAD_OK) return;
    float p[N], p0[N], g[N];
    init_params(p);
    memcpy(p0, p, sizeof p);
    ref_state r;
    ref_init(&r, p);
    double worst = 0.0;
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++) g[i] = grad_at(t, i);
        CHECK(mtgrad_optimizer_step(o, p, g) == MTGRAD_OK, "%s: step %d", what, t);
        if (c.kind == MTGRAD_OPTIM_SGD) ref_sgd(&r, &c, c.lr, g);
        else if (c.kind == MTGRAD_OPTIM_RMSPROP || c.kind == MTGRAD_OPTIM_ADAGRAD) ref_rms(&r, &c, c.lr, g);
        else ref_adam(&r, &c, c.lr, g);
        double got[N], want[N];
        for (int i = 0; i < N; i++) {
            got[i] = (double)p[i] - p0[i];
            want[i] = r.p[i] - p0[i];
            double e = fabs(got[i] - want[i]) / (fabs(want[i]) + 1e-6);
            if (e > worst) worst = e;
        }
        /* float32 state vs double: a few float ulps of |p| (~1e-7) per step. */
        CHECK_ARRAY_CLOSE(got, want, N, 1e-5, 2e-6);
    }
    CHECK(mtgrad_optimizer_steps(o) == STEPS, "%s: steps %lld", what, (long long)mtgrad_optimizer_steps(o));
    printf("ok %s: worst relative displacement error %.2e over %d steps\n", what, worst, STEPS);
    mtgrad_optimizer_free(o);
}

static void test_against_double_reference(void)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(MTGRAD_OPTIM_SGD);
    c.lr = 0.05;
    run_against_ref("sgd plain", c);
    c.momentum = 0.9;
    run_against_ref("sgd momentum", c);
    c.weight_decay = 0.01;
    run_against_ref("sgd momentum+wd", c);

    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    c.lr = 0.05;
    run_against_ref("adam", c);
    c.weight_decay = 0.01;
    run_against_ref("adam wd", c);
    c.beta1 = 0.5;
    c.beta2 = 0.9;
    c.eps = 1e-3;
    run_against_ref("adam betas/eps", c);

    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAMW);
    c.lr = 0.05;
    c.weight_decay = 0.1;
    run_against_ref("adamw", c);

    c = mtgrad_optim_config_default(MTGRAD_OPTIM_RMSPROP);
    run_against_ref("rmsprop", c);
    c.weight_decay = 0.05;
    c.beta2 = 0.8;
    c.eps = 1e-3;
    run_against_ref("rmsprop wd/alpha/eps", c);

    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAGRAD);
    c.lr = 0.05;
    run_against_ref("adagrad", c);
    c.weight_decay = 0.02;
    run_against_ref("adagrad wd", c);
}

/* ------------------------------------------------------------ PyTorch's own numbers */

/* tests/nn/data/optim_torch.txt: '#' comment lines, then records
 *   case <name> <kind> <lr> <momentum> <wd> <beta1> <beta2> <eps> <n> <steps>
 *   p0 <n floats>
 *   g <n floats>   p <n floats>     (steps times: the gradient given, the parameters after)
 * all floats printed with 9 significant digits (exact for float32). */
static void test_against_torch(int use_ref)
{
    mtgradi_optim_use_ref(use_ref);
    FILE *f = open_data("optim_torch.txt");
    CHECK(f != NULL, "tests/nn/data/optim_torch.txt missing (run from the repository root, or "
                     "regenerate with /usr/bin/python3 ref/torch_optim_ref.py)");
    if (!f) return;
    int c_ch, cases = 0;
    while ((c_ch = fgetc(f)) != EOF) {
        if (c_ch == '#') {
            while ((c_ch = fgetc(f)) != EOF && c_ch != '\n') {}
            continue;
        }
        if (c_ch == '\n' || c_ch == ' ') continue;
        ungetc(c_ch, f);
        char tag[16], name[64];
        int kind, n, steps;
        mtgrad_optim_config c;
        if (fscanf(f, "%15s %63s %d %lf %lf %lf %lf %lf %lf %d %d", tag, name, &kind, &c.lr, &c.momentum,
                   &c.weight_decay, &c.beta1, &c.beta2, &c.eps, &n, &steps) != 11 ||
            strcmp(tag, "case") != 0 || n < 1 || n > 1024 || steps < 1) {
            CHECK(0, "optim_torch.txt: bad case line");
            break;
        }
        mtgrad_optim_config d = mtgrad_optim_config_default((mtgrad_optim_kind)kind);
        c.kind = d.kind;
        c.step_size = 0;
        c.n_milestones = 0;
        c.gamma = d.gamma;
        float *p = malloc(sizeof(float) * (size_t)n * 3);
        float *g = p + n, *want = p + 2 * n;
        mtgrad_optimizer *o = NULL;
        int ok = p && read_floats(f, "p0", p, n) && mtgrad_optimizer_new(&o, &c, n, NULL, 0) == MTGRAD_OK;
        CHECK(ok, "case %s: setup", name);
        double worst_ulps = 0.0;
        for (int t = 0; ok && t < steps; t++) {
            ok = read_floats(f, "g", g, n) && read_floats(f, "p", want, n);
            CHECK(ok, "case %s: short record at step %d", name, t);
            if (!ok) break;
            CHECK(mtgrad_optimizer_step(o, p, g) == MTGRAD_OK, "case %s step %d", name, t);
            double got_d[1024], want_d[1024];
            for (int i = 0; i < n; i++) {
                got_d[i] = p[i];
                want_d[i] = want[i];
                double ulps = fabs((double)p[i] - want[i]) / (nextafterf(fabsf(want[i]), INFINITY) - fabsf(want[i]));
                if (ulps > worst_ulps) worst_ulps = ulps;
            }
            CHECK_ARRAY_CLOSE(got_d, want_d, n, 2e-6, 1e-9);
            /* optim.c repeats ATen's operations and its fused multiply-adds: the same bits. */
            CHECK(memcmp(p, want, sizeof(float) * (size_t)n) == 0, "case %s step %d (%s): not bit-identical to torch",
                  name, t, use_ref ? "plain loops" : "vector loops");
            /* Use torch's parameters from here on so differences do not compound. */
            memcpy(p, want, sizeof(float) * (size_t)n);
        }
        printf("ok torch %s (%s): %d steps, worst %.1f ulp\n", name, use_ref ? "plain" : "vector", steps,
               worst_ulps);
        mtgrad_optimizer_free(o);
        free(p);
        cases++;
    }
    fclose(f);
    CHECK(cases >= 5, "only %d torch cases read", cases);
    mtgradi_optim_use_ref(0);
}

/* ------------------------------------------------------------ schedules */

static void test_schedules(void)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    mtgrad_optimizer *o = NULL;
    /* constant */
    CHECK(mtgrad_optimizer_new(&o, &c, 3, NULL, 0) == MTGRAD_OK, "new");
    for (int e = 0; e < 5; e++) {
        mtgrad_optimizer_set_epoch(o, e);
        CHECK_CLOSE(mtgrad_optimizer_lr(o), 1e-3, 1e-15, 0);
    }
    mtgrad_optimizer_free(o);

    /* StepLR(step_size 3, gamma 0.5): 1e-3 * 0.5^floor(e/3) */
    c.step_size = 3;
    c.gamma = 0.5;
    CHECK(mtgrad_optimizer_new(&o, &c, 3, NULL, 0) == MTGRAD_OK, "new steplr");
    static const double steplr[10] = {1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4, 1.25e-4};
    CHECK_CLOSE(mtgrad_optimizer_lr(o), 1e-3, 1e-15, 0);
    for (int e = 0; e < 10; e++) {
        mtgrad_optimizer_set_epoch(o, e);
        CHECK_CLOSE(mtgrad_optimizer_lr(o), steplr[e], 1e-14, 0);
    }
    mtgrad_optimizer_set_epoch(o, 1); /* going back is allowed (resuming a run) */
    CHECK_CLOSE(mtgrad_optimizer_lr(o), 1e-3, 1e-15, 0);
    mtgrad_optimizer_free(o);

    /* MultiStepLR(milestones {2, 5, 5, 8}, gamma 0.1): a repeated milestone decays twice, like
     * torch's Counter; milestones win over step_size. */
    c.n_milestones = 4;
    c.milestones[0] = 2;
    c.milestones[1] = 5;
    c.milestones[2] = 5;
    c.milestones[3] = 8;
    c.gamma = 0.1;
    c.lr = 0.2;
    CHECK(mtgrad_optimizer_new(&o, &c, 3, NULL, 0) == MTGRAD_OK, "new multistep");
    static const double ms[10] = {0.2, 0.2, 0.02, 0.02, 0.02, 2e-4, 2e-4, 2e-4, 2e-5, 2e-5};
    for (int e = 0; e < 10; e++) {
        mtgrad_optimizer_set_epoch(o, e);
        CHECK_CLOSE(mtgrad_optimizer_lr(o), ms[e], 1e-13, 0);
    }
    mtgrad_optimizer_free(o);

    /* The scheduled lr is the one a step uses: SGD displacement = -lr*g exactly in double terms. */
    mtgrad_optim_config s = mtgrad_optim_config_default(MTGRAD_OPTIM_SGD);
    s.lr = 0.5;
    s.step_size = 2;
    s.gamma = 0.25;
    CHECK(mtgrad_optimizer_new(&o, &s, 1, NULL, 0) == MTGRAD_OK, "new sgd steplr");
    mtgrad_optimizer_set_epoch(o, 2);
    float p = 1.0f, g = 1.0f;
    CHECK(mtgrad_optimizer_step(o, &p, &g) == MTGRAD_OK, "step");
    CHECK_CLOSE(p, 1.0 - 0.125, 0, 0);
    mtgrad_optimizer_free(o);
}

/* ------------------------------------------------------------ save / load */

static mtgrad_optimizer *make_opt(mtgrad_optim_kind kind, int64_t n)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(kind);
    c.lr = 0.01;
    c.weight_decay = 0.01;
    if (kind == MTGRAD_OPTIM_SGD) c.momentum = 0.9;
    c.step_size = 2;
    mtgrad_optimizer *o = NULL;
    if (mtgrad_optimizer_new(&o, &c, n, NULL, 0) != MTGRAD_OK) return NULL;
    return o;
}

static void test_save_load(mtgrad_optim_kind kind, const char *what)
{
    mtgrad_optimizer *a = make_opt(kind, N), *b = make_opt(kind, N);
    CHECK(a && b, "%s: new", what);
    if (!a || !b) goto done;
    float pa[N], pb[N], g[N];
    init_params(pa);
    mtgrad_optimizer_set_epoch(a, 3);
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < N; i++) g[i] = grad_at(t, i);
        CHECK(mtgrad_optimizer_step(a, pa, g) == MTGRAD_OK, "%s: step", what);
    }
    size_t len = 0;
    CHECK(mtgrad_optimizer_save(a, NULL, &len) == MTGRAD_OK && len > 0, "%s: size query", what);
    unsigned char *buf = malloc(len + 1);
    size_t small = len - 1;
    CHECK(mtgrad_optimizer_save(a, buf, &small) == MTGRAD_E_IO && small == len, "%s: small buffer", what);
    size_t got = len + 1;
    CHECK(mtgrad_optimizer_save(a, buf, &got) == MTGRAD_OK && got == len, "%s: save", what);

    CHECK(mtgrad_optimizer_load(b, buf, len) == MTGRAD_OK, "%s: load", what);
    CHECK(mtgrad_optimizer_steps(b) == 3, "%s: steps after load %lld", what, (long long)mtgrad_optimizer_steps(b));
    CHECK(mtgrad_optimizer_lr(b) == mtgrad_optimizer_lr(a), "%s: lr after load (epoch restored)", what);
    memcpy(pb, pa, sizeof pa);
    for (int t = 3; t < 7; t++) {
        for (int i = 0; i < N; i++) g[i] = grad_at(t, i);
        CHECK(mtgrad_optimizer_step(a, pa, g) == MTGRAD_OK && mtgrad_optimizer_step(b, pb, g) == MTGRAD_OK,
              "%s: steps after load", what);
    }
    CHECK(memcmp(pa, pb, sizeof pa) == 0, "%s: continuation after load is not bit-identical", what);

    /* Every single corrupted byte is refused, and a refused load changes nothing. */
    mtgrad_optimizer *c = make_opt(kind, N);
    int refused = 0;
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x5a;
        refused += mtgrad_optimizer_load(c, buf, len) == MTGRAD_E_STATE;
        buf[i] ^= 0x5a;
    }
    CHECK(refused == (int)len, "%s: %d of %zu corrupted states refused", what, refused, len);
    CHECK(mtgrad_optimizer_steps(c) == 0, "%s: refused loads changed the step count", what);
    CHECK(mtgrad_optimizer_load(c, buf, len - 1) == MTGRAD_E_STATE, "%s: truncated", what);
    CHECK(mtgrad_optimizer_load(c, buf, 10) == MTGRAD_E_STATE, "%s: very short", what);
    CHECK(mtgrad_optimizer_load(c, NULL, len) == MTGRAD_E_INVAL, "%s: NULL buf", what);
    CHECK(mtgrad_optimizer_save(NULL, buf, &len) == MTGRAD_E_INVAL, "%s: NULL optimizer", what);
    mtgrad_optimizer_free(c);

    /* Another size or another kind: E_STATE. */
    c = make_opt(kind, N + 1);
    CHECK(mtgrad_optimizer_load(c, buf, len) == MTGRAD_E_STATE, "%s: other n", what);
    mtgrad_optimizer_free(c);
    c = make_opt(kind == MTGRAD_OPTIM_ADAM ? MTGRAD_OPTIM_ADAMW : MTGRAD_OPTIM_ADAM, N);
    CHECK(mtgrad_optimizer_load(c, buf, len) == MTGRAD_E_STATE, "%s: other kind", what);
    mtgrad_optimizer_free(c);
    free(buf);
done:
    mtgrad_optimizer_free(a);
    mtgrad_optimizer_free(b);
}

/* ------------------------------------------------------------ non-finite input */

static void test_nonfinite(mtgrad_optim_kind kind, const char *what)
{
    mtgrad_optimizer *a = make_opt(kind, N), *b = make_opt(kind, N);
    CHECK(a && b, "%s: new", what);
    if (!a || !b) goto done;
    float pa[N], pb[N], g[N];
    init_params(pa);
    init_params(pb);
    for (int i = 0; i < N; i++) g[i] = grad_at(0, i);
    CHECK(mtgrad_optimizer_step(a, pa, g) == MTGRAD_OK && mtgrad_optimizer_step(b, pb, g) == MTGRAD_OK, "%s", what);

    float bad[N], before[N];
    memcpy(before, pa, sizeof pa);
    const float poison[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        memcpy(bad, g, sizeof g);
        bad[(2 * k + 1) % N] = poison[k];
        CHECK(mtgrad_optimizer_step(a, pa, bad) == MTGRAD_E_NONFINITE, "%s: poison %d", what, k);
        CHECK(memcmp(pa, before, sizeof pa) == 0, "%s: params changed by a refused step", what);
    }
    CHECK(mtgrad_optimizer_steps(a) == 1, "%s: refused steps counted", what);
    /* A NaN parameter is refused as well. */
    float pn[N];
    memcpy(pn, pa, sizeof pa);
    pn[3] = NAN;
    CHECK(mtgrad_optimizer_step(a, pn, g) == MTGRAD_E_NONFINITE, "%s: NaN param", what);
    /* The moments were not touched either: the next good step matches an untouched twin. */
    for (int i = 0; i < N; i++) g[i] = grad_at(1, i);
    CHECK(mtgrad_optimizer_step(a, pa, g) == MTGRAD_OK && mtgrad_optimizer_step(b, pb, g) == MTGRAD_OK, "%s", what);
    CHECK(memcmp(pa, pb, sizeof pa) == 0, "%s: state changed by a refused step", what);
    CHECK(mtgrad_optimizer_step(NULL, pa, g) == MTGRAD_E_INVAL, "NULL o");
    CHECK(mtgrad_optimizer_step(a, NULL, g) == MTGRAD_E_INVAL, "NULL params");
    CHECK(mtgrad_optimizer_step(a, pa, NULL) == MTGRAD_E_INVAL, "NULL grad");
    CHECK(mtgrad_optimizer_step(a, pa, pa) == MTGRAD_E_INVAL, "params aliasing grad");
done:
    mtgrad_optimizer_free(a);
    mtgrad_optimizer_free(b);
}

/* ------------------------------------------------------------ configs */

#define CHECK_BAD(cfg, n, want, needle)                                                           \
    do {                                                                                          \
        mtgrad_optimizer *o_ = (mtgrad_optimizer *)(void *)err; /* a sentinel: must be reset */     \
        err[0] = '\0';                                                                            \
        mtgrad_status s_ = mtgrad_optimizer_new(&o_, &(cfg), (n), err, sizeof err);              \
        CHECK(s_ == (want), "status %d want %d (%s)", (int)s_, (int)(want), err);                \
        CHECK(s_ == MTGRAD_OK ? o_ != NULL : o_ == NULL, "out not reset on failure");                \
        CHECK(strstr(err, (needle)) != NULL, "message '%s' lacks '%s'", err, (needle));          \
        if (s_ == MTGRAD_OK) mtgrad_optimizer_free(o_);                                           \
    } while (0)

static void test_configs(void)
{
    char err[256];
    mtgrad_optim_config d = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    CHECK(d.kind == MTGRAD_OPTIM_ADAM && d.lr == 1e-3 && d.beta1 == 0.9 && d.beta2 == 0.999 && d.eps == 1e-8 &&
              d.weight_decay == 0.0 && d.step_size == 0 && d.n_milestones == 0 && d.gamma == 0.1,
          "adam defaults");
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAMW);
    CHECK(d.kind == MTGRAD_OPTIM_ADAMW && d.lr == 1e-3 && d.weight_decay == 1e-2, "adamw defaults");
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_SGD);
    CHECK(d.kind == MTGRAD_OPTIM_SGD && d.lr == 1e-2 && d.momentum == 0.0 && d.weight_decay == 0.0, "sgd defaults");

    /* torch's RMSprop(lr=1e-2, alpha=0.99, eps=1e-8) and Adagrad(lr=1e-2, eps=1e-10); the AdaTask
     * kinds take their family's */
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_RMSPROP);
    CHECK(d.kind == MTGRAD_OPTIM_RMSPROP && d.lr == 1e-2 && d.beta2 == 0.99 && d.eps == 1e-8 &&
              d.weight_decay == 0.0 && d.gamma == 0.1, "rmsprop defaults");
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAGRAD);
    CHECK(d.kind == MTGRAD_OPTIM_ADAGRAD && d.lr == 1e-2 && d.eps == 1e-10 && d.weight_decay == 0.0,
          "adagrad defaults");
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_ADATASK_ADAM);
    CHECK(d.kind == MTGRAD_OPTIM_ADATASK_ADAM && d.lr == 1e-3 && d.beta1 == 0.9 && d.beta2 == 0.999 &&
              d.eps == 1e-8 && d.weight_decay == 0.0, "adatask-adam defaults");
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_ADATASK_RMSPROP);
    CHECK(d.kind == MTGRAD_OPTIM_ADATASK_RMSPROP && d.lr == 1e-2 && d.beta2 == 0.99 && d.eps == 1e-8,
          "adatask-rmsprop defaults");
    d = mtgrad_optim_config_default(MTGRAD_OPTIM_ADATASK_ADAGRAD);
    CHECK(d.kind == MTGRAD_OPTIM_ADATASK_ADAGRAD && d.lr == 1e-2 && d.eps == 1e-10,
          "adatask-adagrad defaults");

    mtgrad_optim_config c = mtgrad_optim_config_default(MTGRAD_OPTIM_RMSPROP);
    c.beta2 = 1.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "alpha");
    c.beta2 = -0.5;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "alpha");
    c.beta2 = 0.99;
    c.beta1 = 7.0; /* not used by RMSprop */
    CHECK_BAD(c, 4, MTGRAD_OK, "");
    c.eps = 0.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "eps");
    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAGRAD);
    c.beta1 = c.beta2 = 3.0; /* not used by Adagrad */
    CHECK_BAD(c, 4, MTGRAD_OK, "");
    c.eps = -1.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "eps");
    /* the AdaTask kinds need k and d */
    for (int kd = MTGRAD_OPTIM_ADATASK_ADAM; kd <= MTGRAD_OPTIM_ADATASK_ADAGRAD; kd++) {
        c = mtgrad_optim_config_default((mtgrad_optim_kind)kd);
        CHECK_BAD(c, 4, MTGRAD_E_INVAL, "mtgrad_optimizer_new_tasks");
    }

    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    c.lr = 0.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "lr");
    c.lr = -1.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "lr");
    c.lr = NAN;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "lr");
    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    c.beta1 = 1.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "betas");
    c.beta1 = 0.9;
    c.beta2 = -0.1;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "betas");
    c.beta2 = NAN;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "betas");
    c.beta2 = 0.999;
    c.eps = 0.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "eps");
    c.eps = 1e-8;
    c.weight_decay = -0.1;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "weight_decay");
    c.weight_decay = INFINITY;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "weight_decay");
    c.weight_decay = 0.0;
    c.n_milestones = 3;
    c.milestones[0] = 5;
    c.milestones[1] = 3;
    c.milestones[2] = 9;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "sorted");
    c.n_milestones = MTGRAD_OPTIM_MAX_MILESTONES + 1;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "n_milestones");
    c.n_milestones = 1;
    c.milestones[0] = -2;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "negative");
    c.milestones[0] = 2;
    c.gamma = 0.0;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "gamma");
    c.n_milestones = 0;
    c.step_size = -1;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "step_size");
    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    CHECK_BAD(c, 0, MTGRAD_E_SHAPE, "n");
    c.kind = (mtgrad_optim_kind)99;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "kind");
    c = mtgrad_optim_config_default(MTGRAD_OPTIM_SGD);
    c.momentum = -0.5;
    CHECK_BAD(c, 4, MTGRAD_E_INVAL, "momentum");
    /* SGD ignores the Adam fields, so they need not be valid. */
    c.momentum = 0.9;
    c.beta1 = 2.0;
    c.eps = 0.0;
    CHECK_BAD(c, 4, MTGRAD_OK, "");

    mtgrad_optimizer *o = NULL;
    CHECK(mtgrad_optimizer_new(NULL, &c, 4, err, sizeof err) == MTGRAD_E_INVAL, "NULL out");
    CHECK(mtgrad_optimizer_new(&o, NULL, 4, err, sizeof err) == MTGRAD_E_INVAL && o == NULL, "NULL config");
    CHECK(mtgrad_optimizer_new(&o, NULL, 4, NULL, 0) == MTGRAD_E_INVAL, "NULL err is fine");
    mtgrad_optimizer_free(NULL);
    mtgrad_optimizer_set_epoch(NULL, 3);
    CHECK(mtgrad_optimizer_lr(NULL) == 0.0 && mtgrad_optimizer_steps(NULL) == 0, "NULL getters");
}

/* Large arrays go through the threaded path: 1 or 2 threads, vector or plain loops, the bits
 * never change. 100003 elements: past the threading threshold, with a ragged vector tail. */
static void test_paths_agree(mtgrad_optim_kind kind, const char *what)
{
    enum { BIG = 100003, RUNS = 3 };
    float *p = malloc(sizeof(float) * BIG * (RUNS + 1)), *g = p + (size_t)BIG * RUNS;
    CHECK(p != NULL, "alloc");
    if (!p) return;
    const int threads[RUNS] = {1, 2, 1}, use_ref[RUNS] = {0, 0, 1};
    for (int r = 0; r < RUNS; r++) {
        mtgrad_nn_set_threads(threads[r]);
        mtgradi_optim_use_ref(use_ref[r]);
        mtgrad_optim_config c = mtgrad_optim_config_default(kind);
        c.weight_decay = 0.01;
        c.momentum = kind == MTGRAD_OPTIM_SGD ? 0.9 : 0.0;
        mtgrad_optimizer *o = NULL;
        CHECK(mtgrad_optimizer_new(&o, &c, BIG, NULL, 0) == MTGRAD_OK, "%s: new", what);
        float *pr = p + (size_t)BIG * (size_t)r;
        for (int i = 0; i < BIG; i++) pr[i] = (float)sin(0.001 * i);
        for (int t = 0; t < 3 && o; t++) {
            for (int i = 0; i < BIG; i++) g[i] = (float)cos(0.0137 * i + t) * (float)(1 + i % 7);
            CHECK(mtgrad_optimizer_step(o, pr, g) == MTGRAD_OK, "%s: step", what);
        }
        mtgrad_optimizer_free(o);
    }
    mtgrad_nn_set_threads(1);
    mtgradi_optim_use_ref(0);
    CHECK(memcmp(p, p + BIG, sizeof(float) * BIG) == 0, "%s: 2 threads differ from 1", what);
    CHECK(memcmp(p, p + 2 * BIG, sizeof(float) * BIG) == 0, "%s: plain loops differ from vector loops", what);
    free(p);
}

/* Found by fuzz_optim_state: a state may carry any epoch and step count up to INT64_MAX. The
 * schedule must not loop once per decay (a hang), and the step counter must not overflow (UB).
 * Expected values: gamma^n underflows to exactly 0 for huge n (0.5^1075 is already 0), gamma = 1
 * leaves lr as it is, and a normal schedule is still the chained product. */
static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void test_huge_counters(void)
{
    mtgrad_optim_config c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    c.step_size = 1;
    c.gamma = 0.5;
    mtgrad_optimizer *o = NULL;
    CHECK(mtgrad_optimizer_new(&o, &c, 4, NULL, 0) == MTGRAD_OK, "new");
    if (!o) return;
    mtgrad_optimizer_set_epoch(o, INT64_MAX);
    CHECK(mtgrad_optimizer_lr(o) == 0.0, "lr after 2^63 halvings: %g", mtgrad_optimizer_lr(o));
    mtgrad_optimizer_set_epoch(o, 3);
    CHECK(mtgrad_optimizer_lr(o) == 1e-3 * 0.5 * 0.5 * 0.5, "lr at epoch 3: %g", mtgrad_optimizer_lr(o));
    mtgrad_optimizer_free(o);

    c.gamma = 0.9999999; /* the product does not settle quickly: the pow() tail */
    CHECK(mtgrad_optimizer_new(&o, &c, 4, NULL, 0) == MTGRAD_OK, "new");
    if (!o) return;
    mtgrad_optimizer_set_epoch(o, (int64_t)1 << 40);
    CHECK(mtgrad_optimizer_lr(o) == 0.0, "lr after 2^40 decays by 1-1e-7: %g", mtgrad_optimizer_lr(o));
    mtgrad_optimizer_free(o);

    c.gamma = 1.0;
    CHECK(mtgrad_optimizer_new(&o, &c, 4, NULL, 0) == MTGRAD_OK, "new");
    if (!o) return;
    mtgrad_optimizer_set_epoch(o, INT64_MAX);
    CHECK(mtgrad_optimizer_lr(o) == 1e-3, "gamma 1: %g", mtgrad_optimizer_lr(o));

    /* a state whose step count is INT64_MAX and epoch INT64_MAX (CRC made right) */
    unsigned char buf[256];
    size_t len = sizeof buf;
    CHECK(mtgrad_optimizer_save(o, buf, &len) == MTGRAD_OK, "save");
    put_le64(buf + 32, (uint64_t)INT64_MAX);
    put_le64(buf + 40, (uint64_t)INT64_MAX);
    put_le64(buf + len - 8, (uint32_t)crc32(0L, buf, (uInt)(len - 8)));
    mtgrad_optimizer_free(o);
    c.gamma = 0.5;
    CHECK(mtgrad_optimizer_new(&o, &c, 4, NULL, 0) == MTGRAD_OK, "new");
    if (!o) return;
    CHECK(mtgrad_optimizer_load(o, buf, len) == MTGRAD_OK, "load of huge counters");
    CHECK(mtgrad_optimizer_lr(o) == 0.0, "lr of the loaded epoch");
    float p[4] = {1, 2, 3, 4}, g[4] = {0.5f, -0.5f, 0.25f, 0};
    mtgrad_status s = mtgrad_optimizer_step(o, p, g);
    CHECK(s == MTGRAD_OK && mtgrad_optimizer_steps(o) == INT64_MAX, "step saturates: %d %lld", (int)s,
          (long long)mtgrad_optimizer_steps(o));
    CHECK(p[0] == 1 && p[1] == 2 && p[2] == 3 && p[3] == 4, "lr 0 leaves the parameters");
    mtgrad_optimizer_free(o);
}

/* ------------------------------------------------------------ kinds and new_tasks */

static void test_kinds(void)
{
    static const char *names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad", "adatask-adam",
                                  "adatask-rmsprop", "adatask-adagrad"};
    for (int i = 0; i < 8; i++) {
        const char *nm = mtgrad_optim_kind_name((mtgrad_optim_kind)i);
        CHECK(nm && strcmp(nm, names[i]) == 0, "name of kind %d: %s", i, nm ? nm : "(null)");
        mtgrad_optim_kind k = (mtgrad_optim_kind)99;
        CHECK(mtgrad_optim_kind_parse(names[i], &k) == MTGRAD_OK && (int)k == i, "parse %s", names[i]);
        CHECK(mtgrad_optim_kind_per_task((mtgrad_optim_kind)i) == (i >= 5), "per_task %s", names[i]);
    }
    CHECK(mtgrad_optim_kind_name((mtgrad_optim_kind)8) == NULL, "name of kind 8");
    CHECK(mtgrad_optim_kind_name((mtgrad_optim_kind)-1) == NULL, "name of kind -1");
    CHECK(mtgrad_optim_kind_per_task((mtgrad_optim_kind)42) == 0, "per_task of an unknown kind");
    mtgrad_optim_kind k = MTGRAD_OPTIM_SGD;
    CHECK(mtgrad_optim_kind_parse("Adam", &k) == MTGRAD_E_INVAL && k == MTGRAD_OPTIM_SGD, "case matters");
    CHECK(mtgrad_optim_kind_parse("adatask", &k) == MTGRAD_E_INVAL, "adatask alone");
    CHECK(mtgrad_optim_kind_parse("", &k) == MTGRAD_E_INVAL, "empty name");
    CHECK(mtgrad_optim_kind_parse(NULL, &k) == MTGRAD_E_INVAL, "NULL name");
    CHECK(mtgrad_optim_kind_parse("adam", NULL) == MTGRAD_E_INVAL, "NULL kind");

    /* new_tasks: shape checks for every kind; plain kinds ignore k and d */
    char err[256];
    mtgrad_optimizer *o = NULL;
    for (int i = 0; i < 8; i++) {
        mtgrad_optim_config c = mtgrad_optim_config_default((mtgrad_optim_kind)i);
        const int64_t bad[][3] = {{10, 0, 5}, {10, MTGRAD_NN_MAX_TASKS + 1, 5}, {10, 2, -1}, {10, 2, 11}, {0, 2, 0}};
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            o = (mtgrad_optimizer *)(void *)err;
            mtgrad_status s = mtgrad_optimizer_new_tasks(&o, &c, bad[b][0], bad[b][1], bad[b][2], err, sizeof err);
            CHECK(s == MTGRAD_E_SHAPE && o == NULL, "%s: new_tasks(n %lld, k %lld, d %lld) = %d", names[i],
                  (long long)bad[b][0], (long long)bad[b][1], (long long)bad[b][2], (int)s);
        }
        CHECK(mtgrad_optimizer_new_tasks(&o, &c, 10, 3, 10, err, sizeof err) == MTGRAD_OK && o, "%s: %s", names[i], err);
        CHECK(mtgrad_optimizer_per_task(o) == (i >= 5), "%s: per_task", names[i]);
        mtgrad_optimizer_free(o);
        CHECK(mtgrad_optimizer_new_tasks(&o, &c, 10, MTGRAD_NN_MAX_TASKS, 0, err, sizeof err) == MTGRAD_OK, "%s: d 0", names[i]);
        mtgrad_optimizer_free(o);
    }
    mtgrad_optim_config c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADATASK_ADAM);
    c.lr = -1;
    CHECK(mtgrad_optimizer_new_tasks(&o, &c, 10, 2, 5, err, sizeof err) == MTGRAD_E_INVAL && strstr(err, "lr"),
          "new_tasks checks the config: %s", err);
    CHECK(mtgrad_optimizer_new_tasks(NULL, &c, 10, 2, 5, err, sizeof err) == MTGRAD_E_INVAL, "NULL out");
    CHECK(mtgrad_optimizer_new_tasks(&o, NULL, 10, 2, 5, NULL, 0) == MTGRAD_E_INVAL && o == NULL, "NULL config");
    CHECK(mtgrad_optimizer_per_task(NULL) == 0, "per_task(NULL)");

    /* the plain step refuses AdaTask, step_tasks refuses the plain kinds */
    c = mtgrad_optim_config_default(MTGRAD_OPTIM_ADATASK_RMSPROP);
    CHECK(mtgrad_optimizer_new_tasks(&o, &c, 4, 2, 2, err, sizeof err) == MTGRAD_OK, "%s", err);
    float p[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1}, G[4] = {1, 1, 1, 1};
    CHECK(mtgrad_optimizer_step(o, p, g) == MTGRAD_E_UNSUPPORTED, "step on adatask");
    CHECK(mtgrad_optimizer_steps(o) == 0 && p[0] == 1, "a refused step changed something");
    mtgrad_optimizer_free(o);
    c = mtgrad_optim_config_default(MTGRAD_OPTIM_RMSPROP);
    CHECK(mtgrad_optimizer_new_tasks(&o, &c, 4, 2, 2, err, sizeof err) == MTGRAD_OK, "%s", err);
    CHECK(mtgrad_optimizer_step_tasks(o, p, g, G, 2) == MTGRAD_E_UNSUPPORTED, "step_tasks on rmsprop");
    CHECK(mtgrad_optimizer_step(o, p, g) == MTGRAD_OK, "plain kind from new_tasks steps");
    mtgrad_optimizer_free(o);
}

/* --optimizer's switch: the recipe's lr, schedule and weight decay always; its betas/eps only
 * within a family (values written out here, not taken from the function). */
static void test_with_kind(void)
{
    mtgrad_optim_config rec = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    rec.lr = 3e-4, rec.weight_decay = 0.01, rec.beta1 = 0.8, rec.eps = 1e-6;
    rec.n_milestones = 1, rec.milestones[0] = 5, rec.gamma = 0.5;
    mtgrad_optim_config same = mtgrad_optim_config_with_kind(&rec, MTGRAD_OPTIM_ADAM);
    CHECK(same.kind == rec.kind && same.lr == rec.lr && same.beta1 == 0.8 &&
              same.beta2 == rec.beta2 && same.eps == 1e-6 && same.weight_decay == 0.01 && same.n_milestones == 1 &&
              same.milestones[0] == 5 && same.gamma == 0.5,
          "same kind: the recipe unchanged");
    mtgrad_optim_config at = mtgrad_optim_config_with_kind(&rec, MTGRAD_OPTIM_ADATASK_ADAM);
    CHECK(at.kind == MTGRAD_OPTIM_ADATASK_ADAM && at.beta1 == 0.8 && at.eps == 1e-6 &&
              at.lr == 3e-4 && at.weight_decay == 0.01 && at.n_milestones == 1 &&
              at.milestones[0] == 5 && at.gamma == 0.5,
          "adatask-adam keeps the Adam recipe's constants and schedule");
    mtgrad_optim_config aw = mtgrad_optim_config_with_kind(&rec, MTGRAD_OPTIM_ADAMW);
    CHECK(aw.beta1 == 0.8 && aw.eps == 1e-6 && aw.weight_decay == 0.01, "adamw shares Adam's");
    mtgrad_optim_config rp = mtgrad_optim_config_with_kind(&rec, MTGRAD_OPTIM_RMSPROP);
    CHECK(rp.kind == MTGRAD_OPTIM_RMSPROP && rp.beta2 == 0.99 && rp.eps == 1e-8 &&
              rp.lr == 3e-4 && rp.weight_decay == 0.01 && rp.gamma == 0.5,
          "rmsprop: torch's alpha and eps, the recipe's lr, decay and schedule");
    mtgrad_optim_config ag = mtgrad_optim_config_with_kind(&rec, MTGRAD_OPTIM_ADATASK_ADAGRAD);
    CHECK(ag.eps == 1e-10 && ag.lr == 3e-4, "adatask-adagrad: Adagrad's eps");
}

int main(void)
{
    test_with_kind();
    test_against_double_reference();
    test_against_torch(0);
    test_against_torch(1);
    test_schedules();
    test_save_load(MTGRAD_OPTIM_SGD, "sgd");
    test_save_load(MTGRAD_OPTIM_ADAM, "adam");
    test_save_load(MTGRAD_OPTIM_ADAMW, "adamw");
    test_save_load(MTGRAD_OPTIM_RMSPROP, "rmsprop");
    test_save_load(MTGRAD_OPTIM_ADAGRAD, "adagrad");
    test_nonfinite(MTGRAD_OPTIM_SGD, "sgd");
    test_nonfinite(MTGRAD_OPTIM_ADAM, "adam");
    test_nonfinite(MTGRAD_OPTIM_ADAMW, "adamw");
    test_nonfinite(MTGRAD_OPTIM_RMSPROP, "rmsprop");
    test_nonfinite(MTGRAD_OPTIM_ADAGRAD, "adagrad");
    test_configs();
    test_kinds();
    test_huge_counters();
    test_paths_agree(MTGRAD_OPTIM_SGD, "sgd");
    test_paths_agree(MTGRAD_OPTIM_ADAM, "adam");
    test_paths_agree(MTGRAD_OPTIM_ADAMW, "adamw");
    test_paths_agree(MTGRAD_OPTIM_RMSPROP, "rmsprop");
    test_paths_agree(MTGRAD_OPTIM_ADAGRAD, "adagrad");
    return harness_report();
}
