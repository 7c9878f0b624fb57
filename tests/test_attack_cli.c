/*
 * test_attack_cli.c — `ibnet attack` through the binary, on a 4-class 8x8
 * blob set the test writes as IDX files and a small MLP (and a small Deep
 * VIB) trained on it in seconds.  Checks that the JSON report has its keys
 * and sane figures (robust <= clean, non-increasing in eps, CW unbounded
 * as null), that the adversarial images saved with --out lie within eps of
 * the clean ones and re-evaluate with `ibnet eval --dataset idx:DIR` to
 * the robust accuracy and fooled count the report gave, that --grid writes
 * a PNG, and that every user error exits 2 before the checkpoint is read.
 */
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>

static char data_dir[1024], mlp_ckpt[1200], vib_ckpt[1200];

static void train(const char *name, const char *model_text, char *ckpt, size_t len)
{
    char model[1200], file[100];
    snprintf(file, sizeof file, "%.60s.ibm", name);
    ib_test_write_text(file, model_text, model, sizeof model);
    ib_train_config c = ib_test_train_config(model, data_dir, name);
    c.epochs = 3;
    c.batch_size = 50;
    c.eval_batch_size = 100;
    c.optim.lr = 3e-3f;
    c.eval_samples = 4;
    CHECK_OK(ib_train(&c, NULL));
    snprintf(ckpt, len, "%s/last.safetensors", c.out_dir);
}

static void setup_once(void)
{
    ib_test_blob_dir("blobs", 1000, 300, 77, 150.0f, 30.0f, data_dir, sizeof data_dir);
    train("mlp", "model tiny-mlp\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 name=fc1\nrelu\nlinear 4 name=out\n",
          mlp_ckpt, sizeof mlp_ckpt);
    train("vib", IB_TEST_TINY_VIB(32), vib_ckpt, sizeof vib_ckpt);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "no number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsString(v), "no string '%s'", key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* `ibnet attack ... --json` parsed: a list of n_rows objects. */
static cJSON *attack_json(const char *args, int n_rows)
{
    static char out[1 << 16];
    char err[1024], cmd[4100];
    snprintf(cmd, sizeof cmd, "attack %s --json --no-hash", args);
    int rc = ib_test_run_cli(cmd, &(ib_test_cli){.out = out, .out_len = sizeof out, .err = err, .err_len = sizeof err});
    CHECK_MSG(rc == 0, "'ibnet %s' exited %d: %s", cmd, rc, err);
    cJSON *a = cJSON_Parse(out);
    CHECK_MSG(cJSON_IsArray(a), "'ibnet %s' printed no JSON list: %s", cmd, out);
    CHECK_MSG(cJSON_GetArraySize(a) == n_rows, "%d rows, want %d", cJSON_GetArraySize(a), n_rows);
    return a;
}

/* Keys, and the figures any correct attack gives. */
static void check_rows(const cJSON *a, const char *attack, const char *norm, const float *eps, int n_rows, int n)
{
    double prev_robust = 2;
    for (int k = 0; k < n_rows; k++) {
        const cJSON *o = cJSON_GetArrayItem(a, k);
        CHECK(strcmp(str(o, "attack"), attack) == 0);
        CHECK(strcmp(str(o, "norm"), norm) == 0);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "eps");
        if (eps)
            CHECK_MSG(cJSON_IsNumber(e) && fabs(e->valuedouble - eps[k]) < 1e-6, "row %d: eps", k);
        else
            CHECK_MSG(cJSON_IsNull(e), "row %d: unbounded eps must be null", k);
        double clean = num(o, "clean_acc"), robust = num(o, "robust_acc"), succ = num(o, "success_rate");
        CHECK_EQ_INT((int)num(o, "n"), n);
        CHECK_MSG(clean > 0.8, "clean accuracy %.3f: the model did not learn", clean);
        CHECK_MSG(robust <= clean + 1e-12, "row %d: robust %.4f > clean %.4f", k, robust, clean);
        CHECK_MSG(robust <= prev_robust + 1e-12, "row %d: robust %.4f rose above %.4f at a smaller eps", k, robust,
                  prev_robust);
        prev_robust = robust;
        CHECK(succ >= 0 && succ <= 1);
        /* untargeted: fooled among the clean-correct = clean - robust (a fooled example is no longer correct) */
        CHECK_NEAR(succ * clean, clean - robust, 1e-9);
        CHECK_NEAR(num(o, "fooled"), llround(succ * clean * n), 0);
        num(o, "robust_acc_u8");
        num(o, "success_rate_u8");
        num(o, "fooled_u8");
        num(o, "mean_l2");
    }
}

