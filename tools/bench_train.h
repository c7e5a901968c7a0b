/* bench_train.h — `mtgrad bench --train` (tools/cmd_bench_train.c): the time per training step
 * of every method against the number of tasks. Kept apart from cmd_bench.c, whose kernel
 * timings share nothing with it but the command name; `mtgrad bench` hands over to it when
 * --train is among its arguments. */
#ifndef MTGRAD_TOOLS_BENCH_TRAIN_H
#define MTGRAD_TOOLS_BENCH_TRAIN_H

/* argv as mtgrad_cmd_bench got it (argv[0] the command name; --train anywhere). Returns the
 * exit status: 0 success, 1 failure, 2 usage error. */
int mtgrad_cmd_bench_train(int argc, char **argv);

extern const char mtgrad_usage_bench_train[];

#endif
