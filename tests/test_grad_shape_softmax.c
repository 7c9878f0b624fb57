/*
 * test_grad_shape_softmax.c — gradient checks and value tests of the shape
 * ops (reshape views, flatten, concat, slice, pad_channels, repeat), the softmax family
 * (log_softmax, softmax, cross-entropy, softmax entropy, gather, one_hot,
 * argmax) and dropout, stop_gradient and gated tanh.
 *
 * Gradient tolerances: central differences in float32 with eps = 1e-2 carry
 * a truncation error O(eps^2 f''') and a rounding error ~ 6e-8 |loss| / eps,
 * both relative to the largest gradient element.  Measured worst errors are
 * 1e-6 .. 5e-5 on these O(1-10) losses, so TOL = 5e-4 leaves a 10x margin;
 * the cross-entropy losses reach ~100 (a label on a -50 logit), whose
 * rounding alone gives ~3e-4 (4.2e-4 measured), hence TOL_CE = 2e-3.  A
 * wrong sign, index or factor gives errors of order 0.1-1.
 */
#include "test.h"
#include "core/internal.h"

#define TOL 5e-4
#define TOL_CE 2e-3

/* Both views and their sources feed the loss: gradients from the view land
 * in the source's buffer and must add to those of the direct path. */
static void test_grad_reshape_alias(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){3, 4}), true);
    ib_node *w = ib_param(g, "w", 1, (int64_t[]){6}, (ib_init){IB_INIT_UNIFORM, -1, 1});
    ib_node *t = ib_tanh(g, x);                                   /* an op owning its buffers */
    ib_node *v = ib_reshape(g, t, 3, (int64_t[]){2, -1, 3});      /* (2, 2, 3) */
    ib_node *vv = ib_reshape(g, v, 1, (int64_t[]){12});           /* a view of a view */
    ib_node *xv = ib_flatten(g, ib_reshape(g, x, 3, (int64_t[]){3, 2, 2})); /* views of an input */
    ib_node *wv = ib_reshape(g, w, 2, (int64_t[]){3, 2});         /* a view of a parameter */
    ib_node *loss = ib_add(g, ib_test_weighted_sum(g, ib_square(g, t)), ib_test_weighted_sum(g, v));
    loss = ib_add(g, loss, ib_test_weighted_sum(g, ib_square(g, vv)));
    loss = ib_add(g, loss, ib_test_weighted_sum(g, ib_mul(g, xv, x)));
    loss = ib_add(g, loss, ib_test_weighted_sum(g, ib_mul(g, wv, ib_exp(g, wv))));
    /* The loss itself may be a view: backward seeds the source's gradient. */
    ib_node *loss_view = ib_reshape(g, loss, 2, (int64_t[]){1, 1});
    CHECK(v->view_of == t && vv->view_of == t && wv->view_of == w);
    CHECK_EQ_INT(ib_node_dim(v, 1), 2);
    CHECK_EQ_INT(ib_node_ndim(xv), 2);
    CHECK_EQ_INT(ib_node_dim(xv, 1), 4);
    ib_test_compile_fill(g);
    CHECK(ib_node_data(v) == ib_node_data(t) && ib_node_grad(vv) == ib_node_grad(t));
    CHECK(ib_node_data(wv) == ib_params_value(p, 0));
    ib_test_gradcheck(g, loss, 2, (ib_node *[]){x, w}, 1e-2f, TOL);
    ib_test_gradcheck(g, loss_view, 2, (ib_node *[]){x, w}, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_concat(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *a = ib_node_set_requires_grad(ib_input(g, "a", 2, (int64_t[]){2, 3}), true);
    ib_node *b = ib_node_set_requires_grad(ib_input(g, "b", 2, (int64_t[]){4, 3}), true);
    ib_node *c = ib_node_set_requires_grad(ib_input(g, "c", 2, (int64_t[]){2, 5}), true);
    ib_node *d = ib_node_set_requires_grad(ib_input(g, "d", 4, (int64_t[]){2, 3, 2, 2}), true);
    ib_node *e = ib_node_set_requires_grad(ib_input(g, "e", 4, (int64_t[]){2, 1, 2, 2}), true);
    ib_node *c0 = ib_concat(g, 2, (ib_node *[]){a, b}, 0);        /* (6, 3) */
    ib_node *c1 = ib_concat(g, 3, (ib_node *[]){a, c, a}, 1);     /* (2, 11), a used twice */
    ib_node *c4 = ib_concat(g, 3, (ib_node *[]){e, d, e}, 1);     /* (2, 5, 2, 2) channels */
    ib_node *cl = ib_concat(g, 2, (ib_node *[]){d, d}, -1);       /* (2, 3, 2, 4) */
    CHECK_EQ_INT(ib_node_dim(c0, 0), 6);
    CHECK_EQ_INT(ib_node_dim(c1, 1), 11);
    CHECK_EQ_INT(ib_node_dim(c4, 1), 5);
    CHECK_EQ_INT(ib_node_dim(cl, 3), 4);
    ib_node *loss = ib_add(g, ib_test_weighted_sum(g, c0), ib_test_weighted_sum(g, ib_square(g, c1)));
    loss = ib_add(g, loss, ib_test_weighted_sum(g, ib_square(g, c4)));
    loss = ib_add(g, loss, ib_test_weighted_sum(g, cl));
    ib_test_compile_fill(g);
    ib_graph_forward(g);
    /* values: channel 1..3 of c4 are d's channels, 0 and 4 are e's */
    const float *dv = ib_node_data(d), *ev = ib_node_data(e), *yv = ib_node_data(c4);
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 4; k++) {
            CHECK(yv[(n * 5 + 0) * 4 + k] == ev[n * 4 + k]);
            CHECK(yv[(n * 5 + 4) * 4 + k] == ev[n * 4 + k]);
            for (int ch = 0; ch < 3; ch++)
                CHECK(yv[(n * 5 + 1 + ch) * 4 + k] == dv[(n * 3 + ch) * 4 + k]);
        }
    const float *av = ib_node_data(a), *cv = ib_node_data(c), *y1 = ib_node_data(c1);
    CHECK(y1[0] == av[0] && y1[3] == cv[0] && y1[8] == av[0] && y1[11 + 10] == av[5]);
    ib_test_gradcheck(g, loss, 5, (ib_node *[]){a, b, c, d, e}, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

/* Zero channels on both sides: values, and the gradient of what passes. */
static void test_grad_pad_channels(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 3, 2, 3}), true);
    ib_node *y = ib_pad_channels(g, x, 2, 1);  /* (2, 6, 2, 3) */
    ib_node *y0 = ib_pad_channels(g, x, 0, 0); /* a copy */
    CHECK_EQ_INT(ib_node_dim(y, 1), 6);
    CHECK(ib_pad_channels(g, x, -1, 0) == NULL);
    ib_graph_free(g);
    g = ib_graph_new(p);
    x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){2, 3, 2, 3}), true);
    y = ib_pad_channels(g, x, 2, 1);
    y0 = ib_pad_channels(g, x, 0, 0);
    ib_node *loss = ib_add(g, ib_test_weighted_sum(g, ib_square(g, y)), ib_test_weighted_sum(g, y0));
    ib_test_compile_fill(g);
    ib_graph_forward(g);
    const float *xv = ib_node_data(x), *yv = ib_node_data(y), *y0v = ib_node_data(y0);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 6; c++)
            for (int q = 0; q < 6; q++) {
                float want = c >= 2 && c < 5 ? xv[(n * 3 + c - 2) * 6 + q] : 0.0f;
                CHECK(yv[(n * 6 + c) * 6 + q] == want);
            }
    CHECK(memcmp(y0v, xv, 36 * sizeof(float)) == 0);
    ib_test_gradcheck(g, loss, 1, (ib_node *[]){x}, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_slice(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 3, (int64_t[]){3, 7, 2}), true);
    ib_node *s1 = ib_slice(g, x, 1, 2, 3); /* (3, 3, 2) */
    ib_node *s0 = ib_slice(g, x, 0, 1, 2); /* (2, 7, 2) */
    ib_node *sl = ib_slice(g, x, -1, 1, 1); /* (3, 7, 1) */
    CHECK_EQ_INT(ib_node_dim(s1, 1), 3);
    CHECK_EQ_INT(ib_node_dim(s0, 0), 2);
    CHECK_EQ_INT(ib_node_dim(sl, 2), 1);
    ib_node *loss = ib_add(g, ib_test_weighted_sum(g, ib_square(g, s1)), ib_test_weighted_sum(g, s0));
    loss = ib_add(g, loss, ib_test_weighted_sum(g, ib_exp(g, sl)));
    ib_test_compile_fill(g);
    ib_graph_forward(g);
    const float *xv = ib_node_data(x), *y = ib_node_data(s1);
    for (int n = 0; n < 3; n++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                CHECK(y[(n * 3 + j) * 2 + k] == xv[(n * 7 + 2 + j) * 2 + k]);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_repeat(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 3, (int64_t[]){3, 2, 2}), true);
    ib_node *y = ib_repeat(g, x, 4);
    CHECK_EQ_INT(ib_node_dim(y, 0), 12);
    ib_node *loss = ib_test_weighted_sum(g, ib_square(g, y));
    ib_test_compile_fill(g);
    ib_graph_forward(g);
    const float *xv = ib_node_data(x), *yv = ib_node_data(y);
    for (int r = 0; r < 12; r++)
        for (int k = 0; k < 4; k++)
            CHECK(yv[r * 4 + k] == xv[(r / 4) * 4 + k]);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

