/*
 * internal.h — the engine's private contract: the node layout, the op table
 * and the helpers every op file uses.  Not installed.
 *
 * How an op is written (see src/ops/activation.c for a short example):
 *  - a static `const ib_op` with a name, a forward and a backward;
 *  - a public constructor that checks shapes (failing with ib__fail) and
 *    calls ib__node_new; attributes go in n->f[] (floats) and n->i[] (ints);
 *  - forward writes n->value from n->in[k]->value;
 *  - backward ADDS d(loss)/d(in[k]) into n->in[k]->grad, only for inputs
 *    with in[k]->needs_grad, reading n->grad.  (ib_graph_backward zeroes an
 *    activation gradient just before the first op that adds into it; the
 *    buffer is shared with other gradients whose lifetimes do not overlap,
 *    so writing a gradient nobody asked for can clobber nothing but must
 *    still be avoided, and an op must read no gradient but n->grad and
 *    write none but its inputs'.)
 *  - forward reads only its inputs' values (and its own scratch); backward
 *    may read its inputs' values and its own value: a forward-only graph
 *    (ib_graph_set_forward_only) reuses a value's buffer after its last
 *    consumer has run.  An op whose backward reads only some of them says
 *    which in bwd_reads (below); a training graph that reuses values
 *    (ib_graph_set_reuse_values) then frees the others once forward is past
 *    their last consumer, and those after the last backward reading them.
 *    Read the backward (and every kernel it calls) before declaring: a
 *    value read but not declared has been reused by then (tests/
 *    test_memory_plan.c sees different bits; ASan may report the read).
 *  - memory an op keeps from forward to backward (a dropout mask, argmax
 *    indices, batch statistics) is asked for with n->scratch_bytes at
 *    construction; memory it needs only during one call (an im2col buffer)
 *    with n->tmp_bytes, which all nodes share.  Both are allocated once by
 *    ib_graph_compile, 64-byte aligned.
 */
#ifndef IB_INTERNAL_H
#define IB_INTERNAL_H

#include "ibnet.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IB_MAX_DIMS 4
#define IB_MAX_INPUTS 8
#define IB_NAME_MAX 128
#define IB_ALIGN 64

typedef struct ib_op {
    const char *name;
    void (*forward)(ib_graph *g, ib_node *n);
    void (*backward)(ib_graph *g, ib_node *n);
    /* The values backward reads: IB__BWD_DECLARED plus IB__READS_IN(k) for
     * input k and IB__READS_OUT for the op's own value.  IB__READS_ALL (0,
     * not declared) means every input and the output; an op without a
     * backward reads nothing.  Scratch, parameters and the shapes of the
     * inputs are always available. */
    unsigned bwd_reads;
    /* Writes the value again from the inputs (and what forward left in
     * scratch), the same bits as forward and with none of its side effects
     * (batch norm's running statistics): ops cheap enough that a training
     * graph may recompute their value during backward instead of keeping
     * it (ib_graph_set_recompute).  NULL: never recomputed. */
    void (*recompute)(ib_graph *g, ib_node *n);
    /* Called by compile before memory is planned, when the graph's options
     * (forward-only, ...) are final: sets what depends on them, such as
     * n->tmp_bytes (a forward-only graph needs no backward workspace, and
     * a conv then builds no backward plans).  NULL: nothing to do. */
    void (*prepare)(ib_graph *g, ib_node *n);
    /* IB__ASSIGNS_IN(k): backward can write input k's gradient with "=" instead
     * of "+=" (every element, whatever the op's options) when the graph says
     * so (ib__grad_assign): the graph then skips zeroing that gradient. */
    unsigned grad_assign;
    /* Backward computes input 0's gradient element by element from the
     * same element of its own (dx[k] from dy[k], nothing else of dy), so
     * dx may be written over dy: the graph then gives both gradients one
     * buffer when input 0's gradient is assigned by this op (a ReLU's
     * input gradient takes the place of its output's). */
    bool grad_in_place;
    /* Which layouts of 4-D activations the op handles (see src/core/layout.c):
     * IB__LAYOUT_PLAIN (0): NCHW only.  IB__LAYOUT_ELEMENTWISE: the op is
     * unaware of layouts; it may run on blocked tensors when its output and
     * every input have one shape and one layout.  IB__LAYOUT_TIED: the op
     * reads n->layout and handles the blocked layout itself; its 4-D inputs
     * are in its output's layout.  IB__LAYOUT_FREE: the op reads the layout
     * of its input 0 and of its output, each plain or blocked. */
    unsigned char layout;
    /* IB__LAYOUT_TIED ops: whether this node's options have a blocked path
     * (average pooling has one for its 1x1 subsample only).  NULL: all do. */
    bool (*blocked_ok)(const ib_node *n);
    /* The channel block of the layout the op's kernels compute in (a
     * convolution's: oneDNN's), which compile keeps the activations around
     * it in; 0 or NULL: none. */
    int (*layout_block)(void);
} ib_op;

