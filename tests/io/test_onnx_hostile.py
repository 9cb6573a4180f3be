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
