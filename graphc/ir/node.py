"""Node: one op applied to input tensors, with attributes, control inputs and a source line.

Nodes are immutable once created. Their structural key (op + attributes + inputs) lets the CSE
pass merge equal subexpressions; stateful nodes (placeholders, variables, random draws without a
fixed seed) have no key and are never merged.
"""
from __future__ import annotations

import hashlib
from types import MappingProxyType
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..source import SourceLocation
from . import context
from .dtypes import DType

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Graph
    from .tensor import Tensor


class Node:
    """An operation in a graph (TF1 calls it an Operation)."""

    __slots__ = (
        "graph", "id", "name", "op", "inputs", "attrs", "outputs", "control_inputs", "source",
        "_key", "_cache", "__weakref__",
    )

    def __init__(
        self,
        graph: "Graph",
        node_id: int,
        name: str,
        op: Any,
        inputs: tuple["Tensor", ...],
        attrs: Mapping[str, Any],
        control_inputs: tuple["Node", ...],
        source: SourceLocation | None,
    ) -> None:
        self.graph = graph
        self.id = node_id
        self.name = name
        self.op = op
        self.inputs = inputs
        self.attrs = MappingProxyType(dict(attrs))
        self.outputs: tuple["Tensor", ...] = ()
        self.control_inputs = control_inputs
        self.source = source
        self._key: Any = None
        self._cache: dict[str, Any] = {}

    @property
    def type(self) -> str:
        """The op type name, e.g. "MatMul"."""
        return self.op.name

    def get_attr(self, name: str) -> Any:
        return self.attrs[name]

    def values(self) -> tuple["Tensor", ...]:
        return self.outputs

    def run(self, feed_dict: dict | None = None, session: Any = None) -> None:
        """Run this node for its effect in `session` or the default session."""
        context.session_for(session).run(self, feed_dict=feed_dict)

    @property
    def structural_key(self) -> Any:
        """A hashable key equal for nodes that compute the same thing, or None if stateful."""
        if self._key is None:
            if self.op.stateful:
                self._key = False
            else:
                self._key = (
                    self.op.name,
                    freeze_attrs(self.attrs),
                    tuple((t.node.id, t.index) for t in self.inputs),
                    tuple(sorted(n.id for n in self.control_inputs)),
                )
        return self._key or None

    def __repr__(self) -> str:
        return f"<gc.Node '{self.name}' type={self.type}>"


def ancestors(items: Sequence[Any]) -> list[Node]:
    """The nodes that `items` (tensors or nodes) depend on through data or control edges,
    themselves included, in creation order."""
    seen: dict[int, Node] = {}
    stack = [x if isinstance(x, Node) else x.node for x in items]
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen[n.id] = n
            stack.extend(t.node for t in n.inputs)
            stack.extend(n.control_inputs)
    return [seen[i] for i in sorted(seen)]


def freeze_attrs(attrs: Mapping[str, Any]) -> tuple:
    """A hashable, order-independent form of attributes (arrays hashed by content)."""
    return tuple(sorted((k, freeze_value(v)) for k, v in attrs.items()))


def freeze_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        digest = hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16).hexdigest()
        return ("ndarray", value.dtype.str, value.shape, digest)
    if isinstance(value, (list, tuple)):
        return tuple(freeze_value(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze_value(v)) for k, v in value.items()))
    if isinstance(value, float):
        return ("float", value.hex())  # keeps -0.0 apart from 0.0, and NaN equal to NaN
    if isinstance(value, DType):
        return ("dtype", value.name)
    return value
