"""Keras' losses and the accuracy metric by name, per example, for Model.compile: the model
weighs each example (padded rows weigh 0) and averages, so these return one value per row."""
from __future__ import annotations

from typing import Any

from .api import math, nn
from .errors import GraphcError
from .ir.dtypes import float32, int32

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse", "mae",
          "mean_squared_error", "mean_absolute_error")
METRICS = ("accuracy", "acc")


def check_loss(loss: Any) -> None:
    if loss is None or (isinstance(loss, str) and loss not in LOSSES) or not (isinstance(loss, str) or callable(loss)):
        raise GraphcError(f"compile needs a loss: one of {', '.join(LOSSES)}, or a function (labels, outputs)")


def per_example_loss(loss: Any, labels: Any, outputs: Any) -> Any:
    """Loss `loss` (a Keras name or a function (labels, outputs)) of each row."""
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
    per = math.square(diff) if loss in ("mse", "mean_squared_error") else math.abs(diff)
    return math.reduce_mean(per, axis=list(range(1, per.ndim))) if per.ndim > 1 else per


def hits(labels: Any, outputs: Any, sparse: bool) -> Any:
    """1.0 where a row is classified right (argmax for several classes, > 0.5 for one), else 0."""
    if outputs.ndim == 2 and outputs.shape[1] not in (None, 1):
        guess = math.cast(math.argmax(outputs, axis=1), int32)
        truth = labels if sparse else math.cast(math.argmax(labels, axis=1), int32)
        return math.cast(math.equal(guess, math.cast(truth, int32)), float32)
    guess = math.cast(math.greater(outputs, 0.5), float32)
    hit = math.cast(math.equal(guess, math.cast(labels, float32)), float32)
    return math.reduce_mean(hit, axis=list(range(1, hit.ndim))) if hit.ndim > 1 else hit


def _logits(outputs: Any) -> Any:
    """The logits of a softmax layer's output (its input), else the outputs themselves."""
    node = outputs.node
    if node.type == "Softmax":
        return node.inputs[0]
    return outputs
