/*
 * divergence.c — divergences between distributions given per element
 * (Bernoulli KL, categorical KL and Jensen-Shannon from log-probabilities)
 * and the cosine-similarity matrix used by contrastive objectives.
 *
 * Most divergences here, and the Gaussian ones in gaussian.c, share one
 * shape: output row i is a sum over the row of elementwise terms of the
 * inputs, (N, ...) -> (N).  That scaffolding (shape checks, a batch
 * broadcast of any input after the first, the parallel row loops, the
 * deterministic batch sum of a broadcast input's gradient) lives here once
 * as ib__rowsum_* (declared in src/core/internal.h); each op supplies
 * only a row forward and a row backward.
 */
#include "../core/internal.h"
#include "../kernels/kernels.h"

#include <math.h>

/* ------------------------------------------------------------------------
 * Row-sum scaffolding.  n->i[0] = N (rows), n->i[1] = D (elements per row),
 * n->i[2] = bit mask of the inputs broadcast over the batch (leading dim 1).
 * ---------------------------------------------------------------------- */

/* True when b is (1, rest of a's shape), i.e. one row shared by the batch. */
static bool batch_broadcast(const ib_node *a, const ib_node *b)
{
    if (a->ndim != b->ndim || b->shape[0] != 1)
        return false;
    for (int d = 1; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

/* in[0] is (N, ...) and fixes the output (N); each later input has the same
 * shape or (1, ...), shared by every row. */
ib_node *ib__rowsum_new(ib_graph *g, const ib_op *op, int n_in, ib_node *const *in)
{
    if (!ib__inputs_ok(g, n_in, in))
        return NULL;
    for (int k = 0; k < n_in; k++)
        if (in[k]->dtype != IB_F32)
            return ib__fail(g, IB_ERR_ARG, "%s: input %d '%s' is not a float tensor", op->name, k, in[k]->name);
    ib_node *x = in[0];
    if (x->ndim < 1)
        return ib__fail(g, IB_ERR_SHAPE, "%s: '%s' is a scalar; expected (N, ...)", op->name, x->name);
    int64_t mask = 0;
    for (int k = 1; k < n_in; k++) {
        if (ib__same_shape(x, in[k]))
            continue;
        if (batch_broadcast(x, in[k])) {
            mask |= (int64_t)1 << k;
            continue;
        }
        char s1[64], s2[64];
        return ib__fail(g, IB_ERR_SHAPE,
                        "%s: '%s' has shape %s but must match %s of '%s' (or have a leading dim of 1 to be shared "
                        "by the batch)",
                        op->name, in[k]->name, ib__shape_str(in[k], s1, sizeof s1), ib__shape_str(x, s2, sizeof s2),
                        x->name);
    }
    int64_t rows = x->shape[0];
    ib_node *n = ib__node_new(g, op, n_in, in, 1, &rows);
    if (!n)
        return NULL;
    n->i[0] = rows;
    n->i[1] = x->numel / rows;
    n->i[2] = mask;
    /* One (N, D) buffer per broadcast input: its per-row gradients, summed
     * over the batch in a fixed order after the parallel row pass. */
    n->tmp_bytes = (size_t)__builtin_popcountll((unsigned long long)mask) * (size_t)x->numel * sizeof(float);
    return n;
}

void ib__rowsum_forward(ib_node *n, ib__row_fwd fwd)
{
    int64_t rows = n->i[0], len = n->i[1], mask = n->i[2];
    int n_in = n->n_in;
    float *y = n->value;
#pragma omp parallel for schedule(static) if (rows * len > IB_PAR_MIN && rows > 1)
    for (int64_t i = 0; i < rows; i++) {
        const float *x[IB_MAX_INPUTS];
        for (int k = 0; k < n_in; k++)
            x[k] = n->in[k]->value + ((mask >> k) & 1 ? 0 : i * len);
        y[i] = (float)fwd(n, x, len);
    }
}

void ib__rowsum_backward(ib_graph *g, ib_node *n, ib__row_bwd bwd)
{
    int64_t rows = n->i[0], len = n->i[1], mask = n->i[2];
    int n_in = n->n_in;
    const float *dy = n->grad;
    float *slot[IB_MAX_INPUTS] = {0}; /* per-row gradients of broadcast inputs */
    float *tmp = g->tmp;
    for (int k = 0; k < n_in; k++)
        if ((mask >> k) & 1 && n->in[k]->needs_grad) {
            slot[k] = tmp;
            memset(tmp, 0, (size_t)(rows * len) * sizeof(float));
            tmp += rows * len;
        }
#pragma omp parallel for schedule(static) if (rows * len > IB_PAR_MIN && rows > 1)
    for (int64_t i = 0; i < rows; i++) {
        const float *x[IB_MAX_INPUTS];
        float *dx[IB_MAX_INPUTS];
        for (int k = 0; k < n_in; k++) {
            bool shared = (mask >> k) & 1;
            x[k] = n->in[k]->value + (shared ? 0 : i * len);
            dx[k] = !n->in[k]->needs_grad ? NULL : shared ? slot[k] + i * len : n->in[k]->grad + i * len;
            if (dx[k] && !shared && ib__grad_assign(n, k)) /* this op writes it first: from zero, in the cache */
                memset(dx[k], 0, (size_t)len * sizeof(float));
        }
        bwd(n, x, dy[i], dx, len);
    }
    for (int k = 0; k < n_in; k++) {
        if (!slot[k])
            continue;
        const float *s = slot[k];
        float *dst = n->in[k]->grad;
        bool set = ib__grad_assign(n, k);
#pragma omp parallel for schedule(static) if (rows * len > IB_PAR_MIN && len > 1)
        for (int64_t j = 0; j < len; j++) {
            double acc = 0;
            for (int64_t i = 0; i < rows; i++)
                acc += s[i * len + j];
            dst[j] = (set ? 0.0f : dst[j]) + (float)acc;
        }
    }
}

/* ------------------------------------------------------------------------
 * KL(Bern(p) || Bern(q)).  The logs see p and q clamped to
 * [KLB_LO, KLB_HI] so 0 and 1 give finite values; the gradients are those
 * of the clamped formula: d/dp = logit(pc) - logit(qc) (exact on both sides
 * of the clamp), d/dq = (q - p) / (q (1 - q)) inside the clamp, 0 outside.
 * ---------------------------------------------------------------------- */
#define KLB_LO 1e-7f
#define KLB_HI (1.0f - 1e-7f)

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

static double klb_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    const float *p = x[0], *q = x[1];
    double s = 0;
    for (int64_t j = 0; j < len; j++) {
        float pc = clampf(p[j], KLB_LO, KLB_HI), qc = clampf(q[j], KLB_LO, KLB_HI);
        s += p[j] * (logf(pc) - logf(qc)) + (1.0f - p[j]) * (log1pf(-pc) - log1pf(-qc));
    }
    return s;
}

static void klb_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *p = x[0], *q = x[1];
    if (dx[0])
        for (int64_t j = 0; j < len; j++) {
            float pc = clampf(p[j], KLB_LO, KLB_HI), qc = clampf(q[j], KLB_LO, KLB_HI);
            dx[0][j] += dy * ((logf(pc) - log1pf(-pc)) - (logf(qc) - log1pf(-qc)));
        }
    if (dx[1])
        for (int64_t j = 0; j < len; j++) {
            float qj = q[j];
            bool inside = qj >= KLB_LO && qj <= KLB_HI;
            dx[1][j] += inside ? dy * (-p[j] / qj + (1.0f - p[j]) / (1.0f - qj)) : 0.0f;
        }
}

