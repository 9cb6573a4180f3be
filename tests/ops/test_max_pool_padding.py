"""Max pooling with explicit padding ((top, bottom), (left, right)), as ONNX's MaxPool pads and
PyTorch's padding give it: the NumPy reference against NumPy itself, the LLVM backend against
the reference, the gradient against finite differences; padding a window could lie in wholly,
and explicit padding on an average pool, are refused; an imported ONNX MaxPool with pads pools
its input where it lies (no Pad copy)."""
from __future__ import annotations

import io

import numpy as np
import pytest

import graphc as gc
from graphc.errors import ShapeError

TESTED_OPS = {"MaxPool", "MaxPoolGrad"}
CASES = [("NCHW", (2, 3, 9, 10), ((1, 1), (1, 1))), ("NCHW", (1, 2, 8, 7), ((0, 2), (1, 0))),
         ("NHWC", (2, 9, 10, 3), ((2, 0), (0, 1)))]


def _numpy_max_pool(a: np.ndarray, fmt: str, pads, k: int = 3, s: int = 2) -> np.ndarray:
    x = a if fmt == "NHWC" else a.transpose(0, 2, 3, 1)
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=-np.inf)
    oh, ow = (xp.shape[1] - k) // s + 1, (xp.shape[2] - k) // s + 1
    out = np.max(np.stack([xp[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :]
                           for i in range(k) for j in range(k)]), 0)
    return out if fmt == "NHWC" else out.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("fmt, shape, pads", CASES)
def test_explicit_padding_matches_numpy_on_every_backend(fmt, shape, pads):
    rng = np.random.default_rng(0)
    x = gc.placeholder(gc.float64, shape)
    y = gc.nn.max_pool2d(x, 3, 2, list(pads), data_format=fmt)
    a = rng.normal(size=shape)
    want = _numpy_max_pool(a, fmt, pads)
    assert tuple(y.shape) == want.shape
    for backend in ("numpy", "llvm"):
        np.testing.assert_array_equal(gc.Session(backend=backend).run(y, {x: a}), want)


@pytest.mark.parametrize("fmt, shape, pads", CASES)
def test_the_gradient_matches_finite_differences(fmt, shape, pads):
    rng = np.random.default_rng(1)
    x = gc.placeholder(gc.float64, shape)
    y = gc.nn.max_pool2d(x, 3, 2, list(pads), data_format=fmt)
    (g,) = gc.gradients(gc.reduce_sum(y * y), [x])
    a, d = rng.normal(size=shape), rng.normal(size=shape)
    grads = [gc.Session(backend=backend).run(g, {x: a}) for backend in ("numpy", "llvm")]
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)
    loss = lambda v: float(np.sum(_numpy_max_pool(v, fmt, pads) ** 2))   # noqa: E731
    eps = 1e-6
    fd = (loss(a + eps * d) - loss(a - eps * d)) / (2 * eps)
    np.testing.assert_allclose(np.sum(grads[0] * d), fd, rtol=1e-6)


def test_padding_a_window_could_lie_in_is_refused_and_average_pools_keep_same_or_valid():
    x = gc.placeholder(gc.float32, (1, 2, 8, 8))
    with pytest.raises(ShapeError, match="smaller than the window"):
        gc.nn.max_pool2d(x, 2, 2, [(2, 0), (0, 0)], data_format="NCHW")
    with pytest.raises(ShapeError, match="'SAME' or 'VALID'"):
        gc.nn.avg_pool2d(x, 2, 2, [(1, 0), (0, 0)], data_format="NCHW")


def test_an_onnx_max_pool_with_pads_pools_in_place():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from graphc.io.onnx.importer import import_model

    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    imported = import_model(model, input_shapes={})
    a = np.random.default_rng(2).normal(size=(1, 4, 12, 12)).astype(np.float32)
    feed = {imported.inputs[0]: a}
    assert not [n for n in imported.graph.get_operations() if n.type == "Pad"]
    listing = gc.debugprint(imported.outputs, feed, level="kernels", backend="llvm", file=io.StringIO())
    assert "Pad" not in listing
    got = gc.Session(imported.graph).run(imported.outputs, feed)[0]
    np.testing.assert_array_equal(got, _numpy_max_pool(a, "NCHW", ((1, 1), (1, 1))))
