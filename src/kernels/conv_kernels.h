/*
 * conv_kernels.h — the data-movement kernels of convolution (im2col and
 * its adjoint col2im), kept apart from the op so a GPU backend can swap
 * them without touching src/ops/conv.c.
 */
#ifndef IB_CONV_KERNELS_H
#define IB_CONV_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* Geometry of one 2-D convolution over one image. */
typedef struct ib__conv_geom {
    int64_t cin, h, w;  /* input image (cin, h, w) */
    int64_t ho, wo;     /* output spatial size */
    int kh, kw, stride, pad;
} ib__conv_geom;

/* cols (cin*kh*kw, ho*wo) from x (cin, h, w): row (c, ki, kj), column
 * (oh, ow) holds x[c][oh*stride - pad + ki][ow*stride - pad + kj], or 0 in
 * the padding.  par: split the channels over the OpenMP team (only when the
 * caller is not already inside a parallel region). */
void ib__im2col(const ib__conv_geom *gm, const float *x, float *cols, bool par);

/* The adjoint: dx (cin, h, w) += col2im(cols).  Every element of dx is
 * accumulated in a fixed order (rows in (c, ki, kj) order), so the result
 * does not depend on the thread count; par splits the channels, which
 * never share an element of dx. */
void ib__col2im_add(const ib__conv_geom *gm, const float *cols, float *dx, bool par);

#endif
