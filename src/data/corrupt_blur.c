/*
 * corrupt_blur.c — the blur corruptions (defocus, glass, motion, zoom and
 * the extra Gaussian blur) with CIFAR-10-C's severity parameters.  The
 * reference mixes OpenCV (reflect-101 borders), scikit-image (nearest
 * borders) and ImageMagick (edge borders, one-sided motion kernel); each
 * step here uses the border rule of the library the reference used for it.
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* (disk radius, Gaussian sigma that antialiases the disk) */
static const double defocus_p[5][2] = {{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}};
/* (sigma, max_delta, iterations) */
static const double glass_p[5][3] = {{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}};
/* (radius, sigma) of the ImageMagick motion blur */
static const double motion_p[5][2] = {{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}};
/* zoom factors 1.00, 1.01, ... : numpy's arange(1, 1 + top, 0.01) holds
 * 7, 12, 16, 21, 26 values for the five severities (float rounding
 * includes the end point at severities 1 and 2). */
static const int zoom_count[5] = {7, 12, 16, 21, 26};
static const double gblur_sigma[5] = {0.4, 0.6, 0.7, 0.8, 1.0};

/* 2-D correlation of each plane with a (kh, kw) kernel centred at
 * (kh/2, kw/2), reflect-101 borders (cv2.filter2D's default). */
static void filter2d(float *img, float *tmp, int c, int h, int w, const float *ker, int kh, int kw)
{
    int ry = kh / 2, rx = kw / 2;
    for (int ch = 0; ch < c; ch++) {
        float *p = img + (int64_t)ch * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int i = 0; i < kh; i++) {
                    int yy = ib__border_index(y + i - ry, h, IB__BORDER_REFLECT101);
                    for (int j = 0; j < kw; j++)
                        acc += ker[i * kw + j] * p[(int64_t)yy * w + ib__border_index(x + j - rx, w, IB__BORDER_REFLECT101)];
                }
                tmp[(int64_t)y * w + x] = (float)acc;
            }
        memcpy(p, tmp, sizeof(float) * (size_t)h * w);
    }
}

ib_status ib__corrupt_defocus_blur(float *img, const ib__corrupt_ctx *k)
{
    double radius = defocus_p[k->sev - 1][0], alias = defocus_p[k->sev - 1][1];
    /* The disk lives on a grid of half-width max(8, radius) and is
     * antialiased by a 3x3 Gaussian (5x5 beyond radius 8), as in the
     * reference; then the kernel is cropped to its non-zero part. */
    int half = radius <= 8 ? 8 : (int)ceil(radius);
    int ks = radius <= 8 ? 3 : 5, n = 2 * half + 1;
    float *disk = calloc((size_t)n * n * 2, sizeof(float));
    if (!disk)
        return ib__error(IB_ERR_NOMEM, "defocus blur: no memory for the kernel");
    float *blur = disk + n * n;
    double sum = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double y = i - half, x = j - half;
            disk[i * n + j] = x * x + y * y <= radius * radius;
            sum += disk[i * n + j];
        }
    for (int i = 0; i < n * n; i++)
        disk[i] = (float)(disk[i] / sum);
    double g[5], gs = 0;
    for (int i = 0; i < ks; i++) {
        double d = i - (ks - 1) / 2.0;
        g[i] = exp(-d * d / (2 * alias * alias));
        gs += g[i];
    }
    for (int i = 0; i < ks; i++)
        g[i] /= gs;
    int lo = n, hi = -1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int a = 0; a < ks; a++)
                for (int b = 0; b < ks; b++) {
                    int ii = ib__border_index(i + a - ks / 2, n, IB__BORDER_REFLECT101);
                    int jj = ib__border_index(j + b - ks / 2, n, IB__BORDER_REFLECT101);
                    acc += g[a] * g[b] * disk[ii * n + jj];
                }
            blur[i * n + j] = (float)acc;
            if (acc > 0) {
                lo = i < lo ? i : lo;
                hi = i > hi ? i : hi;
            }
        }
    /* The kernel is symmetric, so its support is a centred square [lo, hi]^2. */
    int m = hi - lo + 1;
    float *ker = malloc(sizeof(float) * ((size_t)m * m + (size_t)k->h * k->w));
    if (!ker) {
        free(disk);
        return ib__error(IB_ERR_NOMEM, "defocus blur: no memory");
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++)
            ker[i * m + j] = blur[(lo + i) * n + lo + j];
    filter2d(img, ker + m * m, k->c, k->h, k->w, ker, m, m);
    free(ker);
    free(disk);
    return IB_OK;
}

