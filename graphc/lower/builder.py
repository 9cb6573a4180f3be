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
from ..ops import scalar as S
from . import index as I
from .kernel import Accumulator, Buffer, Check, LoopKernel, Slot, Store
from .reads import Index, resolve


def substitute(expr: S.SExpr, args: Sequence[S.SExpr]) -> S.SExpr:
    """expr with each arg(i) leaf replaced by args[i] (shared subexpressions stay shared)."""
    memo: dict[int, S.SExpr] = {}

    def sub(e: S.SExpr) -> S.SExpr:
        got = memo.get(id(e))
        if got is None:
            if e.prim == "arg":
                got = args[e.value]
            elif not e.args:
                got = e
            else:
                new_args = tuple(sub(a) for a in e.args)
                got = e if all(a is b for a, b in zip(new_args, e.args)) else S.SExpr(e.prim, new_args, e.dtype, e.value)
            memo[id(e)] = got
        return got

    return sub(expr)


def index_value(e: I.IExpr) -> S.SExpr:
    """An integer index expression as an int64 scalar value."""
    return S.SExpr("index", (), int64, e)


def condition(e: I.IExpr) -> S.SExpr:
    """A 0/1 index condition as a bool value."""
    return S.call("ne", index_value(e), 0)


class LoopBuilder:
    def __init__(self, lowering: Any, name: str, space: Sequence[int], order: Sequence[int] | None = None,
                 reduced: Sequence[int] = (), node: Any = None, serial: bool = False) -> None:
        space = tuple(int(d) for d in space)
        if order is None:
            order = tuple(a for a in range(len(space)) if a not in reduced) + tuple(reduced)
        self.lowering = lowering
        self.kernel = LoopKernel(name, space, tuple(order), tuple(reduced), node=node, serial=serial)
        self._slots: dict[Any, int] = {}

    @property
    def vars(self) -> tuple[I.IExpr, ...]:
        return tuple(I.var(a) for a in range(len(self.kernel.space)))

    # ---------------------------------------------------------------- reads
    def slot(self, buffer: Buffer, index: Index, valid: I.IExpr | None = None, fill: Any = 0) -> int:
        key = (buffer.id, index, valid, fill)
        number = self._slots.get(key)
        if number is None:
            number = len(self.kernel.slots)
            self.kernel.slots.append(Slot(buffer, index, valid, fill))
            self._slots[key] = number
        return number

    def load(self, buffer: Buffer, index: Index, valid: I.IExpr | None = None, fill: Any = 0) -> S.SExpr:
        return S.SExpr("arg", (), buffer.dtype, self.slot(buffer, index, valid, fill))

    def read(self, t: Tensor, index: Index, valid: I.IExpr | None = None, fill: Any = 0) -> S.SExpr:
        """The value of tensor t at `index` (through its views, from the buffer holding it)."""
        base, base_index = resolve(t, index, self.lowering.stored)
        return self.load(self.lowering.buffer_of[base], base_index, valid, fill)

    def read_int(self, t: Tensor, index: Index) -> I.IExpr:
        """An int tensor's value at `index`, usable inside other index expressions."""
        base, base_index = resolve(t, index, self.lowering.stored)
        return I.load(self.slot(self.lowering.buffer_of[base], base_index))

    # ---------------------------------------------------------------- results
    def accumulate(self, combiner: str, operand: S.SExpr, dtype: DType) -> S.SExpr:
        self.kernel.accumulators.append(Accumulator(combiner, operand, dtype))
        return S.SExpr("acc", (), dtype, len(self.kernel.accumulators) - 1)

    def store(self, buffer: Buffer, index: Index, value: S.SExpr, mode: str = "set", inner: bool = False) -> None:
        if value.dtype is not buffer.dtype:
            value = S.cast(value, buffer.dtype)
        self.kernel.stores.append(Store(buffer, index, value, mode, inner))

    def check(self, ok: S.SExpr, detail: S.SExpr | None, message: str, node: Any, inner: bool = True,
              where: Any = None) -> None:
        assert ok.dtype is bool_
        self.kernel.checks.append(Check(ok, detail, message, node, inner, where))

    def finish(self) -> LoopKernel:
        self.lowering.kernels.append(self.kernel)
        return self.kernel
