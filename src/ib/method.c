/*
 * method.c — the registry of the library's methods and the checks every
 * method passes before the trainer builds what it declares.  A new method
 * is a file in src/ib/ defining an ib_method and one line in the table
 * below (docs/methods.md).
 */
#include "ib_internal.h"

static const ib_method *const methods[] = {
    &ib__method_vib,
    &ib__method_vub,
    &ib__method_imb,
    &ib__method_vsd,
    &ib__method_vcd,
    &ib__method_vml,
    &ib__method_vcd_vml,
};
#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))

const ib_method *ib_method_at(int i) { return i >= 0 && i < N_METHODS ? methods[i] : NULL; }

const ib_method *ib_method_find(const char *name)
{
    for (int i = 0; name && i < N_METHODS; i++)
        if (strcmp(methods[i]->name, name) == 0)
            return methods[i];
    char known[256] = "";
    for (int i = 0; i < N_METHODS; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", methods[i]->name);
    ib__error(IB_ERR_ARG, "unknown objective '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

ib_status ib_method_validate(const ib_method *m, const ib_objective *o)
{
    if (!m || !m->name || !m->name[0] || !m->build)
        return ib__error(IB_ERR_ARG, "a method needs a name and a build function");
    if (m->views < 1 || m->views > IB_MAX_VIEWS)
        return ib__error(IB_ERR_ARG, "method '%s': %d input views (1..%d)", m->name, m->views, IB_MAX_VIEWS);
    if (m->n_nets < 0 || m->n_nets > IB_MAX_NETS)
        return ib__error(IB_ERR_ARG, "method '%s': %d networks (1..%d)", m->name, m->n_nets, IB_MAX_NETS);
    if (m->n_nets > 0 && (m->nets[0].model || m->nets[0].view != 0))
        return ib__error(IB_ERR_ARG, "method '%s': network 1 must be the run's model on view 1", m->name);
    for (int k = 0; k < m->n_nets; k++)
        if (m->nets[k].view < 0 || m->nets[k].view >= m->views)
            return ib__error(IB_ERR_ARG, "method '%s': network %d reads view %d of %d", m->name, k + 1,
                             m->nets[k].view + 1, m->views);
    if (o && m->check)
        return m->check(o);
    return IB_OK;
}
