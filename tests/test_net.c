/*
 * test_net.c — checkpoints opened by the library (ib_net_open) and their
 * metadata and checksums, on runs the test trains itself: a 4-class 8x8
 * blob data set written as IDX files and a tiny Deep VIB model.
 *
 * Checks that the opened network gives the run's own evaluation figures,
 * that EMA and raw weights are what the files hold, that the pixel-space
 * input equals the normalised one and its gradient matches finite
 * differences (also the S-sample EOT gradient), that the metadata module
 * reads what it writes and refuses damaged, foreign and newer blocks, and
 * that a flipped bit in a weight is "damaged checkpoint" while a file
 * without checksums still loads.
 */
#include "test.h"

#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

static char data_dir[1024], model_path[1024];

/* Two runs: A with the defaults (inputs in [-1, 1], EMA on), B with
 * per-channel standardisation and no EMA. */
static char run_a[1200], run_b[1200];

static void train_run(const char *dir, ib_input_norm norm, float ema)
{
    ib_train_config c = ib_train_config_default();
    snprintf(c.model, sizeof c.model, "%s", model_path);
    snprintf(c.dataset, sizeof c.dataset, "idx:%.1000s", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", dir);
    c.epochs = 2;
    c.batch_size = 50;
    c.eval_batch_size = 64; /* 200 test examples: a partial last batch */
    c.optim.lr = 1e-3f;
    c.norm = norm;
    c.ema_decay = ema;
    c.eval_samples = 5;
    c.seed = 11;
    CHECK_OK(ib_train(&c, NULL));
}

static void setup_once(void)
{
    ib_test_blob_dir("netblobs", 600, 200, 77, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("net-vib.ibm",
                       "model net-vib\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\n"
                       "linear 12 name=fc2\n"
                       "vib 6 shift=-5 name=vib\nlinear 4 name=decoder\n", model_path, sizeof model_path);
    snprintf(run_a, sizeof run_a, "%s/net-run-a", ib_test_tmpdir());
    snprintf(run_b, sizeof run_b, "%s/net-run-b", ib_test_tmpdir());
    train_run(run_a, IB_NORM_SYMMETRIC, 0.99f);
    train_run(run_b, IB_NORM_STANDARDIZE, 0.0f);
}

static const char *in_run(const char *run, const char *file)
{
    static char path[4][1400];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%.1200s/%.100s", run, file);
    return path[k];
}

static double json_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number \"%s\"", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static ib_net *open_net(const char *path, ib_net_options o)
{
    ib_net *n = NULL;
    CHECK_OK(ib_net_open(path, &o, &n));
    CHECK(n != NULL);
    return n;
}

static ib_dataset *test_set(void)
{
    char spec[1100];
    snprintf(spec, sizeof spec, "idx:%.1000s", data_dir);
    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_open(spec, "test", NULL, NULL, &d));
    return d;
}

static void evaluate_net(ib_net *n, const ib_dataset *d, ib_eval_result *r)
{
    CHECK_OK(ib_evaluate(ib_net_graph(n), ib_net_input(n), ib_net_logits(n), ib_net_outputs(n)->n_bottlenecks,
                         ib_net_kl(n), d, ib_net_batcher_config(n), ib_net_eval_samples(n), ib_net_eval_seed(n), r));
}

/* The evaluation network built by hand as the trainer builds it: input,
 * labels, model, forward only, weights (EMA swapped in) loaded after
 * compile.  ib_net_open must give exactly its figures (the noise is keyed
 * by node id, so the labels node matters). */
static void evaluate_by_hand(const char *path, const ib_dataset *d, ib_eval_result *r)
{
    ib_checkpoint_meta m;
    CHECK_OK(ib_checkpoint_meta_read(path, &m));
    ib_model *model = NULL;
    CHECK_OK(ib_model_parse(m.model_text, path, &model));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){64, 1, 8, 8});
    ib_input_labels(g, "y", 64);
    ib_model_out mo;
    CHECK_OK(ib_model_build(model, g, x, NULL, &mo));
    CHECK_OK(ib_graph_set_forward_only(g, true));
    CHECK_OK(ib_graph_compile(g));
    ib_graph_set_training(g, false);
    ib_ema *ema = m.ema_decay > 0 ? ib_ema_new(p, m.ema_decay, m.ema_zero_debias) : NULL;
    CHECK_OK(ib_checkpoint_load(path, p, NULL, ema, NULL));
    if (ema)
        CHECK_OK(ib_ema_swap(ema));
    ib_batcher_config bc = {.batch_size = 64, .norm = m.input_norm};
    for (int c = 0; c < m.channels; c++) {
        bc.mean[c] = m.input_mean[c];
        bc.std[c] = m.input_std[c];
    }
    ib_node *kl[IB_MAX_BOTTLENECKS];
    for (int l = 0; l < mo.n_bottlenecks; l++)
        kl[l] = mo.bn[l].kl;
    CHECK_OK(ib_evaluate(g, x, mo.logits, mo.n_bottlenecks, kl, d, &bc, m.eval_samples, m.seed ^ IB_EVAL_SEED_SALT, r));
    ib_ema_free(ema);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(model);
    ib_checkpoint_meta_free(&m);
}

