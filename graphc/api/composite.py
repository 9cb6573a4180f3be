"""Ops TF1 users reach for, built from graphc's primitives, so each differentiates (its
gradient is its primitives' gradients) and runs on every backend:

  eye, l2_normalize, tensordot, einsum, gather_nd, embedding_lookup, conv2d_transpose,
  in_top_k, cumsum, cumprod, top_k, sort, argsort, truncated_normal.

The constructions trade memory for generality where sizes are small in practice:
cumsum is a product with a triangular matrix along the axis (n^2), sort / argsort rank each
element against the others (n^2 per row), top_k takes k argmaxes, einsum multiplies its
operands broadcast over all letters before summing the contracted ones, cumprod is a scan.
"""
from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import GraphcError, ShapeError
from ..ir.dtypes import as_dtype, float32, int32, int64
from ..ir.tensor import Tensor
from . import array, math
from .control_flow import scan
from .convert import apply1, constant, convert_to_tensor
from .random import random_normal


def eye(num_rows: int, num_columns: int | None = None, batch_shape: Sequence[int] | None = None,
        dtype: Any = float32, name: str | None = None) -> Tensor:
    """The identity matrix (batched when batch_shape is given)."""
    value = np.eye(num_rows, num_columns, dtype=as_dtype(dtype).np)
    if batch_shape:
        value = np.broadcast_to(value, (*batch_shape, *value.shape)).copy()
    return constant(value, name=name)


def l2_normalize(x: Any, axis: Any = None, epsilon: float = 1e-12, name: str | None = None) -> Tensor:
    """x / sqrt(max(sum(x^2 over axis), epsilon))."""
    x = convert_to_tensor(x)
    squares = math.reduce_sum(math.square(x), axis=axis, keepdims=True)
    return math.multiply(x, math.rsqrt(math.maximum(squares, epsilon)), name=name)


def _move_last(x: Tensor, axis: int) -> tuple[Tensor, list[int]]:
    rank = x.ndim
    perm = [d for d in range(rank) if d != axis] + [axis]
    return (array.transpose(x, perm) if axis != rank - 1 else x), list(np.argsort(perm))


def tensordot(a: Any, b: Any, axes: Any, name: str | None = None) -> Tensor:
    """Sum over the given axes of a and b (axes: an int n, the last n of a with the first n of
    b, or a pair of axis lists), as one matrix product."""
    a, b = convert_to_tensor(a), convert_to_tensor(b)
    if a.shape is None or b.shape is None or None in a.shape or None in b.shape:
        raise ShapeError("tensordot needs operands of known shape")
    if isinstance(axes, int):
        a_axes, b_axes = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        a_axes, b_axes = ([axes[0]] if isinstance(axes[0], int) else list(axes[0]),
                          [axes[1]] if isinstance(axes[1], int) else list(axes[1]))
    a_axes, b_axes = [d % a.ndim for d in a_axes], [d % b.ndim for d in b_axes]
    if len(a_axes) != len(b_axes) or any(a.shape[i] != b.shape[j] for i, j in zip(a_axes, b_axes)):
        raise ShapeError(f"tensordot: axes {a_axes} of {a.shape} do not match axes {b_axes} of {b.shape}")
    a_free = [d for d in range(a.ndim) if d not in a_axes]
    b_free = [d for d in range(b.ndim) if d not in b_axes]
    k = int(np.prod([a.shape[d] for d in a_axes], dtype=np.int64))
    a2 = array.reshape(array.transpose(a, a_free + a_axes), [-1, k])
    b2 = array.reshape(array.transpose(b, b_axes + b_free), [k, -1])
    out_shape = [a.shape[d] for d in a_free] + [b.shape[d] for d in b_free]
    return array.reshape(math.matmul(a2, b2), out_shape, name=name)


