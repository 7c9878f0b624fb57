/*
 * model_kinds.c — the layer kinds of the model description format
 * (docs/model-format.md), in one table: each kind's word, positional
 * argument, options (with defaults and checks), shape rule, parameters and
 * buffers (which give its parameter count) and graph builder.  The parser,
 * the canonical text, the summary, the builder and the layer listing read
 * layers only through this table, so no other file names a kind.
 *
 * Adding a kind (docs/model-format.md, "Adding a layer kind"): a row in
 * `ib__model_kinds` (its place there is its place in the "unknown layer"
 * message), any new key as a row in `ib__model_opts` (its place there is
 * its place in the canonical text), and its hooks here: finish (defaults
 * that depend on other options, checks across options), shape (the output
 * shape from the input shape), tensors (its parameters and buffers, named
 * and shaped as build creates them, in that order) and build.
 */
#include "model_internal.h"

/* ------------------------------------------------------------------ */
/* options                                                             */

enum {
    O_K, O_STRIDE, O_PAD, O_BIAS, O_P, O_SLOPE, O_SHIFT, O_BETA, O_DROPOUT, O_SHORTCUT,
    O_PARTICLES, O_GRAD, O_TEMP, O_PRIOR,         /* bernoulli (IMB) */
    O_ZDIM, O_HIDDEN, O_DETERMINISTIC, O_STUDENT, /* vsdhead (VSD) */
    N_OPTS
};
#define B(o) (1u << (o))

enum { SC_CONV = 0, SC_PAD = 1 }; /* shortcut= */
enum { GRAD_ST = 0, GRAD_GUMBEL = 1 };    /* grad= */
enum { PRIOR_LEARNED = 0, PRIOR_HALF = 1 }; /* prior= */
enum { ST_MLP = 0, ST_LINEAR = 1 }; /* student= */

/* Fields: key, type, range lo..hi, default, choices, left out of the
 * canonical text at its default. */
const ib__model_opt ib__model_opts[] = {
    [O_K] = {"k", IB__OPT_INT, 1, 64, 0, {0}, false},
    [O_STRIDE] = {"stride", IB__OPT_INT, 1, 64, 1, {0}, false},
    [O_PAD] = {"pad", IB__OPT_INT, 0, 64, 0, {0}, false},
    [O_BIAS] = {"bias", IB__OPT_BOOL, 0, 0, 1, {0}, false},
    [O_P] = {"p", IB__OPT_FLOAT, 0, 0.999999, 0, {0}, false},
    [O_SLOPE] = {"slope", IB__OPT_FLOAT, -1e6, 1e6, 0.01, {0}, false},
    [O_SHIFT] = {"shift", IB__OPT_FLOAT, -100, 100, -5, {0}, false},
    [O_BETA] = {"beta", IB__OPT_FLOAT, 0, 1e6, -1, {0}, true}, /* -1: unset, the trainer decides */
    [O_DROPOUT] = {"dropout", IB__OPT_FLOAT, 0, 0.999999, 0, {0}, false},
    [O_SHORTCUT] = {"shortcut", IB__OPT_CHOICE, 0, 0, SC_CONV, {"conv", "pad"}, false},
    [O_PARTICLES] = {"particles", IB__OPT_INT, 1, 1024, 1, {0}, true}, /* 1 left out: vib texts as before */
    [O_GRAD] = {"grad", IB__OPT_CHOICE, 0, 0, GRAD_ST, {"st", "gumbel"}, false},
    [O_TEMP] = {"temp", IB__OPT_FLOAT, 0, 1e6, 0, {0}, true}, /* 0: unset (st needs none) */
    [O_PRIOR] = {"prior", IB__OPT_CHOICE, 0, 0, PRIOR_LEARNED, {"learned", "half"}, false},
    [O_ZDIM] = {"zdim", IB__OPT_INT, 1, IB__MODEL_MAX_WIDTH, 256, {0}, false},
    [O_HIDDEN] = {"hidden", IB__OPT_WIDTHS, 0, 0, 1000 + 500 * 2097152.0, {0}, false}, /* 1000,500 packed */
    [O_DETERMINISTIC] = {"deterministic", IB__OPT_BOOL, 0, 0, 0, {0}, false},
    [O_STUDENT] = {"student", IB__OPT_CHOICE, 0, 0, ST_MLP, {"mlp", "linear"}, false},
};
const int ib__model_n_opts = N_OPTS;
_Static_assert(N_OPTS <= IB__MODEL_MAX_OPTS, "raise IB__MODEL_MAX_OPTS");
_Static_assert(N_OPTS <= 32, "option sets are 32-bit masks");

