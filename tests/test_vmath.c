/*
 * test_vmath.c — the vectorised softplus loops, log and sincos of
 * src/kernels/vmath.c (and its KL row sum), called through the backend
 * table (kernels.h),
 * against the exact value (computed in double) over
 * the whole input range, including the far left tail the loop hands to
 * libm (floored at FLT_MIN, the smallest normal float), NaN, and lengths that are not a multiple of the vector width (the
 * partial block must give the same bits as a full one, so results do not
 * depend on the thread count).
 */
#include "kernels/kernels.h"
#include "test.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

/* 4 ulp of float32: the polynomials' truncation is below 2^-26 relative,
 * the rest is rounding in about a dozen float operations. */
#define ULP4 (4.0 * 1.1920929e-7)

static double softplus_exact(double t) { return t > 30 ? t + log1p(exp(-t)) : log1p(exp(t)); }
/* What the forward kernel computes: softplus floored at FLT_MIN (so that
 * a VIB sigma's 1/sigma and log sigma stay finite; see vmath.c). */
static double softplus_floored(double t) { return fmax(softplus_exact(t), (double)FLT_MIN); }

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
        if (!close_enough(y[k], softplus_floored((double)t)) && bad++ == 0)
            first = k;
    }
    float tf = x[first] + -5.0f;
    CHECK_MSG(bad == 0, "%d of %d wrong, first softplus(%g) = %g, want %g", bad, N, (double)tf, (double)y[first],
              softplus_floored((double)tf));
    free(x);
    free(y);
}

/* The derivative from the output y = softplus(t) (rounded to float, as
 * the op stores it) against sigmoid(t) in double: y's own rounding (half
 * an ulp, which 1 - exp(-y) passes on at most unchanged in relative
 * terms) plus the polynomial's error stay within 4 ulp. */
static void test_softplus_backward_range(void)
{
    enum { N = 50001 };
    float *y = malloc(N * sizeof(float)), *dy = malloc(N * sizeof(float)), *dx = malloc(N * sizeof(float));
    double *t = malloc(N * sizeof(double));
    for (int k = 0; k < N; k++) {
        t[k] = -80.0 + 160.0 * (double)k / N;
        y[k] = (float)softplus_exact(t[k]);
        dy[k] = 0.5f + (float)(k % 7);
        dx[k] = 0.25f;
    }
    ib__softplus_backward(y, dy, dx, N);
    double worst = 0;
    for (int k = 0; k < N; k++) {
        double want = 0.25 + (double)dy[k] / (1.0 + exp(-t[k]));
        double e = fabs((double)dx[k] - want) / want;
        worst = e > worst ? e : worst;
    }
    CHECK_MSG(worst < ULP4, "softplus backward: worst relative error %g", worst);
    /* and the bare derivative, where dx starts at 0: tiny sigma included */
    double worst_bare = 0;
    for (int k = 0; k < N; k++) {
        float one = 1.0f, d = 0.0f;
        ib__softplus_backward(&y[k], &one, &d, 1);
        double want = 1.0 / (1.0 + exp(-t[k])), e = fabs((double)d - want) / want;
        worst_bare = e > worst_bare ? e : worst_bare;
    }
    CHECK_MSG(worst_bare < ULP4, "softplus derivative: worst relative error %g", worst_bare);
    free(y);
    free(dy);
    free(dx);
    free(t);
}

/* Every length 1..40 and every start: element k's result is the same
 * bits as in one long call; NaN and +inf propagate as libm's would, -inf
 * gives the floor. */
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
    CHECK(ref[7] == FLT_MIN);
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
    ib__softplus_backward(ref, dy, dx1, 48); /* from the outputs, as the op does */
    for (int k = 0; k < 48; k += 5) /* pieces of 5 vs one call */
        ib__softplus_backward(ref + k, dy + k, dx2 + k, k + 5 <= 48 ? 5 : 48 - k);
    CHECK(memcmp(dx1, dx2, sizeof dx1) == 0);
    CHECK(isnan(dx1[5]));
    CHECK(dx1[6] == 1.0f);
    CHECK(dx1[7] == FLT_MIN); /* the floor's derivative: sigmoid where softplus = FLT_MIN */
}

