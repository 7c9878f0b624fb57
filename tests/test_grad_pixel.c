/*
 * test_grad_pixel.c — the per-pixel ops of the image decoder
 * (src/info/decoder.c): nearest-neighbour upsampling and permute, each by
 * finite differences and against PyTorch (tests/fixtures/pixel_ops.txt,
 * written by tests/ref/make_pixel_ref.py); the 256-way cross-entropy per
 * pixel of an (N, 256, H, W) tensor built from permute, reshape and
 * ib_cross_entropy against F.cross_entropy over the channel axis; and the
 * Bernoulli pixel likelihood softplus(l) - t l against -log sigmoid(+-l).
 *
 * Tolerances: FD errors of these linear ops are float32 rounding of O(1-10)
 * losses (1e-5 .. 1e-4 measured), so TOL = 5e-4; fixtures are float64
 * rounded to float32, agreement to a few ulps (rtol 1e-5, atol 1e-6 for
 * gradients of elements near 0, as test_softmax_torch.c).
 */
#include "test.h"

#define TOL 5e-4
#define RTOL 1e-5
#define ATOL 1e-6

static void test_grad_upsample(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 3, 3, 2}), true);
    ib_node *y = ib_upsample_nearest(g, x, 3);
    CHECK_EQ_INT(ib_node_dim(y, 2), 9);
    CHECK_EQ_INT(ib_node_dim(y, 3), 6);
    ib_node *loss = ib_test_weighted_sum(g, ib_square(g, y));
    ib_test_compile_fill(g);
    CHECK_OK(ib_graph_forward(g));
    const float *xv = ib_node_data(x), *yv = ib_node_data(y);
    for (int p6 = 0; p6 < 6; p6++)
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 6; j++)
                CHECK(yv[(p6 * 9 + i) * 6 + j] == xv[(p6 * 3 + i / 3) * 2 + j / 3]);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_permute(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 3, 4, 5}), true);
    ib_node *y = ib_permute(g, x, (int[]){0, 2, 3, 1});
    ib_node *z = ib_permute(g, x, (int[]){3, 1, 0, 2});
    CHECK_EQ_INT(ib_node_dim(y, 3), 3);
    CHECK_EQ_INT(ib_node_dim(z, 0), 5);
    ib_node *loss = ib_add(g, ib_test_weighted_sum(g, ib_square(g, y)), ib_test_weighted_sum(g, z));
    ib_test_compile_fill(g);
    CHECK_OK(ib_graph_forward(g));
    const float *xv = ib_node_data(x), *yv = ib_node_data(y), *zv = ib_node_data(z);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < 4; h++)
                for (int w = 0; w < 5; w++) {
                    float v = xv[((n * 3 + c) * 4 + h) * 5 + w];
                    CHECK(yv[((n * 4 + h) * 5 + w) * 3 + c] == v);
                    CHECK(zv[((w * 3 + c) * 2 + n) * 4 + h] == v);
                }
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_bad_arguments(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){2, 3});
    CHECK(ib_upsample_nearest(g, x, 2) == NULL);
    CHECK(ib_graph_status(g) == IB_ERR_SHAPE);
    ib_graph_free(g);
    g = ib_graph_new(p);
    x = ib_input(g, "x", 4, (int64_t[]){1, 1, 2, 2});
    CHECK(ib_upsample_nearest(g, x, 0) == NULL);
    CHECK(ib_graph_status(g) == IB_ERR_ARG);
    ib_graph_free(g);
    g = ib_graph_new(p);
    x = ib_input(g, "x", 4, (int64_t[]){1, 1, 2, 2});
    CHECK(ib_permute(g, x, (int[]){0, 1, 1, 2}) == NULL);
    CHECK(ib_graph_status(g) == IB_ERR_ARG);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_upsample_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("pixel_ops.txt");
    const char *tags[2] = {"up2", "up3"};
    const int factors[2] = {2, 3};
    const int64_t shapes[2][4] = {{2, 3, 3, 4}, {1, 2, 2, 2}};
    for (int k = 0; k < 2; k++) {
        ib_params *p = ib_params_new(1);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, shapes[k]), true);
        ib_node *y = ib_node_keep(ib_upsample_nearest(g, x, factors[k]));
        ib_node *w = ib_input(g, "w", 4,
                              (int64_t[]){shapes[k][0], shapes[k][1], shapes[k][2] * factors[k], shapes[k][3] * factors[k]});
        ib_node *loss = ib_sum(g, ib_mul(g, y, w), IB_ALL);
        CHECK_OK(ib_graph_compile(g));
        char name[32];
        int64_t nx = 0, ny = 0;
        snprintf(name, sizeof name, "%s_x", tags[k]);
        const float *xf = ib_fixture_get(f, name, &nx); /* nx is set by the call: read it after */
        memcpy(ib_node_data(x), xf, (size_t)nx * sizeof(float));
        snprintf(name, sizeof name, "%s_w", tags[k]);
        const float *wf = ib_fixture_get(f, name, &ny);
        memcpy(ib_node_data(w), wf, (size_t)ny * sizeof(float));
        CHECK_EQ_INT(ny, ib_node_numel(y));
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        snprintf(name, sizeof name, "%s_y", tags[k]);
        ib_test_compare(name, ib_node_data(y), ib_fixture_get(f, name, NULL), ny, RTOL, ATOL);
        snprintf(name, sizeof name, "%s_grad", tags[k]);
        ib_test_compare(name, ib_node_grad(x), ib_fixture_get(f, name, NULL), nx, RTOL, ATOL);
        ib_graph_free(g);
        ib_params_free(p);
    }
    ib_fixture_free(f);
}

