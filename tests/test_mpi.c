/*
 * test_mpi.c — `ibnet train` over mpirun against one process, on the
 * small 4-class image set and a small Deep VIB model (no batch norm):
 * the same global batch over 2 ranks (25 + 25 rows) and over 3 ranks
 * (17 + 17 + 16) reaches the weights of one process within a stated
 * tolerance; the run directory holds one metrics.jsonl and its accuracy is
 * that of one process; a run stopped on 2 ranks and resumed on 1 reaches
 * the uninterrupted run's weights.  The evaluation split over 2 and 3
 * ranks (`ibnet eval` and the trainer's) equals one process's: counts
 * exactly, sums to rounding; config.json and summary.json name the ranks.
 *
 * Why a tolerance, not equality: the noise, the batch order and the
 * augmentation are the same bits on any number of ranks (test_dist.c),
 * but a weight gradient is a sum over the batch's rows, and split over
 * ranks it is summed in another order (two partial GEMMs scaled by their
 * shares, then the allreduce): about 1 ulp per step, which Adam's
 * normalisation then carries through the steps.  After 20 steps the
 * weights (of order 0.1-1) were measured to agree within 6e-8; the bound
 * is 1e-6.  A rank that drew another row's noise, or took another row,
 * differs by 1e-2 or more (a resume that trained 6 steps too few: 0.04).
 *
 * Exit 77 (CTest: skipped, not passed) when this build has no MPI or
 * mpirun is missing.
 */
#include "test.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char data_dir[1024], model_path[1024], bn_path[1024], ibnet[1024], mpirun[1200];
static const char *model_now = model_path; /* the model train() and weights() use */

#define TOL 1e-6
#define BN_TOL 1e-5 /* batch norm: measured 7.3e-7 (2 ranks), 3.0e-7 (3 ranks) */

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool setup_once(void)
{
    const char *build = getenv("IBNET_BUILD_DIR");
    snprintf(ibnet, sizeof ibnet, "%s/ibnet", build ? build : "build");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s --version | grep -q '^MPI: no'", ibnet);
    if (sh(cmd) == 0) {
        printf("skipped: this ibnet is built without MPI (IBNET_MPI off or libopenmpi-dev missing)\n");
        return false;
    }
    if (sh("command -v mpirun > /dev/null 2>&1") != 0) {
        printf("skipped: mpirun not found (install openmpi-bin)\n");
        return false;
    }
    /* root in a container: Open MPI wants to be told; shared memory
     * without the single-copy mechanism a container may forbid.  Under
     * AddressSanitizer the ranks skip the leak check: Open MPI leaves
     * allocations of its plugins (unloaded at MPI_Finalize, so no
     * suppression can name them); the same code paths without MPI keep
     * the leak check in the single-process runs. */
    snprintf(mpirun, sizeof mpirun,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none "
             "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" "
             "mpirun --oversubscribe --mca btl self,vader --bind-to none");
    ib_test_blob_dir("blobs", 1000, 400, 99, 170.0f, 20.0f, data_dir, sizeof data_dir);
    ib_test_write_text("tiny-vib.ibm", IB_TEST_TINY_VIB(64), model_path, sizeof model_path);
    ib_test_write_text("tiny-bn.ibm",
                       "model tiny-bn\ninput 1 8 8\nclasses 4\n\nflatten\nlinear 32 bias=false name=fc1\n"
                       "batchnorm name=bn1\nrelu\n"
                       "linear 16 name=fc2\nvib 8 shift=-5 name=vib\nlinear 4 name=decoder\n", bn_path, sizeof bn_path);
    return true;
}

/* `ibnet train` of the test's run `name` on `ranks` ranks (0: no mpirun);
 * extra: more flags.  Returns the exit code. */
