/*
 * robustness_cells.h — the cells of `ibnet robustness` and how they are
 * written to and read back from DIR/robustness.json (the resume).  Apart
 * from cmd_robustness.c so that fuzz/fuzz_robustness.c can feed the reader
 * arbitrary bytes.
 */
#ifndef IB_CLI_ROBUSTNESS_CELLS_H
#define IB_CLI_ROBUSTNESS_CELLS_H

#include "ibnet.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MAX_SEV = 5, WHO = 2 };

/* One evaluation: who (0 model, 1 baseline), corruption (-1 clean), severity (0 clean). */
typedef struct cell {
    bool done;
    double err_avg, err_1shot, err_mean, nll_avg, nll_mean, ece, brier, entropy, ece_mean;
    int64_t n;
} cell;

typedef struct bench {
    int n_types, types[IB_CORRUPT_COUNT];
    int n_sev, sev[MAX_SEV];
    cell clean[WHO];
    cell c[WHO][IB_CORRUPT_COUNT][MAX_SEV]; /* [who][type index][severity index] */
} bench;

/* A finished cell as a JSON object of the "cells" array. */
cJSON *ib_cli_cell_json(int who, const char *corr, int sev, const cell *c);

/* The saved cells of a robustness.json text (len bytes, path for the
 * messages) whose settings equal `settings`, into b's cells of its types
 * and severities (cells of a wider run are left out).  A cell whose
 * figures are not all in range (a damaged or edited file) is not reused:
 * it is evaluated again.  0: read, 2: not a robustness file of ibnet, or
 * one of other settings (message printed).  *loaded: the cells reused. */
int ib_cli_cells_parse(const char *text, size_t len, const char *path, const cJSON *settings, bench *b, int *loaded);

/* ib_cli_cells_parse of the file at path; no file is 0 with nothing loaded. */
int ib_cli_cells_load(const char *path, const cJSON *settings, bench *b, int *loaded);

#endif /* IB_CLI_ROBUSTNESS_CELLS_H */