/* F.cross_entropy on (N, 256, H, W): permute to (N, H, W, 256), view as
 * (N H W, 256) rows, ib_cross_entropy (the mean over every pixel, as
 * PyTorch's default reduction). */
static void test_channel_cross_entropy_matches_torch(void)
{
    ib_fixture *f = ib_fixture_load("pixel_ops.txt");
    const int64_t N = 2, C = 256, H = 3, W = 4, R = N * H * W;
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){N, C, H, W}), true);
    ib_node *rows = ib_reshape(g, ib_permute(g, x, (int[]){0, 2, 3, 1}), 2, (int64_t[]){R, C});
    ib_node *labels = ib_input_labels(g, "t", R);
    ib_node *ls = ib_log_softmax(g, rows);
    ib_node *back = ib_permute(g, ib_reshape(g, ls, 4, (int64_t[]){N, H, W, C}), (int[]){0, 3, 1, 2});
    ib_node *loss = ib_cross_entropy(g, rows, labels, 0.0f);
    CHECK_OK(ib_graph_compile(g));
    memcpy(ib_node_data(x), ib_fixture_get(f, "ce_logits", NULL), (size_t)(N * C * H * W) * sizeof(float));
    const float *t = ib_fixture_get(f, "ce_target", NULL); /* (N, H, W): the row order of `rows` */
    for (int64_t r = 0; r < R; r++)
        ib_node_labels(labels)[r] = (int32_t)t[r];
    CHECK_OK(ib_graph_forward(g));
    ib_test_compare("ce_log_softmax", ib_node_data(back), ib_fixture_get(f, "ce_log_softmax", NULL), N * C * H * W,
                    RTOL, ATOL);
    ib_test_compare("ce_loss", ib_node_data(loss), ib_fixture_get(f, "ce_loss", NULL), 1, RTOL, 0);
    CHECK_OK(ib_graph_backward(g, loss));
    ib_test_compare("ce_grad", ib_node_grad(x), ib_fixture_get(f, "ce_grad", NULL), N * C * H * W, RTOL, ATOL);
    ib_graph_free(g);
    ib_params_free(p);
    ib_fixture_free(f);
}

/* The binarised-pixel likelihood the decoder uses, from existing ops:
 * -log p(t | l) = softplus(l) - t l, which is -log sigmoid(l) for t = 1
 * and -log sigmoid(-l) for t = 0, stable for large |l|. */
static void test_bernoulli_pixel_nll(void)
{
    const float l[6] = {-30.0f, -2.5f, 0.0f, 0.7f, 4.0f, 40.0f};
    const float tv[6] = {1, 0, 1, 1, 0, 0};
    ib_params *p = ib_params_new(1);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "l", 1, (int64_t[]){6});
    ib_node *t = ib_input(g, "t", 1, (int64_t[]){6});
    ib_node *nll = ib_sub(g, ib_softplus(g, x, 0.0f), ib_mul(g, t, x));
    CHECK_OK(ib_graph_compile(g));
    memcpy(ib_node_data(x), l, sizeof l);
    memcpy(ib_node_data(t), tv, sizeof tv);
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 6; k++) {
        double s = tv[k] ? l[k] : -l[k];
        double want = s > 0 ? log1p(exp(-s)) : -s + log1p(exp(s)); /* -log sigmoid(s) */
        CHECK_CLOSE(ib_node_data(nll)[k], want, 1e-6, 1e-6);
    }
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    IB_RUN(test_grad_upsample);
    IB_RUN(test_grad_permute);
    IB_RUN(test_bad_arguments);
    IB_RUN(test_upsample_matches_torch);
    IB_RUN(test_channel_cross_entropy_matches_torch);
    IB_RUN(test_bernoulli_pixel_nll);
    return ib_test_summary();
}
