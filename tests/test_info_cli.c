/*
 * test_info_cli.c — information of a trained network's layers: the
 * activations ib_net_activations reads (shape, labels, equal to a forward
 * pass computed here by hand from the checkpoint's weights, the mean path
 * against one draw of the noise), the variational bounds of its bottleneck
 * (equal to the run's own test KL and cross-entropy figures, and to the bits
 * summary.json reports), and
 * `ibnet info` (JSON with kind and n, exit 2 for each kind of bad input).
 *
 * The run is trained here: a 4-class 8x8 blob data set written as IDX
 * files and a tiny Deep VIB MLP, two epochs through ib_train.
 */
#include "test.h"

#include <unistd.h>

#include <cjson/cJSON.h>
#include <sys/stat.h>

static char data_dir[1024], model_path[1024], run_dir[1200], ckpt[1400];

static void setup_once(void)
{
    ib_test_blob_dir("infoblobs", 600, 200, 91, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("info-vib.ibm",
                       "model info-vib\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 16 name=fc1\nrelu name=act1\n"
                       "linear 12 name=fc2\nvib 6 shift=-5 name=vib\nlinear 4 name=decoder\n",
                       model_path, sizeof model_path);
    snprintf(run_dir, sizeof run_dir, "%s/info-run", ib_test_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", run_dir);
    ib_train_config c = ib_train_config_default();
    snprintf(c.model, sizeof c.model, "%s", model_path);
    snprintf(c.dataset, sizeof c.dataset, "idx:%.1000s", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%.1000s", run_dir);
    c.epochs = 2;
    c.batch_size = 50;
    c.eval_batch_size = 64; /* 200 test examples: a partial last batch */
    c.optim.lr = 1e-3f;
    c.norm = IB_NORM_SYMMETRIC;
    c.ema_decay = 0.0f; /* the raw weights are the evaluated ones */
    c.eval_samples = 5;
    c.seed = 5;
    CHECK_OK(ib_train(&c, NULL));
}

static ib_dataset *test_set(void)
{
    char spec[1100];
    snprintf(spec, sizeof spec, "idx:%.1000s", data_dir);
    ib_dataset *d = NULL;
    CHECK_OK(ib_dataset_open(spec, "test", NULL, NULL, &d));
    return d;
}

static ib_net *open_deferred(int64_t batch)
{
    ib_net_options o = ib_net_options_default();
    o.batch_size = batch;
    o.defer_compile = true;
    ib_net *n = NULL;
    CHECK_OK(ib_net_open(ckpt, &o, &n));
    return n;
}

static const float *param(ib_net *n, const char *name)
{
    int i = ib_params_find(ib_net_params(n), name);
    CHECK_MSG(i >= 0, "no parameter %s", name);
    return i >= 0 ? ib_params_value(ib_net_params(n), i) : NULL;
}

/* out[o] = b[o] + sum_i w[o, i] in[i] (PyTorch's layout: weight (out, in)) */
static void linear_by_hand(const float *w, const float *b, const double *in, int n_in, int n_out, double *out)
{
    for (int o = 0; o < n_out; o++) {
        double s = b[o];
        for (int i = 0; i < n_in; i++)
            s += (double)w[o * n_in + i] * in[i];
        out[o] = s;
    }
}

/* Shapes, labels, and every layer equal to the forward pass by hand: the
 * pixels under the run's [-1, 1] normalisation, fc1, its ReLU, fc2, and
 * the bottleneck's mean (the first 6 of fc2's 12 outputs), over 200
 * examples in batches of 64 (a partial last batch). */
static void test_activations_equal_a_forward_by_hand(void)
{
    ib_dataset *d = test_set();
    ib_net *n = open_deferred(64);
    if (!d || !n)
        return;
    const char *layers[] = {"fc1", "act1", "fc2", "vib", "vib.mu", "x"};
    ib_activations a;
    CHECK_OK(ib_net_activations(n, d, layers, 6, 0, true, &a));
    CHECK_EQ_INT(a.n_layers, 6);
    CHECK_EQ_INT(a.n, 200);
    CHECK_EQ_INT(a.classes, 4);
    const int64_t dims[6] = {16, 16, 12, 6, 6, 64};
    for (int k = 0; k < 6; k++)
        CHECK_EQ_INT(a.dims[k], dims[k]);
    CHECK(strcmp(a.nodes[3], "vib.z") == 0 && strcmp(a.names[3], "vib") == 0);
    for (int64_t i = 0; i < a.n; i++)
        CHECK_EQ_INT(a.labels[i], d->labels[i]);
    const float *w1 = param(n, "fc1.weight"), *b1 = param(n, "fc1.bias");
    const float *w2 = param(n, "fc2.weight"), *b2 = param(n, "fc2.bias");
    double worst = 0;
    for (int64_t i = 0; i < a.n && w1 && w2; i++) {
        double x[64], h1[16], r1[16], h2[12];
        for (int p = 0; p < 64; p++)
            x[p] = d->images[i * 64 + p] / 255.0 * 2.0 - 1.0;
        linear_by_hand(w1, b1, x, 64, 16, h1);
        for (int o = 0; o < 16; o++)
            r1[o] = h1[o] > 0 ? h1[o] : 0;
        linear_by_hand(w2, b2, r1, 16, 12, h2);
        for (int p = 0; p < 64; p++)
            worst = fmax(worst, fabs(a.values[5][i * 64 + p] - x[p]));
        for (int o = 0; o < 16; o++) {
            worst = fmax(worst, fabs(a.values[0][i * 16 + o] - h1[o]));
            worst = fmax(worst, fabs(a.values[1][i * 16 + o] - r1[o]));
        }
        for (int o = 0; o < 12; o++)
            worst = fmax(worst, fabs(a.values[2][i * 12 + o] - h2[o]));
        for (int o = 0; o < 6; o++) {
            worst = fmax(worst, fabs(a.values[3][i * 6 + o] - h2[o])); /* mean path: z = mu */
            worst = fmax(worst, fabs(a.values[4][i * 6 + o] - h2[o]));
        }
    }
    CHECK_MSG(worst < 1e-4, "activations differ from the forward pass by hand by %g", worst);
    /* the views for the estimators */
    ib_mi_var t = ib_activations_var(&a, 0), y = ib_activations_var(&a, -1);
    CHECK(t.n == 200 && t.d == 16 && t.f == a.values[0] && !t.i);
    CHECK(y.n == 200 && y.d == 1 && y.i == a.labels && !y.f);
    ib_activations_free(&a);
    CHECK(a.n_layers == 0 && a.values == NULL);
    /* compiled now, with these nodes kept: they can be read again (the
     * first 50 examples), other intermediate nodes cannot */
    CHECK_OK(ib_net_activations(n, d, layers, 2, 50, true, &a));
    CHECK_EQ_INT(a.n, 50);
    ib_activations_free(&a);
    const char *other[] = {"flatten"};
    const char *zero[] = {"0"};
    CHECK_EQ_INT(ib_net_activations(n, d, other, 1, 0, true, &a), IB_ERR_ARG); /* no such layer */
    CHECK_EQ_INT(ib_net_activations(n, d, zero, 1, 0, true, &a), IB_ERR_STATE); /* the flatten, not kept */
    CHECK_MSG(strstr(ib_last_error(), "defer_compile"), "%s", ib_last_error());
    ib_net_close(n);
    ib_dataset_free(d);
}

/* One draw of the noise: z differs from mu, by about sigma, and the same
 * draw comes back (the noise is keyed by seed and batch). */
static void test_one_sample_is_reproducible(void)
{
    ib_dataset *d = test_set();
    const char *layers[] = {"vib", "vib.mu", "vib.sigma"};
    ib_activations a, b;
    ib_net *n = open_deferred(64);
    if (!d || !n)
        return;
    CHECK_OK(ib_net_activations(n, d, layers, 3, 0, false, &a));
    CHECK_OK(ib_net_activations(n, d, layers, 3, 0, false, &b));
    CHECK(memcmp(a.values[0], b.values[0], 200 * 6 * sizeof(float)) == 0);
    double z2 = 0;
    int differ = 0;
    for (int64_t e = 0; e < 200 * 6; e++) {
        double u = (a.values[0][e] - a.values[1][e]) / a.values[2][e];
        z2 += u * u / (200 * 6);
        differ += a.values[0][e] != a.values[1][e];
    }
    CHECK(differ > 1100);
    CHECK_MSG(z2 > 0.7 && z2 < 1.3, "the standardised noise has second moment %g, not about 1", z2);
    ib_activations_free(&a);
    ib_activations_free(&b);
    ib_net_close(n);
    ib_dataset_free(d);
}

static void test_unknown_layer_named(void)
{
    ib_dataset *d = test_set();
    ib_net *n = open_deferred(64);
    if (!d || !n)
        return;
    const char *layers[] = {"fc1", "fc9"};
    ib_activations a;
    CHECK_EQ_INT(ib_net_activations(n, d, layers, 2, 0, true, &a), IB_ERR_ARG);
    CHECK_MSG(strstr(ib_last_error(), "'fc9'") && strstr(ib_last_error(), "fc1") && strstr(ib_last_error(), "vib"),
              "%s", ib_last_error());
    CHECK(a.n_layers == 0 && a.values == NULL);
    CHECK_EQ_INT(ib_net_activations(n, d, layers, 1, -1, true, &a), IB_ERR_ARG);
    CHECK_EQ_INT(ib_net_activations(n, d, layers, 0, 0, true, &a), IB_ERR_ARG);
    ib_net_close(n);
    ib_dataset_free(d);
}

/* The rate equals the run's test KL, the decoder bound H(Y) minus the
 * run's test cross-entropy over its samples (same S, same noise key). */
static void test_variational_equals_the_runs_figures(void)
{
    ib_dataset *d = test_set();
    ib_net *n = open_deferred(64);
    if (!d || !n)
        return;
    ib_mi_result r[4];
    int count = 0;
    CHECK_OK(ib_net_variational(n, d, 0, 0, ib_net_eval_seed(n), r, 4, &count));
    CHECK_EQ_INT(count, 2);
    cJSON *s = ib_test_read_json(run_dir, "summary.json");
    const cJSON *kl = cJSON_GetObjectItemCaseSensitive(s, "test_kl_nats"),
                *ce = cJSON_GetObjectItemCaseSensitive(s, "test_ce_samples");
    CHECK(cJSON_IsArray(kl) && cJSON_GetArraySize(kl) == 1 && cJSON_IsNumber(ce));
    double hy = 0;
    int64_t c[4] = {0};
    for (int64_t i = 0; i < d->n; i++)
        c[d->labels[i]]++;
    for (int k = 0; k < 4; k++)
        hy -= c[k] ? (double)c[k] / (double)d->n * log((double)c[k] / (double)d->n) : 0;
    if (cJSON_IsArray(kl) && cJSON_IsNumber(ce)) {
        CHECK_NEAR(r[0].nats, cJSON_GetArrayItem(kl, 0)->valuedouble, 1e-9);
        CHECK_NEAR(r[1].nats, hy - ce->valuedouble, 1e-9);
    }
    CHECK(r[0].kind == IB_MI_UPPER && r[1].kind == IB_MI_LOWER);
    CHECK(strcmp(r[0].quantity, "I(X;T)") == 0 && strcmp(r[1].quantity, "I(T;Y)") == 0);
    CHECK(strcmp(r[0].estimator, "variational") == 0 && r[0].method == IB_MI_VARIATIONAL);
    CHECK_EQ_INT(r[0].n, 200);
    CHECK_EQ_INT(r[1].samples, 5);
    CHECK_NEAR(r[1].label_entropy, hy, 1e-12);
    CHECK(hy < log(4.0)); /* the empirical entropy, not log(classes) */
    /* summary.json carries the same bounds in bits */
    const cJSON *up = cJSON_GetObjectItemCaseSensitive(s, "test_ixz_upper_bits"),
                *lo = cJSON_GetObjectItemCaseSensitive(s, "test_izy_lower_bits"),
                *shy = cJSON_GetObjectItemCaseSensitive(s, "test_label_entropy_nats");
    CHECK(cJSON_IsArray(up) && cJSON_GetArraySize(up) == 1 && cJSON_IsNumber(lo) && cJSON_IsNumber(shy));
    if (cJSON_IsArray(up) && cJSON_GetArraySize(up) == 1 && cJSON_IsNumber(lo) && cJSON_IsNumber(shy)) {
        CHECK_NEAR(cJSON_GetArrayItem(up, 0)->valuedouble, r[0].bits, 1e-9);
        CHECK_NEAR(lo->valuedouble, r[1].bits, 1e-9);
        CHECK_NEAR(shy->valuedouble, hy, 1e-12);
    }
    CHECK_NEAR(r[0].bits, r[0].nats / log(2.0), 1e-12);
    CHECK(r[0].nats > 0 && r[1].nats > 0 && r[1].nats <= hy);
    cJSON_Delete(s);
    /* fewer than 2 examples, too little room */
    CHECK_EQ_INT(ib_net_variational(n, d, 1, 0, 0, r, 4, &count), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "fewer than 2 samples"));
    CHECK_EQ_INT(ib_net_variational(n, d, 0, 0, 0, r, 1, &count), IB_ERR_ARG);
    /* the name parses, and the data-only interface refuses it */
    ib_mi_options o;
    CHECK_OK(ib_mi_parse("variational", &o));
    CHECK_EQ_INT(o.method, IB_MI_VARIATIONAL);
    float f[4] = {0, 1, 2, 3};
    ib_mi_var v = {.n = 4, .d = 1, .f = f};
    CHECK_EQ_INT(ib_mi_estimate(&v, NULL, &o, r), IB_ERR_ARG);
    CHECK_MSG(strstr(ib_last_error(), "ibnet info"), "%s", ib_last_error());
    CHECK(ib_activations_var(NULL, 0).n == 0);
    ib_net_close(n);
    ib_dataset_free(d);
}

/* `ibnet info CKPT ARGS`: stdout and stderr into out. */
static int run_cli(const char *args, char *out, size_t len)
{
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "info %s %s", ckpt, args);
    return ib_test_run_cli(cmd, &(ib_test_cli){.out = out, .out_len = len, .out_err = true});
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_cli_info(void)
{
    static char out[1 << 16];
    /* binning: two layers, two quantities each, one JSON object per line */
    CHECK_EQ_INT(run_cli("--layers fc1,vib --estimator binning:30 --json", out, sizeof out), 0);
    CHECK_EQ_INT(count_lines(out), 4);
    int objects = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        CHECK_MSG(o != NULL, "not JSON: %s", line);
        if (!o)
            continue;
        objects++;
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind"), *n = cJSON_GetObjectItemCaseSensitive(o, "n"),
                    *nats = cJSON_GetObjectItemCaseSensitive(o, "nats"),
                    *layer = cJSON_GetObjectItemCaseSensitive(o, "layer");
        CHECK(cJSON_IsString(kind) && strcmp(kind->valuestring, "estimate") == 0);
        CHECK(cJSON_IsNumber(n) && n->valueint == 200);
        CHECK(cJSON_IsNumber(nats) && nats->valuedouble >= 0 && nats->valuedouble <= log(200.0) + 1e-9);
        CHECK(cJSON_IsString(layer) && (strcmp(layer->valuestring, "fc1") == 0 || strcmp(layer->valuestring, "vib") == 0));
        cJSON_Delete(o);
    }
    CHECK_EQ_INT(objects, 4);
    /* variational: the default layers are the bottlenecks; the rate and the bound */
    CHECK_EQ_INT(run_cli("--estimator variational --json", out, sizeof out), 0);
    CHECK_EQ_INT(count_lines(out), 2);
    CHECK_MSG(strstr(out, "\"layer\":\"vib\"") && strstr(out, "\"kind\":\"upper\"") && strstr(out, "\"kind\":\"lower\"") &&
                  strstr(out, "\"estimator\":\"variational\"") && strstr(out, "\"n\":200") && strstr(out, "\"samples\":5"),
              "%s", out);
    /* ... equal to the run's test figures: the command evaluates in the
     * run's batches, so it draws the run's noise */
    cJSON *sum = ib_test_read_json(run_dir, "summary.json");
    cJSON *rate = cJSON_Parse(out), *dec = cJSON_Parse(strchr(out, '\n') + 1);
    const cJSON *kl = cJSON_GetObjectItemCaseSensitive(sum, "test_kl_nats"),
                *ce = cJSON_GetObjectItemCaseSensitive(sum, "test_ce_samples"),
                *r_nats = cJSON_GetObjectItemCaseSensitive(rate, "nats"),
                *d_ce = cJSON_GetObjectItemCaseSensitive(dec, "ce_nats"),
                *d_nats = cJSON_GetObjectItemCaseSensitive(dec, "nats"),
                *d_hy = cJSON_GetObjectItemCaseSensitive(dec, "label_entropy");
    CHECK(cJSON_IsArray(kl) && cJSON_IsNumber(ce) && cJSON_IsNumber(r_nats) && cJSON_IsNumber(d_ce) &&
          cJSON_IsNumber(d_nats) && cJSON_IsNumber(d_hy));
    if (cJSON_IsArray(kl) && cJSON_IsNumber(ce) && cJSON_IsNumber(r_nats) && cJSON_IsNumber(d_ce) &&
        cJSON_IsNumber(d_nats) && cJSON_IsNumber(d_hy)) {
        CHECK_NEAR(r_nats->valuedouble, cJSON_GetArrayItem(kl, 0)->valuedouble, 1e-9);
        CHECK_NEAR(d_ce->valuedouble, ce->valuedouble, 1e-9);
        CHECK_NEAR(d_nats->valuedouble, d_hy->valuedouble - ce->valuedouble, 1e-9);
    }
    cJSON_Delete(sum);
    cJSON_Delete(rate);
    cJSON_Delete(dec);
    /* text, KDE, a sweep, a critic on few rows */
    CHECK_EQ_INT(run_cli("--layers act1 --estimator kde:0.1 --limit 100", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "layer act1 (16 values") && strstr(out, "upper bound") && strstr(out, "sigma^2 = 0.1") &&
                  strstr(out, "I(T;Y)"),
              "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc2 --sweep --json --limit 50", out, sizeof out), 0);
    CHECK_EQ_INT(count_lines(out), 20);
    CHECK_EQ_INT(run_cli("--layers vib --estimator infonce --steps 30 --limit 80 --seed 3 --json", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "\"cap_nats\"") && strstr(out, "\"kind\":\"lower\"") && strstr(out, "\"seed\":3") &&
                  count_lines(out) == 2,
              "%s", out);
    /* user errors: exit 2, naming the problem */
    CHECK_EQ_INT(run_cli("--layers fc1,fc9", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "fc9") && strstr(out, "fc1"), "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc1 --estimator binning:1", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "bin count must be at least 2"), "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc1 --estimator kde:0", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "sigma^2"), "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc1 --limit 1", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "fewer than 2 samples"), "%s", out);
    CHECK_EQ_INT(run_cli("--estimator variational --limit 1", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "fewer than 2 samples"), "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc1 --estimator variational", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "'fc1' is not a Gaussian bottleneck") && strstr(out, "vib"), "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc1 --estimator nope", out, sizeof out), 2);
    CHECK_EQ_INT(run_cli("--layers fc1 --estimator mine --sweep", out, sizeof out), 2);
    CHECK_EQ_INT(run_cli("--layers , --estimator kde", out, sizeof out), 2);
    char args[1400];
    snprintf(args, sizeof args, "--layers fc1 --dataset idx:%s/nothing-here", ib_test_tmpdir());
    CHECK_EQ_INT(run_cli(args, out, sizeof out), 2);
    /* the decoder estimate: one JSON line per layer, grids of samples */
    snprintf(args, sizeof args, "--layers fc1,vib --estimator decoder:4:1 --steps 20 --limit 60 --seed 2 --json "
                                "--sample-grid %s/grid", ib_test_tmpdir());
    CHECK_EQ_INT(run_cli(args, out, sizeof out), 0);
    CHECK_MSG(strstr(out, "\"h_x_nats\"") && strstr(out, "\"kind\":\"estimate\"") && strstr(out, "\"pixels\":64") &&
                  strstr(out, "\"n\":30"),
              "%s", out);
    char png[1200];
    snprintf(png, sizeof png, "%s/grid-vib.png", ib_test_tmpdir());
    CHECK(access(png, R_OK) == 0);
    CHECK_EQ_INT(run_cli("--layers fc1 --estimator decoder:0", out, sizeof out), 2);
    CHECK_EQ_INT(run_cli("--layers fc9 --estimator decoder", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "fc9"), "%s", out);
    CHECK_EQ_INT(run_cli("--layers fc1 --sample-grid x", out, sizeof out), 2);
}

int main(void)
{
    ib_set_threads(1);
    setup_once();
    IB_RUN(test_activations_equal_a_forward_by_hand);
    IB_RUN(test_one_sample_is_reproducible);
    IB_RUN(test_unknown_layer_named);
    IB_RUN(test_variational_equals_the_runs_figures);
    IB_RUN(test_cli_info);
    return ib_test_summary();
}
