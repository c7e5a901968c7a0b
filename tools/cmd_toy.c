/* cmd_toy.c — `mtgrad toy` (placeholder until the command lands; replaced wholesale). */
#include "cli.h"

#include <stdio.h>

const char mtgrad_usage_toy[] = "usage: mtgrad toy ... (not built yet)\n";

int mtgrad_cmd_toy(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mtgrad toy: not available yet\n", stderr);
    return 1;
}
