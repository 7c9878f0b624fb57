/*
 * test_faults.c — the faults real runs meet, through the `ibnet` binary on
 * small data the test makes (a 4-class 8x8 image set as IDX files and a
 * small Deep VIB MLP whose 512-wide layers keep the GEMMs busy):
 *   - SIGINT and SIGTERM at random moments of short runs (40 and 20; set
 *     IBNET_FAULT_TRIALS for more), with every GEMM
 *     on oneDNN (IBNET_GEMM=dnnl, whose JIT code a signal handler on the
 *     computing thread's stack used to corrupt): no crash, each run stops
 *     with its message and exit code 3, and resuming reaches the bits of
 *     an uninterrupted run (weights, optimizer and EMA state);
 *   - a second signal exits at once;
 *   - two runs in one directory: one trains, the other exits 2 naming the
 *     process that holds the lock; a lock and temporaries left by a killed
 *     process do not block;
 *   - resume after a torn-only-line or an empty metrics.jsonl leaves a file
 *     whose every line parses.
 * Every run uses --threads 1 so its bits do not depend on the machine.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char data_dir[1024], model_path[1024], dataset_arg[1100];

static void setup_once(void)
{
    ib_test_blob_dir("blobs", 1000, 200, 99, 170.0f, 20.0f, data_dir, sizeof data_dir);
    snprintf(dataset_arg, sizeof dataset_arg, "idx:%s", data_dir);
    ib_test_write_text("wide-vib.ibm",
                       "model wide-vib\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 512 name=fc1\nrelu\n"
                       "linear 512 name=fc2\nrelu\nlinear 32 name=fc3\n"
                       "vib 16 shift=-5 name=vib\nlinear 4 name=decoder\n", model_path, sizeof model_path);
    setenv("IBNET_GEMM", "dnnl", 1); /* every GEMM through oneDNN's JIT code, where builds have it */
}

static const char *path_in(const char *dir, const char *name)
{
    static char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static const char *run_dir(const char *name)
{
    static char d[1100];
    snprintf(d, sizeof d, "%s/%s", ib_test_tmpdir(), name);
    return d;
}

/* ---- processes ---- */

typedef struct proc {
    pid_t pid;
    char err[1200]; /* its stderr, in a file */
} proc;

/* Start `ibnet train ARGS... --threads 1`, with a new run's model and data
 * unless resuming.  extra_env "NAME=VALUE" or NULL. */
static proc spawn_train(const char *tag, const char *const *args, const char *extra_env)
{
    proc p;
    snprintf(p.err, sizeof p.err, "%s/%s.stderr", ib_test_tmpdir(), tag);
    const char *build = getenv("IBNET_BUILD_DIR");
    char bin[1100];
    snprintf(bin, sizeof bin, "%s/ibnet", build ? build : "build");
    const char *argv[40];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "train";
    bool resume = false;
    for (int k = 0; args[k]; k++)
        resume |= strcmp(args[k], "--resume") == 0;
    if (!resume) { /* first, so that args may override them */
        const char *base[] = {"--model", model_path, "--dataset", dataset_arg, "--batch-size", "50",
                              "--eval-batch-size", "200", "--eval-samples", "2", "--lr", "3e-3", NULL};
        for (int k = 0; base[k]; k++)
            argv[n++] = base[k];
    }
    for (int k = 0; args[k]; k++)
        argv[n++] = args[k];
    argv[n++] = "--threads";
    argv[n++] = "1";
    argv[n] = NULL;
    p.pid = fork();
    CHECK(p.pid >= 0);
    if (p.pid == 0) {
        int fd = open(p.err, O_WRONLY | O_CREAT | O_TRUNC, 0666), null = open("/dev/null", O_WRONLY);
        if (fd < 0 || null < 0 || dup2(fd, 2) < 0 || dup2(null, 1) < 0)
            _exit(126);
        if (extra_env)
            putenv((char *)extra_env);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return p;
}

/* Exit code, or 1000 + signal if the process died of a signal. */
static int wait_proc(const proc *p)
{
    int st = 0;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : -1;
}

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    return buf;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Wait until file holds needle (the stop signals are installed by then) or
 * the process has ended; true if found.  Polls: nothing here is timed. */
static bool wait_for(const proc *p, const char *file, const char *needle)
{
    for (;;) {
        if (strstr(slurp(file), needle))
            return true;
        siginfo_t si;
        memset(&si, 0, sizeof si); /* WNOWAIT: wait_proc reaps it later */
        if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == p->pid)
            return strstr(slurp(file), needle) != NULL;
        usleep(5000);
    }
}

static bool started(const proc *p) { return wait_for(p, p->err, " threads -> "); /* the banner, printed once training started */ }

/* The tensor bytes of a checkpoint (weights, optimizer and EMA state):
 * everything after the safetensors header, whose metadata names the run
 * directory and so differs between runs. */
static uint8_t *tensor_bytes(const char *dir, size_t *len)
{
    FILE *f = fopen(path_in(dir, "last.safetensors"), "rb");
    CHECK_MSG(f != NULL, "no checkpoint in %s", dir);
    uint8_t h8[8];
    CHECK(fread(h8, 1, 8, f) == 8);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--)
        hl = hl << 8 | h8[k];
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    CHECK(end > 0 && (uint64_t)end > 8 + hl);
    fseek(f, (long)(8 + hl), SEEK_SET);
    *len = (size_t)end - 8 - (size_t)hl;
    uint8_t *b = malloc(*len);
    CHECK(b && fread(b, 1, *len, f) == *len);
    fclose(f);
    return b;
}

