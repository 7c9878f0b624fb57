/*
 * cmd_robustness.c — `ibnet robustness CHECKPOINT`: the common-corruption
 * benchmark of one checkpoint (docs/robustness.md).  The network (and the
 * --baseline one) is opened once; every corruption at every chosen
 * severity, and the clean test set, is one cell: top-1 error of the
 * S-sample average, of one sample and of the mean path, NLL and
 * calibration.  With --out DIR every finished cell is saved at once
 * (DIR/robustness.json, replaced atomically), so a run that is stopped
 * resumes where it was and skips what is done; the figures (mCE and
 * relative mCE after Hendrycks & Dietterich, computed by ib_mce) and the
 * Markdown table DIR/robustness.md are written when every cell is in.
 *
 * Every flag is checked before a checkpoint is read: a user error exits 2
 * before any work.
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"
#include "robustness_cells.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "1-5", "3", "1,3,5", "2-3,5" -> sorted distinct severities; -1 if malformed. */
static int parse_severities(const char *s, int *out)
{
    bool on[MAX_SEV + 1] = {false};
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 1 || a > MAX_SEV)
            return -1;
        if (*end == '-') {
            const char *t = end + 1;
            b = strtol(t, &end, 10);
            if (end == t || b < a || b > MAX_SEV)
                return -1;
        }
        if (*end && *end != ',')
            return -1;
        for (long k = a; k <= b; k++)
            on[k] = true;
        s = *end ? end + 1 : end;
        if (!*s && end[0] == ',')
            return -1;
    }
    int n = 0;
    for (int k = 1; k <= MAX_SEV; k++)
        if (on[k])
            out[n++] = k;
    return n ? n : -1;
}

/* A double as JSON: null when not finite. */
static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static cJSON *num_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

/* What must be the same for saved cells to be reused. */
static cJSON *settings_json(const char *ckpt, const char *base, const char *dataset, int64_t n, int samples[WHO],
                            int64_t seed, int64_t sample_seed, bool no_ema)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "checkpoint", ckpt);
    if (base)
        cJSON_AddStringToObject(o, "baseline", base);
    else
        cJSON_AddNullToObject(o, "baseline");
    cJSON_AddStringToObject(o, "dataset", dataset);
    cJSON_AddNumberToObject(o, "n", (double)n);
    cJSON_AddNumberToObject(o, "samples", samples[0]);
    cJSON_AddNumberToObject(o, "baseline_samples", base ? samples[1] : 0);
    cJSON_AddNumberToObject(o, "corruption_seed", (double)seed);
    cJSON_AddNumberToObject(o, "sample_seed", (double)sample_seed);
    cJSON_AddBoolToObject(o, "no_ema", no_ema);
    return o;
}

/* The benchmark's figures of one prediction (avg or mean path). */
typedef struct figures {
    double mean_err, mce, rel_mce, ce[IB_CORRUPT_COUNT], rel_ce[IB_CORRUPT_COUNT], mean_err_t[IB_CORRUPT_COUNT];
} figures;

static figures compute(const bench *b, bool mean_path, bool have_base)
{
    figures f = {0};
    double err[IB_CORRUPT_COUNT * MAX_SEV], base[IB_CORRUPT_COUNT * MAX_SEV];
    for (int i = 0; i < b->n_types; i++) {
        f.mean_err_t[i] = 0;
        for (int j = 0; j < b->n_sev; j++) {
            const cell *m = &b->c[0][i][j], *x = &b->c[1][i][j];
            err[i * b->n_sev + j] = mean_path ? m->err_mean : m->err_avg;
            base[i * b->n_sev + j] = have_base ? (mean_path ? x->err_mean : x->err_avg) : NAN;
            f.mean_err_t[i] += err[i * b->n_sev + j] / b->n_sev;
        }
        f.mean_err += f.mean_err_t[i] / b->n_types;
    }
    if (have_base) {
        const cell *mc = &b->clean[0], *bc = &b->clean[1];
        ib_mce(b->n_types, b->n_sev, err, mean_path ? mc->err_mean : mc->err_avg, base,
               mean_path ? bc->err_mean : bc->err_avg, f.ce, f.rel_ce, &f.mce, &f.rel_mce);
    } else {
        f.mce = f.rel_mce = NAN;
        for (int i = 0; i < b->n_types; i++)
            f.ce[i] = f.rel_ce[i] = NAN;
    }
    return f;
}

static bool all_done(const bench *b, bool have_base)
{
    for (int w = 0; w < (have_base ? 2 : 1); w++) {
        if (!b->clean[w].done)
            return false;
        for (int i = 0; i < b->n_types; i++)
            for (int j = 0; j < b->n_sev; j++)
                if (!b->c[w][i][j].done)
                    return false;
    }
    return true;
}

