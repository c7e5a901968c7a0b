/* cli.h — the subcommands of the mtgrad command-line tool (each in tools/cmd_<name>.c).
 * Each takes the arguments after the command name (argv[0] is the command name itself) and
 * returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef MTGRAD_TOOLS_CLI_H
#define MTGRAD_TOOLS_CLI_H

int mtgrad_cmd_check_golden(int argc, char **argv);
int mtgrad_cmd_methods(int argc, char **argv);
int mtgrad_cmd_aggregate(int argc, char **argv);

/* Usage text of each command (printed by `mtgrad help CMD` and on usage errors). */
extern const char mtgrad_usage_check_golden[];
extern const char mtgrad_usage_methods[];
extern const char mtgrad_usage_aggregate[];

#endif