/* An option's value (ranges keep integer options within int). */
#define I(e, o) ((int)(e)->v[o].i)
#define F(e, o) ((e)->v[o].f)

/* ------------------------------------------------------------------ */
/* shape helpers                                                       */

static int64_t conv_out(int64_t h, int k, int stride, int pad)
{
    int64_t span = h + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

static ib_node *named(ib_node *n, const char *name) { return ib_node_set_name(n, name); }

/* The tensors of ib_nn_linear, ib_nn_conv2d and ib_nn_batchnorm named
 * PREFIX[.part], in the order those create them. */
static void t_linear(ib__tensors *t, const char *part, int64_t in, int64_t out, bool bias)
{
    ib__model_tensor(t, part, "weight", true, 2, (int64_t[]){out, in});
    if (bias)
        ib__model_tensor(t, part, "bias", true, 1, &out);
}

static void t_conv(ib__tensors *t, const char *part, int64_t in, int64_t out, int k, bool bias)
{
    ib__model_tensor(t, part, "weight", true, 4, (int64_t[]){out, in, k, k});
    if (bias)
        ib__model_tensor(t, part, "bias", true, 1, &out);
}

static void t_batchnorm(ib__tensors *t, const char *part, int64_t c)
{
    ib__model_tensor(t, part, "weight", true, 1, &c);
    ib__model_tensor(t, part, "bias", true, 1, &c);
    ib__model_tensor(t, part, "running_mean", false, 1, &c);
    ib__model_tensor(t, part, "running_var", false, 1, &c);
}

/* ------------------------------------------------------------------ */
/* linear, conv, batchnorm                                             */

static bool linear_shape(ib__layer *e, char *why, size_t len)
{
    (void)why, (void)len;
    e->out = (ib__shape){1, {e->n, 0, 0}};
    return true;
}

static void linear_tensors(const ib__layer *e, ib__tensors *t)
{
    t_linear(t, NULL, e->in.d[0], e->n, I(e, O_BIAS));
}

static ib_node *linear_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return ib_nn_linear(b->g, x, e->full, e->n, I(e, O_BIAS));
}

static bool conv_shape(ib__layer *e, char *why, size_t len)
{
    int k = I(e, O_K), stride = I(e, O_STRIDE), pad = I(e, O_PAD);
    int64_t n = e->n;
    int64_t h = conv_out(e->in.d[1], k, stride, pad), w = conv_out(e->in.d[2], k, stride, pad);
    if (h < 1 || w < 1) {
        char sh[96];
        ib__model_shape_str(&e->in, sh, sizeof sh);
        snprintf(why, len, "conv: a %dx%d kernel (pad %d) does not fit %s", k, k, pad, sh);
        return false;
    }
    e->out = (ib__shape){3, {n, h, w}};
    return true;
}

static void conv_tensors(const ib__layer *e, ib__tensors *t)
{
    t_conv(t, NULL, e->in.d[0], e->n, I(e, O_K), I(e, O_BIAS));
}

static ib_node *conv_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return ib_nn_conv2d(b->g, x, e->full, e->n, I(e, O_K), I(e, O_STRIDE), I(e, O_PAD), I(e, O_BIAS));
}

static void batchnorm_tensors(const ib__layer *e, ib__tensors *t) { t_batchnorm(t, NULL, e->in.d[0]); }

static ib_node *batchnorm_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return ib_nn_batchnorm(b->g, x, e->full);
}

/* ------------------------------------------------------------------ */
/* activations and dropout (same shape, no parameters)                 */

static ib_node *relu_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_relu(b->g, x), e->full);
}

static ib_node *leaky_relu_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_leaky_relu(b->g, x, F(e, O_SLOPE)), e->full);
}

static ib_node *tanh_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_tanh(b->g, x), e->full);
}

static ib_node *sigmoid_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_sigmoid(b->g, x), e->full);
}

static ib_node *softplus_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_softplus(b->g, x, 0.0f), e->full);
}

static ib_node *dropout_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_dropout(b->g, x, F(e, O_P)), e->full);
}

/* ------------------------------------------------------------------ */
/* pooling and flattening                                              */

