"""Real models (the demo's gc.Sequential models) trained end to end on scikit-learn's digits
through Model.fit, on every backend."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="needs the test extras: pip install -e \".[test]\"")

from sklearn.datasets import load_digits as sklearn_digits

from graphc.datasets import load_digits, train_test_split
from graphc.demo import build_cnn, build_mlp
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
    model = build_mlp(hidden=64, lr=0.01, seed=0, backend=backend)
    history = model.fit(x_train, y_train, batch_size=64, epochs=20, verbose=0)
    losses = history.history["loss"]
    _, accuracy = model.evaluate(x_test, y_test, batch_size=64)
    assert losses[-1] < 0.2 * losses[0]
    assert accuracy >= 0.95, accuracy


@pytest.mark.parametrize("backend", CPU_BACKENDS + [pytest.param("cuda", marks=pytest.mark.gpu)])
def test_cnn_learns_digits(digits, backend):
    x_train, y_train, x_test, y_test = digits
    model = build_cnn(filters=8, lr=0.01, seed=0, backend=backend)
    _, before = model.evaluate(x_test, y_test, batch_size=64)
    model.fit(x_train, y_train, batch_size=64, epochs=8, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=64)
    assert before < 0.5 and accuracy >= 0.93, (before, accuracy)
