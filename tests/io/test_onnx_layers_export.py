"""Models built with graphc's own layers (Keras-style layer objects, a trained Sequential and a
functional Model) export to ONNX with their trained weights and give onnxruntime the same
results graphc computes."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs the onnx extra")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime")

import graphc as gc

TESTED_OPS = {"Conv2D", "MaxPool", "MatMul", "While"}


def _onnxruntime(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_a_trained_conv_net_exports_with_its_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 1)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    gc.set_random_seed(1)
    model = gc.Sequential([gc.layers.Conv2D(4, 3, padding="same", activation="relu"), gc.layers.BatchNormalization(),
                           gc.layers.MaxPooling2D(2), gc.layers.Flatten(), gc.layers.Dropout(0.3, seed=2),
                           gc.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    expected = model.predict(x[:16], batch_size=16)
    f = model._forward
    gc.onnx.export(tmp_path / "cnn.onnx", f.inputs, f.eval, session=model.session)   # inference form
    got, = _onnxruntime(tmp_path / "cnn.onnx", {f.inputs[0].name: x[:16]})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_a_functional_model_with_an_lstm_exports(tmp_path):
    rng = np.random.default_rng(1)
    with gc.Graph().as_default():
        gc.set_random_seed(3)   # the graph's seed (TF1's rule): inside, or the weights differ per run
        seq = gc.Input(shape=(5, 3), batch_size=4, name="seq")
        side = gc.Input(shape=(2,), batch_size=4, name="side")
        h = gc.layers.LSTM(6)(seq)
        joined = gc.layers.Concatenate()([h, gc.layers.Dense(6, activation="tanh")(side)])
        out = gc.layers.Dense(1)(gc.layers.LayerNormalization()(joined))
        model = gc.Model([seq, side], out)
    a, b = rng.normal(size=(4, 5, 3)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    expected = model.predict([a, b], batch_size=4)
    gc.onnx.export(tmp_path / "lstm.onnx", [seq, side], [out], session=model._ready_session())
    got, = _onnxruntime(tmp_path / "lstm.onnx", {seq.name: a, side.name: b})
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
