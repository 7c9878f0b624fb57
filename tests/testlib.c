/*
 * testlib.c — the registry, asserts and shared helpers of the tests.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

jmp_buf ib_test_jmp;
static int passed, failed;
static const char *current;
static int current_failed;

void ib_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  FAIL %s (%s:%d): ", current ? current : "?", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed = 1;
    longjmp(ib_test_jmp, 1);
}

void ib_test_run(const char *name, void (*fn)(void))
{
    current = name;
    current_failed = 0;
    if (setjmp(ib_test_jmp) == 0)
        fn();
    if (current_failed) {
        failed++;
        printf("FAIL %s\n", name);
    } else {
        passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
    current = NULL;
}

static char tmp_root[256];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- the op list's coverage: which ops this executable has checked, and
 * how ("fd" or "exact"); written out by ib_test_summary on request. ---- */
#define MAX_RECORDS 256
static struct {
    const char *kind, *op;
} records[MAX_RECORDS];
static int n_records;

static void record(const char *kind, const char *op)
{
    for (int k = 0; k < n_records; k++)
        if (strcmp(records[k].kind, kind) == 0 && strcmp(records[k].op, op) == 0)
            return;
    if (n_records < MAX_RECORDS)
        records[n_records].kind = kind, records[n_records++].op = op; /* op names are static strings */
}

static void write_records(void)
{
    const char *path = getenv("IBNET_OP_COVERAGE");
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "cannot append the op coverage to %s\n", path);
        return;
    }
    for (int k = 0; k < n_records; k++)
        fprintf(f, "%s %s\n", records[k].kind, records[k].op);
    fclose(f);
}

/* The nodes ib_test_weighted_sum adds (y * R and its sum): a check through
 * them is a check of the op under test, not of mul and sum. */
static bool weighted_sum_helper(const ib_node *n)
{
    if (!n->op)
        return false;
    if (strcmp(n->op->name, "mul") == 0)
        return n->in[1]->kind == IB__INPUT && strcmp(n->in[1]->name, "R") == 0;
    return strcmp(n->op->name, "sum") == 0 && n->numel == 1 && weighted_sum_helper(n->in[0]);
}

/* Record the ops whose backward a passed gradient check of loss w.r.t. wrt
 * went through: the op nodes on a path from wrt to loss along which
 * gradient flows (not through argmax, one_hot or stop_gradient). */
static void record_fd(const ib_graph *g, const ib_node *loss, const ib_node *wrt)
{
    char *from = calloc((size_t)g->n_nodes, 1), *to = calloc((size_t)g->n_nodes, 1);
    if (!from || !to) {
        free(from);
        free(to);
        return;
    }
    from[wrt->id] = 1;
    for (int i = wrt->id + 1; i < g->n_nodes; i++) {
        const ib_node *n = g->nodes[i];
        if (n->kind == IB__OP && !n->no_grad_op)
            for (int k = 0; k < n->n_in; k++)
                from[i] |= from[n->in[k]->id];
    }
    to[loss->id] = 1;
    for (int i = loss->id; i >= 0; i--) {
        const ib_node *n = g->nodes[i];
        if (to[i] && n->kind == IB__OP && !n->no_grad_op)
            for (int k = 0; k < n->n_in; k++)
                to[n->in[k]->id] = 1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ib_node *n = g->nodes[i];
        if (from[i] && to[i] && n->kind == IB__OP && !n->no_grad_op && !weighted_sum_helper(n))
            record("fd", n->op->name);
    }
    free(from);
    free(to);
}

void ib_test_exact_checked(const ib_node *n)
{
    if (n && n->op)
        record("exact", n->op->name);
}

int ib_test_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    write_records();
    /* Leave the temporary files of a failed run (or on request) for a look. */
    if (tmp_root[0] && !failed && !getenv("IBNET_KEEP_TMP"))
        nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (tmp_root[0])
        printf("temporary files kept in %s\n", tmp_root);
    return failed ? 1 : 0;
}

void ib_test_fill(float *x, int64_t n, float lo, float hi, uint64_t stream)
{
    ib_rng_uniform(1234, stream, 0, x, n);
    for (int64_t k = 0; k < n; k++)
        x[k] = lo + (hi - lo) * x[k];
}

