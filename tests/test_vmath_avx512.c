/*
 * test_vmath_avx512.c — the 16-lane (AVX-512) forms of the vector math
 * kernels (softplus forward and backward, log, sincos, sincos of 2 pi u,
 * the KL row sum) and of the Gaussian generator give the same bits as the
 * 8-lane (AVX2) forms: each kernel runs twice on the same inputs, once as
 * the CPU allows and once with the AVX2 paths forced, and the outputs are
 * compared with memcmp (NaN payloads and signs of zero included).  Inputs:
 * random floats over many ranges, every class of float by random bit
 * patterns, and the edges (NaN, +-inf, +-0, subnormals, FLT_MAX, the
 * softplus floor and the libm tail, the sincos reduction limits); lengths
 * 0..70 at every alignment and one above the parallel threshold.
 *
 * On a CPU without AVX-512 both runs would take the AVX2 path and prove
 * nothing, so the test exits 77 there (CTest: not run).
 */
#include "core/internal.h"
#include "kernels/kernels.h"
#include "test.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#define BIG 100003 /* above IB_PAR_MIN, odd: a partial last block */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float bits_to_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)(next_u32() >> 8) / 16777216.0f; }

static const float edges[] = {
    0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, 1.4e-45f, -1.4e-45f,
    1e-40f, 5.9e-39f, 1.0f, -1.0f, 0.5f, 0.49999997f, 0.50000006f, 2.0f, 1e-7f, -1e-7f, 1e-30f,
    /* softplus: the exp clamps, the libm tail (< -86), the floor (-87.34), overflow of exp */
    -86.0f, -86.00001f, -85.99999f, -86.5f, -87.34f, -88.7f, -103.3f, -150.0f, -1e30f, 88.7f, 88.8f, 89.0f, 100.0f,
    1e30f, 20.0f, -20.0f,
    /* sincos: the reduction limits and multiples of pi/2 and of a quarter turn */
    8192.0f, 8192.001f, -8192.0f, 2097152.0f, 2097151.75f, -2097152.0f, 1.5707964f, 3.1415927f, 4.712389f,
    0.25f, 0.75f, -0.25f, 0.125f, 0.375f, 1e10f};
#define N_EDGES ((int)(sizeof edges / sizeof edges[0]))

/* n inputs: a quarter random bit patterns (every class of float), the rest
 * uniform in [lo, hi), then the edges scattered over the array. */
static void fill(float *x, int64_t n, float lo, float hi)
{
    for (int64_t k = 0; k < n; k++)
        x[k] = k % 4 == 3 ? bits_to_float(next_u32() << 16 | next_u32()) : uniform(lo, hi);
    for (int e = 0; e < N_EDGES && e < n; e++)
        x[(int64_t)(next_u32() % (uint32_t)n)] = edges[e];
}

/* Positive inputs for log and the KL's sigma, with their own edges. */
static void fill_positive(float *x, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        x[k] = k % 4 == 3 ? bits_to_float(next_u32() << 16 | next_u32()) : expf(uniform(-90.0f, 80.0f));
    const float pos[] = {FLT_MIN, 1.4e-45f, 1e-40f, 1.0f, 0.99999994f, 1.0000001f, FLT_MAX, INFINITY, 0.0f, NAN};
    for (int e = 0; e < 10 && e < n; e++)
        x[(int64_t)(next_u32() % (uint32_t)n)] = pos[e];
}

typedef void (*kernel_fn)(const float *in, const float *in2, float *out, float *out2, int64_t n);

/* Runs f on both paths (outputs preset to the same values) and compares. */
static bool same_bits(kernel_fn f, const float *in, const float *in2, int64_t n, int outs, const char *name)
{
    float *o[2][2];
    for (int w = 0; w < 2; w++)
        for (int j = 0; j < 2; j++) {
            o[w][j] = malloc((size_t)(n + 1) * sizeof(float));
            for (int64_t k = 0; k <= n; k++)
                o[w][j][k] = 0.25f * (float)(k % 7); /* softplus_backward accumulates into it */
        }
    ib__cpu_force_avx2(false);
    CHECK(ib__cpu_avx512());
    f(in, in2, o[1][0], o[1][1], n);
    ib__cpu_force_avx2(true);
    f(in, in2, o[0][0], o[0][1], n);
    ib__cpu_force_avx2(false);
    bool same = true;
    /* A NaN's payload and sign are not part of the result: C leaves them to
     * the compiler's operand order, which the unoptimised (sanitizer) build
     * of the scalar tails changes.  Every other value must match bit for bit. */
    for (int j = 0; j < outs; j++)
        for (int64_t k = 0; k < n; k++)
            if (!(isnan(o[0][j][k]) && isnan(o[1][j][k])) && memcmp(&o[0][j][k], &o[1][j][k], sizeof(float)) != 0) {
                ib_test_fail(__FILE__, __LINE__, "%s n=%lld out%d[%lld] (input %a): AVX2 %a, AVX-512 %a", name,
                             (long long)n, j, (long long)k, (double)in[k], (double)o[0][j][k], (double)o[1][j][k]);
                same = false;
                break;
            }
    for (int w = 0; w < 2; w++)
        for (int j = 0; j < 2; j++)
            free(o[w][j]);
    return same;
}

