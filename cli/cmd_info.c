/*
 * cmd_info.c — `ibnet info CHECKPOINT`: mutual information of a trained
 * network's layers.  For each layer T named by --layers it reports
 * I(X;T) and I(T;Y) over a data set (by default the test split of the
 * run's), with one estimator: binning or KDE on the layer's activations
 * (ib_net_activations), a critic between the input and the layer and
 * between the layer and the labels, or the variational bounds a Gaussian
 * bottleneck carries itself (ib_net_variational).  Every value is printed
 * with its kind (upper bound, lower bound, estimate), n and settings, as
 * `ibnet mi` prints them.
 */
#include "args.h"
#include "commands.h"
#include "ibnet.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_LAYERS = 64, MAX_RESULTS = 2 * IB_MAX_BOTTLENECKS };

/* Bad input or settings are the user's (2); memory or numeric trouble
 * while running is a failure (1). */
static int code_of(ib_status s)
{
    return s == IB_ERR_NOMEM || s == IB_ERR_NUMERIC ? 1 : 2;
}

static int emit(const char *layer, int64_t dims, const ib_mi_result *r, bool json)
{
    if (!json) {
        printf("  ");
        ib_cli_mi_print(r);
        return 0;
    }
    char *j = ib_mi_result_json(r);
    if (!j) {
        fprintf(stderr, "ibnet info: out of memory\n");
        return 1;
    }
    printf("{\"layer\":\"%s\",\"dims\":%lld,%s\n", layer, (long long)dims, j + 1); /* j starts with '{' */
    free(j);
    return 0;
}

/* The run's evaluation batch size (500 when the file does not say): the
 * sampled noise is keyed per batch, so with it the variational decoder
 * bound draws the run's noise and reproduces its test figure. */
static int64_t run_eval_batch(const char *path)
{
    int64_t b = 500;
    ib_checkpoint_meta m;
    if (ib_checkpoint_meta_read(path, &m) != IB_OK)
        return b; /* ib_net_open reports the problem */
    cJSON *c = m.config_json ? cJSON_Parse(m.config_json) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, "eval_batch_size");
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 100000)
        b = (int64_t)v->valuedouble;
    cJSON_Delete(c);
    ib_checkpoint_meta_free(&m);
    return b;
}

/* Split "a,b,c" in place into names; -1 when there are more than MAX_LAYERS. */
static int split_layers(char *list, const char **names)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        if (*tok) {
            if (n == MAX_LAYERS)
                return -1;
            names[n++] = tok;
        }
    return n;
}

/* One layer: I(X;T) and I(T;Y) (or their sweeps).  x is the input as fed
 * (critics only: binning and KDE take I(X;T) from T alone). */
