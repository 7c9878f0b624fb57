/*
 * test_wait_policy.c — how the ibnet CLI's OpenMP threads wait
 * (cli/wait_policy.c): IBNET_WAIT is checked, a user's OMP_WAIT_POLICY is
 * left alone, the choice is shown by --version and recorded in config.json,
 * and waiting passively trains to the same bits as spinning.
 */
#include "test.h"
#include "core/internal.h"

#include <sys/stat.h>

static char data_dir[1024], model_file[1024];

/* Run `ENV build/ibnet ARGS` with no wait setting of the caller's own;
 * stdout and stderr into out; the exit code. */
static int run_cli(const char *env, const char *args, char *out, size_t olen)
{
    char how[2048];
    snprintf(how, sizeof how, "-u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u IBNET_WAIT_DECIDED %s", env);
    return ib_test_run_cli(args, &(ib_test_cli){.env = how, .out = out, .out_len = olen, .out_err = true});
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
    char *a = ib__read_file(path, 1 << 26, NULL);
    snprintf(path, sizeof path, "%s/passive/metrics.jsonl", ib_test_tmpdir());
    char *b = ib__read_file(path, 1 << 26, NULL);
    CHECK(a && b && strlen(a) > 100);
    if (a && b) {
        strip_times(a);
        strip_times(b);
        CHECK_MSG(strcmp(a, b) == 0, "the runs differ:\n%s\n%s", a, b);
    }
    free(a);
    free(b);
    snprintf(path, sizeof path, "%s/passive/config.json", ib_test_tmpdir());
    char *cfg = ib__read_file(path, 1 << 26, NULL);
    CHECK(cfg && strstr(cfg, "\"omp_wait_policy\"") && strstr(cfg, "PASSIVE") && strstr(cfg, "IBNET_WAIT=passive"));
    free(cfg);
    snprintf(path, sizeof path, "%s/spin/config.json", ib_test_tmpdir());
    cfg = ib__read_file(path, 1 << 26, NULL);
    CHECK(cfg && strstr(cfg, "\"omp_wait_policy\"") && !strstr(cfg, "PASSIVE"));
    free(cfg);
}

int main(void)
{
    ib_test_blob_dir("blobs", 400, 100, 5, 150.0f, 30.0f, data_dir, sizeof data_dir);
    ib_test_write_text("tiny-vib.ibm", IB_TEST_TINY_VIB(32), model_file, sizeof model_file);
    IB_RUN(test_bad_setting_is_a_user_error);
    IB_RUN(test_choice_is_shown);
    IB_RUN(test_passive_trains_the_same_bits);
    return ib_test_summary();
}
