"""The CPU executable: binds NumPy arrays to a compiled program and runs it.

Per call, Python only writes the addresses of the argument and result arrays (id(array)) into
a preallocated table and makes one native call: the module's `bind` reads each array's data
pointer itself (NumPy's stable struct layout), so no per-array ctypes conversion is needed.
Programs with kernels big enough to split run as a plan of serial segments and parallel
kernels over the thread pool: on the native pool, the whole plan is one native call too. A
failed check (an index out of range) is reported with the node and source line that created the
failing op; no variable or result is touched by a failed run.
"""
from __future__ import annotations

import ctypes
import threading
import time
from sys import getrefcount
from typing import Any, Sequence

import numpy as np

from ..errors import ResourceExhaustedError
from ..ir.aligned import aligned_empty
from ..lower.chains import plan_steps
from ..lower.kernel import HOST_CALL_FAILED, BranchStep, GemmCall, KernelProgram, LoopStep, walk_kernels
from . import host_calls, jit
from .checks import check_failure
from .native_pool import kernel_call
from .threads import pool

# estimated serial nanoseconds below which a kernel runs on one thread; None: the pool's own
# (ThreadPool.parallel_ns, NativePool.parallel_ns). Tests set it to split everything or nothing.
PARALLEL_NS: int | None = None
# Whether a program that splits kernels over the native pool runs as one native call (P_plan,
# graphc.codegen.llvm) rather than one Python-side call per step; False measures the difference.
NATIVE_PLAN = True

# Results at least this big are reused once the caller has dropped them (see __call__).
RECYCLE_BYTES = 1 << 16
_UNREFERENCED = 3   # getrefcount of an array held only by the recycle list and a local variable
# getrefcount of the memory under a kept result (graphc.ir.aligned.aligned_empty: a view of a
# bigger array) when only that result refers to it: a caller's view of the result refers to the
# memory's owner, not to the result, so both are counted
_BASE_UNREFERENCED = 2

SEGMENT = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def out_of_memory(program: Any, buf: Any, nbytes: int, what: str) -> ResourceExhaustedError:
    """ResourceExhaustedError for an allocation of `nbytes` that failed, naming the node whose
    tensor `buf` holds (found by name in the program) rather than NumPy's MemoryError."""
    node = None
    if buf is not None:
        try:
            node = program.graph.get_tensor_by_name(buf.name).node
        except Exception:   # a buffer that is no tensor of the program: name the buffer alone
            node = None
    shape = f" (tensor '{buf.name}', {buf.dtype.name}{list(buf.shape)})" if buf is not None else ""
    message = f"cannot allocate {nbytes} bytes for {what}{shape}: out of memory"
    if node is None:
        return ResourceExhaustedError(message)
    return ResourceExhaustedError(message, op_type=node.type, node_name=node.name, source=node.source)
BIND = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
CALL = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)   # returns the error code


def parallel_kernels(info: Any, threads: int | None = None) -> list[bool]:
    """Which kernels are worth splitting across `threads` threads (default: the pool's): the
    cost model."""
    threads = pool().size if threads is None else min(threads, pool().size)
    limit = pool().parallel_ns if PARALLEL_NS is None else PARALLEL_NS
    flags = [threads > 1 and k.splittable and k.extent >= 2 and k.cost_ns >= limit for k in info.kernels]
    for chain in info.chains:   # a row chain is split as one unit, by its total cost
        members = info.kernels[chain.first:chain.last]
        flags[chain.first:chain.last] = [threads > 1 and sum(k.cost_ns for k in members) >= limit] * len(members)
    return flags


