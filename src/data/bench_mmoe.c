/*
 * bench_mmoe.c — the synthetic regression tasks of MMoE (Ma et al., KDD 2018, §3.2; see
 * benchmarks.md §4), generalised to k tasks. The task correlation p is the one knob: it sets
 * the cosine between the tasks' generating vectors, so one can watch how a method copes as the
 * tasks stop agreeing.
 *
 *   k = 2:  w1 = c u1,  w2 = c (p u1 + sqrt(1 - p^2) u2)                 p in [-1, 1]
 *   k > 2:  w_t = c (sqrt(p) u0 + sqrt(1 - p) u_t), t = 1..k              p in [0, 1]
 *           (unit u's, mutually orthogonal: cos(w_s, w_t) = p for every pair)
 *   x ~ N(0, I_d),  y_t = w_t.x + sum_{i=1..m} sin(alpha_i w_t.x + beta_i) + eps_t,
 *   eps_t ~ N(0, noise), alpha_i, beta_i ~ N(0, 1) drawn once (shared by the tasks).
 *
 * The paper leaves m, alpha, beta, c and the sample counts open; the defaults here are
 * benchmarks.md's choice (c = 1, m = 10, 10000 train / 5000 test). Three generator streams
 * derived from the data seed (vectors and alpha/beta; train; test) make the train set
 * independent of ntest and a smaller set the prefix of a larger one.
 */
#include "data_internal.h"
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_P, P_K, P_D, P_M, P_C, P_NTRAIN, P_NTEST, P_NOISE, N_PARAMS };

static const mtgradi_bparam params[N_PARAMS] = {
    {"p", MTGRADI_BP_REAL, 0.5, -1, 1, NULL, "task correlation: cosine of the generating vectors"},
    {"k", MTGRADI_BP_INT, 2, 2, MTGRAD_NN_MAX_TASKS, NULL, "number of tasks"},
    {"d", MTGRADI_BP_INT, 100, 2, 100000, NULL, "input dimension (at least k + 1 when k > 2)"},
    {"m", MTGRADI_BP_INT, 10, 0, 1000, NULL, "number of sine terms (0: linear tasks)"},
    {"c", MTGRADI_BP_REAL, 1, 0, 1e6, NULL, "norm of the generating vectors"},
    {"ntrain", MTGRADI_BP_INT, 10000, 1, 10000000, NULL, "training samples"},
    {"ntest", MTGRADI_BP_INT, 5000, 1, 10000000, NULL, "test samples"},
    {"noise", MTGRADI_BP_REAL, 0.01, 0, 1e6, NULL, "variance of the label noise"},
};

static const char help[] =
    "p=0.5        task correlation (cosine of the generating vectors); k = 2: [-1, 1], k > 2: [0, 1]\n"
    "k=2          number of tasks (2..64)\n"
    "d=100        input dimension (>= k + 1 when k > 2)\n"
    "m=10         sine terms in every label (0: linear tasks, label correlation = p/(1+noise))\n"
    "c=1          norm of the generating vectors\n"
    "ntrain=10000 training samples\n"
    "ntest=5000   test samples\n"
    "noise=0.01   variance of the Gaussian label noise\n"
    "model: trunk linear:113,relu; heads linear:8,relu,linear:1; MSE per task, metric MSE\n"
    "recipe: Adam lr 1e-3, batch 128, 20 epochs\n";

/* n orthonormal vectors of length d (rows of u), from Gaussian draws by modified Gram-Schmidt,
 * applied twice so that the cosines hold to rounding. */
static void orthonormal(mtgradi_rng *r, int64_t n, int64_t d, double *u)
{
    for (int64_t i = 0; i < n * d; i++) u[i] = mtgradi_rng_normal(r);
    for (int64_t i = 0; i < n; i++) {
        double *ui = u + i * d;
        for (int pass = 0; pass < 2; pass++) {
            for (int64_t j = 0; j < i; j++) {
                const double *uj = u + j * d;
                double dot = 0;
                for (int64_t t = 0; t < d; t++) dot += ui[t] * uj[t];
                for (int64_t t = 0; t < d; t++) ui[t] -= dot * uj[t];
            }
            double nrm = 0;
            for (int64_t t = 0; t < d; t++) nrm += ui[t] * ui[t];
            nrm = sqrt(nrm);
            for (int64_t t = 0; t < d; t++) ui[t] /= nrm;
        }
    }
}

/* The k generating vectors w (k x d) from the u's. */
static void generating_vectors(const double *u, int64_t k, int64_t d, double p, double c,
                               double *w)
{
    for (int64_t t = 0; t < k; t++) {
        double a, b;
        const double *shared = u, *own;
        if (k == 2) { /* the paper's construction */
            a = t == 0 ? 1 : p;
            b = t == 0 ? 0 : sqrt(1 - p * p);
            own = u + d;
        } else {
            a = sqrt(p);
            b = sqrt(1 - p);
            own = u + (t + 1) * d;
        }
        for (int64_t j = 0; j < d; j++) w[t * d + j] = c * (a * shared[j] + b * own[j]);
    }
}

