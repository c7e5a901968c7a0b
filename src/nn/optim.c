/*
 * optim.c — the engine's optimizers: torch.optim.SGD (momentum, L2 weight decay), Adam (L2 weight
 * decay), AdamW (decoupled weight decay), RMSprop and Adagrad (L2 weight decay), the AdaTask
 * variants of Adam, RMSprop and Adagrad (per-task moments on the shared parameters), with
 * StepLR / MultiStepLR schedules by epoch, and save/load of their state.
 *
 * Why it looks like this: a training run must follow PyTorch's trajectory from the same start
 * (tests/nn/test_torch_parity.c), so each update repeats torch 1.13's single-tensor CPU path
 * operation by operation in float32, with the scalar factors computed in double first exactly as
 * torch computes them in Python (1 - beta1, lr / (1 - beta1^t), sqrt(1 - beta2^t), ...) and then
 * rounded to float as ATen does when it applies a Python scalar to a float tensor:
 *   Adam   g = g + wd*p;  m = m*b1;  m = m + (1-b1)*g;  v = v*b2;  v = v + ((1-b2)*g)*g;
 *          denom = sqrt(v) / sqrt(1-b2^t) + eps;  p = p + (-(lr/(1-b1^t)) * m) / denom
 *   AdamW  p = p * (1 - lr*wd) first, then the same without the L2 term
 *   SGD    g = g + wd*p;  buf = g (first step) else buf = buf*mu + g;  p = p + (-lr)*buf
 *   RMSprop g = g + wd*p;  v = v*a;  v = v + ((1-a)*g)*g;  p = p + (-lr * g) / (sqrt(v) + eps)
 *   Adagrad g = g + wd*p;  s = s + (1*g)*g;              p = p + (-lr * g) / (sqrt(s) + eps)
 * (RMSprop's alpha a is config beta2; Adagrad is RMSprop's loop with a = 1: v*1 and 1*g are exact.)
 * AdaTask (EnnengYang/AdaTask adatask.py, Adam_with_AdaTask; methods.md 8): one step counter; for
 * each task i in order, the task's moments take the plain update without weight decay on the
 * task's gradient G_i and the shared parameters move by that task's step at once (p.addcdiv_
 * per task, in float32), so with k = 1 it is the plain optimizer bit for bit. The parameters
 * after d take the plain update of the family (with weight decay) on the summed gradient.
 * Where ATen's kernels fuse a multiply and an add into one FMA, so does this file (fmaf), which
 * makes the updates bit-identical to torch's on x86-64.
 * Every element is independent, so the loops may run on several threads without changing a bit.
 */
#include "mtgrad_nn.h"
#include "internal.h" /* mtgradi_malloc & co. */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

struct mtgrad_optimizer {
    mtgrad_optim_config c;
    int64_t n;
    int64_t step;   /* completed steps (torch's state['step']) */
    int64_t epoch;  /* last epoch given to set_epoch */
    double lr;      /* learning rate of that epoch */
    int has_buf;    /* SGD with momentum: buf exists (torch creates it on the first step) */
    float *m;       /* Adam/AdamW first moment, or SGD momentum buffer */
    float *v;       /* Adam/AdamW second moment, RMSprop square average, Adagrad sum; NULL for SGD */
    /* AdaTask kinds: k tasks share params [0, d). m and v (v only for RMSprop/Adagrad) then hold
     * k*d + (n - d) floats: task i's moments of the shared parameters at i*d, then the moments
     * of the parameters [d, n) at k*d. Other kinds: k = 1, d = 0. */
    int64_t k, d;
};

static int is_adatask(mtgrad_optim_kind kind)
{
    return kind == MTGRAD_OPTIM_ADATASK_ADAM || kind == MTGRAD_OPTIM_ADATASK_RMSPROP ||
           kind == MTGRAD_OPTIM_ADATASK_ADAGRAD;
}

/* The plain kind whose update a kind uses (AdaTask-X -> X). */
static mtgrad_optim_kind family(mtgrad_optim_kind kind)
{
    switch (kind) {
    case MTGRAD_OPTIM_ADATASK_ADAM: return MTGRAD_OPTIM_ADAM;
    case MTGRAD_OPTIM_ADATASK_RMSPROP: return MTGRAD_OPTIM_RMSPROP;
    case MTGRAD_OPTIM_ADATASK_ADAGRAD: return MTGRAD_OPTIM_ADAGRAD;
    default: return kind;
    }
}

/* 1 if the two kinds read the same betas, eps and momentum (AdamW's are Adam's). */
static int same_constants(mtgrad_optim_kind a, mtgrad_optim_kind b)
{
    mtgrad_optim_kind fa = family(a), fb = family(b);
    if (fa == MTGRAD_OPTIM_ADAMW) fa = MTGRAD_OPTIM_ADAM;
    if (fb == MTGRAD_OPTIM_ADAMW) fb = MTGRAD_OPTIM_ADAM;
    return fa == fb;
}

