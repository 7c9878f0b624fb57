/*
 * cmd_plot.c — `ibnet plot plane|curves|sweep`: the pictures of runs,
 * drawn by the library's charts (ib_chart_*, cairo) as PNG or SVG.
 *   plane   the information plane from info.jsonl (--track-info): I(X;T)
 *           against I(T;Y) in bits, one curve per layer, points coloured
 *           by epoch;
 *   curves  figures of metrics.jsonl against the epoch;
 *   sweep   a figure of summary.json against a setting of config.json
 *           over several runs (a beta sweep: test error against beta),
 *           or against another figure of summary.json (the sweep's
 *           information plane: the rate against the decoder bound),
 *           points optionally coloured by a setting (--shade beta);
 *   reliability  the reliability diagram of `ibnet eval --json` outputs:
 *           accuracy against confidence per bin, beside the diagonal of
 *           a perfectly calibrated predictor.
 * Unreadable or empty input is the user's (exit 2), named.
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_RUNS = 256, MAX_OUT = 4 };

/* A run directory names its file inside it; a file is itself. */
static void file_of(const char *arg, const char *name, char *out, size_t len)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, len, "%s/%s", arg, name);
    else
        snprintf(out, len, "%s", arg);
}

static void free_lines(cJSON **lines, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(lines[i]);
    free(lines);
}

/* The objects of a JSON-lines file; 2 (message printed) when it cannot be
 * read or a line is not JSON, and then nothing is left allocated. */
static int read_jsonl(const char *path, cJSON ***lines, int *n)
{
    *lines = NULL;
    *n = 0;
    char *text = ib_file_read(path, ((size_t)1 << 28) - 1, NULL);
    if (!text) {
        fprintf(stderr, "ibnet plot: cannot read %s\n", path);
        return 2;
    }
    int cap = 0, lineno = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        lineno++;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            fprintf(stderr, "ibnet plot: %s, line %d: not a JSON object\n", path, lineno);
            cJSON_Delete(o);
            free(text);
            free_lines(*lines, *n);
            *lines = NULL;
            *n = 0;
            return 2;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            cJSON **grown = realloc(*lines, (size_t)cap * sizeof *grown);
            if (!grown) {
                cJSON_Delete(o);
                free(text);
                free_lines(*lines, *n);
                *lines = NULL;
                *n = 0;
                return 1;
            }
            *lines = grown;
        }
        (*lines)[(*n)++] = o;
    }
    free(text);
    if (*n == 0) {
        fprintf(stderr, "ibnet plot: %s holds no line\n", path);
        free(*lines);
        *lines = NULL;
        return 2;
    }
    return 0;
}

static double number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(v))
        return v->valuedouble;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) { /* per-bottleneck figures: their sum */
        double s = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) s += cJSON_IsNumber(e) ? e->valuedouble : NAN;
        return s;
    }
    return NAN;
}

/* Write the chart to every output ("a.png,a.svg"). */
static int save(const ib_chart *c, const char *outs, int64_t width, int64_t height)
{
    char list[2048];
    snprintf(list, sizeof list, "%s", outs);
    for (char *p = strtok(list, ","); p; p = strtok(NULL, ",")) {
        ib_status s = ib_chart_save(c, p, (int)width, (int)height);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet plot: %s\n", ib_last_error());
            return s == IB_ERR_IO || s == IB_ERR_NOMEM ? 1 : 2;
        }
        printf("wrote %s\n", p);
    }
    return 0;
}

