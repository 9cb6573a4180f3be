"""Elementwise ops (graphc/ops/elementwise.py and graphc/ops/activations.py) against NumPy.

Every case checks the values, the result dtype (NumPy's, with int8/int16 widened to int32 and
float16 to float32; the float type of the input for the composite activations), the static shape
inferred from fully known placeholders (exact) and from placeholders whose dims are all unknown
(compatible with the result).
"""
from __future__ import annotations

import math
import operator

import numpy as np
import pytest

import graphc as gc
from tests.helpers import assert_close, random_array, run

TESTED_OPS = {
    "Add", "Sub", "Mul", "RealDiv", "FloorDiv", "FloorMod", "Pow", "Maximum", "Minimum",
    "SquaredDifference", "AddN", "Neg", "Abs", "Sign", "Square", "Reciprocal", "Exp", "Expm1", "Log",
    "Log1p", "Sqrt", "Rsqrt", "Tanh", "Sigmoid", "Sin", "Cos", "Erf", "Floor", "Ceil", "Round", "IsNan",
    "IsInf", "IsFinite", "Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual",
    "LogicalAnd", "LogicalOr", "LogicalXor", "LogicalNot", "Select", "ClipByValue", "Cast", "Relu",
    "Relu6", "LeakyRelu", "Elu", "Selu", "Softplus", "Softsign", "Silu", "Gelu",
    "SigmoidCrossEntropyWithLogits", "MatMul",
}

DTYPES = ["bool", "int32", "int64", "float32", "float64"]
FLOATS = ["float32", "float64"]
_WIDEN = {"int8": "int32", "int16": "int32", "uint8": "int32", "uint16": "int32", "uint32": "int64",
          "float16": "float32"}


# --------------------------------------------------------------------------- oracle helpers
def widened(dtype) -> np.dtype:
    """NumPy's result dtype mapped into graphc's five dtypes."""
    name = np.dtype(dtype).name
    return np.dtype(_WIDEN.get(name, name))


def float_of(dtype) -> np.dtype:
    """The float type of a floating function of `dtype` (like NumPy's exp, widened)."""
    return widened(np.exp(np.zeros(0, dtype)).dtype)


def shape_compatible(static, actual) -> bool:
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def expected_of(oracle, arrays, dtype=None) -> np.ndarray:
    """The oracle's value as an array of the expected result dtype."""
    with np.errstate(all="ignore"):
        out = np.asarray(oracle(*arrays))
        if out.dtype == np.float16:  # a bool-only input: graphc computes in float32
            out = np.asarray(oracle(*[a.astype(np.float32) if a.dtype == np.bool_ else a for a in arrays]))
    want = np.dtype(dtype) if dtype is not None else widened(out.dtype)
    with np.errstate(all="ignore"):
        return out.astype(want)


def check(build, oracle, arrays, backend, dtype=None, rtol=None, atol=None):
    """build(*tensors) -> tensor against oracle(*arrays), with known and with unknown dims."""
    arrays = [np.asarray(a) for a in arrays]
    expected = expected_of(oracle, arrays, dtype)
    want = expected.dtype

    known = [gc.placeholder(a.dtype, a.shape) for a in arrays]
    out = build(*known)
    assert isinstance(out, gc.Tensor)
    assert out.dtype.name == want.name, f"dtype {out.dtype.name}, NumPy gives {want.name}"
    assert out.shape == expected.shape, f"inferred shape {out.shape}, result shape {expected.shape}"
    got = run(out, dict(zip(known, arrays)), backend)
    assert got.dtype == want
    assert_close(got, expected, dtype=want, rtol=rtol, atol=atol)

    unknown = [gc.placeholder(a.dtype, [None] * a.ndim) for a in arrays]
    out2 = build(*unknown)
    assert out2.dtype.name == want.name
    assert shape_compatible(out2.shape, expected.shape), f"inferred {out2.shape} vs result {expected.shape}"
    got2 = run(out2, dict(zip(unknown, arrays)), backend)
    assert got2.dtype == want
    assert_close(got2, expected, dtype=want, rtol=rtol, atol=atol)


def numpy_rejects(oracle, arrays) -> bool:
    try:
        with np.errstate(all="ignore"):
            oracle(*arrays)
    except TypeError:  # UFuncTypeError and DTypePromotionError are TypeErrors
        return True
    return False


def bool_only(fn):
    """graphc's logical ops take bool tensors only (TF semantics); NumPy would take numbers."""
    def oracle(*xs):
        if any(np.asarray(x).dtype != np.bool_ for x in xs):
            raise TypeError("logical ops take bool operands")
        return fn(*xs)
    return oracle


