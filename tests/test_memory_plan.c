/*
 * test_memory_plan.c — the lifetime-planned graph memory of ib_graph_compile
 * (src/core/graph.c, src/core/memory.c): sharing buffers must not change a
 * single bit of any result a caller can read, must shrink the arena, and
 * must keep what the API promises readable (inputs, kept nodes, outputs,
 * parameter gradients; with ib_graph_set_reuse_values, values of fewer than
 * 3 dimensions too).  Reusing values relies on each op's declaration of
 * what its backward reads (ib_op.bwd_reads): a wrong one shows up here as
 * different bits, or under ASan as a read of a poisoned buffer.  Every
 * comparison is exact (memcmp): a planned
 * graph runs the same kernels on the same data in the same order as a
 * graph whose every node is kept, so there is no tolerance to grant.
 * Recomputation (ib_graph_set_recompute) runs the forward kernels again
 * on the same inputs, so it too owes the same bits.  So does the blocked
 * layout of the activations between convolutions (src/core/layout.c),
 * which the planned graphs here take (the all-kept ones stay plain): its
 * op paths sum in the plain ones' order; both blocks (8: AVX2, 16:
 * AVX-512) are checked on any CPU, and the im2col fallback on blocked
 * tensors too.
 */
#include "core/internal.h"
#include "kernels/conv_kernels.h"
#include "test.h"

/* ---- helpers ---- */

/* Keep every node: the plan then shares nothing, as before reuse. */
static void keep_all(ib_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++)
        ib_node_keep(g->nodes[i]);
}

typedef struct net {
    ib_graph *g;
    ib_node *x, *y;
    ib_model_out mo;
    ib_loss loss;
} net;

/* A model of the built-in list on a batch of `batch`, with the objective
 * when training; compiled; x and y filled from fixed streams. */
enum { PLAIN = 0, KEEP_ALL = 1, REUSE = 2, RECOMPUTE = 3 };

/* The layout block of the graphs that are not all kept: -1 the kernels'
 * choice (16 with AVX-512, 8 with AVX2, 0 without oneDNN), or forced. */
static int layout_block = -1;

static void build(net *n, ib_params *p, const ib_model *m, int64_t batch, bool train, int mode, bool forward_only)
{
    int c, h, w;
    ib_model_input_shape(m, &c, &h, &w);
    n->g = ib_graph_new(p);
    ib_graph_set_seed(n->g, 11);
    n->x = ib_node_set_requires_grad(ib_input(n->g, "x", 4, (int64_t[]){batch, c, h, w}), true);
    n->y = ib_input_labels(n->g, "y", batch);
    CHECK_OK(ib_model_build(m, n->g, n->x, NULL, &n->mo));
    memset(&n->loss, 0, sizeof n->loss);
    if (train) {
        ib_objective o = ib_objective_default();
        o.beta = 1e-2f; /* large enough that the KL gradient shows in every weight of the encoder */
        CHECK_OK(ib_objective_build(n->g, n->mo.logits, n->y, n->mo.n_bottlenecks, n->mo.bn, &o, &n->loss));
    }
    if (mode == KEEP_ALL)
        keep_all(n->g);
    else
        ib__graph_set_layout_block(n->g, layout_block);
    CHECK_OK(ib_graph_set_reuse_values(n->g, mode >= REUSE));
    CHECK_OK(ib_graph_set_recompute(n->g, mode == RECOMPUTE));
    CHECK_OK(ib_graph_set_forward_only(n->g, forward_only));
    CHECK_OK(ib_graph_compile(n->g));
    ib_test_fill(ib_node_data(n->x), ib_node_numel(n->x), -1.0f, 1.0f, 5);
    int32_t *lab = ib_node_labels(n->y);
    for (int64_t i = 0; i < batch; i++)
        lab[i] = (int32_t)((i * 7 + 3) % ib_model_classes(m));
}

static void same_bits(const char *what, const float *a, const float *b, int64_t numel)
{
    CHECK_MSG(a && b, "%s: missing buffer", what);
    int64_t bad = 0, first = -1;
    for (int64_t k = 0; k < numel; k++)
        if (memcmp(&a[k], &b[k], sizeof(float)) != 0 && bad++ == 0)
            first = k;
    CHECK_MSG(bad == 0, "%s: %lld of %lld values differ, first at %lld (%.9g vs %.9g)", what, (long long)bad,
              (long long)numel, (long long)first, first >= 0 ? a[first] : 0.0, first >= 0 ? b[first] : 0.0);
}

/* One training step's readable results: loss terms, logits, d/dx and every
 * parameter gradient (the store's, cleared first). */
typedef struct snapshot {
    float loss, ce, kl[IB_MAX_BOTTLENECKS];
    float *logits, *dx, *dparams;
} snapshot;

