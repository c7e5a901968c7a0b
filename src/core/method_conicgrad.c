/*
 * method_conicgrad.c — ConicGrad: MGDA-style max-min with the update kept in a cone around g0.
 *
 * RECONSTRUCTION: no official code or method text was available; this is the project's
 * derivation (spec §6.1) from the paper's published description (a cone around the mean
 * gradient, a max-min objective solved by duality, an SMW closed form, a normalisation). It is
 * verified for internal consistency only (cone membership, dual KKT, SMW = projection form), not
 * against the authors' results. Parameter values and the normalisation are assumptions.
 *
 *   cone     C = { d : <d, g0> >= c·||d||·||g0|| },  0 < c < 1 the cosine of the half-angle
 *   primal   max_{d in C} min_{w in Δ} <Gᵀw, d> - ½||d||²
 *   dual     w* = argmin_{w in Δ} h(w) = ½||Π_C(Gᵀw)||²    (convex: ½ dist² to the polar cone)
 *   update   d* = Π_C(Gᵀw*), then scale = none (d*), g0norm (default: ||g0||·d* / ||d*||) or
 *            cagrad (d* / (1 + c²))
 * Π_C in closed form, all Gram-only (u = 1/(k||g0||) so that u0 = g0/||g0|| = Gᵀu, p = <g_w, u0>,
 * γ = w - p·u so that Gᵀγ = g_w - p·u0, q = ||Gᵀγ||, s = sqrt(1 - c²)):
 *   p >= c·||g_w||        (inside)        Π = g_w                      = Gᵀw
 *   c·p + s·q <= 0        (polar cone)    Π = 0
 *   otherwise             (boundary)      Π = (c p + s q)(c u0 + s Gᵀγ/q) = Gᵀβ
 * h is C¹ with gradient G Π = Mβ and piecewise-C² (exact Hessians per piece below), so the SQP
 * solver of qp.h finds w* to KKT accuracy. Outputs: weights = the scaled β (direction = Gᵀβ).
 * g0 = 0 (||g0|| <= 1e-10·max_i ||g_i||): the cone is undefined; falls back to the exact MGDA
 * weights, unscaled. d* = 0 (some g_w in the polar cone): weights 0 for every scale.
 * If the MGDA direction lies in C, d* (scale none) is the MGDA direction. c -> 1 gives d ∝ g0.
 * Cost: O(k²) per evaluation, O(k³) per SQP iteration.
 *
 * See Hassanpour et al., "Fantastic Multi-Task Gradient Updates and How to Find Them In a Cone",
 * arXiv 2502.00217, 2025 (no reference code found; mtgrad spec §6).
 */
#include "internal.h"
#include "qp.h"

#include <math.h>

enum { P_C, P_SCALE, N_PARAMS };
enum { SCALE_NONE = 0, SCALE_G0NORM = 1, SCALE_CAGRAD = 2 };

static const mtgrad_param_desc params[N_PARAMS] = {
    {"c", MTGRAD_PARAM_REAL, 0.5, 0, 1, NULL, MTGRAD_PARAM_LO_OPEN | MTGRAD_PARAM_HI_OPEN,
     "cosine of the cone's half-angle around g0 (paper value unknown; 0.5 assumed)"},
    {"scale", MTGRAD_PARAM_CHOICE, SCALE_G0NORM, 0, 0, "none|g0norm|cagrad", 0,
     "magnitude: the cone projection as is, rescaled to ||g0||, or divided by 1 + c^2"},
};

typedef struct {
    const double *M;
    int64_t k;
    double c, s, n0;
    double *Mu, *Mw, *gam, *Mg, *Ma, *beta; /* k each; Mu = M·u is fixed */
} cone_ctx;

