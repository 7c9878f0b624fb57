/*
 * test_grad_binary_reduce.c — finite-difference gradient checks (and exact
 * forward values) of the binary ops add, sub, mul and div, with and without
 * broadcasting, of add_relu, and of the reductions sum, mean, logsumexp and logmeanexp
 * along each axis and over all elements.
 *
 * Tolerances: central differences with h = 1e-2 on float32 losses of a few
 * dozen O(1) terms; the truncation error is h^2/6 |f'''| (at most 6 for a/b
 * with b in [1, 2], 1 for exp-sums), the rounding error ~1e-7 * |L| / h, both
 * under 1e-3 of the largest gradient element; 2e-3 as in the other gradient
 * tests.
 */
#include "test.h"

#include <math.h>

#define TOL 2e-3

enum { ADD, SUB, MUL, DIV, N_BINARY };
static const char *binary_name[N_BINARY] = {"add", "sub", "mul", "div"};

static ib_node *binary(ib_graph *g, int op, ib_node *a, ib_node *b)
{
    switch (op) {
    case ADD: return ib_add(g, a, b);
    case SUB: return ib_sub(g, a, b);
    case MUL: return ib_mul(g, a, b);
    default: return ib_div(g, a, b);
    }
}

static float binary_ref(int op, float a, float b)
{
    switch (op) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    default: return a / b;
    }
}

/* A shape aligned from the right into 4 dims (1 in front). */
static void pad4(int nd, const int64_t *s, int64_t out[4])
{
    for (int d = 0; d < 4; d++)
        out[d] = d < 4 - nd ? 1 : s[d - (4 - nd)];
}

typedef struct bcase {
    int na, nb;
    int64_t sa[4], sb[4];
} bcase;

/* y = a op b for each op on one pair of shapes: the output's values against
 * the broadcast rule written out here, then the gradient of a weighted sum
 * of all four w.r.t. both operands (b in [1, 2] so that a/b is smooth). */
