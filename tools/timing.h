/* timing.h — the clock and the median the benchmark commands share (cmd_bench.c,
 * cmd_bench_train.c). */
#ifndef MTGRAD_TOOLS_TIMING_H
#define MTGRAD_TOOLS_TIMING_H

/* Seconds on a monotonic clock. */
double mtgrad_tool_now(void);
/* The median of v[0..n) (n >= 1); sorts v in place. */
double mtgrad_tool_median(double *v, int n);

#endif
