/*
 * upsample.c — nearest-neighbour upsampling of a feature map by an integer
 * factor: (N, C, H, W) -> (N, C, f H, f W), y[n,c,i,j] = x[n,c,i/f,j/f]
 * (PyTorch's F.interpolate(mode="nearest") with an integer scale).  It lets
 * a decoder that works at the image's resolution take a feature map of a
 * coarser one (a 7 x 7 or 14 x 14 layer for a 28 x 28 image).
 *
 * Backward sums each f x f block of dy into its one source element.  Each
 * (n, c) plane is one thread's, and every sum runs in a fixed order, so
 * the result does not depend on the thread count.
 */
#include "../core/internal.h"

static void upsample_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *x = n->in[0];
    int64_t f = n->i[0], planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t ow = w * f, plane_out = h * f * ow;
    const float *xv = x->value;
    float *y = n->value;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        const float *src = xv + p * h * w;
        float *dst = y + p * plane_out;
        for (int64_t i = 0; i < h * f; i++)
            for (int64_t j = 0; j < ow; j++)
                dst[i * ow + j] = src[(i / f) * w + j / f];
    }
}

static void upsample_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0];
    if (!x->needs_grad)
        return;
    int64_t f = n->i[0], planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t ow = w * f, plane_out = h * f * ow;
    const float *dy = n->grad;
    float *dx = x->grad;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && planes > 1)
    for (int64_t p = 0; p < planes; p++) {
        const float *src = dy + p * plane_out;
        float *dst = dx + p * h * w;
        for (int64_t a = 0; a < h; a++)
            for (int64_t b = 0; b < w; b++) {
                float s = 0;
                for (int64_t u = 0; u < f; u++)
                    for (int64_t v = 0; v < f; v++)
                        s += src[(a * f + u) * ow + b * f + v];
                dst[a * w + b] += s;
            }
    }
}

static const ib_op op_upsample = {.name = "upsample_nearest", .forward = upsample_fwd, .backward = upsample_bwd,
                                  .bwd_reads = IB__READS_NOTHING};

ib_node *ib_upsample_nearest(ib_graph *g, ib_node *x, int factor)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char xs[96];
    if (x->dtype != IB_F32 || x->ndim != 4)
        return ib__fail(g, IB_ERR_SHAPE, "upsample_nearest: input '%s' %s must be a 4-D float tensor (N, C, H, W)",
                        x->name, ib__shape_str(x, xs, sizeof xs));
    if (factor < 1 || factor > 64)
        return ib__fail(g, IB_ERR_ARG, "upsample_nearest of '%s' %s: factor %d (must be 1 to 64)", x->name,
                        ib__shape_str(x, xs, sizeof xs), factor);
    int64_t shape[4] = {x->shape[0], x->shape[1], x->shape[2] * factor, x->shape[3] * factor};
    ib_node *n = ib__node_new(g, &op_upsample, 1, &x, 4, shape);
    if (n)
        n->i[0] = factor;
    return n;
}
