/*
 * cmd_sweep.c — `ibnet sweep`: a grid of settings, one training run per
 * point, each in its own directory under --out through ib_train.  Serial
 * in one process; under mpirun each rank takes the next run as it
 * finishes one (ib_dist_counter: a slow run does not hold the others up),
 * and every run is a whole single-process run (no data parallelism).
 *
 * Restartable: a run whose metrics.jsonl reached its last epoch is
 * skipped, one with a config.json but not finished is resumed (exactly,
 * from its last checkpoint), the others start.  At the end rank 0 writes
 * results.jsonl (one object per run: its grid values, status and the
 * figures of its summary.json) and results.md (the same as a table), and
 * draws sweep.png (cli/sweep_plot.c).
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"
#include "signals.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_AXES 8
#define MAX_VALUES 64

static volatile int stop_flag;

typedef struct axis {
    char key[64];
    int n;
    char *values[MAX_VALUES];
} axis;

typedef struct sweep {
    const char *out;
    cJSON *base;       /* the base configuration as config.json */
    axis axes[MAX_AXES];
    int n_axes;
    int64_t n_runs;
} sweep;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = NULL;
    long n = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1L << 24) && fseek(f, 0, SEEK_SET) == 0) {
        text = malloc((size_t)n + 1);
        if (text && fread(text, 1, (size_t)n, f) == (size_t)n)
            text[n] = 0;
        else {
            free(text);
            text = NULL;
        }
    }
    fclose(f);
    return text;
}

/* Set config.json key `key` of o to the text v, typed like the key's
 * current value (a string stays a string; numbers, booleans and arrays are
 * parsed as JSON).  2 with a message for an unknown key or a bad value. */
static int set_key(cJSON *o, const char *key, const char *v, const char *what)
{
    cJSON *old = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!old || !strcmp(key, "provenance") || !strcmp(key, "out_dir")) {
        fprintf(stderr, "ibnet sweep: %s: '%s' is not a setting of config.json (see ibnet train --dry-run)\n", what,
                key);
        return 2;
    }
    cJSON *nv = NULL;
    if (cJSON_IsString(old)) {
        nv = cJSON_CreateString(v);
    } else {
        nv = cJSON_Parse(v);
        bool ok = nv && ((cJSON_IsNumber(old) && cJSON_IsNumber(nv)) || (cJSON_IsBool(old) && cJSON_IsBool(nv)) ||
                         (cJSON_IsArray(old) && cJSON_IsArray(nv)));
        if (!ok) {
            cJSON_Delete(nv);
            fprintf(stderr, "ibnet sweep: %s: '%s' for %s is not a %s\n", what, v, key,
                    cJSON_IsNumber(old) ? "number" : cJSON_IsBool(old) ? "boolean (true/false)" : "JSON array");
            return 2;
        }
    }
    cJSON_ReplaceItemInObjectCaseSensitive(o, key, nv);
    return 0;
}

/* KEY=V1,V2,... into an axis (the values are kept as written). */
static int parse_grid(const char *spec, axis *a)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof a->key || !eq[1]) {
        fprintf(stderr, "ibnet sweep: --grid %s: expected KEY=V1,V2,...\n", spec);
        return 2;
    }
    snprintf(a->key, sizeof a->key, "%.*s", (int)(eq - spec), spec);
    a->n = 0;
    for (const char *p = eq + 1; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || a->n == MAX_VALUES) {
            fprintf(stderr, "ibnet sweep: --grid %s: empty value or more than %d values\n", spec, MAX_VALUES);
            return 2;
        }
        a->values[a->n] = strndup(p, len);
        a->n++;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

/* The values of run k: the last axis varies fastest. */
static void run_values(const sweep *s, int64_t k, int *idx)
{
    for (int i = s->n_axes - 1; i >= 0; i--) {
        idx[i] = (int)(k % s->axes[i].n);
        k /= s->axes[i].n;
    }
}

/* "beta=0.001_seed=2": the run's directory name under --out. */
static void run_name(const sweep *s, const int *idx, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < s->n_axes && n + 1 < len; i++) {
        int k = snprintf(out + n, len - n, "%s%s=", i ? "_" : "", s->axes[i].key);
        n += k > 0 ? (size_t)k : 0;
        for (const char *p = s->axes[i].values[idx[i]]; *p && n + 1 < len; p++)
            out[n++] = isalnum((unsigned char)*p) || strchr(".-+", *p) ? *p : '_';
        out[n] = 0;
    }
    if (s->n_axes == 0)
        snprintf(out, len, "run");
}

