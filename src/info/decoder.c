/*
 * decoder.c — I(X;H) through a conditional autoregressive decoder (Darlow &
 * Storkey): a small gated PixelCNN models p(x | h) of a binarised image x
 * given a layer's activations h, its unconditional twin models p(x), and
 *
 *     I(X;H) = H(X) - H(X|H),  H(X|H) <= E[-log p(x|h)],  H(X) ~ E[-log p(x)]
 *
 * both expectations over held-out images.  The first is a bound; the
 * second is one too (an upper bound on H(X), not H(X) itself), so their
 * difference is an *estimate*: it is neither a guaranteed lower nor upper
 * bound on I(X;H).  The two decoders share the architecture, the training
 * rows, the steps and the seed, so their errors in modelling x partly
 * cancel.
 *
 * The network, for an image of C = 1 channel (pixels binarised at 128):
 * a gated PixelCNN with a vertical and a horizontal stack, L + 1 gated
 * layers (the first 7x7, the others 3x3), each
 *
 *     v_a = masked conv of v (mask V first: rows above; then W: rows up to
 *           the current one) to 2F + vcond_l
 *     h_a = masked conv of h (mask A first, then B: raster order) to 2F
 *           + 1x1 conv of v_a + cond_l
 *     v += gated tanh(v_a), h += gated tanh(h_a)  (F channels; residual
 *          after the first layer)
 *
 * then ReLU -> 1x1 conv (F) -> ReLU -> 1x1 conv (1): the logit l of each
 * pixel, -log p(x_i | x_<i, h) = softplus(l) - x_i l.  With 256 levels
 * (o->bins = 256) the image is not binarised: the last conv gives 256
 * logits per pixel and -log p(x_i | ...) = -log softmax(l_i)[x_i], through
 * permute to (N, H, W, 256), rows of 256, log-softmax and gather.
 *
 * The vertical stack at row r sees only rows above r (mask V, then W over
 * features that themselves see only rows above), every column within the
 * kernels' reach; the horizontal stack adds the pixels before i in its
 * own row.  So the logit at pixel i reads only pixels before i, and every
 * one of them within reach: a plain stack of A/B-masked convolutions
 * alone has a blind spot (pixels above and to the right of i beyond the
 * kernel's reach at each layer are never seen), which the vertical stack
 * removes.  tests/test_decoder.c checks both halves on 5 x 5 images.  The
 * horizontal stack uses square A/B masks rather than a 1 x k row kernel:
 * the op computes the full k x k either way, and the rows above it sees
 * besides are also causal.

 * The condition h enters every gated layer as a bias on the 2F channels:
 * a flat h (N, D) through a linear map per layer (one bias per channel,
 * broadcast over the image); a feature map (N, C', H', W') whose size
 * divides the image's by one integer factor through nearest-neighbour
 * upsampling and a 1x1 conv per layer (a bias per channel and pixel);
 * other feature maps are flattened.  h's columns are standardised with the
 * training rows' mean and standard deviation (a constant column stays 0).
 *
 * Training: Adam on the mean per-image NLL over batches of training rows
 * (shuffled each epoch by the seed), on ibnet's engine in a store of its
 * own.  Evaluation: a forward-only graph over the rows, the NLL summed in
 * double per image.  Sampling: pixel by pixel in raster order, each a
 * forward pass, the uniform draw keyed by (seed, row, pixel).
 */
#include "info_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_BATCH 100

struct ib_decoder {
    int c, h, w;
    int levels;            /* 2: binarised, Bernoulli; 256: grey levels, a softmax per pixel */
    int feats, layers;     /* F and L */
    int64_t cond_d;        /* columns of h (0: unconditional) */
    int cond_c, cond_h, cond_w, up; /* a feature map upsampled by up (0: flat) */
    float *mean, *inv_std; /* (cond_d) standardisation of h */
    ib_mi_options o;
    ib_params *p;
    ib_graph *train, *eval;
    int64_t train_b, eval_b;
    uint64_t steps_done;
};

