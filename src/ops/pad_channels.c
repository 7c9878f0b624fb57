/*
 * pad_channels.c — zero channels before and after those of an (N, C, H, W)
 * tensor: ResNet's parameter-free "option A" shortcut, which widens the
 * residual stream where a stage doubles its channels.
 *
 * One op instead of the scale-by-zero, concat and slices it replaces, so
 * that the shortcut costs one pass and works in the blocked layout
 * (src/core/layout.c) too: the channel offset `front` is rarely a multiple
 * of the block, so channels move between blocks, and each output lane is
 * read from its own source lane.  Every value is a copy or a zero, so the
 * result has the same bits in either layout.
 */
#include "../core/internal.h"

/* i[0] front, i[1] back.  Output element (img, oc, q) is input element
 * (img, oc - front, q), or 0 where oc - front is outside [0, C). */

typedef struct pad_geom {
    int64_t batch, cin, cout, hw, front;
    int b; /* layout block, 1 plain */
} pad_geom;

static pad_geom geom_of(const ib_node *n)
{
    const ib_node *x = n->in[0];
    return (pad_geom){.batch = x->shape[0], .cin = x->shape[1], .cout = n->shape[1],
                      .hw = x->shape[2] * x->shape[3], .front = n->i[0], .b = n->layout ? n->layout : 1};
}

/* Where output channel oc of image img reads from (NULL: a zero channel),
 * and the output's first element of that channel; both with stride b. */
static const float *source(const pad_geom *p, const float *x, int64_t img, int64_t oc)
{
    int64_t ic = oc - p->front;
    if (ic < 0 || ic >= p->cin)
        return NULL;
    return x + ib__layout_at(img, ic, 0, p->cin, p->hw, p->b == 1 ? 0 : p->b);
}

static void pad_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    pad_geom p = geom_of(n);
    const float *x = n->in[0]->value;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN)
    for (int64_t r = 0; r < p.batch * p.cout; r++) { /* r = (image, output channel) */
        int64_t img = r / p.cout, oc = r % p.cout;
        const float *src = source(&p, x, img, oc);
        float *dst = n->value + ib__layout_at(img, oc, 0, p.cout, p.hw, p.b == 1 ? 0 : p.b);
        for (int64_t q = 0; q < p.hw; q++)
            dst[q * p.b] = src ? src[q * p.b] : 0.0f;
    }
}

/* Every input element gets its output's gradient: assigned or added. */
static void pad_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    pad_geom p = geom_of(n);
    ib_node *x = n->in[0];
    bool set = ib__grad_assign(n, 0);
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN)
    for (int64_t r = 0; r < p.batch * p.cin; r++) { /* r = (image, input channel) */
        int64_t img = r / p.cin, ic = r % p.cin;
        int bb = p.b == 1 ? 0 : p.b;
        const float *dy = n->grad + ib__layout_at(img, ic + p.front, 0, p.cout, p.hw, bb);
        float *dx = x->grad + ib__layout_at(img, ic, 0, p.cin, p.hw, bb);
        if (set)
            for (int64_t q = 0; q < p.hw; q++)
                dx[q * p.b] = dy[q * p.b];
        else
            for (int64_t q = 0; q < p.hw; q++)
                dx[q * p.b] += dy[q * p.b];
    }
}

static const ib_op op_pad_channels = {.name = "pad_channels", .forward = pad_fwd, .backward = pad_bwd,
                                      .bwd_reads = IB__READS_NOTHING, .grad_assign = IB__ASSIGNS_IN(0),
                                      .layout = IB__LAYOUT_TIED};

ib_node *ib_pad_channels(ib_graph *g, ib_node *x, int64_t front, int64_t back)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char sx[64];
    ib__shape_str(x, sx, sizeof sx);
    if (x->dtype != IB_F32 || x->ndim != 4)
        return ib__fail(g, IB_ERR_SHAPE, "pad_channels: input '%s' %s must be a 4-D float tensor (N, C, H, W)",
                        x->name, sx);
    if (front < 0 || back < 0 || front > (int64_t)1 << 30 || back > (int64_t)1 << 30)
        return ib__fail(g, IB_ERR_ARG, "pad_channels on '%s': front %lld and back %lld must be in [0, 2^30]",
                        x->name, (long long)front, (long long)back);
    ib_node *n = ib__node_new(g, &op_pad_channels, 1, &x, 4,
                              (int64_t[]){x->shape[0], x->shape[1] + front + back, x->shape[2], x->shape[3]});
    if (n) {
        n->i[0] = front;
        n->i[1] = back;
    }
    return n;
}