static snapshot take(net *n, ib_params *p, ib_node *loss_node, uint64_t step)
{
    ib_graph_set_step(n->g, step);
    CHECK_OK(ib_graph_forward(n->g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(n->g, loss_node));
    snapshot s = {ib_node_scalar(n->loss.total), ib_node_scalar(n->loss.ce), {0}, NULL, NULL, NULL};
    for (int l = 0; l < n->mo.n_bottlenecks; l++)
        s.kl[l] = ib_node_scalar(n->loss.kl[l]);
    int64_t nl = ib_node_numel(n->mo.logits), nx = ib_node_numel(n->x), np = ib_params_total(p);
    s.logits = malloc((size_t)nl * sizeof(float));
    s.dx = malloc((size_t)nx * sizeof(float));
    s.dparams = malloc((size_t)np * sizeof(float));
    memcpy(s.logits, ib_node_data(n->mo.logits), (size_t)nl * sizeof(float));
    memcpy(s.dx, ib_node_grad(n->x), (size_t)nx * sizeof(float));
    memcpy(s.dparams, ib_params_grads(p), (size_t)np * sizeof(float));
    return s;
}

static void compare(const char *what, const snapshot *a, const snapshot *b, const net *n, ib_params *p)
{
    char buf[160];
    CHECK_MSG(memcmp(&a->loss, &b->loss, sizeof(float)) == 0, "%s: loss %.9g vs %.9g", what, a->loss, b->loss);
    CHECK_MSG(memcmp(&a->ce, &b->ce, sizeof(float)) == 0, "%s: ce %.9g vs %.9g", what, a->ce, b->ce);
    for (int l = 0; l < n->mo.n_bottlenecks; l++)
        CHECK_MSG(memcmp(&a->kl[l], &b->kl[l], sizeof(float)) == 0, "%s: kl[%d] %.9g vs %.9g", what, l, a->kl[l],
                  b->kl[l]);
    snprintf(buf, sizeof buf, "%s logits", what);
    same_bits(buf, a->logits, b->logits, ib_node_numel(n->mo.logits));
    snprintf(buf, sizeof buf, "%s dx", what);
    same_bits(buf, a->dx, b->dx, ib_node_numel(n->x));
    snprintf(buf, sizeof buf, "%s dparams", what);
    same_bits(buf, a->dparams, b->dparams, ib_params_total(p));
}

static void drop(snapshot *s)
{
    free(s->logits);
    free(s->dx);
    free(s->dparams);
}

static bool any_nonzero(const float *v, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (v[k] != 0.0f)
            return true;
    return false;
}

/* Planned vs all-kept training graphs of one model on one store: the same
 * bits on two steps (the second catches a gradient not re-zeroed), from
 * the total loss and from the cross-entropy alone (a loss consumed by later
 * nodes: gradients live at its start must be zeroed up front). */
static void train_equal_mode(const char *model, int64_t batch, int mode)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model, &m));
    ib_params *p = ib_params_new(1);
    net ref, got;
    build(&ref, p, m, batch, true, KEEP_ALL, false);
    build(&got, p, m, batch, true, mode, false);
    CHECK_MSG(ib_graph_memory(got.g) < ib_graph_memory(ref.g), "%s: planned %zu bytes, all kept %zu", model,
              ib_graph_memory(got.g), ib_graph_memory(ref.g));
    CHECK(ib_graph_reuse_values(got.g) == (mode >= REUSE));
    for (int step = 0; step < 2; step++) {
        snapshot a = take(&ref, p, ref.loss.total, (uint64_t)step), b = take(&got, p, got.loss.total, (uint64_t)step);
        CHECK_MSG(any_nonzero(a.dx, ib_node_numel(ref.x)), "%s: dx is all zero: the test would prove nothing", model);
        compare(model, &a, &b, &ref, p);
        drop(&a);
        drop(&b);
    }
    snapshot a = take(&ref, p, ref.loss.ce, 5), b = take(&got, p, got.loss.ce, 5);
    compare(model, &a, &b, &ref, p);
    drop(&a);
    drop(&b);
    if (mode >= REUSE) {
        /* A reusing graph frees feature maps its backward read: a second
         * backward must wait for a new forward (if any map was freed). */
        bool frees = got.g->bwd_frees;
        CHECK_EQ_INT(ib_graph_backward(got.g, got.loss.total), frees ? IB_ERR_STATE : IB_OK);
        CHECK_OK(ib_graph_forward(got.g));
        CHECK_OK(ib_graph_backward(got.g, got.loss.total));
    }
    ib_graph_free(ref.g);
    ib_graph_free(got.g);
    ib_params_free(p);
    ib_model_free(m);
}

static void train_equal(const char *model, int64_t batch) { train_equal_mode(model, batch, PLAIN); }

/* The arena of a reusing graph, and of the same model planned without
 * reuse, on a fresh store (op workspaces, planned in the arena, are in
 * both). */
static void memory_of(const char *model, int64_t batch, size_t *plain, size_t *reuse)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model, &m));
    ib_params *p = ib_params_new(1);
    net a, b;
    build(&a, p, m, batch, true, PLAIN, false);
    build(&b, p, m, batch, true, REUSE, false);
    *plain = a.g->arena_bytes;
    *reuse = b.g->arena_bytes;
    ib_graph_free(a.g);
    ib_graph_free(b.g);
    ib_params_free(p);
    ib_model_free(m);
}

/* ---- cases ---- */

static void test_mlp_training_same_bits(void) { train_equal("mlp", 4); }

