/*
 * method_mgda.c — MGDA: the min-norm point of the convex hull of the task gradients.
 *
 *   w* = argmin_{w in Δ} ||Gᵀw||² = argmin_{w in Δ} wᵀ M w,     d = Gᵀ w* = sum_i w*_i g_i
 *
 * Δ = {w >= 0, sum w = 1}. d = 0 iff the point is Pareto-stationary; otherwise <g_i, d> >= ||d||²
 * for every task (the KKT conditions of the problem), so d decreases every loss to first order.
 * Outputs: weights = the simplex weights w (sum to 1), direction = Gᵀw.
 *
 * Variants (`variant`):
 *   exact (default)  the exact min-norm point: active-set QP on M (qp.h), KKT residual ~1e-13,
 *                    then polished per row (equilibrated active set) so that rows of any norm
 *                    (1e-10..1e10) satisfy <g_i, d> >= |d|² to rounding relative to |g_i| |d|.
 *                    O(k³) per active-set iteration, O(k) iterations typically. Keeps the
 *                    non-conflict guarantee G d >= ||d||² >= 0.
 *   sener_minnorm    a port of MinNormSolver.find_min_norm_element (best pair by the 2-vector
 *                    closed form with its 0.999/0.001 clamps, then projected-gradient steps with a
 *                    2-point line search; returns the iterate before the last update).
 *                    `max_iter` (250) is the reference's MAX_ITER, which it never enforces (its
 *                    counter is never incremented; badly scaled inputs need ~2000 iterations),
 *                    so by default it is not enforced here either and only a safety cap of
 *                    100000 iterations applies; `enforce_max_iter = yes` stops after max_iter
 *                    iterations like LibMTL's copy (status E_MAXITER then). `stop_crit` (1e-5): stop
 *                    when ||Δw||_1 < stop_crit. The initial best-pair cost is +inf (the
 *                    CAGrad-family copies; the original uses 1e8 and fails when all norms are
 *                    >~1e4). O(k²) per iteration. Approximate: the clamps can leave it ~1e-3
 *                    (more for imbalanced norms) from the min-norm point, so G d >= 0 may fail.
 *   frank_wolfe      TorchJD MGDA(epsilon, max_iters): Frank–Wolfe from w = 1/k with exact line
 *                    search; stops after an update with step gamma < `epsilon` (1e-3) or after
 *                    `max_iters` (100) updates (reaching the cap is the reference's normal
 *                    behaviour: status OK). O(k²) per iteration. Can be ~0.1 away from the exact
 *                    point, so G d >= 0 may fail.
 * k = 1: w = (1) for every variant. The flag PROMISE_NONCONFLICT holds for the default (exact)
 * variant only.
 *
 * See §3 of Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018;
 * reference code intel-isl/MultiObjectiveOptimization multi_task/min_norm_solvers.py
 * (MinNormSolver.find_min_norm_element); TorchJD src/torchjd/aggregation/_mgda.py (frank_wolfe).
 */
#include "internal.h"
#include "qp.h"

#include <math.h>

enum { P_VARIANT, P_MAX_ITER, P_ENFORCE, P_STOP_CRIT, P_EPSILON, P_MAX_ITERS, N_PARAMS };

/* sener_minnorm without enforce_max_iter: a safety cap far beyond what the reference needs
 * (its imbalanced cases take ~2000 iterations), so that no input can loop for ever. */
#define SENER_SAFETY_CAP 100000
enum { V_EXACT = 0, V_SENER = 1, V_FW = 2 };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"variant", MTGRAD_PARAM_CHOICE, V_EXACT, 0, 0, "exact|sener_minnorm|frank_wolfe", 0,
     "solver: exact min-norm point (QP), the Sener & Koltun MinNormSolver, or TorchJD's Frank-Wolfe"},
    {"max_iter", MTGRAD_PARAM_INT, 250, 1, 1e6, NULL, 0,
     "sener_minnorm: the reference's MAX_ITER (it never enforces it; see enforce_max_iter)"},
    {"enforce_max_iter", MTGRAD_PARAM_BOOL, 0, 0, 1, NULL, 0,
     "sener_minnorm: stop after max_iter iterations like LibMTL (default no: like the reference)"},
    {"stop_crit", MTGRAD_PARAM_REAL, 1e-5, 0, 1, NULL, MTGRAD_PARAM_LO_OPEN,
     "sener_minnorm: stop when the L1 change of the weights is below this"},
    {"epsilon", MTGRAD_PARAM_REAL, 1e-3, 0, 1, NULL, 0,
     "frank_wolfe: stop after a step with gamma < epsilon (TorchJD MGDA)"},
    {"max_iters", MTGRAD_PARAM_INT, 100, 1, 1e6, NULL, 0,
     "frank_wolfe: maximum number of Frank-Wolfe updates (TorchJD MGDA)"},
};

