"""gc.Sequential with Keras layer objects: compile / fit / evaluate / predict / summary, one
training and one evaluation program however the data divide into batches (the last short
batch is padded with weight-0 rows, and counts only its real rows), Keras' per-epoch progress
lines, History, validation_split, callbacks (EarlyStopping, CSVLogger, LearningRateScheduler,
ModelCheckpoint)."""
from __future__ import annotations

import io

import numpy as np
import pytest

import graphc as gc
from graphc.datasets import load_digits

TESTED_OPS = {"MatMul", "SparseSoftmaxCrossEntropyWithLogits", "Conv2D", "MaxPool"}


def _digits():
    x, y = load_digits()
    return (x / 16.0).astype(np.float32), y.astype(np.int32)


def _mlp():
    gc.set_random_seed(0)   # the model's graph takes the default graph's seed: repeatable weights
    return gc.Sequential([gc.layers.Flatten(), gc.layers.Dense(32, activation="relu"),
                          gc.layers.Dropout(0.1, seed=1), gc.layers.Dense(10, activation="softmax")])


def test_fit_trains_with_two_programs_and_keras_progress():
    x, y = _digits()
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    out = io.StringIO()
    history = model.fit(x[:1300], y[:1300], batch_size=50, epochs=12, validation_split=0.2, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1/12" and lines[1].startswith("21/21 [") and "val_accuracy" in lines[1]
    assert len(lines) == 24                                        # one line per epoch off a terminal
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"} and history.epoch == list(range(12))
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    _loss, accuracy = model.evaluate(x[1300:], y[1300:])
    assert accuracy > 0.8
    probabilities = model.predict(x[1300:1333])
    assert probabilities.shape == (33, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(1) == y[1300:1333]) > 0.8
    # 1040 training rows in batches of 50: the last has 40, padded; still one training program
    programs = [key for key in model.session._cache]
    assert len(programs) <= 4                                        # init, train, evaluate, predict
    summary = io.StringIO()
    model.summary(out=summary)
    assert "dense_1" in summary.getvalue() and f"Total params: {64 * 32 + 32 + 32 * 10 + 10:,}" in summary.getvalue()


def test_padded_last_batch_counts_only_real_rows():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = 2.0 * x
    model = gc.Sequential([gc.layers.Dense(1, kernel_initializer=gc.ones_initializer())])   # no randomness
    model.compile("sgd", "mse")
    # batches of 4: rows 8 and 9 padded with copies of row 8 at weight 0
    got = model.evaluate(x, y, batch_size=4)
    np.testing.assert_allclose(got, np.mean((x - y) ** 2), rtol=1e-6)


def test_a_conv_net_with_batch_normalization_fits():
    x, y = _digits()
    gc.set_random_seed(1)
    model = gc.Sequential([gc.layers.Conv2D(8, 3, padding="same", activation="relu"), gc.layers.BatchNormalization(),
                           gc.layers.MaxPooling2D(2), gc.layers.Flatten(), gc.layers.Dense(10)])
    model.compile(gc.train.AdamOptimizer(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x[:1000, :, :, None], y[:1000], batch_size=100, epochs=4, verbose=0)
    assert history.history["accuracy"][-1] > 0.8
    moving = model.session.variable_value("batch_normalization/moving_mean")
    assert np.any(moving != 0)                                     # trained: the averages moved
    assert model.evaluate(x[1000:, :, :, None], y[1000:])[1] > 0.7


def test_callbacks(tmp_path):
    x, y = _digits()
    model = _mlp()
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    rates = []
    schedule = gc.callbacks.LearningRateScheduler(lambda epoch, rate: rates.append(rate) or 0.5 * (epoch + 1))
    stop = gc.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)   # no epoch improves by 10
    log = gc.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    saver = gc.callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch}"), monitor="loss")
    history = model.fit(x[:500], y[:500], epochs=10, callbacks=[schedule, stop, log, saver], verbose=0)
    assert history.epoch == [0, 1]                                 # stopped after one epoch without progress
    assert rates == pytest.approx([0.01, 0.5])
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "epoch,loss,accuracy"
    assert gc.train.latest_checkpoint(str(tmp_path)).endswith("w-2")


def test_errors_are_clear():
    model = _mlp()
    with pytest.raises(gc.GraphcError, match="compile"):
        model.fit(np.zeros((4, 64), np.float32), np.zeros(4, np.int32))
    with pytest.raises(gc.GraphcError, match="needs a loss"):
        model.compile("adam", "hinge")
    with pytest.raises(gc.GraphcError, match="unknown optimizer"):
        model.compile("lamb", "mse")


def test_recurrent_embedding_and_layer_normalization_layers():
    x, y = _digits()   # each image read as 8 rows of 8 pixels
    gc.set_random_seed(2)
    model = gc.Sequential([gc.layers.LSTM(32), gc.layers.LayerNormalization(), gc.layers.Dense(10)])
    model.compile(gc.train.AdamOptimizer(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x[:1300], y[:1300], batch_size=64, epochs=6, verbose=0)
    assert model.evaluate(x[1300:], y[1300:])[1] > 0.8
    assert model.layers[0].count_params() == 4 * 32 * (8 + 32 + 1)   # TF1's fused LSTM kernel and bias
    ids = np.random.default_rng(0).integers(0, 20, size=(64, 5))
    seq = gc.Sequential([gc.layers.Embedding(20, 4), gc.layers.GRU(6, return_sequences=True),
                         gc.layers.SimpleRNN(3), gc.layers.Dense(1)])
    seq.compile("adam", "mse")
    target = ids.sum(1, keepdims=True).astype(np.float32) / 50
    history = seq.fit(ids, target, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert seq.predict(ids[:7]).shape == (7, 1)


def test_layer_objects_match_numpy():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float64, [3, 5])
        ids = gc.placeholder(gc.int32, [2, 2])
        norm, embed = gc.layers.LayerNormalization(epsilon=1e-3), gc.layers.Embedding(6, 3)
        out, rows = norm(x), embed(ids)
        again = embed(ids)                                            # the same table
        sess = gc.Session()
        sess.run(gc.global_variables_initializer())
        xv = np.random.default_rng(1).normal(size=(3, 5))
        table = sess.run("embedding/embeddings:0")
        got, r, r2 = sess.run([out, rows, again], {x: xv, ids: [[1, 5], [0, 1]]})
    np.testing.assert_allclose(got, (xv - xv.mean(1, keepdims=True)) / np.sqrt(xv.var(1, keepdims=True) + 1e-3),
                               rtol=1e-10)
    np.testing.assert_array_equal(r, table[[[1, 5], [0, 1]]])
    np.testing.assert_array_equal(r, r2)
    assert np.abs(table).max() <= 0.05 and len(embed.variables) == 1
