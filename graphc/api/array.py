"""Module-level shape and indexing functions (TF1 names), and `Tensor.__getitem__`."""
from __future__ import annotations

import builtins
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, GraphcError, InvalidArgumentError, ShapeError
from ..ir.dtypes import as_dtype, float32, from_numpy, int32, int64
from ..ir.shapes import is_fully_defined
from ..ir.tensor import Tensor
from .convert import (
    apply1,
    apply_op,
    as_int_tuple,
    constant,
    convert_operands,
    convert_to_tensor,
    graph_of,
    is_tensor_like,
    to_array,
)
from .math import cast


def _shape_operand(shape: Any, what: str) -> tuple[tuple[int, ...] | None, list[Tensor]]:
    """(static tuple, []) when the shape is known while building, else (None, [shape tensor])."""
    if isinstance(shape, numbers.Integral):
        return (int(shape),), []
    if is_tensor_like(shape):
        t = convert_to_tensor(shape)
        if t.static_value is not None:
            return tuple(int(v) for v in t.static_value.reshape(-1)), []
        return None, [t]
    try:
        items = list(shape)
    except TypeError:
        raise ShapeError(f"{what} must be a list of ints or an int tensor, got {shape!r}") from None
    if all(isinstance(d, numbers.Integral) for d in items):
        return tuple(int(d) for d in items), []
    parts = [cast_to_int32(d) for d in items]
    return _shape_operand(stack(parts), what)


def cast_to_int32(d: Any) -> Tensor:
    t = convert_to_tensor(d)
    if t.shape not in (None, ()):
        raise ShapeError(f"each entry of a shape list must be a scalar, got shape {t.shape}")
    return cast(t, int32)


def reshape(tensor: Any, shape: Any, name: str | None = None) -> Tensor:
    """Same elements, new shape; one entry may be -1. The shape may be a list of ints and
    scalar tensors (e.g. [gc.shape(x)[0], -1]) or a 1-D int tensor."""
    x = convert_to_tensor(tensor)
    with graph_of([x]).as_default():
        static, dynamic = _shape_operand(shape, "reshape shape")
    return apply1("Reshape", [x] + dynamic, {"shape": static}, name)


def transpose(a: Any, perm: Sequence[int] | None = None, name: str | None = None) -> Tensor:
    """Permute dimensions (reverse them when perm is None)."""
    x = convert_to_tensor(a)
    return apply1("Transpose", [x], {"perm": None if perm is None else as_int_tuple(perm, "perm")}, name)


def expand_dims(input: Any, axis: int, name: str | None = None) -> Tensor:
    """Insert a size-1 dimension at axis."""
    return apply1("ExpandDims", [convert_to_tensor(input)], {"axis": int(axis)}, name)


def squeeze(input: Any, axis: Any = None, name: str | None = None, squeeze_dims: Any = None) -> Tensor:
    """Remove size-1 dimensions (all of them, or those in axis; an empty list means all, as in TF)."""
    axis = axis if axis is not None else squeeze_dims
    axes = None if axis is None else as_int_tuple(axis, "axis")
    attrs = {"axis": axes or None}
    return apply1("Squeeze", [convert_to_tensor(input)], attrs, name)


def concat(values: Sequence[Any], axis: int, name: str | None = None) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = convert_operands(list(values))
    return apply1("Concat", tensors, {"axis": int(axis)}, name)


def stack(values: Sequence[Any], axis: int = 0, name: str | None = None) -> Tensor:
    """Stack equal-shaped tensors along a new axis."""
    tensors = convert_operands(list(values))
    return apply1("Pack", tensors, {"axis": int(axis)}, name or "stack")


def unstack(value: Any, num: int | None = None, axis: int = 0, name: str | None = None) -> list[Tensor]:
    """The slices of value along axis, as a list."""
    node = apply_op("Unpack", [convert_to_tensor(value)], {"axis": int(axis), "num": num}, name or "unstack")
    return list(node.outputs)


def split(value: Any, num_or_size_splits: Any, axis: int = 0, name: str | None = None) -> list[Tensor]:
    """Split along axis into that many equal parts, or parts of the given sizes (one may be -1)."""
    x = convert_to_tensor(value)
    if isinstance(num_or_size_splits, numbers.Integral):
        attrs = {"axis": int(axis), "num_split": int(num_or_size_splits), "size_splits": None}
        return list(apply_op("Split", [x], attrs, name).outputs)
    with graph_of([x]).as_default():
        static, dynamic = _shape_operand(num_or_size_splits, "split sizes")
    attrs = {"axis": int(axis), "num_split": None, "size_splits": static}
    return list(apply_op("Split", [x] + dynamic, attrs, name).outputs)