static float cur_shift;
static void k_softplus_fwd(const float *x, const float *u, float *y, float *v, int64_t n)
{
    (void)u, (void)v;
    ib__softplus_forward(x, cur_shift, y, n);
}
static void k_softplus_bwd(const float *y, const float *dy, float *dx, float *v, int64_t n)
{
    (void)v;
    ib__softplus_backward(y, dy, dx, n);
}
static void k_log(const float *x, const float *u, float *y, float *v, int64_t n)
{
    (void)u, (void)v;
    ib__vlog(x, y, n);
}
static void k_sincos(const float *x, const float *u, float *s, float *c, int64_t n)
{
    (void)u;
    ib__vsincos(x, s, c, n);
}
static void k_sincos_2pi(const float *x, const float *u, float *s, float *c, int64_t n)
{
    (void)u;
    ib__vsincos_2pi(x, s, c, n);
}

/* Every length 0..70 at every start 0..15, then BIG. */
static void each_length(kernel_fn f, float *in, float *in2, int outs, const char *name)
{
    for (int start = 0; start < 16; start++)
        for (int64_t n = 0; n <= 70; n++)
            if (!same_bits(f, in + start, in2 ? in2 + start : NULL, n, outs, name))
                return;
    same_bits(f, in, in2, BIG, outs, name);
}

static float *buf(void) { return malloc((BIG + 16) * sizeof(float)); }

static void test_softplus_same_bits(void)
{
    float *x = buf(), *dy = buf(), *y = buf();
    fill(x, BIG + 16, -120.0f, 120.0f);
    const float shifts[] = {0.0f, -5.0f, 0.5413f};
    for (int i = 0; i < 3; i++) {
        cur_shift = shifts[i];
        each_length(k_softplus_fwd, x, NULL, 1, "softplus_forward");
    }
    /* backward from forward's outputs (as the op calls it), then from any y */
    fill(dy, BIG + 16, -3.0f, 3.0f);
    ib__softplus_forward(x, 0.0f, y, BIG + 16);
    each_length(k_softplus_bwd, y, dy, 1, "softplus_backward(y = softplus)");
    fill(y, BIG + 16, -1.0f, 40.0f);
    each_length(k_softplus_bwd, y, dy, 1, "softplus_backward");
    free(x);
    free(dy);
    free(y);
}

static void test_log_same_bits(void)
{
    float *x = buf();
    fill_positive(x, BIG + 16);
    each_length(k_log, x, NULL, 1, "log");
    fill(x, BIG + 16, -10.0f, 10.0f); /* negatives, NaN, zeros */
    each_length(k_log, x, NULL, 1, "log (any sign)");
    free(x);
}

static void test_sincos_same_bits(void)
{
    float *x = buf();
    fill(x, BIG + 16, -9000.0f, 9000.0f);
    each_length(k_sincos, x, NULL, 2, "sincos");
    fill(x, BIG + 16, -7.0f, 7.0f);
    each_length(k_sincos, x, NULL, 2, "sincos (small)");
    fill(x, BIG + 16, -3e6f, 3e6f);
    each_length(k_sincos_2pi, x, NULL, 2, "sincos_2pi");
    fill(x, BIG + 16, 0.0f, 1.0f); /* the generator's range */
    each_length(k_sincos_2pi, x, NULL, 2, "sincos_2pi (turns)");
    free(x);
}

/* The row sum in double: the same bits, lane order of the sum included.
 * One exception: a row with NaN terms of both signs sums to a NaN whose
 * sign depends on which NaN an add returns, which is the first operand's
 * on x86, and C lets the compiler swap an add's operands; so NaN against
 * NaN is equal here. */