enum { IB__LAYOUT_PLAIN = 0, IB__LAYOUT_ELEMENTWISE, IB__LAYOUT_TIED, IB__LAYOUT_FREE, IB__LAYOUT_OUT };

#define IB__ASSIGNS_IN(k) (1u << (k))

#define IB__BWD_DECLARED (1u << 31)
#define IB__READS_IN(k) (1u << (k))
#define IB__READS_OUT (1u << IB_MAX_INPUTS)
#define IB__READS_NOTHING IB__BWD_DECLARED
#define IB__READS_ALL 0u /* not declared: every input and the output */
#define IB__READS_ALL_IN ((1u << IB_MAX_INPUTS) - 1u)

typedef enum ib__node_kind { IB__INPUT, IB__PARAM, IB__OP } ib__node_kind;

struct ib_node {
    int id;                /* position in the graph (topological order) */
    ib__node_kind kind;
    const ib_op *op;       /* NULL for leaves */
    ib_dtype dtype;
    int ndim;
    int64_t shape[IB_MAX_DIMS];
    int64_t numel;
    float *value;          /* (numel) bound by compile (arena) or the store */
    float *grad;           /* (numel) NULL for int nodes */
    int n_in;
    ib_node *in[IB_MAX_INPUTS];
    double f[6];           /* float attributes of the op */
    int64_t i[6];          /* integer attributes of the op */
    size_t scratch_bytes;  /* kept from forward to backward, per node */
    void *scratch;
    size_t tmp_bytes;      /* needed during one call only (g->tmp), planned per pass: */
    void *tmp_fwd, *tmp_bwd; /* the workspace of its forward and of its backward, in the arena */
    ib_node *view_of;      /* value and grad alias this node's buffers */
    int param_index;       /* IB__PARAM: index in the store */
    bool requires_grad;    /* inputs: caller asked for d/dx */
    bool needs_grad;       /* computed before each backward */
    bool on_path;          /* an ancestor of the loss of the current backward */
    bool no_grad_op;       /* op output carries no gradient (argmax, one_hot, stop_gradient) */
    bool random;           /* draws from the keyed RNG (sampling, dropout): see ib_graph_first_random */
    bool keep;             /* ib_node_keep: value and grad outlive the pass (set on the root of a view by compile) */
    /* Memory plan (graph.c), for nodes with their own buffers: */
    bool grad_pooled;      /* grad shares memory: valid from backward step grad_start down to id */
    bool value_pooled;     /* value valid from forward step id to value_last, or to value_bwd's backward */
    int grad_start;        /* the highest node id whose backward may add into grad */
    int grad_writer;       /* the op that writes grad first (its highest consumer) and assigns it (op->grad_assign); -1: none */
    bool grad_unset;       /* this backward: grad was not zeroed, grad_writer assigns it */
    int grad_shares;       /* grad is the buffer of this node's grad (its writer, op->grad_in_place); -1: its own */
    bool grad_handed_on;   /* grad's buffer becomes an input's gradient in this op's backward: not poisoned after it */
    int value_last;        /* the last forward step that reads value */
    int value_bwd;         /* the lowest node id whose backward reads value; -1: none */
    int recompute_at;      /* recomputed before the backward of this node id (ib_graph_set_recompute); -1: not */
    float *value_fwd;      /* recomputed nodes: the value's buffer in forward ... */
    float *value_re;       /* ... and the one backward recomputes it into */
    /* The layout of value and grad: 0 plain NCHW (every node but some 4-D
     * activations), B > 0 oneDNN's blocked nChw<B>c, element (n, c, h, w)
     * at ((n * C/B + c/B) * H*W + h*W + w) * B + c%B, C a multiple of B.
     * Chosen by compile (src/core/layout.c) for values no caller reads. */
    int layout;
    char name[IB_NAME_MAX];
};

