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

/* ---- batch norm ----
 * inputs x, gamma, beta, running_mean, running_var; f[0] momentum, f[1] eps;
 * i[0] C, i[1] N, i[2] cells per channel and image (H*W, or 1 for 2-D x),
 * i[3] 1 when the last forward used batch statistics (a training graph,
 * gamma and beta not both frozen).
 * scratch: mean (C) then invstd (C), floats. */

static inline const float *bn_plane(const float *base, int64_t i, int64_t c, int64_t ch, int64_t inner)
{
    return base + (i * ch + c) * inner;
}

/* Sums over one plane of `len` cells, vectorised: the float lanes of a
 * plane are added in an order fixed at compile time (whatever the thread
 * count), and the planes of a channel are then summed in double, so even
 * 128 x 32 x 32 values per channel keep their float32 precision. */
static inline float plane_sum(const float *p, int64_t len)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t q = 0; q < len; q++)
        s += p[q];
    return s;
}

static inline float plane_sqdev(const float *p, float mu, int64_t len)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t q = 0; q < len; q++) {
        float d = p[q] - mu;
        s += d * d;
    }
    return s;
}

/* y = gamma (x - mu) invstd + beta over channel c.  Not inlined: forward
 * and bn_recompute run this one body, so a recomputed value is the same
 * bits whatever the compiler would do with two copies. */
__attribute__((noinline)) static void bn_apply(ib_node *n, int64_t c, float mu, float is)
{
    const ib_node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    int64_t ch = n->i[0], batch = n->i[1], inner = n->i[2];
    float a = gamma->value[c] * is, b = beta->value[c] - mu * a;
    for (int64_t i = 0; i < batch; i++) {
        const float *restrict p = bn_plane(x->value, i, c, ch, inner);
        float *restrict y = n->value + (i * ch + c) * inner;
#pragma omp simd
        for (int64_t q = 0; q < inner; q++)
            y[q] = p[q] * a + b;
    }
}

static bool frozen_param(const ib_graph *g, const ib_node *p)
{
    return p->kind == IB__PARAM && ib_params_frozen(g->params, p->param_index);
}

/* Synchronised batch norm (ib_graph_set_sync_batchnorm): the training
 * statistics of the global batch of g->sync_bn_batch rows, of which this
 * rank holds n->i[1].  The same two passes as bn_fwd, each channel's sums
 * added over the ranks between them; every rank then holds the same mean,
 * variance and running statistics. */
static void bn_fwd_sync(ib_graph *g, ib_node *n)
{
    const ib_node *x = n->in[0];
    ib_node *rm = n->in[3], *rv = n->in[4];
    int64_t ch = n->i[0], batch = n->i[1], inner = n->i[2], m = g->sync_bn_batch * inner;
    float mom = (float)n->f[0], eps = (float)n->f[1];
    float *mean = n->scratch, *invstd = mean + ch;
    double *st = malloc((size_t)ch * sizeof *st);
    IB_ASSERT(st != NULL);
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++) {
        double s = 0;
        for (int64_t i = 0; i < batch; i++)
            s += plane_sum(bn_plane(x->value, i, c, ch, inner), inner);
        st[c] = s;
    }
    ib__dist_sum_f64(st, (int)ch);
    for (int64_t c = 0; c < ch; c++)
        mean[c] = (float)(st[c] / (double)m);
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++) {
        double v = 0;
        for (int64_t i = 0; i < batch; i++)
            v += plane_sqdev(bn_plane(x->value, i, c, ch, inner), mean[c], inner);
        st[c] = v;
    }
    ib__dist_sum_f64(st, (int)ch);
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++) {
        double var = st[c] / (double)m, unbiased = m > 1 ? st[c] / (double)(m - 1) : var;
        invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
        rm->value[c] = (1.0f - mom) * rm->value[c] + mom * mean[c];
        rv->value[c] = (1.0f - mom) * rv->value[c] + mom * (float)unbiased;
        bn_apply(n, c, mean[c], invstd[c]);
    }
    free(st);
}

