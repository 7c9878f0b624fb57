/*
 * test_conv_torch.c — conv2d, max/avg pooling and batch norm against
 * PyTorch 1.13 (tests/fixtures/conv_ops.txt from tests/ref/make_conv_ref.py):
 * outputs, every gradient, and the running statistics batch norm updates.
 * The inputs come from the fixture too, so both sides see the same floats.
 *
 * Tolerance: 1e-4 relative plus 1e-5 absolute.  The values are O(1) and
 * each is a sum of at most a few hundred float32 products, so rounding
 * differences between our order of summation and oneDNN's stay near 1e-6;
 * 1e-4 still catches any wrong tap, index or term.
 */
#include "test.h"

#define RTOL 1e-4
#define ATOL 1e-5

static void load(ib_fixture *f, const char *name, ib_node *n)
{
    int64_t count = 0;
    const float *v = ib_fixture_get(f, name, &count);
    CHECK_MSG(count == ib_node_numel(n), "fixture tensor %s has %lld values, node '%s' %lld", name,
              (long long)count, ib_node_name(n), (long long)ib_node_numel(n));
    memcpy(ib_node_data(n), v, (size_t)count * sizeof(float));
}

static void expect(ib_fixture *f, const char *name, const float *got, int64_t n)
{
    int64_t count = 0;
    const float *want = ib_fixture_get(f, name, &count);
    CHECK_MSG(count == n, "fixture tensor %s has %lld values, expected %lld", name, (long long)count, (long long)n);
    ib_test_compare(name, got, want, n, RTOL, ATOL);
}

static ib_node *input4(ib_graph *g, const char *name, int64_t a, int64_t b, int64_t c, int64_t d)
{
    return ib_node_set_requires_grad(ib_input(g, name, 4, (int64_t[]){a, b, c, d}), true);
}

static void run(ib_graph *g, ib_node *loss)
{
    ib_params_zero_grad(ib_graph_params(g));
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
}

static void test_conv2d_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("conv_ops.txt");
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = input4(g, "x", 2, 3, 7, 6);
    ib_node *w = ib_param(g, "w", 4, (int64_t[]){4, 3, 3, 3}, (ib_init){IB_INIT_ZEROS, 0, 0});
    ib_node *b = ib_param(g, "b", 1, (int64_t[]){4}, (ib_init){IB_INIT_ZEROS, 0, 0});
    ib_node *y = ib_conv2d(g, x, w, b, 2, 1);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    CHECK_EQ_INT(ib_node_dim(y, 2), 4);
    CHECK_EQ_INT(ib_node_dim(y, 3), 3);
    load(f, "conv.x", x);
    load(f, "conv.w", w);
    load(f, "conv.b", b);
    load(f, "conv.R", ib_graph_find(g, "R"));
    run(g, loss);
    expect(f, "conv.y", ib_node_data(y), ib_node_numel(y));
    expect(f, "conv.dx", ib_node_grad(x), ib_node_numel(x));
    expect(f, "conv.dw", ib_node_grad(w), ib_node_numel(w));
    expect(f, "conv.db", ib_node_grad(b), ib_node_numel(b));
    ib_graph_free(g);
    ib_params_free(p);
    ib_fixture_free(f);
}

static void pool_case(const char *prefix, bool max)
{
    char name[64];
    ib_fixture *f = ib_fixture_load("conv_ops.txt");
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = input4(g, "x", 2, 3, 7, 8);
    ib_node *y = max ? ib_maxpool2d(g, x, 3, 2, 1) : ib_avgpool2d(g, x, 3, 2, 1);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    snprintf(name, sizeof name, "%s.x", prefix);
    load(f, name, x);
    snprintf(name, sizeof name, "%s.R", prefix);
    load(f, name, ib_graph_find(g, "R"));
    run(g, loss);
    snprintf(name, sizeof name, "%s.y", prefix);
    expect(f, name, ib_node_data(y), ib_node_numel(y));
    snprintf(name, sizeof name, "%s.dx", prefix);
    expect(f, name, ib_node_grad(x), ib_node_numel(x));
    ib_graph_free(g);
    ib_params_free(p);
    ib_fixture_free(f);
}

