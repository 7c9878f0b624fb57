/*
 * optim.c — Adam's update on its AVX2 path against its AVX-512 path
 * (taken where the CPU has AVX-512F; IBNET_ISA=avx2 forces the other).
 * Both give the same bits (test_optim); this says whether the wider path
 * pays: on a store the size of the VIB-MLP's (2,380,810 floats, 38 MB of
 * weights, gradients and moments: memory-bound) and on one that stays in
 * cache (65,536 floats: the arithmetic, sqrt and two divisions a float).
 * One thread, the two paths alternated, best of the repetitions.  Prints
 * one JSON line per size.
 *
 *   ./build/bench_optim [reps]     (default 7)
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/internal.h"
#include "ibnet.h"
#include "timing.h"

typedef struct bench {
    ib_params *p;
    ib_optim *o;
} bench;

static void step(void *arg)
{
    bench *b = arg;
    if (ib_optim_step(b->o) != IB_OK) {
        fprintf(stderr, "bench_optim: %s\n", ib_last_error());
        exit(1);
    }
}

static void run(int64_t floats, int reps)
{
    bench b = {ib_params_new(1), NULL};
    ib_params_get(b.p, "w", 1, &floats, (ib_init){IB_INIT_UNIFORM, -1, 1}, IB_PARAM_TRAINABLE);
    ib_optim_config c = ib_optim_defaults(IB_OPTIM_ADAM);
    b.o = ib_optim_new(b.p, &c);
    float *g = ib_params_grads(b.p);
    for (int64_t k = 0; k < floats; k++)
        g[k] = (float)((k % 2001) - 1000) * 1e-4f;
    int iters = floats > 1000000 ? 20 : 2000;
    double best[2] = {1e30, 1e30}; /* [0] AVX2, [1] AVX-512 */
    for (int r = 0; r < reps; r++)
        for (int wide = 0; wide < 2; wide++) {
            ib__cpu_force_avx2(!wide);
            double t = time_best(step, &b, 2, iters, 1);
            best[wide] = t < best[wide] ? t : best[wide];
        }
    ib__cpu_force_avx2(false);
    printf("{\"bench\": \"adam_step\", \"floats\": %lld, \"threads\": 1, \"avx512_on_cpu\": %s, "
           "\"avx2_ms\": %.4f, \"avx512_ms\": %.4f, \"avx2_gb_s\": %.2f, \"avx512_gb_s\": %.2f, "
           "\"speedup\": %.3f}\n",
           (long long)floats, ib__cpu_has_avx512() ? "true" : "false", best[0] * 1e3, best[1] * 1e3,
           7.0 * 4 * (double)floats / best[0] / 1e9, 7.0 * 4 * (double)floats / best[1] / 1e9, best[0] / best[1]);
    ib_optim_free(b.o);
    ib_params_free(b.p);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    ib_set_threads(1);
    run(2380810, reps);
    run(65536, reps);
    return 0;
}
