/* Correctly synchronised OpenMP, for `make tsan`: the patterns the library's kernels use (data
 * handed from one thread to another across a barrier, a parallel-for with dynamic chunks writing
 * per-chunk partials that the main thread sums after the region, a reduction, the thread pool
 * reused by the next region). ThreadSanitizer must stay quiet here. It only can if the OpenMP
 * runtime tells it about its barriers (LLVM libomp with its Archer tool); with GCC's libgomp, or
 * libomp without Archer, it reports races that are not there, and tests/tsan/test_canaries.sh
 * fails, so the TSan results are not drowned in noise nor quietly filtered. */
#include <omp.h>
#include <stdio.h>

#define N 4096
#define CHUNKS 64

static double x[N], partial[CHUNKS];

int main(void)
{
    double handed = 0.0, total = 0.0, sum = 0.0;
#pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == 0)
            for (int i = 0; i < N; i++) x[i] = (double)i;
#pragma omp barrier
        if (omp_get_thread_num() == 1)
            for (int i = 0; i < N; i++) handed += x[i];
    }
    for (int rep = 0; rep < 3; rep++) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(2)
        for (int c = 0; c < CHUNKS; c++) {
            double s = 0.0;
            for (int i = c * (N / CHUNKS); i < (c + 1) * (N / CHUNKS); i++) s += x[i];
            partial[c] = s;
        }
        for (int c = 0; c < CHUNKS; c++) total += partial[c];
#pragma omp parallel for schedule(static) reduction(+ : sum) num_threads(2)
        for (int i = 0; i < N; i++) sum += x[i] * (double)rep;
    }
    /* each of the three sums is a multiple of N(N-1)/2 = 8386560 */
    printf("%.0f %.0f %.0f\n", handed, total, sum);
    return handed == 8386560.0 && total == 3 * 8386560.0 && sum == 3 * 8386560.0 ? 0 : 1;
}
