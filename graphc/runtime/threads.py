"""A persistent pool that runs chunks of a native kernel on every core.

A kernel is a native function f(frame, start, end); the pool runs [0, extent) in chunks on the
calling thread and its worker threads. The native pool (graphc.runtime.native_pool) cuts it in
several chunks per thread taken dynamically (a descheduled thread delays nothing), in a couple
of microseconds (a few tens when its workers were asleep); this portable ThreadPool, used where
that one is unavailable, cuts one chunk per thread and goes through threading.Event and ctypes
(which releases the GIL): ~50 us. Callers only split kernels whose estimated serial time is at
least the pool's parallel_ns (graphc.lower.kernel.estimated_ns): below that, one thread is as
fast. This pool's is PARALLEL_NS; the native pool's is much lower (native_pool.PARALLEL_NS).

One pool serves the whole process, sized to the CPUs it may use (available_cpus: affinity and
cgroup quota) or GRAPHC_NUM_THREADS; a Session's ConfigProto(intra_op_parallelism_threads=N)
uses at most N of them.
"""
from __future__ import annotations

import os
import threading
from contextlib import nullcontext
from typing import Any

from ..errors import GraphcError
from . import native_pool
from .cpus import available_cpus
from .native_pool import kernel_call

PARALLEL_NS = 50_000   # estimated serial nanoseconds below which this pool runs a kernel on one thread


class ThreadPool:
    parallel_ns = PARALLEL_NS

    def __init__(self, threads: int | None = None) -> None:
        self.size = max(1, threads or available_cpus())
        self._jobs: list[Any] = [None] * self.size
        self._start = [threading.Event() for _ in range(self.size)]
        self._done = [threading.Event() for _ in range(self.size)]
        self._lock = threading.Lock()
        for i in range(1, self.size):
            threading.Thread(target=self._work, args=(i,), daemon=True, name=f"graphc-worker-{i}").start()

    def _work(self, i: int) -> None:
        while True:
            self._start[i].wait()
            self._start[i].clear()
            fn, frame, lo, hi = self._jobs[i]
            try:
                fn(frame, lo, hi)
            finally:
                self._done[i].set()

    def lent_to_loops(self, threads: int | None = None) -> Any:
        """Loop bodies call only the native pool; with this one they run their products themselves."""
        return nullcontext()

    def run(self, address: int, frame: Any, extent: int, threads: int | None = None) -> None:
        """fn(frame, start, end) over [0, extent), split across at most `threads` threads of the
        pool (all by default; fn given by address)."""
        fn = kernel_call(address)
        parts = min(self.size if threads is None else max(1, min(threads, self.size)), extent)
        if parts <= 1:
            fn(frame, 0, extent)
            return
        bounds = [extent * i // parts for i in range(parts + 1)]
        with self._lock:  # one parallel kernel at a time
            for i in range(1, parts):
                self._done[i].clear()
                self._jobs[i] = (fn, frame, bounds[i], bounds[i + 1])
                self._start[i].set()
            fn(frame, bounds[0], bounds[1])
            for i in range(1, parts):
                self._done[i].wait()


_pool: Any = None


def configured_threads() -> int:
    """GRAPHC_NUM_THREADS, else the CPUs this process may use."""
    configured = os.environ.get("GRAPHC_NUM_THREADS", "").strip()
    if not configured:
        return available_cpus()
    try:
        return max(1, int(configured))
    except ValueError:
        raise GraphcError(f"GRAPHC_NUM_THREADS must be a whole number of threads, got {configured!r}") from None


def pool() -> Any:
    """The process pool: native (graphc.runtime.native_pool) where supported, else ThreadPool.
    Its size is GRAPHC_NUM_THREADS, else the CPUs this process may use (available_cpus)."""
    global _pool
    if _pool is None:
        threads = configured_threads()
        if threads > 1 and native_pool.supported():
            try:
                _pool = native_pool.NativePool(threads)
            except Exception:   # pragma: no cover - keep the portable pool if LLVM refuses
                _pool = None
        if _pool is None:
            _pool = ThreadPool(threads)
    return _pool


def _forget_pool() -> None:
    """After fork() the child has none of the parent's worker threads: start a new pool."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)
