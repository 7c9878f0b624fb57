/*
 * test_track_info.c — `ibnet train --track-info`: the information plane
 * recorded while a run trains (src/train/track_info.c).  A run with
 * tracking trains bit for bit as one without (same weights, same
 * metrics.jsonl but for its timings); info.jsonl has one line per tracked
 * epoch with I(X;T) and I(T;Y) of every layer asked for, equal to what
 * ib_net_activations and ib_mi_estimate give on the saved weights; a
 * resumed run's info.jsonl drops the lines after its checkpoint and ends
 * as an uninterrupted run's; bad settings are refused before anything runs.
 */
#include "test.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[1024], model_path[1024];

static void setup_once(void)
{
    ib_test_blob_dir("track-blobs", 600, 300, 99, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("track-vib.ibm",
                       "model track-vib\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\ntanh\n"
                       "linear 16 name=fc2\n"
                       "vib 8 shift=-5 name=vib\nlinear 4 name=decoder\n", model_path, sizeof model_path);
}

static ib_train_config config(const char *run)
{
    ib_train_config c = ib_test_train_config(model_path, data_dir, run);
    c.epochs = 4;
    c.batch_size = 50;
    c.eval_batch_size = 64; /* the last batch of 200 tracked examples is partial */
    c.optim.lr = 3e-3f;
    c.eval_samples = 2;
    c.ema_decay = 0.9f;
    return c;
}

static char *read_text(const char *dir, const char *file)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return ib__read_file(path, 1 << 26, NULL);
}

/* The lines of a JSON-lines file as parsed objects (at most max). */
static int read_lines(const char *dir, const char *file, cJSON **out, int max)
{
    char *text = read_text(dir, file);
    int n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line && n < max; line = strtok(NULL, "\n"))
        out[n++] = cJSON_Parse(line);
    free(text);
    return n;
}

/* Drop what depends on the clock. */
static void drop_timings(cJSON *o)
{
    const char *keys[] = {"seconds", "samples_per_s", "data_wait_s"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, keys[k]);
}

static void check_same_lines(const char *dir_a, const char *dir_b, const char *file, int want)
{
    cJSON *a[16] = {0}, *b[16] = {0};
    int na = read_lines(dir_a, file, a, 16), nb = read_lines(dir_b, file, b, 16);
    CHECK_EQ_INT(na, want);
    CHECK_EQ_INT(nb, want);
    for (int i = 0; i < na && i < nb; i++) {
        drop_timings(a[i]);
        drop_timings(b[i]);
        CHECK_MSG(cJSON_Compare(a[i], b[i], true), "%s line %d differs", file, i + 1);
    }
    for (int i = 0; i < 16; i++) {
        cJSON_Delete(a[i]);
        cJSON_Delete(b[i]);
    }
}

