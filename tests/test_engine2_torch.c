/*
 * test_engine2_torch.c — the ops the later IB methods rely on, against
 * PyTorch (tests/fixtures/engine2_ops.txt, from tests/ref/make_engine2_ref.py):
 * logsumexp / log-mean-exp along an axis (with a slice of values near 60,
 * where a naive exp loses everything), PixelCNN masked convolutions A and
 * B, the gated activation, and row-wise L2 normalisation.  Values and
 * gradients agree to 1e-5 relative plus 1e-6 of the tensor's scale
 * (float32 sums in another order).
 */
#include "test.h"

static ib_fixture *fx;

static void set(ib_node *n, const char *name)
{
    int64_t k = 0;
    const float *v = ib_fixture_get(fx, name, &k);
    CHECK_EQ_INT(k, ib_node_numel(n));
    memcpy(ib_node_data(n), v, (size_t)k * sizeof(float));
}

static void same(const char *name, const float *got, int64_t n)
{
    int64_t k = 0;
    const float *want = ib_fixture_get(fx, name, &k);
    CHECK_EQ_INT(k, n);
    double scale = 0;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    ib_test_compare(name, got, want, n, 1e-5, 1e-6 * scale + 1e-7);
}

static ib_node *input(ib_graph *g, const char *name, int nd, const int64_t *shape)
{
    return ib_node_set_requires_grad(ib_input(g, name, nd, shape), true);
}

/* loss = sum(y * R) with R from the fixture; run forward and backward */
static ib_node *run(ib_graph *g, ib_node *y, const char *prefix)
{
    char name[64];
    int64_t shape[4];
    for (int d = 0; d < ib_node_ndim(y); d++)
        shape[d] = ib_node_dim(y, d);
    ib_node *r = ib_input(g, "R", ib_node_ndim(y), shape);
    ib_node *loss = ib_sum(g, ib_mul(g, y, r), IB_ALL);
    CHECK_OK(ib_graph_compile(g));
    snprintf(name, sizeof name, "%s.R", prefix);
    set(r, name);
    return loss;
}

static void test_logsumexp_and_logmeanexp(void)
{
    const char *names[2] = {"lse", "lme"};
    for (int k = 0; k < 2; k++) {
        ib_params *p = ib_params_new(0);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = input(g, "x", 3, (int64_t[]){3, 5, 4});
        ib_node *y = k == 0 ? ib_logsumexp(g, x, 1) : ib_logmeanexp(g, x, 1);
        ib_node *loss = run(g, y, names[k]);
        char name[32];
        snprintf(name, sizeof name, "%s.x", names[k]);
        set(x, name);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        snprintf(name, sizeof name, "%s.y", names[k]);
        same(name, ib_node_data(y), 12);
        snprintf(name, sizeof name, "%s.dx", names[k]);
        same(name, ib_node_grad(x), 60);
        ib_graph_free(g);
        ib_params_free(p);
    }
}

static void test_masked_conv(void)
{
    const char kinds[2] = {'A', 'B'};
    for (int k = 0; k < 2; k++) {
        char pre[16], name[32];
        snprintf(pre, sizeof pre, "mconv%c", kinds[k]);
        ib_params *p = ib_params_new(0);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = input(g, "x", 4, (int64_t[]){2, 3, 6, 7});
        ib_node *w = ib_param(g, "w", 4, (int64_t[]){4, 3, 5, 5}, (ib_init){IB_INIT_ZEROS, 0, 0});
        ib_node *b = ib_param(g, "b", 1, (int64_t[]){4}, (ib_init){IB_INIT_ZEROS, 0, 0});
        ib_node *y = ib_conv2d_masked(g, x, w, b, 2, kinds[k]);
        ib_node *loss = run(g, y, pre);
        snprintf(name, sizeof name, "%s.x", pre);
        set(x, name);
        snprintf(name, sizeof name, "%s.w", pre);
        set(w, name);
        snprintf(name, sizeof name, "%s.b", pre);
        set(b, name);
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        snprintf(name, sizeof name, "%s.y", pre);
        same(name, ib_node_data(y), 2 * 4 * 6 * 7);
        snprintf(name, sizeof name, "%s.dx", pre);
        same(name, ib_node_grad(x), 2 * 3 * 6 * 7);
        snprintf(name, sizeof name, "%s.dw", pre);
        same(name, ib_node_grad(w), 4 * 3 * 25);
        snprintf(name, sizeof name, "%s.db", pre);
        same(name, ib_node_grad(b), 4);
        ib_graph_free(g);
        ib_params_free(p);
    }
}

static void test_gated_activation(void)
{
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    int64_t shape[4] = {2, 3, 4, 4};
    ib_node *a = input(g, "a", 4, shape), *b = input(g, "b", 4, shape);
    ib_node *y = ib_gated_tanh(g, a, b);
    ib_node *loss = run(g, y, "gated");
    set(a, "gated.a");
    set(b, "gated.b");
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    same("gated.y", ib_node_data(y), 96);
    same("gated.da", ib_node_grad(a), 96);
    same("gated.db", ib_node_grad(b), 96);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_l2_normalize(void)
{
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = input(g, "x", 2, (int64_t[]){5, 7});
    ib_node *y = ib_l2_normalize(g, x, 1e-12f);
    ib_node *loss = run(g, y, "l2n");
    set(x, "l2n.x");
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    same("l2n.y", ib_node_data(y), 35);
    same("l2n.dx", ib_node_grad(x), 35);
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    fx = ib_fixture_load("engine2_ops.txt");
    IB_RUN(test_logsumexp_and_logmeanexp);
    IB_RUN(test_masked_conv);
    IB_RUN(test_gated_activation);
    IB_RUN(test_l2_normalize);
    ib_fixture_free(fx);
    return ib_test_summary();
}
