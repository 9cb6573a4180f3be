"""Import rules for elementwise math, comparisons, logic, activations and reductions.

ONNX ops take equal operand types and keep them, where graphc promotes like NumPy and computes
some ops in float; rules pick the graphc op whose result has the ONNX type, and cast back where
graphc would widen (the mean of an int tensor, an integer division).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...api import array as array_ops
from ...api import math as math_ops
from ...api import nn as nn_ops
from ...api.array import getitem
from ...api.convert import apply1
from ...ir.dtypes import float64, int64
from ...ir.tensor import Tensor
from .checks import axes as check_axes
from .checks import axis as check_axis
from .checks import one_of, rank_of
from .common import graphc_type
from .import_rules import ImportContext, rule


def _fold(fn, xs: list[Tensor]) -> Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


_BINARY = {
    "Add": math_ops.add,
    "Sub": math_ops.subtract,
    "Mul": math_ops.multiply,
    "Equal": math_ops.equal,
    "Less": math_ops.less,
    "LessOrEqual": math_ops.less_equal,
    "Greater": math_ops.greater,
    "GreaterOrEqual": math_ops.greater_equal,
    "And": math_ops.logical_and,
    "Or": math_ops.logical_or,
    "Xor": math_ops.logical_xor,
}
_UNARY = {
    "Neg": math_ops.negative,
    "Abs": math_ops.abs,
    "Sign": math_ops.sign,
    "Exp": math_ops.exp,
    "Log": math_ops.log,
    "Sqrt": math_ops.sqrt,
    "Reciprocal": math_ops.reciprocal,
    "Floor": math_ops.floor,
    "Ceil": math_ops.ceil,
    "Round": math_ops.round,
    "Sin": math_ops.sin,
    "Cos": math_ops.cos,
    "Erf": math_ops.erf,
    "Tanh": math_ops.tanh,
    "Sigmoid": math_ops.sigmoid,
    "Not": math_ops.logical_not,
    "IsNaN": math_ops.is_nan,
    "Relu": nn_ops.relu,
    "Softplus": nn_ops.softplus,
    "Softsign": nn_ops.softsign,
    "Identity": lambda x: apply1("Identity", [x]),
}


@rule(*_BINARY)
def _binary(ctx, node, ins, attrs):
    return [_BINARY[node.op_type](ins[0], ins[1])]


@rule(*_UNARY)
def _unary(ctx, node, ins, attrs):
    x = ins[0]
    out = _UNARY[node.op_type](x)
    if out.dtype != x.dtype and not out.dtype.is_bool:
        out = math_ops.cast(out, x.dtype)  # graphc computes exp(int) in float; ONNX keeps the type
    return [out]


@rule("Tan")
def _tan(ctx, node, ins, attrs):
    return [math_ops.divide(math_ops.sin(ins[0]), math_ops.cos(ins[0]))]


@rule("Div")
def _div(ctx, node, ins, attrs):
    a, b = ins
    if a.dtype.is_floating:
        return [math_ops.divide(a, b)]
    # integer division truncates toward zero in ONNX; graphc's // floors
    q = math_ops.floordiv(a, b)
    r = math_ops.mod(a, b)
    fix = math_ops.logical_and(
        math_ops.not_equal(r, ctx.scalar_like(0, r)),
        math_ops.not_equal(math_ops.less(a, ctx.scalar_like(0, a)), math_ops.less(b, ctx.scalar_like(0, b))),
    )
    return [math_ops.where(fix, math_ops.add(q, ctx.scalar_like(1, q)), q)]


@rule("Mod")
def _mod(ctx, node, ins, attrs):
    a, b = ins
    r = math_ops.mod(a, b)  # the sign of the divisor, ONNX's fmod=0
    if not attrs.get("fmod", 0):
        return [r]
    # fmod=1: C's fmod, the sign of the dividend
    fix = math_ops.logical_and(
        math_ops.not_equal(r, ctx.scalar_like(0, r)),
        math_ops.not_equal(math_ops.less(r, ctx.scalar_like(0, r)), math_ops.less(a, ctx.scalar_like(0, a))),
    )
    return [math_ops.where(fix, math_ops.subtract(r, b), r)]


@rule("Pow")
def _pow(ctx, node, ins, attrs):
    x, y = ins
    if x.dtype.is_floating:
        return [math_ops.pow(x, y if y.dtype == x.dtype else math_ops.cast(y, x.dtype))]
    if y.dtype.is_floating:
        return [math_ops.cast(math_ops.pow(math_ops.cast(x, float64), math_ops.cast(y, float64)), x.dtype)]
    return [math_ops.cast(math_ops.pow(x, math_ops.cast(y, x.dtype)), x.dtype)]


@rule("Max", "Min", "Sum", "Mean")
def _variadic(ctx, node, ins, attrs):
    fn = {"Max": math_ops.maximum, "Min": math_ops.minimum, "Sum": math_ops.add, "Mean": math_ops.add}[node.op_type]
    out = _fold(fn, ins)
    if node.op_type == "Mean":
        out = math_ops.divide(out, ctx.scalar_like(len(ins), out))
        if out.dtype != ins[0].dtype:
            out = math_ops.cast(out, ins[0].dtype)
    return [out]


@rule("IsInf")
def _is_inf(ctx, node, ins, attrs):
    x = ins[0]
    inf = math_ops.is_inf(x)
    pos, neg = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
    if pos and neg:
        return [inf]
    if pos:
        return [math_ops.logical_and(inf, math_ops.greater(x, ctx.scalar_like(0, x)))]
    if neg:
        return [math_ops.logical_and(inf, math_ops.less(x, ctx.scalar_like(0, x)))]
    return [math_ops.logical_and(inf, math_ops.logical_not(inf))]


@rule("Where")
def _where(ctx, node, ins, attrs):
    return [math_ops.where(ins[0], ins[1], ins[2])]


@rule("Cast")
def _cast(ctx, node, ins, attrs):
    return [math_ops.cast(ins[0], graphc_type(attrs["to"], f"{ctx.where()}: attribute 'to'"))]


@rule("CastLike")
def _cast_like(ctx, node, ins, attrs):
    return [math_ops.cast(ins[0], ins[1].dtype)]


@rule("Clip")
def _clip(ctx, node, ins, attrs):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    if ctx.opset < 11:
        lo = ctx.scalar_like(attrs["min"], x) if "min" in attrs else None
        hi = ctx.scalar_like(attrs["max"], x) if "max" in attrs else None
    if lo is not None:
        x = math_ops.maximum(x, lo)
    if hi is not None:
        x = math_ops.minimum(x, hi)
    return [x if x is not ins[0] else apply1("Identity", [x])]


# ----------------------------------------------------------------------------- activations
@rule("LeakyRelu")
def _leaky_relu(ctx, node, ins, attrs):
    return [nn_ops.leaky_relu(ins[0], alpha=float(attrs.get("alpha", 0.01)))]


@rule("Elu")
def _elu(ctx, node, ins, attrs):
    return [nn_ops.elu(ins[0], alpha=float(attrs.get("alpha", 1.0)))]


@rule("Selu")
def _selu(ctx, node, ins, attrs):
    x = ins[0]
    alpha = float(attrs.get("alpha", 1.67326319217681884765625))
    gamma = float(attrs.get("gamma", 1.05070102214813232421875))
    return [math_ops.multiply(nn_ops.elu(x, alpha=alpha), ctx.scalar_like(gamma, x))]


@rule("Celu")
def _celu(ctx, node, ins, attrs):
    x = ins[0]
    alpha = float(attrs.get("alpha", 1.0))
    scaled = math_ops.multiply(
        nn_ops.elu(math_ops.divide(x, ctx.scalar_like(alpha, x)), alpha=1.0), ctx.scalar_like(alpha, x)
    )
    return [scaled]


@rule("ThresholdedRelu")
def _thresholded_relu(ctx, node, ins, attrs):
    x = ins[0]
    return [math_ops.where(math_ops.greater(x, ctx.scalar_like(attrs.get("alpha", 1.0), x)), x, ctx.scalar_like(0, x))]


@rule("PRelu")
def _prelu(ctx, node, ins, attrs):
    """Before opset 7 a slope of C values is per channel (axis 1); from 7 it broadcasts as NumPy does."""
    x, slope = ins
    if (ctx.opset < 7 and slope.shape is not None and len(slope.shape) == 1 and x.ndim is not None and x.ndim > 2
            and slope.shape[0] not in (1, None) and slope.shape[0] == x.shape[1]):
        slope = array_ops.reshape(slope, [-1] + [1] * (x.ndim - 2))
    return [math_ops.where(math_ops.less(x, ctx.scalar_like(0, x)), math_ops.multiply(x, slope), x)]


@rule("Shrink")
def _shrink(ctx, node, ins, attrs):
    """x - bias above lambd, x + bias below -lambd, 0 between."""
    x = ins[0]
    lambd, bias = ctx.scalar_like(attrs.get("lambd", 0.5), x), ctx.scalar_like(attrs.get("bias", 0.0), x)
    zero = ctx.scalar_like(0, x)
    return [math_ops.where(math_ops.greater(x, lambd), math_ops.subtract(x, bias),
                           math_ops.where(math_ops.less(x, math_ops.negative(lambd)), math_ops.add(x, bias), zero))]


@rule("HardSigmoid")
def _hard_sigmoid(ctx, node, ins, attrs):
    x = ins[0]
    y = math_ops.add(
        math_ops.multiply(x, ctx.scalar_like(attrs.get("alpha", 0.2), x)), ctx.scalar_like(attrs.get("beta", 0.5), x)
    )
    return [math_ops.minimum(math_ops.maximum(y, ctx.scalar_like(0, x)), ctx.scalar_like(1, x))]


@rule("HardSwish")
def _hard_swish(ctx, node, ins, attrs):
    x = ins[0]
    y = math_ops.add(math_ops.multiply(x, ctx.scalar_like(1 / 6, x)), ctx.scalar_like(0.5, x))
    return [math_ops.multiply(x, math_ops.minimum(math_ops.maximum(y, ctx.scalar_like(0, x)), ctx.scalar_like(1, x)))]


@rule("Mish")
def _mish(ctx, node, ins, attrs):
    return [math_ops.multiply(ins[0], math_ops.tanh(nn_ops.softplus(ins[0])))]


@rule("Gelu")
def _gelu(ctx, node, ins, attrs):
    approximate = one_of(ctx, attrs.get("approximate", "none"), "attribute 'approximate'", ("none", "tanh"))
    return [nn_ops.gelu(ins[0], approximate=approximate == "tanh")]


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


_REDUCE = {
    "ReduceSum": math_ops.reduce_sum,
    "ReduceMean": math_ops.reduce_mean,
    "ReduceMax": math_ops.reduce_max,
    "ReduceMin": math_ops.reduce_min,
    "ReduceProd": math_ops.reduce_prod,
    "ReduceLogSumExp": math_ops.reduce_logsumexp,
}


@rule(*_REDUCE, static=(1,))
def _reduce(ctx, node, ins, attrs):
    x = ins[0]
    out = _reduce_with(_REDUCE[node.op_type], ctx, ins, attrs, node.op_type)
    return [out if out.dtype == x.dtype else math_ops.cast(out, x.dtype)]


@rule("ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", static=(1,))
def _reduce_composite(ctx, node, ins, attrs):
    x = ins[0]
    inner = {
        "ReduceSumSquare": math_ops.square,
        "ReduceL1": math_ops.abs,
        "ReduceL2": math_ops.square,
        "ReduceLogSum": lambda t: t,
    }
    out = _reduce_with(math_ops.reduce_sum, ctx, [inner[node.op_type](x)] + ins[1:], attrs, node.op_type)
    if node.op_type == "ReduceL2":
        out = math_ops.sqrt(out)
    elif node.op_type == "ReduceLogSum":
        out = math_ops.log(out)
    return [out if out.dtype == x.dtype else math_ops.cast(out, x.dtype)]


@rule("ArgMax", "ArgMin")
def _arg(ctx, node, ins, attrs):
    x = ins[0]
    axis = check_axis(ctx, int(attrs.get("axis", 0)), rank_of(ctx, x), "attribute 'axis'")
    fn = math_ops.argmax if node.op_type == "ArgMax" else math_ops.argmin
    if attrs.get("select_last_index", 0):
        n = x.shape[axis] if x.shape is not None else None
        if n is None:
            raise ctx.error("select_last_index needs the size of the reduced axis")
        axis %= len(x.shape)
        flipped = getitem(x, (slice(None),) * axis + (slice(None, None, -1),))
        out = math_ops.subtract(ctx.constant(np.int64(n - 1)), fn(flipped, axis=axis, output_type=int64))
    else:
        out = fn(x, axis=axis, output_type=int64)
    if attrs.get("keepdims", 1):
        from ...api.array import expand_dims

        out = expand_dims(out, axis)
    return [out]