/* Int32 labels pass through concat, slice, repeat and reshape unchanged
 * (particles: each label repeated m times). */
static void test_label_shapes(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *l = ib_input_labels(g, "l", 3);
    ib_node *r = ib_repeat(g, l, 2);
    ib_node *c = ib_concat(g, 2, (ib_node *[]){l, r}, 0);
    ib_node *s = ib_slice(g, c, 0, 2, 4);
    ib_node *v = ib_reshape(g, s, 2, (int64_t[]){2, 2});
    ib_test_compile_fill(g);
    CHECK(ib_node_dtype(r) == IB_I32 && ib_node_dtype(c) == IB_I32 && ib_node_dtype(v) == IB_I32);
    CHECK(ib_node_grad(r) == NULL && ib_node_grad(c) == NULL);
    int32_t *lv = ib_node_labels(l);
    lv[0] = 7, lv[1] = 8, lv[2] = 9;
    CHECK_OK(ib_graph_forward(g));
    const int32_t want_r[6] = {7, 7, 8, 8, 9, 9}, want_s[4] = {9, 7, 7, 8};
    CHECK(memcmp(ib_node_labels(r), want_r, sizeof want_r) == 0);
    CHECK(memcmp(ib_node_labels(v), want_s, sizeof want_s) == 0);
    ib_graph_free(g);
    ib_params_free(p);
}

