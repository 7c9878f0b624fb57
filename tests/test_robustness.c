/*
 * test_robustness.c — the common-corruption benchmark: ib_mce against
 * hand-computed figures (a model against itself is 1; a two-model fixture
 * worked on paper), the architecture families baselines are matched by,
 * and `ibnet robustness` through the binary on a 4-class 8x8 blob set with
 * a small MLP ("tiny") and its Deep VIB version ("tiny-vib"): the report's
 * keys, a model against itself giving mCE 1, a run stopped after a few
 * cells (--max-cells) resuming to the same table as an uninterrupted run
 * while evaluating only what was missing, and the user errors (a baseline
 * of another architecture or data set, a directory of other settings, bad
 * severities) exiting 2.  Also `ibnet eval --json` carries calibration.
 */
#include "test.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static char data_dir[1024], other_dir[1024], mlp_ckpt[1200], vib_ckpt[1200], wide_ckpt[1200], other_ckpt[1200];

static void test_mce_against_itself_is_one(void)
{
    double err[6] = {0.1, 0.2, 0.3, 0.05, 0.5, 0.9}, ce[2], rel[2], mce, rmce;
    CHECK_OK(ib_mce(2, 3, err, 0.02, err, 0.02, ce, rel, &mce, &rmce));
    CHECK_NEAR(ce[0], 1, 1e-15);
    CHECK_NEAR(ce[1], 1, 1e-15);
    CHECK_NEAR(mce, 1, 1e-15);
    CHECK_NEAR(rmce, 1, 1e-15);
}

static void test_mce_two_model_fixture(void)
{
    /* Two corruptions, two severities.  Model A: clean 0.10, errors
     * {0.20, 0.40} and {0.30, 0.50}; baseline B: clean 0.20, errors
     * {0.40, 0.60} and {0.20, 0.40}.
     *   CE_1 = 0.60 / 1.00 = 0.6,  CE_2 = 0.80 / 0.60 = 4/3,
     *   mCE = (0.6 + 4/3) / 2 = 0.9666...
     *   relative CE_1 = (0.10 + 0.30) / (0.20 + 0.40) = 2/3,
     *   relative CE_2 = (0.20 + 0.40) / (0.00 + 0.20) = 3,
     *   relative mCE = (2/3 + 3) / 2 = 11/6 */
    double a[4] = {0.20, 0.40, 0.30, 0.50}, b[4] = {0.40, 0.60, 0.20, 0.40}, ce[2], rel[2], mce, rmce;
    CHECK_OK(ib_mce(2, 2, a, 0.10, b, 0.20, ce, rel, &mce, &rmce));
    CHECK_NEAR(ce[0], 0.6, 1e-12);
    CHECK_NEAR(ce[1], 4.0 / 3.0, 1e-12);
    CHECK_NEAR(mce, (0.6 + 4.0 / 3.0) / 2, 1e-12);
    CHECK_NEAR(rel[0], 2.0 / 3.0, 1e-12);
    CHECK_NEAR(rel[1], 3.0, 1e-12);
    CHECK_NEAR(rmce, 11.0 / 6.0, 1e-12);
    /* a baseline without errors: undefined, NaN */
    double z[4] = {0, 0, 0, 0};
    CHECK_OK(ib_mce(2, 2, a, 0.10, z, 0.0, ce, rel, &mce, &rmce));
    CHECK(isnan(ce[0]) && isnan(mce) && isnan(rmce));
    /* corrupted errors equal to the clean one, up to rounding: no drop to
     * normalise by (0.3 - 0.1 - 0.2 is 2.8e-17 in doubles) */
    double c3[2] = {0.3, 0.1};
    CHECK_OK(ib_mce(1, 2, c3, 0.1, c3, 0.2, ce, rel, &mce, &rmce));
    CHECK(isnan(rel[0]) && isnan(rmce));
    CHECK_NEAR(ce[0], 1, 1e-15);
    CHECK_EQ_INT(ib_mce(0, 2, a, 0, b, 0, NULL, NULL, NULL, NULL), IB_ERR_ARG);
    CHECK_EQ_INT(ib_mce(2, 2, NULL, 0, b, 0, NULL, NULL, NULL, NULL), IB_ERR_ARG);
}

