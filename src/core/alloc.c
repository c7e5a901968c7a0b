/*
 * alloc.c — the one place the library allocates (mtgradi_malloc/calloc/realloc), so that tests
 * can make the N-th allocation fail and check every path returns MTGRAD_E_NOMEM, leaks nothing
 * and leaves its object usable (tests/unit/test_alloc_fail.c, tests/eval/test_alloc_fail_nn.c).
 *
 * The failure control is a plain static counter: not thread-safe, meant only for single-threaded
 * tests. With it off (the default) the cost is one predictable branch and one increment.
 */
#include "internal.h"

#include <stdlib.h>

static long fail_after = -1; /* < 0: never fail; else successes left before one fails */
static long alloc_count;     /* allocations attempted so far (failed ones included) */

void mtgradi_alloc_fail_after(long n)
{
    fail_after = n;
}

long mtgradi_alloc_count(void)
{
    return alloc_count;
}

/* 1 if this allocation must fail (and the injection is then spent: one failure per arming). */
static int inject(void)
{
    alloc_count++;
    if (fail_after < 0) return 0;
    if (fail_after == 0) {
        fail_after = -1;
        return 1;
    }
    fail_after--;
    return 0;
}

void *mtgradi_malloc(size_t size)
{
    return inject() ? NULL : malloc(size);
}

void *mtgradi_calloc(size_t n, size_t size)
{
    return inject() ? NULL : calloc(n, size);
}

void *mtgradi_realloc(void *p, size_t size)
{
    return inject() ? NULL : realloc(p, size);
}
