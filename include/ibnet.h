/*
 * ibnet.h — the one public header of libibnet, a C11 library for
 * information-bottleneck deep learning.
 *
 * The shape of the library: a parameter store (ib_params) holds every
 * weight of a model in one contiguous buffer; graphs (ib_graph) are built
 * once for a model and batch shape from op constructors, compiled (all
 * memory sized and allocated exactly), then executed every step with
 * ib_graph_forward / ib_graph_backward.  Several graphs may share one
 * store (a training graph, an evaluation graph of another batch size, an
 * attack graph that needs dL/dx).
 *
 * Conventions
 *  - Every call that can fail returns ib_status (0 = IB_OK, negative =
 *    error); ib_last_error() gives a message that says what and where.
 *  - Op constructors never fail loudly: on a shape error they record the
 *    error in the graph and return NULL; any constructor given a NULL input
 *    returns NULL.  So a whole model is built and checked once, with
 *    ib_graph_status() or the status of ib_graph_compile().
 *  - Tensors are float32, row-major, contiguous, up to 4-D (NCHW).
 *    Labels are int32 tensors (ib_input_labels).
 *  - Gradients: ib_graph_backward() overwrites the gradients of every
 *    input (and kept node, ib_node_keep) of the graph, and ADDS into
 *    parameter gradients (so two graphs may contribute to one step); clear
 *    them with ib_params_zero_grad().  Intermediate gradients share memory
 *    and are undefined after backward.
 *  - Randomness is keyed by (seed, stream, step, element), never by thread:
 *    results do not depend on the thread count.
 */
#ifndef IBNET_H
#define IBNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Only these declarations are exported from libibnet.so: the library is
 * built with -fvisibility=hidden (docs/packaging.md). */
#pragma GCC visibility push(default)

