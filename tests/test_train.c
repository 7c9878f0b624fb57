/*
 * test_train.c — the training slice end to end on small data the test
 * makes: a 4-class 8x8 image set written as IDX files and a small Deep VIB
 * model written as a description file.  Checks that training learns
 * (far above chance), that a larger beta gives a smaller KL, that a run
 * interrupted mid-epoch and resumed ends with exactly the weights of an
 * uninterrupted run, that a NaN loss stops training with a message naming
 * the epoch and step, and that the `ibnet` command answers each user error
 * with one message and exit code 2.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[1024], model_path[1024];

static void setup_once(void)
{
    ib_test_blob_dir("blobs", 1000, 400, 99, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("tiny-vib.ibm", IB_TEST_TINY_VIB(64), model_path, sizeof model_path);
}

static ib_train_config small_config(const char *run)
{
    ib_train_config c = ib_test_train_config(model_path, data_dir, run);
    c.epochs = 4;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 4;
    c.ema_decay = 0.9f;
    return c;
}

static double json_number(cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return v->valuedouble;
}

static void test_training_learns(void)
{
    ib_train_config c = small_config("learns");
    CHECK_OK(ib_train(&c, NULL));
    cJSON *s = ib_test_read_json(c.out_dir, "summary.json");
    double acc = json_number(s, "test_acc_avg");
    /* chance is 25%; the blobs are separable, so a few epochs reach ~100% */
    CHECK_MSG(acc > 0.9, "test accuracy %.3f after 4 epochs", acc);
    cJSON_Delete(s);
    /* every epoch logged, with the bottleneck's KL and beta */
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.out_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    int lines = 0;
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        CHECK(o != NULL);
        CHECK_EQ_INT((int)json_number(o, "epoch"), lines + 1);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "train_kl")) == 1);
        cJSON_Delete(o);
        lines++;
    }
    fclose(f);
    CHECK_EQ_INT(lines, 4);
    /* training again into the same directory is refused */
    CHECK(ib_train(&c, NULL) == IB_ERR_ARG);
}

static double final_kl(double beta, const char *run)
{
    ib_train_config c = small_config(run);
    c.objective.beta = (float)beta;
    c.epochs = 3;
    CHECK_OK(ib_train(&c, NULL));
    cJSON *s = ib_test_read_json(c.out_dir, "summary.json");
    const cJSON *kl = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "test_kl_nats"), 0);
    CHECK(cJSON_IsNumber(kl));
    double v = kl->valuedouble;
    cJSON_Delete(s);
    return v;
}

static void test_kl_falls_as_beta_rises(void)
{
    double lo = final_kl(1e-4, "beta-small"), hi = final_kl(1e-1, "beta-large");
    CHECK_MSG(hi < 0.5 * lo, "KL with beta 0.1 (%.3f nats) is not well below KL with beta 1e-4 (%.3f)", hi, lo);
}

static volatile int stop_now;
static int64_t stop_at_batch;

static void stop_mid_epoch(void *ctx, const ib_train_progress *p)
{
    (void)ctx;
    if (p->epoch == 2 && p->batch == stop_at_batch)
        stop_now = 1;
}

static void test_resume_equals_uninterrupted(void)
{
    ib_train_config a = small_config("straight");
    a.epochs = 3;
    CHECK_OK(ib_train(&a, NULL));

    ib_train_config b = small_config("interrupted");
    b.epochs = 3;
    stop_now = 0;
    stop_at_batch = 7; /* of 20 batches: stop inside epoch 2 */
    ib_train_callbacks cb = {NULL, stop_mid_epoch, NULL, &stop_now, NULL};
    CHECK_OK(ib_train(&b, &cb));
    cJSON *s = ib_test_read_json(b.out_dir, "summary.json");
    CHECK_EQ_INT((int)json_number(s, "steps"), 20 + 7);
    cJSON_Delete(s);
    stop_now = 0;
    CHECK_OK(ib_train_resume(b.out_dir, 0, NULL));
    /* the resumed epoch's training means cover the 13 batches trained after the resume, and say so */
    char path[1200], line[1 << 14];
    snprintf(path, sizeof path, "%s/metrics.jsonl", b.out_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    for (int e = 1; f && e <= 3; e++) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        cJSON *m = cJSON_Parse(line);
        CHECK_EQ_INT((int)json_number(m, "epoch"), e);
        CHECK_EQ_INT((int)json_number(m, "train_batches"), e == 2 ? 13 : 20);
        cJSON_Delete(m);
    }
    if (f)
        fclose(f);

    ib_params *pa = ib_test_run_weights(model_path, a.out_dir), *pb = ib_test_run_weights(model_path, b.out_dir);
    CHECK_EQ_INT(ib_params_total(pa), ib_params_total(pb));
    CHECK_MSG(memcmp(ib_params_values(pa), ib_params_values(pb), (size_t)ib_params_total(pa) * sizeof(float)) == 0,
              "resumed weights differ from the uninterrupted run's");
    ib_params_free(pa);
    ib_params_free(pb);
    cJSON *sa = ib_test_read_json(a.out_dir, "summary.json"), *sb = ib_test_read_json(b.out_dir, "summary.json");
    CHECK_EQ_INT((int)json_number(sb, "steps"), (int)json_number(sa, "steps"));
    CHECK(json_number(sa, "test_acc_avg") == json_number(sb, "test_acc_avg"));
    cJSON_Delete(sa);
    cJSON_Delete(sb);
}

/* A stop asked for at an epoch's end (as a Ctrl-C during its evaluation
 * is) ends the run there, not one step into the next epoch; the summary's
 * figures are that epoch's evaluation, not a second one that differs. */
static void stop_after_epoch(void *ctx, const ib_epoch_report *r)
{
    (void)r;
    *(volatile int *)ctx = 1;
}

static void test_stop_at_epoch_end(void)
{
    ib_train_config c = small_config("stop-at-epoch-end");
    c.epochs = 3;
    stop_now = 0;
    ib_train_callbacks cb = {(void *)&stop_now, NULL, stop_after_epoch, &stop_now, NULL};
    CHECK_OK(ib_train(&c, &cb));
    stop_now = 0;
    cJSON *s = ib_test_read_json(c.out_dir, "summary.json");
    CHECK_EQ_INT((int)json_number(s, "steps"), 20);
    CHECK_EQ_INT((int)json_number(s, "epochs_done"), 1);
    char path[1200], line[1 << 14] = "";
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.out_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
    }
    cJSON *m = cJSON_Parse(line);
    CHECK(m != NULL);
    if (m) {
        CHECK(json_number(s, "test_acc_avg") == json_number(m, "test_acc_avg"));
        CHECK(json_number(s, "test_nll_avg") == json_number(m, "test_nll_avg"));
    }
    cJSON_Delete(m);
    cJSON_Delete(s);
}

