/*
 * conv.c — 2-D convolution and PixelCNN's masked convolution, NCHW:
 * each pass through the backend's whole-batch convolution where it takes
 * it (the CPU backend's is oneDNN, src/kernels/conv_dnnl.c: one oneDNN call
 * a pass), else (no oneDNN, or IBNET_CONV=im2col) as the backend's im2col
 * + GEMM over blocks of images, described here.
 *
 * Why blocks: the CNN shapes ibnet trains are small per image (a GEMM of
 * 32x784x25 or 64x196x800), too small for a threaded GEMM to pay off.  So
 * B images are unfolded side by side into one column matrix (K, B*P), and
 * one GEMM per block does the work of B; OpenBLAS threads that GEMM, and
 * our own loops (im2col, col2im, the copies in and out of the block
 * layout) run in parallel over (image, channel) pairs.  B is chosen from
 * the shape only, so that the column matrix stays near a few MB.
 * (Splitting the images over our own threads, each calling a serial GEMM
 * per image, was tried first: OpenBLAS 0.3.21 called from two OpenMP
 * threads at once ran 32x784x25 GEMMs at 10 GFLOP/s against 71 from one.)
 *
 * Determinism: the weight gradient is summed block after block in a fixed
 * order and every (image, channel) plane of the input gradient is folded
 * by one thread, so a run repeats bit for bit.  Across thread counts the
 * results agree to rounding only: OpenBLAS's threaded GEMM sums some
 * elements in another order than its serial one.  (The same holds of the
 * oneDNN path; there the bias gradient is still summed here.)
 */
#include "../core/internal.h"
#include "../kernels/kernels.h"
#include "plane_sums.h"

#include <math.h>

/* A and B: PixelCNN's raster-order masks.  V and W: the vertical stack's
 * (gated PixelCNN without a blind spot): V keeps the rows above the
 * centre only, W those and the centre row, every column of them. */
enum { MASK_NONE = 0, MASK_A = 1, MASK_B = 2, MASK_V = 3, MASK_W = 4 };

/* Target size of the column matrix of one block, in floats (16 MB): big
 * blocks mean few, large GEMMs and few parallel regions, each a point
 * where the threads wait for one another.  The MNIST CNN's second layer
 * runs in 3 blocks of 22 images, its first in one block. */
#define CONV_COLS_BUDGET ((int64_t)4 << 20)

/* Attributes: i[0] stride, i[1] pad, i[2] mask kind, i[3] images per block,
 * i[4] 1 when the workspace was sized for oneDNN's passes (their blocked
 * copies and scratchpads), 0 when for the im2col path.
 * Workspace (tmp, planned per op and pass in the graph's arena): in
 * backward first the weight-gradient sum (Cout, K); then (forward: from
 * the start) oneDNN's workspace, or cols (K, B*P) and the output or output
 * gradient in block layout (Cout, B*P).  When oneDNN refuses a pass it
 * was sized for (the thread count changed since the graph was built), the
 * im2col path takes a buffer of its own for that call.
 * Masked convs keep the masked weight (Cout, K) in scratch from forward
 * to backward. */

typedef struct conv_dims {
    ib__conv_geom gm;
    int64_t batch, cout, k, p, xs, ys, block;
} conv_dims;

static conv_dims dims_of(const ib_node *n)
{
    const ib_node *x = n->in[0], *w = n->in[1];
    conv_dims d;
    d.gm = (ib__conv_geom){
        .cin = x->shape[1], .h = x->shape[2], .w = x->shape[3], .ho = n->shape[2], .wo = n->shape[3],
        .kh = (int)w->shape[2], .kw = (int)w->shape[3], .stride = (int)n->i[0], .pad = (int)n->i[1],
        .xb = x->layout, .yb = n->layout,
    };
    d.batch = x->shape[0];
    d.cout = w->shape[0];
    d.k = d.gm.cin * d.gm.kh * d.gm.kw;
    d.p = d.gm.ho * d.gm.wo;
    d.xs = d.gm.cin * d.gm.h * d.gm.w;
    d.ys = d.cout * d.p;
    d.block = n->i[3];
    return d;
}

static int64_t round16(int64_t f) { return (f + 15) / 16 * 16; }

/* Floats of the im2col path's workspace: cols and the block-layout output. */
static int64_t im2col_floats(const conv_dims *d) { return round16(d->k * d->block * d->p) + round16(d->cout * d->block * d->p); }

