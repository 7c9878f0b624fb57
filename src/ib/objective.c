/*
 * objective.c — the information-bottleneck losses as a few nodes on top of
 * a model: cross-entropy, the weighted KL of every Gaussian bottleneck
 * (Deep VIB, cellVIB), and VUB's capped entropy bonus.  Everything else a
 * paper needs (IMB's per-layer relevance, VSD's distillation) is built the
 * same way in its own file.
 */
#include "../core/internal.h"

#include <math.h>

ib_objective ib_objective_default(void)
{
    ib_objective o;
    memset(&o, 0, sizeof o);
    /* Growing with depth: never worse than equal in the cellVIB experiment
     * on MNIST, and the difference between 89 % and chance at beta = 1e-3
     * (docs/results.md).  With one bottleneck every schedule gives beta. */
    o.schedule = IB_BETA_LINEAR;
    o.ratio = 0.5f;
    return o;
}

float ib_objective_beta(const ib_objective *o, int l, int n)
{
    if (o->n_betas > 0)
        return l < o->n_betas ? o->betas[l] : o->betas[o->n_betas - 1];
    switch (o->schedule) {
    case IB_BETA_LINEAR: return o->beta * (float)(l + 1) / (float)n;
    case IB_BETA_GEOMETRIC: {
        float r = o->ratio > 0 ? o->ratio : 0.5f;
        return o->beta * powf(r, (float)(n - 1 - l));
    }
    case IB_BETA_EQUAL: break;
    }
    return o->beta;
}

ib_status ib_objective_build(ib_graph *g, ib_node *logits, ib_node *labels, int n_bn, const ib_bottleneck *bn,
                             const ib_objective *o, ib_loss *out)
{
    memset(out, 0, sizeof *out);
    if (!g || !o)
        return ib__error(IB_ERR_ARG, "ib_objective_build: NULL argument");
    if (n_bn < 0 || n_bn > IB_MAX_BOTTLENECKS) {
        ib__fail(g, IB_ERR_ARG, "objective: %d bottlenecks (at most %d)", n_bn, IB_MAX_BOTTLENECKS);
        return g->status;
    }
    if (o->n_betas > 0 && o->n_betas != n_bn) {
        ib__fail(g, IB_ERR_ARG, "objective: %d betas given for a model with %d bottlenecks", o->n_betas, n_bn);
        return g->status;
    }
    out->ce = ib_node_set_name(ib_cross_entropy(g, logits, labels, o->label_smoothing), "loss.ce");
    ib_node *total = out->ce;
    for (int l = 0; l < n_bn; l++) {
        float b = ib_objective_beta(o, l, n_bn);
        if (!(b >= 0.0f) || !isfinite(b)) {
            ib__fail(g, IB_ERR_ARG, "objective: beta of bottleneck %d is %g (must be a finite number >= 0)", l + 1,
                     (double)b);
            return g->status;
        }
        ib_node *kl = ib_mean(g, bn[l].kl, IB_ALL);
        if (o->kl_mean_per_element && bn[l].mu)
            kl = ib_scale(g, kl, 1.0f / (float)(ib_node_numel(bn[l].mu) / ib_node_dim(bn[l].mu, 0)));
        char name[64];
        snprintf(name, sizeof name, "loss.kl%d", l + 1);
        out->kl[l] = ib_node_set_name(kl, name);
        out->beta[l] = b;
        if (b > 0.0f)
            total = ib_add(g, total, ib_scale(g, kl, b));
    }
    out->n_kl = n_bn;
    if (o->entropy_weight != 0.0f) {
        ib_node *h = ib_mean(g, ib_softmax_entropy(g, logits), IB_ALL);
        out->entropy = ib_node_set_name(h, "loss.entropy");
        /* min(H, cap) = cap - relu(cap - H): the bonus stops pushing above the cap. */
        ib_node *bonus = o->entropy_cap > 0.0f ? ib_affine(g, ib_relu(g, ib_affine(g, h, -1.0f, o->entropy_cap)), -1.0f,
                                                           o->entropy_cap)
                                               : h;
        total = ib_sub(g, total, ib_scale(g, bonus, o->entropy_weight));
    }
    out->total = ib_node_set_name(total, "loss");
    return g->status;
}
