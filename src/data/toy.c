/*
 * toy.c — the CAGrad 2-task toy (benchmarks.md §3) and a runner that follows any core method on
 * it with Adam, as the CAGrad / Nash-MTL / FAMO toy scripts do.
 *
 *   f1 = log(max(|0.5(-θ1 - 7) - tanh(-θ2)|, LOWER)) + 6
 *   f2 = log(max(|0.5(-θ1 + 3) + tanh(-θ2) + 2|, LOWER)) + 6     (the code's "+ tanh", not the
 *                                                                  papers' "- tanh")
 *   g1 = ((-θ1 + 7)^2 + 0.1(-θ2 - 8)^2)/10 - 20,  g2 = ((-θ1 - 7)^2 + 0.1(-θ2 - 8)^2)/10 - 20
 *   c1 = max(tanh(θ2/2), 0),  c2 = max(tanh(-θ2/2), 0)
 *   L1 = c1 f1 + c2 g1,  L2 = c1 f2 + c2 g2;  setting 1 scales L1 by 0.1.
 *
 * Gradients are the ones torch's autograd produces for that code, including at the kinks: the
 * derivative of |u| is sign(u) with sign(0) = 0, and clamp(x, min) passes the gradient where
 * x >= min and none below. Everything is in double (the scripts run float32; the trajectories
 * agree to plotting accuracy, and double makes the runs reproducible across machines).
 */
#include "mtgrad_nn.h"
#include "internal.h" /* mtgradi_msg */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOY_LOWER 0.000005
#define TOY_LOSS_FLOOR (-21.0) /* below every value of L1 and L2 (they are >= -20) */

/* Scale of task 1's loss in a setting; 0 for an unknown setting. */
static double task1_scale(int setting)
{
    return setting == 0 ? 1.0 : setting == 1 ? 0.1 : 0.0;
}

static double sign0(double u) { return u > 0 ? 1.0 : u < 0 ? -1.0 : 0.0; }

/* f = log(max(|u|, LOWER)) + 6 and df/du (autograd's rules at the kinks). */
static double log_term(double u, double *dfdu)
{
    double a = fabs(u);
    if (a >= TOY_LOWER) {
        *dfdu = sign0(u) / a;
        return log(a) + 6;
    }
    *dfdu = 0;
    return log(TOY_LOWER) + 6;
}

void mtgrad_toy_eval(const double theta[2], int setting, double losses[2], double grad[4])
{
    if (!theta || !losses) return;
    double s1 = task1_scale(setting);
    if (s1 == 0 || !isfinite(theta[0]) || !isfinite(theta[1])) {
        losses[0] = losses[1] = NAN;
        if (grad) grad[0] = grad[1] = grad[2] = grad[3] = NAN;
        return;
    }
    double x1 = theta[0], x2 = theta[1];
    double th = tanh(-x2), dth = -(1 - th * th); /* tanh(-θ2) and its θ2-derivative */

    double df1, df2;
    double f1 = log_term(0.5 * (-x1 - 7) - th, &df1);
    double f2 = log_term(0.5 * (-x1 + 3) + th + 2, &df2);
    /* chain rule through u1 = 0.5(-θ1 - 7) - tanh(-θ2), u2 = 0.5(-θ1 + 3) + tanh(-θ2) + 2 */
    double f1_1 = -0.5 * df1, f1_2 = -dth * df1;
    double f2_1 = -0.5 * df2, f2_2 = dth * df2;

    double q = 0.1 * (-x2 - 8) * (-x2 - 8);
    double g1 = ((-x1 + 7) * (-x1 + 7) + q) / 10 - 20;
    double g2 = ((-x1 - 7) * (-x1 - 7) + q) / 10 - 20;
    double g1_1 = -0.2 * (-x1 + 7), g2_1 = -0.2 * (-x1 - 7), g_2 = 0.02 * (x2 + 8);

    double t1 = tanh(0.5 * x2), t2 = tanh(-0.5 * x2);
    double c1 = t1 > 0 ? t1 : 0, c2 = t2 > 0 ? t2 : 0;
    double dc1 = t1 >= 0 ? 0.5 * (1 - t1 * t1) : 0;
    double dc2 = t2 >= 0 ? -0.5 * (1 - t2 * t2) : 0;

    losses[0] = s1 * (c1 * f1 + c2 * g1);
    losses[1] = c1 * f2 + c2 * g2;
    if (!grad) return;
    grad[0] = s1 * (c1 * f1_1 + c2 * g1_1);
    grad[1] = s1 * (dc1 * f1 + c1 * f1_2 + dc2 * g1 + c2 * g_2);
    grad[2] = c1 * f2_1 + c2 * g2_1;
    grad[3] = dc1 * f2 + c1 * f2_2 + dc2 * g2 + c2 * g_2;
}

