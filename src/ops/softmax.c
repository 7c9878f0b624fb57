/*
 * softmax.c — the softmax family along the last axis of an (N, C) tensor:
 * log_softmax, softmax, cross-entropy (with label smoothing), the entropy
 * of a softmax, gather, one_hot and argmax.
 *
 * Stability: every row is shifted by its maximum before exp, and
 * log-probabilities are x - logsumexp(x), never log(softmax), so logits of
 * +-50 (or +-1e4) give finite, exact results.  Row sums accumulate in
 * double in index order; rows are independent, and the batch mean of the
 * cross-entropy is summed serially, so results do not depend on the thread
 * count.  Rows are split across threads when the tensor is big.
 *
 * Labels are int32 (ib_input_labels).  The caller validates them; a label
 * outside [0, C) cannot stop a forward pass (it returns void), so it is
 * made harmless: its row contributes 0 loss and 0 gradient (cross-entropy,
 * gather), an all-zero row (one_hot).
 */
#include "../core/internal.h"

#include <math.h>

#define ROWS_PARALLEL(n) ((n)->numel > IB_PAR_MIN / 4)

/* log sum_c exp(x_c), shifted by the row maximum. */
static double row_lse(const float *x, int64_t C)
{
    float m = -INFINITY;
    for (int64_t c = 0; c < C; c++)
        m = x[c] > m ? x[c] : m; /* a compare, not a libm call; a NaN shows up in the sum */
    if (isinf(m))
        return m; /* all -inf (or a +inf): the shift would give NaN */
    double s = 0;
    for (int64_t c = 0; c < C; c++)
        s += expf(x[c] - m);
    return (double)m + log(s);
}

static bool check_rows(ib_graph *g, const char *op, const ib_node *x)
{
    char xs[96];
    if (x->dtype != IB_F32) {
        ib__fail(g, IB_ERR_ARG, "%s: '%s' %s is not a float tensor", op, x->name, ib__shape_str(x, xs, sizeof xs));
        return false;
    }
    if (x->ndim != 2) {
        ib__fail(g, IB_ERR_SHAPE, "%s: '%s' is %s; it must be 2-D (N, C)", op, x->name,
                 ib__shape_str(x, xs, sizeof xs));
        return false;
    }
    return true;
}

/* labels: int32, 1-D, n entries (n < 0: any count). */
static bool check_labels(ib_graph *g, const char *op, const ib_node *labels, int64_t n, const ib_node *x)
{
    char ls[96], xs[96];
    if (labels->dtype != IB_I32 || labels->ndim != 1) {
        ib__fail(g, IB_ERR_ARG, "%s: labels '%s' %s must be a 1-D int32 tensor (ib_input_labels)", op, labels->name,
                 ib__shape_str(labels, ls, sizeof ls));
        return false;
    }
    if (n >= 0 && labels->shape[0] != n) {
        ib__fail(g, IB_ERR_SHAPE, "%s: labels '%s' %s do not match the %lld rows of '%s' %s", op, labels->name,
                 ib__shape_str(labels, ls, sizeof ls), (long long)n, x->name, ib__shape_str(x, xs, sizeof xs));
        return false;
    }
    return true;
}

static inline bool label_ok(int32_t l, int64_t C) { return l >= 0 && (int64_t)l < C; }

/* ---- log_softmax: y = x - lse(x); dx = dy - softmax * sum(dy) ---- */
static void log_softmax_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t N = n->shape[0], C = n->shape[1];
    const float *x = n->in[0]->value;
    float *y = n->value;
#pragma omp parallel for schedule(static) if (ROWS_PARALLEL(n))
    for (int64_t i = 0; i < N; i++) {
        double lse = row_lse(x + i * C, C);
        for (int64_t c = 0; c < C; c++)
            y[i * C + c] = (float)((double)x[i * C + c] - lse);
    }
}
static void log_softmax_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t N = n->shape[0], C = n->shape[1];
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
#pragma omp parallel for schedule(static) if (ROWS_PARALLEL(n))
    for (int64_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t c = 0; c < C; c++)
            s += dy[i * C + c];
        for (int64_t c = 0; c < C; c++)
            dx[i * C + c] += dy[i * C + c] - expf(y[i * C + c]) * (float)s;
    }
}
static const ib_op op_log_softmax = {.name = "log_softmax", .forward = log_softmax_fwd, .backward = log_softmax_bwd,
                                     .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT};

