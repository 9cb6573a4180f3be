"""The machine's own limits, measured, so that each figure can also be read as a fraction of
what this machine can do: the SGEMM rate of NumPy's BLAS on every core (the practical peak of
multiply-adds; the nominal peak needs a clock frequency that VMs report unreliably) and the
memory bandwidth of a large copy."""
from __future__ import annotations

import time
from functools import lru_cache

import numpy as np


def _best_of(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@lru_cache(maxsize=None)
def sgemm_gflops(n: int = 2048) -> float:
    """GFLOP/s of NumPy's float32 n x n matmul (its BLAS, all its threads): best of 5."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(np.float32)
    return 2.0 * n ** 3 / _best_of(lambda: a @ a) / 1e9


@lru_cache(maxsize=None)
def copy_gbps(megabytes: int = 256) -> float:
    """GB/s moved (read + write) by copying a buffer far larger than the caches: best of 5."""
    src = np.ones(megabytes << 18, np.float32)
    dst = np.empty_like(src)
    return 2.0 * src.nbytes / _best_of(lambda: np.copyto(dst, src)) / 1e9
