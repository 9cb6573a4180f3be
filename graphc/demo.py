"""`graphc demo`: the main job end to end on a small problem.

Builds a softmax-regression classifier for three Gaussian blobs, prints the graph, compiles the
training step into a Program (shown), trains it with gc.function updates and reports accuracy.
The gradient is written by hand here; symbolic differentiation (gc.gradients) replaces it once
the autodiff layer lands.
"""
from __future__ import annotations

import time
from typing import TextIO

import numpy as np

from . import api  # noqa: F401 - installs tensor operators
from .api import array
from .api import math as gm
from .api import nn
from .api.variables import Variable, placeholder
from .function import function
from .ir.dtypes import float32
from .ir.graph import Graph


def make_blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 2.5], [-2.2, -1.2], [2.2, -1.2]], np.float32)
    labels = rng.integers(0, 3, size=n)
    points = centers[labels] + rng.normal(scale=0.9, size=(n, 2)).astype(np.float32)
    return points.astype(np.float32), labels.astype(np.int32)


def run_demo(out: TextIO, steps: int = 200, backend: str | None = None) -> float:
    """Train and evaluate; returns the test accuracy."""
    graph = Graph()
    with graph.as_default():
        x = placeholder(float32, [None, 2], name="x")
        y = placeholder(float32, [None, 3], name="y_onehot")
        w = Variable(np.zeros((2, 3), np.float32), name="w")
        b = Variable(np.zeros(3, np.float32), name="b")
        logits = gm.matmul(x, w) + b
        loss = gm.reduce_mean(nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))
        accuracy = gm.reduce_mean(gm.cast(gm.equal(gm.argmax(logits, 1), gm.argmax(y, 1)), float32))
        # d loss / d logits = (softmax - y) / n, by hand for now
        err = (nn.softmax(logits) - y) / gm.cast(array.shape(x)[0], float32)
        grad_w = gm.matmul(x, err, transpose_a=True)
        grad_b = gm.reduce_sum(err, axis=0)
        lr = 0.5
        train = function([x, y], [loss, accuracy], updates=[(w, w - lr * grad_w), (b, b - lr * grad_b)],
                         backend=backend, name="train_step")
        evaluate = function([x, y], accuracy, session=train.session, name="evaluate")

    ops = graph.get_operations()
    counts: dict[str, int] = {}
    for n in ops:
        counts[n.type] = counts.get(n.type, 0) + 1
    print(f"graphc demo: softmax regression on 3 Gaussian blobs (backend {train.session.backend!r})", file=out)
    print(f"graph: {len(ops)} ops, {len(graph.variables)} variables, 9 parameters", file=out)
    print("ops: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())), file=out)

    x_train, y_train = make_blobs(600, seed=1)
    x_test, y_test = make_blobs(300, seed=2)
    onehot_train = np.eye(3, dtype=np.float32)[y_train]
    onehot_test = np.eye(3, dtype=np.float32)[y_test]

    batch = 64
    for step in range(steps):
        lo = (step * batch) % len(x_train)
        t0 = time.perf_counter()
        loss_value, acc = train(x_train[lo:lo + batch], onehot_train[lo:lo + batch])
        if step == 0:
            ms = (time.perf_counter() - t0) * 1e3
            print(f"first step, compile included: {ms:.1f} ms; the compiled {train.program}:", file=out)
            print(train.program.listing(), file=out)
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss_value):.4f}  batch accuracy {float(acc):.3f}", file=out)
    test_accuracy = float(evaluate(x_test, onehot_test))
    print(f"test accuracy: {test_accuracy:.3f}", file=out)
    return test_accuracy
