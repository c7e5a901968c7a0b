/*
 * method_aligned_mtl.c — Aligned-MTL: make the task gradients orthogonal with equal norms
 * (condition number 1) before combining them.
 *
 *   M = V Λ Vᵀ (eigenvalues descending);  keep the r eigenvalues with λ > λ_max·k·rank_eps
 *   r = 0:  B = I
 *   else:   B = sqrt(s)·V_r Λ_r^{-1/2} V_rᵀ,  s = λ_r (min) | lower median of Λ_r (median)
 *                                                   | mean of Λ_r (rmse: the reference's name)
 *   w = B·pref,   d = Gᵀw  (= the preference-weighted sum of the aligned gradients BG)
 *
 * The aligned gradients G̃ = BG satisfy G̃G̃ᵀ = B M B = s·V_r V_rᵀ: orthogonal, all with norm²
 * s, on the kept eigenspace. Variants (a preset for the parameters the user did not set):
 *   torchjd: pref = 1/k (`mean`), rank_eps = 1.1920929e-07 (float32 eps: TorchJD uses the default
 *            dtype's eps, float32 in practice);
 *   libmtl:  pref = 1 (`ones`), rank_eps = 2.220446049250313e-16 (float64 eps), i.e. the official
 *            SamsungLabs code run in float64.
 * Permutation-equivariant (B is a spectral function of M). No state.
 *
 * Outputs: w (k), d = Gᵀw. Cost: O(k²d) Gram, O(k³) Jacobi eigendecomposition, O(kd) combine.
 * See Algorithm 1 of Senushkin et al., "Independent Component Alignment for Multi-Task
 * Learning", CVPR 2023; reference code SamsungLabs/MTL code/optim/aligned/solver.py, TorchJD/torchjd
 * src/torchjd/aggregation/_aligned_mtl.py, LibMTL LibMTL/weighting/Aligned_MTL.py.
 */
#include "internal.h"

#include <math.h>

enum { P_VARIANT, P_PREF, P_RANK_EPS, P_SCALE, N_PARAMS };
enum { VARIANT_TORCHJD, VARIANT_LIBMTL };
enum { PREF_MEAN, PREF_ONES };
enum { SCALE_MIN, SCALE_MEDIAN, SCALE_RMSE };

#define FLOAT32_EPS 1.1920929e-07
#define FLOAT64_EPS 2.220446049250313e-16

static const mtgrad_param_desc params[N_PARAMS] = {
    {"variant", MTGRAD_PARAM_CHOICE, VARIANT_TORCHJD, 0, 0, "torchjd|libmtl", 0,
     "preset for pref_vector and rank_eps when not given: torchjd = mean, 1.19e-7; libmtl = ones, 2.2e-16"},
    {"pref_vector", MTGRAD_PARAM_CHOICE, PREF_MEAN, 0, 0, "mean|ones", 0,
     "preference weights: mean = 1/k (TorchJD), ones = 1 (official/LibMTL); default from variant"},
    {"rank_eps", MTGRAD_PARAM_REAL, FLOAT32_EPS, 0, 1, NULL, 0,
     "eigenvalues <= max eigenvalue * k * rank_eps are dropped; default from variant"},
    {"scale_mode", MTGRAD_PARAM_CHOICE, SCALE_MIN, 0, 0, "min|median|rmse", 0,
     "aligned norm²: smallest kept eigenvalue, their lower median, or their mean (rmse)"},
};

/* Resolve the variant preset for the parameters the user left unset. */
static mtgrad_status aligned_check(mtgrad_aggregator *a)
{
    int libmtl = a->pv[P_VARIANT] == VARIANT_LIBMTL;
    if (!a->pset[P_PREF]) a->pv[P_PREF] = libmtl ? PREF_ONES : PREF_MEAN;
    if (!a->pset[P_RANK_EPS]) a->pv[P_RANK_EPS] = libmtl ? FLOAT64_EPS : FLOAT32_EPS;
    return MTGRAD_OK;
}

static size_t aligned_work_size(int64_t k) { return (size_t)(2 * k * k + 2 * k); }

/* s from the r kept eigenvalues lam[k-r..k-1] (ascending order, as mtgradi_eigh returns). */
static double scale_of(const double *lam, int64_t k, int64_t r, int mode)
{
    const double *kept = lam + (k - r);
    if (mode == SCALE_MIN) return kept[0];
    if (mode == SCALE_MEDIAN) return kept[(r - 1) / 2]; /* torch.median: the lower middle one */
    double s = 0;
    for (int64_t j = 0; j < r; j++) s += kept[j];
    return s / (double)r;
}

static mtgrad_status aligned_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                     double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *V = a->work, *lam = V + k * k, *pref = lam + k, *ew = pref + k;
    int rc = mtgradi_eigh(M, k, lam, V, ew);
    double pv = a->pv[P_PREF] == PREF_MEAN ? 1.0 / (double)k : 1.0;
    for (int64_t i = 0; i < k; i++) pref[i] = pv;
    double tol = lam[k - 1] * (double)k * a->pv[P_RANK_EPS];
    int64_t r = 0;
    for (int64_t j = 0; j < k; j++)
        if (lam[j] > tol) r++;
    if (r == 0) { /* M = 0 (or negative rounding only): TorchJD returns B = I */
        for (int64_t i = 0; i < k; i++) w[i] = pref[i];
    } else {
        /* w = sqrt(s) Σ_{kept j} v_j (v_jᵀ pref) / sqrt(λ_j) */
        double rs = sqrt(scale_of(lam, k, r, (int)a->pv[P_SCALE]));
        for (int64_t i = 0; i < k; i++) w[i] = 0;
        for (int64_t j = k - r; j < k; j++) {
            double c = 0;
            for (int64_t i = 0; i < k; i++) c += V[i * k + j] * pref[i];
            c *= rs / sqrt(lam[j]);
            for (int64_t i = 0; i < k; i++) w[i] += c * V[i * k + j];
        }
    }
    if (rc != 0)
        return mtgradi_fail(a, MTGRAD_E_MAXITER,
                            "aligned_mtl: the Jacobi eigensolver did not fully converge; result used as is");
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_aligned_mtl = {
    .name = "aligned_mtl",
    .summary = "Aligned-MTL: combine gradients aligned to orthogonal, equal-norm components",
    .citation = "Senushkin et al., Independent Component Alignment for Multi-Task Learning, CVPR 2023; "
                "SamsungLabs/MTL code/optim/aligned/solver.py; TorchJD _aligned_mtl.py",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_PROMISE_PERMUTATION,
    .params = params,
    .n_params = N_PARAMS,
    .check = aligned_check,
    .work_size = aligned_work_size,
    .weights = aligned_weights,
};