struct ib_graph {
    ib_params *params;
    ib_node **nodes;
    int n_nodes, cap_nodes;
    void *arena;           /* one block: values, grads, scratch */
    size_t arena_bytes;
    void *tmp;             /* the workspace of the op running now (its tmp_fwd or tmp_bwd) */
    bool compiled, training, sampling, param_grads;
    uint64_t seed, step;
    /* ib_graph_set_row_offset: the global index of row 0 of the batch, so a
     * rank of a data-parallel run draws the noise of the rows it holds. */
    int64_t row_offset;
    int64_t sync_bn_batch; /* ib_graph_set_sync_batchnorm: the global batch (0: off) */
    int init_style; /* ib_init_style of the ib_nn_* layers */
    bool forward_only;     /* ib_graph_set_forward_only: no gradients, values reused */
    bool no_grad_assign;   /* every gradient zeroed and added into (tests compare the two ways) */
    bool reuse_values;     /* ib_graph_set_reuse_values: a training graph reuses feature maps */
    bool recompute;        /* ib_graph_set_recompute: and recomputes cheap ones in backward */
    int layout_block;      /* blocked activations: -1 the conv kernels' choice (default), 0 none, or B (tests) */
    char param_scope[64];  /* "" or "view2.": prepended to the names of the parameters created or shared
                              from now on (ib_model_build_scoped: two copies of a model in one store) */
    /* Compile's plan, as lists of node ids by step (n_nodes + 1 offsets each):
     * zero_ids[zero_at[i] .. zero_at[i+1]) are the pooled gradients whose
     * lifetime starts at backward step i; dead_ids[dead_at[i] ..) the pooled
     * values whose lifetime ends after forward step i; bdead_ids[bdead_at[i]
     * ..) those whose lifetime ends after backward step i (training graphs). */
    int *zero_at, *zero_ids, *dead_at, *dead_ids, *bdead_at, *bdead_ids;
    int *re_at, *re_ids;   /* values recomputed before backward step i, in id order */
    bool bwd_frees;        /* some value dies during backward */
    bool values_spent;     /* a backward has run since the last full forward */
    ib_status status;
    char err[512];
};

