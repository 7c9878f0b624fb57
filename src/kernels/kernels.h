/*
 * kernels.h — the compute backend behind the ops.  Ops call kernels only
 * through this table, so a new backend (CUDA with cuBLAS/cuDNN) is a new
 * folder filling the same table, not #ifdefs in every op.
 */
#ifndef IB_KERNELS_H
#define IB_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ib_backend {
    const char *name;
    /* C = alpha op(A) op(B) + beta C, row-major; op(A) is (M, K), op(B) (K, N). */
    void (*sgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                  int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
} ib_backend;

/* The backend in use (the CPU one in this build). */
const ib_backend *ib__backend(void);

static inline void ib__sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                             int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    ib__backend()->sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

#endif
