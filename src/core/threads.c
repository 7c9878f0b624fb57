/*
 * threads.c — the one thread pool.  ibnet's kernels use OpenMP and ibnet
 * links the OpenMP build of OpenBLAS, so GEMMs and our loops share one
 * libgomp pool instead of two pools fighting over the cores.
 */
#include "internal.h"

#include <errno.h>
#include <omp.h>

void openblas_set_num_threads(int num_threads); /* from OpenBLAS */

static int threads_set = 0;

void ib_set_threads(int n)
{
    if (n < 1)
        n = omp_get_num_procs();
    if (n > IB_MAX_THREADS)
        n = IB_MAX_THREADS;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    threads_set = n;
}

/* IBNET_THREADS as a count; 0 (all cores) when unset or empty.  A value
 * that is not a whole number in 0..IB_MAX_THREADS ("abc", "-3", one that
 * would wrap an int) is not silently taken: it is named on stderr. */
static int env_threads(void)
{
    const char *env = getenv("IBNET_THREADS");
    if (!env || !*env)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(env, &end, 10);
    if (*end || errno == ERANGE || n < 0 || n > IB_MAX_THREADS) {
        fprintf(stderr, "ibnet: warning: IBNET_THREADS='%s' is not a thread count in 0..%d; using all %d cores\n",
                env, IB_MAX_THREADS, omp_get_num_procs());
        return 0;
    }
    return (int)n;
}

int ib_get_threads(void)
{
    if (!threads_set)
        ib_set_threads(env_threads());
    return threads_set;
}
