"""A thread pool in native code: a parallel kernel costs a few microseconds to start, and a
thread the OS does not schedule delays nothing.

The Python pool (graphc.runtime.threads.ThreadPool) hands each chunk to a worker through
threading.Event, which takes the GIL and a futex round trip per worker: ~50 us on this machine,
as long as a whole small kernel. This pool is a small LLVM module compiled once per process:

  graphc_pool_worker(state, index, start)
      the loop a worker thread runs forever (started from a Python daemon thread; ctypes
      releases the GIL, and the thread never comes back to Python); `start` is the generation
      the pool had when the worker was created
  graphc_pool_run(state, fn, frame, extent, chunks, workers)
      publish fn(frame, start, end) over [0, extent) cut into `chunks` chunks, for the caller
      and workers 1 .. workers-1 to take; take chunks on the caller too; return when every
      chunk has run

Chunks are taken dynamically, each with a compare-and-swap on a claim word of its own that
holds the generation of the job that last claimed it. Participant i of n (the caller is 0) takes
its share, chunks [i * chunks / n, (i + 1) * chunks / n), first, then looks for chunks left over
backward from the end of the others': when every thread runs, each takes the same part of
a kernel's output from run to run, so that part stays in its core's cache (taken in turn from
one shared counter, the chunks landed on either core by chance, and each run moved half of the
output from one core's cache to the other's: a 1x1 convolution writing 600 KB ran slower on two
threads than on one). There are several chunks per thread, so a worker that the OS does not
schedule simply takes none and the others (the caller first) run its share; the caller waits
only for chunks that were taken and are still running, never for an acknowledgement from a
thread that did not take part.

Generations: the caller makes the generation odd while it writes a job's fields, then the next
even number to open the job; workers take part in even generations only. A claim writes the
claimer's generation over an older one only (a late worker of an older job never takes a chunk
a newer job claimed) and counts only if the job is still current when checked right after (a
void claim leaves the chunk older than the new job, which claims it again); the job's fields
cannot change until every chunk taken has run, so a worker reads them only after its claim
counted.

A worker is handed its starting generation instead of reading it when its thread first runs:
a thread may first run long after the pool published its first job.

Waiting costs no CPU for long: idle workers spin (with `pause`) for a few tens of microseconds,
then sleep on a futex (the caller wakes sleepers only when there are any: a seq_cst counter
checked after the generation is published, so no wake-up is lost); a caller waiting for a chunk
that a descheduled worker holds spins briefly, then yields its core (sched_yield) until it is
done. Linux on x86-64 or AArch64 only (futex); elsewhere graphc keeps the Python pool.
"""
from __future__ import annotations

import ctypes
import platform
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from llvmlite import ir

from ..lower.kernel import POOL_MAX_CHUNKS
from . import cache, jit

SYS_FUTEX = {"x86_64": 202, "aarch64": 98}
SYS_SCHED_YIELD = {"x86_64": 24, "aarch64": 124}
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
SPIN = 4000          # pause instructions (~30-60 us) before an idle worker goes to sleep
CALLER_SPIN = 2000   # pause instructions before a waiting caller starts yielding its core
CHUNKS_PER_THREAD = 4
# estimated serial nanoseconds below which a kernel runs on one thread: a dispatch costs a couple
# of microseconds while the workers spin, and the cost model (graphc.lower.kernel.estimated_ns)
# prices memory at 80 GB/s, where a padding copy ran at a quarter of that; at 50 us (the
# portable pool's) mobilenet_v2's padding copies and small depthwise convolutions ran on one
# thread. 4 us: mobilenet_v2 at 2 threads 0.91 of its time (in-process A/B, 0.945 at 12 us),
# efficientnet_b0 0.935, resnet18 0.99; the MLP, CNN and attention steps of graphc bench 0.98-1.0
PARALLEL_NS = 4_000

I8P = ir.IntType(8).as_pointer()
I32, I64 = ir.IntType(32), ir.IntType(64)
KERNEL_T = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64, I64])

LINE = 64
# state block fields, one per 64-byte line so spinning readers do not share a line with writers
GEN, SLEEPERS, PENDING, FN, FRAME, EXTENT, CHUNKS, WORKERS, FLAGS = range(9)
MAX_CHUNKS = POOL_MAX_CHUNKS   # chunks per job at most: one claim word each, from line FLAGS on

WORKER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32)
RUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                       ctypes.c_int64)


def supported() -> bool:
    return sys.platform.startswith("linux") and platform.machine() in SYS_FUTEX


