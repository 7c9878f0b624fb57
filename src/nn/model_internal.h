/*
 * model_internal.h — what the files of the model description format share
 * (src/nn/model*.c).  Not installed.
 *
 * The rooms:
 *   model_kinds.c  the layer kinds: ONE table (word, positional argument,
 *                  options with their defaults and checks, shape rule,
 *                  parameters and buffers, builder) and the option table.
 *                  A new layer kind is a row there plus its functions
 *                  beside it.
 *   model_parse.c  text -> model: lines to layers, names, shapes; loading.
 *   model_text.c   model -> text: the canonical text and the summary table.
 *   model_build.c  model -> graph.
 *   model_cells.c  VIB cells placed by name (ib_model_add_cells).
 *   model.c        the model object: queries, equality, the layer listing.
 * Everything outside the kinds file reads a layer only through the table,
 * so none of it names a layer kind.
 */
#ifndef IB_MODEL_INTERNAL_H
#define IB_MODEL_INTERNAL_H

#include "../core/internal.h"

/* Limits (documented in docs/model-format.md). */
#define IB__MODEL_MAX_LINE 1024                   /* characters per line, comment included */
#define IB__MODEL_MAX_TOKENS 16                   /* fields per line */
#define IB__MODEL_MAX_DEPTH 8                     /* nested repeat/group */
#define IB__MODEL_MAX_REPEAT 1000                 /* N of one repeat */
#define IB__MODEL_MAX_ENTRIES 4096                /* layers and group markers after expansion */
#define IB__MODEL_MAX_TEXT (1 << 20)              /* bytes of a description */
#define IB__MODEL_MAX_WIDTH (1 << 20)             /* features or channels of a layer */
#define IB__MODEL_MAX_SPATIAL 4096                /* input height, width */
#define IB__MODEL_MAX_ACT ((int64_t)1 << 28)      /* elements of one example's activation */
#define IB__MODEL_MAX_PARAMS ((int64_t)1 << 30)   /* trainable scalars of a model */
#define IB__MODEL_NAME_LEN 64
#define IB__MODEL_MAX_PATHS ((int64_t)1 << 20)   /* particle paths per example (product of particles=) */
#define IB__MODEL_MAX_OPTS 24                     /* options of all kinds together */
#define IB__MODEL_MAX_CHOICES 4

/* ---- options (key=value) ---- */

typedef enum ib__opt_type {
    IB__OPT_INT,    /* plain decimal digits in [lo, hi] */
    IB__OPT_FLOAT,  /* a decimal number in [lo, hi] (hi < 1: [lo, 1) in messages) */
    IB__OPT_BOOL,   /* true | false */
    IB__OPT_CHOICE, /* one word of choices[]; the value is its index */
    IB__OPT_WIDTHS  /* 1..3 comma-separated widths in 1..2^20 ("1000,500"), packed by IB__WIDTH */
} ib__opt_type;

/* Width j (0-based) of an IB__OPT_WIDTHS value, 0 past the last: 21 bits
 * each, so three fit in the int64 of a value. */
#define IB__WIDTH(v, j) ((int64_t)(((uint64_t)(v) >> (21 * (j))) & 0x1FFFFF))
#define IB__WIDTHS_MAX 3

typedef struct ib__model_opt {
    const char *key;
    ib__opt_type type;
    double lo, hi;   /* inclusive range of INT and FLOAT */
    double def;      /* the default (BOOL: 0/1, CHOICE: the index); a kind's
                        finish hook may set another (pool stride = k) */
    const char *choices[IB__MODEL_MAX_CHOICES];
    bool omit_default; /* left out of the canonical text at its default
                          (beta: the default -1 means "unset") */
} ib__model_opt;

/* The options, in the order of the canonical text and of the messages
 * that list keys.  `name=` is not among them: every layer takes it, and
 * it comes last. */
extern const ib__model_opt ib__model_opts[];
extern const int ib__model_n_opts;

typedef union ib__optval {
    int64_t i; /* INT, BOOL, CHOICE */
    float f;   /* FLOAT */
} ib__optval;

/* ---- layers ---- */

typedef struct ib__shape {
    int ndim;     /* 1: (D), 3: (C, H, W) */
    int64_t d[3];
} ib__shape;

typedef enum ib__mark { IB__LAYER, IB__GROUP, IB__GROUP_END } ib__mark;

struct ib__layer_kind;

typedef struct ib__layer {
    ib__mark mark;
    const struct ib__layer_kind *kind; /* NULL for group markers */
    int line;
    int64_t n;                         /* the positional argument (OUT, K) */
    ib__optval v[IB__MODEL_MAX_OPTS];  /* every option, at its default unless given */
    bool named;
    char name[IB__MODEL_NAME_LEN];     /* the name= override, or a group's name */
    /* resolved by the parser's passes 2 and 3 */
    char full[IB__MODEL_NAME_LEN];     /* dotted path: prefix of the layer's parameters */
    ib__shape in, out;
    int64_t params;                    /* trainable scalars of this layer (from its tensors) */
} ib__layer;

