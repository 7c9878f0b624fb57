/*
 * model_cells.c — VIB cells placed by name (ib_model_add_cells): the model
 * with a default `vibcell` after each layer named in a list, made by
 * writing the canonical text with the cells in it and parsing that, so the
 * result is checked like any description.
 */
#include "model_internal.h"

/* The index of the item that closes item i of m->e (layers and group
 * markers): its `end` for a group, itself for a layer. */
static int closing_item(const ib_model *m, int i)
{
    if (m->e[i].mark != IB__GROUP)
        return i;
    int depth = 0;
    for (int j = i; j < m->n; j++) {
        if (m->e[j].mark == IB__GROUP)
            depth++;
        else if (m->e[j].mark == IB__GROUP_END && --depth == 0)
            return j;
    }
    return m->n - 1; /* a parsed model always closes its groups */
}

/* Whether a feature map (C, H, W) flows out of item i (a layer or an
 * `end`): the output of the last layer at or before it, else the input. */
static bool map_after(const ib_model *m, int i)
{
    for (int j = i; j >= 0; j--)
        if (m->e[j].mark == IB__LAYER)
            return m->e[j].out.ndim == 3;
    return true;
}

static int find_full(const ib_model *m, const char *full)
{
    for (int i = 0; i < m->n; i++)
        if (m->e[i].mark != IB__GROUP_END && !strcmp(m->e[i].full, full))
            return i;
    return -1;
}

static bool leaf_name_used(const ib_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (m->e[i].mark != IB__GROUP_END && m->e[i].named && !strcmp(m->e[i].name, name))
            return true;
    return false;
}

/* Marks the place after item i for a cell; "what" names it in errors. */
static ib_status mark_cell(const ib_model *m, int i, const char *what, int *cell)
{
    int at = closing_item(m, i);
    if (!map_after(m, at))
        return ib__error(IB_ERR_ARG,
                         "VIB cell after '%s': that layer outputs flat features, and a cell needs a feature map "
                         "(C, H, W); a 'vib K' layer in a description file is the bottleneck for flat features",
                         what);
    if (cell[at])
        return ib__error(IB_ERR_ARG, "VIB cell after '%s': that place is named twice", what);
    cell[at] = 1;
    return IB_OK;
}

static ib_status mark_item(const ib_model *m, const char *item, int *cell)
{
    size_t len = strlen(item);
    bool children = len >= 2 && !strcmp(item + len - 2, ".*");
    char full[IB__MODEL_NAME_LEN];
    if (len - (children ? 2 : 0) >= sizeof full)
        return ib__error(IB_ERR_ARG, "VIB cell after '%s': no layer has so long a name", item);
    snprintf(full, sizeof full, "%.*s", (int)(len - (children ? 2 : 0)), item);
    int i = find_full(m, full);
    if (i < 0) {
        char names[512] = "";
        size_t used = 0;
        for (int j = 0, depth = 0; j < m->n && used < sizeof names - 80; j++) {
            if (m->e[j].mark == IB__GROUP_END) {
                depth--;
                continue;
            }
            if (depth == 0)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", m->e[j].full);
            if (m->e[j].mark == IB__GROUP)
                depth++;
        }
        return ib__error(IB_ERR_ARG,
                         "VIB cell after '%s': model '%s' has no layer of that name (its top-level layers: %s; "
                         "'ibnet models --layers %s' lists every name)",
                         full, m->name, names, m->name);
    }
    if (!children)
        return mark_cell(m, i, full, cell);
    if (m->e[i].mark != IB__GROUP)
        return ib__error(IB_ERR_ARG, "VIB cell after '%s': '%s' is not a group, so it has no layers to follow", item,
                         full);
    int end = closing_item(m, i), marked = 0;
    for (int j = i + 1; j < end; j = closing_item(m, j) + 1) {
        ib_status s = mark_cell(m, j, m->e[j].full, cell);
        if (s != IB_OK)
            return s;
        marked++;
    }
    if (!marked)
        return ib__error(IB_ERR_ARG, "VIB cell after '%s': the group is empty", item);
    return IB_OK;
}

ib_status ib_model_add_cells(const ib_model *m, const char *after, ib_model **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_model_add_cells: out is NULL");
    *out = NULL;
    if (!m || !after)
        return ib__error(IB_ERR_ARG, "ib_model_add_cells: model or list is NULL");
    int *cell = calloc((size_t)m->n, sizeof *cell);
    char *list = strdup(after);
    if (!cell || !list) {
        free(cell);
        free(list);
        return ib__error(IB_ERR_NOMEM, "ib_model_add_cells: out of memory");
    }
    ib_status s = IB_OK;
    int items = 0;
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok && s == IB_OK; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            tok[--len] = 0;
        if (!len)
            continue;
        s = mark_item(m, tok, cell);
        items++;
    }
    if (s == IB_OK && !items)
        s = ib__error(IB_ERR_ARG, "VIB cells: the list of layers to follow is empty");
    /* Number the cells in depth order, skipping names the model has. */
    char name[IB__MODEL_NAME_LEN];
    for (int i = 0, next = 1; s == IB_OK && i < m->n; i++) {
        if (!cell[i])
            continue;
        do
            snprintf(name, sizeof name, "cell%d", next++);
        while (leaf_name_used(m, name));
        cell[i] = next - 1;
    }
    char model_name[IB__MODEL_NAME_LEN];
    int nl = snprintf(model_name, sizeof model_name, "%s-cells", m->name);
    if (nl < 0 || (size_t)nl >= sizeof model_name)
        snprintf(model_name, sizeof model_name, "%s", m->name);
    char *text = s == IB_OK ? ib__model_canonical(m, model_name, cell) : NULL;
    if (s == IB_OK && !text)
        s = ib__error(IB_ERR_NOMEM, "ib_model_add_cells: out of memory");
    if (s == IB_OK) {
        char source[IB__MODEL_NAME_LEN + 32];
        snprintf(source, sizeof source, "%s with VIB cells", m->name);
        s = ib_model_parse(text, source, out);
    }
    free(text);
    free(list);
    free(cell);
    return s;
}
