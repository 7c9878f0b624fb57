/*
 * test_grad_conv.c — convolution, pooling and normalisation ops:
 * finite-difference gradient checks w.r.t. every input and parameter,
 * PixelCNN causality of masked convs, batch-norm running statistics, the
 * "only what needs a gradient" contract, determinism, and shape errors.
 *
 * Tolerances (errors relative to the largest gradient element, see
 * ib_graph_gradcheck): conv and pooling are linear in each input, so
 * central differences are exact up to the float32 rounding of the loss
 * (~1e-7 * sum|y R| / (2 eps)); the largest error measured is 7e-5, so
 * 3e-4 leaves a 4x margin, and a wrong tap, index or sign gives errors of
 * order 1 (checked by breaking the backwards on purpose).  Batch norm and
 * L2 normalisation are curved: eps 3e-3 keeps the O(eps^2) truncation
 * error small too (largest measured 9e-5; tolerance 5e-4).
 */
#include "test.h"

#define LIN_EPS 1e-2f
#define LIN_TOL 3e-4
#define CURVED_EPS 3e-3f
#define CURVED_TOL 5e-4

static ib_init uni(void) { return (ib_init){IB_INIT_UNIFORM, -1.0f, 1.0f}; }

typedef struct conv_case {
    int n, cin, h, w, cout, kh, kw, stride, pad;
    bool bias;
} conv_case;

static void check_conv(conv_case c)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){c.n, c.cin, c.h, c.w}), true);
    ib_node *w = ib_param(g, "w", 4, (int64_t[]){c.cout, c.cin, c.kh, c.kw}, uni());
    ib_node *b = c.bias ? ib_param(g, "b", 1, (int64_t[]){c.cout}, uni()) : NULL;
    ib_node *y = ib_conv2d(g, x, w, b, c.stride, c.pad);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    CHECK_EQ_INT(ib_node_dim(y, 2), (c.h + 2 * c.pad - c.kh) / c.stride + 1);
    CHECK_EQ_INT(ib_node_dim(y, 3), (c.w + 2 * c.pad - c.kw) / c.stride + 1);
    ib_test_gradcheck(g, loss, c.bias ? 3 : 2, (ib_node *[]){x, w, b}, LIN_EPS, LIN_TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_conv2d(void)
{
    const conv_case cases[] = {
        {3, 2, 5, 7, 3, 3, 3, 1, 0, true},   /* stride 1, no padding, non-square input */
        {3, 3, 6, 5, 2, 3, 3, 2, 1, false},  /* stride 2, pad 1, no bias */
        {2, 2, 4, 6, 2, 5, 5, 1, 2, true},   /* 5x5, pad 2 (the CNN layers' form) */
        {3, 1, 7, 7, 4, 5, 5, 2, 2, true},   /* Cin 1, stride 2, pad 2 */
        {1, 3, 5, 4, 2, 3, 3, 1, 1, true},   /* batch 1: the one-image-at-a-time path */
        {3, 3, 3, 4, 2, 1, 1, 1, 0, true},   /* 1x1: no im2col */
        {2, 2, 5, 6, 3, 2, 3, 2, 1, true},   /* non-square kernel */
        {2, 2, 6, 6, 2, 3, 3, 3, 0, false},  /* stride 3 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_conv(cases[k]);
}

/* A 1x1 conv equals a per-pixel linear map: a direct check of the layout
 * (Cout, Cin) of the weight and of the bias. */
static void test_conv1x1_is_channel_mix(void)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){2, 3, 2, 2});
    ib_node *w = ib_param(g, "w", 4, (int64_t[]){2, 3, 1, 1}, uni());
    ib_node *b = ib_param(g, "b", 1, (int64_t[]){2}, uni());
    ib_node *y = ib_conv2d(g, x, w, b, 1, 0);
    ib_test_compile_fill(g);
    CHECK_OK(ib_graph_forward(g));
    const float *xv = ib_node_data(x), *wv = ib_node_data(w), *bv = ib_node_data(b), *yv = ib_node_data(y);
    for (int n = 0; n < 2; n++)
        for (int o = 0; o < 2; o++)
            for (int q = 0; q < 4; q++) {
                double s = bv[o];
                for (int c = 0; c < 3; c++)
                    s += (double)wv[o * 3 + c] * xv[(n * 3 + c) * 4 + q];
                CHECK_NEAR(yv[(n * 2 + o) * 4 + q], s, 1e-6);
            }
    ib_graph_free(g);
    ib_params_free(p);
}

