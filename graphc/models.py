"""gc.Sequential: Keras' compile / fit / evaluate / predict / summary on graphc.

The model builds its graph once, on first use, for one batch size: a training step (the
layers called with training=True, the loss, the optimizer's update) and an evaluation step
(training=False, sharing the variables). Every batch is fed at that size: the last, short
batch of an epoch is padded with weight-0 rows, so the loss and metrics count only real rows
and nothing is compiled again (two programs in all). fit shuffles with a seed, holds out
validation_split (the last rows, as Keras does) or takes validation_data, prints Keras'
per-epoch progress (a bar on a terminal, one line per epoch otherwise, nothing with verbose=0)
and returns a History. Callbacks: EarlyStopping, CSVLogger, LearningRateScheduler,
ModelCheckpoint (gc.train.Saver).
"""
from __future__ import annotations

import csv
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from . import train
from .api import math, nn
from .api.layer_objects import Layer
from .api.variables import Variable, global_variables_initializer, placeholder
from .errors import GraphcError
from .ir.dtypes import as_dtype, bool_, float32, int32, int64
from .ir.graph import Graph, get_default_graph
from .session import Session

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse", "mae")
OPTIMIZERS = {"sgd": lambda lr: train.GradientDescentOptimizer(lr), "adam": lambda lr: train.AdamOptimizer(lr),
              "rmsprop": lambda lr: train.RMSPropOptimizer(lr), "adagrad": lambda lr: train.AdagradOptimizer(lr)}
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001, "adagrad": 0.01}


class History:
    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []


class Callback:
    model: Any = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, mode: str = "auto",
                 restore_best_weights: bool = False) -> None:
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.sign = -1.0 if mode == "max" or (mode == "auto" and "acc" in monitor) else 1.0
        self.restore_best_weights = restore_best_weights
        self.best, self.wait, self.best_weights = np.inf, 0, None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        score = self.sign * value
        if score < self.best - self.min_delta:
            self.best, self.wait = score, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class CSVLogger(Callback):
    def __init__(self, filename: str, separator: str = ",") -> None:
        self.filename, self.separator, self.rows = filename, separator, []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.rows.append({"epoch": epoch, **logs})
        with open(self.filename, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.rows[0]), delimiter=self.separator)
            writer.writeheader()
            writer.writerows(self.rows)


class LearningRateScheduler(Callback):
    """Set the learning rate to schedule(epoch, rate) before each epoch (a variable in the step)."""

    def __init__(self, schedule: Any) -> None:
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None:
        if not isinstance(self.model._compiled["optimizer"], str):
            raise GraphcError("LearningRateScheduler sets the rate of an optimizer compile() made by name "
                              "('adam', 'sgd', ...); give the optimizer by name, or a schedule tensor to yours")
        rate = float(self.model.session.variable_value(self.model._lr.op.name))
        self.model.session.load_variable(self.model._lr.op.name, np.float32(self.schedule(epoch, rate)))


class ModelCheckpoint(Callback):
    """Save the weights (gc.train.Saver) after each epoch, or when `monitor` improves."""

    def __init__(self, filepath: str, monitor: str = "val_loss", save_best_only: bool = False) -> None:
        self.filepath, self.monitor, self.save_best_only, self.best = filepath, monitor, save_best_only, np.inf

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = logs.get(self.monitor, np.nan)
        if self.save_best_only and not value < self.best:
            return
        self.best = min(self.best, value) if not np.isnan(value) else self.best
        with self.model.graph.as_default():
            train.Saver(max_to_keep=None).save(self.model.session, self.filepath.format(epoch=epoch + 1, **logs))