/* Error of got in units in the last place of the float nearest want. */
static double ulp_err(float got, double want)
{
    float w = (float)want;
    double ulp = (double)nextafterf(fabsf(w), INFINITY) - (double)fabsf(w);
    if (fabsf(w) < 1.17549435e-38f)
        ulp = 1.4e-45;
    return fabs((double)got - want) / ulp;
}

/* Every positive float by a stride through the bit patterns (subnormals
 * included), then every float in [0.99, 1.01] where log's result is
 * small and a cancellation would show; the specials as logf's. */
static void test_log_range(void)
{
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    double worst = 0;
    float worst_x = 0;
    uint32_t bits = 1;
    int done = 0;
    while (!done) {
        int m = 0;
        for (; m < N; m++) {
            if (bits >= 0x7f800000u) {
                done = 1;
                break;
            }
            memcpy(&x[m], &bits, 4);
            bits += 977;
        }
        ib__vlog(x, y, m);
        for (int k = 0; k < m; k++) {
            double e = ulp_err(y[k], log((double)x[k]));
            if (e > worst) {
                worst = e;
                worst_x = x[k];
            }
        }
    }
    for (float v = 0.99f; v <= 1.01f;) {
        int m = 0;
        for (; m < N && v <= 1.01f; m++, v = nextafterf(v, 2.0f))
            x[m] = v;
        ib__vlog(x, y, m);
        for (int k = 0; k < m; k++) {
            double e = ulp_err(y[k], log((double)x[k]));
            if (e > worst) {
                worst = e;
                worst_x = x[k];
            }
        }
    }
    /* measured 0.81 ulp at most: the series is exact to 2^-30 and the
     * rounding of s only enters a small correction; a wrong coefficient
     * or a lost ln2 low part costs several ulp. */
    CHECK_MSG(worst <= 1.0, "log: worst %.3g ulp at x = %.9g", worst, (double)worst_x);
    float sp[7] = {0.0f, -0.0f, -1.0f, INFINITY, NAN, 1.0f, 1.4e-45f}, so[7];
    ib__vlog(sp, so, 7);
    CHECK(so[0] == -INFINITY && so[1] == -INFINITY);
    CHECK(isnan(so[2]) && isnan(so[4]));
    CHECK(so[3] == INFINITY);
    CHECK(so[5] == 0.0f);
    CHECK(ulp_err(so[6], log((double)sp[6])) <= 1.0);
    free(x);
    free(y);
}

static void check_sincos(const float *x, const float *s, const float *c, int m, bool turns, double *worst,
                         float *worst_x)
{
    for (int k = 0; k < m; k++) {
        double a = turns ? 6.283185307179586476925 * (double)x[k] : (double)x[k];
        /* sin(2 pi u) at u = 1/2 is exactly 0 but double's 2 pi is not:
         * compare in turns there (sinpi of the exact remainder) */
        double ws = sin(a), wc = cos(a);
        if (turns) {
            double t = (double)x[k] - nearbyint(4.0 * (double)x[k]) / 4.0; /* exact */
            int q = (int)nearbyint(4.0 * (double)x[k]) & 3;
            double st = sin(6.283185307179586476925 * t), ct = cos(6.283185307179586476925 * t);
            double sv[4] = {st, ct, -st, -ct}, cv[4] = {ct, -st, -ct, st};
            ws = sv[q];
            wc = cv[q];
        }
        double e = fmax(ulp_err(s[k], ws), ulp_err(c[k], wc));
        if (e > *worst) {
            *worst = e;
            *worst_x = x[k];
        }
    }
}

/* sin and cos over [-8192, 8192] (the exact reduction's range) and
 * sin(2 pi u), cos(2 pi u) over [0, 1) and a few turns either side. */
