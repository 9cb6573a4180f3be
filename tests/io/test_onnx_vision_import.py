"""ONNX LRN, InstanceNormalization and ConvTranspose (graphc/io/onnx/import_vision.py) against
onnxruntime, on the reference and LLVM backends: strides, dilations, pads, output_padding,
output_shape, auto_pad, groups and bias for ConvTranspose; and the imported transposed
convolution differentiates (its gradient is a convolution)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")
pytest.importorskip("onnxruntime", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import graphc as gc
from graphc.io.onnx.importer import import_model

TESTED_OPS = {"Conv2DBackpropInput", "Pad", "StridedSlice"}
RNG = np.random.default_rng(5)


def _model(op, x_shape, inits, **attrs):
    names = ["x"] + list(inits)
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * len(x_shape))],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _same(model, x, backend):
    imported = import_model(model)
    with gc.Session(imported.graph, backend=backend) as sess:
        got = sess.run(imported.outputs[0], {imported.inputs[0]: x})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    return imported


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("attrs, group, spatial", [
    ({"strides": [2, 2]}, 1, (5, 4)),
    ({"strides": [2, 3], "pads": [1, 0, 2, 1], "output_padding": [1, 2]}, 1, (4, 5)),
    ({"dilations": [2, 1], "strides": [1, 2]}, 2, (4, 4)),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, 1, (3, 5)),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, 1, (3, 5)),
    ({"strides": [3, 2], "output_shape": [11, 9]}, 1, (3, 4)),
])
def test_conv_transpose(backend, attrs, group, spatial):
    c_in, c_out = 4, 3
    w = RNG.normal(size=(c_in, c_out, 3, 2)).astype(np.float32)
    b = RNG.normal(size=(c_out * group,)).astype(np.float32)
    model = _model("ConvTranspose", (2, c_in, *spatial), {"w": w, "b": b}, group=group, **attrs)
    _same(model, RNG.normal(size=(2, c_in, *spatial)).astype(np.float32), backend)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_conv_transpose_1d_and_its_gradient(backend):
    w = RNG.normal(size=(3, 2, 4)).astype(np.float32)
    model = _model("ConvTranspose", (1, 3, 6), {"w": w}, strides=[2])
    x = RNG.normal(size=(1, 3, 6)).astype(np.float32)
    imported = _same(model, x, backend)
    (g,) = gc.gradients(gc.reduce_sum(imported.outputs[0] ** 2), [imported.inputs[0]])
    loss = gc.reduce_sum(imported.outputs[0] ** 2)
    eps, k = 1e-2, (0, 1, 2)
    up, down = x.copy(), x.copy()
    up[k] += eps
    down[k] -= eps
    with gc.Session(imported.graph, backend=backend) as sess:
        grad = sess.run(g, {imported.inputs[0]: x})
        slope = (sess.run(loss, {imported.inputs[0]: up}) - sess.run(loss, {imported.inputs[0]: down})) / (2 * eps)
    assert abs(slope - grad[k]) < 1e-2 * max(1.0, abs(grad[k]))


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_lrn_and_instance_normalization(backend):
    x = RNG.normal(size=(2, 7, 3, 4)).astype(np.float32)
    _same(_model("LRN", x.shape, {}, size=5, alpha=2e-3, beta=0.7, bias=1.5), x, backend)
    _same(_model("LRN", x.shape, {}, size=3), x, backend)   # onnxruntime takes odd sizes only
    scale, bias = RNG.normal(size=7).astype(np.float32), RNG.normal(size=7).astype(np.float32)
    _same(_model("InstanceNormalization", x.shape, {"s": scale, "b": bias}, epsilon=1e-3), x, backend)


def test_bad_layers_are_clear_errors():
    w = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    with pytest.raises(gc.GraphFileError, match="attribute 'group' is 3"):
        import_model(_model("ConvTranspose", (1, 4, 5, 5), {"w": w}, group=3))
    with pytest.raises(gc.GraphFileError, match="'size' is 0"):
        import_model(_model("LRN", (1, 4, 5, 5), {}, size=0))