def int_pow(a, b):
    """a ** b, integer ** negative integer truncating toward zero; NumPy otherwise."""
    def kind(v):
        return type(v).__name__[0] if isinstance(v, (bool, int, float)) else np.asarray(v).dtype.kind

    def unit(v):  # a positive stand-in of the same (weak or strong) type, for the result dtype
        return type(v)(1) if isinstance(v, (bool, int, float)) else np.ones(1, np.asarray(v).dtype)

    if not (kind(a) in "bi" and kind(b) in "bi"):
        return np.power(a, b)
    dtype = np.power(unit(a), unit(b)).dtype
    a, b = np.asarray(a), np.asarray(b)
    aa, bb = np.broadcast_arrays(a.astype(np.int64), b.astype(np.int64))
    out = []
    for x, y in zip(aa.ravel().tolist(), bb.ravel().tolist()):
        if y >= 0:
            out.append(x ** y)
        elif x == 1:
            out.append(1)
        elif x == -1:
            out.append(-1 if y % 2 else 1)
        else:
            out.append(0)
    return np.array(out, dtype=np.int64).reshape(aa.shape).astype(dtype)


def sample(rng, shape, dtype, kind="any"):
    """Inputs: 'any' in [-3, 3]; 'pos' positive (floats in [0.1, 5], ints in [1, 5]);
    'base' for pow (positive floats, ints in [-3, 3])."""
    dtype = np.dtype(dtype)
    if kind == "pos" or (kind == "base" and dtype.kind == "f"):
        if dtype.kind == "f":
            return rng.uniform(0.1, 5.0, size=shape).astype(dtype)
        if dtype.kind == "i":
            return rng.integers(1, 5, size=shape, endpoint=True).astype(dtype)
    if kind == "log1p" and dtype.kind == "f":
        return rng.uniform(-0.9, 5.0, size=shape).astype(dtype)
    return random_array(rng, shape, dtype)


def erf64(x):
    return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, dtype=np.float64))


def sigmoid64(x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def softplus64(x):
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def elu64(x, alpha=1.0):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, x, alpha * np.expm1(x))


def gelu64(x, approximate):
    x = np.asarray(x, dtype=np.float64)
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf64(x / math.sqrt(2)))


def sigmoid_xent64(z, x):
    z, x = np.asarray(z, dtype=np.float64), np.asarray(x, dtype=np.float64)
    # -(z log s(x) + (1 - z) log(1 - s(x))) with -log s(x) = softplus(-x), -log(1 - s(x)) = softplus(x)
    return z * softplus64(-x) + (1 - z) * softplus64(x)


# --------------------------------------------------------------------------- binary ops
# name: (graphc function, Python operator or None, NumPy oracle, input kinds)
BINARY = {
    "Add": (gc.add, operator.add, np.add, ("any", "any")),
    "Sub": (gc.subtract, operator.sub, np.subtract, ("any", "any")),
    "Mul": (gc.multiply, operator.mul, np.multiply, ("any", "any")),
    "RealDiv": (gc.divide, operator.truediv, np.true_divide, ("any", "any")),
    "FloorDiv": (gc.floordiv, operator.floordiv, np.floor_divide, ("any", "any")),
    "FloorMod": (gc.mod, operator.mod, np.remainder, ("any", "any")),
    "Pow": (gc.pow, operator.pow, int_pow, ("base", "any")),
    "Maximum": (gc.maximum, None, np.maximum, ("any", "any")),
    "Minimum": (gc.minimum, None, np.minimum, ("any", "any")),
    "SquaredDifference": (gc.squared_difference, None, lambda a, b: np.square(np.subtract(a, b)),
                          ("any", "any")),
    "Less": (gc.less, operator.lt, np.less, ("any", "any")),
    "LessEqual": (gc.less_equal, operator.le, np.less_equal, ("any", "any")),
    "Greater": (gc.greater, operator.gt, np.greater, ("any", "any")),
    "GreaterEqual": (gc.greater_equal, operator.ge, np.greater_equal, ("any", "any")),
    "Equal": (gc.equal, None, np.equal, ("any", "any")),
    "NotEqual": (gc.not_equal, None, np.not_equal, ("any", "any")),
    "LogicalAnd": (gc.logical_and, operator.and_, bool_only(np.logical_and), ("any", "any")),
    "LogicalOr": (gc.logical_or, operator.or_, bool_only(np.logical_or), ("any", "any")),
    "LogicalXor": (gc.logical_xor, operator.xor, bool_only(np.logical_xor), ("any", "any")),
}
LOGICAL = {"LogicalAnd", "LogicalOr", "LogicalXor"}
BINARY_SHAPES = [
    ((), ()), ((1,), (1,)), ((0,), (0,)), ((1,), (0,)), ((0, 3), (3,)), ((0, 3), (1, 3)),
    ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (3,)), ((2, 3, 4), ()), ((2, 1, 4), (3, 1)),
]


def _binary_arrays(rng, name, shapes, dtypes):
    kinds = BINARY[name][3]
    return [sample(rng, s, d, k) for s, d, k in zip(shapes, dtypes, kinds)]


@pytest.mark.sampled(("name", "da"), ("name", "db"))
@pytest.mark.parametrize("db", DTYPES)
@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_dtypes(name, da, db, backend, rng):
    fn, _, oracle, _ = BINARY[name]
    arrays = _binary_arrays(rng, name, [(2, 3), (3,)], [da, db])
    if numpy_rejects(oracle, arrays):
        a = gc.placeholder(da, (2, 3))
        b = gc.placeholder(db, (3,))
        with pytest.raises(gc.DTypeError):
            fn(a, b)
        return
    check(fn, oracle, arrays, backend)