static void test_model_family(void)
{
    const char *cases[][2] = {{"lenet-vib", "lenet"},   {"lenet-vibcells", "lenet"}, {"lenet", "lenet"},
                              {"vib-mlp", "mlp"},       {"resnet20-vib", "resnet20"}, {"wrn-16-4-vibcells", "wrn-16-4"},
                              {"-vib", "-vib"},          {"", ""}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char buf[64];
        ib_model_family(cases[k][0], buf, sizeof buf);
        CHECK_MSG(strcmp(buf, cases[k][1]) == 0, "%s -> %s, want %s", cases[k][0], buf, cases[k][1]);
    }
}

static void train(const char *name, const char *dir, const char *model_text, char *ckpt, size_t len)
{
    char model[1200], file[100];
    snprintf(file, sizeof file, "%.60s.ibm", name);
    ib_test_write_text(file, model_text, model, sizeof model);
    ib_train_config c = ib_test_train_config(model, dir, name);
    c.epochs = 2;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 3;
    c.ema_decay = 0; /* two short epochs: the raw weights */
    CHECK_OK(ib_train(&c, NULL));
    snprintf(ckpt, len, "%s/last.safetensors", c.out_dir);
}

#define MLP "input 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\nlinear 4 name=out\n"

static void setup_once(void)
{
    ib_test_blob_dir("blobs", 600, 200, 77, 120.0f, 80.0f, data_dir, sizeof data_dir);
    ib_test_blob_dir("blobs2", 600, 200, 78, 120.0f, 80.0f, other_dir, sizeof other_dir);
    train("tiny", data_dir, "model tiny\n" MLP, mlp_ckpt, sizeof mlp_ckpt);
    train("tiny-vib", data_dir, IB_TEST_TINY_VIB(32), vib_ckpt, sizeof vib_ckpt);
    train("wide", data_dir, "model wide\n" MLP, wide_ckpt, sizeof wide_ckpt);
    train("tiny-other", other_dir, "model tiny\n" MLP, other_ckpt, sizeof other_ckpt);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static char out_buf[1 << 20], err_buf[1 << 16];
/* How the commands run here: stdout and all of stderr, or stderr alone. */
static const ib_test_cli both = {
    .out = out_buf, .out_len = sizeof out_buf, .err = err_buf, .err_len = sizeof err_buf, .all_err = true};
static const ib_test_cli err_only = {.err = err_buf, .err_len = sizeof err_buf, .all_err = true};

static void test_against_itself_and_keys(void)
{
    char args[4000];
    snprintf(args, sizeof args, "robustness %s --baseline %s --severities 1,3 --limit 100 --json --no-hash", mlp_ckpt,
             mlp_ckpt);
    int rc = ib_test_run_cli(args, &both);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, err_buf);
    cJSON *o = cJSON_Parse(out_buf);
    CHECK_MSG(o != NULL, "no JSON: %s", out_buf);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "complete")));
    CHECK_NEAR(num(o, "mce"), 1, 1e-12);
    CHECK_NEAR(num(o, "mce_mean_path"), 1, 1e-12);
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(o, "corruptions"), *e;
    CHECK_EQ_INT(cJSON_GetArraySize(per), IB_CORRUPT_BENCHMARK);
    cJSON_ArrayForEach(e, per)
    {
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "errors")), 2);
        const cJSON *ce = cJSON_GetObjectItemCaseSensitive(e, "ce");
        CHECK(cJSON_IsNumber(ce) ? fabs(ce->valuedouble - 1) < 1e-12 : cJSON_IsNull(ce));
    }
    /* 1 clean + 14 x 2 cells, for model and baseline */
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "cells")), 2 * (1 + 2 * IB_CORRUPT_BENCHMARK));
    double clean = num(o, "clean_error");
    CHECK(clean >= 0 && clean < 0.3);
    cJSON_Delete(o);
    /* without a baseline: errors, no mCE */
    snprintf(args, sizeof args, "robustness %s --types all --severities 5 --limit 50 --json --no-hash", mlp_ckpt);
    rc = ib_test_run_cli(args, &both);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, err_buf);
    o = cJSON_Parse(out_buf);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "mce")));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "corruptions")), IB_CORRUPT_COUNT);
    cJSON_Delete(o);
}

