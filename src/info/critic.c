/*
 * critic.c — the neural lower bounds: InfoNCE (van den Oord et al.), NWJ
 * (Nguyen, Wainwright & Jordan) and MINE (Belghazi et al.: the
 * Donsker-Varadhan bound with a moving-average correction of its gradient).
 *
 * The critic is separable, f(a, b) = g(a) . h(b), with g and h small MLPs
 * built on ibnet's own engine in a parameter store of their own: one batch
 * of B pairs gives the whole B x B score matrix S (S_ii the joint pairs,
 * S_ij, i != j, pairs from the product of the marginals) for the price of
 * one matrix product, which a critic on concatenated pairs would need B^2
 * network evaluations for.  Each bound is a function of S; its gradient
 * with respect to S is computed here and fed to the engine as the weights
 * W of loss = sum(S * W), so backward carries exactly that gradient into
 * the MLPs.  That is how MINE's correction enters: the gradient of
 * log E_Q[e^f] is taken as E_Q[e^f grad f] divided by a moving average of
 * E_Q[e^f] instead of the batch's own mean, which removes the bias of the
 * small-batch estimate.
 *
 * The rows are split once (by the seed) into a training share and a
 * held-out share; the value is the bound on the held-out rows, all n_test^2
 * pairs at once (so InfoNCE's cap is ln n_test), which keeps a critic that
 * memorised its training pairs from inflating the estimate.
 */
#include "info_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ONE_HOT 4096

/* A variable as the critic's float input: standardised columns, or the
 * one-hot code of its distinct rows. */
typedef struct feat {
    float *x; /* (n, d) */
    int64_t d;
} feat;

static ib_status make_features(const ib_mi_var *v, const char *which, feat *out)
{
    int64_t n = v->n;
    if (v->f) {
        out->d = v->d;
        out->x = malloc((size_t)(n * v->d) * sizeof(float));
        if (!out->x)
            return ib__error(IB_ERR_NOMEM, "critic: out of memory");
        for (int64_t k = 0; k < v->d; k++) {
            double m = 0, s = 0;
            for (int64_t i = 0; i < n; i++)
                m += v->f[i * v->d + k];
            m /= (double)n;
            for (int64_t i = 0; i < n; i++) {
                double t = v->f[i * v->d + k] - m;
                s += t * t;
            }
            s = sqrt(s / (double)n);
            double inv = s > 0 ? 1.0 / s : 1.0; /* a constant column stays 0 */
            for (int64_t i = 0; i < n; i++)
                out->x[i * v->d + k] = (float)((v->f[i * v->d + k] - m) * inv);
        }
        return IB_OK;
    }
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids)
        return ib__error(IB_ERR_NOMEM, "critic: out of memory");
    int64_t k = ib__info_row_ids(v->i, n, v->d, ids);
    if (k < 0 || k > MAX_ONE_HOT) {
        free(ids);
        return k < 0 ? ib__error(IB_ERR_NOMEM, "critic: out of memory")
                     : ib__error(IB_ERR_ARG,
                                 "critic: variable %s has %lld distinct discrete values, more than the %d a one-hot "
                                 "code takes: give it as floats (continuous) instead",
                                 which, (long long)k, MAX_ONE_HOT);
    }
    out->d = k;
    out->x = calloc((size_t)(n * k), sizeof(float));
    if (!out->x) {
        free(ids);
        return ib__error(IB_ERR_NOMEM, "critic: out of memory");
    }
    for (int64_t i = 0; i < n; i++)
        out->x[i * k + ids[i]] = 1.0f;
    free(ids);
    return IB_OK;
}

/* The two MLPs on an input pair of `rows` rows; returns (g(a), h(b)). */
static void build_mlps(ib_graph *g, const ib_mi_options *o, int64_t rows, int64_t da, int64_t db, ib_node **in_a,
                       ib_node **in_b, ib_node **ga, ib_node **hb)
{
    *in_a = ib_input(g, "a", 2, (int64_t[]){rows, da});
    *in_b = ib_input(g, "b", 2, (int64_t[]){rows, db});
    *ga = ib_nn_linear(g, ib_relu(g, ib_nn_linear(g, *in_a, "g.0", o->hidden, true)), "g.2", o->embed, true);
    *hb = ib_nn_linear(g, ib_relu(g, ib_nn_linear(g, *in_b, "h.0", o->hidden, true)), "h.2", o->embed, true);
}

