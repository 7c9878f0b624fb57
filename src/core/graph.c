/*
 * graph.c — building, compiling and running a graph of ops.
 *
 * A graph is an array of nodes in topological order (a node is created
 * after its inputs).  Building only records nodes and shapes; compile sizes
 * everything and allocates one arena (values, gradients, per-node scratch)
 * plus one shared workspace; forward and backward then run the ops in order
 * and in reverse without allocating.  Parameter nodes point into the
 * parameter store, re-bound at every run so several graphs can share a
 * store that grows.
 */
#include "internal.h"

#include <math.h>

ib_graph *ib_graph_new(ib_params *params)
{
    if (!params) {
        ib__error(IB_ERR_ARG, "ib_graph_new: params is NULL");
        return NULL;
    }
    ib_graph *g = calloc(1, sizeof *g);
    if (!g) {
        ib__error(IB_ERR_NOMEM, "ib_graph_new: out of memory");
        return NULL;
    }
    g->params = params;
    g->training = true;
    g->sampling = true;
    g->param_grads = true;
    return g;
}

void ib_graph_free(ib_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        free(g->nodes[i]);
    free(g->nodes);
    ib__aligned_free(g->arena);
    ib__aligned_free(g->tmp);
    free(g);
}

ib_params *ib_graph_params(ib_graph *g) { return g->params; }
ib_status ib_graph_status(const ib_graph *g) { return g ? g->status : IB_ERR_ARG; }
const char *ib_graph_error(const ib_graph *g) { return g ? g->err : "no graph"; }

ib_node *ib__fail(ib_graph *g, ib_status s, const char *fmt, ...)
{
    if (g && g->status == IB_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->err, sizeof g->err, fmt, ap);
        va_end(ap);
        g->status = s;
        ib__error(s, "%s", g->err);
    }
    return NULL;
}

int64_t ib__numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    return n;
}

bool ib__same_shape(const ib_node *a, const ib_node *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

int ib__axis(const ib_node *n, int axis)
{
    if (axis < 0)
        axis += n->ndim;
    return axis >= 0 && axis < n->ndim ? axis : -1;
}

const char *ib__shape_str(const ib_node *n, char *buf, size_t len)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "(");
    for (int d = 0; d < n->ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, d ? ", %lld" : "%lld", (long long)n->shape[d]);
    if (at < len)
        snprintf(buf + at, len - at, ")");
    return buf;
}

bool ib__inputs_ok(ib_graph *g, int n_in, ib_node *const *in)
{
    if (!g || g->status != IB_OK)
        return false;
    if (g->compiled) {
        ib__fail(g, IB_ERR_STATE, "cannot add nodes to a compiled graph");
        return false;
    }
    for (int k = 0; k < n_in; k++) {
        if (!in[k])
            return false; /* an earlier constructor failed and said why */
        if (in[k]->id >= g->n_nodes || g->nodes[in[k]->id] != in[k]) {
            ib__fail(g, IB_ERR_ARG, "input %d belongs to another graph", k);
            return false;
        }
    }
    return true;
}

static ib_node *add_node(ib_graph *g, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > IB_MAX_DIMS)
        return ib__fail(g, IB_ERR_SHAPE, "a tensor has %d dimensions (at most %d)", ndim, IB_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (shape[d] <= 0)
            return ib__fail(g, IB_ERR_SHAPE, "dimension %d is %lld (must be positive)", d, (long long)shape[d]);
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        ib_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return ib__fail(g, IB_ERR_NOMEM, "out of memory adding a node");
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    ib_node *n = calloc(1, sizeof *n);
    if (!n)
        return ib__fail(g, IB_ERR_NOMEM, "out of memory adding a node");
    n->id = g->n_nodes;
    n->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        n->shape[d] = shape[d];
    n->numel = ib__numel(ndim, shape);
    n->param_index = -1;
    g->nodes[g->n_nodes++] = n;
    return n;
}

ib_node *ib__node_new(ib_graph *g, const ib_op *op, int n_in, ib_node *const *in, int ndim,
                      const int64_t *shape)
{
    if (!ib__inputs_ok(g, n_in, in))
        return NULL;
    IB_ASSERT(n_in <= IB_MAX_INPUTS);
    ib_node *n = add_node(g, ndim, shape);
    if (!n)
        return NULL;
    n->kind = IB__OP;
    n->op = op;
    n->n_in = n_in;
    for (int k = 0; k < n_in; k++)
        n->in[k] = in[k];
    snprintf(n->name, sizeof n->name, "%s_%d", op->name, n->id);
    return n;
}

ib_node *ib_input(ib_graph *g, const char *name, int ndim, const int64_t *shape)
{
    if (!ib__inputs_ok(g, 0, NULL))
        return NULL;
    ib_node *n = add_node(g, ndim, shape);
    if (!n)
        return NULL;
    n->kind = IB__INPUT;
    snprintf(n->name, sizeof n->name, "%s", name ? name : "input");
    return n;
}