/* Curves of the named (or every) layer through the tracked epochs. */
static int plane(const char *arg, const char *layers, ib_chart *c)
{
    char path[4200];
    file_of(arg, "info.jsonl", path, sizeof path);
    cJSON **lines;
    int n;
    int rc = read_jsonl(path, &lines, &n);
    if (rc)
        return rc;
    char names[IB_CHART_MAX_SERIES][64];
    int n_names = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        double e = number(lines[i], "epoch");
        const cJSON *L = cJSON_GetObjectItemCaseSensitive(lines[i], "layers");
        if (!isfinite(e) || !cJSON_IsArray(L)) {
            fprintf(stderr, "ibnet plot: %s, line %d: no epoch and layers (is it an info.jsonl of --track-info?)\n",
                    path, i + 1);
            free_lines(lines, n);
            return 2;
        }
        lo = fmin(lo, e);
        hi = fmax(hi, e);
        const cJSON *l;
        cJSON_ArrayForEach(l, L)
        {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(l, "layer");
            if (!cJSON_IsString(nm))
                continue;
            if (layers) { /* only those named */
                char want[1100];
                snprintf(want, sizeof want, ",%s,", layers);
                char key[80];
                snprintf(key, sizeof key, ",%.60s,", nm->valuestring);
                if (!strstr(want, key))
                    continue;
            }
            int k = 0;
            while (k < n_names && strcmp(names[k], nm->valuestring))
                k++;
            if (k == n_names && n_names < IB_CHART_MAX_SERIES)
                snprintf(names[n_names++], sizeof names[0], "%.63s", nm->valuestring);
        }
    }
    if (n_names == 0) {
        fprintf(stderr, "ibnet plot: %s: no %s in any line\n", path, layers ? "layer of --layers" : "layer");
        free_lines(lines, n);
        return 2;
    }
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y), *t = malloc((size_t)n * sizeof *t);
    rc = x && y && t ? 0 : 1;
    for (int k = 0; k < n_names && !rc; k++) {
        for (int i = 0; i < n; i++) {
            x[i] = y[i] = NAN;
            double e = number(lines[i], "epoch");
            t[i] = hi > lo ? (e - lo) / (hi - lo) : 1;
            const cJSON *l;
            cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(lines[i], "layers"))
            {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(l, "layer");
                if (cJSON_IsString(nm) && strcmp(nm->valuestring, names[k]) == 0) {
                    x[i] = number(cJSON_GetObjectItemCaseSensitive(l, "ixt"), "bits");
                    y[i] = number(cJSON_GetObjectItemCaseSensitive(l, "ity"), "bits");
                }
            }
        }
        if (ib_chart_add(c, names[k], x, y, t, n, IB_CHART_LINES | IB_CHART_POINTS) != IB_OK)
            rc = 1;
    }
    ib_chart_shade_label(c, "epoch", lo, hi);
    free(x);
    free(y);
    free(t);
    free_lines(lines, n);
    return rc;
}

static int curves(const char *arg, const char *keys, ib_chart *c)
{
    char path[4200];
    file_of(arg, "metrics.jsonl", path, sizeof path);
    cJSON **lines;
    int n;
    int rc = read_jsonl(path, &lines, &n);
    if (rc)
        return rc;
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    char list[1100];
    snprintf(list, sizeof list, "%s", keys);
    rc = x && y ? 0 : 1;
    for (char *k = strtok(list, ","); k && !rc; k = strtok(NULL, ",")) {
        int found = 0;
        for (int i = 0; i < n; i++) {
            x[i] = number(lines[i], "epoch");
            y[i] = number(lines[i], k);
            found += isfinite(y[i]);
        }
        if (!found) {
            fprintf(stderr, "ibnet plot: %s: no line has a number '%s'\n", path, k);
            rc = 2;
        } else if (ib_chart_add(c, k, x, y, NULL, n, IB_CHART_LINES | IB_CHART_POINTS) != IB_OK) {
            fprintf(stderr, "ibnet plot: %s\n", ib_last_error());
            rc = 2;
        }
    }
    free(x);
    free(y);
    free_lines(lines, n);
    return rc;
}

