"""gc.onnx.load(path, input_shapes=...) fixes a model's dynamic axes at load: a model exported
with torch's dynamic_axes={"x": {0: "batch"}} computes a Reshape's shape from Shape(x) at run
time, which graphc (static shapes) can only import once the batch size is given; then it gives
onnxruntime's results. Bad input_shapes are clear errors."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")
pytest.importorskip("onnxruntime", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import graphc as gc

TESTED_OPS = {"Reshape", "Shape", "MatMul"}


def _dynamic_batch_model(tmp_path):
    """x [batch, 4, 6] -> reshape to [batch, 24] (shape from Shape(x)[0:1] ++ [-1]) -> @ w [24, 3]."""
    w = np.random.default_rng(0).normal(size=(24, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Slice", ["s", "zero", "one"], ["batch"]),
        helper.make_node("Concat", ["batch", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["y"]),
    ]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    graph = helper.make_graph(nodes, "dynamic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "dynamic.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_input_shapes_fix_a_dynamic_batch(tmp_path, backend):
    path = _dynamic_batch_model(tmp_path)
    x = np.random.default_rng(1).normal(size=(8, 4, 6)).astype(np.float32)
    graph, inputs, outputs = gc.onnx.load(path, input_shapes={"x": [8, 4, 6]})
    assert inputs[0].shape == (8, 4, 6)
    with gc.Session(graph, backend=backend) as sess:
        got = sess.run(outputs[0], {inputs[0]: x})
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(gc.GraphFileError, match="input_shapes") as err:   # without: the error says what to do
        gc.onnx.load(path)
    assert "Reshape" in str(err.value)


@pytest.mark.parametrize("shapes, fragment", [
    ({"y": [8, 4, 6]}, "not an input of the model"),
    ({"x": [8, 4]}, "rank 2"),
    ({"x": [8, 5, 6]}, "which the model fixes at 4"),
    ({"x": [8, -1, 6]}, "negative size"),
    ({"x": "eight"}, "list of ints"),
])
def test_bad_input_shapes_are_clear_errors(tmp_path, shapes, fragment):
    path = _dynamic_batch_model(tmp_path)
    with pytest.raises(gc.GraphFileError, match=fragment):
        gc.onnx.load(path, input_shapes=shapes)
