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
 *
 * The arena is planned by lifetime, since holding every activation and
 * every activation gradient at once is what made a ResNet-20 step need as
 * much memory as PyTorch's whole process.  An activation gradient lives
 * only from the backward of its last consumer (the first op that adds into
 * it) down to its own backward, so gradients share memory and each is
 * zeroed when its lifetime starts.  A forward-only graph lets a value die
 * after its last consumer.  A training graph keeps every value unless asked
 * (ib_graph_set_reuse_values: callers and tests read intermediate values
 * and run several backwards per forward); then a feature map (a value of
 * 3 or 4 dimensions: nearly all of a CNN's activations) dies after its last
 * consumer's forward or, if a backward reads it (ib_op.bwd_reads), after
 * the last such backward; smaller values (logits, loss terms, per-example
 * KL: what callers read after a step) stay.  Inputs, kept nodes
 * (ib_node_keep), outputs and parameter gradients (in the store) outlive
 * every pass.
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
    g->layout_block = -1;
    return g;
}

void ib_graph_free(ib_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        free(g->nodes[i]);
    free(g->nodes);
    ib__unpoison(g->arena, g->arena_bytes);
    ib__aligned_free(g->arena);
    free(g->zero_at);
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
    char scoped[IB_NAME_MAX];
    if (g->param_scope[0] && name) { /* a scoped model build: its own copy of the parameters */
        if ((size_t)snprintf(scoped, sizeof scoped, "%s%s", g->param_scope, name) >= sizeof scoped)
            return ib__fail(g, IB_ERR_ARG, "parameter name '%s%s' is longer than %d characters", g->param_scope, name,
                            IB_NAME_MAX - 1);
        name = scoped;
    }
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

static ib_node *root_of(ib_node *n) { return n->view_of ? n->view_of : n; }

static size_t buf_bytes(const ib_node *n) { return (size_t)n->numel * sizeof(float); }

#define ALWAYS_LO INT32_MIN
#define ALWAYS_HI INT32_MAX

/* The lists of compile's plan: ids[at[s] .. at[s+1]) are the nodes whose
 * key is s (key < 0: in no list).  at has n + 1 entries; fill is n ints
 * of scratch. */
static void bucket(int n, const int *key, int *at, int *ids, int *fill)
{
    memset(at, 0, (size_t)(n + 1) * sizeof *at);
    for (int i = 0; i < n; i++)
        if (key[i] >= 0)
            at[key[i] + 1]++;
    for (int s = 0; s < n; s++)
        at[s + 1] += at[s];
    memcpy(fill, at, (size_t)n * sizeof *fill);
    for (int i = 0; i < n; i++)
        if (key[i] >= 0)
            ids[fill[key[i]]++] = i;
}

/* The values node n's backward reads, as IB__READS_* bits. */
static unsigned bwd_reads(const ib_node *n)
{
    if (n->kind != IB__OP || !n->op->backward)
        return 0;
    unsigned r = n->op->bwd_reads;
    return r ? r : IB__READS_ALL_IN | IB__READS_OUT;
}

/* ---- recomputation (ib_graph_set_recompute) ----
 * Which pooled values backward derives again instead of keeping.  A value
 * some backward reads is recomputed just before the first (highest) such
 * backward when each of its inputs is at hand then: a parameter, a value
 * kept whole, one kept down to a backward at or below that step, one
 * already recomputed by then, or a value no backward reads that can itself
 * be recomputed from such inputs (a "helper": the batch norm output under
 * a ReLU).  A value read in backward is never recomputed earlier than its
 * own first reader needs it: along a residual stream that would recompute
 * every block's output at the start of backward and save nothing.  So in
 * a ResNet block the ReLU between the two convolutions is recomputed
 * (from the kept first conv output, through its batch norm), and the
 * block's output, the next block's shortcut, is kept. */
typedef struct re_plan {
    const int *first_bwd, *top_bwd;
    const bool *whole, *cand, *in_r;
    const int *t;
    int stack[64]; /* nodes the check in progress relies on */
    int n_stack;
} re_plan;

static bool re_avail(re_plan *rp, ib_node *u, int T, int depth)
{
    if (u->kind == IB__PARAM)
        return true;
    int j = root_of(u)->id;
    if (rp->whole[j])
        return true;
    if (rp->first_bwd[j] >= 0 && !rp->in_r[j])
        return rp->first_bwd[j] <= T; /* kept down to its lowest reader */
    if (rp->n_stack == (int)(sizeof rp->stack / sizeof *rp->stack))
        return false;
    if (rp->first_bwd[j] >= 0) { /* recomputed for its own readers */
        if (rp->t[j] < T)
            return false;
        rp->stack[rp->n_stack++] = j;
        return true;
    }
    if (!rp->cand[j] || depth >= 4)
        return false;
    rp->stack[rp->n_stack++] = j;
    ib_node *r = root_of(u);
    for (int k = 0; k < r->n_in; k++)
        if (!re_avail(rp, r->in[k], T, depth + 1))
            return false;
    return true;
}

/* Lifetimes (steps: forward i = i, backward of node i = 2N - i), offsets,
 * the arena, and the per-step lists of backward and forward. */
static ib_status plan_and_allocate(ib_graph *g)
{
    int N = g->n_nodes;
    int *last = malloc((size_t)(N + 1) * sizeof *last);
    int *first_bwd = malloc((size_t)(N + 1) * sizeof *first_bwd);
    int *top_bwd = malloc((size_t)(N + 1) * sizeof *top_bwd);
    int *re_t = malloc((size_t)(N + 1) * sizeof *re_t);
    int *re_end = malloc((size_t)(N + 1) * sizeof *re_end);
    int *n_cons = calloc((size_t)N + 1, sizeof *n_cons);
    bool *always = calloc((size_t)N + 1, sizeof *always);
    bool *small = calloc((size_t)N + 1, sizeof *small);
    bool *whole = calloc((size_t)N + 1, sizeof *whole);
    bool *has_view = calloc((size_t)N + 1, sizeof *has_view);
    bool *cand = calloc((size_t)N + 1, sizeof *cand);
    bool *in_r = calloc((size_t)N + 1, sizeof *in_r);
    ib__plan_item *items = malloc((size_t)(6 * N + 1) * sizeof *items);
    int *lists = malloc((size_t)(8 * N + 4) * sizeof *lists);
    int *zkey = malloc((size_t)(5 * N + 1) * sizeof *zkey), *dkey = zkey + N, *bkey = zkey + 2 * N,
        *rkey = zkey + 3 * N, *share_hi = zkey + 4 * N; /* share_hi: the end of a gradient buffer an input's takes over */
    ib_status status = IB_OK;
    if (!last || !first_bwd || !top_bwd || !re_t || !re_end || !n_cons || !always || !small || !whole ||
        !has_view || !cand || !in_r || !items || !lists || !zkey) {
        free(lists);
        status = ib__error(IB_ERR_NOMEM, "ib_graph_compile: out of memory planning %d nodes", N);
        goto done;
    }
    /* last[r]: the last node whose forward reads root r's buffers (itself,
     * a consumer of r or of a view of r, or the view); first_bwd[r] and
     * top_bwd[r]: the lowest and the highest node whose backward reads r's
     * value (backward runs down, so the lowest is the last), -1 if none. */
    for (int i = 0; i < N; i++) {
        last[i] = i;
        first_bwd[i] = top_bwd[i] = -1;
    }
    for (int i = 0; i < N; i++) { /* ascending: the first reader seen is the lowest, the last the highest */
        ib_node *n = g->nodes[i];
        unsigned r = bwd_reads(n);
        for (int k = 0; k <= n->n_in; k++) {
            bool reads = k < n->n_in ? (r & IB__READS_IN(k)) != 0 : (r & IB__READS_OUT) != 0;
            if (!reads)
                continue;
            int j = root_of(k < n->n_in ? n->in[k] : n)->id;
            if (first_bwd[j] < 0)
                first_bwd[j] = i;
            top_bwd[j] = i;
        }
    }
    for (int i = 0; i < N; i++) {
        ib_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            n_cons[n->in[k]->id]++;
            ib_node *r = root_of(n->in[k]);
            if (i > last[r->id])
                last[r->id] = i;
        }
        if (n->view_of) {
            has_view[n->view_of->id] = true;
            if (i > last[n->view_of->id])
                last[n->view_of->id] = i;
            if (n->keep)
                n->view_of->keep = true;
        }
    }
    /* A value outlives the pass if the caller reads it (kept, an input, an
     * output: a node nothing consumes, itself or through a view) or if
     * forward_from(first random op) reads it again.  In a training graph
     * also if it, or a view of it, has fewer than 3 dimensions: such
     * values are small, and they are what callers read after a step. */
    ib_node *first = ib_graph_first_random(g);
    int restart = first ? first->id : N;
    for (int i = 0; i < N; i++) {
        ib_node *n = g->nodes[i], *r = root_of(n);
        if (n_cons[i] == 0 || n->keep)
            always[r->id] = true;
        if (n->ndim < 3)
            small[r->id] = true;
    }
    bool recompute = g->recompute && g->reuse_values && !g->forward_only;
    for (int i = 0; i < N; i++) {
        ib_node *n = g->nodes[i];
        whole[i] = n->kind == IB__INPUT || always[i] || (i < restart && last[i] >= restart) ||
                   (!g->forward_only && (!g->reuse_values || small[i]));
        cand[i] = recompute && has_own_buffers(n) && !whole[i] && n->kind == IB__OP && n->op->recompute &&
                  !n->random && !has_view[i] && n->dtype == IB_F32;
        re_t[i] = -1;
        re_end[i] = INT32_MAX;
    }
    re_plan rp = {.first_bwd = first_bwd, .top_bwd = top_bwd, .whole = whole, .cand = cand, .in_r = in_r,
                  .t = re_t};
    for (int i = 0; i < N; i++) {
        ib_node *n = g->nodes[i];
        if (!cand[i] || first_bwd[i] < 0)
            continue;
        int T = top_bwd[i];
        bool ok = true;
        rp.n_stack = 0;
        for (int k = 0; ok && k < n->n_in; k++)
            ok = re_avail(&rp, n->in[k], T, 0);
        if (!ok)
            continue;
        in_r[i] = true;
        re_t[i] = T;
        re_end[i] = first_bwd[i];
        for (int s = 0; s < rp.n_stack; s++) {
            int j = rp.stack[s];
            in_r[j] = true;
            if (first_bwd[j] < 0 && T > re_t[j]) /* a helper: recomputed for its earliest consumer */
                re_t[j] = T;
            if (T < re_end[j])
                re_end[j] = T;
        }
    }
    int n_items = 0;
    g->bwd_frees = false;
    for (int i = 0; i < N; i++) {
        g->nodes[i]->grad_shares = -1;
        g->nodes[i]->grad_handed_on = false;
        share_hi[i] = INT32_MIN;
    }
    for (int i = 0; i < N; i++) {
        ib_node *n = g->nodes[i];
        zkey[i] = dkey[i] = bkey[i] = rkey[i] = -1;
        n->grad_pooled = n->value_pooled = false;
        n->value_bwd = n->recompute_at = n->grad_writer = -1;
        n->value_fwd = n->value_re = NULL;
        if (has_own_buffers(n)) {
            int hi = last[i];
            if (in_r[i]) { /* dies after forward, lives again from its recomputation */
                dkey[i] = last[i];
                n->recompute_at = rkey[i] = re_t[i];
                n->value_bwd = bkey[i] = re_end[i];
                g->bwd_frees = true;
            } else if (!whole[i] && !g->forward_only && first_bwd[i] >= 0) {
                n->value_bwd = first_bwd[i];
                hi = 2 * N - first_bwd[i];
                bkey[i] = first_bwd[i];
                g->bwd_frees = true;
            } else if (!whole[i]) {
                dkey[i] = last[i];
            }
            n->value_pooled = !whole[i];
            n->value_last = whole[i] ? ALWAYS_HI : last[i];
            items[n_items++] =
                (ib__plan_item){buf_bytes(n), 0, whole[i] ? ALWAYS_LO : i, whole[i] ? ALWAYS_HI : hi};
            if (in_r[i])
                items[n_items++] = (ib__plan_item){buf_bytes(n), 0, 2 * N - re_t[i], 2 * N - re_end[i]};
            if (n->dtype == IB_F32 && !g->forward_only) {
                bool kept = n->kind == IB__INPUT || n->keep;
                n->grad_pooled = !kept;
                n->grad_start = last[i];
                /* No views: the consumer with the highest id writes this
                 * gradient first (backward runs down), and if its op can,
                 * it assigns instead of adding to a zeroed buffer; the
                 * others add after it (a residual stream's gradient: the
                 * add assigns, the block's first conv adds).  Not when it
                 * reads the node twice (its two writes would both assign). */
                if (n_cons[i] >= 1 && !has_view[i] && last[i] > i && !g->no_grad_assign) {
                    const ib_node *c = g->nodes[last[i]];
                    int uses = 0, at = -1;
                    for (int k = 0; k < c->n_in; k++)
                        if (c->in[k] == n)
                            uses++, at = k;
                    if (uses == 1 && c->kind == IB__OP && !c->view_of && !c->no_grad_op && c->op->backward &&
                        (c->op->grad_assign & IB__ASSIGNS_IN(at)))
                        n->grad_writer = c->id;
                }
                /* Until this node's backward, or longer where an input's
                 * gradient takes over the buffer (grad_in_place below). */
                int hi = kept ? ALWAYS_HI : 2 * N - i;
                if (share_hi[i] > hi)
                    hi = share_hi[i];
                const ib_node *w = n->grad_writer >= 0 ? g->nodes[n->grad_writer] : NULL;
                if (!kept && w && w->op->grad_in_place && w->n_in == 1 && !w->keep && !has_view[w->id] &&
                    has_own_buffers(w) && w->dtype == IB_F32 && buf_bytes(w) == buf_bytes(n) &&
                    w->layout == n->layout) {
                    /* The writer computes this gradient over its own, which
                     * dies in that backward: one buffer for both. */
                    n->grad_shares = w->id;
                    g->nodes[w->id]->grad_handed_on = true;
                    if (hi > share_hi[w->id])
                        share_hi[w->id] = hi;
                } else {
                    items[n_items++] =
                        (ib__plan_item){buf_bytes(n), 0, kept ? ALWAYS_LO : 2 * N - last[i], hi};
                }
                if (!kept)
                    zkey[i] = last[i];
            }
        }
        if (n->scratch_bytes)
            items[n_items++] = (ib__plan_item){n->scratch_bytes, 0, ALWAYS_LO, ALWAYS_HI};
        /* An op's workspace lives during its forward step and, apart,
         * during its backward step: it shares memory with whatever is dead
         * then (a conv's oneDNN blocked copies, in the late steps of
         * backward, fit where the freed feature maps of later layers were). */
        if (n->tmp_bytes && n->kind == IB__OP) {
            items[n_items++] = (ib__plan_item){n->tmp_bytes, 0, i, i};
            if (!g->forward_only && n->op->backward)
                items[n_items++] = (ib__plan_item){n->tmp_bytes, 0, 2 * N - i, 2 * N - i};
        }
    }
    size_t bytes = ib__plan_offsets(items, n_items);
    g->arena = ib__aligned_alloc(bytes);
    g->tmp = NULL;
    if (!g->arena) {
        free(lists);
        status = ib__error(IB_ERR_NOMEM, "graph needs %zu bytes of activations and workspace: out of memory", bytes);
        goto done;
    }
    /* Zeroed once, as before the plan: padding and never-written buffers
     * read as 0, never as stale data. */
    memset(g->arena, 0, bytes);
    g->arena_bytes = bytes;
    char *base = g->arena;
    n_items = 0;
    for (int i = 0; i < N; i++) {
        ib_node *n = g->nodes[i];
        if (has_own_buffers(n)) {
            n->value = (float *)(void *)(base + items[n_items++].offset);
            if (n->value_pooled)
                ib__poison(n->value, buf_bytes(n));
            if (n->recompute_at >= 0) {
                n->value_fwd = n->value;
                n->value_re = (float *)(void *)(base + items[n_items++].offset);
                ib__poison(n->value_re, buf_bytes(n));
            }
            if (n->dtype == IB_F32 && !g->forward_only && n->grad_shares >= 0) {
                n->grad = NULL; /* the writer's, below */
            } else if (n->dtype == IB_F32 && !g->forward_only) {
                n->grad = (float *)(void *)(base + items[n_items++].offset);
                if (n->grad_pooled)
                    ib__poison(n->grad, buf_bytes(n));
            } else {
                n->grad = NULL;
            }
        }
        if (n->scratch_bytes)
            n->scratch = base + items[n_items++].offset;
        n->tmp_fwd = n->tmp_bwd = NULL;
        if (n->tmp_bytes && n->kind == IB__OP) {
            n->tmp_fwd = base + items[n_items++].offset;
            if (!g->forward_only && n->op->backward)
                n->tmp_bwd = base + items[n_items++].offset;
        }
    }
    for (int i = N - 1; i >= 0; i--) /* writers have higher ids: resolved first */
        if (g->nodes[i]->grad_shares >= 0)
            g->nodes[i]->grad = g->nodes[g->nodes[i]->grad_shares]->grad;
    g->zero_at = lists;
    g->zero_ids = lists + (N + 1);
    bucket(N, zkey, g->zero_at, g->zero_ids, n_cons);
    g->dead_at = lists + (2 * N + 1);
    g->dead_ids = lists + (3 * N + 2);
    bucket(N, dkey, g->dead_at, g->dead_ids, n_cons);
    g->bdead_at = lists + (4 * N + 2);
    g->bdead_ids = lists + (5 * N + 3);
    bucket(N, bkey, g->bdead_at, g->bdead_ids, n_cons);
    g->re_at = lists + (6 * N + 3);
    g->re_ids = lists + (7 * N + 4);
    bucket(N, rkey, g->re_at, g->re_ids, n_cons);
done:
    free(last);
    free(first_bwd);
    free(top_bwd);
    free(re_t);
    free(re_end);
    free(n_cons);
    free(always);
    free(small);
    free(whole);
    free(has_view);
    free(cand);
    free(in_r);
    free(items);
    free(zkey);
    return status;
}