static cJSON *read_object(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = ib_file_read(path, ((size_t)1 << 28) - 1, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsObject(o)) {
        fprintf(stderr, "ibnet plot: cannot read %s as a JSON object\n", path);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int by_x(const void *a, const void *b)
{
    double u = *(const double *)a, v = *(const double *)b;
    return (u > v) - (u < v);
}

/* One point per run: summary[ykey] against config[xkey] (or, when the
 * config has no such setting, summary[xkey]), sorted by x; with shade, each
 * point coloured by config[shade], on a log scale when it spans decades. */
static int sweep(char **runs, int n, const char *xkey, const char *ykeys, const char *shade, bool linear, ib_chart *c)
{
    double (*xy)[3] = malloc((size_t)n * sizeof *xy);
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y), *t = malloc((size_t)n * sizeof *t);
    if (!xy || !x || !y || !t) {
        free(xy);
        free(x);
        free(y);
        free(t);
        return 1;
    }
    char list[1100];
    snprintf(list, sizeof list, "%s", ykeys);
    int rc = 0;
    bool positive = true, s_positive = true;
    double lo = INFINITY, hi = -INFINITY, s_lo = INFINITY, s_hi = -INFINITY;
    for (char *k = strtok(list, ","); k && !rc; k = strtok(NULL, ",")) {
        for (int i = 0; i < n && !rc; i++) {
            cJSON *cfg = read_object(runs[i], "config.json"), *sum = cfg ? read_object(runs[i], "summary.json") : NULL;
            if (!sum)
                rc = 2;
            else {
                xy[i][0] = number(cfg, xkey);
                if (!isfinite(xy[i][0]))
                    xy[i][0] = number(sum, xkey);
                xy[i][1] = number(sum, k);
                xy[i][2] = shade ? number(cfg, shade) : 0;
                if (!isfinite(xy[i][0]) || !isfinite(xy[i][1])) {
                    fprintf(stderr, "ibnet plot: %s: no number '%s' in config.json or summary.json, or '%s' in "
                                    "summary.json\n",
                            runs[i], xkey, k);
                    rc = 2;
                } else if (!isfinite(xy[i][2])) {
                    fprintf(stderr, "ibnet plot: %s: no number '%s' (--shade) in config.json\n", runs[i], shade);
                    rc = 2;
                }
                s_positive = s_positive && xy[i][2] > 0;
                s_lo = fmin(s_lo, xy[i][2]);
                s_hi = fmax(s_hi, xy[i][2]);
                positive = positive && xy[i][0] > 0;
                lo = fmin(lo, xy[i][0]);
                hi = fmax(hi, xy[i][0]);
            }
            cJSON_Delete(cfg);
            cJSON_Delete(sum);
        }
        if (rc)
            break;
        qsort(xy, (size_t)n, sizeof *xy, by_x);
        /* shade over decades (beta 1e-4 .. 1) on a log scale */
        bool s_log = s_positive && s_hi >= 100 * s_lo;
        double a = s_log ? log10(s_lo) : s_lo, b = s_log ? log10(s_hi) : s_hi;
        for (int i = 0; i < n; i++) {
            x[i] = xy[i][0];
            y[i] = xy[i][1];
            double v = s_log ? log10(xy[i][2]) : xy[i][2];
            t[i] = b > a ? (v - a) / (b - a) : 1;
        }
        if (shade) {
            char label[200];
            snprintf(label, sizeof label, s_log ? "log10 %.180s" : "%.180s", shade);
            ib_chart_shade_label(c, label, a, b);
        }
        if (ib_chart_add(c, k, x, y, shade ? t : NULL, n, IB_CHART_LINES | IB_CHART_POINTS) != IB_OK) {
            fprintf(stderr, "ibnet plot: %s\n", ib_last_error());
            rc = 2;
        }
    }
    /* a sweep over decades (beta 1e-6 .. 1e-1) reads on a log axis */
    if (!rc && !linear && positive && hi >= 100 * lo)
        ib_chart_log_x(c, true);
    free(xy);
    free(x);
    free(y);
    free(t);
    return rc;
}

/* The non-empty bins of one reliability array ("reliability" or
 * "mean_path_reliability" of ibnet eval --json) as points (conf, acc),
 * shaded by their count; 0 bins when the key is absent, -1 when malformed. */
static int bins_of(const cJSON *o, const char *key, double *x, double *y, double *count)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a)
        return 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > IB_CALIBRATION_BINS)
        return -1;
    int n = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, a)
    {
        double k = number(b, "count"), conf = number(b, "conf"), acc = number(b, "acc");
        if (!(k >= 0) || !(conf >= 0 && conf <= 1) || !(acc >= 0 && acc <= 1))
            return -1;
        if (k > 0) { /* an empty bin has no point */
            x[n] = conf;
            y[n] = acc;
            count[n++] = k;
        }
    }
    return n;
}

/* A file's series name: the directory of the checkpoint it evaluated
 * ("lenet-s1" of runs/x/lenet-s1/last.safetensors), else the file's name. */
static void label_of(const cJSON *o, const char *file, char *out, size_t len)
{
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");
    const char *p = cJSON_IsString(ck) ? ck->valuestring : file;
    const char *slash = strrchr(p, '/');
    if (cJSON_IsString(ck) && slash && slash > p) { /* the directory above the checkpoint */
        const char *d = slash;
        while (d > p && d[-1] != '/')
            d--;
        snprintf(out, len, "%.*s", (int)(slash - d), d);
    } else {
        snprintf(out, len, "%s", slash ? slash + 1 : p);
    }
}

