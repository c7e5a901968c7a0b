/* aggregator.c — life cycle of an aggregator and the generic aggregation pipeline:
 * validate → (Gram) → method → combine → (clip), with state rolled back on failure. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TASKS 65536 /* k*k doubles of Gram must stay allocatable */

static const char null_agg_msg[] = "aggregator is NULL";

const mtgrad_method *mtgrad_aggregator_method(const mtgrad_aggregator *a) { return a ? a->m : NULL; }
int64_t mtgrad_aggregator_k(const mtgrad_aggregator *a) { return a ? a->k : 0; }
const char *mtgrad_aggregator_error(const mtgrad_aggregator *a) { return a ? a->err : null_agg_msg; }

static uint64_t seed_of(const mtgrad_aggregator *a)
{
    return (uint64_t)a->pv[a->m->n_params + MTGRADI_COMMON_SEED];
}

static void reset_state(mtgrad_aggregator *a)
{
    if (a->n_state) memset(a->state, 0, a->n_state * sizeof *a->state);
    if (a->m->reset) a->m->reset(a);
    a->step = 0;
    a->draws_pending = 0;
    mtgradi_rng_seed(&a->rng, seed_of(a));
}

void mtgrad_aggregator_free(mtgrad_aggregator *a)
{
    if (!a) return;
    for (int i = 0; i < MTGRADI_MAX_PARAMS; i++) free(a->plist[i]);
    free(a->M);
    free(a->w);
    free(a->partials);
    free(a->work);
    free(a->state);
    free(a->backup);
    free(a->draws);
    free(a);
}

static mtgrad_status alloc_buffers(mtgrad_aggregator *a)
{
    size_t k = (size_t)a->k;
    a->n_state = a->m->state_size ? a->m->state_size(a->k) : 0;
    a->n_work = a->m->work_size ? a->m->work_size(a->k) : 0;
    a->M = mtgradi_malloc(k * k * sizeof *a->M);
    a->w = mtgradi_malloc(k * sizeof *a->w);
    a->partials = mtgradi_malloc(mtgradi_gram_work_size(a->k) * sizeof *a->partials);
    a->work = a->n_work ? mtgradi_malloc(a->n_work * sizeof *a->work) : NULL;
    a->state = a->n_state ? mtgradi_calloc(a->n_state, sizeof *a->state) : NULL;
    a->backup = a->n_state ? mtgradi_malloc(a->n_state * sizeof *a->backup) : NULL;
    if (!a->M || !a->w || !a->partials || (a->n_work && !a->work) || (a->n_state && (!a->state || !a->backup)))
        return mtgradi_fail(a, MTGRAD_E_NOMEM, "out of memory allocating buffers for k = %lld",
                            (long long)a->k);
    return MTGRAD_OK;
}

mtgrad_status mtgrad_aggregator_new(mtgrad_aggregator **out, const char *method, int64_t k,
                                    const char *params, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out) {
        if (err && errlen) snprintf(err, errlen, "aggregator_new: out is NULL");
        return MTGRAD_E_INVAL;
    }
    *out = NULL;
    if (!method) {
        if (err && errlen) snprintf(err, errlen, "aggregator_new: method name is NULL");
        return MTGRAD_E_INVAL;
    }
    const mtgrad_method *m = mtgrad_method_by_name(method);
    if (!m) {
        if (err && errlen)
            snprintf(err, errlen, "unknown method '%s' ('mtgrad methods' lists them)", method);
        return MTGRAD_E_INVAL;
    }
    if (k < 1 || k > MAX_TASKS) {
        if (err && errlen)
            snprintf(err, errlen, "%s: k = %lld tasks; need 1 <= k <= %d", method, (long long)k, MAX_TASKS);
        return MTGRAD_E_SHAPE;
    }
    mtgrad_aggregator *a = mtgradi_calloc(1, sizeof *a);
    if (!a) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return MTGRAD_E_NOMEM;
    }
    a->m = m;
    a->k = k;
    mtgrad_status s = mtgradi_params_defaults(a);
    if (s == MTGRAD_OK && m->check) s = m->check(a);
    if (s == MTGRAD_OK) s = mtgradi_params_parse(a, params);
    if (s == MTGRAD_OK) s = alloc_buffers(a);
    if (s != MTGRAD_OK) {
        if (err && errlen) snprintf(err, errlen, "%s", a->err);
        mtgrad_aggregator_free(a);
        return s;
    }
    reset_state(a);
    *out = a;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_aggregator_times(const mtgrad_aggregator *a, double t[3])
{
    if (!a || !t) return MTGRAD_E_INVAL;
    for (int i = 0; i < 3; i++) t[i] = a->times[i];
    return MTGRAD_OK;
}

