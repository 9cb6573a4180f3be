"""Import rules for constants, shapes, joining, slicing, gathering and matrix products.

Every value a rule uses as an axis, a size or a count is checked first (checks.py): in range
for the input's rank, non-negative, within the size bound, of the right length, so that a
hostile file gets a GraphFileError naming the node and the field instead of an IndexError.
"""
from __future__ import annotations

import math

import numpy as np

from ...api import array as array_ops
from ...api import math as math_ops
from ...api.convert import apply1
from ...ir.dtypes import int64
from ...ir.tensor import Tensor
from . import dynamic_shapes
from .checks import axes as check_axes
from .checks import axis as check_axis
from .checks import ints, one_of, permutation, rank_of, scalar
from .import_control import dynamic_slice
from .import_rules import ImportContext, rule

_BIG = 1 << 62   # slice bounds beyond any dimension, clamped to this


def _axis_slice(x: Tensor, axis: int, start: int | None, stop: int | None, step: int | None = None) -> Tensor:
    return array_ops.getitem(x, (slice(None),) * axis + (slice(start, stop, step),))


def _known(x: Tensor) -> bool:
    return x.shape is not None and all(d is not None for d in x.shape)


# ----------------------------------------------------------------------------- constants
@rule("Constant")
def _constant(ctx, node, ins, attrs):
    if "value" in attrs:
        return [ctx.constant(ctx.tensor(attrs["value"], "attribute 'value'"))]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return [ctx.constant(np.asarray(attrs[key], dtype=dtype))]
    raise ctx.error(f"attribute(s) {sorted(attrs)} are not supported (graphc imports numeric tensors)")


@rule("ConstantOfShape", static=(0,))
def _constant_of_shape(ctx, node, ins, attrs):
    value = ctx.tensor(attrs["value"], "attribute 'value'") if "value" in attrs else np.zeros(1, np.float32)
    fill = scalar(ctx, value, "attribute 'value'")
    if ins[0] is not None and ins[0].static_value is None:   # computed from a fed input's shape
        return [dynamic_shapes.constant_of_shape(ctx, ins[0], fill, "input 0 ('input', the shape)")]
    shape = ctx.dims(ctx.static_ints(ins[0], "input 0 ('input', the shape)"), "input 0 ('input', the shape)",
                     value.dtype.itemsize)
    return [ctx.constant(np.full(shape, fill, dtype=value.dtype))]


