/*
 * elementwise.c — add, sub, mul, div with broadcasting.
 *
 * Shapes are aligned from the right and padded to 4-D; each dim of an
 * operand equals the output's or is 1 (stride 0).  Same-shape operands take
 * a flat vectorised path; broadcast operands accumulate their gradient by
 * walking the output, serially, so the sum over broadcast dims is
 * deterministic.  Same-shape operands may be 4-D activations in the
 * blocked layout (src/core/layout.c): the flat path does not care where an
 * element lies.
 */
#include "../core/internal.h"

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

typedef struct bcast {
    int64_t out[4];      /* output shape, padded to 4-D */
    int64_t sa[4], sb[4]; /* element strides of a and b (0 where broadcast) */
} bcast;

static void pad4(const ib_node *n, int64_t s[4])
{
    int off = 4 - n->ndim;
    for (int d = 0; d < 4; d++)
        s[d] = d < off ? 1 : n->shape[d - off];
}

static void strides_of(const int64_t shape[4], const int64_t out[4], int64_t st[4])
{
    int64_t acc = 1;
    for (int d = 3; d >= 0; d--) {
        st[d] = shape[d] == 1 && out[d] != 1 ? 0 : acc;
        acc *= shape[d];
    }
}

static void make_bcast(const ib_node *n, bcast *b)
{
    int64_t as[4], bs[4];
    pad4(n->in[0], as);
    pad4(n->in[1], bs);
    for (int d = 0; d < 4; d++)
        b->out[d] = as[d] > bs[d] ? as[d] : bs[d];
    strides_of(as, b->out, b->sa);
    strides_of(bs, b->out, b->sb);
}

static inline float apply(int kind, float a, float b)
{
    switch (kind) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    default: return a / b;
    }
}

static void binary_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int kind = (int)n->i[0];
    const float *a = n->in[0]->value, *b = n->in[1]->value;
    float *y = n->value;
    int64_t total = n->numel;
    if (n->in[0]->numel == total && n->in[1]->numel == total) {
#pragma omp parallel for simd schedule(static) if (total > IB_PAR_MIN)
        for (int64_t k = 0; k < total; k++)
            y[k] = apply(kind, a[k], b[k]);
        return;
    }
    bcast bc;
    make_bcast(n, &bc);
    int64_t rows = bc.out[0] * bc.out[1] * bc.out[2], w = bc.out[3];
#pragma omp parallel for schedule(static) if (total > IB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t i2 = r % bc.out[2], i1 = (r / bc.out[2]) % bc.out[1], i0 = r / (bc.out[2] * bc.out[1]);
        const float *pa = a + i0 * bc.sa[0] + i1 * bc.sa[1] + i2 * bc.sa[2];
        const float *pb = b + i0 * bc.sb[0] + i1 * bc.sb[1] + i2 * bc.sb[2];
        float *py = y + r * w;
        for (int64_t k = 0; k < w; k++)
            py[k] = apply(kind, pa[k * bc.sa[3]], pb[k * bc.sb[3]]);
    }
}

/* d(out)/d(operand) times dy, for operand `which` (0 = a, 1 = b). */
static inline float partial(int kind, int which, float a, float b, float dy)
{
    switch (kind) {
    case OP_ADD: return dy;
    case OP_SUB: return which == 0 ? dy : -dy;
    case OP_MUL: return which == 0 ? dy * b : dy * a;
    default: return which == 0 ? dy / b : -dy * a / (b * b);
    }
}

/* add and sub read no operand value (their ib_op says so, and a training
 * graph may have reused the operands' memory): dy or -dy, summed over
 * broadcast dims in the same order as the general loop. */
static void additive_bwd(const ib_node *n, const bcast *bc, int which, float *dx)
{
    int kind = (int)n->i[0];
    const float *dy = n->grad;
    float sign = kind == OP_SUB && which == 1 ? -1.0f : 1.0f; /* sign * dy: exactly dy or -dy */
    int64_t total = n->numel;
    if (n->in[0]->numel == total && n->in[1]->numel == total) {
        IB__GRAD_LOOP(n, which, total, dx, sign * dy[k]);
        return;
    }
    if (ib__grad_assign(n, which)) /* a broadcast input sums many: from zero */
        memset(dx, 0, (size_t)n->in[which]->numel * sizeof(float));
    const int64_t *st = which == 0 ? bc->sa : bc->sb;
    int64_t k = 0;
    for (int64_t i0 = 0; i0 < bc->out[0]; i0++)
        for (int64_t i1 = 0; i1 < bc->out[1]; i1++)
            for (int64_t i2 = 0; i2 < bc->out[2]; i2++)
                for (int64_t i3 = 0; i3 < bc->out[3]; i3++, k++)
                    dx[i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3]] += sign * dy[k];
}

static void binary_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int kind = (int)n->i[0];
    const float *a = n->in[0]->value, *b = n->in[1]->value, *dy = n->grad;
    int64_t total = n->numel;
    bcast bc;
    make_bcast(n, &bc);
    for (int which = 0; which < 2; which++) {
        ib_node *in = n->in[which];
        if (!in->needs_grad)
            continue;
        float *dx = in->grad;
        if (kind == OP_ADD || kind == OP_SUB) {
            additive_bwd(n, &bc, which, dx);
            continue;
        }
        if (n->in[0]->numel == total && n->in[1]->numel == total) {
            IB__GRAD_LOOP(n, which, total, dx, partial(kind, which, a[k], b[k], dy[k]));
            continue;
        }
        if (ib__grad_assign(n, which))
            memset(dx, 0, (size_t)in->numel * sizeof(float));
        const int64_t *st = which == 0 ? bc.sa : bc.sb;
        int64_t k = 0;
        for (int64_t i0 = 0; i0 < bc.out[0]; i0++)
            for (int64_t i1 = 0; i1 < bc.out[1]; i1++)
                for (int64_t i2 = 0; i2 < bc.out[2]; i2++)
                    for (int64_t i3 = 0; i3 < bc.out[3]; i3++, k++) {
                        int64_t ia = i0 * bc.sa[0] + i1 * bc.sa[1] + i2 * bc.sa[2] + i3 * bc.sa[3];
                        int64_t ib = i0 * bc.sb[0] + i1 * bc.sb[1] + i2 * bc.sb[2] + i3 * bc.sb[3];
                        int64_t ix = i0 * st[0] + i1 * st[1] + i2 * st[2] + i3 * st[3];
                        dx[ix] += partial(kind, which, a[ia], b[ib], dy[k]);
                    }
    }
}

