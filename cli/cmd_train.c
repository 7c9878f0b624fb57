/*
 * cmd_train.c — `ibnet train`: one experiment from the command line.  With
 * no options it trains Deep VIB on MNIST (the paper's recipe, 10 epochs)
 * and prints the test accuracy.  Every user error is reported before any
 * time is spent training (exit code 2); a failure during training exits 1.
 */
#include "args.h"
#include "json_number.h"
#include "commands.h"
#include "ibnet.h"
#include "signals.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile int stop_flag; /* set by the first SIGINT/SIGTERM: see signals.h */

typedef struct ui {
    bool tty, quiet, json;
    bool started;
    char banner[1024]; /* printed when training starts, after every check passed */
    char warning[1024]; /* printed then (or by --dry-run) even with --quiet or --json */
} ui;

/* --dry-run: what one training step of the model costs, on stderr (stdout
 * holds the configuration).  With particles the paths multiply, so the
 * training graph (forward, backward, the model's plain CE) is built and
 * sized here rather than left to surprise the run; every model gets the
 * figure so that a particle model can be set beside its one-path twin. */
static void report_paths(const ib_train_config *c)
{
    ib_model *m = NULL;
    if (ib_model_load(c->model, &m) != IB_OK)
        return;
    int64_t paths = ib_model_paths(m);
    int ch, h, w;
    ib_model_input_shape(m, &ch, &h, &w);
    ib_params *p = ib_params_new(c->seed);
    ib_graph *g = p ? ib_graph_new(p) : NULL;
    ib_node *x = g ? ib_input(g, "x", 4, (int64_t[]){c->batch_size, ch, h, w}) : NULL;
    ib_model_out mo;
    size_t bytes = 0;
    if (x && ib_model_build(m, g, x, NULL, &mo) == IB_OK &&
        ib_cross_entropy(g, mo.logits, ib_input_labels(g, "y", c->batch_size), 0.0f) &&
        ib_graph_compile(g) == IB_OK)
        bytes = ib_graph_memory(g);
    if (paths > 1)
        fprintf(stderr, "ibnet train: %s has %lld particle paths per example: a batch of %lld runs %lld rows after "
                        "its last stochastic layer; training graph memory %.1f MiB (without the method's terms)\n",
                c->model, (long long)paths, (long long)c->batch_size, (long long)(paths * c->batch_size),
                (double)bytes / (1 << 20));
    else
        fprintf(stderr, "ibnet train: %s: 1 path per example; training graph memory %.1f MiB for a batch of %lld "
                        "(without the method's terms)\n",
                c->model, (double)bytes / (1 << 20), (long long)c->batch_size);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
}

/* The EMA averages weights only.  By default the library recomputes the
 * batch-norm statistics for the averaged weights before each evaluation
 * (--ema-bn-batches, src/train/ema_bn.c); with --ema-bn-batches 0 the
 * evaluation and the checkpoints pair the averaged weights with the
 * statistics of the last step, which on runs shorter than a few times the
 * average's horizon 1 / (1 - decay) can sit near chance (docs/checkpoints.md,
 * "The EMA and batch norm"): then the user is told. */
static void warn_ema_batchnorm(const ib_train_config *c, char *buf, size_t len)
{
    ib_model *m = NULL;
    buf[0] = 0;
    if (c->ema_decay <= 0 || c->ema_bn_batches > 0 || ib_model_load(c->model, &m) != IB_OK)
        return;
    bool bn = false;
    for (int i = 0; i < ib_model_layer_count(m) && !bn; i++) {
        ib_model_layer_info info;
        if (ib_model_layer(m, i, &info) != IB_OK)
            continue;
        for (int j = 0; j < info.n_tensors && !bn; j++) {
            ib_model_tensor t;
            size_t n;
            bn = ib_model_layer_tensor(m, i, j, &t) == IB_OK && !t.trainable && (n = strlen(t.name)) >= 12 &&
                 strcmp(t.name + n - 12, "running_mean") == 0;
        }
    }
    ib_model_free(m);
    if (bn)
        snprintf(buf, len,
                "ibnet train: warning: %.200s has batch norm, and --ema %g with --ema-bn-batches 0 pairs the "
                "averaged weights with the batch-norm statistics of the last step in evaluation and the "
                "checkpoints, which on runs shorter than about %.0f steps (10 / (1 - decay)) can evaluate near "
                "chance: leave --ema-bn-batches on, or use --ema 0 (docs/checkpoints.md)",
                c->model, (double)c->ema_decay, 10.0 / (1.0 - (double)c->ema_decay));
}

