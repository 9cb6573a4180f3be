"""Import rules for constants, shapes, joining, slicing, gathering and matrix products."""
from __future__ import annotations

import numpy as np

from ...api import array as A
from ...api import math as M
from ...api.convert import apply1
from ...ir.dtypes import int64
from ...ir.tensor import Tensor
from .importer import ImportContext, rule, tensor_array
from .import_math import c


def _rank(ctx: ImportContext, x: Tensor, what: str = "the input") -> int:
    if x.shape is None:
        raise ctx.error(f"{what} must have a known rank")
    return len(x.shape)


def _axis_slice(x: Tensor, axis: int, start: int | None, stop: int | None, step: int | None = None) -> Tensor:
    return A.getitem(x, (slice(None),) * axis + (slice(start, stop, step),))


# ----------------------------------------------------------------------------- constants
@rule("Constant")
def _constant(ctx, node, ins, attrs):
    if "value" in attrs:
        return [ctx.constant(tensor_array(attrs["value"]))]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return [ctx.constant(np.asarray(attrs[key], dtype=dtype))]
    raise ctx.error(f"attribute(s) {sorted(attrs)} are not supported (graphc imports numeric tensors)")


@rule("ConstantOfShape", static=(0,))
def _constant_of_shape(ctx, node, ins, attrs):
    shape = ctx.static_ints(ins[0], "input 'input' (the shape)")
    value = tensor_array(attrs["value"]).reshape(-1) if "value" in attrs else np.zeros(1, np.float32)
    return [ctx.constant(np.full(shape, value[0], dtype=value.dtype))]


@rule("Range", static=(0, 1, 2))
def _range(ctx, node, ins, attrs):
    start, limit, delta = (np.asarray(ctx.static(t, f"input {i}")) for i, t in enumerate(ins))
    return [ctx.constant(np.arange(start, limit, delta).astype(start.dtype))]


