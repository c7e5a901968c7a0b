/*
 * init.c — PyTorch's default initialisation of Linear and Conv2d, in distribution: torch draws
 * the weight with kaiming_uniform_(a = sqrt(5)), i.e. bound = gain * sqrt(3 / fan_in) with
 * gain = sqrt(2 / (1 + 5)), which is 1/sqrt(fan_in), and the bias from U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) too (fan_in = in features, or in channels x K x K). The draws come from the
 * core's xoshiro256** in memory order, so a seed fixes every bit (torch's own Mersenne stream is
 * not reproduced: same distribution, not same numbers).
 */
#include "nn/nn_internal.h"

void mtgradi_init_uniform(mtgradi_rng *r, float *p, int64_t len, double bound)
{
    for (int64_t i = 0; i < len; i++) p[i] = (float)((2.0 * mtgradi_rng_uniform(r) - 1.0) * bound);
}
