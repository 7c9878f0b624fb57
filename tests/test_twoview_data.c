/*
 * test_twoview_data.c — the trainer on the two-view data sets by name
 * (`--dataset noisy-mnist-2view`, `cifar10-2view`), read from MNIST- and
 * CIFAR-format files the test writes (synthetic images; the registry
 * checks the real sets' counts and sizes, so the files have them, and the
 * hash check is skipped).  Checked: example i of both views carries the
 * same label; the trainer's own check that every batch of view 2 holds
 * view 1's examples and labels passes over the epochs, a stop inside an
 * epoch and its resume (and fires on a view out of step); a resumed run
 * ends with the weights of an uninterrupted one (Noisy MNIST); the best epoch is chosen
 * on the mean of the two views' validation accuracy (docs/vsd.md), with
 * view 2's validation examples cut from the training set as view 1's.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static char mnist_dir[1100], cifar_dir[1100], mnist_model[1100], cifar_model[1100], blob_dir[1100], blob_model[1100];

/* Class of example i: not periodic in i, so a shift of the order is seen. */
static int label_of(int64_t i) { return (int)((i * 7 + i / 13) % 10); }

/* Example i of an MNIST-format split (ib_test_write_idx): class k a
 * bright 5x5 block at a place of its own; pixel (0, i mod 28) holds
 * i mod 256 (the images differ within a class). */
static int mnist_pixels(void *ctx, int64_t i, uint8_t *img)
{
    (void)ctx;
    int k = label_of(i);
    int r0 = 4 + (k / 5) * 12, c0 = 2 + (k % 5) * 5;
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++)
            img[(r0 + r) * 28 + c0 + c] = 220;
    img[i % 28] = (uint8_t)(i & 255);
    return k;
}

/* A CIFAR-10-format batch file of n records (label byte, 3x32x32): class k
 * a coloured 8x8 block at a place of its own. */
static void write_cifar(const char *dir, const char *name, int64_t first, int64_t n)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f)
        return;
    uint8_t rec[3073];
    for (int64_t i = first; i < first + n; i++) {
        int k = label_of(i);
        memset(rec, 30, sizeof rec);
        rec[0] = (uint8_t)k;
        int r0 = (k / 4) * 10, c0 = (k % 4) * 8;
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 8; r++)
                for (int c = 0; c < 8; c++)
                    rec[1 + ch * 1024 + (r0 + r) * 32 + c0 + c] = (uint8_t)(ch == k % 3 ? 240 : 90);
        rec[1 + i % 1024] = (uint8_t)(i & 255);
        fwrite(rec, 1, sizeof rec, f);
    }
    fclose(f);
}

static void write_model(char *path, size_t len, const char *name, const char *input)
{
    snprintf(path, len, "%s/%s.ibm", ib_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "model %s\ninput %s\nclasses 10\n\nflatten\nlinear 32 name=fc1\nrelu\nvsdhead 10 zdim=8 hidden=32 name=head\n",
            name, input);
    fclose(f);
}

static void setup_mnist(void)
{
    if (mnist_dir[0])
        return;
    snprintf(mnist_dir, sizeof mnist_dir, "%s/mnist", ib_test_tmpdir());
    mkdir(mnist_dir, 0777);
    ib_test_write_idx(mnist_dir, "train", 60000, 28, 28, mnist_pixels, NULL);
    ib_test_write_idx(mnist_dir, "t10k", 10000, 28, 28, mnist_pixels, NULL);
    write_model(mnist_model, sizeof mnist_model, "tiny-28", "1 28 28");
}

static void setup_cifar(void)
{
    if (cifar_dir[0])
        return;
    snprintf(cifar_dir, sizeof cifar_dir, "%s/cifar-10-batches-bin", ib_test_tmpdir());
    mkdir(cifar_dir, 0777);
    for (int b = 0; b < 5; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        write_cifar(cifar_dir, name, 10000 * b, 10000);
    }
    write_cifar(cifar_dir, "test_batch.bin", 50000, 10000);
    write_model(cifar_model, sizeof cifar_model, "tiny-32", "3 32 32");
}

static void remove_files(const char *dir, const char *const *names)
{
    char path[1300];
    for (int k = 0; names[k]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        unlink(path);
    }
}

