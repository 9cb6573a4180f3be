"""exp, expm1, tanh and sigmoid as branch-free IR (see ``llvm_math`` for the contract).

All four share one reduction: x = n*ln2 + r with n = rint(x/ln2) and |r| <= ln2/2, computed with
ln2 split in two parts (the high part has trailing zero bits, so n*hi is exact even without FMA and
x - n*hi is exact by Sterbenz). ``e**r - 1 = r + r**2 * P(r)`` with minimax P fitted on
[-ln2/2, ln2/2] (``llvm_math_fit``) for the relative error of e**r (exp, sigmoid) or of e**r - 1
(expm1, tanh, which also keep r and the final sum in double-word form). Scaling by 2**n goes
through two exact power-of-two factors so that overflow to inf and gradual underflow into the
subnormals happen in the final multiplication, with no special-case code: clamping x keeps n in
the range where the factors are normal numbers, and the clamp is written with selects so NaN
propagates. Callers whose result is known to be normal (tanh's e**2|x|, erf's e**-x**2,
sigmoid's e**-|x| scaled by 2**64) scale once instead. Both read the factors straight from the
bits of the rounding sum (``Emitter.rint_scale``): two-step scalings took a sixth of the
elementwise chain's time.
"""
from __future__ import annotations

from .llvm_math_base import Emitter

# e**r - 1 - r = sum_{j>=2} c_j r**j on |r| <= ln2/2 (relative error of e**r - 1: 2**-28.8 / 2**-59.3).
EXPM1_COEFFS = {
    "f32": (0.5, 0.1666666567325592, 0.041666362434625626, 0.008333389647305012, 0.0013940617209300399,
            0.00019845875794999301),
    "f64": (0.5, 0.16666666666666666, 0.04166666666666669, 0.008333333333333312, 0.0013888888888872327,
            0.00019841269841342765, 2.480158734935688e-05, 2.755731911756274e-06, 2.755725248848915e-07,
            2.505216775380657e-08, 2.092141207995065e-09, 1.6059708799108844e-10),
}
# The same for exp alone, fitted for the relative error of e**r (2**-28.0 / 2**-60.3): one term less.
EXP_COEFFS = {
    "f32": (0.4999999403953552, 0.1666652113199234, 0.04166838899254799, 0.008368710055947304,
            0.001381461275741458),
    "f64": (0.5, 0.16666666666666682, 0.041666666666666095, 0.008333333333317048, 0.0013888888889115446,
            0.0001984126989635075, 2.4801586926856e-05, 2.7557234895668536e-06, 2.7557581746577484e-07,
            2.5112024846282957e-08, 2.0826635711932592e-09),
}
# ln2 = hi + lo; hi keeps 15 (f32) / 32 (f64) significant bits so that n*hi is exact.
LN2 = {"f32": (0.693145751953125, 1.4286068203094173e-06), "f64": (0.6931471803691238, 1.9082149292705877e-10)}
LOG2E = 1.4426950408889634
# exp clamps: beyond these the result is 0 or inf anyway; n then stays within [-2*bias-2, 2*bias+2].
EXP_RANGE = {"f32": (-104.0, 89.0), "f64": (-746.0, 710.0)}
# expm1 clamps: below lo, e**x < half an ulp of 1 and the result is -1.
EXPM1_RANGE = {"f32": (-20.0, 89.0), "f64": (-40.0, 710.0)}


def reduce_ln2(em: Emitter, x, extra=None, offset: int | None = None):
    """(code, r) with x + extra = n*ln2 + r, |r| <~ ln2/2; code is the ``rint_scale`` code of n
    (for ``pow2_code``, 2**(n + offset), or with offset None for ``ldexp_code``)."""
    nf, code = em.rint_scale(x, LOG2E, offset or 0, halves=offset is None)
    r = minus_n_ln2(em, nf, x)
    return code, (r if extra is None else em.add(r, extra))


