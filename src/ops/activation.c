/*
 * activation.c — elementwise unary ops: y = f(x), dx += f'(x) dy.
 * Each op is one forward loop and one backward loop; the derivative is
 * written from whichever of x or y makes it cheapest and stable.
 * softplus (sigma of every VIB layer) runs the backend's vectorised loops
 * (kernels.h; libm's exp and log1p are scalar calls).  No op here cares
 * where an element lies, so each runs on activations in the blocked layout
 * as they are (IB__LAYOUT_ELEMENTWISE, src/core/layout.c).
 */
#include "../core/internal.h"
#include "../kernels/kernels.h"

#include <math.h>

/* Shared constructor: same shape out as in. */
static ib_node *unary(ib_graph *g, const ib_op *op, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "%s: input '%s' is not a float tensor", op->name, x->name);
    return ib__node_new(g, op, 1, &x, x->ndim, x->shape);
}

/* ---- relu ---- */
static void relu_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = x[k] > 0.0f ? x[k] : 0.0f);
}
/* From the output (y > 0 exactly where x > 0, NaN included): the input,
 * often a batch norm's output read by nothing else, can then be reused. */
static void relu_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__GRAD_LOOP(n, 0, n->numel, dx, y[k] > 0.0f ? dy[k] : 0.0f);
}
/* Recomputable: forward is pure and one pass (ib_graph_set_recompute). */
static const ib_op op_relu = {.name = "relu", .forward = relu_fwd, .backward = relu_bwd,
                              .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT, .recompute = relu_fwd,
                              .grad_assign = IB__ASSIGNS_IN(0), .grad_in_place = true,
                              .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_relu(ib_graph *g, ib_node *x) { return unary(g, &op_relu, x); }

/* ---- leaky relu: f[0] = slope ---- */
static void leaky_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value, s = (float)n->f[0];
    IB__PAR_LOOP(n->numel, y[k] = x[k] > 0.0f ? x[k] : s * x[k]);
}
static void leaky_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value, *dy = n->grad;
    float *dx = n->in[0]->grad, s = (float)n->f[0];
    IB__PAR_LOOP(n->numel, dx[k] += x[k] > 0.0f ? dy[k] : s * dy[k]);
}
static const ib_op op_leaky = {.name = "leaky_relu", .forward = leaky_fwd, .backward = leaky_bwd,
                               .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0),
                               .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_leaky_relu(ib_graph *g, ib_node *x, float slope)
{
    ib_node *n = unary(g, &op_leaky, x);
    if (n)
        n->f[0] = slope;
    return n;
}

/* ---- softplus(x + shift) = max(t,0) + log1p(exp(-|t|)); derivative sigmoid(t) ---- */
static void softplus_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value, sh = (float)n->f[0];
    ib__softplus_forward(x, sh, y, n->numel);
}
/* From the output: sigma is read by the KL and the sample anyway, while
 * the input (a conv's rho map in a VIB cell) can then die after forward. */
static void softplus_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__softplus_backward(n->value, n->grad, n->in[0]->grad, n->numel);
}
static const ib_op op_softplus = {.name = "softplus", .forward = softplus_fwd, .backward = softplus_bwd,
                                  .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT,
                                  .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_softplus(ib_graph *g, ib_node *x, float shift)
{
    ib_node *n = unary(g, &op_softplus, x);
    if (n)
        n->f[0] = shift;
    return n;
}

/* ---- sigmoid: dy/dx = y (1 - y) ---- */
static void sigmoid_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = 1.0f / (1.0f + expf(-x[k])));
}
static void sigmoid_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__PAR_LOOP(n->numel, dx[k] += dy[k] * y[k] * (1.0f - y[k]));
}
static const ib_op op_sigmoid = {.name = "sigmoid", .forward = sigmoid_fwd, .backward = sigmoid_bwd,
                                 .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT,
                                 .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_sigmoid(ib_graph *g, ib_node *x) { return unary(g, &op_sigmoid, x); }

/* ---- tanh: dy/dx = 1 - y^2 ---- */
static void tanh_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = tanhf(x[k]));
}
static void tanh_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__PAR_LOOP(n->numel, dx[k] += dy[k] * (1.0f - y[k] * y[k]));
}
static const ib_op op_tanh = {.name = "tanh", .forward = tanh_fwd, .backward = tanh_bwd,
                              .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT,
                              .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_tanh(ib_graph *g, ib_node *x) { return unary(g, &op_tanh, x); }

/* ---- exp: dy/dx = y ---- */
static void exp_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = expf(x[k]));
}
static void exp_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__PAR_LOOP(n->numel, dx[k] += dy[k] * y[k]);
}
static const ib_op op_exp = {.name = "exp", .forward = exp_fwd, .backward = exp_bwd,
                             .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT,
                             .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_exp(ib_graph *g, ib_node *x) { return unary(g, &op_exp, x); }

/* ---- log: dy/dx = 1/x ---- */
static void log_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = logf(x[k]));
}
static void log_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__PAR_LOOP(n->numel, dx[k] += dy[k] / x[k]);
}
static const ib_op op_log = {.name = "log", .forward = log_fwd, .backward = log_bwd,
                             .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0),
                             .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_log(ib_graph *g, ib_node *x) { return unary(g, &op_log, x); }

/* ---- square: dy/dx = 2x ---- */
static void square_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = x[k] * x[k]);
}
static void square_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__PAR_LOOP(n->numel, dx[k] += 2.0f * x[k] * dy[k]);
}
static const ib_op op_square = {.name = "square", .forward = square_fwd, .backward = square_bwd,
                                .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0),
                                .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_square(ib_graph *g, ib_node *x) { return unary(g, &op_square, x); }

/* ---- sqrt: dy/dx = 1/(2y) ---- */
static void sqrt_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, y[k] = sqrtf(x[k]));
}
static void sqrt_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    IB__PAR_LOOP(n->numel, dx[k] += 0.5f * dy[k] / y[k]);
}
static const ib_op op_sqrt = {.name = "sqrt", .forward = sqrt_fwd, .backward = sqrt_bwd,
                              .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT,
                              .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_sqrt(ib_graph *g, ib_node *x) { return unary(g, &op_sqrt, x); }

/* ---- affine: y = alpha x + beta; f[0] = alpha, f[1] = beta ---- */
static void affine_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *x = n->in[0]->value;
    float *y = n->value, a = (float)n->f[0], b = (float)n->f[1];
    IB__PAR_LOOP(n->numel, y[k] = a * x[k] + b);
}
static void affine_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *dy = n->grad;
    float *dx = n->in[0]->grad, a = (float)n->f[0];
    IB__PAR_LOOP(n->numel, dx[k] += a * dy[k]);
}
static const ib_op op_affine = {.name = "affine", .forward = affine_fwd, .backward = affine_bwd,
                                .bwd_reads = IB__READS_NOTHING, .recompute = affine_fwd,
                                .layout = IB__LAYOUT_ELEMENTWISE};
ib_node *ib_affine(ib_graph *g, ib_node *x, float alpha, float beta)
{
    ib_node *n = unary(g, &op_affine, x);
    if (n) {
        n->f[0] = alpha;
        n->f[1] = beta;
    }
    return n;
}
ib_node *ib_scale(ib_graph *g, ib_node *x, float alpha) { return ib_affine(g, x, alpha, 0.0f); }