/* Scratch: the QP's, or (sener) the new point, the candidate and a sort buffer. */
static size_t mgda_work_size(int64_t k)
{
    size_t q = mtgradi_qp_simplex_work_size(k), s = (size_t)(4 * k);
    return q > s ? q : s;
}

/* ------------------------------------------------------------------ sener_minnorm */

/* Minimiser γ of ||γ v1 + (1-γ) v2||² from (v1v1, v1v2, v2v2), with the reference's clamps
 * 0.999/0.001 instead of 1/0 at the boundary (reproduced on purpose). */
static double mn2(double v11, double v12, double v22, double *cost)
{
    if (v12 >= v11) {
        *cost = v11;
        return 0.999;
    }
    if (v12 >= v22) {
        *cost = v22;
        return 0.001;
    }
    double gamma = -1.0 * ((v12 - v22) / (v11 + v22 - 2 * v12));
    *cost = v22 + gamma * (v12 - v22);
    return gamma;
}

/* The reference's _projection2simplex: scan the sorted values for the first threshold that
 * exceeds the next value; otherwise tau = (sum y - 1)/k. sorted: k doubles of scratch. */
static void project_simplex_ref(const double *y, int64_t k, double *out, double *sorted)
{
    double total = 0;
    for (int64_t i = 0; i < k; i++) {
        sorted[i] = y[i];
        total += y[i];
    }
    for (int64_t i = 1; i < k; i++) { /* insertion sort, descending (k is small) */
        double v = sorted[i];
        int64_t j = i;
        for (; j > 0 && sorted[j - 1] < v; j--) sorted[j] = sorted[j - 1];
        sorted[j] = v;
    }
    double tmax_f = (total - 1.0) / (double)k, tmpsum = 0;
    for (int64_t i = 0; i < k - 1; i++) {
        tmpsum += sorted[i];
        double tmax = (tmpsum - 1) / ((double)i + 1.0);
        if (tmax > sorted[i + 1]) {
            tmax_f = tmax;
            break;
        }
    }
    for (int64_t i = 0; i < k; i++) out[i] = fmax(y[i] - tmax_f, 0.0);
}

/* The reference's _next_point: step along the projected negative gradient to the first
 * boundary crossing beyond 1e-7 (t = 1 if none), then project back onto the simplex. */
static void next_point(const double *M, int64_t k, const double *w, double *out, double *pg,
                       double *sorted)
{
    double sum = 0;
    for (int64_t i = 0; i < k; i++) {
        pg[i] = -1.0 * mtgradi_dot(M + i * k, w, k);
        sum += pg[i];
    }
    for (int64_t i = 0; i < k; i++) pg[i] -= sum / (double)k;
    double t = 1, tm1 = INFINITY, tm2 = INFINITY;
    for (int64_t i = 0; i < k; i++) {
        double r = pg[i] < 0 ? -1.0 * w[i] / pg[i] : pg[i] > 0 ? (1.0 - w[i]) / pg[i] : 0;
        if (pg[i] < 0 && r > 1e-7) tm1 = fmin(tm1, r);
        if (pg[i] > 0 && r > 1e-7) tm2 = fmin(tm2, r);
    }
    if (tm1 < INFINITY) t = tm1; /* replaces the initial 1, as in the reference */
    if (tm2 < INFINITY) t = fmin(t, tm2);
    for (int64_t i = 0; i < k; i++) out[i] = pg[i] * t + w[i];
    project_simplex_ref(out, k, out, sorted);
}

/* Σ_i Σ_j a_i b_j M_ij in the reference's loop order. */
static double bilinear(const double *M, int64_t k, const double *a, const double *b)
{
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) s += a[i] * b[j] * M[i * k + j];
    return s;
}

