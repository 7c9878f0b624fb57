/*
 * kernels.h — the compute backend behind the ops.  Ops call kernels only
 * through this table (the ib__* wrappers at the end), so a new backend
 * (CUDA with cuBLAS/cuDNN) is a new folder filling the same table, not
 * #ifdefs in every op; no op includes another header of src/kernels/ or
 * uses intrinsics itself.  The table holds GEMM, the convolution passes
 * and the vector-math loops.
 *
 * Layering: src/kernels/ may include src/core/ (the 8-lane math of
 * core/simd_math.h, IB_PAR_MIN); src/core/ includes nothing of
 * src/kernels/.
 *
 * The CPU backend (cpu_backend.c) is chosen at run time: GEMM from oneDNN
 * on CPUs with AVX-512, else from OpenBLAS; oneDNN's convolutions pick the
 * CPU's widest vectors themselves.  The build needs AVX2+FMA, nothing more.
 */
#ifndef IB_KERNELS_H
#define IB_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Geometry of one 2-D convolution over one image. */
typedef struct ib__conv_geom {
    int64_t cin, h, w;  /* input image (cin, h, w) */
    int64_t ho, wo;     /* output spatial size */
    int kh, kw, stride, pad;
    int xb, yb;         /* layouts of x (and dx) and of y (and dy): 0 NCHW, B blocked nChw<B>c (src/core/layout.c) */
} ib__conv_geom;