ib_node *ib_input_labels(ib_graph *g, const char *name, int64_t count)
{
    ib_node *n = ib_input(g, name ? name : "labels", 1, &count);
    if (n)
        n->dtype = IB_I32;
    return n;
}

ib_node *ib_param_at(ib_graph *g, int index)
{
    if (!ib__inputs_ok(g, 0, NULL))
        return NULL;
    if (index < 0 || index >= ib_params_count(g->params))
        return ib__fail(g, IB_ERR_ARG, "no parameter with index %d", index);
    ib_node *n = add_node(g, ib_params_ndim(g->params, index), ib_params_shape(g->params, index));
    if (!n)
        return NULL;
    n->kind = IB__PARAM;
    n->param_index = index;
    snprintf(n->name, sizeof n->name, "%s", ib_params_name(g->params, index));
    return n;
}

static ib_node *param_of_kind(ib_graph *g, const char *name, int ndim, const int64_t *shape, ib_init init,
                              ib_param_kind kind)
{
    if (!ib__inputs_ok(g, 0, NULL))
        return NULL;
    int idx = ib_params_get(g->params, name, ndim, shape, init, kind);
    if (idx < 0)
        return ib__fail(g, (ib_status)idx, "%s", ib_last_error());
    return ib_param_at(g, idx);
}

ib_node *ib_param(ib_graph *g, const char *name, int ndim, const int64_t *shape, ib_init init)
{
    return param_of_kind(g, name, ndim, shape, init, IB_PARAM_TRAINABLE);
}

ib_node *ib_buffer(ib_graph *g, const char *name, int ndim, const int64_t *shape, ib_init init)
{
    return param_of_kind(g, name, ndim, shape, init, IB_PARAM_BUFFER);
}

/* ---- compile ---- */

static size_t align_up(size_t x) { return (x + IB_ALIGN - 1) / IB_ALIGN * IB_ALIGN; }

static bool has_own_buffers(const ib_node *n) { return n->kind != IB__PARAM && !n->view_of; }

/* Point parameter nodes at the store and views at their source. */
static void bind(ib_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (n->kind == IB__PARAM) {
            n->value = ib__params_value_ptr(g->params, n->param_index);
            n->grad = ib__params_grad_ptr(g->params, n->param_index);
        } else if (n->view_of) {
            n->value = n->view_of->value;
            n->grad = n->view_of->grad;
        }
    }
}

ib_status ib_graph_compile(ib_graph *g)
{
    if (!g)
        return ib__error(IB_ERR_ARG, "ib_graph_compile: graph is NULL");
    if (g->status != IB_OK)
        return ib__error(g->status, "%s", g->err);
    if (g->compiled)
        return IB_OK;
    size_t bytes = 0, tmp = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (has_own_buffers(n)) {
            bytes += align_up((size_t)n->numel * sizeof(float));
            if (n->dtype == IB_F32)
                bytes += align_up((size_t)n->numel * sizeof(float));
        }
        bytes += align_up(n->scratch_bytes);
        if (n->tmp_bytes > tmp)
            tmp = n->tmp_bytes;
    }
    g->arena = ib__aligned_alloc(bytes);
    g->tmp = tmp ? ib__aligned_alloc(tmp) : NULL;
    if (!g->arena || (tmp && !g->tmp)) {
        return ib__error(IB_ERR_NOMEM, "graph needs %zu bytes of activations and %zu of workspace: out of memory",
                         bytes, tmp);
    }
    memset(g->arena, 0, bytes);
    g->arena_bytes = bytes;
    g->tmp_bytes = tmp;
    char *at = g->arena;
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (has_own_buffers(n)) {
            n->value = (float *)at;
            at += align_up((size_t)n->numel * sizeof(float));
            if (n->dtype == IB_F32) {
                n->grad = (float *)at;
                at += align_up((size_t)n->numel * sizeof(float));
            }
        }
        if (n->scratch_bytes) {
            n->scratch = at;
            at += align_up(n->scratch_bytes);
        }
    }
    g->compiled = true;
    bind(g);
    return IB_OK;
}

ib_status ib_graph_forward(ib_graph *g)
{
    if (!g)
        return ib__error(IB_ERR_ARG, "ib_graph_forward: graph is NULL");
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_graph_forward: the graph is not compiled");
    bind(g);
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (n->kind == IB__OP)
            n->op->forward(g, n);
    }
    g->step++;
    return IB_OK;
}

ib_status ib_graph_forward_from(ib_graph *g, ib_node *start)
{
    if (!g || !start)
        return ib__error(IB_ERR_ARG, "ib_graph_forward_from: NULL argument");
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_graph_forward_from: the graph is not compiled");
    if (start->id >= g->n_nodes || g->nodes[start->id] != start)
        return ib__error(IB_ERR_ARG, "ib_graph_forward_from: the node belongs to another graph");
    bind(g);
    for (int i = start->id; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (n->kind == IB__OP)
            n->op->forward(g, n);
    }
    g->step++;
    return IB_OK;
}