def minus_n_ln2(em: Emitter, nf, x):
    """x - n*ln2 for an integer-valued float n, with ln2 in two parts (see the module docstring)."""
    hi, lo = LN2[em.fmt.suffix]
    neg_n = em.neg(nf)
    return em.fma(neg_n, em(lo), em.fma(neg_n, em(hi), x))


def expm1_poly(em: Emitter, r, coeffs=EXPM1_COEFFS):
    """e**r - 1 for |r| <= ln2/2, relative error well below one ulp (of e**r with EXP_COEFFS)."""
    return em.fma(em.mul(r, r), em.horner(r, coeffs[em.fmt.suffix]), r)


def exp_core(em: Emitter, x, extra=None, offset: int | None = None):
    """e**(x + extra) for x already clamped to EXP_RANGE (extra: a small low-order correction).

    With an integer offset, 2**offset * e**(x + extra) in one exact scaling, for callers whose
    scaled result is a normal number (cheaper than the two steps that overflow and gradual
    underflow need)."""
    code, r = reduce_ln2(em, x, extra, offset)
    q = expm1_poly(em, r, EXP_COEFFS)  # e**r - 1
    if offset is None:
        return em.ldexp_code(q, code, one_plus=True)
    s = em.pow2_code(code)
    return em.fma(q, s, s)  # (1 + q) * s, rounded once: s is an exact power of two


def expm1_core(em: Emitter, x):
    """e**x - 1 for x already clamped to EXPM1_RANGE (wrong for |x| < 2**-mant: callers select x).

    With the reduced argument as a double-word r1 + rl (x - n*ln2_hi is exact; adding -n*ln2_lo
    with a two-sum) and e**r - 1 = r1 + t, e**x - 1 = 2 * ((h - 1/2) + h*r1 + h*t) with h = 2**(n-1):
    the first two terms are added exactly (two-sum) so the result is rounded about once; h instead
    of 2**n keeps n = bias+1 (just below overflow) representable.
    """
    nf, code = em.rint_scale(x, LOG2E, offset=-1)
    hi, lo = LN2[em.fmt.suffix]
    r1, rl = em.two_sum(em.fma(em.neg(nf), em(hi), x), em.mul(em.neg(nf), em(lo)))
    p2 = em.mul(em.mul(r1, r1), em.horner(r1, EXPM1_COEFFS[em.fmt.suffix]))  # e**r1 - 1 - r1
    t = em.fma(rl, em.add(em.add(em(1.0), r1), p2), p2)  # + rl * e**r1
    half = em.pow2_code(code)  # 2**(n-1)
    s, e = em.two_sum(em.sub(half, em(0.5)), em.mul(half, r1))
    return em.mul(em(2.0), em.add(s, em.fma(half, t, e)))


def _tiny(em: Emitter, x):
    """|x| < 2**-(mant+2): where expm1(x) and tanh(x) round to x."""
    return em.cmp("<", em.abs(x), em(2.0 ** -(em.fmt.mant + 2)))


def _ratio(em: Emitter, num, a, b):
    """num / (a + b). float64 forms a + b exactly and corrects the quotient once with the fused
    residual (about half an ulp better than the two plain roundings float32 keeps)."""
    if em.fmt.suffix == "f32":
        return em.div(num, em.add(a, b))
    dh, dl = em.two_sum(a, b)
    q = em.div(num, dh)
    resid = em.fma(em.neg(q), dl, em.fma(em.neg(q), dh, num))  # num - q*(dh + dl)
    return em.add(q, em.div(resid, dh))


def exp(em: Emitter, x):
    return exp_core(em, em.clamp(x, *EXP_RANGE[em.fmt.suffix]))


def expm1(em: Emitter, x):
    res = expm1_core(em, em.clamp(x, *EXPM1_RANGE[em.fmt.suffix]))
    return em.sel(_tiny(em, x), x, res)  # also keeps -0.0 and subnormals exact