mtgrad_optim_config mtgrad_optim_config_with_kind(const mtgrad_optim_config *c,
                                                  mtgrad_optim_kind kind)
{
    if (kind == c->kind) return *c;
    mtgrad_optim_config o = mtgrad_optim_config_default(kind);
    if (same_constants(kind, c->kind)) {
        o.beta1 = c->beta1, o.beta2 = c->beta2, o.eps = c->eps, o.momentum = c->momentum;
    }
    o.lr = c->lr;
    o.weight_decay = c->weight_decay;
    o.step_size = c->step_size;
    o.n_milestones = c->n_milestones;
    memcpy(o.milestones, c->milestones, sizeof o.milestones);
    o.gamma = c->gamma;
    return o;
}

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad",
                                         "adatask-adam", "adatask-rmsprop", "adatask-adagrad"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

const char *mtgrad_optim_kind_name(mtgrad_optim_kind kind)
{
    return (int)kind >= 0 && (int)kind < N_KINDS ? kind_names[kind] : NULL;
}

mtgrad_status mtgrad_optim_kind_parse(const char *name, mtgrad_optim_kind *kind)
{
    if (!name || !kind) return MTGRAD_E_INVAL;
    for (int i = 0; i < N_KINDS; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (mtgrad_optim_kind)i;
            return MTGRAD_OK;
        }
    return MTGRAD_E_INVAL;
}

int mtgrad_optim_kind_per_task(mtgrad_optim_kind kind) { return is_adatask(kind); }



mtgrad_optim_config mtgrad_optim_config_default(mtgrad_optim_kind kind)
{
    mtgrad_optim_config c;
    memset(&c, 0, sizeof c);
    const mtgrad_optim_kind f = family(kind);
    c.kind = kind;
    c.lr = f == MTGRAD_OPTIM_ADAM || f == MTGRAD_OPTIM_ADAMW ? 1e-3 : 1e-2;
    c.momentum = 0.0;
    c.weight_decay = kind == MTGRAD_OPTIM_ADAMW ? 1e-2 : 0.0;
    c.beta1 = 0.9;
    c.beta2 = f == MTGRAD_OPTIM_RMSPROP ? 0.99 : 0.999; /* RMSprop's alpha */
    c.eps = f == MTGRAD_OPTIM_ADAGRAD ? 1e-10 : 1e-8;
    c.step_size = 0;
    c.n_milestones = 0;
    c.gamma = 0.1;
    return c;
}

static int finite_nonneg(double x) { return isfinite(x) && x >= 0.0; }

/* The checks torch's constructors make, plus the ones that keep the state finite (eps > 0:
 * with eps = 0 a parameter whose gradient has always been 0 would get 0/0). */
static mtgrad_status check_config(const mtgrad_optim_config *c, char *err, size_t errlen)
{
    if (!mtgrad_optim_kind_name(c->kind))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: unknown kind %d", (int)c->kind);
    const mtgrad_optim_kind f = family(c->kind);
    if (!isfinite(c->lr) || c->lr <= 0.0)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: lr must be finite and > 0 (got %g)", c->lr);
    if (!finite_nonneg(c->weight_decay))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: weight_decay must be finite and >= 0 (got %g)",
                    c->weight_decay);
    if (c->kind == MTGRAD_OPTIM_SGD && !finite_nonneg(c->momentum))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: momentum must be finite and >= 0 (got %g)",
                    c->momentum);
    if (f == MTGRAD_OPTIM_ADAM || f == MTGRAD_OPTIM_ADAMW) {
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0) || !(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: betas must lie in [0, 1) (got %g, %g)",
                        c->beta1, c->beta2);
    }
    /* RMSprop's alpha: torch only asks alpha >= 0, but alpha = 1 never accumulates anything */
    if (f == MTGRAD_OPTIM_RMSPROP && !(c->beta2 >= 0.0 && c->beta2 < 1.0))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                              "optimizer: beta2 (RMSprop's alpha) must lie in [0, 1) (got %g)", c->beta2);
    if (f != MTGRAD_OPTIM_SGD) {
        if (!isfinite(c->eps) || c->eps <= 0.0)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: eps must be finite and > 0 (got %g)", c->eps);
    }
    if (c->n_milestones < 0 || c->n_milestones > MTGRAD_OPTIM_MAX_MILESTONES)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: n_milestones must be in [0, %d] (got %lld)",
                    MTGRAD_OPTIM_MAX_MILESTONES, (long long)c->n_milestones);
    for (int64_t i = 0; i < c->n_milestones; i++) {
        if (c->milestones[i] < 0)
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: milestone %lld is negative", (long long)i);
        if (i > 0 && c->milestones[i] < c->milestones[i - 1])
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: milestones must be sorted (index %lld)",
                        (long long)i);
    }
    if (c->step_size < 0)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: step_size must be >= 0 (got %lld)",
                    (long long)c->step_size);
    if ((c->n_milestones > 0 || c->step_size > 0) && !(isfinite(c->gamma) && c->gamma > 0.0))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: gamma must be finite and > 0 (got %g)", c->gamma);
    return MTGRAD_OK;
}