/* Backward skips what is not asked for: dX only (an attack) leaves the
 * weight gradient untouched; a frozen weight gets none; the input gradient
 * is the same either way. */
static void test_conv_grad_only_where_needed(void)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){4, 2, 6, 6}), true);
    ib_node *w = ib_param(g, "conv.w", 4, (int64_t[]){3, 2, 3, 3}, uni());
    ib_node *b = ib_param(g, "conv.b", 1, (int64_t[]){3}, uni());
    ib_node *loss = ib_test_weighted_sum(g, ib_conv2d(g, x, w, b, 1, 1));
    ib_test_compile_fill(g);
    int64_t nx = ib_node_numel(x), nw = ib_node_numel(w);
    float *dx_full = malloc((size_t)nx * sizeof(float)), *dw_full = malloc((size_t)nw * sizeof(float));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    memcpy(dx_full, ib_node_grad(x), (size_t)nx * sizeof(float));
    memcpy(dw_full, ib_node_grad(w), (size_t)nw * sizeof(float));
    float norm = 0;
    for (int64_t k = 0; k < nw; k++)
        norm += fabsf(dw_full[k]);
    CHECK(norm > 0);

    /* attack: param grads off */
    ib_params_zero_grad(p);
    ib_graph_set_param_grads(g, false);
    CHECK_OK(ib_graph_backward(g, loss));
    for (int64_t k = 0; k < nw; k++)
        CHECK(ib_node_grad(w)[k] == 0.0f);
    CHECK(ib_node_grad(b)[0] == 0.0f);
    CHECK(memcmp(dx_full, ib_node_grad(x), (size_t)nx * sizeof(float)) == 0);
    ib_graph_set_param_grads(g, true);

    /* frozen weight, bias trainable, no dX */
    ib_params_freeze(p, "conv.w", true);
    ib_node_set_requires_grad(x, false);
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    for (int64_t k = 0; k < nw; k++)
        CHECK(ib_node_grad(w)[k] == 0.0f);
    CHECK(ib_node_grad(b)[0] != 0.0f);

    /* weight only: the same dW as with dX */
    ib_params_freeze(p, "conv.w", false);
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    CHECK(memcmp(dw_full, ib_node_grad(w), (size_t)nw * sizeof(float)) == 0);
    free(dx_full);
    free(dw_full);
    ib_graph_free(g);
    ib_params_free(p);
}

/* Determinism: the same thread count gives the same bits run after run
 * (no racing accumulation).  Across thread counts only closeness can be
 * asked: OpenBLAS itself rounds differently when it splits a GEMM over
 * threads (its edge kernels sum in another order), so 1 and 2 threads
 * agree to float32 rounding, not bit for bit. */
