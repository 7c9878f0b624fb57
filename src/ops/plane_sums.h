/*
 * plane_sums.h — per-channel sums over the pixels of one image, in one
 * order for every activation layout (src/core/layout.c).
 *
 * Batch norm and a convolution's bias gradient sum each channel's plane
 * (H*W pixels of one image) in float, then the planes in double.  A plain
 * NCHW plane is contiguous; in the blocked layout the planes of w channels
 * are interleaved pixel by pixel.  So that both layouts give the same
 * bits, the float sum of a plane is written out lane by lane instead of
 * left to the vectoriser: pixel q goes to accumulator q % 8 (the tail's
 * pixels to the first ones), and the eight are added in one fixed tree.
 * ib__plane_sums is inlined with a constant w and kind, so the compiler
 * vectorises over the eight accumulators (plain) or the w channels
 * (blocked).
 */
#ifndef IB_PLANE_SUMS_H
#define IB_PLANE_SUMS_H

#include <stdint.h>

enum { IB__PS_LANES = 8, IB__PS_MAXW = 16 };

/* What is summed of value v = p[..] (and e = e[..], mean mu[l]): */
enum {
    IB__PS_SUM,    /* s1 = sum v */
    IB__PS_SQDEV,  /* s1 = sum (v - mu)^2 */
    IB__PS_DSUMS,  /* s1 = sum e, s2 = sum e (v - mu): batch norm's backward, e = dy */
    IB__PS_DSUMS_RELU, /* the same with e = (r > 0 ? dy : 0), r the ReLU's output (batchnorm_relu) */
};

static inline float ib__ps_tree(const float *a)
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* The sums over len pixels of w interleaved channels (w = 1: one plain
 * plane), element (q, l) at p[q * w + l]; results s1[l] (and s2[l]). */
static inline __attribute__((always_inline)) void ib__plane_sums(int kind, int w, int64_t len, const float *p,
                                                                 const float *e, const float *r, const float *mu,
                                                                 float *s1, float *s2)
{
    float a1[IB__PS_LANES][IB__PS_MAXW], a2[IB__PS_LANES][IB__PS_MAXW];
    for (int k = 0; k < IB__PS_LANES; k++)
        for (int l = 0; l < w; l++)
            a1[k][l] = 0.0f, a2[k][l] = 0.0f;
    int64_t q = 0, full = len - len % IB__PS_LANES;
    for (; q < len; q += IB__PS_LANES) {
        int kn = q < full ? IB__PS_LANES : (int)(len - q);
        for (int k = 0; k < kn; k++)
            for (int l = 0; l < w; l++) {
                int64_t at = (q + k) * w + l;
                if (kind == IB__PS_SUM) {
                    a1[k][l] += p[at];
                } else if (kind == IB__PS_SQDEV) {
                    float d = p[at] - mu[l];
                    a1[k][l] += d * d;
                } else {
                    /* e loaded unconditionally: a conditional load would not vectorise */
                    float e0 = e[at], ev = kind == IB__PS_DSUMS_RELU ? (r[at] > 0.0f ? e0 : 0.0f) : e0;
                    a1[k][l] += ev;
                    a2[k][l] += ev * (p[at] - mu[l]);
                }
            }
    }
    for (int l = 0; l < w; l++) {
        float t1[IB__PS_LANES], t2[IB__PS_LANES];
        for (int k = 0; k < IB__PS_LANES; k++)
            t1[k] = a1[k][l], t2[k] = a2[k][l];
        s1[l] = ib__ps_tree(t1);
        if (kind >= IB__PS_DSUMS)
            s2[l] = ib__ps_tree(t2);
    }
}

/* The same for a run-time w of 1, 8 or 16, each its own inlined copy. */
static inline __attribute__((always_inline)) void ib__plane_sums_w(int kind, int w, int64_t len, const float *p,
                                                                   const float *e, const float *r, const float *mu,
                                                                   float *s1, float *s2)
{
    if (w == 16)
        ib__plane_sums(kind, 16, len, p, e, r, mu, s1, s2);
    else if (w == 8)
        ib__plane_sums(kind, 8, len, p, e, r, mu, s1, s2);
    else
        ib__plane_sums(kind, 1, len, p, e, r, mu, s1, s2);
}

#endif
