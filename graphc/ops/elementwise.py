"""Elementwise math, comparison and logic ops, each one scalar expression.

Dtypes follow NumPy 2 exactly (each primitive resolves like its ufunc), so `int32 / int32` is
float64 and `exp(int32)` is float64, as in NumPy.
"""
from __future__ import annotations

import math
from functools import reduce

from ..ir.dtypes import as_dtype
from . import scalar as sexpr
from .base import elementwise, register_gradient

# Arithmetic (binary)
Add = elementwise("Add", 2, lambda a, b: a + b, doc="a + b")
Sub = elementwise("Sub", 2, lambda a, b: a - b, doc="a - b")
Mul = elementwise("Mul", 2, lambda a, b: a * b, doc="a * b")
RealDiv = elementwise("RealDiv", 2, lambda a, b: a / b, doc="true division a / b (ints give float64)")
FloorDiv = elementwise("FloorDiv", 2, sexpr.floordiv, doc="a // b, rounding toward -inf; int // 0 is 0")
FloorMod = elementwise("FloorMod", 2, sexpr.mod, doc="a % b with the sign of b; int % 0 is 0")
Pow = elementwise("Pow", 2, sexpr.power, doc="a ** b; int ** negative truncates toward zero")
Maximum = elementwise("Maximum", 2, sexpr.maximum, doc="elementwise max; NaN propagates")
Minimum = elementwise("Minimum", 2, sexpr.minimum, doc="elementwise min; NaN propagates")
SquaredDifference = elementwise("SquaredDifference", 2, lambda a, b: sexpr.square(a - b), doc="(a - b) ** 2")
AddN = elementwise("AddN", None, lambda *xs: reduce(lambda a, b: a + b, xs), doc="sum of all inputs")

# Arithmetic and math (unary)
Neg = elementwise("Neg", 1, sexpr.neg, doc="-x")
Abs = elementwise("Abs", 1, sexpr.abs_, doc="|x|")
Sign = elementwise("Sign", 1, sexpr.sign, doc="-1, 0 or 1 (NaN for NaN)")
Square = elementwise("Square", 1, sexpr.square, doc="x * x")
Reciprocal = elementwise("Reciprocal", 1, lambda x: 1 / x, doc="1 / x (true division)")
Exp = elementwise("Exp", 1, sexpr.exp, doc="e ** x")
Expm1 = elementwise("Expm1", 1, sexpr.expm1, doc="e ** x - 1, accurate near 0")
Log = elementwise("Log", 1, sexpr.log, doc="natural logarithm")
Log1p = elementwise("Log1p", 1, sexpr.log1p, doc="log(1 + x), accurate near 0")
Sqrt = elementwise("Sqrt", 1, sexpr.sqrt, doc="square root")
Rsqrt = elementwise("Rsqrt", 1, sexpr.rsqrt, doc="1 / sqrt(x)")
Tanh = elementwise("Tanh", 1, sexpr.tanh, doc="hyperbolic tangent")
Sigmoid = elementwise("Sigmoid", 1, sexpr.sigmoid, doc="1 / (1 + exp(-x))")
Sin = elementwise("Sin", 1, sexpr.sin, doc="sine")
Cos = elementwise("Cos", 1, sexpr.cos, doc="cosine")
Erf = elementwise("Erf", 1, sexpr.erf, doc="the error function")
Floor = elementwise("Floor", 1, sexpr.floor, doc="round toward -inf")
Ceil = elementwise("Ceil", 1, sexpr.ceil, doc="round toward +inf")
Round = elementwise("Round", 1, sexpr.round_, doc="round half to even")
IsNan = elementwise("IsNan", 1, sexpr.isnan, doc="x is NaN")
IsInf = elementwise("IsInf", 1, sexpr.isinf, doc="x is +-inf")
IsFinite = elementwise("IsFinite", 1, sexpr.isfinite, doc="x is neither NaN nor +-inf")