def einsum(equation: str, *inputs: Any, name: str | None = None) -> Tensor:
    """Einstein summation ("ij,jk->ik", "bij,bjk->bik", "ii->i" is not supported): the operands
    aligned over all letters, multiplied, summed over the letters the output lacks."""
    terms, arrow, out = equation.replace(" ", "").partition("->")
    operands = terms.split(",")
    if len(operands) != len(inputs) or "." in equation:
        raise GraphcError(f"einsum {equation!r}: {len(operands)} operand terms for {len(inputs)} inputs "
                          "(ellipses are not supported)")
    letters: list[str] = []
    for term in operands:
        if len(set(term)) != len(term) or not set(term) <= set(string.ascii_letters):
            raise GraphcError(f"einsum {equation!r}: term {term!r} must be distinct letters (no diagonals)")
        letters += [c for c in term if c not in letters]
    if not arrow:
        out = "".join(sorted(c for c in letters if sum(t.count(c) for t in operands) == 1))
    if not set(out) <= set(letters) or len(set(out)) != len(out):
        raise GraphcError(f"einsum {equation!r}: the output {out!r} must be distinct letters of the inputs")
    aligned = []
    for term, x in zip(operands, inputs):
        x = convert_to_tensor(x)
        if x.ndim != len(term):
            raise ShapeError(f"einsum {equation!r}: term {term!r} for an operand of rank {x.ndim}")
        order = [c for c in letters if c in term]
        x = array.transpose(x, [term.index(c) for c in order]) if order != list(term) else x
        aligned.append(array.reshape(x, _static(x, order, letters)))
    product = aligned[0]
    for x in aligned[1:]:
        product = math.multiply(product, x)
    summed = [i for i, c in enumerate(letters) if c not in out]
    if summed:
        product = math.reduce_sum(product, axis=summed)
    kept = [c for c in letters if c in out]
    return array.transpose(product, [kept.index(c) for c in out], name=name) if kept != list(out) else product


def _static(x: Tensor, order: list[str], letters: list[str]) -> list[int]:
    if x.shape is None or None in x.shape:
        raise ShapeError("einsum needs operands of known shape")
    return [x.shape[order.index(c)] if c in order else 1 for c in letters]


def gather_nd(params: Any, indices: Any, name: str | None = None) -> Tensor:
    """params[indices[..., 0], ..., indices[..., k-1]] for the last axis of indices of size k."""
    params, indices = convert_to_tensor(params), convert_to_tensor(indices)
    if params.shape is None or indices.shape is None or indices.shape[-1] is None:
        raise ShapeError("gather_nd needs the index depth (the last axis of indices) and params' shape known")
    k = indices.shape[-1]
    head = params.shape[:k]
    if None in head:
        raise ShapeError(f"gather_nd needs the first {k} sizes of params known, got {params.shape}")
    strides = np.cumprod([1] + list(head[::-1]))[:-1][::-1].astype(np.int64)
    flat_index = math.reduce_sum(math.multiply(math.cast(indices, int64), constant(strides)), axis=-1)
    flat = array.reshape(params, [int(np.prod(head, dtype=np.int64))] + [-1 if d is None else d for d in
                                                                        params.shape[k:]])
    return array.gather(flat, flat_index, name=name)


def embedding_lookup(params: Any, ids: Any, name: str | None = None) -> Tensor:
    """Rows of params (one tensor, or a list of shards joined along axis 0) for ids."""
    if isinstance(params, (list, tuple)):
        params = array.concat(list(params), 0) if len(params) > 1 else params[0]
    return array.gather(params, ids, name=name)


def conv2d_transpose(value: Any, filter: Any, output_shape: Any, strides: Any, padding: str = "SAME",
                     data_format: str = "NHWC", dilations: Any = 1, name: str | None = None) -> Tensor:
    """The transposed convolution (the gradient of conv2d with respect to its input); filter
    [height, width, output_channels, in_channels], output_shape a list of ints."""
    from .nn import _padding, _pair  # nn imports this module's users: resolved late

    shape = [int(d) for d in (output_shape.static_value if isinstance(output_shape, Tensor) else output_shape)]
    attrs = {"strides": _pair(strides, data_format, "strides"), "padding": _padding(padding, data_format),
             "data_format": data_format, "dilations": _pair(dilations, data_format, "dilations"),
             "shape": tuple(shape)}
    return apply1("Conv2DBackpropInput", [convert_to_tensor(filter), convert_to_tensor(value)], attrs, name)


def in_top_k(predictions: Any, targets: Any, k: int, name: str | None = None) -> Tensor:
    """Whether each row's target class is among its k largest predictions (ties count in)."""
    predictions, targets = convert_to_tensor(predictions), convert_to_tensor(targets)
    classes = predictions.shape[-1]
    hot = array.one_hot(targets, classes, dtype=predictions.dtype)
    target = math.reduce_sum(math.multiply(predictions, hot), axis=-1, keepdims=True)
    above = math.reduce_sum(math.cast(math.greater(predictions, target), int32), axis=-1)
    return math.less(above, k, name=name)


def cumsum(x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False, name: str | None = None) -> Tensor:
    """Running sums along `axis` (a product with a triangular matrix)."""
    x = convert_to_tensor(x)
    axis %= x.ndim
    n = x.shape[axis]
    if n is None:
        raise ShapeError("cumsum needs the size of its axis known")
    i, j = np.indices((n, n))
    keep = (i >= j) if reverse else (i <= j)
    if exclusive:
        keep &= i != j
    moved, back = _move_last(x, axis)
    out = math.matmul(moved, constant(keep.astype(x.dtype.np)))
    return array.transpose(out, back, name=name) if axis != x.ndim - 1 else out


