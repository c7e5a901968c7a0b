/*
 * method_dwa.c — Dynamic Weight Average: weight each task by how slowly its loss decreases.
 *
 *   call e (one call per epoch, L_e = the epoch-average losses of epoch e):
 *     e <= 1:  w_i = 1
 *     e >= 2:  r_i = L_{e-1,i} / L_{e-2,i};   w = k softmax(r / T)
 *   then L_e is recorded; direction = sum_i w_i g_i.
 * The losses of the current call only enter later calls' weights. In a per-batch training loop
 * compute the weights once per epoch (e.g. with weights_from_gram and the previous epoch's
 * averages) and reuse them. T = 2 (mtan, LibMTL).
 *
 * Outputs: w (k), sum w = k. State: the last two loss vectors and the call count (2k + 1
 * doubles). Cost O(k) plus O(kd) for the combination; no Gram matrix.
 *
 * See Section 3.3 (Eq. 2) of Liu, Johns & Davison, "End-to-End Multi-Task Learning with
 * Attention", CVPR 2019; reference code lorenmt/mtan im2im_pred/utils.py and LibMTL
 * LibMTL/weighting/DWA.py.
 */
#include "internal.h"

#include <float.h>
#include <math.h>

enum { P_T, N_PARAMS };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"T", MTGRAD_PARAM_REAL, 2.0, 0, 1e6, NULL, MTGRAD_PARAM_LO_OPEN,
     "softmax temperature over the loss ratios (larger = closer to equal weights)"},
};

/* state layout: [0,k) L_{e-1}, [k,2k) L_{e-2}, [2k] calls recorded (capped at 2) */
static size_t dwa_state_size(int64_t k) { return 2 * (size_t)k + 1; }

static mtgrad_status dwa_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                 double *w)
{
    (void)M;
    int64_t k = a->k;
    double *prev = a->state, *prev2 = a->state + k, *count = a->state + 2 * k;
    for (int64_t i = 0; i < k; i++)
        if (!(losses[i] > 0))
            return mtgradi_fail(a, MTGRAD_E_INVAL, "dwa: losses[%lld] = %g; DWA needs positive losses",
                                (long long)i, losses[i]);
    if (*count < 2) {
        for (int64_t i = 0; i < k; i++) w[i] = 1;
    } else {
        double T = a->pv[P_T], mx = -INFINITY, s = 0;
        for (int64_t i = 0; i < k; i++) {
            /* capped so an overflowing ratio (1e300/1e-300) cannot make inf - inf below */
            w[i] = fmin(prev[i] / prev2[i] / T, DBL_MAX);
            mx = fmax(mx, w[i]);
        }
        /* shifted by the max: exp never overflows, the largest term is 1 */
        for (int64_t i = 0; i < k; i++) s += w[i] = exp(w[i] - mx);
        for (int64_t i = 0; i < k; i++) w[i] = (double)k * w[i] / s;
    }
    for (int64_t i = 0; i < k; i++) {
        prev2[i] = prev[i];
        prev[i] = losses[i];
    }
    if (*count < 2) *count += 1;
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_dwa = {
    .name = "dwa",
    .summary = "DWA: k softmax of the last two epochs' loss ratios (weights 1 for two epochs)",
    .citation = "Liu, Johns & Davison, End-to-End Multi-Task Learning with Attention, CVPR 2019 "
                "(lorenmt/mtan im2im_pred/utils.py; LibMTL LibMTL/weighting/DWA.py)",
    .flags = MTGRAD_NEEDS_LOSSES | MTGRAD_STATEFUL | MTGRAD_HAS_WEIGHTS | MTGRAD_HEADS_WEIGHTED,
    .params = params,
    .n_params = N_PARAMS,
    .state_size = dwa_state_size,
    .weights = dwa_weights,
};
