/*
 * pool.c — spatial pooling on NCHW tensors: max-pool, average-pool and
 * global average-pool, with PyTorch's semantics (floor output size,
 * -inf padding for max with the first maximum winning ties, padded cells
 * counted in the average's divisor).
 *
 * Every (image, channel) plane is independent, so loops run in parallel
 * over planes; a plane's gradient is written by one thread in a fixed
 * order, hence deterministic whatever the thread count.  The 1x1
 * subsample and global pooling also take the blocked layout of
 * src/core/layout.c, where a unit of one image's block of channels, their
 * planes interleaved, takes a plane's place.
 */
#include "../core/internal.h"

#include <math.h>

/* i[0] k, i[1] stride, i[2] pad.  Max-pool keeps the argmax (index in the
 * input plane) of every output element in scratch (int32). */

static ib_node *pool_build(ib_graph *g, const ib_op *op, ib_node *x, int k, int stride, int pad)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    char sx[64];
    ib__shape_str(x, sx, sizeof sx);
    if (x->dtype != IB_F32 || x->ndim != 4)
        return ib__fail(g, IB_ERR_SHAPE, "%s: input '%s' %s must be a 4-D float tensor (N, C, H, W)", op->name,
                        x->name, sx);
    if (k < 1 || stride < 1 || pad < 0 || pad > k / 2)
        return ib__fail(g, IB_ERR_ARG, "%s: on '%s': need k >= 1, stride >= 1, 0 <= pad <= k/2 (got k %d, stride %d, pad %d)",
                        op->name, x->name, k, stride, pad);
    int64_t hp = x->shape[2] + 2 * (int64_t)pad, wp = x->shape[3] + 2 * (int64_t)pad;
    if (hp < k || wp < k)
        return ib__fail(g, IB_ERR_SHAPE, "%s: window %d is larger than input '%s' %s padded by %d", op->name, k,
                        x->name, sx, pad);
    int64_t ho = (hp - k) / stride + 1, wo = (wp - k) / stride + 1;
    ib_node *n = ib__node_new(g, op, 1, &x, 4, (int64_t[]){x->shape[0], x->shape[1], ho, wo});
    if (n) {
        n->i[0] = k;
        n->i[1] = stride;
        n->i[2] = pad;
    }
    return n;
}

/* ---- max-pool ---- */
static void maxpool_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t ho = n->shape[2], wo = n->shape[3], k = n->i[0], s = n->i[1], pad = n->i[2];
    int32_t *arg = n->scratch;
    /* The common 2x2 stride-2 unpadded window: every window lies inside the
     * plane, so the four cells are read directly (same rule: the first
     * maximum in raster order wins, the first NaN propagates). */
    bool k2 = k == 2 && s == 2 && pad == 0;
#pragma omp parallel for schedule(static) if (n->numel * k * k > IB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x->value + pl * h * w;
        float *yp = n->value + pl * ho * wo;
        int32_t *ap = arg + pl * ho * wo;
        if (k2) {
            for (int64_t oh = 0; oh < ho; oh++)
                for (int64_t ow = 0; ow < wo; ow++) {
                    int64_t a = 2 * oh * w + 2 * ow, cell[4] = {a, a + 1, a + w, a + w + 1};
                    float v[4] = {xp[a], xp[a + 1], xp[a + w], xp[a + w + 1]};
                    float best = v[0];
                    int64_t at = a;
                    if (!isnan(v[0] + v[1] + v[2] + v[3])) {
                        /* selects, not branches: random data mispredicts */
                        for (int t = 1; t < 4; t++) {
                            bool take = v[t] > best;
                            best = take ? v[t] : best;
                            at = take ? cell[t] : at;
                        }
                    } else {
                        for (int t = 1; t < 4 && !isnan(best); t++)
                            if (v[t] > best || isnan(v[t])) {
                                best = v[t];
                                at = cell[t];
                            }
                    }
                    yp[oh * wo + ow] = best;
                    ap[oh * wo + ow] = (int32_t)at;
                }
            continue;
        }
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++) {
                int64_t h0 = oh * s - pad, w0 = ow * s - pad;
                int64_t h1 = h0 + k < h ? h0 + k : h, w1 = w0 + k < w ? w0 + k : w;
                if (h0 < 0)
                    h0 = 0;
                if (w0 < 0)
                    w0 = 0;
                float best = -INFINITY;
                int64_t at = h0 * w + w0; /* pad <= k/2 leaves a real cell in every window */
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        float v = xp[ih * w + iw];
                        if (v > best || isnan(v)) { /* strict: the first maximum wins; NaN propagates */
                            best = v;
                            at = ih * w + iw;
                            if (isnan(v))
                                goto done;
                        }
                    }
            done:
                yp[oh * wo + ow] = best;
                ap[oh * wo + ow] = (int32_t)at;
            }
    }
}

