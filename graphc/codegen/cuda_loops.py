"""Rendering a LoopKernel as a CUDA C `__global__` function.

A kernel's loop nest is mapped onto the grid in one of four ways, chosen by its shape:
  flat    no reduction: one grid-stride loop over every iteration (the innermost loop variable
          varies fastest across threads, so loads and stores coalesce); four elements per
          thread through float4 / int4 loads and stores when every access is the element
          itself (or one broadcast element) and the size allows.
  block   a reduction over many elements that are contiguous in memory (a row sum, a softmax
          max): one block per output (grid-stride over outputs), its threads stride over the
          reduced elements, then a warp-shuffle tree (__shfl_down_sync) and a shared-memory
          stage combine the partial results, and thread 0 runs the epilogue.
  split   a long reduction to a few outputs (a full sum): a grid stage first, many blocks per
          output each reducing a chunk to a partial result, then a block per output combines
          the partials and runs the epilogue (graphc.codegen.cuda_split).
  thread  other reductions (short ones, or columns: the reduced axis is strided and the kept
          axis contiguous): one thread per output, reducing sequentially; neighbouring threads
          read neighbouring columns.
  single  a kernel whose stores may collide and are not all additions (serial in the IR): one
          thread runs the whole nest in order. Colliding additions (a scatter-add) run flat
          with atomicAdd instead.
Row chains (several kernels as one) are graphc.codegen.cuda_chains. Every kernel takes one
pointer per buffer it touches (in-place pairs share one) and the error
record; checks report the first failure with atomicCAS (graphc_cuda.cuh: gc_fail).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..lower import index as iexpr
from ..lower.kernel import Buffer, LoopKernel, columnar_axis, identity
from ..lower.loop_builder import uses_loop_index
from ..lower.reads import flatten
from .cuda_expr import IndexRenderer, ScalarRenderer, Scope, c_type, literal, memory_type

FLAT_BLOCK = 256
THREAD_BLOCK = 128
REDUCE_BLOCK = 256
# A reduction of at least this many contiguous elements per output gets a block per output.
BLOCK_REDUCTION_MIN = 128
# A reduction to at most this many outputs, over at least this many elements each, gets a grid
# stage (one block per output would leave most multiprocessors idle).
SPLIT_MAX_OUTPUTS = 32
SPLIT_MIN_REDUCED = 1 << 16
INT_LIMIT = 1 << 30   # indices stay in 32-bit ints below this (no overflow of g + stride)
VECTOR_UNROLL = 1     # 16-byte steps per thread per iteration in vector kernels
VECTORIZE = True      # 16-byte loads and stores where every access allows
LOOP_UNROLL = 4       # unrolling of a block's strided loops over a row


@dataclass
class Launch:
    """How the runtime launches one generated kernel."""

    name: str
    buffers: list[int]           # buffer ids passed as pointers, in parameter order (error last)
    block: int                   # threads per block
    units: int                   # independent work units (grid-stride loops cover any grid)
    per_block: int               # units one block covers per step
    grid: tuple[int, int, int] | None = None   # a fixed grid (GEMM tiles)
    mode: str = "flat"
    scratch: int = 0             # bytes of scratch memory it takes (a pointer after the buffers)

    @property
    def n_args(self) -> int:
        return len(self.buffers) + (1 if self.scratch else 0) + 1

    def grid_for(self, max_blocks: int) -> tuple[int, int, int]:
        if self.grid is not None:
            return self.grid
        return (max(1, min(-(-self.units // self.per_block), max_blocks)), 1, 1)


def storage(b: Buffer) -> Buffer:
    return b.alias_of if b.alias_of is not None else b


def _prod(values) -> int:
    return int(np.prod(values, dtype=np.int64)) if len(values) else 1


def _has_load(e: Any) -> bool:
    if isinstance(e, tuple):
        return any(_has_load(x) for x in e)
    if e is None:
        return False
    return e.op == "load" or any(_has_load(a) for a in e.args)


def _combine_line(combiner: str, dtype: Any, acc: str, x: str) -> str:
    t = c_type(dtype)
    fl, boolean = dtype.is_floating, dtype.is_bool
    if combiner in ("sum", "any"):
        new = f"{acc} + {x}" if fl else (f"({acc} || {x})" if boolean else f"gc_add<{t}>({acc}, {x})")
    elif combiner in ("prod", "all"):
        new = f"{acc} * {x}" if fl else (f"({acc} && {x})" if boolean else f"gc_mul<{t}>({acc}, {x})")
    elif combiner in ("max", "min"):
        new = (f"({acc} {'||' if combiner == 'max' else '&&'} {x})" if boolean else f"gc_{combiner}({acc}, {x})")
    else:
        raise AssertionError(combiner)
    return f"{acc} = {new};"


def _block_op(combiner: str, dtype: Any) -> str:
    fl, boolean = dtype.is_floating, dtype.is_bool
    if boolean or combiner in ("any", "all"):
        return "gc_or()" if combiner in ("sum", "max", "any") else "gc_and()"
    if combiner == "sum":
        return "gc_sum()" if fl else "gc_wsum()"
    if combiner == "prod":
        return "gc_prod()" if fl else "gc_wprod()"
    return "gc_imax()" if combiner == "max" else "gc_imin()"


class LoopWriter:
    def __init__(self, k: LoopKernel, name: str, error_code: Callable[[Any], int]) -> None:
        self.k, self.name, self.error_code = k, name, error_code
        uniq: dict[int, Buffer] = {}
        for b in [s.buffer for s in k.slots] + [s.buffer for s in k.stores]:
            uniq.setdefault(storage(b).id, storage(b))
        self.params = list(uniq.values())
        written = {storage(s.buffer).id for s in k.stores}
        self.ptr = {b.id: f"p{storage(b).id}" for b in [s.buffer for s in k.slots] + [s.buffer for s in k.stores]}
        self.const = {b.id: b.id not in written for b in self.params}
        sizes = [b.size for b in self.params] + [_prod(k.space)]
        accesses = [s.index for s in k.slots] + [s.valid for s in k.slots] + [s.index for s in k.stores]
        self.itype = "int" if max(sizes) < INT_LIMIT and not any(_has_load(a) for a in accesses) else "i64"
        self.n_outer = len(k.order) - len(k.reduced)
        self.mode = self.choose_mode()
        self.counter = [0]
        # buffers kept in shared memory, one row at a time (a row chain's private temporaries):
        # buffer id -> (shared array, elements per row, the row variable)
        self.local: dict[int, tuple[str, int, str]] = {}

    def element(self, buf: Buffer, offset: str) -> str:
        if buf.kind == "const" and buf.size == 1 and buf.value is not None:   # a scalar constant: inline
            return literal(np.asarray(buf.value).reshape(-1)[0].item(), buf.dtype)
        local = self.local.get(storage(buf).id)
        if local is not None:
            name, per_row, row = local
            return f"{name}[{offset} - {row} * {per_row}]"
        return f"{self.ptr[buf.id]}[{offset}]"

    # ---------------------------------------------------------------- mode
    def choose_mode(self) -> str:
        k = self.k
        all_add = all(s.mode == "add" for s in k.stores)
        if k.serial and (k.accumulators or not all_add):
            return "single"
        if not k.accumulators:
            return "vector" if VECTORIZE and self.vectorizable() else "flat"
        outputs = _prod([k.space[a] for a in k.order[: self.n_outer]])
        reduced = _prod([k.space[a] for a in k.order[self.n_outer:]])
        if outputs <= SPLIT_MAX_OUTPUTS and reduced >= SPLIT_MIN_REDUCED:
            return "split"   # two kernels: graphc.codegen.cuda_split renders them
        if reduced >= BLOCK_REDUCTION_MIN and (columnar_axis(k) is None or outputs < 1024):
            return "block"
        return "thread"

    def vectorizable(self) -> bool:
        """Every access is the iteration's own element (or element 0 of a broadcast), all 4-byte
        values: then a thread handles 4 consecutive elements with 16-byte loads and stores."""
        k = self.k
        total = _prod(k.space)
        # in axis order, but for axes of extent 1 (graphc.lower.loop_builder.split_first moves them)
        moving = [a for a in k.order if k.space[a] > 1]
        if k.serial or total % 4 or total == 0 or moving != sorted(moving):
            return False
        strides, step = {}, 1
        for axis in reversed(range(len(k.space))):
            if k.space[axis] > 1:
                strides[axis] = step
            step *= k.space[axis]
        for buf, idx, valid in [(s.buffer, s.index, s.valid) for s in k.slots] + [(s.buffer, s.index, None) for s in k.stores]:
            if valid is not None or buf.dtype.name not in ("float32", "int32"):
                return False
            form = iexpr.affine(idx if not isinstance(idx, tuple) else flatten(idx, buf.shape))
            if form is None:
                return False
            coeffs = {a: c for a, c in form[0].items() if k.space[a] > 1}
            if not ((coeffs == strides and form[1] == 0 and buf.size == total) or (not coeffs and buf in k.reads())):
                return False
            if coeffs == strides and buf.size != total:
                return False
        return not uses_loop_index([s.value for s in k.stores] + [c.condition for c in k.checks])

    # ---------------------------------------------------------------- source
    def launch(self) -> Launch:
        k = self.k
        ids = [b.id for b in self.params]
        outputs = _prod([k.space[a] for a in k.order[: self.n_outer]])
        if self.mode == "single":
            return Launch(self.name, ids, 1, 1, 1, (1, 1, 1), "single")
        if self.mode in ("flat", "vector"):
            total = _prod(k.space) // (4 if self.mode == "vector" else 1)
            return Launch(self.name, ids, FLAT_BLOCK, total, FLAT_BLOCK, None, self.mode)
        if self.mode == "block":
            return Launch(self.name, ids, REDUCE_BLOCK, outputs, 1, None, "block")
        return Launch(self.name, ids, THREAD_BLOCK, outputs, THREAD_BLOCK, None, "thread")

    def source(self) -> str:
        params = []
        for b in self.params:
            const = "const " if self.const[b.id] else ""
            params.append(f"{const}{memory_type(b.dtype)}* __restrict__ p{b.id}")
        params.append("i64* __restrict__ gc_error")
        block = self.launch().block
        scope = Scope(1, self.counter)
        if self.k.skip_on_error:
            scope.emit("if (gc_error[0] != 0) return;")
        {"flat": self.flat, "vector": self.vector, "block": self.block, "thread": self.thread,
         "single": self.single}[self.mode](scope)
        head = f'extern "C" __global__ void __launch_bounds__({block}) {self.name}({", ".join(params)})'
        return head + " {\n" + "\n".join(scope.lines) + "\n}\n"

    def unravel(self, scope: Scope, linear: str, axes: list[int], loop_vars: dict[int, str]) -> None:
        """Loop variables `axes` (outermost first) from a linear position over their extents."""
        t = self.itype
        rest = linear
        for pos, axis in enumerate(reversed(axes)):
            extent = self.k.space[axis]
            name = f"i{axis}"
            if pos == len(axes) - 1:
                scope.emit(f"const {t} {name} = {rest};")
            else:
                scope.emit(f"const {t} {name} = {rest} % {extent};")
                nxt = scope.fresh("q")
                scope.emit(f"const {t} {nxt} = {rest} / {extent};")
                rest = nxt
            loop_vars[axis] = name

    def grid_stride(self, scope: Scope, var: str, total: int, per_thread: bool) -> Scope:
        t = "i64" if total >= INT_LIMIT else self.itype
        if per_thread:
            scope.emit(f"for ({t} {var} = ({t})blockIdx.x * blockDim.x + threadIdx.x; {var} < {total}; "
                       f"{var} += ({t})gridDim.x * blockDim.x) {{")
        else:
            scope.emit(f"for ({t} {var} = blockIdx.x; {var} < {total}; {var} += gridDim.x) {{")
        return Scope(scope.indent + 1, self.counter)

    def close(self, outer: Scope, inner: Scope) -> None:
        outer.lines.extend(inner.lines)
        outer.emit("}")

    # ---------------------------------------------------------------- modes
    def flat(self, scope: Scope) -> None:
        k = self.k
        body = self.grid_stride(scope, "g", _prod(k.space), True)
        loop_vars: dict[int, str] = {}
        self.unravel(body, "g", list(k.order), loop_vars)
        self.inner(body, loop_vars, atomic=k.serial)
        self.close(scope, body)

    def vector(self, scope: Scope) -> None:
        """Four elements per thread and step through 16-byte loads and stores; VECTOR_UNROLL
        steps per iteration, all loads first, so that more memory requests are in flight."""
        k = self.k
        total = _prod(k.space) // 4
        t = "i64" if total >= INT_LIMIT else self.itype
        unroll = VECTOR_UNROLL
        scope.emit(f"const {t} stride = ({t})gridDim.x * blockDim.x;")
        scope.emit(f"for ({t} g0 = ({t})blockIdx.x * blockDim.x + threadIdx.x; g0 < {total}; g0 += {unroll} * stride) {{")
        body = Scope(scope.indent + 1, self.counter)
        vec: dict[tuple[int, int], str] = {}   # (buffer id, step) -> the loaded 4-vector
        for u in range(1, unroll):
            body.emit(f"const {t} g{u} = g0 + {u} * stride;")

        def vtype(buf: Buffer) -> str:
            return "float4" if buf.dtype.name == "float32" else "int4"

        for u in range(unroll):
            guard = f"g{u} < {total}" if u else "true"
            for slot in k.slots:
                buf = slot.buffer
                if self.broadcast(slot) is None and (buf.id, u) not in vec:
                    name = body.fresh("w")
                    body.emit(f"const {vtype(buf)} {name} = {guard} ? reinterpret_cast<const {vtype(buf)}*>"
                              f"({self.ptr[buf.id]})[g{u}] : {vtype(buf)}();")
                    vec[(buf.id, u)] = name
        for u in range(unroll):
            step = Scope(body.indent + (1 if u else 0), self.counter)
            results: dict[int, list[str]] = {}
            for lane in range(4):
                index = IndexRenderer(step, self.itype, {}, lambda n: "", lambda n: "")

                def load(n: int, lane: int = lane, u: int = u) -> str:
                    slot = k.slots[n]
                    at = self.broadcast(slot)
                    return self.element(slot.buffer, str(at)) if at is not None else \
                        f"{vec[(slot.buffer.id, u)]}.{'xyzw'[lane]}"

                scalar = ScalarRenderer(step, load, lambda n: "", index)
                self.checks(step, scalar, index, True, {}, where=f"((i64)g{u} * 4 + {lane})")
                for st in k.stores:
                    results.setdefault(id(st), []).append(scalar.render(st.value))
            for st in k.stores:
                vt = vtype(st.buffer)
                step.emit(f"reinterpret_cast<{vt}*>({self.ptr[st.buffer.id]})[g{u}] = "
                          f"make_{vt}({', '.join(results[id(st)])});")
            if u:
                body.emit(f"if (g{u} < {total}) {{")
                self.close(body, step)
            else:
                body.lines.extend(step.lines)
        self.close(scope, body)

    def broadcast(self, slot: Any) -> int | None:
        """The element a slot reads at every iteration (a broadcast scalar), else None."""
        k = self.k
        form = iexpr.affine(slot.index if not isinstance(slot.index, tuple) else flatten(slot.index, slot.buffer.shape))
        assert form is not None
        return None if any(k.space[a] > 1 for a in form[0]) else form[1]

    def block(self, scope: Scope) -> None:
        k = self.k
        outer_axes, reduced_axes = list(k.order[: self.n_outer]), list(k.order[self.n_outer:])
        self.declare_scratch(scope, "")
        body = self.grid_stride(scope, "o", _prod([k.space[a] for a in outer_axes]), False)
        loop_vars: dict[int, str] = {}
        self.unravel(body, "o", outer_axes, loop_vars)
        self.block_reduction(body, loop_vars, reduced_axes, "", REDUCE_BLOCK)
        self.close(scope, body)

    def declare_scratch(self, scope: Scope, tag: str) -> None:
        """The shared arrays a block reduction of each accumulator combines through (sh<tag><n>,
        and shi<tag><n> for the positions of argmax / argmin); `tag` keeps kernels that hold
        several reductions (row chains) apart."""
        for n, acc in enumerate(self.k.accumulators):
            arg = acc.combiner in ("argmax", "argmin")
            scope.emit(f"__shared__ {c_type(acc.operand.dtype if arg else acc.dtype)} sh{tag}{n}[32];")
            if arg:
                scope.emit(f"__shared__ i64 shi{tag}{n}[32];")

    def block_combine(self, body: Scope, accs: list[tuple[str, str | None]], tag: str) -> None:
        """Each thread's partial accumulators combined across the block (shuffle tree, shared
        stage); every thread gets the result."""
        for n, (acc, (value, at)) in enumerate(zip(self.k.accumulators, accs)):
            if at is not None:
                body.emit(f"gc_block_argreduce({value}, {at}, {'true' if acc.combiner == 'argmax' else 'false'}, "
                          f"sh{tag}{n}, shi{tag}{n});")
            else:
                body.emit(f"{value} = gc_block_reduce({value}, {_block_op(acc.combiner, acc.dtype)}, "
                          f"{literal(identity(acc.combiner, acc.dtype), acc.dtype)}, sh{tag}{n});")

    def block_reduction(self, body: Scope, loop_vars: dict[int, str], reduced_axes: list[int], tag: str,
                        block: int) -> None:
        """One output (kept variables fixed in loop_vars) reduced by the whole block: threads
        stride over the reduced iterations, a shuffle tree and a shared stage combine, thread 0
        runs the epilogue."""
        k = self.k
        accs = self.declare_accumulators(body)
        total = _prod([k.space[a] for a in reduced_axes])
        t = self.itype
        # the block size as a literal: the trip count is known, so the loop unrolls and each
        # thread has several loads in flight instead of one (a row reduction is latency-bound
        # otherwise: H200, softmax 32768x4096, 455 -> see benchmarks/README.md)
        body.emit(f"#pragma unroll {LOOP_UNROLL}")
        body.emit(f"for ({t} r = threadIdx.x; r < {total}; r += {block}) {{")
        inner = Scope(body.indent + 1, self.counter)
        inner_vars = dict(loop_vars)
        self.unravel(inner, "r", reduced_axes, inner_vars)
        self.inner(inner, inner_vars, accs=accs)
        self.close(body, inner)
        self.block_combine(body, accs, tag)
        body.emit("if (threadIdx.x == 0) {")
        epilogue = Scope(body.indent + 1, self.counter)
        self.outer(epilogue, loop_vars, accs)
        self.close(body, epilogue)

    def thread(self, scope: Scope) -> None:
        k = self.k
        outer_axes = list(k.order[: self.n_outer])
        body = self.grid_stride(scope, "o", _prod([k.space[a] for a in outer_axes]), True)
        loop_vars: dict[int, str] = {}
        self.unravel(body, "o", outer_axes, loop_vars)
        self.nest(body, self.n_outer, loop_vars)
        self.close(scope, body)

    def single(self, scope: Scope) -> None:
        self.nest(scope, 0, {})

    def nest(self, scope: Scope, level: int, loop_vars: dict[int, str], accs: list | None = None) -> None:
        """Sequential loops from position `level` of the kernel's order (as the CPU runs them)."""
        k = self.k
        if level == self.n_outer and k.accumulators and accs is None:
            accs = self.declare_accumulators(scope)
            self.nest(scope, level, loop_vars, accs)
            self.outer(scope, loop_vars, accs)
            return
        if level == len(k.order):
            self.inner(scope, loop_vars, accs=accs, atomic=False)
            return
        axis = k.order[level]
        t = self.itype
        scope.emit(f"for ({t} i{axis} = 0; i{axis} < {k.space[axis]}; ++i{axis}) {{")
        inner = Scope(scope.indent + 1, self.counter)
        self.nest(inner, level + 1, {**loop_vars, axis: f"i{axis}"}, accs)
        self.close(scope, inner)

    # ---------------------------------------------------------------- bodies
    def declare_accumulators(self, scope: Scope) -> list[tuple[str, str | None]]:
        accs = []
        for acc in self.k.accumulators:
            arg = acc.combiner in ("argmax", "argmin")
            dtype = acc.operand.dtype if arg else acc.dtype
            value = scope.fresh("a")
            scope.emit(f"{c_type(dtype)} {value} = {literal(identity(acc.combiner, dtype), dtype)};")
            at = None
            if arg:
                at = scope.fresh("at")
                scope.emit(f"i64 {at} = 0;")
            accs.append((value, at))
        return accs

    def renderers(self, scope: Scope, loop_vars: dict[int, str], accs: list | None, final: bool):
        k = self.k
        loaded: dict[int, str] = {}

        def load(n: int) -> str:
            if n not in loaded:
                loaded[n] = self.load_slot(scope, k.slots[n], index)
            return loaded[n]

        def acc_value(n: int) -> str:
            assert accs is not None and final, "an accumulator used inside its own reduction"
            value, at = accs[n]
            return at if at is not None else value

        def acc_index(n: int) -> str:
            assert accs is not None
            return accs[n][1]

        index = IndexRenderer(scope, self.itype, dict(loop_vars), load, acc_index)
        return ScalarRenderer(scope, load, acc_value, index), index

    def load_slot(self, scope: Scope, slot: Any, index: IndexRenderer) -> str:
        buf = slot.buffer
        idx = slot.index if not isinstance(slot.index, tuple) else flatten(slot.index, buf.shape)
        offset = index.render(idx)
        valid = index.condition(slot.valid)
        if valid is not None:
            offset = f"({valid} ? {offset} : 0)"
        value = self.element(buf, offset)
        if buf.dtype.is_bool:
            value = f"({value} != 0)"
        if valid is not None:
            value = f"({valid} ? {value} : {literal(slot.fill, buf.dtype)})"
        return scope.define(c_type(buf.dtype), value, "l")

    def store(self, scope: Scope, st: Any, scalar: ScalarRenderer, index: IndexRenderer, atomic: bool) -> None:
        value = scalar.render(st.value)
        buf = st.buffer
        idx = st.index if not isinstance(st.index, tuple) else flatten(st.index, buf.shape)
        target = self.element(buf, index.render(idx))
        if buf.dtype.is_bool:
            if st.mode == "add":
                scope.emit(f"if ({value}) {target} = 1;")
            else:
                scope.emit(f"{target} = (unsigned char){value};")
            return
        if st.mode == "add" and atomic:
            if buf.dtype.name == "int64":
                scope.emit(f"atomicAdd((u64*)&{target}, (u64){value});")
            else:
                scope.emit(f"atomicAdd(&{target}, {value});")
        elif st.mode == "add":
            t = c_type(buf.dtype)
            new = f"{target} + {value}" if buf.dtype.is_floating else f"gc_add<{t}>({target}, {value})"
            scope.emit(f"{target} = {new};")
        else:
            scope.emit(f"{target} = {value};")

    def where(self, loop_vars: dict[int, str]) -> str:
        """The flat iteration (over the kernel's space, in axis order) for error reports."""
        expr = "(i64)0"
        for axis, extent in enumerate(self.k.space):
            expr = f"({expr} * {extent} + (i64){loop_vars.get(axis, '0')})"
        return expr

    def checks(self, scope: Scope, scalar: ScalarRenderer, index: IndexRenderer, inner: bool,
               loop_vars: dict[int, str], where: str | None = None) -> None:
        for check in self.k.checks:
            if check.inner != inner:
                continue
            ok = scalar.render(check.condition)
            detail = scalar.render(check.detail) if check.detail is not None else "0"
            at = where if where is not None else self.where(loop_vars)
            scope.emit(f"if (!{ok}) gc_fail(gc_error, {self.error_code(check)}, (i64){detail}, {at});")

    def inner(self, scope: Scope, loop_vars: dict[int, str], accs: list | None = None, atomic: bool = False) -> None:
        k = self.k
        scalar, index = self.renderers(scope, loop_vars, accs, final=False)
        self.checks(scope, scalar, index, True, loop_vars)
        for acc, (value, at) in zip(k.accumulators, accs or []):
            x = scalar.render(acc.operand)
            if at is None:
                scope.emit(_combine_line(acc.combiner, acc.dtype, value, x))
                continue
            position = "(i64)0"
            for axis in k.reduced:
                position = f"({position} * {k.space[axis]} + (i64){loop_vars[axis]})"
            fl = acc.operand.dtype.is_floating
            cmp = ">" if acc.combiner == "argmax" else "<"
            better = f"({x} {cmp} {value}" + (f" || ({x} != {x} && {value} == {value}))" if fl else ")")
            scope.emit(f"if ({better}) {{ {value} = {x}; {at} = {position}; }}")
        for st in k.stores:
            if st.inner or not k.accumulators:
                self.store(scope, st, scalar, index, atomic)

    def outer(self, scope: Scope, loop_vars: dict[int, str], accs: list) -> None:
        scalar, index = self.renderers(scope, loop_vars, accs, final=True)
        self.checks(scope, scalar, index, False, loop_vars)
        for st in self.k.stores:
            if not st.inner:
                self.store(scope, st, scalar, index, False)