/* Floats in each moment array: n, or for AdaTask k*d shared moments + (n - d) others. */
static int64_t moment_len(const mtgrad_optimizer *o) { return o->k * o->d + (o->n - o->d); }

static mtgrad_status create(mtgrad_optimizer **out, const mtgrad_optim_config *c, int64_t n,
                            int64_t k, int64_t d, char *err, size_t errlen)
{
    mtgrad_status s = check_config(c, err, errlen);
    if (s != MTGRAD_OK) return s;
    if (n < 1) return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "optimizer: n must be >= 1 (got %lld)", (long long)n);
    if (k < 1 || k > MTGRAD_NN_MAX_TASKS)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "optimizer: k = %lld tasks; must be in [1, %d]",
                              (long long)k, MTGRAD_NN_MAX_TASKS);
    if (d < 0 || d > n)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "optimizer: d = %lld shared parameters; must be in [0, n = %lld]",
                              (long long)d, (long long)n);
    if (!is_adatask(c->kind)) k = 1, d = 0;
    /* k*d + n - d floats per array, two arrays at most */
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / 2 / (uint64_t)k)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "optimizer: n = %lld is too large", (long long)n);

    mtgrad_optimizer *o = mtgradi_calloc(1, sizeof *o);
    if (!o) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "optimizer: out of memory");
    o->c = *c;
    o->n = n;
    o->k = k;
    o->d = d;
    const mtgrad_optim_kind f = family(c->kind);
    const size_t len = (size_t)moment_len(o);
    int need_m = f == MTGRAD_OPTIM_ADAM || f == MTGRAD_OPTIM_ADAMW ||
                 (f == MTGRAD_OPTIM_SGD && c->momentum != 0.0);
    int need_v = f != MTGRAD_OPTIM_SGD;
    if (need_m) o->m = mtgradi_calloc(len, sizeof(float));
    if (need_v) o->v = mtgradi_calloc(len, sizeof(float));
    if ((need_m && !o->m) || (need_v && !o->v)) {
        mtgrad_optimizer_free(o);
        return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "optimizer: out of memory for %lld moments", (long long)len);
    }
    mtgrad_optimizer_set_epoch(o, 0);
    *out = o;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_optimizer_new(mtgrad_optimizer **out, const mtgrad_optim_config *c, int64_t n,
                                   char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out || !c) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: NULL %s", out ? "config" : "out");
    *out = NULL;
    if (is_adatask(c->kind))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                              "optimizer: kind %s keeps per-task moments: create it with "
                              "mtgrad_optimizer_new_tasks (it needs k and d)",
                              mtgrad_optim_kind_name(c->kind));
    return create(out, c, n, 1, 0, err, errlen);
}

mtgrad_status mtgrad_optimizer_new_tasks(mtgrad_optimizer **out, const mtgrad_optim_config *c,
                                         int64_t n, int64_t k, int64_t d, char *err,
                                         size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out || !c) return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL, "optimizer: NULL %s", out ? "config" : "out");
    *out = NULL;
    return create(out, c, n, k, d, err, errlen);
}

int mtgrad_optimizer_per_task(const mtgrad_optimizer *o) { return o && is_adatask(o->c.kind); }

void mtgrad_optimizer_free(mtgrad_optimizer *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o);
}

/* torch's schedulers multiply the previous lr by gamma at each decay epoch (the chained form),
 * so the factor is built the same way rather than with pow(). */
static double scheduled_lr(const mtgrad_optim_config *c, int64_t epoch)
{
    int64_t decays = 0;
    if (c->n_milestones > 0) {
        for (int64_t i = 0; i < c->n_milestones; i++) decays += c->milestones[i] <= epoch;
    } else if (c->step_size > 0) {
        decays = epoch / c->step_size;
    }
    /* A huge epoch (set_epoch(INT64_MAX), or one read from a damaged checkpoint) must not loop
     * for ever: once the product stops changing (0, Inf, gamma = 1) more decays change nothing,
     * and past 2^20 decays (no real schedule gets there) pow() finishes the product. */
    double lr = c->lr;
    int64_t i = 0;
    for (; i < decays && i < ((int64_t)1 << 20); i++) {
        double next = lr * c->gamma;
        if (next == lr) return lr;
        lr = next;
    }
    if (i < decays) lr *= pow(c->gamma, (double)(decays - i));
    return lr;
}

