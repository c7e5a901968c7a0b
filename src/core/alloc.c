/*
 * alloc.c — the one place the library allocates (mtgradi_malloc/calloc/realloc), so that tests
 * can make the N-th allocation fail and check every path returns MTGRAD_E_NOMEM, leaks nothing
 * and leaves its object usable (tests/unit/test_alloc_fail.c, tests/eval/test_alloc_fail_nn.c).
 *
 * The counters are C11 atomics (relaxed): threads that create aggregators at the same time (the
 * toy runs methods in parallel) must not race on them. Arming a failure is meant for
 * single-threaded tests; with it off (the default) the cost is one atomic increment and a load.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic long fail_after = -1; /* < 0: never fail; else successes left before one fails */
static _Atomic long alloc_count;     /* allocations attempted so far (failed ones included) */

void mtgradi_alloc_fail_after(long n)
{
    atomic_store_explicit(&fail_after, n, memory_order_relaxed);
}

long mtgradi_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}

/* 1 if this allocation must fail (and the injection is then spent: one failure per arming). */
static int inject(void)
{
    atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_after, memory_order_relaxed);
    while (left >= 0) {
        long next = left == 0 ? -1 : left - 1;
        if (atomic_compare_exchange_weak_explicit(&fail_after, &left, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            return left == 0;
    }
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
