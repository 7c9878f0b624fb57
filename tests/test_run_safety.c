/*
 * test_run_safety.c — the small modules that keep a run directory sound:
 * the run lock (one run per directory, a dead holder is no obstacle), the
 * removal of temporaries left by dead writers, the divergence watch on
 * the loss, and the PNG header read that refuses an oversized image
 * before decoding it.  tests/test_faults.c drives the same through the
 * `ibnet` binary.
 */
#include "test.h"

#include "io/atomic_file.h"
#include "train/loss_watch.h"
#include "train/run_lock.h"

#include <errno.h>
#include <png.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *subdir(const char *name)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", ib_test_tmpdir(), name);
    mkdir(path, 0777);
    return path;
}

/* A PID that belonged to a process that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    CHECK(p > 0);
    waitpid(p, NULL, 0);
    CHECK(kill(p, 0) != 0 && errno == ESRCH);
    return p;
}

static void test_run_lock_excludes_a_second_holder(void)
{
    const char *dir = subdir("lock1");
    ib__run_lock a, b;
    CHECK_OK(ib__run_lock_acquire(dir, &a));
    CHECK(a.held);
    /* a second open of the lock file conflicts even within one process */
    ib_status s = ib__run_lock_acquire(dir, &b);
    CHECK_EQ_INT(s, IB_ERR_STATE);
    CHECK(!b.held);
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)getpid());
    CHECK_MSG(strstr(ib_last_error(), pid) && strstr(ib_last_error(), "in use"), "message: %s", ib_last_error());
    ib__run_lock_release(&a);
    ib__run_lock_release(&a); /* twice is harmless */
    CHECK_OK(ib__run_lock_acquire(dir, &b));
    ib__run_lock_release(&b);
    /* no directory: an I/O error naming the lock file */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no/such/dir", ib_test_tmpdir());
    CHECK_EQ_INT(ib__run_lock_acquire(missing, &b), IB_ERR_IO);
    CHECK_MSG(strstr(ib_last_error(), ".lock") != NULL, "message: %s", ib_last_error());
}

static void test_run_lock_of_a_killed_process_is_no_obstacle(void)
{
    const char *dir = subdir("lock2");
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t child = fork();
    if (child == 0) {
        ib__run_lock l;
        char c = ib__run_lock_acquire(dir, &l) == IB_OK ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        pause(); /* holds the lock until killed */
        _exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    ib__run_lock l;
    CHECK_EQ_INT(ib__run_lock_acquire(dir, &l), IB_ERR_STATE);
    char pid[32];
    snprintf(pid, sizeof pid, "process %ld", (long)child);
    CHECK_MSG(strstr(ib_last_error(), pid) != NULL, "message names the holder %ld: %s", (long)child, ib_last_error());
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* the file still names the dead process; the kernel dropped its lock */
    CHECK_OK(ib__run_lock_acquire(dir, &l));
    ib__run_lock_release(&l);
    close(ready[0]);
    close(ready[1]);
}

static void touch(const char *dir, const char *name)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("x", f);
    fclose(f);
}

