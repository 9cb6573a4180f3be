"""pow(x, y) = x**y with C99/NumPy semantics, as branch-free IR (see ``llvm_math``).

The core computes |x|**y = exp(y * log|x|) and the special cases are applied afterwards by selects
(C99 Annex F: negative base with odd/even/non-integer exponent, signed zeros, infinities, NaN**0 = 1,
1**NaN = 1, (-1)**inf = 1).

float32 works in double with short polynomials (log|x| to 2**-37, exp to 2**-39): y*log|x| keeps
< 2**-29 absolute error over the range of float results, so the one rounding to float is almost
always the correct one. float64 needs log|x| to ~2**-66 relative because |y*log x| reaches 745: log1p(f) =
2*atanh(s), s = f/(2+f), is evaluated in double-double for 2s + (2/3)s**3 and in double for the
rest, y*log|x| is formed as an exact product plus correction, and the low part enters exp's reduced
argument.
"""
from __future__ import annotations

from .llvm_math_base import Emitter
from .llvm_math_exp import EXP_COEFFS, EXP_RANGE, LN2, LOG2E, minus_n_ln2
from .llvm_math_log import split

# 2*atanh(s) - 2s - 2s**3/3 - 2s**5/5 = sum_{j=0..7} c_j s**(7+2j), |s| <= 3 - 2*sqrt(2) (relative 2**-72.7)
LOGK_F64 = (0.2857142857142852, 0.2222222222225311, 0.18181818174409378, 0.15384616336959062,
            0.1333326083950249, 0.11768075843349558, 0.10432544425280449, 0.10947516059726409)
# float32 pow, in double: 2*atanh(s)/s - 2 = sum c_j s**(2j) (2**-37.6); e**r - 1 - r (2**-39.7)
POW32_LOG = (0.6666666564546053, 0.4000033518990454, 0.285373086053217, 0.23582150106115463)
POW32_EXP = (0.500000000042681, 0.1666666678444181, 0.04166666440508117, 0.008333281808105822,
             0.0013889197129657348, 0.00019908938922785264, 2.4708289043347824e-05)
LN2_F64 = 0.6931471805599453
DD_COEFFS = ((0.6666666666666666, 3.700743415417188e-17), (0.4, -2.2204460492503132e-17))  # 2/3, 2/5


def dd_mul(em: Emitter, ah, al, bh, bl):
    """Double-double product (low-order cross terms only)."""
    ph, pl = em.two_prod(ah, bh)
    return ph, em.fma(ah, bl, em.fma(al, bh, pl))


def log_dd(em: Emitter, ax):
    """log(ax) as a double-double (hi, lo) for finite ax > 0, relative error ~2**-68.

    log(1+f) = 2s + (2/3)s**3 + (2/5)s**5 + s**7*T(s*s): the first three terms (up to 0.34, 3e-3,
    6e-5) are formed and summed exactly in double-double, the rest (< 2e-6) in double.
    """
    k, f = split(em, ax)
    dh, dl = em.fast_two_sum(em(2.0), f)  # 2 + f exactly
    sh = em.div(f, dh)
    p, pe = em.two_prod(sh, dh)
    sl = em.div(em.sub(em.sub(em.sub(f, p), pe), em.mul(sh, dl)), dh)  # s = sh + sl
    s2 = dd_mul(em, sh, sl, sh, sl)
    terms, odd = [(em.add(sh, sh), em.add(sl, sl))], (sh, sl)
    for ch, cl in DD_COEFFS:
        odd = dd_mul(em, *odd, *s2)
        terms.append(dd_mul(em, em(ch), em(cl), *odd))
    tail = em.mul(em.mul(odd[0], s2[0]), em.horner(s2[0], LOGK_F64))
    kf = em.itof(k)
    hi, lo = em.mul(kf, em(LN2["f64"][0])), em.fma(kf, em(LN2["f64"][1]), tail)  # k*ln2_hi is exact
    for th, tl in terms:
        hi, err = em.two_sum(hi, th)
        lo = em.add(lo, em.add(err, tl))
    return em.fast_two_sum(hi, lo)


def exp_dd(em: Emitter, zh, zl):
    """e**(zh + zl) for zh clamped to EXP_RANGE, |zl| <~ ulp(zh): the reduced argument and 1 + r
    are kept in double-double so that the only sizeable error is the final rounding (~0.6 ulp)."""
    nf, code = em.rint_scale(zh, LOG2E, halves=True)
    hi, lo = LN2["f64"]
    r1 = em.fma(em.neg(nf), em(hi), zh)  # exact
    rh, rl = em.two_sum(r1, em.fma(em.neg(nf), em(lo), zl))
    ph, pl = em.fast_two_sum(em(1.0), rh)
    tail = em.fma(em.mul(rh, rh), em.horner(rh, EXP_COEFFS["f64"]), em.add(pl, rl))
    return em.ldexp_code(em.add(ph, tail), code)


