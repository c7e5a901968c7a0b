/*
 * mtl_step_double.c — SDMGrad's double sampling (methods.md 7.1, 7.3; LibMTL's trainer): three
 * independent batches per step. The weights come from the cross Gram C = G(b1) G(b2)^T of two
 * of them (an unbiased estimate of M, which the same-batch Gram is not), the direction from the
 * third: d = G(b0)^T w; the heads get batch 0's gradients (w_i-weighted if the method has
 * MTGRAD_HEADS_WEIGHTED).
 * The passes run batch 1, batch 2, then batch 0, so that the model is left with batch 0's
 * forward state (what a later backward or re-evaluation expects) and the step's losses are batch
 * 0's; the dropout stream is consumed in that order. Three G buffers (k x d each).
 */
#define _POSIX_C_SOURCE 200809L
#include "nn/mtl_step_internal.h"

#include <stdio.h>
#include <string.h>

int mtgradi_step_wants_double(const mtgrad_aggregator *a)
{
    char buf[32];
    if (!(mtgrad_method_flags(mtgrad_aggregator_method(a)) & MTGRAD_CROSS_GRAM)) return 0;
    int n = mtgrad_aggregator_get_param(a, "sampling", buf, sizeof buf);
    return n >= 0 && (size_t)n < sizeof buf && strcmp(buf, "double") == 0;
}

mtgrad_status mtgradi_step_double_setup(mtgrad_mtl_step *s, char *err, size_t errlen)
{
    size_t kd = (size_t)s->k * (size_t)s->d;
    s->G1 = mtgradi_calloc(kd, sizeof *s->G1);
    s->G2 = mtgradi_calloc(kd, sizeof *s->G2);
    s->M = mtgradi_step_alloc_gram(s);
    if (!s->G1 || !s->G2 || !s->M)
        return mtgradi_errmsg(err, errlen, MTGRAD_E_NOMEM, "mtl step: out of memory");
    return MTGRAD_OK;
}

/* Forward of batch b and its k per-task rows into dst (heads into grad for batch 0 only). */
static mtgrad_status batch_rows(mtgrad_mtl_step *s, const float *x, const float *targets,
                                int64_t n, int b, float *dst, double *t)
{
    char what[48];
    snprintf(what, sizeof what, "forward of batch %d", b);
    double t0 = mtgradi_now();
    mtgrad_status st = mtgradi_step_forward(s, x, targets, n, b == 0 ? s->losses : s->losses_after,
                                            what);
    double t1 = mtgradi_now();
    t[MTGRAD_TIME_FORWARD] += t1 - t0;
    if (st != MTGRAD_OK) return st;
    snprintf(what, sizeof what, " on batch %d", b);
    st = mtgradi_step_task_rows(s, dst, b == 0 ? s->grad : NULL, what);
    if (st != MTGRAD_OK) return st;
    t[MTGRAD_TIME_BACKWARD] += mtgradi_now() - t1;
    return MTGRAD_OK;
}

mtgrad_status mtgradi_step_double_grad(mtgrad_mtl_step *s, const float *const *x,
                                       const float *const *targets, int64_t n, double *t)
{
    float *dst[3] = {s->G, s->G1, s->G2};
    static const int order[3] = {1, 2, 0};
    for (int q = 0; q < 3; q++) {
        int b = order[q];
        mtgrad_status st = batch_rows(s, x[b], targets[b], n, b, dst[b], t);
        if (st != MTGRAD_OK) return st;
    }
    double t0 = mtgradi_now();
    mtgrad_status st = mtgradi_step_cross_gram(s, s->G1, s->G2, s->k, s->d, s->d, s->M,
                                               "batches 1 and 2");
    if (st != MTGRAD_OK) return st;
    double t1 = mtgradi_now();
    st = mtgrad_weights_from_cross_gram(s->a, s->M, s->k,
                                        mtgradi_step_method_losses(s, s->losses), s->w);
    st = mtgradi_step_solver(s, s->a, st, "weights from the cross Gram");
    if (st != MTGRAD_OK) return st;
    double t2 = mtgradi_now();
    if (mtgrad_combine_f32(s->G, s->k, s->d, s->d, s->w, s->grad) != MTGRAD_OK)
        return mtgradi_step_fail(s, MTGRAD_E_NONFINITE, "the direction G(batch 0)^T w is not finite");
    mtgradi_step_clip(s);
    if (s->flags & MTGRAD_HEADS_WEIGHTED) mtgradi_step_weight_heads(s, s->w);
    s->have_w = 1;
    t[MTGRAD_TIME_GRAM] += t1 - t0;
    t[MTGRAD_TIME_SOLVE] += t2 - t1;
    t[MTGRAD_TIME_COMBINE] += mtgradi_now() - t2;
    return MTGRAD_OK;
}
