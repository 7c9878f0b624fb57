/*
 * model.c — the model object of the description format
 * (docs/model-format.md): freeing it, its queries, equality, and the
 * structured layer listing (ib_model_layer...) that bindings use to
 * rebuild a model without parsing text.  Where the
 * other parts live is said in model_internal.h: the layer kinds in
 * model_kinds.c, the parser in model_parse.c, the canonical text and the
 * summary in model_text.c, the builder in model_build.c and VIB cells
 * placed by name in model_cells.c.
 */
#include "model_internal.h"

void ib_model_free(ib_model *m)
{
    if (!m)
        return;
    free(m->e);
    free(m->text);
    free(m);
}

const char *ib_model_name(const ib_model *m) { return m ? m->name : ""; }
const char *ib_model_text(const ib_model *m) { return m ? m->text : ""; }
int ib_model_classes(const ib_model *m) { return m ? m->classes : 0; }
int64_t ib_model_param_count(const ib_model *m) { return m ? m->params : 0; }
int ib_model_bottleneck_count(const ib_model *m) { return m ? m->n_bn : 0; }
int ib_model_stochastic_count(const ib_model *m) { return m ? m->n_st : 0; }
int64_t ib_model_paths(const ib_model *m) { return m ? m->paths : 0; }

int ib_model_out_kl(const ib_model_out *mo, ib_node **kl, const char **name)
{
    if (!mo)
        return 0;
    /* a Bernoulli layer has no Gaussian bottleneck: list the stochastic
     * layers then; otherwise the bottlenecks, as before IMB (a vsdhead's z
     * is a bottleneck but not a stochastic layer) */
    bool bernoulli = false;
    for (int l = 0; l < mo->n_stochastic; l++)
        bernoulli |= mo->st[l].bn < 0;
    int n = bernoulli ? mo->n_stochastic : mo->n_bottlenecks;
    for (int l = 0; l < n; l++) {
        kl[l] = bernoulli ? mo->st[l].kl : mo->bn[l].kl;
        if (name)
            name[l] = bernoulli ? mo->st[l].name : mo->bn_name[l];
    }
    return n;
}

void ib_model_input_shape(const ib_model *m, int *c, int *h, int *w)
{
    if (c)
        *c = m ? m->c : 0;
    if (h)
        *h = m ? m->h : 0;
    if (w)
        *w = m ? m->w : 0;
}

int ib_model_bottleneck_shape(const ib_model *m, int i, int64_t shape[3])
{
    if (!m || i < 0 || i >= m->n_bn)
        return 0;
    const ib__layer *e = &m->e[m->bn[i]];
    ib__shape s = e->out;
    if (e->kind->bn_shape)
        e->kind->bn_shape(e, &s);
    memcpy(shape, s.d, sizeof s.d);
    return s.ndim;
}

static bool same_layer(const ib__layer *x, const ib__layer *y)
{
    if (x->mark != y->mark || x->kind != y->kind || x->n != y->n || x->named != y->named || strcmp(x->name, y->name) ||
        strcmp(x->full, y->full))
        return false;
    for (int f = 0; f < ib__model_n_opts; f++) {
        bool same = ib__model_opts[f].type == IB__OPT_FLOAT ? x->v[f].f == y->v[f].f : x->v[f].i == y->v[f].i;
        if (!same)
            return false;
    }
    return true;
}

