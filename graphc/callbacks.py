"""gc.callbacks: Keras' callbacks for Model.fit (EarlyStopping, CSVLogger, LearningRateScheduler,
ModelCheckpoint, TensorBoard) and the History that fit returns."""
from __future__ import annotations

import csv
import os
from typing import Any

import numpy as np

from . import train
from .errors import GraphcError


class History:
    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []


class Callback:
    """Keras' callback hooks; fit sets `model` before training starts."""

    model: Any = None
    writes_files = False   # under mpirun, only rank 0 runs a callback that writes files

    def on_train_begin(self, logs: dict[str, float]) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict[str, float]) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...

    def on_train_end(self, logs: dict[str, float]) -> None: ...


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
    writes_files = True

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
        rate_variable = self.model.learning_rate_variable
        if rate_variable is None:
            raise GraphcError("LearningRateScheduler sets the rate of an optimizer compile() made by name "
                              "('adam', 'sgd', ...); give the optimizer by name, or a schedule tensor to yours")
        rate = float(self.model.session.variable_value(rate_variable))
        self.model.session.load_variable(rate_variable, np.float32(self.schedule(epoch, rate)))


class ModelCheckpoint(Callback):
    """Save after each epoch, or when `monitor` improves: the weights as a TF1 checkpoint
    (gc.train.Saver, `latest_checkpoint` finds it; graphc's default), or with
    save_weights_only=False the whole model (model.save: a .gcx that gc.load_model reads)."""

    writes_files = True

    def __init__(self, filepath: str, monitor: str = "val_loss", save_best_only: bool = False,
                 save_weights_only: bool = True) -> None:
        self.filepath, self.monitor, self.save_best_only, self.best = filepath, monitor, save_best_only, np.inf
        self.save_weights_only = save_weights_only

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = logs.get(self.monitor, np.nan)
        if self.save_best_only and not value < self.best:
            return
        self.best = min(self.best, value) if not np.isnan(value) else self.best
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if not self.save_weights_only:
            self.model.save(path)
            return
        with self.model.graph.as_default():
            train.Saver(max_to_keep=None).save(self.model.session, path)


class TensorBoard(Callback):
    """Keras' TensorBoard callback: per-epoch loss and metrics as scalars (`epoch_loss`, ...) in
    `log_dir/train` and `log_dir/validation`, the model's graph (write_graph) and, every
    histogram_freq epochs, histograms of its weights."""

    writes_files = True

    def __init__(self, log_dir: str = "logs", histogram_freq: int = 0, write_graph: bool = True) -> None:
        self.log_dir, self.histogram_freq, self.write_graph = log_dir, histogram_freq, write_graph
        self.writers: dict[str, Any] = {}

    def _writer(self, kind: str) -> Any:
        from .summary import FileWriter

        if kind not in self.writers:
            self.writers[kind] = FileWriter(os.path.join(self.log_dir, kind))
        return self.writers[kind]

    def on_train_begin(self, logs: dict[str, float]) -> None:
        writer = self._writer("train")
        if self.write_graph:
            writer.add_graph(self.model.graph)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        train_logs = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        self._writer("train").add_scalars(train_logs, epoch)
        validation = {f"epoch_{k[4:]}": v for k, v in logs.items() if k.startswith("val_")}
        if validation:
            self._writer("validation").add_scalars(validation, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            for variable, value in zip(self.model.weights, self.model.get_weights()):
                self._writer("train").add_histogram(variable.op.name, value, epoch)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs: dict[str, float]) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint", "TensorBoard"]
