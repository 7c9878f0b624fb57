/*
 * net_info.c — what the information estimators need from a trained
 * network: the activations of named layers over a data set (an n x D
 * matrix per layer, with the labels), and the variational bounds of its
 * Gaussian bottlenecks (the rate E[KL] above I(X;Z), the decoder bound
 * H(Y) - E[-log q(y|z)] below I(Z;Y)).
 *
 * Layer outputs are graph nodes named as the layer (docs/model-format.md).
 * The network's graph is forward only, so an intermediate value's memory
 * is reused later in the pass: the layers must be kept (ib_node_keep)
 * before the graph is compiled, hence the defer_compile option of
 * ib_net_open.  Here in src/eval/ beside ib_net, not in src/info/, so the
 * estimators stay independent of the network code.
 */
#include "../core/internal.h"
#include "../info/info_internal.h"

#include <math.h>

void ib_activations_free(ib_activations *a)
{
    if (!a)
        return;
    for (int k = 0; k < a->n_layers; k++) {
        if (a->names)
            free(a->names[k]);
        if (a->nodes)
            free(a->nodes[k]);
        if (a->values)
            free(a->values[k]);
    }
    free(a->names);
    free(a->nodes);
    free(a->values);
    free(a->dims);
    free(a->labels);
    memset(a, 0, sizeof *a);
}

ib_mi_var ib_activations_var(const ib_activations *a, int k)
{
    if (!a || k < -1 || k >= a->n_layers)
        return (ib_mi_var){0};
    if (k == -1)
        return (ib_mi_var){.n = a->n, .d = 1, .i = a->labels};
    return (ib_mi_var){.n = a->n, .d = a->dims[k], .f = a->values[k]};
}

/* The node a layer name reads: the node of that name, else a bottleneck's
 * sample NAME.z (a Deep VIB layer has no node of its bare name). */
static ib_node *layer_node(ib_graph *g, const char *name)
{
    ib_node *n = ib_graph_find(g, name);
    if (n || strlen(name) + 3 > IB_NAME_MAX)
        return n;
    char z[IB_NAME_MAX];
    snprintf(z, sizeof z, "%s.z", name);
    return ib_graph_find(g, z);
}

/* "unknown layer 'fc9'; layers of this model: fc1, fc2, vib, decoder, x" */
static ib_status unknown_layer(ib_net *net, const char *name)
{
    char list[512] = "";
    size_t len = 0;
    int shown = 0, total = 0;
    const ib_model *m = ib_net_model(net);
    ib_graph *g = ib_net_graph(net);
    for (int i = 0; i < ib_model_layer_count(m); i++) {
        ib_model_layer_info L;
        if (ib_model_layer(m, i, &L) != IB_OK || !layer_node(g, L.name))
            continue;
        total++;
        if (shown < 12 && len + strlen(L.name) + 8 < sizeof list) {
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", shown ? ", " : "", L.name);
            shown++;
        }
    }
    return ib__error(IB_ERR_ARG, "unknown layer '%s'; layers of this model: %s%s%s (and 'x', the input; "
                     "'ibnet models --layers MODEL' lists them all)", name, list, total > shown ? ", ..." : "",
                     total ? "" : "(none named)");
}

/* Compile a deferred network, or check that a compiled one kept the nodes. */
static ib_status ready(ib_net *net, ib_node *const *nodes, int count)
{
    ib_graph *g = ib_net_graph(net);
    if (!g->compiled) {
        for (int k = 0; k < count; k++)
            ib_node_keep(nodes[k]);
        return ib_net_compile(net);
    }
    for (int k = 0; k < count; k++)
        if (!nodes[k]->keep && nodes[k]->op != NULL) /* leaves (inputs) keep their values */
            return ib__error(IB_ERR_STATE, "layer '%s': the network is compiled and its memory shared; open it with "
                             "defer_compile to read layers", nodes[k]->name);
    return IB_OK;
}

