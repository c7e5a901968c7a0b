/*
 * method_imtl_g.c — IMTL-G: the direction with equal projections on every unit task gradient.
 *
 *   n_i = sqrt(M_ii) = ||g_i||,   v = pinv(M)·n,   w = v / Σv   (w = 0 if |Σv| < 1e-12)
 *   d = Gᵀw
 *
 * For full-rank G this is the reference closed form: Σw = 1 and <d, g_i>/||g_i|| is the same
 * for every i (Gᵀpinv(M)n has <g_i, ·> = n_i, so the projections all equal 1/Σv). pinv uses
 * torch.linalg.pinv's default cutoff: eigenvalues with |λ| <= k·eps64·max|λ| are dropped (M is
 * symmetric, so its singular values are |λ|); that extends the method to linearly dependent rows
 * (TorchJD's generalisation). A zero M gives v = 0, hence w = 0 and d = 0.
 *
 * Outputs: w (k), d = Gᵀw. Cost: O(k²d) Gram, O(k³) Jacobi eigendecomposition, O(kd) combine.
 * See Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021 (IMTL-G), generalised in
 * Quinton & Rey, arXiv 2406.16232, 2024; reference code TorchJD/torchjd
 * src/torchjd/aggregation/_imtl_g.py (also LibMTL LibMTL/weighting/IMTL.py, nash-mtl IMTLG).
 */
#include "internal.h"

#include <float.h>
#include <math.h>

static size_t imtl_g_work_size(int64_t k) { return (size_t)(3 * k * k + 3 * k); }

static mtgrad_status imtl_g_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                    double *w)
{
    (void)losses;
    int64_t k = a->k;
    double *P = a->work, *n = P + k * k, *v = n + k, *pw = v + k;
    /* torch.linalg.pinv's default rtol: max(rows, cols) * eps of float64 */
    int rc = mtgradi_pinv_sym(M, k, (double)k * DBL_EPSILON, P, pw);
    for (int64_t i = 0; i < k; i++) n[i] = sqrt(fmax(M[i * k + i], 0.0));
    mtgradi_matvec(P, k, n, v);
    double sum = 0;
    for (int64_t i = 0; i < k; i++) sum += v[i];
    /* TorchJD's rule: a (near-)zero sum means no direction with equal projections exists */
    double inv = fabs(sum) < 1e-12 ? 0 : 1 / sum;
    for (int64_t i = 0; i < k; i++) w[i] = v[i] * inv;
    if (rc != 0)
        return mtgradi_fail(a, MTGRAD_E_MAXITER,
                            "imtl_g: the Jacobi eigensolver did not fully converge; result used as is");
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_imtl_g = {
    .name = "imtl_g",
    .summary = "IMTL-G: equal projections of the update on every unit task gradient",
    .citation = "Liu et al., Towards Impartial Multi-task Learning, ICLR 2021; "
                "TorchJD/torchjd src/torchjd/aggregation/_imtl_g.py",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED | MTGRAD_PROMISE_PERMUTATION,
    .work_size = imtl_g_work_size,
    .weights = imtl_g_weights,
};
