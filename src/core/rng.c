/*
 * rng.c — counter-based random numbers: Philox4x32-10 from Random123.
 * Element i of a draw keyed by (seed, stream, step) is computed from its
 * counter alone, so the numbers never depend on how the work is split
 * across threads.
 *
 * Normals come 32 at a time from 8 Philox blocks run side by side in AVX2
 * lanes (block 8g + l in lane l).  Element i = 32g + 8j + l takes word j
 * of block 8g + l, so each word vector is 8 consecutive outputs and needs
 * no shuffling.  Box-Muller pairs words (0, 1) and (2, 3): radius
 * sqrt(-2 log u1), u1 in (0, 1] from 24 bits, angle 2 pi u2 reduced in
 * turns, all with the 8-lane log and sincos of simd_math.h.  A partial
 * group goes through the same vector code.  (Until this generator, element
 * i took word i % 4 of block i / 4 and libm's log/sin/cos: the stream of
 * normals changed with it; uniforms and ib_rng_u64 did not change.)
 */
#include "internal.h"
#include "simd_math.h"

#include <math.h>
#include <Random123/philox.h>

static philox4x32_ctr_t block(uint64_t seed, uint64_t stream, uint64_t step, uint64_t b)
{
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    /* The stream is folded into 32 bits and the block and step share the
     * remaining words; draws up to 2^34 elements per (stream, step). */
    uint32_t s = (uint32_t)(stream ^ (stream >> 32));
    philox4x32_ctr_t c = {{(uint32_t)b, s, (uint32_t)step, (uint32_t)(step >> 32) ^ (uint32_t)(b >> 32) * 0x9E3779B9u}};
    return philox4x32(c, k);
}

/* 24 random bits -> [0, 1) exactly representable in float. */
static inline float u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

void ib_rng_uniform(uint64_t seed, uint64_t stream, uint64_t step, float *out, int64_t n)
{
    int64_t nb = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        philox4x32_ctr_t r = block(seed, stream, step, (uint64_t)b);
        for (int j = 0; j < 4 && b * 4 + j < n; j++)
            out[b * 4 + j] = u01(r.v[j]);
    }
}

void ib__rng_uniform_range(uint64_t seed, uint64_t stream, uint64_t step, int64_t first, float *out, int64_t n)
{
    if (first == 0) {
        ib_rng_uniform(seed, stream, step, out, n);
        return;
    }
    /* element k is word k % 4 of block k / 4, as in ib_rng_uniform */
    int64_t end = first + n, b0 = first / 4, b1 = (end + 3) / 4;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t b = b0; b < b1; b++) {
        philox4x32_ctr_t r = block(seed, stream, step, (uint64_t)b);
        for (int j = 0; j < 4; j++) {
            int64_t k = b * 4 + j;
            if (k >= first && k < end)
                out[k - first] = u01(r.v[j]);
        }
    }
}

#define NORMAL_KEY 0x5DEECE66Dull

#ifdef IB_SIMD_AVX2

/* hi and lo 32 bits of a * m in each lane (mul_epu32 multiplies the even
 * lanes; the odd ones are shifted down for a second multiply). */
static inline void mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo)
{
    __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* The 8 blocks 8g..8g+7 of (seed, stream, step): Random123's philox4x32
 * (10 rounds) with the counter of block() in each lane. */
static void philox8(uint64_t seed, uint32_t s, uint64_t step, uint64_t g, __m256i w[4])
{
    uint64_t b0 = 8 * g; /* the 8 blocks share b >> 32 (2^32 is a multiple of 8) */
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)b0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32((int)s), c2 = _mm256_set1_epi32((int)(uint32_t)step);
    __m256i c3 = _mm256_set1_epi32((int)((uint32_t)(step >> 32) ^ (uint32_t)(b0 >> 32) * 0x9E3779B9u));
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M4x32_0), m1 = _mm256_set1_epi32((int)PHILOX_M4x32_1);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo8(c0, m0, &hi0, &lo0);
        mulhilo8(c2, m1, &hi1, &lo1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
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
static inline void box_muller8(__m256i a, __m256i b, __m256 *c, __m256 *s)
{
    const __m256 scale = _mm256_set1_ps(1.0f / 16777216.0f);
    /* (x >> 8) + 1 in (0, 2^24], exact in float: u1 in (0, 1] */
    __m256 u1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(a, 8), _mm256_set1_epi32(1))),
                              scale);
    __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(b, 8)), scale);
    __m256 rad = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), ib__v_log_normal(u1)));
    __m256 sn, cs;
    ib__v_sincos_2pi(u2, &sn, &cs);
    *c = _mm256_mul_ps(rad, cs);
    *s = _mm256_mul_ps(rad, sn);
}