static int train(const char *name, int ranks, int64_t batch, const char *extra)
{
    static char cmd[16384];
    char pre[1400] = "";
    if (ranks > 0)
        snprintf(pre, sizeof pre, "%s -np %d ", mpirun, ranks);
    snprintf(cmd, sizeof cmd,
             "%s%s train --model %s --dataset idx:%s --epochs 1 --batch-size %lld --lr 3e-3 --ema 0.9 "
             "--eval-samples 4 --eval-batch-size 100 --threads 1 --quiet --out %s/%s %s > %s/%s.log 2>&1",
             pre, ibnet, model_now, data_dir, (long long)batch, ib_test_tmpdir(), name, extra, ib_test_tmpdir(),
             name);
    int rc = sh(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/%s.log", ib_test_tmpdir(), name);
        sh(cmd);
    }
    return rc;
}

static int resume(const char *name, int ranks)
{
    static char cmd[16384];
    char pre[1400] = "";
    if (ranks > 0)
        snprintf(pre, sizeof pre, "%s -np %d ", mpirun, ranks);
    snprintf(cmd, sizeof cmd, "%s%s train --resume %s/%s --threads 1 --quiet > %s/%s-resume.log 2>&1", pre, ibnet,
             ib_test_tmpdir(), name, ib_test_tmpdir(), name);
    return sh(cmd);
}

/* The weights (and EMA shadow, through the load) of a run's last checkpoint. */
static ib_params *weights(const char *name)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", ib_test_tmpdir(), name);
    return ib_test_run_weights(model_now, dir);
}

static double max_diff(const char *a, const char *b)
{
    ib_params *pa = weights(a), *pb = weights(b);
    double d = 0;
    const float *va = ib_params_values(pa), *vb = ib_params_values(pb);
    for (int i = 0; i < ib_params_count(pa); i++) {
        double di = 0;
        for (int64_t k = ib_params_offset(pa, i); k < ib_params_offset(pa, i) + ib_params_numel(pa, i); k++)
            di = fmax(di, fabs((double)va[k] - (double)vb[k]));
        if (di >= TOL)
            printf("    %s: max |dw| = %.3g\n", ib_params_name(pa, i), di);
        d = fmax(d, di);
    }
    bool same = memcmp(va, vb, (size_t)ib_params_total(pa) * sizeof(float)) == 0;
    printf("  %s vs %s: max |dw| = %.3g%s\n", a, b, d, same ? " (bit-identical)" : "");
    ib_params_free(pa);
    ib_params_free(pb);
    return d;
}

static double summary_acc(const char *name)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/summary.json", ib_test_tmpdir(), name);
    char *text = ib__read_file(path, 1 << 20, NULL);
    CHECK_MSG(text != NULL, "no %s", path);
    cJSON *o = cJSON_Parse(text ? text : "");
    free(text);
    const cJSON *v = cJSON_GetObjectItem(o, "test_acc_avg");
    double acc = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(o);
    return acc;
}

static int count_lines(const char *name, const char *file)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "%s/%s/%s", ib_test_tmpdir(), name, file);
    FILE *f = fopen(cmd, "r");
    if (!f)
        return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* A run's JSON file (config.json, summary.json) parsed; NULL if absent. */
static cJSON *run_json(const char *name, const char *file)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/%s", ib_test_tmpdir(), name, file);
    char *text = ib__read_file(path, 1 << 20, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    return o;
}

static void test_ranks_match_one_process(void)
{
    CHECK_EQ_INT(train("one", 0, 50, ""), 0);
    CHECK_EQ_INT(train("two", 2, 50, ""), 0);
    CHECK_EQ_INT(train("three", 3, 50, ""), 0); /* 17 + 17 + 16 rows */
    CHECK(max_diff("one", "two") < TOL);
    CHECK(max_diff("one", "three") < TOL);
    /* one run directory, one metrics line per epoch, rank 0's summary */
    CHECK_EQ_INT(count_lines("two", "metrics.jsonl"), 1);
    /* each epoch's line names the ranks that trained it (one line: the file parses whole) */
    const char *runs[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        cJSON *m = run_json(runs[i], "metrics.jsonl");
        const cJSON *rk = cJSON_GetObjectItem(m, "ranks");
        CHECK_EQ_INT(rk ? rk->valueint : -1, i + 1);
        cJSON_Delete(m);
    }
    double a1 = summary_acc("one"), a2 = summary_acc("two");
    printf("  test accuracy: 1 process %.4f, 2 ranks %.4f\n", a1, a2);
    CHECK(fabs(a1 - a2) <= 0.01);
    CHECK(a2 > 0.5); /* it learned (4 classes) */
}

