/*
 * dnnl_conv.c — issue 8: which convolution to use.  For the conv layers of
 * ResNet-20 (batch 128) and the MNIST LeNet (batch 64), it times forward,
 * backward-data and backward-weights, at each thread count, for
 *   ibnet   the engine's conv2d op (whatever path it takes: run with
 *           IBNET_CONV=im2col or IBNET_CONV=dnnl to pick one),
 *   plain   oneDNN forced to NCHW / OIHW memory (no reorders),
 *   any+r   oneDNN choosing its layouts (format_tag any), with the
 *           reorders from and to NCHW counted: what an NCHW engine pays,
 *   any     the same convolution without the reorders: the ceiling of a
 *           network that stayed in oneDNN's blocked layout,
 * and then the sgemm shapes of the MLP workloads, OpenBLAS beside
 * dnnl_sgemm.  Every figure is the best of a few means (the machine is
 * shared; the best run is the least disturbed one).
 *
 *   ./build/bench_dnnl_conv [threads...]     (default: 1 2)
 */
#include "core/internal.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef IBNET_HAVE_DNNL
int main(void)
{
    printf("bench_dnnl_conv: built without oneDNN (IBNET_DNNL off or libdnnl-dev missing)\n");
    return 0;
}
#else

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include "timing.h"

#define CHK(e)                                                                                                 \
    do {                                                                                                       \
        dnnl_status_t s_ = (e);                                                                                \
        if (s_ != dnnl_success) {                                                                              \
            fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #e, (int)s_);                       \
            exit(1);                                                                                           \
        }                                                                                                      \
    } while (0)

typedef struct {
    const char *net;
    int64_t batch, cin, cout, hw, k, stride, pad;
} shape;

static const shape shapes[] = {
    {"resnet20", 128, 3, 16, 32, 3, 1, 1},  {"resnet20", 128, 16, 16, 32, 3, 1, 1},
    {"resnet20", 128, 16, 32, 32, 3, 2, 1}, {"resnet20", 128, 32, 32, 16, 3, 1, 1},
    {"resnet20", 128, 32, 64, 16, 3, 2, 1}, {"resnet20", 128, 64, 64, 8, 3, 1, 1},
    {"cell", 128, 16, 16, 32, 1, 1, 0},     {"cell", 128, 32, 32, 16, 1, 1, 0},
    {"cell", 128, 64, 64, 8, 1, 1, 0},      {"lenet", 64, 1, 32, 28, 5, 1, 2},
    {"lenet", 64, 32, 64, 14, 5, 1, 2},     {"cell", 64, 32, 32, 14, 1, 1, 0},
    {"cell", 64, 64, 64, 7, 1, 1, 0},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

static int64_t out_hw(const shape *s) { return (s->hw + 2 * s->pad - s->k) / s->stride + 1; }

static double pass_flops(const shape *s)
{
    int64_t o = out_hw(s);
    return 2.0 * (double)(s->batch * s->cout * o * o) * (double)(s->cin * s->k * s->k);
}

static float *filled(int64_t n, int seed)
{
    float *p = ib__aligned_alloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++)
        p[k] = (float)(((k + seed) * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* ---- ibnet's own op ---- */

typedef struct {
    ib_graph *g;
    ib_node *x, *w, *b, *y, *loss;
} eng;

static void eng_fwd(void *a)
{
    eng *e = a;
    ib__op_forward(e->g, e->y);
}
static void eng_bwd_data(void *a)
{
    eng *e = a;
    e->x->needs_grad = true, e->w->needs_grad = false, e->b->needs_grad = false;
    ib__op_backward(e->g, e->y);
}
static void eng_bwd_weights(void *a)
{
    eng *e = a;
    e->x->needs_grad = false, e->w->needs_grad = true, e->b->needs_grad = true;
    ib__op_backward(e->g, e->y);
}

static eng eng_new(ib_params *p, const shape *s, int idx)
{
    eng e;
    char name[32];
    int64_t o = out_hw(s);
    e.g = ib_graph_new(p);
    e.x = ib_input(e.g, "x", 4, (int64_t[]){s->batch, s->cin, s->hw, s->hw});
    snprintf(name, sizeof name, "c%d.weight", idx);
    e.w = ib_param(e.g, name, 4, (int64_t[]){s->cout, s->cin, s->k, s->k}, IB_INIT_PYTORCH_DEFAULT);
    snprintf(name, sizeof name, "c%d.bias", idx);
    e.b = ib_param(e.g, name, 1, (int64_t[]){s->cout}, IB_INIT_PYTORCH_DEFAULT);
    e.y = ib_conv2d(e.g, e.x, e.w, e.b, (int)s->stride, (int)s->pad);
    ib_node *r = ib_input(e.g, "r", 4, (int64_t[]){s->batch, s->cout, o, o});
    e.loss = ib_sum(e.g, ib_mul(e.g, e.y, r), IB_ALL);
    ib_node_set_requires_grad(e.x, true);
    if (ib_graph_compile(e.g) != IB_OK) {
        fprintf(stderr, "bench_dnnl_conv: %s\n", ib_last_error());
        exit(1);
    }
    for (int64_t k = 0; k < ib_node_numel(e.x); k++)
        ib_node_data(e.x)[k] = (float)(k % 255) / 255.0f;
    for (int64_t k = 0; k < ib_node_numel(r); k++)
        ib_node_data(r)[k] = 1e-3f * (float)(k % 7);
    return e;
}

/* ---- oneDNN ---- */

static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* One oneDNN primitive with its arguments: user (NCHW) buffers, and when
 * the primitive wants another layout, a buffer in that layout with the
 * reorder into it (inputs) or out of it (outputs). */
enum { MAX_ARGS = 6 };
typedef struct {
    dnnl_primitive_t prim;
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
    dnnl_primitive_t pre[MAX_ARGS], post[MAX_ARGS]; /* reorder to / from the primitive's layout */
    dnnl_memory_t user[MAX_ARGS], inner[MAX_ARGS];
    bool reorders; /* run them */
} job;

static void job_run(void *a)
{
    job *j = a;
    for (int i = 0; i < j->nargs; i++)
        if (j->reorders && j->pre[i]) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, j->user[i]}, {DNNL_ARG_TO, j->inner[i]}};
            CHK(dnnl_primitive_execute(j->pre[i], stream, 2, ra));
        }
    CHK(dnnl_primitive_execute(j->prim, stream, j->nargs, j->args));
    for (int i = 0; i < j->nargs; i++)
        if (j->reorders && j->post[i]) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, j->inner[i]}, {DNNL_ARG_TO, j->user[i]}};
            CHK(dnnl_primitive_execute(j->post[i], stream, 2, ra));
        }
    CHK(dnnl_stream_wait(stream));
}

