/*
 * norm.c — batch normalisation and row-wise L2 normalisation.
 *
 * Batch norm reduces per channel over the batch and the spatial cells;
 * the loops run in parallel over channels and each channel's sums are
 * taken in double in a fixed order, so results do not depend on the
 * thread count.  The running statistics are store buffers that forward
 * updates in place while training (as PyTorch's module does); the batch
 * mean and 1/sqrt(var + eps) used by forward stay in scratch for backward.
 *
 * A batch norm whose gamma and beta are both frozen parameters of the
 * store (ib_params_freeze) behaves as in evaluation even in a training
 * graph: it normalises with its running statistics and leaves them alone.
 * A frozen backbone is then a fixed function, as PyTorch users get it from
 * backbone.eval(); with batch statistics its output would drift with each
 * batch and its running statistics would be overwritten by the new task's
 * data.  The frozen state is read at each forward, as backward reads it,
 * so freezing after compiling takes effect at the next step.
 */
#include "../core/internal.h"

#include <math.h>

#include "plane_sums.h"

/* ---- batch norm ----
 * inputs x, gamma, beta, running_mean, running_var; f[0] momentum, f[1] eps;
 * i[0] C, i[1] N, i[2] cells per channel and image (H*W, or 1 for 2-D x),
 * i[3] 1 when the last forward used batch statistics (a training graph,
 * gamma and beta not both frozen), i[4] 1 for batchnorm_relu (the ReLU
 * applied in the same pass, its mask taken from the output in backward).
 * scratch: mean (C) then invstd (C), floats.  tmp (bn_work): two (N, C)
 * float arrays of per-plane sums and the per-channel sums and coefficients,
 * so that a step allocates nothing.
 *
 * The work is split in units of one image and w channels: w = 1 in the
 * plain layout, the block in the blocked one (where a unit's w planes are
 * interleaved).  Each channel's statistics are its plane sums (float, in
 * plane_sums.h's order) added in double in image order, so the thread
 * count and the layout leave every bit the same. */

typedef struct bn_geom {
    int64_t ch, batch, inner, w, units;
    bool relu; /* batchnorm_relu: y = max(bn(x), 0) */
} bn_geom;

static bn_geom bn_geom_of(const ib_node *n)
{
    bn_geom b = {.ch = n->i[0], .batch = n->i[1], .inner = n->i[2], .w = n->layout ? n->layout : 1, .relu = n->i[4]};
    b.units = b.batch * (b.ch / b.w);
    return b;
}

/* Unit u's first element, and its image and first channel. */
static inline int64_t bn_unit(const bn_geom *b, int64_t u, int64_t *img, int64_t *c0)
{
    int64_t per = b->ch / b->w;
    *img = u / per;
    *c0 = (u % per) * b->w;
    return u * b->w * b->inner;
}

/* Plane sums of every unit into ps (and ps2), (N, C): kind as in plane_sums.h. */
static void bn_plane_sums(const ib_node *n, const bn_geom *b, int kind, const float *x, const float *e,
                          const float *r, const float *mu, float *ps, float *ps2)
{
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && b->units > 1)
    for (int64_t u = 0; u < b->units; u++) {
        int64_t i, c0, at = bn_unit(b, u, &i, &c0);
        float *s1 = ps + i * b->ch + c0, *s2 = ps2 ? ps2 + i * b->ch + c0 : s1;
        const float *p = x + at, *pe = e ? e + at : p, *pr = r ? r + at : p, *m = mu ? mu + c0 : NULL;
        if (kind == IB__PS_SUM)
            ib__plane_sums_w(IB__PS_SUM, (int)b->w, b->inner, p, pe, pr, m, s1, s2);
        else if (kind == IB__PS_SQDEV)
            ib__plane_sums_w(IB__PS_SQDEV, (int)b->w, b->inner, p, pe, pr, m, s1, s2);
        else if (kind == IB__PS_DSUMS)
            ib__plane_sums_w(IB__PS_DSUMS, (int)b->w, b->inner, p, pe, pr, m, s1, s2);
        else
            ib__plane_sums_w(IB__PS_DSUMS_RELU, (int)b->w, b->inner, p, pe, pr, m, s1, s2);
    }
}