/* The configuration of run k (its out_dir set); 2 on a bad grid value. */
static int run_config(const sweep *s, int64_t k, ib_train_config *c, char *dir, size_t dir_len)
{
    int idx[MAX_AXES];
    run_values(s, k, idx);
    cJSON *o = cJSON_Duplicate(s->base, true);
    int rc = 0;
    for (int i = 0; rc == 0 && i < s->n_axes; i++)
        rc = set_key(o, s->axes[i].key, s->axes[i].values[idx[i]], "--grid");
    char name[512];
    run_name(s, idx, name, sizeof name);
    snprintf(dir, dir_len, "%s/%s", s->out, name);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "out_dir", cJSON_CreateString(dir));
    char *text = rc == 0 ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (rc == 0) {
        *c = ib_train_config_default();
        if (ib_train_config_from_json(text, c) != IB_OK || ib_train_config_check(c) != IB_OK) {
            fprintf(stderr, "ibnet sweep: run %s: %s\n", name, ib_last_error());
            rc = 2;
        }
        c->schedule.total = (double)c->epochs; /* as `ibnet train` does */
    }
    free(text);
    return rc;
}

/* The last epoch metrics.jsonl records (0: none). */
static int64_t epochs_recorded(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = read_text(path);
    int64_t last = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItem(o, "epoch");
        if (cJSON_IsNumber(e))
            last = (int64_t)e->valuedouble;
        cJSON_Delete(o);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    return last;
}

typedef enum { RUN_NEW, RUN_PARTIAL, RUN_DONE } run_state;

static run_state state_of(const ib_train_config *c)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", c->out_dir);
    if (stat(path, &st) != 0)
        return RUN_NEW;
    snprintf(path, sizeof path, "%s/summary.json", c->out_dir);
    if (stat(path, &st) == 0 && epochs_recorded(c->out_dir) >= c->epochs)
        return RUN_DONE;
    return RUN_PARTIAL;
}

/* The grid axis the plot puts on x: the first whose values (two or more)
 * are all numbers; -1: none. */
static int plot_axis(const sweep *s)
{
    for (int i = 0; i < s->n_axes; i++) {
        bool num = s->axes[i].n >= 2;
        for (int j = 0; num && j < s->axes[i].n; j++) {
            char *end;
            double v = strtod(s->axes[i].values[j], &end);
            num = end != s->axes[i].values[j] && *end == 0 && isfinite(v);
        }
        if (num)
            return i;
    }
    return -1;
}

/* The line of the plot run idx belongs to: its values on the axes other
 * than xa (the last varies fastest); names[k] = "seed=1, lr=0.1" (or y_key
 * when there is no other axis). */
static int series_of(const sweep *s, int xa, const int *idx)
{
    int k = 0;
    for (int i = 0; i < s->n_axes; i++)
        if (i != xa)
            k = k * s->axes[i].n + idx[i];
    return k;
}