ib_status ib_graph_compile(ib_graph *g)
{
    if (!g)
        return ib__error(IB_ERR_ARG, "ib_graph_compile: graph is NULL");
    if (g->status != IB_OK)
        return ib__error(g->status, "%s", g->err);
    if (g->compiled)
        return IB_OK;
    ib__plan_layouts(g); /* before prepare: a conv sizes its workspace for its layouts */
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (n->kind == IB__OP && n->op->prepare)
            n->op->prepare(g, n);
    }
    ib_status s = plan_and_allocate(g);
    if (s != IB_OK)
        return s;
    g->compiled = true;
    bind(g);
    return IB_OK;
}

/* The plan options may change only before compile. */
static ib_status plan_option_settable(const ib_graph *g, const char *fn)
{
    if (!g)
        return ib__error(IB_ERR_ARG, "%s: graph is NULL", fn);
    if (g->compiled)
        return ib__error(IB_ERR_STATE, "%s: the graph is already compiled", fn);
    return IB_OK;
}

ib_status ib_graph_set_forward_only(ib_graph *g, bool on)
{
    ib_status s = plan_option_settable(g, "ib_graph_set_forward_only");
    if (s == IB_OK)
        g->forward_only = on;
    return s;
}

bool ib_graph_forward_only(const ib_graph *g) { return g && g->forward_only; }

