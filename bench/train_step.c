/*
 * train_step.c — throughput of one whole training (or inference) step of a
 * workload of issue 8, as the trainer runs it: a model description built
 * with ib_model_build, the objective of ib_objective_build, an optimizer;
 * synthetic inputs of the right shape (the data pipeline is timed apart,
 * by bench/data_pipeline.c).  bench/torch_step.py is its PyTorch twin and
 * prints the same JSON; bench/vs_pytorch.py runs both side by side.
 *
 *   bench_train_step --workload vib-mlp --mode train --threads 2 --seconds 5 --warmup 2
 *
 * Output: one JSON line with samples/s of each window and their median,
 * peak resident memory (getrusage), the GEMM/conv flops of a step and the
 * GFLOP/s they run at.  Options:
 *   --workload NAME   vib-mlp, mlp, lenet, lenet-vibcells, resnet20, resnet20-vibcells
 *   --model M         another model description (built-in name or .ibm file)
 *   --batch B         override the workload's batch size
 *   --windows K       split the timed seconds into K windows (default 5)
 *   --steps N         run exactly N timed steps, no clock (for callgrind:
 *                     the steps run inside timed_steps(), so
 *                     --toggle-collect=timed_steps counts only them)
 *   --profile         time every op's forward and backward (per op kind),
 *                     the gradient clearing and the optimizer; printed to
 *                     stderr and as "profile" in the JSON
 *
 * Flops: forward 2*N*in*out per linear (2*N*Cout*Ho*Wo*Cin*kh*kw per
 * conv); backward adds the dW product when the weight takes a gradient and
 * the dX product when the input does (the first layer has none).  Other
 * ops are memory-bound and not counted.
 */
#include "core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "timing.h"

typedef struct workload {
    const char *name, *model;
    int64_t batch;
    ib_optim_kind optim;
    float lr, beta;
} workload;

/* Issue 8's workloads.  Adam keeps PyTorch's default betas in both twins. */
static const workload workloads[] = {
    {"vib-mlp", "vib-mlp", 100, IB_OPTIM_ADAM, 1e-4f, 1e-3f},
    {"mlp", "mlp", 100, IB_OPTIM_ADAM, 1e-4f, 0.0f},
    {"lenet", "lenet", 64, IB_OPTIM_SGD, 0.01f, 0.0f},
    {"lenet-vibcells", "lenet-vibcells", 64, IB_OPTIM_SGD, 0.01f, 1e-4f},
    {"resnet20", "resnet20", 128, IB_OPTIM_SGD, 0.01f, 0.0f},
    {"resnet20-vibcells", "resnet20-vibcells", 128, IB_OPTIM_SGD, 0.01f, 1e-4f},
};
enum { N_WORKLOADS = sizeof workloads / sizeof workloads[0] };

typedef struct bench {
    ib_params *params;
    ib_graph *g;
    ib_node *x, *y, *logits, *loss;
    ib_optim *opt;
    bool train;
    int64_t batch;
} bench;

static void die(const char *what)
{
    fprintf(stderr, "bench_train_step: %s: %s\n", what, ib_last_error());
    exit(1);
}

static void step(bench *b)
{
    ib_graph_forward(b->g);
    if (b->train) {
        ib_params_zero_grad(b->params);
        ib_graph_backward(b->g, b->loss);
        if (ib_optim_step(b->opt) != IB_OK)
            die("optimizer step");
    }
}

/* Kept out of line so callgrind can count exactly these steps. */
__attribute__((noinline)) void timed_steps(bench *b, long n)
{
    for (long i = 0; i < n; i++)
        step(b);
}

/* ---- flops ---- */

static double node_flops(const ib_node *n, bool train)
{
    if (n->kind != IB__OP)
        return 0;
    double pass = 0;
    const char *op = n->op->name;
    if (strcmp(op, "linear") == 0)
        pass = 2.0 * (double)n->shape[0] * (double)n->in[1]->shape[0] * (double)n->in[1]->shape[1];
    else if (strcmp(op, "conv2d") == 0 || strcmp(op, "conv2d_masked") == 0)
        pass = 2.0 * (double)n->numel * (double)(n->in[1]->numel / n->in[1]->shape[0]);
    else if (strcmp(op, "matmul") == 0)
        pass = 2.0 * (double)n->numel * (double)(n->i[0] ? n->in[0]->shape[0] : n->in[0]->shape[1]);
    else
        return 0;
    double f = pass;
    if (train && n->on_path && n->needs_grad) {
        if (n->in[0]->needs_grad)
            f += pass;
        if (n->in[1]->needs_grad)
            f += pass;
    }
    return f;
}

