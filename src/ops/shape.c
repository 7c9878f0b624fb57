/*
 * shape.c — reshape, flatten, concat, slice and repeat.
 *
 * reshape (and flatten) is a view: the node's value and grad alias the
 * buffers of its source (graph.c's bind), so it costs no copy and its
 * forward/backward do nothing; gradients that consumers add into the view
 * land directly in the source's gradient.  The other ops copy, since a view
 * can only alias a whole buffer from its start.  Each copying op sees its
 * tensors as (outer, len, inner) around the axis it works on, so one
 * contiguous block of len*inner values moves per outer index.  Every
 * output element is written by one thread and backward sums run in a
 * fixed order, so results never depend on the thread count.  Int32
 * tensors (labels) may be reshaped, concatenated, sliced and repeated too;
 * they carry no gradient.
 */
#include "../core/internal.h"

/* Values move as 4-byte words (sizeof(float) == sizeof(int32_t)), so one
 * code path serves both dtypes. */

static int64_t prod(const int64_t *s, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++)
        p *= s[d];
    return p;
}

/* ---- reshape: a view of the root buffer owner ---- */
static void view_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    (void)n; /* the value aliases the source's buffer */
}
static const ib_op op_reshape = {.name = "reshape", .forward = view_fwd, .bwd_reads = IB__READS_NOTHING};

ib_node *ib_reshape(ib_graph *g, ib_node *x, int ndim, const int64_t *shape)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char xs[96];
    if (ndim < 0 || ndim > IB_MAX_DIMS || (ndim > 0 && !shape))
        return ib__fail(g, IB_ERR_ARG, "reshape of '%s' %s: %d dimensions asked for (0 to %d allowed)", x->name,
                        ib__shape_str(x, xs, sizeof xs), ndim, IB_MAX_DIMS);
    int64_t out[IB_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        out[d] = shape[d];
        if (shape[d] == -1 && infer < 0)
            infer = d;
        else if (shape[d] <= 0)
            return ib__fail(g, IB_ERR_SHAPE,
                            "reshape of '%s' %s: dimension %d of the new shape is %lld (must be positive, or one -1)",
                            x->name, ib__shape_str(x, xs, sizeof xs), d, (long long)shape[d]);
        else
            known *= shape[d];
    }
    if (infer >= 0) {
        if (x->numel % known != 0)
            return ib__fail(g, IB_ERR_SHAPE, "reshape of '%s' %s: %lld elements are not a multiple of %lld", x->name,
                            ib__shape_str(x, xs, sizeof xs), (long long)x->numel, (long long)known);
        out[infer] = x->numel / known;
        known *= out[infer];
    }
    if (known != x->numel)
        return ib__fail(g, IB_ERR_SHAPE, "reshape of '%s' %s: %lld elements cannot take a shape of %lld elements",
                        x->name, ib__shape_str(x, xs, sizeof xs), (long long)x->numel, (long long)known);
    ib_node *n = ib__node_new(g, &op_reshape, 1, &x, ndim, out);
    if (n) {
        n->dtype = x->dtype;
        /* Alias the buffer owner itself: bind() copies pointers in node
         * order, and the root is always bound before any view of it. */
        n->view_of = x->view_of ? x->view_of : x;
    }
    return n;
}

ib_node *ib_flatten(ib_graph *g, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->ndim < 1)
        return ib__fail(g, IB_ERR_SHAPE, "flatten: '%s' is a scalar; it needs a batch dimension", x->name);
    int64_t shape[2] = {x->shape[0], x->numel / x->shape[0]};
    return ib_reshape(g, x, 2, shape);
}

/* ---- concat: i[0] = outer; per outer index, input k gives numel_k/outer words ---- */
static void concat_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t outer = n->i[0], row = n->numel / outer;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && outer > 1)
    for (int64_t o = 0; o < outer; o++) {
        char *dst = (char *)n->value + (size_t)(o * row) * sizeof(float);
        for (int k = 0; k < n->n_in; k++) {
            int64_t len = n->in[k]->numel / outer;
            memcpy(dst, (const char *)n->in[k]->value + (size_t)(o * len) * sizeof(float), (size_t)len * sizeof(float));
            dst += (size_t)len * sizeof(float);
        }
    }
}
static void concat_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t outer = n->i[0], row = n->numel / outer;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && outer > 1)
    for (int64_t o = 0; o < outer; o++) {
        const float *dy = n->grad + o * row;
        for (int k = 0; k < n->n_in; k++) {
            int64_t len = n->in[k]->numel / outer;
            if (n->in[k]->needs_grad) {
                float *dx = n->in[k]->grad + o * len;
                for (int64_t j = 0; j < len; j++)
                    dx[j] += dy[j];
            }
            dy += len;
        }
    }
}
static const ib_op op_concat = {.name = "concat", .forward = concat_fwd, .backward = concat_bwd,
                                .bwd_reads = IB__READS_NOTHING};

