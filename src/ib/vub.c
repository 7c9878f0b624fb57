/*
 * vub.c — VUB, the variational upper bound (Weingarten et al.), as a
 * method: Deep VIB's loss minus a bonus on the entropy of the classifier's
 * softmax that stops at a cap,
 *   loss = CE + sum_l beta_l KL_l - lambda * min(H, H_max),
 * H the batch-mean softmax entropy; H_max <= 0 gives SVIB's -lambda * H.
 * The cap is written cap - relu(cap - H), so above the cap the bonus has
 * exactly zero gradient.
 */
#include "ib_internal.h"

#include <math.h>

ib_status ib__entropy_bonus_terms(ib_graph *g, ib_node *logits, const ib_objective *o, ib_loss *loss)
{
    ib_node *h = ib_mean(g, ib_softmax_entropy(g, logits), IB_ALL);
    loss->entropy = h;
    /* Without the bonus the entropy is still logged (weight 0): it is the
     * figure VUB is compared on, and Deep VIB's runs need it too. */
    if (o->entropy_weight == 0.0f)
        return ib_loss_add_term(g, loss, "entropy", h, 0.0f);
    if (!(o->entropy_cap > 0.0f)) /* SVIB: the uncapped entropy is the bonus */
        return ib_loss_add_term(g, loss, "entropy", h, -o->entropy_weight);
    ib_loss_add_term(g, loss, "entropy", h, 0.0f);
    /* min(H, cap) = cap - relu(cap - H): the bonus stops pushing above the cap. */
    ib_node *capped = ib_affine(g, ib_relu(g, ib_affine(g, h, -1.0f, o->entropy_cap)), -1.0f, o->entropy_cap);
    return ib_loss_add_term(g, loss, "entropy_capped", capped, -o->entropy_weight);
}

static ib_status vub_check(const ib_objective *o)
{
    if (!(o->entropy_weight > 0.0f) || !isfinite(o->entropy_weight))
        return ib__error(IB_ERR_ARG, "the vub objective needs an entropy weight lambda > 0 (the paper: 1; got %g)",
                         (double)o->entropy_weight);
    if (!isfinite(o->entropy_cap))
        return ib__error(IB_ERR_ARG, "the entropy cap must be a finite number (<= 0: no cap)");
    return IB_OK;
}

static ib_status vub_build(const ib_method_inputs *in, ib_loss *loss)
{
    /* Deep VIB's terms with the model's betas, then the bonus: the same
     * loss ib_objective_build makes with the entropy weight set. */
    const ib_model_out *mo = &in->out[0];
    ib_objective o = ib__objective_with_model_betas(in->objective, mo);
    return ib_objective_build(in->g, mo->logits, in->y, mo->n_bottlenecks, mo->bn, &o, loss);
}

const ib_method ib__method_vub = {
    .name = "vub",
    .summary = "VUB: Deep VIB's loss - lambda min(H, H_max), the capped softmax-entropy bonus (cap <= 0: SVIB)",
    .needs = IB_METHOD_NEEDS_LABELS,
    .views = 1,
    .check = vub_check,
    .build = vub_build,
};
