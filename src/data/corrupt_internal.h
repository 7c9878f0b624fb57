/*
 * corrupt_internal.h — what the derived-data files (corrupt*.c, geometry.c,
 * domains.c, multiview.c) share: float image helpers and the per-family
 * corruption entry points.  Images here are planar (c, h, w) floats in
 * [0, 1]; the public calls convert from and to uint8 once, so chained steps
 * do not lose precision (except where the reference quantises on purpose).
 */
#ifndef IB_DATA_CORRUPT_INTERNAL_H
#define IB_DATA_CORRUPT_INTERNAL_H

#include "ibnet.h"

#include <stdint.h>

/* How a sample outside the image is read. */
typedef enum ib__border {
    IB__BORDER_ZERO,       /* 0 (rotation's zero fill) */
    IB__BORDER_CLAMP,      /* nearest edge pixel: a a a | a b c (ImageMagick "edge", scipy "nearest") */
    IB__BORDER_REFLECT,    /* half-sample symmetric: b a | a b c (scipy "reflect") */
    IB__BORDER_REFLECT101  /* whole-sample symmetric: c b | a b c (OpenCV's default) */
} ib__border;

/* Index i mapped into [0, n) under the border rule; -1 for IB__BORDER_ZERO outside. */
int ib__border_index(int i, int n, ib__border b);

/* Bilinear sample of one plane (h, w) at (y, x) in pixel coordinates
 * (pixel centres at integers). */
float ib__bilinear(const float *plane, int h, int w, float y, float x, ib__border b);

/* Rotation of every plane by deg degrees counter-clockwise (as displayed,
 * y pointing down) about the image centre ((w-1)/2, (h-1)/2), bilinear,
 * zero fill.  dst and src must not overlap. */
void ib__rotate_f(const float *src, float *dst, int c, int h, int w, double deg);

/* Separable Gaussian blur of each plane in place; the kernel radius is
 * (int)(truncate * sigma + 0.5) (scipy's rule); sigma <= 0 is a no-op. */
void ib__gaussian_blur_f(float *img, int c, int h, int w, double sigma, double truncate, ib__border b);

/* scipy-style zoom about the centre, cropped back to (h, w): the central
 * ceil(h/z) x ceil(w/z) window is resized with linear interpolation
 * (corner-aligned, as scipy.ndimage.zoom order 1) to round(size*z) and the
 * centre (h, w) taken.  z >= 1. */
void ib__clipped_zoom_f(const float *src, float *dst, int c, int h, int w, double z);

/* ImageMagick-style motion blur: out(p) = sum_k g_k in(p + round(k * dir)),
 * k = 0 .. 2*ceil(radius), g_k proportional to exp(-k^2 / (2 sigma^2)),
 * dir = (cos a, sin a) in (x, y), edge pixels repeated.  One-sided: the
 * streak trails in one direction, as with MagickMotionBlurImage. */
void ib__motion_blur_f(const float *src, float *dst, int c, int h, int w, double radius, double sigma,
                       double angle_deg);

/* Uniform in [0, 1) with 53 bits from the keyed generator. */
double ib__u01(uint64_t seed, uint64_t stream, uint64_t step, uint64_t index);

/* Round and clip [0, 1] floats to uint8 and back: for the steps where the
 * reference stores an 8-bit image between operations. */
void ib__quantize_f(float *img, int64_t n);

/* A uint8 buffer of n_bytes; IB_ERR_NOMEM (with a message naming what) on failure. */
ib_status ib__derived_alloc(void **out, size_t n_bytes, const char *what);

/* A new data set shaped like src (same name unless name is given, sizes,
 * classes, class names copied; labels copied; images zeroed) of n
 * images; NULL with ib_last_error set on failure. */
ib_dataset *ib__dataset_like(const ib_dataset *src, int64_t n, const char *name);

/* Per-family corruptions: img is (c, h, w) in [0, 1], modified in place;
 * sev is 1..5; (seed, stream, index) key every random draw. */
typedef struct ib__corrupt_ctx {
    uint64_t seed, stream, index;
    int c, h, w, sev;
} ib__corrupt_ctx;

ib_status ib__corrupt_gaussian_noise(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_shot_noise(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_impulse_noise(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_speckle_noise(float *img, const ib__corrupt_ctx *k);

ib_status ib__corrupt_defocus_blur(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_glass_blur(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_motion_blur(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_zoom_blur(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_gaussian_blur(float *img, const ib__corrupt_ctx *k);

ib_status ib__corrupt_snow(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_fog(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_brightness(float *img, const ib__corrupt_ctx *k);

ib_status ib__corrupt_contrast(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_elastic(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_pixelate(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_jpeg(float *img, const ib__corrupt_ctx *k);
ib_status ib__corrupt_saturate(float *img, const ib__corrupt_ctx *k);

#endif
