"""Static shapes: tuples of ints where `None` marks a dimension unknown until run time.

A shape of `None` (rather than a tuple) means even the rank is unknown, as for a TF1
`placeholder(float32)` with no shape. Everything here works on partial knowledge and raises
ShapeError only for contradictions that are certain.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence

from ..errors import ShapeError

Dim = Optional[int]
Shape = Optional[tuple[Dim, ...]]


def as_shape(value: Any) -> Shape:
    """Normalize a user's shape: None, an int, or a sequence of ints / None."""
    if value is None:
        return None
    if isinstance(value, (int,)) and not isinstance(value, bool):
        value = (value,)
    try:
        dims = tuple(value)
    except TypeError:
        raise ShapeError(f"a shape must be a sequence of ints or None, got {value!r}") from None
    out = []
    for d in dims:
        if d is None:
            out.append(None)
            continue
        if hasattr(d, "__index__") and not isinstance(d, bool):
            d = int(d.__index__())
            if d < 0:
                if d == -1:
                    out.append(None)
                    continue
                raise ShapeError(f"a shape cannot hold the negative dimension {d}: {value!r}")
            out.append(d)
            continue
        raise ShapeError(f"a shape must hold ints or None, got {d!r} in {value!r}")
    return tuple(out)


def rank(shape: Shape) -> int | None:
    return None if shape is None else len(shape)


def is_fully_defined(shape: Shape) -> bool:
    return shape is not None and all(d is not None for d in shape)


def num_elements(shape: Shape) -> int | None:
    """The element count, or None when a dimension is unknown."""
    if not is_fully_defined(shape):
        return None
    return math.prod(shape)  # type: ignore[arg-type]


def format_shape(shape: Shape) -> str:
    if shape is None:
        return "<unknown rank>"
    inner = ", ".join("?" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting of static shapes; an unknown dim with a known dim d > 1 gives d."""
    if any(s is None for s in shapes):
        return None
    out_rank = max((len(s) for s in shapes), default=0)  # type: ignore[arg-type]
    result: list[Dim] = []
    for i in range(out_rank):
        dims = [s[len(s) - out_rank + i] for s in shapes if len(s) - out_rank + i >= 0]  # type: ignore
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            listing = " and ".join(format_shape(s) for s in shapes)
            raise ShapeError(
                f"cannot broadcast shapes {listing}: dimension {i - out_rank} is "
                + " vs ".join(str(d) for d in sorted(known))
            )
        if known:
            result.append(known.pop())
        elif any(d is None for d in dims):
            result.append(None)
        else:
            result.append(1)
    return tuple(result)


def compatible(declared: Shape, actual: Shape) -> bool:
    """Could a value of shape `actual` have the (partially known) shape `declared`?"""
    if declared is None or actual is None:
        return True
    if len(declared) != len(actual):
        return False
    return all(a is None or b is None or a == b for a, b in zip(declared, actual))


def merge(a: Shape, b: Shape) -> Shape:
    """The most specific shape compatible with both (ShapeError when they contradict)."""
    if a is None:
        return b
    if b is None:
        return a
    if not compatible(a, b):
        raise ShapeError(f"shapes {format_shape(a)} and {format_shape(b)} are incompatible")
    return tuple(x if x is not None else y for x, y in zip(a, b))


def normalize_axis(axis: int, ndim: int, what: str = "axis") -> int:
    """A possibly negative axis as an index into a shape of rank `ndim`."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ShapeError(f"{what} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{what} {axis} is out of range for a tensor of rank {ndim}")
    return axis % ndim if ndim else 0


def normalize_axes(axis: Iterable[int] | int | None, ndim: int) -> tuple[int, ...]:
    """Reduction axes: None means all; duplicates are an error."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = tuple(normalize_axis(a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ShapeError(f"duplicate axes in {axis!r}")
    return out


def same_shapes_or_raise(shapes: Sequence[Shape], what: str) -> Shape:
    """Merge shapes that must be equal (e.g. concat inputs outside the axis)."""
    result: Shape = None
    for s in shapes:
        try:
            result = merge(result, s)
        except ShapeError:
            listing = ", ".join(format_shape(x) for x in shapes)
            raise ShapeError(f"{what} must have equal shapes, got {listing}") from None
    return result
