/*
 * corrupt_digital.c — contrast, elastic transform, pixelate, JPEG and the
 * extra saturate, with CIFAR-10-C's severity parameters.  Elastic and
 * pixelate are defined on the reference's 32-pixel side; here those
 * parameters are fractions of the image's side, so 32 x 32 images get the
 * reference values and other sizes a proportionate version.  JPEG goes
 * through libjpeg at the severity's quality with its default 4:2:0 chroma
 * subsampling (what PIL uses).
 */
#include "core/internal.h"
#include "data/corrupt_internal.h"

#include <jpeglib.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline float clip01(float v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static const double contrast_p[5] = {0.75, 0.5, 0.4, 0.3, 0.15};
/* (alpha, sigma, affine jitter) as fractions of the side: displacement
 * field strength, its smoothing, and the corner jitter of the affine part */
static const double elastic_p[5][3] = {
    {0.0, 0.0, 0.08}, {0.05, 0.2, 0.07}, {0.08, 0.06, 0.06}, {0.1, 0.04, 0.05}, {0.1, 0.03, 0.03}};
static const double pixelate_p[5] = {0.95, 0.9, 0.85, 0.75, 0.65};
static const int jpeg_quality[5] = {80, 65, 58, 50, 40};
/* (saturation factor, saturation offset) */
static const double saturate_p[5][2] = {{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}};

ib_status ib__corrupt_contrast(float *img, const ib__corrupt_ctx *k)
{
    float f = (float)contrast_p[k->sev - 1];
    int64_t hw = (int64_t)k->h * k->w;
    for (int ch = 0; ch < k->c; ch++) { /* towards each channel's own mean */
        float *p = img + ch * hw;
        double m = 0;
        for (int64_t i = 0; i < hw; i++)
            m += p[i];
        float mean = (float)(m / (double)hw);
        for (int64_t i = 0; i < hw; i++)
            p[i] = clip01((p[i] - mean) * f + mean);
    }
    return IB_OK;
}

/* ---- elastic transform ---- */

/* The 2x3 affine map sending the three points a[i] to b[i] (x, y pairs). */
static bool affine_from_points(const double a[3][2], const double b[3][2], double m[2][3])
{
    double det = a[0][0] * (a[1][1] - a[2][1]) - a[0][1] * (a[1][0] - a[2][0]) + (a[1][0] * a[2][1] - a[2][0] * a[1][1]);
    if (fabs(det) < 1e-12)
        return false;
    for (int r = 0; r < 2; r++) { /* Cramer's rule on [x y 1] (p q t)^T = b_r */
        double v0 = b[0][r], v1 = b[1][r], v2 = b[2][r];
        double dp = v0 * (a[1][1] - a[2][1]) - a[0][1] * (v1 - v2) + (v1 * a[2][1] - v2 * a[1][1]);
        double dq = a[0][0] * (v1 - v2) - v0 * (a[1][0] - a[2][0]) + (a[1][0] * v2 - a[2][0] * v1);
        double dt = a[0][0] * (a[1][1] * v2 - a[2][1] * v1) - a[0][1] * (a[1][0] * v2 - a[2][0] * v1) +
                    v0 * (a[1][0] * a[2][1] - a[2][0] * a[1][1]);
        m[r][0] = dp / det;
        m[r][1] = dq / det;
        m[r][2] = dt / det;
    }
    return true;
}

