/* simplex.c — Euclidean projection onto the probability simplex.
 * Sort-based algorithm (Held, Wolfe & Crowder 1974; Duchi et al., ICML 2008): sort y
 * descending into u, rho = the largest j with u_j - (sum_{i<=j} u_i - 1)/j > 0,
 * tau = (sum_{i<=rho} u_i - 1)/rho, out = max(y - tau, 0). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int desc_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

void mtgradi_simplex_project(const double *y, int64_t k, double *out, double *work)
{
    memcpy(work, y, (size_t)k * sizeof *work);
    qsort(work, (size_t)k, sizeof *work, desc_cmp);
    double cum = 0, tau = 0;
    for (int64_t j = 0; j < k; j++) {
        cum += work[j];
        double t = (cum - 1) / (double)(j + 1);
        if (work[j] - t > 0) tau = t;
    }
    for (int64_t i = 0; i < k; i++) out[i] = fmax(y[i] - tau, 0.0);
}

mtgrad_status mtgrad_simplex_project(const double *y, int64_t k, double *out)
{
    if (!y || !out) return MTGRAD_E_INVAL;
    if (k < 1) return MTGRAD_E_SHAPE;
    for (int64_t i = 0; i < k; i++)
        if (!isfinite(y[i])) return MTGRAD_E_NONFINITE;
    double *work = mtgradi_malloc((size_t)k * sizeof *work);
    if (!work) return MTGRAD_E_NOMEM;
    mtgradi_simplex_project(y, k, out, work);
    free(work);
    return MTGRAD_OK;
}