/* Reusing values: the same bits as the all-kept graph, on two steps and
 * from an inner loss (the cross-entropy), for a network of every kind the
 * trainer runs: fully connected (only vectors: nothing is reused, the same
 * plan), LeNet with VIB cells (conv, max-pool, sampling and KL on feature
 * maps), ResNet-20 (batch norm, residual adds, global pooling) and with
 * VIB cells. */
static void test_reuse_mlp_same_bits(void) { train_equal_mode("vib-mlp", 4, REUSE); }
static void test_reuse_lenet_vibcells_same_bits(void) { train_equal_mode("lenet-vibcells", 3, REUSE); }
static void test_reuse_resnet_same_bits(void) { train_equal_mode("resnet20", 2, REUSE); }
static void test_reuse_resnet_vibcells_same_bits(void) { train_equal_mode("resnet20-vibcells", 2, REUSE); }

/* Recomputing in backward: the same bits again.  LeNet recomputes nothing
 * (its ReLUs feed pools; nothing cheap is read twice), ResNet-20 the ReLU
 * inside each block through its batch norm, the cells' nets as well. */
static void test_recompute_lenet_vibcells_same_bits(void) { train_equal_mode("lenet-vibcells", 3, RECOMPUTE); }
static void test_recompute_resnet_same_bits(void) { train_equal_mode("resnet20", 2, RECOMPUTE); }
static void test_recompute_resnet_vibcells_same_bits(void)
{
    train_equal_mode("resnet20-vibcells", 2, RECOMPUTE);
}

/* What is recomputed in a ResNet-20 and what it saves.  Every ReLU under a
 * batch norm (the stem's and the one inside each of the 9 blocks) with
 * that batch norm; a block's output ReLU (with its add and second batch
 * norm) only where its shortcut, the previous block's output, is kept
 * rather than recomputed itself (recomputing it earlier than its own
 * readers need would save nothing): the middle block of each stage, as
 * the first block of stages 2 and 3 has a subsampled shortcut, not
 * recomputable.  The blocks' first batch norm and ReLU are one op
 * (batchnorm_relu), recomputed from the kept conv output, and so are
 * their add and ReLU (add_relu); the stem's batch norm and ReLU are two.
 * So 9 batchnorm_relu, 1 ReLU, 1 + 3 batch norms, 3 add_relu; and a smaller
 * arena than reuse alone (measured at batch 8: 0.70x with oneDNN's conv
 * workspaces in both arenas, 0.84x with the larger im2col ones). */
static void test_recompute_plan_of_resnet(void)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load("resnet20", &m));
    ib_params *p = ib_params_new(1);
    net a, b;
    build(&a, p, m, 8, true, REUSE, false);
    build(&b, p, m, 8, true, RECOMPUTE, false);
    CHECK(ib_graph_recompute(b.g) && !ib_graph_recompute(a.g));
    int n_re = 0, n_relu = 0, n_bn = 0, n_bnrelu = 0, n_addrelu = 0;
    for (int i = 0; i < b.g->n_nodes; i++) {
        const ib_node *n = b.g->nodes[i];
        CHECK(a.g->nodes[i]->recompute_at < 0);
        if (n->recompute_at < 0)
            continue;
        n_re++;
        CHECK_MSG(n->recompute_at > i, "'%s' (%d) recomputed before backward step %d", n->name, i, n->recompute_at);
        n_relu += strcmp(n->op->name, "relu") == 0;
        n_bn += strcmp(n->op->name, "batchnorm") == 0;
        n_bnrelu += strcmp(n->op->name, "batchnorm_relu") == 0;
        n_addrelu += strcmp(n->op->name, "add_relu") == 0;
        if (strcmp(n->op->name, "add_relu") == 0)
            CHECK_MSG(strcmp(n->in[0]->op->name, "batchnorm") == 0 && n->in[0]->recompute_at >= 0,
                      "'%s' recomputed from '%s', which is not", n->name, n->in[0]->name);
    }
    CHECK_EQ_INT(n_bnrelu, 9);
    CHECK_EQ_INT(n_relu, 1);
    CHECK_EQ_INT(n_bn, 4);
    CHECK_EQ_INT(n_addrelu, 3);
    CHECK_EQ_INT(n_re, 9 + 1 + 4 + 3);
    CHECK_MSG(b.g->arena_bytes * 100 < a.g->arena_bytes * (ib__conv_path() == IB_CONV_DNNL ? 75 : 88), "recompute %zu bytes, reuse %zu", b.g->arena_bytes,
              a.g->arena_bytes);
    /* backward recomputes batch norm without touching the running statistics */
    ib_graph_set_step(b.g, 0);
    CHECK_OK(ib_graph_forward(b.g));
    int64_t np = ib_params_total(p);
    float *before = malloc((size_t)np * sizeof(float));
    memcpy(before, ib_params_values(p), (size_t)np * sizeof(float));
    CHECK_OK(ib_graph_backward(b.g, b.loss.total));
    same_bits("store after backward", before, ib_params_values(p), np);
    free(before);
    ib_graph_free(a.g);
    ib_graph_free(b.g);
    ib_params_free(p);
    ib_model_free(m);
}