static void klb_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, klb_row);
}
static void klb_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, klb_row_bwd); }
static const ib_op op_kl_bernoulli = {.name = "kl_bernoulli", .forward = klb_fwd, .backward = klb_bwd,
                                      .bwd_reads = IB__READS_ALL};

ib_node *ib_kl_bernoulli(ib_graph *g, ib_node *p, ib_node *q)
{
    return ib__rowsum_new(g, &op_kl_bernoulli, 2, (ib_node *[]){p, q});
}

/* ------------------------------------------------------------------------
 * Categorical KL(P || Q) = sum_c p_c (lp_c - lq_c), p = exp(lp).  The
 * gradients treat lp and lq as free arguments (what a log_softmax before
 * this op expects): d/dlp = p (lp - lq + 1), d/dlq = -p.  A class with
 * p = 0 contributes 0 even where lq = -inf.
 * ---------------------------------------------------------------------- */
static int check_2d(ib_graph *g, const char *op, ib_node *a, ib_node *b)
{
    if (!ib__inputs_ok(g, 2, (ib_node *[]){a, b}))
        return -1;
    if (a->ndim != 2) {
        char s[64];
        ib__fail(g, IB_ERR_SHAPE, "%s: log-probabilities '%s' must be 2-D (N, C); got %s", op, a->name,
                 ib__shape_str(a, s, sizeof s));
        return -1;
    }
    return 0;
}

static double klc_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    const float *lp = x[0], *lq = x[1];
    double s = 0;
    for (int64_t j = 0; j < len; j++) {
        float p = expf(lp[j]);
        if (p > 0.0f)
            s += p * (lp[j] - lq[j]);
    }
    return s;
}