/* h(w) and its derivatives; also leaves β (Π_C(g_w) = Gᵀβ) in ctx->beta. */
static double cone_eval(void *vctx, const double *w, double *grad, double *hess, double *gscale)
{
    cone_ctx *x = vctx;
    int64_t k = x->k;
    const double *M = x->M;
    double u = 1.0 / ((double)k * x->n0);
    mtgradi_matvec(M, k, w, x->Mw);
    double t = fmax(mtgradi_dot(w, x->Mw, k), 0.0), p = mtgradi_dot(w, x->Mu, k);
    double gs = 0;
    for (int64_t i = 0; i < k; i++) gs = fmax(gs, fabs(x->Mw[i]) + fabs(p * x->Mu[i]));
    if (gscale) *gscale = gs;
    int region; /* 0 inside, 1 polar, 2 boundary */
    double q = 0, rho = 0;
    if (p >= x->c * sqrt(t)) {
        region = 0;
    } else {
        /* q from γ directly: t - p² would cancel when g_w is nearly parallel to g0 */
        for (int64_t i = 0; i < k; i++) x->gam[i] = w[i] - p * u, x->Mg[i] = x->Mw[i] - p * x->Mu[i];
        q = sqrt(fmax(mtgradi_dot(x->gam, x->Mg, k), 0.0));
        rho = x->c * p + x->s * q;
        region = rho <= 0 || q <= 0 ? (p > 0 && rho > 0 ? 0 : 1) : 2;
    }
    if (region == 0) {
        for (int64_t i = 0; i < k; i++) x->beta[i] = w[i];
        if (grad)
            for (int64_t i = 0; i < k; i++) grad[i] = x->Mw[i];
        if (hess)
            for (int64_t i = 0; i < k * k; i++) hess[i] = M[i];
        return 0.5 * t;
    }
    if (region == 1) {
        for (int64_t i = 0; i < k; i++) x->beta[i] = 0;
        if (grad)
            for (int64_t i = 0; i < k; i++) grad[i] = 0;
        if (hess)
            for (int64_t i = 0; i < k * k; i++) hess[i] = 0;
        return 0;
    }
    for (int64_t i = 0; i < k; i++) {
        x->beta[i] = rho * (x->c * u + x->s * x->gam[i] / q);
        x->Ma[i] = x->c * x->Mu[i] + x->s * x->Mg[i] / q; /* G·∇ρ */
    }
    if (grad)
        for (int64_t i = 0; i < k; i++) grad[i] = rho * x->Ma[i];
    if (hess) {
        /* ∇ρ∇ρᵀ + ρ·s/q·(P⊥ - v̂v̂ᵀ) in parameter space, pulled back through G */
        double cf = rho * x->s / q;
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++)
                hess[i * k + j] = x->Ma[i] * x->Ma[j] +
                                  cf * (M[i * k + j] - x->Mu[i] * x->Mu[j] -
                                        x->Mg[i] * x->Mg[j] / (q * q));
    }
    return 0.5 * rho * rho;
}

/* Mu, Mw, gam, Mg, Ma, beta (k each), FISTA's y, grad, previous w, projection scratch (k each),
 * then the SQP's (or the fallback QP's) scratch */
static size_t conicgrad_work_size(int64_t k)
{
    return (size_t)(10 * k) + mtgradi_smooth_simplex_work_size(k);
}

/* Accelerated projected gradient (FISTA with restarts) on h, step 1/L with L = trace(M) >=
 * lambda_max(M), a Lipschitz constant of grad h (h = half the squared distance of g_w to the
 * polar cone, composed with w -> G^T w). h is convex and C^1 but only piecewise C^2, so the
 * Newton-type solver can stall where the region (inside / boundary / polar) changes; this
 * first-order method always makes progress and hands the Newton solver a better start. */
static void cone_fista(cone_ctx *x, int64_t k, double L, double *w, double *scratch, int iters)
{
    double *y = scratch, *g = scratch + k, *wprev = scratch + 2 * k, *proj = scratch + 3 * k;
    double t = 1, hprev = cone_eval(x, w, NULL, NULL, NULL);
    for (int64_t i = 0; i < k; i++) y[i] = wprev[i] = w[i];
    for (int it = 0; it < iters; it++) {
        cone_eval(x, y, g, NULL, NULL);
        for (int64_t i = 0; i < k; i++) g[i] = y[i] - g[i] / L;
        mtgradi_simplex_project(g, k, w, proj);
        double h = cone_eval(x, w, NULL, NULL, NULL);
        double tn = 0.5 * (1 + sqrt(1 + 4 * t * t)), mom = (t - 1) / tn;
        if (h > hprev) { /* adaptive restart (O'Donoghue & Candes 2015): drop the momentum */
            tn = 1;
            mom = 0;
        }
        for (int64_t i = 0; i < k; i++) {
            y[i] = w[i] + mom * (w[i] - wprev[i]);
            wprev[i] = w[i];
        }
        t = tn;
        hprev = h;
    }
}