static double step_flops(const bench *b)
{
    double f = 0;
    for (int i = 0; i < b->g->n_nodes; i++)
        f += node_flops(b->g->nodes[i], b->train);
    return f;
}

/* ---- per-op profile: the graph's own forward/backward loops, timed ---- */

enum { MAX_KINDS = 64 };
typedef struct prof {
    const char *name[MAX_KINDS];
    double fwd[MAX_KINDS], bwd[MAX_KINDS];
    int n;
    double zero_params, zero_acts, recompute, optim, total;
} prof;

static int kind_of(prof *p, const char *name)
{
    for (int k = 0; k < p->n; k++)
        if (strcmp(p->name[k], name) == 0)
            return k;
    IB_ASSERT(p->n < MAX_KINDS);
    p->name[p->n] = name;
    return p->n++;
}

/* One step run op by op.  Relies on a real ib_graph_backward having run
 * before (it sets needs_grad and on_path, which do not change between
 * steps) and mirrors its gradient clearing. */
static void profiled_step(bench *b, prof *p)
{
    ib_graph *g = b->g;
    double t0 = now(), t;
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        t = now();
        ib__forward_step(g, i); /* the op, with the graph's memory bookkeeping */
        if (n->kind == IB__OP)
            p->fwd[kind_of(p, n->op->name)] += now() - t;
    }
    g->step++;
    if (b->train) {
        t = now();
        ib_params_zero_grad(b->params);
        p->zero_params += now() - t;
        t = now();
        ib__grad_zero_step(g, b->loss, b->loss->id);
        p->zero_acts += now() - t;
        b->loss->grad[0] = 1.0f;
        t = now();
        ib__recompute_above(g, b->loss->id);
        p->recompute += now() - t;
        for (int i = b->loss->id; i >= 0; i--) {
            ib_node *n = g->nodes[i];
            t = now();
            ib__recompute_step(g, i);
            p->recompute += now() - t;
            if (i < b->loss->id) { /* gradients are zeroed when their lifetime starts */
                t = now();
                ib__grad_zero_step(g, b->loss, i);
                p->zero_acts += now() - t;
            }
            if (n->kind == IB__OP && n->needs_grad && n->on_path && n->op->backward) {
                t = now();
                ib__op_backward(g, n);
                p->bwd[kind_of(p, n->op->name)] += now() - t;
            }
            ib__grad_dead_step(g, i);
        }
        t = now();
        if (ib_optim_step(b->opt) != IB_OK)
            die("optimizer step");
        p->optim += now() - t;
    }
    p->total += now() - t0;
}

static bool vib_op(const char *name)
{
    return strcmp(name, "softplus") == 0 || strcmp(name, "gaussian_sample") == 0 ||
           strcmp(name, "kl_std_normal") == 0 || strcmp(name, "slice") == 0;
}