static void test_uneven_global_batch(void)
{
    /* 1000 / 100 = 10 steps; 100 rows over 3 ranks: 34 + 33 + 33 */
    CHECK_EQ_INT(train("b100-one", 0, 100, ""), 0);
    CHECK_EQ_INT(train("b100-three", 3, 100, ""), 0);
    CHECK(max_diff("b100-one", "b100-three") < TOL);
}

static void test_resume_with_other_rank_count(void)
{
    /* --max-steps counts the steps of each invocation: 7 on 2 ranks, 7
     * more on 1 process, the last 6 (the epoch ends) on 3 ranks */
    CHECK_EQ_INT(train("moved", 2, 50, "--max-steps 7"), 0);
    CHECK_EQ_INT(resume("moved", 0), 0);
    CHECK_EQ_INT(resume("moved", 3), 0);
    CHECK_EQ_INT(count_lines("moved", "metrics.jsonl"), 1);
    CHECK(max_diff("one", "moved") < TOL);
    /* config.json names the job that started the run, summary.json the one
     * that finished it */
    cJSON *conf = run_json("moved", "config.json"), *sum = run_json("moved", "summary.json");
    const cJSON *prov = cJSON_GetObjectItem(conf, "provenance");
    CHECK(cJSON_GetObjectItem(prov, "ranks") && cJSON_GetObjectItem(prov, "ranks")->valueint == 2);
    CHECK(cJSON_GetObjectItem(sum, "ranks") && cJSON_GetObjectItem(sum, "ranks")->valueint == 3);
    cJSON *m = run_json("moved", "metrics.jsonl"); /* the epoch ended on 3 ranks */
    CHECK(m && cJSON_GetObjectItem(m, "ranks") && cJSON_GetObjectItem(m, "ranks")->valueint == 3);
    cJSON_Delete(m);
    cJSON_Delete(conf);
    cJSON_Delete(sum);
}

/* `ibnet eval --json` of run `name`'s last checkpoint on `ranks` ranks (0:
 * one process), batches of `batch`; the parsed output. */
static cJSON *eval_json(const char *name, int ranks, int batch)
{
    static char cmd[16384];
    char pre[1400] = "", out[1400];
    if (ranks > 0)
        snprintf(pre, sizeof pre, "%s -np %d ", mpirun, ranks);
    snprintf(out, sizeof out, "%s/%s-eval%d-%d.json", ib_test_tmpdir(), name, ranks, batch);
    snprintf(cmd, sizeof cmd, "%s%s eval --json --threads 1 --batch-size %d --data %s %s/%s/last.safetensors > %s",
             pre, ibnet, batch, data_dir, ib_test_tmpdir(), name, out);
    CHECK_EQ_INT(sh(cmd), 0);
    char *text = ib__read_file(out, 1 << 20, NULL);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(o != NULL, "no JSON from %s", cmd);
    return o;
}

/* Compares two evaluations' JSON, member by member (arrays and objects
 * recursively): the members named in `exact` (counts and the accuracies
 * made of counts) must be equal, every other number within tol; returns
 * the largest difference of the others. */
static double json_diff(const cJSON *a, const cJSON *b, const char *key, double tol, int *bad)
{
    static const char *exact[] = {"n", "acc_1shot", "acc_avg", "acc_mean", "count", "confusion", "test_acc_1shot",
                                  "test_acc_avg", "test_acc_mean", "test_error_avg"};
    bool is_exact = false;
    for (size_t k = 0; k < sizeof exact / sizeof exact[0]; k++)
        is_exact |= strcmp(key, exact[k]) == 0;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
        double d = fabs(a->valuedouble - b->valuedouble);
        if (is_exact ? d != 0 : !(d <= tol)) {
            printf("    %s: %.17g vs %.17g\n", key, a->valuedouble, b->valuedouble);
            (*bad)++;
        }
        return is_exact ? 0 : d;
    }
    double worst = 0;
    if ((cJSON_IsArray(a) || cJSON_IsObject(a)) && (cJSON_IsArray(b) || cJSON_IsObject(b))) {
        CHECK_EQ_INT(cJSON_GetArraySize(a), cJSON_GetArraySize(b));
        const cJSON *y = b->child;
        for (const cJSON *x = a->child; x && y; x = x->next, y = y->next) {
            /* a confusion row inherits its key; an object member has its own */
            const char *k = x->string ? x->string : key;
            worst = fmax(worst, json_diff(x, y, k, tol, bad));
        }
    }
    return worst;
}

