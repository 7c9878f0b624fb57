/*
 * test_graph_features.c — what the later objectives need from the graph
 * machinery: several graphs over one parameter store (a training graph and
 * an evaluation graph of another batch size see the same weights, without
 * a copy), gradients with respect to the input only (attacks), freezing a
 * named subset of parameters (a frozen batch norm keeps its running
 * statistics, as a PyTorch backbone in eval()), and per-graph train/eval
 * and sampling modes.
 */
#include "test.h"

/* A small MLP or CNN on x; returns the logits. */
static ib_node *mlp(ib_graph *g, ib_node *x)
{
    ib_node *h = ib_tanh(g, ib_nn_linear(g, ib_flatten(g, x), "fc1", 12, true));
    return ib_nn_linear(g, h, "fc2", 3, true);
}

static ib_node *cnn(ib_graph *g, ib_node *x)
{
    ib_node *h = ib_nn_conv2d(g, x, "conv1", 4, 3, 1, 1, true);
    h = ib_avgpool2d(g, ib_tanh(g, h), 2, 2, 0);
    return ib_nn_linear(g, ib_flatten(g, h), "fc", 3, true);
}

static void test_two_graphs_share_weights(void)
{
    ib_params *p = ib_params_new(5);
    ib_graph *tr = ib_graph_new(p), *ev = ib_graph_new(p);
    ib_node *xt = ib_input(tr, "x", 4, (int64_t[]){8, 1, 4, 4});
    ib_node *yt = ib_input_labels(tr, "y", 8);
    ib_node *loss = ib_cross_entropy(tr, mlp(tr, xt), yt, 0.0f);
    ib_node *xe = ib_input(ev, "x", 4, (int64_t[]){3, 1, 4, 4});
    ib_node *out = mlp(ev, xe);
    int count = ib_params_count(p);
    CHECK_EQ_INT(count, 4); /* the second build created nothing */
    ib_test_compile_fill(tr);
    ib_test_compile_fill(ev);
    /* the weight nodes of both graphs are the store's memory */
    CHECK(ib_node_data(ib_graph_find(tr, "fc1.weight")) == ib_params_value(p, ib_params_find(p, "fc1.weight")));
    CHECK(ib_node_data(ib_graph_find(ev, "fc1.weight")) == ib_node_data(ib_graph_find(tr, "fc1.weight")));
    for (int i = 0; i < 8; i++)
        ib_node_labels(yt)[i] = i % 3;
    CHECK_OK(ib_graph_forward(ev));
    float before[9];
    memcpy(before, ib_node_data(out), sizeof before);
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_SGD);
    oc.lr = 0.5f;
    ib_optim *o = ib_optim_new(p, &oc);
    CHECK_OK(ib_graph_forward(tr));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(tr, loss));
    CHECK_OK(ib_optim_step(o));
    CHECK_OK(ib_graph_forward(ev));
    CHECK_MSG(memcmp(before, ib_node_data(out), sizeof before) != 0, "the evaluation graph did not see the update");
    /* and it computes with exactly the updated weights: a fresh graph agrees bit for bit */
    ib_graph *fresh = ib_graph_new(p);
    ib_node *xf = ib_input(fresh, "x", 4, (int64_t[]){3, 1, 4, 4});
    ib_node *of = mlp(fresh, xf);
    CHECK_OK(ib_graph_compile(fresh));
    memcpy(ib_node_data(xf), ib_node_data(xe), 3 * 16 * sizeof(float));
    CHECK_OK(ib_graph_forward(fresh));
    CHECK(memcmp(ib_node_data(of), ib_node_data(out), 9 * sizeof(float)) == 0);
    ib_optim_free(o);
    ib_graph_free(fresh);
    ib_graph_free(tr);
    ib_graph_free(ev);
    ib_params_free(p);
}

/* d(loss)/dx with parameter gradients off: matches finite differences and
 * leaves every parameter gradient at zero. */
