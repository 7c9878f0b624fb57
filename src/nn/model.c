/*
 * model.c — the plain-text model description format (docs/model-format.md):
 * its parser, its canonical text and the graph builder.
 *
 * Why a text format: a researcher places VIB cells, changes widths or
 * writes a new network without touching C, and a checkpoint carries the
 * exact description it was trained with (the canonical text).
 *
 * The parser works in three passes over a flat list of entries, with no
 * recursion anywhere, because it must survive hostile input (it is fuzzed):
 *  1. lines -> entries: tokens checked against a table of layer kinds and
 *     keys; `repeat N` ... `end` is expanded in place as soon as its `end`
 *     is read (the total is checked before anything is copied, so nested
 *     repeats cannot blow up); `group NAME` ... `end` stays as a pair of
 *     markers (it only names things);
 *  2. names: PyTorch's nn.Sequential rule (a module is known by its index
 *     in its parent, or by its name= override; a group is a nested
 *     Sequential), then duplicates are rejected;
 *  3. shapes and parameter counts, layer by layer, so every shape error is
 *     reported with the line that causes it, before any graph is built.
 */
#include "../core/internal.h"

#include <errno.h>
#include <math.h>

/* Limits (documented in docs/model-format.md). */
#define MAX_LINE 1024                   /* characters per line, comment included */
#define MAX_TOKENS 16                   /* fields per line */
#define MAX_DEPTH 8                     /* nested repeat/group */
#define MAX_REPEAT 1000                 /* N of one repeat */
#define MAX_ENTRIES 4096                /* layers and group markers after expansion */
#define MAX_TEXT (1 << 20)              /* bytes of a description */
#define MAX_WIDTH (1 << 20)             /* features or channels of a layer */
#define MAX_SPATIAL 4096                /* input height, width */
#define MAX_ACT ((int64_t)1 << 28)      /* elements of one example's activation */
#define MAX_PARAMS ((int64_t)1 << 30)   /* trainable scalars of a model */
#define NAME_LEN 64

enum kind {
    K_LINEAR, K_CONV, K_BATCHNORM, K_RELU, K_LEAKY_RELU, K_TANH, K_SIGMOID, K_SOFTPLUS, K_DROPOUT,
    K_MAXPOOL, K_AVGPOOL, K_GAP, K_FLATTEN, K_VIB, K_VIBCELL, K_BASICBLOCK, K_WIDEBLOCK,
    K_LAYERS, /* kinds below are structure, not layers */
    K_GROUP = K_LAYERS, K_GROUP_END
};

/* Options (key=value).  The order here is the order of the canonical text. */
enum field { F_K, F_STRIDE, F_PAD, F_BIAS, F_P, F_SLOPE, F_SHIFT, F_BETA, F_DROPOUT, F_SHORTCUT, F_NAME, N_FIELDS };
#define B(f) (1u << (f))

enum ftype { T_INT, T_FLOAT, T_BOOL, T_SHORTCUT, T_IDENT };
static const struct {
    const char *key;
    enum ftype type;
    double lo, hi; /* inclusive range of numbers */
} fields[N_FIELDS] = {
    [F_K] = {"k", T_INT, 1, 64},
    [F_STRIDE] = {"stride", T_INT, 1, 64},
    [F_PAD] = {"pad", T_INT, 0, 64},
    [F_BIAS] = {"bias", T_BOOL, 0, 0},
    [F_P] = {"p", T_FLOAT, 0, 0.999999},
    [F_SLOPE] = {"slope", T_FLOAT, -1e6, 1e6},
    [F_SHIFT] = {"shift", T_FLOAT, -100, 100},
    [F_BETA] = {"beta", T_FLOAT, 0, 1e6},
    [F_DROPOUT] = {"dropout", T_FLOAT, 0, 0.999999},
    [F_SHORTCUT] = {"shortcut", T_SHORTCUT, 0, 0},
    [F_NAME] = {"name", T_IDENT, 0, 0},
};

static const struct kind_spec {
    const char *word;
    const char *arg;     /* the positional argument, or NULL */
    int64_t arg_max;
    unsigned keys;       /* allowed options */
    unsigned required;
} kinds[K_LAYERS] = {
    [K_LINEAR] = {"linear", "OUT", MAX_WIDTH, B(F_BIAS) | B(F_NAME), 0},
    [K_CONV] = {"conv", "OUT", 65536, B(F_K) | B(F_STRIDE) | B(F_PAD) | B(F_BIAS) | B(F_NAME), B(F_K)},
    [K_BATCHNORM] = {"batchnorm", NULL, 0, B(F_NAME), 0},
    [K_RELU] = {"relu", NULL, 0, B(F_NAME), 0},
    [K_LEAKY_RELU] = {"leaky_relu", NULL, 0, B(F_SLOPE) | B(F_NAME), 0},
    [K_TANH] = {"tanh", NULL, 0, B(F_NAME), 0},
    [K_SIGMOID] = {"sigmoid", NULL, 0, B(F_NAME), 0},
    [K_SOFTPLUS] = {"softplus", NULL, 0, B(F_NAME), 0},
    [K_DROPOUT] = {"dropout", NULL, 0, B(F_P) | B(F_NAME), B(F_P)},
    [K_MAXPOOL] = {"maxpool", NULL, 0, B(F_K) | B(F_STRIDE) | B(F_PAD) | B(F_NAME), B(F_K)},
    [K_AVGPOOL] = {"avgpool", NULL, 0, B(F_K) | B(F_STRIDE) | B(F_PAD) | B(F_NAME), B(F_K)},
    [K_GAP] = {"globalavgpool", NULL, 0, B(F_NAME), 0},
    [K_FLATTEN] = {"flatten", NULL, 0, B(F_NAME), 0},
    [K_VIB] = {"vib", "K", MAX_WIDTH / 2, B(F_SHIFT) | B(F_BETA) | B(F_NAME), 0},
    [K_VIBCELL] = {"vibcell", NULL, 0, B(F_K) | B(F_SHIFT) | B(F_BETA) | B(F_NAME), 0},
    [K_BASICBLOCK] = {"basicblock", "OUT", 65536, B(F_STRIDE) | B(F_SHORTCUT) | B(F_NAME), 0},
    [K_WIDEBLOCK] = {"wideblock", "OUT", 65536, B(F_STRIDE) | B(F_DROPOUT) | B(F_NAME), 0},
};

enum { SC_CONV = 0, SC_PAD = 1 };

typedef struct entry {
    int kind, line;
    int64_t n;          /* the positional argument (OUT, K) */
    int k, stride, pad;
    bool bias;
    float p, slope, shift, beta, dropout; /* beta < 0: unset */
    int shortcut;
    bool named;
    char name[NAME_LEN];  /* the name= override, or a group's name */
    /* resolved by passes 2 and 3 */
    char full[NAME_LEN];  /* dotted path: prefix of the layer's parameters */
    int in_ndim, out_ndim; /* 1: (D), 3: (C, H, W) */
    int64_t in[3], out[3];
    int64_t params;        /* trainable scalars of this layer */
} entry;

