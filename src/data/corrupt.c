/*
 * corrupt.c — the common-corruption benchmark's front door: names, the
 * dispatch from ib_corruption to each family's function (corrupt_noise.c,
 * corrupt_blur.c, corrupt_weather.c, corrupt_digital.c), the uint8 <->
 * float conversion done once per image, and corrupting a whole data set.
 * Each family file holds its own severity table, next to the code that
 * reads it, so a parameter and its meaning are read together.
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef ib_status (*corrupt_fn)(float *img, const ib__corrupt_ctx *k);

static const struct {
    const char *name;
    corrupt_fn fn;
} table[IB_CORRUPT_COUNT] = {
    [IB_CORRUPT_GAUSSIAN_NOISE] = {"gaussian_noise", ib__corrupt_gaussian_noise},
    [IB_CORRUPT_SHOT_NOISE] = {"shot_noise", ib__corrupt_shot_noise},
    [IB_CORRUPT_IMPULSE_NOISE] = {"impulse_noise", ib__corrupt_impulse_noise},
    [IB_CORRUPT_DEFOCUS_BLUR] = {"defocus_blur", ib__corrupt_defocus_blur},
    [IB_CORRUPT_GLASS_BLUR] = {"glass_blur", ib__corrupt_glass_blur},
    [IB_CORRUPT_MOTION_BLUR] = {"motion_blur", ib__corrupt_motion_blur},
    [IB_CORRUPT_ZOOM_BLUR] = {"zoom_blur", ib__corrupt_zoom_blur},
    [IB_CORRUPT_SNOW] = {"snow", ib__corrupt_snow},
    [IB_CORRUPT_FOG] = {"fog", ib__corrupt_fog},
    [IB_CORRUPT_BRIGHTNESS] = {"brightness", ib__corrupt_brightness},
    [IB_CORRUPT_CONTRAST] = {"contrast", ib__corrupt_contrast},
    [IB_CORRUPT_ELASTIC] = {"elastic_transform", ib__corrupt_elastic},
    [IB_CORRUPT_PIXELATE] = {"pixelate", ib__corrupt_pixelate},
    [IB_CORRUPT_JPEG] = {"jpeg_compression", ib__corrupt_jpeg},
    [IB_CORRUPT_SPECKLE_NOISE] = {"speckle_noise", ib__corrupt_speckle_noise},
    [IB_CORRUPT_GAUSSIAN_BLUR] = {"gaussian_blur", ib__corrupt_gaussian_blur},
    [IB_CORRUPT_SATURATE] = {"saturate", ib__corrupt_saturate},
};

const char *ib_corruption_name(ib_corruption t)
{
    if ((int)t < 0 || t >= IB_CORRUPT_COUNT)
        return NULL;
    return table[t].name;
}

ib_status ib_corruption_parse(const char *s, ib_corruption *out)
{
    if (!s || !out)
        return ib__error(IB_ERR_ARG, "ib_corruption_parse: NULL argument");
    for (int t = 0; t < IB_CORRUPT_COUNT; t++)
        if (strcmp(s, table[t].name) == 0) {
            *out = (ib_corruption)t;
            return IB_OK;
        }
    /* Short aliases people type: "elastic", "jpeg". */
    if (strcmp(s, "elastic") == 0) {
        *out = IB_CORRUPT_ELASTIC;
        return IB_OK;
    }
    if (strcmp(s, "jpeg") == 0) {
        *out = IB_CORRUPT_JPEG;
        return IB_OK;
    }
    return ib__error(IB_ERR_ARG, "unknown corruption '%s' (known: gaussian_noise, shot_noise, impulse_noise, "
                                 "defocus_blur, glass_blur, motion_blur, zoom_blur, snow, fog, brightness, contrast, "
                                 "elastic_transform, pixelate, jpeg_compression, speckle_noise, gaussian_blur, "
                                 "saturate)",
                     s);
}