/* The nodes of one built network. */
typedef struct net_io {
    ib_node *x, *cond, *logits, *nll; /* nll: (B) per image, nats */
    ib_node *levels;                  /* 256 levels: (B H W) int32 grey level of each pixel */
} net_io;

static ib_node *masked(ib_graph *g, ib_node *x, const char *name, int64_t cout, int k, char mask)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    int64_t cin = ib_node_dim(x, 1);
    float bound = 1.0f / sqrtf((float)(cin * k * k));
    ib_node *w = ib_param(g, wn, 4, (int64_t[]){cout, cin, k, k}, IB_INIT_PYTORCH_DEFAULT);
    ib_node *b = ib_param(g, bn, 1, (int64_t[]){cout}, (ib_init){IB_INIT_UNIFORM, -bound, bound});
    return ib_conv2d_masked(g, x, w, b, k / 2, mask);
}

/* The condition's bias on 2F channels for gated layer `name`: (B, 2F, 1, 1)
 * from a flat h, (B, 2F, H, W) from an upsampled feature map. */
static ib_node *cond_bias(ib_graph *g, const ib_decoder *m, ib_node *cond, ib_node *cmap, const char *name)
{
    int64_t B = ib_node_dim(cond, 0), F2 = 2 * (int64_t)m->feats;
    return cmap ? ib_nn_conv2d(g, cmap, name, F2, 1, 1, 0, true)
                : ib_reshape(g, ib_nn_linear(g, cond, name, F2, true), 4, (int64_t[]){B, F2, 1, 1});
}

static void build(ib_graph *g, const ib_decoder *m, int64_t B, net_io *io)
{
    int64_t F = m->feats, H = m->h, W = m->w;
    io->x = ib_input(g, "x", 4, (int64_t[]){B, m->c, H, W});
    io->cond = m->cond_d ? ib_input(g, "h", 2, (int64_t[]){B, m->cond_d}) : NULL;
    ib_node *cmap = NULL;
    if (io->cond && m->up)
        cmap = ib_upsample_nearest(g, ib_reshape(g, io->cond, 4, (int64_t[]){B, m->cond_c, m->cond_h, m->cond_w}),
                                   m->up);
    ib_node *xin = ib_affine(g, io->x, 2.0f, -1.0f); /* {0, 1} -> {-1, 1}: zero padding is neither */
    ib_node *hcur = NULL, *vcur = NULL;
    for (int l = 0; l <= m->layers; l++) {
        char name[32];
        int k = l == 0 ? 7 : 3;
        /* the vertical stack: rows above only (V), then rows up to the
         * current one of features that themselves see only rows above (W) */
        snprintf(name, sizeof name, "vgate%d", l);
        ib_node *va = masked(g, l == 0 ? xin : vcur, name, 2 * F, k, l == 0 ? 'V' : 'W');
        if (io->cond) {
            snprintf(name, sizeof name, "vcond%d", l);
            va = ib_add(g, va, cond_bias(g, m, io->cond, cmap, name));
        }
        /* the horizontal stack: raster-order masks, plus the vertical
         * stack's pre-activation at the same pixel (it sees rows above) */
        snprintf(name, sizeof name, "gate%d", l);
        ib_node *a = masked(g, l == 0 ? xin : hcur, name, 2 * F, k, l == 0 ? 'A' : 'B');
        snprintf(name, sizeof name, "v2h%d", l);
        a = ib_add(g, a, ib_nn_conv2d(g, va, name, 2 * F, 1, 1, 0, false));
        if (io->cond) {
            snprintf(name, sizeof name, "cond%d", l);
            a = ib_add(g, a, cond_bias(g, m, io->cond, cmap, name));
        }
        if (l < m->layers) { /* the last layer's vertical output would feed nothing */
            ib_node *vg = ib_gated_tanh(g, ib_slice(g, va, 1, 0, F), ib_slice(g, va, 1, F, F));
            vcur = l == 0 ? vg : ib_add(g, vcur, vg);
        }
        ib_node *hg = ib_gated_tanh(g, ib_slice(g, a, 1, 0, F), ib_slice(g, a, 1, F, F));
        hcur = l == 0 ? hg : ib_add(g, hcur, hg);
    }
    ib_node *o1 = ib_relu(g, ib_nn_conv2d(g, ib_relu(g, hcur), "out1", F, 1, 1, 0, true));
    io->levels = NULL;
    if (m->levels == 2) {
        io->logits = ib_nn_conv2d(g, o1, "out2", m->c, 1, 1, 0, true);
        ib_node *nll = ib_sub(g, ib_softplus(g, io->logits, 0.0f), ib_mul(g, io->x, io->logits));
        io->nll = ib_sum(g, ib_reshape(g, nll, 2, (int64_t[]){B, m->c * H * W}), 1);
        return;
    }
    /* 256 grey levels: logits (B, 256, H, W); -log softmax over the channel
     * axis at each pixel's level, through rows (B H W, 256) */
    int64_t L = m->levels, R = B * H * W;
    io->logits = ib_nn_conv2d(g, o1, "out2", L, 1, 1, 0, true);
    io->levels = ib_input_labels(g, "levels", R);
    ib_node *rows = ib_reshape(g, ib_permute(g, io->logits, (int[]){0, 2, 3, 1}), 2, (int64_t[]){R, L});
    ib_node *logp = ib_gather(g, ib_log_softmax(g, rows), io->levels);
    io->nll = ib_scale(g, ib_sum(g, ib_reshape(g, logp, 2, (int64_t[]){B, H * W}), 1), -1.0f);
}

