/*
 * track_info.c — `--track-info`: the information plane of a run while it
 * trains.  At the end of every track_every-th epoch (and the last), the
 * layers named by track_layers (every top-level layer by default) are read
 * over the first track_limit examples of a split, with the weights being
 * trained and the mean path (z = mu), and I(X;T) and I(T;Y) of each are
 * estimated; one line per epoch goes to info.jsonl.
 *
 * The layers are read through a graph of their own over the run's store:
 * forward only, in evaluation mode, its layer outputs kept (the evaluation
 * graph reuses their memory).  It draws no random number, updates no
 * statistic and leaves the other graphs, the batchers and the optimizer as
 * they are, so a run with tracking trains bit for bit as one without.
 *
 * This file calls the estimators' public interface (ib_mi_*, src/info/):
 * the one place the trainer reaches past its layer, kept to that API.
 */
#include "train_internal.h"

#include <cjson/cJSON.h>

typedef ib__train_run run;

enum { MAX_TRACKED = 64 };

struct ib__tracker {
    ib_mi_options opt;
    ib_graph *g;
    ib_node *x;
    int n;                          /* layers */
    char names[MAX_TRACKED][IB_NAME_MAX];
    ib_node *nodes[MAX_TRACKED];
    int64_t dims[MAX_TRACKED];
    float *values[MAX_TRACKED];     /* rows x dims[k] */
    float *inputs;                  /* rows x input size: the critics' X */
    int64_t *labels;                /* rows */
    int32_t *y;                     /* one batch */
    ib_dataset *owned;              /* the first track_limit examples, when fewer than the split's */
    const ib_dataset *d;
    ib_batcher *b;
    int64_t rows;
};

static bool critic(ib_mi_method m) { return m == IB_MI_INFONCE || m == IB_MI_NWJ || m == IB_MI_MINE; }

ib_status ib__track_check(const ib_train_config *c)
{
    ib_mi_options o;
    ib_status s = ib_mi_parse(c->track_info, &o);
    if (s != IB_OK)
        return ib__error(s, "--track-info: %s", ib_last_error());
    if (o.method == IB_MI_VARIATIONAL)
        return ib__error(IB_ERR_ARG, "--track-info variational: a bottleneck's rate and decoder bound are in "
                         "metrics.jsonl already (train_kl, test_kl, ce_samples); track binning, kde or a critic");
    return IB_OK;
}

/* The node a layer name reads: the node itself, else a bottleneck's sample NAME.z. */
static ib_node *layer_node(ib_graph *g, const char *name)
{
    ib_node *n = ib_graph_find(g, name);
    if (n || strlen(name) + 3 > IB_NAME_MAX)
        return n;
    char z[IB_NAME_MAX];
    snprintf(z, sizeof z, "%s.z", name);
    return ib_graph_find(g, z);
}

static ib_status add_layer(ib__tracker *t, const char *name, int64_t batch, bool named)
{
    ib_node *n = layer_node(t->g, name);
    if (!n)
        return named ? ib__error(IB_ERR_ARG, "--track-layers: unknown layer '%s' (see ibnet models --layers)", name)
                     : IB_OK;
    if (n->ndim < 1 || n->shape[0] != batch || n->dtype != IB_F32)
        return named ? ib__error(IB_ERR_ARG, "--track-layers: layer '%s' has no row per example", name) : IB_OK;
    if (t->n == MAX_TRACKED)
        return ib__error(IB_ERR_ARG, "--track-layers: more than %d layers", MAX_TRACKED);
    snprintf(t->names[t->n], sizeof t->names[t->n], "%s", name);
    t->nodes[t->n] = n;
    t->dims[t->n] = n->numel / batch;
    t->n++;
    return IB_OK;
}

