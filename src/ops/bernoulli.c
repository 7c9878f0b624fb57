/*
 * bernoulli.c — binary stochastic units: the straight-through Bernoulli
 * sample and the Gumbel-sigmoid (binary concrete) relaxation.
 *
 * Both draw their uniforms straight into the output buffer, keyed by
 * (graph seed, node stream, step), and transform them in place: neither
 * backward needs the noise itself (the straight-through gradient is the
 * identity; the relaxation's is y (1 - y) / T, read from the output that
 * already carries the noise), so no scratch memory is kept.
 */
#include "../core/internal.h"

#include <math.h>

/* ---- straight-through Bernoulli: h = 1[u < p] while sampling, else p; dp += dh ---- */
static void bst_fwd(ib_graph *g, ib_node *n)
{
    const float *p = n->in[0]->value;
    float *h = n->value;
    int64_t count = n->numel;
    if (!g->sampling) {
        memcpy(h, p, (size_t)count * sizeof(float));
        return;
    }
    ib__rng_uniform_range(g->seed, ib__node_stream(n), g->step, ib__random_first(g, n), h, count);
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
    for (int64_t k = 0; k < count; k++)
        h[k] = h[k] < p[k] ? 1.0f : 0.0f;
}

static void bst_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *dh = n->grad;
    float *dp = n->in[0]->grad;
    int64_t count = n->numel;
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
    for (int64_t k = 0; k < count; k++)
        dp[k] += dh[k];
}

static const ib_op op_bernoulli_st = {.name = "bernoulli_st", .forward = bst_fwd, .backward = bst_bwd,
                                      .bwd_reads = IB__READS_ALL};

ib_node *ib_bernoulli_st(ib_graph *g, ib_node *p)
{
    if (!ib__inputs_ok(g, 1, &p))
        return NULL;
    if (p->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "bernoulli_st: '%s' is not a float tensor", p->name);
    ib_node *n = ib__node_new(g, &op_bernoulli_st, 1, &p, p->ndim, p->shape);
    if (n)
        n->random = true;
    return n;
}

/* ---- Gumbel-sigmoid: y = sigmoid((x + log u - log(1-u)) / T); f[0] = T ----
 * u lies on the grid k 2^-24 in [0, 1); it is clamped to
 * [2^-24, 1 - 2^-24] so the logistic noise is finite and symmetric, within
 * +-16.6.  On that grid 1 - u is exact, so log1p(-u) loses nothing. */
#define GS_ULO 5.9604644775390625e-08f /* 2^-24 */
#define GS_UHI 0.99999994039535522461f /* 1 - 2^-24 */

static void gs_fwd(ib_graph *g, ib_node *n)
{
    const float *x = n->in[0]->value;
    float *y = n->value, inv_t = 1.0f / (float)n->f[0];
    int64_t count = n->numel;
    if (!g->sampling) {
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
        for (int64_t k = 0; k < count; k++)
            y[k] = 1.0f / (1.0f + expf(-x[k] * inv_t));
        return;
    }
    ib__rng_uniform_range(g->seed, ib__node_stream(n), g->step, ib__random_first(g, n), y, count);
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
    for (int64_t k = 0; k < count; k++) {
        float u = fminf(fmaxf(y[k], GS_ULO), GS_UHI);
        float t = (x[k] + logf(u) - log1pf(-u)) * inv_t;
        y[k] = 1.0f / (1.0f + expf(-t));
    }
}

static void gs_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad, inv_t = 1.0f / (float)n->f[0];
    int64_t count = n->numel;
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
    for (int64_t k = 0; k < count; k++)
        dx[k] += dy[k] * y[k] * (1.0f - y[k]) * inv_t;
}

static const ib_op op_gumbel_sigmoid = {.name = "gumbel_sigmoid", .forward = gs_fwd, .backward = gs_bwd,
                                        .bwd_reads = IB__READS_ALL};

ib_node *ib_gumbel_sigmoid(ib_graph *g, ib_node *logits, float temperature)
{
    if (!ib__inputs_ok(g, 1, &logits))
        return NULL;
    if (logits->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "gumbel_sigmoid: '%s' is not a float tensor", logits->name);
    if (!(temperature > 0.0f) || isinf(temperature))
        return ib__fail(g, IB_ERR_ARG, "gumbel_sigmoid: temperature must be positive and finite (got %g)",
                        (double)temperature);
    ib_node *n = ib__node_new(g, &op_gumbel_sigmoid, 1, &logits, logits->ndim, logits->shape);
    if (n) {
        n->f[0] = temperature;
        n->random = true;
    }
    return n;
}