typedef struct ib_backend {
    const char *name;

    /* ---- GEMM ---- */
    /* C = alpha op(A) op(B) + beta C, row-major; op(A) is (M, K), op(B) (K, N). */
    void (*sgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

    /* ---- convolution: data movement of the im2col + GEMM path ---- */
    /* Unfold n_img consecutive images x (n_img, cin, h, w) into the column
     * matrix cols (cin*kh*kw, n_img*ho*wo): row (c, ki, kj), column
     * (b, oh, ow) holds x[b][c][oh*stride - pad + ki][ow*stride - pad + kj],
     * or 0 in the padding.  Runs in parallel over (image, channel) pairs. */
    void (*im2col)(const ib__conv_geom *gm, const float *x, int64_t n_img, float *cols);
    /* The adjoint: dx (n_img, cin, h, w) += col2im(cols).  Each (image,
     * channel) plane of dx is written by one thread, rows in (ki, kj)
     * order, so the sums do not depend on the thread count. */
    void (*col2im_add)(const ib__conv_geom *gm, const float *cols, int64_t n_img, float *dx);

    /* ---- convolution: whole passes (oneDNN on the CPU) ----
     * One pass of a convolution of the whole batch (batch, cin, h, w) ->
     * (batch, cout, ho, wo), NCHW tensors and an OIHW weight.  Each returns
     * false, having written nothing, when the backend does not take this
     * pass (not selected, not available, no primitive for the shape): the
     * op then takes the im2col + GEMM path.  Forward writes y (adding b
     * when given); backward-data ADDS into dx (accumulate) or overwrites it
     * (ib__grad_assign: its only writer); backward-weights OVERWRITES
     * dw (cout, cin*kh*kw).  ws (may be NULL) is the caller's workspace of
     * ws_bytes. */
    bool (*conv_forward)(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x, const float *w,
                         const float *b, float *y, void *ws, size_t ws_bytes);
    bool (*conv_backward_data)(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *w,
                               const float *dy, float *dx, bool accumulate, void *ws, size_t ws_bytes);
    bool (*conv_backward_weights)(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                  const float *dy, float *dw, void *ws, size_t ws_bytes);
    /* The workspace bytes of the forward, backward-data and backward-weights
     * passes (need[0..2]; the last two only with `backward`, else 0), built
     * for the current thread count; false when the backend will not take
     * every pass asked for. */
    bool (*conv_workspace)(const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias, bool backward,
                           size_t need[3]);
    /* The channel block of the layout its convolutions compute in, which
     * the graph keeps activations in between them (0: plain NCHW only). */
    int (*conv_layout_block)(void);

    /* ---- vector math (8 lanes at a time where the CPU has them; an
     * element's result never depends on where a thread's chunk ends) ---- */
    /* y[k] = softplus(x[k] + shift) = log(1 + exp(x[k] + shift)). */
    void (*softplus_forward)(const float *x, float shift, float *y, int64_t n);
    /* dx[k] += dy[k] * (1 - exp(-y[k])): the derivative of softplus from
     * its output y (what a VIB layer keeps anyway: sigma). */
    void (*softplus_backward)(const float *y, const float *dy, float *dx, int64_t n);
    /* y[k] = log(x[k]), every float (0 -> -inf, < 0 -> NaN). */
    void (*vlog)(const float *x, float *y, int64_t n);
    /* s[k] = sin(x[k]), c[k] = cos(x[k]). */
    void (*vsincos)(const float *x, float *s, float *c, int64_t n);
    /* s[k] = sin(2 pi u[k]), c[k] = cos(2 pi u[k]). */
    void (*vsincos_2pi)(const float *u, float *s, float *c, int64_t n);
    /* 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - 2 log sigma_j) over one row: the
     * KL of N(mu, sigma^2) to N(0, 1), terms in float summed in double in a
     * fixed order (the same on any thread count). */
    double (*kl_std_normal_row)(const float *mu, const float *sigma, int64_t len);
} ib_backend;

/* The backend in use (the CPU one in this build). */
const ib_backend *ib__backend(void);

/* ---- what ops call: one line each into the table ---- */
static inline void ib__sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                             int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    ib__backend()->sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static inline void ib__im2col(const ib__conv_geom *gm, const float *x, int64_t n_img, float *cols)
{
    ib__backend()->im2col(gm, x, n_img, cols);
}
static inline void ib__col2im_add(const ib__conv_geom *gm, const float *cols, int64_t n_img, float *dx)
{
    ib__backend()->col2im_add(gm, cols, n_img, dx);
}
static inline bool ib__conv_forward(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                    const float *w, const float *b, float *y, void *ws, size_t ws_bytes)
{
    return ib__backend()->conv_forward(gm, batch, cout, x, w, b, y, ws, ws_bytes);
}
static inline bool ib__conv_backward_data(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *w,
                                          const float *dy, float *dx, bool accumulate, void *ws, size_t ws_bytes)
{
    return ib__backend()->conv_backward_data(gm, batch, cout, w, dy, dx, accumulate, ws, ws_bytes);
}
static inline bool ib__conv_backward_weights(const ib__conv_geom *gm, int64_t batch, int64_t cout, const float *x,
                                             const float *dy, float *dw, void *ws, size_t ws_bytes)
{
    return ib__backend()->conv_backward_weights(gm, batch, cout, x, dy, dw, ws, ws_bytes);
}
static inline bool ib__conv_workspace(const ib__conv_geom *gm, int64_t batch, int64_t cout, bool bias,
                                      bool backward, size_t need[3])
{
    return ib__backend()->conv_workspace(gm, batch, cout, bias, backward, need);
}
static inline int ib__conv_layout_block(void) { return ib__backend()->conv_layout_block(); }
static inline void ib__softplus_forward(const float *x, float shift, float *y, int64_t n)
{
    ib__backend()->softplus_forward(x, shift, y, n);
}
static inline void ib__softplus_backward(const float *y, const float *dy, float *dx, int64_t n)
{
    ib__backend()->softplus_backward(y, dy, dx, n);
}
static inline void ib__vlog(const float *x, float *y, int64_t n) { ib__backend()->vlog(x, y, n); }
static inline void ib__vsincos(const float *x, float *s, float *c, int64_t n) { ib__backend()->vsincos(x, s, c, n); }
static inline void ib__vsincos_2pi(const float *u, float *s, float *c, int64_t n)
{
    ib__backend()->vsincos_2pi(u, s, c, n);
}
static inline double ib__kl_std_normal_row(const float *mu, const float *sigma, int64_t len)
{
    return ib__backend()->kl_std_normal_row(mu, sigma, len);
}

#endif
