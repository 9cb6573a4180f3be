"""ONNX Loop, Scan and If imported as graphc While / If nodes: the results match onnxruntime
(or, where onnxruntime departs from the ONNX spec, the spec), sub-graphs use values of the
graphs around them, and what graphc cannot compile is a GraphFileError saying why.

Each test runs on the NumPy reference backend and on the LLVM backend (the `_backend` fixture).
"""
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

TESTED_OPS = {"While", "If", "Gather"}
F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
RNG = np.random.default_rng(11)
BACKEND = "numpy"   # set for each test by the _backend fixture


@pytest.fixture(autouse=True, params=["numpy", "llvm"])
def _backend(request, monkeypatch):
    """Every test runs on the reference interpreter and on the compiled LLVM backend."""
    monkeypatch.setattr(sys.modules[__name__], "BACKEND", request.param)


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _model(nodes, inputs, outputs, inits=(), opset=18, check=True):
    graph = helper.make_graph(nodes, "control", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    if check:
        onnx.checker.check_model(model)
    return model


def _graphc(model, feeds, static_inputs=None):
    imported = import_model(model, static_inputs=static_inputs)
    with gc.Session(imported.graph, backend=BACKEND) as sess:
        return sess.run(imported.outputs, {t: feeds[n] for t, n in zip(imported.inputs, imported.input_names)})


def _ort(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _same(model, feeds, **kw):
    got, want = _graphc(model, feeds, **kw), _ort(model, feeds)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return got


def _while_model(with_scan=False):
    """Loop(M, cond, x): x = x * 2 + w (w from the enclosing graph) while sum(x) < limit."""
    body_nodes = [helper.make_node("Mul", ["x_in", "two"], ["x2"]),
                  helper.make_node("Add", ["x2", "w"], ["x_out"]),
                  helper.make_node("ReduceSum", ["x_out"], ["s"], keepdims=0),
                  helper.make_node("Less", ["s", "limit"], ["c_out"])]
    outs = [_vi("c_out", B, []), _vi("x_out", F, [3])]
    if with_scan:
        body_nodes.append(helper.make_node("Identity", ["s"], ["s_row"]))
        outs.append(_vi("s_row", F, []))
    body = helper.make_graph(body_nodes, "body", [_vi("i", I64, []), _vi("c_in", B, []), _vi("x_in", F, [3])], outs)
    loop = helper.make_node("Loop", ["M", "c0", "x0"], ["x_final"] + (["rows"] if with_scan else []), body=body)
    outputs = [_vi("x_final", F, [3])] + ([_vi("rows", F, ["n"])] if with_scan else [])
    return _model([loop], [_vi("M", I64, []), _vi("c0", B, []), _vi("x0", F, [3]), _vi("w", F, [3])], outputs,
                  {"two": np.float32(2), "limit": np.float32(50)})


@pytest.mark.parametrize("trip, c0", [(10, True), (2, True), (0, True), (10, False), (1 << 40, True)])
def test_loop_while_condition_and_trip_count(trip, c0):
    feeds = {"M": np.array(trip, np.int64), "c0": np.array(c0), "x0": np.ones(3, np.float32),
             "w": np.array([0.5, 1, 2], np.float32)}
    _same(_while_model(), feeds)


def test_loop_scan_outputs_need_a_static_row_count():
    model = _while_model(with_scan=True)
    with pytest.raises(gc.GraphFileError, match="condition decides at run time"):
        import_model(model)
    counted = _while_model(with_scan=True)
    counted.graph.node[0].attribute[0].g.node[3].op_type = "Greater"   # still data-dependent
    with pytest.raises(gc.GraphFileError, match="ONNX node 0 \\(Loop\\): has 1 scan output"):
        import_model(counted)


def _counted_model(cond_in_body="c_in"):
    """Loop(M, "", acc): acc += x[i]; the row stacked each iteration is acc (x from outside)."""
    body = helper.make_graph(
        [helper.make_node("Gather", ["x", "i"], ["row"], axis=0),
         helper.make_node("Add", ["acc_in", "row"], ["acc_out"]),
         helper.make_node("Identity", ["acc_out"], ["stacked"]),
         helper.make_node("Identity", [cond_in_body], ["c_out"])],
        "body", [_vi("i", I64, []), _vi("c_in", B, []), _vi("acc_in", F, [2])],
        [_vi("c_out", B, []), _vi("acc_out", F, [2]), _vi("stacked", F, [2])])
    loop = helper.make_node("Loop", ["M", "", "acc0"], ["acc", "rows"], body=body)
    return _model([loop], [_vi("M", I64, []), _vi("acc0", F, [2]), _vi("x", F, [5, 2])],
                  [_vi("acc", F, [2]), _vi("rows", F, ["n", 2])], {"never": np.array(False)})


def test_counted_loop_with_scan_outputs_and_a_trip_count_bound_while_building():
    feeds = {"M": np.array(4, np.int64), "acc0": np.zeros(2, np.float32),
             "x": RNG.normal(size=(5, 2)).astype(np.float32)}
    with pytest.raises(gc.GraphFileError, match="input 0 \\('M'\\) must be known while building"):
        import_model(_counted_model())
    _, rows = _same(_counted_model(), feeds, static_inputs={"M": feeds["M"]})
    np.testing.assert_allclose(rows, np.cumsum(feeds["x"][:4], axis=0), rtol=1e-6)


def test_without_a_cond_input_the_body_condition_is_ignored_as_the_spec_says():
    """ONNX's spec: with M and no cond, `cond = ...; // ignored` (a for loop); onnxruntime
    stops on it anyway. graphc follows the spec: all M iterations run."""
    feeds = {"M": np.array(3, np.int64), "acc0": np.zeros(2, np.float32), "x": np.ones((5, 2), np.float32)}
    acc, rows = _graphc(_counted_model("never"), feeds, static_inputs={"M": feeds["M"]})
    np.testing.assert_array_equal(acc, [3, 3])
    assert rows.shape == (3, 2)


def test_nested_loops_capture_through_both_levels():
    """The inner body uses `w` of the main graph; the outer trip count is a graph input."""
    inner = helper.make_graph(
        [helper.make_node("Add", ["y_in", "w"], ["y_out"]), helper.make_node("Identity", ["ci"], ["co"])],
        "inner", [_vi("j", I64, []), _vi("ci", B, []), _vi("y_in", F, [3])], [_vi("co", B, []), _vi("y_out", F, [3])])
    outer = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["n_inner"], to=I64),
         helper.make_node("Loop", ["n_inner", "", "x_in"], ["x_mid"], body=inner),
         helper.make_node("Mul", ["x_mid", "half"], ["x_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])],
        "outer", [_vi("i", I64, []), _vi("c_in", B, []), _vi("x_in", F, [3])], [_vi("c_out", B, []), _vi("x_out", F, [3])])
    loop = helper.make_node("Loop", ["M", "", "x0"], ["x"], body=outer, name="outer")
    model = _model([loop], [_vi("M", I64, []), _vi("x0", F, [3]), _vi("w", F, [3])], [_vi("x", F, [3])],
                   {"half": np.float32(0.5)})
    feeds = {"M": np.array(4, np.int64), "x0": np.ones(3, np.float32), "w": np.array([1, 2, 3], np.float32)}
    _same(model, feeds)
    imported = import_model(model)
    whiles = [n for n in imported.graph.get_operations() if n.type == "While"]
    assert len(whiles) == 1 and len(whiles[0].inputs) == 1 + 2 + 1   # trip, cond and x carried, w captured


def test_loop_body_may_not_change_a_carried_shape():
    body = helper.make_graph([helper.make_node("Concat", ["x_in", "x_in"], ["x_out"], axis=0),
                              helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
                             [_vi("i", I64, []), _vi("c_in", B, []), _vi("x_in", F, None)],
                             [_vi("c_out", B, []), _vi("x_out", F, None)])
    model = _model([helper.make_node("Loop", ["M", "", "x0"], ["x"], body=body)],
                   [_vi("M", I64, []), _vi("x0", F, [2])], [_vi("x", F, ["n"])])
    with pytest.raises(gc.GraphFileError, match="keep the shape of each carried value"):
        import_model(model)


def _scan_model(opset=18, **attrs):
    """Scan: state = state + x_t * w; out_t = state (two scan inputs, the second reversed)."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["x_t", "y_t"], ["p"]), helper.make_node("Add", ["s_in", "p"], ["s_out"]),
         helper.make_node("Identity", ["s_out"], ["o_t"])], "body",
        [_vi("s_in", F, [3]), _vi("x_t", F, [3]), _vi("y_t", F, [3])], [_vi("s_out", F, [3]), _vi("o_t", F, [3])])
    scan = helper.make_node("Scan", ["s0", "x", "y"], ["s", "o"], body=body, num_scan_inputs=2, **attrs)
    return _model([scan], [_vi("s0", F, [3]), _vi("x", F, [4, 3]), _vi("y", F, [3, 4])],
                  [_vi("s", F, [3]), _vi("o", F, ["a", "b"])], opset=opset)


@pytest.mark.parametrize("attrs", [
    {"scan_input_axes": [0, 1]},
    {"scan_input_axes": [0, -1], "scan_input_directions": [0, 1]},
    {"scan_input_axes": [0, 1], "scan_output_directions": [1], "scan_output_axes": [1]},
    {"scan_input_axes": [0, 1], "scan_input_directions": [1, 1], "scan_output_axes": [-1]},
])
def test_scan_axes_and_directions(attrs):
    feeds = {"s0": np.zeros(3, np.float32), "x": RNG.normal(size=(4, 3)).astype(np.float32),
             "y": RNG.normal(size=(3, 4)).astype(np.float32)}
    _same(_scan_model(**attrs), feeds)


def test_scan_inputs_of_different_lengths_are_refused():
    with pytest.raises(gc.GraphFileError, match="different lengths along their scan axes: \\[3, 4\\]"):
        import_model(_scan_model())


def _if_model(then_value, else_value, pred_input=True):
    def branch(name, value):
        return helper.make_graph([helper.make_node("Mul", ["x", name + "_k"], [name + "_out"])], name, [],
                                 [_vi(name + "_out", F, None)], [numpy_helper.from_array(value, name + "_k")])
    node = helper.make_node("If", ["p" if pred_input else "p_const"], ["y"], then_branch=branch("then", then_value),
                            else_branch=branch("else", else_value))
    inits = {} if pred_input else {"p_const": np.array(True)}
    inputs = [_vi("x", F, [2, 3])] + ([_vi("p", B, [])] if pred_input else [])
    return _model([node], inputs, [_vi("y", F, ["a", "b"])], inits)


def test_if_at_run_time_and_inlined_when_known():
    model = _if_model(np.float32(2), np.full(3, -1, np.float32))
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    for p in (True, False):
        _same(model, {"x": x, "p": np.array(p)})
    imported = import_model(_if_model(np.float32(2), np.float32(3), pred_input=False))
    assert not [n for n in imported.graph.get_operations() if n.type == "If"]
    (y,) = _graphc(_if_model(np.float32(2), np.float32(3), pred_input=False), {"x": x})
    np.testing.assert_allclose(y, 2 * x)


def test_if_branches_of_different_shapes_are_refused_at_run_time_only():
    with pytest.raises(gc.GraphFileError, match="branches return output 0 with shapes \\(2, 3\\) and \\(2, 2, 3\\)"):
        import_model(_if_model(np.float32(2), np.ones((2, 1, 1), np.float32)))


def test_slice_at_the_iteration_number_inside_a_loop():
    """x[i:i+1] with i the iteration number: a gather of a known length."""
    body = helper.make_graph(
        [helper.make_node("Unsqueeze", ["i", "zero"], ["start"]), helper.make_node("Add", ["start", "one"], ["end"]),
         helper.make_node("Slice", ["x", "start", "end"], ["row"]), helper.make_node("Add", ["acc_in", "row"], ["acc"]),
         helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
        [_vi("i", I64, []), _vi("c_in", B, []), _vi("acc_in", F, [1, 3])], [_vi("c_out", B, []), _vi("acc", F, [1, 3])])
    model = _model([helper.make_node("Loop", ["M", "", "acc0"], ["out"], body=body)],
                   [_vi("M", I64, []), _vi("acc0", F, [1, 3]), _vi("x", F, [4, 3])], [_vi("out", F, [1, 3])],
                   {"zero": np.array([0], np.int64), "one": np.array([1], np.int64)})
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    _same(model, {"M": np.array(4, np.int64), "acc0": np.zeros((1, 3), np.float32), "x": x})
    with pytest.raises(gc.GraphcError, match="not in \\[0, 4\\)"):   # ONNX would clamp; graphc refuses at run time
        _graphc(model, {"M": np.array(5, np.int64), "acc0": np.zeros((1, 3), np.float32), "x": x})


def test_errors_inside_a_body_name_the_path_to_the_node():
    body = helper.make_graph([helper.make_node("MatMul", ["x_in", "x_in"], ["x_out"], name="mm"),
                              helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
                             [_vi("i", I64, []), _vi("c_in", B, []), _vi("x_in", F, [2, 3])],
                             [_vi("c_out", B, []), _vi("x_out", F, [2, 3])])
    model = _model([helper.make_node("Loop", ["M", "", "x0"], ["x"], body=body, name="loop")],
                   [_vi("M", I64, []), _vi("x0", F, [2, 3])], [_vi("x", F, [2, 3])], check=False)
    with pytest.raises(gc.ShapeError) as info:
        import_model(model)
    assert "ONNX node 0 'loop' (Loop), attribute 'body', node 0 'mm' (MatMul): matmul inner dimensions differ" \
        in str(info.value)
