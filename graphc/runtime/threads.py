"""A persistent pool that runs chunks of a native kernel on every core.

A kernel is a native function f(frame, start, end); the pool splits [0, extent) into one chunk
per core, runs one chunk on the calling thread and the others on worker threads, and waits.
The native pool (graphc.runtime.native_pool) does it in a couple of microseconds (a few tens
when its workers were asleep); this portable ThreadPool, used where that one is unavailable,
goes through threading.Event and ctypes (which releases the GIL) and costs ~50 us. Callers
only split kernels whose estimated serial time is at least PARALLEL_NS
(graphc.lower.kernel.estimated_ns): below that, one thread is as fast.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import GraphcError
from . import native_pool
from .native_pool import kernel_call

PARALLEL_NS = 50_000   # estimated serial nanoseconds below which a kernel runs on one thread


class ThreadPool:
    def __init__(self, threads: int | None = None) -> None:
        self.size = max(1, threads or os.cpu_count() or 1)
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

    def run(self, address: int, frame: Any, extent: int) -> None:
        """fn(frame, start, end) over [0, extent), split across the pool (fn given by address)."""
        fn = kernel_call(address)
        parts = min(self.size, extent)
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


def pool() -> Any:
    """The process pool: native (graphc.runtime.native_pool) where supported, else ThreadPool.
    GRAPHC_NUM_THREADS sets its size (default: every core)."""
    global _pool
    if _pool is None:
        configured = os.environ.get("GRAPHC_NUM_THREADS", "").strip()
        try:
            threads = int(configured) if configured else (os.cpu_count() or 1)
        except ValueError:
            raise GraphcError(f"GRAPHC_NUM_THREADS must be a whole number of threads, got {configured!r}") from None
        threads = max(1, threads)
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