@pytest.mark.sampled("name", "shapes")
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_shapes(name, shapes, backend, rng):
    fn, _, oracle, _ = BINARY[name]
    dtype = "bool" if name in LOGICAL else "float32"
    check(fn, oracle, _binary_arrays(rng, name, shapes, [dtype, dtype]), backend)
    # and the mirror image
    check(lambda a, b: fn(b, a), lambda a, b: oracle(b, a),
          _binary_arrays(rng, name, shapes, [dtype, dtype]), backend)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in BINARY if BINARY[n][1] is not None])
def test_binary_operators(name, dtype, backend, rng):
    _, op, oracle, _ = BINARY[name]
    arrays = _binary_arrays(rng, name, [(3, 1), (4,)], [dtype, dtype])
    if numpy_rejects(oracle, arrays):
        with pytest.raises(gc.DTypeError):
            op(gc.placeholder(dtype, (3, 1)), gc.placeholder(dtype, (4,)))
        return
    check(op, oracle, arrays, backend)


REFLECTED_SCALARS = {"bool": [True, False], "int32": [2, -3], "int64": [2, -3],
                     "float32": [2, 2.5], "float64": [2, 2.5]}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [n for n in BINARY if BINARY[n][1] is not None])
def test_reflected_operators_with_python_scalars(name, dtype, backend, rng):
    """`s OP x` and `x OP s` with a Python scalar s follow NumPy 2 (NEP 50: s is weak)."""
    _, op, oracle, _ = BINARY[name]
    x = sample(rng, (2, 3), dtype, "pos")
    for s in REFLECTED_SCALARS[dtype] if name not in LOGICAL else [True, False]:
        for forward in (True, False):
            build = (lambda t, s=s: op(t, s)) if forward else (lambda t, s=s: op(s, t))
            ref = (lambda a, s=s: oracle(a, s)) if forward else (lambda a, s=s: oracle(s, a))
            if numpy_rejects(ref, [x]):
                with pytest.raises(gc.DTypeError):
                    build(gc.placeholder(dtype, (2, 3)))
                continue
            check(build, ref, [x], backend)


@pytest.mark.parametrize("name", [n for n in BINARY if BINARY[n][1] is not None and n not in LOGICAL])
def test_reflected_operators_with_numpy_arrays(name, backend, rng):
    """An ndarray on the left defers to the tensor, and is strongly typed (float64 here)."""
    _, op, oracle, _ = BINARY[name]
    x = sample(rng, (2, 3), "float32", "pos")
    arr = sample(rng, (3,), "float64", "pos")
    t = gc.placeholder(gc.float32, (2, 3))
    out = op(arr, t)
    assert isinstance(out, gc.Tensor)
    check(lambda t: op(arr, t), lambda a: oracle(arr, a), [x], backend)
    check(lambda t: op(t, arr), lambda a: oracle(a, arr), [x], backend)


