/*
 * args.c — strict, table-driven option parsing for the subcommands.
 */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static arg_spec *find(arg_parser *p, const char *name, size_t len)
{
    for (int i = 0; i < p->n_specs; i++)
        if (strlen(p->specs[i].name) == len && strncmp(p->specs[i].name, name, len) == 0)
            return &p->specs[i];
    return NULL;
}

static bool in_choices(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && strncmp(c, v, n) == 0)
            return true;
        if (!bar)
            break;
        c = bar + 1;
    }
    return false;
}

static int set_value(arg_parser *p, arg_spec *s, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (s->kind) {
    case ARG_INT: {
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            fprintf(stderr, "ibnet %s: %s expects an integer, got '%s'\n", p->command, s->name, v);
            return 2;
        }
        *(int64_t *)s->target = x;
        break;
    }
    case ARG_FLOAT: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(x)) {
            fprintf(stderr, "ibnet %s: %s expects a finite number, got '%s'\n", p->command, s->name, v);
            return 2;
        }
        *(double *)s->target = x;
        break;
    }
    case ARG_STRING:
        if (s->choices && !in_choices(s->choices, v)) {
            fprintf(stderr, "ibnet %s: %s must be one of %s, got '%s'\n", p->command, s->name, s->choices, v);
            return 2;
        }
        *(const char **)s->target = v;
        break;
    case ARG_FLAG:
        break;
    }
    return 0;
}

int args_parse(arg_parser *p, int argc, char **argv, char **pos, int *n_pos)
{
    *n_pos = 0;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_positional && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            args_help(p, stdout);
            return 1;
        }
        if (!only_positional && strcmp(a, "--") == 0) {
            only_positional = true;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            arg_spec *s = find(p, a, len);
            if (!s) {
                fprintf(stderr, "ibnet %s: unknown option '%.*s' (see 'ibnet %s --help')\n", p->command, (int)len, a,
                        p->command);
                return 2;
            }
            s->seen = true;
            if (s->kind == ARG_FLAG) {
                if (eq) {
                    fprintf(stderr, "ibnet %s: %s takes no value\n", p->command, s->name);
                    return 2;
                }
                *(bool *)s->target = true;
                continue;
            }
            const char *v = eq ? eq + 1 : NULL;
            if (!v) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "ibnet %s: %s needs a value (%s)\n", p->command, s->name,
                            s->metavar ? s->metavar : "VALUE");
                    return 2;
                }
                v = argv[++i];
            }
            int rc = set_value(p, s, v);
            if (rc)
                return rc;
            continue;
        }
        if (!only_positional && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            fprintf(stderr, "ibnet %s: unknown option '%s' (options are spelt --name)\n", p->command, a);
            return 2;
        }
        if (*n_pos >= p->max_positional) {
            fprintf(stderr, "ibnet %s: unexpected argument '%s'\n", p->command, a);
            return 2;
        }
        pos[(*n_pos)++] = argv[i];
    }
    if (*n_pos < p->min_positional) {
        fprintf(stderr, "ibnet %s: missing %s (usage: %s)\n", p->command,
                p->positional_name ? p->positional_name : "argument", p->usage);
        return 2;
    }
    return 0;
}

bool args_seen(const arg_parser *p, const char *name)
{
    for (int i = 0; i < p->n_specs; i++)
        if (strcmp(p->specs[i].name, name) == 0)
            return p->specs[i].seen;
    return false;
}

void args_help(const arg_parser *p, FILE *f)
{
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", p->usage, p->summary ? p->summary : "");
    for (int i = 0; i < p->n_specs; i++) {
        const arg_spec *s = &p->specs[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", s->name, s->kind == ARG_FLAG ? "" : " ",
                 s->kind == ARG_FLAG ? "" : (s->metavar ? s->metavar : "VALUE"));
        fprintf(f, "  %-26s %s", left, s->help);
        if (s->choices)
            fprintf(f, " {%s}", s->choices);
        /* a help line that says "(default: ...)" names its own default */
        switch (strstr(s->help, "(default:") ? ARG_FLAG : s->kind) {
        case ARG_INT: fprintf(f, " [%lld]", (long long)*(int64_t *)s->target); break;
        case ARG_FLOAT: fprintf(f, " [%g]", *(double *)s->target); break;
        case ARG_STRING:
            if (*(const char **)s->target)
                fprintf(f, " [%s]", *(const char **)s->target);
            break;
        case ARG_FLAG: break;
        }
        fputc('\n', f);
    }
    fprintf(f, "  %-26s %s\n", "--help", "show this help");
}