def gather(params: Any, indices: Any, axis: int = 0, batch_dims: int = 0, name: str | None = None) -> Tensor:
    """params[..., indices, ...] along axis; indices must lie in [0, n)."""
    if batch_dims:
        raise GraphcError("gather with batch_dims is not supported yet; use gather per batch or one_hot + matmul")
    p = convert_to_tensor(params)
    with graph_of([p]).as_default():
        i = convert_to_tensor(indices)
    return apply1("Gather", [p, i], {"axis": int(axis)}, name)


def one_hot(indices: Any, depth: int, on_value: Any = None, off_value: Any = None, axis: int | None = None,
            dtype: Any = None, name: str | None = None) -> Tensor:
    """on_value at each index along a new axis of size depth, off_value elsewhere."""
    if dtype is None:
        known = on_value if on_value is not None else off_value
        dtype = float32 if known is None else from_numpy(to_array(known).dtype)
    dtype = as_dtype(dtype)
    attrs = {"depth": int(depth), "on_value": 1 if on_value is None else on_value,
             "off_value": 0 if off_value is None else off_value, "axis": -1 if axis is None else int(axis),
             "dtype": dtype}
    for key in ("on_value", "off_value"):
        attrs[key] = np.asarray(attrs[key], dtype.np).item()
    return apply1("OneHot", [convert_to_tensor(indices)], attrs, name)


def broadcast_to(input: Any, shape: Any, name: str | None = None) -> Tensor:
    """Broadcast to shape, NumPy style."""
    x = convert_to_tensor(input)
    with graph_of([x]).as_default():
        static, dynamic = _shape_operand(shape, "broadcast_to shape")
    return apply1("BroadcastTo", [x] + dynamic, {"shape": static}, name)


def tile(input: Any, multiples: Any, name: str | None = None) -> Tensor:
    """Repeat the tensor multiples[i] times along dimension i."""
    x = convert_to_tensor(input)
    with graph_of([x]).as_default():
        static, dynamic = _shape_operand(multiples, "tile multiples")
    return apply1("Tile", [x] + dynamic, {"multiples": static}, name)


def pad(tensor: Any, paddings: Any, mode: str = "CONSTANT", constant_values: Any = 0,
        name: str | None = None) -> Tensor:
    """Pad with (before, after) per dimension: CONSTANT, REFLECT or SYMMETRIC."""
    x = convert_to_tensor(tensor)
    if isinstance(paddings, Tensor):
        if paddings.static_value is None:
            raise GraphcError("pad paddings must be known while building the graph")
        paddings = paddings.static_value.tolist()
    pads = tuple(tuple(int(v) for v in p) for p in paddings)
    try:
        with np.errstate(all="raise"):
            value = np.asarray(constant_values, x.dtype.np).item()
    except (OverflowError, ValueError, TypeError, FloatingPointError):
        raise DTypeError(f"pad constant_values {constant_values!r} does not fit the tensor's dtype {x.dtype.name}",
                         op_type="Pad") from None
    return apply1("Pad", [x], {"paddings": pads, "mode": str(mode).upper(), "constant_values": value}, name)


def shape(input: Any, out_type: Any = int32, name: str | None = None) -> Tensor:
    """The shape of input as a 1-D int tensor (known while building when the shape is)."""
    return apply1("Shape", [convert_to_tensor(input)], {"out_type": as_dtype(out_type)}, name)


def fill(dims: Any, value: Any, name: str | None = None) -> Tensor:
    """A tensor of shape dims filled with value."""
    graph = graph_of([dims, value])
    with graph.as_default():
        v = convert_to_tensor(value)
        static, dynamic = _shape_operand(dims, "fill dims")
    return apply1("Fill", [v] + dynamic, {"shape": static}, name)


def zeros(shape: Any, dtype: Any = float32, name: str | None = None) -> Tensor:
    """A tensor of zeros."""
    return fill(shape, constant(0, dtype=as_dtype(dtype)), name=name or "zeros")


def ones(shape: Any, dtype: Any = float32, name: str | None = None) -> Tensor:
    """A tensor of ones."""
    return fill(shape, constant(1, dtype=as_dtype(dtype)), name=name or "ones")