static bool pool_finish(ib__layer *e, unsigned seen, char *why, size_t len)
{
    if (!(seen & B(O_STRIDE)))
        e->v[O_STRIDE].i = e->v[O_K].i; /* PyTorch's default: stride = kernel size */
    if (I(e, O_PAD) > I(e, O_K) / 2) {
        snprintf(why, len, "%s: pad must be at most k/2 = %d, not %d", e->kind->word, I(e, O_K) / 2, I(e, O_PAD));
        return false;
    }
    return true;
}

static bool pool_shape(ib__layer *e, char *why, size_t len)
{
    int k = I(e, O_K), stride = I(e, O_STRIDE), pad = I(e, O_PAD);
    int64_t h = conv_out(e->in.d[1], k, stride, pad), w = conv_out(e->in.d[2], k, stride, pad);
    if (h < 1 || w < 1) {
        char sh[96];
        ib__model_shape_str(&e->in, sh, sizeof sh);
        snprintf(why, len, "%s: a %dx%d window (pad %d) does not fit %s", e->kind->word, k, k, pad, sh);
        return false;
    }
    e->out = (ib__shape){3, {e->in.d[0], h, w}};
    return true;
}

static ib_node *maxpool_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_maxpool2d(b->g, x, I(e, O_K), I(e, O_STRIDE), I(e, O_PAD)), e->full);
}

static ib_node *avgpool_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_avgpool2d(b->g, x, I(e, O_K), I(e, O_STRIDE), I(e, O_PAD)), e->full);
}

static bool gap_shape(ib__layer *e, char *why, size_t len)
{
    (void)why, (void)len;
    e->out = (ib__shape){1, {e->in.d[0], 0, 0}};
    return true;
}

static ib_node *gap_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return named(ib_global_avgpool(b->g, x), e->full);
}

static bool flatten_shape(ib__layer *e, char *why, size_t len)
{
    (void)why, (void)len;
    e->out = e->in;
    if (e->in.ndim == 3)
        e->out = (ib__shape){1, {e->in.d[0] * e->in.d[1] * e->in.d[2], 0, 0}};
    return true;
}

static ib_node *flatten_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    return x->ndim != 2 ? named(ib_flatten(b->g, x), e->full) : x; /* flat input: unchanged */
}

/* ------------------------------------------------------------------ */
/* the stochastic layers' list, which every method and the evaluator read */

int64_t ib__model_layer_particles(const ib__layer *e)
{
    return e->kind && (e->kind->opts & B(O_PARTICLES)) ? e->v[O_PARTICLES].i : 1;
}

/* Records stochastic layer e (its sample h, per-row KL and particles) in
 * the model's output in depth order and multiplies the paths so far. */
static ib_node *add_stochastic(ib__model_builder *b, const ib__layer *e, ib_node *h, ib_node *kl, int bn)
{
    ib_model_out *out = b->out;
    if (!h || !kl)
        return NULL;
    int i = out->n_stochastic;
    ib_stochastic_layer *s = &out->st[i];
    snprintf(s->name, sizeof s->name, "%s", e->full);
    snprintf(s->kind, sizeof s->kind, "%s", e->kind->word);
    s->h = h;
    s->kl = kl;
    s->particles = ib__model_layer_particles(e);
    s->upstream = b->paths;
    s->bn = bn;
    b->paths *= s->particles;
    out->n_stochastic = i + 1;
    return h;
}

/* ------------------------------------------------------------------ */
/* Gaussian bottlenecks: the Deep VIB layer and the VIB cell           */

/* Records bottleneck bn of layer e in the model's output, in depth order;
 * returns its sample z (NULL when the graph failed). */
static ib_node *add_bottleneck(ib__model_builder *b, const ib__layer *e, ib_bottleneck bn, bool cell)
{
    ib_model_out *out = b->out;
    int i = out->n_bottlenecks;
    out->bn[i] = bn;
    snprintf(out->bn_name[i], sizeof out->bn_name[i], "%s", e->full);
    out->bn_beta[i] = F(e, O_BETA);
    out->bn_depth[i] = i + 1;
    out->bn_cell[i] = cell;
    out->n_bottlenecks = i + 1;
    return bn.z && bn.kl ? bn.z : NULL;
}

static ib_node *given_eps(const ib__model_builder *b)
{
    return b->eps ? b->eps[b->out->n_bottlenecks] : NULL;
}

