/*
 * loss.c — the per-task losses (mean over the batch) and their gradients with respect to the
 * head's output:
 *   CE   softmax cross-entropy, log-sum-exp shifted by the row maximum (no overflow);
 *        d/dz = (softmax(z) - onehot(y)) / n
 *   MSE  (z - y)^2;                                       d/dz = 2 (z - y) / n
 *   BCE  with logits, max(z, 0) - z y + log1p(exp(-|z|)) (torch's stable form);
 *        d/dz = (sigmoid(z) - y) / n
 * Everything is computed in double and the loss is accumulated in double (style.md: float32 data,
 * double where accuracy matters); the gradient is rounded to float once.
 */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>


/* Targets first, so that a bad label is reported as such rather than as a NaN loss. */
static mtgrad_status check_targets(mtgrad_loss_kind kind, int64_t task, int64_t n, int64_t width,
                                   const float *t, char *err, size_t errlen)
{
    for (int64_t s = 0; s < n; s++) {
        double y = t[s];
        if (kind == MTGRAD_LOSS_CE && !(y >= 0 && y < (double)width && y == floor(y)))
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                        "task %lld, sample %lld: class index %g is not an integer in [0, %lld)",
                        (long long)task, (long long)s, y, (long long)width);
        if (kind == MTGRAD_LOSS_BCE && !(y >= 0 && y <= 1))
            return mtgradi_errmsg(err, errlen, MTGRAD_E_INVAL,
                        "task %lld, sample %lld: BCE target %g is not in [0, 1]", (long long)task,
                        (long long)s, y);
    }
    return MTGRAD_OK;
}

/* One sample of CE: returns the loss, writes the gradient row (scaled by inv_n) if g != NULL. */
static double ce_row(const float *z, int64_t width, int64_t label, double inv_n, float *g)
{
    double mx = z[0];
    for (int64_t j = 1; j < width; j++)
        if (z[j] > mx) mx = z[j];
    double sum = 0;
    for (int64_t j = 0; j < width; j++) sum += exp((double)z[j] - mx);
    double lse = mx + log(sum);
    if (g)
        for (int64_t j = 0; j < width; j++)
            g[j] = (float)((exp((double)z[j] - lse) - (j == label ? 1.0 : 0.0)) * inv_n);
    return lse - z[label];
}

static double bce_one(double z, double y, double inv_n, float *g)
{
    if (g) {
        double sig = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
        *g = (float)((sig - y) * inv_n);
    }
    return (z > 0 ? z : 0.0) - z * y + log1p(exp(-fabs(z)));
}

mtgrad_status mtgradi_loss(mtgrad_loss_kind kind, int64_t task, int64_t n, int64_t width,
                           const float *out, const float *target, double *loss, float *dout,
                           char *err, size_t errlen)
{
    mtgrad_status st = check_targets(kind, task, n, width, target, err, errlen);
    if (st != MTGRAD_OK) return st;
    const double inv_n = 1.0 / (double)n;
    double sum = 0;
    for (int64_t s = 0; s < n; s++) {
        const float *z = out + s * width;
        float *g = dout ? dout + s * width : NULL;
        double y = target[s];
        switch (kind) {
        case MTGRAD_LOSS_CE: sum += ce_row(z, width, (int64_t)y, inv_n, g); break;
        case MTGRAD_LOSS_MSE:
            sum += (z[0] - y) * (z[0] - y);
            if (g) g[0] = (float)(2.0 * (z[0] - y) * inv_n);
            break;
        case MTGRAD_LOSS_BCE: sum += bce_one(z[0], y, inv_n, g); break;
        }
    }
    *loss = sum * inv_n;
    if (!isfinite(*loss))
        /* fabs: a NaN's sign bit depends on the compiler (clang's 0·inf gives -nan), the message not */
        return mtgradi_errmsg(err, errlen, MTGRAD_E_NONFINITE, "task %lld: the loss is %g", (long long)task,
                    isnan(*loss) ? fabs(*loss) : *loss);
    return MTGRAD_OK;
}