static void test_json_report(void)
{
    char args[2000];
    const float eps[3] = {0.05f, 0.1f, 0.3f};
    snprintf(args, sizeof args, "%s --attack pgd --eps 0.05,0.1,0.3 --steps 10 --limit 200", mlp_ckpt);
    cJSON *pgd = attack_json(args, 3);
    check_rows(pgd, "pgd", "linf", eps, 3, 200);
    snprintf(args, sizeof args, "%s --attack fgsm --eps 0.05,0.1,0.3 --limit 200", mlp_ckpt);
    cJSON *fgsm = attack_json(args, 3);
    check_rows(fgsm, "fgsm", "linf", eps, 3, 200);
    for (int k = 0; k < 3; k++) {
        double rp = num(cJSON_GetArrayItem(pgd, k), "robust_acc"), rf = num(cJSON_GetArrayItem(fgsm, k), "robust_acc");
        CHECK_MSG(rp <= rf + 1e-12, "eps %g: PGD leaves %.4f, FGSM %.4f", (double)eps[k], rp, rf);
    }
    /* at eps 0.3 (76 grey levels) the blobs can be moved: PGD must break most of them */
    CHECK_MSG(num(cJSON_GetArrayItem(pgd, 2), "robust_acc") < 0.5, "PGD at 0.3 leaves %.3f",
              num(cJSON_GetArrayItem(pgd, 2), "robust_acc"));
    cJSON_Delete(pgd);
    cJSON_Delete(fgsm);

    /* L2 and a stochastic network: EOT and the mean path are reported */
    const float eps2[2] = {0.5f, 2.0f};
    snprintf(args, sizeof args, "%s --attack pgd --norm l2 --eps 0.5,2 --steps 10 --eot 4 --limit 100", vib_ckpt);
    cJSON *vib = attack_json(args, 2);
    check_rows(vib, "pgd", "l2", eps2, 2, 100);
    const cJSON *o = cJSON_GetArrayItem(vib, 0);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stochastic")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "mean_path")));
    CHECK_EQ_INT((int)num(o, "samples"), 4);
    cJSON_Delete(vib);

    /* CW without eps: one unbounded row, eps null, every example fooled with a finite L2 */
    snprintf(args, sizeof args, "%s --attack cw --steps 60 --search-steps 4 --limit 40", mlp_ckpt);
    cJSON *cw = attack_json(args, 1);
    check_rows(cw, "cw", "l2", NULL, 1, 40);
    o = cJSON_GetArrayItem(cw, 0);
    CHECK_MSG(num(o, "success_rate") > 0.9, "CW unbounded fooled %.3f", num(o, "success_rate"));
    CHECK(num(o, "mean_l2") > 0 && num(o, "mean_l2") < 8);
    cJSON_Delete(cw);
}

static uint8_t *read_idx_images(const char *path, int64_t *n)
{
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len);
    CHECK(fread(b, 1, len, f) == len);
    fclose(f);
    *n = (int64_t)((uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7]);
    CHECK_EQ_INT((int64_t)len, 16 + *n * 64);
    return b;
}

/* The saved set: within eps of the clean bytes, and `ibnet eval` on it
 * gives the robust accuracy (and so the fooled count) of the report. */