static void test_conv_deterministic(void)
{
    int saved = ib_get_threads();
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){20, 3, 9, 9}), true);
    ib_node *w = ib_param(g, "w", 4, (int64_t[]){8, 3, 5, 5}, uni());
    ib_node *b = ib_param(g, "b", 1, (int64_t[]){8}, uni());
    ib_node *y = ib_conv2d(g, x, w, b, 1, 2);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    int64_t nx = ib_node_numel(x), nw = ib_node_numel(w), ny = ib_node_numel(y);
    int64_t lens[4] = {ny, nx, nw, 8}, total = ny + nx + nw + 8;
    float *runs[3];
    const int threads[3] = {2, 2, 1};
    for (int run = 0; run < 3; run++) {
        ib_set_threads(threads[run]);
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        const float *parts[4] = {ib_node_data(y), ib_node_grad(x), ib_node_grad(w), ib_node_grad(b)};
        float *at = runs[run] = malloc((size_t)total * sizeof(float));
        for (int k = 0; k < 4; k++) {
            memcpy(at, parts[k], (size_t)lens[k] * sizeof(float));
            at += lens[k];
        }
    }
    ib_set_threads(saved);
    CHECK(memcmp(runs[0], runs[1], (size_t)total * sizeof(float)) == 0);
    /* sums of at most 75 (y, dx) or 1620 (dW) products of O(1) terms */
    ib_test_compare("1 vs 2 threads", runs[2], runs[0], total, 1e-5, 1e-5);
    for (int run = 0; run < 3; run++)
        free(runs[run]);
    ib_graph_free(g);
    ib_params_free(p);
}

/* A shape whose column matrix exceeds one block (blocks of 2 then 1
 * image, so the block layout copies are exercised), against a direct
 * convolution summed in double. */
static void test_conv_blocks_match_direct(void)
{
    enum { N = 3, CI = 16, H = 64, WD = 64, CO = 4, K = 5, PAD = 2 };
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){N, CI, H, WD}), true);
    ib_node *w = ib_param(g, "w", 4, (int64_t[]){CO, CI, K, K}, uni());
    ib_node *b = ib_param(g, "b", 1, (int64_t[]){CO}, uni());
    ib_node *y = ib_conv2d(g, x, w, b, 1, PAD);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    const float *xv = ib_node_data(x), *wv = ib_node_data(w), *bv = ib_node_data(b), *yv = ib_node_data(y);
    const float *rv = ib_node_data(ib_graph_find(g, "R"));
    double *dx = calloc((size_t)N * CI * H * WD, sizeof(double)), *dw = calloc((size_t)CO * CI * K * K, sizeof(double));
    double maxy = 0, maxdx = 0, maxdw = 0, ey = 0, edx = 0, edw = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < CO; o++)
            for (int r = 0; r < H; r++)
                for (int c = 0; c < WD; c++) {
                    int at = ((n * CO + o) * H + r) * WD + c;
                    double s = bv[o], dyv = rv[at];
                    for (int ci = 0; ci < CI; ci++)
                        for (int i = 0; i < K; i++)
                            for (int j = 0; j < K; j++) {
                                int ih = r - PAD + i, iw = c - PAD + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= WD)
                                    continue;
                                int xi = ((n * CI + ci) * H + ih) * WD + iw, wi = ((o * CI + ci) * K + i) * K + j;
                                s += (double)wv[wi] * xv[xi];
                                dx[xi] += dyv * wv[wi];
                                dw[wi] += dyv * xv[xi];
                            }
                    maxy = fmax(maxy, fabs(s));
                    ey = fmax(ey, fabs(s - yv[at]));
                }
    for (int k = 0; k < N * CI * H * WD; k++) {
        maxdx = fmax(maxdx, fabs(dx[k]));
        edx = fmax(edx, fabs(dx[k] - ib_node_grad(x)[k]));
    }
    for (int k = 0; k < CO * CI * K * K; k++) {
        maxdw = fmax(maxdw, fabs(dw[k]));
        edw = fmax(edw, fabs(dw[k] - ib_node_grad(w)[k]));
    }
    /* float32 sums of up to 400 (y, dx) or 12288 (dW) products: relative
     * error well below 1e-5 of the largest element. */
    CHECK_MSG(ey <= 1e-5 * maxy, "y off by %g (max %g)", ey, maxy);
    CHECK_MSG(edx <= 1e-5 * maxdx, "dx off by %g (max %g)", edx, maxdx);
    CHECK_MSG(edw <= 1e-5 * maxdw, "dw off by %g (max %g)", edw, maxdw);
    free(dx);
    free(dw);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_conv2d_masked(void)
{
    const char kinds[] = "ABVW";
    for (int type = 0; type < 4; type++) {
        ib_params *p = ib_params_new(5);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 2, 5, 6}), true);
        ib_node *w = ib_param(g, "w", 4, (int64_t[]){3, 2, 3, 3}, uni());
        ib_node *b = ib_param(g, "b", 1, (int64_t[]){3}, uni());
        ib_node *y = ib_conv2d_masked(g, x, w, b, 1, kinds[type]);
        ib_node *loss = ib_test_weighted_sum(g, y);
        ib_test_compile_fill(g);
        ib_test_gradcheck(g, loss, 3, (ib_node *[]){x, w, b}, LIN_EPS, LIN_TOL);
        /* masked taps get exactly zero gradient; the others do not */
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        const float *dw = ib_node_grad(w);
        for (int r = 0; r < 6; r++)
            for (int t = 0; t < 9; t++) {
                /* A, B: after the centre (A: and it); V: the centre row and below; W: below */
                bool masked = type == 2 ? t >= 3 : type == 3 ? t >= 6 : t > 4 || (t == 4 && type == 0);
                if (masked)
                    CHECK_MSG(dw[r * 9 + t] == 0.0f, "masked tap %d has gradient %g", t, dw[r * 9 + t]);
                else
                    CHECK_MSG(dw[r * 9 + t] != 0.0f, "open tap %d has no gradient", t);
            }
        ib_graph_free(g);
        ib_params_free(p);
    }
}