class _Fields:
    """Typed pointers to the state block's fields, for one function's builder."""

    def __init__(self, b: ir.IRBuilder, state: ir.Value) -> None:
        def field(slot: int, t: ir.Type) -> ir.Value:
            return b.bitcast(b.gep(state, [ir.Constant(I64, slot * LINE)]), t.as_pointer())

        self.gen, self.sleepers = field(GEN, I32), field(SLEEPERS, I32)
        self.pending, self.flags = field(PENDING, I64), field(FLAGS, I32)
        self.fn, self.frame = field(FN, I8P), field(FRAME, I8P)
        self.extent, self.chunks, self.workers = field(EXTENT, I64), field(CHUNKS, I64), field(WORKERS, I64)


def _module() -> str:
    machine = platform.machine()
    m = ir.Module(name="graphc_pool")
    syscall = ir.Function(m, ir.FunctionType(I64, [I64], var_arg=True), name="syscall")
    pause_fn = None
    if machine == "x86_64":
        pause_fn = ir.Function(m, ir.FunctionType(ir.VoidType(), []), name="llvm.x86.sse2.pause")

    def pause(b: ir.IRBuilder) -> None:
        if pause_fn is not None:
            b.call(pause_fn, [])

    def futex(b: ir.IRBuilder, word: ir.Value, op: int, value: ir.Value) -> None:
        b.call(syscall, [ir.Constant(I64, SYS_FUTEX[machine]), b.ptrtoint(word, I64), ir.Constant(I64, op), value,
                         ir.Constant(I64, 0)])

    # ------------------------------------------------------------ take chunks of job `gen`
    # graphc_pool_take(state, gen, start): run the chunks of job `gen` not yet claimed, looking
    # from chunk `start` on (wrapping), marking each done; stop once the job is no longer
    # current. Shared by workers and the caller.
    take = ir.Function(m, ir.FunctionType(ir.VoidType(), [I8P, I32, I64, I64]), name="graphc_pool_take")
    take.linkage = "internal"
    state, gen, start, own = take.args
    entry, look, examine, try_cas, verify, run_chunk, advance, done = (take.append_basic_block(n) for n in (
        "entry", "look", "examine", "cas", "verify", "chunk", "advance", "done"))
    b = ir.IRBuilder(entry)
    f = _Fields(b, state)
    chunks = b.load_atomic(f.chunks, "monotonic", 8)
    chunks = b.select(b.icmp_unsigned("<", chunks, ir.Constant(I64, MAX_CHUNKS)), chunks, ir.Constant(I64, MAX_CHUNKS))
    b.branch(look)
    b.position_at_end(look)
    step = b.phi(I64, name="step")
    step.add_incoming(ir.Constant(I64, 0), entry)
    b.cbranch(b.icmp_unsigned("<", step, chunks), examine, done)
    b.position_at_end(examine)
    # its own share first, forward; then the others' chunks backward from the end of the
    # range, where their owners reach last
    backward = b.sub(b.add(start, b.sub(chunks, ir.Constant(I64, 1))), b.sub(step, own))
    index = b.urem(b.select(b.icmp_unsigned("<", step, own), b.add(start, step), backward), chunks)
    flag = b.gep(f.flags, [index])
    seen = b.load_atomic(flag, "acquire", 4)
    # claimable: claimed last in an older job (a late worker of an older job never takes a
    # chunk a newer job claimed, and its own claim, found void below, leaves the chunk older)
    older = b.icmp_signed("<", b.sub(seen, gen), ir.Constant(I32, 0))
    b.cbranch(older, try_cas, advance)
    b.position_at_end(try_cas)
    swapped = b.cmpxchg(flag, seen, gen, "acq_rel", "acquire")
    b.cbranch(b.extract_value(swapped, 1), verify, examine)   # lost a race: look at it again
    b.position_at_end(verify)
    # the claim counts only while the job is current; then its fields are this job's until
    # its chunks are done (the caller publishes another only when none is pending)
    current = b.icmp_unsigned("==", b.load_atomic(f.gen, "acquire", 4), gen)
    b.cbranch(current, run_chunk, done)
    b.position_at_end(run_chunk)
    extent = b.load(f.extent)
    lo = b.sdiv(b.mul(extent, index), chunks)
    hi = b.sdiv(b.mul(extent, b.add(index, ir.Constant(I64, 1))), chunks)
    fn = b.bitcast(b.load(f.fn), KERNEL_T.as_pointer())
    b.call(fn, [b.bitcast(b.load(f.frame), I8P.as_pointer()), lo, hi])
    b.atomic_rmw("sub", f.pending, ir.Constant(I64, 1), "release")
    b.branch(advance)
    b.position_at_end(advance)
    step.add_incoming(b.add(step, ir.Constant(I64, 1)), advance)
    b.branch(look)
    b.position_at_end(done)
    b.ret_void()

    # ------------------------------------------------------------ worker
    worker = ir.Function(m, ir.FunctionType(ir.VoidType(), [I8P, I64, I32]), name="graphc_pool_worker")
    state, index, start_gen = worker.args
    entry, wait, spin, spin_body, sleep, work, join, done = (worker.append_basic_block(n) for n in (
        "entry", "wait", "spin", "spin.pause", "sleep", "work", "join", "done"))
    b = ir.IRBuilder(entry)
    f = _Fields(b, state)
    b.branch(wait)
    b.position_at_end(wait)
    seen = b.phi(I32, name="seen")
    spins = b.phi(I32, name="spins")
    seen.add_incoming(start_gen, entry)
    spins.add_incoming(ir.Constant(I32, 0), entry)
    now = b.load_atomic(f.gen, "acquire", 4)
    b.cbranch(b.icmp_unsigned("!=", now, seen), work, spin)

    b.position_at_end(spin)
    b.cbranch(b.icmp_unsigned("<", spins, ir.Constant(I32, SPIN)), spin_body, sleep)
    b.position_at_end(spin_body)
    pause(b)
    seen.add_incoming(seen, spin_body)
    spins.add_incoming(b.add(spins, ir.Constant(I32, 1)), spin_body)
    b.branch(wait)

    b.position_at_end(sleep)
    b.atomic_rmw("add", f.sleepers, ir.Constant(I32, 1), "seq_cst")
    again = b.load_atomic(f.gen, "seq_cst", 4)
    with b.if_then(b.icmp_unsigned("==", again, seen)):
        futex(b, f.gen, FUTEX_WAIT_PRIVATE, b.zext(seen, I64))
    b.atomic_rmw("sub", f.sleepers, ir.Constant(I32, 1), "seq_cst")
    seen.add_incoming(seen, b.block)
    spins.add_incoming(ir.Constant(I32, 0), b.block)
    b.branch(wait)

    b.position_at_end(work)
    # an odd generation is a job being written: wait for it to open (the even one after it)
    opened = b.icmp_unsigned("==", b.and_(now, ir.Constant(I32, 1)), ir.Constant(I32, 0))
    allowed = b.load_atomic(f.workers, "monotonic", 8)   # a late read of a newer job's value only
    b.cbranch(b.and_(opened, b.icmp_signed("<", index, allowed)), join, done)   # decides whether to try claiming
    b.position_at_end(join)
    # worker i of n starts at chunk i * chunks / n: each thread's share of a kernel is the same
    # part of its output from run to run, and stays in that core's cache
    job_chunks = b.load_atomic(f.chunks, "monotonic", 8)
    share = b.sdiv(b.mul(index, job_chunks), allowed)
    own = b.sub(b.sdiv(b.mul(b.add(index, ir.Constant(I64, 1)), job_chunks), allowed), share)
    b.call(take, [state, now, share, own])
    b.branch(done)
    b.position_at_end(done)
    seen.add_incoming(now, done)
    spins.add_incoming(ir.Constant(I32, 0), done)
    b.branch(wait)

    # ------------------------------------------------------------ run (the caller)
    run = ir.Function(m, ir.FunctionType(ir.VoidType(), [I8P, I8P, I8P, I64, I64, I64]), name="graphc_pool_run")
    state, fn_arg, frame_arg, extent_arg, chunks_arg, workers_arg = run.args
    entry = run.append_basic_block("entry")
    b = ir.IRBuilder(entry)
    f = _Fields(b, state)
    # only callers write the generation: odd while the job's fields are written (late claims of
    # the last job are void from then on), the next even number once it is open
    gen = b.add(b.load_atomic(f.gen, "monotonic", 4), ir.Constant(I32, 2))
    b.store_atomic(b.sub(gen, ir.Constant(I32, 1)), f.gen, "seq_cst", 4)
    b.store(fn_arg, f.fn)
    b.store(frame_arg, f.frame)
    b.store(extent_arg, f.extent)
    b.store_atomic(chunks_arg, f.chunks, "monotonic", 8)
    b.store_atomic(workers_arg, f.workers, "monotonic", 8)
    b.store_atomic(chunks_arg, f.pending, "release", 8)
    b.store_atomic(gen, f.gen, "seq_cst", 4)
    asleep = b.load_atomic(f.sleepers, "seq_cst", 4)
    with b.if_then(b.icmp_unsigned("!=", asleep, ir.Constant(I32, 0))):
        futex(b, f.gen, FUTEX_WAKE_PRIVATE, ir.Constant(I64, 2 ** 31 - 1))
    b.call(take, [state, gen, ir.Constant(I64, 0), b.sdiv(chunks_arg, workers_arg)])
    wait_all, waiting, spin_more, yield_core, finished = (run.append_basic_block(n) for n in (
        "wait", "wait.more", "wait.pause", "wait.yield", "finished"))
    before = b.block
    b.branch(wait_all)
    b.position_at_end(wait_all)
    spins = b.phi(I32, name="spins")
    spins.add_incoming(ir.Constant(I32, 0), before)
    left = b.load_atomic(f.pending, "acquire", 8)
    b.cbranch(b.icmp_signed("!=", left, ir.Constant(I64, 0)), waiting, finished)
    b.position_at_end(waiting)
    b.cbranch(b.icmp_unsigned("<", spins, ir.Constant(I32, CALLER_SPIN)), spin_more, yield_core)
    b.position_at_end(spin_more)
    pause(b)
    spins.add_incoming(b.add(spins, ir.Constant(I32, 1)), spin_more)
    b.branch(wait_all)
    b.position_at_end(yield_core)   # a worker holding a chunk was descheduled: let it run
    b.call(syscall, [ir.Constant(I64, SYS_SCHED_YIELD[machine])])
    spins.add_incoming(spins, yield_core)
    b.branch(wait_all)
    b.position_at_end(finished)
    b.ret_void()
    return str(m)


