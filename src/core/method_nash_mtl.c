/* PLACEHOLDER — being written; replaced by the real method file before the commit that uses it. */
#include "internal.h"

static mtgrad_status placeholder_weights(mtgrad_aggregator *a, const double *M, const double *losses,
                                         double *w)
{
    (void)M; (void)losses; (void)w;
    return mtgradi_fail(a, MTGRAD_E_UNSUPPORTED, "nash_mtl: not implemented yet");
}

const mtgrad_method mtgradi_nash_mtl = {
    .name = "nash_mtl",
    .summary = "(not implemented yet)",
    .citation = "",
    .flags = MTGRAD_HAS_WEIGHTS,
    .weights = placeholder_weights,
};
