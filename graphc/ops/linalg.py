"""Matrix multiplication, batched over broadcast leading dimensions (NumPy's matmul rules).

`transpose_a` / `transpose_b` transpose the last two dimensions of an operand before the
product, so the rewrite passes can absorb explicit transposes into the op for free.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.dtypes import promote
from ..ir.shapes import broadcast_shapes, format_shape
from ..ir.tensor import Tensor
from . import attrs as attr_rules
from .base import OpDef, TensorType, register, register_gradient


def matmul_shape(a: Any, b: Any, transpose_a: bool, transpose_b: bool) -> Any:
    """Static result shape of matmul; also used by the reference to check itself."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ShapeError("matmul does not take scalars; use multiply (*) instead")
    if (transpose_a and len(a) < 2) or (transpose_b and len(b) < 2):
        raise ShapeError("transpose_a / transpose_b need operands of rank >= 2")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    m, k = (a2[-1], a2[-2]) if transpose_a else (a2[-2], a2[-1])
    k2, n = (b2[-1], b2[-2]) if transpose_b else (b2[-2], b2[-1])
    if k is not None and k2 is not None and k != k2:
        raise ShapeError(
            f"matmul inner dimensions differ: a has shape {format_shape(tuple(a))}"
            f"{' (transposed)' if transpose_a else ''}, b has shape {format_shape(tuple(b))}"
            f"{' (transposed)' if transpose_b else ''}: {k} vs {k2}"
        )
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = tuple(batch) + ((m,) if len(a) > 1 else ()) + ((n,) if len(b) > 1 else ())  # type: ignore
    return out


@register
class MatMul(OpDef):
    """a @ b with optional transposes of the last two dims, batched with broadcasting."""

    name = "MatMul"
    arity = 2
    attr_defaults = {"transpose_a": False, "transpose_b": False}
    attr_checks = {"transpose_a": attr_rules.boolean(), "transpose_b": attr_rules.boolean()}

    def infer(self, inputs: Sequence[Tensor], attrs: dict[str, Any]) -> list[TensorType]:
        a, b = inputs
        if a.dtype.is_bool or b.dtype.is_bool:
            raise DTypeError("matmul does not take bool tensors; cast them to a number type first")
        dtype = promote(a.dtype, b.dtype)
        return [(dtype, matmul_shape(a.shape, b.shape, attrs["transpose_a"], attrs["transpose_b"]))]

    def reference(self, inputs, attrs):
        a, b = inputs
        if attrs["transpose_a"]:
            a = np.swapaxes(a, -1, -2)
        if attrs["transpose_b"]:
            b = np.swapaxes(b, -1, -2)
        dtype = np.result_type(a.dtype, b.dtype)
        return np.matmul(a.astype(dtype, copy=False), b.astype(dtype, copy=False))


@register_gradient("MatMul")
def _mat_mul_gradient(build, node, g):
    """The TF1 rules for each transpose combination; 1-D operands are handled as NumPy does
    (as a row / column that the result drops), batch dims are summed back when broadcast."""
    a, c = node.inputs
    ta, tb = node.attrs["transpose_a"], node.attrs["transpose_b"]
    g = g if g.dtype == node.outputs[0].dtype else build.cast(g, node.outputs[0].dtype)
    if a.ndim == 1 and c.ndim == 1:  # a dot product
        return [build.unbroadcast(build.multiply(g, c), a), build.unbroadcast(build.multiply(g, a), c)]
    a2 = a if a.ndim != 1 else build.expand_dims(a, 0)
    c2 = c if c.ndim != 1 else build.expand_dims(c, -1)
    if a.ndim == 1:
        g = build.expand_dims(g, -2)
    if c.ndim == 1:
        g = build.expand_dims(g, -1)
    if a.ndim is None or c.ndim is None:
        raise ShapeError("the gradient of matmul needs operands of known rank")
    mm = lambda x, y, tx, ty: build.matmul(x, y, transpose_a=tx, transpose_b=ty)  # noqa: E731
    if not ta and not tb:
        ga, gc_ = mm(g, c2, False, True), mm(a2, g, True, False)
    elif not ta and tb:
        ga, gc_ = mm(g, c2, False, False), mm(g, a2, True, False)
    elif ta and not tb:
        ga, gc_ = mm(c2, g, False, True), mm(a2, g, False, False)
    else:
        ga, gc_ = mm(c2, g, True, True), mm(g, a2, True, True)
    if a.ndim == 1:
        ga = build.reshape(ga, [-1]) if ga.ndim == 2 else build.squeeze(ga, [-2])
    if c.ndim == 1:
        gc_ = build.reshape(gc_, [-1]) if gc_.ndim == 2 else build.squeeze(gc_, [-1])
    return [build.unbroadcast(ga, a), build.unbroadcast(gc_, c)]