/* The arena shrinks where feature maps are: ResNet-20's batch-norm, add
 * and pre-relu outputs are read by no backward (relu reads its output), so
 * they die in forward, and what backward reads dies once read.  Measured
 * at batch 8: 0.68x (ResNet-20, whose fused batchnorm_relu and add_relu
 * leave no pre-relu outputs in either plan; 0.53x before the fusion) and
 * 0.61x (LeNet with VIB cells); the
 * bounds leave a little room for layout changes of the planner.  The
 * convolutions' workspaces are in the arena too, the same in both plans:
 * the im2col path's (much larger than oneDNN's at this batch) dilute the
 * LeNet ratio to 0.79x.  An MLP holds only vectors: the same plan. */
static void test_reuse_shrinks_cnn_memory(void)
{
    size_t plain, reuse;
    memory_of("resnet20", 8, &plain, &reuse);
    CHECK_MSG(reuse * 100 < plain * 72, "resnet20: reusing %zu bytes, planned %zu", reuse, plain);
    memory_of("lenet-vibcells", 8, &plain, &reuse);
    CHECK_MSG(reuse * 100 < plain * (ib__conv_path() == IB_CONV_DNNL ? 66 : 84), "lenet-vibcells: reusing %zu bytes, planned %zu", reuse, plain);
    memory_of("mlp", 8, &plain, &reuse);
    CHECK_EQ_INT(reuse, plain);
}

/* Convolutions, batch norm (batch statistics) and residual adds. */
static void test_resnet_training_same_bits(void) { train_equal("resnet20", 2); }

/* A Deep VIB bottleneck: keyed sampling and the KL term. */
static void test_vib_training_same_bits(void) { train_equal("vib-mlp", 4); }

/* Forward-only graphs (eval mode, sampling on) give the all-kept graph's
 * logits and KL, and restarting from the first random op equals a full
 * forward at that step. */
static void forward_only_equal(const char *model, int64_t batch)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model, &m));
    ib_params *p = ib_params_new(1);
    net ref, got;
    build(&ref, p, m, batch, false, KEEP_ALL, false);
    build(&got, p, m, batch, false, PLAIN, true);
    CHECK(ib_graph_forward_only(got.g) && !ib_graph_forward_only(ref.g));
    CHECK_MSG(ib_graph_memory(got.g) * 3 < ib_graph_memory(ref.g), "%s: forward-only %zu bytes, all kept %zu", model,
              ib_graph_memory(got.g), ib_graph_memory(ref.g));
    CHECK(ib_node_grad(got.mo.logits) == NULL && ib_node_grad(got.x) == NULL);
    /* a forward-only conv sizes (and plans) its forward pass only */
    int convs = 0, smaller = 0;
    for (int i = 0; i < got.g->n_nodes; i++) {
        const ib_node *a = got.g->nodes[i], *b = ref.g->nodes[i];
        if (a->kind != IB__OP || strcmp(a->op->name, "conv2d") != 0)
            continue;
        convs++;
        smaller += a->tmp_bytes < b->tmp_bytes;
        CHECK_MSG(a->tmp_bytes <= b->tmp_bytes, "%s: forward-only workspace %zu > training %zu", a->name, a->tmp_bytes,
                  b->tmp_bytes);
    }
    CHECK_MSG(convs == 0 || smaller > 0, "%s: no conv's forward-only workspace is smaller", model);
    int64_t nl = ib_node_numel(ref.mo.logits);
    for (int k = 0; k < 2; k++) {
        net *n = k ? &got : &ref;
        ib_graph_set_training(n->g, false);
        ib_graph_set_sampling(n->g, true);
    }
    float *full = malloc((size_t)nl * sizeof(float));
    ib_node *first = ib_graph_first_random(got.g);
    for (uint64_t step = 3; step < 5; step++) {
        ib_graph_set_step(ref.g, step);
        ib_graph_set_step(got.g, step);
        CHECK_OK(ib_graph_forward(ref.g));
        CHECK_OK(ib_graph_forward(got.g));
        same_bits(model, ib_node_data(ref.mo.logits), ib_node_data(got.mo.logits), nl);
        for (int l = 0; l < ref.mo.n_bottlenecks; l++)
            same_bits("kl", ib_node_data(ref.mo.bn[l].kl), ib_node_data(got.mo.bn[l].kl),
                      ib_node_numel(ref.mo.bn[l].kl));
        memcpy(full, ib_node_data(got.mo.logits), (size_t)nl * sizeof(float));
        if (first) {
            /* another draw, then back to this step from the first sample */
            CHECK_OK(ib_graph_forward(got.g));
            CHECK(memcmp(full, ib_node_data(got.mo.logits), (size_t)nl * sizeof(float)) != 0);
            ib_graph_set_step(got.g, step);
            CHECK_OK(ib_graph_forward_from(got.g, first));
            same_bits("forward_from", full, ib_node_data(got.mo.logits), nl);
        }
    }
    if (first) {
        /* restarting at the logits would read values already reused */
        CHECK_EQ_INT(ib_graph_forward_from(got.g, got.mo.logits), IB_ERR_STATE);
        CHECK(strstr(ib_last_error(), "forward-only") != NULL);
    }
    free(full);
    ib_graph_free(ref.g);
    ib_graph_free(got.g);
    ib_params_free(p);
    ib_model_free(m);
}

static void test_forward_only_vib_same_bits(void) { forward_only_equal("vib-mlp", 4); }
static void test_forward_only_resnet_same_bits(void) { forward_only_equal("resnet20", 2); }

