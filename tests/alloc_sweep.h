/* alloc_sweep.h — the allocation-failure sweep shared by tests/unit/test_alloc_fail.c (core) and
 * tests/eval/test_alloc_fail_nn.c (engine). A path: prepare (not counted) sets up what the call
 * needs, call is the swept call, done checks the outcome (status s) and frees everything.
 * sweep() counts the allocations of a successful call, then makes each fail in turn
 * (mtgradi_alloc_fail_after): every one must be reached and give MTGRAD_E_NOMEM.
 * Single-threaded: the injection counter is global. Include after harness.h and internal.h. */
#ifndef MTGRAD_TESTS_ALLOC_SWEEP_H
#define MTGRAD_TESTS_ALLOC_SWEEP_H

#include <stdio.h>

typedef struct path {
    const char *name;
    void (*prepare)(void *ctx);
    mtgrad_status (*call)(void *ctx);
    void (*done)(void *ctx, mtgrad_status s);
} path;

static long total_swept; /* allocation sites swept by this program */

/* Returns the number of allocations the path makes (0 if the successful call failed). */
static long sweep(const path *p, void *ctx)
{
    if (p->prepare) p->prepare(ctx);
    long a0 = mtgradi_alloc_count();
    mtgrad_status s = p->call(ctx);
    long n_total = mtgradi_alloc_count() - a0;
    CHECK(s == MTGRAD_OK, "%s: the successful call returned %s", p->name, mtgrad_status_str(s));
    p->done(ctx, s);
    if (s != MTGRAD_OK) return 0;
    for (long n = 0; n < n_total; n++) {
        if (p->prepare) p->prepare(ctx);
        long b0 = mtgradi_alloc_count();
        mtgradi_alloc_fail_after(n);
        s = p->call(ctx);
        mtgradi_alloc_fail_after(-1);
        CHECK(mtgradi_alloc_count() - b0 >= n + 1, "%s: allocation %ld was never reached", p->name,
              n);
        CHECK(s == MTGRAD_E_NOMEM, "%s: allocation %ld of %ld failed, status %s", p->name, n,
              n_total, mtgrad_status_str(s));
        p->done(ctx, s);
    }
    total_swept += n_total;
    printf("%-40s %3ld allocation sites swept\n", p->name, n_total);
    return n_total;
}

#endif
