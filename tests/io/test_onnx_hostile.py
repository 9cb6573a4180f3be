"""Broken and hostile ONNX files give a GraphFileError (or ResourceExhaustedError for a tensor
too big) that names the node (index, name, op type) and the field, never a raw exception, a hang
or a read outside the model's folder.

Each test is one class of bug the fuzzer found (tests/fuzz/onnx_cases.py): before the
validating layer (graphc/io/onnx/checks.py, files.py, tensors.py) these raised DecodeError,
ValidationError, ValueError, IndexError, TypeError, KeyError, AttributeError or ZeroDivisionError,
hung on a FIFO, or read files the model pointed at.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")

import onnx
from onnx import TensorProto, helper, numpy_helper

import graphc as gc

F = TensorProto.FLOAT
TESTED_OPS = {"Placeholder", "Const", "Relu", "Gather", "Transpose", "MaxPool", "MatMul", "Add"}


def _model(nodes, inputs, outputs, inits=(), opset=18) -> onnx.ModelProto:
    """A model built without onnx.checker: the point is that it is broken."""
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def _load_error(model_or_bytes, cls=gc.GraphFileError) -> str:
    with pytest.raises(gc.GraphcError) as info:
        gc.onnx.load(model_or_bytes)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    return str(info.value)


@pytest.fixture(autouse=True)
def _no_hang():
    """A regression that blocks (a FIFO opened for reading) fails instead of hanging the suite."""
    def _timeout(*_):
        raise TimeoutError("the import blocked")
    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _relu_model(**node_kw) -> onnx.ModelProto:
    node = helper.make_node("Relu", node_kw.pop("inputs", ["x"]), ["y"], name="relu", **node_kw)
    return _model([node], [_vi("x", [2, 3])], [_vi("y", [2, 3])])


# ----------------------------------------------------------------------------- the file itself
def test_bytes_protobuf_cannot_decode():
    data = _relu_model().SerializeToString()
    message = _load_error(data[: len(data) // 2] + b"\xff\xff\xff")
    assert "is not an ONNX model: protobuf cannot decode it" in message


def test_path_that_is_a_fifo_or_folder_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "model.onnx")
    assert "not a regular file" in _load_error(tmp_path / "model.onnx")
    assert "not a regular file" in _load_error(tmp_path)
    assert "cannot read" in _load_error(tmp_path / "missing.onnx")


def test_name_that_is_not_utf8():
    data = _relu_model().SerializeToString().replace(b"relu", b"r\xffl\xfe")
    assert "field 'onnx.NodeProto.name' is not valid UTF-8 text" in _load_error(data)


def test_opset_outside_what_onnx_defines_or_given_twice():
    model = _relu_model()
    model.opset_import[0].version = 1000
    assert "asks for opset 1000 of the default domain" in _load_error(model)
    model.opset_import[0].version = 13
    model.opset_import.add(domain="", version=7)
    assert "gives the default domain 2 versions" in _load_error(model)


# ----------------------------------------------------------------------------- inputs of a node
def test_missing_input_is_checked_against_the_arity():
    message = _load_error(_relu_model(inputs=[]))
    assert "ONNX node 0 'relu' (Relu): takes 1 inputs at opset 18, got 0" in message


def test_required_input_with_an_empty_name():
    message = _load_error(_relu_model(inputs=[""]))
    assert "ONNX node 0 'relu' (Relu): input 0 ('X') is required, but its name is empty" in message


def test_input_of_an_element_type_the_op_does_not_take():
    node = helper.make_node("Softmax", ["x"], ["y"], name="sm")
    model = _model([node], [_vi("x", [2, 3], TensorProto.INT64)], [_vi("y", [2, 3])])
    assert "input 0 ('input') has element type int64; Softmax takes float32 or float64" in _load_error(model)


def test_value_defined_twice_and_use_before_definition():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Relu", ["x"], ["y"], name="b")]
    assert "ONNX node 1 'b' (Relu): output 0 'y' is already defined" in _load_error(
        _model(nodes, [_vi("x", [2])], [_vi("y", [2])]))
    cycle = [helper.make_node("Relu", ["z"], ["y"], name="a"), helper.make_node("Relu", ["y"], ["z"], name="b")]
    assert "ONNX node 0 'a' (Relu): input 0 'z' is not defined before this node" in _load_error(
        _model(cycle, [_vi("x", [2])], [_vi("y", [2])]))


def test_unsupported_op_is_a_graph_file_error_not_a_plain_graphc_error():
    node = helper.make_node("Einsum", ["x", "x"], ["y"], equation="i,i->", name="e")
    assert "ONNX node 0 'e' (Einsum): graphc cannot import ONNX op Einsum" in _load_error(
        _model([node], [_vi("x", [2])], [_vi("y", [])]))


def test_builder_errors_keep_their_class_and_name_the_node():
    node = helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")
    model = _model([node], [_vi("a", [2, 3]), _vi("b", [4, 5])], [_vi("y", [2, 5])])
    assert "ONNX node 0 'mm' (MatMul): matmul inner dimensions differ" in _load_error(model, gc.ShapeError)


# ----------------------------------------------------------------------------- attributes
def test_axis_past_the_rank():
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="g", axis=5)
    model = _model([node], [_vi("x", [2, 3]), _vi("i", [2], TensorProto.INT64)], [_vi("y", None)])
    assert "ONNX node 0 'g' (Gather): attribute 'axis' is 5, outside [-2, 2)" in _load_error(model)


def test_attribute_of_the_wrong_type_and_a_bad_permutation():
    node = helper.make_node("Transpose", ["x"], ["y"], name="t", perm=0)
    model = _model([node], [_vi("x", [2, 3])], [_vi("y", [3, 2])])
    assert "ONNX node 0 't' (Transpose): attribute 'perm' must be of type INTS, got INT" in _load_error(model)
    node = helper.make_node("Transpose", ["x"], ["y"], name="t", perm=[0, 0])
    assert "attribute 'perm' is [0, 0], not a permutation of the 2 axes" in _load_error(
        _model([node], [_vi("x", [2, 3])], [_vi("y", [3, 2])]))


def test_required_attribute_missing():
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool")
    model = _model([node], [_vi("x", [1, 1, 4, 4])], [_vi("y", None)])
    assert "ONNX node 0 'pool' (MaxPool): attribute 'kernel_shape' is required" in _load_error(model)


def test_attribute_referring_to_a_function_attribute():
    model = _relu_model()
    model.graph.node[0].attribute.add(name="alpha", type=onnx.AttributeProto.FLOAT, ref_attr_name="a")
    assert "attribute 'alpha' refers to a function attribute" in _load_error(model)


def test_static_values_in_range():
    """Slice step 0, Range delta 0, Reshape copying a dim past the rank: named errors."""
    i64 = lambda name, *v: numpy_helper.from_array(np.array(v, np.int64), name)
    cases = [
        (helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"], name="n"),
         [i64("s", 0), i64("e", 2), i64("a", 0), i64("st", 0)], "a step is 0"),
        (helper.make_node("Reshape", ["x", "s"], ["y"], name="n"), [i64("s", 0, 0, 0)],
         "copies (0) a dim past the input's rank 2"),
        (helper.make_node("Gather", ["x", "s"], ["y"], name="n"), [i64("s", 7)], "holds 7, outside [-2, 2)"),
        (helper.make_node("Split", ["x", "s"], ["y", "z"], name="n", axis=1), [i64("s", 1, 1)],
         "input 1 ('split') sums to 2; the axis has size 3"),
    ]
    for node, inits, expected in cases:
        message = _load_error(_model([node], [_vi("x", [2, 3])], [_vi("y", None)], inits))
        assert f"ONNX node 0 'n' ({node.op_type})" in message and expected in message, message
    rng = helper.make_node("Range", ["a", "b", "c"], ["y"], name="n")
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in (("a", 0), ("b", 5), ("c", 0))]
    assert "input 2 ('delta') is 0" in _load_error(_model([rng], [], [_vi("y", None)], inits))


def test_huge_shapes_are_refused_before_anything_is_allocated():
    shape = numpy_helper.from_array(np.array([1 << 40, 1 << 40], np.int64), "s")
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], name="zeros")
    message = _load_error(_model([node], [], [_vi("y", None)], [shape]), gc.ResourceExhaustedError)
    assert "ONNX node 0 'zeros' (ConstantOfShape): input 0 ('input', the shape)" in message
    assert "more than the limit" in message
    declared = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1 << 40, 1 << 40])], [_vi("y", None)])
    assert "graph input 0 'x': field 'shape'" in _load_error(declared, gc.ResourceExhaustedError)
    small = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1024, 1024])], [_vi("y", None)])
    with pytest.raises(gc.ResourceExhaustedError, match="more than the limit of 1000 bytes"):
        gc.onnx.load(small, max_tensor_bytes=1000)


def test_error_messages_stay_short_whatever_the_names():
    model = _relu_model(inputs=[])
    model.graph.node[0].name = "n" * 1_000_000
    message = _load_error(model)
    assert "(1000000 characters)" in message and len(message) < 1000


def test_pool_window_too_big_to_build_from_slices_is_refused_quickly():
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[64, 64, 64], pads=[30] * 6)
    model = _model([node], [_vi("x", [1, 1, 4, 4, 4])], [_vi("y", None)])
    assert "takes at most 4096" in _load_error(model)


# ----------------------------------------------------------------------------- tensors
def test_initializer_data_that_disagrees_with_its_dims():
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    w.raw_data = w.raw_data[:-4]
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    model = _model([node], [_vi("x", [2, 3])], [_vi("y", [2, 3])], [w])
    assert "initializer 0 'w': field 'raw_data' holds 20 bytes; shape (2, 3) of float32 needs 24" in _load_error(model)
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.float_data.extend([1.0] * 5)
    assert "field 'float_data' holds 5 values; shape (2, 3) needs 6" in _load_error(model)
    w.dims[0] = -2
    assert "initializer 0 'w': field 'dims': dim 0 is -2" in _load_error(model)


def test_element_types_graphc_cannot_hold_are_graph_file_errors():
    model = _relu_model()
    model.graph.input[0].type.tensor_type.elem_type = 999
    assert "graph input 0 'x' has ONNX element type 999 (not an ONNX element type)" in _load_error(model)


# ----------------------------------------------------------------------------- external data
def _external_model(folder: Path, location: str, offset: str = "0", length: str | None = "24") -> Path:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    (folder / "weights.bin").write_bytes(w.tobytes())
    init = numpy_helper.from_array(w, "w")
    init.ClearField("raw_data")
    init.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            init.external_data.add(key=key, value=value)
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    path = folder / "model.onnx"
    onnx.save(_model([node], [_vi("x", [2, 3])], [_vi("y", [2, 3])], [init]), path)
    return path


def test_external_data_inside_the_folder_loads(tmp_path):
    graph, inputs, outputs = gc.onnx.load(_external_model(tmp_path, "weights.bin"))
    with gc.Session(graph, backend="numpy") as sess:
        y = sess.run(outputs[0], {inputs[0]: np.ones((2, 3), np.float32)})
    np.testing.assert_array_equal(y, np.arange(6).reshape(2, 3) + 1)


@pytest.mark.parametrize("location, expected", [
    ("../secret.bin", "must be a relative path inside the model's folder"),
    ("/etc/passwd", "must be a relative path inside the model's folder"),
    ("link.bin", "leads outside the model's folder"),
    ("zero.bin", "leads outside the model's folder"),
    ("fifo.bin", "is not a regular file"),
    ("missing.bin", "cannot read"),
])
def test_external_data_tricks_are_refused(tmp_path, location, expected):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.arange(6, dtype=np.float32).tobytes())
    os.symlink(tmp_path / "secret.bin", folder / "link.bin")
    os.symlink("/dev/zero", folder / "zero.bin")
    os.mkfifo(folder / "fifo.bin")
    message = _load_error(_external_model(folder, location))
    assert "initializer 0 'w'" in message and expected in message, message


@pytest.mark.parametrize("offset, length, expected", [
    (str(1 << 40), "24", "past the end of the file"),
    ("0", str(1 << 40), "does not match the tensor's size (24 bytes)"),
    ("1e3", "24", "offset '1e3' is not a non-negative decimal integer"),
    ("-1", "24", "offset '-1' is not a non-negative decimal integer"),
    ("8", None, "24 bytes at offset 8 run past the end of the file"),
])
def test_external_data_offsets_and_lengths_are_bounded(tmp_path, offset, length, expected):
    assert expected in _load_error(_external_model(tmp_path, "weights.bin", offset, length))


def test_external_data_needs_the_models_folder(tmp_path):
    data = _external_model(tmp_path, "weights.bin").read_bytes()
    assert "load the model from its path" in _load_error(data)


def test_backend_prepare_wraps_onnx_checker_errors():
    from graphc.onnx_backend import GraphcBackend

    with pytest.raises(gc.GraphFileError, match="fails onnx.checker"):
        GraphcBackend.prepare(_relu_model(inputs=[]))


# ----------------------------------------------------------------------------- sub-graphs (Loop, Scan, If)
B, I64 = TensorProto.BOOL, TensorProto.INT64


def _loop_body(nodes=(), sfx=""):
    """body(i, c_in, x_in) -> (c_out, x_out), with `nodes` before the two Identities; names end
    in `sfx` (a sub-graph may not reuse the names of the graphs around it)."""
    return helper.make_graph(list(nodes) + [helper.make_node("Identity", [f"c_in{sfx}"], [f"c_out{sfx}"]),
                                            helper.make_node("Identity", [f"x_in{sfx}"], [f"x_out{sfx}"])],
                             "body", [_vi(f"i{sfx}", [], I64), _vi(f"c_in{sfx}", [], B), _vi(f"x_in{sfx}", [2])],
                             [_vi(f"c_out{sfx}", [], B), _vi(f"x_out{sfx}", [2])])


def _loop_model(body, inputs=("M", "", "x"), name="loop"):
    node = helper.make_node("Loop", list(inputs), ["y"], body=body, name=name)
    return _model([node], [_vi("M", [], I64), _vi("x", [2])], [_vi("y", [2])])


def test_deeply_nested_loop_bodies_are_refused_before_recursing():
    """Built in place (protobuf cannot copy or encode messages this deep): 400 levels, more than
    Python's stack would take at the ~10 frames a level of importing costs."""
    model = _loop_model(_loop_body())
    level, sfx = model.graph.node[0].attribute[0].g, ""
    for depth in range(400):
        level.node.insert(0, helper.make_node("Loop", ["M", "", f"x_in{sfx}"], [f"x_next{sfx}"], name=f"level{depth}"))
        level.node[2].input[0] = f"x_next{sfx}"
        level, sfx = level.node[0].attribute.add(name="body", type=onnx.AttributeProto.GRAPH).g, str(depth)
        level.CopyFrom(_loop_body(sfx=sfx))
    message = _load_error(model)
    assert "sub-graphs nest more than 16 deep" in message and "attribute 'body'" in message


