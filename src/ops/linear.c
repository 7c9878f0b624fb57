/*
 * linear.c — matrix products: matmul and the fully connected layer.
 * All the work is GEMM; the layer's backward is two more GEMMs and a
 * column sum for the bias.
 */
#include "../core/internal.h"
#include "../kernels/kernels.h"

/* ---- matmul: y = op(a) op(b) ----  i[0] = trans_a, i[1] = trans_b */
static void matmul_forward(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *a = n->in[0], *b = n->in[1];
    bool ta = n->i[0], tb = n->i[1];
    int64_t m = n->shape[0], p = n->shape[1], k = ta ? a->shape[0] : a->shape[1];
    ib__sgemm(ta, tb, m, p, k, 1.0f, a->value, a->shape[1], b->value, b->shape[1], 0.0f, n->value, p);
}

static void matmul_backward(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *a = n->in[0], *b = n->in[1];
    bool ta = n->i[0], tb = n->i[1];
    int64_t m = n->shape[0], p = n->shape[1], k = ta ? a->shape[0] : a->shape[1];
    if (a->needs_grad) {
        if (!ta) /* dA (m,k) += dY (m,p) op(B)^T */
            ib__sgemm(false, !tb, m, k, p, 1.0f, n->grad, p, b->value, b->shape[1], 1.0f, a->grad, a->shape[1]);
        else /* dA (k,m) += op(B) (k,p) dY^T */
            ib__sgemm(tb, true, k, m, p, 1.0f, b->value, b->shape[1], n->grad, p, 1.0f, a->grad, a->shape[1]);
    }
    if (b->needs_grad) {
        if (!tb) /* dB (k,p) += op(A)^T dY */
            ib__sgemm(!ta, false, k, p, m, 1.0f, a->value, a->shape[1], n->grad, p, 1.0f, b->grad, b->shape[1]);
        else /* dB (p,k) += dY^T op(A) */
            ib__sgemm(true, ta, p, k, m, 1.0f, n->grad, p, a->value, a->shape[1], 1.0f, b->grad, b->shape[1]);
    }
}

static const ib_op op_matmul = {.name = "matmul", .forward = matmul_forward, .backward = matmul_backward,
                                .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1)};

ib_node *ib_matmul(ib_graph *g, ib_node *a, ib_node *b, bool trans_a, bool trans_b)
{
    ib_node *in[2] = {a, b};
    if (!ib__inputs_ok(g, 2, in))
        return NULL;
    if (a->ndim != 2 || b->ndim != 2)
        return ib__fail(g, IB_ERR_SHAPE, "matmul: both operands must be 2-D ('%s' is %d-D, '%s' is %d-D)", a->name,
                        a->ndim, b->name, b->ndim);
    int64_t m = trans_a ? a->shape[1] : a->shape[0], ka = trans_a ? a->shape[0] : a->shape[1];
    int64_t kb = trans_b ? b->shape[1] : b->shape[0], p = trans_b ? b->shape[0] : b->shape[1];
    if (ka != kb)
        return ib__fail(g, IB_ERR_SHAPE, "matmul: inner dimensions differ (%lld vs %lld) for '%s' and '%s'",
                        (long long)ka, (long long)kb, a->name, b->name);
    ib_node *n = ib__node_new(g, &op_matmul, 2, in, 2, (int64_t[]){m, p});
    if (n) {
        n->i[0] = trans_a;
        n->i[1] = trans_b;
    }
    return n;
}

/* ---- linear: y = x W^T + b ---- */
static void linear_forward(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    int64_t batch = x->shape[0], in = x->shape[1], out = w->shape[0];
    float beta = 0.0f;
    if (b) {
        float *y = n->value;
#pragma omp parallel for schedule(static) if (batch * out > IB_PAR_MIN)
        for (int64_t r = 0; r < batch; r++)
            memcpy(y + r * out, b->value, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    ib__sgemm(false, true, batch, out, in, 1.0f, x->value, in, w->value, in, beta, n->value, out);
}

static void linear_backward(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    int64_t batch = x->shape[0], in = x->shape[1], out = w->shape[0];
    const float *dy = n->grad;
    if (x->needs_grad) /* dX (N,in) += dY (N,out) W (out,in); "=" when dX's only writer */
        ib__sgemm(false, false, batch, in, out, 1.0f, dy, out, w->value, in, ib__grad_assign(n, 0) ? 0.0f : 1.0f,
                  x->grad, in);
    if (w->needs_grad) /* dW (out,in) += dY^T X */
        ib__sgemm(true, false, out, in, batch, 1.0f, dy, out, x->value, in, 1.0f, w->grad, in);
    if (b && b->needs_grad) {
        float *db = b->grad;
#pragma omp parallel for schedule(static) if (batch * out > IB_PAR_MIN)
        for (int64_t o = 0; o < out; o++) {
            float s = 0.0f;
            for (int64_t r = 0; r < batch; r++)
                s += dy[r * out + o];
            db[o] += s;
        }
    }
}

static const ib_op op_linear = {.name = "linear", .forward = linear_forward, .backward = linear_backward,
                                .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                                .grad_assign = IB__ASSIGNS_IN(0)};

ib_node *ib_linear(ib_graph *g, ib_node *x, ib_node *w, ib_node *b)
{
    ib_node *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    if (!ib__inputs_ok(g, n_in, in))
        return NULL;
    char sx[64], sw[64];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1])
        return ib__fail(g, IB_ERR_SHAPE, "linear: input '%s' %s does not fit weight '%s' %s (want (N, in) and (out, in))",
                        x->name, ib__shape_str(x, sx, sizeof sx), w->name, ib__shape_str(w, sw, sizeof sw));
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return ib__fail(g, IB_ERR_SHAPE, "linear: bias '%s' must have shape (%lld)", b->name, (long long)w->shape[0]);
    return ib__node_new(g, &op_linear, n_in, in, 2, (int64_t[]){x->shape[0], w->shape[0]});
}
