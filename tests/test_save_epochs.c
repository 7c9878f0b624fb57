/*
 * test_save_epochs.c — `ibnet train --save-epochs` (src/train/snapshots.c):
 *  - a run with --save-epochs 0,1,3 writes epoch-0/1/3.safetensors and no
 *    other snapshot; epoch 0 holds the initial weights (those a one-step
 *    run starts from), epoch 3 the last epoch's (last.safetensors' weights,
 *    no EMA here), and the run trains bit for bit as one without snapshots;
 *  - a run stopped inside epoch 2 and resumed keeps its snapshots and ends
 *    with the same snapshots as the uninterrupted run (tensor bytes equal);
 *  - bad lists (beyond --epochs, listed twice, negative, not numbers) are
 *    refused by the configuration check, and by the CLI with exit code 2
 *    before the run directory is made.
 */
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

static char data_dir[1024], model_path[1024];

static void setup_once(void)
{
    ib_test_blob_dir("snap-blobs", 200, 100, 41, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("snap-mlp.ibm",
                       "model snap-mlp\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 16 name=fc1\nrelu\n"
                       "linear 4 name=out\n",
                       model_path, sizeof model_path);
}

static ib_train_config config(const char *run)
{
    ib_train_config c = ib_test_train_config(model_path, data_dir, run);
    c.epochs = 3;
    c.batch_size = 50;
    c.optim.lr = 3e-3f;
    c.eval_samples = 1;
    snprintf(c.save_epochs, sizeof c.save_epochs, "0,1,3");
    return c;
}

/* The tensor bytes of a safetensors file (after its header, which holds
 * the metadata: the configuration and the step differ between runs). */
static unsigned char *tensor_bytes(const char *dir, const char *file, size_t *n)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f)
        return NULL;
    unsigned char len8[8];
    unsigned char *buf = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t h = 0;
        for (int k = 7; k >= 0; k--)
            h = h << 8 | len8[k];
        fseek(f, 0, SEEK_END);
        long end = ftell(f);
        if ((long)(8 + h) <= end) {
            *n = (size_t)(end - (long)(8 + h));
            buf = malloc(*n + 1);
            fseek(f, (long)(8 + h), SEEK_SET);
            if (fread(buf, 1, *n, f) != *n)
                *n = 0;
        }
    }
    fclose(f);
    return buf;
}

static bool exists(const char *dir, const char *file)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return stat(path, &st) == 0;
}

/* same: a's tensor bytes equal b's (or the start of b's when b is a
 * last.safetensors, whose weights come before the optimizer's state) */
static void check_same_tensors(const char *a_dir, const char *a, const char *b_dir, const char *b, bool same)
{
    size_t na, nb;
    unsigned char *x = tensor_bytes(a_dir, a, &na), *y = tensor_bytes(b_dir, b, &nb);
    CHECK_MSG(x && y && na > 0, "%s/%s or %s/%s unreadable", a_dir, a, b_dir, b);
    if (x && y)
        CHECK_MSG(((strstr(b, "last") ? na <= nb : na == nb) && memcmp(x, y, na) == 0) == same, "%s/%s vs %s/%s: expected %s", a_dir, a, b_dir, b,
                  same ? "equal" : "different");
    free(x);
    free(y);
}

static volatile int stop_now;

static void stop_in_epoch_2(void *ctx, const ib_train_progress *p)
{
    (void)ctx;
    if (p->epoch == 2 && p->batch == 2)
        stop_now = 1;
}

static void test_snapshots_and_resume(void)
{
    ib_train_config c = config("snap-full");
    CHECK_OK(ib_train(&c, NULL));
    CHECK(exists(c.out_dir, "epoch-0.safetensors") && exists(c.out_dir, "epoch-1.safetensors") &&
          exists(c.out_dir, "epoch-3.safetensors") && !exists(c.out_dir, "epoch-2.safetensors"));
    check_same_tensors(c.out_dir, "epoch-3.safetensors", c.out_dir, "last.safetensors", true);
    check_same_tensors(c.out_dir, "epoch-0.safetensors", c.out_dir, "epoch-1.safetensors", false);

    /* the same run without snapshots trains the same weights */
    ib_train_config plain = config("snap-none");
    plain.save_epochs[0] = 0;
    CHECK_OK(ib_train(&plain, NULL));
    check_same_tensors(c.out_dir, "last.safetensors", plain.out_dir, "last.safetensors", true);
    CHECK(!exists(plain.out_dir, "epoch-0.safetensors"));

    /* epoch 0 is the initial weights: a run of one step starts from them */
    ib_train_config one = config("snap-one-step");
    one.epochs = 1;
    one.max_steps = 1;
    snprintf(one.save_epochs, sizeof one.save_epochs, "0");
    CHECK_OK(ib_train(&one, NULL));
    check_same_tensors(c.out_dir, "epoch-0.safetensors", one.out_dir, "epoch-0.safetensors", true);
    check_same_tensors(one.out_dir, "epoch-0.safetensors", one.out_dir, "last.safetensors", false);

    /* stopped inside epoch 2, resumed: the snapshots stay and end as the full run's */
    ib_train_config r = config("snap-resumed");
    stop_now = 0;
    ib_train_callbacks cb = {NULL, stop_in_epoch_2, NULL, &stop_now, NULL};
    CHECK_OK(ib_train(&r, &cb));
    stop_now = 0;
    CHECK(exists(r.out_dir, "epoch-0.safetensors") && exists(r.out_dir, "epoch-1.safetensors") &&
          !exists(r.out_dir, "epoch-3.safetensors"));
    CHECK_OK(ib_train_resume(r.out_dir, 0, NULL));
    const char *snaps[] = {"epoch-0.safetensors", "epoch-1.safetensors", "epoch-3.safetensors"};
    for (int k = 0; k < 3; k++)
        check_same_tensors(c.out_dir, snaps[k], r.out_dir, snaps[k], true);
}

static void test_bad_lists(void)
{
    ib_train_config c = config("snap-bad");
    const char *bad[] = {"0,4", "1,1", "-1", "1,,2", "1,", "a", "1 2", "+1", " 1", "99999999999999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(c.save_epochs, sizeof c.save_epochs, "%s", bad[k]);
        CHECK_MSG(ib_train_config_check(&c) == IB_ERR_ARG, "'%s' was accepted", bad[k]);
    }
    snprintf(c.save_epochs, sizeof c.save_epochs, "3,0,2");
    CHECK_OK(ib_train_config_check(&c));
    const char *why[][2] = {{"0,1,5", "beyond"}, {"2,2", "twice"}, {"-1", "--save-epochs"}};
    for (int k = 0; k < 3; k++) {
        char args[3000], err[512];
        snprintf(args, sizeof args, "train --model %s --dataset idx:%s --epochs 3 --out %s/cli-snap --save-epochs %s",
                 model_path, data_dir, ib_test_tmpdir(), why[k][0]);
        CHECK_EQ_INT(ib_test_run_cli(args, &(ib_test_cli){.err = err, .err_len = sizeof err}), 2);
        CHECK_MSG(strstr(err, why[k][1]) != NULL, "%s", err);
        CHECK(!exists(ib_test_tmpdir(), "cli-snap"));
    }
}

int main(void)
{
    ib_set_threads(1);
    setup_once();
    IB_RUN(test_snapshots_and_resume);
    IB_RUN(test_bad_lists);
    return ib_test_summary();
}
