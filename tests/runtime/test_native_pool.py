"""The native thread pool (graphc.runtime.native_pool): every chunk runs exactly once, for any
extent and pool size, back to back (workers spinning) and after pauses (workers asleep on the
futex), and kernels split over it give bitwise the serial results."""
import os
import threading
import time

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import native_pool, threads
from graphc.runtime.native_pool import NativePool

pytestmark = pytest.mark.skipif(not native_pool.supported(), reason="the native pool needs Linux on x86-64/AArch64")

_POOLS: dict[int, NativePool] = {}


def native(size: int) -> NativePool:
    if size not in _POOLS:
        _POOLS[size] = NativePool(size)
    return _POOLS[size]


def _kernel(n: int):
    """A compiled serial kernel writing out[i] = 3 * in[i] + 1 over its outer loop, and its frame."""
    x = gc.placeholder(gc.float32, [n])
    f = gc.function([x], x * 3.0 + 1.0, backend="llvm")
    a = np.arange(n, dtype=np.float32)
    f(a)
    ex = f._last.executable
    out = np.zeros(n, np.float32)
    ex.objects[ex._input_slots[0]] = id(a)
    ex.objects[ex._outputs[0][0]] = id(out)
    ex._bind(ex._objects_ptr, ex._frame_ptr)
    return ex.engine.address(ex.info.kernels[0].name), ex._frame_ptr, a, out, (ex, f)


@pytest.mark.parametrize("size", [2, 3, 5])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 4099])
def test_every_element_once_for_any_extent(size, n):
    address, frame, a, out, keep = _kernel(n)
    pool = native(size)
    for _ in range(50):
        out[:] = -1
        pool.run(address, frame, n)
        assert np.array_equal(out, a * 3 + 1)


def test_back_to_back_and_after_sleeping():
    address, frame, a, out, keep = _kernel(10007)
    pool = native(2)
    for i in range(3000):                  # workers spinning between jobs
        out[:] = 0
        pool.run(address, frame, 10007)
        assert out[-1] == a[-1] * 3 + 1 and out[0] == 1
    for _ in range(5):                     # workers gone to sleep on the futex in between
        time.sleep(0.005)
        out[:] = 0
        pool.run(address, frame, 10007)
        assert np.array_equal(out, a * 3 + 1)


def test_process_pool_is_native_and_split_results_match_serial(monkeypatch):
    n = 1 << 20
    x = gc.placeholder(gc.float32, [n])
    a = np.random.default_rng(0).normal(size=n).astype(np.float32)
    f = gc.function([x], gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x), backend="llvm")
    monkeypatch.setattr(threads, "_pool", native(2))
    threaded = f(a)
    assert f._last.executable._steps is not None            # the kernel was split
    serial = gc.function([x], gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x), backend="llvm")
    monkeypatch.setattr(threads, "_pool", threads.ThreadPool(1))
    assert np.array_equal(threaded, serial(a))


def test_cost_model_keeps_cheap_kernels_on_one_thread(monkeypatch):
    """A pool round trip must not make a kernel slower than serial: a streaming add over 16384
    floats (~3 us, about a dispatch) stays serial, a transcendental chain over as many elements
    is split."""
    monkeypatch.setattr(threads, "_pool", native(2))
    n = 1 << 14
    a = np.ones(n, np.float32)
    x = gc.placeholder(gc.float32, [n])
    add = gc.function([x], x + 1.0, backend="llvm")
    chain = gc.function([x], gc.tanh(0.5 * x + 0.1) * gc.sigmoid(x) - gc.exp(-x * x), backend="llvm")
    add(a), chain(a)
    assert add._last.executable._steps is None
    assert chain._last.executable._steps is not None


class _LateWorkers(NativePool):
    """A pool whose worker threads first run when the test opens `gate` (never, if it does
    not), as a busy machine may start a new process's threads long after it made them. A gate
    instead of a delay: the test then depends on nothing but the order of events, not on how
    quickly a loaded CI machine schedules the caller (a 0.3 s delay once failed there)."""

    def __init__(self, threads: int) -> None:
        self.gate = threading.Event()
        super().__init__(threads)

    def _start_worker(self, index: int, start_generation: int) -> None:
        def late() -> None:
            self.gate.wait()
            self._worker(self._state, index, start_generation)

        threading.Thread(target=late, daemon=True, name=f"late-worker-{index}").start()


def _run_jobs(pool, address, frame, a, out, n: int, jobs: int, timeout: float) -> float:
    """Run `jobs` jobs on another thread (so a hang fails the test instead of hanging it);
    return how long they took."""
    finished = threading.Event()

    def work() -> None:
        for _ in range(jobs):
            out[:] = 0
            pool.run(address, frame, n)
            assert np.array_equal(out, a * 3 + 1)
        finished.set()

    started = time.perf_counter()
    threading.Thread(target=work, daemon=True).start()
    assert finished.wait(timeout), "the pool hung: it waited for a worker that was not running"
    return time.perf_counter() - started


@pytest.mark.parametrize("size", [2, 4])
def test_jobs_finish_while_workers_have_not_started(size):
    """The first jobs are published before any worker thread has run: the caller takes every
    chunk and does not wait for them (the old pool hung forever here, then waited for them);
    once they run, they join later jobs."""
    address, frame, a, out, keep = _kernel(4099)
    pool = _LateWorkers(size)
    _run_jobs(pool, address, frame, a, out, 4099, 3, timeout=30)   # no worker has run yet
    pool.gate.set()
    time.sleep(0.05)
    _run_jobs(pool, address, frame, a, out, 4099, 200, timeout=30)


def test_a_worker_that_is_never_scheduled_delays_nothing():
    address, frame, a, out, keep = _kernel(10007)
    pool = _LateWorkers(3)   # its gate never opens
    assert _run_jobs(pool, address, frame, a, out, 10007, 100, timeout=30) < 5


def test_an_idle_pool_sleeps():
    """After a burst of jobs, idle workers go to sleep: the process uses almost no CPU."""
    address, frame, a, out, keep = _kernel(10007)
    pool = native(3)
    for _ in range(100):
        pool.run(address, frame, 10007)
    time.sleep(0.05)   # past the spinning phase
    with open("/proc/self/stat") as f:
        before = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13])
    time.sleep(1.0)
    with open("/proc/self/stat") as f:
        after = sum(int(v) for v in f.read().rsplit(")", 1)[1].split()[11:13])
    ticks = os.sysconf("SC_CLK_TCK")
    assert (after - before) / ticks < 0.05, f"{(after - before) / ticks:.2f} s of CPU in 1 s idle"


def test_threads_argument_limits_the_participants():
    address, frame, a, out, keep = _kernel(4099)
    pool = native(3)
    for count in (1, 2, 3, 8):
        out[:] = 0
        pool.run(address, frame, 4099, threads=count)
        assert np.array_equal(out, a * 3 + 1)
