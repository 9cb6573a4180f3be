"""Export rules for elementwise math, comparisons, logic, activations and reductions.

graphc promotes mixed operand types like NumPy and computes some ops in float (exp of an int is
float64); ONNX wants equal operand types and float inputs for transcendental ops. So each rule
casts operands to the dtype graphc computes in (the output dtype for arithmetic, the promoted
input dtype for comparisons) before the ONNX op.
"""
from __future__ import annotations

import math

import numpy as np

from ...ir.dtypes import bool_, int32, int64, promote
from ...ir.node import Node
from .export_rules import ExportContext, rule

_SAME = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div", "Maximum": "Max", "Minimum": "Min",
         "Pow": "Pow"}
_UNARY_FLOAT = {"Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Sin": "Sin",
                "Cos": "Cos", "Erf": "Erf", "Softplus": "Softplus", "Softsign": "Softsign", "Reciprocal": "Reciprocal"}
_UNARY_SAME = {"Neg": "Neg", "Abs": "Abs", "Sign": "Sign", "Relu": "Relu"}
_COMPARE = {"Less": "Less", "LessEqual": "LessOrEqual", "Greater": "Greater", "GreaterEqual": "GreaterOrEqual",
            "Equal": "Equal"}
_LOGIC = {"LogicalAnd": "And", "LogicalOr": "Or", "LogicalXor": "Xor"}


def _out(node: Node):
    return node.outputs[0].dtype


def _operands(ctx: ExportContext, node: Node, dtype=None) -> list[str]:
    dtype = dtype or _out(node)
    return [ctx.input(node, i, dtype) for i in range(len(node.inputs))]


def _scalar(ctx: ExportContext, value: float, dtype) -> str:
    return ctx.const(np.asarray(value, dtype=dtype.np), hint="scalar")


@rule(*_SAME)
def _binary(ctx, node):
    return [ctx.op(_SAME[node.type], _operands(ctx, node))]


@rule("AddN")
def _add_n(ctx, node):
    return [ctx.op("Sum", _operands(ctx, node))]


@rule("SquaredDifference")
def _squared_difference(ctx, node):
    d = ctx.op("Sub", _operands(ctx, node))
    return [ctx.op("Mul", [d, d])]


@rule(*_UNARY_FLOAT)
def _unary_float(ctx, node):
    return [ctx.op(_UNARY_FLOAT[node.type], _operands(ctx, node))]


@rule(*_UNARY_SAME)
def _unary_same(ctx, node):
    dtype = _out(node)
    if dtype.is_bool:  # graphc keeps bools for abs/relu; ONNX has no bool arithmetic
        x = ctx.input(node, 0, int32)
        return [ctx.cast(ctx.op(_UNARY_SAME[node.type], [x]), int32, bool_)]
    return [ctx.op(_UNARY_SAME[node.type], _operands(ctx, node))]


@rule("Square")
def _square(ctx, node):
    x, = _operands(ctx, node)
    return [ctx.op("Mul", [x, x])]


@rule("Rsqrt")
def _rsqrt(ctx, node):
    return [ctx.op("Reciprocal", [ctx.op("Sqrt", _operands(ctx, node))])]


@rule("Expm1")
def _expm1(ctx, node):
    x, = _operands(ctx, node)
    return [ctx.op("Sub", [ctx.op("Exp", [x]), _scalar(ctx, 1, _out(node))])]


@rule("Log1p")
def _log1p(ctx, node):
    x, = _operands(ctx, node)
    return [ctx.op("Log", [ctx.op("Add", [x, _scalar(ctx, 1, _out(node))])])]


@rule("Floor", "Ceil", "Round")
def _rounding(ctx, node):
    x, = _operands(ctx, node)
    if not _out(node).is_floating:
        return [ctx.op("Identity", [x])]  # integers are already whole
    return [ctx.op(node.type, [x])]


