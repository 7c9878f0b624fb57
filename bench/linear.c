/*
 * linear.c — forward+backward throughput of ib_linear on the Deep VIB MLP
 * shapes (batch 100: 784->1024->1024->512), beside OpenBLAS's raw sgemm on
 * the same products, in the same run.
 *
 *   ./build/bench_linear [threads...]     (default: 1 2)
 *
 * A linear layer's forward+backward is three GEMMs of 2*N*in*out flops each
 * (y = xW^T, dX = dY W, dW = dY^T X); the "raw" column times exactly those
 * three cblas_sgemm calls, so the ratio is the engine's overhead (bias,
 * graph dispatch, gradient zeroing).
 */
#include "ibnet.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

typedef struct { int64_t in, out; } layer_shape;
static const layer_shape layers[] = {{784, 1024}, {1024, 1024}, {1024, 512}};
enum { N_LAYERS = 3, BATCH = 100 };

static double flops_per_step(void)
{
    double f = 0;
    for (int l = 0; l < N_LAYERS; l++)
        f += 3.0 * 2.0 * BATCH * (double)layers[l].in * (double)layers[l].out;
    return f;
}

/* Median of `reps` timings of fn, each over `iters` iterations. */
static double time_median(void (*fn)(void *), void *arg, int iters, int reps)
{
    double t[16];
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < iters; i++)
            fn(arg);
        t[r] = (now() - t0) / iters;
    }
    for (int a = 0; a < reps; a++)
        for (int b = a + 1; b < reps; b++)
            if (t[b] < t[a]) {
                double x = t[a];
                t[a] = t[b];
                t[b] = x;
            }
    return t[reps / 2];
}

typedef struct { ib_graph *g; ib_node *loss; ib_params *p; } engine_ctx;

static void engine_step(void *arg)
{
    engine_ctx *c = arg;
    ib_graph_forward(c->g);
    ib_params_zero_grad(c->p);
    ib_graph_backward(c->g, c->loss);
}

typedef struct { float *x[N_LAYERS], *w[N_LAYERS], *y[N_LAYERS], *dx[N_LAYERS], *dw[N_LAYERS]; } raw_ctx;

static void raw_step(void *arg)
{
    raw_ctx *c = arg;
    for (int l = 0; l < N_LAYERS; l++) {
        int in = (int)layers[l].in, out = (int)layers[l].out;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BATCH, out, in, 1, c->x[l], in, c->w[l], in, 0, c->y[l], out);
    }
    for (int l = N_LAYERS - 1; l >= 0; l--) {
        int in = (int)layers[l].in, out = (int)layers[l].out;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BATCH, in, out, 1, c->y[l], out, c->w[l], in, 0, c->dx[l], in);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, BATCH, 1, c->y[l], out, c->x[l], in, 0, c->dw[l], in);
    }
}

static float *filled(int64_t n)
{
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++)
        p[k] = (float)((k * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    int threads[8] = {1, 2}, nt = 2;
    if (argc > 1) {
        nt = 0;
        for (int i = 1; i < argc && nt < 8; i++)
            threads[nt++] = atoi(argv[i]);
    }
    /* The engine: three linear layers, loss = sum(y * R) so backward runs every GEMM. */
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){BATCH, 784});
    ib_node *h = x;
    char name[16];
    for (int l = 0; l < N_LAYERS; l++) {
        snprintf(name, sizeof name, "fc%d", l + 1);
        h = ib_nn_linear(g, h, name, layers[l].out, true);
    }
    ib_node *r = ib_input(g, "r", 2, (int64_t[]){BATCH, 512});
    ib_node *loss = ib_sum(g, ib_mul(g, h, r), IB_ALL);
    ib_node_set_requires_grad(x, true);
    if (ib_graph_compile(g) != IB_OK) {
        fprintf(stderr, "bench_linear: %s\n", ib_last_error());
        return 1;
    }
    for (int64_t k = 0; k < BATCH * 784; k++)
        ib_node_data(x)[k] = (float)(k % 255) / 255.0f;
    for (int64_t k = 0; k < BATCH * 512; k++)
        ib_node_data(r)[k] = 1e-3f;
    engine_ctx ec = {g, loss, p};

    raw_ctx rc;
    for (int l = 0; l < N_LAYERS; l++) {
        rc.x[l] = filled(BATCH * layers[l].in);
        rc.w[l] = filled(layers[l].in * layers[l].out);
        rc.y[l] = filled(BATCH * layers[l].out);
        rc.dx[l] = filled(BATCH * layers[l].in);
        rc.dw[l] = filled(layers[l].in * layers[l].out);
    }
    double f = flops_per_step();
    printf("linear forward+backward, Deep VIB MLP shapes (batch %d: 784-1024-1024-512), %.2f GFLOP per step\n", BATCH,
           f * 1e-9);
    printf("%-8s %14s %14s %8s\n", "threads", "ibnet GFLOP/s", "sgemm GFLOP/s", "ratio");
    for (int i = 0; i < nt; i++) {
        ib_set_threads(threads[i]);
        engine_step(&ec);
        raw_step(&rc);
        double te = 0, tr = 0;
        /* alternate the two so both see the same machine state */
        double se[5], sr[5];
        for (int rep = 0; rep < 5; rep++) {
            se[rep] = time_median(engine_step, &ec, 10, 3);
            sr[rep] = time_median(raw_step, &rc, 10, 3);
        }
        for (int a = 0; a < 5; a++)
            for (int b = a + 1; b < 5; b++) {
                if (se[b] < se[a]) { double t = se[a]; se[a] = se[b]; se[b] = t; }
                if (sr[b] < sr[a]) { double t = sr[a]; sr[a] = sr[b]; sr[b] = t; }
            }
        te = se[2];
        tr = sr[2];
        printf("%-8d %14.1f %14.1f %7.0f%%\n", threads[i], f / te * 1e-9, f / tr * 1e-9, 100.0 * tr / te);
    }
    ib_graph_free(g);
    ib_params_free(p);
    return 0;
}
