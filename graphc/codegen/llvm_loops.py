"""Rendering a LoopKernel as an LLVM function `void name(i8** frame, i64 start, i64 end)`.

The frame holds one data pointer per buffer (slot 2 + buffer id), the error record at slot 1.
The function loads the pointers and calls an internal body function whose pointer parameters
are `noalias` (buffers never overlap while a kernel runs), so that after inlining LLVM knows the
stores cannot change the loads and vectorizes. The outermost loop runs over [start, end), which
is how the thread pool splits a kernel; reductions keep their accumulators in registers (allocas
promoted by mem2reg) and combine with `reassoc` so that the vectorizer can reorder them.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from llvmlite import ir

from ..lower import index as iexpr
from ..lower.kernel import Buffer, LoopKernel, columnar_axis, identity
from ..lower.loop_merge import merge_target, merged_runs
from ..lower.reads import flatten
from . import llvm_types
from .llvm_random import philox_value
from .llvm_scalar import IndexEmitter, ScalarEmitter

FRAME_ERROR = 1
COLUMN_BLOCK = 1024   # accumulators per block when a reduction runs across columns (columnar_axis)
FRAME_BUFFERS = 2


def frame_pointer(b: ir.IRBuilder, frame: ir.Value, slot: int, elem: ir.Type) -> ir.Value:
    raw = b.load(b.gep(frame, [ir.Constant(llvm_types.I64, slot)], inbounds=True))
    return b.bitcast(raw, elem.as_pointer())


def counted_loop(b: ir.IRBuilder, fn: ir.Function, lo: ir.Value, hi: ir.Value, step: ir.Value,
                 inside: Callable[[ir.Value], None], name: str = "r", var_name: str = "",
                 hints: Sequence[tuple[str, ir.Constant]] = ()) -> None:
    """for (v = lo; v < hi; v += step) inside(v), leaving `b` after the loop. The one loop
    skeleton every renderer here uses (kernel loops, column blocks, GEMM batches, row chains).
    `hints` become the loop's llvm.loop metadata (loop_id)."""
    pre = b.block
    header = fn.append_basic_block(f"{name}.head")
    body = fn.append_basic_block(f"{name}.body")
    exit_ = fn.append_basic_block(f"{name}.exit")
    b.branch(header)
    b.position_at_end(header)
    var = b.phi(llvm_types.I64, name=var_name)
    var.add_incoming(lo, pre)
    b.cbranch(b.icmp_signed("<", var, hi), body, exit_)
    b.position_at_end(body)
    inside(var)
    var.add_incoming(b.add(var, step, flags=["nsw"]), b.block)
    back = b.branch(header)
    if hints:
        back.set_metadata("llvm.loop", loop_id(fn.module, hints))
    b.position_at_end(exit_)


def loop_id(module: ir.Module, hints: Sequence[tuple[str, ir.Constant]]) -> Any:
    """llvm.loop metadata: a node whose first operand is itself, then one node per hint.
    llvmlite cannot write a node that refers to itself, so the first operand is the string
    LOOP_SELF, which graphc.runtime.llvm_compile.resolve_loop_ids turns into the reference."""
    options = [module.add_metadata([ir.MetaDataString(module, key), value]) for key, value in hints]
    return module.add_metadata([ir.MetaDataString(module, LOOP_SELF)] + options)


