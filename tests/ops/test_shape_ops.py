"""Shape ops (reshape, transpose, expand_dims, squeeze, broadcast_to, tile, pad, fill, shape and
the zeros/ones family) against NumPy, with fully known and with all-unknown placeholder shapes."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops import all_ops
from tests.helpers import assert_close, random_array, run

TESTED_OPS = {"Reshape", "Transpose", "ExpandDims", "Squeeze", "BroadcastTo", "Tile", "Pad", "Fill", "Shape"}

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
KNOWN = [pytest.param(True, id="known"), pytest.param(False, id="unknown")]


# --------------------------------------------------------------------------- local helpers
def _compatible(static, actual) -> bool:
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def _placeholder(arr: np.ndarray, known: bool) -> gc.Tensor:
    return gc.placeholder(arr.dtype, arr.shape if known else (None,) * arr.ndim)


def _check(out: gc.Tensor, actual, expected: np.ndarray, known: bool) -> None:
    """Values, dtype, and the static shape (equal when inputs are known, else compatible)."""
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    assert out.dtype == gc.as_dtype(expected.dtype)
    assert_close(actual, expected)
    if known:
        assert out.shape == expected.shape, f"static shape {out.shape} != actual {expected.shape}"
    else:
        assert _compatible(out.shape, expected.shape), f"static shape {out.shape} vs actual {expected.shape}"


def _apply(fn, x: np.ndarray, known: bool, backend: str):
    p = _placeholder(x, known)
    out = fn(p)
    return out, run(out, {p: x}, backend)


# --------------------------------------------------------------------------- reshape
RESHAPE_CASES = [
    ((2, 3, 4), (6, 4)),
    ((2, 3, 4), (-1,)),
    ((2, 3, 4), (4, -1)),
    ((2, 3, 4), (2, -1, 2)),
    ((), (1, 1)),
    ((1,), ()),
    ((1, 1, 1), (-1,)),
    ((6,), (1, 6, 1)),
    ((0, 3), (3, 0)),
    ((0, 3), (-1, 3)),
    ((0, 3), (0, 5)),
    ((5,), (-1,)),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,target", RESHAPE_CASES, ids=[f"{s}->{t}" for s, t in RESHAPE_CASES])
def test_reshape(backend, rng, shape, target, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.reshape(p, list(target)), x, known, backend)
    _check(out, got, np.reshape(x, target), known)


@pytest.mark.parametrize("out_type", ["int32", "int64"])
def test_reshape_shape_list_with_scalar_tensors(backend, rng, out_type):
    x = gc.placeholder(gc.float32, [None, 3, 4])
    y = gc.reshape(x, [gc.shape(x, out_type=out_type)[0], -1])
    assert y.shape == (None, 12)  # the -1 is known: the batch entry is x's own first dimension
    for batch in (5, 1, 0):
        value = random_array(rng, (batch, 3, 4), "float32")
        assert_close(run(y, {x: value}, backend), value.reshape(batch, 12))


def test_reshape_shape_list_mixing_ints_and_tensors(backend, rng):
    x = gc.placeholder(gc.float64, [None, 6])
    y = gc.reshape(x, [2, gc.shape(x)[0], 3])
    value = random_array(rng, (4, 6), "float64")
    assert_close(run(y, {x: value}, backend), value.reshape(2, 4, 3))


def test_partly_known_shape_arguments_give_partly_known_static_shapes(backend, rng):
    x = gc.placeholder(gc.float32, [None, 6])
    other = gc.placeholder(gc.float32, [None, 4])
    free = gc.placeholder(gc.float32, [None, None])
    cases = [
        (gc.reshape(x, [gc.shape(x)[0], 2, 3]), (None, 2, 3), lambda v: v.reshape(-1, 2, 3)),
        (gc.reshape(x, [gc.shape(x)[0], -1, 2]), (None, 3, 2), lambda v: v.reshape(len(v), -1, 2)),
        (gc.reshape(x, [-1, gc.shape(x)[0]]), (6, None), lambda v: v.reshape(-1, len(v))),
        (gc.reshape(x, [gc.shape(other)[0], -1]), (None, None), lambda v: v.reshape(3, -1)),
        (gc.broadcast_to(gc.constant(1.0), gc.shape(other)), (None, 4), lambda v: np.ones((3, 4), np.float32)),
        (gc.zeros_like(other), (None, 4), lambda v: np.zeros((3, 4), np.float32)),
        (gc.fill([gc.shape(x)[0], 2], 0.5), (None, 2), lambda v: np.full((3, 2), 0.5, np.float32)),
    ]
    feeds = {x: random_array(rng, (3, 6), "float32"), other: np.zeros((3, 4), np.float32)}
    for out, static, oracle in cases:
        assert out.shape == static
        assert_close(run(out, feeds, backend), oracle(feeds[x]))
    y = gc.reshape(free, [gc.shape(free)[0], -1])
    assert y.shape == (None, None)
    assert_close(run(y, {free: np.ones((2, 5), np.float32)}, backend), np.ones((2, 5), np.float32))


@pytest.mark.parametrize("out_type", ["int32", "int64"])
def test_reshape_with_1d_int_tensor_shape(backend, rng, out_type):
    x = gc.placeholder(gc.float32, [2, 6])
    target = gc.constant(np.array([3, -1], dtype=out_type))
    y = gc.reshape(x, target)
    assert y.shape == (3, 4)
    value = random_array(rng, (2, 6), "float32")
    assert_close(run(y, {x: value}, backend), value.reshape(3, 4))


def test_reshape_like_another_tensor_of_unknown_shape(backend, rng):
    x = gc.placeholder(gc.int32, [None])
    like = gc.placeholder(gc.float32, [None, None])
    y = gc.reshape(x, gc.shape(like))
    assert _compatible(y.shape, (2, 3)) and len(y.shape) == 2
    xv = random_array(rng, (6,), "int32")
    assert_close(run(y, {x: xv, like: np.zeros((2, 3), np.float32)}, backend), xv.reshape(2, 3))


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("shape,target,expected", [
    ((0, 3, 4), (0, -1), (0, 12)),
    ((0, 3), (-1, 0), (3, 0)),
    ((2, 0, 3), (-1, 0, 2), (3, 0, 2)),
])
def test_reshape_empty_with_minus_one_next_to_a_zero(backend, shape, target, expected, known):
    # NumPy refuses these; graphc follows TF (the -1 takes the non-zero sizes), which is what
    # makes reshape(x, [gc.shape(x)[0], -1]) work on an empty batch.
    x = np.zeros(shape, np.float32)
    out, got = _apply(lambda p: gc.reshape(p, list(target)), x, known, backend)
    _check(out, got, np.zeros(expected, np.float32), known)


def test_reshape_nonempty_into_a_zero_size_is_an_error():
    x = gc.placeholder(gc.float32, [2, 3])
    with pytest.raises(gc.ShapeError):
        gc.reshape(x, [0, -1])


def test_reshape_to_a_shape_computed_at_run_time_is_a_compile_error(backend):
    x = gc.placeholder(gc.float32, [6])
    target = gc.placeholder(gc.int32, [2])
    y = gc.reshape(x, target)
    assert y.shape == (None, None)
    with pytest.raises(gc.CompileError):
        run(y, {x: np.zeros(6, np.float32), target: np.array([2, 3], np.int32)}, backend)


def test_reshape_wrong_element_count_names_both_shapes():
    x = gc.placeholder(gc.float32, [2, 3])
    with pytest.raises(gc.ShapeError) as info:
        gc.reshape(x, [4, 2])
    msg = str(info.value)
    assert "(2, 3)" in msg and "(4, 2)" in msg


def test_reshape_not_a_multiple_with_minus_one():
    x = gc.placeholder(gc.float32, [5])
    with pytest.raises(gc.ShapeError):
        gc.reshape(x, [2, -1])


def test_reshape_two_minus_ones():
    x = gc.placeholder(gc.float32, [2, 3])
    with pytest.raises(gc.ShapeError):
        gc.reshape(x, [-1, -1])


def test_reshape_wrong_count_hidden_by_unknown_dim_fails_before_running(backend):
    x = gc.placeholder(gc.float32, [None, 3])
    y = gc.reshape(x, [4, 2])
    with pytest.raises(gc.ShapeError):
        run(y, {x: np.zeros((3, 3), np.float32)}, backend)


# --------------------------------------------------------------------------- transpose
TRANSPOSE_CASES = [
    ((2, 3), None),
    ((2, 3, 4), None),
    ((2, 3, 4), (1, 0, 2)),
    ((2, 3, 4), (-1, 0, -2)),
    ((), None),
    ((5,), None),
    ((5,), (0,)),
    ((0, 3, 1), (2, 0, 1)),
    ((2, 1, 3, 4), (3, -2, 0, 1)),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,perm", TRANSPOSE_CASES, ids=[f"{s}-{p}" for s, p in TRANSPOSE_CASES])
def test_transpose(backend, rng, shape, perm, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.transpose(p, perm), x, known, backend)
    np_perm = None if perm is None else [a % x.ndim for a in perm]
    _check(out, got, np.transpose(x, np_perm), known)


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("shape", [(2, 3), (4,), (2, 3, 4)])
def test_dot_T(backend, rng, shape, known):
    x = random_array(rng, shape, "float32")
    out, got = _apply(lambda p: p.T, x, known, backend)
    _check(out, got, x.T, known)


@pytest.mark.parametrize("perm", [(0, 0, 1), (0, 1), (0, 1, 3), (0, 1, 2, 3)])
def test_transpose_bad_perm(perm):
    x = gc.placeholder(gc.float32, [2, 3, 4])
    with pytest.raises(gc.ShapeError):
        gc.transpose(x, perm)


# --------------------------------------------------------------------------- expand_dims / squeeze
EXPAND_CASES = [((), 0), ((), -1), ((3,), 0), ((3,), 1), ((3,), -1), ((2, 3), -2), ((2, 3), 1),
                ((2, 3), -3), ((0, 2), -1)]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", EXPAND_CASES, ids=[f"{s}-{a}" for s, a in EXPAND_CASES])
def test_expand_dims(backend, rng, shape, axis, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.expand_dims(p, axis), x, known, backend)
    _check(out, got, np.expand_dims(x, axis), known)


@pytest.mark.parametrize("axis", [2, -3])
def test_expand_dims_axis_out_of_range(axis):
    x = gc.placeholder(gc.float32, [4])
    with pytest.raises(gc.ShapeError):
        gc.expand_dims(x, axis)


SQUEEZE_CASES = [
    ((1, 3, 1), None),
    ((1, 3, 1), (0,)),
    ((1, 3, 1), (-1,)),
    ((1, 3, 1), (0, 2)),
    ((1, 3, 1), -1),
    ((1,), None),
    ((1, 1), None),
    ((0, 1), (1,)),
    ((3,), None),
    ((), None),
    ((2, 1, 0, 1), None),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", SQUEEZE_CASES, ids=[f"{s}-{a}" for s, a in SQUEEZE_CASES])
def test_squeeze(backend, rng, shape, axis, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.squeeze(p, axis), x, known, backend)
    _check(out, got, np.squeeze(x, axis=axis), known)


@pytest.mark.parametrize("known", KNOWN)
def test_squeeze_empty_axis_list_squeezes_all_like_tf(backend, rng, known):
    x = random_array(rng, (1, 3, 1, 2), "float32")
    out, got = _apply(lambda p: gc.squeeze(p, []), x, known, backend)
    _check(out, got, np.squeeze(x), known)


def test_squeeze_dims_alias(backend, rng):
    x = random_array(rng, (1, 3, 1), "int32")
    out, got = _apply(lambda p: gc.squeeze(p, squeeze_dims=[2]), x, True, backend)
    _check(out, got, x[:, :, 0], True)


@pytest.mark.parametrize("axis", [(0,), (2,), (-1,), (0, 1)])
def test_squeeze_non_one_dim_is_a_build_time_shape_error(axis):
    x = gc.placeholder(gc.float32, [2, 1, 3])
    with pytest.raises(gc.ShapeError):
        gc.squeeze(x, axis)


def test_squeeze_non_one_dim_hidden_by_unknown_dim(backend):
    x = gc.placeholder(gc.float32, [None, 3])
    y = gc.squeeze(x, [0])
    assert y.shape == (3,)
    assert_close(run(y, {x: np.ones((1, 3), np.float32)}, backend), np.ones(3, np.float32))
    with pytest.raises(gc.ShapeError):
        run(y, {x: np.ones((2, 3), np.float32)}, backend)


# --------------------------------------------------------------------------- broadcast_to / tile
BROADCAST_CASES = [
    ((3,), (2, 3)),
    ((1, 3), (4, 3)),
    ((), (2, 2)),
    ((), ()),
    ((2, 1), (2, 0)),
    ((1,), (3,)),
    ((2, 1, 3), (2, 4, 3)),
    ((3,), (2, 1, 3)),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,target", BROADCAST_CASES, ids=[f"{s}->{t}" for s, t in BROADCAST_CASES])
def test_broadcast_to(backend, rng, shape, target, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.broadcast_to(p, list(target)), x, known, backend)
    _check(out, got, np.broadcast_to(x, target), known)


def test_broadcast_to_shape_of_unknown_tensor(backend, rng):
    x = gc.placeholder(gc.float32, [1, 3])
    like = gc.placeholder(gc.int64, [None, None])
    y = gc.broadcast_to(x, gc.shape(like))
    xv = random_array(rng, (1, 3), "float32")
    got = run(y, {x: xv, like: np.zeros((4, 3), np.int64)}, backend)
    assert_close(got, np.broadcast_to(xv, (4, 3)))


@pytest.mark.parametrize("shape,target", [((3,), (4,)), ((2, 3), (3,)), ((2, 3), (2, 2))])
def test_broadcast_to_incompatible(shape, target):
    x = gc.placeholder(gc.float32, shape)
    with pytest.raises(gc.ShapeError):
        gc.broadcast_to(x, target)


TILE_CASES = [
    ((2, 3), (2, 1)),
    ((2, 3), (1, 3)),
    ((), ()),
    ((3,), (0,)),
    ((1,), (4,)),
    ((1, 2, 1), (2, 2, 3)),
    ((0, 2), (3, 1)),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,multiples", TILE_CASES, ids=[f"{s}x{m}" for s, m in TILE_CASES])
def test_tile(backend, rng, shape, multiples, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.tile(p, list(multiples)), x, known, backend)
    _check(out, got, np.tile(x, multiples), known)


@pytest.mark.parametrize("multiples", [(2,), (1, 2, 3), (2, -1)])
def test_tile_bad_multiples(multiples):
    x = gc.placeholder(gc.float32, [2, 3])
    with pytest.raises(gc.ShapeError):
        gc.tile(x, multiples)


# --------------------------------------------------------------------------- pad
PAD_CASES = [
    ((3,), ((1, 2),)),
    ((2, 3), ((1, 0), (2, 2))),
    ((3, 4), ((2, 2), (3, 3))),
    ((4, 2, 3), ((0, 0), (1, 1), (2, 0))),
    ((2, 3), ((0, 0), (0, 0))),
    ((1, 3), ((0, 0), (1, 1))),
    ((0, 3), ((0, 0), (1, 2))),
    ((), ()),
]


def _pad_ok(shape, pads, mode) -> bool:
    limit = {"CONSTANT": None, "REFLECT": 1, "SYMMETRIC": 0}[mode]
    return limit is None or all(max(p) <= d - limit or max(p) == 0 for d, p in zip(shape, pads))


_PAD_PARAMS = [(s, p, m) for s, p in PAD_CASES for m in ("CONSTANT", "REFLECT", "SYMMETRIC") if _pad_ok(s, p, m)]


@pytest.mark.sampled(("shape", "pads", "mode"), "dtype", "known")
@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,pads,mode", _PAD_PARAMS, ids=[f"{s}-{p}-{m}" for s, p, m in _PAD_PARAMS])
def test_pad(backend, rng, shape, pads, mode, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: gc.pad(p, [list(q) for q in pads], mode=mode), x, known, backend)
    np_pads = [tuple(q) for q in pads]
    if x.ndim == 0:
        expected = x.copy()
    elif mode == "CONSTANT":
        expected = np.pad(x, np_pads, mode="constant")
    else:
        expected = np.pad(x, np_pads, mode=mode.lower())
    _check(out, got, expected, known)


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype,value", [("float32", -1.5), ("float64", 2.25), ("int32", 7), ("int64", -9),
                                         ("bool", True)])
def test_pad_constant_values(backend, rng, dtype, value, known):
    x = random_array(rng, (2, 3), dtype)
    out, got = _apply(lambda p: gc.pad(p, [[1, 2], [0, 1]], constant_values=value), x, known, backend)
    expected = np.pad(x, [(1, 2), (0, 1)], mode="constant", constant_values=np.asarray(value, x.dtype))
    _check(out, got, expected, known)


def test_pad_mode_is_case_insensitive(backend, rng):
    x = random_array(rng, (4,), "float32")
    p = gc.placeholder(gc.float32, [4])
    got = run(gc.pad(p, [[2, 1]], mode="reflect"), {p: x}, backend)
    assert_close(got, np.pad(x, [(2, 1)], mode="reflect"))


@pytest.mark.parametrize("mode,shape,pads", [
    ("REFLECT", (3,), ((3, 0),)),
    ("REFLECT", (3,), ((0, 3),)),
    ("REFLECT", (1, 4), ((1, 0), (0, 0))),
    ("SYMMETRIC", (3,), ((4, 0),)),
    ("SYMMETRIC", (2, 2), ((0, 0), (0, 3))),
])
def test_pad_too_large_mirror_padding(mode, shape, pads):
    x = gc.placeholder(gc.float32, shape)
    with pytest.raises(gc.ShapeError):
        gc.pad(x, pads, mode=mode)


def test_pad_too_large_reflect_hidden_by_unknown_dim(backend):
    x = gc.placeholder(gc.float32, [None])
    y = gc.pad(x, [[2, 0]], mode="REFLECT")
    assert_close(run(y, {x: np.arange(3, dtype=np.float32)}, backend), np.array([2, 1, 0, 1, 2], np.float32))
    with pytest.raises(gc.ShapeError):
        run(y, {x: np.arange(2, dtype=np.float32)}, backend)


@pytest.mark.parametrize("pads", [((1, 1),), ((1, 1), (1, 1), (1, 1)), ((-1, 0), (0, 0))])
def test_pad_bad_paddings(pads):
    x = gc.placeholder(gc.float32, [2, 3])
    with pytest.raises(gc.ShapeError):
        gc.pad(x, pads)


# --------------------------------------------------------------------------- fill, zeros, ones
@pytest.mark.parametrize("dims", [(2, 3), (), (0,), (4, 0, 2), (1,)], ids=str)
@pytest.mark.parametrize("value", [5.0, np.float64(-2.5), 7, np.int64(-3), True], ids=repr)
def test_fill(backend, dims, value):
    out = gc.fill(list(dims), value)
    expected_dtype = {float: np.float32, int: np.int32, bool: np.bool_}.get(type(value), np.asarray(value).dtype)
    expected = np.full(dims, value, dtype=expected_dtype)
    _check(out, run(out, None, backend), expected, True)


def test_fill_with_shape_of_unknown_tensor_and_tensor_value(backend, rng):
    x = gc.placeholder(gc.float32, [None, None])
    v = gc.placeholder(gc.int64, [])
    out = gc.fill(gc.shape(x), v)
    assert out.dtype == gc.int64 and _compatible(out.shape, (3, 2))
    got = run(out, {x: np.zeros((3, 2), np.float32), v: 11}, backend)
    _check(out, got, np.full((3, 2), 11, np.int64), False)


def test_fill_value_must_be_scalar():
    with pytest.raises(gc.ShapeError):
        gc.fill([2, 2], np.ones(2, np.float32))


@pytest.mark.parametrize("shape", [(2, 3), (), (0, 4), 4, [1, 1, 1]], ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["zeros", "ones"])
def test_zeros_ones(backend, kind, shape, dtype):
    out = getattr(gc, kind)(shape, dtype)
    expected = getattr(np, kind)(shape, dtype=dtype)
    _check(out, run(out, None, backend), expected, True)


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
def test_zeros_ones_default_dtype_and_gc_dtype(backend, dtype):
    assert gc.zeros([2]).dtype == gc.float32
    assert gc.ones([2]).dtype == gc.float32
    out = gc.ones([2], gc.as_dtype(dtype))
    _check(out, run(out, None, backend), np.ones(2, dtype), True)


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 3), (1, 4, 1)], ids=str)
@pytest.mark.parametrize("kind", ["zeros_like", "ones_like"])
def test_zeros_ones_like(backend, rng, kind, shape, dtype, known):
    x = random_array(rng, shape, dtype)
    out, got = _apply(lambda p: getattr(gc, kind)(p), x, known, backend)
    _check(out, got, getattr(np, kind)(x), known)


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("kind", ["zeros_like", "ones_like"])
def test_zeros_ones_like_with_dtype(backend, rng, kind, known):
    x = random_array(rng, (3, 2), "float32")
    out, got = _apply(lambda p: getattr(gc, kind)(p, dtype=gc.int64), x, known, backend)
    _check(out, got, getattr(np, kind)(x, dtype=np.int64), known)


def test_zeros_like_unknown_dims_follows_each_feed(backend):
    x = gc.placeholder(gc.float64, [None, 2, None])
    z = gc.zeros_like(x)
    with gc.Session(backend=backend) as sess:
        for shape in [(1, 2, 3), (4, 2, 0), (2, 2, 2)]:
            got = sess.run(z, {x: np.ones(shape)})
            _check(z, got, np.zeros(shape), False)


# --------------------------------------------------------------------------- shape
@pytest.mark.parametrize("out_type", ["int32", "int64"])
@pytest.mark.parametrize("shape", [(2, 3), (), (0,), (1, 4, 1, 2)], ids=str)
def test_shape_static_when_fully_known(backend, shape, out_type):
    x = gc.placeholder(gc.float32, shape)
    s = gc.shape(x, out_type=out_type)
    assert s.dtype == gc.as_dtype(out_type)
    assert s.shape == (len(shape),)
    assert s.static_value is not None
    np.testing.assert_array_equal(s.static_value, np.array(shape, dtype=out_type))
    got = np.asarray(run(s, {x: np.zeros(shape, np.float32)}, backend))
    _check(s, got, np.array(shape, dtype=out_type), True)


def test_shape_default_dtype_is_int32():
    assert gc.shape(gc.constant([[1.0, 2.0]])).dtype == gc.int32


@pytest.mark.parametrize("shape", [(2, 3), (0, 5), (1, 1, 7)], ids=str)
def test_shape_of_unknown_dims(backend, shape):
    x = gc.placeholder(gc.bool, (None,) * len(shape))
    s = gc.shape(x)
    assert s.shape == (len(shape),)
    assert s.static_value is None
    got = run(s, {x: np.zeros(shape, bool)}, backend)
    _check(s, got, np.array(shape, np.int32), True)


def test_shape_of_unknown_rank(backend):
    x = gc.placeholder(gc.float32)
    s = gc.shape(x)
    assert s.shape == (None,)
    got = run(s, {x: np.zeros((3, 1, 2), np.float32)}, backend)
    _check(s, got, np.array([3, 1, 2], np.int32), False)


def test_shape_entries_are_usable_while_building():
    x = gc.placeholder(gc.float32, [4, 5])
    n = gc.shape(x)[1]
    assert n.static_value is not None and int(n.static_value) == 5


def test_tested_ops_are_registered():
    assert TESTED_OPS <= set(all_ops())
