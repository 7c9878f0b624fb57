/*
 * geometry.c — resampling shared by the derived data sets: border rules,
 * bilinear sampling, rotation (Rotated MNIST, the first view of Noisy
 * MNIST), Gaussian and motion blur, and the centred zoom that zoom blur
 * and snow use.  Kept in one place so every warp agrees on where a pixel
 * centre is (at integer coordinates) and on what lies outside the image.
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ib__border_index(int i, int n, ib__border b)
{
    if (i >= 0 && i < n)
        return i;
    switch (b) {
    case IB__BORDER_ZERO:
        return -1;
    case IB__BORDER_CLAMP:
        return i < 0 ? 0 : n - 1;
    case IB__BORDER_REFLECT: { /* period 2n: 0..n-1 then n-1..0 */
        int p = 2 * n;
        int m = ((i % p) + p) % p;
        return m < n ? m : p - 1 - m;
    }
    case IB__BORDER_REFLECT101: { /* period 2n-2: 0..n-1 then n-2..1 */
        if (n == 1)
            return 0;
        int p = 2 * n - 2;
        int m = ((i % p) + p) % p;
        return m < n ? m : p - m;
    }
    }
    return -1;
}

static inline float pix(const float *plane, int h, int w, int y, int x, ib__border b)
{
    int yy = ib__border_index(y, h, b), xx = ib__border_index(x, w, b);
    if (yy < 0 || xx < 0)
        return 0.0f;
    return plane[(int64_t)yy * w + xx];
}

float ib__bilinear(const float *plane, int h, int w, float y, float x, ib__border b)
{
    float fy = floorf(y), fx = floorf(x);
    /* Far outside the image (a huge displacement) every rule but zero gives
     * a valid pixel; keep the integer conversion in range. */
    if (!(fy > -1e6f && fy < 1e6f && fx > -1e6f && fx < 1e6f))
        return b == IB__BORDER_ZERO ? 0.0f : plane[0];
    int y0 = (int)fy, x0 = (int)fx;
    float ty = y - fy, tx = x - fx;
    float a = pix(plane, h, w, y0, x0, b), c = pix(plane, h, w, y0, x0 + 1, b);
    float d = pix(plane, h, w, y0 + 1, x0, b), e = pix(plane, h, w, y0 + 1, x0 + 1, b);
    return (1 - ty) * ((1 - tx) * a + tx * c) + ty * ((1 - tx) * d + tx * e);
}

/* sin and cos of a multiple of 90 degrees are exact, so 90-degree turns
 * move pixels without interpolation weights. */
static void sincos_deg(double deg, double *s, double *c)
{
    double q = deg / 90.0;
    if (q == floor(q) && fabs(q) < 1e9) {
        long k = ((long)q % 4 + 4) % 4;
        static const double S[4] = {0, 1, 0, -1}, C[4] = {1, 0, -1, 0};
        *s = S[k];
        *c = C[k];
        return;
    }
    double r = deg * 3.14159265358979323846 / 180.0;
    *s = sin(r);
    *c = cos(r);
}

void ib__rotate_f(const float *src, float *dst, int c, int h, int w, double deg)
{
    double s, co;
    sincos_deg(deg, &s, &co);
    double cy = (h - 1) * 0.5, cx = (w - 1) * 0.5;
    for (int ch = 0; ch < c; ch++) {
        const float *p = src + (int64_t)ch * h * w;
        float *q = dst + (int64_t)ch * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                /* The inverse map: output (dx, dy) reads source R(-deg)(dx, dy);
                 * with y down, a counter-clockwise turn is dx' = dx c + dy s,
                 * dy' = -dx s + dy c. */
                double dx = x - cx, dy = y - cy;
                double sx = dx * co - dy * s + cx, sy = dx * s + dy * co + cy;
                q[(int64_t)y * w + x] = ib__bilinear(p, h, w, (float)sy, (float)sx, IB__BORDER_ZERO);
            }
    }
}

void ib__gaussian_blur_f(float *img, int c, int h, int w, double sigma, double truncate, ib__border b)
{
    if (!(sigma > 0))
        return;
    int r = (int)(truncate * sigma + 0.5);
    if (r < 1)
        return; /* scipy: a radius-0 kernel is the identity */
    float *k = malloc(sizeof(float) * (size_t)(2 * r + 1));
    int n = h > w ? h : w;
    float *line = malloc(sizeof(float) * (size_t)n);
    if (!k || !line) {
        free(k);
        free(line);
        return;
    }
    double sum = 0;
    for (int i = -r; i <= r; i++)
        sum += exp(-0.5 * i * i / (sigma * sigma));
    for (int i = -r; i <= r; i++)
        k[i + r] = (float)(exp(-0.5 * i * i / (sigma * sigma)) / sum);
    for (int ch = 0; ch < c; ch++) {
        float *p = img + (int64_t)ch * h * w;
        for (int y = 0; y < h; y++) { /* rows */
            float *row = p + (int64_t)y * w;
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int i = -r; i <= r; i++)
                    acc += k[i + r] * row[ib__border_index(x + i, w, b)];
                line[x] = (float)acc;
            }
            memcpy(row, line, sizeof(float) * (size_t)w);
        }
        for (int x = 0; x < w; x++) { /* columns */
            for (int y = 0; y < h; y++) {
                double acc = 0;
                for (int i = -r; i <= r; i++)
                    acc += k[i + r] * p[(int64_t)ib__border_index(y + i, h, b) * w + x];
                line[y] = (float)acc;
            }
            for (int y = 0; y < h; y++)
                p[(int64_t)y * w + x] = line[y];
        }
    }
    free(k);
    free(line);
}

/* Source coordinate of output index o when n_in samples are stretched
 * corner to corner over n_out (scipy.ndimage.zoom without grid_mode). */
