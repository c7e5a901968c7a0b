/* task_order.c — the order in which each task visits the others (PCGrad, GradVac): injected
 * draws (k*k task indices, row i for task i), ascending 0..k-1, or a fresh random permutation per
 * task (torch.randperm / random.shuffle semantics; Fisher–Yates over the aggregator's RNG). */
#include "internal.h"

#include <math.h>

/* 1 if row[0..k) holds each of 0..k-1 exactly once; seen: k scratch doubles. */
static int is_permutation(const double *row, int64_t k, double *seen)
{
    for (int64_t j = 0; j < k; j++) seen[j] = 0;
    for (int64_t j = 0; j < k; j++) {
        double x = row[j];
        if (!(x >= 0 && x < (double)k) || x != floor(x) || seen[(int64_t)x] != 0) return 0;
        seen[(int64_t)x] = 1;
    }
    return 1;
}

mtgrad_status mtgradi_task_orders_take(mtgrad_aggregator *a, const double **draws, double *scratch)
{
    int64_t k = a->k;
    int bad;
    *draws = mtgradi_take_draws(a, (size_t)(k * k), &bad);
    if (bad)
        return mtgradi_fail(a, MTGRAD_E_INVAL, "%s: injected draws: need k*k = %lld task indices, got %zu",
                            a->m->name, (long long)(k * k), a->n_draws);
    if (!*draws) return MTGRAD_OK;
    for (int64_t i = 0; i < k; i++)
        if (!is_permutation(*draws + i * k, k, scratch))
            return mtgradi_fail(a, MTGRAD_E_INVAL,
                                "%s: injected draws: row %lld is not a permutation of 0..%lld",
                                a->m->name, (long long)i, (long long)(k - 1));
    return MTGRAD_OK;
}

const double *mtgradi_task_order(mtgrad_aggregator *a, const double *draws, int random, int64_t i,
                                 double *buf)
{
    int64_t k = a->k;
    if (draws) return draws + i * k;
    for (int64_t j = 0; j < k; j++) buf[j] = (double)j;
    if (random)
        for (int64_t j = k - 1; j > 0; j--) {
            int64_t s = mtgradi_rng_below(&a->rng, j + 1);
            double t = buf[j];
            buf[j] = buf[s];
            buf[s] = t;
        }
    return buf;
}