# --------------------------------------------------------------------------- int edge cases
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_floordiv_and_mod(dtype, backend):
    a = np.array([7, -7, 7, -7, 0, 5, -5, 0], dtype=dtype)
    b = np.array([2, 2, -2, -2, 3, 0, 0, 0], dtype=dtype)
    x, y = gc.placeholder(dtype, a.shape), gc.placeholder(dtype, b.shape)
    q, r = run([x // y, x % y], {x: a, y: b}, backend)
    assert q.dtype == np.dtype(dtype) and r.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(q, [3, -4, -4, 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(r, [1, 1, -1, -1, 0, 0, 0, 0])


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_negative_power_truncates(dtype, backend):
    a = np.array([2, 1, -1, -1, 0, 3, -2, 5, 1, -1], dtype=dtype)
    b = np.array([-1, -5, -3, -2, -1, -2, 3, 0, 0, 0], dtype=dtype)
    x, y = gc.placeholder(dtype, a.shape), gc.placeholder(dtype, b.shape)
    got = run(x ** y, {x: a, y: b}, backend)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, [0, 1, -1, 1, 0, 0, -8, 1, 1, 1])
    got = run(gc.pow(x, -1), {x: a}, backend)
    np.testing.assert_array_equal(got, [0, 1, -1, -1, 0, 0, 0, 0, 1, -1])


def test_integer_power_by_python_int(backend):
    x = gc.placeholder(gc.int32, (4,))
    y = x ** 2
    assert y.dtype == gc.int32
    np.testing.assert_array_equal(run(y, {x: np.array([-3, 0, 2, 7], np.int32)}, backend), [9, 0, 4, 49])


# --------------------------------------------------------------------------- AddN
@pytest.mark.parametrize("dtypes", [(d, d, d) for d in DTYPES] + [("int32", "float32", "bool"),
                                                                 ("int32", "int64", "int32"),
                                                                 ("float32", "float64", "int32")],
                         ids=str)
def test_add_n_dtypes(dtypes, backend, rng):
    arrays = [random_array(rng, (2, 3), d) for d in dtypes]
    check(lambda *ts: gc.add_n(list(ts)), lambda *xs: np.add(np.add(xs[0], xs[1]), xs[2]), arrays, backend)


@pytest.mark.parametrize("shapes", [((),) * 3, ((1,),) * 3, ((0,),) * 3, ((0, 3),) * 3, ((2, 3, 4),) * 3,
                                    ((2, 3), (3,), ()), ((4,), (4,), (4,), (4,), (4,))], ids=str)
def test_add_n_shapes(shapes, backend, rng):
    arrays = [random_array(rng, s, "float64") for s in shapes]
    check(lambda *ts: gc.add_n(list(ts)), lambda *xs: sum(xs[1:], xs[0]), arrays, backend)


def test_add_n_single_and_empty():
    x = gc.placeholder(gc.float32, (3,))
    assert gc.add_n([x]) is x
    with pytest.raises(gc.GraphcError):
        gc.add_n([])


# --------------------------------------------------------------------------- unary ops
# name: (graphc function, NumPy oracle, input kind, composite?)
#   composite: the result dtype is the float type of the input and the oracle runs in float64
UNARY = {
    "Neg": (gc.negative, np.negative, "any", False),
    "Abs": (gc.abs, np.absolute, "any", False),
    "Sign": (gc.sign, np.sign, "any", False),
    "Square": (gc.square, np.square, "any", False),
    "Reciprocal": (gc.reciprocal, lambda x: np.true_divide(1, x), "any", False),
    "Exp": (gc.exp, np.exp, "any", False),
    "Expm1": (gc.expm1, np.expm1, "any", False),
    "Log": (gc.log, np.log, "pos", False),
    "Log1p": (gc.log1p, np.log1p, "log1p", False),
    "Sqrt": (gc.sqrt, np.sqrt, "pos", False),
    "Rsqrt": (gc.rsqrt, lambda x: 1.0 / np.sqrt(x), "pos", True),
    "Tanh": (gc.tanh, np.tanh, "any", False),
    "Sigmoid": (gc.sigmoid, sigmoid64, "any", True),
    "Sin": (gc.sin, np.sin, "any", False),
    "Cos": (gc.cos, np.cos, "any", False),
    "Erf": (gc.erf, erf64, "any", True),
    "Floor": (gc.floor, np.floor, "any", False),
    "Ceil": (gc.ceil, np.ceil, "any", False),
    "Round": (gc.round, np.rint, "any", False),
    "IsNan": (gc.is_nan, np.isnan, "any", False),
    "IsInf": (gc.is_inf, np.isinf, "any", False),
    "IsFinite": (gc.is_finite, np.isfinite, "any", False),
    "LogicalNot": (gc.logical_not, bool_only(np.logical_not), "any", False),
    "Relu": (gc.nn.relu, lambda x: np.maximum(x, 0), "any", False),
    "Relu6": (gc.nn.relu6, lambda x: np.minimum(np.maximum(x, 0), 6), "any", False),
    "LeakyRelu": (gc.nn.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), "any", True),
    "LeakyRelu(alpha=0.01)": (lambda x: gc.nn.leaky_relu(x, alpha=0.01),
                              lambda x: np.where(x > 0, x, 0.01 * x), "any", True),
    "Elu": (gc.nn.elu, elu64, "any", True),
    "Elu(alpha=0.5)": (lambda x: gc.nn.elu(x, alpha=0.5), lambda x: elu64(x, 0.5), "any", True),
    "Selu": (gc.nn.selu, lambda x: SELU_SCALE * elu64(x, SELU_ALPHA), "any", True),
    "Softplus": (gc.nn.softplus, softplus64, "any", True),
    "Softsign": (gc.nn.softsign, lambda x: x / (1 + np.abs(x)), "any", True),
    "Silu": (gc.nn.silu, lambda x: x * sigmoid64(x), "any", True),
    "Gelu": (gc.nn.gelu, lambda x: gelu64(x, False), "any", True),
    "Gelu(approximate)": (lambda x: gc.nn.gelu(x, approximate=True), lambda x: gelu64(x, True), "any", True),
}
UNARY_SHAPES = [(), (1,), (0,), (0, 3), (2, 3, 4)]


def _check_unary(name, x, backend):
    fn, oracle, _, composite = UNARY[name]
    if composite:
        check(fn, lambda a: oracle(a.astype(np.float64)), [x], backend, dtype=float_of(x.dtype))
    else:
        check(fn, oracle, [x], backend)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_dtypes(name, dtype, backend, rng):
    fn, oracle, kind, composite = UNARY[name]
    x = sample(rng, (3, 4), dtype, kind)
    if not composite and numpy_rejects(oracle, [x]):
        with pytest.raises(gc.DTypeError):
            fn(gc.placeholder(dtype, (3, 4)))
        return
    _check_unary(name, x, backend)


@pytest.mark.sampled("name", "shape")
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_shapes(name, shape, backend, rng):
    dtype = "bool" if name == "LogicalNot" else "float32"
    _check_unary(name, sample(rng, shape, dtype, UNARY[name][2]), backend)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_unary_operators(dtype, backend, rng):
    x = random_array(rng, (2, 3), dtype)
    check(lambda t: -t, np.negative, [x], backend)
    check(lambda t: abs(t), np.absolute, [x], backend)
    check(lambda t: t ** 2, lambda a: a ** 2, [x], backend)


def test_invert_and_logical_operators_on_bools(backend, rng):
    a, b = random_array(rng, (3, 1), "bool"), random_array(rng, (4,), "bool")
    check(lambda t: ~t, np.logical_not, [a], backend)
    check(operator.and_, np.logical_and, [a, b], backend)
    check(operator.or_, np.logical_or, [a, b], backend)
    check(operator.xor, np.logical_xor, [a, b], backend)
    with pytest.raises(gc.DTypeError):
        ~gc.placeholder(gc.float32, (3,))
    with pytest.raises(gc.DTypeError):
        gc.placeholder(gc.int32, (3,)) & gc.placeholder(gc.int32, (3,))


def test_round_half_to_even(backend):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.4999, -3.5001], np.float32)
    t = gc.placeholder(gc.float32, x.shape)
    np.testing.assert_array_equal(run(gc.round(t), {t: x}, backend), [0, 2, 2, -0.0, -2, -2, 3, -4])


