/*
 * test_graph_features.c — what the later objectives need from the graph
 * machinery: several graphs over one parameter store (a training graph and
 * an evaluation graph of another batch size see the same weights, without
 * a copy), gradients with respect to the input only (attacks), freezing a
 * named subset of parameters, and per-graph train/eval and sampling modes.
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
    IB_RUN(test_modes_are_per_graph);
    IB_RUN(test_forward_from_first_random);
    return ib_test_summary();
}
