/*
 * ib_internal.h — what the files of src/ib/ share: the registered methods
 * and the term builders the methods are made of (Deep VIB's CE and KL
 * terms, VUB's entropy bonus), so that a method combining them does not
 * copy them.
 */
#ifndef IB_IB_INTERNAL_H
#define IB_IB_INTERNAL_H

#include "../core/internal.h"

/* The library's methods (vib.c, vub.c); method.c lists them. */
extern const ib_method ib__method_vib;
extern const ib_method ib__method_vub;
extern const ib_method ib__method_imb;

/* IMB's terms over the model's stochastic layers and particle paths:
 * "rel0".."relL" (weight gamma_l) and "kl1".."klL" (weight beta_l), also
 * filling loss->ce (= rel0), kl, beta, n_kl (imb.c). */
ib_status ib__imb_terms(ib_graph *g, const ib_model_out *mo, ib_node *labels, const ib_objective *o, ib_loss *loss);
/* Variational distillation: one view (vsd.c), two views (mvd.c). */
extern const ib_method ib__method_vsd;
extern const ib_method ib__method_vcd;
extern const ib_method ib__method_vml;
extern const ib_method ib__method_vcd_vml;

/* The betas the run uses: a beta written in the model description applies
 * to its bottleneck unless the objective lists betas explicitly (beta.c). */
ib_objective ib__objective_with_model_betas(const ib_objective *o, const ib_model_out *mo);

/* Deep VIB's terms: "ce" (weight 1) and "kl1".."klL" (weight beta_l),
 * also filling loss->ce, kl, beta, n_kl (vib.c). */
ib_status ib__vib_terms(ib_graph *g, ib_node *logits, ib_node *labels, int n_bn, const ib_bottleneck *bn,
                        const ib_objective *o, ib_loss *loss);

/* VUB's entropy bonus -lambda * min(H, cap) (cap <= 0: -lambda * H, SVIB)
 * as the terms "entropy" and, when capped, "entropy_capped"; nothing when
 * lambda is 0 (vub.c). */
ib_status ib__entropy_bonus_terms(ib_graph *g, ib_node *logits, const ib_objective *o, ib_loss *loss);

/* VSD's terms of one view's network (a vsdhead's outputs): "ce_v<suffix>"
 * (the teacher's CE, weight 1) and "vsd<suffix>" (the detached teacher's
 * KL to the student, weight vsd_weight); a graph error without a teacher
 * (vsd.c). */
ib_status ib__vsd_view_terms(ib_graph *g, const ib_model_out *mo, ib_node *labels, const ib_objective *o,
                             const char *suffix, ib_loss *loss);
/* IB_ERR_ARG unless w is a finite number >= 0, naming what (vsd.c). */
ib_status ib__vsd_check_weight(const char *what, float w);

#endif
