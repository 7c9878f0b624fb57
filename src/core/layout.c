/*
 * layout.c — which activations a compiled graph keeps in oneDNN's blocked
 * layout (nChw16c with AVX-512, nChw8c with AVX2), and the conversions
 * between that layout and NCHW.
 *
 * Why: oneDNN's convolutions compute in the blocked layout; with NCHW
 * tensors every pass reorders its inputs in and its outputs back, 27-44 ms
 * of a 150-200 ms ResNet-20 training step at two threads
 * (bench/conv_limit.py).  Between two convolutions lie only batch norm,
 * ReLU, the residual add and pooling, and those run as fast on the blocked
 * layout (a vector then holds B channels of one pixel), so the activations
 * between convolutions stay blocked and the reorders go.
 *
 * The rule.  A node is blocked when it is a 4-D float activation whose
 * channel count is a multiple of B, that no caller reads (not an output,
 * not kept, not a view's source: the graph reuses its memory, so its
 * contents are the graph's business), of an op that can produce the
 * blocked layout, and every op reading it reads the blocked layout too:
 * convolutions and global pooling read either layout (IB__LAYOUT_FREE),
 * elementwise ops and the layout-aware ones (batch norm, the 1x1 subsample,
 * channel padding) read their output's layout, and a VIB cell's Gaussian
 * sample reads NCHW and writes either (IB__LAYOUT_OUT), so that the stage
 * after a cell is blocked too.  (Max-pooling reads NCHW
 * only: a blocked path was slower than the reorders it saves on LeNet,
 * whose convolutions gain nothing from the layout.)  So a group of
 * nodes joined by such ops is blocked or plain as a whole; compile finds
 * the largest set by removing, until nothing changes, every candidate
 * with a reader or an input that rules it out.  Gradients share their
 * value's layout.
 *
 * Only graphs that reuse values (a training graph with
 * ib_graph_set_reuse_values, or a forward-only one) are laid out: in the
 * others the caller may read any value.  IBNET_LAYOUT=plain keeps every
 * graph plain (for comparisons); the numbers are the same bits either way
 * (tests/test_layout.c), as the blocked paths of the ops sum in the plain
 * ones' order.
 */
#include "internal.h"

void ib__graph_set_layout_block(ib_graph *g, int block)
{
    if (g && !g->compiled && (block == -1 || block == 0 || block == 8 || block == 16)) /* the blocks the ops handle */
        g->layout_block = block;
}

/* The block the graph's convolutions compute in (0: they have none, or
 * there are none), unless the environment asks for plain layouts. */
static int auto_block(const ib_graph *g)
{
    const char *env = getenv("IBNET_LAYOUT");
    if (env && strcmp(env, "plain") == 0)
        return 0;
    if (env && *env && strcmp(env, "blocked") != 0) {
        static bool warned;
        if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
            fprintf(stderr, "ibnet: IBNET_LAYOUT=%s is not plain or blocked; ignored\n", env);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ib_node *n = g->nodes[i];
        if (n->kind == IB__OP && n->op->layout_block)
            return n->op->layout_block();
    }
    return 0;
}

/* Whether consumer c can read a blocked input, the candidates being cand. */
static bool reads_blocked(const ib_node *c, const bool *cand)
{
    if (c->kind != IB__OP)
        return false;
    switch (c->op->layout) {
    case IB__LAYOUT_FREE:
        return true;
    case IB__LAYOUT_ELEMENTWISE:
    case IB__LAYOUT_TIED:
        return cand[c->id];
    default:
        return false;
    }
}

/* Whether candidate n's inputs allow it to stay blocked. */
static bool inputs_allow(const ib_node *n, const bool *cand)
{
    for (int k = 0; k < n->n_in; k++) {
        const ib_node *x = n->in[k];
        if (n->op->layout == IB__LAYOUT_ELEMENTWISE && !(cand[x->id] && ib__same_shape(x, n)))
            return false;
        if (n->op->layout == IB__LAYOUT_TIED && x->ndim == 4 && x->dtype == IB_F32 && !cand[x->id])
            return false;
    }
    return true;
}

