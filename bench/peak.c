/*
 * peak.c — the machine's FP32 ceiling, for putting the engine's GFLOP/s in
 * proportion: an AVX2 FMA loop (the most any AVX2 code can do) and
 * OpenBLAS's sgemm on a large square product (the most a GEMM-bound step
 * can do), on 1 and 2 threads.  Prints one JSON line per figure.
 *
 *   ./build/bench_peak [seconds-per-figure]     (default 1)
 *
 * The FMA loop keeps 12 independent 8-lane accumulators in flight: enough
 * to cover an FMA latency of 4 cycles on 2 FMA pipes (8 needed) with room
 * to spare, so it is throughput-bound, not latency-bound.  The accumulators
 * are printed (summed) so the compiler cannot drop the loop.
 */
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

void openblas_set_num_threads(int num_threads);

enum { ACC = 12, INNER = 1000 };

/* iters * INNER * ACC FMAs of 8 lanes, 2 flops each. */
static float fma_block(long iters, float seed)
{
    __m256 acc[ACC];
    for (int a = 0; a < ACC; a++)
        acc[a] = _mm256_set1_ps(seed + (float)a);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < INNER; j++)
            for (int a = 0; a < ACC; a++)
                acc[a] = _mm256_fmadd_ps(acc[a], m, c);
    __m256 s = acc[0];
    for (int a = 1; a < ACC; a++)
        s = _mm256_add_ps(s, acc[a]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

/* GFLOP/s of the FMA loop on t threads, each running the same count. */
static double fma_peak(int t, double seconds, float *sink)
{
    long iters = 64;
    double el = 0;
    for (;;) { /* grow the count until one run takes about `seconds` */
        double t0 = now();
        float s = 0;
#pragma omp parallel num_threads(t) reduction(+ : s)
        s += fma_block(iters, (float)omp_get_thread_num());
        el = now() - t0;
        *sink += s;
        if (el > seconds)
            break;
        iters = el < 1e-3 ? iters * 8 : (long)((double)iters * 1.2 * seconds / el) + 1;
    }
    return (double)t * (double)iters * INNER * ACC * 8 * 2 / el * 1e-9;
}

static double sgemm_rate(int t, int n, double seconds)
{
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)n), *b = malloc(sizeof(float) * (size_t)n * (size_t)n),
          *c = malloc(sizeof(float) * (size_t)n * (size_t)n);
    for (long i = 0; i < (long)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    openblas_set_num_threads(t);
    omp_set_num_threads(t);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm-up */
    int reps = 0;
    double t0 = now(), el;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        reps++;
        el = now() - t0;
    } while (el < seconds);
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n * reps / el * 1e-9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0)
        seconds = 1.0;
    float sink = 0;
    for (int t = 1; t <= 2; t++) {
        double f = fma_peak(t, seconds, &sink);
        printf("{\"figure\": \"fma_avx2\", \"threads\": %d, \"gflops\": %.1f}\n", t, f);
    }
    for (int t = 1; t <= 2; t++) {
        double f = sgemm_rate(t, 1536, seconds);
        printf("{\"figure\": \"sgemm_1536\", \"threads\": %d, \"gflops\": %.1f}\n", t, f);
    }
    fprintf(stderr, "(checksum %g)\n", (double)sink);
    return 0;
}
