/*
 * cmd_models.c — `ibnet models [NAME]`: list the built-in models with
 * their parameter counts, or print one's description (a starting point
 * for a model of your own), or with --layers the table of its layers (the
 * names --vib-cells-after takes), cells added when that flag is given.
 */
#include "args.h"
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>

int ib_cmd_models(int argc, char **argv)
{
    bool layers = false;
    const char *cells_after = NULL;
    arg_spec specs[] = {
        {"--layers", ARG_FLAG, &layers, NULL, "print the model's layers: full names, kinds, output shapes, parameters", NULL, 0},
        {"--vib-cells-after", ARG_STRING, &cells_after, "L1,L2,..", "with --layers: add VIB cells as 'ibnet train' does", NULL, 0},
    };
    arg_parser p = {"models", "ibnet models [--layers [--vib-cells-after L1,..]] [NAME|FILE]",
                    "List the built-in models, or print the description of one (see docs/model-format.md), or with "
                    "--layers the table of its layers.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 0, 1, "NAME|FILE"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if ((layers || cells_after) && n_pos == 0) {
        fprintf(stderr, "ibnet models: --layers and --vib-cells-after need a model NAME or FILE\n");
        return 2;
    }
    if (cells_after && !layers) {
        fprintf(stderr, "ibnet models: --vib-cells-after goes with --layers\n");
        return 2;
    }
    if (layers) {
        ib_model *m = NULL, *with_cells = NULL;
        ib_status s = ib_model_load(pos[0], &m);
        if (s == IB_OK && cells_after) {
            s = ib_model_add_cells(m, cells_after, &with_cells);
            ib_model_free(m);
            m = with_cells;
        }
        char *table = s == IB_OK ? ib_model_summary(m) : NULL;
        ib_model_free(m);
        if (!table) {
            fprintf(stderr, "ibnet models: %s\n", s == IB_OK ? "out of memory" : ib_last_error());
            return 2;
        }
        fputs(table, stdout);
        free(table);
        return 0;
    }
    if (n_pos == 1) {
        const char *text = ib_model_builtin_text(pos[0]);
        if (!text) {
            fprintf(stderr, "ibnet models: unknown model '%s' (run 'ibnet models' for the list)\n", pos[0]);
            return 2;
        }
        fputs(text, stdout);
        return 0;
    }
    printf("%-20s %6s %12s  %s\n", "model", "input", "parameters", "bottlenecks");
    for (int i = 0; i < ib_model_builtin_count(); i++) {
        ib_model *m = NULL;
        if (ib_model_load(ib_model_builtin_name(i), &m) != IB_OK) {
            fprintf(stderr, "ibnet models: built-in '%s' does not parse: %s\n", ib_model_builtin_name(i),
                    ib_last_error());
            return 1;
        }
        int c, h, w;
        ib_model_input_shape(m, &c, &h, &w);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", c, h, w);
        printf("%-20s %6s %12lld  %d\n", ib_model_name(m), shape, (long long)ib_model_param_count(m),
               ib_model_bottleneck_count(m));
        ib_model_free(m);
    }
    return 0;
}