static mtgrad_status conicgrad_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                       double *w)
{
    (void)losses;
    int64_t k = a->k;
    double kk = (double)k, sum = 0, dmax = 0, c = a->pv[P_C];
    cone_ctx x = {M, k, c, sqrt(1 - c * c), 0, a->work, a->work + k, a->work + 2 * k,
                  a->work + 3 * k, a->work + 4 * k, a->work + 5 * k};
    double *sw = a->work + 6 * k; /* FISTA uses its first 4k when the SQP needs help */
    for (int64_t i = 0; i < k * k; i++) sum += M[i];
    for (int64_t i = 0; i < k; i++) dmax = fmax(dmax, M[i * k + i]);
    double n0sq = sum / (kk * kk);
    if (!(n0sq > 1e-20 * dmax)) { /* g0 = 0: no cone; MGDA */
        mtgrad_status s = mtgradi_qp_simplex(M, NULL, k, w, NULL, sw);
        if (s != MTGRAD_OK)
            return mtgradi_fail(a, s, "conicgrad: g0 = 0 and the MGDA fallback QP did not converge "
                                "(its best iterate is used)");
        return MTGRAD_OK;
    }
    x.n0 = sqrt(n0sq);
    for (int64_t i = 0; i < k; i++) {
        double r = 0;
        for (int64_t j = 0; j < k; j++) r += M[i * k + j];
        x.Mu[i] = r / (kk * x.n0);
        w[i] = 1.0 / kk; /* g_w = g0: inside the cone */
    }
    mtgradi_simplex_fn fn = {cone_eval, &x};
    mtgrad_status s = mtgradi_smooth_simplex(&fn, k, w, 0, 0, NULL, sw);
    if (s != MTGRAD_OK) { /* Newton stalled at a region change: first-order steps, then retry */
        double trace = 0;
        for (int64_t i = 0; i < k; i++) trace += M[i * k + i];
        cone_fista(&x, k, trace, w, a->work + 6 * k, 2000);
        s = mtgradi_smooth_simplex(&fn, k, w, 0, 0, NULL, sw + 4 * k);
    }
    /* β at the returned point; h = 0 there (g_w in the polar cone, β = 0) is the global
     * minimum of h >= 0 whatever the residual says (h is only C¹ at the polar cone's edge) */
    if (cone_eval(&x, w, NULL, NULL, NULL) == 0) s = MTGRAD_OK;
    double f = 1;
    int scale = (int)a->pv[P_SCALE];
    if (scale == SCALE_G0NORM) {
        double dn = sqrt(fmax(mtgradi_quad(M, k, x.beta), 0.0));
        f = dn > 0 ? x.n0 / dn : 0;
    } else if (scale == SCALE_CAGRAD) {
        f = 1 / (1 + c * c);
    }
    for (int64_t i = 0; i < k; i++) w[i] = f * x.beta[i];
    if (s != MTGRAD_OK)
        return mtgradi_fail(a, s, "conicgrad: the dual solver stopped before KKT accuracy (the best "
                            "iterate is used)");
    return MTGRAD_OK;
}

const mtgrad_method mtgradi_conicgrad = {
    .name = "conicgrad",
    .summary = "ConicGrad (reconstruction): MGDA-style max-min with the update in a cone around g0",
    .citation = "Hassanpour et al., Fantastic Multi-Task Gradient Updates and How to Find Them In a "
                "Cone, arXiv 2502.00217, 2025 (no reference code; reconstruction, mtgrad spec §6)",
    .flags = MTGRAD_NEEDS_GRAM | MTGRAD_HAS_WEIGHTS,
    .params = params,
    .n_params = N_PARAMS,
    .work_size = conicgrad_work_size,
    .weights = conicgrad_weights,
};