@rule("IsNan", "IsInf", "IsFinite")
def _classify(ctx, node):
    t = node.inputs[0]
    if not t.dtype.is_floating:  # integers are finite, never NaN or inf
        answer = ctx.const(np.asarray(node.type == "IsFinite"))
        return [ctx.op("Expand", [answer, ctx.op("Shape", [ctx.input(node, 0)])])]
    x = ctx.input(node, 0)
    if node.type == "IsNan":
        return [ctx.op("IsNaN", [x])]
    if node.type == "IsInf":
        return [ctx.op("IsInf", [x])]
    return [ctx.op("Not", [ctx.op("Or", [ctx.op("IsNaN", [x]), ctx.op("IsInf", [x])])])]


@rule(*_COMPARE)
def _compare(ctx, node):
    dtype = promote(*(t.dtype for t in node.inputs))
    if dtype.is_bool and node.type != "Equal":
        dtype = int32  # ONNX orders numbers only
    return [ctx.op(_COMPARE[node.type], _operands(ctx, node, dtype))]


@rule("NotEqual")
def _not_equal(ctx, node):
    dtype = promote(*(t.dtype for t in node.inputs))
    return [ctx.op("Not", [ctx.op("Equal", _operands(ctx, node, dtype))])]


@rule(*_LOGIC)
def _logic(ctx, node):
    return [ctx.op(_LOGIC[node.type], _operands(ctx, node, bool_))]


@rule("LogicalNot")
def _logical_not(ctx, node):
    return [ctx.op("Not", _operands(ctx, node, bool_))]


@rule("Select")
def _select(ctx, node):
    dtype = _out(node)
    return [ctx.op("Where", [ctx.input(node, 0, bool_), ctx.input(node, 1, dtype), ctx.input(node, 2, dtype)])]


@rule("ClipByValue")
def _clip(ctx, node):
    x, lo, hi = _operands(ctx, node)
    return [ctx.op("Min", [ctx.op("Max", [x, lo]), hi])]


@rule("Cast")
def _cast(ctx, node):
    return [ctx.op("Identity", [ctx.input(node, 0, _out(node))])]


@rule("FloorDiv", "FloorMod")
def _floor_div_mod(ctx, node):
    """NumPy's // and % (sign of the divisor); an integer division by zero gives 0 as in graphc."""
    dtype = _out(node)
    a, b = _operands(ctx, node)
    if dtype.is_floating:
        r = ctx.op("Mod", [a, b], fmod=1)
        zero = _scalar(ctx, 0, dtype)
        fix = ctx.op("And", [ctx.op("Not", [ctx.op("Equal", [r, zero])]),
                             ctx.op("Xor", [ctx.op("Less", [r, zero]), ctx.op("Less", [b, zero])])])
        mod = ctx.op("Where", [fix, ctx.op("Add", [r, b]), r])
        if node.type == "FloorMod":
            return [mod]
        return [ctx.op("Div", [ctx.op("Sub", [a, mod]), b])]  # exact, as NumPy's floor_divide
    zero = _scalar(ctx, 0, dtype)
    is_zero = ctx.op("Equal", [b, zero])
    safe = ctx.op("Where", [is_zero, _scalar(ctx, 1, dtype), b])
    mod = ctx.op("Mod", [a, safe], fmod=0)
    result = mod if node.type == "FloorMod" else ctx.op("Div", [ctx.op("Sub", [a, mod]), safe])
    return [ctx.op("Where", [is_zero, zero, result])]


# ----------------------------------------------------------------------------- activations
@rule("Relu6")
def _relu6(ctx, node):
    dtype = _out(node)
    x, = _operands(ctx, node)
    return [ctx.op("Min", [ctx.op("Max", [x, _scalar(ctx, 0, dtype)]), _scalar(ctx, 6, dtype)])]


@rule("LeakyRelu")
def _leaky_relu(ctx, node):
    return [ctx.op("LeakyRelu", _operands(ctx, node), alpha=float(node.attrs["alpha"]))]