static void input_gradient_only(ib_node *(*net)(ib_graph *, ib_node *))
{
    ib_params *p = ib_params_new(9);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 1, 4, 4}), true);
    ib_node *y = ib_input_labels(g, "y", 2);
    ib_node *loss = ib_cross_entropy(g, net(g, x), y, 0.0f);
    ib_test_compile_fill(g);
    ib_node_labels(y)[0] = 1;
    ib_node_labels(y)[1] = 2;
    ib_graph_set_param_grads(g, false);
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    const float *gr = ib_params_grads(p);
    for (int64_t k = 0; k < ib_params_total(p); k++)
        CHECK_MSG(gr[k] == 0.0f, "parameter gradient %lld is %g with parameter gradients off", (long long)k, gr[k]);
    double nonzero = 0;
    for (int k = 0; k < 32; k++)
        nonzero += fabs(ib_node_grad(x)[k]);
    CHECK(nonzero > 0);
    /* tanh networks are smooth: float32 central differences with eps 1e-2 agree to ~1e-3 */
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, 2e-3);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_input_gradient_mlp(void) { input_gradient_only(mlp); }
static void test_input_gradient_cnn(void) { input_gradient_only(cnn); }

static void test_freeze_a_named_subset(void)
{
    ib_params *p = ib_params_new(2);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){4, 1, 4, 4});
    ib_node *y = ib_input_labels(g, "y", 4);
    ib_node *loss = ib_cross_entropy(g, mlp(g, x), y, 0.0f);
    ib_test_compile_fill(g);
    CHECK_EQ_INT(ib_params_freeze(p, "fc1.", true), 2);
    int w1 = ib_params_find(p, "fc1.weight"), w2 = ib_params_find(p, "fc2.weight");
    float keep[12 * 16];
    memcpy(keep, ib_params_value(p, w1), sizeof keep);
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    ib_optim *o = ib_optim_new(p, &oc);
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    double g1 = 0, g2 = 0;
    for (int k = 0; k < 12 * 16; k++)
        g1 += fabs(ib_params_grad(p, w1)[k]);
    for (int k = 0; k < 3 * 12; k++)
        g2 += fabs(ib_params_grad(p, w2)[k]);
    CHECK(g1 == 0.0 && g2 > 0.0);
    CHECK_OK(ib_optim_step(o));
    CHECK(memcmp(keep, ib_params_value(p, w1), sizeof keep) == 0);
    ib_optim_free(o);
    ib_graph_free(g);
    ib_params_free(p);
}

/* A frozen backbone with batch norm under a trainable head: conv -> bn ->
 * relu -> global pool -> linear.  Returns the loss; *bn_out the bn node. */
static ib_node *bn_net(ib_graph *g, ib_node **x, ib_node **bn_out)
{
    *x = ib_input(g, "x", 4, (int64_t[]){8, 3, 4, 4});
    ib_node *y = ib_input_labels(g, "y", 8);
    ib_node *h = ib_nn_conv2d(g, *x, "backbone.conv", 4, 3, 1, 1, true);
    *bn_out = h = ib_nn_batchnorm(g, h, "backbone.bn");
    h = ib_global_avgpool(g, ib_relu(g, h));
    return ib_cross_entropy(g, ib_nn_linear(g, h, "head", 3, true), y, 0.0f);
}

/* Three Adam steps on fresh batches with the parameters under `prefix`
 * frozen (NULL: none); returns the store's values before the steps. */
