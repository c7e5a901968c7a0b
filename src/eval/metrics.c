/*
 * metrics.c — the evaluation protocol: Δm% against a baseline, mean ± standard error over seeds,
 * mean rank within a table (benchmarks.md §1), and the test-set evaluation of a model (per-task
 * loss and metric). Sums run in a fixed order so that results do not depend on threads.
 */
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *mtgrad_time_name(int phase)
{
    static const char *const names[MTGRAD_TIME_COUNT] = {"forward", "backward", "gram", "solve",
                                                         "combine", "optim", "total"};
    return phase >= 0 && phase < MTGRAD_TIME_COUNT ? names[phase] : NULL;
}

int mtgrad_metric_higher_better(mtgrad_metric_kind m) { return m == MTGRAD_METRIC_ACCURACY; }

const char *mtgrad_metric_name(mtgrad_metric_kind m)
{
    return m == MTGRAD_METRIC_ACCURACY ? "accuracy" : m == MTGRAD_METRIC_MSE ? "mse" : "unknown";
}

mtgrad_status mtgrad_delta_m(const double *m, const double *b, const int *higher_better,
                             int64_t K, double *out)
{
    if (!m || !b || !higher_better || !out) return MTGRAD_E_INVAL;
    if (K < 1) return MTGRAD_E_SHAPE;
    double s = 0;
    for (int64_t j = 0; j < K; j++) {
        if (!isfinite(m[j]) || !isfinite(b[j])) return MTGRAD_E_NONFINITE;
        if (b[j] == 0) return MTGRAD_E_INVAL; /* a relative change from 0 is undefined */
        double rel = (m[j] - b[j]) / b[j];
        s += higher_better[j] ? -rel : rel;
    }
    *out = s / (double)K * 100.0;
    return isfinite(*out) ? MTGRAD_OK : MTGRAD_E_NONFINITE;
}

mtgrad_status mtgrad_mean_se(const double *x, int64_t n, double *mean, double *se)
{
    if (!x || !mean || !se) return MTGRAD_E_INVAL;
    if (n < 1) return MTGRAD_E_SHAPE;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return MTGRAD_E_NONFINITE;
        s += x[i];
    }
    double mu = s / (double)n, ss = 0;
    /* two-pass: the deviations are summed after the mean is known (no cancellation) */
    for (int64_t i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *se = n > 1 ? sqrt(ss / (double)(n - 1)) / sqrt((double)n) : 0.0;
    return isfinite(*se) ? MTGRAD_OK : MTGRAD_E_NONFINITE;
}

mtgrad_status mtgrad_mean_rank(const double *values, int64_t n_methods, int64_t K,
                               const int *higher_better, double *mr)
{
    if (!values || !higher_better || !mr) return MTGRAD_E_INVAL;
    if (n_methods < 1 || K < 1) return MTGRAD_E_SHAPE;
    for (int64_t i = 0; i < n_methods * K; i++)
        if (!isfinite(values[i])) return MTGRAD_E_NONFINITE;
    for (int64_t i = 0; i < n_methods; i++) mr[i] = 0;
    /* O(n^2) per metric: tables have tens of methods. rank = 1 + #better + (#ties - 1)/2 */
    for (int64_t j = 0; j < K; j++) {
        for (int64_t i = 0; i < n_methods; i++) {
            double v = values[i * K + j];
            int64_t better = 0, ties = 0;
            for (int64_t o = 0; o < n_methods; o++) {
                double u = values[o * K + j];
                if (u == v) ties++;
                else if (higher_better[j] ? u > v : u < v) better++;
            }
            mr[i] += 1.0 + (double)better + (double)(ties - 1) / 2.0;
        }
    }
    for (int64_t i = 0; i < n_methods; i++) mr[i] /= (double)K;
    return MTGRAD_OK;
}

/* The metric of one head's outputs on n samples, as a sum (divided by n by the caller). */
static double metric_sum(mtgrad_loss_kind kind, const float *out, int64_t width,
                         const float *target, int64_t n)
{
    double s = 0;
    for (int64_t j = 0; j < n; j++) {
        const float *o = out + j * width;
        if (kind == MTGRAD_LOSS_CE) {
            int64_t best = 0;
            for (int64_t c = 1; c < width; c++)
                if (o[c] > o[best]) best = c; /* first maximum, like torch.argmax */
            s += (double)best == (double)target[j] ? 1.0 : 0.0;
        } else if (kind == MTGRAD_LOSS_BCE) {
            s += (o[0] > 0) == (target[j] > 0.5f) ? 1.0 : 0.0;
        } else {
            double e = (double)o[0] - (double)target[j];
            s += e * e;
        }
    }
    return s;
}

mtgrad_status mtgradi_eval_evaluate(mtgrad_model *m, const mtgrad_dataset *ds, int64_t task0,
                               int64_t limit, float *xbuf, float *ybuf, double *loss_out,
                               double *metric_out, char *err, size_t errlen)
{
    int64_t k = mtgrad_model_k(m), in = mtgrad_model_input_size(m);
    int64_t nb = mtgrad_model_max_batch(m), N = ds->n;
    if (limit > 0 && limit < N) N = limit;
    double lsum[MTGRAD_NN_MAX_TASKS] = {0}, msum[MTGRAD_NN_MAX_TASKS] = {0};
    for (int64_t s = 0; s < N; s += nb) {
        int64_t n = N - s < nb ? N - s : nb;
        memcpy(xbuf, ds->x + s * in, (size_t)(n * in) * sizeof *xbuf);
        for (int64_t i = 0; i < k; i++)
            memcpy(ybuf + i * n, ds->y + (task0 + i) * ds->n + s, (size_t)n * sizeof *ybuf);
        double l[MTGRAD_NN_MAX_TASKS];
        mtgrad_status st = mtgrad_model_forward(m, xbuf, ybuf, n, 0, l);
        if (st != MTGRAD_OK) {
            mtgradi_msg(err, errlen, "evaluation: forward pass on test samples %lld..%lld: %s",
                        (long long)s, (long long)(s + n - 1), mtgrad_status_str(st));
            return st;
        }
        for (int64_t i = 0; i < k; i++) {
            int64_t w;
            const float *o = mtgrad_model_output(m, i, &w);
            lsum[i] += l[i] * (double)n; /* forward gives batch means */
            msum[i] += metric_sum(mtgrad_model_loss(m, i), o, w, ybuf + i * n, n);
        }
    }
    for (int64_t i = 0; i < k; i++) {
        loss_out[i] = lsum[i] / (double)N;
        metric_out[i] = msum[i] / (double)N;
    }
    return MTGRAD_OK;
}