# Comparison and logic
Less = elementwise("Less", 2, lambda a, b: a < b, doc="a < b")
LessEqual = elementwise("LessEqual", 2, lambda a, b: a <= b, doc="a <= b")
Greater = elementwise("Greater", 2, lambda a, b: a > b, doc="a > b")
GreaterEqual = elementwise("GreaterEqual", 2, lambda a, b: a >= b, doc="a >= b")
Equal = elementwise("Equal", 2, sexpr.equal, doc="a == b")
NotEqual = elementwise("NotEqual", 2, sexpr.not_equal, doc="a != b")
LogicalAnd = elementwise("LogicalAnd", 2, sexpr.logical_and, doc="a and b (bool)")
LogicalOr = elementwise("LogicalOr", 2, sexpr.logical_or, doc="a or b (bool)")
LogicalXor = elementwise("LogicalXor", 2, sexpr.logical_xor, doc="a xor b (bool)")
LogicalNot = elementwise("LogicalNot", 1, sexpr.logical_not, doc="not x (bool)")

# Selection, clipping, casting
Select = elementwise("Select", 3, sexpr.select, doc="where(cond, a, b)")
ClipByValue = elementwise(
    "ClipByValue", 3, lambda x, lo, hi: sexpr.minimum(sexpr.maximum(x, lo), hi),
    doc="min(max(x, lo), hi); NaN stays NaN",
)
Cast = elementwise(
    "Cast", 1, lambda x, dtype: sexpr.cast(x, as_dtype(dtype)), {"dtype": None},
    doc="convert to dtype; floats to ints truncate toward zero, anything to bool is x != 0",
)


# --------------------------------------------------------------------------- gradient rules
# rule(build, node, g) -> one gradient (or None) per input; `build` is graphc.api.gradient_builder. Every input
# gradient goes through b.unbroadcast, which sums broadcast dims away and casts to the input's
# dtype (a float32 input of a float64 op gets a float32 gradient).

def _binary_grad(op: str):
    def deco(fn):
        def rule(build, node, g):
            x, y = node.inputs
            gx, gy = fn(build, x, y, g, node.outputs[0])
            return [None if gx is None else build.unbroadcast(gx, x), None if gy is None else build.unbroadcast(gy, y)]
        register_gradient(op)(rule)
        return fn
    return deco


def _unary_grad(op: str):
    def deco(fn):
        register_gradient(op)(
            lambda build, node, g: [build.unbroadcast(fn(build, node.inputs[0], g, node.outputs[0]), node.inputs[0])]
        )
        return fn

    return deco


@_binary_grad("Add")
def _add_gradient(build, x, y, g, z):
    return g, g


@_binary_grad("Sub")
def _sub_gradient(build, x, y, g, z):
    return g, build.negative(g)


@_binary_grad("Mul")
def _mul_gradient(build, x, y, g, z):
    return build.multiply(g, y), build.multiply(g, x)


@_binary_grad("RealDiv")
def _real_div_gradient(build, x, y, g, z):
    return build.divide(g, y), build.negative(build.divide(build.multiply(g, z), y))


@_binary_grad("FloorDiv")
def _floor_div_gradient(build, x, y, g, z):
    return None, None  # piecewise constant


@_binary_grad("FloorMod")
def _floor_mod_gradient(build, x, y, g, z):
    return g, build.negative(build.multiply(g, build.apply1("FloorDiv", [x, y])))


@_binary_grad("Pow")
def _pow_gradient(build, x, y, g, z):
    gx = build.multiply(g, build.multiply(y, build.apply1("Pow", [x, build.subtract(y, 1)])))
    safe_log = build.where(
        build.greater(x, 0), build.log(build.where(build.greater(x, 0), x, build.ones_like(x))), build.zeros_like(x)
    )
    return gx, build.multiply(g, build.multiply(z, safe_log))


@_binary_grad("Maximum")
def _maximum_gradient(build, x, y, g, z):
    chosen = build.greater_equal(x, y)  # ties go to x, consistently
    return build.where(chosen, g, 0.0), build.where(chosen, 0.0, g)


