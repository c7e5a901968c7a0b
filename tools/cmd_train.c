/* cmd_train.c — `mtgrad train` (placeholder until the command lands; replaced wholesale). */
#include "cli.h"

#include <stdio.h>

const char mtgrad_usage_train[] = "usage: mtgrad train ... (not built yet)\n";

int mtgrad_cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("mtgrad train: not available yet\n", stderr);
    return 1;
}
