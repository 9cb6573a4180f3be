"""ONNX sequences inside a model (graphc/io/onnx/import_sequence.py): split into a sequence,
insert, erase, index and join again, compared with onnxruntime on numpy and llvm; a sequence
that leaves the model, reaches a tensor op or is indexed out of range is refused by name.
(The onnx package's eight sequence models run in test_onnx_packaged_models.py.)"""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs the onnx extra")
from onnx import TensorProto, helper

import graphc as gc

TESTED_OPS = {"Split", "Concat", "Pack"}


def _model(nodes, outputs, initializers=(), x_shape=(4, 6)):
    graph = helper.make_graph(nodes, "sequences", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def _const(name, value):
    return helper.make_tensor(name, TensorProto.INT64, np.shape(value), np.asarray(value, np.int64).reshape(-1))


def _run(model, x, backend):
    graph, inputs, outputs = gc.onnx.load(model.SerializeToString())
    with gc.Session(graph, backend=backend) as sess:
        return sess.run(outputs, {inputs[0]: x})


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_a_sequence_pipeline_matches_onnxruntime(backend):
    ort = pytest.importorskip("onnxruntime")
    nodes = [
        helper.make_node("SplitToSequence", ["x", "chunk"], ["pieces"], axis=1),       # [4,4] and [4,2]
        helper.make_node("SequenceConstruct", ["x", "x"], ["pair"]),
        helper.make_node("SequenceInsert", ["pair", "x2", "front"], ["three"]),
        helper.make_node("SequenceErase", ["three", "last"], ["two"]),
        helper.make_node("ConcatFromSequence", ["two"], ["stacked"], axis=0, new_axis=1),
        helper.make_node("SequenceAt", ["pieces", "last"], ["tail"]),
        helper.make_node("ConcatFromSequence", ["pieces"], ["joined"], axis=-1),
        helper.make_node("SequenceLength", ["pieces"], ["count"]),
        helper.make_node("Mul", ["x", "x"], ["x2"]),
    ]
    nodes = nodes[-1:] + nodes[:-1]
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in
               (("stacked", TensorProto.FLOAT), ("tail", TensorProto.FLOAT), ("joined", TensorProto.FLOAT),
                ("count", TensorProto.INT64))]
    model = _model(nodes, outputs, [_const("chunk", 4), _const("front", 0), _const("last", -1)])
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = _run(model, x, backend)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6)
    assert got[0].shape == (2, 4, 6) and got[1].shape == (4, 2) and int(got[3]) == 2


@pytest.mark.parametrize("nodes, outputs, message", [
    ([helper.make_node("SplitToSequence", ["x"], ["seq"], axis=0)], [("seq", None)], "is an ONNX sequence"),
    ([helper.make_node("SplitToSequence", ["x"], ["seq"], axis=0), helper.make_node("Relu", ["seq"], ["y"])],
     [("y", TensorProto.FLOAT)], "input 0 is an ONNX sequence; Relu takes tensors"),
    ([helper.make_node("SplitToSequence", ["x"], ["seq"], axis=0),
      helper.make_node("SequenceAt", ["seq", "far"], ["y"])], [("y", TensorProto.FLOAT)], "is 9, outside"),
    ([helper.make_node("SplitToSequence", ["x", "bad"], ["seq"], axis=1),
      helper.make_node("SequenceLength", ["seq"], ["y"])], [("y", TensorProto.INT64)], "do not add up"),
])
def test_sequence_misuse_is_refused_by_name(nodes, outputs, message):
    outs = [helper.make_tensor_value_info(n, t or TensorProto.FLOAT, None) for n, t in outputs]
    if outputs[0][1] is None:
        outs = [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)]
    model = _model(nodes, outs, [_const("far", 9), _const("bad", [2, 2])])
    with pytest.raises(gc.GraphFileError, match=message):
        gc.onnx.load(model.SerializeToString())
