/* cmd_compare.c — `mtgrad compare` (placeholder until the command lands; replaced wholesale). */
#include "cli.h"

#include <stdio.h>

const char mtgrad_usage_compare[] = "usage: mtgrad compare ... (not built yet)\n";

int mtgrad_cmd_compare(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mtgrad compare: not available yet\n", stderr);
    return 1;
}
