"""Copying part of a graph with some tensors replaced (Theano's clone_replace).

Used by gc.function's `givens`: the nodes between the replaced tensors and the outputs are
copied with the replacements wired in; everything else (placeholders, variables, nodes not
downstream of a replacement) is shared with the original.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import GraphcError
from ..ir.node import Node, ancestors
from ..ir.tensor import Tensor
from .convert import convert_to_tensor


def clone_replace(outputs: Sequence[Tensor], replace: dict[Any, Any]) -> list[Tensor]:
    """Tensors computing `outputs` with each key of `replace` substituted by its value.

    Keys are tensors (or variables, meaning their value); values are tensors or Python / NumPy
    values (made constants). Replacement dtypes must match; shapes must be compatible.
    """
    if not outputs:
        return []
    graph = outputs[0].graph
    mapping: dict[Tensor, Tensor] = {}
    with graph.as_default():
        for key, value in replace.items():
            old = convert_to_tensor(key)
            new = convert_to_tensor(value, dtype=old.dtype) if not isinstance(value, Tensor) else value
            if new.dtype != old.dtype:
                raise GraphcError(f"givens: '{old.name}' is {old.dtype.name} but its replacement is {new.dtype.name}")
            mapping[old] = new
    affected = _downstream(ancestors(outputs), set(mapping))
    copies: dict[int, Node] = {}

    def mapped(t: Tensor) -> Tensor:
        if t in mapping:
            return mapping[t]
        copy = copies.get(t.node.id)
        return copy.outputs[t.index] if copy is not None else t

    with graph.as_default(), graph.control_dependencies(None):
        for n in affected:
            controls = [copies.get(c.id, c) for c in n.control_inputs]
            copies[n.id] = graph.create_node(
                n.op, [mapped(t) for t in n.inputs], dict(n.attrs), n.name, source=n.source,
                control_inputs=controls)
    return [mapped(t) for t in outputs]


def _downstream(nodes: list[Node], replaced: set[Tensor]) -> list[Node]:
    """Nodes (in creation order) that depend on a replaced tensor through data or control."""
    hit: set[int] = set()
    result = []
    for n in nodes:
        if any(t in replaced or t.node.id in hit for t in n.inputs) or any(c.id in hit for c in n.control_inputs):
            hit.add(n.id)
            result.append(n)
    return result
