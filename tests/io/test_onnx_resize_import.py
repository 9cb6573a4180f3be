"""ONNX Resize (graphc/io/onnx/import_resize.py) against onnxruntime as models use it (torch's
nn.Upsample / F.interpolate exports, segmentation heads): nearest, linear and cubic with the
usual coordinate transformations, scales or sizes, on the reference and LLVM backends; nearest
resizing passes values exactly (a gather); bad requests are clear errors. ONNX's own 40 node
tests for Resize and Upsample run in test_onnx_conformance.py."""
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

TESTED_OPS = {"Gather", "MatMul", "Transpose"}
X_SHAPE = (2, 3, 5, 7)


def _model(scales=None, sizes=None, **attrs):
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    names = ["x", "roi"]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array(scales, np.float32), "scales"))
        names.append("scales")
    else:
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
        names += ["", "sizes"]
    node = helper.make_node("Resize", names, ["y"], **attrs)
    graph = helper.make_graph([node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(X_SHAPE))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("model", [
    _model(scales=[1, 1, 2, 2], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    _model(sizes=[2, 3, 9, 4], mode="nearest"),
    _model(scales=[1, 1, 2, 2], mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
    _model(sizes=[2, 3, 8, 12], mode="linear", coordinate_transformation_mode="align_corners"),
    _model(scales=[1, 1, 0.5, 0.5], mode="linear"),
    _model(sizes=[2, 3, 11, 6], mode="cubic", coordinate_transformation_mode="half_pixel"),
], ids=["nearest-x2-torch", "nearest-sizes", "bilinear-x2-torch", "bilinear-align-corners", "linear-down",
        "bicubic"])
def test_resize_matches_onnxruntime(backend, model):
    x = np.random.default_rng(0).normal(size=X_SHAPE).astype(np.float32)
    imported = import_model(model)
    with gc.Session(imported.graph, backend=backend) as sess:
        got = sess.run(imported.outputs[0], {imported.inputs[0]: x})
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if {a.name: a.s for a in model.graph.node[0].attribute}.get("mode", b"nearest") == b"nearest":
        assert set(np.unique(got)) <= set(np.unique(x))          # nearest: values pass exactly


def test_bad_resizes_are_clear_errors():
    both = _model(scales=[1, 1, 2, 2])
    both.graph.initializer.append(numpy_helper.from_array(np.array([2, 3, 10, 14], np.int64), "sizes"))
    both.graph.node[0].input.append("sizes")
    with pytest.raises(gc.GraphFileError, match="exactly one of 'scales' and 'sizes'"):
        import_model(both)
    with pytest.raises(gc.GraphFileError, match="one positive scale per resized axis"):
        import_model(_model(scales=[1, 2, 2]))
    with pytest.raises(gc.GraphFileError, match="attribute 'mode'"):
        import_model(_model(scales=[1, 1, 2, 2], mode="area"))
