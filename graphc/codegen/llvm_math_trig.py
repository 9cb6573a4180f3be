"""sin and cos as branch-free IR (see ``llvm_math`` for the contract).

|x| = n*pi/2 + r with |r| <= pi/4; then sin|x| and cos|x| are +-sin(r) or +-cos(r) by n mod 4
(cos x = sin(|x| + pi/2) uses quadrant n+1), with minimax odd/even polynomials on [0, pi/4].

float32 reduction, both paths always computed and one selected:

* |x| < 2**17: Cody-Waite in single precision with pi/2 in three parts (with FMA the first step is
  exact; without FMA the parts have trailing zeros so the products are exact, below 2**8 only).
* |x| >= 2**17 (2**8 without FMA), up to 3.4e38: Payne-Hanek on integers. With |x| = m * 2**s
  (24-bit m), m * (2/pi) * 2**(s+62) mod 2**64 is a fixed-point number whose top two bits are
  n mod 4 and whose other 62 bits are the fraction. Only a 96-bit window of the bits of 2/pi
  contributes; it starts at bit 130 - s of floor(2/pi * 2**198), so it is cut from four of seven
  32-bit words chosen by selects (no table loads, no gathers) with funnel shifts, and three
  32x32-bit products give the result. This path is computed for every element (no branches) and
  is about 3/4 of the cost of float32 sin/cos.

float64 reduction: Cody-Waite with pi/2 in three doubles, kept as a double-double r = rh + rl
(exact products and sums), accurate for |x| < 2**50 (n < 2**51). Beyond 2**50 the f64 kernels
return NaN (a Payne-Hanek for doubles needs a 1100-bit table, i.e. gathers on every element).
"""
from __future__ import annotations

from llvmlite import ir

from .llvm_math_base import F64, I32, I64, Emitter, intrinsic

TWO_OVER_PI = 0.6366197723675814
# bits of 2/pi: floor(2/pi * 2**256); the kernels use floor(2/pi * 2**198)
TWO_OVER_PI_BITS = 0xA2F9836E4E441529FC2757D1F534DDC0DB6295993C439041FE5163ABDEBBC561
PH_K = 198
F32_CW_LIMIT = {True: 2.0 ** 17, False: 2.0 ** 8}  # by FMA availability
F64_LIMIT = 2.0 ** 50
# pi/2 in parts: with FMA (full precision: the first step is exact), without FMA (trailing zeros)
PIO2_F32_FMA = (1.5707963705062866, -4.371138828673793e-08, -1.7151245100058819e-15)
PIO2_F32_NOFMA = (1.5703125, 0.0004837512969970703, 7.549789954891874e-08)  # exact n*part, n < 2**8
PIO2_F64 = (1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33)
# sin(r) - r = sum c_j r**(3+2j); cos(r) - 1 + r*r/2 = sum c_j r**(4+2j), |r| <= pi/4
SIN = {"f32": (-0.1666666716337204, 0.008333329111337662, -0.00019839312881231308, 2.7181215500604594e-06),
       "f64": (-0.16666666666666666, 0.008333333333333323, -0.000198412698412548, 2.7557319214064943e-06,
               -2.5052104881876344e-08, 1.6058363168003235e-10, -7.578540442603465e-13)}
COS = {"f32": (0.0416666679084301, -0.0013888883404433727, 2.4799459424684756e-05, -2.7205754804526805e-07),
       "f64": (0.041666666666666664, -0.0013888888888888872, 2.480158730157055e-05, -2.75573192149998e-07,
               2.0876754287084825e-09, -1.147028484380269e-11, 4.7377508133395196e-14)}


def _reduce_cw_f32(em: Emitter, a):
    nf, n = em.rint(em.mul(a, em(TWO_OVER_PI)))
    r, neg_n = a, em.neg(nf)
    for part in PIO2_F32_FMA if em.has_fma else PIO2_F32_NOFMA:
        r = em.fma(neg_n, em(part), r)
    return n, r


