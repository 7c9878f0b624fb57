/*
 * test_memorisation.c — the end-of-run memorisation of summary.json and
 * model selection under label noise, on a 4-class 8x8 blob set with 40%
 * symmetric noise and a small MLP: the shares the summary reports equal a
 * direct count (the checkpoint opened with ib_net_open, every training
 * example forwarded, its argmax compared with its noisy and its clean
 * label); the validation split is cut before the labels are corrupted, so
 * the noise falls on the training examples only and the best epoch is
 * picked on clean labels ("best_selected_on": "validation"), and without a
 * split the summary names the test-set choice an oracle.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

static char data_dir[1024];

static ib_train_config config(const char *name, int64_t val)
{
    ib_train_config c = ib_train_config_default();
    snprintf(c.model, sizeof c.model, "%.900s/tiny.ibm", ib_test_tmpdir());
    snprintf(c.dataset, sizeof c.dataset, "idx:%.1000s", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%.900s/%.60s", ib_test_tmpdir(), name);
    c.epochs = 3;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.ema_decay = 0;
    c.val_size = val;
    c.label_noise = true;
    c.noise_rate = 0.4;
    c.noise_kind = IB_NOISE_SYMMETRIC;
    return c;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_memorisation_equals_a_direct_count(void)
{
    ib_train_config c = config("noisy", 100);
    CHECK_OK(ib_train(&c, NULL));
    cJSON *o = ib_test_read_json(c.out_dir, "summary.json");
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(o, "best_selected_on")->valuestring, "validation") == 0);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "memorisation");
    CHECK(m != NULL);
    /* the run's training set: the first 500 of 600 (the last 100 are the
     * clean validation split), then the noise, as the trainer draws it */
    ib_dataset *full = NULL, *train = NULL, *val = NULL;
    CHECK_OK(ib_dataset_open(c.dataset, "train", NULL, NULL, &full));
    CHECK_OK(ib_dataset_split_last(full, 100, &train, &val));
    CHECK_OK(ib_label_noise_apply(train, c.noise_kind, c.noise_rate, c.seed ^ 0x401537u, NULL));
    CHECK(val->clean_labels == NULL); /* the split before the noise: nothing to corrupt there */
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", c.out_dir);
    ib_net_options no = ib_net_options_default();
    no.batch_size = 100;
    ib_net *n = NULL;
    CHECK_OK(ib_net_open(ckpt, &no, &n));
    ib_batcher_config bc = *ib_net_batcher_config(n);
    bc.batch_size = 100;
    ib_batcher *b = NULL;
    CHECK_OK(ib_batcher_new(train, &bc, &b));
    ib_batcher_epoch(b, 0);
    int32_t y[100];
    int64_t count, at = 0, noisy = 0, as_noisy = 0, as_clean = 0, clean = 0, clean_right = 0;
    while (ib_batcher_next(b, ib_node_data(ib_net_input(n)), y, &count)) {
        CHECK_OK(ib_graph_forward(ib_net_graph(n)));
        const float *lg = ib_node_data(ib_net_logits(n));
        for (int64_t r = 0; r < count; r++, at++) {
            int best = 0;
            for (int k = 1; k < 4; k++)
                if (lg[r * 4 + k] > lg[r * 4 + best])
                    best = k;
            if (train->labels[at] != train->clean_labels[at]) {
                noisy++;
                as_noisy += best == train->labels[at];
                as_clean += best == train->clean_labels[at];
            } else {
                clean++;
                clean_right += best == train->labels[at];
            }
        }
    }
    CHECK_EQ_INT(at, 500);
    CHECK(noisy > 100 && noisy < 300); /* 40% of 500, roughly */
    CHECK_EQ_INT((int64_t)num(m, "noisy_examples"), noisy);
    CHECK_EQ_INT((int64_t)num(m, "clean_examples"), clean);
    CHECK_NEAR(num(m, "noisy_predicted_as_noisy_label"), (double)as_noisy / (double)noisy, 1e-12);
    CHECK_NEAR(num(m, "noisy_predicted_as_clean_label"), (double)as_clean / (double)noisy, 1e-12);
    CHECK_NEAR(num(m, "clean_predicted_as_label"), (double)clean_right / (double)clean, 1e-12);
    /* a plain network: the mean path is the same prediction */
    CHECK_NEAR(num(m, "noisy_predicted_as_noisy_label_mean_path"), num(m, "noisy_predicted_as_noisy_label"), 0);
    ib_batcher_free(b);
    ib_net_close(n);
    ib_dataset_free(full);
    ib_dataset_free(train);
    ib_dataset_free(val);
    cJSON_Delete(o);
}

static void test_oracle_without_validation_and_no_noise_no_object(void)
{
    ib_train_config c = config("oracle", 0);
    c.epochs = 1;
    CHECK_OK(ib_train(&c, NULL));
    cJSON *o = ib_test_read_json(c.out_dir, "summary.json");
    CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(o, "best_selected_on")->valuestring, "test (oracle)") == 0);
    cJSON_Delete(o);
    ib_train_config d = config("clean", 0);
    d.epochs = 1;
    d.label_noise = false;
    d.noise_rate = 0;
    CHECK_OK(ib_train(&d, NULL));
    o = ib_test_read_json(d.out_dir, "summary.json");
    CHECK(cJSON_GetObjectItemCaseSensitive(o, "memorisation") == NULL);
    cJSON_Delete(o);
}

int main(void)
{
    ib_set_threads(1);
    ib_test_blob_dir("blobs", 600, 200, 91, 120.0f, 80.0f, data_dir, sizeof data_dir);
    char model[1200];
    ib_test_write_text("tiny.ibm",
                       "model tiny\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\nlinear 4 name=out\n",
                       model, sizeof model);
    IB_RUN(test_memorisation_equals_a_direct_count);
    IB_RUN(test_oracle_without_validation_and_no_noise_no_object);
    return ib_test_summary();
}