@rule("Shape")
def _shape(ctx, node, ins, attrs):
    s = A.shape(ins[0], out_type=int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    if start == 0 and end is None:
        return [s]
    return [A.getitem(s, slice(start, end))]


@rule("Size")
def _size(ctx, node, ins, attrs):
    return [M.reduce_prod(A.shape(ins[0], out_type=int64))]


# ----------------------------------------------------------------------------- shapes
@rule("Reshape", static=(1,))
def _reshape(ctx, node, ins, attrs):
    x = ins[0]
    shape = ctx.static_ints(ins[1], "input 'shape'") if ctx.opset >= 5 else list(attrs["shape"])
    if not attrs.get("allowzero", 0) and 0 in shape:
        dims = A.shape(x)
        shape = [dims[i] if d == 0 else d for i, d in enumerate(shape)]  # 0 copies the input's size
    return [A.reshape(x, shape)]


@rule("Flatten")
def _flatten(ctx, node, ins, attrs):
    x = ins[0]
    rank = _rank(ctx, x)
    axis = int(attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if x.shape is not None and all(d is not None for d in x.shape):
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        return [A.reshape(x, [outer, -1] if outer else [0, int(np.prod(x.shape[axis:], dtype=np.int64))])]
    outer = M.reduce_prod(A.getitem(A.shape(x), slice(0, axis))) if axis else 1
    return [A.reshape(x, [outer, -1])]


@rule("Transpose")
def _transpose(ctx, node, ins, attrs):
    perm = attrs.get("perm")
    return [A.transpose(ins[0], list(perm) if perm is not None else None)]


@rule("Squeeze", static=(1,))
def _squeeze(ctx, node, ins, attrs):
    axes = attrs.get("axes") if ctx.opset < 13 else (
        ctx.static_ints(ins[1], "input 'axes'") if len(ins) > 1 and ins[1] is not None else None)
    if axes is None:
        return [apply1("Squeeze", [ins[0]], {"axis": None})]
    return [apply1("Squeeze", [ins[0]], {"axis": tuple(int(a) for a in axes)})]


@rule("Unsqueeze", static=(1,))
def _unsqueeze(ctx, node, ins, attrs):
    axes = attrs.get("axes") if ctx.opset < 13 else ctx.static_ints(ins[1], "input 'axes'")
    return [apply1("ExpandDims", [ins[0]], {"axis": tuple(int(a) for a in axes)})]


@rule("Expand", static=(1,))
def _expand(ctx, node, ins, attrs):
    x = ins[0]
    shape = ctx.static_ints(ins[1], "input 'shape'")
    if x.shape is not None and all(d is not None for d in x.shape):
        try:
            shape = list(np.broadcast_shapes(tuple(x.shape), tuple(shape)))
        except ValueError:
            raise ctx.error(f"cannot broadcast {x.shape} with {tuple(shape)}") from None
    return [A.broadcast_to(x, shape)]


@rule("Tile", static=(1,))
def _tile(ctx, node, ins, attrs):
    return [A.tile(ins[0], ctx.static_ints(ins[1], "input 'repeats'"))]


@rule("Concat")
def _concat(ctx, node, ins, attrs):
    return [A.concat([t for t in ins if t is not None], axis=int(attrs["axis"]))]


@rule("Split", static=(1,))
def _split(ctx, node, ins, attrs):
    x = ins[0]
    axis = int(attrs.get("axis", 0))
    if ctx.opset < 13:
        sizes = attrs.get("split")
    else:
        sizes = ctx.static_ints(ins[1], "input 'split'") if len(ins) > 1 and ins[1] is not None else None
    n = len(node.output)
    if sizes is None:
        dim = x.shape[axis] if x.shape is not None else None
        if "num_outputs" in attrs and dim is not None and dim % n:
            chunk = -(-dim // n)  # ONNX 18: equal chunks, a smaller last one
            sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
        else:
            return A.split(x, n, axis=axis)
    return A.split(x, [int(s) for s in sizes], axis=axis)


# ----------------------------------------------------------------------------- slicing
@rule("Slice", static=(1, 2, 3, 4))
def _slice(ctx, node, ins, attrs):
    x = ins[0]
    rank = _rank(ctx, x)
    if ctx.opset < 10:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes, steps = list(attrs.get("axes", range(len(starts)))), [1] * len(starts)
    else:
        starts = ctx.static_ints(ins[1], "input 'starts'")
        ends = ctx.static_ints(ins[2], "input 'ends'")
        axes = ctx.static_ints(ins[3], "input 'axes'") if len(ins) > 3 and ins[3] is not None \
            else list(range(len(starts)))
        steps = ctx.static_ints(ins[4], "input 'steps'") if len(ins) > 4 and ins[4] is not None \
            else [1] * len(starts)
    key = [slice(None)] * rank
    for s, e, a, st in zip(starts, ends, axes, steps):
        key[a % rank] = slice(s, e, st)
    return [A.getitem(x, tuple(key))]


def _wrap_indices(ctx: ImportContext, indices: Tensor, dim: int | None, what: str) -> Tensor:
    """ONNX lets an index count from the end (-1 is the last); graphc's gather does not."""
    if indices.static_value is not None:
        value = indices.static_value
        if (value < 0).any():
            if dim is None:
                raise ctx.error(f"negative {what} need the size of the gathered axis")
            return ctx.constant(np.where(value < 0, value + dim, value).astype(value.dtype))
        return indices
    if dim is None:
        return indices
    return M.where(M.less(indices, c(ctx, 0, indices)), M.add(indices, c(ctx, dim, indices)), indices)


@rule("Gather")
def _gather(ctx, node, ins, attrs):
    params, indices = ins
    axis = int(attrs.get("axis", 0))
    dim = params.shape[axis] if params.shape is not None else None
    return [A.gather(params, _wrap_indices(ctx, indices, dim, "indices"), axis=axis)]


@rule("OneHot", static=(1, 2))
def _one_hot(ctx, node, ins, attrs):
    indices = ins[0]
    depth = int(np.asarray(ctx.static(ins[1], "input 'depth'")).reshape(-1)[0])
    off, on = np.asarray(ctx.static(ins[2], "input 'values'")).reshape(-1)[:2]
    if indices.dtype.is_floating:
        indices = M.cast(indices, int64)
    indices = _wrap_indices(ctx, indices, depth, "indices")
    dtype = ins[2].dtype
    return [A.one_hot(indices, depth, on_value=on.item(), off_value=off.item(), axis=int(attrs.get("axis", -1)),
                      dtype=dtype)]


@rule("Pad", static=(1, 2, 3))
def _pad(ctx, node, ins, attrs):
    x = ins[0]
    rank = _rank(ctx, x)
    pads = ctx.static_ints(ins[1], "input 'pads'") if ctx.opset >= 11 else list(attrs["pads"])
    value = 0
    if ctx.opset >= 11 and len(ins) > 2 and ins[2] is not None:
        value = np.asarray(ctx.static(ins[2], "input 'constant_value'")).reshape(-1)[0].item()
    elif ctx.opset < 11:
        value = attrs.get("value", 0.0)
    axes = list(range(rank))
    if len(ins) > 3 and ins[3] is not None:
        axes = [a % rank for a in ctx.static_ints(ins[3], "input 'axes'")]
    pairs = [(0, 0)] * rank
    for i, a in enumerate(axes):
        pairs[a] = (pads[i], pads[i + len(axes)])
    for a, (b, e) in enumerate(pairs):  # negative pads crop
        if b < 0 or e < 0:
            x = _axis_slice(x, a, -b if b < 0 else None, e if e < 0 else None)
    pairs = [(max(b, 0), max(e, 0)) for b, e in pairs]
    mode = attrs.get("mode", "constant")
    if mode == "constant":
        return [A.pad(x, pairs, constant_values=value)]
    if mode == "reflect":
        return [A.pad(x, pairs, mode="REFLECT")]
    if mode in ("edge", "wrap"):
        for a, (b, e) in enumerate(pairs):
            parts = []
            if b:
                parts.append(_repeat(_axis_slice(x, a, 0, 1), a, b, rank) if mode == "edge"
                             else _axis_slice(x, a, -b, None))
            parts.append(x)
            if e:
                parts.append(_repeat(_axis_slice(x, a, -1, None), a, e, rank) if mode == "edge"
                             else _axis_slice(x, a, 0, e))
            if len(parts) > 1:
                x = A.concat(parts, axis=a)
        return [x]
    raise ctx.error(f"pad mode {mode!r} is not supported")


def _repeat(x: Tensor, axis: int, times: int, rank: int) -> Tensor:
    return A.tile(x, [times if i == axis else 1 for i in range(rank)])


# ----------------------------------------------------------------------------- products
@rule("MatMul")
def _matmul(ctx, node, ins, attrs):
    return [M.matmul(ins[0], ins[1])]


@rule("Gemm")
def _gemm(ctx, node, ins, attrs):
    a, b = ins[0], ins[1]
    y = M.matmul(a, b, transpose_a=bool(attrs.get("transA", 0)), transpose_b=bool(attrs.get("transB", 0)))
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        y = M.multiply(y, c(ctx, alpha, y))
    if len(ins) > 2 and ins[2] is not None:
        bias = ins[2] if beta == 1.0 else M.multiply(ins[2], c(ctx, beta, ins[2]))
        y = M.add(y, bias)
    return [y]


@rule("Dropout", static=(1, 2))
def _dropout(ctx, node, ins, attrs):
    x = ins[0]
    training = len(ins) > 2 and ins[2] is not None and bool(np.asarray(ctx.static(ins[2], "training_mode")))
    ratio = float(np.asarray(ctx.static(ins[1], "ratio"))) if len(ins) > 1 and ins[1] is not None else 0.5
    if training and ratio > 0:
        raise ctx.error("training-mode dropout draws random numbers; graphc imports inference graphs")
    y = apply1("Identity", [x])
    outputs = [y]
    if len(node.output) > 1 and node.output[1]:
        outputs.append(A.fill(A.shape(x), True))
    return outputs


