"""Row chains on the GPU: consecutive row kernels (graphc.lower.chains) as ONE CUDA kernel.

A block takes a row and runs each member on it in turn (a row softmax: max, sum of
exponentials, division), with __syncthreads() between members, so that the row is read from
global memory once; the chain's private temporaries (softmax's exponentials) live in shared
memory, a row at a time, and never reach global memory.
"""
from __future__ import annotations

from typing import Any, Callable

from ..lower.kernel import Buffer, LoopKernel
from .cuda_expr import Scope, memory_type
from .cuda_loops import LOOP_UNROLL, Launch, LoopWriter, _prod

CHAIN_BLOCK = 256     # threads per block (H200, softmax 32768x4096: 128 538 µs, 256 455, 512 484, 1024 594)
CHAIN_MIN_ROW = 128   # per-row iterations every member needs before a block per row pays
SHARED_ROW_BYTES = 32 * 1024   # a block's row of private temporaries in shared memory, at most


def chain_worthwhile(members: list[LoopKernel]) -> bool:
    """A row chain (graphc.lower.chains) runs as one kernel, a block per row, when every member
    has enough work per row to occupy a block."""
    return all(k.work // max(k.parallel_extent, 1) >= CHAIN_MIN_ROW for k in members)


class ChainWriter:
    """Consecutive row kernels as ONE kernel: a block takes a row and runs each member on it in
    turn (a row softmax: max, sum of exponentials, division), with __syncthreads() between
    members, so a row is read from memory once and the rest comes from cache. A member's work
    on its row is split across the block's threads: elementwise work by striding, a reduction
    to one value per row by a block reduction, other reductions one output per thread."""

    def __init__(self, members: list[LoopKernel], name: str, error_code: Callable[[Any], int],
                 private: tuple[tuple[int, int], ...] = ()) -> None:
        self.name = name
        self.writers = [LoopWriter(k, name, error_code) for k in members]
        counter = [0]
        for w in self.writers:
            w.counter = counter
        uniq: dict[int, Buffer] = {}
        const: dict[int, bool] = {}
        for w in self.writers:
            for b in w.params:
                uniq.setdefault(b.id, b)
                const[b.id] = const.get(b.id, True) and w.const[b.id]
        # the chain's private temporaries (softmax's exponentials) live in shared memory, one
        # row per block, when they fit: they never reach global memory
        self.shared: list[tuple[Buffer, int]] = []
        if 0 < sum(nbytes for _, nbytes in private) <= SHARED_ROW_BYTES:
            for buffer_id, nbytes in private:
                buf = uniq.get(buffer_id)
                if buf is not None:
                    self.shared.append((buf, nbytes // buf.dtype.itemsize))
        for buf, per_row in self.shared:
            del uniq[buf.id]
            for w in self.writers:
                w.local[buf.id] = (f"s{buf.id}", per_row, f"i{w.k.order[0]}")
        self.params, self.const = list(uniq.values()), const
        self.itype = "i64" if any(w.itype == "i64" for w in self.writers) else "int"
        for w in self.writers:
            w.itype = self.itype
        self.rows = members[0].parallel_extent

    def launch(self) -> Launch:
        return Launch(self.name, [b.id for b in self.params], CHAIN_BLOCK, self.rows, 1, None, "chain")

    def source(self) -> str:
        params = [f"{'const ' if self.const[b.id] else ''}{memory_type(b.dtype)}* __restrict__ p{b.id}"
                  for b in self.params] + ["i64* __restrict__ gc_error"]
        scope = Scope(1, self.writers[0].counter)
        for buf, per_row in self.shared:
            scope.emit(f"__shared__ __align__(16) {memory_type(buf.dtype)} s{buf.id}[{per_row}];")
        for n_member, w in enumerate(self.writers):
            w.declare_scratch(scope, f"{n_member}_")
        body = self.writers[0].grid_stride(scope, "row", self.rows, False)
        for n_member, w in enumerate(self.writers):
            if n_member:
                body.emit("__syncthreads();")
            body.emit("{")
            member = Scope(body.indent + 1, w.counter)
            self.member(member, w, n_member)
            w.close(body, member)
        body.emit("__syncthreads();   // the next row may overwrite what this one still reads")
        self.writers[0].close(scope, body)
        head = f'extern "C" __global__ void __launch_bounds__({CHAIN_BLOCK}) {self.name}({", ".join(params)})'
        return head + " {\n" + "\n".join(scope.lines) + "\n}\n"

    def member(self, scope: Scope, w: LoopWriter, n_member: int) -> None:
        k = w.k
        row_axis = k.order[0]
        loop_vars = {row_axis: f"i{row_axis}"}
        scope.emit(f"const {self.itype} i{row_axis} = row;")
        kept = list(k.order[1:w.n_outer])
        reduced = list(k.order[w.n_outer:])
        t = self.itype
        total = _prod([k.space[a] for a in kept])
        if not k.accumulators or total > 1:
            # elementwise work, or several outputs per row (one per thread, reduced in order):
            # the block's threads stride over the row's kept iterations
            scope.emit(f"#pragma unroll {LOOP_UNROLL}")
            scope.emit(f"for ({t} e = threadIdx.x; e < {total}; e += {CHAIN_BLOCK}) {{")
            inner = Scope(scope.indent + 1, w.counter)
            inner_vars = dict(loop_vars)
            w.unravel(inner, "e", kept, inner_vars)
            if k.accumulators:
                w.nest(inner, w.n_outer, inner_vars)
            else:
                w.inner(inner, inner_vars)
            w.close(scope, inner)
            return
        for v in kept:
            loop_vars[v] = f"(({t})0)"
        w.block_reduction(scope, loop_vars, reduced, f"{n_member}_", CHAIN_BLOCK)
