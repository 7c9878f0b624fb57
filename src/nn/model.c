/*
 * model.c — the model object of the description format
 * (docs/model-format.md): freeing it, its queries and equality.  Where the
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
    memcpy(shape, e->out.d, sizeof e->out.d);
    return e->out.ndim;
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
