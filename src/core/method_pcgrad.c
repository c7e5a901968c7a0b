/*
 * method_pcgrad.c — PCGrad, projecting conflicting gradients ("gradient surgery").
 *
 *   for each task i:  v = g_i
 *       for j in pi_i (an order of the tasks; j = i skipped unless self_projection):
 *           if <v, g_j> < 0:  v <- v - <v, g_j> / (||g_j||^2 + eps) * g_j
 *       g_i^PC = v
 *   d = sum_i g_i^PC = G^T w
 *
 * Gram-only: v stays in the row space, v = G^T c with c = e_i at the start, so
 * <v, g_j> = (M c)_j and the projection is c_j <- c_j - (M c)_j / (M_jj + eps).
 * The weights are w = sum_i c^(i) (TorchJD `PCGradWeighting`). Projections are always onto the
 * ORIGINAL gradients. The result depends on the order only when k >= 3.
 *
 * Variants (preset for the parameters the user did not set):
 *   torchjd: self_projection no,  eps 0     (TorchJD PCGrad: torch.randperm, self skipped)
 *   libmtl:  self_projection yes, eps 1e-8  (LibMTL PCGrad: random.shuffle, self visited)
 * order random draws a fresh permutation per task per call; injected draws are k*k task indices,
 * row i = the order in which task i visits the tasks (each row a permutation of 0..k-1; entry i
 * is skipped when self_projection is no). Injected draws take precedence over `order`.
 *
 * Outputs: w (k) with d = G^T w; no state beyond the RNG. Cost O(k^3) on M plus O(k^2 d) for M
 * and O(kd) for the combination.
 *
 * See Algorithm 1 of Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020;
 * reference code TorchJD/torchjd src/torchjd/aggregation/_pcgrad.py and LibMTL
 * LibMTL/weighting/PCGrad.py.
 */
#include "internal.h"

#include <math.h>

enum { P_VARIANT, P_SELF, P_EPS, P_ORDER, N_PARAMS };
enum { VARIANT_TORCHJD = 0, VARIANT_LIBMTL = 1 };
enum { ORDER_RANDOM = 0, ORDER_ASCENDING = 1 };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"variant", MTGRAD_PARAM_CHOICE, VARIANT_TORCHJD, 0, 0, "torchjd|libmtl", 0,
     "preset for self_projection/eps when not set: torchjd (no, 0) or libmtl (yes, 1e-8)"},
    {"self_projection", MTGRAD_PARAM_BOOL, 0, 0, 1, NULL, 0,
     "also project task i on its own original gradient (LibMTL); default from variant"},
    {"eps", MTGRAD_PARAM_REAL, 0, 0, 1, NULL, 0,
     "added to ||g_j||^2 in the projection (LibMTL 1e-8); default from variant"},
    {"order", MTGRAD_PARAM_CHOICE, ORDER_RANDOM, 0, 0, "random|ascending", 0,
     "order in which each task visits the others: a fresh random permutation, or 0..k-1"},
};

static mtgrad_status pcgrad_check(mtgrad_aggregator *a)
{
    int libmtl = (int)a->pv[P_VARIANT] == VARIANT_LIBMTL;
    if (!a->pset[P_SELF]) a->pv[P_SELF] = libmtl ? 1.0 : 0.0;
    if (!a->pset[P_EPS]) a->pv[P_EPS] = libmtl ? 1e-8 : 0.0;
    return MTGRAD_OK;
}

/* work: c (k) and one visiting order (k, task indices stored as doubles) */
static size_t pcgrad_work_size(int64_t k) { return 2 * (size_t)k; }

/* c <- the tracked coefficients of task i projected along `order`. */
static void project_task(const double *M, int64_t k, int64_t i, const double *order, int self,
                         double eps, double *c)
{
    for (int64_t j = 0; j < k; j++) c[j] = 0;
    c[i] = 1;
    for (int64_t t = 0; t < k; t++) {
        int64_t j = (int64_t)order[t];
        if (j == i && !self) continue;
        double denom = M[j * k + j] + eps;
        if (!(denom > 0)) continue; /* g_j = 0: nothing to project on */
        double dot = mtgradi_dot(M + j * k, c, k);
        if (dot < 0) c[j] -= dot / denom;
    }
}

static mtgrad_status pcgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                    double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *c = a->work, *order = a->work + k;
    const double *draws;
    mtgrad_status s = mtgradi_task_orders_take(a, &draws, c);
    if (s != MTGRAD_OK) return s;
    int self = a->pv[P_SELF] != 0;
    double eps = a->pv[P_EPS];
    int random = (int)a->pv[P_ORDER] == ORDER_RANDOM;
    for (int64_t j = 0; j < k; j++) w[j] = 0;
    for (int64_t i = 0; i < k; i++) {
        const double *ord = mtgradi_task_order(a, draws, random, i, order);
        project_task(M, k, i, ord, self, eps, c);
        for (int64_t j = 0; j < k; j++) w[j] += c[j];
    }
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_pcgrad = {
    .name = "pcgrad",
    .summary = "PCGrad: project each gradient off the ones it conflicts with, then sum",
    .citation = "Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020 (TorchJD "
                "src/torchjd/aggregation/_pcgrad.py; LibMTL LibMTL/weighting/PCGrad.py)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_NEEDS_RANDOM,
    .params = params,
    .n_params = N_PARAMS,
    .check = pcgrad_check,
    .work_size = pcgrad_work_size,
    .weights = pcgrad_weights,
};
