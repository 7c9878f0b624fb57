/*
 * test_sweep.c — `ibnet sweep` in one process on the small 4-class image
 * set: a 2 x 2 grid gives 4 run directories and a results table; a
 * restarted sweep trains nothing again; a sweep whose runs stop inside
 * their epoch (max_steps) is resumed run by run until it is done, and
 * then holds exactly the weights of a sweep that was never interrupted;
 * the sweep draws its plot (a valid PNG; without cairo it says so); bad
 * grids are user errors.  (test_mpi.c runs a sweep over 2 ranks.)
 */
#include "test.h"
#include "core/internal.h"

#include <sys/stat.h>
#include <zlib.h>

static char tmp[512], base[4096];

static void setup_once(void)
{
    snprintf(tmp, sizeof tmp, "%s", ib_test_tmpdir());
    char dir[700];
    ib_test_blob_dir("blobs", 400, 200, 99, 170.0f, 20.0f, dir, sizeof dir);
    char model[700];
    ib_test_write_text("tiny-vib.ibm", IB_TEST_TINY_VIB(32), model, sizeof model);
    snprintf(base, sizeof base,
             "--set model=%s --set dataset=idx:%s --set epochs=1 --set batch_size=20 --set lr=3e-3 "
             "--set eval_samples=2 --set eval_batch_size=100 --grid beta=1e-3,1e-1 --grid seed=1,2 --threads 1",
             model, dir);
}

/* `ibnet sweep --out TMP/name base extra`, its output into TMP/name.log. */
static int sweep(const char *name, const char *extra)
{
    static char log[1 << 20];
    char args[8192], file[100], path[700];
    snprintf(args, sizeof args, "sweep --out %s/%s %s %s", tmp, name, base, extra);
    int rc = ib_test_run_cli(args, &(ib_test_cli){.out = log, .out_len = sizeof log, .out_err = true});
    snprintf(file, sizeof file, "%.60s.log", name);
    ib_test_write_text(file, log, path, sizeof path);
    return rc;
}

static int count_in_log(const char *name, const char *what)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.log", tmp, name);
    char *text = ib__read_file(path, 1 << 20, NULL);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p++)
        n++;
    free(text);
    return n;
}

static const char *runs[4] = {"beta=1e-3_seed=1", "beta=1e-3_seed=2", "beta=1e-1_seed=1", "beta=1e-1_seed=2"};

/* The tensors of a run's last checkpoint (the metadata holds its path). */
static char *tensors(const char *sw, const char *run, size_t *len)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/%s/last.safetensors", tmp, sw, run);
    size_t n = 0;
    char *b = ib__read_file(path, 1 << 26, &n);
    CHECK_MSG(b != NULL, "no %s", path);
    if (!b || n < 8)
        return NULL;
    uint64_t h = 0; /* safetensors: 8-byte little-endian header size, header, data */
    memcpy(&h, b, 8);
    *len = n - 8 - (size_t)h;
    memmove(b, b + 8 + h, *len);
    return b;
}

static void same_weights(const char *a, const char *b)
{
    for (int k = 0; k < 4; k++) {
        size_t la = 0, lb = 0;
        char *ta = tensors(a, runs[k], &la), *tb = tensors(b, runs[k], &lb);
        CHECK_MSG(ta && tb && la == lb && memcmp(ta, tb, la) == 0, "%s: %s and %s differ", runs[k], a, b);
        free(ta);
        free(tb);
    }
}

