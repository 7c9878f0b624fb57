/*
 * rng_normal_w.h — rng.c's vector normal generator (Philox4x32-10 in
 * lanes, then Box-Muller), written once in simd_vec.h's width-generic
 * names; rng.c instantiates it at 8 lanes (one 32-normal group a call) and
 * 16 lanes (two groups a call, on AVX-512).  Lane l works on Philox block
 * 8g + l at either width, the integer rounds are exact and Box-Muller does
 * the same float32 operations per lane, so both widths give the same
 * normals.  No include guard: included once per width with IB_W defined.
 */
#include "simd_vec.h"

/* hi and lo 32 bits of a * m in each lane (mul_epu32 multiplies the even
 * lanes; the odd ones are shifted down for a second multiply). */
IB_VFN void IB_V(mulhilo)(VI a, VI m, VI *hi, VI *lo)
{
    VI even = VMULU32(a, m), odd = VMULU32(VSRLI64(a, 32), m);
    *hi = VBLENDODD(VSRLI64(even, 32), odd);
    *lo = VBLENDODD(even, VSLLI64(odd, 32));
}

/* The IB_W blocks 8g .. 8g + IB_W - 1 of (seed, stream, step): Random123's
 * philox4x32 (10 rounds) with the counter of block() in each lane.  The
 * blocks must share b >> 32: true for any g at 8 lanes (2^32 is a
 * multiple of 8), and for even g at 16. */
IB_VFN void IB_V(philox)(uint64_t seed, uint32_t s, uint64_t step, uint64_t g, VI w[4])
{
    uint64_t b0 = 8 * g;
    VI c0 = VADDI(VSET1I((int)(uint32_t)b0), VLANES());
    VI c1 = VSET1I((int)s), c2 = VSET1I((int)(uint32_t)step);
    VI c3 = VSET1I((int)((uint32_t)(step >> 32) ^ (uint32_t)(b0 >> 32) * 0x9E3779B9u));
    const VI m0 = VSET1I((int)PHILOX_M4x32_0), m1 = VSET1I((int)PHILOX_M4x32_1);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        VI hi0, lo0, hi1, lo1;
        IB_V(mulhilo)(c0, m0, &hi0, &lo0);
        IB_V(mulhilo)(c2, m1, &hi1, &lo1);
        c0 = VXORI(VXORI(hi1, c1), VSET1I((int)k0));
        c1 = lo1;
        c2 = VXORI(VXORI(hi0, c3), VSET1I((int)k1));
        c3 = lo0;
        k0 += PHILOX_W32_0;
        k1 += PHILOX_W32_1;
    }
    w[0] = c0;
    w[1] = c1;
    w[2] = c2;
    w[3] = c3;
}

/* Box-Muller on a pair of word vectors: cos half to c, sin half to s. */
IB_VFN void IB_V(box_muller)(VI a, VI b, VF *c, VF *s)
{
    const VF scale = VSET1(1.0f / 16777216.0f);
    /* (x >> 8) + 1 in (0, 2^24], exact in float: u1 in (0, 1] */
    VF u1 = VMUL(VI2F(VADDI(VSRLI(a, 8), VSET1I(1))), scale);
    VF u2 = VMUL(VI2F(VSRLI(b, 8)), scale);
    VF rad = VSQRT(VMUL(VSET1(-2.0f), IB_V(log_normal)(u1)));
    VF sn, cs;
    IB_V(sincos_2pi)(u2, &sn, &cs);
    *c = VMUL(rad, cs);
    *s = VMUL(rad, sn);
}

/* Word vector j of the groups into z: lanes 8h .. 8h + 7 are outputs
 * 8j .. 8j + 7 of group g + h, which starts at z + 32 h. */
IB_VFN void IB_V(store_word)(float *z, int j, VF v)
{
#if IB_W == 8
    _mm256_storeu_ps(z + 8 * j, v);
#else
    _mm256_storeu_ps(z + 8 * j, _mm512_castps512_ps256(v));
    _mm256_storeu_ps(z + 32 + 8 * j, _mm512_extractf32x8_ps(v, 1));
#endif
}

/* The 32 IB_W / 8 normals of groups g .. g + IB_W / 8 - 1 into z. */
IB_VFN void IB_V(normal_groups)(uint64_t seed, uint32_t s, uint64_t step, uint64_t g, float *z)
{
    VI w[4];
    VF a, b;
    IB_V(philox)(seed, s, step, g, w);
    IB_V(box_muller)(w[0], w[1], &a, &b);
    IB_V(store_word)(z, 0, a);
    IB_V(store_word)(z, 1, b);
    IB_V(box_muller)(w[2], w[3], &a, &b);
    IB_V(store_word)(z, 2, a);
    IB_V(store_word)(z, 3, b);
}
