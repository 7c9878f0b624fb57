/*
 * test_core.c — graph building, compile, errors, parameter store, RNG,
 * and gradient checks of the first ops (linear algebra, activations).
 */
#include "test.h"

static void test_rng_is_keyed_not_threaded(void)
{
    float a[1001], b[1001], c[1001];
    ib_rng_normal(7, 3, 5, a, 1001);
    ib_rng_normal(7, 3, 5, b, 1001);
    ib_rng_normal(7, 3, 6, c, 1001);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* a prefix of a draw equals a shorter draw */
    float d[10];
    ib_rng_normal(7, 3, 5, d, 10);
    CHECK(memcmp(a, d, sizeof d) == 0);
    double m = 0, v = 0;
    for (int i = 0; i < 1001; i++)
        m += a[i];
    m /= 1001;
    for (int i = 0; i < 1001; i++)
        v += (a[i] - m) * (a[i] - m);
    v /= 1000;
    CHECK_NEAR(m, 0.0, 0.12);
    CHECK_NEAR(v, 1.0, 0.15);
    float u[4000];
    ib_rng_uniform(1, 2, 3, u, 4000);
    for (int i = 0; i < 4000; i++)
        CHECK(u[i] >= 0.0f && u[i] < 1.0f);
}

static void test_params_store(void)
{
    ib_params *p = ib_params_new(42);
    int w = ib_params_get(p, "fc1.weight", 2, (int64_t[]){3, 5}, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE);
    int b = ib_params_get(p, "fc1.bias", 1, (int64_t[]){3}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE);
    CHECK_EQ_INT(w, 0);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(ib_params_get(p, "fc1.weight", 2, (int64_t[]){3, 5}, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE), 0);
    CHECK(ib_params_get(p, "fc1.weight", 2, (int64_t[]){5, 3}, IB_INIT_PYTORCH_DEFAULT, IB_PARAM_TRAINABLE) == IB_ERR_SHAPE);
    CHECK_EQ_INT(ib_params_offset(p, 1) % 16, 0);
    float bound = 1.0f / sqrtf(5.0f);
    const float *v = ib_params_value(p, w);
    for (int k = 0; k < 15; k++)
        CHECK(v[k] >= -bound && v[k] <= bound);
    CHECK_EQ_INT(ib_params_freeze(p, "fc1.", true), 2);
    CHECK(ib_params_frozen(p, 0));
    ib_params_free(p);
}

static void test_shape_errors_are_recorded(void)
{
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){4, 3});
    ib_node *w = ib_param(g, "w", 2, (int64_t[]){2, 5}, IB_INIT_PYTORCH_DEFAULT);
    ib_node *y = ib_linear(g, x, w, NULL);
    CHECK(y == NULL);
    CHECK(ib_graph_status(g) == IB_ERR_SHAPE);
    CHECK(strstr(ib_graph_error(g), "linear") != NULL);
    /* later constructors propagate NULL without overwriting the first error */
    CHECK(ib_relu(g, y) == NULL);
    CHECK(strstr(ib_graph_error(g), "linear") != NULL);
    CHECK(ib_graph_compile(g) == IB_ERR_SHAPE);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_linear_matmul(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){4, 3}), true);
    ib_node *w = ib_param(g, "w", 2, (int64_t[]){5, 3}, IB_INIT_PYTORCH_DEFAULT);
    ib_node *b = ib_param(g, "b", 1, (int64_t[]){5}, (ib_init){IB_INIT_UNIFORM, -1, 1});
    ib_node *y = ib_linear(g, x, w, b);
    ib_node *m = ib_input(g, "m", 2, (int64_t[]){5, 2});
    ib_node *m2 = ib_input(g, "m2", 2, (int64_t[]){2, 5});
    ib_node *z = ib_matmul(g, y, m, false, false);  /* (4,2) */
    ib_node *z2 = ib_matmul(g, m2, y, false, true); /* (2,4) */
    ib_node *z3 = ib_matmul(g, y, m2, false, true); /* (4,2) */
    ib_node *z4 = ib_matmul(g, m, y, true, true);   /* (2,4) */
    ib_node *loss = ib_add(g, ib_add(g, ib_test_weighted_sum(g, z), ib_test_weighted_sum(g, z2)),
                           ib_add(g, ib_test_weighted_sum(g, z3), ib_test_weighted_sum(g, z4)));
    ib_node_set_requires_grad(m, true);
    ib_node_set_requires_grad(m2, true);
    ib_test_compile_fill(g);
    ib_test_gradcheck(g, loss, 5, (ib_node *[]){x, w, b, m, m2}, 1e-2f, 2e-3);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_activations(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){3, 7}), true);
    ib_node *pos = ib_node_set_requires_grad(ib_input(g, "pos", 2, (int64_t[]){3, 7}), true);
    ib_node *outs[] = {
        ib_relu(g, x), ib_leaky_relu(g, x, 0.1f), ib_softplus(g, x, -0.5f), ib_sigmoid(g, x), ib_tanh(g, x),
        ib_exp(g, x), ib_log(g, pos), ib_square(g, x), ib_sqrt(g, pos), ib_affine(g, x, -1.5f, 0.25f),
    };
    int n = (int)(sizeof outs / sizeof outs[0]);
    ib_node *loss = ib_test_weighted_sum(g, outs[0]);
    for (int k = 1; k < n; k++)
        loss = ib_add(g, loss, ib_test_weighted_sum(g, outs[k]));
    ib_test_compile_fill(g);
    float *xv = ib_node_data(x), *pv = ib_node_data(pos);
    for (int k = 0; k < 21; k++) {
        if (fabsf(xv[k]) < 0.05f) /* keep away from relu's kink */
            xv[k] = 0.3f;
        pv[k] = 0.5f + fabsf(pv[k]);
    }
    ib_test_gradcheck(g, loss, 2, (ib_node *[]){x, pos}, 1e-2f, 2e-3);
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    IB_RUN(test_rng_is_keyed_not_threaded);
    IB_RUN(test_params_store);
    IB_RUN(test_shape_errors_are_recorded);
    IB_RUN(test_grad_linear_matmul);
    IB_RUN(test_grad_activations);
    return ib_test_summary();
}