static bool same_sum(double a, double b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

static void test_kl_row_same_bits(void)
{
    float *mu = buf(), *s = buf();
    for (int pass = 0; pass < 4; pass++) {
        if (pass == 0) {
            fill(mu, BIG + 16, -4.0f, 4.0f);
            fill_positive(s, BIG + 16);
        } else if (pass < 3) { /* ordinary rows: a finite sum whose every bit matters */
            for (int64_t k = 0; k < BIG + 16; k++) {
                mu[k] = uniform(-4.0f, 4.0f);
                s[k] = uniform(pass == 1 ? 0.05f : 1e-20f, 3.0f);
            }
        } else { /* terms from 1e-10 to 1e10: most adds of the double sum round, so a change of order
                  * shows in its bits (float terms of like size would add exactly in any order) */
            for (int64_t k = 0; k < BIG + 16; k++) {
                mu[k] = expf(uniform(-12.0f, 12.0f));
                s[k] = uniform(0.999f, 1.001f);
            }
        }
        if (pass == 1) /* rows that start with exact zero terms (mu = 0, sigma = 1, as the padding) */
            for (int k = 0; k < 20; k++) {
                mu[k] = 0.0f;
                s[k] = 1.0f;
            }
        for (int start = 0; start < 16; start++)
            for (int64_t len = 0; len <= 70; len++) {
                ib__cpu_force_avx2(false);
                double wide = ib__kl_std_normal_row(mu + start, s + start, len);
                ib__cpu_force_avx2(true);
                double narrow = ib__kl_std_normal_row(mu + start, s + start, len);
                ib__cpu_force_avx2(false);
                CHECK_MSG(same_sum(wide, narrow), "pass %d start %d len %lld: %a vs %a", pass,
                          start, (long long)len, wide, narrow);
            }
        for (int64_t at = 0; at + 70 <= BIG; at += 70) /* many distinct rows */
            for (int64_t len = 33; len <= 70; len += 37) {
                ib__cpu_force_avx2(false);
                double wide = ib__kl_std_normal_row(mu + at, s + at, len);
                ib__cpu_force_avx2(true);
                double narrow = ib__kl_std_normal_row(mu + at, s + at, len);
                CHECK_MSG(same_sum(wide, narrow), "pass %d at %lld len %lld: %a vs %a", pass, (long long)at,
                          (long long)len, wide, narrow);
            }
        ib__cpu_force_avx2(false);
        double wide = ib__kl_std_normal_row(mu, s, BIG);
        ib__cpu_force_avx2(true);
        double narrow = ib__kl_std_normal_row(mu, s, BIG);
        ib__cpu_force_avx2(false);
        CHECK_MSG(same_sum(wide, narrow), "pass %d BIG: %a vs %a", pass, wide, narrow);
    }
    free(mu);
    free(s);
}

/* Normals: whole draws (parallel chunks), ranges at every offset and
 * length around the 16-lane pairs of groups, and blocks at the 2^32
 * boundary of the Philox counter. */
static void test_normals_same_bits(void)
{
    const int64_t n = 300007;
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    ib__cpu_force_avx2(false);
    ib_rng_normal(7, 11, 3, a, n);
    ib__cpu_force_avx2(true);
    ib_rng_normal(7, 11, 3, b, n);
    CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
    const int64_t bases[] = {0, 32 * 5, 32 * ((INT64_C(1) << 29) - 3), 32 * ((INT64_C(1) << 29) - 2) + 7};
    for (int i = 0; i < 4; i++)
        for (int64_t first = bases[i]; first < bases[i] + 70; first += 3)
            for (int64_t len = 1; len <= 200; len += 7) {
                ib__cpu_force_avx2(false);
                ib__rng_normal_range(0xABCDEF, 5, (uint64_t)i << 33 | 9, first, a, len);
                ib__cpu_force_avx2(true);
                ib__rng_normal_range(0xABCDEF, 5, (uint64_t)i << 33 | 9, first, b, len);
                CHECK_MSG(memcmp(a, b, (size_t)len * sizeof(float)) == 0, "first %lld len %lld", (long long)first,
                          (long long)len);
            }
    ib__cpu_force_avx2(false);
    free(a);
    free(b);
}

int main(void)
{
    if (!ib__cpu_has_avx512()) {
        printf("no AVX-512 (F, DQ, BW, VL) on this CPU: nothing to compare\n");
        return 77;
    }
    unsetenv("IBNET_ISA"); /* an IBNET_ISA=avx2 from outside would make both runs AVX2 */
    IB_RUN(test_softplus_same_bits);
    IB_RUN(test_log_same_bits);
    IB_RUN(test_sincos_same_bits);
    IB_RUN(test_kl_row_same_bits);
    IB_RUN(test_normals_same_bits);
    return ib_test_summary();
}
