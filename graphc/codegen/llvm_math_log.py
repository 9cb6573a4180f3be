"""log and log1p as branch-free IR (see ``llvm_math`` for the contract).

x = 2**k * (1 + f) with sqrt(1/2) <= 1 + f < sqrt(2) is read off the bits (subnormals are first
scaled by 2**24 / 2**54), so |f| <= 0.414 and f = m - 1 is exact. Then

    log(x) = k*ln2_hi - ((f**2/2 - (tail + k*ln2_lo)) - f)

where ``tail`` carries the higher-order terms of log1p(f): f32 uses a minimax f**3 * P(f) (no
division); f64 uses the fdlibm layout, tail = s*(f**2/2 + R(s*s)) with s = f/(2+f) and a minimax R,
because a polynomial in f would need twice as many terms. Summing the small terms first and ``f``
last keeps the error near 1 ulp.

log1p(x) computes u = 1 + x with its exact rounding error c (two-sum) and adds the first-order
correction c/u ~ c * 2**-k * (1 - f + f**2) to the small terms: where the correction is large
(small f) the truncated 1/(1+f) is accurate, and where it is inaccurate the correction is tiny.
"""
from __future__ import annotations

from .llvm_math_base import Emitter
from .llvm_math_exp import LN2

# log1p(f) - f + f**2/2 = sum_{j=3..11} c_j f**j on [sqrt(1/2)-1, sqrt(2)-1] (relative 2**-28.2)
LOG_F32 = (0.3333330750465393, -0.2499997317790985, 0.20002511143684387, -0.1667034924030304,
           0.14213445782661438, -0.12358973920345306, 0.11886388063430786, -0.11962098628282547,
           0.0710519328713417)
# R(z) = 2*atanh(s)/s - 2 = sum_{j=1..7} c_j z**j, z = s*s, |s| <= 3 - 2*sqrt(2) (2**-58.9)
LOG_F64 = (0.6666666666666734, 0.3999999999941468, 0.28571428742386673, 0.22222198573270982,
           0.1818356432211422, 0.15314050644270147, 0.14795948863168407)
SUBNORMAL_SCALE = {"f32": 24, "f64": 54}
MIN_NORMAL = {"f32": 2.0 ** -126, "f64": 2.0 ** -1022}


def split(em: Emitter, x):
    """(k, f) with x = 2**k * (1 + f), sqrt(1/2) <= 1 + f < sqrt(2); x finite, > 0 (subnormal ok)."""
    sh = SUBNORMAL_SCALE[em.fmt.suffix]
    tiny = em.cmp("<", x, em(MIN_NORMAL[em.fmt.suffix]))
    m, k = em.frexp_sqrt2(em.sel(tiny, em.mul(x, em(2.0 ** sh)), x))
    k = em.b.add(k, em.b.select(tiny, em.i(-sh), em.i(0)))
    return k, em.sub(m, em(1.0))


def log1p_terms(em: Emitter, f):
    """(hf2, tail) with log1p(f) = f - (hf2 - tail), hf2 = f*f/2, for |f| <= 0.4143."""
    hf2 = em.mul(em(0.5), em.mul(f, f))
    if em.fmt.suffix == "f32":
        tail = em.mul(em.mul(em.mul(f, f), f), em.horner(f, LOG_F32))
    else:
        s = em.div(f, em.add(em(2.0), f))
        z = em.mul(s, s)
        tail = em.mul(s, em.add(hf2, em.mul(z, em.horner(z, LOG_F64))))
    return hf2, tail


def combine(em: Emitter, k, f, corr=None):
    """k*ln2 + log1p(f) (+ corr, a tiny correction), smallest terms first."""
    hi, lo = LN2[em.fmt.suffix]
    kf = em.itof(k)
    hf2, tail = log1p_terms(em, f)
    small = em.mul(kf, em(lo)) if corr is None else em.fma(kf, em(lo), corr)
    return em.sub(em.mul(kf, em(hi)), em.sub(em.sub(hf2, em.add(tail, small)), f))


def log(em: Emitter, x):
    k, f = split(em, x)
    res = combine(em, k, f)
    inf = float("inf")
    special = em.sel(em.cmp("==", x, em(0.0)), em(-inf), em.sel(em.cmp("==", x, em(inf)), em(inf), em(float("nan"))))
    finite_pos = em.and_(em.cmp(">", x, em(0.0)), em.cmp("<", x, em(inf)))
    return em.sel(finite_pos, res, special)


def log1p(em: Emitter, x):
    u, c = em.two_sum(em(1.0), x)  # 1 + x == u + c exactly
    m, k = em.frexp_sqrt2(u)  # u >= 2**-24 (or 0, handled below): never subnormal
    f = em.sub(m, em(1.0))
    # c/u = c * 2**-k / (1+f); clamp k so 2**-k stays normal (the correction is negligible there)
    kc = em.b.select(em.b.icmp_signed(">", k, em.i(100)), em.i(100), k)
    sc = em.mul(c, em.pow2(em.b.neg(kc)))
    corr = em.fma(sc, em.fma(f, f, em.neg(f)), sc)
    res = combine(em, k, f, corr)
    res = em.sel(em.cmp("==", x, em(0.0)), x, res)  # keeps -0.0
    inf = float("inf")
    special = em.sel(em.cmp("==", x, em(-1.0)), em(-inf), em.sel(em.cmp("==", x, em(inf)), em(inf), em(float("nan"))))
    valid = em.and_(em.cmp(">", x, em(-1.0)), em.cmp("<", x, em(inf)))
    return em.sel(valid, res, special)