static uint8_t *reference;
static size_t reference_len;
static double reference_seconds; /* wall time of the reference run after its banner */

static void train_reference(void)
{
    if (reference)
        return;
    const char *dir = run_dir("reference");
    const char *args[] = {"--epochs", "2", "--out", dir, NULL};
    proc p = spawn_train("reference", args, NULL);
    CHECK(started(&p));
    double t0 = now_s();
    CHECK_EQ_INT(wait_proc(&p), 0);
    reference_seconds = now_s() - t0;
    reference = tensor_bytes(dir, &reference_len);
}

static bool same_as_reference(const char *dir)
{
    size_t n = 0;
    uint8_t *b = tensor_bytes(dir, &n);
    bool same = n == reference_len && memcmp(b, reference, n) == 0;
    free(b);
    return same;
}

/* `trials` runs, each sent sig once at a random moment of its training
 * (after its banner: the handlers are installed by then), resumed if it
 * stopped, and compared with the uninterrupted run. */
static void signal_trials(int sig, int trials, const char *name)
{
    train_reference();
    float u[64];
    int stopped = 0;
    for (int t = 0; t < trials; t++) {
        char tag[64];
        snprintf(tag, sizeof tag, "%s-%d", name, t);
        const char *dir = run_dir(tag);
        const char *args[] = {"--epochs", "2", "--out", dir, NULL};
        /* every fifth run takes the fallback: sigaction handlers on an alternate stack */
        const char *env = t % 5 == 4 ? "IBNET_STOP_SIGNALS=handler" : NULL;
        proc p = spawn_train(tag, args, env);
        CHECK_MSG(started(&p), "%s did not start: %s", tag, slurp(p.err));
        ib_rng_uniform(27, (uint64_t)sig, (uint64_t)t, u, 1);
        /* most land during training; the rest test a signal during the final evaluation or exit */
        usleep((useconds_t)(1e6 * reference_seconds * 0.7 * u[0]));
        kill(p.pid, sig);
        int rc = wait_proc(&p);
        const char *err = slurp(p.err);
        CHECK_MSG(rc == 0 || rc == 3, "%s: exit %d (a crash is 1000 + signal): %s", tag, rc, err);
        if (rc == 3) {
            stopped++;
            char want[64];
            snprintf(want, sizeof want, "stopped by %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
            CHECK_MSG(strstr(err, want) && strstr(err, "--resume"), "%s: message: %s", tag, err);
            const char *res[] = {"--resume", dir, NULL};
            char rtag[80];
            snprintf(rtag, sizeof rtag, "%s-resume", tag);
            proc r = spawn_train(rtag, res, NULL);
            int rrc = wait_proc(&r);
            CHECK_MSG(rrc == 0, "%s: resume exit %d: %s", tag, rrc, slurp(r.err));
        }
        CHECK_MSG(same_as_reference(dir), "%s (exit %d) does not end with the uninterrupted run's bits", tag, rc);
    }
    printf("   %s: %d of %d runs stopped by the signal, the rest had finished\n", name, stopped, trials);
    CHECK_MSG(stopped > 0, "no %s run was stopped (the delays are fractions of a run)", name);
}

/* 40 + 20 trials take about a minute (each is a run and a resume, with
 * their fsyncs); IBNET_FAULT_TRIALS=N runs N of each. */
static int trials(int dflt)
{
    const char *e = getenv("IBNET_FAULT_TRIALS");
    int n = e ? atoi(e) : 0;
    return n > 0 ? n : dflt;
}

static void test_sigint_at_random_moments(void) { signal_trials(SIGINT, trials(40), "sigint"); }
static void test_sigterm_at_random_moments(void) { signal_trials(SIGTERM, trials(20), "sigterm"); }

static void test_second_signal_exits_at_once(void)
{
    const char *dir = run_dir("twice");
    const char *args[] = {"--epochs", "30", "--out", dir, NULL};
    proc p = spawn_train("twice", args, NULL);
    CHECK(started(&p));
    kill(p.pid, SIGINT);
    kill(p.pid, SIGINT);
    int rc = wait_proc(&p);
    /* 130 = 128 + SIGINT; 3 only if the first stop completed before the second arrived */
    CHECK_MSG(rc == 130 || rc == 3, "exit %d: %s", rc, slurp(p.err));
    if (rc == 130)
        CHECK_MSG(strstr(slurp(p.err), "second stop signal"), "message: %s", slurp(p.err));
}

/* Every line of metrics.jsonl parses; returns the epochs in order (count). */
static int metric_epochs(const char *dir, int *epochs, int max)
{
    char *text = slurp(path_in(dir, "metrics.jsonl"));
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        CHECK_MSG(o != NULL, "%s/metrics.jsonl: a line does not parse: %.80s", dir, line);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "epoch");
        CHECK(cJSON_IsNumber(e));
        if (n < max)
            epochs[n] = (int)e->valuedouble;
        n++;
        cJSON_Delete(o);
    }
    return n;
}

