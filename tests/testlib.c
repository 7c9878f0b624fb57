/*
 * testlib.c — the registry, asserts and shared helpers of the tests.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "test.h"
#include "core/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <ftw.h>
#include <sys/stat.h>
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

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

void ib_test_write_blobs(const char *dir, const char *prefix, int n, uint64_t seed, uint64_t stream, float on,
                         float off)
{
    char path[1400];
    snprintf(path, sizeof path, "%.1200s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%.1200s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(path, "wb");
    CHECK_MSG(fi && fl, "cannot write the blob set in %s", dir);
    if (!fi || !fl) {
        if (fi)
            fclose(fi);
        if (fl)
            fclose(fl);
        return;
    }
    put_be32(fi, 0x803);
    put_be32(fi, (uint32_t)n);
    put_be32(fi, 8);
    put_be32(fi, 8);
    put_be32(fl, 0x801);
    put_be32(fl, (uint32_t)n);
    float u[64 + 2];
    for (int i = 0; i < n; i++) {
        ib_rng_uniform(seed, stream, (uint64_t)i, u, 66);
        int k = (int)(u[64] * 4.0f) & 3;
        int r0 = (k / 2) * 4 + (int)(u[65] * 2), c0 = (k % 2) * 4 + 1;
        unsigned char img[64], lab = (unsigned char)k;
        for (int p = 0; p < 64; p++) {
            int r = p / 8, c = p % 8;
            bool lit = r >= r0 && r < r0 + 3 && c >= c0 && c < c0 + 3;
            img[p] = (unsigned char)((lit ? on : off) + 80.0f * u[p]);
        }
        fwrite(img, 1, 64, fi);
        fwrite(&lab, 1, 1, fl);
    }
    fclose(fi);
    fclose(fl);
}