ib_status ib__corrupt_elastic(float *img, const ib__corrupt_ctx *k)
{
    int c = k->c, h = k->h, w = k->w;
    int64_t hw = (int64_t)h * w;
    double side = h < w ? h : w;
    double alpha = elastic_p[k->sev - 1][0] * side, sigma = elastic_p[k->sev - 1][1] * side;
    double jitter = elastic_p[k->sev - 1][2] * side;
    float *buf;
    ib_status s = ib__derived_alloc((void **)&buf, sizeof(float) * ((size_t)c * hw + 2 * (size_t)hw), "elastic");
    if (s != IB_OK)
        return s;
    float *warped = buf, *dx = buf + c * hw, *dy = dx + hw;

    /* Random affine: jitter three points around the centre (OpenCV's
     * getAffineTransform + warpAffine, bilinear, reflect-101 borders). */
    double cx = w / 2, cy = h / 2, sq = (int)side / 3;
    double p1[3][2] = {{cx + sq, cy + sq}, {cx + sq, cy - sq}, {cx - sq, cy - sq}}, p2[3][2], m[2][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            p2[i][j] = p1[i][j] + jitter * (2 * ib__u01(k->seed, k->stream, k->index, (uint64_t)(2 * i + j)) - 1);
    if (!affine_from_points(p1, p2, m)) {
        m[0][0] = m[1][1] = 1;
        m[0][1] = m[1][0] = m[0][2] = m[1][2] = 0;
    }
    /* warpAffine samples the source at the inverse map of each output pixel. */
    double det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    double ia = m[1][1] / det, ib = -m[0][1] / det, ic = -m[1][0] / det, id = m[0][0] / det;
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double u = x - m[0][2], v = y - m[1][2];
                double sx = ia * u + ib * v, sy = ic * u + id * v;
                warped[ch * hw + (int64_t)y * w + x] =
                    ib__bilinear(img + ch * hw, h, w, (float)sy, (float)sx, IB__BORDER_REFLECT101);
            }

    /* Smooth random displacement: U(-1, 1) fields blurred (scipy reflect
     * borders, truncate 3) and scaled by alpha; sampled bilinearly. */
    ib_rng_uniform(k->seed, k->stream ^ 1, k->index, dx, hw);
    ib_rng_uniform(k->seed, k->stream ^ 2, k->index, dy, hw);
    for (int64_t i = 0; i < hw; i++) {
        dx[i] = 2 * dx[i] - 1;
        dy[i] = 2 * dy[i] - 1;
    }
    ib__gaussian_blur_f(dx, 1, h, w, sigma, 3.0, IB__BORDER_REFLECT);
    ib__gaussian_blur_f(dy, 1, h, w, sigma, 3.0, IB__BORDER_REFLECT);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int64_t i = (int64_t)y * w + x;
                img[ch * hw + i] = clip01(ib__bilinear(warped + ch * hw, h, w, (float)(y + alpha * dy[i]),
                                                       (float)(x + alpha * dx[i]), IB__BORDER_REFLECT));
            }
    free(buf);
    return IB_OK;
}

/* ---- pixelate ---- */

/* One axis of PIL's BOX resampling, n_in -> n_out samples with stride
 * `stride` between samples and `count` lines: an output sample averages the
 * input samples whose centres fall in its box (nearest neighbour when
 * enlarging).  Results are rounded to 8 bits, as PIL keeps 8-bit planes. */
static void box_resample(const float *in, float *out, int n_in, int n_out, int lines, int64_t in_line,
                         int64_t out_line, int64_t in_stride, int64_t out_stride)
{
    double scale = (double)n_in / n_out, fs = scale > 1 ? scale : 1, support = 0.5 * fs;
    for (int o = 0; o < n_out; o++) {
        double centre = (o + 0.5) * scale;
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > n_in ? n_in : hi;
        double wsum = 0, wt[64];
        int m = 0;
        for (int j = lo; j < hi && m < 64; j++, m++) {
            double a = (j - centre + 0.5) / fs;
            wt[m] = (a > -0.5 && a <= 0.5) ? 1.0 : 0.0;
            wsum += wt[m];
        }
        for (int l = 0; l < lines; l++) {
            double acc = 0;
            for (int t = 0; t < m; t++)
                acc += wt[t] * in[l * in_line + (int64_t)(lo + t) * in_stride];
            float v = wsum > 0 ? (float)(acc / wsum) : 0.0f;
            out[l * out_line + (int64_t)o * out_stride] = roundf(clip01(v) * 255.0f) / 255.0f;
        }
    }
}

