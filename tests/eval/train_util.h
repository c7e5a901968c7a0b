/* train_util.h — what the trainer tests share (test_train.c, test_train_options.c,
 * test_checkpoint_io.c). */
#ifndef MTGRAD_TESTS_TRAIN_UTIL_H
#define MTGRAD_TESTS_TRAIN_UTIL_H

#include "mtgrad_train.h"

#include <string.h>

/* 1 if two runs ended with the same bits: shape, steps, final parameters, and the per-epoch
 * training loss, test loss and test metric curves (not the timings). */
static int same_train_result(const mtgrad_train_result *a, const mtgrad_train_result *b)
{
    if (!a || !b || a->epochs != b->epochs || a->k != b->k || a->n_params != b->n_params ||
        a->steps != b->steps)
        return 0;
    size_t rows = (size_t)(a->epochs * a->k) * sizeof(double);
    return memcmp(a->params, b->params, (size_t)a->n_params * sizeof(float)) == 0 &&
           memcmp(a->train_loss, b->train_loss, rows) == 0 &&
           memcmp(a->test_loss, b->test_loss, rows) == 0 &&
           memcmp(a->test_metric, b->test_metric, rows) == 0;
}

#endif
