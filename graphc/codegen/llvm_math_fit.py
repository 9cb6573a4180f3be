"""Developer tool: derive the polynomial coefficients used by the ``llvm_math_*`` kernels.

Not imported by graphc. Run ``PYTHONPATH=<dir with mpmath> python -m graphc.codegen.llvm_math_fit``
(needs ``mpmath``, which is not a graphc dependency) to recompute every table and print it with the
weighted max error of the rounded coefficients (in bits, -log2). Each fit is a discrete Remez
exchange: minimise ``max |w(x) * (g(x) - sum_j c_j * x**p_j)|`` over a dense Chebyshev grid, the
weight turning it into the relative error of the final function value.
"""
from __future__ import annotations

import struct


def remez(mp, g, w, a, b, powers, npts=2000, iters=60):
    """Coefficients (mpf) of sum c_j x**p_j minimising the weighted max error on [a, b]."""
    n = len(powers)
    xs = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * (k + mp.mpf(0.5)) / npts) for k in range(npts)]
    gv, wv = [g(x) for x in xs], [w(x) for x in xs]
    ref = [int(round(i * (npts - 1) / n)) for i in range(n + 1)]
    best = None
    for _ in range(iters):
        rows = [[xs[i] ** p for p in powers] + [(-1) ** k / wv[i]] for k, i in enumerate(ref)]
        sol = mp.lu_solve(mp.matrix(rows), mp.matrix([gv[i] for i in ref]))
        coef, lev = [sol[j] for j in range(n)], abs(sol[n])
        err = [wv[i] * (gv[i] - sum(c * xs[i] ** p for c, p in zip(coef, powers))) for i in range(npts)]
        best = coef
        emax = max(abs(e) for e in err)
        if emax <= lev * (1 + mp.mpf(10) ** -4):
            break
        # one extremum per run of equal sign, then trim to n+1 keeping the largest alternation
        runs, start = [], 0
        for i in range(1, npts + 1):
            if i == npts or (err[i] >= 0) != (err[start] >= 0):
                runs.append(max(range(start, i), key=lambda j: abs(err[j])))
                start = i
        while len(runs) > n + 1:
            drop = 0 if abs(err[runs[0]]) < abs(err[runs[-1]]) else len(runs) - 1
            runs.pop(drop)
        if len(runs) == n + 1:
            ref = runs
    return best


def rounded(mp, coef, kind):
    """Round to the target float format (as Python floats)."""
    if kind == "f64":
        return [float(c) for c in coef]
    return [struct.unpack("f", struct.pack("f", float(c)))[0] for c in coef]


def check(mp, g, w, a, b, powers, coef, npts=20000):
    """-log2 of the weighted max error of the given coefficients."""
    worst = 0
    for k in range(npts + 1):
        x = a + (b - a) * mp.mpf(k) / npts
        if x == 0:
            continue
        e = abs(w(x) * (g(x) - sum(mp.mpf(c) * x ** p for c, p in zip(coef, powers))))
        worst = max(worst, e)
    return float(-mp.log(worst, 2)) if worst else float("inf")