ib_status ib_graph_set_reuse_values(ib_graph *g, bool on)
{
    ib_status s = plan_option_settable(g, "ib_graph_set_reuse_values");
    if (s == IB_OK)
        g->reuse_values = on;
    return s;
}

bool ib_graph_reuse_values(const ib_graph *g) { return g && g->reuse_values; }

ib_status ib_graph_set_recompute(ib_graph *g, bool on)
{
    ib_status s = plan_option_settable(g, "ib_graph_set_recompute");
    if (s == IB_OK)
        g->recompute = on;
    return s;
}

bool ib_graph_recompute(const ib_graph *g) { return g && g->recompute; }

/* Forward steps from..N-1; a pooled value is revived (ASan) before its op
 * writes it, and one no backward reads dies after its last reader. */
void ib__forward_step(ib_graph *g, int i)
{
    ib_node *n = g->nodes[i];
    if (n->recompute_at >= 0) /* a backward left it in its recomputed buffer */
        n->value = n->value_fwd;
    if (n->value_pooled)
        ib__unpoison(n->value, buf_bytes(n));
    if (n->kind == IB__OP)
        ib__op_forward(g, n);
    for (int k = g->dead_at[i]; k < g->dead_at[i + 1]; k++) {
        ib_node *d = g->nodes[g->dead_ids[k]];
        ib__poison(d->value, buf_bytes(d));
    }
}

