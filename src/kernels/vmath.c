/*
 * vmath.c — the vectorised softplus loops of vmath.h, array forms of the
 * inline log and sincos of core/simd_math.h, and the row sum of the KL to
 * N(0, 1) (the term of every VIB layer).
 *
 * exp(x): x = n ln2 + r with |r| <= ln2/2 (ln2 split in a 16-bit high part,
 * so n*hi is exact, and a low part); exp(r) by its degree-6 Taylor
 * polynomial (remainder below 2^-26 relative); 2^(n-1) built in the
 * exponent field and doubled, so n = 128 stays finite.  x is clamped to
 * [-86.5, 88.7] so that 2^(n-1) is a normal float.
 * log1p(u), u in [0, 1]: 2 atanh(s), s = u/(2+u) in [0, 1/3], by the odd
 * series to s^17 (truncation below 2^-27 relative), accurate even for tiny
 * u where log1p(u) ~ u (where log(1+u) would lose every bit).
 * softplus(t) = max(t, 0) + log1p(exp(-|t|)).  Below t = -86, exp(t) is
 * near the subnormals and the clamp would be wrong; those (rare) elements
 * are recomputed with libm after the vector pass.  NaN propagates.
 * softplus is floored at FLT_MIN (the smallest normal float, reached at
 * t = -87.34): as a VIB layer's sigma, a subnormal softplus made 1/sigma
 * in the KL's gradient overflow (t < -88.7) and an underflowed one
 * (t < -103.3) made log sigma = -inf.  At the floor the backward's
 * derivative 1 - exp(-y) = FLT_MIN times the KL's -1/sigma gives the
 * gradient -1 that -log softplus(t) tends to, so the KL still pushes t
 * back up.  Outputs >= FLT_MIN are unchanged.
 */
#include "vmath.h"

#include "../core/internal.h"
#include "../core/simd_math.h"

#include <float.h>
#include <math.h>

/* sin and cos of 2 pi u one at a time, reduced in turns in double (u -
 * q/4 is exact for every float u), so multiples of a quarter turn give
 * exact 0 and +-1: the vector loop's out-of-range elements, and the fallback. */
static void sincos_2pi_1(float u, float *s, float *c)
{
    double q = nearbyint(4.0 * (double)u), t = 6.283185307179586476925 * ((double)u - q / 4.0);
    double st = sin(t), ct = cos(t);
    if (!isfinite(u)) {
        *s = *c = NAN;
        return;
    }
    switch ((int64_t)fmod(q, 4.0) & 3) {
    case 0: *s = (float)st; *c = (float)ct; break;
    case 1: *s = (float)ct; *c = (float)-st; break;
    case 2: *s = (float)-st; *c = (float)-ct; break;
    default: *s = (float)-ct; *c = (float)st; break;
    }
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256 v_exp(__m256 x)
{
    /* max/min return their second operand when one is NaN: NaN survives */
    x = _mm256_min_ps(_mm256_set1_ps(88.7f), _mm256_max_ps(_mm256_set1_ps(-86.5f), x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(126)), 23);
    return _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), _mm256_set1_ps(2.0f));
}

static inline __m256 v_log1p01(__m256 u)
{
    __m256 s = _mm256_div_ps(u, _mm256_add_ps(_mm256_set1_ps(2.0f), u)), s2 = _mm256_mul_ps(s, s);
    __m256 p = _mm256_set1_ps(1.0f / 17.0f);
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 15.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 13.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 11.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 9.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 7.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 5.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f / 3.0f));
    p = _mm256_fmadd_ps(p, s2, _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(_mm256_add_ps(s, s), p);
}

static inline __m256 v_softplus(__m256 t)
{
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), t); /* |t| */
    __m256 l = v_log1p01(v_exp(_mm256_sub_ps(_mm256_setzero_ps(), a)));
    return _mm256_add_ps(_mm256_max_ps(_mm256_setzero_ps(), t), l);
}