struct ib_model {
    char name[NAME_LEN];
    int c, h, w, classes;
    int init_style; /* ib_init_style; the optional `init` header line */
    int n;
    entry *e;
    int n_bn;
    int bn[IB_MAX_BOTTLENECKS]; /* entry index of each bottleneck */
    int64_t params;
    char *text;
};

/* ------------------------------------------------------------------ */
/* errors                                                              */

typedef struct parser {
    const char *src;
    int line;
    entry *e;
    int n, cap;
    struct frame {
        bool repeat;
        int start, line;
        int64_t count;
    } stack[MAX_DEPTH];
    int depth;
    int hdr_line[3]; /* model, input, classes: the line, 0 = not yet */
    int init_line;   /* the optional `init` line, 0 = not given */
    bool layers_started;
    ib_status err; /* why push() failed */
    ib_model *m;
} parser;

static ib_status perr(const parser *P, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ib_status perr(const parser *P, int line, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ib__error(IB_ERR_FORMAT, "%s:%d: %s", P->src, line, msg);
}

/* ------------------------------------------------------------------ */
/* tokens and values                                                   */

static bool is_ident(const char *s, bool allow_dash_dot)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!(alnum || c == '_' || (allow_dash_dot && (c == '-' || c == '.'))))
            return false;
    }
    return true;
}

/* Digits only (no sign, no spaces): strtoll would accept " -3" and "0x10". */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!*s || strlen(s) > 12)
        return false;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* A decimal number: strtod alone would also take "inf", "nan" and hex. */
static bool parse_float(const char *s, double lo, double hi, float *out)
{
    if (!*s || strlen(s) > 40)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' || *c == '-'))
            return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = (float)v;
    return true;
}

static void set_defaults(entry *e)
{
    e->k = e->kind == K_VIBCELL ? 1 : 0;
    e->stride = 1;
    e->pad = 0;
    e->bias = true;
    e->p = 0;
    e->slope = 0.01f;
    e->shift = -5.0f;
    e->beta = -1.0f;
    e->dropout = 0;
    e->shortcut = SC_CONV;
}

static int find_kind(const char *word)
{
    for (int k = 0; k < K_LAYERS; k++)
        if (!strcmp(kinds[k].word, word))
            return k;
    return -1;
}

static void list_keys(unsigned keys, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int f = 0; f < N_FIELDS && o < len; f++)
        if (keys & B(f))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", fields[f].key);
}

/* ------------------------------------------------------------------ */
/* pass 1: lines -> entries                                            */

static entry *push(parser *P)
{
    if (P->n >= MAX_ENTRIES) {
        P->err = perr(P, P->line, "too many layers (the limit is %d)", MAX_ENTRIES);
        return NULL;
    }
    if (P->n == P->cap) {
        int cap = P->cap ? P->cap * 2 : 64;
        entry *e = realloc(P->e, (size_t)cap * sizeof *e);
        if (!e) {
            P->err = ib__error(IB_ERR_NOMEM, "model parser: out of memory");
            return NULL;
        }
        P->e = e;
        P->cap = cap;
    }
    entry *e = &P->e[P->n++];
    memset(e, 0, sizeof *e);
    e->line = P->line;
    return e;
}

static ib_status layer_line(parser *P, int kind, char **tok, int nt)
{
    const struct kind_spec *ks = &kinds[kind];
    entry *e = push(P);
    if (!e)
        return P->err;
    e->kind = kind;
    set_defaults(e);
    int npos = 0;
    unsigned seen = 0;
    for (int t = 1; t < nt; t++) {
        char *eq = strchr(tok[t], '=');
        if (!eq) {
            if (!ks->arg)
                return perr(P, P->line, "%s: unexpected '%s' (it takes only key=value options)", ks->word, tok[t]);
            if (npos > 0)
                return perr(P, P->line, "%s: unexpected '%s' (it takes one %s, then key=value options)", ks->word,
                            tok[t], ks->arg);
            if (seen)
                return perr(P, P->line, "%s: %s '%s' must come before the key=value options", ks->word, ks->arg,
                            tok[t]);
            if (!parse_int(tok[t], 1, ks->arg_max, &e->n))
                return perr(P, P->line, "%s: %s must be an integer in 1..%lld, not '%s'", ks->word, ks->arg,
                            (long long)ks->arg_max, tok[t]);
            npos++;
            continue;
        }
        *eq = 0;
        const char *key = tok[t], *val = eq + 1;
        int f = 0;
        while (f < N_FIELDS && strcmp(fields[f].key, key))
            f++;
        if (f == N_FIELDS || !(ks->keys & B(f))) {
            char keys[200];
            list_keys(ks->keys, keys, sizeof keys);
            return perr(P, P->line, "%s: unknown key '%s' (it takes: %s)", ks->word, key, keys);
        }
        if (seen & B(f))
            return perr(P, P->line, "%s: key '%s' given twice", ks->word, key);
        seen |= B(f);
        int64_t iv = 0;
        float fv = 0;
        switch (fields[f].type) {
        case T_INT:
            if (!parse_int(val, (int64_t)fields[f].lo, (int64_t)fields[f].hi, &iv))
                return perr(P, P->line, "%s: %s must be an integer in %g..%g, not '%s'", ks->word, key, fields[f].lo,
                            fields[f].hi, val);
            if (f == F_K)
                e->k = (int)iv;
            else if (f == F_STRIDE)
                e->stride = (int)iv;
            else
                e->pad = (int)iv;
            break;
        case T_FLOAT:
            if (!parse_float(val, fields[f].lo, fields[f].hi, &fv))
                return perr(P, P->line, "%s: %s must be a number in [%g, %g%s, not '%s'", ks->word, key,
                            fields[f].lo, fields[f].hi < 1 ? 1.0 : fields[f].hi, fields[f].hi < 1 ? ")" : "]", val);
            if (f == F_P)
                e->p = fv;
            else if (f == F_SLOPE)
                e->slope = fv;
            else if (f == F_SHIFT)
                e->shift = fv;
            else if (f == F_BETA)
                e->beta = fv;
            else
                e->dropout = fv;
            break;
        case T_BOOL:
            if (!strcmp(val, "true"))
                e->bias = true;
            else if (!strcmp(val, "false"))
                e->bias = false;
            else
                return perr(P, P->line, "%s: %s must be true or false, not '%s'", ks->word, key, val);
            break;
        case T_SHORTCUT:
            if (!strcmp(val, "conv"))
                e->shortcut = SC_CONV;
            else if (!strcmp(val, "pad"))
                e->shortcut = SC_PAD;
            else
                return perr(P, P->line, "%s: shortcut must be conv or pad, not '%s'", ks->word, val);
            break;
        case T_IDENT:
            if (!is_ident(val, false) || strlen(val) >= NAME_LEN)
                return perr(P, P->line, "%s: name must be letters, digits and '_' (at most %d), not '%s'", ks->word,
                            NAME_LEN - 1, val);
            snprintf(e->name, sizeof e->name, "%s", val);
            e->named = true;
            break;
        }
    }
    if (ks->arg && npos == 0)
        return perr(P, P->line, "%s: missing %s (write '%s %s ...')", ks->word, ks->arg, ks->word, ks->arg);
    unsigned missing = ks->required & ~seen;
    if (missing) {
        char keys[200];
        list_keys(missing, keys, sizeof keys);
        return perr(P, P->line, "%s: missing %s=", ks->word, keys);
    }
    if ((kind == K_MAXPOOL || kind == K_AVGPOOL) && !(seen & B(F_STRIDE)))
        e->stride = e->k; /* PyTorch's default: stride = kernel size */
    if (kind == K_VIBCELL && e->k % 2 == 0)
        return perr(P, P->line, "vibcell: k must be odd (the maps keep their size), not %d", e->k);
    if ((kind == K_MAXPOOL || kind == K_AVGPOOL) && e->pad > e->k / 2)
        return perr(P, P->line, "%s: pad must be at most k/2 = %d, not %d", ks->word, e->k / 2, e->pad);
    return IB_OK;
}

