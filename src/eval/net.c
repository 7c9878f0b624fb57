/*
 * net.c — ib_net_open: a training checkpoint opened as a runnable network.
 * The metadata (ib_checkpoint_meta) gives the model text, the input
 * normalisation and the run's evaluation settings; the model is rebuilt
 * into a fresh store, the weights (raw or the EMA average) are loaded and
 * verified, and a graph of the requested shape is compiled: forward only
 * for evaluation and prediction, or with input gradients for attacks.
 *
 * It lives in src/eval/ because its users are there (evaluation,
 * prediction, attacks) and it joins two rooms below it, src/io/ (the file)
 * and src/nn/ (the model), neither of which should include the other.
 *
 * Pixel input: the attack issue wants epsilon in pixel units whatever the
 * normalisation, so the normalisation can run inside the graph
 * (x_model = x * scale_c + shift_c with scale 1/std, shift -mean/std); the
 * gradient reaching the pixels then holds the 1/std factor by itself.
 */
#include "core/internal.h"
#include "io/safetensors.h"

struct ib_net {
    ib_net_options opt;
    ib_checkpoint_meta meta;
    ib_model *model;
    ib_params *params;
    ib_graph *g;
    ib_node *x, *y, *logits, *log_probs, *loss;
    ib_node *scale, *shift; /* per-channel normalisation in the graph (pixel input, STANDARDIZE) */
    ib_model_out out;
    ib_node *kl[IB_MAX_BOTTLENECKS];
    ib_node *noise[IB_MAX_BOTTLENECKS]; /* given_noise: one eps input per Gaussian bottleneck */
    int n_noise;
    ib_batcher_config bc; /* what the input node takes */
    bool used_ema, compiled;
    char path[1024];
};

ib_net_options ib_net_options_default(void)
{
    return (ib_net_options){.batch_size = 1};
}

/* The run's normalisation as an evaluation batcher takes it. */
static ib_batcher_config recorded_norm(const ib_checkpoint_meta *m, int64_t batch)
{
    ib_batcher_config bc = {.batch_size = batch, .norm = m->input_norm};
    for (int c = 0; c < m->channels && c < 4; c++) {
        bc.mean[c] = m->input_mean[c];
        bc.std[c] = m->input_std[c];
    }
    return bc;
}

/* x (pixels in [0, 1]) -> the model's input under the recorded normalisation. */
static ib_node *normalise_in_graph(ib_net *n, ib_node *x, int c)
{
    switch (n->meta.input_norm) {
    case IB_NORM_UNIT: return x;
    case IB_NORM_SYMMETRIC: return ib_affine(n->g, x, 2.0f, -1.0f);
    case IB_NORM_STANDARDIZE:
        n->scale = ib_input(n->g, "pixel_scale", 4, (int64_t[]){1, c, 1, 1});
        n->shift = ib_input(n->g, "pixel_shift", 4, (int64_t[]){1, c, 1, 1});
        return ib_add(n->g, ib_mul(n->g, x, n->scale), n->shift);
    }
    return NULL;
}

/* Does the file hold an EMA shadow (last.safetensors of a run with EMA)? */
static ib_status file_has_ema(const char *path, bool *has)
{
    ib__st_file f;
    ib_status s = ib__st_open(path, &f);
    *has = s == IB_OK && ib__st_meta(&f, "ema.updates") != NULL;
    ib__st_close(&f);
    return s;
}

/* Does the file hold the view2.* copy of a --separate-views run? */
static bool file_has_views(const char *path)
{
    ib__st_file f;
    bool has = false;
    if (ib__st_open(path, &f) == IB_OK)
        for (int i = 0; i < f.n_tensors && !has; i++)
            has = strncmp(f.tensors[i].name, "view", 4) == 0 && f.tensors[i].name[4] >= '2' &&
                  f.tensors[i].name[4] <= '9' && f.tensors[i].name[5] == '.';
    ib__st_close(&f);
    return has;
}

/* A checkpoint with a network per view: the one network asked for (the
 * run's model, or its scoped copy) takes its tensors, every one of them,
 * and the other views' are left in the file. */
