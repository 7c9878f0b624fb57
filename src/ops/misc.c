/*
 * misc.c — dropout, stop_gradient and the gated tanh of gated PixelCNN.
 *
 * Dropout draws its mask from the keyed generator (graph seed, node stream,
 * graph step), so a mask is the same whatever the thread count, and a
 * gradient check that pins the step sees one fixed mask.  The mask is kept
 * in the node's scratch from forward to backward.  stop_gradient copies
 * rather than aliasing its input: a view would share the input's gradient
 * buffer, and gradients would flow into it.
 */
#include "../core/internal.h"

#include <math.h>

/* ---- dropout: f[0] = p; i[0] = 1 when the last forward applied the mask;
 * scratch = mask (numel floats: 0 or 1/(1-p)) ---- */
static void dropout_fwd(ib_graph *g, ib_node *n)
{
    const float *x = n->in[0]->value;
    float *y = n->value, *mask = n->scratch;
    float p = (float)n->f[0];
    n->i[0] = g->training && p > 0.0f;
    if (!n->i[0]) {
        memcpy(y, x, (size_t)n->numel * sizeof(float));
        return;
    }
    /* Keep with probability 1-p; p = 1 drops everything (no 1/0 scale). */
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    ib__rng_uniform_range(g->seed, ib__node_stream(n), g->step, ib__random_first(g, n), mask, n->numel);
    IB__PAR_LOOP(n->numel, {
        mask[k] = mask[k] >= p ? scale : 0.0f;
        y[k] = x[k] * mask[k];
    });
}
static void dropout_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *dy = n->grad, *mask = n->scratch;
    float *dx = n->in[0]->grad;
    if (n->i[0])
        IB__PAR_LOOP(n->numel, dx[k] += dy[k] * mask[k]);
    else
        IB__PAR_LOOP(n->numel, dx[k] += dy[k]);
}
static const ib_op op_dropout = {.name = "dropout", .forward = dropout_fwd, .backward = dropout_bwd,
                                 .bwd_reads = IB__READS_NOTHING};

ib_node *ib_dropout(ib_graph *g, ib_node *x, float p)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char xs[96];
    if (x->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "dropout: '%s' %s is not a float tensor", x->name,
                        ib__shape_str(x, xs, sizeof xs));
    if (!(p >= 0.0f && p <= 1.0f))
        return ib__fail(g, IB_ERR_ARG, "dropout of '%s': drop probability %g is outside [0, 1]", x->name, (double)p);
    ib_node *n = ib__node_new(g, &op_dropout, 1, &x, x->ndim, x->shape);
    if (n) {
        n->f[0] = p;
        n->scratch_bytes = (size_t)x->numel * sizeof(float);
        n->random = true;
    }
    return n;
}

/* ---- stop_gradient: y = x, no gradient ---- */
static void stop_gradient_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    memcpy(n->value, n->in[0]->value, (size_t)n->numel * sizeof(float)); /* 4-byte words, either dtype */
}
static const ib_op op_stop_gradient = {.name = "stop_gradient", .forward = stop_gradient_fwd,
                                       .bwd_reads = IB__READS_NOTHING};

ib_node *ib_stop_gradient(ib_graph *g, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    ib_node *n = ib__node_new(g, &op_stop_gradient, 1, &x, x->ndim, x->shape);
    if (n) {
        n->dtype = x->dtype;
        n->no_grad_op = true;
    }
    return n;
}

/* ---- gated tanh: y = tanh(a) sigmoid(b);
 * da = dy sigmoid(b) (1 - tanh(a)^2), db = dy tanh(a) sigmoid(b) (1 - sigmoid(b)) ---- */
static inline float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

static void gated_tanh_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *a = n->in[0]->value, *b = n->in[1]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = tanhf(a[k]) * sigm(b[k]));
}
static void gated_tanh_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *an = n->in[0], *bn = n->in[1];
    const float *a = an->value, *b = bn->value, *dy = n->grad;
    if (an->needs_grad) {
        float *da = an->grad;
        IB__PAR_LOOP(n->numel, {
            float t = tanhf(a[k]);
            da[k] += dy[k] * sigm(b[k]) * (1.0f - t * t);
        });
    }
    if (bn->needs_grad) {
        float *db = bn->grad;
        IB__PAR_LOOP(n->numel, {
            float s = sigm(b[k]);
            db[k] += dy[k] * tanhf(a[k]) * s * (1.0f - s);
        });
    }
}
static const ib_op op_gated_tanh = {.name = "gated_tanh", .forward = gated_tanh_fwd, .backward = gated_tanh_bwd,
                                    .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1)};

ib_node *ib_gated_tanh(ib_graph *g, ib_node *a, ib_node *b)
{
    ib_node *in[2] = {a, b};
    if (!ib__inputs_ok(g, 2, in))
        return NULL;
    char as[96], bs[96];
    if (a->dtype != IB_F32 || b->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "gated_tanh: '%s' and '%s' must both be float tensors", a->name, b->name);
    if (!ib__same_shape(a, b))
        return ib__fail(g, IB_ERR_SHAPE, "gated_tanh: '%s' %s and '%s' %s must have the same shape", a->name,
                        ib__shape_str(a, as, sizeof as), b->name, ib__shape_str(b, bs, sizeof bs));
    return ib__node_new(g, &op_gated_tanh, 2, in, a->ndim, a->shape);
}