static int layer_info(const ib_activations *a, int k, const ib_mi_var *x, const ib_mi_options *o, bool sweep,
                      bool json)
{
    ib_mi_var t = ib_activations_var(a, k), y = ib_activations_var(a, -1);
    if (!json)
        printf("layer %s (%lld values per example%s%s)\n", a->names[k], (long long)a->dims[k],
               strcmp(a->names[k], a->nodes[k]) ? ", node " : "", strcmp(a->names[k], a->nodes[k]) ? a->nodes[k] : "");
    for (int q = 0; q < 2; q++) {
        const ib_mi_var *first = q == 0 ? (x ? x : &t) : &t, *second = q == 0 ? (x ? &t : NULL) : &y;
        ib_mi_result r[16];
        int count = 1;
        ib_status s = sweep ? ib_mi_sweep(first, second, o, r, 16, &count) : ib_mi_estimate(first, second, o, r);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet info: layer %s: %s\n", a->names[k], ib_last_error());
            return code_of(s);
        }
        for (int j = 0; j < count; j++) {
            snprintf(r[j].quantity, sizeof r[j].quantity, "%s", q == 0 ? "I(X;T)" : "I(T;Y)");
            int rc = emit(a->names[k], a->dims[k], &r[j], json);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* The variational bounds of the bottlenecks named (all when none is). */
static int variational(ib_net *n, const ib_dataset *d, const char **names, int n_names, int64_t limit, int samples,
                       uint64_t seed, bool json)
{
    const ib_model_out *mo = ib_net_outputs(n);
    int which[MAX_LAYERS];
    for (int k = 0; k < n_names; k++) {
        which[k] = -1;
        for (int l = 0; l < mo->n_bottlenecks; l++)
            if (strcmp(names[k], mo->bn_name[l]) == 0)
                which[k] = l;
        if (which[k] < 0) {
            fprintf(stderr, "ibnet info: layer '%s' is not a Gaussian bottleneck; the variational bounds exist for ",
                    names[k]);
            for (int l = 0; l < mo->n_bottlenecks; l++)
                fprintf(stderr, "%s%s", l ? ", " : "", mo->bn_name[l]);
            fprintf(stderr, "%s\n", mo->n_bottlenecks ? "" : "none of this model's layers (use binning, kde or a critic)");
            return 2;
        }
    }
    ib_mi_result r[MAX_RESULTS];
    int count = 0;
    ib_status s = ib_net_variational(n, d, limit, samples, seed, r, MAX_RESULTS, &count);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet info: %s\n", ib_last_error());
        return code_of(s);
    }
    for (int k = 0; k < (n_names ? n_names : mo->n_bottlenecks); k++) {
        int l = n_names ? which[k] : k;
        /* the bottleneck's width: its mu node's columns (a cell's C*H*W) */
        int64_t dims = ib_node_numel(mo->bn[l].mu) / ib_node_dim(mo->bn[l].mu, 0);
        if (!json)
            printf("layer %s (Gaussian bottleneck, %lld values per example)\n", mo->bn_name[l], (long long)dims);
        for (int q = 0; q < 2; q++) {
            int rc = emit(mo->bn_name[l], dims, &r[2 * l + q], json);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int ib_cmd_info(int argc, char **argv)
{
    const char *layers_arg = NULL, *spec = "binning:30", *dataset = NULL, *data = NULL, *split = "test";
    const char *grid_prefix = NULL;
    int64_t limit = 0, seed = -1, seeds = 0, steps = 0, samples = 0, batch = 0, threads = 0;
    bool sweep = false, json = false, sample = false, no_ema = false, skip_hash = false, no_verify = false;
    arg_spec specs[] = {
        {"--layers", ARG_STRING, &layers_arg, "L1,L2", "layers (graph nodes named as the layer: fc1, layer1.2, "
         "vib, vib.mu; x is the input) (default: the Gaussian bottlenecks)", NULL, false},
        {"--estimator", ARG_STRING, &spec, "SPEC", "binning:BINS, binning:BINS:LO:HI, binning:width=W, kde:SIGMA2, "
         "kde-lower:SIGMA2, infonce, nwj, mine, variational, decoder[:CHANNELS[:LAYERS[:LEVELS]]]", NULL, false},
        {"--limit", ARG_INT, &limit, "N", "the first N examples only (KDE is O(N^2))", NULL, false},
        {"--sweep", ARG_FLAG, &sweep, NULL, "binning over 10..100 bins, kde over sigma^2 1e-3..1", NULL, false},
        {"--seed", ARG_INT, &seed, "N", "seed of the critics; for variational, of the sampled noise (default: 0; "
         "the run's evaluation seed)", NULL, false},
        {"--seeds", ARG_INT, &seeds, "N", "critics: independent critics, mean and spread reported (default: 1, 3 "
         "for mine)", NULL, false},
        {"--steps", ARG_INT, &steps, "N", "critics and decoders: training steps (default: 1500; decoder 1000)",
         NULL, false},
        {"--sample-grid", ARG_STRING, &grid_prefix, "PREFIX", "decoder: write PREFIX-LAYER.png, rows of a held-out "
         "image and samples of x given its layer", NULL, false},
        {"--samples", ARG_INT, &samples, "S", "variational: samples per example (default: the run's, 12)", NULL,
         false},
        {"--sample", ARG_FLAG, &sample, NULL, "stochastic layers take one draw of their noise (default: the mean "
         "path, z = mu)", NULL, false},
        {"--dataset", ARG_STRING, &dataset, "SPEC", "data set: mnist, fashion-mnist, cifar10, cifar100, idx:DIR or "
         "folder:ROOT (default: the one the model was trained on)", NULL, false},
        {"--data", ARG_STRING, &data, "DIR", "where the data set lives", NULL, false},
        {"--split", ARG_STRING, &split, "SPLIT", "which split", "test|train", false},
        {"--batch-size", ARG_INT, &batch, "N", "batch size of the forward passes (default: the run's evaluation batch size)",
         NULL, false},
        {"--no-ema", ARG_FLAG, &no_ema, NULL, "use the raw weights even if the file holds an EMA average", NULL,
         false},
        {"--no-hash", ARG_FLAG, &skip_hash, NULL, "skip the sha256 check of the data files", NULL, false},
        {"--no-verify", ARG_FLAG, &no_verify, NULL, "skip the checksums of the checkpoint's tensors", NULL, false},
        {"--threads", ARG_INT, &threads, "N", "threads", NULL, false},
        {"--json", ARG_FLAG, &json, NULL, "one JSON object per line (layer, dims, estimator, quantity, nats, bits, "
         "kind, n, settings)", NULL, false},
    };
    arg_parser p = {"info", "ibnet info CHECKPOINT [--layers L1,L2] [--estimator SPEC] [options]",
                    "Mutual information of a trained network's layers: for each layer T, I(X;T) and I(T;Y) over a "
                    "data set.  Binning and KDE take T's activations (I(X;T) from T alone, T a function of distinct "
                    "inputs), the critics are trained between the input and T and between T and the labels, and "
                    "'variational' gives a Gaussian bottleneck's own bounds: the rate E[KL] >= I(X;Z) and "
                    "H(Y) - E[-log q(y|z)] <= I(Z;Y), H(Y) the labels' entropy.  'decoder' trains PixelCNN decoders of "
                    "the binarised image, one given each layer and one unconditional, on half the examples: "
                    "I(X;T) ~ H(X) - H(X|T) from their held-out NLLs (an estimate).  See docs/information.md.",
                    specs, (int)(sizeof specs / sizeof specs[0]), 1, 1, "CHECKPOINT"};
    char *pos[1];
    int n_pos = 0;
    int rc = args_parse(&p, argc, argv, pos, &n_pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    ib_mi_options o;
    if (ib_mi_parse(spec, &o) != IB_OK) {
        fprintf(stderr, "ibnet info: %s\n", ib_last_error());
        return 2;
    }
    if (limit < 0 || seed < -1 || seeds < 0 || seeds > 1000 || steps < 0 || steps > 100000000 || samples < 0 ||
        samples > 1000 || batch < 0 || batch > 100000) {
        fprintf(stderr, "ibnet info: --limit, --seed, --seeds (<= 1000), --steps and --samples (<= 1000) must be >= 0, "
                        "--batch-size in 1..100000\n");
        return 2;
    }
    bool critic = o.method == IB_MI_INFONCE || o.method == IB_MI_NWJ || o.method == IB_MI_MINE;
    if (grid_prefix && o.method != IB_MI_DECODER) {
        fprintf(stderr, "ibnet info: --sample-grid is for the decoder estimator\n");
        return 2;
    }
    if (sweep && o.method != IB_MI_BINNING && o.method != IB_MI_KDE && o.method != IB_MI_KDE_LOWER) {
        fprintf(stderr, "ibnet info: --sweep is for binning (bins 10..100) and kde (sigma^2 1e-3..1), not %s\n",
                ib_mi_method_name(o.method));
        return 2;
    }
    o.seed = seed >= 0 ? (uint64_t)seed : 0;
    if (seeds > 0)
        o.seeds = (int)seeds;
    if (steps > 0)
        o.steps = (int)steps;
    char layer_buf[4096] = "";
    const char *names[MAX_LAYERS + 1];
    int n_names = 0;
    if (layers_arg) {
        if (strlen(layers_arg) >= sizeof layer_buf) {
            fprintf(stderr, "ibnet info: --layers is too long\n");
            return 2;
        }
        snprintf(layer_buf, sizeof layer_buf, "%s", layers_arg);
        n_names = split_layers(layer_buf, names);
        if (n_names <= 0) {
            fprintf(stderr, "ibnet info: --layers names %s\n", n_names ? "more than 64 layers" : "no layer");
            return 2;
        }
    }
    if (threads > 0)
        ib_set_threads((int)threads);
    ib_net_options no = ib_net_options_default();
    no.batch_size = batch ? batch : run_eval_batch(pos[0]);
    no.weights = no_ema ? IB_NET_WEIGHTS_RAW : IB_NET_WEIGHTS_DEFAULT;
    no.skip_checksums = no_verify;
    no.mean_path = !sample;
    no.defer_compile = true; /* layers are kept before the graph shares their memory */
    ib_net *n = NULL;
    if (ib_net_open(pos[0], &no, &n) != IB_OK) {
        fprintf(stderr, "ibnet info: %s\n", ib_last_error());
        return 2;
    }
    const ib_model_out *mo = ib_net_outputs(n);
    if (!layers_arg && o.method != IB_MI_VARIATIONAL) {
        for (int l = 0; l < mo->n_bottlenecks; l++)
            names[n_names++] = mo->bn_name[l];
        if (n_names == 0) {
            fprintf(stderr, "ibnet info: %s has no Gaussian bottleneck: name the layers with --layers (e.g. "
                            "--layers fc1,fc2; 'ibnet models --layers MODEL' lists a model's layers)\n", pos[0]);
            ib_net_close(n);
            return 2;
        }
    }
    ib_load_options lo = {.skip_hash = skip_hash};
    ib_dataset *d = NULL;
    ib_status s = ib_dataset_open(dataset ? dataset : ib_net_meta(n)->dataset, split, data, &lo, &d);
    if (s != IB_OK) {
        fprintf(stderr, "ibnet info: %s\n", ib_last_error());
        ib_net_close(n);
        return 2;
    }
    if (o.method == IB_MI_DECODER && d->c != 1) {
        fprintf(stderr, "ibnet info: the decoder models binarised images of one channel; %s has %d channels\n",
                d->name, d->c);
        ib_dataset_free(d);
        ib_net_close(n);
        return 2;
    }
    if (!json)
        printf("%s on %s/%s (%lld examples)%s, %s\n", pos[0], d->name, split,
               (long long)(limit > 0 && limit < d->n ? limit : d->n), ib_net_used_ema(n) ? ", EMA weights" : "",
               sample ? "one draw of the noise" : "mean path");
    if (o.method == IB_MI_VARIATIONAL) {
        rc = variational(n, d, names, n_names, limit, (int)samples,
                         seed >= 0 ? (uint64_t)seed : ib_net_eval_seed(n), json);
    } else {
        if (critic)
            names[n_names] = "x"; /* the input, for the critics' I(X;T) */
        ib_activations a;
        s = ib_net_activations(n, d, names, n_names + (critic ? 1 : 0), limit, !sample, &a);
        if (s != IB_OK) {
            fprintf(stderr, "ibnet info: %s\n", ib_last_error());
            rc = code_of(s);
        } else {
            ib_mi_var x = ib_activations_var(&a, n_names);
            if (o.method == IB_MI_DECODER)
                rc = ib_cli_info_decoder(n, d, &a, &o, grid_prefix, json);
            for (int k = 0; k < n_names && rc == 0 && o.method != IB_MI_DECODER; k++)
                rc = layer_info(&a, k, critic ? &x : NULL, &o, sweep, json);
            ib_activations_free(&a);
        }
    }
    ib_dataset_free(d);
    ib_net_close(n);
    return rc;
}