static ib_status header_line(parser *P, int which, char **tok, int nt)
{
    static const char *const words[3] = {"model", "input", "classes"};
    static const char *const usage[3] = {"model NAME", "input C H W", "classes K"};
    if (P->layers_started)
        return perr(P, P->line, "'%s' must come before the first layer", words[which]);
    if (P->hdr_line[which])
        return perr(P, P->line, "'%s' given twice (first at line %d)", words[which], P->hdr_line[which]);
    int want = which == 1 ? 4 : 2;
    if (nt != want)
        return perr(P, P->line, "expected '%s'", usage[which]);
    ib_model *m = P->m;
    if (which == 0) {
        if (!is_ident(tok[1], true) || strlen(tok[1]) >= NAME_LEN)
            return perr(P, P->line, "model name must be letters, digits, '_', '-' and '.' (at most %d), not '%s'",
                        NAME_LEN - 1, tok[1]);
        snprintf(m->name, sizeof m->name, "%s", tok[1]);
    } else if (which == 1) {
        int64_t v[3];
        static const char *const what[3] = {"C", "H", "W"};
        static const int64_t hi[3] = {65536, MAX_SPATIAL, MAX_SPATIAL};
        for (int i = 0; i < 3; i++)
            if (!parse_int(tok[1 + i], 1, hi[i], &v[i]))
                return perr(P, P->line, "input: %s must be an integer in 1..%lld, not '%s'", what[i],
                            (long long)hi[i], tok[1 + i]);
        if (v[0] * v[1] * v[2] > MAX_ACT)
            return perr(P, P->line, "input: %lld x %lld x %lld is larger than the limit of %lld elements",
                        (long long)v[0], (long long)v[1], (long long)v[2], (long long)MAX_ACT);
        m->c = (int)v[0];
        m->h = (int)v[1];
        m->w = (int)v[2];
    } else {
        int64_t v;
        if (!parse_int(tok[1], 1, MAX_WIDTH, &v))
            return perr(P, P->line, "classes must be an integer in 1..%d, not '%s'", MAX_WIDTH, tok[1]);
        m->classes = (int)v;
    }
    P->hdr_line[which] = P->line;
    return IB_OK;
}

static const char *const init_styles[3] = {"pytorch", "glorot", "kaiming"};

/* `init pytorch|glorot|kaiming`: how linear and conv layers start (optional). */
static ib_status init_line(parser *P, char **tok, int nt)
{
    if (P->layers_started)
        return perr(P, P->line, "'init' must come before the first layer");
    if (P->init_line)
        return perr(P, P->line, "'init' given twice (first at line %d)", P->init_line);
    if (nt != 2)
        return perr(P, P->line, "expected 'init pytorch', 'init glorot' or 'init kaiming'");
    for (int i = 0; i < 3; i++)
        if (!strcmp(tok[1], init_styles[i])) {
            P->m->init_style = i;
            P->init_line = P->line;
            return IB_OK;
        }
    return perr(P, P->line, "init: unknown style '%s' (pytorch, glorot or kaiming)", tok[1]);
}

static ib_status start_layers(parser *P)
{
    if (P->layers_started)
        return IB_OK;
    static const char *const usage[3] = {"model NAME", "input C H W", "classes K"};
    for (int i = 0; i < 3; i++)
        if (!P->hdr_line[i])
            return perr(P, P->line, "missing '%s' line before the first layer", usage[i]);
    P->layers_started = true;
    return IB_OK;
}

static ib_status end_line(parser *P)
{
    if (P->depth == 0)
        return perr(P, P->line, "'end' without 'repeat' or 'group'");
    struct frame *f = &P->stack[--P->depth];
    if (!f->repeat) {
        if (P->n - f->start <= 1)
            return perr(P, P->line, "empty group (opened at line %d)", f->line);
        entry *e = push(P);
        if (!e)
            return P->err;
        e->kind = K_GROUP_END;
        return IB_OK;
    }
    int len = P->n - f->start;
    if (len == 0)
        return perr(P, P->line, "empty repeat (opened at line %d)", f->line);
    if ((int64_t)P->n + (int64_t)len * (f->count - 1) > MAX_ENTRIES)
        return perr(P, f->line, "repeat %lld makes %lld layers, more than the limit of %d", (long long)f->count,
                    (long long)P->n + (int64_t)len * (f->count - 1), MAX_ENTRIES);
    for (int64_t r = 1; r < f->count; r++)
        for (int i = 0; i < len; i++) {
            entry *e = push(P); /* may move P->e: index, never hold pointers */
            if (!e)
                return P->err;
            *e = P->e[f->start + i];
        }
    return IB_OK;
}

