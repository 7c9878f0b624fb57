/*
 * model_parse.c — text -> model: the parser of the model description
 * format (docs/model-format.md) and ib_model_load.
 *
 * Why a text format: a researcher places VIB cells, changes widths or
 * writes a new network without touching C, and a checkpoint carries the
 * exact description it was trained with (the canonical text).
 *
 * The parser works in three passes over a flat list of layers, with no
 * recursion anywhere, because it must survive hostile input (it is fuzzed):
 *  1. lines -> layers: the word and keys checked against the table of layer
 *     kinds and options (model_kinds.c); `repeat N` ... `end` is expanded in
 *     place as soon as its `end` is read (the total is checked before
 *     anything is copied, so nested repeats cannot blow up); `group NAME`
 *     ... `end` stays as a pair of markers (it only names things);
 *  2. names: PyTorch's nn.Sequential rule (a module is known by its index
 *     in its parent, or by its name= override; a group is a nested
 *     Sequential), then duplicates are rejected;
 *  3. shapes and parameter counts, layer by layer through each kind's
 *     shape rule, so every shape error is reported with the line that
 *     causes it, before any graph is built.
 */
#include "model_internal.h"

#include <errno.h>
#include <math.h>

/* ------------------------------------------------------------------ */
/* errors                                                              */

typedef struct parser {
    const char *src;
    int line;
    ib__layer *e;
    int n, cap;
    struct frame {
        bool repeat;
        int start, line;
        int64_t count;
    } stack[IB__MODEL_MAX_DEPTH];
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

static void set_defaults(ib__layer *e)
{
    for (int o = 0; o < ib__model_n_opts; o++) {
        const ib__model_opt *opt = &ib__model_opts[o];
        if (opt->type == IB__OPT_FLOAT)
            e->v[o].f = (float)opt->def;
        else
            e->v[o].i = (int64_t)opt->def;
    }
}

static const ib__layer_kind *find_kind(const char *word)
{
    for (int k = 0; k < ib__model_n_kinds; k++)
        if (!strcmp(ib__model_kinds[k].word, word))
            return &ib__model_kinds[k];
    return NULL;
}

/* The keys of an option set, in table order; `name` last when with_name. */
static void list_keys(unsigned keys, bool with_name, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int f = 0; f < ib__model_n_opts && o < len; f++)
        if (keys & (1u << f))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", ib__model_opts[f].key);
    if (with_name && o < len)
        snprintf(buf + o, len - o, "%sname", o ? ", " : "");
}

/* Reads the value of option f of layer e (its key was accepted). */
static ib_status option_value(parser *P, ib__layer *e, int f, const char *val)
{
    const ib__model_opt *opt = &ib__model_opts[f];
    const char *word = e->kind->word, *key = opt->key;
    switch (opt->type) {
    case IB__OPT_INT:
        if (!parse_int(val, (int64_t)opt->lo, (int64_t)opt->hi, &e->v[f].i))
            return perr(P, P->line, "%s: %s must be an integer in %g..%g, not '%s'", word, key, opt->lo, opt->hi, val);
        break;
    case IB__OPT_FLOAT:
        if (!parse_float(val, opt->lo, opt->hi, &e->v[f].f))
            return perr(P, P->line, "%s: %s must be a number in [%g, %g%s, not '%s'", word, key, opt->lo,
                        opt->hi < 1 ? 1.0 : opt->hi, opt->hi < 1 ? ")" : "]", val);
        break;
    case IB__OPT_BOOL:
        if (!strcmp(val, "true"))
            e->v[f].i = 1;
        else if (!strcmp(val, "false"))
            e->v[f].i = 0;
        else
            return perr(P, P->line, "%s: %s must be true or false, not '%s'", word, key, val);
        break;
    case IB__OPT_CHOICE: {
        int n = 0;
        while (n < IB__MODEL_MAX_CHOICES && opt->choices[n] && strcmp(opt->choices[n], val))
            n++;
        if (n < IB__MODEL_MAX_CHOICES && opt->choices[n]) {
            e->v[f].i = n;
            break;
        }
        char words[200] = "";
        size_t o = 0;
        for (int c = 0; c < IB__MODEL_MAX_CHOICES && opt->choices[c]; c++) {
            bool last = c + 1 == IB__MODEL_MAX_CHOICES || !opt->choices[c + 1];
            o += (size_t)snprintf(words + o, sizeof words - o, "%s%s", c == 0 ? "" : last ? " or " : ", ",
                                  opt->choices[c]);
            if (o >= sizeof words)
                break;
        }
        return perr(P, P->line, "%s: %s must be %s, not '%s'", word, key, words, val);
    }
    case IB__OPT_WIDTHS: {
        int64_t packed = 0, w = 0;
        int j = 0;
        for (const char *s = val;; j++) {
            const char *comma = strchr(s, ',');
            char num[16];
            size_t n = comma ? (size_t)(comma - s) : strlen(s);
            if (j >= IB__WIDTHS_MAX || n == 0 || n >= sizeof num)
                return perr(P, P->line, "%s: %s must be 1 to %d comma-separated widths in 1..%d, not '%s'", word, key,
                            IB__WIDTHS_MAX, IB__MODEL_MAX_WIDTH, val);
            memcpy(num, s, n);
            num[n] = 0;
            if (!parse_int(num, 1, IB__MODEL_MAX_WIDTH, &w))
                return perr(P, P->line, "%s: %s must be 1 to %d comma-separated widths in 1..%d, not '%s'", word, key,
                            IB__WIDTHS_MAX, IB__MODEL_MAX_WIDTH, val);
            packed |= w << (21 * j);
            if (!comma)
                break;
            s = comma + 1;
        }
        e->v[f].i = packed;
        break;
    }
    }
    return IB_OK;
}

