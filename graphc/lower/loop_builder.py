"""LoopBuilder: assembles one LoopKernel while the lowering reads tensors, combines scalar
expressions and stores results.

Besides the primitives of graphc.ops.scalar, kernel expressions use leaves of their own:
  "arg"   value = slot number (a load)
  "acc"   value = accumulator number (a reduction's result, in stores after the reduction)
  "index" value = an IExpr over loop variables, as an int64 value
  "philox_uniform" / "philox_normal"  args = (run counter,), value = (key0, key1, flat IExpr)
"""
from __future__ import annotations

from typing import Any, Sequence

from ..ir.dtypes import DType, bool_, int64
from ..ir.tensor import Tensor
from ..ops import scalar as sexpr
from . import index as iexpr
from .kernel import Accumulator, Buffer, Check, LoopKernel, Slot, Store, columnar_axis
from .reads import Index, resolve


def substitute(expr: sexpr.SExpr, args: Sequence[sexpr.SExpr]) -> sexpr.SExpr:
    """expr with each arg(i) leaf replaced by args[i] (shared subexpressions stay shared)."""
    memo: dict[int, sexpr.SExpr] = {}

    def sub(e: sexpr.SExpr) -> sexpr.SExpr:
        got = memo.get(id(e))
        if got is None:
            if e.prim == "arg":
                got = args[e.value]
            elif not e.args:
                got = e
            else:
                new_args = tuple(sub(a) for a in e.args)
                got = (
                    e
                    if all(a is b for a, b in zip(new_args, e.args))
                    else sexpr.SExpr(e.prim, new_args, e.dtype, e.value)
                )
            memo[id(e)] = got
        return got

    return sub(expr)


def index_value(e: iexpr.IExpr) -> sexpr.SExpr:
    """An integer index expression as an int64 scalar value."""
    return sexpr.SExpr("index", (), int64, e)


def condition(e: iexpr.IExpr) -> sexpr.SExpr:
    """A 0/1 index condition as a bool value."""
    return sexpr.call("ne", index_value(e), 0)


def uses_loop_index(exprs: Sequence[sexpr.SExpr]) -> bool:
    """Whether any of the expressions reads a loop index itself: an "index" leaf, or a random
    draw (keyed by the flat iteration). Code that changes how loop variables are produced (merged
    loops, vector lanes) must keep such values as they are. A loop, not recursion: a fused
    expression can be thousands of levels deep."""
    seen: set[int] = set()
    stack = list(exprs)
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if e.prim == "index" or e.prim.startswith("philox"):
            return True
        stack.extend(a for a in e.args if isinstance(a, sexpr.SExpr))
    return False


def split_first(space: tuple[int, ...], order: tuple[int, ...], reduced: tuple[int, ...],
                keep_last: bool = True) -> tuple[int, ...]:
    """`order` with its leading kept axes of extent 1 moved in after the first kept axis that has
    more: the outermost loop is the one the pool splits, and an NCHW kernel at batch 1 would
    otherwise offer it one iteration (every such kernel of a batch-1 model ran on one thread:
    mobilenet_v2 11 ms instead of 20). A loop of one trip costs nothing wherever it sits; with
    `keep_last` the innermost kept axis stays where it was (in an elementwise kernel it is the
    one that vectorizes, in a column reduction the one blocked over), so such a kernel with a
    single axis longer than 1 keeps its order."""
    kept = [a for a in order if a not in reduced]
    lead = 0
    while lead < len(kept) and space[kept[lead]] == 1:
        lead += 1
    if lead == len(kept) or lead == 0 or (keep_last and not any(space[a] > 1 for a in kept[lead + 1:])):
        return order
    kept = [kept[lead]] + kept[:lead] + kept[lead + 1:]
    return tuple(kept) + tuple(a for a in order if a in reduced)


class LoopBuilder:
    def __init__(
        self,
        lowering: Any,
        name: str,
        space: Sequence[int],
        order: Sequence[int] | None = None,
        reduced: Sequence[int] = (),
        node: Any = None,
        serial: bool = False,
    ) -> None:
        space = tuple(int(d) for d in space)
        if order is None:
            order = tuple(a for a in range(len(space)) if a not in reduced) + tuple(reduced)
        self.lowering = lowering
        self.kernel = LoopKernel(name, space, tuple(order), tuple(reduced), node=node, serial=serial)
        self._slots: dict[Any, int] = {}

    @property
    def vars(self) -> tuple[iexpr.IExpr, ...]:
        return tuple(iexpr.var(a) for a in range(len(self.kernel.space)))

    # ---------------------------------------------------------------- reads
    def slot(self, buffer: Buffer, index: Index, valid: iexpr.IExpr | None = None, fill: Any = 0) -> int:
        key = (buffer.id, index, valid, fill)
        number = self._slots.get(key)
        if number is None:
            number = len(self.kernel.slots)
            self.kernel.slots.append(Slot(buffer, index, valid, fill))
            self._slots[key] = number
        return number

    def load(self, buffer: Buffer, index: Index, valid: iexpr.IExpr | None = None, fill: Any = 0) -> sexpr.SExpr:
        return sexpr.SExpr("arg", (), buffer.dtype, self.slot(buffer, index, valid, fill))

    def read(self, t: Tensor, index: Index, valid: iexpr.IExpr | None = None, fill: Any = 0) -> sexpr.SExpr:
        """The value of tensor t at `index` (through its views, from the buffer holding it)."""
        base, base_index = resolve(t, index, self.lowering.stored)
        return self.load(self.lowering.buffer_of[base], base_index, valid, fill)

    def read_int(self, t: Tensor, index: Index) -> iexpr.IExpr:
        """An int tensor's value at `index`, usable inside other index expressions."""
        base, base_index = resolve(t, index, self.lowering.stored)
        return iexpr.load(self.slot(self.lowering.buffer_of[base], base_index))

    # ---------------------------------------------------------------- results
    def accumulate(self, combiner: str, operand: sexpr.SExpr, dtype: DType) -> sexpr.SExpr:
        self.kernel.accumulators.append(Accumulator(combiner, operand, dtype))
        return sexpr.SExpr("acc", (), dtype, len(self.kernel.accumulators) - 1)

    def store(self, buffer: Buffer, index: Index, value: sexpr.SExpr, mode: str = "set", inner: bool = False) -> None:
        if value.dtype is not buffer.dtype:
            value = sexpr.cast(value, buffer.dtype)
        self.kernel.stores.append(Store(buffer, index, value, mode, inner))

    def check(
        self,
        ok: sexpr.SExpr,
        detail: sexpr.SExpr | None,
        message: str,
        node: Any,
        inner: bool = True,
        where: Any = None,
    ) -> None:
        assert ok.dtype is bool_
        self.kernel.checks.append(Check(ok, detail, message, node, inner, where))

    def finish(self) -> LoopKernel:
        k = self.kernel
        # a reduction runs its reduced axes innermost, unless it is a column reduction
        keep_last = not k.reduced or columnar_axis(k) is not None
        k.order = split_first(k.space, k.order, k.reduced, keep_last)
        self.lowering.kernels.append(k)
        return k