/* The weight-gradient sum at the start of the backward workspace. */
static size_t dwsum_bytes(const conv_dims *d) { return (size_t)round16(d->cout * d->k) * sizeof(float); }

/* The im2col path's workspace: the graph's if it was sized for it, else
 * one of its own for this call (*own, freed by the caller); NULL when out
 * of memory. */
static float *im2col_space(const ib_node *n, const conv_dims *d, float *planned, float **own)
{
    *own = NULL;
    if (!n->i[4])
        return planned;
    *own = ib__aligned_alloc((size_t)im2col_floats(d) * sizeof(float));
    return *own;
}

static bool tap_masked(int mask, int kh, int kw, int ki, int kj)
{
    int cy = kh / 2, cx = kw / 2;
    if (mask == MASK_NONE)
        return false;
    if (mask == MASK_V)
        return ki >= cy;
    if (mask == MASK_W)
        return ki > cy;
    if (ki != cy)
        return ki > cy;
    return kj > cx || (mask == MASK_A && kj == cx);
}

/* The weight the op computes with: W itself, or W with masked taps zeroed
 * (written to scratch by forward). */
static const float *weight_of(const ib_node *n) { return n->i[2] ? (const float *)n->scratch : n->in[1]->value; }

/* The im2col path's forward over the whole batch: y (NCHW) from x (NCHW). */
static void im2col_forward(const conv_dims *d, const float *x, const float *wt, const float *b, float *y, float *cols)
{
    float *yb = cols + round16(d->k * d->block * d->p);
    for (int64_t i0 = 0; i0 < d->batch; i0 += d->block) {
        int64_t nb = d->batch - i0 < d->block ? d->batch - i0 : d->block, ld = nb * d->p;
        float *y0 = y + i0 * d->ys;
        ib__im2col(&d->gm, x + i0 * d->xs, nb, cols);
        /* One image: the block layout is the output's own. */
        float *out = nb == 1 ? y0 : yb;
        ib__sgemm(false, false, d->cout, ld, d->k, 1.0f, wt, d->k, cols, ld, 0.0f, out, ld);
        int64_t rows = nb * d->cout;
#pragma omp parallel for schedule(static) if (rows * d->p > IB_PAR_MIN)
        for (int64_t r = 0; r < rows; r++) { /* r = (image, channel) of the output */
            int64_t bi = r / d->cout, co = r % d->cout;
            float *dst = y0 + bi * d->ys + co * d->p;
            const float *src = nb == 1 ? dst : yb + co * ld + bi * d->p;
            float bias = b ? b[co] : 0.0f;
            for (int64_t q = 0; q < d->p; q++)
                dst[q] = src[q] + bias;
        }
    }
}

/* ---- forward ---- */

static void conv_forward(ib_graph *g, ib_node *n)
{
    const ib_node *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    conv_dims d = dims_of(n);
    if (n->i[2]) { /* masked taps are zero in the weight used, whatever W holds */
        float *wm = n->scratch;
        int64_t kk = (int64_t)d.gm.kh * d.gm.kw;
        for (int64_t e = 0; e < d.cout * d.k; e++) {
            int t = (int)(e % kk);
            wm[e] = tap_masked((int)n->i[2], d.gm.kh, d.gm.kw, t / d.gm.kw, t % d.gm.kw) ? 0.0f : w->value[e];
        }
    }
    const float *wt = weight_of(n);
    if (ib__conv_forward(&d.gm, d.batch, d.cout, x->value, wt, b ? b->value : NULL, n->value, g->tmp,
                              n->tmp_bytes))
        return;
    float *own, *cols = im2col_space(n, &d, g->tmp, &own);
    /* Blocked tensors (oneDNN refused the pass: the im2col path runs on NCHW copies) */
    float *copies = NULL, *xp = x->value, *yp = n->value;
    if (cols && (d.gm.xb || d.gm.yb)) {
        copies = ib__aligned_alloc((size_t)(x->numel + n->numel) * sizeof(float));
        xp = d.gm.xb ? copies : xp;
        yp = d.gm.yb ? copies + x->numel : yp;
    }
    if (!cols || ((d.gm.xb || d.gm.yb) && !copies)) { /* no memory: a NaN output, which training reports */
        for (int64_t e = 0; e < n->numel; e++)
            n->value[e] = NAN;
    } else {
        if (d.gm.xb)
            ib__to_plain(x->value, xp, d.batch, d.gm.cin, d.gm.h * d.gm.w, d.gm.xb);
        im2col_forward(&d, xp, wt, b ? b->value : NULL, yp, cols);
        if (d.gm.yb)
            ib__to_blocked(yp, n->value, d.batch, d.cout, d.p, d.gm.yb);
    }
    ib__aligned_free(copies);
    ib__aligned_free(own);
}

