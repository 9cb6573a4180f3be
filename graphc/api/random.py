"""Random tensors with TF1 seed rules.

With a graph seed (`gc.set_random_seed`) and no op seed, each op gets a seed from its position
in the graph, so re-building the same graph draws the same numbers. With an op seed and no graph
seed, a fixed default graph seed is used. With neither, the numbers differ from graph to graph.
Within a session, each run draws new numbers; two sessions start from the same stream.
"""
from __future__ import annotations

import secrets
from typing import Any

import numpy as np

from ..ir.dtypes import as_dtype, float32
from ..ir.graph import Graph, get_default_graph
from ..ir.tensor import Tensor
from .array import _shape_operand
from .control import identity
from .convert import apply1, constant, convert_to_tensor, elementwise_op, graph_of, is_tensor_like

DEFAULT_GRAPH_SEED = 87654321


def set_random_seed(seed: int) -> None:
    """Set the graph-level seed of the default graph (TF1's tf.set_random_seed)."""
    get_default_graph().seed = int(seed)


def get_seed(op_seed: int | None, graph: Graph) -> tuple[int, int]:
    if graph.seed is not None:
        return graph.seed, graph.version if op_seed is None else int(op_seed)
    if op_seed is not None:
        return DEFAULT_GRAPH_SEED, int(op_seed)
    return secrets.randbits(63), secrets.randbits(63)


def _draw(op: str, shape: Any, dtype: Any, seed: int | None, graph: Graph) -> Tensor:
    with graph.as_default():
        static, dynamic = _shape_operand(shape, "random shape")
        s1, s2 = get_seed(seed, graph)
        attrs = {"shape": static, "dtype": as_dtype(dtype), "seed": s1, "seed2": s2}
        return apply1(op, dynamic, attrs, graph=graph)


def random_normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = float32,
                  seed: int | None = None, name: str | None = None) -> Tensor:
    """Normal values with the given mean and standard deviation."""
    graph = graph_of([shape, mean, stddev])
    z = _draw("RandomStandardNormal", shape, dtype, seed, graph)
    with graph.as_default():
        # Numbers (NumPy scalars included, e.g. stddev=np.sqrt(2 / fan_in)) take the draw's
        # dtype, as in TF: a float32 draw stays float32.
        stddev = stddev if is_tensor_like(stddev) else constant(stddev, dtype=z.dtype)
        mean = mean if is_tensor_like(mean) else constant(mean, dtype=z.dtype)
        return elementwise_op("Add", elementwise_op("Mul", z, stddev), mean, name=name or "random_normal")


def random_uniform(shape: Any, minval: Any = 0.0, maxval: Any = None, dtype: Any = float32,
                   seed: int | None = None, name: str | None = None) -> Tensor:
    """Uniform values in [minval, maxval) (maxval defaults to 1)."""
    graph = graph_of([shape, minval, maxval])
    u = _draw("RandomUniform", shape, dtype, seed, graph)
    maxval = 1.0 if maxval is None else maxval
    name = name or "random_uniform"
    with graph.as_default():
        # Bounds given as numbers take the draw's dtype: the span of two Python floats would
        # otherwise be computed in float32, losing float64 precision.
        lo = convert_to_tensor(minval) if is_tensor_like(minval) else constant(minval, dtype=u.dtype)
        hi = convert_to_tensor(maxval) if is_tensor_like(maxval) else constant(maxval, dtype=u.dtype)
        lo_value, hi_value = lo.static_value, hi.static_value
        if (lo.dtype == u.dtype and hi.dtype == u.dtype and lo.shape == () and hi.shape == ()
                and lo_value is not None and hi_value is not None and lo_value == 0 and hi_value == 1):
            return identity(u, name=name)  # u * 1 + 0 is u: nothing to round
        span = elementwise_op("Sub", hi, lo)
        out = elementwise_op("Add", elementwise_op("Mul", u, span), lo)
        # u * span + minval can round up to maxval when u is close to 1; keep [minval, maxval).
        if hi_value is not None:
            below = np.nextafter(np.asarray(hi_value, out.dtype.np), np.asarray(-np.inf, out.dtype.np))
            return elementwise_op("Minimum", out, constant(below), name=name)
        return elementwise_op("Select", elementwise_op("Less", out, hi), out, lo, name=name, typed=(1, 2))
