/*
 * test_plot.c — the charts (src/plot/chart.c) and `ibnet plot`: PNG and
 * SVG files with valid headers and the asked size, the information plane
 * from an info.jsonl, curves from a metrics.jsonl, a sweep over run
 * directories (against a setting, or a summary figure against another,
 * coloured by a setting), the reliability diagram of ibnet eval --json
 * outputs, and bad input (a missing file, an empty or broken
 * JSON-lines file, an unknown kind or key) answered with exit code 2.
 * In a build without cairo nothing here can run: the test exits 77, which
 * CTest reports as not run (SKIP_RETURN_CODE), never as passed.
 */
#include "test.h"

#include <sys/stat.h>

static char dir[512];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The PNG signature and the IHDR's width and height. */
static void check_png(const char *path, int width, int height)
{
    unsigned char h[24] = {0};
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "no %s", path);
    if (!f)
        return;
    CHECK_EQ_INT((int64_t)fread(h, 1, 24, f), 24);
    fclose(f);
    CHECK(memcmp(h, "\x89PNG\r\n\x1a\n", 8) == 0);
    CHECK(memcmp(h + 12, "IHDR", 4) == 0);
    CHECK_EQ_INT(((int64_t)h[16] << 24) | (h[17] << 16) | (h[18] << 8) | h[19], width);
    CHECK_EQ_INT(((int64_t)h[20] << 24) | (h[21] << 16) | (h[22] << 8) | h[23], height);
    CHECK_MSG(file_size(path) > 2000, "%s is only %ld bytes: nothing drawn?", path, file_size(path));
}

static void check_svg(const char *path, int width)
{
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "no %s", path);
    if (!f)
        return;
    char buf[1024] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CHECK(strncmp(buf, "<?xml", 5) == 0);
    CHECK(strstr(buf, "<svg") != NULL);
    char w[32];
    snprintf(w, sizeof w, "width=\"%d", width);
    CHECK_MSG(strstr(buf, w) != NULL, "%s: no %s in %.200s", path, w, buf);
    CHECK(file_size(path) > 2000);
}

static void test_chart_files(void)
{
    ib_chart *c = ib_chart_new("a test", "x", "y");
    CHECK(c != NULL);
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {0.5, 1.5, NAN, 2, 1}, t[5] = {0, 0.25, 0.5, 0.75, 1};
    CHECK_OK(ib_chart_add(c, "first", x, y, t, 5, IB_CHART_LINES | IB_CHART_POINTS));
    CHECK_OK(ib_chart_add(c, "second", y, x, NULL, 5, IB_CHART_POINTS));
    ib_chart_shade_label(c, "epoch", 1, 5);
    char png[1200], svg[1200], bad[1200];
    snprintf(png, sizeof png, "%s/chart.png", dir);
    snprintf(svg, sizeof svg, "%s/chart.svg", dir);
    snprintf(bad, sizeof bad, "%s/chart.jpg", dir);
    CHECK_OK(ib_chart_save(c, png, 640, 480));
    check_png(png, 640, 480);
    CHECK_OK(ib_chart_save(c, svg, 700, 500));
    check_svg(svg, 700);
    CHECK_EQ_INT(ib_chart_save(c, bad, 640, 480), IB_ERR_ARG);
    CHECK_EQ_INT(ib_chart_save(c, png, 10, 480), IB_ERR_ARG);
    ib_chart_log_x(c, true);
    CHECK_OK(ib_chart_save(c, png, 640, 480));
    ib_chart_free(c);
    /* values equal up to their last bits (an estimate at its ceiling in
     * every epoch: ln 1000 in bits, rounded two ways) are drawn as one
     * value; their range once gave a tick step below the spacing of
     * doubles, and the tick loop never ended */
    c = ib_chart_new("at the ceiling", "x", "y");
    double cx[3] = {9.965784284662087, 9.965784284662089, 9.965784284662087},
           cy[3] = {3.309186352182691, 3.3091863521826906, 3.309186352182691};
    CHECK_OK(ib_chart_add(c, "flat", cx, cy, t, 3, IB_CHART_LINES | IB_CHART_POINTS));
    CHECK_OK(ib_chart_save(c, png, 640, 480));
    check_png(png, 640, 480);
    ib_chart_free(c);
    /* an empty chart is still a picture (axes only) */
    c = ib_chart_new(NULL, NULL, NULL);
    CHECK_OK(ib_chart_save(c, png, 320, 240));
    check_png(png, 320, 240);
    ib_chart_free(c);
}

static const char *info_lines =
    "{\"epoch\":1,\"layers\":[{\"layer\":\"fc1\",\"ixt\":{\"bits\":9.5},\"ity\":{\"bits\":1.2}},"
    "{\"layer\":\"fc2\",\"ixt\":{\"bits\":8.0},\"ity\":{\"bits\":1.0}}]}\n"
    "{\"epoch\":2,\"layers\":[{\"layer\":\"fc1\",\"ixt\":{\"bits\":9.8},\"ity\":{\"bits\":2.2}},"
    "{\"layer\":\"fc2\",\"ixt\":{\"bits\":8.7},\"ity\":{\"bits\":2.0}}]}\n"
    "{\"epoch\":3,\"layers\":[{\"layer\":\"fc1\",\"ixt\":{\"bits\":9.7},\"ity\":{\"bits\":2.9}},"
    "{\"layer\":\"fc2\",\"ixt\":{\"bits\":8.1},\"ity\":{\"bits\":2.8}}]}\n";

