"""Reading a tensor at an index, through views, down to the buffer that holds its data.

A view (reshape, transpose, broadcast_to, strided slice, expand_dims, squeeze) costs no copy: it
only rewrites the index. An index is carried either per dimension or as one flat element offset;
a reshape of a contiguous buffer keeps the flat offset affine (a unit-stride read) instead of
unravelling it with div / mod.
"""
from __future__ import annotations

from typing import Union

from ..ir.tensor import Tensor
from ..ops.shape_ops import VIEW_OPS
from ..ops.slicing import expand_spec
from . import index as iexpr

DIMENSION_VIEWS = frozenset({"Transpose", "BroadcastTo", "StridedSlice"})   # views that index per dimension
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


def unravel(flat: iexpr.IExpr, shape: tuple[int, ...], bounded: bool = False) -> Dims:
    """Per-dimension indices of a flat offset; `bounded`: the offset is known to be below the
    shape's size, so the most significant index needs no mod."""
    out, step = [], 1
    for k, d in enumerate(reversed(shape)):
        value = iexpr.floordiv(flat, step)
        out.append(iexpr.const(0) if d <= 1 else value if bounded and k == len(shape) - 1 else iexpr.mod(value, d))
        step *= max(d, 1)
    return tuple(reversed(out))


def as_dims(idx: Index, shape: tuple[int, ...]) -> Dims:
    return idx if isinstance(idx, tuple) else unravel(idx, shape)


def as_flat(idx: Index, shape: tuple[int, ...]) -> iexpr.IExpr:
    return flatten(idx, shape) if isinstance(idx, tuple) else idx


def _only_unit_dims_differ(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def reshape_groups(out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> list[tuple[int, int, int, int]] | None:
    """The smallest runs of dimensions that a reshape maps onto each other, as (out_first,
    out_end, in_first, in_end): (2, 24, 28, 28) -> (48, 28, 28) is [48] <- [2, 24] and two
    untouched 28s. None for shapes with an empty dimension."""
    if 0 in out_shape or 0 in in_shape:
        return None
    groups, i, j = [], 0, 0
    while i < len(out_shape) or j < len(in_shape):
        oi, ij, po, pi = i, j, 1, 1
        if i < len(out_shape):
            po, i = out_shape[i], i + 1
        if j < len(in_shape):
            pi, j = in_shape[j], j + 1
        while po != pi:
            if po < pi and i < len(out_shape):
                po, i = po * out_shape[i], i + 1
            elif pi < po and j < len(in_shape):
                pi, j = pi * in_shape[j], j + 1
            else:
                return None
        groups.append((oi, i, ij, j))
    return groups


def _reshape_by_groups(idx: Dims, out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> Dims | None:
    """Per-dimension indices through a reshape, each run of dimensions on its own: a channel
    shuffle's 48 <- (2, 24) costs one div and one mod of the channel index, and the trailing
    spatial dimensions pass through untouched (a unit-stride, vectorizable read), where
    unravelling one flat offset over the whole shape took a div and a mod per dimension and
    element."""
    groups = reshape_groups(out_shape, in_shape)
    if groups is None:
        return None
    src: list[iexpr.IExpr] = []
    for oi, oe, ii, ie in groups:
        if oe - oi == 1 and ie - ii == 1:
            src.append(idx[oi])
            continue
        # the run's flat offset is below its size: its most significant index needs no mod
        src.extend(unravel(flatten(idx[oi:oe], out_shape[oi:oe]), in_shape[ii:ie], bounded=True))
    return tuple(src)


def through_view(t: Tensor, idx: Index, dims_wanted: bool = False) -> tuple[Tensor, Index]:
    """One step: the view's input and the index into it. `dims_wanted`: the next step needs
    per-dimension indices (a transpose, broadcast or slice of the reshape's input), so a reshape
    maps them run by run rather than through one flat offset."""
    node = t.node
    x = node.inputs[0]
    out_shape, in_shape = tuple(t.shape), tuple(x.shape)
    kind = node.type
    if kind in ("Reshape", "ExpandDims", "Squeeze"):
        if isinstance(idx, tuple) and _only_unit_dims_differ(out_shape, in_shape):
            kept = [e for e, d in zip(idx, out_shape) if d != 1]
            it = iter(kept)
            return x, tuple(iexpr.const(0) if d == 1 else next(it) for d in in_shape)
        if dims_wanted and isinstance(idx, tuple):
            grouped = _reshape_by_groups(idx, out_shape, in_shape)
            if grouped is not None:
                return x, grouped
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
        x = t.node.inputs[0]
        dims_wanted = x not in stored and x.node is not None and x.node.type in DIMENSION_VIEWS
        t, idx = through_view(t, idx, dims_wanted)
    return t, idx
