"""A thread pool in native code: a parallel kernel costs a few microseconds to start, not tens.

The Python pool (graphc.runtime.threads.ThreadPool) hands each chunk to a worker through
threading.Event, which takes the GIL and a futex round trip per worker: ~50 us on this machine,
as long as a whole small kernel. This pool is a small LLVM module compiled once per process:

  graphc_pool_worker(state, index, start)
                                         the loop a worker thread runs forever (started from a
                                         Python daemon thread; ctypes releases the GIL, and the
                                         thread never comes back to Python); `start` is the
                                         generation the pool had when the worker was created
  graphc_pool_run(state, fn, frame, extent, parts, workers)
                                         publish fn(frame, start, end) over [0, extent) in `parts`
                                         chunks, run chunk 0 on the caller, wait until all
                                         `workers` acknowledged the job

A worker is handed its starting generation instead of reading it when its thread first runs:
a thread may first run long after the pool published its first job (on a busy machine it is
likely), and a worker that read the generation then would wait for the next job while the
caller waited for its acknowledgement of this one, forever.

`state` is the pool's own block (generation, sleeper count, pending acknowledgements, the job).
Workers wait for a new generation number by spinning (with `pause`) for a few tens of
microseconds, then sleep on a futex; the caller wakes sleepers only when there are any (a
seq_cst counter checked after the generation is published, so no wake-up is lost). Linux on
x86-64 or AArch64 only (the futex system call); elsewhere graphc keeps the Python pool.
"""
from __future__ import annotations

import ctypes
import platform
import sys
import threading

from llvmlite import ir

from . import cache, jit

SYS_FUTEX = {"x86_64": 202, "aarch64": 98}
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
SPIN = 4000   # pause instructions (~30-60 us) before a worker goes to sleep

I8P = ir.IntType(8).as_pointer()
I32, I64 = ir.IntType(32), ir.IntType(64)
KERNEL_T = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64, I64])

LINE = 64
GEN, SLEEPERS, REMAINING, FN, FRAME, EXTENT, PARTS = range(7)   # state block fields, one per line

WORKER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32)
RUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                       ctypes.c_int64)


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in SYS_FUTEX