/* The whole report as JSON: settings, every finished cell, and when all
 * are in the figures (else "complete": false). */
static cJSON *report_json(const bench *b, const cJSON *settings, bool have_base, bool stochastic)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "settings", cJSON_Duplicate(settings, true));
    bool complete = all_done(b, have_base);
    cJSON_AddBoolToObject(o, "complete", complete);
    cJSON_AddBoolToObject(o, "stochastic", stochastic);
    double sev[MAX_SEV];
    for (int j = 0; j < b->n_sev; j++)
        sev[j] = b->sev[j];
    cJSON_AddItemToObject(o, "severities", num_array(sev, b->n_sev));
    if (complete) {
        figures fa = compute(b, false, have_base), fm = compute(b, true, have_base);
        add_num(o, "clean_error", b->clean[0].err_avg);
        add_num(o, "clean_error_mean_path", b->clean[0].err_mean);
        add_num(o, "baseline_clean_error", have_base ? b->clean[1].err_avg : NAN);
        add_num(o, "mean_error", fa.mean_err);
        add_num(o, "mce", fa.mce);
        add_num(o, "relative_mce", fa.rel_mce);
        add_num(o, "mean_error_mean_path", fm.mean_err);
        add_num(o, "mce_mean_path", fm.mce);
        add_num(o, "relative_mce_mean_path", fm.rel_mce);
        cJSON *per = cJSON_AddArrayToObject(o, "corruptions");
        for (int i = 0; i < b->n_types; i++) {
            cJSON *e = cJSON_CreateObject();
            double ea[MAX_SEV], em[MAX_SEV], eb[MAX_SEV], ece[MAX_SEV];
            for (int j = 0; j < b->n_sev; j++) {
                ea[j] = b->c[0][i][j].err_avg;
                em[j] = b->c[0][i][j].err_mean;
                eb[j] = have_base ? b->c[1][i][j].err_avg : NAN;
                ece[j] = b->c[0][i][j].ece;
            }
            cJSON_AddStringToObject(e, "corruption", ib_corruption_name((ib_corruption)b->types[i]));
            cJSON_AddItemToObject(e, "errors", num_array(ea, b->n_sev));
            add_num(e, "mean_error", fa.mean_err_t[i]);
            add_num(e, "ce", fa.ce[i]);
            add_num(e, "relative_ce", fa.rel_ce[i]);
            cJSON_AddItemToObject(e, "errors_mean_path", num_array(em, b->n_sev));
            add_num(e, "ce_mean_path", fm.ce[i]);
            add_num(e, "relative_ce_mean_path", fm.rel_ce[i]);
            cJSON_AddItemToObject(e, "baseline_errors", num_array(eb, b->n_sev));
            cJSON_AddItemToObject(e, "ece", num_array(ece, b->n_sev));
            cJSON_AddItemToArray(per, e);
        }
    }
    cJSON *cells = cJSON_AddArrayToObject(o, "cells");
    for (int w = 0; w < WHO; w++) {
        if (b->clean[w].done)
            cJSON_AddItemToArray(cells, ib_cli_cell_json(w, "clean", 0, &b->clean[w]));
        for (int i = 0; i < b->n_types; i++)
            for (int j = 0; j < b->n_sev; j++)
                if (b->c[w][i][j].done)
                    cJSON_AddItemToArray(cells, ib_cli_cell_json(w, ib_corruption_name((ib_corruption)b->types[i]), b->sev[j],
                                                          &b->c[w][i][j]));
    }
    return o;
}

static int write_text(const char *path, const char *text)
{
    ib_status s = ib_file_write_atomic(path, text, strlen(text));
    if (s != IB_OK)
        fprintf(stderr, "ibnet robustness: %s\n", ib_last_error());
    return s == IB_OK ? 0 : 1;
}

static int save_json(const char *dir, const cJSON *rep)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/robustness.json", dir);
    char *text = cJSON_Print(rep);
    if (!text) {
        fprintf(stderr, "ibnet robustness: out of memory\n");
        return 1;
    }
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (t2) {
        text = t2;
        memcpy(text + n, "\n", 2);
    }
    int rc = write_text(path, text);
    free(text);
    return rc;
}

static void pct(char *buf, size_t len, double v)
{
    if (isfinite(v))
        snprintf(buf, len, "%.2f", 100 * v);
    else
        snprintf(buf, len, "–");
}