/* Blocks of 8 in parallel; the partial last block through a buffer. */
void ib__cpu_softplus_forward(const float *x, float shift, float *y, int64_t n)
{
    int64_t blocks = n / 8;
    const __m256 sh = _mm256_set1_ps(shift);
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t b = 0; b < blocks; b++)
        _mm256_storeu_ps(y + 8 * b, v_softplus(_mm256_add_ps(_mm256_loadu_ps(x + 8 * b), sh)));
    if (n % 8) {
        float buf[8] = {0};
        int64_t at = 8 * blocks, rest = n - at;
        memcpy(buf, x + at, (size_t)rest * sizeof(float));
        _mm256_storeu_ps(buf, v_softplus(_mm256_add_ps(_mm256_loadu_ps(buf), sh)));
        memcpy(y + at, buf, (size_t)rest * sizeof(float));
    }
    for (int64_t k = 0; k < n; k++) /* the tail near the subnormals: libm, floored */
        if (x[k] + shift < -86.0f)
            y[k] = fmaxf(log1pf(expf(x[k] + shift)), FLT_MIN);
}

/* 1 - exp(-y) for y >= 0 (the derivative of softplus at the t where
 * softplus(t) = y): by the series y - y^2/2 + ... - y^10/10! below 1/2
 * (truncation under 1e-10 relative), where 1 - exp(-y) would cancel
 * (exp's rounding, amplified 3.5x at y = 1/4), and directly above.  NaN
 * propagates through v_exp. */
static inline __m256 v_one_minus_exp_neg(__m256 y)
{
    static const float c[9] = {-1.0f / 3628800.0f, 1.0f / 362880.0f, -1.0f / 40320.0f, 1.0f / 5040.0f, -1.0f / 720.0f,
                               1.0f / 120.0f,      -1.0f / 24.0f,    1.0f / 6.0f,      -0.5f};
    __m256 p = _mm256_set1_ps(c[0]);
    for (int i = 1; i < 9; i++)
        p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(c[i]));
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(1.0f));
    __m256 small = _mm256_mul_ps(p, y);
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f), v_exp(_mm256_sub_ps(_mm256_setzero_ps(), y)));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(y, _mm256_set1_ps(0.5f), _CMP_LT_OQ));
}

void ib__cpu_softplus_backward(const float *y, const float *dy, float *dx, int64_t n)
{
    int64_t blocks = n / 8;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t b = 0; b < blocks; b++) {
        __m256 s = v_one_minus_exp_neg(_mm256_loadu_ps(y + 8 * b));
        _mm256_storeu_ps(dx + 8 * b, _mm256_fmadd_ps(_mm256_loadu_ps(dy + 8 * b), s, _mm256_loadu_ps(dx + 8 * b)));
    }
    if (n % 8) {
        float by[8] = {0}, bdy[8] = {0}, bdx[8] = {0};
        int64_t at = 8 * blocks, rest = n - at;
        memcpy(by, y + at, (size_t)rest * sizeof(float));
        memcpy(bdy, dy + at, (size_t)rest * sizeof(float));
        memcpy(bdx, dx + at, (size_t)rest * sizeof(float));
        __m256 s = v_one_minus_exp_neg(_mm256_loadu_ps(by));
        _mm256_storeu_ps(bdx, _mm256_fmadd_ps(_mm256_loadu_ps(bdy), s, _mm256_loadu_ps(bdx)));
        memcpy(dx + at, bdx, (size_t)rest * sizeof(float));
    }
}

/* Apply F (8 lanes in, 8 out) to n floats; the partial last block through
 * a buffer padded with PAD so that it stays in the function's domain. */
#define VMAP1(F, x, y, n, PAD)                                                                                         \
    do {                                                                                                               \
        int64_t k_ = 0;                                                                                                \
        for (; k_ + 8 <= (n); k_ += 8)                                                                                 \
            _mm256_storeu_ps((y) + k_, F(_mm256_loadu_ps((x) + k_)));                                                  \
        if (k_ < (n)) {                                                                                                \
            float b_[8] = {PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD};                                                    \
            memcpy(b_, (x) + k_, (size_t)((n) - k_) * sizeof(float));                                                 \
            _mm256_storeu_ps(b_, F(_mm256_loadu_ps(b_)));                                                              \
            memcpy((y) + k_, b_, (size_t)((n) - k_) * sizeof(float));                                                 \
        }                                                                                                              \
    } while (0)

void ib__cpu_vlog(const float *x, float *y, int64_t n) { VMAP1(ib__v_log, x, y, n, 1.0f); }

