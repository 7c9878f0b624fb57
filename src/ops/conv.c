/*
 * conv.c — 2-D convolution and PixelCNN's masked convolution, NCHW, as
 * im2col + GEMM.
 *
 * Why it is laid out this way: the CNN shapes ibnet trains are small per
 * image (a GEMM of 32x784x25 or 64x196x800), too small for a multithreaded
 * GEMM to pay off, yet a batch holds dozens of them.  So when the batch has
 * at least as many images as threads, the images are split over the OpenMP
 * team and each thread runs single-threaded GEMMs (OpenBLAS's OpenMP build
 * runs serially inside a parallel region) on its own column buffer in the
 * shared workspace; otherwise the images go one by one with threaded GEMMs.
 *
 * Determinism: the weight gradient is a sum over images.  The batch is cut
 * into a fixed number of chunks that depends on the shape only; each chunk
 * sums its images into its own partial dW in image order, and the partials
 * are added in chunk order.  The input gradient of an image is written by
 * one thread in a fixed order (col2im).  So results do not depend on the
 * thread count, nor on which mode ran.
 *
 * A 1x1 convolution with stride 1 and no padding needs no im2col: the image
 * (Cin, H*W) already is the column matrix.
 */
#include "../core/internal.h"
#include "../kernels/conv_kernels.h"
#include "../kernels/kernels.h"

#include <omp.h>

enum { MASK_NONE = 0, MASK_A = 1, MASK_B = 2 };

/* Most partial dW buffers; more would only cost memory (16 chunks keep 16
 * threads busy). */
#define CONV_MAX_CHUNKS 16
/* Cap on the floats of all partial dW buffers together. */
#define CONV_PARTIAL_BUDGET ((int64_t)4 << 20)

/* Attributes: i[0] stride, i[1] pad, i[2] mask kind, i[3] column-buffer
 * slots, i[4] dW chunks, i[5] direct (1x1, no im2col).  Masked convs keep
 * the masked weight (Cout, K) in scratch from forward to backward. */

static ib__conv_geom geom_of(const ib_node *n)
{
    const ib_node *x = n->in[0], *w = n->in[1];
    ib__conv_geom gm = {
        .cin = x->shape[1], .h = x->shape[2], .w = x->shape[3], .ho = n->shape[2], .wo = n->shape[3],
        .kh = (int)w->shape[2], .kw = (int)w->shape[3], .stride = (int)n->i[0], .pad = (int)n->i[1],
    };
    return gm;
}

/* Floats of one column buffer, rounded to whole cache lines. */
static int64_t slot_floats(const ib_node *n)
{
    if (n->i[5])
        return 0;
    const ib_node *w = n->in[1];
    int64_t k = w->shape[1] * w->shape[2] * w->shape[3], p = n->shape[2] * n->shape[3];
    return (k * p + 15) / 16 * 16;
}

static bool tap_masked(int mask, int kh, int kw, int ki, int kj)
{
    int cy = kh / 2, cx = kw / 2;
    if (mask == MASK_NONE)
        return false;
    if (ki != cy)
        return ki > cy;
    return kj > cx || (mask == MASK_A && kj == cx);
}

/* Threads to use now: never more than the column buffers compiled in. */
static int conv_threads(const ib_node *n)
{
    int t = omp_get_max_threads();
    return t > n->i[3] ? (int)n->i[3] : (t < 1 ? 1 : t);
}

/* The weight the op computes with: W itself, or W with masked taps zeroed
 * (written to scratch by forward). */
static const float *weight_of(const ib_node *n) { return n->i[2] ? (const float *)n->scratch : n->in[1]->value; }

/* ---- forward ---- */

static void forward_image(const ib_node *n, const ib__conv_geom *gm, const float *wt, const float *xi, float *yi,
                          float *col, bool par)
{
    const ib_node *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    int64_t cout = w->shape[0], k = gm->cin * gm->kh * gm->kw, p = gm->ho * gm->wo;
    const float *cols = xi;
    if (!n->i[5]) {
        ib__im2col(gm, xi, col, par);
        cols = col;
    }
    float beta = 0.0f;
    if (b) {
        for (int64_t co = 0; co < cout; co++) {
            float v = b->value[co];
            float *r = yi + co * p;
            for (int64_t t = 0; t < p; t++)
                r[t] = v;
        }
        beta = 1.0f;
    }
    ib__sgemm(false, false, cout, p, k, 1.0f, wt, k, cols, p, beta, yi, p);
}

