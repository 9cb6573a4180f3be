"""Dtype promotion tables: graphc's build-time result dtypes against NumPy 2.

Tensor with tensor: NumPy's result dtype with int8/int16 widened to int32 and float16 to float32,
or gc.DTypeError where NumPy raises. Python scalars are weak (NEP 50), and graphc refuses a Python
int that does not fit the dtype it would take, with gc.DTypeError.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import graphc as gc
from tests.helpers import run

TESTED_OPS = {
    "Add", "Sub", "Mul", "RealDiv", "FloorDiv", "FloorMod", "Pow", "Maximum", "Minimum", "Less", "Equal",
    "Neg", "Abs", "Sign", "Square", "Reciprocal", "Exp", "Expm1", "Log", "Log1p", "Sqrt", "Rsqrt", "Tanh",
    "Sigmoid", "Sin", "Cos", "Erf", "Floor", "Ceil", "Round", "IsNan", "IsInf", "IsFinite", "LogicalNot",
    "Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Softplus", "Softsign", "Silu", "Gelu",
}

DTYPES = ["bool", "int32", "int64", "float32", "float64"]
_WIDEN = {"int8": "int32", "int16": "int32", "uint8": "int32", "uint16": "int32", "uint32": "int64",
          "float16": "float32"}


def widened(dtype) -> str:
    name = np.dtype(dtype).name
    return _WIDEN.get(name, name)


def float_of(dtype) -> str:
    return widened(np.exp(np.ones(1, dtype)).dtype)


def numpy_result(fn, *operands):
    """NumPy's widened result dtype name, or None where NumPy refuses the types (or, for a
    Python int, the value: OverflowError)."""
    try:
        with np.errstate(all="ignore"):
            return widened(np.asarray(fn(*operands)).dtype)
    except (TypeError, OverflowError):  # UFuncTypeError, DTypePromotionError, out-of-bound int
        return None
    except ValueError:
        # NumPy's "integers to negative integer powers": a rule on values, not on types (graphc
        # defines the result). The dtype is still NumPy's, resolved from the types alone.
        types = tuple(o.dtype if isinstance(o, np.ndarray) else np.dtype(bool) if isinstance(o, bool)
                      else type(o) for o in operands)
        return widened(fn.resolve_dtypes(types + (None,))[-1])


BINARY = {
    "Add": (gc.add, np.add),
    "Sub": (gc.subtract, np.subtract),
    "Mul": (gc.multiply, np.multiply),
    "RealDiv": (gc.divide, np.true_divide),
    "FloorDiv": (gc.floordiv, np.floor_divide),
    "FloorMod": (gc.mod, np.remainder),
    "Pow": (gc.pow, np.power),
    "Maximum": (gc.maximum, np.maximum),
    "Minimum": (gc.minimum, np.minimum),
    "Less": (gc.less, np.less),
    "Equal": (gc.equal, np.equal),
}


@pytest.mark.parametrize("db", DTYPES)
@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_tensor_tensor_promotion(name, da, db):
    fn, ufunc = BINARY[name]
    want = numpy_result(ufunc, np.ones(2, da), np.ones(2, db))
    a, b = gc.placeholder(da, (2,)), gc.placeholder(db, (2,))
    if want is None:
        with pytest.raises(gc.DTypeError):
            fn(a, b)
    else:
        assert fn(a, b).dtype.name == want
        assert fn(b, a).dtype.name == numpy_result(ufunc, np.ones(2, db), np.ones(2, da))


def _leaky(x):
    return np.where(x > 0, x, 0.2 * x)


# name: (graphc function, NumPy oracle or None for "float type of the input")
UNARY = {
    "Neg": (gc.negative, np.negative),
    "Abs": (gc.abs, np.absolute),
    "Sign": (gc.sign, np.sign),
    "Square": (gc.square, np.square),
    "Reciprocal": (gc.reciprocal, lambda x: np.true_divide(1, x)),
    "Exp": (gc.exp, np.exp),
    "Expm1": (gc.expm1, np.expm1),
    "Log": (gc.log, np.log),
    "Log1p": (gc.log1p, np.log1p),
    "Sqrt": (gc.sqrt, np.sqrt),
    "Rsqrt": (gc.rsqrt, None),
    "Tanh": (gc.tanh, np.tanh),
    "Sigmoid": (gc.sigmoid, None),
    "Sin": (gc.sin, np.sin),
    "Cos": (gc.cos, np.cos),
    "Erf": (gc.erf, None),
    "Floor": (gc.floor, np.floor),
    "Ceil": (gc.ceil, np.ceil),
    "Round": (gc.round, np.rint),
    "IsNan": (gc.is_nan, np.isnan),
    "IsInf": (gc.is_inf, np.isinf),
    "IsFinite": (gc.is_finite, np.isfinite),
    "LogicalNot": (gc.logical_not, "bool-only"),
    "Relu": (gc.nn.relu, lambda x: np.maximum(x, 0)),
    "Relu6": (gc.nn.relu6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "LeakyRelu": (gc.nn.leaky_relu, None),
    "Elu": (gc.nn.elu, None),
    "Selu": (gc.nn.selu, None),
    "Softplus": (gc.nn.softplus, None),
    "Softsign": (gc.nn.softsign, None),
    "Silu": (gc.nn.silu, None),
    "Gelu": (gc.nn.gelu, None),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_promotion(name, dtype):
    fn, oracle = UNARY[name]
    if oracle is None:
        want = float_of(dtype)
    elif oracle == "bool-only":
        want = "bool" if dtype == "bool" else None
    else:
        want = numpy_result(oracle, np.ones(2, dtype))
    x = gc.placeholder(dtype, (2,))
    if want is None:
        with pytest.raises(gc.DTypeError):
            fn(x)
    else:
        assert fn(x).dtype.name == want


def test_gelu_approximate_promotion():
    for d in DTYPES:
        assert gc.nn.gelu(gc.placeholder(d, (2,)), approximate=True).dtype.name == float_of(d)


def test_where_and_clip_promotion():
    for da in DTYPES:
        for db in DTYPES:
            c = gc.placeholder(gc.bool, (2,))
            a, b = gc.placeholder(da, (2,)), gc.placeholder(db, (2,))
            assert gc.where(c, a, b).dtype.name == widened(np.where(np.ones(2, bool), np.ones(2, da),
                                                                    np.ones(2, db)).dtype)
            assert gc.clip_by_value(a, b, b).dtype.name == widened(
                np.minimum(np.maximum(np.ones(2, da), np.ones(2, db)), np.ones(2, db)).dtype)


# --------------------------------------------------------------------------- Python scalars
SCALARS = [True, False, 0, 2, -3, 2.5, -0.5, 1e10, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 40,
           2 ** 63 - 1, 2 ** 63, -(2 ** 63)]
BEYOND_INT64 = [2 ** 64, -(2 ** 63) - 1, 10 ** 30]


def _refused_int(scalar, dtype) -> bool:
    """graphc refuses a Python int that does not fit the dtype NEP 50 gives it next to `dtype`."""
    if isinstance(scalar, bool) or not isinstance(scalar, int):
        return False
    target = np.dtype(dtype) if np.dtype(dtype).kind != "b" else np.dtype("int64")
    if target.kind != "i":
        return False
    info = np.iinfo(target)
    return not info.min <= scalar <= info.max


@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_python_scalar_promotion(name, dtype, scalar):
    fn, ufunc = BINARY[name]
    x = gc.placeholder(dtype, (2,))
    arr = np.ones(2, dtype)
    for forward in (True, False):
        operands = (arr, scalar) if forward else (scalar, arr)
        want = None if _refused_int(scalar, dtype) else numpy_result(ufunc, *operands)
        build = (lambda: fn(x, scalar)) if forward else (lambda: fn(scalar, x))
        if want is None:
            with pytest.raises(gc.DTypeError):
                build()
        else:
            assert build().dtype.name == want, f"{'x op s' if forward else 's op x'}"


def test_weak_scalar_headline_cases(backend):
    xf = gc.placeholder(gc.float32, (2,))
    xi = gc.placeholder(gc.int32, (2,))
    assert (xf * 2.0).dtype == gc.float32
    assert (xi * 2.5).dtype == gc.float64
    with pytest.raises(gc.DTypeError):
        xi + 2 ** 40
    assert (xf + [1, 2]).dtype == gc.float32
    assert (xf + np.ones(2)).dtype == gc.float64
    assert (xf + np.float32(2)).dtype == gc.float32
    assert (xi + np.int64(2)).dtype == gc.int64  # NumPy scalars are strong in NumPy 2
    got = run(xi * 2.5, {xi: np.array([1, -3], np.int32)}, backend)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [2.5, -7.5])


def test_standalone_python_values_take_graphc_defaults(backend):
    assert gc.constant(2.0).dtype == gc.float32
    assert gc.constant(2).dtype == gc.int32
    assert gc.constant(True).dtype == gc.bool
    assert gc.constant([1, 2.5]).dtype == gc.float32
    assert gc.constant(2 ** 40).dtype == gc.int64
    assert gc.constant(2.0, dtype=gc.float64).dtype == gc.float64
    assert gc.add(2, 3).dtype == gc.int32
    assert gc.add(2, 3.5).dtype == gc.float32
    assert gc.multiply(True, 2).dtype == gc.int32
    got = run(gc.add(2, 3.5), backend=backend)
    assert got.dtype == np.float32 and got == 5.5
    with pytest.raises(gc.DTypeError):
        gc.constant(2 ** 64)
    with pytest.raises(gc.DTypeError):
        gc.constant(2.5, dtype=gc.int32)


def test_scalar_promotion_values(backend):
    """The weak scalar is converted to the result type exactly (no float32 rounding of ints)."""
    xi = gc.placeholder(gc.int64, (1,))
    got = run(xi + (2 ** 62 + 1), {xi: np.array([1], np.int64)}, backend)
    assert got.dtype == np.int64 and int(got[0]) == 2 ** 62 + 2
    xf = gc.placeholder(gc.float64, (1,))
    got = run(xf * math.pi, {xf: np.array([2.0])}, backend)
    assert got[0] == 2 * math.pi


@pytest.mark.parametrize("scalar", BEYOND_INT64, ids=repr)
@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_python_int_beyond_int64_is_refused_next_to_ints(dtype, scalar):
    x = gc.placeholder(dtype, (2,))
    for name, (fn, _) in BINARY.items():
        with pytest.raises(gc.DTypeError):
            fn(x, scalar)
        with pytest.raises(gc.DTypeError):
            fn(scalar, x)


@pytest.mark.parametrize("scalar", BEYOND_INT64, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_int_beyond_int64_is_weak_next_to_floats(dtype, scalar, backend):
    """NEP 50: a Python int next to a float tensor becomes that float type, whatever its size
    (np.ones(2, float32) + 2 ** 64 is float32); it fits, so there is nothing to refuse."""
    x = gc.placeholder(dtype, (2,))
    for name, (fn, ufunc) in BINARY.items():
        want = numpy_result(ufunc, np.ones(2, dtype), scalar)
        try:
            got = fn(x, scalar)
        except gc.DTypeError as err:
            raise AssertionError(
                f"{name}({dtype} tensor, {scalar!r}) raised {err!r}, NumPy gives {want}; the Python int "
                "converts to the float type exactly as a float would") from None
        assert got.dtype.name == want
    got = run(x * scalar, {x: np.ones(2, dtype)}, backend)
    np.testing.assert_array_equal(got, np.ones(2, dtype) * scalar)