def test_huge_sub_graphs_are_refused_before_importing_a_node():
    nodes = [helper.make_node("Relu", ["x_in"], [f"r{k}"]) for k in range(100_001)]
    message = _load_error(_loop_model(_loop_body(nodes)))
    assert "sub-graphs hold more than 100000 nodes" in message


def test_many_moderate_sub_graphs_share_one_budget(monkeypatch):
    from graphc.io.onnx import checks

    monkeypatch.setattr(checks, "MAX_SUBGRAPH_NODES", 100)
    body = _loop_body([helper.make_node("Relu", ["x_in"], [f"r{k}"]) for k in range(20)])
    loops = [helper.make_node("Loop", ["M", "", "x" if k == 0 else f"y{k - 1}"], [f"y{k}"], body=body, name=f"l{k}")
             for k in range(4)]
    model = _model(loops, [_vi("M", [], I64), _vi("x", [2])], [_vi("y3", [2])])
    assert "ONNX node 3 'l3' (Loop): attribute 'body': the model's sub-graphs hold more than 100" in _load_error(model)


@pytest.mark.parametrize("change, expected", [
    (lambda m: m.graph.node[0].input.__setitem__(1, ""), None),
    (lambda m: m.graph.node[0].input.__setitem__(slice(0, 2), ["", ""]), "has neither a trip count"),
    (lambda m: m.graph.node[0].attribute[0].g.input.pop(), "attribute 'body' takes 2 inputs; Loop passes it 3"),
    (lambda m: m.graph.node[0].attribute[0].g.output.pop(), "attribute 'body' has 1 outputs; Loop needs at least 2"),
    (lambda m: m.graph.node[0].output.append("z"), "has 2 outputs; its body returns 1 loop-carried values and 0"),
    (lambda m: m.graph.node[0].attribute[0].g.input[2].type.CopyFrom(onnx.TypeProto(sequence_type=onnx.TypeProto.Sequence(
        elem_type=onnx.TypeProto(tensor_type=onnx.TypeProto.Tensor(elem_type=F))))), "is of ONNX type sequence"),
    (lambda m: m.graph.node[0].attribute[0].g.input[2].type.tensor_type.__setattr__("elem_type", TensorProto.DOUBLE),
     "input 'x_in' is declared float64, but the value passed is float32"),
    (lambda m: m.graph.node[0].attribute[0].g.node[1].input.__setitem__(0, "nowhere"),
     "attribute 'body', node 1 (Identity): input 0 'nowhere' is not defined before this node"),
    (lambda m: m.graph.node[0].attribute[0].g.node[1].output.__setitem__(0, "M"),
     "attribute 'body', node 1 (Identity): output 0 'M' is already defined"),
    (lambda m: m.graph.node[0].attribute[0].__setattr__("type", onnx.AttributeProto.INT),
     "attribute 'body' must be of type GRAPH, got INT"),
])
def test_loop_structure_is_checked(change, expected):
    model = _loop_model(_loop_body(), inputs=("M", "c", "x"))
    model.graph.input.append(_vi("c", [], B))
    change(model)
    if expected is None:   # the unchanged form imports
        gc.onnx.load(model)
        return
    message = _load_error(model)
    assert "ONNX node 0 'loop' (Loop)" in message and expected in message, message


