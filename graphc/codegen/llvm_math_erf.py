"""erf and rsqrt as branch-free IR (see ``llvm_math`` for the contract).

erf is odd; with a = |x| three pieces are computed and one selected:

* a < 1: erf(a) = c0*a + a**3 * P(a*a), c0 = 2/sqrt(pi) applied in two parts (a rounded c0 alone
  would already cost half an ulp).
* 1 <= a < 3.95 (f32) / 5.95 (f64): erf(a) = 1 - exp(-a*a) * R(a - 2 | a - 3), where
  R(a) = exp(a*a) * erfc(a) is smooth; the fit weights R's error by exp(-a*a), i.e. by its effect on
  erf. a*a is split exactly (hi + lo) and exp(-a*a) = exp(-hi) * (1 - lo).
* beyond: erf rounds to 1.

rsqrt(x) = 1 / sqrt(x): two correctly rounded operations (< 1 ulp), and IEEE gives the special
values NumPy's ``1/np.sqrt(x)`` gives (+-0 -> +-inf, inf -> 0, x < 0 -> NaN).
"""
from __future__ import annotations

from .llvm_math_base import Emitter
from .llvm_math_exp import exp_core

TWO_OVER_SQRT_PI = {"f32": (1.128379225730896, -5.863538342219759e-08),
                    "f64": (1.1283791670955126, 1.533545961316588e-17)}
# (erf(a) - c0*a) / a**3 = sum c_j a**(2j) on [0, 1] (relative error of erf 2**-26.1 / 2**-56.3)
SMALL = {"f32": (-0.3761262893676758, 0.11283617466688156, -0.02685491554439068, 0.00519016245380044,
                 -0.0008024818380363286, 7.898694457253441e-05),
         "f64": (-0.3761263890318375, 0.11283791670954908, -0.02686617064508015, 0.005223977624838851,
                 -0.0008548326981601587, 0.00012055331128935701, -1.4925595497316136e-05,
                 1.6461001968351381e-06, -1.6350310475844308e-07, 1.4659665964725614e-08,
                 -1.1372137165905392e-09, 5.955579778321331e-11)}
# exp(a*a) * erfc(a) = sum c_j (a - center)**j on [1, end] (error of erf 2**-28.5 / 2**-59.6)
TAIL = {"f32": (2.0, 3.95, (0.2553955912590027, -0.10679782181978226, 0.04180185869336128, -0.015442007221281528,
                            0.005475275684148073, -0.0018605146324262023, 0.0005017800722271204,
                            -0.00020052520267199725, 0.00010819534509209916)),
        "f64": (3.0, 5.95, (0.1790011511813925, -0.054372260007193605, 0.015884371159485846, -0.004479431019159508,
                            0.0012230390563133888, -0.00032412552873629333, 8.355414438271253e-05,
                            -2.0989520180853102e-05, 5.146353879934836e-06, -1.233339755929309e-06,
                            2.894228657546568e-07, -6.637333663946776e-08, 1.489819872414187e-08,
                            -3.4325616730744783e-09, 6.980434717838442e-10, -1.0991355618517567e-10,
                            6.009371687510577e-11, -7.86665490051645e-12, -5.171628549983542e-12,
                            -2.1857999048300136e-12, 3.126821879977863e-13, 2.2065648824929274e-13,
                            3.876956480722178e-14))}


def erf(em: Emitter, x):
    kind = em.fmt.suffix
    a = em.abs(x)
    zh, zl = em.two_prod(a, a)
    c0h, c0l = TWO_OVER_SQRT_PI[kind]
    small = em.fma(a, em(c0h), em.mul(a, em.fma(zh, em.horner(zh, SMALL[kind]), em(c0l))))
    center, end, coeffs = TAIL[kind]
    # no subnormals (slow on x86), so one exact scaling
    e = exp_core(em, em.clamp(em.neg(zh), -(end * end + 1), 0.0), offset=0)
    e = em.fma(e, em.neg(zl), e)  # exp(-zh - zl) to first order
    tail = em.fma(em.neg(e), em.horner(em.sub(a, em(center)), coeffs), em(1.0))
    res = em.sel(em.cmp("<", a, em(1.0)), small, em.sel(em.cmp(">=", a, em(end)), em(1.0), tail))
    return em.copysign(res, x)


def rsqrt(em: Emitter, x):
    return em.div(em(1.0), em.sqrt(x))
