/*
 * im2col.c — unfolding image patches into the columns of a matrix (so a
 * convolution becomes one GEMM) and folding column gradients back.
 * Each row of the column matrix is a shifted copy of an input plane; for
 * stride 1 every output row is one memcpy between two zeroed margins.
 */
#include "conv_kernels.h"

#include <string.h>

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

void ib__im2col(const ib__conv_geom *gm, const float *x, float *cols, bool par)
{
    const int64_t cin = gm->cin, h = gm->h, w = gm->w, ho = gm->ho, wo = gm->wo, p = ho * wo;
    const int kh = gm->kh, kw = gm->kw, s = gm->stride, pad = gm->pad;
#pragma omp parallel for schedule(static) if (par && cin > 1)
    for (int64_t c = 0; c < cin; c++) {
        const float *xc = x + c * h * w;
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++) {
                float *row = cols + ((c * kh + ki) * kw + kj) * p;
                int64_t lo, hi;
                valid_cols(gm, kj, &lo, &hi);
                for (int64_t oh = 0; oh < ho; oh++) {
                    float *o = row + oh * wo;
                    int64_t ih = oh * s - pad + ki;
                    if (ih < 0 || ih >= h || lo == hi) {
                        memset(o, 0, (size_t)wo * sizeof(float));
                        continue;
                    }
                    for (int64_t ow = 0; ow < lo; ow++)
                        o[ow] = 0.0f;
                    const float *xr = xc + ih * w + (lo * s - pad + kj);
                    if (s == 1)
                        memcpy(o + lo, xr, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int64_t ow = lo; ow < hi; ow++)
                            o[ow] = xr[(ow - lo) * s];
                    for (int64_t ow = hi; ow < wo; ow++)
                        o[ow] = 0.0f;
                }
            }
    }
}

void ib__col2im_add(const ib__conv_geom *gm, const float *cols, float *dx, bool par)
{
    const int64_t cin = gm->cin, h = gm->h, w = gm->w, ho = gm->ho, wo = gm->wo, p = ho * wo;
    const int kh = gm->kh, kw = gm->kw, s = gm->stride, pad = gm->pad;
#pragma omp parallel for schedule(static) if (par && cin > 1)
    for (int64_t c = 0; c < cin; c++) {
        float *dc = dx + c * h * w;
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++) {
                const float *row = cols + ((c * kh + ki) * kw + kj) * p;
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
}