static void print_profile(const prof *p, long steps, FILE *json)
{
    int order[MAX_KINDS];
    for (int k = 0; k < p->n; k++)
        order[k] = k;
    for (int a = 0; a < p->n; a++) /* by total time, largest first */
        for (int c = a + 1; c < p->n; c++)
            if (p->fwd[order[c]] + p->bwd[order[c]] > p->fwd[order[a]] + p->bwd[order[a]]) {
                int x = order[a];
                order[a] = order[c];
                order[c] = x;
            }
    double tot = p->total, vib = 0;
    fprintf(stderr, "%-20s %10s %10s %7s   (ms per step, %ld steps)\n", "op", "forward", "backward", "share", steps);
    for (int a = 0; a < p->n; a++) {
        int k = order[a];
        double s = p->fwd[k] + p->bwd[k];
        if (vib_op(p->name[k]))
            vib += s;
        fprintf(stderr, "%-20s %10.3f %10.3f %6.1f%%\n", p->name[k], 1e3 * p->fwd[k] / (double)steps,
                1e3 * p->bwd[k] / (double)steps, 100 * s / tot);
    }
    fprintf(stderr, "%-20s %10.3f %10s %6.1f%%\n", "zero param grads", 1e3 * p->zero_params / (double)steps, "",
            100 * p->zero_params / tot);
    fprintf(stderr, "%-20s %10.3f %10s %6.1f%%\n", "zero act grads", 1e3 * p->zero_acts / (double)steps, "",
            100 * p->zero_acts / tot);
    fprintf(stderr, "%-20s %10s %10.3f %6.1f%%\n", "recompute", "", 1e3 * p->recompute / (double)steps,
            100 * p->recompute / tot);
    fprintf(stderr, "%-20s %10.3f %10s %6.1f%%\n", "optimizer", 1e3 * p->optim / (double)steps, "", 100 * p->optim / tot);
    fprintf(stderr, "%-20s %10.3f ms per step; VIB ops (softplus, sample, KL, slice) %.1f%%\n", "total",
            1e3 * tot / (double)steps, 100 * vib / tot);
    fprintf(json, ", \"profile\": {\"step_ms\": %.4f, \"vib_share\": %.4f, \"zero_params_ms\": %.4f, "
                  "\"zero_acts_ms\": %.4f, \"recompute_ms\": %.4f, \"optim_ms\": %.4f, \"ops\": {",
            1e3 * tot / (double)steps, vib / tot, 1e3 * p->zero_params / (double)steps,
            1e3 * p->zero_acts / (double)steps, 1e3 * p->recompute / (double)steps, 1e3 * p->optim / (double)steps);
    for (int a = 0; a < p->n; a++) {
        int k = order[a];
        fprintf(json, "%s\"%s\": [%.4f, %.4f]", a ? ", " : "", p->name[k], 1e3 * p->fwd[k] / (double)steps,
                1e3 * p->bwd[k] / (double)steps);
    }
    fprintf(json, "}}");
}