/* Causality of a PixelCNN stack (mask A, then mask B): changing input pixel
 * (r, c) of any channel changes no output at a raster position <= (r, c),
 * and changes some later one. */
static void test_masked_conv_is_causal(void)
{
    enum { H = 6, W = 7 };
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){1, 2, H, W});
    ib_node *w1 = ib_param(g, "w1", 4, (int64_t[]){4, 2, 5, 5}, uni());
    ib_node *b1 = ib_param(g, "b1", 1, (int64_t[]){4}, uni());
    ib_node *w2 = ib_param(g, "w2", 4, (int64_t[]){3, 4, 3, 3}, uni());
    ib_node *h = ib_relu(g, ib_conv2d_masked(g, x, w1, b1, 2, 'A'));
    ib_node *y = ib_conv2d_masked(g, h, w2, NULL, 1, 'B');
    ib_test_compile_fill(g);
    CHECK_EQ_INT(ib_node_dim(y, 2), H);
    CHECK_EQ_INT(ib_node_dim(y, 3), W);
    float *xv = ib_node_data(x);
    for (int k = 0; k < 2 * H * W; k++) /* keep the relu open: positive pre-activations more often */
        xv[k] = 0.5f + 0.5f * xv[k];
    CHECK_OK(ib_graph_forward(g));
    float base[3 * H * W];
    memcpy(base, ib_node_data(y), sizeof base);
    for (int c = 0; c < 2; c++)
        for (int pos = 0; pos < H * W; pos++) {
            float keep = xv[c * H * W + pos];
            xv[c * H * W + pos] = keep + 3.0f;
            CHECK_OK(ib_graph_forward(g));
            const float *yv = ib_node_data(y);
            int later_changed = 0;
            for (int o = 0; o < 3; o++)
                for (int q = 0; q < H * W; q++) {
                    float a = yv[o * H * W + q], b = base[o * H * W + q];
                    if (q <= pos)
                        CHECK_MSG(a == b, "input (ch %d, pixel %d) changed output (ch %d, pixel %d): %g vs %g", c, pos,
                                  o, q, a, b);
                    else if (a != b)
                        later_changed++;
                }
            if (pos < H * W - 1)
                CHECK_MSG(later_changed > 0, "input (ch %d, pixel %d) changed nothing", c, pos);
            xv[c * H * W + pos] = keep;
        }
    ib_graph_free(g);
    ib_params_free(p);
}

/* Distinct values 0.05 apart (more than 2 eps), in scrambled order, so no
 * window has a near-tie that a finite difference could flip. */