/* A chain x -> 100 relus -> sum: the planned bytes, exactly.  S = one
 * activation (64 x 256 floats, a multiple of the alignment); the scalar
 * takes one 64-byte block.  Training: every value (101 S + 64), x's
 * gradient (S), and two gradient slots the chain alternates between (a
 * node's gradient lives from its consumer's backward to its own), the
 * scalar's fitting beside them: 104 S + 64, where everything alive at once
 * took 202 S + 128.  Forward-only: x, two value slots, the scalar: 3 S + 64. */
static ib_graph *chain(ib_params *p, bool forward_only, int keep_at, ib_node **x, ib_node **mid, ib_node **loss)
{
    ib_graph *g = ib_graph_new(p);
    *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){64, 256}), true);
    ib_node *h = *x;
    for (int i = 0; i < 100; i++) {
        h = ib_relu(g, h);
        if (i == keep_at)
            *mid = ib_node_keep(h);
    }
    *loss = ib_sum(g, h, IB_ALL);
    CHECK_OK(ib_graph_set_forward_only(g, forward_only));
    CHECK_OK(ib_graph_compile(g));
    float *xv = ib_node_data(*x);
    ib_test_fill(xv, 64 * 256, -0.5f, 1.0f, 9);
    return g;
}

static void test_deep_chain_planned_bytes(void)
{
    ib_params *p = ib_params_new(1);
    const size_t S = 64 * 256 * sizeof(float);
    ib_node *x, *mid = NULL, *loss;
    ib_graph *g = chain(p, false, -1, &x, &mid, &loss);
    /* without reuse of values: the 100 values, x and its gradient, and one
     * gradient slot, every relu writing its input's gradient over its own
     * (grad_in_place) down to the first, whose input x keeps its own; the
     * scalar loss's value and gradient, 64 bytes each (its gradient no
     * longer fits in the second slot of the chain's gradients: there is none) */
    CHECK_EQ_INT(ib_graph_memory(g), 103 * S + 128);
    int shared = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->grad_shares >= 0) {
            shared++;
            CHECK(g->nodes[i]->grad == g->nodes[g->nodes[i]->grad_shares]->grad);
        }
    CHECK_EQ_INT(shared, 99);
    ib_graph *f = chain(p, true, -1, &x, &mid, &loss);
    CHECK_EQ_INT(ib_graph_memory(f), 3 * S + 64);
    /* one kept node takes one more slot of its own */
    ib_graph *k = chain(p, true, 50, &x, &mid, &loss);
    CHECK_EQ_INT(ib_graph_memory(k), 4 * S + 64);
    ib_graph_free(g);
    ib_graph_free(f);
    ib_graph_free(k);
    ib_params_free(p);
}

/* x -> L x (3x3 conv, batch norm, relu) -> sum, on 8 x 4 x 8 x 8 maps:
 * every activation is S = 8 KiB.  Planned without reuse: x and its
 * gradient, 3L values, two gradient slots the chain alternates between:
 * (3L + 4) S.  Reusing values: a batch norm's output dies as its relu runs
 * (relu's backward reads its output), a conv's output after the batch
 * norm's backward, a relu's output after its own: at most 2L of them alive,
 * at the relu backward that starts the chain, with x, its gradient and two
 * gradient slots: (2L + 4) S, exactly L S less (the planner is optimal on
 * buffers of one size taken in order of their start).  Both also hold L
 * batch-norm scratch blocks and the scalar: (L + 1) 64 bytes. */
enum { CH_L = 6, CH_N = 8, CH_C = 4, CH_HW = 8 };

static ib_graph *conv_chain(ib_params *p, int mode, ib_node **x, ib_node **loss)
{
    ib_graph *g = ib_graph_new(p);
    ib_graph_set_seed(g, 3);
    *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){CH_N, CH_C, CH_HW, CH_HW}), true);
    ib_node *h = *x;
    ib_init u = {IB_INIT_UNIFORM, -0.5f, 0.5f}, one = {IB_INIT_UNIFORM, 0.5f, 1.5f};
    for (int l = 0; l < CH_L; l++) {
        char name[32];
        snprintf(name, sizeof name, "w%d", l);
        ib_node *w = ib_param(g, name, 4, (int64_t[]){CH_C, CH_C, 3, 3}, u);
        snprintf(name, sizeof name, "gamma%d", l);
        ib_node *gamma = ib_param(g, name, 1, (int64_t[]){CH_C}, one);
        snprintf(name, sizeof name, "beta%d", l);
        ib_node *beta = ib_param(g, name, 1, (int64_t[]){CH_C}, u);
        snprintf(name, sizeof name, "rm%d", l);
        ib_node *rm = ib_buffer(g, name, 1, (int64_t[]){CH_C}, (ib_init){IB_INIT_ZEROS, 0, 0});
        snprintf(name, sizeof name, "rv%d", l);
        ib_node *rv = ib_buffer(g, name, 1, (int64_t[]){CH_C}, (ib_init){IB_INIT_ONES, 0, 0});
        h = ib_relu(g, ib_batchnorm(g, ib_conv2d(g, h, w, NULL, 1, 1), gamma, beta, rm, rv, 0.1f, 1e-5f));
    }
    *loss = ib_sum(g, h, IB_ALL);
    if (mode == KEEP_ALL)
        keep_all(g);
    CHECK_OK(ib_graph_set_reuse_values(g, mode >= REUSE));
    CHECK_OK(ib_graph_set_recompute(g, mode == RECOMPUTE));
    CHECK_OK(ib_graph_compile(g));
    ib_test_fill(ib_node_data(*x), ib_node_numel(*x), -1.0f, 1.0f, 21);
    return g;
}

