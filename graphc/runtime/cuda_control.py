"""Loops and branches on the CUDA backend, run by the host (graphc.codegen.cuda.HostStep).

The body's (and condition's, and each branch's) kernels are compiled once with the rest of the
program; the host walks the iterations: it points the body's view buffers at the captured
tensors and at row s(i) of each sequence (device pointer arithmetic, no copy), copies the
initial loop values in, and per iteration launches the condition (reading its bool back), the
body, and device-to-device copies of the per-iteration values into their stacks and of the new
loop values into place. What it does is what the LLVM backend's native loop does
(graphc.codegen.llvm_control), step for step; graphc/ops/loops.py defines the meaning.

Each iteration that has a condition, or a check that can fail, reads a few bytes back from the
device (a synchronization); a counted loop without checks only queues launches and copies.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..lower.kernel import Buffer, HostCall, LoopStep, host_attrs
from ..ops.collective import run_collective


def _storage(b: Buffer) -> Buffer:
    return b.alias_of if b.alias_of is not None else b


def _row_bytes(buf: Buffer) -> int:
    return buf.nbytes // buf.shape[0] if buf.shape and buf.shape[0] else 0


class HostRunner:
    """Runs a module's steps (launch indices and HostSteps) for one call of an executable."""

    def __init__(self, executable: Any, pointer: dict[int, int], profile: Any, timers: list[tuple[int, Any]]) -> None:
        self.x, self.pointer, self.profile, self.timers = executable, pointer, profile, timers
        self.device = executable.device
        self.checked = bool(executable.kp.errors)

    def run(self, steps: list[Any]) -> None:
        for step in steps:
            if isinstance(step, int):
                self.x._launch(step, self.pointer, self.profile, self.timers)
            elif isinstance(step.kernel, LoopStep):
                self._loop(step)
            elif isinstance(step.kernel, HostCall):
                self._host_call(step.kernel)
            else:
                self._branch(step)

    def _host_call(self, k: HostCall) -> None:
        """An exchange with the other processes, staged through host memory (the same
        graphc.ops.collective calls the CPU backend makes from compiled code)."""
        if self.failed():
            return
        x = None
        if k.src is not None:
            x = np.empty(k.src.shape, k.src.dtype.np)
            self.device.to_host(x, self.ptr(k.src))
        out = np.empty(k.dst.shape, k.dst.dtype.np) if k.dst is not None else None
        run_collective(k.kind, x, out, host_attrs(k.kind, k.argument, k.key))
        if out is not None:
            self.device.to_device(self.ptr(k.dst), out)

    # ---------------------------------------------------------------- memory
    def ptr(self, buf: Buffer) -> int:
        return self.pointer[_storage(buf).id]

    def point(self, view: Buffer, address: int) -> None:
        self.pointer[view.id] = address

    def read_int(self, buf: Buffer, dtype: Any) -> int:
        out = np.zeros(1, dtype)
        self.device.to_host(out, self.ptr(buf))
        return int(out[0])

    def write_int(self, buf: Buffer, value: int) -> None:
        self.device.to_device(self.ptr(buf), np.array([value], np.int64))

    def failed(self) -> bool:
        if not self.checked:
            return False
        record = np.zeros(1, np.int64)
        self.device.to_host(record, self.x.error_ptr)
        return bool(record[0])

    # ---------------------------------------------------------------- loops
    def _loop(self, step: Any) -> None:
        s: LoopStep = step.kernel
        body, cond = s.body, s.cond
        n, m = len(s.carries), len(s.sequences)
        copy = self.device.copy
        for c, cap in enumerate(s.captures):
            self.point(body.args[1 + n + m + c], self.ptr(cap))
            if cond is not None:
                self.point(cond.args[1 + n + m + c], self.ptr(cap))
        if cond is not None:
            for k in range(1 + n):
                self.point(cond.args[k], self.ptr(body.args[k]))
        for k, init in enumerate(s.carries):
            copy(self.ptr(body.args[1 + k]), self.ptr(init), init.nbytes)
        trip = self.read_int(s.trip, np.int64)
        for q in s.sequences:
            trip = min(trip, q.shape[0])
        i = 0
        while i < trip:
            at = trip - 1 - i if s.reverse else i
            self.write_int(body.args[0], i)
            for q_index, q in enumerate(s.sequences):
                row = self.ptr(q) + at * _row_bytes(q)
                self.point(body.args[1 + n + q_index], row)
                if cond is not None:
                    self.point(cond.args[1 + n + q_index], row)
            if cond is not None:
                self.run(step.plans["cond"])
                if self.failed() or not self.read_int(cond.results[0], np.uint8):
                    break
            for k, hist in enumerate(s.history):
                copy(self.ptr(hist) + at * _row_bytes(hist), self.ptr(body.args[1 + k]), body.args[1 + k].nbytes)
            self.run(step.plans["body"])
            if self.failed():
                break
            for v, stack in enumerate(s.stacked):
                copy(self.ptr(stack) + at * _row_bytes(stack), self.ptr(body.results[n + v]), _row_bytes(stack))
            for k, staged in enumerate(s.staging):
                if staged is not None:
                    copy(self.ptr(staged), self.ptr(body.results[k]), staged.nbytes)
            for k in range(n):
                source = s.staging[k] if s.staging and s.staging[k] is not None else body.results[k]
                if _storage(source) is not _storage(body.args[1 + k]):
                    copy(self.ptr(body.args[1 + k]), self.ptr(source), body.args[1 + k].nbytes)
            i += 1
        self.write_int(s.count, i)
        for k, final in enumerate(s.finals):
            copy(self.ptr(final), self.ptr(body.args[1 + k]), final.nbytes)
        for stack in s.stacked + s.history:   # rows past the count are zeros
            rows, row_bytes = stack.shape[0], _row_bytes(stack)
            if rows and row_bytes and i < rows:
                self.device.zero(self.ptr(stack) + i * row_bytes, (rows - i) * row_bytes)

    # ---------------------------------------------------------------- branches
    def _branch(self, step: Any) -> None:
        b = step.kernel
        taken = self.read_int(b.pred, np.uint8)
        sub, plan = (b.then_branch, step.plans["then"]) if taken else (b.else_branch, step.plans["else"])
        for view, cap in zip(sub.args, b.captures):
            self.point(view, self.ptr(cap))
        self.run(plan)
        for out, result in zip(b.outputs, sub.results):
            self.device.copy(self.ptr(out), self.ptr(result), out.nbytes)
