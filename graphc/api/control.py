"""Structure: identity, stop_gradient, group, control_dependencies, name_scope, checks."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from ..errors import GraphcError
from ..ir.graph import get_default_graph
from ..ir.node import Node
from ..ir.tensor import Tensor
from .convert import apply1, apply_op, convert_to_tensor, graph_of


def identity(input: Any, name: str | None = None) -> Tensor:  # noqa: A002
    """The same value (a new node: useful for naming and for reading after control deps)."""
    return apply1("Identity", [convert_to_tensor(input)], {}, name)


def stop_gradient(input: Any, name: str | None = None) -> Tensor:  # noqa: A002
    """The same value, treated as a constant by gc.gradients."""
    return apply1("StopGradient", [convert_to_tensor(input)], {}, name)


def check_numerics(tensor: Any, message: str = "", name: str | None = None) -> Tensor:
    """The same value, after checking it holds no NaN or Inf (an error names this node)."""
    return apply1("CheckNumerics", [convert_to_tensor(tensor)], {"message": str(message)}, name)


def no_op(name: str | None = None) -> Node:
    return apply_op("NoOp", [], {}, name, graph=get_default_graph())


def _as_nodes(items: Sequence[Any]) -> list[Node]:
    nodes: list[Node] = []
    for item in items:
        if isinstance(item, (list, tuple)):
            nodes.extend(_as_nodes(item))
        elif isinstance(item, Node):
            nodes.append(item)
        elif isinstance(item, Tensor):
            nodes.append(item.node)
        elif hasattr(item, "_as_graph_element"):
            nodes.append(item._as_graph_element().node)
        else:
            raise GraphcError(f"group() takes ops, tensors or variables, got {item!r}")
    return nodes


def group(*inputs: Any, name: str | None = None) -> Node:
    """An op that runs all of inputs (ops, tensors, variables, or lists of them)."""
    nodes = _as_nodes(inputs)
    graph = nodes[0].graph if nodes else get_default_graph()
    with graph.control_dependencies(nodes):
        return apply_op("NoOp", [], {}, name or "group_deps", graph=graph)


@contextlib.contextmanager
def control_dependencies(control_inputs: Sequence[Any] | None) -> Iterator[None]:
    """Ops created inside run only after control_inputs (None clears the enclosing ones)."""
    graph = graph_of(list(control_inputs or [])) if control_inputs else get_default_graph()
    nodes = None if control_inputs is None else _as_nodes(list(control_inputs))
    with graph.control_dependencies(nodes):
        yield


def name_scope(name: str | None) -> Any:
    """Prefix the names of ops created inside with `name/` (in the default graph)."""
    return get_default_graph().name_scope(name)