static void test_second_run_in_a_directory_is_refused(void)
{
    const char *dir = run_dir("busy");
    const char *args[] = {"--epochs", "50", "--out", dir, NULL};
    proc a = spawn_train("busy-a", args, NULL);
    CHECK(started(&a));
    char holder[64];
    snprintf(holder, sizeof holder, "process %ld", (long)a.pid);
    proc b = spawn_train("busy-b", args, NULL);
    int rc = wait_proc(&b);
    CHECK_MSG(rc == 2 && strstr(slurp(b.err), "in use") && strstr(slurp(b.err), holder), "second run: exit %d: %s",
              rc, slurp(b.err));
    const char *res[] = {"--resume", dir, NULL};
    proc c = spawn_train("busy-c", res, NULL);
    rc = wait_proc(&c);
    CHECK_MSG(rc == 2 && strstr(slurp(c.err), holder), "resume of a busy run: exit %d: %s", rc, slurp(c.err));
    kill(a.pid, SIGTERM);
    rc = wait_proc(&a);
    CHECK_MSG(rc == 3 || rc == 0, "first run: exit %d: %s", rc, slurp(a.err));
    int ep[64], n = metric_epochs(dir, ep, 64);
    for (int k = 0; k < n && k < 64; k++)
        CHECK_EQ_INT(ep[k], k + 1);
}