/* The workspace shares memory with buffers that die (and are poisoned
 * under ASan) at other steps: alive only during the call. */
void ib__op_forward(ib_graph *g, ib_node *n)
{
    g->tmp = n->tmp_fwd;
    ib__unpoison(g->tmp, n->tmp_bytes);
    n->op->forward(g, n);
    ib__poison(g->tmp, n->tmp_bytes);
}

void ib__op_backward(ib_graph *g, ib_node *n)
{
    g->tmp = n->tmp_bwd;
    ib__unpoison(g->tmp, n->tmp_bytes);
    n->op->backward(g, n);
    ib__poison(g->tmp, n->tmp_bytes);
}

void ib__recompute_step(ib_graph *g, int i)
{
    for (int k = g->re_at[i]; k < g->re_at[i + 1]; k++) {
        ib_node *r = g->nodes[g->re_ids[k]];
        r->value = r->value_re;
        ib__unpoison(r->value, buf_bytes(r));
        r->op->recompute(g, r);
    }
}

void ib__recompute_above(ib_graph *g, int loss_id)
{
    for (int i = g->n_nodes - 1; i > loss_id; i--)
        ib__recompute_step(g, i);
}

static void run_forward(ib_graph *g, int from)
{
    for (int i = from; i < g->n_nodes; i++)
        ib__forward_step(g, i);
    if (from == 0)
        g->values_spent = false;
    g->step++;
}