/* log of the sum of exp(S_ij) over every i != j of an m x m row-major S. */
static double lse_offdiag(const double *s, int64_t m)
{
    double mx = -INFINITY, acc = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            if (i != j && s[i * m + j] > mx)
                mx = s[i * m + j];
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            if (i != j)
                acc += exp(s[i * m + j] - mx);
    return mx + log(acc);
}

/* The bound of a training batch's scores S (m x m) for the method, and
 * W = -dI/dS (the loss gradient) into w; *log_ma is MINE's moving average
 * of E_Q[e^f] (NaN: none yet). */
static double batch_bound(ib_mi_method method, const double *s, int64_t m, float *w, double *log_ma, double ema_rate)
{
    double dm = (double)m, diag = 0;
    for (int64_t i = 0; i < m; i++)
        diag += s[i * m + i];
    diag /= dm;
    double pairs = dm * (dm - 1);
    if (method == IB_MI_INFONCE) {
        double tot = 0;
        for (int64_t i = 0; i < m; i++) {
            const double *r = s + i * m;
            double mx = -INFINITY, acc = 0;
            for (int64_t j = 0; j < m; j++)
                mx = fmax(mx, r[j]);
            for (int64_t j = 0; j < m; j++)
                acc += exp(r[j] - mx);
            double lse = mx + log(acc);
            tot += r[i] - lse;
            for (int64_t j = 0; j < m; j++)
                w[i * m + j] = (float)((exp(r[j] - lse) - (i == j)) / dm);
        }
        return tot / dm + log(dm);
    }
    double lq = lse_offdiag(s, m) - log(pairs); /* log E_Q[e^f] */
    if (method == IB_MI_NWJ) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++)
                w[i * m + j] = (float)(i == j ? -1.0 / dm : exp(s[i * m + j] - 1.0) / pairs);
        return diag - exp(lq - 1.0);
    }
    /* MINE (Donsker-Varadhan) */
    if (isnan(*log_ma)) {
        *log_ma = lq;
    } else { /* ma = (1 - r) ma + r E_Q[e^f], in the log domain */
        double p = log1p(-ema_rate) + *log_ma, q = log(ema_rate) + lq;
        double mx = fmax(p, q);
        *log_ma = mx + log(exp(p - mx) + exp(q - mx));
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++)
            w[i * m + j] = (float)(i == j ? -1.0 / dm : exp(s[i * m + j] - *log_ma) / pairs);
    return diag - lq;
}

/* The bound on the m held-out rows from their embeddings g (m, e) and
 * h (m, e), every pair, without storing the m x m scores: each row keeps
 * its own running log-sum-exp, and the rows are combined in order, so the
 * value does not depend on the thread count. */
static double heldout_value(ib_mi_method method, const float *g, const float *h, int64_t m, int64_t e)
{
    double *row_all = malloc((size_t)m * 3 * sizeof(double));
    if (!row_all)
        return NAN;
    double *row_off = row_all + m, *row_diag = row_all + 2 * m;
#pragma omp parallel for schedule(static) if (m * m * e > 1 << 18)
    for (int64_t i = 0; i < m; i++) {
        double mx_a = -INFINITY, acc_a = 0, mx_o = -INFINITY, acc_o = 0;
        for (int64_t j = 0; j < m; j++) {
            double x = 0;
            for (int64_t k = 0; k < e; k++)
                x += (double)g[i * e + k] * (double)h[j * e + k];
            if (j == i)
                row_diag[i] = x;
            /* online log-sum-exp: rescale when a new maximum arrives */
            if (x > mx_a) {
                acc_a = acc_a * exp(mx_a - x) + 1;
                mx_a = x;
            } else {
                acc_a += exp(x - mx_a);
            }
            if (j == i)
                continue;
            if (x > mx_o) {
                acc_o = acc_o * exp(mx_o - x) + 1;
                mx_o = x;
            } else {
                acc_o += exp(x - mx_o);
            }
        }
        row_all[i] = mx_a + log(acc_a);
        row_off[i] = mx_o + log(acc_o);
    }
    double dm = (double)m, diag = 0, nce = 0, off = -INFINITY;
    for (int64_t i = 0; i < m; i++) {
        diag += row_diag[i];
        nce += row_diag[i] - row_all[i];
        double mx = fmax(off, row_off[i]);
        off = mx + log(exp(off - mx) + exp(row_off[i] - mx));
    }
    free(row_all);
    diag /= dm;
    double lq = off - log(dm * (dm - 1)); /* log E_Q[e^f] over every pair i != j */
    if (method == IB_MI_INFONCE)
        return nce / dm + log(dm);
    if (method == IB_MI_NWJ)
        return diag - exp(lq - 1.0);
    return diag - lq;
}