static void bn_fwd(ib_graph *g, ib_node *n)
{
    const ib_node *x = n->in[0];
    ib_node *rm = n->in[3], *rv = n->in[4];
    int64_t ch = n->i[0], batch = n->i[1], inner = n->i[2], m = batch * inner;
    float mom = (float)n->f[0], eps = (float)n->f[1];
    float *mean = n->scratch, *invstd = mean + ch;
    bool train = g->training && !(frozen_param(g, n->in[1]) && frozen_param(g, n->in[2]));
    n->i[3] = train;
    if (train && g->sync_bn_batch > 0) {
        bn_fwd_sync(g, n);
        return;
    }
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++) {
        float mu, is;
        if (train) {
            double s = 0;
            for (int64_t i = 0; i < batch; i++)
                s += plane_sum(bn_plane(x->value, i, c, ch, inner), inner);
            double dmu = s / (double)m, v = 0;
            /* Deviations from the mean rounded to float: the two-pass
             * variance stays accurate when |mean| >> std. */
            for (int64_t i = 0; i < batch; i++)
                v += plane_sqdev(bn_plane(x->value, i, c, ch, inner), (float)dmu, inner);
            double var = v / (double)m;
            /* PyTorch stores the unbiased variance; with one value per
             * channel it is undefined, so the biased one (0) is used. */
            double unbiased = m > 1 ? v / (double)(m - 1) : var;
            mu = (float)dmu;
            is = (float)(1.0 / sqrt(var + (double)eps));
            rm->value[c] = (1.0f - mom) * rm->value[c] + mom * mu;
            rv->value[c] = (1.0f - mom) * rv->value[c] + mom * (float)unbiased;
        } else {
            mu = rm->value[c];
            is = (float)(1.0 / sqrt((double)rv->value[c] + (double)eps));
        }
        mean[c] = mu;
        invstd[c] = is;
        bn_apply(n, c, mu, is);
    }
}

/* The value again from the statistics forward saved (ib_graph_set_recompute):
 * the same bits through the same bn_apply, and the running statistics
 * are left alone. */
static void bn_recompute(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t ch = n->i[0];
    const float *mean = n->scratch, *invstd = mean + ch;
#pragma omp parallel for schedule(static) if (n->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++)
        bn_apply(n, c, mean[c], invstd[c]);
}

/* sum dy and sum dy * xhat of channel c: plane sums (as in forward) added in double */
static void bn_dsums(const ib_node *n, int64_t c, double *sdy_out, double *sdyx_out)
{
    const ib_node *x = n->in[0];
    int64_t ch = n->i[0], batch = n->i[1], inner = n->i[2];
    const float *mean = n->scratch, *invstd = mean + ch;
    float mu = mean[c];
    double sdy = 0, sdyx = 0;
    for (int64_t i = 0; i < batch; i++) {
        const float *p = bn_plane(x->value, i, c, ch, inner), *dy = bn_plane(n->grad, i, c, ch, inner);
        float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t q = 0; q < inner; q++) {
            s1 += dy[q];
            s2 += dy[q] * (p[q] - mu);
        }
        sdy += s1;
        sdyx += s2;
    }
    *sdy_out = sdy;
    *sdyx_out = sdyx * invstd[c];
}

/* Backward of the synchronised batch norm.  This rank's loss is a mean
 * over its rows, and ib_train sums the ranks' gradients weighted by
 * w = rows / global batch; the batch-mean terms of dx need the sums of the
 * global loss's dy, sum_r w_r sum dy_r, which divided by w times the global
 * count (= this rank's count) are in this rank's units again.  gamma and
 * beta keep this rank's sums: the weighted gradient sum adds them up. */
static void bn_bwd_sync(ib_graph *g, ib_node *n)
{
    ib_node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    int64_t ch = n->i[0], batch = n->i[1], inner = n->i[2], m = batch * inner;
    const float *mean = n->scratch, *invstd = mean + ch;
    double w = (double)batch / (double)g->sync_bn_batch;
    double *st = malloc((size_t)(2 * ch) * sizeof *st);
    IB_ASSERT(st != NULL);
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++) {
        double sdy, sdyx;
        bn_dsums(n, c, &sdy, &sdyx);
        if (gamma->needs_grad)
            gamma->grad[c] += (float)sdyx;
        if (beta->needs_grad)
            beta->grad[c] += (float)sdy;
        st[c] = w * sdy;
        st[ch + c] = w * sdyx;
    }
    if (x->needs_grad) {
        bool set = ib__grad_assign(n, 0);
        ib__dist_sum_f64(st, (int)(2 * ch));
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
        for (int64_t c = 0; c < ch; c++) {
            float mu = mean[c], is = invstd[c], k = gamma->value[c] * is;
            float a = (float)(st[c] / (double)m), b = (float)(st[ch + c] / (double)m);
            for (int64_t i = 0; i < batch; i++) {
                const float *restrict p = bn_plane(x->value, i, c, ch, inner);
                const float *restrict dy = bn_plane(n->grad, i, c, ch, inner);
                float *restrict dx = x->grad + (i * ch + c) * inner;
                if (set) {
#pragma omp simd
                    for (int64_t q = 0; q < inner; q++)
                        dx[q] = k * (dy[q] - a - (p[q] - mu) * is * b);
                } else {
#pragma omp simd
                    for (int64_t q = 0; q < inner; q++)
                        dx[q] += k * (dy[q] - a - (p[q] - mu) * is * b);
                }
            }
        }
    }
    free(st);
}

