/*
 * vmath_w.h — the vector bodies of vmath.c, written once in
 * core/simd_vec.h's width-generic names; vmath.c instantiates them at 8
 * lanes (ib__v8_*: AVX2+FMA) and 16 lanes (ib__v16_*: AVX-512) and picks
 * one at run time.  Lane for lane both do the same float32 operations in
 * the same order, and a partial last block goes through the same code via
 * a padded buffer, so an element's result never depends on the width (nor
 * on where a thread's chunk ends).  The algorithms and their accuracy are
 * described at the top of vmath.c.  No include guard: included once per
 * width with IB_W defined.
 */
#include "../core/simd_vec.h"

IB_VFN VF IB_V(exp)(VF x)
{
    /* max/min return their second operand when one is NaN: NaN survives */
    x = VMIN(VSET1(88.7f), VMAX(VSET1(-86.5f), x));
    VF n = VROUND(VMUL(x, VSET1(1.44269504088896341f)));
    VF r = VFNMADD(n, VSET1(0.693145751953125f), x);
    r = VFNMADD(n, VSET1(1.428606765330187e-06f), r);
    VF p = VSET1(1.0f / 720.0f);
    p = VFMADD(p, r, VSET1(1.0f / 120.0f));
    p = VFMADD(p, r, VSET1(1.0f / 24.0f));
    p = VFMADD(p, r, VSET1(1.0f / 6.0f));
    p = VFMADD(p, r, VSET1(0.5f));
    p = VFMADD(p, r, VSET1(1.0f));
    p = VFMADD(p, r, VSET1(1.0f));
    VI e = VSLLI(VADDI(VF2I(n), VSET1I(126)), 23);
    return VMUL(VMUL(p, VASF(e)), VSET1(2.0f));
}

IB_VFN VF IB_V(log1p01)(VF u)
{
    VF s = VDIV(u, VADD(VSET1(2.0f), u)), s2 = VMUL(s, s);
    VF p = VSET1(1.0f / 17.0f);
    p = VFMADD(p, s2, VSET1(1.0f / 15.0f));
    p = VFMADD(p, s2, VSET1(1.0f / 13.0f));
    p = VFMADD(p, s2, VSET1(1.0f / 11.0f));
    p = VFMADD(p, s2, VSET1(1.0f / 9.0f));
    p = VFMADD(p, s2, VSET1(1.0f / 7.0f));
    p = VFMADD(p, s2, VSET1(1.0f / 5.0f));
    p = VFMADD(p, s2, VSET1(1.0f / 3.0f));
    p = VFMADD(p, s2, VSET1(1.0f));
    return VMUL(VADD(s, s), p);
}

IB_VFN VF IB_V(softplus)(VF t)
{
    VF a = VANDNOT(VSET1(-0.0f), t); /* |t| */
    VF l = IB_V(log1p01)(IB_V(exp)(VSUB(VZERO(), a)));
    return VADD(VMAX(VZERO(), t), l);
}

/* 1 - exp(-y) for y >= 0 (the derivative of softplus at the t where
 * softplus(t) = y): by the series y - y^2/2 + ... - y^10/10! below 1/2
 * (truncation under 1e-10 relative), where 1 - exp(-y) would cancel
 * (exp's rounding, amplified 3.5x at y = 1/4), and directly above.  NaN
 * propagates through exp. */
IB_VFN VF IB_V(one_minus_exp_neg)(VF y)
{
    static const float c[9] = {-1.0f / 3628800.0f, 1.0f / 362880.0f, -1.0f / 40320.0f, 1.0f / 5040.0f, -1.0f / 720.0f,
                               1.0f / 120.0f,      -1.0f / 24.0f,    1.0f / 6.0f,      -0.5f};
    VF p = VSET1(c[0]);
    for (int i = 1; i < 9; i++)
        p = VFMADD(p, y, VSET1(c[i]));
    p = VFMADD(p, y, VSET1(1.0f));
    VF small = VMUL(p, y);
    VF big = VSUB(VSET1(1.0f), IB_V(exp)(VSUB(VZERO(), y)));
    return VSELECT(VCMP(y, VSET1(0.5f), _CMP_LT_OQ), big, small);
}

/* Apply F (IB_W lanes in, IB_W out) to n floats; the partial last block
 * through a buffer padded with PAD so that it stays in F's domain. */
#define VMAP1(F, x, y, n, PAD)                                                                                         \
    do {                                                                                                               \
        int64_t k_ = 0;                                                                                                \
        for (; k_ + IB_W <= (n); k_ += IB_W)                                                                           \
            VSTORE((y) + k_, F(VLOAD((x) + k_)));                                                                      \
        if (k_ < (n)) {                                                                                                \
            float b_[IB_W];                                                                                            \
            for (int l_ = 0; l_ < IB_W; l_++)                                                                          \
                b_[l_] = (PAD);                                                                                        \
            memcpy(b_, (x) + k_, (size_t)((n) - k_) * sizeof(float));                                                 \
            VSTORE(b_, F(VLOAD(b_)));                                                                                  \
            memcpy((y) + k_, b_, (size_t)((n) - k_) * sizeof(float));                                                 \
        }                                                                                                              \
    } while (0)

