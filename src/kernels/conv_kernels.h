/*
 * conv_kernels.h — the CPU backend's convolution kernels: im2col and its
 * adjoint col2im (im2col.c), and the oneDNN passes with the choice of path
 * (conv_dnnl.c).  The ops reach them through the backend table of
 * kernels.h; tests and benchmarks include this header to force a path or
 * call a pass directly.
 */
#ifndef IB_CONV_KERNELS_H
#define IB_CONV_KERNELS_H

#include "kernels.h"

/* The CPU backend's im2col and col2im (im2col.c); contracts in kernels.h. */
void ib__cpu_im2col(const ib__conv_geom *gm, const float *x, int64_t n_img, float *cols);
void ib__cpu_col2im_add(const ib__conv_geom *gm, const float *cols, int64_t n_img, float *dx);

/* ---- the convolution path (src/kernels/conv_dnnl.c) ---- */

enum { IB_CONV_IM2COL = 0, IB_CONV_DNNL = 1 };
/* Whether this build has oneDNN. */
bool ib__conv_dnnl_available(void);
/* The path conv2d takes: IBNET_CONV=im2col|dnnl in the environment, read
 * once; oneDNN by default when built with it. */
int ib__conv_path(void);
/* Force a path (tests, benchmarks); DNNL without oneDNN means IM2COL. */
void ib__conv_set_path(int path);

/* The table's conv_forward, conv_backward_data and conv_backward_weights
 * through oneDNN (false when the oneDNN path is not selected or has no
 * primitive for the shape).  ws is used when the pass fits in it, else a
 * process-wide buffer is. */
bool ib__conv_dnnl_forward(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x, const float *w,
                           const float *b, float *y, void *ws, size_t ws_bytes);
bool ib__conv_dnnl_backward_data(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *w,
                                 const float *dy, float *dx, bool accumulate, void *ws, size_t ws_bytes);
bool ib__conv_dnnl_backward_weights(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                    const float *dy, float *dw, void *ws, size_t ws_bytes);
/* Whether oneDNN runs its AVX-512 kernels on this CPU (its effective ISA,
 * which ONEDNN_MAX_CPU_ISA caps; not ibnet's own IBNET_ISA): the kernel
 * choices that follow oneDNN's ask this.  False without oneDNN. */
bool ib__dnnl_avx512(void);
/* The table's conv_workspace, building the passes' plans now. */
int ib__conv_dnnl_block(void);
bool ib__conv_dnnl_workspace(const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias, bool backward,
                             size_t need[3]);

#endif