static void check_binary(bcase c)
{
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *a = ib_node_set_requires_grad(ib_input(g, "a", c.na, c.sa), true);
    ib_node *b = ib_node_set_requires_grad(ib_input(g, "b", c.nb, c.sb), true);
    ib_node *y[N_BINARY], *loss = NULL;
    for (int op = 0; op < N_BINARY; op++) {
        y[op] = binary(g, op, a, b);
        ib_node *t = ib_test_weighted_sum(g, y[op]);
        loss = loss ? ib_add(g, loss, t) : t;
    }
    ib_test_compile_fill(g);
    float *bv = ib_node_data(b);
    for (int64_t k = 0; k < ib_node_numel(b); k++)
        bv[k] = 1.5f + 0.5f * bv[k];
    CHECK_OK(ib_graph_forward(g));

    int64_t A[4], B[4], Y[4];
    pad4(c.na, c.sa, A);
    pad4(c.nb, c.sb, B);
    for (int d = 0; d < 4; d++)
        Y[d] = A[d] > B[d] ? A[d] : B[d];
    const float *av = ib_node_data(a);
    for (int op = 0; op < N_BINARY; op++) {
        CHECK_EQ_INT(ib_node_numel(y[op]), Y[0] * Y[1] * Y[2] * Y[3]);
        const float *yv = ib_node_data(y[op]);
        int64_t k = 0;
        for (int64_t i0 = 0; i0 < Y[0]; i0++)
            for (int64_t i1 = 0; i1 < Y[1]; i1++)
                for (int64_t i2 = 0; i2 < Y[2]; i2++)
                    for (int64_t i3 = 0; i3 < Y[3]; i3++, k++) {
                        int64_t ia = (((A[0] > 1 ? i0 : 0) * A[1] + (A[1] > 1 ? i1 : 0)) * A[2] +
                                      (A[2] > 1 ? i2 : 0)) * A[3] + (A[3] > 1 ? i3 : 0);
                        int64_t ib = (((B[0] > 1 ? i0 : 0) * B[1] + (B[1] > 1 ? i1 : 0)) * B[2] +
                                      (B[2] > 1 ? i2 : 0)) * B[3] + (B[3] > 1 ? i3 : 0);
                        CHECK_MSG(yv[k] == binary_ref(op, av[ia], bv[ib]), "%s: element %lld is %.9g, want %.9g",
                                  binary_name[op], (long long)k, (double)yv[k],
                                  (double)binary_ref(op, av[ia], bv[ib]));
                    }
    }
    ib_test_gradcheck(g, loss, 2, (ib_node *[]){a, b}, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_binary_same_shape(void)
{
    check_binary((bcase){2, 2, {3, 5}, {3, 5}});
    check_binary((bcase){4, 4, {2, 1, 3, 2}, {2, 1, 3, 2}});
}

/* add_relu: finite differences with |a + b| >= 0.1 everywhere (away from
 * the kink), a + a included; and the same bits as relu(add) in values and
 * both gradients. */
static void test_grad_add_relu(void)
{
    for (int twice = 0; twice < 2; twice++) {
        ib_params *p = ib_params_new(3);
        ib_graph *g = ib_graph_new(p);
        ib_node *a = ib_node_set_requires_grad(ib_input(g, "a", 4, (int64_t[]){2, 3, 2, 2}), true);
        ib_node *b = twice ? a : ib_node_set_requires_grad(ib_input(g, "b", 4, (int64_t[]){2, 3, 2, 2}), true);
        ib_node *y = ib_add_relu(g, a, b), *ref = ib_relu(g, ib_add(g, a, b));
        ib_node *wy = ib_input(g, "wy", 4, (int64_t[]){2, 3, 2, 2});
        ib_node *loss = ib_sum(g, ib_mul(g, y, wy), IB_ALL), *loss_ref = ib_sum(g, ib_mul(g, ref, wy), IB_ALL);
        ib_test_compile_fill(g);
        float *av = ib_node_data(a), *bv = ib_node_data(b);
        for (int k = 0; k < 24; k++)
            if (fabsf(av[k] + bv[k]) < 0.1f)
                av[k] += 0.3f;
        ib_test_gradcheck(g, loss, twice ? 1 : 2, (ib_node *[]){a, b}, 1e-2f, TOL);
        CHECK_OK(ib_graph_forward(g));
        CHECK(memcmp(ib_node_data(y), ib_node_data(ref), 24 * sizeof(float)) == 0);
        float got[2][24];
        for (int r = 0; r < 2; r++) {
            ib_params_zero_grad(p);
            CHECK_OK(ib_graph_backward(g, r ? loss_ref : loss));
            memcpy(got[r], ib_node_grad(a), sizeof got[r]);
            if (!twice)
                CHECK(memcmp(ib_node_grad(a), ib_node_grad(b), sizeof got[r]) == 0);
        }
        CHECK(memcmp(got[0], got[1], sizeof got[0]) == 0);
        ib_graph_free(g);
        ib_params_free(p);
    }
}

/* Broadcast on one side, on both sides, across ranks and to a single
 * element: the gradient of a broadcast operand is the sum over the dims it
 * was repeated along. */
static void test_grad_binary_broadcast(void)
{
    check_binary((bcase){4, 4, {2, 3, 2, 2}, {1, 3, 1, 1}}); /* per-channel, as a conv bias */
    check_binary((bcase){4, 4, {1, 3, 1, 1}, {2, 3, 2, 2}}); /* the same with the operands swapped */
    check_binary((bcase){2, 2, {3, 1}, {1, 4}});             /* both broadcast: an outer product */
    check_binary((bcase){3, 1, {2, 3, 4}, {4}});             /* lower rank, aligned from the right */
    check_binary((bcase){1, 3, {3}, {2, 1, 3}});             /* lower rank first */
    check_binary((bcase){2, 1, {3, 4}, {1}});                /* one element against a matrix */
}

/* ---------------------------------------------------------------- reductions */

enum { SUM, MEAN, LSE, LME, N_REDUCE };
static const char *reduce_name[N_REDUCE] = {"sum", "mean", "logsumexp", "logmeanexp"};

static ib_node *reduce(ib_graph *g, int kind, ib_node *x, int axis)
{
    switch (kind) {
    case SUM: return ib_sum(g, x, axis);
    case MEAN: return ib_mean(g, x, axis);
    case LSE: return ib_logsumexp(g, x, axis);
    default: return ib_logmeanexp(g, x, axis);
    }
}

/* The reduction of x (outer, len, inner) at (o, i), in double. */
static double reduce_ref(int kind, const float *x, int64_t len, int64_t inner, int64_t o, int64_t i)
{
    const float *p = x + o * len * inner + i;
    double s = 0, m = -INFINITY;
    for (int64_t k = 0; k < len; k++)
        m = fmax(m, p[k * inner]);
    for (int64_t k = 0; k < len; k++)
        s += kind <= MEAN ? (double)p[k * inner] : exp((double)p[k * inner] - m);
    switch (kind) {
    case SUM: return s;
    case MEAN: return s / (double)len;
    case LSE: return m + log(s);
    default: return m + log(s) - log((double)len);
    }
}

/* Every reduction along `axis` of x (2, 3, 4) (IB_ALL: all 24 elements),
 * values against double and gradients by finite differences.  x spans
 * [-3, 3] so that the exp-sums are not dominated by one element. */
static void check_reduce(int axis)
{
    const int64_t shape[3] = {2, 3, 4};
    ib_params *p = ib_params_new(3);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 3, shape), true);
    ib_node *y[N_REDUCE], *loss = NULL;
    for (int r = 0; r < N_REDUCE; r++) {
        y[r] = reduce(g, r, x, axis);
        /* a scalar output gets a fixed weight of its own through square, so
         * the check does not reduce to the weighted-sum helper's */
        ib_node *t = ib_test_weighted_sum(g, axis == IB_ALL ? ib_square(g, y[r]) : y[r]);
        loss = loss ? ib_add(g, loss, t) : t;
    }
    ib_test_compile_fill(g);
    float *xv = ib_node_data(x);
    for (int k = 0; k < 24; k++)
        xv[k] *= 3.0f;
    CHECK_OK(ib_graph_forward(g));
    int a = axis == IB_ALL ? -1 : axis < 0 ? axis + 3 : axis;
    int64_t outer = 1, len = 24, inner = 1;
    if (a >= 0) {
        for (int d = 0; d < a; d++)
            outer *= shape[d];
        for (int d = a + 1; d < 3; d++)
            inner *= shape[d];
        len = shape[a];
    }
    for (int r = 0; r < N_REDUCE; r++) {
        CHECK_EQ_INT(ib_node_ndim(y[r]), a < 0 ? 0 : 2);
        CHECK_EQ_INT(ib_node_numel(y[r]), outer * inner);
        const float *yv = ib_node_data(y[r]);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                double want = reduce_ref(r, xv, len, inner, o, i);
                CHECK_MSG(fabs(yv[o * inner + i] - want) <= 1e-6 * fmax(1.0, fabs(want)),
                          "%s axis %d: element (%lld, %lld) is %.9g, want %.9g", reduce_name[r], axis, (long long)o,
                          (long long)i, (double)yv[o * inner + i], want);
            }
    }
    ib_test_gradcheck(g, loss, 1, &x, 1e-2f, TOL);
    ib_graph_free(g);
    ib_params_free(p);
}

static void test_grad_reduce_axis0(void) { check_reduce(0); }
static void test_grad_reduce_axis1(void) { check_reduce(1); }
static void test_grad_reduce_last_axis(void) { check_reduce(-1); }
static void test_grad_reduce_all(void) { check_reduce(IB_ALL); }

int main(void)
{
    IB_RUN(test_grad_binary_same_shape);
    IB_RUN(test_grad_binary_broadcast);
    IB_RUN(test_grad_add_relu);
    IB_RUN(test_grad_reduce_axis0);
    IB_RUN(test_grad_reduce_axis1);
    IB_RUN(test_grad_reduce_last_axis);
    IB_RUN(test_grad_reduce_all);
    return ib_test_summary();
}