ib_node *ib_concat(ib_graph *g, int n, ib_node *const *xs, int axis)
{
    if (!g || g->status != IB_OK)
        return NULL;
    if (n < 1 || n > IB_MAX_INPUTS || !xs)
        return ib__fail(g, IB_ERR_ARG, "concat: %d inputs (1 to %d allowed)", n, IB_MAX_INPUTS);
    if (!ib__inputs_ok(g, n, xs))
        return NULL;
    char s0[96], sk[96];
    const ib_node *x0 = xs[0];
    int a = ib__axis(x0, axis);
    if (a < 0)
        return ib__fail(g, IB_ERR_ARG, "concat: axis %d is out of range for '%s' %s", axis, x0->name,
                        ib__shape_str(x0, s0, sizeof s0));
    int64_t shape[IB_MAX_DIMS];
    for (int d = 0; d < x0->ndim; d++)
        shape[d] = x0->shape[d];
    shape[a] = 0;
    for (int k = 0; k < n; k++) {
        const ib_node *x = xs[k];
        bool fits = x->ndim == x0->ndim && x->dtype == x0->dtype;
        for (int d = 0; fits && d < x0->ndim; d++)
            fits = d == a || x->shape[d] == x0->shape[d];
        if (!fits)
            return ib__fail(g, IB_ERR_SHAPE,
                            "concat along axis %d: input %d '%s' %s%s does not fit input 0 '%s' %s%s (same dtype and "
                            "all dims but the axis equal)",
                            a, k, x->name, ib__shape_str(x, sk, sizeof sk), x->dtype == IB_I32 ? " int32" : "",
                            x0->name, ib__shape_str(x0, s0, sizeof s0), x0->dtype == IB_I32 ? " int32" : "");
        shape[a] += x->shape[a];
    }
    ib_node *y = ib__node_new(g, &op_concat, n, xs, x0->ndim, shape);
    if (y) {
        y->dtype = x0->dtype;
        y->no_grad_op = x0->dtype != IB_F32;
        y->i[0] = prod(x0->shape, 0, a);
    }
    return y;
}

/* ---- slice: i[0] = outer, i[1] = len*inner (out row), i[2] = dim*inner (in row), i[3] = start*inner ---- */
static void slice_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t outer = n->i[0], orow = n->i[1], irow = n->i[2], off = n->i[3];
    const char *x = (const char *)n->in[0]->value;
    char *y = (char *)n->value;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && outer > 1)
    for (int64_t o = 0; o < outer; o++)
        memcpy(y + (size_t)(o * orow) * sizeof(float), x + (size_t)(o * irow + off) * sizeof(float),
               (size_t)orow * sizeof(float));
}
static void slice_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t outer = n->i[0], orow = n->i[1], irow = n->i[2], off = n->i[3];
    const float *dy = n->grad;
    float *dx = n->in[0]->grad;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && outer > 1)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < orow; j++)
            dx[o * irow + off + j] += dy[o * orow + j];
}
static const ib_op op_slice = {.name = "slice", .forward = slice_fwd, .backward = slice_bwd,
                               .bwd_reads = IB__READS_NOTHING};

ib_node *ib_slice(ib_graph *g, ib_node *x, int axis, int64_t start, int64_t len)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char xs[96];
    int a = ib__axis(x, axis);
    if (a < 0)
        return ib__fail(g, IB_ERR_ARG, "slice: axis %d is out of range for '%s' %s", axis, x->name,
                        ib__shape_str(x, xs, sizeof xs));
    if (start < 0 || len < 1 || start > x->shape[a] - len)
        return ib__fail(g, IB_ERR_SHAPE, "slice: [%lld, %lld) along axis %d is not inside '%s' %s", (long long)start,
                        (long long)(start + len), a, x->name, ib__shape_str(x, xs, sizeof xs));
    int64_t shape[IB_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        shape[d] = x->shape[d];
    shape[a] = len;
    ib_node *n = ib__node_new(g, &op_slice, 1, &x, x->ndim, shape);
    if (n) {
        int64_t inner = prod(x->shape, a + 1, x->ndim);
        n->dtype = x->dtype;
        n->no_grad_op = x->dtype != IB_F32;
        n->i[0] = prod(x->shape, 0, a);
        n->i[1] = len * inner;
        n->i[2] = x->shape[a] * inner;
        n->i[3] = start * inner;
    }
    return n;
}

/* ---- repeat: i[0] = m; each input row of numel/N words is copied m times in a row ---- */
static void repeat_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t m = n->i[0], rows = n->in[0]->shape[0], row = n->in[0]->numel / rows;
    const char *x = (const char *)n->in[0]->value;
    char *y = (char *)n->value;
    size_t bytes = (size_t)row * sizeof(float);
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && rows * m > 1)
    for (int64_t r = 0; r < rows * m; r++)
        memcpy(y + (size_t)r * bytes, x + (size_t)(r / m) * bytes, bytes);
}
static void repeat_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t m = n->i[0], rows = n->in[0]->shape[0], row = n->in[0]->numel / rows;
    const float *dy = n->grad;
    float *dx = n->in[0]->grad;
    /* Copies are summed in order c = 0..m-1 for each element, whatever the threads. */
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < m; c++) {
            const float *src = dy + (r * m + c) * row;
            float *dst = dx + r * row;
            for (int64_t j = 0; j < row; j++)
                dst[j] += src[j];
        }
}
static const ib_op op_repeat = {.name = "repeat", .forward = repeat_fwd, .backward = repeat_bwd,
                                .bwd_reads = IB__READS_NOTHING};

ib_node *ib_repeat(ib_graph *g, ib_node *x, int64_t m)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char xs[96];
    if (x->ndim < 1)
        return ib__fail(g, IB_ERR_SHAPE, "repeat: '%s' is a scalar; it needs a batch dimension", x->name);
    if (m < 1)
        return ib__fail(g, IB_ERR_ARG, "repeat of '%s' %s: m = %lld (must be at least 1)", x->name,
                        ib__shape_str(x, xs, sizeof xs), (long long)m);
    int64_t shape[IB_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        shape[d] = x->shape[d];
    shape[0] *= m;
    ib_node *n = ib__node_new(g, &op_repeat, 1, &x, x->ndim, shape);
    if (n) {
        n->dtype = x->dtype;
        n->no_grad_op = x->dtype != IB_F32;
        n->i[0] = m;
    }
    return n;
}
