/*
 * png_write.c — 8-bit PNG output of planar uint8 images and of grids of
 * them (libpng): how a person looks at corrupted or derived data, and a
 * building block for plots.  Errors come back as IB_ERR_IO naming the
 * file; libpng's longjmp is caught here and never reaches the caller.
 */
#include "core/internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Write an interleaved (h, w, c) buffer. */
static ib_status write_interleaved(const char *path, const uint8_t *pix, int c, int h, int w)
{
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGB_ALPHA};
    FILE *f = fopen(path, "wb");
    if (!f)
        return ib__error(IB_ERR_IO, "%s: cannot open for writing", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return ib__error(IB_ERR_NOMEM, "%s: libpng could not start", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return ib__error(IB_ERR_IO, "%s: libpng failed while writing", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[c], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(pix + (size_t)y * w * c));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        return ib__error(IB_ERR_IO, "%s: error closing the file", path);
    return IB_OK;
}

ib_status ib_png_write(const char *path, const uint8_t *img, int c, int h, int w)
{
    if (!path || !img || c < 1 || c > 4 || h <= 0 || w <= 0 || (int64_t)h * w > ((int64_t)1 << 28))
        return ib__error(IB_ERR_ARG, "ib_png_write(%s): need an image with 1..4 channels and a positive size (got c=%d h=%d w=%d)",
                         path ? path : "NULL", c, h, w);
    int64_t hw = (int64_t)h * w;
    uint8_t *pix = malloc((size_t)(hw * c));
    if (!pix)
        return ib__error(IB_ERR_NOMEM, "ib_png_write(%s): no memory", path);
    for (int64_t i = 0; i < hw; i++)
        for (int ch = 0; ch < c; ch++)
            pix[i * c + ch] = img[ch * hw + i];
    ib_status s = write_interleaved(path, pix, c, h, w);
    free(pix);
    return s;
}

ib_status ib_png_write_grid(const char *path, const uint8_t *imgs, int n, int c, int h, int w, int cols, int pad,
                            int scale, uint8_t background)
{
    if (!path || !imgs || n <= 0 || c < 1 || c > 4 || h <= 0 || w <= 0 || cols <= 0 || pad < 0 || scale < 1)
        return ib__error(IB_ERR_ARG, "ib_png_write_grid(%s): bad arguments (n=%d c=%d h=%d w=%d cols=%d pad=%d scale=%d)",
                         path ? path : "NULL", n, c, h, w, cols, pad, scale);
    int rows = (n + cols - 1) / cols;
    int64_t th = (int64_t)h * scale, tw = (int64_t)w * scale;
    int64_t H = rows * (th + pad) + pad, W = cols * (tw + pad) + pad;
    if (H * W > ((int64_t)1 << 28))
        return ib__error(IB_ERR_ARG, "ib_png_write_grid(%s): a %lldx%lld grid is too large", path, (long long)H,
                         (long long)W);
    uint8_t *pix = malloc((size_t)(H * W * c));
    if (!pix)
        return ib__error(IB_ERR_NOMEM, "ib_png_write_grid(%s): no memory", path);
    memset(pix, background, (size_t)(H * W * c));
    int64_t hw = (int64_t)h * w;
    for (int t = 0; t < n; t++) {
        int64_t oy = pad + (t / cols) * (th + pad), ox = pad + (t % cols) * (tw + pad);
        const uint8_t *img = imgs + (int64_t)t * c * hw;
        for (int64_t y = 0; y < th; y++)
            for (int64_t x = 0; x < tw; x++)
                for (int ch = 0; ch < c; ch++)
                    pix[((oy + y) * W + ox + x) * c + ch] = img[ch * hw + (y / scale) * w + x / scale];
    }
    ib_status s = write_interleaved(path, pix, c, (int)H, (int)W);
    free(pix);
    return s;
}