void ib_test_gradcheck(ib_graph *g, ib_node *loss, int n_wrt, ib_node **wrt, float eps, double tol)
{
    for (int i = 0; i < n_wrt; i++) {
        double err = 0;
        int64_t where = 0;
        CHECK_OK(ib_graph_gradcheck(g, loss, wrt[i], eps, &err, &where));
        CHECK_MSG(err <= tol, "gradient w.r.t. '%s' is off: error %.3g at element %lld (tolerance %.3g)",
                  ib_node_name(wrt[i]), err, (long long)where, tol);
        record_fd(g, loss, wrt[i]);
    }
}

ib_node *ib_test_weighted_sum(ib_graph *g, ib_node *y)
{
    if (!y)
        return NULL;
    int64_t shape[4];
    int nd = ib_node_ndim(y);
    for (int d = 0; d < nd; d++)
        shape[d] = ib_node_dim(y, d);
    ib_node *r = ib_input(g, "R", nd, shape);
    return ib_sum(g, ib_mul(g, y, r), IB_ALL);
}

const char *ib_test_path(const char *rel, char *buf, size_t len)
{
    const char *root = getenv("IBNET_SOURCE_DIR");
    snprintf(buf, len, "%s/%s", root ? root : ".", rel);
    return buf;
}

const char *ib_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/ibnet-test-XXXXXX", base ? base : "/tmp");
        if (mkdtemp(dir))
            snprintf(tmp_root, sizeof tmp_root, "%s", dir);
        else
            snprintf(dir, sizeof dir, "%s", base ? base : "/tmp");
    }
    return dir;
}

void ib_test_compile_fill(ib_graph *g)
{
    CHECK_MSG(ib_graph_status(g) == IB_OK, "graph build failed: %s", ib_graph_error(g));
    CHECK_OK(ib_graph_compile(g));
    for (int i = 0; i < g->n_nodes; i++) {
        ib_node *n = g->nodes[i];
        if (n->kind != IB__INPUT)
            continue;
        if (n->dtype == IB_F32)
            ib_test_fill(n->value, n->numel, -1.0f, 1.0f, 777 + (uint64_t)i);
        else
            memset(n->value, 0, (size_t)n->numel * sizeof(int32_t));
    }
}

struct fixture_tensor {
    char name[128];
    int64_t numel;
    float *data;
};
struct ib_fixture {
    struct fixture_tensor *t;
    int n;
};

ib_fixture *ib_fixture_load(const char *file)
{
    char path[512], rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/%s", file);
    ib_test_path(rel, path, sizeof path);
    FILE *fp = fopen(path, "r");
    CHECK_MSG(fp != NULL, "cannot open fixture %s", path);
    ib_fixture *f = calloc(1, sizeof *f);
    char word[128];
    while (fscanf(fp, "%127s", word) == 1) {
        if (word[0] == '#') { /* comment to end of line */
            int c;
            while ((c = fgetc(fp)) != EOF && c != '\n')
                ;
            continue;
        }
        if (strcmp(word, "tensor") != 0) {
            fclose(fp);
            ib_test_fail(__FILE__, __LINE__, "fixture %s: expected 'tensor', got '%s'", path, word);
        }
        struct fixture_tensor t = {0};
        int ndim = 0;
        if (fscanf(fp, "%127s %d", t.name, &ndim) != 2 || ndim < 0 || ndim > 8) {
            fclose(fp);
            ib_test_fail(__FILE__, __LINE__, "fixture %s: bad tensor header", path);
        }
        t.numel = 1;
        for (int d = 0; d < ndim; d++) {
            long long dim;
            if (fscanf(fp, "%lld", &dim) != 1 || dim < 0) {
                fclose(fp);
                ib_test_fail(__FILE__, __LINE__, "fixture %s: bad shape of %s", path, t.name);
            }
            t.numel *= dim;
        }
        t.data = malloc((size_t)(t.numel ? t.numel : 1) * sizeof(float));
        for (int64_t k = 0; k < t.numel; k++)
            if (fscanf(fp, "%f", &t.data[k]) != 1) {
                fclose(fp);
                ib_test_fail(__FILE__, __LINE__, "fixture %s: %s is truncated at %lld", path, t.name, (long long)k);
            }
        f->t = realloc(f->t, (size_t)(f->n + 1) * sizeof *f->t);
        f->t[f->n++] = t;
    }
    fclose(fp);
    return f;
}

void ib_fixture_free(ib_fixture *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free(f->t[i].data);
    free(f->t);
    free(f);
}

