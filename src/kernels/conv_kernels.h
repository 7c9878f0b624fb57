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

/* Unfold n_img consecutive images x (n_img, cin, h, w) into the column
 * matrix cols (cin*kh*kw, n_img*ho*wo): row (c, ki, kj), column
 * (b, oh, ow) holds x[b][c][oh*stride - pad + ki][ow*stride - pad + kj],
 * or 0 in the padding.  Runs in parallel over (image, channel) pairs. */
void ib__im2col(const ib__conv_geom *gm, const float *x, int64_t n_img, float *cols);

/* The adjoint: dx (n_img, cin, h, w) += col2im(cols).  Each (image,
 * channel) plane of dx is written by one thread, rows in (ki, kj) order,
 * so the sums do not depend on the thread count. */
void ib__col2im_add(const ib__conv_geom *gm, const float *cols, int64_t n_img, float *dx);

#endif