static void test_resume_gives_the_same_table(void)
{
    char args[4000], a[1200], b[1200], path[1300];
    snprintf(a, sizeof a, "%s/rob_a", ib_test_tmpdir());
    snprintf(b, sizeof b, "%s/rob_b", ib_test_tmpdir());
    const char *common = "--severities 2-3 --limit 80 --no-hash";
    /* interrupted: 5 cells, then 20 more, then the rest */
    snprintf(args, sizeof args, "robustness %s --baseline %s %s --out %s --max-cells 5", vib_ckpt, mlp_ckpt, common, a);
    int rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, err_buf);
    snprintf(path, sizeof path, "%s/robustness.json", a);
    char *text = ib__read_file(path, 1 << 26, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    CHECK(o && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "complete")));
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "cells")), 5);
    cJSON_Delete(o);
    free(text);
    snprintf(path, sizeof path, "%s/robustness.md", a);
    CHECK(access(path, F_OK) != 0); /* no table before every cell is in */
    snprintf(args, sizeof args, "robustness %s --baseline %s %s --out %s --max-cells 20", vib_ckpt, mlp_ckpt, common, a);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 0 && strstr(err_buf, "resuming: 5 cell(s)"), "exit %d: %s", rc, err_buf);
    snprintf(args, sizeof args, "robustness %s --baseline %s %s --out %s", vib_ckpt, mlp_ckpt, common, a);
    rc = ib_test_run_cli(args, &both);
    CHECK_MSG(rc == 0 && strstr(err_buf, "resuming: 25 cell(s)"), "exit %d: %s", rc, err_buf);
    /* 2 x (1 + 14 x 2) = 58 cells, 25 done: 33 evaluated now, each one line */
    int lines = 0;
    for (const char *p = err_buf; (p = strstr(p, " error ")); p++)
        lines++;
    CHECK_EQ_INT(lines, 58 - 25);
    /* uninterrupted */
    snprintf(args, sizeof args, "robustness %s --baseline %s %s --out %s", vib_ckpt, mlp_ckpt, common, b);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, err_buf);
    snprintf(path, sizeof path, "%s/robustness.md", a);
    char *ta = ib__read_file(path, 1 << 26, NULL);
    snprintf(path, sizeof path, "%s/robustness.md", b);
    char *tb = ib__read_file(path, 1 << 26, NULL);
    CHECK(ta && tb && strcmp(ta, tb) == 0);
    CHECK_MSG(ta && strstr(ta, "| **mean** |"), "%s", ta ? ta : "(none)");
    free(ta);
    free(tb);
    snprintf(path, sizeof path, "%s/robustness.json", a);
    text = ib__read_file(path, 1 << 26, NULL);
    o = text ? cJSON_Parse(text) : NULL;
    CHECK(o && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "complete")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stochastic")));
    /* mCE is the mean of the corruptions' CE (null when a baseline error
     * sum is 0, which a 80-image set allows) */
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mce"), *e;
    double sum = 0;
    int k = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "corruptions"))
    {
        const cJSON *ce = cJSON_GetObjectItemCaseSensitive(e, "ce");
        sum += cJSON_IsNumber(ce) ? ce->valuedouble : NAN;
        k++;
    }
    CHECK_EQ_INT(k, IB_CORRUPT_BENCHMARK);
    if (isfinite(sum))
        CHECK_MSG(cJSON_IsNumber(m) && fabs(m->valuedouble - sum / k) < 1e-12, "mce is not the mean CE");
    else
        CHECK(cJSON_IsNull(m));
    cJSON_Delete(o);
    free(text);
    /* a finished directory: nothing evaluated again */
    snprintf(args, sizeof args, "robustness %s --baseline %s %s --out %s", vib_ckpt, mlp_ckpt, common, a);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 0 && strstr(err_buf, "resuming: 58 cell(s)") && !strstr(err_buf, " error "), "%s", err_buf);
    /* damaged cells (an error rate of 7, a severity of 1e300) are evaluated
     * again, not reused: the same table as before */
    snprintf(path, sizeof path, "%s/robustness.json", a);
    text = ib__read_file(path, 1 << 26, NULL);
    o = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *cells = cJSON_GetObjectItemCaseSensitive(o, "cells");
    CHECK(cJSON_GetArraySize(cells) == 58);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(cells, 3), "err_avg", cJSON_CreateNumber(7));
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(cells, 40), "severity", cJSON_CreateNumber(1e300));
    text = cJSON_Print(o);
    cJSON_Delete(o);
    FILE *f = fopen(path, "w");
    CHECK(f && text);
    if (f && text)
        fputs(text, f);
    if (f)
        fclose(f);
    free(text);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 0 && strstr(err_buf, "resuming: 56 cell(s)"), "exit %d: %s", rc, err_buf);
    lines = 0;
    for (const char *p = err_buf; (p = strstr(p, " error ")); p++)
        lines++;
    CHECK_EQ_INT(lines, 2);
    snprintf(path, sizeof path, "%s/robustness.md", a);
    ta = ib__read_file(path, 1 << 26, NULL);
    snprintf(path, sizeof path, "%s/robustness.md", b);
    tb = ib__read_file(path, 1 << 26, NULL);
    CHECK(ta && tb && strcmp(ta, tb) == 0);
    free(ta);
    free(tb);
    /* other settings in the same directory: exit 2 */
    snprintf(args, sizeof args, "robustness %s --baseline %s --severities 2-3 --limit 40 --no-hash --out %s", vib_ckpt,
             mlp_ckpt, a);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 2 && strstr(err_buf, "other settings"), "exit %d: %s", rc, err_buf);
}