/* The bias gradient: each channel's plane sums added in double over the
 * images, the same bits in either layout of dy.  ps: (N, C) floats of the
 * workspace (conv_prepare sizes it), free before the other passes. */
static size_t bias_sums_bytes(const conv_dims *d) { return (size_t)(d->batch * d->cout) * sizeof(float); }

static void bias_grad(const conv_dims *d, const float *dy, float *db, float *ps)
{
    int w = d->gm.yb ? d->gm.yb : 1;
    int64_t per = d->cout / w;
#pragma omp parallel for schedule(static) if (d->batch * d->ys > IB_PAR_MIN)
    for (int64_t u = 0; u < d->batch * per; u++) {
        int64_t i = u / per, c0 = (u % per) * w;
        const float *p = dy + u * w * d->p;
        ib__plane_sums_w(IB__PS_SUM, w, d->p, p, p, p, NULL, ps + i * d->cout + c0, ps + i * d->cout + c0);
    }
    for (int64_t co = 0; co < d->cout; co++) {
        double s = 0;
        for (int64_t i = 0; i < d->batch; i++)
            s += ps[i * d->cout + co];
        db[co] += (float)s;
    }
}

/* The im2col path's backward over the whole batch, NCHW tensors: dwsum +=
 * dW and dx += dX for those given (non-NULL). */
static void im2col_backward(const conv_dims *d, const float *x, const float *dy, const float *wt, float *dwsum,
                            float *dx, float *cols)
{
    float *dyb = cols + round16(d->k * d->block * d->p);
    for (int64_t i0 = 0; i0 < d->batch; i0 += d->block) {
        int64_t nb = d->batch - i0 < d->block ? d->batch - i0 : d->block, ld = nb * d->p;
        const float *dy0 = dy + i0 * d->ys, *dblk = dy0;
        if (nb > 1) { /* dY of the block in the column layout (Cout, nb*P) */
            int64_t rows = nb * d->cout;
#pragma omp parallel for schedule(static) if (rows * d->p > IB_PAR_MIN)
            for (int64_t r = 0; r < rows; r++) {
                int64_t bi = r / d->cout, co = r % d->cout;
                memcpy(dyb + co * ld + bi * d->p, dy0 + bi * d->ys + co * d->p, (size_t)d->p * sizeof(float));
            }
            dblk = dyb;
        }
        if (dwsum) { /* dW += dY cols^T */
            ib__im2col(&d->gm, x + i0 * d->xs, nb, cols);
            ib__sgemm(false, true, d->cout, d->k, ld, 1.0f, dblk, ld, cols, ld, 1.0f, dwsum, d->k);
        }
        if (dx) { /* dX += col2im(W^T dY) */
            ib__sgemm(true, false, d->k, ld, d->cout, 1.0f, wt, d->k, dblk, ld, 0.0f, cols, ld);
            ib__col2im_add(&d->gm, cols, nb, dx + i0 * d->xs);
        }
    }
}

/* ---- backward ---- */