static void fill_distinct(float *x, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        x[k] = 0.05f * (float)((k * 37 + 11) % n) - 0.025f * (float)n;
}

static void test_grad_pooling(void)
{
    const int cfg[][5] = {/* h, w, k, stride, pad */
                          {6, 6, 2, 2, 0}, {7, 5, 3, 2, 1}, {5, 6, 3, 1, 1}, {6, 7, 2, 1, 1},
                          {6, 6, 1, 2, 0}, {7, 5, 1, 2, 0}, {5, 7, 1, 3, 0}}; /* k = 1: the subsample path */
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        ib_params *p = ib_params_new(5);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 3, cfg[k][0], cfg[k][1]}), true);
        ib_node *ym = ib_maxpool2d(g, x, cfg[k][2], cfg[k][3], cfg[k][4]);
        ib_node *ya = ib_avgpool2d(g, x, cfg[k][2], cfg[k][3], cfg[k][4]);
        ib_node *yg = ib_global_avgpool(g, x);
        ib_node *loss = ib_add(g, ib_add(g, ib_test_weighted_sum(g, ym), ib_test_weighted_sum(g, ya)),
                               ib_test_weighted_sum(g, yg));
        ib_test_compile_fill(g);
        CHECK_EQ_INT(ib_node_dim(yg, 1), 3);
        fill_distinct(ib_node_data(x), ib_node_numel(x));
        ib_test_gradcheck(g, loss, 1, &x, LIN_EPS, LIN_TOL);
        ib_graph_free(g);
        ib_params_free(p);
    }
}

/* PyTorch semantics: ties go to the first maximum in raster order; padding
 * never wins; avg-pool divides by k*k even over padding. */
static void test_pool_semantics(void)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){1, 1, 4, 4}), true);
    ib_node *ym = ib_maxpool2d(g, x, 2, 2, 0);
    ib_node *yp = ib_maxpool2d(g, x, 3, 2, 1);
    ib_node *ya = ib_avgpool2d(g, x, 3, 2, 1);
    ib_node *loss = ib_sum(g, ym, IB_ALL);
    ib_node *loss2 = ib_sum(g, yp, IB_ALL);
    ib_test_compile_fill(g);
    float *xv = ib_node_data(x);
    for (int k = 0; k < 16; k++)
        xv[k] = -2.0f; /* all tied */
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    const float *dx = ib_node_grad(x);
    for (int k = 0; k < 16; k++) { /* the top-left cell of each 2x2 window */
        int r = k / 4, c = k % 4;
        CHECK_EQ_INT((int)dx[k], (r % 2 == 0 && c % 2 == 0) ? 1 : 0);
    }
    CHECK_OK(ib_graph_backward(g, loss2));
    for (int k = 0; k < 4; k++)
        CHECK_NEAR(ib_node_data(yp)[k], -2.0f, 0.0f);
    /* windows start at rows/cols -1 and 1: their first real cells are (0|1, 0|1) */
    for (int k = 0; k < 16; k++)
        CHECK_NEAR(dx[k], (k == 0 || k == 1 || k == 4 || k == 5) ? 1.0f : 0.0f, 0.0f);
    CHECK_NEAR(ib_node_data(ya)[0], -2.0f * 4.0f / 9.0f, 1e-6);
    ib_graph_free(g);
    ib_params_free(p);
}