/* Channel c's total of an (N, C) array of plane sums, in image order. */
static double bn_total(const float *ps, const bn_geom *b, int64_t c)
{
    double s = 0;
    for (int64_t i = 0; i < b->batch; i++)
        s += ps[i * b->ch + c];
    return s;
}

/* ReLU as ib_relu computes it: NaN and -0 become +0. */
static inline float bn_relu(float t) { return t > 0.0f ? t : 0.0f; }

static inline __attribute__((always_inline)) void bn_apply_unit(int w, bool relu, int64_t len,
                                                                const float *restrict p, float *restrict y,
                                                                const float *a, const float *bb)
{
    if (w == 1) {
        float ac = a[0], bc = bb[0];
#pragma omp simd
        for (int64_t q = 0; q < len; q++)
            y[q] = relu ? bn_relu(p[q] * ac + bc) : p[q] * ac + bc;
        return;
    }
    for (int64_t q = 0; q < len; q++)
#pragma omp simd
        for (int l = 0; l < w; l++)
            y[q * w + l] = relu ? bn_relu(p[q * w + l] * a[l] + bb[l]) : p[q * w + l] * a[l] + bb[l];
}

/* Channel c's scale and shift from the statistics: y = x * a + bb. */
static inline void bn_channel_coefficients(const ib_node *n, const float *mean, const float *invstd, int64_t c,
                                           float *a, float *bb)
{
    float k = n->in[1]->value[c] * invstd[c];
    *a = k;
    *bb = n->in[2]->value[c] - mean[c] * k;
}

/* y = x * a + bb per channel, every unit, a and bb computed per unit from
 * mean and invstd (no per-channel array to allocate).  Not inlined:
 * forward and bn_recompute run this one body, so a recomputed value is
 * the same bits whatever the compiler would do with two copies. */
__attribute__((noinline)) static void bn_apply(ib_node *n, const float *mean, const float *invstd)
{
    bn_geom b = bn_geom_of(n);
    const float *xv = n->in[0]->value;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && b.units > 1)
    for (int64_t u = 0; u < b.units; u++) {
        int64_t i, c0, at = bn_unit(&b, u, &i, &c0);
        float ua[16], ub[16]; /* w: 1, or the block (8 or 16; bn_geom_of) */
        for (int64_t l = 0; l < b.w && l < 16; l++)
            bn_channel_coefficients(n, mean, invstd, c0 + l, &ua[l], &ub[l]);
        const float *p = xv + at;
        float *y = n->value + at;
        if (b.relu)
            switch (b.w) {
            case 16: bn_apply_unit(16, true, b.inner, p, y, ua, ub); break;
            case 8: bn_apply_unit(8, true, b.inner, p, y, ua, ub); break;
            default: bn_apply_unit(1, true, b.inner, p, y, ua, ub);
            }
        else
            switch (b.w) {
            case 16: bn_apply_unit(16, false, b.inner, p, y, ua, ub); break;
            case 8: bn_apply_unit(8, false, b.inner, p, y, ua, ub); break;
            default: bn_apply_unit(1, false, b.inner, p, y, ua, ub);
            }
    }
}

/* The op's workspace (g->tmp during its own forward and backward): two
 * (N, C) float arrays of plane sums, then per channel 2 doubles (the
 * channels' sums) and 3 floats (backward's coefficients). */
typedef struct bn_work {
    float *ps, *ps2, *coef;
    double *st;
} bn_work;

static size_t bn_plane_bytes(int64_t batch, int64_t ch) { return (size_t)(2 * batch * ch) * sizeof(float); }

