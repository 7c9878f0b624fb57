/*
 * main.c — the `ibnet` command: a table of subcommands, each in its own
 * file (cli/cmd_*.c).  Errors a user can make exit with 2, runtime
 * failures with 1.
 */
#include "commands.h"
#include "ibnet.h"

#include <stdio.h>
#include <string.h>

int ib_cmd_train(int argc, char **argv);
int ib_cmd_models(int argc, char **argv);
int ib_cmd_eval(int argc, char **argv);
int ib_cmd_data(int argc, char **argv);
int ib_cmd_corrupt(int argc, char **argv);
int ib_cmd_predict(int argc, char **argv);
int ib_cmd_sweep(int argc, char **argv);

static const ib_cli_command commands[] = {
    {"train", ib_cmd_train, "train a network (default: Deep VIB on MNIST)"},
    {"eval", ib_cmd_eval, "evaluate a checkpoint (1-sample, S-sample, mean path; confusion matrix)"},
    {"predict", ib_cmd_predict, "classify PNG images with a trained network"},
    {"data", ib_cmd_data, "describe or verify a data set (counts, label histogram, checksums)"},
    {"attack", ib_cmd_attack, "adversarial robustness of a checkpoint: FGSM, PGD, Carlini-Wagner L2 (fair to stochastic nets)"},
    {"robustness", ib_cmd_robustness, "common-corruption benchmark of a checkpoint: errors per corruption and severity, mCE against a baseline"},
    {"corrupt", ib_cmd_corrupt, "write corrupted copies of a test set (CIFAR-10-C style) and a PNG grid"},
    {"sweep", ib_cmd_sweep, "a grid of training runs (serial, or over MPI ranks); resumable; a results table"},
    {"models", ib_cmd_models, "list the built-in models, or print one's description"},
    {"info", ib_cmd_info, "mutual information of a checkpoint's layers: I(X;T) and I(T;Y) per layer"},
    {"mi", ib_cmd_mi, "mutual information between two arrays (.npy, .npz, CSV): binning, KDE, InfoNCE, NWJ, MINE"},
    {"plot", ib_cmd_plot, "charts of runs as PNG/SVG: the information plane, training curves, a sweep"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ibnet [--version] [--help] <command> [options]\n"
            "\n"
            "ibnet %s: information-bottleneck deep learning (Deep VIB, cellVIB, VUB).\n"
            "\n"
            "commands:\n",
            ib_version());
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'ibnet <command> --help' for the options of a command.\n"
               "Environment: IBNET_THREADS (threads), IBNET_DATA (data directory), IBNET_WAIT (auto|active|passive:\n"
               "how idle threads wait; auto waits passively when other work shares the cores), IBNET_CAIRO_LIBRARY\n"
               "(the cairo library charts load; libcairo.so.2).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* before any work: may run the program again with OMP_WAIT_POLICY set */
    int rc_wait = ib_cli_wait_policy(argc, argv);
    if (rc_wait != 0)
        return rc_wait;
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("ibnet %s\n", ib_version());
        printf("OpenMP waiting: %s\n", ib_cli_wait_policy_text());
        const char *mpi = ib_dist_library();
        if (mpi)
            printf("MPI: %s (data-parallel train and sweeps under mpirun/srun)\n", mpi);
        else
            printf("MPI: no (built without IBNET_MPI; mpirun with more than one rank is refused)\n");
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            /* under mpirun/srun: join the job (a plain start stays one process) */
            if (ib_dist_init(&argc, &argv) != IB_OK) {
                fprintf(stderr, "ibnet %s: %s\n", cmd, ib_last_error());
                return 2;
            }
            int rc = commands[i].run(argc - 2, argv + 2);
            /* a failure on one rank must not leave the others waiting in a
             * collective: it ends the job, naming the rank */
            if ((rc == 1 || rc == 2) && ib_dist_size() > 1 && strcmp(cmd, "sweep") != 0) { /* a sweep's ranks end together */
                fprintf(stderr, "ibnet %s: rank %d of %d failed (exit %d); ending the job\n", cmd, ib_dist_rank(),
                        ib_dist_size(), rc);
                ib_dist_abort(rc);
            }
            ib_dist_finalize();
            return rc;
        }
    fprintf(stderr, "ibnet: unknown command '%s' (see 'ibnet --help')\n", cmd);
    return 2;
}