ib_node *ib_log_softmax(ib_graph *g, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x) || !check_rows(g, "log_softmax", x))
        return NULL;
    return ib__node_new(g, &op_log_softmax, 1, &x, 2, x->shape);
}

/* ---- softmax: y = exp(x - lse); dx = y (dy - sum(dy y)) ---- */
static void softmax_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t N = n->shape[0], C = n->shape[1];
    const float *x = n->in[0]->value;
    float *y = n->value;
#pragma omp parallel for schedule(static) if (ROWS_PARALLEL(n))
    for (int64_t i = 0; i < N; i++) {
        double lse = row_lse(x + i * C, C);
        for (int64_t c = 0; c < C; c++)
            y[i * C + c] = expf((float)((double)x[i * C + c] - lse));
    }
}
static void softmax_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t N = n->shape[0], C = n->shape[1];
    const float *y = n->value, *dy = n->grad;
    float *dx = n->in[0]->grad;
#pragma omp parallel for schedule(static) if (ROWS_PARALLEL(n))
    for (int64_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t c = 0; c < C; c++)
            s += (double)dy[i * C + c] * y[i * C + c];
        for (int64_t c = 0; c < C; c++)
            dx[i * C + c] += y[i * C + c] * (dy[i * C + c] - (float)s);
    }
}
static const ib_op op_softmax = {.name = "softmax", .forward = softmax_fwd, .backward = softmax_bwd,
                                 .bwd_reads = IB__BWD_DECLARED | IB__READS_OUT};

ib_node *ib_softmax(ib_graph *g, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x) || !check_rows(g, "softmax", x))
        return NULL;
    return ib__node_new(g, &op_softmax, 1, &x, 2, x->shape);
}

/* ---- cross-entropy with label smoothing s (f[0]).
 * target t = (1-s) onehot(l) + s/C, so (as sum t = 1)
 *   loss_i = -sum_c t_c (x_c - lse) = lse - (1-s) x_l - (s/C) sum_c x_c,
 *   dloss_i/dx_c = softmax_c - t_c.
 * scratch: per-row losses (N doubles), then the softmax (N*C floats), kept
 * so backward needs no second exp per element. ---- */
static void xent_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *xn = n->in[0];
    int64_t N = xn->shape[0], C = xn->shape[1];
    const float *x = xn->value;
    const int32_t *lab = (const int32_t *)(const void *)n->in[1]->value;
    double s = n->f[0], *row = n->scratch;
    float *prob = (float *)(row + N);
#pragma omp parallel for schedule(static) if (xn->numel > IB_PAR_MIN / 4)
    for (int64_t i = 0; i < N; i++) {
        const float *xi = x + i * C;
        float *pi = prob + i * C;
        float m = -INFINITY;
        for (int64_t c = 0; c < C; c++)
            m = xi[c] > m ? xi[c] : m;
        double se = 0, sx = 0;
        for (int64_t c = 0; c < C; c++) {
            pi[c] = expf(xi[c] - m);
            se += pi[c];
            sx += xi[c];
        }
        float inv = (float)(1.0 / se);
        for (int64_t c = 0; c < C; c++)
            pi[c] *= inv;
        double lse = (double)m + log(se);
        row[i] = label_ok(lab[i], C) ? lse - (1.0 - s) * xi[lab[i]] - s / (double)C * sx : 0.0;
    }
    double total = 0;
    for (int64_t i = 0; i < N; i++)
        total += row[i];
    n->value[0] = (float)(total / (double)N);
}
static void xent_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *xn = n->in[0];
    if (!xn->needs_grad)
        return;
    int64_t N = xn->shape[0], C = xn->shape[1];
    const int32_t *lab = (const int32_t *)(const void *)n->in[1]->value;
    const float *prob = (const float *)((const double *)n->scratch + N);
    float *dx = xn->grad;
    float s = (float)n->f[0], scale = n->grad[0] / (float)N, off = s / (float)C;
