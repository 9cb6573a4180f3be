"""The machinery every rewrite pass shares: rebuild a program node by node in topological
order, letting a rule replace a node's outputs by other tensors.

Nodes are immutable, so a pass never edits one: it maps old tensors to new ones and creates new
nodes in the program's private graph (never in the user's). A node whose inputs did not change
is reused as is. New nodes keep the name and the source line of the node they replace, so
errors still point at the user's code.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

from ..ir.aligned import aligned_copy
from ..ir.node import Node
from ..ir.tensor import Tensor
from ..ops import get_op
from ..program import Program

Rule = Callable[["Rewriter", Node, list[Tensor]], Sequence[Tensor] | None]


class Rewriter:
    def __init__(self, program: Program, name: str) -> None:
        self.program = program
        self.graph = program.graph
        self.name = name
        self.mapping: dict[Tensor, Tensor] = {}
        self.fired: Counter[str] = Counter()   # rule name -> times it fired
        self.options: dict[str, Any] = {}

    def value(self, t: Tensor) -> Tensor:
        return self.mapping.get(t, t)

    def emit(self, op_name: str, inputs: Sequence[Tensor], attrs: dict[str, Any] | None, like: Node) -> Tensor:
        """A new single-output node standing in for (part of) `like`."""
        node = self.graph.create_node(get_op(op_name), list(inputs), dict(attrs or {}), like.name,
                                      source=like.source, exact_name=True)
        return node.outputs[0]

    def constant(self, value: Any, dtype: Any, like: Node) -> Tensor:
        arr = aligned_copy(value, dtype.np if hasattr(dtype, "np") else dtype)
        arr.setflags(write=False)
        return self.emit("Const", [], {"value": arr}, like)

    def copy(self, node: Node, inputs: Sequence[Tensor]) -> Node:
        """node itself if its inputs did not change; else a copy reading `inputs`."""
        if all(a is b for a, b in zip(inputs, node.inputs)):
            return node
        return copy_node(self.graph, node, inputs)

    def note(self, rule: str) -> None:
        self.fired[rule] += 1

    def replace(self, node: Node, outputs: Sequence[Tensor]) -> None:
        """Later readers of node's outputs read `outputs` instead (where they differ)."""
        for old, new in zip(node.outputs, outputs):
            if new is not old:
                self.mapping[old] = new

    def run(self, rule: Rule) -> Program:
        for node in self.program.nodes():
            if node.type == "Placeholder":
                continue
            inputs = [self.value(t) for t in node.inputs]
            replaced = rule(self, node, inputs)
            self.replace(node, self.copy(node, inputs).outputs if replaced is None else replaced)
        return self.finish()

    def finish(self) -> Program:
        p = self.program
        fired = ", ".join(f"{k} x{v}" for k, v in sorted(self.fired.items())) or "nothing"
        return p.derive([self.value(t) for t in p.outputs], [(v, self.value(t)) for v, t in p.updates],
                        [self.value(t) for t in p.effects], note=f"{self.name}: {fired}")


# --------------------------------------------------------------------------- pattern helpers
def const_value(t: Tensor) -> np.ndarray | None:
    """The value of a tensor known at compile time (a constant or a small folded value)."""
    if t.node.type == "Const":
        return t.node.attrs["value"]
    return t.static_value


def scalar_of(t: Tensor) -> float | None:
    """The single value of a constant whose elements are all equal, else None."""
    v = const_value(t)
    if v is None or v.size == 0:
        return None
    first = v.reshape(-1)[0]
    if v.size > 1 and not np.all(v == first):
        return None
    return first.item()


def is_scalar(t: Tensor, value: float) -> bool:
    s = scalar_of(t)
    return s is not None and s == value and not (isinstance(s, float) and np.isnan(s))


def same_type(a: Tensor, b: Tensor) -> bool:
    return a.dtype is b.dtype and a.shape == b.shape


def copy_node(graph, node: Node, inputs: Sequence[Tensor]) -> Node:
    """A copy of node in graph reading `inputs`; inference is skipped when their types equal
    the original inputs' types (the outputs' types cannot differ then)."""
    same = all(a.dtype is b.dtype and a.shape == b.shape for a, b in zip(inputs, node.inputs))
    types = [(t.dtype, t.shape) for t in node.outputs] if same else None
    return graph.create_node(node.op, list(inputs), dict(node.attrs), node.name, source=node.source,
                             exact_name=True, output_types=types)