/* softplus(x + shift), before vmath.c's libm pass over the far tail */
static IB_VTARGET void IB_V(softplus_forward)(const float *x, float shift, float *y, int64_t n)
{
    const VF sh = VSET1(shift);
#define SHIFTED_SOFTPLUS(v) IB_V(softplus)(VADD(v, sh))
    VMAP1(SHIFTED_SOFTPLUS, x, y, n, 0.0f);
#undef SHIFTED_SOFTPLUS
}

/* dx += dy (1 - exp(-y)) */
static IB_VTARGET void IB_V(softplus_backward)(const float *y, const float *dy, float *dx, int64_t n)
{
    int64_t k = 0;
    for (; k + IB_W <= n; k += IB_W)
        VSTORE(dx + k, VFMADD(VLOAD(dy + k), IB_V(one_minus_exp_neg)(VLOAD(y + k)), VLOAD(dx + k)));
    if (k < n) {
        float by[IB_W] = {0}, bdy[IB_W] = {0}, bdx[IB_W] = {0};
        size_t bytes = (size_t)(n - k) * sizeof(float);
        memcpy(by, y + k, bytes);
        memcpy(bdy, dy + k, bytes);
        memcpy(bdx, dx + k, bytes);
        VSTORE(bdx, VFMADD(VLOAD(bdy), IB_V(one_minus_exp_neg)(VLOAD(by)), VLOAD(bdx)));
        memcpy(dx + k, bdx, bytes);
    }
}

static IB_VTARGET void IB_V(vlog)(const float *x, float *y, int64_t n) { VMAP1(IB_V(log), x, y, n, 1.0f); }

/* sin and cos of x (turns: of 2 pi x), before vmath.c's pass over the
 * elements outside the vector reduction's range */
static IB_VTARGET void IB_V(sincos_map)(const float *x, float *s, float *c, int64_t n, bool turns)
{
    for (int64_t k = 0; k < n; k += IB_W) {
        int64_t m = n - k < IB_W ? n - k : IB_W;
        float b[IB_W] = {0}, bs[IB_W], bc[IB_W];
        const float *in = x + k;
        if (m < IB_W) {
            memcpy(b, in, (size_t)m * sizeof(float));
            in = b;
        }
        VF vs, vc;
        if (turns)
            IB_V(sincos_2pi)(VLOAD(in), &vs, &vc);
        else
            IB_V(sincos)(VLOAD(in), &vs, &vc);
        if (m == IB_W) {
            VSTORE(s + k, vs);
            VSTORE(c + k, vc);
        } else {
            VSTORE(bs, vs);
            VSTORE(bc, vc);
            memcpy(s + k, bs, (size_t)m * sizeof(float));
            memcpy(c + k, bc, (size_t)m * sizeof(float));
        }
    }
}

/* mu^2 + (sigma^2 - 1) - 2 log sigma (sigma^2 - 1 by one fma). */
IB_VFN VF IB_V(kl_std_term)(VF mu, VF s)
{
    VF q = VFMADD(mu, mu, VFMSUB(s, s, VSET1(1.0f)));
    return VFNMADD(VSET1(2.0f), IB_V(log)(s), q);
}

/* The KL row sum: terms in float, summed in double in 8 lanes, lane j
 * taking the terms 8b + j in order of b, then in a fixed order.  Both
 * widths keep exactly this order (the 16-lane form adds its two halves one
 * after the other; a half made only of padding is not added, as the
 * 8-lane form never computes it), so the sum has the same bits.  The
 * partial last block is padded with mu = 0, sigma = 1: a term of exactly 0. */
static IB_VTARGET double IB_V(kl_std_normal_row)(const float *mu, const float *s, int64_t len)
{
    double l[8];
#if IB_W == 8
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
#else
    __m512d a = _mm512_setzero_pd();
#endif
    for (int64_t j = 0; j < len; j += IB_W) {
        int64_t rest = len - j;
        VF t;
        if (rest >= IB_W) {
            t = IB_V(kl_std_term)(VLOAD(mu + j), VLOAD(s + j));
        } else {
            float bm[IB_W], bs[IB_W];
            for (int i = 0; i < IB_W; i++) {
                bm[i] = 0.0f;
                bs[i] = 1.0f;
            }
            memcpy(bm, mu + j, (size_t)rest * sizeof(float));
            memcpy(bs, s + j, (size_t)rest * sizeof(float));
            t = IB_V(kl_std_term)(VLOAD(bm), VLOAD(bs));
        }
#if IB_W == 8
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
#else
        a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
        if (rest > 8)
            a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_extractf32x8_ps(t, 1)));
#endif
    }
#if IB_W == 8
    _mm256_storeu_pd(l, a0);
    _mm256_storeu_pd(l + 4, a1);
#else
    _mm512_storeu_pd(l, a);
#endif
    return 0.5 * (((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])));
}

#undef VMAP1