@rule("Range", static=(0, 1, 2))
def _range(ctx, node, ins, attrs):
    start, limit, delta = (scalar(ctx, ctx.static(t, f"input {i}"), f"input {i}") for i, t in enumerate(ins))
    fields = "inputs 0 to 2 (start, limit, delta)"
    if start.dtype.kind in "iu":
        s, l, d = int(start), int(limit), int(delta)
        if d == 0:
            raise ctx.error("input 2 ('delta') is 0")
        count = max(-(-(l - s) // d), 0)
    else:
        s, l, d = float(start), float(limit), float(delta)
        if not (math.isfinite(s) and math.isfinite(l) and math.isfinite(d)) or d == 0:
            raise ctx.error(f"{fields} must be finite with a non-zero delta, got {s}, {l}, {d}")
        count = max(math.ceil((l - s) / d), 0)
    ctx.dims([count], "the result", start.dtype.itemsize)
    with np.errstate(all="ignore"):
        values = (np.arange(count, dtype=np.float64 if start.dtype.kind == "f" else np.int64) * d + s)
    return [ctx.constant(values.astype(start.dtype))]


@rule("Shape")
def _shape(ctx, node, ins, attrs):
    s = array_ops.shape(ins[0], out_type=int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    if start == 0 and end is None:
        return [s]
    rank = rank_of(ctx, ins[0])
    clamp = lambda v: min(max(v, -rank), rank)
    return [array_ops.getitem(s, slice(clamp(start), None if end is None else clamp(end)))]


@rule("Size")
def _size(ctx, node, ins, attrs):
    return [math_ops.reduce_prod(array_ops.shape(ins[0], out_type=int64))]


# ----------------------------------------------------------------------------- shapes
@rule("Reshape", static=(1,))
def _reshape(ctx, node, ins, attrs):
    x = ins[0]
    if ctx.opset >= 5:
        field = "input 1 ('shape')"
        if ins[1] is not None and ins[1].static_value is None:   # computed from a fed input's shape
            return [dynamic_shapes.reshape(ctx, x, ins[1], bool(attrs.get("allowzero", 0)), field)]
        shape = ctx.static_ints(ins[1], field)
    else:
        field = "attribute 'shape'"
        if "shape" not in attrs:
            raise ctx.error(f"{field} is required before opset 5")
        shape = list(attrs["shape"])
    ints(ctx, shape, field, lo=-1)
    if shape.count(-1) > 1:
        raise ctx.error(f"{field} has more than one -1: {shape}")
    allowzero = attrs.get("allowzero", 0)
    if allowzero and 0 in shape and -1 in shape:
        raise ctx.error(f"{field} has both 0 and -1 with allowzero=1: {shape}")
    if not allowzero and 0 in shape:
        rank = rank_of(ctx, x)
        if any(d == 0 and i >= rank for i, d in enumerate(shape)):
            raise ctx.error(f"{field} copies (0) a dim past the input's rank {rank}: {shape}")
        dims = array_ops.shape(x)
        shape = [dims[i] if d == 0 else d for i, d in enumerate(shape)]  # 0 copies the input's size
    else:
        ctx.dims([max(d, 0) for d in shape], field, x.dtype.np.itemsize)
    return [array_ops.reshape(x, shape)]


@rule("Flatten")
def _flatten(ctx, node, ins, attrs):
    x = ins[0]
    rank = rank_of(ctx, x)
    axis = int(attrs.get("axis", 1))
    if not -rank <= axis <= rank:
        raise ctx.error(f"attribute 'axis' is {axis}, outside [{-rank}, {rank}] for an input of rank {rank}")
    axis = axis + rank if axis < 0 else axis
    if _known(x):
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        return [array_ops.reshape(x, [outer, -1] if outer else [0, int(np.prod(x.shape[axis:], dtype=np.int64))])]
    outer = math_ops.reduce_prod(array_ops.getitem(array_ops.shape(x), slice(0, axis))) if axis else 1
    return [array_ops.reshape(x, [outer, -1])]


@rule("Transpose")
def _transpose(ctx, node, ins, attrs):
    perm = attrs.get("perm")
    if perm is not None:
        perm = permutation(ctx, perm, rank_of(ctx, ins[0]), "attribute 'perm'")
    return [array_ops.transpose(ins[0], perm)]


@rule("Squeeze", static=(1,))
def _squeeze(ctx, node, ins, attrs):
    x = ins[0]
    if ctx.opset < 13:
        axes, field = attrs.get("axes"), "attribute 'axes'"
    else:
        field = "input 1 ('axes')"
        axes = ctx.static_ints(ins[1], field) if len(ins) > 1 and ins[1] is not None else None
    if axes is None:
        return [apply1("Squeeze", [x], {"axis": None})]
    axes = check_axes(ctx, axes, rank_of(ctx, x), field)
    for a in axes:
        if x.shape[a] is not None and x.shape[a] != 1:
            raise ctx.error(f"{field} names axis {a}, of size {x.shape[a]}; only size-1 axes can be squeezed")
    return [apply1("Squeeze", [x], {"axis": tuple(axes)})] if axes else [apply1("Identity", [x])]


@rule("Unsqueeze", static=(1,))
def _unsqueeze(ctx, node, ins, attrs):
    if ctx.opset < 13:
        axes, field = attrs["axes"], "attribute 'axes'"
    else:
        field = "input 1 ('axes')"
        axes = ctx.static_ints(ins[1], field)
    axes = check_axes(ctx, axes, rank_of(ctx, ins[0]), field, extra=len(axes))
    if not axes:
        raise ctx.error(f"{field} is empty")
    return [apply1("ExpandDims", [ins[0]], {"axis": tuple(axes)})]


@rule("Expand", static=(1,))
def _expand(ctx, node, ins, attrs):
    x = ins[0]
    field = "input 1 ('shape')"
    if ins[1] is not None and ins[1].static_value is None:   # computed from a fed input's shape
        return [dynamic_shapes.expand(ctx, x, ins[1], field)]
    shape = ints(ctx, ctx.static_ints(ins[1], field), field, lo=0)
    rank_of(ctx, x)
    if _known(x):
        try:
            shape = list(np.broadcast_shapes(tuple(x.shape), tuple(shape)))
        except ValueError:
            raise ctx.error(f"cannot broadcast {x.shape} with {tuple(shape)}") from None
    ctx.dims(shape, "the result", x.dtype.np.itemsize)
    return [array_ops.broadcast_to(x, shape)]


@rule("Tile", static=(1,))
def _tile(ctx, node, ins, attrs):
    x = ins[0]
    field = "input 1 ('repeats')"
    repeats = ints(ctx, ctx.static_ints(ins[1], field), field, count=rank_of(ctx, x), lo=0)
    ctx.dims([(d if d is not None else 1) * r for d, r in zip(x.shape, repeats)], "the result",
             x.dtype.np.itemsize)
    return [array_ops.tile(x, repeats)]


@rule("Concat")
def _concat(ctx, node, ins, attrs):
    xs = [t for t in ins if t is not None]
    rank = rank_of(ctx, xs[0])
    for k, t in enumerate(ins):
        if t is not None and rank_of(ctx, t, f"input {k}") != rank:
            raise ctx.error(f"input {k} has rank {len(t.shape)}; input 0 has rank {rank}")
    return [array_ops.concat(xs, axis=check_axis(ctx, attrs["axis"], rank, "attribute 'axis'"))]


@rule("Split", static=(1,))
def _split(ctx, node, ins, attrs):
    x = ins[0]
    axis = check_axis(ctx, int(attrs.get("axis", 0)), rank_of(ctx, x), "attribute 'axis'")
    if ctx.opset < 13:
        sizes, field = attrs.get("split"), "attribute 'split'"
    else:
        field = "input 1 ('split')"
        sizes = ctx.static_ints(ins[1], field) if len(ins) > 1 and ins[1] is not None else None
    n = len(node.output)
    dim = x.shape[axis]
    if "num_outputs" in attrs and attrs["num_outputs"] != n:
        raise ctx.error(f"attribute 'num_outputs' is {attrs['num_outputs']}, but the node has {n} outputs")
    if sizes is None:
        if dim is not None and dim % n:
            if "num_outputs" not in attrs:
                raise ctx.error(f"the axis of size {dim} does not split into {n} equal parts")
            chunk = -(-dim // n)  # ONNX 18: equal chunks, a smaller last one
            sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
            if sizes[-1] < 0:
                raise ctx.error(f"the axis of size {dim} does not split into {n} parts of {chunk}")
        else:
            return array_ops.split(x, n, axis=axis)
    sizes = ints(ctx, sizes, field, count=n, lo=0)
    if dim is not None and sum(sizes) != dim:
        raise ctx.error(f"{field} sums to {sum(sizes)}; the axis has size {dim}")
    return array_ops.split(x, sizes, axis=axis)


# ----------------------------------------------------------------------------- slicing
@rule("Slice", static=(1, 2, 3, 4))
def _slice(ctx, node, ins, attrs):
    x = ins[0]
    rank = rank_of(ctx, x)
    if ctx.opset < 10:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes, steps = list(attrs.get("axes", range(len(starts)))), [1] * len(starts)
        field = "attributes 'starts', 'ends', 'axes'"
    else:
        if ins[1].static_value is None or ins[2].static_value is None:   # run-time offsets, e.g. in a Loop body
            given = lambda i: ctx.static_ints(ins[i], f"input {i}") if len(ins) > i and ins[i] is not None else None
            y = dynamic_slice(ctx, x, ins[1], ins[2], given(3), given(4))
            if y is not None:
                return [y]
        starts = ctx.static_ints(ins[1], "input 1 ('starts')")
        ends = ctx.static_ints(ins[2], "input 2 ('ends')")
        axes = ctx.static_ints(ins[3], "input 3 ('axes')") if len(ins) > 3 and ins[3] is not None \
            else list(range(len(starts)))
        steps = ctx.static_ints(ins[4], "input 4 ('steps')") if len(ins) > 4 and ins[4] is not None \
            else [1] * len(starts)
        field = "inputs 1 to 4 (starts, ends, axes, steps)"
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error(f"{field} have different lengths: {len(starts)}, {len(ends)}, {len(axes)}, {len(steps)}")
    axes = check_axes(ctx, axes, rank, "the axes of the slice")
    if 0 in steps:
        raise ctx.error(f"{field}: a step is 0")
    clamp = lambda v: min(max(v, -_BIG), _BIG)
    key = [slice(None)] * rank
    for s, e, a, st in zip(starts, ends, axes, steps):
        key[a] = slice(clamp(s), clamp(e), clamp(st))
    return [array_ops.getitem(x, tuple(key))]


def _wrap_indices(ctx: ImportContext, indices: Tensor, dim: int | None, what: str, check: bool = True) -> Tensor:
    """ONNX lets an index count from the end (-1 is the last); graphc's gather does not. With
    `check`, known indices outside [-dim, dim) are refused (Gather); OneHot leaves them be (they
    give a row of off values)."""
    if indices.static_value is not None:
        value = indices.static_value
        if check and dim is not None and value.size and ((value < -dim).any() or (value >= dim).any()):
            bad = value[(value < -dim) | (value >= dim)].reshape(-1)[0]
            raise ctx.error(f"{what} holds {bad}, outside [{-dim}, {dim}) for an axis of size {dim}")
        if (value < 0).any():
            if dim is None:
                raise ctx.error(f"negative {what} need the size of the gathered axis")
            return ctx.constant(np.where(value < 0, value + dim, value).astype(value.dtype))
        return indices
    if dim is None:
        return indices
    negative = math_ops.less(indices, ctx.scalar_like(0, indices))
    return math_ops.where(negative, math_ops.add(indices, ctx.scalar_like(dim, indices)), indices)


@rule("Gather")
def _gather(ctx, node, ins, attrs):
    params, indices = ins
    axis = check_axis(ctx, int(attrs.get("axis", 0)), rank_of(ctx, params), "attribute 'axis'")
    dim = params.shape[axis]
    return [array_ops.gather(params, _wrap_indices(ctx, indices, dim, "input 1 ('indices')"), axis=axis)]


@rule("OneHot", static=(1, 2))
def _one_hot(ctx, node, ins, attrs):
    indices = ins[0]
    depth_value = scalar(ctx, ctx.static(ins[1], "input 1 ('depth')"), "input 1 ('depth')")
    if not np.isfinite(depth_value) or depth_value < 1:
        raise ctx.error(f"input 1 ('depth') is {depth_value}; it must be a positive number")
    depth = int(depth_value)
    values = np.asarray(ctx.static(ins[2], "input 2 ('values')")).reshape(-1)
    if values.size != 2:
        raise ctx.error(f"input 2 ('values') must hold 2 values (off, on), got {values.size}")
    off, on = values
    rank = rank_of(ctx, indices)
    axis = check_axis(ctx, int(attrs.get("axis", -1)), rank, "attribute 'axis'", extra=1)
    dtype = ins[2].dtype
    ctx.dims([d or 1 for d in indices.shape] + [depth], "the result", dtype.np.itemsize)
    if indices.dtype.is_floating:
        indices = math_ops.cast(indices, int64)
    indices = _wrap_indices(ctx, indices, depth, "input 0 ('indices')", check=False)
    return [array_ops.one_hot(indices, depth, on_value=on.item(), off_value=off.item(), axis=axis, dtype=dtype)]


@rule("Pad", static=(1, 2, 3))
def _pad(ctx, node, ins, attrs):
    x = ins[0]
    rank = rank_of(ctx, x)
    if ctx.opset >= 11:
        field = "input 1 ('pads')"
        pads = ctx.static_ints(ins[1], field)
    else:
        field = "attribute 'pads'"
        pads = list(attrs["pads"])
    value = 0
    if ctx.opset >= 11 and len(ins) > 2 and ins[2] is not None:
        value = scalar(ctx, ctx.static(ins[2], "input 2 ('constant_value')"), "input 2 ('constant_value')").item()
    elif ctx.opset < 11:
        value = attrs.get("value", 0.0)
    if not x.dtype.is_floating and not (isinstance(value, (int, np.integer)) or float(value).is_integer()):
        raise ctx.error(f"the pad value {value!r} does not fit the input's element type {x.dtype.name}")
    axes = list(range(rank))
    if len(ins) > 3 and ins[3] is not None:
        axes = check_axes(ctx, ctx.static_ints(ins[3], "input 3 ('axes')"), rank, "input 3 ('axes')")
    ints(ctx, pads, field, count=2 * len(axes), lo=-_BIG, hi=_BIG)
    mode = one_of(ctx, attrs.get("mode", "constant"), "attribute 'mode'", ("constant", "reflect", "edge", "wrap"))
    pairs = [(0, 0)] * rank
    for i, a in enumerate(axes):
        pairs[a] = (pads[i], pads[i + len(axes)])
    out_dims = []
    for a, (b, e) in enumerate(pairs):
        n = x.shape[a]
        if n is not None and n + b + e < 0:
            raise ctx.error(f"{field} crops {-(b + e)} from axis {a}, of size {n}")
        if (
            mode != "constant"
            and (b > 0 or e > 0)
            and (n is None or n == 0 or (mode == "reflect" and max(b, e) >= n) or (mode == "wrap" and max(b, e) > n))
        ):
            raise ctx.error(
                f"{field} pads axis {a} (size {n}) by {max(b, e)}, more than {mode} mode can "
                f"(the axis must be known and larger)"
            )
        out_dims.append(n + b + e if n is not None else 1)
    ctx.dims(out_dims, "the result", x.dtype.np.itemsize)
    for a, (b, e) in enumerate(pairs):  # negative pads crop
        if b < 0 or e < 0:
            x = _axis_slice(x, a, -b if b < 0 else None, e if e < 0 else None)
    pairs = [(max(b, 0), max(e, 0)) for b, e in pairs]
    if mode == "constant":
        return [array_ops.pad(x, pairs, constant_values=value)]
    if mode == "reflect":
        return [array_ops.pad(x, pairs, mode="REFLECT")]
    for a, (b, e) in enumerate(pairs):  # edge, wrap
        parts = []
        if b:
            parts.append(
                _repeat(_axis_slice(x, a, 0, 1), a, b, rank) if mode == "edge" else _axis_slice(x, a, -b, None)
            )
        parts.append(x)
        if e:
            parts.append(
                _repeat(_axis_slice(x, a, -1, None), a, e, rank) if mode == "edge" else _axis_slice(x, a, 0, e)
            )
        if len(parts) > 1:
            x = array_ops.concat(parts, axis=a)
    return [x]


def _repeat(x: Tensor, axis: int, times: int, rank: int) -> Tensor:
    return array_ops.tile(x, [times if i == axis else 1 for i in range(rank)])


# ----------------------------------------------------------------------------- products
@rule("MatMul")
def _matmul(ctx, node, ins, attrs):
    for k, t in enumerate(ins):
        if rank_of(ctx, t, f"input {k}") < 1:
            raise ctx.error(f"input {k} is a scalar; MatMul needs tensors of rank >= 1")
    return [math_ops.matmul(ins[0], ins[1])]


@rule("Gemm")
def _gemm(ctx, node, ins, attrs):
    a, b = ins[0], ins[1]
    for k, t in enumerate((a, b)):
        if rank_of(ctx, t, f"input {k}") != 2:
            raise ctx.error(f"input {k} has rank {len(t.shape)}; Gemm multiplies matrices (rank 2)")
    y = math_ops.matmul(a, b, transpose_a=bool(attrs.get("transA", 0)), transpose_b=bool(attrs.get("transB", 0)))
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        y = math_ops.multiply(y, ctx.scalar_like(alpha, y))
    if len(ins) > 2 and ins[2] is not None:
        bias = ins[2] if beta == 1.0 else math_ops.multiply(ins[2], ctx.scalar_like(beta, ins[2]))
        y = math_ops.add(y, bias)
    return [y]


@rule("Dropout", static=(1, 2))
def _dropout(ctx, node, ins, attrs):
    x = ins[0]
    training = (
        len(ins) > 2
        and ins[2] is not None
        and bool(scalar(ctx, ctx.static(ins[2], "input 2 ('training_mode')"), "input 2 ('training_mode')"))
    )
    ratio = (
        float(scalar(ctx, ctx.static(ins[1], "input 1 ('ratio')"), "input 1 ('ratio')"))
        if len(ins) > 1 and ins[1] is not None
        else float(attrs.get("ratio", 0.5))
    )
    if training and ratio > 0:
        raise ctx.error("training-mode dropout draws random numbers; graphc imports inference graphs")
    y = apply1("Identity", [x])
    outputs = [y]
    if len(node.output) > 1 and node.output[1]:
        outputs.append(array_ops.fill(array_ops.shape(x), True))
    return outputs
