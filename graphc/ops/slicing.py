"""Ops that select or join pieces: basic indexing (strided slice), concat, stack, unstack,
split, gather and one_hot.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DTypeError, InvalidArgumentError, ShapeError
from ..ir.dtypes import as_dtype, float32, promote
from ..ir.shapes import Shape, compatible, format_shape, normalize_axis, same_shapes_or_raise
from ..ir.tensor import Tensor
from . import attrs as attr_rules
from .base import OpDef, register, register_gradient
from .shape_ops import _ShapeInputOp, _shape_arg, _unknown_of_length

# --------------------------------------------------------------------------- indexing
# A strided-slice spec is a tuple of entries, one per index item of x[...]:
#   ("slice", start, stop, step)  start/stop/step may be None, as in Python
#   ("index", i)                  removes the dimension
#   ("newaxis",)                  inserts a dimension of size 1
#   ("ellipsis",)                 as many full slices as needed


def expand_spec(spec: tuple, ndim: int) -> list[tuple]:
    """Replace the ellipsis by full slices and pad with full slices up to rank `ndim`."""
    consuming = sum(1 for e in spec if e[0] in ("slice", "index"))
    if sum(1 for e in spec if e[0] == "ellipsis") > 1:
        raise ShapeError("an index can only have a single ellipsis ('...')")
    if consuming > ndim:
        raise ShapeError(f"too many indices ({consuming}) for a tensor of rank {ndim}")
    full = ("slice", None, None, None)
    out: list[tuple] = []
    seen_ellipsis = False
    for e in spec:
        if e[0] == "ellipsis":
            out.extend([full] * (ndim - consuming))
            seen_ellipsis = True
        else:
            out.append(e)
    if not seen_ellipsis:
        out.extend([full] * (ndim - consuming))
    return out


def sliced_shape(shape: Shape, spec: tuple) -> Shape:
    if shape is None:
        return None
    result: list[int | None] = []
    dims = iter(shape)
    for e in expand_spec(spec, len(shape)):
        if e[0] == "newaxis":
            result.append(1)
            continue
        d = next(dims)
        if e[0] == "index":
            if d is not None and not -d <= e[1] < d:
                raise ShapeError(f"index {e[1]} is out of bounds for a dimension of size {d}")
            continue
        _, start, stop, step = e
        if step == 0:
            raise ShapeError("slice step cannot be zero")
        result.append(None if d is None else len(range(*slice(start, stop, step).indices(d))))
    return tuple(result)


def spec_to_numpy_index(spec: tuple) -> tuple:
    items: list[Any] = []
    for e in spec:
        kind = e[0]
        if kind == "slice":
            items.append(slice(e[1], e[2], e[3]))
        elif kind == "index":
            items.append(e[1])
        elif kind == "newaxis":
            items.append(None)
        else:
            items.append(Ellipsis)
    return tuple(items)


@register
class StridedSlice(OpDef):
    """NumPy basic indexing x[1:3, :, None, ..., -1] (ints, slices with steps, None, ...)."""

    name = "StridedSlice"
    arity = 1
    attr_defaults = {"spec": ()}
    attr_checks = {"spec": attr_rules.slice_spec()}

    def infer(self, inputs, attrs):
        x = inputs[0]
        return [(x.dtype, sliced_shape(x.shape, attrs["spec"]))]

    def reference(self, inputs, attrs):
        return np.asarray(inputs[0][spec_to_numpy_index(attrs["spec"])])


# --------------------------------------------------------------------------- joining
@register
class Concat(OpDef):
    """Join tensors along an existing axis (dtypes promote as in np.concatenate)."""

    name = "Concat"
    arity = None
    attr_defaults = {"axis": 0}
    attr_checks = {"axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError)}

    def infer(self, inputs, attrs):
        if not inputs:
            raise ShapeError("concat needs at least one tensor")
        dtype = promote(*(t.dtype for t in inputs))
        ranks = {len(t.shape) for t in inputs if t.shape is not None}
        if len(ranks) > 1:
            raise ShapeError(f"concat inputs must have equal ranks, got shapes {[format_shape(t.shape) for t in inputs]}")
        if not ranks:
            return [(dtype, None)]
        ndim = ranks.pop()
        if ndim == 0:
            raise ShapeError("concat cannot join scalars; use stack")
        axis = normalize_axis(attrs["axis"], ndim)
        others = [tuple(d for i, d in enumerate(t.shape) if i != axis) if t.shape is not None else None for t in inputs]
        rest = same_shapes_or_raise(others, f"concat inputs (outside axis {axis})")
        sizes = [t.shape[axis] if t.shape is not None else None for t in inputs]
        total = None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]
        rest = rest if rest is not None else (None,) * (ndim - 1)
        return [(dtype, tuple(rest[:axis]) + (total,) + tuple(rest[axis:]))]

    def reference(self, inputs, attrs):
        dtype = np.result_type(*inputs)
        return np.concatenate([x.astype(dtype, copy=False) for x in inputs], axis=attrs["axis"])


@register
class Pack(OpDef):
    """Stack equal-shaped tensors along a new axis (TF's Pack, gc.stack)."""

    name = "Pack"
    arity = None
    attr_defaults = {"axis": 0}
    attr_checks = {"axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError)}

    def infer(self, inputs, attrs):
        if not inputs:
            raise ShapeError("stack needs at least one tensor")
        dtype = promote(*(t.dtype for t in inputs))
        shape = same_shapes_or_raise([t.shape for t in inputs], "stacked tensors")
        if shape is None:
            return [(dtype, None)]
        axis = normalize_axis(attrs["axis"], len(shape) + 1)
        return [(dtype, shape[:axis] + (len(inputs),) + shape[axis:])]

    def reference(self, inputs, attrs):
        dtype = np.result_type(*inputs)
        return np.stack([x.astype(dtype, copy=False) for x in inputs], axis=attrs["axis"])


@register
class Unpack(OpDef):
    """Split a tensor along `axis` into `num` tensors without that axis (gc.unstack)."""

    name = "Unpack"
    arity = 1
    attr_defaults = {"axis": 0, "num": None}
    attr_checks = {
        "axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError),
        "num": attr_rules.integer(0, 1 << 20, optional=True, kind=ShapeError),
    }

    def infer(self, inputs, attrs):
        x = inputs[0]
        if x.shape is None:
            if attrs["num"] is None:
                raise ShapeError("unstack of a tensor of unknown rank needs num=")
            return [(x.dtype, None)] * attrs["num"]
        axis = normalize_axis(attrs["axis"], len(x.shape))
        num = x.shape[axis] if attrs["num"] is None else attrs["num"]
        if num is None:
            raise ShapeError(
                f"unstack along axis {axis} of shape {format_shape(x.shape)} needs num= (the size is unknown)"
            )
        if x.shape[axis] not in (None, num):
            raise ShapeError(f"unstack num={num} but axis {axis} has size {x.shape[axis]}")
        rest = x.shape[:axis] + x.shape[axis + 1 :]
        return [(x.dtype, rest)] * num

    def reference(self, inputs, attrs):
        x = inputs[0]
        return [np.take(x, i, axis=attrs["axis"]) for i in range(x.shape[attrs["axis"]])]


@register
class Split(_ShapeInputOp):
    """Split along `axis` into `num_split` equal parts or parts of `size_splits` (one may be -1).
    While building, the sizes may come from a 1-D int tensor input (folded when compiling)."""

    name = "Split"
    arity = (1, 2)
    attr_defaults = {"axis": 0, "num_split": None, "size_splits": None}
    attr_checks = {
        "axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError),
        "num_split": attr_rules.integer(1, 1 << 20, optional=True, kind=ShapeError),
        "size_splits": attr_rules.int_tuple(low=-1, optional=True, max_length=1 << 20),
    }
    shape_inputs = (1,)
    shape_attr = "size_splits"

    @staticmethod
    def sizes(dim: int | None, attrs: dict[str, Any]) -> list[int | None]:
        n, sizes = attrs["num_split"], attrs["size_splits"]
        if (n is None) == (sizes is None):
            raise ShapeError("split needs either a number of parts or a list of sizes")
        if n is not None:
            if n < 1:
                raise ShapeError(f"split into {n} parts is not possible")
            if dim is None:
                return [None] * n
            if dim % n:
                raise ShapeError(f"a dimension of size {dim} does not split evenly into {n} parts")
            return [dim // n] * n
        sizes = list(sizes)
        if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
            raise ShapeError(f"split sizes {sizes} may hold one -1 and otherwise sizes >= 0")
        if dim is None:
            return [None if s == -1 else s for s in sizes]
        known = sum(s for s in sizes if s != -1)
        if -1 in sizes:
            if known > dim:
                raise ShapeError(f"split sizes {sizes} exceed the dimension size {dim}")
            sizes[sizes.index(-1)] = dim - known
        elif known != dim:
            raise ShapeError(f"split sizes {sizes} add up to {known}, not to the dimension size {dim}")
        return sizes

    def _attrs(self, inputs: Sequence[Any], attrs: dict[str, Any]) -> dict[str, Any] | int:
        """attrs with the sizes from a known sizes input, or the number of parts if unknown."""
        if attrs["size_splits"] is not None or attrs["num_split"] is not None or len(inputs) < 2:
            return attrs
        t = inputs[1]
        value = t.static_value if isinstance(t, Tensor) else t
        if value is not None:
            return dict(attrs, size_splits=tuple(int(v) for v in np.asarray(value).reshape(-1)))
        if t.shape is None or t.shape[0] is None:
            raise ShapeError("split needs to know how many parts it makes while building")
        return t.shape[0]

    def infer(self, inputs, attrs):
        x = inputs[0]
        full = self._attrs(inputs, attrs)
        if isinstance(full, int):
            if x.shape is None:
                return [(x.dtype, None)] * full
            axis = normalize_axis(attrs["axis"], len(x.shape))
            return [(x.dtype, x.shape[:axis] + (None,) + x.shape[axis + 1 :])] * full
        if x.shape is None:
            return [(x.dtype, None)] * len(self.sizes(None, full))
        axis = normalize_axis(attrs["axis"], len(x.shape))
        return [(x.dtype, x.shape[:axis] + (s,) + x.shape[axis + 1 :]) for s in self.sizes(x.shape[axis], full)]

    def reference(self, inputs, attrs):
        x = inputs[0]
        full = self._attrs(inputs, attrs)
        sizes = self.sizes(x.shape[attrs["axis"]], full)
        return np.split(x, np.cumsum(sizes)[:-1], axis=attrs["axis"])


# --------------------------------------------------------------------------- gathering
@register
class Gather(OpDef):
    """params[..., indices, ...] along `axis`; an index outside [0, n) is an error when run."""

    name = "Gather"
    arity = 2
    attr_defaults = {"axis": 0}
    attr_checks = {"axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError)}

    def infer(self, inputs, attrs):
        params, indices = inputs
        if not indices.dtype.is_integer:
            raise DTypeError(f"gather indices must be int32 or int64, got {indices.dtype.name}")
        if params.shape is None or indices.shape is None:
            return [(params.dtype, None)]
        if not params.shape:
            raise ShapeError("gather needs params of rank >= 1")
        axis = normalize_axis(attrs["axis"], len(params.shape))
        return [(params.dtype, params.shape[:axis] + indices.shape + params.shape[axis + 1 :])]

    def reference(self, inputs, attrs):
        params, indices = inputs
        axis = attrs["axis"] % params.ndim
        n = params.shape[axis]
        bad = (indices < 0) | (indices >= n)
        if np.any(bad):
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidArgumentError(f"indices{list(where)} = {int(indices[where])} is not in [0, {n})")
        return np.take(params, indices, axis=axis)


@register
class OneHot(OpDef):
    """on_value where indices == position along a new axis of size depth, else off_value.
    Indices outside [0, depth) give a row of off_value (as TF does)."""

    name = "OneHot"
    arity = 1
    attr_defaults = {"depth": None, "on_value": 1, "off_value": 0, "axis": -1, "dtype": float32}
    attr_checks = {
        "depth": attr_rules.integer(0, (1 << 31) - 1, kind=ShapeError),
        "on_value": attr_rules.scalar(),
        "off_value": attr_rules.scalar(),
        "axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError),
        "dtype": attr_rules.dtype(),
    }

    def infer(self, inputs, attrs):
        indices = inputs[0]
        if not indices.dtype.is_integer:
            raise DTypeError(f"one_hot indices must be int32 or int64, got {indices.dtype.name}")
        depth = attrs["depth"]
        if not isinstance(depth, int) or depth < 0:
            raise ShapeError(f"one_hot depth must be a non-negative int, got {depth!r}")
        dtype = as_dtype(attrs["dtype"])
        if indices.shape is None:
            return [(dtype, None)]
        axis = normalize_axis(attrs["axis"], len(indices.shape) + 1)
        return [(dtype, indices.shape[:axis] + (depth,) + indices.shape[axis:])]

    def reference(self, inputs, attrs):
        indices = inputs[0]
        dtype = as_dtype(attrs["dtype"]).np
        hot = indices[..., None] == np.arange(attrs["depth"])
        out = np.where(hot, np.asarray(attrs["on_value"], dtype), np.asarray(attrs["off_value"], dtype))
        return np.moveaxis(out, -1, attrs["axis"]) if attrs["axis"] != -1 else out


# --------------------------------------------------------------------------- gradient helpers
@register
class StridedSliceGrad(_ShapeInputOp):
    """Zeros of `shape` with g written where StridedSlice(spec) read: the gradient of indexing."""

    name = "StridedSliceGrad"
    arity = (1, 2)
    attr_defaults = {"spec": (), "shape": None}
    attr_checks = {"spec": attr_rules.slice_spec(), "shape": attr_rules.shape(allow_unknown=False)}
    shape_inputs = (1,)

    def infer(self, inputs, attrs):
        g = inputs[0]
        target = _shape_arg(inputs, attrs, "shape", 1)
        if target is None:
            return [(g.dtype, _unknown_of_length(inputs[1]))]
        if any(d < 0 for d in target):
            raise ShapeError(f"slice gradient target shape {tuple(target)} has a negative size")
        expected = sliced_shape(tuple(target), attrs["spec"])
        if not compatible(expected, g.shape):
            raise ShapeError(f"slice gradient of shape {format_shape(g.shape)} does not match the slice {expected}")
        return [(g.dtype, tuple(target))]

    def reference(self, inputs, attrs):
        g = inputs[0]
        out = np.zeros(self.target(inputs, attrs), dtype=g.dtype)
        out[spec_to_numpy_index(attrs["spec"])] = g
        return out


@register
class GatherGrad(_ShapeInputOp):
    """Zeros of `shape` with g added at the gathered positions (repeated indices add up):
    the gradient of gather."""

    name = "GatherGrad"
    arity = (2, 3)
    attr_defaults = {"axis": 0, "shape": None}
    attr_checks = {
        "axis": attr_rules.integer(-attr_rules.MAX_RANK, attr_rules.MAX_RANK - 1, kind=ShapeError),
        "shape": attr_rules.shape(allow_unknown=False),
    }
    shape_inputs = (2,)

    def infer(self, inputs, attrs):
        g, indices = inputs[0], inputs[1]
        if not indices.dtype.is_integer:
            raise DTypeError(f"gather indices must be int32 or int64, got {indices.dtype.name}")
        target = _shape_arg(inputs, attrs, "shape", 2)
        if target is None:
            partial = _unknown_of_length(inputs[2])
            if partial is not None:  # the rank is known: the axis and g's rank must fit it
                axis = normalize_axis(attrs["axis"], len(partial))
                if (
                    g.shape is not None
                    and indices.shape is not None
                    and len(g.shape) != len(partial) - 1 + len(indices.shape)
                ):
                    raise ShapeError(
                        f"gather gradient of shape {format_shape(g.shape)} does not match a gather "
                        f"of rank {len(partial)} along axis {axis} by indices of shape "
                        f"{format_shape(indices.shape)}"
                    )
            return [(g.dtype, partial)]
        target = tuple(target)
        if any(d < 0 for d in target):
            raise ShapeError(f"gather gradient target shape {target} has a negative size")
        axis = normalize_axis(attrs["axis"], len(target))
        expected = None if indices.shape is None else target[:axis] + tuple(indices.shape) + target[axis + 1 :]
        if not compatible(expected, g.shape):
            raise ShapeError(
                f"gather gradient of shape {format_shape(g.shape)} does not match a gather of shape "
                f"{target} along axis {axis} by indices of shape {format_shape(indices.shape)}"
            )
        return [(g.dtype, target)]

    def reference(self, inputs, attrs):
        g, indices = inputs[0], inputs[1]
        shape = self.target(inputs, attrs)
        out = np.zeros(shape, dtype=g.dtype)
        axis = attrs["axis"] % len(shape)
        np.add.at(out, (slice(None),) * axis + (indices.astype(np.int64),), g)
        return out


# --------------------------------------------------------------------------- gradient rules
@register_gradient("StridedSlice")
def _strided_slice_gradient(build, node, g):
    x = node.inputs[0]
    shape = build.shape_arg(x)
    inputs = [g] if isinstance(shape, tuple) else [g, shape]
    return [
        build.apply1(
            "StridedSliceGrad",
            inputs,
            {"spec": node.attrs["spec"], "shape": shape if isinstance(shape, tuple) else None},
        )
    ]


@register_gradient("StridedSliceGrad")
def _strided_slice_grad_gradient(build, node, g):
    return [build.apply1("StridedSlice", [g], {"spec": node.attrs["spec"]})] + [None] * (len(node.inputs) - 1)


@register_gradient("Gather")
def _gather_gradient(build, node, g):
    params, indices = node.inputs
    shape = build.shape_arg(params)
    inputs = [g, indices] if isinstance(shape, tuple) else [g, indices, shape]
    attrs = {"axis": node.attrs["axis"], "shape": shape if isinstance(shape, tuple) else None}
    return [build.apply1("GatherGrad", inputs, attrs), None]


@register_gradient("GatherGrad")
def _gather_grad_gradient(build, node, g):
    return [build.gather(g, node.inputs[1], axis=node.attrs["axis"])] + [None] * (len(node.inputs) - 1)


@register_gradient("Concat")
def _concat_gradient(build, node, g):
    axis = node.attrs["axis"]
    dims = [x.shape[axis] if x.shape is not None else None for x in node.inputs]
    if all(d is not None for d in dims):
        sizes = dims
    else:
        sizes = build.stack([build.shape(x)[axis] for x in node.inputs])
    parts = build.split(g, sizes, axis=axis)
    return [build.cast(p, x.dtype) if p.dtype != x.dtype else p for p, x in zip(parts, node.inputs)]


@register_gradient("Pack")
def _pack_gradient(build, node, g):
    parts = build.unstack(g, num=len(node.inputs), axis=node.attrs["axis"])
    return [build.cast(p, x.dtype) if p.dtype != x.dtype else p for p, x in zip(parts, node.inputs)]


@register_gradient("Unpack")
def _unpack_gradient(build, node, *gs):
    return [build.stack(list(gs), axis=node.attrs["axis"])]


@register_gradient("Split")
def _split_gradient(build, node, *gs):
    return [build.concat(list(gs), axis=node.attrs["axis"])] + [None] * (len(node.inputs) - 1)
