"""Elementwise math, comparison and logic ops, each one scalar expression.

Dtypes follow NumPy 2 exactly (each primitive resolves like its ufunc), so `int32 / int32` is
float64 and `exp(int32)` is float64, as in NumPy.
"""
from __future__ import annotations

import math
from functools import reduce

from ..ir.dtypes import as_dtype
from . import scalar as S
from .base import elementwise, register_gradient

# Arithmetic (binary)
Add = elementwise("Add", 2, lambda a, b: a + b, doc="a + b")
Sub = elementwise("Sub", 2, lambda a, b: a - b, doc="a - b")
Mul = elementwise("Mul", 2, lambda a, b: a * b, doc="a * b")
RealDiv = elementwise("RealDiv", 2, lambda a, b: a / b, doc="true division a / b (ints give float64)")
FloorDiv = elementwise("FloorDiv", 2, S.floordiv, doc="a // b, rounding toward -inf; int // 0 is 0")
FloorMod = elementwise("FloorMod", 2, S.mod, doc="a % b with the sign of b; int % 0 is 0")
Pow = elementwise("Pow", 2, S.power, doc="a ** b; int ** negative truncates toward zero")
Maximum = elementwise("Maximum", 2, S.maximum, doc="elementwise max; NaN propagates")
Minimum = elementwise("Minimum", 2, S.minimum, doc="elementwise min; NaN propagates")
SquaredDifference = elementwise("SquaredDifference", 2, lambda a, b: S.square(a - b), doc="(a - b) ** 2")
AddN = elementwise("AddN", None, lambda *xs: reduce(lambda a, b: a + b, xs), doc="sum of all inputs")

# Arithmetic and math (unary)
Neg = elementwise("Neg", 1, S.neg, doc="-x")
Abs = elementwise("Abs", 1, S.abs_, doc="|x|")
Sign = elementwise("Sign", 1, S.sign, doc="-1, 0 or 1 (NaN for NaN)")
Square = elementwise("Square", 1, S.square, doc="x * x")
Reciprocal = elementwise("Reciprocal", 1, lambda x: 1 / x, doc="1 / x (true division)")
Exp = elementwise("Exp", 1, S.exp, doc="e ** x")
Expm1 = elementwise("Expm1", 1, S.expm1, doc="e ** x - 1, accurate near 0")
Log = elementwise("Log", 1, S.log, doc="natural logarithm")
Log1p = elementwise("Log1p", 1, S.log1p, doc="log(1 + x), accurate near 0")
Sqrt = elementwise("Sqrt", 1, S.sqrt, doc="square root")
Rsqrt = elementwise("Rsqrt", 1, S.rsqrt, doc="1 / sqrt(x)")
Tanh = elementwise("Tanh", 1, S.tanh, doc="hyperbolic tangent")
Sigmoid = elementwise("Sigmoid", 1, S.sigmoid, doc="1 / (1 + exp(-x))")
Sin = elementwise("Sin", 1, S.sin, doc="sine")
Cos = elementwise("Cos", 1, S.cos, doc="cosine")
Erf = elementwise("Erf", 1, S.erf, doc="the error function")
Floor = elementwise("Floor", 1, S.floor, doc="round toward -inf")
Ceil = elementwise("Ceil", 1, S.ceil, doc="round toward +inf")
Round = elementwise("Round", 1, S.round_, doc="round half to even")
IsNan = elementwise("IsNan", 1, S.isnan, doc="x is NaN")
IsInf = elementwise("IsInf", 1, S.isinf, doc="x is +-inf")
IsFinite = elementwise("IsFinite", 1, S.isfinite, doc="x is neither NaN nor +-inf")

# Comparison and logic
Less = elementwise("Less", 2, lambda a, b: a < b, doc="a < b")
LessEqual = elementwise("LessEqual", 2, lambda a, b: a <= b, doc="a <= b")
Greater = elementwise("Greater", 2, lambda a, b: a > b, doc="a > b")
GreaterEqual = elementwise("GreaterEqual", 2, lambda a, b: a >= b, doc="a >= b")
Equal = elementwise("Equal", 2, S.equal, doc="a == b")
NotEqual = elementwise("NotEqual", 2, S.not_equal, doc="a != b")
LogicalAnd = elementwise("LogicalAnd", 2, S.logical_and, doc="a and b (bool)")
LogicalOr = elementwise("LogicalOr", 2, S.logical_or, doc="a or b (bool)")
LogicalXor = elementwise("LogicalXor", 2, S.logical_xor, doc="a xor b (bool)")
LogicalNot = elementwise("LogicalNot", 1, S.logical_not, doc="not x (bool)")

# Selection, clipping, casting
Select = elementwise("Select", 3, S.select, doc="where(cond, a, b)")
ClipByValue = elementwise(
    "ClipByValue", 3, lambda x, lo, hi: S.minimum(S.maximum(x, lo), hi),
    doc="min(max(x, lo), hi); NaN stays NaN",
)
Cast = elementwise(
    "Cast", 1, lambda x, dtype: S.cast(x, as_dtype(dtype)), {"dtype": None},
    doc="convert to dtype; floats to ints truncate toward zero, anything to bool is x != 0",
)


# --------------------------------------------------------------------------- gradient rules
# rule(b, node, g) -> one gradient (or None) per input; `b` is graphc.api.builder. Every input
# gradient goes through b.unbroadcast, which sums broadcast dims away and casts to the input's
# dtype (a float32 input of a float64 op gets a float32 gradient).

