/*
 * mvd.c — the two-view objectives of variational distillation (Tian et
 * al., CVPR 2021; papers.md sections 5 and 8.2): the run's model on view 1
 * and on view 2 of aligned batches (one backbone, or one per view with
 * --separate-views), each ending in a `vsdhead` (teacher p(y|v), student
 * p(y|z)).  Per view: CE of the student, CE of the teacher, beta KL and
 * w_vsd KL(p(y|v) || p(y|z)) as in VSD (vsd.c).  Across views:
 *   VCD = 1/2 KL(p(y|v2) || p(y|z1)) + 1/2 KL(p(y|v1) || p(y|z2)),
 *         teachers detached: each view's z learns what the OTHER view's
 *         observation predicts, so it keeps what the views share;
 *   VML = JS(p(y|z1) || p(y|z2)), symmetric, both sides trained (the
 *         paper's mutual learning; the released code has no VML).
 * `vcd` adds VCD, `vml` VML, `vcd+vml` both.  With weights 0 the terms are
 * logged only, which gives the two-branch baseline (CE on each view).
 * The reference's triplet and cross-modal matching losses are not here.
 */
#include "ib_internal.h"

/* Deep VIB's terms of the second view's network: "ce_2", "kl1_2".. */
static ib_status view2_terms(ib_graph *g, const ib_model_out *mo, ib_node *y, const ib_objective *o, ib_loss *loss)
{
    ib_loss_add_term(g, loss, "ce_2", ib_cross_entropy(g, mo->logits, y, o->label_smoothing), 1.0f);
    for (int l = 0; l < mo->n_bottlenecks; l++) {
        char name[32];
        snprintf(name, sizeof name, "kl%d_2", l + 1);
        ib_loss_add_term(g, loss, name, ib_mean(g, mo->bn[l].kl, IB_ALL), ib_objective_beta(o, l, mo->n_bottlenecks));
    }
    return g->status;
}

static ib_status mvd_build(const ib_method_inputs *in, ib_loss *loss, bool vcd, bool vml)
{
    ib_graph *g = in->g;
    const ib_model_out *m1 = &in->out[0], *m2 = &in->out[1];
    ib_objective o = ib__objective_with_model_betas(in->objective, m1);
    if (ib__vib_terms(g, m1->logits, in->y, m1->n_bottlenecks, m1->bn, &o, loss) != IB_OK ||
        view2_terms(g, m2, in->y, &o, loss) != IB_OK)
        return g->status;
    /* VML alone needs no teacher: a plain classifier per view will do */
    if (vcd || m1->teacher_logits) {
        if (ib__vsd_view_terms(g, m1, in->y, &o, "", loss) != IB_OK ||
            ib__vsd_view_terms(g, m2, in->y, &o, "_2", loss) != IB_OK)
            return g->status;
    }
    if (vcd) {
        ib_node *a = ib_distill_kl(g, m2->teacher_logits, m1->logits); /* p(y|v2) -> p(y|z1) */
        ib_node *b = ib_distill_kl(g, m1->teacher_logits, m2->logits); /* p(y|v1) -> p(y|z2) */
        ib_loss_add_term(g, loss, "vcd", ib_scale(g, ib_add(g, a, b), 0.5f), o.vcd_weight);
    }
    if (vml) {
        ib_node *js = ib_js_categorical(g, ib_log_softmax(g, m1->logits), ib_log_softmax(g, m2->logits));
        ib_loss_add_term(g, loss, "vml", ib_mean(g, js, IB_ALL), o.vml_weight);
    }
    return g->status;
}

static ib_status vcd_build(const ib_method_inputs *in, ib_loss *loss) { return mvd_build(in, loss, true, false); }
static ib_status vml_build(const ib_method_inputs *in, ib_loss *loss) { return mvd_build(in, loss, false, true); }
static ib_status both_build(const ib_method_inputs *in, ib_loss *loss) { return mvd_build(in, loss, true, true); }

static ib_status mvd_check(const ib_objective *o)
{
    ib_status s = ib__vsd_check_weight("--vsd-weight", o->vsd_weight);
    if (s == IB_OK)
        s = ib__vsd_check_weight("--vcd-weight", o->vcd_weight);
    if (s == IB_OK)
        s = ib__vsd_check_weight("--vml-weight", o->vml_weight);
    return s;
}

#define TWO_VIEWS                                                                                                      \
    .needs = IB_METHOD_NEEDS_LABELS, .views = 2, .n_nets = 2, .nets = {{NULL, 0}, {NULL, 1}}, .check = mvd_check

const ib_method ib__method_vcd = {
    .name = "vcd",
    .summary = "VCD (two views): per view CE(z) + CE(v) + VSD, + w 1/2 [KL(p(y|v2)||p(y|z1)) + KL(p(y|v1)||p(y|z2))]",
    TWO_VIEWS,
    .build = vcd_build,
};

const ib_method ib__method_vml = {
    .name = "vml",
    .summary = "VML (two views): per view CE (+ CE(v) + VSD with a vsdhead), + w JS(p(y|z1) || p(y|z2))",
    TWO_VIEWS,
    .build = vml_build,
};

const ib_method ib__method_vcd_vml = {
    .name = "vcd+vml",
    .summary = "VCD and VML together (two views)",
    TWO_VIEWS,
    .build = both_build,
};