def _reduce_payne_hanek_f32(em: Emitter, a):
    """(n mod 4 as i32, r as float) for |x| = a >= 2**17 (garbage, but no poison, below)."""
    b = em.b
    c64 = lambda v: ir.Constant(I64, v)  # noqa: E731
    bits = em.bits(a)
    m = b.zext(b.or_(b.and_(bits, em.i(0x7FFFFF)), em.i(0x800000)), I64)
    s = b.sub(b.lshr(bits, em.i(23)), em.i(150))  # a = m * 2**s
    pos = b.sub(em.i(PH_K - 94), s)  # first bit of the 96-bit window
    j, sh = b.ashr(pos, em.i(5)), b.and_(pos, em.i(31))
    g = TWO_OVER_PI_BITS >> (256 - PH_K)
    word = lambda k: em.i((g >> (32 * k)) & 0xFFFFFFFF)  # noqa: E731
    is_j = [b.icmp_signed("==", j, em.i(v)) for v in range(3)]
    words = []
    for t in range(4):  # words[t] = word(j + t), j in 0..3
        w = word(t + 3)
        for v in (2, 1, 0):
            w = b.select(is_j[v], word(t + v), w)
        words.append(w)
    fshr = intrinsic(b.module, "fshr", I32, [I32] * 3, "i32")
    win = [b.call(fshr, [words[t + 1], words[t], sh]) for t in range(3)]  # bits pos+32t .. pos+32t+31
    prods = [b.mul(m, b.zext(win[0], I64)), b.mul(m, b.zext(win[1], I64)),
             b.zext(b.mul(b.trunc(m, I32), win[2]), I64)]  # only the low 32 bits of the top product count
    q = b.add(b.add(b.shl(prods[2], c64(32)), prods[1]), b.lshr(prods[0], c64(32)))
    n = b.lshr(b.add(q, c64(1 << 61)), c64(62))
    frac = b.sub(q, b.shl(n, c64(62)))  # signed, |frac| <= 2**61: fraction of a quadrant * 2**62
    r = b.fmul(b.sitofp(frac, F64), ir.Constant(F64, 3.4061215800865545e-19))  # * pi/2 * 2**-62
    return b.trunc(n, I32), b.fptrunc(r, em.ty)


def _reduce_f64(em: Emitter, a):
    """(n, rh, rl) with a = n*pi/2 + rh + rl, for a < 2**50."""
    nf, n = em.rint(em.mul(a, em(TWO_OVER_PI)))
    p1, p2, p3 = PIO2_F64
    if em.has_fma:
        r1, extra = em.fma(em.neg(nf), em(p1), a), em(0.0)  # exact
    else:
        ph, extra = em.two_prod(nf, em(p1))
        r1 = em.sub(a, ph)  # exact (Sterbenz)
    qh, ql = em.two_prod(nf, em(p2))
    r2, e2 = em.two_sum(r1, em.neg(qh))
    low = em.sub(em.sub(em.sub(e2, ql), extra), em.mul(nf, em(p3)))
    rh, rl = em.fast_two_sum(r2, low)
    return n, rh, rl


def _sin_cos_f32(em: Emitter, r):
    z = em.mul(r, r)
    s = em.fma(em.mul(r, z), em.horner(z, SIN["f32"]), r)
    c = em.fma(em.mul(z, z), em.horner(z, COS["f32"]), em.fma(em(-0.5), z, em(1.0)))
    return s, c


def _sin_cos_f64(em: Emitter, rh, rl):
    """sin and cos of rh + rl (|rl| <~ ulp(rh)) to first order in rl; cos keeps 1 - z/2 exact-ish."""
    zh, zl = em.two_prod(rh, rh)
    s_tail = em.fma(em.mul(rh, zh), em.horner(zh, SIN["f64"]), em.fma(em.mul(em(-0.5), zh), rl, rl))
    s = em.add(rh, s_tail)
    hz = em.mul(em(0.5), zh)
    w = em.sub(em(1.0), hz)
    small = em.sub(em.fma(em.mul(zh, zh), em.horner(zh, COS["f64"]), em.neg(em.mul(rh, rl))), em.mul(em(0.5), zl))
    c = em.add(w, em.add(em.sub(em.sub(em(1.0), w), hz), small))
    return s, c


def _assemble(em: Emitter, n, s, c, sign_from=None):
    """sin(n*pi/2 + r): c for odd n, s for even n; negated when bit 1 of n is set (and by x's sign)."""
    b, width = em.b, em.fmt.bits
    odd = b.icmp_signed("!=", b.and_(n, em.i(1)), em.i(0))
    flip = b.shl(b.and_(n, em.i(2)), em.i(width - 2))
    if sign_from is not None:
        flip = b.xor(flip, b.and_(em.bits(sign_from), em.i(1 << (width - 1))))
    return em.from_bits(b.xor(em.bits(em.sel(odd, c, s)), flip))


def _kernel(em: Emitter, x, quadrant_shift: int, signed: bool):
    a = em.abs(x)
    if em.fmt.suffix == "f32":
        n, r = _reduce_cw_f32(em, a)
        n_ph, r_ph = _reduce_payne_hanek_f32(em, a)
        big = em.cmp(">=", a, em(F32_CW_LIMIT[em.has_fma]))
        n, r = em.b.select(big, n_ph, n), em.sel(big, r_ph, r)
        s, c = _sin_cos_f32(em, r)
        ok = em.cmp("<", a, em(float("inf")))
    else:
        n, rh, rl = _reduce_f64(em, a)
        s, c = _sin_cos_f64(em, rh, rl)
        ok = em.cmp("<", a, em(F64_LIMIT))
    n = em.b.add(n, em.i(quadrant_shift))
    res = _assemble(em, n, s, c, x if signed else None)
    return em.sel(ok, res, em(float("nan")))


def sin(em: Emitter, x):
    return _kernel(em, x, 0, True)


def cos(em: Emitter, x):
    return _kernel(em, x, 1, False)