void mtgrad_optimizer_set_epoch(mtgrad_optimizer *o, int64_t epoch)
{
    if (!o) return;
    o->epoch = epoch < 0 ? 0 : epoch;
    o->lr = scheduled_lr(&o->c, o->epoch);
}

double mtgrad_optimizer_lr(const mtgrad_optimizer *o) { return o ? o->lr : 0.0; }
int64_t mtgrad_optimizer_steps(const mtgrad_optimizer *o) { return o ? o->step : 0; }

/* ------------------------------------------------------------------ updates */

/* An all-ones exponent means Inf or NaN. An integer OR-reduction vectorises (with omp simd: -O2's
 * cost model alone would not); a float one would need reassociation. */
static int all_finite(const float *x, int64_t n)
{
    uint32_t bad = 0;
#if defined(_OPENMP)
#pragma omp simd reduction(| : bad)
#endif
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* The update loops are written once, with torch's operation order and fmaf() wherever ATen's
 * CPU kernels fuse (add with alpha, addcmul), which makes the updates bit-identical to torch 1.13
 * on x86-64 (tests/nn/test_optim.c checks 0 ulp against PyTorch's own numbers). fmaf is exactly
 * rounded, so every build gives the same bits; the copy compiled for FMA hardware (chosen at run
 * time) only lets the loops vectorise instead of calling libm per element. */
typedef struct sgd_args {
    float *p, *buf;
    const float *g;
    int64_t n;
    float wd, neg_lr, mu;
    int use_wd, first;
} sgd_args;

typedef struct adam_args {
    float *p, *m, *v;
    const float *g;
    int64_t n;
    float wd, decay, b1, one_b1, b2, one_b2, bc2_sqrt, neg_step, eps;
    int mode; /* 0 no weight decay, 1 L2 (g += wd*p), 2 decoupled (p *= 1 - lr*wd) */
} adam_args;

typedef struct rms_args {
    float *p, *v;
    const float *g;
    int64_t n;
    float wd, a, one_a, neg_lr, eps; /* Adagrad: a = 1, one_a = 1 */
    int use_wd;
} rms_args;

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Elements [lo, hi); the flags are compile-time constants at every call site below. The arrays
 * are parameters so that `restrict` holds, and `omp simd` vectorises SGD's loop even where -O2's
 * cost model would not (a trip count unknown at compile time). */
#if defined(_OPENMP)
#define SIMD _Pragma("omp simd")
#else
#define SIMD
#endif

static ALWAYS_INLINE void sgd_loop(float *restrict p, float *restrict buf, const float *restrict g,
                                   const sgd_args *a, int64_t lo, int64_t hi, int use_wd, int momentum,
                                   int first)
{
    const float wd = a->wd, neg_lr = a->neg_lr, mu = a->mu;
    SIMD
    for (int64_t i = lo; i < hi; i++) {
        float d = use_wd ? fmaf(wd, p[i], g[i]) : g[i];
        if (momentum && !first) {
            /* torch rounds the product before the add: two statements, so that no compiler
             * contracts them into an FMA (clang does within one expression) */
            float decayed = buf[i] * mu;
            d = decayed + d;
        }
        if (momentum) buf[i] = d;
        p[i] = fmaf(neg_lr, d, p[i]);
    }
}

static ALWAYS_INLINE void adam_loop(float *restrict p, float *restrict m, float *restrict v,
                                    const float *restrict g, const adam_args *a, int64_t lo, int64_t hi,
                                    int mode)
{
    const float wd = a->wd, decay = a->decay, b1 = a->b1, one_b1 = a->one_b1, b2 = a->b2;
    const float one_b2 = a->one_b2, bc2_sqrt = a->bc2_sqrt, neg_step = a->neg_step, eps = a->eps;
    /* no omp simd: sqrtf under errno rules does not vectorise (adam_range_fma has intrinsics) */
    for (int64_t i = lo; i < hi; i++) {
        float pi = p[i], gi = g[i];
        if (mode == 2) pi = pi * decay;
        if (mode == 1) gi = fmaf(wd, pi, gi);
        float mi = fmaf(one_b1, gi, m[i] * b1);
        float vi = fmaf(one_b2 * gi, gi, v[i] * b2);
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + (neg_step * mi) / denom;
    }
}

/* RMSprop and Adagrad (torch: square_avg.mul_(alpha).addcmul_(g, g, value=1-alpha), or
 * state_sum.addcmul_(g, g, value=1); then param.addcdiv_(g, sqrt(v) + eps, value=-lr)). */
static ALWAYS_INLINE void rms_loop(float *restrict p, float *restrict v, const float *restrict g,
                                   const rms_args *a, int64_t lo, int64_t hi, int use_wd)
{
    const float wd = a->wd, al = a->a, one_a = a->one_a, neg_lr = a->neg_lr, eps = a->eps;
    for (int64_t i = lo; i < hi; i++) {
        float gi = use_wd ? fmaf(wd, p[i], g[i]) : g[i];
        float vi = fmaf(one_a * gi, gi, v[i] * al);
        float denom = sqrtf(vi) + eps;
        v[i] = vi;
        p[i] = p[i] + (neg_lr * gi) / denom;
    }
}

static ALWAYS_INLINE void sgd_range(const sgd_args *a, int64_t lo, int64_t hi)
{
    if (!a->buf) {
        if (a->use_wd) sgd_loop(a->p, a->buf, a->g, a, lo, hi, 1, 0, 0);
        else sgd_loop(a->p, a->buf, a->g, a, lo, hi, 0, 0, 0);
    } else if (a->first) {
        if (a->use_wd) sgd_loop(a->p, a->buf, a->g, a, lo, hi, 1, 1, 1);
        else sgd_loop(a->p, a->buf, a->g, a, lo, hi, 0, 1, 1);
    } else {
        if (a->use_wd) sgd_loop(a->p, a->buf, a->g, a, lo, hi, 1, 1, 0);
        else sgd_loop(a->p, a->buf, a->g, a, lo, hi, 0, 1, 0);
    }
}

static ALWAYS_INLINE void adam_range(const adam_args *a, int64_t lo, int64_t hi)
{
    if (a->mode == 2) adam_loop(a->p, a->m, a->v, a->g, a, lo, hi, 2);
    else if (a->mode == 1) adam_loop(a->p, a->m, a->v, a->g, a, lo, hi, 1);
    else adam_loop(a->p, a->m, a->v, a->g, a, lo, hi, 0);
}

static ALWAYS_INLINE void rms_range(const rms_args *a, int64_t lo, int64_t hi)
{
    if (a->use_wd) rms_loop(a->p, a->v, a->g, a, lo, hi, 1);
    else rms_loop(a->p, a->v, a->g, a, lo, hi, 0);
}

static void sgd_range_plain(const void *a, int64_t lo, int64_t hi) { sgd_range(a, lo, hi); }
static void rms_range_plain(const void *a, int64_t lo, int64_t hi) { rms_range(a, lo, hi); }
static void adam_range_plain(const void *a, int64_t lo, int64_t hi) { adam_range(a, lo, hi); }

typedef void (*range_fn)(const void *args, int64_t lo, int64_t hi);

/* Tests force the plain loops to compare them with the vector ones (declared in the test only:
 * it is not API). */
static int optim_use_ref;
void mtgradi_optim_use_ref(int on);
void mtgradi_optim_use_ref(int on) { optim_use_ref = on != 0; }

#if defined(__GNUC__) && defined(__x86_64__)
/* SGD vectorises by itself (omp simd); Adam needs intrinsics because the vectoriser will not
 * touch sqrtf under C's errno rules. Same operations, same rounding: the same bits as the
 * scalar loop, which finishes the tail. */
__attribute__((target("avx2,fma"))) static void sgd_range_fma(const void *a, int64_t lo, int64_t hi)
{
    sgd_range(a, lo, hi);
}

__attribute__((target("avx2,fma"))) static void adam_range_fma(const void *va, int64_t lo, int64_t hi)
{
    const adam_args *a = va;
    const __m256 wd = _mm256_set1_ps(a->wd), decay = _mm256_set1_ps(a->decay);
    const __m256 b1 = _mm256_set1_ps(a->b1), one_b1 = _mm256_set1_ps(a->one_b1);
    const __m256 b2 = _mm256_set1_ps(a->b2), one_b2 = _mm256_set1_ps(a->one_b2);
    const __m256 bc2_sqrt = _mm256_set1_ps(a->bc2_sqrt), neg_step = _mm256_set1_ps(a->neg_step);
    const __m256 eps = _mm256_set1_ps(a->eps);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 pi = _mm256_loadu_ps(a->p + i), gi = _mm256_loadu_ps(a->g + i);
        if (a->mode == 2) pi = _mm256_mul_ps(pi, decay);
        if (a->mode == 1) gi = _mm256_fmadd_ps(wd, pi, gi);
        __m256 mi = _mm256_fmadd_ps(one_b1, gi, _mm256_mul_ps(_mm256_loadu_ps(a->m + i), b1));
        __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(one_b2, gi), gi, _mm256_mul_ps(_mm256_loadu_ps(a->v + i), b2));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2_sqrt), eps);
        _mm256_storeu_ps(a->m + i, mi);
        _mm256_storeu_ps(a->v + i, vi);
        _mm256_storeu_ps(a->p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(neg_step, mi), denom)));
    }
    adam_range(a, i, hi);
}