class Sequential:
    """Layers applied in order; Keras' training interface."""

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        self.layers = list(layers or [])
        self.name = name or "sequential"
        self.graph = Graph()
        self.graph.seed = get_default_graph().seed   # gc.set_random_seed before building makes it repeatable
        self.session: Session | None = None
        self._built: dict[str, Any] | None = None
        self._compiled: dict[str, Any] | None = None
        self.stop_training = False

    def add(self, layer: Layer) -> None:
        self.layers.append(layer)

    def __call__(self, x: Any, training: Any = False) -> Any:
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    # ------------------------------------------------------------------ compile and build
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Sequence[str] | None = None,
                backend: str | None = None) -> None:
        if loss is None or (isinstance(loss, str) and loss not in LOSSES):
            raise GraphcError(f"compile needs a loss: one of {', '.join(LOSSES)}, or a function (labels, outputs)")
        unknown = [m for m in (metrics or []) if m not in ("accuracy", "acc")]
        if unknown:
            raise GraphcError(f"unknown metric(s) {unknown}: graphc's models compute 'accuracy'")
        if isinstance(optimizer, str) and optimizer.lower() not in OPTIMIZERS:
            raise GraphcError(f"unknown optimizer {optimizer!r}: use one of {sorted(OPTIMIZERS)} or a gc.train optimizer")
        self._compiled = {"optimizer": optimizer, "loss": loss, "metrics": ["accuracy" for _ in (metrics or [])],
                          "backend": backend}
        self._built = None

    def _build(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, Any]:
        if self._compiled is None:
            raise GraphcError("call model.compile(optimizer, loss, metrics) before fit / evaluate")
        if self._built is not None and self._built["batch_size"] == batch_size:
            return self._built
        if self._built is not None:
            raise GraphcError(f"the model was built for batch_size {self._built['batch_size']}; use that size")
        c = self._compiled
        with self.graph.as_default():
            xs = placeholder(_input_dtype(x.dtype), [batch_size, *x.shape[1:]], name="x")
            sparse = c["loss"] == "sparse_categorical_crossentropy"
            ys = placeholder(int32 if sparse else float32, [batch_size, *y.shape[1:]], name="y")
            weights = placeholder(float32, [batch_size], name="sample_weight")
            train_out = self(xs, training=True)
            eval_out = self(xs, training=False)
            name = c["optimizer"].lower() if isinstance(c["optimizer"], str) else None
            self._lr = Variable(np.float32(DEFAULT_LR.get(name, 0.001)), name="learning_rate", trainable=False)
            optimizer = OPTIMIZERS[name](self._lr) if name else c["optimizer"]
            steps = {}
            for kind, out in (("train", train_out), ("eval", eval_out)):
                per_example = self._per_example_loss(c["loss"], ys, out)
                total = math.reduce_sum(weights)
                loss = math.divide(math.reduce_sum(math.multiply(per_example, weights)), math.maximum(total, 1.0))
                fetches = {"loss": loss, "output": out}
                if c["metrics"]:
                    fetches["accuracy"] = math.divide(
                        math.reduce_sum(math.multiply(self._hits(ys, out, sparse), weights)), math.maximum(total, 1.0))
                if kind == "train":
                    fetches["step"] = optimizer.minimize(loss)
                steps[kind] = fetches
            self.session = Session(self.graph, backend=c["backend"])
            self.session.run(global_variables_initializer())
        self._built = {"batch_size": batch_size, "x": xs, "y": ys, "w": weights, **steps}
        return self._built

    @staticmethod
    def _per_example_loss(loss: Any, labels: Any, outputs: Any) -> Any:
        if callable(loss):
            return loss(labels, outputs)
        if loss == "sparse_categorical_crossentropy":   # outputs are probabilities (a softmax layer) or logits
            return nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=_logits(outputs))
        if loss == "categorical_crossentropy":
            return nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=_logits(outputs))
        if loss == "binary_crossentropy":
            p = math.clip_by_value(outputs, 1e-7, 1 - 1e-7)
            per = -(labels * math.log(p) + (1.0 - labels) * math.log(1.0 - p))
            return math.reduce_mean(per, axis=list(range(1, per.ndim))) if per.ndim > 1 else per
        diff = outputs - labels
        per = math.square(diff) if loss == "mse" else math.abs(diff)
        return math.reduce_mean(per, axis=list(range(1, per.ndim))) if per.ndim > 1 else per

    @staticmethod
    def _hits(labels: Any, outputs: Any, sparse: bool) -> Any:
        if outputs.ndim == 2 and outputs.shape[1] not in (None, 1):
            guess = math.cast(math.argmax(outputs, axis=1), int32)
            truth = labels if sparse else math.cast(math.argmax(labels, axis=1), int32)
            return math.cast(math.equal(guess, math.cast(truth, int32)), float32)
        guess = math.cast(math.greater(outputs, 0.5), float32)
        hit = math.cast(math.equal(guess, math.cast(labels, float32)), float32)
        return math.reduce_mean(hit, axis=list(range(1, hit.ndim))) if hit.ndim > 1 else hit

    # ------------------------------------------------------------------ running
    def _batches(self, n: int, batch_size: int, order: np.ndarray) -> Any:
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            real = len(idx)
            if real < batch_size:   # pad the last batch: weight-0 rows keep the compiled shape
                idx = np.concatenate([idx, np.repeat(idx[:1], batch_size - real)])
            yield idx, real

    def _run_epoch(self, kind: str, x: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray,
                   progress: Any = None) -> dict[str, float]:
        b = self._build(x, y, batch_size)
        fetches = {k: v for k, v in b[kind].items() if k != "output"}
        sums: dict[str, float] = {}
        seen = 0
        steps = -(-len(order) // batch_size)
        for step, (idx, real) in enumerate(self._batches(len(order), batch_size, order)):
            weights = np.zeros(batch_size, np.float32)
            weights[:real] = 1.0
            out = self.session.run(fetches, {b["x"]: x[idx], b["y"]: y[idx], b["w"]: weights})
            for k in ("loss", "accuracy"):
                if k in out:
                    sums[k] = sums.get(k, 0.0) + float(out[k]) * real
            seen += real
            if progress is not None:
                progress(step + 1, steps, {k: v / seen for k, v in sums.items()})
        return {k: v / max(seen, 1) for k, v in sums.items()}

    def fit(self, x: Any, y: Any, batch_size: int = 32, epochs: int = 1, verbose: int = 1,
            callbacks: Sequence[Callback] | None = None, validation_split: float = 0.0, validation_data: Any = None,
            shuffle: bool = True, seed: int = 0, out: TextIO | None = None) -> History:
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise GraphcError(f"fit: {len(x)} inputs and {len(y)} labels")
        if validation_data is None and validation_split:
            cut = int(len(x) * (1.0 - validation_split))
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        history, out = History(), out or sys.stdout
        self.stop_training = False
        for cb in callbacks or []:
            cb.model = self
        self._build(x, y, batch_size)
        for epoch in range(epochs):
            logs: dict[str, float] = {}
            for cb in callbacks or []:
                cb.on_epoch_begin(epoch, logs)
            order = np.random.default_rng(seed + epoch).permutation(len(x)) if shuffle else np.arange(len(x))
            started = time.perf_counter()
            bar = _Progress(out, epoch, epochs) if verbose else None
            logs = self._run_epoch("train", x, y, batch_size, order, bar.step if bar else None)
            if validation_data is not None:
                vx, vy = np.asarray(validation_data[0]), np.asarray(validation_data[1])
                logs.update({f"val_{k}": v for k, v in
                             self._run_epoch("eval", vx, vy, batch_size, np.arange(len(vx))).items()})
            if bar is not None:
                bar.done(logs, time.perf_counter() - started)
            history.epoch.append(epoch)
            for k, v in logs.items():
                history.history.setdefault(k, []).append(v)
            for cb in callbacks or []:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return history

    def evaluate(self, x: Any, y: Any, batch_size: int = 32, verbose: int = 0) -> Any:
        x, y = np.asarray(x), np.asarray(y)
        logs = self._run_epoch("eval", x, y, self._batch(batch_size), np.arange(len(x)))
        return [logs["loss"], logs["accuracy"]] if "accuracy" in logs else logs["loss"]

    def predict(self, x: Any, batch_size: int = 32) -> np.ndarray:
        x = np.asarray(x)
        size = self._batch(batch_size)
        b = self._build(x, np.zeros((len(x), *self._y_shape()), np.float32), size)
        outs = []
        for idx, real in self._batches(len(x), size, np.arange(len(x))):
            outs.append(self.session.run(b["eval"]["output"], {b["x"]: x[idx]})[:real])
        return np.concatenate(outs) if outs else np.zeros((0,))

    def _batch(self, batch_size: int) -> int:
        return self._built["batch_size"] if self._built is not None else batch_size

    def _y_shape(self) -> tuple[int, ...]:
        return tuple(self._built["y"].shape[1:]) if self._built is not None else ()

    # ------------------------------------------------------------------ weights, summary
    def get_weights(self) -> list[np.ndarray]:
        return [self.session.variable_value(v.op.name) for layer in self.layers for v in layer.variables]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        variables = [v for layer in self.layers for v in layer.variables]
        for v, w in zip(variables, weights):
            self.session.load_variable(v.op.name, w)

    def summary(self, out: TextIO | None = None) -> None:
        out = out or sys.stdout
        rows = [(getattr(layer, "_scope", None) or type(layer).__name__, type(layer).__name__, layer.count_params())
                for layer in self.layers]
        print(f'Model: "{self.name}"', file=out)
        print(f"{'Layer':<28}{'Type':<22}{'Param #':>10}", file=out)
        for name, kind, params in rows:
            print(f"{name:<28}{kind:<22}{params:>10,}", file=out)
        print(f"Total params: {sum(r[2] for r in rows):,}", file=out)


def _input_dtype(dtype: np.dtype) -> Any:
    """The graphc dtype inputs of this NumPy dtype are fed as (integer ids stay integers)."""
    if dtype.kind == "f":
        return as_dtype(dtype) if dtype.itemsize >= 4 else float32
    if dtype.kind in "iu":
        return int32 if dtype.itemsize <= 4 else int64
    if dtype.kind == "b":
        return bool_
    raise GraphcError(f"fit / evaluate / predict take numbers, got inputs of dtype {dtype}")


def _logits(outputs: Any) -> Any:
    """The logits of a softmax layer's output (its input), else the outputs themselves."""
    node = outputs.node
    if node.type == "Softmax":
        return node.inputs[0]
    return outputs


class _Progress:
    """Keras' progress display: a bar redrawn per step on a terminal, one line per epoch otherwise."""

    def __init__(self, out: TextIO, epoch: int, epochs: int) -> None:
        self.out, self.tty = out, bool(getattr(out, "isatty", lambda: False)())
        self.started = time.perf_counter()
        print(f"Epoch {epoch + 1}/{epochs}", file=out)
        self.steps = 0

    def step(self, step: int, steps: int, logs: dict[str, float]) -> None:
        self.steps = steps
        if not self.tty:
            return
        width = 30
        filled = int(width * step / steps)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / step * (steps - step)
        metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        self.out.write(f"\r{step}/{steps} [{'=' * filled}{'.' * (width - filled)}] - ETA: {eta:.0f}s - {metrics}")
        self.out.flush()

    def done(self, logs: dict[str, float], seconds: float) -> None:
        per_step = seconds / max(self.steps, 1)
        pace = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
        metrics = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        line = f"{self.steps}/{self.steps} [{'=' * 30}] - {seconds:.0f}s {pace} - {metrics}"
        self.out.write(("\r" if self.tty else "") + line + "\n")
        self.out.flush()


__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint",
           "Sequential"]
