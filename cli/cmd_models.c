/*
 * cmd_models.c — `ibnet models [NAME]`: list the built-in models with
 * their parameter counts, or print one's description (a starting point
 * for a model of your own).
 */
#include "args.h"
#include "ibnet.h"

#include <stdio.h>

int ib_cmd_models(int argc, char **argv)
{
    arg_parser p = {"models", "ibnet models [NAME]",
                    "List the built-in models, or print the description of one (see docs/model-format.md).", NULL, 0,
                    0, 1, "NAME"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
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