static bool vib_shape(ib__layer *e, char *why, size_t len)
{
    int64_t c = e->in.d[0], n = e->n;
    if (c != 2 * n) {
        snprintf(why, len, "vib %lld: the layer before must output 2K = %lld features, it outputs %lld", (long long)n,
                 (long long)(2 * n), (long long)c);
        return false;
    }
    e->out = (ib__shape){1, {n, 0, 0}};
    return true;
}

/* Gaussian particles (IMB's Gaussian variant): mu and sigma once per
 * incoming row (so is the KL), then M samples z = mu + sigma eps per row,
 * consecutive.  The layer's own one-sample z is left unused. */
static void gaussian_particles(ib__model_builder *b, const ib__layer *e, ib_bottleneck *bn)
{
    int64_t m = ib__model_layer_particles(e);
    if (m <= 1 || !bn->mu || !bn->sigma)
        return;
    char a[IB_NAME_MAX];
    snprintf(a, sizeof a, "%s.z", e->full);
    bn->z = named(ib_gaussian_sample(b->g, ib_repeat(b->g, bn->mu, m), ib_repeat(b->g, bn->sigma, m), given_eps(b)), a);
}

static ib_node *vib_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    bool many = ib__model_layer_particles(e) > 1;
    ib_bottleneck bn = ib_nn_vib(b->g, x, e->n, F(e, O_SHIFT), many ? NULL : given_eps(b));
    gaussian_particles(b, e, &bn);
    static const char *const part[4] = {"mu", "sigma", "z", "kl"};
    ib_node *node[4] = {bn.mu, bn.sigma, bn.z, bn.kl};
    for (int i = 0; i < 4; i++) {
        char a[IB_NAME_MAX];
        snprintf(a, sizeof a, "%s.%s", e->full, part[i]);
        named(node[i], a);
    }
    int i = b->out->n_bottlenecks;
    return add_stochastic(b, e, add_bottleneck(b, e, bn, false), bn.kl, i);
}

static bool vibcell_finish(ib__layer *e, unsigned seen, char *why, size_t len)
{
    if (!(seen & B(O_K)))
        e->v[O_K].i = 1;
    if (I(e, O_K) % 2 == 0) {
        snprintf(why, len, "vibcell: k must be odd (the maps keep their size), not %d", I(e, O_K));
        return false;
    }
    return true;
}

/* mu and rho: two k x k convolutions with C outputs and a bias. */
static void vibcell_tensors(const ib__layer *e, ib__tensors *t)
{
    t_conv(t, "mu", e->in.d[0], e->in.d[0], I(e, O_K), true);
    t_conv(t, "rho", e->in.d[0], e->in.d[0], I(e, O_K), true);
}

static ib_node *vibcell_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    bool many = ib__model_layer_particles(e) > 1;
    ib_bottleneck bn = ib_nn_vib_cell(b->g, x, e->full, I(e, O_K), F(e, O_SHIFT), many ? NULL : given_eps(b));
    gaussian_particles(b, e, &bn);
    int i = b->out->n_bottlenecks;
    return add_stochastic(b, e, add_bottleneck(b, e, bn, true), bn.kl, i);
}

/* ------------------------------------------------------------------ */
/* stochastic layers: the list every method and the evaluator read     */

/* Bernoulli-sigmoid neurons (IMB): a = W x + b, p = sigmoid(a), each
 * incoming row repeated `particles` times in a row, h ~ Bernoulli(p)
 * drawn per particle (straight-through, or the Gumbel-sigmoid relaxation
 * of a at temperature temp).  The KL to the prior q is per incoming row:
 * p does not depend on this layer's particles.  q = sigmoid(NAME.prior)
 * (learned, one per unit) or 1/2. */
static bool bernoulli_finish(ib__layer *e, unsigned seen, char *why, size_t len)
{
    (void)seen;
    if (I(e, O_GRAD) == GRAD_GUMBEL && !(F(e, O_TEMP) > 0)) {
        snprintf(why, len, "bernoulli: grad=gumbel needs a temperature temp= > 0");
        return false;
    }
    if (I(e, O_GRAD) == GRAD_ST && (seen & B(O_TEMP))) {
        snprintf(why, len, "bernoulli: temp= is for grad=gumbel (straight-through has no temperature)");
        return false;
    }
    return true;
}

static void bernoulli_tensors(const ib__layer *e, ib__tensors *t)
{
    t_linear(t, NULL, e->in.d[0], e->n, true);
    if (I(e, O_PRIOR) == PRIOR_LEARNED)
        ib__model_tensor(t, NULL, "prior", true, 2, (int64_t[]){1, e->n});
}