def _like(tensor: Any, value: int, dtype: Any, name: str) -> Tensor:
    x = convert_to_tensor(tensor)
    with graph_of([x]).as_default():
        dtype = x.dtype if dtype is None else as_dtype(dtype)
        dims = x.shape if is_fully_defined(x.shape) else shape(x)
        return fill(dims, constant(value, dtype=dtype), name=name)


def zeros_like(tensor: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    """Zeros of tensor's shape (and dtype, unless given)."""
    return _like(tensor, 0, dtype, name or "zeros_like")


def ones_like(tensor: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    """Ones of tensor's shape (and dtype, unless given)."""
    return _like(tensor, 1, dtype, name or "ones_like")


def range(start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None, name: str | None = None) -> Tensor:
    """A constant 1-D tensor [start, start + delta, ...) up to limit (TF's tf.range)."""
    if limit is None:
        start, limit = 0, start
    if delta == 0:
        raise InvalidArgumentError("range delta must not be zero", op_type="Range")
    try:
        values = np.arange(start, limit, delta)
    except (TypeError, ValueError, OverflowError, MemoryError) as err:
        raise InvalidArgumentError(f"range({start!r}, {limit!r}, {delta!r}) cannot be built: {err}",
                                   op_type="Range") from None
    if dtype is None:
        dtype = float32 if values.dtype.kind == "f" else int32
    return constant(values, dtype=dtype, name=name or "range")


def slice(input_: Any, begin: Sequence[int], size: Sequence[int], name: str | None = None) -> Tensor:
    """input_[begin[i] : begin[i] + size[i]] per dimension; size -1 means "to the end"."""
    begin, size = as_int_tuple(begin, "begin"), as_int_tuple(size, "size")
    if len(begin) != len(size):
        raise ShapeError(f"slice begin {begin} and size {size} must have equal lengths")
    spec = tuple(("slice", b, None if s == -1 else b + s, 1) for b, s in zip(begin, size))
    return apply1("StridedSlice", [convert_to_tensor(input_)], {"spec": spec}, name or "Slice")


# --------------------------------------------------------------------------- indexing
def _index_int(v: Any, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, Tensor):
        if v.static_value is None or v.static_value.ndim != 0:
            raise GraphcError(f"slice {what} must be a Python int (or a scalar known while building), got '{v.name}'")
        return int(v.static_value)
    if isinstance(v, numbers.Integral):
        return int(v)
    raise GraphcError(f"slice {what} must be an int or None, got {v!r}")


def _as_int64(t: Tensor) -> Tensor:
    if not t.dtype.is_integer:
        raise GraphcError(f"an index tensor must hold integers, got {t.dtype.name}")
    return t if t.dtype == int64 else apply1("Cast", [t], {"dtype": int64})


def getitem(tensor: Any, key: Any) -> Tensor:
    """NumPy basic indexing: ints, slices (with steps), None and ...; an int tensor or list as
    the only index gathers along axis 0."""
    x = convert_to_tensor(tensor)
    items = key if isinstance(key, tuple) else (key,)
    if len(items) > 1 and all(isinstance(i, Tensor) for i in items):   # Theano's x[gc.range(n), labels]
        from .composite import gather_nd  # composite builds on this module: imported when used

        indices = [convert_to_tensor(i) for i in items]
        return gather_nd(x, stack([_as_int64(i) for i in indices], axis=-1))
    if len(items) == 1 and (is_tensor_like(items[0]) or isinstance(items[0], (list, np.ndarray))):
        with graph_of([x]).as_default():
            idx = convert_to_tensor(items[0])
        if idx.dtype.is_bool:
            raise GraphcError(
                "boolean mask indexing gives a result whose size is only known at run time; graphc "
                "compiles for static shapes", hint="use gc.where(mask, x, 0) or multiply by the mask")
        return gather(x, idx)
    spec: list[tuple] = []
    for k in items:
        if k is None:
            spec.append(("newaxis",))
        elif k is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(k, builtins.slice):
            spec.append(("slice", _index_int(k.start, "start"), _index_int(k.stop, "stop"), _index_int(k.step, "step")))
        elif isinstance(k, (numbers.Integral, Tensor)) and not isinstance(k, bool):
            spec.append(("index", _index_int(k, "index")))
        else:
            raise GraphcError(
                f"unsupported index {k!r}: graphc supports ints, slices, None and ... (and a single "
                "int tensor, which gathers)")
    return apply1("StridedSlice", [x], {"spec": tuple(spec)}, "strided_slice")

