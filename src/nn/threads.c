/* threads.c — one thread setting for the engine: OpenMP regions and OpenBLAS.
 * Results never depend on it (fixed reduction orders); only speed does. */
#include "mtgrad_nn.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int engine_threads = 1;

void mtgrad_nn_set_threads(int n)
{
    engine_threads = n < 1 ? 1 : n;
    /* OpenBLAS itself stays single-threaded: its threaded sgemm blocks K differently from the
     * single-threaded one (e.g. 256x50x500 differs in the last bits), so the engine parallelises
     * over fixed sample groups instead (src/nn/nn_internal.h). */
    openblas_set_num_threads(1);
#ifdef _OPENMP
    omp_set_num_threads(engine_threads);
#endif
}

int mtgrad_nn_threads(void) { return engine_threads; }
