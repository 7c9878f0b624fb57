/*
 * test_conv_backends.c — the two convolution paths (oneDNN, and im2col +
 * sgemm) agree: forward, dX, dW and db on varied shapes (stride 2, padding,
 * 1x1, 5x5, non-square kernels, batch 1, odd sizes, a stride that skips the
 * last rows), for plain and masked convs, with dX accumulated from two
 * convs sharing an input; the oneDNN path really is taken for every shape
 * when the build has it, and it (and a few training steps of a small conv
 * net) repeats bit for bit at a fixed thread count.
 * In a build without oneDNN both runs take the im2col path and the tests
 * still hold (trivially for the comparisons).
 *
 * Tolerance: the paths sum the same K products in different orders (and
 * oneDNN may use FMA where OpenBLAS does not), so an element differs by
 * at most about K * 2^-24 * sum|terms|.  With U(-1, 1) data and sums of up
 * to 800 terms the largest difference measured is 9e-7 of the largest
 * element (LeNet's second layer, y and dW); the check is
 * max |a - b| <= 4e-6 * max |b| per tensor, and a wrong
 * tap, a transposed index or a lost accumulation is off by O(1) of it
 * (checked by breaking the oneDNN path's weight layout and its dX
 * accumulation on purpose).
 */
#include "test.h"

#include "kernels/conv_kernels.h"

#define REL_TOL 4e-6

static ib_init uni(void) { return (ib_init){IB_INIT_UNIFORM, -1.0f, 1.0f}; }

typedef struct conv_case {
    int n, cin, h, w, cout, kh, kw, stride, pad;
    bool bias;
    char mask; /* 0, 'A' or 'B' */
} conv_case;

static const conv_case cases[] = {
    {4, 3, 9, 9, 8, 3, 3, 1, 1, true, 0},      /* few input channels (first layer) */
    {2, 16, 12, 12, 16, 3, 3, 1, 1, true, 0},  /* blocked layouts */
    {3, 16, 11, 11, 32, 3, 3, 2, 1, true, 0},  /* stride 2, odd size */
    {2, 8, 8, 8, 12, 3, 3, 2, 0, false, 0},    /* stride 2 skips the last row: right padding -1 */
    {5, 16, 7, 7, 24, 1, 1, 1, 0, true, 0},    /* 1x1 */
    {2, 32, 6, 6, 16, 1, 1, 2, 0, true, 0},    /* 1x1 stride 2 */
    {1, 1, 28, 28, 32, 5, 5, 1, 2, true, 0},   /* LeNet's first layer, batch 1 */
    {2, 32, 14, 14, 64, 5, 5, 1, 2, true, 0},  /* LeNet's second layer */
    {3, 5, 10, 13, 7, 3, 5, 1, 2, true, 0},    /* non-square kernel and image, odd channels */
    {2, 4, 6, 6, 3, 3, 3, 3, 3, true, 0},      /* pad larger than half the kernel */
    {2, 6, 9, 9, 8, 5, 5, 1, 2, true, 'A'},    /* masked convs (PixelCNN) */
    {2, 8, 7, 7, 8, 3, 3, 1, 1, false, 'B'},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* y = conv(x, w, b) + conv(x, w2): x's gradient is the sum of what both
 * backward passes add. */
typedef struct result {
    float *t[5]; /* y, dx, dw, db, dw2 */
    int64_t len[5];
} result;

static result run(const conv_case *c, int path)
{
    ib__conv_set_path(path);
    ib_params *p = ib_params_new(7);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){c->n, c->cin, c->h, c->w}), true);
    ib_node *w = ib_param(g, "w", 4, (int64_t[]){c->cout, c->cin, c->kh, c->kw}, uni());
    ib_node *w2 = ib_param(g, "w2", 4, (int64_t[]){c->cout, c->cin, c->kh, c->kw}, uni());
    ib_node *b = c->bias ? ib_param(g, "b", 1, (int64_t[]){c->cout}, uni()) : NULL;
    ib_node *y1, *y2;
    if (c->mask) {
        y1 = ib_conv2d_masked(g, x, w, b, c->pad, c->mask);
        y2 = ib_conv2d_masked(g, x, w2, NULL, c->pad, c->mask);
    } else {
        y1 = ib_conv2d(g, x, w, b, c->stride, c->pad);
        y2 = ib_conv2d(g, x, w2, NULL, c->stride, c->pad);
    }
    ib_node *y = ib_add(g, y1, y2);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    result r;
    const float *src[5] = {ib_node_data(y1), ib_node_grad(x), ib_node_grad(w), b ? ib_node_grad(b) : NULL,
                           ib_node_grad(w2)};
    int64_t len[5] = {ib_node_numel(y1), ib_node_numel(x), ib_node_numel(w), b ? ib_node_numel(b) : 0,
                      ib_node_numel(w2)};
    for (int k = 0; k < 5; k++) {
        r.len[k] = len[k];
        r.t[k] = malloc((size_t)(len[k] + 1) * sizeof(float));
        if (len[k])
            memcpy(r.t[k], src[k], (size_t)len[k] * sizeof(float));
    }
    ib_graph_free(g);
    ib_params_free(p);
    return r;
}

