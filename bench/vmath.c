/*
 * vmath.c — the vector math kernels (src/kernels/vmath.c) and the Gaussian
 * generator (src/core/rng.c) on their AVX2 path (8 lanes) against their
 * AVX-512 path (16 lanes; taken where the CPU has AVX-512, IBNET_ISA=avx2
 * forces the other).  Both give the same bits (test_vmath_avx512); this
 * says whether the wider path pays, per kernel, on an array that stays in
 * L1/L2 (4,096 floats) and on one that does not (4,194,304 floats, 16 MB
 * an array).  One thread, the two paths alternated, best of the
 * repetitions.  Prints one JSON line per kernel and size: ns per element
 * on each path and their ratio.
 *
 *   ./build/bench_vmath [reps]     (default 7)
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/internal.h"
#include "ibnet.h"
#include "kernels/kernels.h"
#include "timing.h"

typedef struct bench {
    int kernel;
    int64_t n;
    float *a, *b, *c, *d;
} bench;

enum { SOFTPLUS_FWD, SOFTPLUS_BWD, LOG, SINCOS, SINCOS_2PI, KL_ROW, NORMAL, N_KERNELS };
static const char *names[N_KERNELS] = {"softplus_forward", "softplus_backward", "log",   "sincos",
                                       "sincos_2pi",       "kl_std_normal_row", "normal"};

static volatile double sink;

static void call(void *arg)
{
    bench *b = arg;
    switch (b->kernel) {
    case SOFTPLUS_FWD: ib__softplus_forward(b->a, 0.5413f, b->c, b->n); break;
    case SOFTPLUS_BWD: ib__softplus_backward(b->b, b->a, b->c, b->n); break; /* y = b > 0, dy = a */
    case LOG: ib__vlog(b->b, b->c, b->n); break;
    case SINCOS: ib__vsincos(b->a, b->c, b->d, b->n); break;
    case SINCOS_2PI: ib__vsincos_2pi(b->a, b->c, b->d, b->n); break;
    case KL_ROW: sink = ib__kl_std_normal_row(b->a, b->b, b->n); break;
    case NORMAL: ib__rng_normal_range(1, 2, 3, 0, b->c, b->n); break;
    }
}

static void run(int kernel, int64_t n, int reps)
{
    bench b = {kernel, n, malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(float)),
               malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(float))};
    for (int64_t k = 0; k < n; k++) {
        b.a[k] = (float)((k * 7919) % 2001 - 1000) * 6e-3f; /* [-6, 6]: both branches of softplus */
        b.b[k] = 0.05f + (float)((k * 104729) % 1000) * 3e-3f; /* positive: a sigma, a softplus output */
        b.c[k] = b.d[k] = 0.0f;
    }
    /* about 20 ms a timing: 2 ns an element is a fair guess for all */
    int iters = (int)(1e7 / (double)n) + 1;
    double best[2] = {1e30, 1e30}; /* [0] AVX2, [1] AVX-512 */
    for (int r = 0; r < reps; r++)
        for (int wide = 0; wide < 2; wide++) {
            ib__cpu_force_avx2(!wide);
            double t = time_best(call, &b, iters / 4 + 1, iters, 1); /* warm: caches, clock */
            best[wide] = t < best[wide] ? t : best[wide];
        }
    ib__cpu_force_avx2(false);
    printf("{\"bench\": \"vmath\", \"kernel\": \"%s\", \"n\": %lld, \"threads\": 1, \"avx512_on_cpu\": %s, "
           "\"avx2_ns_per_elem\": %.3f, \"avx512_ns_per_elem\": %.3f, \"speedup\": %.3f}\n",
           names[kernel], (long long)n, ib__cpu_has_avx512() ? "true" : "false", best[0] * 1e9 / (double)n,
           best[1] * 1e9 / (double)n, best[0] / best[1]);
    fflush(stdout);
    free(b.a);
    free(b.b);
    free(b.c);
    free(b.d);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    ib_set_threads(1);
    for (int k = 0; k < N_KERNELS; k++) {
        run(k, 4096, reps);
        run(k, 4194304, reps);
    }
    return 0;
}