static ib_status parse_line(parser *P, char *s)
{
    char *tok[MAX_TOKENS];
    int nt = 0;
    for (char *c = s;;) {
        while (*c == ' ' || *c == '\t' || *c == '\r')
            c++;
        if (!*c || *c == '#')
            break;
        if (nt == MAX_TOKENS)
            return perr(P, P->line, "too many fields (the limit is %d)", MAX_TOKENS);
        tok[nt++] = c;
        while (*c && *c != ' ' && *c != '\t' && *c != '\r' && *c != '#') {
            unsigned char b = (unsigned char)*c;
            if (b < 0x20 || b >= 0x7f)
                return perr(P, P->line, "unexpected byte 0x%02x (descriptions are printable ASCII outside comments)",
                            b);
            c++;
        }
        if (*c == '#') {
            *c = 0;
            break;
        }
        if (*c)
            *c++ = 0;
    }
    if (nt == 0)
        return IB_OK;
    const char *w = tok[0];
    if (!strcmp(w, "model"))
        return header_line(P, 0, tok, nt);
    if (!strcmp(w, "input"))
        return header_line(P, 1, tok, nt);
    if (!strcmp(w, "classes"))
        return header_line(P, 2, tok, nt);
    if (!strcmp(w, "init"))
        return init_line(P, tok, nt);
    ib_status st = start_layers(P);
    if (st)
        return st;
    if (!strcmp(w, "end")) {
        if (nt != 1)
            return perr(P, P->line, "'end' takes nothing after it");
        return end_line(P);
    }
    if (!strcmp(w, "repeat") || !strcmp(w, "group")) {
        bool rep = w[0] == 'r';
        if (nt != 2)
            return perr(P, P->line, rep ? "expected 'repeat N'" : "expected 'group NAME'");
        if (P->depth == MAX_DEPTH)
            return perr(P, P->line, "repeat/group nested too deeply (the limit is %d levels)", MAX_DEPTH);
        struct frame *f = &P->stack[P->depth];
        f->repeat = rep;
        f->line = P->line;
        f->start = P->n;
        f->count = 1;
        if (rep) {
            if (!parse_int(tok[1], 1, MAX_REPEAT, &f->count))
                return perr(P, P->line, "repeat: N must be an integer in 1..%d, not '%s'", MAX_REPEAT, tok[1]);
        } else {
            if (!is_ident(tok[1], false) || strlen(tok[1]) >= NAME_LEN)
                return perr(P, P->line, "group: name must be letters, digits and '_' (at most %d), not '%s'",
                            NAME_LEN - 1, tok[1]);
            entry *e = push(P);
            if (!e)
                return P->err;
            e->kind = K_GROUP;
            e->named = true;
            snprintf(e->name, sizeof e->name, "%s", tok[1]);
        }
        P->depth++;
        return IB_OK;
    }
    int kind = find_kind(w);
    if (kind < 0)
        return perr(P, P->line,
                    "unknown layer '%s' (layers: linear, conv, batchnorm, relu, leaky_relu, tanh, sigmoid, softplus, "
                    "dropout, maxpool, avgpool, globalavgpool, flatten, vib, vibcell, basicblock, wideblock; "
                    "structure: repeat, group, end)",
                    w);
    return layer_line(P, kind, tok, nt);
}

/* ------------------------------------------------------------------ */
/* pass 2: names                                                       */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static ib_status resolve_names(parser *P)
{
    struct {
        char prefix[NAME_LEN];
        int next;
    } st[MAX_DEPTH + 1];
    int d = 0;
    st[0].prefix[0] = 0;
    st[0].next = 0;
    for (int i = 0; i < P->n; i++) {
        entry *e = &P->e[i];
        if (e->kind == K_GROUP_END) {
            d--;
            continue;
        }
        char own[24];
        snprintf(own, sizeof own, "%d", st[d].next++);
        const char *leaf = e->named ? e->name : own;
        int len = snprintf(e->full, sizeof e->full, "%s%s%s", st[d].prefix, st[d].prefix[0] ? "." : "", leaf);
        if (len >= NAME_LEN)
            return perr(P, e->line, "layer name '%s.%s' is longer than %d characters", st[d].prefix, leaf,
                        NAME_LEN - 1);
        if (e->kind == K_GROUP) {
            d++;
            snprintf(st[d].prefix, sizeof st[d].prefix, "%s", e->full);
            st[d].next = 0;
        }
    }
    /* Two modules with one name would share (or clash on) parameters. */
    const char **names = malloc((size_t)P->n * sizeof *names);
    if (!names)
        return ib__error(IB_ERR_NOMEM, "model parser: out of memory");
    int k = 0;
    for (int i = 0; i < P->n; i++)
        if (P->e[i].kind != K_GROUP_END)
            names[k++] = P->e[i].full;
    qsort(names, (size_t)k, sizeof *names, cmp_names);
    for (int i = 1; i < k; i++)
        if (!strcmp(names[i - 1], names[i])) {
            int a = -1, b = -1;
            for (int j = 0; j < P->n; j++)
                if (P->e[j].kind != K_GROUP_END && !strcmp(P->e[j].full, names[i])) {
                    if (a < 0)
                        a = j;
                    else if (b < 0)
                        b = j;
                }
            int la = P->e[a].line, lb = P->e[b].line;
            free(names);
            if (la == lb)
                return perr(P, lb, "two layers are named '%s' (a name= inside a repeat names every copy alike)",
                            P->e[b].full);
            return perr(P, lb, "the name '%s' is already used at line %d", P->e[b].full, la);
        }
    free(names);
    return IB_OK;
}

/* ------------------------------------------------------------------ */
/* pass 3: shapes and parameter counts                                 */

static void shape_str(int ndim, const int64_t *d, char *buf, size_t len)
{
    if (ndim == 1)
        snprintf(buf, len, "%lld features", (long long)d[0]);
    else
        snprintf(buf, len, "a %lldx%lldx%lld feature map", (long long)d[0], (long long)d[1], (long long)d[2]);
}

