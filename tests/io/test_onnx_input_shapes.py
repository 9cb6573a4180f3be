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
    graph, inputs, outputs = gc.onnx.load(path)                  # without: the batch stays open
    assert inputs[0].shape == (None, 4, 6)
    with gc.Session(graph, backend=backend) as sess:
        got = sess.run(outputs[0], {inputs[0]: x[:3]})
    np.testing.assert_allclose(got, want[:3], rtol=1e-5, atol=1e-5)


def test_a_shape_graphc_needs_while_building_names_input_shapes(tmp_path):
    """Tile's repeats computed from the batch size must be known while building: the error
    says how to give them."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Tile", ["x", "s"], ["y"])]
    graph = helper.make_graph(nodes, "tile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(gc.GraphFileError, match="input_shapes") as err:
        gc.onnx.load(model.SerializeToString())
    assert "Tile" in str(err.value)
    graph, inputs, outputs = gc.onnx.load(model.SerializeToString(), input_shapes={"x": [3]})
    np.testing.assert_array_equal(gc.Session(graph).run(outputs[0], {inputs[0]: [1.0, 2.0, 3.0]}), [1, 2, 3] * 3)


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


def _attention_like_model(tmp_path):
    """Multi-head attention shapes as a torch export with dynamic batch and sequence writes
    them: Reshape / Expand / ConstantOfShape shapes computed from Shape(x)."""
    rng = np.random.default_rng(3)
    c = lambda v, n: numpy_helper.from_array(np.asarray(v), n)
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["s", "i1"], ["t"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Unsqueeze", ["t", "ax0"], ["t1"]),
        helper.make_node("Concat", ["b1", "t1", "heads"], ["split_shape"], axis=0),
        helper.make_node("Reshape", ["x", "split_shape"], ["xh"]),
        helper.make_node("Transpose", ["xh"], ["q"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["xh"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "q"], ["ctx"]),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Concat", ["b1", "t1", "minus_one"], ["merge_shape"], axis=0),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["merged"]),
        helper.make_node("ConstantOfShape", ["s"], ["ones"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Expand", ["bias", "s"], ["bias_full"]),
        helper.make_node("Add", ["merged", "bias_full"], ["with_bias"]),
        helper.make_node("Mul", ["with_bias", "ones"], ["y"]),
    ]
    inits = [c(np.int64(0), "i0"), c(np.int64(1), "i1"), c(np.array([0], np.int64), "ax0"),
             c(np.array([2, 4], np.int64), "heads"), c(np.array([-1], np.int64), "minus_one"),
             c(rng.normal(size=(1, 1, 8)).astype(np.float32), "bias")]
    graph = helper.make_graph(nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  ["batch", "seq", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "attention.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_dynamic_axes_stay_open_and_the_model_runs_for_any_fed_size(tmp_path, backend):
    """Without input_shapes the batch and sequence stay unknown (None); the shapes computed from
    them fold when each fed shape compiles (one program per shape, cached)."""
    path = _attention_like_model(tmp_path)
    graph, inputs, outputs = gc.onnx.load(path)
    assert inputs[0].shape == (None, None, 8)
    runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(4)
    with gc.Session(graph, backend=backend) as sess:
        for shape in ((2, 3, 8), (5, 7, 8), (2, 3, 8)):
            x = rng.normal(size=shape).astype(np.float32)
            got = sess.run(outputs[0], {inputs[0]: x})
            np.testing.assert_allclose(got, runtime.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
        assert len(sess._cache) == 2   # one compiled program per distinct fed shape
