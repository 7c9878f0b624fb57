/*
 * vsd.c — Variational Self-Distillation (Tian et al., CVPR 2021; papers.md
 * sections 5 and 8.2) as a method.  The model ends in a `vsdhead`: a
 * teacher classifier on the backbone's features v gives p(y|v), a
 * Gaussian encoder gives z and a student classifier p(y|z).  The loss is
 *   CE(p(y|z)) + CE(p(y|v)) + w KL(p(y|v) || p(y|z)) + beta KL(q(z|v) || N(0, I))
 * with the teacher detached in the distillation term, so v is trained by
 * its own cross-entropy only and z is pulled towards what v predicts
 * (I(z; y) = I(v; y) when the KL is 0).  The KL is formed from
 * log-probabilities: the reference code passes probabilities where
 * log-probabilities are expected, which this form cannot repeat.
 */
#include "ib_internal.h"

#include <math.h>

ib_node *ib_distill_kl(ib_graph *g, ib_node *teacher_logits, ib_node *student_logits)
{
    if (!g)
        return NULL;
    if (!teacher_logits || !student_logits || teacher_logits->ndim != 2 || student_logits->ndim != 2 ||
        teacher_logits->shape[0] != student_logits->shape[0] || teacher_logits->shape[1] != student_logits->shape[1])
        return ib__fail(g, IB_ERR_SHAPE, "ib_distill_kl: teacher and student logits must both be (N, C)");
    ib_node *lt = ib_log_softmax(g, ib_stop_gradient(g, teacher_logits));
    ib_node *ls = ib_log_softmax(g, student_logits);
    return ib_mean(g, ib_kl_categorical(g, lt, ls), IB_ALL);
}

ib_status ib__vsd_check_weight(const char *what, float w)
{
    if (!(w >= 0.0f) || !isfinite(w))
        return ib__error(IB_ERR_ARG, "%s must be a finite number >= 0 (got %g)", what, (double)w);
    return IB_OK;
}

ib_status ib__vsd_view_terms(ib_graph *g, const ib_model_out *mo, ib_node *labels, const ib_objective *o,
                             const char *suffix, ib_loss *loss)
{
    char name[32];
    if (!mo->teacher_logits) {
        ib__fail(g, IB_ERR_ARG, "variational distillation needs a model whose last layer is a vsdhead "
                                "(a teacher classifier on v and a student on z; docs/vsd.md)");
        return g->status;
    }
    snprintf(name, sizeof name, "ce_v%s", suffix);
    ib_loss_add_term(g, loss, name, ib_cross_entropy(g, mo->teacher_logits, labels, o->label_smoothing), 1.0f);
    snprintf(name, sizeof name, "vsd%s", suffix);
    ib_loss_add_term(g, loss, name, ib_distill_kl(g, mo->teacher_logits, mo->logits), o->vsd_weight);
    return g->status;
}

static ib_status vsd_check(const ib_objective *o) { return ib__vsd_check_weight("--vsd-weight", o->vsd_weight); }

static ib_status vsd_build(const ib_method_inputs *in, ib_loss *loss)
{
    const ib_model_out *mo = &in->out[0];
    ib_objective o = ib__objective_with_model_betas(in->objective, mo);
    /* "ce" (the student's, on z) and "kl1" (beta: 0 logs it only) as in Deep VIB */
    if (ib__vib_terms(in->g, mo->logits, in->y, mo->n_bottlenecks, mo->bn, &o, loss) != IB_OK)
        return in->g->status;
    return ib__vsd_view_terms(in->g, mo, in->y, &o, "", loss);
}

const ib_method ib__method_vsd = {
    .name = "vsd",
    .summary = "VSD: CE(z) + CE(v) + w KL(p(y|v) || p(y|z)) (teacher detached) + beta KL; needs a vsdhead",
    .needs = IB_METHOD_NEEDS_LABELS | IB_METHOD_NEEDS_BOTTLENECK,
    .views = 1,
    .check = vsd_check,
    .build = vsd_build,
};
