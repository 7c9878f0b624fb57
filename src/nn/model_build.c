/*
 * model_build.c — model -> graph: ib_model_build adds a parsed model to a
 * graph, layer by layer through each kind's builder (model_kinds.c), under
 * the model's initialisation style.  Parameters are get-or-create in the
 * graph's store, named by the layers' full names, so a second graph built
 * from the same model and store shares them.  A scope ("view2") prefixes
 * every parameter name ("view2.fc1.weight"): a second copy of the model
 * in the same store with parameters of its own.
 */
#include "model_internal.h"

/* A scope is a parameter-name prefix: letters, digits, '_', '-', '.' (no
 * empty parts), at most 31 characters. */
static bool scope_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 31 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return false;
    return true;
}

ib_status ib_model_build(const ib_model *m, ib_graph *g, ib_node *x, ib_node *const *eps, ib_model_out *out)
{
    return ib_model_build_scoped(m, g, NULL, x, eps, out);
}

ib_status ib_model_build_scoped(const ib_model *m, ib_graph *g, const char *scope, ib_node *x, ib_node *const *eps,
                                ib_model_out *out)
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
    if (scope && scope[0] && !scope_ok(scope)) {
        ib__fail(g, IB_ERR_ARG, "model scope '%s': 1 to 31 letters, digits, '_', '-' or '.' (no empty parts)", scope);
        return IB_ERR_ARG;
    }
    ib_init_style style_before = ib_graph_init_style(g);
    ib_graph_set_init_style(g, (ib_init_style)m->init_style);
    char scope_before[sizeof g->param_scope];
    memcpy(scope_before, g->param_scope, sizeof scope_before);
    if (scope && scope[0]) { /* nested scopes add up: the whole prefix must fit */
        int w = snprintf(g->param_scope, sizeof g->param_scope, "%s%s.", scope_before, scope);
        if (w < 0 || (size_t)w >= sizeof g->param_scope) {
            memcpy(g->param_scope, scope_before, sizeof scope_before);
            ib_graph_set_init_style(g, style_before);
            ib__fail(g, IB_ERR_ARG, "model scope '%s%s.': longer than %d characters", scope_before, scope,
                     (int)sizeof g->param_scope - 1);
            return IB_ERR_ARG;
        }
    }
    ib__model_builder b = {g, eps, out, 1};
    for (int i = 0; i < m->n && x; i++)
        if (m->e[i].mark == IB__LAYER) /* group markers only name things */
            x = m->e[i].kind->build(&b, x, &m->e[i]);
    memcpy(g->param_scope, scope_before, sizeof scope_before);
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
