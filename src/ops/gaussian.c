/*
 * gaussian.c — the diagonal-Gaussian stochastic layer and its divergences:
 * the reparameterised sample z = mu + sigma * eps (Deep VIB's encoder
 * output), KL to N(0, 1), KL between two Gaussians (a learned prior) and
 * the log-density.  The three reductions are row sums of elementwise terms
 * and use the ib__rowsum_* scaffolding of divergence.c.
 */
#include "../core/internal.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178f

/* ------------------------------------------------------------------------
 * z = mu + sigma * eps.  in = {mu, sigma[, eps]}.  Without an eps input
 * the noise is drawn into scratch (numel floats) keyed by (graph seed,
 * node stream, step) while sampling, and is all zeros otherwise, so the
 * mean path z = mu and its gradient (dsigma = 0) need no special case in
 * backward.  With an eps input the caller owns the noise and it is used
 * whatever the sampling mode.
 * ---------------------------------------------------------------------- */
static void sample_fwd(ib_graph *g, ib_node *n)
{
    const float *mu = n->in[0]->value, *sigma = n->in[1]->value;
    float *z = n->value, *eps;
    int64_t count = n->numel;
    if (n->n_in > 2) {
        eps = n->in[2]->value;
    } else {
        eps = n->scratch;
        if (g->sampling)
            ib_rng_normal(g->seed, ib__node_stream(n), g->step, eps, count);
        else
            memset(eps, 0, (size_t)count * sizeof(float));
    }
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
    for (int64_t k = 0; k < count; k++)
        z[k] = mu[k] + sigma[k] * eps[k];
}

static void sample_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *mu = n->in[0], *sigma = n->in[1];
    const float *dz = n->grad;
    const float *eps = n->n_in > 2 ? n->in[2]->value : n->scratch;
    int64_t count = n->numel;
    if (mu->needs_grad) {
        float *d = mu->grad;
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
        for (int64_t k = 0; k < count; k++)
            d[k] += dz[k];
    }
    if (sigma->needs_grad) {
        float *d = sigma->grad;
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
        for (int64_t k = 0; k < count; k++)
            d[k] += dz[k] * eps[k];
    }
    if (n->n_in > 2 && n->in[2]->needs_grad) {
        float *d = n->in[2]->grad;
        const float *s = sigma->value;
#pragma omp parallel for simd schedule(static) if (count > IB_PAR_MIN)
        for (int64_t k = 0; k < count; k++)
            d[k] += dz[k] * s[k];
    }
}

static const ib_op op_sample = {"gaussian_sample", sample_fwd, sample_bwd};

ib_node *ib_gaussian_sample(ib_graph *g, ib_node *mu, ib_node *sigma, ib_node *eps)
{
    ib_node *in[3] = {mu, sigma, eps};
    int n_in = eps ? 3 : 2;
    if (!ib__inputs_ok(g, n_in, in))
        return NULL;
    for (int k = 0; k < n_in; k++) {
        if (in[k]->dtype != IB_F32)
            return ib__fail(g, IB_ERR_ARG, "gaussian_sample: '%s' is not a float tensor", in[k]->name);
        if (!ib__same_shape(mu, in[k])) {
            char s1[64], s2[64];
            return ib__fail(g, IB_ERR_SHAPE, "gaussian_sample: '%s' has shape %s but mu '%s' has %s", in[k]->name,
                            ib__shape_str(in[k], s1, sizeof s1), mu->name, ib__shape_str(mu, s2, sizeof s2));
        }
    }
    ib_node *n = ib__node_new(g, &op_sample, n_in, in, mu->ndim, mu->shape);
    if (n && !eps) {
        n->scratch_bytes = (size_t)mu->numel * sizeof(float);
        n->random = true;
    }
    return n;
}

/* ------------------------------------------------------------------------
 * KL(N(mu, sigma^2) || N(0, 1)) = 1/2 sum (mu^2 + sigma^2 - 1 - 2 log sigma).
 * d/dmu = mu, d/dsigma = sigma - 1/sigma.
 * ---------------------------------------------------------------------- */
static double kl_std_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    const float *mu = x[0], *s = x[1];
    double acc = 0;
    for (int64_t j = 0; j < len; j++)
        acc += mu[j] * mu[j] + s[j] * s[j] - 1.0f - 2.0f * logf(s[j]);
    return 0.5 * acc;
}

