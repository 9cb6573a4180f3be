"""`graphc demo`: the main job end to end on a real model, written as a Keras user writes it.

Builds an MLP (or a small CNN, or an LSTM reading each image as 8 rows of 8 pixels: one loop
node) with gc.layers objects in a gc.Sequential, compiles it with Adam and sparse categorical
cross-entropy, and fits it on the 8x8 handwritten digits shipped with graphc: graphc builds the
training step (the layers, their gradients by symbolic differentiation, Adam's update) once,
compiles one training and one evaluation program, trains with a progress bar, and reports the
test accuracy.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

import numpy as np

from . import api  # noqa: F401 - installs tensor operators
from .api.layer_objects import LSTM, Conv2D, Dense, Flatten, MaxPooling2D, Reshape
from .callbacks import Callback
from .datasets import load_digits, train_test_split
from .models import Sequential
from .train import AdamOptimizer

BAR = 0.9   # the test accuracy a working graphc reaches on every model within the default epochs


def _model(layers: list, seed: int, lr: float, backend: str | None) -> Sequential:
    model = Sequential(layers)
    model.graph.seed = seed   # the layers' initial weights: the same on every run
    model.compile(AdamOptimizer(lr), "sparse_categorical_crossentropy", ["accuracy"], backend=backend)
    return model


def build_mlp(hidden: int = 64, lr: float = 0.01, seed: int = 0, backend: str | None = None) -> Sequential:
    """64 -> hidden (ReLU) -> 10 logits, Adam."""
    return _model([Flatten(), Dense(hidden, activation="relu"), Dense(10)], seed, lr, backend)


def build_cnn(filters: int = 8, lr: float = 0.01, seed: int = 0, backend: str | None = None) -> Sequential:
    """conv 3x3 (SAME, ReLU) -> max pool 2x2 -> dense 10, Adam."""
    return _model([Reshape([8, 8, 1]), Conv2D(filters, 3, padding="same", activation="relu"), MaxPooling2D(2),
                   Flatten(), Dense(10)], seed, lr, backend)


def build_lstm(units: int = 64, lr: float = 0.01, seed: int = 0, backend: str | None = None) -> Sequential:
    """An LSTM reads the image row by row, 8 steps of 8 pixels, in one loop node; a dense
    layer classifies its last output. Adam."""
    return _model([LSTM(units), Dense(10)], seed, lr, backend)


BUILDERS: dict[str, Callable[..., Sequential]] = {"mlp": build_mlp, "cnn": build_cnn, "lstm": build_lstm}


class _EpochReport(Callback):
    def __init__(self, report: Callable[[int, float, float], None]) -> None:
        self.report = report

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.report(epoch + 1, logs["loss"], logs["accuracy"])


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
    images = (images / 16.0).astype(np.float32)
    x_train, y_train, x_test, y_test = train_test_split(images, labels, test_fraction=0.25, seed=0)
    if model not in BUILDERS:
        raise ValueError(f"unknown demo model {model!r}: choose one of {', '.join(BUILDERS)}")
    t0 = time.perf_counter()
    m = BUILDERS[model](backend=backend)
    compiled = m.build(x_train, y_train, batch_size=64)   # the graph, then the training step compiled
    total_ms = (time.perf_counter() - t0) * 1e3
    ops = m.graph.get_operations()
    grads = sum(1 for n in ops if n.name.startswith("gradients/"))
    parameters = sum(layer.count_params() for layer in m.layers)
    print(f"graphc demo: {model.upper()} on {len(images)} handwritten 8x8 digits "
          f"({len(y_train)} train / {len(y_test)} test), backend {m.session.backend!r}", file=out)
    print(f"graph: {len(ops)} ops ({grads} from symbolic differentiation), {parameters} parameters", file=out)
    counts = compiled.program.op_counts()
    top = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    print(f"training step built and compiled for batch 64 in {total_ms:.1f} ms: {compiled.program}", file=out)
    print(f"  most used ops: {top}", file=out)
    t0 = time.perf_counter()
    m.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0, callbacks=[_EpochReport(_progress(out, epochs))])
    train_s = time.perf_counter() - t0
    _, accuracy = m.evaluate(x_test, y_test)
    steps = epochs * -(-len(y_train) // 64)
    print(f"trained {epochs} epochs ({steps} steps of batch 64) in {train_s * 1e3:.0f} ms, "
          f"{train_s / steps * 1e6:.0f} us per step; test accuracy: {accuracy:.4f}", file=out)
    return accuracy