static void test_saved_set_reevaluates(void)
{
    char args[4000], out_dir[1000], err[1024], grid[1000];
    snprintf(out_dir, sizeof out_dir, "%s/adv", ib_test_tmpdir());
    snprintf(grid, sizeof grid, "%s/grid.png", ib_test_tmpdir());
    const int n = 150;
    snprintf(args, sizeof args, "%s --attack pgd --eps 0.1,0.3 --steps 10 --limit %d --out %s --grid %s", mlp_ckpt, n,
             out_dir, grid);
    cJSON *a = attack_json(args, 2);
    /* the report written beside the images is the one printed */
    char path[1400];
    snprintf(path, sizeof path, "%s/attack.json", out_dir);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "no %s", path);
    static char buf[1 << 16];
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[len] = 0;
    if (f)
        fclose(f);
    cJSON *saved = cJSON_Parse(buf);
    CHECK(cJSON_IsArray(saved) && cJSON_GetArraySize(saved) == 2);
    CHECK_NEAR(num(cJSON_GetArrayItem(saved, 1), "robust_acc_u8"), num(cJSON_GetArrayItem(a, 1), "robust_acc_u8"), 0);
    cJSON_Delete(saved);

    int64_t n0 = 0;
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", data_dir);
    uint8_t *clean = read_idx_images(path, &n0);
    const char *dirs[2] = {"eps_0.1", "eps_0.3"};
    const int levels[2] = {25, 76}; /* floor(eps * 255) grey levels */
    for (int k = 0; k < 2 && clean; k++) {
        const cJSON *o = cJSON_GetArrayItem(a, k);
        int64_t m = 0;
        snprintf(path, sizeof path, "%s/%s/t10k-images-idx3-ubyte", out_dir, dirs[k]);
        uint8_t *adv = read_idx_images(path, &m);
        CHECK_EQ_INT(m, n);
        int worst = 0, moved = 0;
        for (int64_t i = 0; adv && i < n * 64; i++) {
            int dlt = abs((int)adv[16 + i] - (int)clean[16 + i]);
            worst = dlt > worst ? dlt : worst;
            moved += dlt > 0;
        }
        CHECK_MSG(worst <= levels[k], "%s: a pixel moved by %d grey levels (at most %d)", dirs[k], worst, levels[k]);
        CHECK(moved > 0);
        free(adv);

        static char ev[1 << 16];
        snprintf(args, sizeof args, "eval %s --dataset idx:%s/%s --json --no-hash", mlp_ckpt, out_dir, dirs[k]);
        int rc =
            ib_test_run_cli(args, &(ib_test_cli){.out = ev, .out_len = sizeof ev, .err = err, .err_len = sizeof err});
        CHECK_MSG(rc == 0, "'ibnet %s' exited %d: %s", args, rc, err);
        cJSON *e = cJSON_Parse(ev);
        CHECK_MSG(e != NULL, "eval printed no JSON: %s", ev);
        CHECK_EQ_INT((int)num(e, "n"), n);
        /* a deterministic model: eval's errors on the saved set are the report's
         * u8 errors; allow one example for the float rounding of the normalisation */
        double correct = num(e, "acc_avg") * n, want = num(o, "robust_acc_u8") * n;
        CHECK_MSG(fabs(correct - want) <= 1.0, "%s: eval finds %.0f correct, the report %.0f", dirs[k], correct, want);
        /* the fooled (u8) examples were clean-correct and are now wrong: at most the errors,
         * and the errors beyond them at most the clean errors */
        double errors = n - correct, fooled = num(o, "fooled_u8"), clean_err = n - num(o, "clean_acc") * n;
        CHECK_MSG(fooled <= errors + 1 && errors - fooled <= clean_err + 1,
                  "%s: %.0f errors on the saved set, %.0f fooled, %.0f clean errors", dirs[k], errors, fooled,
                  clean_err);
        cJSON_Delete(e);
    }
    free(clean);
    cJSON_Delete(a);

    /* the grid is a PNG */
    f = fopen(grid, "rb");
    CHECK_MSG(f != NULL, "no grid %s", grid);
    unsigned char sig[8] = {0};
    if (f) {
        CHECK(fread(sig, 1, 8, f) == 8);
        fclose(f);
    }
    CHECK(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
}

/* Every user error exits 2 with a message about the flag, before any work:
 * the checkpoint named does not exist, so a message about it would mean the
 * flags were checked too late. */
static void test_user_errors(void)
{
    char err[1024], args[1500];
    struct {
        const char *args, *needle;
    } cases[] = {
        {"--attack pgd --eps -0.1", "eps"},
        {"--attack pgd --eps 0.1,nope", "--eps"},
        {"--attack pgd --eps 0.1,", "--eps"},
        {"--attack pgd --steps 0", "--steps"},
        {"--attack cw --norm linf", "L-inf"},
        {"--attack bim", "--attack must be one of fgsm|pgd|cw, got 'bim'"},
        {"--eps 0.1", "--attack is required"},
        {"--attack pgd --norm l3", "--norm must be one of"},
        {"--attack pgd --loss hinge", "--loss must be one of"},
        {"--attack pgd --restarts 0", "--restarts"},
        {"--attack pgd --eot 0", "--eot"},
        {"--attack fgsm --bogus", "unknown option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "attack /no/such/ckpt.safetensors %s", cases[i].args);
        int rc = ib_test_run_cli(args, &(ib_test_cli){.err = err, .err_len = sizeof err});
        CHECK_MSG(rc == 2, "'ibnet %s' exited %d (want 2): %s", args, rc, err);
        CHECK_MSG(strstr(err, cases[i].needle) != NULL, "'ibnet %s' said: %s", args, err);
        CHECK_MSG(strstr(err, "no/such") == NULL, "'ibnet %s' read the checkpoint first: %s", args, err);
    }
    /* and a missing checkpoint is a user error too */
    int rc = ib_test_run_cli("attack /no/such/ckpt.safetensors --attack fgsm",
                             &(ib_test_cli){.err = err, .err_len = sizeof err});
    CHECK_MSG(rc == 2 && strstr(err, "no/such") != NULL, "exit %d: %s", rc, err);
}

int main(void)
{
    ib_set_threads(1);
    setup_once();
    IB_RUN(test_user_errors);
    IB_RUN(test_json_report);
    IB_RUN(test_saved_set_reevaluates);
    return ib_test_summary();
}
