/*
 * im2col.c — unfolding image patches into the columns of a matrix (so a
 * convolution becomes one GEMM) and folding column gradients back.
 * Each row of the column matrix is a shifted copy of an input plane; for
 * stride 1 every output row is one memcpy between two zeroed margins.
 * Several images go side by side in one matrix, so one GEMM covers them.
 */
#include "conv_kernels.h"

#include "../core/internal.h"

/* The output columns ow whose input column ow*s - pad + kj lies inside
 * [0, w): [*lo, *hi). */
static void valid_cols(const ib__conv_geom *gm, int kj, int64_t *lo, int64_t *hi)
{
    int64_t s = gm->stride, off = (int64_t)kj - gm->pad;
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t last = gm->w - 1 - off; /* largest ow*s allowed */
    int64_t b = last < 0 ? 0 : last / s + 1;
    if (b > gm->wo)
        b = gm->wo;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

/* One (image, channel) plane xc (h, w) into its kh*kw rows, row stride ld. */
static void plane_to_cols(const ib__conv_geom *gm, const float *xc, float *out, int64_t ld)
{
    const int64_t h = gm->h, w = gm->w, ho = gm->ho, wo = gm->wo;
    const int s = gm->stride, pad = gm->pad;
    for (int ki = 0; ki < gm->kh; ki++)
        for (int kj = 0; kj < gm->kw; kj++) {
            float *row = out + (int64_t)(ki * gm->kw + kj) * ld;
            int64_t lo, hi;
            valid_cols(gm, kj, &lo, &hi);
            for (int64_t oh = 0; oh < ho; oh++) {
                float *o = row + oh * wo;
                int64_t ih = oh * s - pad + ki;
                /* Rows are short (14 or 28 floats in the CNNs): plain
                 * loops beat memcpy/memset calls here. */
                if (ih < 0 || ih >= h || lo == hi) {
                    for (int64_t ow = 0; ow < wo; ow++)
                        o[ow] = 0.0f;
                    continue;
                }
                for (int64_t ow = 0; ow < lo; ow++)
                    o[ow] = 0.0f;
                const float *xr = xc + ih * w + (lo * s - pad + kj);
                if (s == 1) {
                    float *dst = o + lo;
                    int64_t len = hi - lo;
                    for (int64_t t = 0; t < len; t++)
                        dst[t] = xr[t];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++)
                        o[ow] = xr[(ow - lo) * s];
                }
                for (int64_t ow = hi; ow < wo; ow++)
                    o[ow] = 0.0f;
            }
        }
}

/* The adjoint for one plane: dc (h, w) += fold of its kh*kw rows. */
static void cols_to_plane(const ib__conv_geom *gm, const float *in, int64_t ld, float *dc)
{
    const int64_t h = gm->h, w = gm->w, ho = gm->ho, wo = gm->wo;
    const int s = gm->stride, pad = gm->pad;
    for (int ki = 0; ki < gm->kh; ki++)
        for (int kj = 0; kj < gm->kw; kj++) {
            const float *row = in + (int64_t)(ki * gm->kw + kj) * ld;
            int64_t lo, hi;
            valid_cols(gm, kj, &lo, &hi);
            if (lo == hi)
                continue;
            for (int64_t oh = 0; oh < ho; oh++) {
                int64_t ih = oh * s - pad + ki;
                if (ih < 0 || ih >= h)
                    continue;
                const float *o = row + oh * wo;
                float *dr = dc + ih * w + (lo * s - pad + kj);
                if (s == 1) {
                    int64_t len = hi - lo;
                    const float *src = o + lo;
#pragma omp simd
                    for (int64_t t = 0; t < len; t++)
                        dr[t] += src[t];
                } else {
                    for (int64_t ow = lo; ow < hi; ow++)
                        dr[(ow - lo) * s] += o[ow];
                }
            }
        }
}

void ib__cpu_im2col(const ib__conv_geom *gm, const float *x, int64_t n_img, float *cols)
{
    const int64_t p = gm->ho * gm->wo, ld = n_img * p, items = n_img * gm->cin, kk = (int64_t)gm->kh * gm->kw;
#pragma omp parallel for schedule(static) if (items > 1 && items * kk * p > IB_PAR_MIN)
    for (int64_t it = 0; it < items; it++) {
        int64_t b = it / gm->cin, c = it % gm->cin;
        plane_to_cols(gm, x + it * gm->h * gm->w, cols + c * kk * ld + b * p, ld);
    }
}

void ib__cpu_col2im_add(const ib__conv_geom *gm, const float *cols, int64_t n_img, float *dx)
{
    const int64_t p = gm->ho * gm->wo, ld = n_img * p, items = n_img * gm->cin, kk = (int64_t)gm->kh * gm->kw;
#pragma omp parallel for schedule(static) if (items > 1 && items * kk * p > IB_PAR_MIN)
    for (int64_t it = 0; it < items; it++) {
        int64_t b = it / gm->cin, c = it % gm->cin;
        cols_to_plane(gm, cols + c * kk * ld + b * p, ld, dx + it * gm->h * gm->w);
    }
}
