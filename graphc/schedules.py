"""Learning-rate schedules and the global step, as TF1's gc.train names them.

A schedule is a scalar tensor of the global step (an int64 variable that minimize(...,
global_step=step) increments), computed inside the compiled training step, so changing the
rate costs no recompilation:
  exponential_decay: lr * rate^(step / decay_steps) (the exponent floored with staircase);
  piecewise_constant: values[i] while boundaries[i-1] < step <= boundaries[i];
  cosine_decay: lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha).
"""
from __future__ import annotations

import math as pymath
from collections.abc import Sequence
from typing import Any

from .api import math
from .api.convert import constant, convert_to_tensor
from .api.variables import Variable, global_variables
from .errors import GraphcError
from .ir.dtypes import float32, int64
from .ir.graph import get_default_graph
from .ir.tensor import Tensor

GLOBAL_STEP = "global_step"


def get_or_create_global_step(graph: Any = None) -> Variable:
    """The graph's int64 step counter `global_step` (not trainable), created at 0 if missing."""
    graph = graph if graph is not None else get_default_graph()
    with graph.as_default():
        for v in global_variables():
            if v.op.name == GLOBAL_STEP:
                return v
        with graph.name_scope(None):
            return Variable(constant(0, dtype=int64), name=GLOBAL_STEP, trainable=False)


def get_global_step(graph: Any = None) -> Variable | None:
    graph = graph if graph is not None else get_default_graph()
    with graph.as_default():
        return next((v for v in global_variables() if v.op.name == GLOBAL_STEP), None)


def _step(global_step: Any, dtype: Any = float32) -> Tensor:
    if global_step is None:
        raise GraphcError("a learning-rate schedule needs global_step (gc.train.get_or_create_global_step())")
    return math.cast(convert_to_tensor(global_step), dtype)


def exponential_decay(learning_rate: Any, global_step: Any, decay_steps: Any, decay_rate: Any,
                      staircase: bool = False, name: str | None = None) -> Tensor:
    lr = convert_to_tensor(learning_rate, dtype=float32) if not isinstance(learning_rate, Tensor) else learning_rate
    exponent = math.divide(_step(global_step, lr.dtype), math.cast(convert_to_tensor(decay_steps), lr.dtype))
    if staircase:
        exponent = math.floor(exponent)
    return math.multiply(lr, math.pow(math.cast(convert_to_tensor(decay_rate), lr.dtype), exponent), name=name)


def piecewise_constant(x: Any, boundaries: Sequence[Any], values: Sequence[Any], name: str | None = None) -> Tensor:
    if len(values) != len(boundaries) + 1:
        raise GraphcError(f"piecewise_constant needs one more value than boundaries, got {len(boundaries)} "
                          f"boundaries and {len(values)} values")
    step = convert_to_tensor(x)
    out = convert_to_tensor(values[-1])
    for boundary, value in zip(reversed(boundaries), reversed(values[:-1])):
        below = math.less_equal(step, math.cast(convert_to_tensor(boundary), step.dtype))
        out = math.where(below, math.cast(convert_to_tensor(value), out.dtype), out)
    return out if name is None else math.multiply(out, 1, name=name)


def cosine_decay(learning_rate: Any, global_step: Any, decay_steps: Any, alpha: float = 0.0,
                 name: str | None = None) -> Tensor:
    lr = convert_to_tensor(learning_rate, dtype=float32) if not isinstance(learning_rate, Tensor) else learning_rate
    steps = math.cast(convert_to_tensor(decay_steps), lr.dtype)
    done = math.divide(math.minimum(_step(global_step, lr.dtype), steps), steps)
    cosine = math.multiply(0.5, math.add(1.0, math.cos(math.multiply(pymath.pi, done))))
    return math.multiply(lr, math.add(math.multiply(1.0 - alpha, cosine), alpha), name=name)


__all__ = ["cosine_decay", "exponential_decay", "get_global_step", "get_or_create_global_step",
           "piecewise_constant"]
