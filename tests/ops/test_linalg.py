"""MatMul (graphc/ops/linalg.py) via gc.matmul and `@`, against NumPy's matmul in float64 / int64."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from tests.helpers import random_array, run

TESTED_OPS = {"MatMul"}

NUMERIC = ["int32", "int64", "float32", "float64"]


def shape_compatible(static, actual) -> bool:
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def oracle(a, b, transpose_a=False, transpose_b=False):
    """NumPy matmul of the (transposed) operands, computed wide, in NumPy's result dtype."""
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    dtype = np.result_type(a.dtype, b.dtype)
    wide = np.float64 if dtype.kind == "f" else np.int64
    exact = np.matmul(a.astype(wide), b.astype(wide))
    bound = np.matmul(np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64)))  # sum |a_ik b_kj|
    return np.asarray(exact).astype(dtype), np.asarray(bound)


def assert_matmul_close(got, want, bound, k):
    """Floats: error within a few eps per term of the sum (relative to sum |a_ik b_kj|)."""
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    eps = np.finfo(want.dtype).eps
    tol = 2 * eps * (k + 1) * bound + np.finfo(want.dtype).tiny
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert np.all(err <= tol), f"max error {np.max(err - tol, initial=0)} over tolerance"


def check(a, b, backend, transpose_a=False, transpose_b=False, use_operator=False):
    want, bound = oracle(a, b, transpose_a, transpose_b)
    k = (a.shape[-2] if transpose_a else a.shape[-1])

    def build(ta, tb):
        if use_operator:
            return ta @ tb
        return gc.matmul(ta, tb, transpose_a=transpose_a, transpose_b=transpose_b)

    pa, pb = gc.placeholder(a.dtype, a.shape), gc.placeholder(b.dtype, b.shape)
    out = build(pa, pb)
    assert isinstance(out, gc.Tensor)
    assert out.dtype.name == want.dtype.name, f"dtype {out.dtype.name}, NumPy gives {want.dtype.name}"
    assert out.shape == want.shape, f"inferred {out.shape}, result {want.shape}"
    assert_matmul_close(run(out, {pa: a, pb: b}, backend), want, bound, k)

    ua, ub = gc.placeholder(a.dtype, [None] * a.ndim), gc.placeholder(b.dtype, [None] * b.ndim)
    out2 = build(ua, ub)
    assert out2.dtype.name == want.dtype.name
    assert shape_compatible(out2.shape, want.shape), f"inferred {out2.shape}, result {want.shape}"
    assert_matmul_close(run(out2, {ua: a, ub: b}, backend), want, bound, k)


@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("dtype", NUMERIC)
def test_matmul_2d_transposes(dtype, transpose_a, transpose_b, backend, rng):
    m, k, n = 3, 5, 4
    a = random_array(rng, (k, m) if transpose_a else (m, k), dtype)
    b = random_array(rng, (n, k) if transpose_b else (k, n), dtype)
    check(a, b, backend, transpose_a, transpose_b)


@pytest.mark.parametrize("db", NUMERIC)
@pytest.mark.parametrize("da", NUMERIC)
def test_matmul_mixed_dtypes(da, db, backend, rng):
    a = random_array(rng, (2, 3), da)
    b = random_array(rng, (3, 4), db)
    check(a, b, backend)


def test_int32_matmul_float32_is_float64(backend, rng):
    a = gc.placeholder(gc.int32, (2, 3))
    b = gc.placeholder(gc.float32, (3, 2))
    assert gc.matmul(a, b).dtype == gc.float64
    assert (a @ b).dtype == gc.float64
    assert gc.matmul(a, gc.placeholder(gc.int32, (3, 2))).dtype == gc.int32


SHAPES = [
    # 1-D operands (NumPy: prepend / append a 1 and drop it)
    ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5)),
    # batched, with broadcast batch dims
    ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 6)),
    ((1, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 2)),
    # size 1 and size 0
    ((1, 1), (1, 1)), ((1,), (1,)), ((0, 4), (4, 5)), ((3, 0), (0, 5)), ((3, 4), (4, 0)), ((0,), (0,)),
    ((0, 3, 4), (4, 5)), ((2, 3, 0), (2, 0, 5)), ((0, 0), (0, 0)),
]


@pytest.mark.parametrize("use_operator", [False, True])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_matmul_shapes(shapes, dtype, use_operator, backend, rng):
    a = random_array(rng, shapes[0], dtype)
    b = random_array(rng, shapes[1], dtype)
    check(a, b, backend, use_operator=use_operator)


@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("transpose_a", [False, True])
def test_matmul_batched_transposes(transpose_a, transpose_b, backend, rng):
    a = random_array(rng, (2, 1, 4, 3) if transpose_a else (2, 1, 3, 4), "float64")
    b = random_array(rng, (5, 6, 4) if transpose_b else (5, 4, 6), "float64")
    check(a, b, backend, transpose_a, transpose_b)