const float *ib_fixture_get(ib_fixture *f, const char *name, int64_t *numel)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) {
            if (numel)
                *numel = f->t[i].numel;
            return f->t[i].data;
        }
    ib_test_fail(__FILE__, __LINE__, "fixture has no tensor '%s'", name);
    return NULL;
}

void ib_test_compare(const char *what, const float *got, const float *want, int64_t n, double rtol, double atol)
{
    for (int64_t k = 0; k < n; k++) {
        double a = got[k], b = want[k];
        double lim = rtol * fmax(fabs(a), fabs(b)) + atol;
        if (!(fabs(a - b) <= lim))
            ib_test_fail(__FILE__, __LINE__, "%s[%lld]: got %.9g, want %.9g (diff %.3g > %.3g)", what, (long long)k, a,
                         b, fabs(a - b), lim);
    }
}

/* Read what a command left in FILE into buf (NUL-terminated): all of it,
 * or its first line; nothing when the file is missing. */
static void read_capture(const char *file, char *buf, size_t len, bool first_line)
{
    if (!buf || !len)
        return;
    buf[0] = 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    if (first_line) {
        if (!fgets(buf, (int)len, f))
            buf[0] = 0;
    } else {
        buf[fread(buf, 1, len - 1, f)] = 0;
    }
    fclose(f);
}