/* Evaluation split over the ranks (batches r, r + N, ... on rank r, the
 * sums reduced) against one process: `ibnet eval` of the same checkpoint
 * (a run stopped after 6 steps, so that it errs: 87.75 %, errors in the
 * confusion matrix, confidences over 5 reliability bins)
 * with 400 test images in batches of 30 (13 full batches and one of 10,
 * split 7 + 7 over 2 ranks and 5 + 5 + 4 over 3), 4 samples of the
 * bottleneck.  Every count (accuracies, confusion matrix, reliability bin
 * counts) must be equal: each batch is the same rows, padding and noise
 * key as in one process.  The sums (NLL, cross-entropy, Brier, entropy,
 * the bins' mean confidence) are added per rank and then over the ranks,
 * another order than one process's: they differ by rounding, about
 * 400 * 1e-16 relative, far below the 6 decimals `ibnet eval --json`
 * prints; the bound is one unit of the last printed digit (1e-6). */
static void test_eval_sharded_equals_one_process(void)
{
    CHECK_EQ_INT(train("early", 0, 50, "--max-steps 6 --ema 0"), 0);
    cJSON *one = eval_json("early", 0, 30);
    const cJSON *acc = cJSON_GetObjectItem(one, "acc_avg");
    CHECK_MSG(cJSON_IsNumber(acc) && acc->valuedouble < 0.95, "the checkpoint should err");
    for (int ranks = 2; ranks <= 3; ranks++) {
        cJSON *many = eval_json("early", ranks, 30);
        int bad = 0;
        double d = json_diff(one, many, "", 1e-6, &bad);
        printf("  ibnet eval on %d ranks vs one process: counts equal, sums within %.3g\n", ranks, d);
        CHECK_MSG(bad == 0, "%d members differ on %d ranks", bad, ranks);
        cJSON_Delete(many);
    }
    cJSON_Delete(one);
}

/* The trainer's own evaluation on 2 and 3 ranks (eval batches of 100: 4
 * batches, 2 + 2 and 2 + 1 + 1) gives the figures one process gets from the
 * same weights: summary.json's test figures against `ibnet eval` of the
 * run's last checkpoint (EMA weights, the run's sample seed and count).
 * The ranks and threads of the job are recorded. */