@_binary_grad("Minimum")
def _minimum_gradient(build, x, y, g, z):
    chosen = build.less_equal(x, y)  # ties go to x, consistently
    return build.where(chosen, g, 0.0), build.where(chosen, 0.0, g)


@_binary_grad("SquaredDifference")
def _squared_difference_gradient(build, x, y, g, z):
    d = build.multiply(build.multiply(g, 2.0), build.subtract(x, y))
    return d, build.negative(d)


@register_gradient("AddN")
def _add_n_gradient(build, node, g):
    return [build.unbroadcast(g, x) for x in node.inputs]


@_unary_grad("Neg")
def _neg_gradient(build, x, g, y):
    return build.negative(g)


@_unary_grad("Abs")
def _abs_gradient(build, x, g, y):
    return build.multiply(g, build.sign(x))


@_unary_grad("Sign")
def _sign_gradient(build, x, g, y):
    return build.zeros_like(g)


@_unary_grad("Square")
def _square_gradient(build, x, g, y):
    return build.multiply(g, build.multiply(x, 2.0))


@_unary_grad("Reciprocal")
def _reciprocal_gradient(build, x, g, y):
    return build.negative(build.multiply(g, build.square(y)))


@_unary_grad("Exp")
def _exp_gradient(build, x, g, y):
    return build.multiply(g, y)


@_unary_grad("Expm1")
def _expm1_gradient(build, x, g, y):
    return build.multiply(g, build.exp(x))


@_unary_grad("Log")
def _log_gradient(build, x, g, y):
    return build.divide(g, x)


@_unary_grad("Log1p")
def _log1p_gradient(build, x, g, y):
    return build.divide(g, build.add(x, 1.0))


@_unary_grad("Sqrt")
def _sqrt_gradient(build, x, g, y):
    return build.divide(build.multiply(g, 0.5), y)


@_unary_grad("Rsqrt")
def _rsqrt_gradient(build, x, g, y):
    return build.multiply(build.multiply(g, -0.5), build.multiply(y, build.square(y)))


@_unary_grad("Tanh")
def _tanh_gradient(build, x, g, y):
    return build.multiply(g, build.subtract(1.0, build.square(y)))


@_unary_grad("Sigmoid")
def _sigmoid_gradient(build, x, g, y):
    return build.multiply(g, build.multiply(y, build.subtract(1.0, y)))


@_unary_grad("Sin")
def _sin_gradient(build, x, g, y):
    return build.multiply(g, build.cos(x))


@_unary_grad("Cos")
def _cos_gradient(build, x, g, y):
    return build.negative(build.multiply(g, build.sin(x)))


@_unary_grad("Erf")
def _erf_gradient(build, x, g, y):
    return build.multiply(g, build.multiply(2.0 / math.sqrt(math.pi), build.exp(build.negative(build.square(x)))))


for _name in ("Floor", "Ceil", "Round"):  # piecewise constant: no gradient, as in TF
    register_gradient(_name)(lambda build, node, g: [None])


@register_gradient("Select")
def _select_gradient(build, node, g):
    cond, x, y = node.inputs
    zero = build.zeros_like(g)
    return [None, build.unbroadcast(build.where(cond, g, zero), x), build.unbroadcast(build.where(cond, zero, g), y)]


@register_gradient("ClipByValue")
def _clip_by_value_gradient(build, node, g):
    x, lo, hi = node.inputs
    zero = build.zeros_like(g)
    below, above = build.less(x, lo), build.greater(x, hi)
    inside = build.logical_and(build.greater_equal(x, lo), build.less_equal(x, hi))
    return [
        build.unbroadcast(build.where(inside, g, zero), x),
        build.unbroadcast(build.where(below, g, zero), lo),
        build.unbroadcast(build.where(above, g, zero), hi),
    ]


@register_gradient("Cast")
def _cast_gradient(build, node, g):
    x = node.inputs[0]
    if not (x.dtype.is_floating and node.outputs[0].dtype.is_floating):
        return [None]
    return [build.cast(g, x.dtype)]
