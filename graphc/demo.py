"""`graphc demo`: the main job end to end on a real model.

Builds an MLP (or a small CNN, or an LSTM reading each image as 8 rows of 8 pixels: one loop
node, gc.nn.dynamic_rnn) classifier for the 8x8 handwritten digits shipped with graphc,
differentiates it symbolically (AdamOptimizer.minimize -> gc.gradients), compiles the training
step for the batch shape, trains it through Session.run with a progress bar, and reports the
test accuracy. The TF1 code here is what a user would write.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TextIO

import numpy as np

from . import api  # noqa: F401 - installs tensor operators
from .api import array, math, nn
from .api.random import random_normal
from .api.rnn_cell import LSTMCell
from .api.variables import Variable, global_variables_initializer, placeholder
from .datasets import load_digits, train_test_split
from .ir.dtypes import float32, int32, int64
from .ir.graph import Graph
from .ir.node import Node
from .ir.tensor import Tensor
from .session import Session
from .train import AdamOptimizer


@dataclass
class Model:
    graph: Graph
    images: Tensor       # (batch, 8, 8) float32, pixel values scaled to [0, 1]
    labels: Tensor       # (batch,) int32
    loss: Tensor
    accuracy: Tensor
    train_op: Node
    parameters: int


def _dense(x: Tensor, n_in: int, n_out: int, name: str, seed: int) -> Tensor:
    w = Variable(random_normal([n_in, n_out], stddev=float(np.sqrt(2.0 / n_in)), seed=seed), name=f"{name}/kernel")
    b = Variable(array.zeros([n_out]), name=f"{name}/bias")
    return math.matmul(x, w) + b


def _finish(graph: Graph, images: Tensor, labels: Tensor, logits: Tensor, lr: float) -> Model:
    loss = math.reduce_mean(nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    correct = math.equal(math.argmax(logits, 1), math.cast(labels, int64))
    accuracy = math.reduce_mean(math.cast(correct, float32))
    train_op = AdamOptimizer(lr).minimize(loss)
    parameters = sum(int(np.prod(v.shape)) for v in graph.get_collection("trainable_variables"))
    return Model(graph, images, labels, loss, accuracy, train_op, parameters)


def build_mlp(hidden: int = 64, lr: float = 0.01, seed: int = 0) -> Model:
    """64 -> hidden (ReLU) -> 10, Adam."""
    graph = Graph()
    with graph.as_default():
        images = placeholder(float32, [None, 8, 8], name="images")
        labels = placeholder(int32, [None], name="labels")
        x = array.reshape(images, [-1, 64])
        h = nn.relu(_dense(x, 64, hidden, "hidden", seed))
        logits = _dense(h, hidden, 10, "logits", seed + 1)
        return _finish(graph, images, labels, logits, lr)


def build_cnn(filters: int = 8, lr: float = 0.01, seed: int = 0) -> Model:
    """conv 3x3 (SAME, ReLU) -> max pool 2x2 -> dense 10, Adam."""
    graph = Graph()
    with graph.as_default():
        images = placeholder(float32, [None, 8, 8], name="images")
        labels = placeholder(int32, [None], name="labels")
        x = array.expand_dims(images, -1)
        kernel = Variable(random_normal([3, 3, 1, filters], stddev=float(np.sqrt(2.0 / 9)), seed=seed),
                          name="conv/kernel")
        conv = nn.relu(nn.bias_add(nn.conv2d(x, kernel, strides=1, padding="SAME"),
                                   Variable(array.zeros([filters]), name="conv/bias")))
        pooled = nn.max_pool2d(conv, ksize=2, strides=2, padding="VALID")
        logits = _dense(array.reshape(pooled, [-1, 4 * 4 * filters]), 4 * 4 * filters, 10, "logits", seed + 1)
        return _finish(graph, images, labels, logits, lr)


def build_lstm(units: int = 64, lr: float = 0.01, seed: int = 0) -> Model:
    """An LSTM (TF1's LSTMCell) reads the image row by row, 8 steps of 8 pixels, in one loop
    node (gc.nn.dynamic_rnn); a dense layer classifies its last output. Adam."""
    graph = Graph()
    with graph.as_default():
        images = placeholder(float32, [None, 8, 8], name="images")
        labels = placeholder(int32, [None], name="labels")
        _, state = nn.dynamic_rnn(LSTMCell(units, seed=seed), images, dtype=float32)
        logits = _dense(state.h, units, 10, "logits", seed + 1)
        return _finish(graph, images, labels, logits, lr)


BUILDERS: dict[str, Callable[[], Model]] = {"mlp": build_mlp, "cnn": build_cnn, "lstm": build_lstm}


def fit(model: Model, sess: Session, images: np.ndarray, labels: np.ndarray, epochs: int, batch: int = 64,
        seed: int = 0, on_epoch: Callable[[int, float, float], None] | None = None) -> None:
    """Minibatch training; on_epoch(epoch, mean loss, train accuracy) after each epoch."""
    rng = np.random.default_rng(seed)
    n = len(labels) - len(labels) % batch  # whole batches only: one compiled shape
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(labels))[:n]
        losses, accs = [], []
        for lo in range(0, n, batch):
            idx = order[lo:lo + batch]
            _, loss, acc = sess.run([model.train_op, model.loss, model.accuracy],
                                    {model.images: images[idx], model.labels: labels[idx]})
            losses.append(loss)
            accs.append(acc)
        if on_epoch is not None:
            on_epoch(epoch, float(np.mean(losses)), float(np.mean(accs)))


def evaluate(model: Model, sess: Session, images: np.ndarray, labels: np.ndarray) -> float:
    return float(sess.run(model.accuracy, {model.images: images, model.labels: labels}))


def _progress(out: TextIO, epochs: int) -> Callable[[int, float, float], None]:
    live = getattr(out, "isatty", lambda: False)()

    def report(epoch: int, loss: float, acc: float) -> None:
        filled = round(24 * epoch / epochs)
        line = f"  [{'#' * filled}{'.' * (24 - filled)}] epoch {epoch:2d}/{epochs}  loss {loss:.4f}  train accuracy {acc:.3f}"
        if live:
            print("\r" + line, end="\n" if epoch == epochs else "", file=out, flush=True)
        elif epoch == epochs or epoch % max(1, epochs // 5) == 0 or epoch == 1:
            print(line, file=out)
    return report


def run_demo(out: TextIO, epochs: int = 20, backend: str | None = None, model: str = "mlp") -> float:
    """Train and evaluate on the digits; returns the test accuracy."""
    images, labels = load_digits()
    images = images / 16.0
    x_train, y_train, x_test, y_test = train_test_split(images, labels, test_fraction=0.25, seed=0)
    t0 = time.perf_counter()
    if model not in BUILDERS:
        raise ValueError(f"unknown demo model {model!r}: choose one of {', '.join(BUILDERS)}")
    m = BUILDERS[model]()
    build_ms = (time.perf_counter() - t0) * 1e3
    ops = m.graph.get_operations()
    grads = sum(1 for n in ops if n.name.startswith("gradients/"))
    with m.graph.as_default():
        init = global_variables_initializer()
    sess = Session(m.graph, backend=backend)
    print(f"graphc demo: {model.upper()} on {len(images)} handwritten 8x8 digits "
          f"({len(y_train)} train / {len(y_test)} test), backend {sess.backend!r}", file=out)
    print(f"graph: {len(ops)} ops ({grads} from symbolic differentiation), {m.parameters} parameters, "
          f"built in {build_ms:.1f} ms", file=out)
    sess.run(init)
    t0 = time.perf_counter()
    compiled = sess.compile([m.train_op, m.loss, m.accuracy], {m.images: x_train[:64], m.labels: y_train[:64]})
    compile_ms = (time.perf_counter() - t0) * 1e3
    counts = compiled.program.op_counts()
    top = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    print(f"training step compiled for batch 64 in {compile_ms:.1f} ms: {compiled.program}", file=out)
    print(f"  most used ops: {top}", file=out)
    t0 = time.perf_counter()
    fit(m, sess, x_train, y_train, epochs, on_epoch=_progress(out, epochs))
    train_s = time.perf_counter() - t0
    accuracy = evaluate(m, sess, x_test, y_test)
    steps = epochs * (len(y_train) // 64)
    print(f"trained {epochs} epochs ({steps} steps of batch 64) in {train_s * 1e3:.0f} ms, "
          f"{train_s / steps * 1e6:.0f} us per step; test accuracy: {accuracy:.4f}", file=out)
    return accuracy