/* Same seed and thread count: bit-identical weights (also with 2 threads). */
static void test_same_seed_same_weights(void)
{
    ib_set_threads(2);
    ib_train_config a = small_config("det-a"), b = small_config("det-b");
    a.epochs = b.epochs = 2;
    CHECK_OK(ib_train(&a, NULL));
    CHECK_OK(ib_train(&b, NULL));
    ib_set_threads(1);
    ib_params *pa = ib_test_run_weights(model_path, a.out_dir), *pb = ib_test_run_weights(model_path, b.out_dir);
    CHECK(memcmp(ib_params_values(pa), ib_params_values(pb), (size_t)ib_params_total(pa) * sizeof(float)) == 0);
    ib_params_free(pa);
    ib_params_free(pb);
    /* and another seed gives other weights */
    ib_train_config c = small_config("det-c");
    c.epochs = 2;
    c.seed = 2;
    CHECK_OK(ib_train(&c, NULL));
    pa = ib_test_run_weights(model_path, a.out_dir);
    ib_params *pc = ib_test_run_weights(model_path, c.out_dir);
    CHECK(memcmp(ib_params_values(pa), ib_params_values(pc), (size_t)ib_params_total(pa) * sizeof(float)) != 0);
    ib_params_free(pa);
    ib_params_free(pc);
}

static void test_nan_loss_stops_with_a_message(void)
{
    ib_train_config c = small_config("nan");
    c.optim.lr = 1e30f; /* the first update sends the weights to infinity */
    c.optim.kind = IB_OPTIM_SGD;
    c.optim.momentum = 0;
    ib_status s = ib_train(&c, NULL);
    CHECK_MSG(s == IB_ERR_NUMERIC, "status %d: %s", (int)s, ib_last_error());
    CHECK_MSG(strstr(ib_last_error(), "epoch 1, step") != NULL, "message: %s", ib_last_error());
}

/* Adam's learning rate jumps from 3e-3 to 1e3 after epoch 1 (multistep,
 * gamma 3.3e5): the loss of a plain MLP (a VIB layer's log-variance would
 * overflow to inf at once) grows by orders of magnitude while it stays
 * finite.  The loss watch stops the run in epoch 2 with IB_ERR_NUMERIC and
 * its explanation; last.safetensors keeps epoch 1 (the weights of a run
 * that trained only that epoch) and metrics.jsonl its one line.  With the
 * check off the run goes on past the point where it stopped. */
static ib_train_config diverging_config(const char *run)
{
    ib_train_config c = small_config(run);
    snprintf(c.model, sizeof c.model, "%s/tiny-mlp.ibm", ib_test_tmpdir());
    FILE *f = fopen(c.model, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("model tiny-mlp\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 64 name=fc1\nrelu\nlinear 16 name=fc2\n"
              "relu\nlinear 4 name=decoder\n",
              f);
        fclose(f);
    }
    c.epochs = 3;
    c.schedule.kind = IB_SCHED_MULTISTEP;
    c.schedule.n_milestones = 1;
    c.schedule.milestones[0] = 1;
    c.schedule.gamma = 1e3f / 3e-3f;
    return c;
}

static void test_finite_divergence_keeps_the_last_checkpoint(void)
{
    ib_train_config one = diverging_config("diverge-ref");
    one.epochs = 1;
    CHECK_OK(ib_train(&one, NULL));

    ib_train_config c = diverging_config("diverge");
    ib_status s = ib_train(&c, NULL);
    CHECK_MSG(s == IB_ERR_NUMERIC, "status %d: %s", (int)s, ib_last_error());
    CHECK_MSG(strstr(ib_last_error(), "at epoch 2") && strstr(ib_last_error(), "times its start") &&
                  strstr(ib_last_error(), "keeps epoch 1"),
              "message: %s", ib_last_error());
    ib_params *pa = ib_test_run_weights(c.model, one.out_dir), *pb = ib_test_run_weights(c.model, c.out_dir);
    CHECK_EQ_INT(ib_params_total(pa), ib_params_total(pb));
    CHECK_MSG(memcmp(ib_params_values(pa), ib_params_values(pb), (size_t)ib_params_total(pa) * sizeof(float)) == 0,
              "last.safetensors is not epoch 1's");
    ib_params_free(pa);
    ib_params_free(pb);
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.out_dir);
    static char text[1 << 16];
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = 0;
    if (f)
        fclose(f);
    CHECK_MSG(strstr(text, "\"epoch\":1,") && !strstr(text, "\"epoch\":2,"), "metrics.jsonl: %s", text);
    /* the next step of the directory: a resume meets the same divergence and keeps epoch 1 again */
    s = ib_train_resume(c.out_dir, 0, NULL);
    CHECK_MSG(s == IB_ERR_NUMERIC && strstr(ib_last_error(), "keeps epoch 1"), "resume: %s", ib_last_error());

    ib_train_config off = diverging_config("diverge-unchecked");
    off.divergence_check = false;
    s = ib_train(&off, NULL); /* unwatched, it trains on: the loss stays finite */
    CHECK_MSG(s == IB_OK, "unchecked: %s", ib_last_error());
    cJSON *sum = ib_test_read_json(off.out_dir, "summary.json");
    CHECK_EQ_INT((int)json_number(sum, "epochs_done"), 3);
    cJSON_Delete(sum);
}

/* A checkpoint that cannot be written (a directory holds its name) fails
 * the run without reporting the epoch as done; the directory it leaves
 * (config.json, no last.safetensors) resumes from step 0 once the obstacle
 * is gone, to the weights of an uninterrupted run. */
static void count_epochs(void *ctx, const ib_epoch_report *r)
{
    (void)r;
    (*(int *)ctx)++;
}

static void test_failed_checkpoint_is_not_an_epoch(void)
{
    ib_train_config a = small_config("ckpt-fails-ref");
    a.epochs = 2;
    CHECK_OK(ib_train(&a, NULL));
    ib_train_config c = small_config("ckpt-fails");
    c.epochs = 2;
    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", c.out_dir);
    CHECK(mkdir(c.out_dir, 0777) == 0 && mkdir(path, 0777) == 0);
    int epochs = 0;
    ib_train_callbacks cb = {&epochs, NULL, count_epochs, NULL, NULL};
    ib_status s = ib_train(&c, &cb);
    CHECK_MSG(s == IB_ERR_IO, "status %d: %s", (int)s, ib_last_error());
    CHECK_EQ_INT(epochs, 0);
    CHECK(rmdir(path) == 0);
    CHECK_OK(ib_train_resume(c.out_dir, 0, &cb));
    CHECK_EQ_INT(epochs, 2);
    ib_params *pa = ib_test_run_weights(model_path, a.out_dir), *pb = ib_test_run_weights(model_path, c.out_dir);
    CHECK(memcmp(ib_params_values(pa), ib_params_values(pb), (size_t)ib_params_total(pa) * sizeof(float)) == 0);
    ib_params_free(pa);
    ib_params_free(pb);
}