#ifdef __cplusplus
extern "C" {
#endif

#define IBNET_VERSION_MAJOR 0
#define IBNET_VERSION_MINOR 1
#define IBNET_VERSION_PATCH 0
#define IBNET_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------
 * Status and errors
 * ---------------------------------------------------------------------- */
typedef enum ib_status {
    IB_OK = 0,
    IB_ERR_ARG = -1,        /* a bad argument (NULL, negative size, bad enum) */
    IB_ERR_SHAPE = -2,      /* tensor shapes do not fit the op */
    IB_ERR_NOMEM = -3,      /* an allocation failed */
    IB_ERR_IO = -4,         /* a file could not be opened, read or written */
    IB_ERR_FORMAT = -5,     /* a file is corrupt, truncated or of another kind */
    IB_ERR_MISMATCH = -6,   /* a file does not fit the model (names, shapes) */
    IB_ERR_STATE = -7,      /* a call made at the wrong time (e.g. not compiled) */
    IB_ERR_NUMERIC = -8,    /* NaN or Inf where a finite number is required */
    IB_ERR_UNSUPPORTED = -9 /* a feature this build does not have */
} ib_status;

/* A short fixed description of a status code. */
const char *ib_strerror(ib_status s);

/* The detailed message of the last error raised on this thread (what and
 * where: file, tensor or node name).  Never NULL; "" when none. */
const char *ib_last_error(void);

/* Internal invariants go through an assert hook the caller may replace
 * (the default prints the message and aborts).  Public calls never abort
 * on bad input: they return a status. */
typedef void (*ib_assert_hook)(const char *file, int line, const char *expr);
void ib_set_assert_hook(ib_assert_hook hook);

const char *ib_version(void);

/* ---- distributed runs over MPI (docs/mpi.md) ----
 * A build with MPI (CMake option IBNET_MPI, on when Open MPI's development
 * files are found) runs as before when started without a launcher; under
 * mpirun/srun, ib_dist_init joins the job (MPI_Init_thread with
 * MPI_THREAD_FUNNELED: only the main thread calls MPI) and ib_train then
 * trains data-parallel over the ranks.  A build without MPI started by a
 * launcher with more than one rank gets IB_ERR_ARG from ib_dist_init. */
ib_status ib_dist_init(int *argc, char ***argv);
/* Leaves the job (MPI_Finalize) if ib_dist_init joined one. */
void ib_dist_finalize(void);
/* Ends every rank of the job with this exit code (exit() without MPI). */
void ib_dist_abort(int code);
int ib_dist_rank(void); /* 0 without a job */
int ib_dist_size(void); /* 1 without a job */
/* The MPI library this build uses (its version string), or NULL for a
 * build without MPI. */
const char *ib_dist_library(void);
/* Whether ib_train splits each batch over the ranks (default true); a
 * sweep runs whole runs on each rank and turns it off. */
void ib_dist_set_data_parallel(bool on);
/* Waits until every rank has called it. */
void ib_dist_barrier(void);
/* A counter shared by all ranks, for handing out tasks dynamically: each
 * ib_dist_counter_next returns 0, 1, 2, ... once across the whole job
 * (an atomic fetch-and-add on rank 0's memory, MPI one-sided), so a rank
 * that finishes early takes the next task.  new and free are collective. */
typedef struct ib_dist_counter ib_dist_counter;
ib_status ib_dist_counter_new(ib_dist_counter **out);
int64_t ib_dist_counter_next(ib_dist_counter *c);
void ib_dist_counter_free(ib_dist_counter *c);

/* ------------------------------------------------------------------------
 * Threads.  One OpenMP pool is shared by ibnet's kernels and OpenBLAS.
 * The count comes from ib_set_threads(), else IBNET_THREADS, else the
 * number of cores.
 * ---------------------------------------------------------------------- */
#define IB_MAX_THREADS 4096
/* n < 1: all cores; n above IB_MAX_THREADS: IB_MAX_THREADS. */
void ib_set_threads(int n);
/* The count in use.  The first call without ib_set_threads reads
 * IBNET_THREADS: an integer in 1..IB_MAX_THREADS (0 or unset: all cores);
 * anything else is named in a warning on stderr and all cores are used. */
int ib_get_threads(void);

/* ------------------------------------------------------------------------
 * Files and time (src/core/util.c, src/io/atomic_file.c): what every
 * program that writes results needs, so that the command line and the
 * bindings write results the way the trainer writes checkpoints.
 * ---------------------------------------------------------------------- */
/* Replace path with n bytes, all at once or not at all: written to
 * PATH.tmp.<pid>, flushed, fsync'ed and renamed over path, so a reader or
 * a crash never sees a torn file; on failure the old file is untouched. */
ib_status ib_file_write_atomic(const char *path, const void *data, size_t n);
/* The whole file as a malloc'd NUL-terminated buffer (free it); *len (may
 * be NULL) = bytes before the NUL.  NULL, with ib_last_error() naming the
 * file, when it cannot be read or holds more than max_bytes. */
char *ib_file_read(const char *path, size_t max_bytes, size_t *len);
/* mkdir -p: every missing directory of the path. */
ib_status ib_mkdirs(const char *dir);
/* Seconds on a monotonic clock (differences only). */
double ib_seconds(void);

/* ------------------------------------------------------------------------
 * Counter-based random numbers (Philox4x32-10).  Element i of a draw keyed
 * by (seed, stream, step) is the same whatever the thread count.
 * ---------------------------------------------------------------------- */
void ib_rng_uniform(uint64_t seed, uint64_t stream, uint64_t step, float *out, int64_t n);   /* U[0,1) */
void ib_rng_normal(uint64_t seed, uint64_t stream, uint64_t step, float *out, int64_t n);    /* N(0,1) */
/* One 64-bit value, for seeding shuffles and choices. */
uint64_t ib_rng_u64(uint64_t seed, uint64_t stream, uint64_t step, uint64_t index);
/* A stream id from a name (FNV-1a), so streams do not depend on creation order. */
uint64_t ib_rng_stream_of(const char *name);

/* ------------------------------------------------------------------------
 * Parameter store: every parameter of a model in one contiguous value
 * buffer and one contiguous gradient buffer.  A parameter is known by its
 * index and by a PyTorch-style name ("fc1.weight").
 * ---------------------------------------------------------------------- */
typedef struct ib_params ib_params;

typedef enum ib_init_kind {
    IB_INIT_ZEROS,
    IB_INIT_ONES,
    IB_INIT_CONSTANT,        /* every value = a */
    IB_INIT_UNIFORM,         /* U[a, b) */
    IB_INIT_NORMAL,          /* N(a, b^2) */
    IB_INIT_KAIMING_UNIFORM, /* PyTorch's default for Linear/Conv weights:
                                U(-g*sqrt(3/fan_in), +), g = sqrt(2/(1+a^2)); a = sqrt(5) gives 1/sqrt(fan_in) */
    IB_INIT_KAIMING_NORMAL,  /* N(0, (g/sqrt(fan_in))^2), g = sqrt(2/(1+a^2)) */
    IB_INIT_XAVIER_UNIFORM,  /* U(-a*sqrt(6/(fan_in+fan_out)), +); a = gain (0 means 1) */
    IB_INIT_XAVIER_NORMAL,   /* N(0, a^2 * 2/(fan_in+fan_out)); a = gain (0 means 1) */
    IB_INIT_TRUNC_NORMAL     /* N(a, b^2) truncated to [a-2b, a+2b]: values outside are drawn again
                                (Keras's TruncatedNormal; the learned prior of a bernoulli layer) */
} ib_init_kind;

typedef struct ib_init {
    ib_init_kind kind;
    float a, b;
} ib_init;

/* fan_in = shape[1]*shape[2]*..., fan_out = shape[0]*shape[2]*... (PyTorch's rule). */
#define IB_INIT_PYTORCH_DEFAULT ((ib_init){IB_INIT_KAIMING_UNIFORM, 2.2360679775f, 0.0f})

/* Kinds of parameter: trainable, or a buffer (batch-norm running statistics)
 * that is saved and loaded but never updated by an optimizer. */
typedef enum ib_param_kind { IB_PARAM_TRAINABLE = 0, IB_PARAM_BUFFER = 1 } ib_param_kind;

/* seed keys the initialisers; the stream of a parameter is derived from its
 * name, so initial values do not depend on the order of creation. */
ib_params *ib_params_new(uint64_t seed);
void ib_params_free(ib_params *p);

/* Get-or-create: if `name` exists with the same shape its index is returned
 * (so building a second graph from the same model code shares the weights);
 * if it exists with another shape, IB_ERR_SHAPE.  Returns an index >= 0 or
 * a negative ib_status. */
int ib_params_get(ib_params *p, const char *name, int ndim, const int64_t *shape, ib_init init,
                  ib_param_kind kind);
int ib_params_find(const ib_params *p, const char *name); /* index or -1 */
int ib_params_count(const ib_params *p);
const char *ib_params_name(const ib_params *p, int i);
int ib_params_ndim(const ib_params *p, int i);
const int64_t *ib_params_shape(const ib_params *p, int i);
int64_t ib_params_numel(const ib_params *p, int i);
ib_param_kind ib_params_kind(const ib_params *p, int i);
float *ib_params_value(ib_params *p, int i);
float *ib_params_grad(ib_params *p, int i);
/* Offset of parameter i, in floats, inside the contiguous buffers. */
int64_t ib_params_offset(const ib_params *p, int i);
/* The contiguous buffers (length = ib_params_total()).  Pointers stay
 * valid until the next parameter is created. */
float *ib_params_values(ib_params *p);
float *ib_params_grads(ib_params *p);
int64_t ib_params_total(const ib_params *p);
/* Number of trainable scalars (buffers excluded). */
int64_t ib_params_trainable_total(const ib_params *p);
void ib_params_zero_grad(ib_params *p);
/* Freeze (or unfreeze) every parameter whose name starts with prefix
 * ("" = all): frozen parameters get no gradient and are not updated; a
 * batch norm whose gamma and beta are frozen uses and keeps its running
 * statistics (ib_batchnorm).
 * Returns the number of parameters matched. */
int ib_params_freeze(ib_params *p, const char *prefix, bool frozen);
bool ib_params_frozen(const ib_params *p, int i);
/* Copy all values (same names and shapes required). */
ib_status ib_params_copy_values(ib_params *dst, const ib_params *src);
/* True if every value and gradient is finite; else IB_ERR_NUMERIC with the
 * offending parameter named in ib_last_error(). */
ib_status ib_params_check_finite(const ib_params *p);

/* ------------------------------------------------------------------------
 * Graphs and nodes
 * ---------------------------------------------------------------------- */
typedef struct ib_graph ib_graph;
typedef struct ib_node ib_node;

typedef enum ib_dtype { IB_F32 = 0, IB_I32 = 1 } ib_dtype;

/* A graph computes with the parameters of `params` (not owned). */
ib_graph *ib_graph_new(ib_params *params);
void ib_graph_free(ib_graph *g);
ib_params *ib_graph_params(ib_graph *g);

/* IB_OK, or the first error recorded while building (message in ib_graph_error). */
ib_status ib_graph_status(const ib_graph *g);
const char *ib_graph_error(const ib_graph *g);

/* Size and allocate all memory of the graph exactly.  After this, forward
 * and backward allocate nothing.  No nodes may be added afterwards.
 * Buffers are planned by lifetime: the gradient of an op node lives only
 * during backward, from the first op that adds into it to its own backward,
 * and shares memory with gradients whose lifetimes do not overlap; in a
 * forward-only graph values are shared the same way.  What stays readable
 * after a pass: values of inputs, parameters, kept nodes (ib_node_keep) and
 * outputs (nodes nothing consumes); in a training graph every value
 * (unless ib_graph_set_reuse_values); the gradients of inputs, parameters
 * and kept nodes. */
ib_status ib_graph_compile(ib_graph *g);
/* Before compile: the graph will never run backward (inference,
 * evaluation).  It then allocates no gradients, and a value's memory is
 * reused once its last consumer has run, except for the nodes listed under
 * compile and the values ib_graph_forward_from(g, ib_graph_first_random(g))
 * reads again.  ib_graph_backward (and ib_graph_gradcheck) then fail with
 * IB_ERR_STATE.  IB_ERR_STATE after compile. */
ib_status ib_graph_set_forward_only(ib_graph *g, bool on);
bool ib_graph_forward_only(const ib_graph *g);
/* Before compile: a training graph reuses the memory of its feature maps
 * (values of 3 or 4 dimensions, nearly all of a CNN's activations): each
 * dies after its last consumer's forward, or after the last backward that
 * reads it (each op declares what its backward reads).  Readable after a
 * pass are then the values listed under compile and those of fewer than 3
 * dimensions (logits, loss terms, per-example KL); every other feature map
 * must be kept (ib_node_keep) to be read.  Backward reuses memory it read,
 * so a second ib_graph_backward needs a new ib_graph_forward first (else
 * IB_ERR_STATE), and ib_graph_forward_from is limited as in a forward-only
 * graph.  Results are the same bits.  ResNet-20 at batch 128: 382 -> 213
 * MiB of graph memory.  Default off; IB_ERR_STATE after compile. */
ib_status ib_graph_set_reuse_values(ib_graph *g, bool on);
bool ib_graph_reuse_values(const ib_graph *g);
/* Before compile, with ib_graph_set_reuse_values: backward recomputes the
 * values of cheap ops (batch norm with the statistics forward saved, ReLU,
 * add, affine) that some backward reads, just before the first such
 * backward, instead of keeping them from forward, when their inputs are
 * at hand then anyway.  In a ResNet block that is the ReLU between the two
 * convolutions (recomputed from the first conv's output, which its batch
 * norm's backward reads).  The same bits as without; ResNet-20 at batch
 * 128: 191 -> 149 MiB of graph memory, about 2% more time.  Default off;
 * IB_ERR_STATE after compile. */
ib_status ib_graph_set_recompute(ib_graph *g, bool on);
bool ib_graph_recompute(const ib_graph *g);
/* Run the ops in order.  Random ops draw with the current step, then the
 * step advances by one. */
ib_status ib_graph_forward(ib_graph *g);
/* Run only the ops from `start` on (nodes before it keep their values),
 * then advance the step.  With start = ib_graph_first_random(g) this
 * redraws the noise of a stochastic network without recomputing its
 * deterministic prefix: S-sample evaluation at the cost of the layers after
 * the first sample.  Only valid when nothing before start changed since
 * the last full forward (and, in training mode, it updates batch-norm
 * statistics again: use it in eval mode).  In a forward-only graph (or one
 * that reuses values), start must be the first random op, or a node before
 * which no reused value is read again (else IB_ERR_STATE). */
ib_status ib_graph_forward_from(ib_graph *g, ib_node *start);
/* The first op that draws random numbers (a sample without a given eps,
 * dropout, a Bernoulli or Gumbel sample), or NULL for a deterministic graph. */
ib_node *ib_graph_first_random(const ib_graph *g);
/* Reverse pass from a scalar node: d(loss)/d(loss) = 1. */
ib_status ib_graph_backward(ib_graph *g, ib_node *loss);

/* Modes.  training: dropout active, batch norm uses batch statistics and
 * updates its running statistics.  sampling: stochastic layers draw noise
 * (else they take their mean path).  Both default to true. */
void ib_graph_set_training(ib_graph *g, bool training);
bool ib_graph_training(const ib_graph *g);
void ib_graph_set_sampling(ib_graph *g, bool sampling);
bool ib_graph_sampling(const ib_graph *g);
/* The randomness of the graph: seed (default 0) and step (default 0). */
void ib_graph_set_seed(ib_graph *g, uint64_t seed);
void ib_graph_set_step(ib_graph *g, uint64_t step);
uint64_t ib_graph_step(const ib_graph *g);
/* The global index of the batch's row 0 (default 0).  Random ops key each
 * draw by the element's index in the global batch (row_offset + row), so a
 * rank of a data-parallel run holding rows [r0, r0 + n) of a global batch
 * draws exactly the noise a single process draws for those rows (axis 0
 * of a random op's output is the batch axis). */
void ib_graph_set_row_offset(ib_graph *g, int64_t row);
/* Synchronised batch norm for a data-parallel rank whose batch is part of
 * a global batch of global_batch rows (0: off, the default): a training
 * forward takes each channel's mean and variance over the global batch
 * (sums added over the ranks, MPI), and backward adds the sums it needs
 * likewise, for a rank whose gradients are then weighted by its share
 * (rows / global_batch) and summed, as ib_train does.  Every rank must run
 * the same graph in step. */
void ib_graph_set_sync_batchnorm(ib_graph *g, int64_t global_batch);
int64_t ib_graph_row_offset(const ib_graph *g);
/* When false, backward computes no parameter gradient (an attack asking for
 * dL/dx only).  Default true. */
void ib_graph_set_param_grads(ib_graph *g, bool on);
/* Bytes of activation, gradient and scratch memory owned by the graph. */
size_t ib_graph_memory(const ib_graph *g);
int ib_graph_node_count(const ib_graph *g);
/* The first node with this name, or NULL. */
ib_node *ib_graph_find(const ib_graph *g, const char *name);

/* Node access.  Pointers are valid after compile; what they hold after a
 * pass is said at ib_graph_compile.  ib_node_grad: the gradient of an
 * input, a parameter or a kept node after ib_graph_backward; an
 * intermediate op node's gradient buffer is shared with other gradients
 * and undefined after backward (keep the node to read it); NULL for int32
 * nodes and in a forward-only graph. */
float *ib_node_data(ib_node *n);
float *ib_node_grad(ib_node *n);
/* Before compile: keep n's value (and gradient) readable after forward and
 * backward, outside the shared memory of ib_graph_compile.  Returns n. */
ib_node *ib_node_keep(ib_node *n);
int32_t *ib_node_labels(ib_node *n); /* data of an IB_I32 node */
int ib_node_ndim(const ib_node *n);
int64_t ib_node_dim(const ib_node *n, int axis); /* negative axis counts from the end */
int64_t ib_node_numel(const ib_node *n);
ib_dtype ib_node_dtype(const ib_node *n);
const char *ib_node_name(const ib_node *n);
ib_node *ib_node_set_name(ib_node *n, const char *name); /* returns n */
float ib_node_scalar(const ib_node *n);                  /* element 0 */
/* Whether backward computes d(loss)/d(input) for an input node (default false). */
ib_node *ib_node_set_requires_grad(ib_node *n, bool on); /* returns n */

/* Finite-difference gradient check of a scalar node `loss` with respect to
 * the input or parameter node `wrt` (central differences in float32 with
 * step eps).  Compares every element: err_i = |analytic_i - numeric_i| /
 * max_k |numeric_k| (float32 differences cannot resolve elements far below
 * the largest); returns the largest err_i in *max_err and the index where it
 * occurs in *where (may be NULL).  Parameter gradients are cleared.  The graph's step
 * is held fixed so random ops draw the same noise on every evaluation. */
ib_status ib_graph_gradcheck(ib_graph *g, ib_node *loss, ib_node *wrt, float eps, double *max_err,
                             int64_t *where);

/* ------------------------------------------------------------------------
 * Leaves
 * ---------------------------------------------------------------------- */
/* An input filled by the caller before forward. */
ib_node *ib_input(ib_graph *g, const char *name, int ndim, const int64_t *shape);
/* An int32 input of n class labels. */
ib_node *ib_input_labels(ib_graph *g, const char *name, int64_t n);
/* A parameter of the graph's store (get-or-create, see ib_params_get). */
ib_node *ib_param(ib_graph *g, const char *name, int ndim, const int64_t *shape, ib_init init);
/* A buffer of the store (running statistics): no gradient. */
ib_node *ib_buffer(ib_graph *g, const char *name, int ndim, const int64_t *shape, ib_init init);
/* An existing parameter by index. */
ib_node *ib_param_at(ib_graph *g, int index);

/* Axis value meaning "all elements" for reductions. */
#define IB_ALL (-100)

/* ------------------------------------------------------------------------
 * Ops.  Each has a forward and a backward; the comment gives its formula.
 * N = batch, C = channels/classes, H, W = spatial, K = latent size.
 * ---------------------------------------------------------------------- */

/* --- linear algebra (src/ops/linear.c) --- */
/* y = op(a) op(b); a, b 2-D; op = transpose when the flag is set. */
ib_node *ib_matmul(ib_graph *g, ib_node *a, ib_node *b, bool trans_a, bool trans_b);
/* y = x W^T + b; x (N, in), W (out, in), b (out) or NULL. */
ib_node *ib_linear(ib_graph *g, ib_node *x, ib_node *w, ib_node *b);

/* --- convolution and pooling (src/ops/conv.c, src/ops/pool.c) --- */
/* y = conv(x, W) + b; x (N,Cin,H,W), W (Cout,Cin,kh,kw), b (Cout) or NULL. */
ib_node *ib_conv2d(ib_graph *g, ib_node *x, ib_node *w, ib_node *b, int stride, int pad);
/* PixelCNN masked conv: kernel taps after the centre (raster order) are
 * zero; mask 'A' also zeroes the centre.  The gated PixelCNN's vertical
 * stack: mask 'V' keeps only the rows above the centre row, 'W' those and
 * the centre row (every column of them).  Odd square kernels only, stride
 * 1; the mask applies to every (out, in) channel pair, and masked taps get
 * no gradient. */
ib_node *ib_conv2d_masked(ib_graph *g, ib_node *x, ib_node *w, ib_node *b, int pad, char mask_type);
/* Pooling windows k x k; output size floor((H + 2 pad - k)/stride) + 1;
 * pad <= k/2 (as PyTorch).  Max-pool pads with -inf; ties go to the first
 * maximum in raster order. */
ib_node *ib_maxpool2d(ib_graph *g, ib_node *x, int k, int stride, int pad);
/* avg-pool; padded cells count in the divisor (PyTorch count_include_pad=True). */
ib_node *ib_avgpool2d(ib_graph *g, ib_node *x, int k, int stride, int pad);
/* (N,C,H,W) -> (N,C): mean over H and W. */
ib_node *ib_global_avgpool(ib_graph *g, ib_node *x);

/* --- normalisation (src/ops/norm.c) --- */
/* Batch norm over (N,C) or (N,C,H,W): per channel c,
 * y = gamma_c (x - mean_c)/sqrt(var_c + eps) + beta_c.  In training the
 * batch statistics are used (biased variance) and the running ones updated
 * r = (1-momentum) r + momentum s (unbiased variance, as PyTorch); in eval
 * the running statistics are used.  running_mean/var are buffers
 * (ib_buffer) that forward updates in place; they get no gradient.  When
 * gamma and beta are both frozen parameters (ib_params_freeze, read at
 * each forward) the layer acts as in eval even in a training graph: it
 * uses and keeps its running statistics (PyTorch's backbone.eval()). */
ib_node *ib_batchnorm(ib_graph *g, ib_node *x, ib_node *gamma, ib_node *beta, ib_node *running_mean,
                      ib_node *running_var, float momentum, float eps);
/* relu(batchnorm(...)) as one op: one pass over the data each way and no
 * buffer for the normalised values; the same bits as the two ops. */
ib_node *ib_batchnorm_relu(ib_graph *g, ib_node *x, ib_node *gamma, ib_node *beta, ib_node *running_mean,
                           ib_node *running_var, float momentum, float eps);
/* Rows scaled to unit L2 norm: y_i = x_i / max(||x_i||, eps); x (N, D). */
ib_node *ib_l2_normalize(ib_graph *g, ib_node *x, float eps);

/* --- elementwise (src/ops/elementwise.c, src/ops/activation.c) --- */
/* Binary ops with broadcasting: each dim of a and b must be equal or 1
 * (shapes aligned from the right, as NumPy), e.g. (N,C,H,W) + (1,C,1,1). */
ib_node *ib_add(ib_graph *g, ib_node *a, ib_node *b);
ib_node *ib_sub(ib_graph *g, ib_node *a, ib_node *b);
ib_node *ib_mul(ib_graph *g, ib_node *a, ib_node *b);
ib_node *ib_div(ib_graph *g, ib_node *a, ib_node *b);
/* relu(a + b) as one op, a and b of one shape (a residual block's output):
 * one pass each way, the same bits as the two ops. */
ib_node *ib_add_relu(ib_graph *g, ib_node *a, ib_node *b);
/* y = alpha x + beta */
ib_node *ib_affine(ib_graph *g, ib_node *x, float alpha, float beta);
ib_node *ib_scale(ib_graph *g, ib_node *x, float alpha);
ib_node *ib_relu(ib_graph *g, ib_node *x);
ib_node *ib_leaky_relu(ib_graph *g, ib_node *x, float slope);
/* y = log(1 + exp(x + shift)), computed stably, and at least FLT_MIN (the
 * smallest normal float), so that 1/y and log y stay finite (a VIB sigma). */
ib_node *ib_softplus(ib_graph *g, ib_node *x, float shift);
ib_node *ib_sigmoid(ib_graph *g, ib_node *x);
ib_node *ib_tanh(ib_graph *g, ib_node *x);
ib_node *ib_exp(ib_graph *g, ib_node *x);
ib_node *ib_log(ib_graph *g, ib_node *x);
ib_node *ib_square(ib_graph *g, ib_node *x);
ib_node *ib_sqrt(ib_graph *g, ib_node *x);
/* Gated activation of gated PixelCNN: y = tanh(a) * sigmoid(b); a and b
 * of the same shape (src/ops/misc.c). */
ib_node *ib_gated_tanh(ib_graph *g, ib_node *a, ib_node *b);
/* Inverted dropout with drop probability p in [0, 1] while the graph is
 * training: y = x * mask / (1-p), the mask keyed by (graph seed, node,
 * step), so a step and seed give the same mask on any thread count, and
 * backward uses the forward's mask.  Identity in eval. */
ib_node *ib_dropout(ib_graph *g, ib_node *x, float p);
/* y = x forward (a copy, not a view), no gradient flows back to x. */
ib_node *ib_stop_gradient(ib_graph *g, ib_node *x);

/* --- reductions (src/ops/reduce.c); axis in [0, ndim) or IB_ALL --- */
/* Output drops the reduced axis (IB_ALL gives a scalar). */
ib_node *ib_sum(ib_graph *g, ib_node *x, int axis);
ib_node *ib_mean(ib_graph *g, ib_node *x, int axis);
/* log sum_i exp(x_i) along the axis, stable. */
ib_node *ib_logsumexp(ib_graph *g, ib_node *x, int axis);
/* log (1/n) sum_i exp(x_i) along the axis. */
ib_node *ib_logmeanexp(ib_graph *g, ib_node *x, int axis);
/* max_i x_i along the axis (src/ops/reduce_max.c); the gradient goes to
 * the FIRST maximum only (ties: the lowest index, as ib_argmax), a NaN
 * counts as the largest.  An empty axis is IB_ERR_SHAPE. */
ib_node *ib_max(ib_graph *g, ib_node *x, int axis);

/* --- shape (src/ops/shape.c) --- */
/* A view with a new shape (no copy: value and gradient alias x's); one
 * dim may be -1 (inferred); the element count must not change.  Int32
 * tensors may be reshaped, concatenated, sliced and repeated too. */
ib_node *ib_reshape(ib_graph *g, ib_node *x, int ndim, const int64_t *shape);
/* (N, ...) -> (N, prod(...)), a view. */
ib_node *ib_flatten(ib_graph *g, ib_node *x);
/* Join 1 to 8 tensors along an axis (negative counts from the end); all
 * other dims and the dtype must match. */
ib_node *ib_concat(ib_graph *g, int n, ib_node *const *xs, int axis);
/* Elements [start, start+len) along the axis. */
ib_node *ib_slice(ib_graph *g, ib_node *x, int axis, int64_t start, int64_t len);
/* (N, C, H, W) -> (N, front + C + back, H, W): `front` zero channels, x's
 * channels, `back` zero channels (ResNet's parameter-free shortcut). */
ib_node *ib_pad_channels(ib_graph *g, ib_node *x, int64_t front, int64_t back);
/* (N, ...) -> (N*m, ...): each example repeated m times in a row (particles). */
ib_node *ib_repeat(ib_graph *g, ib_node *x, int64_t m);
/* Axes in a new order (a copy, src/ops/permute.c): output dim k is input
 * dim perm[k] (torch.permute); perm a permutation of 0..ndim-1, else
 * IB_ERR_ARG.  (N, C, H, W) with perm {0, 2, 3, 1} and a reshape to
 * (N H W, C) gives the row-wise softmax ops a per-pixel distribution. */
ib_node *ib_permute(ib_graph *g, ib_node *x, const int *perm);
/* Nearest-neighbour upsampling (src/ops/upsample.c): (N, C, H, W) ->
 * (N, C, f H, f W), y[n,c,i,j] = x[n,c,i/f,j/f], integer factor f in
 * 1..64 (F.interpolate(mode="nearest")); backward sums each f x f block. */
ib_node *ib_upsample_nearest(ib_graph *g, ib_node *x, int factor);

/* --- softmax and losses (src/ops/softmax.c) --- */
/* Along the last axis of (N, C). */
ib_node *ib_log_softmax(ib_graph *g, ib_node *x);
ib_node *ib_softmax(ib_graph *g, ib_node *x);
/* Mean over the batch of -sum_c target_c log softmax(logits)_c, with label
 * smoothing s in [0, 1]: target = (1-s) onehot + s/C (PyTorch's
 * F.cross_entropy(label_smoothing=s)).  logits (N, C), labels int32 (N) ->
 * scalar.  The caller validates labels: a label outside [0, C) makes its
 * row contribute 0 loss and 0 gradient (the mean still divides by N). */
ib_node *ib_cross_entropy(ib_graph *g, ib_node *logits, ib_node *labels, float smoothing);
/* Per row: H = -sum_c p_c log p_c with p = softmax(logits); (N, C) -> (N). */
ib_node *ib_softmax_entropy(ib_graph *g, ib_node *logits);
/* x[i, label_i]: (N, C), labels (N) -> (N); 0 for a label outside [0, C). */
ib_node *ib_gather(ib_graph *g, ib_node *x, ib_node *labels);
/* One-hot float matrix (N, C) of int labels (no gradient); a label
 * outside [0, C) gives a row of zeros. */
ib_node *ib_one_hot(ib_graph *g, ib_node *labels, int64_t classes);
/* Index of the largest value of each row of (N, C), int32 (N) (no
 * gradient); ties give the first index, a NaN counts as the largest. */
ib_node *ib_argmax(ib_graph *g, ib_node *x);

/* --- stochastic layers and divergences (src/ops/gaussian.c, src/ops/bernoulli.c, src/ops/divergence.c) --- */
/* Shapes of the divergences below: the first input is (N, ...) and fixes
 * the output (N), a sum over every dim but the first; each later input has
 * the same shape or (1, ...), one row shared by the batch (a learned
 * prior), whose gradient is summed over the batch.  Shape errors:
 * IB_ERR_SHAPE naming the op and the tensors. */
/* z = mu + sigma * eps; mu, sigma (and eps) of one shape.  eps is an input
 * node, used whatever the sampling mode, or NULL: then eps ~ N(0,1) keyed by
 * (graph seed, node, step) while the graph is sampling, and z = mu (no
 * gradient to sigma) when it is not.  dmu = dz, dsigma = dz eps,
 * deps = dz sigma. */
ib_node *ib_gaussian_sample(ib_graph *g, ib_node *mu, ib_node *sigma, ib_node *eps);
/* KL(N(mu, sigma^2) || N(0, 1)) summed over all dims but the first:
 * (N, ...) -> (N).  0.5 sum (mu^2 + sigma^2 - 1 - 2 log sigma); sigma > 0. */
ib_node *ib_kl_std_normal(ib_graph *g, ib_node *mu, ib_node *sigma);
/* KL(N(mu1, s1^2) || N(mu2, s2^2)) summed over all dims but the first -> (N):
 * log(s2/s1) + (s1^2 + (mu1 - mu2)^2) / (2 s2^2) - 1/2 per element. */
ib_node *ib_kl_gaussians(ib_graph *g, ib_node *mu1, ib_node *s1, ib_node *mu2, ib_node *s2);
/* log N(x; mu, sigma^2) summed over all dims but the first -> (N):
 * -log(2 pi)/2 - log sigma - (x - mu)^2 / (2 sigma^2) per element. */
ib_node *ib_gaussian_log_density(ib_graph *g, ib_node *x, ib_node *mu, ib_node *sigma);
/* Straight-through Bernoulli: forward h = 1[u < p] (u keyed uniform) while
 * sampling, else p; backward dh/dp = 1. */
ib_node *ib_bernoulli_st(ib_graph *g, ib_node *p);
/* Gumbel-sigmoid (binary concrete) relaxation of Bernoulli(sigmoid(logits)):
 * y = sigmoid((logits + log u - log(1-u)) / temperature), u keyed uniform
 * clamped to [2^-24, 1 - 2^-24]; mean path sigmoid(logits / temperature)
 * when not sampling.  temperature > 0 (else IB_ERR_ARG). */
ib_node *ib_gumbel_sigmoid(ib_graph *g, ib_node *logits, float temperature);
/* KL(Bern(p) || Bern(q)) = p log(p/q) + (1-p) log((1-p)/(1-q)) summed over
 * all dims but the first -> (N); q may have a leading dim of 1 (a learned
 * prior shared by the batch).  Inside the logs p and q are clamped to
 * [1e-7, 1 - 1e-7], so 0 and 1 give finite values and gradients (q outside
 * the clamp gets no gradient). */
ib_node *ib_kl_bernoulli(ib_graph *g, ib_node *p, ib_node *q);
/* KL(P || Q) = sum_c p_c (lp_c - lq_c) per row from log-probabilities
 * (N, C) -> (N) (PyTorch: kl_div(lq, lp, log_target=True).sum(-1)).
 * Gradients treat lp, lq as free arguments; classes with p = 0 add 0. */
ib_node *ib_kl_categorical(ib_graph *g, ib_node *logp, ib_node *logq);
/* Jensen-Shannon divergence 1/2 KL(P||M) + 1/2 KL(Q||M), M = (P+Q)/2, per
 * row from log-probabilities (N, C) -> (N), in [0, ln 2]; log M is formed
 * stably (log-sum-exp), so P = Q gives exactly 0 and -inf entries are fine. */
ib_node *ib_js_categorical(ib_graph *g, ib_node *logp, ib_node *logq);
/* Cosine-similarity matrix S_ij = <a_i, b_j> / (max(|a_i|, eps) max(|b_j|, eps)):
 * (Na, D), (Nb, D) -> (Na, Nb); eps > 0 (else IB_ERR_ARG).  a and b may be
 * the same node. */
ib_node *ib_cosine_similarity(ib_graph *g, ib_node *a, ib_node *b, float eps);
/* Variational distillation's KL (VSD, VCD; src/ib/vsd.c): the batch mean
 * of KL(p_t || p_s), p_t = softmax(teacher) taken through ib_stop_gradient
 * (the teacher gets no gradient from it), p_s = softmax(student), both as
 * log-probabilities (ib_log_softmax) into ib_kl_categorical.  (N, C) logits
 * each -> scalar. */
ib_node *ib_distill_kl(ib_graph *g, ib_node *teacher_logits, ib_node *student_logits);


/* ------------------------------------------------------------------------
 * Optimizers (src/optim/).  An optimizer updates every trainable, unfrozen
 * parameter of a store from the store's gradients.  Its state (momentum,
 * Adam moments) lives in buffers laid out exactly like the store's value
 * buffer, so saving it is one write per buffer.
 * ---------------------------------------------------------------------- */
/* ADAMAX (PyTorch's torch.optim.Adamax, the IMB reference script's
 * optimizer): m = lerp(m, g, 1 - beta1), u = max(beta2 u, |g| + eps),
 * p -= lr / (1 - beta1^t) * m / u; weight decay is L2 (added to g). */
typedef enum ib_optim_kind { IB_OPTIM_SGD, IB_OPTIM_ADAM, IB_OPTIM_ADAMW, IB_OPTIM_ADAMAX } ib_optim_kind;

/* The learning rate has one home: ib_optim_config.lr, the base rate.  The
 * optimizer is usable alone (as PyTorch's, whose param group owns its lr)
 * and steps with that rate until ib_optim_set_lr changes it; a schedule
 * holds no rate of its own but scales the base one (ib_schedule_lr), so
 * nothing has to be kept equal by hand (ib_train_config's config.json key
 * "lr" is optim.lr). */
typedef struct ib_optim_config {
    ib_optim_kind kind;
    float lr;             /* the base learning rate */
    float momentum;       /* SGD (PyTorch semantics: buf = m*buf + (1-dampening)*g, and buf = g
                             at a parameter's first step; p -= lr*buf) */
    float dampening;      /* SGD */
    bool nesterov;        /* SGD: p -= lr*(g + m*buf); needs momentum > 0, dampening 0 */
    float weight_decay;   /* SGD, Adam: added to the gradient (L2); AdamW: decoupled,
                             p *= 1 - lr*wd before the Adam update */
    float beta1, beta2;   /* Adam, AdamW, Adamax */
    float eps;            /* Adam, AdamW, Adamax */
    float clip_grad_norm; /* > 0: scale all gradients so their global L2 norm is at most this */
} ib_optim_config;

/* PyTorch's defaults for the kind (lr 1e-3 for Adam/AdamW, 0.01 for SGD,
 * betas (0.9, 0.999), eps 1e-8, AdamW weight decay 0.01). */
ib_optim_config ib_optim_defaults(ib_optim_kind kind);

typedef struct ib_optim ib_optim;
ib_optim *ib_optim_new(ib_params *p, const ib_optim_config *cfg);
void ib_optim_free(ib_optim *o);
/* One update from the current gradients of the trainable, unfrozen
 * parameters (buffers and frozen parameters are untouched; parameters added
 * to the store since the last step get zero state and their own step count,
 * as a PyTorch param group added later).  With clip_grad_norm > 0 the
 * store's gradients are first scaled in place, exactly as
 * torch.nn.utils.clip_grad_norm_ does; otherwise they are left as they are.
 * IB_ERR_NUMERIC (naming the parameter), and nothing changed, if a
 * gradient is not finite.  Allocates nothing unless the store has grown. */
ib_status ib_optim_step(ib_optim *o);
/* Global L2 norm of the gradients the last successful step saw, before clipping. */
float ib_optim_grad_norm(const ib_optim *o);
/* torch.nn.utils.clip_grad_norm_ on the trainable, unfrozen gradients of a
 * store: if max_norm / (norm + 1e-6) < 1, scale them in place by it.  The
 * norm before clipping goes to *total_norm (may be NULL).  IB_ERR_NUMERIC,
 * nothing changed, if a gradient is not finite. */
ib_status ib_optim_clip_grad_norm(ib_params *p, float max_norm, float *total_norm);
void ib_optim_set_lr(ib_optim *o, float lr);
float ib_optim_lr(const ib_optim *o);
const ib_optim_config *ib_optim_get_config(const ib_optim *o);
int64_t ib_optim_steps(const ib_optim *o); /* updates done so far */
/* Sets the step count of the optimizer and of every parameter now in the
 * store (Adam's bias corrections; SGD's first step copies the gradient
 * into the momentum buffer only at step 0).  For restoring checkpoints. */
void ib_optim_set_steps(ib_optim *o, int64_t steps);
/* One parameter's own update count (i as in the store): it differs from
 * the optimizer's when the parameter was frozen for some steps or added
 * later (layer-wise training).  0 for a parameter the optimizer has not
 * seen yet; the setter ignores an i out of range or a negative count. */
int64_t ib_optim_param_steps(const ib_optim *o, int i);
void ib_optim_set_param_steps(ib_optim *o, int i, int64_t steps);
/* State buffers for checkpoints: each has ib_params_total() floats laid out
 * like ib_params_values() (grown to the store's current size by this call;
 * valid until the store grows).  SGD without momentum has none.
 * Names: "momentum_buffer"; "exp_avg", "exp_avg_sq". */
int ib_optim_state_count(const ib_optim *o);
const char *ib_optim_state_name(const ib_optim *o, int k);
float *ib_optim_state(ib_optim *o, int k);

/* Learning-rate schedules as pure functions of the base rate (the
 * optimizer's lr: a schedule has none of its own) and the (fractional)
 * epoch.  Below, lr is that base rate. */
typedef enum ib_schedule_kind {
    IB_SCHED_CONSTANT,
    IB_SCHED_STEP,          /* lr * gamma^floor(epoch / every) (staircase exponential decay:
                               Deep VIB uses gamma 0.97, every 2) */
    IB_SCHED_EXPONENTIAL,   /* lr * gamma^(epoch / every), smooth */
    IB_SCHED_MULTISTEP,     /* lr * gamma^(number of milestones <= epoch) */
    IB_SCHED_COSINE         /* min_lr + (lr - min_lr)(1 + cos(pi epoch / total))/2,
                               min_lr after total */
} ib_schedule_kind;

typedef struct ib_schedule {
    ib_schedule_kind kind;
    float gamma, min_lr;
    double every;           /* epochs, STEP and EXPONENTIAL (<= 0: no decay) */
    double total;           /* epochs, COSINE */
    double warmup;          /* epochs of linear warm-up from 0 (any kind), 0 = none:
                               while epoch < warmup the lr is scaled by epoch / warmup */
    int n_milestones;
    double milestones[8];
} ib_schedule;

/* The lr at a fractional epoch (step / steps_per_epoch; negative = 0) of a
 * run whose base rate is base_lr (its ib_optim_config.lr); 0 for a NULL s.
 * Evaluated in double and rounded once: equal to PyTorch's StepLR,
 * MultiStepLR, ExponentialLR and CosineAnnealingLR at integer epochs. */
float ib_schedule_lr(const ib_schedule *s, float base_lr, double epoch);

/* Exponential moving average of the trainable weights (Polyak averaging):
 * each update moves shadow -= (shadow - value) * (1 - decay), in float32.
 * Without zero_debias the shadow starts at the values the parameters have
 * when it first sees them; with zero_debias it starts at 0 and the average
 * is shadow / (1 - decay^t), t = that parameter's updates (TensorFlow's
 * ExponentialMovingAverage, as the Deep VIB code uses).  Buffers and frozen
 * parameters are not averaged; parameters added to the store later are
 * picked up at the next call. */
typedef struct ib_ema ib_ema;
ib_ema *ib_ema_new(ib_params *p, float decay, bool zero_debias);
void ib_ema_free(ib_ema *e);
ib_status ib_ema_update(ib_ema *e);
/* Exchange the store's values with the (debiased) averages; calling it a
 * second time restores the training weights exactly (they are kept aside;
 * the shadow is never changed by a swap).  While swapped, ib_ema_update
 * returns IB_ERR_STATE. */
ib_status ib_ema_swap(ib_ema *e);
bool ib_ema_swapped(const ib_ema *e);
/* Buffers (batch-norm running statistics) of the averaged network.  A swap
 * keeps every buffer aside too, and swapping back restores it: what is
 * written into the store's buffers while swapped (statistics recomputed
 * for the averaged weights by a training-mode pass) never reaches the
 * training network.  ib_ema_keep_buffer, while swapped: buffer i's value in
 * the store becomes the averaged network's own (kept in the shadow at i's
 * offset), which every later swap puts into the store.  Without it a swap
 * leaves the buffer as the training network has it.  set_has_buffer: for
 * loaders that wrote the shadow at i's offset themselves (checkpoints). */
ib_status ib_ema_keep_buffer(ib_ema *e, int i);
bool ib_ema_has_buffer(const ib_ema *e, int i);
void ib_ema_set_has_buffer(ib_ema *e, int i, bool has);
/* Raw shadow values, laid out like the store (grown to the store's current
 * size by this call; valid until the store grows). */
float *ib_ema_shadow(ib_ema *e);
int64_t ib_ema_updates(const ib_ema *e);
/* Sets t of the EMA and of every parameter now in the store (checkpoints). */
void ib_ema_set_updates(ib_ema *e, int64_t t);
float ib_ema_decay(const ib_ema *e);
bool ib_ema_zero_debias(const ib_ema *e);
/* One parameter's own update count t (its debiasing divides by
 * 1 - decay^t); as for the optimizer, it differs for parameters frozen
 * for a while or added later. */
int64_t ib_ema_param_updates(const ib_ema *e, int i);
void ib_ema_set_param_updates(ib_ema *e, int i, int64_t t);

/* ------------------------------------------------------------------------
 * Checkpoints (src/io/): safetensors files that PyTorch can load.
 * Tensors are named as the store names them ("fc1.weight"); optimizer
 * state as "optim.<state>.<name>", EMA as "ema.<name>" (a buffer's only when
 * the EMA owns one: ib_ema_keep_buffer, stored as it is).  The safetensors
 * __metadata__ holds "format": "pt" and "ibnet": a JSON object text given
 * by the caller (epoch, step, seed, config...).  Writes are atomic
 * (temporary file, fsync, rename).
 * ---------------------------------------------------------------------- */
/* opt, ema and metadata_json may be NULL. */
ib_status ib_checkpoint_save(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, const char *metadata_json);
/* Loads into a store built by the same model code: every parameter of the
 * store must be in the file with the same shape and dtype F32, or the call
 * fails (IB_ERR_MISMATCH) naming the file and the tensor, and nothing is
 * changed.  opt/ema are restored if given (their tensors must be present;
 * the optimizer's step count and lr and the EMA's update count come from
 * the metadata; a buffer's "ema.<name>", when present, becomes the EMA's
 * own value of it).  A tensor the model cannot place is IB_ERR_MISMATCH too,
 * except optim.* / ema.* state of the model's parameters and buffers when
 * opt / ema is NULL.  An EMA that is swapped in cannot be saved or loaded (IB_ERR_STATE).
 * *metadata_json (if not NULL) receives a malloc'd copy of the caller's
 * metadata text, or NULL if the file has none. */
ib_status ib_checkpoint_load(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, char **metadata_json);
/* Reads only the metadata text (malloc'd), validating the file's header. */
ib_status ib_checkpoint_read_metadata(const char *path, char **metadata_json);

/* Every tensor's bytes carry a CRC-32 (zlib's) in the metadata key
 * "ibnet.crc32", written by ib_checkpoint_save.  Loading verifies each
 * tensor it reads; a mismatch is IB_ERR_FORMAT "damaged checkpoint" naming
 * the tensor, and nothing is changed.  Files without checksums (written
 * before they existed, or by other tools) load unverified. */
typedef struct ib_checkpoint_load_options {
    bool skip_checksums; /* do not verify (saves one crc32 pass over the bytes read) */
} ib_checkpoint_load_options;
/* ib_checkpoint_load with options (NULL: the defaults, verifying). */
ib_status ib_checkpoint_load_opts(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, char **metadata_json,
                                  const ib_checkpoint_load_options *o);

/* Partial load (ibnet train --init-from: a head on a pretrained backbone).
 * Every parameter of the store whose name is a tensor of the file with the
 * same shape takes the file's values; the others keep their values (their
 * initialisation).  With use_ema, a trainable parameter whose "ema.<name>"
 * shadow is in the file (a last.safetensors) takes the average instead,
 * debiased as ib_ema_swap does (a parameter with no average yet takes the
 * raw value); a buffer takes its "ema.<name>" as it is, when the file has
 * one (statistics recomputed for the EMA weights).  Errors (IB_ERR_MISMATCH naming the tensor, nothing changed):
 * a name of the store in the file with another shape or a dtype other than
 * F32, and a file that matches no parameter at all.  Checksums are verified
 * as in ib_checkpoint_load (unless skip_checksums).  Optimizer and EMA
 * state of the store are not touched. */
typedef enum ib_checkpoint_source {
    IB_CKPT_KEPT = 0,       /* not in the file: kept its value */
    IB_CKPT_LOADED = 1,     /* the file's tensor of the same name */
    IB_CKPT_LOADED_EMA = 2  /* the file's EMA average "ema.<name>" */
} ib_checkpoint_source;
typedef struct ib_checkpoint_partial_options {
    bool use_ema;        /* prefer the file's EMA averages for trainable parameters */
    bool skip_checksums; /* do not verify the tensors' CRC-32 */
} ib_checkpoint_partial_options;
typedef struct ib_checkpoint_partial {
    int n_params;                 /* ib_params_count() of the store at the call */
    ib_checkpoint_source *source; /* per parameter (n_params, malloc'd; free with ib_checkpoint_partial_free) */
    int n_loaded;                 /* parameters set from the file (EMA ones included) */
    int n_loaded_ema;             /* of them, set from an EMA average */
    int n_kept;                   /* parameters that kept their values */
    int n_unused;                 /* tensors of the file (optim.* and ema.* not counted) that no parameter took */
} ib_checkpoint_partial;
/* o may be NULL (raw weights, verified).  result may be NULL; otherwise it
 * is filled on success and left empty (safe to free) on failure. */
ib_status ib_checkpoint_load_partial(const char *path, ib_params *p, const ib_checkpoint_partial_options *o,
                                     ib_checkpoint_partial *result);
void ib_checkpoint_partial_free(ib_checkpoint_partial *r);

/* ------------------------------------------------------------------------
 * Layers (src/nn/): parameters named as PyTorch names them, created in the
 * graph's store on first use and shared on later use (get-or-create), with
 * PyTorch's default initialisation.
 * ---------------------------------------------------------------------- */
/* How the ib_nn_* layers built in g from now on initialise their linear and
 * conv parameters.  PYTORCH (the default): torch.nn's Kaiming-uniform
 * (a = sqrt 5) weights and U(+-1/sqrt fan_in) biases.  GLOROT: Glorot/Xavier-
 * uniform weights and zero biases, the TensorFlow/Keras default (Deep VIB's
 * reference code).  KAIMING: He-normal weights N(0, 2/fan_in) and zero
 * biases (the usual CIFAR ResNet recipe).  Batch norm is gamma 1, beta 0 in
 * every style.  A model description selects it with its `init` line. */
typedef enum ib_init_style { IB_INIT_STYLE_PYTORCH = 0, IB_INIT_STYLE_GLOROT, IB_INIT_STYLE_KAIMING } ib_init_style;
void ib_graph_set_init_style(ib_graph *g, ib_init_style style);
ib_init_style ib_graph_init_style(const ib_graph *g);

/* y = x W^T + b; "<name>.weight" (out, in), "<name>.bias" (out). */
ib_node *ib_nn_linear(ib_graph *g, ib_node *x, const char *name, int64_t out, bool bias);
/* "<name>.weight" (out_ch, in_ch, k, k), "<name>.bias" (out_ch). */
ib_node *ib_nn_conv2d(ib_graph *g, ib_node *x, const char *name, int64_t out_ch, int k, int stride, int pad,
                      bool bias);
/* Batch norm with "<name>.weight", "<name>.bias" (gamma = 1, beta = 0) and
 * buffers "<name>.running_mean", "<name>.running_var"; momentum 0.1, eps 1e-5. */
ib_node *ib_nn_batchnorm(ib_graph *g, ib_node *x, const char *name);
/* The same followed by a ReLU, as one op (ib_batchnorm_relu). */
ib_node *ib_nn_batchnorm_relu(ib_graph *g, ib_node *x, const char *name);

/* The nodes of a Gaussian bottleneck. */
typedef struct ib_bottleneck {
    ib_node *z;     /* sample (or mu on the mean path) */
    ib_node *mu;    /* mean */
    ib_node *sigma; /* standard deviation */
    ib_node *kl;    /* (N): KL(N(mu, sigma^2) || N(0, I)) summed over the representation */
} ib_bottleneck;

/* Deep VIB bottleneck (Alemi et al. 2017) on an encoder output h (N, 2K):
 * mu = h[:, :K], sigma = softplus(h[:, K:] + sigma_shift) (-5 in the paper),
 * z = mu + sigma * eps with eps the given input node or, if NULL, keyed
 * noise while the graph is sampling. */
ib_bottleneck ib_nn_vib(ib_graph *g, ib_node *h, int64_t k, float sigma_shift, ib_node *eps);
/* VIB cell (cellVIB) on a feature map h (N, C, H, W): mu = conv_mu(h),
 * sigma = softplus(conv_rho(h) + sigma_shift), both k x k convs with C
 * output channels ("<name>.mu", "<name>.rho"), z = mu + sigma * eps;
 * kl summed over C x H x W. */
ib_bottleneck ib_nn_vib_cell(ib_graph *g, ib_node *h, const char *name, int k, float sigma_shift, ib_node *eps);

/* ------------------------------------------------------------------------
 * Objectives (src/ib/): the losses of the papers, built from a model's
 * logits and its Gaussian bottlenecks (Deep VIB layers, VIB cells).
 *   loss = CE(logits, y) + sum_l beta_l * mean_batch KL_l
 *          - lambda * min(H, H_max)          (VUB's entropy bonus, optional)
 * ---------------------------------------------------------------------- */
#define IB_MAX_BOTTLENECKS 32

/* How a base beta spreads over L bottlenecks ordered by depth l = 1..L. */
typedef enum ib_beta_schedule {
    IB_BETA_EQUAL,     /* beta_l = beta */
    IB_BETA_LINEAR,    /* beta_l = beta * l / L (grows with depth) */
    IB_BETA_GEOMETRIC  /* beta_l = beta * ratio^(L - l) (ratio < 1: grows with depth) */
} ib_beta_schedule;

typedef struct ib_objective {
    float beta;                  /* base compression weight (>= 0) */
    ib_beta_schedule schedule;   /* default IB_BETA_LINEAR (docs/results.md, cellVIB on MNIST) */
    float ratio;                 /* IB_BETA_GEOMETRIC; 0 means 0.5 */
    int n_betas;                 /* > 0: explicit beta per bottleneck, overrides the above */
    float betas[IB_MAX_BOTTLENECKS];
    bool kl_mean_per_element;    /* average each KL over its elements instead of summing */
    float label_smoothing;
    float entropy_weight;        /* lambda of the entropy bonus (VUB: 1; 0 = off) */
    float entropy_cap;           /* H_max; <= 0: no cap (SVIB form) */
    int n_gammas;                /* IMB: > 0 gives the relevance weight of every layer l = 0..L
                                    (L + 1 values); 0: gamma = (1, 0, ..., 0), the MLE */
    float gammas[IB_MAX_BOTTLENECKS + 1];
    /* variational distillation (docs/vsd.md; >= 0 each) */
    float vsd_weight;            /* w of w * KL(p(y|v) || p(y|z)), teacher detached (vsd, and per view in vcd/vml: 2) */
    float vcd_weight;            /* of 1/2 KL(p(y|v2) || p(y|z1)) + 1/2 KL(p(y|v1) || p(y|z2)) (vcd: 2) */
    float vml_weight;            /* of JS(p(y|z1) || p(y|z2)) (vml: 1) */
} ib_objective;

/* Plain cross-entropy (beta 0, no bonus). */
ib_objective ib_objective_default(void);

/* One named term of a loss: a scalar node of the training graph and its
 * weight in the total (0: recorded for the logs, not optimised).  The
 * trainer averages every term over an epoch and writes it to
 * metrics.jsonl under "train_terms" by name. */
#define IB_MAX_TERMS 40
typedef struct ib_loss_term {
    char name[32];                       /* "ce", "kl1", "entropy"... */
    ib_node *node;                       /* scalar */
    float weight;                        /* its coefficient in total */
} ib_loss_term;

typedef struct ib_loss {
    ib_node *total;                      /* scalar to minimise: the sum of weight * node over the terms */
    ib_node *ce;                         /* scalar: mean cross-entropy (nats) */
    ib_node *entropy;                    /* scalar: mean softmax entropy, or NULL */
    int n_kl;
    ib_node *kl[IB_MAX_BOTTLENECKS];     /* scalar: batch-mean KL of bottleneck l (nats) */
    float beta[IB_MAX_BOTTLENECKS];      /* beta_l used */
    int n_terms;
    ib_loss_term terms[IB_MAX_TERMS];    /* every term, in the order added */
} ib_loss;

/* Add a term to a loss under construction: records (name, node, weight)
 * and adds weight * node to l->total (the first term with weight 1 is the
 * total itself; weight 0 only records it).  The node is named
 * "loss.<name>".  Errors (NULL node, a non-scalar node, a name used twice,
 * longer than 31 characters or with characters other than letters, digits
 * and '_', more than IB_MAX_TERMS terms, a weight
 * that is not finite) are recorded in the graph and returned. */
ib_status ib_loss_add_term(ib_graph *g, ib_loss *l, const char *name, ib_node *node, float weight);
/* The term called name, or NULL. */
const ib_loss_term *ib_loss_term_find(const ib_loss *l, const char *name);

/* The weight of bottleneck l (0-based) of n under the objective. */
float ib_objective_beta(const ib_objective *o, int l, int n);
/* Builds the loss nodes: the terms "ce", "kl1".."klL" (weight beta_l) and,
 * "entropy", the batch-mean softmax entropy H: weight 0 (logged only) when
 * entropy_weight is 0 or a cap is set, -lambda when entropy_weight is not 0
 * and cap <= 0 (SVIB); with a cap > 0 also "entropy_capped" = min(H, cap),
 * weight -lambda (VUB).  bn may be NULL when
 * n_bn is 0.  Errors (negative beta, more bottlenecks than betas given)
 * are recorded in the graph. */
ib_status ib_objective_build(ib_graph *g, ib_node *logits, ib_node *labels, int n_bn, const ib_bottleneck *bn,
                             const ib_objective *o, ib_loss *out);

/* ------------------------------------------------------------------------
 * Models (src/nn/model*.c, src/nn/model_builtin.c): networks written in the
 * plain-text model description format of docs/model-format.md, one layer a
 * line ("conv 16 k=3 pad=1 bias=false", "basicblock 32 stride=2",
 * "vibcell beta=1e-3", "repeat 3" ... "end").  Parameters are named as
 * the equivalent torch.nn.Sequential names them ("conv1.weight",
 * "layer2.0.bn1.running_mean", "3.weight"), so checkpoints read like a
 * PyTorch state_dict.  The built-in models are description files too
 * (models/NAME.ibm, embedded in the library).
 * ---------------------------------------------------------------------- */
typedef struct ib_model ib_model;

/* Parse a description (a NUL-terminated text; source names it in errors,
 * NULL = "model").  Every mistake -- unknown layer or key, a bad number,
 * a missing header line, shapes that do not fit, a limit exceeded -- is
 * IB_ERR_FORMAT with "source:LINE: message" in ib_last_error(); nothing
 * is silently ignored.  Safe on hostile input (bounded lines, nesting,
 * repeats, sizes).  On success *out is a new model (ib_model_free). */
ib_status ib_model_parse(const char *text, const char *source, ib_model **out);
/* A built-in name ("mlp", "vib-mlp", "lenet", "resnet20"...) or, when the
 * argument contains '/' or ends in ".ibm", a description file.  Unknown
 * name: IB_ERR_ARG listing the built-ins; unreadable file: IB_ERR_IO. */
ib_status ib_model_load(const char *name_or_path, ib_model **out);
void ib_model_free(ib_model *m); /* NULL is a no-op */

/* The built-in models, in a fixed order; name NULL past the end; text
 * NULL for an unknown name. */
int ib_model_builtin_count(void);
const char *ib_model_builtin_name(int i);
const char *ib_model_builtin_text(const char *name);

const char *ib_model_name(const ib_model *m);
/* The canonical text: repeats expanded, every option written out, no
 * comments.  Parsing it gives an equal model: store it in checkpoints. */
const char *ib_model_text(const ib_model *m);
/* Replace the model's initialisation style (its `init` line); the canonical
 * text follows, so a checkpoint records it. */
ib_status ib_model_set_init_style(ib_model *m, ib_init_style style);
/* The model with a VIB cell (`vibcell`, default options) after each layer
 * named in `after`, a comma-separated list of full layer names as the
 * parameters are named ("layer1,layer2,layer3": after each of those groups;
 * "layer2.1": after one block inside a group; "layer1.*": after every layer
 * directly inside group layer1).  The cells are named cell1, cell2... in
 * depth order (skipping names the model has) and the new model is called
 * NAME-cells.  IB_ERR_ARG for an unknown name, a place named twice, or a
 * layer that outputs flat features (a cell needs a feature map).  On
 * success *out is a new model (ib_model_free); m is unchanged. */
ib_status ib_model_add_cells(const ib_model *m, const char *after, ib_model **out);
/* A table of the model's layers, one a line: full name (as its parameters
 * are named), kind, output shape per example and trainable parameters.
 * malloc'd text (free()); NULL when m is NULL or memory runs out. */
char *ib_model_summary(const ib_model *m);
/* Same layers, options, names and header (the source text may differ). */
bool ib_model_equal(const ib_model *a, const ib_model *b);

/* The model's structure, for programs that rebuild it elsewhere (a
 * PyTorch module, a drawing) without parsing text.  The items are the
 * layer and group lines of the canonical text in order (a group before its
 * layers; the `end` lines are not items). */
typedef struct ib_model_layer_info {
    const char *name;      /* full dotted name, as its parameters are prefixed: "layer2.0", "fc", "3" */
    const char *kind;      /* its word in the format ("conv", "basicblock", "vibcell"...), or "group" */
    int depth;             /* the groups around it: 0 at the top level */
    int64_t arg;           /* the positional argument (OUT, K), 0 when its kind has none (and for a group) */
    int n_options;         /* its key=value options, as the canonical text writes them (name= excluded) */
    int n_tensors;         /* parameters and buffers it creates (ib_model_layer_tensor) */
    int in_ndim, out_ndim; /* shapes per example: 1 = (D), 3 = (C, H, W); 0 for a group */
    int64_t in[3], out[3]; /* unused dims 0 */
    int64_t params;        /* trainable scalars it creates */
    bool bottleneck;       /* a Gaussian bottleneck (vib, vibcell): ib_model_out lists it */
} ib_model_layer_info;

/* A parameter or buffer of a layer, named and shaped as the store (and a
 * PyTorch state_dict) holds it. */
typedef struct ib_model_tensor {
    char name[128];        /* "layer1.0.conv1.weight", "bn1.running_var" */
    int ndim;
    int64_t shape[4];      /* unused dims 0 */
    bool trainable;        /* false: a buffer (batch-norm running statistics) */
} ib_model_tensor;

/* Items (layers and groups); 0 when m is NULL. */
int ib_model_layer_count(const ib_model *m);
/* Item i (0-based) into *info; its strings live as long as m.  IB_ERR_ARG
 * when m or info is NULL or i is out of range. */
ib_status ib_model_layer(const ib_model *m, int i, ib_model_layer_info *info);
/* Option j of item i: *key ("stride", "bias", "shortcut"; static) and its
 * value as the canonical text writes it ("2", "false", "pad", "0.1") into
 * value[len] (truncated to fit, NUL-terminated).  IB_ERR_ARG when out of
 * range. */
ib_status ib_model_layer_option(const ib_model *m, int i, int j, const char **key, char *value, size_t len);
/* Option `key` of item i as a number, whether or not the canonical text
 * writes it: an integer or float option its value, a bool 1 or 0, a choice
 * (shortcut=, grad=, prior=, student=) the index of its word in the order
 * docs/model-format.md lists them; the unset defaults read as such (beta
 * -1, temp 0, particles 1).  IB_ERR_ARG when the item's kind does not take
 * `key`, for a group, and for the width list hidden= (read its text with
 * ib_model_layer_option).  Added after 0.1.0. */
ib_status ib_model_layer_option_value(const ib_model *m, int i, const char *key, double *value);
/* Tensor j of item i, in the order ib_model_build creates them.
 * IB_ERR_ARG when out of range. */
ib_status ib_model_layer_tensor(const ib_model *m, int i, int j, ib_model_tensor *t);
void ib_model_input_shape(const ib_model *m, int *c, int *h, int *w);
int ib_model_classes(const ib_model *m);
/* Trainable scalars the model creates (buffers excluded), computed from
 * the description alone. */
int64_t ib_model_param_count(const ib_model *m);
/* Gaussian bottlenecks (vib layers and VIB cells) in depth order, and the
 * shape of bottleneck i without the batch dim: returns its ndim (1: (K),
 * 3: (C, H, W)) and fills shape, or 0 if i is out of range. */
int ib_model_bottleneck_count(const ib_model *m);
int ib_model_bottleneck_shape(const ib_model *m, int i, int64_t shape[3]);
/* Stochastic layers (vib, vibcell, bernoulli) and particle paths per
 * example (the product of their particles=; 1 without particles): a
 * training batch of N examples runs N * paths rows after the last one. */
int ib_model_stochastic_count(const ib_model *m);
int64_t ib_model_paths(const ib_model *m);

/* A stochastic layer of a built model: a Gaussian bottleneck (vib,
 * vibcell) or Bernoulli-sigmoid neurons (bernoulli).  Rows: a layer after
 * others with particles sees N * upstream rows (each example's paths in a
 * row, the last layer's particle varying fastest) and outputs
 * N * upstream * particles rows. */
typedef struct ib_stochastic_layer {
    char name[64];      /* full layer name: "b1", "vib", "cell1" */
    char kind[16];      /* its word: "bernoulli", "vib", "vibcell" */
    ib_node *h;         /* the sample (N * upstream * particles, ...); the mean path when not sampling */
    ib_node *kl;        /* (N * upstream): KL of each incoming row to the prior, summed over units (nats) */
    int64_t particles;  /* M_l: samples drawn per incoming row */
    int64_t upstream;   /* M_1 ... M_{l-1}: paths per example entering the layer */
    int bn;             /* its index in ib_model_out.bn (a Gaussian bottleneck), or -1 */
} ib_stochastic_layer;

typedef struct ib_model_out {
    ib_node *logits;                              /* (N, classes); with particles (paths > 1) the particle
                                                     average log((1/P) sum_paths softmax(path_logits)) */
    int n_bottlenecks;
    ib_bottleneck bn[IB_MAX_BOTTLENECKS];         /* in depth order */
    char bn_name[IB_MAX_BOTTLENECKS][64];         /* layer name: "vib", "cell1", "5"... */
    float bn_beta[IB_MAX_BOTTLENECKS];            /* beta= of the description, -1 if unset */
    int bn_depth[IB_MAX_BOTTLENECKS];             /* 1-based order, for depth schedules */
    bool bn_cell[IB_MAX_BOTTLENECKS];             /* a VIB cell (else a Deep VIB layer) */
    /* Every stochastic layer, Gaussian and Bernoulli, in depth order (IMB). */
    int n_stochastic;
    ib_stochastic_layer st[IB_MAX_BOTTLENECKS];
    ib_node *path_logits;                         /* (N * paths, classes): one row per particle path
                                                     (the same node as logits when paths is 1) */
    int64_t paths;                                /* P = M_1 ... M_L paths per example */
    ib_node *teacher_logits;                      /* (N, classes) of a `vsdhead`'s teacher on v, else NULL
                                                     (logits are then its student's, on z) */
} ib_model_out;

/* The per-example KL nodes the evaluator reports, with their layer names,
 * in depth order: every stochastic layer (ib_model_out.st) when the model
 * has a Bernoulli layer, else the Gaussian bottlenecks (bn, which include
 * a vsdhead's z).  Fills up to IB_MAX_BOTTLENECKS entries of kl and name
 * (name may be NULL) and returns their count; 0 for NULL mo. */
int ib_model_out_kl(const ib_model_out *mo, ib_node **kl, const char **name);

/* Build the model into g on input x (N, C, H, W) float, whose C, H, W
 * must be the model's.  Parameters are get-or-create in g's store, so a
 * second graph (another batch size) built from the same model and store
 * shares them.  eps: NULL (keyed noise) or ib_model_bottleneck_count(m)
 * entries, each NULL or an input node of the bottleneck's shape with the
 * batch dim (with particles: the rows the layer's sample has, N times the
 * particles up to and including that layer).  Returns IB_OK or the graph's build error. */
ib_status ib_model_build(const ib_model *m, ib_graph *g, ib_node *x, ib_node *const *eps, ib_model_out *out);
/* The same with every parameter name prefixed by "SCOPE." (scope NULL or
 * "": none, ib_model_build).  A scope gives a second copy of a model in one
 * store parameters of its own ("view2.fc1.weight"), where the same model
 * built twice without one shares them.  IB_ERR_ARG for a scope other than
 * 1..31 letters, digits, '_', '-', '.' without empty parts. */
ib_status ib_model_build_scoped(const ib_model *m, ib_graph *g, const char *scope, ib_node *x, ib_node *const *eps,
                                ib_model_out *out);

/* ==== data: begin (src/data/, readers and batches) ==== */
/* An image classification data set held in memory as uint8 pixels, NCHW
 * (a plain struct: researchers read its fields directly).  Readers and
 * derived-set builders return new data sets; free with ib_dataset_free. */
typedef struct ib_dataset {
    char name[64];          /* "mnist", "cifar10", "fashion-mnist", a folder name... */
    int64_t n;              /* number of images */
    int c, h, w;            /* channels, height, width */
    int classes;            /* number of classes */
    uint8_t *images;        /* (n, c, h, w), 0 = black/background */
    int32_t *labels;        /* (n) the labels training uses (noisy if noise was applied) */
    int32_t *clean_labels;  /* (n) the original labels when noise was applied, else NULL */
    char **class_names;     /* (classes) or NULL */
} ib_dataset;

void ib_dataset_free(ib_dataset *d); /* NULL is a no-op */

/* A new data set with zeroed images and labels (clean_labels and
 * class_names NULL).  NULL on a bad size or no memory (ib_last_error says). */
ib_dataset *ib_dataset_new(const char *name, int64_t n, int c, int h, int w, int classes);
/* A deep copy (clean labels and class names included); NULL on no memory. */
ib_dataset *ib_dataset_clone(const ib_dataset *d);
/* Copy class names (n must equal d->classes); replaces any previous names. */
ib_status ib_dataset_set_class_names(ib_dataset *d, const char *const *names, int n);
/* IB_ERR_FORMAT naming the data set and the first example whose label is
 * outside [0, classes) (labels and clean labels). */
ib_status ib_dataset_check(const ib_dataset *d);
/* counts[k] = number of examples with labels[i] == k; counts has d->classes entries. */
void ib_dataset_histogram(const ib_dataset *d, int64_t *counts);
/* Per-channel mean and standard deviation (population) of pixel/255;
 * mean and std have d->c entries.  For normalising with training statistics. */
void ib_dataset_channel_stats(const ib_dataset *d, double *mean, double *std);

/* --- readers (src/data/idx.c, cifar.c, pngdir.c).  Every reader accepts
 * plain or gzip-compressed files (zlib reads both).  Every bad input (a
 * missing or truncated file, a wrong magic number, a count that does not
 * fit the file size, an undecodable PNG, a label outside the class range)
 * returns IB_ERR_IO or IB_ERR_FORMAT with one message naming the file and
 * the problem; sizes are checked against the data actually present before
 * anything large is allocated.  On success *out is a new data set the
 * caller frees; on error *out is NULL. --- */

/* IDX (MNIST, Fashion-MNIST): images magic 0x803 (n, rows, cols) uint8,
 * labels magic 0x801 (n) uint8.  classes = 0 takes max label + 1;
 * classes > 0 makes a label >= classes an error. */
ib_status ib_dataset_load_idx(const char *images_path, const char *labels_path, int classes, ib_dataset **out);
/* CIFAR binary: records of label_bytes label bytes then 3x32x32 pixels
 * (R, G, B planes).  label_bytes 1 = CIFAR-10; 2 = CIFAR-100 (coarse,
 * fine: the fine label is used).  The records of all paths are
 * concatenated in order; every file must hold a whole number of records. */
ib_status ib_dataset_load_cifar(const char *const *paths, int n_paths, int label_bytes, int classes,
                                ib_dataset **out);
/* An image folder ROOT/<class>/<file>.png: classes are the sorted
 * subfolder names, files are taken in sorted order within each class.
 * Grey PNGs give 1 channel, colour PNGs 3 (alpha is composited on black);
 * every image must have the first image's size and channel count. */
ib_status ib_dataset_load_pngdir(const char *root, ib_dataset **out);
/* One PNG as a malloc'd (c, h, w) uint8 image: c = 1 for grey, 3 for
 * colour (alpha composited on black).  IB_ERR_IO / IB_ERR_FORMAT naming
 * the file. */
ib_status ib_image_read_png(const char *path, uint8_t **out, int *c, int *h, int *w);
/* The channels (1 grey, 3 colour) and size a PNG would decode to, from its
 * header alone (no pixel memory): check them before ib_image_read_png so an
 * image of the wrong size is refused without decoding it.  Errors as
 * ib_image_read_png. */
ib_status ib_image_png_info(const char *path, int *c, int *h, int *w);

/* --- known data sets (src/data/registry.c) --- */
typedef struct ib_load_options {
    bool skip_hash;   /* skip the sha256 of the decompressed files (sizes,
                         magic numbers and counts are always checked) */
} ib_load_options;

/* Load a known data set: name "mnist", "fashion-mnist", "cifar10" or
 * "cifar100"; split "train" or "test".  data_dir, if not NULL, is the
 * only place searched (the data set's folder or its parent, e.g. "data"
 * holding "mnist/"); else IBNET_DATA, ./data, ../shared/data and (for
 * Fashion-MNIST) /usr/share/datasets/fashion-mnist are tried in order.
 * Each file may be stored plain or as NAME.gz.  The files are verified:
 * sizes, magic numbers, counts and, unless opt->skip_hash, the sha256 of
 * the decompressed content where it is known (IB_ERR_FORMAT naming the
 * file on a mismatch).  opt may be NULL (verify everything). */
ib_status ib_dataset_load(const char *name, const char *split, const char *data_dir, const ib_load_options *opt,
                          ib_dataset **out);
/* The folder where a known data set's files were found, into buf.
 * IB_ERR_IO listing the places searched when it is nowhere. */
ib_status ib_dataset_find_dir(const char *name, const char *data_dir, char *buf, size_t len);
/* The names of the known data sets, NULL after the last (i >= 0). */
const char *ib_dataset_known(int i);

/* SHA-256 (FIPS 180-4) of a buffer into hex (65 bytes with the NUL). */
void ib_sha256_hex(const void *data, size_t n, char hex[65]);

/* --- subsets (src/data/split.c); each returns a new data set (clean
 * labels and class names copied) or an error. --- */
ib_status ib_dataset_subset(const ib_dataset *d, const int64_t *index, int64_t n, ib_dataset **out);
ib_status ib_dataset_slice(const ib_dataset *d, int64_t start, int64_t len, ib_dataset **out);
/* Train/validation split: *val = the last k examples, *train = the rest. */
ib_status ib_dataset_split_last(const ib_dataset *d, int64_t k, ib_dataset **train, ib_dataset **val);
/* a then b; shapes must agree; classes = max of the two. */
ib_status ib_dataset_concat(const ib_dataset *a, const ib_dataset *b, ib_dataset **out);

/* --- label noise (src/data/label_noise.c) --- */
typedef enum ib_noise_kind {
    IB_NOISE_SYMMETRIC,    /* with probability r, a label becomes one of the OTHER classes, uniformly */
    IB_NOISE_PAIR,         /* IB_NOISE_PAIR_CIFAR10 when d->name starts with "cifar10", else PAIR_NEXT */
    IB_NOISE_PAIR_CIFAR10, /* with probability r: truck->automobile, bird->airplane, deer->horse,
                              cat<->dog; other classes untouched (so the overall rate is r/2) */
    IB_NOISE_PAIR_NEXT     /* with probability r: c -> (c+1) mod classes (MNIST's pair noise) */
} ib_noise_kind;

/* Corrupt d->labels in place, keyed by seed (the draw for example i depends
 * on (seed, i) only).  The original labels are kept in d->clean_labels
 * (allocated on the first call; a second call re-noises from the clean
 * labels).  *actual_rate (may be NULL) receives the fraction of labels
 * that differ from the clean ones.  IB_ERR_ARG for a rate outside [0, 1],
 * fewer than 2 classes, or PAIR_CIFAR10 on a set without 10 classes. */
ib_status ib_label_noise_apply(ib_dataset *d, ib_noise_kind kind, double rate, uint64_t seed, double *actual_rate);
/* The class a pair-noise kind sends c to (c itself if none). */
int ib_label_noise_pair_target(const ib_dataset *d, ib_noise_kind kind, int c);

/* --- mini-batches (src/data/batcher.c) --- */
/* How uint8 pixels p become network inputs.  Record it with a model
 * (checkpoint metadata): attacks clip to the valid input range. */
typedef enum ib_input_norm {
    IB_NORM_UNIT,        /* x = p/255, in [0, 1] */
    IB_NORM_SYMMETRIC,   /* x = 2 p/255 - 1, in [-1, 1] (the Deep VIB code) */
    IB_NORM_STANDARDIZE  /* x = (p/255 - mean_c) / std_c, per channel */
} ib_input_norm;

const char *ib_input_norm_name(ib_input_norm n); /* "unit", "symmetric", "standardize" */
ib_status ib_input_norm_parse(const char *s, ib_input_norm *out);

typedef struct ib_batcher_config {
    int64_t batch_size;  /* > 0 */
    uint64_t seed;       /* keys the shuffle and the augmentation */
    bool shuffle;        /* false: data-set order (evaluation) */
    bool drop_last;      /* drop the final partial batch of an epoch */
    ib_input_norm norm;
    float mean[4], std[4]; /* IB_NORM_STANDARDIZE: per channel, on the p/255
                              scale; std[0] == 0 means compute them from the
                              batcher's data set (pass training statistics to
                              an evaluation batcher) */
    int crop_pad;        /* > 0: random crop of the original size from the
                              image zero-padded (pixel 0) by crop_pad on each
                              side (CIFAR: 4); 0: no crop */
    bool hflip;          /* random horizontal flip with probability 1/2 */
    bool prefetch;       /* a background thread prepares the next batch */
} ib_batcher_config;

/* Valid range of input channel c under cfg's normalisation (the image of
 * pixels 0 and 255): attacks clip to it. */
void ib_batcher_input_range(const ib_batcher_config *cfg, int c, float *lo, float *hi);

typedef struct ib_batcher ib_batcher;
/* d is not owned and must outlive the batcher (and not change while it
 * runs).  IB_ERR_ARG on a bad config (batch size, crop_pad >= h or w,
 * more than 4 channels with STANDARDIZE).  The config is copied; with
 * STANDARDIZE and std[0] == 0 the statistics are computed here. */
ib_status ib_batcher_new(const ib_dataset *d, const ib_batcher_config *cfg, ib_batcher **out);
void ib_batcher_free(ib_batcher *b);
/* Start epoch e: the order is a Fisher-Yates shuffle keyed by (seed, e);
 * augmentation of example i is keyed by (seed, e, i).  So batches are the
 * same whether prefetched or not and whatever the thread count.  Any
 * unfinished epoch is abandoned. */
void ib_batcher_epoch(ib_batcher *b, int64_t epoch);
/* The next batch of the epoch into x (batch_size, c, h, w) and y
 * (batch_size); *count (may be NULL) = examples written (the last batch
 * may be partial).  Returns false, writing nothing, at the end of the
 * epoch (or before the first ib_batcher_epoch call). */
bool ib_batcher_next(ib_batcher *b, float *x, int32_t *y, int64_t *count);
/* Data-set indices of the examples of the batch last returned (count
 * entries), e.g. to tell which examples carry noisy labels. */
const int64_t *ib_batcher_indices(const ib_batcher *b);
int64_t ib_batcher_batches_per_epoch(const ib_batcher *b);
const ib_batcher_config *ib_batcher_get_config(const ib_batcher *b); /* mean/std filled in */
/* Seconds ib_batcher_next spent waiting for (or, without prefetch,
 * preparing) batches since the batcher was made: the trainer's data stall. */
double ib_batcher_wait_seconds(const ib_batcher *b);
/* Rows [*first, *first + *n) of a batch of count rows that rank `rank` of
 * `ranks` holds: count / ranks each, and one more for the first
 * count % ranks ranks. */
void ib_shard_rows(int64_t count, int rank, int ranks, int64_t *first, int64_t *n);
/* From the next epoch started, every batch holds only the rows of the
 * global batch that rank `rank` of `ranks` takes (ib_shard_rows); the order
 * and the augmentation stay those of the global batch.  IB_ERR_ARG unless
 * 0 <= rank < ranks <= batch size.  ranks 1 undoes it. */
ib_status ib_batcher_shard(ib_batcher *b, int rank, int ranks);
/* ==== data: end ==== */

/* ==== derived data: begin (src/data/ corruptions, domains, views) ==== */
/* --- common corruptions (src/data/corrupt*.c), after Hendrycks &
 * Dietterich 2019 ("Benchmarking Neural Network Robustness to Common
 * Corruptions and Perturbations"), with the CIFAR-10-C parameters at
 * severities 1..5 for every image size (MNIST included: radii and sigmas
 * in pixels are used as they are; what the reference gives as fractions
 * of its 32-pixel side, elastic and pixelate, scales with the image side;
 * fog's fractal covers the image).  Frost and spatter are left out
 * (frost needs photographs of frost); docs/corruptions.md lists the
 * parameters and every difference from the reference. --- */
typedef enum ib_corruption {
    IB_CORRUPT_GAUSSIAN_NOISE,
    IB_CORRUPT_SHOT_NOISE,
    IB_CORRUPT_IMPULSE_NOISE,
    IB_CORRUPT_DEFOCUS_BLUR,
    IB_CORRUPT_GLASS_BLUR,
    IB_CORRUPT_MOTION_BLUR,
    IB_CORRUPT_ZOOM_BLUR,
    IB_CORRUPT_SNOW,
    IB_CORRUPT_FOG,
    IB_CORRUPT_BRIGHTNESS,
    IB_CORRUPT_CONTRAST,
    IB_CORRUPT_ELASTIC,
    IB_CORRUPT_PIXELATE,
    IB_CORRUPT_JPEG,
    /* the paper's four extra "held-out" corruptions, minus spatter */
    IB_CORRUPT_SPECKLE_NOISE,
    IB_CORRUPT_GAUSSIAN_BLUR,
    IB_CORRUPT_SATURATE,
    IB_CORRUPT_COUNT
} ib_corruption;
/* The first IB_CORRUPT_BENCHMARK corruptions are the benchmark's 15 minus frost. */
#define IB_CORRUPT_BENCHMARK 14

/* "gaussian_noise", "jpeg_compression", ... (CIFAR-10-C's file names);
 * NULL for an invalid value. */
const char *ib_corruption_name(ib_corruption t);
/* The inverse of ib_corruption_name; IB_ERR_ARG naming s when unknown. */
ib_status ib_corruption_parse(const char *s, ib_corruption *out);

/* Corrupt one image in place: img is (c, h, w) uint8, any size and channel
 * count (colour steps act on channels 0..2 of a 3-channel image and on the
 * one channel of a grey image).  Every random draw is keyed by (seed, type,
 * index) only, the same at every severity, so an image's corruption is
 * reproducible and severities differ only by their parameters.  Output is
 * rounded and clipped to [0, 255].  IB_ERR_ARG for a bad type, severity
 * outside 1..5 or bad size; IB_ERR_NOMEM. */
ib_status ib_corrupt_image(uint8_t *img, int c, int h, int w, ib_corruption type, int severity, uint64_t seed,
                           uint64_t index);
/* A corrupted copy of src (image i keyed by index i), labels copied, name
 * "<src>-<type>-<severity>".  *out is NULL on error. */
ib_status ib_dataset_corrupt(const ib_dataset *src, ib_corruption type, int severity, uint64_t seed,
                             ib_dataset **out);

/* --- geometry (src/data/geometry.c) --- */
/* Rotate each plane of a (c, h, w) image by deg degrees counter-clockwise
 * about its centre ((w-1)/2, (h-1)/2), bilinear, zero fill, rounded to
 * uint8.  src and dst must not overlap.  0 degrees copies exactly. */
ib_status ib_image_rotate(const uint8_t *src, uint8_t *dst, int c, int h, int w, float deg);
/* Every image of src rotated by deg; labels copied.  *out NULL on error. */
ib_status ib_dataset_rotate(const ib_dataset *src, float deg, ib_dataset **out);

/* --- Rotated MNIST domains, as DomainBed (src/data/domains.c) --- */
#define IB_ROTATED_MNIST_DOMAINS 6
/* The angle of DomainBed's domain d: 0, 15, 30, 45, 60, 75 degrees. */
float ib_rotated_mnist_angle(int d);
/* domains[k] = images of src rotated by angles[k] (angles NULL: the
 * DomainBed angles, n_domains <= 6), named "<src>-rot<angle>".  disjoint:
 * as DomainBed, the examples are shuffled (keyed by seed) and domain k
 * takes the k-th of every n_domains of them, so the domains share no
 * digit image; else every domain holds all of src in its order.  On error
 * every domains[k] is NULL. */
ib_status ib_rotated_mnist_domains(const ib_dataset *src, const float *angles, int n_domains, bool disjoint,
                                   uint64_t seed, ib_dataset **domains);
/* Leave-one-domain-out: *train = every domain but held_out, concatenated in
 * order (shapes must agree).  The held-out test set is domains[held_out]. */
ib_status ib_domains_leave_one_out(ib_dataset *const *domains, int n_domains, int held_out, ib_dataset **train);
/* The leave-one-domain-out data set `--dataset rotated-mnist:K` names
 * (src/data/rotated_mnist.c): src cut into the 6 disjoint DomainBed
 * domains (ib_rotated_mnist_domains, keyed by seed; angles NULL: the
 * DomainBed ones); train: the five domains other than held_out,
 * interleaved one example of each in turn (so the last k examples, the
 * validation split of --val-size, hold every training domain equally);
 * else domain held_out.  Named "rotated-mnist:K".  IB_ERR_ARG for
 * held_out outside 0..5. */
ib_status ib_rotated_mnist_split(const ib_dataset *src, const float *angles, int held_out, uint64_t seed, bool train,
                                 ib_dataset **out);
/* The key of the domains `rotated-mnist:K` cuts: fixed, so every run and
 * every K sees the same six domains (seeds vary the training only). */
#define IB_ROTATED_MNIST_SEED 0

/* --- two-view Noisy MNIST (Wang et al. 2015; src/data/multiview.c) --- */
/* view1[i] = src[i] rotated by an angle uniform in [-45, 45] degrees;
 * view2[i] = src[partner[i]], a DIFFERENT example of the same class drawn
 * uniformly, plus independent noise uniform in [0, 1] on the [0, 1] pixel
 * scale, clipped to [0, 1] and rounded back to uint8.  Both views carry
 * src's labels.  All draws keyed by (seed, i).  partner (n entries) may be
 * NULL.  IB_ERR_ARG when a class has a single example (it cannot be
 * paired).  On error both views are NULL. */
ib_status ib_noisy_mnist_two_view(const ib_dataset *src, uint64_t seed, ib_dataset **view1, ib_dataset **view2,
                                  int64_t *partner);
/* view1[i] = src[i] (a colour set, c = 3); view2[i] = its greyscale
 * (BT.601 luma) in three equal channels plus Gaussian noise of std
 * noise_std on the [0, 1] scale keyed by (seed, i), clipped and rounded.
 * Labels copied.  On error both views are NULL. */
ib_status ib_color_grey_two_view(const ib_dataset *src, float noise_std, uint64_t seed, ib_dataset **view1,
                                 ib_dataset **view2);

/* --- PNG output (src/data/png_write.c) --- */
/* Write a planar (c, h, w) uint8 image as an 8-bit PNG: c = 1 grey, 2 grey +
 * alpha, 3 RGB, 4 RGBA.  IB_ERR_IO naming the path on failure. */
ib_status ib_png_write(const char *path, const uint8_t *img, int c, int h, int w);
/* n images (n, c, h, w) laid out row-major in a grid of cols columns,
 * each enlarged scale times (nearest neighbour), pad pixels of the value
 * background between and around tiles. */
ib_status ib_png_write_grid(const char *path, const uint8_t *imgs, int n, int c, int h, int w, int cols, int pad,
                            int scale, uint8_t background);
/* ==== derived data: end ==== */

/* ------------------------------------------------------------------------
 * Methods (src/ib/, docs/methods.md).  A method is one objective behind
 * one interface: it declares what it needs (aligned input views, the
 * networks to build and the view each reads, labels, bottlenecks) and
 * builds named loss terms from the networks' outputs.  The trainer builds what the method declares and asks
 * it for its loss; it knows no method by name.  The registry holds the
 * library's methods ("vib", "vub"); ib_train_with runs one of the
 * caller's own instead.
 * ---------------------------------------------------------------------- */
#define IB_MAX_VIEWS 4
#define IB_MAX_NETS 4

/* What a method needs from the trainer (bits of ib_method.needs). */
#define IB_METHOD_NEEDS_LABELS 1u      /* the labels of view 0 */
#define IB_METHOD_NEEDS_BOTTLENECK 2u  /* the run's model must have a Gaussian bottleneck */

/* A network the trainer builds into the training graph for a method.
 * Networks over the same model share its parameters (the store is
 * get-or-create by name), so one model on two views is one backbone; a
 * model whose layers have other names has parameters of its own in the
 * same store (a teacher, a critic). */
typedef struct ib_method_net {
    const char *model;       /* NULL: the run's model; else a built-in name or description file */
    int view;                /* the input view it reads, 0..views-1 */
} ib_method_net;

/* What the trainer built, passed to ib_method.build. */
typedef struct ib_method_inputs {
    ib_graph *g;                          /* the training graph */
    int n_views;
    ib_node *x[IB_MAX_VIEWS];             /* (N, C, H, W) each: example i of every view is the same example */
    ib_node *y;                           /* (N) int32 labels of view 0 */
    int n_nets;
    ib_model_out out[IB_MAX_NETS];        /* out[0]: the run's model on view 0 (the one evaluated) */
    const ib_objective *objective;        /* the run's objective settings (beta, entropy weight...) */
} ib_method_inputs;

typedef struct ib_method {
    const char *name;        /* "vib": what config.json's "objective" names */
    const char *summary;     /* one line for help texts */
    unsigned needs;          /* IB_METHOD_NEEDS_* bits */
    int views;               /* aligned input views, 1..IB_MAX_VIEWS */
    int n_nets;              /* networks, 1..IB_MAX_NETS; 0 means one: the run's model on view 0 */
    ib_method_net nets[IB_MAX_NETS]; /* nets[0] must be the run's model on view 0 */
    /* View v >= 1 of the training set: a new data set (*out, freed by the
     * trainer) whose example i is example i of train seen another way, with
     * train's size and image shape.  NULL: every view is the training set
     * itself.  The views are batched in one order (one seed), so a batch
     * of every view holds the same examples.  The trainer also makes view
     * 1 of the test set with it (evaluated each epoch as test_view2_*), so
     * it must take any data set, not only the training set. */
    ib_status (*make_view)(const ib_dataset *train, int v, uint64_t seed, ib_dataset **out);
    /* Checks the objective settings before any time is spent (NULL: none
     * to check); IB_ERR_ARG with a message. */
    ib_status (*check)(const ib_objective *o);
    /* Adds the method's terms to *loss (starts zeroed) with
     * ib_loss_add_term; graph errors are returned. */
    ib_status (*build)(const ib_method_inputs *in, ib_loss *loss);
} ib_method;

/* The library's method called name, or NULL (IB_ERR_ARG in ib_last_error()
 * listing the known names). */
const ib_method *ib_method_find(const char *name);
/* The i-th method of the registry, NULL past the end. */
const ib_method *ib_method_at(int i);
/* Checks that m is well formed (views, nets, callbacks) and that o suits it
 * (its check): IB_ERR_ARG with a message naming the method. */
ib_status ib_method_validate(const ib_method *m, const ib_objective *o);

/* ------------------------------------------------------------------------
 * Training and evaluation (src/train/, src/eval/).  ib_train runs a whole
 * experiment into a run directory:
 *   config.json          the resolved configuration
 *   metrics.jsonl        one JSON object per epoch
 *   last.safetensors     weights + optimizer + EMA + progress (for --resume)
 *   best.safetensors     the weights of the best validation (or test) epoch
 *   summary.json         the final figures
 * Everything random is keyed by the seed, so a resumed run reaches exactly
 * the weights of an uninterrupted one.
 * ---------------------------------------------------------------------- */
typedef struct ib_train_config {
    char model[1024];         /* built-in model name or description file */
    char vib_cells_after[1024]; /* "" or ib_model_add_cells' list: VIB cells added to the model */
    char init_from[1024];     /* "" or a checkpoint: a new run starts from every tensor of it whose name and
                                 shape match (EMA weights when it has them; ib_checkpoint_load_partial) */
    char freeze[1024];        /* "" or comma-separated parameter-name prefixes kept fixed (ib_params_freeze;
                                 a frozen batch norm uses and keeps its running statistics) */
    int init;                 /* 0: the model's own `init` line; else 1 + an ib_init_style
                                 (JSON/CLI: "model", "pytorch", "glorot", "kaiming") */
    char dataset[1024];       /* "mnist", "fashion-mnist", "cifar10", "cifar100", idx:DIR, folder:ROOT */
    char data_dir[1024];      /* "" = search (IBNET_DATA, ./data, ../shared/data) */
    char out_dir[1024];       /* run directory */
    int64_t epochs;
    int64_t batch_size;
    int64_t eval_batch_size;
    uint64_t seed;
    ib_optim_config optim;
    ib_schedule schedule;     /* scales optim.lr, the one learning rate */
    float ema_decay;          /* 0 = no EMA; evaluation uses the EMA weights when on */
    bool ema_zero_debias;
    ib_objective objective;   /* the settings the methods read (beta, entropy weight...) */
    char method[32];          /* the method (JSON "objective"): "vib" (default), "vub"; see ib_method_find */
    bool separate_views;      /* two-view methods: the run's model on view v >= 2 is built under the scope
                                 "view<v>" (parameters of its own) instead of sharing view 1's */
    int eval_samples;         /* S of the S-sample average of probabilities (12) */
    int64_t val_size;         /* > 0: hold out the last val_size training examples;
                                 the best checkpoint is chosen on them (else on test) */
    ib_input_norm norm;
    bool augment;             /* random crop (pad 4) + horizontal flip */
    bool label_noise;         /* apply noise_kind at noise_rate to the training labels */
    ib_noise_kind noise_kind;
    float noise_rate;
    bool skip_hash;           /* skip the sha256 check of the data files */
    int64_t train_limit;      /* > 0: use only the first N training examples */
    int64_t test_limit;       /* > 0: evaluate on the first N test examples */
    int64_t max_steps;        /* > 0: stop after this many steps of one invocation (a resume
                                 continues exactly where it stopped, even mid-epoch) */
    int64_t eval_every;       /* evaluate every N epochs (and at the last) */
    bool divergence_check;    /* true (default): stop with IB_ERR_NUMERIC when the loss diverges while
                                 staying finite (its smoothed value 1000 times its start or its lowest;
                                 src/train/loss_watch.h); a NaN/Inf loss stops the run either way */
    /* Information tracking (src/train/track_info.c, docs/information.md): with track_info an estimator
     * name of ib_mi_parse (not "variational"), I(X;T) and I(T;Y) of the layers in track_layers
     * ("" = every top-level layer) on the first track_limit examples of the test (track_split 0) or
     * training split (1), with the weights being trained, mean path, go to info.jsonl at the end of
     * every track_every-th epoch and the last.  Read only: the training's bits do not change. */
    char track_info[64];      /* "" = off */
    char track_layers[1024];
    int64_t track_every;      /* >= 1 (1) */
    int64_t track_limit;      /* >= 2 (1000) */
    int track_split;          /* 0 test, 1 train (JSON/CLI: "test", "train") */
    bool sync_batchnorm;      /* data-parallel runs (docs/mpi.md): batch norm takes its statistics over the
                                 global batch (an allreduce of the sums) instead of each rank's rows */
    int64_t patience;         /* > 0: early stopping: end the run after an evaluation `patience` epochs
                                 past the best validation accuracy (needs val_size > 0); 0: off */
    /* Snapshots (src/train/snapshots.c): "0,1,2,5" also writes epoch-N.safetensors (the weights being
     * trained, no optimizer state) at the end of each listed epoch; 0 = the initial weights.  Epochs
     * in 0..epochs, each once.  "" = none. */
    char save_epochs[256];
    /* Batch-norm statistics of the EMA network (src/train/ema_bn.c): before the EMA weights of a model
     * with batch norm are evaluated or saved, a training-mode forward pass (no step) of them over the
     * first ema_bn_batches batches of the epoch's training order (all of them when the epoch has fewer)
     * sets their running statistics to the mean of the batch statistics; the training network's own
     * are left alone.  0: off (the last step's statistics, as before).  Default 20. */
    int64_t ema_bn_batches;
} ib_train_config;

/* A data set as users name it: a known set ("mnist", "fashion-mnist",
 * "cifar10", "cifar100", verified as ib_dataset_load does), "idx:DIR" (an
 * IDX pair named like MNIST's files, train-* and t10k-*, plain or .gz), or
 * "folder:ROOT" (PNG folders ROOT/train/<class>/ and ROOT/test/<class>/).
 * split is "train" or "test". */
ib_status ib_dataset_open(const char *spec, const char *split, const char *data_dir, const ib_load_options *opt,
                          ib_dataset **out);
/* Two-view sets (src/data/twoview.c; docs/vsd.md): "noisy-mnist-2view"
 * (ib_noisy_mnist_two_view on MNIST) and "cifar10-2view"
 * (ib_color_grey_two_view on CIFAR-10, noise std 0.1), each split keyed by
 * a fixed seed.  ib_dataset_open gives view 1 of them; this gives view
 * `view` (0-based) of any set (a one-view set has only view 0: IB_ERR_ARG
 * otherwise).  Example i of every view has the same label. */
ib_status ib_dataset_open_view(const char *spec, const char *split, int view, const char *data_dir,
                               const ib_load_options *opt, ib_dataset **out);
/* The views of a data-set name: 2 for the two-view sets, else 1. */
int ib_dataset_spec_views(const char *spec);

/* The defaults: Deep VIB on MNIST with the paper's recipe (vib-mlp, beta
 * 1e-3, Adam lr 1e-4 with beta1 0.5, x0.97 every 2 epochs, batch 100, EMA
 * 0.999 with zero-debiasing, inputs in [-1,1], 12-sample evaluation) but 10
 * epochs instead of 200, so the default run takes minutes. */
ib_train_config ib_train_config_default(void);
/* Recipes: the set-ups the results were made with, by name, as a starting
 * point (set fields after).  "deep-vib": the defaults for the paper's 200
 * epochs; "cifar-resnet": resnet20 on cifar10, 50 epochs, batch 128, SGD
 * lr 0.1 Nesterov momentum 0.9, weight decay 5e-4, cosine decay after a
 * 1-epoch warm-up, crop + flip, per-channel standardisation, He init, no
 * EMA; "cellvib-mnist": lenet-vibcells on mnist, 8 epochs, batch 64, Adam
 * lr 1e-3 (beta1 0.9) constant, beta 1e-5 linear in depth, inputs in
 * [0, 1], no EMA; "vub-mnist": deep-vib with the vub objective, lambda 1,
 * entropy cap 0.85 ln 10 (docs/vub.md).  *c = the recipe; IB_ERR_ARG for an
 * unknown name.
 * Changing epochs after a cosine recipe: set schedule.total to match.
 * ib_train_recipe_name(i): the i-th name, NULL past the end. */
ib_status ib_train_config_recipe(const char *name, ib_train_config *c);
const char *ib_train_recipe_name(int i);
/* JSON text of a config (malloc'd) and back; from_json starts from the
 * defaults and rejects unknown keys with IB_ERR_FORMAT.  to_json adds a
 * "provenance" object (not a setting: from_json skips it): the ibnet
 * version, the commit it was built from (git describe, else the version),
 * the thread count (ib_get_threads) and the OpenBLAS, oneDNN and cJSON
 * versions, so each run's figures can be traced to what computed them. */
char *ib_train_config_to_json(const ib_train_config *c);
ib_status ib_train_config_from_json(const char *json, ib_train_config *c);
/* The value of an enum field of the configuration from its name as
 * config.json spells it ("optimizer", "adamw" -> IB_OPTIM_ADAMW); -1 when
 * the key is not an enum field or the name not one of its names.  The CLI
 * maps its flags through this, so both speak the same names. */
int ib_train_config_enum(const char *key, const char *name);

/* The settings as a table, in config.json's order: one entry per field of
 * ib_train_config, with its config.json key, its `ibnet train` flag, help
 * line and choices.  The command line is built from it, so a new setting
 * is one line of src/train/config.c and becomes a key and a flag at once. */
typedef enum ib_config_type {
    IB_CONFIG_TEXT,   /* a string (model, paths): refused, never cut, when too long */
    IB_CONFIG_INT,
    IB_CONFIG_NUMBER,
    IB_CONFIG_BOOL,   /* a flag without a value */
    IB_CONFIG_CHOICE, /* one of choices[] */
    IB_CONFIG_LIST    /* comma-separated numbers ("0.1,0.01") */
} ib_config_type;

typedef struct ib_config_field {
    const char *key;            /* config.json's key: "batch_size" */
    char flag[64];              /* `ibnet train`'s flag: "--batch-size"; "" when none */
    ib_config_type type;
    const char *metavar;        /* "N", "X", "DIR"...; NULL for IB_CONFIG_BOOL */
    const char *help;           /* one line */
    const char *const *choices; /* IB_CONFIG_CHOICE: the names by value, NULL-terminated */
    char shown[64];             /* the default as help shows it; "" for none */
    bool flag_clears;           /* IB_CONFIG_BOOL: the flag sets false (--no-ema-debias) */
} ib_config_field;

/* Fills *out with the i-th setting (0-based); false past the last one.
 * The strings are static. */
bool ib_train_config_field(int i, ib_config_field *out);
/* Sets one setting, named by its key or its flag ("lr" or "--lr"), from
 * its text as on a command line: numbers in full (no trailing text, no
 * overflow: an error, never a wrapped or cut value), IB_CONFIG_BOOL as
 * "true"/"false", lists as "1,2,3", a string that does not fit (the
 * 1023-byte paths) refused.  Two settings pull another along: choosing an
 * optimizer of another kind resets weight_decay to that kind's default
 * (set weight_decay after it), and noise_rate sets label_noise to rate > 0.
 * IB_ERR_ARG with a message naming `name` and the text. */
ib_status ib_train_config_set(ib_train_config *c, const char *name, const char *text);
/* Checks every field (a negative beta, a zero batch, an unknown model or
 * data set...) before any time is spent: IB_ERR_ARG with a message. */
ib_status ib_train_config_check(const ib_train_config *c);

/* Calibration of a predictor's probabilities (src/eval/calibration.c;
 * docs/robustness.md).  Confidence = the largest probability, prediction =
 * its class (the first on ties).  Bin b of the reliability diagram holds
 * the confidences in (b/B, (b+1)/B] (bin 0 also holds 0), B = 15 as Guo et
 * al. (2017).  ECE = sum_b (n_b / n) |acc_b - conf_b|; Brier = mean over
 * examples of sum_c (p_c - [c == y])^2 (0..2); entropy = mean of
 * -sum_c p_c ln p_c (nats). */
#define IB_CALIBRATION_BINS 15
typedef struct ib_calibration {
    double ece, brier, entropy;
    int64_t bin_count[IB_CALIBRATION_BINS];
    double bin_conf[IB_CALIBRATION_BINS]; /* mean confidence in the bin (0 when empty) */
    double bin_acc[IB_CALIBRATION_BINS];  /* accuracy in the bin (0 when empty) */
} ib_calibration;
/* Calibration of n rows of probabilities p (n, classes), each summing to 1,
 * against labels y in 0..classes-1.  IB_ERR_ARG on NULLs, classes < 1 or a
 * label outside the range. */
ib_status ib_calibration_compute(const double *p, const int32_t *y, int64_t n, int classes, ib_calibration *out);

typedef struct ib_eval_result {
    int64_t n;               /* examples evaluated */
    int classes;
    double acc_1shot;        /* one sample of every bottleneck */
    double acc_avg;          /* mean of softmax probabilities over S samples */
    double acc_mean;         /* the mean path (z = mu) */
    double nll_avg, nll_mean;/* nats, of the averaged / mean-path probabilities */
    double ce_samples;       /* nats: mean over the S samples of each sample's cross-entropy,
                                E_z[-log q(y|z)]; I(Z;Y) >= H(Y) - ce_samples (Deep VIB's bound) */
    double kl[IB_MAX_BOTTLENECKS]; /* mean per-example KL of each KL node passed (nats), mean path inputs:
                                      the trainer and `ibnet eval` pass every stochastic layer
                                      (ib_model_out.st, Gaussian and Bernoulli) */
    int n_kl;
    int64_t *confusion;      /* classes x classes (row = true, col = predicted, avg mode); malloc'd */
    ib_calibration calib;    /* of the averaged prediction (the deterministic one without bottlenecks) */
    ib_calibration calib_mean; /* of the mean path */
} ib_eval_result;
void ib_eval_result_free(ib_eval_result *r);

/* Evaluate a compiled graph (input x (B, C, H, W), logits (B, classes),
 * n_kl per-example KL nodes (B rows, or B * upstream rows of a layer
 * after others with particles: an example's KL is then the mean over its
 * paths) or batch-mean scalars) on a data set, in
 * eval mode (batch norm running statistics, no dropout): the mean path,
 * one sample, and the mean of the softmax probabilities over `samples`
 * samples (only when the graph draws noise in eval mode: a Gaussian
 * bottleneck, a Bernoulli layer; otherwise all three are the deterministic
 * result).  The last partial batch is zero-padded.  The noise is keyed by
 * `seed` alone, so an evaluation is reproducible.  bc gives the input
 * normalisation (its shuffle/augmentation settings are ignored). */
ib_status ib_evaluate(ib_graph *g, ib_node *x, ib_node *logits, int n_kl, ib_node *const *kl, const ib_dataset *d,
                      const ib_batcher_config *bc, int samples, uint64_t seed, ib_eval_result *out);
/* ib_evaluate over the ranks of an MPI job (docs/mpi.md): rank `rank` of
 * `ranks` evaluates batches rank, rank + ranks, ... and the figures are
 * summed over the job's ranks, so every rank gets the result of the whole
 * set.  A collective: every rank calls it with the same arguments but its
 * rank.  The counts (accuracies, confusion matrix, calibration bins) equal
 * ib_evaluate's exactly (each batch is computed as one process computes
 * it, with the same threads); the sums (NLL, entropy, Brier, KL) are added
 * in another order, so they agree to rounding (about 1e-15 relative).
 * ranks 1 is ib_evaluate. */
ib_status ib_evaluate_shard(ib_graph *g, ib_node *x, ib_node *logits, int n_kl, ib_node *const *kl, const ib_dataset *d,
                            const ib_batcher_config *bc, int samples, uint64_t seed, int rank, int ranks,
                            ib_eval_result *out);

/* The seed ib_train evaluates with: the run's seed XOR this salt (so the
 * noise of evaluation never repeats the noise of training).  `ibnet eval`
 * uses the same key by default and reproduces the run's figures. */
#define IB_EVAL_SEED_SALT 0xE7A1u

/* ------------------------------------------------------------------------
 * Training-checkpoint metadata (src/io/checkpoint_meta.c): the JSON object
 * stored under the safetensors metadata key "ibnet" by the trainer, written
 * and read in one place.  Its "meta_version" says the layout; files from
 * before the field are version 0 and read the same way.
 * ---------------------------------------------------------------------- */
#define IB_CHECKPOINT_META_VERSION 1

typedef struct ib_checkpoint_meta {
    int version;                /* meta_version of the file (0: before the field) */
    int64_t epoch;              /* epochs completed */
    int64_t step;               /* optimizer steps */
    int64_t epoch_batches_done; /* batches of epoch + 1 already trained (a run stopped mid-epoch), else 0 */
    int64_t best_epoch;         /* 0: none yet */
    double best_accuracy;       /* -1: none yet */
    /* the trainer's divergence watch (src/train/loss_watch.h), so a resume
     * judges the loss against the run's start, not its own first steps:
     * reference R and lowest smoothed loss m; 0 when not recorded */
    double loss_reference, loss_lowest;
    bool counts_valid;          /* read: epoch/step/... present, whole and in range (a resume needs them) */
    uint64_t seed;              /* the run's seed */
    int threads;                /* threads of the writer (0: unknown) */
    const char *model;          /* model name or file as given */
    const char *model_text;     /* canonical model description (ib_model_text) */
    const char *dataset;        /* data set spec ("mnist", "idx:DIR"...) */
    int classes;
    ib_input_norm input_norm;   /* how pixels became inputs */
    int channels;               /* entries of the four arrays below (<= 4) */
    float input_mean[4], input_std[4]; /* per channel (STANDARDIZE), on the p/255 scale */
    float input_min[4], input_max[4];  /* the valid input range (pixels 0 and 255) */
    int n_class_names;
    const char *const *class_names; /* NULL when the data set has none */
    const char *config_json;    /* the training configuration as a JSON object text, or NULL */
    /* read from the configuration, with defaults when absent or out of range: */
    int eval_samples;           /* 12 */
    float ema_decay;            /* 0: no EMA */
    bool ema_zero_debias;       /* true */
} ib_checkpoint_meta;

/* The JSON object text (malloc'd; NULL when out of memory) of m, with
 * meta_version = IB_CHECKPOINT_META_VERSION; only the first `channels`
 * entries of the input arrays are written.  m is only read (its pointers
 * stay the caller's). */
char *ib_checkpoint_meta_to_json(const ib_checkpoint_meta *m);
/* Parse metadata text (what names the source in messages).  IB_ERR_FORMAT
 * with a message for: no text (not an ibnet training checkpoint), text
 * that is not a JSON object (damaged metadata), a meta_version above
 * IB_CHECKPOINT_META_VERSION (written by a newer ibnet), no model
 * description, an unknown input normalisation, or non-positive input_std
 * under STANDARDIZE.  Out-of-range counts clear counts_valid; other
 * out-of-range numbers fall back to the defaults.  On success free *m with
 * ib_checkpoint_meta_free (it owns its strings); on failure *m is empty. */
ib_status ib_checkpoint_meta_parse(const char *json, const char *what, ib_checkpoint_meta *m);
/* ib_checkpoint_read_metadata + ib_checkpoint_meta_parse: a missing or
 * unreadable file is IB_ERR_IO, a damaged header IB_ERR_FORMAT. */
ib_status ib_checkpoint_meta_read(const char *path, ib_checkpoint_meta *m);
void ib_checkpoint_meta_free(ib_checkpoint_meta *m); /* a parsed one; NULL-safe */

/* ------------------------------------------------------------------------
 * A training checkpoint opened as a runnable network (src/eval/net.c):
 * the model rebuilt from the model text in its metadata, the weights
 * (raw or EMA) loaded and verified, and the input normalisation of the run
 * recorded.  The base of `ibnet eval`, `ibnet predict` and attacks.
 *
 * Units of the input node.  IB_NET_INPUT_NORMALIZED: what the training
 * batcher fed the model (ib_net_batcher_config gives the batcher that
 * produces it from pixels).  IB_NET_INPUT_PIXELS: pixels scaled to [0, 1]
 * (p/255); the recorded normalisation is applied inside the graph, so
 * dL/dx is in pixel units and an attack's epsilon means the same for every
 * model (the gradient already holds the 1/std factor).  In pixel mode
 * ib_net_batcher_config is the UNIT batcher, so ib_evaluate works
 * unchanged; the figures equal those of the normalised input up to float
 * rounding of the normalisation.
 * ---------------------------------------------------------------------- */
typedef enum ib_net_weights {
    IB_NET_WEIGHTS_DEFAULT, /* the EMA average when the file holds one, else the raw weights */
    IB_NET_WEIGHTS_RAW,     /* the raw weights */
    IB_NET_WEIGHTS_EMA      /* the EMA average; IB_ERR_MISMATCH when the file holds none */
} ib_net_weights;

typedef enum ib_net_input {
    IB_NET_INPUT_NORMALIZED, /* the model's own input (the batcher's normalisation) */
    IB_NET_INPUT_PIXELS      /* pixels in [0, 1]; the normalisation runs inside the graph */
} ib_net_input_units;

typedef struct ib_net_options {
    int64_t batch_size;     /* rows B of the input node (>= 1) */
    ib_net_weights weights;
    ib_net_input_units input;
    bool input_grad;        /* backward gives dL/dx (the input requires grad, no parameter
                               gradients, no memory sharing); else a forward-only graph */
    int samples;            /* 0: one draw of the noise per forward (ib_evaluate's graph);
                               S >= 1: the input is repeated S times inside the graph
                               (logits (B*S, classes)) and log_probs is the log of the
                               S-sample mean of the softmax, one backward for the EOT gradient */
    bool mean_path;         /* stochastic layers take their mean (z = mu) */
    bool defer_compile;     /* leave the graph uncompiled: add nodes (a loss) to ib_net_graph,
                               then call ib_net_compile */
    bool skip_checksums;    /* do not verify the tensors' checksums */
    const char *scope;      /* NULL: the run's model; "view2": the copy a --separate-views run trained
                               for view 2 (its view2.* weights; ib_model_build_scoped) */
    bool given_noise;       /* each Gaussian bottleneck takes its noise eps from an input node the
                               caller fills (ib_net_noise), used whatever mean_path says; other
                               random ops (Bernoulli layers, dropout) still draw keyed noise.
                               Added after 0.1.0 (docs/packaging.md, ABI changes) */
} ib_net_options;

typedef struct ib_net ib_net;

/* batch_size 1, default weights, normalised input, forward only, samples 0. */
ib_net_options ib_net_options_default(void);
/* Open path (o NULL: the defaults).  Errors, each with a message naming the
 * file: IB_ERR_IO (missing or unreadable), IB_ERR_FORMAT (not a training
 * checkpoint, damaged metadata, a newer metadata version, a damaged
 * tensor), IB_ERR_MISMATCH (weights that do not fit the recorded model),
 * IB_ERR_ARG (bad options).  On success *out is a new network
 * (ib_net_close); on failure *out is NULL. */
ib_status ib_net_open(const char *path, const ib_net_options *o, ib_net **out);
/* Compile a network opened with defer_compile (IB_ERR_STATE otherwise, or
 * when already compiled); the graph's build errors come back here. */
ib_status ib_net_compile(ib_net *n);
void ib_net_close(ib_net *n); /* NULL is a no-op */

ib_graph *ib_net_graph(ib_net *n);        /* eval mode, seed = ib_net_eval_seed */
ib_params *ib_net_params(ib_net *n);
const ib_model *ib_net_model(const ib_net *n);
ib_node *ib_net_input(ib_net *n);         /* (B, C, H, W), units as opened */
ib_node *ib_net_logits(ib_net *n);        /* (B, classes), or (B*S, classes) with samples S */
ib_node *ib_net_log_probs(ib_net *n);     /* (B, classes): log softmax, or log of the S-sample mean */
ib_node *ib_net_labels(ib_net *n);        /* int32 (B) for the loss; NULL without input_grad */
ib_node *ib_net_loss(ib_net *n);          /* mean cross-entropy of log_probs; NULL without input_grad */
/* The model's outputs (bottlenecks, their names and per-example KL nodes). */
const ib_model_out *ib_net_outputs(const ib_net *n);
/* The per-example KL nodes of the bottlenecks, as ib_evaluate takes them
 * (ib_net_outputs(n)->n_bottlenecks entries). */
ib_node *const *ib_net_kl(const ib_net *n);
/* With given_noise: the noise inputs, one per Gaussian bottleneck in depth
 * order (ib_model_bottleneck_count), each (rows, bottleneck shape), rows =
 * B, times S with samples S, times the particles of the stochastic layers
 * up to and including that bottleneck; z = mu + sigma * eps.  Fill
 * ib_node_data before forward.  Count 0 and NULL without given_noise or
 * out of range. */
int ib_net_noise_count(const ib_net *n);
ib_node *ib_net_noise(ib_net *n, int i);
/* The checkpoint's metadata: dataset, class names, seed, epoch, config. */
const ib_checkpoint_meta *ib_net_meta(const ib_net *n);
/* The batcher settings that turn pixels into what the input node takes:
 * the run's normalisation (NORMALIZED) or IB_NORM_UNIT (PIXELS); batch_size B. */
const ib_batcher_config *ib_net_batcher_config(const ib_net *n);
uint64_t ib_net_eval_seed(const ib_net *n); /* the run's seed ^ IB_EVAL_SEED_SALT */
int ib_net_eval_samples(const ib_net *n);   /* the run's S (12 by default) */
bool ib_net_used_ema(const ib_net *n);      /* the EMA average was loaded */

/* Per-epoch report passed to the callback and written to metrics.jsonl. */
typedef struct ib_epoch_report {
    int64_t epoch;           /* 1-based */
    int64_t epochs;
    int64_t step;            /* optimizer steps so far */
    double seconds;          /* wall time of the epoch (training + evaluation) */
    double samples_per_s;
    double data_wait_s;      /* time the trainer waited for batches */
    float lr;
    double loss, ce;         /* training means over the epoch's train_batches batches */
    int64_t train_batches;   /* batches the training means cover: after a resume inside the epoch,
                                only those trained since (metrics.jsonl "train_batches") */
    double kl[IB_MAX_BOTTLENECKS];
    float beta[IB_MAX_BOTTLENECKS];
    int n_kl;
    int n_terms;             /* the method's named terms: epoch means, in the order the method added them */
    char term_name[IB_MAX_TERMS][32];
    double term[IB_MAX_TERMS];
    double noisy_fit;        /* with label noise: fraction of noisy examples predicted as their noisy label */
    bool evaluated;
    ib_eval_result val, test;
    bool has_val;
} ib_epoch_report;

typedef struct ib_train_progress {
    int64_t epoch, epochs;   /* 1-based */
    int64_t batch, batches;
    double samples_per_s, eta_s;
    double loss, ce, kl_total;
    int n_terms;             /* the method's named terms: means over the epoch so far */
    const char *term_name[IB_MAX_TERMS];
    double term[IB_MAX_TERMS];
} ib_train_progress;

typedef struct ib_train_callbacks {
    void *ctx;
    void (*progress)(void *ctx, const ib_train_progress *p);   /* after each step; may be NULL */
    void (*epoch_end)(void *ctx, const ib_epoch_report *r);    /* may be NULL */
    volatile int *stop;      /* set non-zero (e.g. from SIGINT) to stop after the step; may be NULL (over MPI
                                ranks a stop asked on one rank stops all, and is written into every rank's flag) */
    void (*note)(void *ctx, const char *text); /* one line of information before training (what
                                                  --init-from loaded); may be NULL */
} ib_train_callbacks;

/* Train from scratch into cfg->out_dir (created; an existing run there is
 * refused unless it is empty).  IB_ERR_NUMERIC if the loss becomes NaN/Inf
 * or diverges while finite (cfg->divergence_check): the message names the
 * epoch and step and what last.safetensors holds (the last epoch saved
 * before; the diverged state is never saved).  An epoch whose checkpoint
 * cannot be written fails the run before cb->epoch_end is called for it.  The run holds an exclusive lock on out_dir/.lock while it
 * may write there: IB_ERR_STATE naming the holder's PID if another process
 * holds it.  Temporaries left there by dead writers are removed. */
ib_status ib_train(const ib_train_config *cfg, const ib_train_callbacks *cb);
/* Continue the run in dir from its last checkpoint (config.json is read
 * from dir; epochs may be raised with new_epochs > 0).  Locked as ib_train.
 * A run that failed before its first checkpoint (config.json and no
 * last.safetensors) starts again from step 0. */
ib_status ib_train_resume(const char *dir, int64_t new_epochs, const ib_train_callbacks *cb);
/* The same with a method of the caller's own instead of the registry's
 * method named by cfg->method (NULL: that one).  m is not owned and must
 * outlive the call; a resume must pass the same method.  cfg->method
 * should hold m->name, which config.json records; IB_ERR_ARG if it
 * names another method. */
ib_status ib_train_with(const ib_train_config *cfg, const ib_method *m, const ib_train_callbacks *cb);
ib_status ib_train_resume_with(const char *dir, int64_t new_epochs, const ib_method *m, const ib_train_callbacks *cb);

/* ==== attacks: begin (src/eval/attack*.c; docs/attacks.md) ==== */
/* Adversarial attacks on a classifier graph, in PIXEL space: the
 * adversarial image stays in [0, 1] pixels (byte / 255) and is mapped
 * through the model's input normalisation at every step, so eps means the
 * same for every model.  Fair to stochastic networks: the gradient is that
 * of the loss of the S-sample average (expectation over the noise, EOT),
 * success is judged on the S-sample prediction, and the attack through
 * the mean path (z = mu) is run as well; an example counts as robust only
 * if no attack found a point of the ball that fools that prediction.
 * Everything is keyed by the config's seed. */
typedef enum ib_attack_kind { IB_ATTACK_FGSM, IB_ATTACK_PGD, IB_ATTACK_CW } ib_attack_kind;
typedef enum ib_attack_norm { IB_ATTACK_LINF, IB_ATTACK_L2 } ib_attack_norm;
/* The loss FGSM and PGD ascend, on the log-probabilities la of the
 * S-sample average: CE = -la_y (targeted: la_t); MARGIN = max_{j != y}
 * la_j - la_y (targeted: la_t - max_{j != t} la_j), which does not saturate
 * with the softmax; BOTH runs each and keeps per example the stronger. */
typedef enum ib_attack_loss { IB_ATTACK_LOSS_CE, IB_ATTACK_LOSS_MARGIN, IB_ATTACK_LOSS_BOTH } ib_attack_loss;

/* Names as the CLI spells them ("fgsm", "pgd", "cw"; "linf", "l2"; "ce",
 * "margin", "both"); NULL for an invalid value.  parse: IB_ERR_ARG naming
 * the string and the known names when it is unknown. */
const char *ib_attack_kind_name(ib_attack_kind k);
ib_status ib_attack_kind_parse(const char *s, ib_attack_kind *out);
const char *ib_attack_norm_name(ib_attack_norm n);
ib_status ib_attack_norm_parse(const char *s, ib_attack_norm *out);
const char *ib_attack_loss_name(ib_attack_loss l);
ib_status ib_attack_loss_parse(const char *s, ib_attack_loss *out);

#define IB_ATTACK_MAX_EPS 16

typedef struct ib_attack_config {
    ib_attack_kind kind;
    ib_attack_norm norm;       /* CW: L2 only */
    ib_attack_loss loss;       /* FGSM and PGD */
    bool targeted;             /* push each example to a target class instead of away from its label */
    const int32_t *targets;    /* targeted: (n) target classes, each != the label; NULL: a class
                                  != the label drawn uniformly, keyed by (seed, example index) */
    int n_eps;                 /* 1..IB_ATTACK_MAX_EPS radii, pixel units; CW: 0 gives one
                                  unbounded row (eps = INFINITY) */
    float eps[IB_ATTACK_MAX_EPS];
    int steps;                 /* PGD: iterations (40); CW: Adam iterations per value of c (1000) */
    float step_size;           /* PGD: pixels per step, 0 = 2.5 eps / steps; CW: Adam's lr (0.01) */
    int restarts;              /* PGD: random starts (1); the worst case per example is kept */
    bool random_start;         /* PGD: start uniformly in the ball (true) */
    int eot_samples;           /* S of the S-sample average (12); unused by deterministic graphs */
    bool mean_path;            /* stochastic graphs: also attack through z = mu (true) */
    int cw_search_steps;       /* binary-search steps over c (9) */
    float cw_c0;               /* first c (1e-2) */
    float cw_kappa;            /* confidence: CW stops pushing at margin >= kappa (0) */
    bool keep_images;          /* fill each row's images and images_u8 */
    uint64_t seed;
} ib_attack_config;

/* The defaults of an attack kind (values in parentheses above; FGSM: loss
 * CE, PGD: loss BOTH, 40 steps, eps {0.1, 0.2, 0.3}; CW: n_eps 0). */
ib_attack_config ib_attack_config_default(ib_attack_kind kind);
/* Every field checked before any work: IB_ERR_ARG with a message for an
 * unknown kind, norm or loss, eps < 0 or not finite, no eps for FGSM or
 * PGD, steps < 1, restarts < 1, eot_samples < 1, step_size < 0, CW with
 * the L-inf norm, cw_search_steps < 1, cw_c0 <= 0, cw_kappa < 0. */
ib_status ib_attack_config_check(const ib_attack_config *c);

/* The node an attack backpropagates from, added to a graph BEFORE it is
 * compiled: loss = sum(logits * w), w an input of the logits' shape that
 * the attack fills with dL/dlogits (so every loss, EOT average and CW
 * objective is formed exactly, in double, outside the graph), and x is
 * marked requires-grad.  x: the model input (B, C, H, W) in normalised
 * model space; logits: (B * m, classes), m >= 1 copies per example in a
 * row (a graph that repeats each example m times with ib_repeat gives m
 * noise samples per pass).  The graph must not be forward-only. */
typedef struct ib_attack_head {
    ib_graph *g;
    ib_node *x, *logits, *w, *loss;
} ib_attack_head;
ib_status ib_attack_head_build(ib_graph *g, ib_node *x, ib_node *logits, ib_attack_head *out);

/* The input normalisation as the attack applies it: model input
 * x_c = (p - mean_c) / std_c for pixel p in [0, 1] of channel c
 * (UNIT: 0, 1; SYMMETRIC: 0.5, 0.5; STANDARDIZE: the training statistics
 * of bc, which must be filled: std > 0, else IB_ERR_ARG).  channels <= 4
 * for STANDARDIZE. */
typedef struct ib_pixel_norm {
    int channels;
    float mean[4], std[4];
} ib_pixel_norm;
ib_status ib_pixel_norm_from(const ib_batcher_config *bc, int channels, ib_pixel_norm *out);

/* The S-sample loss of the pixels p (B, C, H, W) and its gradient dL/dp
 * (may be NULL: forward only), as every attack step computes it: the
 * attacker's loss on la = log of the average of the softmax over the
 * samples.  A stochastic graph (ib_graph_first_random) draws with
 * sampling on, seed `seed`, at steps step0 .. step0 + P - 1, P =
 * ceil(samples / m) passes (noise held fixed for a given step0); with
 * mean_path or a deterministic graph, one pass with sampling off.
 * labels: the true classes (untargeted) or the targets (targeted), (B).
 * loss_out (B) per-example losses; margin_out (B) the attack margin
 * (> 0: the averaged prediction is fooled).  Either may be NULL.  Eval
 * mode (no dropout, running batch-norm statistics); the graph's modes,
 * seed and step are restored. */
ib_status ib_attack_loss_grad(const ib_attack_head *h, const ib_pixel_norm *pn, const float *p,
                              const int32_t *labels, ib_attack_loss loss, bool targeted, int samples, bool mean_path,
                              uint64_t seed, uint64_t step0, double *loss_out, double *margin_out, float *grad);

typedef struct ib_attack_row {
    float eps;               /* pixel units (INFINITY: CW unbounded) */
    double robust_acc;       /* fraction of examples whose worst point in the ball is still
                                classified correctly (a clean error counts as not robust) */
    double success_rate;     /* untargeted: fraction of the clean-correct examples fooled;
                                targeted: fraction of all examples classified as their target */
    double mean_l2;          /* mean pixel L2 norm of the successful perturbations (CW's figure) */
    double mean_linf;        /* the same in L-inf */
    double robust_acc_u8;    /* robust accuracy of the images rounded to 8-bit pixels */
    double success_rate_u8;  /* success rate after that rounding */
    int32_t *pred;           /* (n) predictions on the adversarial images (malloc'd) */
    float *images;           /* keep_images: (n, C, H, W) pixels in [0, 1], within eps of the
                                clean image; else NULL (malloc'd) */
    uint8_t *images_u8;      /* keep_images: the same rounded to bytes, still within eps; else NULL */
} ib_attack_row;

typedef struct ib_attack_result {
    int64_t n;
    int classes;
    bool stochastic;         /* the graph draws noise: EOT and mean-path attacks were run */
    int samples;             /* samples in the S-sample prediction (1 when deterministic) */
    double clean_acc;        /* accuracy of that prediction on the clean images */
    int32_t *clean_pred;     /* (n) malloc'd */
    int32_t *targets;        /* targeted: (n) the targets used (malloc'd); else NULL */
    int n_rows;              /* one row per eps, in the order of cfg->eps */
    ib_attack_row rows[IB_ATTACK_MAX_EPS];
    double seconds;
} ib_attack_result;
void ib_attack_result_free(ib_attack_result *r);

/* Attack every image of d (labels d->labels) through the compiled graph of
 * h, in batches of h's batch size (the last one zero-padded), with pn the
 * model's input normalisation.  Eval mode; parameter gradients are off
 * during the call; the graph's modes, seed and step are restored.  On
 * success *out holds one row per eps (free with ib_attack_result_free); on
 * error it is zeroed.  IB_ERR_ARG (config, pn, targets), IB_ERR_STATE (not
 * compiled), IB_ERR_SHAPE (d does not fit x, classes), IB_ERR_NOMEM. */
ib_status ib_attack_run(const ib_attack_head *h, const ib_pixel_norm *pn, const ib_dataset *d,
                        const ib_attack_config *cfg, ib_attack_result *out);
/* ==== attacks: end ==== */

/* ==== robustness: begin (src/eval/robustness.c; docs/robustness.md) ==== */
/* Corruption errors as Hendrycks & Dietterich (2019) define them, from
 * top-1 error rates in [0, 1]: err[t * n_sev + s] of the model on
 * corruption t at severity s, clean its error on clean data, base_* the
 * same of the baseline model.  Per corruption
 *   ce[t]     = sum_s err / sum_s base_err,
 *   rel_ce[t] = sum_s (err - clean) / sum_s (base_err - base_clean),
 * and *mce, *rel_mce their means over the n_types corruptions (ratios:
 * 1 = as the baseline).  A ratio whose denominator is 0 (for rel_ce: within
 * 1e-12 of the sums, rounding) is NaN, and so is a mean over one.  ce, rel_ce (n_types entries), mce, rel_mce may be NULL.
 * IB_ERR_ARG on n_types or n_sev < 1 or NULL errors. */
ib_status ib_mce(int n_types, int n_sev, const double *err, double clean, const double *base_err, double base_clean,
                 double *ce, double *rel_ce, double *mce, double *rel_mce);
/* The architecture a model name stands for, without its bottlenecks:
 * "lenet-vib" and "lenet-vibcells" -> "lenet", "vib-mlp" -> "mlp"; other
 * names unchanged.  Writes at most len bytes (terminated) into buf. */
void ib_model_family(const char *name, char *buf, size_t len);
/* Can `baseline` be the mCE baseline of `model`?  Both trained on the same
 * data set (spec), same input shape and class count, same architecture
 * family (ib_model_family of their names).  IB_ERR_MISMATCH with a message
 * naming what differs. */
ib_status ib_robustness_check_baseline(const ib_net *model, const ib_net *baseline);
/* ==== robustness: end ==== */
/* ------------------------------------------------------------------------
 * Information (src/info/): mutual-information estimators on data matrices,
 * and readers for the arrays they take (NumPy .npy/.npz, CSV).
 *
 * I(A;B) is estimated from n paired rows.  A variable is either continuous
 * (float rows) or discrete (integer rows: each distinct row is one symbol).
 * Every estimate says what it is (an upper bound, a lower bound or an
 * estimate), the sample size and every setting it depends on; values of
 * biased estimators are reported as they are, negative ones included.
 * docs/information.md gives each formula as implemented and its tolerance
 * in the tests.
 * ---------------------------------------------------------------------- */

/* One variable: n rows of d values, row-major; exactly one of f
 * (continuous) and i (discrete) is set.  Not owned by the estimators. */
typedef struct ib_mi_var {
    int64_t n, d;
    const float *f;   /* (n, d) or NULL */
    const int64_t *i; /* (n, d) or NULL */
} ib_mi_var;

typedef enum ib_mi_method {
    IB_MI_BINNING,   /* plug-in entropy of binned values (Shwartz-Ziv & Tishby) */
    IB_MI_KDE,       /* Gaussian-mixture entropy, pairwise-KL (upper) form (Kolchinsky & Tracey) */
    IB_MI_KDE_LOWER, /* the same with the Bhattacharyya (lower) form */
    IB_MI_INFONCE,   /* van den Oord et al.: lower bound, never above log n */
    IB_MI_NWJ,       /* Nguyen-Wainwright-Jordan: lower bound */
    IB_MI_MINE,      /* Donsker-Varadhan with the moving-average gradient (Belghazi et al.) */
    IB_MI_VARIATIONAL, /* a Gaussian bottleneck's own bounds, from a checkpoint (ib_net_variational);
                         ib_mi_estimate refuses it: it needs the network, not data */
    IB_MI_DECODER     /* Darlow & Storkey: H(X) - H(X|H) from an unconditional and a conditional
                         PixelCNN decoder of binarised images (ib_decoder_mi): an estimate */
} ib_mi_method;

typedef enum ib_mi_kind { IB_MI_ESTIMATE = 0, IB_MI_LOWER = 1, IB_MI_UPPER = 2 } ib_mi_kind;

typedef struct ib_mi_options {
    ib_mi_method method;
    /* binning: `bins` equal bins over the data's range [min, max] of all
     * values, or over [lo, hi] when fixed_range (values outside it are
     * saturated into the edge bins and counted); or, with width > 0, bins
     * of that width anchored at 0 (bin = floor(x / width)), bins unused. */
    int bins;
    bool fixed_range;
    double lo, hi;
    double width;
    /* KDE: the variance of the Gaussian noise added to T (sigma^2 > 0). */
    double sigma2;
    /* Critic networks (InfoNCE, NWJ, MINE): two MLPs, g(a) and h(b), of
     * one hidden ReLU layer of `hidden` units and `embed` outputs, score
     * f(a, b) = g(a).h(b); trained with Adam (lr) for `steps` batches of
     * `batch` rows of the training share (1 - test_share) of the rows,
     * the value computed on the held-out rows.  Columns are standardised,
     * discrete variables one-hot coded.  `seeds` independent critics
     * (seed, seed+1, ...): the value is their mean, spread_nats their
     * standard deviation.  ema_rate: MINE's moving-average rate. */
    uint64_t seed;
    int seeds, steps, batch, hidden, embed;
    double lr, test_share, ema_rate;
} ib_mi_options;

/* The defaults of a method: 30 bins over the data range; sigma^2 = 0.1
 * (Saxe et al.); critics of 64 hidden units, 32 outputs, 1500 steps of
 * 128 rows, Adam lr 5e-4, half the rows held out, 1 seed (3 for MINE),
 * EMA rate 0.01. */
ib_mi_options ib_mi_defaults(ib_mi_method m);
/* Options from a name: "binning:30" (data range), "binning:30:-1:1"
 * (fixed range), "binning:width=0.07", "kde:0.1", "kde-lower:0.1",
 * "infonce", "nwj", "mine", "variational" ("binning" and "kde" alone take
 * the defaults).
 * IB_ERR_ARG naming what is wrong (a bin count below 2, sigma^2 <= 0, an
 * unknown name); *out untouched then. */
ib_status ib_mi_parse(const char *spec, ib_mi_options *out);
const char *ib_mi_method_name(ib_mi_method m); /* "binning", "kde", ... */
const char *ib_mi_kind_name(ib_mi_kind k);     /* "estimate", "lower", "upper" */

typedef struct ib_mi_result {
    char estimator[96];   /* canonical name with its settings: "binning:30", "kde:0.1" */
    ib_mi_method method;
    ib_mi_kind kind;
    char quantity[16];    /* "I(X;T)" when b was NULL, else "I(A;B)" */
    double nats, bits;    /* the value (mean over seeds for critics) */
    int64_t n;            /* rows the value was computed on (critics: the held-out rows) */
    int64_t n_train;      /* critics: rows they were trained on; else 0 */
    /* binning */
    int bins;             /* bins per value (0 with a fixed width) */
    double lo, hi;        /* the range used (data or fixed) */
    double width;         /* the bin width */
    double saturated;     /* share of continuous values outside a fixed range */
    int64_t states;       /* distinct binned rows of A */
    /* KDE */
    double sigma2;
    /* critics */
    double cap_nats;      /* InfoNCE: log n, which the value never exceeds; else 0 */
    double spread_nats;   /* standard deviation over seeds (0 for one seed) */
    int seeds, steps, batch, hidden, embed;
    uint64_t seed;
    /* variational */
    int samples;          /* S samples of the noise per example (decoder bound) */
    double label_entropy; /* H(Y) of the evaluated labels, nats; decoder: the unconditional
                             decoder's held-out NLL per image (the estimate of H(X)), nats */
    double ce_nats;       /* E[-log q(y|z)] over the S samples, nats; decoder: the conditional
                             decoder's held-out E[-log p(x|h)] per image (>= H(X|H)), nats */
    /* decoder: hidden = channels F, embed = gated layers after the first,
     * states = pixels per image, seeds 1 */
} ib_mi_result;

/* I(A;B) from n paired rows of a and b (same n, n >= 2).  b == NULL asks
 * for I(X;T) with T = a a deterministic function of distinct inputs X:
 * binning gives H(T), KDE the bounds on I(X;T) for T + N(0, sigma^2 I)
 * (upper: kind IB_MI_UPPER, lower: IB_MI_LOWER); the critics need b.
 * With b: binning is the plug-in I = H(A) + H(B) - H(A,B) of the binned
 * (or discrete) rows; KDE with discrete b is H(A) - sum_y p(y) H(A|B=y),
 * with both continuous H(A) + H(B) - H(A,B) of the noised variables (an
 * estimate either way).  The input is not changed.  IB_ERR_ARG for a bad
 * setting, fewer than 2 rows, rows that differ in number, non-finite
 * values; IB_ERR_NOMEM; the message names the problem. */
ib_status ib_mi_estimate(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *opt, ib_mi_result *out);
/* The sensitivity sweep: binning over 10, 20, ..., 100 bins (same range
 * rule), KDE over sigma^2 = 1e-3 ... 1 (7 values, a factor sqrt(10)
 * apart).  Writes up to max results, the count to *count.  IB_ERR_ARG for
 * the critics (no sweep parameter) or max < 10. */
ib_status ib_mi_sweep(const ib_mi_var *a, const ib_mi_var *b, const ib_mi_options *opt, ib_mi_result *out, int max,
                      int *count);
/* One JSON object (no newline), malloc'd (free()), with at least
 * estimator, quantity, nats, bits, kind, n and the settings of the method;
 * NULL when out of memory. */
char *ib_mi_result_json(const ib_mi_result *r);

/* Decoder-based I(X;H) (src/info/decoder.c, docs/information.md): a gated
 * PixelCNN over binarised images (one channel, pixel >= 128 is 1) with a
 * Bernoulli likelihood per pixel, conditioned on h (flat: a per-channel
 * bias per gated layer through a linear map; a feature map whose size
 * divides the image's by an integer factor: nearest-neighbour upsampling
 * and a 1x1 conv; other maps are flattened).  The settings are those of
 * ib_mi_options: hidden = channels F, embed = gated 3x3 layers after the
 * first 7x7 one, steps and batch of Adam at lr, seed, test_share; bins =
 * the pixel likelihood's levels: 0 or 2 (binarised, Bernoulli) or 256 (the
 * grey level, a softmax over 256 per pixel; "decoder:F:L:256"). */
typedef struct ib_decoder_data {
    int64_t n;                /* images */
    int c, h, w;              /* c must be 1 */
    const uint8_t *images;    /* (n, c, h, w) */
    int cond_ndim;            /* 0: none; 1: flat (n, cond_shape[0]); 3: (n, C', H', W') */
    int64_t cond_shape[3];
    const float *cond;        /* (n, prod cond_shape) row-major, or NULL with cond_ndim 0 */
} ib_decoder_data;
typedef struct ib_decoder ib_decoder;
/* A new, untrained decoder for data of d's shape (d's values unused).
 * IB_ERR_ARG for a shape or setting it cannot take. */
ib_status ib_decoder_new(const ib_decoder_data *d, const ib_mi_options *o, ib_decoder **out);
/* Train on rows[0..n) of d (Adam, o->steps batches, shuffled by the seed);
 * h's standardisation comes from these rows.  Once per decoder. */
ib_status ib_decoder_fit(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n);
/* -log p(x | h) in nats of each of rows[0..n) into nll (n). */
ib_status ib_decoder_nll(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n, double *nll);
/* One sample of x given each row's h, pixel by pixel in raster order,
 * draws keyed by (seed, k, pixel) for the k-th row asked: out (n, c, h, w)
 * of 0 and 255.  Reproducible by seed. */
ib_status ib_decoder_sample(ib_decoder *m, const ib_decoder_data *d, const int64_t *rows, int64_t n, uint64_t seed,
                            uint8_t *out);
void ib_decoder_free(ib_decoder *m); /* NULL is a no-op */
/* The split ib_decoder_mi makes of n rows: rows (n) filled, the first
 * *n_train train the decoders, the rest are held out. */
ib_status ib_decoder_split(int64_t n, const ib_mi_options *o, int64_t *rows, int64_t *n_train);
/* I(X;H_k) for n_cond conditions over the same images (d[k].images equal):
 * rows split once by o->seed into training and held-out (o->test_share)
 * rows; an unconditional decoder and one per condition are trained on the
 * training rows; out[k].nats = mean held-out NLL of the unconditional one
 * (label_entropy) - that of the conditional one (ce_nats), kind
 * IB_MI_ESTIMATE (the first term is an upper bound on H(X), the second on
 * H(X|H): their difference is neither bound).  keep (n_cond) or NULL:
 * receives the trained conditional decoders (free them). */
ib_status ib_decoder_mi(const ib_decoder_data *d, int n_cond, const ib_mi_options *o, ib_mi_result *out,
                        ib_decoder **keep);

/* A numeric array read from a file.  Floating types are held as float
 * (continuous), integer types as int64 (discrete). */
typedef enum ib_array_dtype { IB_ARRAY_F32, IB_ARRAY_F64, IB_ARRAY_I32, IB_ARRAY_I64 } ib_array_dtype;

typedef struct ib_array {
    ib_array_dtype dtype;  /* as stored in the file */
    int ndim;              /* 0 .. 8 */
    int64_t shape[8];
    int64_t rows, cols;    /* shape[0] (1 for 0-D) and the product of the others */
    float *f;              /* rows*cols values when floating, else NULL */
    int64_t *i;            /* rows*cols values when integer, else NULL */
} ib_array;

/* NumPy .npy (format 1.0, 2.0, 3.0): '<f4', '<f8', '<i4', '<i8' (and '|'
 * byte order for none of these), C order.  IB_ERR_FORMAT naming the file
 * and what is wrong (big-endian, Fortran order, another dtype, a header or
 * size that does not fit); IB_ERR_IO.  *out is NULL on error. */
ib_status ib_array_read_npy(const char *path, ib_array **out);
/* The same from bytes in memory; `what` names them in messages. */
ib_status ib_array_parse_npy(const void *data, size_t len, const char *what, ib_array **out);
/* Array `name` ("x" reads member "x.npy") of a NumPy .npz (numpy.savez or
 * savez_compressed), read with libzip.  IB_ERR_ARG when the member is
 * absent (the message lists those present), IB_ERR_UNSUPPORTED in a build
 * without libzip. */
ib_status ib_array_read_npz(const char *path, const char *name, ib_array **out);
/* CSV: one row per line, values separated by commas (spaces and tabs
 * around them ignored), an optional header line of names, '#' comment
 * lines skipped.  Every field an integer literal: discrete (int64);
 * otherwise float.  Every row must have the same number of fields. */
ib_status ib_array_read_csv(const char *path, ib_array **out);
/* By the file name: *.npy, *.csv (or *.txt), or *.npz with ":NAME"
 * appended ("data.npz:x"). */
ib_status ib_array_read(const char *path, ib_array **out);
void ib_array_free(ib_array *a); /* NULL is a no-op */
/* A view of the array as an estimator's variable (rows x cols). */
ib_mi_var ib_array_var(const ib_array *a);

/* Activations of named layers over a data set (src/eval/net_info.c): for
 * each layer an n x D matrix (D = the layer output's size per example,
 * row-major), with the n labels, for the estimators of the Information
 * section (ib_activations_var). */
typedef struct ib_activations {
    int n_layers;
    int64_t n;        /* examples (rows) */
    int classes;      /* of the data set */
    char **names;     /* (n_layers) the names as asked */
    char **nodes;     /* (n_layers) the graph nodes read ("vib" reads "vib.z") */
    int64_t *dims;    /* (n_layers) D of each layer */
    float **values;   /* (n_layers) n x D each */
    int64_t *labels;  /* (n) the data set's labels, int64 as a discrete ib_mi_var takes them */
} ib_activations;

/* Run the network over the first `limit` examples of d (0: all) and copy
 * the outputs of the named layers.  A name is a graph node (a layer's
 * output is named as the layer, docs/model-format.md: "fc1", "layer1.2",
 * "vib.mu"; "x" is the input as fed), or a bottleneck's name, read at its
 * sample "NAME.z".  mean_path: stochastic layers take their mean (z = mu);
 * else one draw of the noise, keyed by the graph's seed (ib_net_eval_seed)
 * and the batch index, so the result is reproducible.  The network must be
 * opened with samples 0 and either defer_compile (the layers are kept with
 * ib_node_keep and the network is compiled here) or already compiled with
 * those nodes kept (IB_ERR_STATE otherwise: a forward-only graph reuses
 * the memory of intermediate values).  Errors: IB_ERR_ARG for an unknown
 * layer (the message names it and lists valid names), no layers or a
 * negative limit; IB_ERR_SHAPE when d does not fit the input; IB_ERR_NOMEM.
 * On success free *out with ib_activations_free; on failure it is empty. */
ib_status ib_net_activations(ib_net *net, const ib_dataset *d, const char *const *layers, int n_layers, int64_t limit,
                             bool mean_path, ib_activations *out);
void ib_activations_free(ib_activations *a); /* NULL-safe; leaves it empty */

/* --- embeddings and retrieval (src/eval/retrieval.c; docs/vsd.md) --- */
/* The embedding of every image of d (the first `limit`; 0: all): the mean
 * mu of the network's last Gaussian bottleneck (a vsdhead's or a vib
 * layer's), as ib_net_activations reads it (the network opened with
 * samples 0 and defer_compile).  IB_ERR_ARG for a model without one. */
ib_status ib_net_embed(ib_net *net, const ib_dataset *d, int64_t limit, ib_activations *out);

typedef struct ib_retrieval {
    int64_t queries;  /* queries scored: those with at least one gallery item of their identity */
    int64_t gallery;
    double rank1;     /* fraction of queries whose most similar gallery item has their identity */
    double rank5;     /* ... one of the 5 most similar */
    double map;       /* mean over queries of the average precision of the whole ranking */
} ib_retrieval;

/* Re-ID-style retrieval: query i (row i of q, nq x dim) against the
 * gallery (ng x dim) by cosine similarity, most similar first (ties: lower
 * gallery index first); an item is a match when its identity (gid) equals
 * the query's (qid: the class when the class is the identity).  AP = the
 * mean over the query's matches of the precision at each match's rank.
 * exclude_same_index: gallery item i is left out of query i's ranking (a
 * set searched against itself).  Queries without a match are left out of
 * every figure; IB_ERR_ARG when none is left. */
ib_status ib_retrieval_eval(const float *q, const int64_t *qid, int64_t nq, const float *g, const int64_t *gid,
                            int64_t ng, int64_t dim, bool exclude_same_index, ib_retrieval *out);
/* Layer k's rows as an estimator's continuous variable; k = -1: the labels
 * (discrete).  The view borrows a's memory. */
ib_mi_var ib_activations_var(const ib_activations *a, int k);

/* The variational bounds of every Gaussian bottleneck of an opened network
 * on the first `limit` examples of d (0: all), through ib_evaluate with
 * `samples` draws (0: the run's S) keyed by `seed`: for bottleneck l,
 * out[2l] = the rate E_x[KL(p(z|x) || N(0, I))], an upper bound on I(X;Z_l)
 * (IB_MI_UPPER, quantity "I(X;T)"), and out[2l+1] = H(Y) - E[-log q(y|z)],
 * a lower bound on I(Z_l;Y) (IB_MI_LOWER, quantity "I(T;Y)"), H(Y) the
 * empirical entropy of the evaluated labels (not log classes).  The decoder
 * bound uses the whole network's q(y|z); it bounds every bottleneck's
 * I(Z_l;Y), later noise included (Jensen).  estimator "variational".
 * Writes 2 x bottlenecks results (at most max), the count to *count.  The
 * network must be compiled (or opened with defer_compile: it is compiled
 * here) with samples 0 and no input gradient.  IB_ERR_ARG: no bottleneck,
 * fewer than 2 examples, max too small; IB_ERR_SHAPE, IB_ERR_NOMEM. */
ib_status ib_net_variational(ib_net *net, const ib_dataset *d, int64_t limit, int samples, uint64_t seed,
                             ib_mi_result *out, int max, int *count);

/* ------------------------------------------------------------------------
 * Charts (src/plot/chart.c): line and point charts drawn with cairo and
 * written as PNG or SVG (`ibnet plot`, reports).  A chart copies its
 * series; only ib_chart_save draws, so a build without cairo still builds
 * charts and ib_chart_save answers IB_ERR_UNSUPPORTED.
 * ---------------------------------------------------------------------- */
#define IB_CHART_MAX_SERIES 32
enum { IB_CHART_LINES = 1, IB_CHART_POINTS = 2 }; /* a series' style: either or both */
typedef struct ib_chart ib_chart;
ib_chart *ib_chart_new(const char *title, const char *x_label, const char *y_label); /* NULL: out of memory */
void ib_chart_free(ib_chart *c);
void ib_chart_log_x(ib_chart *c, bool on); /* a log10 x axis (points with x <= 0 are left out) */
/* A series of n points; shade NULL or n values in [0, 1] that colour the
 * points on a dark-blue-to-yellow scale (the line keeps the series'
 * colour).  Non-finite points are gaps.  IB_ERR_ARG (more than
 * IB_CHART_MAX_SERIES, bad arguments), IB_ERR_NOMEM. */
ib_status ib_chart_add(ib_chart *c, const char *name, const double *x, const double *y, const double *shade,
                       int64_t n, int style);
/* What the shade means, for the colour bar: "epoch" from lo to hi. */
void ib_chart_shade_label(ib_chart *c, const char *label, double lo, double hi);
/* Charts are drawn by cairo, loaded (dlopen) at the first chart from
 * libcairo.so.2 or the file IBNET_CAIRO_LIBRARY names.  Available: false
 * in a build without cairo or when the library cannot be loaded; then
 * ib_chart_unavailable_reason says which (NULL when available). */
bool ib_chart_available(void);
const char *ib_chart_unavailable_reason(void);
/* Write the chart to path, PNG or SVG by its extension (.png, .svg), width
 * x height pixels (320..8000 x 240..8000).  IB_ERR_ARG (another
 * extension, a size out of range), IB_ERR_IO, IB_ERR_UNSUPPORTED. */
ib_status ib_chart_save(const ib_chart *c, const char *path, int width, int height);

#ifdef __cplusplus
}
#endif

#pragma GCC visibility pop
#endif /* IBNET_H */