/* Bind argument `arg` of primitive desc pd (its layout from query q) to a
 * user buffer of NCHW-like layout `user_md`. */
static void job_arg(job *j, const_dnnl_primitive_desc_t pd, dnnl_query_t q, int arg, const dnnl_memory_desc_t *user_md,
                    float *data, bool output)
{
    int i = j->nargs++;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, 0);
    CHK(dnnl_memory_create(&j->user[i], user_md, engine, data));
    j->pre[i] = j->post[i] = NULL;
    if (dnnl_memory_desc_equal(md, user_md)) {
        j->inner[i] = j->user[i];
    } else {
        CHK(dnnl_memory_create(&j->inner[i], md, engine, DNNL_MEMORY_ALLOCATE));
        dnnl_primitive_desc_t rpd;
        if (output)
            CHK(dnnl_reorder_primitive_desc_create(&rpd, md, engine, user_md, engine, NULL));
        else
            CHK(dnnl_reorder_primitive_desc_create(&rpd, user_md, engine, md, engine, NULL));
        CHK(dnnl_primitive_create(output ? &j->post[i] : &j->pre[i], rpd));
        dnnl_primitive_desc_destroy(rpd);
        /* Fill the inner copy once so the no-reorder timing reads real numbers. */
        if (!output) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, j->user[i]}, {DNNL_ARG_TO, j->inner[i]}};
            CHK(dnnl_primitive_execute(j->pre[i], stream, 2, ra));
            CHK(dnnl_stream_wait(stream));
        }
    }
    j->args[i] = (dnnl_exec_arg_t){arg, j->inner[i]};
}

static void job_scratch(job *j, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    int i = j->nargs++;
    CHK(dnnl_memory_create(&j->user[i], md, engine, DNNL_MEMORY_ALLOCATE));
    j->inner[i] = j->user[i];
    j->pre[i] = j->post[i] = NULL;
    j->args[i] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, j->user[i]};
}