/* The fc1.weight of a checkpoint's raw weights (malloc'd copy). */
static float *raw_tensor(const char *ckpt, const char *name, int64_t *n)
{
    ib_net_options o = ib_net_options_default();
    o.weights = IB_NET_WEIGHTS_RAW;
    ib_net *net = NULL;
    CHECK_OK(ib_net_open(ckpt, &o, &net));
    if (!net)
        return NULL;
    ib_params *p = ib_net_params(net);
    int i = ib_params_find(p, name);
    CHECK(i >= 0);
    *n = ib_params_numel(p, i);
    float *v = malloc((size_t)*n * sizeof *v);
    memcpy(v, ib_params_value(p, i), (size_t)*n * sizeof *v);
    ib_net_close(net);
    return v;
}

static int notes;
static void count_note(void *ctx, const char *text)
{
    (void)ctx;
    notes += strstr(text, "tensors loaded") != NULL;
}

/* --init-from starts a new run from a checkpoint's matching tensors;
 * --freeze keeps a prefix's parameters bit-identical through training and
 * through a resume; a prefix matching nothing and a missing checkpoint are
 * user errors (exit 2) before any work. */
static void test_init_from_and_freeze(void)
{
    ib_train_config a = small_config("init-a");
    a.epochs = 1;
    a.ema_decay = 0; /* the next run then starts from the raw weights */
    CHECK_OK(ib_train(&a, NULL));
    char src[1200];
    snprintf(src, sizeof src, "%.1100s/last.safetensors", a.out_dir);
    ib_train_config b = small_config("init-b");
    b.epochs = 2;
    b.max_steps = 30; /* stop inside epoch 2, then resume */
    snprintf(b.init_from, sizeof b.init_from, "%.1000s", src);
    snprintf(b.freeze, sizeof b.freeze, "fc1");
    ib_train_callbacks cb = {NULL, NULL, NULL, NULL, count_note};
    notes = 0;
    CHECK_OK(ib_train(&b, &cb));
    CHECK_EQ_INT(notes, 1);
    CHECK_OK(ib_train_resume(b.out_dir, 0, NULL));
    char dst[1200];
    snprintf(dst, sizeof dst, "%.1100s/last.safetensors", b.out_dir);
    int64_t n1 = 0, n2 = 0, m1 = 0, m2 = 0;
    float *w1 = raw_tensor(src, "fc1.weight", &n1), *w2 = raw_tensor(dst, "fc1.weight", &n2);
    float *v1 = raw_tensor(src, "fc2.weight", &m1), *v2 = raw_tensor(dst, "fc2.weight", &m2);
    CHECK(w1 && w2 && n1 == n2 && n1 > 0 && memcmp(w1, w2, (size_t)n1 * sizeof *w1) == 0); /* loaded, then frozen */
    CHECK(v1 && v2 && m1 == m2 && memcmp(v1, v2, (size_t)m1 * sizeof *v1) != 0);          /* loaded, then trained */
    free(w1);
    free(w2);
    free(v1);
    free(v2);
    char err[512], args[2600];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    snprintf(args, sizeof args, "train --model %s --dataset idx:%s --out %s/init-c --freeze nosuchlayer --epochs 1",
             model_path, data_dir, ib_test_tmpdir());
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "nosuchlayer") != NULL, "message: %s", err);
    snprintf(args, sizeof args, "train --model %s --dataset idx:%s --out %s/init-d --init-from %s/missing.safetensors "
             "--epochs 1", model_path, data_dir, ib_test_tmpdir(), ib_test_tmpdir());
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "missing.safetensors") != NULL, "message: %s", err);
}

/* beta over bottlenecks by depth; the default grows with depth (linear). */
static void test_beta_schedules(void)
{
    ib_objective o = ib_objective_default();
    CHECK_EQ_INT(o.schedule, IB_BETA_LINEAR);
    o.beta = 1e-3f;
    const float want[3][3] = {{1e-3f, 1e-3f, 1e-3f}, {1e-3f / 3, 2e-3f / 3, 1e-3f}, {2.5e-4f, 5e-4f, 1e-3f}};
    const ib_beta_schedule kinds[3] = {IB_BETA_EQUAL, IB_BETA_LINEAR, IB_BETA_GEOMETRIC};
    for (int k = 0; k < 3; k++) {
        o.schedule = kinds[k];
        for (int l = 0; l < 3; l++)
            CHECK_CLOSE(ib_objective_beta(&o, l, 3), want[k][l], 1e-6, 0);
        CHECK_CLOSE(ib_objective_beta(&o, 0, 1), 1e-3, 1e-6, 0); /* one bottleneck: beta itself */
    }
}

/* A run records a setting twice: config.json's key has the value, and the
 * checkpoint's metadata (its model text) contains the needles. */
static void check_recorded(const char *dir, const char *key, const char *value, const char *needle,
                           const char *needle2)
{
    cJSON *conf = ib_test_read_json(dir, "config.json");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(conf, key);
    CHECK_MSG(cJSON_IsString(v) && !strcmp(v->valuestring, value), "config.json's %s is not \"%s\"", key, value);
    cJSON_Delete(conf);
    char path[1200], *meta = NULL;
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    CHECK_OK(ib_checkpoint_read_metadata(path, &meta));
    CHECK_MSG(meta && strstr(meta, needle) && (!needle2 || strstr(meta, needle2)),
              "the checkpoint's metadata lacks '%s'%s%s", needle, needle2 ? " or " : "", needle2 ? needle2 : "");
    free(meta);
}

/* --init overrides the model file's initialisation; the run records it in
 * config.json and in the checkpoint's model text, so resume and eval rebuild
 * the same model. */
static void test_init_override(void)
{
    ib_train_config c = small_config("init-glorot");
    c.epochs = 1;
    c.init = 1 + IB_INIT_STYLE_GLOROT;
    CHECK_OK(ib_train(&c, NULL));
    check_recorded(c.out_dir, "init", "glorot", "init glorot", NULL);
}

/* --vib-cells-after adds cells to a model without cells; config.json and
 * the checkpoint record them, so the run resumes and evaluates with them. */