#pragma omp parallel for schedule(static) if (xn->numel > IB_PAR_MIN / 4)
    for (int64_t i = 0; i < N; i++) {
        if (!label_ok(lab[i], C))
            continue;
        const float *pi = prob + i * C;
        float *di = dx + i * C;
        for (int64_t c = 0; c < C; c++)
            di[c] += scale * (pi[c] - off);
        di[lab[i]] -= scale * (1.0f - s);
    }
}
static const ib_op op_xent = {.name = "cross_entropy", .forward = xent_fwd, .backward = xent_bwd,
                              .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(1)};

ib_node *ib_cross_entropy(ib_graph *g, ib_node *logits, ib_node *labels, float smoothing)
{
    ib_node *in[2] = {logits, labels};
    if (!ib__inputs_ok(g, 2, in) || !check_rows(g, "cross_entropy", logits) ||
        !check_labels(g, "cross_entropy", labels, logits->shape[0], logits))
        return NULL;
    if (!(smoothing >= 0.0f && smoothing <= 1.0f))
        return ib__fail(g, IB_ERR_ARG, "cross_entropy of '%s': label smoothing %g is outside [0, 1]", logits->name,
                        (double)smoothing);
    ib_node *n = ib__node_new(g, &op_xent, 2, in, 0, NULL);
    if (n) {
        n->f[0] = smoothing;
        n->scratch_bytes = (size_t)logits->shape[0] * (sizeof(double) + (size_t)logits->shape[1] * sizeof(float));
    }
    return n;
}

/* ---- entropy of softmax: H = -sum p log p with log p = x - lse;
 * dH/dx_j = -p_j (log p_j + H).  scratch: lse (N doubles). ---- */
static void entropy_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *xn = n->in[0];
    int64_t N = xn->shape[0], C = xn->shape[1];
    const float *x = xn->value;
    double *lse = n->scratch;
#pragma omp parallel for schedule(static) if (xn->numel > IB_PAR_MIN / 4)
    for (int64_t i = 0; i < N; i++) {
        lse[i] = row_lse(x + i * C, C);
        double h = 0;
        for (int64_t c = 0; c < C; c++) {
            double lp = (double)x[i * C + c] - lse[i];
            double p = exp(lp);
            if (p > 0) /* p log p -> 0 as p -> 0, also where lp = -inf */
                h -= p * lp;
        }
        n->value[i] = (float)h;
    }
}
static void entropy_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *xn = n->in[0];
    int64_t N = xn->shape[0], C = xn->shape[1];
    const float *x = xn->value, *dy = n->grad;
    const double *lse = n->scratch;
    float *dx = xn->grad;
#pragma omp parallel for schedule(static) if (xn->numel > IB_PAR_MIN / 4)
    for (int64_t i = 0; i < N; i++) {
        /* Recompute H in double: the float output would cost digits in log p + H. */
        double h = 0;
        for (int64_t c = 0; c < C; c++) {
            double lp = (double)x[i * C + c] - lse[i], p = exp(lp);
            if (p > 0)
                h -= p * lp;
        }
        for (int64_t c = 0; c < C; c++) {
            double lp = (double)x[i * C + c] - lse[i], p = exp(lp);
            if (p > 0)
                dx[i * C + c] += (float)(-(double)dy[i] * p * (lp + h));
        }
    }
}
static const ib_op op_entropy = {.name = "softmax_entropy", .forward = entropy_fwd, .backward = entropy_bwd,
                                 .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(0)};

ib_node *ib_softmax_entropy(ib_graph *g, ib_node *logits)
{
    if (!ib__inputs_ok(g, 1, &logits) || !check_rows(g, "softmax_entropy", logits))
        return NULL;
    ib_node *n = ib__node_new(g, &op_entropy, 1, &logits, 1, logits->shape);
    if (n)
        n->scratch_bytes = (size_t)logits->shape[0] * sizeof(double);
    return n;
}

