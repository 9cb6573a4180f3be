"""Indexing and joining ops (strided slice, concat, stack, unstack, split, gather, one_hot)
against NumPy."""
from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import graphc as gc
from graphc.ops import all_ops
from tests.helpers import assert_close, random_array, run

TESTED_OPS = {"StridedSlice", "Concat", "Pack", "Unpack", "Split", "Gather", "OneHot"}

DTYPES = ["float32", "float64", "int32", "int64", "bool"]
KNOWN = [pytest.param(True, id="known"), pytest.param(False, id="unknown")]


# --------------------------------------------------------------------------- local helpers
def _compatible(static, actual) -> bool:
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def _placeholder(arr: np.ndarray, known: bool) -> gc.Tensor:
    return gc.placeholder(arr.dtype, arr.shape if known else (None,) * arr.ndim)


def _check(out: gc.Tensor, actual, expected, known: bool) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    assert out.dtype == gc.as_dtype(expected.dtype)
    assert_close(actual, expected)
    if known:
        assert out.shape == expected.shape, f"static shape {out.shape} != actual {expected.shape}"
    else:
        assert _compatible(out.shape, expected.shape), f"static shape {out.shape} vs actual {expected.shape}"


def _key_id(key) -> str:
    def one(k):
        if isinstance(k, slice):
            return ":".join("" if v is None else str(v) for v in (k.start, k.stop, k.step))
        return "..." if k is Ellipsis else "None" if k is None else str(k)
    return "[" + ",".join(one(k) for k in (key if isinstance(key, tuple) else (key,))) + "]"


# --------------------------------------------------------------------------- strided slice
S = np.s_
SLICE_CASES = [
    ((7,), S[2]), ((7,), S[-1]), ((7,), S[-7]), ((7,), S[1:5]), ((7,), S[::-1]), ((7,), S[5:1:-1]),
    ((7,), S[-2:-6:-2]), ((7,), S[10:]), ((7,), S[-10:3]), ((7,), S[:100:3]), ((7,), S[100:-100:-1]),
    ((7,), S[3:3]), ((7,), S[5:2]), ((7,), S[None]), ((7,), S[None, 2:]), ((7,), S[...]),
    ((7,), S[..., None]), ((7,), S[::-3]), ((7,), S[1:-1]), ((7,), S[-1:-8:-1]),
    ((3, 4), S[1]), ((3, 4), S[-1, -1]), ((3, 4), S[:, 1]), ((3, 4), S[::-1, ::2]),
    ((3, 4), S[None, 1:, None]), ((3, 4), S[..., 0]), ((3, 4), S[0, ...]), ((3, 4), S[1:, -2:]),
    ((3, 4), S[:, None, :]), ((3, 4), S[-3:, 3:0:-1]), ((3, 4), S[2, 3]), ((3, 4), S[5:, :]),
    ((2, 3, 4), S[..., 1:3]), ((2, 3, 4), S[1, ..., None]), ((2, 3, 4), S[:, ::-1, 2]),
    ((2, 3, 4), S[-1, -2, -3]), ((2, 3, 4), S[None, ..., None]), ((2, 3, 4), S[0, :, ::-2]),
    ((2, 3, 4), S[:, 1]), ((2, 3, 4), S[1:0:-1, None, -100:100, ...]),
    ((2, 3, 1, 5), S[1, :, 0, ::2]), ((2, 3, 1, 5), S[..., 0, :]), ((2, 3, 1, 5), S[:, 1:2, ..., -1]),
    ((2, 3, 1, 5), S[::-1, ..., None, 3:]), ((2, 3, 1, 5), S[-1, -1, -1, -1]),
    ((), S[...]), ((), S[None]), ((), S[None, ..., None]), ((), ()),
    ((0, 3), S[:, 1]), ((0, 3), S[::-1]), ((4, 0), S[1:3, ::-1]),
]