static void check_same_weights(const char *dir_a, const char *dir_b)
{
    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/last.safetensors", dir_a);
    snprintf(pb, sizeof pb, "%s/last.safetensors", dir_b);
    ib_net *a = NULL, *b = NULL;
    ib_net_options o = ib_net_options_default();
    o.weights = IB_NET_WEIGHTS_RAW;
    CHECK_OK(ib_net_open(pa, &o, &a));
    CHECK_OK(ib_net_open(pb, &o, &b));
    ib_params *qa = ib_net_params(a), *qb = ib_net_params(b);
    CHECK_EQ_INT(ib_params_total(qa), ib_params_total(qb));
    CHECK_MSG(memcmp(ib_params_values(qa), ib_params_values(qb), (size_t)ib_params_total(qa) * sizeof(float)) == 0,
              "the weights of %s and %s differ", dir_a, dir_b);
    ib_net_close(a);
    ib_net_close(b);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Tracking reads the weights and changes nothing of the training. */
static void test_tracking_changes_nothing(void)
{
    ib_train_config a = config("untracked");
    CHECK_OK(ib_train(&a, NULL));
    ib_train_config b = config("tracked");
    snprintf(b.track_info, sizeof b.track_info, "binning:30");
    b.track_limit = 200;
    CHECK_OK(ib_train(&b, NULL));
    check_same_lines(a.out_dir, b.out_dir, "metrics.jsonl", 4);
    check_same_weights(a.out_dir, b.out_dir);
    struct stat st;
    char path[1200];
    snprintf(path, sizeof path, "%s/info.jsonl", a.out_dir);
    CHECK_MSG(stat(path, &st) != 0, "a run without --track-info wrote info.jsonl");

    /* every top-level layer, each epoch, with the estimator's record */
    cJSON *l[8] = {0};
    CHECK_EQ_INT(read_lines(b.out_dir, "info.jsonl", l, 8), 4);
    const char *names[] = {"0", "fc1", "2", "fc2", "vib", "decoder"};
    const int64_t dims[] = {64, 32, 32, 16, 8, 4};
    for (int e = 0; e < 4 && l[e]; e++) {
        CHECK_EQ_INT((int)num(l[e], "epoch"), e + 1);
        CHECK_EQ_INT((int)num(l[e], "step"), 12 * (e + 1));
        CHECK_EQ_INT((int)num(l[e], "n"), 200);
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(l[e], "layers");
        CHECK_EQ_INT(cJSON_GetArraySize(layers), 6);
        for (int k = 0; k < cJSON_GetArraySize(layers) && k < 6; k++) {
            const cJSON *L = cJSON_GetArrayItem(layers, k);
            CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(L, "layer")->valuestring, names[k]) == 0);
            CHECK_EQ_INT((int64_t)num(L, "dims"), dims[k]);
            const cJSON *ixt = cJSON_GetObjectItemCaseSensitive(L, "ixt"), *ity = cJSON_GetObjectItemCaseSensitive(L, "ity");
            CHECK(ixt && ity);
            if (!ixt || !ity)
                continue;
            /* H(T) <= ln n, I(T;Y) <= min(H(T), H(Y)) <= ln 4 */
            CHECK(num(ixt, "nats") >= 0 && num(ixt, "nats") <= log(200.0) + 1e-9);
            CHECK(num(ity, "nats") >= -1e-12 && num(ity, "nats") <= log(4.0) + 1e-9);
            CHECK(num(ity, "nats") <= num(ixt, "nats") + 1e-9);
            CHECK_NEAR(num(ixt, "bits"), num(ixt, "nats") / log(2.0), 1e-9);
            CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(ixt, "quantity")->valuestring, "I(X;T)") == 0);
            CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(ity, "quantity")->valuestring, "I(T;Y)") == 0);
            CHECK_EQ_INT((int)num(ixt, "bins"), 30);
        }
    }
    for (int e = 0; e < 8; e++)
        cJSON_Delete(l[e]);
}

/* The values are those of ibnet info's path on the saved weights. */
static void test_values_match_the_checkpoint(void)
{
    ib_train_config c = config("tracked-values");
    c.epochs = 3;
    c.ema_decay = 0; /* the checkpoint's weights are then the tracked ones */
    snprintf(c.track_info, sizeof c.track_info, "kde:0.1");
    snprintf(c.track_layers, sizeof c.track_layers, "fc1,vib");
    c.track_every = 2;
    c.track_limit = 150;
    c.track_split = 1;
    CHECK_OK(ib_train(&c, NULL));
    cJSON *l[4] = {0};
    CHECK_EQ_INT(read_lines(c.out_dir, "info.jsonl", l, 4), 2); /* epochs 2 and 3 (the last) */
    CHECK_EQ_INT((int)num(l[0], "epoch"), 2);
    CHECK_EQ_INT((int)num(l[1], "epoch"), 3);
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(l[1], "split")->valuestring, "train") == 0);

    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", c.out_dir);
    ib_net_options o = ib_net_options_default();
    o.batch_size = 64;
    o.defer_compile = true;
    ib_net *net = NULL;
    CHECK_OK(ib_net_open(path, &o, &net));
    ib_dataset *train = NULL;
    CHECK_OK(ib_dataset_open(c.dataset, "train", NULL, &(ib_load_options){0}, &train));
    const char *layers[] = {"fc1", "vib"};
    ib_activations a;
    CHECK_OK(ib_net_activations(net, train, layers, 2, 150, true, &a));
    ib_mi_options opt;
    CHECK_OK(ib_mi_parse("kde:0.1", &opt));
    const cJSON *got = cJSON_GetObjectItemCaseSensitive(l[1], "layers");
    CHECK_EQ_INT(cJSON_GetArraySize(got), 2);
    for (int k = 0; k < 2; k++) {
        ib_mi_var t = ib_activations_var(&a, k), y = ib_activations_var(&a, -1);
        ib_mi_result ixt, ity;
        CHECK_OK(ib_mi_estimate(&t, NULL, &opt, &ixt));
        CHECK_OK(ib_mi_estimate(&t, &y, &opt, &ity));
        const cJSON *L = cJSON_GetArrayItem(got, k);
        CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(L, "layer")->valuestring, layers[k]) == 0);
        CHECK_NEAR(num(cJSON_GetObjectItemCaseSensitive(L, "ixt"), "nats"), ixt.nats, 1e-9);
        CHECK_NEAR(num(cJSON_GetObjectItemCaseSensitive(L, "ity"), "nats"), ity.nats, 1e-9);
        CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(L, "ixt"), "kind")->valuestring,
                     "upper") == 0);
    }
    ib_activations_free(&a);
    ib_dataset_free(train);
    ib_net_close(net);
    for (int e = 0; e < 4; e++)
        cJSON_Delete(l[e]);
}