/* The network opened from last.safetensors gives exactly the figures of
 * the evaluation network built by hand (the EMA weights, the run's noise
 * key and S), for both normalisations, and the run's own final figures on
 * the mean path (the sampled ones draw other noise: the trainer's
 * evaluation graph holds a labels node, which shifts the node streams). */
static void test_open_gives_the_runs_figures(void)
{
    const char *runs[2] = {run_a, run_b};
    ib_dataset *d = test_set();
    for (int k = 0; k < 2; k++) {
        ib_net_options o = ib_net_options_default();
        o.batch_size = 64;
        ib_net *n = open_net(in_run(runs[k], "last.safetensors"), o);
        if (!n)
            continue;
        CHECK_EQ_INT(ib_net_used_ema(n), k == 0);
        CHECK_EQ_INT(ib_net_eval_samples(n), 5);
        CHECK(ib_net_eval_seed(n) == (11u ^ IB_EVAL_SEED_SALT));
        const ib_checkpoint_meta *m = ib_net_meta(n);
        CHECK_EQ_INT(m->version, IB_CHECKPOINT_META_VERSION);
        CHECK_EQ_INT(m->epoch, 2);
        CHECK(m->counts_valid && m->step == 2 * 12 && m->seed == 11);
        CHECK_EQ_INT(m->input_norm, k == 0 ? IB_NORM_SYMMETRIC : IB_NORM_STANDARDIZE);
        CHECK(strncmp(m->dataset, "idx:", 4) == 0);
        CHECK_EQ_INT(ib_net_outputs(n)->n_bottlenecks, 1);
        ib_eval_result r, h;
        evaluate_net(n, d, &r);
        evaluate_by_hand(in_run(runs[k], "last.safetensors"), d, &h);
        CHECK(r.n == 200 && h.n == 200);
        CHECK(r.acc_avg == h.acc_avg && r.acc_1shot == h.acc_1shot && r.acc_mean == h.acc_mean);
        CHECK(r.nll_avg == h.nll_avg && r.nll_mean == h.nll_mean && r.ce_samples == h.ce_samples);
        CHECK(r.kl[0] == h.kl[0]);
        CHECK(memcmp(r.confusion, h.confusion, 16 * sizeof(int64_t)) == 0);
        cJSON *s = ib_test_read_json(runs[k], "summary.json");
        CHECK(json_num(s, "test_acc_mean") == r.acc_mean);
        /* the sampled figures too: eval draws the noise the run evaluated with */
        CHECK(json_num(s, "test_acc_avg") == r.acc_avg);
        CHECK(json_num(s, "test_acc_1shot") == r.acc_1shot);
        CHECK_NEAR(json_num(s, "test_nll_mean"), r.nll_mean, 1e-12); /* JSON keeps ~15 digits */
        CHECK(r.acc_avg > 0.4); /* it learned: the comparison is not of two chance figures */
        cJSON_Delete(s);
        ib_eval_result_free(&r);
        ib_eval_result_free(&h);
        ib_net_close(n);
    }
    ib_dataset_free(d);
}

static bool same_weights(ib_net *a, ib_net *b)
{
    ib_params *p = ib_net_params(a), *q = ib_net_params(b);
    if (ib_params_count(p) != ib_params_count(q))
        return false;
    for (int i = 0; i < ib_params_count(p); i++)
        if (memcmp(ib_params_value(p, i), ib_params_value(q, i), (size_t)ib_params_numel(p, i) * sizeof(float)))
            return false;
    return true;
}

/* last.safetensors holds raw weights + the EMA shadow; best.safetensors
 * (here the last epoch too) holds the EMA weights that were evaluated. */
