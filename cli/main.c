/*
 * main.c — the `ibnet` command: a table of subcommands, each in its own
 * file (cli/cmd_*.c).  Errors a user can make exit with 2, runtime
 * failures with 1.
 */
#include "ibnet.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ibnet [--version] [--help] <command> [options]\n"
               "\n"
               "ibnet %s: information-bottleneck deep learning.\n"
               "Run 'ibnet <command> --help' for the options of a command.\n",
            ib_version());
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("ibnet %s\n", ib_version());
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "ibnet: unknown command '%s' (see 'ibnet --help')\n", argv[1]);
    return 2;
}
