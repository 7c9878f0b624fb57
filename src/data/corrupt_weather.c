/*
 * corrupt_weather.c — snow, fog and brightness with CIFAR-10-C's severity
 * parameters, made without image assets: snow is synthesised as in the
 * reference (thresholded Gaussian noise, zoomed, streaked by a motion
 * blur, added twice — once turned 180 degrees), fog is a diamond-square
 * plasma fractal.  Frost, the fourth weather corruption, blends in
 * photographs of frost and is left out (docs/corruptions.md).
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline float clip01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* (mean, std, zoom, threshold, blur radius, blur sigma, blend) */
static const double snow_p[5][7] = {{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
                                    {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
                                    {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
                                    {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
                                    {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}};
/* (fog strength, wibble decay of the fractal: lower = rougher) */
static const double fog_p[5][2] = {{0.2, 3}, {0.5, 3}, {0.75, 2.5}, {1, 2}, {1.5, 1.75}};
static const double brightness_p[5] = {0.05, 0.1, 0.15, 0.2, 0.3};

/* Grey value of pixel i: ITU-R 601 luma (OpenCV's RGB2GRAY) for colour,
 * the channel itself for grey. */
static inline float grey(const float *img, int c, int64_t hw, int64_t i)
{
    if (c >= 3)
        return 0.299f * img[i] + 0.587f * img[hw + i] + 0.114f * img[2 * hw + i];
    return img[i];
}

ib_status ib__corrupt_snow(float *img, const ib__corrupt_ctx *k)
{
    const double *p = snow_p[k->sev - 1];
    int c = k->c, h = k->h, w = k->w;
    int64_t hw = (int64_t)h * w;
    float *buf;
    ib_status s = ib__derived_alloc((void **)&buf, sizeof(float) * 3 * (size_t)hw, "snow");
    if (s != IB_OK)
        return s;
    float *layer = buf, *z = buf + hw, *streak = buf + 2 * hw;
    ib_rng_normal(k->seed, k->stream, k->index, layer, hw);
    for (int64_t i = 0; i < hw; i++)
        layer[i] = (float)(p[0] + p[1] * layer[i]);
    ib__clipped_zoom_f(layer, z, 1, h, w, p[2]);
    for (int64_t i = 0; i < hw; i++)
        z[i] = z[i] < p[3] ? 0.0f : z[i];
    ib__quantize_f(z, hw); /* the reference stores the flakes as an 8-bit PNG before blurring */
    double angle = -135 + 90 * ib__u01(k->seed, k->stream ^ 1, k->index, 0);
    ib__motion_blur_f(z, streak, 1, h, w, p[4], p[5], angle);
    int cc = c >= 3 ? 3 : 1;
    float blend = (float)p[6];
    for (int64_t i = 0; i < hw; i++) {
        /* Whiten the scene a little (snow light), then add the flakes and
         * the same flakes turned 180 degrees. */
        float g = grey(img, c, hw, i) * 1.5f + 0.5f;
        float flakes = streak[i] + streak[hw - 1 - i];
        for (int ch = 0; ch < cc; ch++) {
            float x = img[ch * hw + i];
            x = blend * x + (1 - blend) * (x > g ? x : g);
            img[ch * hw + i] = clip01(x + flakes);
        }
    }
    free(buf);
    return IB_OK;
}

/* Diamond-square plasma on an n x n torus (n a power of two): corner
 * values start at 0, each level sets midpoints to the mean of their four
 * neighbours plus noise of amplitude wibble^2 (wibble starts at 100 and
 * is divided by decay each level), then the map is scaled to [0, 1]. */
static void plasma(double *m, int n, double decay, const ib__corrupt_ctx *k)
{
    uint64_t ctr = 0;
    double wibble = 100;
    m[0] = 0;
#define M(y, x) m[(int64_t)(((y) % n + n) % n) * n + (((x) % n + n) % n)]
    for (int st = n; st >= 2; st /= 2) {
        int hs = st / 2;
        for (int y = 0; y < n; y += st) /* squares: centres from four corners */
            for (int x = 0; x < n; x += st) {
                double sum = M(y, x) + M(y + st, x) + M(y, x + st) + M(y + st, x + st);
                double u = ib__u01(k->seed, k->stream, k->index, ctr++);
                M(y + hs, x + hs) = sum / 4 + wibble * (2 * u - 1) * wibble;
            }
        for (int y = 0; y < n; y += st) /* diamonds on the rows of corners */
            for (int x = 0; x < n; x += st) {
                double sum = M(y + hs, x + hs) + M(y - hs, x + hs) + M(y, x) + M(y, x + st);
                double u = ib__u01(k->seed, k->stream, k->index, ctr++);
                M(y, x + hs) = sum / 4 + wibble * (2 * u - 1) * wibble;
            }
        for (int y = 0; y < n; y += st) /* diamonds on the columns of corners */
            for (int x = 0; x < n; x += st) {
                double sum = M(y + hs, x + hs) + M(y + hs, x - hs) + M(y, x) + M(y + st, x);
                double u = ib__u01(k->seed, k->stream, k->index, ctr++);
                M(y + hs, x) = sum / 4 + wibble * (2 * u - 1) * wibble;
            }
        wibble /= decay;
    }
#undef M
    double lo = m[0], hi = m[0];
    for (int64_t i = 0; i < (int64_t)n * n; i++) {
        lo = m[i] < lo ? m[i] : lo;
        hi = m[i] > hi ? m[i] : hi;
    }
    for (int64_t i = 0; i < (int64_t)n * n; i++)
        m[i] = hi > lo ? (m[i] - lo) / (hi - lo) : 0;
}

ib_status ib__corrupt_fog(float *img, const ib__corrupt_ctx *k)
{
    double strength = fog_p[k->sev - 1][0], decay = fog_p[k->sev - 1][1];
    int c = k->c, h = k->h, w = k->w;
    int64_t hw = (int64_t)h * w;
    /* The reference draws a 32 x 32 map and crops it to the image; other
     * sizes take the smallest power of two that covers the image. */
    int n = 2;
    while (n < h || n < w)
        n *= 2;
    double *m;
    ib_status s = ib__derived_alloc((void **)&m, sizeof(double) * (size_t)n * n, "fog");
    if (s != IB_OK)
        return s;
    plasma(m, n, decay, k);
    float mx = 0;
    for (int64_t i = 0; i < c * hw; i++)
        mx = img[i] > mx ? img[i] : mx;
    /* Add the fog, then scale so that the brightest original pixel plus
     * full fog maps to the original maximum. */
    float scale = (float)(mx / (mx + strength));
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float *v = &img[ch * hw + (int64_t)y * w + x];
                *v = clip01((*v + (float)(strength * m[(int64_t)y * n + x])) * scale);
            }
    free(m);
    return IB_OK;
}

ib_status ib__corrupt_brightness(float *img, const ib__corrupt_ctx *k)
{
    float add = (float)brightness_p[k->sev - 1];
    int64_t hw = (int64_t)k->h * k->w;
    if (k->c < 3) { /* grey: the value channel is the pixel */
        for (int64_t i = 0; i < hw; i++)
            img[i] = clip01(img[i] + add);
        return IB_OK;
    }
    /* HSV value + add with hue and saturation kept: with V = max(r, g, b),
     * every channel scales by V'/V; black (S = 0) becomes grey V'. */
    for (int64_t i = 0; i < hw; i++) {
        float r = img[i], g = img[hw + i], b = img[2 * hw + i];
        float v = r > g ? (r > b ? r : b) : (g > b ? g : b);
        float v2 = clip01(v + add);
        if (v <= 0) {
            img[i] = img[hw + i] = img[2 * hw + i] = v2;
        } else {
            float f = v2 / v;
            img[i] = clip01(r * f);
            img[hw + i] = clip01(g * f);
            img[2 * hw + i] = clip01(b * f);
        }
    }
    return IB_OK;
}
