/*
 * vmath.h — the CPU backend's vectorised transcendental loops (vmath.c),
 * behind the backend table of kernels.h (ops call ib__softplus_forward and
 * the like there, not these).  libm's expf/log1pf/logf/sinf/cosf are
 * scalar calls, and made softplus (the sigma of every VIB layer) and its
 * gradient, the KL term's log and the Gaussian noise (Box-Muller) cost
 * ~10-17 ns an element, a noticeable share of a VIB-CNN step.  These run
 * 8 lanes at a time with AVX2+FMA, or 16 with AVX-512 where the CPU has it
 * (the same bits; the log and sincos of core/simd_math.h, the loops of
 * vmath_w.h); the last partial block of a loop goes through the
 * same vector code (via a small buffer), so an element's result never
 * depends on where a thread's chunk ends: results are the same on any
 * thread count.  Accuracy: a few ulp of the exact value (tests/test_vmath.c
 * checks the ranges against double).  Without AVX2+FMA the loops fall back
 * to libm.  The contract of each is the table's (kernels.h).
 */
#ifndef IB_VMATH_H
#define IB_VMATH_H

#include <stdint.h>

void ib__cpu_softplus_forward(const float *x, float shift, float *y, int64_t n);
void ib__cpu_softplus_backward(const float *y, const float *dy, float *dx, int64_t n);
void ib__cpu_vlog(const float *x, float *y, int64_t n);
void ib__cpu_vsincos(const float *x, float *s, float *c, int64_t n);
void ib__cpu_vsincos_2pi(const float *u, float *s, float *c, int64_t n);
double ib__cpu_kl_std_normal_row(const float *mu, const float *sigma, int64_t len);

#endif
