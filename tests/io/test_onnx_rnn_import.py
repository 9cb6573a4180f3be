"""ONNX LSTM, GRU and RNN imported as loops (graphc/io/onnx/import_rnn.py): every attribute
torch and other exporters emit (directions, sequence_lens, initial states, peepholes, clip,
input_forget, linear_before_reset, activations with parameters, layout) gives onnxruntime's
results on the reference and the LLVM backends, and the imported layer differentiates."""
from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")
pytest.importorskip("onnxruntime", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import graphc as gc
from graphc.io.onnx.importer import import_model

TESTED_OPS = {"While"}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
T, B, I, H = 5, 3, 4, 6
BACKEND = "numpy"   # set for each test by the _backend fixture


@pytest.fixture(autouse=True, params=["numpy", "llvm"])
def _backend(request, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "BACKEND", request.param)


def _model(op, directions=1, bias=True, lengths=False, initial=False, peepholes=False, layout=0, **attrs):
    rng = np.random.default_rng(hash((op, directions, bias, lengths, initial, peepholes, layout)) % 2**32)
    g = GATES[op]
    inits = {"W": rng.normal(size=(directions, g * H, I)).astype(np.float32) * 0.5,
             "R": rng.normal(size=(directions, g * H, H)).astype(np.float32) * 0.5}
    names = ["X", "W", "R"]
    if bias:
        inits["B"] = rng.normal(size=(directions, 2 * g * H)).astype(np.float32) * 0.3
    names.append("B" if bias else "")
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [B, T, I] if layout else [T, B, I])]
    names.append("lens" if lengths else "")
    if lengths:
        inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, [B]))
    if initial:
        shape = [B, directions, H] if layout else [directions, B, H]
        inits["h0"] = rng.normal(size=shape).astype(np.float32)
        names.append("h0")
        if op == "LSTM":
            inits["c0"] = rng.normal(size=shape).astype(np.float32)
            names.append("c0")
    elif op == "LSTM" and peepholes:
        names += ["", ""]
    else:
        names.append("")
        if op == "LSTM":
            names.append("")
    if peepholes:
        inits["P"] = rng.normal(size=(directions, 3 * H)).astype(np.float32) * 0.3
        names = names[:7] + ["P"]
    while names and not names[-1]:
        names.pop()
    direction = {1: "forward", 2: "bidirectional"}[directions] if "direction" not in attrs else attrs.pop("direction")
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, hidden_size=H, direction=direction, layout=layout, **attrs)
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * (4 if o == "Y" else 3)) for o in outs]
    graph = helper.make_graph([node], "rnn", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _feeds(model, lengths=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    feeds = {"X": rng.normal(size=shape).astype(np.float32)}
    if lengths is not None:
        feeds["lens"] = np.array(lengths, np.int32)
    return feeds


def _same(model, feeds, rtol=1e-4):
    imported = import_model(model)
    with gc.Session(imported.graph, backend=BACKEND) as sess:
        got = sess.run(imported.outputs, {t: feeds[n] for t, n in zip(imported.inputs, imported.input_names)})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want):
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-5)
    return imported


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("directions", [1, 2])
def test_directions_biases_and_initial_states(op, directions):
    _same(_model(op, directions, initial=True), _feeds(_model(op, directions, initial=True)))
    reverse = _model(op, bias=False, direction="reverse")
    _same(reverse, _feeds(reverse))


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_sequence_lengths_zero_outputs_past_the_end_and_stop_the_state(op):
    model = _model(op, 2, lengths=True, initial=True)
    _same(model, _feeds(model, lengths=[T, 2, 1]))


def test_lstm_peepholes_clip_and_input_forget():
    model = _model("LSTM", 2, peepholes=True, clip=0.7, input_forget=1)
    _same(model, _feeds(model))


def test_gru_linear_before_reset_as_torch_exports_it():
    model = _model("GRU", 2, initial=True, linear_before_reset=1)
    _same(model, _feeds(model))


def test_activations_with_parameters():
    model = _model("GRU", 1, activations=["HardSigmoid", "LeakyRelu"], activation_alpha=[0.3, 0.05],
                   activation_beta=[0.4])
    _same(model, _feeds(model))
    rnn = _model("RNN", 2, activations=["ScaledTanh", "Affine"], activation_alpha=[0.9, 1.5],
                 activation_beta=[1.1, 0.2])
    _same(rnn, _feeds(rnn))


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_batch_first_layout_is_the_time_major_layer_transposed(op):
    """layout=1 (onnxruntime does not run it): the time-major model's results, transposed; the
    weights and initial states are the same (the seed depends only on the rest)."""
    batch_first = _model(op, 2, initial=True, layout=1)
    time_major = _model(op, 2, initial=True, layout=0)
    for init in time_major.graph.initializer:
        if init.name in ("h0", "c0"):   # [directions, batch, hidden] -> the batch-first model's
            value = numpy_helper.to_array(next(i for i in batch_first.graph.initializer if i.name == init.name))
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(value.transpose(1, 0, 2)), init.name))
        else:
            init.CopyFrom(next(i for i in batch_first.graph.initializer if i.name == init.name))
    x = _feeds(batch_first)["X"]
    imported = import_model(batch_first)
    with gc.Session(imported.graph, backend=BACKEND) as sess:
        got = sess.run(imported.outputs, {imported.inputs[0]: x})
    want = ort.InferenceSession(time_major.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": np.ascontiguousarray(x.transpose(1, 0, 2))})
    np.testing.assert_allclose(got[0], want[0].transpose(2, 0, 1, 3), rtol=1e-4, atol=1e-5)
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g, w.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


def test_the_imported_lstm_is_one_loop_per_direction_and_differentiates():
    model = _model("LSTM", 2)
    imported = _same(model, _feeds(model))
    loops = [n for n in imported.graph.get_operations() if n.type == "While"]
    assert len(loops) == 2
    x = imported.inputs[0]
    (gx,) = gc.gradients(gc.reduce_sum(imported.outputs[0] ** 2), [x])
    value = _feeds(model)["X"]
    with gc.Session(imported.graph, backend=BACKEND) as sess:
        grad = sess.run(gx, {x: value})
    with gc.Session(imported.graph, backend="numpy") as sess:
        loss = lambda v: float(sess.run(gc.reduce_sum(imported.outputs[0] ** 2), {x: v}))
        eps, k = 1e-3, (1, 2, 3)
        bumped = value.copy()
        bumped[k] += eps
        dropped = value.copy()
        dropped[k] -= eps
        assert abs((loss(bumped) - loss(dropped)) / (2 * eps) - grad[k]) < 1e-2 * max(1.0, abs(grad[k]))


def test_unknown_activations_and_mismatched_weights_are_clear_errors():
    with pytest.raises(gc.GraphFileError, match="activation 'Swish'"):
        import_model(_model("RNN", activations=["Swish"]))
    bad = _model("GRU")
    next(a for a in bad.graph.node[0].attribute if a.name == "hidden_size").i = H + 1   # no longer fits W and R
    with pytest.raises(gc.GraphFileError, match="hidden_size"):
        import_model(bad)