def plan_segments(flags: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs of kernels that are not split: each becomes one native segment call."""
    segments, start = [], None
    for i, parallel in enumerate(flags + [True]):
        if parallel:
            if start is not None:
                segments.append((start, i))
                start = None
        elif start is None:
            start = i
    return segments


class CpuExecutable:
    def __init__(self, kp: KernelProgram, info: Any, engine: Any, program: Any, threads: int | None = None) -> None:
        self.kp, self.info, self.engine, self.program = kp, info, engine, program
        self.threads = threads   # at most this many of the pool's threads (None: all)
        self._uses_blas = any(isinstance(k, GemmCall) and not k.generated and not k.convolution_kernel
                              for k in walk_kernels(kp.kernels))
        # loops and branches may run their bodies' products on the pool while the program runs
        self._lends_pool = any(isinstance(k, (LoopStep, BranchStep)) for k in walk_kernels(kp.kernels))
        n = len(kp.buffers)
        self.frame = (ctypes.c_void_p * (2 + n))()
        self.error = (ctypes.c_int64 * 4)()
        self.frame[1] = ctypes.addressof(self.error)
        try:
            self.workspace = np.empty(kp.workspace_bytes + 64, np.uint8)
        except MemoryError:
            temps = [b for b in kp.buffers if b.kind == "temp"]
            biggest = max(temps, key=lambda b: b.nbytes) if temps else None
            raise out_of_memory(program, biggest, kp.workspace_bytes, "the workspace of its temporaries") from None
        base = self.workspace.ctypes.data
        base += (-base) % 64
        self.frame[0] = base
        self._constants = []
        for b in kp.buffers:
            if b.kind == "temp":
                self.frame[2 + b.id] = base + (b.offset or 0)
            elif b.kind == "const":
                arr = np.asarray(b.value, dtype=b.dtype.np, order="C")
                self._constants.append(arr)
                self.frame[2 + b.id] = arr.ctypes.data
        position = {buffer_id: j for j, buffer_id in enumerate(info.dynamic)}
        self._input_slots = [position[b.id] for b in kp.inputs]
        outputs = [b for b in kp.buffers if b.kind == "output"]
        # (argument slot, shape, dtype, [the result array kept for reuse or None], whether it is
        # kept: big enough that a fresh one costs page faults) per output
        self._outputs = [(position[b.id], b.shape, b.dtype.np, [None], b.nbytes >= RECYCLE_BYTES) for b in outputs]
        # outputs computed in place of an input (a variable's new value over its old one):
        # (position in _outputs, index into the arguments)
        self._in_place = [(j, kp.inputs.index(b.alias_of)) for j, b in enumerate(outputs) if b.alias_of is not None]
        self._result_plan = []
        for b in kp.results:
            if b.kind == "output":
                self._result_plan.append(("out", outputs.index(b)))
            elif b.kind == "input":
                self._result_plan.append(("in", kp.inputs.index(b)))
            else:
                self._result_plan.append(("const", np.asarray(b.value, dtype=b.dtype.np, order="C")))
        self._results_are_outputs = self._result_plan == [("out", j) for j in range(len(outputs))]
        uses = [id(b) for b in kp.results]
        # A result is fresh when it is an output buffer no other result shares: its array is new
        # per call and belongs to the caller as it is.
        self.fresh_results = [b.kind == "output" and uses.count(id(b)) == 1 for b in kp.results]
        self.objects = (ctypes.c_int64 * max(1, len(info.dynamic)))()
        self._frame_ptr = ctypes.addressof(self.frame)
        self._objects_ptr = ctypes.addressof(self.objects)
        address = engine.address
        self._call = CALL(address(f"{info.name}_call"))
        self._bind = BIND(address(f"{info.name}_bind"))
        serial = {i for first, last in info.segments for i in range(first, last)}
        flags = [i not in serial for i in range(len(info.kernels))]   # split over the pool
        self._split = flags
        self._steps: list[tuple[Any, Any]] | None = None   # (kernel address, extent) or (segment, None)
        if any(flags):
            steps: list[tuple[Any, Any]] = []
            for kind, j in plan_steps(len(flags), info.segments, info.chains):
                if kind == "segment":
                    steps.append((SEGMENT(address(f"{info.name}_seg{j}")), None))
                elif kind == "chain":
                    steps.append((address(f"{info.name}_chain{j}"), info.chains[j].extent))
                else:
                    steps.append((address(info.kernels[j].name), info.kernels[j].extent))
            self._steps = steps
        # the whole plan in one native call, where the pool can be lent to native code
        self._plan = CALL(address(f"{info.name}_plan")) if (
            self._steps is not None and NATIVE_PLAN and getattr(pool(), "native", False)) else None
        self._lock = threading.Lock()
        self._kernel_fns: list[Any] | None = None

    def kernel_labels(self) -> list[tuple[str, str, str]]:
        """(kernel name, op type, node name) per kernel, for profiles."""
        labels = []
        for k in self.kp.kernels:
            node = getattr(k, "node", None)
            labels.append((k.name, getattr(node, "type", "?"), getattr(node, "name", "?")))
        return labels

    def _run_profiled(self, profile: Any) -> None:
        """Each kernel on its own, timed (split over the pool as in a plain run)."""
        if self._kernel_fns is None:
            self._kernel_fns = [self.engine.address(k.name) for k in self.info.kernels]
        self._bind(self._objects_ptr, self._frame_ptr)
        run = pool().run
        clock = time.perf_counter
        for i, (fn, k) in enumerate(zip(self._kernel_fns, self.info.kernels)):
            t0 = clock()
            if not self._split[i] or self._steps is None:
                kernel_call(fn)(self._frame_ptr, 0, k.extent)
            else:
                run(fn, self._frame_ptr, k.extent, self.threads)
            profile.record(i, clock() - t0)
            if self.error[0]:
                return

    def __call__(self, args: Sequence[Any], profile: Any = None) -> list[np.ndarray]:
        keep = args
        for j, a in enumerate(args):
            if type(a) is not np.ndarray or not a.flags.c_contiguous:
                if keep is args:
                    keep = list(args)
                keep[j] = np.asarray(a, order="C")
        outs = []
        with self._lock:   # one call at a time: the frame, the objects table and `recycled`
            objects = self.objects
            for slot, a in zip(self._input_slots, keep):
                objects[slot] = id(a)
            for slot, shape, dtype, recycled, kept in self._outputs:
                o = recycled[0]
                # A big result of an earlier call that nobody holds any more (only `recycled`
                # and `o` refer to it, and to its memory only `o`) is reused: a fresh one costs
                # a page fault per 4 KiB.
                if o is None or getrefcount(o) > _UNREFERENCED or getrefcount(o.base) > _BASE_UNREFERENCED:
                    try:
                        if kept:   # on a cache line, as constants are (graphc.ir.aligned)
                            o = recycled[0] = aligned_empty(shape, dtype)
                        else:
                            o = np.empty(shape, dtype)
                    except MemoryError:
                        raise self._output_out_of_memory(slot) from None
                outs.append(o)
                objects[slot] = id(o)
            for j, arg in self._in_place:
                outs[j] = keep[arg]
                objects[self._outputs[j][0]] = id(keep[arg])
            blas = jit.blas_threads(1) if self._uses_blas else None   # BLAS inside graphc's chunks
            try:
                code = self._run(profile)
            finally:
                if blas is not None and blas != 1:
                    jit.blas_threads(blas)
            if code:
                self._raise(int(code), int(self.error[1]), int(self.error[2]))
        if self._results_are_outputs:
            return outs
        return [outs[value] if kind == "out" else keep[value] if kind == "in" else value
                for kind, value in self._result_plan]

    def _run(self, profile: Any) -> int:
        """Run the bound program (one native call, or its steps over the pool); the error code.
        A program with loops holds the pool while it runs (its bodies' products use it)."""
        if self._lends_pool:
            with pool().lent_to_loops(self.threads):
                return self._run_steps(profile)
        return self._run_steps(profile)

    def _run_steps(self, profile: Any) -> int:
        if profile is None and self._steps is None:
            return self._call(self._objects_ptr, self._frame_ptr)
        if profile is None and self._plan is not None:
            if self._lends_pool:   # already lent by _run
                return self._plan(self._objects_ptr, self._frame_ptr)
            with pool().lent_to_loops(self.threads):
                return self._plan(self._objects_ptr, self._frame_ptr)
        self.error[0] = 0
        if profile is not None:
            self._run_profiled(profile)
        else:
            self._bind(self._objects_ptr, self._frame_ptr)
            run, threads = pool().run, self.threads
            for fn, extent in self._steps:
                if extent is None:
                    fn(self._frame_ptr)
                else:
                    run(fn, self._frame_ptr, extent, threads)
        return self.error[0]

    def _output_out_of_memory(self, slot: int) -> Exception:
        position = {buffer_id: j for j, buffer_id in enumerate(self.info.dynamic)}
        buf = next(b for b in self.kp.buffers if b.kind == "output" and position.get(b.id) == slot)
        return out_of_memory(self.program, buf, buf.nbytes, "its result")

    def _raise(self, code: int, value: int, where: int) -> None:
        if code == HOST_CALL_FAILED:   # a collective failed: its own error (graphc.runtime.host_calls)
            err = host_calls.take_error()
            if err is not None:
                raise err
        raise check_failure(self.kp, code, value, where)