/* One series per file (its averaged prediction), and with mean_path its
 * mean path where it differs (a stochastic network), each bin's point
 * shaded by its count, over the diagonal of perfect calibration. */
static int reliability(char **files, int n_files, bool mean_path, ib_chart *c)
{
    enum { B = IB_CALIBRATION_BINS };
    double diag[2] = {0, 1};
    if (ib_chart_add(c, "perfect calibration", diag, diag, NULL, 2, IB_CHART_LINES) != IB_OK)
        return 1;
    double x[2][B], y[2][B], k[2][B], shade[B], most = 0;
    cJSON **docs = calloc((size_t)n_files, sizeof *docs);
    if (!docs)
        return 1;
    int rc = 0;
    for (int f = 0; f < n_files && !rc; f++) { /* read all first: the shade scale is the largest bin of any */
        char *text = ib_file_read(files[f], (size_t)1 << 26, NULL);
        docs[f] = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!text || !cJSON_IsObject(docs[f])) {
            fprintf(stderr, "ibnet plot: cannot read %s as a JSON object\n", files[f]);
            rc = 2;
            break;
        }
        for (int m = 0; m < 2 && !rc; m++) {
            int n = bins_of(docs[f], m ? "mean_path_reliability" : "reliability", x[m], y[m], k[m]);
            if (n < 0 || (m == 0 && n == 0)) {
                fprintf(stderr, "ibnet plot: %s: %s reliability bins (is it the output of ibnet eval --json?)\n",
                        files[f], n < 0 ? "malformed" : "no");
                rc = 2;
            }
            for (int i = 0; i < n && (m == 0 || mean_path); i++) /* the bins drawn */
                most = fmax(most, k[m][i]);
        }
    }
    for (int f = 0; f < n_files && !rc; f++) {
        int n[2];
        for (int m = 0; m < 2; m++)
            n[m] = bins_of(docs[f], m ? "mean_path_reliability" : "reliability", x[m], y[m], k[m]);
        bool differs = mean_path && n[1] > 0 &&
                       (n[1] != n[0] || memcmp(x[0], x[1], sizeof(double) * (size_t)n[0]) ||
                        memcmp(y[0], y[1], sizeof(double) * (size_t)n[0]));
        for (int m = 0; m < (differs ? 2 : 1) && !rc; m++) {
            char name[160], label[100];
            label_of(docs[f], files[f], label, sizeof label);
            snprintf(name, sizeof name, "%s%s ECE %.4f", label, differs ? (m ? ", mean path," : ", average,") : "",
                     number(docs[f], m ? "mean_path_ece" : "ece"));
            for (int i = 0; i < n[m]; i++)
                shade[i] = most > 0 ? k[m][i] / most : 1;
            if (ib_chart_add(c, name, x[m], y[m], shade, n[m], IB_CHART_LINES | IB_CHART_POINTS) != IB_OK) {
                fprintf(stderr, "ibnet plot: %s\n", ib_last_error());
                rc = 2;
            }
        }
    }
    if (!rc)
        ib_chart_shade_label(c, "examples in the bin", 0, most);
    for (int f = 0; f < n_files; f++)
        cJSON_Delete(docs[f]);
    free(docs);
    return rc;
}