static size_t bn_work_bytes(int64_t batch, int64_t ch)
{
    size_t planes = (bn_plane_bytes(batch, ch) + 7) / 8 * 8; /* the doubles after them aligned */
    return planes + (size_t)(2 * ch) * sizeof(double) + (size_t)(3 * ch) * sizeof(float);
}

static bn_work bn_work_of(const ib_graph *g, const bn_geom *b)
{
    bn_work w = {.ps = g->tmp};
    w.ps2 = w.ps + b->batch * b->ch;
    w.st = (double *)(void *)((char *)g->tmp + (bn_plane_bytes(b->batch, b->ch) + 7) / 8 * 8);
    w.coef = (float *)(void *)(w.st + 2 * b->ch);
    return w;
}

static bool frozen_param(const ib_graph *g, const ib_node *p)
{
    return p->kind == IB__PARAM && ib_params_frozen(g->params, p->param_index);
}

/* Training statistics: of this batch, or with synchronised batch norm
 * (ib_graph_set_sync_batchnorm) of the global batch of g->sync_bn_batch
 * rows, of which this rank holds N: each channel's sums are added over
 * the ranks, and every rank then holds the same mean, variance and
 * running statistics. */
static void bn_batch_stats(ib_graph *g, ib_node *n, const bn_geom *b, float *mean, float *invstd)
{
    const ib_node *x = n->in[0];
    ib_node *rm = n->in[3], *rv = n->in[4];
    bool sync = g->sync_bn_batch > 0;
    int64_t ch = b->ch, m = (sync ? g->sync_bn_batch : b->batch) * b->inner;
    float mom = (float)n->f[0], eps = (float)n->f[1];
    bn_work w = bn_work_of(g, b);
    float *ps = w.ps;
    double *st = w.st;
    bn_plane_sums(n, b, IB__PS_SUM, x->value, NULL, NULL, NULL, ps, NULL);
    for (int64_t c = 0; c < ch; c++)
        st[c] = bn_total(ps, b, c);
    if (sync)
        ib__dist_sum_f64(st, (int)ch);
    for (int64_t c = 0; c < ch; c++)
        mean[c] = (float)(st[c] / (double)m);
    /* Deviations from the mean rounded to float: the two-pass variance
     * stays accurate when |mean| >> std. */
    bn_plane_sums(n, b, IB__PS_SQDEV, x->value, NULL, NULL, mean, ps, NULL);
    for (int64_t c = 0; c < ch; c++)
        st[c] = bn_total(ps, b, c);
    if (sync)
        ib__dist_sum_f64(st, (int)ch);
    for (int64_t c = 0; c < ch; c++) {
        double var = st[c] / (double)m;
        /* PyTorch stores the unbiased variance; with one value per channel
         * it is undefined, so the biased one (0) is used. */
        double unbiased = m > 1 ? st[c] / (double)(m - 1) : var;
        invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
        rm->value[c] = (1.0f - mom) * rm->value[c] + mom * mean[c];
        rv->value[c] = (1.0f - mom) * rv->value[c] + mom * (float)unbiased;
    }
}

static void bn_fwd(ib_graph *g, ib_node *n)
{
    ib_node *rm = n->in[3], *rv = n->in[4];
    bn_geom b = bn_geom_of(n);
    float eps = (float)n->f[1];
    float *mean = n->scratch, *invstd = mean + b.ch;
    bool train = g->training && !(frozen_param(g, n->in[1]) && frozen_param(g, n->in[2]));
    n->i[3] = train;
    if (train) {
        bn_batch_stats(g, n, &b, mean, invstd);
    } else {
        for (int64_t c = 0; c < b.ch; c++) {
            mean[c] = rm->value[c];
            invstd[c] = (float)(1.0 / sqrt((double)rv->value[c] + (double)eps));
        }
    }
    bn_apply(n, mean, invstd);
}

/* The value again from the statistics forward saved (ib_graph_set_recompute):
 * the same bits through the same bn_apply, and the running statistics
 * are left alone. */