static void test_sincos_range(void)
{
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof(float)), *s = malloc(N * sizeof(float)), *c = malloc(N * sizeof(float));
    double worst = 0, worst2 = 0;
    float wx = 0, wx2 = 0;
    for (int rep = 0; rep < 40; rep++) {
        for (int k = 0; k < N; k++)
            x[k] = -8192.0f + 16384.0f * (float)((double)(rep * N + k) / (40.0 * N));
        ib__vsincos(x, s, c, N);
        check_sincos(x, s, c, N, false, &worst, &wx);
    }
    for (int rep = 0; rep < 40; rep++) {
        for (int k = 0; k < N; k++)
            x[k] = (float)(rep * N + k) / (float)(1 << 21) - (rep % 4 == 3 ? 3.0f : 0.0f); /* 2^-21 grid */
        ib__vsincos_2pi(x, s, c, N);
        check_sincos(x, s, c, N, true, &worst2, &wx2);
    }
    /* measured 1.45 and 1.87 ulp: the polynomials are exact to 2^-28 on
     * |r| <= pi/4; the rest is the rounding of r (of 2 pi t: up to a whole
     * ulp of the result where r and sin r straddle a power of 2) and of
     * the Horner steps.  A missing reduction term (140 ulp near multiples
     * of pi/2) or a wrong quadrant sign gives far more. */
    CHECK_MSG(worst <= 2.0, "sincos: worst %.3g ulp at x = %.9g", worst, (double)wx);
    CHECK_MSG(worst2 <= 2.5, "sincos_2pi: worst %.3g ulp at u = %.9g", worst2, (double)wx2);
    /* outside the vector range: libm, so still right */
    float big[3] = {1e5f, -3e7f, NAN}, bs[3], bc[3];
    ib__vsincos(big, bs, bc, 3);
    CHECK(bs[0] == sinf(1e5f) && bc[1] == cosf(-3e7f) && isnan(bs[2]) && isnan(bc[2]));
    /* whole quarter turns are exact, in and out of the vector range */
    float qt[6] = {0.25f, 0.5f, 1.0f, -0.75f, 3e6f + 0.5f, 12345.25f}, qs[6], qc[6];
    const float ws[6] = {1, 0, 0, 1, 0, 1}, wc[6] = {0, -1, 1, 0, -1, 0};
    ib__vsincos_2pi(qt, qs, qc, 6);
    for (int k = 0; k < 6; k++)
        CHECK_MSG(qs[k] == ws[k] && qc[k] == wc[k], "u = %g: sin %g cos %g", (double)qt[k], (double)qs[k],
                  (double)qc[k]);
    free(x);
    free(s);
    free(c);
}

/* The KL row sum 1/2 sum (mu^2 + sigma^2 - 1 - 2 log sigma) against
 * double, for every length 0..40 (full blocks and each partial one) and
 * sigma over six decades.  Each term is rounded to float before the double
 * sum, so the bound is a few float ulp of the largest term per term. */
static void test_kl_std_normal_row(void)
{
    float mu[40], sg[40];
    ib_test_fill(mu, 40, -3.0f, 3.0f, 41);
    ib_test_fill(sg, 40, -3.0f, 3.0f, 42);
    for (int j = 0; j < 40; j++)
        sg[j] = powf(10.0f, sg[j]);
    for (int len = 0; len <= 40; len++) {
        double want = 0, bound = 0;
        for (int j = 0; j < len; j++) {
            double t = (double)mu[j] * mu[j] + (double)sg[j] * sg[j] - 1.0 - 2.0 * log((double)sg[j]);
            want += 0.5 * t;
            bound += 4e-7 * (fabs(t) + (double)mu[j] * mu[j] + (double)sg[j] * sg[j] + 1.0 + fabs(2.0 * log(sg[j])));
        }
        double got = ib__kl_std_normal_row(mu, sg, len);
        CHECK_MSG(fabs(got - want) <= bound + 1e-12, "length %d: %.12g, want %.12g (bound %.3g)", len, got, want,
                  bound);
    }
    /* the tail of a row is summed as if padded with terms of exactly 0 */
    CHECK(ib__kl_std_normal_row((const float[8]){0, 0, 0, 0, 0, 0, 0, 0}, (const float[8]){1, 1, 1, 1, 1, 1, 1, 1},
                                8) == 0.0);
}

int main(void)
{
    IB_RUN(test_softplus_forward_range);
    IB_RUN(test_softplus_backward_range);
    IB_RUN(test_partial_blocks_and_specials);
    IB_RUN(test_log_range);
    IB_RUN(test_sincos_range);
    IB_RUN(test_kl_std_normal_row);
    return ib_test_summary();
}
