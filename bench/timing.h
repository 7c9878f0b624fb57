/*
 * timing.h — the clock and the repeat-and-keep-the-best timer the
 * benchmarks share.  The machine is shared and noisy: the best of several
 * timings is the one least disturbed by others.
 */
#ifndef IB_BENCH_TIMING_H
#define IB_BENCH_TIMING_H

#include <time.h>

/* Seconds on a monotonic clock. */
static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best of `reps` timings of fn, each the mean over `iters` calls, after
 * `warmup` untimed calls (first-call costs: JIT, page faults). */
static inline double time_best(void (*fn)(void *), void *arg, int warmup, int iters, int reps)
{
    for (int i = 0; i < warmup; i++)
        fn(arg);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < iters; i++)
            fn(arg);
        double t = (now() - t0) / iters;
        best = t < best ? t : best;
    }
    return best;
}

#endif
