"""graphc matmul against NumPy's `a @ b`, side by side in one process: `python benchmarks/gemm.py`.

Square products n x n @ n x n of placeholders compiled with gc.function on the default backend
(llvm), for n in 128, 256, 512, 1024, 2048 in float32 and 256, 1024 in float64. Each figure is
the median of repeats after warm-up (timing.median_seconds); both sides allocate their result.
"executable ms" times the compiled code alone, without gc.function's per-call Python work.
The ratio is NumPy's time over graphc's: 1 means as fast as NumPy, the goal is >= 0.9.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graphc as gc  # noqa: E402
from busy import busy_processes  # noqa: E402
from timing import median_seconds, table  # noqa: E402

CASES = [(128, "float32"), (256, "float32"), (512, "float32"), (1024, "float32"), (2048, "float32"),
         (256, "float64"), (1024, "float64")]
GOAL = 0.9


def gemm(n: int, dtype: str, repeats: int, backend: str | None) -> tuple[float, float, float | None, str]:
    """(numpy seconds, graphc seconds, seconds of the executable alone (None if there is none),
    graphc tier) for one n x n product."""
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, n)).astype(dtype)
    b = rng.normal(size=(n, n)).astype(dtype)
    gc.reset_default_graph()
    x = gc.placeholder(getattr(gc, dtype), [n, n])
    y = gc.placeholder(getattr(gc, dtype), [n, n])
    f = gc.function([x, y], gc.matmul(x, y), backend=backend)
    got = f(a, b)
    want = a @ b
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(n) * 4)
    executable = getattr(f._last, "executable", None)
    tier = getattr(executable, "timings", {}).get("tier", "-")
    t_numpy = median_seconds(lambda: a @ b, repeats=repeats)
    t_graphc = median_seconds(lambda: f(a, b), repeats=repeats)
    # the compiled code without gc.function's per-call work (argument binding, feed checks)
    t_exe = median_seconds(lambda: executable([a, b]), repeats=repeats) if callable(executable) else None
    gc.reset_default_graph()
    return t_numpy, t_graphc, t_exe, tier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per figure (median)")
    parser.add_argument("--quick", action="store_true", help="sizes up to 512 only")
    parser.add_argument("--backend", default=None, help="graphc backend (default: graphc's default, llvm)")
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run while measuring")
    args = parser.parse_args(argv)
    rows = []
    below = 0
    for n, dtype in CASES:
        if args.quick and n > 512:
            continue
        with busy_processes(args.busy):
            t_numpy, t_graphc, t_exe, tier = gemm(n, dtype, args.repeats, args.backend)
        ratio = t_numpy / t_graphc
        below += ratio < GOAL
        flops = 2.0 * n ** 3
        rows.append((f"{n}", dtype, f"{t_numpy * 1e3:.3f}", f"{t_graphc * 1e3:.3f}",
                     "-" if t_exe is None else f"{t_exe * 1e3:.3f}", f"{flops / t_graphc / 1e9:.1f}", tier,
                     f"{ratio:.2f}"))
    print(table(rows, ("n", "dtype", "numpy ms", "graphc ms", "executable ms", "graphc GFLOP/s", "tier",
                       "numpy / graphc")))
    print(f"\nthreads: {os.cpu_count()} cores, GRAPHC_NUM_THREADS={os.environ.get('GRAPHC_NUM_THREADS', '-')}, "
          f"numpy {np.__version__}; goal numpy / graphc >= {GOAL}: "
          + ("met everywhere" if not below else f"missed in {below} of {len(rows)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