def test_floor_ceil_sign_of_negative_values(backend):
    x = np.array([-2.5, -0.0, 0.0, 1.5, -1.0, np.nan], np.float64)
    t = gc.placeholder(gc.float64, x.shape)
    f, c, s = run([gc.floor(t), gc.ceil(t), gc.sign(t)], {t: x}, backend)
    np.testing.assert_array_equal(f, [-3, -0.0, 0, 1, -1, np.nan])
    np.testing.assert_array_equal(c, [-2, -0.0, 0, 2, -1, np.nan])
    np.testing.assert_array_equal(s, [-1, 0, 0, 1, -1, np.nan])


# --------------------------------------------------------------------------- special values
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 20.0, -20.0]
SPECIAL_UNARY = {
    "Exp": (gc.exp, np.exp),
    "Expm1": (gc.expm1, np.expm1),
    "Log": (gc.log, np.log),
    "Log1p": (gc.log1p, np.log1p),
    "Sqrt": (gc.sqrt, np.sqrt),
    "Tanh": (gc.tanh, np.tanh),
    "Sigmoid": (gc.sigmoid, sigmoid64),
    "Softplus": (gc.nn.softplus, softplus64),
    "Relu": (gc.nn.relu, lambda x: np.maximum(x, 0)),
    "Abs": (gc.abs, np.abs),
    "IsNan": (gc.is_nan, np.isnan),
    "IsInf": (gc.is_inf, np.isinf),
    "IsFinite": (gc.is_finite, np.isfinite),
    "Floor": (gc.floor, np.floor),
    "Sign": (gc.sign, np.sign),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SPECIAL_UNARY))
def test_unary_special_values(name, dtype, backend):
    fn, oracle = SPECIAL_UNARY[name]
    x = np.array(SPECIAL, dtype=dtype)
    check(fn, oracle, [x], backend, dtype="bool" if name in ("IsNan", "IsInf", "IsFinite") else dtype)


def test_special_values_known_answers(backend):
    x = np.array([np.nan, np.inf, -np.inf], np.float32)
    t = gc.placeholder(gc.float32, (3,))
    got = run({"exp": gc.exp(t), "log": gc.log(t), "sig": gc.sigmoid(t), "tanh": gc.tanh(t),
               "sp": gc.nn.softplus(t)}, {t: x}, backend)
    np.testing.assert_array_equal(got["exp"], [np.nan, np.inf, 0.0])
    np.testing.assert_array_equal(got["log"], [np.nan, np.inf, np.nan])
    np.testing.assert_array_equal(got["sig"], [np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(got["tanh"], [np.nan, 1.0, -1.0])
    np.testing.assert_array_equal(got["sp"], [np.nan, np.inf, 0.0])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["Maximum", "Minimum"])
def test_maximum_minimum_propagate_nan(name, dtype, backend):
    fn, _, oracle, _ = BINARY[name]
    a = np.array([np.nan, 1.0, np.nan, np.inf, -np.inf, np.nan, 2.0, -0.0], dtype)
    b = np.array([1.0, np.nan, np.nan, np.nan, 3.0, -np.inf, np.inf, 0.0], dtype)
    check(fn, oracle, [a, b], backend)
    got = run(fn(gc.constant(a), gc.constant(b)), backend=backend)
    assert np.isnan(got[:6]).tolist() == [True, True, True, True, False, True]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["Maximum", "Minimum"])