__attribute__((target("avx2,fma"))) static void rms_range_fma(const void *va, int64_t lo, int64_t hi)
{
    const rms_args *a = va;
    const __m256 wd = _mm256_set1_ps(a->wd), al = _mm256_set1_ps(a->a);
    const __m256 one_a = _mm256_set1_ps(a->one_a), neg_lr = _mm256_set1_ps(a->neg_lr);
    const __m256 eps = _mm256_set1_ps(a->eps);
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) {
        __m256 pi = _mm256_loadu_ps(a->p + i), gi = _mm256_loadu_ps(a->g + i);
        if (a->use_wd) gi = _mm256_fmadd_ps(wd, pi, gi);
        __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(one_a, gi), gi, _mm256_mul_ps(_mm256_loadu_ps(a->v + i), al));
        __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(vi), eps);
        _mm256_storeu_ps(a->v + i, vi);
        _mm256_storeu_ps(a->p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(neg_lr, gi), denom)));
    }
    rms_range(a, i, hi);
}

static int cpu_has_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#define PICK(plain, fma) (!optim_use_ref && cpu_has_fma() ? (fma) : (plain))
#else
#define PICK(plain, fma) (plain)
#endif

/* Elements are independent: threads take fixed contiguous blocks, and the bits never depend on
 * how many there are. Small arrays stay on one thread (a parallel region costs more). */