static void test_ema_and_raw_weights(void)
{
    ib_net_options o = ib_net_options_default();
    ib_net *ema = open_net(in_run(run_a, "last.safetensors"), o);
    o.weights = IB_NET_WEIGHTS_RAW;
    ib_net *raw = open_net(in_run(run_a, "last.safetensors"), o);
    ib_net *best = open_net(in_run(run_a, "best.safetensors"), o);
    o.weights = IB_NET_WEIGHTS_EMA;
    ib_net *ema2 = open_net(in_run(run_a, "last.safetensors"), o);
    if (ema && raw && best && ema2) {
        CHECK(ib_net_used_ema(ema) && ib_net_used_ema(ema2) && !ib_net_used_ema(raw) && !ib_net_used_ema(best));
        CHECK(!same_weights(ema, raw));
        CHECK(same_weights(ema, ema2));
        CHECK(same_weights(ema, best));
    }
    /* asking for the EMA of a file without one is an error, not the raw weights */
    ib_net *none = NULL;
    CHECK_EQ_INT(ib_net_open(in_run(run_a, "best.safetensors"), &o, &none), IB_ERR_MISMATCH);
    CHECK(none == NULL && strstr(ib_last_error(), "no EMA") != NULL);
    CHECK_EQ_INT(ib_net_open(in_run(run_b, "last.safetensors"), &o, &none), IB_ERR_MISMATCH);
    ib_net_close(ema);
    ib_net_close(raw);
    ib_net_close(best);
    ib_net_close(ema2);
}

/* Fill the input of n with the first B test images as its batcher makes them. */
static void fill_batch(ib_net *n, const ib_dataset *d, int32_t *labels)
{
    ib_batcher_config bc = *ib_net_batcher_config(n);
    ib_batcher *b = NULL;
    CHECK_OK(ib_batcher_new(d, &bc, &b));
    ib_batcher_epoch(b, 0);
    CHECK(ib_batcher_next(b, ib_node_data(ib_net_input(n)), labels, NULL));
    ib_batcher_free(b);
}

/* Pixel input: the same logits as the normalised input (to float rounding
 * of the normalisation), for standardisation and for [-1, 1]. */
static void test_pixel_input_equals_normalised(void)
{
    const char *runs[2] = {run_a, run_b};
    ib_dataset *d = test_set();
    for (int k = 0; k < 2; k++) {
        ib_net_options o = ib_net_options_default();
        o.batch_size = 16;
        o.mean_path = true;
        ib_net *a = open_net(in_run(runs[k], "best.safetensors"), o);
        o.input = IB_NET_INPUT_PIXELS;
        ib_net *b = open_net(in_run(runs[k], "best.safetensors"), o);
        if (!a || !b)
            continue;
        CHECK_EQ_INT(ib_net_batcher_config(b)->norm, IB_NORM_UNIT);
        int32_t y[16];
        fill_batch(a, d, y);
        fill_batch(b, d, y);
        const float *px = ib_node_data(ib_net_input(b));
        for (int i = 0; i < 16 * 64; i++)
            CHECK(px[i] >= 0.0f && px[i] <= 1.0f);
        CHECK_OK(ib_graph_forward(ib_net_graph(a)));
        CHECK_OK(ib_graph_forward(ib_net_graph(b)));
        const float *la = ib_node_data(ib_net_logits(a)), *lb = ib_node_data(ib_net_logits(b));
        for (int i = 0; i < 16 * 4; i++)
            CHECK_CLOSE(la[i], lb[i], 1e-5, 1e-5);
        ib_net_close(a);
        ib_net_close(b);
    }
    ib_dataset_free(d);
}

/* given_noise: one eps input per bottleneck, shaped (B [* S], K); eps = 0
 * is the mean path bit for bit, a given eps gives the same logits at every
 * forward (keyed noise would change with the step) whatever mean_path says,
 * and another eps other logits. */