/* gamma, beta ~ U(-1, 1); running stats: mean U(-1,1), var U(0.5, 1.5). */
static void batchnorm_gradcheck(int ndim, const int64_t *shape, bool training)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    int64_t ch = shape[1];
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", ndim, shape), true);
    ib_node *gamma = ib_param(g, "bn.weight", 1, &ch, uni());
    ib_node *beta = ib_param(g, "bn.bias", 1, &ch, uni());
    ib_node *rm = ib_buffer(g, "bn.running_mean", 1, &ch, uni());
    ib_node *rv = ib_buffer(g, "bn.running_var", 1, &ch, (ib_init){IB_INIT_UNIFORM, 0.5f, 1.5f});
    ib_node *y = ib_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    ib_graph_set_training(g, training);
    ib_test_gradcheck(g, loss, 3, (ib_node *[]){x, gamma, beta}, CURVED_EPS, CURVED_TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_batchnorm(void)
{
    batchnorm_gradcheck(2, (int64_t[]){6, 3}, true);
    batchnorm_gradcheck(4, (int64_t[]){3, 2, 3, 4}, true);
    batchnorm_gradcheck(2, (int64_t[]){5, 3}, false);
    batchnorm_gradcheck(4, (int64_t[]){2, 3, 2, 3}, false);
}

/* batchnorm_relu: finite differences with beta = +-3 and gamma = 0.4, so
 * that no output lies near the ReLU's kink (|gamma xhat| < 3 for 36
 * values a channel); and the same bits as batchnorm then relu (values,
 * running statistics, gradients of x, gamma and beta), training and eval. */
static void test_grad_batchnorm_relu(void)
{
    const int64_t shape[4] = {3, 2, 3, 4};
    int64_t ch = 2;
    for (int training = 0; training < 2; training++) {
        ib_params *p = ib_params_new(5);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, shape), true);
        ib_node *gamma = ib_param(g, "bn.weight", 1, &ch, (ib_init){IB_INIT_CONSTANT, 0.4f, 0});
        ib_node *beta = ib_param(g, "bn.bias", 1, &ch, uni());
        ib_node *rm = ib_buffer(g, "bn.running_mean", 1, &ch, uni());
        ib_node *rv = ib_buffer(g, "bn.running_var", 1, &ch, (ib_init){IB_INIT_UNIFORM, 0.5f, 1.5f});
        ib_node *loss = ib_test_weighted_sum(g, ib_batchnorm_relu(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f));
        ib_test_compile_fill(g);
        float *bv = ib_node_data(beta), *xv = ib_node_data(x), *mv = ib_node_data(rm);
        bv[0] = 3.0f, bv[1] = -3.0f;
        if (!training) /* eval: xhat from the running statistics, kept within +-2.5 */
            for (int64_t k = 0; k < ib_node_numel(x); k++)
                xv[k] = mv[(k / 12) % 2] + 0.5f * xv[k];
        ib_graph_set_training(g, training);
        ib_test_gradcheck(g, loss, 3, (ib_node *[]){x, gamma, beta}, CURVED_EPS, CURVED_TOL);
        ib_graph_free(g);
        ib_params_free(p);
    }
    for (int training = 0; training < 2; training++) {
        float *res[2][5];
        for (int fused = 0; fused < 2; fused++) {
            ib_params *p = ib_params_new(5);
            ib_graph *g = ib_graph_new(p);
            ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, shape), true);
            ib_node *gamma = ib_param(g, "bn.weight", 1, &ch, uni());
            ib_node *beta = ib_param(g, "bn.bias", 1, &ch, uni());
            ib_node *rm = ib_buffer(g, "bn.running_mean", 1, &ch, uni());
            ib_node *rv = ib_buffer(g, "bn.running_var", 1, &ch, (ib_init){IB_INIT_UNIFORM, 0.5f, 1.5f});
            ib_node *y = fused ? ib_batchnorm_relu(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f)
                               : ib_relu(g, ib_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f));
            ib_node *wt = ib_input(g, "w", 4, shape);
            ib_node *loss = ib_sum(g, ib_mul(g, y, wt), IB_ALL);
            ib_test_compile_fill(g);
            float *wv = ib_node_data(wt);
            for (int64_t k = 0; k < ib_node_numel(wt); k++) /* the same weights in both graphs */
                wv[k] = (float)((k * 37) % 11) / 11.0f - 0.4f;
            ib_graph_set_training(g, training);
            CHECK_OK(ib_graph_forward(g));
            CHECK_OK(ib_graph_backward(g, loss));
            ib_node *got[5] = {y, x, gamma, beta, rm};
            for (int k = 0; k < 5; k++) {
                size_t bytes = (size_t)ib_node_numel(got[k]) * sizeof(float);
                res[fused][k] = malloc(bytes);
                memcpy(res[fused][k], k == 0 || k == 4 ? ib_node_data(got[k]) : ib_node_grad(got[k]), bytes);
            }
            if (fused) {
                for (int k = 0; k < 5; k++) {
                    size_t bytes = (size_t)ib_node_numel(got[k]) * sizeof(float);
                    CHECK_MSG(memcmp(res[0][k], res[1][k], bytes) == 0, "batchnorm_relu result %d (training %d)"
                              " differs from batchnorm + relu: %.9g vs %.9g", k, training, res[0][k][0], res[1][k][0]);
                }
                for (int k = 0; k < 5; k++)
                    free(res[0][k]), free(res[1][k]);
            }
            ib_graph_free(g);
            ib_params_free(p);
        }
    }
}