static void conv_backward(ib_graph *g, ib_node *n)
{
    ib_node *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    conv_dims d = dims_of(n);
    bool need_dx = x->needs_grad, need_dw = w->needs_grad, need_db = b && b->needs_grad;
    const float *dy = n->grad, *wt = weight_of(n);

    if (need_db) /* per channel: images, then pixels (plane_sums.h's order, any layout) */
        bias_grad(&d, dy, b->grad, g->tmp);
    if (!need_dx && !need_dw)
        return;

    float *dwsum = g->tmp, *rest = (float *)(void *)((char *)g->tmp + dwsum_bytes(&d));
    size_t rest_bytes = n->tmp_bytes - dwsum_bytes(&d);
    /* oneDNN where it takes the pass; the im2col loop does what is left. */
    bool dw_done =
        need_dw && ib__conv_backward_weights(&d.gm, d.batch, d.cout, x->value, dy, dwsum, rest, rest_bytes);
    bool assign_dx = need_dx && ib__grad_assign(n, 0);
    bool dx_done =
        need_dx && ib__conv_backward_data(&d.gm, d.batch, d.cout, wt, dy, x->grad, !assign_dx, rest, rest_bytes);
    bool im2col_dw = need_dw && !dw_done, im2col_dx = need_dx && !dx_done;
    if (im2col_dx && assign_dx) /* col2im adds: from zero */
        memset(x->grad, 0, (size_t)x->numel * sizeof(float));
    float *own = NULL, *cols = im2col_dw || im2col_dx ? im2col_space(n, &d, rest, &own) : rest;
    /* Blocked tensors: the im2col path runs on NCHW copies of x, dy and dx. */
    bool blocked = (im2col_dw || im2col_dx) && (d.gm.xb || d.gm.yb);
    float *copies = NULL, *xp = x->value, *dyp = (float *)dy, *dxp = x->grad;
    if (cols && blocked) {
        copies = ib__aligned_alloc((size_t)(2 * x->numel + n->numel) * sizeof(float));
        if (copies && d.gm.xb) {
            xp = copies;
            dxp = copies + x->numel;
            ib__to_plain(x->value, xp, d.batch, d.gm.cin, d.gm.h * d.gm.w, d.gm.xb);
            if (im2col_dx)
                ib__to_plain(x->grad, dxp, d.batch, d.gm.cin, d.gm.h * d.gm.w, d.gm.xb);
        }
        if (copies && d.gm.yb) {
            dyp = copies + 2 * x->numel;
            ib__to_plain(dy, dyp, d.batch, d.cout, d.p, d.gm.yb);
        }
    }
    if (!cols || (blocked && !copies)) { /* no memory for the fallback: NaN gradients, which training reports */
        if (im2col_dw)
            for (int64_t e = 0; e < d.cout * d.k; e++)
                dwsum[e] = NAN;
        if (im2col_dx)
            x->grad[0] = NAN;
        im2col_dx = false;
        im2col_dw = false;
    }
    if (im2col_dw)
        memset(dwsum, 0, (size_t)(d.cout * d.k) * sizeof(float));
    if (im2col_dw || im2col_dx)
        im2col_backward(&d, xp, dyp, wt, im2col_dw ? dwsum : NULL, im2col_dx ? dxp : NULL, cols);
    if (im2col_dx && d.gm.xb)
        ib__to_blocked(dxp, x->grad, d.batch, d.gm.cin, d.gm.h * d.gm.w, d.gm.xb);
    if (need_dw) { /* masked taps get no gradient */
        float *dw = w->grad;
        int mask = (int)n->i[2];
        int64_t kk = (int64_t)d.gm.kh * d.gm.kw;
#pragma omp parallel for schedule(static) if (d.cout * d.k > IB_PAR_MIN)
        for (int64_t e = 0; e < d.cout * d.k; e++) {
            int t = (int)(e % kk);
            if (!mask || !tap_masked(mask, d.gm.kh, d.gm.kw, t / d.gm.kw, t % d.gm.kw))
                dw[e] += dwsum[e];
        }
    }
    ib__aligned_free(copies);
    ib__aligned_free(own);
}

static void conv_prepare(ib_graph *g, ib_node *n);
static const ib_op op_conv2d = {.name = "conv2d", .forward = conv_forward, .backward = conv_backward,
                                .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                                .prepare = conv_prepare, .grad_assign = IB__ASSIGNS_IN(0),
                                .layout = IB__LAYOUT_FREE, .layout_block = ib__conv_layout_block};
static const ib_op op_conv2d_masked = {.name = "conv2d_masked", .forward = conv_forward, .backward = conv_backward,
                                       .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                                       .prepare = conv_prepare};

/* The workspace, sized at compile: oneDNN's largest pass where it takes
 * every pass the graph runs (their plans are built now: a forward-only
 * graph builds only the forward one), else the im2col path's. */
static void conv_prepare(ib_graph *g, ib_node *n)
{
    conv_dims d = dims_of(n);
    size_t need[3];
    bool bias = n->n_in > 2;
    n->i[4] = ib__conv_workspace(&d.gm, d.batch, d.cout, bias, !g->forward_only, need);
    if (g->forward_only)
        n->tmp_bytes = n->i[4] ? need[0] : (size_t)im2col_floats(&d) * sizeof(float);
    else if (n->i[4]) {
        size_t bwd = dwsum_bytes(&d) + (need[1] > need[2] ? need[1] : need[2]);
        n->tmp_bytes = need[0] > bwd ? need[0] : bwd;
    } else {
        n->tmp_bytes = dwsum_bytes(&d) + (size_t)im2col_floats(&d) * sizeof(float);
    }
    if (bias && !g->forward_only && n->tmp_bytes < bias_sums_bytes(&d))
        n->tmp_bytes = bias_sums_bytes(&d);
}