@rule("Elu")
def _elu(ctx, node):
    return [ctx.op("Elu", _operands(ctx, node), alpha=float(node.attrs["alpha"]))]


@rule("Selu")
def _selu(ctx, node):
    from ...ops.activations import _SELU_ALPHA, _SELU_SCALE

    return [ctx.op("Selu", _operands(ctx, node), alpha=_SELU_ALPHA, gamma=_SELU_SCALE)]


@rule("Silu")
def _silu(ctx, node):
    x, = _operands(ctx, node)
    return [ctx.op("Mul", [x, ctx.op("Sigmoid", [x])])]


@rule("Gelu")
def _gelu(ctx, node):
    x, = _operands(ctx, node)
    approximate = bool(node.attrs["approximate"])
    if ctx.opset >= 20:
        return [ctx.op("Gelu", [x], approximate="tanh" if approximate else "none")]
    dtype = _out(node)
    half = _scalar(ctx, 0.5, dtype)
    one = _scalar(ctx, 1.0, dtype)
    if approximate:
        cube = ctx.op("Mul", [_scalar(ctx, 0.044715, dtype), ctx.op("Mul", [x, ctx.op("Mul", [x, x])])])
        inner = ctx.op("Mul", [_scalar(ctx, math.sqrt(2 / math.pi), dtype), ctx.op("Add", [x, cube])])
        core = ctx.op("Tanh", [inner])
    else:
        core = ctx.op("Erf", [ctx.op("Mul", [x, _scalar(ctx, 1 / math.sqrt(2), dtype)])])
    return [ctx.op("Mul", [ctx.op("Mul", [half, x]), ctx.op("Add", [one, core])])]


@rule("SigmoidCrossEntropyWithLogits")
def _sigmoid_xent(ctx, node):
    """max(x, 0) - x z + log(1 + exp(-|x|)), graphc's stable form."""
    dtype = _out(node)
    z, x = _operands(ctx, node)
    decay = ctx.op("Exp", [ctx.op("Neg", [ctx.op("Abs", [x])])])
    soft = ctx.op("Log", [ctx.op("Add", [_scalar(ctx, 1, dtype), decay])])
    return [ctx.op("Add", [ctx.op("Sub", [ctx.op("Relu", [x]), ctx.op("Mul", [x, z])]), soft])]


# ----------------------------------------------------------------------------- reductions
_REDUCE = {"Sum": "ReduceSum", "Prod": "ReduceProd", "Mean": "ReduceMean", "Max": "ReduceMax",
           "Min": "ReduceMin", "LogSumExp": "ReduceLogSumExp"}


def _axes(node: Node):
    axis = node.attrs["axis"]
    return None if axis is None else [int(a) for a in (axis if isinstance(axis, tuple) else (axis,))]


@rule(*_REDUCE)
def _reduce(ctx, node):
    x = ctx.input(node, 0, _out(node))
    if _axes(node) == []:  # reducing over no axis: ONNX would read an empty axes list as all
        return [ctx.op("Identity", [x])]
    return [ctx.reduce(_REDUCE[node.type], x, _axes(node), node.attrs["keepdims"])]


@rule("Any", "All")
def _any_all(ctx, node):
    x = ctx.input(node, 0, int32)
    if _axes(node) == []:
        return [ctx.cast(x, int32, bool_)]
    reduced = ctx.reduce("ReduceMax" if node.type == "Any" else "ReduceMin", x, _axes(node), node.attrs["keepdims"])
    return [ctx.cast(reduced, int32, bool_)]


@rule("ArgMax", "ArgMin")
def _arg(ctx, node):
    t = node.inputs[0]
    x = ctx.input(node, 0)
    if t.dtype.is_bool:
        x = ctx.cast(x, bool_, int32)
    out = ctx.op(node.type, [x], axis=int(node.attrs["axis"]), keepdims=0)
    return [ctx.cast(out, int64, _out(node))]