ib_status ib_graph_forward(ib_graph *g)
{
    if (!g)
        return ib__error(IB_ERR_ARG, "ib_graph_forward: graph is NULL");
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_graph_forward: the graph is not compiled");
    bind(g);
    run_forward(g, 0);
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
    for (int i = 0; i < start->id; i++) {
        const ib_node *n = g->nodes[i];
        if (n->value_pooled && n->value_last >= start->id)
            return ib__error(IB_ERR_STATE,
                             "ib_graph_forward_from: '%s' is read from '%s' on, but this %sgraph reuses its memory "
                             "during the pass (restart from ib_graph_first_random, or keep the node)",
                             n->name, start->name, g->forward_only ? "forward-only " : "");
    }
    bind(g);
    run_forward(g, start->id);
    return IB_OK;
}

ib_node *ib_graph_first_random(const ib_graph *g)
{
    for (int i = 0; g && i < g->n_nodes; i++)
        if (g->nodes[i]->random)
            return g->nodes[i];
    return NULL;
}

/* The gradient's only writer will run its backward and assign it: no need
 * to zero it first (ib__grad_assign). */
static bool assigned_this_pass(const ib_graph *g, ib_node *n)
{
    if (n->grad_writer < 0 || !n->needs_grad || !n->on_path)
        return false;
    const ib_node *w = g->nodes[n->grad_writer];
    return w->needs_grad && w->on_path;
}