static int64_t conv_out(int64_t h, int k, int stride, int pad)
{
    int64_t span = h + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

static ib_status infer(parser *P)
{
    ib_model *m = P->m;
    int ndim = 3;
    int64_t d[3] = {m->c, m->h, m->w};
    int64_t params = 0;
    int last = -1;
    char sh[96];
    for (int i = 0; i < P->n; i++) {
        entry *e = &P->e[i];
        if (e->kind >= K_LAYERS)
            continue;
        const char *word = kinds[e->kind].word;
        e->in_ndim = ndim;
        memcpy(e->in, d, sizeof d);
        shape_str(ndim, d, sh, sizeof sh);
        bool needs_map = e->kind == K_CONV || e->kind == K_MAXPOOL || e->kind == K_AVGPOOL || e->kind == K_GAP ||
                         e->kind == K_VIBCELL || e->kind == K_BASICBLOCK || e->kind == K_WIDEBLOCK;
        if (needs_map && ndim != 3)
            return perr(P, e->line, "%s needs a feature map (C, H, W) but gets %s", word, sh);
        if ((e->kind == K_LINEAR || e->kind == K_VIB) && ndim != 1)
            return perr(P, e->line, "%s needs flat features but gets %s; add 'flatten' (or 'globalavgpool') before it",
                        word, sh);
        int64_t c = d[0], n = e->n, add = 0;
        switch (e->kind) {
        case K_LINEAR:
            add = n * c + (e->bias ? n : 0);
            d[0] = n;
            break;
        case K_CONV: {
            int64_t h = conv_out(d[1], e->k, e->stride, e->pad), w = conv_out(d[2], e->k, e->stride, e->pad);
            if (h < 1 || w < 1)
                return perr(P, e->line, "conv: a %dx%d kernel (pad %d) does not fit %s", e->k, e->k, e->pad, sh);
            add = n * c * e->k * e->k + (e->bias ? n : 0);
            d[0] = n, d[1] = h, d[2] = w;
            break;
        }
        case K_BATCHNORM:
            add = 2 * c;
            break;
        case K_MAXPOOL:
        case K_AVGPOOL: {
            int64_t h = conv_out(d[1], e->k, e->stride, e->pad), w = conv_out(d[2], e->k, e->stride, e->pad);
            if (h < 1 || w < 1)
                return perr(P, e->line, "%s: a %dx%d window (pad %d) does not fit %s", word, e->k, e->k, e->pad, sh);
            d[1] = h, d[2] = w;
            break;
        }
        case K_GAP:
            ndim = 1;
            break;
        case K_FLATTEN:
            if (ndim == 3) {
                d[0] = c * d[1] * d[2];
                ndim = 1;
            }
            break;
        case K_VIB:
            if (c != 2 * n)
                return perr(P, e->line, "vib %lld: the layer before must output 2K = %lld features, it outputs %lld",
                            (long long)n, (long long)(2 * n), (long long)c);
            d[0] = n;
            break;
        case K_VIBCELL:
            add = 2 * (c * c * e->k * e->k + c);
            break;
        case K_BASICBLOCK:
        case K_WIDEBLOCK: {
            bool proj = e->stride != 1 || c != n;
            if (e->kind == K_BASICBLOCK && proj && e->shortcut == SC_PAD && n < c)
                return perr(P, e->line, "basicblock: shortcut=pad cannot reduce %lld channels to %lld", (long long)c,
                            (long long)n);
            d[0] = n;
            d[1] = conv_out(d[1], 3, e->stride, 1);
            d[2] = conv_out(d[2], 3, e->stride, 1);
            if (e->kind == K_BASICBLOCK)
                add = c * n * 9 + 2 * n + n * n * 9 + 2 * n + (proj && e->shortcut == SC_CONV ? c * n + 2 * n : 0);
            else
                add = 2 * c + c * n * 9 + 2 * n + n * n * 9 + (proj ? c * n : 0);
            break;
        }
        default:
            break;
        }
        int64_t numel = ndim == 1 ? d[0] : d[0] * d[1] * d[2];
        if (numel > MAX_ACT)
            return perr(P, e->line, "%s: its output of %lld elements per example is over the limit of %lld", word,
                        (long long)numel, (long long)MAX_ACT);
        /* Each term above is below 2^20 * 2^28 * 64^2 < 2^60: no overflow. */
        params += add;
        e->params = add;
        if (add > MAX_PARAMS || params > MAX_PARAMS)
            return perr(P, e->line, "the model has more than %lld parameters, the limit", (long long)MAX_PARAMS);
        e->out_ndim = ndim;
        memcpy(e->out, d, sizeof d);
        if (e->kind == K_VIB || e->kind == K_VIBCELL) {
            if (m->n_bn == IB_MAX_BOTTLENECKS)
                return perr(P, e->line, "more than %d vib layers and cells", IB_MAX_BOTTLENECKS);
            m->bn[m->n_bn++] = i;
        }
        last = i;
    }
    if (last < 0)
        return perr(P, P->line, "the model has no layers");
    entry *e = &P->e[last];
    if (ndim != 1 || d[0] != m->classes) {
        shape_str(ndim, d, sh, sizeof sh);
        return perr(P, e->line, "the last layer outputs %s, but 'classes %d' (line %d) asks for %d logits", sh,
                    m->classes, P->hdr_line[2], m->classes);
    }
    m->params = params;
    return IB_OK;
}

/* ------------------------------------------------------------------ */
/* canonical text                                                      */

typedef struct sbuf {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* The shortest decimal that reads back as the same float. */
static void fmt_float(float v, char *buf, size_t len)
{
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

/* The model's text; name replaces its name when given, and cell[i] > 0
 * inserts `vibcell name=cell<cell[i]>` after entry i (ib_model_add_cells). */
static char *canonical_with(const ib_model *m, const char *name, const int *cell)
{
    sbuf b = {0};
    sb_printf(&b, "model %s\ninput %d %d %d\nclasses %d\n", name ? name : m->name, m->c, m->h, m->w, m->classes);
    if (m->init_style != IB_INIT_STYLE_PYTORCH)
        sb_printf(&b, "init %s\n", init_styles[m->init_style]);
    int depth = 0;
    for (int i = 0; i < m->n; i++) {
        const entry *e = &m->e[i];
        if (e->kind == K_GROUP_END)
            depth--;
        for (int k = 0; k < depth; k++)
            sb_printf(&b, "  ");
        if (e->kind == K_GROUP) {
            sb_printf(&b, "group %s\n", e->name);
            depth++;
            continue;
        }
        if (e->kind == K_GROUP_END) {
            sb_printf(&b, "end\n");
            goto cell;
        }
        const struct kind_spec *ks = &kinds[e->kind];
        sb_printf(&b, "%s", ks->word);
        if (ks->arg)
            sb_printf(&b, " %lld", (long long)e->n);
        for (int f = 0; f < N_FIELDS; f++) {
            if (!(ks->keys & B(f)))
                continue;
            char num[32];
            switch (f) {
            case F_K: sb_printf(&b, " k=%d", e->k); break;
            case F_STRIDE: sb_printf(&b, " stride=%d", e->stride); break;
            case F_PAD: sb_printf(&b, " pad=%d", e->pad); break;
            case F_BIAS: sb_printf(&b, " bias=%s", e->bias ? "true" : "false"); break;
            case F_SHORTCUT: sb_printf(&b, " shortcut=%s", e->shortcut == SC_PAD ? "pad" : "conv"); break;
            case F_NAME:
                if (e->named)
                    sb_printf(&b, " name=%s", e->name);
                break;
            case F_BETA:
                if (e->beta < 0)
                    break;
                /* fall through */
            default: {
                float v = f == F_P ? e->p : f == F_SLOPE ? e->slope : f == F_SHIFT ? e->shift : f == F_BETA ? e->beta
                                                                                                          : e->dropout;
                fmt_float(v, num, sizeof num);
                sb_printf(&b, " %s=%s", fields[f].key, num);
            }
            }
        }
        sb_printf(&b, "\n");
    cell:
        if (cell && cell[i] > 0) {
            for (int k = 0; k < depth; k++)
                sb_printf(&b, "  ");
            sb_printf(&b, "vibcell name=cell%d\n", cell[i]);
        }
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static char *canonical(const ib_model *m) { return canonical_with(m, NULL, NULL); }

/* ------------------------------------------------------------------ */
/* public: parse, load, queries                                        */

ib_status ib_model_parse(const char *text, const char *source, ib_model **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_model_parse: out is NULL");
    *out = NULL;
    if (!text)
        return ib__error(IB_ERR_ARG, "ib_model_parse: text is NULL");
    parser P = {0};
    P.src = source ? source : "model";
    size_t total = strnlen(text, (size_t)MAX_TEXT + 1);
    if (total > MAX_TEXT)
        return ib__error(IB_ERR_FORMAT, "%s: the description is longer than %d bytes", P.src, MAX_TEXT);
    ib_model *m = calloc(1, sizeof *m);
    if (!m)
        return ib__error(IB_ERR_NOMEM, "ib_model_parse: out of memory");
    P.m = m;
    ib_status st = IB_OK;
    char line[MAX_LINE + 2];
    const char *s = text;
    while (*s && st == IB_OK) {
        P.line++;
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (len > MAX_LINE) {
            st = perr(&P, P.line, "line longer than %d characters", MAX_LINE);
            break;
        }
        memcpy(line, s, len);
        line[len] = 0;
        st = parse_line(&P, line);
        s = nl ? nl + 1 : s + len;
    }
    if (st == IB_OK && P.depth > 0) {
        struct frame *f = &P.stack[P.depth - 1];
        st = perr(&P, f->line, "'%s' has no matching 'end'", f->repeat ? "repeat" : "group");
    }
    if (st == IB_OK && !P.layers_started) {
        static const char *const usage[3] = {"model NAME", "input C H W", "classes K"};
        int i = 0;
        while (i < 3 && P.hdr_line[i])
            i++;
        st = i < 3 ? perr(&P, P.line ? P.line : 1, "missing '%s' line", usage[i])
                   : perr(&P, P.line, "the model has no layers");
    }
    if (st == IB_OK)
        st = resolve_names(&P);
    if (st == IB_OK)
        st = infer(&P);
    m->e = P.e;
    m->n = P.n;
    if (st == IB_OK) {
        m->text = canonical(m);
        if (!m->text)
            st = ib__error(IB_ERR_NOMEM, "ib_model_parse: out of memory");
    }
    if (st != IB_OK) {
        ib_model_free(m);
        return st;
    }
    *out = m;
    return IB_OK;
}

void ib_model_free(ib_model *m)
{
    if (!m)
        return;
    free(m->e);
    free(m->text);
    free(m);
}

static bool is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n >= 4 && !strcmp(s + n - 4, ".ibm"));
}

ib_status ib_model_load(const char *name_or_path, ib_model **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_model_load: out is NULL");
    *out = NULL;
    if (!name_or_path || !*name_or_path)
        return ib__error(IB_ERR_ARG, "ib_model_load: no model name given");
    if (!is_path(name_or_path)) {
        const char *text = ib_model_builtin_text(name_or_path);
        if (!text) {
            char list[512];
            size_t o = 0;
            list[0] = 0;
            for (int i = 0; i < ib_model_builtin_count() && o < sizeof list; i++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", ib_model_builtin_name(i));
            return ib__error(IB_ERR_ARG,
                             "unknown model '%s': the built-in models are %s (a description file is given by a path "
                             "containing '/' or ending in .ibm)",
                             name_or_path, list);
        }
        char src[NAME_LEN + 16];
        snprintf(src, sizeof src, "built-in %s", name_or_path);
        return ib_model_parse(text, src, out);
    }
    FILE *f = fopen(name_or_path, "rb");
    if (!f)
        return ib__error(IB_ERR_IO, "cannot open model description '%s': %s", name_or_path, strerror(errno));
    char *buf = malloc((size_t)MAX_TEXT + 2);
    if (!buf) {
        fclose(f);
        return ib__error(IB_ERR_NOMEM, "ib_model_load: out of memory");
    }
    size_t n = fread(buf, 1, (size_t)MAX_TEXT + 1, f);
    bool err = ferror(f);
    fclose(f);
    ib_status st;
    if (err)
        st = ib__error(IB_ERR_IO, "cannot read model description '%s'", name_or_path);
    else if (n > MAX_TEXT)
        st = ib__error(IB_ERR_FORMAT, "%s: the description is longer than %d bytes", name_or_path, MAX_TEXT);
    else if (memchr(buf, 0, n))
        st = ib__error(IB_ERR_FORMAT, "%s: contains a NUL byte (not a text file)", name_or_path);
    else {
        buf[n] = 0;
        st = ib_model_parse(buf, name_or_path, out);
    }
    free(buf);
    return st;
}

const char *ib_model_name(const ib_model *m) { return m ? m->name : ""; }
const char *ib_model_text(const ib_model *m) { return m ? m->text : ""; }
int ib_model_classes(const ib_model *m) { return m ? m->classes : 0; }
int64_t ib_model_param_count(const ib_model *m) { return m ? m->params : 0; }
int ib_model_bottleneck_count(const ib_model *m) { return m ? m->n_bn : 0; }

void ib_model_input_shape(const ib_model *m, int *c, int *h, int *w)
{
    if (c)
        *c = m ? m->c : 0;
    if (h)
        *h = m ? m->h : 0;
    if (w)
        *w = m ? m->w : 0;
}

int ib_model_bottleneck_shape(const ib_model *m, int i, int64_t shape[3])
{
    if (!m || i < 0 || i >= m->n_bn)
        return 0;
    const entry *e = &m->e[m->bn[i]];
    memcpy(shape, e->out, sizeof e->out);
    return e->out_ndim;
}

bool ib_model_equal(const ib_model *a, const ib_model *b)
{
    if (!a || !b)
        return a == b;
    if (strcmp(a->name, b->name) || a->c != b->c || a->h != b->h || a->w != b->w || a->classes != b->classes ||
        a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++) {
        const entry *x = &a->e[i], *y = &b->e[i];
        if (x->kind != y->kind || x->n != y->n || x->k != y->k || x->stride != y->stride || x->pad != y->pad ||
            x->bias != y->bias || x->p != y->p || x->slope != y->slope || x->shift != y->shift ||
            x->beta != y->beta || x->dropout != y->dropout || x->shortcut != y->shortcut || x->named != y->named ||
            strcmp(x->name, y->name) || strcmp(x->full, y->full))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* building                                                            */

static ib_node *named(ib_node *n, const char *name)
{
    return ib_node_set_name(n, name);
}

/* He et al.'s option A shortcut: subsample, then zero channels on both
 * sides (as the common PyTorch CIFAR ResNets pad, so outputs match). */
static ib_node *pad_shortcut(ib_graph *g, ib_node *x, int64_t out_ch, int stride)
{
    if (stride > 1)
        x = ib_avgpool2d(g, x, 1, stride, 0);
    if (!x)
        return NULL;
    int64_t c = x->shape[1], extra = out_ch - c;
    if (extra == 0)
        return x;
    int64_t front = extra / 2, back = extra - front;
    ib_node *z = ib_scale(g, x, 0.0f);
    while (z && z->shape[1] < back)
        z = ib_concat(g, 2, (ib_node *[]){z, z}, 1);
    if (!z)
        return NULL;
    ib_node *parts[3];
    int np = 0;
    if (front > 0)
        parts[np++] = ib_slice(g, z, 1, 0, front);
    parts[np++] = x;
    parts[np++] = ib_slice(g, z, 1, 0, back);
    return ib_concat(g, np, parts, 1);
}

static ib_node *basic_block(ib_graph *g, ib_node *x, const entry *e)
{
    char a[IB_NAME_MAX];
    const char *p = e->full;
    bool proj = e->stride != 1 || e->in[0] != e->n;
    snprintf(a, sizeof a, "%s.conv1", p);
    ib_node *h = ib_nn_conv2d(g, x, a, e->n, 3, e->stride, 1, false);
    snprintf(a, sizeof a, "%s.bn1", p);
    h = ib_relu(g, ib_nn_batchnorm(g, h, a));
    snprintf(a, sizeof a, "%s.conv2", p);
    h = ib_nn_conv2d(g, h, a, e->n, 3, 1, 1, false);
    snprintf(a, sizeof a, "%s.bn2", p);
    h = ib_nn_batchnorm(g, h, a);
    ib_node *sc = x;
    if (proj && e->shortcut == SC_CONV) {
        snprintf(a, sizeof a, "%s.shortcut.0", p);
        sc = ib_nn_conv2d(g, x, a, e->n, 1, e->stride, 0, false);
        snprintf(a, sizeof a, "%s.shortcut.1", p);
        sc = ib_nn_batchnorm(g, sc, a);
    } else if (proj) {
        sc = pad_shortcut(g, x, e->n, e->stride);
    }
    return ib_relu(g, ib_add(g, h, sc));
}

/* Pre-activation block as in the WRN reference code: when the shape
 * changes, the 1x1 shortcut conv reads the activated input. */
static ib_node *wide_block(ib_graph *g, ib_node *x, const entry *e)
{
    char a[IB_NAME_MAX];
    const char *p = e->full;
    bool proj = e->stride != 1 || e->in[0] != e->n;
    snprintf(a, sizeof a, "%s.bn1", p);
    ib_node *act = ib_relu(g, ib_nn_batchnorm(g, x, a));
    snprintf(a, sizeof a, "%s.conv1", p);
    ib_node *h = ib_nn_conv2d(g, act, a, e->n, 3, e->stride, 1, false);
    snprintf(a, sizeof a, "%s.bn2", p);
    h = ib_relu(g, ib_nn_batchnorm(g, h, a));
    if (e->dropout > 0)
        h = ib_dropout(g, h, e->dropout);
    snprintf(a, sizeof a, "%s.conv2", p);
    h = ib_nn_conv2d(g, h, a, e->n, 3, 1, 1, false);
    ib_node *sc = x;
    if (proj) {
        snprintf(a, sizeof a, "%s.shortcut", p);
        sc = ib_nn_conv2d(g, act, a, e->n, 1, e->stride, 0, false);
    }
    return ib_add(g, h, sc);
}

ib_status ib_model_build(const ib_model *m, ib_graph *g, ib_node *x, ib_node *const *eps, ib_model_out *out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_model_build: out is NULL");
    memset(out, 0, sizeof *out);
    if (!m || !g)
        return ib__error(IB_ERR_ARG, "ib_model_build: model or graph is NULL");
    if (!ib__inputs_ok(g, 1, &x)) {
        ib_status st = ib_graph_status(g);
        return st ? st : ib__error(IB_ERR_ARG, "ib_model_build: no input node (or the graph is compiled)");
    }
    if (x->ndim != 4 || x->shape[1] != m->c || x->shape[2] != m->h || x->shape[3] != m->w || x->dtype != IB_F32) {
        char sh[64];
        ib__fail(g, IB_ERR_SHAPE, "model '%s' takes input (N, %d, %d, %d) float, not '%s' %s", m->name, m->c, m->h,
                 m->w, x->name, ib__shape_str(x, sh, sizeof sh));
        return IB_ERR_SHAPE;
    }
    ib_init_style style_before = ib_graph_init_style(g);
    ib_graph_set_init_style(g, (ib_init_style)m->init_style);
    for (int i = 0; i < m->n && x; i++) {
        const entry *e = &m->e[i];
        const char *nm = e->full;
        switch (e->kind) {
        case K_LINEAR: x = ib_nn_linear(g, x, nm, e->n, e->bias); break;
        case K_CONV: x = ib_nn_conv2d(g, x, nm, e->n, e->k, e->stride, e->pad, e->bias); break;
        case K_BATCHNORM: x = ib_nn_batchnorm(g, x, nm); break;
        case K_RELU: x = named(ib_relu(g, x), nm); break;
        case K_LEAKY_RELU: x = named(ib_leaky_relu(g, x, e->slope), nm); break;
        case K_TANH: x = named(ib_tanh(g, x), nm); break;
        case K_SIGMOID: x = named(ib_sigmoid(g, x), nm); break;
        case K_SOFTPLUS: x = named(ib_softplus(g, x, 0.0f), nm); break;
        case K_DROPOUT: x = named(ib_dropout(g, x, e->p), nm); break;
        case K_MAXPOOL: x = named(ib_maxpool2d(g, x, e->k, e->stride, e->pad), nm); break;
        case K_AVGPOOL: x = named(ib_avgpool2d(g, x, e->k, e->stride, e->pad), nm); break;
        case K_GAP: x = named(ib_global_avgpool(g, x), nm); break;
        case K_FLATTEN:
            if (x->ndim != 2)
                x = named(ib_flatten(g, x), nm);
            break;
        case K_BASICBLOCK: x = named(basic_block(g, x, e), nm); break;
        case K_WIDEBLOCK: x = named(wide_block(g, x, e), nm); break;
        case K_VIB:
        case K_VIBCELL: {
            int b = out->n_bottlenecks;
            ib_node *ep = eps ? eps[b] : NULL;
            ib_bottleneck bn;
            char a[IB_NAME_MAX];
            if (e->kind == K_VIB) {
                bn = ib_nn_vib(g, x, e->n, e->shift, ep);
                snprintf(a, sizeof a, "%s.mu", nm);
                named(bn.mu, a);
                snprintf(a, sizeof a, "%s.sigma", nm);
                named(bn.sigma, a);
                snprintf(a, sizeof a, "%s.z", nm);
                named(bn.z, a);
                snprintf(a, sizeof a, "%s.kl", nm);
                named(bn.kl, a);
            } else {
                bn = ib_nn_vib_cell(g, x, nm, e->k, e->shift, ep);
            }
            out->bn[b] = bn;
            snprintf(out->bn_name[b], sizeof out->bn_name[b], "%s", nm);
            out->bn_beta[b] = e->beta;
            out->bn_depth[b] = b + 1;
            out->bn_cell[b] = e->kind == K_VIBCELL;
            out->n_bottlenecks = b + 1;
            x = bn.z && bn.kl ? bn.z : NULL;
            break;
        }
        default: /* group markers only name things */
            break;
        }
    }
    ib_graph_set_init_style(g, style_before);
    if (!x) {
        ib_status st = ib_graph_status(g);
        return st ? st : ib__error(IB_ERR_STATE, "ib_model_build: building '%s' failed", m->name);
    }
    out->logits = x;
    return IB_OK;
}

ib_status ib_model_set_init_style(ib_model *m, ib_init_style style)
{
    if (!m)
        return ib__error(IB_ERR_ARG, "ib_model_set_init_style: model is NULL");
    if (style < IB_INIT_STYLE_PYTORCH || style > IB_INIT_STYLE_KAIMING)
        return ib__error(IB_ERR_ARG, "ib_model_set_init_style: unknown style %d", (int)style);
    int before = m->init_style;
    m->init_style = (int)style;
    char *text = canonical(m);
    if (!text) {
        m->init_style = before;
        return ib__error(IB_ERR_NOMEM, "ib_model_set_init_style: out of memory");
    }
    free(m->text);
    m->text = text;
    return IB_OK;
}

/* ------------------------------------------------------------------ */
/* VIB cells placed by name                                            */

/* The index of the entry that closes entry i: its `end` for a group,
 * itself for a layer. */
static int closing_entry(const ib_model *m, int i)
{
    if (m->e[i].kind != K_GROUP)
        return i;
    int depth = 0;
    for (int j = i; j < m->n; j++) {
        if (m->e[j].kind == K_GROUP)
            depth++;
        else if (m->e[j].kind == K_GROUP_END && --depth == 0)
            return j;
    }
    return m->n - 1; /* a parsed model always closes its groups */
}

/* Whether a feature map (C, H, W) flows out of entry i (a layer or an
 * `end`): the output of the last layer at or before it, else the input. */
static bool map_after(const ib_model *m, int i)
{
    for (int j = i; j >= 0; j--)
        if (m->e[j].kind < K_LAYERS)
            return m->e[j].out_ndim == 3;
    return true;
}

static int find_full(const ib_model *m, const char *full)
{
    for (int i = 0; i < m->n; i++)
        if (m->e[i].kind != K_GROUP_END && !strcmp(m->e[i].full, full))
            return i;
    return -1;
}

static bool leaf_name_used(const ib_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (m->e[i].kind != K_GROUP_END && m->e[i].named && !strcmp(m->e[i].name, name))
            return true;
    return false;
}

/* Marks the place after entry i for a cell; "what" names it in errors. */
static ib_status mark_cell(const ib_model *m, int i, const char *what, int *cell)
{
    int at = closing_entry(m, i);
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
    char full[NAME_LEN];
    if (len - (children ? 2 : 0) >= sizeof full)
        return ib__error(IB_ERR_ARG, "VIB cell after '%s': no layer has so long a name", item);
    snprintf(full, sizeof full, "%.*s", (int)(len - (children ? 2 : 0)), item);
    int i = find_full(m, full);
    if (i < 0) {
        char names[512] = "";
        size_t used = 0;
        for (int j = 0, depth = 0; j < m->n && used < sizeof names - 80; j++) {
            if (m->e[j].kind == K_GROUP_END) {
                depth--;
                continue;
            }
            if (depth == 0)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", m->e[j].full);
            if (m->e[j].kind == K_GROUP)
                depth++;
        }
        return ib__error(IB_ERR_ARG,
                         "VIB cell after '%s': model '%s' has no layer of that name (its top-level layers: %s; "
                         "'ibnet models --layers %s' lists every name)",
                         full, m->name, names, m->name);
    }
    if (!children)
        return mark_cell(m, i, full, cell);
    if (m->e[i].kind != K_GROUP)
        return ib__error(IB_ERR_ARG, "VIB cell after '%s': '%s' is not a group, so it has no layers to follow", item,
                         full);
    int end = closing_entry(m, i), marked = 0;
    for (int j = i + 1; j < end; j = closing_entry(m, j) + 1) {
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
    char name[NAME_LEN];
    for (int i = 0, next = 1; s == IB_OK && i < m->n; i++) {
        if (!cell[i])
            continue;
        do
            snprintf(name, sizeof name, "cell%d", next++);
        while (leaf_name_used(m, name));
        cell[i] = next - 1;
    }
    char model_name[NAME_LEN];
    int nl = snprintf(model_name, sizeof model_name, "%s-cells", m->name);
    if (nl < 0 || (size_t)nl >= sizeof model_name)
        snprintf(model_name, sizeof model_name, "%s", m->name);
    char *text = s == IB_OK ? canonical_with(m, model_name, cell) : NULL;
    if (s == IB_OK && !text)
        s = ib__error(IB_ERR_NOMEM, "ib_model_add_cells: out of memory");
    if (s == IB_OK) {
        char source[NAME_LEN + 32];
        snprintf(source, sizeof source, "%s with VIB cells", m->name);
        s = ib_model_parse(text, source, out);
    }
    free(text);
    free(list);
    free(cell);
    return s;
}

/* ------------------------------------------------------------------ */
/* summary                                                             */

static void with_commas(int64_t v, char *buf, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

char *ib_model_summary(const ib_model *m)
{
    if (!m)
        return NULL;
    sbuf b = {0};
    char num[32], sh[96];
    with_commas(m->params, num, sizeof num);
    sb_printf(&b, "%s: input %dx%dx%d, %d classes, %s trainable parameters, %d bottleneck%s\n", m->name, m->c, m->h,
              m->w, m->classes, num, m->n_bn, m->n_bn == 1 ? "" : "s");
    sb_printf(&b, "%-32s %-13s %-14s %12s\n", "layer", "kind", "output", "parameters");
    for (int i = 0; i < m->n; i++) {
        const entry *e = &m->e[i];
        if (e->kind == K_GROUP_END)
            continue;
        if (e->kind == K_GROUP) {
            sb_printf(&b, "%-32s group\n", e->full);
            continue;
        }
        if (e->out_ndim == 1)
            snprintf(sh, sizeof sh, "%lld", (long long)e->out[0]);
        else
            snprintf(sh, sizeof sh, "%lldx%lldx%lld", (long long)e->out[0], (long long)e->out[1], (long long)e->out[2]);
        with_commas(e->params, num, sizeof num);
        sb_printf(&b, "%-32s %-13s %-14s %12s\n", e->full, kinds[e->kind].word, sh, num);
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
