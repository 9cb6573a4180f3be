"""Grid-stage reductions: a long reduction to few outputs (a full sum, a loss over a big batch)
as two CUDA kernels, because one block per output would leave all but a few multiprocessors
idle.

  stage 1 (NAME_part): the reduced range of each output is cut into chunks; a block reduces
          one chunk (threads stride, shuffle tree, shared stage) and writes its partial result
          to a scratch array; checks and stores inside the reduction run here.
  stage 2 (NAME):      a block per output combines its partials the same way (argmax / argmin
          partials carry their positions; ties go to the lower one, as in NumPy) and thread 0
          runs the epilogue.
The scratch array belongs to the launch (Launch.scratch bytes); the runtime allocates it.
"""
from __future__ import annotations

from typing import Any

from .cuda_expr import Scope, c_type, memory_type
from .cuda_loops import LOOP_UNROLL, REDUCE_BLOCK, Launch, LoopWriter, _combine_line, _prod

CHUNK = 8192               # reduced iterations per block in stage 1


class SplitWriter:
    def __init__(self, w: LoopWriter) -> None:
        self.w = w
        k = w.k
        self.outer_axes, self.reduced_axes = list(k.order[: w.n_outer]), list(k.order[w.n_outer:])
        self.outputs = _prod([k.space[a] for a in self.outer_axes])
        self.reduced = _prod([k.space[a] for a in self.reduced_axes])
        self.chunks = -(-self.reduced // CHUNK)
        # scratch layout: per accumulator, its partial values (and positions for argmax / argmin)
        self.layout: list[tuple[int, int | None]] = []
        offset = 0
        for acc in k.accumulators:
            arg = acc.combiner in ("argmax", "argmin")
            dtype = acc.operand.dtype if arg else acc.dtype
            values = offset
            offset += -(-self.outputs * self.chunks * max(dtype.itemsize, 1) // 16) * 16
            where = None
            if arg:
                where = offset
                offset += -(-self.outputs * self.chunks * 8 // 16) * 16
            self.layout.append((values, where))
        self.scratch = offset

    def _head(self, name: str) -> str:
        w = self.w
        params = [f"{'const ' if w.const[b.id] else ''}{memory_type(b.dtype)}* __restrict__ p{b.id}" for b in w.params]
        params += ["char* __restrict__ gc_scratch", "i64* __restrict__ gc_error"]
        return f'extern "C" __global__ void __launch_bounds__({REDUCE_BLOCK}) {name}({", ".join(params)})'

    def _partials(self, scope: Scope) -> list[tuple[str, str | None]]:
        names = []
        for n, (acc, (values, where)) in enumerate(zip(self.w.k.accumulators, self.layout)):
            arg = acc.combiner in ("argmax", "argmin")
            vt = c_type(acc.operand.dtype if arg else acc.dtype)
            scope.emit(f"{vt}* part{n} = reinterpret_cast<{vt}*>(gc_scratch + {values});")
            if where is not None:
                scope.emit(f"i64* parti{n} = reinterpret_cast<i64*>(gc_scratch + {where});")
            names.append((f"part{n}", f"parti{n}" if where is not None else None))
        return names

    def sources(self, name: str) -> tuple[list[str], list[Launch]]:
        w = self.w
        t = "i64"
        ids = [b.id for b in w.params]
        # ---- stage 1
        scope = Scope(1, w.counter)
        if w.k.skip_on_error:
            scope.emit("if (gc_error[0] != 0) return;")
        w.declare_scratch(scope, "")
        partials = self._partials(scope)
        jobs = self.outputs * self.chunks
        scope.emit(f"for ({t} job = blockIdx.x; job < {jobs}; job += gridDim.x) {{")
        body = Scope(2, w.counter)
        body.emit(f"const {t} o = job / {self.chunks};")
        body.emit(f"const {t} lo = (job % {self.chunks}) * {CHUNK};")
        body.emit(f"const {t} hi = lo + {CHUNK} < {self.reduced} ? lo + {CHUNK} : {self.reduced};")
        loop_vars: dict[int, str] = {}
        w.unravel(body, "o", self.outer_axes, loop_vars)
        accs = w.declare_accumulators(body)
        body.emit(f"#pragma unroll {LOOP_UNROLL}")
        body.emit(f"for ({t} r = lo + threadIdx.x; r < hi; r += {REDUCE_BLOCK}) {{")
        inner = Scope(3, w.counter)
        inner_vars = dict(loop_vars)
        w.unravel(inner, "r", self.reduced_axes, inner_vars)
        w.inner(inner, inner_vars, accs=accs)
        w.close(body, inner)
        w.block_combine(body, accs, "")
        body.emit("if (threadIdx.x == 0) {")
        for (value, at), (part, part_at) in zip(accs, partials):
            body.emit(f"    {part}[job] = {value};")
            if at is not None:
                body.emit(f"    {part_at}[job] = {at};")
        body.emit("}")
        w.close(scope, body)
        first = self._head(f"{name}_part") + " {\n" + "\n".join(scope.lines) + "\n}\n"
        # ---- stage 2
        scope = Scope(1, w.counter)
        if w.k.skip_on_error:
            scope.emit("if (gc_error[0] != 0) return;")
        w.declare_scratch(scope, "")
        partials = self._partials(scope)
        scope.emit(f"for ({t} o = blockIdx.x; o < {self.outputs}; o += gridDim.x) {{")
        body = Scope(2, w.counter)
        loop_vars = {}
        w.unravel(body, "o", self.outer_axes, loop_vars)
        accs = w.declare_accumulators(body)
        body.emit(f"for ({t} c = threadIdx.x; c < {self.chunks}; c += {REDUCE_BLOCK}) {{")
        for acc, (value, at), (part, part_at) in zip(w.k.accumulators, accs, partials):
            item = f"{part}[o * {self.chunks} + c]"
            if at is not None:
                is_max = "true" if acc.combiner == "argmax" else "false"
                body.emit(f"    if (gc_arg_better({item}, {part_at}[o * {self.chunks} + c], {value}, {at}, {is_max})) "
                          f"{{ {value} = {item}; {at} = {part_at}[o * {self.chunks} + c]; }}")
            else:
                body.emit("    " + _combine_line(acc.combiner, acc.dtype, value, item))
        body.emit("}")
        w.block_combine(body, accs, "")
        body.emit("if (threadIdx.x == 0) {")
        epilogue = Scope(3, w.counter)
        w.outer(epilogue, loop_vars, accs)
        w.close(body, epilogue)
        w.close(scope, body)
        second = self._head(name) + " {\n" + "\n".join(scope.lines) + "\n}\n"
        launches = [Launch(f"{name}_part", ids, REDUCE_BLOCK, jobs, 1, None, "split", self.scratch),
                    Launch(name, ids, REDUCE_BLOCK, self.outputs, 1, None, "split", self.scratch)]
        return [first, second], launches


def render_split(w: LoopWriter, name: str) -> tuple[list[str], list[Launch]]:
    return SplitWriter(w).sources(name)


__all__: list[Any] = ["render_split"]