void ib__plan_layouts(ib_graph *g)
{
    int N = g->n_nodes;
    for (int i = 0; i < N; i++)
        g->nodes[i]->layout = 0;
    int b = g->layout_block < 0 ? auto_block(g) : g->layout_block;
    if (b <= 0 || !(g->reuse_values || g->forward_only))
        return;
    int *cons_at = calloc((size_t)N + 2, sizeof *cons_at), *cons = NULL;
    bool *cand = calloc((size_t)N + 1, sizeof *cand), *viewed = calloc((size_t)N + 1, sizeof *viewed);
    int n_edges = 0;
    for (int i = 0; i < N; i++)
        n_edges += g->nodes[i]->n_in;
    cons = malloc((size_t)n_edges * sizeof *cons + 1);
    if (!cons_at || !cand || !viewed || !cons)
        goto done; /* out of memory: everything stays plain, which is always right */
    /* The consumers of each node, in CSR form. */
    for (int i = 0; i < N; i++) {
        const ib_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            cons_at[n->in[k]->id + 2]++;
        if (n->view_of)
            viewed[n->view_of->id] = true;
    }
    for (int i = 0; i < N; i++)
        cons_at[i + 2] += cons_at[i + 1];
    for (int i = 0; i < N; i++) {
        const ib_node *n = g->nodes[i];
        for (int k = 0; k < n->n_in; k++)
            cons[cons_at[n->in[k]->id + 1]++] = i;
    }
    for (int i = 0; i < N; i++) {
        const ib_node *n = g->nodes[i];
        cand[i] = n->kind == IB__OP && n->op->layout != IB__LAYOUT_PLAIN && n->dtype == IB_F32 && n->ndim == 4 &&
                  n->shape[1] % b == 0 && !n->view_of && !viewed[i] && !n->keep && cons_at[i + 1] > cons_at[i] &&
                  (!n->op->blocked_ok || n->op->blocked_ok(n));
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < N; i++) {
            if (!cand[i])
                continue;
            bool ok = inputs_allow(g->nodes[i], cand);
            for (int e = cons_at[i]; ok && e < cons_at[i + 1]; e++)
                ok = reads_blocked(g->nodes[cons[e]], cand);
            if (!ok)
                cand[i] = false, changed = true;
        }
    }
    for (int i = 0; i < N; i++)
        if (cand[i])
            g->nodes[i]->layout = b;
done:
    free(cons_at);
    free(cons);
    free(cand);
    free(viewed);
}

/* Both conversions run in parallel over (image, channel block) and copy
 * exactly, so a converted tensor holds the same bits. */
void ib__to_blocked(const float *x, float *y, int64_t n, int64_t c, int64_t hw, int b)
{
    int64_t units = n * (c / b);
#pragma omp parallel for schedule(static) if (n * c * hw > IB_PAR_MIN)
    for (int64_t u = 0; u < units; u++) {
        const float *src = x + u * b * hw; /* channels u*b.. of image u/(c/b), planes in a row */
        float *dst = y + u * b * hw;
        for (int64_t q = 0; q < hw; q++)
            for (int l = 0; l < b; l++)
                dst[q * b + l] = src[l * hw + q];
    }
}

void ib__to_plain(const float *x, float *y, int64_t n, int64_t c, int64_t hw, int b)
{
    int64_t units = n * (c / b);
#pragma omp parallel for schedule(static) if (n * c * hw > IB_PAR_MIN)
    for (int64_t u = 0; u < units; u++) {
        const float *src = x + u * b * hw;
        float *dst = y + u * b * hw;
        for (int l = 0; l < b; l++)
            for (int64_t q = 0; q < hw; q++)
                dst[l * hw + q] = src[q * b + l];
    }
}