void ib_decoder_free(ib_decoder *m)
{
    if (!m)
        return;
    ib_graph_free(m->train);
    ib_graph_free(m->eval);
    ib_params_free(m->p);
    free(m->mean);
    free(m->inv_std);
    free(m);
}

static ib_status check_data(const ib_decoder_data *d, const char *who)
{
    if (!d || !d->images || d->n < 1 || d->c != 1 || d->h < 2 || d->w < 2 || d->h > 4096 || d->w > 4096)
        return ib__error(IB_ERR_ARG, "%s: the decoder needs images of one channel (binarised at 128), at least "
                                     "2 x 2 (got %lld images of %d x %d x %d)",
                         who, d ? (long long)d->n : 0LL, d ? d->c : 0, d ? d->h : 0, d ? d->w : 0);
    if (d->cond_ndim != 0 && d->cond_ndim != 1 && d->cond_ndim != 3)
        return ib__error(IB_ERR_ARG, "%s: the condition must be flat (1 dim per example), a feature map (3) or "
                                     "none (0), not %d dims",
                         who, d->cond_ndim);
    int64_t cd = 1;
    for (int k = 0; k < d->cond_ndim; k++) {
        if (d->cond_shape[k] < 1)
            return ib__error(IB_ERR_ARG, "%s: the condition's dimension %d is %lld", who, k,
                             (long long)d->cond_shape[k]);
        cd *= d->cond_shape[k];
    }
    if (d->cond_ndim && !d->cond)
        return ib__error(IB_ERR_ARG, "%s: the condition has a shape but no values", who);
    if (d->cond_ndim)
        for (int64_t k = 0; k < d->n * cd; k++)
            if (!isfinite(d->cond[k]))
                return ib__error(IB_ERR_ARG, "%s: the condition has a non-finite value (%g) in row %lld", who,
                                 (double)d->cond[k], (long long)(k / cd));
    return IB_OK;
}

static int64_t cond_cols(const ib_decoder_data *d)
{
    int64_t cd = d->cond_ndim ? 1 : 0;
    for (int k = 0; k < d->cond_ndim; k++)
        cd *= d->cond_shape[k];
    return cd;
}

