/*
 * simd_math.h — vector log and sincos, static inline so that the Philox
 * normal generator (rng.c) and the vector-math kernels of
 * src/kernels/vmath.c inline them into their own loops.  They live in core
 * because the generator needs them and core includes nothing of
 * src/kernels/; the kernels include this file.  IB_SIMD_AVX2 is defined
 * when the build has AVX2+FMA (the default build: -mavx2 -mfma); without
 * it callers take their scalar libm paths.
 *
 * Each function is written once (simd_math_w.h) and comes at two widths:
 * ib__v8_* on 8 lanes (AVX2+FMA, __m256) and ib__v16_* on 16 lanes
 * (AVX-512, __m512, compiled for those units by a function attribute and
 * called only where ib__cpu_avx512() is true).  Lane for lane they do the
 * same float32 operations, so the two give the same bits.
 */
#ifndef IB_SIMD_MATH_H
#define IB_SIMD_MATH_H

#if defined(__AVX2__) && defined(__FMA__)
#define IB_SIMD_AVX2 1
#include <math.h>

#define IB_W 8
#include "simd_math_w.h"
#undef IB_W
#define IB_W 16
#include "simd_math_w.h"
#undef IB_W
#endif

#endif
