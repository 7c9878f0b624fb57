/*
 * commands.h — the subcommands of `ibnet`.  Each lives in cli/cmd_<name>.c,
 * takes the arguments after its name and returns the exit code:
 * 0 success, 1 runtime failure, 2 user error.
 */
#ifndef IB_CLI_COMMANDS_H
#define IB_CLI_COMMANDS_H

typedef struct ib_cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} ib_cli_command;

/* Subcommands declared here rather than in main.c (cmd_mi.c, cmd_info.c, cmd_attack.c, cmd_robustness.c). */
int ib_cmd_mi(int argc, char **argv);
int ib_cmd_info(int argc, char **argv);
int ib_cmd_attack(int argc, char **argv);
int ib_cmd_plot(int argc, char **argv);
int ib_cmd_robustness(int argc, char **argv);

/* How OpenMP threads wait (cli/wait_policy.c): may re-run the program with
 * OMP_WAIT_POLICY=PASSIVE when other work shares the cores; returns 0 to go
 * on, 2 for a bad IBNET_WAIT.  The text says what was chosen and why. */
int ib_cli_wait_policy(int argc, char **argv);
const char *ib_cli_wait_policy_text(void);

/* One estimate as text: the value, what it is, n, then its settings
 * (cli/cmd_mi.c; `ibnet mi` and `ibnet info` print the same way). */
struct ib_mi_result;
void ib_cli_mi_print(const struct ib_mi_result *r);

/* `ibnet info --estimator decoder` on the activations a of net over d
 * (cli/info_decoder.c); grid_prefix: PNG grids of samples per layer, or NULL. */
struct ib_net;
struct ib_dataset;
struct ib_activations;
struct ib_mi_options;
int ib_cli_info_decoder(struct ib_net *net, const struct ib_dataset *d, const struct ib_activations *a,
                        const struct ib_mi_options *o, const char *grid_prefix, _Bool json);

/* The plot at the end of `ibnet sweep` (cli/sweep_plot.c): points (x,
 * y) of the finished runs, each in one series (a line, named
 * series_names[series]), written to path (PNG).  Without cairo it prints
 * that there is no plot and returns 0; 1 when the file cannot be written.
 * Sorts p. */
typedef struct ib_cli_sweep_point {
    double x, y;
    int series;
} ib_cli_sweep_point;
int ib_cli_sweep_plot(const char *path, const char *x_key, const char *y_key, ib_cli_sweep_point *p, int n,
                      char *const *series_names, int n_series);

#endif
