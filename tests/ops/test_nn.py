"""gc.nn ops against NumPy oracles: softmax family, cross-entropies, l2_loss, bias_add, moments,
batch_normalization, conv2d and pooling (naive loops, TF semantics) and dropout."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import graphc as gc
from graphc.ops import all_ops
from tests.helpers import assert_close, random_array, run

TESTED_OPS = {"Softmax", "LogSoftmax", "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits",
              "Conv2D", "MaxPool", "AvgPool", "RandomUniform"}

FLOATS = ["float32", "float64"]
KNOWN = [pytest.param(True, id="known"), pytest.param(False, id="unknown")]


# --------------------------------------------------------------------------- local helpers
def _compatible(static, actual) -> bool:
    if static is None:
        return True
    return len(static) == len(actual) and all(s is None or s == a for s, a in zip(static, actual))


def _placeholder(arr: np.ndarray, known: bool = True) -> gc.Tensor:
    return gc.placeholder(arr.dtype, arr.shape if known else (None,) * arr.ndim)


def _check(out: gc.Tensor, actual, expected, dtype, known: bool = True, **tol) -> None:
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype} != {dtype}"
    assert out.dtype == gc.as_dtype(dtype)
    if known:
        assert out.shape == np.shape(expected), f"static shape {out.shape} != {np.shape(expected)}"
    else:
        assert _compatible(out.shape, np.shape(expected))
    assert_close(actual, np.asarray(expected), dtype=dtype, **tol)


def _logsumexp64(x: np.ndarray, axis: int) -> np.ndarray:
    x = x.astype(np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _softmax64(x: np.ndarray, axis: int) -> np.ndarray:
    return np.exp(x.astype(np.float64) - _logsumexp64(x, axis))


# --------------------------------------------------------------------------- softmax family
SOFTMAX_SHAPES = [((4, 5), -1), ((4, 5), 0), ((7,), -1), ((7,), 0), ((2, 3, 4), -1), ((2, 3, 4), 1), ((3, 1), -1)]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axis", SOFTMAX_SHAPES, ids=[f"{s}@{a}" for s, a in SOFTMAX_SHAPES])
def test_softmax_and_log_softmax(backend, rng, shape, axis, dtype, known):
    x = random_array(rng, shape, dtype, -5, 5)
    p = _placeholder(x, known)
    sm, lsm = gc.nn.softmax(p, axis=axis), gc.nn.log_softmax(p, axis=axis)
    got_sm, got_lsm = run([sm, lsm], {p: x}, backend)
    _check(sm, got_sm, _softmax64(x, axis), dtype, known)
    atol = 1e-5 if dtype == "float32" else None
    _check(lsm, got_lsm, x.astype(np.float64) - _logsumexp64(x, axis), dtype, known, atol=atol)
    assert_close(np.sum(got_sm, axis=axis), np.ones(np.delete(shape, axis % len(shape))), dtype=dtype, atol=1e-6)


def test_softmax_dim_alias(backend, rng):
    x = random_array(rng, (3, 4), "float64")
    p = _placeholder(x)
    assert_close(run(gc.nn.softmax(p, dim=0), {p: x}, backend), _softmax64(x, 0))


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_extreme_logits_are_finite(backend, dtype):
    x = np.array([[800.0, 0.0, -800.0], [-800.0, -800.0, -800.0], [800.0, 800.0, 799.0],
                  [-800.0, 800.0, 0.0]], dtype=dtype)
    p = _placeholder(x)
    sm, lsm = run([gc.nn.softmax(p), gc.nn.log_softmax(p)], {p: x}, backend)
    assert np.all(np.isfinite(sm)) and np.all(np.isfinite(lsm))
    assert_close(np.sum(sm, axis=-1), np.ones(4), dtype=dtype, atol=1e-6)
    with np.errstate(all="ignore"):
        assert_close(sm, _softmax64(x, -1), dtype=dtype)
        assert_close(lsm, x.astype(np.float64) - _logsumexp64(x, -1), dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_row_with_minus_inf(backend, dtype):
    x = np.array([[0.0, -np.inf, 1.0], [2.0, 2.0, -np.inf]], dtype=dtype)
    p = _placeholder(x)
    sm, lsm = run([gc.nn.softmax(p), gc.nn.log_softmax(p)], {p: x}, backend)
    e = math.e
    expected = np.array([[1 / (1 + e), 0.0, e / (1 + e)], [0.5, 0.5, 0.0]])
    assert_close(sm, expected, dtype=dtype)
    assert lsm[0, 1] == -np.inf and lsm[1, 2] == -np.inf
    assert_close(lsm[0, [0, 2]], np.log(expected[0, [0, 2]]), dtype=dtype)
    assert np.all(np.isfinite(lsm[1, :2]))


@pytest.mark.parametrize("op", [gc.nn.softmax, gc.nn.log_softmax])
def test_softmax_rejects_ints_and_scalars(op):
    with pytest.raises(gc.DTypeError):
        op(gc.placeholder(gc.int32, [3]))
    with pytest.raises(gc.ShapeError):
        op(gc.placeholder(gc.float32, []))
    with pytest.raises(gc.ShapeError):
        op(gc.placeholder(gc.float32, [2, 3]), axis=2)


# --------------------------------------------------------------------------- cross-entropies
def _xent64(labels: np.ndarray, logits: np.ndarray, axis: int) -> np.ndarray:
    logp = logits.astype(np.float64) - _logsumexp64(logits, axis)
    with np.errstate(all="ignore"):
        terms = np.where(labels != 0, labels.astype(np.float64) * logp, 0.0)
    return -np.sum(terms, axis=axis)


def _random_distribution(rng, shape, axis, dtype):
    w = rng.random(shape)
    return (w / w.sum(axis=axis, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((4, 5), 0), ((6,), -1), ((2, 3, 4), 1)], ids=str)
def test_softmax_cross_entropy(backend, rng, shape, axis, dtype, known):
    logits = random_array(rng, shape, dtype, -4, 4)
    labels = _random_distribution(rng, shape, axis, dtype)
    pl, pg = _placeholder(labels, known), _placeholder(logits, known)
    out = gc.nn.softmax_cross_entropy_with_logits(labels=pl, logits=pg, axis=axis)
    _check(out, run(out, {pl: labels, pg: logits}, backend), _xent64(labels, logits, axis), dtype, known,
           atol=1e-5 if dtype == "float32" else None)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_one_hot_labels_and_extremes(backend, dtype):
    logits = np.array([[800.0, -800.0, 0.0], [-800.0, 800.0, 0.0], [1.0, 2.0, 3.0]], dtype=dtype)
    labels = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=dtype)
    pl, pg = _placeholder(labels), _placeholder(logits)
    got = run(gc.nn.softmax_cross_entropy_with_logits(labels=pl, logits=pg), {pl: labels, pg: logits}, backend)
    assert np.all(np.isfinite(got))
    assert_close(got, _xent64(labels, logits, -1), dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_cross_entropy_zero_labels_at_minus_inf_logits_are_finite(backend, dtype):
    logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=dtype)
    labels = np.array([[0.25, 0.0, 0.75], [0.0, 1.0, 0.0]], dtype=dtype)
    pl, pg = _placeholder(labels), _placeholder(logits)
    got = run(gc.nn.softmax_cross_entropy_with_logits(labels=pl, logits=pg), {pl: labels, pg: logits}, backend)
    assert np.all(np.isfinite(got))
    assert_close(got, _xent64(labels, logits, -1), dtype=dtype)
    assert got[1] == 0.0


def test_softmax_cross_entropy_with_list_labels_takes_the_logits_dtype(backend, rng):
    logits = random_array(rng, (2, 3), "float64")
    pg = _placeholder(logits)
    labels = [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]
    out = gc.nn.softmax_cross_entropy_with_logits(labels=labels, logits=pg)
    _check(out, run(out, {pg: logits}, backend), _xent64(np.array(labels), logits, -1), "float64")


def test_softmax_cross_entropy_shape_mismatch():
    with pytest.raises(gc.ShapeError):
        gc.nn.softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.float32, [2, 3]),
                                                logits=gc.placeholder(gc.float32, [2, 4]))


@pytest.mark.parametrize("label_dtype", ["int32", "int64"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("shape", [(5, 4), (3,), (2, 3, 6)], ids=str)
def test_sparse_softmax_cross_entropy(backend, rng, shape, known, dtype, label_dtype):
    logits = random_array(rng, shape, dtype, -4, 4)
    labels = rng.integers(0, shape[-1], size=shape[:-1]).astype(label_dtype)
    pl, pg = _placeholder(labels, known), _placeholder(logits, known)
    out = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=pl, logits=pg)
    logp = logits.astype(np.float64) - _logsumexp64(logits, -1)
    expected = -np.take_along_axis(logp, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    _check(out, run(out, {pl: labels, pg: logits}, backend), expected, dtype, known,
           atol=1e-5 if dtype == "float32" else None)


@pytest.mark.parametrize("bad", [4, -1, 1000])
@pytest.mark.parametrize("label_dtype", ["int32", "int64"])
def test_sparse_softmax_cross_entropy_out_of_range_label(backend, bad, label_dtype):
    pl = gc.placeholder(label_dtype, [None])
    pg = gc.placeholder(gc.float32, [None, 4])
    out = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=pl, logits=pg, name="sparse_xent")
    logits = np.zeros((3, 4), np.float32)
    ok = run(out, {pl: np.array([0, 3, 1], label_dtype), pg: logits}, backend)
    assert_close(ok, np.full(3, np.log(4.0), np.float32))
    with pytest.raises(gc.InvalidArgumentError) as info:
        run(out, {pl: np.array([0, bad, 1], label_dtype), pg: logits}, backend)
    assert "sparse_xent" in str(info.value)


def test_sparse_softmax_cross_entropy_build_errors():
    with pytest.raises(gc.DTypeError):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.float32, [3]),
                                                       logits=gc.placeholder(gc.float32, [3, 4]))
    with pytest.raises(gc.ShapeError):
        gc.nn.sparse_softmax_cross_entropy_with_logits(labels=gc.placeholder(gc.int32, [2]),
                                                       logits=gc.placeholder(gc.float32, [3, 4]))


# --------------------------------------------------------------------------- l2_loss, bias_add
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(3, 4), (5,), (), (0, 2)], ids=str)
def test_l2_loss(backend, rng, shape, dtype):
    x = random_array(rng, shape, dtype)
    p = _placeholder(x)
    out = gc.nn.l2_loss(p)
    _check(out, run(out, {p: x}, backend), np.sum(x.astype(np.float64) ** 2) / 2, dtype)


BIAS_CASES = [((2, 3, 4, 5), "NHWC", 5), ((2, 5, 3, 4), "NCHW", 5), ((4, 3), None, 3), ((4, 3), "NC", 3),
              ((2, 3, 6), "NWC", 6), ((2, 6, 3), "NCW", 6)]


@pytest.mark.parametrize("known", KNOWN)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,fmt,c", BIAS_CASES, ids=[f"{s}-{f}" for s, f, _ in BIAS_CASES])
def test_bias_add(backend, rng, shape, fmt, c, dtype, known):
    x = random_array(rng, shape, dtype)
    b = random_array(rng, (c,), dtype)
    px, pb = _placeholder(x, known), _placeholder(b, known)
    out = gc.nn.bias_add(px, pb, data_format=fmt)
    if fmt is not None and fmt.startswith("NC"):
        expected = x + b.reshape((-1,) + (1,) * (x.ndim - 2))
    else:
        expected = x + b
    _check(out, run(out, {px: x, pb: b}, backend), expected, dtype, known)


@pytest.mark.parametrize("shape,fmt", [((2, 3, 4, 5), "NHWC"), ((2, 5, 3, 4), "NCHW")])
def test_bias_add_wrong_bias_size(shape, fmt):
    x = gc.placeholder(gc.float32, shape)
    with pytest.raises(gc.ShapeError):
        gc.nn.bias_add(x, gc.placeholder(gc.float32, [4 if fmt == "NHWC" else 3]), data_format=fmt)


def test_bias_add_needs_1d_bias():
    with pytest.raises(gc.ShapeError):
        gc.nn.bias_add(gc.placeholder(gc.float32, [2, 3]), gc.placeholder(gc.float32, [1, 3]))


# --------------------------------------------------------------------------- moments, batch norm
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,axes", [((6, 4), [0]), ((2, 3, 4, 5), [0, 1, 2]), ((5,), [0]), ((3, 4), [1]),
                                        ((3, 4), [0, 1]), ((3, 4), -1), ((1, 4, 1), [1]), ((1, 4, 1), [])], ids=str)
def test_moments(backend, rng, shape, axes, dtype, keepdims):
    x = random_array(rng, shape, dtype)
    p = _placeholder(x)
    mean, var = gc.nn.moments(p, axes, keepdims=keepdims)
    got_mean, got_var = run([mean, var], {p: x}, backend)
    x64 = x.astype(np.float64)
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    atol = 1e-5 if dtype == "float32" else None
    _check(mean, got_mean, np.mean(x64, axis=axes, keepdims=keepdims), dtype, atol=atol)
    _check(var, got_var, np.var(x64, axis=axes, keepdims=keepdims), dtype, atol=atol)


@pytest.mark.parametrize("with_offset,with_scale", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_normalization(backend, rng, dtype, with_offset, with_scale):
    x = random_array(rng, (4, 3, 5), dtype)
    px = _placeholder(x)
    mean, var = gc.nn.moments(px, [0, 1])
    offset = random_array(rng, (5,), dtype) if with_offset else None
    scale = random_array(rng, (5,), dtype, 0.5, 2) if with_scale else None
    eps = 1e-3
    out = gc.nn.batch_normalization(px, mean, var, offset, scale, eps)
    x64 = x.astype(np.float64)
    m, v = x64.mean(axis=(0, 1)), x64.var(axis=(0, 1))
    expected = (x64 - m) / np.sqrt(v + eps)
    if with_scale:
        expected = expected * scale
    if with_offset:
        expected = expected + offset
    _check(out, run(out, {px: x}, backend), expected, dtype, atol=1e-5 if dtype == "float32" else None)


# --------------------------------------------------------------------------- conv2d
def _same_pads(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    eff = (k - 1) * dilation + 1
    out = -(-n // stride)
    total = max((out - 1) * stride + eff - n, 0)
    return total // 2, total - total // 2


def _conv2d_naive(x, f, strides, padding, dilations, data_format):
    """Cross-correlation by loops over output positions and filter taps (TF rules), in float64."""
    x = x.astype(np.float64)
    f = f.astype(np.float64)
    if data_format == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, _ = x.shape
    kh, kw, _, cout = f.shape
    (sh, sw), (dh, dw) = strides, dilations
    if padding == "SAME":
        (pt, pb), (pl, pr) = _same_pads(h, kh, sh, dh), _same_pads(w, kw, sw, dw)
    elif padding == "VALID":
        pt = pb = pl = pr = 0
    else:
        (pt, pb), (pl, pr) = padding
    oh = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    ow = (w + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    out = np.zeros((n, oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                r = i * sh - pt + a * dh
                if not 0 <= r < h:
                    continue
                for b in range(kw):
                    c = j * sw - pl + b * dw
                    if 0 <= c < w:
                        out[:, i, j, :] += x[:, r, c, :] @ f[a, b]
    return out.transpose(0, 3, 1, 2) if data_format == "NCHW" else out


KERNELS = [(1, 1), (3, 3), (5, 2)]
STRIDES = ["1", "2", "tf-2", "1x2"]
PADDINGS = ["SAME", "VALID", "explicit"]
DILATIONS = [1, 2]
SIZES = [(9, 10), (10, 7)]
CONV_CASES = []
for _i, (_k, _s, _p, _d) in enumerate(itertools.product(KERNELS, STRIDES, PADDINGS, DILATIONS)):
    CONV_CASES.append(pytest.param(
        _k, _s, _p, _d, SIZES[_i % 2], (1, 3)[(_i // 2) % 2], FLOATS[(_i // 4) % 2], ("NHWC", "NCHW")[(_i // 3) % 2],
        id=f"k{_k[0]}x{_k[1]}-s{_s}-{_p}-d{_d}-{SIZES[_i % 2]}"))


def _conv_args(stride_kind, padding_kind, dilation, fmt):
    strides = {"1": 1, "2": 2, "1x2": [1, 2]}.get(stride_kind)
    if stride_kind == "tf-2":
        strides = [1, 2, 2, 1] if fmt == "NHWC" else [1, 1, 2, 2]
    pair = {"1": (1, 1), "2": (2, 2), "tf-2": (2, 2), "1x2": (1, 2)}[stride_kind]
    padding = ((1, 2), (0, 1)) if padding_kind == "explicit" else padding_kind
    return strides, pair, padding, dilation


@pytest.mark.parametrize("kernel,stride_kind,padding_kind,dilation,size,batch,dtype,fmt", CONV_CASES)
def test_conv2d(backend, rng, kernel, stride_kind, padding_kind, dilation, size, batch, dtype, fmt):
    cin, cout = 3, 2
    h, w = size
    x_shape = (batch, h, w, cin) if fmt == "NHWC" else (batch, cin, h, w)
    x = random_array(rng, x_shape, dtype, -1, 1)
    f = random_array(rng, kernel + (cin, cout), dtype, -1, 1)
    px, pf = _placeholder(x), _placeholder(f)
    strides, pair, padding, dil = _conv_args(stride_kind, padding_kind, dilation, fmt)
    dilations = dil
    if stride_kind == "tf-2":  # TF's 4-element form for dilations too
        dilations = [1, dil, dil, 1] if fmt == "NHWC" else [1, 1, dil, dil]
    out = gc.nn.conv2d(px, pf, strides=strides, padding=padding, data_format=fmt, dilations=dilations)
    expected = _conv2d_naive(x, f, pair, padding, (dil, dil), fmt)
    assert expected.size > 0
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-12}
    _check(out, run(out, {px: x, pf: f}, backend), expected, dtype, **tol)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("padding", ["SAME", "VALID", ((2, 0), (1, 1))], ids=str)
def test_conv2d_unknown_dims(backend, rng, fmt, padding):
    x_shape = (2, 7, 8, 3) if fmt == "NHWC" else (2, 3, 7, 8)
    x = random_array(rng, x_shape, "float64")
    f = random_array(rng, (3, 2, 3, 4), "float64")
    px = _placeholder(x, known=False)
    pf = _placeholder(f, known=False)
    out = gc.nn.conv2d(px, pf, strides=[2, 1], padding=padding, data_format=fmt)
    expected = _conv2d_naive(x, f, (2, 1), padding, (1, 1), fmt)
    _check(out, run(out, {px: x, pf: f}, backend), expected, "float64", known=False, atol=1e-12)


def test_conv2d_explicit_padding_tf_form(backend, rng):
    x = random_array(rng, (1, 5, 6, 2), "float64")
    f = random_array(rng, (3, 3, 2, 2), "float64")
    px, pf = _placeholder(x), _placeholder(f)
    out = gc.nn.conv2d(px, pf, strides=1, padding=[[0, 0], [1, 0], [2, 1], [0, 0]])
    expected = _conv2d_naive(x, f, (1, 1), ((1, 0), (2, 1)), (1, 1), "NHWC")
    _check(out, run(out, {px: x, pf: f}, backend), expected, "float64", atol=1e-12)


def test_conv2d_filter_keyword_alias(backend, rng):
    x = random_array(rng, (1, 4, 4, 1), "float32")
    f = random_array(rng, (2, 2, 1, 1), "float32")
    px, pf = _placeholder(x), _placeholder(f)
    out = gc.nn.conv2d(px, filter=pf, strides=[1, 1, 1, 1], padding="VALID")
    expected = _conv2d_naive(x, f, (1, 1), "VALID", (1, 1), "NHWC")
    _check(out, run(out, {px: x, pf: f}, backend), expected, "float32", atol=1e-5)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_conv2d_channel_mismatch_is_a_build_time_error(fmt):
    x = gc.placeholder(gc.float32, [1, 8, 8, 3] if fmt == "NHWC" else [1, 3, 8, 8])
    f = gc.placeholder(gc.float32, [3, 3, 4, 2])
    with pytest.raises(gc.ShapeError):
        gc.nn.conv2d(x, f, strides=1, padding="SAME", data_format=fmt)


def test_conv2d_build_errors():
    x = gc.placeholder(gc.float32, [1, 8, 8, 3])
    with pytest.raises(gc.ShapeError):
        gc.nn.conv2d(gc.placeholder(gc.float32, [8, 8, 3]), gc.placeholder(gc.float32, [3, 3, 3, 2]))
    with pytest.raises(gc.DTypeError):
        gc.nn.conv2d(gc.placeholder(gc.int32, [1, 8, 8, 3]), gc.placeholder(gc.int32, [3, 3, 3, 2]))
    with pytest.raises(gc.GraphcError):
        gc.nn.conv2d(x, gc.placeholder(gc.float32, [3, 3, 3, 2]), strides=[2, 2, 2, 2])
    with pytest.raises(gc.GraphcError):
        gc.nn.conv2d(x, gc.placeholder(gc.float32, [3, 3, 3, 2]), padding="FULL")


# --------------------------------------------------------------------------- pooling
def _pool_naive(x, ksize, strides, padding, data_format, kind):
    """TF pooling: windows over real elements only (SAME padding never enters max or mean)."""
    x = x.astype(np.float64)
    if data_format == "NCHW":
        x = x.transpose(0, 2, 3, 1)
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = ksize, strides
    if padding == "SAME":
        (pt, _), (pl, _) = _same_pads(h, kh, sh, 1), _same_pads(w, kw, sw, 1)
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        pt = pl = 0
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - pt, j * sw - pl
            win = x[:, max(r0, 0):min(r0 + kh, h), max(c0, 0):min(c0 + kw, w), :]
            assert win.shape[1] * win.shape[2] > 0
            out[:, i, j, :] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return out.transpose(0, 3, 1, 2) if data_format == "NCHW" else out


POOL_SIZES = [(7, 8), (6, 5)]
POOL_CASES = []
for _i, (_kind, _k, _s, _p, _f) in enumerate(itertools.product(["max", "avg"], [2, 3], [1, 2], ["SAME", "VALID"],
                                                                 ["NHWC", "NCHW"])):
    _size = POOL_SIZES[_i % 2]
    POOL_CASES.append(pytest.param(_kind, _k, _s, _p, _f, _size, (1, 3)[(_i // 2) % 2], FLOATS[(_i // 3) % 2],
                                   id=f"{_kind}-k{_k}-s{_s}-{_p}-{_f}-{_size}"))


@pytest.mark.parametrize("kind,k,s,padding,fmt,size,batch,dtype", POOL_CASES)
def test_pool(backend, rng, kind, k, s, padding, fmt, size, batch, dtype):
    c = 2
    shape = (batch,) + size + (c,) if fmt == "NHWC" else (batch, c) + size
    x = random_array(rng, shape, dtype, -5, -1) if kind == "max" else random_array(rng, shape, dtype, 1, 5)
    px = _placeholder(x)
    fn = gc.nn.max_pool2d if kind == "max" else gc.nn.avg_pool2d
    out = fn(px, ksize=k, strides=s, padding=padding, data_format=fmt)
    expected = _pool_naive(x, (k, k), (s, s), padding, fmt, kind)
    _check(out, run(out, {px: x}, backend), expected, dtype)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_tf_style_lists_and_unknown_dims(backend, rng, kind):
    x = random_array(rng, (2, 5, 7, 3), "float32")
    px = _placeholder(x, known=False)
    fn = gc.nn.max_pool if kind == "max" else gc.nn.avg_pool
    out = fn(px, ksize=[1, 3, 2, 1], strides=[1, 2, 3, 1], padding="SAME")
    expected = _pool_naive(x, (3, 2), (2, 3), "SAME", "NHWC", kind)
    _check(out, run(out, {px: x}, backend), expected, "float32", known=False)


def test_max_pool_same_padding_never_wins(backend):
    x = -np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    px = _placeholder(x)
    got = run(gc.nn.max_pool2d(px, 3, 2, "SAME"), {px: x}, backend)
    assert np.all(got < 0)
    assert_close(got, _pool_naive(x, (3, 3), (2, 2), "SAME", "NHWC", "max"), dtype="float32")


def test_avg_pool_same_divides_by_real_elements(backend):
    x = np.ones((1, 3, 3, 1), np.float64)
    px = _placeholder(x)
    got = run(gc.nn.avg_pool2d(px, 2, 2, "SAME"), {px: x}, backend)
    assert_close(got, np.ones((1, 2, 2, 1)))


def test_pool_build_errors():
    with pytest.raises(gc.DTypeError):
        gc.nn.max_pool2d(gc.placeholder(gc.int32, [1, 4, 4, 1]), 2, 2, "VALID")
    with pytest.raises(gc.ShapeError):
        gc.nn.avg_pool2d(gc.placeholder(gc.float32, [4, 4, 1]), 2, 2, "VALID")


# --------------------------------------------------------------------------- dropout
def test_dropout_rate_zero_gives_x_exactly(backend, rng):
    x = random_array(rng, (20, 30), "float32")
    px = _placeholder(x)
    got = run(gc.nn.dropout(px, rate=0.0), {px: x}, backend)
    np.testing.assert_array_equal(got, x)


def _check_dropout(got: np.ndarray, x: np.ndarray, rate: float) -> None:
    kept = got != 0
    assert abs(kept.mean() - (1 - rate)) <= 0.02, f"kept fraction {kept.mean()} for rate {rate}"
    with np.errstate(all="ignore"):
        assert_close(got[kept], (x / (1 - rate))[kept], dtype=x.dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dropout_half(backend, rng, dtype):
    x = random_array(rng, (200, 250), dtype, 1, 2)
    px = _placeholder(x)
    got = run(gc.nn.dropout(px, rate=0.5, seed=3), {px: x}, backend)
    assert got.dtype == np.dtype(dtype)
    _check_dropout(got, x, 0.5)
    kept = got != 0
    np.testing.assert_array_equal(got[kept], x[kept] / np.asarray(0.5, dtype))


def test_dropout_rate_as_placeholder(backend, rng):
    x = random_array(rng, (200, 250), "float32", 1, 2)
    px, rate = _placeholder(x), gc.placeholder(gc.float32, [])
    out = gc.nn.dropout(px, rate=rate)
    with gc.Session(backend=backend) as sess:
        np.testing.assert_array_equal(sess.run(out, {px: x, rate: 0.0}), x)
        _check_dropout(sess.run(out, {px: x, rate: 0.5}), x, 0.5)
        _check_dropout(sess.run(out, {px: x, rate: 0.25}), x, 0.25)


@pytest.mark.parametrize("keep_prob", [0.5, 0.8])
def test_dropout_keep_prob_alias(backend, rng, keep_prob):
    x = random_array(rng, (200, 250), "float64", 1, 2)
    px = _placeholder(x)
    got = run(gc.nn.dropout(px, keep_prob=keep_prob), {px: x}, backend)
    _check_dropout(got, x, 1 - keep_prob)


def test_dropout_keep_prob_placeholder(backend, rng):
    x = random_array(rng, (200, 250), "float32", 1, 2)
    px, keep = _placeholder(x), gc.placeholder(gc.float32, [])
    out = gc.nn.dropout(px, keep_prob=keep)
    with gc.Session(backend=backend) as sess:
        np.testing.assert_array_equal(sess.run(out, {px: x, keep: 1.0}), x)
        _check_dropout(sess.run(out, {px: x, keep: 0.5}), x, 0.5)


def test_dropout_unknown_shape(backend, rng):
    x = random_array(rng, (300, 200), "float32", 1, 2)
    px = _placeholder(x, known=False)
    out = gc.nn.dropout(px, rate=0.5)
    got = run(out, {px: x}, backend)
    assert got.shape == x.shape
    _check_dropout(got, x, 0.5)


def test_dropout_new_mask_each_run(backend, rng):
    x = random_array(rng, (50, 40), "float32", 1, 2)
    px = _placeholder(x)
    out = gc.nn.dropout(px, rate=0.5, seed=7)
    with gc.Session(backend=backend) as sess:
        a, b = sess.run(out, {px: x}), sess.run(out, {px: x})
    assert not np.array_equal(a != 0, b != 0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("make_rate", [
    lambda: {"rate": np.float64(0.5)},
    lambda: {"rate": np.float32(0.5)},
    lambda: {"rate": np.array(0.5)},
    lambda: {"keep_prob": np.float64(0.5)},
    lambda: {"rate": gc.placeholder_with_default(np.float64(0.5), [])},
    lambda: {"rate": gc.placeholder_with_default(np.float32(0.5), [])},
    lambda: {"keep_prob": gc.placeholder_with_default(np.float64(0.5), [])},
], ids=["np64", "np32", "0d-array", "keep-np64", "tensor64", "tensor32", "keep-tensor64"])
def test_dropout_keeps_the_dtype_of_x(backend, rng, dtype, make_rate):
    x = random_array(rng, (200, 250), dtype, 1, 2)
    px = _placeholder(x)
    out = gc.nn.dropout(px, seed=2, **make_rate())
    assert out.dtype == gc.as_dtype(dtype)
    got = run(out, {px: x}, backend)
    assert got.dtype == np.dtype(dtype)
    _check_dropout(got, x, 0.5)


@pytest.mark.parametrize("kwargs", [{"rate": 1.0}, {"rate": -0.1}, {"rate": 1.5}, {"keep_prob": 0.0},
                                    {"keep_prob": 1.5}, {}, {"rate": 0.5, "keep_prob": 0.5},
                                    {"rate": np.float64(1.0)}, {"rate": np.array(1.5)}], ids=str)
def test_dropout_bad_rate(kwargs):
    x = gc.placeholder(gc.float32, [3])
    with pytest.raises(gc.GraphcError):
        gc.nn.dropout(x, **kwargs)


def test_tested_ops_are_registered():
    assert TESTED_OPS <= set(all_ops())


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_dilated_max_pool_and_its_gradients(backend, rng, padding, fmt):
    """Taps spaced by the dilation (ONNX's dilated MaxPool), against a direct NumPy loop; the
    gradient goes to each window's first maximum, and its own gradient takes it back."""
    x = rng.normal(size=(2, 11, 13, 3))
    k, s, d = (3, 2), (2, 1), (2, 3)
    eff = [(k[i] - 1) * d[i] + 1 for i in range(2)]
    size = x.shape[1:3]
    out = [(size[i] - eff[i]) // s[i] + 1 if padding == "VALID" else -(-size[i] // s[i]) for i in range(2)]
    pads = [0, 0] if padding == "VALID" else [max((out[i] - 1) * s[i] + eff[i] - size[i], 0) // 2 for i in range(2)]
    expected = np.full((2, out[0], out[1], 3), -np.inf)
    for i, j in itertools.product(range(out[0]), range(out[1])):
        for a, b in itertools.product(range(k[0]), range(k[1])):
            r, c = i * s[0] + a * d[0] - pads[0], j * s[1] + b * d[1] - pads[1]
            if 0 <= r < size[0] and 0 <= c < size[1]:
                expected[:, i, j, :] = np.maximum(expected[:, i, j, :], x[:, r, c, :])
    feed = x if fmt == "NHWC" else x.transpose(0, 3, 1, 2)
    px = gc.placeholder(gc.float64, feed.shape)
    y = gc.nn.max_pool2d(px, k, s, padding, data_format=fmt, dilations=d)
    weights = gc.constant(np.linspace(-1, 1, int(np.prod(y.shape))).reshape(y.shape))
    grad, = gc.gradients(gc.reduce_sum(y * weights), [px])
    again, = gc.gradients(gc.reduce_sum(grad * gc.sin(px)), [px])   # through MaxPoolGrad's own rule
    got, g, _ = run([y, grad, again], {px: feed}, backend)
    if fmt == "NCHW":
        got, g = got.transpose(0, 2, 3, 1), g.transpose(0, 2, 3, 1)
    assert_close(got, expected)
    # each output's weight lands on its window's (first) maximum
    w = np.linspace(-1, 1, expected.size).reshape(y.shape)
    w = w if fmt == "NHWC" else w.transpose(0, 2, 3, 1)
    expected_g = np.zeros_like(x)
    for n, i, j, ch in itertools.product(range(2), range(out[0]), range(out[1]), range(3)):
        taps = [(i * s[0] + a * d[0] - pads[0], j * s[1] + b * d[1] - pads[1]) for a in range(k[0]) for b in range(k[1])]
        taps = [(r, c) for r, c in taps if 0 <= r < size[0] and 0 <= c < size[1]]
        r, c = max(taps, key=lambda rc: (x[n, rc[0], rc[1], ch], -taps.index(rc)))
        expected_g[n, r, c, ch] += w[n, i, j, ch]
    assert_close(g, expected_g)


@pytest.mark.parametrize("groups, cin, cout", [(2, 4, 6), (3, 6, 3), (4, 4, 8)])
@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_grouped_convolution_is_one_op_that_equals_the_groups_apart(backend, rng, groups, cin, cout, fmt):
    """Conv2D with groups (filters (kh, kw, in / groups, out)) against the groups convolved one
    by one; the gradients for the input and the filters too."""
    x = rng.normal(size=(2, 7, 8, cin) if fmt == "NHWC" else (2, cin, 7, 8))
    f = rng.normal(size=(3, 3, cin // groups, cout))
    px, pf = gc.placeholder(gc.float64, x.shape), gc.placeholder(gc.float64, f.shape)
    y = gc.nn.conv2d(px, pf, strides=[2, 1], padding="SAME", data_format=fmt, groups=groups)
    assert y.node.type == "Conv2D" and y.node.attrs["groups"] == groups
    axis = 3 if fmt == "NHWC" else 1
    apart = gc.concat([gc.nn.conv2d(a, b, strides=[2, 1], padding="SAME", data_format=fmt)
                       for a, b in zip(gc.split(px, groups, axis=axis), gc.split(pf, groups, axis=3))], axis=axis)
    weights = gc.constant(rng.normal(size=[int(d) for d in y.shape]))
    grads = gc.gradients(gc.reduce_sum(y * weights), [px, pf])
    expected = gc.gradients(gc.reduce_sum(apart * weights), [px, pf])
    got = run([y, *grads], {px: x, pf: f}, backend)
    want = run([apart, *expected], {px: x, pf: f}, "numpy")
    for g, e in zip(got, want):
        assert_close(g, e)


def test_depthwise_convolution_matches_numpy(backend, rng):
    x, f = rng.normal(size=(1, 6, 5, 3)), rng.normal(size=(3, 3, 3, 2))   # 3 channels, multiplier 2
    got = run(gc.nn.depthwise_conv2d(gc.constant(x), gc.constant(f), [1, 1], "VALID"), {}, backend)
    want = np.zeros((1, 4, 3, 6))
    for c, m, i, j in itertools.product(range(3), range(2), range(4), range(3)):
        want[0, i, j, c * 2 + m] = np.sum(x[0, i:i + 3, j:j + 3, c] * f[:, :, c, m])
    assert_close(got, want)


def test_grouped_convolution_errors_name_the_groups():
    with pytest.raises(gc.ShapeError, match="expect 6 \\(3 per group x 2 groups\\)"):
        gc.nn.conv2d(gc.zeros([1, 4, 4, 5]), gc.zeros([3, 3, 3, 4]), groups=2)
    with pytest.raises(gc.ShapeError, match="multiple of 3 output channels"):
        gc.nn.conv2d(gc.zeros([1, 4, 4, 6]), gc.zeros([3, 3, 2, 4]), groups=3)
    with pytest.raises(gc.ShapeError, match="groups must be a positive int"):
        gc.nn.conv2d(gc.zeros([1, 4, 4, 6]), gc.zeros([3, 3, 2, 4]), groups=0)
