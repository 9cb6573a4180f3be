"""Reading a tensor at an index, through views, down to the buffer that holds its data.

A view (reshape, transpose, broadcast_to, strided slice, expand_dims, squeeze) costs no copy: it
only rewrites the index. An index is carried either per dimension or as one flat element offset;
a reshape of a contiguous buffer keeps the flat offset affine (a unit-stride read) instead of
unravelling it with div / mod.
"""
from __future__ import annotations

from typing import Union

from ..ir.tensor import Tensor
from ..ops.slicing import expand_spec
from . import index as iexpr

VIEW_OPS = frozenset({"Reshape", "Transpose", "BroadcastTo", "StridedSlice", "ExpandDims", "Squeeze"})
Dims = tuple[iexpr.IExpr, ...]
Index = Union[Dims, iexpr.IExpr]   # per-dimension indices, or a flat element offset


def broadcast_index(dims: Dims, from_shape: tuple[int, ...], to_shape: tuple[int, ...]) -> Dims:
    """The index into a tensor of `to_shape` that NumPy broadcasting reads for position `dims`
    of a result of `from_shape` (right-aligned; size-1 dims read element 0)."""
    lead = len(from_shape) - len(to_shape)
    return tuple(iexpr.const(0) if d == 1 else dims[lead + i] for i, d in enumerate(to_shape))


def flatten(dims: Dims, shape: tuple[int, ...]) -> iexpr.IExpr:
    offset, step = iexpr.const(0), 1
    for e, d in zip(reversed(dims), reversed(shape)):
        offset = iexpr.add(offset, iexpr.mul(e, step))
        step *= max(d, 1)
    return offset


def unravel(flat: iexpr.IExpr, shape: tuple[int, ...]) -> Dims:
    out, step = [], 1
    for d in reversed(shape):
        out.append(iexpr.mod(iexpr.floordiv(flat, step), d) if d > 1 else iexpr.const(0))
        step *= max(d, 1)
    return tuple(reversed(out))


def as_dims(idx: Index, shape: tuple[int, ...]) -> Dims:
    return idx if isinstance(idx, tuple) else unravel(idx, shape)


def as_flat(idx: Index, shape: tuple[int, ...]) -> iexpr.IExpr:
    return flatten(idx, shape) if isinstance(idx, tuple) else idx


def _only_unit_dims_differ(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def through_view(t: Tensor, idx: Index) -> tuple[Tensor, Index]:
    """One step: the view's input and the index into it."""
    node = t.node
    x = node.inputs[0]
    out_shape, in_shape = tuple(t.shape), tuple(x.shape)
    kind = node.type
    if kind in ("Reshape", "ExpandDims", "Squeeze"):
        if isinstance(idx, tuple) and _only_unit_dims_differ(out_shape, in_shape):
            kept = [e for e, d in zip(idx, out_shape) if d != 1]
            it = iter(kept)
            return x, tuple(iexpr.const(0) if d == 1 else next(it) for d in in_shape)
        return x, as_flat(idx, out_shape)
    dims = as_dims(idx, out_shape)
    if kind == "Transpose":
        perm = node.attrs["perm"]
        perm = tuple(range(len(in_shape)))[::-1] if perm is None else tuple(p % len(in_shape) for p in perm)
        src = [iexpr.const(0)] * len(in_shape)
        for i, p in enumerate(perm):
            src[p] = dims[i]
        return x, tuple(src)
    if kind == "BroadcastTo":
        return x, broadcast_index(dims, out_shape, in_shape)
    if kind == "StridedSlice":
        src: list[iexpr.IExpr] = []
        out = iter(dims)
        x_dims = iter(in_shape)
        for entry in expand_spec(node.attrs["spec"], len(in_shape)):
            if entry[0] == "newaxis":
                next(out)
                continue
            n = next(x_dims)
            if entry[0] == "index":
                src.append(iexpr.const(entry[1] % n if n else 0))
                continue
            start, _, step = slice(entry[1], entry[2], entry[3]).indices(n)
            src.append(iexpr.add(start, iexpr.mul(next(out), step)))
        return x, tuple(src)
    raise AssertionError(f"not a view: {kind}")


def resolve(t: Tensor, idx: Index, stored: set[Tensor]) -> tuple[Tensor, Index]:
    """Follow views from t until a tensor that is stored (or a program input / constant)."""
    while t not in stored and t.node.type in VIEW_OPS:
        t, idx = through_view(t, idx)
    return t, idx