static void test_given_noise(void)
{
    ib_dataset *d = test_set();
    ib_net_options o = ib_net_options_default();
    o.batch_size = 16;
    o.mean_path = true;
    ib_net *mean = open_net(in_run(run_a, "best.safetensors"), o);
    CHECK_EQ_INT(ib_net_noise_count(mean), 0);
    CHECK(ib_net_noise(mean, 0) == NULL);
    o.given_noise = true;
    o.mean_path = false;
    ib_net *a = open_net(in_run(run_a, "best.safetensors"), o);
    o.mean_path = true;
    ib_net *b = open_net(in_run(run_a, "best.safetensors"), o);
    o.samples = 3;
    ib_net *s = open_net(in_run(run_a, "best.safetensors"), o);
    if (!mean || !a || !b || !s)
        return;
    CHECK_EQ_INT(ib_net_noise_count(a), 1);
    CHECK(ib_net_noise(a, 1) == NULL && ib_net_noise(a, -1) == NULL);
    ib_node *e = ib_net_noise(a, 0);
    CHECK_EQ_INT(ib_node_ndim(e), 2);
    CHECK_EQ_INT(ib_node_dim(e, 0), 16);
    CHECK_EQ_INT(ib_node_dim(e, 1), 6);
    CHECK_EQ_INT(ib_node_dim(ib_net_noise(s, 0), 0), 48);
    CHECK(strcmp(ib_node_name(e), "noise.vib") == 0);
    int32_t y[16];
    fill_batch(mean, d, y);
    fill_batch(a, d, y);
    fill_batch(b, d, y);
    memset(ib_node_data(e), 0, 16 * 6 * sizeof(float));
    CHECK_OK(ib_graph_forward(ib_net_graph(mean)));
    CHECK_OK(ib_graph_forward(ib_net_graph(a)));
    CHECK(memcmp(ib_node_data(ib_net_logits(mean)), ib_node_data(ib_net_logits(a)), 16 * 4 * sizeof(float)) == 0);
    float first[64];
    for (int i = 0; i < 16 * 6; i++)
        ib_node_data(e)[i] = ib_node_data(ib_net_noise(b, 0))[i] = (float)((i * 37) % 11 - 5) * 0.7f;
    CHECK_OK(ib_graph_forward(ib_net_graph(a)));
    memcpy(first, ib_node_data(ib_net_logits(a)), sizeof first);
    CHECK(memcmp(first, ib_node_data(ib_net_logits(mean)), sizeof first) != 0);
    CHECK_OK(ib_graph_forward(ib_net_graph(a)));
    CHECK_OK(ib_graph_forward(ib_net_graph(b)));
    CHECK(memcmp(first, ib_node_data(ib_net_logits(a)), sizeof first) == 0);
    CHECK(memcmp(first, ib_node_data(ib_net_logits(b)), sizeof first) == 0);
    ib_net_close(mean);
    ib_net_close(a);
    ib_net_close(b);
    ib_net_close(s);
    ib_dataset_free(d);
}

/* dL/dx exists and matches central differences: on the mean path and for
 * the S-sample average (noise held fixed); in pixel units it is the
 * normalised gradient times 1/std. */
static void test_input_gradients(void)
{
    ib_dataset *d = test_set();
    ib_net_options o = ib_net_options_default();
    o.batch_size = 4;
    o.input_grad = true;
    o.input = IB_NET_INPUT_PIXELS;
    for (int S = 0; S <= 4; S += 4) {
        o.samples = S;
        o.mean_path = S == 0;
        ib_net *n = open_net(in_run(run_b, "best.safetensors"), o);
        if (!n)
            continue;
        CHECK(ib_net_loss(n) && ib_net_labels(n));
        CHECK_EQ_INT(ib_node_dim(ib_net_logits(n), 0), 4 * (S ? S : 1));
        CHECK_EQ_INT(ib_node_dim(ib_net_log_probs(n), 0), 4);
        fill_batch(n, d, ib_node_labels(ib_net_labels(n)));
        double err = 1;
        CHECK_OK(ib_graph_gradcheck(ib_net_graph(n), ib_net_loss(n), ib_net_input(n), 1e-2f, &err, NULL));
        CHECK_MSG(err < 2e-2, "S = %d: input gradient off by %g (relative to the largest)", S, err);
        if (S) { /* log_probs is the log of the mean of the S softmaxes */
            ib_graph_set_step(ib_net_graph(n), 3);
            CHECK_OK(ib_graph_forward(ib_net_graph(n)));
            const float *l = ib_node_data(ib_net_logits(n)), *lp = ib_node_data(ib_net_log_probs(n));
            for (int b = 0; b < 4; b++)
                for (int c = 0; c < 4; c++) {
                    double mean = 0;
                    for (int s = 0; s < S; s++) {
                        const float *row = l + (b * S + s) * 4;
                        double z = 0;
                        for (int k = 0; k < 4; k++)
                            z += exp(row[k]);
                        mean += exp(row[c]) / z / S;
                    }
                    CHECK_NEAR(lp[b * 4 + c], log(mean), 1e-5);
                }
        }
        ib_net_close(n);
    }
    /* pixel gradient = normalised gradient / std (one channel) */
    o.samples = 0;
    o.mean_path = true;
    ib_net *px = open_net(in_run(run_b, "best.safetensors"), o);
    o.input = IB_NET_INPUT_NORMALIZED;
    ib_net *nz = open_net(in_run(run_b, "best.safetensors"), o);
    if (px && nz) {
        float sd = ib_net_meta(px)->input_std[0];
        CHECK(sd > 0.05f && sd < 1.0f);
        fill_batch(px, d, ib_node_labels(ib_net_labels(px)));
        fill_batch(nz, d, ib_node_labels(ib_net_labels(nz)));
        CHECK_OK(ib_graph_forward(ib_net_graph(px)));
        CHECK_OK(ib_graph_backward(ib_net_graph(px), ib_net_loss(px)));
        CHECK_OK(ib_graph_forward(ib_net_graph(nz)));
        CHECK_OK(ib_graph_backward(ib_net_graph(nz), ib_net_loss(nz)));
        const float *gp = ib_node_grad(ib_net_input(px)), *gn = ib_node_grad(ib_net_input(nz));
        double big = 0;
        for (int i = 0; i < 4 * 64; i++)
            big = fmax(big, fabs(gp[i]));
        CHECK(big > 0);
        for (int i = 0; i < 4 * 64; i++)
            CHECK_NEAR(gp[i], gn[i] / sd, 1e-4 * big);
    }
    ib_net_close(px);
    ib_net_close(nz);
    ib_dataset_free(d);
}