static ib_node *bernoulli_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    ib_graph *g = b->g;
    char a[IB_NAME_MAX];
    int64_t m = I(e, O_PARTICLES);
    ib_node *logit = ib_nn_linear(g, x, e->full, e->n, true);
    snprintf(a, sizeof a, "%s.p", e->full);
    ib_node *p = named(ib_sigmoid(g, logit), a);
    ib_node *q;
    if (I(e, O_PRIOR) == PRIOR_LEARNED) {
        snprintf(a, sizeof a, "%s.prior", e->full);
        q = ib_sigmoid(g, ib_param(g, a, 2, (int64_t[]){1, e->n}, (ib_init){IB_INIT_TRUNC_NORMAL, 0.0f, 0.5f}));
    } else { /* 1/2 for every row; 0 * p carries no gradient back to p */
        q = ib_affine(g, p, 0.0f, 0.5f);
    }
    snprintf(a, sizeof a, "%s.kl", e->full);
    ib_node *kl = named(ib_kl_bernoulli(g, p, q), a);
    ib_node *h;
    if (I(e, O_GRAD) == GRAD_GUMBEL)
        h = ib_gumbel_sigmoid(g, m > 1 ? ib_repeat(g, logit, m) : logit, F(e, O_TEMP));
    else
        h = ib_bernoulli_st(g, m > 1 ? ib_repeat(g, p, m) : p);
    snprintf(a, sizeof a, "%s.h", e->full);
    return add_stochastic(b, e, named(h, a), kl, -1);
}

/* ------------------------------------------------------------------ */
/* residual blocks                                                     */

/* Whether a block's shortcut must change the shape (else the identity). */
static bool block_projects(const ib__layer *e) { return I(e, O_STRIDE) != 1 || e->in.d[0] != e->n; }

static bool block_shape(ib__layer *e, char *why, size_t len)
{
    (void)why, (void)len;
    int stride = I(e, O_STRIDE);
    e->out = (ib__shape){3, {e->n, conv_out(e->in.d[1], 3, stride, 1), conv_out(e->in.d[2], 3, stride, 1)}};
    return true;
}

static bool basicblock_shape(ib__layer *e, char *why, size_t len)
{
    int64_t c = e->in.d[0], n = e->n;
    if (block_projects(e) && I(e, O_SHORTCUT) == SC_PAD && n < c) {
        snprintf(why, len, "basicblock: shortcut=pad cannot reduce %lld channels to %lld", (long long)c, (long long)n);
        return false;
    }
    return block_shape(e, why, len);
}

static void basicblock_tensors(const ib__layer *e, ib__tensors *t)
{
    int64_t c = e->in.d[0], n = e->n;
    t_conv(t, "conv1", c, n, 3, false);
    t_batchnorm(t, "bn1", n);
    t_conv(t, "conv2", n, n, 3, false);
    t_batchnorm(t, "bn2", n);
    if (block_projects(e) && I(e, O_SHORTCUT) == SC_CONV) {
        t_conv(t, "shortcut.0", c, n, 1, false);
        t_batchnorm(t, "shortcut.1", n);
    }
}

static void wideblock_tensors(const ib__layer *e, ib__tensors *t)
{
    int64_t c = e->in.d[0], n = e->n;
    t_batchnorm(t, "bn1", c);
    t_conv(t, "conv1", c, n, 3, false);
    t_batchnorm(t, "bn2", n);
    t_conv(t, "conv2", n, n, 3, false);
    if (block_projects(e))
        t_conv(t, "shortcut", c, n, 1, false);
}

/* He et al.'s option A shortcut: subsample, then zero channels on both
 * sides (as the common PyTorch CIFAR ResNets pad, so outputs match). */
static ib_node *pad_shortcut(ib_graph *g, ib_node *x, int64_t out_ch, int stride)
{
    if (stride > 1)
        x = ib_avgpool2d(g, x, 1, stride, 0);
    if (!x)
        return NULL;
    int64_t extra = out_ch - x->shape[1];
    return extra == 0 ? x : ib_pad_channels(g, x, extra / 2, extra - extra / 2);
}