class NativePool:
    """Same interface as threads.ThreadPool: `size`, `parallel_ns` and run(address, frame,
    extent, threads)."""

    parallel_ns = PARALLEL_NS
    native = True   # compiled programs may call graphc_pool_run themselves (lent_to_loops)

    def __init__(self, threads: int) -> None:
        self.size = max(1, threads)
        text = _module()
        about = f"graphc-pool-6; {jit.host_description()}"
        key = cache.key_of(about, text)
        code = cache.load(key, "runtime", about)
        if code is None:
            code = jit.compile_object(text, quick=False)
            cache.store(key, code, "runtime", about)
        engine = jit.load_object(key, code)
        self._run_address = engine.address("graphc_pool_run")
        self._run = RUN(self._run_address)
        self._worker = WORKER(engine.address("graphc_pool_worker"))
        self._lock = threading.RLock()   # reentrant: a program lent the pool runs its kernels on it too
        self._block = ctypes.create_string_buffer(LINE * (FLAGS + 1) + 4 * MAX_CHUNKS)   # zeroed; never freed while
        self._state = ctypes.addressof(self._block) + (-ctypes.addressof(self._block)) % LINE   # workers run
        _alive.append(self)
        start = ctypes.c_int32.from_address(self._state + GEN * LINE).value   # 0: no job was published yet
        for i in range(1, self.size):
            self._start_worker(i, start)

    def _start_worker(self, index: int, start_generation: int) -> None:
        """Start worker `index`, which first waits for a generation after `start_generation`."""
        threading.Thread(target=self._worker, args=(self._state, index, start_generation), daemon=True,
                         name=f"graphc-native-{index}").start()

    @contextmanager
    def lent_to_loops(self, threads: int | None = None) -> Iterator[None]:
        """While the block runs, loop bodies of compiled programs may run their products on
        this pool (at most `threads` threads): the pool's lock is held (one program at a time
        publishes jobs) and jit.LOOP_POOL names the pool, then is cleared again."""
        threads = self.size if threads is None else max(1, min(threads, self.size))
        with self._lock:
            words = jit.LOOP_POOL
            words[0], words[1], words[2] = self._state, self._run_address, threads
            try:
                yield
            finally:
                words[0] = words[1] = words[2] = 0

    def run(self, address: int, frame: int, extent: int, threads: int | None = None) -> None:
        """fn(frame, start, end) over [0, extent), on at most `threads` threads of the pool (all
        by default), the calling thread included (fn given by address)."""
        threads = self.size if threads is None else max(1, min(threads, self.size))
        chunks = min(extent, threads * CHUNKS_PER_THREAD, MAX_CHUNKS)
        if threads <= 1 or chunks <= 1:
            kernel_call(address)(frame, 0, extent)
            return
        with self._lock:   # one parallel kernel at a time
            self._run(self._state, address, frame, extent, chunks, threads)


_alive: list[NativePool] = []   # pools are never freed: their worker threads use the state block

_KERNEL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_calls: dict[int, object] = {}


def kernel_call(address: int):
    """A ctypes callable for the native kernel at `address` (made once per address)."""
    fn = _calls.get(address)
    if fn is None:
        fn = _calls[address] = _KERNEL(address)
    return fn
