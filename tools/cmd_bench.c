/* cmd_bench.c — `mtgrad bench` (placeholder until the command lands; replaced wholesale). */
#include "cli.h"

#include <stdio.h>

const char mtgrad_usage_bench[] = "usage: mtgrad bench ... (not built yet)\n";

int mtgrad_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mtgrad bench: not available yet\n", stderr);
    return 1;
}
