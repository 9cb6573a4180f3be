"""Exhaustive accuracy of graphc's float32 math: every finite float32 input (2**32 - 2**24 of
them) through the vectorized loop the LLVM backend inlines, against NumPy in float64, reported
as the max error in ulp of the float32 result. Minutes per function on 2 cores.

    python benchmarks/math_ulp.py tanh [--generic]      (--generic: baseline x86-64, no FMA)
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from graphc.codegen.llvm_math import compile_elementwise_loop

REFERENCES = {
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh, "sin": np.sin,
    "cos": np.cos, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "rsqrt": lambda x: 1 / np.sqrt(x),
}


def max_ulp(name: str, generic: bool = False, step: int = 1 << 25) -> tuple[float, float]:
    """(max error in ulp, an input where it occurs) over every finite float32."""
    options = {"fma": False, "cpu": "x86-64", "features": ""} if generic else {}
    kernel = compile_elementwise_loop(name, "float32", **options)
    worst, where = 0.0, float("nan")
    for sign in (0, 0x80000000):
        for start in range(0, 0x7F800000, step):
            bits = np.arange(start, min(start + step, 0x7F800000), dtype=np.uint32) | np.uint32(sign)
            x = bits.view(np.float32)
            with np.errstate(all="ignore"):
                ref = REFERENCES[name](x.astype(np.float64))
                got = kernel(x).astype(np.float64)
                finite = np.isfinite(ref) & (np.abs(ref) <= np.finfo(np.float32).max)
                ulp = np.spacing(np.abs(ref[finite]).astype(np.float32)).astype(np.float64)
                err = np.abs(got[finite] - ref[finite]) / ulp
            if err.size and err.max() > worst:
                i = int(np.argmax(err))
                worst, where = float(err[i]), float(x[finite][i])
    return worst, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", choices=sorted(REFERENCES))
    parser.add_argument("--generic", action="store_true", help="baseline x86-64 without FMA")
    args = parser.parse_args()
    t0 = time.perf_counter()
    worst, where = max_ulp(args.function, args.generic)
    print(f"{args.function} float32{' (generic x86-64)' if args.generic else ''}: max {worst:.3f} ulp "
          f"at x = {where!r} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
