/*
 * reduce.c — sum, mean, logsumexp and log-mean-exp along one axis or over
 * all elements.  A tensor is seen as (outer, len, inner) around the reduced
 * axis; the output is (outer, inner).  Sums accumulate in double in a fixed
 * order, so results do not depend on the thread count.
 */
#include "../core/internal.h"

#include <math.h>

enum { RED_SUM, RED_MEAN, RED_LSE, RED_LME };

/* i[0] = kind, i[1] = outer, i[2] = len, i[3] = inner */
static void reduce_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int kind = (int)n->i[0];
    int64_t outer = n->i[1], len = n->i[2], inner = n->i[3];
    const float *x = n->in[0]->value;
    float *y = n->value;
#pragma omp parallel for schedule(static) if (outer * len * inner > IB_PAR_MIN && outer * inner > 1)
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner;
        const float *p = x + o * len * inner + i;
        if (kind == RED_SUM || kind == RED_MEAN) {
            double s = 0;
            for (int64_t k = 0; k < len; k++)
                s += p[k * inner];
            y[oi] = (float)(kind == RED_MEAN ? s / (double)len : s);
        } else {
            float m = -INFINITY;
            for (int64_t k = 0; k < len; k++)
                m = fmaxf(m, p[k * inner]);
            double s = 0;
            for (int64_t k = 0; k < len; k++)
                s += exp((double)(p[k * inner] - m));
            double r = (double)m + log(s);
            if (kind == RED_LME)
                r -= log((double)len);
            y[oi] = isinf(m) ? m : (float)r;
        }
    }
}

static void reduce_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int kind = (int)n->i[0];
    int64_t outer = n->i[1], len = n->i[2], inner = n->i[3];
    const float *x = n->in[0]->value, *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
    /* For log-mean-exp, d/dx_k = softmax_k = exp(x_k - lse) with lse = y + log(len). */
    float shift = kind == RED_LME ? logf((float)len) : 0.0f;
#pragma omp parallel for schedule(static) if (outer * len * inner > IB_PAR_MIN)
    for (int64_t oi = 0; oi < outer * inner; oi++) {
        int64_t o = oi / inner, i = oi % inner;
        int64_t base = o * len * inner + i;
        float d = dy[oi];
        if (kind == RED_SUM || kind == RED_MEAN) {
            if (kind == RED_MEAN)
                d /= (float)len;
            for (int64_t k = 0; k < len; k++)
                dx[base + k * inner] += d;
        } else {
            float lse = y[oi] + shift;
            for (int64_t k = 0; k < len; k++)
                dx[base + k * inner] += d * expf(x[base + k * inner] - lse);
        }
    }
}

static const ib_op op_sum = {.name = "sum", .forward = reduce_fwd, .backward = reduce_bwd,
                             .bwd_reads = IB__READS_NOTHING};
static const ib_op op_mean = {.name = "mean", .forward = reduce_fwd, .backward = reduce_bwd,
                              .bwd_reads = IB__READS_NOTHING};
static const ib_op op_lse = {.name = "logsumexp", .forward = reduce_fwd, .backward = reduce_bwd,
                             .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_OUT};
static const ib_op op_lme = {.name = "logmeanexp", .forward = reduce_fwd, .backward = reduce_bwd,
                             .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_OUT};

static ib_node *reduce(ib_graph *g, const ib_op *op, int kind, ib_node *x, int axis)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "%s: '%s' is not a float tensor", op->name, x->name);
    int64_t outer = 1, len, inner = 1, shape[4];
    int nd = 0;
    if (axis == IB_ALL) {
        len = x->numel;
    } else {
        int a = ib__axis(x, axis);
        if (a < 0)
            return ib__fail(g, IB_ERR_ARG, "%s: axis %d is out of range for the %d-D '%s'", op->name, axis, x->ndim,
                            x->name);
        for (int d = 0; d < a; d++)
            outer *= x->shape[d];
        for (int d = a + 1; d < x->ndim; d++)
            inner *= x->shape[d];
        len = x->shape[a];
        for (int d = 0; d < x->ndim; d++)
            if (d != a)
                shape[nd++] = x->shape[d];
    }
    ib_node *n = ib__node_new(g, op, 1, &x, nd, shape);
    if (n) {
        n->i[0] = kind;
        n->i[1] = outer;
        n->i[2] = len;
        n->i[3] = inner;
    }
    return n;
}

ib_node *ib_sum(ib_graph *g, ib_node *x, int axis) { return reduce(g, &op_sum, RED_SUM, x, axis); }
ib_node *ib_mean(ib_graph *g, ib_node *x, int axis) { return reduce(g, &op_mean, RED_MEAN, x, axis); }
ib_node *ib_logsumexp(ib_graph *g, ib_node *x, int axis) { return reduce(g, &op_lse, RED_LSE, x, axis); }
ib_node *ib_logmeanexp(ib_graph *g, ib_node *x, int axis) { return reduce(g, &op_lme, RED_LME, x, axis); }