/* A caller adds its own loss before compiling (an attack's margin loss). */
static void test_deferred_compile(void)
{
    ib_net_options o = ib_net_options_default();
    o.batch_size = 2;
    o.input_grad = true;
    o.mean_path = true;
    o.defer_compile = true;
    ib_net *n = open_net(in_run(run_a, "best.safetensors"), o);
    if (!n)
        return;
    ib_graph *g = ib_net_graph(n);
    ib_node *loss = ib_sum(g, ib_slice(g, ib_net_log_probs(n), 1, 2, 1), IB_ALL);
    CHECK(loss != NULL);
    CHECK_OK(ib_net_compile(n));
    CHECK_EQ_INT(ib_net_compile(n), IB_ERR_STATE);
    ib_test_fill(ib_node_data(ib_net_input(n)), 2 * 64, -1, 1, 5);
    ib_node_labels(ib_net_labels(n))[0] = ib_node_labels(ib_net_labels(n))[1] = 0;
    double err = 1;
    CHECK_OK(ib_graph_gradcheck(g, loss, ib_net_input(n), 1e-2f, &err, NULL));
    CHECK_MSG(err < 2e-2, "gradient of the added loss off by %g", err);
    ib_net_close(n);
}

/* ---- metadata ---- */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    CHECK(fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b, 1, len, f) == len);
    if (f)
        fclose(f);
}

/* A copy of src with the first `from` in its bytes replaced by `to` (same length). */
static const char *patched(const char *src, const char *name, const char *from, const char *to)
{
    static char path[1400];
    snprintf(path, sizeof path, "%s/%s", ib_test_tmpdir(), name);
    size_t len = 0, k = strlen(from);
    unsigned char *b = slurp(src, &len);
    CHECK(strlen(to) == k);
    unsigned char *at = NULL;
    for (size_t i = 0; b && !at && i + k <= len; i++)
        if (!memcmp(b + i, from, k))
            at = b + i;
    CHECK_MSG(at != NULL, "\"%s\" not in %s", from, src);
    if (at)
        memcpy(at, to, k);
    spit(path, b, len);
    free(b);
    return path;
}

static void expect_open_fails(const char *path, ib_status want, const char *msg)
{
    ib_net *n = (ib_net *)1;
    ib_status s = ib_net_open(path, NULL, &n);
    CHECK_EQ_INT(s, want);
    CHECK(n == NULL);
    CHECK_MSG(strstr(ib_last_error(), msg) && strstr(ib_last_error(), path), "message \"%s\" lacks \"%s\" or the path",
              ib_last_error(), msg);
}

static void test_bad_files_are_clear_errors(void)
{
    const char *last = in_run(run_a, "last.safetensors");
    char missing[1400];
    snprintf(missing, sizeof missing, "%s/no-such.safetensors", ib_test_tmpdir());
    expect_open_fails(missing, IB_ERR_IO, "cannot open");
    /* a newer metadata version */
    expect_open_fails(patched(last, "v9.safetensors", "\\\"meta_version\\\":1", "\\\"meta_version\\\":9"), IB_ERR_FORMAT,
                      "metadata version 9");
    /* a damaged block: the inner JSON no longer parses */
    expect_open_fails(patched(last, "damaged.safetensors", "\\\"epoch\\\":", "\\\"epoch\\\"X"), IB_ERR_FORMAT,
                      "damaged checkpoint metadata");
    /* no model description: not an ibnet training checkpoint */
    expect_open_fails(patched(last, "nomodel.safetensors", "model_text", "model_texx"), IB_ERR_FORMAT,
                      "not an ibnet training checkpoint");
    /* a bare weights file */
    char bare[1400];
    snprintf(bare, sizeof bare, "%s/bare.safetensors", ib_test_tmpdir());
    ib_params *p = ib_params_new(1);
    CHECK(ib_params_get(p, "w", 1, (int64_t[]){3}, (ib_init){IB_INIT_ZEROS, 0, 0}, IB_PARAM_TRAINABLE) >= 0);
    CHECK_OK(ib_checkpoint_save(bare, p, NULL, NULL, NULL));
    ib_params_free(p);
    expect_open_fails(bare, IB_ERR_FORMAT, "not an ibnet training checkpoint");
    /* bad options */
    ib_net_options o = ib_net_options_default();
    o.batch_size = 0;
    ib_net *n = NULL;
    CHECK_EQ_INT(ib_net_open(last, &o, &n), IB_ERR_ARG);
}

