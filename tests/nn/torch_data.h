/* torch_data.h — reading the reference files ref/ wrote into tests/nn/data (shared by
 * test_optim.c and test_adatask.c). Include after harness.h. */
#ifndef MTGRAD_TESTS_TORCH_DATA_H
#define MTGRAD_TESTS_TORCH_DATA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The word `tag`, then n floats (printed with 9 significant digits: exact for float32).
 * Returns 1, or 0 if the file does not have them. */
static int read_floats(FILE *f, const char *tag, float *x, int64_t n)
{
    char word[32];
    if (fscanf(f, "%31s", word) != 1 || strcmp(word, tag) != 0) return 0;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return 0;
        x[i] = (float)v;
    }
    return 1;
}

/* tests/nn/data/NAME (or $MTGRAD_TEST_DATA/NAME), opened for reading; NULL if missing. */
static FILE *open_data(const char *name)
{
    char path[512];
    const char *dir = getenv("MTGRAD_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/nn/data", name);
    return fopen(path, "r");
}

#endif
