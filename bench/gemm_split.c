/*
 * gemm_split.c — the forward GEMM of a linear layer, C = A B^T with B the
 * (out, in) weight, at the shapes of the workloads: oneDNN's dnnl_sgemm
 * threading itself, against the engine's backend (ib__sgemm), which on
 * several threads gives each thread a band of B's rows and runs
 * dnnl_sgemm on it alone (src/kernels/cpu_backend.c, split_columns).
 * Milliseconds per product, best of 5 means.
 *
 *   ./build/bench_gemm_split [threads...]     (default: 1 2)
 */
#include "core/internal.h"
#include "kernels/kernels.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

#ifndef IBNET_HAVE_DNNL
int main(void)
{
    printf("bench_gemm_split: built without oneDNN\n");
    return 0;
}
#else
#include <oneapi/dnnl/dnnl.h>

typedef struct {
    int64_t m, k, n;
    const char *what;
} shape;

static const shape shapes[] = {
    {100, 784, 1024, "VIB-MLP fc1 (batch 100)"},   {100, 1024, 1024, "VIB-MLP fc2"},
    {100, 1024, 512, "VIB-MLP encoder head"},      {64, 3136, 1024, "LeNet fc1 (batch 64)"},
    {500, 1024, 1024, "VIB-MLP fc2, batch 500"}, {32, 1024, 1024, "VIB-MLP fc2, batch 32"},
};

typedef struct {
    const shape *s;
    const float *a, *b;
    float *c;
    bool engine;
} job;

static void run(void *p)
{
    const job *j = p;
    const shape *s = j->s;
    if (j->engine)
        ib__sgemm(false, true, s->m, s->n, s->k, 1.0f, j->a, s->k, j->b, s->k, 0.0f, j->c, s->n);
    else
        dnnl_sgemm('N', 'T', s->m, s->n, s->k, 1.0f, j->a, s->k, j->b, s->k, 0.0f, j->c, s->n);
}

int main(int argc, char **argv)
{
    int threads[8] = {1, 2}, n_threads = 2;
    if (argc > 1) {
        n_threads = 0;
        for (int i = 1; i < argc && n_threads < 8; i++)
            threads[n_threads++] = atoi(argv[i]);
    }
    size_t big = (size_t)4096 * 1024;
    float *a = malloc(big * sizeof *a), *b = malloc(big * sizeof *b), *c = malloc(big * sizeof *c);
    if (!a || !b || !c)
        return 1;
    for (size_t i = 0; i < big; i++) {
        a[i] = 0.01f * (float)(i % 7);
        b[i] = 0.001f * (float)(i % 13);
    }
    printf("backend: %s\n", ib__backend()->name);
    printf("| product (m x k x n) | threads | dnnl_sgemm ms | engine ms | dnnl / engine |\n|---|---:|---:|---:|---:|\n");
    for (int t = 0; t < n_threads; t++) {
        ib_set_threads(threads[t]);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            job jd = {&shapes[i], a, b, c, false}, je = jd;
            je.engine = true;
            double td = time_best(run, &jd, 5, 50, 5), te = time_best(run, &je, 5, 50, 5);
            printf("| %s: %lld x %lld x %lld | %d | %.3f | %.3f | %.2f |\n", shapes[i].what, (long long)shapes[i].m,
                   (long long)shapes[i].k, (long long)shapes[i].n, threads[t], td * 1e3, te * 1e3, td / te);
        }
    }
    free(a);
    free(b);
    free(c);
    return 0;
}
#endif