def _binary_grad(op: str):
    def deco(fn):
        def rule(b, node, g):
            x, y = node.inputs
            gx, gy = fn(b, x, y, g, node.outputs[0])
            return [None if gx is None else b.unbroadcast(gx, x), None if gy is None else b.unbroadcast(gy, y)]
        register_gradient(op)(rule)
        return fn
    return deco


def _unary_grad(op: str):
    def deco(fn):
        register_gradient(op)(lambda b, node, g: [b.unbroadcast(fn(b, node.inputs[0], g, node.outputs[0]), node.inputs[0])])
        return fn
    return deco


@_binary_grad("Add")
def _(b, x, y, g, z):
    return g, g


@_binary_grad("Sub")
def _(b, x, y, g, z):
    return g, b.negative(g)


@_binary_grad("Mul")
def _(b, x, y, g, z):
    return b.multiply(g, y), b.multiply(g, x)


@_binary_grad("RealDiv")
def _(b, x, y, g, z):
    return b.divide(g, y), b.negative(b.divide(b.multiply(g, z), y))


@_binary_grad("FloorDiv")
def _(b, x, y, g, z):
    return None, None  # piecewise constant


@_binary_grad("FloorMod")
def _(b, x, y, g, z):
    return g, b.negative(b.multiply(g, b.apply1("FloorDiv", [x, y])))


@_binary_grad("Pow")
def _(b, x, y, g, z):
    gx = b.multiply(g, b.multiply(y, b.apply1("Pow", [x, b.subtract(y, 1)])))
    safe_log = b.where(b.greater(x, 0), b.log(b.where(b.greater(x, 0), x, b.ones_like(x))), b.zeros_like(x))
    return gx, b.multiply(g, b.multiply(z, safe_log))


@_binary_grad("Maximum")
def _(b, x, y, g, z):
    chosen = b.greater_equal(x, y)  # ties go to x, consistently
    return b.where(chosen, g, 0.0), b.where(chosen, 0.0, g)


@_binary_grad("Minimum")
def _(b, x, y, g, z):
    chosen = b.less_equal(x, y)  # ties go to x, consistently
    return b.where(chosen, g, 0.0), b.where(chosen, 0.0, g)


@_binary_grad("SquaredDifference")
def _(b, x, y, g, z):
    d = b.multiply(b.multiply(g, 2.0), b.subtract(x, y))
    return d, b.negative(d)


@register_gradient("AddN")
def _(b, node, g):
    return [b.unbroadcast(g, x) for x in node.inputs]


@_unary_grad("Neg")
def _(b, x, g, y):
    return b.negative(g)


@_unary_grad("Abs")
def _(b, x, g, y):
    return b.multiply(g, b.sign(x))


@_unary_grad("Sign")
def _(b, x, g, y):
    return b.zeros_like(g)


@_unary_grad("Square")
def _(b, x, g, y):
    return b.multiply(g, b.multiply(x, 2.0))


@_unary_grad("Reciprocal")
def _(b, x, g, y):
    return b.negative(b.multiply(g, b.square(y)))


@_unary_grad("Exp")
def _(b, x, g, y):
    return b.multiply(g, y)


@_unary_grad("Expm1")
def _(b, x, g, y):
    return b.multiply(g, b.exp(x))


@_unary_grad("Log")
def _(b, x, g, y):
    return b.divide(g, x)


@_unary_grad("Log1p")
def _(b, x, g, y):
    return b.divide(g, b.add(x, 1.0))


@_unary_grad("Sqrt")
def _(b, x, g, y):
    return b.divide(b.multiply(g, 0.5), y)


@_unary_grad("Rsqrt")
def _(b, x, g, y):
    return b.multiply(b.multiply(g, -0.5), b.multiply(y, b.square(y)))


@_unary_grad("Tanh")
def _(b, x, g, y):
    return b.multiply(g, b.subtract(1.0, b.square(y)))


@_unary_grad("Sigmoid")
def _(b, x, g, y):
    return b.multiply(g, b.multiply(y, b.subtract(1.0, y)))


@_unary_grad("Sin")
def _(b, x, g, y):
    return b.multiply(g, b.cos(x))


@_unary_grad("Cos")
def _(b, x, g, y):
    return b.negative(b.multiply(g, b.sin(x)))


@_unary_grad("Erf")
def _(b, x, g, y):
    return b.multiply(g, b.multiply(2.0 / math.sqrt(math.pi), b.exp(b.negative(b.square(x)))))


for _name in ("Floor", "Ceil", "Round"):  # piecewise constant: no gradient, as in TF
    register_gradient(_name)(lambda b, node, g: [None])


@register_gradient("Select")
def _(b, node, g):
    cond, x, y = node.inputs
    zero = b.zeros_like(g)
    return [None, b.unbroadcast(b.where(cond, g, zero), x), b.unbroadcast(b.where(cond, zero, g), y)]


@register_gradient("ClipByValue")
def _(b, node, g):
    x, lo, hi = node.inputs
    zero = b.zeros_like(g)
    below, above = b.less(x, lo), b.greater(x, hi)
    inside = b.logical_and(b.greater_equal(x, lo), b.less_equal(x, hi))
    return [b.unbroadcast(b.where(inside, g, zero), x), b.unbroadcast(b.where(below, g, zero), lo),
            b.unbroadcast(b.where(above, g, zero), hi)]


@register_gradient("Cast")
def _(b, node, g):
    x = node.inputs[0]
    if not (x.dtype.is_floating and node.outputs[0].dtype.is_floating):
        return [None]
    return [b.cast(g, x.dtype)]
