"""Model.save and gc.load_model: a model as one `.gcx` file.

The file is the model's graph as gc.save_graph writes it (every variable's value from the
model's session, optimizer slots included) plus a "model" field: plain JSON naming the graph's
tensors and nodes that are the model's inputs, outputs, labels and training steps, and its
compile settings. A loaded model is a gc.Model over the loaded graph: it predicts, evaluates
and goes on training where the saved one stopped, without the Python code that built it.

The file is untrusted: the "model" field is checked field by field (types, sizes, and that
every name is a tensor or node of the loaded graph of the right kind), and any problem is a
GraphFileError naming the field. Nothing in it is executed.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .errors import GraphcError, GraphFileError
from .io.files import read_regular
from .io.format import DEFAULT_LIMITS, Limits
from .io.load import load_graph_and_model
from .io.save import save_graph
from .ir.graph import Graph
from .ir.node import Node
from .ir.tensor import Tensor
from .model_graph import Forward, Training
from .model_losses import LOSSES
from .models import OPTIMIZERS, Model

MAX_ITEMS = 100_000
MAX_TEXT = 4096
_FIELDS = {"kind", "name", "inputs", "train_outputs", "eval_outputs", "output_names", "single_input", "single_output",
           "batch_size", "learning_phase", "layers", "compile", "training"}


def save_model(model: Model, path: str | os.PathLike) -> str:
    """Write `model` to `path` (see the module docstring); returns the path."""
    f = model._forward
    if f is None:
        raise GraphcError("the model is not built yet: a Sequential is built by its first fit, evaluate or predict "
                          "(from the data's shape); call one of them before save")
    names = lambda ts: [t.name for t in ts]
    phase = next(iter(f.train_feed), None)
    meta: dict[str, Any] = {
        "kind": type(model).__name__, "name": model.name,
        "inputs": names(f.inputs), "train_outputs": names(f.train), "eval_outputs": names(f.eval),
        "output_names": list(f.output_names), "single_input": f.single_input, "single_output": f.single_output,
        "batch_size": f.batch_size, "learning_phase": phase.name if phase is not None else None,
        "layers": [list(row) for row in model.summary_rows()],
        "compile": _compile_settings(model._compiled),
        "training": None,
    }
    t = model._training
    if t is not None:
        meta["training"] = {
            "labels": names(t.labels), "sample_weight": t.sample_weight.name,
            "learning_rate": model.learning_rate_variable,
            "train": {k: _element_name(v) for k, v in t.train.items()},
            "eval": {k: _element_name(v) for k, v in t.eval.items()},
        }
    return save_graph(path, model.graph, session=model.session, model=meta)


def load_model(path: str | os.PathLike, limits: Limits | None = None) -> Model:
    """A gc.Model read from a file Model.save wrote: it predicts, evaluates and trains on.
    Raises GraphFileError for a file that is not a valid graphc model; executes nothing."""
    limits = limits or DEFAULT_LIMITS
    where = os.fspath(path)
    data = read_regular(where, f"model file {where!r}", limits.max_file_size)
    graph, meta = load_graph_and_model(data, where, limits)
    if meta is None:
        raise GraphFileError(f"{where}: a graph file without a model (written by gc.save_graph, not Model.save)",
                             hint="read it with gc.load_graph")
    return _rebuild(graph, _Checker(graph, where), meta)


def _compile_settings(compiled: dict[str, Any] | None) -> dict[str, Any] | None:
    """The compile settings when they are names (a function or an optimizer object cannot be
    written; a model saved after training keeps its built training step either way)."""
    if compiled is None or not isinstance(compiled["optimizer"], str):
        return None
    losses = compiled["loss"] if isinstance(compiled["loss"], (list, tuple)) else [compiled["loss"]]
    if not all(isinstance(loss, str) for loss in losses):
        return None
    return {"optimizer": compiled["optimizer"], "loss": list(losses), "several": isinstance(compiled["loss"], (list, tuple)),
            "metrics": list(compiled["metrics"]), "loss_weights": compiled["loss_weights"]}


def _element_name(value: Any) -> str:
    return value.name if isinstance(value, (Tensor, Node)) else str(value)


class _Checker:
    """Typed reads of the untrusted "model" field; errors name the field."""

    def __init__(self, graph: Graph, where: str) -> None:
        self.graph, self.where = graph, where

    def fail(self, field: str, what: str) -> GraphFileError:
        return GraphFileError(f"{self.where}: model field {field!r} {what}")

    def obj(self, value: Any, field: str, required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a JSON object, got {type(value).__name__}")
        if set(value) != required:
            raise self.fail(field, f"must have exactly the fields {sorted(required)}, got {sorted(map(str, value))[:20]}")
        return value

    def text(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise self.fail(field, f"must be a string of at most {MAX_TEXT} characters")
        return value

    def flag(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, "must be true or false")
        return value

    def items(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            raise self.fail(field, f"must be a list of at most {MAX_ITEMS} items")
        return value

    def count(self, value: Any, field: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 48:
            raise self.fail(field, "must be a non-negative integer")
        return value

    def tensor(self, value: Any, field: str, op: str | None = None) -> Tensor:
        name = self.text(value, field)
        try:
            element = self.graph.as_graph_element(name)
        except GraphcError:
            element = None
        if not isinstance(element, Tensor):
            raise self.fail(field, f"names {name!r}, which is no tensor of the file's graph")
        if op is not None and element.node.type != op:
            raise self.fail(field, f"names {name!r}, a {element.node.type} where a {op} is needed")
        return element

    def element(self, value: Any, field: str) -> Tensor | Node:
        name = self.text(value, field)
        try:
            return self.graph.as_graph_element(name)
        except GraphcError:
            raise self.fail(field, f"names {name!r}, which is no tensor or node of the file's graph") from None

    def tensors(self, value: Any, field: str, op: str | None = None, at_least: int = 1) -> list[Tensor]:
        out = [self.tensor(v, f"{field}[{i}]", op) for i, v in enumerate(self.items(value, field))]
        if len(out) < at_least:
            raise self.fail(field, f"must name at least {at_least} tensor(s)")
        return out


def _rebuild(graph: Graph, check: _Checker, meta: Any) -> Model:
    meta = check.obj(meta, "model", _FIELDS)
    inputs = check.tensors(meta["inputs"], "inputs", "Placeholder")
    train_outputs = check.tensors(meta["train_outputs"], "train_outputs")
    eval_outputs = check.tensors(meta["eval_outputs"], "eval_outputs")
    names = [check.text(v, f"output_names[{i}]") for i, v in enumerate(check.items(meta["output_names"], "output_names"))]
    if not len(train_outputs) == len(eval_outputs) == len(names):
        raise check.fail("output_names", "must have one name per output, as train_outputs and eval_outputs")
    batch = meta["batch_size"]
    batch = None if batch is None else check.count(batch, "batch_size")
    phase = None if meta["learning_phase"] is None else check.tensor(meta["learning_phase"], "learning_phase",
                                                                      "PlaceholderWithDefault")
    forward = Forward(inputs, train_outputs, eval_outputs, names, check.flag(meta["single_input"], "single_input"),
                      check.flag(meta["single_output"], "single_output"),
                      {phase: np.array(True)} if phase is not None else {}, batch)
    if (forward.single_input and len(inputs) != 1) or (forward.single_output and len(names) != 1):
        raise check.fail("single_input", "says one input / output where the file lists several")
    model = Model(name=check.text(meta["name"], "name"))
    model.graph, model._forward = graph, forward
    rows = []
    for i, row in enumerate(check.items(meta["layers"], "layers")):
        row = check.items(row, f"layers[{i}]")
        if len(row) != 4:
            raise check.fail(f"layers[{i}]", "must be [name, type, output shape, parameters]")
        rows.append((check.text(row[0], f"layers[{i}][0]"), check.text(row[1], f"layers[{i}][1]"),
                     check.text(row[2], f"layers[{i}][2]"), check.count(row[3], f"layers[{i}][3]")))
    model._summary_rows = rows
    if meta["compile"] is not None:
        model._compiled = _read_compile(check, meta["compile"], len(names))
    if meta["training"] is not None:
        model._training, model.learning_rate_variable = _read_training(check, meta["training"], len(names))
    return model


def _read_compile(check: _Checker, value: Any, outputs: int) -> dict[str, Any]:
    c = check.obj(value, "compile", {"optimizer", "loss", "several", "metrics", "loss_weights"})
    optimizer = check.text(c["optimizer"], "compile.optimizer")
    if optimizer.lower() not in OPTIMIZERS:
        raise check.fail("compile.optimizer", f"is {optimizer!r}, not one of {sorted(OPTIMIZERS)}")
    losses = [check.text(v, f"compile.loss[{i}]") for i, v in enumerate(check.items(c["loss"], "compile.loss"))]
    if len(losses) != outputs or any(loss not in LOSSES for loss in losses):
        raise check.fail("compile.loss", f"must name one of {LOSSES} per output")
    metrics = [check.text(v, "compile.metrics") for v in check.items(c["metrics"], "compile.metrics")]
    if any(m != "accuracy" for m in metrics) or len(metrics) > 1:
        raise check.fail("compile.metrics", "may only hold 'accuracy'")
    weights = c["loss_weights"]
    if weights is not None:
        weights = check.items(weights, "compile.loss_weights")
        if len(weights) != outputs or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise check.fail("compile.loss_weights", "must be one number per output")
    several = check.flag(c["several"], "compile.several")
    return {"optimizer": optimizer, "loss": losses if several else losses[0], "metrics": metrics,
            "loss_weights": weights, "backend": None}


def _read_training(check: _Checker, value: Any, outputs: int) -> tuple[Training, str | None]:
    t = check.obj(value, "training", {"labels", "sample_weight", "learning_rate", "train", "eval"})
    labels = check.tensors(t["labels"], "training.labels", "Placeholder")
    if len(labels) != outputs:
        raise check.fail("training.labels", "must name one label placeholder per output")
    weights = check.tensor(t["sample_weight"], "training.sample_weight", "Placeholder")
    rate = t["learning_rate"]
    if rate is not None and check.text(rate, "training.learning_rate") not in check.graph.variables:
        raise check.fail("training.learning_rate", f"names {rate!r}, which is no variable of the file's graph")
    steps = {}
    for kind in ("train", "eval"):
        raw = t[kind]
        if not isinstance(raw, dict) or "loss" not in raw or len(raw) > 2 * outputs + 3:
            raise check.fail(f"training.{kind}", "must be an object of fetches with a 'loss'")
        fetches = {}
        for key, name in raw.items():
            key = check.text(key, f"training.{kind}")
            if key == "step" and kind == "train":
                fetches[key] = check.element(name, f"training.{kind}.{key}")
            else:
                fetches[key] = check.tensor(name, f"training.{kind}.{key}")
                if fetches[key].shape != ():
                    raise check.fail(f"training.{kind}.{key}", "must name a scalar")
        steps[kind] = fetches
    if "step" not in steps["train"]:
        raise check.fail("training.train", "lacks the training step ('step')")
    return Training(labels, weights, steps["train"], steps["eval"]), rate


__all__ = ["load_model", "save_model"]
