/* Thread-count independence, end to end: every method of the registry, through the public
 * mtgrad_aggregate_f32, gives the same bits (direction, weights, status) with "threads=1",
 * "threads=2" and "threads=3", over several calls (so stateful methods carry their state), for
 * shapes with d not a multiple of the SIMD width or of the Gram's block, ldg > d, and
 * k = 1, 2, 3, 10, 40. Shapes with k·d >= 2^18 (MTGRADI_PAR_MIN_ELEMS) run the kernels' parallel
 * regions for real (below that the kernels stay on one thread); the others check the small path. */
#include "harness.h"
#include "mtgrad.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CALLS 3
#define N_THREADS 3

typedef struct {
    int64_t k, d, ld;
} shape;

static const shape shapes[] = {
    {1, 262147, 262147}, {1, 5, 7},       {2, 131101, 131110}, {2, 13, 13},
    {3, 87389, 87389},   {3, 1000, 1003}, {10, 26227, 26240},  {10, 4099, 4099},
    {40, 6563, 6563},    {40, 65, 80},
};

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 11;
}

static double uniform(uint64_t *s) { return (double)lcg(s) / 9007199254740992.0; }

/* Rows = a shared component + a task-specific one, some tasks flipped: realistic conflicts. */
static float *make_G(const shape *sh, uint64_t seed)
{
    float *G = malloc((size_t)(sh->k * sh->ld) * sizeof *G);
    uint64_t s = seed;
    for (int64_t c = 0; c < sh->ld; c++) {
        double common = uniform(&s) - 0.5;
        for (int64_t i = 0; i < sh->k; i++) {
            double sign = i % 3 == 2 ? -0.5 : 1.0;
            G[i * sh->ld + c] =
                (float)(sign * common + (uniform(&s) - 0.5) * (1 + (double)(i % 4)));
        }
    }
    return G;
}

static void compare_method(const char *name, unsigned flags, const shape *sh)
{
    mtgrad_aggregator *a[N_THREADS];
    char params[32], err[256];
    for (int t = 0; t < N_THREADS; t++) {
        snprintf(params, sizeof params, "threads=%d", t + 1);
        a[t] = NULL;
        mtgrad_status s = mtgrad_aggregator_new(&a[t], name, sh->k, params, err, sizeof err);
        CHECK(s == MTGRAD_OK, "%s k=%lld %s: %s", name, (long long)sh->k, params, err);
        if (s != MTGRAD_OK) {
            for (int u = 0; u < t; u++) mtgrad_aggregator_free(a[u]);
            return;
        }
    }
    size_t dsz = (size_t)sh->d * sizeof(float), wsz = (size_t)sh->k * sizeof(double);
    float *dir[N_THREADS];
    double *w[N_THREADS], *losses = malloc(wsz), *after = malloc(wsz);
    for (int t = 0; t < N_THREADS; t++) dir[t] = malloc(dsz), w[t] = malloc(wsz);
    int has_w = (flags & MTGRAD_HAS_WEIGHTS) != 0;
    for (int call = 0; call < CALLS; call++) {
        float *G = make_G(sh, 1000u + (uint64_t)call * 77u + (uint64_t)sh->k);
        for (int64_t i = 0; i < sh->k; i++) losses[i] = 1.0 + 0.5 * (double)i + 0.1 * call;
        mtgrad_status st[N_THREADS];
        for (int t = 0; t < N_THREADS; t++) {
            memset(dir[t], 0, dsz);
            st[t] = mtgrad_aggregate_f32(a[t], G, sh->k, sh->d, sh->ld,
                                         (flags & MTGRAD_NEEDS_LOSSES) ? losses : NULL, dir[t],
                                         has_w ? w[t] : NULL);
        }
        for (int t = 1; t < N_THREADS; t++) {
            CHECK(st[t] == st[0], "%s k=%lld d=%lld call %d: status %d with %d threads, %d with 1",
                  name, (long long)sh->k, (long long)sh->d, call, (int)st[t], t + 1, (int)st[0]);
            CHECK(memcmp(dir[t], dir[0], dsz) == 0,
                  "%s k=%lld d=%lld ld=%lld call %d: direction bits differ "
                  "between 1 and %d threads",
                  name, (long long)sh->k, (long long)sh->d, (long long)sh->ld, call, t + 1);
            if (has_w)
                CHECK(memcmp(w[t], w[0], wsz) == 0,
                      "%s k=%lld d=%lld call %d: weights differ between 1 and "
                      "%d threads",
                      name, (long long)sh->k, (long long)sh->d, call, t + 1);
        }
        CHECK(st[0] == MTGRAD_OK || st[0] == MTGRAD_E_MAXITER || st[0] == MTGRAD_E_NOPROGRESS,
              "%s k=%lld d=%lld call %d: status %d (%s)", name, (long long)sh->k, (long long)sh->d,
              call, (int)st[0], mtgrad_aggregator_error(a[0]));
        if (flags & MTGRAD_NEEDS_LOSSES_AFTER) {
            for (int64_t i = 0; i < sh->k; i++) after[i] = 0.9 * losses[i];
            for (int t = 0; t < N_THREADS; t++) (void)mtgrad_aggregator_update(a[t], after, sh->k);
        }
        free(G);
    }
    for (int t = 0; t < N_THREADS; t++) {
        free(dir[t]), free(w[t]);
        mtgrad_aggregator_free(a[t]);
    }
    free(losses), free(after);
}

int main(void)
{
    size_t n_methods = mtgrad_method_count();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t m = 0; m < n_methods; m++) {
            const mtgrad_method *me = mtgrad_method_at(m);
            compare_method(mtgrad_method_name(me), mtgrad_method_flags(me), &shapes[s]);
        }
    printf("%zu methods x %zu shapes x %d calls, threads 1/2/3\n", n_methods,
           sizeof shapes / sizeof shapes[0], CALLS);
    return harness_report();
}
