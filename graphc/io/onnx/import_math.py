"""Import rules for elementwise math, comparisons, logic, activations and reductions.

ONNX ops take equal operand types and keep them, where graphc promotes like NumPy and computes
some ops in float; rules pick the graphc op whose result has the ONNX type, and cast back where
graphc would widen (the mean of an int tensor, an integer division).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...api import math as M
from ...api import nn as N
from ...api.array import getitem
from ...api.convert import apply1
from ...ir.dtypes import float64, int64
from ...ir.tensor import Tensor
from .checks import axes as check_axes
from .checks import axis as check_axis
from .checks import one_of, rank_of
from .common import graphc_type
from .importer import ImportContext, rule


def c(ctx: ImportContext, value: Any, like: Tensor) -> Tensor:
    """A scalar constant of `like`'s dtype (an attribute's value must fit it: no inf as an int)."""
    try:
        arr = np.asarray(value, dtype=like.dtype.np)
    except (OverflowError, ValueError):
        raise ctx.error(f"the value {value!r} does not fit the input's element type {like.dtype.name}") from None
    return ctx.constant(arr)


def _fold(fn, xs: list[Tensor]) -> Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


_BINARY = {"Add": M.add, "Sub": M.subtract, "Mul": M.multiply, "Equal": M.equal, "Less": M.less,
           "LessOrEqual": M.less_equal, "Greater": M.greater, "GreaterOrEqual": M.greater_equal,
           "And": M.logical_and, "Or": M.logical_or, "Xor": M.logical_xor}
_UNARY = {"Neg": M.negative, "Abs": M.abs, "Sign": M.sign, "Exp": M.exp, "Log": M.log, "Sqrt": M.sqrt,
          "Reciprocal": M.reciprocal, "Floor": M.floor, "Ceil": M.ceil, "Round": M.round, "Sin": M.sin,
          "Cos": M.cos, "Erf": M.erf, "Tanh": M.tanh, "Sigmoid": M.sigmoid, "Not": M.logical_not,
          "IsNaN": M.is_nan, "Relu": N.relu, "Softplus": N.softplus, "Softsign": N.softsign,
          "Identity": lambda x: apply1("Identity", [x])}


@rule(*_BINARY)
def _binary(ctx, node, ins, attrs):
    return [_BINARY[node.op_type](ins[0], ins[1])]


@rule(*_UNARY)
def _unary(ctx, node, ins, attrs):
    x = ins[0]
    out = _UNARY[node.op_type](x)
    if out.dtype != x.dtype and not out.dtype.is_bool:
        out = M.cast(out, x.dtype)  # graphc computes exp(int) in float; ONNX keeps the type
    return [out]


@rule("Tan")
def _tan(ctx, node, ins, attrs):
    return [M.divide(M.sin(ins[0]), M.cos(ins[0]))]


@rule("Div")
def _div(ctx, node, ins, attrs):
    a, b = ins
    if a.dtype.is_floating:
        return [M.divide(a, b)]
    # integer division truncates toward zero in ONNX; graphc's // floors
    q = M.floordiv(a, b)
    r = M.mod(a, b)
    fix = M.logical_and(M.not_equal(r, c(ctx, 0, r)), M.not_equal(M.less(a, c(ctx, 0, a)), M.less(b, c(ctx, 0, b))))
    return [M.where(fix, M.add(q, c(ctx, 1, q)), q)]


@rule("Mod")
def _mod(ctx, node, ins, attrs):
    a, b = ins
    r = M.mod(a, b)  # the sign of the divisor, ONNX's fmod=0
    if not attrs.get("fmod", 0):
        return [r]
    # fmod=1: C's fmod, the sign of the dividend
    fix = M.logical_and(M.not_equal(r, c(ctx, 0, r)), M.not_equal(M.less(r, c(ctx, 0, r)), M.less(a, c(ctx, 0, a))))
    return [M.where(fix, M.subtract(r, b), r)]


@rule("Pow")
def _pow(ctx, node, ins, attrs):
    x, y = ins
    if x.dtype.is_floating:
        return [M.pow(x, y if y.dtype == x.dtype else M.cast(y, x.dtype))]
    if y.dtype.is_floating:
        return [M.cast(M.pow(M.cast(x, float64), M.cast(y, float64)), x.dtype)]
    return [M.cast(M.pow(x, M.cast(y, x.dtype)), x.dtype)]


@rule("Max", "Min", "Sum", "Mean")
def _variadic(ctx, node, ins, attrs):
    fn = {"Max": M.maximum, "Min": M.minimum, "Sum": M.add, "Mean": M.add}[node.op_type]
    out = _fold(fn, ins)
    if node.op_type == "Mean":
        out = M.divide(out, c(ctx, len(ins), out))
        if out.dtype != ins[0].dtype:
            out = M.cast(out, ins[0].dtype)
    return [out]


@rule("IsInf")
def _is_inf(ctx, node, ins, attrs):
    x = ins[0]
    inf = M.is_inf(x)
    pos, neg = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
    if pos and neg:
        return [inf]
    if pos:
        return [M.logical_and(inf, M.greater(x, c(ctx, 0, x)))]
    if neg:
        return [M.logical_and(inf, M.less(x, c(ctx, 0, x)))]
    return [M.logical_and(inf, M.logical_not(inf))]


@rule("Where")
def _where(ctx, node, ins, attrs):
    return [M.where(ins[0], ins[1], ins[2])]


@rule("Cast")
def _cast(ctx, node, ins, attrs):
    return [M.cast(ins[0], graphc_type(attrs["to"], f"{ctx.where()}: attribute 'to'"))]


@rule("CastLike")
def _cast_like(ctx, node, ins, attrs):
    return [M.cast(ins[0], ins[1].dtype)]


@rule("Clip")
def _clip(ctx, node, ins, attrs):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    if ctx.opset < 11:
        lo = c(ctx, attrs["min"], x) if "min" in attrs else None
        hi = c(ctx, attrs["max"], x) if "max" in attrs else None
    if lo is not None:
        x = M.maximum(x, lo)
    if hi is not None:
        x = M.minimum(x, hi)
    return [x if x is not ins[0] else apply1("Identity", [x])]


# ----------------------------------------------------------------------------- activations
@rule("LeakyRelu")
def _leaky_relu(ctx, node, ins, attrs):
    return [N.leaky_relu(ins[0], alpha=float(attrs.get("alpha", 0.01)))]


@rule("Elu")
def _elu(ctx, node, ins, attrs):
    return [N.elu(ins[0], alpha=float(attrs.get("alpha", 1.0)))]


@rule("Selu")
def _selu(ctx, node, ins, attrs):
    x = ins[0]
    alpha = float(attrs.get("alpha", 1.67326319217681884765625))
    gamma = float(attrs.get("gamma", 1.05070102214813232421875))
    return [M.multiply(N.elu(x, alpha=alpha), c(ctx, gamma, x))]


@rule("Celu")
def _celu(ctx, node, ins, attrs):
    x = ins[0]
    alpha = float(attrs.get("alpha", 1.0))
    scaled = M.multiply(N.elu(M.divide(x, c(ctx, alpha, x)), alpha=1.0), c(ctx, alpha, x))
    return [scaled]


@rule("ThresholdedRelu")
def _thresholded_relu(ctx, node, ins, attrs):
    x = ins[0]
    return [M.where(M.greater(x, c(ctx, attrs.get("alpha", 1.0), x)), x, c(ctx, 0, x))]


@rule("PRelu")
def _prelu(ctx, node, ins, attrs):
    x, slope = ins
    return [M.where(M.less(x, c(ctx, 0, x)), M.multiply(x, slope), x)]


@rule("HardSigmoid")
def _hard_sigmoid(ctx, node, ins, attrs):
    x = ins[0]
    y = M.add(M.multiply(x, c(ctx, attrs.get("alpha", 0.2), x)), c(ctx, attrs.get("beta", 0.5), x))
    return [M.minimum(M.maximum(y, c(ctx, 0, x)), c(ctx, 1, x))]


@rule("HardSwish")
def _hard_swish(ctx, node, ins, attrs):
    x = ins[0]
    y = M.add(M.multiply(x, c(ctx, 1 / 6, x)), c(ctx, 0.5, x))
    return [M.multiply(x, M.minimum(M.maximum(y, c(ctx, 0, x)), c(ctx, 1, x)))]


@rule("Mish")
def _mish(ctx, node, ins, attrs):
    return [M.multiply(ins[0], M.tanh(N.softplus(ins[0])))]


@rule("Gelu")
def _gelu(ctx, node, ins, attrs):
    approximate = one_of(ctx, attrs.get("approximate", "none"), "attribute 'approximate'", ("none", "tanh"))
    return [N.gelu(ins[0], approximate=approximate == "tanh")]


# ----------------------------------------------------------------------------- reductions
def reduce_axes(ctx: ImportContext, ins: list, attrs: dict[str, Any], op_type: str) -> tuple[int, ...] | None:
    """The axes of a Reduce* node (attribute before opset 18 / 13 for ReduceSum, else input);
    None means all axes, () none (noop_with_empty_axes)."""
    takes_input = ctx.opset >= 18 or (op_type == "ReduceSum" and ctx.opset >= 13)
    if takes_input:
        axes = ctx.static_ints(ins[1], "input 1 ('axes')") if len(ins) > 1 and ins[1] is not None else []
        field = "input 1 ('axes')"
    else:
        axes = list(attrs.get("axes", []))
        field = "attribute 'axes'"
    if not axes:
        return () if attrs.get("noop_with_empty_axes", 0) else None
    return tuple(check_axes(ctx, axes, rank_of(ctx, ins[0]), field))


def _reduce_with(fn, ctx, ins, attrs, op_type) -> Tensor:
    axes = reduce_axes(ctx, ins, attrs, op_type)
    keep = bool(attrs.get("keepdims", 1))
    return fn(ins[0], axis=axes, keepdims=keep)


_REDUCE = {"ReduceSum": M.reduce_sum, "ReduceMean": M.reduce_mean, "ReduceMax": M.reduce_max,
           "ReduceMin": M.reduce_min, "ReduceProd": M.reduce_prod, "ReduceLogSumExp": M.reduce_logsumexp}


@rule(*_REDUCE, static=(1,))
def _reduce(ctx, node, ins, attrs):
    x = ins[0]
    out = _reduce_with(_REDUCE[node.op_type], ctx, ins, attrs, node.op_type)
    return [out if out.dtype == x.dtype else M.cast(out, x.dtype)]


@rule("ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", static=(1,))
def _reduce_composite(ctx, node, ins, attrs):
    x = ins[0]
    inner = {"ReduceSumSquare": M.square, "ReduceL1": M.abs, "ReduceL2": M.square, "ReduceLogSum": lambda t: t}
    out = _reduce_with(M.reduce_sum, ctx, [inner[node.op_type](x)] + ins[1:], attrs, node.op_type)
    if node.op_type == "ReduceL2":
        out = M.sqrt(out)
    elif node.op_type == "ReduceLogSum":
        out = M.log(out)
    return [out if out.dtype == x.dtype else M.cast(out, x.dtype)]


@rule("ArgMax", "ArgMin")
def _arg(ctx, node, ins, attrs):
    x = ins[0]
    axis = check_axis(ctx, int(attrs.get("axis", 0)), rank_of(ctx, x), "attribute 'axis'")
    fn = M.argmax if node.op_type == "ArgMax" else M.argmin
    if attrs.get("select_last_index", 0):
        n = x.shape[axis] if x.shape is not None else None
        if n is None:
            raise ctx.error("select_last_index needs the size of the reduced axis")
        axis %= len(x.shape)
        flipped = getitem(x, (slice(None),) * axis + (slice(None, None, -1),))
        out = M.subtract(ctx.constant(np.int64(n - 1)), fn(flipped, axis=axis, output_type=int64))
    else:
        out = fn(x, axis=axis, output_type=int64)
    if attrs.get("keepdims", 1):
        from ...api.array import expand_dims

        out = expand_dims(out, axis)
    return [out]