static void test_cells_added_by_name(void)
{
    char conv_path[1100];
    ib_test_write_text("tiny-conv.ibm",
                       "model tiny-conv\ninput 1 8 8\nclasses 4\nconv 4 k=3 pad=1 name=c1\nrelu\nflatten\n"
                       "linear 4 name=out\n",
                       conv_path, sizeof conv_path);
    ib_train_config c = small_config("cells-by-name");
    snprintf(c.model, sizeof c.model, "%.1000s", conv_path);
    snprintf(c.vib_cells_after, sizeof c.vib_cells_after, "c1");
    c.epochs = 1; /* then resumed for a second */
    CHECK_OK(ib_train(&c, NULL));
    check_recorded(c.out_dir, "vib_cells_after", "c1", "model tiny-conv-cells", "vibcell k=1 shift=-5 name=cell1");
    char path[1200];
    CHECK_OK(ib_train_resume(c.out_dir, 2, NULL));
    cJSON *sum = ib_test_read_json(c.out_dir, "summary.json");
    CHECK_EQ_INT((int64_t)json_number(sum, "epochs_done"), 2);
    cJSON_Delete(sum);
    /* the cell's KL is logged, and it is positive */
    snprintf(path, sizeof path, "%s/metrics.jsonl", c.out_dir);
    FILE *mf = fopen(path, "r");
    CHECK(mf != NULL);
    char line[1 << 14] = "";
    while (mf && fgets(line, sizeof line, mf)) {
    }
    if (mf)
        fclose(mf);
    cJSON *last = cJSON_Parse(line);
    const cJSON *kl = last ? cJSON_GetObjectItemCaseSensitive(last, "train_kl") : NULL;
    CHECK_MSG(cJSON_IsArray(kl) && cJSON_GetArraySize(kl) == 1 && cJSON_GetArrayItem(kl, 0)->valuedouble > 0,
              "metrics.jsonl has no positive KL of the one cell: %s", line);
    cJSON_Delete(last);
}

