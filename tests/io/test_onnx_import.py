"""ONNX models imported into graphc are ordinary graphs: they run, differentiate, save to .gcx
and export back; errors name the ONNX node and what graphc cannot do."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
from onnx import TensorProto, helper, numpy_helper

import graphc as gc

TESTED_OPS = {"Placeholder", "Const", "MatMul", "Add", "Mul", "Relu", "Softmax", "Conv2D", "MaxPool", "AvgPool",
              "Mean", "Reshape", "Rsqrt", "Sub", "Transpose", "Concat", "Split", "ExpandDims", "Squeeze", "Identity"}

RNG = np.random.default_rng(5)


def _model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, "test", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in dict(initializers).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _mlp_model():
    w1 = RNG.normal(size=(4, 8)).astype(np.float32)
    b1 = RNG.normal(size=8).astype(np.float32)
    w2 = RNG.normal(size=(8, 3)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="dense1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["logits"], name="dense2"),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=-1, name="softmax")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                   [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3])],
                   {"w1": w1, "b1": b1, "w2": w2})
    def reference(x):
        logits = np.maximum(x @ w1 + b1, 0) @ w2
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    return model, reference


def test_mlp_runs_and_differentiates(tmp_path):
    model, reference = _mlp_model()
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    graph, inputs, outputs = gc.onnx.load(path)
    assert [t.shape for t in inputs] == [(None, 4)] and outputs[0].shape == (None, 3)
    x = RNG.normal(size=(5, 4)).astype(np.float32)
    with gc.Session(graph) as sess:
        np.testing.assert_allclose(sess.run(outputs[0], {inputs[0]: x}), reference(x), rtol=1e-5, atol=1e-6)
    with graph.as_default():
        (grad,) = gc.gradients(gc.reduce_sum(outputs[0][:, 0]), inputs)
    with gc.Session(graph) as sess:
        g = sess.run(grad, {inputs[0]: x})
    eps = 1e-3
    numeric = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        d = np.zeros_like(x)
        d[idx] = eps
        numeric[idx] = (reference(x + d)[:, 0].sum() - reference(x - d)[:, 0].sum()) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=2e-2, atol=2e-3)


def test_imported_graph_saves_and_exports(tmp_path):
    model, reference = _mlp_model()
    graph, inputs, outputs = gc.onnx.load(model.SerializeToString())
    gc.save_graph(tmp_path / "mlp.gcx", graph)
    loaded = gc.load_graph(tmp_path / "mlp.gcx")
    x_t, y_t = loaded.get_tensor_by_name(inputs[0].name), loaded.get_tensor_by_name(outputs[0].name)
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    with gc.Session(loaded) as sess:
        np.testing.assert_allclose(sess.run(y_t, {x_t: x}), reference(x), rtol=1e-5, atol=1e-6)
    back = gc.onnx.export(tmp_path / "back.onnx", [x_t], [y_t])
    graph2, inputs2, outputs2 = gc.onnx.load(back)
    with gc.Session(graph2) as sess:
        np.testing.assert_allclose(sess.run(outputs2[0], {inputs2[0]: x}), reference(x), rtol=1e-5, atol=1e-6)


def test_export_then_import_cnn_round_trip(tmp_path):
    """A graphc CNN exported to ONNX and imported back computes the same values."""
    x = gc.placeholder(gc.float32, [None, 6, 6, 2], name="x")
    f = gc.constant(RNG.normal(size=(3, 3, 2, 4)).astype(np.float32))
    h = gc.nn.max_pool2d(gc.nn.relu(gc.nn.conv2d(x, f, padding="SAME")), 2, 2, "VALID")
    y = gc.reduce_mean(gc.nn.avg_pool2d(h, 2, 1, "SAME"), axis=[1, 2])
    gc.onnx.export(tmp_path / "cnn.onnx", [x], [y])
    graph, inputs, outputs = gc.onnx.load(tmp_path / "cnn.onnx")
    value = RNG.normal(size=(3, 6, 6, 2)).astype(np.float32)
    with gc.Session() as s1, gc.Session(graph) as s2:
        np.testing.assert_allclose(s2.run(outputs[0], {inputs[0]: value}), s1.run(y, {x: value}), rtol=1e-5,
                                   atol=1e-6)


def test_conv_batchnorm_pool_model():
    x = RNG.normal(size=(2, 3, 7, 7)).astype(np.float32)
    w = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = RNG.normal(size=4).astype(np.float32)
    scale, bias, mean = (RNG.normal(size=4).astype(np.float32) for _ in range(3))
    var = RNG.uniform(0.5, 2, size=4).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["n"], epsilon=1e-3),
             helper.make_node("MaxPool", ["n"], ["p"], kernel_shape=[2, 2], pads=[0, 0, 1, 1]),
             helper.make_node("GlobalAveragePool", ["p"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 7, 7])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 1, 1])],
                   {"w": w, "b": b, "scale": scale, "bias": bias, "mean": mean, "var": var})
    graph, inputs, outputs = gc.onnx.load(model)
    import onnxruntime as ort

    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with gc.Session(graph) as sess:
        np.testing.assert_allclose(sess.run(outputs[0], {inputs[0]: x}), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("include_pad,ceil_mode", [(1, 0), (0, 1), (1, 1)])
def test_average_pool_window_counts_are_folded_at_compile_time(include_pad, ceil_mode):
    """An average pool that pads itself (count_include_pad, ceil_mode) divides by each window's
    count; the counts depend on the pixel only and fold to a constant plane: the compiled
    program pads the input and nothing else (inception_v3 padded and pooled a tensor of ones
    the input's size on every call)."""
    x = RNG.normal(size=(1, 32, 12, 12)).astype(np.float32)   # a tensor of ones this size is not folded
    nodes = [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                              count_include_pad=include_pad, ceil_mode=ceil_mode)]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 12, 12])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, None, None])])
    graph, inputs, outputs = gc.onnx.load(model)
    import onnxruntime as ort

    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with gc.Session(graph) as sess:
        np.testing.assert_allclose(sess.run(outputs[0], {inputs[0]: x}), want, rtol=1e-5, atol=1e-6)
        assert sess.compile([outputs[0]], {inputs[0]: x}).program.op_counts().get("Pad", 0) == 1


