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
 * turns, all with the vector log and sincos of simd_math.h.  A partial
 * group goes through the same vector code.  Where the CPU has AVX-512,
 * pairs of whole groups run in 16 lanes (rng_normal_w.h: the same code,
 * the same normals).  (Until this generator, element
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

#define IB_W 8
#include "rng_normal_w.h"
#undef IB_W
#define IB_W 16
#include "rng_normal_w.h"
#undef IB_W

static void normal_group(uint64_t seed, uint32_t s, uint64_t step, uint64_t g, float *z)
{
    ib__v8_normal_groups(seed, s, step, g, z);
}

/* Groups g and g + 1 (g even) at 16 lanes where the CPU has AVX-512;
 * false where it does not, and the caller goes one group at a time. */
static bool normal_group_pair(bool wide, uint64_t seed, uint32_t s, uint64_t step, uint64_t g, float *z)
{
    if (!wide)
        return false;
    ib__v16_normal_groups(seed, s, step, g, z);
    return true;
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

static bool normal_group_pair(bool wide, uint64_t seed, uint32_t s, uint64_t step, uint64_t g, float *z)
{
    (void)wide, (void)seed, (void)s, (void)step, (void)g, (void)z;
    return false;
}

#endif

void ib__rng_normal_range(uint64_t seed, uint64_t stream, uint64_t step, int64_t first, float *out, int64_t n)
{
    if (n <= 0)
        return;
    seed ^= NORMAL_KEY;
    uint32_t s = (uint32_t)(stream ^ (stream >> 32));
    int64_t end = first + n;
    const bool wide = ib__cpu_avx512();
    for (int64_t g = first / 32; g * 32 < end; g++) {
        /* two whole groups at once from an even g (see philox's b >> 32) */
        if (g % 2 == 0 && g * 32 >= first && g * 32 + 64 <= end &&
            normal_group_pair(wide, seed, s, step, (uint64_t)g, out + (g * 32 - first))) {
            g++;
            continue;
        }
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