static float *train_bn_net(ib_params *p, ib_graph *g, ib_node *x, ib_node *loss, const char *prefix)
{
    if (prefix)
        CHECK(ib_params_freeze(p, prefix, true) > 0);
    /* running statistics away from their (0, 1) start, so a step that
     * touches them shows */
    ib_test_fill(ib_params_value(p, ib_params_find(p, "backbone.bn.running_mean")), 4, -0.5f, 0.5f, 11);
    ib_test_fill(ib_params_value(p, ib_params_find(p, "backbone.bn.running_var")), 4, 0.5f, 1.5f, 12);
    ib_test_fill(ib_params_value(p, ib_params_find(p, "backbone.bn.weight")), 4, 0.5f, 1.5f, 13);
    float *before = malloc((size_t)ib_params_total(p) * sizeof(float));
    memcpy(before, ib_params_values(p), (size_t)ib_params_total(p) * sizeof(float));
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    oc.lr = 0.01f;
    ib_optim *o = ib_optim_new(p, &oc);
    for (int t = 0; t < 3; t++) {
        ib_test_fill(ib_node_data(x), ib_node_numel(x), -1.0f, 2.0f, 40 + (uint64_t)t);
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        CHECK_OK(ib_optim_step(o));
    }
    ib_optim_free(o);
    return before;
}

static bool param_same(ib_params *p, const float *before, const char *name)
{
    int i = ib_params_find(p, name);
    CHECK(i >= 0);
    return memcmp(ib_params_value(p, i), before + ib_params_offset(p, i),
                  (size_t)ib_params_numel(p, i) * sizeof(float)) == 0;
}

static void test_frozen_batchnorm_keeps_running_stats(void)
{
    static const char *backbone[] = {"backbone.conv.weight", "backbone.conv.bias", "backbone.bn.weight",
                                     "backbone.bn.bias", "backbone.bn.running_mean", "backbone.bn.running_var"};
    ib_params *p = ib_params_new(4);
    ib_graph *g = ib_graph_new(p);
    ib_node *x, *bn;
    ib_node *loss = bn_net(g, &x, &bn);
    ib_test_compile_fill(g);
    float *before = train_bn_net(p, g, x, loss, "backbone.");
    for (int k = 0; k < 6; k++)
        CHECK_MSG(param_same(p, before, backbone[k]), "frozen %s changed in training", backbone[k]);
    CHECK(!param_same(p, before, "head.weight"));
    /* in the training graph the frozen bn gives the eval-mode output, bit for bit */
    ib_test_fill(ib_node_data(x), ib_node_numel(x), -1.0f, 2.0f, 99);
    CHECK(ib_graph_training(g));
    CHECK_OK(ib_graph_forward(g));
    int64_t n = ib_node_numel(bn);
    float *train_out = malloc((size_t)n * sizeof(float));
    memcpy(train_out, ib_node_data(bn), (size_t)n * sizeof(float));
    ib_graph_set_training(g, false);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(train_out, ib_node_data(bn), (size_t)n * sizeof(float)) == 0);
    ib_graph_set_training(g, true);
    /* unfreezing gives batch statistics back: the running ones move */
    CHECK(ib_params_freeze(p, "backbone.", false) > 0);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(train_out, ib_node_data(bn), (size_t)n * sizeof(float)) != 0);
    CHECK(!param_same(p, before, "backbone.bn.running_mean"));
    free(train_out);
    free(before);
    ib_graph_free(g);
    ib_params_free(p);

    /* Not frozen, or only the conv frozen: batch statistics, running ones
     * updated (the behaviour of every run so far). */
    const char *prefixes[] = {NULL, "backbone.conv."};
    for (int k = 0; k < 2; k++) {
        p = ib_params_new(4);
        g = ib_graph_new(p);
        loss = bn_net(g, &x, &bn);
        ib_test_compile_fill(g);
        before = train_bn_net(p, g, x, loss, prefixes[k]);
        CHECK_MSG(!param_same(p, before, "backbone.bn.running_mean"), "running mean kept (freeze %s)",
                  prefixes[k] ? prefixes[k] : "nothing");
        CHECK(!param_same(p, before, "backbone.bn.running_var"));
        CHECK(!param_same(p, before, "backbone.bn.weight"));
        free(before);
        ib_graph_free(g);
        ib_params_free(p);
    }
}

/* Gradient with respect to the input through a frozen bn in a training
 * graph: the eval-mode derivative (the statistics are constants). */