/* A batcher over d that feeds the network's input as ib_evaluate does. */
static ib_status batcher_for(ib_net *net, const ib_dataset *d, ib_batcher **b)
{
    ib_node *x = ib_net_input(net);
    if (x->ndim != 4 || x->shape[1] != d->c || x->shape[2] != d->h || x->shape[3] != d->w)
        return ib__error(IB_ERR_SHAPE, "the network takes (%lld, %lld, %lld) images, %s has (%d, %d, %d)",
                         (long long)x->shape[1], (long long)x->shape[2], (long long)x->shape[3], d->name, d->c, d->h,
                         d->w);
    ib_batcher_config cfg = *ib_net_batcher_config(net);
    cfg.batch_size = x->shape[0];
    cfg.shuffle = false;
    cfg.drop_last = false;
    cfg.crop_pad = 0;
    cfg.hflip = false;
    return ib_batcher_new(d, &cfg, b);
}

/* The first `limit` examples (0: all) as a view or slice; *owned to free. */
static ib_status limited(const ib_dataset *d, int64_t limit, const ib_dataset **use, ib_dataset **owned)
{
    *owned = NULL;
    *use = d;
    if (limit < 0)
        return ib__error(IB_ERR_ARG, "limit must be >= 0 (0: every example), got %lld", (long long)limit);
    if (limit == 0 || limit >= d->n)
        return IB_OK;
    ib_status s = ib_dataset_slice(d, 0, limit, owned);
    *use = *owned;
    return s;
}

static ib_status alloc_out(ib_activations *a, int count, int64_t n)
{
    a->n_layers = count;
    a->n = n;
    a->names = calloc((size_t)count, sizeof *a->names);
    a->nodes = calloc((size_t)count, sizeof *a->nodes);
    a->values = calloc((size_t)count, sizeof *a->values);
    a->dims = calloc((size_t)count, sizeof *a->dims);
    a->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof *a->labels);
    return a->names && a->nodes && a->values && a->dims && a->labels ? IB_OK
                                                                     : ib__error(IB_ERR_NOMEM, "activations: out of memory");
}

ib_status ib_net_activations(ib_net *net, const ib_dataset *d, const char *const *layers, int n_layers, int64_t limit,
                             bool mean_path, ib_activations *out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_net_activations: no output");
    memset(out, 0, sizeof *out);
    if (!net || !d || !layers || n_layers < 1)
        return ib__error(IB_ERR_ARG, "ib_net_activations: a network, a data set and at least one layer are needed");
    ib_graph *g = ib_net_graph(net);
    ib_node *x = ib_net_input(net);
    ib_node **nodes = calloc((size_t)n_layers, sizeof *nodes);
    if (!nodes)
        return ib__error(IB_ERR_NOMEM, "activations: out of memory");
    ib_status s = IB_OK;
    int64_t B = x->shape[0];
    for (int k = 0; k < n_layers && s == IB_OK; k++) {
        nodes[k] = layers[k] ? layer_node(g, layers[k]) : NULL;
        if (!nodes[k])
            s = layers[k] ? unknown_layer(net, layers[k]) : ib__error(IB_ERR_ARG, "activations: layer %d is NULL", k);
        else if (nodes[k]->ndim < 1 || nodes[k]->shape[0] != B || nodes[k]->dtype != IB_F32)
            s = ib__error(IB_ERR_ARG, "layer '%s' has no row per example (shape[0] = %lld, batch %lld): open the "
                          "network with samples 0", layers[k], (long long)nodes[k]->shape[0], (long long)B);
    }
    const ib_dataset *use = d;
    ib_dataset *owned = NULL;
    if (s == IB_OK)
        s = limited(d, limit, &use, &owned);
    if (s == IB_OK)
        s = ready(net, nodes, n_layers);
    ib_batcher *b = NULL;
    if (s == IB_OK)
        s = batcher_for(net, use, &b);
    int32_t *y = s == IB_OK ? malloc((size_t)B * sizeof *y) : NULL;
    if (s == IB_OK && !y)
        s = ib__error(IB_ERR_NOMEM, "activations: out of memory");
    if (s == IB_OK)
        s = alloc_out(out, n_layers, use->n);
    for (int k = 0; k < n_layers && s == IB_OK; k++) {
        out->names[k] = strdup(layers[k]);
        out->nodes[k] = strdup(nodes[k]->name);
        out->dims[k] = nodes[k]->numel / B;
        out->values[k] = malloc((size_t)(use->n * out->dims[k] > 0 ? use->n * out->dims[k] : 1) * sizeof(float));
        if (!out->names[k] || !out->nodes[k] || !out->values[k])
            s = ib__error(IB_ERR_NOMEM, "activations: out of memory");
    }
    if (s == IB_OK) {
        out->classes = use->classes;
        bool was_sampling = g->sampling;
        uint64_t old_step = g->step;
        g->sampling = !mean_path;
        int64_t row = 0, count = 0, in_row = use->c * use->h * use->w;
        ib_batcher_epoch(b, 0);
        for (uint64_t batch = 0; ib_batcher_next(b, x->value, y, &count); batch++) {
            if (count < B) /* the last partial batch: zero rows after the data */
                memset(x->value + count * in_row, 0, (size_t)((B - count) * in_row) * sizeof(float));
            g->step = batch; /* the noise of one draw: keyed by seed, batch and node */
            ib_graph_forward(g);
            for (int k = 0; k < n_layers; k++)
                memcpy(out->values[k] + row * out->dims[k], ib_node_data(nodes[k]),
                       (size_t)(count * out->dims[k]) * sizeof(float));
            for (int64_t r = 0; r < count; r++)
                out->labels[row + r] = y[r];
            row += count;
        }
        g->sampling = was_sampling;
        g->step = old_step;
        if (row != use->n)
            s = ib__error(IB_ERR_STATE, "activations: %lld of %lld examples read", (long long)row, (long long)use->n);
    }
    free(y);
    free(nodes);
    ib_batcher_free(b);
    ib_dataset_free(owned);
    if (s != IB_OK)
        ib_activations_free(out);
    return s;
}

