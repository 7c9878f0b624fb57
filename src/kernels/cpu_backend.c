/*
 * cpu_backend.c — the CPU backend's table: GEMM from oneDNN's dnnl_sgemm
 * on CPUs with AVX-512 when the build has it, else from OpenBLAS
 * (IBNET_GEMM=openblas|dnnl forces one); both are OpenMP builds sharing
 * ibnet's libgomp pool.  The convolution passes (conv_dnnl.c: oneDNN, or
 * false so that the op takes im2col + GEMM), im2col (im2col.c) and the
 * vector math (vmath.c) are the same in both tables.
 *
 * Why oneDNN on AVX-512 CPUs: Debian's OpenBLAS 0.3.21 runs its AVX2
 * (Haswell) kernels on AMD Zen 4/5, where oneDNN's run-time dispatch finds
 * AVX-512; on the MLP's shapes (100x784x1024 and the like) dnnl_sgemm is
 * about twice as fast at one thread (bench/dnnl_conv.c).  With AVX2 only
 * (measured with ONEDNN_MAX_CPU_ISA=AVX2) dnnl_sgemm is no faster, and 40%
 * slower on the N-N products with K = 1024, so OpenBLAS stays.  The
 * choice follows oneDNN's own (dnnl_get_effective_cpu_isa, which honours
 * ONEDNN_MAX_CPU_ISA).  Degenerate shapes and any error from oneDNN go to
 * OpenBLAS.
 */
#include "kernels.h"
#include "conv_kernels.h"
#include "vmath.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef IBNET_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

static void blas_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m,
                (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* Everything but GEMM. */
#define CPU_KERNELS                                                                                                    \
    .name = "cpu", .im2col = ib__cpu_im2col, .col2im_add = ib__cpu_col2im_add,                                       \
    .conv_forward = ib__conv_dnnl_forward, .conv_backward_data = ib__conv_dnnl_backward_data,                        \
    .conv_backward_weights = ib__conv_dnnl_backward_weights, .conv_workspace = ib__conv_dnnl_workspace,              \
    .conv_layout_block = ib__conv_dnnl_block,                                                                          \
    .softplus_forward = ib__cpu_softplus_forward, .softplus_backward = ib__cpu_softplus_backward,                    \
    .vlog = ib__cpu_vlog, .vsincos = ib__cpu_vsincos, .vsincos_2pi = ib__cpu_vsincos_2pi,                            \
    .kl_std_normal_row = ib__cpu_kl_std_normal_row

static const ib_backend cpu_blas = {CPU_KERNELS, .sgemm = blas_sgemm};

#ifdef IBNET_HAVE_DNNL
static void onednn_sgemm_1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                           int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m > 0 && n > 0 && k > 0 &&
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == dnnl_success)
        return;
    blas_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* A linear layer's forward, C = A B^T with B the (n, k) weight: oneDNN
 * 2.6's own parallel split of this product is slow with several threads
 * (100 x 1024 x 1024 at two threads: 1.63 ms, against 0.80 ms with each
 * thread running one half of B's rows alone, and 1.4 ms on one thread;
 * bench/README.md "The GEMM of a linear layer's forward").  Here each
 * thread takes a band of B's rows, a multiple of 16 columns of C, and runs
 * dnnl_sgemm on it inside the parallel region (oneDNN then runs it on the
 * calling thread).  Every element of C is one dot product over all of k
 * either way; the bits depend on the thread count, as before. */
static bool split_columns(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int threads)
{
    return !ta && tb && threads > 1 && n >= 32 * (int64_t)threads && m * n * k >= (int64_t)1 << 20 &&
           !omp_in_parallel();
}

static void onednn_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    int threads = omp_get_max_threads();
    if (!split_columns(ta, tb, m, n, k, threads)) {
        onednn_sgemm_1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t blocks = (n + 15) / 16, j0 = blocks * t / nt * 16, j1 = blocks * (t + 1) / nt * 16;
        if (j1 > n)
            j1 = n;
        if (j1 > j0)
            onednn_sgemm_1(false, true, m, j1 - j0, k, alpha, a, lda, b + j0 * ldb, ldb, beta, c + j0, ldc);
    }
}

static const ib_backend cpu_dnnl = {CPU_KERNELS, .sgemm = onednn_sgemm};
#endif

static const ib_backend *chosen;

const ib_backend *ib__backend(void)
{
    const ib_backend *b = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (b)
        return b;
    b = &cpu_blas;
#ifdef IBNET_HAVE_DNNL
    const char *env = getenv("IBNET_GEMM"); /* openblas|dnnl, for comparisons */
    bool avx512 = ib__dnnl_avx512();
    if (env && *env && strcmp(env, "dnnl") != 0 && strcmp(env, "openblas") != 0)
        fprintf(stderr, "ibnet: IBNET_GEMM=%s is not openblas or dnnl; ignored\n", env), env = NULL;
    if (env && *env ? strcmp(env, "dnnl") == 0 : avx512)
        b = &cpu_dnnl;
#endif
    __atomic_store_n(&chosen, b, __ATOMIC_RELEASE);
    return b;
}