static void test_conv_bn_relu_chain_planned_bytes(void)
{
    ib_params *p = ib_params_new(1);
    const size_t S = (size_t)CH_N * CH_C * CH_HW * CH_HW * sizeof(float);
    ib_node *x[4], *loss[4];
    ib_graph *g[4];
    for (int mode = 0; mode < 4; mode++)
        g[mode] = conv_chain(p, mode, &x[mode], &loss[mode]);
    /* A step's live set includes at most one op's workspace (a conv's, all
     * the same size here: T), and the peak steps are conv backwards.  At the
     * last conv's backward, reusing: x and dx (2), the conv outputs the
     * earlier batch norms' backwards read (L - 1), the ReLU outputs the
     * earlier convs' backwards read (L - 1), the conv's output gradient and
     * input gradient (2): 2L + 2 (a ReLU backward's step holds 2L + 4 but
     * no workspace).  Keeping all (plain) the first conv's backward holds
     * 3L + 4 and T. */
    size_t T = 0;
    for (int i = 0; i < g[PLAIN]->n_nodes; i++)
        if (g[PLAIN]->nodes[i]->tmp_bytes > T)
            T = (g[PLAIN]->nodes[i]->tmp_bytes + 63) / 64 * 64;
    CHECK(T > 0);
    CHECK_EQ_INT(g[PLAIN]->arena_bytes, (3 * CH_L + 4) * S + (CH_L + 1) * 64 + T);
    CHECK_EQ_INT(g[REUSE]->arena_bytes, (2 * CH_L + 2) * S + (CH_L + 1) * 64 + T);
    CHECK_EQ_INT(ib_graph_memory(g[PLAIN]) - ib_graph_memory(g[REUSE]), (CH_L + 2) * S);
    /* Recomputed: all 6 ReLUs and their batch norms.  At the peak, the last
     * conv's backward: x and dx (2), the conv outputs the earlier batch
     * norms' backwards read (L - 1), the ReLU under it and the batch norm
     * output it was recomputed from, both just recomputed (2), the conv's
     * output and input gradients (2): L + 5, and T. */
    CHECK_EQ_INT(g[RECOMPUTE]->arena_bytes, (CH_L + 5) * S + (CH_L + 1) * 64 + T);
    /* and the same bits as the all-kept graph: dx and every parameter gradient */
    int64_t nx = ib_node_numel(x[0]), np = ib_params_total(p);
    float *ref_dx = malloc((size_t)nx * sizeof(float)), *ref_dp = malloc((size_t)np * sizeof(float));
    const int order[4] = {KEEP_ALL, REUSE, PLAIN, RECOMPUTE};
    for (int t = 0; t < 4; t++) {
        int mode = order[t];
        ib_graph_set_step(g[mode], 0);
        CHECK_OK(ib_graph_forward(g[mode]));
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_backward(g[mode], loss[mode]));
        if (mode == KEEP_ALL) {
            CHECK(any_nonzero(ib_node_grad(x[mode]), nx));
            memcpy(ref_dx, ib_node_grad(x[mode]), (size_t)nx * sizeof(float));
            memcpy(ref_dp, ib_params_grads(p), (size_t)np * sizeof(float));
            continue;
        }
        static const char *what[4][2] = {{"plain dx", "plain dparams"}, {"", ""}, {"reuse dx", "reuse dparams"},
                                         {"recompute dx", "recompute dparams"}};
        same_bits(what[mode][0], ref_dx, ib_node_grad(x[mode]), nx);
        same_bits(what[mode][1], ref_dp, ib_params_grads(p), np);
    }
    free(ref_dx);
    free(ref_dp);
    for (int mode = 0; mode < 4; mode++)
        ib_graph_free(g[mode]);
    ib_params_free(p);
}

/* A kept node's value survives forward and its gradient survives backward
 * (relu of relu...: the value is relu(x), the gradient 1 where x > 0). */
static void test_kept_nodes_stay_readable(void)
{
    ib_params *p = ib_params_new(1);
    ib_node *x, *mid = NULL, *loss;
    for (int fo = 0; fo < 2; fo++) {
        ib_graph *g = chain(p, fo, 40, &x, &mid, &loss);
        CHECK_OK(ib_graph_forward(g));
        const float *xv = ib_node_data(x), *mv = ib_node_data(mid);
        for (int64_t k = 0; k < 64 * 256; k++)
            CHECK(mv[k] == (xv[k] > 0 ? xv[k] : 0.0f));
        CHECK(ib_node_scalar(loss) > 0);
        if (!fo) {
            CHECK_OK(ib_graph_backward(g, loss));
            const float *dm = ib_node_grad(mid), *dx = ib_node_grad(x);
            for (int64_t k = 0; k < 64 * 256; k++) {
                CHECK(dm[k] == (xv[k] > 0 ? 1.0f : 0.0f));
                CHECK(dx[k] == (xv[k] > 0 ? 1.0f : 0.0f));
            }
        }
        ib_graph_free(g);
    }
    ib_params_free(p);
}