static void test_cli_user_errors(void)
{
    char err[1024], args[1500];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    struct {
        const char *args, *needle;
    } cases[] = {
        {"train --bogus", "unknown option '--bogus'"},
        {"train --beta -1", "beta must be"},
        {"train --init xavier", "--init must be one of"},
        {"train --epochs abc", "expects an integer"},
        {"train --model no-such-model", "unknown model"},
        {"train --model resnet20 --vib-cells-after layer9", "no layer of that name"},
        {"train --model resnet20 --vib-cells-after fc", "flat features"},
        {"models --vib-cells-after layer1 resnet20", "goes with --layers"},
        {"train --dataset idx:/no/such/dir --model resnet20", "no/such"},
        {"frobnicate", "unknown command"},
        {"eval /no/such/file.safetensors", "no/such/file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = ib_test_run_cli(cases[i].args, &to_err);
        CHECK_MSG(rc == 2, "'ibnet %s' exited %d (want 2): %s", cases[i].args, rc, err);
        CHECK_MSG(strstr(err, cases[i].needle) != NULL, "'ibnet %s' said: %s", cases[i].args, err);
    }
    /* a checkpoint from another model: resume a run whose config names a different model */
    ib_train_config c = small_config("other-model");
    c.epochs = 1;
    CHECK_OK(ib_train(&c, NULL));
    char other[1200], cfg[1200];
    ib_test_write_text("other.ibm",
                       "model other\ninput 1 8 8\nclasses 4\nflatten\nlinear 32 name=fc1\nrelu\nlinear 4 name=out\n",
                       other, sizeof other);
    cJSON *conf = ib_test_read_json(c.out_dir, "config.json");
    cJSON_ReplaceItemInObject(conf, "model", cJSON_CreateString(other));
    cJSON_ReplaceItemInObject(conf, "epochs", cJSON_CreateNumber(2));
    char *text = cJSON_Print(conf);
    snprintf(cfg, sizeof cfg, "%s/config.json", c.out_dir);
    FILE *f = fopen(cfg, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(conf);
    snprintf(args, sizeof args, "train --resume %s", c.out_dir);
    int rc = ib_test_run_cli(args, &to_err);
    CHECK_MSG(rc == 2, "resume with another model exited %d: %s", rc, err);
    CHECK_MSG(strstr(err, "last.safetensors") != NULL, "message: %s", err);

    /* a checkpoint whose step count was damaged (same length, now negative) */
    ib_train_config d = small_config("damaged-step");
    d.epochs = 1;
    CHECK_OK(ib_train(&d, NULL));
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", d.out_dir);
    f = fopen(ckpt, "r+b");
    CHECK(f != NULL);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    const char *from = "\\\"step\\\":20,";
    char *at = NULL;
    for (size_t k = 0; !at && k + strlen(from) <= n; k++)
        if (memcmp(buf + k, from, strlen(from)) == 0)
            at = buf + k;
    CHECK_MSG(at != NULL, "no %s in the checkpoint", from);
    if (at) {
        memcpy(at + strlen(from) - 3, "-2", 2); /* 20 -> -2 */
        fseek(f, 0, SEEK_SET);
        fwrite(buf, 1, n, f);
    }
    fclose(f);
    snprintf(args, sizeof args, "train --resume %s", d.out_dir);
    rc = ib_test_run_cli(args, &to_err);
    CHECK_MSG(rc == 2, "resume of a damaged checkpoint exited %d: %s", rc, err);
    CHECK_MSG(strstr(err, "out of range") != NULL, "message: %s", err);
}

/* config.json: what reads, what is refused with a message, and the round
 * trip (also fuzzed: fuzz/fuzz_config.c). */
static void test_config_json_reader(void)
{
    ib_train_config d = ib_train_config_default(), c = d;
    char *text = ib_train_config_to_json(&d);
    CHECK(text != NULL);
    CHECK_OK(ib_train_config_from_json(text, &c));
    char *again = ib_train_config_to_json(&c);
    CHECK(again && strcmp(text, again) == 0);
    free(text);
    free(again);
    /* a seed keeps all 64 bits as a string of digits */
    c = d;
    CHECK_OK(ib_train_config_from_json("{\"seed\": \"18446744073709551615\", \"epochs\": 7}", &c));
    CHECK(c.seed == UINT64_MAX && c.epochs == 7);
    struct {
        const char *json, *needle;
    } bad[] = {
        {"[1, 2]", "not a JSON object"},
        {"{\"epochs\": 3, \"no_such_key\": 1}", "unknown key 'no_such_key'"},
        {"{\"epochs\": 2.5}", "'epochs' must be an integer"},
        {"{\"eval_samples\": 5e9}", "'eval_samples' must be an integer"},
        {"{\"seed\": 1e30}", "'seed' must be a non-negative integer"},
        {"{\"seed\": \"18446744073709551616\"}", "'seed' must be a non-negative integer"},
        {"{\"seed\": \"-1\"}", "'seed' must be a non-negative integer"},
        {"{\"seed\": \" 5\"}", "'seed' must be a non-negative integer"},
        {"{\"lr\": 1e300}", "'lr' must be a finite number"},
        {"{\"optimizer\": \"rmsprop\"}", "'optimizer' must be one of"},
        {"{\"betas\": [1e-3, 1e60]}", "'betas' must hold finite single-precision numbers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = d;
        ib_status st = ib_train_config_from_json(bad[i].json, &c);
        CHECK_MSG(st == IB_ERR_FORMAT, "%s: status %d", bad[i].json, (int)st);
        CHECK_MSG(strstr(ib_last_error(), bad[i].needle) != NULL, "%s: %s", bad[i].json, ib_last_error());
    }
}

/* Every choice of every enum flag reaches the configuration under the name
 * config.json uses (the CLI and the config share one name table). */
static void test_dry_run_maps_every_choice(void)
{
    struct {
        const char *flag, *key, *choices[6];
    } flags[] = {
        {"--init", "init", {"model", "pytorch", "glorot", "kaiming"}},
        {"--optimizer", "optimizer", {"sgd", "adam", "adamw"}},
        {"--schedule", "schedule", {"constant", "step", "exponential", "multistep", "cosine"}},
        {"--beta-schedule", "beta_schedule", {"equal", "linear", "geometric"}},
        {"--input-norm", "input_norm", {"unit", "symmetric", "standardize"}},
        {"--noise-kind", "noise_kind", {"symmetric", "pair", "pair-cifar10", "pair-next"}},
    };
    char args[512], out[1 << 14];
    ib_test_cli to_out = {.out = out, .out_len = sizeof out, .out_err = true};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
        for (int k = 0; flags[f].choices[k]; k++) {
            snprintf(args, sizeof args, "train %s %s --dry-run", flags[f].flag, flags[f].choices[k]);
            CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
            cJSON *c = cJSON_Parse(out);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, flags[f].key);
            CHECK_MSG(cJSON_IsString(v) && strcmp(v->valuestring, flags[f].choices[k]) == 0,
                      "'ibnet %s' gave %s = %s", args, flags[f].key, cJSON_IsString(v) ? v->valuestring : "?");
            cJSON_Delete(c);
        }
    /* the options are checked as for a real run */
    CHECK_EQ_INT(ib_test_run_cli("train --dry-run --beta -1", &to_out), 2);
    CHECK_MSG(strstr(out, "beta must be") != NULL, "%s", out);
}

/* --dry-run prints the paths per example and the training graph's memory
 * for every model (stderr), the particle twin beside its one-path model. */
static void test_dry_run_reports_memory(void)
{
    char err[2048];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    CHECK_EQ_INT(ib_test_run_cli("train --model mlp --batch-size 16 --dry-run", &to_err), 0);
    CHECK_MSG(strstr(err, "mlp: 1 path per example; training graph memory ") && strstr(err, "for a batch of 16"),
              "%s", err);
    CHECK_EQ_INT(ib_test_run_cli("train --recipe imb-mnist --dry-run", &to_err), 0);
    CHECK_MSG(strstr(err, "1024 particle paths per example") && strstr(err, "runs 16384 rows") &&
                  strstr(err, "training graph memory "),
              "%s", err);
}

/* A batch-norm model trained with an EMA whose statistics are not
 * recomputed (--ema-bn-batches 0) gets a warning; by default, without batch
 * norm or without EMA, none. */
static void test_ema_batchnorm_warning(void)
{
    char err[4096];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err, .all_err = true};
    /* the statistics are recomputed for the EMA weights by default: nothing to warn of */
    CHECK_EQ_INT(ib_test_run_cli("train --model resnet8-mnist --ema 0.999 --dry-run", &to_err), 0);
    CHECK_MSG(!strstr(err, "warning"), "%s", err);
    CHECK_EQ_INT(ib_test_run_cli("train --model resnet8-mnist --ema 0.999 --ema-bn-batches 0 --dry-run", &to_err), 0);
    CHECK_MSG(strstr(err, "warning: resnet8-mnist has batch norm") && strstr(err, "about 10000 steps") &&
                  strstr(err, "--ema-bn-batches 0"),
              "%s", err);
    CHECK_EQ_INT(ib_test_run_cli("train --model resnet8-mnist --ema 0.999 --ema-bn-batches -1 --dry-run", &to_err), 2);
    CHECK_EQ_INT(ib_test_run_cli("train --model resnet8-mnist --ema 0 --dry-run", &to_err), 0);
    CHECK_MSG(!strstr(err, "warning"), "%s", err);
    CHECK_EQ_INT(ib_test_run_cli("train --model lenet --ema 0.999 --dry-run", &to_err), 0);
    CHECK_MSG(!strstr(err, "warning"), "%s", err);
}

/* A recipe is exactly the flags results.md lists for it; flags given with
 * it override it. */
static void test_recipes_equal_their_flags(void)
{
    struct {
        const char *recipe, *flags;
    } cases[] = {
        {"deep-vib", "--epochs 200"},
        {"cifar-resnet", "--model resnet20 --dataset cifar10 --epochs 50 --batch-size 128 --optimizer sgd --lr 0.1 "
                         "--momentum 0.9 --nesterov --weight-decay 5e-4 --schedule cosine --warmup 1 --augment "
                         "--input-norm standardize --init kaiming --ema 0"},
        {"cellvib-mnist", "--model lenet-vibcells --epochs 8 --batch-size 64 --optimizer adam --adam-beta1 0.9 "
                          "--lr 1e-3 --schedule constant --beta 1e-5 --beta-schedule linear --input-norm unit --ema 0"},
        {"vub-mnist", "--epochs 200 --objective vub --entropy-weight 1 --entropy-cap 1.9572"},
        {"imb-mnist", "--model imb-mlp --objective imb --gammas 1,0.8,1 --betas 1e-4,1e-4 --epochs 200 --batch-size 16 "
                      "--eval-batch-size 50 --optimizer adamax --lr 0.01 --adam-beta1 0.9 --clip-grad-norm 5 --schedule constant "
                      "--val-size 1000 --patience 20 --eval-samples 1 --input-norm unit --ema 0"},
        {"vsd-cifar10", "--model resnet20-vsd --dataset cifar10 --epochs 50 --batch-size 128 --optimizer sgd --lr 0.1 "
                        "--momentum 0.9 --nesterov --weight-decay 5e-4 --schedule cosine --warmup 1 --augment "
                        "--input-norm standardize --init kaiming --ema 0 --objective vsd --label-smoothing 0.1 "
                        "--vsd-weight 2 --beta 1e-4"},
        {"vcd-noisy-mnist", "--model cnn-vsd --dataset noisy-mnist-2view --objective vcd+vml --epochs 10 "
                            "--batch-size 64 --optimizer adam --adam-beta1 0.9 --lr 1e-3 --schedule constant "
                            "--beta 1e-4 --label-smoothing 0.1 --input-norm unit --ema 0"},
    };
    static char a[1 << 14], b[1 << 14];
    ib_test_cli to_a = {.out = a, .out_len = sizeof a, .out_err = true};
    char args[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "train --recipe %s --dry-run", cases[i].recipe);
        CHECK_EQ_INT(ib_test_run_cli(args, &to_a), 0);
        snprintf(args, sizeof args, "train %s --dry-run", cases[i].flags);
        CHECK_EQ_INT(ib_test_run_cli(args, &(ib_test_cli){.out = b, .out_len = sizeof b, .out_err = true}), 0);
        CHECK_MSG(strcmp(a, b) == 0, "--recipe %s differs from its flags:\n%s\n%s", cases[i].recipe, a, b);
    }
    CHECK_EQ_INT(ib_test_run_cli("train --recipe cifar-resnet --epochs 3 --model resnet20-vibcells --dry-run", &to_a),
                 0);
    cJSON *c = cJSON_Parse(a);
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ_INT((int64_t)json_number(c, "epochs"), 3);
        CHECK(json_number(c, "lr_total") == 3);
        CHECK(json_number(c, "weight_decay") > 4e-4);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "model");
        CHECK(cJSON_IsString(m) && !strcmp(m->valuestring, "resnet20-vibcells"));
    }
    cJSON_Delete(c);
    CHECK_EQ_INT(ib_test_run_cli("train --recipe cifar --dry-run", &to_a), 2);
    CHECK_EQ_INT(ib_test_run_cli("train --recipe deep-vib --config x.json --dry-run", &to_a), 2);
    CHECK_MSG(strstr(a, "use one") != NULL, "%s", a);
    ib_train_config cfg;
    CHECK_EQ_INT(ib_train_config_recipe("nope", &cfg), IB_ERR_ARG);
    int n_recipes = 0;
    for (; ib_train_recipe_name(n_recipes); n_recipes++)
        CHECK_OK(ib_train_config_recipe(ib_train_recipe_name(n_recipes), &cfg));
    /* every recipe has its case above */
    CHECK_EQ_INT(n_recipes, (int)(sizeof cases / sizeof cases[0]));
    CHECK(ib_train_recipe_name(-1) == NULL);
}