static void sincos_map(const float *x, float *s, float *c, int64_t n, bool turns)
{
    for (int64_t k = 0; k < n; k += 8) {
        float b[8] = {0}, bs[8], bc[8];
        int64_t m = n - k < 8 ? n - k : 8;
        memcpy(b, x + k, (size_t)m * sizeof(float));
        __m256 vs, vc;
        if (turns)
            ib__v_sincos_2pi(_mm256_loadu_ps(b), &vs, &vc);
        else
            ib__v_sincos(_mm256_loadu_ps(b), &vs, &vc);
        _mm256_storeu_ps(bs, vs);
        _mm256_storeu_ps(bc, vc);
        memcpy(s + k, bs, (size_t)m * sizeof(float));
        memcpy(c + k, bc, (size_t)m * sizeof(float));
    }
}

void ib__cpu_vsincos(const float *x, float *s, float *c, int64_t n)
{
    sincos_map(x, s, c, n, false);
    for (int64_t k = 0; k < n; k++) /* outside the exact reduction (or NaN/inf): libm */
        if (!(fabsf(x[k]) <= 8192.0f)) {
            s[k] = sinf(x[k]);
            c[k] = cosf(x[k]);
        }
}

void ib__cpu_vsincos_2pi(const float *u, float *s, float *c, int64_t n)
{
    sincos_map(u, s, c, n, true);
    for (int64_t k = 0; k < n; k++)
        if (!(fabsf(u[k]) < 2097152.0f))
            sincos_2pi_1(u[k], &s[k], &c[k]);
}

/* mu^2 + (sigma^2 - 1) - 2 log sigma, 8 lanes (sigma^2 - 1 by one fma). */
static inline __m256 kl_std_term8(__m256 mu, __m256 s)
{
    __m256 q = _mm256_fmadd_ps(mu, mu, _mm256_fmsub_ps(s, s, _mm256_set1_ps(1.0f)));
    return _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), ib__v_log(s), q);
}

/* Terms in float, summed in double in 8 lanes and then in a fixed order.
 * The partial last block is padded with mu = 0, sigma = 1: a term of
 * exactly 0. */
double ib__cpu_kl_std_normal_row(const float *mu, const float *s, int64_t len)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t j = 0;
    for (; j < len; j += 8) {
        __m256 t;
        if (j + 8 <= len) {
            t = kl_std_term8(_mm256_loadu_ps(mu + j), _mm256_loadu_ps(s + j));
        } else {
            float bm[8] = {0}, bs[8] = {1, 1, 1, 1, 1, 1, 1, 1};
            memcpy(bm, mu + j, (size_t)(len - j) * sizeof(float));
            memcpy(bs, s + j, (size_t)(len - j) * sizeof(float));
            t = kl_std_term8(_mm256_loadu_ps(bm), _mm256_loadu_ps(bs));
        }
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
    }
    double l[4];
    _mm256_storeu_pd(l, _mm256_add_pd(a0, a1));
    return 0.5 * ((l[0] + l[1]) + (l[2] + l[3]));
}

#else /* no AVX2+FMA: libm */

void ib__cpu_softplus_forward(const float *x, float shift, float *y, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > IB_PAR_MIN)
    for (int64_t k = 0; k < n; k++) {
        float t = x[k] + shift, v = fmaxf(t, 0.0f) + log1pf(expf(-fabsf(t)));
        y[k] = v < FLT_MIN ? FLT_MIN : v; /* the floor (see the top); NaN stays */
    }
}

void ib__cpu_softplus_backward(const float *y, const float *dy, float *dx, int64_t n)
{
#pragma omp parallel for simd schedule(static) if (n > IB_PAR_MIN)
    for (int64_t k = 0; k < n; k++)
        dx[k] += dy[k] * -expm1f(-y[k]);
}

void ib__cpu_vlog(const float *x, float *y, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        y[k] = logf(x[k]);
}

void ib__cpu_vsincos(const float *x, float *s, float *c, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        s[k] = sinf(x[k]);
        c[k] = cosf(x[k]);
    }
}

void ib__cpu_vsincos_2pi(const float *u, float *s, float *c, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        sincos_2pi_1(u[k], &s[k], &c[k]);
}

double ib__cpu_kl_std_normal_row(const float *mu, const float *s, int64_t len)
{
    double acc = 0;
    for (int64_t j = 0; j < len; j++)
        acc += fmaf(mu[j], mu[j], fmaf(s[j], s[j], -1.0f)) - 2.0f * logf(s[j]);
    return 0.5 * acc;
}

#endif