static void conv_forward(ib_graph *g, ib_node *n)
{
    const ib_node *x = n->in[0], *w = n->in[1];
    ib__conv_geom gm = geom_of(n);
    int64_t batch = x->shape[0], cout = w->shape[0];
    int64_t xs = gm.cin * gm.h * gm.w, ys = cout * gm.ho * gm.wo, sf = slot_floats(n);
    if (n->i[2]) { /* masked taps are zero in the weight used, whatever W holds */
        float *wm = n->scratch;
        for (int64_t r = 0; r < cout * gm.cin; r++)
            for (int ki = 0; ki < gm.kh; ki++)
                for (int kj = 0; kj < gm.kw; kj++) {
                    int64_t e = (r * gm.kh + ki) * gm.kw + kj;
                    wm[e] = tap_masked((int)n->i[2], gm.kh, gm.kw, ki, kj) ? 0.0f : w->value[e];
                }
    }
    const float *wt = weight_of(n);
    float *tmp = g->tmp;
    int t = conv_threads(n);
    if (t > 1 && batch >= t) {
#pragma omp parallel for schedule(static) num_threads(t)
        for (int64_t i = 0; i < batch; i++)
            forward_image(n, &gm, wt, x->value + i * xs, n->value + i * ys, tmp + omp_get_thread_num() * sf, false);
    } else {
        for (int64_t i = 0; i < batch; i++)
            forward_image(n, &gm, wt, x->value + i * xs, n->value + i * ys, tmp, true);
    }
}

/* ---- backward ---- */

/* dx_i += col2im(W^T dy_i); col is the image's column buffer (free to overwrite). */
static void backward_data_image(const ib_node *n, const ib__conv_geom *gm, const float *wt, const float *dyi,
                                float *dxi, float *col, bool par)
{
    int64_t cout = n->in[1]->shape[0], k = gm->cin * gm->kh * gm->kw, p = gm->ho * gm->wo;
    if (n->i[5]) {
        ib__sgemm(true, false, k, p, cout, 1.0f, wt, k, dyi, p, 1.0f, dxi, p);
        return;
    }
    ib__sgemm(true, false, k, p, cout, 1.0f, wt, k, dyi, p, 0.0f, col, p);
    ib__col2im_add(gm, col, dxi, par);
}

/* One chunk of images [i0, i1): its partial dW (zeroed here), and the input
 * gradient of its images when asked. */
static void backward_chunk(const ib_node *n, const ib__conv_geom *gm, const float *wt, int64_t i0, int64_t i1,
                           float *part, float *col, bool need_dx, bool par)
{
    const ib_node *x = n->in[0];
    int64_t cout = n->in[1]->shape[0], k = gm->cin * gm->kh * gm->kw, p = gm->ho * gm->wo;
    int64_t xs = gm->cin * gm->h * gm->w, ys = cout * p;
    memset(part, 0, (size_t)(cout * k) * sizeof(float));
    for (int64_t i = i0; i < i1; i++) {
        const float *xi = x->value + i * xs, *dyi = n->grad + i * ys;
        const float *cols = xi;
        if (!n->i[5]) {
            ib__im2col(gm, xi, col, par);
            cols = col;
        }
        ib__sgemm(false, true, cout, k, p, 1.0f, dyi, p, cols, p, 1.0f, part, k);
        if (need_dx)
            backward_data_image(n, gm, wt, dyi, x->grad + i * xs, col, par);
    }
}

