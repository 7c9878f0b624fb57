/*
 * robustness_cells.c — the cells of `ibnet robustness` in robustness.json:
 * written one object per finished evaluation, read back on a rerun (the
 * resume) so that finished cells are skipped.  The reader takes any bytes:
 * a file of another program or of other settings is refused (exit 2), and
 * a cell with a missing or out-of-range figure is not reused but evaluated
 * again, so a damaged file never puts a wrong figure in a table.
 */
#include "robustness_cells.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A double as JSON: null when not finite. */
static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

cJSON *ib_cli_cell_json(int who, const char *corr, int sev, const cell *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", who ? "baseline" : "model");
    cJSON_AddStringToObject(o, "corruption", corr);
    cJSON_AddNumberToObject(o, "severity", sev);
    cJSON_AddNumberToObject(o, "n", (double)c->n);
    add_num(o, "err_avg", c->err_avg);
    add_num(o, "err_1shot", c->err_1shot);
    add_num(o, "err_mean_path", c->err_mean);
    add_num(o, "nll_avg", c->nll_avg);
    add_num(o, "nll_mean_path", c->nll_mean);
    add_num(o, "ece", c->ece);
    add_num(o, "brier", c->brier);
    add_num(o, "entropy", c->entropy);
    add_num(o, "ece_mean_path", c->ece_mean);
    return o;
}

static cell *find_cell(bench *b, int who, const char *corr, int sev)
{
    if (strcmp(corr, "clean") == 0)
        return sev == 0 ? &b->clean[who] : NULL;
    ib_corruption t;
    if (ib_corruption_parse(corr, &t) != IB_OK)
        return NULL;
    for (int i = 0; i < b->n_types; i++)
        for (int j = 0; j < b->n_sev; j++)
            if (b->types[i] == (int)t && b->sev[j] == sev)
                return &b->c[who][i][j];
    return NULL; /* a cell of a wider run: not needed now */
}

static bool in(double v, double lo, double hi) { return v >= lo && v <= hi; } /* false for NaN */

/* A cell as ibnet writes it: whole numbers for severity and n (before any
 * cast: a cast of NaN or 1e300 is undefined), rates in [0, 1], NLL and
 * entropy >= 0 and finite, Brier in [0, 2]. */
static bool read_cell(const cJSON *e, int *sev, cell *out)
{
    double s = num(e, "severity"), n = num(e, "n");
    if (!in(s, 0, MAX_SEV) || s != floor(s) || !in(n, 1, 9007199254740992.0) || n != floor(n))
        return false;
    cell c = {.done = true,
              .n = (int64_t)n,
              .err_avg = num(e, "err_avg"),
              .err_1shot = num(e, "err_1shot"),
              .err_mean = num(e, "err_mean_path"),
              .nll_avg = num(e, "nll_avg"),
              .nll_mean = num(e, "nll_mean_path"),
              .ece = num(e, "ece"),
              .brier = num(e, "brier"),
              .entropy = num(e, "entropy"),
              .ece_mean = num(e, "ece_mean_path")};
    if (!in(c.err_avg, 0, 1) || !in(c.err_1shot, 0, 1) || !in(c.err_mean, 0, 1) || !in(c.ece, 0, 1) ||
        !in(c.ece_mean, 0, 1) || !in(c.brier, 0, 2) || !in(c.nll_avg, 0, HUGE_VAL) || !isfinite(c.nll_avg) ||
        !in(c.nll_mean, 0, HUGE_VAL) || !isfinite(c.nll_mean) || !in(c.entropy, 0, HUGE_VAL) || !isfinite(c.entropy))
        return false;
    *sev = (int)s;
    *out = c;
    return true;
}

int ib_cli_cells_parse(const char *text, size_t len, const char *path, const cJSON *settings, bench *b, int *loaded)
{
    *loaded = 0;
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "settings");
    if (!cJSON_IsObject(o) || !cJSON_IsObject(st)) {
        fprintf(stderr, "ibnet robustness: %s is not a robustness file of ibnet; choose another --out\n", path);
        cJSON_Delete(o);
        return 2;
    }
    if (!cJSON_Compare(st, settings, true)) {
        char *want = cJSON_PrintUnformatted(settings), *have = cJSON_PrintUnformatted(st);
        fprintf(stderr, "ibnet robustness: %s holds cells of other settings (%s; now %s): choose another --out or "
                        "remove it\n", path, have ? have : "?", want ? want : "?");
        free(want);
        free(have);
        cJSON_Delete(o);
        return 2;
    }
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(o, "cells"), *e;
    if (cJSON_IsArray(cells))
        cJSON_ArrayForEach(e, cells)
        {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "model"),
                        *c = cJSON_GetObjectItemCaseSensitive(e, "corruption");
            if (!cJSON_IsString(m) || !cJSON_IsString(c))
                continue;
            bool base = strcmp(m->valuestring, "baseline") == 0;
            if (!base && strcmp(m->valuestring, "model") != 0)
                continue;
            int sev;
            cell v;
            if (!read_cell(e, &sev, &v))
                continue; /* damaged: evaluated again */
            cell *x = find_cell(b, base, c->valuestring, sev);
            if (!x)
                continue;
            if (!x->done)
                ++*loaded;
            *x = v;
        }
    cJSON_Delete(o);
    return 0;
}

int ib_cli_cells_load(const char *path, const cJSON *settings, bench *b, int *loaded)
{
    *loaded = 0;
    size_t len = 0;
    char *text = ib_file_read(path, (size_t)1 << 28, &len);
    if (!text)
        return 0; /* nothing saved yet */
    int rc = ib_cli_cells_parse(text, len, path, settings, b, loaded);
    free(text);
    return rc;
}
