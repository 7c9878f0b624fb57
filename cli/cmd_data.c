/*
 * cmd_data.c — `ibnet data info|verify|list`: what a data set holds
 * (counts, shape, label histogram, channel statistics) and whether its
 * files are the original ones (sizes, counts, sha256 of the decompressed
 * content).  A person checks their data here before spending hours on a
 * run, so a damaged file is reported by name.
 */
#include "args.h"
#include "ibnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void print_info(const ib_dataset *d, const char *split)
{
    printf("%s %s: %lld images, %dx%dx%d (CxHxW), %d classes%s\n", d->name, split, (long long)d->n, d->c, d->h, d->w,
           d->classes, d->clean_labels ? " (noisy labels)" : "");
    int64_t *h = calloc((size_t)(d->classes > 0 ? d->classes : 1), sizeof *h);
    if (h) {
        ib_dataset_histogram(d, h);
        for (int k = 0; k < d->classes; k++)
            printf("  %3d %-14s %8lld  %5.2f%%\n", k, d->class_names ? d->class_names[k] : "", (long long)h[k],
                   d->n ? 100.0 * (double)h[k] / (double)d->n : 0.0);
        free(h);
    }
    double mean[64], sd[64];
    if (d->c <= 64 && d->n > 0) {
        ib_dataset_channel_stats(d, mean, sd);
        printf("  pixel/255 per channel: mean");
        for (int c = 0; c < d->c; c++)
            printf(" %.4f", mean[c]);
        printf(", std");
        for (int c = 0; c < d->c; c++)
            printf(" %.4f", sd[c]);
        printf("\n");
    }
}

int ib_cmd_data(int argc, char **argv)
{
    const char *data_dir = NULL, *split = "both";
    bool no_hash = false;
    arg_spec specs[] = {
        {"--data", ARG_STRING, &data_dir, "DIR", "where to look first (else IBNET_DATA, ./data, ../shared/data)", NULL,
         false},
        {"--split", ARG_STRING, &split, "SPLIT", "which split", "train|test|both", false},
        {"--no-hash", ARG_FLAG, &no_hash, NULL, "verify: check sizes and counts only, not the sha256", NULL, false},
    };
    arg_parser p = {"data", "ibnet data info|verify|list [NAME] [options]",
                    "info NAME: counts, label histogram and channel statistics of a data set (NAME: a known set, "
                    "idx:DIR or folder:ROOT).\n"
                    "verify NAME: check a known set's files (sizes, magic numbers, counts, sha256 of the "
                    "decompressed content).\n"
                    "list: the known data sets and where each was found.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 1, 2, "ACTION NAME"};
    char *pos[2];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    const char *action = pos[0];
    if (strcmp(action, "list") == 0) {
        for (int i = 0; ib_dataset_known(i); i++) {
            char dir[4096];
            bool found = ib_dataset_find_dir(ib_dataset_known(i), data_dir, dir, sizeof dir) == IB_OK;
            printf("%-14s %s\n", ib_dataset_known(i), found ? dir : "(not found)");
        }
        return 0;
    }
    bool info = strcmp(action, "info") == 0;
    if (!info && strcmp(action, "verify") != 0) {
        fprintf(stderr, "ibnet data: unknown action '%s' (info, verify or list)\n", action);
        return 2;
    }
    if (n_pos < 2) {
        fprintf(stderr, "ibnet data %s: which data set? (e.g. 'ibnet data %s mnist')\n", action, action);
        return 2;
    }
    const char *name = pos[1];
    const char *splits[2] = {"train", "test"};
    int first = strcmp(split, "test") == 0 ? 1 : 0, last = strcmp(split, "train") == 0 ? 0 : 1;
    if (!info) {
        bool known = false;
        for (int i = 0; ib_dataset_known(i); i++)
            known |= strcmp(ib_dataset_known(i), name) == 0;
        if (!known) {
            fprintf(stderr, "ibnet data verify: '%s' is not a known data set (run 'ibnet data list')\n", name);
            return 2;
        }
        char dir[4096];
        if (ib_dataset_find_dir(name, data_dir, dir, sizeof dir) != IB_OK) {
            fprintf(stderr, "ibnet data verify: %s\n", ib_last_error());
            return 1;
        }
        printf("%s: %s\n", name, dir);
    }
    ib_load_options opt = {.skip_hash = info || no_hash};
    int failures = 0;
    for (int s = first; s <= last; s++) {
        ib_dataset *d = NULL;
        double t0 = ib_seconds();
        ib_status st = ib_dataset_open(name, splits[s], data_dir, &opt, &d);
        if (st != IB_OK) {
            fprintf(stderr, "ibnet data %s: %s %s: %s\n", action, name, splits[s], ib_last_error());
            if (st == IB_ERR_ARG)
                return 2;
            failures++;
            continue;
        }
        if (info) {
            print_info(d, splits[s]);
        } else {
            int64_t h[256] = {0};
            printf("  %-5s ok: %lld images, %d classes, %s verified (%.1f s)\n", splits[s], (long long)d->n, d->classes,
                   no_hash ? "sizes and counts" : "sizes, counts and sha256", ib_seconds() - t0);
            if (d->classes <= 256) {
                ib_dataset_histogram(d, h);
                printf("        labels:");
                for (int k = 0; k < d->classes; k++)
                    printf(" %lld", (long long)h[k]);
                printf("\n");
            }
        }
        ib_dataset_free(d);
    }
    if (!info)
        printf("%s: %s\n", name, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