static void test_two_runs_started_together(void)
{
    train_reference();
    const char *dir = run_dir("together");
    const char *args[] = {"--epochs", "2", "--out", dir, NULL};
    proc a = spawn_train("together-a", args, NULL), b = spawn_train("together-b", args, NULL);
    int ra = wait_proc(&a), rb = wait_proc(&b);
    CHECK_MSG((ra == 0 && rb == 2) || (ra == 2 && rb == 0), "exits %d and %d:\n%s\n%s", ra, rb, slurp(a.err),
              slurp(b.err));
    const char *loser = slurp(ra == 2 ? a.err : b.err);
    /* the lock, or (if the winner had already finished) its config.json */
    CHECK_MSG(strstr(loser, "in use") || strstr(loser, "already holds a run"), "message: %s", loser);
    int ep[8];
    CHECK_EQ_INT(metric_epochs(dir, ep, 8), 2);
    CHECK(ep[0] == 1 && ep[1] == 2);
    CHECK(same_as_reference(dir));
}

static void test_killed_run_leaves_no_obstacle(void)
{
    train_reference();
    const char *dir = run_dir("killed");
    const char *args[] = {"--epochs", "2", "--out", dir, NULL};
    proc a = spawn_train("killed-a", args, NULL);
    /* killed once its first epoch is saved: the lock file names it */
    wait_for(&a, path_in(dir, "metrics.jsonl"), "\"epoch\"");
    kill(a.pid, SIGKILL);
    int rc = wait_proc(&a);
    if (rc == 0) { /* finished before the kill: nothing to test */
        printf("   the run finished before SIGKILL\n");
        return;
    }
    CHECK_EQ_INT(rc, 1000 + SIGKILL);
    char stale[64];
    snprintf(stale, sizeof stale, "last.safetensors.tmp.%ld", (long)a.pid); /* as a kill mid-write leaves */
    FILE *f = fopen(path_in(dir, stale), "w");
    CHECK(f != NULL);
    fputs("torn", f);
    fclose(f);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)a.pid);
    CHECK_MSG(strstr(slurp(path_in(dir, ".lock")), pid), "the lock file names %s: %s", pid, slurp(path_in(dir, ".lock")));
    const char *res[] = {"--resume", dir, NULL};
    proc r = spawn_train("killed-resume", res, NULL);
    rc = wait_proc(&r);
    CHECK_MSG(rc == 0, "resume after SIGKILL: exit %d: %s", rc, slurp(r.err));
    struct stat st;
    CHECK_MSG(stat(path_in(dir, stale), &st) != 0, "%s is still there", stale);
    CHECK(same_as_reference(dir));
}

/* A resume that keeps no line of metrics.jsonl (a torn only line, an empty
 * file) writes an empty file, then appends: every line parses. */
static void test_resume_after_torn_or_empty_metrics(void)
{
    const char *contents[] = {"{\"epoch\": 1, \"step\": 20, \"train_lo", ""};
    for (int k = 0; k < 2; k++) {
        char tag[32];
        snprintf(tag, sizeof tag, "torn-%d", k);
        const char *dir = run_dir(tag);
        const char *args[] = {"--epochs", "1", "--out", dir, NULL};
        proc a = spawn_train(tag, args, NULL);
        CHECK_EQ_INT(wait_proc(&a), 0);
        FILE *f = fopen(path_in(dir, "metrics.jsonl"), "w");
        CHECK(f != NULL);
        fputs(contents[k], f);
        fclose(f);
        for (int e = 2; e <= 3; e++) {
            char epochs[8];
            snprintf(epochs, sizeof epochs, "%d", e);
            const char *res[] = {"--resume", dir, "--epochs", epochs, NULL};
            proc r = spawn_train(tag, res, NULL);
            CHECK_MSG(wait_proc(&r) == 0, "resume: %s", slurp(r.err));
        }
        int ep[8];
        CHECK_EQ_INT(metric_epochs(dir, ep, 8), 2);
        CHECK(ep[0] == 2 && ep[1] == 3);
        CHECK(slurp(path_in(dir, "metrics.jsonl"))[0] == '{');
    }
}