def test_inner_dimension_zero_gives_zeros(backend):
    a = gc.placeholder(gc.float32, (3, 0))
    b = gc.placeholder(gc.float32, (0, 2))
    got = run(a @ b, {a: np.zeros((3, 0), np.float32), b: np.zeros((0, 2), np.float32)}, backend)
    assert got.shape == (3, 2) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.zeros((3, 2)))


def test_float32_large_sum_tolerance(backend, rng):
    """A long float32 dot product is close relative to the size of the sum, not elementwise rtol."""
    a = rng.uniform(-1, 1, (4, 4096)).astype(np.float32)
    b = rng.uniform(-1, 1, (4096, 3)).astype(np.float32)
    check(a, b, backend)


def test_matmul_known_values(backend):
    a = gc.constant([[1.0, 2.0], [3.0, 4.0]])
    b = gc.constant([[5.0, 6.0], [7.0, 8.0]])
    got = run([a @ b, gc.matmul(a, b, transpose_a=True), gc.matmul(a, b, transpose_b=True),
               gc.matmul(a, b, transpose_a=True, transpose_b=True)], backend=backend)
    np.testing.assert_array_equal(got[0], [[19, 22], [43, 50]])
    np.testing.assert_array_equal(got[1], [[26, 30], [38, 44]])
    np.testing.assert_array_equal(got[2], [[17, 23], [39, 53]])
    np.testing.assert_array_equal(got[3], [[23, 31], [34, 46]])


def test_reflected_matmul_with_numpy_array(backend, rng):
    m = rng.standard_normal((2, 3))
    x = gc.placeholder(gc.float32, (3, 4))
    out = m @ x
    assert isinstance(out, gc.Tensor)
    assert out.dtype == gc.float64 and out.shape == (2, 4)
    xv = rng.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(run(out, {x: xv}, backend), m @ xv.astype(np.float64), rtol=1e-12)
    out2 = gc.placeholder(gc.float64, (4, 3)) @ [[1.0], [2.0], [3.0]]
    assert out2.shape == (4, 1)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("shapes", [((3, 4), (5, 6)), ((2, 3, 4), (2, 5, 6)), ((3,), (4,)), ((3, 4), (3,)),
                                    ((4,), (3, 4))], ids=str)
def test_inner_dimension_mismatch(shapes):
    a = gc.placeholder(gc.float32, shapes[0])
    b = gc.placeholder(gc.float32, shapes[1])
    with pytest.raises(gc.ShapeError) as info:
        gc.matmul(a, b)
    message = str(info.value)
    for s in shapes:
        text = f"({', '.join(map(str, s))}{',' if len(s) == 1 else ''})"
        assert text in message, f"{text} not in {message!r}"
    with pytest.raises(gc.ShapeError):
        a @ b


def test_inner_dimension_mismatch_with_transpose():
    a = gc.placeholder(gc.float32, (3, 4))
    b = gc.placeholder(gc.float32, (3, 4))
    with pytest.raises(gc.ShapeError):
        gc.matmul(a, b)
    with pytest.raises(gc.ShapeError):
        gc.matmul(a, b, transpose_a=True, transpose_b=True)
    assert gc.matmul(a, b, transpose_b=True).shape == (3, 3)
    assert gc.matmul(a, b, transpose_a=True).shape == (4, 4)


def test_batch_dims_that_do_not_broadcast():
    with pytest.raises(gc.ShapeError):
        gc.matmul(gc.placeholder(gc.float32, (2, 3, 4)), gc.placeholder(gc.float32, (3, 4, 5)))


@pytest.mark.parametrize("shapes", [((), (3, 4)), ((3, 4), ()), ((), ())], ids=str)
def test_scalar_operand_is_shape_error(shapes):
    with pytest.raises(gc.ShapeError):
        gc.matmul(gc.placeholder(gc.float32, shapes[0]), gc.placeholder(gc.float32, shapes[1]))


@pytest.mark.parametrize("dtypes", [("bool", "float32"), ("float32", "bool"), ("bool", "bool"),
                                    ("bool", "int32")], ids=str)
def test_bool_is_dtype_error(dtypes):
    with pytest.raises(gc.DTypeError):
        gc.matmul(gc.placeholder(dtypes[0], (2, 3)), gc.placeholder(dtypes[1], (3, 2)))


def test_mismatch_found_at_run_time_with_unknown_dims(backend):
    a = gc.placeholder(gc.float32, (None, None))
    b = gc.placeholder(gc.float32, (None, None))
    out = a @ b
    assert out.shape == (None, None)
    with pytest.raises(gc.GraphcError):
        run(out, {a: np.zeros((2, 3), np.float32), b: np.zeros((4, 2), np.float32)}, backend)