static void test_grid_and_results(void)
{
    CHECK_EQ_INT(sweep("sw", ""), 0);
    CHECK_EQ_INT(count_in_log("sw", "trained"), 4);
    for (int k = 0; k < 4; k++) {
        char path[1200];
        struct stat st;
        snprintf(path, sizeof path, "%s/sw/%s/summary.json", tmp, runs[k]);
        CHECK_MSG(stat(path, &st) == 0, "no %s", path);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/sw/results.md", tmp);
    char *md = ib__read_file(path, 1 << 20, NULL);
    CHECK(md && strstr(md, "| beta=1e-1_seed=2 | 1e-1 | 2 | done | 1 |"));
    free(md);
    snprintf(path, sizeof path, "%s/sw/results.jsonl", tmp);
    char *js = ib__read_file(path, 1 << 20, NULL);
    int lines = 0;
    for (const char *p = js; p && *p; p++)
        lines += *p == '\n';
    CHECK_EQ_INT(lines, 4);
    free(js);

    /* restarted: nothing is trained again, no checkpoint rewritten */
    struct stat before, after;
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/sw/%s/last.safetensors", tmp, runs[0]);
    CHECK(stat(ck, &before) == 0);
    CHECK_EQ_INT(sweep("sw", ""), 0);
    CHECK_EQ_INT(count_in_log("sw", "trained") + count_in_log("sw", "resumed"), 0);
    CHECK(stat(ck, &after) == 0);
    CHECK(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
}

/* A valid PNG: the signature, an IHDR of width x height first, every
 * chunk's CRC right, IDAT data, and IEND last at the end of the file. */
static void check_png(const char *path, int width, int height)
{
    size_t n = 0;
    unsigned char *b = (unsigned char *)ib__read_file(path, 1 << 26, &n);
    CHECK_MSG(b != NULL, "no %s", path);
    if (!b)
        return;
    CHECK(n > 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0);
    size_t at = 8, idat = 0;
    bool iend = false;
    int chunks = 0;
    while (at + 12 <= n && !iend) {
        uint32_t len = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
        if (at + 12 + (size_t)len > n)
            break;
        const unsigned char *type = b + at + 4;
        uint32_t crc = (uint32_t)crc32(0L, type, 4 + len);
        const unsigned char *c = type + 4 + len;
        uint32_t want = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
        CHECK_MSG(crc == want, "%s: chunk %.4s has a bad CRC", path, (const char *)type);
        if (chunks == 0) {
            CHECK(memcmp(type, "IHDR", 4) == 0 && len == 13);
            CHECK_EQ_INT(((int64_t)type[4] << 24) | (type[5] << 16) | (type[6] << 8) | type[7], width);
            CHECK_EQ_INT(((int64_t)type[8] << 24) | (type[9] << 16) | (type[10] << 8) | type[11], height);
        }
        idat += memcmp(type, "IDAT", 4) == 0 ? len : 0;
        iend = memcmp(type, "IEND", 4) == 0;
        at += 12 + (size_t)len;
        chunks++;
    }
    CHECK_MSG(iend && at == n, "%s: no IEND at the end", path);
    CHECK_MSG(idat > 2000, "%s: %zu bytes of image data: nothing drawn?", path, idat);
    free(b);
}

/* The sweep's plot (sweep.png: test error against beta, a line per seed)
 * through the library's charts; a build without cairo says so and still
 * writes the tables. */
static void test_plot(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/sw/sweep.png", tmp);
    if (!ib_chart_available()) {
        printf("skipped: the sweep's plot: this build has no cairo (IBNET_CAIRO; libcairo2-dev)\n");
        CHECK(count_in_log("sw", "no plot: this ibnet was built without cairo") == 1);
        struct stat st;
        CHECK(stat(path, &st) != 0);
        return;
    }
    CHECK_EQ_INT(count_in_log("sw", "plot of test_error_avg against beta"), 1);
    check_png(path, 900, 600);
    /* another figure of summary.json on the y axis */
    CHECK_EQ_INT(sweep("sw", "--plot-y test_nll_avg"), 0);
    CHECK_EQ_INT(count_in_log("sw", "plot of test_nll_avg against beta"), 1);
    check_png(path, 900, 600);
}

static void test_partial_runs_resume(void)
{
    /* 20 steps per run; 8 per invocation: new, resumed, resumed (done) */
    CHECK_EQ_INT(sweep("part", "--set max_steps=8"), 1); /* unfinished runs: exit 1 */
    CHECK_EQ_INT(count_in_log("part", "trained"), 4);
    char path[700];
    snprintf(path, sizeof path, "%s/part/results.md", tmp);
    char *md = ib__read_file(path, 1 << 20, NULL);
    CHECK(md && strstr(md, "partial"));
    free(md);
    CHECK_EQ_INT(sweep("part", "--set max_steps=8"), 1);
    CHECK_EQ_INT(count_in_log("part", "resumed"), 4);
    CHECK_EQ_INT(sweep("part", "--set max_steps=8"), 0);
    CHECK_EQ_INT(count_in_log("part", "resumed"), 4);
    same_weights("sw", "part");
}

static void test_user_errors(void)
{
    char args[8192];
    const char *bad[] = {"--grid nosuchkey=1,2", "--grid beta=", "--grid beta=abc", "--set epochs=x", "--grid beta"};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "sweep --out %s/bad %s", tmp, bad[i]);
        CHECK_MSG(ib_test_run_cli(args, NULL) == 2, "%s", bad[i]);
    }
    CHECK_EQ_INT(ib_test_run_cli("sweep --grid beta=1,2", NULL), 2); /* no --out */
}

int main(void)
{
    setup_once();
    IB_RUN(test_grid_and_results);
    IB_RUN(test_plot);
    IB_RUN(test_partial_runs_resume);
    IB_RUN(test_user_errors);
    return ib_test_summary();
}