/* What the writer writes the reader reads; the defensive fallbacks hold. */
static void test_metadata_round_trip_and_ranges(void)
{
    const char *names[3] = {"cat", "dog", "ünïcode"};
    ib_checkpoint_meta w = {.epoch = 7, .step = 700, .epoch_batches_done = 3, .best_epoch = 5, .best_accuracy = 0.75,
                            .seed = UINT64_MAX, .threads = 2, .model = "m", .model_text = "model x\n",
                            .dataset = "cifar10", .classes = 3, .input_norm = IB_NORM_STANDARDIZE, .channels = 3,
                            .input_mean = {0.1f, 0.2f, 0.3f}, .input_std = {0.5f, 0.25f, 0.125f},
                            .input_min = {-1, -2, -3}, .input_max = {1, 2, 3}, .n_class_names = 3,
                            .class_names = names, .config_json = "{\"eval_samples\": 30, \"seed\": \"9\", "
                                                                 "\"ema_decay\": 0.5, \"ema_zero_debias\": false}"};
    char *text = ib_checkpoint_meta_to_json(&w);
    CHECK(text != NULL);
    ib_checkpoint_meta r;
    CHECK_OK(ib_checkpoint_meta_parse(text, "t", &r));
    CHECK_EQ_INT(r.version, IB_CHECKPOINT_META_VERSION);
    CHECK(r.counts_valid && r.epoch == 7 && r.step == 700 && r.epoch_batches_done == 3 && r.best_epoch == 5);
    CHECK(r.best_accuracy == 0.75 && r.threads == 2 && r.classes == 3 && r.channels == 3);
    CHECK(!strcmp(r.model, "m") && !strcmp(r.model_text, "model x\n") && !strcmp(r.dataset, "cifar10"));
    CHECK(r.input_norm == IB_NORM_STANDARDIZE && r.input_std[2] == 0.125f && r.input_mean[1] == 0.2f &&
          r.input_min[2] == -3 && r.input_max[1] == 2);
    CHECK(r.n_class_names == 3 && !strcmp(r.class_names[2], "ünïcode"));
    CHECK(r.eval_samples == 30 && r.seed == 9 && r.ema_decay == 0.5f && !r.ema_zero_debias);
    CHECK(r.config_json && strstr(r.config_json, "eval_samples"));
    ib_checkpoint_meta_free(&r);
    free(text);

    /* a file from before meta_version, with out-of-range numbers */
    const char *old = "{\"epoch\": 2, \"step\": -1, \"model_text\": \"x\", \"dataset\": \"mnist\", \"input_norm\": "
                      "\"unit\", \"input_std\": [0], \"config\": {\"eval_samples\": 5000, \"seed\": 3, "
                      "\"ema_decay\": 1.5}}";
    CHECK_OK(ib_checkpoint_meta_parse(old, "old", &r));
    CHECK(r.version == 0 && !r.counts_valid && r.eval_samples == 12 && r.seed == 3 && r.ema_decay == 0 &&
          r.ema_zero_debias && r.best_accuracy == -1 && r.class_names == NULL && r.config_json != NULL);
    ib_checkpoint_meta_free(&r);
    /* best epoch past the epoch, a fractional count */
    CHECK_OK(ib_checkpoint_meta_parse("{\"epoch\": 2, \"step\": 4, \"best_epoch\": 3, \"model_text\": \"x\", "
                                      "\"dataset\": \"d\", \"input_norm\": \"unit\"}", "be", &r));
    CHECK(!r.counts_valid);
    ib_checkpoint_meta_free(&r);
    CHECK_OK(ib_checkpoint_meta_parse("{\"epoch\": 2.5, \"step\": 4, \"model_text\": \"x\", \"dataset\": \"d\", "
                                      "\"input_norm\": \"unit\"}", "frac", &r));
    CHECK(!r.counts_valid);
    ib_checkpoint_meta_free(&r);
    /* refusals: zero std under standardisation, a newer version, a bad version, junk, nothing */
    struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"model_text\": \"x\", \"dataset\": \"d\", \"input_norm\": \"standardize\", \"input_std\": [0]}", "input_std"},
        {"{\"meta_version\": 2, \"model_text\": \"x\", \"dataset\": \"d\", \"input_norm\": \"unit\"}", "version 2"},
        {"{\"meta_version\": \"1\", \"model_text\": \"x\", \"dataset\": \"d\", \"input_norm\": \"unit\"}", "damaged"},
        {"{\"model_text\": \"x\", \"dataset\": \"d\", \"input_norm\": \"sideways\"}", "input normalisation"},
        {"[1, 2]", "damaged checkpoint metadata"},
        {"{\"epoch\": ", "damaged checkpoint metadata"},
        {"", "not an ibnet training checkpoint"},
        {NULL, "not an ibnet training checkpoint"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        r.version = 99;
        CHECK_EQ_INT(ib_checkpoint_meta_parse(bad[k].json, "bad", &r), IB_ERR_FORMAT);
        CHECK_MSG(strstr(ib_last_error(), bad[k].msg), "case %zu: \"%s\" lacks \"%s\"", k, ib_last_error(), bad[k].msg);
        CHECK(r.version == 0 && r.model_text == NULL);
    }
}