static ib_status load_one_view(ib_net *n, bool want_ema)
{
    ib_checkpoint_partial_options po = {.use_ema = want_ema, .skip_checksums = n->opt.skip_checksums};
    ib_checkpoint_partial r;
    ib_status s = ib_checkpoint_load_partial(n->path, n->params, &po, &r);
    if (s != IB_OK && n->opt.scope && n->opt.scope[0]) {
        char why[512];
        snprintf(why, sizeof why, "%s", ib_last_error()); /* not formatted into the buffer it is read from */
        s = ib__error(s, "%s; no weights of the copy %s (was the run trained with --separate-views?)", why,
                      n->opt.scope);
    }
    if (s == IB_OK && r.n_kept > 0)
        s = ib__error(IB_ERR_MISMATCH, "%s holds no weights for %d of the %d tensors of %s%s%s", n->path, r.n_kept,
                      r.n_params, n->opt.scope ? "the copy " : "the model", n->opt.scope ? n->opt.scope : "",
                      n->opt.scope ? " (was the run trained with --separate-views?)" : "");
    n->used_ema = s == IB_OK && r.n_loaded_ema > 0;
    ib_checkpoint_partial_free(&r);
    return s;
}

static ib_status load_weights(ib_net *n)
{
    ib_checkpoint_load_options lo = {.skip_checksums = n->opt.skip_checksums};
    bool has_ema = false;
    ib_status s = file_has_ema(n->path, &has_ema);
    if (s != IB_OK)
        return s;
    bool want = n->opt.weights == IB_NET_WEIGHTS_EMA ||
                (n->opt.weights == IB_NET_WEIGHTS_DEFAULT && has_ema && n->meta.ema_decay > 0);
    if ((n->opt.scope && n->opt.scope[0]) || file_has_views(n->path)) {
        if (want && (!has_ema || !(n->meta.ema_decay > 0)))
            return ib__error(IB_ERR_MISMATCH, "%s holds no EMA average; open it with the raw weights", n->path);
        return load_one_view(n, want);
    }
    if (!want)
        return ib_checkpoint_load_opts(n->path, n->params, NULL, NULL, NULL, &lo);
    if (!has_ema || !(n->meta.ema_decay > 0))
        return ib__error(IB_ERR_MISMATCH, "%s holds no EMA average (best.safetensors holds the weights that were "
                         "evaluated, the EMA ones if the run used an EMA); open it with the raw weights", n->path);
    ib_ema *ema = ib_ema_new(n->params, n->meta.ema_decay, n->meta.ema_zero_debias);
    if (!ema)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", n->path);
    s = ib_checkpoint_load_opts(n->path, n->params, NULL, ema, NULL, &lo);
    if (s == IB_OK)
        s = ib_ema_swap(ema); /* the averaged weights into the store */
    n->used_ema = s == IB_OK;
    ib_ema_free(ema);
    return s;
}

/* given_noise: an input node per Gaussian bottleneck, shaped as its sample.
 * Its rows are the rows reaching it (B, times S) times the particles of
 * every layer up to and including it; the structured listing gives both,
 * so no kind is named. */
static ib_status add_noise_inputs(ib_net *n, int64_t rows)
{
    int nb = ib_model_bottleneck_count(n->model), b = 0;
    for (int i = 0, items = ib_model_layer_count(n->model); i < items && b < nb; i++) {
        ib_model_layer_info L;
        ib_status s = ib_model_layer(n->model, i, &L);
        if (s != IB_OK)
            return s;
        double particles;
        if (ib_model_layer_option_value(n->model, i, "particles", &particles) == IB_OK)
            rows *= (int64_t)particles;
        if (!L.bottleneck)
            continue;
        int64_t shape[4] = {rows, 0, 0, 0};
        int nd = ib_model_bottleneck_shape(n->model, b, shape + 1);
        char name[IB_NAME_MAX];
        snprintf(name, sizeof name, "noise.%s", L.name);
        n->noise[b++] = ib_input(n->g, name, nd + 1, shape);
    }
    n->n_noise = b;
    return b == nb ? ib_graph_status(n->g) : ib__error(IB_ERR_STATE, "%s: %d of %d bottlenecks found", n->path, b, nb);
}

