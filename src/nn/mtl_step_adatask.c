/*
 * mtl_step_adatask.c — the step with an AdaTask optimizer (methods.md 8): the optimizer keeps
 * per-task moments on the shared parameters, so it takes the k per-task trunk gradients rather
 * than one direction. The method only supplies task weights w (ls: its preference weights,
 * which are AdaTask's task weights omega): row i of G becomes the gradient of w_i L_i, head i
 * gets w_i grad L_i, and mtgrad_optimizer_step_tasks does the rest.
 * Weights: loss-only methods from the losses, Gram-only methods from M = G G^T, Jacobian methods
 * from their aggregation (its direction is discarded), DWA from the epoch's weights.
 * Clipping (max_norm): the per-task steps have no single gradient to clip, so the rows are
 * scaled by the coefficient that clip_grad_norm_ would apply to sum_i w_i g_i (which the trunk
 * slice of the step's gradient holds, for mtgrad_mtl_step_grad); the heads keep w_i grad L_i.
 */
#define _POSIX_C_SOURCE 200809L
#include "nn/mtl_step_internal.h"

#include <string.h>

mtgrad_status mtgradi_step_adatask_setup(mtgrad_mtl_step *s, char *err, size_t errlen)
{
    if (s->d < 1)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_SHAPE, "mtl step: an AdaTask optimizer needs "
                              "shared parameters, and the model has none");
    if (!mtgrad_optimizer_per_task(s->o))
        return mtgradi_errmsg(err, errlen, MTGRAD_E_STATE, "mtl step: the AdaTask optimizer "
                              "does not keep per-task moments");
    if ((s->flags & MTGRAD_NEEDS_GRAM) && !(s->flags & MTGRAD_NEEDS_JACOBIAN)) {
        s->M = mtgradi_step_alloc_gram(s);
        if (!s->M) return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    }
    return MTGRAD_OK;
}

static mtgrad_status adatask_weights(mtgrad_mtl_step *s, double *t)
{
    const double *L = mtgradi_step_method_losses(s, s->losses);
    mtgrad_status st;
    double t0 = mtgradi_now();
    if (s->per_epoch) {
        memcpy(s->w, s->epoch_w, (size_t)s->k * sizeof *s->w);
        return MTGRAD_OK;
    } else if (s->loss_only) {
        st = mtgrad_weights_from_gram(s->a, NULL, s->k, L, s->w);
    } else if (s->flags & MTGRAD_NEEDS_JACOBIAN) {
        st = mtgrad_aggregate_f32(s->a, s->G, s->k, s->d, s->d, L, s->grad, s->w);
    } else {
        return mtgradi_step_gram_weights(s, s->G, s->d, s->d, "G", t);
    }
    t[MTGRAD_TIME_SOLVE] += mtgradi_now() - t0;
    return mtgradi_step_solver(s, s->a, st, "weights");
}

mtgrad_status mtgradi_step_adatask_grad(mtgrad_mtl_step *s, double *t)
{
    double t0 = mtgradi_now();
    mtgrad_status st = mtgradi_step_task_rows(s, s->G, s->grad, "");
    if (st != MTGRAD_OK) return st;
    t[MTGRAD_TIME_BACKWARD] += mtgradi_now() - t0;
    st = adatask_weights(s, t);
    if (st != MTGRAD_OK) return st;
    double t1 = mtgradi_now();
    if (mtgrad_combine_f32(s->G, s->k, s->d, s->d, s->w, s->grad) != MTGRAD_OK)
        return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "sum_i w_i g_i is not finite");
    double before = mtgradi_step_norm(s->grad, s->d);
    mtgradi_step_clip(s);
    double after = mtgradi_step_norm(s->grad, s->d);
    double coef = s->max_norm > 0 && after < before ? s->max_norm / (before + 1e-6) : 1.0;
    for (int64_t i = 0; i < s->k; i++) {
        double wi = s->w[i] * coef;
        float *row = s->G + i * s->d;
        if (wi != 1.0)
            for (int64_t j = 0; j < s->d; j++) row[j] = (float)(wi * (double)row[j]);
    }
    mtgradi_step_weight_heads(s, s->w);
    t[MTGRAD_TIME_COMBINE] += mtgradi_now() - t1;
    return MTGRAD_OK;
}