static void bn_bwd(ib_graph *g, ib_node *n)
{
    ib_node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    int64_t ch = n->i[0], batch = n->i[1], inner = n->i[2], m = batch * inner;
    bool train = n->i[3];
    if (train && g->sync_bn_batch > 0) {
        bn_bwd_sync(g, n);
        return;
    }
    const float *mean = n->scratch, *invstd = mean + ch;
    bool set = x->needs_grad && ib__grad_assign(n, 0);
#pragma omp parallel for schedule(static) if (x->numel > IB_PAR_MIN && ch > 1)
    for (int64_t c = 0; c < ch; c++) {
        float mu = mean[c], is = invstd[c];
        double sdy = 0, sdyx = 0; /* sum dy, sum dy * xhat: plane sums (as in forward) added in double */
        for (int64_t i = 0; i < batch; i++) {
            const float *p = bn_plane(x->value, i, c, ch, inner), *dy = bn_plane(n->grad, i, c, ch, inner);
            float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
            for (int64_t q = 0; q < inner; q++) {
                s1 += dy[q];
                s2 += dy[q] * (p[q] - mu);
            }
            sdy += s1;
            sdyx += s2;
        }
        sdyx *= is;
        if (gamma->needs_grad)
            gamma->grad[c] += (float)sdyx;
        if (beta->needs_grad)
            beta->grad[c] += (float)sdy;
        if (!x->needs_grad)
            continue;
        float k = gamma->value[c] * is;
        /* Training: y depends on x also through the batch mean and variance:
         * dx = gamma*invstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
        float a = train ? (float)(sdy / (double)m) : 0.0f, b = train ? (float)(sdyx / (double)m) : 0.0f;
        for (int64_t i = 0; i < batch; i++) {
            const float *restrict p = bn_plane(x->value, i, c, ch, inner);
            const float *restrict dy = bn_plane(n->grad, i, c, ch, inner);
            float *restrict dx = x->grad + (i * ch + c) * inner;
            if (set) {
#pragma omp simd
                for (int64_t q = 0; q < inner; q++)
                    dx[q] = k * (dy[q] - a - (p[q] - mu) * is * b);
            } else {
#pragma omp simd
                for (int64_t q = 0; q < inner; q++)
                    dx[q] += k * (dy[q] - a - (p[q] - mu) * is * b);
            }
        }
    }
}

static const ib_op op_batchnorm = {.name = "batchnorm", .forward = bn_fwd, .backward = bn_bwd,
                                   .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0) | IB__READS_IN(1),
                                   .recompute = bn_recompute, .grad_assign = IB__ASSIGNS_IN(0)};

ib_node *ib_batchnorm(ib_graph *g, ib_node *x, ib_node *gamma, ib_node *beta, ib_node *running_mean,
                      ib_node *running_var, float momentum, float eps)
{
    ib_node *in[5] = {x, gamma, beta, running_mean, running_var};
    if (!ib__inputs_ok(g, 5, in))
        return NULL;
    char sx[64], sp[64];
    ib__shape_str(x, sx, sizeof sx);
    if (x->dtype != IB_F32 || (x->ndim != 2 && x->ndim != 4))
        return ib__fail(g, IB_ERR_SHAPE, "batchnorm: input '%s' %s must be (N, C) or (N, C, H, W)", x->name, sx);
    int64_t ch = x->shape[1];
    for (int k = 1; k < 5; k++)
        if (in[k]->dtype != IB_F32 || in[k]->ndim != 1 || in[k]->shape[0] != ch)
            return ib__fail(g, IB_ERR_SHAPE, "batchnorm: '%s' %s must have shape (%lld) to fit input '%s' %s",
                            in[k]->name, ib__shape_str(in[k], sp, sizeof sp), (long long)ch, x->name, sx);
    for (int k = 3; k < 5; k++)
        if (in[k]->kind == IB__OP)
            return ib__fail(g, IB_ERR_ARG, "batchnorm: running statistic '%s' must be a buffer, not an op output",
                            in[k]->name);
    if (!(momentum >= 0.0f && momentum <= 1.0f) || !(eps >= 0.0f))
        return ib__fail(g, IB_ERR_ARG, "batchnorm on '%s': momentum %g must be in [0, 1] and eps %g >= 0", x->name,
                        (double)momentum, (double)eps);
    ib_node *n = ib__node_new(g, &op_batchnorm, 5, in, x->ndim, x->shape);
    if (!n)
        return NULL;
    n->f[0] = momentum;
    n->f[1] = eps;
    n->i[0] = ch;
    n->i[1] = x->shape[0];
    n->i[2] = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    n->scratch_bytes = (size_t)(2 * ch) * sizeof(float);
    return n;
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