static void maxpool_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], hw = x->shape[2] * x->shape[3], ohw = n->shape[2] * n->shape[3];
    const int32_t *arg = n->scratch;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dx = x->grad + pl * hw;
        const float *dy = n->grad + pl * ohw;
        const int32_t *ap = arg + pl * ohw;
        for (int64_t o = 0; o < ohw; o++)
            dx[ap[o]] += dy[o];
    }
}

static const ib_op op_maxpool = {.name = "maxpool2d", .forward = maxpool_fwd, .backward = maxpool_bwd,
                                 .bwd_reads = IB__READS_NOTHING};

ib_node *ib_maxpool2d(ib_graph *g, ib_node *x, int k, int stride, int pad)
{
    ib_node *n = pool_build(g, &op_maxpool, x, k, stride, pad);
    if (n)
        n->scratch_bytes = (size_t)n->numel * sizeof(int32_t);
    return n;
}

/* ---- average-pool (count_include_pad): every window divides by k*k ---- */
/* Average pooling with a 1x1 window and no padding keeps every s-th pixel
 * of every s-th row.  The general loop below spends ~8 ns an output on
 * window bounds; this is a strided copy.  The arithmetic is the general
 * loop's (0 + x; the divisor is 1), so the results are the same bits, a
 * -0 turned into +0 included. */
static void subsample_fwd(const float *x, float *y, int64_t planes, int64_t h, int64_t w, int64_t ho, int64_t wo,
                          int64_t s, int64_t b)
{
    /* b: 1 plain, or the block of the blocked layout: a unit of b
     * interleaved planes, each pixel b floats. */
#pragma omp parallel for schedule(static) if (planes * ho * wo > IB_PAR_MIN)
    for (int64_t pl = 0; pl < planes / b; pl++) {
        const float *xp = x + pl * h * w * b;
        float *yp = y + pl * ho * wo * b;
        for (int64_t oh = 0; oh < ho; oh++) {
            const float *row = xp + oh * s * w * b;
            for (int64_t ow = 0; ow < wo; ow++)
                for (int64_t l = 0; l < b; l++)
                    yp[(oh * wo + ow) * b + l] = 0.0f + row[ow * s * b + l];
        }
    }
}

/* Its backward: each kept pixel gets its output's gradient, the others
 * nothing (zeroed when this op assigns the gradient, left when it adds). */
static void subsample_bwd(const float *dy, float *dx, int64_t planes, int64_t h, int64_t w, int64_t ho, int64_t wo,
                          int64_t s, int64_t b, bool set)
{
#pragma omp parallel for schedule(static) if (planes * h * w > IB_PAR_MIN)
    for (int64_t pl = 0; pl < planes / b; pl++) {
        float *dp = dx + pl * h * w * b;
        const float *gp = dy + pl * ho * wo * b;
        if (set)
            memset(dp, 0, (size_t)(h * w * b) * sizeof(float));
        for (int64_t oh = 0; oh < ho; oh++) {
            float *row = dp + oh * s * w * b;
            for (int64_t ow = 0; ow < wo; ow++)
                for (int64_t l = 0; l < b; l++)
                    row[ow * s * b + l] += gp[(oh * wo + ow) * b + l];
        }
    }
}

static void avgpool_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t ho = n->shape[2], wo = n->shape[3], k = n->i[0], s = n->i[1], pad = n->i[2];
    float inv = 1.0f / (float)(k * k);
    if (k == 1 && pad == 0) { /* a strided subsample (ResNet's option-A shortcut) */
        subsample_fwd(x->value, n->value, planes, h, w, ho, wo, s, n->layout ? n->layout : 1);
        return;
    }