static void test_trainer_eval_sharded(void)
{
    const char *runs[] = {"two", "three"};
    for (int k = 0; k < 2; k++) {
        cJSON *sum = run_json(runs[k], "summary.json"), *conf = run_json(runs[k], "config.json");
        cJSON *ev = eval_json(runs[k], 0, 100);
        CHECK(sum && conf && ev);
        if (!sum || !conf || !ev)
            continue;
        int bad = 0;
        static const char *keys[] = {"acc_1shot", "acc_avg", "acc_mean", "nll_avg", "nll_mean", "ce_samples"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char sk[64];
            snprintf(sk, sizeof sk, "test_%s", keys[i]);
            const cJSON *a = cJSON_GetObjectItem(sum, sk), *b = cJSON_GetObjectItem(ev, keys[i]);
            CHECK_MSG(cJSON_IsNumber(a) && cJSON_IsNumber(b), "%s missing", keys[i]);
            /* the summary prints 17 digits, ibnet eval 6: equal after rounding to 6 */
            if (cJSON_IsNumber(a) && cJSON_IsNumber(b) && !(fabs(a->valuedouble - b->valuedouble) <= 5.01e-7)) {
                printf("    %s: summary %.17g, ibnet eval %.17g\n", keys[i], a->valuedouble, b->valuedouble);
                bad++;
            }
        }
        CHECK_MSG(bad == 0, "%s: the sharded evaluation differs from one process", runs[k]);
        int ranks = k + 2;
        const cJSON *prov = cJSON_GetObjectItem(conf, "provenance");
        CHECK_EQ_INT(cJSON_GetObjectItem(prov, "ranks") ? cJSON_GetObjectItem(prov, "ranks")->valueint : -1, ranks);
        CHECK_EQ_INT(cJSON_GetObjectItem(prov, "threads") ? cJSON_GetObjectItem(prov, "threads")->valueint : -1, 1);
        CHECK_EQ_INT(cJSON_GetObjectItem(sum, "ranks") ? cJSON_GetObjectItem(sum, "ranks")->valueint : -1, ranks);
        CHECK_EQ_INT(cJSON_GetObjectItem(sum, "threads_per_rank") ? cJSON_GetObjectItem(sum, "threads_per_rank")->valueint : -1, 1);
        cJSON_Delete(sum);
        cJSON_Delete(conf);
        cJSON_Delete(ev);
    }
    cJSON *sum = run_json("one", "summary.json"); /* one process: 1 rank */
    CHECK(sum && cJSON_GetObjectItem(sum, "ranks") && cJSON_GetObjectItem(sum, "ranks")->valueint == 1);
    cJSON_Delete(sum);
}

/* Early stopping on a validation split ends every rank at the same epoch:
 * all ranks evaluate (their share) and so all see the same validation
 * accuracy.  (When rank 0 alone evaluated, it stopped and the other ranks
 * waited in the next step's allreduce for ever: the timeout catches that.)
 * One process stops at the same epoch. */
static void test_early_stopping_on_ranks(void)
{
    char cmd[16384];
    for (int ranks = 0; ranks <= 2; ranks += 2) {
        char pre[1400] = "";
        if (ranks > 0)
            snprintf(pre, sizeof pre, "timeout 300 env %s -np %d ", mpirun, ranks);
        snprintf(cmd, sizeof cmd,
                 "%s%s train --model %s --dataset idx:%s --epochs 8 --batch-size 50 --lr 3e-3 --val-size 200 "
                 "--patience 1 --eval-samples 2 --threads 1 --quiet --out %s/patience%d > %s/patience%d.log 2>&1",
                 pre, ibnet, model_now, data_dir, ib_test_tmpdir(), ranks, ib_test_tmpdir(), ranks);
        CHECK_EQ_INT(sh(cmd), 0);
    }
    cJSON *one = run_json("patience0", "summary.json"), *two = run_json("patience2", "summary.json");
    const cJSON *e1 = cJSON_GetObjectItem(one, "early_stop_epoch"), *e2 = cJSON_GetObjectItem(two, "early_stop_epoch");
    CHECK_MSG(cJSON_IsNumber(e1) && e1->valuedouble < 8, "one process did not stop early");
    CHECK_MSG(cJSON_IsNumber(e1) && cJSON_IsNumber(e2) && e1->valuedouble == e2->valuedouble,
              "2 ranks stopped at another epoch than one process");
    cJSON_Delete(one);
    cJSON_Delete(two);
}

static void test_too_many_ranks_is_a_user_error(void)
{
    /* a batch of 2 over 3 ranks: each rank needs a row */
    int rc = train("tiny-batch", 3, 2, "");
    CHECK_MSG(rc == 2, "exit %d", rc);
}

/* SIGTERM to one rank stops every rank at the same step: the run is saved
 * (exit 3) and resumes.  (mpirun itself kills the job on SIGTERM; the
 * ranks are signalled directly, as a scheduler's signal to the processes
 * does.) */