static void run_ranges(range_fn f, const void *args, int64_t n)
{
#if defined(_OPENMP)
    if (n >= 65536 && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t chunk = (n + nt - 1) / nt;
            int64_t lo = t * chunk, hi = lo + chunk < n ? lo + chunk : n;
            if (lo < hi) f(args, lo, hi);
        }
        return;
    }
#endif
    f(args, 0, n);
}

/* The plain updates on n elements: params p, gradient g, moments m and v (of the same n
 * elements). wd: the weight decay to apply (0 on AdaTask's shared parameters). */
static void sgd_update(mtgrad_optimizer *o, float *p, const float *g, int64_t n)
{
    sgd_args a = {p, o->m, g, n, (float)o->c.weight_decay, (float)(-o->lr), (float)o->c.momentum,
                  o->c.weight_decay != 0.0, !o->has_buf};
    run_ranges(PICK(sgd_range_plain, sgd_range_fma), &a, n);
    if (o->m) o->has_buf = 1;
}

static void adam_update(const mtgrad_optimizer *o, float *p, float *m, float *v, const float *g,
                        int64_t n, double wd)
{
    const double t = (double)o->step + 1.0; /* no int64 overflow after a loaded INT64_MAX */
    const mtgrad_optim_config *c = &o->c;
    adam_args a = {
        p, m, v, g, n,
        (float)wd,
        (float)(1.0 - o->lr * wd), /* AdamW: p *= 1 - lr*wd, computed in double */
        (float)c->beta1, (float)(1.0 - c->beta1),
        (float)c->beta2, (float)(1.0 - c->beta2),
        (float)sqrt(1.0 - pow(c->beta2, t)),
        (float)(-(o->lr / (1.0 - pow(c->beta1, t)))),
        (float)c->eps,
        c->kind == MTGRAD_OPTIM_ADAMW ? 2 : wd != 0.0 ? 1 : 0,
    };
    run_ranges(PICK(adam_range_plain, adam_range_fma), &a, n);
}

/* RMSprop, or Adagrad (alpha 1: the sum; its lr_decay is 0, so clr = lr / (1 + 0) = lr). */
static void rms_update(const mtgrad_optimizer *o, float *p, float *v, const float *g, int64_t n,
                       double wd)
{
    const int adagrad = family(o->c.kind) == MTGRAD_OPTIM_ADAGRAD;
    const double alpha = adagrad ? 1.0 : o->c.beta2;
    rms_args a = {p, v, g, n, (float)wd, (float)alpha, (float)(adagrad ? 1.0 : 1.0 - alpha),
                  (float)(-o->lr), (float)o->c.eps, wd != 0.0};
    run_ranges(PICK(rms_range_plain, rms_range_fma), &a, n);
}