/* The settings table is the command line: every setting with a flag is in
 * `ibnet train --help`, every config.json key is one of the table's, and
 * ib_train_config_set reads what the flags give (refusing, never cutting). */
/* --objective offers exactly the registered methods, in registry order: a
 * new method needs no edit of the trainer's table to be offered. */
static void test_objective_choices_are_the_registry(void)
{
    ib_config_field f;
    const char *const *choices = NULL;
    for (int i = 0; ib_train_config_field(i, &f); i++)
        if (!strcmp(f.key, "objective"))
            choices = f.choices;
    CHECK(choices != NULL);
    int n = 0;
    for (; choices && choices[n]; n++)
        CHECK_MSG(ib_method_at(n) && !strcmp(choices[n], ib_method_at(n)->name), "choice %d '%s'", n, choices[n]);
    CHECK(ib_method_at(n) == NULL && n >= 7);
}

static void test_settings_table_is_the_command_line(void)
{
    static char help[1 << 15];
    ib_test_cli to_help = {.out = help, .out_len = sizeof help, .out_err = true};
    CHECK_EQ_INT(ib_test_run_cli("train --help", &to_help), 0);
    ib_train_config d = ib_train_config_default();
    char *text = ib_train_config_to_json(&d);
    cJSON *o = cJSON_Parse(text);
    free(text);
    int n = 0, n_keys = 0;
    ib_config_field f;
    for (; ib_train_config_field(n, &f); n++) {
        CHECK_MSG(cJSON_GetObjectItemCaseSensitive(o, f.key) != NULL, "config.json lacks the key '%s'", f.key);
        if (f.flag[0]) {
            char needle[80];
            snprintf(needle, sizeof needle, "  %s ", f.flag);
            CHECK_MSG(strstr(help, needle) != NULL, "--help lacks %s", f.flag);
            if (f.type == IB_CONFIG_CHOICE)
                for (int k = 0; f.choices[k]; k++)
                    CHECK_MSG(strstr(help, f.choices[k]) != NULL, "--help lacks %s's choice %s", f.flag, f.choices[k]);
            ib_train_config byflag = d, bykey = d;
            /* the flag and the key name the same setting */
            const char *v = f.type == IB_CONFIG_BOOL ? "true" : f.shown[0] ? f.shown : "";
            if (f.type != IB_CONFIG_TEXT && f.type != IB_CONFIG_LIST && !v[0])
                continue;
            CHECK_MSG(ib_train_config_set(&byflag, f.flag, v) == IB_OK, "%s %s: %s", f.flag, v, ib_last_error());
            CHECK_MSG(ib_train_config_set(&bykey, f.key, v) == IB_OK, "%s %s: %s", f.key, v, ib_last_error());
            CHECK_MSG(memcmp(&byflag, &bykey, sizeof byflag) == 0, "%s and %s differ", f.flag, f.key);
        }
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, o) n_keys++;
    CHECK_EQ_INT(n_keys, n + 1); /* the settings and the provenance block */
    cJSON_Delete(o);
    /* the one learning rate: the flag, the key and the optimizer's field */
    ib_train_config c = d;
    CHECK_OK(ib_train_config_set(&c, "--lr", "0.25"));
    CHECK(c.optim.lr == 0.25f);
    CHECK_OK(ib_train_config_from_json("{\"lr\": 0.5}", &c));
    CHECK(c.optim.lr == 0.5f);
    /* values: whole, in range, never cut */
    c = d;
    struct {
        const char *name, *text, *needle;
    } bad[] = {
        {"--epochs", "3x", "expects an integer"},
        {"--eval-samples", "99999999999", "out of range"},
        {"--seed", "-1", "non-negative integer"},
        {"--lr", "1e39", "finite number"},
        {"--lr", "nan", "finite number"},
        {"--schedule", "linear", "must be one of constant|step"},
        {"--betas", "1,x", "comma-separated"},
        {"--lr-milestones", "1,2,3,4,5,6,7,8,9", "at most 8"},
        {"--nesterov", "yes", "true or false"},
        {"--no-such-flag", "1", "unknown setting"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(ib_train_config_set(&c, bad[i].name, bad[i].text) == IB_ERR_ARG, "%s %s", bad[i].name, bad[i].text);
        CHECK_MSG(strstr(ib_last_error(), bad[i].needle) != NULL, "%s %s: %s", bad[i].name, bad[i].text,
                  ib_last_error());
    }
    CHECK(memcmp(&c, &d, sizeof c) == 0); /* nothing changed by a refused value */
    char long_path[1100];
    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = 0;
    CHECK(ib_train_config_set(&c, "out_dir", long_path) == IB_ERR_ARG);
    CHECK_MSG(strstr(ib_last_error(), "1099 bytes") != NULL, "%s", ib_last_error());
    long_path[1024] = 0;
    CHECK(ib_train_config_set(&c, "out_dir", long_path) == IB_ERR_ARG);
    long_path[1023] = 0;
    CHECK_OK(ib_train_config_set(&c, "out_dir", long_path));
    CHECK_EQ_INT((int64_t)strlen(c.out_dir), 1023);
    /* an optimizer of another kind brings its weight decay; one given after it stays */
    c = d;
    CHECK_OK(ib_train_config_set(&c, "optimizer", "adamw"));
    CHECK(c.optim.weight_decay == 0.01f && c.optim.lr == d.optim.lr);
    CHECK_OK(ib_train_config_set(&c, "weight_decay", "0.05"));
    CHECK_OK(ib_train_config_set(&c, "optimizer", "adamw"));
    CHECK(c.optim.weight_decay == 0.05f);
    CHECK_OK(ib_train_config_set(&c, "--label-noise", "0.2"));
    CHECK(c.label_noise && c.noise_rate == 0.2f);
    CHECK_OK(ib_train_config_set(&c, "--label-noise", "0"));
    CHECK(!c.label_noise);
}

/* config.json says where a run came from: the commit (or version), the
 * thread count and the library versions; reading it back skips that block. */
static void test_config_records_provenance(void)
{
    ib_train_config d = ib_train_config_default(), c;
    char *text = ib_train_config_to_json(&d);
    cJSON *o = cJSON_Parse(text);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "provenance");
    CHECK(cJSON_IsObject(p));
    const char *keys[] = {"ibnet", "commit", "openblas", "onednn", "cjson"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[i]);
        CHECK_MSG(cJSON_IsString(v) && v->valuestring[0], "provenance.%s is not a non-empty string", keys[i]);
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "ibnet");
    CHECK(cJSON_IsString(v) && strcmp(v->valuestring, ib_version()) == 0);
    v = cJSON_GetObjectItemCaseSensitive(p, "openblas");
    CHECK_MSG(cJSON_IsString(v) && strstr(v->valuestring, "OpenBLAS") != NULL, "openblas: %s",
              cJSON_IsString(v) ? v->valuestring : "?");
    v = cJSON_GetObjectItemCaseSensitive(p, "threads");
    CHECK(cJSON_IsNumber(v) && (int)v->valuedouble == ib_get_threads());
    /* read back: not a setting, and any recorded values are accepted */
    CHECK_OK(ib_train_config_from_json(text, &c));
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    CHECK_OK(ib_train_config_from_json("{\"epochs\": 3, \"provenance\": {\"commit\": \"v9\", \"threads\": 64}}", &c));
    CHECK(c.epochs == 3);
    CHECK(ib_train_config_from_json("{\"provenance\": 5}", &c) == IB_ERR_FORMAT);
    cJSON_Delete(o);
    free(text);
}