static int plot_results(const sweep *s, int xa, const char *y_key, ib_cli_sweep_point *pts, int n)
{
    int n_series = 1;
    for (int i = 0; i < s->n_axes; i++)
        if (i != xa)
            n_series *= s->axes[i].n;
    char **names = calloc((size_t)n_series, sizeof *names);
    int rc = names ? 0 : 1;
    for (int k = 0; rc == 0 && k < n_series; k++) {
        char name[256] = "";
        size_t len = 0;
        int idx[MAX_AXES] = {0};
        for (int i = s->n_axes - 1, r = k; i >= 0; i--)
            if (i != xa) {
                idx[i] = r % s->axes[i].n;
                r /= s->axes[i].n;
            }
        for (int i = 0; i < s->n_axes && len + 1 < sizeof name; i++)
            if (i != xa) {
                int w = snprintf(name + len, sizeof name - len, "%s%s=%s", len ? ", " : "", s->axes[i].key,
                                 s->axes[i].values[idx[i]]);
                len += w > 0 ? (size_t)w : 0;
            }
        names[k] = strdup(len ? name : y_key);
        rc = names[k] ? 0 : 1;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/sweep.png", s->out);
    if (rc == 0)
        rc = ib_cli_sweep_plot(path, s->axes[xa].key, y_key, pts, n, names, n_series);
    else
        fprintf(stderr, "ibnet sweep: out of memory for the plot\n");
    for (int k = 0; names && k < n_series; k++)
        free(names[k]);
    free(names);
    return rc;
}

/* results.jsonl and results.md from every run's directory, then the plot
 * of y_key (summary.json) against the first numeric grid axis (rank 0). */
static int write_results(const sweep *s, const char *y_key)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/results.jsonl", s->out);
    FILE *fj = fopen(path, "w");
    snprintf(path, sizeof path, "%s/results.md", s->out);
    FILE *fm = fopen(path, "w");
    if (!fj || !fm) {
        fprintf(stderr, "ibnet sweep: cannot write the results into %s\n", s->out);
        if (fj)
            fclose(fj);
        if (fm)
            fclose(fm);
        return 1;
    }
    fprintf(fm, "| run |");
    for (int i = 0; i < s->n_axes; i++)
        fprintf(fm, " %s |", s->axes[i].key);
    fprintf(fm, " status | epochs | test acc (avg) | test NLL (avg) | test KL (nats) |\n|---|");
    for (int i = 0; i < s->n_axes; i++)
        fprintf(fm, "---|");
    fprintf(fm, "---|---|---|---|---|\n");
    int unfinished = 0, xa = plot_axis(s), n_pts = 0;
    ib_cli_sweep_point *pts = malloc((size_t)s->n_runs * sizeof *pts);
    if (!pts) {
        fclose(fj);
        fclose(fm);
        fprintf(stderr, "ibnet sweep: out of memory\n");
        return 1;
    }
    for (int64_t k = 0; k < s->n_runs; k++) {
        ib_train_config c;
        char dir[1100];
        if (run_config(s, k, &c, dir, sizeof dir) != 0) {
            free(pts);
            return 2;
        }
        int idx[MAX_AXES];
        run_values(s, k, idx);
        run_state st = state_of(&c);
        unfinished += st != RUN_DONE;
        snprintf(path, sizeof path, "%s/summary.json", dir);
        char *text = st == RUN_DONE ? read_text(path) : NULL;
        cJSON *sum = text ? cJSON_Parse(text) : NULL;
        free(text);
        cJSON *o = cJSON_CreateObject();
        const char *slash = strrchr(dir, '/');
        cJSON_AddStringToObject(o, "run", slash ? slash + 1 : dir);
        cJSON *grid = cJSON_AddObjectToObject(o, "grid");
        for (int i = 0; i < s->n_axes; i++) {
            cJSON *v = cJSON_Parse(s->axes[i].values[idx[i]]);
            cJSON_AddItemToObject(grid, s->axes[i].key, v ? v : cJSON_CreateString(s->axes[i].values[idx[i]]));
        }
        const char *status = st == RUN_DONE ? "done" : st == RUN_PARTIAL ? "partial" : "not started";
        cJSON_AddStringToObject(o, "status", status);
        double acc = NAN, nll = NAN, kl = NAN, epochs = NAN;
        if (sum) {
            const cJSON *v;
            if (cJSON_IsNumber(v = cJSON_GetObjectItem(sum, "test_acc_avg")))
                acc = v->valuedouble;
            if (cJSON_IsNumber(v = cJSON_GetObjectItem(sum, "test_nll_avg")))
                nll = v->valuedouble;
            if (cJSON_IsNumber(v = cJSON_GetObjectItem(sum, "epochs_done")))
                epochs = v->valuedouble;
            const cJSON *a = cJSON_GetObjectItem(sum, "test_kl_nats");
            if (cJSON_IsArray(a) && cJSON_GetArraySize(a) > 0) {
                kl = 0;
                for (const cJSON *e = a->child; e; e = e->next)
                    kl += e->valuedouble;
            }
            if (xa >= 0 && cJSON_IsNumber(v = cJSON_GetObjectItem(sum, y_key)))
                pts[n_pts++] = (ib_cli_sweep_point){strtod(s->axes[xa].values[idx[xa]], NULL), v->valuedouble,
                                                    series_of(s, xa, idx)};
            cJSON_AddItemToObject(o, "summary", sum);
        }
        char *line = cJSON_PrintUnformatted(o);
        fprintf(fj, "%s\n", line ? line : "{}");
        free(line);
        cJSON_Delete(o);
        fprintf(fm, "| %s |", slash ? slash + 1 : dir);
        for (int i = 0; i < s->n_axes; i++)
            fprintf(fm, " %s |", s->axes[i].values[idx[i]]);
        if (st == RUN_DONE)
            fprintf(fm, " %s | %.0f | %.2f%% | %.4f | %.3g |\n", status, epochs, 100 * acc, nll, kl);
        else
            fprintf(fm, " %s | | | | |\n", status);
    }
    fclose(fj);
    fclose(fm);
    printf("ibnet sweep: %lld runs, %d unfinished; results in %s/results.md and results.jsonl\n",
           (long long)s->n_runs, unfinished, s->out);
    int rc = 0;
    if (xa < 0)
        printf("ibnet sweep: no plot: no --grid axis has two or more numeric values\n");
    else
        rc = plot_results(s, xa, y_key, pts, n_pts);
    free(pts);
    return unfinished || rc ? 1 : 0;
}