static void test_stop_signal_on_one_rank(void)
{
    static char cmd[16384];
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/stopped", ib_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "%s -np 2 %s train --model %s --dataset idx:%s --epochs 1000 --batch-size 50 --threads 1 --quiet "
             "--eval-samples 1 --out %s > %s.log 2>&1 & MP=$!; "
             "for i in $(seq 900); do [ -s %s/metrics.jsonl ] && break; sleep 0.1; done; "
             "KIDS=$(cat /proc/$MP/task/*/children 2>/dev/null || pgrep -P $MP); "
             "kill -TERM $(echo $KIDS | tr ' ' '\\n' | tail -1); wait $MP",
             mpirun, ibnet, model_path, data_dir, dir, dir, dir);
    int rc = sh(cmd);
    CHECK_MSG(rc == 3, "exit %d", rc);
    char path[1300];
    snprintf(path, sizeof path, "%s.log", dir);
    char *log = ib__read_file(path, 1 << 20, NULL);
    CHECK(log && strstr(log, "stopped by") && strstr(log, "continue with: ibnet train --resume"));
    free(log);
    int done = count_lines("stopped", "metrics.jsonl"); /* epochs finished before the stop */
    CHECK(done >= 1);
    snprintf(cmd, sizeof cmd, "%s train --resume %s --epochs %d --threads 1 --quiet > /dev/null 2>&1", ibnet, dir,
             done + 1);
    CHECK_EQ_INT(sh(cmd), 0);
}

/* Batch norm: each rank's own statistics (the default) make another run;
 * --sync-batchnorm (statistics of the global batch) matches one process
 * within 1e-5 (the normalisation divides by the batch's standard
 * deviation, which magnifies the rounding), running statistics included.  The layer
 * before the batch norm has no bias: a bias there has a gradient of
 * exactly 0 in exact arithmetic, i.e. pure rounding noise, which Adam
 * scales up to steps of the learning rate's size in any summation order
 * (measured: 6e-3 apart after 20 steps, and the running mean with it),
 * without changing the function the network computes. */
/* The batch-norm statistics the run recomputed for its EMA weights (the
 * EMA's bn1.running_mean then bn1.running_var, 32 each) into out[64]. */
static void ema_statistics(const char *name, float *out)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(bn_path, &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, ib_input(g, "x", 4, (int64_t[]){1, 1, 8, 8}), NULL, &mo));
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/last.safetensors", ib_test_tmpdir(), name);
    ib_ema *e = ib_ema_new(p, 0.9f, true);
    CHECK_OK(ib_checkpoint_load(path, p, NULL, e, NULL));
    CHECK(ib_ema_has_buffer(e, ib_params_find(p, "bn1.running_mean")));
    CHECK_OK(ib_ema_swap(e));
    memcpy(out, ib_params_value(p, ib_params_find(p, "bn1.running_mean")), 32 * sizeof(float));
    memcpy(out + 32, ib_params_value(p, ib_params_find(p, "bn1.running_var")), 32 * sizeof(float));
    ib_ema_free(e);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
}

static double stats_diff(const char *a, const char *b)
{
    float sa[64], sb[64];
    ema_statistics(a, sa);
    ema_statistics(b, sb);
    double d = 0;
    for (int k = 0; k < 64; k++)
        d = fmax(d, fabs((double)sa[k] - (double)sb[k]) / fmax(1.0, fabs((double)sb[k])));
    printf("  %s vs %s: EMA batch-norm statistics max relative difference %.3g\n", a, b, d);
    return d;
}

static void test_sync_batchnorm(void)
{
    model_now = bn_path;
    CHECK_EQ_INT(train("bn-one", 0, 50, ""), 0);
    CHECK_EQ_INT(train("bn-sync", 2, 50, "--sync-batchnorm"), 0);
    CHECK_EQ_INT(train("bn-sync3", 3, 50, "--sync-batchnorm"), 0);
    CHECK_EQ_INT(train("bn-local", 2, 50, ""), 0);
    CHECK(max_diff("bn-one", "bn-sync") < BN_TOL);
    CHECK(max_diff("bn-one", "bn-sync3") < BN_TOL);
    CHECK(max_diff("bn-one", "bn-local") > 100 * BN_TOL);
    /* the statistics recomputed for the EMA weights (--ema-bn-batches):
     * with --sync-batchnorm each batch's are the global batch's, as in one
     * process; each rank's own (averaged over the ranks) are close but not
     * the same */
    CHECK(stats_diff("bn-one", "bn-sync") < BN_TOL);
    CHECK(stats_diff("bn-one", "bn-sync3") < BN_TOL);
    CHECK(stats_diff("bn-one", "bn-local") > BN_TOL);
    model_now = model_path;
}

