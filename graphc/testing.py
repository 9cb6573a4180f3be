"""Checking symbolic gradients against central finite differences.

    gc.testing.check_gradients(lambda x, w: gc.tanh(x @ w), [x_value, w_value])

builds the function in float64 on fresh placeholders, projects its output on a fixed random
direction (so every output element is checked at once), and compares gc.gradients with
(f(x + eps) - f(x - eps)) / (2 eps) element by element. A mismatch raises GradientCheckError
naming the input, the worst element, both values and the errors.

An element passes when |symbolic - numeric| <= atol + noise + rtol * max(|symbolic|, |numeric|),
where noise = 16 * machine_eps * sum(|y * direction|) / (2 eps) is the rounding error of the
numeric difference itself (negligible unless the projected output is large: then differences
below it cannot be resolved by finite differences at this eps).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .api.convert import convert_to_tensor
from .api.math import abs as abs_, multiply, reduce_sum
from .api.variables import global_variables_initializer, placeholder
from .autodiff import gradients
from .errors import GraphcError
from .ir.dtypes import float64
from .ir.graph import Graph
from .ir.tensor import Tensor
from .session import Session


class GradientCheckError(GraphcError, AssertionError):
    """Symbolic and numeric gradients disagree."""


def check_gradients(fn_or_tensors: Callable[..., Any] | Any, inputs: Sequence[Any] | None = None, *,
                    feed_dict: dict | None = None, eps: float = 1e-6, rtol: float = 1e-5,
                    atol: float = 1e-7, seed: int = 0, backend: str | None = None) -> float:
    """Compare symbolic and numeric gradients; return the worst error relative to the tolerance
    scale (<= 1 passes), or raise GradientCheckError.

    Either `fn_or_tensors` is a function of tensors and `inputs` are arrays (each becomes a
    float64 placeholder), or `fn_or_tensors` is a tensor y, `inputs` the placeholders to check
    and `feed_dict` their values (every x must be float64 for a meaningful check).
    """
    if callable(fn_or_tensors) and not isinstance(fn_or_tensors, Tensor):
        graph = Graph()
        with graph.as_default():
            values = [np.asarray(v, dtype=np.float64) for v in inputs or ()]
            xs = [placeholder(float64, v.shape, name=f"input{i}") for i, v in enumerate(values)]
            y = convert_to_tensor(fn_or_tensors(*xs))
        feeds = dict(zip(xs, values))
    else:
        y = convert_to_tensor(fn_or_tensors)
        xs = list(inputs or ())
        feeds = dict(feed_dict or {})
        graph = y.graph
        values = [np.asarray(feeds[x], dtype=x.dtype.np) for x in xs]
    if not y.dtype.is_floating:
        raise GraphcError(f"check_gradients needs a float output, got {y.dtype.name}")
    with graph.as_default():
        direction = placeholder(y.dtype, y.shape, name="direction")
        weighted = multiply(y, direction)
        objective = reduce_sum(weighted)
        magnitude = reduce_sum(abs_(weighted))
        symbolic = gradients(objective, xs, unconnected_gradients="zero")
    sess = Session(graph, backend=backend)
    if graph.variables:
        with graph.as_default():
            sess.run(global_variables_initializer())
    shape_probe = sess.run(y, feeds)
    rng = np.random.default_rng(seed)
    feeds[direction] = rng.normal(size=np.shape(shape_probe)).astype(y.dtype.np)
    analytic, size = sess.run([symbolic, magnitude], feeds)
    noise = 16 * float(np.finfo(y.dtype.np).eps) * float(size) / (2 * eps)
    worst = 0.0
    for i, (x, value, got) in enumerate(zip(xs, values, analytic)):
        numeric = np.zeros_like(value, dtype=np.float64)
        for index in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[index] += eps
            minus[index] -= eps
            f_plus = sess.run(objective, {**feeds, x: plus})
            f_minus = sess.run(objective, {**feeds, x: minus})
            numeric[index] = (float(f_plus) - float(f_minus)) / (2 * eps)
        scale = atol + noise + rtol * np.maximum(np.abs(numeric), np.abs(got))
        err = np.abs(np.asarray(got, np.float64) - numeric) / scale
        if err.size and not np.all(np.isfinite(err)):
            bad = tuple(int(j) for j in np.argwhere(~np.isfinite(err))[0])
            raise GradientCheckError(
                f"input {i} ('{x.name}'): gradient at {list(bad)} is not finite: symbolic "
                f"{np.asarray(got)[bad]!r}, numeric {numeric[bad]!r}")
        if err.size and err.max() > 1:
            at = tuple(int(j) for j in np.unravel_index(np.argmax(err), err.shape))
            raise GradientCheckError(
                f"input {i} ('{x.name}'): gradients differ most at {list(at)}: symbolic "
                f"{np.asarray(got)[at]:.8g}, numeric {numeric[at]:.8g} "
                f"(abs error {abs(np.asarray(got)[at] - numeric[at]):.3g}, allowed {scale[at]:.3g})")
        worst = max(worst, float(err.max()) if err.size else 0.0)
    return worst