/* One critic trained with seed `seed`; its held-out value in *value. */
static ib_status one_critic(const feat *fa, const feat *fb, const int64_t *perm, int64_t n_train, int64_t n_test,
                            const ib_mi_options *o, uint64_t seed, double *value)
{
    int64_t bsz = o->batch < n_train ? o->batch : n_train;
    ib_status st = IB_OK;
    ib_params *p = ib_params_new(seed);
    ib_graph *g = ib_graph_new(p), *ge = ib_graph_new(p);
    ib_optim *opt = NULL;
    double *s = malloc((size_t)(bsz * bsz) * sizeof *s);
    int64_t *order = malloc((size_t)n_train * sizeof *order);
    if (!p || !g || !ge || !s || !order) {
        st = ib__error(IB_ERR_NOMEM, "critic: out of memory");
        goto done;
    }
    ib_node *in_a, *in_b, *ga, *hb;
    build_mlps(g, o, bsz, fa->d, fb->d, &in_a, &in_b, &ga, &hb);
    ib_node *sc = ib_node_keep(ib_matmul(g, ga, hb, false, true));
    ib_node *wn = ib_input(g, "w", 2, (int64_t[]){bsz, bsz});
    ib_node *loss = ib_sum(g, ib_mul(g, sc, wn), IB_ALL);
    ib_node *ea, *eb, *ega, *ehb;
    ib_graph_set_forward_only(ge, true);
    build_mlps(ge, o, n_test, fa->d, fb->d, &ea, &eb, &ega, &ehb);
    ib_node_keep(ega);
    ib_node_keep(ehb);
    if ((st = ib_graph_status(g)) != IB_OK || (st = ib_graph_status(ge)) != IB_OK ||
        (st = ib_graph_compile(g)) != IB_OK || (st = ib_graph_compile(ge)) != IB_OK) {
        st = ib__error(st, "critic: building the networks failed: %s", ib_graph_error(g)[0] ? ib_graph_error(g)
                                                                                           : ib_graph_error(ge));
        goto done;
    }
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    oc.lr = (float)o->lr;
    opt = ib_optim_new(p, &oc);
    if (!opt) {
        st = ib__error(IB_ERR_NOMEM, "critic: out of memory");
        goto done;
    }
    float *xa = ib_node_data(in_a), *xb = ib_node_data(in_b), *w = ib_node_data(wn);
    double log_ma = NAN;
    int64_t per_epoch = n_train / bsz, pos = per_epoch;
    uint64_t stream = ib_rng_stream_of("info.critic.batches");
    for (int step = 0; step < o->steps; step++) {
        if (pos == per_epoch) { /* a new epoch: shuffle the training rows (Fisher-Yates) */
            for (int64_t i = 0; i < n_train; i++)
                order[i] = perm[i];
            for (int64_t i = n_train - 1; i > 0; i--) {
                int64_t j = (int64_t)(ib_rng_u64(seed, stream, (uint64_t)step, (uint64_t)i) % (uint64_t)(i + 1));
                int64_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            pos = 0;
        }
        for (int64_t r = 0; r < bsz; r++) {
            int64_t row = order[pos * bsz + r];
            memcpy(xa + r * fa->d, fa->x + row * fa->d, (size_t)fa->d * sizeof(float));
            memcpy(xb + r * fb->d, fb->x + row * fb->d, (size_t)fb->d * sizeof(float));
        }
        pos++;
        if ((st = ib_graph_forward(g)) != IB_OK)
            goto done;
        const float *sv = ib_node_data(sc);
        for (int64_t k = 0; k < bsz * bsz; k++)
            s[k] = sv[k];
        batch_bound(o->method, s, bsz, w, &log_ma, o->ema_rate);
        ib_params_zero_grad(p);
        if ((st = ib_graph_backward(g, loss)) != IB_OK)
            goto done;
        if ((st = ib_optim_step(opt)) != IB_OK) {
            st = ib__error(st, "critic (%s, seed %llu): training diverged at step %d: %s",
                           ib_mi_method_name(o->method), (unsigned long long)seed, step + 1, ib_last_error());
            goto done;
        }
    }
    /* the held-out rows, all pairs */
    float *ya = ib_node_data(ea), *yb = ib_node_data(eb);
    for (int64_t r = 0; r < n_test; r++) {
        int64_t row = perm[n_train + r];
        memcpy(ya + r * fa->d, fa->x + row * fa->d, (size_t)fa->d * sizeof(float));
        memcpy(yb + r * fb->d, fb->x + row * fb->d, (size_t)fb->d * sizeof(float));
    }
    if ((st = ib_graph_forward(ge)) != IB_OK)
        goto done;
    *value = heldout_value(o->method, ib_node_data(ega), ib_node_data(ehb), n_test, o->embed);
    if (!isfinite(*value))
        st = ib__error(IB_ERR_NUMERIC, "critic (%s, seed %llu): the held-out value is not finite (%g)",
                       ib_mi_method_name(o->method), (unsigned long long)seed, *value);
done:
    free(s);
    free(order);
    ib_optim_free(opt);
    ib_graph_free(g);
    ib_graph_free(ge);
    ib_params_free(p);
    return st;
}

ib_status ib__mi_critic(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *o, ib_mi_result *out)
{
    if (!b)
        return ib__error(IB_ERR_ARG, "%s: a critic needs both variables (I(X;T) from T alone is for binning and kde)",
                         ib_mi_method_name(o->method));
    int64_t n = a->n;
    int64_t n_test = (int64_t)llround((double)n * o->test_share);
    if (n_test < 2)
        n_test = 2;
    int64_t n_train = n - n_test;
    if (n_train < 2)
        return ib__error(IB_ERR_ARG,
                         "%s: %lld rows leave fewer than 2 to train the critic on after holding out %lld "
                         "(test share %g)",
                         ib_mi_method_name(o->method), (long long)n, (long long)n_test, o->test_share);
    feat fa = {0}, fb = {0};
    ib_status st = make_features(a, "A", &fa);
    if (st == IB_OK)
        st = make_features(b, "B", &fb);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    double *vals = malloc((size_t)o->seeds * sizeof *vals);
    if (st == IB_OK && (!perm || !vals))
        st = ib__error(IB_ERR_NOMEM, "critic: out of memory");
    if (st == IB_OK) {
        /* one split for every seed: the seeds differ in the critic, not the rows */
        uint64_t stream = ib_rng_stream_of("info.critic.split");
        for (int64_t i = 0; i < n; i++)
            perm[i] = i;
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(ib_rng_u64(o->seed, stream, 0, (uint64_t)i) % (uint64_t)(i + 1));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int k = 0; k < o->seeds && st == IB_OK; k++)
            st = one_critic(&fa, &fb, perm, n_train, n_test, o, o->seed + (uint64_t)k, &vals[k]);
    }
    if (st == IB_OK) {
        double m = 0, v = 0;
        for (int k = 0; k < o->seeds; k++)
            m += vals[k];
        m /= o->seeds;
        for (int k = 0; k < o->seeds; k++)
            v += (vals[k] - m) * (vals[k] - m);
        out->nats = m;
        out->spread_nats = o->seeds > 1 ? sqrt(v / (o->seeds - 1)) : 0.0;
        out->kind = IB_MI_LOWER;
        out->n = n_test;
        out->n_train = n_train;
        out->batch = o->batch < n_train ? o->batch : (int)n_train; /* the batch the critic trained with */
        out->cap_nats = o->method == IB_MI_INFONCE ? log((double)n_test) : 0.0;
    }
    free(fa.x);
    free(fb.x);
    free(perm);
    free(vals);
    return st;
}