/* The plain update of the family of o on elements [off, off + n) of its moments. */
static void plain_update(mtgrad_optimizer *o, float *p, const float *g, int64_t off, int64_t n)
{
    const double wd = o->c.weight_decay;
    switch (family(o->c.kind)) {
    case MTGRAD_OPTIM_SGD: sgd_update(o, p, g, n); break;
    case MTGRAD_OPTIM_ADAM:
    case MTGRAD_OPTIM_ADAMW: adam_update(o, p, o->m + off, o->v + off, g, n, wd); break;
    default: rms_update(o, p, o->v + off, g, n, wd); break;
    }
}

/* A loaded state may hold any count: saturate. */
static void count_step(mtgrad_optimizer *o)
{
    if (o->step < INT64_MAX) o->step++;
}

mtgrad_status mtgrad_optimizer_step(mtgrad_optimizer *o, float *params, const float *grad)
{
    if (!o || !params || !grad || (const float *)params == grad) return MTGRAD_E_INVAL;
    if (is_adatask(o->c.kind)) return MTGRAD_E_UNSUPPORTED; /* needs the per-task gradients */
    /* Checked before anything is written, so a NaN gradient (or parameter) leaves all as it was. */
    if (!all_finite(grad, o->n) || !all_finite(params, o->n)) return MTGRAD_E_NONFINITE;
    plain_update(o, params, grad, 0, o->n);
    count_step(o);
    /* Finite inputs can still overflow (SGD with |g| near FLT_MAX); say so rather than go on. */
    if (!all_finite(params, o->n)) return MTGRAD_E_NONFINITE;
    return MTGRAD_OK;
}

/* AdaTask: task i's moments take the plain update (no weight decay) on row i of G, and the
 * shared parameters move by that task's step before the next task's (the reference's
 * p.addcdiv_ inside the task loop). Elements stay independent, so threads keep the bits. */
static void adatask_shared(mtgrad_optimizer *o, float *p, const float *G, int64_t ldg)
{
    const int64_t d = o->d;
    for (int64_t i = 0; i < o->k; i++) {
        const float *g = G + i * ldg;
        if (family(o->c.kind) == MTGRAD_OPTIM_ADAM)
            adam_update(o, p, o->m + i * d, o->v + i * d, g, d, 0.0);
        else
            rms_update(o, p, o->v + i * d, g, d, 0.0);
    }
}

static int tasks_finite(const mtgrad_optimizer *o, const float *params, const float *grad,
                        const float *G, int64_t ldg)
{
    for (int64_t i = 0; o->d > 0 && i < o->k; i++)
        if (!all_finite(G + i * ldg, o->d)) return 0;
    if (o->n > o->d && !all_finite(grad + o->d, o->n - o->d)) return 0;
    return all_finite(params, o->n);
}