def test_softmax_before_opset_13_coerces_to_2d():
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    model = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])], opset=11)
    graph, inputs, outputs = gc.onnx.load(model)
    flat = x.reshape(2, 12)
    want = (np.exp(flat) / np.exp(flat).sum(1, keepdims=True)).reshape(2, 3, 4)
    with gc.Session(graph) as sess:
        np.testing.assert_allclose(sess.run(outputs[0], {inputs[0]: x}), want, rtol=1e-5)


def test_unsupported_op_names_the_node():
    node = helper.make_node("Einsum", ["a", "b"], ["c"], equation="ij,jk->ik", name="contract")
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 2]) for n in ("a", "b", "c")]
    with pytest.raises(gc.GraphcError, match="ONNX node 0 'contract' \\(Einsum\\): graphc cannot import ONNX op Einsum"):
        gc.onnx.load(_model([node], vi[:2], vi[2:]))


def test_dynamic_shape_input_is_a_clear_error():
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")
    model = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                            helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])])
    with pytest.raises(gc.GraphcError, match="input 1 \\('shape'\\) must be known while building"):
        gc.onnx.load(model)


def test_type_graphc_cannot_hold():
    node = helper.make_node("Identity", ["x"], ["y"])
    model = _model([node], [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.STRING, [2])])
    with pytest.raises(gc.GraphcError, match="STRING, which graphc cannot hold"):
        gc.onnx.load(model)


@pytest.mark.parametrize("group,auto_pad", [(1, "SAME_LOWER"), (2, "NOTSET"), (4, "SAME_UPPER")])
def test_grouped_and_padded_conv_matches_onnxruntime(group, auto_pad):
    import onnxruntime as ort

    x = RNG.normal(size=(2, 4, 6, 5)).astype(np.float32)
    w = RNG.normal(size=(8, 4 // group, 3, 2)).astype(np.float32)
    attrs = {"group": group, "auto_pad": auto_pad, "strides": [2, 1]}
    if auto_pad == "NOTSET":
        attrs["pads"] = [1, 0, 0, 1]
    node = helper.make_node("Conv", ["x", "w"], ["y"], **attrs)
    model = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 6, 5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, None, None])],
                   {"w": w})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    graph, inputs, outputs = gc.onnx.load(model)
    with gc.Session(graph) as sess:
        np.testing.assert_allclose(sess.run(outputs[0], {inputs[0]: x}), want, rtol=1e-4, atol=1e-5)
