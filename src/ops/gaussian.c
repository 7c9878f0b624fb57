/*
 * gaussian.c — the diagonal-Gaussian stochastic layer and its divergences:
 * the reparameterised sample z = mu + sigma * eps (Deep VIB's encoder
 * output), KL to N(0, 1), KL between two Gaussians (a learned prior) and
 * the log-density.  The three reductions are row sums of elementwise terms
 * and use the ib__rowsum_* scaffolding of divergence.c.
 *
 * The sample and KL(.||N(0,1)) are on every VIB layer's path, so they are
 * single fused passes: the noise is drawn chunk by chunk straight into the
 * z loop (one parallel region, the chunk still in L1), the gradients of
 * mu and sigma come from one pass, and the KL's row sum is the backend's
 * kernel (ib__kl_std_normal_row, kernels.h).
 */
#include "../core/internal.h"
#include "../kernels/kernels.h"

#include <math.h>

#define HALF_LOG_2PI 0.91893853320467274178f

/* ------------------------------------------------------------------------
 * z = mu + sigma * eps.  in = {mu, sigma[, eps]}.  Without an eps input
 * the noise is drawn keyed by (graph seed, node stream, step) while
 * sampling, and is all zeros otherwise, so the mean path z = mu and its
 * gradient (dsigma = 0) need no special case in backward.  The generator
 * is counter-based, so backward draws the same noise again, chunk by
 * chunk, instead of keeping it from forward: a VIB cell's eps is as large
 * as its feature map, and keeping it cost as much memory as the map.
 * Forward records the step it drew at (i[0]) and whether it drew (i[1]).
 * With an eps input the caller owns the noise and it is used whatever the
 * sampling mode.
 * ---------------------------------------------------------------------- */
/* Elements per chunk of the fused loops: a multiple of the generator's
 * 32-element groups, small enough that a chunk's noise is still in L1
 * when it is used. */
#define SAMPLE_CHUNK 2048

/* The noise of elements [lo, hi) of node n's last forward into buf (own
 * noise), or a pointer into the caller's eps input. */
static const float *noise_chunk(const ib_graph *g, const ib_node *n, int64_t lo, int64_t hi, float *buf)
{
    if (n->n_in > 2)
        return n->in[2]->value + lo;
    if (n->i[1])
        ib__rng_normal_range(g->seed, ib__node_stream(n), (uint64_t)n->i[0], lo + ib__random_first(g, n), buf, hi - lo);
    else
        memset(buf, 0, (size_t)(hi - lo) * sizeof(float));
    return buf;
}

/* A blocked z (src/core/layout.c: a VIB cell's sample feeding the next
 * convolutions): mu, sigma and the noise stay NCHW and element k of them
 * goes to k's place in the blocked layout, so the draws and every bit are
 * the layout's business no more than they are the thread count's.  The
 * plain elements [lo, hi) as runs along one (image, channel) plane: run
 * start k, its length, and z's offset of k (stride b within the run). */
typedef struct z_run {
    int64_t k, len, at;
} z_run;

static z_run next_run(const ib_node *n, int64_t k, int64_t hi)
{
    int64_t ch = n->shape[1], hw = n->shape[2] * n->shape[3], plane = k / hw, q = k % hw;
    int64_t end = (plane + 1) * hw < hi ? (plane + 1) * hw : hi;
    return (z_run){k, end - k, ib__layout_at(plane / ch, plane % ch, q, ch, hw, n->layout)};
}

static void sample_fwd(ib_graph *g, ib_node *n)
{
    const float *mu = n->in[0]->value, *sigma = n->in[1]->value;
    float *z = n->value;
    int64_t count = n->numel, chunks = (count + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK, b = n->layout;
    n->i[0] = (int64_t)g->step;
    n->i[1] = n->n_in <= 2 && g->sampling;
#pragma omp parallel for schedule(static) if (count > IB_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * SAMPLE_CHUNK, hi = lo + SAMPLE_CHUNK < count ? lo + SAMPLE_CHUNK : count;
        float buf[SAMPLE_CHUNK] __attribute__((aligned(64)));
        const float *eps = noise_chunk(g, n, lo, hi, buf) - lo;
        if (!b) {
#pragma omp simd
            for (int64_t k = lo; k < hi; k++)
                z[k] = mu[k] + sigma[k] * eps[k];
            continue;
        }
        for (z_run r = next_run(n, lo, hi); r.len > 0; r = next_run(n, r.k + r.len, hi)) {
            float *zr = z + r.at;
            for (int64_t j = 0; j < r.len; j++)
                zr[j * b] = mu[r.k + j] + sigma[r.k + j] * eps[r.k + j];
            if (r.k + r.len >= hi)
                break;
        }
    }
}