int mtgrad_toy_starts(int setting, double starts[5][2])
{
    static const double cagrad[5][2] = {{-8.5, 7.5}, {-8.5, 5}, {0, 0}, {9, 9}, {10, -8}};
    static const double nash[5][2] = {{-8.5, 7.5}, {0, 0}, {9, 9}, {-7.5, -0.5}, {9, -1}};
    if (!starts || (setting != 0 && setting != 1)) return 0;
    memcpy(starts, setting == 0 ? cagrad : nash, sizeof cagrad);
    return 5;
}

/*
 * On the Pareto set θ2 < 0, so c1 = 0 and L_i = c2(θ2) g_i. A convex combination
 * w ∇L1 + (1 - w) ∇L2 vanishes when (θ1 component) θ1 = 14w - 7 and (θ2 component)
 * h(θ2) = c2'(θ2) (w g1 + (1 - w) g2) + c2(θ2) 0.02 (θ2 + 8) = 0. h > 0 at θ2 = -6 and h < 0 at
 * θ2 = -12 for every w, with one root between: bisection to full precision.
 */
static double pareto_h(double w, double x1, double x2)
{
    double c2 = tanh(-0.5 * x2), dc2 = -0.5 * (1 - c2 * c2);
    double q = 0.1 * (x2 + 8) * (x2 + 8);
    double gw = (w * (x1 - 7) * (x1 - 7) + (1 - w) * (x1 + 7) * (x1 + 7) + q) / 10 - 20;
    return dc2 * gw + c2 * 0.02 * (x2 + 8);
}

double mtgrad_toy_pareto_theta2(double theta1)
{
    if (isnan(theta1)) return NAN;
    double x1 = theta1 < -7 ? -7 : theta1 > 7 ? 7 : theta1;
    double w = (x1 + 7) / 14, lo = -12, hi = -6;
    for (int it = 0; it < 200 && hi - lo > 1e-15; it++) {
        double mid = 0.5 * (lo + hi);
        if (pareto_h(w, x1, mid) > 0) hi = mid;
        else lo = mid;
    }
    return 0.5 * (lo + hi);
}

int mtgrad_toy_reached(const double theta[2])
{
    if (!theta || !isfinite(theta[0]) || !isfinite(theta[1])) return 0;
    if (theta[0] < -7.05 || theta[0] > 7.05) return 0;
    return fabs(theta[1] - mtgrad_toy_pareto_theta2(theta[0])) <= 0.05;
}

int64_t mtgrad_toy_default_steps(int setting)
{
    return setting == 0 ? 100000 : setting == 1 ? 50000 : -1;
}

int64_t mtgrad_toy_traj_len(int64_t steps, int64_t stride)
{
    if (steps < 0 || stride < 1) return 0;
    return steps / stride + 1 + (steps % stride != 0);
}

/* torch.optim.Adam on 2 parameters (no weight decay), in double. */
typedef struct toy_adam {
    double m[2], v[2];
    int64_t t;
} toy_adam;

static void adam_step(toy_adam *a, double lr, const double g[2], double theta[2])
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    a->t++;
    double bc1 = 1 - pow(b1, (double)a->t), bc2 = 1 - pow(b2, (double)a->t);
    for (int i = 0; i < 2; i++) {
        a->m[i] = b1 * a->m[i] + (1 - b1) * g[i];
        a->v[i] = b2 * a->v[i] + (1 - b2) * g[i] * g[i];
        double denom = sqrt(a->v[i]) / sqrt(bc2) + eps;
        theta[i] -= (lr / bc1) * a->m[i] / denom;
    }
}

/* The losses a loss-reading method sees: shifted above the toy's floor (see the header). */
static void shifted(const double L[2], double s1, double out[2])
{
    out[0] = L[0] - TOY_LOSS_FLOOR * s1;
    out[1] = L[1] - TOY_LOSS_FLOOR;
}