static void bn_recompute(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *mean = n->scratch;
    bn_apply(n, mean, mean + n->i[0]);
}

/* dx of one unit (w channels over len pixels): c holds the channels'
 * k = gamma*invstd, a = mean(dy), b = mean(dy xhat), mean, invstd.
 * Inlined with a constant w: the plain case (w = 1) vectorises over the
 * pixels, the blocked one over the channels. */
/* dy through the ReLU (output r); both loaded unconditionally, so that the
 * select vectorises. */
static inline float bn_masked(bool relu, float dy, float r) { return relu ? (r > 0.0f ? dy : 0.0f) : dy; }

static inline __attribute__((always_inline)) void bn_dx_unit(int w, bool relu, int64_t len, const float *restrict p,
                                                             const float *restrict dy, const float *restrict r,
                                                             float *restrict dx, const float *const c[5], bool set)
{
    const float *k = c[0], *a = c[1], *bq = c[2], *mu = c[3], *is = c[4];
    /* the gradient at the batch norm's output: dy, or through the ReLU */
#define BN_DY(at) bn_masked(relu, dy[at], relu ? r[at] : 0.0f)
    if (w == 1) {
        float k0 = k[0], a0 = a[0], b0 = bq[0], m0 = mu[0], i0 = is[0];
        if (set) {
#pragma omp simd
            for (int64_t q = 0; q < len; q++)
                dx[q] = k0 * (BN_DY(q) - a0 - (p[q] - m0) * i0 * b0);
        } else {
#pragma omp simd
            for (int64_t q = 0; q < len; q++)
                dx[q] += k0 * (BN_DY(q) - a0 - (p[q] - m0) * i0 * b0);
        }
        return;
    }
    for (int64_t q = 0; q < len; q++) {
        const float *pq = p + q * w;
        float *xq = dx + q * w;
        if (set) {
#pragma omp simd
            for (int l = 0; l < w; l++)
                xq[l] = k[l] * (BN_DY(q * w + l) - a[l] - (pq[l] - mu[l]) * is[l] * bq[l]);
        } else {
#pragma omp simd
            for (int l = 0; l < w; l++)
                xq[l] += k[l] * (BN_DY(q * w + l) - a[l] - (pq[l] - mu[l]) * is[l] * bq[l]);
        }
    }
#undef BN_DY
}

/* Backward.  With batch statistics y depends on x also through the batch
 * mean and variance: dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy *
 * xhat)).  Synchronised: this rank's loss is a mean over its rows, and
 * ib_train sums the ranks' gradients weighted by w = rows / global batch;
 * the batch-mean terms need the sums of the global loss's dy, sum_r w_r
 * sum dy_r, which divided by w times the global count (= this rank's
 * count) are in this rank's units again.  gamma and beta keep this rank's
 * sums: the weighted gradient sum adds them up. */
