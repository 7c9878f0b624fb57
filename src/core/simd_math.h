/*
 * simd_math.h — 8-lane (AVX2+FMA) log and sincos, static inline so that
 * the Philox normal generator (rng.c) and the vector-math kernels of
 * src/kernels/vmath.c inline them into their own loops.  They live in core
 * because the generator needs them and core includes nothing of
 * src/kernels/; the kernels include this file.  IB_SIMD_AVX2 is defined
 * when the build has AVX2+FMA (the default build: -mavx2 -mfma); without
 * it callers take their scalar libm paths.  Accuracy: a few ulp
 * (tests/test_vmath.c checks the array forms against double).
 */
#ifndef IB_SIMD_MATH_H
#define IB_SIMD_MATH_H

#if defined(__AVX2__) && defined(__FMA__)
#define IB_SIMD_AVX2 1
#include <immintrin.h>
#include <math.h>

/* log(x) for positive normal x (no special cases: the fast path for
 * arguments known to be in range).  x = 2^e (1 + f) with 1 + f in
 * [sqrt(1/2), sqrt(2)); with s = f/(2+f), log(1+f) = 2 atanh(s) =
 * f - (f^2/2 - s (f^2/2 + R)), R = 2s^2/3 + 2s^4/5 + ... to s^10
 * (truncation below 2^-30 relative), so the rounding of s only touches
 * a small correction; e ln2 with ln2 split so that e * hi is exact. */
static inline __m256 ib__v_log_normal(__m256 x)
{
    __m256i xi = _mm256_castps_si256(x);
    __m256i e = _mm256_srai_epi32(_mm256_sub_epi32(xi, _mm256_set1_epi32(0x3f3504f3)), 23); /* sqrt(1/2) */
    __m256 m = _mm256_castsi256_ps(_mm256_sub_epi32(xi, _mm256_slli_epi32(e, 23)));
    __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f)); /* exact (Sterbenz) */
    __m256 s = _mm256_div_ps(f, _mm256_add_ps(_mm256_set1_ps(2.0f), f)), z = _mm256_mul_ps(s, s);
    __m256 p = _mm256_set1_ps(2.0f / 11.0f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.0f / 9.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.0f / 7.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.0f / 5.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.0f / 3.0f));
    __m256 R = _mm256_mul_ps(p, z), hfsq = _mm256_mul_ps(_mm256_mul_ps(f, f), _mm256_set1_ps(0.5f));
    __m256 ef = _mm256_cvtepi32_ps(e);
    __m256 corr = _mm256_fmadd_ps(s, _mm256_add_ps(hfsq, R), _mm256_mul_ps(ef, _mm256_set1_ps(1.428606765330187e-06f)));
    __m256 lm = _mm256_sub_ps(f, _mm256_sub_ps(hfsq, corr));
    return _mm256_fmadd_ps(ef, _mm256_set1_ps(0.693145751953125f), lm);
}

/* log(x) for every float, as logf: subnormals rescaled by 2^23 first;
 * 0 -> -inf, negative or NaN -> NaN, +inf -> +inf. */
static inline __m256 ib__v_log(__m256 x)
{
    __m256 sub = _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8388608.0f)), sub);
    __m256 r = ib__v_log_normal(xs);
    r = _mm256_sub_ps(r, _mm256_and_ps(sub, _mm256_set1_ps(15.942385152878742f))); /* 23 ln2 */
    r = _mm256_blendv_ps(r, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
    /* x < 0 or NaN: NaN */
    return _mm256_blendv_ps(r, _mm256_set1_ps(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ));
}

/* sin and cos of q pi/2 + r, |r| <= pi/4: Taylor polynomials to r^11 and
 * r^12 (truncation below 2^-28 relative on that interval), then the
 * quadrant's swap and signs. */
static inline void ib__v_sincos_core(__m256i q, __m256 r, __m256 *s, __m256 *c)
{
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 ps = _mm256_set1_ps(-1.0f / 39916800.0f);
    ps = _mm256_fmadd_ps(ps, r2, _mm256_set1_ps(1.0f / 362880.0f));
    ps = _mm256_fmadd_ps(ps, r2, _mm256_set1_ps(-1.0f / 5040.0f));
    ps = _mm256_fmadd_ps(ps, r2, _mm256_set1_ps(1.0f / 120.0f));
    ps = _mm256_fmadd_ps(ps, r2, _mm256_set1_ps(-1.0f / 6.0f));
    __m256 sn = _mm256_fmadd_ps(_mm256_mul_ps(ps, r2), r, r);
    __m256 pc = _mm256_set1_ps(1.0f / 479001600.0f);
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(-1.0f / 3628800.0f));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(1.0f / 40320.0f));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(-1.0f / 720.0f));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(1.0f / 24.0f));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(-0.5f));
    __m256 cs = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(1.0f));
    __m256 swap = _mm256_castsi256_ps(_mm256_slli_epi32(q, 31)); /* odd quadrant: sign bit set */
    __m256 sv = _mm256_blendv_ps(sn, cs, swap), cv = _mm256_blendv_ps(cs, sn, swap);
    __m256i one = _mm256_set1_epi32(1);
    __m256 sneg = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(q, 1), one), 31));
    __m256 cneg = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(_mm256_add_epi32(q, one), 1), one), 31));
    *s = _mm256_xor_ps(sv, sneg);
    *c = _mm256_xor_ps(cv, cneg);
}

/* sin and cos of x, |x| <= 8192: x = q pi/2 + r with pi/2 in four parts
 * (8, 12, 24 and 24 bits; the fourth keeps r accurate where x is near a
 * multiple of pi/2 and r is tiny). */
static inline void ib__v_sincos(__m256 x, __m256 *s, __m256 *c)
{
    __m256 qf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.636619772367581343f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(1.5703125f), x);
    r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(4.837512969970703125e-4f), r);
    r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(7.54978995489188216e-8f), r);
    r = _mm256_fnmadd_ps(qf, _mm256_set1_ps(-1.7151245100058819e-15f), r);
    ib__v_sincos_core(_mm256_cvtps_epi32(qf), r, s, c);
}

/* sin and cos of 2 pi u: u = q/4 + t exactly (|t| <= 1/8), r = 2 pi t. */
static inline void ib__v_sincos_2pi(__m256 u, __m256 *s, __m256 *c)
{
    __m256 qf = _mm256_round_ps(_mm256_mul_ps(u, _mm256_set1_ps(4.0f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 t = _mm256_fnmadd_ps(qf, _mm256_set1_ps(0.25f), u);
    ib__v_sincos_core(_mm256_cvtps_epi32(qf), _mm256_mul_ps(t, _mm256_set1_ps(6.28318530717958648f)), s, c);
}
#endif

#endif
