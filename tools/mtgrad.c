/* mtgrad — command-line front end of libmtgrad: dispatches to the subcommands (tools/cmd_*.c).
 * Built on the public header only. */
#include "cli.h"
#include "mtgrad.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: mtgrad [--help] [--version] COMMAND [ARGS]\n"
    "commands:\n"
    "  check-golden PATH...   run golden test vectors and compare with their tolerances\n"
    "  methods                list the methods, their needs and parameters (--json, --markdown)\n"
    "  aggregate -m NAME FILE the update direction (and weights) for a gradient matrix\n"
    "  train --bench B -m M   train one model on a benchmark (progress, JSON report, --resume)\n"
    "  compare --bench B      single-task baselines and methods over seeds: Δm%, time, plots\n"
    "  toy                    the CAGrad 2-task toy: trajectories, Pareto set reached or not\n"
    "  bench                  kernel and method timings against the bandwidth floor\n"
    "  help [COMMAND]         this text, or the usage of COMMAND\n"
    "Run 'mtgrad help COMMAND' for the options of a command.\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} command;

static const command commands[] = {
    {"check-golden", mtgrad_cmd_check_golden, mtgrad_usage_check_golden},
    {"methods", mtgrad_cmd_methods, mtgrad_usage_methods},
    {"aggregate", mtgrad_cmd_aggregate, mtgrad_usage_aggregate},
    {"train", mtgrad_cmd_train, mtgrad_usage_train},
    {"compare", mtgrad_cmd_compare, mtgrad_usage_compare},
    {"toy", mtgrad_cmd_toy, mtgrad_usage_toy},
    {"bench", mtgrad_cmd_bench, mtgrad_usage_bench},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static int help(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stdout);
        return 0;
    }
    const command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "mtgrad: unknown command '%s'\n%s", argv[1], usage);
        return 2;
    }
    fputs(c->usage, stdout);
    return 0;
}

int main(int argc, char **argv)
{
    /* A shared library older or newer than the header this tool was built with would silently
     * disagree on structures and flags: refuse to run. */
    if (mtgrad_version_number() != MTGRAD_VERSION_NUMBER) {
        fprintf(stderr, "mtgrad: library version %s does not match header version %s\n",
                mtgrad_version_string(), MTGRAD_VERSION_STRING);
        return 1;
    }
    mtgrad_json_track_alloc();
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return help(1, argv + 1);
    if (strcmp(cmd, "--version") == 0) {
        printf("mtgrad %s (library %s)\n", MTGRAD_VERSION_STRING, mtgrad_version_string());
        return 0;
    }
    if (strcmp(cmd, "help") == 0) return help(argc - 1, argv + 1);
    const command *c = find_command(cmd);
    if (!c) {
        fprintf(stderr, "mtgrad: unknown command '%s'\n%s", cmd, usage);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