static mtgrad_status sener_minnorm(mtgrad_aggregator *a, const double *M, double *w)
{
    int64_t k = a->k;
    double *np = a->work, *cand = np + k, *pg = cand + k, *sorted = pg + k;
    double best = INFINITY, gbest = 0.999, cost;
    int64_t bi = 0, bj = 1;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = i + 1; j < k; j++) {
            double g = mn2(M[i * k + i], M[i * k + j], M[j * k + j], &cost);
            if (cost < best) best = cost, bi = i, bj = j, gbest = g;
        }
    for (int64_t i = 0; i < k; i++) w[i] = 0;
    w[bi] = gbest;
    w[bj] = 1 - gbest;
    if (k < 3) return MTGRAD_OK;
    int64_t max_iter = a->pv[P_ENFORCE] != 0 ? (int64_t)a->pv[P_MAX_ITER] : SENER_SAFETY_CAP;
    double stop = a->pv[P_STOP_CRIT];
    for (int64_t it = 0; it < max_iter; it++) {
        next_point(M, k, w, np, pg, sorted);
        double v11 = bilinear(M, k, w, w), v12 = bilinear(M, k, w, np), v22 = bilinear(M, k, np, np);
        double nc = mn2(v11, v12, v22, &cost), change = 0;
        for (int64_t i = 0; i < k; i++) {
            cand[i] = nc * w[i] + (1 - nc) * np[i];
            change += fabs(cand[i] - w[i]);
        }
        if (change < stop) return MTGRAD_OK; /* the reference returns the previous iterate */
        for (int64_t i = 0; i < k; i++) w[i] = cand[i];
    }
    return mtgradi_fail(a, MTGRAD_E_MAXITER, "mgda: sener_minnorm did not reach stop_crit = %g in "
                        "%lld iterations (the last iterate is used)", stop,
                        (long long)max_iter);
}

/* ------------------------------------------------------------------ frank_wolfe (TorchJD) */

static mtgrad_status frank_wolfe(mtgrad_aggregator *a, const double *M, double *w)
{
    int64_t k = a->k, max_iters = (int64_t)a->pv[P_MAX_ITERS];
    double eps = a->pv[P_EPSILON], *Mw = a->work;
    for (int64_t i = 0; i < k; i++) w[i] = 1.0 / (double)k;
    for (int64_t it = 0; it < max_iters; it++) {
        mtgradi_matvec(M, k, w, Mw);
        int64_t t = 0;
        for (int64_t i = 1; i < k; i++)
            if (Mw[i] < Mw[t]) t = i; /* first index on ties, like torch.argmin */
        double wa = Mw[t], wb = mtgradi_dot(w, Mw, k), wc = M[t * k + t], gamma;
        if (wc <= wa) gamma = 1;
        else if (wb <= wa) gamma = 0;
        else gamma = (wb - wa) / (wb + wc - 2 * wa);
        for (int64_t i = 0; i < k; i++) w[i] *= 1 - gamma;
        w[t] += gamma;
        if (gamma < eps) break;
    }
    return MTGRAD_OK;
}

/* ------------------------------------------------------------------ dispatch */

static mtgrad_status mgda_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                  double *w)
{
    (void)losses;
    if (a->k == 1) {
        w[0] = 1;
        return MTGRAD_OK;
    }
    switch ((int)a->pv[P_VARIANT]) {
    case V_SENER: return sener_minnorm(a, M, w);
    case V_FW: return frank_wolfe(a, M, w);
    default: break;
    }
    mtgrad_status s = mtgradi_qp_simplex(M, NULL, a->k, w, NULL, a->work);
    if (s != MTGRAD_OK)
        return mtgradi_fail(a, s, "mgda: the min-norm QP did not converge to 1e-9 (the best "
                            "iterate is used)");
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_mgda = {
    .name = "mgda",
    .summary = "MGDA: min-norm point of the convex hull of the task gradients",
    .citation = "Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, NeurIPS 2018 "
                "(intel-isl/MultiObjectiveOptimization multi_task/min_norm_solvers.py; TorchJD "
                "src/torchjd/aggregation/_mgda.py)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED | MTGRAD_PROMISE_NONCONFLICT,
    .params = params,
    .n_params = N_PARAMS,
    .work_size = mgda_work_size,
    .weights = mgda_weights,
};
