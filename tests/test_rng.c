/*
 * test_rng.c — the vectorised normal generator of src/core/rng.c: its bits
 * against a plain Random123 + double-precision Box-Muller reference (the
 * element-to-counter mapping included), independence of the thread count
 * and of where a range starts, and the distribution (moments, tails, pair
 * correlation, Kolmogorov-Smirnov against Phi with a fixed seed).
 */
#include "core/internal.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <Random123/philox.h>

/* Element i of ib_rng_normal(seed, stream, step): word j of Philox block
 * 8g + l for i = 32g + 8j + l; words (0,1) and (2,3) are Box-Muller pairs
 * (cos to j = 0/2, sin to j = 1/3).  Computed in double. */
static double reference(uint64_t seed, uint64_t stream, uint64_t step, uint64_t i, double *rad)
{
    seed ^= 0x5DEECE66Dull;
    uint64_t g = i / 32, r = i % 32, j = r / 8, l = r % 8, b = 8 * g + l;
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    uint32_t s = (uint32_t)(stream ^ (stream >> 32));
    philox4x32_ctr_t c = {{(uint32_t)b, s, (uint32_t)step, (uint32_t)(step >> 32) ^ (uint32_t)(b >> 32) * 0x9E3779B9u}};
    philox4x32_ctr_t w = philox4x32(c, k);
    uint64_t pair = j & 2;
    double u1 = ((double)(w.v[pair] >> 8) + 1.0) / 16777216.0, u2 = (double)(w.v[pair + 1] >> 8) / 16777216.0;
    *rad = sqrt(-2.0 * log(u1));
    return *rad * (j & 1 ? sin(6.283185307179586 * u2) : cos(6.283185307179586 * u2));
}

static void test_bits_match_reference(void)
{
    enum { N = 5000 };
    float *z = malloc(N * sizeof(float));
    /* rad and cos/sin each carry about 2 ulp (tests/test_vmath.c), their
     * product one more rounding: |err| <= rad * 4.2e-7; 6e-7 * rad leaves
     * a margin.  A wrong Philox word or mapping is off by O(1). */
    const uint64_t seeds[3] = {1, 0xDEADBEEFCAFEull, 42};
    const uint64_t streams[3] = {0, 0x123456789ABCDEFull, 7};
    const uint64_t steps[3] = {0, 5, (1ull << 40) + 3};
    for (int t = 0; t < 3; t++) {
        ib_rng_normal(seeds[t], streams[t], steps[t], z, N);
        int bad = 0, first = -1;
        for (int i = 0; i < N; i++) {
            double rad, want = reference(seeds[t], streams[t], steps[t], (uint64_t)i, &rad);
            if (fabs((double)z[i] - want) > 6e-7 * rad + 1e-30 && bad++ == 0)
                first = i;
        }
        CHECK_MSG(bad == 0, "case %d: %d of %d differ from the reference, first at %d", t, bad, N, first);
    }
    /* far blocks (b >> 32 != 0) through the range entry point */
    int64_t far = ((int64_t)1 << 37) + 13;
    ib__rng_normal_range(3, 4, 5, far, z, 100);
    for (int i = 0; i < 100; i++) {
        double rad, want = reference(3, 4, 5, (uint64_t)(far + i), &rad);
        CHECK_MSG(fabs((double)z[i] - want) <= 6e-7 * rad, "far element %d: %g vs %g", i, (double)z[i], want);
    }
    free(z);
}

/* Any start and length (partial groups at both ends) and any thread
 * count give the same bits as one long draw. */
static void test_ranges_and_threads(void)
{
    enum { N = 100000 }; /* above IB_PAR_MIN: the parallel path runs */
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    int saved = ib_get_threads();
    ib_set_threads(1);
    ib_rng_normal(9, 8, 7, a, N);
    for (int t = 2; t <= 3; t++) {
        ib_set_threads(t);
        ib_rng_normal(9, 8, 7, b, N);
        CHECK(memcmp(a, b, N * sizeof(float)) == 0);
    }
    ib_set_threads(saved);
    const int64_t starts[6] = {0, 1, 31, 32, 33, 4093};
    for (int s = 0; s < 6; s++)
        for (int64_t len = 1; len <= 70; len += 3) {
            ib__rng_normal_range(9, 8, 7, starts[s], b, len);
            CHECK(memcmp(a + starts[s], b, (size_t)len * sizeof(float)) == 0);
        }
    free(a);
    free(b);
}