mtgrad_status mtgrad_aggregator_clip_scale(const mtgrad_aggregator *a, double *scale)
{
    if (!a || !scale) return MTGRAD_E_INVAL;
    *scale = a->clip_scale > 0 ? a->clip_scale : 1.0;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_aggregator_reset(mtgrad_aggregator *a)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    reset_state(a);
    return MTGRAD_OK;
}

const double *mtgradi_take_draws(mtgrad_aggregator *a, size_t n, int *bad)
{
    *bad = 0;
    if (!a->draws_pending) return NULL;
    if (a->n_draws != n) {
        *bad = 1;
        return NULL;
    }
    a->draws_pending = 0;
    return a->draws;
}

mtgrad_status mtgrad_aggregator_set_draws(mtgrad_aggregator *a, const double *draws, size_t n)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    if (!(a->m->flags & MTGRAD_NEEDS_RANDOM))
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED, "%s draws no random numbers", a->m->name);
    if (!draws || n == 0) return mtgradi_fail(a, MTGRAD_E_INVAL, "set_draws: draws is NULL or empty");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(draws[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "set_draws: draws[%zu] is not finite", i);
    if (n > a->cap_draws) {
        double *p = mtgradi_realloc(a->draws, n * sizeof *p);
        if (!p) return mtgradi_fail(a, MTGRAD_E_NOMEM, "out of memory");
        a->draws = p;
        a->cap_draws = n;
    }
    memcpy(a->draws, draws, n * sizeof *draws);
    a->n_draws = n;
    a->draws_pending = 1;
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ the pipeline */

static int ok_status(mtgrad_status s)
{
    return s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS;
}

static mtgrad_status check_losses(mtgrad_aggregator *a, const double *losses)
{
    if (!(a->m->flags & MTGRAD_NEEDS_LOSSES)) return MTGRAD_OK;
    if (!losses)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "%s needs the %lld task losses (losses is NULL)",
                            a->m->name, (long long)a->k);
    for (int64_t i = 0; i < a->k; i++)
        if (!isfinite(losses[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "losses[%lld] = %g is not finite",
                                (long long)i, losses[i]);
    return MTGRAD_OK;
}

/* Snapshot of everything a failed call must not change. */
typedef struct {
    mtgradi_rng rng;
    int draws_pending;
} snapshot;

static void save_snapshot(mtgrad_aggregator *a, snapshot *s)
{
    s->rng = a->rng;
    s->draws_pending = a->draws_pending;
    if (a->n_state) memcpy(a->backup, a->state, a->n_state * sizeof *a->state);
}

static void restore_snapshot(mtgrad_aggregator *a, const snapshot *s)
{
    a->rng = s->rng;
    a->draws_pending = s->draws_pending;
    if (a->n_state) memcpy(a->state, a->backup, a->n_state * sizeof *a->state);
}

static mtgrad_status check_weights(mtgrad_aggregator *a, const double *w)
{
    for (int64_t i = 0; i < a->k; i++)
        if (!isfinite(w[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE,
                                "%s: weight %lld is not finite (input out of the representable range?)",
                                a->m->name, (long long)i);
    return MTGRAD_OK;
}

/* Which row of G holds a non-finite value (or overflows when squared), for the message. */
static mtgrad_status nonfinite_gram(mtgrad_aggregator *a, const double *M)
{
    for (int64_t i = 0; i < a->k; i++)
        if (!isfinite(M[i * a->k + i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE,
                                "row %lld of G contains NaN/Inf (or its squared norm overflows)",
                                (long long)i);
    return mtgradi_fail(a, MTGRAD_E_NONFINITE, "the Gram matrix of G overflows");
}

static int gram_finite(const double *M, int64_t k)
{
    for (int64_t i = 0; i < k * k; i++)
        if (!isfinite(M[i])) return 0;
    return 1;
}

static double out_norm(const mtgradi_out *o)
{
    double s = 0;
    for (int64_t j = 0; j < o->d; j++) {
        double v = o->f32 ? (double)o->f32[j] : o->f64[j];
        s += v * v;
    }
    return sqrt(s);
}

static void out_scale(const mtgradi_out *o, double c)
{
    for (int64_t j = 0; j < o->d; j++) {
        if (o->f32) o->f32[j] = (float)((double)o->f32[j] * c);
        else o->f64[j] *= c;
    }
}

static int out_finite(const mtgradi_out *o)
{
    for (int64_t j = 0; j < o->d; j++) {
        double v = o->f32 ? (double)o->f32[j] : o->f64[j];
        if (!isfinite(v)) return 0;
    }
    return 1;
}

/* A non-finite direction has two causes that need different fixes from the caller: a NaN/Inf
 * in G (name the entry) or finite G whose combination overflows the output type. */
static mtgrad_status nonfinite_direction(mtgrad_aggregator *a, const mtgradi_mat *G)
{
    for (int64_t i = 0; i < G->k; i++)
        for (int64_t j = 0; j < G->d; j++) {
            double v = G->f32 ? (double)G->f32[i * G->ld + j] : G->f64[i * G->ld + j];
            if (!isfinite(v))
                return mtgradi_fail(a, MTGRAD_E_NONFINITE, "G[%lld][%lld] is %s", (long long)i,
                                    (long long)j, isnan(v) ? "NaN" : "Inf");
        }
    return mtgradi_fail(a, MTGRAD_E_NONFINITE, "the direction overflows %s although G is finite "
                        "(rescale the gradients)", G->f32 ? "float32" : "float64");
}

/* torch's clip_grad_norm_ factor for a direction of this norm, applied to the weights (and
 * recorded as clip_scale); returns it (1 when no clipping). */
static double clip_weights(mtgrad_aggregator *a, double norm)
{
    double coef = mtgradi_clip_coef(a->clip_norm, norm);
    a->clip_scale = coef < 1.0 ? coef : 1.0;
    if (coef < 1.0)
        for (int64_t i = 0; i < a->k; i++) a->w[i] *= coef;
    return coef;
}

static mtgrad_status run_gram_method(mtgrad_aggregator *a, const mtgradi_mat *G,
                                     const double *losses, const mtgradi_out *out)
{
    const double *M = NULL;
    double t0 = mtgradi_now();
    if (a->m->flags & MTGRAD_NEEDS_GRAM) {
        mtgradi_gram(G, a->M, a->partials, mtgradi_threads(a));
        if (!gram_finite(a->M, a->k)) return nonfinite_gram(a, a->M);
        M = a->M;
    }
    double t1 = mtgradi_now();
    mtgrad_status s = a->m->weights(a, M, losses, a->w);
    if (!ok_status(s)) return s;
    mtgrad_status c = check_weights(a, a->w);
    if (c != MTGRAD_OK) return c;
    double t2 = mtgradi_now();
    a->times[0] = M ? t1 - t0 : 0.0;
    a->times[1] = t2 - t1;
    /* With M the clipped norm ||G^T w|| = sqrt(w^T M w) is known before the combination, so the
     * clip folds into w and G is read once; without M the direction must exist first. */
    if (a->clip_norm > 0 && M) clip_weights(a, sqrt(fmax(mtgradi_quad(M, a->k, a->w), 0.0)));
    if (!mtgradi_combine(G, a->w, out, mtgradi_threads(a)))
        return nonfinite_direction(a, G);
    if (a->clip_norm > 0 && !M) {
        double coef = clip_weights(a, out_norm(out));
        if (coef < 1.0) out_scale(out, coef);
    }
    a->times[2] = mtgradi_now() - t2;
    return s;
}

static mtgrad_status aggregate(mtgrad_aggregator *a, const mtgradi_mat *G, const double *losses,
                               const mtgradi_out *out, double *weights)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    if (!G->f32 && !G->f64) return mtgradi_fail(a, MTGRAD_E_INVAL, "G is NULL");
    if (!out->f32 && !out->f64) return mtgradi_fail(a, MTGRAD_E_INVAL, "direction is NULL");
    if (G->k != a->k)
        return mtgradi_fail(a, MTGRAD_E_SHAPE, "k = %lld, but this %s aggregator has k = %lld",
                            (long long)G->k, a->m->name, (long long)a->k);
    if (G->d < 1) return mtgradi_fail(a, MTGRAD_E_SHAPE, "d = %lld; need d >= 1", (long long)G->d);
    if (G->ld < G->d)
        return mtgradi_fail(a, MTGRAD_E_SHAPE, "ldg = %lld is smaller than d = %lld",
                            (long long)G->ld, (long long)G->d);
    if (weights && !(a->m->flags & MTGRAD_HAS_WEIGHTS))
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED,
                            "%s has no task weights (its update is not G^T w); pass weights = NULL",
                            a->m->name);
    mtgrad_status s = check_losses(a, losses);
    if (s != MTGRAD_OK) return s;

    snapshot snap;
    save_snapshot(a, &snap);
    a->clip_norm = 0;
    a->clip_scale = 1.0;
    if (a->m->direction) {
        double t0 = mtgradi_now();
        s = a->m->direction(a, G, losses, out, a->m->flags & MTGRAD_HAS_WEIGHTS ? a->w : NULL);
        a->times[0] = 0.0;
        a->times[1] = mtgradi_now() - t0;
        a->times[2] = 0.0;
        if (ok_status(s) && !out_finite(out))
            s = nonfinite_direction(a, G);
    } else {
        s = run_gram_method(a, G, losses, out);
    }
    if (!ok_status(s)) {
        restore_snapshot(a, &snap);
        return s;
    }
    if (weights) memcpy(weights, a->w, (size_t)a->k * sizeof *weights);
    if (a->step < INT64_MAX) a->step++; /* a loaded state may hold any count: saturate */
    return s;
}

mtgrad_status mtgrad_aggregate_f32(mtgrad_aggregator *a, const float *G, int64_t k, int64_t d,
                                   int64_t ldg, const double *losses, float *direction,
                                   double *weights)
{
    mtgradi_mat m = {G, NULL, k, d, ldg};
    mtgradi_out o = {direction, NULL, d};
    return aggregate(a, &m, losses, &o, weights);
}

mtgrad_status mtgrad_aggregate_f64(mtgrad_aggregator *a, const double *G, int64_t k, int64_t d,
                                   int64_t ldg, const double *losses, double *direction,
                                   double *weights)
{
    mtgradi_mat m = {NULL, G, k, d, ldg};
    mtgradi_out o = {NULL, direction, d};
    return aggregate(a, &m, losses, &o, weights);
}

/* Validation shared by the k x k entry points (Gram and cross Gram). */
static mtgrad_status check_kk_call(mtgrad_aggregator *a, int64_t k, double *weights)
{
    if (!weights) return mtgradi_fail(a, MTGRAD_E_INVAL, "weights is NULL");
    if (k != a->k)
        return mtgradi_fail(a, MTGRAD_E_SHAPE, "k = %lld, but this %s aggregator has k = %lld",
                            (long long)k, a->m->name, (long long)a->k);
    if (!a->m->weights)
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED,
                            "%s needs G element-wise; it cannot work from the Gram matrix", a->m->name);
    return MTGRAD_OK;
}

static mtgrad_status check_kk_finite(mtgrad_aggregator *a, const double *M, int64_t k, const char *name)
{
    for (int64_t i = 0; i < k * k; i++)
        if (!isfinite(M[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "%s[%lld][%lld] is not finite", name,
                                (long long)(i / k), (long long)(i % k));
    return MTGRAD_OK;
}

/* The method's weights from a validated k x k matrix M (or NULL), then clipping, with the state
 * rolled back on failure. */
static mtgrad_status weights_kk(mtgrad_aggregator *a, const double *M, int64_t k,
                                const double *losses, double *weights)
{
    mtgrad_status s = check_losses(a, losses);
    if (s != MTGRAD_OK) return s;
    snapshot snap;
    save_snapshot(a, &snap);
    a->clip_norm = 0;
    a->clip_scale = 1.0;
    s = a->m->weights(a, M, losses, a->w);
    if (ok_status(s)) {
        mtgrad_status c = check_weights(a, a->w);
        if (c != MTGRAD_OK) s = c;
    }
    if (ok_status(s) && a->clip_norm > 0) {
        if (!M) {
            s = mtgradi_fail(a, MTGRAD_E_INVAL, "%s: max_norm clipping needs M to know the direction's norm",
                             a->m->name);
        } else {
            (void)clip_weights(a, sqrt(fmax(mtgradi_quad(M, k, a->w), 0.0)));
        }
    }
    if (!ok_status(s)) {
        restore_snapshot(a, &snap);
        return s;
    }
    memcpy(weights, a->w, (size_t)k * sizeof *weights);
    if (a->step < INT64_MAX) a->step++;
    return s;
}

mtgrad_status mtgrad_weights_from_gram(mtgrad_aggregator *a, const double *M, int64_t k,
                                       const double *losses, double *weights)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    mtgrad_status s = check_kk_call(a, k, weights);
    if (s != MTGRAD_OK) return s;
    int needs_m = (a->m->flags & MTGRAD_NEEDS_GRAM) != 0;
    if (needs_m && !M) return mtgradi_fail(a, MTGRAD_E_INVAL, "%s needs the Gram matrix (M is NULL)", a->m->name);
    if (M) {
        s = check_kk_finite(a, M, k, "M");
        if (s != MTGRAD_OK) return s;
        for (int64_t i = 0; i < k; i++)
            if (M[i * k + i] < 0)
                return mtgradi_fail(a, MTGRAD_E_INVAL, "M[%lld][%lld] < 0: not a Gram matrix",
                                    (long long)i, (long long)i);
    }
    /* M goes on to every method that gets it: those without NEEDS_GRAM ignore it, except
     * marigold, which takes it as its exact oracle h = M w (methods.md 9) */
    return weights_kk(a, M, k, losses, weights);
}

mtgrad_status mtgrad_weights_from_cross_gram(mtgrad_aggregator *a, const double *C, int64_t k,
                                             const double *losses, double *weights)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    mtgrad_status s = check_kk_call(a, k, weights);
    if (s != MTGRAD_OK) return s;
    if (!(a->m->flags & MTGRAD_CROSS_GRAM))
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED,
                            "%s does not take a cross Gram of two batches (only methods with the "
                            "cross-Gram flag, e.g. sdmgrad sampling=double)", a->m->name);
    if (!C) return mtgradi_fail(a, MTGRAD_E_INVAL, "%s needs the cross Gram matrix (C is NULL)", a->m->name);
    /* no symmetry or diagonal-sign checks: C = G(a) G(b)^T has neither property */
    s = check_kk_finite(a, C, k, "C");
    if (s != MTGRAD_OK) return s;
    return weights_kk(a, C, k, losses, weights);
}

mtgrad_status mtgrad_aggregator_feedback(mtgrad_aggregator *a, const double *h, int64_t k)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    if (!(a->m->flags & MTGRAD_NEEDS_FEEDBACK) || !a->m->feedback)
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED, "%s takes no feedback (directional derivatives)",
                            a->m->name);
    if (k != a->k)
        return mtgradi_fail(a, MTGRAD_E_SHAPE, "k = %lld, but this %s aggregator has k = %lld",
                            (long long)k, a->m->name, (long long)a->k);
    if (!h) return mtgradi_fail(a, MTGRAD_E_INVAL, "feedback: h is NULL");
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(h[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "feedback: h[%lld] = %g is not finite",
                                (long long)i, h[i]);
    snapshot snap;
    save_snapshot(a, &snap);
    mtgrad_status s = a->m->feedback(a, h);
    if (!ok_status(s)) restore_snapshot(a, &snap);
    return s;
}

mtgrad_status mtgrad_aggregator_update(mtgrad_aggregator *a, const double *losses_after, int64_t k)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    if (!a->m->update)
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED, "%s takes no losses after the step", a->m->name);
    if (k != a->k)
        return mtgradi_fail(a, MTGRAD_E_SHAPE, "k = %lld, but this %s aggregator has k = %lld",
                            (long long)k, a->m->name, (long long)a->k);
    if (!losses_after) return mtgradi_fail(a, MTGRAD_E_INVAL, "losses_after is NULL");
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(losses_after[i]))
            return mtgradi_fail(a, MTGRAD_E_NONFINITE, "losses_after[%lld] = %g is not finite",
                                (long long)i, losses_after[i]);
    snapshot snap;
    save_snapshot(a, &snap);
    mtgrad_status s = a->m->update(a, losses_after);
    if (!ok_status(s)) restore_snapshot(a, &snap);
    return s;
}