static void test_frozen_batchnorm_input_gradient(void)
{
    ib_params *p = ib_params_new(6);
    ib_graph *g = ib_graph_new(p);
    ib_node *x, *bn;
    ib_node *loss = bn_net(g, &x, &bn);
    (void)loss;
    ib_node *obj = ib_test_weighted_sum(g, bn);
    ib_node_set_requires_grad(x, true);
    ib_test_compile_fill(g);
    ib_test_fill(ib_params_value(p, ib_params_find(p, "backbone.bn.running_var")), 4, 0.5f, 1.5f, 12);
    CHECK_EQ_INT(ib_params_freeze(p, "backbone.", true), 6);
    ib_test_gradcheck(g, obj, 1, (ib_node *[]){x}, 3e-3f, 5e-4);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_modes_are_per_graph(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *a = ib_graph_new(p), *b = ib_graph_new(p);
    ib_node *xa = ib_input(a, "x", 2, (int64_t[]){4, 6}), *xb = ib_input(b, "x", 2, (int64_t[]){4, 6});
    ib_bottleneck ba = ib_nn_vib(a, ib_nn_linear(a, xa, "enc", 6, true), 3, 0.0f, NULL);
    ib_bottleneck bb = ib_nn_vib(b, ib_nn_linear(b, xb, "enc", 6, true), 3, 0.0f, NULL);
    ib_node *da = ib_dropout(a, xa, 0.5f), *db = ib_dropout(b, xb, 0.5f);
    ib_test_compile_fill(a);
    ib_test_compile_fill(b);
    memcpy(ib_node_data(xb), ib_node_data(xa), 24 * sizeof(float));
    ib_graph_set_training(b, false);
    ib_graph_set_sampling(b, false);
    CHECK_OK(ib_graph_forward(a));
    CHECK_OK(ib_graph_forward(b));
    CHECK(memcmp(ib_node_data(ba.z), ib_node_data(ba.mu), 12 * sizeof(float)) != 0); /* a samples */
    CHECK(memcmp(ib_node_data(bb.z), ib_node_data(bb.mu), 12 * sizeof(float)) == 0); /* b: mean path */
    CHECK(memcmp(ib_node_data(db), ib_node_data(xb), 24 * sizeof(float)) == 0);     /* b: no dropout */
    int zeros = 0;
    for (int k = 0; k < 24; k++)
        zeros += ib_node_data(da)[k] == 0.0f;
    CHECK(zeros > 0); /* a: dropout active */
    ib_graph_free(a);
    ib_graph_free(b);
    ib_params_free(p);
}

/* Redrawing the noise from the first random op gives exactly what a full
 * forward with the same step gives. */
static void test_forward_from_first_random(void)
{
    ib_params *p = ib_params_new(4);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){5, 6});
    ib_node *h = ib_tanh(g, ib_nn_linear(g, x, "enc1", 8, true));
    ib_bottleneck b = ib_nn_vib(g, ib_nn_linear(g, h, "enc2", 8, true), 4, -1.0f, NULL);
    ib_node *logits = ib_nn_linear(g, b.z, "dec", 3, true);
    ib_test_compile_fill(g);
    CHECK(ib_graph_first_random(g) == b.z);
    ib_graph_set_training(g, false);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    float full[15];
    memcpy(full, ib_node_data(logits), sizeof full);
    ib_graph_set_step(g, 3);
    CHECK_OK(ib_graph_forward(g)); /* other noise */
    CHECK(memcmp(full, ib_node_data(logits), sizeof full) != 0);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward_from(g, ib_graph_first_random(g)));
    CHECK(memcmp(full, ib_node_data(logits), sizeof full) == 0);
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    IB_RUN(test_two_graphs_share_weights);
    IB_RUN(test_input_gradient_mlp);
    IB_RUN(test_input_gradient_cnn);
    IB_RUN(test_freeze_a_named_subset);
    IB_RUN(test_frozen_batchnorm_keeps_running_stats);
    IB_RUN(test_frozen_batchnorm_input_gradient);
    IB_RUN(test_modes_are_per_graph);
    IB_RUN(test_forward_from_first_random);
    return ib_test_summary();
}
