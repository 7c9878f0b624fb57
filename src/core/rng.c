/*
 * rng.c — counter-based random numbers: Philox4x32-10 from Random123.
 * Element i of a draw keyed by (seed, stream, step) is computed from the
 * counter (i/4, stream, step) alone, so the numbers never depend on how
 * the work is split across threads.
 */
#include "internal.h"

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
/* (0, 1]: safe for log. */
static inline float u01_open0(uint32_t x) { return ((float)(x >> 8) + 1.0f) * (1.0f / 16777216.0f); }

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

void ib_rng_normal(uint64_t seed, uint64_t stream, uint64_t step, float *out, int64_t n)
{
    const float two_pi = 6.283185307179586f;
    int64_t nb = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > IB_PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        philox4x32_ctr_t r = block(seed ^ 0x5DEECE66Dull, stream, step, (uint64_t)b);
        float z[4];
        for (int j = 0; j < 4; j += 2) { /* Box-Muller on each pair */
            float rad = sqrtf(-2.0f * logf(u01_open0(r.v[j])));
            float ang = two_pi * u01(r.v[j + 1]);
            z[j] = rad * cosf(ang);
            z[j + 1] = rad * sinf(ang);
        }
        for (int j = 0; j < 4 && b * 4 + j < n; j++)
            out[b * 4 + j] = z[j];
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