static void test_maxpool_matches_torch(void) { pool_case("maxpool", true); }
static void test_avgpool_matches_torch(void) { pool_case("avgpool", false); }

static void test_batchnorm_4d_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("conv_ops.txt");
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_init z = {IB_INIT_ZEROS, 0, 0};
    ib_node *x = input4(g, "x", 4, 3, 5, 5);
    ib_node *gamma = ib_param(g, "bn.weight", 1, (int64_t[]){3}, z);
    ib_node *beta = ib_param(g, "bn.bias", 1, (int64_t[]){3}, z);
    ib_node *rm = ib_buffer(g, "bn.running_mean", 1, (int64_t[]){3}, z);
    ib_node *rv = ib_buffer(g, "bn.running_var", 1, (int64_t[]){3}, z);
    ib_node *y = ib_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    load(f, "bn.x", x);
    load(f, "bn.gamma", gamma);
    load(f, "bn.beta", beta);
    load(f, "bn.rm0", rm);
    load(f, "bn.rv0", rv);
    load(f, "bn.R", ib_graph_find(g, "R"));
    run(g, loss);
    expect(f, "bn.y", ib_node_data(y), ib_node_numel(y));
    expect(f, "bn.dx", ib_node_grad(x), ib_node_numel(x));
    expect(f, "bn.dgamma", ib_node_grad(gamma), 3);
    expect(f, "bn.dbeta", ib_node_grad(beta), 3);
    expect(f, "bn.rm1", ib_node_data(rm), 3);
    expect(f, "bn.rv1", ib_node_data(rv), 3);
    /* eval mode: the updated running statistics, no further update */
    ib_graph_set_training(g, false);
    run(g, loss);
    expect(f, "bn_eval.y", ib_node_data(y), ib_node_numel(y));
    expect(f, "bn_eval.dx", ib_node_grad(x), ib_node_numel(x));
    expect(f, "bn_eval.dgamma", ib_node_grad(gamma), 3);
    expect(f, "bn_eval.dbeta", ib_node_grad(beta), 3);
    expect(f, "bn.rm1", ib_node_data(rm), 3);
    expect(f, "bn.rv1", ib_node_data(rv), 3);
    ib_graph_free(g);
    ib_params_free(p);
    ib_fixture_free(f);
}

static void test_batchnorm_2d_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("conv_ops.txt");
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_init z = {IB_INIT_ZEROS, 0, 0}, one = {IB_INIT_ONES, 0, 0};
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){6, 4}), true);
    ib_node *gamma = ib_param(g, "bn.weight", 1, (int64_t[]){4}, z);
    ib_node *beta = ib_param(g, "bn.bias", 1, (int64_t[]){4}, z);
    ib_node *rm = ib_buffer(g, "bn.running_mean", 1, (int64_t[]){4}, z);
    ib_node *rv = ib_buffer(g, "bn.running_var", 1, (int64_t[]){4}, one);
    ib_node *y = ib_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    load(f, "bn2.x", x);
    load(f, "bn2.gamma", gamma);
    load(f, "bn2.beta", beta);
    load(f, "bn2.R", ib_graph_find(g, "R"));
    run(g, loss);
    expect(f, "bn2.y", ib_node_data(y), ib_node_numel(y));
    expect(f, "bn2.dx", ib_node_grad(x), ib_node_numel(x));
    expect(f, "bn2.dgamma", ib_node_grad(gamma), 4);
    expect(f, "bn2.dbeta", ib_node_grad(beta), 4);
    expect(f, "bn2.rm1", ib_node_data(rm), 4);
    expect(f, "bn2.rv1", ib_node_data(rv), 4);
    ib_graph_free(g);
    ib_params_free(p);
    ib_fixture_free(f);
}

int main(void)
{
    IB_RUN(test_conv2d_matches_torch);
    IB_RUN(test_maxpool_matches_torch);
    IB_RUN(test_avgpool_matches_torch);
    IB_RUN(test_batchnorm_4d_matches_torch);
    IB_RUN(test_batchnorm_2d_matches_torch);
    return ib_test_summary();
}