/* Running statistics: r = (1-m) r + m s with the unbiased batch variance;
 * eval mode normalises with them and leaves them alone. */
static void test_batchnorm_running_stats(void)
{
    enum { N = 4, C = 3, HW = 6 };
    const float mom = 0.25f, eps = 1e-3f;
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    int64_t ch = C;
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){N, C, 2, 3});
    ib_node *gamma = ib_param(g, "bn.weight", 1, &ch, uni());
    ib_node *beta = ib_param(g, "bn.bias", 1, &ch, uni());
    ib_node *rm = ib_buffer(g, "bn.running_mean", 1, &ch, uni());
    ib_node *rv = ib_buffer(g, "bn.running_var", 1, &ch, (ib_init){IB_INIT_UNIFORM, 0.5f, 1.5f});
    ib_node *y = ib_batchnorm(g, x, gamma, beta, rm, rv, mom, eps);
    ib_test_compile_fill(g);
    const float *xv = ib_node_data(x), *gv = ib_node_data(gamma), *bv = ib_node_data(beta);
    float rm0[C], rv0[C];
    memcpy(rm0, ib_node_data(rm), sizeof rm0);
    memcpy(rv0, ib_node_data(rv), sizeof rv0);
    CHECK_OK(ib_graph_forward(g));
    for (int c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < N; n++)
            for (int q = 0; q < HW; q++)
                s += xv[(n * C + c) * HW + q];
        double mu = s / (N * HW);
        for (int n = 0; n < N; n++)
            for (int q = 0; q < HW; q++)
                ss += pow(xv[(n * C + c) * HW + q] - mu, 2);
        CHECK_NEAR(ib_node_data(rm)[c], (1 - mom) * rm0[c] + mom * mu, 1e-6);
        CHECK_NEAR(ib_node_data(rv)[c], (1 - mom) * rv0[c] + mom * ss / (N * HW - 1), 1e-6);
        double is = 1.0 / sqrt(ss / (N * HW) + eps);
        for (int n = 0; n < N; n++)
            for (int q = 0; q < HW; q++) {
                int at = (n * C + c) * HW + q;
                CHECK_NEAR(ib_node_data(y)[at], (xv[at] - mu) * is * gv[c] + bv[c], 2e-6);
            }
    }
    float rm1[C], rv1[C];
    memcpy(rm1, ib_node_data(rm), sizeof rm1);
    memcpy(rv1, ib_node_data(rv), sizeof rv1);
    ib_graph_set_training(g, false);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(rm1, ib_node_data(rm), sizeof rm1) == 0);
    CHECK(memcmp(rv1, ib_node_data(rv), sizeof rv1) == 0);
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            for (int q = 0; q < HW; q++) {
                int at = (n * C + c) * HW + q;
                double want = (xv[at] - rm1[c]) / sqrt((double)rv1[c] + eps) * gv[c] + bv[c];
                CHECK_NEAR(ib_node_data(y)[at], want, 2e-6);
            }
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_l2_normalize(void)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){4, 5}), true);
    ib_node *y = ib_l2_normalize(g, x, 1e-2f);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    float *xv = ib_node_data(x);
    for (int k = 15; k < 20; k++) /* last row: norm below eps, the clamped branch */
        xv[k] *= 1e-3f;
    CHECK_OK(ib_graph_forward(g));
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int k = 0; k < 5; k++)
            s += pow(ib_node_data(y)[r * 5 + k], 2);
        CHECK_NEAR(s, 1.0, 1e-6);
    }
    for (int k = 15; k < 20; k++)
        CHECK_NEAR(ib_node_data(y)[k], xv[k] / 1e-2f, 1e-7);
    /* eps 1e-4 keeps the last row's norm (< 3e-3) below the clamp 1e-2 */
    ib_test_gradcheck(g, loss, 1, &x, 1e-4f, 1e-4); /* measured 7e-6 */
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_shape_errors(void)
{
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "img", 4, (int64_t[]){2, 3, 8, 8});
    ib_node *w = ib_param(g, "conv1.weight", 4, (int64_t[]){4, 2, 3, 3}, uni());
    CHECK(ib_conv2d(g, x, w, NULL, 1, 1) == NULL);
    CHECK(ib_graph_status(g) == IB_ERR_SHAPE);
    CHECK(strstr(ib_graph_error(g), "conv1.weight") && strstr(ib_graph_error(g), "img") &&
          strstr(ib_graph_error(g), "(2, 3, 8, 8)"));
    ib_graph_free(g);

    g = ib_graph_new(p);
    x = ib_input(g, "img", 4, (int64_t[]){2, 3, 8, 8});
    ib_node *w2 = ib_param(g, "pix.weight", 4, (int64_t[]){4, 3, 4, 4}, uni());
    CHECK(ib_conv2d_masked(g, x, w2, NULL, 1, 'A') == NULL);
    CHECK(strstr(ib_graph_error(g), "odd square") != NULL);
    ib_graph_free(g);

    g = ib_graph_new(p);
    x = ib_input(g, "feat", 2, (int64_t[]){5, 4});
    CHECK(ib_maxpool2d(g, x, 2, 2, 0) == NULL);
    CHECK(strstr(ib_graph_error(g), "feat") && strstr(ib_graph_error(g), "(5, 4)"));
    ib_graph_free(g);

    g = ib_graph_new(p);
    x = ib_input(g, "feat", 2, (int64_t[]){5, 4});
    int64_t three = 3;
    ib_node *gm = ib_param(g, "bn.weight3", 1, &three, uni());
    ib_node *bt = ib_param(g, "bn.bias3", 1, &three, uni());
    ib_node *rm = ib_buffer(g, "bn.rm3", 1, &three, uni());
    ib_node *rv = ib_buffer(g, "bn.rv3", 1, &three, uni());
    CHECK(ib_batchnorm(g, x, gm, bt, rm, rv, 0.1f, 1e-5f) == NULL);
    CHECK(strstr(ib_graph_error(g), "bn.weight3") && strstr(ib_graph_error(g), "(5, 4)"));
    ib_graph_free(g);
    ib_params_free(p);
}

int main(void)
{
    IB_RUN(test_grad_conv2d);
    IB_RUN(test_conv1x1_is_channel_mix);
    IB_RUN(test_conv_grad_only_where_needed);
    IB_RUN(test_conv_deterministic);
    IB_RUN(test_conv_blocks_match_direct);
    IB_RUN(test_grad_conv2d_masked);
    IB_RUN(test_masked_conv_is_causal);
    IB_RUN(test_grad_pooling);
    IB_RUN(test_pool_semantics);
    IB_RUN(test_grad_batchnorm);
    IB_RUN(test_grad_batchnorm_relu);
    IB_RUN(test_batchnorm_running_stats);
    IB_RUN(test_grad_l2_normalize);
    IB_RUN(test_shape_errors);
    return ib_test_summary();
}