static ib_status find_layers(run *r, ib__tracker *t, int64_t batch)
{
    const char *list = r->cfg.track_layers;
    if (!list[0]) { /* every top-level layer that has an output node */
        for (int i = 0; i < ib_model_layer_count(r->model); i++) {
            ib_model_layer_info L;
            if (ib_model_layer(r->model, i, &L) == IB_OK && L.depth == 0) {
                ib_status s = add_layer(t, L.name, batch, false);
                if (s != IB_OK)
                    return s;
            }
        }
        return t->n ? IB_OK : ib__error(IB_ERR_ARG, "--track-info: model '%s' has no layer to track", r->cfg.model);
    }
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[IB_NAME_MAX];
        if (len == 0 || len >= sizeof name)
            return ib__error(IB_ERR_ARG, "--track-layers: bad layer name in '%s'", list);
        memcpy(name, p, len);
        name[len] = 0;
        ib_status s = add_layer(t, name, batch, true);
        if (s != IB_OK)
            return s;
        p = end ? end + 1 : p + len;
    }
    return IB_OK;
}

static ib_status build(run *r, ib__tracker *t)
{
    const ib_train_config *c = &r->cfg;
    ib_status s = ib_mi_parse(c->track_info, &t->opt);
    if (s != IB_OK)
        return s;
    t->opt.seed = c->seed; /* critics: their own keyed stream */
    int64_t batch = c->eval_batch_size;
    int ch, h, w;
    ib_model_input_shape(r->model, &ch, &h, &w);
    t->g = ib_graph_new(r->params);
    if (!t->g)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    ib_graph_set_seed(t->g, c->seed ^ IB_EVAL_SEED_SALT);
    t->x = ib_input(t->g, "x", 4, (int64_t[]){batch, ch, h, w});
    ib_model_out mo;
    s = ib_model_build(r->model, t->g, t->x, NULL, &mo);
    if (s == IB_OK)
        s = find_layers(r, t, batch);
    if (s != IB_OK)
        return s;
    for (int k = 0; k < t->n; k++)
        ib_node_keep(t->nodes[k]);
    ib_graph_set_forward_only(t->g, true);
    s = ib_graph_compile(t->g);
    if (s != IB_OK)
        return s;
    ib_graph_set_training(t->g, false);
    ib_graph_set_sampling(t->g, false);
    /* the data: the first track_limit examples of the split, fed as the evaluation feeds them */
    const ib_dataset *d = c->track_split == 1 ? r->train : r->test;
    if (c->track_limit < d->n) {
        s = ib_dataset_slice(d, 0, c->track_limit, &t->owned);
        if (s != IB_OK)
            return s;
        d = t->owned;
    }
    t->d = d;
    t->rows = d->n;
    ib_batcher_config bc = *ib_batcher_get_config(r->batcher);
    bc.batch_size = batch;
    bc.shuffle = false;
    bc.drop_last = false;
    bc.crop_pad = 0;
    bc.hflip = false;
    bc.prefetch = false;
    s = ib_batcher_new(d, &bc, &t->b);
    if (s != IB_OK)
        return s;
    int64_t in_row = (int64_t)ch * h * w;
    t->labels = malloc((size_t)t->rows * sizeof *t->labels);
    t->y = malloc((size_t)batch * sizeof *t->y);
    if (critic(t->opt.method))
        t->inputs = malloc((size_t)(t->rows * in_row) * sizeof *t->inputs);
    bool ok = t->labels && t->y && (!critic(t->opt.method) || t->inputs);
    for (int k = 0; k < t->n && ok; k++)
        ok = (t->values[k] = malloc((size_t)(t->rows * t->dims[k]) * sizeof(float))) != NULL;
    return ok ? IB_OK : ib__error(IB_ERR_NOMEM, "--track-info: out of memory");
}

void ib__track_free(ib__tracker *t)
{
    if (!t)
        return;
    ib_graph_free(t->g);
    ib_batcher_free(t->b);
    ib_dataset_free(t->owned);
    for (int k = 0; k < t->n; k++)
        free(t->values[k]);
    free(t->inputs);
    free(t->labels);
    free(t->y);
    free(t);
}

ib_status ib__track_open(run *r)
{
    if (!r->cfg.track_info[0])
        return IB_OK;
    r->track = calloc(1, sizeof *r->track);
    if (!r->track)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    ib_status s = build(r, r->track);
    if (s != IB_OK) {
        ib__track_free(r->track);
        r->track = NULL;
    }
    return s;
}