/* ---- checksums ---- */

/* Byte offset in the file of element `elem` of tensor `name`. */
static long tensor_offset(const char *path, const char *name, int64_t elem)
{
    ib__st_file f;
    CHECK_OK(ib__st_open(path, &f));
    int i = ib__st_find(&f, name);
    CHECK(i >= 0);
    long at = i >= 0 ? (long)(f.data_start + f.tensors[i].begin + 4 * (uint64_t)elem) : -1;
    ib__st_close(&f);
    return at;
}

static const char *copy_with_flipped_bit(const char *src, const char *name, const char *tensor, int64_t elem, int bit)
{
    static char path[1400];
    snprintf(path, sizeof path, "%s/%s", ib_test_tmpdir(), name);
    size_t len = 0;
    unsigned char *b = slurp(src, &len);
    long at = tensor_offset(src, tensor, elem);
    if (b && at >= 0 && (size_t)at + 4 <= len)
        b[at + bit / 8] ^= (unsigned char)(1u << (bit % 8));
    spit(path, b, len);
    free(b);
    return path;
}

static void test_flipped_bit_is_a_damaged_checkpoint(void)
{
    const char *last = in_run(run_a, "last.safetensors");
    /* bit 30: the top exponent bit of a float32 (little-endian byte 3, bit 6) */
    const char *bad = copy_with_flipped_bit(last, "flipped.safetensors", "fc1.weight", 5, 30);
    ib_net *n = NULL;
    CHECK_EQ_INT(ib_net_open(bad, NULL, &n), IB_ERR_FORMAT);
    CHECK_MSG(strstr(ib_last_error(), "damaged checkpoint") && strstr(ib_last_error(), "fc1.weight"), "%s",
              ib_last_error());
    /* the raw-weights path and the plain loader say the same, and change nothing */
    ib_net_options o = ib_net_options_default();
    o.weights = IB_NET_WEIGHTS_RAW;
    CHECK_EQ_INT(ib_net_open(bad, &o, &n), IB_ERR_FORMAT);
    ib_net *good = open_net(last, o);
    if (good) {
        ib_params *p = ib_net_params(good);
        int w = ib_params_find(p, "fc1.weight");
        float before = ib_params_value(p, w)[5];
        CHECK_EQ_INT(ib_checkpoint_load(bad, p, NULL, NULL, NULL), IB_ERR_FORMAT);
        CHECK(ib_params_value(p, w)[5] == before);
        /* skipping the check loads the damaged value (that is what the option is for) */
        ib_checkpoint_load_options lo = {.skip_checksums = true};
        CHECK_OK(ib_checkpoint_load_opts(bad, p, NULL, NULL, NULL, &lo));
        CHECK(ib_params_value(p, w)[5] != before);
    }
    ib_net_close(good);
    o.skip_checksums = true;
    ib_net *skipped = open_net(bad, o);
    ib_net_close(skipped);
    /* a flip in the EMA shadow is caught when the EMA is loaded */
    bad = copy_with_flipped_bit(last, "flipped-ema.safetensors", "ema.decoder.bias", 0, 30);
    CHECK_EQ_INT(ib_net_open(bad, NULL, &n), IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "ema.decoder.bias") != NULL);
    /* a resume of a damaged run says so too */
    char dir[1400], cmd[5000];
    snprintf(dir, sizeof dir, "%s/net-run-damaged", ib_test_tmpdir());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dir, run_a, dir);
    CHECK_EQ_INT(system(cmd), 0);
    copy_with_flipped_bit(in_run(dir, "last.safetensors"), "flipped-resume.safetensors", "fc1.bias", 1, 30);
    snprintf(cmd, sizeof cmd, "cp '%s/flipped-resume.safetensors' '%s/last.safetensors'", ib_test_tmpdir(), dir);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK_EQ_INT(ib_train_resume(dir, 3, NULL), IB_ERR_FORMAT);
    CHECK_MSG(strstr(ib_last_error(), "damaged checkpoint") && strstr(ib_last_error(), "fc1.bias"), "%s",
              ib_last_error());
}