/* The graph: input (pixels or normalised), optional S-fold repeat, the
 * model, log-probabilities and, for input gradients, labels and a loss. */
static ib_status build(ib_net *n)
{
    int c, h, w;
    ib_model_input_shape(n->model, &c, &h, &w);
    int64_t B = n->opt.batch_size;
    int S = n->opt.samples;
    n->g = ib_graph_new(n->params);
    if (!n->g)
        return ib__error(IB_ERR_NOMEM, "%s: out of memory", n->path);
    n->x = ib_input(n->g, "x", 4, (int64_t[]){B, c, h, w});
    /* Labels right after the input, as in the trainer's evaluation graph:
     * noise is keyed by node id, so the same ids draw the same noise and
     * `ibnet eval` reproduces the run's sampled figures. */
    n->y = ib_input_labels(n->g, "y", B);
    if (n->opt.input_grad)
        ib_node_set_requires_grad(n->x, true);
    ib_node *xm = n->opt.input == IB_NET_INPUT_PIXELS ? normalise_in_graph(n, n->x, c) : n->x;
    if (S >= 1)
        xm = ib_repeat(n->g, xm, S);
    ib_status s = n->opt.given_noise ? add_noise_inputs(n, B * (S >= 1 ? S : 1)) : IB_OK;
    if (s == IB_OK)
        s = xm ? ib_model_build_scoped(n->model, n->g, n->opt.scope, xm, n->opt.given_noise ? n->noise : NULL, &n->out)
               : ib_graph_status(n->g);
    if (s != IB_OK)
        return ib__error(s, "%s: %s", n->path, ib_graph_error(n->g));
    n->logits = ib_node_keep(n->out.logits); /* read after forward even when something consumes it */
    int classes = (int)ib_node_dim(n->logits, 1);
    ib_node *lp = ib_log_softmax(n->g, n->logits);
    if (S >= 1)
        lp = ib_logmeanexp(n->g, ib_reshape(n->g, lp, 3, (int64_t[]){B, S, classes}), 1);
    n->log_probs = lp;
    for (int l = 0; l < n->out.n_bottlenecks; l++)
        n->kl[l] = n->out.bn[l].kl;
    if (n->opt.input_grad) {
        /* log_probs are normalised, so their cross-entropy is -log_probs[y] */
        n->loss = ib_cross_entropy(n->g, S >= 1 ? n->log_probs : n->logits, n->y, 0.0f);
        ib_graph_set_param_grads(n->g, false);
    } else {
        s = ib_graph_set_forward_only(n->g, true); /* activations share memory */
    }
    if (s == IB_OK)
        s = ib_graph_status(n->g);
    return s == IB_OK ? IB_OK : ib__error(s, "%s: %s", n->path, ib_graph_error(n->g));
}

ib_status ib_net_compile(ib_net *n)
{
    if (!n || n->compiled)
        return ib__error(n ? IB_ERR_STATE : IB_ERR_ARG, "ib_net_compile: %s", n ? "already compiled" : "no network");
    ib_status s = ib_graph_compile(n->g);
    if (s != IB_OK)
        return ib__error(s, "%s: %s", n->path, ib_last_error());
    if (n->scale) {
        float *sc = ib_node_data(n->scale), *sh = ib_node_data(n->shift);
        for (int64_t c = 0; c < ib_node_numel(n->scale); c++) {
            sc[c] = 1.0f / n->meta.input_std[c];
            sh[c] = -n->meta.input_mean[c] / n->meta.input_std[c];
        }
    }
    ib_graph_set_training(n->g, false);
    ib_graph_set_sampling(n->g, !n->opt.mean_path);
    ib_graph_set_seed(n->g, ib_net_eval_seed(n));
    n->compiled = true;
    return IB_OK;
}

