/*
 * corrupt_noise.c — the noise corruptions (Gaussian, shot, impulse,
 * speckle) with CIFAR-10-C's severity parameters.  Every element draws
 * its own keyed numbers, so channels get independent noise as in the
 * reference (which adds noise to the H x W x 3 array).
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdlib.h>

static inline float clip01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static const double gaussian_sigma[5] = {0.04, 0.06, 0.08, 0.09, 0.10};
static const double shot_photons[5] = {500, 250, 100, 75, 50};
static const double impulse_amount[5] = {0.01, 0.02, 0.03, 0.05, 0.07};
static const double speckle_sigma[5] = {0.06, 0.10, 0.12, 0.16, 0.20};

static ib_status with_normals(float *img, const ib__corrupt_ctx *k, double sigma, bool multiplicative)
{
    int64_t n = (int64_t)k->c * k->h * k->w;
    float *z;
    ib_status s = ib__derived_alloc((void **)&z, sizeof(float) * (size_t)n, "gaussian noise");
    if (s != IB_OK)
        return s;
    ib_rng_normal(k->seed, k->stream, k->index, z, n);
    for (int64_t i = 0; i < n; i++)
        img[i] = clip01(img[i] + (float)((multiplicative ? img[i] : 1.0f) * sigma * z[i]));
    free(z);
    return IB_OK;
}

ib_status ib__corrupt_gaussian_noise(float *img, const ib__corrupt_ctx *k)
{
    return with_normals(img, k, gaussian_sigma[k->sev - 1], false);
}

ib_status ib__corrupt_speckle_noise(float *img, const ib__corrupt_ctx *k)
{
    return with_normals(img, k, speckle_sigma[k->sev - 1], true);
}

/* A Poisson(lam) variate from the keyed uniforms u(j), j = 0, 1, ...:
 * inversion for small lam, Hormann's transformed rejection (PTRS, 1993)
 * for lam >= 10, whose acceptance rate is about 0.9 so few draws are used. */
typedef struct {
    uint64_t seed, stream, step, base;
    uint64_t j;
} draws;

static inline double next_u(draws *d) { return ib__u01(d->seed, d->stream, d->step, d->base + d->j++); }

static double poisson(double lam, draws *d)
{
    if (lam <= 0)
        return 0;
    if (lam < 10) {
        double u = next_u(d), p = exp(-lam), f = p;
        int k = 0;
        while (u > f && k < 1000) {
            k++;
            p *= lam / k;
            f += p;
        }
        return k;
    }
    double slam = sqrt(lam), loglam = log(lam);
    double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
    double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
    for (int iter = 0; iter < 1000; iter++) {
        double u = next_u(d) - 0.5, v = next_u(d);
        double us = 0.5 - fabs(u);
        double kk = floor((2 * a / us + b) * u + lam + 0.43);
        if (us >= 0.07 && v <= vr)
            return kk;
        if (kk < 0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <= -lam + kk * loglam - lgamma(kk + 1))
            return kk;
    }
    return floor(lam + 0.5); /* not reached in practice: acceptance is ~0.9 per try */
}

ib_status ib__corrupt_shot_noise(float *img, const ib__corrupt_ctx *k)
{
    double c = shot_photons[k->sev - 1];
    int64_t n = (int64_t)k->c * k->h * k->w;
    for (int64_t i = 0; i < n; i++) {
        /* Each element owns 2^20 counters of the step's sequence. */
        draws d = {k->seed, k->stream, k->index, (uint64_t)i << 20, 0};
        img[i] = clip01((float)(poisson(img[i] * c, &d) / c));
    }
    return IB_OK;
}

ib_status ib__corrupt_impulse_noise(float *img, const ib__corrupt_ctx *k)
{
    double amount = impulse_amount[k->sev - 1];
    int64_t n = (int64_t)k->c * k->h * k->w;
    float *u;
    ib_status s = ib__derived_alloc((void **)&u, sizeof(float) * 2 * (size_t)n, "impulse noise");
    if (s != IB_OK)
        return s;
    ib_rng_uniform(k->seed, k->stream, k->index, u, 2 * n);
    /* Salt and pepper: an element is replaced with probability amount, by
     * 1 or 0 with equal odds.  The same u marks the replaced elements at
     * every severity, so a higher severity replaces a superset. */
    for (int64_t i = 0; i < n; i++)
        if (u[i] < amount)
            img[i] = u[n + i] < 0.5f ? 1.0f : 0.0f;
    free(u);
    return IB_OK;
}