static int cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Kolmogorov-Smirnov distance of sorted z (after z -> scale z + shift)
 * from the standard normal CDF. */
static double ks_distance(const float *sorted, int64_t n, double scale, double shift)
{
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double F = 0.5 * erfc(-(scale * sorted[i] + shift) / sqrt(2.0));
        double lo = F - (double)i / (double)n, hi = (double)(i + 1) / (double)n - F;
        d = fmax(d, fmax(lo, hi));
    }
    return d;
}

static void test_distribution(void)
{
    enum { N = 1 << 20 };
    float *z = malloc(N * sizeof(float));
    ib_rng_normal(2024, ib_rng_stream_of("test_rng"), 1, z, N);
    double m = 0, m2 = 0, m3 = 0, m4 = 0, pair = 0, lag = 0;
    int64_t over3 = 0, over4 = 0;
    for (int64_t i = 0; i < N; i++) {
        double x = z[i];
        m += x;
        m2 += x * x;
        m3 += x * x * x;
        m4 += x * x * x * x;
        over3 += fabs(x) > 3.0;
        over4 += fabs(x) > 4.0;
        if (i % 32 < 8)
            pair += x * z[i + 8]; /* the cos and sin of one Box-Muller pair */
        if (i + 1 < N)
            lag += x * z[i + 1];
    }
    m /= N;
    m2 /= N;
    m3 /= N;
    m4 /= N;
    pair /= N / 4;
    lag /= N - 1;
    /* Bounds are 5 standard errors of each statistic for N = 2^20 (so a
     * correct generator fails with probability ~1e-6 each; the seed is
     * fixed, so the test is deterministic): mean 1/sqrt(N), variance
     * sqrt(2/N), third moment sqrt(15/N), fourth sqrt(96/N), correlations
     * 1/sqrt(count). */
    double se = 1.0 / sqrt((double)N);
    CHECK_NEAR(m, 0.0, 5 * se);
    CHECK_NEAR(m2, 1.0, 5 * sqrt(2.0) * se);
    CHECK_NEAR(m3, 0.0, 5 * sqrt(15.0) * se);
    CHECK_NEAR(m4, 3.0, 5 * sqrt(96.0) * se);
    CHECK_NEAR(pair, 0.0, 5 * 2 * se);
    CHECK_NEAR(lag, 0.0, 5 * se);
    /* tails: P(|z| > 3) = 2.6998e-3, P(|z| > 4) = 6.3342e-5; binomial sd */
    double e3 = 2.6997960632601e-3 * N, e4 = 6.3342483666e-5 * N;
    CHECK_NEAR((double)over3, e3, 5 * sqrt(e3));
    CHECK_NEAR((double)over4, e4, 5 * sqrt(e4));
    /* KS: the 0.1% critical value is 1.949/sqrt(N).  The same sample
     * scaled by 1.01 or shifted by 0.005 must fail it: the test has the
     * power to see a transform that is off by that much. */
    qsort(z, N, sizeof(float), cmp_float);
    double crit = 1.949 * se;
    double d = ks_distance(z, N, 1.0, 0.0);
    CHECK_MSG(d < crit, "KS distance %g >= %g", d, crit);
    CHECK(ks_distance(z, N, 1.01, 0.0) > crit);
    CHECK(ks_distance(z, N, 1.0, 0.005) > crit);
    /* the largest value the 24-bit radius allows is sqrt(48 ln 2) = 5.77 */
    CHECK(z[N - 1] < 5.77f && z[0] > -5.77f);
    free(z);
}

int main(void)
{
    IB_RUN(test_bits_match_reference);
    IB_RUN(test_ranges_and_threads);
    IB_RUN(test_distribution);
    return ib_test_summary();
}
