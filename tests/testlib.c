/*
 * testlib.c — the registry, asserts and shared helpers of the tests.
 */
#include "test.h"
#include "core/internal.h"

#include <stdarg.h>
#include <stdlib.h>
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

int ib_test_summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
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
        if (!mkdtemp(dir))
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