/* ---- errors ---- */
/* Record a message for ib_last_error() and return s. */
ib_status ib__error(ib_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record the first build error in g (and as last error); returns NULL. */
ib_node *ib__fail(ib_graph *g, ib_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ib__assert_fail(const char *file, int line, const char *expr);
#define IB_ASSERT(e) ((e) ? (void)0 : ib__assert_fail(__FILE__, __LINE__, #e))

/* ---- small helpers (util.c) ---- */
/* Seconds on a monotonic clock. */
double ib__now_s(void);
/* cpu_isa.c: whether the kernels with an AVX-512 path take it (the CPU has
 * AVX-512 F, DQ, BW and VL, and IBNET_ISA is not avx2); whether the CPU has
 * them at all; tests force the AVX2 paths to compare the two. */
bool ib__cpu_avx512(void);
bool ib__cpu_has_avx512(void);
void ib__cpu_force_avx2(bool on);
/* The whole file as a malloc'd NUL-terminated text (len: bytes before the
 * NUL, may be NULL); NULL with errno set when it cannot be opened or read,
 * or is larger than max_bytes (EFBIG). */
char *ib__read_file(const char *path, size_t max_bytes, size_t *len);
/* mkdir -p: every missing directory of the path, of any length. */
ib_status ib__mkdirs(const char *dir);
/* The double nearest to the shortest decimal that rounds to x: what a
 * PyTorch user writes in Python for the float a config holds. */
double ib__as_decimal(float x);
/* A big-endian 32-bit unsigned integer (IDX headers, PNG chunks). */
uint32_t ib__be32(const uint8_t *p);

/* ---- graph building ---- */
/* Create an op node; returns NULL (propagating) if g has failed or any input
 * is NULL or belongs to another graph.  Shape is copied. */
ib_node *ib__node_new(ib_graph *g, const ib_op *op, int n_in, ib_node *const *in, int ndim,
                      const int64_t *shape);
/* True when the graph can take a new node built from these inputs. */
bool ib__inputs_ok(ib_graph *g, int n_in, ib_node *const *in);
/* "(2, 3, 4)" into buf, for error messages. */
const char *ib__shape_str(const ib_node *n, char *buf, size_t len);
int64_t ib__numel(int ndim, const int64_t *shape);
bool ib__same_shape(const ib_node *a, const ib_node *b);
/* Resolve a possibly negative axis; -1 if out of range. */
int ib__axis(const ib_node *n, int axis);

/* Elements [first, first + n) of ib_rng_normal(seed, stream, step, ...),
 * serially (no parallel region: callers fuse it into their own loop, as
 * the Gaussian sample does).  src/core/rng.c. */
void ib__rng_normal_range(uint64_t seed, uint64_t stream, uint64_t step, int64_t first, float *out, int64_t n);
/* Elements [first, first + n) of ib_rng_uniform(seed, stream, step, ...)
 * (parallel over large n, like ib_rng_uniform). */
void ib__rng_uniform_range(uint64_t seed, uint64_t stream, uint64_t step, int64_t first, float *out, int64_t n);
/* The element index of n's first element in the draw of the whole global
 * batch: the graph's row offset times the elements per row (axis 0 is the
 * batch axis of every random op's output). */
static inline int64_t ib__random_first(const ib_graph *g, const ib_node *n)
{
    return g->row_offset && n->ndim > 0 && n->shape[0] > 0 ? g->row_offset * (n->numel / n->shape[0]) : 0;
}

/* ---- the job's ranks (dist.c; one rank without MPI) ----
 * dp: the ranks ib_train splits batches over (1 when data parallelism is
 * off, as in a sweep).  The collectives are no-ops on one rank. */
int ib__dist_dp_rank(void);
int ib__dist_dp_size(void);
void ib__dist_sum_f32(float *x, int64_t n);  /* in place, over all ranks */
void ib__dist_sum_f64(double *x, int n);
void ib__dist_bcast(void *buf, int64_t bytes, int root);

/* The random stream of a random op: derived from the node id. */
static inline uint64_t ib__node_stream(const ib_node *n) { return 0x9E3779B97F4A7C15ull ^ (uint64_t)n->id; }

/* ---- row sums (src/ops/divergence.c): ops whose output row i is a sum of
 * elementwise terms over row i of their inputs, (N, ...) -> (N); any input
 * after the first may have a leading dim of 1 (shared by the batch). ---- */
/* Sum over one row of the op's terms; x[k] points at row i of input k. */
typedef double (*ib__row_fwd)(const ib_node *n, const float *const *x, int64_t len);
/* ADD dy * d(row sum)/d(x[k][j]) into dx[k][j] for every k with dx[k] != NULL.
 * dx[a] and dx[b] may alias (one node given twice), so update in place. */
typedef void (*ib__row_bwd)(const ib_node *n, const float *const *x, float dy, float *const *dx, int64_t len);
ib_node *ib__rowsum_new(ib_graph *g, const ib_op *op, int n_in, ib_node *const *in);
void ib__rowsum_forward(ib_node *n, ib__row_fwd fwd);
/* Backward through bwd; an input the op assigns (ib__grad_assign) is
 * zeroed row by row just before, so an op whose rows cover its inputs may
 * declare grad_assign. */
void ib__rowsum_backward(ib_graph *g, ib_node *n, ib__row_bwd bwd);

/* ---- activation layouts (layout.c) ----
 * Compile's choice of the activations kept in the convolution kernels'
 * blocked layout (n->layout), and the conversions between layouts of a
 * (n, c, hw) tensor whose c is a multiple of b. */
void ib__plan_layouts(ib_graph *g);
void ib__graph_set_layout_block(ib_graph *g, int block); /* before compile: -1 auto, 0 off, or 8/16 */
void ib__to_blocked(const float *x, float *y, int64_t n, int64_t c, int64_t hw, int b);
void ib__to_plain(const float *x, float *y, int64_t n, int64_t c, int64_t hw, int b);
/* Offset of element (i, c, q) (q: the pixel h*W + w) of a (n, c, hw)
 * tensor in layout b (0: plain). */
static inline int64_t ib__layout_at(int64_t i, int64_t c, int64_t q, int64_t ch, int64_t hw, int b)
{
    return b ? ((i * (ch / b) + c / b) * hw + q) * b + c % b : (i * ch + c) * hw + q;
}

/* ---- params internals used by the graph ---- */
float *ib__params_value_ptr(ib_params *p, int i);
float *ib__params_grad_ptr(ib_params *p, int i);

/* ---- memory ---- */
void *ib__aligned_alloc(size_t bytes);
void ib__aligned_free(void *p);
/* Offsets for buffers with lifetimes [lo, hi] (inclusive steps): two
 * buffers share bytes only if their lifetimes are disjoint.  Greedy: the
 * largest first, each into the smallest gap that fits among the buffers it
 * overlaps in time.  Sizes are rounded to IB_ALIGN; returns the total. */
typedef struct ib__plan_item {
    size_t bytes, offset;
    int lo, hi;
} ib__plan_item;
size_t ib__plan_offsets(ib__plan_item *items, int n);
/* Under AddressSanitizer, mark a dead buffer unreadable (and alive again);
 * no-ops otherwise. */
void ib__poison(const void *p, size_t bytes);
void ib__unpoison(const void *p, size_t bytes);

/* ---- backward internals (bench/train_step.c's per-op profile mirrors
 * ib_graph_backward with them) ---- */
/* Zero the activation gradients whose lifetime starts at backward step i:
 * with i == loss->id, every gradient live at the start (inputs', kept
 * nodes' and those added into by ops after the loss).  Uses the needs_grad
 * and on_path flags of the current backward. */
void ib__grad_zero_step(ib_graph *g, const ib_node *loss, int i);
/* After backward step i: node i's pooled gradient, and the pooled values
 * whose last reader is node i's backward, are dead (poisoned under ASan). */
void ib__grad_dead_step(ib_graph *g, int i);
/* Forward step i: node i's op, its value revived first and the values it
 * read last dead after. */
void ib__forward_step(ib_graph *g, int i);
/* Node n's op alone, with g->tmp pointed at its workspace (benchmarks). */
void ib__op_forward(ib_graph *g, ib_node *n);
void ib__op_backward(ib_graph *g, ib_node *n);
/* Before backward step i: recompute the values planned for it.  A backward
 * from `loss` first calls ib__recompute_above(g, loss->id) for the values
 * whose first reader lies after the loss. */
void ib__recompute_step(ib_graph *g, int i);
void ib__recompute_above(ib_graph *g, int loss_id);

/* ---- threads ---- */
/* Parallelise loops of at least this many elements. */
#define IB_PAR_MIN 32768
/* for (k = 0; k < count; k++) body; as one OpenMP "parallel for simd"
 * (static schedule) when count exceeds IB_PAR_MIN: the elementwise loop of
 * the ops whose elements are independent (body reads k). */
/* In a backward: true when op n must write input k's gradient with "=" (the
 * graph did not zero it: n is its only writer and n's op can assign it). */
static inline bool ib__grad_assign(const ib_node *n, int k)
{
    return n->in[k]->grad_unset && n->in[k]->grad_writer == n->id;
}

/* dx = v or dx += v, elementwise over count, as ib__grad_assign(n, k) says. */
#define IB__GRAD_LOOP(n_, k_, count, dx, v)                                                                            \
    do {                                                                                                               \
        if (ib__grad_assign((n_), (k_)))                                                                               \
            IB__PAR_LOOP(count, (dx)[k] = (v));                                                                        \
        else                                                                                                           \
            IB__PAR_LOOP(count, (dx)[k] += (v));                                                                       \
    } while (0)

#define IB__PAR_LOOP(count, body)                                                                                      \
    do {                                                                                                               \
        int64_t count_ = (count);                                                                                      \
        _Pragma("omp parallel for simd schedule(static) if (count_ > IB_PAR_MIN)") for (int64_t k = 0; k < count_;   \
                                                                                        k++)                           \
        {                                                                                                              \
            body;                                                                                                      \
        }                                                                                                              \
    } while (0)

/* ---- the EMA fused into the optimizer's pass (optim.c, ema.c) ----
 * ib__optim_set_ema(o, e): from now on each successful ib_optim_step also
 * does e's ib_ema_update, segment by segment right after writing the new
 * weights (still in cache: one pass over the weights instead of two), the
 * same arithmetic and bits as the separate update (ib__ema_step); the
 * caller no longer calls ib_ema_update.  NULL turns it off.  The trainer
 * uses it; the public ib_ema_update stays as it was. */
void ib__optim_set_ema(ib_optim *o, ib_ema *e);
/* ib__optim_set_zero_grads(o, true): each successful step zeroes the
 * gradients it consumed, segment by segment after the update (in cache),
 * as ib_params_zero_grad would before the next backward: a caller whose
 * backward writes only the gradients of trainable, unfrozen parameters
 * (what ib_graph_backward does) may skip that call after such a step. */
void ib__optim_set_zero_grads(ib_optim *o, bool on);
/* One average step, shared by both paths so that they compile one
 * expression. */
static inline float ib__ema_step(float shadow, float value, float rate) { return shadow - (shadow - value) * rate; }
/* The shadow to update and the rate (1 - decay), the EMA synced to the
 * store; NULL when it cannot take an update now (swapped, out of memory):
 * the optimizer then runs ib_ema_update after its step instead. */
float *ib__ema_fused_begin(ib_ema *e, float *rate);
/* After a successful fused step: the update counts ib_ema_update keeps. */
void ib__ema_fused_end(ib_ema *e);

#endif /* IB_INTERNAL_H */