int ib_cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *layers = NULL, *keys = "train_loss,test_nll_avg", *xkey = "beta",
               *ykeys = "test_error_avg", *title = NULL,
               *shade = NULL;
    int64_t width = 900, height = 600;
    bool linear = false, mean_path = false;
    arg_spec specs[] = {
        {"--out", ARG_STRING, &out, "FILE[,FILE]", "where to write: .png or .svg by the extension, several comma-separated "
         "(required)", NULL, false},
        {"--width", ARG_INT, &width, "PX", "width in pixels (320..8000)", NULL, false},
        {"--height", ARG_INT, &height, "PX", "height in pixels (240..8000)", NULL, false},
        {"--title", ARG_STRING, &title, "TEXT", "the chart's title (default: the kind and the input)", NULL, false},
        {"--layers", ARG_STRING, &layers, "L1,L2,..", "plane: only these layers (default: every tracked layer)", NULL,
         false},
        {"--keys", ARG_STRING, &keys, "K1,K2,..", "curves: figures of metrics.jsonl (an array is summed)", NULL, false},
        {"--x", ARG_STRING, &xkey, "KEY", "sweep: the setting of config.json on the x axis (else a figure of "
         "summary.json)", NULL, false},
        {"--y", ARG_STRING, &ykeys, "K1,K2,..", "sweep: figures of summary.json on the y axis", NULL, false},
        {"--shade", ARG_STRING, &shade, "KEY", "sweep: colour the points by this setting of config.json", NULL,
         false},
        {"--linear-x", ARG_FLAG, &linear, NULL, "sweep: a linear x axis even over decades", NULL, false},
        {"--mean-path", ARG_FLAG, &mean_path, NULL, "reliability: the mean path's bins too, where they differ from the "
         "average's (a stochastic network)", NULL, false},
    };
    arg_parser p = {"plot", "ibnet plot plane|curves|sweep|reliability RUN.. --out FILE.png[,FILE.svg] [options]",
                    "Charts of runs as PNG or SVG (drawn with cairo).  'plane RUN' (or RUN/info.jsonl): the "
                    "information plane of ibnet train --track-info, I(X;T) against I(T;Y) in bits, one curve per "
                    "layer, points coloured by epoch.  'curves RUN' (or metrics.jsonl): figures against the epoch.  "
                    "'sweep RUN1 RUN2 ..': a summary.json figure against a config.json setting (or another "
                    "summary.json figure: --x test_ixz_upper_bits --y test_izy_lower_bits is the information plane "
                    "of a beta sweep), one point per run (a log axis when x spans decades).  'reliability EVAL.json "
                    "..': the reliability diagram of ibnet eval --json outputs (accuracy against confidence in 15 "
                    "bins, one series per file named by its checkpoint's directory; docs/robustness.md).  See "
                    "docs/information.md.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 2, 1 + MAX_RUNS, "KIND RUN"};
    char *pos[1 + MAX_RUNS];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    const char *kind = pos[0];
    bool is_plane = strcmp(kind, "plane") == 0, is_curves = strcmp(kind, "curves") == 0,
         is_sweep = strcmp(kind, "sweep") == 0, is_rel = strcmp(kind, "reliability") == 0;
    if (!is_plane && !is_curves && !is_sweep && !is_rel) {
        fprintf(stderr, "ibnet plot: unknown kind '%s' (plane, curves, sweep or reliability)\n", kind);
        return 2;
    }
    if (is_rel && n_pos - 1 > IB_CHART_MAX_SERIES / 2 - 1) {
        fprintf(stderr, "ibnet plot reliability: at most %d files, got %d\n", IB_CHART_MAX_SERIES / 2 - 1, n_pos - 1);
        return 2;
    }
    if (!is_sweep && !is_rel && n_pos != 2) {
        fprintf(stderr, "ibnet plot %s: one run directory or file, got %d\n", kind, n_pos - 1);
        return 2;
    }
    if (!out || !out[0]) {
        fprintf(stderr, "ibnet plot: --out FILE.png or FILE.svg is required\n");
        return 2;
    }
    if (!ib_chart_available()) {
        fprintf(stderr, "ibnet plot: unavailable: %s\n", ib_chart_unavailable_reason());
        return 2;
    }
    char auto_title[600];
    snprintf(auto_title, sizeof auto_title, "%s: %.500s%s",
             is_plane ? "information plane" : is_curves ? "training curves" : is_rel ? "reliability" : "sweep", pos[1],
             (is_sweep || is_rel) && n_pos > 2 ? " .." : "");
    ib_chart *c = is_plane    ? ib_chart_new(title ? title : auto_title, "I(X;T) (bits)", "I(T;Y) (bits)")
                  : is_curves ? ib_chart_new(title ? title : auto_title, "epoch", keys)
                  : is_rel    ? ib_chart_new(title ? title : auto_title, "confidence (mean of the bin)", "accuracy")
                              : ib_chart_new(title ? title : auto_title, xkey, ykeys);
    if (!c)
        return 1;
    rc = is_plane    ? plane(pos[1], layers, c)
         : is_curves ? curves(pos[1], keys, c)
         : is_rel    ? reliability(pos + 1, n_pos - 1, mean_path, c)
                     : sweep(pos + 1, n_pos - 1, xkey, ykeys, shade, linear, c);
    if (!rc)
        rc = save(c, out, width, height);
    ib_chart_free(c);
    return rc;
}