ib_status ib__corrupt_glass_blur(float *img, const ib__corrupt_ctx *k)
{
    double sigma = glass_p[k->sev - 1][0];
    int delta = (int)glass_p[k->sev - 1][1], iters = (int)glass_p[k->sev - 1][2];
    int c = k->c, h = k->h, w = k->w;
    int64_t hw = (int64_t)h * w;
    ib__gaussian_blur_f(img, c, h, w, sigma, 4.0, IB__BORDER_CLAMP);
    ib__quantize_f(img, c * hw); /* the reference stores uint8 here */
    /* Local shuffle: walking up from the bottom-right, each pixel takes
     * the value of the neighbour at (dy, dx) drawn from [-delta, delta)
     * (randint excludes the upper end).  The reference writes a swap, but on
     * its H x W x 3 arrays the two sides are numpy views, so the "swap"
     * copies the neighbour in and leaves the neighbour as it was; that is
     * what CIFAR-10-C contains, so that is what we do (for every channel
     * count).  A true swap would carry pixels many steps up-left. */
    uint64_t counter = 0;
    for (int it = 0; it < iters; it++)
        for (int y = h - delta; y > delta; y--)
            for (int x = w - delta; x > delta; x--) {
                uint64_t r = ib_rng_u64(k->seed, k->stream, k->index, counter++);
                int dx = (int)((r & 0xffffffffu) % (uint64_t)(2 * delta)) - delta;
                int dy = (int)((r >> 32) % (uint64_t)(2 * delta)) - delta;
                int y2 = y + dy, x2 = x + dx;
                if (y >= h || x >= w || y2 < 0 || x2 < 0 || y2 >= h || x2 >= w)
                    continue;
                for (int ch = 0; ch < c; ch++) {
                    float *p = img + ch * hw;
                    p[(int64_t)y * w + x] = p[(int64_t)y2 * w + x2];
                }
            }
    ib__gaussian_blur_f(img, c, h, w, sigma, 4.0, IB__BORDER_CLAMP);
    return IB_OK;
}

ib_status ib__corrupt_motion_blur(float *img, const ib__corrupt_ctx *k)
{
    int64_t n = (int64_t)k->c * k->h * k->w;
    float *tmp;
    ib_status s = ib__derived_alloc((void **)&tmp, sizeof(float) * (size_t)n, "motion blur");
    if (s != IB_OK)
        return s;
    double angle = -45 + 90 * ib__u01(k->seed, k->stream, k->index, 0);
    ib__motion_blur_f(img, tmp, k->c, k->h, k->w, motion_p[k->sev - 1][0], motion_p[k->sev - 1][1], angle);
    memcpy(img, tmp, sizeof(float) * (size_t)n);
    free(tmp);
    return IB_OK;
}

ib_status ib__corrupt_zoom_blur(float *img, const ib__corrupt_ctx *k)
{
    int64_t n = (int64_t)k->c * k->h * k->w;
    float *buf;
    ib_status s = ib__derived_alloc((void **)&buf, sizeof(float) * 2 * (size_t)n, "zoom blur");
    if (s != IB_OK)
        return s;
    float *acc = buf, *z = buf + n;
    int count = zoom_count[k->sev - 1];
    memcpy(acc, img, sizeof(float) * (size_t)n);
    for (int j = 0; j < count; j++) {
        ib__clipped_zoom_f(img, z, k->c, k->h, k->w, 1.0 + 0.01 * j);
        for (int64_t i = 0; i < n; i++)
            acc[i] += z[i];
    }
    /* The original counts twice: once itself, once as zoom factor 1.00. */
    for (int64_t i = 0; i < n; i++)
        img[i] = acc[i] / (float)(count + 1);
    free(buf);
    return IB_OK;
}

ib_status ib__corrupt_gaussian_blur(float *img, const ib__corrupt_ctx *k)
{
    ib__gaussian_blur_f(img, k->c, k->h, k->w, gblur_sigma[k->sev - 1], 4.0, IB__BORDER_CLAMP);
    return IB_OK;
}