#pragma omp parallel for schedule(static) if (n->numel * k * k > IB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x->value + pl * h * w;
        float *yp = n->value + pl * ho * wo;
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++) {
                int64_t h0 = oh * s - pad, w0 = ow * s - pad;
                int64_t h1 = h0 + k < h ? h0 + k : h, w1 = w0 + k < w ? w0 + k : w;
                if (h0 < 0)
                    h0 = 0;
                if (w0 < 0)
                    w0 = 0;
                float sum = 0.0f;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        sum += xp[ih * w + iw];
                yp[oh * wo + ow] = sum * inv;
            }
    }
}

static void avgpool_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0];
    int64_t planes = x->shape[0] * x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t ho = n->shape[2], wo = n->shape[3], k = n->i[0], s = n->i[1], pad = n->i[2];
    float inv = 1.0f / (float)(k * k);
    bool set = ib__grad_assign(n, 0); /* windows may overlap or skip pixels: zero the plane here */
    if (k == 1 && pad == 0) {
        subsample_bwd(n->grad, x->grad, planes, h, w, ho, wo, s, n->layout ? n->layout : 1, set);
        return;
    }
#pragma omp parallel for schedule(static) if (n->numel * k * k > IB_PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dx = x->grad + pl * h * w;
        const float *dy = n->grad + pl * ho * wo;
        if (set)
            memset(dx, 0, (size_t)(h * w) * sizeof(float));
        for (int64_t oh = 0; oh < ho; oh++)
            for (int64_t ow = 0; ow < wo; ow++) {
                int64_t h0 = oh * s - pad, w0 = ow * s - pad;
                int64_t h1 = h0 + k < h ? h0 + k : h, w1 = w0 + k < w ? w0 + k : w;
                if (h0 < 0)
                    h0 = 0;
                if (w0 < 0)
                    w0 = 0;
                float d = dy[oh * wo + ow] * inv;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        dx[ih * w + iw] += d;
            }
    }
}

/* The blocked layout: the 1x1 subsample only. */
static bool avgpool_blocked_ok(const ib_node *n) { return n->i[0] == 1 && n->i[2] == 0; }

static const ib_op op_avgpool = {.name = "avgpool2d", .forward = avgpool_fwd, .backward = avgpool_bwd,
                                 .bwd_reads = IB__READS_NOTHING, .grad_assign = IB__ASSIGNS_IN(0),
                                 .layout = IB__LAYOUT_TIED, .blocked_ok = avgpool_blocked_ok};

ib_node *ib_avgpool2d(ib_graph *g, ib_node *x, int k, int stride, int pad)
{
    return pool_build(g, &op_avgpool, x, k, stride, pad);
}

/* ---- global average-pool: (N, C, H, W) -> (N, C) ---- */
static void gap_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *x = n->in[0];
    int64_t planes = n->numel, hw = x->shape[2] * x->shape[3], b = x->layout ? x->layout : 1;
    /* A unit of b planes (b > 1: x blocked, its planes interleaved); each
     * plane summed in pixel order, in either layout. */
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN)
    for (int64_t u = 0; u < planes / b; u++) {
        const float *xp = x->value + u * hw * b;
        double s[16] = {0};
        for (int64_t q = 0; q < hw; q++)
            for (int64_t l = 0; l < b; l++)
                s[l] += xp[q * b + l];
        for (int64_t l = 0; l < b; l++)
            n->value[u * b + l] = (float)(s[l] / (double)hw);
    }
}

static void gap_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0];
    int64_t planes = n->numel, hw = x->shape[2] * x->shape[3], b = x->layout ? x->layout : 1;
    float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN)
    for (int64_t u = 0; u < planes / b; u++) {
        float *dx = x->grad + u * hw * b;
        const float *dy = n->grad + u * b;
        for (int64_t q = 0; q < hw; q++)
            for (int64_t l = 0; l < b; l++)
                dx[q * b + l] += dy[l] * inv;
    }
}

static const ib_op op_gap = {.name = "global_avgpool", .forward = gap_fwd, .backward = gap_bwd,
                             .bwd_reads = IB__READS_NOTHING, .layout = IB__LAYOUT_FREE};

ib_node *ib_global_avgpool(ib_graph *g, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->dtype != IB_F32 || x->ndim != 4) {
        char sx[64];
        return ib__fail(g, IB_ERR_SHAPE, "global_avgpool: input '%s' %s must be a 4-D float tensor (N, C, H, W)",
                        x->name, ib__shape_str(x, sx, sizeof sx));
    }
    return ib__node_new(g, &op_gap, 1, &x, 2, (int64_t[]){x->shape[0], x->shape[1]});
}
