"""gc.summary: scalars and histograms computed in the same compiled run as the training step,
written by FileWriter as event files that TensorBoard's own reader loads (values, histograms,
the graph), the Keras TensorBoard callback, and clear errors."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import graphc as gc

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

TESTED_OPS = {"Square", "Mean"}


def _read(logdir: str):
    """TensorBoard's reader over one run directory (everything kept)."""
    acc = event_accumulator.EventAccumulator(logdir, size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _regression():
    x = gc.placeholder(gc.float32, [None, 3], name="x")
    w = gc.Variable(np.array([[1.0], [-2.0], [0.5]], np.float32), name="w")
    with gc.name_scope("metrics"):
        loss = gc.reduce_mean(gc.square(gc.matmul(x, w) - 1.0))
        gc.summary.scalar("loss", loss)
    gc.summary.histogram("weights", w)
    step = gc.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, w, loss, step


def test_summaries_are_computed_in_the_training_run_and_tensorboard_reads_them(tmp_path, backend):
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(8, 3)).astype(np.float32) for _ in range(4)]
    with gc.Graph().as_default():
        x, w, loss, step = _regression()
        merged = gc.summary.merge_all()
        sess = gc.Session(backend=backend)
        sess.run(gc.global_variables_initializer())
        losses, weights = [], []
        with gc.summary.FileWriter(str(tmp_path), sess.graph) as writer:
            for i, batch in enumerate(batches):
                weights.append(sess.run(w))
                value, fetched_loss, _ = sess.run([merged, loss, step], {x: batch})
                assert isinstance(value, bytes)
                losses.append(fetched_loss)
                writer.add_summary(value, i)
        programs = len(sess._cache)
        sess.run([merged, loss, step], {x: batches[0]})
        assert len(sess._cache) == programs                              # summaries ride in the same program
    run = _read(str(tmp_path))
    scalars = run.Scalars("metrics/loss")
    assert [e.step for e in scalars] == [0, 1, 2, 3]
    # the loss before each step, as NumPy computes it from the weights of that moment
    expected = [np.mean((b @ wv - 1.0) ** 2) for b, wv in zip(batches, weights)]
    np.testing.assert_allclose([e.value for e in scalars], expected, rtol=1e-5)
    np.testing.assert_allclose([e.value for e in scalars], losses, rtol=1e-6)
    histogram = run.Histograms("weights")[1].histogram_value
    assert histogram.num == 3 and histogram.min == pytest.approx(weights[1].min())
    assert histogram.sum == pytest.approx(weights[1].sum(), rel=1e-6)
    nodes = {n.name: n for n in run.Graph().node}
    assert nodes["metrics/Mean"].op in ("Mean", "ReduceMean") and "metrics/Square" in nodes["metrics/Mean"].input


def test_the_keras_tensorboard_callback(tmp_path):
    x = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int32)
    gc.set_random_seed(0)
    model = gc.Sequential([gc.layers.Dense(8, activation="relu"), gc.layers.Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    board = gc.callbacks.TensorBoard(str(tmp_path), histogram_freq=1)
    history = model.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, callbacks=[board], verbose=0)
    train, validation = _read(str(tmp_path / "train")), _read(str(tmp_path / "validation"))
    np.testing.assert_allclose([e.value for e in train.Scalars("epoch_loss")], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([e.value for e in validation.Scalars("epoch_accuracy")],
                               history.history["val_accuracy"], rtol=1e-6)
    assert len(train.Histograms("dense/kernel")) == 3 and train.Graph().node
    assert len(glob.glob(os.path.join(str(tmp_path), "train", "events.out.tfevents.*"))) == 1


def test_summary_errors_are_clear(tmp_path):
    with gc.Graph().as_default():
        v = gc.constant([1.0, 2.0])
        with pytest.raises(gc.GraphcError, match="needs a scalar.*shape"):
            gc.summary.scalar("v", v)
        assert gc.summary.merge_all() is None
        bad = gc.summary.histogram("bad", gc.log(v - 2.0))     # log(0) and log(-1)
        good = gc.summary.scalar("first", v[0])
        with gc.Session() as sess:
            with pytest.raises(gc.GraphcError, match="'bad'.*NaN or infinite"):
                sess.run(bad)
            writer = gc.summary.FileWriter(str(tmp_path))
            with pytest.raises(gc.GraphcError, match="not the summary itself"):
                writer.add_summary(good, 0)
            with pytest.raises(gc.GraphcError, match="not a serialized Summary"):
                writer.add_summary(b"\xff\xff\xff", 0)
            writer.add_summary(sess.run(gc.summary.merge([good])), 7)
            writer.close()
    assert [e.step for e in _read(str(tmp_path)).Scalars("first")] == [7]