ib_status ib_decoder_new(const ib_decoder_data *d, const ib_mi_options *o, ib_decoder **out)
{
    if (!out || !o)
        return ib__error(IB_ERR_ARG, "ib_decoder_new: NULL argument");
    *out = NULL;
    ib_status st = check_data(d, "decoder");
    if (st != IB_OK)
        return st;
    if (o->hidden < 1 || o->hidden > 1024 || o->embed < 0 || o->embed > 64 || o->steps < 0 || o->batch < 1 ||
        !(o->lr > 0))
        return ib__error(IB_ERR_ARG, "decoder: bad settings (channels %d in 1..1024, layers %d in 0..64, steps %d >= "
                                     "0, batch %d >= 1, lr %g > 0 are needed)",
                         o->hidden, o->embed, o->steps, o->batch, o->lr);
    if (o->bins != 0 && o->bins != 2 && o->bins != 256)
        return ib__error(IB_ERR_ARG, "decoder: the pixel likelihood has 2 levels (binarised, Bernoulli) or 256 (grey "
                                     "levels, a softmax per pixel), not %d",
                         o->bins);
    ib_decoder *m = calloc(1, sizeof *m);
    if (!m)
        return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    m->levels = o->bins == 256 ? 256 : 2;
    m->c = d->c;
    m->h = d->h;
    m->w = d->w;
    m->feats = o->hidden;
    m->layers = o->embed;
    m->o = *o;
    m->cond_d = cond_cols(d);
    if (d->cond_ndim == 3) {
        int64_t ch = d->cond_shape[1], cw = d->cond_shape[2];
        if (d->h % ch == 0 && d->w % cw == 0 && d->h / ch == d->w / cw && d->h / ch <= 64) {
            m->cond_c = (int)d->cond_shape[0];
            m->cond_h = (int)ch;
            m->cond_w = (int)cw;
            m->up = (int)(d->h / ch);
        }
    }
    m->p = ib_params_new(o->seed);
    if (m->cond_d) {
        m->mean = calloc((size_t)m->cond_d, sizeof(float));
        m->inv_std = malloc((size_t)m->cond_d * sizeof(float));
        for (int64_t k = 0; m->inv_std && k < m->cond_d; k++)
            m->inv_std[k] = 1.0f;
    }
    if (!m->p || (m->cond_d && (!m->mean || !m->inv_std))) {
        ib_decoder_free(m);
        return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    }
    *out = m;
    return IB_OK;
}

/* Batch rows rows[0..b) of d into the graph's inputs (a row index < 0
 * repeats the first row: padding of the last eval batch). */
static void fill(const ib_decoder *m, const ib_decoder_data *d, const net_io *io, const int64_t *rows, int64_t b)
{
    int64_t px = (int64_t)m->c * m->h * m->w;
    float *x = ib_node_data(io->x), *h = io->cond ? ib_node_data(io->cond) : NULL;
    int32_t *lv = io->levels ? ib_node_labels(io->levels) : NULL;
    for (int64_t r = 0; r < b; r++) {
        int64_t row = rows[r];
        const uint8_t *img = d->images + row * px;
        if (m->levels == 2)
            for (int64_t k = 0; k < px; k++)
                x[r * px + k] = img[k] >= 128 ? 1.0f : 0.0f;
        else
            for (int64_t k = 0; k < px; k++) {
                x[r * px + k] = (float)img[k] / 255.0f;
                lv[r * px + k] = img[k];
            }
        if (h)
            for (int64_t k = 0; k < m->cond_d; k++)
                h[r * m->cond_d + k] = (d->cond[row * m->cond_d + k] - m->mean[k]) * m->inv_std[k];
    }
}

static ib_status graph_ok(ib_graph *g)
{
    ib_status st = ib_graph_status(g);
    if (st == IB_OK)
        st = ib_graph_compile(g);
    if (st != IB_OK)
        return ib__error(st, "decoder: building the network failed: %s", ib_graph_error(g)[0] ? ib_graph_error(g)
                                                                                               : ib_last_error());
    return IB_OK;
}

static ib_status same_shape(const ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n)
{
    ib_status st = check_data(d, "decoder");
    if (st != IB_OK)
        return st;
    if (d->c != m->c || d->h != m->h || d->w != m->w || cond_cols(d) != m->cond_d)
        return ib__error(IB_ERR_SHAPE, "decoder: data of %d x %d x %d with %lld condition values, the decoder was "
                                       "made for %d x %d x %d with %lld",
                         d->c, d->h, d->w, (long long)cond_cols(d), m->c, m->h, m->w, (long long)m->cond_d);
    if (n < 1 || !rows)
        return ib__error(IB_ERR_ARG, "decoder: no rows");
    for (int64_t r = 0; r < n; r++)
        if (rows[r] < 0 || rows[r] >= d->n)
            return ib__error(IB_ERR_ARG, "decoder: row %lld is outside the %lld images", (long long)rows[r],
                             (long long)d->n);
    return IB_OK;
}