/* Path-like flags longer than the 1023 bytes a path may have are refused
 * (exit 2), never cut to a different directory. */
static void test_cli_refuses_long_paths(void)
{
    char dir[1200], args[4096], err[1024], cut[1100];
    /* 1,100 bytes made of 99-byte components, so the cut 1,023-byte prefix
     * would have been a directory the system can create */
    snprintf(dir, sizeof dir, "%s/long", ib_test_tmpdir());
    while (strlen(dir) < 1100) {
        size_t n = strlen(dir);
        snprintf(dir + n, sizeof dir - n, "/%.*s", (int)(1100 - n - 1 < 98 ? 1100 - n - 1 : 98),
                 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    }
    CHECK_EQ_INT((int64_t)strlen(dir), 1100);
    snprintf(cut, sizeof cut, "%.1023s", dir);
    const char *flags[] = {"--out", "--data", "--model", "--resume"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (strcmp(flags[i], "--resume") == 0)
            snprintf(args, sizeof args, "train --resume %s", dir);
        else
            snprintf(args, sizeof args, "train --dataset idx:%s --model %s --epochs 1 %s %s", data_dir, model_path,
                     flags[i], dir);
        int rc = ib_test_run_cli(args, &(ib_test_cli){.err = err, .err_len = sizeof err});
        CHECK_MSG(rc == 2, "a 1,100-byte %s exited %d: %s", flags[i], rc, err);
        CHECK_MSG(strstr(err, flags[i]) != NULL && strstr(err, "1100 bytes") != NULL, "%s: %s", flags[i], err);
    }
    struct stat st;
    CHECK_MSG(stat(cut, &st) != 0, "the cut path %s was created", cut);
    snprintf(cut, sizeof cut, "%s/long", ib_test_tmpdir());
    CHECK_MSG(stat(cut, &st) != 0, "%s was created", cut);
}

/* IBNET_THREADS and --threads that are not a thread count are named, not
 * ignored or wrapped; --resume refuses settings it would ignore, and warns
 * when the thread count differs from the run's. */
static void test_cli_threads_and_resume_flags(void)
{
    char err[1024], args[1500];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    const char *bad_env[] = {"abc", "-3", "99999999999"};
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        setenv("IBNET_THREADS", bad_env[i], 1);
        int rc = ib_test_run_cli("train --dry-run", &to_err);
        CHECK_MSG(rc == 0, "IBNET_THREADS=%s: exit %d", bad_env[i], rc);
        char needle[64];
        snprintf(needle, sizeof needle, "IBNET_THREADS='%s' is not a thread count", bad_env[i]);
        CHECK_MSG(strstr(err, needle) != NULL, "IBNET_THREADS=%s: %s", bad_env[i], err);
    }
    setenv("IBNET_THREADS", "2", 1);
    CHECK_EQ_INT(ib_test_run_cli("train --dry-run", &to_err), 0);
    CHECK_MSG(strstr(err, "IBNET_THREADS") == NULL, "a good IBNET_THREADS gave: %s", err);
    CHECK_EQ_INT(ib_test_run_cli("train --threads 99999999999 --dry-run", &to_err), 2);
    CHECK_MSG(strstr(err, "--threads must be in 0..") != NULL, "%s", err);
    CHECK_EQ_INT(ib_test_run_cli("train --threads -3 --dry-run", &to_err), 2);

    ib_train_config c = small_config("resume-flags");
    c.epochs = 1;
    CHECK_OK(ib_train(&c, NULL));
    const char *ignored[] = {"--lr 0.1", "--model vib-mlp", "--nesterov", "--data /tmp", "--recipe deep-vib"};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        snprintf(args, sizeof args, "train --resume %s %s", c.out_dir, ignored[i]);
        int rc = ib_test_run_cli(args, &to_err);
        CHECK_MSG(rc == 2, "'%s' exited %d: %s", ignored[i], rc, err);
        CHECK_MSG(strstr(err, "cannot be given with --resume") != NULL, "%s: %s", ignored[i], err);
    }
    /* another thread count than the run's: said, then the run continues */
    cJSON *conf = ib_test_read_json(c.out_dir, "config.json");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(conf, "provenance"), "threads");
    CHECK(cJSON_IsNumber(t));
    int was = cJSON_IsNumber(t) ? (int)t->valuedouble : 1, other = was == 1 ? 2 : 1;
    cJSON_Delete(conf);
    snprintf(args, sizeof args, "train --resume %s --epochs 2 --threads %d", c.out_dir, other);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    CHECK_MSG(strstr(err, "warning") && strstr(err, "threads"), "no warning: %s", err);
    /* the same count: no word */
    snprintf(args, sizeof args, "train --resume %s --epochs 3 --threads %d", c.out_dir, other);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    CHECK_MSG(err[0] == 0 || !strstr(err, "warning"), "a warning for the same thread count: %s", err);
}