# float32 tanh works with y = 2|x| = n*ln2 + r, n = rint(y/ln2 - 0.499): r in [0, ln2*1.001] (not
# centred on 0), so 2**n * (1 + q) - 1 adds only non-negative terms and never cancels.
# e**r - 1 = r + r**2 * P(r) fitted on that interval for the relative error of e**r - 1 (2**-30.6;
# llvm_math_fit's tanh_expm1_f32).
TANH_SHIFT = -0.5 + 2.0 ** -10
TANH_EXPM1_COEFFS = (0.4999999701976776, 0.16666744649410248, 0.041659336537122726, 0.008364900946617126,
                     0.0013211112236604095, 0.0002679221797734499)


def _tanh_f32(em: Emitter, x):
    """tanh|x| = m / (m + 2) with m = e**(2|x|) - 1 = fma(2**n, q, 2**n - 1): one formula for the
    whole range, with no second branch to evaluate and select (the vectorized loop computes
    both branches of a select). 2**n - 1 is exact for the n that matter (n <= 24; above, the
    result rounds to 1 anyway), the fused step rounds once, and the division's and m + 2's
    roundings give a max error of 2.42 ulp over every float32 (2.44 without FMA). The former
    odd polynomial below 0.625 plus 1 - 2/(e + 1) above was 1.33 ulp and a third more operations:
    tanh is the costliest function of common network graphs, so its speed won."""
    a = em.abs(x)
    a = em.sel(em.cmp(">", a, em(10.0)), em(10.0), a)  # tanh rounds to 1 (avoids inf/inf)
    y = em.add(a, a)
    # the shift is added before the rounding constant: magic - 0.5 is not a float32
    nf, code = em.rint_scale(em.fma(a, em(2 * LOG2E), em(TANH_SHIFT)), 1.0)
    r = minus_n_ln2(em, nf, y)
    q = expm1_poly(em, r, {"f32": TANH_EXPM1_COEFFS})
    s = em.pow2_code(code)
    m = em.fma(s, q, em.sub(s, em(1.0)))
    return em.copysign(em.div(m, em.add(m, em(2.0))), x)


def tanh(em: Emitter, x):
    """float64: tanh|x| = m / (m + 2) with m = expm1(2|x|): no cancellation anywhere, so the
    error is that of m plus the corrected division's (1.5 ulp). float32: ``_tanh_f32``.

    |x| is clamped (10 in float32, 20 in float64) where tanh rounds to 1 (avoids inf/inf).
    """
    if em.fmt.suffix == "f32":
        return _tanh_f32(em, x)
    a = em.abs(x)
    a = em.sel(em.cmp(">", a, em(20.0)), em(20.0), a)
    m = expm1_core(em, em.add(a, a))
    return em.sel(_tiny(em, x), x, em.copysign(_ratio(em, m, m, em(2.0)), x))


# sigmoid works with e**-|x| scaled by 2**SIGMOID_SCALE: a normal number down to the clamp, so
# one exact scaling makes it (not exp's two), and tiny results are rounded once, by the division.
SIGMOID_SCALE = 64


def sigmoid(em: Emitter, x):
    """1 / (1 + e**-x) for x >= 0 and e**x / (1 + e**x) for x < 0, from one e = exp(-|x|).

    The second form keeps full relative accuracy where the result is tiny (down to subnormals),
    where 1 / (1 + e**-x) would overflow to 0. Both are computed scaled by S = 2**64, as
    S / (S + S*e) and S*e / (S + S*e): the same roundings as unscaled wherever S*e / S is a
    normal number, and a single rounding (the division's) where the result is subnormal.
    """
    scale = em(2.0 ** SIGMOID_SCALE)
    e = exp_core(em, em.clamp(em.neg(em.abs(x)), EXP_RANGE[em.fmt.suffix][0], 0.0), offset=SIGMOID_SCALE)
    num = em.sel(em.cmp(">=", x, em(0.0)), scale, e)
    return _ratio(em, num, scale, e)