def test_maximum_minimum_of_signed_zeros_follow_numpy(name, dtype, backend):
    """np.maximum(-0.0, 0.0) is 0.0 and np.maximum(0.0, -0.0) is -0.0: the second operand on a
    tie. The LLVM backend's compares and selects keep that (llvm.maximum would give +0.0 both
    times); a vectorized loop over 40 elements as well as the scalar remainder."""
    fn, _, oracle, _ = BINARY[name]
    a = np.tile(np.array([-0.0, 0.0, -0.0, 0.0, 1.0], dtype), 8)
    b = np.tile(np.array([0.0, -0.0, -0.0, 0.0, -1.0], dtype), 8)
    x, y = gc.placeholder(dtype, a.shape), gc.placeholder(dtype, b.shape)   # not folded away
    got = run(fn(x, y), {x: a, y: b}, backend)
    want = oracle(a, b)
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got).tolist() == np.signbit(want).tolist()


@pytest.mark.parametrize("dtype", FLOATS)
def test_clip_special_values(dtype, backend):
    x = np.array([np.nan, np.inf, -np.inf, 0.5, -3.0, 3.0], dtype)
    t = gc.placeholder(dtype, x.shape)
    got = run(gc.clip_by_value(t, -1.0, 1.0), {t: x}, backend)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, [np.nan, 1.0, -1.0, 0.5, -1.0, 1.0])


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_softplus_xent_finite_at_800(dtype, backend):
    x = np.array([-800.0, -100.0, -20.0, 0.0, 20.0, 100.0, 800.0], dtype)
    t = gc.placeholder(dtype, x.shape)
    s, sp, si = run([gc.sigmoid(t), gc.nn.softplus(t), gc.nn.silu(t)], {t: x}, backend)
    for got in (s, sp, si):
        assert got.dtype == np.dtype(dtype)
        assert np.all(np.isfinite(got)), got
    assert_close(s, sigmoid64(x).astype(dtype))
    assert s[0] == 0.0 and s[-1] == 1.0
    assert_close(sp, softplus64(x).astype(dtype))
    assert sp[-1] == 800.0 and sp[0] == 0.0
    assert_close(si, (x.astype(np.float64) * sigmoid64(x)).astype(dtype))

    labels = np.array([0.0, 1.0, 0.5], dtype)[:, None]
    z = gc.placeholder(dtype, (3, 1))
    xent = run(gc.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=t), {z: labels, t: x}, backend)
    assert xent.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(xent))
    assert_close(xent, sigmoid_xent64(labels, x).astype(dtype))
    assert xent[0, -1] == 800.0 and xent[1, 0] == 800.0 and xent[0, 0] == 0.0 and xent[1, -1] == 0.0


@pytest.mark.parametrize("dtype", FLOATS)
def test_log1p_expm1_accuracy_near_zero(dtype, backend):
    x = np.array([1e-10, -1e-10, 3e-12, -7e-9, 1e-7, 1e-20], dtype)
    x64 = x.astype(np.float64)
    series_log1p = x64 - x64 ** 2 / 2 + x64 ** 3 / 3
    series_expm1 = x64 + x64 ** 2 / 2 + x64 ** 3 / 6
    t = gc.placeholder(dtype, x.shape)
    l1p, em1 = run([gc.log1p(t), gc.expm1(t)], {t: x}, backend)
    rtol = 1e-15 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(l1p, series_log1p.astype(dtype), rtol=rtol, atol=0)
    np.testing.assert_allclose(em1, series_expm1.astype(dtype), rtol=rtol, atol=0)


# --------------------------------------------------------------------------- sigmoid cross-entropy
@pytest.mark.parametrize("dz", DTYPES)
@pytest.mark.parametrize("dx", DTYPES)
def test_sigmoid_cross_entropy_dtypes(dz, dx, backend, rng):
    z = random_array(rng, (2, 3), dz, 0.0, 1.0)
    x = random_array(rng, (2, 3), dx)
    want = float_of(np.result_type(z.dtype, x.dtype))
    check(lambda a, b: gc.nn.sigmoid_cross_entropy_with_logits(labels=a, logits=b), sigmoid_xent64,
          [z, x], backend, dtype=widened(want))


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_sigmoid_cross_entropy_shapes(shapes, backend, rng):
    z = random_array(rng, shapes[0], "float32", 0.0, 1.0)
    x = random_array(rng, shapes[1], "float32", -5.0, 5.0)
    check(lambda a, b: gc.nn.sigmoid_cross_entropy_with_logits(labels=a, logits=b), sigmoid_xent64,
          [z, x], backend, dtype="float32")


