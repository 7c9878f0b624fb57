/*
 * test_grad_assign.c — a gradient with one writer is assigned, not zeroed
 * and added into (graph.c, ib__grad_assign): the same bits as zeroing, on
 * the ops that assign (linear, conv2d, batch norm, relu, add/sub/mul/div,
 * average pooling), whatever the buffer held before; a gradient whose one
 * writer is off the loss's path is still zero; of two writers the first in
 * backward (the consumer with the highest id) assigns and the other adds.
 */
#include "core/internal.h"
#include "test.h"

/* x -> conv -> batch norm -> relu -> conv (+ an average-pooled and a
 * subsampled shortcut of the first feature map) -> mul -> relu -> linear -> cross-entropy, plus a
 * sub and a div on the way.  Returns the loss; *out_x the input. */
static ib_node *build(ib_graph *g, ib_node **out_x)
{
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){4, 2, 6, 6});
    ib_node_set_requires_grad(x, true);
    ib_node *y = ib_input_labels(g, "y", 4);
    ib_node *h = ib_nn_conv2d(g, x, "c1", 4, 3, 1, 1, true);
    h = ib_relu(g, ib_nn_batchnorm(g, h, "bn1"));
    ib_node *skip = ib_avgpool2d(g, h, 2, 2, 0);            /* h has two consumers: added into */
    ib_node *c = ib_nn_conv2d(g, h, "c2", 4, 3, 2, 1, false); /* (4,4,3,3) */
    ib_node *s = ib_add(g, ib_add(g, c, skip), ib_avgpool2d(g, h, 1, 2, 0)); /* and a strided subsample */
    ib_node *t = ib_sub(g, ib_mul(g, s, ib_tanh(g, c)), ib_div(g, skip, ib_affine(g, ib_exp(g, s), 1.0f, 1.0f)));
    ib_node *f = ib_flatten(g, ib_relu(g, t));
    ib_node *logits = ib_nn_linear(g, ib_relu(g, ib_nn_linear(g, f, "fc1", 8, true)), "fc2", 3, true);
    *out_x = x;
    return ib_cross_entropy(g, logits, y, 0.0f);
}

typedef struct {
    ib_params *p;
    ib_graph *g;
    ib_node *x, *loss;
} net;

static net make(bool assign)
{
    net n;
    n.p = ib_params_new(7);
    n.g = ib_graph_new(n.p);
    n.g->no_grad_assign = !assign;
    n.loss = build(n.g, &n.x);
    ib_test_compile_fill(n.g);
    ib_node *y = ib_graph_find(n.g, "y");
    for (int i = 0; i < 4; i++)
        ib_node_labels(y)[i] = i % 3;
    ib_graph_set_training(n.g, true);
    return n;
}

static void drop(net *n)
{
    ib_graph_free(n->g);
    ib_params_free(n->p);
}