/* ---- constructors ---- */

static ib_node *conv_build(ib_graph *g, const ib_op *op, ib_node *x, ib_node *w, ib_node *b, int stride, int pad,
                           int mask)
{
    ib_node *in[3] = {x, w, b};
    int n_in = b ? 3 : 2;
    if (!ib__inputs_ok(g, n_in, in))
        return NULL;
    const char *name = op->name;
    char sx[64], sw[64];
    ib__shape_str(x, sx, sizeof sx);
    ib__shape_str(w, sw, sizeof sw);
    if (x->dtype != IB_F32 || x->ndim != 4)
        return ib__fail(g, IB_ERR_SHAPE, "%s: input '%s' %s must be a 4-D float tensor (N, Cin, H, W)", name, x->name,
                        sx);
    if (w->ndim != 4 || w->shape[1] != x->shape[1])
        return ib__fail(g, IB_ERR_SHAPE,
                        "%s: weight '%s' %s does not fit input '%s' %s (want (Cout, %lld, kh, kw))", name, w->name, sw,
                        x->name, sx, (long long)x->shape[1]);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        char sb[64];
        return ib__fail(g, IB_ERR_SHAPE, "%s: bias '%s' %s must have shape (%lld) to fit weight '%s' %s", name,
                        b->name, ib__shape_str(b, sb, sizeof sb), (long long)w->shape[0], w->name, sw);
    }
    if (stride < 1 || pad < 0)
        return ib__fail(g, IB_ERR_ARG, "%s: stride %d must be >= 1 and pad %d >= 0 (input '%s')", name, stride, pad,
                        x->name);
    int64_t kh = w->shape[2], kw = w->shape[3];
    int64_t hp = x->shape[2] + 2 * (int64_t)pad, wp = x->shape[3] + 2 * (int64_t)pad;
    if (hp < kh || wp < kw)
        return ib__fail(g, IB_ERR_SHAPE, "%s: kernel %lldx%lld of weight '%s' is larger than input '%s' %s padded by %d",
                        name, (long long)kh, (long long)kw, w->name, x->name, sx, pad);
    int64_t ho = (hp - kh) / stride + 1, wo = (wp - kw) / stride + 1;
    int64_t batch = x->shape[0], cout = w->shape[0], k = w->shape[1] * kh * kw, p = ho * wo;
    ib_node *n = ib__node_new(g, op, n_in, in, 4, (int64_t[]){batch, cout, ho, wo});
    if (!n)
        return NULL;
    /* Images per block: as many as fit the budget, then evened out so the
     * last block is not a sliver. */
    int64_t block = CONV_COLS_BUDGET / (k * p);
    block = block < 1 ? 1 : block > batch ? batch : block;
    int64_t blocks = (batch + block - 1) / block;
    block = (batch + blocks - 1) / blocks;
    n->i[0] = stride;
    n->i[1] = pad;
    n->i[2] = mask;
    n->i[3] = block;
    if (mask)
        n->scratch_bytes = (size_t)(cout * k) * sizeof(float);
    return n;
}

ib_node *ib_conv2d(ib_graph *g, ib_node *x, ib_node *w, ib_node *b, int stride, int pad)
{
    return conv_build(g, &op_conv2d, x, w, b, stride, pad, MASK_NONE);
}

ib_node *ib_conv2d_masked(ib_graph *g, ib_node *x, ib_node *w, ib_node *b, int pad, char mask_type)
{
    ib_node *in[3] = {x, w, b};
    if (!ib__inputs_ok(g, b ? 3 : 2, in))
        return NULL;
    static const char kinds[] = "ABVW";
    const char *kind = mask_type ? strchr(kinds, mask_type) : NULL;
    if (!kind)
        return ib__fail(g, IB_ERR_ARG, "conv2d_masked: mask type '%c' on weight '%s' must be 'A', 'B', 'V' or 'W'",
                        mask_type, w->name);
    if (w->ndim != 4 || w->shape[2] != w->shape[3] || w->shape[2] % 2 == 0) {
        char sw[64];
        return ib__fail(g, IB_ERR_SHAPE, "conv2d_masked: weight '%s' %s must have an odd square kernel", w->name,
                        ib__shape_str(w, sw, sizeof sw));
    }
    return conv_build(g, &op_conv2d_masked, x, w, b, 1, pad, MASK_A + (int)(kind - kinds));
}