static void job_free(job *j)
{
    for (int i = 0; i < j->nargs; i++) {
        if (j->inner[i] != j->user[i])
            dnnl_memory_destroy(j->inner[i]);
        dnnl_memory_destroy(j->user[i]);
        if (j->pre[i])
            dnnl_primitive_destroy(j->pre[i]);
        if (j->post[i])
            dnnl_primitive_destroy(j->post[i]);
    }
    dnnl_primitive_destroy(j->prim);
}

typedef struct {
    float *x, *w, *b, *y, *dx, *dw, *db, *dy;
} bufs;

/* The three primitives of one shape; `any` lets oneDNN pick layouts. */
static void make_jobs(const shape *s, bool any, const bufs *m, job *fwd, job *bwd_d, job *bwd_w, const char **impl)
{
    int64_t o = out_hw(s);
    dnnl_dims_t xd = {s->batch, s->cin, s->hw, s->hw}, wd = {s->cout, s->cin, s->k, s->k}, bd = {s->cout},
                yd = {s->batch, s->cout, o, o};
    dnnl_dims_t st = {s->stride, s->stride}, pl = {s->pad, s->pad};
    /* oneDNN's right padding: whatever makes the output size come out. */
    int64_t pr = (o - 1) * s->stride + s->k - s->hw - s->pad;
    dnnl_dims_t prr = {pr, pr};
    dnnl_memory_desc_t ux, uw, ub, uy, cx, cw, cy;
    CHK(dnnl_memory_desc_init_by_tag(&ux, 4, xd, dnnl_f32, dnnl_nchw));
    CHK(dnnl_memory_desc_init_by_tag(&uw, 4, wd, dnnl_f32, dnnl_oihw));
    CHK(dnnl_memory_desc_init_by_tag(&ub, 1, bd, dnnl_f32, dnnl_x));
    CHK(dnnl_memory_desc_init_by_tag(&uy, 4, yd, dnnl_f32, dnnl_nchw));
    dnnl_format_tag_t tx = any ? dnnl_format_tag_any : dnnl_nchw, tw = any ? dnnl_format_tag_any : dnnl_oihw;
    CHK(dnnl_memory_desc_init_by_tag(&cx, 4, xd, dnnl_f32, tx));
    CHK(dnnl_memory_desc_init_by_tag(&cw, 4, wd, dnnl_f32, tw));
    CHK(dnnl_memory_desc_init_by_tag(&cy, 4, yd, dnnl_f32, tx));

    dnnl_primitive_attr_t attr;
    CHK(dnnl_primitive_attr_create(&attr));
    CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));

    dnnl_convolution_desc_t fd, dd, wdsc;
    CHK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &cx, &cw, &ub, &cy,
                                           st, pl, prr));
    dnnl_primitive_desc_t fpd, dpd, wpd;
    CHK(dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL));
    CHK(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &cx, &cw, &cy, st, pl, prr));
    CHK(dnnl_primitive_desc_create(&dpd, &dd, attr, engine, fpd));
    CHK(dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &cx, &cw, &ub, &cy, st, pl,
                                                    prr));
    CHK(dnnl_primitive_desc_create(&wpd, &wdsc, attr, engine, fpd));
    const char *n0, *n1, *n2;
    CHK(dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &n0));
    CHK(dnnl_primitive_desc_query(dpd, dnnl_query_impl_info_str, 0, &n1));
    CHK(dnnl_primitive_desc_query(wpd, dnnl_query_impl_info_str, 0, &n2));
    impl[0] = n0, impl[1] = n1, impl[2] = n2;

    *fwd = (job){0};
    CHK(dnnl_primitive_create(&fwd->prim, fpd));
    job_arg(fwd, fpd, dnnl_query_src_md, DNNL_ARG_SRC, &ux, m->x, false);
    job_arg(fwd, fpd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, &uw, m->w, false);
    job_arg(fwd, fpd, dnnl_query_dst_md, DNNL_ARG_DST, &uy, m->y, true);
    {
        int i = fwd->nargs++;
        CHK(dnnl_memory_create(&fwd->user[i], &ub, engine, m->b));
        fwd->inner[i] = fwd->user[i];
        fwd->args[i] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, fwd->user[i]};
    }
    job_scratch(fwd, fpd);

    *bwd_d = (job){0};
    CHK(dnnl_primitive_create(&bwd_d->prim, dpd));
    job_arg(bwd_d, dpd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &uy, m->dy, false);
    job_arg(bwd_d, dpd, dnnl_query_weights_md, DNNL_ARG_WEIGHTS, &uw, m->w, false);
    job_arg(bwd_d, dpd, dnnl_query_diff_src_md, DNNL_ARG_DIFF_SRC, &ux, m->dx, true);
    job_scratch(bwd_d, dpd);

    *bwd_w = (job){0};
    CHK(dnnl_primitive_create(&bwd_w->prim, wpd));
    job_arg(bwd_w, wpd, dnnl_query_src_md, DNNL_ARG_SRC, &ux, m->x, false);
    job_arg(bwd_w, wpd, dnnl_query_diff_dst_md, DNNL_ARG_DIFF_DST, &uy, m->dy, false);
    job_arg(bwd_w, wpd, dnnl_query_diff_weights_md, DNNL_ARG_DIFF_WEIGHTS, &uw, m->dw, true);
    {
        int i = bwd_w->nargs++;
        CHK(dnnl_memory_create(&bwd_w->user[i], &ub, engine, m->db));
        bwd_w->inner[i] = bwd_w->user[i];
        bwd_w->args[i] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, bwd_w->user[i]};
    }
    job_scratch(bwd_w, wpd);

    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_attr_destroy(attr);
}