/* Rows of moderate logits, and one row with +-50 (saturated softmax). */
static void fill_logits(ib_node *x, bool big_row)
{
    float *v = ib_node_data(x);
    int64_t n = ib_node_numel(x), C = ib_node_dim(x, 1);
    for (int64_t k = 0; k < n; k++)
        v[k] *= 3.0f;
    if (big_row) {
        v[0] = 50.0f;
        v[1] = -50.0f;
        v[C - 1] = 48.5f;
    }
}

typedef ib_node *(*row_op)(ib_graph *, ib_node *);

static void grad_row_op(row_op op, bool big_row)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){4, 6}), true);
    ib_node *loss = ib_test_weighted_sum(g, op(g, x));
    ib_test_compile_fill(g);
    fill_logits(x, big_row);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_log_softmax(void)
{
    grad_row_op(ib_log_softmax, false);
    grad_row_op(ib_log_softmax, true);
}
static void test_grad_softmax(void)
{
    grad_row_op(ib_softmax, false);
    grad_row_op(ib_softmax, true);
}
static void test_grad_softmax_entropy(void)
{
    grad_row_op(ib_softmax_entropy, false);
    grad_row_op(ib_softmax_entropy, true);
}

static void grad_cross_entropy(float smoothing)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){5, 4}), true);
    ib_node *l = ib_input_labels(g, "l", 5);
    /* scaled by 5 so the gradient (p - t)/N is O(1) against the float32 differences */
    ib_node *loss = ib_scale(g, ib_cross_entropy(g, x, l, smoothing), 5.0f);
    ib_test_compile_fill(g);
    fill_logits(x, true);
    int32_t *lv = ib_node_labels(l);
    const int32_t labels[5] = {1, 3, 0, 2, 3}; /* row 0 has its label on the -50 logit */
    memcpy(lv, labels, sizeof labels);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL_CE);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_cross_entropy(void)
{
    grad_cross_entropy(0.0f);
    grad_cross_entropy(0.1f);
}