/* Backward with a blocked z: dz gathered into NCHW order, a chunk at a time. */
static const float *dz_chunk(const ib_node *n, int64_t lo, int64_t hi, float *buf)
{
    int64_t b = n->layout;
    if (!b)
        return n->grad + lo;
    for (z_run r = next_run(n, lo, hi); r.len > 0; r = next_run(n, r.k + r.len, hi)) {
        const float *dr = n->grad + r.at;
        for (int64_t j = 0; j < r.len; j++)
            buf[r.k - lo + j] = dr[j * b];
        if (r.k + r.len >= hi)
            break;
    }
    return buf;
}

static void sample_bwd(ib_graph *g, ib_node *n)
{
    ib_node *mu = n->in[0], *sigma = n->in[1];
    const float *s = sigma->value;
    float *dmu = mu->needs_grad ? mu->grad : NULL, *ds = sigma->needs_grad ? sigma->grad : NULL;
    float *deps = n->n_in > 2 && n->in[2]->needs_grad ? n->in[2]->grad : NULL;
    int64_t count = n->numel, chunks = (count + SAMPLE_CHUNK - 1) / SAMPLE_CHUNK;
#pragma omp parallel for schedule(static) if (count > IB_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * SAMPLE_CHUNK, hi = lo + SAMPLE_CHUNK < count ? lo + SAMPLE_CHUNK : count;
        float buf[SAMPLE_CHUNK] __attribute__((aligned(64))), dbuf[SAMPLE_CHUNK] __attribute__((aligned(64)));
        const float *eps = ds ? noise_chunk(g, n, lo, hi, buf) - lo : NULL;
        const float *dz = dz_chunk(n, lo, hi, dbuf) - lo;
        if (dmu && ds) { /* the usual case: one pass */
#pragma omp simd
            for (int64_t k = lo; k < hi; k++) {
                dmu[k] += dz[k];
                ds[k] += dz[k] * eps[k];
            }
        } else if (dmu) {
#pragma omp simd
            for (int64_t k = lo; k < hi; k++)
                dmu[k] += dz[k];
        } else if (ds) {
#pragma omp simd
            for (int64_t k = lo; k < hi; k++)
                ds[k] += dz[k] * eps[k];
        }
        if (deps) {
#pragma omp simd
            for (int64_t k = lo; k < hi; k++)
                deps[k] += dz[k] * s[k];
        }
    }
}

/* sigma is read only for the gradient of a caller's eps (rare; declared
 * anyway: sigma is kept for the KL in every VIB layer). */
static const ib_op op_sample = {.name = "gaussian_sample", .forward = sample_fwd, .backward = sample_bwd,
                                .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(1) | IB__READS_IN(2),
                                .layout = IB__LAYOUT_OUT};

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
    if (n && !eps)
        n->random = true;
    return n;
}

/* ------------------------------------------------------------------------
 * KL(N(mu, sigma^2) || N(0, 1)) = 1/2 sum (mu^2 + sigma^2 - 1 - 2 log sigma).
 * d/dmu = mu, d/dsigma = sigma - 1/sigma.
 * ---------------------------------------------------------------------- */
/* The backend's row kernel (8-lane log on the CPU: libm's logf was 2% of
 * a VIB-CNN step). */
static double kl_std_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    return ib__kl_std_normal_row(x[0], x[1], len);
}

static void kl_std_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *mu = x[0], *s = x[1];
    float *dmu = dx[0], *ds = dx[1];
    if (dmu && ds) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) {
            dmu[j] += dy * mu[j];
            ds[j] += dy * (s[j] - 1.0f / s[j]);
        }
    } else if (dmu) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++)
            dmu[j] += dy * mu[j];
    } else if (ds) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++)
            ds[j] += dy * (s[j] - 1.0f / s[j]);
    }
}

static void kl_std_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, kl_std_row);
}
static void kl_std_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, kl_std_row_bwd); }
/* The KL is a VIB cell's last reader of mu and sigma, so their gradients'
 * first writer in backward: it assigns them (ib__rowsum_backward zeroes a
 * row in the cache before adding). */
static const ib_op op_kl_std_normal = {.name = "kl_std_normal", .forward = kl_std_fwd, .backward = kl_std_bwd,
                                       .bwd_reads = IB__BWD_DECLARED | IB__READS_ALL_IN,
                                       .grad_assign = IB__ASSIGNS_IN(0) | IB__ASSIGNS_IN(1)};

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
static const ib_op op_kl_gaussians = {.name = "kl_gaussians", .forward = kl_gauss_fwd, .backward = kl_gauss_bwd,
                                      .bwd_reads = IB__BWD_DECLARED | IB__READS_ALL_IN};

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
static const ib_op op_log_density = {.name = "gaussian_log_density", .forward = logdens_fwd, .backward = logdens_bwd,
                                     .bwd_reads = IB__BWD_DECLARED | IB__READS_ALL_IN};

ib_node *ib_gaussian_log_density(ib_graph *g, ib_node *x, ib_node *mu, ib_node *sigma)
{
    return ib__rowsum_new(g, &op_log_density, 3, (ib_node *[]){x, mu, sigma});
}
