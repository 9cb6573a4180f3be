"""Keras' models on graphc: functional gc.Model(inputs, outputs) and gc.Sequential, with
compile / fit / evaluate / predict / summary / save.

A model is a graph with input placeholders and output tensors. compile() names the loss,
metrics and optimizer; the first fit or evaluate adds to the graph, once, a training step (the
loss, the metrics and the optimizer's update) and an evaluation step sharing the variables:
two programs in all. Layers follow the training flag: a functional model's layers read the
graph's learning phase (gc.Input makes it), which the training step feeds True; a Sequential
calls its layers twice when building, once with training=True and once with False.

Every batch is fed at the one size fit was given: the last, short batch of an epoch is padded
with weight-0 rows, so the loss and metrics count only real rows and nothing is compiled again.
fit shuffles with a seed, holds out validation_split (the last rows, as Keras does) or takes
validation_data, prints Keras' per-epoch progress (graphc/progress.py) and returns a History.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

from . import train
from .api import math
from .api.layer_objects import Layer, layers_called_in
from .api.variables import Variable, global_variables, placeholder, trainable_variables, variables_initializer
from .callbacks import Callback, History
from .errors import GraphcError
from .ir.dtypes import as_dtype, bool_, float32, int32, int64
from .ir.graph import Graph, get_default_graph
from .ir.tensor import Tensor
from .model_graph import Forward, Training, functional_forward, variables_used
from .model_losses import METRICS, check_loss, hits, per_example_loss
from .model_parallel import (
    broadcast_variables,
    data_parallel_world,
    global_count,
    global_fetches,
    real_rows,
    shards,
    steps_of,
    summing_optimizer,
)
from .progress import Progress
from .session import Session

OPTIMIZERS = {"sgd": lambda lr: train.GradientDescentOptimizer(lr), "adam": lambda lr: train.AdamOptimizer(lr),
              "rmsprop": lambda lr: train.RMSPropOptimizer(lr), "adagrad": lambda lr: train.AdagradOptimizer(lr)}
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001, "adagrad": 0.01}


class Model:
    """Keras' functional model: `gc.Model(inputs, outputs)` over tensors built from gc.Input
    placeholders with layer objects (or any ops); lists of inputs / outputs are allowed."""

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None) -> None:
        self.name = name or "model"
        self.session: Session | None = None
        self.stop_training = False
        self.learning_rate_variable: str | None = None   # the variable compile() made for a named optimizer
        self._compiled: dict[str, Any] | None = None
        self._training: Training | None = None
        self._summary_rows: list[tuple[str, str, str, int]] | None = None   # a loaded model's
        self.graph: Graph | None = None
        self._forward: Forward | None = None
        if inputs is None and outputs is None:
            return   # a Sequential, or a model load_model fills in
        self._forward = functional_forward(inputs, outputs)
        self.graph = self._forward.inputs[0].graph

    # ------------------------------------------------------------------ compile and build
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Sequence[str] | None = None,
                loss_weights: Sequence[float] | None = None, backend: str | None = None) -> None:
        """Name the loss (a Keras name or a function (labels, outputs); a list: one per output),
        the metrics ('accuracy') and the optimizer (a name or a gc.train optimizer)."""
        for each in (loss if isinstance(loss, (list, tuple)) else [loss]):
            check_loss(each)
        unknown = [m for m in (metrics or []) if m not in METRICS]
        if unknown:
            raise GraphcError(f"unknown metric(s) {unknown}: graphc's models compute 'accuracy'")
        if isinstance(optimizer, str) and optimizer.lower() not in OPTIMIZERS:
            raise GraphcError(f"unknown optimizer {optimizer!r}: use one of {sorted(OPTIMIZERS)} or a gc.train optimizer")
        self._compiled = {"optimizer": optimizer, "loss": loss, "metrics": ["accuracy" for _ in (metrics or [])][:1],
                          "loss_weights": list(loss_weights) if loss_weights is not None else None,
                          "backend": backend}
        self._training = None

    def _prepare(self, xs: list[np.ndarray], batch_size: int) -> int:
        """Make the forward graph if it is not made yet; the batch size to feed."""
        if self._forward is None:
            raise GraphcError("this model has no inputs and outputs yet")
        return self._forward.batch_size or batch_size

    def _losses(self) -> list[Any]:
        loss, n = self._compiled["loss"], len(self._forward.eval)
        losses = list(loss) if isinstance(loss, (list, tuple)) else [loss] * n
        if len(losses) != n:
            raise GraphcError(f"compile got {len(losses)} losses for a model with {n} outputs")
        return losses

    def _ensure_training(self, ys: list[np.ndarray]) -> Training:
        if self._training is not None:
            return self._training
        if self._compiled is None:
            raise GraphcError("call model.compile(optimizer, loss, metrics) before fit / evaluate")
        f, c = self._forward, self._compiled
        losses = self._losses()
        weights_of = c["loss_weights"] or [1.0] * len(losses)
        multi = not f.single_output
        world = data_parallel_world()
        with self.graph.as_default():
            labels = []
            for name, out, y, loss in zip(f.output_names, f.eval, ys, losses):
                dtype = int32 if loss == "sparse_categorical_crossentropy" else out.dtype
                labels.append(placeholder(dtype, [f.batch_size, *y.shape[1:]], name=f"{name}_target" if multi else "y"))
            weights = placeholder(float32, [f.batch_size], name="sample_weight")
            name = c["optimizer"].lower() if isinstance(c["optimizer"], str) else None
            if name:
                rate = Variable(np.float32(DEFAULT_LR[name]), name="learning_rate", trainable=False)
                self.learning_rate_variable = rate.op.name
            optimizer = OPTIMIZERS[name](rate) if name else c["optimizer"]
            steps: dict[str, dict[str, Any]] = {}
            count = math.reduce_sum(weights)
            if world is not None:   # several processes: the loss of the whole step (graphc/model_parallel.py)
                count, optimizer = global_count(count), summing_optimizer(optimizer)
            denominator = math.maximum(count, 1.0)

            def weighted_mean(per_row: Any) -> Any:
                per_row = math.cast(per_row, float32) if per_row.dtype != float32 else per_row
                return math.divide(math.reduce_sum(math.multiply(per_row, weights)), denominator)

            for kind in ("train", "eval"):
                outs = getattr(f, kind)

                parts, fetches = [], {}
                for oname, out, label, loss, w in zip(f.output_names, outs, labels, losses, weights_of):
                    part = weighted_mean(per_example_loss(loss, label, out))
                    parts.append(math.multiply(part, float(w)) if w != 1.0 else part)
                    if multi:
                        fetches[f"{oname}_loss"] = part
                for oname, out, label, loss in zip(f.output_names, outs, labels, losses):
                    if c["metrics"]:
                        key = f"{oname}_accuracy" if multi else "accuracy"
                        fetches[key] = weighted_mean(hits(label, out, loss == "sparse_categorical_crossentropy"))
                total = parts[0]
                for part in parts[1:]:
                    total = math.add(total, part)
                fetches = {"loss": total, **fetches}
                if kind == "train":
                    fetches["step"] = optimizer.minimize(total, var_list=self._trainable(total))
                steps[kind] = global_fetches(fetches) if world is not None else fetches
            sync = broadcast_variables(global_variables(self.graph)) if world is not None else None
        self._training = Training(labels, weights, steps["train"], steps["eval"])
        self._ready_session()
        if sync is not None:
            self.session.run(sync)   # every rank starts from rank 0's weights
        return self._training

    def _trainable(self, loss: Tensor) -> list[Variable]:
        """The graph's trainable variables the loss depends on (not another model's)."""
        used = variables_used([loss])
        return [v for v in trainable_variables(self.graph) if v.op.name in used]

    def _ready_session(self) -> Session:
        """The model's session, with every variable of its graph initialized (once)."""
        if self.session is None:
            backend = self._compiled["backend"] if self._compiled else None
            self.session = Session(self.graph, backend=backend)
        fresh = [v for v in global_variables(self.graph) if self.session.variable_value(v.op.name) is None]
        if fresh:
            with self.graph.as_default():
                self.session.run(variables_initializer(fresh))
        return self.session

    # ------------------------------------------------------------------ data
    def _arrays(self, data: Any, tensors: list[Tensor], names: list[str], what: str) -> list[np.ndarray]:
        """`data` (an array, a list, or a dict by name) as one array per tensor, of its dtype."""
        if isinstance(data, dict):
            missing = [n for n in names if n not in data]
            if missing:
                raise GraphcError(f"no {what} given for {missing} (the dict has {sorted(data)})")
            data = [data[n] for n in names]
        elif len(tensors) == 1:
            data = [_first(data)]
        elif not isinstance(data, (list, tuple)):
            raise GraphcError(f"the model has {len(tensors)} {what}s: give a list of arrays or a dict by name")
        if len(data) != len(tensors):
            raise GraphcError(f"the model has {len(tensors)} {what}s, got {len(data)} arrays")
        out = []
        for array, tensor in zip(data, tensors):
            array = np.asarray(array)
            if array.dtype.kind not in "biuf":
                raise GraphcError(f"fit / evaluate / predict take numbers, got {what}s of dtype {array.dtype}")
            out.append(array.astype(tensor.dtype.np, copy=False) if tensor is not None else array)
        return out

    def _inputs(self, x: Any) -> list[np.ndarray]:
        f = self._forward
        return self._arrays(x, f.inputs, [t.node.name for t in f.inputs], "input")

    def _targets(self, y: Any) -> list[np.ndarray]:
        f = self._forward
        tensors = self._training.labels if self._training is not None else [None] * len(f.eval)
        return self._arrays(y, tensors, f.output_names, "target")

    # ------------------------------------------------------------------ running
    @staticmethod
    def _batches(n: int, batch_size: int, order: np.ndarray) -> Any:
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            real = len(idx)
            if real < batch_size:   # pad the last batch: weight-0 rows keep the compiled shape
                idx = np.concatenate([idx, np.repeat(idx[:1], batch_size - real)])
            yield idx, real

    def _step(self, kind: str) -> tuple[list[str], list[Any]]:
        """The names and fetches of one step (a list: session.run's hot path takes it as is)."""
        fetches = getattr(self._training, kind)
        names = [k for k in fetches if k != "step" or kind == "train"]
        return names, [fetches[k] for k in names]

    def _feed(self, kind: str, xs: list[np.ndarray], ys: list[np.ndarray], idx: np.ndarray,
              weights: np.ndarray) -> dict[Tensor, Any]:
        t = self._training
        feed: dict[Tensor, Any] = {p: a[idx] for p, a in zip(self._forward.inputs, xs)}
        feed.update({p: a[idx] for p, a in zip(t.labels, ys)})
        feed[t.sample_weight] = weights
        if kind == "train":
            feed.update(self._forward.train_feed)
        return feed

    def _run_epoch(self, kind: str, xs: list[np.ndarray], ys: list[np.ndarray], batch_size: int,
                   order: np.ndarray, progress: Any = None) -> dict[str, float]:
        """One pass over the rows `order`: this rank's shard of them under mpirun (the fetched
        values are then the whole step's, the same on every rank)."""
        names, fetches = self._step(kind)
        mine, real_len, lengths = shards(order, data_parallel_world())
        sums: dict[str, float] = {}
        seen = 0
        steps = steps_of(lengths, batch_size)
        for step in range(steps):
            first = step * batch_size
            idx = mine[first:first + batch_size]
            if len(idx) < batch_size:   # pad the last batch: weight-0 rows keep the compiled shape
                idx = np.concatenate([idx, np.repeat(mine[:1], batch_size - len(idx))])
            weights = (np.arange(first, first + batch_size) < real_len).astype(np.float32)
            values = self.session.run(fetches, self._feed(kind, xs, ys, idx, weights))
            real = real_rows(lengths, first, batch_size)
            for k, v in zip(names, values):
                if k != "step":
                    sums[k] = sums.get(k, 0.0) + float(v) * real
            seen += real
            if progress is not None:
                progress(step + 1, steps, {k: v / seen for k, v in sums.items()})
        return {k: v / max(seen, 1) for k, v in sums.items()}

    def build(self, x: Any, y: Any, batch_size: int = 32) -> Any:
        """Build the training and evaluation steps for data like (x, y) and compile the training
        step now (fit would on its first batch); returns the compiled run, whose `program`
        describes it. Nothing runs and no weight changes."""
        size = self._prepare(_first(x), batch_size)
        xs = self._inputs(x)
        self._ensure_training(self._targets(y))
        ys = self._targets(y)
        idx = np.arange(size) % len(xs[0])
        feed = self._feed("train", xs, ys, idx, np.ones(size, np.float32))
        _, fetches = self._step("train")
        return self.session.compile([self.graph.as_graph_element(f) for f in fetches],
                                    self.session._convert_feeds(feed))

    def fit(self, x: Any, y: Any, batch_size: int = 32, epochs: int = 1, verbose: int = 1,
            callbacks: Sequence[Callback] | None = None, validation_split: float = 0.0, validation_data: Any = None,
            shuffle: bool = True, seed: int = 0, initial_epoch: int = 0, out: TextIO | None = None) -> History:
        """Train for `epochs` passes over (x, y); see the module docstring."""
        size = self._prepare(_first(x), batch_size)
        xs = self._inputs(x)
        ys = self._targets(y)
        n = len(xs[0])
        if any(len(a) != n for a in xs + ys):
            raise GraphcError(f"fit: the inputs and targets have different numbers of rows "
                              f"({[len(a) for a in xs + ys]})")
        if validation_data is None and validation_split:
            cut = int(n * (1.0 - validation_split))
            validation_data = ([a[cut:] for a in xs], [a[cut:] for a in ys])
            xs, ys = [a[:cut] for a in xs], [a[:cut] for a in ys]
            n = cut
        self._ensure_training(ys)
        ys = self._targets(ys)
        if validation_data is not None:
            vx, vy = self._inputs(validation_data[0]), self._targets(validation_data[1])
        history, out = History(), out or sys.stdout
        self.stop_training = False
        world = data_parallel_world()
        if world is not None and world.rank != 0:   # rank 0 shows progress and writes files
            verbose = 0
            callbacks = [cb for cb in callbacks or [] if not cb.writes_files]
        for cb in callbacks or []:
            cb.model = self
            cb.on_train_begin({})
        logs: dict[str, float] = {}
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks or []:
                cb.on_epoch_begin(epoch, logs)
            order = np.random.default_rng(seed + epoch).permutation(n) if shuffle else np.arange(n)
            started = time.perf_counter()
            bar = Progress(out, epoch, epochs) if verbose else None
            logs = self._run_epoch("train", xs, ys, size, order, bar.step if bar else None)
            if validation_data is not None:
                logs.update({f"val_{k}": v for k, v in
                             self._run_epoch("eval", vx, vy, size, np.arange(len(vx[0]))).items()})
            if bar is not None:
                bar.done(logs, time.perf_counter() - started)
            history.epoch.append(epoch)
            for k, v in logs.items():
                history.history.setdefault(k, []).append(v)
            for cb in callbacks or []:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in callbacks or []:
            cb.on_train_end(logs)
        return history

    def evaluate(self, x: Any, y: Any, batch_size: int = 32, verbose: int = 0) -> Any:
        """The loss (a float), or [loss, *per-output losses, *metrics] as Keras returns them."""
        size = self._prepare(_first(x), batch_size)
        xs = self._inputs(x)
        self._ensure_training(self._targets(y))
        ys = self._targets(y)
        logs = self._run_epoch("eval", xs, ys, size, np.arange(len(xs[0])))
        return list(logs.values()) if len(logs) > 1 else logs["loss"]

    def predict(self, x: Any, batch_size: int = 32) -> Any:
        """The outputs for x (in inference form), computed in batches; a list for several outputs."""
        size = self._prepare(_first(x), batch_size)
        xs = self._inputs(x)
        self._ready_session()
        f = self._forward
        parts: list[list[np.ndarray]] = [[] for _ in f.eval]
        for idx, real in self._batches(len(xs[0]), size, np.arange(len(xs[0]))):
            values = self.session.run(f.eval, {p: a[idx] for p, a in zip(f.inputs, xs)})
            for store, v in zip(parts, values):
                store.append(v[:real])
        outs = [np.concatenate(p) if p else np.zeros((0,)) for p in parts]
        return outs[0] if f.single_output else outs

    # ------------------------------------------------------------------ weights, summary, files
    @property
    def weights(self) -> list[Variable]:
        """The variables the outputs depend on (trainable ones and moving statistics), in the
        order they were made; not optimizer slots or the learning rate."""
        if self._forward is None:
            return []
        used = variables_used(self._forward.eval)
        return [v for v in global_variables(self.graph) if v.op.name in used]

    @property
    def trainable_variables(self) -> list[Variable]:
        return [v for v in self.weights if v.trainable]

    def get_weights(self) -> list[np.ndarray]:
        self._ready_session()
        return [self.session.variable_value(v.op.name) for v in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        variables = self.weights
        if len(weights) != len(variables):
            raise GraphcError(f"set_weights got {len(weights)} arrays for {len(variables)} weights")
        self._ready_session()
        for v, w in zip(variables, weights):
            if tuple(np.shape(w)) != tuple(v.shape):
                raise GraphcError(f"set_weights: {v.op.name} has shape {list(v.shape)}, got {list(np.shape(w))}")
            self.session.load_variable(v.op.name, w)

    def _layers(self) -> list[Layer]:
        return layers_called_in(self.graph) if self.graph is not None else []

    def summary_rows(self) -> list[tuple[str, str, str, int]]:
        """(layer name, type, output shape, parameters) per layer, as summary() prints them."""
        if self._summary_rows is not None:
            return self._summary_rows
        return [(layer._scope or layer.name or type(layer).__name__, type(layer).__name__,
                 _shape_text(getattr(layer, "output_shape", None)), layer.count_params()) for layer in self._layers()]

    def summary(self, out: TextIO | None = None) -> None:
        """Keras' table: each layer's name and type, output shape and parameter count."""
        out = out or sys.stdout
        rows = self.summary_rows()
        print(f'Model: "{self.name}"', file=out)
        print(f"{'Layer (type)':<36}{'Output Shape':<22}{'Param #':>10}", file=out)
        for name, kind, shape, params in rows:
            print(f"{name + ' (' + kind + ')':<36}{shape:<22}{params:>10,}", file=out)
        weights = self.weights
        total = sum(int(np.prod(v.shape, dtype=np.int64)) for v in weights) or sum(r[3] for r in rows)
        trainable = sum(int(np.prod(v.shape, dtype=np.int64)) for v in weights if v.trainable)
        print(f"Total params: {total:,}", file=out)
        print(f"Trainable params: {trainable:,}", file=out)
        print(f"Non-trainable params: {total - trainable:,}", file=out)

    def save(self, path: str) -> str:
        """Write the model (graph, weights, optimizer state, compile settings) to one `.gcx`
        file that gc.load_model reads back; nothing in it is code. Returns the path."""
        from .model_files import save_model

        return save_model(self, path)


class Sequential(Model):
    """Layers applied in order; the graph is made on first use, from the data's shape."""

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None) -> None:
        super().__init__(name=name or "sequential")
        self.layers = list(layers or [])
        self.graph = Graph()
        self.graph.seed = get_default_graph().seed   # gc.set_random_seed before building makes it repeatable

    def add(self, layer: Layer) -> None:
        if self._forward is not None:
            raise GraphcError("the model is built already: add layers before the first fit / evaluate / predict")
        self.layers.append(layer)

    def __call__(self, x: Any, training: Any = None) -> Any:
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def _layers(self) -> list[Layer]:
        return self.layers

    def _prepare(self, x: np.ndarray, batch_size: int) -> int:
        if self._forward is not None:
            return self._forward.batch_size
        x = np.asarray(x)
        with self.graph.as_default():
            xs = placeholder(_input_dtype(x.dtype), [batch_size, *x.shape[1:]], name="x")
            train_out = self(xs, training=True)
            eval_out = self(xs, training=False)
        self._forward = Forward([xs], [train_out], [eval_out], ["output"], batch_size=batch_size)
        return batch_size

    def fit(self, x: Any, y: Any, batch_size: int = 32, *args: Any, **kwargs: Any) -> History:
        if self._forward is not None and batch_size != self._forward.batch_size:
            raise GraphcError(f"the model was built for batch_size {self._forward.batch_size}; use that size")
        return super().fit(x, y, batch_size, *args, **kwargs)


def _first(x: Any) -> Any:
    """The first input's data (a Sequential sizes its placeholder from it)."""
    if isinstance(x, dict):
        return next(iter(x.values()))
    if isinstance(x, (list, tuple)) and len(x) == 1:
        return x[0]
    return x


def _input_dtype(dtype: np.dtype) -> Any:
    """The graphc dtype inputs of this NumPy dtype are fed as (integer ids stay integers)."""
    if dtype.kind == "f":
        return as_dtype(dtype) if dtype.itemsize >= 4 else float32
    if dtype.kind in "iu":
        return int32 if dtype.itemsize <= 4 else int64
    if dtype.kind == "b":
        return bool_
    raise GraphcError(f"fit / evaluate / predict take numbers, got inputs of dtype {dtype}")


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


__all__ = ["Model", "Sequential"]