static volatile int stop_now;

static void stop_in_epoch_3(void *ctx, const ib_train_progress *p)
{
    (void)ctx;
    if (p->epoch == 3 && p->batch == 5)
        stop_now = 1;
}

/* A resumed run keeps the lines of its checkpoint's epochs and ends with an
 * uninterrupted run's info.jsonl. */
static void test_resume_truncates_and_continues(void)
{
    ib_train_config c = config("tracked-resumed");
    snprintf(c.track_info, sizeof c.track_info, "binning:30");
    c.track_limit = 200;
    stop_now = 0;
    ib_train_callbacks cb = {NULL, stop_in_epoch_3, NULL, &stop_now, NULL};
    CHECK_OK(ib_train(&c, &cb));
    stop_now = 0;
    cJSON *l[8] = {0};
    CHECK_EQ_INT(read_lines(c.out_dir, "info.jsonl", l, 8), 2);
    for (int e = 0; e < 8; e++)
        cJSON_Delete(l[e]);
    /* a line written after the checkpoint of an epoch that a crash then lost */
    char path[1200];
    snprintf(path, sizeof path, "%s/info.jsonl", c.out_dir);
    FILE *f = fopen(path, "a");
    CHECK(f != NULL);
    if (f) {
        fputs("{\"epoch\":3,\"layers\":[]}\n", f);
        fclose(f);
    }
    CHECK_OK(ib_train_resume(c.out_dir, 0, NULL));
    char tracked[1200];
    snprintf(tracked, sizeof tracked, "%s/tracked", ib_test_tmpdir());
    check_same_lines(tracked, c.out_dir, "info.jsonl", 4);
    check_same_weights(tracked, c.out_dir);
}

static void test_bad_settings(void)
{
    ib_train_config c = config("tracked-bad");
    snprintf(c.track_info, sizeof c.track_info, "variational");
    CHECK_EQ_INT(ib_train_config_check(&c), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "metrics.jsonl") != NULL);
    snprintf(c.track_info, sizeof c.track_info, "binning:1");
    CHECK_EQ_INT(ib_train_config_check(&c), IB_ERR_ARG);
    snprintf(c.track_info, sizeof c.track_info, "binning:30");
    c.track_limit = 1;
    CHECK_EQ_INT(ib_train_config_check(&c), IB_ERR_ARG);
    c.track_limit = 100;
    c.track_every = 0;
    CHECK_EQ_INT(ib_train_config_check(&c), IB_ERR_ARG);
    c.track_every = 1;
    snprintf(c.track_layers, sizeof c.track_layers, "fc1,nope");
    CHECK_EQ_INT(ib_train(&c, NULL), IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "'nope'") != NULL);
    struct stat st;
    CHECK_MSG(stat(c.out_dir, &st) != 0, "a refused run left %s", c.out_dir);

    char args[3000], err[512];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    snprintf(args, sizeof args, "train --model %s --dataset idx:%s --epochs 1 --out %s/cli-track --track-info kde:0",
             model_path, data_dir, ib_test_tmpdir());
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "track-info") != NULL, "%s", err);
    snprintf(args, sizeof args, "train --model %s --dataset idx:%s --epochs 1 --out %s/cli-track --track-info "
             "binning --track-layers fc9", model_path, data_dir, ib_test_tmpdir());
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "fc9") != NULL, "%s", err);
}

int main(void)
{
    ib_set_threads(1);
    setup_once();
    IB_RUN(test_tracking_changes_nothing);
    IB_RUN(test_values_match_the_checkpoint);
    IB_RUN(test_resume_truncates_and_continues);
    IB_RUN(test_bad_settings);
    return ib_test_summary();
}
