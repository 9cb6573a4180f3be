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
from ..ir.shapes import Shape, format_shape, is_fully_defined, normalize_axes, normalize_axis, num_elements
from ..ir.tensor import Tensor
from . import attrs as attr_rules
from .base import OpDef, register, register_gradient

# Ops whose output is its input read through an index map, with no arithmetic: fusion reads
# through them (graphc.passes.fuse) and lowering maps a read through them instead of copying
# (graphc.lower.reads). Defined here, once, for both.
VIEW_OPS = frozenset({"Reshape", "Transpose", "BroadcastTo", "StridedSlice", "ExpandDims", "Squeeze"})


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


class _DimOf:
    """An entry of a shape tensor known to equal dimension `index` of tensor `of` (unknown while
    building), as TF's shape inference tracks symbolic dimensions."""

    __slots__ = ("of", "index")

    def __init__(self, of: Tensor, index: int) -> None:
        self.of = of
        self.index = index


def _scalar_entry(t: Tensor) -> int | _DimOf | None:
    """What is known while building of a scalar int tensor used as a shape entry."""
    if t.static_value is not None:
        return int(t.static_value)
    node = t.node
    if node.type == "Cast" and node.inputs[0].dtype.is_integer:
        return _scalar_entry(node.inputs[0])
    if node.type == "StridedSlice" and node.inputs[0].node.type == "Shape":
        spec = node.attrs["spec"]
        x = node.inputs[0].node.inputs[0]
        if len(spec) == 1 and spec[0][0] == "index" and x.shape is not None and -len(x.shape) <= spec[0][1] < len(x.shape):
            i = spec[0][1] % len(x.shape)
            return x.shape[i] if x.shape[i] is not None else _DimOf(x, i)
    return None


def _partial_entries(t: Tensor) -> list[int | _DimOf | None] | None:
    """The entries of a 1-D shape tensor as far as they are known while building (TF's
    constant_value_as_shape): from gc.shape(x), from a stack of scalars such as
    [gc.shape(x)[0], -1], and from concatenations of those; None when even the length is unknown."""
    if t.static_value is not None:
        return [int(v) for v in t.static_value.reshape(-1)]
    node = t.node
    if node.type == "Shape":
        x = node.inputs[0]
        if x.shape is None:
            return None
        return [d if d is not None else _DimOf(x, i) for i, d in enumerate(x.shape)]
    if node.type == "Cast" and node.inputs[0].dtype.is_integer:
        return _partial_entries(node.inputs[0])
    if node.type == "Pack" and node.attrs["axis"] == 0 and all(i.shape == () for i in node.inputs):
        return [_scalar_entry(i) for i in node.inputs]
    if node.type == "Concat" and node.attrs["axis"] in (0, -1) and t.shape is not None and len(t.shape) == 1:
        parts = [_partial_entries(i) for i in node.inputs]
        if all(p is not None for p in parts):
            return [e for p in parts for e in p]  # type: ignore[union-attr]
    if t.shape is None or len(t.shape) != 1 or t.shape[0] is None:
        return None
    return [None] * t.shape[0]


def _unknown_of_length(t: Tensor) -> Shape:
    """The shape a shape tensor t describes, as far as it is known while building: its known
    non-negative entries, None elsewhere (and None when even its length is unknown)."""
    entries = _partial_entries(t)
    if entries is None:
        return None
    return tuple(e if isinstance(e, int) and e >= 0 else None for e in entries)


