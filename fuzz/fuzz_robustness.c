/*
 * fuzz_robustness.c — libFuzzer target for the reader of robustness.json
 * (cli/robustness_cells.c: how `ibnet robustness --out DIR` resumes):
 * arbitrary bytes give 0 (cells reused, or none) or 2 (not a robustness
 * file, other settings), never a crash, a leak or undefined behaviour (a
 * severity or count of NaN or 1e300 is not cast).  Every reused cell has
 * its figures in range; written back as ibnet writes them and read again,
 * the reused cells are the same (to cJSON's 15 printed digits) and the
 * written text is a fixed point.
 * The settings the input must match are fixed here (those of the seeds in
 * fuzz/corpus/robustness/); every corruption at severities 1-5.
 */
#include "../cli/robustness_cells.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const settings_text =
    "{\"checkpoint\":\"run/last.safetensors\",\"baseline\":null,\"dataset\":\"mnist\",\"n\":500,\"samples\":12,"
    "\"baseline_samples\":0,\"corruption_seed\":1,\"sample_seed\":-1,\"no_ema\":false}";

static void bench_init(bench *b)
{
    memset(b, 0, sizeof *b);
    b->n_types = IB_CORRUPT_COUNT;
    for (int i = 0; i < IB_CORRUPT_COUNT; i++)
        b->types[i] = i;
    b->n_sev = MAX_SEV;
    for (int j = 0; j < MAX_SEV; j++)
        b->sev[j] = j + 1;
}

static bool in(double v, double lo, double hi) { return v >= lo && v <= hi; }

static void check_cell(const cell *c)
{
    if (!c->done)
        return;
    REQUIRE(c->n >= 1);
    REQUIRE(in(c->err_avg, 0, 1) && in(c->err_1shot, 0, 1) && in(c->err_mean, 0, 1));
    REQUIRE(in(c->ece, 0, 1) && in(c->ece_mean, 0, 1) && in(c->brier, 0, 2));
    REQUIRE(isfinite(c->nll_avg) && c->nll_avg >= 0 && isfinite(c->nll_mean) && c->nll_mean >= 0);
    REQUIRE(isfinite(c->entropy) && c->entropy >= 0);
}

/* cJSON writes a double with 15 significant digits when they read back
 * within its epsilon (else 17): equal to a few units in the last place. */
static bool close_to(double a, double b) { return fabs(a - b) <= 4 * 2.220446049250313e-16 * fmax(fabs(a), fabs(b)); }

static void same_cell(const cell *a, const cell *b)
{
    REQUIRE(a->done == b->done);
    if (!a->done)
        return;
    REQUIRE(a->n == b->n && close_to(a->err_avg, b->err_avg) && close_to(a->err_1shot, b->err_1shot));
    REQUIRE(close_to(a->err_mean, b->err_mean) && close_to(a->nll_avg, b->nll_avg) && close_to(a->nll_mean, b->nll_mean));
    REQUIRE(close_to(a->ece, b->ece) && close_to(a->brier, b->brier) && close_to(a->entropy, b->entropy));
    REQUIRE(close_to(a->ece_mean, b->ece_mean));
}

/* The reused cells as ibnet writes them: settings and cells. */
static char *write_back(const cJSON *settings, const bench *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "settings", cJSON_Duplicate(settings, true));
    cJSON *cells = cJSON_AddArrayToObject(o, "cells");
    for (int w = 0; w < WHO; w++) {
        if (b->clean[w].done)
            cJSON_AddItemToArray(cells, ib_cli_cell_json(w, "clean", 0, &b->clean[w]));
        for (int i = 0; i < b->n_types; i++)
            for (int j = 0; j < b->n_sev; j++)
                if (b->c[w][i][j].done)
                    cJSON_AddItemToArray(cells, ib_cli_cell_json(w, ib_corruption_name((ib_corruption)b->types[i]),
                                                                 b->sev[j], &b->c[w][i][j]));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    cJSON *settings = cJSON_Parse(settings_text);
    REQUIRE(settings);
    static bench b, again;
    bench_init(&b);
    int loaded = -1;
    /* the refusals' messages go to /dev/null (a property's still to stderr) */
    static int devnull = -1;
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY);
    fflush(stderr);
    int saved = dup(2);
    dup2(devnull, 2);
    int rc = ib_cli_cells_parse((const char *)data, size, "fuzz.json", settings, &b, &loaded);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    REQUIRE(rc == 0 || rc == 2);
    REQUIRE(loaded >= 0 && loaded <= WHO * (1 + IB_CORRUPT_COUNT * MAX_SEV));
    REQUIRE(rc == 0 || loaded == 0);
    int done = 0;
    for (int w = 0; w < WHO; w++) {
        check_cell(&b.clean[w]);
        done += b.clean[w].done;
        for (int i = 0; i < IB_CORRUPT_COUNT; i++)
            for (int j = 0; j < MAX_SEV; j++) {
                check_cell(&b.c[w][i][j]);
                done += b.c[w][i][j].done;
            }
    }
    REQUIRE(done == loaded);
    if (rc == 0) { /* round trip: the same cells again */
        char *text = write_back(settings, &b);
        REQUIRE(text);
        bench_init(&again);
        int loaded2 = -1;
        REQUIRE(ib_cli_cells_parse(text, strlen(text), "again.json", settings, &again, &loaded2) == 0);
        REQUIRE(loaded2 == loaded);
        char *text2 = write_back(settings, &again); /* and the text is a fixed point */
        REQUIRE(text2 && strcmp(text, text2) == 0);
        free(text2);
        for (int w = 0; w < WHO; w++) {
            same_cell(&again.clean[w], &b.clean[w]);
            for (int i = 0; i < IB_CORRUPT_COUNT; i++)
                for (int j = 0; j < MAX_SEV; j++)
                    same_cell(&again.c[w][i][j], &b.c[w][i][j]);
        }
        free(text);
    }
    cJSON_Delete(settings);
    return 0;
}