def _module() -> str:
    machine = platform.machine()
    m = ir.Module(name="graphc_pool")

    # Each pool owns a state block (allocated by NativePool, one field per 64-byte line so the
    # workers' spinning reads do not share a line with the caller's writes).
    def field(b: ir.IRBuilder, state: ir.Value, slot: int, t: ir.Type) -> ir.Value:
        return b.bitcast(b.gep(state, [ir.Constant(I64, slot * LINE)]), t.as_pointer())

    syscall = ir.Function(m, ir.FunctionType(I64, [I64], var_arg=True), name="syscall")
    pause_fn = None
    if machine == "x86_64":
        pause_fn = ir.Function(m, ir.FunctionType(ir.VoidType(), []), name="llvm.x86.sse2.pause")

    def pause(b: ir.IRBuilder) -> None:
        if pause_fn is not None:
            b.call(pause_fn, [])

    def futex(b: ir.IRBuilder, gen: ir.Value, op: int, value: ir.Value) -> None:
        b.call(syscall, [ir.Constant(I64, SYS_FUTEX[machine]), b.ptrtoint(gen, I64), ir.Constant(I64, op), value,
                         ir.Constant(I64, 0)])

    def chunk(b: ir.IRBuilder, index: ir.Value, extent: ir.Value, parts: ir.Value) -> tuple[ir.Value, ir.Value]:
        lo = b.sdiv(b.mul(extent, index), parts)
        hi = b.sdiv(b.mul(extent, b.add(index, ir.Constant(I64, 1))), parts)
        return lo, hi

    # ---------------------------------------------------------------- worker
    worker = ir.Function(m, ir.FunctionType(ir.VoidType(), [I8P, I64, I32]), name="graphc_pool_worker")
    state, index, start_gen = worker.args
    entry, wait, spin, sleep, work, run_chunk, done = (worker.append_basic_block(n) for n in
                                                        ("entry", "wait", "spin", "sleep", "work", "chunk", "done"))
    b = ir.IRBuilder(entry)
    gen, sleepers, remaining = field(b, state, GEN, I32), field(b, state, SLEEPERS, I32), field(b, state, REMAINING, I64)
    job_fn, job_frame = field(b, state, FN, I8P), field(b, state, FRAME, I8P)
    job_extent, job_parts = field(b, state, EXTENT, I64), field(b, state, PARTS, I64)
    b.branch(wait)
    b.position_at_end(wait)
    seen = b.phi(I32, name="seen")
    spins = b.phi(I32, name="spins")
    seen.add_incoming(start_gen, entry)
    spins.add_incoming(ir.Constant(I32, 0), entry)
    now = b.load_atomic(gen, "acquire", 4)
    b.cbranch(b.icmp_unsigned("!=", now, seen), work, spin)

    b.position_at_end(spin)
    more = b.add(spins, ir.Constant(I32, 1))
    keep_spinning = b.icmp_unsigned("<", spins, ir.Constant(I32, SPIN))
    spin_body = worker.append_basic_block("spin.pause")
    b.cbranch(keep_spinning, spin_body, sleep)
    b.position_at_end(spin_body)
    pause(b)
    seen.add_incoming(seen, spin_body)
    spins.add_incoming(more, spin_body)
    b.branch(wait)

    b.position_at_end(sleep)
    b.atomic_rmw("add", sleepers, ir.Constant(I32, 1), "seq_cst")
    again = b.load_atomic(gen, "seq_cst", 4)
    with b.if_then(b.icmp_unsigned("==", again, seen)):
        futex(b, gen, FUTEX_WAIT_PRIVATE, b.zext(seen, I64))
    b.atomic_rmw("sub", sleepers, ir.Constant(I32, 1), "seq_cst")
    seen.add_incoming(seen, b.block)
    spins.add_incoming(ir.Constant(I32, 0), b.block)
    b.branch(wait)

    b.position_at_end(work)
    parts = b.load(job_parts)
    b.cbranch(b.icmp_signed("<", index, parts), run_chunk, done)
    b.position_at_end(run_chunk)
    extent = b.load(job_extent)
    lo, hi = chunk(b, index, extent, parts)
    fn = b.bitcast(b.load(job_fn), KERNEL_T.as_pointer())
    b.call(fn, [b.bitcast(b.load(job_frame), I8P.as_pointer()), lo, hi])
    b.branch(done)
    b.position_at_end(done)
    # every worker acknowledges every job (also with no chunk), so none can still be reading
    # this job's fields when the caller publishes the next
    b.atomic_rmw("sub", remaining, ir.Constant(I64, 1), "release")
    seen.add_incoming(now, done)
    spins.add_incoming(ir.Constant(I32, 0), done)
    b.branch(wait)

    # ---------------------------------------------------------------- run
    run = ir.Function(m, ir.FunctionType(ir.VoidType(), [I8P, I8P, I8P, I64, I64, I64]), name="graphc_pool_run")
    state, fn_arg, frame_arg, extent_arg, parts_arg, workers_arg = run.args
    b = ir.IRBuilder(run.append_basic_block("entry"))
    gen, sleepers, remaining = field(b, state, GEN, I32), field(b, state, SLEEPERS, I32), field(b, state, REMAINING, I64)
    job_fn, job_frame = field(b, state, FN, I8P), field(b, state, FRAME, I8P)
    job_extent, job_parts = field(b, state, EXTENT, I64), field(b, state, PARTS, I64)
    b.store(fn_arg, job_fn)
    b.store(frame_arg, job_frame)
    b.store(extent_arg, job_extent)
    b.store(parts_arg, job_parts)
    b.store_atomic(workers_arg, remaining, "release", 8)
    b.atomic_rmw("add", gen, ir.Constant(I32, 1), "seq_cst")
    asleep = b.load_atomic(sleepers, "seq_cst", 4)
    with b.if_then(b.icmp_unsigned("!=", asleep, ir.Constant(I32, 0))):
        futex(b, gen, FUTEX_WAKE_PRIVATE, ir.Constant(I64, 2 ** 31 - 1))
    lo, hi = chunk(b, ir.Constant(I64, 0), extent_arg, parts_arg)
    b.call(b.bitcast(fn_arg, KERNEL_T.as_pointer()), [b.bitcast(frame_arg, I8P.as_pointer()), lo, hi])
    wait_all = run.append_basic_block("wait")
    waiting = run.append_basic_block("wait.pause")
    finished = run.append_basic_block("finished")
    b.branch(wait_all)
    b.position_at_end(wait_all)
    left = b.load_atomic(remaining, "acquire", 8)
    b.cbranch(b.icmp_signed("!=", left, ir.Constant(I64, 0)), waiting, finished)
    b.position_at_end(waiting)
    pause(b)
    b.branch(wait_all)
    b.position_at_end(finished)
    b.ret_void()
    return str(m)


class NativePool:
    """Same interface as threads.ThreadPool: `size` and run(address, frame, extent)."""

    def __init__(self, threads: int) -> None:
        self.size = max(1, threads)
        text = _module()
        about = f"graphc-pool-3; {jit.host_description()}"
        key = cache.key_of(about, text)
        code = cache.load(key, "runtime", about)
        if code is None:
            code = jit.compile_object(text, quick=False)
            cache.store(key, code, "runtime", about)
        engine = jit.load_object(key, code)
        self._run = RUN(engine.address("graphc_pool_run"))
        self._worker = WORKER(engine.address("graphc_pool_worker"))
        self._lock = threading.Lock()
        self._block = ctypes.create_string_buffer(LINE * (PARTS + 2))   # zeroed; never freed while
        self._state = ctypes.addressof(self._block) + (-ctypes.addressof(self._block)) % LINE   # workers run
        _alive.append(self)
        start = ctypes.c_int32.from_address(self._state + GEN * LINE).value   # 0: no job was published yet
        for i in range(1, self.size):
            self._start_worker(i, start)

    def _start_worker(self, index: int, start_generation: int) -> None:
        """Start worker `index`, which first waits for a generation after `start_generation`."""
        threading.Thread(target=self._worker, args=(self._state, index, start_generation), daemon=True,
                         name=f"graphc-native-{index}").start()

    def run(self, address: int, frame: int, extent: int) -> None:
        """fn(frame, start, end) over [0, extent), split across the pool (fn given by address)."""
        parts = min(self.size, extent)
        if parts <= 1:
            kernel_call(address)(frame, 0, extent)
            return
        with self._lock:   # one parallel kernel at a time
            self._run(self._state, address, frame, extent, parts, self.size - 1)



_alive: list[NativePool] = []   # pools are never freed: their worker threads use the state block

_KERNEL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_calls: dict[int, object] = {}


def kernel_call(address: int):
    """A ctypes callable for the native kernel at `address` (made once per address)."""
    fn = _calls.get(address)
    if fn is None:
        fn = _calls[address] = _KERNEL(address)
    return fn