/* The Markdown table: per corruption its error (%) at each severity, the
 * mean, CE and relative CE (%) of the S-sample average; then the mean path
 * (stochastic models); a last row with the means and mCE. */
static char *table_md(const bench *b, const char *ckpt, const char *base, bool stochastic, int samples)
{
    bool have_base = base != NULL;
    figures fa = compute(b, false, have_base), fm = compute(b, true, have_base);
    size_t cap = 16384;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    size_t at = 0;
#define P(...) at += (size_t)snprintf(t + at, at < cap ? cap - at : 0, __VA_ARGS__)
    P("Corruption robustness of `%s` (%lld test images", ckpt, (long long)b->clean[0].n);
    if (stochastic)
        P(", %d-sample average", samples);
    P("); errors in %%, CE and relative CE in %% of the baseline%s%s%s.\n\n", have_base ? " `" : " (none given)",
      have_base ? base : "", have_base ? "`" : "");
    char x[32], y[32], z[32];
    pct(x, sizeof x, b->clean[0].err_avg);
    pct(y, sizeof y, have_base ? b->clean[1].err_avg : NAN);
    P("Clean error %s (baseline %s)", x, y);
    if (stochastic) {
        pct(x, sizeof x, b->clean[0].err_mean);
        P("; mean path %s", x);
    }
    P(".\n\n| corruption |");
    for (int j = 0; j < b->n_sev; j++)
        P(" s%d |", b->sev[j]);
    P(" mean | CE | rel. CE |%s\n|---|", stochastic ? " mean path: mean | CE |" : "");
    for (int j = 0; j < b->n_sev + 3 + (stochastic ? 2 : 0); j++)
        P("---:|");
    P("\n");
    for (int i = 0; i < b->n_types; i++) {
        if (at + 1024 > cap) {
            char *n2 = realloc(t, cap *= 2);
            if (!n2) {
                free(t);
                return NULL;
            }
            t = n2;
        }
        P("| %s |", ib_corruption_name((ib_corruption)b->types[i]));
        for (int j = 0; j < b->n_sev; j++) {
            pct(x, sizeof x, b->c[0][i][j].err_avg);
            P(" %s |", x);
        }
        pct(x, sizeof x, fa.mean_err_t[i]);
        pct(y, sizeof y, fa.ce[i]);
        pct(z, sizeof z, fa.rel_ce[i]);
        P(" %s | %s | %s |", x, y, z);
        if (stochastic) {
            pct(x, sizeof x, fm.mean_err_t[i]);
            pct(y, sizeof y, fm.ce[i]);
            P(" %s | %s |", x, y);
        }
        P("\n");
    }
    P("| **mean** |");
    for (int j = 0; j < b->n_sev; j++)
        P(" |");
    pct(x, sizeof x, fa.mean_err);
    pct(y, sizeof y, fa.mce);
    pct(z, sizeof z, fa.rel_mce);
    P(" **%s** | **%s** (mCE) | **%s** |", x, y, z);
    if (stochastic) {
        pct(x, sizeof x, fm.mean_err);
        pct(y, sizeof y, fm.mce);
        P(" **%s** | **%s** |", x, y);
    }
    P("\n");
#undef P
    return t;
}

/* Evaluate one cell: d (clean or corrupted) through net. */
static int eval_cell(ib_net *n, const ib_dataset *d, int samples, uint64_t seed, cell *out)
{
    const ib_model_out *mo = ib_net_outputs(n);
    ib_eval_result r;
    ib_status s = ib_evaluate(ib_net_graph(n), ib_net_input(n), ib_net_logits(n), mo->n_bottlenecks, ib_net_kl(n), d,
                              ib_net_batcher_config(n), samples, seed, &r);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet robustness: %s\n", ib_last_error());
        return 1;
    }
    *out = (cell){.done = true,
                  .n = r.n,
                  .err_avg = 1 - r.acc_avg,
                  .err_1shot = 1 - r.acc_1shot,
                  .err_mean = 1 - r.acc_mean,
                  .nll_avg = r.nll_avg,
                  .nll_mean = r.nll_mean,
                  .ece = r.calib.ece,
                  .brier = r.calib.brier,
                  .entropy = r.calib.entropy,
                  .ece_mean = r.calib_mean.ece};
    ib_eval_result_free(&r);
    return 0;
}

