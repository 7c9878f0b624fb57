/*
 * cmd_train.c — `ibnet train`: one experiment from the command line.  With
 * no options it trains Deep VIB on MNIST (the paper's recipe, 10 epochs)
 * and prints the test accuracy.  Every user error is reported before any
 * time is spent training (exit code 2); a failure during training exits 1.
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile int stop_flag;
static void on_sigint(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct ui {
    bool tty, quiet, json;
    bool started;
    char banner[1024]; /* printed when training starts, after every check passed */
} ui;

static void start(ui *u)
{
    if (!u->started && !u->quiet && !u->json && u->banner[0])
        fprintf(stderr, "%s\n", u->banner);
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

static void on_epoch(void *ctx, const ib_epoch_report *r)
{
    ui *u = ctx;
    start(u);
    if (u->json) {
        printf("{\"epoch\": %lld, \"step\": %lld, \"seconds\": %.3f, \"lr\": %.6g, \"train_loss\": %.6g, "
               "\"train_ce\": %.6g",
               (long long)r->epoch, (long long)r->step, r->seconds, (double)r->lr, r->loss, r->ce);
        printf(", \"train_terms\": {");
        for (int t = 0; t < r->n_terms; t++)
            printf("%s\"%s\": %.6g", t ? ", " : "", r->term_name[t], r->term[t]);
        printf("}");
        if (r->evaluated)
            printf(", \"test_acc_avg\": %.6g, \"test_acc_1shot\": %.6g, \"test_acc_mean\": %.6g, \"test_nll_avg\": %.6g",
                   r->test.acc_avg, r->test.acc_1shot, r->test.acc_mean, r->test.nll_avg);
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

/* "0.1,0.01" -> values; false on a malformed list. */
static bool parse_list(const char *s, double *out, int max, int *n)
{
    *n = 0;
    while (s && *s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || !isfinite(v) || *n >= max)
            return false;
        out[(*n)++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return false;
    }
    return true;
}

/* Flag values of enum options are mapped through the configuration's own
 * name tables (the parser has checked them against the flag's choices; a
 * choice the table lacks is reported, not mapped to a default). */
static const char *unknown_enum;

static int config_enum(const char *key, const char *name)
{
    int v = ib_train_config_enum(key, name);
    if (v < 0) {
        unknown_enum = name;
        return 0;
    }
    return v;
}

int ib_cmd_train(int argc, char **argv)
{
    ib_train_config c = ib_train_config_default();
    const char *model = "vib-mlp", *dataset = "mnist", *data = NULL, *out = NULL, *resume = NULL;
    const char *optimizer = "adam", *schedule = "step", *beta_schedule = "linear", *norm = "symmetric";
    const char *init = "model", *cells_after = "";
    const char *noise_kind = "symmetric", *betas = NULL, *milestones = NULL, *config = NULL;
    const char *recipe = NULL;
    int64_t epochs = c.epochs, batch = c.batch_size, eval_batch = c.eval_batch_size, threads = 0, eval_samples = 12;
    int64_t seed = (int64_t)c.seed, val_size = 0, train_limit = 0, test_limit = 0, max_steps = 0, eval_every = 1;
    double lr = c.schedule.lr, momentum = 0.9, weight_decay = 0, beta1 = c.optim.beta1, beta2 = c.optim.beta2;
    double lr_gamma = c.schedule.gamma, lr_every = c.schedule.every, warmup = 0, beta = c.objective.beta;
    double beta_ratio = 0.5, label_smoothing = 0, entropy_weight = 0, entropy_cap = 0, ema = c.ema_decay;
    double noise = 0, clip = 0, lr_min = 0;
    bool nesterov = false, kl_per_element = false, augment = false, skip_hash = false, quiet = false, json = false;
    bool dry_run = false;
    bool no_debias = false;
    arg_spec specs[] = {
        {"--model", ARG_STRING, &model, "NAME|FILE", "built-in model or description file (see 'ibnet models')", NULL, 0},
        {"--vib-cells-after", ARG_STRING, &cells_after, "L1,L2,..", "add a VIB cell after each named layer or group (layer1,layer2.1; GROUP.* = after each layer in GROUP)", NULL, 0},
        {"--init", ARG_STRING, &init, "STYLE", "initialise linear/conv layers as the model file says, or as PyTorch, Glorot (TF, Deep VIB's code) or He", "model|pytorch|glorot|kaiming", 0},
        {"--dataset", ARG_STRING, &dataset, "NAME", "mnist, fashion-mnist, cifar10, cifar100, idx:DIR or folder:ROOT", NULL, 0},
        {"--data", ARG_STRING, &data, "DIR", "where the data set lives (else IBNET_DATA, ./data, ../shared/data)", NULL, 0},
        {"--out", ARG_STRING, &out, "DIR", "run directory (default runs/<model>-<dataset>-s<seed>, -2, -3... if taken)", NULL, 0},
        {"--resume", ARG_STRING, &resume, "DIR", "continue the run in DIR from its last checkpoint", NULL, 0},
        {"--recipe", ARG_STRING, &recipe, "NAME", "start from a paper's set-up (docs/results.md; flags given here override it)", "deep-vib|cifar-resnet|cellvib-mnist", 0},
        {"--config", ARG_STRING, &config, "FILE", "start from a config.json (flags given here override it)", NULL, 0},
        {"--epochs", ARG_INT, &epochs, "N", "training epochs (the Deep VIB paper: 200)", NULL, 0},
        {"--batch-size", ARG_INT, &batch, "N", "training batch size", NULL, 0},
        {"--eval-batch-size", ARG_INT, &eval_batch, "N", "evaluation batch size", NULL, 0},
        {"--seed", ARG_INT, &seed, "N", "seed of every random choice", NULL, 0},
        {"--threads", ARG_INT, &threads, "N", "threads (else IBNET_THREADS, else all cores)", NULL, 0},
        {"--optimizer", ARG_STRING, &optimizer, "NAME", "optimizer", "sgd|adam|adamw", 0},
        {"--lr", ARG_FLOAT, &lr, "X", "learning rate", NULL, 0},
        {"--momentum", ARG_FLOAT, &momentum, "X", "SGD momentum", NULL, 0},
        {"--nesterov", ARG_FLAG, &nesterov, NULL, "SGD with Nesterov momentum", NULL, 0},
        {"--weight-decay", ARG_FLOAT, &weight_decay, "X", "weight decay (decoupled for adamw)", NULL, 0},
        {"--adam-beta1", ARG_FLOAT, &beta1, "X", "Adam beta1 (Deep VIB: 0.5)", NULL, 0},
        {"--adam-beta2", ARG_FLOAT, &beta2, "X", "Adam beta2", NULL, 0},
        {"--clip-grad-norm", ARG_FLOAT, &clip, "X", "clip the global gradient norm (0 = off)", NULL, 0},
        {"--schedule", ARG_STRING, &schedule, "NAME", "learning-rate schedule", "constant|step|exponential|multistep|cosine", 0},
        {"--lr-gamma", ARG_FLOAT, &lr_gamma, "X", "decay factor of step/exponential/multistep", NULL, 0},
        {"--lr-every", ARG_FLOAT, &lr_every, "EPOCHS", "decay period of step/exponential", NULL, 0},
        {"--lr-milestones", ARG_STRING, &milestones, "E1,E2", "epochs of multistep decay", NULL, 0},
        {"--lr-min", ARG_FLOAT, &lr_min, "X", "final learning rate of cosine", NULL, 0},
        {"--warmup", ARG_FLOAT, &warmup, "EPOCHS", "linear warm-up", NULL, 0},
        {"--beta", ARG_FLOAT, &beta, "X", "compression weight beta of the KL terms", NULL, 0},
        {"--betas", ARG_STRING, &betas, "B1,B2,..", "explicit beta per bottleneck, in depth order", NULL, 0},
        {"--beta-schedule", ARG_STRING, &beta_schedule, "NAME", "beta over cells by depth", "equal|linear|geometric", 0},
        {"--beta-ratio", ARG_FLOAT, &beta_ratio, "X", "ratio of the geometric beta schedule", NULL, 0},
        {"--kl-per-element", ARG_FLAG, &kl_per_element, NULL, "average each KL over its elements instead of summing", NULL, 0},
        {"--label-smoothing", ARG_FLOAT, &label_smoothing, "X", "label smoothing of the cross-entropy", NULL, 0},
        {"--entropy-weight", ARG_FLOAT, &entropy_weight, "X", "VUB/SVIB entropy bonus weight (VUB: 1)", NULL, 0},
        {"--entropy-cap", ARG_FLOAT, &entropy_cap, "X", "VUB's cap H_max of the entropy bonus (0 = none)", NULL, 0},
        {"--ema", ARG_FLOAT, &ema, "DECAY", "EMA of the weights used for evaluation (0 = off)", NULL, 0},
        {"--no-ema-debias", ARG_FLAG, &no_debias, NULL, "EMA without zero-debiasing", NULL, 0},
        {"--eval-samples", ARG_INT, &eval_samples, "S", "samples averaged at evaluation", NULL, 0},
        {"--eval-every", ARG_INT, &eval_every, "N", "evaluate every N epochs", NULL, 0},
        {"--val-size", ARG_INT, &val_size, "N", "hold out the last N training examples for model selection", NULL, 0},
        {"--input-norm", ARG_STRING, &norm, "NAME", "input scaling", "unit|symmetric|standardize", 0},
        {"--augment", ARG_FLAG, &augment, NULL, "random crop (pad 4) and horizontal flip", NULL, 0},
        {"--label-noise", ARG_FLOAT, &noise, "RATE", "corrupt this fraction of training labels", NULL, 0},
        {"--noise-kind", ARG_STRING, &noise_kind, "KIND", "label noise", "symmetric|pair|pair-cifar10|pair-next", 0},
        {"--no-hash", ARG_FLAG, &skip_hash, NULL, "skip the sha256 check of the data files", NULL, 0},
        {"--train-limit", ARG_INT, &train_limit, "N", "use only the first N training examples", NULL, 0},
        {"--test-limit", ARG_INT, &test_limit, "N", "evaluate on the first N test examples", NULL, 0},
        {"--max-steps", ARG_INT, &max_steps, "N", "stop after N optimizer steps", NULL, 0},
        {"--quiet", ARG_FLAG, &quiet, NULL, "print only the final result", NULL, 0},
        {"--json", ARG_FLAG, &json, NULL, "print one JSON object per epoch and a JSON summary", NULL, 0},
        {"--dry-run", ARG_FLAG, &dry_run, NULL, "check the options and print the resolved configuration (config.json) "
         "without training", NULL, 0},
    };
    arg_parser p = {"train", "ibnet train [options]",
                    "Train an information-bottleneck network. With no options: Deep VIB (K = 256, beta = 1e-3) on\n"
                    "MNIST with the paper's recipe for 10 epochs, then print the test accuracy.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 0, 0, NULL};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (threads < 0) {
        fprintf(stderr, "ibnet train: --threads must be >= 0\n");
        return 2;
    }
    if (threads > 0)
        ib_set_threads((int)threads);
    else
        ib_get_threads();
    ui u = {isatty(2) != 0, quiet, json, false, ""};
    ib_train_callbacks cb = {&u, on_progress, on_epoch, &stop_flag};
    signal(SIGINT, on_sigint);

    if (resume && dry_run) {
        fprintf(stderr, "ibnet train: --dry-run checks a new run's options; a resumed run's are in %s/config.json\n",
                resume);
        return 2;
    }
    if (resume) {
        ib_status s = ib_train_resume(resume, args_seen(&p, "--epochs") ? epochs : 0, &cb);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet train: %s\n", ib_last_error());
            return u.started ? 1 : 2;
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
        FILE *f = fopen(config, "rb");
        char *text = NULL;
        long n = 0;
        if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1L << 22) && fseek(f, 0, SEEK_SET) == 0) {
            text = malloc((size_t)n + 1);
            if (text && fread(text, 1, (size_t)n, f) == (size_t)n)
                text[n] = 0;
            else {
                free(text);
                text = NULL;
            }
        }
        if (f)
            fclose(f);
        if (!text) {
            fprintf(stderr, "ibnet train: cannot read config file %s\n", config);
            return 2;
        }
        ib_status s = ib_train_config_from_json(text, &c);
        free(text);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet train: %s: %s\n", config, ib_last_error());
            return 2;
        }
    }
    /* Flags given on the command line override the defaults (or the recipe,
     * or the config file: then only the flags given count). */
    const bool based = config || recipe;
#define SET(flag, stmt)                                                                                                \
    if (!based || args_seen(&p, flag)) {                                                                               \
        stmt;                                                                                                          \
    }
    SET("--model", snprintf(c.model, sizeof c.model, "%s", model));
    SET("--vib-cells-after", snprintf(c.vib_cells_after, sizeof c.vib_cells_after, "%s", cells_after));
    if (strlen(cells_after) >= sizeof c.vib_cells_after) {
        fprintf(stderr, "ibnet train: --vib-cells-after: the list is longer than %zu characters\n",
                sizeof c.vib_cells_after - 1);
        return 2;
    }
    SET("--init", c.init = config_enum("init", init));
    SET("--dataset", snprintf(c.dataset, sizeof c.dataset, "%s", dataset));
    if (data)
        snprintf(c.data_dir, sizeof c.data_dir, "%s", data);
    SET("--epochs", c.epochs = epochs);
    SET("--batch-size", c.batch_size = batch);
    SET("--eval-batch-size", c.eval_batch_size = eval_batch);
    SET("--seed", c.seed = (uint64_t)seed);
    if (!based || args_seen(&p, "--optimizer")) {
        ib_optim_kind k = (ib_optim_kind)config_enum("optimizer", optimizer);
        if (k != c.optim.kind || args_seen(&p, "--optimizer")) {
            float b1 = c.optim.beta1;
            c.optim = ib_optim_defaults(k);
            if (k != IB_OPTIM_SGD)
                c.optim.beta1 = b1;
        }
    }
    SET("--momentum", c.optim.momentum = (float)momentum);
    if (c.optim.kind == IB_OPTIM_SGD && !args_seen(&p, "--momentum") && !based)
        c.optim.momentum = (float)momentum;
    SET("--nesterov", c.optim.nesterov = nesterov);
    SET("--weight-decay", if (args_seen(&p, "--weight-decay") || c.optim.kind != IB_OPTIM_ADAMW) c.optim.weight_decay =
                              (float)weight_decay);
    SET("--adam-beta1", c.optim.beta1 = (float)beta1);
    SET("--adam-beta2", c.optim.beta2 = (float)beta2);
    SET("--clip-grad-norm", c.optim.clip_grad_norm = (float)clip);
    SET("--schedule", c.schedule.kind = (ib_schedule_kind)config_enum("schedule", schedule));
    SET("--lr", c.schedule.lr = (float)lr);
    SET("--lr-gamma", c.schedule.gamma = (float)lr_gamma);
    SET("--lr-every", c.schedule.every = lr_every);
    SET("--lr-min", c.schedule.min_lr = (float)lr_min);
    SET("--warmup", c.schedule.warmup = warmup);
    c.schedule.total = (double)c.epochs;
    if (milestones) {
        double v[8];
        int n = 0;
        if (!parse_list(milestones, v, 8, &n)) {
            fprintf(stderr, "ibnet train: --lr-milestones expects up to 8 comma-separated epochs, got '%s'\n", milestones);
            return 2;
        }
        c.schedule.n_milestones = n;
        for (int k = 0; k < n; k++)
            c.schedule.milestones[k] = v[k];
    }
    c.optim.lr = c.schedule.lr;
    SET("--beta", c.objective.beta = (float)beta);
    if (betas) {
        double v[IB_MAX_BOTTLENECKS];
        int n = 0;
        if (!parse_list(betas, v, IB_MAX_BOTTLENECKS, &n) || n == 0) {
            fprintf(stderr, "ibnet train: --betas expects comma-separated numbers, got '%s'\n", betas);
            return 2;
        }
        c.objective.n_betas = n;
        for (int k = 0; k < n; k++)
            c.objective.betas[k] = (float)v[k];
    }
    SET("--beta-schedule", c.objective.schedule = (ib_beta_schedule)config_enum("beta_schedule", beta_schedule));
    SET("--beta-ratio", c.objective.ratio = (float)beta_ratio);
    SET("--kl-per-element", c.objective.kl_mean_per_element = kl_per_element);
    SET("--label-smoothing", c.objective.label_smoothing = (float)label_smoothing);
    SET("--entropy-weight", c.objective.entropy_weight = (float)entropy_weight);
    SET("--entropy-cap", c.objective.entropy_cap = (float)entropy_cap);
    SET("--ema", c.ema_decay = (float)ema);
    SET("--no-ema-debias", c.ema_zero_debias = !no_debias);
    SET("--eval-samples", c.eval_samples = (int)eval_samples);
    SET("--eval-every", c.eval_every = eval_every);
    SET("--val-size", c.val_size = val_size);
    if (!based || args_seen(&p, "--input-norm"))
        ib_input_norm_parse(norm, &c.norm);
    SET("--augment", c.augment = augment);
    if (args_seen(&p, "--label-noise")) {
        c.label_noise = noise > 0;
        c.noise_rate = (float)noise;
    }
    SET("--noise-kind", c.noise_kind = (ib_noise_kind)config_enum("noise_kind", noise_kind));
    SET("--no-hash", c.skip_hash = skip_hash);
    SET("--train-limit", c.train_limit = train_limit);
    SET("--test-limit", c.test_limit = test_limit);
    SET("--max-steps", c.max_steps = max_steps);
#undef SET
    if (unknown_enum) {
        fprintf(stderr, "ibnet train: '%s' is not a known setting\n", unknown_enum);
        return 2;
    }
    if (noise < 0 || noise > 1) {
        fprintf(stderr, "ibnet train: --label-noise must be in [0, 1], got %g\n", noise);
        return 2;
    }
    if (out)
        snprintf(c.out_dir, sizeof c.out_dir, "%s", out);
    else if (!config || !args_seen(&p, "--out")) {
        char m[64], d[64];
        safe_name(c.model, m, sizeof m);
        safe_name(c.dataset, d, sizeof d);
        snprintf(c.out_dir, sizeof c.out_dir, "runs/%s%s-%s-s%llu", m, c.vib_cells_after[0] ? "-cells" : "", d,
                 (unsigned long long)c.seed);
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
    snprintf(u.banner, sizeof u.banner, "ibnet train: %.200s on %.200s, %lld epochs, batch %lld, seed %llu, %d threads -> %.300s",
             c.model, c.dataset, (long long)c.epochs, (long long)c.batch_size, (unsigned long long)c.seed,
             ib_get_threads(), c.out_dir);
    if (dry_run) {
        char *text = ib_train_config_to_json(&c);
        if (!text) {
            fprintf(stderr, "ibnet train: out of memory\n");
            return 2;
        }
        printf("%s\n", text);
        free(text);
        return 0;
    }
    s = ib_train(&c, &cb);
    if (s != IB_OK) {
        if (u.tty && !quiet)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "ibnet train: %s\n", ib_last_error());
        return u.started ? 1 : 2;
    }
    resume = c.out_dir;
finished_resume:;
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
        fprintf(stderr, "ibnet train: interrupted; continue with: ibnet train --resume %s\n", resume);
        return 1;
    }
    return 0;
}