static void kl_std_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *mu = x[0], *s = x[1];
    if (dx[0])
        for (int64_t j = 0; j < len; j++)
            dx[0][j] += dy * mu[j];
    if (dx[1])
        for (int64_t j = 0; j < len; j++)
            dx[1][j] += dy * (s[j] - 1.0f / s[j]);
}

static void kl_std_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, kl_std_row);
}
static void kl_std_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, kl_std_row_bwd); }
static const ib_op op_kl_std_normal = {"kl_std_normal", kl_std_fwd, kl_std_bwd};

ib_node *ib_kl_std_normal(ib_graph *g, ib_node *mu, ib_node *sigma)
{
    return ib__rowsum_new(g, &op_kl_std_normal, 2, (ib_node *[]){mu, sigma});
}

/* ------------------------------------------------------------------------
 * KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2/s1) + (s1^2 + (m1-m2)^2)/(2 s2^2) - 1/2
 * d/dm1 = (m1-m2)/s2^2 = -d/dm2;  d/ds1 = s1/s2^2 - 1/s1;
 * d/ds2 = 1/s2 - (s1^2 + (m1-m2)^2)/s2^3.
 * ---------------------------------------------------------------------- */
static double kl_gauss_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    const float *m1 = x[0], *s1 = x[1], *m2 = x[2], *s2 = x[3];
    double acc = 0;
    for (int64_t j = 0; j < len; j++) {
        float d = m1[j] - m2[j], v2 = s2[j] * s2[j];
        acc += (logf(s2[j]) - logf(s1[j])) + (s1[j] * s1[j] + d * d) / (2.0f * v2) - 0.5f;
    }
    return acc;
}

static void kl_gauss_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *m1 = x[0], *s1 = x[1], *m2 = x[2], *s2 = x[3];
    for (int64_t j = 0; j < len; j++) {
        float d = m1[j] - m2[j], inv_v2 = 1.0f / (s2[j] * s2[j]);
        float gm = dy * d * inv_v2;
        if (dx[0])
            dx[0][j] += gm;
        if (dx[1])
            dx[1][j] += dy * (s1[j] * inv_v2 - 1.0f / s1[j]);
        if (dx[2])
            dx[2][j] -= gm;
        if (dx[3])
            dx[3][j] += dy * (1.0f - (s1[j] * s1[j] + d * d) * inv_v2) / s2[j];
    }
}

static void kl_gauss_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, kl_gauss_row);
}
static void kl_gauss_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, kl_gauss_row_bwd); }
static const ib_op op_kl_gaussians = {"kl_gaussians", kl_gauss_fwd, kl_gauss_bwd};

ib_node *ib_kl_gaussians(ib_graph *g, ib_node *mu1, ib_node *s1, ib_node *mu2, ib_node *s2)
{
    return ib__rowsum_new(g, &op_kl_gaussians, 4, (ib_node *[]){mu1, s1, mu2, s2});
}

/* ------------------------------------------------------------------------
 * log N(x; mu, sigma^2) = sum -1/2 log(2 pi) - log sigma - (x-mu)^2/(2 sigma^2).
 * With r = (x - mu)/sigma^2: d/dx = -r, d/dmu = r,
 * d/dsigma = ((x-mu)^2/sigma^2 - 1)/sigma.
 * ---------------------------------------------------------------------- */
static double logdens_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    const float *v = x[0], *mu = x[1], *s = x[2];
    double acc = 0;
    for (int64_t j = 0; j < len; j++) {
        float t = (v[j] - mu[j]) / s[j];
        acc += -HALF_LOG_2PI - logf(s[j]) - 0.5f * t * t;
    }
    return acc;
}

static void logdens_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *v = x[0], *mu = x[1], *s = x[2];
    for (int64_t j = 0; j < len; j++) {
        float inv = 1.0f / s[j], t = (v[j] - mu[j]) * inv, r = dy * t * inv;
        if (dx[0])
            dx[0][j] -= r;
        if (dx[1])
            dx[1][j] += r;
        if (dx[2])
            dx[2][j] += dy * (t * t - 1.0f) * inv;
    }
}

static void logdens_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, logdens_row);
}
static void logdens_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, logdens_row_bwd); }
static const ib_op op_log_density = {"gaussian_log_density", logdens_fwd, logdens_bwd};

ib_node *ib_gaussian_log_density(ib_graph *g, ib_node *x, ib_node *mu, ib_node *sigma)
{
    return ib__rowsum_new(g, &op_log_density, 3, (ib_node *[]){x, mu, sigma});
}