bool ib__track_due(const run *r, int64_t epoch)
{
    return r->track && (epoch % r->cfg.track_every == 0 || epoch == r->cfg.epochs);
}

/* Every layer's rows over the tracked examples. */
static ib_status read_layers(ib__tracker *t)
{
    int64_t batch = t->x->shape[0], in_row = t->x->numel / batch, row = 0, count = 0;
    ib_batcher_epoch(t->b, 0);
    while (ib_batcher_next(t->b, t->x->value, t->y, &count)) {
        if (count < batch) /* the last partial batch: zero rows after the data */
            memset(t->x->value + count * in_row, 0, (size_t)((batch - count) * in_row) * sizeof(float));
        ib_graph_forward(t->g);
        for (int k = 0; k < t->n; k++)
            memcpy(t->values[k] + row * t->dims[k], ib_node_data(t->nodes[k]),
                   (size_t)(count * t->dims[k]) * sizeof(float));
        if (t->inputs)
            memcpy(t->inputs + row * in_row, t->x->value, (size_t)(count * in_row) * sizeof(float));
        for (int64_t i = 0; i < count; i++)
            t->labels[row + i] = t->y[i];
        row += count;
    }
    return row == t->rows ? IB_OK
                          : ib__error(IB_ERR_STATE, "--track-info: %lld of %lld examples read", (long long)row,
                                      (long long)t->rows);
}

/* One estimate as a JSON object added to o under key. */
static ib_status add_estimate(cJSON *o, const char *key, const ib_mi_var *a, const ib_mi_var *b,
                              const ib_mi_options *opt, const char *quantity)
{
    ib_mi_result res;
    ib_status s = ib_mi_estimate(a, b, opt, &res);
    if (s != IB_OK)
        return s;
    snprintf(res.quantity, sizeof res.quantity, "%s", quantity);
    char *text = ib_mi_result_json(&res);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    cJSON_AddItemToObject(o, key, j);
    return IB_OK;
}

ib_status ib__track_epoch(run *r, int64_t epoch, char **line)
{
    *line = NULL;
    ib__tracker *t = r->track;
    double t0 = ib__now_s();
    ib_status s = read_layers(t);
    if (s != IB_OK)
        return s;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return ib__error(IB_ERR_NOMEM, "out of memory");
    cJSON_AddNumberToObject(o, "epoch", (double)epoch);
    cJSON_AddNumberToObject(o, "step", (double)r->step);
    cJSON_AddStringToObject(o, "estimator", r->cfg.track_info);
    cJSON_AddStringToObject(o, "split", r->cfg.track_split == 1 ? "train" : "test");
    cJSON_AddNumberToObject(o, "n", (double)t->rows);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    int64_t in_row = t->x->numel / t->x->shape[0];
    ib_mi_var y = {.n = t->rows, .d = 1, .i = t->labels}, x = {.n = t->rows, .d = in_row, .f = t->inputs};
    for (int k = 0; k < t->n && s == IB_OK; k++) {
        ib_mi_var v = {.n = t->rows, .d = t->dims[k], .f = t->values[k]};
        cJSON *L = cJSON_CreateObject();
        cJSON_AddItemToArray(layers, L);
        cJSON_AddStringToObject(L, "layer", t->names[k]);
        cJSON_AddNumberToObject(L, "dims", (double)t->dims[k]);
        /* binning and KDE take I(X;T) from T alone; a critic needs the inputs */
        s = t->inputs ? add_estimate(L, "ixt", &x, &v, &t->opt, "I(X;T)") : add_estimate(L, "ixt", &v, NULL, &t->opt, "I(X;T)");
        if (s == IB_OK)
            s = add_estimate(L, "ity", &v, &y, &t->opt, "I(T;Y)");
        if (s != IB_OK)
            s = ib__error(s, "--track-info, epoch %lld, layer %s: %s", (long long)epoch, t->names[k], ib_last_error());
    }
    cJSON_AddNumberToObject(o, "seconds", ib__now_s() - t0);
    if (s == IB_OK && !(*line = cJSON_PrintUnformatted(o)))
        s = ib__error(IB_ERR_NOMEM, "out of memory");
    cJSON_Delete(o);
    return s;
}
