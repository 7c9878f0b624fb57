/*
 * imb.c — IMB / PIB (Nguyen-Tang & Choi, "Parametric Information
 * Bottleneck"; docs/papers.md sections 4 and 8.1) as a method: every
 * stochastic layer h_1 .. h_L of a network with particles is a bottleneck,
 *   loss = sum_{l=0..L} gamma_l E[-log p(y|h_l)] + sum_{l=1..L} beta_l E[KL_l],
 * where p(y|h_l) is the rest of the network applied to a sample of h_l,
 * estimated by the mean probability over the downstream paths:
 *   log p(y|h_l) = logmeanexp over M_{l+1}..M_L paths of log softmax(path)_y,
 * averaged over the upstream particles M_1..M_l (l = 0: x itself).
 *
 * The model's path logits hold one row per path with each example's paths
 * in a row and the last layer's particle varying fastest (ib_repeat), so
 * the paths below layer l are consecutive: the term of layer l is a
 * reshape to (N M_1..M_l, M_{l+1}..M_L) and a log-mean-exp along the
 * rows.  gamma = (1, 0, .., 0), beta = 0 (the defaults) is the maximum
 * likelihood of the stochastic network: -log of the mean probability of
 * the label over all paths.  Terms: "rel0".."relL" (weight gamma_l),
 * "kl1".."klL" (weight beta_l: --betas, or --beta spread over the layers
 * by the depth schedule of beta.c); a zero weight logs a term without
 * optimising it, so every layer's relevance and compression is in
 * metrics.jsonl (an information plane of the run).
 */
#include "ib_internal.h"

#include <math.h>

static ib_status imb_check(const ib_objective *o)
{
    for (int l = 0; l < o->n_gammas; l++)
        if (!(o->gammas[l] >= 0.0f) || !isfinite(o->gammas[l]))
            return ib__error(IB_ERR_ARG, "--gammas: gamma of layer %d is %g (must be a finite number >= 0)", l,
                             (double)o->gammas[l]);
    for (int l = 0; l < o->n_betas; l++)
        if (!(o->betas[l] >= 0.0f) || !isfinite(o->betas[l]))
            return ib__error(IB_ERR_ARG, "--betas: beta of layer %d is %g (must be a finite number >= 0)", l + 1,
                             (double)o->betas[l]);
    if (!(o->beta >= 0.0f) || !isfinite(o->beta))
        return ib__error(IB_ERR_ARG, "--beta: %g (must be a finite number >= 0)", (double)o->beta);
    return IB_OK;
}

ib_status ib__imb_terms(ib_graph *g, const ib_model_out *mo, ib_node *labels, const ib_objective *o, ib_loss *loss)
{
    int L = mo->n_stochastic;
    if (o->n_gammas > 0 && o->n_gammas != L + 1) {
        ib__fail(g, IB_ERR_ARG, "--gammas: %d values given; the model has %d stochastic layers, so it takes %d (l = 0..%d)",
                 o->n_gammas, L, L + 1, L);
        return g->status;
    }
    if (o->n_betas > 0 && o->n_betas != L) {
        ib__fail(g, IB_ERR_ARG, "--betas: %d values given for a model with %d stochastic layers", o->n_betas, L);
        return g->status;
    }
    if (imb_check(o) != IB_OK) {
        ib__fail(g, IB_ERR_ARG, "%s", ib_last_error());
        return g->status;
    }
    int64_t P = mo->paths > 0 ? mo->paths : 1;
    ib_node *x = mo->path_logits;
    if (!x || x->ndim != 2) {
        ib__fail(g, IB_ERR_ARG, "imb: the model's output is not (rows, classes) logits");
        return g->status;
    }
    int64_t n = x->shape[0] / P;
    /* log p(y | path) for every path: (N P) */
    ib_node *lpy = ib_gather(g, ib_log_softmax(g, x), P > 1 ? ib_repeat(g, labels, P) : labels);
    int64_t up = 1;
    for (int l = 0; l <= L; l++) {
        if (l > 0)
            up *= mo->st[l - 1].particles;
        int64_t down = P / up;
        ib_node *rel = lpy;
        if (down > 1) /* the mean probability over the paths below layer l */
            rel = ib_logmeanexp(g, ib_reshape(g, lpy, 2, (int64_t[]){n * up, down}), 1);
        rel = ib_scale(g, ib_mean(g, rel, IB_ALL), -1.0f);
        float gamma = o->n_gammas > 0 ? o->gammas[l] : l == 0 ? 1.0f : 0.0f;
        char name[16];
        snprintf(name, sizeof name, "rel%d", l);
        ib_loss_add_term(g, loss, name, rel, gamma);
        if (l == 0)
            loss->ce = rel; /* train_ce: the network's NLL, -log p(y|x) */
    }
    for (int l = 0; l < L; l++) {
        /* --betas, else --beta by the depth schedule (beta.c), as for the
         * Gaussian bottlenecks of the other objectives; 0 by default */
        float beta = ib_objective_beta(o, l, L);
        ib_node *kl = ib_mean(g, mo->st[l].kl, IB_ALL);
        char name[16];
        snprintf(name, sizeof name, "kl%d", l + 1);
        loss->kl[l] = kl;
        loss->beta[l] = beta;
        ib_loss_add_term(g, loss, name, kl, beta);
    }
    loss->n_kl = L;
    return g->status;
}

static ib_status imb_build(const ib_method_inputs *in, ib_loss *loss)
{
    ib_status s = ib__imb_terms(in->g, &in->out[0], in->y, in->objective, loss);
    if (s == IB_OK && loss->total)
        loss->total = ib_node_set_name(loss->total, "loss");
    return s;
}

const ib_method ib__method_imb = {
    .name = "imb",
    .summary = "IMB / PIB: sum_l gamma_l E[-log p(y|h_l)] over particle paths + sum_l beta_l KL_l "
               "over every stochastic layer",
    .needs = IB_METHOD_NEEDS_LABELS,
    .views = 1,
    .check = imb_check,
    .build = imb_build,
};
