/*
 * conv_kernels.h — the data-movement kernels of convolution (im2col and
 * its adjoint col2im), kept apart from the op so a GPU backend can swap
 * them without touching src/ops/conv.c; and the oneDNN path beside them.
 */
#ifndef IB_CONV_KERNELS_H
#define IB_CONV_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
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

/* ---- the convolution path (src/kernels/conv_dnnl.c) ---- */

enum { IB_CONV_IM2COL = 0, IB_CONV_DNNL = 1 };
/* Whether this build has oneDNN. */
bool ib__conv_dnnl_available(void);
/* The path conv2d takes: IBNET_CONV=im2col|dnnl in the environment, read
 * once; oneDNN by default when built with it. */
int ib__conv_path(void);
/* Force a path (tests, benchmarks); DNNL without oneDNN means IM2COL. */
void ib__conv_set_path(int path);

/* One pass of a convolution of the whole batch (batch, cin, h, w) ->
 * (batch, cout, ho, wo), NCHW tensors and an OIHW weight, through oneDNN.
 * Each returns false, having written nothing, when the oneDNN path is not
 * selected or not available for this shape: the caller then takes the
 * im2col path.  Forward writes y (adding b when given); backward-data ADDS
 * into dx; backward-weights OVERWRITES dw (cout, cin*kh*kw).  ws (may be
 * NULL) is the caller's workspace of ws_bytes: used when the pass fits in
 * it, else a process-wide buffer is. */
bool ib__conv_dnnl_forward(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x, const float *w,
                           const float *b, float *y, void *ws, size_t ws_bytes);
bool ib__conv_dnnl_backward_data(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *w,
                                 const float *dy, float *dx, void *ws, size_t ws_bytes);
bool ib__conv_dnnl_backward_weights(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                    const float *dy, float *dw, void *ws, size_t ws_bytes);
/* The workspace bytes of the forward, backward-data and backward-weights
 * passes (need[0..2]; the last two only with `backward`, else 0) at the
 * current thread count, building their plans now; false when oneDNN will
 * not take every pass asked for (not selected, not available, or no
 * primitive for the shape). */
bool ib__conv_dnnl_workspace(const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias, bool backward,
                             size_t need[3]);

#endif
