/*
 * model_text.c — model -> text: the canonical text of a model (what a
 * checkpoint records, and what ib_model_add_cells reparses) and the
 * human-readable layer table of ib_model_summary.
 *
 * Both are written from the layer-kind table alone (model_kinds.c): a
 * layer is its word, its positional argument and every option it takes in
 * the table's order, so a new kind needs nothing here.
 */
#include "model_internal.h"

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

static char *sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    return b->s;
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

bool ib__model_option_text(const ib__layer *e, int f, char *buf, size_t len)
{
    const ib__model_opt *opt = &ib__model_opts[f];
    bool at_default = opt->type == IB__OPT_FLOAT ? e->v[f].f == (float)opt->def : e->v[f].i == (int64_t)opt->def;
    if (opt->omit_default && at_default)
        return false;
    switch (opt->type) {
    case IB__OPT_INT: snprintf(buf, len, "%lld", (long long)e->v[f].i); break;
    case IB__OPT_BOOL: snprintf(buf, len, "%s", e->v[f].i ? "true" : "false"); break;
    case IB__OPT_CHOICE: snprintf(buf, len, "%s", opt->choices[e->v[f].i]); break;
    case IB__OPT_FLOAT: fmt_float(e->v[f].f, buf, len); break;
    case IB__OPT_WIDTHS: {
        size_t o = 0;
        for (int j = 0; j < IB__WIDTHS_MAX && IB__WIDTH(e->v[f].i, j) && o < len; j++)
            o += (size_t)snprintf(buf + o, len - o, "%s%lld", j ? "," : "", (long long)IB__WIDTH(e->v[f].i, j));
        break;
    }
    }
    return true;
}

char *ib__model_canonical(const ib_model *m, const char *name, const int *cell)
{
    sbuf b = {0};
    sb_printf(&b, "model %s\ninput %d %d %d\nclasses %d\n", name ? name : m->name, m->c, m->h, m->w, m->classes);
    if (m->init_style != IB_INIT_STYLE_PYTORCH)
        sb_printf(&b, "init %s\n", ib__model_init_styles[m->init_style]);
    int depth = 0;
    for (int i = 0; i < m->n; i++) {
        const ib__layer *e = &m->e[i];
        if (e->mark == IB__GROUP_END)
            depth--;
        for (int k = 0; k < depth; k++)
            sb_printf(&b, "  ");
        if (e->mark == IB__GROUP) {
            sb_printf(&b, "group %s\n", e->name);
            depth++;
            continue;
        }
        if (e->mark == IB__GROUP_END) {
            sb_printf(&b, "end\n");
        } else {
            const ib__layer_kind *ks = e->kind;
            sb_printf(&b, "%s", ks->word);
            if (ks->arg)
                sb_printf(&b, " %lld", (long long)e->n);
            char value[48];
            for (int f = 0; f < ib__model_n_opts; f++)
                if ((ks->opts & (1u << f)) && ib__model_option_text(e, f, value, sizeof value))
                    sb_printf(&b, " %s=%s", ib__model_opts[f].key, value);
            if (e->named)
                sb_printf(&b, " name=%s", e->name);
            sb_printf(&b, "\n");
        }
        if (cell && cell[i] > 0) {
            for (int k = 0; k < depth; k++)
                sb_printf(&b, "  ");
            sb_printf(&b, "vibcell name=cell%d\n", cell[i]);
        }
    }
    return sb_take(&b);
}

ib_status ib_model_set_init_style(ib_model *m, ib_init_style style)
{
    if (!m)
        return ib__error(IB_ERR_ARG, "ib_model_set_init_style: model is NULL");
    if (style < IB_INIT_STYLE_PYTORCH || style > IB_INIT_STYLE_KAIMING)
        return ib__error(IB_ERR_ARG, "ib_model_set_init_style: unknown style %d", (int)style);
    int before = m->init_style;
    m->init_style = (int)style;
    char *text = ib__model_canonical(m, NULL, NULL);
    if (!text) {
        m->init_style = before;
        return ib__error(IB_ERR_NOMEM, "ib_model_set_init_style: out of memory");
    }
    free(m->text);
    m->text = text;
    return IB_OK;
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
    if (m->paths > 1) {
        /* particles multiply: say what a batch costs before anyone runs one */
        with_commas(m->paths, num, sizeof num);
        sb_printf(&b, "particles: %s paths per example (", num);
        bool first = true;
        for (int i = 0; i < m->n; i++)
            if (m->e[i].mark == IB__LAYER && m->e[i].kind->stochastic) {
                sb_printf(&b, "%s%lld", first ? "" : " x ", (long long)ib__model_layer_particles(&m->e[i]));
                first = false;
            }
        sb_printf(&b, "): a batch of N examples runs N x %s rows after the last stochastic layer\n", num);
    }
    sb_printf(&b, "%-32s %-13s %-14s %12s\n", "layer", "kind", "output", "parameters");
    for (int i = 0; i < m->n; i++) {
        const ib__layer *e = &m->e[i];
        if (e->mark == IB__GROUP_END)
            continue;
        if (e->mark == IB__GROUP) {
            sb_printf(&b, "%-32s group\n", e->full);
            continue;
        }
        if (e->out.ndim == 1)
            snprintf(sh, sizeof sh, "%lld", (long long)e->out.d[0]);
        else
            snprintf(sh, sizeof sh, "%lldx%lldx%lld", (long long)e->out.d[0], (long long)e->out.d[1],
                     (long long)e->out.d[2]);
        with_commas(e->params, num, sizeof num);
        if (ib__model_layer_particles(e) > 1) /* "512 x32": 32 samples per incoming row */
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), " x%lld", (long long)ib__model_layer_particles(e));
        sb_printf(&b, "%-32s %-13s %-14s %12s\n", e->full, e->kind->word, sh, num);
    }
    return sb_take(&b);
}