def test_sigmoid_cross_entropy_matches_naive_definition(backend, rng):
    z = rng.uniform(0, 1, (50,))
    x = rng.uniform(-5, 5, (50,))
    s = 1 / (1 + np.exp(-x))
    naive = -(z * np.log(s) + (1 - z) * np.log(1 - s))
    got = run(gc.nn.sigmoid_cross_entropy_with_logits(labels=gc.constant(z), logits=gc.constant(x)),
              backend=backend)
    assert_close(got, naive, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- where / clip / cast
@pytest.mark.parametrize("db", DTYPES)
@pytest.mark.parametrize("da", DTYPES)
def test_where_dtypes(da, db, backend, rng):
    c = random_array(rng, (3, 1), "bool")
    a = random_array(rng, (1, 4), da)
    b = random_array(rng, (4,), db)
    check(gc.where, np.where, [c, a, b], backend)


@pytest.mark.parametrize("shapes", [((), (), ()), ((1,), (1,), (1,)), ((0,), (0,), (0,)), ((0, 3), (3,), ()),
                                    ((2, 3, 4), (4,), (3, 1)), ((), (2, 3), (2, 3)), ((3,), (2, 1), ())],
                         ids=str)
def test_where_shapes(shapes, backend, rng):
    arrays = [random_array(rng, shapes[0], "bool"), random_array(rng, shapes[1], "float32"),
              random_array(rng, shapes[2], "float32")]
    check(gc.where, np.where, arrays, backend)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_where_condition_must_be_bool(dtype):
    c = gc.placeholder(dtype, (3,))
    x = gc.placeholder(gc.float32, (3,))
    with pytest.raises(gc.DTypeError):
        gc.where(c, x, x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_where_with_python_scalars_is_weak(dtype, backend, rng):
    c = random_array(rng, (2, 3), "bool")
    x = random_array(rng, (2, 3), dtype)
    for s in ([0, 5] if dtype != "bool" else [False, True]) + ([0.5] if dtype in FLOATS else []):
        check(lambda ct, xt, s=s: gc.where(ct, xt, s), lambda ca, xa, s=s: np.where(ca, xa, s), [c, x], backend)
        check(lambda ct, xt, s=s: gc.where(ct, s, xt), lambda ca, xa, s=s: np.where(ca, s, xa), [c, x], backend)


def test_where_needs_both_branches():
    with pytest.raises(gc.GraphcError):
        gc.where(gc.placeholder(gc.bool, (3,)))


@pytest.mark.parametrize("db", DTYPES)
@pytest.mark.parametrize("dx", DTYPES)
def test_clip_by_value_dtypes(dx, db, backend, rng):
    x = random_array(rng, (2, 3), dx)
    lo = np.zeros((3,), db) if db != "bool" else np.zeros((3,), bool)
    hi = np.full((), 2 if db != "bool" else True, db)

    def oracle(a, low, high):
        return np.minimum(np.maximum(a, low), high)
    check(gc.clip_by_value, oracle, [x, lo, hi], backend)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_clip_by_value_python_bounds_keep_dtype(dtype, backend, rng):
    x = random_array(rng, (2, 3), dtype, -5, 5)
    check(lambda t: gc.clip_by_value(t, -2, 3), lambda a: np.minimum(np.maximum(a, -2), 3), [x], backend)
    if dtype in FLOATS:
        check(lambda t: gc.clip_by_value(t, -1.5, 2.5), lambda a: np.minimum(np.maximum(a, -1.5), 2.5), [x],
              backend)


@pytest.mark.parametrize("shapes", [((), (), ()), ((0,), (), ()), ((0, 3), (3,), (1, 3)), ((2, 3), (2, 1), (3,))],
                         ids=str)
def test_clip_by_value_shapes(shapes, backend, rng):
    x = random_array(rng, shapes[0], "float64")
    lo = random_array(rng, shapes[1], "float64", -2, -1)
    hi = random_array(rng, shapes[2], "float64", 1, 2)
    check(gc.clip_by_value, lambda a, b, c: np.minimum(np.maximum(a, b), c), [x, lo, hi], backend)


@pytest.mark.parametrize("dst", DTYPES)
@pytest.mark.parametrize("src", DTYPES)
def test_cast(src, dst, backend, rng):
    x = random_array(rng, (3, 4), src)
    check(lambda t: gc.cast(t, dst), lambda a: a.astype(dst), [x], backend, dtype=dst)


@pytest.mark.parametrize("spelling", [gc.float64, np.float64, np.dtype("float64"), "float64"], ids=str)
def test_cast_accepts_dtype_spellings(spelling, backend, rng):
    x = random_array(rng, (3,), "int32")
    check(lambda t: gc.cast(t, spelling), lambda a: a.astype(np.float64), [x], backend, dtype="float64")


@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=str)
def test_cast_shapes(shape, backend, rng):
    x = random_array(rng, shape, "float32")
    check(lambda t: gc.cast(t, gc.int32), lambda a: a.astype(np.int32), [x], backend)


def test_cast_special_values(backend):
    x = np.array([np.nan, np.inf, -0.0, 0.0, 0.5, -2.7, 2.7], np.float64)
    t = gc.placeholder(gc.float64, x.shape)
    b = run(gc.cast(t, gc.bool), {t: x}, backend)
    np.testing.assert_array_equal(b, [True, True, False, False, True, True, True])
    i = run(gc.cast(t[2:], gc.int32), {t: x}, backend)
    np.testing.assert_array_equal(i, [0, 0, 0, -2, 2])
    assert i.dtype == np.int32
    assert gc.cast(t, gc.float64) is t


# --------------------------------------------------------------------------- weak scalars
def test_weak_python_scalar_promotion(backend):
    xf = gc.placeholder(gc.float32, (2,))
    xi = gc.placeholder(gc.int32, (2,))
    xb = gc.placeholder(gc.bool, (2,))
    assert (xf * 2.0).dtype == gc.float32
    assert (xf * 2).dtype == gc.float32
    assert (2.0 - xf).dtype == gc.float32
    assert (xi * 2.5).dtype == gc.float64
    assert (xi * 2).dtype == gc.int32
    assert (xi + True).dtype == gc.int32
    assert (xb + 1).dtype == gc.int64
    assert (xb * 1.5).dtype == gc.float64
    assert (xi + (2 ** 31 - 1)).dtype == gc.int32
    with pytest.raises(gc.DTypeError):
        xi + 2 ** 40
    with pytest.raises(gc.DTypeError):
        xi - (-(2 ** 31) - 1)
    assert (gc.placeholder(gc.int64, (2,)) + 2 ** 40).dtype == gc.int64
    assert gc.constant(2.0).dtype == gc.float32
    assert gc.constant(2).dtype == gc.int32
    assert gc.constant(True).dtype == gc.bool
    feeds = {xf: np.array([1.5, -2], np.float32), xi: np.array([3, -4], np.int32)}
    a, b = run([xf * 2.0, xi * 2.5], feeds, backend)
    np.testing.assert_array_equal(a, np.array([3.0, -4.0], np.float32))
    np.testing.assert_array_equal(b, [7.5, -10.0])


def test_lists_of_python_numbers_are_weak(backend):
    xf = gc.placeholder(gc.float32, (2,))
    xi = gc.placeholder(gc.int32, (2,))
    assert (xf + [1, 2]).dtype == gc.float32
    assert ([1.5, 2.5] * xf).dtype == gc.float32
    assert (xi + [1, 2]).dtype == gc.int32
    assert (xi + [1.5, 2]).dtype == gc.float64
    with pytest.raises(gc.DTypeError):
        xi + [1, 2 ** 40]
    got = run(xf + [1, 2], {xf: np.array([0.5, 0.25], np.float32)}, backend)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [1.5, 2.25])