/* ------------------------------------------------------------------ */
/* pass 1: lines -> layers                                             */

static ib__layer *push(parser *P)
{
    if (P->n >= IB__MODEL_MAX_ENTRIES) {
        P->err = perr(P, P->line, "too many layers (the limit is %d)", IB__MODEL_MAX_ENTRIES);
        return NULL;
    }
    if (P->n == P->cap) {
        int cap = P->cap ? P->cap * 2 : 64;
        ib__layer *e = realloc(P->e, (size_t)cap * sizeof *e);
        if (!e) {
            P->err = ib__error(IB_ERR_NOMEM, "model parser: out of memory");
            return NULL;
        }
        P->e = e;
        P->cap = cap;
    }
    ib__layer *e = &P->e[P->n++];
    memset(e, 0, sizeof *e);
    e->line = P->line;
    return e;
}

static ib_status layer_line(parser *P, const ib__layer_kind *ks, char **tok, int nt)
{
    ib__layer *e = push(P);
    if (!e)
        return P->err;
    e->mark = IB__LAYER;
    e->kind = ks;
    set_defaults(e);
    int npos = 0;
    unsigned seen = 0;
    bool name_seen = false;
    for (int t = 1; t < nt; t++) {
        char *eq = strchr(tok[t], '=');
        if (!eq) {
            if (!ks->arg)
                return perr(P, P->line, "%s: unexpected '%s' (it takes only key=value options)", ks->word, tok[t]);
            if (npos > 0)
                return perr(P, P->line, "%s: unexpected '%s' (it takes one %s, then key=value options)", ks->word,
                            tok[t], ks->arg);
            if (seen || name_seen)
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
        if (!strcmp(key, "name")) {
            if (name_seen)
                return perr(P, P->line, "%s: key '%s' given twice", ks->word, key);
            name_seen = true;
            if (!is_ident(val, false) || strlen(val) >= IB__MODEL_NAME_LEN)
                return perr(P, P->line, "%s: name must be letters, digits and '_' (at most %d), not '%s'", ks->word,
                            IB__MODEL_NAME_LEN - 1, val);
            snprintf(e->name, sizeof e->name, "%s", val);
            e->named = true;
            continue;
        }
        int f = 0;
        while (f < ib__model_n_opts && strcmp(ib__model_opts[f].key, key))
            f++;
        if (f == ib__model_n_opts || !(ks->opts & (1u << f))) {
            char keys[200];
            list_keys(ks->opts, true, keys, sizeof keys);
            return perr(P, P->line, "%s: unknown key '%s' (it takes: %s)", ks->word, key, keys);
        }
        if (seen & (1u << f))
            return perr(P, P->line, "%s: key '%s' given twice", ks->word, key);
        seen |= 1u << f;
        ib_status st = option_value(P, e, f, val);
        if (st)
            return st;
    }
    if (ks->arg && npos == 0)
        return perr(P, P->line, "%s: missing %s (write '%s %s ...')", ks->word, ks->arg, ks->word, ks->arg);
    unsigned missing = ks->required & ~seen;
    if (missing) {
        char keys[200];
        list_keys(missing, false, keys, sizeof keys);
        return perr(P, P->line, "%s: missing %s=", ks->word, keys);
    }
    char why[300];
    if (ks->finish && !ks->finish(e, seen, why, sizeof why))
        return perr(P, P->line, "%s", why);
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
        if (!is_ident(tok[1], true) || strlen(tok[1]) >= IB__MODEL_NAME_LEN)
            return perr(P, P->line, "model name must be letters, digits, '_', '-' and '.' (at most %d), not '%s'",
                        IB__MODEL_NAME_LEN - 1, tok[1]);
        snprintf(m->name, sizeof m->name, "%s", tok[1]);
    } else if (which == 1) {
        int64_t v[3];
        static const char *const what[3] = {"C", "H", "W"};
        static const int64_t hi[3] = {65536, IB__MODEL_MAX_SPATIAL, IB__MODEL_MAX_SPATIAL};
        for (int i = 0; i < 3; i++)
            if (!parse_int(tok[1 + i], 1, hi[i], &v[i]))
                return perr(P, P->line, "input: %s must be an integer in 1..%lld, not '%s'", what[i],
                            (long long)hi[i], tok[1 + i]);
        if (v[0] * v[1] * v[2] > IB__MODEL_MAX_ACT)
            return perr(P, P->line, "input: %lld x %lld x %lld is larger than the limit of %lld elements",
                        (long long)v[0], (long long)v[1], (long long)v[2], (long long)IB__MODEL_MAX_ACT);
        m->c = (int)v[0];
        m->h = (int)v[1];
        m->w = (int)v[2];
    } else {
        int64_t v;
        if (!parse_int(tok[1], 1, IB__MODEL_MAX_WIDTH, &v))
            return perr(P, P->line, "classes must be an integer in 1..%d, not '%s'", IB__MODEL_MAX_WIDTH, tok[1]);
        m->classes = (int)v;
    }
    P->hdr_line[which] = P->line;
    return IB_OK;
}