static void start(ui *u)
{
    if (!u->started && !u->quiet && !u->json && u->banner[0])
        fprintf(stderr, "%s\n", u->banner);
    if (!u->started && u->warning[0])
        fprintf(stderr, "%s\n", u->warning);
    u->started = true;
}

static void fmt_time(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        s = 0;
    long t = (long)s;
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* The method's terms beyond the CE and KL the line already shows (VUB's
 * entropy, a second view's agreement...), as "  name value". */
static bool term_shown_apart(const char *name)
{
    return !strcmp(name, "ce") || (name[0] == 'k' && name[1] == 'l' && name[2] >= '0' && name[2] <= '9');
}

static void on_progress(void *ctx, const ib_train_progress *p)
{
    ui *u = ctx;
    start(u);
    if (!u->tty || u->quiet || u->json)
        return;
    if (p->batch != p->batches && p->batch % 10 != 0)
        return;
    int width = 24, fill = (int)(width * p->batch / p->batches);
    char bar[32], eta[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fmt_time(p->eta_s, eta, sizeof eta);
    fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %3d%%  %6.0f samples/s  loss %.4f  ce %.4f  kl %.3g",
            (long long)p->epoch, (long long)p->epochs, bar, (int)(100 * p->batch / p->batches), p->samples_per_s,
            p->loss, p->ce, p->kl_total);
    for (int t = 0; t < p->n_terms; t++)
        if (!term_shown_apart(p->term_name[t]))
            fprintf(stderr, "  %s %.4g", p->term_name[t], p->term[t]);
    fprintf(stderr, "  eta %s", eta);
    fflush(stderr);
}

static void on_note(void *ctx, const char *text)
{
    ui *u = ctx;
    if (!u->quiet && !u->json)
        fprintf(stderr, "%s\n", text);
}

static void on_epoch(void *ctx, const ib_epoch_report *r)
{
    ui *u = ctx;
    start(u);
    if (u->json) {
        printf("{\"epoch\": %lld, \"step\": %lld, \"seconds\": %.3f", (long long)r->epoch, (long long)r->step,
               r->seconds);
        ib_cli_json_member(stdout, "lr", "%.6g", (double)r->lr);
        ib_cli_json_member(stdout, "train_loss", "%.6g", r->loss);
        ib_cli_json_member(stdout, "train_ce", "%.6g", r->ce);
        printf(", \"train_terms\": {");
        for (int t = 0; t < r->n_terms; t++) {
            printf("%s\"%s\": ", t ? ", " : "", r->term_name[t]);
            ib_cli_json_number(stdout, "%.6g", r->term[t]);
        }
        printf("}");
        if (r->evaluated) {
            ib_cli_json_member(stdout, "test_acc_avg", "%.6g", r->test.acc_avg);
            ib_cli_json_member(stdout, "test_acc_1shot", "%.6g", r->test.acc_1shot);
            ib_cli_json_member(stdout, "test_acc_mean", "%.6g", r->test.acc_mean);
            ib_cli_json_member(stdout, "test_nll_avg", "%.6g", r->test.nll_avg);
        }
        printf("}\n");
        fflush(stdout);
        return;
    }
    if (u->quiet)
        return;
    if (u->tty)
        fprintf(stderr, "\r\033[K");
    double kl = 0;
    for (int l = 0; l < r->n_kl; l++)
        kl += r->kl[l];
    printf("epoch %3lld/%lld  %5.1fs  %6.0f samples/s  lr %.3g  loss %.4f  ce %.4f", (long long)r->epoch,
           (long long)r->epochs, r->seconds, r->samples_per_s, (double)r->lr, r->loss, r->ce);
    if (r->n_kl)
        printf("  kl %.2f nats", kl);
    for (int t = 0; t < r->n_terms; t++)
        if (!term_shown_apart(r->term_name[t]))
            printf("  %s %.4g", r->term_name[t], r->term[t]);
    if (r->noisy_fit >= 0)
        printf("  noisy-fit %.1f%%", 100 * r->noisy_fit);
    if (r->evaluated) {
        if (r->has_val)
            printf("  | val %.2f%%", 100 * r->val.acc_avg);
        if (r->n_kl)
            printf("  | test %.2f%% (1-shot %.2f%%, mean %.2f%%)", 100 * r->test.acc_avg, 100 * r->test.acc_1shot,
                   100 * r->test.acc_mean);
        else
            printf("  | test %.2f%%", 100 * r->test.acc_avg);
    }
    printf("\n");
    fflush(stdout);
}

/* A file-name-safe short form of a model or data set name: the last path
 * component with anything but letters, digits, '.', '_' and '-' replaced. */
static void safe_name(const char *s, char *out, size_t len)
{
    const char *base = strrchr(s, '/');
    if (base && base[1])
        s = base + 1;
    size_t k = 0;
    for (; *s && k + 1 < len; s++)
        out[k++] = (isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-') ? *s : '_';
    out[k] = 0;
}

/* Six hex digits naming the settings of c (FNV-1a of its config.json
 * without the directories), so that runs of a sweep started side by side
 * with different settings get different default directories.  Runs with
 * the same settings may still pick the same name at the same moment: the
 * run directory's lock then stops the second one (exit 2). */
static unsigned settings_hash(const ib_train_config *c)
{
    ib_train_config k = *c;
    k.out_dir[0] = 0;
    k.data_dir[0] = 0;
    char *text = ib_train_config_to_json(&k);
    uint32_t h = 2166136261u;
    for (const char *p = text ? text : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    free(text);
    return (unsigned)((h ^ (h >> 24)) & 0xffffffu);
}

/* The thread count the run in dir recorded (config.json's provenance);
 * 0 when it recorded none. */
static int recorded_threads(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = ib_file_read(path, (size_t)1 << 22, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "provenance");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "threads");
    int n = cJSON_IsNumber(t) && t->valuedouble >= 1 && t->valuedouble <= IB_MAX_THREADS ? (int)t->valuedouble : 0;
    cJSON_Delete(o);
    return n;
}

/* "a|b|c" from a NULL-terminated name table (the configuration's own). */
static void join_names(const char *const *names, char *out, size_t len)
{
    out[0] = 0;
    for (int k = 0; names[k]; k++) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", k ? "|" : "", names[k]);
    }
}

/* Flags that go with --resume: the rest are settings, and a resumed run
 * keeps the settings it was started with (its config.json). */
static bool applies_to_resume(const char *flag)
{
    static const char *const ok[] = {"--resume", "--epochs", "--threads", "--quiet", "--json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(flag, ok[i]) == 0)
            return true;
    return false;
}

enum { MAX_FIELDS = 96, MAX_RECIPES = 16 };

int ib_cmd_train(int argc, char **argv)
{
    ib_train_config c = ib_train_config_default();
    const char *resume = NULL, *recipe = NULL, *config = NULL;
    int64_t threads = 0;
    bool quiet = false, json = false, dry_run = false;
    char recipes[256];
    const char *recipe_names[MAX_RECIPES + 1] = {NULL};
    for (int i = 0; i < MAX_RECIPES && ib_train_recipe_name(i); i++)
        recipe_names[i] = ib_train_recipe_name(i);
    join_names(recipe_names, recipes, sizeof recipes);

    /* The flags of the settings come from the configuration's own table
     * (src/train/config.c): name, help, choices and default; a new setting
     * there is a new flag here.  Only the flags that are not settings are
     * written out in this file. */
    arg_spec specs[MAX_FIELDS + 8];
    int n = 0;
    specs[n++] = (arg_spec){"--recipe", ARG_STRING, &recipe, "NAME",
                            "start from a paper's set-up (docs/results.md; flags given here override it)", recipes, 0};
    specs[n++] = (arg_spec){"--config", ARG_STRING, &config, "FILE",
                            "start from a config.json (flags given here override it)", NULL, 0};
    specs[n++] = (arg_spec){"--resume", ARG_STRING, &resume, "DIR",
                            "continue the run in DIR from its last checkpoint (with its settings; --epochs may raise "
                            "the epochs)", NULL, 0};
    specs[n++] = (arg_spec){"--threads", ARG_INT, &threads, "N", "threads (0: IBNET_THREADS, else all cores)", NULL, 0};
    static ib_config_field fd[MAX_FIELDS];
    static char choices[MAX_FIELDS][256];
    const char *text[MAX_FIELDS] = {NULL};
    bool on[MAX_FIELDS] = {false};
    int spec_of[MAX_FIELDS], n_fields = 0;
    for (; ib_train_config_field(n_fields, &fd[n_fields]); n_fields++) {
        int i = n_fields;
        spec_of[i] = -1;
        if (!fd[i].flag[0])
            continue;
        if (fd[i].choices)
            join_names(fd[i].choices, choices[i], sizeof choices[i]);
        spec_of[i] = n;
        bool b = fd[i].type == IB_CONFIG_BOOL;
        /* help shows a value flag's target: the default until a flag is given
         * (only the flags given are applied below) */
        if (fd[i].shown[0])
            text[i] = fd[i].shown;
        specs[n++] = (arg_spec){fd[i].flag, b ? ARG_FLAG : ARG_STRING, b ? (void *)&on[i] : (void *)&text[i],
                                fd[i].metavar, fd[i].help, fd[i].choices ? choices[i] : NULL, 0};
        if (n_fields + 1 == MAX_FIELDS) {
            fprintf(stderr, "ibnet train: internal error: more than %d settings (raise MAX_FIELDS)\n", MAX_FIELDS);
            return 1;
        }
    }
    specs[n++] = (arg_spec){"--quiet", ARG_FLAG, &quiet, NULL, "print only the final result", NULL, 0};
    specs[n++] = (arg_spec){"--json", ARG_FLAG, &json, NULL, "print one JSON object per epoch and a JSON summary",
                            NULL, 0};
    specs[n++] = (arg_spec){"--dry-run", ARG_FLAG, &dry_run, NULL,
                            "check the options and print the resolved configuration (config.json) without training",
                            NULL, 0};
    arg_parser p = {"train", "ibnet train [options]",
                    "Train an information-bottleneck network. With no options: Deep VIB (K = 256, beta = 1e-3) on\n"
                    "MNIST with the paper's recipe for 10 epochs, then print the test accuracy.\n"
                    "SIGINT (Ctrl-C) or SIGTERM stops after the current step, saves the run and exits with 3\n"
                    "(continue with --resume DIR); a second signal exits at once, keeping the last checkpoint.\n"
                    "A NaN or infinite loss exits with 1; another run holding the directory, with 2.",
                    specs, n, 0, 0, NULL};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (threads < 0 || threads > IB_MAX_THREADS) {
        fprintf(stderr, "ibnet train: --threads must be in 0..%d (0: IBNET_THREADS, else all cores), got %lld\n",
                IB_MAX_THREADS, (long long)threads);
        return 2;
    }
    ib_cli_stop_signals_install(&stop_flag); /* before any thread exists */
    if (threads > 0)
        ib_set_threads((int)threads);
    else
        ib_get_threads();
    bool rank0 = ib_dist_rank() == 0; /* a data-parallel run: rank 0 alone prints */
    ui u = {.tty = isatty(2) != 0, .quiet = quiet || !rank0, .json = json && rank0};
    ib_train_callbacks cb = {&u, on_progress, on_epoch, &stop_flag, on_note};

    if (resume && dry_run) {
        fprintf(stderr, "ibnet train: --dry-run checks a new run's options; a resumed run's are in %s/config.json\n",
                resume);
        return 2;
    }
    if (resume) {
        for (int i = 0; i < n; i++)
            if (specs[i].seen && !applies_to_resume(specs[i].name)) {
                fprintf(stderr,
                        "ibnet train: %s cannot be given with --resume: a run continues with the settings in its "
                        "config.json (--resume takes only --epochs, --threads, --quiet and --json)\n",
                        specs[i].name);
                return 2;
            }
        if (strlen(resume) >= sizeof c.out_dir) {
            fprintf(stderr, "ibnet train: --resume: the path is %zu bytes long; at most %zu are supported\n",
                    strlen(resume), sizeof c.out_dir - 1);
            return 2;
        }
        /* said when training starts (the banner), after every check passed */
        int was = recorded_threads(resume);
        if (was > 0 && was != ib_get_threads())
            snprintf(u.banner, sizeof u.banner,
                     "ibnet train: warning: %.300s was trained with %d threads and continues with %d; sums are then "
                     "taken in another order and the weights may differ in the last bits from an uninterrupted run "
                     "(--threads %d keeps them)",
                     resume, was, ib_get_threads(), was);
        /* the settings a resume takes (--epochs): parsed and checked like a new run's */
        for (int i = 0; i < n_fields; i++)
            if (spec_of[i] >= 0 && specs[spec_of[i]].seen && ib_train_config_set(&c, fd[i].flag, text[i]) != IB_OK) {
                fprintf(stderr, "ibnet train: %s\n", ib_last_error());
                return 2;
            }
        ib_status s = ib_train_resume(resume, args_seen(&p, "--epochs") ? c.epochs : 0, &cb);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet train: %s\n", ib_last_error());
            return u.started || s == IB_ERR_NUMERIC ? 1 : 2; /* a NaN loss is a runtime failure, even on step 1 */
        }
        goto finished_resume;
    }
    if (config && recipe) {
        fprintf(stderr, "ibnet train: --recipe and --config both give a starting configuration; use one\n");
        return 2;
    }
    if (recipe && ib_train_config_recipe(recipe, &c) != IB_OK) {
        fprintf(stderr, "ibnet train: %s\n", ib_last_error());
        return 2;
    }
    if (config) {
        char *text_json = ib_file_read(config, (size_t)1 << 22, NULL);
        if (!text_json) {
            fprintf(stderr, "ibnet train: cannot read config file %s\n", config);
            return 2;
        }
        ib_status s = ib_train_config_from_json(text_json, &c);
        free(text_json);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet train: %s: %s\n", config, ib_last_error());
            return 2;
        }
    }
    /* The flags given override the defaults (or the recipe, or the config
     * file), in the table's order: an --optimizer resets the weight decay
     * before a --weight-decay given with it is set. */
    for (int i = 0; i < n_fields; i++) {
        if (spec_of[i] < 0 || !specs[spec_of[i]].seen)
            continue;
        const char *v = fd[i].type != IB_CONFIG_BOOL ? text[i] : fd[i].flag_clears ? "false" : "true";
        if (ib_train_config_set(&c, fd[i].flag, v) != IB_OK) {
            fprintf(stderr, "ibnet train: %s\n", ib_last_error());
            return 2;
        }
    }
    /* imb: --betas gives every layer's beta, --beta one spread over the
     * layers by depth; given both (a recipe's or config's --betas counts),
     * one would go unread */
    if (strcmp(c.method, "imb") == 0 && c.objective.n_betas > 0 &&
        (args_seen(&p, "--beta") || args_seen(&p, "--beta-schedule") || args_seen(&p, "--beta-ratio"))) {
        fprintf(stderr, "ibnet train: --objective imb: --betas%s gives every layer's beta; --beta, --beta-schedule and "
                        "--beta-ratio spread one beta over the layers by depth: use one or the other\n",
                args_seen(&p, "--betas") ? "" : recipe ? " (set by the recipe)" : " (set by the config)");
        return 2;
    }
    c.schedule.total = (double)c.epochs;
    if (!args_seen(&p, "--out")) {
        char m[64], d[64];
        safe_name(c.model, m, sizeof m);
        safe_name(c.dataset, d, sizeof d);
        snprintf(c.out_dir, sizeof c.out_dir, "runs/%s%s-%s-s%llu-%06x", m, c.vib_cells_after[0] ? "-cells" : "", d,
                 (unsigned long long)c.seed, settings_hash(&c));
        /* a default directory never collides with an earlier run: -2, -3, ... */
        size_t base_len = strlen(c.out_dir);
        struct stat st;
        for (int k = 2; stat(c.out_dir, &st) == 0 && k < 10000; k++)
            snprintf(c.out_dir + base_len, sizeof c.out_dir - base_len, "-%d", k);
    }
    ib_status s = ib_train_config_check(&c);
    if (s == IB_OK && c.vib_cells_after[0]) {
        /* A wrong layer name is found here, before any data is read. */
        ib_model *base = NULL, *cells = NULL;
        s = ib_model_load(c.model, &base);
        if (s == IB_OK)
            s = ib_model_add_cells(base, c.vib_cells_after, &cells);
        ib_model_free(cells);
        ib_model_free(base);
    }
    if (s != IB_OK) {
        fprintf(stderr, "ibnet train: %s\n", ib_last_error());
        return 2;
    }
    if (ib_dist_rank() == 0)
        warn_ema_batchnorm(&c, u.warning, sizeof u.warning);
    char ranks[64] = "";
    if (ib_dist_size() > 1)
        snprintf(ranks, sizeof ranks, " x %d ranks", ib_dist_size());
    snprintf(u.banner, sizeof u.banner, "ibnet train: %.200s on %.200s, %lld epochs, batch %lld, seed %llu, %d threads%s -> %.300s",
             c.model, c.dataset, (long long)c.epochs, (long long)c.batch_size, (unsigned long long)c.seed,
             ib_get_threads(), ranks, c.out_dir);
    if (dry_run) {
        char *text = ib_train_config_to_json(&c);
        if (!text) {
            fprintf(stderr, "ibnet train: out of memory\n");
            return 2;
        }
        printf("%s\n", text);
        fflush(stdout); /* the configuration before report_paths' stderr line */
        free(text);
        if (u.warning[0])
            fprintf(stderr, "%s\n", u.warning);
        report_paths(&c);
        return 0;
    }
    s = ib_train(&c, &cb);
    if (s != IB_OK) {
        if (u.tty && !quiet)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "ibnet train: %s\n", ib_last_error());
        return u.started || s == IB_ERR_NUMERIC ? 1 : 2; /* a NaN loss is a runtime failure, even on step 1 */
    }
    resume = c.out_dir;
finished_resume:;
    if (!rank0)
        return stop_flag ? IB_CLI_EXIT_STOPPED : 0;
    /* Print the summary the run wrote. */
    char path[1100];
    snprintf(path, sizeof path, "%s/summary.json", resume);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        if (json) {
            printf("%s\n", buf);
        } else {
            const char *k = strstr(buf, "\"test_acc_avg\"");
            double acc = k ? atof(strchr(k, ':') + 1) : NAN;
            printf("test accuracy %.2f%% (error %.2f%%); run directory %s\n", 100 * acc, 100 * (1 - acc), resume);
        }
    }
    if (stop_flag) {
        fprintf(stderr, "ibnet train: stopped by %s; the run is saved, continue with: ibnet train --resume %s\n",
                ib_cli_stop_signal_name(), resume);
        return IB_CLI_EXIT_STOPPED;
    }
    return 0;
}
