"""Elementwise math, comparison and logic ops, each one scalar expression.

Dtypes follow NumPy 2 exactly (each primitive resolves like its ufunc), so `int32 / int32` is
float64 and `exp(int32)` is float64, as in NumPy.
"""
from __future__ import annotations

from functools import reduce

from ..ir.dtypes import as_dtype
from . import scalar as S
from .base import elementwise

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
