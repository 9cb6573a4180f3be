"""Module-level math: elementwise ops, reductions, matmul, cast, where, clip (TF1 names)."""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import GraphcError
from ..ir.dtypes import as_dtype, int64
from ..ir.tensor import Tensor
from .convert import apply1, as_int_tuple, convert_to_tensor, elementwise_op


def _binary(op: str, doc: str):
    def fn(x: Any, y: Any, name: str | None = None) -> Tensor:
        return elementwise_op(op, x, y, name=name)
    fn.__doc__ = doc
    return fn


def _unary(op: str, doc: str):
    def fn(x: Any, name: str | None = None) -> Tensor:
        return elementwise_op(op, x, name=name)
    fn.__doc__ = doc
    return fn


add = _binary("Add", "x + y, broadcasting like NumPy.")
subtract = _binary("Sub", "x - y.")
multiply = _binary("Mul", "x * y.")
divide = _binary("RealDiv", "True division x / y (integers give float64, like NumPy).")
truediv = divide
floordiv = _binary("FloorDiv", "x // y, rounding toward -inf (integer division by zero gives 0).")
mod = _binary("FloorMod", "x % y with the sign of y (as Python and NumPy).")
floormod = mod
pow = _binary("Pow", "x ** y.")  # noqa: A001 - TF1's name
maximum = _binary("Maximum", "Elementwise maximum (NaN propagates).")
minimum = _binary("Minimum", "Elementwise minimum (NaN propagates).")
squared_difference = _binary("SquaredDifference", "(x - y) ** 2.")
equal = _binary("Equal", "x == y elementwise (bool).")
not_equal = _binary("NotEqual", "x != y elementwise (bool).")
less = _binary("Less", "x < y elementwise (bool).")
less_equal = _binary("LessEqual", "x <= y elementwise (bool).")
greater = _binary("Greater", "x > y elementwise (bool).")
greater_equal = _binary("GreaterEqual", "x >= y elementwise (bool).")
logical_and = _binary("LogicalAnd", "x and y for bool tensors.")
logical_or = _binary("LogicalOr", "x or y for bool tensors.")
logical_xor = _binary("LogicalXor", "x xor y for bool tensors.")

negative = _unary("Neg", "-x.")
abs = _unary("Abs", "|x|.")  # noqa: A001
sign = _unary("Sign", "-1, 0 or 1.")
square = _unary("Square", "x * x.")
reciprocal = _unary("Reciprocal", "1 / x.")
exp = _unary("Exp", "e ** x.")
expm1 = _unary("Expm1", "e ** x - 1, accurate for small x.")
log = _unary("Log", "Natural logarithm.")
log1p = _unary("Log1p", "log(1 + x), accurate for small x.")
sqrt = _unary("Sqrt", "Square root.")
rsqrt = _unary("Rsqrt", "1 / sqrt(x).")
tanh = _unary("Tanh", "Hyperbolic tangent.")
sigmoid = _unary("Sigmoid", "1 / (1 + e ** -x).")
sin = _unary("Sin", "Sine.")
cos = _unary("Cos", "Cosine.")
erf = _unary("Erf", "The error function.")
floor = _unary("Floor", "Round toward -inf.")
ceil = _unary("Ceil", "Round toward +inf.")
round = _unary("Round", "Round half to even.")  # noqa: A001
is_nan = _unary("IsNan", "x is NaN.")
is_inf = _unary("IsInf", "x is +-inf.")
is_finite = _unary("IsFinite", "x is finite.")
logical_not = _unary("LogicalNot", "not x for a bool tensor.")


def add_n(inputs: Sequence[Any], name: str | None = None) -> Tensor:
    """The sum of a list of tensors of one shape."""
    if not inputs:
        raise GraphcError("add_n needs at least one tensor")
    if len(inputs) == 1:
        return convert_to_tensor(inputs[0])
    return elementwise_op("AddN", *inputs, name=name)


def where(condition: Any, x: Any = None, y: Any = None, name: str | None = None) -> Tensor:
    """x where condition is true, else y (broadcasting all three)."""
    if x is None or y is None:
        raise GraphcError(
            "where(condition) without x and y would return the indices of true elements, whose "
            "number is only known at run time; graphc compiles for static shapes",
            hint="use where(condition, x, y), or a mask: x * gc.cast(condition, x.dtype)")
    return elementwise_op("Select", condition, x, y, name=name, typed=(1, 2))


def cast(x: Any, dtype: Any, name: str | None = None) -> Tensor:
    """x converted to dtype (float -> int truncates toward zero; -> bool means != 0)."""
    dtype = as_dtype(dtype)
    x = convert_to_tensor(x)
    if x.dtype is dtype:
        return x
    return apply1("Cast", [x], {"dtype": dtype}, name)


def clip_by_value(t: Any, clip_value_min: Any, clip_value_max: Any, name: str | None = None) -> Tensor:
    """min(max(t, clip_value_min), clip_value_max)."""
    return elementwise_op("ClipByValue", t, clip_value_min, clip_value_max, name=name)


def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False,
           name: str | None = None) -> Tensor:
    """a @ b, batched over broadcast leading dims; transpose_* transpose the last two dims."""
    a, b = convert_to_tensor(a), convert_to_tensor(b)
    return apply1("MatMul", [a, b], {"transpose_a": bool(transpose_a), "transpose_b": bool(transpose_b)}, name)


# --------------------------------------------------------------------------- reductions
def _axes(axis: Any) -> tuple[int, ...] | None:
    return None if axis is None else as_int_tuple(axis, "axis")


def _reducer(op: str, doc: str):
    def fn(input_tensor: Any, axis: Any = None, keepdims: bool = False, name: str | None = None,
           reduction_indices: Any = None, keep_dims: bool | None = None) -> Tensor:
        if axis is None:
            axis = reduction_indices  # TF1's older name
        if keep_dims is not None:
            keepdims = keep_dims
        x = convert_to_tensor(input_tensor)
        return apply1(op, [x], {"axis": _axes(axis), "keepdims": bool(keepdims)}, name)
    fn.__doc__ = doc + " `axis` is None (all), an int or a tuple; `keepdims` keeps size-1 dims."
    return fn


reduce_sum = _reducer("Sum", "Sum over axes.")
reduce_mean = _reducer("Mean", "Mean over axes (integers give float64).")
reduce_max = _reducer("Max", "Maximum over axes.")
reduce_min = _reducer("Min", "Minimum over axes.")
reduce_prod = _reducer("Prod", "Product over axes.")
reduce_logsumexp = _reducer("LogSumExp", "log(sum(exp(x))) over axes, computed stably.")
reduce_any = _reducer("Any", "Logical or over axes.")
reduce_all = _reducer("All", "Logical and over axes.")


def _arg_reducer(op: str, doc: str):
    def fn(input: Any, axis: int | None = None, output_type: Any = int64, name: str | None = None,  # noqa: A002
           dimension: int | None = None) -> Tensor:
        if axis is None:
            axis = dimension if dimension is not None else 0
        x = convert_to_tensor(input)
        return apply1(op, [x], {"axis": int(axis), "output_type": as_dtype(output_type)}, name)
    fn.__doc__ = doc
    return fn


argmax = _arg_reducer("ArgMax", "Index of the largest value along axis (default 0, as TF1).")
argmin = _arg_reducer("ArgMin", "Index of the smallest value along axis (default 0, as TF1).")