/* ------------------------------------------------------------------ save / load */

static const unsigned char state_magic[8] = {'M', 'T', 'G', 'R', 'A', 'D', 'S', 'T'};
#define STATE_VERSION 1u
#define NAME_FIELD 32

/* magic | version u64 | name[32] | k | step | rng[4] | n_state | state[n] | crc32 (u64 slot) */
static size_t state_bytes(size_t n_state) { return 8 + 8 + NAME_FIELD + 8 + 8 + 32 + 8 + 8 * n_state + 8; }

mtgrad_status mtgrad_aggregator_save(const mtgrad_aggregator *a, void *buf, size_t *len)
{
    if (!a || !len) return MTGRAD_E_INVAL;
    size_t need = state_bytes(a->n_state);
    if (!buf) {
        *len = need;
        return MTGRAD_OK;
    }
    if (*len < need) {
        *len = need;
        return MTGRAD_E_IO;
    }
    unsigned char *p = buf;
    memcpy(p, state_magic, 8);
    mtgradi_put_u64(p + 8, STATE_VERSION);
    memset(p + 16, 0, NAME_FIELD);
    memcpy(p + 16, a->m->name, strlen(a->m->name) < NAME_FIELD ? strlen(a->m->name) : NAME_FIELD - 1);
    size_t o = 16 + NAME_FIELD;
    mtgradi_put_u64(p + o, (uint64_t)a->k), o += 8;
    mtgradi_put_u64(p + o, (uint64_t)a->step), o += 8;
    for (int i = 0; i < 4; i++) mtgradi_put_u64(p + o, a->rng.s[i]), o += 8;
    mtgradi_put_u64(p + o, (uint64_t)a->n_state), o += 8;
    for (size_t i = 0; i < a->n_state; i++) mtgradi_put_u64(p + o, mtgradi_f64_bits(a->state[i])), o += 8;
    mtgradi_put_u64(p + o, mtgradi_crc32(p, o));
    *len = need;
    return MTGRAD_OK;
}