static ib_node *basicblock_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    ib_graph *g = b->g;
    char a[IB_NAME_MAX];
    const char *p = e->full;
    int stride = I(e, O_STRIDE);
    bool proj = block_projects(e);
    snprintf(a, sizeof a, "%s.conv1", p);
    ib_node *h = ib_nn_conv2d(g, x, a, e->n, 3, stride, 1, false);
    snprintf(a, sizeof a, "%s.bn1", p);
    h = ib_nn_batchnorm_relu(g, h, a);
    snprintf(a, sizeof a, "%s.conv2", p);
    h = ib_nn_conv2d(g, h, a, e->n, 3, 1, 1, false);
    snprintf(a, sizeof a, "%s.bn2", p);
    h = ib_nn_batchnorm(g, h, a);
    ib_node *sc = x;
    if (proj && I(e, O_SHORTCUT) == SC_CONV) {
        snprintf(a, sizeof a, "%s.shortcut.0", p);
        sc = ib_nn_conv2d(g, x, a, e->n, 1, stride, 0, false);
        snprintf(a, sizeof a, "%s.shortcut.1", p);
        sc = ib_nn_batchnorm(g, sc, a);
    } else if (proj) {
        sc = pad_shortcut(g, x, e->n, stride);
    }
    return named(ib_add_relu(g, h, sc), p);
}

/* Pre-activation block as in the WRN reference code: when the shape
 * changes, the 1x1 shortcut conv reads the activated input. */
static ib_node *wideblock_build(ib__model_builder *b, ib_node *x, const ib__layer *e)
{
    ib_graph *g = b->g;
    char a[IB_NAME_MAX];
    const char *p = e->full;
    int stride = I(e, O_STRIDE);
    snprintf(a, sizeof a, "%s.bn1", p);
    ib_node *act = ib_nn_batchnorm_relu(g, x, a);
    snprintf(a, sizeof a, "%s.conv1", p);
    ib_node *h = ib_nn_conv2d(g, act, a, e->n, 3, stride, 1, false);
    snprintf(a, sizeof a, "%s.bn2", p);
    h = ib_nn_batchnorm_relu(g, h, a);
    if (F(e, O_DROPOUT) > 0)
        h = ib_dropout(g, h, F(e, O_DROPOUT));
    snprintf(a, sizeof a, "%s.conv2", p);
    h = ib_nn_conv2d(g, h, a, e->n, 3, 1, 1, false);
    ib_node *sc = x;
    if (block_projects(e)) {
        snprintf(a, sizeof a, "%s.shortcut", p);
        sc = ib_nn_conv2d(g, act, a, e->n, 1, stride, 0, false);
    }
    return named(ib_add(g, h, sc), p);
}

/* ------------------------------------------------------------------ */
/* the table                                                           */

#define POOL_OPTS (B(O_K) | B(O_STRIDE) | B(O_PAD))

/* ------------------------------------------------------------------ */
/* vsdhead: the composite last layer of variational self-distillation  */
/*
 * On flat backbone features v (D) it builds three parts (docs/vsd.md):
 *   NAME.teacher   a linear classifier on v: the teacher logits p(y|v);
 *   NAME.encoder   an MLP v -> hidden (linear, batch norm, ReLU each) ->
 *                  2K (mu, sigma = softplus(. + shift), z = mu + sigma eps,
 *                  KL to N(0, I): a Gaussian bottleneck), or -> K with
 *                  deterministic=true (z = mu = the output, KL 0);
 *   NAME.student   the classifier on z, the model's logits p(y|z): as in
 *                  the reference code K -> K/2, batch norm, LeakyReLU
 *                  (slope=, 0.1), dropout (p=, 0.5), -> CLASSES
 *                  (student=mlp), or one linear layer (student=linear).
 * The student's logits are the layer's output (the prediction reported);
 * the teacher's go to ib_model_out.teacher_logits.  It gives the logits,
 * so it must be the last layer.
 */
static bool vsdhead_finish(ib__layer *e, unsigned seen, char *why, size_t len)
{
    if (!(seen & B(O_SLOPE)))
        e->v[O_SLOPE].f = 0.1f;
    if (!(seen & B(O_P)))
        e->v[O_P].f = 0.5f;
    if (I(e, O_STUDENT) == ST_MLP && I(e, O_ZDIM) < 2) {
        snprintf(why, len, "vsdhead: zdim must be at least 2 with student=mlp (its hidden layer has zdim/2 units)");
        return false;
    }
    return true;
}

static bool vsdhead_shape(ib__layer *e, char *why, size_t len)
{
    (void)why, (void)len;
    e->out = (ib__shape){1, {e->n, 0, 0}};
    return true;
}