static ib_train_config two_view_config(const char *run, const char *dataset, const char *data_dir, const char *model)
{
    ib_train_config c = ib_train_config_default();
    snprintf(c.model, sizeof c.model, "%s", model);
    snprintf(c.dataset, sizeof c.dataset, "%s", dataset);
    snprintf(c.data_dir, sizeof c.data_dir, "%s", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%s/%s", ib_test_tmpdir(), run);
    snprintf(c.method, sizeof c.method, "vcd+vml");
    c.skip_hash = true;
    c.separate_views = true;
    c.train_limit = 700;
    c.val_size = 100; /* 600 to train: 12 batches of 50 */
    c.test_limit = 200;
    c.epochs = 3;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 2;
    c.ema_decay = 0;
    c.objective.beta = 0;
    return c;
}

/* Both views of a split: the same count and, example by example, the
 * same label; the images differ. */
static void check_views_aligned(const char *spec, const char *dir, const char *split)
{
    ib_load_options lo = {.skip_hash = true};
    ib_dataset *a = NULL, *b = NULL;
    CHECK_OK(ib_dataset_open_view(spec, split, 0, dir, &lo, &a));
    CHECK_OK(ib_dataset_open_view(spec, split, 1, dir, &lo, &b));
    if (!a || !b) {
        ib_dataset_free(a);
        ib_dataset_free(b);
        return;
    }
    CHECK_EQ_INT(a->n, b->n);
    int64_t differ = 0, same_image = 0, sz = (int64_t)a->c * a->h * a->w;
    for (int64_t i = 0; i < a->n && i < b->n; i++) {
        differ += a->labels[i] != b->labels[i];
        same_image += memcmp(a->images + i * sz, b->images + i * sz, (size_t)sz) == 0;
    }
    CHECK_MSG(differ == 0, "%s %s: %lld of %lld examples' labels differ between the views", spec, split,
              (long long)differ, (long long)a->n);
    CHECK_MSG(same_image < a->n / 100, "%s %s: %lld images equal in both views", spec, split, (long long)same_image);
    ib_dataset_free(a);
    ib_dataset_free(b);
}

/* Every line of metrics.jsonl: both views evaluated on validation and
 * test, and selection_score the mean of the two validation accuracies;
 * summary.json's best epoch the first with the highest score. */
static void check_selection(const char *dir, int64_t epochs)
{
    char path[1200], line[1 << 15];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    int64_t lines = 0, best_epoch = 0;
    double best = -1;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *m = cJSON_Parse(line);
        const cJSON *v1 = cJSON_GetObjectItemCaseSensitive(m, "val_acc_avg");
        const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(m, "val_view2_acc_avg");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(m, "selection_score");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(m, "epoch");
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(m, "test_view2_acc_avg")));
        CHECK_MSG(cJSON_IsNumber(v1) && cJSON_IsNumber(v2) && cJSON_IsNumber(sc) && cJSON_IsNumber(ep),
                  "%s line %lld: no val_acc_avg, val_view2_acc_avg or selection_score", dir, (long long)lines + 1);
        if (cJSON_IsNumber(v1) && cJSON_IsNumber(v2) && cJSON_IsNumber(sc) && cJSON_IsNumber(ep)) {
            CHECK_CLOSE(sc->valuedouble, 0.5 * (v1->valuedouble + v2->valuedouble), 1e-12, 1e-12);
            if (sc->valuedouble > best) {
                best = sc->valuedouble;
                best_epoch = (int64_t)ep->valuedouble;
            }
        }
        cJSON_Delete(m);
        lines++;
    }
    if (f)
        fclose(f);
    CHECK_EQ_INT(lines, epochs);
    snprintf(path, sizeof path, "%s/summary.json", dir);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
    line[n] = 0;
    if (f)
        fclose(f);
    cJSON *s = cJSON_Parse(line);
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(s, "best_epoch");
    const cJSON *ba = cJSON_GetObjectItemCaseSensitive(s, "best_accuracy");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(s, "best_selected_by");
    CHECK(cJSON_IsNumber(be) && (int64_t)be->valuedouble == best_epoch);
    CHECK(cJSON_IsNumber(ba) && ba->valuedouble == best);
    CHECK(cJSON_IsString(by) && strstr(by->valuestring, "view 2") != NULL);
    cJSON_Delete(s);
}

static volatile int stop_now;

static void stop_mid_epoch(void *ctx, const ib_train_progress *p)
{
    (void)ctx;
    if (p->epoch == 2 && p->batch == 5)
        stop_now = 1;
}

/* One data set through the trainer: straight, and (resume) stopped inside
 * epoch 2 then resumed; both pass the per-batch view check, choose the
 * best epoch on both views, and end with the same weights. */