mtgrad_status mtgrad_aggregator_load(mtgrad_aggregator *a, const void *buf, size_t len)
{
    if (!a) return MTGRAD_E_INVAL;
    a->err[0] = '\0';
    if (!buf) return mtgradi_fail(a, MTGRAD_E_INVAL, "load: buf is NULL");
    const unsigned char *p = buf;
    if (len < state_bytes(0) || memcmp(p, state_magic, 8) != 0)
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: not an mtgrad aggregator state (bad magic or too short)");
    if (mtgradi_get_u64(p + 8) != STATE_VERSION)
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: state format version %llu, this library reads %u",
                            (unsigned long long)mtgradi_get_u64(p + 8), STATE_VERSION);
    char name[NAME_FIELD + 1];
    memcpy(name, p + 16, NAME_FIELD);
    name[NAME_FIELD] = '\0';
    size_t o = 16 + NAME_FIELD;
    uint64_t k = mtgradi_get_u64(p + o);
    uint64_t n_state = mtgradi_get_u64(p + o + 48);
    if (strcmp(name, a->m->name) != 0)
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: state of method '%s', this aggregator is %s", name, a->m->name);
    if (k != (uint64_t)a->k || n_state != a->n_state)
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: state for k = %llu, this aggregator has k = %lld",
                            (unsigned long long)k, (long long)a->k);
    size_t need = state_bytes(a->n_state);
    if (len != need)
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: %zu bytes, expected %zu", len, need);
    if (mtgradi_crc32(p, need - 8) != mtgradi_get_u64(p + need - 8))
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: CRC mismatch (corrupt state)");
    if (mtgradi_get_u64(p + o + 8) > (uint64_t)INT64_MAX)
        return mtgradi_fail(a, MTGRAD_E_STATE, "load: negative step count (corrupt state)");
    for (size_t i = 0; i < a->n_state; i++)
        if (!isfinite(mtgradi_bits_f64(mtgradi_get_u64(p + o + 56 + 8 * i))))
            return mtgradi_fail(a, MTGRAD_E_STATE, "load: state value %zu is not finite", i);
    /* xoshiro256** never leaves the all-zero state: it would draw 0 forever (and rejection
     * sampling would never return); no saved generator can be in it. */
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) any |= mtgradi_get_u64(p + o + 16 + 8 * (size_t)i);
    if (any == 0) return mtgradi_fail(a, MTGRAD_E_STATE, "load: all-zero random generator state (corrupt state)");
    a->step = (int64_t)mtgradi_get_u64(p + o + 8);
    for (int i = 0; i < 4; i++) a->rng.s[i] = mtgradi_get_u64(p + o + 16 + 8 * (size_t)i);
    for (size_t i = 0; i < a->n_state; i++) a->state[i] = mtgradi_bits_f64(mtgradi_get_u64(p + o + 56 + 8 * i));
    a->draws_pending = 0;
    return MTGRAD_OK;
}