def opaque(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    """`value`, which LLVM can no longer see is a constant (an empty inline asm that "changes"
    it; no instruction). A loop of known small trip count gets unrolled completely, and LLVM
    then spends up to seconds on the result for nothing measurable; with the trip count opaque
    it stays a loop, vectorized with a remainder like any other."""
    asm = ir.InlineAsm(ir.FunctionType(llvm_types.I64, [llvm_types.I64]), "", "=r,0", side_effect=False)
    return b.call(asm, [value])


# a reduction loop of at least this many trips gets an opaque trip count: a global average pool
# over 7 x 7 took LLVM 0.25-0.4 s per kernel to unroll and re-vectorize (15 ms with the bound
# opaque); below it, unrolling a short window (3 x 3 taps) is cheap and pays
OPAQUE_REDUCTION_TRIPS = 16
# The loops around an innermost loop of OPAQUE_OUTER_INNER_TRIPS trips or more get opaque bounds
# too (not a reduction's): LLVM unrolled a channels-last kernel's constant 14-trip column loop
# around its vectorized channels completely (a batch norm + ReLU over [1, 14, 14, 352]: 261 ms
# of LLVM time -> 35 ms; densenet121 channels last, 13.1 s -> 10.3 s). Run times within noise:
# ab.py OPAQUE_OUTER False True on resnet18, mobilenet_v2, efficientnet_b0 and densenet121
# 0.996-1.001; graphc bench cnn and --quick alike.
OPAQUE_OUTER = True
OPAQUE_OUTER_INNER_TRIPS = 64
LOOP_SELF = "graphc.loop.self"   # the same string as graphc.runtime.llvm_compile's (which imports nothing)
# An innermost loop over kept elements shorter than PREDICATE_BELOW_TRIPS, and not a multiple of
# PREDICATE_LANES, with unit-stride reads and stores (LoopRenderer.unit_stride), runs as one
# masked vector body per pass (its trip count opaque, predication asked for): LLVM unrolled a
# row of 14 or 7 elements and vectorized little of it. Un-flattening a depthwise convolution's
# 14 x 14 planes with their epilogue (576 channels, one thread): 80 -> 44 us in a session, 75 ->
# 46 us in mobilenet_v2; 7 x 7 planes (960 channels): 26 -> 19 us.
PREDICATE_FROM_TRIPS = 6       # shorter rows (a pixel's 3 channels) stay scalar
PREDICATE_BELOW_TRIPS = 32
PREDICATE_LANES = 16
PREDICATED = (("llvm.loop.vectorize.enable", ir.Constant(llvm_types.I1, 1)),
              ("llvm.loop.vectorize.predicate.enable", ir.Constant(llvm_types.I1, 1)))


def define_entry(module: ir.Module, name: str, buffers: list[Buffer],
                 body: Callable[[ir.IRBuilder, ir.Function, dict[int, ir.Value], ir.Value, ir.Value, ir.Value], None],
                 skip_on_error: bool = False, **attrs: Any) -> ir.Function:
    """`void name(i8** frame, i64 start, i64 end)` loading buffer pointers, then an internal
    `name_body(noalias pointers..., error, start, end)` filled in by `body`. A buffer computed in
    place of another (alias_of) shares that one's pointer, so `noalias` stays true; with
    `skip_on_error` the kernel does nothing once a check has failed (it writes in place)."""
    def storage(b: Buffer) -> Buffer:
        return b.alias_of if b.alias_of is not None else b

    uniq = list({storage(b).id: storage(b) for b in buffers}.values())
    params = [llvm_types.memory_type(b.dtype).as_pointer() for b in uniq] + [
        llvm_types.I64P,
        llvm_types.I64,
        llvm_types.I64,
    ]
    inner = ir.Function(module, ir.FunctionType(llvm_types.VOID, params), name=f"{name}_body")
    inner.linkage = "internal"
    for arg in inner.args[: len(uniq)]:
        arg.add_attribute("noalias")
    entry = inner.append_basic_block("entry")
    ib = ir.IRBuilder(entry)
    pointers = {buf.id: arg for buf, arg in zip(uniq, inner.args)}
    for b in buffers:
        pointers[b.id] = pointers[storage(b).id]
    error, start, end = inner.args[len(uniq) :]
    body(ib, inner, pointers, error, start, end)
    ib.ret_void()

    outer = ir.Function(
        module, ir.FunctionType(llvm_types.VOID, [llvm_types.I8PP, llvm_types.I64, llvm_types.I64]), name=name
    )
    ob = ir.IRBuilder(outer.append_basic_block("entry"))
    frame, s, e = outer.args
    args = [frame_pointer(ob, frame, FRAME_BUFFERS + buf.id, llvm_types.memory_type(buf.dtype)) for buf in uniq]
    args.append(frame_pointer(ob, frame, FRAME_ERROR, llvm_types.I64))
    if skip_on_error:
        failed = ob.icmp_signed("!=", ob.load(args[-1]), ir.Constant(llvm_types.I64, 0))
        with ob.if_then(failed, likely=False):
            ob.ret_void()
    ob.call(inner, args + [s, e])
    ob.ret_void()
    return outer


class LoopRenderer:
    def __init__(self, kernel: LoopKernel, error_code: Callable[[Any], int]) -> None:
        self.k = kernel
        self.error_code = error_code

    def render(self, module: ir.Module, name: str) -> ir.Function:
        buffers = [s.buffer for s in self.k.slots] + [s.buffer for s in self.k.stores]
        return define_entry(module, name, buffers, self.body, skip_on_error=self.k.skip_on_error)

    def bind(self, fn: ir.Function, pointers: dict[int, ir.Value], error: ir.Value) -> None:
        """Render into `fn`, whose buffer pointers and error record are given (body() does this;
        a GEMM rendering its epilogue inside its own function calls it, then inner())."""
        self.fn, self.pointers, self.error = fn, pointers, error
        self.allocas: list[tuple[ir.Value, ir.Value | None]] = []
        self.arrays = list(self.allocas)

    # ---------------------------------------------------------------- structure
    def body(
        self,
        b: ir.IRBuilder,
        fn: ir.Function,
        pointers: dict[int, ir.Value],
        error: ir.Value,
        start: ir.Value,
        end: ir.Value,
    ) -> None:
        k = self.k
        self.bind(fn, pointers, error)
        self.runs = merged_runs(k)
        column = columnar_axis(k)
        width = COLUMN_BLOCK if column is not None else None
        for acc in k.accumulators:  # the entry block is still empty: allocas come first
            arg = acc.combiner in ("argmax", "argmin")
            value = b.alloca(llvm_types.value_type(acc.operand.dtype if arg else acc.dtype), size=width)
            self.allocas.append((value, b.alloca(llvm_types.I64, size=width) if arg else None))
        self.arrays = list(self.allocas)
        n_outer = len(k.order) - len(k.reduced)
        loop_vars: dict[int, ir.Value] = {}
        splittable = n_outer > 0 and not k.serial

        def level(i: int) -> None:
            if column is not None and i == n_outer - 1:
                self.column_blocks(b, i, loop_vars, (start, end) if i == 0 and splittable else None)
                return
            if i == n_outer and k.accumulators:  # entering the reduced loops (maybe none of them)
                self.init_accumulators(b)
                if i == len(k.order):
                    self.inner(b, loop_vars)
                else:
                    self.loop(b, i, loop_vars, level, None)
                self.outer(b, loop_vars)
                return
            if i == len(k.order):
                self.inner(b, loop_vars)
                return
            self.loop(b, i, loop_vars, level, (start, end) if i == 0 and splittable else None)

        level(0)

    def column_blocks(
        self, b: ir.IRBuilder, i: int, loop_vars: dict[int, ir.Value], bounds: tuple[ir.Value, ir.Value] | None
    ) -> None:
        """Loop position i (a kept axis, see columnar_axis) in blocks of COLUMN_BLOCK: per block,
        initialize an array of accumulators, run the reduction loops with this axis innermost
        (unit stride, vectorized), then the epilogue per element of the block."""
        k = self.k
        axis = k.order[i]
        lo, hi = (
            bounds
            if bounds is not None
            else (ir.Constant(llvm_types.I64, 0), ir.Constant(llvm_types.I64, k.space[axis]))
        )
        width = ir.Constant(llvm_types.I64, COLUMN_BLOCK)

        def block(first: ir.Value) -> None:
            stop = b.add(first, width)
            stop = b.select(b.icmp_signed("<", stop, hi), stop, hi)

            def per_element(action: Callable[[], None]) -> Callable[[ir.Value], None]:
                def run(c: ir.Value) -> None:
                    loop_vars[axis] = c
                    j = b.sub(c, first)
                    self.allocas = [(b.gep(v, [j]), b.gep(x, [j]) if x is not None else None) for v, x in self.arrays]
                    action()
                    del loop_vars[axis]

                return run

            counted_loop(
                b, self.fn, first, stop, ir.Constant(llvm_types.I64, 1), per_element(lambda: self.init_accumulators(b))
            )

            def reduce_level(j: int) -> None:
                if j == len(k.order):
                    counted_loop(
                        b,
                        self.fn,
                        first,
                        stop,
                        ir.Constant(llvm_types.I64, 1),
                        per_element(lambda: self.inner(b, loop_vars)),
                    )
                else:
                    self.loop(b, j, loop_vars, reduce_level, None)

            reduce_level(i + 1)
            counted_loop(
                b, self.fn, first, stop, ir.Constant(llvm_types.I64, 1), per_element(lambda: self.outer(b, loop_vars))
            )

        counted_loop(b, self.fn, lo, hi, width, block)

    def loop(
        self,
        b: ir.IRBuilder,
        i: int,
        loop_vars: dict[int, ir.Value],
        inside: Callable[[int], None],
        bounds: tuple[ir.Value, ir.Value] | None,
    ) -> None:
        stop = self.runs.get(i) if bounds is None else None
        if stop is not None:   # axes order[i:stop] as one counter (graphc.lower.loop_merge)
            self.merged_loop(b, i, stop, loop_vars, inside)
            return
        axis = self.k.order[i]
        trips = self.k.space[axis]
        short = (bounds is None and i == len(self.k.order) - 1 and not self.k.reduced
                 and PREDICATE_FROM_TRIPS <= trips < PREDICATE_BELOW_TRIPS and trips % PREDICATE_LANES
                 and self.unit_stride(axis))
        lo, hi = (
            bounds
            if bounds is not None
            else (ir.Constant(llvm_types.I64, 0),
                  opaque(b, ir.Constant(llvm_types.I64, trips)) if short else self.trip_count(b, i, trips))
        )

        def body(var: ir.Value) -> None:
            loop_vars[axis] = var
            inside(i + 1)

        counted_loop(b, self.fn, lo, hi, ir.Constant(llvm_types.I64, 1), body, name=f"l{i}", var_name=f"i{axis}",
                     hints=PREDICATED if short else ())
        del loop_vars[axis]

    def unit_stride(self, axis: int) -> bool:
        """Whether every read and store moves by one element (or not at all) along `axis`, with
        no conditional reads: a masked vector body is then plain masked loads and stores (a
        padded copy's bounds-tested reads ran 3x slower masked)."""
        def steps_by_one(index: Any) -> bool:
            parts = index if isinstance(index, tuple) else (index,)
            for d, e in enumerate(parts):
                form = iexpr.affine(e)
                if form is None or form[0].get(axis, 0) not in ((0, 1) if d == len(parts) - 1 else (0,)):
                    return False
            return True

        return (all(s.valid is None and steps_by_one(s.index) for s in self.k.slots)
                and all(steps_by_one(st.index) for st in self.k.stores))

    def trip_count(self, b: ir.IRBuilder, i: int, trips: int) -> ir.Value:
        """The bound of the loop at position i: opaque for a long enough reduction loop, and for
        a loop around a long innermost one (OPAQUE_OUTER)."""
        bound = ir.Constant(llvm_types.I64, trips)
        if i >= len(self.k.order) - len(self.k.reduced) and trips >= OPAQUE_REDUCTION_TRIPS:
            return opaque(b, bound)
        inner = self.k.space[self.k.order[-1]] if self.k.order else 0
        if OPAQUE_OUTER and i < len(self.k.order) - 1 and not self.k.reduced and inner >= OPAQUE_OUTER_INNER_TRIPS:
            return opaque(b, bound)
        return bound

    def merged_loop(self, b: ir.IRBuilder, i: int, stop: int, loop_vars: dict[int, ir.Value],
                    inside: Callable[[int], None]) -> None:
        axes = tuple(self.k.order[i:stop])
        target = merge_target(self.k, axes)
        for axis in axes:
            if axis != target:
                loop_vars[axis] = ir.Constant(llvm_types.I64, 0)

        def body(var: ir.Value) -> None:
            loop_vars[target] = var
            inside(stop)

        total = self.trip_count(b, i, math.prod(self.k.space[a] for a in axes))
        counted_loop(b, self.fn, ir.Constant(llvm_types.I64, 0), total, ir.Constant(llvm_types.I64, 1), body,
                     name=f"l{i}", var_name=f"i{target}")
        for axis in axes:
            del loop_vars[axis]

    # ---------------------------------------------------------------- values
    def emitters(self, b: ir.IRBuilder, loop_vars: dict[int, ir.Value], accs: list[ir.Value] | None):
        slots = self.k.slots
        loaded: dict[int, ir.Value] = {}

        def load(n: int) -> ir.Value:
            if n not in loaded:
                loaded[n] = self.load_slot(b, slots[n], index)
            return loaded[n]

        def load_int(n: int) -> ir.Value:
            v = load(n)
            return v if v.type == llvm_types.I64 else b.sext(v, llvm_types.I64)

        def acc_value(n: int) -> ir.Value:
            assert accs is not None, "an accumulator used inside its own reduction"
            return accs[n]

        index = IndexEmitter(b, dict(loop_vars), load_int, lambda n: acc_index(n))

        def acc_index(n: int) -> ir.Value:
            return b.load(self.allocas[n][1])

        scalar = ScalarEmitter(b, load, acc_value, index, philox_value)
        return scalar, index

    def load_slot(self, b: ir.IRBuilder, slot: Any, index: IndexEmitter) -> ir.Value:
        buf = slot.buffer
        valid = index.condition(slot.valid)
        if valid is None:
            offset = self.offset(buf, slot.index, index)
        elif self.last_axis_unmasked(slot):   # rows start masked, columns stay affine
            rest = self.offset(buf, slot.index[:-1] + (iexpr.const(0),), index)
            offset = b.add(b.select(valid, rest, ir.Constant(llvm_types.I64, 0)), index.emit(slot.index[-1]))
        else:
            offset = b.select(valid, self.offset(buf, slot.index, index), ir.Constant(llvm_types.I64, 0))
        ptr = b.gep(self.pointers[buf.id], [offset], inbounds=True)
        value = b.load(ptr)
        if buf.dtype.is_bool:
            value = b.icmp_unsigned("!=", value, ir.Constant(llvm_types.I8, 0))
        if valid is not None:
            value = b.select(valid, value, llvm_types.constant(buf.dtype, slot.fill))
        return value

    def last_axis_unmasked(self, slot: Any) -> bool:
        """Whether a masked read's last index is one loop variable running within the buffer's
        last axis (a channels-last pool's or padded copy's channel): its invalid positions can
        then fall back to row 0 at the same column, in bounds, so only the rest of the offset
        needs the select. Why: with the whole offset selected, LLVM saw no
        consecutive addresses along the channels and vectorized the reads as gathers
        (resnet18's channels-last 3 x 3 max pool, unrolled over its taps, took 345 us against
        170-190 for a reduction loop; split, the unrolled form is the faster one)."""
        if not isinstance(slot.index, tuple) or not slot.index:
            return False
        form = iexpr.affine(slot.index[-1])
        if form is None or form[1] != 0 or len(form[0]) != 1:
            return False
        (axis, coefficient), = form[0].items()
        return coefficient == 1 and self.k.space[axis] <= slot.buffer.shape[-1]

    def offset(self, buf: Buffer, idx: Any, index: IndexEmitter) -> ir.Value:
        flat = idx if not isinstance(idx, tuple) else flatten(idx, buf.shape)
        return index.emit(flat)

    def store(self, b: ir.IRBuilder, st: Any, scalar: ScalarEmitter, index: IndexEmitter) -> None:
        value = scalar.emit(st.value)
        ptr = b.gep(self.pointers[st.buffer.id], [self.offset(st.buffer, st.index, index)], inbounds=True)
        if st.mode == "add":
            old = b.load(ptr)
            if st.buffer.dtype.is_bool:
                old = b.icmp_unsigned("!=", old, ir.Constant(llvm_types.I8, 0))
                value = b.or_(old, value)
            else:
                value = b.fadd(old, value) if st.buffer.dtype.is_floating else b.add(old, value)
        if st.buffer.dtype.is_bool:
            value = b.zext(value, llvm_types.I8)
        b.store(value, ptr)

    def checks(self, b: ir.IRBuilder, inner: bool, scalar: ScalarEmitter, loop_vars: dict[int, ir.Value]) -> None:
        for check in self.k.checks:
            if check.inner != inner:
                continue
            ok = scalar.emit(check.condition)
            fail = self.fn.append_basic_block("check.fail")
            cont = self.fn.append_basic_block("check.ok")
            b.cbranch(ok, cont, fail)
            b.position_at_end(fail)
            code = self.error_code(check)
            first = b.icmp_signed("==", b.load(self.error), ir.Constant(llvm_types.I64, 0))
            with b.if_then(first):
                b.store(ir.Constant(llvm_types.I64, code), self.error)
                detail = scalar.emit(check.detail) if check.detail is not None else ir.Constant(llvm_types.I64, 0)
                b.store(detail, b.gep(self.error, [ir.Constant(llvm_types.I64, 1)]))
                flat = ir.Constant(llvm_types.I64, 0)
                for axis, extent in enumerate(self.k.space):
                    var = loop_vars.get(axis, ir.Constant(llvm_types.I64, 0))
                    flat = b.add(b.mul(flat, ir.Constant(llvm_types.I64, extent)), var)
                b.store(flat, b.gep(self.error, [ir.Constant(llvm_types.I64, 2)]))
            b.branch(cont)
            b.position_at_end(cont)

    # ---------------------------------------------------------------- bodies
    def inner(self, b: ir.IRBuilder, loop_vars: dict[int, ir.Value]) -> None:
        scalar, index = self.emitters(b, loop_vars, None)
        self.checks(b, True, scalar, loop_vars)
        for (value, idx), acc in zip(self.allocas, self.k.accumulators):
            x = scalar.emit(acc.operand)
            self.combine(b, acc.combiner, value, idx, x, loop_vars)
        for st in self.k.stores:
            if st.inner or not self.k.accumulators:
                self.store(b, st, scalar, index)

    def outer(self, b: ir.IRBuilder, loop_vars: dict[int, ir.Value]) -> None:
        accs = []
        for (value, idx), acc in zip(self.allocas, self.k.accumulators):
            accs.append(b.load(idx) if idx is not None else b.load(value))
        scalar, index = self.emitters(b, loop_vars, accs)
        self.checks(b, False, scalar, loop_vars)
        for st in self.k.stores:
            if not st.inner:
                self.store(b, st, scalar, index)

    def init_accumulators(self, b: ir.IRBuilder) -> None:
        for (value, idx), acc in zip(self.allocas, self.k.accumulators):
            dtype = acc.operand.dtype if acc.combiner in ("argmax", "argmin") else acc.dtype
            b.store(llvm_types.constant(dtype, identity(acc.combiner, dtype)), value)
            if idx is not None:
                b.store(ir.Constant(llvm_types.I64, 0), idx)

    def combine(
        self,
        b: ir.IRBuilder,
        combiner: str,
        slot: ir.Value,
        idx: ir.Value | None,
        x: ir.Value,
        loop_vars: dict[int, ir.Value],
    ) -> None:
        cur = b.load(slot)
        t = cur.type
        fl = isinstance(t, (ir.FloatType, ir.DoubleType))
        if combiner == "sum":
            new = b.fadd(cur, x, flags=["reassoc"]) if fl else (b.or_(cur, x) if t == llvm_types.I1 else b.add(cur, x))
        elif combiner == "prod":
            new = b.fmul(cur, x, flags=["reassoc"]) if fl else (b.and_(cur, x) if t == llvm_types.I1 else b.mul(cur, x))
        elif combiner in ("max", "min"):
            if fl:
                fn = llvm_types.intrinsic(
                    b.module, f"llvm.{'maximum' if combiner == 'max' else 'minimum'}.{llvm_types.suffix(t)}", t, [t, t]
                )
                new = b.call(fn, [cur, x])
            elif t == llvm_types.I1:
                new = b.or_(cur, x) if combiner == "max" else b.and_(cur, x)
            else:
                new = b.select(b.icmp_signed(">" if combiner == "max" else "<", x, cur), x, cur)
        elif combiner in ("any", "all"):
            new = b.or_(cur, x) if combiner == "any" else b.and_(cur, x)
        else:  # argmax / argmin: first extremum; a NaN counts as the extremum (NumPy)
            better = (
                b.fcmp_ordered(">" if combiner == "argmax" else "<", x, cur)
                if fl
                else b.icmp_signed(">" if combiner == "argmax" else "<", x, cur)
            )
            if fl:
                better = b.or_(better, b.and_(b.fcmp_unordered("uno", x, x), b.fcmp_ordered("ord", cur, cur)))
            position = ir.Constant(llvm_types.I64, 0)
            for axis in self.k.reduced:
                position = b.add(b.mul(position, ir.Constant(llvm_types.I64, self.k.space[axis])), loop_vars[axis])
            b.store(b.select(better, position, b.load(idx)), idx)
            new = b.select(better, x, cur)
        b.store(new, slot)