static void test_user_errors_exit_2(void)
{
    char args[4000];
    struct {
        const char *extra, *msg;
    } cases[] = {
        {"--severities 0-3", "--severities"},
        {"--severities 3-1", "--severities"},
        {"--severities 1,", "--severities"},
        {"--types some", "types"},
        {"--max-cells 3", "--max-cells"},
        {"--limit -1", "--limit"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(args, sizeof args, "robustness %s %s --no-hash", mlp_ckpt, cases[k].extra);
        int rc = ib_test_run_cli(args, &err_only);
        CHECK_MSG(rc == 2 && strstr(err_buf, cases[k].msg), "%s: exit %d: %s", cases[k].extra, rc, err_buf);
    }
    snprintf(args, sizeof args, "robustness %s --baseline %s --no-hash", vib_ckpt, wide_ckpt);
    int rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 2 && strstr(err_buf, "same architecture"), "exit %d: %s", rc, err_buf);
    snprintf(args, sizeof args, "robustness %s --baseline %s --no-hash", mlp_ckpt, other_ckpt);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 2 && strstr(err_buf, "one data set"), "exit %d: %s", rc, err_buf);
    snprintf(args, sizeof args, "eval %s --dataset rotated-mnist:6 --no-hash", mlp_ckpt);
    rc = ib_test_run_cli(args, &err_only);
    CHECK_MSG(rc == 2 && strstr(err_buf, "0..5"), "exit %d: %s", rc, err_buf);
    snprintf(args, sizeof args, "robustness %s/none.safetensors --no-hash", ib_test_tmpdir());
    rc = ib_test_run_cli(args, &err_only);
    CHECK_EQ_INT(rc, 2);
}

static void test_eval_json_has_calibration(void)
{
    char args[4000];
    snprintf(args, sizeof args, "eval %s --json --no-hash", vib_ckpt);
    int rc = ib_test_run_cli(args, &both);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, err_buf);
    cJSON *o = cJSON_Parse(out_buf);
    CHECK_MSG(o != NULL, "no JSON: %s", out_buf);
    double ece = num(o, "ece"), brier = num(o, "brier"), ent = num(o, "entropy");
    CHECK(ece >= 0 && ece <= 1 && brier >= 0 && brier <= 2 && ent >= 0 && ent <= log(4.0) + 1e-9);
    num(o, "mean_path_ece");
    const cJSON *rel = cJSON_GetObjectItemCaseSensitive(o, "reliability"), *e;
    CHECK_EQ_INT(cJSON_GetArraySize(rel), IB_CALIBRATION_BINS);
    double total = 0, ece_again = 0, n = num(o, "n");
    cJSON_ArrayForEach(e, rel)
    {
        total += num(e, "count");
        ece_again += num(e, "count") / n * fabs(num(e, "acc") - num(e, "conf"));
    }
    CHECK_NEAR(total, n, 0);
    CHECK_NEAR(ece_again, ece, 1e-5); /* printed with 6 decimals */
    /* the accuracy of the bins, weighted, is the accuracy of the average */
    double acc = 0;
    cJSON_ArrayForEach(e, rel) acc += num(e, "count") * num(e, "acc") / n;
    CHECK_NEAR(acc, num(o, "acc_avg"), 1e-5);
    cJSON_Delete(o);
}

int main(void)
{
    ib_set_threads(1);
    IB_RUN(test_mce_against_itself_is_one);
    IB_RUN(test_mce_two_model_fixture);
    IB_RUN(test_model_family);
    setup_once();
    IB_RUN(test_against_itself_and_keys);
    IB_RUN(test_resume_gives_the_same_table);
    IB_RUN(test_user_errors_exit_2);
    IB_RUN(test_eval_json_has_calibration);
    return ib_test_summary();
}