def reshape_partial_shape(x: Tensor, entries: list[int | _DimOf | None]) -> Shape:
    """Reshape's static result for a target only partly known while building.

    Unknown entries stay unknown. A -1 is resolved when every other target entry is a known
    size or a dimension of x itself (as in reshape(x, [gc.shape(x)[0], -1])), and x's remaining
    dimensions are known: it is then the product of those over the product of the known sizes.
    """
    known = [e for e in entries if isinstance(e, int)]
    if any(e < -1 for e in known):
        raise ShapeError(f"reshape target may only hold sizes >= 0 and one -1, got {known}")
    if known.count(-1) > 1:
        raise ShapeError("reshape target has more than one -1")
    result = [e if isinstance(e, int) and e >= 0 else None for e in entries]
    if -1 not in known or x.shape is None or any(e is None for e in entries):
        return tuple(result)
    matched: set[int] = set()
    for e in entries:
        if isinstance(e, _DimOf):
            if e.of is not x or e.index in matched:
                return tuple(result)
            matched.add(e.index)
    rest_in = [d for i, d in enumerate(x.shape) if i not in matched]
    rest_target = [e for e in known if e != -1]
    if any(d is None for d in rest_in) or 0 in rest_target:
        return tuple(result)
    numerator, denominator = math.prod(rest_in), math.prod(rest_target)  # type: ignore[arg-type]
    if numerator == 0 or numerator % denominator:
        return tuple(result)  # left to the check made when the shapes are concrete
    return tuple(numerator // denominator if e == -1 else r for e, r in zip(entries, result))


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
        if known == 0:
            # TF's rule for empty tensors: the -1 takes the product of the input's non-zero
            # dims over the target's non-zero sizes, so reshape(x, [shape(x)[0], -1]) also
            # works for a batch of 0 ((0, 3, 4) -> (0, 12)).
            if total != 0:
                raise ShapeError(
                    f"cannot reshape a tensor of shape {format_shape(in_shape)} ({total} elements) "
                    f"into {tuple(target)} (0 elements)"
                )
            nonzero_in = math.prod(d for d in in_shape if d != 0)  # type: ignore[union-attr]
            nonzero_target = math.prod(d for d in target if d not in (0, -1))
            return tuple(nonzero_in // nonzero_target if d == -1 else int(d) for d in target)
        if total % known:
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
    attr_checks = {"shape": attr_rules.int_tuple(low=-1, optional=True, max_length=attr_rules.MAX_RANK)}
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        x = inputs[0]
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            entries = _partial_entries(inputs[1])
            return [(x.dtype, None if entries is None else reshape_partial_shape(x, entries))]
        return [(x.dtype, reshape_shape(x.shape, target))]

    def reference(self, inputs, attrs):
        x = inputs[0]
        return np.reshape(x, reshape_shape(x.shape, self.target(inputs, attrs)))


@register
class Transpose(OpDef):
    """Permute dimensions; perm None reverses them."""

    name = "Transpose"
    arity = 1
    attr_defaults = {"perm": None}
    attr_checks = {"perm": attr_rules.int_tuple(low=-attr_rules.MAX_RANK, high=attr_rules.MAX_RANK - 1, optional=True, max_length=attr_rules.MAX_RANK)}

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
    """Insert size-1 dimensions at `axis`: an int or a tuple of positions in the result, as
    np.expand_dims (-1 appends)."""

    name = "ExpandDims"
    arity = 1
    attr_defaults = {"axis": 0}
    attr_checks = {"axis": attr_rules.axes(optional=False)}

    def infer(self, inputs, attrs):
        x = inputs[0]
        if x.shape is None:
            return [(x.dtype, None)]
        axes = (attrs["axis"],) if isinstance(attrs["axis"], int) else tuple(attrs["axis"])
        ndim = len(x.shape) + len(axes)
        positions = set(normalize_axes(axes, ndim))
        dims = iter(x.shape)
        return [(x.dtype, tuple(1 if i in positions else next(dims) for i in range(ndim)))]

    def reference(self, inputs, attrs):
        axis = attrs["axis"]
        return np.expand_dims(inputs[0], axis if isinstance(axis, int) else tuple(axis))


@register
class Squeeze(OpDef):
    """Remove size-1 dimensions: the listed ones (each must be 1), or all of them."""

    name = "Squeeze"
    arity = 1
    attr_defaults = {"axis": None}
    attr_checks = {
        "axis": attr_rules.int_tuple(
            low=-attr_rules.MAX_RANK, high=attr_rules.MAX_RANK - 1, optional=True, max_length=attr_rules.MAX_RANK
        )
    }

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
                raise ShapeError(
                    f"cannot squeeze axis {a} of shape {format_shape(x.shape)}: its size is {x.shape[a]}, not 1"
                )
        return [(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in axes))]

    def reference(self, inputs, attrs):
        axis = attrs["axis"]
        return np.squeeze(inputs[0], axis=None if axis is None else tuple(axis))


def broadcast_to_shape(in_shape: Shape, target: tuple[int, ...]) -> Shape:
    if any(t < 0 for t in target):
        raise ShapeError(f"cannot broadcast to {tuple(target)}: it has a negative size")
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
    attr_checks = {"shape": attr_rules.shape(allow_unknown=False)}
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
    attr_checks = {"multiples": attr_rules.shape(allow_unknown=False)}
    shape_inputs = (1,)
    shape_attr = "multiples"

    def infer(self, inputs, attrs):
        x = inputs[0]
        mult = _shape_arg(inputs, attrs, "multiples", 1)
        if mult is None or x.shape is None:
            rank = len(mult) if mult is not None else (None if x.shape is None else len(x.shape))
            return [(x.dtype, None if rank is None else (None,) * rank)]
        if len(mult) != len(x.shape) or any(m < 0 for m in mult):
            raise ShapeError(
                f"multiples {mult} must hold one non-negative int per dimension of {format_shape(x.shape)}"
            )
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
    attr_checks = {
        "paddings": attr_rules.pairs(),
        "mode": attr_rules.string(_PAD_MODES),
        "constant_values": attr_rules.scalar(),
    }

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
            if mode != "CONSTANT" and max(a, b) > 0 and max(a, b) > limit:
                raise ShapeError(f"{mode} padding of {max(a, b)} is too large for a dimension of size {d}")
        return [(x.dtype, tuple(None if d is None else d + b + a for (b, a), d in zip(pads, x.shape)))]

    def reference(self, inputs, attrs):
        x = inputs[0]
        mode = attrs["mode"]
        pads = [tuple(p) for p in attrs["paddings"]]
        if x.ndim == 0:
            return x.copy()  # a scalar has nothing to pad (np.pad refuses an empty pad_width)
        if mode == "CONSTANT":
            return np.pad(x, pads, mode="constant", constant_values=np.asarray(attrs["constant_values"], x.dtype))
        return np.pad(x, pads, mode=mode.lower())


@register
class Fill(_ShapeInputOp):
    """A tensor of `shape` filled with the scalar input `value`."""

    name = "Fill"
    arity = (1, 2)
    attr_defaults = {"shape": None}
    attr_checks = {"shape": attr_rules.shape(allow_unknown=False)}
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
    attr_checks = {"out_type": attr_rules.dtype()}

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


# --------------------------------------------------------------------------- gradient rules
def _reshape_back(build, node, g):
    return [build.reshape(g, build.shape_arg(node.inputs[0]))] + [None] * (len(node.inputs) - 1)


for _name in ("Reshape", "ExpandDims", "Squeeze"):
    register_gradient(_name)(_reshape_back)


@register_gradient("Transpose")
def _transpose_gradient(build, node, g):
    perm = node.attrs["perm"]
    if perm is None:
        return [build.transpose(g)]
    ndim = len(perm)
    inverse = [0] * ndim
    for i, p in enumerate(perm):
        inverse[p % ndim] = i
    return [build.transpose(g, inverse)]


@register_gradient("BroadcastTo")
def _broadcast_to_gradient(build, node, g):
    return [build.unbroadcast(g, node.inputs[0])] + [None] * (len(node.inputs) - 1)


@register_gradient("Tile")
def _tile_gradient(build, node, g):
    """Fold g into (multiple_0, dim_0, multiple_1, dim_1, ...) and sum the multiples away."""
    x = node.inputs[0]
    multiples = node.attrs["multiples"]
    if multiples is None or x.ndim is None:
        raise ShapeError("the gradient of tile needs static multiples and an input of known rank")
    dims = build.shape_arg(x)
    if isinstance(dims, tuple):
        folded = [v for m, d in zip(multiples, dims) for v in (m, d)]
    else:
        folded = [v for i, m in enumerate(multiples) for v in (m, dims[i])]
    summed = build.apply1(
        "Sum", [build.reshape(g, folded)], {"axis": tuple(range(0, 2 * len(multiples), 2)), "keepdims": False}
    )
    return [summed] + [None] * (len(node.inputs) - 1)


def _mirror_grad(build, g, axis: int, before: int, after: int, n: int, reflect: bool):
    """Gradient of REFLECT / SYMMETRIC padding along one axis: the centre of g plus each border,
    flipped and shifted onto the elements it copies (REFLECT skips the edge element)."""

    def along(start, stop, step, t):
        spec = (("slice", None, None, None),) * axis + (("slice", start, stop, step), ("ellipsis",))
        return build.apply1("StridedSlice", [t], {"spec": spec})

    def pad_along(t, lo, hi):
        return build.pad(t, [(lo, hi) if i == axis else (0, 0) for i in range(g.ndim)])

    shift = 1 if reflect else 0
    total = along(before, -after if after else None, 1, g)
    if before:  # border element j copies x[before - j - 1 + shift]
        total = build.add(total, pad_along(along(None, None, -1, along(0, before, 1, g)), shift, n - before - shift))
    if after:  # border element j copies x[n - 1 - shift - j]
        total = build.add(total, pad_along(along(None, None, -1, along(-after, None, 1, g)), n - after - shift, shift))
    return total


@register_gradient("Pad")
def _pad_gradient(build, node, g):
    x = node.inputs[0]
    pads = node.attrs["paddings"]
    mode = node.attrs["mode"]
    if mode == "CONSTANT":
        spec = tuple(("slice", lo, -hi if hi else None, 1) for lo, hi in pads)
        return [build.apply1("StridedSlice", [g], {"spec": spec})]
    if x.shape is None or any(d is None for (lo, hi), d in zip(pads, x.shape) if lo or hi):
        raise ShapeError(f"the gradient of {mode} padding needs the padded dimensions' sizes")
    for axis, ((lo, hi), n) in enumerate(zip(pads, x.shape)):
        if lo or hi:
            g = _mirror_grad(build, g, axis, lo, hi, n, mode == "REFLECT")
    return [g]


@register_gradient("Fill")
def _fill_gradient(build, node, g):
    value = node.inputs[0]
    return [build.cast(build.reduce_sum(g), value.dtype)] + [None] * (len(node.inputs) - 1)