@pytest.mark.sampled(("shape", "key"), "dtype", "known")
@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("shape,key", SLICE_CASES, ids=[f"{s}{_key_id(k)}" for s, k in SLICE_CASES])
def test_strided_slice(backend, rng, shape, key, dtype, known):
    x = random_array(rng, shape, dtype)
    p = _placeholder(x, known)
    out = p[key]
    _check(out, run(out, {p: x}, backend), x[key], known)


@pytest.mark.parametrize("dtype", ["float64", "int32"])
def test_strided_slice_scalar_result(backend, rng, dtype):
    x = random_array(rng, (3, 4, 2), dtype)
    p = gc.placeholder(dtype, [3, 4, 2])
    out = p[1, -1, 0]
    assert out.shape == ()
    got = run(out, {p: x}, backend)
    assert np.ndim(got) == 0
    assert got == x[1, -1, 0]


def test_strided_slice_of_a_constant_is_known_while_building():
    c = gc.constant(np.arange(12, dtype=np.int32).reshape(3, 4))
    np.testing.assert_array_equal(c[1:, ::-2].static_value, np.arange(12).reshape(3, 4)[1:, ::-2])


def test_slice_bounds_may_be_scalar_tensors_known_while_building(backend, rng):
    x = random_array(rng, (5, 4), "float32")
    p = gc.placeholder(gc.float32, [5, 4])
    n = gc.shape(p)[0]
    out = p[1:n - 1, gc.constant(2)]
    _check(out, run(out, {p: x}, backend), x[1:4, 2], True)


def test_slice_bounds_computed_at_run_time_are_refused():
    p = gc.placeholder(gc.float32, [None, 4])
    with pytest.raises(gc.GraphcError):
        p[: gc.shape(p)[0] - 1]


@pytest.mark.parametrize("key", [S[3], S[-4], S[:, 4], S[0, -5], S[..., 4]], ids=_key_id)
def test_index_out_of_range_for_known_dim_is_a_build_time_error(key):
    x = gc.placeholder(gc.float32, [3, 4])
    with pytest.raises(gc.ShapeError):
        x[key]


def test_index_out_of_range_hidden_by_unknown_dim(backend):
    x = gc.placeholder(gc.float32, [None])
    y = x[2]
    assert float(run(y, {x: np.arange(3, dtype=np.float32)}, backend)) == 2.0
    with pytest.raises(gc.ShapeError):
        run(y, {x: np.arange(2, dtype=np.float32)}, backend)


@pytest.mark.parametrize("key", [S[::0], S[1, 2, 3], S[..., 0, ...]], ids=_key_id)
def test_bad_slices(key):
    x = gc.placeholder(gc.float32, [3, 4])
    with pytest.raises(gc.ShapeError):
        x[key]