/* ---- sgemm ---- */

typedef struct {
    char ta, tb;
    int64_t m, n, k;
    const char *what;
} gemm_shape;

/* The linear layers of the MLP workloads (batch 100): forward Y = X W^T,
 * dX = dY W, dW = dY^T X. */
static const gemm_shape gemms[] = {
    {'N', 'T', 100, 1024, 784, "fc 784->1024 fwd"},   {'N', 'N', 100, 784, 1024, "fc 784->1024 dX"},
    {'T', 'N', 1024, 784, 100, "fc 784->1024 dW"},    {'N', 'T', 100, 1024, 1024, "fc 1024->1024 fwd"},
    {'N', 'N', 100, 1024, 1024, "fc 1024->1024 dX"},  {'T', 'N', 1024, 1024, 100, "fc 1024->1024 dW"},
    {'N', 'T', 100, 512, 1024, "fc 1024->512 fwd"},   {'N', 'N', 100, 1024, 512, "fc 1024->512 dX"},
    {'T', 'N', 512, 1024, 100, "fc 1024->512 dW"},
};
enum { N_GEMMS = sizeof gemms / sizeof gemms[0] };

typedef struct {
    const gemm_shape *s;
    float *a, *b, *c;
    bool dnnl;
} gemm_ctx;

static void gemm_run(void *arg)
{
    gemm_ctx *g = arg;
    const gemm_shape *s = g->s;
    int64_t lda = s->ta == 'N' ? s->k : s->m, ldb = s->tb == 'N' ? s->n : s->k;
    if (g->dnnl)
        CHK(dnnl_sgemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, g->a, lda, g->b, ldb, 1.0f, g->c, s->n));
    else
        cblas_sgemm(CblasRowMajor, s->ta == 'N' ? CblasNoTrans : CblasTrans, s->tb == 'N' ? CblasNoTrans : CblasTrans,
                    (int)s->m, (int)s->n, (int)s->k, 1.0f, g->a, (int)lda, g->b, (int)ldb, 1.0f, g->c, (int)s->n);
}

