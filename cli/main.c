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

static const ib_cli_command commands[] = {
    {"train", ib_cmd_train, "train a network (default: Deep VIB on MNIST)"},
    {"eval", ib_cmd_eval, "evaluate a checkpoint (1-sample, S-sample, mean path; confusion matrix)"},
    {"predict", ib_cmd_predict, "classify PNG images with a trained network"},
    {"data", ib_cmd_data, "describe or verify a data set (counts, label histogram, checksums)"},
    {"attack", ib_cmd_attack, "adversarial robustness of a checkpoint: FGSM, PGD, Carlini-Wagner L2 (fair to stochastic nets)"},
    {"robustness", ib_cmd_robustness, "common-corruption benchmark of a checkpoint: errors per corruption and severity, mCE against a baseline"},
    {"corrupt", ib_cmd_corrupt, "write corrupted copies of a test set (CIFAR-10-C style) and a PNG grid"},
    {"models", ib_cmd_models, "list the built-in models, or print one's description"},
    {"info", ib_cmd_info, "mutual information of a checkpoint's layers: I(X;T) and I(T;Y) per layer"},
    {"mi", ib_cmd_mi, "mutual information between two arrays (.npy, .npz, CSV): binning, KDE, InfoNCE, NWJ, MINE"},
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
               "Environment: IBNET_THREADS (threads), IBNET_DATA (data directory).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("ibnet %s\n", ib_version());
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "ibnet: unknown command '%s' (see 'ibnet --help')\n", cmd);
    return 2;
}