static void test_plot_command(void)
{
    char run[600], path[2048], args[4000], err[512];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    snprintf(run, sizeof run, "%s/run", dir);
    mkdir(run, 0777);
    snprintf(path, sizeof path, "%s/info.jsonl", run);
    write_file(path, info_lines);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    write_file(path, "{\"epoch\":1,\"train_loss\":1.5,\"test_nll_avg\":1.2,\"train_kl\":[3,4]}\n"
                     "{\"epoch\":2,\"train_loss\":0.9,\"test_nll_avg\":0.8,\"train_kl\":[2,3]}\n");

    snprintf(args, sizeof args, "plot plane %s --out %s/plane.png,%s/plane.svg", run, dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/plane.png", dir);
    check_png(path, 900, 600);
    snprintf(path, sizeof path, "%s/plane.svg", dir);
    check_svg(path, 900);
    snprintf(args, sizeof args, "plot plane %s/info.jsonl --layers fc2 --width 500 --height 400 --out %s/one.png", run, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/one.png", dir);
    check_png(path, 500, 400);

    snprintf(args, sizeof args, "plot curves %s --keys train_loss,train_kl --out %s/curves.svg", run, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/curves.svg", dir);
    check_svg(path, 900);

    /* a beta sweep of three runs */
    char runs[3][600];
    const double betas[3] = {1e-5, 1e-3, 1e-1};
    for (int i = 0; i < 3; i++) {
        snprintf(runs[i], sizeof runs[i], "%s/beta%d", dir, i);
        mkdir(runs[i], 0777);
        char text[256];
        snprintf(path, sizeof path, "%s/config.json", runs[i]);
        snprintf(text, sizeof text, "{\"beta\": %g}", betas[i]);
        write_file(path, text);
        snprintf(path, sizeof path, "%s/summary.json", runs[i]);
        snprintf(text, sizeof text, "{\"test_error_avg\": %g, \"test_ixz_upper_bits\": [%g], \"test_izy_lower_bits\": %g}",
                 0.02 + 0.01 * i, 200.0 / (1 + 10 * i), 3.3 - 0.5 * i);
        write_file(path, text);
    }
    snprintf(args, sizeof args, "plot sweep %s %s %s --out %s/sweep.png", runs[2], runs[0], runs[1], dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/sweep.png", dir);
    check_png(path, 900, 600);
    /* the sweep's information plane: x a figure of summary.json (a
     * per-bottleneck array, summed), points coloured by beta */
    snprintf(args, sizeof args,
             "plot sweep %s %s %s --x test_ixz_upper_bits --y test_izy_lower_bits --shade beta --out %s/plane.png",
             runs[0], runs[1], runs[2], dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/plane.png", dir);
    check_png(path, 900, 600);
    /* a shade or an x that no file has */
    snprintf(args, sizeof args, "plot sweep %s %s --shade nothing --out %s/x.png", runs[0], runs[1], dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "'nothing' (--shade)") != NULL, "%s", err);
    snprintf(args, sizeof args, "plot sweep %s %s --x nothing --out %s/x.png", runs[0], runs[1], dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "'nothing' in config.json or summary.json") != NULL, "%s", err);
    snprintf(path, sizeof path, "%s/x.png", dir);
    CHECK_MSG(file_size(path) < 0, "a refused plot wrote %s", path);
}

static void test_plot_bad_input(void)
{
    char path[1200], args[4000], err[512];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    snprintf(args, sizeof args, "plot plane %s/nowhere --out %s/x.png", dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "nowhere") != NULL, "%s", err);
    snprintf(path, sizeof path, "%s/empty.jsonl", dir);
    write_file(path, "");
    snprintf(args, sizeof args, "plot plane %s --out %s/x.png", path, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "no line") != NULL, "%s", err);
    snprintf(args, sizeof args, "plot curves %s --out %s/x.png", path, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    snprintf(path, sizeof path, "%s/broken.jsonl", dir);
    write_file(path, "{\"epoch\":1,\"layers\":[]}\nnot json\n");
    snprintf(args, sizeof args, "plot plane %s --out %s/x.png", path, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "line 2") != NULL, "%s", err);
    snprintf(args, sizeof args, "plot curves %s/run --keys nothing --out %s/x.png", dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "'nothing'") != NULL, "%s", err);
    snprintf(args, sizeof args, "plot pie %s/run --out %s/x.png", dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    snprintf(args, sizeof args, "plot plane %s/run", dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    snprintf(args, sizeof args, "plot plane %s/run --out %s/x.gif", dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    snprintf(args, sizeof args, "plot sweep %s/run --out %s/x.png", dir, dir); /* no config.json */
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    snprintf(path, sizeof path, "%s/x.png", dir);
    CHECK_MSG(file_size(path) < 0, "a refused plot wrote %s", path);
}

/* An `ibnet eval --json`-shaped object with 15 reliability bins: bins
 * 8..14 filled (conf 0.55 + 0.03 b, acc shift below), the mean path's
 * shifted by mshift. */
static void write_eval(const char *path, double shift, double mshift, bool malformed)
{
    char text[8192];
    int k = snprintf(text, sizeof text, "{\"checkpoint\": \"x\", \"n\": 100, \"ece\": 0.05, \"mean_path_ece\": 0.07");
    for (int m = 0; m < 2; m++) {
        k += snprintf(text + k, sizeof text - (size_t)k, ", \"%sreliability\": [", m ? "mean_path_" : "");
        for (int b = 0; b < 15; b++) {
            double conf = b >= 8 ? 0.55 + 0.03 * b : 0, acc = b >= 8 ? conf - (m ? mshift : shift) : 0;
            k += snprintf(text + k, sizeof text - (size_t)k,
                          "%s{\"lo\": %g, \"hi\": %g, \"count\": %d, \"conf\": %g, \"acc\": %g}", b ? ", " : "",
                          b / 15.0, (b + 1) / 15.0, b >= 8 ? 5 * b : 0, conf, malformed && b == 9 ? 7.0 : acc);
        }
        k += snprintf(text + k, sizeof text - (size_t)k, "]");
    }
    snprintf(text + k, sizeof text - (size_t)k, "}\n");
    write_file(path, text);
}

/* `ibnet plot reliability EVAL.json ..`: the diagram of one or several
 * evaluations as PNG/SVG; a file without bins or with bins out of range
 * exits 2 and writes nothing. */
static void test_plot_reliability(void)
{
    char a[1200], b[1200], args[4000], err[512], path[1200];
    ib_test_cli to_err = {.err = err, .err_len = sizeof err};
    snprintf(a, sizeof a, "%s/eval-a.json", dir);
    snprintf(b, sizeof b, "%s/eval-b.json", dir);
    write_eval(a, 0.05, 0.05, false); /* a deterministic network: the mean path is the average */
    write_eval(b, 0.02, 0.08, false);
    snprintf(args, sizeof args, "plot reliability %s --out %s/rel.png,%s/rel.svg", a, dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/rel.png", dir);
    check_png(path, 900, 600);
    snprintf(path, sizeof path, "%s/rel.svg", dir);
    check_svg(path, 900);
    snprintf(args, sizeof args, "plot reliability %s %s --mean-path --width 640 --height 640 --out %s/rel2.png", a, b, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 0);
    snprintf(path, sizeof path, "%s/rel2.png", dir);
    check_png(path, 640, 640);
    /* bad input: exit 2, named, nothing written */
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/eval-bad.json", dir);
    write_eval(bad, 0.05, 0.05, true);
    snprintf(args, sizeof args, "plot reliability %s --out %s/relx.png", bad, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "malformed reliability bins") != NULL, "%s", err);
    snprintf(bad, sizeof bad, "%s/eval-none.json", dir);
    write_file(bad, "{\"n\": 3}\n");
    snprintf(args, sizeof args, "plot reliability %s --out %s/relx.png", bad, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "no reliability bins") != NULL, "%s", err);
    snprintf(args, sizeof args, "plot reliability %s/missing.json --out %s/relx.png", dir, dir);
    CHECK_EQ_INT(ib_test_run_cli(args, &to_err), 2);
    CHECK_MSG(strstr(err, "cannot read") != NULL, "%s", err);
    snprintf(path, sizeof path, "%s/relx.png", dir);
    CHECK_MSG(file_size(path) < 0, "a refused plot wrote %s", path);
}

/* cairo is loaded at the first chart (src/plot/cairo_api.c): where the
 * library cannot be loaded, the command says why and exits 2, and a sweep
 * still writes its tables. */
static void test_plot_without_cairo_library(void)
{
    char run[600], path[1200], args[2600], err[512];
    snprintf(run, sizeof run, "%s/run", dir); /* test_plot_command's */
    ib_test_cli how = {.env = "IBNET_CAIRO_LIBRARY=/nonexistent/libcairo.so.2", .err = err, .err_len = sizeof err};
    snprintf(path, sizeof path, "%s/none.png", dir);
    snprintf(args, sizeof args, "plot plane %s --out %s", run, path);
    CHECK_EQ_INT(ib_test_run_cli(args, &how), 2);
    CHECK_MSG(strstr(err, "cairo cannot be loaded") && strstr(err, "/nonexistent/libcairo.so.2"), "stderr: %s", err);
    CHECK_EQ_INT(file_size(path), -1);
}

int main(void)
{
    if (!ib_chart_available()) {
        printf("not run: this build has no cairo (install libcairo2-dev and rebuild)\n");
        return 77;
    }
    snprintf(dir, sizeof dir, "%s", ib_test_tmpdir());
    IB_RUN(test_chart_files);
    IB_RUN(test_plot_command);
    IB_RUN(test_plot_bad_input);
    IB_RUN(test_plot_reliability);
    IB_RUN(test_plot_without_cairo_library);
    return ib_test_summary();
}
