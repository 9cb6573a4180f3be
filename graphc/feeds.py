"""Checking fed values before anything runs.

A feed is accepted when its dtype converts to the tensor's dtype without changing any value
(float64 -> float32 is accepted unless a value overflows; float -> int is refused rather than
silently truncated) and its shape fits the tensor's static shape. Errors name the fed tensor's
node and the line that created it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .api.convert import to_array
from .errors import DTypeError, FeedError, GraphcError
from .ir.graph import Graph
from .ir.node import Node
from .ir.shapes import compatible, format_shape
from .ir.tensor import Tensor


def feed_target(graph: Graph, key: Any) -> Tensor:
    """The tensor a feed_dict key names: a tensor, a variable, or a 'name:0' string."""
    if isinstance(key, Tensor):
        if key.graph is not graph:
            raise FeedError(f"cannot feed tensor '{key.name}': it belongs to a different graph than the session's")
        return key
    if hasattr(key, "_as_graph_element"):
        return feed_target(graph, key._as_graph_element())
    if isinstance(key, str):
        if ":" not in key:
            raise FeedError(f"feed key {key!r} names an operation; feed one of its tensors, e.g. '{key}:0'")
        try:
            return graph.get_tensor_by_name(key)
        except GraphcError as err:
            raise FeedError(f"cannot feed {key!r}: {err.message}") from None
    if isinstance(key, Node):
        raise FeedError(f"cannot feed operation '{key.name}'; feed one of its output tensors instead")
    raise FeedError(f"feed_dict keys must be tensors or tensor names, got {key!r}")


def convert_feed(t: Tensor, value: Any) -> np.ndarray:
    """The fed value as an array of t's dtype, checked against t's shape."""
    node = t.node
    if isinstance(value, Tensor) or hasattr(value, "_as_graph_element"):
        raise FeedError(
            f"the value fed for '{t.name}' is a graph tensor; feed a NumPy array or Python value",
            op_type=node.type, node_name=node.name, source=node.source,
            hint="to substitute one tensor for another, use gc.function(..., givens={...})")
    arr = value if isinstance(value, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise FeedError(f"cannot convert the value fed for '{t.name}' to an array: {err}",
                            op_type=node.type, node_name=node.name, source=node.source) from None
    if arr.dtype != t.dtype.np:
        if arr.dtype.kind not in "biuf":
            raise FeedError(f"cannot feed a value of dtype {arr.dtype} to '{t.name}' ({t.dtype.name})",
                            op_type=node.type, node_name=node.name, source=node.source)
        if arr.dtype.kind == "f" and not t.dtype.is_floating:
            raise FeedError(
                f"feeding {arr.dtype} values to {t.dtype.name} tensor '{t.name}' would truncate them",
                op_type=node.type, node_name=node.name, source=node.source,
                hint=f"convert explicitly, e.g. value.astype(np.{t.dtype.name})")
        if t.dtype.is_bool and arr.dtype.kind != "b":
            raise FeedError(f"cannot feed {arr.dtype} values to bool tensor '{t.name}'",
                            op_type=node.type, node_name=node.name, source=node.source)
        try:
            arr = to_array(arr if isinstance(value, np.ndarray) else value, t.dtype, what="fed value")
        except DTypeError as err:
            raise FeedError(f"cannot feed '{t.name}': {err.message}", op_type=node.type,
                            node_name=node.name, source=node.source) from None
    if not compatible(t.shape, arr.shape):
        raise FeedError(
            f"cannot feed a value of shape {format_shape(arr.shape)} for '{t.name}', which has shape "
            f"{format_shape(t.shape)}", op_type=node.type, node_name=node.name, source=node.source)
    return arr