/* Backward from a loss that later nodes consume: a gradient whose first
 * writer comes after the loss is zeroed up front, not left stale from the
 * previous backward (here from the larger loss). */
static void test_backward_from_an_inner_loss(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){8, 300}), true);
    ib_node *a = ib_square(g, x);
    ib_node *l1 = ib_sum(g, a, IB_ALL);
    ib_node *l2 = ib_add(g, l1, ib_sum(g, ib_exp(g, a), IB_ALL));
    CHECK_OK(ib_graph_compile(g));
    float *xv = ib_node_data(x);
    ib_test_fill(xv, 8 * 300, -1.0f, 1.0f, 4);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, l2));
    CHECK_OK(ib_graph_backward(g, l1));
    const float *dx = ib_node_grad(x);
    for (int64_t k = 0; k < 8 * 300; k++) /* d sum(x^2) / dx = 1 * 2 x, exact in float */
        CHECK_MSG(dx[k] == 2.0f * xv[k], "dx[%lld] = %.9g, expected %.9g", (long long)k, dx[k], 2.0f * xv[k]);
    ib_graph_free(g);
    ib_params_free(p);
}

/* Backward (and gradcheck) on a forward-only graph fail with a message;
 * the switch cannot be flipped after compile. */
static void test_forward_only_rejects_backward(void)
{
    ib_params *p = ib_params_new(1);
    ib_node *x, *mid = NULL, *loss;
    ib_graph *g = chain(p, true, -1, &x, &mid, &loss);
    CHECK_OK(ib_graph_forward(g));
    CHECK_EQ_INT(ib_graph_backward(g, loss), IB_ERR_STATE);
    CHECK(strstr(ib_last_error(), "forward-only") != NULL);
    double err = 0;
    CHECK_EQ_INT(ib_graph_gradcheck(g, loss, x, 1e-3f, &err, NULL), IB_ERR_STATE);
    CHECK_EQ_INT(ib_graph_set_forward_only(g, false), IB_ERR_STATE);
    CHECK(ib_graph_forward_only(g));
    ib_graph_free(g);
    ib_params_free(p);
}

/* The planner itself on random lifetimes: buffers alive at the same time
 * never share a byte, and sharing happens (the total is below the sum). */
static void test_planner_never_overlaps_live_buffers(void)
{
    enum { N = 300 };
    ib__plan_item it[N];
    size_t sum = 0;
    uint64_t r = 12345;
    for (int i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int lo = (int)((r >> 33) % 200), len = (int)((r >> 20) % 20);
        size_t bytes = (size_t)((r >> 40) % 5000) + 1;
        it[i] = (ib__plan_item){bytes, 0, lo, lo + len};
        sum += (bytes + IB_ALIGN - 1) / IB_ALIGN * IB_ALIGN;
    }
    it[7].lo = INT32_MIN; /* one lives throughout */
    it[7].hi = INT32_MAX;
    size_t total = ib__plan_offsets(it, N);
    int clashes = 0;
    for (int i = 0; i < N; i++) {
        CHECK(it[i].offset % IB_ALIGN == 0 && it[i].offset + it[i].bytes <= total);
        for (int j = i + 1; j < N; j++) {
            bool live = it[i].lo <= it[j].hi && it[j].lo <= it[i].hi;
            bool share = it[i].offset < it[j].offset + it[j].bytes && it[j].offset < it[i].offset + it[i].bytes;
            clashes += live && share;
        }
    }
    CHECK_EQ_INT(clashes, 0);
    CHECK_MSG(total * 3 < sum, "planned %zu of %zu bytes", total, sum);
}


/* ---- the blocked layout (src/core/layout.c) ---- */

/* The nodes of graph g in the blocked layout, and those of op `op`. */
static int blocked_count(const ib_graph *g, const char *op, int *of_op)
{
    int n = 0;
    *of_op = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const ib_node *x = g->nodes[i];
        n += x->layout != 0;
        *of_op += x->layout != 0 && x->kind == IB__OP && strcmp(x->op->name, op) == 0;
    }
    return n;
}

/* Where ResNet-20 keeps the blocked layout: every batch norm, ReLU and
 * residual add (10 batch norms, 9 fused with their ReLU, the stem's ReLU,
 * 9 add_relu), the two subsampled shortcuts with their
 * channel padding, and the convolutions' outputs; never the input, the
 * pooled features or the logits.  An all-kept graph (every value readable) stays plain,
 * and so does every graph with IBNET_LAYOUT=plain. */