SLICE_FN_CASES = [
    ((3, 4, 5), [1, 0, 2], [2, -1, 3]),
    ((3, 4, 5), [0, 0, 0], [-1, -1, -1]),
    ((3, 4, 5), [2, 3, 4], [1, 1, 1]),
    ((3, 4, 5), [1, 1, 1], [0, 2, 0]),
    ((6,), [4], [-1]),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("shape,begin,size", SLICE_FN_CASES, ids=[f"{s}-{b}-{z}" for s, b, z in SLICE_FN_CASES])
def test_slice_function(backend, rng, shape, begin, size, known):
    x = random_array(rng, shape, "float32")
    p = _placeholder(x, known)
    out = gc.slice(p, begin, size)
    idx = tuple(slice(b, None if z == -1 else b + z) for b, z in zip(begin, size))
    _check(out, run(out, {p: x}, backend), x[idx], known)


# --------------------------------------------------------------------------- concat / stack
CONCAT_CASES = [
    ([(2, 3), (4, 3)], 0),
    ([(2, 3), (2, 1), (2, 2)], 1),
    ([(2, 3), (2, 5)], -1),
    ([(2, 3, 4), (2, 1, 4)], -2),
    ([(0, 3), (2, 3), (0, 3)], 0),
    ([(2, 0), (2, 3)], -1),
    ([(0, 0), (0, 0)], 1),
    ([(5,)], 0),
    ([(1,), (1,), (1,)], 0),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,axis", CONCAT_CASES, ids=[f"{s}@{a}" for s, a in CONCAT_CASES])
def test_concat(backend, rng, shapes, axis, dtype, known):
    xs = [random_array(rng, s, dtype) for s in shapes]
    ps = [_placeholder(x, known) for x in xs]
    out = gc.concat(ps, axis)
    _check(out, run(out, dict(zip(ps, xs)), backend), np.concatenate(xs, axis=axis), known)


@pytest.mark.parametrize("dtypes", [("int32", "float32"), ("bool", "int32"), ("int32", "int64"),
                                    ("float32", "float64"), ("bool", "float32"), ("int64", "float32"),
                                    ("bool", "int64", "float32")], ids=str)
def test_concat_mixed_dtypes_promote_like_numpy(backend, rng, dtypes):
    xs = [random_array(rng, (2, i + 1), d) for i, d in enumerate(dtypes)]
    ps = [gc.placeholder(d, x.shape) for d, x in zip(dtypes, xs)]
    out = gc.concat(ps, axis=1)
    _check(out, run(out, dict(zip(ps, xs)), backend), np.concatenate(xs, axis=1), True)


@pytest.mark.parametrize("shapes,axis", [([(2, 3), (3, 3)], 1), ([(2, 3), (2, 3, 1)], 0), ([(), ()], 0),
                                         ([(2, 3), (2, 3)], 2), ([(2, 3), (2, 3)], -3)])
def test_concat_shape_errors(shapes, axis):
    ps = [gc.placeholder(gc.float32, s) for s in shapes]
    with pytest.raises(gc.ShapeError):
        gc.concat(ps, axis)


def test_concat_mismatch_hidden_by_unknown_dim(backend):
    a = gc.placeholder(gc.float32, [None, 3])
    b = gc.placeholder(gc.float32, [2, 3])
    out = gc.concat([a, b], axis=1)
    with pytest.raises(gc.ShapeError):
        run(out, {a: np.zeros((3, 3), np.float32), b: np.zeros((2, 3), np.float32)}, backend)


STACK_CASES = [((3,), 2, 0), ((3,), 2, 1), ((3,), 2, -1), ((3,), 4, -2), ((2, 3), 3, 1), ((2, 3), 2, -1),
               ((2, 3), 2, -3), ((), 3, 0), ((), 1, -1), ((0, 2), 2, 1)]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,n,axis", STACK_CASES, ids=[f"{s}x{n}@{a}" for s, n, a in STACK_CASES])
def test_stack(backend, rng, shape, n, axis, dtype, known):
    xs = [random_array(rng, shape, dtype) for _ in range(n)]
    ps = [_placeholder(x, known) for x in xs]
    out = gc.stack(ps, axis=axis)
    _check(out, run(out, dict(zip(ps, xs)), backend), np.stack(xs, axis=axis), known)


def test_stack_mixed_dtypes(backend, rng):
    a, b = random_array(rng, (3,), "int32"), random_array(rng, (3,), "float32")
    pa, pb = gc.placeholder(gc.int32, [3]), gc.placeholder(gc.float32, [3])
    out = gc.stack([pa, pb])
    _check(out, run(out, {pa: a, pb: b}, backend), np.stack([a, b]), True)


@pytest.mark.parametrize("shapes,axis", [([(3,), (4,)], 0), ([(3,), (3,)], 2), ([(3,), (3,)], -3)])
def test_stack_shape_errors(shapes, axis):
    ps = [gc.placeholder(gc.float32, s) for s in shapes]
    with pytest.raises(gc.ShapeError):
        gc.stack(ps, axis=axis)


UNSTACK_CASES = [((3, 2), 0), ((3, 2), 1), ((3, 2), -1), ((2, 3, 4), -2), ((4,), 0), ((1, 0), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", UNSTACK_CASES, ids=[f"{s}@{a}" for s, a in UNSTACK_CASES])
def test_unstack(backend, rng, shape, axis, dtype):
    x = random_array(rng, shape, dtype)
    p = gc.placeholder(dtype, shape)
    outs = gc.unstack(p, axis=axis)
    expected = [np.take(x, i, axis=axis) for i in range(x.shape[axis])]
    assert len(outs) == len(expected)
    got = run(outs, {p: x}, backend)
    for o, g, e in zip(outs, got, expected):
        _check(o, g, e, True)


def test_unstack_unknown_dims_with_num(backend, rng):
    x = random_array(rng, (3, 4), "float32")
    p = gc.placeholder(gc.float32, [None, None])
    outs = gc.unstack(p, num=4, axis=1)
    assert len(outs) == 4
    for i, g in enumerate(run(outs, {p: x}, backend)):
        assert_close(g, x[:, i])


def test_unstack_unknown_size_needs_num():
    p = gc.placeholder(gc.float32, [None, 2])
    with pytest.raises(gc.ShapeError):
        gc.unstack(p)
    with pytest.raises(gc.ShapeError):
        gc.unstack(p, num=3, axis=1)


# --------------------------------------------------------------------------- split
SPLIT_CASES = [
    ((6, 2), 3, 0),
    ((6, 2), 2, 1),
    ((2, 6), 1, -1),
    ((2, 6), [1, 2, 3], -1),
    ((2, 6), [2, -1], 1),
    ((2, 6), [-1, 2, 0], 1),
    ((5,), [0, 5], 0),
    ((4, 3, 2), [1, -1], -3),
    ((0, 3), 3, 1),
]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
@pytest.mark.parametrize("shape,parts,axis", SPLIT_CASES, ids=[f"{s}/{p}@{a}" for s, p, a in SPLIT_CASES])
def test_split(backend, rng, shape, parts, axis, dtype, known):
    x = random_array(rng, shape, dtype)
    p = _placeholder(x, known)
    outs = gc.split(p, parts, axis=axis)
    if isinstance(parts, int):
        expected = np.split(x, parts, axis=axis)
    else:
        sizes = list(parts)
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
        expected = np.split(x, np.cumsum(sizes)[:-1], axis=axis)
    assert len(outs) == len(expected)
    for o, g, e in zip(outs, run(outs, {p: x}, backend), expected):
        _check(o, g, e, known)


@pytest.mark.parametrize("shape,parts", [((7,), 2), ((6,), 4), ((6,), [2, 2]), ((6,), [4, 3, -1]),
                                         ((6,), [-1, -1]), ((6,), 0), ((6,), [7, 0])], ids=str)
def test_split_errors(shape, parts):
    p = gc.placeholder(gc.float32, shape)
    with pytest.raises(gc.ShapeError):
        gc.split(p, parts)


def test_split_uneven_hidden_by_unknown_dim(backend):
    p = gc.placeholder(gc.float32, [None])
    a, b = gc.split(p, 2)
    assert_close(run(b, {p: np.arange(4, dtype=np.float32)}, backend), np.array([2, 3], np.float32))
    with pytest.raises(gc.ShapeError):
        run(b, {p: np.arange(5, dtype=np.float32)}, backend)


# --------------------------------------------------------------------------- gather
GATHER_CASES = [
    ((5,), [3, 0, 4, 4], 0),
    ((5, 3), [1, 4], 0),
    ((5, 3), [[0, 2], [2, 1], [4, 4]], 0),
    ((5, 3), [2, 0, 1, 2], 1),
    ((5, 3), [[1], [0]], -1),
    ((2, 3, 4), [3, 0], -1),
    ((2, 3, 4), [[1, 1, 0]], -2),
    ((4, 2), 3, 0),
    ((4, 2), [], 0),
    ((0, 3), [1, 2], 1),
]


@pytest.mark.sampled(("shape", "indices", "axis"), "dtype", "known", "index_dtype")
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,indices,axis", GATHER_CASES, ids=[f"{s}[{i}]@{a}" for s, i, a in GATHER_CASES])
def test_gather(backend, rng, shape, indices, axis, dtype, known, index_dtype):
    x = random_array(rng, shape, dtype)
    idx = np.array(indices, dtype=index_dtype).reshape(np.shape(indices))
    p = _placeholder(x, known)
    i = _placeholder(idx, known)
    out = gc.gather(p, i, axis=axis)
    _check(out, run(out, {p: x, i: idx}, backend), np.take(x, idx, axis=axis), known)


@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_gather_with_constant_indices(backend, rng, index_dtype):
    x = random_array(rng, (4, 3), "float64")
    p = gc.placeholder(gc.float64, [4, 3])
    idx = np.array([[3, 1], [0, 0]], dtype=index_dtype)
    out = gc.gather(p, idx, axis=0)
    _check(out, run(out, {p: x}, backend), x[idx], True)


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_getitem_with_int_tensor_gathers_axis_0(backend, rng, index_dtype, known):
    x = random_array(rng, (5, 2, 3), "float32")
    idx = np.array([[4, 0], [1, 1]], dtype=index_dtype)
    p, i = _placeholder(x, known), _placeholder(idx, known)
    out = p[i]
    assert out.op.type == "Gather"
    _check(out, run(out, {p: x, i: idx}, backend), x[idx], known)


def test_getitem_with_list_gathers(backend, rng):
    x = random_array(rng, (5, 2), "int32")
    p = gc.placeholder(gc.int32, [5, 2])
    out = p[[4, 2, 2]]
    _check(out, run(out, {p: x}, backend), x[[4, 2, 2]], True)


@pytest.mark.parametrize("bad", [5, -1, 100])
@pytest.mark.parametrize("axis", [0, 1])
def test_gather_out_of_range_index_is_a_run_time_error_naming_node_and_line(backend, bad, axis):
    p = gc.placeholder(gc.float32, [5, 5])
    i = gc.placeholder(gc.int64, [None])
    line = inspect.currentframe().f_lineno + 1
    out = gc.gather(p, i, axis=axis, name="my_gather")
    ok = run(out, {p: np.ones((5, 5), np.float32), i: [0, 4]}, backend)
    assert np.shape(ok) == ((2, 5) if axis == 0 else (5, 2))
    with pytest.raises(gc.InvalidArgumentError) as info:
        run(out, {p: np.ones((5, 5), np.float32), i: [0, bad, 1]}, backend)
    msg = str(info.value)
    assert "my_gather" in msg
    assert f"{os.path.basename(__file__)}:{line}" in msg
    assert str(bad) in msg


def test_getitem_gather_out_of_range_names_the_line(backend):
    p = gc.placeholder(gc.int32, [3])
    i = gc.placeholder(gc.int32, [2])
    line = inspect.currentframe().f_lineno + 1
    out = p[i]
    with pytest.raises(gc.InvalidArgumentError) as info:
        run(out, {p: np.arange(3, dtype=np.int32), i: np.array([1, 3], np.int32)}, backend)
    msg = str(info.value)
    assert out.op.name in msg
    assert f"{os.path.basename(__file__)}:{line}" in msg


@pytest.mark.parametrize("make_indices", [
    lambda: gc.placeholder(gc.float32, [2]),
    lambda: gc.constant([0.0, 1.0]),
    lambda: gc.placeholder(gc.bool, [2]),
], ids=["float-placeholder", "float-constant", "bool"])
def test_gather_non_integer_indices_is_a_dtype_error(make_indices):
    p = gc.placeholder(gc.float32, [3, 2])
    with pytest.raises(gc.DTypeError):
        gc.gather(p, make_indices())


def test_getitem_with_float_tensor_is_a_dtype_error():
    p = gc.placeholder(gc.float32, [3, 2])
    with pytest.raises(gc.DTypeError):
        p[gc.placeholder(gc.float64, [2])]


# --------------------------------------------------------------------------- one_hot
def _one_hot_np(indices, depth, on, off, axis, dtype):
    indices = np.asarray(indices)
    out = np.where(indices[..., None] == np.arange(depth), np.asarray(on, dtype), np.asarray(off, dtype))
    return np.moveaxis(out, -1, axis if axis >= 0 else axis + out.ndim)


ONE_HOT_CASES = [
    ([0, 2, 1], 3, -1),
    ([0, 2, 1], 3, 0),
    ([[0, 4], [3, 1]], 5, -1),
    ([[0, 4], [3, 1]], 5, 0),
    ([[0, 4], [3, 1]], 5, 1),
    ([5, -1, 2, 100, -7], 4, -1),
    ([5, -1, 2], 4, 0),
    (2, 4, -1),
    (2, 4, 0),
    ([], 3, -1),
    ([1, 0], 0, -1),
]


@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("indices,depth,axis", ONE_HOT_CASES, ids=[f"{i}-d{d}@{a}" for i, d, a in ONE_HOT_CASES])
def test_one_hot_default_values(backend, indices, depth, axis, known, index_dtype):
    idx = np.array(indices, dtype=index_dtype)
    p = _placeholder(idx, known)
    out = gc.one_hot(p, depth, axis=axis)
    assert out.dtype == gc.float32
    _check(out, run(out, {p: idx}, backend), _one_hot_np(idx, depth, 1, 0, axis, np.float32), known)


@pytest.mark.parametrize("on,off,dtype,expected_dtype", [
    (5.0, -1.0, None, np.float32),
    (3, 7, None, np.int32),
    (2.5, None, "float64", np.float64),
    (None, 0.25, None, np.float32),
    (1, 0, "int64", np.int64),
    (True, False, None, np.bool_),
    (None, None, gc.int32, np.int32),
], ids=str)
@pytest.mark.parametrize("axis", [-1, 0])
def test_one_hot_values_and_dtypes(backend, on, off, dtype, expected_dtype, axis):
    idx = np.array([[1, 0, 3], [2, -1, 9]], dtype=np.int32)
    p = gc.placeholder(gc.int32, [2, 3])
    out = gc.one_hot(p, 4, on_value=on, off_value=off, axis=axis, dtype=dtype)
    expected = _one_hot_np(idx, 4, 1 if on is None else on, 0 if off is None else off, axis, expected_dtype)
    _check(out, run(out, {p: idx}, backend), expected, True)


def test_one_hot_out_of_range_and_negative_indices_give_all_off_rows(backend):
    p = gc.placeholder(gc.int64, [4])
    out = gc.one_hot(p, 3, on_value=2.0, off_value=-1.0)
    got = run(out, {p: np.array([1, -1, 3, 0], np.int64)}, backend)
    expected = np.array([[-1, 2, -1], [-1, -1, -1], [-1, -1, -1], [2, -1, -1]], np.float32)
    _check(out, got, expected, True)
    got0 = run(gc.one_hot(p, 3, axis=0), {p: np.array([1, -1, 3, 0], np.int64)}, backend)
    np.testing.assert_array_equal(got0, np.array([[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32))


def test_one_hot_float_indices_is_a_dtype_error():
    with pytest.raises(gc.DTypeError):
        gc.one_hot(gc.placeholder(gc.float32, [3]), 4)


def test_tested_ops_are_registered():
    assert TESTED_OPS <= set(all_ops())
