"""The graph side of a Keras-style model: which tensors are its inputs and outputs (Forward),
what its first fit added (Training), and the checks and walks over the graph that gc.Model
needs (its inputs must be placeholders, its outputs need no other; the variables it uses)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .api.layer_objects import existing_learning_phase
from .errors import GraphcError
from .ir.node import ancestors
from .ir.tensor import Tensor


@dataclass
class Forward:
    """The model's graph between its inputs and outputs: the outputs to train on (layers in
    training form, or the learning phase fed True) and to evaluate and predict with."""

    inputs: list[Tensor]
    train: list[Tensor]
    eval: list[Tensor]
    output_names: list[str]
    single_input: bool = True
    single_output: bool = True
    train_feed: dict[Tensor, np.ndarray] = field(default_factory=dict)
    batch_size: int | None = None   # a Sequential's placeholders have a fixed batch size


@dataclass
class Training:
    """What the first fit / evaluate added: label and weight placeholders, the two steps."""

    labels: list[Tensor]
    sample_weight: Tensor
    train: dict[str, Any]
    eval: dict[str, Any]


def functional_forward(inputs: Any, outputs: Any) -> Forward:
    """Check a functional model's inputs (placeholders of one graph) and outputs (tensors of
    it that need no other placeholder) and describe them."""
    ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    if not ins or not outs:
        raise GraphcError("gc.Model needs at least one input and one output")
    for t in ins:
        if not isinstance(t, Tensor) or t.node.type != "Placeholder":
            raise GraphcError(f"gc.Model's inputs must be placeholders (gc.Input(shape=...)), got {t!r}")
    for t in outs:
        if not isinstance(t, Tensor):
            raise GraphcError(f"gc.Model's outputs must be tensors, got {type(t).__name__}")
    graph = ins[0].graph
    if any(t.graph is not graph for t in ins + outs):
        raise GraphcError("gc.Model's inputs and outputs must be in one graph")
    given = {t.node.name for t in ins}
    needed = sorted(n.name for n in ancestors(outs) if n.type == "Placeholder" and n.name not in given)
    if needed:
        raise GraphcError(f"the outputs depend on placeholders that are not inputs of the model: {needed}",
                          hint="pass them in inputs=[...]")
    phase = existing_learning_phase(graph)
    feed = {phase: np.array(True)} if phase is not None else {}
    return Forward(ins, outs, outs, output_names(outs), not isinstance(inputs, (list, tuple)),
                   not isinstance(outputs, (list, tuple)), feed)


def output_names(outs: list[Tensor]) -> list[str]:
    """Keras names outputs after their layers: the first scope of each output's op."""
    names: list[str] = []
    for t in outs:
        base = t.node.name.split("/")[0]
        name, k = base, 0
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names


def variables_used(tensors: Sequence[Tensor]) -> set[str]:
    return {n.attrs["var"] for n in ancestors(tensors) if n.type in ("VariableV2", "ReadVariable")}
