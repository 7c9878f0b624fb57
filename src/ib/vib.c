/*
 * vib.c — Deep VIB (Alemi et al. 2017) and cellVIB as a method: the
 * cross-entropy of the run's model plus beta_l times the batch-mean KL of
 * each of its Gaussian bottlenecks,
 *   loss = CE(logits, y) + sum_l beta_l * mean_batch KL_l,
 * with the betas of beta.c (schedule, explicit list, or the model's own).
 * This is the worked example of docs/methods.md.
 */
#include "ib_internal.h"

#include <math.h>

ib_status ib__vib_terms(ib_graph *g, ib_node *logits, ib_node *labels, int n_bn, const ib_bottleneck *bn,
                        const ib_objective *o, ib_loss *out)
{
    if (n_bn < 0 || n_bn > IB_MAX_BOTTLENECKS) {
        ib__fail(g, IB_ERR_ARG, "objective: %d bottlenecks (at most %d)", n_bn, IB_MAX_BOTTLENECKS);
        return g->status;
    }
    if (o->n_betas > 0 && o->n_betas != n_bn) {
        ib__fail(g, IB_ERR_ARG, "objective: %d betas given for a model with %d bottlenecks", o->n_betas, n_bn);
        return g->status;
    }
    out->ce = ib_cross_entropy(g, logits, labels, o->label_smoothing);
    ib_loss_add_term(g, out, "ce", out->ce, 1.0f);
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
        char name[16];
        snprintf(name, sizeof name, "kl%d", l + 1);
        out->kl[l] = kl;
        out->beta[l] = b;
        /* beta 0: the KL is logged, not optimised */
        ib_loss_add_term(g, out, name, kl, b);
    }
    out->n_kl = n_bn;
    return g->status;
}

ib_status ib_objective_build(ib_graph *g, ib_node *logits, ib_node *labels, int n_bn, const ib_bottleneck *bn,
                             const ib_objective *o, ib_loss *out)
{
    memset(out, 0, sizeof *out);
    if (!g || !o)
        return ib__error(IB_ERR_ARG, "ib_objective_build: NULL argument");
    if (ib__vib_terms(g, logits, labels, n_bn, bn, o, out) == IB_OK)
        ib__entropy_bonus_terms(g, logits, o, out);
    if (g->status == IB_OK)
        out->total = ib_node_set_name(out->total, "loss");
    return g->status;
}

static ib_status vib_build(const ib_method_inputs *in, ib_loss *loss)
{
    const ib_model_out *mo = &in->out[0];
    ib_objective o = ib__objective_with_model_betas(in->objective, mo);
    /* An entropy weight set with this method builds VUB's bonus as well, as
     * configurations written before methods had names meant. */
    return ib_objective_build(in->g, mo->logits, in->y, mo->n_bottlenecks, mo->bn, &o, loss);
}

const ib_method ib__method_vib = {
    .name = "vib",
    .summary = "Deep VIB / cellVIB: CE + sum_l beta_l KL_l over the model's Gaussian bottlenecks",
    .needs = IB_METHOD_NEEDS_LABELS,
    .views = 1,
    .build = vib_build,
};
