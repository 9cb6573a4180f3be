"""Ops that rearrange or replicate data without arithmetic: reshape, transpose, expand_dims,
squeeze, broadcast_to, tile, pad, fill, shape.

Ops whose target shape may come from a tensor (reshape, broadcast_to, tile, fill) accept it
either as an attribute or as a trailing "shape input". While building, a shape input whose value
is already known (a constant, or gc.shape of a fully known tensor) gives a fully known result;
when compiling, where every shape is concrete, the input is folded into the attribute so that
backends only ever see static shapes.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.dtypes import int32, int64
from ..ir.shapes import Shape, format_shape, is_fully_defined, normalize_axis, num_elements
from ..ir.tensor import Tensor
from .base import OpDef, TensorType, register


def _shape_arg(inputs: Sequence[Tensor], attrs: dict[str, Any], attr: str, index: int) -> tuple | None:
    """The static target from the attribute or the (known) shape input, else None."""
    if attrs[attr] is not None:
        return tuple(attrs[attr])
    if len(inputs) <= index:
        raise ShapeError(f"{attr} must be given")
    t = inputs[index]
    if not t.dtype.is_integer:
        raise DTypeError(f"the {attr} tensor must be int32 or int64, got {t.dtype.name}")
    if t.shape is not None and len(t.shape) != 1:
        raise ShapeError(f"the {attr} tensor must be 1-D, got shape {format_shape(t.shape)}")
    if t.static_value is not None:
        return tuple(int(v) for v in t.static_value)
    return None


def _unknown_of_length(t: Tensor) -> Shape:
    """A shape of unknown dims whose rank is the length of shape tensor t (if known)."""
    if t.shape is None or t.shape[0] is None:
        return None
    return (None,) * t.shape[0]


class _ShapeInputOp(OpDef):
    """Mixin: fold a trailing shape input into attribute `shape_attr` when its value is known."""

    shape_attr = "shape"

    def freeze_shape_inputs(self, values, attrs):
        value = values[self.shape_inputs[0]] if len(values) > self.shape_inputs[0] else None
        if attrs[self.shape_attr] is not None:
            return dict(attrs)
        if value is None:
            return None
        return dict(attrs, **{self.shape_attr: tuple(int(v) for v in value)})

    def target(self, inputs: list[np.ndarray], attrs: dict[str, Any]) -> tuple[int, ...]:
        if attrs[self.shape_attr] is not None:
            return tuple(attrs[self.shape_attr])
        return tuple(int(v) for v in inputs[self.shape_inputs[0]])


def reshape_shape(in_shape: Shape, target: tuple[int, ...]) -> Shape:
    """Resolve one -1 in `target` against `in_shape`; check element counts when known."""
    if any((not isinstance(d, (int, np.integer))) or d < -1 for d in target):
        raise ShapeError(f"reshape target {target} may only hold sizes >= 0 and one -1")
    if list(target).count(-1) > 1:
        raise ShapeError(f"reshape target {target} has more than one -1")
    total = num_elements(in_shape)
    known = math.prod(d for d in target if d != -1)
    if -1 in target:
        if total is None:
            return tuple(None if d == -1 else int(d) for d in target)
        if known == 0 or total % known:
            raise ShapeError(
                f"cannot reshape a tensor of shape {format_shape(in_shape)} ({total} elements) "
                f"into {tuple(target)}: {total} is not a multiple of {known}"
            )
        return tuple(total // known if d == -1 else int(d) for d in target)
    if total is not None and total != known:
        raise ShapeError(
            f"cannot reshape a tensor of shape {format_shape(in_shape)} ({total} elements) "
            f"into {tuple(target)} ({known} elements)"
        )
    return tuple(int(d) for d in target)


@register
class Reshape(_ShapeInputOp):
    """Same elements in row-major order, new shape; one dimension may be -1."""

    name = "Reshape"
    arity = (1, 2)
    attr_defaults = {"shape": None}
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        x = inputs[0]
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            return [(x.dtype, _unknown_of_length(inputs[1]))]
        return [(x.dtype, reshape_shape(x.shape, target))]

    def reference(self, inputs, attrs):
        return np.reshape(inputs[0], self.target(inputs, attrs))


@register
class Transpose(OpDef):
    """Permute dimensions; perm None reverses them."""

    name = "Transpose"
    arity = 1
    attr_defaults = {"perm": None}

    def infer(self, inputs, attrs):
        x = inputs[0]
        if x.shape is None:
            n = len(attrs["perm"]) if attrs["perm"] is not None else None
            return [(x.dtype, None if n is None else (None,) * n)]
        perm = self.perm(len(x.shape), attrs)
        return [(x.dtype, tuple(x.shape[p] for p in perm))]

    @staticmethod
    def perm(ndim: int, attrs: dict[str, Any]) -> tuple[int, ...]:
        if attrs["perm"] is None:
            return tuple(range(ndim))[::-1]
        perm = tuple(attrs["perm"])
        normalized = tuple(normalize_axis(p, ndim, "perm entry") for p in perm) if len(perm) == ndim else ()
        if len(perm) != ndim or sorted(normalized) != list(range(ndim)):
            raise ShapeError(f"perm {perm} is not a permutation of the {ndim} dimensions")
        return normalized

    def reference(self, inputs, attrs):
        x = inputs[0]
        return np.transpose(x, self.perm(x.ndim, attrs))


@register
class ExpandDims(OpDef):
    """Insert a dimension of size 1 at `axis` (-1 appends)."""

    name = "ExpandDims"
    arity = 1
    attr_defaults = {"axis": 0}

    def infer(self, inputs, attrs):
        x = inputs[0]
        if x.shape is None:
            return [(x.dtype, None)]
        axis = normalize_axis(attrs["axis"], len(x.shape) + 1)
        return [(x.dtype, x.shape[:axis] + (1,) + x.shape[axis:])]

    def reference(self, inputs, attrs):
        return np.expand_dims(inputs[0], attrs["axis"])


@register
class Squeeze(OpDef):
    """Remove size-1 dimensions: the listed ones (each must be 1), or all of them."""

    name = "Squeeze"
    arity = 1
    attr_defaults = {"axis": None}

    def infer(self, inputs, attrs):
        x = inputs[0]
        if x.shape is None:
            return [(x.dtype, None)]
        if attrs["axis"] is None:
            if any(d is None for d in x.shape):
                return [(x.dtype, None)]  # which dims are 1 is known only at run time
            return [(x.dtype, tuple(d for d in x.shape if d != 1))]
        axes = {normalize_axis(a, len(x.shape)) for a in attrs["axis"]}
        for a in axes:
            if x.shape[a] not in (1, None):
                raise ShapeError(f"cannot squeeze axis {a} of shape {format_shape(x.shape)}: its size is {x.shape[a]}, not 1")
        return [(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))]

    def reference(self, inputs, attrs):
        axis = attrs["axis"]
        return np.squeeze(inputs[0], axis=None if axis is None else tuple(axis))


def broadcast_to_shape(in_shape: Shape, target: tuple[int, ...]) -> Shape:
    if in_shape is None:
        return tuple(target)
    if len(in_shape) > len(target):
        raise ShapeError(f"cannot broadcast shape {format_shape(in_shape)} to the lower-rank {tuple(target)}")
    for d, t in zip(in_shape[::-1], target[::-1]):
        if d is not None and d != 1 and d != t:
            raise ShapeError(f"cannot broadcast shape {format_shape(in_shape)} to {tuple(target)}")
    return tuple(int(t) for t in target)


@register
class BroadcastTo(_ShapeInputOp):
    """Repeat size-1 (or missing leading) dimensions to reach `shape`, NumPy style."""

    name = "BroadcastTo"
    arity = (1, 2)
    attr_defaults = {"shape": None}
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        x = inputs[0]
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            return [(x.dtype, _unknown_of_length(inputs[1]))]
        return [(x.dtype, broadcast_to_shape(x.shape, target))]

    def reference(self, inputs, attrs):
        return np.broadcast_to(inputs[0], self.target(inputs, attrs))


@register
class Tile(_ShapeInputOp):
    """Repeat the whole tensor `multiples[i]` times along dimension i."""

    name = "Tile"
    arity = (1, 2)
    attr_defaults = {"multiples": None}
    shape_inputs = (1,)
    shape_attr = "multiples"

    def infer(self, inputs, attrs):
        x = inputs[0]
        mult = _shape_arg(inputs, attrs, "multiples", 1)
        if mult is None or x.shape is None:
            rank = len(mult) if mult is not None else (None if x.shape is None else len(x.shape))
            return [(x.dtype, None if rank is None else (None,) * rank)]
        if len(mult) != len(x.shape) or any(m < 0 for m in mult):
            raise ShapeError(f"multiples {mult} must hold one non-negative int per dimension of {format_shape(x.shape)}")
        return [(x.dtype, tuple(None if d is None else d * m for d, m in zip(x.shape, mult)))]

    def reference(self, inputs, attrs):
        return np.tile(inputs[0], self.target(inputs, attrs))


_PAD_MODES = ("CONSTANT", "REFLECT", "SYMMETRIC")


@register
class Pad(OpDef):
    """Pad each dimension by (before, after): with a constant, or mirrored (REFLECT excludes the
    edge, SYMMETRIC repeats it)."""

    name = "Pad"
    arity = 1
    attr_defaults = {"paddings": (), "mode": "CONSTANT", "constant_values": 0}

    def infer(self, inputs, attrs):
        x = inputs[0]
        mode = attrs["mode"]
        if mode not in _PAD_MODES:
            raise ShapeError(f"pad mode must be one of {_PAD_MODES}, got {mode!r}")
        pads = attrs["paddings"]
        if any(len(p) != 2 or p[0] < 0 or p[1] < 0 for p in pads):
            raise ShapeError(f"paddings must be non-negative (before, after) pairs, got {pads}")
        if x.shape is None:
            return [(x.dtype, (None,) * len(pads))]
        if len(pads) != len(x.shape):
            raise ShapeError(f"paddings has {len(pads)} entries for a tensor of rank {len(x.shape)}")
        for (b, a), d in zip(pads, x.shape):
            if d is None:
                continue
            limit = d - 1 if mode == "REFLECT" else d
            if mode != "CONSTANT" and max(a, b) > limit:
                raise ShapeError(f"{mode} padding of {max(a, b)} is too large for a dimension of size {d}")
        return [(x.dtype, tuple(None if d is None else d + b + a for (b, a), d in zip(pads, x.shape)))]

    def reference(self, inputs, attrs):
        x = inputs[0]
        mode = attrs["mode"]
        pads = [tuple(p) for p in attrs["paddings"]]
        if mode == "CONSTANT":
            return np.pad(x, pads, mode="constant", constant_values=np.asarray(attrs["constant_values"], x.dtype))
        return np.pad(x, pads, mode=mode.lower())


@register
class Fill(_ShapeInputOp):
    """A tensor of `shape` filled with the scalar input `value`."""

    name = "Fill"
    arity = (1, 2)
    attr_defaults = {"shape": None}
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        value = inputs[0]
        if value.shape not in (None, ()):
            raise ShapeError(f"fill value must be a scalar, got shape {format_shape(value.shape)}")
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            return [(value.dtype, _unknown_of_length(inputs[1]))]
        if any(d < 0 for d in target):
            raise ShapeError(f"fill shape {target} has a negative size")
        return [(value.dtype, tuple(target))]

    def reference(self, inputs, attrs):
        return np.full(self.target(inputs, attrs), inputs[0], dtype=inputs[0].dtype)


@register
class Shape_(OpDef):
    """The shape of a tensor as a 1-D int tensor (known while building when the shape is)."""

    name = "Shape"
    arity = 1
    attr_defaults = {"out_type": int32}

    def infer(self, inputs, attrs):
        if attrs["out_type"] not in (int32, int64):
            raise DTypeError(f"shape out_type must be int32 or int64, got {attrs['out_type']}")
        x = inputs[0]
        return [(attrs["out_type"], (None if x.shape is None else len(x.shape),))]

    def static_values(self, node):
        shape = node.inputs[0].shape
        return [np.array(shape, dtype=node.attrs["out_type"].np)] if is_fully_defined(shape) else None

    def reference(self, inputs, attrs):
        return np.array(inputs[0].shape, dtype=attrs["out_type"].np)