static void result_free(result *r)
{
    for (int k = 0; k < 5; k++)
        free(r->t[k]);
}

static double worst; /* the largest relative difference seen, printed */

static void compare(const conv_case *c, int ci, const result *a, const result *b)
{
    static const char *names[5] = {"y", "dx", "dw", "db", "dw2"};
    for (int k = 0; k < 5; k++) {
        double err = 0, big = 0;
        for (int64_t i = 0; i < a->len[k]; i++) {
            err = fmax(err, fabs((double)a->t[k][i] - b->t[k][i]));
            big = fmax(big, fabs((double)b->t[k][i]));
        }
        worst = big > 0 ? fmax(worst, err / big) : worst;
        CHECK_MSG(err <= REL_TOL * big, "case %d (%dx%d %d->%d k%dx%d s%d p%d %c): %s differs by %.3g (max %.3g)", ci,
                  c->h, c->w, c->cin, c->cout, c->kh, c->kw, c->stride, c->pad, c->mask ? c->mask : '-', names[k],
                  err, big);
    }
}

static void test_paths_agree(void)
{
    int saved = ib__conv_path();
    for (int ci = 0; ci < N_CASES; ci++) {
        result d = run(&cases[ci], IB_CONV_DNNL), m = run(&cases[ci], IB_CONV_IM2COL);
        ib__conv_set_path(saved);
        compare(&cases[ci], ci, &d, &m);
        result_free(&d);
        result_free(&m);
    }
    ib__conv_set_path(saved);
    printf("     largest difference between the paths: %.2g of the largest element\n", worst);
}

/* The oneDNN path must not quietly fall back to im2col: each pass of each
 * shape is taken by it (when the build has it). */
static void test_dnnl_taken(void)
{
    if (!ib__conv_dnnl_available()) {
        printf("     (built without oneDNN: nothing to check)\n");
        return;
    }
    int saved = ib__conv_path();
    ib__conv_set_path(IB_CONV_DNNL);
    for (int ci = 0; ci < N_CASES; ci++) {
        const conv_case *c = &cases[ci];
        int stride = c->mask ? 1 : c->stride;
        ib__conv_geom gm = {.cin = c->cin, .h = c->h, .w = c->w, .kh = c->kh, .kw = c->kw, .stride = stride,
                            .pad = c->pad};
        gm.ho = (c->h + 2 * c->pad - c->kh) / stride + 1;
        gm.wo = (c->w + 2 * c->pad - c->kw) / stride + 1;
        int64_t nx = (int64_t)c->n * c->cin * c->h * c->w, nw = (int64_t)c->cout * c->cin * c->kh * c->kw,
                ny = (int64_t)c->n * c->cout * gm.ho * gm.wo;
        float *x = calloc((size_t)nx, sizeof(float)), *w = calloc((size_t)nw, sizeof(float)),
              *b = calloc((size_t)c->cout, sizeof(float)), *y = calloc((size_t)ny, sizeof(float));
        CHECK_MSG(ib__conv_dnnl_forward(&gm, c->n, c->cout, x, w, c->bias ? b : NULL, y, NULL, 0), "case %d: forward",
                  ci);
        CHECK_MSG(ib__conv_dnnl_backward_data(&gm, c->n, c->cout, w, y, x, true, NULL, 0), "case %d: backward data", ci);
        { /* overwriting (the gradient's only writer) = adding into zeros, bit for bit, whatever dx held */
            for (int64_t e = 0; e < nw; e++)
                w[e] = (float)((e * 37) % 23) / 11.0f - 1.0f;
            for (int64_t e = 0; e < ny; e++)
                y[e] = (float)((e * 53) % 31) / 15.0f - 1.0f;
            float *set = malloc((size_t)nx * sizeof(float)), *acc = calloc((size_t)nx, sizeof(float));
            for (int64_t e = 0; e < nx; e++)
                set[e] = NAN;
            CHECK_MSG(ib__conv_dnnl_backward_data(&gm, c->n, c->cout, w, y, acc, true, NULL, 0) &&
                          ib__conv_dnnl_backward_data(&gm, c->n, c->cout, w, y, set, false, NULL, 0),
                      "case %d: backward data, both forms", ci);
            CHECK_MSG(memcmp(set, acc, (size_t)nx * sizeof(float)) == 0, "case %d: overwrite differs from add", ci);
            free(set);
            free(acc);
        }
        CHECK_MSG(ib__conv_dnnl_backward_weights(&gm, c->n, c->cout, x, y, w, NULL, 0), "case %d: backward weights",
                  ci);
        free(x);
        free(w);
        free(b);
        free(y);
    }
    ib__conv_set_path(IB_CONV_IM2COL); /* and forcing im2col turns it off */
    ib__conv_geom gm = {.cin = 1, .h = 3, .w = 3, .ho = 1, .wo = 1, .kh = 3, .kw = 3, .stride = 1, .pad = 0};
    float v[9] = {0}, o[1];
    CHECK(!ib__conv_dnnl_forward(&gm, 1, 1, v, v, NULL, o, NULL, 0));
    ib__conv_set_path(saved);
}