int ib_cmd_robustness(int argc, char **argv)
{
    const char *baseline = NULL, *types = "benchmark", *sevs = "1-5", *out = NULL, *data = NULL;
    int64_t limit = 0, samples = 0, batch = 500, seed = 1, sample_seed = -1, threads = 0, max_cells = 0;
    bool json = false, no_ema = false, skip_hash = false, no_verify = false;
    arg_spec specs[] = {
        {"--baseline", ARG_STRING, &baseline, "CKPT", "the plain model of the same architecture and data set: CE and "
         "mCE are relative to its errors (default: none, errors only)", NULL, 0},
        {"--types", ARG_STRING, &types, "SET", "benchmark: the 14 benchmark corruptions; all: the 17", "benchmark|all", 0},
        {"--severities", ARG_STRING, &sevs, "LIST", "severities, e.g. 1-5, 3, 1,3,5", NULL, 0},
        {"--limit", ARG_INT, &limit, "N", "evaluate the first N test images only (default: all)", NULL, 0},
        {"--out", ARG_STRING, &out, "DIR", "save robustness.json (every finished cell; a rerun resumes) and "
         "robustness.md here (default: print only, no resume)", NULL, 0},
        {"--max-cells", ARG_INT, &max_cells, "N", "evaluate at most N cells in this call, then stop (needs --out; "
         "the next call goes on; default: all)", NULL, 0},
        {"--samples", ARG_INT, &samples, "S", "samples averaged (default: each training run's, 12)", NULL, 0},
        {"--sample-seed", ARG_INT, &sample_seed, "N", "seed of the sampled noise (default: the one each training run "
         "evaluated with)", NULL, 0},
        {"--seed", ARG_INT, &seed, "N", "seed of the corruptions", NULL, 0},
        {"--batch-size", ARG_INT, &batch, "N", "evaluation batch size", NULL, 0},
        {"--data", ARG_STRING, &data, "DIR", "where the data set lives", NULL, 0},
        {"--no-ema", ARG_FLAG, &no_ema, NULL, "use the raw weights even if a file holds an EMA average", NULL, 0},
        {"--no-hash", ARG_FLAG, &skip_hash, NULL, "skip the sha256 check of the data files", NULL, 0},
        {"--no-verify", ARG_FLAG, &no_verify, NULL, "skip the checksums of the checkpoints' tensors", NULL, 0},
        {"--threads", ARG_INT, &threads, "N", "threads", NULL, 0},
        {"--json", ARG_FLAG, &json, NULL, "print the report as JSON (as robustness.json)", NULL, 0},
    };
    arg_parser p = {"robustness", "ibnet robustness CHECKPOINT [options]",
                    "Common-corruption benchmark of a checkpoint: top-1 error on every corruption and severity of the "
                    "test set (S-sample average and mean path for stochastic networks), corruption errors CE and mCE "
                    "relative to a --baseline checkpoint (Hendrycks & Dietterich), calibration per cell. With --out "
                    "every finished cell is saved and a rerun with the same settings skips it.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 1, 1, "CHECKPOINT"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    bench *b = calloc(1, sizeof *b);
    if (!b) {
        fprintf(stderr, "ibnet robustness: out of memory\n");
        return 1;
    }
    b->n_sev = parse_severities(sevs, b->sev);
    b->n_types = strcmp(types, "all") == 0 ? IB_CORRUPT_COUNT : IB_CORRUPT_BENCHMARK;
    for (int i = 0; i < b->n_types; i++)
        b->types[i] = i;
    if (b->n_sev < 0 || limit < 0 || samples < 0 || samples > 1000 || batch < 1 || seed < 0 || sample_seed < -1 ||
        max_cells < 0 || (max_cells && !out)) {
        fprintf(stderr, "ibnet robustness: --severities a list of 1..5 (e.g. 1-5 or 1,3,5), --limit >= 0, "
                        "--samples in 0..1000, --batch-size >= 1, --seed >= 0, --sample-seed >= 0, --max-cells >= 0 "
                        "and only with --out\n");
        free(b);
        return 2;
    }
    if (threads > 0)
        ib_set_threads((int)threads);
    ib_net_options no = ib_net_options_default();
    no.batch_size = batch;
    no.weights = no_ema ? IB_NET_WEIGHTS_RAW : IB_NET_WEIGHTS_DEFAULT;
    no.skip_checksums = no_verify;
    ib_net *net[WHO] = {NULL, NULL};
    ib_dataset *d = NULL;
    cJSON *settings = NULL;
    rc = 0;
    for (int w = 0; w < (baseline ? 2 : 1) && !rc; w++)
        if (ib_net_open(w ? baseline : pos[0], &no, &net[w]) != IB_OK) {
            fprintf(stderr, "ibnet robustness: %s\n", ib_last_error());
            rc = 2;
        }
    if (!rc && baseline && ib_robustness_check_baseline(net[0], net[1]) != IB_OK) {
        fprintf(stderr, "ibnet robustness: %s is no baseline for %s: %s\n", baseline, pos[0], ib_last_error());
        rc = 2;
    }
    ib_load_options lo = {.skip_hash = skip_hash};
    if (!rc) {
        ib_status s = ib_dataset_open(ib_net_meta(net[0])->dataset, "test", data, &lo, &d);
        if (s == IB_OK && limit > 0 && limit < d->n) {
            ib_dataset *part = NULL;
            s = ib_dataset_slice(d, 0, limit, &part);
            ib_dataset_free(d);
            d = part;
        }
        if (s != IB_OK) {
            fprintf(stderr, "ibnet robustness: %s\n", ib_last_error());
            rc = 2;
        }
    }
    int S[WHO] = {0, 0};
    uint64_t seeds[WHO] = {0, 0};
    bool stochastic = false;
    for (int w = 0; w < WHO && !rc; w++)
        if (net[w]) {
            S[w] = samples ? (int)samples : ib_net_eval_samples(net[w]);
            seeds[w] = sample_seed >= 0 ? (uint64_t)sample_seed : ib_net_eval_seed(net[w]);
            stochastic |= w == 0 && (ib_net_outputs(net[w])->n_bottlenecks > 0 || ib_net_outputs(net[w])->n_stochastic > 0);
        }
    if (!rc) {
        settings = settings_json(pos[0], baseline, d->name, d->n, S, seed, sample_seed, no_ema);
        if (out) {
            char path[4200];
            snprintf(path, sizeof path, "%s/robustness.json", out);
            if (ib_mkdirs(out) != IB_OK) {
                fprintf(stderr, "ibnet robustness: %s\n", ib_last_error());
                rc = 2;
            }
            int loaded = 0;
            if (!rc)
                rc = ib_cli_cells_load(path, settings, b, &loaded);
            if (!rc && loaded)
                fprintf(stderr, "ibnet robustness: resuming: %d cell(s) of %s already done\n", loaded, path);
        }
    }
    /* the cells: clean first, then corruption by corruption */
    int64_t evaluated = 0;
    bool stopped = false;
    for (int w = 0; w < (baseline ? 2 : 1) && !rc && !stopped; w++) {
        for (int i = -1; i < b->n_types && !rc && !stopped; i++) {
            for (int j = 0; j < (i < 0 ? 1 : b->n_sev) && !rc; j++) {
                cell *c = i < 0 ? &b->clean[w] : &b->c[w][i][j];
                if (c->done)
                    continue;
                if (max_cells && evaluated == max_cells) {
                    stopped = true;
                    break;
                }
                ib_dataset *cd = NULL;
                if (i >= 0 && ib_dataset_corrupt(d, (ib_corruption)b->types[i], b->sev[j], (uint64_t)seed, &cd) != IB_OK) {
                    fprintf(stderr, "ibnet robustness: %s\n", ib_last_error());
                    rc = 1;
                    break;
                }
                rc = eval_cell(net[w], cd ? cd : d, S[w], seeds[w], c);
                ib_dataset_free(cd);
                evaluated++;
                if (!json && !rc)
                    fprintf(stderr, "  %s %s s%d: error %.2f%%\n", w ? "baseline" : "model",
                            i < 0 ? "clean" : ib_corruption_name((ib_corruption)b->types[i]), i < 0 ? 0 : b->sev[j],
                            100 * c->err_avg);
                if (!rc && out) {
                    cJSON *rep = report_json(b, settings, baseline != NULL, stochastic);
                    rc = rep ? save_json(out, rep) : 1;
                    cJSON_Delete(rep);
                }
            }
        }
    }
    if (!rc && stopped) {
        fprintf(stderr, "ibnet robustness: stopped after %lld cell(s) (--max-cells); run again to go on\n",
                (long long)evaluated);
    } else if (!rc) {
        cJSON *rep = report_json(b, settings, baseline != NULL, stochastic);
        char *md = table_md(b, pos[0], baseline, stochastic, S[0]);
        if (!rep || !md)
            rc = 1;
        if (!rc && out) {
            char path[4200];
            snprintf(path, sizeof path, "%s/robustness.md", out);
            rc = save_json(out, rep) || write_text(path, md);
        }
        if (!rc && json) {
            char *text = cJSON_Print(rep);
            if (text)
                printf("%s\n", text);
            free(text);
        } else if (!rc) {
            fputs(md, stdout);
        }
        cJSON_Delete(rep);
        free(md);
    }
    cJSON_Delete(settings);
    ib_dataset_free(d);
    ib_net_close(net[0]);
    ib_net_close(net[1]);
    free(b);
    return rc;
}