static void bn_bwd(ib_graph *g, ib_node *n)
{
    ib_node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    bn_geom b = bn_geom_of(n);
    int64_t ch = b.ch, m = b.batch * b.inner;
    bool train = n->i[3], sync = train && g->sync_bn_batch > 0;
    const float *mean = n->scratch, *invstd = mean + ch;
    bn_work wk = bn_work_of(g, &b);
    float *ps = wk.ps, *ps2 = wk.ps2;
    /* per channel: k = gamma*invstd, a = mean(dy), bq = mean(dy xhat) */
    float *kab = wk.coef;
    double *st = wk.st;
    bn_plane_sums(n, &b, b.relu ? IB__PS_DSUMS_RELU : IB__PS_DSUMS, x->value, n->grad, n->value, mean, ps, ps2);
    for (int64_t c = 0; c < ch; c++) {
        double sdy = bn_total(ps, &b, c), sdyx = bn_total(ps2, &b, c) * invstd[c];
        if (gamma->needs_grad)
            gamma->grad[c] += (float)sdyx;
        if (beta->needs_grad)
            beta->grad[c] += (float)sdy;
        double wr = sync ? (double)b.batch / (double)g->sync_bn_batch : 1.0;
        st[c] = sync ? wr * sdy : sdy;
        st[ch + c] = sync ? wr * sdyx : sdyx;
    }
    if (!x->needs_grad)
        return;
    if (sync)
        ib__dist_sum_f64(st, (int)(2 * ch));
    for (int64_t c = 0; c < ch; c++) {
        kab[c] = gamma->value[c] * invstd[c];
        kab[ch + c] = train ? (float)(st[c] / (double)m) : 0.0f;
        kab[2 * ch + c] = train ? (float)(st[ch + c] / (double)m) : 0.0f;
    }
    bool set = ib__grad_assign(n, 0);
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && b.units > 1)
    for (int64_t u = 0; u < b.units; u++) {
        int64_t i, c0, at = bn_unit(&b, u, &i, &c0);
        const float *c[5] = {kab + c0, kab + ch + c0, kab + 2 * ch + c0, mean + c0, invstd + c0};
        const float *p = x->value + at, *dy = n->grad + at, *r = n->value + at;
        float *dx = x->grad + at;
        if (b.relu)
            switch (b.w) {
            case 16: bn_dx_unit(16, true, b.inner, p, dy, r, dx, c, set); break;
            case 8: bn_dx_unit(8, true, b.inner, p, dy, r, dx, c, set); break;
            default: bn_dx_unit(1, true, b.inner, p, dy, r, dx, c, set);
            }
        else
            switch (b.w) {
            case 16: bn_dx_unit(16, false, b.inner, p, dy, r, dx, c, set); break;
            case 8: bn_dx_unit(8, false, b.inner, p, dy, r, dx, c, set); break;
            default: bn_dx_unit(1, false, b.inner, p, dy, r, dx, c, set);
            }
    }
}

static const ib_op op_batchnorm = {.name = "batchnorm", .forward = bn_fwd, .backward = bn_bwd,
                                   .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                                   .recompute = bn_recompute, .grad_assign = IB__ASSIGNS_IN(0),
                                   .layout = IB__LAYOUT_TIED};
/* Batch norm and ReLU in one pass each way: its backward also reads its
 * output, the ReLU's mask. */
static const ib_op op_batchnorm_relu = {.name = "batchnorm_relu", .forward = bn_fwd, .backward = bn_bwd,
                                        .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1) |
                                                     IB__READS_OUT,
                                        .recompute = bn_recompute, .grad_assign = IB__ASSIGNS_IN(0),
                                        .layout = IB__LAYOUT_TIED};

static ib_node *bn_build(ib_graph *g, const ib_op *op, ib_node *x, ib_node *gamma, ib_node *beta,
                         ib_node *running_mean, ib_node *running_var, float momentum, float eps)
{
    ib_node *in[5] = {x, gamma, beta, running_mean, running_var};
    if (!ib__inputs_ok(g, 5, in))
        return NULL;
    const char *name = op->name;
    char sx[64], sp[64];
    ib__shape_str(x, sx, sizeof sx);
    if (x->dtype != IB_F32 || (x->ndim != 2 && x->ndim != 4))
        return ib__fail(g, IB_ERR_SHAPE, "%s: input '%s' %s must be (N, C) or (N, C, H, W)", name, x->name, sx);
    int64_t ch = x->shape[1];
    for (int k = 1; k < 5; k++)
        if (in[k]->dtype != IB_F32 || in[k]->ndim != 1 || in[k]->shape[0] != ch)
            return ib__fail(g, IB_ERR_SHAPE, "%s: '%s' %s must have shape (%lld) to fit input '%s' %s", name,
                            in[k]->name, ib__shape_str(in[k], sp, sizeof sp), (long long)ch, x->name, sx);
    for (int k = 3; k < 5; k++)
        if (in[k]->kind == IB__OP)
            return ib__fail(g, IB_ERR_ARG, "%s: running statistic '%s' must be a buffer, not an op output", name,
                            in[k]->name);
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(eps >= 0.0f))
        return ib__fail(g, IB_ERR_ARG, "%s on '%s': momentum %g must be in [0, 1] and eps %g >= 0", name, x->name,
                        (double)momentum, (double)eps);
    ib_node *n = ib__node_new(g, op, 5, in, x->ndim, x->shape);
    if (!n)
        return NULL;
    n->f[0] = momentum;
    n->f[1] = eps;
    n->i[0] = ch;
    n->i[1] = x->shape[0];
    n->i[2] = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    n->i[4] = op == &op_batchnorm_relu;
    n->scratch_bytes = (size_t)(2 * ch) * sizeof(float);
    n->tmp_bytes = bn_work_bytes(n->i[1], ch);
    return n;
}