/* Same thread count, same bits, for every tensor of several shapes. */
static void test_dnnl_repeats(void)
{
    int saved = ib__conv_path();
    for (int ci = 0; ci < N_CASES; ci += 3) {
        result a = run(&cases[ci], IB_CONV_DNNL), b = run(&cases[ci], IB_CONV_DNNL);
        for (int k = 0; k < 5; k++)
            CHECK_MSG(memcmp(a.t[k], b.t[k], (size_t)a.len[k] * sizeof(float)) == 0, "case %d tensor %d", ci, k);
        result_free(&a);
        result_free(&b);
    }
    ib__conv_set_path(saved);
}

/* Only the gradients asked for: with x a constant input, nothing is
 * added to its gradient buffer, and dW and db still agree. */
static void test_weights_only(void)
{
    int saved = ib__conv_path();
    float *got[2][2];
    for (int path = 0; path < 2; path++) {
        ib__conv_set_path(path);
        ib_params *p = ib_params_new(3);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_input(g, "x", 4, (int64_t[]){3, 16, 10, 10});
        ib_node *w = ib_param(g, "w", 4, (int64_t[]){16, 16, 3, 3}, uni());
        ib_node *b = ib_param(g, "b", 1, (int64_t[]){16}, uni());
        ib_node *loss = ib_test_weighted_sum(g, ib_conv2d(g, x, w, b, 1, 1));
        ib_test_compile_fill(g);
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        for (int64_t i = 0; i < ib_node_numel(x); i++)
            CHECK(ib_node_grad(x)[i] == 0.0f);
        got[path][0] = malloc(16 * 16 * 9 * sizeof(float));
        got[path][1] = malloc(16 * sizeof(float));
        memcpy(got[path][0], ib_node_grad(w), 16 * 16 * 9 * sizeof(float));
        memcpy(got[path][1], ib_node_grad(b), 16 * sizeof(float));
        ib_graph_free(g);
        ib_params_free(p);
    }
    ib__conv_set_path(saved);
    for (int k = 0; k < 2; k++) {
        int64_t n = k ? 16 : 16 * 16 * 9;
        double err = 0, big = 0;
        for (int64_t i = 0; i < n; i++) {
            err = fmax(err, fabs((double)got[0][k][i] - got[1][k][i]));
            big = fmax(big, fabs((double)got[1][k][i]));
        }
        CHECK_MSG(big > 0 && err <= REL_TOL * big, "tensor %d differs by %.3g (max %.3g)", k, err, big);
        free(got[0][k]);
        free(got[1][k]);
    }
}

/* A small conv net trained for a few SGD steps, twice from the same seed
 * at the test's thread count: the weights come out bit for bit the same
 * (plans are shared by the two graphs and by same-shaped layers). */
static void train_steps(float *out, int64_t *n_out)
{
    ib_params *p = ib_params_new(11);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){8, 3, 12, 12});
    ib_node *h = ib_relu(g, ib_conv2d(g, x, ib_param(g, "c1.w", 4, (int64_t[]){16, 3, 3, 3}, uni()),
                                      ib_param(g, "c1.b", 1, (int64_t[]){16}, uni()), 1, 1));
    h = ib_relu(g, ib_conv2d(g, h, ib_param(g, "c2.w", 4, (int64_t[]){16, 16, 3, 3}, uni()), NULL, 1, 1));
    h = ib_conv2d(g, h, ib_param(g, "c3.w", 4, (int64_t[]){16, 16, 3, 3}, uni()), NULL, 2, 1);
    h = ib_conv2d(g, h, ib_param(g, "c4.w", 4, (int64_t[]){8, 16, 1, 1}, uni()), NULL, 1, 0);
    ib_node *loss = ib_test_weighted_sum(g, h);
    ib_test_compile_fill(g);
    float *v = ib_params_values(p), *gr = ib_params_grads(p);
    int64_t n = ib_params_total(p);
    for (int step = 0; step < 5; step++) {
        ib_params_zero_grad(p);
        CHECK_OK(ib_graph_forward(g));
        CHECK_OK(ib_graph_backward(g, loss));
        for (int64_t i = 0; i < n; i++)
            v[i] -= 1e-3f * gr[i];
    }
    memcpy(out, v, (size_t)n * sizeof(float));
    *n_out = n;
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_training_repeats(void)
{
    float *a = malloc(8192 * sizeof(float)), *b = malloc(8192 * sizeof(float));
    int64_t na = 0, nb = 0;
    train_steps(a, &na);
    train_steps(b, &nb);
    CHECK_EQ_INT(na, nb);
    CHECK(na > 4000 && na <= 8192);
    CHECK(memcmp(a, b, (size_t)na * sizeof(float)) == 0);
    free(a);
    free(b);
}

int main(void)
{
    IB_RUN(test_paths_agree);
    IB_RUN(test_dnnl_taken);
    IB_RUN(test_dnnl_repeats);
    IB_RUN(test_weights_only);
    IB_RUN(test_training_repeats);
    return ib_test_summary();
}