static void klc_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *lp = x[0], *lq = x[1];
    if (dx[0])
        for (int64_t j = 0; j < len; j++) {
            float p = expf(lp[j]);
            dx[0][j] += p > 0.0f ? dy * p * (lp[j] - lq[j] + 1.0f) : 0.0f;
        }
    if (dx[1])
        for (int64_t j = 0; j < len; j++)
            dx[1][j] -= dy * expf(lp[j]);
}

static void klc_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, klc_row);
}
static void klc_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, klc_row_bwd); }
static const ib_op op_kl_categorical = {.name = "kl_categorical", .forward = klc_fwd, .backward = klc_bwd,
                                        .bwd_reads = IB__READS_ALL};

ib_node *ib_kl_categorical(ib_graph *g, ib_node *logp, ib_node *logq)
{
    if (check_2d(g, "kl_categorical", logp, logq))
        return NULL;
    return ib__rowsum_new(g, &op_kl_categorical, 2, (ib_node *[]){logp, logq});
}

/* ------------------------------------------------------------------------
 * Jensen-Shannon: JS = 1/2 sum_c [p (lp - lm) + q (lq - lm)], M = (P+Q)/2.
 * log M is never formed from lp + something: with d = lp - lq and
 * c = log((1 + e^-|d|)/2) <= 0 (in double), lm = max(lp, lq) + c, so
 * lp - lm = min(d, 0) - c and lq - lm = min(-d, 0) - c.  Then P = Q gives
 * exactly 0 and nothing overflows.  Gradients (free lp, lq):
 * d/dlp = 1/2 p (lp - lm), d/dlq = 1/2 q (lq - lm) (the terms through lm
 * cancel because p + q - (p + q) = 0).
 * ---------------------------------------------------------------------- */
static inline void js_logratios(float lp, float lq, double *rp, double *rq)
{
    if (lp == lq) { /* also both -inf: the class carries no mass */
        *rp = *rq = 0;
        return;
    }
    double d = (double)lp - (double)lq;
    double c = log1p(exp(-fabs(d))) - M_LN2;
    *rp = fmin(d, 0.0) - c;
    *rq = fmin(-d, 0.0) - c;
}

static double js_row(const ib_node *n, const float *const *x, int64_t len)
{
    (void)n;
    const float *lp = x[0], *lq = x[1];
    double s = 0;
    for (int64_t j = 0; j < len; j++) {
        double rp, rq, p = exp((double)lp[j]), q = exp((double)lq[j]);
        js_logratios(lp[j], lq[j], &rp, &rq);
        if (p > 0)
            s += p * rp;
        if (q > 0)
            s += q * rq;
    }
    return 0.5 * s;
}

static void js_row_bwd(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len)
{
    (void)n;
    const float *lp = x[0], *lq = x[1];
    for (int64_t j = 0; j < len; j++) {
        double rp, rq, p = exp((double)lp[j]), q = exp((double)lq[j]);
        js_logratios(lp[j], lq[j], &rp, &rq);
        if (dx[0] && p > 0)
            dx[0][j] += (float)(0.5 * dy * p * rp);
        if (dx[1] && q > 0)
            dx[1][j] += (float)(0.5 * dy * q * rq);
    }
}

static void js_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib__rowsum_forward(n, js_row);
}
static void js_bwd(ib_graph *g, ib_node *n) { ib__rowsum_backward(g, n, js_row_bwd); }
static const ib_op op_js_categorical = {.name = "js_categorical", .forward = js_fwd, .backward = js_bwd,
                                        .bwd_reads = IB__READS_ALL};

ib_node *ib_js_categorical(ib_graph *g, ib_node *logp, ib_node *logq)
{
    if (check_2d(g, "js_categorical", logp, logq))
        return NULL;
    return ib__rowsum_new(g, &op_js_categorical, 2, (ib_node *[]){logp, logq});
}

/* ------------------------------------------------------------------------
 * Cosine similarity S = An Bn^T with An_i = a_i / max(|a_i|, eps).
 * scratch: An (Na, D), Bn (Nb, D), then the unclamped norms |a_i|, |b_j|.
 * Backward: G = dS Bn (and dS^T An) through the normalisation:
 * |a_i| > eps: da_i += (G_i - <G_i, An_i> An_i) / |a_i|; else G_i / eps
 * (the clamped norm is a constant).  f[0] = eps.
 * ---------------------------------------------------------------------- */
