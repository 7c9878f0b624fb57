/*
 * test_models_torch.c — whole models against PyTorch: a small MLP, a small
 * CNN with batch norm and pooling, and a Deep VIB layer with the noise given
 * as input.  Forward outputs, the loss, every parameter gradient and the
 * input gradient agree with tests/fixtures/models.txt
 * (made by tests/ref/make_models_ref.py).
 *
 * Tolerance: 1e-4 relative, plus an absolute floor of 1e-6 times the
 * largest magnitude of the compared tensor: the two libraries sum in
 * different orders, so elements that cancel to near zero differ by a few
 * float32 ulps of the tensor's scale.
 */
#include "test.h"

static ib_fixture *fx;

static void compare(const char *what, const float *got, const char *name, int64_t n)
{
    int64_t m = 0;
    const float *want = ib_fixture_get(fx, name, &m);
    CHECK_MSG(m == n, "%s: fixture has %lld values, ibnet %lld", what, (long long)m, (long long)n);
    double scale = 0;
    for (int64_t k = 0; k < n; k++)
        scale = fmax(scale, fabs(want[k]));
    ib_test_compare(what, got, want, n, 1e-4, 1e-6 * scale + 1e-7);
}

/* Copy every parameter "<prefix><name>" of the fixture into the store. */
static void load_params(ib_params *p, const char *prefix)
{
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, ib_params_name(p, i));
        int64_t n = 0;
        const float *v = ib_fixture_get(fx, key, &n);
        CHECK_EQ_INT(n, ib_params_numel(p, i));
        memcpy(ib_params_value(p, i), v, (size_t)n * sizeof(float));
    }
}

static void set_labels(ib_node *labels, const char *name)
{
    int64_t n = 0;
    const float *v = ib_fixture_get(fx, name, &n);
    for (int64_t k = 0; k < n; k++)
        ib_node_labels(labels)[k] = (int32_t)v[k];
}

static void set_input(ib_node *x, const char *name)
{
    int64_t n = 0;
    const float *v = ib_fixture_get(fx, name, &n);
    CHECK_EQ_INT(n, ib_node_numel(x));
    memcpy(ib_node_data(x), v, (size_t)n * sizeof(float));
}

static void compare_param_grads(ib_params *p, const char *prefix)
{
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%sgrad.%s", prefix, ib_params_name(p, i));
        compare(key, ib_params_grad(p, i), key, ib_params_numel(p, i));
    }
}

static void test_mlp(void)
{
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){8, 20}), true);
    ib_node *y = ib_input_labels(g, "y", 8);
    ib_node *h = ib_relu(g, ib_nn_linear(g, x, "fc1", 32, true));
    h = ib_tanh(g, ib_nn_linear(g, h, "fc2", 16, true));
    ib_node *logits = ib_nn_linear(g, h, "fc3", 5, true);
    ib_node *loss = ib_cross_entropy(g, logits, y, 0.0f);
    CHECK_OK(ib_graph_compile(g));
    load_params(p, "mlp.");
    set_input(x, "mlp.x");
    set_labels(y, "mlp.y");
    CHECK_OK(ib_graph_forward(g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    compare("mlp logits", ib_node_data(logits), "mlp.logits", 40);
    compare("mlp loss", ib_node_data(loss), "mlp.loss", 1);
    compare("mlp dx", ib_node_grad(x), "mlp.dx", 160);
    compare_param_grads(p, "mlp.");
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_cnn_batchnorm_pooling(void)
{
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){4, 3, 12, 12}), true);
    ib_node *y = ib_input_labels(g, "y", 4);
    ib_node *h = ib_nn_conv2d(g, x, "conv1", 8, 3, 1, 1, true);
    h = ib_maxpool2d(g, ib_relu(g, ib_nn_batchnorm(g, h, "bn1")), 2, 2, 0);
    h = ib_nn_conv2d(g, h, "conv2", 16, 3, 1, 1, true);
    h = ib_avgpool2d(g, ib_relu(g, ib_nn_batchnorm(g, h, "bn2")), 2, 2, 0);
    ib_node *logits = ib_nn_linear(g, ib_flatten(g, h), "fc", 10, true);
    ib_node *loss = ib_cross_entropy(g, logits, y, 0.0f);
    CHECK_OK(ib_graph_compile(g));
    load_params(p, "cnn.");
    set_input(x, "cnn.x");
    set_labels(y, "cnn.y");
    CHECK_OK(ib_graph_forward(g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    compare("cnn logits", ib_node_data(logits), "cnn.logits", 40);
    compare("cnn loss", ib_node_data(loss), "cnn.loss", 1);
    compare("cnn dx", ib_node_grad(x), "cnn.dx", 4 * 3 * 12 * 12);
    compare_param_grads(p, "cnn.");
    const char *stats[] = {"bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"};
    for (int k = 0; k < 4; k++) {
        char key[128];
        snprintf(key, sizeof key, "cnn.after.%s", stats[k]);
        int i = ib_params_find(p, stats[k]);
        CHECK(i >= 0);
        compare(key, ib_params_value(p, i), key, ib_params_numel(p, i));
    }
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_vib_layer(void)
{
    const int64_t K = 6;
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){8, 20}), true);
    ib_node *eps = ib_input(g, "eps", 2, (int64_t[]){8, K});
    ib_node *y = ib_input_labels(g, "y", 8);
    ib_node *h = ib_nn_linear(g, ib_relu(g, ib_nn_linear(g, x, "enc1", 32, true)), "enc2", 2 * K, true);
    ib_bottleneck b = ib_nn_vib(g, h, K, -5.0f, eps);
    ib_node *logits = ib_nn_linear(g, b.z, "dec", 5, true);
    ib_node *loss = ib_add(g, ib_cross_entropy(g, logits, y, 0.0f), ib_scale(g, ib_mean(g, b.kl, IB_ALL), 1e-2f));
    CHECK_OK(ib_graph_compile(g));
    load_params(p, "vib.");
    set_input(x, "vib.x");
    set_input(eps, "vib.eps");
    set_labels(y, "vib.y");
    CHECK_OK(ib_graph_forward(g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    compare("vib z", ib_node_data(b.z), "vib.z", 8 * K);
    compare("vib kl", ib_node_data(b.kl), "vib.kl", 8);
    compare("vib logits", ib_node_data(logits), "vib.logits", 40);
    compare("vib loss", ib_node_data(loss), "vib.loss", 1);
    compare("vib dx", ib_node_grad(x), "vib.dx", 160);
    compare_param_grads(p, "vib.");
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    fx = ib_fixture_load("models.txt");
    IB_RUN(test_mlp);
    IB_RUN(test_cnn_batchnorm_pooling);
    IB_RUN(test_vib_layer);
    ib_fixture_free(fx);
    return ib_test_summary();
}