ib_status ib__corrupt_pixelate(float *img, const ib__corrupt_ctx *k)
{
    int c = k->c, h = k->h, w = k->w;
    double f = pixelate_p[k->sev - 1];
    int sh = (int)(h * f), sw = (int)(w * f);
    sh = sh < 1 ? 1 : sh;
    sw = sw < 1 ? 1 : sw;
    int64_t hw = (int64_t)h * w;
    float *buf;
    ib_status s = ib__derived_alloc((void **)&buf, sizeof(float) * 2 * (size_t)hw, "pixelate");
    if (s != IB_OK)
        return s;
    float *a = buf, *b = buf + hw; /* a: (h, sw), b: (sh, sw), then a: (sh, w), img: (h, w) */
    for (int ch = 0; ch < c; ch++) {
        float *p = img + ch * hw;
        box_resample(p, a, w, sw, h, w, sw, 1, 1);    /* rows shrink */
        box_resample(a, b, h, sh, sw, 1, 1, sw, sw);  /* columns shrink */
        box_resample(b, a, sw, w, sh, sw, w, 1, 1);   /* rows grow */
        box_resample(a, p, sh, h, w, 1, 1, w, w);     /* columns grow */
    }
    free(buf);
    return IB_OK;
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_t;

/* libjpeg's default error handler exits the process; jump back instead. */
static void jerr_exit(j_common_ptr cinfo)
{
    jerr_t *e = (jerr_t *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* Encode and decode one interleaved (h, w, comps) 8-bit image in place. */
static ib_status jpeg_roundtrip(uint8_t *pix, int h, int w, int comps, int quality)
{
    struct jpeg_compress_struct cc;
    struct jpeg_decompress_struct dc;
    jerr_t ce, de;
    unsigned char *mem = NULL;
    unsigned long size = 0;
    memset(&cc, 0, sizeof cc);
    memset(&dc, 0, sizeof dc);
    cc.err = jpeg_std_error(&ce.pub);
    ce.pub.error_exit = jerr_exit;
    if (setjmp(ce.jb)) {
        jpeg_destroy_compress(&cc);
        free(mem);
        return ib__error(IB_ERR_FORMAT, "jpeg corruption: libjpeg encoder: %s", ce.msg);
    }
    jpeg_create_compress(&cc);
    jpeg_mem_dest(&cc, &mem, &size);
    cc.image_width = (JDIMENSION)w;
    cc.image_height = (JDIMENSION)h;
    cc.input_components = comps;
    cc.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cc);
    jpeg_set_quality(&cc, quality, TRUE);
    jpeg_start_compress(&cc, TRUE);
    while (cc.next_scanline < cc.image_height) {
        JSAMPROW row = pix + (size_t)cc.next_scanline * w * comps;
        jpeg_write_scanlines(&cc, &row, 1);
    }
    jpeg_finish_compress(&cc);
    jpeg_destroy_compress(&cc);

    dc.err = jpeg_std_error(&de.pub);
    de.pub.error_exit = jerr_exit;
    if (setjmp(de.jb)) {
        jpeg_destroy_decompress(&dc);
        free(mem);
        return ib__error(IB_ERR_FORMAT, "jpeg corruption: libjpeg decoder: %s", de.msg);
    }
    jpeg_create_decompress(&dc);
    jpeg_mem_src(&dc, mem, size);
    jpeg_read_header(&dc, TRUE);
    dc.out_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(&dc);
    if ((int)dc.output_width != w || (int)dc.output_height != h || dc.output_components != comps) {
        jpeg_destroy_decompress(&dc);
        free(mem);
        return ib__error(IB_ERR_FORMAT, "jpeg corruption: decoded image has another shape");
    }
    while (dc.output_scanline < dc.output_height) {
        JSAMPROW row = pix + (size_t)dc.output_scanline * w * comps;
        jpeg_read_scanlines(&dc, &row, 1);
    }
    jpeg_finish_decompress(&dc);
    jpeg_destroy_decompress(&dc);
    free(mem);
    return IB_OK;
}

ib_status ib__corrupt_jpeg(float *img, const ib__corrupt_ctx *k)
{
    int comps = k->c >= 3 ? 3 : 1, h = k->h, w = k->w;
    int64_t hw = (int64_t)h * w;
    uint8_t *pix;
    ib_status s = ib__derived_alloc((void **)&pix, (size_t)hw * comps, "jpeg");
    if (s != IB_OK)
        return s;
    for (int64_t i = 0; i < hw; i++)
        for (int ch = 0; ch < comps; ch++)
            pix[i * comps + ch] = (uint8_t)roundf(clip01(img[ch * hw + i]) * 255.0f);
    s = jpeg_roundtrip(pix, h, w, comps, jpeg_quality[k->sev - 1]);
    if (s == IB_OK)
        for (int64_t i = 0; i < hw; i++)
            for (int ch = 0; ch < comps; ch++)
                img[ch * hw + i] = pix[i * comps + ch] / 255.0f;
    free(pix);
    return s;
}

/* ---- saturate ---- */

ib_status ib__corrupt_saturate(float *img, const ib__corrupt_ctx *k)
{
    if (k->c < 3)
        return IB_OK; /* a grey image has no saturation to change */
    double fac = saturate_p[k->sev - 1][0], off = saturate_p[k->sev - 1][1];
    int64_t hw = (int64_t)k->h * k->w;
    for (int64_t i = 0; i < hw; i++) {
        float *r = &img[i], *g = &img[hw + i], *b = &img[2 * hw + i];
        float v = fmaxf(*r, fmaxf(*g, *b)), mn = fminf(*r, fminf(*g, *b));
        float sat = v > 0 ? (v - mn) / v : 0;
        float s2 = clip01((float)(sat * fac + off));
        if (v <= 0)
            continue; /* V = 0 stays black whatever S is */
        if (sat <= 0) {
            /* Grey has hue 0 (red) in HSV, so added saturation tints it red,
             * as in the reference. */
            *r = v;
            *g = *b = v * (1 - s2);
            continue;
        }
        /* With hue and value fixed, each channel's distance below V scales with S. */
        float f = s2 / sat;
        *r = clip01(v - (v - *r) * f);
        *g = clip01(v - (v - *g) * f);
        *b = clip01(v - (v - *b) * f);
    }
    return IB_OK;
}
