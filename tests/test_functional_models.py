"""Functional gc.Model(inputs, outputs) on gc.Input placeholders (the learning phase feeds the
layers' training form only in the training step), several inputs and outputs, Model.save /
gc.load_model (a loaded model predicts alike and trains on exactly as the saved one would),
and the loader's checks of a hostile model description."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import graphc as gc
from graphc.datasets import load_digits

TESTED_OPS = {"MatMul", "Concat", "AddN"}


def _digits():
    x, y = load_digits()
    return (x / 16.0).astype(np.float32).reshape(-1, 64), y.astype(np.int32)


def _branchy(dropout: float = 0.0):
    """Two branches joined by Concatenate and Add: a model Sequential cannot express."""
    graph = gc.Graph()
    with graph.as_default():   # the seed is the graph's (TF1's rule): set inside, or the weights are random per run
        gc.set_random_seed(3)
        inp = gc.Input(shape=(64,), name="pixels")
        a = gc.layers.Dense(32, activation="relu")(inp)
        if dropout:
            a = gc.layers.Dropout(dropout, seed=1)(a)
        b = gc.layers.Dense(32, activation="tanh")(inp)
        joined = gc.layers.Concatenate()([a, gc.layers.Add()([a, b])])
        out = gc.layers.Dense(10, activation="softmax")(joined)
    return gc.Model(inp, out, name="branchy")


def test_a_functional_model_trains_and_predicts_like_numpy():
    x, y = _digits()
    model = _branchy()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x[:1400], y[:1400], batch_size=50, epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    loss, accuracy = model.evaluate(x[1400:], y[1400:])
    assert accuracy > 0.85 and loss < 0.6
    # the prediction is the layers' arithmetic on the trained weights
    k0, b0, k1, b1, k2, b2 = model.get_weights()
    a = np.maximum(x[1400:1420] @ k0 + b0, 0)
    b = np.tanh(x[1400:1420] @ k1 + b1)
    logits = np.concatenate([a, a + b], axis=1) @ k2 + b2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x[1400:1420]), expected, rtol=1e-4, atol=1e-6)
    text = io.StringIO()
    model.summary(out=text)
    assert "concatenate (Concatenate)" in text.getvalue() and "(None, 64)" in text.getvalue()
    assert f"Total params: {64 * 32 * 2 + 64 + 64 * 10 + 10:,}" in text.getvalue()


def test_the_learning_phase_switches_dropout_only_in_the_training_step():
    x, _ = _digits()
    model = _branchy(dropout=0.5)
    model.compile("sgd", "mse")
    phase = gc.learning_phase(model.graph)
    first = model.predict(x[:8])
    np.testing.assert_array_equal(model.predict(x[:8]), first)      # inference: no dropout
    sess = model._ready_session()
    out = model._forward.eval[0]
    trained = sess.run(out, {model._forward.inputs[0]: x[:8], phase: True})
    assert not np.allclose(trained, first)                            # fed True: units dropped


def test_several_inputs_and_outputs():
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(256, 3)).astype(np.float32), rng.normal(size=(256, 2)).astype(np.float32)
    total = (xa.sum(1, keepdims=True) + 2 * xb.sum(1, keepdims=True)).astype(np.float32)
    label = (total[:, 0] > 0).astype(np.float32)[:, None]
    with gc.Graph().as_default():
        gc.set_random_seed(4)   # the graph's seed (TF1's rule): inside, or the weights differ per run
        a, b = gc.Input(shape=(3,), name="a"), gc.Input(shape=(2,), name="b")
        h = gc.layers.Dense(16, activation="relu")(gc.layers.Concatenate()([a, b]))
        regression = gc.layers.Dense(1, name="sum")(h)
        sign = gc.layers.Dense(1, activation="sigmoid", name="sign")(h)
        model = gc.Model([a, b], [regression, sign])
    model.compile(gc.train.AdamOptimizer(0.02), ["mse", "binary_crossentropy"], ["accuracy"], loss_weights=[1.0, 0.5])
    history = model.fit({"a": xa, "b": xb}, [total, label], batch_size=32, epochs=30, verbose=0)
    assert set(history.history) == {"loss", "sum_loss", "sign_loss", "sum_accuracy", "sign_accuracy"}
    last = {k: v[-1] for k, v in history.history.items()}
    assert last["loss"] == pytest.approx(last["sum_loss"] + 0.5 * last["sign_loss"], rel=1e-4)
    assert last["sum_loss"] < 0.3 and last["sign_accuracy"] > 0.9
    predicted_sum, predicted_sign = model.predict([xa[:5], xb[:5]])
    assert predicted_sum.shape == (5, 1) and predicted_sign.shape == (5, 1)
    assert len(model.evaluate([xa, xb], [total, label])) == 5


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_a_saved_model_predicts_alike_and_trains_on_from_where_it_stopped(tmp_path, kind):
    x, y = _digits()
    def build():
        if kind == "functional":
            return _branchy()
        gc.set_random_seed(5)
        return gc.Sequential([gc.layers.Dense(24, activation="relu"), gc.layers.BatchNormalization(),
                              gc.layers.Dense(10)])
    model = build()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x[:600], y[:600], batch_size=40, epochs=2, verbose=0)
    path = model.save(str(tmp_path / "model.gcx"))
    loaded = gc.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[600:640], batch_size=40), model.predict(x[600:640], batch_size=40),
                               rtol=1e-6)
    assert loaded.evaluate(x[600:], y[600:], batch_size=40) == pytest.approx(
        model.evaluate(x[600:], y[600:], batch_size=40), rel=1e-6)
    # one more epoch on each: Adam's slots and step count came along, so the weights agree
    model.fit(x[:600], y[:600], batch_size=40, epochs=1, verbose=0, seed=9)
    loaded.fit(x[:600], y[:600], batch_size=40, epochs=1, verbose=0, seed=9)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    summary = io.StringIO()
    loaded.summary(out=summary)
    assert "Dense" in summary.getvalue()


def test_a_model_saved_before_training_compiles_after_loading(tmp_path):
    x, y = _digits()
    model = _branchy()
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    loaded = gc.load_model(model.save(str(tmp_path / "fresh.gcx")))
    history = loaded.fit(x[:500], y[:500], epochs=3, verbose=0)      # the compile settings were saved
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_errors_are_clear(tmp_path):
    with gc.Graph().as_default():
        inp = gc.Input(shape=(4,))
        other = gc.placeholder(gc.float32, [None, 4], name="other")
        out = gc.layers.Dense(2)(inp + other)
        with pytest.raises(gc.GraphcError, match="not inputs of the model.*other"):
            gc.Model(inp, out)
        with pytest.raises(gc.GraphcError, match="must be placeholders"):
            gc.Model(out, out)
        model = gc.Model([inp, other], out)
    model.compile("sgd", "mse")
    with pytest.raises(gc.GraphcError, match="2 inputs"):
        model.fit(np.zeros((4, 4), np.float32), np.zeros((4, 2), np.float32))
    with pytest.raises(gc.GraphcError, match="no input given"):
        model.predict({"input": np.zeros((4, 4))})
    with pytest.raises(gc.GraphcError, match="not built yet"):
        gc.Sequential([gc.layers.Dense(1)]).save(str(tmp_path / "x.gcx"))
    gc.save_graph(str(tmp_path / "graph.gcx"), model.graph)
    with pytest.raises(gc.GraphFileError, match="without a model"):
        gc.load_model(str(tmp_path / "graph.gcx"))


def _rewrite_model_field(path, change) -> bytes:
    with zipfile.ZipFile(path) as z:
        entries = {name: z.read(name) for name in z.namelist()}
    doc = json.loads(entries["graph.json"])
    change(doc["model"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries.items():
            z.writestr(name, json.dumps(doc) if name == "graph.json" else data,
                       zipfile.ZIP_DEFLATED if name == "graph.json" else zipfile.ZIP_STORED)
    return out.getvalue()


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(inputs=["dense/MatMul:0"]), "a MatMul where a Placeholder"),
    (lambda m: m.update(eval_outputs=["nowhere:0"]), "no tensor of the file's graph"),
    (lambda m: m.update(extra=1), "exactly the fields"),
    (lambda m: m.update(name=["x"]), "must be a string"),
    (lambda m: m.update(batch_size=-3), "non-negative integer"),
    (lambda m: m.update(layers=[["a", "b"]]), "layers\\[0\\]"),
    (lambda m: m["training"]["train"].pop("step"), "lacks the training step"),
    (lambda m: m["training"]["eval"].update(loss="pixels:0"), "must name a scalar"),
    (lambda m: m["compile"].update(optimizer="__import__('os')"), "not one of"),
    (lambda m: m.update(learning_phase="pixels:0"), "where a PlaceholderWithDefault"),
])
def test_a_hostile_model_description_is_refused_by_field(tmp_path, change, message):
    x, y = _digits()
    model = _branchy()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    good = model.save(str(tmp_path / "good.gcx"))
    bad = tmp_path / "bad.gcx"
    bad.write_bytes(_rewrite_model_field(good, change))
    with pytest.raises(gc.GraphFileError, match=message):
        gc.load_model(str(bad))
