/*
 * loss.c — a loss as a list of named terms (name, scalar node, weight)
 * whose weighted sum is the total the trainer minimises.  Every method
 * builds its loss through ib_loss_add_term, so the trainer can log each
 * term by name without knowing what it means.
 */
#include "../core/internal.h"

#include <math.h>

ib_status ib_loss_add_term(ib_graph *g, ib_loss *l, const char *name, ib_node *node, float weight)
{
    if (!g || !l)
        return ib__error(IB_ERR_ARG, "ib_loss_add_term: NULL graph or loss");
    if (g->status != IB_OK)
        return g->status;
    if (!name || !name[0] || strlen(name) >= sizeof l->terms[0].name) {
        ib__fail(g, IB_ERR_ARG, "loss term name '%s' must have 1 to %zu characters", name ? name : "(null)",
                 sizeof l->terms[0].name - 1);
        return g->status;
    }
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            /* the name is a JSON key and a word of the progress line */
            ib__fail(g, IB_ERR_ARG, "loss term name '%s' may hold only letters, digits and '_'", name);
            return g->status;
        }
    if (!node || ib_node_numel(node) != 1) {
        ib__fail(g, IB_ERR_ARG, "loss term '%s' must be a scalar node", name);
        return g->status;
    }
    if (!isfinite(weight)) {
        ib__fail(g, IB_ERR_ARG, "loss term '%s' has weight %g (must be finite)", name, (double)weight);
        return g->status;
    }
    if (ib_loss_term_find(l, name)) {
        ib__fail(g, IB_ERR_ARG, "loss term '%s' added twice", name);
        return g->status;
    }
    if (l->n_terms >= IB_MAX_TERMS) {
        ib__fail(g, IB_ERR_ARG, "loss term '%s': more than %d terms", name, IB_MAX_TERMS);
        return g->status;
    }
    char full[64];
    snprintf(full, sizeof full, "loss.%s", name);
    ib_node_set_name(node, full);
    ib_loss_term *t = &l->terms[l->n_terms++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->node = node;
    t->weight = weight;
    /* The order of the additions is the order of the terms: a method that
     * adds the same terms in the same order gets the same bits. */
    if (weight == 0.0f)
        return g->status;
    if (!l->total)
        l->total = weight == 1.0f ? node : ib_scale(g, node, weight);
    else if (weight == 1.0f)
        l->total = ib_add(g, l->total, node);
    else if (weight > 0.0f)
        l->total = ib_add(g, l->total, ib_scale(g, node, weight));
    else /* total - |w| node: a bonus reads as a subtraction */
        l->total = ib_sub(g, l->total, ib_scale(g, node, -weight));
    return g->status;
}

const ib_loss_term *ib_loss_term_find(const ib_loss *l, const char *name)
{
    for (int i = 0; l && name && i < l->n_terms; i++)
        if (strcmp(l->terms[i].name, name) == 0)
            return &l->terms[i];
    return NULL;
}