/* A NaN loss is a failure while running (exit 1, as docs/cli.md says),
 * also when it comes on the very first step. */
static void test_nan_loss_exits_1(void)
{
    /* beta 3e38 makes beta * KL overflow on step 0; lr 1e30 sends the
     * weights to infinity with the first update (NaN on step 1) */
    const char *first[] = {"--epochs", "1", "--beta", "3e38", "--out", run_dir("nan-first"), NULL};
    proc p = spawn_train("nan-first", first, NULL);
    int rc = wait_proc(&p);
    CHECK_MSG(rc == 1 && strstr(slurp(p.err), "step 0"), "exit %d: %s", rc, slurp(p.err));
    const char *later[] = {"--epochs", "1", "--optimizer", "sgd", "--momentum", "0", "--lr", "1e30",
                           "--out", run_dir("nan-later"), NULL};
    p = spawn_train("nan-later", later, NULL);
    rc = wait_proc(&p);
    CHECK_MSG(rc == 1 && strstr(slurp(p.err), "the loss became"), "exit %d: %s", rc, slurp(p.err));
}

/* A failure before the first checkpoint leaves config.json alone; that
 * directory is no dead end: the NaN message says nothing was kept, and
 * --resume starts again from step 0 (a NaN again, from step 0; after a
 * failed checkpoint write, the uninterrupted run's bits). */
static void test_failure_in_first_epoch_resumes(void)
{
    const char *dir = run_dir("nan-first-resume");
    const char *first[] = {"--epochs", "1", "--beta", "3e38", "--out", dir, NULL};
    proc p = spawn_train("nan-first-resume", first, NULL);
    int rc = wait_proc(&p);
    const char *err = slurp(p.err);
    CHECK_MSG(rc == 1 && strstr(err, "no checkpoint was saved") && !strstr(err, "keeps"), "exit %d: %s", rc, err);
    const char *res[] = {"--resume", dir, NULL};
    p = spawn_train("nan-first-resume-2", res, NULL);
    rc = wait_proc(&p);
    err = slurp(p.err);
    CHECK_MSG(rc == 1 && strstr(err, "the loss became") && strstr(err, "step 0"), "resume: exit %d: %s", rc, err);

    /* the first checkpoint cannot be written: a directory holds its name */
    train_reference();
    dir = run_dir("write-fails");
    CHECK(mkdir(dir, 0777) == 0 && mkdir(path_in(dir, "last.safetensors"), 0777) == 0);
    const char *args[] = {"--epochs", "2", "--out", dir, NULL};
    p = spawn_train("write-fails", args, NULL);
    rc = wait_proc(&p);
    CHECK_MSG(rc == 1 && strstr(slurp(p.err), "last.safetensors"), "exit %d: %s", rc, slurp(p.err));
    struct stat st;
    CHECK(stat(path_in(dir, "config.json"), &st) == 0);
    CHECK_EQ_INT(metric_epochs(dir, (int[1]){0}, 1), 0);
    CHECK(rmdir(path_in(dir, "last.safetensors")) == 0);
    p = spawn_train("write-fails-resume", (const char *[]){"--resume", dir, NULL}, NULL);
    rc = wait_proc(&p);
    CHECK_MSG(rc == 0, "resume: exit %d: %s", rc, slurp(p.err));
    int ep[4];
    CHECK_EQ_INT(metric_epochs(dir, ep, 4), 2);
    CHECK(same_as_reference(dir));
}

int main(void)
{
    setup_once();
    IB_RUN(test_nan_loss_exits_1);
    IB_RUN(test_failure_in_first_epoch_resumes);
    IB_RUN(test_resume_after_torn_or_empty_metrics);
    IB_RUN(test_second_run_in_a_directory_is_refused);
    IB_RUN(test_two_runs_started_together);
    IB_RUN(test_killed_run_leaves_no_obstacle);
    IB_RUN(test_second_signal_exits_at_once);
    IB_RUN(test_sigint_at_random_moments);
    IB_RUN(test_sigterm_at_random_moments);
    return ib_test_summary();
}
