/*
 * threads.c — the one thread pool.  ibnet's kernels use OpenMP and ibnet
 * links the OpenMP build of OpenBLAS, so GEMMs and our loops share one
 * libgomp pool instead of two pools fighting over the cores.
 */
#include "internal.h"

#include <omp.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS */

static int threads_set = 0;

void ib_set_threads(int n)
{
    if (n < 1)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    threads_set = n;
}

int ib_get_threads(void)
{
    if (!threads_set) {
        const char *env = getenv("IBNET_THREADS");
        int n = env ? atoi(env) : 0;
        ib_set_threads(n);
    }
    return threads_set;
}
