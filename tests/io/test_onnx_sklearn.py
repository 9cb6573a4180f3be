"""scikit-learn models exported by skl2onnx (the ai.onnx.ml operators; graphc/io/onnx/import_ml.py)
give onnxruntime's results on the reference and LLVM backends: labels as int64, ZipMap's
probabilities as onnxruntime's list of {label: probability} (Imported.present); ai.onnx.ml
operators built by hand cover what the exporter does not emit here (LabelEncoder, Normalizer
modes, SOFTMAX_ZERO); strings are refused by name. Skipped where skl2onnx is not installed."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("onnx", reason="needs the test extras: pip install -e \".[test]\"")
ort = pytest.importorskip("onnxruntime", reason="needs the test extras: pip install -e \".[test]\"")
pytest.importorskip("sklearn", reason="needs the test extras: pip install -e \".[test]\"")
skl2onnx = pytest.importorskip("skl2onnx", reason="needs the test extras: pip install -e \".[test]\"")

from onnx import TensorProto, helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

import graphc as gc
from graphc.io.onnx.importer import import_model

TESTED_OPS = {"MatMul", "Gather", "Softmax", "ArgMax", "Select"}
X, Y = load_iris(return_X_y=True)
X = X.astype(np.float32)


def _compare(model, feeds, backend):
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    imported = import_model(model, input_shapes={n: list(v.shape) for n, v in feeds.items()})
    with gc.Session(imported.graph, backend=backend) as sess:
        got = imported.present(sess.run(imported.outputs, {t: feeds[n] for t, n in
                                                            zip(imported.inputs, imported.input_names)}))
    for g, w in zip(got, want):
        if isinstance(w, list):
            assert len(g) == len(w)
            for a, b in zip(g, w):
                assert list(a) == list(b)
                np.testing.assert_allclose([a[k] for k in a], [b[k] for k in b], rtol=1e-5, atol=1e-6)
        else:
            assert np.asarray(g).dtype == w.dtype
            np.testing.assert_allclose(np.asarray(g).reshape(w.shape), w, rtol=1e-5, atol=1e-5)
    return imported


def _fitted(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "scaler+logistic":
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)
        if name == "binary":
            return LogisticRegression().fit(X, (Y == 0).astype(int))
        if name == "normalizer+linear":
            return make_pipeline(Normalizer(), LinearRegression()).fit(X[:, 1:], X[:, 0])
        if name == "mlp-regressor":
            return MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X[:, 1:], X[:, 0])
        return MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, Y)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("name", ["scaler+logistic", "binary", "normalizer+linear", "mlp", "mlp-regressor",
                                  "scaler+logistic-no-zipmap"])
def test_skl2onnx_exports_match_onnxruntime(name, backend):
    plain = name.endswith("-no-zipmap")
    model = _fitted(name.removesuffix("-no-zipmap"))
    regression = name in ("normalizer+linear", "mlp-regressor")
    sample = X[:, 1:] if regression else X
    options = {id(model): {"zipmap": False}} if plain else None   # probabilities as a plain matrix
    onx = skl2onnx.to_onnx(model, sample[:1], options=options)
    imported = _compare(onx, {"X": sample[:17]}, backend)
    if plain:
        assert not imported.output_maps
    elif not regression:
        assert imported.output_maps and next(iter(imported.output_maps.values())) == sorted(set(
            (Y == 0).astype(int) if name == "binary" else Y))


def _ml_model(node, x_type=TensorProto.FLOAT, x_shape=(4, 4), out_type=TensorProto.FLOAT):
    graph = helper.make_graph([node], "ml", [helper.make_tensor_value_info("x", x_type, list(x_shape))],
                              [helper.make_tensor_value_info("y", out_type, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
def test_hand_built_ml_operators(backend):
    x = np.array([[1.0, -2.0, 0.0, 4.0], [0.5, 0.5, -3.0, 1.0], [0.0, 0.0, 0.0, 0.0], [-1, -2, -0.5, -4]], np.float32)
    for norm in ("MAX", "L1", "L2"):
        node = helper.make_node("Normalizer", ["x"], ["y"], domain="ai.onnx.ml", norm=norm)
        _compare(_ml_model(node), {"x": x}, backend)
    node = helper.make_node("LinearClassifier", ["x"], ["label", "y"], domain="ai.onnx.ml",
                            coefficients=list(np.linspace(-1, 1, 12)), intercepts=[0.1, 0.0, -0.2],
                            classlabels_ints=[7, 8, 9], post_transform="SOFTMAX_ZERO")
    model = _ml_model(node)
    model.graph.output.insert(0, helper.make_tensor_value_info("label", TensorProto.INT64, None))
    _compare(model, {"x": x}, backend)
    codes = np.array([[3, 1, 5], [2, 3, 9]], np.int64)
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_int64s=[1, 2, 3],
                            values_int64s=[10, 20, 30], default_int64=-5)
    _compare(_ml_model(node, TensorProto.INT64, (2, 3), TensorProto.INT64), {"x": codes}, backend)


def test_string_labels_are_refused_by_name():
    node = helper.make_node("ZipMap", ["x"], ["y"], domain="ai.onnx.ml", classlabels_strings=["a", "b", "c", "d"])
    with pytest.raises(gc.GraphFileError, match="string labels have no graphc form"):
        import_model(_ml_model(node))