bool ib_model_equal(const ib_model *a, const ib_model *b)
{
    if (!a || !b)
        return a == b;
    if (strcmp(a->name, b->name) || a->c != b->c || a->h != b->h || a->w != b->w || a->classes != b->classes ||
        a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (!same_layer(&a->e[i], &b->e[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* the layer listing                                                   */

void ib__model_tensor(ib__tensors *t, const char *part, const char *leaf, bool trainable, int ndim, const int64_t *d)
{
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= d[i];
    if (trainable)
        t->trainable += numel;
    if (t->n++ != t->want || !t->out)
        return;
    ib_model_tensor *o = t->out;
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s%s%s.%s", t->prefix, part ? "." : "", part ? part : "", leaf);
    o->ndim = ndim;
    memcpy(o->shape, d, (size_t)ndim * sizeof *d);
    o->trainable = trainable;
}

/* Item i of the listing (the `end` markers are not items) and its depth;
 * NULL when out of range. */
static const ib__layer *item(const ib_model *m, int i, int *depth)
{
    int d = 0;
    for (int j = 0, k = 0; m && i >= 0 && j < m->n; j++) {
        const ib__layer *e = &m->e[j];
        if (e->mark == IB__GROUP_END) {
            d--;
            continue;
        }
        if (k++ == i) {
            if (depth)
                *depth = d;
            return e;
        }
        if (e->mark == IB__GROUP)
            d++;
    }
    return NULL;
}

int ib_model_layer_count(const ib_model *m)
{
    int n = 0;
    for (int j = 0; m && j < m->n; j++)
        n += m->e[j].mark != IB__GROUP_END;
    return n;
}

/* The index in the option table of option j of layer e (among those the
 * canonical text writes), or -1. */
static int written_option(const ib__layer *e, int j)
{
    if (e->mark != IB__LAYER)
        return -1;
    char value[48];
    for (int f = 0, k = 0; f < ib__model_n_opts; f++)
        if ((e->kind->opts & (1u << f)) && ib__model_option_text(e, f, value, sizeof value) && k++ == j)
            return f;
    return -1;
}

ib_status ib_model_layer(const ib_model *m, int i, ib_model_layer_info *info)
{
    if (!m || !info)
        return ib__error(IB_ERR_ARG, "ib_model_layer: model or info is NULL");
    int depth = 0;
    const ib__layer *e = item(m, i, &depth);
    if (!e)
        return ib__error(IB_ERR_ARG, "ib_model_layer: item %d out of range (model '%s' has %d)", i, m->name,
                         ib_model_layer_count(m));
    memset(info, 0, sizeof *info);
    info->name = e->full;
    info->depth = depth;
    if (e->mark == IB__GROUP) {
        info->kind = "group";
        return IB_OK;
    }
    const ib__layer_kind *ks = e->kind;
    info->kind = ks->word;
    info->arg = ks->arg ? e->n : 0;
    while (written_option(e, info->n_options) >= 0)
        info->n_options++;
    ib__tensors t = {e->full, 0, -1, NULL, 0};
    if (ks->tensors)
        ks->tensors(e, &t);
    info->n_tensors = t.n;
    info->in_ndim = e->in.ndim;
    info->out_ndim = e->out.ndim;
    memcpy(info->in, e->in.d, sizeof info->in);
    memcpy(info->out, e->out.d, sizeof info->out);
    info->params = e->params;
    info->bottleneck = ks->bottleneck;
    return IB_OK;
}

ib_status ib_model_layer_option(const ib_model *m, int i, int j, const char **key, char *value, size_t len)
{
    const ib__layer *e = item(m, i, NULL);
    int f = e ? written_option(e, j) : -1;
    if (f < 0 || !key || !value || !len)
        return ib__error(IB_ERR_ARG, "ib_model_layer_option: no option %d of item %d", j, i);
    *key = ib__model_opts[f].key;
    ib__model_option_text(e, f, value, len);
    return IB_OK;
}

ib_status ib_model_layer_option_value(const ib_model *m, int i, const char *key, double *value)
{
    const ib__layer *e = item(m, i, NULL);
    for (int f = 0; e && e->mark == IB__LAYER && key && value && f < ib__model_n_opts; f++) {
        const ib__model_opt *o = &ib__model_opts[f];
        if (!(e->kind->opts & (1u << f)) || strcmp(o->key, key) != 0 || o->type == IB__OPT_WIDTHS)
            continue;
        *value = o->type == IB__OPT_FLOAT ? (double)e->v[f].f : (double)e->v[f].i;
        return IB_OK;
    }
    return ib__error(IB_ERR_ARG, "ib_model_layer_option_value: item %d has no numeric option \"%s\"", i,
                     key ? key : "(null)");
}

ib_status ib_model_layer_tensor(const ib_model *m, int i, int j, ib_model_tensor *out)
{
    const ib__layer *e = item(m, i, NULL);
    ib__tensors t = {e ? e->full : "", 0, j, out, 0};
    if (e && e->mark == IB__LAYER && e->kind->tensors && out && j >= 0)
        e->kind->tensors(e, &t);
    if (!out || j < 0 || j >= t.n)
        return ib__error(IB_ERR_ARG, "ib_model_layer_tensor: no tensor %d of item %d", j, i);
    return IB_OK;
}
