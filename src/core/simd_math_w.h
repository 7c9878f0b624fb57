/*
 * simd_math_w.h — the body of simd_math.h's log and sincos, written once
 * in simd_vec.h's width-generic names; simd_math.h instantiates it at 8
 * lanes (ib__v8_*) and 16 lanes (ib__v16_*).  No include guard: included
 * once per width with IB_W defined.  Accuracy: a few ulp
 * (tests/test_vmath.c checks the array forms against double).
 */
#include "simd_vec.h"

/* log(x) for positive normal x (no special cases: the fast path for
 * arguments known to be in range).  x = 2^e (1 + f) with 1 + f in
 * [sqrt(1/2), sqrt(2)); with s = f/(2+f), log(1+f) = 2 atanh(s) =
 * f - (f^2/2 - s (f^2/2 + R)), R = 2s^2/3 + 2s^4/5 + ... to s^10
 * (truncation below 2^-30 relative), so the rounding of s only touches
 * a small correction; e ln2 with ln2 split so that e * hi is exact. */
IB_VFN VF IB_V(log_normal)(VF x)
{
    VI xi = VASI(x);
    VI e = VSRAI(VSUBI(xi, VSET1I(0x3f3504f3)), 23); /* sqrt(1/2) */
    VF m = VASF(VSUBI(xi, VSLLI(e, 23)));
    VF f = VSUB(m, VSET1(1.0f)); /* exact (Sterbenz) */
    VF s = VDIV(f, VADD(VSET1(2.0f), f)), z = VMUL(s, s);
    VF p = VSET1(2.0f / 11.0f);
    p = VFMADD(p, z, VSET1(2.0f / 9.0f));
    p = VFMADD(p, z, VSET1(2.0f / 7.0f));
    p = VFMADD(p, z, VSET1(2.0f / 5.0f));
    p = VFMADD(p, z, VSET1(2.0f / 3.0f));
    VF R = VMUL(p, z), hfsq = VMUL(VMUL(f, f), VSET1(0.5f));
    VF ef = VI2F(e);
    VF corr = VFMADD(s, VADD(hfsq, R), VMUL(ef, VSET1(1.428606765330187e-06f)));
    VF lm = VSUB(f, VSUB(hfsq, corr));
    return VFMADD(ef, VSET1(0.693145751953125f), lm);
}

/* log(x) for every float, as logf: subnormals rescaled by 2^23 first;
 * 0 -> -inf, negative or NaN -> NaN, +inf -> +inf. */
IB_VFN VF IB_V(log)(VF x)
{
    VM sub = VCMP(x, VSET1(1.17549435e-38f), _CMP_LT_OQ);
    VF xs = VSELECT(sub, x, VMUL(x, VSET1(8388608.0f)));
    VF r = IB_V(log_normal)(xs);
    r = VSUB(r, VMASKZ(sub, VSET1(15.942385152878742f))); /* 23 ln2 */
    r = VSELECT(VCMP(x, VZERO(), _CMP_EQ_OQ), r, VSET1(-INFINITY));
    r = VSELECT(VCMP(x, VSET1(INFINITY), _CMP_EQ_OQ), r, x);
    /* x < 0 or NaN: NaN */
    return VSELECT(VCMP(x, VZERO(), _CMP_NGE_UQ), r, VSET1(NAN));
}

/* sin and cos of q pi/2 + r, |r| <= pi/4: Taylor polynomials to r^11 and
 * r^12 (truncation below 2^-28 relative on that interval), then the
 * quadrant's swap and signs. */
IB_VFN void IB_V(sincos_core)(VI q, VF r, VF *s, VF *c)
{
    VF r2 = VMUL(r, r);
    VF ps = VSET1(-1.0f / 39916800.0f);
    ps = VFMADD(ps, r2, VSET1(1.0f / 362880.0f));
    ps = VFMADD(ps, r2, VSET1(-1.0f / 5040.0f));
    ps = VFMADD(ps, r2, VSET1(1.0f / 120.0f));
    ps = VFMADD(ps, r2, VSET1(-1.0f / 6.0f));
    VF sn = VFMADD(VMUL(ps, r2), r, r);
    VF pc = VSET1(1.0f / 479001600.0f);
    pc = VFMADD(pc, r2, VSET1(-1.0f / 3628800.0f));
    pc = VFMADD(pc, r2, VSET1(1.0f / 40320.0f));
    pc = VFMADD(pc, r2, VSET1(-1.0f / 720.0f));
    pc = VFMADD(pc, r2, VSET1(1.0f / 24.0f));
    pc = VFMADD(pc, r2, VSET1(-0.5f));
    VF cs = VFMADD(pc, r2, VSET1(1.0f));
    VM swap = VSIGNMASK(VSLLI(q, 31)); /* odd quadrant */
    VF sv = VSELECT(swap, sn, cs), cv = VSELECT(swap, cs, sn);
    VI one = VSET1I(1);
    VF sneg = VASF(VSLLI(VANDI(VSRLI(q, 1), one), 31));
    VF cneg = VASF(VSLLI(VANDI(VSRLI(VADDI(q, one), 1), one), 31));
    *s = VXOR(sv, sneg);
    *c = VXOR(cv, cneg);
}

/* sin and cos of x, |x| <= 8192: x = q pi/2 + r with pi/2 in four parts
 * (8, 12, 24 and 24 bits; the fourth keeps r accurate where x is near a
 * multiple of pi/2 and r is tiny). */
IB_VFN void IB_V(sincos)(VF x, VF *s, VF *c)
{
    VF qf = VROUND(VMUL(x, VSET1(0.636619772367581343f)));
    VF r = VFNMADD(qf, VSET1(1.5703125f), x);
    r = VFNMADD(qf, VSET1(4.837512969970703125e-4f), r);
    r = VFNMADD(qf, VSET1(7.54978995489188216e-8f), r);
    r = VFNMADD(qf, VSET1(-1.7151245100058819e-15f), r);
    IB_V(sincos_core)(VF2I(qf), r, s, c);
}

/* sin and cos of 2 pi u: u = q/4 + t exactly (|t| <= 1/8), r = 2 pi t. */
IB_VFN void IB_V(sincos_2pi)(VF u, VF *s, VF *c)
{
    VF qf = VROUND(VMUL(u, VSET1(4.0f)));
    VF t = VFNMADD(qf, VSET1(0.25f), u);
    IB_V(sincos_core)(VF2I(qf), VMUL(t, VSET1(6.28318530717958648f)), s, c);
}
