/* clock.c — a monotonic clock for the phase timings of an aggregation (mtgrad_aggregator_times).
 * Timing is reported, never asserted on. */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <time.h>

double mtgradi_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0.0;
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