static void vsdhead_bn_shape(const ib__layer *e, ib__shape *s) { *s = (ib__shape){1, {I(e, O_ZDIM), 0, 0}}; }

/* "NAME.part.leaf" into buf. */
static const char *vsd_name(char *buf, size_t len, const ib__layer *e, const char *part, const char *leaf)
{
    snprintf(buf, len, "%s.%s.%s", e->full, part, leaf);
    return buf;
}

static void vsdhead_tensors(const ib__layer *e, ib__tensors *t)
{
    int64_t d = e->in.d[0], k = I(e, O_ZDIM);
    char a[IB__MODEL_NAME_LEN + 64];
    t_linear(t, "teacher", d, e->n, true);
    int64_t in = d;
    for (int j = 0; j < IB__WIDTHS_MAX && IB__WIDTH(e->v[O_HIDDEN].i, j); j++) {
        int64_t h = IB__WIDTH(e->v[O_HIDDEN].i, j);
        snprintf(a, sizeof a, "encoder.fc%d", j + 1);
        t_linear(t, a, in, h, true);
        snprintf(a, sizeof a, "encoder.bn%d", j + 1);
        t_batchnorm(t, a, h);
        in = h;
    }
    t_linear(t, "encoder.out", in, I(e, O_DETERMINISTIC) ? k : 2 * k, true);
    if (I(e, O_STUDENT) == ST_LINEAR) {
        t_linear(t, "student.fc", k, e->n, true);
    } else {
        t_linear(t, "student.fc1", k, k / 2, true);
        t_batchnorm(t, "student.bn1", k / 2);
        t_linear(t, "student.fc2", k / 2, e->n, true);
    }
}

static ib_node *vsdhead_build(ib__model_builder *b, ib_node *v, const ib__layer *e)
{
    ib_graph *g = b->g;
    int64_t k = I(e, O_ZDIM);
    char a[IB__MODEL_NAME_LEN + 64], part[32];
    snprintf(a, sizeof a, "%s.teacher", e->full);
    ib_node *teacher = ib_nn_linear(g, v, a, e->n, true);
    named(teacher, vsd_name(a, sizeof a, e, "teacher", "logits"));
    ib_node *h = v;
    for (int j = 0; j < IB__WIDTHS_MAX && IB__WIDTH(e->v[O_HIDDEN].i, j); j++) {
        snprintf(part, sizeof part, "fc%d", j + 1);
        h = ib_nn_linear(g, h, vsd_name(a, sizeof a, e, "encoder", part), IB__WIDTH(e->v[O_HIDDEN].i, j), true);
        snprintf(part, sizeof part, "bn%d", j + 1);
        h = ib_nn_batchnorm_relu(g, h, vsd_name(a, sizeof a, e, "encoder", part));
    }
    bool det = I(e, O_DETERMINISTIC);
    h = ib_nn_linear(g, h, vsd_name(a, sizeof a, e, "encoder", "out"), det ? k : 2 * k, true);
    ib_bottleneck bn = {0};
    if (det) { /* the reference code's z: the encoder's output itself, no noise, KL 0 */
        bn.mu = bn.z = h;
        bn.kl = ib_scale(g, ib_sum(g, h, 1), 0.0f);
    } else {
        bn = ib_nn_vib(g, h, k, F(e, O_SHIFT), given_eps(b));
    }
    static const char *const leaf[4] = {"mu", "sigma", "z", "kl"};
    ib_node *node[4] = {bn.mu, bn.sigma, bn.z, bn.kl};
    for (int i = 0; i < 4; i++)
        if (node[i] && !(det && i == 2))
            named(node[i], vsd_name(a, sizeof a, e, "encoder", leaf[i]));
    ib_node *z = add_bottleneck(b, e, bn, false);
    if (!z)
        return NULL;
    ib_node *logits;
    if (I(e, O_STUDENT) == ST_LINEAR) {
        logits = ib_nn_linear(g, z, vsd_name(a, sizeof a, e, "student", "fc"), e->n, true);
    } else {
        h = ib_nn_linear(g, z, vsd_name(a, sizeof a, e, "student", "fc1"), k / 2, true);
        h = ib_nn_batchnorm(g, h, vsd_name(a, sizeof a, e, "student", "bn1"));
        h = ib_dropout(g, ib_leaky_relu(g, h, F(e, O_SLOPE)), F(e, O_P));
        logits = ib_nn_linear(g, h, vsd_name(a, sizeof a, e, "student", "fc2"), e->n, true);
    }
    if (!teacher || !logits)
        return NULL;
    b->out->teacher_logits = teacher;
    return named(logits, e->full); /* the layer's output, named as the layer (the student's logits) */
}