def jobs(mp):
    """name -> (kind, g, w, a, b, powers)."""
    ln2h, pio4 = mp.log(2) / 2, mp.pi / 4
    sq = mp.sqrt(2)
    expm1_g = lambda r: mp.expm1(r) - r  # noqa: E731
    expm1_w = lambda r: 1 / abs(mp.expm1(r))  # noqa: E731
    log_g = lambda f: mp.log1p(f) - f + f * f / 2  # noqa: E731
    log_w = lambda f: 1 / abs(mp.log1p(f))  # noqa: E731
    atanh_g = lambda s: 2 * mp.atanh(s) / s - 2  # noqa: E731  (R of log1p = 2s + s*R)
    erfc_r = lambda x: mp.erfc(x) * mp.exp(x * x)  # noqa: E731  (erfc = exp(-x*x) * R)
    erfc_w = lambda x: mp.exp(-x * x) / mp.erf(x)  # noqa: E731
    c0 = 2 / mp.sqrt(mp.pi)  # erf(x) = c0*x + x**3 * P(x*x), c0 applied in two parts
    erf_g = lambda x: (mp.erf(x) - c0 * x) / x ** 3  # noqa: E731
    erf_w = lambda x: x ** 3 / mp.erf(x)  # noqa: E731
    return {
        "exp_f32": ("f32", expm1_g, lambda r: 1 / mp.exp(r), -ln2h, ln2h, range(2, 7)),
        "exp_f64": ("f64", expm1_g, lambda r: 1 / mp.exp(r), -ln2h, ln2h, range(2, 13)),
        "expm1_f32": ("f32", expm1_g, expm1_w, -ln2h, ln2h, range(2, 8)),
        "expm1_f64": ("f64", expm1_g, expm1_w, -ln2h, ln2h, range(2, 14)),
        "tanh_expm1_f32": ("f32", expm1_g, expm1_w, -mp.mpf(2) ** -16, 2 * ln2h * (1 + mp.mpf(2) ** -10) + mp.mpf(2) ** -16, range(2, 8)),
        "log_f32": ("f32", log_g, log_w, 1 / sq - 1, sq - 1, range(3, 12)),
        "log_f64": ("f64", atanh_g, lambda s: 1 / 2, mp.mpf(1e-30), 3 - 2 * sq, range(2, 16, 2)),
        "pow32_log": ("f64", atanh_g, lambda s: 1 / 2, mp.mpf(1e-30), 3 - 2 * sq, range(2, 9, 2)),
        "pow32_exp": ("f64", expm1_g, lambda r: 1 / mp.exp(r), -ln2h, ln2h, range(2, 9)),
        "logk_f64": ("f64", lambda s: 2 * mp.atanh(s) - 2 * s - 2 * s ** 3 / 3 - 2 * s ** 5 / 5, lambda s: 1 / s,
                     mp.mpf(1e-30), 3 - 2 * sq, range(7, 22, 2)),
        "sin_f32": ("f32", lambda r: mp.sin(r) - r, lambda r: 1 / mp.sin(r), mp.mpf(1e-30), pio4, range(3, 10, 2)),
        "cos_f32": ("f32", lambda r: mp.cos(r) - 1 + r * r / 2, lambda r: 1 / mp.cos(r), 0, pio4, range(4, 11, 2)),
        "sin_f64": ("f64", lambda r: mp.sin(r) - r, lambda r: 1 / mp.sin(r), mp.mpf(1e-30), pio4, range(3, 16, 2)),
        "cos_f64": ("f64", lambda r: mp.cos(r) - 1 + r * r / 2, lambda r: 1 / mp.cos(r), 0, pio4, range(4, 17, 2)),
        "erf_small_f32": ("f32", erf_g, erf_w, mp.mpf(1e-30), 1, range(0, 12, 2)),
        "erfc_r_f32": ("f32", lambda t: erfc_r(t + 2), lambda t: erfc_w(t + 2), -1, mp.mpf(1.95), range(0, 9)),
        "erf_small_f64": ("f64", erf_g, erf_w, mp.mpf(1e-30), 1, range(0, 24, 2)),
        "erfc_r_f64": ("f64", lambda t: erfc_r(t + 3), lambda t: erfc_w(t + 3), -2, mp.mpf(2.95), range(0, 23)),
    }


def main() -> None:  # pragma: no cover - developer tool
    import sys

    import mpmath as mp

    mp.mp.dps = 60
    names = sys.argv[1:] or list(jobs(mp))
    for name in names:
        kind, g, w, a, b, powers = jobs(mp)[name]
        powers = list(powers)
        a, b = mp.mpf(a), mp.mpf(b)
        coef = rounded(mp, remez(mp, g, w, a, b, powers), kind)
        print(f"{name}: powers {powers}  error 2**-{check(mp, g, w, a, b, powers, coef, 4000):.1f}")
        print("    (" + ", ".join(repr(c) for c in coef) + ")")


if __name__ == "__main__":  # pragma: no cover
    main()