void ib__grad_zero_step(ib_graph *g, const ib_node *loss, int i)
{
    int from, to;
    if (i == loss->id) {
        /* inputs' and kept nodes' gradients are defined after every backward */
        for (int j = 0; j <= loss->id; j++) {
            ib_node *n = g->nodes[j];
            if (has_own_buffers(n) && n->grad && !n->grad_pooled) {
                if (j < loss->id && assigned_this_pass(g, n))
                    n->grad_unset = true;
                else
                    memset(n->grad, 0, buf_bytes(n));
            }
        }
        from = g->zero_at[i];
        to = g->zero_at[g->n_nodes];
    } else {
        from = g->zero_at[i];
        to = g->zero_at[i + 1];
    }
    /* Only gradients some op will add into and read: the others stay dead. */
    for (int k = from; k < to; k++) {
        ib_node *n = g->nodes[g->zero_ids[k]];
        if (n->id <= loss->id && n->needs_grad && n->on_path) {
            ib__unpoison(n->grad, buf_bytes(n));
            if (n->id < loss->id && assigned_this_pass(g, n))
                n->grad_unset = true;
            else
                memset(n->grad, 0, buf_bytes(n));
        }
    }
}

void ib__grad_dead_step(ib_graph *g, int i)
{
    ib_node *n = g->nodes[i];
    if (n->grad_pooled && !n->grad_handed_on) /* else it is now an input's gradient */
        ib__poison(n->grad, buf_bytes(n));
    for (int k = g->bdead_at[i]; k < g->bdead_at[i + 1]; k++) {
        ib_node *d = g->nodes[g->bdead_ids[k]];
        ib__poison(d->value, buf_bytes(d));
    }
}