ib_status ib_decoder_fit(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n)
{
    if (!m)
        return ib__error(IB_ERR_ARG, "ib_decoder_fit: NULL decoder");
    ib_status st = same_shape(m, d, rows, n);
    if (st != IB_OK)
        return st;
    if (m->train)
        return ib__error(IB_ERR_STATE, "decoder: already trained");
    /* the condition's standardisation, from the training rows */
    for (int64_t k = 0; k < m->cond_d; k++) {
        double mu = 0, var = 0;
        for (int64_t r = 0; r < n; r++)
            mu += d->cond[rows[r] * m->cond_d + k];
        mu /= (double)n;
        for (int64_t r = 0; r < n; r++) {
            double t = d->cond[rows[r] * m->cond_d + k] - mu;
            var += t * t;
        }
        double sd = sqrt(var / (double)n);
        m->mean[k] = (float)mu;
        m->inv_std[k] = sd > 1e-12 ? (float)(1.0 / sd) : 0.0f;
    }
    m->train_b = m->o.batch < n ? m->o.batch : n;
    m->train = ib_graph_new(m->p);
    if (!m->train)
        return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    net_io io;
    build(m->train, m, m->train_b, &io);
    ib_node *loss = ib_mean(m->train, io.nll, IB_ALL);
    if ((st = graph_ok(m->train)) != IB_OK)
        return st;
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    oc.lr = (float)m->o.lr;
    ib_optim *opt = ib_optim_new(m->p, &oc);
    int64_t *order = malloc((size_t)n * sizeof *order);
    if (!opt || !order) {
        ib_optim_free(opt);
        free(order);
        return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    }
    int64_t per_epoch = n / m->train_b, pos = per_epoch;
    uint64_t stream = ib_rng_stream_of("info.decoder.batches");
    for (int step = 0; step < m->o.steps && st == IB_OK; step++) {
        if (pos == per_epoch) { /* a new epoch: shuffle (Fisher-Yates) */
            memcpy(order, rows, (size_t)n * sizeof *order);
            for (int64_t i = n - 1; i > 0; i--) {
                int64_t j = (int64_t)(ib_rng_u64(m->o.seed, stream, (uint64_t)step, (uint64_t)i) % (uint64_t)(i + 1));
                int64_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            pos = 0;
        }
        fill(m, d, &io, order + pos * m->train_b, m->train_b);
        pos++;
        ib_params_zero_grad(m->p);
        if ((st = ib_graph_forward(m->train)) == IB_OK && (st = ib_graph_backward(m->train, loss)) == IB_OK)
            st = ib_optim_step(opt);
        if (st == IB_OK && !isfinite(ib_node_scalar(loss)))
            st = ib__error(IB_ERR_NUMERIC, "decoder: the training loss is not finite at step %d", step + 1);
        else if (st != IB_OK)
            st = ib__error(st, "decoder: training failed at step %d: %s", step + 1, ib_last_error());
        m->steps_done++;
    }
    ib_optim_free(opt);
    free(order);
    return st;
}

/* The forward-only graph for evaluation and sampling (batch b), built once. */
static ib_status eval_graph(ib_decoder *m, int64_t b, net_io *io)
{
    if (m->eval && m->eval_b != b) {
        ib_graph_free(m->eval);
        m->eval = NULL;
    }
    bool fresh = !m->eval;
    if (fresh) {
        m->eval = ib_graph_new(m->p);
        if (!m->eval)
            return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
        ib_graph_set_forward_only(m->eval, true);
        ib_graph_set_training(m->eval, false);
        m->eval_b = b;
    }
    if (fresh) { /* built once; later calls find the nodes by name */
        build(m->eval, m, b, io);
        ib_node_set_name(ib_node_keep(io->logits), "dec.logits");
        ib_node_set_name(ib_node_keep(io->nll), "dec.nll");
        ib_status st = graph_ok(m->eval);
        if (st != IB_OK) {
            ib_graph_free(m->eval);
            m->eval = NULL;
            return st;
        }
    } else {
        io->x = ib_graph_find(m->eval, "x");
        io->cond = m->cond_d ? ib_graph_find(m->eval, "h") : NULL;
        io->logits = ib_graph_find(m->eval, "dec.logits");
        io->nll = ib_graph_find(m->eval, "dec.nll");
        io->levels = m->levels == 2 ? NULL : ib_graph_find(m->eval, "levels");
    }
    return IB_OK;
}

ib_status ib_decoder_nll(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n, double *nll)
{
    if (!m || !nll)
        return ib__error(IB_ERR_ARG, "ib_decoder_nll: NULL argument");
    ib_status st = same_shape(m, d, rows, n);
    if (st != IB_OK)
        return st;
    net_io io;
    if ((st = eval_graph(m, n < EVAL_BATCH ? n : EVAL_BATCH, &io)) != IB_OK)
        return st;
    int64_t b = m->eval_b, idx[EVAL_BATCH];
    for (int64_t s = 0; s < n; s += b) {
        int64_t k = n - s < b ? n - s : b;
        for (int64_t r = 0; r < b; r++)
            idx[r] = rows[s + (r < k ? r : 0)];
        fill(m, d, &io, idx, b);
        if ((st = ib_graph_forward(m->eval)) != IB_OK)
            return st;
        const float *v = ib_node_data(io.nll);
        for (int64_t r = 0; r < k; r++)
            nll[s + r] = v[r];
    }
    return IB_OK;
}

ib_status ib__decoder_logits(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n, float *out)
{
    ib_status st = same_shape(m, d, rows, n);
    if (st != IB_OK)
        return st;
    if (n > EVAL_BATCH)
        return ib__error(IB_ERR_ARG, "decoder logits: at most %d rows", EVAL_BATCH);
    net_io io;
    if ((st = eval_graph(m, n, &io)) != IB_OK)
        return st;
    fill(m, d, &io, rows, n);
    if ((st = ib_graph_forward(m->eval)) != IB_OK)
        return st;
    int64_t outc = m->levels == 2 ? m->c : m->levels;
    memcpy(out, ib_node_data(io.logits), (size_t)(n * outc * m->h * m->w) * sizeof(float));
    return IB_OK;
}

ib_status ib_decoder_sample(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n, uint64_t seed,
                            uint8_t *out)
{
    if (!m || !out)
        return ib__error(IB_ERR_ARG, "ib_decoder_sample: NULL argument");
    ib_status st = same_shape(m, d, rows, n);
    if (st != IB_OK)
        return st;
    net_io io;
    if ((st = eval_graph(m, n < EVAL_BATCH ? n : EVAL_BATCH, &io)) != IB_OK)
        return st;
    int64_t b = m->eval_b, px = (int64_t)m->c * m->h * m->w, idx[EVAL_BATCH];
    uint64_t stream = ib_rng_stream_of("info.decoder.sample");
    for (int64_t s = 0; s < n; s += b) {
        int64_t k = n - s < b ? n - s : b;
        for (int64_t r = 0; r < b; r++)
            idx[r] = rows[s + (r < k ? r : 0)];
        fill(m, d, &io, idx, b); /* the condition; x (and the levels) are overwritten below */
        float *x = ib_node_data(io.x);
        int32_t *lv = io.levels ? ib_node_labels(io.levels) : NULL;
        memset(x, 0, (size_t)(b * px) * sizeof(float));
        if (lv)
            memset(lv, 0, (size_t)(b * px) * sizeof(int32_t));
        int64_t L = m->levels;
        for (int64_t i = 0; i < px; i++) {
            if ((st = ib_graph_forward(m->eval)) != IB_OK)
                return st;
            const float *l = ib_node_data(io.logits);
            for (int64_t r = 0; r < b; r++) {
                /* a uniform in [0, 1) from 53 bits keyed by (seed, example, pixel) */
                double u = (double)(ib_rng_u64(seed, stream, (uint64_t)(s + r), (uint64_t)i) >> 11) * 0x1p-53;
                if (L == 2) {
                    double p = 1.0 / (1.0 + exp(-(double)l[r * px + i]));
                    x[r * px + i] = u < p ? 1.0f : 0.0f;
                    if (r < k)
                        out[(s + r) * px + i] = u < p ? 255 : 0;
                    continue;
                }
                /* the level: the inverse of the softmax's CDF at u */
                const float *lr = l + r * L * px + i; /* level v at lr[v * px] */
                double mx = lr[0], z = 0, acc = 0;
                for (int64_t v = 1; v < L; v++)
                    mx = lr[v * px] > mx ? lr[v * px] : mx;
                for (int64_t v = 0; v < L; v++)
                    z += exp((double)lr[v * px] - mx);
                int64_t v = 0;
                for (; v < L - 1; v++) {
                    acc += exp((double)lr[v * px] - mx) / z;
                    if (u < acc)
                        break;
                }
                x[r * px + i] = (float)v / 255.0f;
                lv[r * px + i] = (int32_t)v;
                if (r < k)
                    out[(s + r) * px + i] = (uint8_t)v;
            }
        }
    }
    return IB_OK;
}

/* Rows 0..n-1 shuffled by the seed: the first n_train train, the rest are held out. */
static int64_t *split_rows(int64_t n, uint64_t seed)
{
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    if (!perm)
        return NULL;
    uint64_t stream = ib_rng_stream_of("info.decoder.split");
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(ib_rng_u64(seed, stream, 0, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return perm;
}

ib_status ib_decoder_split(int64_t n, const ib_mi_options *o, int64_t *rows, int64_t *n_train)
{
    if (!o || !rows || !n_train || n < 2 || !(o->test_share > 0 && o->test_share < 1))
        return ib__error(IB_ERR_ARG, "ib_decoder_split: bad argument");
    int64_t *perm = split_rows(n, o->seed);
    if (!perm)
        return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    memcpy(rows, perm, (size_t)n * sizeof *rows);
    free(perm);
    *n_train = n - (int64_t)llround((double)n * o->test_share);
    return IB_OK;
}

static double mean_of(const double *v, int64_t n)
{
    double s = 0;
    for (int64_t k = 0; k < n; k++)
        s += v[k];
    return s / (double)n;
}

ib_status ib_decoder_mi(const ib_decoder_data *d, int n_cond, const ib_mi_options *o, ib_mi_result *out,
                        ib_decoder **keep)
{
    if (!d || n_cond < 1 || !o || !out)
        return ib__error(IB_ERR_ARG, "ib_decoder_mi: NULL argument or no condition");
    for (int k = 0; k < n_cond; k++) {
        ib_status st = check_data(&d[k], "decoder");
        if (st != IB_OK)
            return st;
        if (d[k].n != d[0].n || d[k].images != d[0].images)
            return ib__error(IB_ERR_ARG, "decoder: every condition must come with the same images");
        if (!d[k].cond_ndim)
            return ib__error(IB_ERR_ARG, "decoder: condition %d has no values", k);
    }
    int64_t n = d[0].n, n_test = (int64_t)llround((double)n * o->test_share);
    if (!(o->test_share > 0 && o->test_share < 1) || n_test < 1 || n - n_test < 1)
        return ib__error(IB_ERR_ARG, "decoder: %lld images cannot be split into training and held-out rows (test "
                                     "share %g)",
                         (long long)n, o->test_share);
    int64_t n_train = n - n_test;
    int64_t *perm = split_rows(n, o->seed);
    double *nll = malloc((size_t)n_test * sizeof *nll);
    ib_decoder *u = NULL;
    ib_status st = perm && nll ? IB_OK : ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    /* the unconditional twin: the same images, no condition */
    ib_decoder_data du = d[0];
    du.cond_ndim = 0;
    du.cond = NULL;
    if (st == IB_OK)
        st = ib_decoder_new(&du, o, &u);
    if (st == IB_OK)
        st = ib_decoder_fit(u, &du, perm, n_train);
    if (st == IB_OK)
        st = ib_decoder_nll(u, &du, perm + n_train, n_test, nll);
    double hx = st == IB_OK ? mean_of(nll, n_test) : NAN;
    for (int k = 0; k < n_cond && st == IB_OK; k++) {
        ib_decoder *c = NULL;
        st = ib_decoder_new(&d[k], o, &c);
        if (st == IB_OK)
            st = ib_decoder_fit(c, &d[k], perm, n_train);
        if (st == IB_OK)
            st = ib_decoder_nll(c, &d[k], perm + n_train, n_test, nll);
        if (st == IB_OK) {
            ib_mi_result r = {0};
            if (o->bins == 256)
                snprintf(r.estimator, sizeof r.estimator, "decoder:%d:%d:256", o->hidden, o->embed);
            else
                snprintf(r.estimator, sizeof r.estimator, "decoder:%d:%d", o->hidden, o->embed);
            r.bins = o->bins == 256 ? 256 : 2;
            r.method = IB_MI_DECODER;
            r.kind = IB_MI_ESTIMATE;
            snprintf(r.quantity, sizeof r.quantity, "I(X;T)");
            r.ce_nats = mean_of(nll, n_test);
            r.label_entropy = hx;
            r.nats = hx - r.ce_nats;
            r.bits = r.nats / log(2.0);
            r.n = n_test;
            r.n_train = n_train;
            r.states = (int64_t)d[k].c * d[k].h * d[k].w;
            r.seed = o->seed;
            r.seeds = 1;
            r.steps = o->steps;
            r.batch = o->batch < n_train ? o->batch : (int)n_train;
            r.hidden = o->hidden;
            r.embed = o->embed;
            out[k] = r;
        }
        if (keep && st == IB_OK)
            keep[k] = c;
        else
            ib_decoder_free(c);
    }
    if (st != IB_OK && keep)
        for (int k = 0; k < n_cond; k++) {
            ib_decoder_free(keep[k]);
            keep[k] = NULL;
        }
    ib_decoder_free(u);
    free(perm);
    free(nll);
    return st;
}

/* ib_mi_estimate's entry: a holds images as rows of s x s pixels (values in
 * [0, 1], binarised at 0.5; integers 0 or 1), b a flat condition. */
ib_status ib__mi_decoder(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out)
{
    if (!b)
        return ib__error(IB_ERR_ARG, "decoder: I(X;T) needs both the images (A) and the layer (B)");
    int64_t s = (int64_t)llround(sqrt((double)a->d));
    if (s * s != a->d || s < 2)
        return ib__error(IB_ERR_ARG, "decoder: A's rows must be square images of one channel (%lld values is not a "
                                     "square of at least 2 x 2)",
                         (long long)a->d);
    uint8_t *img = malloc((size_t)(a->n * a->d));
    float *cond = b->f ? NULL : malloc((size_t)(b->n * b->d) * sizeof(float));
    if (!img || (!b->f && !cond)) {
        free(img);
        free(cond);
        return ib__error(IB_ERR_NOMEM, "decoder: out of memory");
    }
    ib_status st = IB_OK;
    for (int64_t k = 0; k < a->n * a->d && st == IB_OK; k++) {
        double v = a->f ? (double)a->f[k] : (double)a->i[k];
        if (a->i ? (v != 0 && v != 1) : !(v >= 0 && v <= 1))
            st = ib__error(IB_ERR_ARG, "decoder: A's pixel values must lie in [0, 1] (floats) or be 0 or 1 "
                                       "(integers); row %lld has %g",
                           (long long)(k / a->d), v);
        img[k] = o->bins == 256 ? (uint8_t)lround(v * 255.0) : v > 0.5 ? 255 : 0;
    }
    if (cond)
        for (int64_t k = 0; k < b->n * b->d; k++)
            cond[k] = (float)b->i[k];
    if (st == IB_OK) {
        ib_decoder_data dd = {.n = a->n, .c = 1, .h = (int)s, .w = (int)s, .images = img, .cond_ndim = 1,
                              .cond_shape = {b->d}, .cond = cond ? cond : b->f};
        st = ib_decoder_mi(&dd, 1, o, out, NULL);
    }
    free(img);
    free(cond);
    return st;
}