/* Corrupt with a caller-provided float buffer of c*h*w (no allocation per image). */
static ib_status corrupt_with(uint8_t *img, float *f, int c, int h, int w, ib_corruption type, int severity,
                              uint64_t seed, uint64_t index)
{
    int64_t n = (int64_t)c * h * w;
    for (int64_t i = 0; i < n; i++)
        f[i] = img[i] * (1.0f / 255.0f);
    /* One stream per corruption type, so two types never share noise. */
    char key[48];
    snprintf(key, sizeof key, "corrupt/%s", table[type].name);
    ib__corrupt_ctx k = {seed, ib_rng_stream_of(key), index, c, h, w, severity};
    ib_status s = table[type].fn(f, &k);
    if (s != IB_OK)
        return s;
    for (int64_t i = 0; i < n; i++) {
        float v = f[i] != f[i] ? 0.0f : f[i] * 255.0f; /* NaN cannot arise, but never write garbage */
        v = roundf(v);
        img[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return IB_OK;
}

static ib_status check_args(const char *who, int c, int h, int w, ib_corruption type, int severity)
{
    if ((int)type < 0 || type >= IB_CORRUPT_COUNT)
        return ib__error(IB_ERR_ARG, "%s: unknown corruption %d", who, (int)type);
    if (severity < 1 || severity > 5)
        return ib__error(IB_ERR_ARG, "%s: severity %d is outside 1..5", who, severity);
    if (c <= 0 || h <= 0 || w <= 0 || (int64_t)c * h * w > ((int64_t)1 << 30))
        return ib__error(IB_ERR_ARG, "%s: bad image size c=%d h=%d w=%d", who, c, h, w);
    return IB_OK;
}

ib_status ib_corrupt_image(uint8_t *img, int c, int h, int w, ib_corruption type, int severity, uint64_t seed,
                           uint64_t index)
{
    ib_status s = check_args("ib_corrupt_image", c, h, w, type, severity);
    if (s != IB_OK)
        return s;
    if (!img)
        return ib__error(IB_ERR_ARG, "ib_corrupt_image: img is NULL");
    float *f;
    s = ib__derived_alloc((void **)&f, sizeof(float) * (size_t)c * h * w, "ib_corrupt_image");
    if (s != IB_OK)
        return s;
    s = corrupt_with(img, f, c, h, w, type, severity, seed, index);
    free(f);
    return s;
}

ib_status ib_dataset_corrupt(const ib_dataset *src, ib_corruption type, int severity, uint64_t seed,
                             ib_dataset **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_dataset_corrupt: out is NULL");
    *out = NULL;
    if (!src)
        return ib__error(IB_ERR_ARG, "ib_dataset_corrupt: src is NULL");
    ib_status s = check_args("ib_dataset_corrupt", src->c, src->h, src->w, type, severity);
    if (s != IB_OK)
        return s;
    char name[64];
    snprintf(name, sizeof name, "%.32s-%s-%d", src->name, table[type].name, severity);
    ib_dataset *d = ib__dataset_like(src, src->n, name);
    if (!d)
        return IB_ERR_NOMEM;
    memcpy(d->labels, src->labels, sizeof(int32_t) * (size_t)src->n);
    if (src->clean_labels) {
        d->clean_labels = malloc(sizeof(int32_t) * (size_t)src->n);
        if (!d->clean_labels) {
            ib_dataset_free(d);
            return ib__error(IB_ERR_NOMEM, "ib_dataset_corrupt: no memory for clean labels");
        }
        memcpy(d->clean_labels, src->clean_labels, sizeof(int32_t) * (size_t)src->n);
    }
    int64_t sz = (int64_t)src->c * src->h * src->w;
    memcpy(d->images, src->images, (size_t)(sz * src->n));
    ib_status st = IB_OK;
    /* Images are independent and keyed by index: any split over threads
     * gives the same bytes. */
#pragma omp parallel
    {
        float *f = malloc(sizeof(float) * (size_t)sz);
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < src->n; i++) {
            ib_status si = f ? corrupt_with(d->images + i * sz, f, src->c, src->h, src->w, type, severity, seed,
                                            (uint64_t)i)
                             : ib__error(IB_ERR_NOMEM, "ib_dataset_corrupt: no memory for a work image");
            if (si != IB_OK) {
#pragma omp critical
                st = si;
            }
        }
        free(f);
    }
    if (st != IB_OK) {
        ib_dataset_free(d);
        return st;
    }
    *out = d;
    return IB_OK;
}
