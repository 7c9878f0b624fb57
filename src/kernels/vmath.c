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
 *
 * The vector bodies are written once (vmath_w.h) and instantiated at 8
 * lanes (AVX2+FMA) and 16 (AVX-512); each entry point below takes the
 * 16-lane form where ib__cpu_avx512() says the CPU has the units (and
 * IBNET_ISA=avx2 does not forbid it).  Both give the same bits, the KL's
 * row sum included (tests/test_vmath_avx512.c); the scalar libm passes
 * over the far tails are shared.
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

#ifdef IB_SIMD_AVX2

#define IB_W 8
#include "vmath_w.h"
#undef IB_W
#define IB_W 16
#include "vmath_w.h"
#undef IB_W

/* Elements per parallel chunk of softplus: a multiple of both widths, so
 * only the last chunk has a partial block. */
#define SOFTPLUS_CHUNK 4096

void ib__cpu_softplus_forward(const float *x, float shift, float *y, int64_t n)
{
    const bool wide = ib__cpu_avx512();
    int64_t chunks = (n + SOFTPLUS_CHUNK - 1) / SOFTPLUS_CHUNK;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * SOFTPLUS_CHUNK, len = n - lo < SOFTPLUS_CHUNK ? n - lo : SOFTPLUS_CHUNK;
        if (wide)
            ib__v16_softplus_forward(x + lo, shift, y + lo, len);
        else
            ib__v8_softplus_forward(x + lo, shift, y + lo, len);
    }
    for (int64_t k = 0; k < n; k++) /* the tail near the subnormals: libm, floored */
        if (x[k] + shift < -86.0f)
            y[k] = fmaxf(log1pf(expf(x[k] + shift)), FLT_MIN);
}

void ib__cpu_softplus_backward(const float *y, const float *dy, float *dx, int64_t n)
{
    const bool wide = ib__cpu_avx512();
    int64_t chunks = (n + SOFTPLUS_CHUNK - 1) / SOFTPLUS_CHUNK;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * SOFTPLUS_CHUNK, len = n - lo < SOFTPLUS_CHUNK ? n - lo : SOFTPLUS_CHUNK;
        if (wide)
            ib__v16_softplus_backward(y + lo, dy + lo, dx + lo, len);
        else
            ib__v8_softplus_backward(y + lo, dy + lo, dx + lo, len);
    }
}

void ib__cpu_vlog(const float *x, float *y, int64_t n)
{
    if (ib__cpu_avx512())
        ib__v16_vlog(x, y, n);
    else
        ib__v8_vlog(x, y, n);
}

static void sincos_map(const float *x, float *s, float *c, int64_t n, bool turns)
{
    if (ib__cpu_avx512())
        ib__v16_sincos_map(x, s, c, n, turns);
    else
        ib__v8_sincos_map(x, s, c, n, turns);
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

double ib__cpu_kl_std_normal_row(const float *mu, const float *s, int64_t len)
{
    return ib__cpu_avx512() ? ib__v16_kl_std_normal_row(mu, s, len) : ib__v8_kl_std_normal_row(mu, s, len);
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