ib_node *ib_batchnorm(ib_graph *g, ib_node *x, ib_node *gamma, ib_node *beta, ib_node *running_mean,
                      ib_node *running_var, float momentum, float eps)
{
    return bn_build(g, &op_batchnorm, x, gamma, beta, running_mean, running_var, momentum, eps);
}

ib_node *ib_batchnorm_relu(ib_graph *g, ib_node *x, ib_node *gamma, ib_node *beta, ib_node *running_mean,
                           ib_node *running_var, float momentum, float eps)
{
    return bn_build(g, &op_batchnorm_relu, x, gamma, beta, running_mean, running_var, momentum, eps);
}

/* ---- L2 normalisation of rows: f[0] eps; scratch: max(||x_i||, eps) per row ---- */
static void l2n_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *x = n->in[0];
    int64_t rows = x->shape[0], d = x->shape[1];
    float eps = (float)n->f[0], *nrm = n->scratch;
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *p = x->value + r * d;
        double s = 0;
        for (int64_t k = 0; k < d; k++)
            s += (double)p[k] * p[k];
        float norm = (float)sqrt(s);
        float den = norm > eps ? norm : eps;
        nrm[r] = den;
        float *y = n->value + r * d;
        for (int64_t k = 0; k < d; k++)
            y[k] = p[k] / den;
    }
}

static void l2n_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *x = n->in[0];
    int64_t rows = x->shape[0], d = x->shape[1];
    float eps = (float)n->f[0];
    const float *nrm = n->scratch;
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *y = n->value + r * d, *dy = n->grad + r * d;
        float *dx = x->grad + r * d, den = nrm[r];
        /* Below eps the divisor is the constant eps: no term through the norm. */
        double dot = 0;
        if (den > eps)
            for (int64_t k = 0; k < d; k++)
                dot += (double)y[k] * dy[k];
        float fd = (float)dot;
        for (int64_t k = 0; k < d; k++)
            dx[k] += (dy[k] - y[k] * fd) / den;
    }
}

static const ib_op op_l2n = {.name = "l2_normalize", .forward = l2n_fwd, .backward = l2n_bwd,
                             .bwd_reads = IB__READS_ALL};

ib_node *ib_l2_normalize(ib_graph *g, ib_node *x, float eps)
{
    if (!ib__inputs_ok(g, 1, &x))
        return NULL;
    if (x->dtype != IB_F32 || x->ndim != 2) {
        char sx[64];
        return ib__fail(g, IB_ERR_SHAPE, "l2_normalize: input '%s' %s must be a 2-D float tensor (N, D)", x->name,
                        ib__shape_str(x, sx, sizeof sx));
    }
    if (!(eps > 0.0f))
        return ib__fail(g, IB_ERR_ARG, "l2_normalize on '%s': eps %g must be positive", x->name, (double)eps);
    ib_node *n = ib__node_new(g, &op_l2n, 1, &x, 2, x->shape);
    if (n) {
        n->f[0] = eps;
        n->scratch_bytes = (size_t)x->shape[0] * sizeof(float);
    }
    return n;
}