static void test_blocked_layout_plan_of_resnet(void)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load("resnet20", &m));
    ib_params *p = ib_params_new(1);
    for (int b = 8; b <= 16; b += 8) {
        layout_block = b;
        net a, k;
        build(&a, p, m, 2, true, RECOMPUTE, false);
        build(&k, p, m, 2, true, KEEP_ALL, false);
        int bn, bnrelu, relu, add, conv, pad, any;
        any = blocked_count(a.g, "batchnorm", &bn);
        blocked_count(a.g, "batchnorm_relu", &bnrelu);
        blocked_count(a.g, "relu", &relu);
        blocked_count(a.g, "add_relu", &add);
        blocked_count(a.g, "conv2d", &conv);
        blocked_count(a.g, "pad_channels", &pad);
        CHECK_MSG(bn == 10 && bnrelu == 9 && relu == 1 && add == 9 && conv == 19 && pad == 2,
                  "B=%d: blocked bn %d bn+relu %d relu %d add+relu %d conv %d pad %d", b, bn, bnrelu, relu, add, conv,
                  pad);
        CHECK(a.x->layout == 0 && a.mo.logits->layout == 0);
        int of;
        CHECK_EQ_INT(blocked_count(k.g, "conv2d", &of), 0);
        CHECK_EQ_INT(any, 10 + 9 + 1 + 9 + 19 + 2 + 2); /* and the two 1x1 subsamples */
        ib_graph_free(a.g);
        ib_graph_free(k.g);
    }
    /* With VIB cells after each stage: each cell's sample z is blocked
     * (its mu and sigma, read by the KL, are not), so the next stage is
     * blocked as a whole again (and global pooling reads the last). */
    ib_model *mc = NULL;
    CHECK_OK(ib_model_load("resnet20-vibcells", &mc));
    for (int b = 8; b <= 16; b += 8) {
        layout_block = b;
        net a;
        build(&a, p, mc, 2, true, RECOMPUTE, false);
        int sample, addrelu, conv;
        blocked_count(a.g, "gaussian_sample", &sample);
        blocked_count(a.g, "add_relu", &addrelu);
        blocked_count(a.g, "conv2d", &conv);
        CHECK_MSG(sample == 3 && addrelu == 9 && conv == 19, "B=%d: blocked samples %d add_relu %d conv %d", b,
                  sample, addrelu, conv);
        ib_graph_free(a.g);
    }
    ib_model_free(mc);
    layout_block = -1;
    setenv("IBNET_LAYOUT", "plain", 1);
    net a;
    build(&a, p, m, 2, true, RECOMPUTE, false);
    int of;
    CHECK_EQ_INT(blocked_count(a.g, "conv2d", &of), 0);
    unsetenv("IBNET_LAYOUT");
    ib_graph_free(a.g);
    ib_params_free(p);
    ib_model_free(m);
}

/* Both blocks on any CPU (oneDNN reorders where its kernels want the other
 * one): training of the networks with batch norm, residual adds, VIB
 * cells, and of LeNet (conv biases; its max-pooling keeps it plain), and
 * evaluation, the same bits as the plain graph. */
static void test_blocked_layout_same_bits(void)
{
    if (!ib__conv_dnnl_available())
        return;
    for (int b = 8; b <= 16; b += 8) {
        layout_block = b;
        train_equal_mode("resnet20", 2, RECOMPUTE);
        train_equal_mode("resnet20-vibcells", 2, RECOMPUTE);
        train_equal_mode("lenet-vibcells", 3, REUSE);
        forward_only_equal("resnet20", 2);
    }
    layout_block = -1;
}

/* Without oneDNN's passes (IBNET_CONV=im2col, or a pass it refuses) a
 * convolution on blocked tensors runs the im2col path on plain copies:
 * the same bits as the plain graph on that path. */
static void test_blocked_layout_im2col_fallback(void)
{
    int path = ib__conv_path();
    ib__conv_set_path(IB_CONV_IM2COL);
    layout_block = 16;
    train_equal_mode("resnet20", 2, RECOMPUTE);
    train_equal_mode("lenet-vibcells", 3, REUSE);
    layout_block = -1;
    ib__conv_set_path(path);
}

int main(void)
{
    IB_RUN(test_planner_never_overlaps_live_buffers);
    IB_RUN(test_deep_chain_planned_bytes);
    IB_RUN(test_kept_nodes_stay_readable);
    IB_RUN(test_forward_only_rejects_backward);
    IB_RUN(test_backward_from_an_inner_loss);
    IB_RUN(test_mlp_training_same_bits);
    IB_RUN(test_vib_training_same_bits);
    IB_RUN(test_resnet_training_same_bits);
    IB_RUN(test_forward_only_vib_same_bits);
    IB_RUN(test_forward_only_resnet_same_bits);
    IB_RUN(test_reuse_mlp_same_bits);
    IB_RUN(test_reuse_lenet_vibcells_same_bits);
    IB_RUN(test_reuse_resnet_same_bits);
    IB_RUN(test_reuse_resnet_vibcells_same_bits);
    IB_RUN(test_reuse_shrinks_cnn_memory);
    IB_RUN(test_recompute_lenet_vibcells_same_bits);
    IB_RUN(test_recompute_resnet_same_bits);
    IB_RUN(test_recompute_resnet_vibcells_same_bits);
    IB_RUN(test_recompute_plan_of_resnet);
    IB_RUN(test_conv_bn_relu_chain_planned_bytes);
    IB_RUN(test_blocked_layout_plan_of_resnet);
    IB_RUN(test_blocked_layout_same_bits);
    IB_RUN(test_blocked_layout_im2col_fallback);
    return ib_test_summary();
}