const char *const ib__model_init_styles[3] = {"pytorch", "glorot", "kaiming"};

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
        if (!strcmp(tok[1], ib__model_init_styles[i])) {
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
        ib__layer *e = push(P);
        if (!e)
            return P->err;
        e->mark = IB__GROUP_END;
        return IB_OK;
    }
    int len = P->n - f->start;
    if (len == 0)
        return perr(P, P->line, "empty repeat (opened at line %d)", f->line);
    if ((int64_t)P->n + (int64_t)len * (f->count - 1) > IB__MODEL_MAX_ENTRIES)
        return perr(P, f->line, "repeat %lld makes %lld layers, more than the limit of %d", (long long)f->count,
                    (long long)P->n + (int64_t)len * (f->count - 1), IB__MODEL_MAX_ENTRIES);
    for (int64_t r = 1; r < f->count; r++)
        for (int i = 0; i < len; i++) {
            ib__layer *e = push(P); /* may move P->e: index, never hold pointers */
            if (!e)
                return P->err;
            *e = P->e[f->start + i];
        }
    return IB_OK;
}

static ib_status parse_line(parser *P, char *s)
{
    char *tok[IB__MODEL_MAX_TOKENS];
    int nt = 0;
    for (char *c = s;;) {
        while (*c == ' ' || *c == '\t' || *c == '\r')
            c++;
        if (!*c || *c == '#')
            break;
        if (nt == IB__MODEL_MAX_TOKENS)
            return perr(P, P->line, "too many fields (the limit is %d)", IB__MODEL_MAX_TOKENS);
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
        if (P->depth == IB__MODEL_MAX_DEPTH)
            return perr(P, P->line, "repeat/group nested too deeply (the limit is %d levels)", IB__MODEL_MAX_DEPTH);
        struct frame *f = &P->stack[P->depth];
        f->repeat = rep;
        f->line = P->line;
        f->start = P->n;
        f->count = 1;
        if (rep) {
            if (!parse_int(tok[1], 1, IB__MODEL_MAX_REPEAT, &f->count))
                return perr(P, P->line, "repeat: N must be an integer in 1..%d, not '%s'", IB__MODEL_MAX_REPEAT, tok[1]);
        } else {
            if (!is_ident(tok[1], false) || strlen(tok[1]) >= IB__MODEL_NAME_LEN)
                return perr(P, P->line, "group: name must be letters, digits and '_' (at most %d), not '%s'",
                            IB__MODEL_NAME_LEN - 1, tok[1]);
            ib__layer *e = push(P);
            if (!e)
                return P->err;
            e->mark = IB__GROUP;
            e->named = true;
            snprintf(e->name, sizeof e->name, "%s", tok[1]);
        }
        P->depth++;
        return IB_OK;
    }
    const ib__layer_kind *kind = find_kind(w);
    if (!kind) {
        char words[300];
        size_t o = 0;
        words[0] = 0;
        for (int k = 0; k < ib__model_n_kinds && o < sizeof words; k++)
            o += (size_t)snprintf(words + o, sizeof words - o, "%s%s", k ? ", " : "", ib__model_kinds[k].word);
        return perr(P, P->line, "unknown layer '%s' (layers: %s; structure: repeat, group, end)", w, words);
    }
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
        char prefix[IB__MODEL_NAME_LEN];
        int next;
    } st[IB__MODEL_MAX_DEPTH + 1];
    int d = 0;
    st[0].prefix[0] = 0;
    st[0].next = 0;
    for (int i = 0; i < P->n; i++) {
        ib__layer *e = &P->e[i];
        if (e->mark == IB__GROUP_END) {
            d--;
            continue;
        }
        char own[24];
        snprintf(own, sizeof own, "%d", st[d].next++);
        const char *leaf = e->named ? e->name : own;
        int len = snprintf(e->full, sizeof e->full, "%s%s%s", st[d].prefix, st[d].prefix[0] ? "." : "", leaf);
        if (len >= IB__MODEL_NAME_LEN)
            return perr(P, e->line, "layer name '%s.%s' is longer than %d characters", st[d].prefix, leaf,
                        IB__MODEL_NAME_LEN - 1);
        if (e->mark == IB__GROUP) {
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
        if (P->e[i].mark != IB__GROUP_END)
            names[k++] = P->e[i].full;
    qsort(names, (size_t)k, sizeof *names, cmp_names);
    for (int i = 1; i < k; i++)
        if (!strcmp(names[i - 1], names[i])) {
            int a = -1, b = -1;
            for (int j = 0; j < P->n; j++)
                if (P->e[j].mark != IB__GROUP_END && !strcmp(P->e[j].full, names[i])) {
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

void ib__model_shape_str(const ib__shape *s, char *buf, size_t len)
{
    if (s->ndim == 1)
        snprintf(buf, len, "%lld features", (long long)s->d[0]);
    else
        snprintf(buf, len, "a %lldx%lldx%lld feature map", (long long)s->d[0], (long long)s->d[1], (long long)s->d[2]);
}

static ib_status infer(parser *P)
{
    ib_model *m = P->m;
    ib__shape x = {3, {m->c, m->h, m->w}};
    int64_t params = 0;
    int last = -1;
    m->n_st = 0;
    m->paths = 1;
    char sh[96], why[300];
    for (int i = 0; i < P->n; i++) {
        ib__layer *e = &P->e[i];
        if (e->mark != IB__LAYER)
            continue;
        const ib__layer_kind *ks = e->kind;
        e->in = x;
        ib__model_shape_str(&x, sh, sizeof sh);
        if (ks->input == IB__IN_MAP && x.ndim != 3)
            return perr(P, e->line, "%s needs a feature map (C, H, W) but gets %s", ks->word, sh);
        if (ks->input == IB__IN_FLAT && x.ndim != 1)
            return perr(P, e->line, "%s needs flat features but gets %s; add 'flatten' (or 'globalavgpool') before it",
                        ks->word, sh);
        if (ks->shape) {
            if (!ks->shape(e, why, sizeof why))
                return perr(P, e->line, "%s", why);
        } else {
            e->out = x;
        }
        x = e->out;
        ib__tensors t = {e->full, 0, -1, NULL, 0};
        if (ks->tensors)
            ks->tensors(e, &t);
        e->params = t.trainable;
        int64_t numel = x.ndim == 1 ? x.d[0] : x.d[0] * x.d[1] * x.d[2];
        if (numel > IB__MODEL_MAX_ACT)
            return perr(P, e->line, "%s: its output of %lld elements per example is over the limit of %lld", ks->word,
                        (long long)numel, (long long)IB__MODEL_MAX_ACT);
        /* Widths, channels and sizes are bounded (2^20, 2^28, 64^2), so a
         * layer's count stays below 2^60: no overflow. */
        params += e->params;
        if (e->params > IB__MODEL_MAX_PARAMS || params > IB__MODEL_MAX_PARAMS)
            return perr(P, e->line, "the model has more than %lld parameters, the limit",
                        (long long)IB__MODEL_MAX_PARAMS);
        if (last >= 0 && P->e[last].kind->last_only)
            return perr(P, e->line, "%s (line %d) must be the model's last layer: it gives the logits", P->e[last].kind->word,
                        P->e[last].line);
        if (ks->bottleneck) {
            if (m->n_bn == IB_MAX_BOTTLENECKS)
                return perr(P, e->line, "more than %d vib layers and cells", IB_MAX_BOTTLENECKS);
            m->bn[m->n_bn++] = i;
        }
        if (ks->stochastic) {
            if (m->n_st == IB_MAX_BOTTLENECKS)
                return perr(P, e->line, "more than %d stochastic layers (vib, vibcell, bernoulli)", IB_MAX_BOTTLENECKS);
            m->n_st++;
            /* particles multiply: each path is one sample of every layer */
            int64_t mp = ib__model_layer_particles(e);
            if (m->paths * mp > IB__MODEL_MAX_PATHS)
                return perr(P, e->line, "%s: %lld x %lld particle paths per example is over the limit of %lld",
                            ks->word, (long long)m->paths, (long long)mp, (long long)IB__MODEL_MAX_PATHS);
            m->paths *= mp;
        }
        last = i;
    }
    if (last < 0)
        return perr(P, P->line, "the model has no layers");
    ib__layer *e = &P->e[last];
    if (x.ndim != 1 || x.d[0] != m->classes) {
        ib__model_shape_str(&x, sh, sizeof sh);
        return perr(P, e->line, "the last layer outputs %s, but 'classes %d' (line %d) asks for %d logits", sh,
                    m->classes, P->hdr_line[2], m->classes);
    }
    m->params = params;
    return IB_OK;
}

/* ------------------------------------------------------------------ */

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
    size_t total = strnlen(text, (size_t)IB__MODEL_MAX_TEXT + 1);
    if (total > IB__MODEL_MAX_TEXT)
        return ib__error(IB_ERR_FORMAT, "%s: the description is longer than %d bytes", P.src, IB__MODEL_MAX_TEXT);
    ib_model *m = calloc(1, sizeof *m);
    if (!m)
        return ib__error(IB_ERR_NOMEM, "ib_model_parse: out of memory");
    P.m = m;
    ib_status st = IB_OK;
    char line[IB__MODEL_MAX_LINE + 2];
    const char *s = text;
    while (*s && st == IB_OK) {
        P.line++;
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (len > IB__MODEL_MAX_LINE) {
            st = perr(&P, P.line, "line longer than %d characters", IB__MODEL_MAX_LINE);
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
        m->text = ib__model_canonical(m, NULL, NULL);
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
        char src[IB__MODEL_NAME_LEN + 16];
        snprintf(src, sizeof src, "built-in %s", name_or_path);
        return ib_model_parse(text, src, out);
    }
    FILE *f = fopen(name_or_path, "rb");
    if (!f)
        return ib__error(IB_ERR_IO, "cannot open model description '%s': %s", name_or_path, strerror(errno));
    char *buf = malloc((size_t)IB__MODEL_MAX_TEXT + 2);
    if (!buf) {
        fclose(f);
        return ib__error(IB_ERR_NOMEM, "ib_model_load: out of memory");
    }
    size_t n = fread(buf, 1, (size_t)IB__MODEL_MAX_TEXT + 1, f);
    bool err = ferror(f);
    fclose(f);
    ib_status st;
    if (err)
        st = ib__error(IB_ERR_IO, "cannot read model description '%s'", name_or_path);
    else if (n > IB__MODEL_MAX_TEXT)
        st = ib__error(IB_ERR_FORMAT, "%s: the description is longer than %d bytes", name_or_path, IB__MODEL_MAX_TEXT);
    else if (memchr(buf, 0, n))
        st = ib__error(IB_ERR_FORMAT, "%s: contains a NUL byte (not a text file)", name_or_path);
    else {
        buf[n] = 0;
        st = ib_model_parse(buf, name_or_path, out);
    }
    free(buf);
    return st;
}