static bool exists(const char *dir, const char *name)
{
    char path[900];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void test_stale_temporaries_of_dead_writers_are_removed(void)
{
    const char *dir = subdir("stale");
    char dead[64], dead2[64], mine[64];
    snprintf(dead, sizeof dead, "last.safetensors.tmp.%ld", (long)dead_pid());
    snprintf(dead2, sizeof dead2, "metrics.jsonl.tmp.%ld.tmp.%ld", 1L, (long)dead_pid());
    snprintf(mine, sizeof mine, "summary.json.tmp.%ld", (long)getpid());
    const char *keep[] = {mine, "config.json.tmp.1" /* init: alive */, "notes.tmp.abc", "a.tmp.", ".tmp.5",
                          "metrics.jsonl", "x.tmp.99999999999" /* not a PID */};
    touch(dir, dead);
    touch(dir, dead2);
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
        touch(dir, keep[k]);
    int removed = -1;
    CHECK_OK(ib__atomic_remove_stale(dir, &removed));
    CHECK_EQ_INT(removed, 2);
    CHECK(!exists(dir, dead));
    CHECK(!exists(dir, dead2));
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
        CHECK_MSG(exists(dir, keep[k]), "%s was removed", keep[k]);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/none", ib_test_tmpdir());
    CHECK_EQ_INT(ib__atomic_remove_stale(missing, NULL), IB_ERR_IO);
}

/* ---- divergence watch ---- */

/* A cross-entropy-like curve: 2.3 falling to ~0.01, with noise of +-30%
 * of its value and an odd batch 20x the loss every 97 steps. */
static double healthy(int64_t t, float u)
{
    double base = 0.01 + 2.29 * exp(-(double)t / 300.0);
    double v = base * (0.7 + 0.6 * u);
    return t % 97 == 50 ? 20 * v : v;
}

static void test_loss_watch_quiet_on_training_runs(void)
{
    ib__loss_watch w;
    ib__loss_watch_init(&w, NULL);
    float u[5000];
    ib_rng_uniform(7, 1, 0, u, 5000);
    for (int64_t t = 0; t < 5000; t++) {
        ib__loss_verdict v = ib__loss_watch_step(&w, healthy(t, u[t]));
        CHECK_MSG(v == IB__LOSS_OK, "step %lld: verdict %d on a healthy run", (long long)t, (int)v);
    }
    /* a loss that goes negative (an entropy bonus) and stays there */
    ib__loss_watch_init(&w, NULL);
    for (int64_t t = 0; t < 2000; t++)
        CHECK_EQ_INT(ib__loss_watch_step(&w, 0.5 - 3.5 * (1 - exp(-(double)t / 100))), IB__LOSS_OK);
    /* a run whose first steps are huge (bad init) and then settle: the
     * first steps make the reference, no verdict */
    ib__loss_watch_init(&w, NULL);
    for (int64_t t = 0; t < 500; t++)
        CHECK_EQ_INT(ib__loss_watch_step(&w, t < 5 ? 1e6 : 2.0), IB__LOSS_OK);
}

static void test_loss_watch_catches_finite_divergence(void)
{
    /* Adam at lr 1e3: the loss grows 50% a step from 2.3 */
    ib__loss_watch w;
    ib__loss_watch_init(&w, NULL);
    ib__loss_verdict v = IB__LOSS_OK;
    int64_t t = 0;
    double loss = 2.3;
    for (; t < 30; t++)
        CHECK_EQ_INT(ib__loss_watch_step(&w, 2.3), IB__LOSS_OK);
    for (; t < 1000 && v == IB__LOSS_OK; t++) {
        loss *= 1.5;
        v = ib__loss_watch_step(&w, loss);
    }
    CHECK_EQ_INT(v, IB__LOSS_ABOVE_START);
    /* not before the smoothed loss passed the bound, and soon after */
    CHECK_MSG(w.smooth > 1e3 * 2.3 && w.smooth < 2e4 * 2.3, "flagged at smoothed loss %g", w.smooth);
    char msg[256];
    ib__loss_watch_explain(&w, v, msg, sizeof msg);
    CHECK_MSG(strstr(msg, "1000 times its start (2.3)") != NULL, "message: %s", msg);

    /* a run that converged to 0.001 and jumps to 30: three orders of
     * magnitude above the floor 0.023 = 1e-2 * 2.3 */
    ib__loss_watch_init(&w, NULL);
    for (t = 0; t < 20; t++)
        ib__loss_watch_step(&w, 2.3);
    for (; t < 2000; t++)
        CHECK_EQ_INT(ib__loss_watch_step(&w, 0.001), IB__LOSS_OK);
    v = IB__LOSS_OK;
    for (int k = 0; k < 200 && v == IB__LOSS_OK; k++)
        v = ib__loss_watch_step(&w, 30);
    CHECK_EQ_INT(v, IB__LOSS_GREW);
    ib__loss_watch_explain(&w, v, msg, sizeof msg);
    CHECK_MSG(strstr(msg, "lowest it reached (0.023)") != NULL, "message: %s", msg);
    /* ... while a rise to 5 (about 2x the start) is left alone */
    ib__loss_watch_init(&w, NULL);
    for (t = 0; t < 20; t++)
        ib__loss_watch_step(&w, 2.3);
    for (; t < 2000; t++)
        ib__loss_watch_step(&w, 0.001);
    for (int k = 0; k < 500; k++)
        CHECK_EQ_INT(ib__loss_watch_step(&w, 5), IB__LOSS_OK);

    /* NaN and Inf at once, even among the first steps */
    ib__loss_watch_init(&w, NULL);
    CHECK_EQ_INT(ib__loss_watch_step(&w, NAN), IB__LOSS_NONFINITE);
    CHECK_EQ_INT(ib__loss_watch_step(&w, INFINITY), IB__LOSS_NONFINITE);
    ib__loss_watch_explain(&w, IB__LOSS_NONFINITE, msg, sizeof msg);
    CHECK_MSG(strstr(msg, "inf") != NULL, "message: %s", msg);
}

/* ---- PNG header ---- */

static void write_blank_png(const char *path, int w, int h)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    CHECK(png && info);
    if (setjmp(png_jmpbuf(png)))
        CHECK_MSG(false, "libpng failed writing %s", path);
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_NONE); /* no filter search: a blank image is written in a second */
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_bytep row = calloc((size_t)w, 1);
    for (int y = 0; y < h; y++)
        png_write_row(png, row);
    free(row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void test_png_size_from_the_header(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/huge.png", ib_test_tmpdir());
    /* 20000 x 20000 grey: 400 MB of pixels in a file of a few hundred KB */
    write_blank_png(path, 20000, 20000);
    int c = -1, h = -1, w = -1;
    CHECK_OK(ib_image_png_info(path, &c, &h, &w));
    CHECK_EQ_INT(c, 1);
    CHECK_EQ_INT(h, 20000);
    CHECK_EQ_INT(w, 20000);
    snprintf(path, sizeof path, "%s/small.png", ib_test_tmpdir());
    write_blank_png(path, 7, 5);
    CHECK_OK(ib_image_png_info(path, &c, &h, &w));
    CHECK(c == 1 && h == 5 && w == 7);
    snprintf(path, sizeof path, "%s/none.png", ib_test_tmpdir());
    CHECK_EQ_INT(ib_image_png_info(path, &c, &h, &w), IB_ERR_IO);
}

/* A watch carried over a resume: the state it records is what it
 * restores, it is judged from the first step after (no new warm-up that a
 * diverged loss could take as its start), and a healthy loss passes. */
static void test_loss_watch_restored_after_resume(void)
{
    ib__loss_watch w, r;
    double ref = 0, low = 0;
    ib__loss_watch_init(&w, NULL);
    for (int t = 0; t < 10; t++)
        ib__loss_watch_step(&w, 2.0);
    CHECK(!ib__loss_watch_state(&w, &ref, &low)); /* still warming up: nothing to record */
    for (int t = 10; t < 100; t++)
        CHECK_EQ_INT(ib__loss_watch_step(&w, 2.0 - t / 100.0), IB__LOSS_OK);
    CHECK(ib__loss_watch_state(&w, &ref, &low));
    CHECK_CLOSE(ref, 2.0, 0, 0);
    CHECK(low > 1.0 && low < 1.2);

    ib__loss_watch_init(&r, NULL);
    ib__loss_watch_restore(&r, ref, low);
    CHECK_EQ_INT(ib__loss_watch_step(&r, 1e5), IB__LOSS_ABOVE_START);
    ib__loss_watch_init(&r, NULL);
    ib__loss_watch_restore(&r, ref, low);
    for (int t = 0; t < 50; t++)
        CHECK_EQ_INT(ib__loss_watch_step(&r, 1.0), IB__LOSS_OK);
    /* a fresh watch would have taken 1e5 as its start */
    ib__loss_watch_init(&r, NULL);
    CHECK_EQ_INT(ib__loss_watch_step(&r, 1e5), IB__LOSS_OK);
    /* nothing recorded (0): the restore leaves a fresh watch */
    ib__loss_watch_restore(&r, 0, 0);
    CHECK_EQ_INT(r.steps, 1);
}

int main(void)
{
    IB_RUN(test_run_lock_excludes_a_second_holder);
    IB_RUN(test_run_lock_of_a_killed_process_is_no_obstacle);
    IB_RUN(test_stale_temporaries_of_dead_writers_are_removed);
    IB_RUN(test_loss_watch_quiet_on_training_runs);
    IB_RUN(test_loss_watch_catches_finite_divergence);
    IB_RUN(test_loss_watch_restored_after_resume);
    IB_RUN(test_png_size_from_the_header);
    return ib_test_summary();
}
