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
 *    activation and input of the graph, and ADDS into parameter gradients
 *    (so two graphs may contribute to one step); clear them with
 *    ib_params_zero_grad().
 *  - Randomness is keyed by (seed, stream, step, element), never by thread:
 *    results do not depend on the thread count.
 */
#ifndef IBNET_H
#define IBNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* ------------------------------------------------------------------------
 * Threads.  One OpenMP pool is shared by ibnet's kernels and OpenBLAS.
 * The count comes from ib_set_threads(), else IBNET_THREADS, else the
 * number of cores.
 * ---------------------------------------------------------------------- */
void ib_set_threads(int n);
int ib_get_threads(void);

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
    IB_INIT_XAVIER_NORMAL    /* N(0, a^2 * 2/(fan_in+fan_out)); a = gain (0 means 1) */
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
 * ("" = all): frozen parameters get no gradient and are not updated.
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
 * and backward allocate nothing.  No nodes may be added afterwards. */
ib_status ib_graph_compile(ib_graph *g);
/* Run the ops in order.  Random ops draw with the current step, then the
 * step advances by one. */
ib_status ib_graph_forward(ib_graph *g);
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
/* When false, backward computes no parameter gradient (an attack asking for
 * dL/dx only).  Default true. */
void ib_graph_set_param_grads(ib_graph *g, bool on);
/* Bytes of activation, gradient and scratch memory owned by the graph. */
size_t ib_graph_memory(const ib_graph *g);
int ib_graph_node_count(const ib_graph *g);
/* The first node with this name, or NULL. */
ib_node *ib_graph_find(const ib_graph *g, const char *name);

/* Node access.  Pointers are valid after compile. */
float *ib_node_data(ib_node *n);
float *ib_node_grad(ib_node *n);
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
 * zero; mask 'A' also zeroes the centre.  Odd square kernels only. */
ib_node *ib_conv2d_masked(ib_graph *g, ib_node *x, ib_node *w, ib_node *b, int pad, char mask_type);
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
 * the running statistics are used. */