static void test_predict_and_eval_commands(void)
{
    ib_train_config c = small_config("predict");
    c.epochs = 2;
    CHECK_OK(ib_train(&c, NULL));
    /* two test images of known classes as PNG files */
    ib_dataset *test = NULL;
    CHECK_OK(ib_dataset_open(c.dataset, "test", NULL, NULL, &test));
    char png[2][1200], args[4096], out[8192];
    ib_test_cli to_out = {.out = out, .out_len = sizeof out, .out_err = true};
    for (int i = 0; i < 2; i++) {
        snprintf(png[i], sizeof png[i], "%s/img%d.png", ib_test_tmpdir(), i);
        CHECK_OK(ib_png_write(png[i], test->images + i * 64, 1, 8, 8));
    }
    snprintf(args, sizeof args, "predict %s/best.safetensors %s %s --json", c.out_dir, png[0], png[1]);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
    for (int i = 0; i < 2; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"class\": %d", test->labels[i]);
        const char *line = strstr(out, png[i]);
        CHECK_MSG(line && strstr(line, want) && (!strchr(line, '\n') || strstr(line, want) < strchr(line, '\n')),
                  "predict output lacks %s for %s:\n%s", want, png[i], out);
    }
    /* an image of the wrong size is a user error */
    char big[1200];
    snprintf(big, sizeof big, "%s/big.png", ib_test_tmpdir());
    uint8_t px[3 * 9 * 9] = {0};
    CHECK_OK(ib_png_write(big, px, 3, 9, 9));
    snprintf(args, sizeof args, "predict %s/best.safetensors %s", c.out_dir, big);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 2);
    CHECK_MSG(strstr(out, "the model takes 8x8") != NULL, "%s", out);
    /* eval reproduces the run's final test accuracy (same EMA weights, same noise keys) */
    snprintf(args, sizeof args, "eval %s/last.safetensors --json", c.out_dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
    cJSON *e = cJSON_Parse(out), *s = ib_test_read_json(c.out_dir, "summary.json");
    CHECK_MSG(e != NULL, "eval printed: %s", out);
    CHECK(json_number(e, "acc_avg") == json_number(s, "test_acc_avg"));
    CHECK(json_number(e, "acc_1shot") == json_number(s, "test_acc_1shot"));
    CHECK_EQ_INT((int)json_number(e, "n"), 400);
    cJSON_Delete(e);
    cJSON_Delete(s);
    /* --repeats R draws the noise with seeds N..N+R-1: its mean is the mean
     * of R single evaluations with --sample-seed N+k */
    double sum_avg = 0, sum_one = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(args, sizeof args, "eval %s/last.safetensors --json --sample-seed %d", c.out_dir, 7 + k);
        CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
        e = cJSON_Parse(out);
        CHECK_MSG(e != NULL, "eval printed: %s", out);
        sum_avg += json_number(e, "acc_avg");
        sum_one += json_number(e, "acc_1shot");
        cJSON_Delete(e);
    }
    snprintf(args, sizeof args, "eval %s/last.safetensors --json --sample-seed 7 --repeats 3", c.out_dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 0);
    e = cJSON_Parse(out);
    CHECK_MSG(e != NULL, "eval printed: %s", out);
    CHECK_NEAR(json_number(e, "acc_avg"), sum_avg / 3, 1e-6);
    CHECK_NEAR(json_number(e, "acc_1shot"), sum_one / 3, 1e-6);
    cJSON *spread = cJSON_GetObjectItemCaseSensitive(e, "acc_1shot_spread");
    CHECK(spread && json_number(spread, "min") <= json_number(e, "acc_1shot") &&
          json_number(e, "acc_1shot") <= json_number(spread, "max"));
    CHECK_EQ_INT((int)json_number(e, "repeats"), 3);
    cJSON_Delete(e);
    snprintf(args, sizeof args, "eval %s/last.safetensors --repeats 0", c.out_dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_out), 2);
    CHECK_MSG(strstr(out, "--repeats in 1..") != NULL, "%s", out);
    ib_dataset_free(test);
}

int main(void)
{
    ib_set_threads(1);
    setup_once();
    IB_RUN(test_training_learns);
    IB_RUN(test_kl_falls_as_beta_rises);
    IB_RUN(test_resume_equals_uninterrupted);
    IB_RUN(test_same_seed_same_weights);
    IB_RUN(test_nan_loss_stops_with_a_message);
    IB_RUN(test_finite_divergence_keeps_the_last_checkpoint);
    IB_RUN(test_failed_checkpoint_is_not_an_epoch);
    IB_RUN(test_beta_schedules);
    IB_RUN(test_init_override);
    IB_RUN(test_cells_added_by_name);
    IB_RUN(test_init_from_and_freeze);
    IB_RUN(test_stop_at_epoch_end);
    IB_RUN(test_cli_user_errors);
    IB_RUN(test_config_json_reader);
    IB_RUN(test_dry_run_maps_every_choice);
    IB_RUN(test_dry_run_reports_memory);
    IB_RUN(test_ema_batchnorm_warning);
    IB_RUN(test_recipes_equal_their_flags);
    IB_RUN(test_settings_table_is_the_command_line);
    IB_RUN(test_objective_choices_are_the_registry);
    IB_RUN(test_config_records_provenance);
    IB_RUN(test_cli_refuses_long_paths);
    IB_RUN(test_cli_threads_and_resume_flags);
    IB_RUN(test_predict_and_eval_commands);
    return ib_test_summary();
}