static void test_same_bits_as_zeroing(void)
{
    net a = make(true), b = make(false);
    CHECK_EQ_INT(ib_params_total(a.p), ib_params_total(b.p));
    memcpy(ib_params_values(b.p), ib_params_values(a.p), (size_t)ib_params_total(a.p) * sizeof(float));
    memcpy(ib_node_data(b.x), ib_node_data(a.x), (size_t)ib_node_numel(a.x) * sizeof(float));
    /* the assigning graph's buffers hold garbage from a first pass: a second pass must not see it */
    for (int pass = 0; pass < 2; pass++) {
        net *both[2] = {&a, &b};
        for (int k = 0; k < 2; k++) {
            CHECK_OK(ib_graph_forward(both[k]->g));
            ib_params_zero_grad(both[k]->p);
            CHECK_OK(ib_graph_backward(both[k]->g, both[k]->loss));
        }
        CHECK(memcmp(ib_params_grads(a.p), ib_params_grads(b.p), (size_t)ib_params_total(a.p) * sizeof(float)) == 0);
        CHECK(memcmp(ib_node_grad(a.x), ib_node_grad(b.x), (size_t)ib_node_numel(a.x) * sizeof(float)) == 0);
        float mx = 0;
        for (int64_t e = 0; e < ib_node_numel(a.x); e++)
            mx = fmaxf(mx, fabsf(ib_node_grad(a.x)[e]));
        CHECK_MSG(mx > 0, "the input gradient is zero: the test checks nothing");
        ib_node_data(a.x)[3] += 0.25f; /* a different second pass */
        ib_node_data(b.x)[3] += 0.25f;
    }
    /* and the mechanism was used: single-consumer activations have their
     * writer, and so do two-consumer ones (their later consumer) */
    int assigned = 0;
    const ib_node *first_relu = NULL;
    for (int i = 0; i < a.g->n_nodes; i++) {
        const ib_node *n = a.g->nodes[i];
        if (n->grad_writer >= 0)
            assigned++;
        if (!first_relu && n->kind == IB__OP && strcmp(n->op->name, "relu") == 0)
            first_relu = n;
    }
    CHECK_MSG(assigned >= 8, "only %d gradients assigned", assigned);
    /* the batch norms' gradients are their relus' buffers (grad_in_place),
     * and the comparison above covers them */
    int shared = 0;
    for (int i = 0; i < a.g->n_nodes; i++) {
        const ib_node *n = a.g->nodes[i];
        if (n->grad_shares < 0)
            continue;
        shared++;
        CHECK(n->grad == a.g->nodes[n->grad_shares]->grad);
        CHECK(strcmp(a.g->nodes[n->grad_shares]->op->name, "relu") == 0);
    }
    CHECK_MSG(shared >= 1, "no gradient shares its writer's buffer");
    for (int i = 0; i < b.g->n_nodes; i++)
        CHECK(b.g->nodes[i]->grad_shares < 0);
    /* the first relu feeds the pooling, the second conv and the subsample
     * (the last, which assigns; the other two add into it) */
    CHECK(first_relu && first_relu->in[0]->grad_writer == first_relu->id);
    if (first_relu) {
        const ib_node *w = first_relu->grad_writer >= 0 ? a.g->nodes[first_relu->grad_writer] : NULL;
        CHECK_MSG(w && strcmp(w->op->name, "avgpool2d") == 0 && w->i[0] == 1, "the first relu's writer is %s",
                  w ? w->op->name : "none");
    }
    for (int i = 0; i < b.g->n_nodes; i++)
        CHECK(b.g->nodes[i]->grad_writer < 0 || !b.g->nodes[i]->grad);
    drop(&a);
    drop(&b);
}

/* An input whose only consumer is off the path of this loss: its gradient
 * is defined, i.e. zero, even after a pass that wrote it. */
static void test_writer_off_path_leaves_zero(void)
{
    ib_params *p = ib_params_new(2);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){3, 5});
    ib_node *z = ib_input(g, "z", 2, (int64_t[]){3, 5});
    ib_node_set_requires_grad(x, true);
    ib_node_set_requires_grad(z, true);
    ib_node *l1 = ib_sum(g, ib_relu(g, x), IB_ALL);
    ib_node *l2 = ib_sum(g, ib_relu(g, z), IB_ALL);
    ib_node_keep(l1);
    ib_node_keep(l2);
    ib_test_compile_fill(g);
    for (int e = 0; e < 15; e++)
        ib_node_data(x)[e] = 1.0f + (float)e;
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, l1));
    CHECK(ib_node_grad(x)[0] == 1.0f);
    CHECK_OK(ib_graph_backward(g, l2));
    for (int e = 0; e < 15; e++)
        CHECK_MSG(ib_node_grad(x)[e] == 0.0f, "x's gradient kept %g from the last pass", ib_node_grad(x)[e]);
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    ib_set_threads(2);
    IB_RUN(test_same_bits_as_zeroing);
    IB_RUN(test_writer_off_path_leaves_zero);
    return ib_test_summary();
}