/* Checkpoints written before checksums existed (no "ibnet.crc32" key)
 * still load, unverified. */
static void test_old_checkpoint_without_checksums_loads(void)
{
    const char *last = in_run(run_a, "last.safetensors");
    /* rewrite the file as the older writer did: same tensors and metadata
     * minus the checksum key */
    ib__st_file f;
    CHECK_OK(ib__st_open(last, &f));
    int n = f.n_tensors;
    ib__st_out *out = calloc((size_t)n, sizeof *out);
    float **data = calloc((size_t)n, sizeof *data);
    for (int i = 0; i < n; i++) {
        data[i] = malloc((size_t)f.tensors[i].numel * sizeof(float) + 1);
        CHECK_OK(ib__st_read_f32(&f, i, data[i]));
        out[i] = (ib__st_out){f.tensors[i].name, f.tensors[i].ndim, f.tensors[i].shape, data[i]};
    }
    const char *keys[32], *vals[32];
    int nm = 0;
    for (int k = 0; k < f.n_meta && nm < 32; k++)
        if (strcmp(f.meta_keys[k], "ibnet.crc32") != 0) {
            keys[nm] = f.meta_keys[k];
            vals[nm++] = f.meta_values[k];
        }
    CHECK_EQ_INT(nm, f.n_meta - 1);
    char old[1400];
    snprintf(old, sizeof old, "%s/old-format.safetensors", ib_test_tmpdir());
    CHECK_OK(ib__st_write(old, n, out, nm, keys, vals));
    for (int i = 0; i < n; i++)
        free(data[i]);
    free(data);
    free(out);
    ib__st_close(&f);
    ib_net *a = open_net(last, ib_net_options_default());
    ib_net *b = open_net(old, ib_net_options_default());
    if (a && b)
        CHECK(same_weights(a, b) && ib_net_used_ema(b));
    ib_net_close(a);
    ib_net_close(b);
    /* without checksums a flipped bit goes unnoticed: what they are for */
    const char *bad = copy_with_flipped_bit(old, "old-flipped.safetensors", "fc1.weight", 5, 30);
    ib_net *c = open_net(bad, ib_net_options_default());
    ib_net_close(c);
}

/* The commands: eval and predict refuse a damaged file (exit 2, the
 * message), and --no-verify skips the check. */
static void test_commands_on_damaged_files(void)
{
    const char *bad = copy_with_flipped_bit(in_run(run_a, "last.safetensors"), "cli-flipped.safetensors",
                                            "decoder.weight", 2, 30);
    char args[4096], out[8192];
    ib_test_cli to_out = {.out = out, .out_len = sizeof out, .out_err = true};
    snprintf(args, sizeof args, "eval %s --limit 50", bad);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 2);
    CHECK_MSG(strstr(out, "damaged checkpoint") && strstr(out, "decoder.weight"), "%s", out);
    snprintf(args, sizeof args, "eval %s --limit 50 --no-verify", bad);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
    char png[1400];
    snprintf(png, sizeof png, "%s/net-img.png", ib_test_tmpdir());
    uint8_t px[64] = {0};
    CHECK_OK(ib_png_write(png, px, 1, 8, 8));
    snprintf(args, sizeof args, "predict %s %s", bad, png);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 2);
    CHECK_MSG(strstr(out, "damaged checkpoint"), "%s", out);
    snprintf(args, sizeof args, "eval %s/nothing-here.safetensors", ib_test_tmpdir());
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 2);
    CHECK_MSG(strstr(out, "cannot open"), "%s", out);
}

int main(void)
{
    ib_set_threads(1);
    setup_once();
    IB_RUN(test_open_gives_the_runs_figures);
    IB_RUN(test_ema_and_raw_weights);
    IB_RUN(test_pixel_input_equals_normalised);
    IB_RUN(test_given_noise);
    IB_RUN(test_input_gradients);
    IB_RUN(test_deferred_compile);
    IB_RUN(test_bad_files_are_clear_errors);
    IB_RUN(test_metadata_round_trip_and_ranges);
    IB_RUN(test_flipped_bit_is_a_damaged_checkpoint);
    IB_RUN(test_old_checkpoint_without_checksums_loads);
    IB_RUN(test_commands_on_damaged_files);
    return ib_test_summary();
}
