/*
 * permute.c — axes in a new order (a copy): y has dims shape[perm[k]] and
 * y[..., j_k, ...] = x[..., i_{perm[k]} = j_k, ...], as torch.permute.  With
 * a reshape it puts the channel axis last, so the row-wise softmax ops work
 * on per-pixel distributions: (N, 256, H, W) -> (N, H, W, 256) ->
 * (N H W, 256) for a 256-way cross-entropy per pixel.
 *
 * The map is a bijection: forward writes each output once and backward
 * adds into each input gradient element once, so any thread split gives
 * the same bits.
 */
#include "../core/internal.h"

/* Input offset of each output element's index, through strides. */
static void permute_strides(const ib_node *n, int64_t *in_stride_of_out)
{
    const ib_node *x = n->in[0];
    int64_t st[IB_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= x->shape[d];
    }
    for (int k = 0; k < n->ndim; k++)
        in_stride_of_out[k] = st[n->i[k]];
}

static inline int64_t src_offset(const ib_node *n, const int64_t *ist, int64_t o)
{
    int64_t off = 0;
    for (int k = n->ndim - 1; k >= 0; k--) {
        off += (o % n->shape[k]) * ist[k];
        o /= n->shape[k];
    }
    return off;
}

static void permute_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t ist[IB_MAX_DIMS];
    permute_strides(n, ist);
    const float *x = n->in[0]->value;
    float *y = n->value;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN)
    for (int64_t o = 0; o < n->numel; o++)
        y[o] = x[src_offset(n, ist, o)];
}

static void permute_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0];
    if (!x->needs_grad)
        return;
    int64_t ist[IB_MAX_DIMS];
    permute_strides(n, ist);
    const float *dy = n->grad;
    float *dx = x->grad;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN)
    for (int64_t o = 0; o < n->numel; o++)
        dx[src_offset(n, ist, o)] += dy[o];
}

static const ib_op op_permute = {.name = "permute", .forward = permute_fwd, .backward = permute_bwd,
                                 .bwd_reads = IB__READS_NOTHING};

ib_node *ib_permute(ib_graph *g, ib_node *x, const int *perm)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char xs[96];
    if (x->dtype != IB_F32 || x->ndim < 1 || !perm)
        return ib__fail(g, IB_ERR_SHAPE, "permute: input '%s' %s must be a float tensor of 1 to %d dims with a "
                        "permutation", x->name, ib__shape_str(x, xs, sizeof xs), IB_MAX_DIMS);
    bool seen[IB_MAX_DIMS] = {false};
    int64_t shape[IB_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++) {
        if (perm[k] < 0 || perm[k] >= x->ndim || seen[perm[k]])
            return ib__fail(g, IB_ERR_ARG, "permute of '%s' %s: entry %d (%d) of the order is out of range or "
                            "repeated (a permutation of 0..%d is needed)", x->name, ib__shape_str(x, xs, sizeof xs),
                            k, perm[k], x->ndim - 1);
        seen[perm[k]] = true;
        shape[k] = x->shape[perm[k]];
    }
    ib_node *n = ib__node_new(g, &op_permute, 1, &x, x->ndim, shape);
    if (n)
        for (int k = 0; k < x->ndim; k++)
            n->i[k] = perm[k];
    return n;
}