/* A listing of a layer's tensors (parameters and buffers): kinds call
 * ib__model_tensor for each, in the order their builder creates them.
 * The parser sums the trainable ones (the layer's parameter count) and
 * ib_model_layer_tensor picks one out. */
typedef struct ib__tensors {
    const char *prefix;      /* the layer's full name */
    int n;                   /* tensors listed so far */
    int want;                /* the index to copy into *out, or -1 */
    ib_model_tensor *out;
    int64_t trainable;       /* scalars of the trainable tensors listed */
} ib__tensors;

/* Lists PREFIX[.part].leaf with shape (ndim dims of d); part may be NULL. */
void ib__model_tensor(ib__tensors *t, const char *part, const char *leaf, bool trainable, int ndim, const int64_t *d);

/* The state ib_model_build carries from layer to layer. */
typedef struct ib__model_builder {
    ib_graph *g;
    ib_node *const *eps;   /* NULL or one given noise input per bottleneck */
    ib_model_out *out;     /* bottlenecks are recorded here in depth order */
    int64_t paths;         /* particle paths per example so far (product of particles) */
} ib__model_builder;

typedef enum ib__input_need { IB__IN_ANY, IB__IN_MAP, IB__IN_FLAT } ib__input_need;

/* One layer kind: everything the parser, the shape pass, the builder and
 * the writers know about it.  Hooks left NULL take the default named. */
typedef struct ib__layer_kind {
    const char *word;          /* the layer's word in a description (and its kind in the summary) */
    const char *arg;           /* the positional argument ("OUT", "K"), or NULL */
    int64_t arg_max;           /* it is an integer in 1..arg_max */
    unsigned opts;             /* options it takes: bits (1u << option index) */
    unsigned required;         /* of those, the ones that must be given */
    ib__input_need input;      /* checked before shape: a feature map, or flat features */
    bool bottleneck;           /* a Gaussian bottleneck (counted, IB_MAX_BOTTLENECKS) */
    bool stochastic;           /* listed in ib_model_out.st (vib, vibcell, bernoulli; IB_MAX_BOTTLENECKS) */
    /* After the line is read: defaults that depend on what was given
     * (seen: bits of the options written) and checks across options.
     * NULL: nothing.  Returns false with a message (no "file:line: ") in why. */
    bool (*finish)(ib__layer *e, unsigned seen, char *why, size_t len);
    /* The shape rule: e->out from e->in.  NULL: the input's shape. */
    bool (*shape)(ib__layer *e, char *why, size_t len);
    /* Its parameters and buffers (after shape; e->in and e->out are known),
     * which give its parameter count.  NULL: none. */
    void (*tensors)(const ib__layer *e, ib__tensors *t);
    /* Adds the layer to the graph on x; NULL on a build error (in the graph). */
    ib_node *(*build)(ib__model_builder *b, ib_node *x, const ib__layer *e);
    /* A bottleneck kind whose bottleneck is not its output (a composite
     * head): the bottleneck's shape.  NULL: e->out. */
    void (*bn_shape)(const ib__layer *e, ib__shape *s);
    bool last_only;            /* must be the model's last layer (a composite head with its own logits) */
} ib__layer_kind;

/* particles= of a layer whose kind takes it, else 1 (model_kinds.c). */
int64_t ib__model_layer_particles(const ib__layer *e);

extern const ib__layer_kind ib__model_kinds[];
extern const int ib__model_n_kinds;

/* ---- the model ---- */

struct ib_model {
    char name[IB__MODEL_NAME_LEN];
    int c, h, w, classes;
    int init_style; /* ib_init_style; the optional `init` header line */
    int n;
    ib__layer *e;
    int n_bn;
    int bn[IB_MAX_BOTTLENECKS]; /* layer index of each bottleneck */
    int n_st;                   /* stochastic layers (Gaussian and Bernoulli) */
    int64_t paths;              /* particle paths per example: the product of particles= */
    int64_t params;
    char *text;
};

/* The words of ib_init_style, by value ("pytorch", "glorot", "kaiming"). */
extern const char *const ib__model_init_styles[3];

/* Option f of layer e as the canonical text writes its value, into buf;
 * false when the text leaves it out (at a default that means "unset"). */
bool ib__model_option_text(const ib__layer *e, int f, char *buf, size_t len);

/* "N features" or "a CxHxW feature map", for messages. */
void ib__model_shape_str(const ib__shape *s, char *buf, size_t len);

/* The canonical text (model_text.c): name replaces the model's name when
 * not NULL, and cell[i] > 0 inserts `vibcell name=cell<cell[i]>` after
 * layer i (ib_model_add_cells).  malloc'd; NULL when memory runs out. */
char *ib__model_canonical(const ib_model *m, const char *name, const int *cell);

#endif
