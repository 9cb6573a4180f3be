"""The builder facade handed to gradient rules: `rule(build, node, *output_grads)`.

Gradient rules live with their ops (graphc/ops), which sit below the API layer and so cannot
import it; graphc.autodiff passes this module in as `build`. It offers the public builders plus a few
helpers every rule needs (undoing broadcasting, re-inserting reduced axes, making internal ops).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..ir.shapes import is_fully_defined, normalize_axes
from ..ir.tensor import Tensor
from .array import (broadcast_to, concat, expand_dims, gather, pad, reshape, shape, split, squeeze, stack,
                    transpose, unstack, zeros_like, ones_like)
from .control import identity, stop_gradient
from .convert import apply1, apply_op, constant, convert_to_tensor
from .math import (abs, add, add_n, cast, cos, divide, equal, erf, exp, greater, greater_equal, less,
                   less_equal, log, logical_and, matmul, maximum, multiply, negative, reduce_sum, sigmoid,
                   sign, sin, sqrt, square, subtract, where)
from .nn import softmax

__all__ = [
    "broadcast_to", "concat", "expand_dims", "gather", "pad", "reshape", "shape", "split", "squeeze", "stack",
    "transpose", "unstack", "zeros_like", "ones_like", "identity", "stop_gradient", "apply1", "apply_op",
    "constant", "convert_to_tensor", "abs", "add", "add_n", "cast", "cos", "divide", "equal", "erf", "exp",
    "greater", "greater_equal", "less", "less_equal", "log", "logical_and", "matmul", "maximum", "multiply",
    "negative", "reduce_sum", "sigmoid", "sign", "sin", "sqrt", "square", "subtract", "where", "softmax",
    "shape_arg", "unbroadcast", "unreduce", "zeros",
]


def shape_arg(x: Tensor) -> Any:
    """x's shape for a shape argument: static when fully known, else gc.shape(x)."""
    return tuple(x.shape) if is_fully_defined(x.shape) else shape(x)


def unbroadcast(g: Tensor, x: Tensor) -> Tensor:
    """The gradient g of a broadcast result summed back to x's shape and cast to x's dtype."""
    if g.dtype != x.dtype:
        g = cast(g, x.dtype)
    if is_fully_defined(x.shape) and g.shape == x.shape:
        return g
    static = tuple(x.shape) if is_fully_defined(x.shape) else None
    inputs = [g] if static is not None else [g, shape(x)]
    return apply1("SumToShape", inputs, {"shape": static})


def unreduce(g: Tensor, x: Tensor, axis: Sequence[int] | None, keepdims: bool) -> Tensor:
    """Broadcast g, the gradient of a reduction of x over `axis`, back to x's shape."""
    if not keepdims and axis is not None:
        if x.shape is not None:
            axes = normalize_axes(axis, len(x.shape))
        else:
            axes = tuple(axis)  # resolved against x's rank when it is known (when compiling)
        g = apply1("ExpandDims", [g], {"axis": axes})
    return broadcast_to(g, shape_arg(x))


def zeros(x: Tensor) -> Tensor:
    return zeros_like(x)