/* add and sub may be recomputed in backward (a residual sum under a ReLU) */
static const ib_op op_add = {.name = "add", .forward = binary_fwd, .backward = binary_bwd,
                             .bwd_reads = IB__READS_NOTHING, .recompute = binary_fwd,
                             .grad_assign = IB__ASSIGNS_IN(0) | IB__ASSIGNS_IN(1),
                             .layout = IB__LAYOUT_ELEMENTWISE};
static const ib_op op_sub = {.name = "sub", .forward = binary_fwd, .backward = binary_bwd,
                             .bwd_reads = IB__READS_NOTHING, .recompute = binary_fwd,
                             .grad_assign = IB__ASSIGNS_IN(0) | IB__ASSIGNS_IN(1),
                             .layout = IB__LAYOUT_ELEMENTWISE};
static const ib_op op_mul = {.name = "mul", .forward = binary_fwd, .backward = binary_bwd,
                             .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                             .grad_assign = IB__ASSIGNS_IN(0) | IB__ASSIGNS_IN(1),
                             .layout = IB__LAYOUT_ELEMENTWISE};
static const ib_op op_div = {.name = "div", .forward = binary_fwd, .backward = binary_bwd,
                             .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                             .grad_assign = IB__ASSIGNS_IN(0) | IB__ASSIGNS_IN(1),
                             .layout = IB__LAYOUT_ELEMENTWISE};

static ib_node *binary(ib_graph *g, const ib_op *op, int kind, ib_node *a, ib_node *b)
{
    ib_node *in[2] = {a, b};
    if (!ib__inputs_ok(g, 2, in))
        return NULL;
    if (a->dtype != IB_F32 || b->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "%s: operands must be float tensors ('%s', '%s')", op->name, a->name, b->name);
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[4];
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char s1[64], s2[64];
            return ib__fail(g, IB_ERR_SHAPE, "%s: shapes %s of '%s' and %s of '%s' do not broadcast", op->name,
                            ib__shape_str(a, s1, sizeof s1), a->name, ib__shape_str(b, s2, sizeof s2), b->name);
        }
        shape[d] = sa > sb ? sa : sb;
    }
    ib_node *n = ib__node_new(g, op, 2, in, nd, shape);
    if (n)
        n->i[0] = kind;
    return n;
}

ib_node *ib_add(ib_graph *g, ib_node *a, ib_node *b) { return binary(g, &op_add, OP_ADD, a, b); }
ib_node *ib_sub(ib_graph *g, ib_node *a, ib_node *b) { return binary(g, &op_sub, OP_SUB, a, b); }
ib_node *ib_mul(ib_graph *g, ib_node *a, ib_node *b) { return binary(g, &op_mul, OP_MUL, a, b); }
ib_node *ib_div(ib_graph *g, ib_node *a, ib_node *b) { return binary(g, &op_div, OP_DIV, a, b); }

/* ---- add_relu: y = relu(a + b), same-shape operands (a residual block's
 * output): one pass each way instead of two, the same bits as add then
 * relu (relu's rule: NaN and -0 become +0; the gradient passes where
 * y > 0, from the output, as relu's backward). ---- */
static void add_relu_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *a = n->in[0]->value, *b = n->in[1]->value;
    float *y = n->value;
    IB__PAR_LOOP(n->numel, float t = a[k] + b[k]; y[k] = t > 0.0f ? t : 0.0f);
}

static void add_relu_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    for (int j = 0; j < 2; j++) /* a + a adds twice, as add's backward */
        if (n->in[j]->needs_grad) {
            float *dx = n->in[j]->grad;
            IB__GRAD_LOOP(n, j, n->numel, dx, y[k] > 0.0f ? dy[k] : 0.0f);
        }
}

static const ib_op op_add_relu = {.name = "add_relu", .forward = add_relu_fwd, .backward = add_relu_bwd,
                                  .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT, .recompute = add_relu_fwd,
                                  .grad_assign = IB__ASSIGNS_IN(0) | IB__ASSIGNS_IN(1),
                                  .layout = IB__LAYOUT_ELEMENTWISE};

ib_node *ib_add_relu(ib_graph *g, ib_node *a, ib_node *b)
{
    ib_node *in[2] = {a, b};
    if (!ib__inputs_ok(g, 2, in))
        return NULL;
    if (a->dtype != IB_F32 || b->dtype != IB_F32 || !ib__same_shape(a, b)) {
        char s1[64], s2[64];
        return ib__fail(g, IB_ERR_SHAPE, "add_relu: '%s' %s and '%s' %s must be float tensors of one shape", a->name,
                        ib__shape_str(a, s1, sizeof s1), b->name, ib__shape_str(b, s2, sizeof s2));
    }
    return ib__node_new(g, &op_add_relu, 2, in, a->ndim, a->shape);
}
