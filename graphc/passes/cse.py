"""Common subexpression elimination: merge nodes applying the same op, with the same
attributes, to the same inputs (structural hashing, bottom-up); equal constants are merged by
content. Stateful nodes (program inputs, random draws) are never merged."""
from __future__ import annotations

from typing import Any

from ..ir.node import Node, freeze_attrs
from ..ir.tensor import Tensor
from ..program import Program
from .rewriter import Rewriter


def common_subexpressions(program: Program) -> Program:
    seen: dict[Any, Node] = {}
    twins = _loops_with_history(program)

    def rule(rw: Rewriter, node: Node, inputs: list[Tensor]) -> list[Tensor] | None:
        if node.op.stateful or node.op.has_side_effect:
            return None
        if node.type == "While" and not node.attrs["history"] and _twin_key(node) in twins:
            # the gradient's twin also outputs the history: run that one loop for both
            twin = rw.graph.create_node(node.op, inputs, {**node.attrs, "history": True}, node.name,
                                        source=node.source, exact_name=True)
            key = (twin.op.name, freeze_attrs(twin.attrs), tuple((id(t.node), t.index) for t in inputs))
            twin = seen.setdefault(key, twin)
            rw.note("While (merged with its gradient's twin)")
            return list(twin.outputs[:len(node.outputs)])
        attrs_key = node._cache.get("attrs_key")
        if attrs_key is None:
            attrs_key = node._cache["attrs_key"] = freeze_attrs(node.attrs)
        key = (node.op.name, attrs_key, tuple((id(t.node), t.index) for t in inputs))
        twin = seen.get(key)
        if twin is None:
            seen[key] = rw.copy(node, inputs)
            return list(seen[key].outputs)
        rw.note(node.type)
        return list(twin.outputs)

    return Rewriter(program, "cse").run(rule)


def _twin_key(node: Node) -> Any:
    """What a loop and the twin with history made for its gradient share."""
    attrs = {k: v for k, v in node.attrs.items() if k != "history"}
    return (freeze_attrs(attrs), tuple((id(t.node), t.index) for t in node.inputs))


def _loops_with_history(program: Program) -> set[Any]:
    return {_twin_key(n) for n in program.nodes() if n.type == "While" and n.attrs["history"]}
