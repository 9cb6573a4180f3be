"""Real models trained end to end on scikit-learn's digits through Session.run."""
from __future__ import annotations

import numpy as np
import pytest
pytest.importorskip("sklearn", reason="needs the test extras: pip install -e \".[test]\"")

from sklearn.datasets import load_digits as sklearn_digits

import graphc as gc
from graphc.datasets import load_digits, train_test_split
from graphc.demo import build_cnn, build_mlp, evaluate, fit
from tests.conftest import CPU_BACKENDS

TESTED_OPS = {"Conv2D", "MaxPool", "SparseSoftmaxCrossEntropyWithLogits", "MatMul", "Relu"}


@pytest.fixture(scope="module")
def digits():
    data = sklearn_digits()
    images = (data.images / 16.0).astype(np.float32)
    return train_test_split(images, data.target.astype(np.int32), test_fraction=0.25, seed=0)


def test_bundled_digits_are_scikit_learns():
    images, labels = load_digits()
    data = sklearn_digits()
    np.testing.assert_array_equal(images, data.images.astype(np.float32))
    np.testing.assert_array_equal(labels, data.target)
    assert images.shape == (1797, 8, 8) and labels.dtype == np.int32


def test_mlp_reaches_95_percent(digits, backend):
    x_train, y_train, x_test, y_test = digits
    model = build_mlp(hidden=64, lr=0.01, seed=0)
    losses = []
    with gc.Session(model.graph, backend=backend) as sess:
        with model.graph.as_default():
            sess.run(gc.global_variables_initializer())
        fit(model, sess, x_train, y_train, epochs=20, on_epoch=lambda e, loss, acc: losses.append(loss))
        accuracy = evaluate(model, sess, x_test, y_test)
    assert losses[-1] < 0.2 * losses[0]
    assert accuracy >= 0.95, accuracy


@pytest.mark.parametrize("backend", CPU_BACKENDS + [pytest.param("cuda", marks=pytest.mark.gpu)])
def test_cnn_learns_digits(digits, backend):
    x_train, y_train, x_test, y_test = digits
    model = build_cnn(filters=8, lr=0.01, seed=0)
    with gc.Session(model.graph, backend=backend) as sess:
        with model.graph.as_default():
            sess.run(gc.global_variables_initializer())
        before = evaluate(model, sess, x_test, y_test)
        fit(model, sess, x_train, y_train, epochs=8)
        accuracy = evaluate(model, sess, x_test, y_test)
    assert before < 0.5 and accuracy >= 0.93, (before, accuracy)