static mtgrad_status check_run_args(const char *method, int setting, const double start[2],
                                    double lr, const double *traj, int64_t stride, char *err,
                                    size_t errlen)
{
    if (!method || !start) {
        mtgradi_msg(err, errlen, "toy: method and start must not be NULL");
        return MTGRAD_E_INVAL;
    }
    if (setting != 0 && setting != 1) {
        mtgradi_msg(err, errlen, "toy: setting %d is unknown (0 = CAGrad, 1 = Nash-MTL)", setting);
        return MTGRAD_E_INVAL;
    }
    if (!isfinite(start[0]) || !isfinite(start[1]) || !isfinite(lr)) {
        mtgradi_msg(err, errlen, "toy: start and lr must be finite");
        return MTGRAD_E_INVAL;
    }
    if (traj && stride < 1) {
        mtgradi_msg(err, errlen, "toy: stride %lld must be >= 1", (long long)stride);
        return MTGRAD_E_INVAL;
    }
    return MTGRAD_OK;
}

static int status_usable(mtgrad_status s)
{
    return s == MTGRAD_OK || s == MTGRAD_E_MAXITER || s == MTGRAD_E_NOPROGRESS;
}

mtgrad_status mtgrad_toy_run(const char *method, const char *params, int setting,
                             const double start[2], int64_t steps, double lr, double *traj,
                             int64_t stride, double final_theta[2], int *reached, char *err,
                             size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    mtgrad_status s = check_run_args(method, setting, start, lr, traj, stride, err, errlen);
    if (s != MTGRAD_OK) return s;
    if (steps <= 0) steps = mtgrad_toy_default_steps(setting);
    if (lr <= 0) lr = 1e-3;
    double s1 = task1_scale(setting);

    char aerr[256] = "";
    mtgrad_aggregator *agg = NULL;
    s = mtgrad_aggregator_new(&agg, method, 2, params, aerr, sizeof aerr);
    if (s != MTGRAD_OK) {
        mtgradi_msg(err, errlen, "toy: %s", aerr);
        return s;
    }
    unsigned flags = mtgrad_method_flags(mtgrad_aggregator_method(agg));
    int want_losses = (flags & MTGRAD_NEEDS_LOSSES) != 0;
    int want_after = (flags & MTGRAD_NEEDS_LOSSES_AFTER) != 0;

    double theta[2] = {start[0], start[1]};
    toy_adam adam = {{0, 0}, {0, 0}, 0};
    int64_t npts = 0;
    if (traj) {
        traj[0] = theta[0];
        traj[1] = theta[1];
        npts = 1;
    }
    for (int64_t t = 1; t <= steps; t++) {
        double L[2], G[4], Ls[2], d[2];
        mtgrad_toy_eval(theta, setting, L, G);
        shifted(L, s1, Ls);
        s = mtgrad_aggregate_f64(agg, G, 2, 2, 2, want_losses ? Ls : NULL, d, NULL);
        if (!status_usable(s)) {
            mtgradi_msg(err, errlen, "toy: %s at step %lld, theta (%g, %g): %s", method,
                    (long long)t, theta[0], theta[1], mtgrad_aggregator_error(agg));
            break;
        }
        s = MTGRAD_OK;
        if (!isfinite(d[0]) || !isfinite(d[1])) {
            s = MTGRAD_E_NONFINITE;
            mtgradi_msg(err, errlen, "toy: %s gave a non-finite direction at step %lld", method,
                    (long long)t);
            break;
        }
        adam_step(&adam, lr, d, theta);
        if (want_after) {
            mtgrad_toy_eval(theta, setting, L, NULL);
            shifted(L, s1, Ls);
            s = mtgrad_aggregator_update(agg, Ls, 2);
            if (s != MTGRAD_OK) {
                mtgradi_msg(err, errlen, "toy: %s update at step %lld: %s", method, (long long)t,
                        mtgrad_aggregator_error(agg));
                break;
            }
        }
        if (traj && (t % stride == 0 || t == steps)) {
            traj[2 * npts] = theta[0];
            traj[2 * npts + 1] = theta[1];
            npts++;
        }
    }
    mtgrad_aggregator_free(agg);
    /* a failed run leaves the points it did not reach as NaN (a plot shows where it stopped) */
    for (int64_t i = npts; traj && i < mtgrad_toy_traj_len(steps, stride); i++)
        traj[2 * i] = traj[2 * i + 1] = NAN;
    if (final_theta) {
        final_theta[0] = theta[0];
        final_theta[1] = theta[1];
    }
    if (reached) *reached = s == MTGRAD_OK && mtgrad_toy_reached(theta);
    return s;
}