int main(int argc, char **argv)
{
    int threads[8] = {1, 2}, nt = 2;
    bool only_gemm = getenv("BENCH_GEMM_ONLY") != NULL;
    if (argc > 1) {
        nt = 0;
        for (int i = 1; i < argc && nt < 8; i++)
            threads[nt++] = atoi(argv[i]);
    }
    CHK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    {
        double l[3];
        if (getloadavg(l, 3) == 3)
            printf("load average at start: %.2f %.2f %.2f\n", l[0], l[1], l[2]);
    }

    if (!only_gemm) {
        printf("\nconvolution, ms per call (GFLOP/s); plain = oneDNN on NCHW/OIHW; any+r = oneDNN's own layouts with "
               "reorders from/to NCHW; any = without the reorders\n");
        printf("%-9s %-22s %2s | %-4s %8s %8s %8s %8s\n", "net", "shape", "th", "pass", "ibnet", "plain", "any+r",
               "any");
        ib_params *p = ib_params_new(1);
        eng e[N_SHAPES];
        for (int s = 0; s < N_SHAPES; s++)
            e[s] = eng_new(p, &shapes[s], s);
        for (int s = 0; s < N_SHAPES; s++) { /* bind to the store and set dY */
            ib_graph_forward(e[s].g);
            ib_graph_backward(e[s].g, e[s].loss);
        }
        for (int ti = 0; ti < nt; ti++) {
            ib_set_threads(threads[ti]);
            for (int s = 0; s < N_SHAPES; s++) {
                const shape *sh = &shapes[s];
                int64_t o = out_hw(sh);
                int64_t nx = sh->batch * sh->cin * sh->hw * sh->hw, nw = sh->cout * sh->cin * sh->k * sh->k,
                        ny = sh->batch * sh->cout * o * o;
                bufs m = {filled(nx, 1), filled(nw, 2),  filled(sh->cout, 3), filled(ny, 4),
                          filled(nx, 5), filled(nw, 6), filled(sh->cout, 7), filled(ny, 8)};
                job pj[3], aj[3];
                const char *pi[3], *ai[3];
                make_jobs(sh, false, &m, &pj[0], &pj[1], &pj[2], pi);
                make_jobs(sh, true, &m, &aj[0], &aj[1], &aj[2], ai);
                void (*ef[3])(void *) = {eng_fwd, eng_bwd_data, eng_bwd_weights};
                const char *pass[3] = {"fwd", "bwdd", "bwdw"};
                double f = pass_flops(sh);
                int iters = f > 4e8 ? 2 : f > 1e8 ? 4 : 10;
                for (int q = 0; q < 3; q++) {
                    double te = time_best(ef[q], &e[s], 1, iters, 3);
                    pj[q].reorders = false;
                    double tp = time_best(job_run, &pj[q], 1, iters, 3);
                    aj[q].reorders = true;
                    double tr = time_best(job_run, &aj[q], 1, iters, 3);
                    aj[q].reorders = false;
                    double ta = time_best(job_run, &aj[q], 1, iters, 3);
                    char label[64];
                    snprintf(label, sizeof label, "%lld->%lld %lldx%lld k%lld s%lld", (long long)sh->cin,
                             (long long)sh->cout, (long long)sh->hw, (long long)sh->hw, (long long)sh->k,
                             (long long)sh->stride);
                    printf("%-9s %-22s %2d | %-4s %8.2f %8.2f %8.2f %8.2f   (%.0f %.0f %.0f %.0f GFLOP/s)  [%s | %s]\n",
                           sh->net, label, threads[ti], pass[q], te * 1e3, tp * 1e3, tr * 1e3, ta * 1e3, f / te * 1e-9,
                           f / tp * 1e-9, f / tr * 1e-9, f / ta * 1e-9, pi[q], ai[q]);
                    fflush(stdout);
                }
                for (int q = 0; q < 3; q++) {
                    job_free(&pj[q]);
                    job_free(&aj[q]);
                }
                float **mb = (float **)&m;
                for (int k = 0; k < 8; k++)
                    ib__aligned_free(mb[k]);
            }
        }
        for (int s = 0; s < N_SHAPES; s++)
            ib_graph_free(e[s].g);
        ib_params_free(p);
    }

    printf("\nsgemm (row-major, C += op(A) op(B)), ms per call (GFLOP/s)\n");
    printf("%-20s %-3s %-2s %14s %14s %14s\n", "shape", "tr", "th", "M N K", "OpenBLAS", "dnnl_sgemm");
    for (int ti = 0; ti < nt; ti++) {
        ib_set_threads(threads[ti]);
        for (int s = 0; s < N_GEMMS; s++) {
            const gemm_shape *gs = &gemms[s];
            gemm_ctx c = {gs, filled(gs->m * gs->k, 1), filled(gs->k * gs->n, 2), filled(gs->m * gs->n, 3), false};
            double f = 2.0 * (double)(gs->m * gs->n * gs->k);
            double to = time_best(gemm_run, &c, 1, 20, 5);
            c.dnnl = true;
            double td = time_best(gemm_run, &c, 1, 20, 5);
            char mnk[48];
            snprintf(mnk, sizeof mnk, "%lldx%lldx%lld", (long long)gs->m, (long long)gs->n, (long long)gs->k);
            printf("%-20s %c%c  %-2d %14s %6.3f (%4.0f) %6.3f (%4.0f)\n", gs->what, gs->ta, gs->tb, threads[ti], mnk,
                   to * 1e3, f / to * 1e-9, td * 1e3, f / td * 1e-9);
            ib__aligned_free(c.a);
            ib__aligned_free(c.b);
            ib__aligned_free(c.c);
        }
    }
    double l[3];
    if (getloadavg(l, 3) == 3)
        printf("load average at end: %.2f %.2f %.2f\n", l[0], l[1], l[2]);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
#endif
