"""Accuracy of the CUDA backend's float32 math on a GPU: each function over a sample of inputs
(random bit patterns across the whole float32 range, plus a dense sweep of [-20, 20]) against
NumPy in float64, as the max error in ulp of the float32 result.

    python benchmarks/cuda_ulp.py [--samples N]
"""
from __future__ import annotations

import argparse

import numpy as np

import graphc as gc

FUNCTIONS = {
    "exp": (gc.exp, np.exp), "expm1": (gc.expm1, np.expm1), "log": (gc.log, np.log),
    "log1p": (gc.log1p, np.log1p), "tanh": (gc.tanh, np.tanh), "sin": (gc.sin, np.sin), "cos": (gc.cos, np.cos),
    "sigmoid": (gc.sigmoid, lambda x: 1 / (1 + np.exp(-x))), "erf": (gc.erf, None),
    "rsqrt": (gc.rsqrt, lambda x: 1 / np.sqrt(x)), "sqrt": (gc.sqrt, np.sqrt),
}


def inputs(samples: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 1 << 32, size=samples, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    x = x[np.isfinite(x)]
    sweep = np.linspace(-20, 20, samples, dtype=np.float32)
    return np.concatenate([x, sweep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1 << 24)
    opts = parser.parse_args()
    x = inputs(opts.samples)
    x64 = x.astype(np.float64)
    from scipy.special import erf

    rows = []
    for name, (fn, ref) in FUNCTIONS.items():
        ref = ref or erf
        gc.reset_default_graph()
        t = gc.placeholder(gc.float32, [x.size], name="x")
        with gc.Session(backend="cuda") as sess:
            got = sess.run(fn(t), {t: x}).astype(np.float64)
        with np.errstate(all="ignore"):
            want = ref(x64)
            ok = np.isfinite(want) & (np.abs(want) <= np.finfo(np.float32).max)
            ulp = np.spacing(np.abs(want[ok]).astype(np.float32)).astype(np.float64)
            err = np.abs(got[ok] - want[ok]) / ulp
        worst = int(np.nanargmax(err))
        nonfinite_match = np.array_equal(np.isnan(got[~ok]), np.isnan(want[~ok]))
        rows.append(f"| {name} | {err[worst]:.2f} | {x[ok][worst]!r} | {'yes' if nonfinite_match else 'NO'} |")
    print(f"float32 max error in ulp over {x.size} inputs (GPU: backend cuda)")
    print("| function | max ulp | at x | NaN where NumPy has NaN |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
