"""Import rules for ONNX sequences (SequenceEmpty / Construct / Insert / At / Erase / Length,
SplitToSequence, ConcatFromSequence).

graphc values are tensors, so a sequence lives only while importing: a TensorList of the
graphc tensors it holds, in order. Every position (SequenceAt's, Insert's, Erase's) and
SplitToSequence's split must be known while building (a constant, or a graph input the ONNX
backend binds as one), so each sequence op becomes plain indexing, concatenation or splitting
of tensors; a sequence that leaves the model (a graph output) or reaches an op that takes
tensors is refused by name.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...api import array as array_ops
from ...ir.tensor import Tensor
from .checks import axis as check_axis
from .common import graphc_type
from .import_rules import ImportContext, rule


class TensorList:
    """An ONNX sequence while importing: its tensors, and its element type when it is empty."""

    def __init__(self, items: list[Tensor], dtype: Any = None) -> None:
        self.items = list(items)
        self.dtype = dtype if dtype is not None or not items else items[0].dtype


def _sequence(ctx: ImportContext, value: Any, what: str) -> TensorList:
    if not isinstance(value, TensorList):
        raise ctx.error(f"{what} must be an ONNX sequence, got a tensor")
    return value


def _position(ctx: ImportContext, t: Tensor | None, length: int, what: str, default: int, end_ok: bool) -> int:
    """A position in a sequence of `length` (negative counts from the end), known while building."""
    if t is None:
        return default
    values = ctx.static_ints(t, what)
    if len(values) != 1:
        raise ctx.error(f"{what} must be a scalar, got {len(values)} values")
    p = values[0]
    high = length if end_ok else length - 1
    if not -length <= p <= high:
        raise ctx.error(f"{what} is {p}, outside [{-length}, {high}] for a sequence of {length} tensors")
    return p + length if p < 0 else p


def _element(ctx: ImportContext, seq: TensorList, t: Any, what: str) -> Tensor:
    if isinstance(t, TensorList) or t is None:
        raise ctx.error(f"{what} must be a tensor")
    if seq.dtype is not None and t.dtype != seq.dtype:
        raise ctx.error(f"{what} is {t.dtype.name}, but the sequence holds {seq.dtype.name} tensors")
    return t


@rule("SequenceEmpty")
def _empty(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    from ...ir.dtypes import float32

    dtype = graphc_type(attrs["dtype"], f"{ctx.where()}: attribute 'dtype'") if "dtype" in attrs else float32
    return [TensorList([], dtype)]


@rule("SequenceConstruct")
def _construct(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    if not ins:
        raise ctx.error("SequenceConstruct needs at least one tensor")
    first = _element(ctx, TensorList([]), ins[0], "input 0")
    seq = TensorList([first])
    for k, t in enumerate(ins[1:], 1):
        seq.items.append(_element(ctx, seq, t, f"input {k}"))
    return [seq]


@rule("SequenceInsert", static=(2,))
def _insert(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    seq = _sequence(ctx, ins[0], "input 0")
    t = _element(ctx, seq, ins[1], "input 1 (the tensor)")
    at = _position(ctx, ins[2] if len(ins) > 2 else None, len(seq.items), "input 2 ('position')",
                   len(seq.items), end_ok=True)
    items = list(seq.items)
    items.insert(at, t)
    return [TensorList(items, t.dtype)]


@rule("SequenceAt", static=(1,))
def _at(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    seq = _sequence(ctx, ins[0], "input 0")
    if not seq.items:
        raise ctx.error("SequenceAt on an empty sequence")
    return [seq.items[_position(ctx, ins[1], len(seq.items), "input 1 ('position')", 0, end_ok=False)]]


@rule("SequenceErase", static=(1,))
def _erase(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    seq = _sequence(ctx, ins[0], "input 0")
    if not seq.items:
        raise ctx.error("SequenceErase on an empty sequence")
    at = _position(ctx, ins[1] if len(ins) > 1 else None, len(seq.items), "input 1 ('position')",
                   len(seq.items) - 1, end_ok=False)
    return [TensorList(seq.items[:at] + seq.items[at + 1:], seq.dtype)]


@rule("SequenceLength")
def _length(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    return [ctx.constant(np.int64(len(_sequence(ctx, ins[0], "input 0").items)))]


@rule("ConcatFromSequence")
def _concat(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    seq = _sequence(ctx, ins[0], "input 0")
    if not seq.items:
        raise ctx.error("ConcatFromSequence of an empty sequence")
    rank = seq.items[0].ndim
    if "axis" not in attrs:
        raise ctx.error("attribute 'axis' is required")
    if attrs.get("new_axis", 0):
        return [array_ops.stack(seq.items, axis=check_axis(ctx, attrs["axis"], rank, "attribute 'axis'", extra=1))]
    return [array_ops.concat(seq.items, axis=check_axis(ctx, attrs["axis"], rank, "attribute 'axis'"))]


@rule("SplitToSequence", static=(1,))
def _split(ctx: ImportContext, node: Any, ins: list, attrs: dict) -> list:
    x = ins[0]
    if x.shape is None:
        raise ctx.error("input 0 needs a known rank")
    ax = check_axis(ctx, attrs.get("axis", 0), x.ndim, "attribute 'axis'")
    size = x.shape[ax]
    keepdims = bool(attrs.get("keepdims", 1))
    given = len(ins) > 1 and ins[1] is not None
    if size is None and not (given and np.ndim(ctx.static(ins[1], "input 1 ('split')")) == 1):
        raise ctx.error(f"input 0's axis {ax} must have a known size to split it")
    if not given:   # pieces of one element each; keepdims=0 drops the axis
        pieces = array_ops.split(x, size, axis=ax) if size else []
        if not keepdims:
            pieces = [array_ops.squeeze(p, [ax]) for p in pieces]
        return [TensorList(pieces, x.dtype)]
    split = ctx.static(ins[1], "input 1 ('split')")
    values = [int(v) for v in np.asarray(split).reshape(-1)]
    if np.ndim(split) == 0:   # chunks of this size, the last one smaller
        if values[0] <= 0:
            raise ctx.error(f"input 1 ('split') must be positive, got {values[0]}")
        sizes = [min(values[0], size - s) for s in range(0, size, values[0])]
    else:
        sizes = values
    if any(s < 0 for s in sizes) or (size is not None and sum(sizes) != size):
        raise ctx.error(f"input 1 ('split') gives sizes {sizes}, which do not add up to the axis' {size}")
    return [TensorList(array_ops.split(x, sizes, axis=ax) if sizes else [], x.dtype)]
