/*
 * method_gradvac.c — Gradient Vaccine: steer each pair of gradients towards a target cosine.
 *
 *   state: rho_ij (k x k, init 0), EMA of the observed cosines
 *   for each task i:  v = g_i
 *       for j != i in pi_i (an order of the other tasks):
 *           r = <v, g_j> / (||v|| ||g_j|| + 1e-8)
 *           if r < rho_ij:
 *               v <- v + g_j ||v|| (rho_ij sqrt(1 - r^2) - r sqrt(1 - rho_ij^2))
 *                                  / (||g_j|| sqrt(1 - rho_ij^2) + 1e-8)
 *           rho_ij <- (1 - beta) rho_ij + beta r          (always, with the pre-update r)
 *       g_i^vac = v
 *   d = sum_i g_i^vac = G^T w
 *
 * Gram-only for one parameter group (group_type 0, the whole model): v = G^T c with c = e_i at
 * the start, <v, g_j> = (M c)_j, ||v|| = sqrt(c^T M c) taken at the time of use, ||g_j|| =
 * sqrt(M_jj). w = sum_i c^(i). With rho = 0 the correction is PCGrad's projection (up to the
 * 1e-8 terms). Per-layer groups (LibMTL group_type 1/2) need the layer boundaries of G and a
 * k x k state per group; they are not offered here.
 *
 * Outputs: w (k) with d = G^T w; state rho (k*k doubles). Cost O(k^3) on M per call plus
 * O(k^2 d) for M and O(kd) for the combination.
 *
 * See Algorithm 2 of Wang et al., "Gradient Vaccine: Investigating and Improving Multi-task
 * Optimization in Massively Multilingual Models", ICLR 2021; reference code LibMTL
 * LibMTL/weighting/GradVac.py (LibMTL semantics: rho updated after every visit).
 */
#include "internal.h"

#include <math.h>

enum { P_BETA, P_GROUP, P_ORDER, N_PARAMS };
enum { ORDER_RANDOM = 0, ORDER_ASCENDING = 1 };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"beta", MTGRAD_PARAM_REAL, 0.5, 0, 1, NULL, 0,
     "EMA rate of the target cosines: rho <- (1 - beta) rho + beta r (LibMTL 0.5)"},
    {"group_type", MTGRAD_PARAM_INT, 0, 0, 2, NULL, 0,
     "parameter groups: 0 = whole model (only 0 is possible from G alone)"},
    {"order", MTGRAD_PARAM_CHOICE, ORDER_RANDOM, 0, 0, "random|ascending", 0,
     "order in which each task visits the others: a fresh random permutation, or 0..k-1"},
};

static mtgrad_status gradvac_check(mtgrad_aggregator *a)
{
    if (a->pv[P_GROUP] != 0)
        return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED,
                            "gradvac: group_type %g needs the layer boundaries of G and per-group "
                            "Gram matrices; only group_type 0 (whole model) is supported",
                            a->pv[P_GROUP]);
    return MTGRAD_OK;
}

static size_t gradvac_state_size(int64_t k) { return (size_t)(k * k); }
/* work: c (k), Mc (k), one visiting order (k) */
static size_t gradvac_work_size(int64_t k) { return 3 * (size_t)k; }

static double clamp1(double x) { return x > 1 ? 1 : (x < -1 ? -1 : x); }

/* c <- task i's tracked coefficients after visiting `order`; updates row i of rho.
 * mc = M c is kept up to date (c changes in one coordinate per correction: mc += delta·M_j), so a
 * visit costs O(k) instead of a fresh O(k²) product: O(k³) per call instead of O(k⁴). */
static void vaccinate_task(const double *M, int64_t k, int64_t i, const double *order,
                           double beta, double *rho, double *c, double *mc)
{
    for (int64_t j = 0; j < k; j++) c[j] = 0, mc[j] = M[j * k + i];
    c[i] = 1;
    for (int64_t t = 0; t < k; t++) {
        int64_t j = (int64_t)order[t];
        if (j == i) continue;
        /* clamped at 0: rounding can make c^T M c slightly negative for a near-zero v */
        double vnorm = sqrt(fmax(mtgradi_dot(c, mc, k), 0.0));
        double gnorm = sqrt(fmax(M[j * k + j], 0.0));
        double r = mc[j] / (vnorm * gnorm + 1e-8);
        double target = rho[i * k + j];
        if (r < target) {
            /* |r| <= 1 in exact arithmetic; the clamp keeps the square roots real */
            double rc = clamp1(r), tc = clamp1(target);
            double num = vnorm * (tc * sqrt(1 - rc * rc) - rc * sqrt(1 - tc * tc));
            double delta = num / (gnorm * sqrt(1 - tc * tc) + 1e-8);
            c[j] += delta;
            for (int64_t l = 0; l < k; l++) mc[l] += delta * M[l * k + j];
        }
        rho[i * k + j] = (1 - beta) * target + beta * r;
    }
}

static mtgrad_status gradvac_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                     double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *c = a->work, *mc = a->work + k, *order = a->work + 2 * k;
    const double *draws;
    mtgrad_status s = mtgradi_task_orders_take(a, &draws, c);
    if (s != MTGRAD_OK) return s;
    int random = (int)a->pv[P_ORDER] == ORDER_RANDOM;
    for (int64_t j = 0; j < k; j++) w[j] = 0;
    for (int64_t i = 0; i < k; i++) {
        const double *ord = mtgradi_task_order(a, draws, random, i, order);
        vaccinate_task(M, k, i, ord, a->pv[P_BETA], a->state, c, mc);
        for (int64_t j = 0; j < k; j++) w[j] += c[j];
    }
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_gradvac = {
    .name = "gradvac",
    .summary = "GradVac: raise each pairwise cosine to its EMA target, then sum (whole model)",
    .citation = "Wang et al., Gradient Vaccine, ICLR 2021 (LibMTL LibMTL/weighting/GradVac.py)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_NEEDS_RANDOM | MTGRAD_STATEFUL,
    .params = params,
    .n_params = N_PARAMS,
    .check = gradvac_check,
    .state_size = gradvac_state_size,
    .work_size = gradvac_work_size,
    .weights = gradvac_weights,
};