/* In the order of the "unknown layer" message.  Every kind also takes
 * name=.  Fields left out: no argument, no options, any input, no
 * finish/shape/tensors hook (see ib__layer_kind). */
const ib__layer_kind ib__model_kinds[] = {
    {.word = "linear", .arg = "OUT", .arg_max = IB__MODEL_MAX_WIDTH, .opts = B(O_BIAS), .input = IB__IN_FLAT,
     .shape = linear_shape, .tensors = linear_tensors, .build = linear_build},
    {.word = "conv", .arg = "OUT", .arg_max = 65536, .opts = B(O_K) | B(O_STRIDE) | B(O_PAD) | B(O_BIAS),
     .required = B(O_K), .input = IB__IN_MAP, .shape = conv_shape, .tensors = conv_tensors, .build = conv_build},
    {.word = "batchnorm", .tensors = batchnorm_tensors, .build = batchnorm_build},
    {.word = "relu", .build = relu_build},
    {.word = "leaky_relu", .opts = B(O_SLOPE), .build = leaky_relu_build},
    {.word = "tanh", .build = tanh_build},
    {.word = "sigmoid", .build = sigmoid_build},
    {.word = "softplus", .build = softplus_build},
    {.word = "dropout", .opts = B(O_P), .required = B(O_P), .build = dropout_build},
    {.word = "maxpool", .opts = POOL_OPTS, .required = B(O_K), .input = IB__IN_MAP, .finish = pool_finish,
     .shape = pool_shape, .build = maxpool_build},
    {.word = "avgpool", .opts = POOL_OPTS, .required = B(O_K), .input = IB__IN_MAP, .finish = pool_finish,
     .shape = pool_shape, .build = avgpool_build},
    {.word = "globalavgpool", .input = IB__IN_MAP, .shape = gap_shape, .build = gap_build},
    {.word = "flatten", .shape = flatten_shape, .build = flatten_build},
    {.word = "vib", .arg = "K", .arg_max = IB__MODEL_MAX_WIDTH / 2, .opts = B(O_SHIFT) | B(O_BETA) | B(O_PARTICLES),
     .input = IB__IN_FLAT, .bottleneck = true, .stochastic = true, .shape = vib_shape, .build = vib_build},
    {.word = "vibcell", .opts = B(O_K) | B(O_SHIFT) | B(O_BETA) | B(O_PARTICLES), .input = IB__IN_MAP, .bottleneck = true,
     .stochastic = true, .finish = vibcell_finish, .tensors = vibcell_tensors, .build = vibcell_build},
    {.word = "basicblock", .arg = "OUT", .arg_max = 65536, .opts = B(O_STRIDE) | B(O_SHORTCUT), .input = IB__IN_MAP,
     .shape = basicblock_shape, .tensors = basicblock_tensors, .build = basicblock_build},
    {.word = "wideblock", .arg = "OUT", .arg_max = 65536, .opts = B(O_STRIDE) | B(O_DROPOUT), .input = IB__IN_MAP,
     .shape = block_shape, .tensors = wideblock_tensors, .build = wideblock_build},
    {.word = "bernoulli", .arg = "WIDTH", .arg_max = IB__MODEL_MAX_WIDTH,
     .opts = B(O_PARTICLES) | B(O_GRAD) | B(O_TEMP) | B(O_PRIOR), .input = IB__IN_FLAT, .stochastic = true,
     .finish = bernoulli_finish, .shape = linear_shape, .tensors = bernoulli_tensors, .build = bernoulli_build},
    {.word = "vsdhead", .arg = "CLASSES", .arg_max = IB__MODEL_MAX_WIDTH,
     .opts = B(O_ZDIM) | B(O_HIDDEN) | B(O_SHIFT) | B(O_DETERMINISTIC) | B(O_STUDENT) | B(O_SLOPE) | B(O_P),
     .input = IB__IN_FLAT, .bottleneck = true, .finish = vsdhead_finish, .shape = vsdhead_shape,
     .tensors = vsdhead_tensors, .build = vsdhead_build, .bn_shape = vsdhead_bn_shape, .last_only = true},
};
const int ib__model_n_kinds = (int)(sizeof ib__model_kinds / sizeof ib__model_kinds[0]);
