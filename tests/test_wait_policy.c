/*
 * test_wait_policy.c — how the ibnet CLI's OpenMP threads wait
 * (cli/wait_policy.c): IBNET_WAIT is checked, a user's OMP_WAIT_POLICY is
 * left alone, the choice is shown by --version and recorded in config.json,
 * and waiting passively trains to the same bits as spinning.
 */
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>

static char data_dir[1024], model_file[1024];

/* Run `ENV build/ibnet ARGS`; stdout into out; the exit code. */
static int run_cli(const char *env, const char *args, char *out, size_t olen)
{
    const char *build = getenv("IBNET_BUILD_DIR");
    char cmd[8192], outfile[1200];
    snprintf(outfile, sizeof outfile, "%s/wait_stdout.txt", ib_test_tmpdir());
    snprintf(cmd, sizeof cmd, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u IBNET_WAIT_DECIDED %s %s/ibnet %s > %s 2>&1",
             env, build ? build : "build", args, outfile);
    int st = system(cmd);
    FILE *f = fopen(outfile, "r");
    size_t n = f && out ? fread(out, 1, olen - 1, f) : 0;
    if (out)
        out[n] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

/* The per-epoch figures of metrics.jsonl without the wall-clock ones. */
static void strip_times(char *s)
{
    static const char *keys[] = {"\"seconds\":", "\"samples_per_s\":", "\"data_wait_s\":"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        for (char *p = strstr(s, keys[k]); p; p = strstr(p + 1, keys[k])) {
            char *v = p + strlen(keys[k]), *q = v;
            while (*q && *q != ',' && *q != '}')
                q++;
            memmove(v, q, strlen(q) + 1);
        }
}

static void test_bad_setting_is_a_user_error(void)
{
    char out[4096];
    CHECK_EQ_INT(run_cli("IBNET_WAIT=sometimes", "--version", out, sizeof out), 2);
    CHECK_MSG(strstr(out, "IBNET_WAIT='sometimes'") != NULL, "said: %s", out);
}

static void test_choice_is_shown(void)
{
    char out[4096];
    CHECK_EQ_INT(run_cli("IBNET_WAIT=passive", "--version", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "OpenMP waiting: passive (IBNET_WAIT=passive)") != NULL, "said: %s", out);
    CHECK_EQ_INT(run_cli("IBNET_WAIT=active", "--version", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "OpenMP waiting: active") != NULL, "said: %s", out);
    /* the user's own setting wins over IBNET_WAIT */
    CHECK_EQ_INT(run_cli("OMP_WAIT_POLICY=ACTIVE IBNET_WAIT=passive", "--version", out, sizeof out), 0);
    CHECK_MSG(strstr(out, "OpenMP waiting: ACTIVE (OMP_WAIT_POLICY)") != NULL, "said: %s", out);
}

static void train(const char *env, const char *name)
{
    char args[4096], out[8192];
    snprintf(args, sizeof args,
             "train --model %s --dataset idx:%s --out %s/%s --epochs 2 --batch-size 50 --lr 3e-3 --eval-samples 4 "
             "--threads 2 --no-hash",
             model_file, data_dir, ib_test_tmpdir(), name);
    int rc = run_cli(env, args, out, sizeof out);
    CHECK_MSG(rc == 0, "train (%s) exited %d: %s", env, rc, out);
}

static void test_passive_trains_the_same_bits(void)
{
    train("IBNET_WAIT=active", "spin");
    train("IBNET_WAIT=passive", "passive");
    char path[1400];
    snprintf(path, sizeof path, "%s/spin/metrics.jsonl", ib_test_tmpdir());
    char *a = slurp(path);
    snprintf(path, sizeof path, "%s/passive/metrics.jsonl", ib_test_tmpdir());
    char *b = slurp(path);
    CHECK(a && b && strlen(a) > 100);
    if (a && b) {
        strip_times(a);
        strip_times(b);
        CHECK_MSG(strcmp(a, b) == 0, "the runs differ:\n%s\n%s", a, b);
    }
    free(a);
    free(b);
    snprintf(path, sizeof path, "%s/passive/config.json", ib_test_tmpdir());
    char *cfg = slurp(path);
    CHECK(cfg && strstr(cfg, "\"omp_wait_policy\"") && strstr(cfg, "PASSIVE") && strstr(cfg, "IBNET_WAIT=passive"));
    free(cfg);
    snprintf(path, sizeof path, "%s/spin/config.json", ib_test_tmpdir());
    cfg = slurp(path);
    CHECK(cfg && strstr(cfg, "\"omp_wait_policy\"") && !strstr(cfg, "PASSIVE"));
    free(cfg);
}

int main(void)
{
    snprintf(data_dir, sizeof data_dir, "%s/blobs", ib_test_tmpdir());
    mkdir(data_dir, 0777);
    ib_test_write_blobs(data_dir, "train", 400, 5, 1, 150.0f, 30.0f);
    ib_test_write_blobs(data_dir, "t10k", 100, 5, 2, 150.0f, 30.0f);
    snprintf(model_file, sizeof model_file, "%s/tiny-vib.ibm", ib_test_tmpdir());
    FILE *f = fopen(model_file, "w");
    if (f) {
        fputs("model tiny-vib\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\nlinear 16 name=fc2\n"
              "vib 8 shift=-5 name=vib\nlinear 4 name=decoder\n", f);
        fclose(f);
    }
    IB_RUN(test_bad_setting_is_a_user_error);
    IB_RUN(test_choice_is_shown);
    IB_RUN(test_passive_trains_the_same_bits);
    return ib_test_summary();
}
