"""Export rules for values, structure and shape ops: constants, frozen variables, identity,
reshape, transpose, expand_dims, squeeze, broadcast_to, tile, pad, fill, shape, concat, stack,
unstack, split, strided slices, gather, one_hot, sum-to-shape and matmul."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...ir.dtypes import int64
from ...ir.node import Node
from ...ir.shapes import is_fully_defined, normalize_axis
from .export_rules import ExportContext, rule

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def _out(node: Node):
    return node.outputs[0].dtype


def _rank(ctx: ExportContext, node: Node, t: Any) -> int:
    if t.shape is None:
        raise ctx.unsupported(node, "exporting it needs the input's rank, which is unknown")
    return len(t.shape)


def shape_operand(ctx: ExportContext, node: Node, attr: str, index: int) -> str:
    """A 1-D int64 ONNX value for a shape argument: the attribute, else the shape input."""
    if node.attrs.get(attr) is not None:
        return ctx.ints(node.attrs[attr], attr)
    return ctx.input(node, index, int64)


# ----------------------------------------------------------------------------- values
@rule("Const")
def _const(ctx, node):
    return [ctx.const(node.attrs["value"], hint="value")]


@rule("VariableV2", "ReadVariable")
def _variable(ctx, node):
    value = np.asarray(ctx.variables[node.attrs["var"]], dtype=_out(node).np)
    return [ctx.const(value, hint="value")]


@rule("Placeholder")
def _placeholder(ctx, node):
    raise ctx.unsupported(node, "the placeholder is needed by the outputs but is not one of the inputs")


@rule("PlaceholderWithDefault", "Identity", "StopGradient", "CheckNumerics")
def _identity(ctx, node):
    """CheckNumerics exports as Identity: ONNX has no run-time assertion."""
    return [ctx.op("Identity", [ctx.input(node, 0)])]


# ----------------------------------------------------------------------------- shapes
@rule("Reshape")
def _reshape(ctx, node):
    out_shape = node.outputs[0].shape
    if is_fully_defined(out_shape):
        target = ctx.ints(out_shape, "shape")
        return [ctx.op("Reshape", [ctx.input(node, 0), target], allowzero=1)]
    return [ctx.op("Reshape", [ctx.input(node, 0), shape_operand(ctx, node, "shape", 1)])]


@rule("Transpose")
def _transpose(ctx, node):
    perm = node.attrs["perm"]
    rank = len(perm) if perm is not None else _rank(ctx, node, node.inputs[0])
    perm = list(range(rank))[::-1] if perm is None else [p % rank for p in perm]
    return [ctx.op("Transpose", [ctx.input(node, 0)], perm=perm)]


@rule("ExpandDims")
def _expand_dims(ctx, node):
    axis = node.attrs["axis"]
    axes = [axis] if isinstance(axis, int) else list(axis)
    return [ctx.op("Unsqueeze", [ctx.input(node, 0), ctx.ints(axes, "axes")])]


@rule("Squeeze")
def _squeeze(ctx, node):
    axis = node.attrs["axis"]
    if axis is None:
        return [ctx.op("Squeeze", [ctx.input(node, 0)])]
    return [ctx.op("Squeeze", [ctx.input(node, 0), ctx.ints(list(axis), "axes")])]


@rule("BroadcastTo")
def _broadcast_to(ctx, node):
    return [ctx.op("Expand", [ctx.input(node, 0), shape_operand(ctx, node, "shape", 1)])]


@rule("Tile")
def _tile(ctx, node):
    return [ctx.op("Tile", [ctx.input(node, 0), shape_operand(ctx, node, "multiples", 1)])]


@rule("Fill")
def _fill(ctx, node):
    return [ctx.op("Expand", [ctx.input(node, 0), shape_operand(ctx, node, "shape", 1)])]


@rule("Shape")
def _shape(ctx, node):
    return [ctx.cast(ctx.op("Shape", [ctx.input(node, 0)]), int64, _out(node))]


@rule("Pad")
def _pad(ctx, node):
    pads = [tuple(p) for p in node.attrs["paddings"]]
    x = ctx.input(node, 0)
    if not pads:
        return [ctx.op("Identity", [x])]
    mode = node.attrs["mode"]
    if mode == "SYMMETRIC":
        return [_symmetric_pad(ctx, x, pads)]
    onnx_pads = ctx.ints([b for b, _ in pads] + [a for _, a in pads], "pads")
    if mode == "REFLECT":
        return [ctx.op("Pad", [x, onnx_pads], mode="reflect")]
    value = ctx.const(np.asarray(node.attrs["constant_values"], dtype=_out(node).np), hint="pad_value")
    return [ctx.op("Pad", [x, onnx_pads, value], mode="constant")]


def _symmetric_pad(ctx: ExportContext, x: str, pads: list[tuple[int, int]]) -> str:
    """Mirror padding that repeats the edge (ONNX's reflect skips it): per axis, the reversed
    first `before` and last `after` slices around the tensor."""
    for axis, (before, after) in enumerate(pads):
        parts = []
        if before:
            parts.append(ctx.op("Slice", [x, ctx.ints([before - 1]), ctx.ints([INT64_MIN]), ctx.ints([axis]),
                                          ctx.ints([-1])]))
        parts.append(x)
        if after:
            parts.append(ctx.op("Slice", [x, ctx.ints([-1]), ctx.ints([-1 - after]), ctx.ints([axis]),
                                          ctx.ints([-1])]))
        if len(parts) > 1:
            x = ctx.op("Concat", parts, axis=axis)
    return x


# ----------------------------------------------------------------------------- joining
@rule("Concat")
def _concat(ctx, node):
    dtype = _out(node)
    return [ctx.op("Concat", [ctx.input(node, i, dtype) for i in range(len(node.inputs))],
                   axis=int(node.attrs["axis"]))]


@rule("Pack")
def _pack(ctx, node):
    dtype = _out(node)
    axis = ctx.ints([node.attrs["axis"]], "axis")
    parts = [ctx.op("Unsqueeze", [ctx.input(node, i, dtype), axis]) for i in range(len(node.inputs))]
    return [ctx.op("Concat", parts, axis=int(node.attrs["axis"]))]


@rule("Unpack")
def _unpack(ctx, node):
    n = len(node.outputs)
    axis = node.attrs["axis"]
    parts = ctx.op("Split", [ctx.input(node, 0), ctx.ints([1] * n, "split")], n_out=n, axis=axis)
    parts = parts if n != 1 else [parts]
    return [ctx.op("Squeeze", [p, ctx.ints([axis], "axes")]) for p in parts]


@rule("Split")
def _split(ctx, node):
    n = len(node.outputs)
    axis = int(node.attrs["axis"])
    x = ctx.input(node, 0)
    sizes = [t.shape[axis] if t.shape is not None else None for t in node.outputs]
    if all(s is not None for s in sizes):
        split = ctx.ints(sizes, "split")
    elif node.attrs["size_splits"] is None and node.attrs["num_split"] is None and len(node.inputs) > 1:
        split = ctx.input(node, 1, int64)
    elif node.attrs["num_split"] is not None and ctx.opset >= 18:
        parts = ctx.op("Split", [x], n_out=n, axis=axis, num_outputs=n)
        return parts if n != 1 else [parts]
    else:
        raise ctx.unsupported(node, "the part sizes are unknown while exporting")
    parts = ctx.op("Split", [x, split], n_out=n, axis=axis)
    return parts if n != 1 else [parts]


# ----------------------------------------------------------------------------- selecting
@rule("StridedSlice")
def _strided_slice(ctx, node):
    from ...ops.slicing import expand_spec

    x = node.inputs[0]
    spec = expand_spec(node.attrs["spec"], _rank(ctx, node, x))
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    in_axis = out_axis = 0
    for entry in spec:
        kind = entry[0]
        if kind == "newaxis":
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if kind == "index":
            i = int(entry[1])
            starts.append(i)
            ends.append(i + 1 if i != -1 else INT64_MAX)
            steps.append(1)
            axes.append(in_axis)
            squeeze.append(in_axis)
        else:
            _, start, stop, step = entry
            step = 1 if step is None else int(step)
            if (start, stop, step) != (None, None, 1):
                starts.append(int(start) if start is not None else (0 if step > 0 else -1))
                ends.append(int(stop) if stop is not None else (INT64_MAX if step > 0 else INT64_MIN))
                steps.append(step)
                axes.append(in_axis)
            out_axis += 1
        in_axis += 1
    y = ctx.input(node, 0)
    if axes:
        y = ctx.op("Slice", [y, ctx.ints(starts, "starts"), ctx.ints(ends, "ends"), ctx.ints(axes, "axes"),
                             ctx.ints(steps, "steps")])
    if squeeze:
        y = ctx.op("Squeeze", [y, ctx.ints(squeeze, "axes")])
    if unsqueeze:
        y = ctx.op("Unsqueeze", [y, ctx.ints(unsqueeze, "axes")])
    if y == ctx.input(node, 0):
        y = ctx.op("Identity", [y])
    return [y]


@rule("Gather")
def _gather(ctx, node):
    return [ctx.op("Gather", [ctx.input(node, 0), ctx.input(node, 1)], axis=int(node.attrs["axis"]))]


@rule("OneHot")
def _one_hot(ctx, node):
    """Equal(indices, range(depth)) along the new axis, then on/off values: graphc gives a row of
    off_value for any index outside [0, depth), where ONNX's OneHot would wrap negatives."""
    idx = node.inputs[0]
    depth = int(node.attrs["depth"])
    rank = _rank(ctx, node, idx) + 1
    axis = normalize_axis(int(node.attrs["axis"]), rank)
    positions = np.arange(depth, dtype=np.int64).reshape([depth] + [1] * (rank - 1 - axis))
    expanded = ctx.op("Unsqueeze", [ctx.input(node, 0, int64), ctx.ints([axis], "axes")])
    hot = ctx.op("Equal", [expanded, ctx.const(positions, hint="positions")])
    dtype = _out(node)
    on = ctx.const(np.asarray(node.attrs["on_value"], dtype=dtype.np), hint="on_value")
    off = ctx.const(np.asarray(node.attrs["off_value"], dtype=dtype.np), hint="off_value")
    return [ctx.op("Where", [hot, on, off])]


@rule("SumToShape")
def _sum_to_shape(ctx, node):
    x = node.inputs[0]
    target = node.attrs["shape"]
    if target is None or x.shape is None or any(d is None for d in x.shape[len(x.shape) - len(target):]):
        raise ctx.unsupported(node, "exporting it needs static shapes")
    lead = len(x.shape) - len(target)
    axes = list(range(lead)) + [lead + i for i, t in enumerate(target) if t == 1 and x.shape[lead + i] != 1]
    y = ctx.input(node, 0)
    if axes:
        y = ctx.reduce("ReduceSum", y, axes, keepdims=True)
    return [ctx.op("Reshape", [y, ctx.ints(target, "shape")], allowzero=1)]


@rule("MatMul")
def _matmul(ctx, node):
    dtype = _out(node)
    operands = []
    for i, flag in enumerate(("transpose_a", "transpose_b")):
        x = ctx.input(node, i, dtype)
        if node.attrs[flag]:
            rank = _rank(ctx, node, node.inputs[i])
            x = ctx.op("Transpose", [x], perm=list(range(rank - 2)) + [rank - 1, rank - 2])
        operands.append(x)
    return [ctx.op("MatMul", operands)]