ib_node *ib_graph_first_random(const ib_graph *g)
{
    for (int i = 0; g && i < g->n_nodes; i++)
        if (g->nodes[i]->random)
            return g->nodes[i];
    return NULL;
}

ib_status ib_graph_backward(ib_graph *g, ib_node *loss)
{
    if (!g || !loss)
        return ib__error(IB_ERR_ARG, "ib_graph_backward: NULL argument");
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_graph_backward: the graph is not compiled");
    if (loss->id >= g->n_nodes || g->nodes[loss->id] != loss)
        return ib__error(IB_ERR_ARG, "ib_graph_backward: the loss node belongs to another graph");
    if (loss->numel != 1 || loss->dtype != IB_F32)
        return ib__error(IB_ERR_SHAPE, "ib_graph_backward: the loss '%s' must be a float scalar (it has %lld elements)",
                         loss->name, (long long)loss->numel);
    bind(g);
    /* Which nodes need a gradient: those on a path from a leaf that wants
     * one to the loss. */
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        n->needs_grad = false;
        if (n->dtype != IB_F32 || i > loss->id)
            continue;
        if (n->kind == IB__PARAM)
            n->needs_grad = g->param_grads && !ib_params_frozen(g->params, n->param_index);
        else if (n->kind == IB__INPUT)
            n->needs_grad = n->requires_grad;
        else if (!n->no_grad_op)
            for (int k = 0; k < n->n_in; k++)
                n->needs_grad |= n->in[k]->needs_grad;
    }
    /* Zero every activation/input gradient (views share their source's). */
    for (int i = 0; i <= loss->id; i++) {
        ib_node *n = g->nodes[i];
        if (has_own_buffers(n) && n->grad)
            memset(n->grad, 0, (size_t)n->numel * sizeof(float));
    }
    if (!loss->needs_grad)
        return IB_OK; /* nothing upstream asks for a gradient */
    /* Only ancestors of the loss run their backward. */
    for (int i = 0; i <= loss->id; i++)
        g->nodes[i]->on_path = false;
    loss->on_path = true;
    for (int i = loss->id; i >= 0; i--) {
        ib_node *n = g->nodes[i];
        if (n->on_path)
            for (int k = 0; k < n->n_in; k++)
                n->in[k]->on_path = true;
    }
    loss->grad[0] = 1.0f;
    for (int i = loss->id; i >= 0; i--) {
        ib_node *n = g->nodes[i];
        if (n->kind == IB__OP && n->needs_grad && n->on_path && n->op->backward)
            n->op->backward(g, n);
    }
    return IB_OK;
}

void ib_graph_set_training(ib_graph *g, bool training) { g->training = training; }
bool ib_graph_training(const ib_graph *g) { return g->training; }
void ib_graph_set_sampling(ib_graph *g, bool sampling) { g->sampling = sampling; }
bool ib_graph_sampling(const ib_graph *g) { return g->sampling; }
void ib_graph_set_seed(ib_graph *g, uint64_t seed) { g->seed = seed; }
void ib_graph_set_step(ib_graph *g, uint64_t step) { g->step = step; }
uint64_t ib_graph_step(const ib_graph *g) { return g->step; }
void ib_graph_set_param_grads(ib_graph *g, bool on) { g->param_grads = on; }
size_t ib_graph_memory(const ib_graph *g) { return g->arena_bytes + g->tmp_bytes; }
int ib_graph_node_count(const ib_graph *g) { return g->n_nodes; }

ib_node *ib_graph_find(const ib_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0)
            return g->nodes[i];
    return NULL;
}

/* ---- node access ---- */
float *ib_node_data(ib_node *n) { return n ? n->value : NULL; }
float *ib_node_grad(ib_node *n) { return n ? n->grad : NULL; }
int32_t *ib_node_labels(ib_node *n) { return n && n->dtype == IB_I32 ? (int32_t *)(void *)n->value : NULL; }
int ib_node_ndim(const ib_node *n) { return n->ndim; }
int64_t ib_node_dim(const ib_node *n, int axis)
{
    int a = ib__axis(n, axis);
    return a < 0 ? 0 : n->shape[a];
}
int64_t ib_node_numel(const ib_node *n) { return n->numel; }
ib_dtype ib_node_dtype(const ib_node *n) { return n->dtype; }
const char *ib_node_name(const ib_node *n) { return n->name; }
ib_node *ib_node_set_name(ib_node *n, const char *name)
{
    if (n && name)
        snprintf(n->name, sizeof n->name, "%s", name);
    return n;
}
float ib_node_scalar(const ib_node *n) { return n && n->value ? n->value[0] : NAN; }
ib_node *ib_node_set_requires_grad(ib_node *n, bool on)
{
    if (n)
        n->requires_grad = on;
    return n;
}