ib_status ib_net_open(const char *path, const ib_net_options *o, ib_net **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_net_open: no output pointer");
    *out = NULL;
    ib_net_options opt = o ? *o : ib_net_options_default();
    if (!path || !*path)
        return ib__error(IB_ERR_ARG, "ib_net_open: no path");
    if (opt.batch_size < 1 || opt.samples < 0 || opt.samples > 100000 || (unsigned)opt.weights > IB_NET_WEIGHTS_EMA ||
        (unsigned)opt.input > IB_NET_INPUT_PIXELS)
        return ib__error(IB_ERR_ARG, "ib_net_open(%s): batch_size must be >= 1, samples in 0..100000, and weights and "
                         "input known values", path);
    if (strlen(path) >= sizeof ((ib_net *)0)->path)
        return ib__error(IB_ERR_ARG, "ib_net_open: path of %zu bytes is too long", strlen(path));
    ib_net *n = calloc(1, sizeof *n);
    if (!n)
        return ib__error(IB_ERR_NOMEM, "ib_net_open: out of memory");
    n->opt = opt;
    snprintf(n->path, sizeof n->path, "%s", path);
    ib_status s = ib_checkpoint_meta_read(path, &n->meta);
    if (s == IB_OK)
        s = ib_model_parse(n->meta.model_text, path, &n->model);
    if (s == IB_OK) {
        int c, h, w;
        ib_model_input_shape(n->model, &c, &h, &w);
        if (n->meta.input_norm == IB_NORM_STANDARDIZE && n->meta.channels < c)
            s = ib__error(IB_ERR_FORMAT, "%s: the metadata records the normalisation of %d channel(s), the model "
                          "takes %d", path, n->meta.channels, c);
    }
    if (s == IB_OK) {
        n->bc = recorded_norm(&n->meta, opt.batch_size);
        if (opt.input == IB_NET_INPUT_PIXELS)
            n->bc = (ib_batcher_config){.batch_size = opt.batch_size, .norm = IB_NORM_UNIT};
        n->params = ib_params_new(0);
        s = n->params ? build(n) : ib__error(IB_ERR_NOMEM, "%s: out of memory", path);
    }
    if (s == IB_OK)
        s = load_weights(n); /* the store is complete once the model is built */
    if (s == IB_OK && !opt.defer_compile)
        s = ib_net_compile(n);
    if (s != IB_OK) {
        ib_net_close(n);
        return s;
    }
    *out = n;
    return IB_OK;
}

void ib_net_close(ib_net *n)
{
    if (!n)
        return;
    ib_graph_free(n->g);
    ib_params_free(n->params);
    ib_model_free(n->model);
    ib_checkpoint_meta_free(&n->meta);
    free(n);
}

ib_graph *ib_net_graph(ib_net *n) { return n ? n->g : NULL; }
ib_params *ib_net_params(ib_net *n) { return n ? n->params : NULL; }
const ib_model *ib_net_model(const ib_net *n) { return n ? n->model : NULL; }
ib_node *ib_net_input(ib_net *n) { return n ? n->x : NULL; }
ib_node *ib_net_logits(ib_net *n) { return n ? n->logits : NULL; }
ib_node *ib_net_log_probs(ib_net *n) { return n ? n->log_probs : NULL; }
ib_node *ib_net_labels(ib_net *n) { return n ? n->y : NULL; }
ib_node *ib_net_loss(ib_net *n) { return n ? n->loss : NULL; }
const ib_model_out *ib_net_outputs(const ib_net *n) { return n ? &n->out : NULL; }
ib_node *const *ib_net_kl(const ib_net *n) { return n ? n->kl : NULL; }
int ib_net_noise_count(const ib_net *n) { return n ? n->n_noise : 0; }
ib_node *ib_net_noise(ib_net *n, int i) { return n && i >= 0 && i < n->n_noise ? n->noise[i] : NULL; }
const ib_checkpoint_meta *ib_net_meta(const ib_net *n) { return n ? &n->meta : NULL; }
const ib_batcher_config *ib_net_batcher_config(const ib_net *n) { return n ? &n->bc : NULL; }
uint64_t ib_net_eval_seed(const ib_net *n) { return n ? n->meta.seed ^ IB_EVAL_SEED_SALT : 0; }
int ib_net_eval_samples(const ib_net *n) { return n ? n->meta.eval_samples : 0; }
bool ib_net_used_ema(const ib_net *n) { return n && n->used_ema; }