/* The 32 normals of group g into z (32 floats). */
static inline void normal_group(uint64_t seed, uint32_t s, uint64_t step, uint64_t g, float *z)
{
    __m256i w[4];
    __m256 a, b;
    philox8(seed, s, step, g, w);
    box_muller8(w[0], w[1], &a, &b);
    _mm256_storeu_ps(z, a);
    _mm256_storeu_ps(z + 8, b);
    box_muller8(w[2], w[3], &a, &b);
    _mm256_storeu_ps(z + 16, a);
    _mm256_storeu_ps(z + 24, b);
}

#else /* no AVX2: the same numbers element by element, with libm */

static void normal_group(uint64_t seed, uint32_t s, uint64_t step, uint64_t g, float *z)
{
    for (int l = 0; l < 8; l++) {
        philox4x32_ctr_t r = block(seed, s, step, 8 * g + (uint64_t)l);
        for (int j = 0; j < 4; j += 2) {
            float u1 = ((float)(r.v[j] >> 8) + 1.0f) * (1.0f / 16777216.0f), u2 = u01(r.v[j + 1]);
            float rad = sqrtf(-2.0f * logf(u1));
            z[8 * j + l] = rad * (float)cos(6.283185307179586 * u2);
            z[8 * j + 8 + l] = rad * (float)sin(6.283185307179586 * u2);
        }
    }
}

#endif

void ib__rng_normal_range(uint64_t seed, uint64_t stream, uint64_t step, int64_t first, float *out, int64_t n)
{
    if (n <= 0)
        return;
    seed ^= NORMAL_KEY;
    uint32_t s = (uint32_t)(stream ^ (stream >> 32));
    int64_t end = first + n;
    for (int64_t g = first / 32; g * 32 < end; g++) {
        int64_t lo = g * 32 > first ? g * 32 : first, hi = g * 32 + 32 < end ? g * 32 + 32 : end;
        if (hi - lo == 32) {
            normal_group(seed, s, step, (uint64_t)g, out + (lo - first));
        } else {
            float z[32];
            normal_group(seed, s, step, (uint64_t)g, z);
            memcpy(out + (lo - first), z + (lo - g * 32), (size_t)(hi - lo) * sizeof(float));
        }
    }
}

/* Chunks of whole groups, so a chunk never splits one. */
#define NORMAL_CHUNK 4096

void ib_rng_normal(uint64_t seed, uint64_t stream, uint64_t step, float *out, int64_t n)
{
    int64_t chunks = (n + NORMAL_CHUNK - 1) / NORMAL_CHUNK;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * NORMAL_CHUNK, len = n - lo < NORMAL_CHUNK ? n - lo : NORMAL_CHUNK;
        ib__rng_normal_range(seed, stream, step, lo, out + lo, len);
    }
}

uint64_t ib_rng_u64(uint64_t seed, uint64_t stream, uint64_t step, uint64_t index)
{
    philox4x32_ctr_t r = block(seed ^ 0xA5A5A5A5A5A5A5A5ull, stream, step, index);
    return (uint64_t)r.v[0] | ((uint64_t)r.v[1] << 32);
}

uint64_t ib_rng_stream_of(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}