/* ---- `ibnet sweep` over 2 ranks against the same sweep in one process ---- */

static int sweep(const char *name, int ranks)
{
    static char cmd[16384];
    char pre[1400] = "";
    if (ranks > 0)
        snprintf(pre, sizeof pre, "%s -np %d ", mpirun, ranks);
    snprintf(cmd, sizeof cmd,
             "%s%s sweep --out %s/%s --set model=%s --set dataset=idx:%s --set epochs=1 --set batch_size=50 "
             "--set lr=3e-3 --set eval_samples=2 --set eval_batch_size=100 --grid beta=1e-3,1e-1 --grid seed=1,2 "
             "--threads 1 > %s/%s.log 2>&1",
             pre, ibnet, ib_test_tmpdir(), name, model_path, data_dir, ib_test_tmpdir(), name);
    return sh(cmd);
}

/* The tensor bytes of a checkpoint (after its header, which names the run's path). */
static char *tensor_bytes(const char *path, size_t *len)
{
    size_t n = 0;
    char *b = ib__read_file(path, 1 << 26, &n);
    CHECK_MSG(b != NULL && n >= 8, "no %s", path);
    if (!b || n < 8)
        return NULL;
    uint64_t h = 0;
    memcpy(&h, b, 8);
    *len = n - 8 - (size_t)h;
    memmove(b, b + 8 + h, *len);
    return b;
}

static void test_sweep_over_ranks(void)
{
    CHECK_EQ_INT(sweep("sweep1", 0), 0);
    CHECK_EQ_INT(sweep("sweep2", 2), 0);
    static const char *runs[4] = {"beta=1e-3_seed=1", "beta=1e-3_seed=2", "beta=1e-1_seed=1", "beta=1e-1_seed=2"};
    for (int k = 0; k < 4; k++) { /* each run is a single-process run: the same bits */
        char a[1400], b[1400];
        snprintf(a, sizeof a, "%s/sweep1/%s/last.safetensors", ib_test_tmpdir(), runs[k]);
        snprintf(b, sizeof b, "%s/sweep2/%s/last.safetensors", ib_test_tmpdir(), runs[k]);
        size_t la = 0, lb = 0;
        char *ta = tensor_bytes(a, &la), *tb = tensor_bytes(b, &lb);
        CHECK_MSG(ta && tb && la == lb && memcmp(ta, tb, la) == 0, "%s differs", runs[k]);
        free(ta);
        free(tb);
    }
    char a[1400], b[1400];
    snprintf(a, sizeof a, "%s/sweep1/results.md", ib_test_tmpdir());
    snprintf(b, sizeof b, "%s/sweep2/results.md", ib_test_tmpdir());
    char *ma = ib__read_file(a, 1 << 20, NULL), *mb = ib__read_file(b, 1 << 20, NULL);
    CHECK(ma && mb && strcmp(ma, mb) == 0);
    free(ma);
    free(mb);
    /* restarted over 2 ranks: nothing trained twice */
    CHECK_EQ_INT(sweep("sweep2", 2), 0);
    snprintf(a, sizeof a, "%s/sweep2.log", ib_test_tmpdir());
    char *log = ib__read_file(a, 1 << 20, NULL);
    CHECK(log && !strstr(log, "trained") && !strstr(log, "resumed"));
    free(log);
}

int main(void)
{
    if (!setup_once())
        return 77;
    IB_RUN(test_ranks_match_one_process);
    IB_RUN(test_eval_sharded_equals_one_process);
    IB_RUN(test_trainer_eval_sharded);
    IB_RUN(test_uneven_global_batch);
    IB_RUN(test_resume_with_other_rank_count);
    IB_RUN(test_early_stopping_on_ranks);
    IB_RUN(test_too_many_ranks_is_a_user_error);
    IB_RUN(test_stop_signal_on_one_rank);
    IB_RUN(test_sync_batchnorm);
    IB_RUN(test_sweep_over_ranks);
    return ib_test_summary();
}