ib_node *ib_batchnorm(ib_graph *g, ib_node *x, ib_node *gamma, ib_node *beta, ib_node *running_mean,
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
/* y = alpha x + beta */
ib_node *ib_affine(ib_graph *g, ib_node *x, float alpha, float beta);
ib_node *ib_scale(ib_graph *g, ib_node *x, float alpha);
ib_node *ib_relu(ib_graph *g, ib_node *x);
ib_node *ib_leaky_relu(ib_graph *g, ib_node *x, float slope);
/* y = log(1 + exp(x + shift)), computed stably. */
ib_node *ib_softplus(ib_graph *g, ib_node *x, float shift);
ib_node *ib_sigmoid(ib_graph *g, ib_node *x);
ib_node *ib_tanh(ib_graph *g, ib_node *x);
ib_node *ib_exp(ib_graph *g, ib_node *x);
ib_node *ib_log(ib_graph *g, ib_node *x);
ib_node *ib_square(ib_graph *g, ib_node *x);
ib_node *ib_sqrt(ib_graph *g, ib_node *x);
/* Gated activation of gated PixelCNN: y = tanh(a) * sigmoid(b). */
ib_node *ib_gated_tanh(ib_graph *g, ib_node *a, ib_node *b);
/* Inverted dropout with drop probability p in training; identity in eval. */
ib_node *ib_dropout(ib_graph *g, ib_node *x, float p);
/* y = x forward, no gradient flows back. */
ib_node *ib_stop_gradient(ib_graph *g, ib_node *x);

/* --- reductions (src/ops/reduce.c); axis in [0, ndim) or IB_ALL --- */
/* Output drops the reduced axis (IB_ALL gives a scalar). */
ib_node *ib_sum(ib_graph *g, ib_node *x, int axis);
ib_node *ib_mean(ib_graph *g, ib_node *x, int axis);
/* log sum_i exp(x_i) along the axis, stable. */
ib_node *ib_logsumexp(ib_graph *g, ib_node *x, int axis);
/* log (1/n) sum_i exp(x_i) along the axis. */
ib_node *ib_logmeanexp(ib_graph *g, ib_node *x, int axis);

/* --- shape (src/ops/shape.c) --- */
/* A view with a new shape; one dim may be -1 (inferred). */
ib_node *ib_reshape(ib_graph *g, ib_node *x, int ndim, const int64_t *shape);
/* (N, ...) -> (N, prod(...)) */
ib_node *ib_flatten(ib_graph *g, ib_node *x);
ib_node *ib_concat(ib_graph *g, int n, ib_node *const *xs, int axis);
/* Elements [start, start+len) along the axis. */
ib_node *ib_slice(ib_graph *g, ib_node *x, int axis, int64_t start, int64_t len);
/* (N, ...) -> (N*m, ...): each example repeated m times in a row (particles). */
ib_node *ib_repeat(ib_graph *g, ib_node *x, int64_t m);

/* --- softmax and losses (src/ops/softmax.c) --- */
/* Along the last axis of (N, C). */
ib_node *ib_log_softmax(ib_graph *g, ib_node *x);
ib_node *ib_softmax(ib_graph *g, ib_node *x);
/* Mean over the batch of -log softmax(logits)[label], with label smoothing
 * s: target = (1-s) onehot + s/C.  logits (N, C), labels int32 (N). */
ib_node *ib_cross_entropy(ib_graph *g, ib_node *logits, ib_node *labels, float smoothing);
/* Per row: H = -sum_c p_c log p_c with p = softmax(logits); (N, C) -> (N). */
ib_node *ib_softmax_entropy(ib_graph *g, ib_node *logits);
/* x[i, label_i]: (N, C), labels (N) -> (N). */
ib_node *ib_gather(ib_graph *g, ib_node *x, ib_node *labels);
/* One-hot float matrix (N, C) of int labels (no gradient). */
ib_node *ib_one_hot(ib_graph *g, ib_node *labels, int64_t classes);
/* Index of the largest value of each row, int32 (N) (no gradient). */
ib_node *ib_argmax(ib_graph *g, ib_node *x);

/* --- stochastic layers and divergences (src/ops/gaussian.c, src/ops/bernoulli.c, src/ops/divergence.c) --- */
/* z = mu + sigma * eps.  eps is an input node of the same shape, or NULL:
 * then eps ~ N(0,1) keyed by (graph seed, node, step) while the graph is
 * sampling, and z = mu when it is not. */
ib_node *ib_gaussian_sample(ib_graph *g, ib_node *mu, ib_node *sigma, ib_node *eps);
/* KL(N(mu, sigma^2) || N(0, 1)) summed over all dims but the first:
 * (N, ...) -> (N).  0.5 sum (mu^2 + sigma^2 - 1 - 2 log sigma). */
ib_node *ib_kl_std_normal(ib_graph *g, ib_node *mu, ib_node *sigma);
/* KL(N(mu1, s1^2) || N(mu2, s2^2)) summed over all dims but the first -> (N). */
ib_node *ib_kl_gaussians(ib_graph *g, ib_node *mu1, ib_node *s1, ib_node *mu2, ib_node *s2);
/* log N(x; mu, sigma^2) summed over all dims but the first -> (N). */
ib_node *ib_gaussian_log_density(ib_graph *g, ib_node *x, ib_node *mu, ib_node *sigma);
/* Straight-through Bernoulli: forward h = 1[u < p] (u keyed uniform) while
 * sampling, else p; backward dh/dp = 1. */
ib_node *ib_bernoulli_st(ib_graph *g, ib_node *p);
/* Gumbel-sigmoid (binary concrete) relaxation of Bernoulli(sigmoid(logits)):
 * y = sigmoid((logits + log u - log(1-u)) / temperature); mean path
 * sigmoid(logits / temperature) when not sampling. */
ib_node *ib_gumbel_sigmoid(ib_graph *g, ib_node *logits, float temperature);
/* KL(Bern(p) || Bern(q)) summed over all dims but the first -> (N); q may
 * have a leading dim of 1 (a learned prior shared by the batch). */
ib_node *ib_kl_bernoulli(ib_graph *g, ib_node *p, ib_node *q);
/* KL(P || Q) per row from log-probabilities (N, C) -> (N). */
ib_node *ib_kl_categorical(ib_graph *g, ib_node *logp, ib_node *logq);
/* Jensen-Shannon divergence per row from log-probabilities (N, C) -> (N), in [0, ln 2]. */
ib_node *ib_js_categorical(ib_graph *g, ib_node *logp, ib_node *logq);
/* Cosine-similarity matrix S_ij = <a_i, b_j> / (|a_i| |b_j|): (Na, D), (Nb, D) -> (Na, Nb). */
ib_node *ib_cosine_similarity(ib_graph *g, ib_node *a, ib_node *b, float eps);


/* ------------------------------------------------------------------------
 * Optimizers (src/optim/).  An optimizer updates every trainable, unfrozen
 * parameter of a store from the store's gradients.  Its state (momentum,
 * Adam moments) lives in buffers laid out exactly like the store's value
 * buffer, so saving it is one write per buffer.
 * ---------------------------------------------------------------------- */
typedef enum ib_optim_kind { IB_OPTIM_SGD, IB_OPTIM_ADAM, IB_OPTIM_ADAMW } ib_optim_kind;

typedef struct ib_optim_config {
    ib_optim_kind kind;
    float lr;
    float momentum;       /* SGD (PyTorch semantics: buf = m*buf + g; p -= lr*buf) */
    float dampening;      /* SGD */
    bool nesterov;        /* SGD */
    float weight_decay;   /* SGD, Adam: added to the gradient (L2); AdamW: decoupled */
    float beta1, beta2;   /* Adam, AdamW */
    float eps;            /* Adam, AdamW */
    float clip_grad_norm; /* > 0: scale all gradients so their global L2 norm is at most this */
} ib_optim_config;

/* PyTorch's defaults for the kind (lr 1e-3 for Adam/AdamW, 0.01 for SGD,
 * betas (0.9, 0.999), eps 1e-8, AdamW weight decay 0.01). */
ib_optim_config ib_optim_defaults(ib_optim_kind kind);

typedef struct ib_optim ib_optim;
ib_optim *ib_optim_new(ib_params *p, const ib_optim_config *cfg);
void ib_optim_free(ib_optim *o);
/* One update from the current gradients (which are left as they are).
 * IB_ERR_NUMERIC, and no update, if a gradient is not finite. */
ib_status ib_optim_step(ib_optim *o);
void ib_optim_set_lr(ib_optim *o, float lr);
float ib_optim_lr(const ib_optim *o);
const ib_optim_config *ib_optim_get_config(const ib_optim *o);
int64_t ib_optim_steps(const ib_optim *o); /* updates done so far */
void ib_optim_set_steps(ib_optim *o, int64_t steps);
/* State buffers for checkpoints: each has ib_params_total() floats laid out
 * like ib_params_values().  Names: "momentum_buffer", "exp_avg", "exp_avg_sq". */
int ib_optim_state_count(const ib_optim *o);
const char *ib_optim_state_name(const ib_optim *o, int k);
float *ib_optim_state(ib_optim *o, int k);

/* Learning-rate schedules as pure functions of the (fractional) epoch. */
typedef enum ib_schedule_kind {
    IB_SCHED_CONSTANT,
    IB_SCHED_STEP,          /* lr * gamma^floor(epoch / every) (staircase exponential decay:
                               Deep VIB uses gamma 0.97, every 2) */
    IB_SCHED_EXPONENTIAL,   /* lr * gamma^(epoch / every), smooth */
    IB_SCHED_MULTISTEP,     /* lr * gamma^(number of milestones <= epoch) */
    IB_SCHED_COSINE         /* min_lr + (lr - min_lr)(1 + cos(pi epoch / total))/2 */
} ib_schedule_kind;

typedef struct ib_schedule {
    ib_schedule_kind kind;
    float lr, gamma, min_lr;
    double every;           /* epochs, STEP and EXPONENTIAL */
    double total;           /* epochs, COSINE */
    double warmup;          /* epochs of linear warm-up from 0 (any kind), 0 = none */
    int n_milestones;
    double milestones[8];
} ib_schedule;

float ib_schedule_lr(const ib_schedule *s, double epoch);

/* Exponential moving average of the trainable weights (Polyak averaging).
 * With zero_debias the average starts at 0 and is divided by 1 - decay^t
 * (TensorFlow's ExponentialMovingAverage, as the Deep VIB code uses). */
typedef struct ib_ema ib_ema;
ib_ema *ib_ema_new(ib_params *p, float decay, bool zero_debias);
void ib_ema_free(ib_ema *e);
ib_status ib_ema_update(ib_ema *e);
/* Exchange the store's values with the (debiased) averages; calling it a
 * second time restores the training weights exactly. */
ib_status ib_ema_swap(ib_ema *e);
float *ib_ema_shadow(ib_ema *e); /* raw shadow values, laid out like the store */
int64_t ib_ema_updates(const ib_ema *e);
void ib_ema_set_updates(ib_ema *e, int64_t t);
float ib_ema_decay(const ib_ema *e);

/* ------------------------------------------------------------------------
 * Checkpoints (src/io/): safetensors files that PyTorch can load.
 * Tensors are named as the store names them ("fc1.weight"); optimizer
 * state as "optim.<state>.<name>", EMA as "ema.<name>".  The safetensors
 * __metadata__ holds "format": "pt" and "ibnet": a JSON object text given
 * by the caller (epoch, step, seed, config...).  Writes are atomic
 * (temporary file, fsync, rename).
 * ---------------------------------------------------------------------- */
/* opt, ema and metadata_json may be NULL. */
ib_status ib_checkpoint_save(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, const char *metadata_json);
/* Loads into a store built by the same model code: every parameter of the
 * store must be in the file with the same shape and dtype F32, or the call
 * fails (IB_ERR_MISMATCH) naming the file and the tensor, and nothing is
 * changed.  opt/ema are restored if given (their tensors must be present).
 * *metadata_json (if not NULL) receives a malloc'd copy of the caller's
 * metadata text, or NULL if the file has none. */
ib_status ib_checkpoint_load(const char *path, ib_params *p, ib_optim *opt, ib_ema *ema, char **metadata_json);
/* Reads only the metadata text (malloc'd), validating the file's header. */
ib_status ib_checkpoint_read_metadata(const char *path, char **metadata_json);

/* ------------------------------------------------------------------------
 * Layers (src/nn/): parameters named as PyTorch names them, created in the
 * graph's store on first use and shared on later use (get-or-create), with
 * PyTorch's default initialisation.
 * ---------------------------------------------------------------------- */
/* y = x W^T + b; "<name>.weight" (out, in), "<name>.bias" (out). */
ib_node *ib_nn_linear(ib_graph *g, ib_node *x, const char *name, int64_t out, bool bias);
/* "<name>.weight" (out_ch, in_ch, k, k), "<name>.bias" (out_ch). */
ib_node *ib_nn_conv2d(ib_graph *g, ib_node *x, const char *name, int64_t out_ch, int k, int stride, int pad,
                      bool bias);
/* Batch norm with "<name>.weight", "<name>.bias" (gamma = 1, beta = 0) and
 * buffers "<name>.running_mean", "<name>.running_var"; momentum 0.1, eps 1e-5. */
ib_node *ib_nn_batchnorm(ib_graph *g, ib_node *x, const char *name);

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

void ib_dataset_free(ib_dataset *d);
/* ==== data: end ==== */

/* ==== derived data: begin (src/data/ corruptions, domains, views) ==== */
/* ==== derived data: end ==== */

#ifdef __cplusplus
}
#endif
#endif /* IBNET_H */