def test_numpy_arrays_are_strong(backend):
    xf = gc.placeholder(gc.float32, (2,))
    assert (xf + np.ones(2)).dtype == gc.float64
    assert (xf + np.ones(2, np.float32)).dtype == gc.float32
    assert (xf + np.float64(1.0)).dtype == gc.float64
    out = np.ones(2) * xf
    assert isinstance(out, gc.Tensor) and out.dtype == gc.float64
    got = run(np.array([2.0, 3.0]) - xf, {xf: np.array([0.5, 1.0], np.float32)}, backend)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [1.5, 2.0])


def test_reflected_division_and_subtraction(backend):
    x = gc.placeholder(gc.float32, (3,))
    xi = gc.placeholder(gc.int32, (3,))
    feeds = {x: np.array([1.0, 2.0, 4.0], np.float32), xi: np.array([1, 2, 4], np.int32)}
    a, b, c, d = run([2.0 - x, 1 / x, 1 / xi, 7 // xi], feeds, backend)
    assert (a.dtype, b.dtype, c.dtype, d.dtype) == (np.float32, np.float32, np.float64, np.int32)
    np.testing.assert_array_equal(a, [1.0, 0.0, -2.0])
    np.testing.assert_array_equal(b, [1.0, 0.5, 0.25])
    np.testing.assert_array_equal(c, [1.0, 0.5, 0.25])
    np.testing.assert_array_equal(d, [7, 3, 1])


def test_tensor_equality_is_identity():
    x = gc.placeholder(gc.float32, (3,))
    y = gc.placeholder(gc.float32, (3,))
    assert (x == x) is True
    assert (x == y) is False
    assert len({x, y}) == 2


def test_matmul_operator(backend, rng):
    a = random_array(rng, (2, 3), "float64")
    b = random_array(rng, (3, 4), "float64")
    check(operator.matmul, np.matmul, [a, b], backend)


def test_aliases(backend, rng):
    x = random_array(rng, (4,), "float64", 1, 3)
    y = random_array(rng, (4,), "float64", 1, 3)
    check(gc.truediv, np.true_divide, [x, y], backend)
    check(gc.floormod, np.remainder, [x, y], backend)
    check(gc.nn.swish, lambda a: a * sigmoid64(a), [x], backend, dtype="float64")
    check(gc.nn.sigmoid, sigmoid64, [x], backend, dtype="float64")
    check(gc.nn.tanh, np.tanh, [x], backend)


def test_composite_activations_of_bool_are_float32(backend):
    x = np.array([True, False, True])
    for name, (fn, oracle, _, composite) in UNARY.items():
        if composite:
            check(fn, lambda a, oracle=oracle: oracle(a.astype(np.float64)), [x], backend, dtype="float32")