ib_status ib_graph_backward(ib_graph *g, ib_node *loss)
{
    if (!g || !loss)
        return ib__error(IB_ERR_ARG, "ib_graph_backward: NULL argument");
    if (!g->compiled)
        return ib__error(IB_ERR_STATE, "ib_graph_backward: the graph is not compiled");
    if (g->forward_only)
        return ib__error(IB_ERR_STATE,
                         "ib_graph_backward: the graph was compiled forward-only (ib_graph_set_forward_only): it "
                         "has no gradient buffers");
    if (loss->id >= g->n_nodes || g->nodes[loss->id] != loss)
        return ib__error(IB_ERR_ARG, "ib_graph_backward: the loss node belongs to another graph");
    if (loss->numel != 1 || loss->dtype != IB_F32)
        return ib__error(IB_ERR_SHAPE, "ib_graph_backward: the loss '%s' must be a float scalar (it has %lld elements)",
                         loss->name, (long long)loss->numel);
    if (g->values_spent)
        return ib__error(IB_ERR_STATE,
                         "ib_graph_backward: a backward already ran since the last ib_graph_forward, and it reused "
                         "the memory of feature maps it had read: run forward again first");
    bind(g);
    /* Which nodes need a gradient: those on a path from a leaf that wants
     * one to the loss. */
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        n->needs_grad = false;
        n->grad_unset = false;
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
    ib__grad_zero_step(g, loss, loss->id);
    if (!loss->needs_grad)
        return IB_OK; /* nothing upstream asks for a gradient */
    loss->grad[0] = 1.0f;
    ib__recompute_above(g, loss->id);
    for (int i = loss->id; i >= 0; i--) {
        ib_node *n = g->nodes[i];
        ib__recompute_step(g, i);
        if (i < loss->id)
            ib__grad_zero_step(g, loss, i);
        if (n->kind == IB__OP && n->needs_grad && n->on_path && n->op->backward)
            ib__op_backward(g, n);
        ib__grad_dead_step(g, i);
    }
    g->values_spent = g->bwd_frees;
    return IB_OK;
}

void ib_graph_set_training(ib_graph *g, bool training) { g->training = training; }
bool ib_graph_training(const ib_graph *g) { return g->training; }
void ib_graph_set_sampling(ib_graph *g, bool sampling) { g->sampling = sampling; }
bool ib_graph_sampling(const ib_graph *g) { return g->sampling; }
void ib_graph_set_seed(ib_graph *g, uint64_t seed) { g->seed = seed; }
void ib_graph_set_step(ib_graph *g, uint64_t step) { g->step = step; }
void ib_graph_set_row_offset(ib_graph *g, int64_t row) { g->row_offset = row > 0 ? row : 0; }
void ib_graph_set_sync_batchnorm(ib_graph *g, int64_t global_batch) { g->sync_bn_batch = global_batch > 0 ? global_batch : 0; }
int64_t ib_graph_row_offset(const ib_graph *g) { return g->row_offset; }
uint64_t ib_graph_step(const ib_graph *g) { return g->step; }
void ib_graph_set_param_grads(ib_graph *g, bool on) { g->param_grads = on; }
size_t ib_graph_memory(const ib_graph *g) { return g->arena_bytes; }
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
ib_node *ib_node_keep(ib_node *n)
{
    if (n)
        n->keep = true;
    return n;
}
ib_node *ib_node_set_requires_grad(ib_node *n, bool on)
{
    if (n)
        n->requires_grad = on;
    return n;
}
