"""Reductions (graphc/ops/reductions.py) against NumPy oracles computed in float64 / int64.

Dtype rules: sum and prod keep int and float dtypes and count bools as int32; mean and logsumexp
of ints are float64 (of bools float32, the float type of bool); max/min keep the dtype; any/all
take bools; argmax/argmin give int64 (or int32 on request). Over nothing: sum 0, prod 1, max -inf
(dtype min), min +inf (dtype max), mean NaN, logsumexp -inf, any False, all True.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.helpers import assert_close, random_array, run

TESTED_OPS = {"Sum", "Mean", "Max", "Min", "Prod", "LogSumExp", "Any", "All", "ArgMax", "ArgMin"}

DTYPES = ["bool", "int32", "int64", "float32", "float64"]
FLOATS = ["float32", "float64"]
_WIDEN = {"float16": "float32", "int8": "int32", "int16": "int32"}


def float_of(dtype) -> np.dtype:
    name = np.exp(np.zeros(0, dtype)).dtype.name
    return np.dtype(_WIDEN.get(name, name))


def shape_compatible(static, actual) -> bool:
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def _axis(axis):
    return None if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)


def _identity_max(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _identity_min(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


def _extreme(fn, identity):
    def oracle(x, axis, keepdims):
        ax = _axis(axis)
        shape = np.sum(np.zeros(x.shape), axis=ax, keepdims=keepdims).shape
        if x.size == 0 or any(x.shape[a] == 0 for a in (ax or range(x.ndim))):
            return np.full(shape, identity(x.dtype), dtype=x.dtype)
        return fn(x, axis=ax, keepdims=keepdims).astype(x.dtype)
    return oracle


def _sum_dtype(dtype):
    return np.dtype("int32") if np.dtype(dtype) == np.bool_ else np.dtype(dtype)


def _wide(x):
    return x.astype(np.float64 if x.dtype.kind == "f" else np.int64)


def sum_oracle(x, axis, keepdims):
    return np.sum(_wide(x), axis=_axis(axis), keepdims=keepdims).astype(_sum_dtype(x.dtype))


def prod_oracle(x, axis, keepdims):
    return np.prod(_wide(x), axis=_axis(axis), keepdims=keepdims).astype(_sum_dtype(x.dtype))


def mean_oracle(x, axis, keepdims):
    ax = _axis(axis)
    s = np.sum(x.astype(np.float64), axis=ax, keepdims=keepdims)
    n = np.sum(np.ones(x.shape), axis=ax, keepdims=keepdims)
    with np.errstate(all="ignore"):
        return (s / n).astype(float_of(x.dtype))


def logsumexp_oracle(x, axis, keepdims):
    if x.dtype == np.bool_:
        raise TypeError("logsumexp takes numbers")
    with np.errstate(all="ignore"):
        return np.log(np.sum(np.exp(x.astype(np.float64)), axis=_axis(axis), keepdims=keepdims)).astype(
            float_of(x.dtype))


def _bool_only(fn):
    def oracle(x, axis, keepdims):
        if x.dtype != np.bool_:
            raise TypeError("any/all take bools")
        return fn(x, axis=_axis(axis), keepdims=keepdims)
    return oracle


# name: (graphc function, oracle(x, axis, keepdims), input range)
REDUCERS = {
    "Sum": (gc.reduce_sum, sum_oracle, (-3, 3)),
    "Mean": (gc.reduce_mean, mean_oracle, (-3, 3)),
    "Max": (gc.reduce_max, _extreme(np.max, _identity_max), (-3, 3)),
    "Min": (gc.reduce_min, _extreme(np.min, _identity_min), (-3, 3)),
    "Prod": (gc.reduce_prod, prod_oracle, (-2, 2)),
    "LogSumExp": (gc.reduce_logsumexp, logsumexp_oracle, (-3, 3)),
    "Any": (gc.reduce_any, _bool_only(np.any), (-3, 3)),
    "All": (gc.reduce_all, _bool_only(np.all), (-3, 3)),
}


def tolerance(x, out_dtype):
    """Float sums lose ~eps per added term: the absolute tolerance scales with sum(|x|)."""
    out_dtype = np.dtype(out_dtype)
    if out_dtype.kind != "f":
        return {}
    scale = float(np.sum(np.abs(x.astype(np.float64)))) if x.size else 0.0
    eps = np.finfo(out_dtype).eps
    return {"atol": 4 * eps * max(scale, 1.0), "rtol": 2e-5 if out_dtype == np.float32 else 1e-12}


def check_reduction(fn, oracle, x, axis, keepdims, backend, **kwargs):
    expected = np.asarray(oracle(x, axis, keepdims))
    tol = tolerance(x, expected.dtype)

    t = gc.placeholder(x.dtype, x.shape)
    out = fn(t, axis=axis, keepdims=keepdims, **kwargs)
    assert out.dtype.name == expected.dtype.name, f"dtype {out.dtype.name}, expected {expected.dtype.name}"
    assert out.shape == expected.shape, f"inferred {out.shape} vs result {expected.shape}"
    got = run(out, {t: x}, backend)
    assert got.dtype == expected.dtype
    assert_close(got, expected, **tol)

    u = gc.placeholder(x.dtype, [None] * x.ndim)
    out2 = fn(u, axis=axis, keepdims=keepdims, **kwargs)
    assert out2.dtype.name == expected.dtype.name
    assert shape_compatible(out2.shape, expected.shape), f"inferred {out2.shape} vs result {expected.shape}"
    got2 = run(out2, {u: x}, backend)
    assert_close(got2, expected, **tol)


def rejects(oracle, x) -> bool:
    try:
        oracle(x, None, False)
    except TypeError:
        return True
    return False


AXES = [None, 0, 1, 2, -1, -3, (0, 2), (2, 0), (-1, 0, 1), ()]


@pytest.mark.sampled(("name", "dtype"), ("name", "axis"), "keepdims")
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(REDUCERS))
def test_reduction(name, dtype, axis, keepdims, backend, rng):
    fn, oracle, (lo, hi) = REDUCERS[name]
    x = random_array(rng, (2, 3, 4), dtype, lo, hi)
    if rejects(oracle, x):
        with pytest.raises(gc.DTypeError):
            fn(gc.placeholder(dtype, x.shape), axis=axis, keepdims=keepdims)
        return
    check_reduction(fn, oracle, x, axis, keepdims, backend)


SHAPES_AND_AXES = [
    ((), None), ((), ()), ((1,), 0), ((1,), None), ((1,), -1), ((0,), 0), ((0,), None),
    ((0, 3), 0), ((0, 3), 1), ((0, 3), None), ((3, 0), 1), ((3, 0), 0), ((2, 0, 3), (0, 2)), ((1, 1), (0, 1)),
    ((5,), 0), ((4, 1), 1), ((2, 3, 4, 5), (1, 3)),
]


@pytest.mark.sampled(("name", "shape_axis"))
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape_axis", SHAPES_AND_AXES, ids=str)
@pytest.mark.parametrize("name", list(REDUCERS))
def test_reduction_shapes(name, shape_axis, keepdims, backend, rng):
    shape, axis = shape_axis
    fn, oracle, (lo, hi) = REDUCERS[name]
    dtype = "bool" if name in ("Any", "All") else "float32"
    check_reduction(fn, oracle, random_array(rng, shape, dtype, lo, hi), axis, keepdims, backend)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_reduction_identities(dtype, backend):
    x = np.zeros((0, 2), dtype=dtype)
    t = gc.placeholder(dtype, (0, 2))
    fetch = {"sum": gc.reduce_sum(t, 0), "prod": gc.reduce_prod(t, 0), "max": gc.reduce_max(t, 0),
             "min": gc.reduce_min(t, 0), "mean": gc.reduce_mean(t, 0),
             "max_all": gc.reduce_max(t), "sum_all": gc.reduce_sum(t)}
    if dtype == "bool":
        fetch.update(any=gc.reduce_any(t, 0), all=gc.reduce_all(t, 0))
    else:
        fetch.update(lse=gc.reduce_logsumexp(t, 0))
    got = run(fetch, {t: x}, backend)
    sum_dtype = "int32" if dtype == "bool" else dtype
    assert got["sum"].dtype == np.dtype(sum_dtype) and got["prod"].dtype == np.dtype(sum_dtype)
    np.testing.assert_array_equal(got["sum"], [0, 0])
    np.testing.assert_array_equal(got["sum_all"], 0)
    np.testing.assert_array_equal(got["prod"], [1, 1])
    np.testing.assert_array_equal(got["max"], [_identity_max(dtype)] * 2)
    np.testing.assert_array_equal(got["max_all"], _identity_max(dtype))
    np.testing.assert_array_equal(got["min"], [_identity_min(dtype)] * 2)
    assert got["max"].dtype == np.dtype(dtype) and got["min"].dtype == np.dtype(dtype)
    assert got["mean"].dtype == float_of(dtype)
    assert np.all(np.isnan(got["mean"])) and got["mean"].shape == (2,)
    if dtype == "bool":
        np.testing.assert_array_equal(got["any"], [False, False])
        np.testing.assert_array_equal(got["all"], [True, True])
    else:
        assert got["lse"].dtype == float_of(dtype)
        np.testing.assert_array_equal(got["lse"], [-np.inf, -np.inf])


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_int_extremes_identity_values(dtype, backend):
    t = gc.placeholder(dtype, (3, 0))
    hi, lo = run([gc.reduce_max(t, axis=1), gc.reduce_min(t, axis=1)], {t: np.zeros((3, 0), dtype)}, backend)
    assert hi.tolist() == [np.iinfo(dtype).min] * 3
    assert lo.tolist() == [np.iinfo(dtype).max] * 3


def test_dtype_rules():
    for d in ["int32", "int64"]:
        x = gc.placeholder(d, (3,))
        assert gc.reduce_sum(x).dtype == d
        assert gc.reduce_prod(x).dtype == d
        assert gc.reduce_mean(x).dtype == gc.float64
        assert gc.reduce_logsumexp(x).dtype == gc.float64
        assert gc.reduce_max(x).dtype == d
        assert gc.argmax(x).dtype == gc.int64
        assert gc.argmin(x, output_type=gc.int32).dtype == gc.int32
    b = gc.placeholder(gc.bool, (3,))
    assert gc.reduce_sum(b).dtype == gc.int32
    assert gc.reduce_prod(b).dtype == gc.int32
    for d in FLOATS:
        x = gc.placeholder(d, (3,))
        for fn in (gc.reduce_sum, gc.reduce_mean, gc.reduce_max, gc.reduce_min, gc.reduce_prod,
                   gc.reduce_logsumexp):
            assert fn(x).dtype == d


def test_sum_of_bools_counts(backend, rng):
    x = rng.random((50, 7)) < 0.5
    t = gc.placeholder(gc.bool, x.shape)
    got = run(gc.reduce_sum(t, axis=0), {t: x}, backend)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, x.sum(axis=0))


def test_int32_sum_keeps_int32_and_wraps_like_numpy(backend):
    x = np.array([2 ** 30, 2 ** 30, 2 ** 30], np.int32)
    t = gc.placeholder(gc.int32, (3,))
    got = run(gc.reduce_sum(t), {t: x}, backend)
    assert got.dtype == np.int32
    assert int(got) == np.array(3 * 2 ** 30, np.int64).astype(np.int32)


# --------------------------------------------------------------------------- logsumexp
@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_stable(dtype, backend):
    x = np.array([[800.0, 800.0], [-800.0, -800.0], [800.0, -800.0], [-np.inf, -np.inf],
                  [-np.inf, 1.0], [np.inf, 1.0], [np.inf, np.inf], [np.nan, 1.0], [0.0, 0.0]], dtype)
    t = gc.placeholder(dtype, x.shape)
    got = run(gc.reduce_logsumexp(t, axis=1), {t: x}, backend)
    assert got.dtype == np.dtype(dtype)
    want = np.array([800 + np.log(2), -800 + np.log(2), 800.0, -np.inf, 1.0, np.inf, np.inf, np.nan,
                     np.log(2)], dtype)
    assert_close(got, want)
    assert np.all(np.isfinite(got[:3]))


def test_logsumexp_of_all_minus_inf_is_minus_inf(backend):
    t = gc.placeholder(gc.float64, (2, 3))
    got = run(gc.reduce_logsumexp(t), {t: np.full((2, 3), -np.inf)}, backend)
    assert got == -np.inf


# --------------------------------------------------------------------------- NaN
@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_propagates(dtype, backend):
    x = np.array([[1.0, np.nan, 3.0], [np.inf, -np.inf, 0.0], [np.nan, np.nan, np.nan]], dtype)
    t = gc.placeholder(dtype, x.shape)
    got = run({"max": gc.reduce_max(t, 1), "min": gc.reduce_min(t, 1), "sum": gc.reduce_sum(t, 1),
               "mean": gc.reduce_mean(t, 1), "prod": gc.reduce_prod(t, 1)}, {t: x}, backend)
    np.testing.assert_array_equal(got["max"], [np.nan, np.inf, np.nan])
    np.testing.assert_array_equal(got["min"], [np.nan, -np.inf, np.nan])
    np.testing.assert_array_equal(got["sum"], [np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(got["mean"], [np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(got["prod"], [np.nan, np.nan, np.nan])


@pytest.mark.parametrize("dtype", FLOATS)
def test_argmax_argmin_nan_and_ties(dtype, backend):
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, -1.0], [-1.0, -1.0, 4.0, 4.0]], dtype)
    t = gc.placeholder(dtype, x.shape)
    amax, amin = run([gc.argmax(t, 1), gc.argmin(t, 1)], {t: x}, backend)
    np.testing.assert_array_equal(amax, [1, 1, 2])
    np.testing.assert_array_equal(amin, [1, 3, 0])


# --------------------------------------------------------------------------- argmax / argmin
ARG = {"ArgMax": (gc.argmax, np.argmax), "ArgMin": (gc.argmin, np.argmin)}


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
@pytest.mark.parametrize("name", list(ARG))
def test_argmax_argmin(name, dtype, axis, backend, rng):
    fn, oracle = ARG[name]
    x = random_array(rng, (3, 4, 5), dtype, -2, 2)  # small ints: many ties
    want = oracle(x, axis=axis)
    t = gc.placeholder(dtype, x.shape)
    out = fn(t, axis=axis)
    assert out.dtype == gc.int64
    assert out.shape == want.shape
    got = run(out, {t: x}, backend)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    u = gc.placeholder(dtype, (None, None, None))
    out2 = fn(u, axis=axis)
    assert shape_compatible(out2.shape, want.shape)
    np.testing.assert_array_equal(run(out2, {u: x}, backend), want)
    out3 = fn(t, axis=axis, output_type=gc.int32)
    got3 = run(out3, {t: x}, backend)
    assert out3.dtype == gc.int32 and got3.dtype == np.int32
    np.testing.assert_array_equal(got3, want)


@pytest.mark.parametrize("name", list(ARG))
def test_argmax_default_axis_is_zero(name, backend, rng):
    fn, oracle = ARG[name]
    x = rng.standard_normal((4, 3))
    t = gc.placeholder(gc.float64, x.shape)
    out = fn(t)
    assert out.shape == (3,)
    np.testing.assert_array_equal(run(out, {t: x}, backend), oracle(x, axis=0))


@pytest.mark.parametrize("name", list(ARG))
def test_argmax_shapes(name, backend, rng):
    fn, oracle = ARG[name]
    for shape, axis in [((1,), 0), ((5,), 0), ((1, 3), 0), ((3, 1), 1), ((0, 3), 1), ((2, 0, 3), 2)]:
        gc.reset_default_graph()
        x = rng.standard_normal(shape).astype(np.float32)
        t = gc.placeholder(gc.float32, shape)
        out = fn(t, axis=axis)
        want = oracle(x, axis=axis)
        assert out.shape == want.shape
        got = run(out, {t: x}, backend)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_argmax_ties_pick_first(backend):
    x = np.array([[3, 3, 1], [0, 0, 0], [1, 2, 2]], np.int32)
    t = gc.placeholder(gc.int32, x.shape)
    amax, amin = run([gc.argmax(t, 1), gc.argmin(t, 1)], {t: x}, backend)
    np.testing.assert_array_equal(amax, [0, 0, 1])
    np.testing.assert_array_equal(amin, [2, 0, 0])


def test_argmax_dimension_alias(backend, rng):
    x = rng.standard_normal((3, 4))
    t = gc.placeholder(gc.float64, x.shape)
    out = gc.argmax(t, dimension=1)
    assert out.shape == (3,)
    np.testing.assert_array_equal(run(out, {t: x}, backend), np.argmax(x, axis=1))
    np.testing.assert_array_equal(run(gc.argmin(t, dimension=1), {t: x}, backend), np.argmin(x, axis=1))


@pytest.mark.parametrize("name", list(ARG))
def test_argmax_empty_axis_is_shape_error(name):
    fn, _ = ARG[name]
    with pytest.raises(gc.ShapeError):
        fn(gc.placeholder(gc.float32, (0, 3)), axis=0)
    with pytest.raises(gc.ShapeError):
        fn(gc.placeholder(gc.float32, (3, 0)), axis=1)


@pytest.mark.parametrize("name", list(ARG))
def test_argmax_empty_axis_at_run_time(name, backend):
    fn, _ = ARG[name]
    t = gc.placeholder(gc.float32, (None, 3))
    out = fn(t, axis=0)
    with pytest.raises(gc.GraphcError):
        run(out, {t: np.zeros((0, 3), np.float32)}, backend)


@pytest.mark.parametrize("name", list(ARG))
def test_argmax_rejects_bool(name):
    fn, _ = ARG[name]
    with pytest.raises(gc.DTypeError):
        fn(gc.placeholder(gc.bool, (3,)))


@pytest.mark.parametrize("name", list(ARG))
def test_argmax_axis_out_of_range(name):
    fn, _ = ARG[name]
    for axis in (2, -3):
        with pytest.raises(gc.ShapeError):
            fn(gc.placeholder(gc.float32, (2, 3)), axis=axis)
    with pytest.raises(gc.ShapeError):
        fn(gc.placeholder(gc.float32, ()), axis=0)


# --------------------------------------------------------------------------- aliases and errors
@pytest.mark.parametrize("name", list(REDUCERS))
def test_tf1_aliases(name, backend, rng):
    fn, oracle, (lo, hi) = REDUCERS[name]
    dtype = "bool" if name in ("Any", "All") else "float64"
    x = random_array(rng, (2, 3, 4), dtype, lo, hi)
    t = gc.placeholder(dtype, x.shape)
    a = fn(t, reduction_indices=1, keep_dims=True)
    b = fn(t, reduction_indices=[0, 2])
    c = fn(t, 1, True)
    assert a.shape == (2, 1, 4) and b.shape == (3,) and c.shape == (2, 1, 4)
    got_a, got_b, got_c = run([a, b, c], {t: x}, backend)
    assert_close(got_a, oracle(x, 1, True))
    assert_close(got_b, oracle(x, (0, 2), False))
    assert_close(got_c, oracle(x, 1, True))


@pytest.mark.parametrize("axis", [(0, 0), (1, -2), (0, 2, 0), 3, -4, (0, 3)], ids=str)
@pytest.mark.parametrize("name", list(REDUCERS))
def test_bad_axes_are_shape_errors(name, axis):
    fn = REDUCERS[name][0]
    dtype = gc.bool if name in ("Any", "All") else gc.float32
    with pytest.raises(gc.ShapeError):
        fn(gc.placeholder(dtype, (2, 3, 4)), axis=axis)
    with pytest.raises(gc.ShapeError):
        fn(gc.placeholder(dtype, (None, None, None)), axis=axis)


@pytest.mark.parametrize("name", list(REDUCERS))
def test_scalar_axis_zero_is_shape_error(name):
    fn = REDUCERS[name][0]
    dtype = gc.bool if name in ("Any", "All") else gc.float32
    with pytest.raises(gc.ShapeError):
        fn(gc.placeholder(dtype, ()), axis=0)


@pytest.mark.parametrize("name", list(REDUCERS))
def test_unknown_rank(name, backend, rng):
    fn, oracle, (lo, hi) = REDUCERS[name]
    dtype = "bool" if name in ("Any", "All") else "float64"
    t = gc.placeholder(dtype, None)
    out = fn(t)
    assert out.shape == ()
    out_k = fn(t, axis=1, keepdims=True)
    assert out_k.shape is None
    x = random_array(rng, (2, 3), dtype, lo, hi)
    got, got_k = run([out, out_k], {t: x}, backend)
    assert_close(got, oracle(x, None, False))
    assert_close(got_k, oracle(x, 1, True))


def test_reduce_constant_values(backend):
    x = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    got = run({"sum": gc.reduce_sum(x, 0), "mean": gc.reduce_mean(x), "prod": gc.reduce_prod(x, 1),
               "max": gc.reduce_max(x, -1), "min": gc.reduce_min(x, keepdims=True)}, backend=backend)
    np.testing.assert_array_equal(got["sum"], [4.0, 6.0])
    assert got["mean"] == 2.5 and got["mean"].dtype == np.float32
    np.testing.assert_array_equal(got["prod"], [2.0, 12.0])
    np.testing.assert_array_equal(got["max"], [2.0, 4.0])
    np.testing.assert_array_equal(got["min"], [[1.0]])