static void conv_backward(ib_graph *g, ib_node *n)
{
    ib_node *x = n->in[0], *w = n->in[1], *b = n->n_in > 2 ? n->in[2] : NULL;
    ib__conv_geom gm = geom_of(n);
    int64_t batch = x->shape[0], cout = w->shape[0], k = gm.cin * gm.kh * gm.kw, p = gm.ho * gm.wo;
    int64_t xs = gm.cin * gm.h * gm.w, ys = cout * p, sf = slot_floats(n), slots = n->i[3];
    bool need_dx = x->needs_grad, need_dw = w->needs_grad, need_db = b && b->needs_grad;
    const float *dy = n->grad, *wt = weight_of(n);
    float *tmp = g->tmp;
    int t = conv_threads(n);

    if (need_db) { /* per channel, images then pixels in order */
        float *db = b->grad;
#pragma omp parallel for schedule(static) if (batch * ys > IB_PAR_MIN)
        for (int64_t co = 0; co < cout; co++) {
            double s = 0;
            for (int64_t i = 0; i < batch; i++) {
                const float *r = dy + i * ys + co * p;
                float ss = 0.0f;
                for (int64_t q = 0; q < p; q++)
                    ss += r[q];
                s += ss;
            }
            db[co] += (float)s;
        }
    }

    if (need_dw) {
        int64_t chunks = n->i[4], ck = cout * k;
        float *parts = tmp + slots * sf;
        if (t > 1 && chunks >= t) {
#pragma omp parallel for schedule(static) num_threads(t)
            for (int64_t c = 0; c < chunks; c++)
                backward_chunk(n, &gm, wt, c * batch / chunks, (c + 1) * batch / chunks, parts + c * ck,
                               tmp + omp_get_thread_num() * sf, need_dx, false);
        } else {
            for (int64_t c = 0; c < chunks; c++)
                backward_chunk(n, &gm, wt, c * batch / chunks, (c + 1) * batch / chunks, parts + c * ck, tmp,
                               need_dx, true);
        }
        float *dw = w->grad;
        int mask = (int)n->i[2];
#pragma omp parallel for schedule(static) if (ck * chunks > IB_PAR_MIN)
        for (int64_t e = 0; e < ck; e++) {
            float s = 0.0f;
            for (int64_t c = 0; c < chunks; c++)
                s += parts[c * ck + e];
            int kk = (int)(e % (gm.kh * gm.kw));
            if (!mask || !tap_masked(mask, gm.kh, gm.kw, kk / gm.kw, kk % gm.kw))
                dw[e] += s;
        }
    } else if (need_dx) {
        if (t > 1 && batch >= t) {
#pragma omp parallel for schedule(static) num_threads(t)
            for (int64_t i = 0; i < batch; i++)
                backward_data_image(n, &gm, wt, dy + i * ys, x->grad + i * xs, tmp + omp_get_thread_num() * sf,
                                    false);
        } else {
            for (int64_t i = 0; i < batch; i++)
                backward_data_image(n, &gm, wt, dy + i * ys, x->grad + i * xs, tmp, true);
        }
    }
}

static const ib_op op_conv2d = {"conv2d", conv_forward, conv_backward};
static const ib_op op_conv2d_masked = {"conv2d_masked", conv_forward, conv_backward};

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
    int64_t batch = x->shape[0], cout = w->shape[0], k = w->shape[1] * kh * kw;
    ib_node *n = ib__node_new(g, op, n_in, in, 4, (int64_t[]){batch, cout, ho, wo});
    if (!n)
        return NULL;
    n->i[0] = stride;
    n->i[1] = pad;
    n->i[2] = mask;
    /* One column buffer per thread that may run; sized for the larger of the
     * configured thread count and the cores, so raising the thread count
     * after building still uses them. */
    int64_t slots = ib_get_threads();
    if (omp_get_num_procs() > slots)
        slots = omp_get_num_procs();
    if (slots > batch)
        slots = batch;
    int64_t chunks = batch < CONV_MAX_CHUNKS ? batch : CONV_MAX_CHUNKS;
    while (chunks > 1 && chunks * cout * k > CONV_PARTIAL_BUDGET)
        chunks--;
    n->i[3] = slots;
    n->i[4] = chunks;
    n->i[5] = kh == 1 && kw == 1 && stride == 1 && pad == 0;
    n->tmp_bytes = (size_t)(slots * slot_floats(n) + chunks * cout * k) * sizeof(float);
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
    if (mask_type != 'A' && mask_type != 'B')
        return ib__fail(g, IB_ERR_ARG, "conv2d_masked: mask type '%c' on weight '%s' must be 'A' or 'B'", mask_type,
                        w->name);
    if (w->ndim != 4 || w->shape[2] != w->shape[3] || w->shape[2] % 2 == 0) {
        char sw[64];
        return ib__fail(g, IB_ERR_SHAPE, "conv2d_masked: weight '%s' %s must have an odd square kernel", w->name,
                        ib__shape_str(w, sw, sizeof sw));
    }
    return conv_build(g, &op_conv2d_masked, x, w, b, 1, pad, mask_type == 'A' ? MASK_A : MASK_B);
}