static void train_straight_and_resumed(const char *spec, const char *dir, const char *model, int c, int h, int w,
                                       int epochs, bool resume)
{
    char run_a[64], run_b[64];
    snprintf(run_a, sizeof run_a, "%s-straight", spec);
    snprintf(run_b, sizeof run_b, "%s-resumed", spec);
    ib_train_config a = two_view_config(run_a, spec, dir, model);
    a.epochs = epochs;
    ib_status s = ib_train(&a, NULL);
    CHECK_MSG(s == IB_OK, "%s: %s", run_a, ib_last_error());
    check_selection(a.out_dir, epochs);
    if (!resume)
        return;
    ib_train_config b = two_view_config(run_b, spec, dir, model);
    b.epochs = epochs;
    stop_now = 0;
    ib_train_callbacks cb = {NULL, stop_mid_epoch, NULL, &stop_now, NULL};
    s = ib_train(&b, &cb);
    CHECK_MSG(s == IB_OK, "%s (stopped): %s", run_b, ib_last_error());
    stop_now = 0;
    s = ib_train_resume(b.out_dir, 0, NULL);
    CHECK_MSG(s == IB_OK, "%s (resumed): %s", run_b, ib_last_error());
    check_selection(b.out_dir, epochs);
    int64_t na = 0, nb = 0;
    float *wa = ib_test_checkpoint_weights(a.out_dir, model, c, h, w, true, &na),
          *wb = ib_test_checkpoint_weights(b.out_dir, model, c, h, w, true, &nb);
    CHECK_EQ_INT(na, nb);
    int64_t first = -1;
    for (int64_t k = 0; k < na && k < nb && first < 0; k++)
        if (wa[k] != wb[k])
            first = k;
    CHECK_MSG(first < 0, "%s: the resumed run's weights differ from scalar %lld of %lld", spec, (long long)first,
              (long long)na);
    free(wa);
    free(wb);
}

static void test_noisy_mnist_2view_trainer(void)
{
    setup_mnist();
    check_views_aligned("noisy-mnist-2view", mnist_dir, "train");
    check_views_aligned("noisy-mnist-2view", mnist_dir, "test");
    train_straight_and_resumed("noisy-mnist-2view", mnist_dir, mnist_model, 1, 28, 28, 3, true);
    remove_files(mnist_dir, (const char *[]){"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", NULL});
}

static void test_cifar10_2view_trainer(void)
{
    setup_cifar();
    check_views_aligned("cifar10-2view", cifar_dir, "train");
    /* one straight run: each open reads and converts 60,000 images, the
     * resume is checked on Noisy MNIST */
    train_straight_and_resumed("cifar10-2view", cifar_dir, cifar_model, 3, 32, 32, 2, false);
    remove_files(cifar_dir, (const char *[]){"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                             "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin", NULL});
}

/* ---- the per-batch check fires on views out of step ---- */

/* View 2 with the examples in reverse order: index i of view 2 is
 * example n-1-i of view 1, so the labels of a batch differ. */
static ib_status reversed_view(const ib_dataset *d, int v, uint64_t seed, ib_dataset **out)
{
    (void)v, (void)seed;
    *out = ib_dataset_clone(d);
    if (!*out)
        return IB_ERR_NOMEM;
    int64_t sz = (int64_t)d->c * d->h * d->w;
    for (int64_t i = 0; i < d->n; i++) {
        memcpy((*out)->images + i * sz, d->images + (d->n - 1 - i) * sz, (size_t)sz);
        (*out)->labels[i] = d->labels[d->n - 1 - i];
    }
    return IB_OK;
}

static void test_views_out_of_step_fail(void)
{
    ib_test_blob_dir("blobs", 400, 100, 5, 170.0f, 20.0f, blob_dir, sizeof blob_dir);
    ib_test_write_text("tiny-8.ibm",
                       "model tiny-8\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 16 name=fc1\nrelu\n"
                       "vsdhead 4 zdim=8 hidden=16 name=head\n",
                       blob_model, sizeof blob_model);
    char spec[1200];
    snprintf(spec, sizeof spec, "idx:%.1100s", blob_dir);
    ib_train_config c = two_view_config("out-of-step", spec, "", blob_model);
    c.data_dir[0] = 0;
    c.train_limit = 0;
    c.val_size = 0;
    c.test_limit = 0;
    ib_method m = *ib_method_find("vcd+vml");
    m.make_view = reversed_view;
    ib_status s = ib_train_with(&c, &m, NULL);
    CHECK_MSG(s == IB_ERR_ARG && strstr(ib_last_error(), "out of step") && strstr(ib_last_error(), "epoch 1, batch 1"),
              "views out of step: status %d, %s", (int)s, ib_last_error());
}

int main(void)
{
    ib_test_run("noisy_mnist_2view_trainer", test_noisy_mnist_2view_trainer);
    ib_test_run("cifar10_2view_trainer", test_cifar10_2view_trainer);
    ib_test_run("views_out_of_step_fail", test_views_out_of_step_fail);
    return ib_test_summary();
}