int ib_test_run_cli(const char *args, const ib_test_cli *how)
{
    static const ib_test_cli none;
    if (!how)
        how = &none;
    const char *build = getenv("IBNET_BUILD_DIR");
    char outfile[600], errfile[600];
    snprintf(outfile, sizeof outfile, "%s/cli-stdout.txt", ib_test_tmpdir());
    snprintf(errfile, sizeof errfile, "%s/cli-stderr.txt", ib_test_tmpdir());
    /* the sizes of the parts, so no command is cut short */
    size_t len = strlen(args) + strlen(build ? build : "build") + 2 * sizeof outfile + 64;
    len += (how->env ? strlen(how->env) : 0) + (how->cwd ? strlen(how->cwd) : 0);
    char *cmd = malloc(len);
    CHECK_MSG(cmd != NULL, "out of memory");
    snprintf(cmd, len, "%s%s%s%s%s%s%s/ibnet %s > %s 2>%s", how->cwd ? "cd " : "", how->cwd ? how->cwd : "",
             how->cwd ? " && " : "", how->env ? "env " : "", how->env ? how->env : "", how->env ? " " : "",
             build ? build : "build", args, how->out ? outfile : "/dev/null",
             how->out && how->out_err ? "&1" : how->err ? errfile : "/dev/null");
    remove(outfile);
    remove(errfile);
    int st = system(cmd);
    free(cmd);
    read_capture(outfile, how->out, how->out_len, false);
    read_capture(errfile, how->err, how->err_len, !how->all_err);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *ib_test_write_text(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", ib_test_tmpdir(), name);
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    fputs(text, f);
    CHECK_MSG(fclose(f) == 0, "cannot write %s", path);
    return path;
}

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

void ib_test_write_idx(const char *dir, const char *prefix, int64_t n, int h, int w, ib_test_idx_pixels pixels,
                       void *ctx)
{
    char path[1400];
    snprintf(path, sizeof path, "%.1200s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%.1200s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(path, "wb");
    unsigned char *img = malloc((size_t)h * (size_t)w);
    if (!fi || !fl || !img) {
        if (fi)
            fclose(fi);
        if (fl)
            fclose(fl);
        free(img);
        ib_test_fail(__FILE__, __LINE__, "cannot write the IDX set %s in %s", prefix, dir);
    }
    put_be32(fi, 0x803);
    put_be32(fi, (uint32_t)n);
    put_be32(fi, (uint32_t)h);
    put_be32(fi, (uint32_t)w);
    put_be32(fl, 0x801);
    put_be32(fl, (uint32_t)n);
    for (int64_t i = 0; i < n; i++) {
        memset(img, 0, (size_t)h * (size_t)w);
        unsigned char lab = (unsigned char)pixels(ctx, i, img);
        fwrite(img, 1, (size_t)h * (size_t)w, fi);
        fwrite(&lab, 1, 1, fl);
    }
    free(img);
    bool ok = !ferror(fi) && !ferror(fl);
    ok &= fclose(fi) == 0;
    ok &= fclose(fl) == 0;
    CHECK_MSG(ok, "cannot write the IDX set %s in %s", prefix, dir);
}

struct blobs {
    uint64_t seed, stream;
    float on, off;
};

/* Example i of the blob set: class k's 3x3 blob in quadrant k on the
 * background, plus noise, all from (seed, stream, i). */
static int blob_pixels(void *ctx, int64_t i, uint8_t *img)
{
    const struct blobs *b = ctx;
    float u[64 + 2];
    ib_rng_uniform(b->seed, b->stream, (uint64_t)i, u, 66);
    int k = (int)(u[64] * 4.0f) & 3;
    int r0 = (k / 2) * 4 + (int)(u[65] * 2), c0 = (k % 2) * 4 + 1;
    for (int p = 0; p < 64; p++) {
        int r = p / 8, c = p % 8;
        bool lit = r >= r0 && r < r0 + 3 && c >= c0 && c < c0 + 3;
        img[p] = (unsigned char)((lit ? b->on : b->off) + 80.0f * u[p]);
    }
    return k;
}

void ib_test_write_blobs(const char *dir, const char *prefix, int n, uint64_t seed, uint64_t stream, float on,
                         float off)
{
    struct blobs b = {seed, stream, on, off};
    ib_test_write_idx(dir, prefix, n, 8, 8, blob_pixels, &b);
}

const char *ib_test_blob_dir(const char *name, int n_train, int n_test, uint64_t seed, float on, float off, char *dir,
                             size_t len)
{
    snprintf(dir, len, "%s/%s", ib_test_tmpdir(), name);
    mkdir(dir, 0777);
    ib_test_write_blobs(dir, "train", n_train, seed, 1, on, off);
    ib_test_write_blobs(dir, "t10k", n_test, seed, 2, on, off);
    return dir;
}

ib_train_config ib_test_train_config(const char *model, const char *data_dir, const char *run)
{
    ib_train_config c = ib_train_config_default();
    snprintf(c.model, sizeof c.model, "%.900s", model);
    snprintf(c.dataset, sizeof c.dataset, "idx:%.1000s", data_dir);
    snprintf(c.out_dir, sizeof c.out_dir, "%.900s/%.100s", ib_test_tmpdir(), run);
    return c;
}

cJSON *ib_test_read_json(const char *dir, const char *file)
{
    char path[1400];
    snprintf(path, sizeof path, "%.1200s/%.150s", dir, file);
    char *text = ib__read_file(path, 1 << 26, NULL);
    CHECK_MSG(text != NULL, "cannot read %s", path);
    cJSON *o = cJSON_Parse(text);
    if (!o) {
        free(text);
        ib_test_fail(__FILE__, __LINE__, "%s is not JSON", path);
    }
    free(text);
    return o;
}

ib_params *ib_test_run_weights(const char *model, const char *run_dir)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model, &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){1, 1, 8, 8});
    ib_model_out mo;
    CHECK_OK(ib_model_build(m, g, x, NULL, &mo));
    char path[1200];
    snprintf(path, sizeof path, "%.1100s/last.safetensors", run_dir);
    ib_optim_config oc = ib_optim_defaults(IB_OPTIM_ADAM);
    ib_optim *o = ib_optim_new(p, &oc);
    ib_ema *e = ib_ema_new(p, 0.9f, true);
    CHECK_OK(ib_checkpoint_load(path, p, o, e, NULL));
    ib_optim_free(o);
    ib_ema_free(e);
    ib_graph_free(g);
    ib_model_free(m);
    return p;
}

float *ib_test_checkpoint_weights(const char *dir, const char *model, int c, int h, int w, bool view2, int64_t *n)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load(model, &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_model_out mo;
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){1, c, h, w});
    CHECK_OK(ib_model_build(m, g, x, NULL, &mo));
    if (view2)
        CHECK_OK(ib_model_build_scoped(m, g, "view2", x, NULL, &mo));
    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    CHECK_OK(ib_checkpoint_load_partial(path, p, NULL, NULL));
    *n = ib_params_total(p);
    float *out = malloc(sizeof(float) * (size_t)*n);
    CHECK(out != NULL);
    memcpy(out, ib_params_values(p), sizeof(float) * (size_t)*n);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
    return out;
}

uint64_t ib_test_tensor_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f)
        return 0;
    unsigned char len8[8];
    CHECK(fread(len8, 1, 8, f) == 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    fseek(f, (long)(8 + hlen), SEEK_SET);
    uint64_t h = 1469598103934665603ull;
    int c;
    while ((c = getc(f)) != EOF)
        h = (h ^ (uint64_t)c) * 1099511628211ull;
    fclose(f);
    return h;
}
