/*
 * test_vmath.c — the vectorised softplus loops of src/kernels/vmath.c
 * against the exact value (computed in double) over the whole input
 * range, including the far left tail the loop hands to libm, NaN, and
 * lengths that are not a multiple of the vector width (the partial block
 * must give the same bits as a full one, so results do not depend on the
 * thread count).
 */
#include "kernels/vmath.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

/* 4 ulp of float32: the polynomials' truncation is below 2^-26 relative,
 * the rest is rounding in about a dozen float operations. */
#define ULP4 (4.0 * 1.1920929e-7)

static double softplus_exact(double t) { return t > 30 ? t + log1p(exp(-t)) : log1p(exp(t)); }

/* Relative error, or absolute in units of the smallest subnormal where
 * the exact value is subnormal (those carry fewer bits). */
static bool close_enough(float got, double want)
{
    if (want < 1.1754944e-38)
        return fabs((double)got - want) <= 1.5e-45;
    return fabs((double)got - want) / fabs(want) < ULP4;
}

static void test_softplus_forward_range(void)
{
    enum { N = 60000 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    for (int k = 0; k < N; k++)
        x[k] = -120.0f + 230.0f * (float)k / N; /* t = x - 5 in [-125, 105] */
    ib__softplus_forward(x, -5.0f, y, N);
    /* The op adds the shift in float, as before (that rounding is the
     * input's, not the kernel's): the reference starts from the same t. */
    int bad = 0, first = 0;
    for (int k = 0; k < N; k++) {
        float t = x[k] + -5.0f;
        if (!close_enough(y[k], softplus_exact((double)t)) && bad++ == 0)
            first = k;
    }
    float tf = x[first] + -5.0f;
    CHECK_MSG(bad == 0, "%d of %d wrong, first softplus(%g) = %g, want %g", bad, N, (double)tf, (double)y[first],
              softplus_exact((double)tf));
    free(x);
    free(y);
}

static void test_softplus_backward_range(void)
{
    enum { N = 50001 };
    float *x = malloc(N * sizeof(float)), *dy = malloc(N * sizeof(float)), *dx = malloc(N * sizeof(float));
    for (int k = 0; k < N; k++) {
        x[k] = -80.0f + 160.0f * (float)k / N;
        dy[k] = 0.5f + (float)(k % 7);
        dx[k] = 0.25f;
    }
    ib__softplus_backward(x, 1.0f, dy, dx, N);
    double worst = 0;
    for (int k = 0; k < N; k++) {
        float t = x[k] + 1.0f;
        double want = 0.25 + (double)dy[k] / (1.0 + exp(-(double)t));
        double e = fabs((double)dx[k] - want) / want;
        worst = e > worst ? e : worst;
    }
    CHECK_MSG(worst < ULP4, "softplus backward: worst relative error %g", worst);
    free(x);
    free(dy);
    free(dx);
}

/* Every length 1..40 and every start: element k's result is the same
 * bits as in one long call; NaN and infinities propagate as libm's would. */
static void test_partial_blocks_and_specials(void)
{
    float x[48], ref[48], y[48];
    for (int k = 0; k < 48; k++)
        x[k] = 0.37f * (float)k - 9.0f;
    x[5] = NAN;
    x[6] = INFINITY;
    x[7] = -INFINITY;
    ib__softplus_forward(x, 0.0f, ref, 48);
    CHECK(isnan(ref[5]));
    CHECK(ref[6] == INFINITY);
    CHECK(ref[7] == 0.0f);
    for (int start = 0; start < 8; start++)
        for (int len = 1; len <= 40; len++) {
            ib__softplus_forward(x + start, 0.0f, y, len);
            for (int k = 0; k < len; k++)
                CHECK(memcmp(&y[k], &ref[start + k], sizeof(float)) == 0);
        }
    float dy[48], dx1[48], dx2[48];
    for (int k = 0; k < 48; k++) {
        dy[k] = 1.0f;
        dx1[k] = dx2[k] = 0.0f;
    }
    ib__softplus_backward(x, 0.0f, dy, dx1, 48);
    for (int k = 0; k < 48; k += 5) /* pieces of 5 vs one call */
        ib__softplus_backward(x + k, 0.0f, dy + k, dx2 + k, k + 5 <= 48 ? 5 : 48 - k);
    CHECK(memcmp(dx1, dx2, sizeof dx1) == 0);
    CHECK(isnan(dx1[5]));
    CHECK(dx1[6] == 1.0f);
    CHECK(dx1[7] == 0.0f || dx1[7] < 1e-37f);
}

int main(void)
{
    IB_RUN(test_softplus_forward_range);
    IB_RUN(test_softplus_backward_range);
    IB_RUN(test_partial_blocks_and_specials);
    return ib_test_summary();
}