def _abs_pow_f32(em: Emitter, ax, y):
    """float32 |x|**y computed in double, where 2**-36 relative accuracy of log|x| is plenty:
    |y*log|x|| <= 104 for a finite non-zero float result, so its absolute error stays < 2**-29."""
    ed = em.other("f64")
    axd, yd = em.b.fpext(ax, ed.ty), em.b.fpext(y, ed.ty)
    m, k = ed.frexp_sqrt2(axd)  # a float is never a subnormal double
    f = ed.sub(m, ed(1.0))
    s = ed.div(f, ed.add(ed(2.0), f))
    z = ed.mul(s, s)
    log = ed.fma(ed.itof(k), ed(LN2_F64), ed.fma(ed.mul(s, z), ed.horner(z, POW32_LOG), ed.add(s, s)))
    t = ed.clamp(ed.mul(yd, log), -110.0, 90.0)
    nf, code = ed.rint_scale(t, LOG2E)
    r = minus_n_ln2(ed, nf, t)
    p = ed.add(ed(1.0), ed.fma(ed.mul(r, r), ed.horner(r, POW32_EXP), r))
    return em.b.fptrunc(ed.mul(p, ed.pow2_code(code)), em.ty)  # 2**n is a normal double; one rounding to float


def _abs_pow(em: Emitter, ax, y):
    """|x|**y for finite ax > 0 and finite y; overflows to inf / underflows to 0 naturally."""
    if em.fmt.suffix == "f32":
        return _abs_pow_f32(em, ax, y)
    lh, ll = log_dd(em, ax)
    zh, zl = em.two_prod(y, lh)
    zl = em.fma(y, ll, zl)
    lo, hi = EXP_RANGE["f64"]
    inside = em.and_(em.cmp(">", zh, em(lo)), em.cmp("<", zh, em(hi)))
    return exp_dd(em, em.clamp(zh, lo, hi), em.sel(inside, zl, em(0.0)))


def integer_class(em: Emitter, ay):
    """(is_int, is_odd) for |y| from its bits: y is an integer when no fraction bits are set."""
    fmt, b = em.fmt, em.b
    bits = em.bits(ay)
    e = b.sub(b.lshr(bits, em.i(fmt.mant)), em.i(fmt.bias))  # unbiased exponent (ay >= 0)
    in_range = b.and_(b.icmp_signed(">=", e, em.i(0)), b.icmp_signed("<=", e, em.i(fmt.mant)))
    sh = b.select(in_range, b.sub(em.i(fmt.mant), e), em.i(0))  # weight of the units bit
    frac_zero = b.icmp_signed("==", b.and_(bits, b.sub(b.shl(em.i(1), sh), em.i(1))), em.i(0))
    units = b.icmp_signed("!=", b.and_(b.lshr(bits, sh), em.i(1)), em.i(0))
    is_int = b.or_(b.or_(b.icmp_signed(">", e, em.i(fmt.mant)), b.and_(in_range, frac_zero)),
                   em.cmp("==", ay, em(0.0)))
    return is_int, b.and_(b.and_(in_range, frac_zero), units)


def pow(em: Emitter, x, y):  # noqa: A001 - the function's name
    inf, nan = float("inf"), float("nan")
    ax, ay = em.abs(x), em.abs(y)
    is_int, is_odd = integer_class(em, ay)
    core = _abs_pow(em, ax, y)
    neg = em.cmp("<", x, em(0.0))
    res = em.sel(em.and_(neg, is_odd), em.neg(core), core)
    res = em.sel(em.and_(neg, em.not_(is_int)), em(nan), res)
    y_neg = em.cmp("<", y, em(0.0))
    # x = +-0 and x = +-inf: 0 or inf by the sign of y, carrying x's sign for odd integer y
    zero_res = em.sel(y_neg, em(inf), em(0.0))
    res = em.sel(em.cmp("==", x, em(0.0)), em.sel(is_odd, em.copysign(zero_res, x), zero_res), res)
    inf_res = em.sel(y_neg, em(0.0), em(inf))
    res = em.sel(em.cmp("==", ax, em(inf)), em.sel(is_odd, em.copysign(inf_res, x), inf_res), res)
    # y = +-inf: 1 for |x| == 1, else inf when (|x| < 1) == (y < 0), else 0
    grows = em.b.icmp_unsigned("==", em.cmp("<", ax, em(1.0)), y_neg)
    yinf = em.sel(em.cmp("==", ax, em(1.0)), em(1.0), em.sel(grows, em(inf), em(0.0)))
    res = em.sel(em.cmp("==", ay, em(inf)), yinf, res)
    res = em.sel(em.b.fcmp_unordered("uno", x, y), em(nan), res)
    return em.sel(em.or_(em.cmp("==", x, em(1.0)), em.cmp("==", y, em(0.0))), em(1.0), res)