typedef struct mmoe_model {
    int64_t k, d, m;
    const double *w, *alpha, *beta;
    double noise_sd;
} mmoe_model;

static void generate(const mmoe_model *mm, uint64_t stream_seed, mtgrad_dataset *ds)
{
    mtgradi_rng r;
    mtgradi_rng_seed(&r, stream_seed);
    int64_t n = ds->n, d = mm->d;
    for (int64_t s = 0; s < n; s++) {
        float *x = ds->x + s * d;
        for (int64_t j = 0; j < d; j++) x[j] = (float)mtgradi_rng_normal(&r);
        for (int64_t t = 0; t < mm->k; t++) {
            /* labels from the stored (float) inputs: y is exactly a function of what the
             * model sees, plus the noise */
            double z = 0;
            for (int64_t j = 0; j < d; j++) z += mm->w[t * d + j] * (double)x[j];
            double y = z;
            for (int64_t i = 0; i < mm->m; i++) y += sin(mm->alpha[i] * z + mm->beta[i]);
            y += mm->noise_sd * mtgradi_rng_normal(&r);
            ds->y[t * n + s] = (float)y;
        }
    }
}

static mtgrad_status load(mtgrad_bench *b, const double *v, uint64_t seed, char *err,
                          size_t errlen)
{
    int64_t k = (int64_t)v[P_K], d = (int64_t)v[P_D], m = (int64_t)v[P_M];
    double p = v[P_P], c = v[P_C];
    if (k > 2 && p < 0) {
        mtgradi_msg(err, errlen, "mmoe: p = %g must be in [0, 1] when k > 2 (all pairs share one "
                             "cosine)", p);
        return MTGRAD_E_INVAL;
    }
    int64_t nu = k == 2 ? 2 : k + 1;
    if (d < nu) {
        mtgradi_msg(err, errlen, "mmoe: d = %lld is too small for %lld orthogonal vectors",
                (long long)d, (long long)nu);
        return MTGRAD_E_INVAL;
    }
    b->k = k;
    b->recipe.epochs = 20;
    b->recipe.batch = 128;
    b->recipe.optim = mtgrad_optim_config_default(MTGRAD_OPTIM_ADAM);
    mtgradi_bench_set_model(b, d, 1, 1, "linear:113,relu", "linear:8,relu,linear:1",
                            MTGRAD_LOSS_MSE);
    for (int64_t t = 0; t < k; t++) {
        snprintf(b->task_names[t], MTGRADI_TASK_NAME, "task%lld", (long long)(t + 1));
        b->metrics[t] = MTGRAD_METRIC_MSE;
    }

    double *u = mtgradi_malloc((size_t)(nu * d) * sizeof *u);
    double *w = mtgradi_malloc((size_t)(k * d) * sizeof *w);
    double *ab = mtgradi_malloc((size_t)(2 * m + 1) * sizeof *ab);
    mtgrad_status s = MTGRAD_E_NOMEM;
    if (!u || !w || !ab) goto cleanup;
    mtgradi_rng r;
    mtgradi_rng_seed(&r, mtgradi_data_stream_seed(seed, 0));
    orthonormal(&r, nu, d, u);
    generating_vectors(u, k, d, p, c, w);
    for (int64_t i = 0; i < 2 * m; i++) ab[i] = mtgradi_rng_normal(&r);
    mmoe_model mm = {k, d, m, w, ab, ab + m, sqrt(v[P_NOISE])};

    if (mtgradi_dataset_alloc(&b->train, (int64_t)v[P_NTRAIN], k, d, 1, 1) != MTGRAD_OK ||
        mtgradi_dataset_alloc(&b->test, (int64_t)v[P_NTEST], k, d, 1, 1) != MTGRAD_OK)
        goto cleanup;
    generate(&mm, mtgradi_data_stream_seed(seed, 1), &b->train);
    generate(&mm, mtgradi_data_stream_seed(seed, 2), &b->test);
    s = MTGRAD_OK;
cleanup:
    if (s == MTGRAD_E_NOMEM) mtgradi_msg(err, errlen, "mmoe: out of memory");
    free(u);
    free(w);
    free(ab);
    return s;
}

const mtgradi_bench_type mtgradi_bench_mmoe = {
    "mmoe",
    "MMoE synthetic regression (Ma et al. 2018): k tasks whose generating vectors have cosine p",
    help,
    params,
    N_PARAMS,
    load,
};
