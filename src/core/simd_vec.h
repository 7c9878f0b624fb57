/*
 * simd_vec.h — the vocabulary of the width-generic vector kernels: the
 * same names stand for the AVX2 intrinsics (IB_W 8: __m256) or the
 * AVX-512 ones (IB_W 16: __m512).  A kernel written once in these names
 * (simd_math_w.h, kernels/vmath_w.h, rng_normal_w.h) is instantiated at
 * both widths by defining IB_W and including it; every lane then does the
 * same float32 operations in the same order at either width, so the two
 * instantiations give the same bits per element (tests/test_vmath_avx512.c).
 *
 * No include guard on purpose: each inclusion defines the names for the
 * IB_W in force (undefining the previous width's first).  The 16-lane
 * functions carry IB_VTARGET (compiled for the AVX-512 units whatever the
 * build's flags) and are called only where ib__cpu_avx512() says the CPU
 * has them.  The differences the names hide are where AVX-512 does things
 * another way: a comparison gives a bit mask (__mmask16) instead of a
 * vector of all-ones lanes, so select, zero-masking and "sign bit set" are
 * names of their own.
 */
#include <immintrin.h>

#undef IB_VTARGET
#undef IB_VFN
#undef IB_V
#undef IB_V_
#undef IB_V__
#undef VF
#undef VI
#undef VM
#undef VSET1
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VSQRT
#undef VFMADD
#undef VFNMADD
#undef VFMSUB
#undef VMIN
#undef VMAX
#undef VXOR
#undef VANDNOT
#undef VROUND
#undef VCMP
#undef VSELECT
#undef VMASKZ
#undef VSIGNMASK
#undef VI2F
#undef VF2I
#undef VASI
#undef VASF
#undef VSET1I
#undef VADDI
#undef VSUBI
#undef VANDI
#undef VXORI
#undef VSLLI
#undef VSRLI
#undef VSRAI
#undef VMULU32
#undef VSRLI64
#undef VSLLI64
#undef VBLENDODD
#undef VLANES

/* IB_V(log) is ib__v8_log or ib__v16_log */
#define IB_V(name) IB_V_(IB_W, name)
#define IB_V_(w, name) IB_V__(w, name)
#define IB_V__(w, name) ib__v##w##_##name

#if IB_W == 8

#define IB_VTARGET /* the build's own -mavx2 -mfma */
#define VF __m256
#define VI __m256i
#define VM __m256 /* a lane mask: lanes of all ones or all zeros */
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps(p, v)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VSQRT(a) _mm256_sqrt_ps(a)
#define VFMADD(a, b, c) _mm256_fmadd_ps(a, b, c)   /* a b + c */
#define VFNMADD(a, b, c) _mm256_fnmadd_ps(a, b, c) /* c - a b */
#define VFMSUB(a, b, c) _mm256_fmsub_ps(a, b, c)   /* a b - c */
#define VMIN(a, b) _mm256_min_ps(a, b)             /* b where either is NaN */
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VXOR(a, b) _mm256_xor_ps(a, b)
#define VANDNOT(a, b) _mm256_andnot_ps(a, b) /* ~a & b */
#define VROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VCMP(a, b, pred) _mm256_cmp_ps(a, b, pred)
#define VSELECT(m, a, b) _mm256_blendv_ps(a, b, m) /* m ? b : a */
#define VMASKZ(m, a) _mm256_and_ps(m, a)           /* m ? a : 0 */
#define VSIGNMASK(i) _mm256_castsi256_ps(i)        /* lanes whose int has its sign bit set */
#define VI2F(i) _mm256_cvtepi32_ps(i)
#define VF2I(a) _mm256_cvtps_epi32(a) /* rounding to nearest */
#define VASI(a) _mm256_castps_si256(a)
#define VASF(i) _mm256_castsi256_ps(i)
#define VSET1I(x) _mm256_set1_epi32(x)
#define VADDI(a, b) _mm256_add_epi32(a, b)
#define VSUBI(a, b) _mm256_sub_epi32(a, b)
#define VANDI(a, b) _mm256_and_si256(a, b)
#define VXORI(a, b) _mm256_xor_si256(a, b)
#define VSLLI(a, n) _mm256_slli_epi32(a, n)
#define VSRLI(a, n) _mm256_srli_epi32(a, n)
#define VSRAI(a, n) _mm256_srai_epi32(a, n)
#define VMULU32(a, b) _mm256_mul_epu32(a, b) /* even 32-bit lanes -> 64-bit products */
#define VSRLI64(a, n) _mm256_srli_epi64(a, n)
#define VSLLI64(a, n) _mm256_slli_epi64(a, n)
#define VBLENDODD(a, b) _mm256_blend_epi32(a, b, 0xAA) /* odd lanes from b */
#define VLANES() _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)

#elif IB_W == 16

/* The Skylake-X set that ib__cpu_avx512() checks for (dq: float and/xor
 * and the sign-bit mask; vl, bw: what compilers may use for the halves). */
#define IB_VTARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#define VF __m512
#define VI __m512i
#define VM __mmask16
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VSQRT(a) _mm512_sqrt_ps(a)
#define VFMADD(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFNMADD(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define VFMSUB(a, b, c) _mm512_fmsub_ps(a, b, c)
#define VMIN(a, b) _mm512_min_ps(a, b) /* the same NaN rule as vminps on 8 lanes */
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VXOR(a, b) _mm512_xor_ps(a, b)
#define VANDNOT(a, b) _mm512_andnot_ps(a, b)
#define VROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VCMP(a, b, pred) _mm512_cmp_ps_mask(a, b, pred)
#define VSELECT(m, a, b) _mm512_mask_blend_ps(m, a, b)
#define VMASKZ(m, a) _mm512_maskz_mov_ps(m, a)
#define VSIGNMASK(i) _mm512_movepi32_mask(i)
#define VI2F(i) _mm512_cvtepi32_ps(i)
#define VF2I(a) _mm512_cvtps_epi32(a)
#define VASI(a) _mm512_castps_si512(a)
#define VASF(i) _mm512_castsi512_ps(i)
#define VSET1I(x) _mm512_set1_epi32(x)
#define VADDI(a, b) _mm512_add_epi32(a, b)
#define VSUBI(a, b) _mm512_sub_epi32(a, b)
#define VANDI(a, b) _mm512_and_si512(a, b)
#define VXORI(a, b) _mm512_xor_si512(a, b)
#define VSLLI(a, n) _mm512_slli_epi32(a, n)
#define VSRLI(a, n) _mm512_srli_epi32(a, n)
#define VSRAI(a, n) _mm512_srai_epi32(a, n)
#define VMULU32(a, b) _mm512_mul_epu32(a, b)
#define VSRLI64(a, n) _mm512_srli_epi64(a, n)
#define VSLLI64(a, n) _mm512_slli_epi64(a, n)
#define VBLENDODD(a, b) _mm512_mask_blend_epi32(0xAAAA, a, b)
#define VLANES() _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

#else
#error "simd_vec.h: IB_W must be 8 or 16"
#endif

/* the helpers the kernels inline into their loops */
#define IB_VFN static inline IB_VTARGET
