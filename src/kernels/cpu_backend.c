/*
 * cpu_backend.c — the CPU backend: GEMM from OpenBLAS (its OpenMP build, so
 * it shares ibnet's thread pool).
 */
#include "kernels.h"

#include <cblas.h>

static void cpu_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                      const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m,
                (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

static const ib_backend cpu = {"cpu", cpu_sgemm};

const ib_backend *ib__backend(void) { return &cpu; }