ib_status ib_net_variational(ib_net *net, const ib_dataset *d, int64_t limit, int samples, uint64_t seed,
                             ib_mi_result *out, int max, int *count)
{
    if (!net || !d || !out || !count || samples < 0)
        return ib__error(IB_ERR_ARG, "ib_net_variational: bad argument");
    *count = 0;
    const ib_model_out *mo = ib_net_outputs(net);
    int L = mo->n_bottlenecks;
    if (L == 0)
        return ib__error(IB_ERR_ARG, "variational: the model has no Gaussian bottleneck (vib or vibcell), so no rate "
                                     "or decoder bound; use binning, kde or a critic");
    if (max < 2 * L)
        return ib__error(IB_ERR_ARG, "ib_net_variational: room for %d results, %d are needed", max, 2 * L);
    if (ib_node_dim(ib_net_logits(net), 0) != ib_node_dim(ib_net_input(net), 0))
        return ib__error(IB_ERR_ARG, "variational: open the network with samples 0");
    const ib_dataset *use = d;
    ib_dataset *owned = NULL;
    ib_status s = limited(d, limit, &use, &owned);
    if (s == IB_OK && use->n < 2)
        s = ib__error(IB_ERR_ARG, "variational: fewer than 2 samples (n = %lld)", (long long)use->n);
    if (s == IB_OK && !ib_net_graph(net)->compiled)
        s = ib_net_compile(net);
    int S = samples ? samples : ib_net_eval_samples(net);
    ib_eval_result e = {0};
    if (s == IB_OK)
        s = ib_evaluate(ib_net_graph(net), ib_net_input(net), ib_net_logits(net), L, ib_net_kl(net), use,
                        ib_net_batcher_config(net), S, seed, &e);
    if (s == IB_OK) {
        double hy = ib__label_entropy(use->labels, use->n, use->classes);
        for (int l = 0; l < L; l++) {
            ib_mi_result *r = &out[2 * l];
            for (int q = 0; q < 2; q++) {
                r[q] = (ib_mi_result){.method = IB_MI_VARIATIONAL, .n = e.n, .samples = S, .seed = seed,
                                      .label_entropy = hy, .ce_nats = e.ce_samples};
                snprintf(r[q].estimator, sizeof r[q].estimator, "variational");
            }
            snprintf(r[0].quantity, sizeof r[0].quantity, "I(X;T)");
            r[0].kind = IB_MI_UPPER;
            r[0].nats = e.kl[l];
            snprintf(r[1].quantity, sizeof r[1].quantity, "I(T;Y)");
            r[1].kind = IB_MI_LOWER;
            r[1].nats = hy - e.ce_samples;
            for (int q = 0; q < 2; q++)
                r[q].bits = r[q].nats / log(2.0);
        }
        *count = 2 * L;
    }
    ib_eval_result_free(&e);
    ib_dataset_free(owned);
    return s;
}
