/*
 * vmath.h — vectorised transcendental loops for elementwise ops.  libm's
 * expf/log1pf are scalar calls, and made softplus (the sigma of every VIB
 * layer) and its gradient cost ~10 ns an element, a noticeable share of a
 * VIB-CNN step.  These loops run 8 lanes at a time with AVX2+FMA; the last
 * partial block goes through the same vector code (via a small buffer), so
 * an element's result never depends on where a thread's chunk ends: results
 * are the same on any thread count.  Accuracy: a few ulp of the exact
 * value (tests/test_vmath.c checks the whole range against double).
 * Without AVX2+FMA the loops fall back to libm.
 */
#ifndef IB_VMATH_H
#define IB_VMATH_H

#include <stdint.h>

/* y[k] = softplus(x[k] + shift) = log(1 + exp(x[k] + shift)). */
void ib__softplus_forward(const float *x, float shift, float *y, int64_t n);
/* dx[k] += dy[k] * sigmoid(x[k] + shift)  (the derivative of softplus). */
void ib__softplus_backward(const float *x, float shift, const float *dy, float *dx, int64_t n);

#endif