def cumprod(x: Any, axis: int = 0, exclusive: bool = False, reverse: bool = False, name: str | None = None) -> Tensor:
    """Running products along `axis` (a scan: zeros and signs need no logarithms)."""
    x = convert_to_tensor(x)
    axis %= x.ndim
    front = array.transpose(x, [axis] + [d for d in range(x.ndim) if d != axis]) if axis else x
    ones = array.ones_like(array.getitem(front, 0))
    if exclusive:
        products = scan(lambda acc, e: (acc[0] * e, acc[0]), front, initializer=(ones, ones), reverse=reverse)[1]
    else:
        products = scan(lambda acc, e: acc * e, front, initializer=ones, reverse=reverse)
    back = list(np.argsort([axis] + [d for d in range(x.ndim) if d != axis]))
    return array.transpose(products, back, name=name) if axis else products


def argsort(values: Any, axis: int = -1, direction: str = "ASCENDING", stable: bool = True,
            name: str | None = None) -> Tensor:
    """The indices that sort `values` along the last axis (ties keep their order)."""
    x = convert_to_tensor(values)
    if axis not in (-1, x.ndim - 1):
        raise GraphcError("argsort sorts along the last axis; transpose first")
    if direction not in ("ASCENDING", "DESCENDING"):
        raise GraphcError(f"direction must be ASCENDING or DESCENDING, got {direction!r}")
    n = x.shape[-1]
    if n is None:
        raise ShapeError("argsort needs the size of the last axis known")
    a, b = array.expand_dims(x, -1), array.expand_dims(x, -2)    # [..., i, 1], [..., 1, j]
    before = math.greater(a, b) if direction == "DESCENDING" else math.less(a, b)   # [..., i, j]: x_i before x_j
    earlier = constant(np.tril(np.ones((n, n), bool), -1).T)     # [i, j]: i < j
    ahead = math.logical_or(before, math.logical_and(math.equal(a, b), earlier))
    rank = math.reduce_sum(math.cast(ahead, int32), axis=-2)     # [..., j]: how many go before x_j
    places = array.one_hot(rank, n, dtype=float32)               # [..., j, r]
    index = math.reduce_sum(math.multiply(places, constant(np.arange(n, dtype=np.float32)[:, None])), axis=-2)
    return math.cast(index, int32, name=name)


def sort(values: Any, axis: int = -1, direction: str = "ASCENDING", name: str | None = None) -> Tensor:
    """`values` sorted along the last axis."""
    x = convert_to_tensor(values)
    order = argsort(x, axis, direction)
    return _take_last(x, order, name)


def _take_last(x: Tensor, index: Tensor, name: str | None = None) -> Tensor:
    """x[..., index[..., m]] along the last axis, row by row (a one-hot product: differentiable)."""
    picks = array.one_hot(index, x.shape[-1], dtype=x.dtype)        # [..., m, n]
    return math.reduce_sum(math.multiply(picks, array.expand_dims(x, -2)), axis=-1, name=name)


def top_k(input: Any, k: int = 1, sorted: bool = True, name: str | None = None) -> tuple[Tensor, Tensor]:
    """(the k largest values of each row, their indices), largest first; ties: lower index first."""
    x = convert_to_tensor(input)
    n = x.shape[-1]
    if n is None or not 1 <= k <= n:
        raise ShapeError(f"top_k needs 1 <= k <= the size of the last axis, got k={k} for {x.shape}")
    order = argsort(x, direction="DESCENDING")
    index = array.getitem(order, (Ellipsis, slice(0, k)))
    return _take_last(x, index, name), index


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = float32,
                     seed: int | None = None, name: str | None = None) -> Tensor:
    """Normal values redrawn when further than 2 standard deviations from the mean (TF1): of
    four draws per element the first within the bounds is kept (all four outside: 4e-6 of
    elements, clipped to the bound)."""
    dims = [4] + [int(d) for d in (shape if not isinstance(shape, Tensor) else shape.static_value)]
    z = random_normal(dims, dtype=dtype, seed=seed)
    pick = array.getitem(z, 3)
    for k in (2, 1, 0):
        draw = array.getitem(z, k)
        pick = math.where(math.less_equal(math.abs(draw), 2.0), draw, pick)
    pick = math.clip_by_value(pick, -2.0, 2.0)
    return math.add(math.multiply(pick, stddev), mean, name=name)


__all__ = ["argsort", "conv2d_transpose", "cumprod", "cumsum", "einsum", "embedding_lookup", "eye", "gather_nd",
           "in_top_k", "l2_normalize", "sort", "tensordot", "top_k", "truncated_normal"]
