/* cli.h — the subcommands of the mtgrad command-line tool (each in tools/cmd_<name>.c).
 * Each takes the arguments after the command name (argv[0] is the command name itself) and
 * returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef MTGRAD_TOOLS_CLI_H
#define MTGRAD_TOOLS_CLI_H

int mtgrad_cmd_check_golden(int argc, char **argv);
int mtgrad_cmd_methods(int argc, char **argv);
int mtgrad_cmd_aggregate(int argc, char **argv);
int mtgrad_cmd_train(int argc, char **argv);   /* cmd_train.c */
int mtgrad_cmd_compare(int argc, char **argv); /* cmd_compare.c */
int mtgrad_cmd_toy(int argc, char **argv);     /* cmd_toy.c */
int mtgrad_cmd_bench(int argc, char **argv);   /* cmd_bench.c */

/* Usage text of each command (printed by `mtgrad help CMD` and on usage errors). */
extern const char mtgrad_usage_check_golden[];
extern const char mtgrad_usage_methods[];
extern const char mtgrad_usage_aggregate[];
extern const char mtgrad_usage_train[];
extern const char mtgrad_usage_compare[];
extern const char mtgrad_usage_toy[];
extern const char mtgrad_usage_bench[];

#endif
