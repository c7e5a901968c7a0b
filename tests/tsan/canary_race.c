/* A deliberate data race, for `make tsan`: two OpenMP threads add to one shared counter without
 * a reduction or an atomic. tests/tsan/test_canaries.sh requires ThreadSanitizer to report it, so
 * a TSan build that sees nothing (sanitizer not linked, reports suppressed too broadly, only one
 * thread) fails instead of passing the threaded tests vacuously. Not part of the library. */
#include <stdio.h>

int main(void)
{
    static volatile long counter; /* volatile: the compiler keeps every load and store */
#pragma omp parallel for schedule(static) num_threads(2)
    for (int i = 0; i < 100000; i++) counter = counter + 1;
    printf("counter %ld (a race: any value up to 100000)\n", counter);
    return 0;
}