static inline double zoom_coord(int o, int n_in, int n_out)
{
    return n_out > 1 ? (double)o * (n_in - 1) / (n_out - 1) : 0.0;
}

void ib__clipped_zoom_f(const float *src, float *dst, int c, int h, int w, double z)
{
    int chh = (int)ceil(h / z), chw = (int)ceil(w / z);
    if (chh > h)
        chh = h;
    if (chw > w)
        chw = w;
    int top = (h - chh) / 2, left = (w - chw) / 2;
    int oh = (int)lround(chh * z), ow = (int)lround(chw * z);
    int trim_t = (oh - h) / 2, trim_l = (ow - w) / 2;
    for (int ch = 0; ch < c; ch++) {
        const float *p = src + (int64_t)ch * h * w;
        float *q = dst + (int64_t)ch * h * w;
        for (int y = 0; y < h; y++) {
            double sy = top + zoom_coord(y + trim_t, chh, oh);
            for (int x = 0; x < w; x++) {
                double sx = left + zoom_coord(x + trim_l, chw, ow);
                q[(int64_t)y * w + x] = ib__bilinear(p, h, w, (float)sy, (float)sx, IB__BORDER_CLAMP);
            }
        }
    }
}

void ib__motion_blur_f(const float *src, float *dst, int c, int h, int w, double radius, double sigma,
                       double angle_deg)
{
    int width = radius > 0 ? 2 * (int)ceil(radius) + 1 : 1;
    double g[256];
    int ox[256], oy[256];
    if (width > 256)
        width = 256;
    double a = angle_deg * 3.14159265358979323846 / 180.0, sum = 0;
    for (int i = 0; i < width; i++) {
        g[i] = sigma > 0 ? exp(-(double)i * i / (2 * sigma * sigma)) : (i == 0);
        sum += g[i];
        ox[i] = (int)ceil(i * cos(a) - 0.5);
        oy[i] = (int)ceil(i * sin(a) - 0.5);
    }
    for (int ch = 0; ch < c; ch++) {
        const float *p = src + (int64_t)ch * h * w;
        float *q = dst + (int64_t)ch * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int i = 0; i < width; i++)
                    acc += g[i] * p[(int64_t)ib__border_index(y + oy[i], h, IB__BORDER_CLAMP) * w +
                                    ib__border_index(x + ox[i], w, IB__BORDER_CLAMP)];
                q[(int64_t)y * w + x] = (float)(acc / sum);
            }
    }
}

double ib__u01(uint64_t seed, uint64_t stream, uint64_t step, uint64_t index)
{
    return (double)(ib_rng_u64(seed, stream, step, index) >> 11) * (1.0 / 9007199254740992.0);
}

void ib__quantize_f(float *img, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = img[i] < 0 ? 0 : img[i] > 1 ? 1 : img[i];
        img[i] = roundf(v * 255.0f) / 255.0f;
    }
}

ib_status ib__derived_alloc(void **out, size_t n_bytes, const char *what)
{
    *out = malloc(n_bytes ? n_bytes : 1);
    if (!*out)
        return ib__error(IB_ERR_NOMEM, "%s: cannot allocate %zu bytes", what, n_bytes);
    return IB_OK;
}

ib_dataset *ib__dataset_like(const ib_dataset *src, int64_t n, const char *name)
{
    ib_dataset *d = ib_dataset_new(name ? name : src->name, n, src->c, src->h, src->w, src->classes);
    if (!d)
        return NULL;
    if (src->class_names && ib_dataset_set_class_names(d, (const char *const *)src->class_names, src->classes) != IB_OK) {
        ib_dataset_free(d);
        return NULL;
    }
    return d;
}

ib_status ib_image_rotate(const uint8_t *src, uint8_t *dst, int c, int h, int w, float deg)
{
    if (!src || !dst || c <= 0 || h <= 0 || w <= 0)
        return ib__error(IB_ERR_ARG, "ib_image_rotate: bad image (c=%d h=%d w=%d)", c, h, w);
    if (!isfinite(deg))
        return ib__error(IB_ERR_ARG, "ib_image_rotate: angle is not finite");
    int64_t n = (int64_t)c * h * w;
    float *a, *b;
    ib_status s = ib__derived_alloc((void **)&a, sizeof(float) * 2 * (size_t)n, "ib_image_rotate");
    if (s != IB_OK)
        return s;
    b = a + n;
    for (int64_t i = 0; i < n; i++)
        a[i] = src[i];
    ib__rotate_f(a, b, c, h, w, deg);
    for (int64_t i = 0; i < n; i++) {
        float v = roundf(b[i]);
        dst[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    free(a);
    return IB_OK;
}

ib_status ib_dataset_rotate(const ib_dataset *src, float deg, ib_dataset **out)
{
    if (!out)
        return ib__error(IB_ERR_ARG, "ib_dataset_rotate: out is NULL");
    *out = NULL;
    if (!src)
        return ib__error(IB_ERR_ARG, "ib_dataset_rotate: src is NULL");
    ib_dataset *d = ib__dataset_like(src, src->n, NULL);
    if (!d)
        return IB_ERR_NOMEM;
    memcpy(d->labels, src->labels, sizeof(int32_t) * (size_t)src->n);
    int64_t sz = (int64_t)src->c * src->h * src->w;
    ib_status st = IB_OK;
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < src->n; i++) {
        ib_status si = ib_image_rotate(src->images + i * sz, d->images + i * sz, src->c, src->h, src->w, deg);
        if (si != IB_OK) {
#pragma omp critical
            st = si;
        }
    }
    if (st != IB_OK) {
        ib_dataset_free(d);
        return st;
    }
    *out = d;
    return IB_OK;
}
