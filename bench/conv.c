/*
 * conv.c — forward+backward throughput of ib_conv2d on the two conv layers
 * of the MNIST CNN (batch 64, 5x5 kernels, pad 2: 1->32 on 28x28 and
 * 32->64 on 14x14), beside OpenBLAS's raw sgemm doing the same flops as
 * three whole-batch GEMMs, in the same run.
 *
 *   ./build/bench_conv [threads...]     (default: 1 2)
 *
 * A pass costs 2*N*Cout*Hout*Wout*Cin*kh*kw flops; forward+backward is
 * three passes (y, dW, dX; the bias adds a negligible sum).  The engine
 * column times the op's own forward and backward (not the loss around it),
 * called directly on the compiled node.  The sgemm column times
 * Y = W cols (Cout x N*P x K), dW = dY cols^T (Cout x K x N*P) and
 * dcols = W^T dY (K x N*P x Cout) on ready-made matrices: the ceiling of
 * im2col + GEMM without the im2col/col2im data movement.
 */
#include "core/internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

typedef struct { int64_t cin, cout, hw; } conv_shape;
static const conv_shape shapes[] = {{1, 32, 28}, {32, 64, 14}};
enum { N_SHAPES = 2, BATCH = 64, KS = 5, PAD = 2 };

static double pass_flops(const conv_shape *s)
{
    return 2.0 * BATCH * (double)s->cout * (double)(s->hw * s->hw) * (double)s->cin * KS * KS;
}

typedef struct { ib_graph *g; ib_node *y, *loss; } engine_ctx;

static void engine_step(void *arg)
{
    engine_ctx *c = arg;
    ib__op_forward(c->g, c->y);
    ib__op_backward(c->g, c->y);
}

typedef struct { const conv_shape *s; float *w, *cols, *y, *dw, *dcols; } raw_ctx;

static void raw_step(void *arg)
{
    raw_ctx *c = arg;
    int m = (int)c->s->cout, k = (int)(c->s->cin * KS * KS), np = (int)(BATCH * c->s->hw * c->s->hw);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, np, k, 1, c->w, k, c->cols, np, 0, c->y, np);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, np, 1, c->y, np, c->cols, np, 0, c->dw, k);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, np, m, 1, c->w, k, c->y, np, 0, c->dcols, np);
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
    int threads[8] = {1, 2}, nt = 2, most = 1;
    if (argc > 1) {
        nt = 0;
        for (int i = 1; i < argc && nt < 8; i++)
            threads[nt++] = atoi(argv[i]);
    }
    for (int i = 0; i < nt; i++)
        most = threads[i] > most ? threads[i] : most;
    ib_set_threads(most); /* before building: the op sizes its per-thread buffers then */

    ib_params *p = ib_params_new(1);
    engine_ctx ec[N_SHAPES];
    raw_ctx rc[N_SHAPES];
    for (int s = 0; s < N_SHAPES; s++) {
        const conv_shape *sh = &shapes[s];
        char name[32];
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_input(g, "x", 4, (int64_t[]){BATCH, sh->cin, sh->hw, sh->hw});
        snprintf(name, sizeof name, "conv%d.weight", s + 1);
        ib_node *w = ib_param(g, name, 4, (int64_t[]){sh->cout, sh->cin, KS, KS}, IB_INIT_PYTORCH_DEFAULT);
        snprintf(name, sizeof name, "conv%d.bias", s + 1);
        ib_node *b = ib_param(g, name, 1, (int64_t[]){sh->cout}, IB_INIT_PYTORCH_DEFAULT);
        ib_node *y = ib_conv2d(g, x, w, b, 1, PAD);
        ib_node *r = ib_input(g, "r", 4, (int64_t[]){BATCH, sh->cout, sh->hw, sh->hw});
        ib_node *loss = ib_sum(g, ib_mul(g, y, r), IB_ALL);
        ib_node_set_requires_grad(x, true); /* all three passes, as for a hidden layer */
        if (ib_graph_compile(g) != IB_OK) {
            fprintf(stderr, "bench_conv: %s\n", ib_last_error());
            return 1;
        }
        for (int64_t k = 0; k < ib_node_numel(x); k++)
            ib_node_data(x)[k] = (float)(k % 255) / 255.0f;
        for (int64_t k = 0; k < ib_node_numel(r); k++)
            ib_node_data(r)[k] = 1e-3f * (float)(k % 7);
        ec[s] = (engine_ctx){g, y, loss};

        int64_t k = sh->cin * KS * KS, np = BATCH * sh->hw * sh->hw;
        rc[s] = (raw_ctx){sh, filled(sh->cout * k), filled(k * np), filled(sh->cout * np), filled(sh->cout * k),
                          filled(k * np)};
    }

    /* Once all parameters exist (the store may move while it grows): bind
     * each graph to the store, mark which inputs need gradients, set dY. */
    for (int s = 0; s < N_SHAPES; s++) {
        ib_graph_forward(ec[s].g);
        ib_graph_backward(ec[s].g, ec[s].loss);
    }

    printf("conv2d forward+backward (y, dW, dX), batch %d, %dx%d kernels, pad %d\n", BATCH, KS, KS, PAD);
    printf("%-22s %-8s %10s %14s %14s %8s\n", "shape", "threads", "ibnet ms", "ibnet GFLOP/s", "sgemm GFLOP/s",
           "ratio");
    for (int i = 0; i < nt; i++) {
        ib_set_threads(threads[i]);
        for (int s = 0; s < N_SHAPES; s++) {
            const conv_shape *sh = &shapes[s];
            double f = 3.0 * pass_flops(sh);
            engine_step(&ec[s]);
            raw_step(&rc[s]);
            /* alternate the two so both see the same machine state */
            double se = 1e30, sr = 1e30;
            for (int rep = 0; rep < 5; rep++) {
                double te = time_best(engine_step, &ec[s], 0, 3, 3), tr = time_best(raw_step, &rc[s], 0, 3, 3);
                se = te < se ? te : se;
                sr = tr < sr ? tr : sr;
            }
            char label[64];
            snprintf(label, sizeof label, "%lld->%lld on %lldx%lld", (long long)sh->cin, (long long)sh->cout,
                     (long long)sh->hw, (long long)sh->hw);
            printf("%-22s %-8d %10.2f %14.1f %14.1f %7.0f%%\n", label, threads[i], se * 1e3, f / se * 1e-9,
                   f / sr * 1e-9, 100.0 * sr / se);
        }
    }
    for (int s = 0; s < N_SHAPES; s++) {
        ib_graph_free(ec[s].g);
        free(rc[s].w);
        free(rc[s].cols);
        free(rc[s].y);
        free(rc[s].dw);
        free(rc[s].dcols);
    }
    ib_params_free(p);
    return 0;
}