/* Out-of-range labels: the row gives 0 loss and 0 gradient, the mean still
 * divides by N; the other rows are exactly as with valid labels alone. */
static void test_cross_entropy_bad_labels(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){3, 4}), true);
    ib_node *l = ib_input_labels(g, "l", 3);
    ib_node *ce = ib_cross_entropy(g, x, l, 0.2f);
    ib_node *ga = ib_gather(g, x, l);
    ib_test_compile_fill(g);
    const float *xv = ib_node_data(x);
    int32_t *lv = ib_node_labels(l);
    lv[0] = 2, lv[1] = -1, lv[2] = 4;
    CHECK_OK(ib_graph_forward(g));
    double lse = 0, sx = 0;
    for (int c = 0; c < 4; c++) {
        lse += exp(xv[c]);
        sx += xv[c];
    }
    lse = log(lse);
    double row0 = 0.8 * (lse - xv[2]) + 0.2 * (lse - sx / 4);
    /* one row of 4 logits in double: agreement to float rounding */
    CHECK_CLOSE(ib_node_scalar(ce), row0 / 3.0, 1e-6, 0);
    CHECK(ib_node_data(ga)[0] == xv[2] && ib_node_data(ga)[1] == 0.0f && ib_node_data(ga)[2] == 0.0f);
    CHECK_OK(ib_graph_backward(g, ce));
    const float *dx = ib_node_grad(x);
    for (int k = 4; k < 12; k++)
        CHECK(dx[k] == 0.0f);
    double gsum = 0;
    for (int k = 0; k < 4; k++)
        gsum += dx[k];
    CHECK_NEAR(gsum, 0.0, 1e-7); /* softmax - target sums to 0 per row */
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_gather(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){4, 5}), true);
    ib_node *l = ib_input_labels(g, "l", 4);
    ib_node *y = ib_gather(g, x, l);
    ib_node *loss = ib_test_weighted_sum(g, ib_square(g, y));
    ib_test_compile_fill(g);
    int32_t *lv = ib_node_labels(l);
    lv[0] = 4, lv[1] = 0, lv[2] = 2, lv[3] = 2;
    CHECK_OK(ib_graph_forward(g));
    const float *xv = ib_node_data(x);
    for (int i = 0; i < 4; i++)
        CHECK(ib_node_data(y)[i] == xv[i * 5 + lv[i]]);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_one_hot_argmax(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *l = ib_input_labels(g, "l", 5);
    ib_node *oh = ib_one_hot(g, l, 4);
    ib_node *x = ib_input(g, "x", 2, (int64_t[]){4, 3});
    ib_node *am = ib_argmax(g, x);
    ib_node *oh2 = ib_one_hot(g, am, 3);
    CHECK(ib_node_dtype(am) == IB_I32);
    ib_test_compile_fill(g);
    CHECK(ib_node_grad(am) == NULL); /* int32: no gradient buffer */
    int32_t *lv = ib_node_labels(l);
    const int32_t labels[5] = {2, 0, -1, 4, 3};
    memcpy(lv, labels, sizeof labels);
    float *xv = ib_node_data(x);
    const float xs[12] = {1, 3, 2, /* */ 5, 5, -1, /* tie: first */ -3, -2, -1, /* */ 0, NAN, 7};
    memcpy(xv, xs, sizeof xs);
    CHECK_OK(ib_graph_forward(g));
    const float *o = ib_node_data(oh);
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 4; c++)
            CHECK(o[i * 4 + c] == (c == labels[i] ? 1.0f : 0.0f));
    const int32_t want[4] = {1, 0, 2, 1}; /* NaN counts as the maximum, as in PyTorch */
    CHECK(memcmp(ib_node_labels(am), want, sizeof want) == 0);
    const float *o2 = ib_node_data(oh2);
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            CHECK(o2[i * 3 + c] == (c == want[i] ? 1.0f : 0.0f));
    ib_test_exact_checked(oh);
    ib_test_exact_checked(am);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_dropout_training(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){8, 16}), true);
    ib_node *y = ib_dropout(g, x, 0.3f);
    ib_node *loss = ib_test_weighted_sum(g, ib_square(g, y));
    ib_test_compile_fill(g);
    ib_graph_set_seed(g, 11);
    ib_graph_set_step(g, 5);
    CHECK_OK(ib_graph_forward(g));
    int zeros = 0;
    for (int k = 0; k < 128; k++)
        zeros += ib_node_data(y)[k] == 0.0f;
    CHECK(zeros > 10 && zeros < 70); /* the mask is really active (expect ~38) */
    ib_graph_set_step(g, 5);
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_dropout_statistics(void)
{
    const int64_t n = 100000;
    const float prob = 0.3f;
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){n / 100, 100}), true);
    ib_node *y = ib_dropout(g, x, prob);
    ib_node *loss = ib_sum(g, y, IB_ALL);
    ib_test_compile_fill(g);
    float *xv = ib_node_data(x);
    for (int64_t k = 0; k < n; k++)
        xv[k] = 1.0f;
    ib_graph_set_seed(g, 99);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    CHECK_EQ_INT(ib_graph_step(g), 8);
    const float *yv = ib_node_data(y);
    float *first = malloc((size_t)n * sizeof(float));
    memcpy(first, yv, (size_t)n * sizeof(float));
    int64_t kept = 0;
    const float scale = 1.0f / (1.0f - prob);
    for (int64_t k = 0; k < n; k++) {
        CHECK(yv[k] == 0.0f || yv[k] == scale);
        kept += yv[k] != 0.0f;
    }
    /* binomial: sd of the kept fraction = sqrt(p(1-p)/n) = 0.00145; 4 sd */
    CHECK_NEAR((double)kept / (double)n, 1.0 - prob, 0.0058);
    /* backward uses the forward's mask: d(sum y)/dx = mask */
    CHECK_OK(ib_graph_backward(g, loss));
    CHECK(memcmp(ib_node_grad(x), yv, (size_t)n * sizeof(float)) == 0);
    /* same seed and step: the same mask; another step or seed: another */
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(first, yv, (size_t)n * sizeof(float)) == 0);
    CHECK_OK(ib_graph_forward(g)); /* step 8 */
    CHECK(memcmp(first, yv, (size_t)n * sizeof(float)) != 0);
    ib_graph_set_seed(g, 100);
    ib_graph_set_step(g, 7);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(first, yv, (size_t)n * sizeof(float)) != 0);
    /* eval: identity forward and backward */
    ib_graph_set_training(g, false);
    ib_test_fill(xv, n, -1.0f, 1.0f, 5);
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(xv, yv, (size_t)n * sizeof(float)) == 0);
    CHECK_OK(ib_graph_backward(g, loss));
    for (int64_t k = 0; k < n; k++)
        CHECK(ib_node_grad(x)[k] == 1.0f);
    free(first);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_stop_gradient(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){3, 5}), true);
    ib_node *s = ib_stop_gradient(g, x);
    ib_node *only = ib_test_weighted_sum(g, s);            /* d/dx = 0 */
    ib_node *r = ib_input(g, "r", 2, (int64_t[]){3, 5});
    ib_node *mixed = ib_sum(g, ib_mul(g, ib_mul(g, s, x), r), IB_ALL); /* d/dx = s r, not 2 x r */
    ib_test_compile_fill(g);
    CHECK(ib_node_data(s) != ib_node_data(x)); /* a copy, not a view */
    CHECK_OK(ib_graph_forward(g));
    CHECK(memcmp(ib_node_data(s), ib_node_data(x), 15 * sizeof(float)) == 0);
    CHECK_OK(ib_graph_backward(g, only));
    for (int k = 0; k < 15; k++)
        CHECK(ib_node_grad(x)[k] == 0.0f);
    CHECK_OK(ib_graph_backward(g, mixed));
    const float *xv = ib_node_data(x), *rv = ib_node_data(r);
    for (int k = 0; k < 15; k++)
        CHECK(ib_node_grad(x)[k] == xv[k] * rv[k]);
    ib_test_exact_checked(s);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_gated_tanh(void)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *a = ib_node_set_requires_grad(ib_input(g, "a", 4, (int64_t[]){2, 3, 2, 2}), true);
    ib_node *b = ib_node_set_requires_grad(ib_input(g, "b", 4, (int64_t[]){2, 3, 2, 2}), true);
    ib_node *y = ib_gated_tanh(g, a, b);
    ib_node *loss = ib_test_weighted_sum(g, y);
    ib_test_compile_fill(g);
    float *av = ib_node_data(a), *bv = ib_node_data(b);
    for (int k = 0; k < 24; k++) {
        av[k] *= 2.0f;
        bv[k] *= 3.0f;
    }
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 24; k++)
        CHECK_CLOSE(ib_node_data(y)[k], tanh(av[k]) / (1.0 + exp(-bv[k])), 1e-6, 1e-7);
    ib_test_gradcheck(g, loss, 2, (ib_node *[]){a, b}, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

/* Build errors name the op, the node and the shapes. */
static void expect_error(ib_graph *g, ib_node *n, ib_status s, const char *w1, const char *w2)
{
    CHECK(n == NULL);
    CHECK_MSG(ib_graph_status(g) == s, "status %d, want %d (%s)", (int)ib_graph_status(g), (int)s,
              ib_graph_error(g));
    CHECK_MSG(strstr(ib_graph_error(g), w1) && strstr(ib_graph_error(g), w2), "error '%s' lacks '%s' or '%s'",
              ib_graph_error(g), w1, w2);
}

static void test_shape_errors(void)
{
    ib_params *p = ib_params_new(3);
    struct {
        int which;
        ib_status s;
        const char *w1, *w2;
    } cases[] = {
        {0, IB_ERR_SHAPE, "reshape of 'x' (3, 4)", "shape of 14 elements"},
        {1, IB_ERR_SHAPE, "concat along axis 1", "'y' (2, 4)"},
        {2, IB_ERR_SHAPE, "slice", "'x' (3, 4)"},
        {3, IB_ERR_SHAPE, "cross_entropy", "'l' (2)"},
        {4, IB_ERR_SHAPE, "argmax", "'z' is (2, 3, 4)"},
        {5, IB_ERR_ARG, "gather", "int32"},
        {6, IB_ERR_ARG, "dropout", "outside [0, 1]"},
        {7, IB_ERR_SHAPE, "gated_tanh", "'y' (2, 4)"},
        {8, IB_ERR_ARG, "concat: axis 2", "'x' (3, 4)"},
        {9, IB_ERR_SHAPE, "reshape of 'x' (3, 4)", "not a multiple of 5"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_input(g, "x", 2, (int64_t[]){3, 4});
        ib_node *y = ib_input(g, "y", 2, (int64_t[]){2, 4});
        ib_node *z = ib_input(g, "z", 3, (int64_t[]){2, 3, 4});
        ib_node *l = ib_input_labels(g, "l", 2);
        ib_node *n = NULL;
        switch (cases[c].which) {
        case 0: n = ib_reshape(g, x, 2, (int64_t[]){2, 7}); break;
        case 1: n = ib_concat(g, 2, (ib_node *[]){x, y}, 1); break;
        case 2: n = ib_slice(g, x, 1, 2, 3); break;
        case 3: n = ib_cross_entropy(g, x, l, 0.0f); break;
        case 4: n = ib_argmax(g, z); break;
        case 5: n = ib_gather(g, y, y); break;
        case 6: n = ib_dropout(g, x, 1.5f); break;
        case 7: n = ib_gated_tanh(g, x, y); break;
        case 8: n = ib_concat(g, 2, (ib_node *[]){x, x}, 2); break;
        case 9: n = ib_reshape(g, x, 2, (int64_t[]){-1, 5}); break;
        }
        expect_error(g, n, cases[c].s, cases[c].w1, cases[c].w2);
        ib_graph_free(g);
    }
    ib_params_free(p);
}

/* Big enough to take the threaded paths: results and gradients must be
 * bitwise the same with 1 and 2 threads. */
static void run_big(int threads, float **out, size_t *bytes)
{
    ib_set_threads(threads);
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    const int64_t N = 512, C = 100;
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 2, (int64_t[]){N, C}), true);
    ib_node *l = ib_input_labels(g, "l", N);
    ib_node *r = ib_repeat(g, x, 3);
    ib_node *cat = ib_concat(g, 2, (ib_node *[]){r, ib_slice(g, r, 1, 10, 50)}, 1);
    ib_node *ls = ib_log_softmax(g, cat);
    ib_node *sm = ib_softmax(g, cat);
    ib_node *h = ib_softmax_entropy(g, ib_dropout(g, cat, 0.2f));
    ib_node *ce = ib_cross_entropy(g, x, l, 0.1f);
    ib_node *loss = ib_add(g, ib_add(g, ib_test_weighted_sum(g, ls), ib_test_weighted_sum(g, sm)),
                           ib_add(g, ib_test_weighted_sum(g, h), ce));
    ib_test_compile_fill(g);
    for (int64_t i = 0; i < N; i++)
        ib_node_labels(l)[i] = (int32_t)(i % C);
    CHECK_OK(ib_graph_forward(g));
    CHECK_OK(ib_graph_backward(g, loss));
    int64_t n1 = ib_node_numel(ls), n2 = ib_node_numel(h), n3 = ib_node_numel(x);
    *bytes = (size_t)(2 * n1 + n2 + n3 + 1) * sizeof(float);
    *out = malloc(*bytes);
    memcpy(*out, ib_node_data(ls), (size_t)n1 * sizeof(float));
    memcpy(*out + n1, ib_node_data(sm), (size_t)n1 * sizeof(float));
    memcpy(*out + 2 * n1, ib_node_data(h), (size_t)n2 * sizeof(float));
    memcpy(*out + 2 * n1 + n2, ib_node_grad(x), (size_t)n3 * sizeof(float));
    (*out)[2 * n1 + n2 + n3] = ib_node_scalar(loss);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_thread_count_invariance(void)
{
    int saved = ib_get_threads();
    float *a, *b;
    size_t na, nb;
    run_big(1, &a, &na);
    run_big(2, &b, &nb);
    ib_set_threads(saved);
    CHECK(na == nb);
    int same = memcmp(a, b, na) == 0;
    free(a);
    free(b);
    CHECK(same);
}

int main(void)
{
    IB_RUN(test_grad_reshape_alias);
    IB_RUN(test_grad_concat);
    IB_RUN(test_grad_slice);
    IB_RUN(test_grad_pad_channels);
    IB_RUN(test_grad_repeat);
    IB_RUN(test_label_shapes);
    IB_RUN(test_grad_log_softmax);
    IB_RUN(test_grad_softmax);
    IB_RUN(test_grad_softmax_entropy);
    IB_RUN(test_grad_cross_entropy);
    IB_RUN(test_cross_entropy_bad_labels);
    IB_RUN(test_grad_gather);
    IB_RUN(test_one_hot_argmax);
    IB_RUN(test_grad_dropout_training);
    IB_RUN(test_dropout_statistics);
    IB_RUN(test_stop_gradient);
    IB_RUN(test_grad_gated_tanh);
    IB_RUN(test_shape_errors);
    IB_RUN(test_thread_count_invariance);
    return ib_test_summary();
}