/* ---- gather: y_i = x[i, l_i] (0 for an out-of-range label) ---- */
static void gather_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *xn = n->in[0];
    int64_t N = xn->shape[0], C = xn->shape[1];
    const int32_t *lab = (const int32_t *)(const void *)n->in[1]->value;
    for (int64_t i = 0; i < N; i++)
        n->value[i] = label_ok(lab[i], C) ? xn->value[i * C + lab[i]] : 0.0f;
}
static void gather_bwd(ib_graph *g, ib_node *n)
{
    (void)g;
    ib_node *xn = n->in[0];
    if (!xn->needs_grad)
        return;
    int64_t N = xn->shape[0], C = xn->shape[1];
    const int32_t *lab = (const int32_t *)(const void *)n->in[1]->value;
    for (int64_t i = 0; i < N; i++)
        if (label_ok(lab[i], C))
            xn->grad[i * C + lab[i]] += n->grad[i];
}
static const ib_op op_gather = {.name = "gather", .forward = gather_fwd, .backward = gather_bwd,
                                .bwd_reads = IB__BWD_DECLARED | IB__READS_IN(1)};

ib_node *ib_gather(ib_graph *g, ib_node *x, ib_node *labels)
{
    ib_node *in[2] = {x, labels};
    if (!ib__inputs_ok(g, 2, in) || !check_rows(g, "gather", x) ||
        !check_labels(g, "gather", labels, x->shape[0], x))
        return NULL;
    return ib__node_new(g, &op_gather, 2, in, 1, x->shape);
}

/* ---- one_hot: (N) int32 -> (N, C) float, no gradient ---- */
static void one_hot_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    int64_t N = n->shape[0], C = n->shape[1];
    const int32_t *lab = (const int32_t *)(const void *)n->in[0]->value;
    memset(n->value, 0, (size_t)n->numel * sizeof(float));
    for (int64_t i = 0; i < N; i++)
        if (label_ok(lab[i], C))
            n->value[i * C + lab[i]] = 1.0f;
}
static const ib_op op_one_hot = {.name = "one_hot", .forward = one_hot_fwd, .bwd_reads = IB__READS_NOTHING};

ib_node *ib_one_hot(ib_graph *g, ib_node *labels, int64_t classes)
{
    if (!ib__inputs_ok(g, 1, &labels) || !check_labels(g, "one_hot", labels, -1, NULL))
        return NULL;
    if (classes < 1)
        return ib__fail(g, IB_ERR_ARG, "one_hot of '%s': %lld classes (must be at least 1)", labels->name,
                        (long long)classes);
    int64_t shape[2] = {labels->shape[0], classes};
    ib_node *n = ib__node_new(g, &op_one_hot, 1, &labels, 2, shape);
    if (n)
        n->no_grad_op = true;
    return n;
}

/* ---- argmax: first index of the row maximum (a NaN counts as the
 * maximum, as in PyTorch), int32, no gradient ---- */
static void argmax_fwd(ib_graph *g, ib_node *n)
{
    (void)g;
    const ib_node *xn = n->in[0];
    int64_t N = xn->shape[0], C = xn->shape[1];
    int32_t *out = (int32_t *)(void *)n->value;
#pragma omp parallel for schedule(static) if (xn->numel > IB_PAR_MIN)
    for (int64_t i = 0; i < N; i++) {
        const float *xi = xn->value + i * C;
        int64_t best = 0;
        for (int64_t c = 1; c < C && !isnan(xi[best]); c++)
            if (xi[c] > xi[best] || isnan(xi[c]))
                best = c;
        out[i] = (int32_t)best;
    }
}
static const ib_op op_argmax = {.name = "argmax", .forward = argmax_fwd, .bwd_reads = IB__READS_NOTHING};

ib_node *ib_argmax(ib_graph *g, ib_node *x)
{
    if (!ib__inputs_ok(g, 1, &x) || !check_rows(g, "argmax", x))
        return NULL;
    if (x->shape[1] > INT32_MAX)
        return ib__fail(g, IB_ERR_SHAPE, "argmax: '%s' has %lld columns, more than an int32 index holds", x->name,
                        (long long)x->shape[1]);
    ib_node *n = ib__node_new(g, &op_argmax, 1, &x, 1, x->shape);
    if (n) {
        n->dtype = IB_I32; /* before compile: no gradient buffer is allocated */
        n->no_grad_op = true;
    }
    return n;
}