static void normalize_rows(const float *x, int64_t rows, int64_t len, float eps, float *xn, float *norm)
{
#pragma omp parallel for schedule(static) if (rows * len > IB_PAR_MIN && rows > 1)
    for (int64_t i = 0; i < rows; i++) {
        const float *r = x + i * len;
        double ss = 0;
        for (int64_t j = 0; j < len; j++)
            ss += (double)r[j] * r[j];
        float nrm = (float)sqrt(ss), inv = 1.0f / fmaxf(nrm, eps);
        norm[i] = nrm;
        for (int64_t j = 0; j < len; j++)
            xn[i * len + j] = r[j] * inv;
    }
}

/* dx += d/dx of the normalisation, given G = dL/dXn (rows, len). */
static void normalize_rows_bwd(const float *xn, const float *norm, const float *gr, int64_t rows, int64_t len,
                               float eps, float *dx)
{
#pragma omp parallel for schedule(static) if (rows * len > IB_PAR_MIN && rows > 1)
    for (int64_t i = 0; i < rows; i++) {
        const float *u = xn + i * len, *gi = gr + i * len;
        float *d = dx + i * len;
        if (norm[i] > eps) {
            double dot = 0;
            for (int64_t j = 0; j < len; j++)
                dot += (double)gi[j] * u[j];
            float inv = 1.0f / norm[i], fd = (float)dot;
            for (int64_t j = 0; j < len; j++)
                d[j] += (gi[j] - fd * u[j]) * inv;
        } else {
            float inv = 1.0f / eps;
            for (int64_t j = 0; j < len; j++)
                d[j] += gi[j] * inv;
        }
    }
}

static void cos_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *a = n->in[0], *b = n->in[1];
    int64_t na = a->shape[0], nb = b->shape[0], len = a->shape[1];
    float eps = (float)n->f[0];
    float *an = n->scratch, *bn = an + na * len, *norm_a = bn + nb * len, *norm_b = norm_a + na;
    normalize_rows(a->value, na, len, eps, an, norm_a);
    normalize_rows(b->value, nb, len, eps, bn, norm_b);
    ib__sgemm(false, true, na, nb, len, 1.0f, an, len, bn, len, 0.0f, n->value, nb);
}

static void cos_bwd(ib_graph *g, ib_node *n)
{
    ib_node *a = n->in[0], *b = n->in[1];
    int64_t na = a->shape[0], nb = b->shape[0], len = a->shape[1];
    float eps = (float)n->f[0];
    float *an = n->scratch, *bn = an + na * len, *norm_a = bn + nb * len, *norm_b = norm_a + na;
    float *ga = g->tmp, *gb = ga + na * len;
    if (a->needs_grad) { /* G_a (Na, D) = dS (Na, Nb) Bn (Nb, D) */
        ib__sgemm(false, false, na, len, nb, 1.0f, n->grad, nb, bn, len, 0.0f, ga, len);
        normalize_rows_bwd(an, norm_a, ga, na, len, eps, a->grad);
    }
    if (b->needs_grad) { /* G_b (Nb, D) = dS^T An */
        ib__sgemm(true, false, nb, len, na, 1.0f, n->grad, nb, an, len, 0.0f, gb, len);
        normalize_rows_bwd(bn, norm_b, gb, nb, len, eps, b->grad);
    }
}

static const ib_op op_cosine = {.name = "cosine_similarity", .forward = cos_fwd, .backward = cos_bwd,
                                .bwd_reads = IB__READS_ALL};

ib_node *ib_cosine_similarity(ib_graph *g, ib_node *a, ib_node *b, float eps)
{
    ib_node *in[2] = {a, b};
    if (!ib__inputs_ok(g, 2, in))
        return NULL;
    if (a->dtype != IB_F32 || b->dtype != IB_F32)
        return ib__fail(g, IB_ERR_ARG, "cosine_similarity: '%s' and '%s' must be float tensors", a->name, b->name);
    if (!(eps > 0.0f))
        return ib__fail(g, IB_ERR_ARG, "cosine_similarity: eps must be positive (got %g)", (double)eps);
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1]) {
        char s1[64], s2[64];
        return ib__fail(g, IB_ERR_SHAPE, "cosine_similarity: expected (Na, D) and (Nb, D); got %s for '%s' and %s for '%s'",
                        ib__shape_str(a, s1, sizeof s1), a->name, ib__shape_str(b, s2, sizeof s2), b->name);
    }
    int64_t na = a->shape[0], nb = b->shape[0], len = a->shape[1];
    ib_node *n = ib__node_new(g, &op_cosine, 2, in, 2, (int64_t[]){na, nb});
    if (!n)
        return NULL;
    n->f[0] = eps;
    n->scratch_bytes = (size_t)((na + nb) * len + na + nb) * sizeof(float);
    n->tmp_bytes = (size_t)((na + nb) * len) * sizeof(float);
    return n;
}