mtgrad_status mtgrad_optimizer_step_tasks(mtgrad_optimizer *o, float *params, const float *grad,
                                          const float *G, int64_t ldg)
{
    if (!o || !params) return MTGRAD_E_INVAL;
    if (!is_adatask(o->c.kind)) return MTGRAD_E_UNSUPPORTED;
    const int64_t d = o->d, n = o->n;
    /* G is read only when there are shared parameters, grad only when there are others */
    if ((d > 0 && !G) || (n > d && !grad) || ldg < d || (const float *)params == grad)
        return MTGRAD_E_INVAL;
    if (!tasks_finite(o, params, grad, G, ldg)) return MTGRAD_E_NONFINITE;
    if (d > 0) adatask_shared(o, params, G, ldg);
    if (n > d) plain_update(o, params + d, grad + d, o->k * d, n - d);
    count_step(o);
    if (!all_finite(params, n)) return MTGRAD_E_NONFINITE;
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ save / load */

/* Same conventions as mtgrad_aggregator_save: little-endian u64 fields, a CRC32 in a u64 slot.
 * magic "MTGRADOP" | version | kind | n | step | epoch | has_buf | n_arrays | [k | d] | arrays
 * of float32 bits (u32 each: SGD with momentum 1 array, Adam/AdamW 2, RMSprop/Adagrad 1, SGD
 * without momentum 0) | crc. Plain kinds: arrays of n floats, no k, d. AdaTask kinds: k and d
 * (two u64 after the header), arrays of k*d + n - d floats (the per-task moments first). */
static const unsigned char optim_magic[8] = {'M', 'T', 'G', 'R', 'A', 'D', 'O', 'P'};
#define OPTIM_STATE_VERSION 1u
#define OPTIM_HEADER 64


static void put_f32s(unsigned char *p, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        for (int b = 0; b < 4; b++) p[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
}

/* Returns 0 if a value is not finite (nothing is then trusted). */
static int get_f32s(const unsigned char *p, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = 0;
        for (int b = 0; b < 4; b++) u |= (uint32_t)p[4 * i + b] << (8 * b);
        memcpy(&x[i], &u, sizeof u);
        if (!isfinite(x[i])) return 0;
    }
    return 1;
}

static uint64_t n_arrays(const mtgrad_optimizer *o) { return (uint64_t)(o->m != NULL) + (o->v != NULL); }

/* Where the arrays start: after the header, and after k and d for an AdaTask kind. */
static size_t arrays_off(const mtgrad_optimizer *o) { return OPTIM_HEADER + (is_adatask(o->c.kind) ? 16 : 0); }

static size_t optim_state_bytes(const mtgrad_optimizer *o)
{
    return arrays_off(o) + (size_t)n_arrays(o) * 4 * (size_t)moment_len(o) + 8;
}

mtgrad_status mtgrad_optimizer_save(const mtgrad_optimizer *o, void *buf, size_t *len)
{
    if (!o || !len) return MTGRAD_E_INVAL;
    size_t need = optim_state_bytes(o);
    if (!buf) {
        *len = need;
        return MTGRAD_OK;
    }
    if (*len < need) {
        *len = need;
        return MTGRAD_E_IO;
    }
    unsigned char *p = buf;
    memcpy(p, optim_magic, 8);
    mtgradi_put_u64(p + 8, OPTIM_STATE_VERSION);
    mtgradi_put_u64(p + 16, (uint64_t)o->c.kind);
    mtgradi_put_u64(p + 24, (uint64_t)o->n);
    mtgradi_put_u64(p + 32, (uint64_t)o->step);
    mtgradi_put_u64(p + 40, (uint64_t)o->epoch);
    mtgradi_put_u64(p + 48, (uint64_t)o->has_buf);
    mtgradi_put_u64(p + 56, n_arrays(o));
    if (is_adatask(o->c.kind)) {
        mtgradi_put_u64(p + OPTIM_HEADER, (uint64_t)o->k);
        mtgradi_put_u64(p + OPTIM_HEADER + 8, (uint64_t)o->d);
    }
    const int64_t mlen = moment_len(o);
    size_t off = arrays_off(o);
    if (o->m) put_f32s(p + off, o->m, mlen), off += 4 * (size_t)mlen;
    if (o->v) put_f32s(p + off, o->v, mlen), off += 4 * (size_t)mlen;
    mtgradi_put_u64(p + off, mtgradi_crc32(p, off));
    *len = need;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_optimizer_load(mtgrad_optimizer *o, const void *buf, size_t len)
{
    if (!o || !buf) return MTGRAD_E_INVAL;
    const unsigned char *p = buf;
    size_t need = optim_state_bytes(o);
    if (len < OPTIM_HEADER + 8 || memcmp(p, optim_magic, 8) != 0) return MTGRAD_E_STATE;
    if (mtgradi_get_u64(p + 8) != OPTIM_STATE_VERSION) return MTGRAD_E_STATE;
    if (mtgradi_get_u64(p + 16) != (uint64_t)o->c.kind || mtgradi_get_u64(p + 24) != (uint64_t)o->n) return MTGRAD_E_STATE;
    if (mtgradi_get_u64(p + 56) != n_arrays(o) || len != need) return MTGRAD_E_STATE;
    if (is_adatask(o->c.kind) && (mtgradi_get_u64(p + OPTIM_HEADER) != (uint64_t)o->k ||
                                  mtgradi_get_u64(p + OPTIM_HEADER + 8) != (uint64_t)o->d))
        return MTGRAD_E_STATE;
    if (mtgradi_crc32(p, need - 8) != mtgradi_get_u64(p + need - 8)) return MTGRAD_E_STATE;
    uint64_t step = mtgradi_get_u64(p + 32), epoch = mtgradi_get_u64(p + 40), has_buf = mtgradi_get_u64(p + 48);
    if (step > INT64_MAX || epoch > INT64_MAX || has_buf > 1) return MTGRAD_E_STATE;

    /* Decode into scratch first so a bad value leaves the optimizer as it was. */
    size_t arrays = (size_t)n_arrays(o), mlen = (size_t)moment_len(o);
    float *tmp = NULL;
    if (arrays) {
        tmp = mtgradi_malloc(arrays * mlen * sizeof(float));
        if (!tmp) return MTGRAD_E_NOMEM;
        if (!get_f32s(p + arrays_off(o), tmp, (int64_t)(arrays * mlen))) {
            free(tmp);
            return MTGRAD_E_STATE;
        }
    }
    size_t off = 0;
    if (o->m) memcpy(o->m, tmp + off, mlen * sizeof(float)), off += mlen;
    if (o->v) memcpy(o->v, tmp + off, mlen * sizeof(float));
    free(tmp);
    o->step = (int64_t)step;
    o->has_buf = (int)has_buf;
    mtgrad_optimizer_set_epoch(o, (int64_t)epoch);
    return MTGRAD_OK;
}
