"""graphc's own generated GEMM against OpenBLAS, both single-threaded: `python benchmarks/own_gemm.py`.

The same matmul graph is compiled twice in one process, once with graphc's generated GEMM
(GRAPHC_GEMM=generated, what AOT libraries always use) and once calling the OpenBLAS that NumPy
ships, each in a session limited to one thread (gc.ConfigProto(intra_op_parallelism_threads=1)),
so the ratio compares the two GEMMs and nothing else. Forms: op(A) @ op(B) with no transpose,
A transposed, B transposed, and a batch of 16 products. Each figure is the median over rounds
that alternate the two (timing.compare), after warm-up. The ratio is OpenBLAS time over graphc's
time: 1 means as fast as OpenBLAS, the goal (issue 19) is >= 0.8. `--aot` adds AOT libraries
(which always run graphc's GEMM) against NumPy's `a @ b` with OpenBLAS on one thread.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import graphc as gc  # noqa: E402
from graphc.lower.kernel import GemmCall  # noqa: E402
from busy import busy_processes  # noqa: E402
from timing import compare, table  # noqa: E402

SIZES = (64, 128, 256, 512, 1024, 2048)
FORMS = ("nn", "tn", "nt", "batch16")
GOAL = 0.8


def _callable(graph: gc.Graph, x, y, z, generated: bool, a: np.ndarray, b: np.ndarray):
    """A one-thread session and its callable for z, compiled now (by a first call, while
    GRAPHC_GEMM says which GEMM) and checked to hold that GEMM."""
    saved = os.environ.get("GRAPHC_GEMM")
    os.environ["GRAPHC_GEMM"] = "generated" if generated else "blas"
    try:
        sess = gc.Session(graph=graph, config=gc.ConfigProto(intra_op_parallelism_threads=1))
        run = sess.make_callable(z, [x, y])
        run(a, b)
    finally:
        if saved is None:
            os.environ.pop("GRAPHC_GEMM", None)
        else:
            os.environ["GRAPHC_GEMM"] = saved
    kernels = [k for compiled in sess._cache.values() for k in compiled.executable.kp.kernels]
    gemms = [k for k in kernels if isinstance(k, GemmCall)]
    assert gemms and all(k.generated == generated for k in gemms), "the product did not compile to the GEMM asked for"
    return sess, run


def case(n: int, dtype: str, form: str, rounds: int) -> tuple[float, float]:
    """(OpenBLAS seconds, generated seconds) per product."""
    rng = np.random.default_rng(n)
    batch = (16,) if form == "batch16" else ()
    size = max(16, n // 4) if batch else n   # a batch of 16 smaller products
    ta, tb = form == "tn", form == "nt"
    a = rng.normal(size=batch + (size, size)).astype(dtype)
    b = rng.normal(size=batch + (size, size)).astype(dtype)
    graph = gc.Graph()
    with graph.as_default():
        x = gc.placeholder(getattr(gc, dtype), a.shape)
        y = gc.placeholder(getattr(gc, dtype), b.shape)
        z = gc.matmul(x, y, transpose_a=ta, transpose_b=tb)
    own_sess, own = _callable(graph, x, y, z, True, a, b)
    blas_sess, blas = _callable(graph, x, y, z, False, a, b)
    want = np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
    tol = 1e-4 if dtype == "float32" else 1e-10
    for run in (own, blas):   # compiles, and checks both against NumPy
        np.testing.assert_allclose(run(a, b), want, rtol=tol, atol=tol * np.sqrt(size) * 4)
    times = compare({"blas": lambda: blas(a, b), "own": lambda: own(a, b)}, rounds=rounds)
    own_sess.close()
    blas_sess.close()
    return times["blas"], times["own"]


def aot_case(n: int, dtype: str, rounds: int) -> float:
    """OpenBLAS time over an AOT library's (gc.aot.compile, its own GEMM; called through
    lib.load()'s ctypes wrapper, which allocates the result as NumPy does) for n x n @ n x n."""
    import tempfile

    from graphc.runtime import jit
    rng = np.random.default_rng(n)
    a, b = (rng.normal(size=(n, n)).astype(dtype) for _ in range(2))
    graph = gc.Graph()
    with graph.as_default(), tempfile.TemporaryDirectory() as folder:
        x, y = gc.placeholder(getattr(gc, dtype), [n, n]), gc.placeholder(getattr(gc, dtype), [n, n])
        lib = gc.aot.compile(gc.matmul(x, y), [x, y], folder, f"matmul{n}").load()
        tol = 1e-4 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(lib(a, b)[0], a @ b, rtol=tol, atol=tol * np.sqrt(n) * 4)
        before = jit.blas_threads(1)
        try:
            times = compare({"blas": lambda: a @ b, "aot": lambda: lib(a, b)}, rounds=rounds)
        finally:
            jit.blas_threads(before)
    return times["blas"] / times["aot"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds per figure (median)")
    parser.add_argument("--quick", action="store_true", help="sizes up to 512 only")
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="sizes to run (default: 64 to 2048)")
    parser.add_argument("--forms", nargs="*", default=list(FORMS), choices=FORMS)
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--busy", type=int, default=0, help="spinning processes to run while measuring")
    parser.add_argument("--aot", action="store_true", help="also AOT libraries' square products against "
                        "NumPy's a @ b on one OpenBLAS thread (needs a C compiler)")
    args = parser.parse_args(argv)
    sizes = args.sizes or [s for s in SIZES if not (args.quick and s > 512)]
    rows, below = [], 0
    with busy_processes(args.busy):
        for dtype in args.dtypes:
            for form in args.forms:
                for n in sizes:
                    t_blas, t_own = case(n, dtype, form, args.rounds)
                    size = max(16, n // 4) if form == "batch16" else n
                    flops = 2.0 * size ** 3 * (16 if form == "batch16" else 1)
                    ratio = t_blas / t_own
                    below += ratio < GOAL
                    rows.append((dtype, form, f"{n}" if form != "batch16" else f"16x{size}", f"{ratio:.2f}",
                                 f"{flops / t_own / 1e9:.1f}", f"{flops / t_blas / 1e9:.1f}"))
    print(table(rows, ("dtype", "form", "size", "openblas / own", "own GFLOP/s", "openblas GFLOP/s")))
    print(f"\none thread each; numpy {np.__version__}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; goal openblas / own >= {GOAL}: "
          + ("met everywhere" if not below else f"missed in {below} of {len(rows)}"))
    if args.aot:
        aot_rows = [(dtype, f"{n}", f"{aot_case(n, dtype, args.rounds):.2f}") for dtype in args.dtypes for n in sizes
                    if n <= 1024]
        print("\nAOT libraries (the matmul of gc.aot.compile, called from Python):\n"
              + table(aot_rows, ("dtype", "size", "openblas / aot library")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
