/*
 * model_build.c — model -> graph: ib_model_build adds a parsed model to a
 * graph, layer by layer through each kind's builder (model_kinds.c), under
 * the model's initialisation style.  Parameters are get-or-create in the
 * graph's store, named by the layers' full names, so a second graph built
 * from the same model and store shares them.
 */
#include "model_internal.h"

ib_status ib_model_build(const ib_model *m, ib_graph *g, ib_node *x, ib_node *const *eps, ib_model_out *out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_model_build: out is NULL");
    memset(out, 0, sizeof *out);
    if (!m || !g)
        return ib__error(IB_ERR_ARG, "ib_model_build: model or graph is NULL");
    if (!ib__inputs_ok(g, 1, &x)) {
        ib_status st = ib_graph_status(g);
        return st ? st : ib__error(IB_ERR_ARG, "ib_model_build: no input node (or the graph is compiled)");
    }
    if (x->ndim != 4 || x->shape[1] != m->c || x->shape[2] != m->h || x->shape[3] != m->w || x->dtype != IB_F32) {
        char sh[64];
        ib__fail(g, IB_ERR_SHAPE, "model '%s' takes input (N, %d, %d, %d) float, not '%s' %s", m->name, m->c, m->h,
                 m->w, x->name, ib__shape_str(x, sh, sizeof sh));
        return IB_ERR_SHAPE;
    }
    ib_init_style style_before = ib_graph_init_style(g);
    ib_graph_set_init_style(g, (ib_init_style)m->init_style);
    ib__model_builder b = {g, eps, out, 1};
    for (int i = 0; i < m->n && x; i++)
        if (m->e[i].mark == IB__LAYER) /* group markers only name things */
            x = m->e[i].kind->build(&b, x, &m->e[i]);
    ib_graph_set_init_style(g, style_before);
    if (!x) {
        ib_status st = ib_graph_status(g);
        return st ? st : ib__error(IB_ERR_STATE, "ib_model_build: building '%s' failed", m->name);
    }
    out->logits = out->path_logits = x;
    out->paths = b.paths;
    if (b.paths > 1) {
        /* One row per example for every caller that expects it: the log
         * of the mean probability over the example's paths (whose softmax
         * is that mean; its CE is the stochastic network's NLL). */
        int64_t n = x->shape[0] / b.paths, c = x->shape[1];
        ib_node *lp = ib_reshape(g, ib_log_softmax(g, x), 3, (int64_t[]){n, b.paths, c});
        out->logits = ib_node_set_name(ib_logmeanexp(g, lp, 1), "logits_mean");
        if (!out->logits) {
            ib_status st = ib_graph_status(g);
            return st ? st : IB_ERR_STATE;
        }
    }
    return IB_OK;
}
