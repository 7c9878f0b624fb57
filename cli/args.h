/*
 * args.h — the command line parser shared by every subcommand: a table of
 * typed options, strict parsing (an unknown flag, a missing value or a
 * malformed number is one clear error, exit code 2), and --help generated
 * from the same table so it cannot drift from what is parsed.
 */
#ifndef IB_CLI_ARGS_H
#define IB_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum arg_kind { ARG_FLAG, ARG_INT, ARG_FLOAT, ARG_STRING } arg_kind;

typedef struct arg_spec {
    const char *name;    /* "--epochs" */
    arg_kind kind;
    void *target;        /* bool*, int64_t*, double*, const char** */
    const char *metavar; /* "N" */
    const char *help;    /* one line; the default is appended from the target
                            unless the line says "(default: ...)" itself */
    const char *choices; /* for strings: "a|b|c" or NULL */
    bool seen;           /* set by the parser */
} arg_spec;

typedef struct arg_parser {
    const char *command;  /* "train" */
    const char *usage;    /* "ibnet train [options]" */
    const char *summary;  /* a paragraph shown by --help */
    arg_spec *specs;
    int n_specs;
    int min_positional, max_positional;
    const char *positional_name; /* "CHECKPOINT" */
} arg_parser;

/* Returns 0 on success (positionals in pos[], count in *n_pos), 1 if --help
 * was printed (the caller exits 0), 2 on a user error (message printed). */
int args_parse(arg_parser *p, int argc, char **argv, char **pos, int *n_pos);
void args_help(const arg_parser *p, FILE *f);
/* Whether an option was given on the command line. */
bool args_seen(const arg_parser *p, const char *name);

#endif
