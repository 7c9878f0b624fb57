/*
 * nets.c — the graphs of a run over its one parameter store.  The training
 * graph holds what the method declared: an input per aligned view, the
 * labels, every network on the view it reads (the run's model first), and
 * the method's loss terms.  The evaluation graph holds the run's model
 * alone, forward only: it is what ib_evaluate and the checkpoints see.
 */
#include "train_internal.h"

typedef ib__train_run run;

/* The method's networks after the first, and the models they are made of. */
static int method_nets(const ib_method *m) { return m->n_nets > 0 ? m->n_nets : 1; }

static ib_status build_method(run *r, ib__net *n)
{
    const ib_method *m = r->method;
    ib_method_inputs *in = &r->inputs;
    memset(in, 0, sizeof *in);
    in->g = n->g;
    in->n_views = n->n_views;
    for (int v = 0; v < n->n_views; v++)
        in->x[v] = n->views[v];
    in->y = n->y;
    in->n_nets = method_nets(m);
    in->out[0] = n->mo;
    in->objective = &r->cfg.objective;
    for (int k = 1; k < in->n_nets; k++) {
        const ib_model *model = r->net_models[k] ? r->net_models[k] : r->model;
        /* --separate-views: the run's model on another view is a copy with
         * parameters of its own ("view2.*") instead of the shared backbone */
        char scope[16] = "";
        if (r->cfg.separate_views && !m->nets[k].model && m->nets[k].view > 0)
            snprintf(scope, sizeof scope, "view%d", m->nets[k].view + 1);
        ib_status s = ib_model_build_scoped(model, n->g, scope, n->views[m->nets[k].view], NULL, &in->out[k]);
        if (s != IB_OK)
            return s;
    }
    memset(&n->loss, 0, sizeof n->loss);
    ib_status s = m->build(in, &n->loss);
    if (s == IB_OK && !n->loss.total)
        s = ib__error(IB_ERR_ARG, "method '%s' added no term with a weight to its loss", m->name);
    if (s != IB_OK) {
        const char *ge = ib_graph_error(n->g);
        return ge && ge[0] ? ib__error(s, "%s", ge) : ib__error(s, "method '%s': %s", m->name, ib_last_error());
    }
    return IB_OK;
}

static ib_status build_net(run *r, ib__net *n, int64_t batch, bool training, const char *scope)
{
    int c, h, w;
    ib_model_input_shape(r->model, &c, &h, &w);
    n->g = ib_graph_new(r->params);
    if (!n->g)
        return IB_ERR_NOMEM;
    ib_graph_set_seed(n->g, training ? r->cfg.seed : r->cfg.seed ^ IB_EVAL_SEED_SALT);
    n->x = ib_input(n->g, "x", 4, (int64_t[]){batch, c, h, w});
    n->y = ib_input_labels(n->g, "y", batch);
    n->n_views = training ? r->method->views : 1;
    n->views[0] = n->x;
    for (int v = 1; v < n->n_views; v++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", v + 1);
        n->views[v] = ib_input(n->g, name, 4, (int64_t[]){batch, c, h, w});
    }
    ib_status s = ib_model_build_scoped(r->model, n->g, scope, n->x, NULL, &n->mo);
    if (s != IB_OK)
        return s;
    if (training && (r->method->needs & IB_METHOD_NEEDS_BOTTLENECK) && n->mo.n_bottlenecks == 0)
        return ib__error(IB_ERR_ARG, "the %s objective needs a model with a Gaussian bottleneck; '%s' has none",
                         r->method->name, r->cfg.model);
    if (training) {
        s = build_method(r, n);
        if (s != IB_OK)
            return s;
    }
    n->n_kl = ib_model_out_kl(&n->mo, n->kl_examples, NULL);
    /* The evaluation graph never runs backward and is read only at its
     * outputs (logits, per-example KL): its activations can share memory. */
    if (!training)
        ib_graph_set_forward_only(n->g, true);
    else { /* one backward per forward, and only values under 3-D (losses, logits, KL) are read after it */
        ib_graph_set_reuse_values(n->g, true);
        ib_graph_set_recompute(n->g, true); /* same bits, less memory: see ib_graph_set_recompute */
    }
    s = ib_graph_compile(n->g);
    if (s != IB_OK)
        return s;
    ib_graph_set_training(n->g, training);
    return IB_OK;
}

ib_status ib__run_build_nets(run *r)
{
    const ib_method *m = r->method;
    int c, h, w;
    ib_model_input_shape(r->model, &c, &h, &w);
    for (int k = 1; k < method_nets(m); k++) {
        if (!m->nets[k].model)
            continue;
        ib_status s = ib_model_load(m->nets[k].model, &r->net_models[k]);
        if (s != IB_OK)
            return ib__error(s, "method '%s', network %d: %s", m->name, k + 1, ib_last_error());
        int mc, mh, mw;
        ib_model_input_shape(r->net_models[k], &mc, &mh, &mw);
        if (mc != c || mh != h || mw != w)
            return ib__error(IB_ERR_ARG, "method '%s', network %d ('%s') takes %dx%dx%d inputs, the run's model %dx%dx%d",
                             m->name, k + 1, m->nets[k].model, mc, mh, mw, c, h, w);
    }
    ib_status s = build_net(r, &r->tr, r->local_batch > 0 ? r->local_batch : r->cfg.batch_size, true, NULL);
    if (s == IB_OK)
        s = build_net(r, &r->ev, r->cfg.eval_batch_size, false, NULL);
    /* --separate-views: view 2 is evaluated through its own copy (view2.*,
     * made by the training graph), built as `ibnet eval --view 2` builds it
     * (input, labels, model: the same node ids draw the same noise) */
    if (s == IB_OK && m->views >= 2 && r->cfg.separate_views)
        s = build_net(r, &r->ev2, r->cfg.eval_batch_size, false, "view2");
    return s;
}