int ib_cmd_sweep(int argc, char **argv)
{
    const char *out = NULL, *recipe = NULL, *config = NULL, *plot_y = "test_error_avg";
    int64_t threads = 0;
    bool quiet = false, dry_run = false;
    /* --grid and --set repeat: gathered before the table parser sees them */
    char *grid_specs[MAX_AXES], *set_specs[64];
    int n_grid = 0, n_set = 0;
    char *rest[256];
    int n_rest = 0;
    for (int i = 0; i < argc; i++) {
        bool g = !strcmp(argv[i], "--grid"), st = !strcmp(argv[i], "--set");
        if ((g || st) && i + 1 < argc) {
            if ((g && n_grid == MAX_AXES) || (st && n_set == 64)) {
                fprintf(stderr, "ibnet sweep: at most %d --grid and 64 --set\n", MAX_AXES);
                return 2;
            }
            if (g)
                grid_specs[n_grid++] = argv[++i];
            else
                set_specs[n_set++] = argv[++i];
        } else if (n_rest < 256) {
            rest[n_rest++] = argv[i];
        }
    }
    const char *grid_shown = NULL, *set_shown = NULL; /* for --help: the values were taken above */
    arg_spec specs[] = {
        {"--out", ARG_STRING, &out, "DIR", "the sweep's directory: one run directory per point, and the results", NULL, 0},
        {"--recipe", ARG_STRING, &recipe, "NAME", "base configuration: a recipe of ibnet train (default: its defaults)", NULL, 0},
        {"--config", ARG_STRING, &config, "FILE", "base configuration: a config.json", NULL, 0},
        {"--grid", ARG_STRING, &grid_shown, "KEY=V1,V2", "a grid axis over a config.json key (repeatable; the last varies fastest)", NULL, 0},
        {"--set", ARG_STRING, &set_shown, "KEY=VALUE", "one config.json key for every run (repeatable)", NULL, 0},
        {"--threads", ARG_INT, &threads, "N", "threads per run (0: IBNET_THREADS, else all cores)", NULL, 0},
        {"--plot-y", ARG_STRING, &plot_y, "KEY", "the summary.json figure DIR/sweep.png draws against the first "
         "numeric --grid axis (default test_error_avg)", NULL, 0},
        {"--quiet", ARG_FLAG, &quiet, NULL, "print only the final lines", NULL, 0},
        {"--dry-run", ARG_FLAG, &dry_run, NULL, "list the runs and their state, train nothing", NULL, 0},
    };
    arg_parser p = {"sweep", "ibnet sweep --out DIR --grid KEY=V1,V2,... [options]",
                    "Train one run per point of a grid of config.json settings, each in DIR/KEY=V_KEY=V..., then\n"
                    "write DIR/results.jsonl and DIR/results.md, and draw DIR/sweep.png (one line per value of the\n"
                    "other axes; needs cairo). Restartable: finished runs are skipped, partial\n"
                    "ones resumed. Under mpirun, ranks take the next run as they finish one (each run is a\n"
                    "single-process run). SIGINT/SIGTERM stops the current run (saved) and exits with 3.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 0, 0, NULL};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, n_rest, rest, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "ibnet sweep: --out DIR is required\n");
        return 2;
    }
    if (recipe && config) {
        fprintf(stderr, "ibnet sweep: --recipe and --config both give a base configuration; use one\n");
        return 2;
    }
    if (threads < 0 || threads > IB_MAX_THREADS) {
        fprintf(stderr, "ibnet sweep: --threads must be in 0..%d\n", IB_MAX_THREADS);
        return 2;
    }
    ib_train_config c = ib_train_config_default();
    if (recipe && ib_train_config_recipe(recipe, &c) != IB_OK) {
        fprintf(stderr, "ibnet sweep: %s\n", ib_last_error());
        return 2;
    }
    if (config) {
        char *text = read_text(config);
        if (!text || ib_train_config_from_json(text, &c) != IB_OK) {
            fprintf(stderr, "ibnet sweep: %s: %s\n", config, text ? ib_last_error() : "cannot read it");
            free(text);
            return 2;
        }
        free(text);
    }
    sweep s = {.out = out, .n_runs = 1};
    char *base_text = ib_train_config_to_json(&c);
    s.base = base_text ? cJSON_Parse(base_text) : NULL;
    free(base_text);
    if (!s.base) {
        fprintf(stderr, "ibnet sweep: out of memory\n");
        return 2;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(s.base, "provenance"); /* each run records its own */
    rc = 0;
    for (int i = 0; rc == 0 && i < n_set; i++) {
        char *eq = strchr(set_specs[i], '=');
        if (!eq) {
            fprintf(stderr, "ibnet sweep: --set %s: expected KEY=VALUE\n", set_specs[i]);
            rc = 2;
            break;
        }
        *eq = 0;
        rc = set_key(s.base, set_specs[i], eq + 1, "--set");
        *eq = '=';
    }
    for (int i = 0; rc == 0 && i < n_grid; i++) {
        rc = parse_grid(grid_specs[i], &s.axes[i]);
        s.n_axes = i + 1;
        for (int j = 0; rc == 0 && j < i; j++)
            if (!strcmp(s.axes[j].key, s.axes[i].key)) {
                fprintf(stderr, "ibnet sweep: --grid %s given twice\n", s.axes[i].key);
                rc = 2;
            }
        s.n_runs *= s.axes[i].n;
    }
    /* every run's configuration checked before anything is trained */
    for (int64_t k = 0; rc == 0 && k < s.n_runs; k++) {
        ib_train_config rc_cfg;
        char dir[1100];
        rc = run_config(&s, k, &rc_cfg, dir, sizeof dir);
    }
    if (rc != 0)
        goto done;
    if (dry_run) {
        static const char *names[] = {"new", "partial", "done"};
        for (int64_t k = 0; k < s.n_runs; k++) {
            ib_train_config rcfg;
            char dir[1100];
            run_config(&s, k, &rcfg, dir, sizeof dir);
            printf("%-8s %s\n", names[state_of(&rcfg)], dir);
        }
        goto done;
    }
    ib_cli_stop_signals_install(&stop_flag);
    if (threads > 0)
        ib_set_threads((int)threads);
    ib_dist_set_data_parallel(false); /* each rank trains whole runs */
    int rank = ib_dist_rank();
    struct stat st;
    if (rank == 0 && stat(out, &st) != 0 && mkdir(out, 0777) != 0) {
        fprintf(stderr, "ibnet sweep: cannot create %s\n", out);
        rc = 1; /* every rank reaches the counter below: the failure is reported at the end */
    }
    ib_dist_counter *counter = NULL;
    if (ib_dist_counter_new(&counter) != IB_OK) {
        fprintf(stderr, "ibnet sweep: %s\n", ib_last_error());
        ib_dist_abort(1);
    }
    ib_train_callbacks cb = {NULL, NULL, NULL, &stop_flag, NULL};
    int ran = 0, failed = 0;
    for (int64_t k; rc == 0 && !stop_flag && (k = ib_dist_counter_next(counter)) < s.n_runs;) {
        ib_train_config rcfg;
        char dir[1100];
        run_config(&s, k, &rcfg, dir, sizeof dir);
        run_state state = state_of(&rcfg);
        if (state == RUN_DONE)
            continue;
        ib_status ts = state == RUN_NEW ? ib_train(&rcfg, &cb) : ib_train_resume(dir, 0, &cb);
        ran++;
        if (ts != IB_OK) {
            failed++;
            fprintf(stderr, "ibnet sweep: run %s failed: %s\n", dir, ib_last_error());
        } else if (!quiet) {
            printf("ibnet sweep: %s %s (rank %d)\n", state == RUN_NEW ? "trained" : "resumed", dir, rank);
            fflush(stdout);
        }
    }
    ib_dist_counter_free(counter); /* collective: every rank is done */
    if (!quiet && ran == 0 && rank == 0 && !stop_flag)
        printf("ibnet sweep: nothing to train on rank 0\n");
    if (stop_flag) {
        fprintf(stderr, "ibnet sweep: stopped by %s; the current run is saved, run the same command to continue\n",
                ib_cli_stop_signal_name());
        rc = IB_CLI_EXIT_STOPPED;
    } else if (rank == 0 && rc == 0) {
        rc = write_results(&s, plot_y);
    } else if (rc == 0 && failed) {
        rc = 1;
    }
done:
    for (int i = 0; i < s.n_axes; i++)
        for (int j = 0; j < s.axes[i].n; j++)
            free(s.axes[i].values[j]);
    cJSON_Delete(s.base);
    return rc;
}
