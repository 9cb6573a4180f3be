"""Graph: the container of nodes, the default-graph stack, name scopes and control contexts.

Nodes are kept in creation order, which is always a topological order (a node's inputs and
control inputs exist before it). graphc gives that order a meaning: within one run, effects on
the same variable happen in creation order (see graphc.program.from_graph).
"""
from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import GraphcError
from ..source import SourceLocation, capture_source
from .dtypes import DType
from .node import Node
from .shapes import num_elements
from .tensor import Tensor

_VALID_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$")
_VALID_SCOPE = re.compile(r"^[A-Za-z0-9_.\-/]*$")
STATIC_VALUE_LIMIT = 4096  # elements; larger values are not folded while building


class NotFoundError(GraphcError, KeyError):
    """A name that does not refer to anything in the graph."""


@dataclass
class VariableInfo:
    """What the IR knows of a variable: its storage type and the nodes that define it."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    trainable: bool
    source: SourceLocation | None
    initializer: Node | None = None
    initial_value: Tensor | None = None
    read: Tensor | None = None  # the canonical read, created right after the initializer
    python_object: Any = field(default=None, repr=False)


class Graph:
    """A TF1-style computation graph."""

    def __init__(self, unique_names: bool = True) -> None:
        # Programs' private graphs keep their nodes' user names even when a pass copies a node
        # (unique_names=False); user graphs keep names unique, as TF1 does.
        self._unique_names = unique_names
        self._nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self._names_in_use: dict[str, int] = {}
        self._collections: dict[str, list[Any]] = {}
        self._variables: dict[str, VariableInfo] = {}
        self._lock = threading.RLock()
        self._local = threading.local()
        self._finalized = False
        self.seed: int | None = None

    # ----------------------------------------------------------------- contexts
    def _scope_stack(self) -> list[str]:
        stack = getattr(self._local, "scopes", None)
        if stack is None:
            stack = self._local.scopes = []
        return stack

    def _control_stack(self) -> list[tuple[Node, ...] | None]:
        stack = getattr(self._local, "control", None)
        if stack is None:
            stack = self._local.control = []
        return stack

    @contextlib.contextmanager
    def as_default(self) -> Iterator["Graph"]:
        """Make this graph the default for ops created inside the block."""
        _graph_stack().append(self)
        try:
            yield self
        finally:
            _graph_stack().pop()

    @property
    def current_scope(self) -> str:
        stack = self._scope_stack()
        return stack[-1] if stack else ""

    @contextlib.contextmanager
    def name_scope(self, name: str | None) -> Iterator[str]:
        """Prefix names of nodes created inside with `name/`; reused scopes get `name_1/`.

        A name ending in "/" re-enters that exact scope; None or "" resets to the top level.
        """
        stack = self._scope_stack()
        if not name:
            scope = ""
        elif name.endswith("/"):
            scope = name
        else:
            if not _VALID_SCOPE.match(name):
                raise GraphcError(f"invalid name scope {name!r}: use letters, digits and _ . - /")
            scope = self.unique_name(name) + "/"
        stack.append(scope)
        try:
            yield scope
        finally:
            stack.pop()

    @contextlib.contextmanager
    def control_dependencies(self, items: Sequence[Any] | None) -> Iterator[None]:
        """Nodes created inside run only after `items` (nodes or tensors) ran. None clears."""
        stack = self._control_stack()
        if items is None:
            stack.append(None)
        else:
            stack.append(tuple(self._as_node(x) for x in items))
        try:
            yield
        finally:
            stack.pop()

    def control_inputs_in_scope(self) -> tuple[Node, ...]:
        result: list[Node] = []
        for entry in reversed(self._control_stack()):
            if entry is None:
                break
            result.extend(n for n in entry if n not in result)
        return tuple(result)

    def _as_node(self, item: Any) -> Node:
        node = item
        if isinstance(item, Tensor):
            node = item.node
        elif hasattr(item, "op") and isinstance(getattr(item, "op"), Node):  # a Variable
            node = item.op
        if not isinstance(node, Node):
            raise GraphcError(f"control dependencies must be ops or tensors, got {item!r}")
        if node.graph is not self:
            raise GraphcError(f"'{node.name}' belongs to a different graph")
        return node

    # ----------------------------------------------------------------- naming
    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """`scope/name`, with a `_N` suffix when that name is already taken."""
        full = self.current_scope + name
        with self._lock:
            count = self._names_in_use.get(full, 0)
            candidate = full
            if count:
                while f"{full}_{count}" in self._names_in_use:
                    count += 1
                candidate = f"{full}_{count}"
            if mark_as_used:
                self._names_in_use[full] = count + 1
                self._names_in_use.setdefault(candidate, 1)
        return candidate

    # ----------------------------------------------------------------- nodes
    def create_node(
        self,
        op: Any,
        inputs: Sequence[Tensor],
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
        *,
        source: SourceLocation | None = None,
        control_inputs: Sequence[Node] = (),
        exact_name: bool = False,
        output_types: Sequence[tuple[Any, Any]] | None = None,
    ) -> Node:
        """Add a node applying `op`; its output types come from `op.infer` (errors name the node).

        `output_types` skips inference: for copies of a node whose inputs have the same types
        (compiler passes), where inference would only recompute what is known."""
        if self._finalized:
            raise GraphcError("the graph is finalized and cannot be modified")
        for t in inputs:
            if not isinstance(t, Tensor):
                raise GraphcError(f"{op.name} takes tensors as inputs, got {t!r}")
        inputs = [t if t.node.graph is self else self.resolve_input(t, op.name) for t in inputs]
        self.check_node(op)
        if name is not None and not _VALID_NAME.match(name):
            raise GraphcError(f"invalid node name {name!r}: use letters, digits and _ . - /")
        attrs = dict(attrs or {})
        if source is None:
            source = capture_source(1)
        with self._lock:
            if exact_name and name is not None and (not self._unique_names or name not in self._by_name):
                node_name = name  # keep a copied node's name (or a name reserved by the caller)
                self._names_in_use.setdefault(name, 1)
            else:
                node_name = self.unique_name(name or op.default_name)
            controls = tuple(control_inputs) + tuple(
                c for c in self.control_inputs_in_scope() if c not in control_inputs
            )
            inputs = tuple(inputs)
            if output_types is not None:
                types = list(output_types)
            else:
                try:
                    attrs = op.complete_attrs(attrs)
                    types = op.output_types(inputs, attrs)
                except GraphcError as err:
                    raise err.attach_node(op.name, node_name, source) from None
            node = Node(self, len(self._nodes), node_name, op, inputs, attrs, controls, source)
            node.outputs = tuple(Tensor(node, i, dt, shape) for i, (dt, shape) in enumerate(types))
            self._nodes.append(node)
            self._by_name[node_name] = node
        self._fill_static_values(node)
        return node

    def resolve_input(self, t: Tensor, op_name: str) -> Tensor:
        """The tensor of this graph standing for `t`, an input from another graph: an error here;
        a sub-graph (graphc.ir.function.FuncGraph) captures tensors of its enclosing graphs."""
        raise GraphcError(
            f"{op_name}: input '{t.name}' belongs to a different graph",
            hint="build every tensor of one computation inside the same `with g.as_default():`",
        )

    def check_node(self, op: Any) -> None:
        """Refuse ops this kind of graph cannot hold (a sub-graph refuses assignments)."""

    def _fill_static_values(self, node: Node) -> None:
        compute = getattr(node.op, "static_values", None)
        if compute is None:
            return
        for t in node.outputs:
            n = num_elements(t.shape)
            if n is None or n > STATIC_VALUE_LIMIT:
                return
        values = compute(node)
        if values is None:
            return
        for t, v in zip(node.outputs, values):
            t.static_value = np.asarray(v, dtype=t.dtype.np).reshape(t.shape)

    def get_operations(self) -> list[Node]:
        """All nodes, in creation order."""
        return list(self._nodes)

    @property
    def version(self) -> int:
        """Grows each time a node is added."""
        return len(self._nodes)

    def get_operation_by_name(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(f"the graph has no operation named {name!r}") from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        op_name, sep, index = name.rpartition(":")
        if not sep or not index.isdigit():
            raise NotFoundError(
                f"{name!r} is not a tensor name; tensor names look like 'op_name:0'",
            )
        node = self.get_operation_by_name(op_name)
        i = int(index)
        if i >= len(node.outputs):
            raise NotFoundError(f"operation {op_name!r} has {len(node.outputs)} outputs, not index {i}")
        return node.outputs[i]

    def as_graph_element(self, obj: Any) -> Tensor | Node:
        """A tensor or node of this graph from a tensor, node, variable or name string."""
        if isinstance(obj, str):
            return self.get_tensor_by_name(obj) if ":" in obj else self.get_operation_by_name(obj)
        if isinstance(obj, (Tensor, Node)):
            graph = obj.graph
        elif hasattr(obj, "_as_graph_element"):
            return self.as_graph_element(obj._as_graph_element())
        else:
            raise GraphcError(f"{obj!r} is not a tensor, an operation or a name in the graph")
        if graph is not self:
            raise GraphcError(f"'{obj.name}' belongs to a different graph than this session's")
        return obj

    # ----------------------------------------------------------------- variables & collections
    def register_variable(self, info: VariableInfo) -> None:
        with self._lock:
            if info.name in self._variables:
                raise GraphcError(f"a variable named {info.name!r} already exists in this graph")
            self._variables[info.name] = info

    def variable_info(self, name: str) -> VariableInfo:
        try:
            return self._variables[name]
        except KeyError:
            raise NotFoundError(f"the graph has no variable named {name!r}") from None

    @property
    def variables(self) -> dict[str, VariableInfo]:
        return dict(self._variables)

    def add_to_collection(self, key: str, value: Any) -> None:
        self._collections.setdefault(key, []).append(value)

    def get_collection(self, key: str) -> list[Any]:
        return list(self._collections.get(key, ()))

    def get_all_collection_keys(self) -> list[str]:
        return sorted(self._collections)

    def finalize(self) -> None:
        """Forbid adding nodes (catches graphs that grow inside a training loop)."""
        self._finalized = True

    @property
    def finalized(self) -> bool:
        return self._finalized

    def __repr__(self) -> str:
        return f"<gc.Graph with {len(self._nodes)} nodes>"


# --------------------------------------------------------------------- default graph
_global_default = Graph()
_thread = threading.local()


def _graph_stack() -> list[Graph]:
    stack = getattr(_thread, "graphs", None)
    if stack is None:
        stack = _thread.graphs = []
    return stack


def get_default_graph() -> Graph:
    """The graph new ops go into: the innermost `as_default()` one, else the global one."""
    stack = _graph_stack()
    return stack[-1] if stack else _global_default


def reset_default_graph() -> None:
    """Replace the global default graph by a new, empty one."""
    global _global_default
    if _graph_stack():
        raise GraphcError("reset_default_graph() cannot be called inside a `with g.as_default():` block")
    _global_default = Graph()