/* ---- main ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_train_step --workload NAME [--model M] [--batch B] --mode train|infer --threads N\n"
                    "                        [--seconds S] [--warmup W] [--windows K] [--steps N] [--profile]\n"
                    "workloads:");
    for (int i = 0; i < N_WORKLOADS; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fprintf(stderr, "\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *wname = "vib-mlp", *model_override = NULL, *mode = "train";
    int threads = 1, windows = 5;
    double seconds = 5, warmup = 2;
    long fixed_steps = 0;
    int64_t batch_override = 0;
    bool profile = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--profile") == 0) {
            profile = true;
            continue;
        }
        if (!v)
            usage();
        if (strcmp(a, "--workload") == 0)
            wname = v;
        else if (strcmp(a, "--model") == 0)
            model_override = v;
        else if (strcmp(a, "--mode") == 0)
            mode = v;
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atof(v);
        else if (strcmp(a, "--windows") == 0)
            windows = atoi(v);
        else if (strcmp(a, "--steps") == 0)
            fixed_steps = atol(v);
        else if (strcmp(a, "--batch") == 0)
            batch_override = atoll(v);
        else
            usage();
        i++;
    }
    const workload *w = NULL;
    for (int i = 0; i < N_WORKLOADS; i++)
        if (strcmp(workloads[i].name, wname) == 0)
            w = &workloads[i];
    bool train = strcmp(mode, "train") == 0;
    if (!w || (!train && strcmp(mode, "infer") != 0) || threads < 1 || windows < 1 || windows > 64 || seconds <= 0)
        usage();

    double t_setup = now();
    ib_set_threads(threads);
    ib_model *m = NULL;
    if (ib_model_load(model_override ? model_override : w->model, &m) != IB_OK)
        die("model");
    bench b = {.train = train, .batch = batch_override > 0 ? batch_override : w->batch};
    int c, h, wd;
    ib_model_input_shape(m, &c, &h, &wd);
    b.params = ib_params_new(1);
    b.g = ib_graph_new(b.params);
    b.x = ib_input(b.g, "x", 4, (int64_t[]){b.batch, c, h, wd});
    ib_model_out mo;
    if (ib_model_build(m, b.g, b.x, NULL, &mo) != IB_OK)
        die("build");
    b.logits = mo.logits;
    if (train) {
        b.y = ib_input_labels(b.g, "y", b.batch);
        ib_objective o = ib_objective_default();
        o.beta = w->beta;
        ib_loss loss;
        if (ib_objective_build(b.g, mo.logits, b.y, mo.n_bottlenecks, mo.bn, &o, &loss) != IB_OK)
            die("objective");
        b.loss = loss.total;
        ib_optim_config oc = ib_optim_defaults(w->optim);
        oc.lr = w->lr;
        if (w->optim == IB_OPTIM_SGD)
            oc.momentum = 0.9f;
        b.opt = ib_optim_new(b.params, &oc);
        if (!b.opt)
            die("optimizer");
    }
    if (!train && ib_graph_set_forward_only(b.g, true) != IB_OK) /* reads only the logits, an output */
        die("forward-only");
    /* Training: feature maps die after their last reader; the step reads only the loss terms (0-D/1-D) after it. */
    if (train && ib_graph_set_reuse_values(b.g, true) != IB_OK)
        die("reuse-values");
    /* ... and recompute the cheap ones backward reads (as the trainer does). */
    if (train && ib_graph_set_recompute(b.g, getenv("IBNET_NO_RECOMPUTE") == NULL) != IB_OK)
        die("recompute");
    if (ib_graph_compile(b.g) != IB_OK)
        die("compile");
    ib_graph_set_training(b.g, train);
    ib_graph_set_sampling(b.g, train); /* inference takes the mean path, as evaluation does */
    ib_graph_set_seed(b.g, 7);
    int64_t xn = ib_node_numel(b.x);
    ib_rng_normal(3, 1, 0, ib_node_data(b.x), xn);
    if (train) {
        int32_t *y = ib_node_labels(b.y);
        for (int64_t i = 0; i < b.batch; i++)
            y[i] = (int32_t)(ib_rng_u64(3, 2, 0, (uint64_t)i) % (uint64_t)ib_model_classes(m));
    }
    step(&b); /* first step: sets gradient flags, touches every page */
    t_setup = now() - t_setup;
    double flops = step_flops(&b);

    double win[64];
    int nwin = 0;
    long steps_done = 1;
    prof p = {0};
    double t_run = now();
    if (fixed_steps > 0) {
        timed_steps(&b, fixed_steps);
        steps_done += fixed_steps;
    } else {
        double t0 = now();
        while (now() - t0 < warmup) {
            step(&b);
            steps_done++;
        }
        double len = seconds / windows;
        for (nwin = 0; nwin < windows; nwin++) {
            long n = 0;
            double ts = now(), el;
            do {
                step(&b);
                n++;
                el = now() - ts;
            } while (el < len);
            win[nwin] = (double)(n * b.batch) / el;
            steps_done += n;
        }
    }
    t_run = now() - t_run;
    long prof_steps = 0;
    if (profile) {
        double t0 = now();
        do {
            profiled_step(&b, &p);
            prof_steps++;
        } while (now() - t0 < (fixed_steps > 0 ? 0.0 : seconds / 2) || prof_steps < 3);
    }
    double med = 0;
    if (nwin) {
        double s[64];
        memcpy(s, win, sizeof(double) * (size_t)nwin);
        qsort(s, (size_t)nwin, sizeof(double), cmp_double);
        med = nwin % 2 ? s[nwin / 2] : 0.5 * (s[nwin / 2 - 1] + s[nwin / 2]);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    float out0 = ib_node_data(b.logits)[0];
    printf("{\"impl\": \"ibnet\", \"version\": \"%s\", \"workload\": \"%s\", \"model\": \"%s\", \"mode\": \"%s\", "
           "\"threads\": %d, \"batch\": %lld, \"samples_per_s\": %.2f, \"windows\": [",
           ib_version(), w->name, ib_model_name(m), mode, threads, (long long)b.batch, med);
    for (int i = 0; i < nwin; i++)
        printf("%s%.2f", i ? ", " : "", win[i]);
    printf("], \"steps\": %ld, \"run_s\": %.3f, \"setup_s\": %.3f, \"peak_rss_mib\": %.1f, \"graph_mib\": %.1f, "
           "\"params\": %lld, \"gflop_per_step\": %.4f, \"gflops\": %.2f, \"finite\": %s",
           steps_done, t_run, t_setup, (double)ru.ru_maxrss / 1024.0, (double)ib_graph_memory(b.g) / (1 << 20),
           (long long)ib_params_trainable_total(b.params), flops * 1e-9, med / (double)b.batch * flops * 1e-9,
           isfinite(out0) ? "true" : "false");
    if (profile)
        print_profile(&p, prof_steps, stdout);
    printf("}\n");
    ib_optim_free(b.opt);
    ib_graph_free(b.g);
    ib_params_free(b.params);
    ib_model_free(m);
    return 0;
}
