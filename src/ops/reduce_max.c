/*
 * reduce_max.c — the max reduction along one axis or over all elements,
 * with a gradient.  The margin losses of the attacks need it (the largest
 * log-probability among the other classes).  The gradient goes to the
 * FIRST maximum only, as ib_argmax and ib_maxpool2d break ties, so a tie
 * never splits or doubles the gradient.  The tensor is seen as
 * (outer, len, inner) around the axis, as in reduce.c; forward records
 * the index of the winner in scratch, and backward reads nothing else.
 */
#include "../core/internal.h"

#include <math.h>

/* i[1] = outer, i[2] = len, i[3] = inner; scratch: (outer * inner) int64 winners */
static void max_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t outer = n->i[1], len = n->i[2], inner = n->i[3];
    const float *x = n->in[0]->value;
    float *y = n->value;
    int64_t *arg = n->scratch;
#pragma omp parallel for schedule(static) if (outer * len * inner > IB_PAR_MIN && outer * inner > 1)
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner;
        const float *p = x + o * len * inner + i;
        int64_t best = 0;
        float m = p[0];
        /* strictly larger replaces: the first maximum wins; a NaN counts
         * as the largest (as ib_argmax), and the first NaN wins */
        for (int64_t k = 1; k < len && !isnan(m); k++) {
            float v = p[k * inner];
            if (v > m || isnan(v)) {
                m = v;
                best = k;
            }
        }
        y[oi] = m;
        arg[oi] = best;
    }
}

static void max_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t outer = n->i[1], len = n->i[2], inner = n->i[3];
    const float *dy = n->grad;
    const int64_t *arg = n->scratch;
    float *dx = n->in[0]->grad;
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner;
        dx[o * len * inner + arg[oi] * inner + i] += dy[oi];
    }
}

static const ib_op op_max = {.name = "max", .forward = max_fwd, .backward = max_bwd,
                             .bwd_reads = IB__READS_NOTHING};

ib_node *ib_max(ib_graph *g, ib_node *x, int axis)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "max: '%s' is not a float tensor", x->name);
    if (x->numel < 1)
        return ib__fail(g, IB_ERR_SHAPE, "max: '%s' is empty", x->name);
    int64_t outer = 1, len, inner = 1, shape[IB_MAX_DIMS];
    int nd = 0;
    if (axis == IB_ALL) {
        len = x->numel;
    } else {
        int a = ib__axis(x, axis);
        if (a < 0)
            return ib__fail(g, IB_ERR_ARG, "max: axis %d is out of range for the %d-D '%s'", axis, x->ndim, x->name);
        if (x->shape[a] < 1)
            return ib__fail(g, IB_ERR_SHAPE, "max: axis %d of '%s' is empty", axis, x->name);
        for (int d = 0; d < a; d++)
            outer *= x->shape[d];
        for (int d = a + 1; d < x->ndim; d++)
            inner *= x->shape[d];
        len = x->shape[a];
        for (int d = 0; d < x->ndim; d++)
            if (d != a)
                shape[nd++] = x->shape[d];
    }
    ib_node *n = ib__node_new(g, &op_max, 1, &x, nd, shape);
    if (n) {
        n->i[1] = outer;
        n->i[2] = len;
        n->i[3] = inner;
        n->scratch_bytes = (size_t)(outer * inner) * sizeof(int64_t);
    }
    return n;
}