def test_scan_and_if_structure_is_checked():
    body = helper.make_graph([helper.make_node("Add", ["s", "e"], ["s2"])], "body", [_vi("s", [2]), _vi("e", [2])],
                             [_vi("s2", [2])])
    for m, expected in ((0, "'num_scan_inputs' is 0; it must be in [1, 2]"), (5, "is 5; it must be in [1, 2]")):
        scan = helper.make_node("Scan", ["s0", "xs"], ["s"], body=body, num_scan_inputs=m, name="scan")
        model = _model([scan], [_vi("s0", [2]), _vi("xs", [4, 2])], [_vi("s", [2])])
        assert expected in _load_error(model)
    scan = helper.make_node("Scan", ["s0", "xs"], ["s"], body=body, num_scan_inputs=1, scan_input_axes=[3], name="scan")
    model = _model([scan], [_vi("s0", [2]), _vi("xs", [4, 2])], [_vi("s", [2])])
    assert "attribute 'scan_input_axes' for scan input 0 is 3, outside [-2, 2)" in _load_error(model)
    lens = numpy_helper.from_array(np.array([3], np.int64), "lens")
    scan8 = helper.make_node("Scan", ["lens", "s0", "xs"], ["s"], body=body, num_scan_inputs=1, name="scan")
    model = _model([scan8], [_vi("s0", [1, 2]), _vi("xs", [1, 4, 2])], [_vi("s", [1, 2])], [lens], opset=8)
    assert "lengths other than the full sequence length" in _load_error(model)
    branch = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [], [_vi("o", [2])])
    two = helper.make_graph([helper.make_node("Identity", ["x"], ["o1"]), helper.make_node("Identity", ["x"], ["o2"])],
                            "b2", [], [_vi("o1", [2]), _vi("o2", [2])])
    node = helper.make_node("If", ["p"], ["y"], then_branch=branch, else_branch=two, name="if")
    model = _model([node], [_vi("p", [], B), _vi("x", [2])], [_vi("y", [2])])
    assert "ONNX node 0 'if' (If): attribute 'else_branch' has 2 outputs; If needs 1" in _load_error(model)
